/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * brk_lookup.h - finding a snapshot's persons, rights, deeds,
 * tenaamstellingen and parts by identifier. A snapshot may hold up to
 * kb_brk_limits.max_parts parts (100,000 by default), and its events
 * resolve every tenaamstelling's person and right and compare every part
 * of `was` with `wordt`: looking each up by a scan made that quadratic, a
 * minute of CPU for one hostile document while the spool waits. The parser
 * builds a sorted index once per snapshot (kb_brk_lookup_build), and each
 * lookup is a binary search. Without an index (a snapshot made by hand)
 * the lookups scan, with the same answers.
 *
 * The answer is always the first match in document order, as a scan
 * finds it: persons, rights and deeds match on their local id
 * ("ID...") or their business identificatie, whichever the reference uses.
 */
#ifndef KETENBUS_BRK_LOOKUP_H
#define KETENBUS_BRK_LOOKUP_H

#include "brk_xml.h"

/** Index @p s (replacing any index it has). KB_ERR_NOMEM. */
kb_err_t kb_brk_lookup_build(struct kb_brk_snapshot *s);

/** Free an index (NULL is fine). */
void kb_brk_lookup_free(struct kb_brk_lookup *l);

/* The first person, right or deed whose local id or identificatie is
 * @p ref (never matched when empty); NULL when none. @p s may be NULL. */
const struct kb_brk_persoon *kb_brk_find_persoon(const struct kb_brk_snapshot *s, const char *ref);
const struct kb_brk_recht *kb_brk_find_recht(const struct kb_brk_snapshot *s, const char *ref);
const struct kb_brk_stukdeel *kb_brk_find_stukdeel(const struct kb_brk_snapshot *s,
                                                   const char *ref);

/** 1 when @p s (may be NULL) has a tenaamstelling with identificatie @p id. */
int kb_brk_has_tenaamstelling(const struct kb_brk_snapshot *s, const char *id);

/** The first top-level part of kind @p kind and identificatie @p id, or the
 *  first field (child of the object) of kind @p kind; NULL when none. */
const struct kb_brk_part *kb_brk_find_part(const struct kb_brk_snapshot *s, const char *kind,
                                           const char *id);
const struct kb_brk_part *kb_brk_find_field(const struct kb_brk_snapshot *s, const char *kind);

#endif
