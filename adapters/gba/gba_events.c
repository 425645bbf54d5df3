/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gba_events.c - LO3 message -> life events (see gba_events.h).
 *
 * A birth is recognised in an Lg01 the way the LO's own data says it: the
 * PL is at version 0001 (07.80.10), and the address started on the birth
 * date (08.10.30 == 01.03.10), the condition CBS publishes for newborns. A
 * new child on a parent's PL is a Gv01 pair (09, 59) whose historical 59 is
 * empty: there was no child data before.
 *
 * Speed (bench-gba): the values are built with the compiled writer of
 * gba_avro.h in a per-message arena, not with avro-c generic values; the
 * digests and the keyed HMAC come from a kb_gba_cache made once; the
 * pseudonym of one identifier is computed once per message. The check
 * notes which values are plain Teletex (kb_lo3_check_marking), so most
 * fields are set as the message's bytes without a second look, and a
 * category's fields are found in one walk over it (find_els). The bytes,
 * ids and pseudonyms are the same as with kb_schema_encode(),
 * kb_sha256_hex() and kb_event_pseudonym() (test_gba_avro, test_gba_events;
 * bench-gba-diff compares two builds case by case).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gba_avro.h"
#include "gba_events.h"
#include "hmac.h" /* bus/src: the prepared HMAC states the router uses too */
#include "ketenbus/check.h"
#include "lo3_check.h"
#include "t61.h"

#define EL_MAX (999 * 3 + 1) /* longest element (999 Teletex bytes) as UTF-8 */
#define MAX_PLANS 64         /* schemas (versions) one cache compiles */
#define MAX_TYPES     32         /* event types whose latest schema it remembers */
#define HMAC_BLOCK 64        /* SHA-256 block size */
#define DERIVE_INLINE 4         /* value offsets of one message before a malloc */
#define OUT_INLINE    4096      /* their values' bytes before a malloc */
#define PLAIN_MAX     256       /* elements whose plainness the check notes */

/* ---- the fields written: resolved once per plan (kb_avw_plan_bind) ----
 * X(id, path, parent): parent is the array whose items hold the path, or
 * -1 for the event record; a parent comes before its items. */
#define GBA_PATHS(X)                                                           \
    X(P_HERKOMST_BERICHT_TYPE, "herkomst.berichtType", -1)                     \
    X(P_HERKOMST_RANDOM_KEY, "herkomst.randomKey", -1)                         \
    X(P_HERKOMST_A_NUMMER_PERSOONSLIJST, "herkomst.aNummerPersoonslijst", -1)  \
    X(P_HERKOMST_DATUM_TIJD, "herkomst.datumTijd", -1)                         \
    X(P_HERKOMST_ONTVANGEN, "herkomst.ontvangen", -1)                          \
    X(P_HERKOMST_SHA256, "herkomst.sha256", -1)                                \
    X(P_HERKOMST_BRON_BERICHT_ID, "herkomst.bronBerichtId", -1)                \
    X(P_HERKOMST_RUBRIEKEN, "herkomst.rubrieken", -1)                          \
    X(P_HERKOMST_WAARSCHUWINGEN, "herkomst.waarschuwingen", -1)                \
    X(P_CATEGORIEEN, "categorieen", -1)                                        \
    X(P_PERSOON_A_NUMMER, "persoon.aNummer", -1)                               \
    X(P_CORRECTIE, "correctie", -1)                                            \
    X(P_KIND_A_NUMMER, "kind.aNummer", -1)                                     \
    X(P_KIND_BSN, "kind.bsn", -1)                                              \
    X(P_KIND_VOORNAMEN, "kind.voornamen", -1)                                  \
    X(P_KIND_VOORVOEGSEL, "kind.voorvoegsel", -1)                              \
    X(P_KIND_GESLACHTSNAAM, "kind.geslachtsnaam", -1)                          \
    X(P_KIND_GEBOORTEDATUM, "kind.geboortedatum", -1)                          \
    X(P_KIND_GEBOORTEPLAATS, "kind.geboorteplaats", -1)                        \
    X(P_KIND_GEBOORTELAND, "kind.geboorteland", -1)                            \
    X(P_KIND_GESLACHT, "kind.geslacht", -1)                                    \
    X(P_AKTE, "akte", -1)                                                      \
    X(P_AKTE_REGISTERGEMEENTE, "akte.registergemeente", -1)                    \
    X(P_AKTE_AKTENUMMER, "akte.aktenummer", -1)                                \
    X(P_OUDERS, "ouders", -1)                                                  \
    X(P_INSCHRIJVING_GEMEENTE, "inschrijving.gemeente", -1)                    \
    X(P_INSCHRIJVING_DATUM_INSCHRIJVING, "inschrijving.datumInschrijving", -1) \
    X(P_NIEUW_BSN, "nieuwBsn", -1)                                             \
    X(P_OUD_BSN, "oudBsn", -1)                                                 \
    X(P_DATUM_GELDIGHEID, "datumGeldigheid", -1)                               \
    X(P_NIEUW_ANUMMER, "nieuwANummer", -1)                                     \
    X(P_NIEUW_VOORNAMEN, "nieuw.voornamen", -1)                                \
    X(P_NIEUW_ADELLIJKE_TITEL, "nieuw.adellijkeTitel", -1)                     \
    X(P_NIEUW_VOORVOEGSEL, "nieuw.voorvoegsel", -1)                            \
    X(P_NIEUW_GESLACHTSNAAM, "nieuw.geslachtsnaam", -1)                        \
    X(P_OUD_VOORNAMEN, "oud.voornamen", -1)                                    \
    X(P_OUD_ADELLIJKE_TITEL, "oud.adellijkeTitel", -1)                         \
    X(P_OUD_VOORVOEGSEL, "oud.voorvoegsel", -1)                                \
    X(P_OUD_GESLACHTSNAAM, "oud.geslachtsnaam", -1)                            \
    X(P_PARTNER_A_NUMMER, "partner.aNummer", -1)                               \
    X(P_PARTNER_BSN, "partner.bsn", -1)                                        \
    X(P_PARTNER_VOORNAMEN, "partner.voornamen", -1)                            \
    X(P_PARTNER_VOORVOEGSEL, "partner.voorvoegsel", -1)                        \
    X(P_PARTNER_GESLACHTSNAAM, "partner.geslachtsnaam", -1)                    \
    X(P_PARTNER_GEBOORTEDATUM, "partner.geboortedatum", -1)                    \
    X(P_DATUM_SLUITING, "datumSluiting", -1)                                   \
    X(P_PLAATS_SLUITING, "plaatsSluiting", -1)                                 \
    X(P_LAND_SLUITING, "landSluiting", -1)                                     \
    X(P_DATUM_ONTBINDING, "datumOntbinding", -1)                               \
    X(P_PLAATS_ONTBINDING, "plaatsOntbinding", -1)                             \
    X(P_LAND_ONTBINDING, "landOntbinding", -1)                                 \
    X(P_REDEN_ONTBINDING, "redenOntbinding", -1)                               \
    X(P_OVERLIJDEN_DATUM, "overlijden.datum", -1)                              \
    X(P_OVERLIJDEN_PLAATS, "overlijden.plaats", -1)                            \
    X(P_OVERLIJDEN_LAND, "overlijden.land", -1)                                \
    X(P_DATUM_OPSCHORTING, "datumOpschorting", -1)                             \
    X(P_REDEN_OPSCHORTING, "redenOpschorting", -1)                             \
    X(P_SOORT, "soort", -1)                                                    \
    X(P_GEMEENTE_VAN, "gemeenteVan", -1)                                       \
    X(P_GEMEENTE_NAAR, "gemeenteNaar", -1)                                     \
    X(P_DATUM_AANVANG, "datumAanvang", -1)                                     \
    X(P_LAND_VERTREK, "landVertrek", -1)                                       \
    X(P_LAND_VANWAAR_INGESCHREVEN, "landVanwaarIngeschreven", -1)              \
    X(P_ADRES_FUNCTIE, "adres.functie", -1)                                    \
    X(P_ADRES_STRAATNAAM, "adres.straatnaam", -1)                              \
    X(P_ADRES_HUISNUMMER, "adres.huisnummer", -1)                              \
    X(P_ADRES_HUISLETTER, "adres.huisletter", -1)                              \
    X(P_ADRES_HUISNUMMERTOEVOEGING, "adres.huisnummertoevoeging", -1)          \
    X(P_ADRES_POSTCODE, "adres.postcode", -1)                                  \
    X(P_ADRES_WOONPLAATS, "adres.woonplaats", -1)                              \
    X(P_ADRES_NUMMERAANDUIDING, "adres.nummeraanduiding", -1)                  \
    X(P_OUDER_A_NUMMER, "ouder.aNummer", -1)                                   \
    X(P_VOLGEND_ANUMMER, "volgendANummer", -1)                                 \
    X(P_RUBRIEKEN_ITEM, "", P_HERKOMST_RUBRIEKEN)                              \
    X(P_W_RUBRIEK, "rubriek", P_HERKOMST_WAARSCHUWINGEN)                       \
    X(P_W_REGEL, "regel", P_HERKOMST_WAARSCHUWINGEN)                           \
    X(P_W_OFFSET, "offset", P_HERKOMST_WAARSCHUWINGEN)                         \
    X(P_CATEGORIEEN_ITEM, "", P_CATEGORIEEN)                                   \
    X(P_O_OUDER_NUMMER, "ouderNummer", P_OUDERS)                               \
    X(P_O_DATUM_FAM, "datumFamilierechtelijkeBetrekking", P_OUDERS)            \
    X(P_O_PERSOON_A_NUMMER, "persoon.aNummer", P_OUDERS)                       \
    X(P_O_PERSOON_BSN, "persoon.bsn", P_OUDERS)                                \
    X(P_O_PERSOON_VOORNAMEN, "persoon.voornamen", P_OUDERS)                    \
    X(P_O_PERSOON_VOORVOEGSEL, "persoon.voorvoegsel", P_OUDERS)                \
    X(P_O_PERSOON_GESLACHTSNAAM, "persoon.geslachtsnaam", P_OUDERS)            \
    X(P_O_PERSOON_GEBOORTEDATUM, "persoon.geboortedatum", P_OUDERS)            \
    X(P_O_PERSOON_GEBOORTEPLAATS, "persoon.geboorteplaats", P_OUDERS)          \
    X(P_O_PERSOON_GEBOORTELAND, "persoon.geboorteland", P_OUDERS)              \
    X(P_O_PERSOON_GESLACHT, "persoon.geslacht", P_OUDERS)

