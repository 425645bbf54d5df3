/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_validate_field.c - kb_validate_field (read one field from the Avro
 * bytes) against the avro-c path it replaces in filters (kb_payload_field
 * without a validator: decode, then print), on random values of every kind,
 * nullable records included: the two must give the same answer and text.
 */
#include <avro.h>

#include "kb_test.h"
#include "ketenbus/schema.h"
#include "ketenbus/validate.h"
#include "match.h"

static const char schema_json[] =
    "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
    "{\"name\":\"s\",\"type\":\"string\"},"
    "{\"name\":\"i\",\"type\":\"int\"},"
    "{\"name\":\"l\",\"type\":\"long\"},"
    "{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"b\",\"type\":\"boolean\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"AAP\",\"NOOT\",\"MIES\"]}},"
    "{\"name\":\"arr\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"n\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"N\",\"fields\":["
    "{\"name\":\"x\",\"type\":\"string\"},{\"name\":\"y\",\"type\":[\"null\",\"long\"]}]}]},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}},"
    "{\"name\":\"last\",\"type\":\"string\"}]}";

static const char *const paths[] = {"s", "i", "l", "d", "f", "b", "e", "arr", "n", "n.x", "n.y",
                                    "m", "last", "missing", "n.z", "s.x", "", "n.y.z"};

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void set_field(avro_value_t *rec, const char *name, avro_value_t *out)
{
    avro_value_get_by_name(rec, name, out, NULL);
}

int main(void)
{
    struct kb_schema schema = {.id = 1, .type = "t", .json = (char *)schema_json};
    CHECK_INT(avro_schema_from_json_length(schema_json, sizeof schema_json - 1, &schema.avro), 0);
    schema.iface = avro_generic_class_from_schema(schema.avro);
    char errstr[256];
    kb_validator_t *v = kb_validate_compile(schema_json, NULL, errstr, sizeof errstr);
    CHECK(v != NULL);
    if (!v || !schema.iface)
        KB_TEST_DONE();
    int compared = 0, found = 0, differ = 0;
    for (int round = 0; round < 500; round++) {
        avro_value_t rec, f, g, h;
        avro_generic_value_new(schema.iface, &rec);
        char s[64];
        snprintf(s, sizeof s, "waarde %llu", (unsigned long long)(rnd() % 100000));
        set_field(&rec, "s", &f);
        avro_value_set_string(&f, s);
        set_field(&rec, "i", &f);
        avro_value_set_int(&f, (int32_t)rnd());
        set_field(&rec, "l", &f);
        avro_value_set_long(&f, (int64_t)rnd());
        set_field(&rec, "d", &f);
        avro_value_set_double(&f, ((double)(int64_t)rnd()) / 3.0e7);
        set_field(&rec, "f", &f);
        avro_value_set_float(&f, (float)((double)(int32_t)rnd() / 977.0));
        set_field(&rec, "b", &f);
        avro_value_set_boolean(&f, (int)(rnd() & 1));
        set_field(&rec, "e", &f);
        avro_value_set_enum(&f, (int)(rnd() % 3));
        set_field(&rec, "arr", &f);
        for (int k = (int)(rnd() % 4); k > 0; k--) {
            avro_value_append(&f, &g, NULL);
            avro_value_set_string(&g, "x");
        }
        set_field(&rec, "n", &f);
        if (rnd() % 3) {
            avro_value_set_branch(&f, 1, &g);
            avro_value_get_by_name(&g, "x", &h, NULL);
            avro_value_set_string(&h, rnd() % 2 ? "" : "binnen");
            avro_value_get_by_name(&g, "y", &h, NULL);
            avro_value_t br;
            if (rnd() % 2)
                avro_value_set_branch(&h, 0, &br), avro_value_set_null(&br);
            else
                avro_value_set_branch(&h, 1, &br), avro_value_set_long(&br, -(int64_t)(rnd() % 1000));
        } else {
            avro_value_set_branch(&f, 0, &g);
            avro_value_set_null(&g);
        }
        set_field(&rec, "m", &f);
        for (int k = (int)(rnd() % 3); k > 0; k--) {
            char key[8];
            snprintf(key, sizeof key, "k%d", k);
            avro_value_add(&f, key, &g, NULL, NULL);
            avro_value_set_int(&g, k);
        }
        set_field(&rec, "last", &f);
        avro_value_set_string(&f, "einde");

        static char bytes[8192];
        avro_writer_t w = avro_writer_memory(bytes, sizeof bytes);
        CHECK_INT(avro_value_write(w, &rec), 0);
        size_t len = (size_t)avro_writer_tell(w);
        avro_writer_free(w);
        avro_value_decref(&rec);
        CHECK_INT(kb_validate(v, (const uint8_t *)bytes, len, NULL), KB_OK);

        for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
            char want[4096] = "", got[4096] = "";
            struct kb_payload_view avro_view = {&schema, (const uint8_t *)bytes, len, 0, 0, {0},
                                                NULL};
            int w1 = kb_payload_field(&avro_view, paths[p], want, sizeof want);
            kb_payload_view_fini(&avro_view);
            int w2 = kb_validate_field(v, (const uint8_t *)bytes, len, paths[p], got, sizeof got);
            compared++;
            found += w2;
            if (w1 != w2 || (w1 && strcmp(want, got))) {
                if (differ++ < 5)
                    fprintf(stderr, "path %s: avro-c %d \"%s\", bytes %d \"%s\"\n", paths[p], w1,
                            want, w2, got);
            }
        }
    }
    CHECK_INT(differ, 0);
    CHECK(found > compared / 3); /* most paths exist most of the time */
    kb_validate_destroy(v);
    avro_value_iface_decref(schema.iface);
    avro_schema_decref(schema.avro);
    KB_TEST_DONE();
}
