/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * t61.c - the GBA Teletex (ITU T.61 / ISO 6937) repertoire <-> UTF-8. The
 * tables below are the whole character set the LO allows: three controls,
 * the T.61 primary set, single-byte specials and the diacritic + letter pairs.
 *
 * Design notes:
 *  - Every valid Teletex sequence maps to exactly one code point, so
 *    from_utf8(to_utf8(x)) == x. The other direction accepts a few aliases
 *    (U+00D0 for 0xE2, U+03A9 for 0xE0) that have no distinct Teletex form.
 *  - T.61 is not ASCII: 0x23 '#' and 0x24 '$' are not in the primary set (the
 *    signs live at 0xA6 and 0xA4), nor are 0x5C 0x5E 0x60 0x7B 0x7D 0x7E.
 *    RvIG's LO character table and OperatieBRP's GBA character set agree.
 *  - A diacritic byte 0xC1-0xCF only combines with the letters listed in
 *    `combos`; any other pair is an error, never a guess. 0xC9 (old T.61
 *    umlaut) and 0xCC (non-spacing underline) are outside the GBA set.
 *  - Tables are const data: no lazy init, so any thread may call.
 */
#include <string.h>

#include "t61.h"

/* One diacritic + base letter pair and the precomposed letter it spells. */
struct combo {
    uint8_t accent; /* 0xC1..0xCF */
    uint8_t base;   /* ASCII letter */
    uint16_t cp;    /* precomposed Unicode code point */
};

/*
 * The LO repertoire of accented letters (RvIG "Vb01 alle tekens"), which is
 * the ISO 6937 one. Note the T.61 quirk: small g with cedilla is written with
 * the acute (0xC2 'g'), because its cedilla is drawn above the letter.
 */
