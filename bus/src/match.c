/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * match.c - the subscription index and filter evaluation (see match.h).
 *
 * Index shape: type -> bucket; a bucket holds the subscriptions of that type
 * that require one exact ce_source in a source -> list table; those that
 * require a payload field to equal one of a few values (`=` or `in`, at the
 * top or inside a top-level `all`) in a value -> list table per field path;
 * and the rest in a plain list. Invariant: every (subscription, type) pair is
 * in exactly one of these lists, or, for `in`, in the lists of its distinct
 * values of one path (an event has one value per path, so it meets the
 * subscription at most once). Candidates are then evaluated in full.
 *
 * Field values are looked up by a canonical key that makes two values the
 * same key exactly when the filter's comparison calls them equal: numbers
 * (both sides parse entirely) compare as numbers, everything else as bytes.
 * A key that is a whole number of up to 15 digits (codes, dates: most
 * values) is kept as that integer in a table of its own, so an event's
 * value of plain digits is parsed once and looked up without making,
 * hashing or comparing a string.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <inttypes.h>

#include "match.h"

/* One subscription in one list, with what accepting it needs most often
 * copied in, so a candidate costs no visit to the subscription itself. */
struct entry {
    const struct kb_sub *sub;
    int64_t valid_from_ms, valid_until_ms;
    uint32_t order;             /* position in kb_subs (matches are put in file order by
                                 * their address, see struct hits); in the type table's
                                 * one entry per type: the bucket number */
    uint8_t follows;            /* the subscription has a follow list */
    uint8_t decided;            /* its whole filter is the clause this list is keyed on:
                                 * being found here means the filter is true */
};

struct list {
    struct entry *items;
    uint32_t n, cap;
};

/*
 * Open-addressing string -> list table. At 10,000 subscriptions the tables
 * no longer fit the nearer caches, so the layout is about misses. Most
 * searches are for a key that is absent (an event's source or value that no
 * subscription names), so a search first reads a 16-bit tag per slot from an
 * array of its own: a table of 1,600 slots has 3 KB of tags, which stay in
 * the nearer caches where the 51 KB of slots would not, and an absent key
 * mostly ends at its first tag. A slot holds the key's hash and where its
 * key and list are, and once the matcher is built (strmap_freeze) each key
 * sits in one block right after its entries: a hit costs the slot and one
 * more line for key and entries together.
 */
struct slot {
    uint64_t hash; /* of an integer table: hash_integer(), the key itself */
    char *key;     /* after freezing, inside items' block; NULL: integer table */
    struct list val;
};

struct strmap {
    struct slot *slots;
    uint16_t *tags;             /* per slot: 0 empty, else tag_of(its hash) */
    size_t cap;                 /* power of two; at most a quarter full, so a search
                                 * for an absent key mostly ends at its first tag */
    size_t n;
};

/* Subscriptions that require payload field `path` to have one of a few values. */
struct field_index {
    char *path;
    struct strmap by_value;   /* canonical value key -> subscriptions (see lookup_key) */
    struct strmap by_integer; /* or the key's integer -> subscriptions */
};

struct bucket {
    struct strmap by_source;    /* subscriptions that require this exact source */
    struct field_index *fields; /* per field path */
    size_t n_fields;
    struct list rest;           /* every other subscription of the type */
};

struct kb_matcher {
    struct strmap types;        /* type -> index into buckets (stored as list of one entry) */
    struct bucket *buckets;
    size_t n_buckets;
};

/* Sixteen bytes per step in two independent lanes, so that the multiplies
 * overlap (sources and types are 20 to 60 characters long; every event
 * hashes its source). Table keys come from the subscriptions, never from
 * events, so a caller cannot grow a probe chain; an event's value only
 * picks where to look. */
