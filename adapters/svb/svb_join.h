/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * svb_join.h - SVB legacy egress: turns the events SVB subscribes to into
 * AKW01 invitation records. An invitation needs two events that arrive in
 * any order on different partitions: nl.brp.persoon-geboren (the child's
 * PL: the parents' BSNs and names) and nl.brp.kind-toegevoegd (the parent's
 * Gv01 that SVB acts on). Each is kept in a small state file until its
 * partner arrives; then the record is written to the spool's out/ folder.
 *
 * Invariants:
 *  1. Handling an event twice writes the same files (at-least-once input is
 *     harmless): the AKW01 kenmerk and its file name derive from event ids.
 *  2. A state file is written before the caller commits the event's offset.
 *
 *     kind-toegevoegd --store_kind()--> state/kind-<child>-<parent>.json
 *     persoon-geboren --store_birth()--> state/geboren-<child>.json
 *     both present    --join()--> out/<kenmerk>.akw01, kind file -> .done
 */
#ifndef KETENBUS_SVB_JOIN_H
#define KETENBUS_SVB_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/event.h"
#include "ketenbus/schema.h"
#include "spool.h"

struct kb_svb {
    struct kb_spool spool;   /* out/ receives the AKW01 records */
    char state_dir[2100];    /* <spool>/state: pending halves of a join */
    const uint8_t *key;      /* subject key, for state file names (no BSN in names) */
    size_t key_len;
    char kanaal;             /* 'D' (Mijn SVB) or 'P' (paper) */
    size_t written;          /* AKW01 records written since start */
};

kb_err_t kb_svb_init(struct kb_svb *s, const char *spool_dir, const uint8_t *key,
                     size_t key_len, char *errstr, size_t errstr_size);

/**
 * Handle one event of @p schema with Avro @p payload. KB_ERR_INVALID when
 * the payload does not decode or lacks what the record needs (the caller
 * quarantines it); other errors are I/O and mean "retry, do not commit".
 */
kb_err_t kb_svb_handle(struct kb_svb *s, const struct kb_event_attrs *attrs,
                       const struct kb_schema *schema, const uint8_t *payload, size_t len,
                       char *errstr, size_t errstr_size);

#endif
