/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_kernels_scalar.c - the reference kernels: plain C that any CPU
 * runs, and the definition of the right answer for the SIMD paths. UTF-8 is
 * checked eight ASCII bytes at a time (SWAR) and by a byte-wise decoder
 * elsewhere.
 * This file also instantiates the flat-program interpreter (validate_run.h)
 * with these kernels.
 */
#include <string.h>

#include "validate_kernels.h"

int kb__utf8_scalar(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Skip ASCII eight bytes at a time: most text here is ASCII. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        /* Lead byte: length and the allowed range of the second byte, which
         * excludes overlongs (E0, F0), surrogates (ED) and > U+10FFFF (F4). */
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            len = 3;
            if (b == 0xE0)
                lo = 0xA0;
            else if (b == 0xED)
                hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            len = 4;
            if (b == 0xF0)
                lo = 0x90;
            else if (b == 0xF4)
                hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

int kb__utf8_swar(const uint8_t *s, size_t n, const uint8_t *limit)
{
    return kb__utf8_words(s, n, limit);
}

static int utf8(const uint8_t *s, size_t n, const uint8_t *limit)
{
    return kb__utf8_words(s, n, limit);
}

size_t kb__class_span_scalar(const uint8_t *s, size_t n, const struct kb__cclass *c)
{
    size_t i = 0;
    while (i < n && kb__cclass_has(c, s[i]))
        i++;
    return i;
}

static size_t class_span(const uint8_t *s, size_t n, const uint8_t *limit,
                         const struct kb__cclass *c)
{
    (void)limit;
    return kb__class_span_scalar(s, n, c);
}

static unsigned varint_len(const uint8_t *p, const uint8_t *limit)
{
    size_t avail = (size_t)(limit - p);
    size_t max = avail < 10 ? avail : 10;
    for (size_t i = 0; i < max; i++)
        if (p[i] < 0x80)
            return (unsigned)i + 1;
    return 0;
}

/* 1 when s[0..n) is all ASCII (for validate_run.h). */
static inline __attribute__((always_inline)) int vr_ascii(const uint8_t *s, size_t n,
                                                         const uint8_t *limit)
{
    return kb__ascii_words(s, n, limit);
}

#include "validate_run.h"

const struct kb__validate_kernels kb__validate_kernels_scalar = {
    .name = "scalar",
    .utf8 = utf8,
    .class_span = class_span,
    .varint_len = varint_len,
    .run = run,
    .string_rule = string_rule,
};
