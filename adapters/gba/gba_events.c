/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gba_events.c - LO3 message -> life events (see gba_events.h).
 *
 * A birth is recognised in an Lg01 the way the LO's own data says it: the
 * PL is at version 0001 (07.80.10), and the address started on the birth
 * date (08.10.30 == 01.03.10), the condition CBS publishes for newborns. A
 * new child on a parent's PL is a Gv01 pair (09, 59) whose historical 59 is
 * empty: there was no child data before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gba_events.h"
#include "ketenbus/check.h"
#include "lo3_check.h"
#include "t61.h"

#define EL_MAX (999 * 3 + 1) /* longest element (999 Teletex bytes) as UTF-8 */

/* Element @p nummer of category occurrence @p cat as UTF-8 in @p out, or
 * NULL when absent or empty. Sets *err on an unmappable Teletex byte. */
static const char *el(const struct kb_lo3_message *msg, size_t cat, uint16_t nummer, char *out,
                      kb_err_t *err, char *errstr, size_t errstr_size)
{
    const struct kb_lo3_element *e = kb_lo3_element(msg, cat, nummer);
    if (!e || e->len == 0)
        return NULL;
    size_t out_len = 0, bad = 0;
    kb_err_t cerr = kb_t61_to_utf8(e->value, e->len, out, EL_MAX, &out_len, &bad);
    if (cerr) {
        if (!*err)
            *err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "offset %zu: element %02u.%04u has a byte without a Teletex "
                              "mapping",
                              e->offset + 7 + bad, msg->categories[cat].nummer, nummer);
        return NULL;
    }
    return out;
}

/* Index of the first occurrence of category @p nummer, or -1. */
static long cat_find(const struct kb_lo3_message *msg, unsigned nummer)
{
    for (size_t i = 0; i < msg->n_categories; i++)
        if (msg->categories[i].nummer == nummer)
            return (long)i;
    return -1;
}

/* Set @p path to element @p nummer of category @p cat (null when absent). */
static kb_err_t put(avro_value_t *v, const char *path, const struct kb_lo3_message *msg,
                    size_t cat, uint16_t nummer, kb_err_t *err, char *errstr, size_t errstr_size)
{
    char buf[EL_MAX];
    const char *s = el(msg, cat, nummer, buf, err, errstr, errstr_size);
    if (*err)
        return *err;
    kb_err_t serr = kb_value_set_string(v, path, s);
    if (serr)
        *err = kb_err_set(serr, errstr, errstr_size, "schema has no field %s", path);
    return *err;
}

/* The person fields (groups 01-04) of a category 01/02/03/09 occurrence
 * under @p prefix ("kind", "persoon"), with the identifier rules checked. */
static kb_err_t put_persoon(avro_value_t *v, const char *prefix, const struct kb_lo3_message *msg,
                            size_t cat, char *errstr, size_t errstr_size)
{
    static const struct {
        const char *field;
        uint16_t nummer;
    } map[] = {{"aNummer", 110},       {"bsn", 120},           {"voornamen", 210},
               {"voorvoegsel", 230},   {"geslachtsnaam", 240}, {"geboortedatum", 310},
               {"geboorteplaats", 320}, {"geboorteland", 330}, {"geslacht", 410}};
    kb_err_t err = KB_OK;
    unsigned catnr = msg->categories[cat].nummer;
    const struct kb_lo3_element *bsn = kb_lo3_element(msg, cat, 120);
    if (bsn && bsn->len && !kb_check_bsn((const char *)bsn->value, bsn->len))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "offset %zu: %02u.01.20 is not a valid BSN (11-proef)", bsn->offset,
                          catnr);
    const struct kb_lo3_element *gd = kb_lo3_element(msg, cat, 310);
    if (gd && gd->len && !kb_check_gba_date((const char *)gd->value, gd->len))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "offset %zu: %02u.03.10 is not a GBA date", gd->offset, catnr);
    for (size_t i = 0; i < sizeof map / sizeof map[0] && !err; i++) {
        char path[96];
        snprintf(path, sizeof path, "%s.%s", prefix, map[i].field);
        const struct kb_lo3_element *e = kb_lo3_element(msg, cat, map[i].nummer);
        if (map[i].nummer == 110 && e && e->len &&
            !kb_check_anummer((const char *)e->value, e->len)) {
            /* An invalid A-nummer is a warning (herkomst.waarschuwingen),
             * not a reason to lose the event; these schemas check the
             * field, so it is left null rather than published wrong. */
            continue;
        }
        put(v, path, msg, cat, map[i].nummer, &err, errstr, errstr_size);
    }
    return err;
}

