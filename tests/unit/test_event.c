/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_event.c - the event envelope: CloudEvents headers there and back,
 * Confluent framing, and known answers for UUIDv5 ids, HMAC pseudonyms,
 * RFC 3339 times and traceparents (computed with python's uuid, hmac and
 * datetime), plus the subject-key file reader.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/event.h"

/* The header named @p name among @p n, or NULL. */
static const struct kb_header *find_header(const struct kb_header *hdrs, size_t n,
                                           const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(hdrs[i].name, name))
            return &hdrs[i];
    return NULL;
}

static void fill_attrs(struct kb_event_attrs *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->id, sizeof a->id, "%s", "36d52269-2359-5684-86c0-d9789b7c9c9c");
    snprintf(a->source, sizeof a->source, "%s", "urn:nld:oin:00000001003214345000:systeem:gba");
    snprintf(a->type, sizeof a->type, "%s", "nl.brp.persoon-geboren");
    snprintf(a->time, sizeof a->time, "%s", "2024-03-18T09:15:30.250Z");
    snprintf(a->subject, sizeof a->subject, "%s", "b1349d5ecc95fdc8335256b89d53b2ef");
    snprintf(a->dataref, sizeof a->dataref, "%s", "file:///archive/lg01.lo3");
    a->sequence = 18446744073709551615ull;
    snprintf(a->traceparent, sizeof a->traceparent, "%s",
             "00-36d522692359568486c0d9789b7c9c9c-36d5226923595684-01");
    a->schema_id = 1001;
}

static void test_headers_round_trip(void)
{
    struct kb_event_attrs a, back;
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24], errstr[128];
    static const char *const names[] = {
        "ce_specversion", "ce_id",       "ce_source",       "ce_type",
        "ce_time",        "content-type", "ce_subject",     "ce_dataref",
        "ce_sequence",    "ce_sequencetype", "traceparent",
    };

    fill_attrs(&a);
    size_t n = kb_event_headers(&a, hdrs, seqbuf);
    CHECK_INT(n, 11);
    for (size_t i = 0; i < n && i < 11; i++)
        CHECK_STR(hdrs[i].name, names[i]);
    CHECK_MEM(hdrs[0].value, hdrs[0].len, "1.0");
    CHECK_MEM(hdrs[1].value, hdrs[1].len, "36d52269-2359-5684-86c0-d9789b7c9c9c");
    CHECK_MEM(hdrs[5].value, hdrs[5].len, "application/avro");
    CHECK_MEM(hdrs[8].value, hdrs[8].len, "18446744073709551615");
    CHECK_MEM(hdrs[9].value, hdrs[9].len, "Integer");

    memset(&back, 0x55, sizeof back);
    CHECK_INT(kb_event_attrs_from_headers(hdrs, n, &back, errstr, sizeof errstr), KB_OK);
    CHECK_STR(back.id, a.id);
    CHECK_STR(back.source, a.source);
    CHECK_STR(back.type, a.type);
    CHECK_STR(back.time, "2024-03-18T09:15:30.250Z");
    CHECK_STR(back.subject, "b1349d5ecc95fdc8335256b89d53b2ef");
    CHECK_STR(back.dataref, "file:///archive/lg01.lo3");
    CHECK(back.sequence == 18446744073709551615ull);
    CHECK_STR(back.traceparent, a.traceparent);
    CHECK_INT(back.schema_id, -1); /* not a header: it travels in the framing */

    /* Only the required attributes: no ce_time, subject, dataref, sequence. */
    struct kb_event_attrs min;
    memset(&min, 0, sizeof min);
    snprintf(min.id, sizeof min.id, "%s", "x");
    snprintf(min.source, sizeof min.source, "%s", "urn:s");
    snprintf(min.type, sizeof min.type, "%s", "t");
    n = kb_event_headers(&min, hdrs, seqbuf);
    CHECK_INT(n, 5);
    CHECK(find_header(hdrs, n, "ce_time") == NULL);
    CHECK(find_header(hdrs, n, "ce_sequence") == NULL);
    CHECK_INT(kb_event_attrs_from_headers(hdrs, n, &back, errstr, sizeof errstr), KB_OK);
    CHECK_STR(back.id, "x");
    CHECK_STR(back.subject, "");
    CHECK(back.sequence == 0);
}

