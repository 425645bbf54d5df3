/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * akw.c - render and parse the AKW records (ketenbus's own design, see
 * README.md): the 160-byte AKW01 invitation and the AKW02 application with
 * its per-child repeating group. Per-field checks (digits, BSN 11-proef,
 * calendar and GBA partial dates, IBAN mod-97), UTF-8 names folded to the
 * record's ASCII. Error texts name field and column but never carry a value:
 * every value here is personal data.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "akw.h"
#include "ketenbus/check.h"

/*
 * Layout, columns 1-based as in protocols.md. Each column is derived from the
 * one before, and the static asserts pin them to the documented positions, so
 * the widths provably add up to KB_AKW01_LEN.
 */
enum {
    RECORDTYPE_COL = 1,
    RECORDTYPE_LEN = 5,
    KENMERK_COL = RECORDTYPE_COL + RECORDTYPE_LEN,
    KENMERK_LEN = 12,
    AANMAAK_COL = KENMERK_COL + KENMERK_LEN,
    AANMAAK_LEN = 8,
    BSN_OUDER_COL = AANMAAK_COL + AANMAAK_LEN,
    BSN_OUDER_LEN = 9,
    BSN_KIND_COL = BSN_OUDER_COL + BSN_OUDER_LEN,
    BSN_KIND_LEN = 9,
    GEBOORTE_COL = BSN_KIND_COL + BSN_KIND_LEN,
    GEBOORTE_LEN = 8,
    GEMEENTE_COL = GEBOORTE_COL + GEBOORTE_LEN,
    GEMEENTE_LEN = 4,
    KANAAL_COL = GEMEENTE_COL + GEMEENTE_LEN,
    KANAAL_LEN = 1,
    REACTIE_COL = KANAAL_COL + KANAAL_LEN,
    REACTIE_LEN = 8,
    /* bron A-nummer: 12 wide, the 10-digit A-nummer zero-padded on the left */
    ANUMMER_FIELD_COL = REACTIE_COL + REACTIE_LEN,
    ANUMMER_FIELD_LEN = 12,
    ANUMMER_LEN = 10,
    ANUMMER_PAD_LEN = ANUMMER_FIELD_LEN - ANUMMER_LEN,
    ANUMMER_COL = ANUMMER_FIELD_COL + ANUMMER_PAD_LEN,
    /* bron bericht: berichttype 4 + ontvangstdatum 8, as in protocols.md §2.3 */
    BRON_FIELD_COL = ANUMMER_FIELD_COL + ANUMMER_FIELD_LEN,
    BERICHTTYPE_COL = BRON_FIELD_COL,
    BERICHTTYPE_LEN = 4,
    ONTVANGST_COL = BERICHTTYPE_COL + BERICHTTYPE_LEN,
    ONTVANGST_LEN = 8,
    /* ketenbus's extension: what §2.3 left as 8 bytes of filler now says how
     * SVB handles the child, then the partner's BSN takes 9 of the name's 64 */
    VERWERKING_COL = ONTVANGST_COL + ONTVANGST_LEN,
    VERWERKING_LEN = 1,
    BUITENLAND_COL = VERWERKING_COL + VERWERKING_LEN,
    BUITENLAND_LEN = 1,
    LAND_COL = BUITENLAND_COL + BUITENLAND_LEN,
    LAND_LEN = 4,
    FILLER_COL = LAND_COL + LAND_LEN,
    FILLER_LEN = 2,
    PARTNER_COL = FILLER_COL + FILLER_LEN,
    PARTNER_LEN = 9,
    NAAM_COL = PARTNER_COL + PARTNER_LEN,
    NAAM_LEN = 55,
};

_Static_assert(KENMERK_COL == 6, "kenmerk starts at column 6");
_Static_assert(AANMAAK_COL == 18, "datum aanmaak starts at column 18");
_Static_assert(BSN_OUDER_COL == 26, "BSN ouder starts at column 26");
_Static_assert(BSN_KIND_COL == 35, "BSN kind starts at column 35");
_Static_assert(GEBOORTE_COL == 44, "geboortedatum kind starts at column 44");
_Static_assert(GEMEENTE_COL == 52, "gemeente starts at column 52");
_Static_assert(KANAAL_COL == 56, "kanaal is column 56");
_Static_assert(REACTIE_COL == 57, "uiterste reactiedatum starts at column 57");
_Static_assert(ANUMMER_FIELD_COL == 65, "bron A-nummer starts at column 65");
_Static_assert(BRON_FIELD_COL == 77, "bron bericht starts at column 77");
_Static_assert(VERWERKING_COL == 89, "verwerking is column 89");
_Static_assert(LAND_COL == 91, "geboorteland starts at column 91");
_Static_assert(PARTNER_COL == 97, "BSN partner starts at column 97");
_Static_assert(NAAM_COL == 106, "naam starts at column 106");
_Static_assert(NAAM_COL + NAAM_LEN - 1 == KB_AKW01_LEN, "the fields fill exactly 160 bytes");

