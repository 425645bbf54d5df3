/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_lo3_check.c - the per-element checks: for hand-built Gv01 bodies,
 * which findings come out (rubriek, offset, rule) and which of them reject.
 * Offsets are counted by hand: "00000000Gv01" + aNummer = 22 bytes, body
 * length 5, category header 5, so the first element starts at offset 32.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gba/lo3.h"
#include "gba/lo3_check.h"
#include "kb_test.h"

struct want {
    const char *rubriek;
    size_t offset;
    const char *rule;
    int reject;
};

/* Build a Gv01 on A-nummer 5281301274 with one category @p cat holding
 * @p elements (already "EEEElllvalue" strings), and check it. */
static void run(const char *cat, const char *elements, const struct want *w, size_t n_want)
{
    char msg[2048];
    size_t el = strlen(elements);
    snprintf(msg, sizeof msg, "00000000Gv015281301274%05zu%s%03zu%s", el + 5, cat, el, elements);
    struct kb_lo3_message m;
    char err[256];
    kb_err_t perr = kb_lo3_parse((const uint8_t *)msg, strlen(msg), &m, err, sizeof err);
    CHECK_INT(perr, KB_OK);
    if (perr) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    struct kb_lo3_findings f;
    memset(&f, 0, sizeof f);
    CHECK_INT(kb_lo3_check(&m, &f), KB_OK);
    CHECK_INT(f.n, n_want);
    size_t rejects = 0;
    for (size_t i = 0; i < n_want && i < f.n; i++) {
        CHECK_STR(f.items[i].rubriek, w[i].rubriek);
        CHECK_INT(f.items[i].offset, w[i].offset);
        CHECK_STR(f.items[i].rule, w[i].rule);
        CHECK_INT(f.items[i].reject, w[i].reject);
        rejects += (size_t)w[i].reject;
    }
    CHECK_INT(f.n_reject, rejects);
    kb_lo3_findings_fini(&f);
    kb_lo3_message_fini(&m);
}

int main(void)
{
    /* clean: the child of the §1.10 example */
    run("09", "0110010719460101401200099999953030210004Daan0310008202403150330004603081200071AA0123",
        NULL, 0);

    /* BSN failing the 11-proef (999995304): reject; A-nummer 1234567890: warning */
    static const struct want ids[] = {{"09.01.10", 32, "anummer", 0},
                                      {"09.01.20", 49, "bsn", 1}};
    run("09", "01100101234567890" "0120009999995304", ids, 2);

    /* letters in N, wrong lengths, bad dates, bad codes */
    static const struct want fmt[] = {
        {"09.03.10", 32, "format-n", 1},  /* 2024O315 */
        {"09.03.30", 47, "length", 1},    /* land of 5 digits */
        {"09.81.20", 59, "length", 1},    /* aktenummer of 6 */
    };
    run("09", "03100082024O315" "033000560300" "8120006AA0123", fmt, 3);

    static const struct want dates[] = {
        {"01.03.10", 32, "datum", 1},    /* month 13 */
        {"01.04.10", 47, "code", 0},     /* geslacht X */
        {"01.61.10", 55, "code", 0},     /* naamgebruik Q */
    };
    run("01", "031000819921304" "0410001X" "6110001Q", dates, 3);

    /* partial dates are fine, empty elements are never wrong */
    run("01", "0310008199204000320000" "0330000" "851000800000000", NULL, 0);

    /* order and duplicates; unknown elements are warnings */
    static const struct want order[] = {
        {"09.02.10", 43, "order", 0},      /* 02.40 then 02.10 */
        {"09.02.10", 54, "duplicate", 1},  /* 02.10 twice */
        {"09.99.99", 65, "unknown-element", 0},
    };
    run("09", "0240004Dijk" "0210004Daan" "0210004Daan" "9999001x", order, 3);

    /* Teletex: 0xC2 'e' is valid, 0xC9 (old umlaut) has no mapping */
    static const struct want tt[] = {{"09.02.40", 44, "teletex", 1}};
    run("09", "0210005Ren\xc2" "e" "0240004D\xc9" "ik", tt, 1);

    /* postcode and huisnummer in 08 */
    static const struct want adres[] = {{"08.11.20", 32, "format-n", 1},
                                        {"08.11.60", 44, "code", 0}};
    run("08", "112000512a45" "11600060512AB", adres, 2);

    struct kb_lo3_finding f = {"01.01.20", 76, "bsn", "is not a valid BSN (11-proef)", 1};
    char buf[128];
    kb_lo3_finding_str(&f, buf, sizeof buf);
    CHECK_STR(buf, "offset 76: 01.01.20 is not a valid BSN (11-proef)");
    KB_TEST_DONE();
}