static kb_err_t put_akte(avro_value_t *v, const struct kb_lo3_message *msg, size_t cat,
                         char *errstr, size_t errstr_size)
{
    kb_err_t err = KB_OK;
    char g[EL_MAX], a[EL_MAX];
    const char *gem = el(msg, cat, 8110, g, &err, errstr, errstr_size);
    const char *akte = el(msg, cat, 8120, a, &err, errstr, errstr_size);
    if (err)
        return err;
    if (gem && akte) {
        if (kb_value_set_string(v, "akte.registergemeente", gem) ||
            kb_value_set_string(v, "akte.aktenummer", akte))
            return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "schema lacks akte fields");
    } else {
        kb_value_set_string(v, "akte", NULL);
    }
    return KB_OK;
}

/* Rubrieken "CC.GG.EE" that triggered one event, in element order, unique. */
struct rubrieken {
    char (*items)[9]; /* malloc'ed */
    size_t n, cap;
};

static void rub_fini(struct rubrieken *r)
{
    free(r->items);
    memset(r, 0, sizeof *r);
}

static kb_err_t rub_add(struct rubrieken *r, unsigned cat, uint16_t nummer)
{
    /* formatted by hand: this runs once per element on the hot path */
    unsigned g = (unsigned)(nummer / 100) % 100u, e = nummer % 100u;
    cat %= 100u;
    char s[9] = {(char)('0' + cat / 10), (char)('0' + cat % 10), '.', (char)('0' + g / 10),
                 (char)('0' + g % 10),   '.', (char)('0' + e / 10), (char)('0' + e % 10), '\0'};
    size_t i = 0;
    while (i < r->n && strcmp(r->items[i], s) < 0)
        i++;
    if (i < r->n && !strcmp(r->items[i], s))
        return KB_OK;
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 16;
        void *n = realloc(r->items, nc * sizeof *r->items);
        if (!n)
            return KB_ERR_NOMEM;
        r->items = n;
        r->cap = nc;
    }
    memmove(r->items + i + 1, r->items + i, (r->n - i) * sizeof *r->items);
    memcpy(r->items[i], s, sizeof s);
    r->n++;
    return KB_OK;
}

/* Every element of category occurrence @p cat, numbered as category @p as. */
static kb_err_t rub_add_cat(struct rubrieken *r, const struct kb_lo3_message *msg, size_t cat,
                            unsigned as)
{
    const struct kb_lo3_category *c = &msg->categories[cat];
    kb_err_t err = KB_OK;
    for (size_t i = 0; i < c->count && !err; i++)
        err = rub_add(r, as, msg->elements[c->first + i].nummer);
    return err;
}

/* What every derivation of one message shares. */
struct derive {
    const struct kb_gba_ctx *ctx;
    const struct kb_lo3_message *msg;
    const char *sha;                        /* hex SHA-256 of the raw bytes */
    int64_t received_ms;
    const char *dataref;
    const struct kb_lo3_findings *findings; /* warnings travel on every event */
    struct kb_ingress_event **evs;          /* growing output */
    size_t *n;
    char *errstr;
    size_t errstr_size;
};

static kb_err_t put_herkomst(avro_value_t *v, const struct kb_lo3_message *msg,
                             const char *sha, int64_t received_ms)
{
    char buf[80];
    const struct kb_lo3_header_field *h;
    kb_err_t err = kb_value_set_string(v, "herkomst.berichtType", msg->type);
    if (!err)
        err = kb_value_set_string(v, "herkomst.randomKey", msg->random_key);
    h = kb_lo3_header(msg, "aNummer");
    if (!err && h && h->len < sizeof buf) {
        memcpy(buf, h->value, h->len);
        buf[h->len] = '\0';
        err = kb_value_set_string(v, "herkomst.aNummerPersoonslijst", buf);
    }
    h = kb_lo3_header(msg, "datumTijd");
    if (!err && h && h->len < sizeof buf) {
        memcpy(buf, h->value, h->len);
        buf[h->len] = '\0';
        err = kb_value_set_string(v, "herkomst.datumTijd", buf);
    }
    if (!err)
        err = kb_value_set_long(v, "herkomst.ontvangen", received_ms);
    if (!err)
        err = kb_value_set_string(v, "herkomst.sha256", sha);
    snprintf(buf, sizeof buf, "sha256:%s", sha);
    if (!err)
        err = kb_value_set_string(v, "herkomst.bronBerichtId", buf);
    return err;
}

/* Provenance of one event: the fixed part, the triggering rubrieken and the
 * message's warnings. */
static kb_err_t put_provenance(const struct derive *d, avro_value_t *v,
                               const struct rubrieken *rub)
{
    kb_err_t err = put_herkomst(v, d->msg, d->sha, d->received_ms);
    avro_value_t arr, item, field;
    if (!err && kb_value_path(v, "herkomst.rubrieken", 1, &arr) == KB_OK) {
        for (size_t i = 0; rub && i < rub->n && !err; i++)
            if (avro_value_append(&arr, &item, NULL) ||
                avro_value_set_string(&item, rub->items[i]))
                err = KB_ERR_SCHEMA;
    }
    if (!err && kb_value_path(v, "herkomst.waarschuwingen", 1, &arr) == KB_OK) {
        for (size_t i = 0; d->findings && i < d->findings->n && !err; i++) {
            const struct kb_lo3_finding *f = &d->findings->items[i];
            if (f->reject)
                continue;
            if (avro_value_append(&arr, &item, NULL) ||
                avro_value_get_by_name(&item, "rubriek", &field, NULL) ||
                avro_value_set_string(&field, f->rubriek) ||
                avro_value_get_by_name(&item, "regel", &field, NULL) ||
                avro_value_set_string(&field, f->rule) ||
                avro_value_get_by_name(&item, "offset", &field, NULL) ||
                avro_value_set_long(&field, (int64_t)f->offset))
                err = KB_ERR_SCHEMA;
        }
    }
    if (err)
        kb_err_set(err, d->errstr, d->errstr_size, "schema lacks a herkomst field");
    return err;
}

