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
 */
#ifndef KB_VALIDATE_RUN_H
#define KB_VALIDATE_RUN_H

#include "validate_internal.h"

/* Avro long at p: one-byte values inline, the rest in validate.c. */
static inline const uint8_t *vr_varint(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    if (__builtin_expect(p < end && *p < 0x80, 1)) {
        *out = (int64_t)((uint64_t)(*p >> 1) ^ (0 - (uint64_t)(*p & 1)));
        return p + 1;
    }
    return kb__validate_varint(p, end, out);
}

/* A non-negative index or length at p into *out; NULL when malformed,
 * truncated or negative. */
static inline const uint8_t *vr_count(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    if (__builtin_expect(p < end && *p < 0x80, 1)) {
        if (*p & 1)
            return NULL;
        *out = *p >> 1;
        return p + 1;
    }
    int64_t x;
    p = kb__validate_varint(p, end, &x);
    if (!p || x < 0)
        return NULL;
    *out = (uint64_t)x;
    return p;
}

static inline int vr_pattern(const struct kb__vpattern *pat, const uint8_t *s, size_t n,
                             const uint8_t *limit)
{
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
 * path: the digits are tested eight at a time, the arithmetic is the same.
 * They must agree with check.c on every input (the perf notes at the top
 * of bench/validate/bench_validate.c say how that was checked). */

/* 1 when all of s[0..8) are ASCII digits: every byte's high nibble is 3,
 * and still 3 after adding 6 (no carry crosses bytes once all are 0x3?). */
static inline int vr_digits8(const uint8_t *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    const uint64_t hi = 0xF0F0F0F0F0F0F0F0ull;
    return ((w & hi) | (((w + 0x0606060606060606ull) & hi) >> 4)) == 0x3333333333333333ull;
}

static inline int vr_digit(uint8_t b)
{
    return (unsigned)(b - '0') <= 9;
}

static inline int vr_bsn(const uint8_t *s, size_t n)
{
    if (n != 9 || !vr_digits8(s) || !vr_digit(s[8]))
        return 0;
    int sum = 0;
    for (int i = 0; i < 8; i++)
        sum += (9 - i) * (s[i] - '0');
    sum -= s[8] - '0';
    return sum % 11 == 0 && memcmp(s, "000000000", 9) != 0;
}

static inline int vr_anummer(const uint8_t *s, size_t n)
{
    if (n != 10 || !vr_digits8(s) || !vr_digit(s[8]) || !vr_digit(s[9]) || s[0] == '0')
        return 0;
    int sum = 0, weighted = 0;
    for (int i = 0; i < 10; i++) {
        int d = s[i] - '0';
        if (i > 0 && s[i] == s[i - 1])
            return 0;
        sum += d;
        weighted += d << i;
    }
    return (sum % 11 == 0 || sum % 11 == 5) && weighted % 11 == 0;
}

/* JJJJMMDD into year, month, day; 0 when not 8 digits. */
static inline int vr_date_parts(const uint8_t *s, size_t n, int *y, int *m, int *d)
{
    if (n != 8 || !vr_digits8(s))
        return 0;
    *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    *m = (s[4] - '0') * 10 + (s[5] - '0');
    *d = (s[6] - '0') * 10 + (s[7] - '0');
    return 1;
}

static inline int vr_days_in_month(int y, int m)
{
    static const uint8_t days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

static inline int vr_gba_date(const uint8_t *s, size_t n)
{
    int y, m, d;
    if (!vr_date_parts(s, n, &y, &m, &d))
        return 0;
    if (m == 0)
        return d == 0;
    if (y == 0 || m > 12)
        return 0;
    return d == 0 || d <= vr_days_in_month(y, m);
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
    if (c->n_allowed && !kb__vcode_find(c->allowed, c->allowed_lens, c->n_allowed, s, n))
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

static const uint8_t *run(const struct kb_validator *v, const uint8_t *p, const uint8_t *end)
{
    const struct kb__vins *const prog = v->prog;
    const struct kb__vins *ins = prog;
    const uint64_t max_string = v->max_string, max_items = v->max_items;
    struct vr_loop loop[KB_VRUN_MAX_LOOPS];
    unsigned nl = 0;
    for (;;) {
        switch ((enum kb__viop)ins->op) {
        case VI_END: return p;
        case VI_FAIL: return NULL;
        case VI_BOOL:
            if (p >= end || *p > 1)
                return NULL;
            p++;
            ins++;
            continue;
        case VI_LONG: {
            int64_t x;
            if (!(p = vr_varint(p, end, &x)))
                return NULL;
            ins++;
            continue;
        }
        case VI_INT: {
            int64_t x;
            if (!(p = vr_varint(p, end, &x)) || x < INT32_MIN || x > INT32_MAX)
                return NULL;
            ins++;
            continue;
        }
        case VI_NUM: {
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
            ins++;
            continue;
        }
        case VI_SKIP:
            if ((size_t)(end - p) < ins->a)
                return NULL;
            p += ins->a;
            ins++;
            continue;
        case VI_BYTES: {
            uint64_t len;
            if (!(p = vr_count(p, end, &len)) || len > max_string || len > (uint64_t)(end - p))
                return NULL;
            if ((ins->flags & VIF_DECIMAL) && (len == 0 || len > ins->a))
                return NULL;
            p += len;
            ins++;
            continue;
        }
        case VI_OPT_STR:
            if (p >= end)
                return NULL;
            if (*p == ins->aux) { /* the null branch */
                p++;
                ins++;
                continue;
            }
            if (*p != (ins->aux ^ 2))
                return NULL;
            p++;
            /* fall through */
        case VI_STR: {
            uint64_t len;
            if (!(p = vr_count(p, end, &len)) || len > max_string || len > (uint64_t)(end - p))
                return NULL;
            const uint8_t *s = p;
            p += len;
            if (ins->flags) {
                /* UTF-8 is decoded only when a byte is not ASCII. */
                if (!vr_ascii(s, (size_t)len, end) && !utf8(s, (size_t)len, end))
                    return NULL;
                if ((ins->flags & VIF_UUID) && !vr_uuid(s, (size_t)len))
                    return NULL;
            }
            switch ((enum kb__vrulekind)ins->rule) {
            case VRK_NONE: break;
            case VRK_BSN:
                if (!vr_bsn(s, (size_t)len))
                    return NULL;
                break;
            case VRK_ANUMMER:
                if (!vr_anummer(s, (size_t)len))
                    return NULL;
                break;
            case VRK_GBA:
                if (!vr_gba_date(s, (size_t)len))
                    return NULL;
                break;
            case VRK_PATTERN:
                if (!vr_pattern(ins->cons->pattern, s, (size_t)len, end))
                    return NULL;
                break;
            case VRK_ALLOWED:
                if (!kb__vcode_find(ins->cons->allowed, ins->cons->allowed_lens,
                                    ins->cons->n_allowed, s, (size_t)len))
                    return NULL;
                break;
            case VRK_ANY:
                if (string_rule(ins->cons, s, (size_t)len, end) != VR_OK)
                    return NULL;
                break;
            }
            ins++;
            continue;
        }
        case VI_ENUM: {
            uint64_t idx;
            if (!(p = vr_count(p, end, &idx)) || idx >= ins->a)
                return NULL;
            ins++;
            continue;
        }
        case VI_UNION: {
            uint64_t idx;
            if (!(p = vr_count(p, end, &idx)) || idx >= ins->a)
                return NULL;
            ins = prog + v->jumps[ins->b + idx];
            continue;
        }
        case VI_JUMP: ins = prog + ins->a; continue;
        case VI_ARRAY: {
            uint64_t total = 0, count;
            int64_t size;
            if (!(p = vr_block(p, end, max_items, &total, &count, &size)))
                return NULL;
            if (!count) {
                ins = prog + ins->a;
                continue;
            }
            loop[nl].block = p;
            loop[nl].size = size;
            loop[nl].total = total;
            loop[nl].left = count;
            nl++;
            ins++;
            continue;
        }
        case VI_NEXT: {
            struct vr_loop *l = &loop[nl - 1];
            if (--l->left) {
                ins = prog + ins->a;
                continue;
            }
            if (l->size >= 0 && p - l->block != l->size)
                return NULL;
            uint64_t count;
            if (!(p = vr_block(p, end, max_items, &l->total, &count, &l->size)))
                return NULL;
            if (!count) {
                nl--;
                ins++;
                continue;
            }
            l->block = p;
            l->left = count;
            ins = prog + ins->a;
            continue;
        }
        }
        return NULL; /* not reached: every operation is handled above */
    }
}

#endif
