/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * lo3.c - parser for GBA/BRP LO3 messages: random key, berichtnummer, the
 * positional header of that kind (one table, `kinds`), then the body of
 * categories and elements with its implicit stapels (protocols.md §1.2-1.3,
 * Appendix A).
 *
 * Invariants the parser keeps, because it reads bytes from outside:
 *  1. Every read is bounds-checked against the end of the current frame
 *     (message, body, category) before it happens; lengths are at most five
 *     digits, so no offset arithmetic can overflow.
 *  2. Every length must fit its frame exactly: a body length equals the bytes
 *     that follow it, categories fill their body, elements fill their
 *     category. Nothing is skipped and nothing is left over.
 *  3. Errors name the byte offset and the rule broken, never a value (values
 *     are names, BSNs and A-nummers).
 *  4. On error the message is left empty; values always point into the
 *     caller's buffer, so the only owned memory is the two arrays.
 *
 * Header field conventions: `rubrieken` keeps the whole slice "aantal (3) +
 * 6 digits x aantal"; `vrijeTekst` is the text only, without its 5-digit
 * length; `autorisatietabelregel` and `tabelData` are the rest of the
 * message, unparsed (own record formats; has_body stays 0).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lo3.h"

#define MAX_MESSAGE    (8u * 1024u * 1024u) /* hard cap on input size */
#define MAX_ELEMENTS   100000u              /* per message, over all bodies */
#define MAX_CATEGORIES 100000u              /* per message; empty ones cost 5 bytes */

enum field_kind {
    F_END = 0,     /* terminates a kind's field list */
    F_N,           /* fixed width, ASCII digits only */
    F_AN,          /* fixed width, any bytes */
    F_RUBRIEKEN,   /* aantal N3 + aantal x N6, kept as one slice */
    F_VRIJE_TEKST, /* length N5 + text; the slice is the text */
    F_REST,        /* all remaining bytes (own record format), at least one */
};

enum body_mode {
    BODY_PL,       /* exactly one plData body, required */
    BODY_NONE,     /* nothing may follow the header */
    BODY_OPTIONAL, /* "no body", but RvIG samples may carry an empty 00000 */
    BODY_SET,      /* Xa01: one or more bodies back to back */
};

struct field_def {
    const char *name; /* as in the BRP Berichten API JSON */
    uint8_t kind;     /* enum field_kind */
    uint8_t width;    /* bytes, for F_N and F_AN */
};

#define MAX_KIND_FIELDS 6

struct kind_def {
    char type[5];                             /* berichtnummer */
    uint8_t body;                             /* enum body_mode */
    struct field_def fields[MAX_KIND_FIELDS]; /* F_END-terminated */
};

/* Header fields; widths from the catalogue in protocols.md §1.2. */
/* one line per field and per kind, so the table reads like Appendix A */
/* clang-format off */
#define ANUMMER               {"aNummer", F_N, 10}
#define OUD_ANUMMER           {"oudANummer", F_N, 10}
#define DATUM                 {"datum", F_N, 8}
#define DATUM_TIJD            {"datumTijd", F_N, 17}
#define DATUM_GELDIGHEID      {"datumGeldigheid", F_N, 8}
#define DATUM_INGANG          {"datumIngang", F_N, 8}
#define DATUM_EINDE           {"datumEinde", F_N, 8}
#define STATUS                {"status", F_AN, 1}
#define HERHALING             {"herhaling", F_N, 1}
#define FOUTREDEN             {"foutreden", F_AN, 1}
#define GEMEENTE              {"gemeente", F_N, 4}
#define AKTENUMMER            {"aktenummer", F_AN, 7}
#define GEZOCHTE_PERSOON      {"gezochtePersoon", F_AN, 1}
#define ADRESFUNCTIE          {"adresfunctie", F_AN, 1}
#define IDENTIFICATIE         {"identificatie", F_AN, 1}
#define AFNEMERSINDICATIE     {"afnemersindicatie", F_N, 6}
#define TE_WIJZIGEN_TABEL     {"teWijzigenTabel", F_N, 2}
#define PARTNER_AAN           {"communicatiepartnerAan", F_AN, 7}
#define PARTNER_VAN           {"communicatiepartnerVan", F_AN, 7}
#define RUBRIEKEN             {"rubrieken", F_RUBRIEKEN, 0}
#define VRIJE_TEKST           {"vrijeTekst", F_VRIJE_TEKST, 0}
#define AUTORISATIETABELREGEL {"autorisatietabelregel", F_REST, 0}
#define TABEL_DATA            {"tabelData", F_REST, 0}
#define NO_FIELDS             {{0}}

