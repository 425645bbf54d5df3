/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_gba_events.c - the GBA adapter's life events from the fixtures of
 * protocols.md §1.10: every field of the decoded persoon-geboren and
 * kind-toegevoegd values, the CloudEvents attributes (ids and pseudonyms
 * as known answers from python's uuid and hmac), no personal identifier in
 * keys or headers, and the messages that must yield no event or an error.
 * Then the speed-ups must not show: every event fixture gives the same
 * events with one cache (switching keys, a key too long to remember, a
 * second schema set) as without one, the values lie one after the other
 * in the block kb_gba_events_free() releases with the events (outside the
 * events themselves), and the time/traceparent helpers
 * answer alike inside and outside their fast paths.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gba_events.h"
#include "lo3.h"
#include "kb_test.h"
#include "ketenbus/event.h"
#include "ketenbus/schema.h"

#define SOURCE "urn:nld:oin:00000001003214345000:systeem:ketenbus-gba"
#define RECEIVED_MS 1710753330250 /* 2024-03-18T09:15:30.250Z */
#define DATAREF "file:///var/lib/ketenbus/archive/msg.lo3"

/* sha256sum tests/fixtures/gba/... */
#define LG01_SHA "07bb1a79fe2f6f86105d5fe8955dbc95f9c61d858b2176a5b3249a93d2d57ed8"
#define GV01_SHA "29d2835dc54ed9daa85d91ef93b5d39f98d142a17f5cfcd662b81a3b174de8ad"

static char src_dir[1024];
static kb_schemas_t *schemas;
static uint8_t key[32]; /* 00 01 02 .. 1f */
static kb_gba_cache_t *cache; /* as the adapter runs: the known answers below
                               * then also hold for the cached digests/HMAC */

/* Read tests/fixtures/gba/@p name whole; *len set; caller frees. */
static uint8_t *read_fixture(const char *name, size_t *len)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/gba/%s", src_dir, name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return NULL;
    uint8_t *buf = malloc(4096);
    *len = buf ? fread(buf, 1, 4096, f) : 0;
    fclose(f);
    return buf;
}

/* Parse and run kb_gba_events on @p raw; returns its result. */
static kb_err_t run(const uint8_t *raw, size_t len, struct kb_ingress_event **evs, size_t *n,
                    char *errstr, size_t errstr_size)
{
    struct kb_gba_ctx ctx = {schemas, key, sizeof key, SOURCE, cache};
    struct kb_lo3_message msg;
    char perr[256] = "";
    kb_err_t err = kb_lo3_parse(raw, len, &msg, perr, sizeof perr);
    CHECK_INT(err, KB_OK);
    if (err) {
        fprintf(stderr, "lo3: %s\n", perr);
        *evs = NULL;
        *n = 0;
        return err;
    }
    err = kb_gba_events(&ctx, raw, len, &msg, RECEIVED_MS, DATAREF, evs, n, errstr,
                        errstr_size);
    kb_lo3_message_fini(&msg);
    return err;
}

static void check_get(avro_value_t *v, const char *path, const char *want)
{
    char buf[128] = "";
    kb_err_t err = kb_value_get_string(v, path, buf, sizeof buf);
    if (err)
        fprintf(stderr, "%s: %s\n", path, kb_err_str(err));
    CHECK_INT(err, KB_OK);
    CHECK_STR(buf, want);
}

static void check_null(avro_value_t *v, const char *path)
{
    char buf[128];
    kb_err_t err = kb_value_get_string(v, path, buf, sizeof buf);
    if (err != KB_ERR_NOTFOUND)
        fprintf(stderr, "%s: expected null\n", path);
    CHECK_INT(err, KB_ERR_NOTFOUND);
}

static int64_t get_long(avro_value_t *v, const char *path)
{
    avro_value_t f;
    int64_t val = -1;
    if (kb_value_path(v, path, 0, &f) == KB_OK)
        avro_value_get_long(&f, &val);
    return val;
}

