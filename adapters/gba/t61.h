/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * t61.h - the GBA Teletex (ITU T.61) character set <-> UTF-8: non-spacing
 * diacritic prefixes 0xC1-0xCF followed by the base letter, single-byte
 * specials, and the control codes LF/CR/FF (../shared/protocols.md §1.3).
 */
#ifndef KETENBUS_T61_H
#define KETENBUS_T61_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ketenbus/err.h"

/**
 * Convert @p len Teletex bytes to UTF-8 in @p out (capacity @p out_size,
 * at most 3 bytes of UTF-8 per Teletex byte are needed plus one for the NUL
 * terminator). On success *out_len is the UTF-8 length. A byte (or pair)
 * with no mapping returns KB_ERR_INVALID with *bad_offset set to its offset
 * within @p in. KB_ERR_RANGE when @p out is too small.
 */
kb_err_t kb_t61_to_utf8(const uint8_t *in, size_t len, char *out, size_t out_size,
                        size_t *out_len, size_t *bad_offset);

/**
 * 1 when every one of @p len bytes is a character that Teletex and UTF-8
 * write alike (ASCII letters, digits, space and most punctuation): then
 * kb_t61_to_utf8() would return the same bytes, and a caller may use them
 * as they are. 0 otherwise (the bytes may still be valid Teletex).
 */
int kb_t61_plain(const uint8_t *in, size_t len);

/**
 * 1 when each of the 8 bytes at @p in is a space, in 0x25-0x5B (digits,
 * capitals, most punctuation) or in 0x61-0x7A (small letters): a subset of
 * what kb_t61_plain() accepts that nearly every element value keeps to,
 * tested in one word. 0 says nothing (ask kb_t61_plain()). Each sum below
 * stays within its byte, as all bytes are < 0x80 once the high bits are
 * known clear, so no carry crosses into the next.
 */
static inline int kb_t61_plain8(const uint8_t *in)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t x;
    memcpy(&x, in, 8);
    if (x & high)
        return 0;
    uint64_t in_a = (x + (0x80 - 0x25) * ones) & ~(x + (0x7F - 0x5B) * ones); /* 25-5B */
    uint64_t in_b = (x + (0x80 - 0x61) * ones) & ~(x + (0x7F - 0x7A) * ones); /* 61-7A */
    uint64_t t = x ^ (0x20 * ones);
    uint64_t space = ~(((t & ~high) + ~high) | t); /* high bit: the byte was 0x20 */
    return ((in_a | in_b | space) & high) == high;
}

/**
 * kb_t61_plain8() for the first @p len (1 to 8) bytes at @p in, when all 8
 * bytes there may be read (the caller knows the buffer goes on): the bytes
 * past @p len count as plain. 1 means kb_t61_plain(in, len) is 1; 0 says
 * nothing. The short values of a message (codes, dates, first names) are
 * tested without a loop.
 */
static inline int kb_t61_plain_upto8(const uint8_t *in, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t x, keep = len >= 8 ? ~0ull : (1ull << (8 * len)) - 1;
    uint8_t w[8];
    memcpy(&x, in, 8);
    x = (x & keep) | (0x6161616161616161ull & ~keep); /* 'a' past the value */
    memcpy(w, &x, 8);
    return kb_t61_plain8(w);
#else
    (void)in;
    (void)len;
    return 0;
#endif
}

/**
 * Whether @p len bytes are valid Teletex, without converting them: KB_OK,
 * or KB_ERR_INVALID with *bad_offset set exactly as kb_t61_to_utf8() would.
 */
kb_err_t kb_t61_check(const uint8_t *in, size_t len, size_t *bad_offset);

/**
 * Convert UTF-8 to Teletex. A code point with no Teletex form (or invalid
 * UTF-8) returns KB_ERR_INVALID with *bad_offset its byte offset in @p in.
 */
kb_err_t kb_t61_from_utf8(const char *in, size_t len, uint8_t *out, size_t out_size,
                          size_t *out_len, size_t *bad_offset);

/**
 * kb_t61_plain8() over @p len >= 8 bytes at @p in, word by word (the last
 * word overlapping, so every word lies inside the value): 1 means
 * kb_t61_plain(in, len) is 1; 0 says nothing. Long names and street
 * names are tested without a byte loop.
 */
static inline int kb_t61_plain_from8(const uint8_t *in, size_t len)
{
    for (size_t i = 0; i + 8 < len; i += 8)
        if (!kb_t61_plain8(in + i))
            return 0;
    return kb_t61_plain8(in + len - 8);
}

#endif
