/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate.c - compiles an Avro schema with its kb.* constraint attributes
 * into a flat program (validate_internal.h) and checks Avro binary payloads
 * against it without decoding them into values: every byte is looked at
 * once, lengths and counts are checked against the buffer and the limits
 * before anything is trusted, and the hot loops run in the SIMD kernels
 * chosen for this CPU.
 *
 * A rejection names the rule and the byte offset where the failing value
 * starts; the field path is built only on failure, while the recursion
 * unwinds, so the accepting path pays nothing for it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate_internal.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

#define DEFAULT_MAX_STRING (1u << 20)
#define DEFAULT_MAX_ITEMS  100000u
#define DEFAULT_MAX_DEPTH  64u
#define HARD_MAX_DEPTH     1000u
#define NO_NODE            UINT32_MAX

/* ------------------------------------------------------------------ kernels */

const struct kb__validate_kernels *kb__validate_kernels_get(const char *name)
{
    __builtin_cpu_init();
    if (!strcmp(name, "scalar"))
        return &kb__validate_kernels_scalar;
#ifdef KB_HAVE_SSE42
    if (!strcmp(name, "sse42") && __builtin_cpu_supports("sse4.2"))
        return &kb__validate_kernels_sse42;
#endif
#ifdef KB_HAVE_AVX2
    if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2"))
        return &kb__validate_kernels_avx2;
#endif
    return NULL;
}

static const struct kb__validate_kernels *kernels_best(void)
{
    static const char *const order[] = {"avx2", "sse42", "scalar"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const struct kb__validate_kernels *k = kb__validate_kernels_get(order[i]);
        if (k)
            return k;
    }
    return &kb__validate_kernels_scalar;
}

const char *kb_validate_simd_auto(void)
{
    const char *env = getenv("KETENBUS_SIMD");
    if (env && *env) {
        const struct kb__validate_kernels *k = kb__validate_kernels_get(env);
        return k ? k->name : NULL;
    }
    return kernels_best()->name;
}

int kb_validate_simd_usable(const char *name)
{
    return name && kb__validate_kernels_get(name) != NULL;
}

const char *kb_validate_simd(const kb_validator_t *v)
{
    return v->k->name;
}

/* ------------------------------------------------------------ compilation */

/* State while compiling: the validator being built and where errors go. */
struct compile {
    kb_validator_t *v;
    const char *table_dir; /* folder of code tables */
    char *errstr;
    size_t errstr_size;
};

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *n = realloc(*arr, ncap * elem);
    if (!n)
        return -1;
    *arr = n;
    *cap = ncap;
    return 0;
}

