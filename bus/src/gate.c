/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gate.c - the envelope half of the router's gate (see ketenbus/gate.h).
 */
#include "ketenbus/gate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ketenbus/clock.h"
#include "ketenbus/kafka.h"
#include "ketenbus/sub.h"

kb_err_t kb_gate_attrs_check(const struct kb_event_attrs *a, char *why, size_t why_size)
{
    int64_t ms;
    /* the date-time form: kb_parse_time also takes a bare date */
    if (a->time[0] && (strlen(a->time) < 20 || kb_parse_time(a->time, &ms)))
        return kb_err_set(KB_ERR_INVALID, why, why_size,
                          "ce_time is not an RFC 3339 date-time (such as "
                          "2024-03-18T09:15:30Z)");
    return KB_OK;
}

enum kb_gate_step kb_gate_envelope(const kb_schemas_t *schemas, const rd_kafka_message_t *m,
                                    struct kb_gate_input *in, char *why, size_t why_size)
{
    char scratch[8];
    if (!why || !why_size) {
        why = scratch;
        why_size = sizeof scratch;
    }
    why[0] = 0;
    in->schema = NULL;
    in->schema_id = -1;
    /* Every header is read: one past a limit would go unchecked, and a
     * second ce_subject there could travel on a copy as it is. */
    struct kb_header hdrs[KB_GATE_MAX_HEADERS + 1];
    size_t n = kb_kafka_headers(m, hdrs, KB_GATE_MAX_HEADERS + 1);
    if (n > KB_GATE_MAX_HEADERS) {
        snprintf(why, why_size, "more than %d headers", KB_GATE_MAX_HEADERS);
        return KB_GATE_HEADERS;
    }
    if (kb_event_attrs_from_headers(hdrs, n, &in->attrs, why, why_size) ||
        kb_gate_attrs_check(&in->attrs, why, why_size))
        return KB_GATE_HEADERS;
    if (!m->payload ||
        kb_event_unframe(m->payload, m->len, &in->schema_id, &in->payload, &in->plen)) {
        snprintf(why, why_size, "value lacks the Confluent framing (magic byte 0, schema id)");
        return KB_GATE_FRAMING;
    }
    const struct kb_schema *schema = kb_schemas_by_id(schemas, in->schema_id);
    if (!schema) {
        snprintf(why, why_size, "schema id %" PRId32 " is not registered", in->schema_id);
        return KB_GATE_SCHEMA;
    }
    if (strcmp(schema->type, in->attrs.type) != 0) {
        snprintf(why, why_size, "ce_type %s does not match schema %" PRId32 " (%s)",
                 in->attrs.type, in->schema_id, schema->type);
        return KB_GATE_TYPE;
    }
    in->schema = schema;
    return KB_GATE_PASSED;
}

int64_t kb_gate_decision_time(const struct kb_event_attrs *a)
{
    int64_t ms;
    if (a->time[0] && !kb_parse_time(a->time, &ms))
        return ms;
    return kb_wall_ms();
}

const char *kb_gate_stage(enum kb_gate_step step)
{
    return step == KB_GATE_SCHEMA || step == KB_GATE_TYPE ? "schema" : "envelope";
}

const char *kb_gate_rule(enum kb_gate_step step)
{
    switch (step) {
    case KB_GATE_HEADERS:
        return "cloudevents-headers";
    case KB_GATE_FRAMING:
        return "confluent-framing";
    case KB_GATE_SCHEMA:
        return "unknown-schema-id";
    case KB_GATE_TYPE:
        return "type-schema-mismatch";
    default:
        return "none";
    }
}
