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
     * or NULL when it is invalid (validate_run.h). */
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
size_t kb__class_span_scalar(const uint8_t *s, size_t n, const struct kb__cclass *c);

/* The table for path @p name if built in and runnable here, else NULL. */
const struct kb__validate_kernels *kb__validate_kernels_get(const char *name);

#endif
