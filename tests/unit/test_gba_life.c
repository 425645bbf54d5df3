/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_gba_life.c - the life events of Gv01/Ng01/Wa11 mutations (fixtures in
 * tests/fixtures/gba/events/, written by make-fixtures.sh): which event
 * types each message yields, their key fields decoded back from Avro, the
 * provenance (triggering rubrieken, source message id, warnings), the
 * correction flag, rejects with their rubriek, and that every payload
 * passes the router's compiled validator for its schema.
 */
#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gba_events.h"
#include "kb_test.h"
#include "ketenbus/schema.h"
#include "ketenbus/validate.h"
#include "lo3.h"

#define SOURCE "urn:nld:oin:00000001003214345000:systeem:ketenbus-gba"

static char src_dir[1024];
static kb_schemas_t *schemas;
static const uint8_t key[32] = {1, 2, 3};

struct result {
    struct kb_ingress_event *evs;
    size_t n;
    kb_err_t err;
    char errstr[256];
};

static void derive(const char *name, struct result *r)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/tests/fixtures/gba/events/%s.lo3", src_dir, name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    static uint8_t buf[65536];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    struct kb_lo3_message msg;
    char perr[256];
    memset(r, 0, sizeof *r);
    CHECK_INT(kb_lo3_parse(buf, len, &msg, perr, sizeof perr), KB_OK);
    struct kb_gba_ctx ctx = {schemas, key, sizeof key, SOURCE, NULL};
    r->err = kb_gba_events(&ctx, buf, len, &msg, 1717236000000, "file:///x", &r->evs, &r->n,
                           r->errstr, sizeof r->errstr);
    kb_lo3_message_fini(&msg);
    /* every payload passes the router's validator of its schema */
    for (size_t i = 0; i < r->n; i++) {
        const struct kb_schema *sc = kb_schemas_by_type(schemas, r->evs[i].attrs.type);
        CHECK(sc != NULL);
        if (!sc)
            continue;
        char verr[256];
        kb_validator_t *v = kb_validate_compile(sc->json, NULL, verr, sizeof verr);
        if (!v)
            fprintf(stderr, "%s: compile: %s\n", sc->type, verr);
        CHECK(v != NULL);
        struct kb_validate_result res;
        memset(&res, 0, sizeof res);
        kb_err_t e = v ? kb_validate(v, r->evs[i].value + 5, r->evs[i].len - 5, &res) : KB_OK;
        if (e)
            fprintf(stderr, "%s: %s: %s at %s\n", name, sc->type, res.rule, res.path);
        CHECK_INT(e, KB_OK);
        kb_validate_destroy(v);
        CHECK_INT(r->evs[i].attrs.schema_id, sc->id);
        /* no identifier in the key */
        CHECK(strstr(r->evs[i].key, "5281301274") == NULL);
    }
}

/* String at @p path of event @p i ("" when null). */
static const char *field(const struct result *r, size_t i, const char *path)
{
    static char out[1024];
    out[0] = '\0';
    if (i >= r->n)
        return "(no event)";
    const struct kb_schema *sc = kb_schemas_by_type(schemas, r->evs[i].attrs.type);
    avro_value_t v;
    avro_generic_value_new(sc->iface, &v);
    char err[256];
    if (kb_schema_decode(sc, r->evs[i].value + 5, r->evs[i].len - 5, &v, err, sizeof err) ==
        KB_OK)
        kb_value_get_string(&v, path, out, sizeof out);
    avro_value_decref(&v);
    return out;
}

/* Long/bool/array-size probes at @p path of event @p i. */
static long long number(const struct result *r, size_t i, const char *path, int what)
{
    if (i >= r->n)
        return -1;
    const struct kb_schema *sc = kb_schemas_by_type(schemas, r->evs[i].attrs.type);
    avro_value_t v, f;
    avro_generic_value_new(sc->iface, &v);
    char err[256];
    long long out = -1;
    if (kb_schema_decode(sc, r->evs[i].value + 5, r->evs[i].len - 5, &v, err, sizeof err) ==
            KB_OK &&
        kb_value_path(&v, path, 0, &f) == KB_OK) {
        int b;
        size_t n;
        if (what == 'b' && !avro_value_get_boolean(&f, &b))
            out = b;
        else if (what == 'n' && !avro_value_get_size(&f, &n))
            out = (long long)n;
    }
    avro_value_decref(&v);
    return out;
}

/* Item @p k of string array @p path of event @p i. */
static const char *item(const struct result *r, size_t i, const char *path, size_t k)
{
    static char out[64];
    strcpy(out, "(none)");
    const struct kb_schema *sc = kb_schemas_by_type(schemas, r->evs[i].attrs.type);
    avro_value_t v, f, it;
    avro_generic_value_new(sc->iface, &v);
    char err[256];
    if (kb_schema_decode(sc, r->evs[i].value + 5, r->evs[i].len - 5, &v, err, sizeof err) ==
            KB_OK &&
        kb_value_path(&v, path, 0, &f) == KB_OK && !avro_value_get_by_index(&f, k, &it, NULL)) {
        const char *s = NULL;
        size_t n = 0;
        if (!avro_value_get_string(&it, &s, &n))
            snprintf(out, sizeof out, "%s", s);
        else if (!kb_value_get_string(&it, "rubriek", out, sizeof out)) {
            size_t l = strlen(out);
            out[l] = '/';
            kb_value_get_string(&it, "regel", out + l + 1, sizeof out - l - 1);
        }
    }
    avro_value_decref(&v);
    return out;
}

