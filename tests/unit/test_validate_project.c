/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_validate_project.c - projections: the projected bytes decode with
 * avro-c under the projected schema to exactly the selected fields, with the
 * pseudonymised strings equal to an HMAC computed here with OpenSSL, and the
 * output passes a validator compiled from the projected schema. Bad field
 * lists are refused when the projection is built.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kb_test.h"
#include "ketenbus/schema.h"
#include "ketenbus/validate.h"
#include "validate_internal.h"

static const uint8_t key[] = "subscriber-key-for-tests-only";

static void hmac_hex(const char *s, char out[65])
{
    uint8_t md[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, (int)sizeof key - 1, (const uint8_t *)s, strlen(s), md, &n);
    for (unsigned i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static uint8_t *encode_birth(kb_schemas_t *schemas, size_t *len)
{
    const struct kb_schema *sc = kb_schemas_by_type(schemas, "nl.brp.persoon-geboren");
    avro_value_t v, arr, el;
    uint8_t *framed = NULL, *out = NULL;
    size_t flen = 0;
    char err[256];
    avro_generic_value_new(sc->iface, &v);
    kb_value_init_nulls(&v);
    kb_value_set_string(&v, "kind.bsn", "999990007");
    kb_value_set_string(&v, "kind.voornamen", "Sophie");
    kb_value_set_string(&v, "kind.geslachtsnaam", "Testpersoon");
    kb_value_set_string(&v, "kind.geboortedatum", "20240229");
    avro_value_get_by_name(&v, "ouders", &arr, NULL);
    for (int i = 0; i < 2; i++) {
        avro_value_append(&arr, &el, NULL);
        kb_value_init_nulls(&el);
        kb_value_set_int(&el, "ouderNummer", i + 1);
        kb_value_set_string(&el, "persoon.bsn", i ? "999990020" : "999990019");
        kb_value_set_string(&el, "persoon.voornamen", i ? "Bea" : "Anna");
    }
    kb_value_set_string(&v, "akte.registergemeente", "0599");
    kb_value_set_string(&v, "akte.aktenummer", "1A0001");
    kb_value_set_string(&v, "inschrijving.gemeente", "0599");
    kb_value_set_string(&v, "herkomst.berichtType", "Lg01");
    kb_value_set_string(&v, "herkomst.randomKey", "1");
    kb_value_set_string(&v, "herkomst.sha256", "00");
    if (kb_schema_encode(sc, &v, &framed, &flen, err, sizeof err) == KB_OK) {
        out = malloc(flen - 5);
        memcpy(out, framed + 5, flen - 5);
        *len = flen - 5;
    }
    free(framed);
    avro_value_decref(&v);
    return out;
}

/* Decode @p p with avro-c under @p json into a fresh value. */
static int decode(const char *json, const uint8_t *p, size_t len, avro_schema_t *sc,
                  avro_value_iface_t **iface, avro_value_t *val)
{
    if (avro_schema_from_json_length(json, strlen(json), sc))
        return -1;
    *iface = avro_generic_class_from_schema(*sc);
    avro_generic_value_new(*iface, val);
    avro_reader_t r = avro_reader_memory((const char *)p, (int64_t)len);
    int rc = avro_value_read(r, val);
    /* Exactly consumed: reading one more byte must fail. */
    char extra;
    if (!rc && avro_read(r, &extra, 1) == 0)
        rc = -1;
    avro_reader_free(r);
    return rc;
}

static void get_str(avro_value_t *v, const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    kb_value_get_string(v, path, out, cap);
}

static void test_projection(kb_schemas_t *schemas)
{
    const struct kb_schema *sc = kb_schemas_by_type(schemas, "nl.brp.persoon-geboren");
    char err[256];
    kb_validator_t *v = kb_validate_compile(sc->json, NULL, err, sizeof err);
    CHECK(v != NULL);
    size_t len = 0;
    uint8_t *p = encode_birth(schemas, &len);
    CHECK(p && kb_validate(v, p, len, NULL) == KB_OK);

    const char *fields[] = {"kind.bsn", "kind.geslachtsnaam", "ouders", "akte.registergemeente"};
    const char *pseudo[] = {"kind.bsn", "ouders.persoon.bsn"};
    kb_projection_t *pj = kb_projection_new(v, fields, 4, pseudo, 2, key, sizeof key - 1,
                                            "nl.test.sub.Geboorte", err, sizeof err);
    if (!pj)
        fprintf(stderr, "projection: %s\n", err);
    CHECK(pj != NULL);
    if (!pj)
        goto out;
    uint8_t *out = NULL;
    size_t cap = 0, olen = 0;
    CHECK_INT(kb_projection_apply(pj, p, len, &out, &cap, &olen), KB_OK);

    avro_schema_t psc;
    avro_value_iface_t *iface;
    avro_value_t val;
    CHECK_INT(decode(kb_projection_schema_json(pj), out, olen, &psc, &iface, &val), 0);
    size_t n = 0;
    avro_value_get_size(&val, &n);
    CHECK_INT(n, 3); /* kind, ouders, akte */
    char s[128], want[65];
    hmac_hex("999990007", want);
    get_str(&val, "kind.bsn", s, sizeof s);
    CHECK_STR(s, want);
    get_str(&val, "kind.geslachtsnaam", s, sizeof s);
    CHECK_STR(s, "Testpersoon");
    avro_value_t kind, ouders, el;
    avro_value_get_by_name(&val, "kind", &kind, NULL);
    avro_value_get_size(&kind, &n);
    CHECK_INT(n, 2);
    avro_value_get_by_name(&val, "ouders", &ouders, NULL);
    avro_value_get_size(&ouders, &n);
    CHECK_INT(n, 2);
    avro_value_get_by_index(&ouders, 1, &el, NULL);
    hmac_hex("999990020", want);
    get_str(&el, "persoon.bsn", s, sizeof s);
    CHECK_STR(s, want);
    get_str(&el, "persoon.voornamen", s, sizeof s);
    CHECK_STR(s, "Bea");
    get_str(&val, "akte.registergemeente", s, sizeof s);
    CHECK_STR(s, "0599");
    avro_value_t akte, br;
    avro_value_get_by_name(&val, "akte", &akte, NULL);
    avro_value_get_current_branch(&akte, &br);
    avro_value_get_size(&br, &n);
    CHECK_INT(n, 1);
    avro_value_decref(&val);
    avro_value_iface_decref(iface);
    avro_schema_decref(psc);

    /* The projected schema compiles, and the output passes it. */
    kb_validator_t *pv = kb_validate_compile(kb_projection_schema_json(pj), NULL, err, sizeof err);
    CHECK(pv != NULL);
    struct kb_validate_result r;
    CHECK_INT(pv ? kb_validate(pv, out, olen, &r) : -1, KB_OK);
    kb_validate_destroy(pv);
    /* The top record has its own name. */
    CHECK(strstr(kb_projection_schema_json(pj), "\"nl.test.sub.Geboorte\"") != NULL);
    free(out);
    kb_projection_destroy(pj);

    /* A sub-field of array elements: every element keeps only that field. */
    const char *f2[] = {"ouders.persoon.voornamen", "herkomst"};
    pj = kb_projection_new(v, f2, 2, NULL, 0, key, sizeof key - 1, "nl.test.sub.Ouders", err,
                           sizeof err);
    CHECK(pj != NULL);
    out = NULL;
    cap = 0;
    CHECK_INT(pj ? kb_projection_apply(pj, p, len, &out, &cap, &olen) : -1, KB_OK);
    if (pj && !decode(kb_projection_schema_json(pj), out, olen, &psc, &iface, &val)) {
        avro_value_get_by_name(&val, "ouders", &ouders, NULL);
        avro_value_get_by_index(&ouders, 0, &el, NULL);
        avro_value_get_size(&el, &n);
        CHECK_INT(n, 1);
        get_str(&el, "persoon.voornamen", s, sizeof s);
        CHECK_STR(s, "Anna");
        get_str(&val, "herkomst.berichtType", s, sizeof s);
        CHECK_STR(s, "Lg01");
        avro_value_decref(&val);
        avro_value_iface_decref(iface);
        avro_schema_decref(psc);
    } else {
        CHECK(0);
    }
    free(out);
    kb_projection_destroy(pj);

    /* Build errors. */
    const char *bad_fields[][2] = {{"kind.nope", NULL}, {"kind.bsn.x", NULL}, {"", NULL}};
    for (size_t i = 0; i < 3; i++) {
        err[0] = '\0';
        pj = kb_projection_new(v, bad_fields[i], 1, NULL, 0, key, 4, "a.B", err, sizeof err);
        CHECK(pj == NULL && err[0]);
    }
    const char *ok_field[] = {"ouders"};
    const char *bad_pseudo[] = {"ouders.ouderNummer"};
    CHECK(kb_projection_new(v, ok_field, 1, bad_pseudo, 1, key, 4, "a.B", err, sizeof err) ==
          NULL);
    const char *unselected[] = {"kind.bsn"};
    CHECK(kb_projection_new(v, ok_field, 1, unselected, 1, key, 4, "a.B", err, sizeof err) ==
          NULL);
    /* Garbage input never crashes: invalid or garbage out. */
    pj = kb_projection_new(v, fields, 4, pseudo, 2, key, 4, "a.B", err, sizeof err);
    out = NULL;
    cap = 0;
    for (size_t cut = 0; cut < len; cut++)
        CHECK(kb_projection_apply(pj, p, cut, &out, &cap, &olen) == KB_ERR_INVALID);
    free(out);
    kb_projection_destroy(pj);
out:
    free(p);
    kb_validate_destroy(v);
}

/* ---------------------------------------------- flat program = tree walk */

struct tbuf {
    uint8_t b[512];
    size_t n;
};

static void put(struct tbuf *t, const void *p, size_t n)
{
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void put_long(struct tbuf *t, int64_t x)
{
    uint64_t u = ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
    while (u >= 0x80) {
        t->b[t->n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    t->b[t->n++] = (uint8_t)u;
}

static void put_str(struct tbuf *t, const char *s)
{
    put_long(t, (int64_t)strlen(s));
    put(t, s, strlen(s));
}

/* A schema with every kind of value a projection steps over, copies or
 * rewrites: fixed sizes, varints, unions of three, arrays with byte sizes,
 * maps of records, nullable records. */
static const char every_json[] =
    "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
    "{\"name\":\"b\",\"type\":\"boolean\"},{\"name\":\"i\",\"type\":\"int\"},"
    "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"by\",\"type\":\"bytes\"},{\"name\":\"s\",\"type\":[\"null\",\"string\",\"long\"]},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},"
    "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"X\",\"size\":3}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":[\"null\",\"string\"]}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"record\",\"name\":\"V\","
    "\"fields\":[{\"name\":\"k\",\"type\":\"string\"},{\"name\":\"n\",\"type\":\"long\"},"
    "{\"name\":\"o\",\"type\":[\"null\",\"string\"]}]}}},"
    "{\"name\":\"r\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"p\",\"type\":\"string\"},{\"name\":\"q\",\"type\":[\"null\",\"V\"]}]}]}]}";

static void encode_every(struct tbuf *t)
{
    t->n = 0;
    put(t, "\x01", 1);
    put_long(t, 5);
    put(t, "\x00\x00\x80\x3f", 4);
    put(t, "\x00\x00\x00\x00\x00\x00\xf0\x3f", 8);
    put_str(t, "xyz");
    put_long(t, 1);
    put_str(t, "hello");
    put_long(t, 1);
    put(t, "abc", 3);
    put_long(t, -2); /* a: a block of 2 with its byte size (4), then one of 1 */
    put_long(t, 4);
    put_long(t, 1);
    put_str(t, "p");
    put_long(t, 0);
    put_long(t, 1);
    put_long(t, 1);
    put_str(t, "q");
    put_long(t, 0);
    put_long(t, 2); /* m */
    put_str(t, "k1");
    put_str(t, "v1");
    put_long(t, 7);
    put_long(t, 1);
    put_str(t, "oo");
    put_str(t, "k2");
    put_str(t, "v2");
    put_long(t, -3);
    put_long(t, 0);
    put_long(t, 0);
    put_long(t, 1); /* r */
    put_str(t, "pp");
    put_long(t, 1);
    put_str(t, "z");
    put_long(t, 1);
    put_long(t, 0);
}

/* Flat program and tree walk on @p p: the same result, the same bytes. */
static int same_projection(const kb_projection_t *pj, const uint8_t *p, size_t len)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t c1 = 0, c2 = 0, l1 = 0, l2 = 0;
    kb_err_t e1 = kb__projection_apply_mode(pj, 1, p, len, &o1, &c1, &l1);
    kb_err_t e2 = kb__projection_apply_mode(pj, 0, p, len, &o2, &c2, &l2);
    int same = e1 == e2 && (e1 != KB_OK || (l1 == l2 && !memcmp(o1, o2, l1)));
    free(o1);
    free(o2);
    return same;
}

/* Every single-byte change and every truncation of @p p0: the flat program
 * and the tree walk agree. Returns the number of changes both accepted. */
static long mutations_agree(const kb_projection_t *pj, const uint8_t *p0, size_t len)
{
    static const uint8_t subst[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0A,
                                    0x30, 0x7E, 0x7F, 0x80, 0x81, 0xFF};
    uint8_t *p = malloc(len ? len : 1);
    long ok = 0;
    if (!p)
        return -1;
    memcpy(p, p0, len);
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof subst; k++) {
            p[i] = subst[k];
            if (!same_projection(pj, p, len)) {
                fprintf(stderr, "projection halves differ: byte %zu = %02x\n", i, subst[k]);
                free(p);
                return -1;
            }
            uint8_t *o = NULL;
            size_t c = 0, l = 0;
            ok += kb_projection_apply(pj, p, len, &o, &c, &l) == KB_OK;
            free(o);
        }
        p[i] = p0[i];
        if (!same_projection(pj, p, i)) {
            fprintf(stderr, "projection halves differ: cut at %zu\n", i);
            free(p);
            return -1;
        }
    }
    free(p);
    return ok;
}

static void test_flat_matches_tree(kb_schemas_t *schemas)
{
    char err[256];
    /* The birth event, with the selections of the tests above and more. */
    const struct kb_schema *sc = kb_schemas_by_type(schemas, "nl.brp.persoon-geboren");
    kb_validator_t *v = kb_validate_compile(sc->json, NULL, err, sizeof err);
    size_t len = 0;
    uint8_t *p = encode_birth(schemas, &len);
    CHECK(v && p);
    static const struct {
        const char *fields[5];
        const char *pseudo[2];
    } birth_sel[] = {
        {{"kind.bsn", "kind.geslachtsnaam", "ouders", "akte.registergemeente"},
         {"kind.bsn", "ouders.persoon.bsn"}},
        {{"ouders.persoon.voornamen", "herkomst"}, {NULL}},
        {{"kind.bsn", "kind.geboortedatum", "kind.geslacht", "ouders", "inschrijving"},
         {"kind.bsn", "ouders.persoon.bsn"}},
        {{"herkomst.rubrieken", "akte"}, {"herkomst.rubrieken", "akte.aktenummer"}},
    };
    for (size_t s = 0; v && p && s < sizeof birth_sel / sizeof birth_sel[0]; s++) {
        size_t nf = 0, np = 0;
        while (nf < 5 && birth_sel[s].fields[nf])
            nf++;
        while (np < 2 && birth_sel[s].pseudo[np])
            np++;
        kb_projection_t *pj = kb_projection_new(v, birth_sel[s].fields, nf, birth_sel[s].pseudo,
                                                np, key, sizeof key - 1, "t.P", err, sizeof err);
        CHECK(pj != NULL);
        if (!pj)
            continue;
        uint8_t *o = NULL;
        size_t c = 0, l = 0;
        CHECK(kb__projection_apply_mode(pj, 1, p, len, &o, &c, &l) == KB_OK); /* has a program */
        free(o);
        CHECK(mutations_agree(pj, p, len) > 0);
        kb_projection_destroy(pj);
    }
    kb_validate_destroy(v);
    free(p);

    /* Every kind of value. */
    v = kb_validate_compile(every_json, NULL, err, sizeof err);
    if (!v)
        fprintf(stderr, "every: %s\n", err);
    CHECK(v != NULL);
    if (!v)
        return;
    struct tbuf t;
    encode_every(&t);
    CHECK_INT(kb_validate(v, t.b, t.n, NULL), KB_OK);
    static const struct {
        const char *fields[5];
        const char *pseudo[2];
    } sel[] = {
        {{"i", "s", "a", "m.k", "r.p"}, {"a", "m.k"}},
        {{"b", "x", "m", "r"}, {"m.o", "r.p"}},
        {{"by", "e", "m.n", "r.q.o"}, {"r.q.o"}},
        {{"f", "d", "r.q"}, {NULL}},
    };
    for (size_t s = 0; s < sizeof sel / sizeof sel[0]; s++) {
        size_t nf = 0, np = 0;
        while (nf < 5 && sel[s].fields[nf])
            nf++;
        while (np < 2 && sel[s].pseudo[np])
            np++;
        kb_projection_t *pj = kb_projection_new(v, sel[s].fields, nf, sel[s].pseudo, np, key,
                                                sizeof key - 1, "t.P", err, sizeof err);
        if (!pj)
            fprintf(stderr, "selection %zu: %s\n", s, err);
        CHECK(pj != NULL);
        if (!pj)
            continue;
        uint8_t *o = NULL;
        size_t c = 0, l = 0;
        CHECK_INT(kb__projection_apply_mode(pj, 1, t.b, t.n, &o, &c, &l), KB_OK);
        /* The output is a valid datum of the projected schema. */
        kb_validator_t *pv =
            kb_validate_compile(kb_projection_schema_json(pj), NULL, err, sizeof err);
        CHECK(pv && kb_validate(pv, o, l, NULL) == KB_OK);
        kb_validate_destroy(pv);
        free(o);
        CHECK(mutations_agree(pj, t.b, t.n) > 0);
        kb_projection_destroy(pj);
    }
    kb_validate_destroy(v);
}


int main(void)
{
    char dir[4096], err[256];
    snprintf(dir, sizeof dir, "%s/schemas", getenv("KB_SOURCE_DIR") ? getenv("KB_SOURCE_DIR") : ".");
    kb_schemas_t *schemas = kb_schemas_load_dir(dir, err, sizeof err);
    if (!schemas) {
        fprintf(stderr, "schemas: %s\n", err);
        return 1;
    }
    test_projection(schemas);
    test_flat_matches_tree(schemas);
    kb_schemas_destroy(schemas);
    KB_TEST_DONE();
}