/* Append one event to the growing array, encoding @p v. */
static kb_err_t emit(const struct kb_gba_ctx *ctx, const struct kb_schema *schema,
                     avro_value_t *v, const char *sha, size_t index, const char *subject_domain,
                     const char *subject_id, int64_t received_ms, const char *dataref,
                     struct kb_ingress_event **evs, size_t *n, char *errstr, size_t errstr_size)
{
    struct kb_ingress_event *nev = realloc(*evs, (*n + 1) * sizeof *nev);
    if (!nev)
        return KB_ERR_NOMEM;
    *evs = nev;
    struct kb_ingress_event *ev = &nev[*n];
    memset(ev, 0, sizeof *ev);
    kb_err_t err = kb_schema_encode(schema, v, &ev->value, &ev->len, errstr, errstr_size);
    if (err)
        return err;
    (*n)++;
    /* The id names the source, the exact legacy bytes and the event's place
     * among the message's events: stable across re-reads, unique otherwise. */
    char name[512];
    int nlen = snprintf(name, sizeof name, "%s|%s|%s|%zu", ctx->source, sha, schema->type, index);
    kb_event_uuid5(name, (size_t)nlen, ev->attrs.id);
    snprintf(ev->attrs.source, sizeof ev->attrs.source, "%s", ctx->source);
    snprintf(ev->attrs.type, sizeof ev->attrs.type, "%s", schema->type);
    kb_event_time(received_ms, ev->attrs.time);
    snprintf(ev->attrs.dataref, sizeof ev->attrs.dataref, "%s", dataref ? dataref : "");
    kb_event_traceparent(ev->attrs.id, ev->attrs.traceparent);
    ev->attrs.schema_id = schema->id;
    err = kb_event_pseudonym(ctx->key, ctx->key_len, subject_domain, subject_id,
                             ev->attrs.subject);
    if (err)
        return kb_err_set(err, errstr, errstr_size, "subject key unusable");
    memcpy(ev->key, ev->attrs.subject, sizeof ev->key);
    return KB_OK;
}

/* Copy a raw element (digits only: identifiers) into @p out; "" if absent. */
static void raw_el(const struct kb_lo3_message *msg, size_t cat, uint16_t nummer, char *out,
                   size_t cap)
{
    const struct kb_lo3_element *e = kb_lo3_element(msg, cat, nummer);
    size_t len = e && e->len < cap ? e->len : 0;
    if (len)
        memcpy(out, e->value, len);
    out[len] = '\0';
}

static int el_equals(const struct kb_lo3_element *a, const struct kb_lo3_element *b)
{
    return a && b && a->len == b->len && a->len && !memcmp(a->value, b->value, a->len);
}

/* The schema of @p type, a fresh value with its nulls set, or an error. */
static kb_err_t new_value(const struct derive *d, const char *type,
                          const struct kb_schema **schema, avro_value_t *v)
{
    *schema = kb_schemas_by_type(d->ctx->schemas, type);
    if (!*schema)
        return kb_err_set(KB_ERR_SCHEMA, d->errstr, d->errstr_size, "no schema for %s", type);
    if (avro_generic_value_new((*schema)->iface, v))
        return kb_err_set(KB_ERR_NOMEM, d->errstr, d->errstr_size, "out of memory");
    kb_err_t err = kb_value_init_nulls(v);
    if (err) {
        avro_value_decref(v);
        return kb_err_set(err, d->errstr, d->errstr_size, "schema %s unusable", type);
    }
    return KB_OK;
}

/* Finish one event: provenance, encode, append; always releases @p v. */
static kb_err_t finish(const struct derive *d, const struct kb_schema *schema, avro_value_t *v,
                       const struct rubrieken *rub, const char *subject_domain,
                       const char *subject_id, kb_err_t err)
{
    if (!err)
        err = put_provenance(d, v, rub);
    if (!err)
        err = emit(d->ctx, schema, v, d->sha, *d->n, subject_domain, subject_id, d->received_ms,
                   d->dataref, d->evs, d->n, d->errstr, d->errstr_size);
    avro_value_decref(v);
    return err;
}