/* Every message kind of Appendix A. */
static const struct kind_def kinds[] = {
    {"Af01", BODY_PL,       {FOUTREDEN, GEMEENTE, ANUMMER}},
    {"Af11", BODY_PL,       {FOUTREDEN, GEMEENTE, ANUMMER}},
    {"If01", BODY_PL,       {FOUTREDEN, GEMEENTE, ANUMMER}},
    {"If41", BODY_PL,       {FOUTREDEN, GEMEENTE, ANUMMER}},
    {"Jf01", BODY_PL,       {FOUTREDEN, GEMEENTE, ANUMMER}},
    {"Tf01", BODY_PL,       {FOUTREDEN, GEMEENTE, ANUMMER}},
    {"Ag01", BODY_PL,       {STATUS, DATUM}},
    {"Ag11", BODY_PL,       {STATUS, DATUM}},
    {"Ag21", BODY_PL,       {STATUS, DATUM}},
    {"Ag31", BODY_PL,       {STATUS, DATUM}},
    {"Ha01", BODY_PL,       {STATUS, DATUM}},
    {"Sv01", BODY_PL,       {STATUS, DATUM}},
    {"Ap01", BODY_PL,       {HERHALING}},
    {"Av01", BODY_PL,       {HERHALING}},
    {"Ii01", BODY_PL,       {HERHALING}},
    {"Iv01", BODY_PL,       {HERHALING}},
    {"Iv11", BODY_PL,       {HERHALING}},
    {"Iv21", BODY_PL,       {HERHALING}},
    {"Ji01", BODY_PL,       {HERHALING}},
    {"Jv01", BODY_PL,       {HERHALING}},
    {"Lq01", BODY_PL,       {HERHALING}},
    {"Rv01", BODY_PL,       {HERHALING}},
    {"Tv01", BODY_PL,       {HERHALING}},
    {"Ib01", BODY_PL,       {HERHALING, STATUS, DATUM}},
    {"Jb01", BODY_PL,       {HERHALING, STATUS, DATUM}},
    {"Rb01", BODY_PL,       {HERHALING, STATUS, DATUM}},
    {"Gv01", BODY_PL,       {ANUMMER}},
    {"Gv02", BODY_PL,       {ANUMMER}},
    {"Lg01", BODY_PL,       {DATUM_TIJD, ANUMMER, OUD_ANUMMER}},
    {"La01", BODY_PL,       NO_FIELDS},
    {"If21", BODY_PL,       NO_FIELDS},
    {"If31", BODY_PL,       NO_FIELDS},
    {"Jf21", BODY_PL,       NO_FIELDS},
    {"Jf31", BODY_PL,       NO_FIELDS},
    {"Ng01", BODY_PL,       NO_FIELDS},
    {"Rf31", BODY_PL,       NO_FIELDS},
    {"Tf11", BODY_PL,       NO_FIELDS},
    {"Lf01", BODY_PL,       {FOUTREDEN, GEMEENTE}},
    {"Rf01", BODY_PL,       {FOUTREDEN}},
    {"Wf01", BODY_PL,       {FOUTREDEN}},
    {"Hq01", BODY_PL,       {HERHALING, RUBRIEKEN}},
    {"Xq01", BODY_PL,       {HERHALING, RUBRIEKEN, ADRESFUNCTIE, IDENTIFICATIE}},
    {"Hf01", BODY_PL,       {FOUTREDEN, GEMEENTE, ANUMMER, RUBRIEKEN}},
    {"Tf21", BODY_PL,       {FOUTREDEN, GEMEENTE, ANUMMER, RUBRIEKEN}},
    {"Xf01", BODY_PL,       {FOUTREDEN, RUBRIEKEN, ADRESFUNCTIE, IDENTIFICATIE}},
    {"Xa01", BODY_SET,      NO_FIELDS},
    {"Tb01", BODY_PL,       {HERHALING, GEZOCHTE_PERSOON, AKTENUMMER}},
    {"Tb02", BODY_PL,       {HERHALING, RUBRIEKEN, AKTENUMMER}},
    {"Wa01", BODY_PL,       {HERHALING, ANUMMER, DATUM_GELDIGHEID}},
    {"Wa11", BODY_PL,       {ANUMMER, DATUM_GELDIGHEID}},
    {"Og11", BODY_PL,       {HERHALING, ANUMMER}},
    {"Of11", BODY_OPTIONAL, {FOUTREDEN, DATUM, GEMEENTE, ANUMMER}},
    {"Cb01", BODY_OPTIONAL, {HERHALING, AFNEMERSINDICATIE, DATUM_INGANG, DATUM_EINDE}},
    {"Ct01", BODY_NONE,     {HERHALING, AUTORISATIETABELREGEL}},
    {"Cw01", BODY_NONE,     {HERHALING, AFNEMERSINDICATIE, DATUM_INGANG, DATUM_EINDE,
                             AUTORISATIETABELREGEL}},
    {"Dt01", BODY_NONE,     {HERHALING, TE_WIJZIGEN_TABEL, TABEL_DATA}},
    {"Dw01", BODY_NONE,     {HERHALING, TE_WIJZIGEN_TABEL, TABEL_DATA}},
    {"Vb01", BODY_NONE,     {VRIJE_TEKST}},
    {"Vb02", BODY_NONE,     {PARTNER_AAN, PARTNER_VAN, VRIJE_TEKST}},
    {"Pf01", BODY_PL,       NO_FIELDS},
    {"Pf02", BODY_PL,       NO_FIELDS},
    {"Pf03", BODY_PL,       NO_FIELDS},
    {"Sv11", BODY_OPTIONAL, NO_FIELDS},
    {"Null", BODY_NONE,     NO_FIELDS},
};
/* clang-format on */

