/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_gba_egress.c - LO3 egress: events derived from the project's own
 * fixtures are rendered back to LO3 and compared with the bytes expected
 * by hand (the source message minus the elements the event does not
 * carry), and an event type without an LO3 form is refused with a reason,
 * as is an event that cannot become LO3 (too long, too many parents, bad
 * bytes) or whose id is no safe out/ file name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress.h"
#include "gba_egress.h"
#include "gba_events.h"
#include "kb_test.h"
#include "ketenbus/schema.h"
#include "lo3.h"
#include "lo3_json.h"

static char src_dir[1024];
static kb_schemas_t *schemas;
static const uint8_t key[32] = {7};

/* How a test changes an event before it is rendered: its decoded value
 * (NULL: left alone), and whether the first string length of the payload
 * is then mutated into a huge one. */
typedef void(spoil_fn)(avro_value_t *v);
static int corrupt_first_length;

/* Event @p ev with @p spoil applied, re-encoded (framing included) into
 * *@p framed (malloc'ed). */
static void spoil_event(const struct kb_schema *sc, const struct kb_ingress_event *ev,
                        spoil_fn *spoil, uint8_t **framed, size_t *len)
{
    char err[256];
    avro_value_t v;
    CHECK_INT(avro_generic_value_new(sc->iface, &v), 0);
    CHECK_INT(kb_schema_decode(sc, ev->value + 5, ev->len - 5, &v, err, sizeof err), KB_OK);
    spoil(&v);
    CHECK_INT(kb_schema_encode(sc, &v, framed, len, err, sizeof err), KB_OK);
    avro_value_decref(&v);
}

/* Derive the events of fixture @p name and render event @p i, spoiled by
 * @p spoil (may be NULL). */
static kb_err_t render_spoiled(const char *name, size_t i, spoil_fn *spoil, uint8_t **out,
                               size_t *out_len, char *err, size_t err_size)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/tests/fixtures/gba/%s", src_dir, name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    static uint8_t buf[8192];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    struct kb_lo3_message msg;
    CHECK_INT(kb_lo3_parse(buf, len, &msg, err, err_size), KB_OK);
    struct kb_gba_ctx ctx = {schemas, key, sizeof key, "urn:nld:oin:00000099999999999000:systeem:t",
                             NULL};
    struct kb_ingress_event *evs = NULL;
    size_t n = 0;
    /* 2024-03-20T08:00:00Z */
    CHECK_INT(kb_gba_events(&ctx, buf, len, &msg, 1710921600000, "", &evs, &n, err, err_size),
              KB_OK);
    kb_lo3_message_fini(&msg);
    kb_err_t e = KB_ERR_NOTFOUND;
    if (i < n) {
        const struct kb_schema *sc = kb_schemas_by_id(schemas, evs[i].attrs.schema_id);
        uint8_t *framed = evs[i].value, *own = NULL;
        size_t flen = evs[i].len;
        if (spoil) {
            spoil_event(sc, &evs[i], spoil, &own, &flen);
            framed = own;
        }
        if (framed && corrupt_first_length && flen > 6) {
            /* The first field's one-byte string length (after a union index)
             * becomes the varint of 2^31 - 1: avro-c would allocate 2 GiB. */
            static const uint8_t huge[5] = {0xfe, 0xff, 0xff, 0xff, 0x0f};
            uint8_t *m = malloc(flen + 4);
            CHECK(m != NULL);
            if (m) {
                memcpy(m, framed, 6);
                memcpy(m + 6, huge, 5);
                memcpy(m + 11, framed + 7, flen - 7);
                flen += 4;
            }
            free(own);
            framed = own = m;
        }
        e = framed ? kb_gba_render_lo3(&evs[i].attrs, sc, framed + 5, flen - 5, out, out_len, err,
                                       err_size)
                   : KB_ERR_NOMEM;
        free(own);
    }
    kb_gba_events_free(evs, n);
    return e;
}

static kb_err_t render(const char *name, size_t i, uint8_t **out, size_t *out_len, char *err,
                       size_t err_size)
{
    return render_spoiled(name, i, NULL, out, out_len, err, err_size);
}

/* A place name of @p n letters for the child's 01.03.20. */
static void long_place(avro_value_t *v, size_t n)
{
    char *place = malloc(n + 1);
    CHECK(place != NULL);
    if (!place)
        return;
    memset(place, 'A', n);
    place[n] = '\0';
    CHECK_INT(kb_value_set_string(v, "kind.geboorteplaats", place), KB_OK);
    free(place);
}