static kb_err_t birth_events(const struct derive *d)
{
    const struct kb_lo3_message *msg = d->msg;
    char *errstr = d->errstr;
    size_t errstr_size = d->errstr_size;
    long c01 = cat_find(msg, 1), c07 = cat_find(msg, 7), c08 = cat_find(msg, 8);
    if (c01 < 0 || c07 < 0 || c08 < 0)
        return KB_OK; /* not a full PL: no birth to see */
    const struct kb_lo3_element *versie = kb_lo3_element(msg, (size_t)c07, 8010);
    const struct kb_lo3_element *geboren = kb_lo3_element(msg, (size_t)c01, 310);
    const struct kb_lo3_element *aanvang = kb_lo3_element(msg, (size_t)c08, 1030);
    if (!versie || versie->len != 4 || memcmp(versie->value, "0001", 4) != 0 ||
        !el_equals(geboren, aanvang))
        return KB_OK;

    const struct kb_schema *schema;
    avro_value_t v;
    kb_err_t err = new_value(d, "nl.brp.persoon-geboren", &schema, &v);
    if (err)
        return err;
    err = put_persoon(&v, "kind", msg, (size_t)c01, errstr, errstr_size);
    if (!err)
        err = put_akte(&v, msg, (size_t)c01, errstr, errstr_size);
    /* Parents: categories 02 (ouder 1) and 03 (ouder 2), actual occurrence. */
    avro_value_t ouders;
    if (!err && avro_value_get_by_name(&v, "ouders", &ouders, NULL))
        err = KB_ERR_SCHEMA;
    for (unsigned nr = 2; nr <= 3 && !err; nr++) {
        long c = cat_find(msg, nr);
        if (c < 0 || msg->categories[c].count == 0)
            continue;
        avro_value_t ouder;
        size_t idx;
        if (avro_value_append(&ouders, &ouder, &idx)) {
            err = KB_ERR_SCHEMA;
            break;
        }
        err = kb_value_init_nulls(&ouder);
        if (!err)
            err = kb_value_set_int(&ouder, "ouderNummer", (int32_t)(nr - 1));
        if (!err)
            err = put_persoon(&ouder, "persoon", msg, (size_t)c, errstr, errstr_size);
        if (!err)
            put(&ouder, "datumFamilierechtelijkeBetrekking", msg, (size_t)c, 6210, &err, errstr,
                errstr_size);
    }
    if (!err)
        put(&v, "inschrijving.gemeente", msg, (size_t)c08, 910, &err, errstr, errstr_size);
    if (!err)
        put(&v, "inschrijving.datumInschrijving", msg, (size_t)c08, 920, &err, errstr,
            errstr_size);
    /* what made it a birth: first version, born on the day the address began */
    struct rubrieken rub = {0};
    if (!err)
        err = rub_add(&rub, 1, 310);
    if (!err)
        err = rub_add(&rub, 7, 8010);
    if (!err)
        err = rub_add(&rub, 8, 1030);
    char bsn[16], anr[16];
    raw_el(msg, (size_t)c01, 120, bsn, sizeof bsn);
    raw_el(msg, (size_t)c01, 110, anr, sizeof anr);
    err = finish(d, schema, &v, &rub, bsn[0] ? "bsn" : "anummer", bsn[0] ? bsn : anr, err);
    rub_fini(&rub);
    return err;
}

/* ---- mutations (Gv01, Gv02): pairs of actual + historical category ---- */

/* One stapel of a mutation: actual occurrence and its historical one. */
struct pair {
    size_t a;      /* index of the actual category occurrence */
    long h;        /* index of the historical one, -1 when absent */
    unsigned nr;   /* actual category number */
    int correctie; /* the historical category carries 84.10 onjuist */
};

/* Non-empty value of element @p nummer in occurrence @p cat (-1: none). */
static const struct kb_lo3_element *val(const struct kb_lo3_message *msg, long cat,
                                        uint16_t nummer)
{
    if (cat < 0)
        return NULL;
    const struct kb_lo3_element *e = kb_lo3_element(msg, (size_t)cat, nummer);
    return e && e->len ? e : NULL;
}

static int same_val(const struct kb_lo3_element *a, const struct kb_lo3_element *b)
{
    if (!a || !b)
        return !a && !b;
    return a->len == b->len && !memcmp(a->value, b->value, a->len);
}

/* 1 when occurrence @p cat has element @p nummer (empty or not). */
static int has_el(const struct kb_lo3_message *msg, long cat, uint16_t nummer)
{
    return cat >= 0 && kb_lo3_element(msg, (size_t)cat, nummer) != NULL;
}

/* Rubrieken of a pair: every element of the actual and historical category. */
static kb_err_t pair_rubrieken(const struct kb_lo3_message *msg, const struct pair *p,
                               struct rubrieken *rub)
{
    kb_err_t err = rub_add_cat(rub, msg, p->a, p->nr);
    if (!err && p->h >= 0)
        err = rub_add_cat(rub, msg, (size_t)p->h, p->nr);
    return err;
}