/* clang-format off */
static const struct combo combos[] = {
    /* 0xC1 grave */
    {0xC1, 'A', 0x00C0}, {0xC1, 'E', 0x00C8}, {0xC1, 'I', 0x00CC}, {0xC1, 'O', 0x00D2},
    {0xC1, 'U', 0x00D9}, {0xC1, 'a', 0x00E0}, {0xC1, 'e', 0x00E8}, {0xC1, 'i', 0x00EC},
    {0xC1, 'o', 0x00F2}, {0xC1, 'u', 0x00F9},
    /* 0xC2 acute */
    {0xC2, 'A', 0x00C1}, {0xC2, 'C', 0x0106}, {0xC2, 'E', 0x00C9}, {0xC2, 'I', 0x00CD},
    {0xC2, 'L', 0x0139}, {0xC2, 'N', 0x0143}, {0xC2, 'O', 0x00D3}, {0xC2, 'R', 0x0154},
    {0xC2, 'S', 0x015A}, {0xC2, 'U', 0x00DA}, {0xC2, 'Y', 0x00DD}, {0xC2, 'Z', 0x0179},
    {0xC2, 'a', 0x00E1}, {0xC2, 'c', 0x0107}, {0xC2, 'e', 0x00E9}, {0xC2, 'g', 0x0123},
    {0xC2, 'i', 0x00ED}, {0xC2, 'l', 0x013A}, {0xC2, 'n', 0x0144}, {0xC2, 'o', 0x00F3},
    {0xC2, 'r', 0x0155}, {0xC2, 's', 0x015B}, {0xC2, 'u', 0x00FA}, {0xC2, 'y', 0x00FD},
    {0xC2, 'z', 0x017A},
    /* 0xC3 circumflex */
    {0xC3, 'A', 0x00C2}, {0xC3, 'C', 0x0108}, {0xC3, 'E', 0x00CA}, {0xC3, 'G', 0x011C},
    {0xC3, 'H', 0x0124}, {0xC3, 'I', 0x00CE}, {0xC3, 'J', 0x0134}, {0xC3, 'O', 0x00D4},
    {0xC3, 'S', 0x015C}, {0xC3, 'U', 0x00DB}, {0xC3, 'W', 0x0174}, {0xC3, 'Y', 0x0176},
    {0xC3, 'a', 0x00E2}, {0xC3, 'c', 0x0109}, {0xC3, 'e', 0x00EA}, {0xC3, 'g', 0x011D},
    {0xC3, 'h', 0x0125}, {0xC3, 'i', 0x00EE}, {0xC3, 'j', 0x0135}, {0xC3, 'o', 0x00F4},
    {0xC3, 's', 0x015D}, {0xC3, 'u', 0x00FB}, {0xC3, 'w', 0x0175}, {0xC3, 'y', 0x0177},
    /* 0xC4 tilde */
    {0xC4, 'A', 0x00C3}, {0xC4, 'I', 0x0128}, {0xC4, 'N', 0x00D1}, {0xC4, 'O', 0x00D5},
    {0xC4, 'U', 0x0168}, {0xC4, 'a', 0x00E3}, {0xC4, 'i', 0x0129}, {0xC4, 'n', 0x00F1},
    {0xC4, 'o', 0x00F5}, {0xC4, 'u', 0x0169},
    /* 0xC5 macron */
    {0xC5, 'A', 0x0100}, {0xC5, 'E', 0x0112}, {0xC5, 'I', 0x012A}, {0xC5, 'O', 0x014C},
    {0xC5, 'U', 0x016A}, {0xC5, 'a', 0x0101}, {0xC5, 'e', 0x0113}, {0xC5, 'i', 0x012B},
    {0xC5, 'o', 0x014D}, {0xC5, 'u', 0x016B},
    /* 0xC6 breve */
    {0xC6, 'A', 0x0102}, {0xC6, 'G', 0x011E}, {0xC6, 'U', 0x016C}, {0xC6, 'a', 0x0103},
    {0xC6, 'g', 0x011F}, {0xC6, 'u', 0x016D},
    /* 0xC7 dot above (small i already has its dot: no pair) */
    {0xC7, 'C', 0x010A}, {0xC7, 'E', 0x0116}, {0xC7, 'G', 0x0120}, {0xC7, 'I', 0x0130},
    {0xC7, 'Z', 0x017B}, {0xC7, 'c', 0x010B}, {0xC7, 'e', 0x0117}, {0xC7, 'g', 0x0121},
    {0xC7, 'z', 0x017C},
    /* 0xC8 diaeresis */
    {0xC8, 'A', 0x00C4}, {0xC8, 'E', 0x00CB}, {0xC8, 'I', 0x00CF}, {0xC8, 'O', 0x00D6},
    {0xC8, 'U', 0x00DC}, {0xC8, 'Y', 0x0178}, {0xC8, 'a', 0x00E4}, {0xC8, 'e', 0x00EB},
    {0xC8, 'i', 0x00EF}, {0xC8, 'o', 0x00F6}, {0xC8, 'u', 0x00FC}, {0xC8, 'y', 0x00FF},
    /* 0xCA ring above */
    {0xCA, 'A', 0x00C5}, {0xCA, 'U', 0x016E}, {0xCA, 'a', 0x00E5}, {0xCA, 'u', 0x016F},
    /* 0xCB cedilla (small g: see 0xC2 'g') */
    {0xCB, 'C', 0x00C7}, {0xCB, 'G', 0x0122}, {0xCB, 'K', 0x0136}, {0xCB, 'L', 0x013B},
    {0xCB, 'N', 0x0145}, {0xCB, 'R', 0x0156}, {0xCB, 'S', 0x015E}, {0xCB, 'T', 0x0162},
    {0xCB, 'c', 0x00E7}, {0xCB, 'k', 0x0137}, {0xCB, 'l', 0x013C}, {0xCB, 'n', 0x0146},
    {0xCB, 'r', 0x0157}, {0xCB, 's', 0x015F}, {0xCB, 't', 0x0163},
    /* 0xCD double acute */
    {0xCD, 'O', 0x0150}, {0xCD, 'U', 0x0170}, {0xCD, 'o', 0x0151}, {0xCD, 'u', 0x0171},
    /* 0xCE ogonek */
    {0xCE, 'A', 0x0104}, {0xCE, 'E', 0x0118}, {0xCE, 'I', 0x012E}, {0xCE, 'U', 0x0172},
    {0xCE, 'a', 0x0105}, {0xCE, 'e', 0x0119}, {0xCE, 'i', 0x012F}, {0xCE, 'u', 0x0173},
    /* 0xCF caron */
    {0xCF, 'C', 0x010C}, {0xCF, 'D', 0x010E}, {0xCF, 'E', 0x011A}, {0xCF, 'L', 0x013D},
    {0xCF, 'N', 0x0147}, {0xCF, 'R', 0x0158}, {0xCF, 'S', 0x0160}, {0xCF, 'T', 0x0164},
    {0xCF, 'Z', 0x017D}, {0xCF, 'c', 0x010D}, {0xCF, 'd', 0x010F}, {0xCF, 'e', 0x011B},
    {0xCF, 'l', 0x013E}, {0xCF, 'n', 0x0148}, {0xCF, 'r', 0x0159}, {0xCF, 's', 0x0161},
    {0xCF, 't', 0x0165}, {0xCF, 'z', 0x017E},
};
/* clang-format on */