static uint64_t hash_n(const char *s, size_t n)
{
    uint64_t h1 = 0x9e3779b97f4a7c15ull ^ n, h2 = 0x6a09e667f3bcc909ull;
    for (; n >= 16; n -= 16, s += 16) {
        uint64_t w1, w2;
        memcpy(&w1, s, 8);
        memcpy(&w2, s + 8, 8);
        h1 = (h1 ^ w1) * 0xff51afd7ed558ccdull;
        h2 = (h2 ^ w2) * 0xc4ceb9fe1a85ec53ull;
        h1 ^= h1 >> 32;
        h2 ^= h2 >> 29;
    }
    uint64_t t1 = 0, t2 = 0;
    memcpy(&t1, s, n < 8 ? n : 8);
    if (n > 8)
        memcpy(&t2, s + 8, n - 8);
    h1 = (h1 ^ t1) * 0xff51afd7ed558ccdull;
    h2 = (h2 ^ t2) * 0xc4ceb9fe1a85ec53ull;
    uint64_t h = (h1 ^ (h2 >> 31) ^ (h2 << 33)) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

static uint64_t hash(const char *s)
{
    return hash_n(s, strlen(s));
}

/* The hash of an integer key: odd multiplies and xor-shifts are each
 * invertible, so two keys have equal hashes exactly when they are equal, and
 * a search compares hashes only. */
static inline uint64_t hash_integer(uint64_t u)
{
    u = (u ^ (u >> 31)) * 0xff51afd7ed558ccdull;
    u = (u ^ (u >> 29)) * 0xc4ceb9fe1a85ec53ull;
    return u ^ (u >> 32);
}

/* The tag of hash @p h: its top bits, never 0 (0 marks an empty slot). The
 * slot index comes from the low bits, so the two are independent. */
static inline uint16_t tag_of(uint64_t h)
{
    uint16_t t = (uint16_t)(h >> 48);
    return t ? t : 1;
}

static int list_add(struct list *l, const struct kb_sub *sub, size_t order, int decided)
{
    if (order > UINT32_MAX)
        return -1;
    if (l->n == l->cap) {
        uint32_t ncap = l->cap ? l->cap * 2 : 4;
        struct entry *n = realloc(l->items, ncap * sizeof *n);
        if (!n)
            return -1;
        l->items = n;
        l->cap = ncap;
    }
    l->items[l->n++] = (struct entry){sub,
                                      sub ? sub->valid_from_ms : 0,
                                      sub ? sub->valid_until_ms : 0,
                                      (uint32_t)order,
                                      sub && sub->follow,
                                      (uint8_t)decided};
    return 0;
}

/* The list of @p key, whose hash() is @p h, or NULL; @p key NULL in an
 * integer table, whose hashes are the keys themselves (hash_integer is
 * invertible). Inline, so each caller gets the loop for its kind of key. */
static inline const struct list *strmap_find_h(const struct strmap *m, const char *key, uint64_t h)
{
    if (!m->cap)
        return NULL;
    const uint16_t t = tag_of(h);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const uint16_t ti = m->tags[i];
        if (!ti)
            return NULL;
        const struct slot *sl = &m->slots[i];
        if (ti == t && sl->hash == h && (!key || !strcmp(sl->key, key)))
            return &sl->val;
    }
}

static const struct list *strmap_find(const struct strmap *m, const char *key)
{
    return m->cap ? strmap_find_h(m, key, hash(key)) : NULL;
}

/* In an integer table: the list of the key whose hash_integer() is @p h, or NULL. */
static const struct list *strmap_find_integer(const struct strmap *m, uint64_t h)
{
    return strmap_find_h(m, NULL, h);
}

/* Start loading the slot where a search for hash @p h begins, so that the
 * miss overlaps the work done before the search. */
static void strmap_prefetch(const struct strmap *m, uint64_t h)
{
    if (m->cap)
        __builtin_prefetch(&m->tags[h & (m->cap - 1)]);
}

/* The list of @p key, whose hash is @p h, added empty when new; @p key NULL
 * in an integer table. Only before strmap_freeze(). */
static struct list *strmap_get_h(struct strmap *m, const char *key, uint64_t h)
{
    if ((m->n + 1) * 4 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        struct slot *ns = calloc(ncap, sizeof *ns);
        uint16_t *nt = calloc(ncap, sizeof *nt);
        if (!ns || !nt) {
            free(ns);
            free(nt);
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->tags[i])
                continue;
            size_t j = m->slots[i].hash & (ncap - 1);
            while (nt[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = m->slots[i];
            nt[j] = m->tags[i];
        }
        free(m->slots);
        free(m->tags);
        m->slots = ns;
        m->tags = nt;
        m->cap = ncap;
    }
    size_t i = h & (m->cap - 1);
    for (; m->tags[i]; i = (i + 1) & (m->cap - 1))
        if (m->slots[i].hash == h && (!key || !strcmp(m->slots[i].key, key)))
            return &m->slots[i].val;
    if (key && !(m->slots[i].key = strdup(key)))
        return NULL;
    m->slots[i].hash = h;
    m->tags[i] = tag_of(h);
    m->n++;
    return &m->slots[i].val;
}

static struct list *strmap_get(struct strmap *m, const char *key)
{
    return strmap_get_h(m, key, hash(key));
}

/* Move each key into one block after its entries (see struct slot). */
static int strmap_freeze(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        struct slot *sl = &m->slots[i];
        if (!sl->key)
            continue; /* empty, or an integer table's: its entries are all there is */
        size_t ents = sl->val.n * sizeof *sl->val.items, kl = strlen(sl->key) + 1;
        struct entry *block = malloc(ents + kl);
        if (!block)
            return -1;
        if (ents)
            memcpy(block, sl->val.items, ents);
        memcpy((char *)block + ents, sl->key, kl);
        free(sl->val.items);
        free(sl->key);
        sl->val.items = block;
        sl->val.cap = sl->val.n;
        sl->key = (char *)block + ents;
    }
    return 0;
}

