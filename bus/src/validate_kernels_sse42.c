/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_kernels_sse42.c - 16-byte kernels (SSE4.2 with SSSE3 shuffles).
 * Compiled with -msse4.2 on this file only; used only when the CPU has
 * SSE4.2. Short values are read as one 16-byte load when the payload has
 * room after them (bytes past the value are masked off, never past @p limit).
 * Also instantiates the interpreter of validate_run.h with these kernels.
 */
#ifdef KB_HAVE_SSE42
#include <nmmintrin.h>
#include <string.h>

#include "validate_kernels.h"

/* Mask of the first n (< 16) lanes. */
static inline unsigned lanes(size_t n)
{
    return (1u << n) - 1u;
}

static int utf8(const uint8_t *s, size_t n, const uint8_t *limit)
{
    /* The interpreter asks only about values it found not all ASCII: a
     * short one goes straight to the word check. */
    if (n <= 16)
        return kb__utf8_words(s, n, limit);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        if (_mm_movemask_epi8(v))
            return kb__utf8_words(s + i, n - i, limit); /* s + i starts a character */
    }
    size_t rest = n - i;
    if (!rest)
        return 1;
    if ((size_t)(limit - (s + i)) >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        if (!((unsigned)_mm_movemask_epi8(v) & lanes(rest)))
            return 1;
    }
    return kb__utf8_words(s + i, rest, limit);
}

/* Lanes of v that are not in c, as a bit mask. */
static inline unsigned outside(__m128i v, __m128i lo_tab, __m128i hi_tab)
{
    __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0F));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
    __m128i m = _mm_and_si128(_mm_shuffle_epi8(lo_tab, lo), _mm_shuffle_epi8(hi_tab, hi));
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(m, _mm_setzero_si128()));
}

static size_t class_span(const uint8_t *s, size_t n, const uint8_t *limit,
                         const struct kb__cclass *c)
{
    const __m128i lo_tab = _mm_loadu_si128((const __m128i *)c->lut_lo);
    /* Row h < 8 selects bit h; rows 8..15 (bytes >= 0x80) select nothing. */
    const __m128i hi_tab = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0, 0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        unsigned out = outside(_mm_loadu_si128((const __m128i *)(s + i)), lo_tab, hi_tab);
        if (out)
            return i + (size_t)__builtin_ctz(out);
    }
    size_t rest = n - i;
    if (!rest)
        return n;
    if ((size_t)(limit - (s + i)) >= 16) {
        unsigned out =
            outside(_mm_loadu_si128((const __m128i *)(s + i)), lo_tab, hi_tab) & lanes(rest);
        return out ? i + (size_t)__builtin_ctz(out) : n;
    }
    return i + kb__class_span_scalar(s + i, rest, c);
}

static unsigned varint_len(const uint8_t *p, const uint8_t *limit)
{
    size_t avail = (size_t)(limit - p);
    if (avail >= 16) {
        unsigned end = ~(unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)p)) & 0x3FFu;
        return end ? (unsigned)__builtin_ctz(end) + 1 : 0;
    }
    size_t max = avail < 10 ? avail : 10;
    for (size_t i = 0; i < max; i++)
        if (p[i] < 0x80)
            return (unsigned)i + 1;
    return 0;
}

/* 1 when s[0..n) is all ASCII: up to 16 bytes in words (no vector
 * registers), longer ones 16 at a time with the last 16 bytes read again
 * from s + n - 16 (overlapping, so no tail loop). */
static inline __attribute__((always_inline)) int vr_ascii(const uint8_t *s, size_t n,
                                                         const uint8_t *limit)
{
    if (n <= 16)
        return kb__ascii_words(s, n, limit);
    __m128i acc = _mm_loadu_si128((const __m128i *)(s + n - 16));
    for (size_t i = 0; i + 16 <= n; i += 16)
        acc = _mm_or_si128(acc, _mm_loadu_si128((const __m128i *)(s + i)));
    return !_mm_movemask_epi8(acc);
}

#include "validate_run.h"

const struct kb__validate_kernels kb__validate_kernels_sse42 = {
    .name = "sse42",
    .utf8 = utf8,
    .class_span = class_span,
    .varint_len = varint_len,
    .run = run,
    .string_rule = string_rule,
};
#endif