enum gba_path {
#define X(id, path, parent) id,
    GBA_PATHS(X)
#undef X
        N_PATHS
};

static const char *const PATH_TEXT[N_PATHS] = {
#define X(id, path, parent) path,
    GBA_PATHS(X)
#undef X
};

static const int PATH_PARENT[N_PATHS] = {
#define X(id, path, parent) parent,
    GBA_PATHS(X)
#undef X
};

/* The handle of field @p id in the plan of @p v (NULL: the schema lacks it). */
#define H(v, id) ((v)->bound ? (v)->bound[id] : NULL)

/* ---- the cache: compiled writers, fetched digests, the keyed HMAC ---- */

struct kb_gba_cache {
    pthread_mutex_t mu;          /* guards everything below */
    struct {
        const struct kb_schema *schema; /* key: the set's schema object */
        kb_avw_plan_t *plan;            /* its compiled writer (owned) */
    } plans[MAX_PLANS];
    size_t n_plans;
    struct {
        const kb_schemas_t *set;        /* key: the set asked ... */
        const char *type;               /* ... for this type (a literal of this file) */
        size_t count;                   /* the set's size then: it only grows, so
                                         * the same size is the same answer */
        const struct kb_schema *schema; /* kb_schemas_by_type() said this */
        const kb_avw_plan_t *plan;      /* and this is its writer (in plans) */
    } types[MAX_TYPES];
    size_t n_types;
    struct kb__hmac hmac;        /* HMAC-SHA-256 with the key absorbed (hmac.h) */
    uint8_t key[HMAC_BLOCK * 2]; /* the key it was made with (copy, to
                                  * notice a ctx with another key) */
    size_t key_len;              /* 0: hmac not made yet */
};

kb_gba_cache_t *kb_gba_cache_new(void)
{
    kb_gba_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void kb_gba_cache_destroy(kb_gba_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_plans; i++)
        kb_avw_plan_destroy(c->plans[i].plan);
    kb__hmac_wipe(&c->hmac);
    OPENSSL_cleanse(c->key, sizeof c->key);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The compiled writer of @p schema, made on first use. NULL with errstr. */
static const kb_avw_plan_t *cache_plan(kb_gba_cache_t *c, const struct kb_schema *schema,
                                       char *errstr, size_t errstr_size)
{
    const kb_avw_plan_t *plan = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_plans && !plan; i++)
        if (c->plans[i].schema == schema)
            plan = c->plans[i].plan;
    if (!plan) {
        kb_avw_plan_t *p = kb_avw_plan_new(schema, errstr, errstr_size);
        if (p && kb_avw_plan_bind(p, PATH_TEXT, PATH_PARENT, N_PATHS)) {
            kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory compiling %s",
                       schema->type);
            kb_avw_plan_destroy(p);
            p = NULL;
        }
        if (p && c->n_plans == MAX_PLANS) {
            /* a registry publishing this many versions: start over */
            for (size_t i = 0; i < c->n_plans; i++)
                kb_avw_plan_destroy(c->plans[i].plan);
            c->n_plans = 0;
            c->n_types = 0;
        }
        if (p) {
            c->plans[c->n_plans].schema = schema;
            c->plans[c->n_plans++].plan = p;
        }
        plan = p;
    }
    pthread_mutex_unlock(&c->mu);
    return plan;
}

/* kb_event_pseudonym(): hex of the first 128 bits of
 * HMAC-SHA-256(key, domain ":" id), with the key's pads absorbed once per
 * key (a key longer than the copy kept is prepared anew each time). @p dl
 * and @p il are strlen(domain) and strlen(id): emit() has them. */
static kb_err_t cache_pseudonym(kb_gba_cache_t *c, const uint8_t *key, size_t key_len,
                                const char *domain, size_t dl, const char *id, size_t il,
                                char out[KB_PSEUDONYM_LEN + 1])
{
    if (!key || key_len < 16)
        return KB_ERR_INVALID;
    char msg[96];
    if (dl + 1 + il > sizeof msg)
        return kb_event_pseudonym(key, key_len, domain, id, out);
    memcpy(msg, domain, dl);
    msg[dl] = ':';
    memcpy(msg + dl + 1, id, il);
    pthread_mutex_lock(&c->mu);
    if (c->key_len != key_len || key_len > sizeof c->key || memcmp(c->key, key, key_len)) {
        kb__hmac_init(&c->hmac, key, key_len);
        c->key_len = 0;
        if (key_len <= sizeof c->key) {
            memcpy(c->key, key, key_len);
            c->key_len = key_len;
        }
    }
    kb__hmac_hex(&c->hmac, msg, dl + 1 + il, NULL, 0, out, KB_PSEUDONYM_LEN);
    pthread_mutex_unlock(&c->mu);
    return KB_OK;
}

/* What every derivation of one message shares. */
struct derive { /* kb_gba_events() sets every field: add one there too */
    const struct kb_gba_ctx *ctx;
    kb_gba_cache_t *cache;      /* ctx->cache, or one for this call */
    struct kb_avw_arena *arena; /* the values of this message */
    const struct kb_lo3_message *msg;
    const char *sha; /* hex SHA-256 of the raw bytes */
    int64_t received_ms;
    char time[40];                          /* received_ms as ce_time */
    const char *dataref;                    /* never NULL ("" for none) */
    size_t source_len, dataref_len;         /* strlen of ctx->source and dataref */
    const struct kb_lo3_findings *findings; /* warnings travel on every event */
    int ids_clean;                          /* no A-nummer finding (put_persoon) */
    const uint8_t *plain;                   /* kb_lo3_check_marking()'s marks ... */
    size_t n_plain;                         /* ... of the first n_plain elements */
    struct kb_ingress_event *evs;           /* the events so far (malloc'ed: they are
                                             * handed over as they are), NULL at first */
    size_t n, cap;                          /* events, and room for them in evs */
    size_t *value_at;                       /* where each event's value starts in out: at_inline
                                             * or malloc'ed (at_cap > DERIVE_INLINE) */
    size_t at_cap;
    struct kb_avw_buf out; /* every value, one after the other */
    char *errstr;
    size_t errstr_size;
    const struct kb_lo3_header_field *hdr_anummer, *hdr_datumtijd; /* looked up once */
    char bron[7 + 64 + 1];                   /* "sha256:" + sha, herkomst.bronBerichtId */
    char last_domain[16], last_id[64];       /* the last pseudonym computed ... */
    size_t last_domain_len, last_id_len;     /* ... (their strlen) ... */
    char last_subject[KB_PSEUDONYM_LEN + 1]; /* ... and its value ("": none yet) */
};

/* ---- reading elements ---- */

/* kb_lo3_element() inline: every field an event sets looks one up, and
 * the call cost more than the short scan. */
static inline const struct kb_lo3_element *find_el(const struct kb_lo3_message *msg, size_t cat,
                                                   uint16_t nummer)
{
    if (cat >= msg->n_categories)
        return NULL;
    const struct kb_lo3_category *c = &msg->categories[cat];
    const struct kb_lo3_element *e = msg->elements + c->first, *end = e + c->count;
    for (; e < end; e++)
        if (e->nummer == nummer)
            return e;
    return NULL;
}

