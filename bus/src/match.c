/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * match.c - the subscription index and filter evaluation (see match.h).
 *
 * Index shape: type -> bucket; a bucket holds the subscriptions of that type
 * that require one exact ce_source in a source -> list table, and the rest
 * in a plain list. Invariant: every (subscription, type) pair is in exactly
 * one place, so a subscription is returned at most once per event.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <inttypes.h>

#include "match.h"

struct entry {
    const struct kb_sub *sub;
    size_t order;               /* position in kb_subs, to return matches in file order */
};

struct list {
    struct entry *items;
    size_t n, cap;
};

/* Open-addressing string -> list table. */
struct strmap {
    char **keys;
    struct list *vals;
    size_t cap;                 /* power of two; at most half full */
    size_t n;
};

struct bucket {
    struct strmap by_source;    /* subscriptions that require this exact source */
    struct list rest;           /* every other subscription of the type */
};

struct kb_matcher {
    struct strmap types;        /* type -> index into buckets (stored as list of one entry) */
    struct bucket *buckets;
    size_t n_buckets;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int list_add(struct list *l, const struct kb_sub *sub, size_t order)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 4;
        struct entry *n = realloc(l->items, ncap * sizeof *n);
        if (!n)
            return -1;
        l->items = n;
        l->cap = ncap;
    }
    l->items[l->n++] = (struct entry){sub, order};
    return 0;
}

static struct list *strmap_find(const struct strmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (!strcmp(m->keys[i], key))
            return &m->vals[i];
    }
}

static struct list *strmap_get(struct strmap *m, const char *key)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        char **nk = calloc(ncap, sizeof *nk);
        struct list *nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = hash(m->keys[i]) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    size_t i = hash(key) & (m->cap - 1);
    for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
        if (!strcmp(m->keys[i], key))
            return &m->vals[i];
    m->keys[i] = strdup(key);
    if (!m->keys[i])
        return NULL;
    m->n++;
    return &m->vals[i];
}

static void strmap_fini(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->keys[i]);
        free(m->vals[i].items);
    }
    free(m->keys);
    free(m->vals);
}

/* The ce_source the filter demands outright, or NULL: a top-level exact
 * source, or one inside a top-level all. */
static const char *required_source(const struct kb_filter *f)
{
    if (!f)
        return NULL;
    if (f->kind == KB_FILTER_EXACT && !strcmp(f->attr, "source"))
        return f->values[0];
    if (f->kind == KB_FILTER_ALL)
        for (size_t i = 0; i < f->n_children; i++) {
            const char *s = required_source(&f->children[i]);
            if (s)
                return s;
        }
    return NULL;
}

kb_matcher_t *kb_matcher_new(const struct kb_subs *subs)
{
    kb_matcher_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    for (size_t s = 0; s < subs->n; s++) {
        const struct kb_sub *sub = &subs->items[s];
        for (size_t t = 0; t < sub->n_types; t++) {
            struct list *slot = strmap_get(&m->types, sub->types[t]);
            if (!slot)
                goto out_fail;
            if (!slot->n) {
                struct bucket *nb = realloc(m->buckets, (m->n_buckets + 1) * sizeof *nb);
                if (!nb)
                    goto out_fail;
                m->buckets = nb;
                memset(&m->buckets[m->n_buckets], 0, sizeof *nb);
                /* The slot's one entry carries the bucket number in .order. */
                if (list_add(slot, NULL, m->n_buckets++))
                    goto out_fail;
            }
            struct bucket *b = &m->buckets[slot->items[0].order];
            const char *src = required_source(sub->filter);
            struct list *l = src ? strmap_get(&b->by_source, src) : &b->rest;
            if (!l || list_add(l, sub, s))
                goto out_fail;
        }
    }
    return m;
out_fail:
    kb_matcher_destroy(m);
    return NULL;
}

void kb_matcher_destroy(kb_matcher_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_buckets; i++) {
        strmap_fini(&m->buckets[i].by_source);
        free(m->buckets[i].rest.items);
    }
    free(m->buckets);
    strmap_fini(&m->types);
    free(m);
}

