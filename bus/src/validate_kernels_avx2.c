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
    /* The interpreter asks only about values it found not all ASCII: a
     * short one goes straight to the word check. */
    if (n <= 32)
        return kb__utf8_words(s, n, limit);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        if (_mm256_movemask_epi8(v))
            return kb__utf8_words(s + i, n - i, limit); /* s + i starts a character */
    }
    size_t rest = n - i;
    if (!rest)
        return 1;
    if ((size_t)(limit - (s + i)) >= 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        if (!((uint32_t)_mm256_movemask_epi8(v) & lanes(rest)))
            return 1;
    }
    return kb__utf8_words(s + i, rest, limit);
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

/* 1 when s[0..n) is all ASCII: up to 16 bytes in words (no vector
 * registers), up to 32 as two overlapping 16-byte loads, longer ones 32 at a
 * time with the last 32 bytes read again from s + n - 32 (no tail loop). */
static inline __attribute__((always_inline)) int vr_ascii(const uint8_t *s, size_t n,
                                                         const uint8_t *limit)
{
    if (n <= 16)
        return kb__ascii_words(s, n, limit);
    if (n <= 32)
        return !_mm_movemask_epi8(_mm_or_si128(_mm_loadu_si128((const __m128i *)s),
                                               _mm_loadu_si128((const __m128i *)(s + n - 16))));
    __m256i acc = _mm256_loadu_si256((const __m256i *)(s + n - 32));
    for (size_t i = 0; i + 32 <= n; i += 32)
        acc = _mm256_or_si256(acc, _mm256_loadu_si256((const __m256i *)(s + i)));
    return !_mm256_movemask_epi8(acc);
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