/* What a fixed-width field must hold, beyond its width. */
enum field_kind {
    KIND_DIGITS,      /* digits only */
    KIND_BSN,         /* 9 digits passing the 11-proef */
    KIND_DATE,        /* JJJJMMDD, a real calendar date */
    KIND_GBA_DATE,    /* JJJJMMDD, month and/or day may be 00 (GBA partial date) */
    KIND_BERICHTTYPE, /* LO3 message type: upper, lower, digit, digit (Gv01) */
};

/* One field that is copied 1:1 between struct kb_akw01 and the line. */
struct field_desc {
    const char *name;     /* as in struct kb_akw01, used in error texts */
    size_t offset;        /* offsetof the char array in struct kb_akw01 */
    size_t size;          /* sizeof that array (width + NUL) */
    int col;              /* 1-based column of the value in the line */
    int len;              /* width in the line == strlen in the struct */
    enum field_kind kind; /* what the value must look like */
};

/* name, offset and size of member @p m of struct kb_akw01, for struct field_desc */
#define MEMBER(m) #m, offsetof(struct kb_akw01, m), sizeof(((struct kb_akw01 *)0)->m)

static const struct field_desc copied_fields[] = {
    {MEMBER(kenmerk), KENMERK_COL, KENMERK_LEN, KIND_DIGITS},
    {MEMBER(datum_aanmaak), AANMAAK_COL, AANMAAK_LEN, KIND_DATE},
    {MEMBER(bsn_ouder), BSN_OUDER_COL, BSN_OUDER_LEN, KIND_BSN},
    {MEMBER(bsn_kind), BSN_KIND_COL, BSN_KIND_LEN, KIND_BSN},
    {MEMBER(geboortedatum_kind), GEBOORTE_COL, GEBOORTE_LEN, KIND_GBA_DATE},
    {MEMBER(gemeente_kind), GEMEENTE_COL, GEMEENTE_LEN, KIND_DIGITS},
    {MEMBER(uiterste_reactiedatum), REACTIE_COL, REACTIE_LEN, KIND_DATE},
    {MEMBER(bron_anummer), ANUMMER_COL, ANUMMER_LEN, KIND_DIGITS},
    {MEMBER(bron_berichttype), BERICHTTYPE_COL, BERICHTTYPE_LEN, KIND_BERICHTTYPE},
    {MEMBER(bron_ontvangstdatum), ONTVANGST_COL, ONTVANGST_LEN, KIND_DATE},
    {MEMBER(geboorteland), LAND_COL, LAND_LEN, KIND_DIGITS},
};

#define N_COPIED_FIELDS (sizeof(copied_fields) / sizeof(copied_fields[0]))

/* The one shape of every field error; @p why must not contain the value. */
static kb_err_t field_error(char *errstr, size_t errstr_size, const char *field, int col, int len,
                            const char *why)
{
    return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "AKW01 %s (col %d-%d): %s", field, col,
                      col + len - 1, why);
}

/* strnlen() without needing POSIX: length of @p s, at most @p max. */
static size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