static const char *attr_value(const struct kb_event_attrs *a, const char *name, char *buf,
                              size_t cap)
{
    if (!strcmp(name, "id"))
        return a->id;
    if (!strcmp(name, "source"))
        return a->source;
    if (!strcmp(name, "type"))
        return a->type;
    if (!strcmp(name, "subject"))
        return a->subject[0] ? a->subject : NULL;
    if (!strcmp(name, "time"))
        return a->time[0] ? a->time : NULL;
    if (!strcmp(name, "dataref"))
        return a->dataref[0] ? a->dataref : NULL;
    if (!strcmp(name, "specversion"))
        return KB_EVENT_SPECVERSION;
    if (!strcmp(name, "datacontenttype"))
        return KB_EVENT_CONTENT_TYPE;
    if (!strcmp(name, "sequence")) {
        if (!a->sequence)
            return NULL;
        snprintf(buf, cap, "%llu", (unsigned long long)a->sequence);
        return buf;
    }
    return NULL;
}

/* Order two values: numerically when both are numbers, else as strings. */
static int compare(const char *a, const char *b)
{
    char *ea, *eb;
    errno = 0;
    double da = strtod(a, &ea), db = strtod(b, &eb);
    if (!errno && *a && *b && !*ea && !*eb)
        return da < db ? -1 : da > db;
    return strcmp(a, b);
}

/*
 * Three-valued, as in SQL: a comparison on an absent (or null) field is
 * UNKNOWN, `not` keeps UNKNOWN, `all` is FALSE if any child is FALSE else
 * UNKNOWN if any is, `any` is TRUE if any child is TRUE else UNKNOWN if any
 * is. Only TRUE delivers, so a missing value never widens what a
 * subscriber receives (`not: {field: ... in: [...]}` does not match a
 * person whose field is unknown). `exists` is always TRUE or FALSE.
 */
enum { F_FALSE = 0, F_TRUE = 1, F_UNKNOWN = 2 };

static int eval3(const struct kb_filter *f, const struct kb_event_attrs *attrs,
                 kb_field_get_cb *get, void *opaque)
{
    char buf[1024];
    switch (f->kind) {
    case KB_FILTER_EXACT:
    case KB_FILTER_PREFIX:
    case KB_FILTER_SUFFIX: {
        const char *v = attr_value(attrs, f->attr, buf, sizeof buf);
        if (!v)
            return F_UNKNOWN;
        size_t lv = strlen(v), lw = strlen(f->values[0]);
        if (f->kind == KB_FILTER_EXACT)
            return !strcmp(v, f->values[0]);
        if (f->kind == KB_FILTER_PREFIX)
            return lv >= lw && !memcmp(v, f->values[0], lw);
        return lv >= lw && !memcmp(v + lv - lw, f->values[0], lw);
    }
    case KB_FILTER_ALL: {
        int result = F_TRUE;
        for (size_t i = 0; i < f->n_children; i++) {
            int r = eval3(&f->children[i], attrs, get, opaque);
            if (r == F_FALSE)
                return F_FALSE;
            if (r == F_UNKNOWN)
                result = F_UNKNOWN;
        }
        return result;
    }
    case KB_FILTER_ANY: {
        int result = F_FALSE;
        for (size_t i = 0; i < f->n_children; i++) {
            int r = eval3(&f->children[i], attrs, get, opaque);
            if (r == F_TRUE)
                return F_TRUE;
            if (r == F_UNKNOWN)
                result = F_UNKNOWN;
        }
        return result;
    }
    case KB_FILTER_NOT: {
        int r = eval3(&f->children[0], attrs, get, opaque);
        return r == F_UNKNOWN ? F_UNKNOWN : !r;
    }
    case KB_FILTER_FIELD: {
        int have = get && get(opaque, f->path, buf, sizeof buf);
        if (f->op == KB_OP_EXISTS)
            return have == f->exists;
        if (!have)
            return F_UNKNOWN;
        if (f->op == KB_OP_IN) {
            for (size_t i = 0; i < f->n_values; i++)
                if (!compare(buf, f->values[i]))
                    return F_TRUE;
            return F_FALSE;
        }
        int c = compare(buf, f->values[0]);
        switch (f->op) {
        case KB_OP_EQ: return c == 0;
        case KB_OP_NE: return c != 0;
        case KB_OP_LT: return c < 0;
        case KB_OP_LE: return c <= 0;
        case KB_OP_GT: return c > 0;
        case KB_OP_GE: return c >= 0;
        default: return F_FALSE;
        }
    }
    }
    return F_FALSE;
}