static void done(struct result *r)
{
    kb_gba_events_free(r->evs, r->n);
}

static void expect_one(struct result *r, const char *name, const char *type)
{
    derive(name, r);
    CHECK_INT(r->err, KB_OK);
    if (r->err)
        fprintf(stderr, "%s: %s\n", name, r->errstr);
    CHECK_INT(r->n, 1);
    CHECK_STR(r->n ? r->evs[0].attrs.type : "(none)", type);
    CHECK_STR(field(r, 0, "persoon.aNummer"), r->n && !strcmp(name, "ng01-afgevoerd")
                                                   ? "7194601014"
                                               : !strcmp(name, "wa11-anummer") ? "7194601014"
                                                                               : "5281301274");
    CHECK_INT(number(r, 0, "correctie", 'b'), !strcmp(name, "gv01-correctie"));
}

static void test_events(void)
{
    struct result r;

    expect_one(&r, "gv01-overlijden", "nl.brp.persoon-overleden");
    CHECK_STR(field(&r, 0, "overlijden.datum"), "20240601");
    CHECK_STR(field(&r, 0, "overlijden.plaats"), "0344");
    CHECK_STR(item(&r, 0, "herkomst.rubrieken", 0), "06.08.10");
    CHECK_INT(number(&r, 0, "herkomst.rubrieken", 'n'), 7);
    CHECK_STR(field(&r, 0, "herkomst.berichtType"), "Gv01");
    CHECK(!strncmp(field(&r, 0, "herkomst.bronBerichtId"), "sha256:", 7));
    done(&r);

    expect_one(&r, "gv01-verhuizing-binnen", "nl.brp.persoon-verhuisd");
    CHECK_STR(field(&r, 0, "soort"), "binnengemeentelijk");
    CHECK_STR(field(&r, 0, "datumAanvang"), "20240701");
    CHECK_STR(field(&r, 0, "adres.postcode"), "3513CD");
    CHECK_STR(field(&r, 0, "adres.huisnummer"), "7");
    done(&r);

    expect_one(&r, "gv01-verhuizing-tussen", "nl.brp.persoon-verhuisd");
    CHECK_STR(field(&r, 0, "soort"), "intergemeentelijk");
    CHECK_STR(field(&r, 0, "gemeenteVan"), "0344");
    CHECK_STR(field(&r, 0, "gemeenteNaar"), "0363");
    CHECK_STR(field(&r, 0, "adres.woonplaats"), "Amsterdam");
    done(&r);

    expect_one(&r, "gv01-emigratie", "nl.brp.persoon-verhuisd");
    CHECK_STR(field(&r, 0, "soort"), "emigratie");
    CHECK_STR(field(&r, 0, "landVertrek"), "5010");
    CHECK_STR(field(&r, 0, "datumAanvang"), "20240901");
    done(&r);

    expect_one(&r, "gv01-immigratie", "nl.brp.persoon-verhuisd");
    CHECK_STR(field(&r, 0, "soort"), "immigratie");
    CHECK_STR(field(&r, 0, "landVanwaarIngeschreven"), "5010");
    CHECK_STR(field(&r, 0, "gemeenteVan"), "1999");
    CHECK_STR(field(&r, 0, "datumAanvang"), "20241001");
    done(&r);

    expect_one(&r, "gv01-huwelijk", "nl.brp.huwelijk-gesloten");
    CHECK_STR(field(&r, 0, "partner.bsn"), "999997105");
    CHECK_STR(field(&r, 0, "datumSluiting"), "20240510");
    done(&r);
    expect_one(&r, "gv01-partnerschap", "nl.brp.partnerschap-aangegaan");
    CHECK_STR(field(&r, 0, "partner.geslachtsnaam"), "Dijk");
    done(&r);
    /* no 05.15.10 in the mutation: the akte register (3) says huwelijk */
    expect_one(&r, "gv01-ontbinding", "nl.brp.huwelijk-ontbonden");
    CHECK_STR(field(&r, 0, "datumOntbinding"), "20250115");
    CHECK_STR(field(&r, 0, "redenOntbinding"), "S");
    done(&r);

    expect_one(&r, "gv01-naam", "nl.brp.naam-gewijzigd");
    CHECK_STR(field(&r, 0, "nieuw.geslachtsnaam"), "Bakker-van \xc3\xab" "ik");
    CHECK_STR(field(&r, 0, "oud.geslachtsnaam"), "Bakker");
    CHECK_STR(field(&r, 0, "nieuw.voornamen"), "");
    done(&r);

    expect_one(&r, "gv01-bsn", "nl.brp.bsn-gewijzigd");
    CHECK_STR(field(&r, 0, "nieuwBsn"), "999990342");
    CHECK_STR(field(&r, 0, "oudBsn"), "999996204");
    done(&r);

    /* 84.10 onjuist: a correction, reported as such, not as a new fact */
    expect_one(&r, "gv01-correctie", "nl.brp.persoonslijst-gewijzigd");
    CHECK_STR(item(&r, 0, "herkomst.rubrieken", 0), "01.03.10");
    CHECK_STR(item(&r, 0, "herkomst.rubrieken", 1), "01.84.10");
    CHECK_STR(item(&r, 0, "categorieen", 0), "01");
    done(&r);

    expect_one(&r, "gv01-opschorting", "nl.brp.bijhouding-opgeschort");
    CHECK_STR(field(&r, 0, "redenOpschorting"), "O");
    done(&r);

    expect_one(&r, "gv01-naamgebruik", "nl.brp.persoonslijst-gewijzigd");
    CHECK_INT(number(&r, 0, "herkomst.rubrieken", 'n'), 1);
    CHECK_STR(item(&r, 0, "herkomst.rubrieken", 0), "01.61.10");
    done(&r);

    expect_one(&r, "ng01-afgevoerd", "nl.brp.persoonslijst-afgevoerd");
    CHECK_STR(field(&r, 0, "volgendANummer"), "8919258058");
    CHECK_STR(field(&r, 0, "redenOpschorting"), "F");
    done(&r);

    expect_one(&r, "wa11-anummer", "nl.brp.anummer-gewijzigd");
    CHECK_STR(field(&r, 0, "nieuwANummer"), "1839305202");
    CHECK_STR(field(&r, 0, "datumGeldigheid"), "20240601");
    done(&r);

    /* one message, several stapels: name event + generic for 04 and 08.11.20
     * (a house number alone is a move within the municipality) */
    derive("gv01-multi", &r);
    CHECK_INT(r.err, KB_OK);
    CHECK_INT(r.n, 3);
    if (r.n == 3) {
        CHECK_STR(r.evs[0].attrs.type, "nl.brp.naam-gewijzigd");
        CHECK_STR(r.evs[1].attrs.type, "nl.brp.persoon-verhuisd");
        CHECK_STR(r.evs[2].attrs.type, "nl.brp.persoonslijst-gewijzigd");
        CHECK_STR(item(&r, 2, "herkomst.rubrieken", 0), "04.05.10");
        CHECK_STR(item(&r, 2, "herkomst.rubrieken", 1), "04.63.10");
        /* same subject key for every event of one PL: per-person order */
        CHECK_STR(r.evs[0].key, r.evs[2].key);
        CHECK(strcmp(r.evs[0].attrs.id, r.evs[1].attrs.id) != 0);
    }
    done(&r);
}