static int cerr(struct compile *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cerr(struct compile *c, const char *fmt, ...)
{
    if (c->errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errstr, c->errstr_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static uint32_t node_add(struct compile *c, uint8_t op)
{
    kb_validator_t *v = c->v;
    if (grow((void **)&v->nodes, &v->cap_nodes, v->n_nodes + 1, sizeof *v->nodes)) {
        cerr(c, "out of memory");
        return NO_NODE;
    }
    struct kb__vnode *n = &v->nodes[v->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    return (uint32_t)v->n_nodes++;
}

static const struct {
    const char *name;
    uint8_t op;
} primitives[] = {
    {"null", VOP_NULL},   {"boolean", VOP_BOOLEAN}, {"int", VOP_INT},       {"long", VOP_LONG},
    {"float", VOP_FLOAT}, {"double", VOP_DOUBLE},   {"bytes", VOP_BYTES},   {"string", VOP_STRING},
};

static int primitive_op(const char *name)
{
    for (size_t i = 0; i < sizeof primitives / sizeof primitives[0]; i++)
        if (!strcmp(name, primitives[i].name))
            return primitives[i].op;
    return -1;
}

/* Full name of @p name in namespace @p ns (a dotted name is already full). */
static char *full_name(const char *name, const char *ns)
{
    size_t nl = strlen(name), sl = ns ? strlen(ns) : 0;
    char *out = malloc(nl + sl + 2);
    if (!out)
        return NULL;
    if (strchr(name, '.') || !sl)
        memcpy(out, name, nl + 1);
    else
        snprintf(out, nl + sl + 2, "%s.%s", ns, name);
    return out;
}

static uint32_t find_named(const kb_validator_t *v, const char *fullname)
{
    for (size_t i = 0; i < v->n_nodes; i++)
        if (v->nodes[i].fullname && !strcmp(v->nodes[i].fullname, fullname))
            return (uint32_t)i;
    return NO_NODE;
}

/* Namespace a named type's children inherit: the one of its full name. */
static char *namespace_of(const char *fullname)
{
    const char *dot = strrchr(fullname, '.');
    return dot ? strndup(fullname, (size_t)(dot - fullname)) : strdup("");
}

static uint32_t parse_type(struct compile *c, json_t *j, const char *ns, const char *where);

/* kb.* attributes that carry information but no constraint. */
static int kb_attr_informational(const char *key)
{
    return !strcmp(key, "kb.eventType") || !strcmp(key, "kb.schemaId") ||
           !strcmp(key, "kb.personal") || !strcmp(key, "kb.pseudonym");
}

static int check_type_attrs(struct compile *c, json_t *obj, const char *where)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        if (!strncmp(key, "kb.", 3) && !kb_attr_informational(key))
            return cerr(c, "%s: constraint attribute \"%s\" belongs on a record field", where,
                        key);
    }
    return 0;
}

static int parse_logical(struct compile *c, uint32_t t, json_t *obj, const char *where)
{
    json_t *lt = json_object_get(obj, "logicalType");
    if (!lt)
        return 0;
    if (!json_is_string(lt))
        return cerr(c, "%s: logicalType must be a string", where);
    const char *name = json_string_value(lt);
    struct kb__vnode *n = &c->v->nodes[t];
    /* Unknown logical types, or known ones on the wrong base type, are
     * ignored as the Avro specification says: the base type still holds. */
    if (!strcmp(name, "date") && n->op == VOP_INT)
        n->logical = VLT_DATE;
    else if (!strcmp(name, "time-millis") && n->op == VOP_INT)
        n->logical = VLT_TIME_MILLIS;
    else if (!strcmp(name, "time-micros") && n->op == VOP_LONG)
        n->logical = VLT_TIME_MICROS;
    else if (!strcmp(name, "timestamp-millis") && n->op == VOP_LONG)
        n->logical = VLT_TIMESTAMP_MILLIS;
    else if (!strcmp(name, "timestamp-micros") && n->op == VOP_LONG)
        n->logical = VLT_TIMESTAMP_MICROS;
    else if (!strcmp(name, "uuid") && n->op == VOP_STRING)
        n->logical = VLT_UUID;
    else if (!strcmp(name, "decimal") && (n->op == VOP_BYTES || n->op == VOP_FIXED)) {
        json_t *prec = json_object_get(obj, "precision");
        json_t *scale = json_object_get(obj, "scale");
        json_int_t p = json_is_integer(prec) ? json_integer_value(prec) : 0;
        json_int_t s = json_is_integer(scale) ? json_integer_value(scale) : 0;
        if (p < 1 || p > 1000 || s < 0 || s > p || (scale && !json_is_integer(scale)))
            return cerr(c, "%s: decimal needs precision >= 1 and 0 <= scale <= precision",
                        where);
        /* Bytes of the smallest two's complement number holding every
         * p-digit value: 8 * bytes - 1 >= p * log2(10). */
        uint32_t bytes = 1;
        while ((double)(8 * bytes - 1) < (double)p * 3.321928094887362)
            bytes++;
        if (n->op == VOP_FIXED && bytes > n->n)
            return cerr(c, "%s: decimal precision %lld does not fit fixed(%u)", where,
                        (long long)p, n->n);
        n->logical = VLT_DECIMAL;
        if (n->op == VOP_BYTES)
            n->n = bytes;
    }
    return 0;
}

static uint32_t parse_record(struct compile *c, json_t *j, const char *ns, const char *where)
{
    kb_validator_t *v = c->v;
    json_t *name = json_object_get(j, "name");
    json_t *fields = json_object_get(j, "fields");
    if (!json_is_string(name) || !json_is_array(fields)) {
        cerr(c, "%s: record needs a name and a fields array", where);
        return NO_NODE;
    }
    json_t *jns = json_object_get(j, "namespace");
    char *fn = full_name(json_string_value(name), json_is_string(jns) ? json_string_value(jns) : ns);
    if (!fn) {
        cerr(c, "out of memory");
        return NO_NODE;
    }
    if (find_named(v, fn) != NO_NODE) {
        cerr(c, "%s: type %s defined twice", where, fn);
        free(fn);
        return NO_NODE;
    }
    uint32_t t = node_add(c, VOP_RECORD);
    if (t == NO_NODE) {
        free(fn);
        return NO_NODE;
    }
    v->nodes[t].fullname = fn; /* registered before the fields: recursion works */
    v->nodes[t].def = j;
    size_t nf = json_array_size(fields);
    /* Reserve the record's contiguous field slots before children add theirs. */
    if (grow((void **)&v->fields, &v->cap_fields, v->n_fields + nf, sizeof *v->fields)) {
        cerr(c, "out of memory");
        return NO_NODE;
    }
    size_t first = v->n_fields;
    v->n_fields += nf;
    if (nf) /* a record without fields may have no field array at all */
        memset(&v->fields[first], 0, nf * sizeof *v->fields);
    v->nodes[t].first = (uint32_t)first;
    v->nodes[t].n = (uint32_t)nf;
    char *child_ns = namespace_of(fn);
    if (!child_ns) {
        cerr(c, "out of memory");
        return NO_NODE;
    }
    uint32_t ret = t;
    for (size_t i = 0; i < nf; i++) {
        json_t *f = json_array_get(fields, i);
        json_t *fname = json_object_get(f, "name");
        if (!json_is_object(f) || !json_is_string(fname) || !json_object_get(f, "type")) {
            cerr(c, "%s: field %zu of %s needs a name and a type", where, i, fn);
            ret = NO_NODE;
            break;
        }
        for (size_t k = first; k < first + i; k++)
            if (!strcmp(v->fields[k].name, json_string_value(fname))) {
                cerr(c, "%s: field %s defined twice in %s", where, json_string_value(fname), fn);
                ret = NO_NODE;
                goto out;
            }
        char fwhere[256];
        snprintf(fwhere, sizeof fwhere, "%s.%s", fn, json_string_value(fname));
        v->fields[first + i].name = strdup(json_string_value(fname));
        v->fields[first + i].def = f;
        if (!v->fields[first + i].name) {
            cerr(c, "out of memory");
            ret = NO_NODE;
            break;
        }
        uint32_t ft = parse_type(c, json_object_get(f, "type"), child_ns, fwhere);
        if (ft == NO_NODE) {
            ret = NO_NODE;
            break;
        }
        v->fields[first + i].type = ft;
    }
out:
    free(child_ns);
    return ret;
}

static uint32_t parse_enum_fixed(struct compile *c, json_t *j, const char *ns, const char *where,
                                 int is_enum)
{
    kb_validator_t *v = c->v;
    json_t *name = json_object_get(j, "name");
    if (!json_is_string(name)) {
        cerr(c, "%s: %s needs a name", where, is_enum ? "enum" : "fixed");
        return NO_NODE;
    }
    json_t *jns = json_object_get(j, "namespace");
    char *fn = full_name(json_string_value(name), json_is_string(jns) ? json_string_value(jns) : ns);
    if (!fn) {
        cerr(c, "out of memory");
        return NO_NODE;
    }
    if (find_named(v, fn) != NO_NODE) {
        cerr(c, "%s: type %s defined twice", where, fn);
        free(fn);
        return NO_NODE;
    }
    uint32_t t = node_add(c, is_enum ? VOP_ENUM : VOP_FIXED);
    if (t == NO_NODE) {
        free(fn);
        return NO_NODE;
    }
    v->nodes[t].fullname = fn;
    v->nodes[t].def = j;
    if (is_enum) {
        json_t *syms = json_object_get(j, "symbols");
        if (!json_is_array(syms) || json_array_size(syms) == 0) {
            cerr(c, "%s: enum %s needs symbols", where, fn);
            return NO_NODE;
        }
        v->nodes[t].n = (uint32_t)json_array_size(syms);
    } else {
        json_t *size = json_object_get(j, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0 ||
            json_integer_value(size) > INT32_MAX) {
            cerr(c, "%s: fixed %s needs a size", where, fn);
            return NO_NODE;
        }
        v->nodes[t].n = (uint32_t)json_integer_value(size);
        if (parse_logical(c, t, j, where))
            return NO_NODE;
    }
    return t;
}

static uint32_t parse_type(struct compile *c, json_t *j, const char *ns, const char *where)
{
    kb_validator_t *v = c->v;
    if (json_is_string(j)) {
        const char *name = json_string_value(j);
        int op = primitive_op(name);
        if (op >= 0) {
            uint32_t t = node_add(c, (uint8_t)op);
            if (t != NO_NODE)
                v->nodes[t].def = j;
            return t;
        }
        char *fn = full_name(name, ns);
        if (!fn) {
            cerr(c, "out of memory");
            return NO_NODE;
        }
        uint32_t t = find_named(v, fn);
        if (t == NO_NODE && !strchr(name, '.'))
            t = find_named(v, name); /* a name in the null namespace */
        free(fn);
        if (t == NO_NODE)
            cerr(c, "%s: unknown type \"%s\"", where, name);
        return t;
    }
    if (json_is_array(j)) {
        size_t nb = json_array_size(j);
        if (nb == 0) {
            cerr(c, "%s: empty union", where);
            return NO_NODE;
        }
        uint32_t t = node_add(c, VOP_UNION);
        if (t == NO_NODE)
            return NO_NODE;
        v->nodes[t].def = j;
        if (grow((void **)&v->branches, &v->cap_branches, v->n_branches + nb,
                 sizeof *v->branches)) {
            cerr(c, "out of memory");
            return NO_NODE;
        }
        size_t first = v->n_branches;
        v->n_branches += nb;
        v->nodes[t].first = (uint32_t)first;
        v->nodes[t].n = (uint32_t)nb;
        for (size_t i = 0; i < nb; i++) {
            uint32_t b = parse_type(c, json_array_get(j, i), ns, where);
            if (b == NO_NODE)
                return NO_NODE;
            if (v->nodes[b].op == VOP_UNION) {
                cerr(c, "%s: union directly inside a union", where);
                return NO_NODE;
            }
            v->branches[first + i] = b;
        }
        return t;
    }
    if (!json_is_object(j)) {
        cerr(c, "%s: a type must be a name, an object or a union", where);
        return NO_NODE;
    }
    if (check_type_attrs(c, j, where))
        return NO_NODE;
    json_t *type = json_object_get(j, "type");
    if (!json_is_string(type)) {
        if (type && (json_is_object(type) || json_is_array(type)))
            return parse_type(c, type, ns, where);
        cerr(c, "%s: type object without a \"type\"", where);
        return NO_NODE;
    }
    const char *tn = json_string_value(type);
    int op = primitive_op(tn);
    if (op >= 0) {
        uint32_t t = node_add(c, (uint8_t)op);
        if (t == NO_NODE)
            return NO_NODE;
        v->nodes[t].def = j;
        if (parse_logical(c, t, j, where))
            return NO_NODE;
        return t;
    }
    if (!strcmp(tn, "record") || !strcmp(tn, "error"))
        return parse_record(c, j, ns, where);
    if (!strcmp(tn, "enum"))
        return parse_enum_fixed(c, j, ns, where, 1);
    if (!strcmp(tn, "fixed"))
        return parse_enum_fixed(c, j, ns, where, 0);
    if (!strcmp(tn, "array") || !strcmp(tn, "map")) {
        json_t *items = json_object_get(j, !strcmp(tn, "array") ? "items" : "values");
        if (!items) {
            cerr(c, "%s: %s without %s", where, tn, !strcmp(tn, "array") ? "items" : "values");
            return NO_NODE;
        }
        uint32_t t = node_add(c, !strcmp(tn, "array") ? VOP_ARRAY : VOP_MAP);
        if (t == NO_NODE)
            return NO_NODE;
        v->nodes[t].def = j;
        uint32_t it = parse_type(c, items, ns, where);
        if (it == NO_NODE)
            return NO_NODE;
        v->nodes[t].first = it;
        return t;
    }
    /* {"type": "nl.brp.Persoon"}: a reference written as an object. */
    return parse_type(c, type, ns, where);
}

/* ------------------------------------------------------------ constraints */

static void cclass_add(struct kb__cclass *cls, unsigned b)
{
    cls->bits[b >> 3] |= (uint8_t)(1u << (b & 7));
    if (b < 0x80)
        cls->lut_lo[b & 15] |= (uint8_t)(1u << (b >> 4));
}

static int cclass_disjoint(const struct kb__cclass *a, const struct kb__cclass *b)
{
    for (int i = 0; i < 32; i++)
        if (a->bits[i] & b->bits[i])
            return 0;
    return 1;
}

/* Parse one pattern atom's class at *pp into @p cls. ASCII only. */
static int parse_class(const char **pp, struct kb__cclass *cls, char *why, size_t why_size)
{
    const char *p = *pp;
    memset(cls, 0, sizeof *cls);
    if (*p == '\\') {
        p++;
        if (*p == 'd') {
            for (unsigned b = '0'; b <= '9'; b++)
                cclass_add(cls, b);
        } else if (*p && strchr("\\.[]{}()*+?^$|-", *p)) {
            cclass_add(cls, (unsigned char)*p);
        } else {
            snprintf(why, why_size, "unsupported escape \\%c", *p ? *p : '0');
            return -1;
        }
        *pp = p + 1;
        return 0;
    }
    if (*p == '.') {
        for (unsigned b = 0x20; b < 0x7F; b++)
            cclass_add(cls, b);
        *pp = p + 1;
        return 0;
    }
    if (*p == '[') {
        p++;
        int negate = 0;
        struct kb__cclass set;
        memset(&set, 0, sizeof set);
        if (*p == '^') {
            negate = 1;
            p++;
        }
        int n = 0;
        while (*p && (*p != ']' || n == 0)) {
            unsigned lo = (unsigned char)*p;
            if (lo == '\\' && p[1]) {
                p++;
                lo = (unsigned char)*p;
                if (lo == 'd') {
                    for (unsigned b = '0'; b <= '9'; b++)
                        cclass_add(&set, b);
                    p++;
                    n++;
                    continue;
                }
            }
            unsigned hi = lo;
            if (p[1] == '-' && p[2] && p[2] != ']') {
                hi = (unsigned char)p[2];
                p += 2;
            }
            if (lo >= 0x80 || hi >= 0x80 || hi < lo) {
                snprintf(why, why_size, "class ranges must be ASCII and ascending");
                return -1;
            }
            for (unsigned b = lo; b <= hi; b++)
                cclass_add(&set, b);
            p++;
            n++;
        }
        if (*p != ']') {
            snprintf(why, why_size, "unterminated [");
            return -1;
        }
        if (negate) {
            for (unsigned b = 0; b < 0x80; b++)
                if (!kb__cclass_has(&set, (uint8_t)b))
                    cclass_add(cls, b);
        } else {
            *cls = set;
        }
        *pp = p + 1;
        return 0;
    }
    unsigned char ch = (unsigned char)*p;
    if (ch >= 0x80 || strchr("()|^$*+?{}]", ch)) {
        snprintf(why, why_size, "unsupported or non-ASCII character at offset");
        return -1;
    }
    cclass_add(cls, ch);
    *pp = p + 1;
    return 0;
}

static int parse_count(const char **pp, uint32_t *out)
{
    const char *p = *pp;
    if (!isdigit((unsigned char)*p))
        return -1;
    unsigned long v = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 1000000)
            return -1;
        p++;
    }
    *out = (uint32_t)v;
    *pp = p;
    return 0;
}