static kb_err_t set_correctie(avro_value_t *v, int correctie)
{
    avro_value_t f;
    if (avro_value_get_by_name(v, "correctie", &f, NULL) || avro_value_set_boolean(&f, correctie))
        return KB_ERR_SCHEMA;
    return KB_OK;
}

/* Start a mutation event of @p type about the PL with A-nummer @p anr. */
static kb_err_t start_mutation(const struct derive *d, const char *type, const char *anr,
                               const struct pair *p, const struct kb_schema **schema,
                               avro_value_t *v)
{
    kb_err_t err = new_value(d, type, schema, v);
    if (err)
        return err;
    err = kb_value_set_string(v, "persoon.aNummer", anr);
    if (!err)
        err = set_correctie(v, p ? p->correctie : 0);
    if (err) {
        avro_value_decref(v);
        return kb_err_set(err, d->errstr, d->errstr_size, "schema %s lacks persoon/correctie",
                          type);
    }
    return KB_OK;
}

static kb_err_t end_mutation(const struct derive *d, const struct kb_schema *schema,
                             avro_value_t *v, const struct pair *p, const char *anr, kb_err_t err)
{
    struct rubrieken rub = {0};
    if (!err)
        err = pair_rubrieken(d->msg, p, &rub);
    err = finish(d, schema, v, &rub, "anummer", anr, err);
    rub_fini(&rub);
    return err;
}

#define PUT(v, path, cat, nummer)                                                          \
    do {                                                                                   \
        if (!err && (cat) >= 0)                                                            \
            put((v), (path), d->msg, (size_t)(cat), (nummer), &err, d->errstr,             \
                d->errstr_size);                                                           \
    } while (0)

/* 01/51: BSN, A-nummer and name changes. Returns 1 in *covered when an
 * event took the pair. */
static kb_err_t persoon_pair(const struct derive *d, const struct pair *p, const char *anr,
                             int *covered)
{
    const struct kb_lo3_message *msg = d->msg;
    const struct kb_schema *schema;
    avro_value_t v;
    kb_err_t err = KB_OK;
    long a = (long)p->a, h = p->h;
    const struct kb_lo3_element *nb = val(msg, a, 120), *ob = val(msg, h, 120);
    if (nb && !same_val(nb, ob) && has_el(msg, h, 120)) {
        err = start_mutation(d, "nl.brp.bsn-gewijzigd", anr, p, &schema, &v);
        if (err)
            return err;
        PUT(&v, "nieuwBsn", a, 120);
        PUT(&v, "oudBsn", h, 120);
        PUT(&v, "datumGeldigheid", a, 8510);
        err = end_mutation(d, schema, &v, p, anr, err);
        *covered = 1;
    }
    const struct kb_lo3_element *na = val(msg, a, 110), *oa = val(msg, h, 110);
    if (!err && na && oa && !same_val(na, oa)) {
        err = start_mutation(d, "nl.brp.anummer-gewijzigd", anr, p, &schema, &v);
        if (err)
            return err;
        PUT(&v, "nieuwANummer", a, 110);
        PUT(&v, "datumGeldigheid", a, 8510);
        err = end_mutation(d, schema, &v, p, anr, err);
        *covered = 1;
    }
    static const uint16_t naam[] = {210, 220, 230, 240};
    int naam_changed = 0;
    for (size_t i = 0; i < 4; i++)
        naam_changed |= has_el(msg, a, naam[i]) || has_el(msg, h, naam[i]);
    if (!err && naam_changed && h >= 0) {
        err = start_mutation(d, "nl.brp.naam-gewijzigd", anr, p, &schema, &v);
        if (err)
            return err;
        static const char *const field[] = {"voornamen", "adellijkeTitel", "voorvoegsel",
                                            "geslachtsnaam"};
        char path[48];
        for (size_t i = 0; i < 4; i++) {
            snprintf(path, sizeof path, "nieuw.%s", field[i]);
            PUT(&v, path, a, naam[i]);
            snprintf(path, sizeof path, "oud.%s", field[i]);
            PUT(&v, path, h, naam[i]);
        }
        PUT(&v, "datumGeldigheid", a, 8510);
        err = end_mutation(d, schema, &v, p, anr, err);
        *covered = 1;
    }
    return err;
}