/* Decode @p ev's framed value with schema @p id into *v (caller decrefs). */
static int decode(const struct kb_ingress_event *ev, int32_t id, avro_value_t *v)
{
    int32_t got = 0;
    const uint8_t *payload;
    size_t plen;
    char errstr[256];
    CHECK_INT(kb_event_unframe(ev->value, ev->len, &got, &payload, &plen), KB_OK);
    CHECK_INT(got, id);
    CHECK_INT(ev->attrs.schema_id, id);
    const struct kb_schema *sc = kb_schemas_by_id(schemas, id);
    if (!sc || avro_generic_value_new(sc->iface, v))
        return -1;
    kb_err_t err = kb_schema_decode(sc, payload, plen, v, errstr, sizeof errstr);
    CHECK_INT(err, KB_OK);
    if (err) {
        avro_value_decref(v);
        return -1;
    }
    return 0;
}

/* No header value and not the key may hold a BSN or A-nummer of the fixtures. */
static void check_no_identifiers(const struct kb_ingress_event *ev)
{
    static const char *const ids[] = {"999995303", "999996204", "999997105",
                                      "7194601014", "5281301274", "3647901080"};
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24];
    size_t n = kb_event_headers(&ev->attrs, hdrs, seqbuf);
    CHECK(n >= 9);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        size_t il = strlen(ids[i]);
        CHECK(strstr(ev->key, ids[i]) == NULL);
        for (size_t h = 0; h < n; h++) {
            int found = 0;
            for (size_t o = 0; o + il <= hdrs[h].len; o++)
                if (!memcmp((const char *)hdrs[h].value + o, ids[i], il))
                    found = 1;
            if (found)
                fprintf(stderr, "header %s holds %s\n", hdrs[h].name, ids[i]);
            CHECK(!found);
        }
    }
}

static void check_kind(avro_value_t *v, int with_geslacht)
{
    check_get(v, "kind.aNummer", "7194601014");
    check_get(v, "kind.bsn", "999995303");
    check_get(v, "kind.voornamen", "Sophie Marije");
    check_get(v, "kind.voorvoegsel", "van");
    check_get(v, "kind.geslachtsnaam", "Dijk");
    check_get(v, "kind.geboortedatum", "20240315");
    check_get(v, "kind.geboorteplaats", "0344");
    check_get(v, "kind.geboorteland", "6030");
    if (with_geslacht)
        check_get(v, "kind.geslacht", "V");
    else
        check_null(v, "kind.geslacht");
    check_get(v, "akte.registergemeente", "0344");
    check_get(v, "akte.aktenummer", "1AA0123");
}

static void check_ouder(avro_value_t *ouders, size_t i, int nr, const char *const want[9],
                        const char *datum_frb)
{
    static const char *const fields[] = {"aNummer",       "bsn",           "voornamen",
                                         "voorvoegsel",   "geslachtsnaam", "geboortedatum",
                                         "geboorteplaats", "geboorteland", "geslacht"};
    avro_value_t ouder, f;
    CHECK_INT(avro_value_get_by_index(ouders, i, &ouder, NULL), 0);
    int32_t got = 0;
    CHECK_INT(kb_value_path(&ouder, "ouderNummer", 0, &f), KB_OK);
    CHECK_INT(avro_value_get_int(&f, &got), 0);
    CHECK_INT(got, nr);
    for (size_t k = 0; k < 9; k++) {
        char path[64];
        snprintf(path, sizeof path, "persoon.%s", fields[k]);
        if (want[k])
            check_get(&ouder, path, want[k]);
        else
            check_null(&ouder, path);
    }
    check_get(&ouder, "datumFamilierechtelijkeBetrekking", datum_frb);
}