/* The word form of a fixed-length pattern whose atoms are each one range of
 * bytes (struct kb__vpattern); leaves pat->fixed 0 for any other. */
static void pattern_fixed_form(struct kb__vpattern *pat)
{
    uint64_t lo[KB_VPAT_FIXED / 8], hi[KB_VPAT_FIXED / 8];
    size_t pos = 0;
    if (pat->min_len != pat->max_len || pat->min_len > KB_VPAT_FIXED)
        return;
    for (size_t k = 0; k < KB_VPAT_FIXED / 8; k++) {
        lo[k] = 0x8080808080808080ull;
        hi[k] = 0;
    }
    for (size_t i = 0; i < pat->n; i++) {
        const struct kb__vatom *a = &pat->atoms[i];
        unsigned first = 0x80, last = 0;
        for (unsigned b = 0; b < 0x80; b++) {
            if (kb__cclass_has(&a->cls, (uint8_t)b)) {
                if (first == 0x80)
                    first = b;
                last = b;
            }
        }
        if (a->min == 0)
            continue; /* min == max here: the atom matches nothing */
        if (first == 0x80)
            return; /* an empty class: no word form */
        for (unsigned b = first; b <= last; b++)
            if (!kb__cclass_has(&a->cls, (uint8_t)b))
                return; /* not one range */
        for (uint32_t r = 0; r < a->min; r++, pos++) {
            unsigned sh = 8 * (unsigned)(pos % 8);
            lo[pos / 8] = (lo[pos / 8] & ~(0xFFull << sh)) | ((uint64_t)(0x80 - first) << sh);
            hi[pos / 8] |= (uint64_t)(0x7F - last) << sh;
        }
    }
    memcpy(pat->fix_lo, lo, sizeof lo);
    memcpy(pat->fix_hi, hi, sizeof hi);
    pat->fixed = 1;
}

/* Compile "kb.pattern": atoms (a character, \d, ., [class], [^class]) with an
 * optional quantifier ({n}, {n,m}, {n,}, ?, *, +), anchored at both ends. A
 * variable-count atom must not share bytes with the atoms that could follow
 * it, so matching greedily is exact (no backtracking, linear time). */
static struct kb__vpattern *compile_pattern(const char *src, char *why, size_t why_size)
{
    struct kb__vpattern *pat = calloc(1, sizeof *pat);
    size_t cap = 0;
    if (!pat) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    const char *p = src;
    while (*p) {
        if (grow((void **)&pat->atoms, &cap, pat->n + 1, sizeof *pat->atoms)) {
            snprintf(why, why_size, "out of memory");
            goto out_free;
        }
        struct kb__vatom *a = &pat->atoms[pat->n];
        if (parse_class(&p, &a->cls, why, why_size))
            goto out_free;
        a->min = a->max = 1;
        if (*p == '?') {
            a->min = 0;
            p++;
        } else if (*p == '*') {
            a->min = 0;
            a->max = UINT32_MAX;
            p++;
        } else if (*p == '+') {
            a->max = UINT32_MAX;
            p++;
        } else if (*p == '{') {
            p++;
            if (parse_count(&p, &a->min)) {
                snprintf(why, why_size, "bad {n,m} count");
                goto out_free;
            }
            a->max = a->min;
            if (*p == ',') {
                p++;
                a->max = UINT32_MAX;
                if (*p != '}' && parse_count(&p, &a->max)) {
                    snprintf(why, why_size, "bad {n,m} count");
                    goto out_free;
                }
            }
            if (*p != '}' || a->max < a->min) {
                snprintf(why, why_size, "bad {n,m} count");
                goto out_free;
            }
            p++;
        }
        pat->n++;
    }
    pat->min_len = 0;
    pat->max_len = 0;
    for (size_t i = 0; i < pat->n; i++) {
        const struct kb__vatom *a = &pat->atoms[i];
        pat->min_len += a->min;
        if (pat->max_len != SIZE_MAX)
            pat->max_len = a->max == UINT32_MAX ? SIZE_MAX : pat->max_len + a->max;
        if (a->min == a->max)
            continue;
        for (size_t k = i + 1; k < pat->n; k++) {
            if (!cclass_disjoint(&a->cls, &pat->atoms[k].cls)) {
                snprintf(why, why_size,
                         "ambiguous: atom %zu repeats a variable number of times and shares "
                         "characters with atom %zu after it",
                         i + 1, k + 1);
                goto out_free;
            }
            if (pat->atoms[k].min > 0)
                break;
        }
    }
    pattern_fixed_form(pat);
    return pat;
out_free:
    free(pat->atoms);
    free(pat);
    return NULL;
}

static void pattern_free(struct kb__vpattern *pat)
{
    if (!pat)
        return;
    free(pat->atoms);
    free(pat);
}

