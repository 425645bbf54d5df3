/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_validate.c - the compiled validator: birth events encoded by avro-c
 * (an independent encoder) pass on every SIMD path, and each structural and
 * semantic rule rejects with the expected rule, field path and byte offset;
 * the kernels agree with each other on many generated inputs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/check.h"
#include "ketenbus/schema.h"
#include "ketenbus/validate.h"
#include "validate_internal.h"
#include "validate_kernels.h"

static const char *const paths[] = {"scalar", "sse42", "avx2"};
#define N_PATHS (sizeof paths / sizeof paths[0])

static kb_schemas_t *schemas;

/* One fictitious birth event, encoded by avro-c (framing removed). */
struct birth {
    const char *bsn, *voornamen, *geboortedatum, *geboorteland, *geslacht, *ouder2_bsn;
};

static uint8_t *encode_birth(const struct birth *b, size_t *len)
{
    const struct kb_schema *sc = kb_schemas_by_type(schemas, "nl.brp.persoon-geboren");
    avro_value_t v, arr, el;
    uint8_t *framed = NULL, *out = NULL;
    size_t flen = 0;
    char err[256];
    if (!sc || avro_generic_value_new(sc->iface, &v))
        return NULL;
    kb_value_init_nulls(&v);
    kb_value_set_string(&v, "kind.aNummer", "9010101069");
    kb_value_set_string(&v, "kind.bsn", b->bsn);
    kb_value_set_string(&v, "kind.voornamen", b->voornamen);
    kb_value_set_string(&v, "kind.geslachtsnaam", "Testpersoon");
    kb_value_set_string(&v, "kind.geboortedatum", b->geboortedatum);
    kb_value_set_string(&v, "kind.geboorteplaats", "0599");
    kb_value_set_string(&v, "kind.geboorteland", b->geboorteland);
    kb_value_set_string(&v, "kind.geslacht", b->geslacht);
    avro_value_get_by_name(&v, "ouders", &arr, NULL);
    const char *ouder_bsn[2] = {"999990019", b->ouder2_bsn};
    for (int i = 0; i < 2; i++) {
        avro_value_append(&arr, &el, NULL);
        kb_value_init_nulls(&el);
        kb_value_set_int(&el, "ouderNummer", i + 1);
        kb_value_set_string(&el, "persoon.bsn", ouder_bsn[i]);
        kb_value_set_string(&el, "persoon.voornamen", i ? "Bea" : "Anna");
        kb_value_set_string(&el, "datumFamilierechtelijkeBetrekking", "20240101");
    }
    kb_value_set_string(&v, "akte.registergemeente", "0599");
    kb_value_set_string(&v, "akte.aktenummer", "1A0001");
    kb_value_set_string(&v, "inschrijving.gemeente", "0599");
    kb_value_set_string(&v, "herkomst.berichtType", "Lg01");
    kb_value_set_string(&v, "herkomst.randomKey", "00000001");
    kb_value_set_long(&v, "herkomst.ontvangen", 1700000000000LL);
    kb_value_set_string(&v, "herkomst.sha256",
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    if (kb_schema_encode(sc, &v, &framed, &flen, err, sizeof err) == KB_OK && flen > 5) {
        out = malloc(flen - 5);
        memcpy(out, framed + 5, flen - 5);
        *len = flen - 5;
    }
    free(framed);
    avro_value_decref(&v);
    return out;
}

static const struct birth good_birth = {"999990007", "Sophie Élise", "20240229", "6030", "V",
                                        "999990020"};

/* Offset of the length varint of the string whose bytes are @p s. */
static long string_offset(const uint8_t *p, size_t len, const char *s)
{
    size_t sl = strlen(s);
    for (size_t i = 1; i + sl <= len; i++)
        if (!memcmp(p + i, s, sl) && p[i - 1] == (uint8_t)(sl << 1))
            return (long)i - 1;
    return -1;
}

static kb_validator_t *compile_path(const char *json, const char *path, uint32_t max_string,
                                    uint32_t max_items, uint32_t max_depth, const char *tables)
{
    struct kb_validate_opts o;
    memset(&o, 0, sizeof o);
    o.simd = path;
    o.max_string = max_string;
    o.max_items = max_items;
    o.max_depth = max_depth;
    o.codetable_dir = tables;
    char err[256];
    kb_validator_t *v = kb_validate_compile(json, &o, err, sizeof err);
    if (!v)
        fprintf(stderr, "compile (%s): %s\n", path, err);
    return v;
}

/* Every path must give exactly this verdict. */
static void expect(const char *json, const uint8_t *p, size_t len, const char *rule,
                   const char *path, long offset, int line)
{
    for (size_t i = 0; i < N_PATHS; i++) {
        if (!kb_validate_simd_usable(paths[i]))
            continue;
        kb_validator_t *v = compile_path(json, paths[i], 0, 0, 0, getenv("KB_TEST_TABLES"));
        CHECK(v != NULL);
        if (!v)
            return;
        struct kb_validate_result r;
        memset(&r, 0, sizeof r);
        kb_err_t rc = kb_validate(v, p, len, &r);
        if (!rule) {
            if (rc != KB_OK)
                fprintf(stderr, "line %d [%s]: rejected %s at %s offset %zu: %s\n", line,
                        paths[i], r.rule, r.path, r.offset, r.message);
            CHECK_INT(rc, KB_OK);
        } else {
            if (rc != KB_ERR_INVALID || strcmp(r.rule, rule) || strcmp(r.path, path) ||
                (offset >= 0 && (long)r.offset != offset))
                fprintf(stderr, "line %d [%s]: got rc=%d rule=%s path=%s offset=%zu (%s)\n", line,
                        paths[i], rc, rc ? r.rule : "-", rc ? r.path : "-", r.offset, r.message);
            CHECK_INT(rc, KB_ERR_INVALID);
            if (rc == KB_ERR_INVALID) {
                CHECK_STR(r.rule, rule);
                CHECK_STR(r.path, path);
                if (offset >= 0)
                    CHECK_INT(r.offset, offset);
            }
        }
        kb_validate_destroy(v);
    }
}
#define EXPECT_OK(json, p, len)                         expect(json, p, len, NULL, NULL, -1, __LINE__)
#define EXPECT_REJECT(json, p, len, rule, path, offset) expect(json, p, len, rule, path, offset, __LINE__)

static const char *birth_json(void)
{
    return kb_schemas_by_type(schemas, "nl.brp.persoon-geboren")->json;
}

static void test_all_schemas_compile(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/schemas", getenv("KB_SOURCE_DIR"));
    char err[256];
    kb_schemas_t *all = kb_schemas_load_dir(dir, err, sizeof err);
    CHECK(all != NULL);
    int n = 0;
    for (int32_t id = 1; id < 10000 && all; id++) {
        const struct kb_schema *sc = kb_schemas_by_id(all, id);
        if (!sc)
            continue;
        kb_validator_t *v = kb_validate_compile(sc->json, NULL, err, sizeof err);
        if (!v)
            fprintf(stderr, "%s: %s\n", sc->path, err);
        CHECK(v != NULL);
        kb_validate_destroy(v);
        n++;
    }
    CHECK_INT(n, (long long)kb_schemas_count(all));
    kb_schemas_destroy(all);
}

static void test_birth_events(void)
{
    size_t len;
    uint8_t *p = encode_birth(&good_birth, &len);
    CHECK(p != NULL);
    if (!p)
        return;
    EXPECT_OK(birth_json(), p, len);

    /* Structure: every proper prefix is truncated or otherwise invalid, one
     * byte more is trailing. */
    for (size_t cut = 0; cut < len; cut++) {
        kb_validator_t *v = kb_validate_compile(birth_json(), NULL, NULL, 0);
        struct kb_validate_result r;
        CHECK_INT(kb_validate(v, p, cut, &r), KB_ERR_INVALID);
        kb_validate_destroy(v);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, p, len);
    longer[len] = 0;
    EXPECT_REJECT(birth_json(), longer, len + 1, "trailing-bytes", "", (long)len);
    free(longer);

    /* Union index of kind.aNummer is byte 0: 2 is outside ["null","string"]. */
    uint8_t save = p[0];
    p[0] = 4; /* zig-zag 2 */
    EXPECT_REJECT(birth_json(), p, len, "union-index", "kind.aNummer", 0);
    p[0] = 0x80; /* continuation byte then the string length: not canonical / wrong */
    struct kb_validate_result r;
    kb_validator_t *v = kb_validate_compile(birth_json(), NULL, NULL, 0);
    CHECK_INT(kb_validate(v, p, len, &r), KB_ERR_INVALID);
    kb_validate_destroy(v);
    p[0] = save;

    /* Invalid UTF-8 inside voornamen: É is C3 89; make it C3 28. */
    long off = string_offset(p, len, "Sophie \xC3\x89lise");
    CHECK(off > 0);
    p[off + 1 + 8] = 0x28;
    EXPECT_REJECT(birth_json(), p, len, "utf8", "kind.voornamen", off);
    p[off + 1 + 8] = 0x89;
    EXPECT_OK(birth_json(), p, len);
    free(p);

    /* Semantic rules, each on its own field. */
    struct {
        struct birth b;
        const char *rule, *path, *needle;
    } cases[] = {
        {{"999990008", "Sophie", "20240229", "6030", "V", "999990020"}, "bsn-11proef", "kind.bsn",
         "999990008"},
        {{"99999000", "Sophie", "20240229", "6030", "V", "999990020"}, "bsn-11proef", "kind.bsn",
         "99999000"},
        {{"999990007", "Sophie", "20230229", "6030", "V", "999990020"}, "gba-datum",
         "kind.geboortedatum", "20230229"},
        {{"999990007", "Sophie", "20240015", "6030", "V", "999990020"}, "gba-datum",
         "kind.geboortedatum", "20240015"},
        {{"999990007", "Sophie", "20240229", "603A", "V", "999990020"}, "pattern",
         "kind.geboorteland", "603A"},
        {{"999990007", "Sophie", "20240229", "60300", "V", "999990020"}, "pattern",
         "kind.geboorteland", "60300"},
        {{"999990007", "Sophie", "20240229", "6030", "X", "999990020"}, "allowed", "kind.geslacht",
         "X"},
        {{"999990007", "Sophie", "20240229", "6030", "V", "999990021"}, "bsn-11proef",
         "ouders[1].persoon.bsn", "999990021"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = encode_birth(&cases[i].b, &len);
        CHECK(p != NULL);
        if (!p)
            continue;
        EXPECT_REJECT(birth_json(), p, len, cases[i].rule, cases[i].path,
                      string_offset(p, len, cases[i].needle));
        free(p);
    }
    /* Partial GBA dates are fine. */
    struct birth partial = good_birth;
    partial.geboortedatum = "20240000";
    p = encode_birth(&partial, &len);
    EXPECT_OK(birth_json(), p, len);
    free(p);
}

/* A schema with every type and every constraint attribute. */
static const char *all_types_json =
    "{\"type\":\"record\",\"name\":\"T\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"b\",\"type\":\"boolean\"},"
    "{\"name\":\"i\",\"type\":\"int\",\"kb.minimum\":-5,\"kb.maximum\":1000},"
    "{\"name\":\"l\",\"type\":\"long\"},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"by\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":4,"
    "\"scale\":2}},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F2\",\"size\":2}},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}},"
    "{\"name\":\"pc\",\"type\":\"string\",\"kb.pattern\":\"[1-9][0-9]{3}[A-Z]{2}\"},"
    "{\"name\":\"u\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
    "{\"name\":\"tm\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"}},"
    "{\"name\":\"nm\",\"type\":\"string\",\"kb.minLength\":2,\"kb.maxLength\":4},"
    "{\"name\":\"ct\",\"type\":[\"null\",\"string\"],\"kb.codeTable\":\"land\"},"
    "{\"name\":\"dt\",\"type\":\"string\",\"kb.format\":\"datum\"},"
    "{\"name\":\"an\",\"type\":\"string\",\"kb.check\":\"anummer\"},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"int\"}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"string\"},\"kb.pattern\":\"[a-z]*\"}"
    "]}";