/* Parser state for one kb_lo3_parse() call. */
struct parser {
    const uint8_t *buf;         /* the message */
    size_t len;                 /* its bytes */
    struct kb_lo3_message *msg; /* arrays grow here */
    size_t cap_categories;      /* allocated entries of msg->categories */
    size_t cap_elements;        /* allocated entries of msg->elements */
    size_t first_categories;    /* first allocation of each array, sized */
    size_t first_elements;      /* from the message length (kb_lo3_parse) */
    size_t n_stapels;           /* stapels opened so far */
    int cur_actual;             /* actual category of the open stapel, -1 none */
    char *errstr;               /* caller's buffer */
    size_t errstr_size;
};

#define N_KINDS (sizeof kinds / sizeof kinds[0])

/* The four bytes of every kind's berichtnummer, packed: a lookup compares
 * with these instead of striding through the whole table. */
static uint32_t kind_codes[N_KINDS];
static pthread_once_t kind_codes_once = PTHREAD_ONCE_INIT;

/* kind_codes by hash: index + 1 (0: empty), open addressing with linear
 * probing at a quarter load, so a lookup takes one or two probes instead
 * of a scan past every kind listed before it (Lg01 is the 38th). */
static uint8_t kind_slots[256];

_Static_assert(N_KINDS < 255, "kind_slots holds index + 1 in a byte");

static inline unsigned kind_hash(uint32_t code)
{
    return (unsigned)((code * 0x9E3779B1u) >> 24);
}

static void kind_codes_make(void)
{
    for (size_t i = 0; i < N_KINDS; i++) {
        memcpy(&kind_codes[i], kinds[i].type, 4);
        unsigned h = kind_hash(kind_codes[i]);
        while (kind_slots[h])
            h = (h + 1) & 255u;
        kind_slots[h] = (uint8_t)(i + 1);
    }
}

static const struct kind_def *find_kind(const uint8_t *type)
{
    uint32_t code;
    pthread_once(&kind_codes_once, kind_codes_make);
    memcpy(&code, type, 4);
    for (unsigned h = kind_hash(code); kind_slots[h]; h = (h + 1) & 255u)
        if (kind_codes[kind_slots[h] - 1] == code)
            return &kinds[kind_slots[h] - 1];
    return NULL;
}

/* Value of @p n ASCII digits at @p p into *v; 0 when a byte is not a digit. */
static int digits(const uint8_t *p, size_t n, size_t *v)
{
    size_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        x = x * 10 + (size_t)(p[i] - '0');
    }
    *v = x;
    return 1;
}

/* An element header "GGEELLL" (7 digits) at @p p, without a loop or a
 * branch per byte: it is read for every element. 0 when any byte is not a
 * digit (digits() then tells which part). */
static inline int element_header(const uint8_t *p, size_t *nummer, size_t *len)
{
    unsigned d0 = p[0] - (unsigned)'0', d1 = p[1] - (unsigned)'0', d2 = p[2] - (unsigned)'0',
             d3 = p[3] - (unsigned)'0', d4 = p[4] - (unsigned)'0', d5 = p[5] - (unsigned)'0',
             d6 = p[6] - (unsigned)'0';
    if ((d0 > 9) | (d1 > 9) | (d2 > 9) | (d3 > 9) | (d4 > 9) | (d5 > 9) | (d6 > 9))
        return 0;
    *nummer = d0 * 1000u + d1 * 100u + d2 * 10u + d3;
    *len = d4 * 100u + d5 * 10u + d6;
    return 1;
}

/* element_header() when 8 bytes may be read at @p p: the seven digits
 * tested and converted together in one word (byte 7, the value's first or
 * the next header's, is set to '0' and ignored). Same answers. */
static inline int element_header8(const uint8_t *p, size_t *nummer, size_t *len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t zeros = 0x3030303030303030ull, hi = 0xF0F0F0F0F0F0F0F0ull;
    uint64_t x;
    memcpy(&x, p, 8);
    x = (x & 0x00FFFFFFFFFFFFFFull) | 0x3000000000000000ull;
    /* all digits: high nibble 3, and adding 6 keeps it 3 (no carry
     * crosses a byte once all of them are 0x3_) */
    if ((x & hi) != zeros || ((x + 0x0606060606060606ull) & hi) != zeros)
        return 0;
    uint64_t d = x - zeros;                                   /* bytes 0-9, d0 lowest */
    uint64_t t = (d * 10 + (d >> 8)) & 0x00FF00FF00FF00FFull; /* pairs: d0d1, d2d3, d4d5 */
    *nummer = (size_t)((t & 0xFFFF) * 100 + ((t >> 16) & 0xFFFF));
    *len = (size_t)(((t >> 32) & 0xFFFF) * 10 + ((d >> 48) & 0xFF));
    return 1;
#else
    return element_header(p, nummer, len);
#endif
}