/* Elements @p nummers[0..n) (ascending) of category occurrence @p cat into
 * @p found, as find_el() per number would answer: one walk over a
 * category whose elements ascend (the rule), find_el() per number for any
 * other (the first occurrence may then come later). */
static void find_els(const struct kb_lo3_message *msg, size_t cat, const uint16_t *nummers,
                     size_t n, const struct kb_lo3_element **found)
{
    const struct kb_lo3_category *c = &msg->categories[cat];
    const struct kb_lo3_element *e = msg->elements + c->first, *end = e + c->count;
    size_t j = 0;
    for (uint16_t prev = 0; e < end; prev = e->nummer, e++) {
        if (e->nummer < prev) {
            for (j = 0; j < n; j++)
                found[j] = find_el(msg, cat, nummers[j]);
            return;
        }
        while (j < n && nummers[j] < e->nummer)
            found[j++] = NULL;
        if (j < n && nummers[j] == e->nummer)
            found[j++] = e;
    }
    while (j < n)
        found[j++] = NULL;
}

/* Element @p e (of category occurrence @p cat, NULL: absent) as UTF-8, or
 * NULL when absent or empty (*out_len its length): the message's own bytes
 * when Teletex and UTF-8 write them alike (kb_t61_plain), else converted
 * into @p out. Sets *err on an unmappable Teletex byte. */
static const char *el_of(const struct derive *d, size_t cat, const struct kb_lo3_element *e,
                         char *out, size_t *out_len, kb_err_t *err)
{
    const struct kb_lo3_message *msg = d->msg;
    if (!e || e->len == 0)
        return NULL;
    /* plain as the check found it (most values), else tested in words
     * (values of 8 bytes and more inside the value, shorter ones where the
     * buffer goes on), else byte by byte */
    size_t at = (size_t)(e - msg->elements);
    if ((at < d->n_plain && d->plain[at]) ||
        (e->len >= 8 ? kb_t61_plain_from8(e->value, e->len)
                     : kb_lo3_readable8(msg, e) && kb_t61_plain_upto8(e->value, e->len)) ||
        kb_t61_plain(e->value, e->len)) {
        *out_len = e->len;
        return (const char *)e->value;
    }
    size_t bad = 0;
    kb_err_t cerr = kb_t61_to_utf8(e->value, e->len, out, EL_MAX, out_len, &bad);
    if (cerr) {
        if (!*err)
            *err = kb_err_set(KB_ERR_INVALID, d->errstr, d->errstr_size,
                              "offset %zu: element %02u.%04u has a byte without a Teletex "
                              "mapping",
                              e->offset + 7 + bad, msg->categories[cat].nummer, e->nummer);
        return NULL;
    }
    return out;
}

/* Element @p nummer of category occurrence @p cat as UTF-8 (el_of()). */
static const char *el(const struct derive *d, size_t cat, uint16_t nummer, char *out,
                      size_t *out_len, kb_err_t *err)
{
    return el_of(d, cat, find_el(d->msg, cat, nummer), out, out_len, err);
}

/* Index of the first occurrence of category @p nummer, or -1. */
static long cat_find(const struct kb_lo3_message *msg, unsigned nummer)
{
    for (size_t i = 0; i < msg->n_categories; i++)
        if (msg->categories[i].nummer == nummer)
            return (long)i;
    return -1;
}

/* put_e() for any element: converted, copied or null. */
static __attribute__((noinline)) kb_err_t put_e_any(struct kb_avw_value *v, enum gba_path path,
                                                    const struct derive *d, size_t cat,
                                                    const struct kb_lo3_element *e, kb_err_t *err)
{
    char buf[EL_MAX];
    size_t len = 0;
    const char *s = el_of(d, cat, e, buf, &len, err);
    if (*err)
        return *err;
    const kb_avw_path_t *h = H(v, path);
    /* the message's bytes outlive the encoding (kb_gba_events): no copy */
    kb_err_t serr = !s         ? kb_avw_put_null(v, h)
                    : s == buf ? kb_avw_put_stringn(v, h, s, len)
                               : kb_avw_put_stringn_ref(v, h, s, len);
    if (serr)
        *err =
            kb_err_set(serr, d->errstr, d->errstr_size, "schema has no field %s", PATH_TEXT[path]);
    return *err;
}

/* Set field @p path to element @p e of category @p cat (null when absent).
 * An absent value and one the check found plain (most) are set right
 * here; anything else goes through put_e_any(). */
static inline kb_err_t put_e(struct kb_avw_value *v, enum gba_path path, const struct derive *d,
                             size_t cat, const struct kb_lo3_element *e, kb_err_t *err)
{
    if (*err)
        return *err;
    size_t at = e ? (size_t)(e - d->msg->elements) : SIZE_MAX;
    kb_err_t serr;
    if (!e || !e->len)
        serr = kb_avw_put_null(v, H(v, path));
    else if (at < d->n_plain && d->plain[at])
        serr = kb_avw_put_stringn_ref(v, H(v, path), (const char *)e->value, e->len);
    else
        return put_e_any(v, path, d, cat, e, err);
    if (serr)
        *err =
            kb_err_set(serr, d->errstr, d->errstr_size, "schema has no field %s", PATH_TEXT[path]);
    return *err;
}

/* Set field @p path to element @p nummer of category @p cat (null when absent). */
static kb_err_t put(struct kb_avw_value *v, enum gba_path path, const struct derive *d, size_t cat,
                    uint16_t nummer, kb_err_t *err)
{
    return put_e(v, path, d, cat, find_el(d->msg, cat, nummer), err);
}

/* The person fields (groups 01-04) of a category 01/02/03/09 occurrence, at
 * the paths of @p paths (PERSOON_KIND, PERSOON_PERSOON), with the identifier
 * rules checked. */
static const uint16_t persoon_nummers[9] = {110, 120, 210, 230, 240, 310, 320, 330, 410};
static const enum gba_path PERSOON_KIND[9] = {
    P_KIND_A_NUMMER,       P_KIND_BSN,           P_KIND_VOORNAMEN,
    P_KIND_VOORVOEGSEL,    P_KIND_GESLACHTSNAAM, P_KIND_GEBOORTEDATUM,
    P_KIND_GEBOORTEPLAATS, P_KIND_GEBOORTELAND,  P_KIND_GESLACHT};
static const enum gba_path PERSOON_PERSOON[9] = {
    P_O_PERSOON_A_NUMMER,       P_O_PERSOON_BSN,           P_O_PERSOON_VOORNAMEN,
    P_O_PERSOON_VOORVOEGSEL,    P_O_PERSOON_GESLACHTSNAAM, P_O_PERSOON_GEBOORTEDATUM,
    P_O_PERSOON_GEBOORTEPLAATS, P_O_PERSOON_GEBOORTELAND,  P_O_PERSOON_GESLACHT};

static kb_err_t put_persoon(struct kb_avw_value *v, const enum gba_path paths[9],
                            const struct derive *d, size_t cat)
{
    const struct kb_lo3_message *msg = d->msg;
    int clean = d->ids_clean;
    char *errstr = d->errstr;
    size_t errstr_size = d->errstr_size;
    kb_err_t err = KB_OK;
    unsigned catnr = msg->categories[cat].nummer;
    /* @p clean: kb_lo3_check() found no A-nummer in the message wrong, and
     * as it rejected nothing, every BSN passes the 11-proef and every date
     * is a GBA date (its findings for exactly these tests reject or warn):
     * asking again would give the same answers */
    if (!clean) {
        const struct kb_lo3_element *bsn = find_el(msg, cat, 120);
        if (bsn && bsn->len && !kb_check_bsn((const char *)bsn->value, bsn->len))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "offset %zu: %02u.01.20 is not a valid BSN (11-proef)", bsn->offset,
                              catnr);
        const struct kb_lo3_element *gd = find_el(msg, cat, 310);
        if (gd && gd->len && !kb_check_gba_date((const char *)gd->value, gd->len))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "offset %zu: %02u.03.10 is not a GBA date", gd->offset, catnr);
    }
    const struct kb_lo3_element *found[9];
    find_els(msg, cat, persoon_nummers, 9, found); /* one walk, not nine */
    for (size_t i = 0; i < 9 && !err; i++) {
        if (!clean && persoon_nummers[i] == 110) {
            const struct kb_lo3_element *e = found[i];
            if (e && e->len && !kb_check_anummer((const char *)e->value, e->len)) {
                /* An invalid A-nummer is a warning (herkomst.waarschuwingen),
                 * not a reason to lose the event; these schemas check the
                 * field, so it is left null rather than published wrong. */
                continue;
            }
        }
        put_e(v, paths[i], d, cat, found[i], &err);
    }
    return err;
}