static void strmap_fini(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        struct slot *sl = &m->slots[i];
        /* A frozen key is inside its block (a failed freeze leaves some not). */
        if ((uintptr_t)sl->key !=
            (uintptr_t)sl->val.items + sl->val.n * sizeof *sl->val.items)
            free(sl->key);
        free(sl->val.items);
    }
    free(m->slots);
    free(m->tags);
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

/* The top-level `=` / `in` comparison the filter demands outright (itself,
 * or a child of a top-level all), or NULL. */
static const struct kb_filter *required_field(const struct kb_filter *f)
{
    if (!f)
        return NULL;
    if (f->kind == KB_FILTER_FIELD && (f->op == KB_OP_EQ || f->op == KB_OP_IN) && f->n_values)
        return f;
    if (f->kind == KB_FILTER_ALL)
        for (size_t i = 0; i < f->n_children; i++) {
            const struct kb_filter *c = required_field(&f->children[i]);
            if (c)
                return c;
        }
    return NULL;
}

/* The number of ASCII digits @p s starts with (strspn with a set costs
 * more for the 4 to 8 digits of codes and dates). */
static inline size_t digit_run(const char *s)
{
    size_t n = 0;
    while ((unsigned)(s[n] - '0') <= 9u)
        n++;
    return n;
}

enum { KEY_OK = 0, KEY_NAN = 1, KEY_INTEGER = 2 };

/* The canonical key of a field value (see the file comment): "n:" and the
 * shortest exact decimal form of the number when the whole text parses as
 * one (-0 as 0), else "s:" and the text. KEY_NAN when the number is NaN,
 * which the comparison calls equal to every number. Plain digit strings of
 * up to 15 digits do not come here (see lookup_key). */
static int value_key(const char *v, char *out, size_t cap, size_t *len)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (!errno && *v && !*end) {
        if (d != d)
            return KEY_NAN;
        int w = snprintf(out, cap, "n:%.17g", d + 0.0);
        *len = w < 0 ? 0 : (size_t)w < cap ? (size_t)w : cap - 1;
        return KEY_OK;
    }
    size_t l = strlen(v);
    if (l + 3 > cap)
        l = cap - 3; /* callers refuse keys this long (see bucket_add) */
    out[0] = 's';
    out[1] = ':';
    memcpy(out + 2, v, l);
    out[l + 2] = '\0';
    *len = l + 2;
    return KEY_OK;
}

/* Whether @p s is 1 to 15 ASCII digits and nothing else, with their value
 * in *u: an integer that fits, which a double holds exactly. */
static inline int plain_integer(const char *s, uint64_t *u)
{
    uint64_t x = 0;
    size_t n = 0;
    for (unsigned d; (d = (unsigned)(s[n] - '0')) <= 9u; n++) {
        if (n == 15)
            return 0;
        x = x * 10 + d;
    }
    if (!n || s[n])
        return 0;
    *u = x;
    return 1;
}

/*
 * The key a field value is looked up by: KEY_INTEGER with *u when its
 * canonical key (value_key) is "n:" and 1 to 15 digits, a whole number;
 * else value_key's answer, with the key in @p out. Subscriptions' values
 * and events' values both go through here, so a value is in the integer
 * table exactly when a value equal to it is searched there. Plain digit
 * strings of up to 15 digits, the common case (codes, dates), are turned
 * into their integer directly: a double holds them exactly and %.17g
 * prints such an integer as its digits without leading zeros, so value_key
 * would give the key of the same integer.
 */
