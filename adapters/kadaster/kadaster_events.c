/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * kadaster_events.c - BRK Levering documents -> events (see
 * kadaster_events.h).
 *
 * Transfers are recognised the way BRK expresses them: the `wordt` snapshot
 * holds a tenaamstelling that `was` did not have, based on a stukdeel of
 * aard 001 (Akte van Koop en Verkoop), or the mutation itself is of aard
 * 001 and brings a new tenaamstelling. What changed otherwise is found by
 * comparing the fingerprints brk_xml.c computed for every part and for
 * every field of the object, so no BRK element needs to be known here for
 * its change to be reported.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapter.h" /* kb_adapter_dataref */
#include "brk_lookup.h"
#include "kadaster_events.h"
#include "ketenbus/avro_json.h"
#include "ketenbus/check.h"
#include "ketenbus/event.h"

void kb_kadaster_batch_init(struct kb_kadaster_batch *b)
{
    memset(b, 0, sizeof *b);
    kb_brk_limits_default(&b->xml);
    kb_brk_zip_limits_default(&b->zip);
}

void kb_kadaster_batch_fini(struct kb_kadaster_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_docs; i++)
        kb_brk_doc_fini(&b->docs[i].brk);
    free(b->docs);
    b->docs = NULL;
    b->n_docs = 0;
}

/* ---------------------------------------------------------------- checks */

static int all_digits(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && kb_check_digits(s, n);
}

/* YYYY-MM-DD, a real calendar date. */
static int iso_date(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    char d[8] = {s[0], s[1], s[2], s[3], s[5], s[6], s[8], s[9]};
    return kb_check_date(d, 8);
}

/* RSIN as 9 digits (Kadaster's older generations drop leading zeros). */
static int rsin9(const char *s, char out[10])
{
    size_t n = strlen(s);
    if (!all_digits(s, 9))
        return 0;
    memset(out, '0', 9 - n);
    memcpy(out + 9 - n, s, n);
    out[9] = '\0';
    return 1;
}

/* Whole currency units: digits, optionally ".00". */
static int bedrag(const char *s, long long *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 15)
        return 0;
    if (s[n] == '.' && s[n + 1] && strspn(s + n + 1, "0") == strlen(s + n + 1))
        ;
    else if (s[n])
        return 0;
    *out = strtoll(s, NULL, 10);
    return 1;
}

static kb_err_t check_snapshot(const struct kb_brk_snapshot *s, const char *where,
                               const char *object_id, char *errstr, size_t errstr_size)
{
    if (!s->soort[0])
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "%s: no Perceel or Appartementsrecht", where);
    if (!all_digits(s->identificatie, 20))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "%s: object identificatie missing or not numeric", where);
    if (object_id && strcmp(object_id, s->identificatie))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "%s: object identificatie differs from the mutation's object", where);
    if (s->koopsom_bedrag[0]) {
        long long v;
        if (!bedrag(s->koopsom_bedrag, &v))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "%s: koopsom bedrag is not a whole amount", where);
    }
    if (s->koopjaar[0] && !all_digits(s->koopjaar, 4))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s: koopjaar not a year", where);
    if (s->grootte[0] && !all_digits(s->grootte, 15))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "%s: kadastraleGrootte not a whole number", where);
    for (size_t i = 0; i < s->n_personen; i++) {
        const struct kb_brk_persoon *p = &s->personen[i];
        char r9[10];
        if (p->bsn[0] && !kb_check_bsn(p->bsn, strlen(p->bsn)))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "%s: persoon %zu: bsn fails the 11-proef", where, i + 1);
        if (p->rsin[0] && (!rsin9(p->rsin, r9) || !kb_check_bsn(r9, 9)))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "%s: persoon %zu: rsin fails the 11-proef", where, i + 1);
        if (p->kvk[0] && !all_digits(p->kvk, 8))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "%s: persoon %zu: kvkNummer not up to 8 digits", where, i + 1);
    }
    for (size_t i = 0; i < s->n_tenaamstellingen; i++) {
        const struct kb_brk_tenaamstelling *t = &s->tenaamstellingen[i];
        if (!t->identificatie[0])
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "%s: tenaamstelling %zu has no identificatie", where, i + 1);
        if (!kb_brk_find_persoon(s, t->persoon_ref))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "%s: tenaamstelling %zu names a person not in the snapshot", where,
                              i + 1);
        if ((t->teller[0] || t->noemer[0]) &&
            (!all_digits(t->teller, 12) || !all_digits(t->noemer, 12) ||
             strtoll(t->noemer, NULL, 10) == 0))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "%s: tenaamstelling %zu: aandeel is not teller/noemer > 0", where,
                              i + 1);
    }
    return KB_OK;
}