static kb_err_t put_akte(struct kb_avw_value *v, const struct derive *d, size_t cat)
{
    kb_err_t err = KB_OK;
    char *errstr = d->errstr;
    size_t errstr_size = d->errstr_size;
    char g[EL_MAX], a[EL_MAX];
    size_t gl = 0, al = 0;
    const char *gem = el(d, cat, 8110, g, &gl, &err);
    const char *akte = el(d, cat, 8120, a, &al, &err);
    if (err)
        return err;
    if (gem && akte) {
        if (kb_avw_put_stringn(v, H(v, P_AKTE_REGISTERGEMEENTE), gem, gl) ||
            kb_avw_put_stringn(v, H(v, P_AKTE_AKTENUMMER), akte, al))
            return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "schema lacks akte fields");
    } else {
        kb_avw_put_null(v, H(v, P_AKTE));
    }
    return KB_OK;
}

/* Rubrieken "CC.GG.EE" that triggered one event, in element order, unique.
 * Kept as CC * 10000 + GGEE, whose numeric order is the string order (all
 * parts are two digits), and formatted only when written. */
struct rubrieken {
    uint32_t *items; /* items_inline, or malloc'ed beyond it */
    size_t n, cap;
    uint32_t items_inline[64]; /* enough for most pairs: no malloc */
};

static void rub_init(struct rubrieken *r)
{
    r->items = r->items_inline;
    r->n = 0;
    r->cap = sizeof r->items_inline / sizeof r->items_inline[0];
}

static void rub_fini(struct rubrieken *r)
{
    if (r->items != r->items_inline)
        free(r->items);
    rub_init(r);
}

/* Room for @p need items in @p r. */
static kb_err_t rub_reserve(struct rubrieken *r, size_t need)
{
    if (need <= r->cap)
        return KB_OK;
    size_t nc = r->cap * 2;
    while (nc < need)
        nc *= 2;
    uint32_t *n = malloc(nc * sizeof *r->items);
    if (!n)
        return KB_ERR_NOMEM;
    memcpy(n, r->items, r->n * sizeof *r->items);
    if (r->items != r->items_inline)
        free(r->items);
    r->items = n;
    r->cap = nc;
    return KB_OK;
}

static kb_err_t rub_add(struct rubrieken *r, unsigned cat, uint16_t nummer)
{
    uint32_t k = (cat % 100u) * 10000u + nummer % 10000u;
    size_t i = r->n;
    /* elements mostly come in ascending order: search from the end */
    while (i > 0 && r->items[i - 1] > k)
        i--;
    if (i > 0 && r->items[i - 1] == k)
        return KB_OK;
    if (rub_reserve(r, r->n + 1))
        return KB_ERR_NOMEM;
    if (i < r->n)
        memmove(r->items + i + 1, r->items + i, (r->n - i) * sizeof *r->items);
    r->items[i] = k;
    r->n++;
    return KB_OK;
}

/* Two decimal digits per value 0-99: "00" "01" ... "99". */
static const char DEC_PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Rubriek @p k of struct rubrieken as "CC.GG.EE" (8 bytes, no NUL). */
static void rub_str(uint32_t k, char s[8])
{
    unsigned cat = k / 10000u % 100u, ggee = k % 10000u;
    memcpy(s, DEC_PAIRS + 2 * cat, 2);
    s[2] = '.';
    memcpy(s + 3, DEC_PAIRS + 2 * (ggee / 100u), 2);
    s[5] = '.';
    memcpy(s + 6, DEC_PAIRS + 2 * (ggee % 100u), 2);
}


/* Every element of category occurrence @p cat, numbered as category @p as:
 * the set rub_add() per element would leave. A category in ascending order
 * (the rule; its historical twin then repeats the numbers already kept) is
 * merged with the kept ones in one pass; any other goes element by
 * element. */
static kb_err_t rub_add_cat(struct rubrieken *r, const struct kb_lo3_message *msg, size_t cat,
                            unsigned as)
{
    const struct kb_lo3_category *c = &msg->categories[cat];
    const struct kb_lo3_element *e = msg->elements + c->first;
    size_t m = c->count;
    uint32_t base = (as % 100u) * 10000u;
    /* the category's keys, ascending and unique, or element by element */
    uint32_t keys[256];
    size_t nk = 0;
    int ascending = m <= 256;
    for (size_t i = 0; i < m && ascending; i++) {
        uint32_t k = base + e[i].nummer % 10000u;
        if (!nk || keys[nk - 1] < k)
            keys[nk++] = k;
        else
            ascending = keys[nk - 1] == k;
    }
    if (!ascending) {
        kb_err_t err = KB_OK;
        for (size_t i = 0; i < m && !err; i++)
            err = rub_add(r, as, e[i].nummer);
        return err;
    }
    if (rub_reserve(r, r->n + nk))
        return KB_ERR_NOMEM;
    /* merge from the back, in place: the kept items move up by at most nk */
    if (!r->n) {
        memcpy(r->items, keys, nk * sizeof *keys); /* the first category of a pair */
        r->n = nk;
        return KB_OK;
    }
    size_t a = r->n, b = nk, dups = 0;
    /* how many keys are kept already: the merged size is n + nk - dups */
    for (size_t i = 0, j = 0; i < a && j < b;) {
        if (r->items[i] < keys[j])
            i++;
        else if (r->items[i] > keys[j])
            j++;
        else
            dups++, i++, j++;
    }
    size_t out = a + b - dups;
    while (b > 0) {
        uint32_t k = keys[b - 1];
        if (a > 0 && r->items[a - 1] > k) {
            r->items[--out] = r->items[--a];
        } else {
            if (a > 0 && r->items[a - 1] == k)
                a--;
            r->items[--out] = k;
            b--;
        }
    }
    r->n += nk - dups;
    return KB_OK;
}


static kb_err_t put_herkomst(struct kb_avw_value *v, const struct derive *d)
{
    /* every string here outlives the encoding (the message, its parse,
     * the derive of this call): the values keep pointers, not copies */
    const struct kb_lo3_message *msg = d->msg;
    const struct kb_lo3_header_field *h;
    kb_err_t err =
        kb_avw_put_stringn_ref(v, H(v, P_HERKOMST_BERICHT_TYPE), msg->type, strlen(msg->type));
    if (!err)
        err = kb_avw_put_stringn_ref(v, H(v, P_HERKOMST_RANDOM_KEY), msg->random_key,
                                     strlen(msg->random_key));
    /* header fields are digits (F_N): as strings they are exactly len bytes */
    h = d->hdr_anummer;
    if (!err && h && h->len < 80)
        err = kb_avw_put_stringn_ref(v, H(v, P_HERKOMST_A_NUMMER_PERSOONSLIJST),
                                     (const char *)h->value, h->len);
    h = d->hdr_datumtijd;
    if (!err && h && h->len < 80)
        err =
            kb_avw_put_stringn_ref(v, H(v, P_HERKOMST_DATUM_TIJD), (const char *)h->value, h->len);
    if (!err)
        err = kb_avw_put_long(v, H(v, P_HERKOMST_ONTVANGEN), d->received_ms);
    if (!err)
        err = kb_avw_put_stringn_ref(v, H(v, P_HERKOMST_SHA256), d->sha, 64);
    if (!err)
        err = kb_avw_put_stringn_ref(v, H(v, P_HERKOMST_BRON_BERICHT_ID), d->bron, 7 + 64);
    return err;
}

/* Append string @p s to the array @p path (of strings: @p item_path names
 * the item, for a schema whose items are no plain strings). KB_ERR_NOTFOUND
 * when the schema has no such array (then nothing is appended). */
static kb_err_t append_string(struct kb_avw_value *v, enum gba_path path, enum gba_path item_path,
                              const char *s, size_t len)
{
    kb_err_t err = kb_avw_append_stringn(v, H(v, path), s, len);
    if (err != KB_ERR_SCHEMA)
        return err == KB_OK || err == KB_ERR_NOTFOUND ? err : KB_ERR_SCHEMA;
    struct kb_avw_value item;
    err = kb_avw_put_append(v, H(v, path), &item);
    if (err)
        return err == KB_ERR_NOTFOUND ? err : KB_ERR_SCHEMA;
    return kb_avw_put_stringn(&item, H(&item, item_path), s, len) ? KB_ERR_SCHEMA : KB_OK;
}

/* Provenance of one event: the fixed part, the triggering rubrieken and the
 * message's warnings. */