static int all_digits(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

/*
 * Grow an array to hold one more entry. Separate from realloc so both arrays
 * share one doubling rule and one out-of-memory message.
 */
static kb_err_t grow_slow(struct parser *ps, void **arr, size_t *cap, size_t entry, size_t first);

static inline kb_err_t grow(struct parser *ps, void **arr, size_t *cap, size_t used, size_t entry,
                            size_t first)
{
    return used < *cap ? KB_OK : grow_slow(ps, arr, cap, entry, first);
}

static kb_err_t grow_slow(struct parser *ps, void **arr, size_t *cap, size_t entry, size_t first)
{
    size_t ncap = *cap ? *cap * 2 : first;
    void *n = realloc(*arr, ncap * entry);
    if (!n)
        return kb_err_set(KB_ERR_NOMEM, ps->errstr, ps->errstr_size,
                          "out of memory for %zu parsed entries", ncap);
    *arr = n;
    *cap = ncap;
    return KB_OK;
}

/* Category numbers 01-49 are actual, 51-99 historical (actual + 50). */
static kb_err_t open_category(struct parser *ps, size_t off, unsigned nummer,
                              struct kb_lo3_category **out)
{
    struct kb_lo3_message *msg = ps->msg;

    if (nummer == 0 || nummer == 50)
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset %zu: category number %02u is not valid", off, nummer);
    if (nummer > 50 && ps->cur_actual != (int)nummer - 50)
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset %zu: historical category %02u without preceding actual "
                          "category %02u in its stapel",
                          off, nummer, nummer - 50);
    if (msg->n_categories >= MAX_CATEGORIES)
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset %zu: more than %u categories in one message", off,
                          MAX_CATEGORIES);
    void *arr = msg->categories;
    kb_err_t err = grow(ps, &arr, &ps->cap_categories, msg->n_categories, sizeof *msg->categories,
                        ps->first_categories);
    msg->categories = arr;
    if (err)
        return err;

    if (nummer < 50) {
        ps->cur_actual = (int)nummer;
        ps->n_stapels++;
    }
    struct kb_lo3_category *cat = &msg->categories[msg->n_categories++];
    cat->nummer = (uint8_t)nummer;
    cat->first = msg->n_elements;
    cat->count = 0;
    cat->offset = off;
    cat->stapel = ps->n_stapels - 1;
    cat->body = msg->n_bodies - 1;
    *out = cat;
    return KB_OK;
}

static kb_err_t parse_category_elements(struct parser *ps, struct kb_lo3_category *cat, size_t pos,
                                        size_t end)
{
    struct kb_lo3_message *msg = ps->msg;
    /* the counters in locals, written back at the end: the element stores
     * (size_t fields) would otherwise make the compiler reload them; one
     * bound (the room left or the element cap, whichever comes first) is
     * tested per element */
    struct kb_lo3_element *els = msg->elements;
    size_t n = msg->n_elements, cap = ps->cap_elements, first_n = n;
    size_t bound = cap < MAX_ELEMENTS ? cap : MAX_ELEMENTS;
    const uint8_t *buf = ps->buf;
    const size_t buf_len = ps->len;
    kb_err_t err = KB_OK;

    while (pos < end) {
        size_t nummer = 0, len = 0, rest = end - pos;
        if (rest < 7) {
            err = kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                             "offset %zu: element header needs 7 bytes, %zu remain in "
                             "category %02u",
                             pos, rest, cat->nummer);
            break;
        }
        if (!(pos + 8 <= buf_len ? element_header8(buf + pos, &nummer, &len)
                                 : element_header(buf + pos, &nummer, &len))) {
            /* say which part is wrong */
            if (!digits(buf + pos, 4, &nummer))
                err = kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                 "offset %zu: element number is not 4 ASCII digits", pos);
            else if (!digits(buf + pos + 4, 3, &len))
                err = kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                 "offset %zu: element length is not 3 ASCII digits", pos + 4);
            if (err)
                break;
        }
        if (len > rest - 7) {
            err = kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                             "offset %zu: element %04zu length %zu exceeds remaining %zu "
                             "bytes of category %02u",
                             pos, nummer, len, rest - 7, cat->nummer);
            break;
        }
        if (n >= bound) {
            if (n >= MAX_ELEMENTS) {
                err = kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                 "offset %zu: more than %u elements in one message", pos,
                                 MAX_ELEMENTS);
                break;
            }
            void *arr = els;
            err = grow_slow(ps, &arr, &cap, sizeof *els, ps->first_elements);
            els = arr;
            if (err)
                break;
            bound = cap < MAX_ELEMENTS ? cap : MAX_ELEMENTS;
        }
        struct kb_lo3_element *el = &els[n++];
        el->nummer = (uint16_t)nummer;
        el->value = buf + pos + 7;
        el->len = len;
        el->offset = pos;
        pos += 7 + len;
    }
    msg->elements = els;
    msg->n_elements = n;
    ps->cap_elements = cap;
    cat->count += n - first_n;
    return err;
}