/* Order of code tables and allowed sets: by length, then bytes. */
static int code_cmp(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

static int code_qsort_cmp(const void *a, const void *b)
{
    const char *sa = *(const char *const *)a, *sb = *(const char *const *)b;
    return code_cmp(sa, strlen(sa), sb);
}

/* The strlen of each of n codes, for kb__vcode_find(); NULL when out of memory. */
static size_t *code_lens(char *const *codes, size_t n)
{
    size_t *lens = malloc((n ? n : 1) * sizeof *lens);
    if (lens)
        for (size_t i = 0; i < n; i++)
            lens[i] = strlen(codes[i]);
    return lens;
}

static void codes_free(char **codes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(codes[i]);
    free(codes);
}

/* Load <dir>/<name>.txt: one code per line, the code ends at the first TAB
 * (the rest is a description); lines starting with '#' and empty lines are
 * skipped; CR LF line ends are fine. */
static const struct kb__vtable *load_table(struct compile *c, const char *name, const char *where)
{
    kb_validator_t *v = c->v;
    for (size_t i = 0; i < v->n_tables; i++)
        if (!strcmp(v->tables[i]->name, name))
            return v->tables[i];
    for (const char *q = name; *q; q++)
        if (!isalnum((unsigned char)*q) && *q != '-' && *q != '_') {
            cerr(c, "%s: kb.codeTable name \"%s\" may hold only letters, digits, - and _", where,
                 name);
            return NULL;
        }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.txt", c->table_dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        cerr(c, "%s: code table %s: %s", where, path, strerror(errno));
        return NULL;
    }
    struct kb__vtable *t = calloc(1, sizeof *t);
    struct kb__vtable **nt = realloc(v->tables, (v->n_tables + 1) * sizeof *nt);
    if (!t || !nt) {
        free(t);
        if (nt)
            v->tables = nt;
        fclose(f);
        cerr(c, "out of memory");
        return NULL;
    }
    v->tables = nt;
    v->tables[v->n_tables++] = t; /* owned from here, freed with the validator */
    t->name = strdup(name);
    size_t cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    int bad = !t->name;
    while (!bad && (got = getline(&line, &line_cap, f)) >= 0) {
        size_t len = strcspn(line, "\t\r\n");
        if (line[0] == '#' || len == 0)
            continue;
        if (grow((void **)&t->codes, &cap, t->n + 1, sizeof *t->codes) ||
            !(t->codes[t->n] = strndup(line, len))) {
            bad = 1;
            break;
        }
        t->n++;
    }
    free(line);
    fclose(f);
    if (bad) {
        cerr(c, "out of memory");
        return NULL;
    }
    if (!t->n) {
        cerr(c, "%s: code table %s is empty", where, path);
        return NULL;
    }
    qsort(t->codes, t->n, sizeof *t->codes, code_qsort_cmp);
    if (!(t->lens = code_lens(t->codes, t->n))) {
        cerr(c, "out of memory");
        return NULL;
    }
    return t;
}

/* Which leaf types a constraint on field type @p t reaches: bit op set. */
static unsigned leaf_ops(const kb_validator_t *v, uint32_t t, int depth)
{
    const struct kb__vnode *n = &v->nodes[t];
    if (depth > 8)
        return 0;
    switch (n->op) {
    case VOP_UNION: {
        unsigned ops = 0;
        for (uint32_t i = 0; i < n->n; i++)
            ops |= leaf_ops(v, v->branches[n->first + i], depth + 1);
        return ops;
    }
    case VOP_ARRAY:
    case VOP_MAP: return leaf_ops(v, n->first, depth + 1);
    case VOP_NULL: return 0;
    default: return 1u << n->op;
    }
}

static int json_to_u32(json_t *j, uint32_t *out)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > UINT32_MAX)
        return -1;
    *out = (uint32_t)json_integer_value(j);
    return 0;
}

/* The word form of a small kb.allowed set of short values (struct kb__vcons). */
static void allowed_words(struct kb__vcons *c)
{
    c->n_allowed_words = 0;
    if (c->n_allowed > KB_VALLOWED_WORDS)
        return;
    for (size_t i = 0; i < c->n_allowed; i++)
        if (c->allowed_lens[i] > 8)
            return;
    for (size_t i = 0; i < c->n_allowed; i++) {
        uint64_t w = 0;
        for (size_t k = 0; k < c->allowed_lens[i]; k++)
            w |= (uint64_t)(uint8_t)c->allowed[i][k] << (8 * k);
        c->allowed_word[i] = w;
        c->allowed_wlen[i] = (uint8_t)c->allowed_lens[i];
    }
    c->n_allowed_words = (uint8_t)c->n_allowed;
}

static int parse_field_cons(struct compile *c, struct kb__vfield *f, const char *where)
{
    kb_validator_t *v = c->v;
    struct kb__vcons cons;
    memset(&cons, 0, sizeof cons);
    int any = 0, wants_string = 0, wants_number = 0;
    const char *key;
    json_t *val;
    char why[160];
    json_object_foreach(f->def, key, val)
    {
        if (strncmp(key, "kb.", 3) || kb_attr_informational(key))
            continue;
        any = 1;
        if (!strcmp(key, "kb.check")) {
            const char *s = json_string_value(val);
            if (s && !strcmp(s, "bsn"))
                cons.check = VCK_BSN;
            else if (s && !strcmp(s, "anummer"))
                cons.check = VCK_ANUMMER;
            else
                goto bad_value;
            wants_string = 1;
        } else if (!strcmp(key, "kb.format")) {
            const char *s = json_string_value(val);
            if (s && !strcmp(s, "gba-datum"))
                cons.format = VFMT_GBA_DATUM;
            else if (s && !strcmp(s, "datum"))
                cons.format = VFMT_DATUM;
            else
                goto bad_value;
            wants_string = 1;
        } else if (!strcmp(key, "kb.pattern")) {
            if (!json_is_string(val))
                goto bad_value;
            pattern_free(cons.pattern);
            cons.pattern = compile_pattern(json_string_value(val), why, sizeof why);
            if (!cons.pattern) {
                cerr(c, "%s: kb.pattern: %s", where, why);
                goto out_fail;
            }
            wants_string = 1;
        } else if (!strcmp(key, "kb.allowed")) {
            if (!json_is_array(val) || !json_array_size(val) || cons.allowed)
                goto bad_value;
            cons.allowed = calloc(json_array_size(val), sizeof *cons.allowed);
            if (!cons.allowed) {
                cerr(c, "out of memory");
                goto out_fail;
            }
            for (size_t i = 0; i < json_array_size(val); i++) {
                const char *s = json_string_value(json_array_get(val, i));
                if (!s)
                    goto bad_value;
                if (!(cons.allowed[cons.n_allowed] = strdup(s))) {
                    cerr(c, "out of memory");
                    goto out_fail;
                }
                cons.n_allowed++;
            }
            qsort(cons.allowed, cons.n_allowed, sizeof *cons.allowed, code_qsort_cmp);
            if (!(cons.allowed_lens = code_lens(cons.allowed, cons.n_allowed))) {
                cerr(c, "out of memory");
                goto out_fail;
            }
            allowed_words(&cons);
            wants_string = 1;
        } else if (!strcmp(key, "kb.codeTable")) {
            if (!json_is_string(val))
                goto bad_value;
            cons.table = load_table(c, json_string_value(val), where);
            if (!cons.table)
                goto out_fail;
            wants_string = 1;
        } else if (!strcmp(key, "kb.minLength")) {
            if (json_to_u32(val, &cons.min_len))
                goto bad_value;
            cons.has_min_len = 1;
            wants_string = 1;
        } else if (!strcmp(key, "kb.maxLength")) {
            if (json_to_u32(val, &cons.max_len))
                goto bad_value;
            cons.has_max_len = 1;
            wants_string = 1;
        } else if (!strcmp(key, "kb.minimum")) {
            if (!json_is_integer(val))
                goto bad_value;
            cons.min = json_integer_value(val);
            cons.has_min = 1;
            wants_number = 1;
        } else if (!strcmp(key, "kb.maximum")) {
            if (!json_is_integer(val))
                goto bad_value;
            cons.max = json_integer_value(val);
            cons.has_max = 1;
            wants_number = 1;
        } else {
            cerr(c, "%s: unknown attribute \"%s\" (see schemas/README.md)", where, key);
            goto out_fail;
        }
    }
    if (!any)
        return 0;
    unsigned ops = leaf_ops(v, f->type, 0);
    if (wants_string && (!ops || (ops & ~(1u << VOP_STRING)))) {
        cerr(c, "%s: string constraints on a field whose values are not all strings", where);
        goto out_fail;
    }
    if (wants_number && (!ops || (ops & ~((1u << VOP_INT) | (1u << VOP_LONG))))) {
        cerr(c, "%s: kb.minimum/kb.maximum on a field whose values are not int or long", where);
        goto out_fail;
    }
    struct kb__vcons *heap = malloc(sizeof *heap);
    if (!heap || grow((void **)&v->cons, &v->cap_cons, v->n_cons + 1, sizeof *v->cons)) {
        free(heap);
        cerr(c, "out of memory");
        goto out_fail;
    }
    *heap = cons;
    v->cons[v->n_cons++] = heap;
    f->cons = heap;
    return 0;
bad_value:
    cerr(c, "%s: bad value for \"%s\" (see schemas/README.md)", where, key);
out_fail:
    pattern_free(cons.pattern);
    codes_free(cons.allowed, cons.n_allowed);
    free(cons.allowed_lens);
    return -1;
}