/* Run attrs_from_headers over the full header set with header @p drop left
 * out; expect KB_ERR_INVALID and exactly @p want as errstr. */
static void expect_missing(const char *drop, const char *want)
{
    struct kb_event_attrs a, back;
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS], kept[KB_EVENT_MAX_HEADERS];
    char seqbuf[24], errstr[128] = "";
    size_t k = 0;

    fill_attrs(&a);
    size_t n = kb_event_headers(&a, hdrs, seqbuf);
    for (size_t i = 0; i < n; i++)
        if (strcmp(hdrs[i].name, drop) != 0)
            kept[k++] = hdrs[i];
    CHECK_INT(k, n - 1);
    CHECK_INT(kb_event_attrs_from_headers(kept, k, &back, errstr, sizeof errstr),
              KB_ERR_INVALID);
    CHECK_STR(errstr, want);
}

/* Replace the value of header @p name and expect KB_ERR_INVALID with @p want. */
static void expect_bad_value(const char *name, const void *value, size_t len, const char *want)
{
    struct kb_event_attrs a, back;
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24], errstr[128] = "";

    fill_attrs(&a);
    size_t n = kb_event_headers(&a, hdrs, seqbuf);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(hdrs[i].name, name)) {
            hdrs[i].value = value;
            hdrs[i].len = len;
        }
    CHECK_INT(kb_event_attrs_from_headers(hdrs, n, &back, errstr, sizeof errstr),
              KB_ERR_INVALID);
    CHECK_STR(errstr, want);
}

