/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * lo3_check.c - element checks of LO3 messages (see lo3_check.h). One table
 * `elements` states format, length and special rule per element number
 * (GGEE), the same in every category that uses it (protocols.md §1.5); the
 * reject-or-warn decision is per rule, in `rules`.
 */
#include "lo3_check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/check.h"
#include "t61.h"

enum special {
    S_NONE = 0,
    S_BSN,      /* 11-proef */
    S_ANUMMER,  /* A-nummer rules: a warning (RvIG samples carry invalid ones) */
    S_DATUM,    /* GBA date, parts may be 00 */
    S_GESLACHT, /* M V O */
    S_VERBINTENIS, /* H P */
    S_NAAMGEBRUIK, /* E P V N */
    S_FUNCTIE_ADRES, /* W B */
    S_OPSCHORTING, /* O E M R F W . */
    S_GEHEIM,   /* 0-7 */
    S_POSTCODE, /* 4 digits, first not 0, 2 capitals */
};

struct element_def {
    uint16_t nummer; /* GGEE */
    char format;     /* 'N' digits or 'A' any Teletex */
    uint16_t min;    /* shortest non-empty value, Teletex bytes */
    uint16_t max;    /* longest value */
    uint8_t special; /* enum special */
};

/* clang-format off */
static const struct element_def elements[] = {
    {110, 'N', 10, 10, S_ANUMMER},   {120, 'N', 9, 9, S_BSN},
    {210, 'A', 1, 200, 0},           {220, 'A', 1, 2, 0},
    {230, 'A', 1, 10, 0},            {240, 'A', 1, 200, 0},
    {310, 'N', 8, 8, S_DATUM},       {320, 'A', 1, 40, 0},
    {330, 'N', 4, 4, 0},             {410, 'A', 1, 1, S_GESLACHT},
    {510, 'N', 4, 4, 0},
    {610, 'N', 8, 8, S_DATUM},       {620, 'A', 1, 40, 0},          {630, 'N', 4, 4, 0},
    {710, 'N', 8, 8, S_DATUM},       {720, 'A', 1, 40, 0},          {730, 'N', 4, 4, 0},
    {740, 'A', 1, 1, 0},
    {810, 'N', 8, 8, S_DATUM},       {820, 'A', 1, 40, 0},          {830, 'N', 4, 4, 0},
    {910, 'N', 4, 4, 0},             {920, 'N', 8, 8, S_DATUM},
    {1010, 'A', 1, 1, S_FUNCTIE_ADRES}, {1020, 'A', 1, 24, 0},      {1030, 'N', 8, 8, S_DATUM},
    {1110, 'A', 1, 24, 0},           {1115, 'A', 1, 80, 0},         {1120, 'N', 1, 5, 0},
    {1130, 'A', 1, 1, 0},            {1140, 'A', 1, 4, 0},          {1150, 'A', 2, 2, 0},
    {1160, 'A', 6, 6, S_POSTCODE},   {1170, 'A', 1, 80, 0},         {1180, 'A', 16, 16, 0},
    {1190, 'A', 16, 16, 0},          {1210, 'A', 1, 35, 0},
    {1310, 'N', 4, 4, 0},            {1320, 'N', 8, 8, S_DATUM},    {1330, 'A', 1, 35, 0},
    {1340, 'A', 1, 35, 0},           {1350, 'A', 1, 35, 0},
    {1410, 'N', 4, 4, 0},            {1420, 'N', 8, 8, S_DATUM},
    {1510, 'A', 1, 1, S_VERBINTENIS},
    {2010, 'N', 10, 10, S_ANUMMER},  {2020, 'N', 10, 10, S_ANUMMER},
    {3110, 'N', 1, 1, 0},            {3120, 'N', 8, 8, S_DATUM},    {3130, 'N', 8, 8, S_DATUM},
    {3210, 'A', 1, 2, 0},            {3310, 'A', 1, 1, 0},
    {3510, 'A', 2, 2, 0},            {3520, 'A', 1, 9, 0},          {3530, 'N', 8, 8, S_DATUM},
    {3540, 'A', 1, 6, 0},            {3550, 'N', 8, 8, S_DATUM},    {3560, 'N', 8, 8, S_DATUM},
    {3570, 'A', 1, 1, 0},
    {3810, 'A', 1, 1, 0},            {3820, 'N', 8, 8, S_DATUM},
    {3910, 'N', 2, 2, 0},            {3920, 'N', 8, 8, S_DATUM},    {3930, 'N', 8, 8, S_DATUM},
    {4010, 'N', 6, 6, 0},
    {6110, 'A', 1, 1, S_NAAMGEBRUIK},
    {6210, 'N', 8, 8, S_DATUM},
    {6310, 'N', 3, 3, 0},            {6410, 'N', 3, 3, 0},          {6510, 'A', 1, 1, 0},
    {6610, 'N', 8, 8, S_DATUM},
    {6710, 'N', 8, 8, S_DATUM},      {6720, 'A', 1, 1, S_OPSCHORTING},
    {6810, 'N', 8, 8, S_DATUM},      {6910, 'N', 4, 4, 0},          {7010, 'N', 1, 1, S_GEHEIM},
    {7110, 'N', 8, 8, S_DATUM},      {7120, 'A', 1, 50, 0},
    {7210, 'A', 1, 1, 0},            {7310, 'A', 1, 30, 0},         {7510, 'N', 1, 1, 0},
    {8010, 'N', 4, 4, 0},            {8020, 'N', 17, 17, 0},
    {8110, 'N', 4, 4, 0},            {8120, 'A', 7, 7, 0},
    {8210, 'N', 4, 4, 0},            {8220, 'N', 8, 8, S_DATUM},    {8230, 'A', 1, 40, 0},
    {8310, 'N', 6, 6, 0},            {8320, 'N', 8, 8, S_DATUM},    {8330, 'N', 8, 8, S_DATUM},
    {8410, 'A', 1, 1, 0},            {8510, 'N', 8, 8, S_DATUM},    {8610, 'N', 8, 8, S_DATUM},
    {8710, 'A', 1, 1, 0},            {8810, 'A', 1, 50, 0},
};
/* clang-format on */