/* Over LO3's 999 bytes per element, but read fine from the event. */
static void place_1000(avro_value_t *v)
{
    long_place(v, 1000);
}

/* Too long even to be read into an element. */
static void place_5000(avro_value_t *v)
{
    long_place(v, 5000);
}

static void ouder_nummer_7(avro_value_t *v)
{
    avro_value_t ouders, o, nr;
    CHECK_INT(avro_value_get_by_name(v, "ouders", &ouders, NULL), 0);
    CHECK_INT(avro_value_get_by_index(&ouders, 1, &o, NULL), 0);
    CHECK_INT(avro_value_get_by_name(&o, "ouderNummer", &nr, NULL), 0);
    CHECK_INT(avro_value_set_int(&nr, 7), 0);
}

/* Fifteen parents: more elements and categories than an LO3 message may have. */
static void many_ouders(avro_value_t *v)
{
    avro_value_t ouders, first, o;
    CHECK_INT(avro_value_get_by_name(v, "ouders", &ouders, NULL), 0);
    for (int i = 0; i < 13; i++) {
        CHECK_INT(avro_value_append(&ouders, &o, NULL), 0);
        /* after the append: it may move the array's elements */
        CHECK_INT(avro_value_get_by_index(&ouders, 0, &first, NULL), 0);
        CHECK_INT(avro_value_copy(&o, &first), 0);
    }
}

/* Events that can never become LO3: each one refused with a reason naming
 * a field or rule, and with an error the egress loop quarantines instead
 * of retrying it for ever in front of the events behind it. */
static void test_unrenderable(void)
{
    uint8_t *out = NULL;
    size_t len = 0;
    char err[512] = "";
    const char *lg01 = "lg01-geboorte-sophie.lo3";

    /* 1000 bytes fit the event but not an LO3 element (KB_ERR_RANGE):
     * before, only KB_ERR_INVALID was quarantined. */
    kb_err_t e = render_spoiled(lg01, 0, place_1000, &out, &len, err, sizeof err);
    CHECK_INT(e, KB_ERR_RANGE);
    CHECK(!kb_egress_retryable(e));
    CHECK(out == NULL);
    e = render_spoiled(lg01, 0, many_ouders, &out, &len, err, sizeof err);
    CHECK_INT(e, KB_ERR_RANGE);
    CHECK(!strncmp(err, "too many ", 9)); /* elements run out before categories */
    CHECK(!kb_egress_retryable(e));
    CHECK(out == NULL);

    /* Before, a value that did not fit the read buffer was left out and the
     * LO3 written without it. */
    CHECK_INT(render_spoiled(lg01, 0, place_5000, &out, &len, err, sizeof err), KB_ERR_INVALID);
    CHECK_STR(err, "kind.geboorteplaats: longer than an LO3 element can be");
    CHECK(out == NULL);
    free(out);
    out = NULL;

    /* Before, a parent that is neither 02 nor 03 was left out silently. */
    CHECK_INT(render_spoiled(lg01, 0, ouder_nummer_7, &out, &len, err, sizeof err), KB_ERR_INVALID);
    CHECK_STR(err, "ouders[1].ouderNummer: not 1 or 2");
    free(out);
    out = NULL;

    /* A mutated length is refused by the validator before avro-c reads it. */
    corrupt_first_length = 1;
    CHECK_INT(render(lg01, 0, &out, &len, err, sizeof err), KB_ERR_INVALID);
    corrupt_first_length = 0;
    CHECK(strstr(err, "payload fails schema 1001") != NULL);
    CHECK(strstr(err, "kind.aNummer") != NULL);
    free(out);
    out = NULL;

    /* none of the reasons carries a value */
    CHECK(strstr(err, "999") == NULL);
}

/* The out/ file is named by ce_id, which anyone who can write to the topic
 * sets: only safe file names pass (before, "../../x" left the spool). */
