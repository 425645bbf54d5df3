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

static kb_err_t put_herkomst(avro_value_t *v, const struct kb_lo3_message *msg,
                             const char *sha, int64_t received_ms)
{
    char buf[32];
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

static kb_err_t birth_events(const struct kb_gba_ctx *ctx, const struct kb_lo3_message *msg,
                             const char *sha, int64_t received_ms, const char *dataref,
                             struct kb_ingress_event **evs, size_t *n, char *errstr,
                             size_t errstr_size)
{
    long c01 = cat_find(msg, 1), c07 = cat_find(msg, 7), c08 = cat_find(msg, 8);
    if (c01 < 0 || c07 < 0 || c08 < 0)
        return KB_OK; /* not a full PL: no birth to see */
    const struct kb_lo3_element *versie = kb_lo3_element(msg, (size_t)c07, 8010);
    const struct kb_lo3_element *geboren = kb_lo3_element(msg, (size_t)c01, 310);
    const struct kb_lo3_element *aanvang = kb_lo3_element(msg, (size_t)c08, 1030);
    if (!versie || versie->len != 4 || memcmp(versie->value, "0001", 4) != 0 ||
        !el_equals(geboren, aanvang))
        return KB_OK;

    const struct kb_schema *schema = kb_schemas_by_type(ctx->schemas, "nl.brp.persoon-geboren");
    if (!schema)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                          "no schema for nl.brp.persoon-geboren");
    avro_value_t v;
    if (avro_generic_value_new(schema->iface, &v))
        return KB_ERR_NOMEM;
    kb_err_t err = kb_value_init_nulls(&v);
    if (!err)
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
    if (!err)
        err = put_herkomst(&v, msg, sha, received_ms);
    if (!err) {
        char bsn[16], anr[16];
        raw_el(msg, (size_t)c01, 120, bsn, sizeof bsn);
        raw_el(msg, (size_t)c01, 110, anr, sizeof anr);
        err = emit(ctx, schema, &v, sha, *n, bsn[0] ? "bsn" : "anummer", bsn[0] ? bsn : anr,
                   received_ms, dataref, evs, n, errstr, errstr_size);
    }
    avro_value_decref(&v);
    return err;
}

static kb_err_t child_events(const struct kb_gba_ctx *ctx, const struct kb_lo3_message *msg,
                             const char *sha, int64_t received_ms, const char *dataref,
                             struct kb_ingress_event **evs, size_t *n, char *errstr,
                             size_t errstr_size)
{
    const struct kb_lo3_header_field *anr = kb_lo3_header(msg, "aNummer");
    if (!anr || anr->len != 10)
        return KB_OK;
    char parent[11];
    memcpy(parent, anr->value, 10);
    parent[10] = '\0';
    const struct kb_schema *schema = kb_schemas_by_type(ctx->schemas, "nl.brp.kind-toegevoegd");
    if (!schema)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                          "no schema for nl.brp.kind-toegevoegd");
    kb_err_t err = KB_OK;
    for (size_t i = 0; i + 1 < msg->n_categories && !err; i++) {
        const struct kb_lo3_category *c = &msg->categories[i], *h = &msg->categories[i + 1];
        if (c->nummer != 9 || h->nummer != 59 || h->count != 0 || c->count == 0)
            continue;
        avro_value_t v;
        if (avro_generic_value_new(schema->iface, &v))
            return KB_ERR_NOMEM;
        err = kb_value_init_nulls(&v);
        if (!err)
            err = kb_value_set_string(&v, "ouder.aNummer", parent);
        if (!err)
            err = put_persoon(&v, "kind", msg, i, errstr, errstr_size);
        if (!err)
            err = put_akte(&v, msg, i, errstr, errstr_size);
        if (!err)
            put(&v, "datumGeldigheid", msg, i, 8510, &err, errstr, errstr_size);
        if (!err)
            err = put_herkomst(&v, msg, sha, received_ms);
        if (!err)
            err = emit(ctx, schema, &v, sha, *n, "anummer", parent, received_ms, dataref, evs, n,
                       errstr, errstr_size);
        avro_value_decref(&v);
    }
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
    kb_err_t err = KB_OK;
    if (!strcmp(msg->type, "Lg01"))
        err = birth_events(ctx, msg, sha, received_ms, dataref, evs, n, errstr, errstr_size);
    else if (!strcmp(msg->type, "Gv01"))
        err = child_events(ctx, msg, sha, received_ms, dataref, evs, n, errstr, errstr_size);
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