void kb_validate_destroy(kb_validator_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n_nodes; i++)
        free(v->nodes[i].fullname);
    for (size_t i = 0; i < v->n_fields; i++)
        free(v->fields[i].name);
    for (size_t i = 0; i < v->n_cons; i++) {
        pattern_free(v->cons[i]->pattern);
        codes_free(v->cons[i]->allowed, v->cons[i]->n_allowed);
        free(v->cons[i]->allowed_lens);
        free(v->cons[i]);
    }
    for (size_t i = 0; i < v->n_tables; i++) {
        free(v->tables[i]->name);
        codes_free(v->tables[i]->codes, v->tables[i]->n);
        free(v->tables[i]->lens);
        free(v->tables[i]);
    }
    free(v->tables);
    free(v->cons);
    free(v->nodes);
    free(v->fields);
    free(v->branches);
    free(v->prog);
    free(v->jumps);
    if (v->json)
        json_decref(v->json);
    free(v);
}

/* ------------------------------------------------------------ flattening */

/* Programs longer than this (records inlined over and over) stay on the
 * node walker. */
#define MAX_PROG 65536u

/* State while flattening the nodes into the program. */
struct flat {
    kb_validator_t *v;
    uint8_t *open;  /* per node: 1 while that record is being inlined */
    unsigned loops; /* arrays and maps around the current point */
    int status;     /* 0: fine so far; 1: not expressible; -1: out of memory */
};

/* How the interpreter checks a string with the rules @p c (NULL: none),
 * @p uuid when it has that logical type (enum kb__vskind); the flags
 * VSK_ANY needs go to *flags. */
static uint8_t string_kind(const kb_validator_t *v, const struct kb__vcons *c, int uuid,
                           uint8_t *flags)
{
    *flags = 0;
    if (v->structure_only)
        return VSK_RAW;
    int n = !c ? 0
               : (c->check != VCK_NONE) + (c->format != VFMT_NONE) + (c->pattern != NULL) +
                     (c->n_allowed != 0) + (c->table != NULL) + c->has_min_len + c->has_max_len;
    if (n == 0)
        return uuid ? VSK_UUID : VSK_TEXT;
    if (n == 1 && !uuid) {
        if (c->check == VCK_BSN)
            return VSK_BSN;
        if (c->check == VCK_ANUMMER)
            return VSK_ANUMMER;
        if (c->format == VFMT_GBA_DATUM)
            return VSK_GBA;
        if (c->format == VFMT_DATUM)
            return VSK_DATUM;
        if (c->pattern)
            return VSK_PATTERN;
        if (c->n_allowed) {
            /* Passing must imply valid UTF-8 (jansson gives no other, but
             * the kind's skipping of the check should not rest on that). */
            size_t k = 0;
            while (k < c->n_allowed &&
                   kb__utf8_scalar((const uint8_t *)c->allowed[k], c->allowed_lens[k]))
                k++;
            if (k == c->n_allowed)
                return VSK_ALLOWED;
        }
    }
    *flags = VIF_UTF8 | (uuid ? VIF_UUID : 0);
    return VSK_ANY;
}

static uint32_t ins_add(struct flat *f, uint8_t op)
{
    kb_validator_t *v = f->v;
    if (v->n_prog >= MAX_PROG) {
        f->status = 1;
        return 0;
    }
    if (grow((void **)&v->prog, &v->cap_prog, v->n_prog + 1, sizeof *v->prog)) {
        f->status = -1;
        return 0;
    }
    memset(&v->prog[v->n_prog], 0, sizeof *v->prog);
    v->prog[v->n_prog].op = op;
    return (uint32_t)v->n_prog++;
}

/* Emit the instructions for a value of type @p t with the field rules
 * @p cons at nesting @p depth, mirroring walk_value() below check by check. */
static void flatten(struct flat *f, uint32_t t, const struct kb__vcons *cons, unsigned depth)
{
    kb_validator_t *v = f->v;
    const struct kb__vnode *n = &v->nodes[t];
    const struct kb__vcons *c = v->structure_only ? NULL : cons;
    uint32_t i;
    if (f->status)
        return;
    switch ((enum kb__vop)n->op) {
    case VOP_NULL: return;
    case VOP_BOOLEAN: ins_add(f, VI_BOOL); return;
    case VOP_INT:
    case VOP_LONG: {
        int timed = n->logical == VLT_TIME_MILLIS || n->logical == VLT_TIME_MICROS;
        int ranged = c && (c->has_min || c->has_max);
        if (!timed && !ranged) {
            ins_add(f, n->op == VOP_INT ? VI_INT : VI_LONG);
            return;
        }
        i = ins_add(f, VI_NUM);
        if (f->status)
            return;
        v->prog[i].flags = n->op == VOP_INT ? VIF_INT : 0;
        v->prog[i].aux = n->logical;
        v->prog[i].cons = ranged ? c : NULL;
        return;
    }
    case VOP_FLOAT:
    case VOP_DOUBLE:
    case VOP_FIXED:
        if (n->op == VOP_FIXED && n->n > v->max_string) {
            ins_add(f, VI_FAIL);
            return;
        }
        i = ins_add(f, VI_SKIP);
        if (!f->status)
            v->prog[i].a = n->op == VOP_FLOAT ? 4 : n->op == VOP_DOUBLE ? 8 : n->n;
        return;
    case VOP_BYTES:
        i = ins_add(f, VI_BYTES);
        if (!f->status && n->logical == VLT_DECIMAL) {
            v->prog[i].flags = VIF_DECIMAL;
            v->prog[i].a = n->n;
        }
        return;
    case VOP_STRING: {
        uint8_t flags, kind = string_kind(v, c, n->logical == VLT_UUID, &flags);
        i = ins_add(f, (uint8_t)(VI_STR + kind));
        if (f->status)
            return;
        v->prog[i].flags = flags;
        v->prog[i].cons = c;
        return;
    }
    case VOP_ENUM:
        i = ins_add(f, VI_ENUM);
        if (!f->status)
            v->prog[i].a = n->n;
        return;
    case VOP_RECORD:
        if (depth >= v->max_depth) {
            ins_add(f, VI_FAIL);
            return;
        }
        if (f->open[t]) {
            f->status = 1; /* a recursive type */
            return;
        }
        f->open[t] = 1;
        for (uint32_t k = 0; k < n->n && !f->status; k++) {
            const struct kb__vfield *fd = &v->fields[n->first + k];
            flatten(f, fd->type, fd->cons, depth + 1);
        }
        f->open[t] = 0;
        return;
    case VOP_ARRAY:
    case VOP_MAP: {
        if (depth >= v->max_depth) {
            ins_add(f, VI_FAIL);
            return;
        }
        if (f->loops >= KB_VRUN_MAX_LOOPS) {
            f->status = 1;
            return;
        }
        uint32_t begin = ins_add(f, VI_ARRAY);
        uint32_t start = (uint32_t)v->n_prog;
        if (n->op == VOP_MAP) {
            ins_add(f, v->structure_only ? VI_STR + VSK_RAW : VI_STR + VSK_TEXT); /* the key */
        }
        f->loops++;
        flatten(f, n->first, cons, depth + 1);
        f->loops--;
        i = ins_add(f, VI_NEXT);
        if (f->status)
            return;
        v->prog[i].a = start;
        v->prog[begin].a = (uint32_t)v->n_prog;
        return;
    }
    case VOP_UNION: {
        /* ["null", "string"], the usual optional field, is one operation;
         * the rarer ["string", "null"] takes the general form below. */
        if (n->n == 2) {
            const struct kb__vnode *b0 = &v->nodes[v->branches[n->first]];
            const struct kb__vnode *b1 = &v->nodes[v->branches[n->first + 1]];
            if (b0->op == VOP_NULL && b1->op == VOP_STRING) {
                uint8_t flags, kind = string_kind(v, c, b1->logical == VLT_UUID, &flags);
                i = ins_add(f, (uint8_t)(VI_OPT + kind));
                if (f->status)
                    return;
                v->prog[i].flags = flags;
                v->prog[i].cons = c;
                return;
            }
        }
        uint32_t u = ins_add(f, VI_UNION);
        if (f->status)
            return;
        if (grow((void **)&v->jumps, &v->cap_jumps, v->n_jumps + n->n, sizeof *v->jumps)) {
            f->status = -1;
            return;
        }
        uint32_t first = (uint32_t)v->n_jumps;
        v->n_jumps += n->n;
        v->prog[u].a = n->n;
        v->prog[u].b = first;
        /* Each branch ends with a jump past the others, patched below; the
         * jump slot of a null branch is patched to that point too. */
        uint32_t *exits = calloc(n->n, sizeof *exits);
        if (!exits) {
            f->status = -1;
            return;
        }
        for (uint32_t k = 0; k < n->n && !f->status; k++) {
            uint32_t bt = v->branches[n->first + k];
            v->jumps[first + k] = (uint32_t)v->n_prog;
            exits[k] = UINT32_MAX;
            if (v->nodes[bt].op == VOP_NULL)
                continue;
            flatten(f, bt, cons, depth);
            if (k + 1 < n->n)
                exits[k] = ins_add(f, VI_JUMP);
        }
        if (!f->status) {
            uint32_t after = (uint32_t)v->n_prog;
            for (uint32_t k = 0; k < n->n; k++) {
                if (v->nodes[v->branches[n->first + k]].op == VOP_NULL)
                    v->jumps[first + k] = after;
                else if (exits[k] != UINT32_MAX)
                    v->prog[exits[k]].a = after;
            }
        }
        free(exits);
        return;
    }
    }
    f->status = 1;
}