static void test_headers_invalid(void)
{
    char big[600];
    memset(big, 'a', sizeof big);

    expect_missing("ce_id", "missing header ce_id");
    expect_missing("ce_source", "missing header ce_source");
    expect_missing("ce_type", "missing header ce_type");
    expect_missing("ce_specversion", "missing header ce_specversion");

    expect_bad_value("ce_specversion", "0.3", 3, "ce_specversion is not 1.0");
    expect_bad_value("ce_specversion", "1.0.0", 5, "ce_specversion is not 1.0");
    /* id holds 39 characters; 40 is one too many. */
    expect_bad_value("ce_id", big, 40, "header ce_id is 40 bytes, limit 39");
    expect_bad_value("ce_dataref", big, 512, "header ce_dataref is 512 bytes, limit 511");
    expect_bad_value("ce_subject", "b1349d5ecc95fdc8335256b89d53b2ef0", 33,
                     "header ce_subject is 33 bytes, limit 32");
    expect_bad_value("ce_source", "urn:\0x", 6, "header ce_source contains NUL");
    expect_bad_value("ce_sequence", "12a", 3, "ce_sequence is not an integer");
    expect_bad_value("ce_sequence", "", 0, "ce_sequence is not an integer");
    expect_bad_value("ce_sequence", "-1", 2, "ce_sequence is not an integer");
    expect_bad_value("ce_sequence", "+1", 2, "ce_sequence is not an integer");
    expect_bad_value("ce_sequence", " 1", 2, "ce_sequence is not an integer");
    /* 2^64 overflows uint64_t. */
    expect_bad_value("ce_sequence", "18446744073709551616", 20, "ce_sequence is not an integer");

    /* Not a CloudEvents String: bytes that are not UTF-8 (a lone
     * continuation byte, a truncated sequence, an overlong '/', a
     * surrogate) and the control characters of C0, DEL and C1. The value
     * is never quoted in the message. */
    const char *text = "header %s is not UTF-8 text without control characters";
    char want[128];
    static const struct {
        const char *header, *bytes;
    } bad[] = {
        {"ce_id", "abc\x80"},          {"ce_id", "ab\xc3"},
        {"ce_source", "urn:\xc0\xaf"}, {"ce_subject", "\xed\xa0\x80"},
        {"ce_type", "nl.brp\n"},       {"ce_time", "2026-11-30T07:00:00Z\t"},
        {"ce_dataref", "file\x7f"},    {"ce_id", "\xc2\x9f"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(want, sizeof want, text, bad[i].header);
        expect_bad_value(bad[i].header, bad[i].bytes, strlen(bad[i].bytes), want);
    }

    /* The envelope's own rules: a subject key that is not a pseudonym (a
     * BSN would reach the audit trail and every subscriber), a sequence
     * type other than Integer, a traceparent that is not W3C trace context. */
    expect_bad_value("ce_subject", "999995303", 9,
                     "ce_subject is not a pseudonym (32 lower-case hex digits)");
    expect_bad_value("ce_subject", "B1349D5ECC95FDC8335256B89D53B2EF", 32,
                     "ce_subject is not a pseudonym (32 lower-case hex digits)");
    expect_bad_value("ce_sequencetype", "String", 6, "ce_sequencetype is not Integer");
    /* A traceparent that is not W3C trace context is ignored, as that
     * standard asks (cut short, a field too many, version ff, upper case,
     * not text): the event stands, without a trace; of two, the first
     * valid one counts. */
    static const char *const bad_tp[] = {
        "00-36d522692359568486c0d9789b7c9c9c-36d5226923595684",
        "00-36d522692359568486c0d9789b7c9c9c-36d5226923595684-01-x",
        "ff-36d522692359568486c0d9789b7c9c9c-36d5226923595684-01",
        "00-36D522692359568486C0D9789B7C9C9C-36d5226923595684-01",
        "00-\xc2\x85",
    };
    for (size_t i = 0; i < sizeof bad_tp / sizeof bad_tp[0]; i++) {
        struct kb_event_attrs a3, back3;
        struct kb_header h3[KB_EVENT_MAX_HEADERS + 1];
        char seq3[24], err3[128] = "";
        fill_attrs(&a3);
        size_t n3 = kb_event_headers(&a3, h3, seq3);
        for (size_t j = 0; j < n3; j++)
            if (!strcmp(h3[j].name, "traceparent")) {
                h3[j].value = bad_tp[i];
                h3[j].len = strlen(bad_tp[i]);
            }
        CHECK_INT(kb_event_attrs_from_headers(h3, n3, &back3, err3, sizeof err3), KB_OK);
        CHECK_STR(back3.traceparent, "");
        CHECK(!kb_event_traceparent_valid(bad_tp[i], strlen(bad_tp[i])));
        /* a valid one after it is the one taken */
        h3[n3++] = (struct kb_header){"traceparent", a3.traceparent, strlen(a3.traceparent)};
        CHECK_INT(kb_event_attrs_from_headers(h3, n3, &back3, err3, sizeof err3), KB_OK);
        CHECK_STR(back3.traceparent, a3.traceparent);
    }

    /* An envelope header given twice (one reader would take the first,
     * another the last), and headers outside the envelope ignored. */
    {
        struct kb_event_attrs a2, back2;
        struct kb_header h2[KB_EVENT_MAX_HEADERS + 2];
        char seq2[24], err2[128] = "";
        fill_attrs(&a2);
        size_t n2 = kb_event_headers(&a2, h2, seq2);
        h2[n2++] = (struct kb_header){"x-anything", "\xff\n", 2};
        CHECK_INT(kb_event_attrs_from_headers(h2, n2, &back2, err2, sizeof err2), KB_OK);
        h2[n2++] = (struct kb_header){"ce_id", "another", 7};
        CHECK_INT(kb_event_attrs_from_headers(h2, n2, &back2, err2, sizeof err2), KB_ERR_INVALID);
        CHECK_STR(err2, "header ce_id appears twice");
        CHECK(kb_event_header_known("ce_sequencetype") && kb_event_header_known("content-type"));
        CHECK(!kb_event_header_known("x-anything") && !kb_event_header_known("kb_topic"));
    }

    /* An empty required value counts as missing. */
    expect_bad_value("ce_type", "", 0, "missing header ce_type");

    /* The limits themselves are accepted. */
    struct kb_event_attrs a, back;
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24], errstr[128];
    fill_attrs(&a);
    size_t n = kb_event_headers(&a, hdrs, seqbuf);
    hdrs[1].value = big;
    hdrs[1].len = 39;
    CHECK_INT(kb_event_attrs_from_headers(hdrs, n, &back, errstr, sizeof errstr), KB_OK);
    CHECK_INT(strlen(back.id), 39);

    /* Text beyond ASCII is a String: a source naming a system with
     * diacritics, the first and last code points above the C1 range, and
     * four-byte sequences. */
    fill_attrs(&a);
    n = kb_event_headers(&a, hdrs, seqbuf);
    const char *fine = "urn:nld:oin:00000001234567890000:systeem:g\xc3\xa9\xc2\xa0\xf0\x9f\x98\x80";
    for (size_t i = 0; i < n; i++)
        if (!strcmp(hdrs[i].name, "ce_source")) {
            hdrs[i].value = fine;
            hdrs[i].len = strlen(fine);
        }
    CHECK_INT(kb_event_attrs_from_headers(hdrs, n, &back, errstr, sizeof errstr), KB_OK);
    CHECK_STR(back.source, fine);
}