/* 05/55: a union concluded or dissolved. */
static kb_err_t verbintenis_pair(const struct derive *d, const struct pair *p, const char *anr,
                                 int *covered)
{
    const struct kb_lo3_message *msg = d->msg;
    long a = (long)p->a, h = p->h;
    const struct kb_lo3_element *soort = val(msg, a, 1510);
    if (!soort)
        soort = val(msg, h, 1510);
    char kind = soort && soort->len == 1 ? (char)soort->value[0] : 0;
    if (!kind) {
        /* A mutation carries only the changed elements; 05.15.10 is then
         * missing, but the akte's register (first character of 81.20: 3
         * huwelijk, 5 geregistreerd partnerschap, Tabel 39) says it too. */
        const struct kb_lo3_element *akte = val(msg, a, 8120);
        kind = akte && akte->value[0] == '3' ? 'H' : akte && akte->value[0] == '5' ? 'P' : 0;
    }
    if (kind != 'H' && kind != 'P')
        return KB_OK; /* kind of union unknown: the generic event reports it */
    int huwelijk = kind == 'H';
    const char *type = NULL;
    int ontbonden = 0;
    if (val(msg, a, 710) && !val(msg, h, 710)) {
        type = huwelijk ? "nl.brp.huwelijk-ontbonden" : "nl.brp.partnerschap-ontbonden";
        ontbonden = 1;
    } else if (val(msg, a, 610) && !val(msg, h, 610) && !val(msg, a, 710)) {
        type = huwelijk ? "nl.brp.huwelijk-gesloten" : "nl.brp.partnerschap-aangegaan";
    }
    if (!type)
        return KB_OK;
    const struct kb_schema *schema;
    avro_value_t v;
    kb_err_t err = start_mutation(d, type, anr, p, &schema, &v);
    if (err)
        return err;
    PUT(&v, "partner.aNummer", a, 110);
    PUT(&v, "partner.bsn", a, 120);
    PUT(&v, "partner.voornamen", a, 210);
    PUT(&v, "partner.voorvoegsel", a, 230);
    PUT(&v, "partner.geslachtsnaam", a, 240);
    PUT(&v, "partner.geboortedatum", a, 310);
    PUT(&v, "datumSluiting", a, 610);
    PUT(&v, "plaatsSluiting", a, 620);
    PUT(&v, "landSluiting", a, 630);
    if (ontbonden) {
        PUT(&v, "datumOntbinding", a, 710);
        PUT(&v, "plaatsOntbinding", a, 720);
        PUT(&v, "landOntbinding", a, 730);
        PUT(&v, "redenOntbinding", a, 740);
    }
    PUT(&v, "datumGeldigheid", a, 8510);
    *covered = 1;
    return end_mutation(d, schema, &v, p, anr, err);
}

static kb_err_t overlijden_pair(const struct derive *d, const struct pair *p, const char *anr,
                                int *covered)
{
    long a = (long)p->a, h = p->h;
    if (!val(d->msg, a, 810) || val(d->msg, h, 810))
        return KB_OK;
    const struct kb_schema *schema;
    avro_value_t v;
    kb_err_t err = start_mutation(d, "nl.brp.persoon-overleden", anr, p, &schema, &v);
    if (err)
        return err;
    PUT(&v, "overlijden.datum", a, 810);
    PUT(&v, "overlijden.plaats", a, 820);
    PUT(&v, "overlijden.land", a, 830);
    PUT(&v, "datumGeldigheid", a, 8510);
    *covered = 1;
    return end_mutation(d, schema, &v, p, anr, err);
}

static kb_err_t opschorting_pair(const struct derive *d, const struct pair *p, const char *anr,
                                 int *covered)
{
    long a = (long)p->a, h = p->h;
    if (!val(d->msg, a, 6710) || val(d->msg, h, 6710))
        return KB_OK;
    const struct kb_schema *schema;
    avro_value_t v;
    kb_err_t err = start_mutation(d, "nl.brp.bijhouding-opgeschort", anr, p, &schema, &v);
    if (err)
        return err;
    PUT(&v, "datumOpschorting", a, 6710);
    PUT(&v, "redenOpschorting", a, 6720);
    *covered = 1;
    return end_mutation(d, schema, &v, p, anr, err);
}

/* 08/58: which kind of move, if any. */
static kb_err_t verblijf_pair(const struct derive *d, const struct pair *p, const char *anr,
                              int *covered)
{
    const struct kb_lo3_message *msg = d->msg;
    long a = (long)p->a, h = p->h;
    const char *soort = NULL;
    uint16_t datum = 1030;
    if (val(msg, a, 1310) && !val(msg, h, 1310)) {
        soort = "emigratie";
        datum = 1320;
    } else if ((val(msg, h, 1310) && !val(msg, a, 1310)) ||
               (h >= 0 && val(msg, a, 1410) && !same_val(val(msg, a, 1410), val(msg, h, 1410)))) {
        soort = "immigratie";
        datum = val(msg, a, 1420) ? 1420 : 920;
    } else if (val(msg, a, 910) && val(msg, h, 910) && !same_val(val(msg, a, 910), val(msg, h, 910))) {
        soort = "intergemeentelijk";
        datum = val(msg, a, 1030) ? 1030 : 920;
    } else {
        const struct kb_lo3_category *c = &msg->categories[p->a];
        for (size_t i = 0; i < c->count && !soort; i++) {
            uint16_t nr = msg->elements[c->first + i].nummer;
            if (nr >= 1010 && nr <= 1210)
                soort = "binnengemeentelijk";
        }
    }
    if (!soort)
        return KB_OK;
    const struct kb_schema *schema;
    avro_value_t v;
    kb_err_t err = start_mutation(d, "nl.brp.persoon-verhuisd", anr, p, &schema, &v);
    if (err)
        return err;
    err = kb_value_set_string(&v, "soort", soort);
    PUT(&v, "gemeenteVan", h, 910);
    PUT(&v, "gemeenteNaar", a, 910);
    PUT(&v, "datumAanvang", a, datum);
    PUT(&v, "landVertrek", a, 1310);
    PUT(&v, "landVanwaarIngeschreven", a, 1410);
    if (!err && (val(msg, a, 1110) || val(msg, a, 1160) || val(msg, a, 1190))) {
        PUT(&v, "adres.functie", a, 1010);
        PUT(&v, "adres.straatnaam", a, 1110);
        PUT(&v, "adres.huisnummer", a, 1120);
        PUT(&v, "adres.huisletter", a, 1130);
        PUT(&v, "adres.huisnummertoevoeging", a, 1140);
        PUT(&v, "adres.postcode", a, 1160);
        PUT(&v, "adres.woonplaats", a, 1170);
        PUT(&v, "adres.nummeraanduiding", a, 1190);
    }
    *covered = 1;
    return end_mutation(d, schema, &v, p, anr, err);
}