kb_err_t kb_kadaster_check(const struct kb_brk_doc *d, char *errstr, size_t errstr_size)
{
    if (d->kind == KB_BRK_STAND) {
        if (d->peildatum[0] && !iso_date(d->peildatum))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "Stand/productSpecificatie Peildatum is not a date");
        for (size_t i = 0; i < d->n_stand; i++) {
            char where[64];
            snprintf(where, sizeof where, "Stand/stand snapshot %zu", i + 1);
            kb_err_t err = check_snapshot(&d->stand[i], where, NULL, errstr, errstr_size);
            if (err)
                return err;
        }
        return KB_OK;
    }
    if (!iso_date(d->brk_datum))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "Mutatie/brkDatum missing or not a date");
    if (d->volgnummer < 1)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "Mutatie/volgnummerKadastraalObjectDatum missing");
    if (!all_digits(d->object_id, 20))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "Mutatie/kadastraalObject reference missing or not numeric");
    if (!d->was.present && !d->wordt.present)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "Mutatie has neither was nor wordt");
    kb_err_t err = KB_OK;
    if (d->was.present)
        err = check_snapshot(&d->was, "Mutatie/was", d->object_id, errstr, errstr_size);
    if (!err && d->wordt.present)
        err = check_snapshot(&d->wordt, "Mutatie/wordt", d->object_id, errstr, errstr_size);
    return err;
}

/* ----------------------------------------------------------------- batch */

struct adder {
    struct kb_kadaster_batch *b;
    size_t file_index;
    const char *file;
    int64_t received_ms;
    const char *dataref_base;
    kb_kadaster_reject_cb reject;
    void *arg;
    kb_err_t err;
};

static kb_err_t events_fit(const struct kb_kadaster_ctx *ctx, size_t max_event,
                           const struct kb_kadaster_doc *doc, char *errstr, size_t errstr_size);

/* Parse and check one XML document; it joins the batch or is rejected. */
static int add_document(struct adder *a, const char *entry, const uint8_t *xml, size_t len)
{
    char docname[512], errstr[400];
    if (entry)
        snprintf(docname, sizeof docname, "%s!%s", a->file, entry);
    else
        snprintf(docname, sizeof docname, "%s", a->file);
    struct kb_brk_doc brk;
    kb_err_t err = kb_brk_parse(xml, len, &a->b->xml, &brk, errstr, sizeof errstr);
    const char *rule = err == KB_ERR_RANGE ? "size" : "xml";
    if (err == KB_ERR_NOMEM) {
        a->err = err;
        return -1;
    }
    if (!err) {
        err = kb_kadaster_check(&brk, errstr, sizeof errstr);
        rule = "brk-semantics";
    }
    if (err) {
        kb_brk_doc_fini(&brk);
        if (a->reject(a->arg, a->file_index, docname, entry == NULL, xml, len, rule, errstr)) {
            a->err = KB_ERR_STATE;
            return -1;
        }
        return 0;
    }
    struct kb_kadaster_batch *b = a->b;
    struct kb_kadaster_doc *nd = realloc(b->docs, (b->n_docs + 1) * sizeof *nd);
    if (!nd) {
        kb_brk_doc_fini(&brk);
        a->err = KB_ERR_NOMEM;
        return -1;
    }
    b->docs = nd;
    struct kb_kadaster_doc *doc = &nd[b->n_docs++];
    memset(doc, 0, sizeof *doc);
    snprintf(doc->name, sizeof doc->name, "%s", docname);
    kb_sha256_hex(xml, len, doc->sha256);
    if (a->dataref_base && a->dataref_base[0]) /* the entry name is the ZIP's bytes */
        kb_adapter_dataref(a->dataref_base, NULL, entry, doc->dataref, sizeof doc->dataref);
    doc->received_ms = a->received_ms;
    doc->file_index = a->file_index;
    doc->brk = brk;
    if (!b->ctx)
        return 0;
    /* Kafka refuses an event over its limit (max_event) for good: refused here,
     * with the bytes at hand, the document goes to quarantine like any
     * other instead of failing every later send of its whole delivery. */
    err = events_fit(b->ctx, b->max_event ? b->max_event : KB_INGRESS_MAX_EVENT, doc, errstr,
                     sizeof errstr);
    if (err == KB_ERR_RANGE) {
        kb_brk_doc_fini(&doc->brk);
        b->n_docs--;
        if (a->reject(a->arg, a->file_index, docname, entry == NULL, xml, len, "size", errstr)) {
            a->err = KB_ERR_STATE;
            return -1;
        }
        return 0;
    }
    if (err) {
        a->err = err; /* out of memory or no schema: the whole delivery is retried */
        return -1;
    }
    return 0;
}

static int zip_entry(void *arg, const char *name, const uint8_t *data, size_t len)
{
    return add_document(arg, name, data, len);
}