static kb_err_t put_provenance(const struct derive *d, struct kb_avw_value *v,
                               const struct rubrieken *rub)
{
    kb_err_t err = put_herkomst(v, d);
    /* an array the schema does not have is left out, as before; an array
     * of plain strings takes the rubrieken 64 at a time */
    char rs[64][8];
    for (size_t i = 0; !err && rub && i < rub->n;) {
        size_t k = 0;
        for (; k < 64 && i + k < rub->n; k++)
            rub_str(rub->items[i + k], rs[k]);
        err = kb_avw_append_strings(v, H(v, P_HERKOMST_RUBRIEKEN), rs[0], 8, k);
        if (err == KB_OK) {
            i += k;
            continue;
        }
        if (err == KB_ERR_NOTFOUND) {
            err = KB_OK;
            break;
        }
        if (err != KB_ERR_SCHEMA) {
            err = KB_ERR_SCHEMA; /* out of memory: as append_string() says it */
            break;
        }
        /* items that are no plain strings: one by one, through their path */
        err = append_string(v, P_HERKOMST_RUBRIEKEN, P_RUBRIEKEN_ITEM, rs[0], 8);
        if (err == KB_ERR_NOTFOUND) {
            err = KB_OK;
            break;
        }
        i++;
    }
    if (!err && kb_avw_path_is_array(v->plan, H(v, P_HERKOMST_WAARSCHUWINGEN))) {
        for (size_t i = 0; d->findings && i < d->findings->n && !err; i++) {
            const struct kb_lo3_finding *f = &d->findings->items[i];
            struct kb_avw_value item;
            if (f->reject)
                continue;
            if (kb_avw_put_append(v, H(v, P_HERKOMST_WAARSCHUWINGEN), &item) ||
                kb_avw_put_stringn(&item, H(&item, P_W_RUBRIEK), f->rubriek, strlen(f->rubriek)) ||
                kb_avw_put_stringn(&item, H(&item, P_W_REGEL), f->rule, strlen(f->rule)) ||
                kb_avw_put_long(&item, H(&item, P_W_OFFSET), (int64_t)f->offset))
                err = KB_ERR_SCHEMA;
        }
    }
    if (err)
        kb_err_set(err, d->errstr, d->errstr_size, "schema lacks a herkomst field");
    return err;
}

/* Room for one more event: the events double in their malloc'ed block
 * (the first one alone fits malloc's per-thread cache), new entries zeroed
 * there once, so emit() writes into cleared memory. */
static int derive_grow(struct derive *d)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 1;
        struct kb_ingress_event *e = realloc(d->evs, nc * sizeof *e);
        if (!e)
            return -1;
        /* a size the compiler does not know: the library's vector memset,
         * not an inline string store, which is slow for a kilobyte */
        memset(e + d->cap, 0, (nc - d->cap) * sizeof *e);
        d->evs = e;
        d->cap = nc;
    }
    if (d->n == d->at_cap) {
        size_t nc = d->at_cap * 2;
        size_t *at = malloc(nc * sizeof *at);
        if (!at)
            return -1;
        memcpy(at, d->value_at, d->n * sizeof *at);
        if (d->at_cap > DERIVE_INLINE)
            free(d->value_at);
        d->value_at = at;
        d->at_cap = nc;
    }
    return 0;
}

/* snprintf(dst, size, "%s", src) for @p n = strlen(src), without the
 * formatting machinery. */
static void copy_strn(char *dst, size_t size, const char *src, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Append one event to the growing array, encoding @p v. */
static kb_err_t emit(struct derive *d, const struct kb_schema *schema, struct kb_avw_value *v,
                     const char *subject_domain, const char *subject_id)
{
    const struct kb_gba_ctx *ctx = d->ctx;
    size_t index = d->n;
    if ((d->n == d->cap || d->n == d->at_cap) && derive_grow(d))
        return KB_ERR_NOMEM;
    struct kb_ingress_event *ev = &d->evs[d->n]; /* zeroed by derive_grow() */
    size_t at = d->out.len;
    kb_err_t err = kb_avw_encode_append(v, schema->id, &d->out, d->errstr, d->errstr_size);
    if (err)
        return err;
    d->value_at[d->n++] = at;
    ev->len = d->out.len - at; /* ev->value is set when the values have their home */
    /* The id names the source, the exact legacy bytes and the event's place
     * among the message's events: stable across re-reads, unique otherwise.
     * "%s|%s|%s|%zu", built by hand. */
    char name[512];
    size_t sl = d->source_len, tl = strlen(schema->type), nlen = 0;
    char idx[24];
    size_t il = 0;
    for (size_t x = index;; x /= 10) {
        idx[il++] = (char)('0' + x % 10);
        if (x < 10)
            break;
    }
    for (size_t i = 0; i < il / 2; i++) {
        char t = idx[i];
        idx[i] = idx[il - 1 - i];
        idx[il - 1 - i] = t;
    }
    if (sl + tl + 64 + 3 + il < sizeof name) {
        memcpy(name, ctx->source, sl);
        name[sl] = '|';
        memcpy(name + sl + 1, d->sha, 64);
        name[sl + 65] = '|';
        memcpy(name + sl + 66, schema->type, tl);
        name[sl + 66 + tl] = '|';
        memcpy(name + sl + 67 + tl, idx, il);
        nlen = sl + 67 + tl + il;
    } else {
        int n = snprintf(name, sizeof name, "%s|%s|%s|%zu", ctx->source, d->sha, schema->type,
                         index);
        nlen = n < 0 ? 0 : (size_t)n < sizeof name ? (size_t)n : sizeof name - 1;
    }
    kb_event_uuid5(name, nlen, ev->attrs.id);
    copy_strn(ev->attrs.source, sizeof ev->attrs.source, ctx->source, sl);
    copy_strn(ev->attrs.type, sizeof ev->attrs.type, schema->type, tl);
    memcpy(ev->attrs.time, d->time, sizeof ev->attrs.time);
    copy_strn(ev->attrs.dataref, sizeof ev->attrs.dataref, d->dataref, d->dataref_len);
    kb_event_traceparent_uuid(ev->attrs.id, ev->attrs.traceparent);
    ev->attrs.schema_id = schema->id;
    /* one message's events mostly share their subject: compute it once
     * (the lengths taken once serve the comparison, the HMAC and the copy) */
    size_t dl = strlen(subject_domain), sil = strlen(subject_id);
    if (d->last_subject[0] && dl == d->last_domain_len && sil == d->last_id_len &&
        !memcmp(d->last_domain, subject_domain, dl) && !memcmp(d->last_id, subject_id, sil)) {
        memcpy(ev->attrs.subject, d->last_subject, sizeof ev->attrs.subject);
    } else {
        err = cache_pseudonym(d->cache, ctx->key, ctx->key_len, subject_domain, dl, subject_id, sil,
                              ev->attrs.subject);
        if (err)
            return kb_err_set(err, d->errstr, d->errstr_size, "subject key unusable");
        if (dl < sizeof d->last_domain && sil < sizeof d->last_id) {
            memcpy(d->last_domain, subject_domain, dl + 1);
            memcpy(d->last_id, subject_id, sil + 1);
            d->last_domain_len = dl;
            d->last_id_len = sil;
            memcpy(d->last_subject, ev->attrs.subject, sizeof d->last_subject);
        }
    }
    memcpy(ev->key, ev->attrs.subject, sizeof ev->key);
    return KB_OK;
}

/* Copy a raw element (digits only: identifiers) into @p out; "" if absent. */
static void raw_el(const struct kb_lo3_message *msg, size_t cat, uint16_t nummer, char *out,
                   size_t cap)
{
    const struct kb_lo3_element *e = find_el(msg, cat, nummer);
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
                          const struct kb_schema **schema, struct kb_avw_value *v)
{
    /* kb_schemas_by_type() scans the set under its lock; the set only
     * grows, so while its size stays the answer stays (a registry that
     * publishes a version grows it) */
    kb_gba_cache_t *c = d->cache;
    const kb_schemas_t *set = d->ctx->schemas;
    size_t count = kb_schemas_count(set);
    const kb_avw_plan_t *plan = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_types && !plan; i++)
        if (c->types[i].type == type && c->types[i].set == set && c->types[i].count == count) {
            *schema = c->types[i].schema;
            plan = c->types[i].plan;
        }
    pthread_mutex_unlock(&c->mu);
    if (!plan) {
        *schema = kb_schemas_by_type(set, type);
        if (!*schema)
            return kb_err_set(KB_ERR_SCHEMA, d->errstr, d->errstr_size, "no schema for %s", type);
        plan = cache_plan(c, *schema, d->errstr, d->errstr_size);
        if (!plan)
            return KB_ERR_SCHEMA;
        pthread_mutex_lock(&c->mu);
        size_t i = 0;
        while (i < c->n_types && (c->types[i].type != type || c->types[i].set != set))
            i++;
        if (i == MAX_TYPES)
            i = c->n_types = 0; /* more types than foreseen: start over */
        if (i == c->n_types)
            c->n_types++;
        c->types[i].set = set;
        c->types[i].type = type;
        c->types[i].count = count;
        c->types[i].schema = *schema;
        c->types[i].plan = plan;
        pthread_mutex_unlock(&c->mu);
    }
    if (kb_avw_value_new_nulls(plan, d->arena, v)) /* kb_value_init_nulls() included */
        return kb_err_set(KB_ERR_NOMEM, d->errstr, d->errstr_size, "out of memory");
    return KB_OK;
}