/* Build v->prog; leaves it NULL when the schema cannot be flattened.
 * Returns -1 when out of memory. */
static int flatten_program(kb_validator_t *v)
{
    struct flat f = {.v = v};
    f.open = calloc(v->n_nodes ? v->n_nodes : 1, 1);
    if (!f.open)
        return -1;
    flatten(&f, v->root, NULL, 0);
    ins_add(&f, VI_END);
    free(f.open);
    if (f.status) {
        free(v->prog);
        free(v->jumps);
        v->prog = NULL;
        v->jumps = NULL;
        v->n_prog = v->cap_prog = v->n_jumps = v->cap_jumps = 0;
    }
    return f.status < 0 ? -1 : 0;
}

/* 1 when a value of node @p t can take no bytes at all: null, a fixed of
 * size 0, a record of such fields. @p open marks the records being
 * looked at (a record that holds itself without a union is no finite
 * value: not zero-width). */
static int zero_width(const kb_validator_t *v, uint32_t t, char *open)
{
    const struct kb__vnode *n = &v->nodes[t];
    switch ((enum kb__vop)n->op) {
    case VOP_NULL: return 1;
    case VOP_FIXED: return n->n == 0;
    case VOP_RECORD: {
        if (open[t])
            return 0;
        open[t] = 1;
        int zw = 1;
        for (uint32_t k = 0; k < n->n && zw; k++)
            zw = zero_width(v, v->fields[n->first + k].type, open);
        open[t] = 0;
        return zw;
    }
    default: return 0; /* a number, length, count, symbol or branch takes a byte at least */
    }
}

/*
 * An array whose items take no bytes costs the validator max_items visits
 * for a two-byte block; inside another array or map each of the outer
 * items (a byte each) can do that again: about 25,000 visits per input
 * byte at the defaults, minutes for one large event at the gate. Such a
 * schema (arrays of nulls inside arrays) describes nothing real, so it is
 * refused when compiled rather than bounded in every walker. @p seen holds
 * two bits per node (looked at outside, inside a repetition) for
 * recursive types.
 */
static int check_nested_zero_width(struct compile *c, uint32_t t, int inside, char *seen,
                                   char *open)
{
    const kb_validator_t *v = c->v;
    char bit = (char)(inside ? 2 : 1);
    if (seen[t] & bit)
        return 0;
    seen[t] |= bit;
    const struct kb__vnode *n = &v->nodes[t];
    switch ((enum kb__vop)n->op) {
    case VOP_ARRAY:
        if (inside && zero_width(v, n->first, open))
            return cerr(c, "schema: an array of items that take no bytes (null, or records of "
                           "them) inside an array or map: one event could make the validator "
                           "visit max_items items per byte; refused");
        return check_nested_zero_width(c, n->first, 1, seen, open);
    case VOP_MAP: return check_nested_zero_width(c, n->first, 1, seen, open);
    case VOP_RECORD:
        for (uint32_t k = 0; k < n->n; k++)
            if (check_nested_zero_width(c, v->fields[n->first + k].type, inside, seen, open))
                return -1;
        return 0;
    case VOP_UNION:
        for (uint32_t k = 0; k < n->n; k++)
            if (check_nested_zero_width(c, v->branches[n->first + k], inside, seen, open))
                return -1;
        return 0;
    default: return 0;
    }
}

kb_validator_t *kb_validate_compile(const char *schema_json, const struct kb_validate_opts *opts,
                                    char *errstr, size_t errstr_size)
{
    struct kb_validate_opts defaults;
    memset(&defaults, 0, sizeof defaults);
    if (!opts)
        opts = &defaults;
    kb_validator_t *v = calloc(1, sizeof *v);
    if (!v) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    struct compile c = {.v = v, .errstr = errstr, .errstr_size = errstr_size};
    v->max_string = opts->max_string ? opts->max_string : DEFAULT_MAX_STRING;
    v->max_items = opts->max_items ? opts->max_items : DEFAULT_MAX_ITEMS;
    v->max_depth = opts->max_depth ? opts->max_depth : DEFAULT_MAX_DEPTH;
    if (v->max_depth > HARD_MAX_DEPTH)
        v->max_depth = HARD_MAX_DEPTH;
    v->structure_only = opts->structure_only;

    const char *simd = opts->simd;
    if (!simd || !*simd)
        simd = getenv("KETENBUS_SIMD");
    if (simd && *simd) {
        v->k = kb__validate_kernels_get(simd);
        if (!v->k) {
            cerr(&c, "SIMD path \"%s\" is unknown, not built in, or not supported by this CPU "
                     "(scalar, sse42, avx2)",
                 simd);
            goto out_fail;
        }
    } else {
        v->k = kernels_best();
    }
    const char *env_tables = getenv("KETENBUS_CODETABLES");
    c.table_dir = opts->codetable_dir          ? opts->codetable_dir
                  : env_tables && *env_tables ? env_tables
                                               : KB_SCHEMA_DIR "/codetables";

    json_error_t jerr;
    v->json = json_loads(schema_json ? schema_json : "", JSON_REJECT_DUPLICATES, &jerr);
    if (!v->json) {
        cerr(&c, "schema JSON, line %d: %s", jerr.line, jerr.text);
        goto out_fail;
    }
    v->root = parse_type(&c, v->json, "", "schema");
    if (v->root == NO_NODE)
        goto out_fail;
    /* Constraints after every type exists, so kb.* on a field whose type is
     * defined later in the file are checked against the full type. */
    for (size_t i = 0; i < v->n_fields; i++) {
        char where[256];
        snprintf(where, sizeof where, "field %s", v->fields[i].name);
        if (parse_field_cons(&c, &v->fields[i], where))
            goto out_fail;
    }
    char *seen = calloc(v->n_nodes, 2);
    if (!seen) {
        cerr(&c, "out of memory");
        goto out_fail;
    }
    int nested = check_nested_zero_width(&c, v->root, 0, seen, seen + v->n_nodes);
    free(seen);
    if (nested)
        goto out_fail;
    if (flatten_program(v)) {
        cerr(&c, "out of memory");
        goto out_fail;
    }
    if (v->prog)
        v->k->run(v, NULL, NULL); /* link the program to the path's interpreter */
    return v;
out_fail:
    kb_validate_destroy(v);
    return NULL;
}

/* ------------------------------------------------------------- validation */

/* State of one kb_validate() call. */
struct walk {
    const kb_validator_t *v;
    const struct kb__validate_kernels *k;
    const uint8_t *base; /* payload start, for offsets */
    const uint8_t *end;  /* one past the payload */
    struct kb_validate_result *res; /* where a rejection goes (may be NULL) */
};

