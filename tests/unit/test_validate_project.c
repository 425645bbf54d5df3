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
    kb_schemas_destroy(schemas);
    KB_TEST_DONE();
}