/* Value of @p n digits at @p p; the caller has checked they are digits. */
static int digits_value(const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

static void put_digits(char *p, size_t n, int v)
{
    for (size_t i = n; i-- > 0; v /= 10)
        p[i] = (char)('0' + v % 10);
}

/* NULL when @p p (exactly @p n bytes) is a valid value of @p kind, else why not. */
static const char *check_value(enum field_kind kind, const char *p, size_t n)
{
    switch (kind) {
    case KIND_DIGITS: return kb_check_digits(p, n) ? NULL : "must be digits only";
    case KIND_BSN:
        if (!kb_check_digits(p, n))
            return "must be 9 digits";
        return kb_check_bsn(p, n) ? NULL : "fails the BSN 11-proef";
    case KIND_DATE:
        if (!kb_check_digits(p, n))
            return "must be a date JJJJMMDD (8 digits)";
        return kb_check_date(p, n) ? NULL : "is not a calendar date";
    case KIND_GBA_DATE:
        if (!kb_check_digits(p, n))
            return "must be a date JJJJMMDD (8 digits)";
        return kb_check_gba_date(p, n) ? NULL : "is not a calendar date";
    case KIND_BERICHTTYPE:
        if (p[0] >= 'A' && p[0] <= 'Z' && p[1] >= 'a' && p[1] <= 'z' && kb_check_digits(p + 2, 2))
            return NULL;
        return "must be a GBA message type such as Gv01";
    }
    return "unknown field kind";
}

/*
 * ASCII folding of U+00C0..U+017F (Latin-1 Supplement letters and Latin
 * Extended-A); NULL where there is no letter to fold to (the multiplication
 * and division signs). U+0080..U+00BF are controls, symbols and punctuation:
 * not folded.
 */
#define FOLD_FIRST 0xC0
#define FOLD_LAST  0x17F

/* clang-format off */
static const char *const fold_latin[FOLD_LAST - FOLD_FIRST + 1] = {
    "A", "A", "A", "A", "A", "A", "AE", "C", /* U+00C0 ÀÁÂÃÄÅÆÇ */
    "E", "E", "E", "E", "I", "I", "I", "I", /* U+00C8 ÈÉÊËÌÍÎÏ */
    "D", "N", "O", "O", "O", "O", "O", NULL, /* U+00D0 ÐÑÒÓÔÕÖ× */
    "O", "U", "U", "U", "U", "Y", "TH", "ss", /* U+00D8 ØÙÚÛÜÝÞß */
    "a", "a", "a", "a", "a", "a", "ae", "c", /* U+00E0 àáâãäåæç */
    "e", "e", "e", "e", "i", "i", "i", "i", /* U+00E8 èéêëìíîï */
    "d", "n", "o", "o", "o", "o", "o", NULL, /* U+00F0 ðñòóôõö÷ */
    "o", "u", "u", "u", "u", "y", "th", "y", /* U+00F8 øùúûüýþÿ */
    "A", "a", "A", "a", "A", "a", "C", "c", /* U+0100 ĀāĂăĄąĆć */
    "C", "c", "C", "c", "C", "c", "D", "d", /* U+0108 ĈĉĊċČčĎď */
    "D", "d", "E", "e", "E", "e", "E", "e", /* U+0110 ĐđĒēĔĕĖė */
    "E", "e", "E", "e", "G", "g", "G", "g", /* U+0118 ĘęĚěĜĝĞğ */
    "G", "g", "G", "g", "H", "h", "H", "h", /* U+0120 ĠġĢģĤĥĦħ */
    "I", "i", "I", "i", "I", "i", "I", "i", /* U+0128 ĨĩĪīĬĭĮį */
    "I", "i", "IJ", "ij", "J", "j", "K", "k", /* U+0130 İıĲĳĴĵĶķ */
    "k", "L", "l", "L", "l", "L", "l", "L", /* U+0138 ĸĹĺĻļĽľĿ */
    "l", "L", "l", "N", "n", "N", "n", "N", /* U+0140 ŀŁłŃńŅņŇ */
    "n", "'n", "N", "n", "O", "o", "O", "o", /* U+0148 ňŉŊŋŌōŎŏ */
    "O", "o", "OE", "oe", "R", "r", "R", "r", /* U+0150 ŐőŒœŔŕŖŗ */
    "R", "r", "S", "s", "S", "s", "S", "s", /* U+0158 ŘřŚśŜŝŞş */
    "S", "s", "T", "t", "T", "t", "T", "t", /* U+0160 ŠšŢţŤťŦŧ */
    "U", "u", "U", "u", "U", "u", "U", "u", /* U+0168 ŨũŪūŬŭŮů */
    "U", "u", "U", "u", "W", "w", "Y", "y", /* U+0170 ŰűŲųŴŵŶŷ */
    "Y", "Z", "z", "Z", "z", "Z", "z", "s", /* U+0178 ŸŹźŻżŽžſ */
};
/* clang-format on */

/*
 * Decode one UTF-8 sequence at @p s (@p n bytes available) strictly: no
 * overlong forms, no surrogates, nothing above U+10FFFF. Returns its length
 * and stores the code point, or 0 when the bytes are not valid UTF-8.
 */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t min;
    size_t len;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        min = 0x80;
        *cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        min = 0x800;
        *cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        min = 0x10000;
        *cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return len;
}

/*
 * Fold the UTF-8 name @p in to ASCII in @p out (NAAM_LEN bytes, space-padded).
 * All of @p in is checked, also what falls past the cut at NAAM_LEN bytes.
 * Leading spaces are dropped: the field is left-aligned.
 */
static kb_err_t render_naam(const char *in, size_t in_len, char *out, char *errstr,
                            size_t errstr_size)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, n_out = 0;
    int seen_letter = 0;
    char why[80];

    memset(out, ' ', NAAM_LEN);
    while (i < in_len && s[i] == ' ')
        i++;
    while (i < in_len) {
        uint32_t cp;
        size_t len = utf8_decode(s + i, in_len - i, &cp);
        const char *ascii = NULL;
        char one[2];

        if (len == 0) {
            snprintf(why, sizeof why, "invalid UTF-8 at byte %zu", i + 1);
            return field_error(errstr, errstr_size, "naam", NAAM_COL, NAAM_LEN, why);
        }
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            snprintf(why, sizeof why, "control character at byte %zu", i + 1);
            return field_error(errstr, errstr_size, "naam", NAAM_COL, NAAM_LEN, why);
        }
        if (cp < 0x7F) {
            one[0] = (char)cp;
            one[1] = '\0';
            ascii = one;
        } else if (cp >= FOLD_FIRST && cp <= FOLD_LAST) {
            ascii = fold_latin[cp - FOLD_FIRST];
        }
        if (!ascii) {
            snprintf(why, sizeof why, "character at byte %zu cannot be folded to ASCII", i + 1);
            return field_error(errstr, errstr_size, "naam", NAAM_COL, NAAM_LEN, why);
        }
        if (cp != ' ')
            seen_letter = 1;
        for (; *ascii && n_out < NAAM_LEN; ascii++)
            out[n_out++] = *ascii;
        i += len;
    }
    if (!seen_letter)
        return field_error(errstr, errstr_size, "naam", NAAM_COL, NAAM_LEN, "is empty");
    return KB_OK;
}

