/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_kernels_avx2.c - 32-byte kernels (AVX2). Compiled with -mavx2 on
 * this file only; used only when the CPU has AVX2. Same shape as the SSE4.2
 * file, twice as wide; tails shorter than 32 bytes use one masked 32-byte
 * load when the payload has room, else the scalar code.
 * Also instantiates the interpreter of validate_run.h with these kernels.
 */
#ifdef KB_HAVE_AVX2
#include <immintrin.h>
#include <string.h>

#include "validate_kernels.h"

/* Mask of the first n (< 32) lanes. */
static inline uint32_t lanes(size_t n)
{
    return (uint32_t)((1ull << n) - 1u);
}

static int utf8(const uint8_t *s, size_t n, const uint8_t *limit)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        if (_mm256_movemask_epi8(v))
            return kb__utf8_scalar(s + i, n - i); /* s + i starts a character */
    }
    size_t rest = n - i;
    if (!rest)
        return 1;
    if ((size_t)(limit - (s + i)) >= 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        if (!((uint32_t)_mm256_movemask_epi8(v) & lanes(rest)))
            return 1;
    }
    return kb__utf8_scalar(s + i, rest);
}

/* Lanes of v that are not in the class, as a bit mask. */
static inline uint32_t outside(__m256i v, __m256i lo_tab, __m256i hi_tab)
{
    __m256i lo = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
    __m256i m =
        _mm256_and_si256(_mm256_shuffle_epi8(lo_tab, lo), _mm256_shuffle_epi8(hi_tab, hi));
    return (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(m, _mm256_setzero_si256()));
}

static size_t class_span(const uint8_t *s, size_t n, const uint8_t *limit,
                         const struct kb__cclass *c)
{
    /* vpshufb looks up within each 128-bit half: put the table in both. */
    const __m256i lo_tab =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)c->lut_lo));
    const __m256i hi_tab = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0, 0));
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint32_t out = outside(_mm256_loadu_si256((const __m256i *)(s + i)), lo_tab, hi_tab);
        if (out)
            return i + (size_t)__builtin_ctz(out);
    }
    size_t rest = n - i;
    if (!rest)
        return n;
    if ((size_t)(limit - (s + i)) >= 32) {
        uint32_t out =
            outside(_mm256_loadu_si256((const __m256i *)(s + i)), lo_tab, hi_tab) & lanes(rest);
        return out ? i + (size_t)__builtin_ctz(out) : n;
    }
    return i + kb__class_span_scalar(s + i, rest, c);
}

static unsigned varint_len(const uint8_t *p, const uint8_t *limit)
{
    /* A varint is at most 10 bytes: a 16-byte load is the right width. */
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

/* 1 when s[0..n) is all ASCII: up to 32 bytes in one load when the payload
 * has room, else 32 at a time and the tail in one masked load or bytewise. */
static inline int vr_ascii(const uint8_t *s, size_t n, const uint8_t *limit)
{
    size_t room = (size_t)(limit - s);
    if (n <= 32 && room >= 32)
        return !((uint32_t)_mm256_movemask_epi8(_mm256_loadu_si256((const __m256i *)s)) &
                 (uint32_t)((1ull << n) - 1u));
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        acc = _mm256_or_si256(acc, _mm256_loadu_si256((const __m256i *)(s + i)));
    if (_mm256_movemask_epi8(acc))
        return 0;
    if (i == n)
        return 1;
    if (room - i >= 32)
        return !((uint32_t)_mm256_movemask_epi8(_mm256_loadu_si256((const __m256i *)(s + i))) &
                 lanes(n - i));
    uint8_t b = 0;
    for (; i < n; i++)
        b |= s[i];
    return b < 0x80;
}

#include "validate_run.h"

const struct kb__validate_kernels kb__validate_kernels_avx2 = {
    .name = "avx2",
    .utf8 = utf8,
    .class_span = class_span,
    .varint_len = varint_len,
    .run = run,
    .string_rule = string_rule,
};
#endif
