/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_run.h - the interpreter of the flat validation program
 * (validate_internal.h), included once by each kernel file so that every
 * kernel path gets its own copy with its kernels inlined. The including file
 * defines, before the #include, static functions utf8(), class_span() (as
 * in struct kb__validate_kernels) and vr_ascii(s, n, limit): 1 when
 * s[0..n) is all ASCII, reading at most up to limit. It gets run() and
 * string_rule() for its kernel table.
 *
 * Only the verdict is computed here; validate.c re-walks a rejected datum
 * with the node walker to say what failed where. Both must accept exactly
 * the same datums (the fuzz target and test_validate check it).
 *
 * Where the time goes, and why it is shaped so: a birth event is about 46
 * operations, most of them short strings. Each operation is one indirect
 * jump (threaded code), each string kind its own handler, so no flag or
 * rule switch runs per value; the union byte and a one-byte length of an
 * optional string are one 16-bit load; while at least VR_ROOM bytes are
 * left, a short string needs no bounds or limit test at all, and its rule
 * may read 64 bytes from its start without asking (VR_STRING); the
 * identifier, date and fixed pattern rules work on 8-byte words; a value
 * that passes an ASCII-only rule needs no UTF-8 check; UTF-8 is decoded
 * only past a non-ASCII byte; an empty array is one byte test.
 */
#ifndef KB_VALIDATE_RUN_H
#define KB_VALIDATE_RUN_H

#include "validate_internal.h"