char kb_akw_buitenland(const char *land)
{
    if (!land || !land[0] || !strcmp(land, KB_AKW_LAND_ONBEKEND))
        return 'O';
    return strcmp(land, KB_AKW_LAND_NEDERLAND) ? 'J' : 'N';
}

/*
 * The columns ketenbus added (89-105) must agree with each other: the
 * buitenland flag is a function of geboorteland, only a child born in the
 * Netherlands is handled automatically (protocols.md §2.1: abroad needs the
 * parents' own report), and the partner is not the addressee.
 * @p partner points at 9 bytes: digits, or all spaces for "no partner".
 */
static kb_err_t check_extension(const struct kb_akw01 *rec, const char *partner, char *errstr,
                                size_t errstr_size)
{
    if (rec->verwerking != 'U' && rec->verwerking != 'A')
        return field_error(errstr, errstr_size, "verwerking", VERWERKING_COL, VERWERKING_LEN,
                           "must be U (uitnodiging) or A (automatisch)");
    if (rec->buitenland != 'N' && rec->buitenland != 'J' && rec->buitenland != 'O')
        return field_error(errstr, errstr_size, "buitenland", BUITENLAND_COL, BUITENLAND_LEN,
                           "must be N, J or O");
    if (rec->buitenland != kb_akw_buitenland(rec->geboorteland))
        return field_error(errstr, errstr_size, "buitenland", BUITENLAND_COL, BUITENLAND_LEN,
                           "does not match geboorteland (N: 6030, O: 0000, J: any other)");
    if (rec->verwerking == 'A' && rec->buitenland != 'N')
        return field_error(errstr, errstr_size, "verwerking", VERWERKING_COL, VERWERKING_LEN,
                           "A (automatisch) only for a child born in the Netherlands");
    if (memcmp(partner, "         ", PARTNER_LEN) == 0)
        return KB_OK;
    const char *why = check_value(KIND_BSN, partner, PARTNER_LEN);
    if (why)
        return field_error(errstr, errstr_size, "bsn_partner", PARTNER_COL, PARTNER_LEN, why);
    if (memcmp(partner, rec->bsn_ouder, PARTNER_LEN) == 0)
        return field_error(errstr, errstr_size, "bsn_partner", PARTNER_COL, PARTNER_LEN,
                           "must differ from bsn_ouder");
    return KB_OK;
}

kb_err_t kb_akw01_render(const struct kb_akw01 *rec, char *out, char *errstr, size_t errstr_size)
{
    char line[KB_AKW01_LEN];
    size_t naam_len;
    kb_err_t err;

    if (!rec || !out)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "AKW01: no record or buffer");
    out[0] = '\0';
    memset(line, ' ', sizeof line);
    memcpy(line + RECORDTYPE_COL - 1, "AKW01", RECORDTYPE_LEN);

    for (size_t f = 0; f < N_COPIED_FIELDS; f++) {
        const struct field_desc *fd = &copied_fields[f];
        const char *value = (const char *)rec + fd->offset;
        const char *why;

        if (bounded_len(value, fd->size) != (size_t)fd->len) {
            char width[48];
            snprintf(width, sizeof width, "must be exactly %d characters", fd->len);
            return field_error(errstr, errstr_size, fd->name, fd->col, fd->len, width);
        }
        why = check_value(fd->kind, value, (size_t)fd->len);
        if (why)
            return field_error(errstr, errstr_size, fd->name, fd->col, fd->len, why);
        memcpy(line + fd->col - 1, value, (size_t)fd->len);
    }
    memset(line + ANUMMER_FIELD_COL - 1, '0', ANUMMER_PAD_LEN);

    if (rec->kanaal != 'D' && rec->kanaal != 'P')
        return field_error(errstr, errstr_size, "kanaal", KANAAL_COL, KANAAL_LEN,
                           "must be D (digitaal) or P (papier)");
    line[KANAAL_COL - 1] = rec->kanaal;

    size_t partner_len = bounded_len(rec->bsn_partner, sizeof rec->bsn_partner);
    if (partner_len != 0 && partner_len != PARTNER_LEN)
        return field_error(errstr, errstr_size, "bsn_partner", PARTNER_COL, PARTNER_LEN,
                           "must be 9 digits or empty");
    if (partner_len)
        memcpy(line + PARTNER_COL - 1, rec->bsn_partner, PARTNER_LEN);
    err = check_extension(rec, line + PARTNER_COL - 1, errstr, errstr_size);
    if (err)
        return err;
    line[VERWERKING_COL - 1] = rec->verwerking;
    line[BUITENLAND_COL - 1] = rec->buitenland;

    naam_len = bounded_len(rec->naam, sizeof rec->naam);
    if (naam_len == sizeof rec->naam)
        return field_error(errstr, errstr_size, "naam", NAAM_COL, NAAM_LEN,
                           "is not NUL-terminated within 128 bytes");
    err = render_naam(rec->naam, naam_len, line + NAAM_COL - 1, errstr, errstr_size);
    if (err)
        return err;

    memcpy(out, line, KB_AKW01_LEN);
    out[KB_AKW01_LEN] = '\0';
    return KB_OK;
}