/* Hand-encoded datum of all_types_json, with marks at each field's start. */
struct tbuf {
    uint8_t b[512];
    size_t n;
    size_t at[17]; /* offset of field k */
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

struct tvals {
    int64_t i;
    const char *pc, *u, *nm, *ct, *dt, *an;
    int tm, e, array_negative_block, map_key_bad;
};

static void encode_t(struct tbuf *t, const struct tvals *tv)
{
    int k = 0;
    t->n = 0;
    t->at[k++] = t->n, put(t, "\x01", 1);
    t->at[k++] = t->n, put_long(t, tv->i);
    t->at[k++] = t->n, put_long(t, -1234567890123LL);
    t->at[k++] = t->n, put(t, "\x00\x00\x80\x3f", 4);
    t->at[k++] = t->n, put(t, "\x00\x00\x00\x00\x00\x00\xf0\x3f", 8);
    t->at[k++] = t->n, put_long(t, 2), put(t, "\x04\xd2", 2); /* 12.34 */
    t->at[k++] = t->n, put(t, "ab", 2);
    t->at[k++] = t->n, put_long(t, tv->e);
    t->at[k++] = t->n, put_str(t, tv->pc);
    t->at[k++] = t->n, put_str(t, tv->u);
    t->at[k++] = t->n, put_long(t, tv->tm);
    t->at[k++] = t->n, put_str(t, tv->nm);
    t->at[k++] = t->n;
    if (tv->ct)
        put_long(t, 1), put_str(t, tv->ct);
    else
        put_long(t, 0);
    t->at[k++] = t->n, put_str(t, tv->dt);
    t->at[k++] = t->n, put_str(t, tv->an);
    t->at[k++] = t->n;
    if (tv->array_negative_block) {
        put_long(t, -2), put_long(t, 2), put_long(t, 7), put_long(t, -7); /* 2 items, 2 bytes */
        put_long(t, 1), put_long(t, 300);
    } else {
        put_long(t, 3), put_long(t, 1), put_long(t, 2), put_long(t, 3);
    }
    put_long(t, 0);
    t->at[k++] = t->n;
    put_long(t, 1);
    put_str(t, tv->map_key_bad ? "\xff" : "k");
    put_str(t, "abc");
    put_long(t, 0);
}

static void test_all_types(void)
{
    char dir[] = "/tmp/kb-test-validate-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char tpath[256];
    snprintf(tpath, sizeof tpath, "%s/land.txt", dir);
    FILE *f = fopen(tpath, "w");
    fputs("# Tabel 34 (test subset)\n6030\tNederland\r\n5010\tBelgie\n\n0000\tOnbekend\n", f);
    fclose(f);
    setenv("KB_TEST_TABLES", dir, 1);

    const struct tvals good = {.i = 1000, .pc = "1234AB", .u = "123e4567-e89b-12d3-a456-426614174000",
                               .nm = "Åbc", .ct = "5010", .dt = "20240229", .an = "9010101069",
                               .tm = 86399999, .e = 2};
    struct tbuf t;
    encode_t(&t, &good);
    EXPECT_OK(all_types_json, t.b, t.n);
    struct tvals tv = good;
    tv.array_negative_block = 1;
    encode_t(&t, &tv);
    EXPECT_OK(all_types_json, t.b, t.n);
    tv.ct = NULL;
    encode_t(&t, &tv);
    EXPECT_OK(all_types_json, t.b, t.n);

#define BAD(field, val, rule, path, k)                                                           \
    do {                                                                                         \
        tv = good;                                                                               \
        tv.field = val;                                                                          \
        encode_t(&t, &tv);                                                                       \
        EXPECT_REJECT(all_types_json, t.b, t.n, rule, path, (long)t.at[k]);                      \
    } while (0)
    BAD(i, 1001, "maximum", "i", 1);
    BAD(i, -6, "minimum", "i", 1);
    BAD(i, 1LL << 31, "int-range", "i", 1);
    BAD(e, 3, "enum-index", "e", 7);
    BAD(e, -1, "enum-index", "e", 7);
    BAD(pc, "0234AB", "pattern", "pc", 8);
    BAD(pc, "1234ab", "pattern", "pc", 8);
    BAD(pc, "1234ABC", "pattern", "pc", 8);
    BAD(u, "123e4567-e89b-12d3-a456-42661417400g", "uuid", "u", 9);
    BAD(tm, 86400000, "time-range", "tm", 10);
    BAD(nm, "x", "min-length", "nm", 11);
    BAD(nm, "ÅÅÅÅÅ", "max-length", "nm", 11);
    tv = good;
    tv.ct = "9999";
    encode_t(&t, &tv); /* the failing value is the string, after the union index */
    EXPECT_REJECT(all_types_json, t.b, t.n, "code-table", "ct", (long)t.at[12] + 1);
    BAD(dt, "20240000", "datum", "dt", 13);
    BAD(an, "9010101068", "anummer", "an", 14);
    tv = good;
    tv.map_key_bad = 1;
    encode_t(&t, &tv);
    EXPECT_REJECT(all_types_json, t.b, t.n, "utf8", "m[0]", (long)t.at[16] + 1);

    /* Raw byte edits. */
    encode_t(&t, &good);
    t.b[0] = 2;
    EXPECT_REJECT(all_types_json, t.b, t.n, "boolean", "b", 0);
    encode_t(&t, &good);
    t.b[t.at[5]] = 0x01; /* decimal: negative length */
    EXPECT_REJECT(all_types_json, t.b, t.n, "length", "by", (long)t.at[5]);
    encode_t(&t, &good);
    t.b[t.at[5]] = 0x00; /* decimal with no bytes; then garbage follows, first rule wins */
    EXPECT_REJECT(all_types_json, t.b, t.n, "decimal", "by", (long)t.at[5]);
    /* A 2-item block claiming 3 bytes. */
    tv = good;
    tv.array_negative_block = 1;
    encode_t(&t, &tv);
    t.b[t.at[15] + 1] = 6;
    EXPECT_REJECT(all_types_json, t.b, t.n, "length", "a", (long)t.at[15]);
    /* Overlong varint for l: 0x80 0x00 style. */
    {
        struct tbuf o;
        encode_t(&o, &good);
        struct tbuf m;
        memcpy(m.b, o.b, o.at[2]);
        m.n = o.at[2];
        put(&m, "\x81\x00", 2); /* long 0 in two bytes with a zero last byte */
        put(&m, o.b + o.at[3], o.n - o.at[3]);
        EXPECT_REJECT(all_types_json, m.b, m.n, "varint", "l", (long)o.at[2]);
        m.n = o.at[2];
        put(&m, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10); /* beyond 64 bits */
        put(&m, o.b + o.at[3], o.n - o.at[3]);
        EXPECT_REJECT(all_types_json, m.b, m.n, "varint", "l", (long)o.at[2]);
        m.n = o.at[2];
        put(&m, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
        put(&m, o.b + o.at[3], o.n - o.at[3]);
        EXPECT_REJECT(all_types_json, m.b, m.n, "varint", "l", (long)o.at[2]);
    }

    /* Limits. */
    encode_t(&t, &good);
    kb_validator_t *v = compile_path(all_types_json, "scalar", 3, 0, 0, dir);
    struct kb_validate_result r;
    CHECK_INT(kb_validate(v, t.b, t.n, &r), KB_ERR_INVALID);
    CHECK_STR(r.rule, "max-string");
    CHECK_STR(r.path, "pc");
    kb_validate_destroy(v);
    v = compile_path(all_types_json, "scalar", 0, 2, 0, dir);
    CHECK_INT(kb_validate(v, t.b, t.n, &r), KB_ERR_INVALID);
    CHECK_STR(r.rule, "max-items");
    CHECK_STR(r.path, "a");
    kb_validate_destroy(v);

    unlink(tpath);
    rmdir(dir);
}

static void test_recursion_and_errors(void)
{
    /* A linked list: depth limit. */
    const char *list = "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"next\","
                       "\"type\":[\"null\",\"L\"]}]}";
    uint8_t buf[200];
    memset(buf, 2, 100); /* 100 x branch 1 */
    buf[100] = 0;        /* then null */
    kb_validator_t *v = compile_path(list, "scalar", 0, 0, 0, NULL);
    struct kb_validate_result r;
    CHECK_INT(kb_validate(v, buf, 101, &r), KB_ERR_INVALID);
    CHECK_STR(r.rule, "max-depth");
    CHECK(!strncmp(r.path, "next.next.next", 14));
    CHECK_INT(kb_validate(v, buf + 50, 51, &r), KB_OK);
    kb_validate_destroy(v);

    const char *bad[] = {
        "{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"a\",\"type\":\"string\","
        "\"kb.patern\":\"[0-9]\"}]}",
        "{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
        "\"kb.check\":\"bsn\"}]}",
        "{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"a\",\"type\":\"string\","
        "\"kb.pattern\":\"[0-9]*[0-9]{2}\"}]}",
        "{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"a\",\"type\":\"Nope\"}]}",
        "{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"a\",\"type\":\"string\","
        "\"kb.codeTable\":\"../etc/passwd\"}]}",
        "{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"a\",\"type\":\"string\","
        "\"kb.codeTable\":\"no-such-table\"}]}",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        v = kb_validate_compile(bad[i], NULL, err, sizeof err);
        CHECK(v == NULL);
        CHECK(err[0] != '\0');
        kb_validate_destroy(v);
    }
    struct kb_validate_opts o;
    memset(&o, 0, sizeof o);
    o.simd = "avx512";
    char err[256];
    CHECK(kb_validate_compile(list, &o, err, sizeof err) == NULL);
    CHECK(strstr(err, "avx512") != NULL);

    /* Arrays of items that take no bytes inside an array or map: refused,
     * as one 4 KB event of them cost the walker 10^8 visits; alone, and
     * arrays of anything else nested, they compile. */
    static const char *const nested_zero[] = {
        "{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":\"null\"}}",
        "{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"null\"}}",
        "{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"R\",\"fields\":["
        "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
        "\"name\":\"Z\",\"fields\":[{\"name\":\"n\",\"type\":\"null\"},"
        "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F0\",\"size\":0}}]}}}]}}",
    };
    for (size_t i = 0; i < sizeof nested_zero / sizeof nested_zero[0]; i++) {
        err[0] = '\0';
        v = kb_validate_compile(nested_zero[i], NULL, err, sizeof err);
        CHECK(v == NULL);
        CHECK(strstr(err, "items that take no bytes") != NULL);
        kb_validate_destroy(v);
    }
    static const char *const fine[] = {
        "{\"type\":\"array\",\"items\":\"null\"}",
        "{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":[\"null\",\"int\"]}}",
        "{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":\"boolean\"}}",
        "{\"type\":\"record\",\"name\":\"Leeg\",\"fields\":[]}",
    };
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        v = kb_validate_compile(fine[i], NULL, err, sizeof err);
        CHECK(v != NULL);
        kb_validate_destroy(v);
    }
}

/* The kernels of every path against the scalar ones. */
static void test_kernels_agree(void)
{
    const struct kb__validate_kernels *ref = kb__validate_kernels_get("scalar");
    uint8_t buf[256];
    uint64_t seed = 0x9E3779B97F4A7C15ull;
#define RND() (seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17, seed)
    int compared = 0;
    for (size_t pi = 1; pi < N_PATHS; pi++) {
        const struct kb__validate_kernels *k = kb__validate_kernels_get(paths[pi]);
        if (!k)
            continue;
        /* Every 1- to 3-byte sequence (and 4-byte ones with a fixed tail),
         * at the end of the buffer and with room after it. */
        for (uint32_t x = 0; x < (1u << 24); x += (x < (1u << 16) ? 1 : 97)) {
            uint8_t s[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), 0x80};
            for (size_t n = 1; n <= 4; n++) {
                memcpy(buf + 256 - n, s, n);
                memcpy(buf + 10, s, n);
                int a = ref->utf8(buf + 256 - n, n, buf + 256);
                if (a != k->utf8(buf + 256 - n, n, buf + 256) ||
                    a != k->utf8(buf + 10, n, buf + 256)) {
                    fprintf(stderr, "utf8 %s differs on %06x n=%zu\n", k->name, x, n);
                    kb_test_failures++;
                    return;
                }
            }
        }
        /* Random text: mostly ASCII with some multibyte and some garbage. */
        static const char *const pieces[] = {"a", "Z", "0", "é", "€", "😀", "\xC3", "\x80",
                                             "\xED\xA0\x80", "\xF4\x90\x80\x80", " ", "\xC0\xAF"};
        for (int iter = 0; iter < 200000; iter++) {
            size_t n = 0, want = RND() % 80;
            while (n < want) {
                const char *pc = pieces[RND() % (iter % 3 ? 3 : 12)];
                size_t l = strlen(pc);
                if (n + l > 200)
                    break;
                memcpy(buf + n, pc, l);
                n += l;
            }
            size_t start = RND() % 32;
            if (start + n > sizeof buf)
                start = 0;
            memmove(buf + start, buf, n);
            const uint8_t *limit = buf + start + n + RND() % (sizeof buf - start - n + 1);
            int a = ref->utf8(buf + start, n, limit), b = k->utf8(buf + start, n, limit);
            struct kb__cclass cls;
            memset(&cls, 0, sizeof cls);
            for (int c = 0; c < 6; c++) {
                uint8_t lo = (uint8_t)(RND() % 128), hi = (uint8_t)(lo + RND() % 20);
                for (unsigned z = lo; z <= hi && z < 128; z++) {
                    cls.bits[z >> 3] |= (uint8_t)(1u << (z & 7));
                    cls.lut_lo[z & 15] |= (uint8_t)(1u << (z >> 4));
                }
            }
            size_t sa = ref->class_span(buf + start, n, limit, &cls);
            size_t sb = k->class_span(buf + start, n, limit, &cls);
            unsigned va = ref->varint_len(buf + start, limit), vb = k->varint_len(buf + start, limit);
            if (a != b || sa != sb || va != vb) {
                fprintf(stderr, "%s differs from scalar: utf8 %d/%d span %zu/%zu varint %u/%u\n",
                        k->name, a, b, sa, sb, va, vb);
                kb_test_failures++;
                return;
            }
            compared++;
        }
        /* Varint lengths over every position of a random high-bit pattern. */
        for (int iter = 0; iter < 100000; iter++) {
            for (size_t i = 0; i < 32; i++)
                buf[i] = (uint8_t)(RND() % 4 ? 0x80 | RND() : RND() & 0x7f);
            size_t lim = RND() % 33;
            if (ref->varint_len(buf, buf + lim) != k->varint_len(buf, buf + lim)) {
                fprintf(stderr, "%s varint_len differs\n", k->name);
                kb_test_failures++;
                return;
            }
        }
    }
    kb_test_checks++;
    printf("kernels compared on %d random inputs per path pair\n", compared);
}

/* The two-byte UTF-8 word check against the byte-wise reference decoder:
 * every sequence of up to 3 bytes, then random text across word borders. */
static void test_utf8_words(void)
{
    uint8_t buf[128];
    uint64_t seed = 0x2545F4914F6CDD1Dull;
    for (uint32_t x = 0; x < (1u << 24); x++) {
        uint8_t s[3] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16)};
        size_t n = x < (1u << 8) ? 1 : x < (1u << 16) ? 2 : 3;
        memcpy(buf + sizeof buf - n, s, n);
        memcpy(buf + 3, s, n);
        int want = kb__utf8_scalar(s, n);
        if (want != kb__utf8_swar(buf + sizeof buf - n, n, buf + sizeof buf) ||
            want != kb__utf8_swar(buf + 3, n, buf + sizeof buf)) {
            fprintf(stderr, "utf8 words differ on %06x\n", x);
            kb_test_failures++;
            return;
        }
    }
    static const char *const pieces[] = {"a", " ", "é", "Ö", "\xDF\xBF", "\xC2\x80", "\xC1\xBF",
                                         "\xC3", "\x80", "\xBF", "€", "😀", "\xED\xA0\x80"};
    int valid = 0;
    for (int iter = 0; iter < 300000; iter++) {
        size_t n = 0, want = RND() % 40;
        while (n < want) {
            const char *pc = pieces[RND() % (iter % 4 ? 5 : 13)];
            size_t l = strlen(pc);
            if (n + l > 64)
                break;
            memcpy(buf + n, pc, l);
            n += l;
        }
        size_t start = RND() % 16;
        memmove(buf + start, buf, n);
        const uint8_t *limit = buf + start + n + RND() % 12;
        int a = kb__utf8_scalar(buf + start, n);
        if (a != kb__utf8_swar(buf + start, n, limit)) {
            fprintf(stderr, "utf8 words differ on random text (%zu bytes)\n", n);
            kb_test_failures++;
            return;
        }
        valid += a;
    }
    CHECK(valid > 10000 && valid < 290000); /* both verdicts were exercised */
    /* Known answers. */
    CHECK(kb__utf8_swar((const uint8_t *)"Zo\xC3\xAB de Groot-\xC3\x96zt\xC3\xBCrk", 22,
                        (const uint8_t *)"Zo\xC3\xAB de Groot-\xC3\x96zt\xC3\xBCrk" + 22));
    CHECK(!kb__utf8_swar((const uint8_t *)"abcdefg\xC3", 8, (const uint8_t *)"abcdefg\xC3" + 8));
    CHECK(!kb__utf8_swar((const uint8_t *)"abcdefgh\xA9", 9, (const uint8_t *)"abcdefgh\xA9" + 9));
    CHECK(!kb__utf8_swar((const uint8_t *)"\xC0\x80", 2, (const uint8_t *)"\xC0\x80" + 2));
}