static int lookup_key(const char *v, char *out, size_t cap, size_t *len, uint64_t *u)
{
    if (plain_integer(v, u))
        return KEY_INTEGER;
    int r = value_key(v, out, cap, len);
    return r == KEY_OK && out[0] == 'n' && plain_integer(out + 2, u) ? KEY_INTEGER : r;
}

static struct field_index *field_index_get(struct bucket *b, const char *path)
{
    for (size_t i = 0; i < b->n_fields; i++)
        if (!strcmp(b->fields[i].path, path))
            return &b->fields[i];
    struct field_index *nf = realloc(b->fields, (b->n_fields + 1) * sizeof *nf);
    if (!nf)
        return NULL;
    b->fields = nf;
    struct field_index *fi = &nf[b->n_fields];
    memset(fi, 0, sizeof *fi);
    if (!(fi->path = strdup(path)))
        return NULL;
    b->n_fields++;
    return fi;
}

/* Place @p sub (position @p order) in bucket @p b. */
static int bucket_add(struct bucket *b, const struct kb_sub *sub, size_t order)
{
    const char *src = required_source(sub->filter);
    if (src) {
        struct list *l = strmap_get(&b->by_source, src);
        /* Found by its exact source: nothing else to judge if that is all. */
        int decided = sub->filter->kind == KB_FILTER_EXACT;
        return l ? list_add(l, sub, order, decided) : -1;
    }
    const struct kb_filter *f = required_field(sub->filter);
    char key[1100];
    size_t kl = 0;
    uint64_t u = 0;
    for (size_t i = 0; f && i < f->n_values; i++) {
        int r = lookup_key(f->values[i], key, sizeof key, &kl, &u);
        if (r == KEY_NAN || (r == KEY_OK && kl >= sizeof key - 1))
            f = NULL; /* NaN, or a value too long to key exactly: not indexed */
    }
    if (!f)
        return list_add(&b->rest, sub, order, !sub->filter);
    struct field_index *fi = field_index_get(b, f->path);
    if (!fi)
        return -1;
    for (size_t i = 0; i < f->n_values; i++) {
        struct list *l = lookup_key(f->values[i], key, sizeof key, &kl, &u) == KEY_INTEGER
                             ? strmap_get_h(&fi->by_integer, NULL, hash_integer(u))
                             : strmap_get(&fi->by_value, key);
        if (!l)
            return -1;
        /* `in: [a, a]` or `in: [1, 1.0]`: one entry per distinct key. */
        if (!l->n || l->items[l->n - 1].sub != sub)
            if (list_add(l, sub, order, f == sub->filter))
                return -1;
    }
    return 0;
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
                if (list_add(slot, NULL, m->n_buckets++, 0))
                    goto out_fail;
            }
            if (bucket_add(&m->buckets[slot->items[0].order], sub, s))
                goto out_fail;
        }
    }
    if (strmap_freeze(&m->types))
        goto out_fail;
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct bucket *b = &m->buckets[i];
        if (strmap_freeze(&b->by_source))
            goto out_fail;
        for (size_t f = 0; f < b->n_fields; f++)
            if (strmap_freeze(&b->fields[f].by_value))
                goto out_fail; /* by_integer has no keys to move */
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
        struct bucket *b = &m->buckets[i];
        strmap_fini(&b->by_source);
        for (size_t f = 0; f < b->n_fields; f++) {
            free(b->fields[f].path);
            strmap_fini(&b->fields[f].by_value);
            strmap_fini(&b->fields[f].by_integer);
        }
        free(b->fields);
        free(b->rest.items);
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
    /* Fast path, the common case (dates, codes): both plain digit strings
     * of up to 15 digits are integers a double holds exactly, so their
     * numeric order is the order of their lengths without leading zeros,
     * then of their digits. Same answer as strtod below, without it. */
    size_t na = digit_run(a), nb = digit_run(b);
    if (na && nb && !a[na] && !b[nb] && na <= 15 && nb <= 15) {
        while (na > 1 && *a == '0')
            a++, na--;
        while (nb > 1 && *b == '0')
            b++, nb--;
        if (na != nb)
            return na < nb ? -1 : 1;
        int c = memcmp(a, b, na);
        return (c > 0) - (c < 0);
    }
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
        if (f->kind == KB_FILTER_EXACT)
            return !strcmp(v, f->values[0]);
        size_t lv = strlen(v), lw = strlen(f->values[0]);
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

