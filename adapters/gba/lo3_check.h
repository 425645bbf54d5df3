/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * lo3_check.h - the per-element checks of a parsed LO3 message: format (N
 * digits / A Teletex) and length per protocols.md §1.5, BSN 11-proef,
 * A-nummer rules, (partial) GBA dates, a few code lists, element order and
 * uniqueness. Each finding names its rubriek (CC.GG.EE), byte offset and
 * rule, never the value, and says whether it rejects the message or
 * travels as a warning on the events (A-nummer problems, unknown codes and
 * elements, order: warnings; everything that makes a value unusable:
 * reject). Identifier and date rules come from ketenbus/check.h.
 */
#ifndef KETENBUS_LO3_CHECK_H
#define KETENBUS_LO3_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "lo3.h"

struct kb_lo3_finding {
    char rubriek[9];     /* "01.01.20": category.group.element as in the message */
    size_t offset;       /* byte offset of the element in the message */
    const char *rule;    /* static rule name: format-n, length, teletex, bsn,
                          * anummer, datum, code, duplicate, order, unknown-element */
    const char *what;    /* static description, e.g. "is not a valid BSN (11-proef)" */
    int reject;          /* 1: the message is rejected; 0: a warning */
};

struct kb_lo3_findings {
    struct kb_lo3_finding *items; /* malloc'ed, n entries */
    size_t n;                     /* findings, in message order */
    size_t cap;                   /* allocated entries */
    size_t n_reject;              /* how many of them reject */
};

/**
 * Check every non-empty element of @p msg (empty elements carry meaning in
 * mutations and are never wrong). Appends to @p out (zero it first); free
 * with kb_lo3_findings_fini(). KB_ERR_NOMEM only: findings are not errors.
 * Any thread.
 */
kb_err_t kb_lo3_check(const struct kb_lo3_message *msg, struct kb_lo3_findings *out);

/**
 * kb_lo3_check() that also sets @p plain[i] to 1 (i < @p n; the caller
 * zeroes them) for element i when its checks found its bytes to be ones
 * Teletex and UTF-8 write alike (digits of an N element, the common
 * characters of an A element): kb_t61_plain() would say 1. An unmarked
 * element may still be plain. Lets the event code take most values as
 * they are without testing them again.
 */
kb_err_t kb_lo3_check_marking(const struct kb_lo3_message *msg, struct kb_lo3_findings *out,
                              uint8_t *plain, size_t n);

void kb_lo3_findings_fini(struct kb_lo3_findings *f);

/** "offset 76: 01.01.20 is not a valid BSN (11-proef)" into @p buf. */
void kb_lo3_finding_str(const struct kb_lo3_finding *f, char *buf, size_t size);

#endif