kb_err_t kb_akw01_parse(const char *line, size_t len, struct kb_akw01 *rec, char *errstr,
                        size_t errstr_size)
{
    const char *naam;
    size_t naam_len;

    if (!line || !rec)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "AKW01: no line or record");
    if (len == KB_AKW01_LEN + 1 && line[KB_AKW01_LEN] == '\n')
        len = KB_AKW01_LEN;
    else if (len == KB_AKW01_LEN + 2 && line[KB_AKW01_LEN] == '\r' &&
             line[KB_AKW01_LEN + 1] == '\n')
        len = KB_AKW01_LEN;
    if (len != KB_AKW01_LEN)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "AKW01 line: %zu bytes, expected %d (plus an optional newline)", len,
                          KB_AKW01_LEN);
    memset(rec, 0, sizeof *rec);

    if (memcmp(line + RECORDTYPE_COL - 1, "AKW01", RECORDTYPE_LEN) != 0)
        return field_error(errstr, errstr_size, "recordtype", RECORDTYPE_COL, RECORDTYPE_LEN,
                           "must be AKW01");

    for (size_t f = 0; f < N_COPIED_FIELDS; f++) {
        const struct field_desc *fd = &copied_fields[f];
        const char *value = line + fd->col - 1;
        const char *why = check_value(fd->kind, value, (size_t)fd->len);
        char *dst = (char *)rec + fd->offset;

        if (why)
            return field_error(errstr, errstr_size, fd->name, fd->col, fd->len, why);
        memcpy(dst, value, (size_t)fd->len);
        dst[fd->len] = '\0';
    }
    if (memcmp(line + ANUMMER_FIELD_COL - 1, "00", ANUMMER_PAD_LEN) != 0)
        return field_error(errstr, errstr_size, "bron_anummer", ANUMMER_FIELD_COL, ANUMMER_PAD_LEN,
                           "A-nummer must be zero-padded to 12 digits");
    for (int i = 0; i < FILLER_LEN; i++) {
        if (line[FILLER_COL - 1 + i] != ' ')
            return field_error(errstr, errstr_size, "filler", FILLER_COL, FILLER_LEN,
                               "must be spaces");
    }

    rec->kanaal = line[KANAAL_COL - 1];
    if (rec->kanaal != 'D' && rec->kanaal != 'P')
        return field_error(errstr, errstr_size, "kanaal", KANAAL_COL, KANAAL_LEN,
                           "must be D (digitaal) or P (papier)");
    rec->verwerking = line[VERWERKING_COL - 1];
    rec->buitenland = line[BUITENLAND_COL - 1];
    kb_err_t err = check_extension(rec, line + PARTNER_COL - 1, errstr, errstr_size);
    if (err)
        return err;
    if (line[PARTNER_COL - 1] != ' ') {
        memcpy(rec->bsn_partner, line + PARTNER_COL - 1, PARTNER_LEN);
        rec->bsn_partner[PARTNER_LEN] = '\0';
    }

    /* naam: printable ASCII only (render folds everything else), left-aligned, not empty */
    naam = line + NAAM_COL - 1;
    for (int i = 0; i < NAAM_LEN; i++) {
        if (naam[i] < 0x20 || naam[i] > 0x7E) {
            char why[64];
            snprintf(why, sizeof why, "non-printable or non-ASCII byte at byte %d", i + 1);
            return field_error(errstr, errstr_size, "naam", NAAM_COL, NAAM_LEN, why);
        }
    }
    naam_len = NAAM_LEN;
    while (naam_len > 0 && naam[naam_len - 1] == ' ')
        naam_len--;
    if (naam_len == 0)
        return field_error(errstr, errstr_size, "naam", NAAM_COL, NAAM_LEN, "is empty");
    if (naam[0] == ' ')
        return field_error(errstr, errstr_size, "naam", NAAM_COL, NAAM_LEN, "must be left-aligned");
    memcpy(rec->naam, naam, naam_len);
    rec->naam[naam_len] = '\0';
    return KB_OK;
}