static void test_out_name(void)
{
    struct kb_event_attrs attrs;
    char name[80], err[256];
    memset(&attrs, 0, sizeof attrs);
    static const char *const bad[] = {"../../PWNED", "../in/x", "a/b",        ".hidden", "..", "",
                                      "a b",         "x\n",     "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(attrs.id, sizeof attrs.id, "%s", bad[i]);
        CHECK_INT(kb_gba_out_name(&attrs, name, sizeof name, err, sizeof err), KB_ERR_INVALID);
        CHECK(strstr(err, "ce_id is not a safe file name") != NULL);
    }
    snprintf(attrs.id, sizeof attrs.id, "6f1c2b7e-0c4e-5d2a-9b1f-3e8a7c6d5b4a");
    CHECK_INT(kb_gba_out_name(&attrs, name, sizeof name, err, sizeof err), KB_OK);
    CHECK_STR(name, "6f1c2b7e-0c4e-5d2a-9b1f-3e8a7c6d5b4a.lo3");
    snprintf(attrs.id, sizeof attrs.id, "event_1.v2");
    CHECK_INT(kb_gba_out_name(&attrs, name, sizeof name, err, sizeof err), KB_OK);
    /* the predicate itself bounds the length, beyond ce_id's own 39 bytes */
    char longest[KB_EGRESS_NAME_MAX + 2];
    memset(longest, 'a', sizeof longest - 1);
    longest[KB_EGRESS_NAME_MAX] = '\0';
    CHECK(kb_egress_name_ok(longest));
    longest[KB_EGRESS_NAME_MAX] = 'a';
    longest[KB_EGRESS_NAME_MAX + 1] = '\0';
    CHECK(!kb_egress_name_ok(longest));
}

static void expect_bytes(const uint8_t *got, size_t len, const char *want)
{
    CHECK_INT(len, strlen(want));
    int same = len == strlen(want) && !memcmp(got, want, len);
    if (!same)
        fprintf(stderr, "got  %.*s\nwant %s\n", (int)len, (const char *)got, want);
    CHECK(same);
}

int main(void)
{
    const char *src = getenv("KB_SOURCE_DIR");
    char dir[1200], err[512] = "";
    snprintf(src_dir, sizeof src_dir, "%s", src ? src : ".");
    snprintf(dir, sizeof dir, "%s/schemas", src_dir);
    schemas = kb_schemas_load_dir(dir, err, sizeof err);
    CHECK(schemas != NULL);
    if (!schemas)
        KB_TEST_DONE();

    uint8_t *out = NULL;
    size_t len = 0;
    /* kind-toegevoegd -> Gv01: the source Gv01 without 09.86.10 (not on the event) */
    CHECK_INT(render("gv01-moeder-kind-sophie.lo3", 0, &out, &len, err, sizeof err), KB_OK);
    expect_bytes(out, len,
                 "00000000Gv01528130127400161"
                 "09151"
                 "0110010719460101401200099999953030210013Sophie Marije0230003van0240004Dijk"
                 "03100082024031503200040344033000460308110004034481200071AA0123"
                 "851000820240315"
                 "59000");
    free(out);

    /* persoon-overleden -> Gv01 06 + empty 56 (no akte, no 86.10 on the event) */
    CHECK_INT(render("events/gv01-overlijden.lo3", 0, &out, &len, err, sizeof err), KB_OK);
    expect_bytes(out, len,
                 "00000000Gv01528130127400062"
                 "06052081000820240601082000403440830004603085100082024060156000");
    free(out);

    /* persoon-geboren -> Ag01 with the event's date; check via the JSON form */
    CHECK_INT(render("lg01-geboorte-sophie.lo3", 0, &out, &len, err, sizeof err), KB_OK);
    CHECK(len > 21 && !memcmp(out, "00000000Ag01A20240320", 21));
    char *json = NULL;
    CHECK_INT(kb_lo3_to_json(out, len, 0, &json, err, sizeof err), KB_OK);
    CHECK(json && strstr(json, "\"c01\":[{\"e0110\":\"7194601014\",\"e0120\":\"999995303\","
                               "\"e0210\":\"Sophie Marije\""));
    CHECK(json && strstr(json, "\"e8120\":\"1AA0123\""));
    CHECK(json && strstr(json, "\"c02\":[{\"e0110\":\"5281301274\""));
    CHECK(json && strstr(json, "\"c03\":[{\"e0110\":\"3647901080\""));
    CHECK(json && strstr(json, "\"c08\":[{\"e0910\":\"0344\",\"e0920\":\"20240315\"}]"));
    free(json);
    free(out);

    /* no LO3 form: refused with the type named */
    out = NULL;
    CHECK_INT(render("events/gv01-naam.lo3", 0, &out, &len, err, sizeof err), KB_ERR_INVALID);
    CHECK_STR(err, "no LO3 rendering for nl.brp.naam-gewijzigd");
    CHECK(out == NULL);

    test_unrenderable();
    test_out_name();

    kb_schemas_destroy(schemas);
    KB_TEST_DONE();
}