static void test_frame(void)
{
    uint8_t out[16];
    const uint8_t *payload = NULL;
    size_t plen = 99;
    int32_t id = 0;

    kb_event_frame(1001, "abc", 3, out);
    static const uint8_t want[] = {0x00, 0x00, 0x00, 0x03, 0xe9, 'a', 'b', 'c'};
    CHECK(memcmp(out, want, sizeof want) == 0);
    CHECK_INT(kb_event_unframe(out, 8, &id, &payload, &plen), KB_OK);
    CHECK_INT(id, 1001);
    CHECK(payload == out + 5);
    CHECK_INT(plen, 3);

    kb_event_frame(0x01020304, NULL, 0, out);
    static const uint8_t want2[] = {0x00, 0x01, 0x02, 0x03, 0x04};
    CHECK(memcmp(out, want2, sizeof want2) == 0);
    CHECK_INT(kb_event_unframe(out, 5, &id, &payload, &plen), KB_OK);
    CHECK_INT(id, 0x01020304);
    CHECK_INT(plen, 0);

    kb_event_frame(-2, NULL, 0, out);
    static const uint8_t want3[] = {0x00, 0xff, 0xff, 0xff, 0xfe};
    CHECK(memcmp(out, want3, sizeof want3) == 0);
    CHECK_INT(kb_event_unframe(out, 5, &id, &payload, &plen), KB_OK);
    CHECK_INT(id, -2);

    static const uint8_t magic1[] = {0x01, 0x00, 0x00, 0x03, 0xe9, 0x00};
    CHECK_INT(kb_event_unframe(magic1, sizeof magic1, &id, &payload, &plen), KB_ERR_INVALID);
    CHECK_INT(kb_event_unframe(want, 4, &id, &payload, &plen), KB_ERR_INVALID);
    CHECK_INT(kb_event_unframe(want, 0, &id, &payload, &plen), KB_ERR_INVALID);
}