kb_err_t kb_akw_date_add_months(const char *date, int months, char out[9])
{
    long long total;
    int year, month, day, last;

    if (!date || !out || bounded_len(date, 9) != 8 || check_value(KIND_DATE, date, 8))
        return KB_ERR_INVALID;
    year = digits_value(date, 4);
    month = digits_value(date + 4, 2);
    day = digits_value(date + 6, 2);

    /* months since year 0, floor-divided so negative offsets work too */
    total = (long long)year * 12 + (month - 1) + months;
    if (total < 12 || total > 9999LL * 12 + 11)
        return KB_ERR_RANGE;
    year = (int)(total / 12);
    month = (int)(total % 12) + 1;
    last = kb_days_in_month(year, month);
    if (day > last)
        day = last;

    put_digits(out, 4, year);
    put_digits(out + 4, 2, month);
    put_digits(out + 6, 2, day);
    out[8] = '\0';
    return KB_OK;
}

/* ---- AKW02 ---------------------------------------------------------------- */

/*
 * AKW02 columns (1-based). The fixed part before the repeating group is 45
 * bytes, each child 11, the trailer 23: a record with n children is exactly
 * 68 + 11 n bytes, which is the length check.
 */
enum {
    A2_TYPE_COL = 1,
    A2_TYPE_LEN = 5,
    A2_KENMERK_COL = A2_TYPE_COL + A2_TYPE_LEN,
    A2_KENMERK_LEN = 12,
    A2_DATUM_COL = A2_KENMERK_COL + A2_KENMERK_LEN,
    A2_DATUM_LEN = 8,
    A2_AANVRAGER_COL = A2_DATUM_COL + A2_DATUM_LEN,
    A2_PARTNER_COL = A2_AANVRAGER_COL + 9,
    A2_AANTAL_COL = A2_PARTNER_COL + 9,
    A2_AANTAL_LEN = 2,
    A2_GROUP_COL = A2_AANTAL_COL + A2_AANTAL_LEN,
    /* after the group, relative to its end */
    A2_IBAN_LEN = 18,
    A2_KWARTAAL_LEN = 5,
};

_Static_assert(A2_AANVRAGER_COL == 26, "BSN aanvrager starts at column 26");
_Static_assert(A2_GROUP_COL == 46, "the repeating group starts at column 46");
_Static_assert(A2_GROUP_COL - 1 + A2_IBAN_LEN + A2_KWARTAAL_LEN == KB_AKW02_FIXED_LEN,
               "fixed part is 68 bytes");
_Static_assert(KB_AKW02_CHILD_LEN == 9 + 1 + 1, "a child is BSN, relatie, inwonend");

const char *kb_akw02_rule_name(enum kb_akw02_rule rule)
{
    switch (rule) {
    case KB_AKW02_OK: return "ok";
    case KB_AKW02_LENGTH: return "akw02-length";
    case KB_AKW02_RECORDTYPE: return "akw02-recordtype";
    case KB_AKW02_BSN: return "akw02-bsn";
    case KB_AKW02_IBAN: return "akw02-iban";
    case KB_AKW02_DATE: return "akw02-date";
    case KB_AKW02_FIELD: return "akw02-field";
    }
    return "akw02-unknown";
}

/* The one shape of every AKW02 field error; @p why never contains the value. */
static enum kb_akw02_rule a2_error(enum kb_akw02_rule rule, char *errstr, size_t errstr_size,
                                   const char *field, int col, int len, const char *why)
{
    kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "AKW02 %s (col %d-%d): %s", field, col,
               col + len - 1, why);
    return rule;
}

int kb_akw_iban_check(const char *iban, size_t len)
{
    unsigned rem = 0;

    if (len < 15 || len > 34)
        return 0;
    if (iban[0] < 'A' || iban[0] > 'Z' || iban[1] < 'A' || iban[1] > 'Z' ||
        !kb_check_digits(iban + 2, 2))
        return 0;
    /* ISO 13616: move the first four characters to the end, letters A=10 .. Z=35,
     * the number mod 97 must be 1. Computed digit by digit, never overflowing. */
    for (size_t k = 0; k < len; k++) {
        char c = iban[(k + 4) % len];
        if (c >= '0' && c <= '9')
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else if (c >= 'A' && c <= 'Z')
            rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
        else
            return 0;
    }
    return rem == 1;
}