/*
 * Code point of each single Teletex byte; 0 = not in the GBA set (0x00 itself
 * is never valid, so 0 is free as the marker). 0xC1-0xCF are prefixes and
 * are handled through `combos`.
 */
/* clang-format off */
static const uint16_t single[256] = {
    [0x0A] = 0x000A, [0x0C] = 0x000C, [0x0D] = 0x000D, [0x20] = 0x0020,
    [0x21] = 0x0021, [0x22] = 0x0022, [0x25] = 0x0025, [0x26] = 0x0026,
    [0x27] = 0x0027, [0x28] = 0x0028, [0x29] = 0x0029, [0x2A] = 0x002A,
    [0x2B] = 0x002B, [0x2C] = 0x002C, [0x2D] = 0x002D, [0x2E] = 0x002E,
    [0x2F] = 0x002F, [0x30] = 0x0030, [0x31] = 0x0031, [0x32] = 0x0032,
    [0x33] = 0x0033, [0x34] = 0x0034, [0x35] = 0x0035, [0x36] = 0x0036,
    [0x37] = 0x0037, [0x38] = 0x0038, [0x39] = 0x0039, [0x3A] = 0x003A,
    [0x3B] = 0x003B, [0x3C] = 0x003C, [0x3D] = 0x003D, [0x3E] = 0x003E,
    [0x3F] = 0x003F, [0x40] = 0x0040, [0x41] = 0x0041, [0x42] = 0x0042,
    [0x43] = 0x0043, [0x44] = 0x0044, [0x45] = 0x0045, [0x46] = 0x0046,
    [0x47] = 0x0047, [0x48] = 0x0048, [0x49] = 0x0049, [0x4A] = 0x004A,
    [0x4B] = 0x004B, [0x4C] = 0x004C, [0x4D] = 0x004D, [0x4E] = 0x004E,
    [0x4F] = 0x004F, [0x50] = 0x0050, [0x51] = 0x0051, [0x52] = 0x0052,
    [0x53] = 0x0053, [0x54] = 0x0054, [0x55] = 0x0055, [0x56] = 0x0056,
    [0x57] = 0x0057, [0x58] = 0x0058, [0x59] = 0x0059, [0x5A] = 0x005A,
    [0x5B] = 0x005B, [0x5D] = 0x005D, [0x5F] = 0x005F, [0x61] = 0x0061,
    [0x62] = 0x0062, [0x63] = 0x0063, [0x64] = 0x0064, [0x65] = 0x0065,
    [0x66] = 0x0066, [0x67] = 0x0067, [0x68] = 0x0068, [0x69] = 0x0069,
    [0x6A] = 0x006A, [0x6B] = 0x006B, [0x6C] = 0x006C, [0x6D] = 0x006D,
    [0x6E] = 0x006E, [0x6F] = 0x006F, [0x70] = 0x0070, [0x71] = 0x0071,
    [0x72] = 0x0072, [0x73] = 0x0073, [0x74] = 0x0074, [0x75] = 0x0075,
    [0x76] = 0x0076, [0x77] = 0x0077, [0x78] = 0x0078, [0x79] = 0x0079,
    [0x7A] = 0x007A, [0x7C] = 0x007C,
    /* supplementary set, columns A and B */
    [0xA1] = 0x00A1, [0xA2] = 0x00A2, [0xA3] = 0x00A3, [0xA4] = 0x0024,
    [0xA5] = 0x00A5, [0xA6] = 0x0023, [0xA7] = 0x00A7, [0xA8] = 0x00A4,
    [0xAB] = 0x00AB, [0xB0] = 0x00B0, [0xB1] = 0x00B1, [0xB2] = 0x00B2,
    [0xB3] = 0x00B3, [0xB4] = 0x00D7, [0xB5] = 0x00B5, [0xB6] = 0x00B6,
    [0xB7] = 0x00B7, [0xB8] = 0x00F7, [0xBB] = 0x00BB, [0xBC] = 0x00BC,
    [0xBD] = 0x00BD, [0xBE] = 0x00BE, [0xBF] = 0x00BF,
    /* columns E and F: letters that have no base + diacritic form. 0xE6/0xF6
     * (IJ, ij) are T.61 but left blank in RvIG's LO table; accepted so that
     * T.61 data from other sources still converts. */
    [0xE0] = 0x2126, [0xE1] = 0x00C6, [0xE2] = 0x0110, [0xE3] = 0x00AA,
    [0xE4] = 0x0126, [0xE6] = 0x0132, [0xE7] = 0x013F, [0xE8] = 0x0141,
    [0xE9] = 0x00D8, [0xEA] = 0x0152, [0xEB] = 0x00BA, [0xEC] = 0x00DE,
    [0xED] = 0x0166, [0xEE] = 0x014A, [0xEF] = 0x0149, [0xF0] = 0x0138,
    [0xF1] = 0x00E6, [0xF2] = 0x0111, [0xF3] = 0x00F0, [0xF4] = 0x0127,
    [0xF5] = 0x0131, [0xF6] = 0x0133, [0xF7] = 0x0140, [0xF8] = 0x0142,
    [0xF9] = 0x00F8, [0xFA] = 0x0153, [0xFB] = 0x00DF, [0xFC] = 0x00FE,
    [0xFD] = 0x0167, [0xFE] = 0x014B,
};
/* clang-format on */