kb_err_t kb_kadaster_batch_add(struct kb_kadaster_batch *b, size_t file_index, const char *name,
                               const uint8_t *buf, size_t len, int64_t received_ms,
                               const char *dataref_base, kb_kadaster_reject_cb reject, void *arg)
{
    struct adder a = {b, file_index, name, received_ms, dataref_base, reject, arg, KB_OK};
    if (!kb_brk_is_zip(buf, len)) {
        add_document(&a, NULL, buf, len);
        return a.err;
    }
    size_t before = b->n_docs;
    char errstr[300];
    kb_err_t err = kb_brk_zip_each(buf, len, &b->zip, zip_entry, &a, errstr, sizeof errstr);
    if (err == KB_ERR_STATE || a.err)
        return a.err ? a.err : KB_ERR_STATE;
    if (err == KB_ERR_NOMEM)
        return err;
    if (err) {
        /* The archive as a whole is refused: what it yielded so far goes too. */
        for (size_t i = before; i < b->n_docs; i++)
            kb_brk_doc_fini(&b->docs[i].brk);
        b->n_docs = before;
        if (reject(arg, file_index, name, 1, buf, len, "zip", errstr))
            return KB_ERR_STATE;
    }
    return KB_OK;
}

/* ---------------------------------------------------------------- events */

/* One event to be: a mutation document, or one snapshot of a stand. */
struct unit {
    const struct kb_kadaster_doc *doc;
    const struct kb_brk_snapshot *snap; /* stand snapshot, or NULL for a mutation */
    size_t index;                       /* snapshot index within the doc */
    char group[160];
    size_t order; /* position in publication order */
    int n, m;     /* group volgnummer / aantal */
};

/* The completeness group of @p doc's events: its deed, the object and
 * mutation when no deed is named, the file for a stand. */
static void unit_group(const struct kb_kadaster_doc *doc, char *out, size_t out_size)
{
    const struct kb_brk_doc *d = &doc->brk;
    if (d->kind == KB_BRK_STAND)
        snprintf(out, out_size, "stand:%s", doc->sha256);
    else if (d->stuk.soort[0] && d->stuk.identificatie[0])
        snprintf(out, out_size, "%s:%s", d->stuk.soort, d->stuk.identificatie);
    else
        snprintf(out, out_size, "object:%s:%s:%ld", d->object_id, d->brk_datum, d->volgnummer);
}