/* The 8 bytes at s as a little-endian word (byte i in bits 8i..8i+7). */
static inline uint64_t vr_word(const uint8_t *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* s[0..n), n <= 8, as a little-endian word with zeros above; one load when
 * the payload has 8 bytes from s (bytes up to limit may be read). */
static inline uint64_t vr_word_upto(const uint8_t *s, size_t n, const uint8_t *limit)
{
    if ((size_t)(limit - s) >= 8) {
        uint64_t w = vr_word(s);
        return w & kb__low_bytes[n < 8 ? n : 8];
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)s[i] << (8 * i);
    return w;
}

/* p[0] | p[1] << 8. */
static inline unsigned vr_half(const uint8_t *s)
{
    return (unsigned)s[0] | (unsigned)s[1] << 8;
}

/* Bytes a string at p may take in the interpreter's roomy part: the
 * branch byte, a one-byte length and the 64 bytes from the value's start
 * that the rules may read (VR_STRING). */
#define VR_ROOM 66

/* Avro long at p: one-byte values inline, the rest in validate.c. */
static inline const uint8_t *vr_varint(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    if (__builtin_expect(p < end && *p < 0x80, 1)) {
        *out = (int64_t)((uint64_t)(*p >> 1) ^ (0 - (uint64_t)(*p & 1)));
        return p + 1;
    }
    return kb__validate_varint(p, end, out);
}

/* The end of an Avro long at p as kb__validate_varint() accepts it, when
 * only its validity counts, not its value; @p is_int: also within 32 bits.
 * Up to 8 bytes are one load: the first byte below 0x80 ends the varint,
 * which must not end in 0x00 (not the shortest form). An int's zig-zag
 * value fits 32 bits when it has at most 4 bytes, or 5 with the fifth (bits
 * 28..34) at most 0x0F. */
static inline const uint8_t *vr_skip_varint(const uint8_t *p, const uint8_t *end, int is_int)
{
    if (__builtin_expect(p < end && *p < 0x80, 1))
        return p + 1;
    if ((size_t)(end - p) >= 8) {
        uint64_t stop = ~vr_word(p) & 0x8080808080808080ull;
        if (stop) {
            unsigned k = (unsigned)__builtin_ctzll(stop) >> 3; /* the last byte: 1..7 */
            if (!p[k] || (is_int && (k > 4 || (k == 4 && p[4] > 0x0F))))
                return NULL;
            return p + k + 1;
        }
    }
    int64_t x;
    p = kb__validate_varint(p, end, &x);
    if (p && is_int && (x < INT32_MIN || x > INT32_MAX))
        return NULL;
    return p;
}

/* A non-negative index or length at p into *out; NULL when malformed,
 * truncated or negative. One and two bytes inline (lengths up to 8191). */
static inline const uint8_t *vr_count(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    if (__builtin_expect(p < end && *p < 0x80, 1)) {
        if (*p & 1)
            return NULL;
        *out = *p >> 1;
        return p + 1;
    }
    /* Here p >= end or *p >= 0x80. */
    if ((size_t)(end - p) >= 2 && p[1] < 0x80 && p[1]) {
        uint64_t u = (uint64_t)(p[0] & 0x7F) | (uint64_t)p[1] << 7;
        if (u & 1)
            return NULL;
        *out = u >> 1;
        return p + 2;
    }
    int64_t x;
    p = kb__validate_varint(p, end, &x);
    if (!p || x < 0)
        return NULL;
    *out = (uint64_t)x;
    return p;
}

/* A fixed pattern's word form (struct kb__vpattern): a byte b is in lo..hi
 * when b < 0x80, b + (0x80 - lo) has its high bit set and b + (0x7F - hi)
 * has not; with all bytes below 0x80 no sum carries into the next byte. */
static inline int vr_pattern_fixed(const struct kb__vpattern *pat, const uint8_t *s, size_t n,
                                   const uint8_t *limit)
{
    const uint64_t high = 0x8080808080808080ull;
    if (n != pat->min_len)
        return 0;
    if (n <= 8) {
        uint64_t w = vr_word_upto(s, n, limit);
        return !((w & high) | (~(w + pat->fix_lo[0]) & high) | ((w + pat->fix_hi[0]) & high));
    }
    for (size_t k = 0; 8 * k < n; k++) {
        size_t m = n - 8 * k;
        uint64_t w = vr_word_upto(s + 8 * k, m < 8 ? m : 8, limit);
        if ((w & high) | (~(w + pat->fix_lo[k]) & high) | ((w + pat->fix_hi[k]) & high))
            return 0;
    }
    return 1;
}

static inline int vr_pattern(const struct kb__vpattern *pat, const uint8_t *s, size_t n,
                             const uint8_t *limit)
{
    if (pat->fixed)
        return vr_pattern_fixed(pat, s, n, limit);
    if (n < pat->min_len || n > pat->max_len)
        return 0;
    size_t pos = 0;
    for (size_t i = 0; i < pat->n; i++) {
        const struct kb__vatom *a = &pat->atoms[i];
        if (a->max == 1 && a->min == 1) {
            if (pos >= n || !kb__cclass_has(&a->cls, s[pos]))
                return 0;
            pos++;
            continue;
        }
        size_t room = n - pos;
        if (a->max < room)
            room = a->max;
        size_t span = class_span(s + pos, room, limit, &a->cls);
        if (span < a->min)
            return 0;
        pos += span;
    }
    return pos == n;
}

/* kb.allowed: the word form when there is one (struct kb__vcons), else a
 * binary search. */
static inline int vr_allowed(const struct kb__vcons *c, const uint8_t *s, size_t n,
                             const uint8_t *limit)
{
    if (!c->n_allowed_words)
        return kb__vcode_find(c->allowed, c->allowed_lens, c->n_allowed, s, n);
    if (n > 8)
        return 0;
    uint64_t w = vr_word_upto(s, n, limit);
    for (unsigned i = 0; i < c->n_allowed_words; i++)
        if (c->allowed_word[i] == w && c->allowed_wlen[i] == n)
            return 1;
    return 0;
}

static inline int vr_hex(uint8_t b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

static inline int vr_uuid(const uint8_t *s, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!vr_hex(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* The identifier and date rules of ketenbus/check.h, recast for the hot
 * path: the digits are tested and weighed eight at a time in one word, the
 * arithmetic is the same. They must agree with check.c on every input (the
 * perf notes at the top of bench/validate/bench_validate.c say how that was
 * checked). */

/* 1 when all bytes of w are ASCII digits: no byte is below '0' (w - 0x30..
 * sets a byte's high bit then) or above '9' (w + 0x46.. sets it). A borrow
 * or carry only starts at a non-digit byte, and the lowest one already
 * shows, so nothing that crosses bytes can hide it. */
static inline int vr_digits8w(uint64_t w)
{
    return !(((w - 0x3030303030303030ull) | (w + 0x4646464646464646ull)) &
             0x8080808080808080ull);
}

static inline int vr_digit(uint8_t b)
{
    return (unsigned)(b - '0') <= 9;
}

/* Weighed digit sums by multiplication: with the digits of d (0..9, one
 * per byte) split into 16-bit lanes (even and odd positions), lane 3 of
 * lanes * (c0 | c1 << 16 | c2 << 32 | c3 << 48) is the sum of lane k times
 * c(3-k); no lane exceeds 16 bits, so nothing carries into it. */
#define VR_EVEN 0x00FF00FF00FF00FFull

static inline int vr_bsn(const uint8_t *s, size_t n)
{
    if (n != 9)
        return 0;
    uint64_t w = vr_word(s);
    if (!vr_digits8w(w) || !vr_digit(s[8]))
        return 0;
    uint64_t d = w - 0x3030303030303030ull;
    int last = s[8] - '0';
    /* 9*d0 + 7*d2 + 5*d4 + 3*d6 and 8*d1 + 6*d3 + 4*d5 + 2*d7 */
    int sum = (int)(((d & VR_EVEN) * 0x0009000700050003ull) >> 48) +
              (int)((((d >> 8) & VR_EVEN) * 0x0008000600040002ull) >> 48) - last;
    return sum % 11 == 0 && (d | (uint64_t)last) != 0;
}

static inline int vr_anummer(const uint8_t *s, size_t n)
{
    if (n != 10)
        return 0;
    uint64_t w = vr_word(s);
    if (!vr_digits8w(w) || !vr_digit(s[8]) || !vr_digit(s[9]) || s[0] == '0')
        return 0;
    /* No two neighbours equal: byte i of x is s[i] ^ s[i+1] for i < 7 and
     * byte 7 is s[7] (a digit, never 0); any zero byte shows in the high
     * bits of (x - 0x01..) & ~x. */
    uint64_t x = w ^ (w >> 8);
    if (((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull) || s[7] == s[8] ||
        s[8] == s[9])
        return 0;
    uint64_t d = w - 0x3030303030303030ull;
    int d8 = s[8] - '0', d9 = s[9] - '0';
    int sum = (int)((d * 0x0101010101010101ull) >> 56) + d8 + d9;
    /* sum of digit i << i: d0 + 4*d2 + 16*d4 + 64*d6, 2*d1 + 8*d3 + ... */
    int weighted = (int)(((d & VR_EVEN) * 0x0001000400100040ull) >> 48) +
                   (int)((((d >> 8) & VR_EVEN) * 0x0002000800200080ull) >> 48) + (d8 << 8) +
                   (d9 << 9);
    return (sum % 11 == 0 || sum % 11 == 5) && weighted % 11 == 0;
}

/* JJJJMMDD into year, month, day; 0 when not 8 digits. Byte 2i of t is
 * 10 * digit 2i + digit 2i+1 (at most 99: no carries). */
static inline int vr_date_parts(const uint8_t *s, size_t n, int *y, int *m, int *d)
{
    if (n != 8)
        return 0;
    uint64_t w = vr_word(s);
    if (!vr_digits8w(w))
        return 0;
    uint64_t t = w - 0x3030303030303030ull;
    t = t * 10 + (t >> 8);
    *y = (int)(t & 0xFF) * 100 + (int)((t >> 16) & 0xFF);
    *m = (int)((t >> 32) & 0xFF);
    *d = (int)((t >> 48) & 0xFF);
    return 1;
}

static inline int vr_days_in_month(int y, int m)
{
    static const uint8_t days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* GBA dates: month 00 only with day 00; otherwise year 0001..9999, month
 * 01..12 and day 00 or a day of that month. maxday[m] is the largest day of
 * month m in any year (0 for month 00), so only 29 February needs the year. */
static inline int vr_gba_date(const uint8_t *s, size_t n)
{
    static const uint8_t maxday[16] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 8)
        return 0;
    uint64_t w = vr_word(s);
    if (!vr_digits8w(w))
        return 0;
    uint64_t t = w - 0x3030303030303030ull;
    t = t * 10 + (t >> 8);
    unsigned m = (unsigned)(t >> 32) & 0xFF, d = (unsigned)(t >> 48) & 0xFF;
    if (m > 12 || d > maxday[m])
        return 0;
    if (m && (uint32_t)w == 0x30303030u) /* year 0000 */
        return 0;
    if (m == 2 && d == 29) {
        int y = (int)(t & 0xFF) * 100 + (int)((t >> 16) & 0xFF);
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    }
    return 1;
}

static inline int vr_date(const uint8_t *s, size_t n)
{
    int y, m, d;
    if (!vr_date_parts(s, n, &y, &m, &d))
        return 0;
    return y > 0 && m >= 1 && m <= 12 && d >= 1 && d <= vr_days_in_month(y, m);
}

/* The first kb.* rule of @p c that s[0..n) breaks, in the order the
 * rejection reports them (enum kb__vrule). */
static int string_rule(const struct kb__vcons *c, const uint8_t *s, size_t n, const uint8_t *limit)
{
    if (c->check == VCK_BSN && !vr_bsn(s, n))
        return VR_BSN;
    if (c->check == VCK_ANUMMER && !vr_anummer(s, n))
        return VR_ANUMMER;
    if (c->format == VFMT_GBA_DATUM && !vr_gba_date(s, n))
        return VR_GBA_DATUM;
    if (c->format == VFMT_DATUM && !vr_date(s, n))
        return VR_DATUM;
    if (c->pattern && !vr_pattern(c->pattern, s, n, limit))
        return VR_PATTERN;
    if (c->n_allowed && !vr_allowed(c, s, n, limit))
        return VR_ALLOWED;
    if (c->table && !kb__vcode_find(c->table->codes, c->table->lens, c->table->n, s, n))
        return VR_TABLE;
    if (c->has_min_len || c->has_max_len) {
        size_t chars = 0;
        for (size_t i = 0; i < n; i++)
            chars += (s[i] & 0xC0) != 0x80;
        if (c->has_min_len && chars < c->min_len)
            return VR_MIN_LENGTH;
        if (c->has_max_len && chars > c->max_len)
            return VR_MAX_LENGTH;
    }
    return VR_OK;
}

/* UTF-8 of a string value that is not all ASCII (the caller tests that
 * inline first): short values with the word check, long ones by the kernel.
 * Out of line, so the interpreter stays compact. */
static __attribute__((noinline)) int vr_utf8_rest(const uint8_t *s, size_t n,
                                                  const uint8_t *limit)
{
    return n <= 32 ? kb__utf8_words(s, n, limit) : utf8(s, n, limit);
}

/* Block header of an array or map: *count items (0: the end), their byte
 * size in *size (-1: not given); *total counts items against the limit. */
static inline const uint8_t *vr_block(const uint8_t *p, const uint8_t *end, uint64_t max_items,
                                      uint64_t *total, uint64_t *count, int64_t *size)
{
    int64_t c;
    *size = -1;
    p = vr_varint(p, end, &c);
    if (!p)
        return NULL;
    if (c == 0) {
        *count = 0;
        return p;
    }
    if (c < 0) {
        if (c == INT64_MIN)
            return NULL;
        c = -c;
        p = vr_varint(p, end, size);
        if (!p || *size < 0 || (uint64_t)*size > (uint64_t)(end - p))
            return NULL;
    }
    *total += (uint64_t)c;
    if (*total > max_items)
        return NULL;
    *count = (uint64_t)c;
    return p;
}

/* One array or map being walked. */
struct vr_loop {
    const uint8_t *block; /* first byte of the block's items */
    int64_t size;         /* the block's byte size, -1: not given */
    uint64_t total;       /* items so far, all blocks */
    uint64_t left;        /* items left in this block */
};

/* The interpreter: threaded code, each operation jumping straight to the
 * next one's handler (labels as values, GCC and clang; the handler's
 * address is stored in the instruction when compiling), so every operation
 * has its own well-predicted indirect branch rather than one shared switch.
 * Each string kind has its own handler and the union-of-null-and-string
 * form falls through into it after the branch byte. */
static const uint8_t *run(const struct kb_validator *v, const uint8_t *p, const uint8_t *end)
{
#define VR_STR_LABELS(k) [VI_STR + VSK_##k] = &&str_##k, [VI_OPT + VSK_##k] = &&opt_##k
    static const void *const ops[VI_N_OPS] = {
        [VI_END] = &&op_end,     [VI_FAIL] = &&op_fail,   [VI_BOOL] = &&op_bool,
        [VI_LONG] = &&op_long,   [VI_INT] = &&op_int,     [VI_NUM] = &&op_num,
        [VI_SKIP] = &&op_skip,   [VI_BYTES] = &&op_bytes, [VI_ENUM] = &&op_enum,
        [VI_UNION] = &&op_union, [VI_JUMP] = &&op_jump,   [VI_ARRAY] = &&op_array,
        [VI_NEXT] = &&op_next,   VR_STR_LABELS(RAW),      VR_STR_LABELS(TEXT),
        VR_STR_LABELS(BSN),      VR_STR_LABELS(ANUMMER),  VR_STR_LABELS(GBA),
        VR_STR_LABELS(DATUM),    VR_STR_LABELS(PATTERN),  VR_STR_LABELS(ALLOWED),
        VR_STR_LABELS(UUID),     VR_STR_LABELS(ANY),
    };
#undef VR_STR_LABELS
    if (!p) {
        for (size_t i = 0; i < v->n_prog; i++)
            v->prog[i].go = ops[v->prog[i].op];
        return NULL;
    }
    const struct kb__vins *const prog = v->prog;
    const struct kb__vins *ins = prog;
    const uint64_t max_string = v->max_string, max_items = v->max_items;
    struct vr_loop loop[KB_VRUN_MAX_LOOPS];
    unsigned nl = 0;
    /* p <= safe: the roomy part (see VR_STRING); 0 when there is none. */
    const uintptr_t safe = max_string >= 63 && (size_t)(end - p) >= VR_ROOM
                               ? (uintptr_t)end - VR_ROOM
                               : 0;
    const uint8_t *s;
    uint64_t len;
#define VR_DISPATCH() goto *ins->go
#define VR_NEXT()                                                                            \
    do {                                                                                     \
        ins++;                                                                               \
        VR_DISPATCH();                                                                       \
    } while (0)
/* One string kind: the optional form reads the branch byte (null: done),
 * then both read the length and test CHECK on s[0..len), reading bytes up
 * to lim at most. In the roomy part of the payload (p <= safe: at least
 * VR_ROOM bytes left and max_string >= 63) the branch byte and a one-byte
 * length (0..63: bit 0, the sign, and bit 7, more bytes, clear) are one
 * 16-bit load and need no bounds or limit test: the value and the 64 bytes
 * from s (lim = s + 64, a constant distance the rules' word loads fold
 * into) are inside the payload. Elsewhere each byte is tested. */
#define VR_STRING(k, CHECK)                                                                  \
    opt_##k:                                                                                 \
    if (__builtin_expect((uintptr_t)p <= safe, 1)) {                                         \
        unsigned h = vr_half(p);                                                             \
        if (!(h & 0xFF)) {                                                                   \
            p++;                                                                             \
            VR_NEXT();                                                                       \
        }                                                                                    \
        if (__builtin_expect(!((h - 2) & 0x81FF), 1)) {                                      \
            const size_t n = h >> 9;                                                         \
            const uint8_t *const lim = p + 2 + 64;                                           \
            (void)lim;                                                                       \
            s = p + 2;                                                                       \
            p = s + n;                                                                       \
            if (!(CHECK))                                                                    \
                return NULL;                                                                 \
            VR_NEXT();                                                                       \
        }                                                                                    \
    }                                                                                        \
    if (__builtin_expect((size_t)(end - p) >= 2, 1)) {                                       \
        if (p[0] == 0) {                                                                     \
            p++;                                                                             \
            VR_NEXT();                                                                       \
        }                                                                                    \
        if (p[0] != 2)                                                                       \
            return NULL;                                                                     \
        if (!(p[1] & 0x81)) {                                                                \
            len = p[1] >> 1;                                                                 \
            p += 2;                                                                          \
            goto len_##k;                                                                    \
        }                                                                                    \
        p++;                                                                                 \
        goto str_slow_##k;                                                                   \
    }                                                                                        \
    if (p >= end)                                                                            \
        return NULL;                                                                         \
    if (*p == 0) {                                                                           \
        p++;                                                                                 \
        VR_NEXT();                                                                           \
    }                                                                                        \
    if (*p != 2)                                                                             \
        return NULL;                                                                         \
    p++;                                                                                     \
    goto str_slow_##k;                                                                       \
    str_##k:                                                                                 \
    if (__builtin_expect((uintptr_t)p <= safe && !(*p & 0x81), 1)) {                         \
        const size_t n = *p >> 1;                                                            \
        const uint8_t *const lim = p + 1 + 64;                                               \
        (void)lim;                                                                           \
        s = p + 1;                                                                           \
        p = s + n;                                                                           \
        if (!(CHECK))                                                                        \
            return NULL;                                                                     \
        VR_NEXT();                                                                           \
    }                                                                                        \
    str_slow_##k:                                                                            \
    if (!(p = vr_count(p, end, &len)))                                                       \
        return NULL;                                                                         \
    len_##k:                                                                                 \
    if (len > max_string || len > (uint64_t)(end - p))                                       \
        return NULL;                                                                         \
    s = p;                                                                                   \
    p += len;                                                                                \
    {                                                                                        \
        const size_t n = (size_t)len;                                                        \
        const uint8_t *const lim = end;                                                      \
        (void)n;                                                                             \
        (void)lim;                                                                           \
        if (!(CHECK))                                                                        \
            return NULL;                                                                     \
    }                                                                                        \
    VR_NEXT();

    VR_DISPATCH();

op_end:
    return p;
op_fail:
    return NULL;
op_bool:
    if (p >= end || *p > 1)
        return NULL;
    p++;
    VR_NEXT();
op_long:
    if (!(p = vr_skip_varint(p, end, 0)))
        return NULL;
    VR_NEXT();
op_int:
    if (!(p = vr_skip_varint(p, end, 1)))
        return NULL;
    VR_NEXT();
op_num: {
    int64_t x;
    if (!(p = vr_varint(p, end, &x)))
        return NULL;
    if ((ins->flags & VIF_INT) && (x < INT32_MIN || x > INT32_MAX))
        return NULL;
    if (ins->aux == VLT_TIME_MILLIS && (x < 0 || x >= 86400000LL))
        return NULL;
    if (ins->aux == VLT_TIME_MICROS && (x < 0 || x >= 86400000000LL))
        return NULL;
    const struct kb__vcons *c = ins->cons;
    if (c && ((c->has_min && x < c->min) || (c->has_max && x > c->max)))
        return NULL;
    VR_NEXT();
}
op_skip:
    if ((size_t)(end - p) < ins->a)
        return NULL;
    p += ins->a;
    VR_NEXT();
op_bytes:
    if (!(p = vr_count(p, end, &len)) || len > max_string || len > (uint64_t)(end - p))
        return NULL;
    if ((ins->flags & VIF_DECIMAL) && (len == 0 || len > ins->a))
        return NULL;
    p += len;
    VR_NEXT();
op_enum:
    if (!(p = vr_count(p, end, &len)) || len >= ins->a)
        return NULL;
    VR_NEXT();
op_union:
    if (!(p = vr_count(p, end, &len)) || len >= ins->a)
        return NULL;
    ins = prog + v->jumps[ins->b + len];
    VR_DISPATCH();
op_jump:
    ins = prog + ins->a;
    VR_DISPATCH();
op_array: {
    uint64_t total = 0, count;
    int64_t size;
    if (p < end && *p == 0) { /* empty, as optional lists mostly are */
        p++;
        ins = prog + ins->a;
        VR_DISPATCH();
    }
    if (!(p = vr_block(p, end, max_items, &total, &count, &size)))
        return NULL;
    if (!count) {
        ins = prog + ins->a;
        VR_DISPATCH();
    }
    loop[nl].block = p;
    loop[nl].size = size;
    loop[nl].total = total;
    loop[nl].left = count;
    nl++;
    VR_NEXT();
}
op_next: {
    struct vr_loop *l = &loop[nl - 1];
    if (--l->left) {
        ins = prog + ins->a;
        VR_DISPATCH();
    }
    if (l->size >= 0 && p - l->block != l->size)
        return NULL;
    uint64_t count;
    if (!(p = vr_block(p, end, max_items, &l->total, &count, &l->size)))
        return NULL;
    if (!count) {
        nl--;
        VR_NEXT();
    }
    l->block = p;
    l->left = count;
    ins = prog + ins->a;
    VR_DISPATCH();
}

    VR_STRING(RAW, 1)
    VR_STRING(TEXT, vr_ascii(s, n, lim) || vr_utf8_rest(s, n, lim))
    VR_STRING(BSN, vr_bsn(s, n))
    VR_STRING(ANUMMER, vr_anummer(s, n))
    VR_STRING(GBA, vr_gba_date(s, n))
    VR_STRING(DATUM, vr_date(s, n))
    VR_STRING(PATTERN, ins->cons->pattern->fixed
                           ? vr_pattern_fixed(ins->cons->pattern, s, n, lim)
                           : vr_pattern(ins->cons->pattern, s, n, lim))
    VR_STRING(ALLOWED, vr_allowed(ins->cons, s, n, lim))
    VR_STRING(UUID, vr_uuid(s, n))
    VR_STRING(ANY,
              (!(ins->flags & VIF_UTF8) || vr_ascii(s, n, lim) ||
               vr_utf8_rest(s, n, lim)) &&
                  (!(ins->flags & VIF_UUID) || vr_uuid(s, n)) &&
                  (!ins->cons || string_rule(ins->cons, s, n, lim) == VR_OK))
#undef VR_STRING
#undef VR_NEXT
#undef VR_DISPATCH
}

#endif