/* Code points without a Teletex form of their own that share one (encode only). */
static const struct {
    uint16_t cp;  /* alias code point */
    uint8_t byte; /* Teletex byte it is written as */
} aliases[] = {
    {0x00D0, 0xE2}, /* capital eth looks like capital D with stroke; T.61 has one glyph */
    {0x03A9, 0xE0}, /* Greek capital omega, canonical form of the ohm sign */
};

static int is_accent(uint8_t b)
{
    return b >= 0xC1 && b <= 0xCF;
}

static uint32_t combo_decode(uint8_t accent, uint8_t base)
{
    /* `combos` is written in (accent, base) order: binary search first.
     * Should an edit ever break that order, the linear pass below still
     * finds the pair, so the order is a matter of speed, not of result. */
    unsigned key = (unsigned)accent << 8 | base;
    size_t lo = 0, hi = sizeof combos / sizeof combos[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        unsigned k = (unsigned)combos[mid].accent << 8 | combos[mid].base;
        if (k == key)
            return combos[mid].cp;
        if (k < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++)
        if (combos[i].accent == accent && combos[i].base == base)
            return combos[i].cp;
    return 0;
}

/* Teletex bytes for @p cp into t[0..]; returns their count, 0 if unmappable. */
static size_t encode_cp(uint32_t cp, uint8_t t[2])
{
    if (cp == 0)
        return 0;
    /* ASCII positions map to themselves unless T.61 moved or lacks them. */
    if (cp < 0x80 && single[cp] == cp) {
        t[0] = (uint8_t)cp;
        return 1;
    }
    for (unsigned b = 0xA0; b < 0x100; b++) {
        if (single[b] == cp) {
            t[0] = (uint8_t)b;
            return 1;
        }
    }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (aliases[i].cp == cp) {
            t[0] = aliases[i].byte;
            return 1;
        }
    }
    for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) {
        if (combos[i].cp == cp) {
            t[0] = combos[i].accent;
            t[1] = combos[i].base;
            return 2;
        }
    }
    return 0;
}

