/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_lo3_check.c - the per-element checks: for hand-built Gv01 bodies,
 * which findings come out (rubriek, offset, rule) and which of them reject.
 * Offsets are counted by hand: "00000000Gv01" + aNummer = 22 bytes, body
 * length 5, category header 5, so the first element starts at offset 32.
 * Then the word-at-a-time paths (short values read as one 8-byte word
 * where the parsed buffer goes on): every fixture and thousands of
 * mutants give the same findings through them as through the byte loops
 * a message built in memory takes, and kb_t61_plain_upto8() never says
 * "plain" where kb_t61_plain() would not.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gba/lo3.h"
#include "gba/lo3_check.h"
#include "gba/t61.h"
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

/* The findings of @p buf as parsed (fast paths: the parser's buffer) and
 * of a copy of the message whose values each live in a malloc'ed block of
 * their exact size, with no buffer known (byte loops): the same, item for
 * item. Returns 1 when the message parsed. */
static int same_both_ways(const uint8_t *buf, size_t len)
{
    struct kb_lo3_message m;
    char err[256];
    if (kb_lo3_parse(buf, len, &m, err, sizeof err))
        return 0;
    struct kb_lo3_message copy = m;
    struct kb_lo3_element *els = calloc(m.n_elements ? m.n_elements : 1, sizeof *els);
    uint8_t **vals = calloc(m.n_elements ? m.n_elements : 1, sizeof *vals);
    CHECK(els != NULL && vals != NULL);
    if (!els || !vals) {
        free(els);
        free(vals);
        kb_lo3_message_fini(&m);
        return 1;
    }
    for (size_t i = 0; i < m.n_elements; i++) {
        els[i] = m.elements[i];
        vals[i] = malloc(m.elements[i].len ? m.elements[i].len : 1);
        if (vals[i] && m.elements[i].len)
            memcpy(vals[i], m.elements[i].value, m.elements[i].len);
        els[i].value = vals[i];
    }
    copy.elements = els;
    copy.buf = NULL;
    copy.buf_len = 0;
    struct kb_lo3_findings a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_INT(kb_lo3_check(&m, &a), KB_OK);
    CHECK_INT(kb_lo3_check(&copy, &b), KB_OK);
    CHECK_INT(a.n, b.n);
    CHECK_INT(a.n_reject, b.n_reject);
    for (size_t i = 0; i < a.n && i < b.n; i++) {
        CHECK_STR(a.items[i].rubriek, b.items[i].rubriek);
        CHECK_STR(a.items[i].rule, b.items[i].rule);
        CHECK_INT(a.items[i].offset, b.items[i].offset);
        CHECK_INT(a.items[i].reject, b.items[i].reject);
    }
    kb_lo3_findings_fini(&a);
    kb_lo3_findings_fini(&b);
    for (size_t i = 0; i < m.n_elements; i++)
        free(vals[i]);
    free(vals);
    free(els);
    kb_lo3_message_fini(&m);
    return 1;
}

/* Every fixture, and mutants of each with a value byte replaced (the
 * bytes that decide plain / Teletex / digits), both ways. */
static void fast_paths_agree(void)
{
    static const char *const dirs[] = {"tests/fixtures/gba", "tests/fixtures/gba/events",
                                       "tests/fixtures/gba/kinds"};
    static const uint8_t bytes[] = {'0', '9', 'a', 'Z', ' ', '!', ']', '|', '#', '$', 0x0a,
                                    0x7f, 0xa4, 0xc1, 0xc8, 0xc9, 0xe1, 0xff, 0x00, '.'};
    const char *src = getenv("KB_SOURCE_DIR");
    size_t files = 0, parsed = 0;
    uint64_t s = 12345;
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", src ? src : ".", dirs[d]);
        DIR *dir = opendir(path);
        CHECK(dir != NULL);
        struct dirent *de;
        while (dir && (de = readdir(dir))) {
            size_t nl = strlen(de->d_name);
            if (nl < 4 || strcmp(de->d_name + nl - 4, ".lo3"))
                continue;
            char file[2048];
            snprintf(file, sizeof file, "%s/%s", path, de->d_name);
            FILE *f = fopen(file, "rb");
            if (!f)
                continue;
            uint8_t buf[8192];
            size_t len = fread(buf, 1, sizeof buf, f);
            fclose(f);
            files++;
            parsed += (size_t)same_both_ways(buf, len);
            for (int r = 0; r < 200 && len > 32; r++) {
                uint8_t m[8192];
                memcpy(m, buf, len);
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = 32 + (size_t)(s >> 33) % (len - 32);
                m[at] = bytes[(s >> 20) % sizeof bytes];
                parsed += (size_t)same_both_ways(m, len);
            }
        }
        if (dir)
            closedir(dir);
    }
    CHECK(files >= 80);
    CHECK(parsed >= 1000);
    printf("%zu fixtures, %zu parsed messages and mutants checked both ways\n", files, parsed);

    /* kb_t61_plain_upto8: for every byte value at every place of a value of
     * 1 to 8 bytes (and beyond it), "plain" only where kb_t61_plain agrees,
     * and always for letters, digits and spaces */
    size_t wrong = 0, fast = 0;
    for (size_t len = 1; len <= 8; len++)
        for (size_t at = 0; at < 8; at++)
            for (unsigned v = 0; v < 256; v++) {
                uint8_t w[8];
                memset(w, 'k', sizeof w);
                w[at] = (uint8_t)v;
                int f = kb_t61_plain_upto8(w, len);
                fast += (size_t)f;
                int simple = v == ' ' || (v >= '0' && v <= '9') || (v >= 'A' && v <= 'Z') ||
                             (v >= 'a' && v <= 'z');
                if ((f && !kb_t61_plain(w, len)) || (!f && (at >= len || simple)))
                    wrong++;
            }
    CHECK_INT(wrong, 0);
    CHECK(fast > 0);
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
    fast_paths_agree();
    KB_TEST_DONE();
}