static void test_lg01_birth(void)
{
    size_t len = 0, n = 0, n2 = 0;
    uint8_t *raw = read_fixture("lg01-geboorte-sophie.lo3", &len);
    struct kb_ingress_event *evs = NULL, *evs2 = NULL;
    char errstr[256] = "";
    if (!raw)
        return;
    CHECK_INT(len, 952);
    CHECK_INT(run(raw, len, &evs, &n, errstr, sizeof errstr), KB_OK);
    CHECK_STR(errstr, "");
    CHECK_INT(n, 1);
    if (n != 1)
        goto out;
    const struct kb_ingress_event *ev = &evs[0];

    /* python3: uuid5(ns, SOURCE + "|" + LG01_SHA + "|nl.brp.persoon-geboren|0") */
    CHECK_STR(ev->attrs.id, "3a428ff1-5943-59b8-9102-74d91c463810");
    CHECK_STR(ev->attrs.source, SOURCE);
    CHECK_STR(ev->attrs.type, "nl.brp.persoon-geboren");
    CHECK_STR(ev->attrs.time, "2024-03-18T09:15:30.250Z");
    CHECK_STR(ev->attrs.dataref, DATAREF);
    CHECK_STR(ev->attrs.traceparent,
              "00-3a428ff1594359b8910274d91c463810-3a428ff1594359b8-01");
    /* python3: hmac(bytes(range(32)), b"bsn:999995303", sha256)[:16].hex() */
    CHECK_STR(ev->attrs.subject, "b1349d5ecc95fdc8335256b89d53b2ef");
    CHECK_STR(ev->key, "b1349d5ecc95fdc8335256b89d53b2ef");
    CHECK(ev->attrs.sequence == 0); /* assigned by kb_ingress_send() */

    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24];
    size_t nh = kb_event_headers(&ev->attrs, hdrs, seqbuf);
    CHECK_INT(nh, 9);
    CHECK_STR(hdrs[0].name, "ce_specversion");
    CHECK_MEM(hdrs[0].value, hdrs[0].len, "1.0");
    CHECK_STR(hdrs[2].name, "ce_source");
    CHECK_MEM(hdrs[2].value, hdrs[2].len, SOURCE);
    CHECK_STR(hdrs[3].name, "ce_type");
    CHECK_MEM(hdrs[3].value, hdrs[3].len, "nl.brp.persoon-geboren");
    check_no_identifiers(ev);

    avro_value_t v;
    if (decode(ev, 1001, &v) == 0) {
        check_kind(&v, 1);
        avro_value_t ouders;
        size_t no = 0;
        CHECK_INT(avro_value_get_by_name(&v, "ouders", &ouders, NULL), 0);
        CHECK_INT(avro_value_get_size(&ouders, &no), 0);
        CHECK_INT(no, 2);
        if (no == 2) {
            static const char *const moeder[9] = {"5281301274", "999996204", "Anna Maria",
                                                  NULL,         "Bakker",    "19920704",
                                                  "0599",       "6030",      "V"};
            static const char *const vader[9] = {"3647901080", "999997105", "Pieter Jan",
                                                 "van",        "Dijk",      "19900211",
                                                 "0363",       "6030",      "M"};
            check_ouder(&ouders, 0, 1, moeder, "20240315");
            check_ouder(&ouders, 1, 2, vader, "20240315");
        }
        check_get(&v, "inschrijving.gemeente", "0344");
        check_get(&v, "inschrijving.datumInschrijving", "20240315");
        check_get(&v, "herkomst.berichtType", "Lg01");
        check_get(&v, "herkomst.randomKey", "27364018");
        check_get(&v, "herkomst.aNummerPersoonslijst", "7194601014");
        check_get(&v, "herkomst.datumTijd", "20240318101530250");
        CHECK(get_long(&v, "herkomst.ontvangen") == RECEIVED_MS);
        check_get(&v, "herkomst.sha256", LG01_SHA);
        avro_value_decref(&v);
    }

    /* A second run over the same bytes yields the very same event. */
    CHECK_INT(run(raw, len, &evs2, &n2, errstr, sizeof errstr), KB_OK);
    CHECK_INT(n2, 1);
    if (n2 == 1) {
        CHECK_STR(evs2[0].attrs.id, ev->attrs.id);
        CHECK_STR(evs2[0].key, ev->key);
        CHECK(evs2[0].len == ev->len && !memcmp(evs2[0].value, ev->value, ev->len));
    }
out:
    kb_gba_events_free(evs, n);
    kb_gba_events_free(evs2, n2);
    free(raw);
}