/* The word forms of fixed patterns and small kb.allowed sets give the same
 * answer as the atom walk and the binary search they stand in for. */
static void test_word_forms(void)
{
    static const struct {
        const char *pattern;
        int fixed; /* expected: has a word form */
    } pats[] = {
        {"[0-9]{4}", 1},           {"[1-9][0-9]{3}[A-Z]{2}", 1}, {"[0-9]{9}[A-Z]", 1},
        {"[0-9]{16}", 1},          {"AB[ -~]{5}C", 1},           {"[a-z0-9][0-9]{10}", 0},
        {"[A-Z]+[0-9]*", 0},       {"[^a]{2}", 0},               {"[0-9]{17}", 0},
        {"\\\\d{2}-\\\\d{2}", 1},
    };
    const size_t n_pats = sizeof pats / sizeof pats[0];
    char json[4096];
    size_t off = (size_t)snprintf(json, sizeof json,
                                  "{\"type\":\"record\",\"name\":\"W\",\"fields\":[");
    for (size_t i = 0; i < n_pats; i++)
        off += (size_t)snprintf(json + off, sizeof json - off,
                                "{\"name\":\"p%zu\",\"type\":\"string\",\"kb.pattern\":\"%s\"},", i,
                                pats[i].pattern);
    snprintf(json + off, sizeof json - off,
             "{\"name\":\"a\",\"type\":\"string\",\"kb.allowed\":[\"M\",\"V\",\"O\",\"\",\"MV\","
             "\"12345678\"]}]}");
    static const uint8_t alphabet[] = "0123456789AZaz/:@[`{ -~\x7f\x80\xff\x01MVOBC";
    uint8_t buf[64];
    uint64_t seed = 0x853C49E6748FEA9Bull;
    for (size_t pi = 0; pi < N_PATHS; pi++) {
        if (!kb_validate_simd_usable(paths[pi]))
            continue;
        kb_validator_t *v = compile_path(json, paths[pi], 0, 0, 0, NULL);
        CHECK(v != NULL);
        if (!v)
            return;
        const struct kb__validate_kernels *k = kb__validate_kernels_get(paths[pi]);
        for (size_t f = 0; f <= n_pats; f++) {
            const struct kb__vcons *c = v->fields[f].cons;
            struct kb__vcons plain = *c;
            struct kb__vpattern pat;
            if (f < n_pats) {
                CHECK_INT(c->pattern->fixed, pats[f].fixed);
                pat = *c->pattern;
                pat.fixed = 0;
                plain.pattern = &pat;
            } else {
                CHECK_INT(c->n_allowed_words, 6);
                plain.n_allowed_words = 0;
            }
            int hits = 0;
            for (int iter = 0; iter < 20000; iter++) {
                size_t n = RND() % 20;
                for (size_t i = 0; i < n; i++)
                    buf[i] = alphabet[RND() % (sizeof alphabet - 1)];
                if (iter % 2 && f < n_pats) {
                    /* Mostly members: a string the pattern may accept. */
                    n = 0;
                    for (size_t a = 0; a < c->pattern->n && n < 40; a++) {
                        const struct kb__vatom *at = &c->pattern->atoms[a];
                        uint32_t reps = at->min + (at->max > at->min ? (uint32_t)(RND() % 3) : 0);
                        for (uint32_t r = 0; r < reps && n < 40; r++) {
                            uint8_t b;
                            do
                                b = (uint8_t)(RND() % 128);
                            while (!kb__cclass_has(&at->cls, b) && RND() % 256);
                            buf[n++] = b;
                        }
                    }
                } else if (iter % 2) {
                    static const char *const vals[] = {"M", "V", "O", "", "MV", "12345678", "W",
                                                       "123456789", "1234567", "VM"};
                    const char *val = vals[RND() % 10];
                    n = strlen(val);
                    memcpy(buf, val, n);
                }
                size_t room = n + RND() % 10;
                for (size_t i = n; i < room; i++)
                    buf[i] = (uint8_t)RND();
                int want = k->string_rule(&plain, buf, n, buf + room);
                int got = k->string_rule(c, buf, n, buf + room);
                if (want != got) {
                    fprintf(stderr, "[%s] word form of field %zu differs on %zu bytes\n",
                            paths[pi], f, n);
                    kb_test_failures++;
                    kb_validate_destroy(v);
                    return;
                }
                hits += got == VR_OK;
            }
            if (!hits)
                fprintf(stderr, "[%s] field %zu: no string accepted\n", paths[pi], f);
            CHECK(hits > 0);
        }
        /* Known answers for the postcode. */
        const struct kb__vcons *pc = v->fields[1].cons;
        CHECK_INT(k->string_rule(pc, (const uint8_t *)"1234AB", 6, (const uint8_t *)"1234AB" + 6),
                  VR_OK);
        CHECK_INT(k->string_rule(pc, (const uint8_t *)"0234AB", 6, (const uint8_t *)"0234AB" + 6),
                  VR_PATTERN);
        CHECK_INT(k->string_rule(pc, (const uint8_t *)"1234aB", 6, (const uint8_t *)"1234aB" + 6),
                  VR_PATTERN);
        CHECK_INT(k->string_rule(pc, (const uint8_t *)"1234A", 5, (const uint8_t *)"1234A" + 5),
                  VR_PATTERN);
        kb_validate_destroy(v);
    }
}