static size_t utf8_put(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

kb_err_t kb_t61_to_utf8(const uint8_t *in, size_t len, char *out, size_t out_size, size_t *out_len,
                        size_t *bad_offset)
{
    size_t o = 0;
    /* room for 3 bytes per input byte and the NUL: no check per character */
    int roomy = out_size / 3 > len;

    if (out_len)
        *out_len = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t used;

        if (is_accent(in[i])) {
            cp = i + 1 < len ? combo_decode(in[i], in[i + 1]) : 0;
            used = 2;
        } else {
            cp = single[in[i]];
            used = 1;
            if (cp && cp < 0x80 && roomy) {
                out[o++] = (char)cp; /* the common case: ASCII */
                i++;
                continue;
            }
        }
        if (cp == 0) {
            if (bad_offset)
                *bad_offset = i;
            if (out_size > 0)
                out[0] = '\0';
            return KB_ERR_INVALID;
        }
        char u[3];
        size_t n = utf8_put(cp, u);
        /* keep one byte for the NUL terminator */
        if (out_size == 0 || n > out_size - 1 - o) {
            if (bad_offset)
                *bad_offset = i;
            if (out_size > 0)
                out[0] = '\0';
            return KB_ERR_RANGE;
        }
        memcpy(out + o, u, n);
        o += n;
        i += used;
    }
    if (out_size == 0) {
        if (bad_offset)
            *bad_offset = 0;
        return KB_ERR_RANGE;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return KB_OK;
}

/*
 * Every byte in one class, for the checks that run over every element:
 * 0 no mapping, 1 the same character in UTF-8 (single[b] == b), 2 another
 * single character (single[b] != 0), 3 a diacritic (is_accent). Written
 * out rather than derived, as the tables above are const data;
 * test_t61 proves it agrees with single[] and is_accent() byte for byte.
 */
/* clang-format off */
static const uint8_t cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 10 */
    1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, /* 50 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, /* 70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 90 */
    0, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 0, 0, 0, 0, /* A0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 2, 2, 2, 2, /* B0 */
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* C0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* D0 */
    2, 2, 2, 2, 2, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* E0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, /* F0 */
};
/* clang-format on */

int kb_t61_plain(const uint8_t *in, size_t len)
{
    size_t i = 0;
    while (i + 8 <= len && kb_t61_plain8(in + i))
        i += 8;
    unsigned all = 1;
    for (; i < len; i++)
        all &= cls[in[i]] == 1;
    return (int)all;
}

kb_err_t kb_t61_check(const uint8_t *in, size_t len, size_t *bad_offset)
{
    for (size_t i = 0; i < len; i++) {
        if (i + 8 <= len && kb_t61_plain8(in + i)) {
            i += 7; /* eight bytes of class 1 */
            continue;
        }
        unsigned c = cls[in[i]];
        if (c == 1 || c == 2)
            continue;
        if (c == 3 && i + 1 < len && combo_decode(in[i], in[i + 1])) {
            i++;
            continue;
        }
        if (bad_offset)
            *bad_offset = i;
        return KB_ERR_INVALID;
    }
    return KB_OK;
}

/*
 * Strict UTF-8 decoder: one code point at in[i..], *n its byte count.
 * Returns 0 on invalid input (overlong, surrogate, truncated, > U+10FFFF);
 * U+0000 is also reported as 0, which is fine: it has no Teletex form.
 */
static uint32_t utf8_get(const uint8_t *s, size_t len, size_t *n)
{
    uint8_t c = s[0];
    uint32_t cp, min;
    size_t need;

    if (c < 0x80) {
        *n = 1;
        return c;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (need > len)
        return 0;
    for (size_t k = 1; k < need; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *n = need;
    return cp;
}

kb_err_t kb_t61_from_utf8(const char *in, size_t len, uint8_t *out, size_t out_size,
                          size_t *out_len, size_t *bad_offset)
{
    const uint8_t *s = (const uint8_t *)in;
    size_t o = 0;

    if (out_len)
        *out_len = 0;
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        uint32_t cp = utf8_get(s + i, len - i, &n);
        uint8_t t[2];
        size_t tn = encode_cp(cp, t);

        if (tn == 0) {
            if (bad_offset)
                *bad_offset = i;
            return KB_ERR_INVALID;
        }
        if (tn > out_size - o) {
            if (bad_offset)
                *bad_offset = i;
            return KB_ERR_RANGE;
        }
        memcpy(out + o, t, tn);
        o += tn;
        i += n;
    }
    if (out_len)
        *out_len = o;
    return KB_OK;
}
