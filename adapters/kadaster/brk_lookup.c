/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * brk_lookup.c - the sorted index of a snapshot (see brk_lookup.h): one
 * array of (table, key, second key, position) entries, sorted, searched for
 * the first entry with a given table and keys. Ties sort by position, so
 * that entry is the first match in document order.
 */
#include <stdlib.h>
#include <string.h>

#include "brk_lookup.h"

enum table { T_PERSOON, T_RECHT, T_STUKDEEL, T_TENAAMSTELLING, T_PART, T_FIELD };

struct entry {
    const char *key, *key2; /* key2: a part's identificatie, else "" */
    unsigned table;
    size_t at; /* position in its array */
};

struct kb_brk_lookup {
    struct entry *e;
    size_t n;
};

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    if (a->table != b->table)
        return a->table < b->table ? -1 : 1;
    int c = strcmp(a->key, b->key);
    if (!c)
        c = strcmp(a->key2, b->key2);
    if (!c && a->at != b->at)
        c = a->at < b->at ? -1 : 1;
    return c;
}

static void add(struct kb_brk_lookup *l, unsigned table, const char *key, const char *key2,
                size_t at)
{
    if (key[0]) /* an empty reference never matches */
        l->e[l->n++] = (struct entry){key, key2, table, at};
}

kb_err_t kb_brk_lookup_build(struct kb_brk_snapshot *s)
{
    kb_brk_lookup_free(s->lookup);
    s->lookup = NULL;
    size_t cap = 2 * (s->n_personen + s->n_rechten + s->n_stukdelen) + s->n_tenaamstellingen +
                 s->n_parts + s->n_fields;
    struct kb_brk_lookup *l = calloc(1, sizeof *l);
    if (!l || !(l->e = malloc((cap ? cap : 1) * sizeof *l->e))) {
        free(l);
        return KB_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->n_personen; i++) {
        add(l, T_PERSOON, s->personen[i].local_id, "", i);
        add(l, T_PERSOON, s->personen[i].identificatie, "", i);
    }
    for (size_t i = 0; i < s->n_rechten; i++) {
        add(l, T_RECHT, s->rechten[i].local_id, "", i);
        add(l, T_RECHT, s->rechten[i].identificatie, "", i);
    }
    for (size_t i = 0; i < s->n_stukdelen; i++) {
        add(l, T_STUKDEEL, s->stukdelen[i].local_id, "", i);
        add(l, T_STUKDEEL, s->stukdelen[i].identificatie, "", i);
    }
    for (size_t i = 0; i < s->n_tenaamstellingen; i++)
        add(l, T_TENAAMSTELLING, s->tenaamstellingen[i].identificatie, "", i);
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i].kind[0]) /* a part without kind is matched by nothing either */
            l->e[l->n++] = (struct entry){s->parts[i].kind, s->parts[i].identificatie, T_PART, i};
    for (size_t i = 0; i < s->n_fields; i++)
        add(l, T_FIELD, s->fields[i].kind, "", i);
    qsort(l->e, l->n, sizeof *l->e, entry_cmp);
    s->lookup = l;
    return KB_OK;
}

void kb_brk_lookup_free(struct kb_brk_lookup *l)
{
    if (l)
        free(l->e);
    free(l);
}

/* Position of the first entry with @p table, @p key and @p key2 (the least
 * position among equal keys, as they sort by it), or -1. */
static long find(const struct kb_brk_lookup *l, unsigned table, const char *key, const char *key2)
{
    size_t lo = 0, hi = l->n; /* the first entry not below (table, key, key2) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct entry *e = &l->e[mid];
        int c = e->table != table ? (e->table < table ? -1 : 1) : strcmp(e->key, key);
        if (!c)
            c = strcmp(e->key2, key2);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == l->n || l->e[lo].table != table || strcmp(l->e[lo].key, key) ||
        strcmp(l->e[lo].key2, key2))
        return -1;
    return (long)l->e[lo].at;
}

const struct kb_brk_persoon *kb_brk_find_persoon(const struct kb_brk_snapshot *s, const char *ref)
{
    if (!s || !ref[0])
        return NULL;
    if (s->lookup) {
        long at = find(s->lookup, T_PERSOON, ref, "");
        return at < 0 ? NULL : &s->personen[at];
    }
    for (size_t i = 0; i < s->n_personen; i++)
        if (!strcmp(s->personen[i].local_id, ref) || !strcmp(s->personen[i].identificatie, ref))
            return &s->personen[i];
    return NULL;
}

const struct kb_brk_recht *kb_brk_find_recht(const struct kb_brk_snapshot *s, const char *ref)
{
    if (!s || !ref[0])
        return NULL;
    if (s->lookup) {
        long at = find(s->lookup, T_RECHT, ref, "");
        return at < 0 ? NULL : &s->rechten[at];
    }
    for (size_t i = 0; i < s->n_rechten; i++)
        if (!strcmp(s->rechten[i].local_id, ref) || !strcmp(s->rechten[i].identificatie, ref))
            return &s->rechten[i];
    return NULL;
}

const struct kb_brk_stukdeel *kb_brk_find_stukdeel(const struct kb_brk_snapshot *s, const char *ref)
{
    if (!s || !ref[0])
        return NULL;
    if (s->lookup) {
        long at = find(s->lookup, T_STUKDEEL, ref, "");
        return at < 0 ? NULL : &s->stukdelen[at];
    }
    for (size_t i = 0; i < s->n_stukdelen; i++)
        if (!strcmp(s->stukdelen[i].local_id, ref) || !strcmp(s->stukdelen[i].identificatie, ref))
            return &s->stukdelen[i];
    return NULL;
}

int kb_brk_has_tenaamstelling(const struct kb_brk_snapshot *s, const char *id)
{
    if (!s || !id[0])
        return 0;
    if (s->lookup)
        return find(s->lookup, T_TENAAMSTELLING, id, "") >= 0;
    for (size_t i = 0; i < s->n_tenaamstellingen; i++)
        if (!strcmp(s->tenaamstellingen[i].identificatie, id))
            return 1;
    return 0;
}

const struct kb_brk_part *kb_brk_find_part(const struct kb_brk_snapshot *s, const char *kind,
                                           const char *id)
{
    if (!s || !kind[0])
        return NULL;
    if (s->lookup) {
        long at = find(s->lookup, T_PART, kind, id);
        return at < 0 ? NULL : &s->parts[at];
    }
    for (size_t i = 0; i < s->n_parts; i++)
        if (!strcmp(s->parts[i].kind, kind) && !strcmp(s->parts[i].identificatie, id))
            return &s->parts[i];
    return NULL;
}

const struct kb_brk_part *kb_brk_find_field(const struct kb_brk_snapshot *s, const char *kind)
{
    if (!s || !kind[0])
        return NULL;
    if (s->lookup) {
        long at = find(s->lookup, T_FIELD, kind, "");
        return at < 0 ? NULL : &s->fields[at];
    }
    for (size_t i = 0; i < s->n_fields; i++)
        if (!strcmp(s->fields[i].kind, kind))
            return &s->fields[i];
    return NULL;
}