/*
 * One body at @p pos: 5-digit length, then categories. With @p exact the
 * length must cover everything up to @p end; otherwise it may stop earlier
 * and *next says where (Xa01 bodies follow each other).
 */
static kb_err_t parse_body(struct parser *ps, size_t pos, size_t end, int exact, size_t *next)
{
    size_t total;

    if (end - pos < 5)
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset %zu: body length needs 5 bytes, %zu remain", pos, end - pos);
    if (!digits(ps->buf + pos, 5, &total))
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset %zu: body length is not 5 ASCII digits", pos);
    if (exact ? total != end - pos - 5 : total > end - pos - 5)
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset %zu: body length %zu does not match the %zu bytes that "
                          "follow",
                          pos, total, end - pos - 5);
    pos += 5;
    size_t body_end = pos + total;
    ps->cur_actual = -1; /* stapels never continue across bodies */
    ps->msg->n_bodies++;

    while (pos < body_end) {
        size_t nummer, len;
        struct kb_lo3_category *cat = NULL;
        kb_err_t err;

        if (body_end - pos < 5)
            return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                              "offset %zu: category header needs 5 bytes, %zu remain in body", pos,
                              body_end - pos);
        if (!digits(ps->buf + pos, 2, &nummer))
            return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                              "offset %zu: category number is not 2 ASCII digits", pos);
        if (!digits(ps->buf + pos + 2, 3, &len))
            return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                              "offset %zu: category length is not 3 ASCII digits", pos + 2);
        if (len > body_end - pos - 5)
            return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                              "offset %zu: category length %zu exceeds remaining %zu bytes", pos,
                              len, body_end - pos - 5);
        err = open_category(ps, pos, (unsigned)nummer, &cat);
        if (err)
            return err;
        err = parse_category_elements(ps, cat, pos + 5, pos + 5 + len);
        if (err)
            return err;
        pos += 5 + len;
    }
    *next = body_end;
    return KB_OK;
}

/* The positional header fields of @p kind from *pos on. */
static kb_err_t parse_header(struct parser *ps, const struct kind_def *kind, size_t *pos,
                             size_t end)
{
    struct kb_lo3_message *msg = ps->msg;

    for (const struct field_def *f = kind->fields;
         f < kind->fields + MAX_KIND_FIELDS && f->kind != F_END; f++) {
        size_t p = *pos, start = p, flen = 0, n;

        switch (f->kind) {
        case F_N:
        case F_AN:
            if (end - p < f->width)
                return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                  "offset %zu: header field %s needs %u bytes, %zu remain", p,
                                  f->name, (unsigned)f->width, end - p);
            if (f->kind == F_N && !all_digits(ps->buf + p, f->width))
                return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                  "offset %zu: header field %s must be %u ASCII digits", p, f->name,
                                  (unsigned)f->width);
            flen = f->width;
            break;
        case F_RUBRIEKEN:
            if (end - p < 3)
                return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                  "offset %zu: header field %s needs a 3-digit count, %zu "
                                  "bytes remain",
                                  p, f->name, end - p);
            if (!digits(ps->buf + p, 3, &n))
                return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                  "offset %zu: count of %s is not 3 ASCII digits", p, f->name);
            if (n * 6 > end - p - 3)
                return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                  "offset %zu: %zu %s need %zu bytes, %zu remain", p + 3, n,
                                  f->name, n * 6, end - p - 3);
            for (size_t i = 0; i < n; i++)
                if (!all_digits(ps->buf + p + 3 + 6 * i, 6))
                    return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                      "offset %zu: rubriek %zu of %s is not 6 ASCII digits",
                                      p + 3 + 6 * i, i + 1, f->name);
            flen = 3 + 6 * n;
            break;
        case F_VRIJE_TEKST:
            if (end - p < 5)
                return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                  "offset %zu: header field %s needs a 5-digit length, %zu "
                                  "bytes remain",
                                  p, f->name, end - p);
            if (!digits(ps->buf + p, 5, &n))
                return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                  "offset %zu: length of %s is not 5 ASCII digits", p, f->name);
            if (n > end - p - 5)
                return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                  "offset %zu: %s length %zu exceeds remaining %zu bytes", p,
                                  f->name, n, end - p - 5);
            start = p + 5;
            flen = n;
            p += 5;
            break;
        case F_REST:
            if (end == p)
                return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                                  "offset %zu: header field %s is missing", p, f->name);
            flen = end - p;
            break;
        default:
            return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                              "internal: bad field table for %s", kind->type);
        }
        /* KB_LO3_MAX_HEADER_FIELDS > MAX_KIND_FIELDS: checked below at compile time */
        struct kb_lo3_header_field *h = &msg->header[msg->n_header++];
        h->name = f->name;
        h->value = ps->buf + start;
        h->len = flen;
        *pos = p + flen;
    }
    return KB_OK;
}

