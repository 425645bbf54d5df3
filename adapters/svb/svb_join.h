/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * svb_join.h - SVB legacy egress: turns the events SVB subscribes to into
 * AKW01 invitation records, one per child for the parents together. An
 * invitation needs two events that arrive in any order on different
 * partitions: nl.brp.persoon-geboren (the child's PL: both parents' BSNs
 * and names, the country of birth) and nl.brp.kind-toegevoegd (a parent's
 * Gv01 that SVB acts on; the first one that matches a parent completes the
 * join, the other parent's is absorbed). The adapter also keeps SVB's own
 * knowledge of which children each parent has, so a second or later child
 * born in the Netherlands is marked as handled automatically.
 *
 * Invariants:
 *  1. Handling an event twice writes the same files (at-least-once input is
 *     harmless): the kenmerk and file name derive from the birth event id,
 *     and once akw01-<child>.done exists nothing more is written for it.
 *  1a. A kenmerk belongs to one child: state/kenmerken/<kenmerk> names the
 *     birth event that claimed it (created once, never replaced) before
 *     out/<kenmerk>.akw01 is written; a child whose derived kenmerk is
 *     another's takes the next variant, so no out/ file of another child is
 *     ever overwritten and a re-render gives the same kenmerk.
 *  2. A state file is written before the caller commits the event's offset;
 *     out/<kenmerk>.akw01 (and the optional published event) is durable
 *     before the done marker, so a crash in between repeats, never loses.
 *  3. No BSN or A-nummer in a file name: children and parents are named by
 *     keyed pseudonyms (kb_event_pseudonym); the contents hold personal data
 *     and live only in the SVB adapter's own state folder.
 *
 *     kind-toegevoegd --store_kind()--> state/kind-<child>-<parent>.json
 *     persoon-geboren --store_birth()--> state/geboren-<child>.json
 *                     --remember_child()--> state/ouder-<parent bsn>.json
 *     both present    --join()--> state/kenmerken/<kenmerk> (claim_kenmerk())
 *                                 out/<kenmerk>.akw01
 *                                 [--on_written()--> event published]
 *                                 state/akw01-<child>.done, kind files -> .done
 */
#ifndef KETENBUS_SVB_JOIN_H
#define KETENBUS_SVB_JOIN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "akw.h"
#include "ketenbus/event.h"
#include "ketenbus/schema.h"
#include "spool.h"

/**
 * Called after an AKW01 was written and before the join is marked done:
 * KB_OK when whatever it does is durable; any error makes the event be
 * retried (the record is then rewritten under the same name).
 */
typedef kb_err_t(kb_svb_written_cb)(void *opaque, const struct kb_akw01 *rec,
                                    const char *birth_event_id, const char *kind_event_id,
                                    char *errstr, size_t errstr_size);

struct kb_svb {
    struct kb_spool spool;   /* out/ receives the AKW01 records */
    char state_dir[2100];    /* <spool>/state: pending joins and SVB's parent->children knowledge */
    const uint8_t *key;      /* subject key, for state file names (no BSN in names) */
    size_t key_len;
    char kanaal;             /* 'D' (Mijn SVB) or 'P' (paper) */
    time_t now;              /* 0: the clock; else a fixed "today" (tests) */
    kb_svb_written_cb *on_written; /* optional, see above */
    void *on_written_opaque;
    size_t written;          /* AKW01 records written since start */
    size_t automatic;        /* of which verwerking 'A' (later child) */
    size_t abroad;           /* of which buitenland 'J' */
    size_t kenmerk_collisions;        /* kenmerken found taken by another child */
    unsigned long long kenmerk_space; /* 0: 10^12 kenmerken; tests set a few to force collisions */
};

/** Start on @p spool (opened, kb_spool_open), keeping the joins' state in
 *  its state/ folder (created here). */
kb_err_t kb_svb_init(struct kb_svb *s, const struct kb_spool *spool, const uint8_t *key,
                     size_t key_len, char *errstr, size_t errstr_size);

/**
 * Handle one event of @p schema with Avro @p payload, which is validated
 * before avro-c decodes it (kb_egress_decode()). KB_ERR_INVALID when the
 * payload fails validation, lacks what the record needs, or holds text that
 * cannot be stored (a ce_id that is not UTF-8, say): the caller quarantines
 * it; errstr names the field or rule, never a value. Other errors are I/O or
 * memory and mean "retry, do not commit".
 * @thread the one thread that owns @p s
 */
kb_err_t kb_svb_handle(struct kb_svb *s, const struct kb_event_attrs *attrs,
                       const struct kb_schema *schema, const uint8_t *payload, size_t len,
                       char *errstr, size_t errstr_size);

#endif