static const uint8_t *fail(struct walk *w, const uint8_t *at, const char *rule, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));
static const uint8_t *fail(struct walk *w, const uint8_t *at, const char *rule, const char *fmt,
                           ...)
{
    struct kb_validate_result *r = w->res;
    if (r) {
        r->offset = (size_t)(at - w->base);
        r->rule = rule;
        r->path[0] = '\0';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->message, sizeof r->message, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

/* Put @p seg (with a '.' after it unless the path starts with '[') in front
 * of the result's path, truncating at the buffer's end. */
static void path_prepend(struct walk *w, const char *seg)
{
    struct kb_validate_result *r = w->res;
    if (!r)
        return;
    size_t sl = strlen(seg), pl = strlen(r->path);
    size_t sep = (pl && r->path[0] != '[') ? 1 : 0;
    if (sl + sep + pl + 1 > sizeof r->path) {
        if (sl + sep + 1 > sizeof r->path)
            return;
        pl = sizeof r->path - 1 - sl - sep;
    }
    memmove(r->path + sl + sep, r->path, pl);
    memcpy(r->path, seg, sl);
    if (sep)
        r->path[sl] = '.';
    r->path[sl + sep + pl] = '\0';
}

const uint8_t *kb__validate_varint(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    uint64_t u = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (p + i >= end)
            return NULL;
        uint8_t b = p[i];
        u |= (uint64_t)(b & 0x7F) << (7 * i);
        if (b < 0x80) {
            if ((i > 0 && b == 0) || (i == 9 && b > 1))
                return NULL;
            *out = (int64_t)((u >> 1) ^ (0 - (u & 1)));
            return p + i + 1;
        }
    }
    return NULL;
}

/* Read an Avro long (zig-zag varint): at most 10 bytes, the last one not 0
 * (the shortest encoding only) and within 64 bits. */
static const uint8_t *varint_slow(struct walk *w, const uint8_t *p, int64_t *out)
{
    if (p >= w->end)
        return fail(w, p, "truncated", "payload ends where a number was expected");
    unsigned len = w->k->varint_len(p, w->end);
    if (!len) {
        if (w->end - p < 10)
            return fail(w, p, "truncated", "payload ends inside a number");
        return fail(w, p, "varint", "number longer than 10 bytes");
    }
    uint64_t u = 0;
    for (unsigned i = 0; i < len; i++)
        u |= (uint64_t)(p[i] & 0x7F) << (7 * i);
    uint8_t last = p[len - 1];
    if (len > 1 && last == 0)
        return fail(w, p, "varint", "number not in its shortest encoding");
    if (len == 10 && last > 1)
        return fail(w, p, "varint", "number beyond 64 bits");
    *out = (int64_t)((u >> 1) ^ (0 - (u & 1)));
    return p + len;
}

static inline const uint8_t *varint(struct walk *w, const uint8_t *p, int64_t *out)
{
    if (__builtin_expect(p < w->end && *p < 0x80, 1)) {
        *out = (int64_t)((uint64_t)(*p >> 1) ^ (0 - (uint64_t)(*p & 1)));
        return p + 1;
    }
    return varint_slow(w, p, out);
}

static int is_hex(uint8_t b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

static int uuid_ok(const uint8_t *s, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_hex(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* The kb.* string rules of @p c on s[0..n) (UTF-8 already checked): the
 * kernel path's string_rule() (validate_run.h) decides, this names it. */
static const uint8_t *string_rules(struct walk *w, const uint8_t *at, const uint8_t *s, size_t n,
                                   const struct kb__vcons *c)
{
    switch ((enum kb__vrule)w->k->string_rule(c, s, n, w->end)) {
    case VR_OK: return at;
    case VR_BSN: return fail(w, at, "bsn-11proef", "not a BSN (9 digits passing the 11-proef)");
    case VR_ANUMMER:
        return fail(w, at, "anummer", "not an A-nummer (10 digits, A-nummer rules)");
    case VR_GBA_DATUM:
        return fail(w, at, "gba-datum", "not a GBA date JJJJMMDD (00 for unknown parts)");
    case VR_DATUM: return fail(w, at, "datum", "not a full calendar date JJJJMMDD");
    case VR_PATTERN: return fail(w, at, "pattern", "does not match the field's kb.pattern");
    case VR_ALLOWED: return fail(w, at, "allowed", "not one of the field's kb.allowed values");
    case VR_TABLE: return fail(w, at, "code-table", "not a code of table %s", c->table->name);
    case VR_MIN_LENGTH:
        return fail(w, at, "min-length", "shorter than %u characters", c->min_len);
    case VR_MAX_LENGTH:
        return fail(w, at, "max-length", "longer than %u characters", c->max_len);
    }
    return fail(w, at, "internal", "unknown string rule");
}

/* Length-prefixed value (bytes, string, map key): returns the data start,
 * *len its length; checks the length against buffer and limit. */
static const uint8_t *length_prefixed(struct walk *w, const uint8_t *p, size_t *len)
{
    int64_t l;
    const uint8_t *q = varint(w, p, &l);
    if (!q)
        return NULL;
    if (l < 0)
        return fail(w, p, "length", "negative length");
    if ((uint64_t)l > w->v->max_string)
        return fail(w, p, "max-string", "longer than the limit of %u bytes", w->v->max_string);
    if ((uint64_t)l > (uint64_t)(w->end - q))
        return fail(w, p, "length", "length beyond the end of the payload");
    *len = (size_t)l;
    return q;
}

static const uint8_t *walk_value(struct walk *w, const uint8_t *p, uint32_t t,
                                 const struct kb__vcons *c, unsigned depth);

/* Array and map blocks: count (negative: count then byte size), items, until
 * a zero count. A given byte size must match the items' bytes exactly. */
static const uint8_t *walk_blocks(struct walk *w, const uint8_t *p, const struct kb__vnode *n,
                                  const struct kb__vcons *c, unsigned depth)
{
    uint64_t total = 0;
    for (;;) {
        const uint8_t *at = p;
        int64_t count, size = -1;
        p = varint(w, p, &count);
        if (!p)
            return NULL;
        if (count == 0)
            return p;
        if (count < 0) {
            if (count == INT64_MIN)
                return fail(w, at, "negative-count", "block count out of range");
            count = -count;
            const uint8_t *sat = p;
            p = varint(w, p, &size);
            if (!p)
                return NULL;
            if (size < 0 || (uint64_t)size > (uint64_t)(w->end - p))
                return fail(w, sat, "length", "block size beyond the end of the payload");
        }
        total += (uint64_t)count;
        if (total > w->v->max_items)
            return fail(w, at, "max-items", "more than the limit of %u items", w->v->max_items);
        const uint8_t *block_start = p;
        for (int64_t i = 0; i < count; i++) {
            if (n->op == VOP_MAP) {
                size_t klen;
                const uint8_t *kat = p;
                const uint8_t *ks = length_prefixed(w, p, &klen);
                if (!ks || (!w->v->structure_only && !w->k->utf8(ks, klen, w->end))) {
                    if (ks)
                        fail(w, kat, "utf8", "map key is not valid UTF-8");
                    goto item_failed;
                }
                p = ks + klen;
            }
            p = walk_value(w, p, n->first, c, depth + 1);
            if (!p)
                goto item_failed;
            continue;
        item_failed:
            if (w->res) {
                char seg[32];
                snprintf(seg, sizeof seg, "[%llu]",
                         (unsigned long long)(total - (uint64_t)count + (uint64_t)i));
                path_prepend(w, seg);
            }
            return NULL;
        }
        if (size >= 0 && (p - block_start) != size)
            return fail(w, at, "length", "block byte size does not match its items");
    }
}

static const uint8_t *walk_value(struct walk *w, const uint8_t *p, uint32_t t,
                                 const struct kb__vcons *c, unsigned depth)
{
    const kb_validator_t *v = w->v;
    const struct kb__vnode *n = &v->nodes[t];
    int64_t x;
    const uint8_t *at = p;
    switch ((enum kb__vop)n->op) {
    case VOP_NULL: return p;
    case VOP_BOOLEAN:
        if (p >= w->end)
            return fail(w, p, "truncated", "payload ends where a boolean was expected");
        if (*p > 1)
            return fail(w, p, "boolean", "boolean byte is not 0 or 1");
        return p + 1;
    case VOP_INT:
    case VOP_LONG:
        p = varint(w, p, &x);
        if (!p)
            return NULL;
        if (n->op == VOP_INT && (x < INT32_MIN || x > INT32_MAX))
            return fail(w, at, "int-range", "int beyond 32 bits");
        if (n->logical == VLT_TIME_MILLIS && (x < 0 || x >= 86400000LL))
            return fail(w, at, "time-range", "time-millis outside one day");
        if (n->logical == VLT_TIME_MICROS && (x < 0 || x >= 86400000000LL))
            return fail(w, at, "time-range", "time-micros outside one day");
        if (c && !v->structure_only) {
            if (c->has_min && x < c->min)
                return fail(w, at, "minimum", "below kb.minimum %lld", (long long)c->min);
            if (c->has_max && x > c->max)
                return fail(w, at, "maximum", "above kb.maximum %lld", (long long)c->max);
        }
        return p;
    case VOP_FLOAT:
    case VOP_DOUBLE: {
        size_t sz = n->op == VOP_FLOAT ? 4 : 8;
        if ((size_t)(w->end - p) < sz)
            return fail(w, p, "truncated", "payload ends inside a floating-point number");
        return p + sz;
    }
    case VOP_BYTES:
    case VOP_STRING: {
        size_t len;
        const uint8_t *s = length_prefixed(w, p, &len);
        if (!s)
            return NULL;
        if (n->op == VOP_BYTES) {
            if (n->logical == VLT_DECIMAL && (len == 0 || len > n->n))
                return fail(w, at, "decimal", "decimal has no bytes or more than its precision");
            return s + len;
        }
        if (v->structure_only)
            return s + len;
        if (!w->k->utf8(s, len, w->end)) {
            /* Locate the first bad byte for the message (the slow path). */
            size_t good = 0;
            while (good < len && kb__utf8_scalar(s, good + 1))
                good++;
            return fail(w, at, "utf8", "invalid UTF-8 at byte %zu of the string", good);
        }
        if (n->logical == VLT_UUID && !uuid_ok(s, len))
            return fail(w, at, "uuid", "not a UUID in 8-4-4-4-12 hex form");
        if (c && !string_rules(w, at, s, len, c))
            return NULL;
        return s + len;
    }
    case VOP_FIXED:
        if ((size_t)(w->end - p) < n->n)
            return fail(w, p, "truncated", "payload ends inside a fixed value");
        if (n->n > v->max_string)
            return fail(w, p, "max-string", "fixed longer than the limit of %u bytes",
                        v->max_string);
        return p + n->n;
    case VOP_ENUM:
        p = varint(w, p, &x);
        if (!p)
            return NULL;
        if (x < 0 || x >= (int64_t)n->n)
            return fail(w, at, "enum-index", "enum index %lld outside 0..%u", (long long)x,
                        n->n - 1);
        return p;
    case VOP_RECORD: {
        if (depth >= v->max_depth)
            return fail(w, p, "max-depth", "nested deeper than the limit of %u", v->max_depth);
        const struct kb__vfield *f = &v->fields[n->first];
        for (uint32_t i = 0; i < n->n; i++, f++) {
            p = walk_value(w, p, f->type, f->cons, depth + 1);
            if (!p) {
                path_prepend(w, f->name);
                return NULL;
            }
        }
        return p;
    }
    case VOP_ARRAY:
    case VOP_MAP:
        if (depth >= v->max_depth)
            return fail(w, p, "max-depth", "nested deeper than the limit of %u", v->max_depth);
        return walk_blocks(w, p, n, c, depth);
    case VOP_UNION:
        p = varint(w, p, &x);
        if (!p)
            return NULL;
        if (x < 0 || x >= (int64_t)n->n)
            return fail(w, at, "union-index", "union index %lld outside 0..%u", (long long)x,
                        n->n - 1);
        return walk_value(w, p, v->branches[n->first + (uint32_t)x], c, depth);
    }
    return fail(w, p, "internal", "unknown program operation");
}

kb_err_t kb_validate(const kb_validator_t *v, const uint8_t *payload, size_t len,
                     struct kb_validate_result *res)
{
    static const uint8_t empty[1];
    if (!payload)
        payload = empty;
    /* The flat program decides; only a rejection takes the node walker,
     * which finds the same failure and says what and where. */
    if (v->prog && v->k->run(v, payload, payload + len) == payload + len)
        return KB_OK;
    return kb__validate_walk(v, payload, len, res);
}

int kb__validate_fast(const kb_validator_t *v, const uint8_t *payload, size_t len)
{
    static const uint8_t empty[1];
    if (!v->prog)
        return -1;
    if (!payload)
        payload = empty;
    return v->k->run(v, payload, payload + len) == payload + len;
}

kb_err_t kb__validate_walk(const kb_validator_t *v, const uint8_t *payload, size_t len,
                           struct kb_validate_result *res)
{
    static const uint8_t empty[1];
    if (!payload)
        payload = empty;
    struct walk w = {.v = v, .k = v->k, .base = payload, .end = payload + len, .res = res};
    const uint8_t *p = walk_value(&w, payload, v->root, NULL, 0);
    if (!p)
        return KB_ERR_INVALID;
    if (p != w.end) {
        fail(&w, p, "trailing-bytes", "%zu bytes after the end of the datum",
             (size_t)(w.end - p));
        return KB_ERR_INVALID;
    }
    return KB_OK;
}

kb_err_t kb_validate_next(const kb_validator_t *v, const uint8_t *payload, size_t len,
                          size_t *used, struct kb_validate_result *res)
{
    static const uint8_t empty[1];
    if (!payload)
        payload = empty;
    if (v->prog) {
        const uint8_t *q = v->k->run(v, payload, payload + len);
        if (q) {
            *used = (size_t)(q - payload);
            return KB_OK;
        }
    }
    struct walk w = {.v = v, .k = v->k, .base = payload, .end = payload + len, .res = res};
    const uint8_t *p = walk_value(&w, payload, v->root, NULL, 0);
    if (!p)
        return KB_ERR_INVALID;
    *used = (size_t)(p - payload);
    return KB_OK;
}

/* --------------------------------------------------------------- skipping */

/* kb__validate_varint() with the one-byte case inline: most varints here
 * are union indexes and short lengths. */
static inline const uint8_t *skip_varint(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    if (__builtin_expect(p < end && *p < 0x80, 1)) {
        *out = (int64_t)((uint64_t)(*p >> 1) ^ (0 - (uint64_t)(*p & 1)));
        return p + 1;
    }
    return kb__validate_varint(p, end, out);
}

const uint8_t *kb__validate_skip(const kb_validator_t *v, uint32_t t, const uint8_t *p,
                                 const uint8_t *end, unsigned depth)
{
    const struct kb__vnode *n = &v->nodes[t];
    int64_t x;
    if (depth > v->max_depth)
        return NULL;
    switch ((enum kb__vop)n->op) {
    case VOP_NULL: return p;
    case VOP_BOOLEAN: return p < end ? p + 1 : NULL;
    case VOP_INT:
    case VOP_LONG:
    case VOP_ENUM: return skip_varint(p, end, &x);
    case VOP_FLOAT: return end - p >= 4 ? p + 4 : NULL;
    case VOP_DOUBLE: return end - p >= 8 ? p + 8 : NULL;
    case VOP_FIXED: return (size_t)(end - p) >= n->n ? p + n->n : NULL;
    case VOP_BYTES:
    case VOP_STRING:
        p = skip_varint(p, end, &x);
        if (!p || x < 0 || (uint64_t)x > (uint64_t)(end - p))
            return NULL;
        return p + x;
    case VOP_RECORD:
        for (uint32_t i = 0; i < n->n && p; i++)
            p = kb__validate_skip(v, v->fields[n->first + i].type, p, end, depth + 1);
        return p;
    case VOP_UNION:
        p = skip_varint(p, end, &x);
        if (!p || x < 0 || x >= (int64_t)n->n)
            return NULL;
        return kb__validate_skip(v, v->branches[n->first + (uint32_t)x], p, end, depth);
    case VOP_ARRAY:
    case VOP_MAP: {
        uint64_t total = 0;
        for (;;) {
            p = skip_varint(p, end, &x);
            if (!p)
                return NULL;
            if (x == 0)
                return p;
            if (x < 0) {
                int64_t size;
                if (x == INT64_MIN)
                    return NULL;
                x = -x;
                p = skip_varint(p, end, &size);
                if (!p || size < 0 || (uint64_t)size > (uint64_t)(end - p))
                    return NULL;
            }
            total += (uint64_t)x;
            if (total > v->max_items)
                return NULL;
            for (int64_t i = 0; i < x && p; i++) {
                if (n->op == VOP_MAP) {
                    int64_t kl;
                    p = skip_varint(p, end, &kl);
                    if (!p || kl < 0 || (uint64_t)kl > (uint64_t)(end - p))
                        return NULL;
                    p += kl;
                }
                p = kb__validate_skip(v, n->first, p, end, depth + 1);
            }
            if (!p)
                return NULL;
        }
    }
    }
    return NULL;
}