static int unit_cmp(const void *pa, const void *pb)
{
    const struct unit *a = pa, *b = pb;
    const struct kb_brk_doc *x = &a->doc->brk, *y = &b->doc->brk;
    if (x->kind != y->kind)
        return x->kind == KB_BRK_STAND ? -1 : 1; /* initial load first */
    const char *dx = x->kind == KB_BRK_STAND ? x->peildatum : x->brk_datum;
    const char *dy = y->kind == KB_BRK_STAND ? y->peildatum : y->brk_datum;
    int c = strcmp(dx, dy);
    if (c)
        return c;
    if (x->volgnummer != y->volgnummer)
        return x->volgnummer < y->volgnummer ? -1 : 1;
    const char *ox = a->snap ? a->snap->identificatie : x->object_id;
    const char *oy = b->snap ? b->snap->identificatie : y->object_id;
    if ((c = strcmp(ox, oy)))
        return c;
    if ((c = strcmp(a->doc->name, b->doc->name)))
        return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

static int group_cmp(const void *pa, const void *pb)
{
    const struct unit *const *a = pa, *const *b = pb;
    int c = strcmp((*a)->group, (*b)->group);
    if (c)
        return c;
    return (*a)->order < (*b)->order ? -1 : (*a)->order > (*b)->order;
}

static kb_err_t set_opt(avro_value_t *v, const char *path, const char *s)
{
    return kb_value_set_string(v, path, s && s[0] ? s : NULL);
}

static kb_err_t set_bool(avro_value_t *v, const char *path, int b)
{
    avro_value_t f;
    kb_err_t err = kb_value_path(v, path, 1, &f);
    if (err)
        return err;
    return avro_value_set_boolean(&f, b) ? KB_ERR_SCHEMA : KB_OK;
}

/* Select the record branch of the nullable record at @p path and give its
 * own unions their null branch. */
static kb_err_t set_record(avro_value_t *v, const char *path)
{
    avro_value_t rec;
    kb_err_t err = kb_value_path(v, path, 1, &rec);
    return err ? err : kb_value_init_nulls(&rec);
}

static kb_err_t put_object(avro_value_t *v, const char *id, const char *soort,
                           const struct kb_brk_aanduiding *a)
{
    kb_err_t err = kb_value_set_string(v, "object.identificatie", id);
    if (!err)
        err = kb_value_set_string(v, "object.soort", soort);
    if (!err)
        err = set_opt(v, "object.akrGemeenteCode", a->gemeente_code);
    if (!err)
        err = set_opt(v, "object.kadastraleGemeente", a->gemeente);
    if (!err)
        err = set_opt(v, "object.sectie", a->sectie);
    if (!err)
        err = set_opt(v, "object.perceelnummer", a->perceelnummer);
    if (!err)
        err = set_opt(v, "object.appartementsindex", a->appartementsindex);
    return err;
}

static kb_err_t put_mutatie(avro_value_t *v, const struct kb_brk_doc *d,
                            const struct kb_brk_snapshot *s)
{
    kb_err_t err = set_record(v, "mutatie");
    if (!err)
        err = kb_value_set_string(v, "mutatie.brkDatum", d->brk_datum);
    if (!err)
        err = kb_value_set_int(v, "mutatie.volgnummer", (int32_t)d->volgnummer);
    if (!err)
        err = set_opt(v, "mutatie.aardStukdeelCode", d->aard_stukdeel.code);
    if (!err)
        err = set_opt(v, "mutatie.aardStukdeel", d->aard_stukdeel.waarde);
    if (!err)
        err = set_opt(v, "mutatie.toestandsdatum", s ? s->toestandsdatum : NULL);
    return err;
}

static kb_err_t put_stuk(avro_value_t *v, const struct kb_brk_stuk *st)
{
    if (!st->soort[0])
        return kb_value_set_string(v, "stuk", NULL);
    kb_err_t err = set_record(v, "stuk");
    if (!err)
        err = kb_value_set_string(v, "stuk.soort", st->soort);
    if (!err)
        err = set_opt(v, "stuk.identificatie", st->identificatie);
    if (!err)
        err = set_opt(v, "stuk.deel", st->deel);
    if (!err)
        err = set_opt(v, "stuk.nummer", st->nummer);
    if (!err)
        err = set_opt(v, "stuk.reeks", st->reeks);
    if (!err)
        err = set_opt(v, "stuk.registercode",
                      st->registercode.waarde[0] ? st->registercode.waarde : st->registercode.code);
    if (!err)
        err = set_opt(v, "stuk.soortRegister", st->soort_register);
    return err;
}

static kb_err_t put_koopsom(avro_value_t *v, const struct kb_brk_snapshot *s)
{
    if (!s || !s->have_koopsom)
        return kb_value_set_string(v, "koopsom", NULL);
    kb_err_t err = set_record(v, "koopsom");
    long long amount;
    if (!err && s->koopsom_bedrag[0] && bedrag(s->koopsom_bedrag, &amount))
        err = kb_value_set_long(v, "koopsom.bedrag", amount);
    if (!err)
        err = set_opt(v, "koopsom.valuta", s->koopsom_valuta);
    if (!err && s->koopjaar[0])
        err = kb_value_set_int(v, "koopsom.koopjaar", (int32_t)strtol(s->koopjaar, NULL, 10));
    if (!err && s->meer_objecten >= 0)
        err = set_bool(v, "koopsom.meerObjecten", s->meer_objecten);
    return err;
}

/* Append the tenaamstellingen of @p s to the array at @p path; nieuw when
 * @p before is given and lacks them. */
static kb_err_t put_rechthebbenden(avro_value_t *v, const char *path,
                                   const struct kb_brk_snapshot *s,
                                   const struct kb_brk_snapshot *before, int all_new)
{
    avro_value_t arr;
    if (kb_value_path(v, path, 1, &arr))
        return KB_ERR_SCHEMA;
    for (size_t i = 0; s && i < s->n_tenaamstellingen; i++) {
        const struct kb_brk_tenaamstelling *t = &s->tenaamstellingen[i];
        const struct kb_brk_persoon *p = kb_brk_find_persoon(s, t->persoon_ref);
        const struct kb_brk_recht *r = kb_brk_find_recht(s, t->recht_ref);
        avro_value_t e;
        size_t idx;
        if (avro_value_append(&arr, &e, &idx))
            return KB_ERR_SCHEMA;
        kb_err_t err = kb_value_init_nulls(&e);
        if (!err)
            err = kb_value_set_string(&e, "tenaamstelling", t->identificatie);
        if (!err)
            err = set_bool(&e, "nieuw",
                           all_new  ? 1
                           : before ? !kb_brk_has_tenaamstelling(before, t->identificatie)
                                    : 0);
        if (!err && r) {
            err = set_opt(&e, "rechtIdentificatie", r->identificatie);
            if (!err)
                err = set_opt(&e, "rechtAardCode", r->aard.code);
            if (!err)
                err = set_opt(&e, "rechtAard", r->aard.waarde);
        }
        if (!err && t->teller[0] && t->noemer[0]) {
            err = kb_value_set_long(&e, "aandeelTeller", strtoll(t->teller, NULL, 10));
            if (!err)
                err = kb_value_set_long(&e, "aandeelNoemer", strtoll(t->noemer, NULL, 10));
        }
        if (err)
            return err;
        if (!p)
            return KB_ERR_STATE; /* kb_kadaster_check() guarantees it resolves */
        char r9[10] = "";
        if (p->rsin[0])
            rsin9(p->rsin, r9);
        err = kb_value_set_string(&e, "persoon.soort",
                                  p->natuurlijk ? "natuurlijk" : "niet-natuurlijk");
        if (!err)
            err = set_opt(&e, "persoon.kadasterId", p->identificatie);
        if (!err)
            err = set_opt(&e, "persoon.bsn", p->natuurlijk ? p->bsn : NULL);
        if (!err)
            err = set_opt(&e, "persoon.bsnNilReason",
                          p->natuurlijk && !p->bsn[0] ? p->bsn_nilreason : NULL);
        if (!err)
            err = set_opt(&e, "persoon.rsin", p->natuurlijk ? NULL : r9);
        if (!err)
            err = set_opt(&e, "persoon.kvkNummer", p->natuurlijk ? NULL : p->kvk);
        if (!err)
            err = set_opt(&e, "persoon.statutaireNaam", p->natuurlijk ? NULL : p->statutaire_naam);
        if (!err)
            err = set_opt(&e, "persoon.rechtsvorm", p->natuurlijk ? NULL : p->rechtsvorm);
        if (err)
            return err;
    }
    return KB_OK;
}

static kb_err_t add_wijziging(avro_value_t *arr, const char *onderdeel, const char *id,
                              const char *wat)
{
    avro_value_t e;
    size_t idx;
    if (avro_value_append(arr, &e, &idx))
        return KB_ERR_SCHEMA;
    kb_err_t err = kb_value_init_nulls(&e);
    if (!err)
        err = kb_value_set_string(&e, "onderdeel", onderdeel);
    if (!err)
        err = set_opt(&e, "identificatie", id);
    if (!err)
        err = kb_value_set_string(&e, "wijziging", wat);
    return err;
}

/* What changed between @p was (may be absent) and @p wordt. */
static kb_err_t put_wijzigingen(avro_value_t *v, const struct kb_brk_snapshot *was,
                                const struct kb_brk_snapshot *wordt)
{
    avro_value_t arr;
    if (kb_value_path(v, "wijzigingen", 1, &arr))
        return KB_ERR_SCHEMA;
    kb_err_t err = KB_OK;
    char name[KB_BRK_ID_MAX + 16];
    size_t nwf = was ? was->n_fields : 0, nwp = was ? was->n_parts : 0;
    const struct kb_brk_part *wf = was ? was->fields : NULL, *wp = was ? was->parts : NULL;
    for (size_t i = 0; !err && i < wordt->n_fields; i++) {
        const struct kb_brk_part *f = &wordt->fields[i], *o = kb_brk_find_field(was, f->kind);
        snprintf(name, sizeof name, "object.%s", f->kind);
        if (!o)
            err = add_wijziging(&arr, name, NULL, "toegevoegd");
        else if (o->hash != f->hash)
            err = add_wijziging(&arr, name, NULL, "gewijzigd");
    }
    for (size_t i = 0; !err && i < nwf; i++)
        if (!kb_brk_find_field(wordt, wf[i].kind)) {
            snprintf(name, sizeof name, "object.%s", wf[i].kind);
            err = add_wijziging(&arr, name, NULL, "vervallen");
        }
    for (size_t i = 0; !err && i < wordt->n_parts; i++) {
        const struct kb_brk_part *p = &wordt->parts[i];
        const struct kb_brk_part *o = kb_brk_find_part(was, p->kind, p->identificatie);
        if (!o)
            err = add_wijziging(&arr, p->kind, p->identificatie, "toegevoegd");
        else if (o->hash != p->hash)
            err = add_wijziging(&arr, p->kind, p->identificatie, "gewijzigd");
    }
    for (size_t i = 0; !err && i < nwp; i++)
        if (!kb_brk_find_part(wordt, wp[i].kind, wp[i].identificatie))
            err = add_wijziging(&arr, wp[i].kind, wp[i].identificatie, "vervallen");
    return err;
}

static int is_aard_001(const char *code)
{
    return all_digits(code, 8) && strtol(code, NULL, 10) == 1;
}

/* A transfer: a new tenaamstelling in wordt based on a deed of sale. Sets
 * *stukdeel to the stukdeel id when known. */
static int is_transfer(const struct kb_brk_doc *d, const char **stukdeel)
{
    *stukdeel = NULL;
    if (!d->wordt.present)
        return 0;
    int any_new = 0;
    for (size_t i = 0; i < d->wordt.n_tenaamstellingen; i++) {
        const struct kb_brk_tenaamstelling *t = &d->wordt.tenaamstellingen[i];
        if (kb_brk_has_tenaamstelling(d->was.present ? &d->was : NULL, t->identificatie))
            continue;
        any_new = 1;
        for (size_t j = 0; j < t->n_stukdeel_refs; j++) {
            const struct kb_brk_stukdeel *sd = kb_brk_find_stukdeel(&d->wordt, t->stukdeel_refs[j]);
            if (sd && is_aard_001(sd->aard.code)) {
                *stukdeel = sd->identificatie;
                return 1;
            }
        }
    }
    return any_new && is_aard_001(d->aard_stukdeel.code);
}

static kb_err_t put_common(avro_value_t *v, const struct unit *u)
{
    kb_err_t err = kb_value_set_string(v, "groep.id", u->group);
    if (!err)
        err = kb_value_set_int(v, "groep.volgnummer", u->n);
    if (!err)
        err = kb_value_set_int(v, "groep.aantal", u->m);
    if (!err)
        err = kb_value_set_string(v, "herkomst.bestand", u->doc->name);
    if (!err)
        err = kb_value_set_string(v, "herkomst.schemaGeneratie", u->doc->brk.generatie);
    if (!err)
        err = kb_value_set_string(v, "herkomst.sha256", u->doc->sha256);
    if (!err)
        err = kb_value_set_long(v, "herkomst.ontvangen", u->doc->received_ms);
    return err;
}

/* Build the payload of @p u into a fresh value of the right schema. */
static kb_err_t build(const struct kb_kadaster_ctx *ctx, const struct unit *u,
                      const struct kb_schema **schema, avro_value_t *v, char *errstr,
                      size_t errstr_size)
{
    const struct kb_brk_doc *d = &u->doc->brk;
    const char *type, *stukdeel = NULL;
    if (u->snap)
        type = "nl.brk.kadastraal-object-gemuteerd";
    else if (!d->wordt.present)
        type = "nl.brk.kadastraal-object-vervallen";
    else if (is_transfer(d, &stukdeel))
        type = "nl.brk.eigendom-overgedragen";
    else
        type = "nl.brk.kadastraal-object-gemuteerd";
    *schema = kb_schemas_by_type(ctx->schemas, type);
    if (!*schema)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "no schema for %s", type);
    if (avro_generic_value_new((*schema)->iface, v))
        return KB_ERR_NOMEM;
    kb_err_t err = kb_value_init_nulls(v);
    const struct kb_brk_snapshot *s = u->snap ? u->snap : d->wordt.present ? &d->wordt : &d->was;
    if (!err)
        err = put_object(v, s->identificatie, s->soort, &s->aanduiding);
    if (!err)
        err = put_common(v, u);
    if (err)
        goto out;
    if (!strcmp(type, "nl.brk.kadastraal-object-vervallen")) {
        err = put_mutatie(v, d, &d->was);
        if (!err)
            err = put_stuk(v, &d->stuk);
        if (!err)
            err = put_rechthebbenden(v, "laatsteRechthebbenden", &d->was, NULL, 0);
    } else if (!strcmp(type, "nl.brk.eigendom-overgedragen")) {
        err = put_mutatie(v, d, &d->wordt);
        if (!err)
            err = put_stuk(v, &d->stuk);
        if (!err)
            err = set_opt(v, "stukdeelIdentificatie", stukdeel);
        if (!err)
            err = put_rechthebbenden(v, "vorigeRechthebbenden", d->was.present ? &d->was : NULL,
                                     NULL, 0);
        if (!err)
            err = put_rechthebbenden(v, "nieuweRechthebbenden", &d->wordt,
                                     d->was.present ? &d->was : NULL, !d->was.present);
        if (!err)
            err = put_koopsom(v, &d->wordt);
    } else {
        const struct kb_brk_snapshot *was = u->snap ? NULL : d->was.present ? &d->was : NULL;
        err = kb_value_set_string(v, "soort", u->snap ? "stand" : "mutatie");
        if (!err && !u->snap)
            err = put_mutatie(v, d, s);
        if (!err && !u->snap)
            err = put_stuk(v, &d->stuk);
        if (!err)
            err = set_opt(v, "peildatum", u->snap ? d->peildatum : NULL);
        if (!err && !u->snap)
            err = put_wijzigingen(v, was, s);
        if (!err)
            err = put_rechthebbenden(v, "rechthebbenden", s, was, !u->snap && !was);
        if (!err)
            err = set_opt(v, "aardCultuurCode", s->aard_cultuur.code);
        if (!err)
            err = set_opt(v, "aardCultuur", s->aard_cultuur.waarde);
        if (!err && s->grootte[0])
            err = kb_value_set_long(v, "grootte", strtoll(s->grootte, NULL, 10));
        if (!err)
            err = put_koopsom(v, s);
    }
out:
    if (err) {
        avro_value_decref(v);
        if (err != KB_ERR_NOMEM)
            err = kb_err_set(err, errstr, errstr_size, "schema %s does not take the payload", type);
    }
    return err;
}

