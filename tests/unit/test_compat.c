/* SPDX-License-Identifier: EUPL-1.2 */
/* test_compat.c - the Avro schema model and compatibility checker: a table of
 * schema-resolution cases (writer -> reader), a table of compatibility levels
 * over version histories, and a table of invalid schemas. Expected answers
 * follow the Avro specification's resolution rules, case by case. */
#include "kb_test.h"
#include "test_schema_gen.h"
#include "ketenbus/registry.h"

/* Record "R" with the given fields (JSON text of the fields array body). */
#define REC(fields) \
    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"t\",\"fields\":[" fields "]}"
#define F(name, type)       "{\"name\":\"" name "\",\"type\":" type "}"
#define FD(name, type, def) "{\"name\":\"" name "\",\"type\":" type ",\"default\":" def "}"
#define ENUM(name, syms)    "{\"type\":\"enum\",\"name\":\"" name "\",\"symbols\":[" syms "]}"
#define ENUMD(name, syms, def) \
    "{\"type\":\"enum\",\"name\":\"" name "\",\"symbols\":[" syms "],\"default\":\"" def "\"}"
#define LIST(extra)                                                                         \
    "{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"v\",\"type\":\"int\"}," \
    "{\"name\":\"next\",\"type\":[\"null\",\"Node\"],\"default\":null}" extra "]}"
#define DEC(p, s) \
    "{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":" #p ",\"scale\":" #s "}"