_Static_assert(MAX_KIND_FIELDS <= KB_LO3_MAX_HEADER_FIELDS,
               "a kind has more header fields than kb_lo3_message can hold");

/* Printable rendering of the 4 berichtnummer bytes for an error message. */
static void type_text(const uint8_t *t, char out[17])
{
    size_t o = 0;
    for (size_t i = 0; i < 4; i++) {
        if (t[i] >= 0x20 && t[i] < 0x7F && t[i] != '\\' && t[i] != '"') {
            out[o++] = (char)t[i];
        } else {
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[t[i] >> 4];
            out[o++] = hex[t[i] & 15];
        }
    }
    out[o] = '\0';
}

static kb_err_t parse(struct parser *ps, size_t len)
{
    struct kb_lo3_message *msg = ps->msg;
    const struct kind_def *kind;
    size_t pos = 12, next;
    kb_err_t err;

    if (len == 0) {
        /* the processing confirmation: a zero-byte message */
        memcpy(msg->type, "Null", 5);
        return KB_OK;
    }
    if (len > MAX_MESSAGE)
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "message of %zu bytes exceeds the limit of %u bytes", len, MAX_MESSAGE);
    if (len < 12)
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset 0: message of %zu bytes is shorter than random key and "
                          "berichtnummer (12)",
                          len);
    if (!all_digits(ps->buf, 8))
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset 0: random key is not 8 ASCII digits");
    kind = find_kind(ps->buf + 8);
    if (!kind) {
        char t[17];
        type_text(ps->buf + 8, t);
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset 8: unknown berichtnummer \"%s\"", t);
    }
    memcpy(msg->random_key, ps->buf, 8);
    msg->random_key[8] = '\0';
    memcpy(msg->type, kind->type, 5);

    err = parse_header(ps, kind, &pos, len);
    if (err)
        return err;

    switch (kind->body) {
    case BODY_NONE: break;
    case BODY_OPTIONAL:
        if (pos == len)
            break;
        /* fall through */
    case BODY_PL:
        err = parse_body(ps, pos, len, 1, &pos);
        if (err)
            return err;
        msg->has_body = 1;
        break;
    case BODY_SET:
        do {
            err = parse_body(ps, pos, len, 0, &next);
            if (err)
                return err;
            pos = next;
        } while (pos < len);
        msg->has_body = 1;
        break;
    }
    if (pos != len)
        return kb_err_set(KB_ERR_INVALID, ps->errstr, ps->errstr_size,
                          "offset %zu: %zu trailing bytes after %s", pos, len - pos, kind->type);
    return KB_OK;
}

/* @p msg empty: every count 0, every pointer NULL, "" texts. The header
 * slots beyond n_header (all of them, then) are left as they are: nothing
 * reads them, and clearing the whole struct took a string store of some
 * 400 bytes per message, twice. */
static void msg_clear(struct kb_lo3_message *msg)
{
    msg->random_key[0] = '\0';
    msg->type[0] = '\0';
    msg->n_header = 0;
    msg->has_body = 0;
    msg->n_bodies = 0;
    msg->categories = NULL;
    msg->n_categories = 0;
    msg->elements = NULL;
    msg->n_elements = 0;
    msg->buf = NULL;
    msg->buf_len = 0;
}

kb_err_t kb_lo3_parse(const uint8_t *buf, size_t len, struct kb_lo3_message *msg, char *errstr,
                      size_t errstr_size)
{
    struct parser ps = {
        .buf = buf,
        .len = len,
        .msg = msg,
        .cur_actual = -1,
        .errstr = errstr,
        .errstr_size = errstr_size,
        /* An element takes at least 7 bytes, a category 5: a short
         * mutation gets arrays small enough for malloc's per-thread cache
         * (up to 1 KB: 32 elements, which a mutation of up to ~500 bytes
         * rarely exceeds, as its values are seldom empty), a full PL
         * (Lg01) its elements without a realloc. */
        .first_categories = len / 5 + 1 < 16 ? len / 5 + 1 : 16,
        .first_elements = len / 7 + 1 < (len < 512 ? 32u : 128u) ? len / 7 + 1
                          : len < 512                            ? 32
                                                                 : 128,
    };

    msg_clear(msg);
    if (errstr && errstr_size > 0)
        errstr[0] = '\0';
    if (!buf && len > 0)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "no buffer for %zu bytes", len);
    kb_err_t err = parse(&ps, len);
    if (err) {
        kb_lo3_message_fini(msg);
    } else {
        msg->buf = buf;
        msg->buf_len = len;
    }
    return err;
}

