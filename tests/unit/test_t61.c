/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_t61.c - the Teletex codec: every diacritic + letter pair and every
 * single-byte special of the GBA set in both directions, the rejections
 * (other pairs, ASCII positions T.61 lacks, bad UTF-8), exhaustive round
 * trips over all one- and two-byte inputs, and output buffer limits.
 */
#include <stdint.h>
#include <string.h>

#include "kb_test.h"
#include "t61.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Per diacritic: the base letters it combines with and the precomposed
 * letters, in the same order, as UTF-8 text (written independently of the
 * codec's own table, from RvIG's "alle tekens" message).
 */
static const struct {
    uint8_t accent;    /* Teletex non-spacing diacritic */
    const char *bases; /* ASCII base letters */
    const char *utf8;  /* the precomposed letters, same order */
} accents[] = {
    {0xC1, "AEIOUaeiou", "ÀÈÌÒÙàèìòù"},
    {0xC2, "ACEILNORSUYZacegilnorsuyz", "ÁĆÉÍĹŃÓŔŚÚÝŹáćéģíĺńóŕśúýź"},
    {0xC3, "ACEGHIJOSUWYaceghijosuwy", "ÂĈÊĜĤÎĴÔŜÛŴŶâĉêĝĥîĵôŝûŵŷ"},
    {0xC4, "AINOUainou", "ÃĨÑÕŨãĩñõũ"},
    {0xC5, "AEIOUaeiou", "ĀĒĪŌŪāēīōū"},
    {0xC6, "AGUagu", "ĂĞŬăğŭ"},
    {0xC7, "CEGIZcegz", "ĊĖĠİŻċėġż"},
    {0xC8, "AEIOUYaeiouy", "ÄËÏÖÜŸäëïöüÿ"},
    {0xCA, "AUau", "ÅŮåů"},
    {0xCB, "CGKLNRSTcklnrst", "ÇĢĶĻŅŖŞŢçķļņŗşţ"},
    {0xCD, "OUou", "ŐŰőű"},
    {0xCE, "AEIUaeiu", "ĄĘĮŲąęįų"},
    {0xCF, "CDELNRSTZcdelnrstz", "ČĎĚĽŇŘŠŤŽčďěľňřšťž"},
};

/* Single bytes >= 0xA0 and the ASCII signs T.61 moved; kept as a grid. */
/* clang-format off */
static const struct {
    uint8_t byte;     /* Teletex */
    const char *utf8; /* its character */
} specials[] = {
    {0xA1, "¡"}, {0xA2, "¢"}, {0xA3, "£"}, {0xA4, "$"},
    {0xA5, "¥"}, {0xA6, "#"}, {0xA7, "§"}, {0xA8, "¤"},
    {0xAB, "«"}, {0xB0, "°"}, {0xB1, "±"}, {0xB2, "²"},
    {0xB3, "³"}, {0xB4, "×"}, {0xB5, "µ"}, {0xB6, "¶"},
    {0xB7, "·"}, {0xB8, "÷"}, {0xBB, "»"}, {0xBC, "¼"},
    {0xBD, "½"}, {0xBE, "¾"}, {0xBF, "¿"},
    {0xE0, "\xE2\x84\xA6"}, /* U+2126 ohm sign (an editor may turn it into U+03A9) */
    {0xE1, "Æ"}, {0xE2, "Đ"}, {0xE3, "ª"}, {0xE4, "Ħ"},
    {0xE6, "Ĳ"}, {0xE7, "Ŀ"}, {0xE8, "Ł"}, {0xE9, "Ø"},
    {0xEA, "Œ"}, {0xEB, "º"}, {0xEC, "Þ"}, {0xED, "Ŧ"},
    {0xEE, "Ŋ"}, {0xEF, "ŉ"}, {0xF0, "ĸ"}, {0xF1, "æ"},
    {0xF2, "đ"}, {0xF3, "ð"}, {0xF4, "ħ"}, {0xF5, "ı"},
    {0xF6, "ĳ"}, {0xF7, "ŀ"}, {0xF8, "ł"}, {0xF9, "ø"},
    {0xFA, "œ"}, {0xFB, "ß"}, {0xFC, "þ"}, {0xFD, "ŧ"},
    {0xFE, "ŋ"},
};
/* clang-format on */