/* Finish one event: provenance, encode, append. */
static kb_err_t finish(struct derive *d, const struct kb_schema *schema, struct kb_avw_value *v,
                       const struct rubrieken *rub, const char *subject_domain,
                       const char *subject_id, kb_err_t err)
{
    if (!err)
        err = put_provenance(d, v, rub);
    if (!err)
        err = emit(d, schema, v, subject_domain, subject_id);
    return err;
}

static kb_err_t birth_events(struct derive *d)
{
    const struct kb_lo3_message *msg = d->msg;
    long c01 = cat_find(msg, 1), c07 = cat_find(msg, 7), c08 = cat_find(msg, 8);
    if (c01 < 0 || c07 < 0 || c08 < 0)
        return KB_OK; /* not a full PL: no birth to see */
    const struct kb_lo3_element *versie = find_el(msg, (size_t)c07, 8010);
    const struct kb_lo3_element *geboren = find_el(msg, (size_t)c01, 310);
    const struct kb_lo3_element *aanvang = find_el(msg, (size_t)c08, 1030);
    if (!versie || versie->len != 4 || memcmp(versie->value, "0001", 4) != 0 ||
        !el_equals(geboren, aanvang))
        return KB_OK;

    const struct kb_schema *schema;
    struct kb_avw_value v;
    kb_err_t err = new_value(d, "nl.brp.persoon-geboren", &schema, &v);
    if (err)
        return err;
    err = put_persoon(&v, PERSOON_KIND, d, (size_t)c01);
    if (!err)
        err = put_akte(&v, d, (size_t)c01);
    /* Parents: categories 02 (ouder 1) and 03 (ouder 2), actual occurrence. */
    if (!err && !kb_avw_path_is_array(v.plan, H(&v, P_OUDERS)))
        err = KB_ERR_SCHEMA;
    for (unsigned nr = 2; nr <= 3 && !err; nr++) {
        long c = cat_find(msg, nr);
        if (c < 0 || msg->categories[c].count == 0)
            continue;
        struct kb_avw_value ouder;
        if (kb_avw_put_append_nulls(&v, H(&v, P_OUDERS), &ouder)) { /* with its nulls */
            err = KB_ERR_SCHEMA;
            break;
        }
        err = kb_avw_put_int(&ouder, H(&ouder, P_O_OUDER_NUMMER), (int32_t)(nr - 1));
        if (!err)
            err = put_persoon(&ouder, PERSOON_PERSOON, d, (size_t)c);
        if (!err)
            put(&ouder, P_O_DATUM_FAM, d, (size_t)c, 6210, &err);
    }
    if (!err)
        put(&v, P_INSCHRIJVING_GEMEENTE, d, (size_t)c08, 910, &err);
    if (!err)
        put(&v, P_INSCHRIJVING_DATUM_INSCHRIJVING, d, (size_t)c08, 920, &err);
    /* what made it a birth: first version, born on the day the address began */
    struct rubrieken rub;
    rub_init(&rub);
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
    const struct kb_lo3_element *e = find_el(msg, (size_t)cat, nummer);
    return e && e->len ? e : NULL;
}

/* @p e when it has a value (val() of an element already found). */
static inline const struct kb_lo3_element *nonempty(const struct kb_lo3_element *e)
{
    return e && e->len ? e : NULL;
}