/* 09 with an empty 59: a new child (the event shape of schema 1002). */
static kb_err_t kind_pair(const struct derive *d, const struct pair *p, const char *anr,
                          int *covered)
{
    const struct kb_lo3_message *msg = d->msg;
    if (p->h < 0 || msg->categories[p->h].count != 0 || msg->categories[p->a].count == 0)
        return KB_OK;
    const struct kb_schema *schema;
    avro_value_t v;
    kb_err_t err = new_value(d, "nl.brp.kind-toegevoegd", &schema, &v);
    if (err)
        return err;
    err = kb_value_set_string(&v, "ouder.aNummer", anr);
    if (!err)
        err = put_persoon(&v, "kind", msg, p->a, d->errstr, d->errstr_size);
    if (!err)
        err = put_akte(&v, msg, p->a, d->errstr, d->errstr_size);
    PUT(&v, "datumGeldigheid", (long)p->a, 8510);
    *covered = 1;
    struct rubrieken rub = {0};
    if (!err)
        err = pair_rubrieken(msg, p, &rub);
    err = finish(d, schema, &v, &rub, "anummer", anr, err);
    rub_fini(&rub);
    return err;
}

static kb_err_t mutation_events(const struct derive *d)
{
    const struct kb_lo3_message *msg = d->msg;
    const struct kb_lo3_header_field *hdr = kb_lo3_header(msg, "aNummer");
    if (!hdr || hdr->len != 10)
        return KB_OK;
    char anr[11];
    memcpy(anr, hdr->value, 10);
    anr[10] = '\0';
    struct rubrieken rest = {0};     /* rubrieken no specific event took */
    uint8_t cats[50] = {0};          /* their categories (actual numbers) */
    int rest_correctie = 0;
    kb_err_t err = KB_OK;
    for (size_t i = 0; i < msg->n_categories && !err; i++) {
        const struct kb_lo3_category *c = &msg->categories[i];
        if (c->nummer >= 50)
            continue; /* taken with its actual category */
        struct pair p = {i, -1, c->nummer, 0};
        if (i + 1 < msg->n_categories && msg->categories[i + 1].nummer == c->nummer + 50)
            p.h = (long)(i + 1);
        p.correctie = val(msg, p.h, 8410) != NULL;
        int covered = 0;
        switch (c->nummer) {
        case 1: err = persoon_pair(d, &p, anr, &covered); break;
        case 5: err = verbintenis_pair(d, &p, anr, &covered); break;
        case 6: err = overlijden_pair(d, &p, anr, &covered); break;
        case 7: err = opschorting_pair(d, &p, anr, &covered); break;
        case 8: err = verblijf_pair(d, &p, anr, &covered); break;
        case 9: err = kind_pair(d, &p, anr, &covered); break;
        default: break;
        }
        if (!err && !covered) {
            err = pair_rubrieken(msg, &p, &rest);
            cats[c->nummer] = 1;
            rest_correctie |= p.correctie;
        }
    }
    if (!err && rest.n) {
        const struct kb_schema *schema;
        avro_value_t v;
        struct pair none = {0, -1, 0, rest_correctie};
        err = start_mutation(d, "nl.brp.persoonslijst-gewijzigd", anr, &none, &schema, &v);
        if (!err) {
            avro_value_t arr, item;
            if (kb_value_path(&v, "categorieen", 1, &arr) == KB_OK)
                for (unsigned i = 1; i < 50 && !err; i++) {
                    char nr[3] = {(char)('0' + i / 10), (char)('0' + i % 10), '\0'};
                    if (cats[i] && (avro_value_append(&arr, &item, NULL) ||
                                    avro_value_set_string(&item, nr)))
                        err = KB_ERR_SCHEMA;
                }
            err = finish(d, schema, &v, &rest, "anummer", anr, err);
        }
    }
    rub_fini(&rest);
    return err;
}

