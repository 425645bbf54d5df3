/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gba_events.h - recognising life events in parsed LO3 messages and turning
 * them into CloudEvents with Avro payloads:
 *   Lg01 of a newborn's first PL version     -> nl.brp.persoon-geboren
 *   Gv01 with a new 09 stapel and empty 59   -> nl.brp.kind-toegevoegd (one per new child)
 * Every event carries its provenance (message kind, header, SHA-256 of the
 * original bytes) and a deterministic id, so a re-read message yields the
 * very same events.
 */
#ifndef KETENBUS_GBA_EVENTS_H
#define KETENBUS_GBA_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "ingress.h"
#include "ketenbus/schema.h"
#include "lo3.h"

struct kb_gba_ctx {
    const kb_schemas_t *schemas; /* where event schemas are looked up */
    const uint8_t *key;          /* subject-key secret for pseudonyms */
    size_t key_len;
    const char *source;          /* ce_source, urn:nld:oin:<OIN>:systeem:<name> */
};

/**
 * Events of one parsed message @p msg (read from @p raw, @p len bytes),
 * received at @p received_ms, archived at @p dataref. On success *evs is a
 * malloc'ed array of *n events (possibly 0: no life event recognised) whose
 * values are malloc'ed; free with kb_gba_events_free(). KB_ERR_INVALID with
 * errstr naming the rubriek and offset when the message is well-formed LO3
 * but not a valid source of its event (e.g. a BSN failing the 11-proef).
 */
kb_err_t kb_gba_events(const struct kb_gba_ctx *ctx, const uint8_t *raw, size_t len,
                       const struct kb_lo3_message *msg, int64_t received_ms,
                       const char *dataref, struct kb_ingress_event **evs, size_t *n,
                       char *errstr, size_t errstr_size);

void kb_gba_events_free(struct kb_ingress_event *evs, size_t n);

#endif