#define REC2 "{\"type\":\"record\",\"name\":\"N\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}"
#define REC2B                                                                            \
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}," \
    "{\"name\":\"y\",\"type\":\"int\",\"default\":7}]}"
#define REC2C                                                                            \
    "{\"type\":\"record\",\"name\":\"N\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}," \
    "{\"name\":\"y\",\"type\":\"int\"}]}"

#define V2REQ_FOR_DEFAULT REC(F("a", "\"int\"") "," F("b", "\"string\""))

struct resolve_case {
    const char *name;
    const char *writer;
    const char *reader;
    int ok;            /* reader can read writer's data */
    const char *where; /* expected substring of the reason when !ok (NULL: any) */
};

static const struct resolve_case resolve_cases[] = {
    /* primitives and promotions */
    {"int-int", "\"int\"", "\"int\"", 1, NULL},
    {"int-long", "\"int\"", "\"long\"", 1, NULL},
    {"int-float", "\"int\"", "\"float\"", 1, NULL},
    {"int-double", "\"int\"", "\"double\"", 1, NULL},
    {"long-float", "\"long\"", "\"float\"", 1, NULL},
    {"long-double", "\"long\"", "\"double\"", 1, NULL},
    {"float-double", "\"float\"", "\"double\"", 1, NULL},
    {"long-int", "\"long\"", "\"int\"", 0, "TYPE_MISMATCH"},
    {"double-float", "\"double\"", "\"float\"", 0, "TYPE_MISMATCH"},
    {"float-long", "\"float\"", "\"long\"", 0, "TYPE_MISMATCH"},
    {"string-bytes", "\"string\"", "\"bytes\"", 1, NULL},
    {"bytes-string", "\"bytes\"", "\"string\"", 1, NULL},
    {"string-int", "\"string\"", "\"int\"", 0, "TYPE_MISMATCH"},
    {"null-null", "\"null\"", "\"null\"", 1, NULL},
    {"boolean-int", "\"boolean\"", "\"int\"", 0, "TYPE_MISMATCH"},
    {"record-string", REC(F("a", "\"int\"")), "\"string\"", 0, "TYPE_MISMATCH"},
    /* records */
    {"rec-same", REC(F("a", "\"int\"")), REC(F("a", "\"int\"")), 1, NULL},
    {"rec-add-default", REC(F("a", "\"int\"")),
     REC(F("a", "\"int\"") "," FD("b", "\"string\"", "\"x\"")), 1, NULL},
    {"rec-add-nodefault", REC(F("a", "\"int\"")), REC(F("a", "\"int\"") "," F("b", "\"string\"")),
     0, "/fields/b"},
    {"rec-add-optional", REC(F("a", "\"int\"")),
     REC(F("a", "\"int\"") "," FD("b", "[\"null\",\"string\"]", "null")), 1, NULL},
    {"rec-remove-field", REC(F("a", "\"int\"") "," F("b", "\"string\"")), REC(F("a", "\"int\"")), 1,
     NULL},
    {"rec-rename-alias", REC(F("a", "\"int\"")),
     REC("{\"name\":\"z\",\"type\":\"int\",\"aliases\":[\"a\"]}"), 1, NULL},
    {"rec-rename-noalias", REC(F("a", "\"int\"")), REC(F("z", "\"int\"")), 0,
     "READER_FIELD_MISSING_DEFAULT_VALUE"},
    {"rec-writer-alias-ignored", REC("{\"name\":\"z\",\"type\":\"int\",\"aliases\":[\"a\"]}"),
     REC(F("a", "\"int\"")), 0, "/fields/a"},
    {"rec-field-promote", REC(F("a", "\"int\"")), REC(F("a", "\"long\"")), 1, NULL},
    {"rec-field-narrow", REC(F("a", "\"long\"")), REC(F("a", "\"int\"")), 0, "/fields/a"},
    {"rec-name-change", REC(F("a", "\"int\"")),
     "{\"type\":\"record\",\"name\":\"S\",\"namespace\":\"t\",\"fields\":[{\"name\":\"a\",\"type\":"
     "\"int\"}]}",
     0, "NAME_MISMATCH"},
    {"rec-name-alias", REC(F("a", "\"int\"")),
     "{\"type\":\"record\",\"name\":\"S\",\"namespace\":\"t\",\"aliases\":[\"R\"],\"fields\":[{"
     "\"name\":\"a\",\"type\":\"int\"}]}",
     1, NULL},
    {"rec-name-alias-other-ns", REC(F("a", "\"int\"")),
     "{\"type\":\"record\",\"name\":\"S\",\"namespace\":\"u\",\"aliases\":[\"t.R\"],\"fields\":[{"
     "\"name\":\"a\",\"type\":\"int\"}]}",
     1, NULL},
    {"rec-namespace-change", REC(F("a", "\"int\"")),
     "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"u\",\"fields\":[{\"name\":\"a\",\"type\":"
     "\"int\"}]}",
     1, NULL},
    {"rec-nested-add-default", REC(F("n", REC2)), REC(F("n", REC2B)), 1, NULL},
    {"rec-nested-add-nodefault", REC(F("n", REC2)), REC(F("n", REC2C)), 0, "/fields/n/fields/y"},
    {"rec-field-to-optional", REC(F("a", "\"string\"")),
     REC(FD("a", "[\"null\",\"string\"]", "null")), 1, NULL},
    {"rec-optional-to-required", REC(FD("a", "[\"null\",\"string\"]", "null")),
     REC(F("a", "\"string\"")), 0, "/fields/a"},
    /* enums */
    {"enum-same", ENUM("E", "\"A\",\"B\""), ENUM("E", "\"A\",\"B\""), 1, NULL},
    {"enum-add-symbol", ENUM("E", "\"A\",\"B\""), ENUM("E", "\"A\",\"B\",\"C\""), 1, NULL},
    {"enum-remove-symbol", ENUM("E", "\"A\",\"B\""), ENUM("E", "\"A\""), 0, "MISSING_ENUM_SYMBOLS"},
    {"enum-remove-with-default", ENUM("E", "\"A\",\"B\""), ENUMD("E", "\"A\",\"U\"", "U"), 1, NULL},
    {"enum-reorder", ENUM("E", "\"A\",\"B\""), ENUM("E", "\"B\",\"A\""), 1, NULL},
    {"enum-name-change", ENUM("E", "\"A\""), ENUM("F", "\"A\""), 0, "NAME_MISMATCH"},
    {"enum-name-alias", ENUM("E", "\"A\""),
     "{\"type\":\"enum\",\"name\":\"F\",\"aliases\":[\"E\"],\"symbols\":[\"A\"]}", 1, NULL},
    {"enum-in-record", REC(F("e", ENUM("E", "\"A\",\"B\""))), REC(F("e", ENUM("E", "\"A\""))), 0,
     "/fields/e"},
    /* arrays and maps */
    {"array-promote", "{\"type\":\"array\",\"items\":\"int\"}",
     "{\"type\":\"array\",\"items\":\"long\"}", 1, NULL},
    {"array-narrow", "{\"type\":\"array\",\"items\":\"long\"}",
     "{\"type\":\"array\",\"items\":\"int\"}", 0, "/items"},
    {"map-promote", "{\"type\":\"map\",\"values\":\"int\"}",
     "{\"type\":\"map\",\"values\":\"long\"}", 1, NULL},
    {"map-vs-array", "{\"type\":\"map\",\"values\":\"string\"}",
     "{\"type\":\"array\",\"items\":\"string\"}", 0, "TYPE_MISMATCH"},
    {"map-enum-shrink", "{\"type\":\"map\",\"values\":" ENUM("E", "\"A\",\"B\"") "}",
     "{\"type\":\"map\",\"values\":" ENUM("E", "\"A\"") "}", 0, "/values"},
    {"array-of-records-evolve", "{\"type\":\"array\",\"items\":" REC(F("a", "\"int\"")) "}",
     "{\"type\":\"array\",\"items\":" REC(F("a", "\"int\"") "," FD("b", "\"int\"", "0")) "}", 1,
     NULL},
    /* fixed */
    {"fixed-same", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":4}",
     "{\"type\":\"fixed\",\"name\":\"X\",\"size\":4}", 1, NULL},
    {"fixed-size", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":4}",
     "{\"type\":\"fixed\",\"name\":\"X\",\"size\":8}", 0, "FIXED_SIZE_MISMATCH"},
    {"fixed-name", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":4}",
     "{\"type\":\"fixed\",\"name\":\"Y\",\"size\":4}", 0, "NAME_MISMATCH"},
    /* unions */
    {"union-same", "[\"null\",\"string\"]", "[\"null\",\"string\"]", 1, NULL},
    {"union-reorder", "[\"null\",\"string\"]", "[\"string\",\"null\"]", 1, NULL},
    {"plain-to-union", "\"string\"", "[\"null\",\"string\"]", 1, NULL},
    {"union-to-plain", "[\"null\",\"string\"]", "\"string\"", 0, "writer-branch-0"},
    {"union-promote-branch", "[\"int\",\"string\"]", "[\"long\",\"string\"]", 1, NULL},
    {"union-branch-mismatch", "[\"null\",\"int\"]", "[\"null\",\"string\"]", 0,
     "MISSING_UNION_BRANCH"},
    {"int-to-union-long", "\"int\"", "[\"null\",\"long\"]", 1, NULL},
    {"union-add-branch", "[\"null\",\"string\"]", "[\"null\",\"string\",\"int\"]", 1, NULL},
    {"union-remove-branch", "[\"null\",\"string\",\"int\"]", "[\"null\",\"string\"]", 0,
     "writer-branch-2"},
    {"union-record-to-record", "[\"null\"," REC(F("a", "\"int\"")) "]", REC(F("a", "\"int\"")), 0,
     NULL},
    {"record-to-union-record", REC(F("a", "\"int\"")), "[\"null\"," REC(F("a", "\"int\"")) "]", 1,
     NULL},
    {"union-enum-grow", "[\"null\"," ENUM("E", "\"A\"") "]",
     "[\"null\"," ENUM("E", "\"A\",\"B\"") "]", 1, NULL},
    /* recursion */
    {"recursive-same", LIST(""), LIST(""), 1, NULL},
    {"recursive-add-optional", LIST(""),
     LIST(",{\"name\":\"w\",\"type\":\"string\",\"default\":\"\"}"), 1, NULL},
    {"recursive-add-required", LIST(""), LIST(",{\"name\":\"w\",\"type\":\"string\"}"), 0,
     "/fields/w"},
    /* logical types */
    {"date-date", "{\"type\":\"int\",\"logicalType\":\"date\"}",
     "{\"type\":\"int\",\"logicalType\":\"date\"}", 1, NULL},
    {"ts-millis-micros", "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}",
     "{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}", 0, "logical type"},
    {"int-to-date", "\"int\"", "{\"type\":\"int\",\"logicalType\":\"date\"}", 0, "logical type"},
    {"ts-to-long", "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", "\"long\"", 0,
     "logical type"},
    {"date-to-long", "{\"type\":\"int\",\"logicalType\":\"date\"}", "\"long\"", 0, "logical type"},
    {"decimal-wider", DEC(10, 2), DEC(12, 2), 1, NULL},
    {"decimal-scale", DEC(10, 2), DEC(10, 3), 0, "scale"},
    {"decimal-narrower", DEC(12, 2), DEC(10, 2), 0, "precision"},
    {"invalid-logical-ignored", "{\"type\":\"string\",\"logicalType\":\"date\"}", "\"string\"", 1,
     NULL},
    {"uuid-to-string", "{\"type\":\"string\",\"logicalType\":\"uuid\"}", "\"string\"", 0,
     "logical type"},
    {"ts-in-record", REC(F("t", "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}")),
     REC(F("t", "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}") "," FD(
         "u", "{\"type\":\"int\",\"logicalType\":\"date\"}", "0")),
     1, NULL},
};

/* Version histories: versions oldest first, then the candidate. */
struct level_case {
    const char *name;
    enum kb_compat level;
    const char *versions[3];
    size_t n;
    const char *candidate;
    int ok;
};

#define V1    REC(F("a", "\"int\""))
#define V2    REC(F("a", "\"int\"") "," FD("b", "\"string\"", "\"x\""))
#define V2REQ REC(F("a", "\"int\"") "," F("b", "\"string\""))
#define V3    REC(F("a", "\"long\"") "," FD("b", "\"string\"", "\"x\""))

static const struct level_case level_cases[] = {
    {"none-anything", KB_COMPAT_NONE, {V1}, 1, "\"string\"", 1},
    {"no-versions", KB_COMPAT_FULL_TRANSITIVE, {NULL}, 0, V2REQ, 1},
    {"backward-add-required", KB_COMPAT_BACKWARD, {V1}, 1, V2REQ, 0},
    {"backward-add-default", KB_COMPAT_BACKWARD, {V1}, 1, V2, 1},
    {"backward-remove-field", KB_COMPAT_BACKWARD, {V2REQ}, 1, V1, 1},
    {"forward-add-required", KB_COMPAT_FORWARD, {V1}, 1, V2REQ, 1},
    {"forward-remove-required", KB_COMPAT_FORWARD, {V2REQ}, 1, V1, 0},
    {"forward-remove-defaulted", KB_COMPAT_FORWARD, {V2}, 1, V1, 1},
    {"forward-widen", KB_COMPAT_FORWARD, {V2}, 1, V3, 0},
    {"backward-widen", KB_COMPAT_BACKWARD, {V2}, 1, V3, 1},
    {"full-add-default", KB_COMPAT_FULL, {V1}, 1, V2, 1},
    {"full-add-required", KB_COMPAT_FULL, {V1}, 1, V2REQ, 0},
    {"full-widen", KB_COMPAT_FULL, {V2}, 1, V3, 0},
    /* v1 {a}, v2 {a, b="x"}: a required b reads v2's data but not v1's */
    {"backward-only-latest", KB_COMPAT_BACKWARD, {V1, V2}, 2, V2REQ, 1},
    {"backward-transitive", KB_COMPAT_BACKWARD_TRANSITIVE, {V1, V2}, 2, V2REQ, 0},
    /* v1 {a, b required}, v2 {a, b="x"}: dropping b is fine for v2 readers only */
    {"forward-only-latest", KB_COMPAT_FORWARD, {V2REQ, V2}, 2, V1, 1},
    {"forward-transitive", KB_COMPAT_FORWARD_TRANSITIVE, {V2REQ, V2}, 2, V1, 0},
    {"full-transitive-ok",
     KB_COMPAT_FULL_TRANSITIVE,
     {V1, V2},
     2,
     REC(F("a", "\"int\"") "," FD("b", "\"string\"", "\"x\"") "," FD("c", "\"int\"", "1")),
     1},
    {"full-only-latest", KB_COMPAT_FULL, {V2REQ, V2}, 2, V1, 1},
    {"full-transitive-bad", KB_COMPAT_FULL_TRANSITIVE, {V2REQ, V2}, 2, V1, 0},
};

struct invalid_case {
    const char *name;
    const char *schema;
    const char *why; /* expected substring of the error */
};

static const struct invalid_case invalid_cases[] = {
    {"not-json", "{\"type\":", "not JSON"},
    {"unknown-ref", REC(F("a", "\"Nope\"")), "unknown type"},
    {"dup-field", REC(F("a", "\"int\"") "," F("a", "\"long\"")), "twice"},
    {"dup-type", REC(F("a", REC2) "," F("b", REC2)), "defined twice"},
    {"union-in-union", "[\"null\",[\"int\"]]", "union"},
    {"dup-union-branch", "[\"string\",\"string\"]", "two branches"},
    {"bad-default", REC(FD("a", "\"int\"", "\"x\"")), "default"},
    {"int-default-range", REC(FD("a", "\"int\"", "4294967296")), "default"},
    {"union-default-not-first", REC(FD("a", "[\"null\",\"string\"]", "\"x\"")), "first branch"},
    {"enum-default-unknown", ENUMD("E", "\"A\"", "B"), "enum default"},
    {"enum-dup-symbol", ENUM("E", "\"A\",\"A\""), "twice"},
    {"enum-bad-symbol", ENUM("E", "\"1A\""), "not a valid name"},
    {"fixed-no-size", "{\"type\":\"fixed\",\"name\":\"X\"}", "size"},
    {"bad-name", "{\"type\":\"record\",\"name\":\"1R\",\"fields\":[]}", "invalid name"},
    {"no-fields", "{\"type\":\"record\",\"name\":\"R\"}", "fields"},
    {"primitive-name", "{\"type\":\"record\",\"name\":\"int\",\"fields\":[]}", "may not be called"},
    {"empty-union", "[]", "empty union"},
    {"bad-type", "42", "not a schema"},
    {"array-no-items", "{\"type\":\"array\"}", "items"},
    {"field-no-type", REC("{\"name\":\"a\"}"), "/fields/a"},
    {"fixed-default-len", REC(FD("f", "{\"type\":\"fixed\",\"name\":\"X\",\"size\":2}", "\"abc\"")),
     "default"},
    {"record-default-missing-field", REC(FD("n", REC2, "{}")), "default"},
    {"dup-json-key", "{\"type\":\"int\",\"type\":\"long\"}", "not JSON"},
};

static kb_avsc_t *parse(const char *text)
{
    char err[512];
    kb_avsc_t *s = kb_avsc_parse(text, strlen(text), err, sizeof err);
    if (!s)
        fprintf(stderr, "parse failed: %s\n  schema: %s\n", err, text);
    return s;
}

/* The check of hostile shapes: a DAG of records is checked once per
 * (reader, writer) pair, not once per path; what is still too much work is
 * refused with KB_ERR_RANGE, quickly. */
static void costly_checks(void)
{
    static const char *const extras[] = {
        ",{\"name\":\"z\",\"type\":\"int\",\"default\":0}", /* compatible */
        ",{\"name\":\"z\",\"type\":\"int\"}",               /* a new required field */
    };
    for (int u = 0; u < 2; u++) {
        char *v1 = dag(60, u, "");
        kb_avsc_t *old = parse(v1);
        CHECK(old != NULL);
        for (int e = 0; e < 2 && old; e++) {
            char *v2 = dag(60, u, extras[e]), why[1024];
            kb_avsc_t *cand = parse(v2);
            CHECK(cand != NULL);
            const kb_avsc_t *vs[1] = {old};
            double t0 = kb_test_now_s();
            kb_err_t err =
                cand ? kb_compat_check(KB_COMPAT_FULL_TRANSITIVE, cand, vs, 1, why, sizeof why)
                     : KB_ERR_SCHEMA;
            double dt = kb_test_now_s() - t0;
            if (dt > 2)
                fprintf(stderr, "dag(60, %d) took %.1f s\n", u, dt);
            CHECK(dt < 2);
            /* FULL: z with a default is fine both ways; without, not backward */
            CHECK_INT(err, e == 0 ? KB_OK : KB_ERR_SCHEMA);
            if (e == 1)
                CHECK(strstr(why, "/fields/z") != NULL);
            kb_avsc_destroy(cand);
            free(v2);
        }
        kb_avsc_destroy(old);
        free(v1);
    }

    char *w1 = wide(6000, 0), *w2 = wide(6000, 1), why[1024];
    kb_avsc_t *a = parse(w1), *b = parse(w2);
    CHECK(a && b);
    if (a && b) {
        const kb_avsc_t *vs[1] = {a};
        double t0 = kb_test_now_s();
        CHECK_INT(kb_compat_check(KB_COMPAT_BACKWARD, b, vs, 1, why, sizeof why), KB_ERR_RANGE);
        CHECK(strstr(why, "too complex") != NULL);
        CHECK_INT(kb_avsc_can_read(b, a, why, sizeof why), KB_ERR_RANGE);
        CHECK(strstr(why, "too complex") != NULL);
        CHECK(kb_test_now_s() - t0 < 10);
    }
    kb_avsc_destroy(a);
    kb_avsc_destroy(b);
    free(w1);
    free(w2);
    /* a thousand fields is ordinary work */
    w1 = wide(1000, 0);
    w2 = wide(1000, 1);
    a = parse(w1);
    b = parse(w2);
    CHECK(a && b && kb_avsc_can_read(b, a, why, sizeof why) == KB_OK);
    kb_avsc_destroy(a);
    kb_avsc_destroy(b);
    free(w1);
    free(w2);
}

int main(void)
{
    char why[1024];
    size_t ncases = 0;
    for (size_t i = 0; i < sizeof resolve_cases / sizeof resolve_cases[0]; i++) {
        const struct resolve_case *c = &resolve_cases[i];
        kb_avsc_t *w = parse(c->writer), *r = parse(c->reader);
        CHECK(w && r);
        if (w && r) {
            kb_err_t err = kb_avsc_can_read(r, w, why, sizeof why);
            if ((err == KB_OK) != c->ok)
                fprintf(stderr, "case %s: expected %s, got %s (%s)\n", c->name,
                        c->ok ? "compatible" : "incompatible", kb_err_str(err), why);
            CHECK_INT(err == KB_OK, c->ok);
            if (!c->ok && c->where && !strstr(why, c->where)) {
                fprintf(stderr, "case %s: reason \"%s\" lacks \"%s\"\n", c->name, why, c->where);
                CHECK(0);
            }
        }
        kb_avsc_destroy(w);
        kb_avsc_destroy(r);
        ncases++;
    }
    for (size_t i = 0; i < sizeof level_cases / sizeof level_cases[0]; i++) {
        const struct level_case *c = &level_cases[i];
        kb_avsc_t *vs[3] = {NULL, NULL, NULL};
        for (size_t k = 0; k < c->n; k++)
            vs[k] = parse(c->versions[k]);
        kb_avsc_t *cand = parse(c->candidate);
        CHECK(cand != NULL);
        kb_err_t err =
            kb_compat_check(c->level, cand, (const kb_avsc_t *const *)vs, c->n, why, sizeof why);
        if ((err == KB_OK) != c->ok)
            fprintf(stderr, "level case %s: expected %s, got %s (%s)\n", c->name,
                    c->ok ? "allowed" : "refused", kb_err_str(err), why);
        CHECK_INT(err == KB_OK, c->ok);
        if (!c->ok)
            CHECK(strstr(why, kb_compat_name(c->level)) != NULL);
        for (size_t k = 0; k < c->n; k++)
            kb_avsc_destroy(vs[k]);
        kb_avsc_destroy(cand);
        ncases++;
    }
    for (size_t i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++) {
        const struct invalid_case *c = &invalid_cases[i];
        char err[512] = "";
        kb_avsc_t *s = kb_avsc_parse(c->schema, strlen(c->schema), err, sizeof err);
        if (s || !strstr(err, c->why))
            fprintf(stderr, "invalid case %s: got \"%s\", wanted \"%s\"\n", c->name,
                    s ? "(accepted)" : err, c->why);
        CHECK(s == NULL);
        CHECK(strstr(err, c->why) != NULL);
        kb_avsc_destroy(s);
        ncases++;
    }

    /* names, level names */
    kb_avsc_t *s = parse(REC(F("a", "\"int\"")));
    CHECK_STR(kb_avsc_name(s), "t.R");
    kb_avsc_destroy(s);
    s = parse("\"string\"");
    CHECK_STR(kb_avsc_name(s), "string");
    kb_avsc_destroy(s);
    for (int l = KB_COMPAT_NONE; l <= KB_COMPAT_FULL_TRANSITIVE; l++) {
        enum kb_compat back;
        CHECK_INT(kb_compat_parse(kb_compat_name((enum kb_compat)l), &back), KB_OK);
        CHECK_INT(back, l);
    }
    enum kb_compat dummy;
    CHECK_INT(kb_compat_parse("backward", &dummy), KB_ERR_INVALID);
    /* "no choice" is not NONE: zero-initialised options mean the default */
    CHECK(KB_COMPAT_DEFAULT == 0 && KB_COMPAT_NONE != KB_COMPAT_DEFAULT);
    CHECK_INT(kb_compat_parse("NONE", &dummy), KB_OK);
    CHECK_INT(dummy, KB_COMPAT_NONE);
    CHECK_INT(kb_compat_parse("DEFAULT", &dummy), KB_ERR_INVALID);
    CHECK_STR(kb_compat_name(KB_COMPAT_DEFAULT), "BACKWARD_TRANSITIVE");
    {
        kb_avsc_t *v1 = parse(REC(F("a", "\"int\""))), *v2 = parse(V2REQ_FOR_DEFAULT);
        const kb_avsc_t *vs[1] = {v1};
        CHECK_INT(kb_compat_check(KB_COMPAT_DEFAULT, v2, vs, 1, why, sizeof why), KB_ERR_SCHEMA);
        CHECK_INT(kb_compat_check(KB_COMPAT_NONE, v2, vs, 1, why, sizeof why), KB_OK);
        kb_avsc_destroy(v1);
        kb_avsc_destroy(v2);
    }
    costly_checks();

    /* every schema of the repository parses */
    const char *files[] = {"schemas/brp/persoon-geboren.avsc", "schemas/brp/kind-toegevoegd.avsc",
                           "schemas/kinderbijslag/aanvraag-uitgenodigd.avsc"};
    const char *src = getenv("KB_SOURCE_DIR");
    for (size_t i = 0; src && i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", src, files[i]);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        if (!f)
            continue;
        char buf[65536];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        char err[512];
        kb_avsc_t *fs = kb_avsc_parse(buf, n, err, sizeof err);
        if (!fs)
            fprintf(stderr, "%s: %s\n", files[i], err);
        CHECK(fs != NULL);
        /* and is fully compatible with itself */
        if (fs)
            CHECK_INT(kb_avsc_can_read(fs, fs, why, sizeof why), KB_OK);
        kb_avsc_destroy(fs);
    }
    printf("%zu table cases\n", ncases);
    CHECK(ncases >= 60);
    KB_TEST_DONE();
}