/* Ng01: BRP-V took the PL out of the afnemer's set. */
static kb_err_t afgevoerd_event(const struct derive *d)
{
    const struct kb_lo3_message *msg = d->msg;
    long c01 = cat_find(msg, 1), c07 = cat_find(msg, 7);
    char anr[16];
    if (c01 < 0 || (raw_el(msg, (size_t)c01, 110, anr, sizeof anr), !anr[0]))
        return kb_err_set(KB_ERR_INVALID, d->errstr, d->errstr_size,
                          "offset 12: Ng01 body lacks 01.01.10");
    const struct kb_schema *schema;
    avro_value_t v;
    kb_err_t err = start_mutation(d, "nl.brp.persoonslijst-afgevoerd", anr, NULL, &schema, &v);
    if (err)
        return err;
    PUT(&v, "volgendANummer", c01, 2020);
    PUT(&v, "datumOpschorting", c07, 6710);
    PUT(&v, "redenOpschorting", c07, 6720);
    struct rubrieken rub = {0};
    for (size_t i = 0; i < msg->n_categories && !err; i++)
        err = rub_add_cat(&rub, msg, i, msg->categories[i].nummer);
    err = finish(d, schema, &v, &rub, "anummer", anr, err);
    rub_fini(&rub);
    return err;
}

/* Wa11 / Wa01: the A-nummer in the header is replaced by 01.01.10. */
static kb_err_t anummer_event(const struct derive *d)
{
    const struct kb_lo3_message *msg = d->msg;
    const struct kb_lo3_header_field *hdr = kb_lo3_header(msg, "aNummer");
    const struct kb_lo3_header_field *dg = kb_lo3_header(msg, "datumGeldigheid");
    long c01 = cat_find(msg, 1);
    char anr[11], nieuw[16], datum[9];
    if (!hdr || hdr->len != 10)
        return KB_OK;
    memcpy(anr, hdr->value, 10);
    anr[10] = '\0';
    if (c01 < 0 || (raw_el(msg, (size_t)c01, 110, nieuw, sizeof nieuw), !nieuw[0]))
        return kb_err_set(KB_ERR_INVALID, d->errstr, d->errstr_size,
                          "offset 12: %s body lacks 01.01.10", msg->type);
    const struct kb_schema *schema;
    avro_value_t v;
    kb_err_t err = start_mutation(d, "nl.brp.anummer-gewijzigd", anr, NULL, &schema, &v);
    if (err)
        return err;
    err = kb_value_set_string(&v, "nieuwANummer", nieuw);
    if (!err && dg && dg->len == 8) {
        memcpy(datum, dg->value, 8);
        datum[8] = '\0';
        err = kb_value_set_string(&v, "datumGeldigheid", datum);
    }
    struct rubrieken rub = {0};
    if (!err)
        err = rub_add(&rub, 1, 110);
    err = finish(d, schema, &v, &rub, "anummer", anr, err);
    rub_fini(&rub);
    return err;
}

kb_err_t kb_gba_events(const struct kb_gba_ctx *ctx, const uint8_t *raw, size_t len,
                       const struct kb_lo3_message *msg, int64_t received_ms,
                       const char *dataref, struct kb_ingress_event **evs, size_t *n,
                       char *errstr, size_t errstr_size)
{
    char sha[65];
    kb_sha256_hex(raw, len, sha);
    *evs = NULL;
    *n = 0;
    struct kb_lo3_findings findings;
    memset(&findings, 0, sizeof findings);
    kb_err_t err = kb_lo3_check(msg, &findings);
    if (err) {
        kb_lo3_findings_fini(&findings);
        return kb_err_set(err, errstr, errstr_size, "out of memory checking elements");
    }
    if (findings.n_reject) {
        for (size_t i = 0; i < findings.n; i++)
            if (findings.items[i].reject) {
                kb_lo3_finding_str(&findings.items[i], errstr, errstr_size);
                break;
            }
        kb_lo3_findings_fini(&findings);
        return KB_ERR_INVALID;
    }
    struct derive d = {ctx, msg, sha, received_ms, dataref, &findings, evs, n, errstr,
                       errstr_size};
    if (!strcmp(msg->type, "Lg01"))
        err = birth_events(&d);
    else if (!strcmp(msg->type, "Gv01") || !strcmp(msg->type, "Gv02"))
        err = mutation_events(&d);
    else if (!strcmp(msg->type, "Ng01"))
        err = afgevoerd_event(&d);
    else if (!strcmp(msg->type, "Wa11") || !strcmp(msg->type, "Wa01"))
        err = anummer_event(&d);
    kb_lo3_findings_fini(&findings);
    if (err) {
        kb_gba_events_free(*evs, *n);
        *evs = NULL;
        *n = 0;
    }
    return err;
}

void kb_gba_events_free(struct kb_ingress_event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(evs[i].value);
    free(evs);
}
