/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_validate.c - differential libFuzzer target for the validator. Input:
 * byte 0 selects a schema (the birth event, or a structure schema with every
 * Avro type), the rest is the datum. Checks:
 *  - every SIMD path gives the same verdict, rule, path and offset;
 *  - a datum accepted by the full validator is accepted in structure-only
 *    mode, and avro-c decodes it consuming exactly all bytes;
 *  - a datum accepted in structure-only mode (with limits no larger than the
 *    input, so avro-c cannot be made to allocate or loop without bound) is
 *    decoded by avro-c; where avro-c refuses, the validator must not accept.
 *  - projecting an accepted birth event never fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "ketenbus/validate.h"

static const char *const schema_texts[] = {
    /* The person part of schemas/brp/persoon-geboren.avsc with all its kb.*
     * rules, frozen here so the corpus keeps its meaning as schemas evolve. */
    "{\"type\":\"record\",\"name\":\"Geboren\",\"namespace\":\"fuzz\",\"fields\":["
    "{\"name\":\"kind\",\"type\":{\"type\":\"record\",\"name\":\"Persoon\",\"fields\":["
    "{\"name\":\"aNummer\",\"type\":[\"null\",\"string\"],\"kb.check\":\"anummer\"},"
    "{\"name\":\"bsn\",\"type\":[\"null\",\"string\"],\"kb.check\":\"bsn\"},"
    "{\"name\":\"voornamen\",\"type\":[\"null\",\"string\"],\"kb.maxLength\":200},"
    "{\"name\":\"geboortedatum\",\"type\":[\"null\",\"string\"],\"kb.format\":\"gba-datum\"},"
    "{\"name\":\"geboorteland\",\"type\":[\"null\",\"string\"],\"kb.pattern\":\"[0-9]{4}\"},"
    "{\"name\":\"postcode\",\"type\":[\"null\",\"string\"],"
    "\"kb.pattern\":\"[1-9][0-9]{3}[A-Z]{2}\"},"
    "{\"name\":\"geslacht\",\"type\":[\"null\",\"string\"],\"kb.allowed\":[\"M\",\"V\",\"O\"]}]}},"
    "{\"name\":\"ouders\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
    "\"name\":\"Ouder\",\"fields\":[{\"name\":\"ouderNummer\",\"type\":\"int\","
    "\"kb.minimum\":1,\"kb.maximum\":2},{\"name\":\"persoon\",\"type\":\"Persoon\"}]}}},"
    "{\"name\":\"akte\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Akte\","
    "\"fields\":[{\"name\":\"registergemeente\",\"type\":\"string\","
    "\"kb.pattern\":\"[0-9]{4}\"},{\"name\":\"aktenummer\",\"type\":\"string\"}]}]}]}",
    "{\"type\":\"record\",\"name\":\"S\",\"fields\":["
    "{\"name\":\"b\",\"type\":\"boolean\"},{\"name\":\"i\",\"type\":\"int\"},"
    "{\"name\":\"l\",\"type\":\"long\"},{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"d\",\"type\":\"double\"},{\"name\":\"by\",\"type\":\"bytes\"},"
    "{\"name\":\"s\",\"type\":[\"null\",\"string\",\"long\"]},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},"
    "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"X\",\"size\":3}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":[\"null\",\"string\"]}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}}]}",
};
#define N_SCHEMAS 2

static const char *const paths[] = {"scalar", "sse42", "avx2"};
#define N_PATHS 3

static kb_validator_t *full[N_SCHEMAS][N_PATHS];
static kb_validator_t *structure[N_SCHEMAS];
static avro_value_iface_t *iface[N_SCHEMAS];
static avro_schema_t avro_schemas[N_SCHEMAS];
static kb_projection_t *proj;

static void init(void)
{
    char err[256];
    for (int s = 0; s < N_SCHEMAS; s++) {
        const char *text = schema_texts[s];
        for (int p = 0; p < N_PATHS; p++) {
            struct kb_validate_opts o = {.simd = paths[p], .max_string = 4096, .max_items = 4096};
            if (kb_validate_simd_usable(paths[p]))
                full[s][p] = kb_validate_compile(text, &o, err, sizeof err);
        }
        struct kb_validate_opts so = {.simd = "scalar", .structure_only = 1,
                                      .max_string = 4096, .max_items = 4096};
        structure[s] = kb_validate_compile(text, &so, err, sizeof err);
        if (!full[s][0] || !structure[s] ||
            avro_schema_from_json_length(text, strlen(text), &avro_schemas[s]))
            abort();
        iface[s] = avro_generic_class_from_schema(avro_schemas[s]);
    }
    const char *fields[] = {"kind.bsn", "ouders", "akte.registergemeente"};
    const char *pseudo[] = {"kind.bsn", "ouders.persoon.bsn"};
    proj = kb_projection_new(full[0][0], fields, 3, pseudo, 2, (const uint8_t *)"k", 1,
                             "fuzz.P", err, sizeof err);
    if (!proj)
        abort();
}

static int avro_decodes(int s, const uint8_t *p, size_t len)
{
    avro_value_t v;
    avro_generic_value_new(iface[s], &v);
    avro_reader_t r = avro_reader_memory((const char *)p, (int64_t)len);
    int rc = avro_value_read(r, &v);
    char extra;
    int exact = rc == 0 && avro_read(r, &extra, 1) != 0;
    avro_reader_free(r);
    avro_value_decref(&v);
    return exact;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    if (size < 1)
        return 0;
    int s = data[0] % N_SCHEMAS;
    const uint8_t *p = data + 1;
    size_t len = size - 1;

    struct kb_validate_result r0, r;
    kb_err_t v0 = kb_validate(full[s][0], p, len, &r0);
    for (int i = 1; i < N_PATHS; i++) {
        if (!full[s][i])
            continue;
        kb_err_t vi = kb_validate(full[s][i], p, len, &r);
        if (vi != v0 || (vi && (strcmp(r.rule, r0.rule) || strcmp(r.path, r0.path) ||
                                r.offset != r0.offset))) {
            fprintf(stderr, "SIMD path %s disagrees with scalar\n", paths[i]);
            abort();
        }
    }
    kb_err_t vs = kb_validate(structure[s], p, len, &r);
    if (v0 == KB_OK && vs != KB_OK)
        abort(); /* the full check must be stricter, never looser */
    if (vs == KB_OK && len <= 4096) {
        int ok = avro_decodes(s, p, len);
        if (!ok)
            abort(); /* accepted structure avro-c cannot read */
    }
    if (s == 0 && v0 == KB_OK) {
        uint8_t *out = NULL;
        size_t cap = 0, olen = 0;
        if (kb_projection_apply(proj, p, len, &out, &cap, &olen) != KB_OK)
            abort();
        free(out);
    }
    return 0;
}