static void test_uuid5(void)
{
    char a[37], b[37];

    /* python3: uuid.uuid5(uuid.UUID("6b8e1c57-0d2a-4f39-9a61-3c5e7712b480"), name) */
    kb_event_uuid5("hello", 5, a);
    CHECK_STR(a, "36d52269-2359-5684-86c0-d9789b7c9c9c");
    kb_event_uuid5("", 0, a);
    CHECK_STR(a, "4f5407c9-5598-5023-85ea-87b16aa4d679");
    static const char name[] =
        "urn:nld:oin:00000001234567890000:systeem:gba|abc|nl.brp.persoon-geboren|0";
    kb_event_uuid5(name, sizeof name - 1, a);
    CHECK_STR(a, "f2696703-584b-512e-bb63-699776d19313");
    kb_event_uuid5(name, sizeof name - 1, b);
    CHECK_STR(a, b);
    kb_event_uuid5("hellp", 5, b);
    CHECK(strcmp(a, b) != 0);

    /* Version nibble 5 and RFC 4122 variant (10xx) for many names. */
    for (int i = 0; i < 1000; i++) {
        char nm[16];
        int len = snprintf(nm, sizeof nm, "n%d", i);
        kb_event_uuid5(nm, (size_t)len, a);
        CHECK_INT(strlen(a), 36);
        CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
        CHECK(a[14] == '5');
        CHECK(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
    }
}

static void test_pseudonym(void)
{
    uint8_t key[32];
    char out[KB_PSEUDONYM_LEN + 1], other[KB_PSEUDONYM_LEN + 1];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;

    /* python3: hmac.new(bytes(range(32)), b"bsn:999995303", "sha256").hexdigest()[:32] */
    CHECK_INT(kb_event_pseudonym(key, 32, "bsn", "999995303", out), KB_OK);
    CHECK_STR(out, "b1349d5ecc95fdc8335256b89d53b2ef");
    CHECK_INT(kb_event_pseudonym(key, 32, "anummer", "999995303", other), KB_OK);
    CHECK_STR(other, "da09103724dd893e3a50f2986da04fbe");
    CHECK(strcmp(out, other) != 0);
    CHECK_INT(kb_event_pseudonym(key, 32, "anummer", "5281301274", out), KB_OK);
    CHECK_STR(out, "72ceaa782f9afe6136e5312133f7002b");

    /* Exactly 16 bytes is enough; 15 is not. */
    const uint8_t *k16 = (const uint8_t *)"0123456789abcdef";
    CHECK_INT(kb_event_pseudonym(k16, 16, "bsn", "999995303", out), KB_OK);
    CHECK_STR(out, "d962e6068e661b9ca210c76649b4318c");
    CHECK_INT(kb_event_pseudonym(k16, 15, "bsn", "999995303", out), KB_ERR_INVALID);
    CHECK_INT(kb_event_pseudonym(NULL, 32, "bsn", "999995303", out), KB_ERR_INVALID);
}

static void test_time(void)
{
    char out[40];
    /* python3: datetime.fromtimestamp(ms / 1000, timezone.utc) */
    kb_event_time(0, out);
    CHECK_STR(out, "1970-01-01T00:00:00.000Z");
    kb_event_time(1710753330250, out);
    CHECK_STR(out, "2024-03-18T09:15:30.250Z");
    kb_event_time(1710753330999, out);
    CHECK_STR(out, "2024-03-18T09:15:30.999Z");
    kb_event_time(951782400001, out);
    CHECK_STR(out, "2000-02-29T00:00:00.001Z");
    kb_event_time(253402300799999, out);
    CHECK_STR(out, "9999-12-31T23:59:59.999Z");
    kb_event_time(-1000, out);
    CHECK_STR(out, "1969-12-31T23:59:59.000Z");
#if 1 /* regression tests of fixed bugs */
    /* Regression: the seconds were truncated toward zero, so
     * instants before 1970 that are not whole seconds come out one second
     * late (-1 ms gives 1970-01-01T00:00:00.999Z). */
    kb_event_time(-1, out);
    CHECK_STR(out, "1969-12-31T23:59:59.999Z");
    kb_event_time(-1500, out);
    CHECK_STR(out, "1969-12-31T23:59:58.500Z");
#endif
}

static void test_traceparent(void)
{
    char out[64];
    kb_event_traceparent("36d52269-2359-5684-86c0-d9789b7c9c9c", out);
    CHECK_STR(out, "00-36d522692359568486c0d9789b7c9c9c-36d5226923595684-01");
    kb_event_traceparent("36d52269-2359", out);
    CHECK_STR(out, "");
    kb_event_traceparent("", out);
    CHECK_STR(out, "");
}

/* Write @p len bytes to @p path. */
static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK_INT(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_key_load(void)
{
    char dir[] = "/tmp/kb_test_event_XXXXXX";
    char path[256], errstr[256];
    uint8_t *key = NULL;
    size_t key_len = 0;

    CHECK(mkdtemp(dir) != NULL);

    /* Hex, with surrounding whitespace: 32 bytes 00..1f. */
    snprintf(path, sizeof path, "%s/hex.key", dir);
    static const char hexkey[] =
        "  000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n\n";
    write_file(path, hexkey, sizeof hexkey - 1);
    CHECK_INT(kb_event_key_load(path, &key, &key_len, errstr, sizeof errstr), KB_OK);
    CHECK_INT(key_len, 32);
    if (key && key_len == 32)
        for (size_t i = 0; i < 32; i++)
            CHECK_INT(key[i], i);
    free(key);
    key = NULL;

    /* Raw: not hex, used exactly as stored (binary-safe, newline included). */
    snprintf(path, sizeof path, "%s/raw.key", dir);
    static const char rawkey[] = "correct horse battery staple!\n";
    write_file(path, rawkey, sizeof rawkey - 1);
    CHECK_INT(kb_event_key_load(path, &key, &key_len, errstr, sizeof errstr), KB_OK);
    CHECK_INT(key_len, 30);
    if (key && key_len == 30)
        CHECK_MEM(key, key_len, "correct horse battery staple!\n");
    free(key);
    key = NULL;

    /* Raw binary, 16 bytes. */
    static const uint8_t bin[16] = {0x80, 0x81, 0x00, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x7f};
    write_file(path, bin, sizeof bin);
    CHECK_INT(kb_event_key_load(path, &key, &key_len, errstr, sizeof errstr), KB_OK);
    CHECK_INT(key_len, 16);
    CHECK(key && memcmp(key, bin, 16) == 0);
    free(key);
    key = NULL;

    /* Too short: 15 raw bytes; the error names the file but not the key. */
    snprintf(path, sizeof path, "%s/short.key", dir);
    write_file(path, "Zq7secretpass15", 15);
    errstr[0] = '\0';
    CHECK_INT(kb_event_key_load(path, &key, &key_len, errstr, sizeof errstr), KB_ERR_CONF);
    CHECK(key == NULL);
    CHECK(strstr(errstr, path) != NULL);
    CHECK(strstr(errstr, "Zq7secretpass15") == NULL);
    CHECK(strstr(errstr, "Zq7") == NULL);
    unlink(path);

    /* Whitespace only counts as empty. */
    snprintf(path, sizeof path, "%s/blank.key", dir);
    write_file(path, " \n\t\n                    \n", 25);
    CHECK_INT(kb_event_key_load(path, &key, &key_len, errstr, sizeof errstr), KB_ERR_CONF);
    unlink(path);

    /* Hex that is too short or odd is an error, not silently raw. */
    snprintf(path, sizeof path, "%s/hex30.key", dir);
    write_file(path, "000102030405060708090a0b0c0d0e\n", 31);
    CHECK_INT(kb_event_key_load(path, &key, &key_len, errstr, sizeof errstr), KB_ERR_CONF);
    CHECK(strstr(errstr, "even number of at least 32 hex digits") != NULL);
    write_file(path, "000102030405060708090a0b0c0d0e0f1\n", 34);
    CHECK_INT(kb_event_key_load(path, &key, &key_len, errstr, sizeof errstr), KB_ERR_CONF);
    unlink(path);

    /* Over 4096 bytes is refused rather than cut. */
    snprintf(path, sizeof path, "%s/big.key", dir);
    static char big[5000];
    memset(big, 'k', sizeof big);
    write_file(path, big, sizeof big);
    CHECK_INT(kb_event_key_load(path, &key, &key_len, errstr, sizeof errstr), KB_ERR_CONF);
    CHECK(strstr(errstr, "larger than 4096") != NULL);
    unlink(path);

    /* Missing file. */
    snprintf(path, sizeof path, "%s/missing.key", dir);
    errstr[0] = '\0';
    CHECK_INT(kb_event_key_load(path, &key, &key_len, errstr, sizeof errstr), KB_ERR_IO);
    CHECK(strstr(errstr, path) != NULL);
    CHECK(key == NULL);

    snprintf(path, sizeof path, "%s/hex.key", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/raw.key", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_headers_round_trip();
    test_headers_invalid();
    test_frame();
    test_uuid5();
    test_pseudonym();
    test_time();
    test_traceparent();
    test_key_load();
    KB_TEST_DONE();
}