/* Check one record's fields in @p line (length already verified) into @p rec. */
static enum kb_akw02_rule a2_fields(const char *line, int n, struct kb_akw02 *rec, char *errstr,
                                    size_t errstr_size)
{
    const char *p;
    const char *why;
    char col_name[40];

    p = line + A2_KENMERK_COL - 1;
    if (!kb_check_digits(p, A2_KENMERK_LEN))
        return a2_error(KB_AKW02_FIELD, errstr, errstr_size, "kenmerk_uitnodiging",
                        A2_KENMERK_COL, A2_KENMERK_LEN, "must be 12 digits");
    memcpy(rec->kenmerk_uitnodiging, p, A2_KENMERK_LEN);

    p = line + A2_DATUM_COL - 1;
    why = check_value(KIND_DATE, p, A2_DATUM_LEN);
    if (why)
        return a2_error(KB_AKW02_DATE, errstr, errstr_size, "datum_aanvraag", A2_DATUM_COL,
                        A2_DATUM_LEN, why);
    memcpy(rec->datum_aanvraag, p, A2_DATUM_LEN);

    p = line + A2_AANVRAGER_COL - 1;
    why = check_value(KIND_BSN, p, 9);
    if (why)
        return a2_error(KB_AKW02_BSN, errstr, errstr_size, "bsn_aanvrager", A2_AANVRAGER_COL, 9,
                        why);
    memcpy(rec->bsn_aanvrager, p, 9);

    p = line + A2_PARTNER_COL - 1;
    if (memcmp(p, "         ", 9) != 0) {
        why = check_value(KIND_BSN, p, 9);
        if (!why && !memcmp(p, rec->bsn_aanvrager, 9))
            why = "must differ from bsn_aanvrager";
        if (why)
            return a2_error(KB_AKW02_BSN, errstr, errstr_size, "bsn_partner", A2_PARTNER_COL, 9,
                            why);
        memcpy(rec->bsn_partner, p, 9);
    }

    rec->aantal_kinderen = n;
    for (int i = 0; i < n; i++) {
        int col = A2_GROUP_COL + i * KB_AKW02_CHILD_LEN;
        struct kb_akw02_kind *k = &rec->kinderen[i];

        p = line + col - 1;
        snprintf(col_name, sizeof col_name, "kind[%d].bsn", i + 1);
        why = check_value(KIND_BSN, p, 9);
        for (int j = 0; !why && j < i; j++) {
            if (!memcmp(p, rec->kinderen[j].bsn, 9))
                why = "repeats an earlier child";
        }
        if (!why && (!memcmp(p, rec->bsn_aanvrager, 9) || !memcmp(p, rec->bsn_partner, 9)))
            why = "is the BSN of a parent";
        if (why)
            return a2_error(KB_AKW02_BSN, errstr, errstr_size, col_name, col, 9, why);
        memcpy(k->bsn, p, 9);
        k->relatie = p[9];
        if (k->relatie != 'E' && k->relatie != 'A' && k->relatie != 'P') {
            snprintf(col_name, sizeof col_name, "kind[%d].relatie", i + 1);
            return a2_error(KB_AKW02_FIELD, errstr, errstr_size, col_name, col + 9, 1,
                            "must be E (eigen), A (aangehuwd) or P (pleeg)");
        }
        k->inwonend = p[10];
        if (k->inwonend != 'J' && k->inwonend != 'N') {
            snprintf(col_name, sizeof col_name, "kind[%d].inwonend", i + 1);
            return a2_error(KB_AKW02_FIELD, errstr, errstr_size, col_name, col + 10, 1,
                            "must be J or N");
        }
    }

    int iban_col = A2_GROUP_COL + n * KB_AKW02_CHILD_LEN;
    p = line + iban_col - 1;
    size_t iban_len = A2_IBAN_LEN;
    while (iban_len > 0 && p[iban_len - 1] == ' ')
        iban_len--;
    if (iban_len > 0 && p[0] == ' ')
        return a2_error(KB_AKW02_IBAN, errstr, errstr_size, "iban", iban_col, A2_IBAN_LEN,
                        "must be left-aligned");
    if (iban_len < 15)
        return a2_error(KB_AKW02_IBAN, errstr, errstr_size, "iban", iban_col, A2_IBAN_LEN,
                        "must hold an IBAN of 15 to 18 characters");
    for (size_t i = 0; i < iban_len; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')))
            return a2_error(KB_AKW02_IBAN, errstr, errstr_size, "iban", iban_col, A2_IBAN_LEN,
                            "only capital letters and digits, no inner spaces");
    }
    if (!kb_akw_iban_check(p, iban_len))
        return a2_error(KB_AKW02_IBAN, errstr, errstr_size, "iban", iban_col, A2_IBAN_LEN,
                        "check digits wrong (ISO 13616 mod-97)");
    memcpy(rec->iban, p, iban_len);
    rec->iban[iban_len] = '\0';

    int kw_col = iban_col + A2_IBAN_LEN;
    p = line + kw_col - 1;
    if (!kb_check_digits(p, A2_KWARTAAL_LEN) || p[4] < '1' || p[4] > '4' ||
        digits_value(p, 4) < 1963)
        return a2_error(KB_AKW02_DATE, errstr, errstr_size, "ingangskwartaal", kw_col,
                        A2_KWARTAAL_LEN, "must be JJJJK with K 1-4 and JJJJ from 1963 (AKW)");
    memcpy(rec->ingangskwartaal, p, A2_KWARTAAL_LEN);
    return KB_AKW02_OK;
}

