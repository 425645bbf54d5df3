/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * egress.h - the adapter side of legacy egress: consume a subscriber topic
 * (read_committed), check each event's envelope and schema, hand it to the
 * adapter's renderer, and commit its offset only after the renderer made
 * its output durable. An event the renderer cannot use (any error but a
 * transient one, kb_egress_retryable()) is written, raw and with the
 * reason, to the spool's quarantine/ folder and then committed, so nothing
 * is lost and nothing blocks the topic.
 */
#ifndef KETENBUS_EGRESS_H
#define KETENBUS_EGRESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"
#include "spool.h"

/**
 * Renderer callback: KB_OK when the event's output is durable. Any other
 * error is judged by kb_egress_retryable(): a transient one makes the loop
 * retry the event after a pause, every other one quarantines the event.
 * @p errstr: why, fit for the log (a field path, rule or step; never a
 * value). @p detail (size @p detail_size, "" on entry): optional text for
 * the quarantine .reason file only, never logged, e.g. a legacy peer's own
 * reject text; the loop keeps at most KB_EGRESS_DETAIL_MAX printable ASCII
 * bytes of it.
 */
typedef kb_err_t(kb_egress_render_cb)(void *opaque, const struct kb_event_attrs *attrs,
                                      const struct kb_schema *schema, const uint8_t *payload,
                                      size_t len, char *errstr, size_t errstr_size, char *detail,
                                      size_t detail_size);

/* Bytes of a renderer's detail text a .reason file keeps (see above). */
#define KB_EGRESS_DETAIL_MAX 200

struct kb_egress_opts {
    const struct kb_kafka_opts *kafka; /* connection (not owned) */
    const kb_schemas_t *schemas;       /* schema lookup (not owned) */
    const char *topic;                 /* subscriber topic, e.g. kb.out.svb-kinderbijslag */
    const char *group_id;              /* consumer group of this adapter */
    const struct kb_spool *spool;      /* quarantine/ receives unusable events */
    kb_egress_render_cb *render;       /* the adapter's renderer */
    void *opaque;                      /* passed to render */
    int once_idle_ms;                  /* >0: exit after this long without a message while
                                        * partitions are assigned; KB_ERR_TIMEOUT when none
                                        * were for it + session.timeout.ms + 15 s */
};

/**
 * Run until *@p stop or (once_idle_ms) idle. KB_OK on a clean stop; an
 * error also when the consumer cannot seek back to an event it must render
 * again (nothing past that event is committed, so a restart resumes at it).
 */
kb_err_t kb_egress_run(const struct kb_egress_opts *opts, atomic_int *stop, char *errstr,
                       size_t errstr_size);

/**
 * The one rule for a failed render: 1 when @p err is transient and the
 * event is to be rendered again later (KB_ERR_IO, KB_ERR_TIMEOUT and
 * KB_ERR_KAFKA: the output or its peer could not be reached; KB_ERR_NOMEM),
 * 0 when the event itself can never be rendered (KB_ERR_INVALID, and also
 * KB_ERR_RANGE, KB_ERR_SCHEMA, ...: a value too long for the legacy format
 * stays too long), so it is quarantined instead of blocking its partition.
 * Any thread.
 */
int kb_egress_retryable(kb_err_t err);

/**
 * Decode the Avro @p payload (framing removed) of @p schema into a new
 * value *@p value, which the caller releases with avro_value_decref(). The
 * payload is first checked by the project's validator (avro-c is not
 * hardened against hostile bytes: a mutated length makes it allocate huge
 * sizes); one validator per schema id is compiled on first use and kept
 * until the process exits. KB_ERR_INVALID with the validator's rule, field
 * path and offset in @p errstr (never a value) when the payload fails, or
 * when its schema does not compile into a validator (as the router, which
 * dead-letters such events); KB_ERR_NOMEM. On error *@p value is untouched.
 * @thread any; the cache is shared under a lock
 */
kb_err_t kb_egress_decode(const struct kb_schema *schema, const uint8_t *payload, size_t len,
                          avro_value_t *value, char *errstr, size_t errstr_size);

/* Longest event id kb_egress_name_ok() accepts (a UUID has 36 characters). */
#define KB_EGRESS_NAME_MAX 64

/**
 * 1 when @p name (an event id, say) may name a file in a spool folder as it
 * is: 1 to KB_EGRESS_NAME_MAX characters of A-Z a-z 0-9 '.' '_' '-', not
 * starting with '.' (no "..", no hidden or temporary names, no '/'). Any
 * UUID passes. Any thread.
 */
int kb_egress_name_ok(const char *name);

#endif