int kb_filter_eval(const struct kb_filter *f, const struct kb_event_attrs *attrs,
                   kb_field_get_cb *get, void *opaque)
{
    return eval3(f, attrs, get, opaque) == F_TRUE;
}

static int accepts(const struct kb_sub *sub, const struct kb_event_attrs *attrs, int64_t time_ms,
                   kb_field_get_cb *get, void *opaque)
{
    if (time_ms < sub->valid_from_ms || time_ms >= sub->valid_until_ms)
        return 0;
    if (sub->follow && !kb_sub_follows(sub, attrs->subject, time_ms))
        return 0;
    return !sub->filter || kb_filter_eval(sub->filter, attrs, get, opaque);
}

static int by_order(const void *a, const void *b)
{
    size_t x = (*(const struct entry *const *)a)->order, y = (*(const struct entry *const *)b)->order;
    return x < y ? -1 : x > y;
}

size_t kb_matcher_match(const kb_matcher_t *m, const struct kb_event_attrs *attrs,
                        int64_t time_ms, kb_field_get_cb *get, void *opaque,
                        const struct kb_sub **out, size_t max)
{
    const struct list *slot = strmap_find(&m->types, attrs->type);
    if (!slot)
        return 0;
    const struct bucket *b = &m->buckets[slot->items[0].order];
    const struct list *lists[2] = {&b->rest, strmap_find(&b->by_source, attrs->source)};
    const struct entry *hits[256];
    size_t n = 0;
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; lists[l] && i < lists[l]->n && n < sizeof hits / sizeof hits[0]; i++)
            if (accepts(lists[l]->items[i].sub, attrs, time_ms, get, opaque))
                hits[n++] = &lists[l]->items[i];
    qsort(hits, n, sizeof hits[0], by_order);
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        out[k++] = hits[i]->sub;
    return k;
}

int kb_payload_field(void *opaque, const char *path, char *buf, size_t cap)
{
    struct kb_payload_view *pv = opaque;
    if (pv->failed)
        return 0;
    if (!pv->decoded) {
        if (avro_generic_value_new(pv->schema->iface, &pv->value)) {
            pv->failed = 1;
            return 0;
        }
        if (kb_schema_decode(pv->schema, pv->payload, pv->len, &pv->value, NULL, 0)) {
            avro_value_decref(&pv->value);
            pv->failed = 1;
            return 0;
        }
        pv->decoded = 1;
    }
    avro_value_t f;
    if (kb_value_path(&pv->value, path, 0, &f))
        return 0;
    switch (avro_value_get_type(&f)) {
    case AVRO_STRING: {
        const char *s;
        size_t size;
        avro_value_get_string(&f, &s, &size);
        snprintf(buf, cap, "%s", s);
        return 1;
    }
    case AVRO_INT32: {
        int32_t x;
        avro_value_get_int(&f, &x);
        snprintf(buf, cap, "%" PRId32, x);
        return 1;
    }
    case AVRO_INT64: {
        int64_t x;
        avro_value_get_long(&f, &x);
        snprintf(buf, cap, "%" PRId64, x);
        return 1;
    }
    case AVRO_DOUBLE: {
        double x;
        avro_value_get_double(&f, &x);
        snprintf(buf, cap, "%.17g", x);
        return 1;
    }
    case AVRO_FLOAT: {
        float x;
        avro_value_get_float(&f, &x);
        snprintf(buf, cap, "%.9g", (double)x);
        return 1;
    }
    case AVRO_BOOLEAN: {
        int x;
        avro_value_get_boolean(&f, &x);
        snprintf(buf, cap, "%s", x ? "true" : "false");
        return 1;
    }
    case AVRO_ENUM: {
        int x;
        avro_value_get_enum(&f, &x);
        const char *sym = avro_schema_enum_get(avro_value_get_schema(&f), x);
        snprintf(buf, cap, "%s", sym ? sym : "");
        return 1;
    }
    default:
        return 0; /* records, arrays, maps, bytes: not comparable as text */
    }
}

void kb_payload_view_fini(struct kb_payload_view *pv)
{
    if (pv->decoded)
        avro_value_decref(&pv->value);
    pv->decoded = 0;
}