static void test_checks(void)
{
    struct result r, r2;
    /* an invalid A-nummer is a warning that travels on the event */
    derive("gv01-anummer-warning", &r);
    CHECK_INT(r.err, KB_OK);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.n ? r.evs[0].attrs.type : "", "nl.brp.kind-toegevoegd");
    CHECK_INT(number(&r, 0, "herkomst.waarschuwingen", 'n'), 1);
    CHECK_STR(item(&r, 0, "herkomst.waarschuwingen", 0), "09.01.10/anummer");
    /* the schema checks kind.aNummer, so the failing value is not published */
    CHECK_STR(field(&r, 0, "kind.aNummer"), "");
    CHECK_STR(field(&r, 0, "kind.geslachtsnaam"), "Dijk");
    /* deterministic ids: the same bytes give the same events */
    derive("gv01-anummer-warning", &r2);
    CHECK_INT(r2.n, 1);
    if (r.n == 1 && r2.n == 1) {
        CHECK_STR(r.evs[0].attrs.id, r2.evs[0].attrs.id);
        CHECK(r.evs[0].len == r2.evs[0].len &&
              !memcmp(r.evs[0].value, r2.evs[0].value, r.evs[0].len));
    }
    done(&r);
    done(&r2);

    /* a letter in an N element rejects the message, naming the rubriek */
    derive("gv01-bad-n", &r);
    CHECK_INT(r.err, KB_ERR_INVALID);
    CHECK_INT(r.n, 0);
    CHECK_STR(r.errstr, "offset 54: 09.03.10 is numeric but holds a non-digit");
    done(&r);
}

int main(void)
{
    const char *src = getenv("KB_SOURCE_DIR");
    char dir[1200], errstr[512] = "";
    snprintf(src_dir, sizeof src_dir, "%s", src ? src : ".");
    snprintf(dir, sizeof dir, "%s/schemas", src_dir);
    schemas = kb_schemas_load_dir(dir, errstr, sizeof errstr);
    CHECK(schemas != NULL);
    if (!schemas) {
        fprintf(stderr, "schemas: %s\n", errstr);
        KB_TEST_DONE();
    }
    test_events();
    test_checks();
    kb_schemas_destroy(schemas);
    KB_TEST_DONE();
}