static int same_val(const struct kb_lo3_element *a, const struct kb_lo3_element *b)
{
    if (!a || !b)
        return !a && !b;
    return a->len == b->len && !memcmp(a->value, b->value, a->len);
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

static kb_err_t set_correctie(struct kb_avw_value *v, int correctie)
{
    return kb_avw_put_boolean(v, H(v, P_CORRECTIE), correctie) ? KB_ERR_SCHEMA : KB_OK;
}

/* Start a mutation event of @p type about the PL with A-nummer @p anr. */
static kb_err_t start_mutation(struct derive *d, const char *type, const char *anr,
                               const struct pair *p, const struct kb_schema **schema,
                               struct kb_avw_value *v)
{
    kb_err_t err = new_value(d, type, schema, v);
    if (err)
        return err;
    /* @p anr lives in the caller until its event is encoded: no copy */
    err = kb_avw_put_stringn_ref(v, H(v, P_PERSOON_A_NUMMER), anr, strlen(anr));
    if (!err)
        err = set_correctie(v, p ? p->correctie : 0);
    if (err) {
        return kb_err_set(err, d->errstr, d->errstr_size, "schema %s lacks persoon/correctie",
                          type);
    }
    return KB_OK;
}

static kb_err_t end_mutation(struct derive *d, const struct kb_schema *schema,
                             struct kb_avw_value *v, const struct pair *p, const char *anr,
                             kb_err_t err)
{
    struct rubrieken rub;
    rub_init(&rub);
    if (!err)
        err = pair_rubrieken(d->msg, p, &rub);
    err = finish(d, schema, v, &rub, "anummer", anr, err);
    rub_fini(&rub);
    return err;
}

#define PUT(v, path, cat, nummer)                               \
    do {                                                        \
        if (!err && (cat) >= 0)                                 \
            put((v), (path), d, (size_t)(cat), (nummer), &err); \
    } while (0)

/* PUT() for @p n fields in a row: elements @p nummers (ascending) of
 * category occurrence @p cat to @p paths, in that order, with one walk
 * over the category (find_els) instead of one per field. */
static void put_list(struct kb_avw_value *v, const struct derive *d, long cat,
                     const uint16_t *nummers, const enum gba_path *paths, size_t n, kb_err_t *err)
{
    const struct kb_lo3_element *found[16];
    if (*err || cat < 0 || n > sizeof found / sizeof found[0])
        return;
    find_els(d->msg, (size_t)cat, nummers, n, found);
    for (size_t i = 0; i < n && !*err; i++)
        put_e(v, paths[i], d, (size_t)cat, found[i], err);
}

/* 01/51: BSN, A-nummer and name changes. Returns 1 in *covered when an
 * event took the pair. */
static kb_err_t persoon_pair(struct derive *d, const struct pair *p, const char *anr,
                             int *covered)
{
    const struct kb_lo3_message *msg = d->msg;
    const struct kb_schema *schema;
    struct kb_avw_value v;
    kb_err_t err = KB_OK;
    long a = (long)p->a, h = p->h;
    /* the elements asked below, each category walked once (find_els), not
     * once per question: [0] 110, [1] 120, [2..5] the name, [6] 85.10 */
    static const uint16_t asked[7] = {110, 120, 210, 220, 230, 240, 8510};
    const struct kb_lo3_element *fa[7], *fh[7] = {NULL};
    find_els(msg, (size_t)a, asked, 7, fa);
    if (h >= 0)
        find_els(msg, (size_t)h, asked, 7, fh);
    const struct kb_lo3_element *nb = nonempty(fa[1]), *ob = nonempty(fh[1]);
    if (nb && !same_val(nb, ob) && fh[1]) {
        err = start_mutation(d, "nl.brp.bsn-gewijzigd", anr, p, &schema, &v);
        if (err)
            return err;
        put_e(&v, P_NIEUW_BSN, d, (size_t)a, fa[1], &err);
        put_e(&v, P_OUD_BSN, d, (size_t)h, fh[1], &err);
        put_e(&v, P_DATUM_GELDIGHEID, d, (size_t)a, fa[6], &err);
        err = end_mutation(d, schema, &v, p, anr, err);
        *covered = 1;
    }
    const struct kb_lo3_element *na = nonempty(fa[0]), *oa = nonempty(fh[0]);
    if (!err && na && oa && !same_val(na, oa)) {
        err = start_mutation(d, "nl.brp.anummer-gewijzigd", anr, p, &schema, &v);
        if (err)
            return err;
        put_e(&v, P_NIEUW_ANUMMER, d, (size_t)a, fa[0], &err);
        put_e(&v, P_DATUM_GELDIGHEID, d, (size_t)a, fa[6], &err);
        err = end_mutation(d, schema, &v, p, anr, err);
        *covered = 1;
    }
    int naam_changed = 0;
    for (size_t i = 2; i < 6; i++)
        naam_changed |= fa[i] || fh[i];
    if (!err && naam_changed && h >= 0) {
        err = start_mutation(d, "nl.brp.naam-gewijzigd", anr, p, &schema, &v);
        if (err)
            return err;
        static const enum gba_path nieuw[] = {P_NIEUW_VOORNAMEN, P_NIEUW_ADELLIJKE_TITEL,
                                              P_NIEUW_VOORVOEGSEL, P_NIEUW_GESLACHTSNAAM};
        static const enum gba_path oud[] = {P_OUD_VOORNAMEN, P_OUD_ADELLIJKE_TITEL,
                                            P_OUD_VOORVOEGSEL, P_OUD_GESLACHTSNAAM};
        for (size_t i = 0; i < 4; i++) {
            put_e(&v, nieuw[i], d, (size_t)a, fa[2 + i], &err);
            put_e(&v, oud[i], d, (size_t)h, fh[2 + i], &err);
        }
        put_e(&v, P_DATUM_GELDIGHEID, d, (size_t)a, fa[6], &err);
        err = end_mutation(d, schema, &v, p, anr, err);
        *covered = 1;
    }
    return err;
}

/* 05/55: a union concluded or dissolved. */
static kb_err_t verbintenis_pair(struct derive *d, const struct pair *p, const char *anr,
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
    struct kb_avw_value v;
    kb_err_t err = start_mutation(d, type, anr, p, &schema, &v);
    if (err)
        return err;
    /* the partner, the union and its end: in element order */
    static const uint16_t nummers[13] = {110, 120, 210, 230, 240, 310, 610,
                                         620, 630, 710, 720, 730, 740};
    static const enum gba_path paths[13] = {
        P_PARTNER_A_NUMMER,    P_PARTNER_BSN,           P_PARTNER_VOORNAMEN,
        P_PARTNER_VOORVOEGSEL, P_PARTNER_GESLACHTSNAAM, P_PARTNER_GEBOORTEDATUM,
        P_DATUM_SLUITING,      P_PLAATS_SLUITING,       P_LAND_SLUITING,
        P_DATUM_ONTBINDING,    P_PLAATS_ONTBINDING,     P_LAND_ONTBINDING,
        P_REDEN_ONTBINDING};
    put_list(&v, d, a, nummers, paths, 9, &err);
    if (ontbonden)
        put_list(&v, d, a, nummers + 9, paths + 9, 4, &err);
    PUT(&v, P_DATUM_GELDIGHEID, a, 8510);
    *covered = 1;
    return end_mutation(d, schema, &v, p, anr, err);
}

static kb_err_t overlijden_pair(struct derive *d, const struct pair *p, const char *anr,
                                int *covered)
{
    long a = (long)p->a, h = p->h;
    if (!val(d->msg, a, 810) || val(d->msg, h, 810))
        return KB_OK;
    const struct kb_schema *schema;
    struct kb_avw_value v;
    kb_err_t err = start_mutation(d, "nl.brp.persoon-overleden", anr, p, &schema, &v);
    if (err)
        return err;
    PUT(&v, P_OVERLIJDEN_DATUM, a, 810);
    PUT(&v, P_OVERLIJDEN_PLAATS, a, 820);
    PUT(&v, P_OVERLIJDEN_LAND, a, 830);
    PUT(&v, P_DATUM_GELDIGHEID, a, 8510);
    *covered = 1;
    return end_mutation(d, schema, &v, p, anr, err);
}

static kb_err_t opschorting_pair(struct derive *d, const struct pair *p, const char *anr,
                                 int *covered)
{
    long a = (long)p->a, h = p->h;
    if (!val(d->msg, a, 6710) || val(d->msg, h, 6710))
        return KB_OK;
    const struct kb_schema *schema;
    struct kb_avw_value v;
    kb_err_t err = start_mutation(d, "nl.brp.bijhouding-opgeschort", anr, p, &schema, &v);
    if (err)
        return err;
    PUT(&v, P_DATUM_OPSCHORTING, a, 6710);
    PUT(&v, P_REDEN_OPSCHORTING, a, 6720);
    *covered = 1;
    return end_mutation(d, schema, &v, p, anr, err);
}

/* 08/58: which kind of move, if any. */
static kb_err_t verblijf_pair(struct derive *d, const struct pair *p, const char *anr,
                              int *covered)
{
    const struct kb_lo3_message *msg = d->msg;
    long h = p->h;
    /* the elements asked below, each category walked once (find_els), not
     * once per question */
    /* clang-format off */
    enum { A910, A920, A1010, A1030, A1110, A1120, A1130, A1140, A1160, A1170, A1190, A1310,
           A1320, A1410, A1420, N_A };
    /* clang-format on */
    static const uint16_t asked_a[N_A] = {910,  920,  1010, 1030, 1110, 1120, 1130, 1140,
                                          1160, 1170, 1190, 1310, 1320, 1410, 1420};
    static const uint16_t asked_h[3] = {910, 1310, 1410};
    const struct kb_lo3_element *fa[N_A], *fh[3] = {NULL};
    find_els(msg, p->a, asked_a, N_A, fa);
    if (h >= 0)
        find_els(msg, (size_t)h, asked_h, 3, fh);
    const struct kb_lo3_element *a1310 = nonempty(fa[A1310]), *h1310 = nonempty(fh[1]);
    const struct kb_lo3_element *a1410 = nonempty(fa[A1410]), *h1410 = nonempty(fh[2]);
    const struct kb_lo3_element *a910 = nonempty(fa[A910]), *h910 = nonempty(fh[0]);
    const char *soort = NULL;
    const struct kb_lo3_element *datum = fa[A1030]; /* datumAanvang */
    if (a1310 && !h1310) {
        soort = "emigratie";
        datum = fa[A1320];
    } else if ((h1310 && !a1310) || (h >= 0 && a1410 && !same_val(a1410, h1410))) {
        soort = "immigratie";
        datum = nonempty(fa[A1420]) ? fa[A1420] : fa[A920];
    } else if (a910 && h910 && !same_val(a910, h910)) {
        soort = "intergemeentelijk";
        datum = nonempty(fa[A1030]) ? fa[A1030] : fa[A920];
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
    struct kb_avw_value v;
    kb_err_t err = start_mutation(d, "nl.brp.persoon-verhuisd", anr, p, &schema, &v);
    if (err)
        return err;
    err = kb_avw_put_stringn_ref(&v, H(&v, P_SOORT), soort, strlen(soort)); /* a literal */
    if (h >= 0)
        put_e(&v, P_GEMEENTE_VAN, d, (size_t)h, fh[0], &err);
    put_e(&v, P_GEMEENTE_NAAR, d, p->a, fa[A910], &err);
    put_e(&v, P_DATUM_AANVANG, d, p->a, datum, &err);
    put_e(&v, P_LAND_VERTREK, d, p->a, fa[A1310], &err);
    put_e(&v, P_LAND_VANWAAR_INGESCHREVEN, d, p->a, fa[A1410], &err);
    if (!err && (nonempty(fa[A1110]) || nonempty(fa[A1160]) || nonempty(fa[A1190]))) {
        static const uint8_t adres[8] = {A1010, A1110, A1120, A1130, A1140, A1160, A1170, A1190};
        static const enum gba_path paths[8] = {
            P_ADRES_FUNCTIE,    P_ADRES_STRAATNAAM,           P_ADRES_HUISNUMMER,
            P_ADRES_HUISLETTER, P_ADRES_HUISNUMMERTOEVOEGING, P_ADRES_POSTCODE,
            P_ADRES_WOONPLAATS, P_ADRES_NUMMERAANDUIDING};
        for (size_t i = 0; i < 8 && !err; i++)
            put_e(&v, paths[i], d, p->a, fa[adres[i]], &err);
    }
    *covered = 1;
    return end_mutation(d, schema, &v, p, anr, err);
}

/* 09 with an empty 59: a new child (the event shape of schema 1002). */
static kb_err_t kind_pair(struct derive *d, const struct pair *p, const char *anr,
                          int *covered)
{
    const struct kb_lo3_message *msg = d->msg;
    if (p->h < 0 || msg->categories[p->h].count != 0 || msg->categories[p->a].count == 0)
        return KB_OK;
    const struct kb_schema *schema;
    struct kb_avw_value v;
    kb_err_t err = new_value(d, "nl.brp.kind-toegevoegd", &schema, &v);
    if (err)
        return err;
    err = kb_avw_put_stringn_ref(&v, H(&v, P_OUDER_A_NUMMER), anr, strlen(anr));
    if (!err)
        err = put_persoon(&v, PERSOON_KIND, d, p->a);
    if (!err)
        err = put_akte(&v, d, p->a);
    PUT(&v, P_DATUM_GELDIGHEID, (long)p->a, 8510);
    *covered = 1;
    struct rubrieken rub;
    rub_init(&rub);
    if (!err)
        err = pair_rubrieken(msg, p, &rub);
    err = finish(d, schema, &v, &rub, "anummer", anr, err);
    rub_fini(&rub);
    return err;
}

static kb_err_t mutation_events(struct derive *d)
{
    const struct kb_lo3_message *msg = d->msg;
    const struct kb_lo3_header_field *hdr = d->hdr_anummer;
    if (!hdr || hdr->len != 10)
        return KB_OK;
    char anr[11];
    memcpy(anr, hdr->value, 10);
    anr[10] = '\0';
    struct rubrieken rest; /* rubrieken no specific event took */
    rub_init(&rest);
    uint64_t cats = 0; /* their categories (actual numbers), bit per number */
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
            cats |= 1ull << c->nummer; /* an actual number: 1-49 */
            rest_correctie |= p.correctie;
        }
    }
    if (!err && rest.n) {
        const struct kb_schema *schema;
        struct kb_avw_value v;
        struct pair none = {0, -1, 0, rest_correctie};
        err = start_mutation(d, "nl.brp.persoonslijst-gewijzigd", anr, &none, &schema, &v);
        if (!err) {
            for (uint64_t m = cats & ~1ull; m && !err; m &= m - 1) { /* 1-49, ascending */
                unsigned i = (unsigned)__builtin_ctzll(m);
                char nr[3] = {(char)('0' + i / 10), (char)('0' + i % 10), '\0'};
                err = append_string(&v, P_CATEGORIEEN, P_CATEGORIEEN_ITEM, nr, 2);
                if (err == KB_ERR_NOTFOUND) {
                    err = KB_OK; /* the schema has no such list: left out */
                    break;
                }
            }
            err = finish(d, schema, &v, &rest, "anummer", anr, err);
        }
    }
    rub_fini(&rest);
    return err;
}

