/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gba_events.h - recognising life events in parsed LO3 messages and turning
 * them into CloudEvents with Avro payloads (schemas/brp/, ids 1001, 1002, 1010-1021):
 *   Lg01 of a newborn's first PL version     -> nl.brp.persoon-geboren
 *   Gv01/Gv02 pairs (actual cc + historical cc+50):
 *     09 new + empty 59                       -> nl.brp.kind-toegevoegd
 *     06.08.10 got a value                    -> nl.brp.persoon-overleden
 *     08 move (binnen/tussen gemeenten, emigratie, immigratie) -> nl.brp.persoon-verhuisd
 *     05.06.10 / 05.07.10 got a value          -> huwelijk-gesloten, partnerschap-aangegaan,
 *                                               huwelijk-ontbonden, partnerschap-ontbonden
 *     01 group 02 / 01.01.20 / 01.01.10 changed -> naam-, bsn-, anummer-gewijzigd
 *     07.67.10 got a value                    -> nl.brp.bijhouding-opgeschort
 *     anything else                           -> nl.brp.persoonslijst-gewijzigd (rubrieken)
 *   Ng01                                      -> nl.brp.persoonslijst-afgevoerd
 *   Wa11 / Wa01                               -> nl.brp.anummer-gewijzigd
 * Before any of that every element is checked (lo3_check.h): a rejecting
 * finding fails the message (KB_ERR_INVALID, errstr "offset N: CC.GG.EE
 * ..."), warnings travel on every event in herkomst.waarschuwingen. A pair
 * whose historical category carries 84.10 is a correction: its event has
 * correctie = true. Every event carries its provenance (message kind,
 * header, triggering rubrieken, SHA-256 of the original bytes as the source
 * message id) and a deterministic id, so a re-read message yields the very
 * same events.
 */
#ifndef KETENBUS_GBA_EVENTS_H
#define KETENBUS_GBA_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "ingress.h"
#include "ketenbus/schema.h"
#include "lo3.h"

/* What stays the same from message to message, made once: the compiled
 * writer of each event schema (gba_avro.h) with its field handles, and the
 * HMAC state keyed with the subject key. Opaque; see kb_gba_cache_new(). */
typedef struct kb_gba_cache kb_gba_cache_t;

struct kb_gba_ctx {
    const kb_schemas_t *schemas; /* where event schemas are looked up */
    const uint8_t *key;          /* subject-key secret for pseudonyms */
    size_t key_len;
    const char *source;          /* ce_source, urn:nld:oin:<OIN>:systeem:<name> */
    kb_gba_cache_t *cache;       /* optional (NULL: everything is prepared anew
                                  * for each message, same events, much slower) */
};

/**
 * A cache for kb_gba_ctx.cache. The latest schema of each event type is
 * remembered while the schema set keeps its size (a registry publishing a
 * newer version grows it, and the type is looked up again); writers are
 * compiled on first use. NULL when out of memory. The cache must not
 * outlive the schema sets it was used with (it keys on their schemas).
 * @thread any; one cache may serve several threads (it locks inside).
 */
kb_gba_cache_t *kb_gba_cache_new(void);

/** Release @p cache (and forget the key material in it). NULL is a no-op. */
void kb_gba_cache_destroy(kb_gba_cache_t *cache);

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