static kb_err_t emit(const struct kb_kadaster_ctx *ctx, const struct unit *u,
                     struct kb_ingress_event *ev, char *errstr, size_t errstr_size)
{
    const struct kb_schema *schema;
    avro_value_t v;
    memset(ev, 0, sizeof *ev);
    kb_err_t err = build(ctx, u, &schema, &v, errstr, errstr_size);
    if (err)
        return err;
    err = kb_schema_encode(schema, &v, &ev->value, &ev->len, errstr, errstr_size);
    avro_value_decref(&v);
    if (err)
        return err;
    /* The id names the source, the exact XML bytes and the event's place in
     * the document: stable across re-reads, unique otherwise. */
    char name[512];
    int nlen = snprintf(name, sizeof name, "%s|%s|%s|%zu", ctx->source, u->doc->sha256,
                        schema->type, u->index);
    kb_event_uuid5(name, (size_t)nlen, ev->attrs.id);
    snprintf(ev->attrs.source, sizeof ev->attrs.source, "%s", ctx->source);
    snprintf(ev->attrs.type, sizeof ev->attrs.type, "%s", schema->type);
    kb_event_time(u->doc->received_ms, ev->attrs.time);
    /* A dataref too long for the header is left out rather than cut. */
    size_t dlen = strlen(u->doc->dataref);
    if (dlen < sizeof ev->attrs.dataref)
        memcpy(ev->attrs.dataref, u->doc->dataref, dlen + 1);
    kb_event_traceparent(ev->attrs.id, ev->attrs.traceparent);
    ev->attrs.schema_id = schema->id;
    const char *object = u->snap ? u->snap->identificatie : u->doc->brk.object_id;
    /* The key is the object itself (not personal data, and what a
     * compacted topic of object states needs); ce_subject its pseudonym, so
     * follow lists work the same as for persons. */
    size_t olen = strlen(object); /* at most 20 digits: kb_kadaster_check() */
    if (olen >= sizeof ev->key)
        return kb_err_set(KB_ERR_STATE, errstr, errstr_size, "object id too long for a key");
    memcpy(ev->key, object, olen + 1);
    if (ctx->key) {
        err = kb_event_pseudonym(ctx->key, ctx->key_len, "kadastraalobject", object,
                                 ev->attrs.subject);
        if (err)
            return kb_err_set(err, errstr, errstr_size, "subject key unusable");
    }
    return KB_OK;
}