/* Length of the UTF-8 sequence starting with @p c. */
static size_t u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static void check_pair(uint8_t accent, char base, const char *want, size_t want_len)
{
    uint8_t in[2] = {accent, (uint8_t)base};
    char out[16];
    uint8_t back[8];
    size_t n = 0, bad = 99;

    CHECK_INT(kb_t61_to_utf8(in, 2, out, sizeof out, &n, &bad), KB_OK);
    CHECK_INT(n, want_len);
    CHECK(n == want_len && memcmp(out, want, want_len) == 0);
    CHECK_INT(out[n], '\0');
    CHECK_INT(kb_t61_from_utf8(want, want_len, back, sizeof back, &n, &bad), KB_OK);
    CHECK_INT(n, 2);
    CHECK(back[0] == accent && back[1] == (uint8_t)base);
}

static size_t test_accent(uint8_t accent, const char *bases, const char *utf8)
{
    size_t pairs = 0;
    const char *u = utf8;

    for (const char *b = bases; *b; b++) {
        size_t l = u8len((unsigned char)*u);
        check_pair(accent, *b, u, l);
        u += l;
        pairs++;
    }
    CHECK_INT(*u, '\0'); /* as many letters as bases */

    /* every other base letter (and a digit, space) is rejected at the accent */
    for (int c = 0x20; c < 0x7F; c++) {
        if (strchr(bases, c))
            continue;
        uint8_t in[3] = {'x', accent, (uint8_t)c};
        char out[16];
        size_t n, bad = 99;
        CHECK_INT(kb_t61_to_utf8(in, 3, out, sizeof out, &n, &bad), KB_ERR_INVALID);
        CHECK_INT(bad, 1);
    }
    return pairs;
}