void kb_lo3_message_fini(struct kb_lo3_message *msg)
{
    if (!msg)
        return;
    free(msg->categories);
    free(msg->elements);
    msg_clear(msg);
}

const struct kb_lo3_header_field *kb_lo3_header(const struct kb_lo3_message *msg, const char *name)
{
    if (!msg || !name)
        return NULL;
    for (size_t i = 0; i < msg->n_header && i < KB_LO3_MAX_HEADER_FIELDS; i++)
        if (strcmp(msg->header[i].name, name) == 0)
            return &msg->header[i];
    return NULL;
}

const struct kb_lo3_element *kb_lo3_element(const struct kb_lo3_message *msg, size_t cat_index,
                                            uint16_t nummer)
{
    if (!msg || cat_index >= msg->n_categories)
        return NULL;
    const struct kb_lo3_category *cat = &msg->categories[cat_index];
    const struct kb_lo3_element *e = msg->elements + cat->first;
    for (size_t i = 0; i < cat->count; i++)
        if (e[i].nummer == nummer)
            return &e[i];
    return NULL;
}

/* ---- formatting: the parsed form back to bytes ---- */

/* Write @p v as @p n zero-padded ASCII digits. */
static void put_digits(uint8_t *p, size_t n, size_t v)
{
    for (size_t i = n; i-- > 0; v /= 10)
        p[i] = (uint8_t)('0' + v % 10);
}

/* Bytes body @p b takes without its 5-digit length; checks every length field. */
static kb_err_t body_size(const struct kb_lo3_message *msg, size_t b, size_t *total, char *errstr,
                          size_t errstr_size)
{
    size_t sum = 0;
    for (size_t c = 0; c < msg->n_categories; c++) {
        const struct kb_lo3_category *cat = &msg->categories[c];
        if (cat->body != b)
            continue;
        if (cat->nummer == 0 || cat->nummer > 99 || cat->nummer == 50)
            return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                              "category %u: number outside 01-49/51-99", cat->nummer);
        size_t clen = 0;
        for (size_t e = 0; e < cat->count; e++) {
            const struct kb_lo3_element *el = &msg->elements[cat->first + e];
            if (el->len > 999)
                return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                                  "category %02u element %04u: %zu bytes exceed 999", cat->nummer,
                                  el->nummer, el->len);
            if (el->nummer > 9999)
                return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                                  "category %02u: element number %u exceeds 4 digits",
                                  cat->nummer, el->nummer);
            clen += 7 + el->len;
        }
        if (clen > 999)
            return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                              "category %02u: %zu bytes exceed 999", cat->nummer, clen);
        sum += 5 + clen;
    }
    if (sum > 99999)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size, "body %zu: %zu bytes exceed 99999",
                          b, sum);
    *total = sum;
    return KB_OK;
}

/* Size of header field @p f holding @p h on the wire; checks its shape. */
static kb_err_t header_size(const struct field_def *f, const struct kb_lo3_header_field *h,
                            size_t *size, char *errstr, size_t errstr_size)
{
    size_t n;
    switch (f->kind) {
    case F_N:
    case F_AN:
        if (h->len != f->width)
            return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                              "header field %s: %zu bytes, must be %u", f->name, h->len,
                              (unsigned)f->width);
        if (f->kind == F_N && !all_digits(h->value, h->len))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "header field %s: must be %u digits", f->name, (unsigned)f->width);
        *size = h->len;
        return KB_OK;
    case F_RUBRIEKEN:
        if (h->len < 3 || !digits(h->value, 3, &n) || h->len != 3 + 6 * n ||
            !all_digits(h->value, h->len))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "header field %s: must be a 3-digit count and 6 digits per rubriek",
                              f->name);
        *size = h->len;
        return KB_OK;
    case F_VRIJE_TEKST:
        if (h->len > 99999)
            return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                              "header field %s: %zu bytes exceed 99999", f->name, h->len);
        *size = 5 + h->len;
        return KB_OK;
    case F_REST:
        if (h->len == 0)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "header field %s is empty",
                              f->name);
        *size = h->len;
        return KB_OK;
    default:
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "internal: bad field table");
    }
}

