/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gba_egress.c - events -> LO3 for legacy afnemers (see gba_egress.h). A
 * small builder collects categories and Teletex element values it owns,
 * then kb_lo3_format() writes the bytes, so lengths are computed in one
 * place for ingress and egress alike.
 */
#include "gba_egress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress.h"
#include "lo3.h"
#include "t61.h"

#define MAX_CATS 16
#define MAX_ELS  128

/* One message under construction; values live in vals[]. */
struct builder {
    struct kb_lo3_message msg;
    struct kb_lo3_category cats[MAX_CATS];
    struct kb_lo3_element els[MAX_ELS];
    uint8_t *vals[MAX_ELS + KB_LO3_MAX_HEADER_FIELDS]; /* owned Teletex values */
    size_t n_vals;
    avro_value_t *v;   /* the decoded event */
    char *errstr;
    size_t errstr_size;
    kb_err_t err;      /* first error; later calls do nothing */
};

static void b_init(struct builder *b, const char *type, avro_value_t *v, char *errstr,
                   size_t errstr_size)
{
    memset(b, 0, sizeof *b);
    memcpy(b->msg.type, type, 5);
    memcpy(b->msg.random_key, "00000000", 9);
    b->msg.categories = b->cats;
    b->msg.elements = b->els;
    b->msg.has_body = 1;
    b->msg.n_bodies = 1;
    b->v = v;
    b->errstr = errstr;
    b->errstr_size = errstr_size;
}

static void b_fini(struct builder *b)
{
    for (size_t i = 0; i < b->n_vals; i++)
        free(b->vals[i]);
}

/* UTF-8 @p s as an owned Teletex value. */
static uint8_t *b_t61(struct builder *b, const char *s, const char *what, size_t *len)
{
    size_t n = strlen(s), bad = 0;
    uint8_t *t = malloc(n * 2 + 1);
    if (!t || b->n_vals >= sizeof b->vals / sizeof b->vals[0]) {
        free(t);
        b->err = kb_err_set(KB_ERR_NOMEM, b->errstr, b->errstr_size, "out of memory");
        return NULL;
    }
    b->vals[b->n_vals++] = t;
    if (kb_t61_from_utf8(s, n, t, n * 2 + 1, len, &bad)) {
        b->err = kb_err_set(KB_ERR_INVALID, b->errstr, b->errstr_size,
                            "%s: character at byte %zu has no Teletex form", what, bad);
        return NULL;
    }
    return t;
}

static void b_header(struct builder *b, const char *name, const char *value)
{
    if (b->err)
        return;
    struct kb_lo3_header_field *h = &b->msg.header[b->msg.n_header++];
    h->name = name;
    h->value = b_t61(b, value, name, &h->len);
}

static void b_cat(struct builder *b, unsigned nummer)
{
    if (b->err)
        return;
    if (b->msg.n_categories == MAX_CATS) {
        b->err = kb_err_set(KB_ERR_RANGE, b->errstr, b->errstr_size, "too many categories");
        return;
    }
    b->cats[b->msg.n_categories++] =
        (struct kb_lo3_category){.nummer = (uint8_t)nummer, .first = b->msg.n_elements};
}

/* Element @p nummer from the event field at @p path; absent when null (or
 * left out by the subscriber's projection). A value that is there but
 * cannot be read (too long, not a string) is an error: the LO3 must never
 * go out without it. */
static void b_el(struct builder *b, avro_value_t *from, uint16_t nummer, const char *path)
{
    char s[4096];
    if (b->err)
        return;
    kb_err_t gerr = kb_value_get_string(from, path, s, sizeof s);
    if (gerr == KB_ERR_NOTFOUND || (!gerr && !s[0]))
        return;
    if (gerr) {
        b->err =
            kb_err_set(KB_ERR_INVALID, b->errstr, b->errstr_size, "%s: %s", path,
                       gerr == KB_ERR_RANGE ? "longer than an LO3 element can be" : "not a string");
        return;
    }
    if (b->msg.n_elements == MAX_ELS) {
        b->err = kb_err_set(KB_ERR_RANGE, b->errstr, b->errstr_size, "too many elements");
        return;
    }
    struct kb_lo3_element *e = &b->els[b->msg.n_elements];
    e->nummer = nummer;
    e->value = b_t61(b, s, path, &e->len);
    if (b->err)
        return;
    b->msg.n_elements++;
    b->cats[b->msg.n_categories - 1].count++;
}

/* Groups 01-04 of a person record under @p prefix ("kind.", "persoon."). */
static void b_persoon(struct builder *b, avro_value_t *from, const char *prefix, int geslacht)
{
    static const struct {
        uint16_t nummer;
        const char *field;
    } map[] = {{110, "aNummer"},       {120, "bsn"},          {210, "voornamen"},
               {230, "voorvoegsel"},   {240, "geslachtsnaam"}, {310, "geboortedatum"},
               {320, "geboorteplaats"}, {330, "geboorteland"}, {410, "geslacht"}};
    char path[96];
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (map[i].nummer == 410 && !geslacht)
            continue;
        snprintf(path, sizeof path, "%s%s", prefix, map[i].field);
        b_el(b, from, map[i].nummer, path);
    }
}