/* Element number -> index + 1 into `elements` (0: unknown), made once from
 * the table: a message checks every element, and a binary search per
 * element was a tenth of bench-gba's time (a scan of the element's group
 * mispredicts its branches about as badly). Keyed by nummer / 4: listed
 * numbers are 5 apart at least (every EE a multiple of 5), so no two share
 * a key, and the definition found is compared with the number asked. A
 * quarter of the 10,000 numbers' table: the lines a message touches stay
 * in the cache beside the message. Should a number ever be listed that
 * shares a key, def_index_clash sends lookups that miss to the binary
 * search (the table is in ascending order). */
static uint8_t def_index[10000 / 4];
static int def_index_clash;
static pthread_once_t def_index_once = PTHREAD_ONCE_INIT;

_Static_assert(sizeof elements / sizeof elements[0] < 255, "def_index holds index + 1 in a byte");

static void def_index_make(void)
{
    for (size_t i = 0; i < sizeof elements / sizeof elements[0]; i++) {
        if (elements[i].nummer >= 10000)
            continue;
        uint8_t *slot = &def_index[elements[i].nummer / 4];
        if (!*slot)
            *slot = (uint8_t)(i + 1);
        else if (elements[*slot - 1].nummer != elements[i].nummer)
            def_index_clash = 1;
    }
}

/* The definition of element @p nummer (the first, were it listed twice);
 * def_index_make() must have run. */