static void test_gv01_child(void)
{
    size_t len = 0, n = 0, n2 = 0;
    uint8_t *raw = read_fixture("gv01-moeder-kind-sophie.lo3", &len);
    struct kb_ingress_event *evs = NULL, *evs2 = NULL;
    char errstr[256] = "";
    if (!raw)
        return;
    CHECK_INT(len, 203);
    CHECK_INT(run(raw, len, &evs, &n, errstr, sizeof errstr), KB_OK);
    CHECK_INT(n, 1);
    if (n != 1)
        goto out;
    const struct kb_ingress_event *ev = &evs[0];
    /* python3: uuid5(ns, SOURCE + "|" + GV01_SHA + "|nl.brp.kind-toegevoegd|0") */
    CHECK_STR(ev->attrs.id, "80ed34ac-6369-5057-8118-44aae05c9da5");
    CHECK(strcmp(ev->attrs.id, "3a428ff1-5943-59b8-9102-74d91c463810") != 0);
    CHECK_STR(ev->attrs.type, "nl.brp.kind-toegevoegd");
    CHECK_STR(ev->attrs.source, SOURCE);
    CHECK_STR(ev->attrs.time, "2024-03-18T09:15:30.250Z");
    CHECK_STR(ev->attrs.traceparent,
              "00-80ed34ac63695057811844aae05c9da5-80ed34ac63695057-01");
    /* python3: hmac(bytes(range(32)), b"anummer:5281301274", sha256)[:16].hex() */
    CHECK_STR(ev->attrs.subject, "72ceaa782f9afe6136e5312133f7002b");
    CHECK_STR(ev->key, "72ceaa782f9afe6136e5312133f7002b");
    check_no_identifiers(ev);

    avro_value_t v;
    if (decode(ev, 1002, &v) == 0) {
        check_get(&v, "ouder.aNummer", "5281301274");
        check_kind(&v, 0);
        check_get(&v, "datumGeldigheid", "20240315");
        check_get(&v, "herkomst.berichtType", "Gv01");
        check_get(&v, "herkomst.randomKey", "00000000");
        check_get(&v, "herkomst.aNummerPersoonslijst", "5281301274");
        check_null(&v, "herkomst.datumTijd"); /* a Gv01 header has no datum/tijd */
        CHECK(get_long(&v, "herkomst.ontvangen") == RECEIVED_MS);
        check_get(&v, "herkomst.sha256", GV01_SHA);
        avro_value_decref(&v);
    }
    CHECK_INT(run(raw, len, &evs2, &n2, errstr, sizeof errstr), KB_OK);
    CHECK_INT(n2, 1);
    if (n2 == 1)
        CHECK_STR(evs2[0].attrs.id, "80ed34ac-6369-5057-8118-44aae05c9da5");
out:
    kb_gba_events_free(evs, n);
    kb_gba_events_free(evs2, n2);
    free(raw);
}

static void test_negative(void)
{
    size_t len = 0, n = 99;
    struct kb_ingress_event *evs = NULL;
    char errstr[256] = "";
    uint8_t *raw = read_fixture("lg01-geboorte-sophie.lo3", &len);
    if (!raw)
        return;

    /* Child's BSN 999995303 -> 999995304 (value of 01.01.20 at 76 + 7). */
    CHECK(!memcmp(raw + 83, "999995303", 9));
    raw[91] = '4';
    CHECK_INT(run(raw, len, &evs, &n, errstr, sizeof errstr), KB_ERR_INVALID);
    CHECK_STR(errstr, "offset 76: 01.01.20 is not a valid BSN (11-proef)");
    CHECK(evs == NULL);
    CHECK_INT(n, 0);
    raw[91] = '3';

    /* A mother's BSN failing the 11-proef names category 02 (offset 263). */
    CHECK(!memcmp(raw + 270, "999996204", 9));
    raw[270] = '8';
    CHECK_INT(run(raw, len, &evs, &n, errstr, sizeof errstr), KB_ERR_INVALID);
    CHECK_STR(errstr, "offset 263: 02.01.20 is not a valid BSN (11-proef)");
    raw[270] = '9';

    /* Not the PL's first version (07.80.10 = 0002): not a birth. */
    CHECK(!memcmp(raw + 699, "80100040001", 11));
    memcpy(raw + 706, "0002", 4);
    n = 99;
    CHECK_INT(run(raw, len, &evs, &n, errstr, sizeof errstr), KB_OK);
    CHECK_INT(n, 0);
    kb_gba_events_free(evs, n);
    memcpy(raw + 706, "0001", 4);

    /* Address not started on the birth date (08.10.30 = 20240316). */
    CHECK(!memcmp(raw + 773, "103000820240315", 15));
    raw[787] = '6';
    n = 99;
    CHECK_INT(run(raw, len, &evs, &n, errstr, sizeof errstr), KB_OK);
    CHECK_INT(n, 0);
    kb_gba_events_free(evs, n);
    free(raw);

    /* A Gv01 whose 59 is not empty (holds the old 09.02.40): no new child,
     * only the generic persoonslijst-gewijzigd for the changed 09 rubrieken. */
    static const char gv01_59[] =
        "00000000Gv01528130127400187"
        "091660110010719460101401200099999953030210013Sophie Marije0230003van0240004Dijk"
        "03100082024031503200040344033000460308110004034481200071AA0123"
        "851000820240315861000820240318"
        "590110240004Dijk";
    n = 99;
    CHECK_INT(run((const uint8_t *)gv01_59, sizeof gv01_59 - 1, &evs, &n, errstr,
                  sizeof errstr),
              KB_OK);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(evs[0].attrs.type, "nl.brp.persoonslijst-gewijzigd");
    kb_gba_events_free(evs, n);
}