/*
 * The subscriptions an event meets, written straight into the caller's
 * array. Subscriptions sit in one array (kb_subs.items), so their addresses
 * are in file order and sorting the pointers gives the order the caller
 * wants. A subscription can be met more than once only through a NaN value
 * (it is in one list per value of its `in`), so the repeats are dropped
 * when the array is full and at the end; an array of one entry per
 * subscription never overflows.
 */
struct hits {
    const struct kb_sub **v;
    size_t n, cap;
    size_t sorted;              /* v[0..sorted) is sorted, without repeats */
    int overflow;               /* more distinct matches than cap */
};

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(const struct kb_sub *const *)a;
    uintptr_t y = (uintptr_t)*(const struct kb_sub *const *)b;
    return (x > y) - (x < y);
}

static void hits_sort_unique(struct hits *h)
{
    if (h->sorted == h->n)
        return;
    qsort(h->v, h->n, sizeof *h->v, by_address);
    size_t k = 1;
    for (size_t i = 1; i < h->n; i++)
        if (h->v[i] != h->v[k - 1])
            h->v[k++] = h->v[i];
    h->n = h->sorted = k;
}

static void hits_add(struct hits *h, const struct kb_sub *sub)
{
    if (h->n == h->cap) {
        hits_sort_unique(h);
        if (h->n == h->cap) {
            /* Full of distinct matches: a repeat changes nothing. */
            if (!bsearch(&sub, h->v, h->n, sizeof *h->v, by_address))
                h->overflow = 1;
            return;
        }
    }
    h->v[h->n++] = sub;
}

/* Candidates of one list that accept the event, into hits. @p keyed: the
 * list was found by the event's own key, so a `decided` entry's filter is
 * known to be true. */
static void collect_entries(const struct list *l, int keyed, const struct kb_event_attrs *attrs,
                            int64_t time_ms, kb_field_get_cb *get, void *opaque, struct hits *h)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct entry *e = &l->items[i];
        if (time_ms < e->valid_from_ms || time_ms >= e->valid_until_ms)
            continue;
        if (e->follows && !kb_sub_follows(e->sub, attrs->subject, time_ms))
            continue;
        if ((keyed && e->decided) || kb_filter_eval(e->sub->filter, attrs, get, opaque))
            hits_add(h, e->sub);
    }
}

/* collect_entries() for a list that may be absent or empty, which is what
 * most searches find: the call is left out for them. */
static inline void collect(const struct list *l, int keyed, const struct kb_event_attrs *attrs,
                           int64_t time_ms, kb_field_get_cb *get, void *opaque, struct hits *h)
{
    if (l && l->n)
        collect_entries(l, keyed, attrs, time_ms, get, opaque, h);
}

/* A NaN field equals every number to the comparison: every list of the
 * field index is a candidate. */
static void collect_nan(const struct field_index *fi, const struct kb_event_attrs *attrs,
                        int64_t time_ms, kb_field_get_cb *get, void *opaque, struct hits *h)
{
    for (size_t i = 0; i < fi->by_value.cap; i++)
        if (fi->by_value.tags[i])
            collect(&fi->by_value.slots[i].val, 0, attrs, time_ms, get, opaque, h);
    for (size_t i = 0; i < fi->by_integer.cap; i++)
        if (fi->by_integer.tags[i])
            collect(&fi->by_integer.slots[i].val, 0, attrs, time_ms, get, opaque, h);
}

/* How an event's value of one indexed field is looked up. */
enum { FIELD_ABSENT, FIELD_KEY, FIELD_NAN, FIELD_INTEGER };

/* The candidates of field index @p fi for the event's value: @p state
 * FIELD_KEY, the list of canonical key @p key (hash @p h); FIELD_INTEGER,
 * the list of the integer whose hash_integer() is @p h; FIELD_NAN, every
 * list; FIELD_ABSENT, none. */
static inline void collect_field(const struct field_index *fi, int state, const char *key,
                                 uint64_t h, const struct kb_event_attrs *attrs, int64_t time_ms,
                                 kb_field_get_cb *get, void *opaque, struct hits *hits)
{
    if (state == FIELD_INTEGER)
        collect(strmap_find_integer(&fi->by_integer, h), 1, attrs, time_ms, get, opaque, hits);
    else if (state == FIELD_KEY)
        collect(strmap_find_h(&fi->by_value, key, h), 1, attrs, time_ms, get, opaque, hits);
    else if (state == FIELD_NAN)
        collect_nan(fi, attrs, time_ms, get, opaque, hits);
}

