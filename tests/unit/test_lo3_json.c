/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_lo3_json.c - the LO3 formatter and the BRP Berichten API JSON codec:
 * encode(decode(x)) == x over every fixture and every valid fuzz-corpus
 * file, a golden decode of a hand-checked message, every truncation point of
 * a valid message, and encode errors that name the JSON path.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gba/lo3.h"
#include "gba/lo3_json.h"
#include "kb_test.h"

static const char *src_dir(void)
{
    const char *s = getenv("KB_SOURCE_DIR");
    return s ? s : ".";
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Round trip one file; returns 1 when it was a valid message. */
static int round_trip_file(const char *path, int must_be_valid)
{
    size_t len = 0;
    uint8_t *buf = slurp(path, &len);
    CHECK(buf != NULL);
    if (!buf)
        return 0;
    struct kb_lo3_message msg;
    char err[512];
    int valid = kb_lo3_parse(buf, len, &msg, err, sizeof err) == KB_OK;
    kb_lo3_message_fini(&msg);
    if (must_be_valid && !valid)
        fprintf(stderr, "fixture %s does not parse: %s\n", path, err);
    if (must_be_valid)
        CHECK(valid);
    char *json = NULL;
    kb_err_t jerr = kb_lo3_to_json(buf, len, 0, &json, err, sizeof err);
    if (!valid) {
        /* not LO3: decode fails with an offset, no output */
        CHECK(jerr == KB_ERR_INVALID);
        CHECK(json == NULL);
        CHECK(strstr(err, "offset") != NULL || strstr(err, "exceeds") != NULL);
        free(buf);
        return 0;
    }
    if (jerr) {
        /* only shapes JSON cannot hold may fail, with a reason */
        fprintf(stderr, "%s: decode: %s\n", path, err);
        CHECK(strstr(err, "not representable") != NULL || strstr(err, "Teletex") != NULL);
        free(buf);
        return 0;
    }
    /* formatter alone: parse -> format is the identity */
    CHECK_INT(kb_lo3_parse(buf, len, &msg, err, sizeof err), KB_OK);
    uint8_t *direct = NULL;
    size_t dlen = 0;
    CHECK_INT(kb_lo3_format(&msg, &direct, &dlen, err, sizeof err), KB_OK);
    CHECK(dlen == len && (len == 0 || memcmp(direct, buf, len) == 0));
    free(direct);
    kb_lo3_message_fini(&msg);

    uint8_t *out = NULL;
    size_t olen = 0;
    kb_err_t eerr = kb_lo3_from_json(json, strlen(json), &out, &olen, err, sizeof err);
    if (eerr)
        fprintf(stderr, "%s: encode: %s\n", path, err);
    CHECK_INT(eerr, KB_OK);
    int same = olen == len && (len == 0 || memcmp(out, buf, len) == 0);
    if (!same)
        fprintf(stderr, "%s: encode(decode(x)) != x (%zu vs %zu bytes)\n", path, olen, len);
    CHECK(same);
    /* and the other way: decode(encode(j)) == j */
    char *json2 = NULL;
    CHECK_INT(kb_lo3_to_json(out, olen, 0, &json2, err, sizeof err), KB_OK);
    CHECK_STR(json2, json);
    free(json2);
    free(out);
    free(json);
    free(buf);
    return 1;
}

static int round_trip_dir(const char *dir, int must_be_valid)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || (must_be_valid && (l < 4 || strcmp(de->d_name + l - 4, ".lo3"))))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        n += round_trip_file(path, must_be_valid);
    }
    closedir(d);
    return n;
}

static void test_round_trip(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/gba/kinds", src_dir());
    /* 64 message kinds + the stapel/history/diacritics message */
    CHECK_INT(round_trip_dir(dir, 1), 65);
    snprintf(dir, sizeof dir, "%s/tests/fixtures/gba", src_dir());
    CHECK(round_trip_dir(dir, 1) >= 2);
    snprintf(dir, sizeof dir, "%s/tests/fixtures/gba/events", src_dir());
    round_trip_dir(dir, 1);
    snprintf(dir, sizeof dir, "%s/tests/fuzz/lo3/corpus", src_dir());
    CHECK(round_trip_dir(dir, 0) > 20);
}

