/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_kernels.h - the hot loops of the validator (UTF-8, character
 * classes, varint lengths), one table per instruction set. Every table must
 * give the same answer as the scalar one on every input: the SIMD versions
 * only go faster over runs of ASCII and hand anything unusual to the scalar
 * code. Internal to the validate module.
 */
#ifndef KB_VALIDATE_KERNELS_H
#define KB_VALIDATE_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A set of ASCII bytes (bytes >= 0x80 are never members), in the two forms
 * the kernels use. */
struct kb__cclass {
    uint8_t lut_lo[16]; /* bit h of lut_lo[l]: byte (h << 4 | l) is a member, h < 8 */
    uint8_t bits[32];   /* bitmap over all 256 byte values, same set */
};

/* Membership as the scalar code tests it. */
static inline int kb__cclass_has(const struct kb__cclass *c, uint8_t b)
{
    return (c->bits[b >> 3] >> (b & 7)) & 1;
}

/* kb__low_bytes[n]: the low n bytes of a word set (n <= 8), one load
 * rather than a shift and a subtraction per short value. */
static const uint64_t kb__low_bytes[9] = {
    0, 0xFFull, 0xFFFFull, 0xFFFFFFull, 0xFFFFFFFFull, 0xFFFFFFFFFFull, 0xFFFFFFFFFFFFull,
    0xFFFFFFFFFFFFFFull, ~0ull,
};

/* 1 when s[0..n) is all ASCII, with 64-bit words: up to 8 bytes is one
 * load when the payload has room (bytes past the value masked off), longer
 * values are or-ed together 16 bytes at a time and the last 8 bytes read
 * again from s + n - 8 (overlapping: no byte-wise tail, few branches). The
 * SIMD paths use it for short values too: it needs no vector registers. */
static inline __attribute__((always_inline)) int kb__ascii_words(const uint8_t *s, size_t n,
                                                                const uint8_t *limit)
{
    const uint64_t high = 0x8080808080808080ull;
    uint64_t w, w2, acc = 0;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            memcpy(&w, s + i, 8);
            memcpy(&w2, s + i + 8, 8);
            acc |= w | w2;
        }
        if (i + 8 <= n) {
            memcpy(&w, s + i, 8);
            acc |= w;
        }
        memcpy(&w, s + n - 8, 8);
        return !((acc | w) & high);
    }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if ((size_t)(limit - s) >= 8) {
        memcpy(&w, s, 8);
        return !(w & high & kb__low_bytes[n]);
    }
#else
    (void)limit;
#endif
    for (size_t i = 0; i < n; i++)
        acc |= s[i];
    return !(acc & high);
}

struct kb_validator;
struct kb__vcons;

struct kb__validate_kernels {
    const char *name; /* "scalar", "sse42", "avx2", "avx512" */
    /* 1 when s[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, no
     * surrogates, nothing above U+10FFFF). Bytes up to @p limit (>= s + n)
     * may be read, never beyond. */
    int (*utf8)(const uint8_t *s, size_t n, const uint8_t *limit);
    /* Length of the longest prefix of s[0..n) whose bytes are all in @p c. */
    size_t (*class_span)(const uint8_t *s, size_t n, const uint8_t *limit,
                         const struct kb__cclass *c);
    /* Bytes of the varint at p (1..10: the first byte < 0x80 ends it), or 0
     * when none of the first min(10, limit - p) bytes ends it. */
    unsigned (*varint_len)(const uint8_t *p, const uint8_t *limit);
    /* Run the validator's flat program on p[0..end): the end of the datum,
     * or NULL when it is invalid (validate_run.h). With p NULL it only
     * links the program to this interpreter (struct kb__vins go), which
     * kb_validate_compile() does once before the validator is shared. */
    const uint8_t *(*run)(const struct kb_validator *v, const uint8_t *p, const uint8_t *end);
    /* The kb.* string rule of @p c that s[0..n) (valid UTF-8) breaks, or
     * VR_OK (enum kb__vrule). Bytes up to @p limit may be read. */
    int (*string_rule)(const struct kb__vcons *c, const uint8_t *s, size_t n,
                       const uint8_t *limit);
};

extern const struct kb__validate_kernels kb__validate_kernels_scalar;
#ifdef KB_HAVE_SSE42
extern const struct kb__validate_kernels kb__validate_kernels_sse42;
#endif
#ifdef KB_HAVE_AVX2
extern const struct kb__validate_kernels kb__validate_kernels_avx2;
#endif

/* Scalar pieces the SIMD tables fall back on. */
int kb__utf8_scalar(const uint8_t *s, size_t n);
/* kb__utf8_words() out of line, for the tests. */
int kb__utf8_swar(const uint8_t *s, size_t n, const uint8_t *limit);

/* kb__utf8_scalar() with one- and two-byte sequences eight bytes at a time;
 * bytes up to @p limit (>= s + n) may be read. */
/* Dutch names and places need only two-byte sequences (U+0080..U+07FF:
 * é, ë, Ö, ç): those are checked eight bytes at a time. In a word, a
 * byte's bits 7, 6, 5 are found in bit 7 of w, w << 1, w << 2: lead bytes
 * C2..DF (110xxxxx, not C0/C1) must be followed by exactly one continuation
 * byte (10xxxxxx) and every continuation byte must follow such a lead,
 * across words too (carry). A lead of a longer sequence (E0..FF) hands the
 * whole string to kb__utf8_scalar(). Past the end the word is zero, never
 * a continuation, so a lead at the end fails. */
static inline int kb__utf8_words(const uint8_t *s, size_t n, const uint8_t *limit)
{
    const uint64_t high = 0x8080808080808080ull;
    uint64_t carry = 0; /* 0x80: byte 0 of this word must be a continuation */
    for (size_t i = 0; i < n; i += 8) {
        size_t m = n - i < 8 ? n - i : 8;
        uint64_t w = 0;
        if ((size_t)(limit - (s + i)) >= 8) {
            memcpy(&w, s + i, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            w = __builtin_bswap64(w);
#endif
            if (m < 8)
                w &= (1ull << (8 * m)) - 1;
        } else {
            for (size_t k = 0; k < m; k++)
                w |= (uint64_t)s[i + k] << (8 * k);
        }
        uint64_t b7 = w & high, b6 = (w << 1) & high, b5 = (w << 2) & high;
        uint64_t lead = b7 & b6;
        if (lead & b5)
            return kb__utf8_scalar(s, n); /* three- or four-byte sequences */
        /* C0 and C1 (overlong): a lead with none of bits 4..1 set. */
        uint64_t payload = ((w & 0x1E1E1E1E1E1E1E1Eull) + 0x7F7F7F7F7F7F7F7Full) & high;
        if (lead & ~payload)
            return 0;
        if ((b7 & ~b6) != ((lead << 8) | carry))
            return 0;
        carry = lead >> 56;
    }
    return carry == 0;
}

size_t kb__class_span_scalar(const uint8_t *s, size_t n, const struct kb__cclass *c);

/* The table for path @p name if built in and runnable here, else NULL. */
const struct kb__validate_kernels *kb__validate_kernels_get(const char *name);

#endif