/* The word forms of the BSN, A-nummer and date rules (validate_run.h) agree
 * with check.c: every month and day 00..99 of years around the edges (0000,
 * leap and century years, 9999), and random 8-, 9- and 10-byte strings of
 * digits with the odd non-digit (bytes next to '0' and '9', high bytes). */
static void test_rules_match_check(void)
{
    static const char json[] =
        "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
        "{\"name\":\"g\",\"type\":\"string\",\"kb.format\":\"gba-datum\"},"
        "{\"name\":\"d\",\"type\":\"string\",\"kb.format\":\"datum\"},"
        "{\"name\":\"b\",\"type\":\"string\",\"kb.check\":\"bsn\"},"
        "{\"name\":\"a\",\"type\":\"string\",\"kb.check\":\"anummer\"}]}";
    static const int years[] = {0,    1,    4,    99,   100,  400,  1900,
                                1999, 2000, 2023, 2024, 2100, 9996, 9999};
    static const uint8_t odd[] = {'/', ':', 0x00, 0x20, 0x7F, 0x80, 0xB0, 0xB9, 0xBA, 0xC9, 0xFF};
    uint64_t seed = 0x2545F4914F6CDD1Dull;
    for (size_t pi = 0; pi < N_PATHS; pi++) {
        if (!kb_validate_simd_usable(paths[pi]))
            continue;
        kb_validator_t *v = compile_path(json, paths[pi], 0, 0, 0, NULL);
        CHECK(v != NULL);
        if (!v)
            return;
        const struct kb__validate_kernels *k = kb__validate_kernels_get(paths[pi]);
        const struct kb__vcons *gc = v->fields[0].cons, *dc = v->fields[1].cons;
        const struct kb__vcons *bc = v->fields[2].cons, *ac = v->fields[3].cons;
        long bad = 0, good = 0;
        char s[16];
        for (size_t yi = 0; yi < sizeof years / sizeof years[0]; yi++)
            for (int m = 0; m < 100; m++)
                for (int d = 0; d < 100; d++) {
                    snprintf(s, sizeof s, "%04d%02d%02d", years[yi], m, d);
                    const uint8_t *u = (const uint8_t *)s;
                    int g = k->string_rule(gc, u, 8, u + 8) == VR_OK;
                    int dd = k->string_rule(dc, u, 8, u + 8) == VR_OK;
                    bad += g != kb_check_gba_date(s, 8) || dd != kb_check_date(s, 8);
                    good += g;
                }
        for (long iter = 0; iter < 300000; iter++) {
            size_t n = 8 + (size_t)(RND() % 3);
            for (size_t i = 0; i < n; i++)
                s[i] = (char)('0' + RND() % 10);
            if (RND() % 4 == 0) {
                size_t at = (size_t)(RND() % n);
                s[at] = (char)odd[RND() % sizeof odd];
            }
            const uint8_t *u = (const uint8_t *)s;
            int want, got;
            if (n == 8) {
                want = kb_check_gba_date(s, n);
                got = k->string_rule(gc, u, n, u + n) == VR_OK;
            } else if (n == 9) {
                want = kb_check_bsn(s, n);
                got = k->string_rule(bc, u, n, u + n) == VR_OK;
            } else {
                want = kb_check_anummer(s, n);
                got = k->string_rule(ac, u, n, u + n) == VR_OK;
            }
            bad += want != got;
            good += got;
        }
        if (bad)
            fprintf(stderr, "[%s] %ld rule verdicts differ from check.c\n", paths[pi], bad);
        CHECK_INT(bad, 0);
        CHECK(good > 0);
        kb_validate_destroy(v);
    }
}