static kb_err_t render_geboren(struct builder *b, const struct kb_event_attrs *attrs)
{
    avro_value_t *v = b->v;
    char datum[9] = "00000000";
    /* ce_time is RFC 3339: the Ag01's datum is its calendar date */
    if (strlen(attrs->time) >= 10) {
        memcpy(datum, attrs->time, 4);
        memcpy(datum + 4, attrs->time + 5, 2);
        memcpy(datum + 6, attrs->time + 8, 2);
    }
    b_init(b, "Ag01", v, b->errstr, b->errstr_size);
    b_header(b, "status", "A");
    b_header(b, "datum", datum);
    b_cat(b, 1);
    b_persoon(b, v, "kind.", 1);
    b_el(b, v, 8110, "akte.registergemeente");
    b_el(b, v, 8120, "akte.aktenummer");
    avro_value_t ouders, ouder, nr;
    size_t n = 0;
    if (!b->err && avro_value_get_by_name(v, "ouders", &ouders, NULL) == 0 &&
        avro_value_get_size(&ouders, &n) == 0) {
        for (size_t i = 0; i < n && !b->err; i++) {
            int32_t which = 0;
            /* No ouderNummer (a projection left it out): no category to put
             * the parent in, as for any field left out. */
            if (avro_value_get_by_index(&ouders, i, &ouder, NULL) ||
                avro_value_get_by_name(&ouder, "ouderNummer", &nr, NULL))
                continue;
            if (avro_value_get_int(&nr, &which) || (which != 1 && which != 2)) {
                b->err = kb_err_set(KB_ERR_INVALID, b->errstr, b->errstr_size,
                                    "ouders[%zu].ouderNummer: not 1 or 2", i);
                break;
            }
            b_cat(b, which == 1 ? 2u : 3u);
            b_persoon(b, &ouder, "persoon.", 1);
            b_el(b, &ouder, 6210, "datumFamilierechtelijkeBetrekking");
        }
    }
    b_cat(b, 8);
    b_el(b, v, 910, "inschrijving.gemeente");
    b_el(b, v, 920, "inschrijving.datumInschrijving");
    return b->err;
}

static kb_err_t render_kind(struct builder *b)
{
    avro_value_t *v = b->v;
    char anr[16];
    if (kb_value_get_string(v, "ouder.aNummer", anr, sizeof anr) || strlen(anr) != 10)
        return kb_err_set(KB_ERR_INVALID, b->errstr, b->errstr_size,
                          "ouder.aNummer missing: no Gv01 header");
    b_header(b, "aNummer", anr);
    b_cat(b, 9);
    b_persoon(b, v, "kind.", 0);
    b_el(b, v, 8110, "akte.registergemeente");
    b_el(b, v, 8120, "akte.aktenummer");
    b_el(b, v, 8510, "datumGeldigheid");
    b_cat(b, 59);
    return b->err;
}

static kb_err_t render_overleden(struct builder *b)
{
    avro_value_t *v = b->v;
    char anr[16];
    if (kb_value_get_string(v, "persoon.aNummer", anr, sizeof anr) || strlen(anr) != 10)
        return kb_err_set(KB_ERR_INVALID, b->errstr, b->errstr_size,
                          "persoon.aNummer missing: no Gv01 header");
    b_header(b, "aNummer", anr);
    b_cat(b, 6);
    b_el(b, v, 810, "overlijden.datum");
    b_el(b, v, 820, "overlijden.plaats");
    b_el(b, v, 830, "overlijden.land");
    b_el(b, v, 8510, "datumGeldigheid");
    b_cat(b, 56);
    return b->err;
}

kb_err_t kb_gba_render_lo3(const struct kb_event_attrs *attrs, const struct kb_schema *schema,
                           const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len,
                           char *errstr, size_t errstr_size)
{
    *out = NULL;
    *out_len = 0;
    const char *type = attrs->type;
    int kind = !strcmp(type, "nl.brp.persoon-geboren")     ? 1
               : !strcmp(type, "nl.brp.kind-toegevoegd")   ? 2
               : !strcmp(type, "nl.brp.persoon-overleden") ? 3
                                                           : 0;
    if (!kind)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "no LO3 rendering for %s", type);
    avro_value_t v;
    kb_err_t err = kb_egress_decode(schema, payload, len, &v, errstr, errstr_size);
    if (err)
        return err;
    struct builder *b = malloc(sizeof *b);
    if (!b) {
        avro_value_decref(&v);
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    b_init(b, "Gv01", &v, errstr, errstr_size);
    err = kind == 1 ? render_geboren(b, attrs) : kind == 2 ? render_kind(b) : render_overleden(b);
    if (!err)
        err = kb_lo3_format(&b->msg, out, out_len, errstr, errstr_size);
    b_fini(b);
    free(b);
    avro_value_decref(&v);
    return err;
}

kb_err_t kb_gba_out_name(const struct kb_event_attrs *attrs, char *name, size_t name_size,
                         char *errstr, size_t errstr_size)
{
    /* The id comes from a Kafka header anyone with write access to the
     * topic can set: "../../x" would write outside the spool. */
    if (!kb_egress_name_ok(attrs->id))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "ce_id is not a safe file name (1 to %d of A-Z a-z 0-9 . _ -, "
                          "not starting with '.')",
                          KB_EGRESS_NAME_MAX);
    int n = snprintf(name, name_size, "%s.lo3", attrs->id);
    if (n < 0 || (size_t)n >= name_size)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size, "out/ file name too long");
    return KB_OK;
}