/* Everything an event carries, as one comparable string (value in hex). */
static void event_text(const struct kb_ingress_event *ev, char *out, size_t cap)
{
    int o = snprintf(out, cap, "%s|%s|%s|%s|%s|%s|%s|%d|%s|", ev->attrs.id, ev->attrs.source,
                     ev->attrs.type, ev->attrs.time, ev->attrs.subject, ev->attrs.dataref,
                     ev->attrs.traceparent, ev->attrs.schema_id, ev->key);
    for (size_t i = 0; i < ev->len && o > 0 && (size_t)o + 3 < cap; i++)
        o += snprintf(out + o, cap - (size_t)o, "%02x", ev->value[i]);
}

/* The events of @p raw with context @p ctx, as text; "" and errstr when
 * there is an error. Checks that every value lies in the events' block. */
static void events_text(const struct kb_gba_ctx *ctx, const uint8_t *raw, size_t len, char *out,
                        size_t cap)
{
    struct kb_lo3_message msg;
    char err[256] = "";
    out[0] = '\0';
    if (kb_lo3_parse(raw, len, &msg, err, sizeof err)) {
        snprintf(out, cap, "parse: %s", err);
        return;
    }
    struct kb_ingress_event *evs = NULL;
    size_t n = 0;
    kb_err_t e =
        kb_gba_events(ctx, raw, len, &msg, RECEIVED_MS, DATAREF, &evs, &n, err, sizeof err);
    kb_lo3_message_fini(&msg);
    if (e) {
        snprintf(out, cap, "error %d: %s", (int)e, err);
        CHECK(evs == NULL && n == 0);
        return;
    }
    size_t o = 0;
    const uint8_t *start = (const uint8_t *)evs, *end = (const uint8_t *)(evs + n);
    for (size_t i = 0; i < n; i++) {
        /* the values follow each other in their block, in order, apart
         * from the events (kb_gba_events_free frees the first value's) */
        CHECK(evs[i].value >= end || evs[i].value + evs[i].len <= start);
        CHECK(i == 0 || evs[i].value == evs[i - 1].value + evs[i - 1].len);
        event_text(&evs[i], out + o, cap - o);
        o += strlen(out + o);
    }
    kb_gba_events_free(evs, n);
}