/*
 * Upper bound of the encoded size of the event of @p s (with the `was`
 * @p was of a mutation, or NULL), cheap to compute, so that events are
 * built twice only for the rare document that could come near the limit.
 * It holds because every string a payload carries is a copy of one fixed-
 * size field of the model (brk_xml.h: at most KB_BRK_TEXT_MAX bytes, the
 * file name 512): a rechthebbende takes about 1.3 KiB at most (RECHT_MAX
 * leaves a factor 6), a wijziging under 200 bytes (WIJZ_MAX), and all the
 * rest (object, mutatie, stuk, groep, herkomst, koopsom, cultuur) under
 * 5 KiB (BASE_MAX). A payload that gains another repeated part must be
 * counted here; test_kadaster checks the bound against real events.
 */
#define BASE_MAX  (64u << 10)
#define RECHT_MAX (8u << 10)
#define WIJZ_MAX  1024u

static size_t event_bound(const struct kb_brk_snapshot *was, const struct kb_brk_snapshot *s)
{
    size_t rechten = s->n_tenaamstellingen, wijz = s->n_fields + s->n_parts;
    if (was) {
        rechten += was->n_tenaamstellingen;
        wijz += was->n_fields + was->n_parts;
    }
    return BASE_MAX + rechten * RECHT_MAX + wijz * WIJZ_MAX;
}