/* The §1.10-style Gv01 fixture, decoded by hand from its bytes. */
static const char GV01_JSON[] =
    "{\"berichtType\":\"Gv01\",\"randomKey\":\"00000000\",\"aNummer\":\"5281301274\","
    "\"plData\":{\"c09\":[{\"e0110\":\"7194601014\",\"e0120\":\"999995303\","
    "\"e0210\":\"Sophie Marije\",\"e0230\":\"van\",\"e0240\":\"Dijk\",\"e0310\":\"20240315\","
    "\"e0320\":\"0344\",\"e0330\":\"6030\",\"e8110\":\"0344\",\"e8120\":\"1AA0123\","
    "\"e8510\":\"20240315\",\"e8610\":\"20240318\",\"historie\":[{}]}]}}";

static void test_golden(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/gba/gv01-moeder-kind-sophie.lo3", src_dir());
    size_t len = 0;
    uint8_t *buf = slurp(path, &len);
    CHECK(buf != NULL);
    char *json = NULL, err[256];
    CHECK_INT(kb_lo3_to_json(buf, len, 0, &json, err, sizeof err), KB_OK);
    json_t *got = json_loads(json ? json : "null", 0, NULL);
    json_t *want = json_loads(GV01_JSON, 0, NULL);
    CHECK(want != NULL);
    CHECK(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    free(json);
    free(buf);

    /* stapels, history, empty elements and categories, Teletex letters */
    snprintf(path, sizeof path, "%s/tests/fixtures/gba/kinds/Ag01-stapels.lo3", src_dir());
    buf = slurp(path, &len);
    CHECK_INT(kb_lo3_to_json(buf, len, 0, &json, err, sizeof err), KB_OK);
    json_t *root = json_loads(json ? json : "null", 0, NULL);
    json_t *pl = json_object_get(root, "plData");
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(pl, "c01"), 0),
                                                "e0240")),
              "\xc3\x87" "elik-M\xc3\xbc" "ller");
    json_t *hist = json_object_get(json_array_get(json_object_get(pl, "c01"), 0), "historie");
    CHECK_INT(json_array_size(hist), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(hist, 0), "e8410")), "A");
    CHECK_INT(json_object_size(json_array_get(hist, 1)), 0);
    CHECK_INT(json_array_size(json_object_get(pl, "c04")), 2);
    CHECK_INT(json_array_size(json_object_get(pl, "c05")), 2);
    CHECK_INT(json_array_size(json_object_get(pl, "c09")), 2);
    CHECK_INT(json_array_size(json_object_get(pl, "c12")), 2);
    json_t *c05b = json_array_get(json_object_get(pl, "c05"), 1);
    json_t *h55 = json_array_get(json_object_get(c05b, "historie"), 0);
    CHECK_STR(json_string_value(json_object_get(h55, "e0710")), "");
    /* Å s t r Ø m  Š i m a  Ĳ s s e l m e e r, in UTF-8 */
    CHECK_STR(json_string_value(json_object_get(c05b, "e0240")),
              "\xc3\xa5str\xc3\x98m \xc5\xa0ima \xc4\xb2sselmeer");
    json_decref(root);
    free(json);
    free(buf);

    /* header forms: rubrieken array, free text, Null */
    snprintf(path, sizeof path, "%s/tests/fixtures/gba/kinds/Hq01.lo3", src_dir());
    buf = slurp(path, &len);
    CHECK_INT(kb_lo3_to_json(buf, len, 0, &json, err, sizeof err), KB_OK);
    CHECK(json && strstr(json, "\"rubrieken\":[\"010110\",\"010120\",\"010240\"]"));
    free(json);
    free(buf);
    CHECK_INT(kb_lo3_to_json((const uint8_t *)"", 0, 0, &json, err, sizeof err), KB_OK);
    CHECK_STR(json, "{\"berichtType\":\"Null\"}");
    free(json);
}

/* Every truncation point of a valid message fails with an offset. */
static void test_truncations(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/gba/lg01-geboorte-sophie.lo3", src_dir());
    size_t len = 0;
    uint8_t *buf = slurp(path, &len);
    CHECK_INT(len, 952);
    int failed = 0;
    for (size_t cut = 1; cut < len; cut++) {
        char *json = NULL, err[256];
        uint8_t *copy = malloc(cut);
        memcpy(copy, buf, cut);
        kb_err_t e = kb_lo3_to_json(copy, cut, 0, &json, err, sizeof err);
        if (e != KB_ERR_INVALID || json || !strstr(err, "offset"))
            failed++;
        free(json);
        free(copy);
    }
    CHECK_INT(failed, 0);
    free(buf);
}