/* The flat program and the node walker (the two halves of kb_validate())
 * accept the same datums: every single-byte change of a birth event, with
 * the default limits and with max_string around 63 (the longest string the
 * program's roomy fast path reads, validate_run.h) and at 12, between the
 * event's name lengths. */
static void test_program_matches_walker(void)
{
    size_t len = 0;
    uint8_t *p = encode_birth(&good_birth, &len);
    CHECK(p != NULL);
    if (!p)
        return;
    static const uint8_t subst[] = {0x00, 0x01, 0x02, 0x03, 0x12, 0x14, 0x30, 0x39, 0x41,
                                    0x7F, 0x80, 0xC3, 0xE2, 0xFF};
    static const uint32_t max_strings[] = {0, 62, 63, 64, 12};
    long accepted = 0, rejected = 0;
    for (size_t run = 0; run < N_PATHS * (sizeof max_strings / sizeof max_strings[0]); run++) {
        size_t pi = run % N_PATHS;
        uint32_t max_string = max_strings[run / N_PATHS];
        if (!kb_validate_simd_usable(paths[pi]))
            continue;
        kb_validator_t *v = compile_path(birth_json(), paths[pi], max_string, 0, 0, NULL);
        CHECK(v != NULL);
        if (!v)
            break;
        /* herkomst.sha256 has 64 bytes */
        CHECK_INT(kb__validate_fast(v, p, len), max_string == 0 || max_string >= 64);
        for (size_t i = 0; i <= len; i++) {
            for (size_t k = 0; k < sizeof subst; k++) {
                uint8_t saved = i < len ? p[i] : 0;
                if (i < len)
                    p[i] = subst[k];
                size_t l = i < len ? len : len - 1 - k % 4; /* also truncations */
                struct kb_validate_result r;
                int fast = kb__validate_fast(v, p, l);
                int walk = kb__validate_walk(v, p, l, &r) == KB_OK;
                if (fast != walk) {
                    fprintf(stderr, "[%s] program %d walker %d at byte %zu = %02x\n", paths[pi],
                            fast, walk, i, subst[k]);
                    kb_test_failures++;
                    i = len + 1;
                    break;
                }
                fast ? accepted++ : rejected++;
                if (i < len)
                    p[i] = saved;
            }
        }
        kb_validate_destroy(v);
    }
    kb_test_checks++;
    CHECK(accepted > 0 && rejected > 0);
    free(p);
}

int main(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/schemas", getenv("KB_SOURCE_DIR") ? getenv("KB_SOURCE_DIR") : ".");
    char err[256];
    schemas = kb_schemas_load_dir(dir, err, sizeof err);
    if (!schemas) {
        fprintf(stderr, "schemas: %s\n", err);
        return 1;
    }
    test_all_schemas_compile();
    test_birth_events();
    test_all_types();
    test_recursion_and_errors();
    test_kernels_agree();
    test_utf8_words();
    test_word_forms();
    test_rules_match_check();
    test_program_matches_walker();
    kb_schemas_destroy(schemas);
    KB_TEST_DONE();
}