static void test_cache_is_invisible(void)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/gba/events", src_dir);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    uint8_t long_key[200];
    for (size_t i = 0; i < sizeof long_key; i++)
        long_key[i] = (uint8_t)(i * 7 + 1);
    snprintf(dir, sizeof dir, "%s/schemas", src_dir);
    char err[512];
    kb_schemas_t *other = kb_schemas_load_dir(dir, err, sizeof err);
    CHECK(other != NULL);
    kb_gba_cache_t *c = kb_gba_cache_new();
    char *a = malloc(1 << 16), *b = malloc(1 << 16);
    struct dirent *de;
    int files = 0, with_events = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strstr(de->d_name, ".lo3"))
            continue;
        char name[600];
        snprintf(name, sizeof name, "events/%s", de->d_name);
        size_t len = 0;
        uint8_t *raw = read_fixture(name, &len);
        if (!raw)
            continue;
        files++;
        /* keys: the test key, a long one (never remembered), the test key */
        const uint8_t *keys[3] = {key, long_key, key};
        size_t key_lens[3] = {sizeof key, sizeof long_key, sizeof key};
        for (int k = 0; k < 3; k++) {
            struct kb_gba_ctx plain = {schemas, keys[k], key_lens[k], SOURCE, NULL};
            struct kb_gba_ctx cached = {k == 1 ? other : schemas, keys[k], key_lens[k], SOURCE, c};
            events_text(&plain, raw, len, a, 1 << 16);
            events_text(&cached, raw, len, b, 1 << 16);
            CHECK_STR(b, a);
            with_events += k == 0 && strchr(a, '|') != NULL;
        }
        free(raw);
    }
    closedir(d);
    CHECK(files >= 15);
    CHECK(with_events >= 12);
    free(a);
    free(b);
    kb_gba_cache_destroy(c);
    kb_schemas_destroy(other);
}

/* kb_event_time() remembers the last second per thread and
 * kb_event_traceparent() copies a canonical UUID in runs; the answers are
 * those of the general code (worked out by hand here). */
static void test_time_and_traceparent(void)
{
    char t[40], tp[64];
    kb_event_time(1710753330250, t);
    CHECK_STR(t, "2024-03-18T09:15:30.250Z");
    kb_event_time(1710753330007, t); /* same second */
    CHECK_STR(t, "2024-03-18T09:15:30.007Z");
    kb_event_time(1710753331000, t); /* next one */
    CHECK_STR(t, "2024-03-18T09:15:31.000Z");
    kb_event_time(1710806399999, t); /* last ms of the day */
    CHECK_STR(t, "2024-03-18T23:59:59.999Z");
    kb_event_time(1710806400000, t);
    CHECK_STR(t, "2024-03-19T00:00:00.000Z");
    kb_event_time(1710753330999, t); /* back to the first second */
    CHECK_STR(t, "2024-03-18T09:15:30.999Z");
    kb_event_time(-1, t);
    CHECK_STR(t, "1969-12-31T23:59:59.999Z");
    kb_event_traceparent("36d52269-2359-5684-86c0-d9789b7c9c9c", tp);
    CHECK_STR(tp, "00-36d522692359568486c0d9789b7c9c9c-36d5226923595684-01");
    kb_event_traceparent("36D52269-2359-5684-86C0-D9789B7C9C9C", tp);
    CHECK_STR(tp, "00-36D522692359568486C0D9789B7C9C9C-36D5226923595684-01");
    /* dashes elsewhere: the digits still count, in order */
    kb_event_traceparent("36d5226-92359-5684-86c0-d9789b7c9c9c", tp);
    CHECK_STR(tp, "00-36d522692359568486c0d9789b7c9c9c-36d5226923595684-01");
    /* 36 characters but 5 dashes: 31 digits, no traceparent */
    kb_event_traceparent("36d52269-2359-5684-86c0-d9789b7c9c-c", tp);
    CHECK_STR(tp, "");
    kb_event_traceparent("36d52269-2359-5684-86c0-d9789b7c9c9c0", tp); /* 33 digits: first 32 */
    CHECK_STR(tp, "00-36d522692359568486c0d9789b7c9c9c-36d5226923595684-01");
}

int main(void)
{
    const char *src = getenv("KB_SOURCE_DIR");
    char dir[1200], errstr[512] = "";
    snprintf(src_dir, sizeof src_dir, "%s", src ? src : ".");
    snprintf(dir, sizeof dir, "%s/schemas", src_dir);
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    schemas = kb_schemas_load_dir(dir, errstr, sizeof errstr);
    CHECK(schemas != NULL);
    if (!schemas) {
        fprintf(stderr, "schemas: %s\n", errstr);
        KB_TEST_DONE();
    }
    cache = kb_gba_cache_new();
    CHECK(cache != NULL);
    test_lg01_birth();
    test_gv01_child();
    test_negative();
    test_cache_is_invisible();
    test_time_and_traceparent();
    kb_gba_cache_destroy(cache);
    kb_schemas_destroy(schemas);
    KB_TEST_DONE();
}