static void expect_encode_error(const char *json, const char *needle)
{
    uint8_t *out = NULL;
    size_t len = 0;
    char err[256] = "";
    kb_err_t e = kb_lo3_from_json(json, strlen(json), &out, &len, err, sizeof err);
    CHECK(e == KB_ERR_INVALID || e == KB_ERR_RANGE);
    CHECK(out == NULL);
    if (!strstr(err, needle))
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, needle);
    CHECK(strstr(err, needle) != NULL);
}

static void test_encode_errors(void)
{
    expect_encode_error("[1]", "$");
    expect_encode_error("{\"berichtType\":\"Zz99\"}", "$.berichtType");
    expect_encode_error("{\"berichtType\":\"Gv01\",\"plData\":{}}", "$.aNummer");
    expect_encode_error("{\"berichtType\":\"Gv01\",\"aNummer\":\"123\",\"plData\":{}}",
                        "$.aNummer: must be 10");
    expect_encode_error("{\"berichtType\":\"Gv01\",\"aNummer\":\"5281301274\",\"plData\":{},"
                        "\"aNumer\":\"1\"}",
                        "$: key 4 is not a field of Gv01");
    expect_encode_error("{\"berichtType\":\"Gv01\",\"aNummer\":\"5281301274\","
                        "\"plData\":{\"c09\":[{\"e0240\":\"Dijk \xe2\x82\xac" "1\"}]}}",
                        "$.plData.c09[0].e0240: character at UTF-8 byte 5");
    expect_encode_error("{\"berichtType\":\"Gv01\",\"aNummer\":\"5281301274\","
                        "\"plData\":{\"c59\":[{}]}}",
                        "$.plData: key 1 is unknown (expected c01-c49)");
    expect_encode_error("{\"berichtType\":\"Gv01\",\"aNummer\":\"5281301274\","
                        "\"plData\":{\"c09\":[{\"e240\":\"x\"}]}}",
                        "$.plData.c09[0]: key 1 is unknown");
    expect_encode_error("{\"berichtType\":\"Gv01\",\"aNummer\":\"5281301274\","
                        "\"plData\":{\"c09\":[{\"e0240\":7}]}}",
                        "must be a string");
    expect_encode_error("{\"berichtType\":\"Hq01\",\"herhaling\":\"0\",\"rubrieken\":[\"0101\"],"
                        "\"plData\":{}}",
                        "$.rubrieken[0]");
    /* an element over 999 Teletex bytes: 500 two-byte letters */
    char big[2200];
    int o = snprintf(big, sizeof big, "{\"berichtType\":\"Gv01\",\"aNummer\":\"5281301274\","
                                      "\"plData\":{\"c09\":[{\"e0240\":\"");
    for (int i = 0; i < 500; i++)
        o += snprintf(big + o, sizeof big - (size_t)o, "\xc3\xa9");
    snprintf(big + o, sizeof big - (size_t)o, "\"}]}}");
    expect_encode_error(big, "exceed 999");
    /* duplicate keys are rejected, not silently merged */
    expect_encode_error("{\"berichtType\":\"Gv01\",\"aNummer\":\"5281301274\","
                        "\"aNummer\":\"5281301274\",\"plData\":{}}",
                        "duplicate");
}

/* Lengths are counted in Teletex bytes: é is two bytes, Ø one. */
static void test_teletex_lengths(void)
{
    const char *json = "{\"berichtType\":\"Gv01\",\"randomKey\":\"12345678\",\"aNummer\":"
                       "\"5281301274\",\"plData\":{\"c09\":[{\"e0240\":\"B\xc3\xa9"
                       "\xc3\x98\"}]}}";
    uint8_t *out = NULL;
    size_t len = 0;
    char err[256];
    CHECK_INT(kb_lo3_from_json(json, strlen(json), &out, &len, err, sizeof err), KB_OK);
    /* key, type, aNummer, body 00016, cat 09011, element 0240 004 B C2 65 E9 */
    static const uint8_t want[] = "12345678Gv0152813012740001609011" "0240004B\xc2" "e\xe9";
    CHECK_INT(len, sizeof want - 1);
    CHECK(out && memcmp(out, want, sizeof want - 1) == 0);
    free(out);
}

int main(void)
{
    test_round_trip();
    test_golden();
    test_truncations();
    test_encode_errors();
    test_teletex_lengths();
    KB_TEST_DONE();
}
