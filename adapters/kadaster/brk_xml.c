/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * brk_xml.c - BRK Levering XML -> struct kb_brk_doc (see brk_xml.h).
 *
 * The reader keeps a stack of element local names and decides what a text
 * belongs to from the path relative to the root or to the snapshot it is
 * in; namespaces are checked only on the root (they carry the schema
 * generation), so the element renames between generations are a matter of
 * accepting two names (brkDatum/BRKDatum, tenNameVan/vanPersoon, ...).
 *
 * Invariants:
 *  1. No external resource is ever loaded: no XML_PARSE_DTDLOAD, no
 *     XML_PARSE_NOENT, XML_PARSE_NONET, a refusing entity loader, and any
 *     DOCTYPE or entity reference node ends the parse with an error.
 *  2. Every limit of struct kb_brk_limits is checked before the value it
 *     bounds is stored; nothing is silently truncated.
 *  3. Error texts name lines, element names and limits, never values.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strncasecmp */

#include <libxml/parser.h>
#include <libxml/xmlreader.h>

#include "brk_lookup.h"
#include "brk_xml.h"

#define NAME_MAX_LEN 64
#define HARD_DEPTH   256 /* stack size; the configured max_depth is checked below it */

void kb_brk_limits_default(struct kb_brk_limits *lim)
{
    lim->max_doc = 64u << 20;
    lim->max_depth = 64;
    lim->max_attr = 4096;
    lim->max_attrs = 64;
    lim->max_text = 4u << 20; /* geometry posLists of large parcels */
    lim->max_parts = 100000;
    lim->max_snapshots = 100000;
}

static xmlParserInputPtr refuse_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)url;
    (void)id;
    (void)ctxt;
    return NULL;
}

/* libxml2 reports some errors (e.g. encoding conversion) through its
 * generic handler, which prints input bytes to stderr: keep them out of
 * the logs; every error still fails the parse through the reader. */
static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void xml_init_once(void)
{
    xmlInitParser();
    xmlSetGenericErrorFunc(NULL, quiet);
    xmlSetExternalEntityLoader(refuse_loader);
}

void kb_brk_xml_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, xml_init_once);
}

/* What the top-level element of a snapshot is. */
enum part_kind { P_NONE, P_OBJECT, P_RECHT, P_TENAAM, P_PERSOON, P_STUKDEEL, P_OTHER };

struct frame {
    char name[NAME_MAX_LEN];  /* local name */
    char id[KB_BRK_ID_MAX];   /* id attribute ("" when none) */
    char href[KB_BRK_ID_MAX]; /* xlink:href ("" when none) */
    int nil;                  /* xsi:nil="true" */
};

struct rd {
    const struct kb_brk_limits *lim;
    struct kb_brk_doc *doc;
    xmlTextReaderPtr reader;
    struct frame st[HARD_DEPTH];
    unsigned depth; /* frames in use */
    char *text;     /* text of the innermost element */
    size_t text_len, text_cap;
    struct kb_brk_snapshot *snap; /* snapshot being read, or NULL */
    unsigned snap_depth;          /* index of the snapshot element in st */
    enum part_kind part;          /* kind of the current top-level part */
    size_t part_index;            /* its index in the model array of its kind */
    long part_hash;               /* index into snap->parts, or -1 */
    long field_hash;              /* index into snap->fields, or -1 */
    char kenmerk[KB_BRK_ID_MAX];  /* last Stand kenmerknaam */
    int err_line;                 /* first libxml2 error */
    int err_code;
    char *errstr;
    size_t errstr_size;
    kb_err_t err;
};