/* Encoded size of @p u's event with the largest group numbers (a real
 * "n of m" never encodes longer), or an error of build(). */
static kb_err_t event_size(const struct kb_kadaster_ctx *ctx, struct unit *u, size_t *size,
                           char *errstr, size_t errstr_size)
{
    const struct kb_schema *schema;
    avro_value_t v;
    u->n = u->m = INT32_MAX;
    kb_err_t err = build(ctx, u, &schema, &v, errstr, errstr_size);
    if (err)
        return err;
    if (avro_value_sizeof(&v, size))
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "avro sizeof: %s", avro_strerror());
    avro_value_decref(&v);
    *size += 5; /* Confluent framing, as kb_schema_encode() adds */
    return err;
}

/* KB_ERR_RANGE, with the snapshot and sizes in errstr, when an event of
 * @p doc would be larger than @p max_event bytes. */
static kb_err_t events_fit(const struct kb_kadaster_ctx *ctx, size_t max_event,
                           const struct kb_kadaster_doc *doc, char *errstr, size_t errstr_size)
{
    const struct kb_brk_doc *d = &doc->brk;
    size_t n = d->kind == KB_BRK_STAND ? d->n_stand : 1;
    struct unit u = {.doc = doc};
    unit_group(doc, u.group, sizeof u.group);
    for (size_t i = 0; i < n; i++) {
        const struct kb_brk_snapshot *s, *was = NULL;
        if (d->kind == KB_BRK_STAND) {
            s = u.snap = &d->stand[i];
            u.index = i;
        } else {
            s = d->wordt.present ? &d->wordt : &d->was;
            was = d->wordt.present && d->was.present ? &d->was : NULL;
        }
        if (event_bound(was, s) <= max_event)
            continue;
        size_t size = 0;
        kb_err_t err = event_size(ctx, &u, &size, errstr, errstr_size);
        if (err)
            return err;
        if (size > max_event) {
            char where[64] = "Mutatie";
            if (d->kind == KB_BRK_STAND)
                snprintf(where, sizeof where, "Stand/stand snapshot %zu", i + 1);
            return kb_ingress_too_large(errstr, errstr_size, where, size, max_event);
        }
    }
    return KB_OK;
}