size_t kb_matcher_match(const kb_matcher_t *m, const struct kb_event_attrs *attrs,
                        int64_t time_ms, kb_field_get_cb *get, void *opaque,
                        const struct kb_sub **out, size_t max)
{
    const struct list *slot = strmap_find(&m->types, attrs->type);
    if (!slot)
        return 0;
    const struct bucket *b = &m->buckets[slot->items[0].order];
    struct hits hits = {out, 0, max, 0, 0};
    /* Hash every key first and start loading its slot, then search: at
     * thousands of subscriptions the slots are cache misses, and this way
     * they overlap each other and the field reads instead of following
     * them one by one. */
    uint64_t h_source = 0;
    if (b->by_source.cap) {
        h_source = hash(attrs->source);
        strmap_prefetch(&b->by_source, h_source);
    }
    enum { AHEAD = 4 };
    struct {
        char key[1100];
        uint64_t h;
        int state; /* FIELD_* */
    } fk[AHEAD];
    size_t n_ahead = b->n_fields < AHEAD ? b->n_fields : AHEAD;
    for (size_t f = 0; f < b->n_fields && get; f++) {
        const struct field_index *fi = &b->fields[f];
        char buf[1024], key_here[1100];
        char *key = f < n_ahead ? fk[f].key : key_here;
        int state = FIELD_ABSENT;
        size_t kl = 0;
        uint64_t h = 0, u = 0;
        /* Absent: the required comparison is unknown, so none of these match. */
        if (get(opaque, fi->path, buf, sizeof buf)) {
            /* The common case without the call (lookup_key begins the same way). */
            int r = plain_integer(buf, &u) ? KEY_INTEGER
                                           : lookup_key(buf, key, sizeof key_here, &kl, &u);
            state = r == KEY_INTEGER ? FIELD_INTEGER : r == KEY_OK ? FIELD_KEY : FIELD_NAN;
        }
        if (state == FIELD_INTEGER)
            h = hash_integer(u);
        else if (state == FIELD_KEY)
            h = hash_n(key, kl);
        if (f < n_ahead) {
            fk[f].state = state;
            fk[f].h = h;
            if (state == FIELD_INTEGER)
                strmap_prefetch(&fi->by_integer, h);
            else if (state == FIELD_KEY)
                strmap_prefetch(&fi->by_value, h);
            continue;
        }
        collect_field(fi, state, key, h, attrs, time_ms, get, opaque, &hits);
    }
    collect(&b->rest, 1, attrs, time_ms, get, opaque, &hits);
    if (b->by_source.cap)
        collect(strmap_find_h(&b->by_source, attrs->source, h_source), 1, attrs, time_ms, get,
                opaque, &hits);
    for (size_t f = 0; f < n_ahead && get; f++)
        collect_field(&b->fields[f], fk[f].state, fk[f].key, fk[f].h, attrs, time_ms, get,
                      opaque, &hits);
    hits_sort_unique(&hits);
    return hits.overflow ? max + 1 : hits.n;
}

int kb_payload_field(void *opaque, const char *path, char *buf, size_t cap)
{
    struct kb_payload_view *pv = opaque;
    if (pv->failed)
        return 0;
    if (pv->v)
        return kb_validate_field(pv->v, pv->payload, pv->len, path, buf, cap);
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
        int32_t x = 0; /* the macro leaves it unset when the class lacks the getter */
        avro_value_get_int(&f, &x);
        snprintf(buf, cap, "%" PRId32, x);
        return 1;
    }
    case AVRO_INT64: {
        int64_t x = 0;
        avro_value_get_long(&f, &x);
        snprintf(buf, cap, "%" PRId64, x);
        return 1;
    }
    case AVRO_DOUBLE: {
        double x = 0;
        avro_value_get_double(&f, &x);
        snprintf(buf, cap, "%.17g", x);
        return 1;
    }
    case AVRO_FLOAT: {
        float x = 0;
        avro_value_get_float(&f, &x);
        snprintf(buf, cap, "%.9g", (double)x);
        return 1;
    }
    case AVRO_BOOLEAN: {
        int x = 0;
        avro_value_get_boolean(&f, &x);
        snprintf(buf, cap, "%s", x ? "true" : "false");
        return 1;
    }
    case AVRO_ENUM: {
        int x = 0;
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
