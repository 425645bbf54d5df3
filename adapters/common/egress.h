/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * egress.h - the adapter side of legacy egress: consume a subscriber topic
 * (read_committed), check each event's envelope and schema, hand it to the
 * adapter's renderer, and commit its offset only after the renderer made
 * its output durable. An event the renderer cannot use is written, raw and
 * with the reason, to the spool's quarantine/ folder and then committed, so
 * nothing is lost and nothing blocks the topic.
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
 * Renderer callback: KB_OK when the event's output is durable, KB_ERR_INVALID
 * when the event can never be rendered (it is quarantined), anything else to
 * retry it later.
 */
typedef kb_err_t(kb_egress_render_cb)(void *opaque, const struct kb_event_attrs *attrs,
                                      const struct kb_schema *schema, const uint8_t *payload,
                                      size_t len, char *errstr, size_t errstr_size);

struct kb_egress_opts {
    const struct kb_kafka_opts *kafka; /* connection (not owned) */
    const kb_schemas_t *schemas;       /* schema lookup (not owned) */
    const char *topic;                 /* subscriber topic, e.g. kb.out.svb-kinderbijslag */
    const char *group_id;              /* consumer group of this adapter */
    const struct kb_spool *spool;      /* quarantine/ receives unusable events */
    kb_egress_render_cb *render;       /* the adapter's renderer */
    void *opaque;                      /* passed to render */
    int once_idle_ms;                  /* >0: exit after this long without a message */
};

/**
 * Run until *@p stop or (once_idle_ms) idle. KB_OK on a clean stop; an
 * error also when the consumer cannot seek back to an event it must render
 * again (nothing past that event is committed, so a restart resumes at it).
 */
kb_err_t kb_egress_run(const struct kb_egress_opts *opts, atomic_int *stop, char *errstr,
                       size_t errstr_size);

#endif