kb_err_t kb_kadaster_events(const struct kb_kadaster_ctx *ctx, struct kb_kadaster_batch *b,
                            struct kb_ingress_event **evs, size_t *n, char *errstr,
                            size_t errstr_size)
{
    *evs = NULL;
    *n = 0;
    size_t nu = 0;
    for (size_t i = 0; i < b->n_docs; i++)
        nu += b->docs[i].brk.kind == KB_BRK_STAND ? b->docs[i].brk.n_stand : 1;
    if (nu == 0)
        return KB_OK;
    struct unit *units = calloc(nu, sizeof *units);
    struct unit **byg = calloc(nu, sizeof *byg);
    struct kb_ingress_event *out = calloc(nu, sizeof *out);
    kb_err_t err = KB_OK;
    if (!units || !byg || !out) {
        err = KB_ERR_NOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < b->n_docs; i++) {
        const struct kb_kadaster_doc *doc = &b->docs[i];
        const struct kb_brk_doc *d = &doc->brk;
        if (d->kind == KB_BRK_STAND) {
            for (size_t j = 0; j < d->n_stand; j++) {
                units[k] = (struct unit){.doc = doc, .snap = &d->stand[j], .index = j};
                unit_group(doc, units[k].group, sizeof units[k].group);
                k++;
            }
            continue;
        }
        units[k] = (struct unit){.doc = doc};
        unit_group(doc, units[k].group, sizeof units[k].group);
        k++;
    }
    qsort(units, nu, sizeof *units, unit_cmp);
    for (size_t i = 0; i < nu; i++) {
        units[i].order = i;
        byg[i] = &units[i];
    }
    /* n of m per group, n in publication order. */
    qsort(byg, nu, sizeof *byg, group_cmp);
    for (size_t i = 0; i < nu;) {
        size_t j = i;
        while (j < nu && !strcmp(byg[j]->group, byg[i]->group))
            j++;
        for (size_t q = i; q < j; q++) {
            byg[q]->n = (int)(q - i + 1);
            byg[q]->m = (int)(j - i);
        }
        i = j;
    }
    size_t max_event = b->max_event ? b->max_event : KB_INGRESS_MAX_EVENT;
    for (size_t i = 0; i < nu && !err; i++) {
        err = emit(ctx, &units[i], &out[i], errstr, errstr_size);
        if (!err && out[i].len > max_event)
            err = kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                             "%s: event %s of %zu bytes over the limit of %zu", units[i].doc->name,
                             out[i].attrs.type, out[i].len, max_event);
        if (!err)
            (*n)++;
    }
    if (err) {
        kb_kadaster_events_free(out, *n + 1);
        out = NULL;
        *n = 0;
    }
    *evs = out;
    out = NULL;
out:
    free(out);
    free(byg);
    free(units);
    return err;
}

void kb_kadaster_events_free(struct kb_ingress_event *evs, size_t n)
{
    for (size_t i = 0; evs && i < n; i++)
        free(evs[i].value);
    free(evs);
}

/* ------------------------------------------------------------------ JSON */

char *kb_kadaster_event_json(const kb_schemas_t *schemas, const struct kb_ingress_event *ev,
                             char *errstr, size_t errstr_size)
{
    json_t *data;
    int32_t id;
    if (kb_avro_event_json(schemas, ev->value, ev->len, &data, &id, errstr, errstr_size))
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(ev->attrs.type));
    json_object_set_new(o, "id", json_string(ev->attrs.id));
    json_object_set_new(o, "source", json_string(ev->attrs.source));
    json_object_set_new(o, "time", json_string(ev->attrs.time));
    json_object_set_new(o, "key", json_string(ev->key));
    json_object_set_new(o, "subject", json_string(ev->attrs.subject));
    json_object_set_new(o, "dataref", json_string(ev->attrs.dataref));
    json_object_set_new(o, "schemaId", json_integer(id));
    json_object_set_new(o, "data", data);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!line)
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    return line;
}