kb_err_t kb_lo3_format(const struct kb_lo3_message *msg, uint8_t **out, size_t *len,
                       char *errstr, size_t errstr_size)
{
    *out = NULL;
    *len = 0;
    if (memcmp(msg->type, "Null", 5) == 0 && msg->random_key[0] == '\0') {
        /* the zero-byte processing confirmation (a "rrrrrrrrNull" with a
         * random key is written out like any other kind) */
        if (msg->n_header || msg->n_categories || msg->n_bodies)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "a Null message has no header and no body");
        return KB_OK;
    }
    const struct kind_def *kind = find_kind((const uint8_t *)msg->type);
    if (!kind || strlen(msg->type) != 4)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "unknown berichtnummer");
    if (strlen(msg->random_key) != 8 || !all_digits((const uint8_t *)msg->random_key, 8))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "random key must be 8 digits");

    size_t nf = 0, size = 12;
    for (; nf < MAX_KIND_FIELDS && kind->fields[nf].kind != F_END; nf++) {
        const struct field_def *f = &kind->fields[nf];
        if (nf >= msg->n_header || strcmp(msg->header[nf].name, f->name) != 0)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "%s: header field %s missing or out of order", kind->type,
                              f->name);
        size_t fs = 0;
        kb_err_t err = header_size(f, &msg->header[nf], &fs, errstr, errstr_size);
        if (err)
            return err;
        size += fs;
    }
    if (msg->n_header != nf)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "%s: %zu header fields given, the kind has %zu", kind->type,
                          msg->n_header, nf);
    size_t bodies = msg->n_bodies;
    switch (kind->body) {
    case BODY_NONE:
        if (bodies)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s has no body",
                              kind->type);
        break;
    case BODY_OPTIONAL:
        if (bodies > 1)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s has at most one body",
                              kind->type);
        break;
    case BODY_PL:
        if (bodies != 1)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s needs exactly one body",
                              kind->type);
        break;
    case BODY_SET:
        if (bodies < 1)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s needs one or more bodies",
                              kind->type);
        break;
    }
    for (size_t c = 0; c < msg->n_categories; c++)
        if (msg->categories[c].body >= bodies)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "category %zu belongs to no body", c);
    for (size_t b = 0; b < bodies; b++) {
        size_t total;
        kb_err_t err = body_size(msg, b, &total, errstr, errstr_size);
        if (err)
            return err;
        size += 5 + total;
    }
    if (size > MAX_MESSAGE)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "message of %zu bytes exceeds the limit of %u bytes", size,
                          MAX_MESSAGE);

    uint8_t *buf = malloc(size);
    if (!buf)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory for %zu bytes",
                          size);
    uint8_t *p = buf;
    memcpy(p, msg->random_key, 8);
    memcpy(p + 8, kind->type, 4);
    p += 12;
    for (size_t i = 0; i < nf; i++) {
        const struct kb_lo3_header_field *h = &msg->header[i];
        if (kind->fields[i].kind == F_VRIJE_TEKST) {
            put_digits(p, 5, h->len);
            p += 5;
        }
        if (h->len)
            memcpy(p, h->value, h->len);
        p += h->len;
    }
    for (size_t b = 0; b < bodies; b++) {
        size_t total = 0;
        body_size(msg, b, &total, NULL, 0);
        put_digits(p, 5, total);
        p += 5;
        for (size_t c = 0; c < msg->n_categories; c++) {
            const struct kb_lo3_category *cat = &msg->categories[c];
            if (cat->body != b)
                continue;
            size_t clen = 0;
            for (size_t e = 0; e < cat->count; e++)
                clen += 7 + msg->elements[cat->first + e].len;
            put_digits(p, 2, cat->nummer);
            put_digits(p + 2, 3, clen);
            p += 5;
            for (size_t e = 0; e < cat->count; e++) {
                const struct kb_lo3_element *el = &msg->elements[cat->first + e];
                put_digits(p, 4, el->nummer);
                put_digits(p + 4, 3, el->len);
                if (el->len)
                    memcpy(p + 7, el->value, el->len);
                p += 7 + el->len;
            }
        }
    }
    *out = buf;
    *len = size;
    return KB_OK;
}

int kb_lo3_kind_layout(const char *type, const char **names, enum kb_lo3_field_kind *kinds_out,
                       unsigned *widths, int *body_mode)
{
    if (!type || strlen(type) != 4)
        return -1;
    const struct kind_def *kind = find_kind((const uint8_t *)type);
    if (!kind)
        return -1;
    int n = 0;
    for (; n < MAX_KIND_FIELDS && kind->fields[n].kind != F_END; n++) {
        const struct field_def *f = &kind->fields[n];
        names[n] = f->name;
        widths[n] = f->width;
        kinds_out[n] = f->kind == F_N           ? KB_LO3_FIELD_N
                       : f->kind == F_AN        ? KB_LO3_FIELD_AN
                       : f->kind == F_RUBRIEKEN ? KB_LO3_FIELD_RUBRIEKEN
                       : f->kind == F_VRIJE_TEKST ? KB_LO3_FIELD_TEXT
                                                  : KB_LO3_FIELD_REST;
    }
    *body_mode = kind->body == BODY_NONE       ? 0
                 : kind->body == BODY_PL       ? 1
                 : kind->body == BODY_OPTIONAL ? 2
                                               : 3;
    return n;
}