enum kb_akw02_rule kb_akw02_parse(const char *line, size_t len, struct kb_akw02 *rec,
                                  char *errstr, size_t errstr_size)
{
    if (!line || !rec) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "AKW02: no line or record");
        return KB_AKW02_FIELD;
    }
    memset(rec, 0, sizeof *rec);
    if (len > 0 && line[len - 1] == '\n') {
        len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
    }
    if (len < A2_TYPE_LEN) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                   "AKW02 record: %zu bytes, too short for a record type", len);
        return KB_AKW02_LENGTH;
    }
    if (memcmp(line, "AKW02", A2_TYPE_LEN) != 0)
        return a2_error(KB_AKW02_RECORDTYPE, errstr, errstr_size, "recordtype", A2_TYPE_COL,
                        A2_TYPE_LEN, "unknown record type, expected AKW02");
    if (len < A2_GROUP_COL - 1) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                   "AKW02 record: %zu bytes, shorter than its %d-byte header", len,
                   A2_GROUP_COL - 1);
        return KB_AKW02_LENGTH;
    }
    const char *p = line + A2_AANTAL_COL - 1;
    int n = kb_check_digits(p, A2_AANTAL_LEN) ? digits_value(p, A2_AANTAL_LEN) : 0;
    if (n < 1)
        return a2_error(KB_AKW02_FIELD, errstr, errstr_size, "aantal_kinderen", A2_AANTAL_COL,
                        A2_AANTAL_LEN, "must be 01-99");
    size_t want = KB_AKW02_FIXED_LEN + (size_t)n * KB_AKW02_CHILD_LEN;
    if (len != want) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                   "AKW02 record: %zu bytes, expected %zu (68 + 11 x %d kinderen)", len, want, n);
        return KB_AKW02_LENGTH;
    }
    return a2_fields(line, n, rec, errstr, errstr_size);
}

enum kb_akw02_rule kb_akw02_render(const struct kb_akw02 *rec, char *out, size_t *out_len,
                                   char *errstr, size_t errstr_size)
{
    char *p = out;
    int n;

    if (!rec || !out || !out_len) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "AKW02: no record or buffer");
        return KB_AKW02_FIELD;
    }
    n = rec->aantal_kinderen;
    if (n < 1 || n > KB_AKW02_MAX_KINDEREN)
        return a2_error(KB_AKW02_FIELD, errstr, errstr_size, "aantal_kinderen", A2_AANTAL_COL,
                        A2_AANTAL_LEN, "must be 01-99");
    if (bounded_len(rec->kenmerk_uitnodiging, 13) != 12 ||
        bounded_len(rec->datum_aanvraag, 9) != 8 || bounded_len(rec->bsn_aanvrager, 10) != 9 ||
        (rec->bsn_partner[0] && bounded_len(rec->bsn_partner, 10) != 9) ||
        bounded_len(rec->iban, 19) > 18 || bounded_len(rec->ingangskwartaal, 6) != 5)
        return a2_error(KB_AKW02_FIELD, errstr, errstr_size, "record", 1, 1,
                        "a field has the wrong width");
    memset(out, ' ', KB_AKW02_FIXED_LEN + (size_t)n * KB_AKW02_CHILD_LEN);
    memcpy(p, "AKW02", 5);
    memcpy(p + A2_KENMERK_COL - 1, rec->kenmerk_uitnodiging, 12);
    memcpy(p + A2_DATUM_COL - 1, rec->datum_aanvraag, 8);
    memcpy(p + A2_AANVRAGER_COL - 1, rec->bsn_aanvrager, 9);
    if (rec->bsn_partner[0])
        memcpy(p + A2_PARTNER_COL - 1, rec->bsn_partner, 9);
    put_digits(p + A2_AANTAL_COL - 1, 2, n);
    for (int i = 0; i < n; i++) {
        char *g = p + A2_GROUP_COL - 1 + i * KB_AKW02_CHILD_LEN;
        if (bounded_len(rec->kinderen[i].bsn, 10) != 9)
            return a2_error(KB_AKW02_FIELD, errstr, errstr_size, "kind.bsn",
                            A2_GROUP_COL + i * KB_AKW02_CHILD_LEN, 9, "must be 9 characters");
        memcpy(g, rec->kinderen[i].bsn, 9);
        g[9] = rec->kinderen[i].relatie;
        g[10] = rec->kinderen[i].inwonend;
    }
    char *t = p + A2_GROUP_COL - 1 + n * KB_AKW02_CHILD_LEN;
    memcpy(t, rec->iban, bounded_len(rec->iban, 19));
    memcpy(t + A2_IBAN_LEN, rec->ingangskwartaal, 5);
    *out_len = KB_AKW02_FIXED_LEN + (size_t)n * KB_AKW02_CHILD_LEN;
    out[*out_len] = '\0';

    /* The parser is the one definition of a valid record. */
    struct kb_akw02 back;
    enum kb_akw02_rule rule = kb_akw02_parse(out, *out_len, &back, errstr, errstr_size);
    if (rule != KB_AKW02_OK)
        out[0] = '\0';
    return rule;
}