static kb_err_t fail(struct rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kb_err_t fail(struct rd *r, const char *fmt, ...)
{
    if (r->err)
        return r->err;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = r->reader ? xmlTextReaderGetParserLineNumber(r->reader) : 0;
    r->err = kb_err_set(KB_ERR_INVALID, r->errstr, r->errstr_size, "line %d: %s", line, msg);
    return r->err;
}

/* Copy @p s into @p dst (capacity @p cap) or fail: values are never cut. */
static void put(struct rd *r, char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return; /* a parent's end (no text of its own) never erases a value */
    if (n >= cap) {
        fail(r, "value of element %s longer than %zu bytes", r->st[r->depth - 1].name, cap - 1);
        return;
    }
    memcpy(dst, s, n + 1);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#define FNV_INIT 14695981039346656037ULL

/* Feed @p n bytes to the fingerprints of the current part and field. */
static void hash(struct rd *r, const void *p, size_t n)
{
    if (!r->snap)
        return;
    if (r->part_hash >= 0)
        r->snap->parts[r->part_hash].hash = fnv(r->snap->parts[r->part_hash].hash, p, n);
    if (r->field_hash >= 0)
        r->snap->fields[r->field_hash].hash = fnv(r->snap->fields[r->field_hash].hash, p, n);
}

/* Path test: the frames from index @p base on are exactly @p names ("*"
 * matches any one name; "a|b" matches either). */
static int name_is(const char *name, const char *pat)
{
    if (!strcmp(pat, "*"))
        return 1;
    size_t nl = strlen(name);
    for (const char *p = pat;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == nl && !memcmp(p, name, nl))
            return 1;
        if (!bar)
            return 0;
        p = bar + 1;
    }
}

static int path_is(const struct rd *r, unsigned base, const char *const *names, unsigned n)
{
    if (r->depth != base + n)
        return 0;
    for (unsigned i = 0; i < n; i++)
        if (!name_is(r->st[base + i].name, names[i]))
            return 0;
    return 1;
}

#define AT(base, ...)                                      \
    path_is(r, (base), (const char *const[]){__VA_ARGS__}, \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* Relative to the current top-level part of the snapshot. */
#define PART(...) AT(r->snap_depth + 1, __VA_ARGS__)

static void *grow(struct rd *r, void **arr, size_t *n, size_t size, size_t max)
{
    if (*n >= max) {
        fail(r, "more than %zu parts in one snapshot", max);
        return NULL;
    }
    /* Capacity doubles: it is the smallest power of two >= *n, so it is
     * full exactly when *n is one (or 0). Growing by one element copied the
     * array every time, quadratic in the parts of a snapshot (12,000
     * tenaamstellingen took a minute and a half under ASan). */
    if ((*n & (*n - 1)) == 0) {
        void *na = realloc(*arr, (*n ? 2 * *n : 1) * size);
        if (!na) {
            r->err = kb_err_set(KB_ERR_NOMEM, r->errstr, r->errstr_size, "out of memory");
            return NULL;
        }
        *arr = na;
    }
    void *e = (char *)*arr + *n * size;
    memset(e, 0, size);
    (*n)++;
    return e;
}

/* A reference element: prefer the document-local id (xlink:href="#ID.."),
 * else the business id (its text, or the tail of an old-style href). */
static void put_ref(struct rd *r, char *dst, size_t cap, const char *text)
{
    const struct frame *f = &r->st[r->depth - 1];
    if (f->href[0] == '#')
        put(r, dst, cap, f->href + 1);
    else if (text[0])
        put(r, dst, cap, text);
    else if (!strncmp(f->href, "NL.KAD.", 7)) {
        /* v20120901: "NL.KAD.<Type>.<id>", the id may itself hold dots */
        const char *dot = strchr(f->href + 7, '.');
        put(r, dst, cap, dot ? dot + 1 : f->href);
    } else
        put(r, dst, cap, f->href);
}

static void aanduiding_text(struct rd *r, unsigned base, struct kb_brk_aanduiding *a,
                            const char *text)
{
    if (AT(base, "akrKadastraleGemeenteCode|AKRKadastraleGemeenteCode", "waarde"))
        put(r, a->gemeente_code, sizeof a->gemeente_code, text);
    else if (AT(base, "kadastraleGemeente|naamKadastraleGemeente", "waarde"))
        put(r, a->gemeente, sizeof a->gemeente, text);
    else if (AT(base, "sectie"))
        put(r, a->sectie, sizeof a->sectie, text);
    else if (AT(base, "perceelnummer"))
        put(r, a->perceelnummer, sizeof a->perceelnummer, text);
    else if (AT(base, "appartementsrechtVolgnummer|appartementsindex"))
        put(r, a->appartementsindex, sizeof a->appartementsindex, text);
}

static void code_text(struct rd *r, struct kb_brk_code *c, const char *text)
{
    const char *leaf = r->st[r->depth - 1].name;
    if (!strcmp(leaf, "code"))
        put(r, c->code, sizeof c->code, text);
    else if (!strcmp(leaf, "waarde"))
        put(r, c->waarde, sizeof c->waarde, text);
}

static void identificatie_text(struct rd *r, char *dst, size_t cap, const char *text)
{
    if (PART("*", "identificatie") || PART("*", "identificatie", "lokaalId"))
        put(r, dst, cap, text);
}

/* Text (or emptiness) of an element inside a snapshot, at its end. */
static void snapshot_text(struct rd *r, const char *text)
{
    struct kb_brk_snapshot *s = r->snap;
    unsigned b = r->snap_depth + 1;
    if (r->depth == b + 1) {
        if (AT(b, "toestandsdatum"))
            put(r, s->toestandsdatum, sizeof s->toestandsdatum, text);
        return;
    }
    if (r->part_hash >= 0 && r->depth >= b + 2 &&
        (PART("*", "identificatie") || PART("*", "identificatie", "lokaalId")))
        put(r, s->parts[r->part_hash].identificatie, sizeof s->parts[0].identificatie, text);
    switch (r->part) {
    case P_OBJECT:
        identificatie_text(r, s->identificatie, sizeof s->identificatie, text);
        if (r->depth >= b + 3 && !strcmp(r->st[b + 1].name, "kadastraleAanduiding"))
            aanduiding_text(r, b + 2, &s->aanduiding, text);
        else if (PART("*", "aardCultuurBebouwd|aardCultuurOnbebouwd", "code|waarde") ||
                 PART("*", "heeftLocatie", "LocatieKadastraalObject", "cultuurBebouwd",
                      "code|waarde")) {
            /* bebouwd comes first in the document; keep the first one seen */
            if (!strcmp(r->st[r->depth - 1].name, "code") && s->aard_cultuur.code[0])
                break;
            if (!strcmp(r->st[r->depth - 1].name, "waarde") && s->aard_cultuur.waarde[0])
                break;
            code_text(r, &s->aard_cultuur, text);
        } else if (r->depth >= b + 3 && !strcmp(r->st[b + 1].name, "koopsom")) {
            unsigned k = b + 2;
            if (!name_is(r->st[k].name, "bedrag|koopjaar|indicatieMeerObjecten"))
                k++; /* the TypeKoopsom wrapper */
            if (AT(k, "bedrag")) {
                if (!r->st[r->depth - 1].nil && text[0])
                    put(r, s->koopsom_bedrag, sizeof s->koopsom_bedrag, text);
            } else if (AT(k, "bedrag", "som"))
                put(r, s->koopsom_bedrag, sizeof s->koopsom_bedrag, text);
            else if (AT(k, "bedrag", "valuta", "code"))
                put(r, s->koopsom_valuta, sizeof s->koopsom_valuta, text);
            else if (AT(k, "koopjaar"))
                put(r, s->koopjaar, sizeof s->koopjaar, text);
            else if (AT(k, "indicatieMeerObjecten"))
                s->meer_objecten = !strcmp(text, "true") ? 1 : !strcmp(text, "false") ? 0 : -1;
        } else if (PART("*", "kadastraleGrootte", "waarde"))
            put(r, s->grootte, sizeof s->grootte, text);
        break;
    case P_RECHT: {
        struct kb_brk_recht *rc = &s->rechten[r->part_index];
        identificatie_text(r, rc->identificatie, sizeof rc->identificatie, text);
        if (PART("*", "aard", "code|waarde"))
            code_text(r, &rc->aard, text);
        break;
    }
    case P_TENAAM: {
        struct kb_brk_tenaamstelling *t = &s->tenaamstellingen[r->part_index];
        identificatie_text(r, t->identificatie, sizeof t->identificatie, text);
        if (PART("*", "aandeel", "teller"))
            put(r, t->teller, sizeof t->teller, text);
        else if (PART("*", "aandeel", "noemer"))
            put(r, t->noemer, sizeof t->noemer, text);
        else if (PART("*", "van", "*"))
            put_ref(r, t->recht_ref, sizeof t->recht_ref, text);
        else if (PART("*", "tenNameVan|vanPersoon", "*"))
            put_ref(r, t->persoon_ref, sizeof t->persoon_ref, text);
        else if (PART("*", "isGebaseerdOp", "*")) {
            if (t->n_stukdeel_refs >= KB_BRK_MAX_REFS) {
                fail(r, "more than %d stukdeel references in one tenaamstelling", KB_BRK_MAX_REFS);
                break;
            }
            put_ref(r, t->stukdeel_refs[t->n_stukdeel_refs], KB_BRK_ID_MAX, text);
            t->n_stukdeel_refs++;
        }
        break;
    }
    case P_PERSOON: {
        struct kb_brk_persoon *p = &s->personen[r->part_index];
        identificatie_text(r, p->identificatie, sizeof p->identificatie, text);
        if (PART("*", "BSN|bsn") || PART("*", "betreft", "*", "bsn")) {
            if (!r->st[r->depth - 1].nil)
                put(r, p->bsn, sizeof p->bsn, text);
        } else if (PART("*", "bsnNilreason") || PART("*", "betreft", "*", "bsnNilreason"))
            put(r, p->bsn_nilreason, sizeof p->bsn_nilreason, text);
        else if (PART("*", "RSIN|rsin") || PART("*", "betreft", "*", "rsin"))
            put(r, p->rsin, sizeof p->rsin, text);
        else if (PART("*", "KVKnummer|kvkNummer") || PART("*", "betreft", "*", "kvkNummer"))
            put(r, p->kvk, sizeof p->kvk, text);
        else if (PART("*", "statutaireNaam") && !p->natuurlijk)
            put(r, p->statutaire_naam, sizeof p->statutaire_naam, text);
        else if (PART("*", "rechtsvorm", "code"))
            put(r, p->rechtsvorm, sizeof p->rechtsvorm, text);
        break;
    }
    case P_STUKDEEL: {
        struct kb_brk_stukdeel *sd = &s->stukdelen[r->part_index];
        identificatie_text(r, sd->identificatie, sizeof sd->identificatie, text);
        if (PART("*", "aard", "code|waarde"))
            code_text(r, &sd->aard, text);
        break;
    }
    default: break;
    }
}

/* A top-level element of a snapshot starts. */
static void part_start(struct rd *r, const char *name, const char *id)
{
    struct kb_brk_snapshot *s = r->snap;
    size_t max = r->lim->max_parts;
    r->part = P_OTHER;
    r->part_hash = -1;
    r->field_hash = -1;
    if (!strcmp(name, "referentie") || !strcmp(name, "toestandsdatum")) {
        r->part = P_NONE; /* differs between was and wordt by nature */
        return;
    }
    if (!strcmp(name, "Perceel") || !strcmp(name, "Appartementsrecht")) {
        if (s->soort[0]) {
            fail(r, "snapshot holds more than one kadastraal object");
            return;
        }
        r->part = P_OBJECT;
        snprintf(s->soort, sizeof s->soort, "%s", name[0] == 'P' ? "perceel" : "appartementsrecht");
        return;
    }
    struct kb_brk_part *pt = grow(r, (void **)&s->parts, &s->n_parts, sizeof *pt, max);
    if (!pt)
        return;
    snprintf(pt->kind, sizeof pt->kind, "%s", name);
    pt->hash = FNV_INIT;
    r->part_hash = (long)s->n_parts - 1;
    void *e = NULL;
    if (!strcmp(name, "ZakelijkRecht")) {
        struct kb_brk_recht *rc = e = grow(r, (void **)&s->rechten, &s->n_rechten, sizeof *rc, max);
        if (rc) {
            put(r, rc->local_id, sizeof rc->local_id, id);
            r->part = P_RECHT;
            r->part_index = s->n_rechten - 1;
        }
    } else if (!strcmp(name, "Tenaamstelling")) {
        struct kb_brk_tenaamstelling *t = e =
            grow(r, (void **)&s->tenaamstellingen, &s->n_tenaamstellingen, sizeof *t, max);
        if (t) {
            put(r, t->local_id, sizeof t->local_id, id);
            r->part = P_TENAAM;
            r->part_index = s->n_tenaamstellingen - 1;
        }
    } else if (!strcmp(name, "NatuurlijkPersoon") || !strcmp(name, "GbaPersoon") ||
               !strcmp(name, "NietNatuurlijkPersoon") || !strcmp(name, "Rechtspersoon")) {
        struct kb_brk_persoon *p = e =
            grow(r, (void **)&s->personen, &s->n_personen, sizeof *p, max);
        if (p) {
            put(r, p->local_id, sizeof p->local_id, id);
            p->natuurlijk = !strcmp(name, "NatuurlijkPersoon") || !strcmp(name, "GbaPersoon");
            r->part = P_PERSOON;
            r->part_index = s->n_personen - 1;
        }
    } else if (!strcmp(name, "Stukdeel")) {
        struct kb_brk_stukdeel *sd = e =
            grow(r, (void **)&s->stukdelen, &s->n_stukdelen, sizeof *sd, max);
        if (sd) {
            put(r, sd->local_id, sizeof sd->local_id, id);
            r->part = P_STUKDEEL;
            r->part_index = s->n_stukdelen - 1;
        }
    }
    (void)e;
}

/* A top-level part ended: parts without a business id are numbered by kind. */
static void part_end(struct rd *r)
{
    struct kb_brk_snapshot *s = r->snap;
    if (r->part_hash >= 0 && !s->parts[r->part_hash].identificatie[0]) {
        size_t nth = 0;
        for (long i = 0; i < r->part_hash; i++)
            nth += !strcmp(s->parts[i].kind, s->parts[r->part_hash].kind);
        snprintf(s->parts[r->part_hash].identificatie, sizeof s->parts[0].identificatie, "#%zu",
                 nth + 1);
    }
    r->part = P_NONE;
    r->part_hash = -1;
    r->field_hash = -1;
}

/* A child of the kadastraal object starts: fingerprint it by name (a name
 * that repeats, like ontstaanUitOZ, accumulates into one fingerprint). */
static void field_start(struct rd *r, const char *name)
{
    struct kb_brk_snapshot *s = r->snap;
    for (size_t i = 0; i < s->n_fields; i++)
        if (!strcmp(s->fields[i].kind, name)) {
            r->field_hash = (long)i;
            return;
        }
    struct kb_brk_part *f =
        grow(r, (void **)&s->fields, &s->n_fields, sizeof *f, r->lim->max_parts);
    if (!f)
        return;
    snprintf(f->kind, sizeof f->kind, "%s", name);
    f->hash = FNV_INIT;
    r->field_hash = (long)s->n_fields - 1;
}

static void snapshot_begin(struct rd *r, struct kb_brk_snapshot *s)
{
    memset(s, 0, sizeof *s);
    s->present = 1;
    s->meer_objecten = -1;
    r->snap = s;
    r->snap_depth = r->depth - 1;
    r->part = P_NONE;
    r->part_hash = r->field_hash = -1;
}

/* Element start (frame already pushed). */
static void element_start(struct rd *r)
{
    struct kb_brk_doc *d = r->doc;
    struct frame *f = &r->st[r->depth - 1];
    if (r->snap) {
        unsigned rel = r->depth - 1 - r->snap_depth;
        if (rel == 1)
            part_start(r, f->name, f->id);
        else if (rel == 2 && r->part == P_OBJECT) {
            field_start(r, f->name);
            if (!strcmp(f->name, "koopsom"))
                r->snap->have_koopsom = 1;
        }
        return;
    }
    if (d->kind == KB_BRK_MUTATIE && AT(0, "*", "was|wordt", "KadastraalObjectSnapshot")) {
        struct kb_brk_snapshot *s = !strcmp(r->st[1].name, "was") ? &d->was : &d->wordt;
        if (s->present) {
            fail(r, "second %s snapshot", r->st[1].name);
            return;
        }
        snapshot_begin(r, s);
    } else if (d->kind == KB_BRK_STAND && AT(0, "*", "stand", "KadastraalObjectSnapshot")) {
        struct kb_brk_snapshot *s =
            grow(r, (void **)&d->stand, &d->n_stand, sizeof *s, r->lim->max_snapshots);
        if (s)
            snapshot_begin(r, s);
    } else if (d->kind == KB_BRK_MUTATIE &&
               AT(0, "*", "ingeschrevenStuk",
                  "AanduidingTerInschrijvingAangebodenStuk|AanduidingKadasterstuk")) {
        snprintf(d->stuk.soort, sizeof d->stuk.soort, "%s",
                 strstr(f->name, "Kadasterstuk") ? "Kadasterstuk" : "TIAStuk");
    }
}

/* Element end, with its collected text. */
static void element_end(struct rd *r, const char *text)
{
    struct kb_brk_doc *d = r->doc;
    if (r->snap) {
        unsigned rel = r->depth - 1 - r->snap_depth;
        if (rel == 0) {
            r->snap = NULL;
            return;
        }
        snapshot_text(r, text);
        if (rel == 1)
            part_end(r);
        else if (rel == 2)
            r->field_hash = -1;
        return;
    }
    if (d->kind == KB_BRK_MUTATIE) {
        if (AT(0, "*", "brkDatum|BRKDatum"))
            put(r, d->brk_datum, sizeof d->brk_datum, text);
        else if (AT(0, "*", "volgnummerKadastraalObjectDatum")) {
            char *end = NULL;
            long v = strtol(text, &end, 10);
            if (!text[0] || *end || v < 1 || v > 1000000)
                fail(r, "volgnummerKadastraalObjectDatum is not a positive number");
            d->volgnummer = v;
        } else if (AT(0, "*", "aardStukdeel", "code|waarde"))
            code_text(r, &d->aard_stukdeel, text);
        else if (r->depth >= 4 && AT(0, "*", "ingeschrevenStuk", "*", "stuk", "*"))
            put_ref(r, d->stuk.identificatie, sizeof d->stuk.identificatie, text);
        else if (AT(0, "*", "ingeschrevenStuk", "*", "deelEnNummer", "deel"))
            put(r, d->stuk.deel, sizeof d->stuk.deel, text);
        else if (AT(0, "*", "ingeschrevenStuk", "*", "deelEnNummer", "nummer"))
            put(r, d->stuk.nummer, sizeof d->stuk.nummer, text);
        else if (AT(0, "*", "ingeschrevenStuk", "*", "deelEnNummer", "reeks", "code"))
            put(r, d->stuk.reeks, sizeof d->stuk.reeks, text);
        else if (AT(0, "*", "ingeschrevenStuk", "*", "deelEnNummer", "registercode", "code|waarde"))
            code_text(r, &d->stuk.registercode, text);
        else if (AT(0, "*", "ingeschrevenStuk", "*", "deelEnNummer", "soortRegister", "waarde"))
            put(r, d->stuk.soort_register, sizeof d->stuk.soort_register, text);
        else if (r->depth >= 5 && AT(0, "*", "kadastraalObject", "AanduidingKadastraalObject",
                                     "kadastraalObject", "*")) {
            put_ref(r, d->object_id, sizeof d->object_id, text);
            const char *n = r->st[4].name;
            snprintf(d->object_soort, sizeof d->object_soort, "%s",
                     strstr(n, "Appartementsrecht") ? "appartementsrecht" : "perceel");
        } else if (r->depth >= 5 && !strcmp(r->st[1].name, "kadastraalObject") &&
                   !strcmp(r->st[3].name, "kadastraleAanduiding"))
            aanduiding_text(r, 4, &d->aanduiding, text);
    } else {
        if (AT(0, "*", "productType"))
            put(r, d->product_type, sizeof d->product_type, text);
        else if (AT(0, "*", "productSpecificatie", "kenmerknaam"))
            put(r, r->kenmerk, sizeof r->kenmerk, text);
        else if (AT(0, "*", "productSpecificatie", "kenmerkwaarde") &&
                 !strcmp(r->kenmerk, "Peildatum"))
            put(r, d->peildatum, sizeof d->peildatum, text);
    }
}

static const char MUTATIE_NS[] = "http://www.kadaster.nl/schemas/brk-levering/product-mutatie/";
static const char STAND_NS[] = "http://www.kadaster.nl/schemas/brk-levering/product-stand/";
static const char *const GENERATIES[] = {"v20120901", "v20200721", "v20211119"};

static void root_start(struct rd *r)
{
    const char *name = r->st[0].name;
    const xmlChar *ns = xmlTextReaderConstNamespaceUri(r->reader);
    const char *uri = ns ? (const char *)ns : "";
    const char *gen = NULL;
    if (!strcmp(name, "Mutatie") && !strncmp(uri, MUTATIE_NS, sizeof MUTATIE_NS - 1)) {
        r->doc->kind = KB_BRK_MUTATIE;
        gen = uri + sizeof MUTATIE_NS - 1;
    } else if (!strcmp(name, "Stand") && !strncmp(uri, STAND_NS, sizeof STAND_NS - 1)) {
        r->doc->kind = KB_BRK_STAND;
        gen = uri + sizeof STAND_NS - 1;
    } else {
        fail(r, "root element %s is not a BRK Levering Mutatie or Stand", name);
        return;
    }
    for (size_t i = 0; i < sizeof GENERATIES / sizeof GENERATIES[0]; i++)
        if (!strcmp(gen, GENERATIES[i])) {
            snprintf(r->doc->generatie, sizeof r->doc->generatie, "%s", gen);
            return;
        }
    fail(r, "unsupported BRK Levering schema generation");
}

/* Read the attributes of the element under the cursor into @p f, checking
 * the limits, and fingerprint them. */
static void attributes(struct rd *r, struct frame *f, int do_hash)
{
    int n = xmlTextReaderAttributeCount(r->reader);
    if (n < 0 || (unsigned)n > r->lim->max_attrs) {
        fail(r, "element %s has more than %u attributes", f->name, r->lim->max_attrs);
        return;
    }
    if (n == 0)
        return;
    while (xmlTextReaderMoveToNextAttribute(r->reader) == 1) {
        const char *local = (const char *)xmlTextReaderConstLocalName(r->reader);
        const char *ns = (const char *)xmlTextReaderConstNamespaceUri(r->reader);
        const char *val = (const char *)xmlTextReaderConstValue(r->reader);
        const char *qname = (const char *)xmlTextReaderConstName(r->reader);
        if (!local || !val)
            continue;
        size_t vlen = strlen(val);
        if (vlen > r->lim->max_attr) {
            fail(r, "attribute %s on %s longer than %zu bytes", local, f->name, r->lim->max_attr);
            break;
        }
        if (qname && (!strncmp(qname, "xmlns", 5)))
            continue;
        if (do_hash) {
            /* document-local ids differ between was and wordt by nature */
            int local_id = !ns && !strcmp(local, "id");
            int local_ref = ns && !strcmp(ns, "http://www.w3.org/1999/xlink") &&
                            !strcmp(local, "href") && val[0] == '#';
            if (!local_id && !local_ref) {
                hash(r, local, strlen(local) + 1);
                hash(r, val, vlen + 1);
            }
            continue;
        }
        if (!ns && !strcmp(local, "id")) {
            if (vlen < sizeof f->id)
                memcpy(f->id, val, vlen + 1);
            continue;
        }
        if (ns && !strcmp(ns, "http://www.w3.org/1999/xlink") && !strcmp(local, "href")) {
            if (vlen < sizeof f->href)
                memcpy(f->href, val, vlen + 1);
            continue;
        }
        if (ns && !strcmp(ns, "http://www.w3.org/2001/XMLSchema-instance") && !strcmp(local, "nil"))
            f->nil = !strcmp(val, "true") || !strcmp(val, "1");
    }
    xmlTextReaderMoveToElement(r->reader);
}

static void push(struct rd *r)
{
    if (r->depth >= r->lim->max_depth || r->depth >= HARD_DEPTH) {
        fail(r, "elements nested deeper than %u", r->lim->max_depth);
        return;
    }
    const char *local = (const char *)xmlTextReaderConstLocalName(r->reader);
    if (!local || strlen(local) >= NAME_MAX_LEN) {
        fail(r, "element name longer than %d bytes", NAME_MAX_LEN - 1);
        return;
    }
    struct frame *f = &r->st[r->depth++];
    memset(f, 0, sizeof *f);
    memcpy(f->name, local, strlen(local) + 1);
    r->text_len = 0;
    if (r->text)
        r->text[0] = '\0';
    attributes(r, f, 0);
    if (r->err)
        return;
    if (r->depth == 1)
        root_start(r);
    else
        element_start(r);
    hash(r, "<", 1);
    hash(r, f->name, strlen(f->name) + 1);
    if (!r->err && r->snap)
        attributes(r, f, 1);
}

static void pop(struct rd *r)
{
    /* trim surrounding white space of the collected text */
    char empty[1] = "";
    char *t = r->text ? r->text : empty;
    size_t len = r->text_len;
    while (len &&
           (t[len - 1] == ' ' || t[len - 1] == '\n' || t[len - 1] == '\t' || t[len - 1] == '\r'))
        len--;
    t[len] = '\0';
    size_t start = strspn(t, " \n\t\r");
    if (r->depth > 1)
        element_end(r, t + start);
    hash(r, ">", 1);
    r->depth--;
    r->text_len = 0;
    if (r->text)
        r->text[0] = '\0';
}

static void text_node(struct rd *r)
{
    const char *v = (const char *)xmlTextReaderConstValue(r->reader);
    if (!v || r->depth == 0)
        return;
    size_t n = strlen(v);
    hash(r, v, n);
    if (r->text_len + n > r->lim->max_text) {
        fail(r, "text of element %s longer than %zu bytes", r->st[r->depth - 1].name,
             r->lim->max_text);
        return;
    }
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = (r->text_len + n + 1) * 2;
        char *nt = realloc(r->text, cap);
        if (!nt) {
            r->err = kb_err_set(KB_ERR_NOMEM, r->errstr, r->errstr_size, "out of memory");
            return;
        }
        r->text = nt;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, v, n + 1);
    r->text_len += n;
}

static void on_error(void *arg, xmlErrorPtr e)
{
    struct rd *r = arg;
    if (e && e->level >= XML_ERR_ERROR && !r->err_code) {
        r->err_code = e->code ? e->code : -1;
        r->err_line = e->line;
    }
}

static void snapshot_fini(struct kb_brk_snapshot *s)
{
    kb_brk_lookup_free(s->lookup);
    free(s->personen);
    free(s->rechten);
    free(s->tenaamstellingen);
    free(s->stukdelen);
    free(s->parts);
    free(s->fields);
    memset(s, 0, sizeof *s);
}

void kb_brk_doc_fini(struct kb_brk_doc *doc)
{
    if (!doc)
        return;
    snapshot_fini(&doc->was);
    snapshot_fini(&doc->wordt);
    for (size_t i = 0; i < doc->n_stand; i++)
        snapshot_fini(&doc->stand[i]);
    free(doc->stand);
    memset(doc, 0, sizeof *doc);
}

/* Raw pre-check: a DOCTYPE is refused before libxml2 sees a byte of it. */
static int has_doctype(const uint8_t *xml, size_t len)
{
    static const char needle[] = "<!DOCTYPE";
    size_t nl = sizeof needle - 1;
    for (size_t i = 0; i + nl <= len; i++)
        if (xml[i] == '<' && !memcmp(xml + i, needle, nl))
            return 1;
    return 0;
}

/* The end of the first @p needle at or after @p i (one past it), or @p len. */
static size_t past(const uint8_t *x, size_t len, size_t i, const char *needle, size_t *line)
{
    size_t nl = strlen(needle);
    for (; i + nl <= len; i++) {
        if (x[i] == '\n')
            (*line)++;
        if (x[i] == (uint8_t)needle[0] && !memcmp(x + i, needle, nl))
            return i + nl;
    }
    return len;
}

static int starts(const uint8_t *x, size_t len, size_t i, const char *s)
{
    size_t n = strlen(s);
    return i + n <= len && !memcmp(x + i, s, n);
}

/*
 * Raw pre-check, like has_doctype(): the first start tag with more than
 * @p max attributes, as its line and (printable) name, or 0. libxml2
 * (2.9.14) builds an element's attributes in time quadratic in their
 * number before the reader lets us count them: 100,000 attributes in a
 * 1.4 MB document took a minute of CPU, a 64 MB document would take hours.
 * This is no parser and interprets nothing: in a start tag, outside quoted
 * values, every '=' assigns one attribute (a name cannot hold one), so the
 * '='s bound the count; comments, CDATA sections and processing
 * instructions are stepped over. libxml2 still reads the whole document.
 * The bytes must be ASCII-compatible (see ascii_compatible()).
 */
static size_t attrs_over(const uint8_t *x, size_t len, size_t max, char *name, size_t name_size)
{
    size_t line = 1;
    for (size_t i = 0; i < len;) {
        if (x[i] != '<') {
            line += x[i++] == '\n';
            continue;
        }
        if (starts(x, len, i, "<!--")) {
            i = past(x, len, i + 4, "-->", &line);
        } else if (starts(x, len, i, "<![CDATA[")) {
            i = past(x, len, i + 9, "]]>", &line);
        } else if (starts(x, len, i, "<?")) {
            i = past(x, len, i + 2, "?>", &line);
        } else if (starts(x, len, i, "<!") || starts(x, len, i, "</")) {
            i = past(x, len, i + 2, ">", &line);
        } else {
            size_t tag_line = line, count = 0, n = 0;
            uint8_t quote = 0;
            for (i++; i < len && n + 1 < name_size && (isalnum(x[i]) || strchr("_:.-", x[i]));)
                name[n++] = (char)x[i++];
            name[n] = '\0';
            for (; i < len; i++) {
                uint8_t c = x[i];
                line += c == '\n';
                if (quote) {
                    quote = c == quote ? 0 : quote;
                } else if (c == '"' || c == '\'') {
                    quote = c;
                } else if (c == '=') {
                    if (++count > max)
                        return tag_line;
                } else if (c == '>') {
                    break;
                }
            }
            i++;
        }
    }
    return 0;
}

/* Whether the document's bytes encode '<', '=', quotes and '>' as ASCII
 * does (UTF-8, with or without its BOM, or an ASCII-based declared
 * encoding), which the raw pre-checks need: it must begin with '<' (after
 * a UTF-8 BOM and white space) followed by a byte that is not NUL, and not
 * with 4C 6F A7 94 ("<?xm" in EBCDIC, which libxml2 would detect and
 * decode as such). UTF-16, UTF-32 and EBCDIC do not; BRK Levering documents
 * are UTF-8. Sets *start to the '<'. The declared encoding is
 * declared_encoding()'s business. */
static int ascii_compatible(const uint8_t *x, size_t len, size_t *start)
{
    size_t i = len >= 3 && !memcmp(x, "\xEF\xBB\xBF", 3) ? 3 : 0;
    while (i < len && (x[i] == ' ' || x[i] == '\t' || x[i] == '\r' || x[i] == '\n'))
        i++;
    *start = i;
    if (len - i >= 4 && !memcmp(x + i, "\x4C\x6F\xA7\x94", 4))
        return 0;
    return i + 1 < len && x[i] == '<' && x[i + 1] != 0;
}

/* Encodings accepted in the XML declaration, as spelt for libxml2: those
 * in which every byte below 0x80 means what it means in ASCII, so that the
 * raw pre-checks (attrs_over(), has_doctype()) read the markup libxml2
 * will read. Everything else (EBCDIC code pages, UTF-16/32, UTF-7, ...)
 * is refused: BRK Levering is UTF-8, and with IBM037 declared in ASCII a
 * document hid 40,000 attributes from attrs_over() (no '=' byte in
 * EBCDIC) and reopened libxml2's quadratic attribute cost. */
static const char *const ascii_encodings[] = {"UTF-8",       "UTF8",        "US-ASCII",
                                              "ASCII",       "ISO-8859-1",  "ISO_8859-1",
                                              "ISO-8859-15", "ISO_8859-15", "LATIN1"};

static int xml_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * The encoding libxml2 must decode the document with, from its XML
 * declaration (the document begins at @p i with "<?xml" when it has one):
 * "UTF-8" when none is declared, the declared one when ascii_encodings[]
 * lists it, NULL otherwise (also for a declaration this cannot read, so
 * that libxml2 never switches to an encoding not checked here; the parse
 * passes XML_PARSE_IGNORE_ENC besides).
 */
static const char *declared_encoding(const uint8_t *x, size_t len, size_t i)
{
    if (!starts(x, len, i, "<?xml") || i + 5 >= len || !xml_space(x[i + 5]))
        return "UTF-8";
    size_t end = i + 5, lim = len - i > 512 ? i + 512 : len; /* a declaration is short */
    while (end + 1 < lim && !(x[end] == '?' && x[end + 1] == '>'))
        end++;
    if (end + 1 >= lim)
        return NULL;
    size_t k = i + 5;
    while (k + 8 <= end && memcmp(x + k, "encoding", 8))
        k++;
    if (k + 8 > end)
        return "UTF-8";
    for (k += 8; k < end && xml_space(x[k]); k++)
        ;
    if (k >= end || x[k++] != '=')
        return NULL;
    while (k < end && xml_space(x[k]))
        k++;
    if (k >= end || (x[k] != '"' && x[k] != '\''))
        return NULL;
    uint8_t quote = x[k++];
    size_t v = k;
    while (k < end && x[k] != quote)
        k++;
    if (k >= end)
        return NULL;
    for (size_t e = 0; e < sizeof ascii_encodings / sizeof *ascii_encodings; e++)
        if (strlen(ascii_encodings[e]) == k - v &&
            !strncasecmp((const char *)x + v, ascii_encodings[e], k - v))
            return ascii_encodings[e];
    return NULL;
}

kb_err_t kb_brk_parse(const uint8_t *xml, size_t len, const struct kb_brk_limits *lim,
                      struct kb_brk_doc *doc, char *errstr, size_t errstr_size)
{
    memset(doc, 0, sizeof *doc);
    struct kb_brk_limits deflim;
    if (!lim) {
        kb_brk_limits_default(&deflim);
        lim = &deflim;
    }
    if (len > lim->max_doc)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "document of %zu bytes over the limit of %zu", len, lim->max_doc);
    if (len > (size_t)INT32_MAX)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size, "document too large");
    size_t start;
    if (!ascii_compatible(xml, len, &start))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "line 0: not an XML document in UTF-8 (it must begin with '<')");
    const char *encoding = declared_encoding(xml, len, start);
    if (!encoding)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "line 1: declared encoding refused (accepted: UTF-8, US-ASCII, "
                          "ISO-8859-1, ISO-8859-15)");
    char tag[NAME_MAX_LEN + 1];
    size_t over = attrs_over(xml, len, lim->max_attrs, tag, sizeof tag);
    if (over)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "line %zu: element %s has more than %u attributes", over,
                          tag[0] ? tag : "?", lim->max_attrs);
    if (has_doctype(xml, len))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "line 0: DOCTYPE not allowed (DTDs and entities are refused)");
    kb_brk_xml_init();
    struct rd *r = calloc(1, sizeof *r);
    if (!r)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    r->lim = lim;
    r->doc = doc;
    r->errstr = errstr;
    r->errstr_size = errstr_size;
    r->part_hash = r->field_hash = -1;
    /* No XML_PARSE_NOENT (entities stay unexpanded), no XML_PARSE_DTDLOAD,
     * no XML_PARSE_HUGE (libxml2's own size limits stay on). The encoding
     * checked above is imposed and the declaration ignored
     * (XML_PARSE_IGNORE_ENC): libxml2 decodes exactly the bytes the raw
     * pre-checks read. */
    r->reader = xmlReaderForMemory((const char *)xml, (int)len, NULL, encoding,
                                   XML_PARSE_NONET | XML_PARSE_IGNORE_ENC);
    if (!r->reader) {
        kb_err_t err =
            kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "line 0: not an XML document");
        free(r);
        return err;
    }
    xmlTextReaderSetStructuredErrorHandler(r->reader, on_error, r);
    int ret = 0, seen_root = 0;
    while (!r->err && (ret = xmlTextReaderRead(r->reader)) == 1) {
        int type = xmlTextReaderNodeType(r->reader);
        switch (type) {
        case XML_READER_TYPE_ELEMENT: {
            if (r->depth == 0 && seen_root) {
                fail(r, "second root element");
                break;
            }
            seen_root = 1;
            int empty = xmlTextReaderIsEmptyElement(r->reader);
            push(r);
            if (!r->err && empty)
                pop(r);
            break;
        }
        case XML_READER_TYPE_END_ELEMENT:
            if (r->depth > 0)
                pop(r);
            break;
        case XML_READER_TYPE_TEXT:
        case XML_READER_TYPE_CDATA: text_node(r); break;
        case XML_READER_TYPE_DOCUMENT_TYPE:
            fail(r, "DOCTYPE not allowed (DTDs and entities are refused)");
            break;
        case XML_READER_TYPE_ENTITY_REFERENCE:
        case XML_READER_TYPE_ENTITY: fail(r, "entity reference not allowed"); break;
        default: break;
        }
    }
    if (!r->err && (ret < 0 || r->err_code)) {
        r->err =
            kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                       "line %d: not well-formed XML (libxml2 error %d)", r->err_line, r->err_code);
    }
    if (!r->err && !seen_root)
        r->err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "line 0: no root element");
    /* every snapshot indexed once, so that events look parts up in log n */
    if (!r->err && (kb_brk_lookup_build(&doc->was) || kb_brk_lookup_build(&doc->wordt)))
        r->err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    for (size_t i = 0; !r->err && i < doc->n_stand; i++)
        if (kb_brk_lookup_build(&doc->stand[i]))
            r->err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    kb_err_t err = r->err;
    xmlFreeTextReader(r->reader);
    free(r->text);
    free(r);
    if (err)
        kb_brk_doc_fini(doc);
    return err;
}
