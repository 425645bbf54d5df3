/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_validate.c - differential libFuzzer target for the validator. Input:
 * byte 0 selects a schema (below 0xC0: even the birth event, odd a structure
 * schema with every Avro type; from 0xC0 a schema with the remaining string
 * kinds), the rest is the datum. Checks:
 *  - the flat program and the node walker, the two halves of kb_validate(),
 *    accept exactly the same datums (each validator, each path);
 *  - every SIMD path gives the same verdict, rule, path and offset;
 *  - a datum accepted by the full validator is accepted in structure-only
 *    mode, and avro-c decodes it consuming exactly all bytes;
 *  - a datum accepted in structure-only mode (with limits no larger than the
 *    input, so avro-c cannot be made to allocate or loop without bound) is
 *    decoded by avro-c; where avro-c refuses, the validator must not accept.
 *  - projecting an accepted birth event never fails;
 *  - on every input, birth or structure schema, the projection's flat
 *    program and its tree walk give the same result and the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "ketenbus/validate.h"
#include "validate_internal.h"

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
    /* The string kinds and numeric rules the two above do not reach: full
     * dates, uuids, variable, long and non-range patterns, allowed sets
     * searched or compared as words, length rules, rules through maps and
     * arrays, times and long ranges. */
    "{\"type\":\"record\",\"name\":\"K\",\"fields\":["
    "{\"name\":\"d\",\"type\":[\"null\",\"string\"],\"kb.format\":\"datum\"},"
    "{\"name\":\"u\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
    "{\"name\":\"p\",\"type\":\"string\",\"kb.pattern\":\"[A-Z]+[0-9]*\"},"
    "{\"name\":\"q\",\"type\":\"string\",\"kb.pattern\":\"[a-z0-9][0-9]{10}\"},"
    "{\"name\":\"r\",\"type\":\"string\",\"kb.pattern\":\"[a-cx-z]{3}\"},"
    "{\"name\":\"g\",\"type\":\"string\","
    "\"kb.allowed\":[\"alpha\",\"beta\",\"a-much-longer-value\"]},"
    "{\"name\":\"h\",\"type\":[\"string\",\"null\"],\"kb.allowed\":[\"J\",\"N\"]},"
    "{\"name\":\"k\",\"type\":\"string\",\"kb.minLength\":2,\"kb.maxLength\":5},"
    "{\"name\":\"v\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"},"
    "\"kb.minLength\":36},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"string\"},"
    "\"kb.check\":\"anummer\"},"
    "{\"name\":\"t\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"}},"
    "{\"name\":\"l\",\"type\":\"long\",\"kb.minimum\":-5,"
    "\"kb.maximum\":1000000000000},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"string\"},"
    "\"kb.format\":\"gba-datum\"}]}",
};
#define N_SCHEMAS 3

static const char *const paths[] = {"scalar", "sse42", "avx2"};
#define N_PATHS 3

static kb_validator_t *full[N_SCHEMAS][N_PATHS];
static kb_validator_t *structure[N_SCHEMAS];
static avro_value_iface_t *iface[N_SCHEMAS];
static avro_schema_t avro_schemas[N_SCHEMAS];
static kb_projection_t *proj, *proj_s;

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
    /* The structure schema: unions of three, fixed, maps and arrays with
     * block sizes, projected with a pseudonymised array of strings. */
    const char *sfields[] = {"i", "s", "x", "a", "m"};
    const char *spseudo[] = {"a"};
    proj_s = kb_projection_new(full[1][0], sfields, 5, spseudo, 1, (const uint8_t *)"k", 1,
                               "fuzz.S", err, sizeof err);
    if (!proj_s)
        abort();
}

/* The flat program and the tree walk of @p pj agree on p[0..len). */
static void projections_agree(const kb_projection_t *pj, const uint8_t *p, size_t len)
{
    uint8_t *o1 = NULL, *o2 = NULL;
    size_t c1 = 0, c2 = 0, l1 = 0, l2 = 0;
    kb_err_t e1 = kb__projection_apply_mode(pj, 1, p, len, &o1, &c1, &l1);
    kb_err_t e2 = kb__projection_apply_mode(pj, 0, p, len, &o2, &c2, &l2);
    if (e1 != e2 || (e1 == KB_OK && (l1 != l2 || memcmp(o1, o2, l1)))) {
        fprintf(stderr, "projection: flat program %d, tree walk %d\n", (int)e1, (int)e2);
        abort();
    }
    free(o1);
    free(o2);
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
    int s = data[0] < 0xC0 ? data[0] % 2 : 2 + (data[0] - 0xC0) % (N_SCHEMAS - 2);
    const uint8_t *p = data + 1;
    size_t len = size - 1;

    struct kb_validate_result r0, r;
    for (int i = 0; i <= N_PATHS; i++) {
        const kb_validator_t *v = i < N_PATHS ? full[s][i] : structure[s];
        int fast = v ? kb__validate_fast(v, p, len) : -1;
        if (fast >= 0 && fast != (kb__validate_walk(v, p, len, &r) == KB_OK)) {
            fprintf(stderr, "flat program and node walker disagree (%s)\n",
                    i < N_PATHS ? paths[i] : "structure");
            abort();
        }
    }
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
    if (s < 2)
        projections_agree(s == 0 ? proj : proj_s, p, len);
    if (s == 0 && v0 == KB_OK) {
        uint8_t *out = NULL;
        size_t cap = 0, olen = 0;
        if (kb_projection_apply(proj, p, len, &out, &cap, &olen) != KB_OK)
            abort();
        free(out);
    }
    return 0;
}