static inline const struct element_def *find_def(uint16_t nummer)
{
    if (nummer < 10000) {
        unsigned i = def_index[nummer / 4u];
        if (i && elements[i - 1].nummer == nummer)
            return &elements[i - 1];
        if (!def_index_clash)
            return NULL;
    }
    size_t lo = 0, hi = sizeof elements / sizeof elements[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (elements[mid].nummer == nummer)
            return &elements[mid];
        if (elements[mid].nummer < nummer)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static kb_err_t add(struct kb_lo3_findings *out, unsigned cat, const struct kb_lo3_element *el,
                    const char *rule, const char *what, int reject)
{
    if (out->n == out->cap) {
        size_t nc = out->cap ? out->cap * 2 : 8;
        struct kb_lo3_finding *n = realloc(out->items, nc * sizeof *n);
        if (!n)
            return KB_ERR_NOMEM;
        out->items = n;
        out->cap = nc;
    }
    struct kb_lo3_finding *f = &out->items[out->n++];
    /* "%02u.%02u.%02u" of cat % 100, GG, EE, without the formatting machinery */
    static const char pairs[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    unsigned g = (unsigned)(el->nummer / 100) % 100u, e = (unsigned)(el->nummer % 100);
    memcpy(f->rubriek, pairs + 2 * (cat % 100u), 2);
    f->rubriek[2] = '.';
    memcpy(f->rubriek + 3, pairs + 2 * g, 2);
    f->rubriek[5] = '.';
    memcpy(f->rubriek + 6, pairs + 2 * e, 2);
    f->rubriek[8] = '\0';
    f->offset = el->offset;
    f->rule = rule;
    f->what = what;
    f->reject = reject;
    if (reject)
        out->n_reject++;
    return KB_OK;
}

/* 1 when the 8 bytes in @p x are all ASCII digits: high nibble 3, and
 * adding 6 keeps it 3 (no byte can carry into the next once all are 0x3_). */
static inline int digits8(uint64_t x)
{
    const uint64_t hi = 0xF0F0F0F0F0F0F0F0ull, three = 0x3030303030303030ull;
    return (x & hi) == three && ((x + 0x0606060606060606ull) & hi) == three;
}

/* kb_check_digits() inline, 8 bytes at a time: the test every numeric
 * element gets. */
static inline int all_digits(const uint8_t *v, size_t len)
{
    if (len >= 8) {
        uint64_t x;
        for (size_t i = 0; i + 8 <= len; i += 8) {
            memcpy(&x, v + i, 8);
            if (!digits8(x))
                return 0;
        }
        memcpy(&x, v + len - 8, 8); /* the tail, overlapping */
        return digits8(x);
    }
    unsigned bad = len == 0;
    for (size_t i = 0; i < len; i++)
        bad |= (unsigned)v[i] - '0' > 9;
    return !bad;
}

/* all_digits() for 1 to 7 bytes when 8 may be read at @p v (the message
 * goes on): the bytes past @p len count as '0', one word tested. */
static inline int digits_upto8(const uint8_t *v, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t x, keep = (1ull << (8 * len)) - 1;
    memcpy(&x, v, 8);
    return digits8((x & keep) | (0x3030303030303030ull & ~keep));
#else
    return all_digits(v, len);
#endif
}

static inline int one_of(const uint8_t *v, size_t len, const char *allowed)
{
    /* strchr() without the call: the lists are a few letters */
    if (len != 1 || !v[0])
        return 0;
    for (const char *a = allowed; *a; a++)
        if ((uint8_t)*a == v[0])
            return 1;
    return 0;
}

/* The special rule of @p def for value @p v: NULL when it holds, else the
 * rule name (and *what, *reject). */
static const char *special_rule(const struct element_def *def, const uint8_t *v, size_t len,
                                const char **what, int *reject)
{
    const char *s = (const char *)v;
    *reject = 0;
    switch (def->special) {
    case S_BSN:
        *what = "is not a valid BSN (11-proef)";
        *reject = 1;
        return kb_check_bsn(s, len) ? NULL : "bsn";
    case S_ANUMMER:
        *what = "is not a valid A-nummer";
        return kb_check_anummer(s, len) ? NULL : "anummer";
    case S_DATUM:
        *what = "is not a GBA date";
        *reject = 1;
        if (len == 8 && (def->format == 'N' || all_digits(v, 8))) { /* N: checked */
            /* a year, a month and a day up to 28: a date in any calendar
             * rule, without asking kb_check_gba_date (every PL has dozens) */
            unsigned m = (v[4] - (unsigned)'0') * 10u + (v[5] - (unsigned)'0');
            unsigned d = (v[6] - (unsigned)'0') * 10u + (v[7] - (unsigned)'0');
            if (memcmp(v, "0000", 4) != 0 && m >= 1 && m <= 12 && d >= 1 && d <= 28)
                return NULL;
        }
        return kb_check_gba_date(s, len) ? NULL : "datum";
    case S_GESLACHT:
        *what = "is not M, V or O";
        return one_of(v, len, "MVO") ? NULL : "code";
    case S_VERBINTENIS:
        *what = "is not H or P";
        return one_of(v, len, "HP") ? NULL : "code";
    case S_NAAMGEBRUIK:
        *what = "is not E, P, V or N";
        return one_of(v, len, "EPVN") ? NULL : "code";
    case S_FUNCTIE_ADRES:
        *what = "is not W or B";
        return one_of(v, len, "WB") ? NULL : "code";
    case S_OPSCHORTING:
        *what = "is not a reden opschorting (O E M R F W .)";
        return one_of(v, len, "OEMRFW.") ? NULL : "code";
    case S_GEHEIM:
        *what = "is not 0-7";
        return one_of(v, len, "01234567") ? NULL : "code";
    case S_POSTCODE:
        *what = "is not a postcode (4 digits, 2 capitals)";
        return len == 6 && v[0] >= '1' && v[0] <= '9' && kb_check_digits(s, 4) &&
                       v[4] >= 'A' && v[4] <= 'Z' && v[5] >= 'A' && v[5] <= 'Z'
                   ? NULL
                   : "code";
    default:
        return NULL;
    }
}

/* The @p len >= 8 bytes at @p v are digits: word by word, the last word
 * overlapping (every word lies inside the value). */
static inline int digits_from8(const uint8_t *v, size_t len)
{
    uint64_t x;
    for (size_t i = 0; i + 8 < len; i += 8) {
        memcpy(&x, v + i, 8);
        if (!digits8(x))
            return 0;
    }
    memcpy(&x, v + len - 8, 8);
    return digits8(x);
}

kb_err_t kb_lo3_check(const struct kb_lo3_message *msg, struct kb_lo3_findings *out)
{
    return kb_lo3_check_marking(msg, out, NULL, 0);
}

kb_err_t kb_lo3_check_marking(const struct kb_lo3_message *msg, struct kb_lo3_findings *out,
                              uint8_t *plain, size_t n)
{
    kb_err_t err = KB_OK;
    if (!plain)
        n = 0;
    pthread_once(&def_index_once, def_index_make); /* once here, not per element */
    /* kb_lo3_readable8() for every element at once: a value that starts
     * in [buf, last8] has 8 bytes to read whatever its length */
    const uint8_t *buf = msg->buf;
    const uint8_t *last8 = buf && msg->buf_len >= 8 ? buf + msg->buf_len - 8 : NULL;
    /* the message's and the category's numbers in locals: the marks are
     * stored through a uint8_t pointer, which may alias them, so the
     * compiler would load them again after every element */
    const struct kb_lo3_element *els = msg->elements;
    const struct kb_lo3_category *cats = msg->categories;
    const size_t n_cats = msg->n_categories;
    for (size_t c = 0; c < n_cats && !err; c++) {
        const struct kb_lo3_category *cat = &cats[c];
        const size_t first = cat->first, count = cat->count;
        for (size_t i = 0; i < count && !err; i++) {
            const struct kb_lo3_element *el = &els[first + i];
            if (i > 0) {
                const struct kb_lo3_element *prev = el - 1;
                if (prev->nummer == el->nummer)
                    err = add(out, cat->nummer, el, "duplicate",
                              "occurs twice in its category", 1);
                else if (prev->nummer > el->nummer)
                    err = add(out, cat->nummer, el, "order",
                              "is out of ascending element order", 0);
                if (err)
                    break;
            }
            size_t len = el->len;
            if (len == 0)
                continue; /* "no value" is meaningful in mutations */
            const struct element_def *def = find_def(el->nummer);
            if (!def) {
                err = add(out, cat->nummer, el, "unknown-element",
                          "is not in the element table", 0);
                continue;
            }
            if (len < def->min || len > def->max) {
                err = add(out, cat->nummer, el, "length",
                          "has a length outside its format (protocols.md 1.5)", 1);
                continue;
            }
            const uint8_t *v = el->value;
            /* values of 8 bytes and more are read in words inside them;
             * shorter ones as one word where the buffer goes on */
            int word = len >= 8 || (last8 && v >= buf && v <= last8);
            size_t at = first + i;
            if (def->format == 'N') {
                if (!(word ? (len >= 8 ? digits_from8(v, len) : digits_upto8(v, len))
                           : all_digits(v, len))) {
                    err = add(out, cat->nummer, el, "format-n", "is numeric but holds a non-digit",
                              1);
                    continue;
                }
                if (at < n) /* digits are plain */
                    plain[at] = 1;
            } else if (def->format == 'A') {
                if (word && (len >= 8 ? kb_t61_plain_from8(v, len) : kb_t61_plain_upto8(v, len))) {
                    if (at < n) /* plain, so valid */
                        plain[at] = 1;
                } else {
                    size_t bad = 0;
                    if (kb_t61_check(v, len, &bad)) {
                        err = add(out, cat->nummer, el, "teletex",
                                  "holds a byte without a Teletex mapping", 1);
                        continue;
                    }
                }
            }
            if (def->special == S_NONE)
                continue; /* most elements: no jump through the rule switch */
            const char *what = NULL;
            int reject = 0;
            const char *rule = special_rule(def, v, len, &what, &reject);
            if (rule)
                err = add(out, cat->nummer, el, rule, what, reject);
        }
    }
    return err;
}

void kb_lo3_findings_fini(struct kb_lo3_findings *f)
{
    if (!f)
        return;
    free(f->items);
    memset(f, 0, sizeof *f);
}

void kb_lo3_finding_str(const struct kb_lo3_finding *f, char *buf, size_t size)
{
    snprintf(buf, size, "offset %zu: %s %s", f->offset, f->rubriek, f->what);
}
