/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/gate.h - the envelope half of the router's gate: what a message
 * must be before its payload is validated (CloudEvents headers, Confluent
 * framing, a registered schema of the event's own type).
 *
 * The router (route_one), its dedup window rebuild (which must take exactly
 * the events the router could have routed), the subscription dry run and
 * replay (which must judge as the router judges), and the adapters' egress
 * (which reads the router's output) all ask this one function, so none of
 * them can disagree on what an event is.
 */
#ifndef KETENBUS_GATE_H
#define KETENBUS_GATE_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "ketenbus/event.h"
#include "ketenbus/schema.h"

/* Headers a message may carry: more is refused (KB_GATE_HEADERS), so that
 * every one is read. An event of ours has at most KB_EVENT_MAX_HEADERS. */
#define KB_GATE_MAX_HEADERS 64

/* Where a message failed the envelope, or KB_GATE_PASSED. */
enum kb_gate_step {
    KB_GATE_PASSED = 0,
    KB_GATE_HEADERS, /* the ce_* headers do not make a CloudEvent, or too many headers */
    KB_GATE_FRAMING, /* no Confluent framing (magic byte 0, schema id) */
    KB_GATE_SCHEMA,  /* the schema id is not registered */
    KB_GATE_TYPE,    /* ce_type is not the type of that schema */
};

/* What the envelope check found, as far as it got. */
struct kb_gate_input {
    struct kb_event_attrs attrs;     /* from KB_GATE_FRAMING on */
    int32_t schema_id;               /* from KB_GATE_SCHEMA on */
    const struct kb_schema *schema;  /* when passed */
    const uint8_t *payload;          /* the Avro bytes after the framing */
    size_t plen;
};

/** The envelope's rules beyond the header syntax (kb_event_attrs_from_headers)
 *  for @p a: a ce_time, when present, is an RFC 3339 date-time that exists.
 *  Subscriptions judge validity dates and follow periods by it, and so do
 *  replays and dry runs: one that cannot be read would be judged by
 *  whatever clock reads it. KB_OK, or KB_ERR_INVALID with the reason. */
kb_err_t kb_gate_attrs_check(const struct kb_event_attrs *a, char *why, size_t why_size);

/** Check the envelope of @p m against @p schemas into @p in; on failure
 *  the reason, fit for a dead letter (no payload values), in @p why (may be
 *  NULL). */
enum kb_gate_step kb_gate_envelope(const kb_schemas_t *schemas, const rd_kafka_message_t *m,
                                    struct kb_gate_input *in, char *why, size_t why_size);

/** The time subscriptions judge an event by, in ms since the epoch: when
 *  it was recorded (ce_time), so a replay or a dry run decides as the
 *  original routing did; without ce_time, now. (A ce_time that is not an
 *  RFC 3339 time does not pass the envelope check.) */
int64_t kb_gate_decision_time(const struct kb_event_attrs *a);

/** The dead-letter stage ("envelope", "schema") and rule of a failed step. */
const char *kb_gate_stage(enum kb_gate_step step);
const char *kb_gate_rule(enum kb_gate_step step);

#endif