/* Ng01: BRP-V took the PL out of the afnemer's set. */
static kb_err_t afgevoerd_event(struct derive *d)
{
    const struct kb_lo3_message *msg = d->msg;
    long c01 = cat_find(msg, 1), c07 = cat_find(msg, 7);
    char anr[16];
    if (c01 < 0 || (raw_el(msg, (size_t)c01, 110, anr, sizeof anr), !anr[0]))
        return kb_err_set(KB_ERR_INVALID, d->errstr, d->errstr_size,
                          "offset 12: Ng01 body lacks 01.01.10");
    const struct kb_schema *schema;
    struct kb_avw_value v;
    kb_err_t err = start_mutation(d, "nl.brp.persoonslijst-afgevoerd", anr, NULL, &schema, &v);
    if (err)
        return err;
    PUT(&v, P_VOLGEND_ANUMMER, c01, 2020);
    PUT(&v, P_DATUM_OPSCHORTING, c07, 6710);
    PUT(&v, P_REDEN_OPSCHORTING, c07, 6720);
    struct rubrieken rub;
    rub_init(&rub);
    for (size_t i = 0; i < msg->n_categories && !err; i++)
        err = rub_add_cat(&rub, msg, i, msg->categories[i].nummer);
    err = finish(d, schema, &v, &rub, "anummer", anr, err);
    rub_fini(&rub);
    return err;
}

/* Wa11 / Wa01: the A-nummer in the header is replaced by 01.01.10. */
static kb_err_t anummer_event(struct derive *d)
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
    struct kb_avw_value v;
    kb_err_t err = start_mutation(d, "nl.brp.anummer-gewijzigd", anr, NULL, &schema, &v);
    if (err)
        return err;
    err = kb_avw_put_stringn_ref(&v, H(&v, P_NIEUW_ANUMMER), nieuw, strlen(nieuw));
    if (!err && dg && dg->len == 8) {
        memcpy(datum, dg->value, 8);
        datum[8] = '\0';
        err = kb_avw_put_stringn_ref(&v, H(&v, P_DATUM_GELDIGHEID), datum, strlen(datum));
    }
    struct rubrieken rub;
    rub_init(&rub);
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
    *evs = NULL;
    *n = 0;
    kb_gba_cache_t *own = NULL, *cache = ctx->cache;
    if (!cache && !(cache = own = kb_gba_cache_new()))
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory for the cache");
    char sha[65];
    kb_sha256_hex(raw, len, sha);
    struct kb_lo3_findings findings;
    memset(&findings, 0, sizeof findings);
    uint8_t plain[PLAIN_MAX]; /* elements checked plain (put_e, el_of) */
    size_t n_plain = msg->n_elements < PLAIN_MAX ? msg->n_elements : PLAIN_MAX;
    memset(plain, 0, n_plain);
    kb_err_t err = kb_lo3_check_marking(msg, &findings, plain, n_plain);
    if (err) {
        kb_lo3_findings_fini(&findings);
        kb_gba_cache_destroy(own);
        return kb_err_set(err, errstr, errstr_size, "out of memory checking elements");
    }
    if (findings.n_reject) {
        for (size_t i = 0; i < findings.n; i++)
            if (findings.items[i].reject) {
                kb_lo3_finding_str(&findings.items[i], errstr, errstr_size);
                break;
            }
        kb_lo3_findings_fini(&findings);
        kb_gba_cache_destroy(own);
        return KB_ERR_INVALID;
    }
    struct kb_avw_arena arena; /* on the stack: no malloc for most messages */
    kb_avw_arena_init(&arena);
    size_t at_inline[DERIVE_INLINE];
    uint8_t out_inline[OUT_INLINE];
    /* set field by field: an initializer would clear all of it, some 400
     * bytes, with a string store that costs more than the rest of this */
    struct derive d;
    d.ctx = ctx;
    d.cache = cache;
    d.arena = &arena;
    d.msg = msg;
    d.sha = sha;
    d.received_ms = received_ms;
    memset(d.time, 0, sizeof d.time);
    d.dataref = dataref ? dataref : "";
    d.source_len = strlen(ctx->source);
    d.dataref_len = dataref ? strlen(dataref) : 0;
    d.findings = &findings;
    d.plain = plain;
    d.n_plain = n_plain;
    /* The message is not rejected, so every BSN passed the 11-proef and
     * every date is a GBA date (those findings reject); only an A-nummer
     * finding (a warning) makes put_persoon() look at a value again. */
    d.ids_clean = 1;
    for (size_t i = 0; i < findings.n; i++)
        if (!strcmp(findings.items[i].rule, "anummer"))
            d.ids_clean = 0;
    d.evs = NULL;
    d.n = 0;
    d.cap = 0;
    d.value_at = at_inline;
    d.at_cap = DERIVE_INLINE;
    d.out = (struct kb_avw_buf){out_inline, 0, sizeof out_inline, 0};
    d.errstr = errstr;
    d.errstr_size = errstr_size;
    d.hdr_anummer = kb_lo3_header(msg, "aNummer");
    d.hdr_datumtijd = kb_lo3_header(msg, "datumTijd");
    d.last_domain[0] = d.last_id[0] = d.last_subject[0] = '\0'; /* no pseudonym yet */
    d.last_domain_len = d.last_id_len = 0;
    kb_event_time(received_ms, d.time);
    memcpy(d.bron, "sha256:", 7);
    memcpy(d.bron + 7, sha, 65);
    /* msg->type is char[5]: comparing all five bytes (the NUL too) is
     * strcmp() == 0, as a few integer compares instead of calls */
    if (!memcmp(msg->type, "Lg01", 5))
        err = birth_events(&d);
    else if (!memcmp(msg->type, "Gv01", 5) || !memcmp(msg->type, "Gv02", 5))
        err = mutation_events(&d);
    else if (!memcmp(msg->type, "Ng01", 5))
        err = afgevoerd_event(&d);
    else if (!memcmp(msg->type, "Wa11", 5) || !memcmp(msg->type, "Wa01", 5))
        err = anummer_event(&d);
    kb_avw_arena_fini(&arena);
    kb_lo3_findings_fini(&findings);
    kb_gba_cache_destroy(own);
    if (!err && d.n) {
        /* The events in their block as made (emit), their values one
         * after the other in a second (kb_gba_events_free() finds it at
         * the first value): one event's block is just small enough for
         * malloc's per-thread cache, a block holding the values too was
         * not. */
        uint8_t *values = d.out.heap ? d.out.data : malloc(d.out.len);
        if (values) {
            if (!d.out.heap)
                memcpy(values, d.out.data, d.out.len);
            d.out.heap = 0; /* handed over to the events */
            for (size_t i = 0; i < d.n; i++)
                d.evs[i].value = values + d.value_at[i];
            *evs = d.evs;
            *n = d.n;
            d.evs = NULL;
        } else {
            err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory for events");
        }
    }
    free(d.evs); /* NULL once handed over */
    if (d.at_cap > DERIVE_INLINE)
        free(d.value_at);
    if (d.out.heap)
        free(d.out.data);
    return err;
}

void kb_gba_events_free(struct kb_ingress_event *evs, size_t n)
{
    /* the values are one block, starting at the first (kb_gba_events) */
    if (evs && n)
        free(evs[0].value);
    free(evs);
}