static void test_diacritics(void)
{
    size_t pairs = 0;
    for (size_t i = 0; i < N(accents); i++)
        pairs += test_accent(accents[i].accent, accents[i].bases, accents[i].utf8);
    /* the LO repertoire: 155 letter + diacritic pairs */
    CHECK_INT(pairs, 155);

    /* diacritic bytes outside the GBA set, and a dangling diacritic */
    static const uint8_t c9[] = {0xC9, 'e'}, cc[] = {0xCC, 'a'}, c0[] = {0xC0, 'a'};
    static const uint8_t dangling[] = {'a', 'b', 'c', 0xC8};
    char out[16];
    size_t n, bad;
    CHECK_INT(kb_t61_to_utf8(c9, 2, out, sizeof out, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(bad, 0);
    CHECK_INT(kb_t61_to_utf8(cc, 2, out, sizeof out, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(kb_t61_to_utf8(c0, 2, out, sizeof out, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(kb_t61_to_utf8(dangling, 4, out, sizeof out, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(bad, 3);
    /* two diacritics in a row are not a letter */
    static const uint8_t twice[] = {0xC2, 0xC8, 'e'};
    CHECK_INT(kb_t61_to_utf8(twice, 3, out, sizeof out, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(bad, 0);
}

static void test_specials(void)
{
    for (size_t i = 0; i < N(specials); i++) {
        char out[8];
        uint8_t back[4];
        size_t n, bad;
        size_t l = strlen(specials[i].utf8);
        CHECK_INT(kb_t61_to_utf8(&specials[i].byte, 1, out, sizeof out, &n, &bad), KB_OK);
        CHECK_STR(out, specials[i].utf8);
        CHECK_INT(kb_t61_from_utf8(specials[i].utf8, l, back, sizeof back, &n, &bad), KB_OK);
        CHECK_INT(n, 1);
        CHECK_INT(back[0], specials[i].byte);
    }

    /* aliases: capital eth and Greek omega have no Teletex byte of their own */
    uint8_t t[4];
    size_t n, bad;
    CHECK_INT(kb_t61_from_utf8("Ð", strlen("Ð"), t, sizeof t, &n, &bad), KB_OK);
    CHECK(n == 1 && t[0] == 0xE2);
    CHECK_INT(kb_t61_from_utf8("\xCE\xA9", 2, t, sizeof t, &n, &bad), KB_OK);
    CHECK(n == 1 && t[0] == 0xE0);

    /* bytes in columns A, B, E, F and C0 that are not in the set */
    static const uint8_t holes[] = {0xA0, 0xA9, 0xAA, 0xAC, 0xAD, 0xAE, 0xAF, 0xB9, 0xBA,
                                    0xC0, 0xD0, 0xD5, 0xDF, 0xE5, 0xFF, 0x80, 0x9F};
    for (size_t i = 0; i < N(holes); i++) {
        uint8_t in[3] = {'a', 'b', holes[i]};
        char out[16];
        bad = 99;
        CHECK_INT(kb_t61_to_utf8(in, 3, out, sizeof out, &n, &bad), KB_ERR_INVALID);
        CHECK_INT(bad, 2);
    }
}

static void test_ascii(void)
{
    char out[512];
    uint8_t back[512];
    size_t n, bad;

    /* T.61 lacks these ASCII positions: '#' and '$' moved to 0xA6/0xA4 */
    static const uint8_t missing[] = {0x23, 0x24, 0x5C, 0x5E, 0x60, 0x7B, 0x7D,
                                      0x7E, 0x7F, 0x00, 0x09, 0x0B, 0x1B};
    for (size_t i = 0; i < N(missing); i++) {
        uint8_t in[2] = {'A', missing[i]};
        bad = 99;
        CHECK_INT(kb_t61_to_utf8(in, 2, out, sizeof out, &n, &bad), KB_ERR_INVALID);
        CHECK_INT(bad, 1);
    }
    CHECK_INT(kb_t61_from_utf8("a#b$", 4, back, sizeof back, &n, &bad), KB_OK);
    CHECK_INT(n, 4);
    CHECK_MEM(back, n,
              "a\xA6"
              "b\xA4");
    CHECK_INT(kb_t61_from_utf8("ab\\", 3, back, sizeof back, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(bad, 2);
    CHECK_INT(kb_t61_from_utf8("x~", 2, back, sizeof back, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(bad, 1);
    CHECK_INT(kb_t61_from_utf8("a\tb", 3, back, sizeof back, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(bad, 1);

    /* the rest of printable ASCII and LF/CR/FF pass through unchanged */
    char all[128];
    size_t k = 0;
    for (int c = 0x20; c < 0x7F; c++)
        if (!memchr(missing, c, sizeof missing))
            all[k++] = (char)c;
    all[k++] = '\n';
    all[k++] = '\r';
    all[k++] = '\f';
    CHECK_INT(k, 95 - 8 + 3);
    CHECK_INT(kb_t61_to_utf8((const uint8_t *)all, k, out, sizeof out, &n, &bad), KB_OK);
    CHECK_INT(n, k);
    CHECK(memcmp(out, all, k) == 0);
    CHECK_INT(kb_t61_from_utf8(all, k, back, sizeof back, &n, &bad), KB_OK);
    CHECK(n == k && memcmp(back, all, k) == 0);
}

static void test_names(void)
{
    uint8_t t[64];
    char u[64];
    size_t n, bad;

    /* RvIG Ap01.GBA: "Angélique" has element length 010 */
    CHECK_INT(kb_t61_from_utf8("Angélique", strlen("Angélique"), t, sizeof t, &n, &bad), KB_OK);
    CHECK_INT(n, 10);
    CHECK_MEM(t, n,
              "Ang\xC2"
              "elique");
    CHECK_INT(kb_t61_to_utf8(t, n, u, sizeof u, &n, &bad), KB_OK);
    CHECK_STR(u, "Angélique");

    CHECK_INT(kb_t61_from_utf8("ë", strlen("ë"), t, sizeof t, &n, &bad), KB_OK);
    CHECK_MEM(t, n,
              "\xC8"
              "e");

    /* Xa01.GBA style: "Le Fèvre" */
    static const uint8_t fevre[] = "Le F\xC1"
                                   "evre";
    CHECK_INT(kb_t61_to_utf8(fevre, sizeof fevre - 1, u, sizeof u, &n, &bad), KB_OK);
    CHECK_STR(u, "Le Fèvre");

    /* empty input converts to an empty, terminated string */
    u[0] = 'x';
    CHECK_INT(kb_t61_to_utf8(NULL, 0, u, 1, &n, &bad), KB_OK);
    CHECK_INT(n, 0);
    CHECK_INT(u[0], '\0');
    CHECK_INT(kb_t61_from_utf8(NULL, 0, t, 0, &n, &bad), KB_OK);
    CHECK_INT(n, 0);

    /* the unmappable offset is that of the character, not of its last byte */
    CHECK_INT(kb_t61_from_utf8("Zoë€x", strlen("Zoë€x"), t, sizeof t, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(bad, 4);
    static const uint8_t bad_pair[] = "Zo\xC8"
                                      "e"
                                      "\xC2x";
    CHECK_INT(kb_t61_to_utf8(bad_pair, sizeof bad_pair - 1, u, sizeof u, &n, &bad), KB_ERR_INVALID);
    CHECK_INT(bad, 4);
}

static void test_bad_utf8(void)
{
    static const struct {
        const char *s; /* invalid UTF-8 after "ab" */
        size_t len;
    } cases[] = {
        {"ab\xC0\xAF", 4},         /* overlong '/' */
        {"ab\xE0\x80\xAF", 5},     /* overlong, 3 bytes */
        {"ab\xED\xA0\x80", 5},     /* surrogate */
        {"ab\xC3", 3},             /* truncated */
        {"ab\x80", 3},             /* lone continuation */
        {"ab\xF4\x90\x80\x80", 6}, /* above U+10FFFF */
        {"ab\xF8\x88\x80\x80\x80", 7},
        {"ab\xC3(", 4},            /* bad continuation */
        {"ab\xF0\x9F\x98\x80", 6}, /* valid, but no Teletex form */
        {"ab\0", 3},               /* NUL has no Teletex form */
    };
    for (size_t i = 0; i < N(cases); i++) {
        uint8_t t[16];
        size_t n, bad = 99;
        CHECK_INT(kb_t61_from_utf8(cases[i].s, cases[i].len, t, sizeof t, &n, &bad),
                  KB_ERR_INVALID);
        CHECK_INT(bad, 2);
    }
}

static void test_buffers(void)
{
    char u[16];
    uint8_t t[16];
    size_t n, bad;

    /* to_utf8 needs room for the NUL */
    CHECK_INT(kb_t61_to_utf8((const uint8_t *)"abc", 3, u, 3, &n, &bad), KB_ERR_RANGE);
    CHECK_INT(bad, 2);
    CHECK_INT(kb_t61_to_utf8((const uint8_t *)"abc", 3, u, 4, &n, &bad), KB_OK);
    CHECK_STR(u, "abc");
    CHECK_INT(kb_t61_to_utf8((const uint8_t *)"", 0, u, 0, &n, &bad), KB_ERR_RANGE);
    /* é: two Teletex bytes, two UTF-8 bytes + NUL */
    static const uint8_t e_acute[] = {0xC2, 'e'};
    CHECK_INT(kb_t61_to_utf8(e_acute, 2, u, 2, &n, &bad), KB_ERR_RANGE);
    CHECK_INT(bad, 0);
    CHECK_INT(kb_t61_to_utf8(e_acute, 2, u, 3, &n, &bad), KB_OK);
    /* Ω: one Teletex byte, three UTF-8 bytes (the worst case of the header) */
    static const uint8_t ohm[] = {0xE0};
    CHECK_INT(kb_t61_to_utf8(ohm, 1, u, 3, &n, &bad), KB_ERR_RANGE);
    CHECK_INT(kb_t61_to_utf8(ohm, 1, u, 4, &n, &bad), KB_OK);
    CHECK_INT(n, 3);

    /* from_utf8 does not terminate: exact fit is fine */
    CHECK_INT(kb_t61_from_utf8("ab", 2, t, 1, &n, &bad), KB_ERR_RANGE);
    CHECK_INT(bad, 1);
    CHECK_INT(kb_t61_from_utf8("ab", 2, t, 2, &n, &bad), KB_OK);
    CHECK_INT(kb_t61_from_utf8("é", 2, t, 1, &n, &bad), KB_ERR_RANGE);
    CHECK_INT(bad, 0);
    CHECK_INT(kb_t61_from_utf8("é", 2, t, 2, &n, &bad), KB_OK);
    /* NULL out_len / bad_offset are allowed */
    CHECK_INT(kb_t61_from_utf8("\\", 1, t, 2, NULL, NULL), KB_ERR_INVALID);
    CHECK_INT(kb_t61_to_utf8((const uint8_t *)"#", 1, u, 2, NULL, NULL), KB_ERR_INVALID);
}

/* from_utf8(to_utf8(x)) == x for every valid x of one or two bytes (and a
 * digit after each pair, which no diacritic combines with). */
static void test_round_trip(void)
{
    size_t valid1 = 0, valid2 = 0, fails = 0;
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 257; b++) {
            uint8_t in[3] = {(uint8_t)a, (uint8_t)b, '0'};
            size_t len = b == 256 ? 1 : 3;
            char u[16];
            uint8_t back[8];
            size_t n, m, bad;
            if (kb_t61_to_utf8(in, len, u, sizeof u, &n, &bad) != KB_OK)
                continue;
            if (len == 1)
                valid1++;
            else
                valid2++;
            if (kb_t61_from_utf8(u, n, back, sizeof back, &m, &bad) != KB_OK || m != len ||
                memcmp(back, in, len) != 0)
                fails++;
        }
    }
    CHECK_INT(fails, 0);
    /* 90 ASCII + controls, 53 specials */
    CHECK_INT(valid1, 90 + 53);
    /* every valid pair: two valid singles, or a diacritic pair, each + '0' */
    CHECK_INT(valid2, 143 * 143 + 155);
}

/* kb_t61_plain(): exactly the bytes kb_t61_to_utf8() copies unchanged. */
static void test_plain(void)
{
    size_t n_plain = 0;
    for (unsigned b = 0; b < 256; b++) {
        uint8_t in = (uint8_t)b;
        char out[8];
        size_t len = 0, bad = 0;
        int same = kb_t61_to_utf8(&in, 1, out, sizeof out, &len, &bad) == KB_OK && len == 1 &&
                   (uint8_t)out[0] == in;
        CHECK_INT(kb_t61_plain(&in, 1), same);
        n_plain += (size_t)same;
    }
    /* letters, digits, space and most punctuation, plus LF, FF and CR */
    CHECK(n_plain > 80 && n_plain < 100);
    CHECK_INT(kb_t61_plain((const uint8_t *)"Jansen-de Vries 12", 18), 1);
    CHECK_INT(kb_t61_plain((const uint8_t *)"", 0), 1);
    CHECK_INT(kb_t61_plain((const uint8_t *)"a#b", 3), 0); /* '#' is 0xA6 in T.61 */
    CHECK_INT(kb_t61_plain((const uint8_t *)"a$b", 3), 0);
    CHECK_INT(kb_t61_plain((const uint8_t *)"Ren\xc2"
                                            "e",
                           5),
              0); /* acute + e */
    CHECK_INT(kb_t61_plain((const uint8_t *)"a\0b", 3), 0);
}

/* kb_t61_check() (a class table) answers as kb_t61_to_utf8() (the mapping
 * tables): same verdict, same offset, for every byte alone, every byte
 * pair and random strings of plain, special, diacritic and unmapped bytes. */
static void test_check_agrees(void)
{
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    static const uint8_t pool[] = {'a',  'Z',  '0',  ' ',  '#',  '$',  '\\', 0x0A, 0x00,
                                   0x7F, 0xA4, 0xA6, 0xC1, 0xC2, 0xC8, 0xC9, 0xCC, 0xCF,
                                   0xD0, 0xE0, 0xE5, 0xFF, 'e',  'u',  'g',  'i'};
    size_t runs = 0;
    for (unsigned round = 0; round < 65536 + 20000; round++) {
        uint8_t in[12];
        size_t len;
        if (round < 256) {
            in[0] = (uint8_t)round;
            len = 1;
        } else if (round < 65536) {
            in[0] = (uint8_t)(round >> 8);
            in[1] = (uint8_t)round;
            len = 2;
        } else {
            len = (size_t)(rng % 12);
            for (size_t i = 0; i < len; i++) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                in[i] = pool[rng % sizeof pool];
            }
        }
        char out[40];
        size_t n = 0, bad_a = 99, bad_b = 99;
        kb_err_t a = kb_t61_to_utf8(in, len, out, sizeof out, &n, &bad_a);
        kb_err_t b = kb_t61_check(in, len, &bad_b);
        CHECK_INT(b, a);
        if (a)
            CHECK_INT(bad_b, bad_a);
        runs++;
    }
    CHECK(runs > 85000);
}

int main(void)
{
    test_plain();
    test_check_agrees();
    test_diacritics();
    test_specials();
    test_ascii();
    test_names();
    test_bad_utf8();
    test_buffers();
    test_round_trip();
    KB_TEST_DONE();
}
