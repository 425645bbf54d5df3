/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_deliver.c - the pure parts of webhook delivery: backoff bounds,
 * Retry-After parsing, the HMAC signatures (expected values computed with
 * Python's hmac module and openssl dgst) and the v2 signing string, RFC
 * 3339 parsing, and rendering an Avro event as a structured or binary
 * CloudEvent. The network parts are covered by
 * tests/integration/deliver_webhook.sh.
 */
#include <jansson.h>

#include "deliver.h"
#include "kb_test.h"

static void test_backoff(void)
{
    /* attempt n: cap = base * 2^(n-1) (<= max); result in [cap/2, cap]. */
    CHECK_INT(kb__deliver_backoff_ms(1, 1000, 3600000, 0), 500);
    CHECK_INT(kb__deliver_backoff_ms(1, 1000, 3600000, 500), 1000);
    CHECK_INT(kb__deliver_backoff_ms(1, 1000, 3600000, 501), 500); /* 501 % 501 */
    CHECK_INT(kb__deliver_backoff_ms(3, 1000, 3600000, 0), 2000);
    CHECK_INT(kb__deliver_backoff_ms(3, 1000, 3600000, 2000), 4000);
    CHECK_INT(kb__deliver_backoff_ms(40, 1000, 3600000, 0), 1800000); /* capped */
    CHECK_INT(kb__deliver_backoff_ms(40, 1000, 3600000, 1800000), 3600000);
    CHECK_INT(kb__deliver_backoff_ms(0, 1000, 3600000, 0), 500); /* treated as 1 */
    CHECK_INT(kb__deliver_backoff_ms(1, 1, 1, 0), 1);            /* never below 1 ms */
    for (uint32_t r = 0; r < 100000; r += 7919) {
        for (int a = 1; a < 30; a++) {
            int64_t cap = 1000LL << (a - 1 < 12 ? a - 1 : 12);
            if (cap > 3600000)
                cap = 3600000;
            int64_t d = kb__deliver_backoff_ms(a, 1000, 3600000, r);
            CHECK(d >= cap / 2 && d <= cap);
        }
    }
}

static void test_retry_after(void)
{
    CHECK_INT(kb__deliver_retry_after_ms("120", 0), 120000);
    CHECK_INT(kb__deliver_retry_after_ms(" 0", 0), 0);
    /* 784111777 = Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example). */
    CHECK_INT(kb__deliver_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111772000LL), 5000);
    CHECK_INT(kb__deliver_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111790000LL), 0);
    CHECK_INT(kb__deliver_retry_after_ms(NULL, 0), -1);
    CHECK_INT(kb__deliver_retry_after_ms("soon", 0), -1);
    CHECK_INT(kb__deliver_retry_after_ms("12abc", 0), -1);
    CHECK_INT(kb__deliver_retry_after_ms("-5", 0), -1);
    CHECK_INT(kb__deliver_retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", 0), -1);
}

static void test_signature(void)
{
    /* python3: hmac.new(b"0123456789abcdef", b'1700000000.{"a":1}', "sha256").hexdigest() */
    char sig[68];
    kb__deliver_signature((const uint8_t *)"0123456789abcdef", 16, "1700000000", "{\"a\":1}", 7,
                          sig);
    CHECK_STR(sig, "v1=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23");
    char other[68];
    kb__deliver_signature((const uint8_t *)"0123456789abcdef", 16, "1700000001", "{\"a\":1}", 7,
                          other);
    CHECK(strcmp(sig, other) != 0); /* the timestamp is signed too */
}

/* Attributes of the v2 vector below. */
static void vector_attrs(struct kb_event_attrs *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->id, sizeof a->id, "5f0c6e0e-0000-5000-8000-000000000001");
    snprintf(a->source, sizeof a->source, "urn:nld:oin:00000001234567890000:systeem:test");
    snprintf(a->type, sizeof a->type, "nl.kinderbijslag.aanvraag-uitgenodigd");
    snprintf(a->time, sizeof a->time, "2024-03-18T09:15:30.250Z");
    snprintf(a->subject, sizeof a->subject, "0123456789abcdef0123456789abcdef");
    a->sequence = 42;
}

static void test_signature_v2(void)
{
    const uint8_t *key = (const uint8_t *)"0123456789abcdef";
    struct kb_event_attrs a;
    vector_attrs(&a);
    struct kb__deliver_header hdrs[KB_DELIVER_SIGNED_MAX];
    char seq[24];
    size_t n = kb__deliver_post_headers(&a, KB_DELIVER_BINARY, seq, hdrs);
    CHECK_INT(n, 10); /* no dataref */
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(hdrs[i - 1].name, hdrs[i].name) < 0); /* sorted, no name twice */
    struct kb__deliver_sig sig;
    CHECK_INT(kb__deliver_sign(key, 16, "1700000000", hdrs, n, "{\"a\":1}", 7, 1, &sig), KB_OK);
    CHECK_STR(sig.signed_headers, "ce-id,ce-sequence,ce-sequencetype,ce-source,ce-specversion,"
                                  "ce-subject,ce-time,ce-type,content-type,idempotency-key");
    /* Computed independently:
     * printf 'v2\n1700000000\nce-id,ce-sequence,ce-sequencetype,ce-source,ce-specversion,\
     * ce-subject,ce-time,ce-type,content-type,idempotency-key\n\
     * ce-id:5f0c6e0e-0000-5000-8000-000000000001\nce-sequence:42\nce-sequencetype:Integer\n\
     * ce-source:urn:nld:oin:00000001234567890000:systeem:test\nce-specversion:1.0\n\
     * ce-subject:0123456789abcdef0123456789abcdef\nce-time:2024-03-18T09:15:30.250Z\n\
     * ce-type:nl.kinderbijslag.aanvraag-uitgenodigd\ncontent-type:application/json\n\
     * idempotency-key:5f0c6e0e-0000-5000-8000-000000000001\n\n{"a":1}' \
     * | openssl dgst -sha256 -hmac 0123456789abcdef
     * (one line, without the backslash-newlines); v1 as in test_signature(). */
    CHECK_STR(sig.header, "v1=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23, "
                          "v2=a2cebcfcb84a182dab21c9fdcc66ec6322104157b26cdcf30a61f10efd0c64dc");

    /* Structured mode signs the content type and the idempotency key. */
    struct kb__deliver_header shdrs[KB_DELIVER_SIGNED_MAX];
    CHECK_INT(kb__deliver_post_headers(&a, KB_DELIVER_STRUCTURED, seq, shdrs), 2);
    CHECK_STR(shdrs[0].name, "content-type");
    CHECK_STR(shdrs[1].name, "idempotency-key");
    CHECK_STR(shdrs[1].value, a.id);

    /* Each signed header, changed in value or name or left out, changes
     * the canonical string and v2, never v1 (which does not cover them). */
    char *base = NULL;
    size_t base_len = 0;
    CHECK_INT(kb__deliver_canonical_v2("1700000000", hdrs, n, &base, &base_len), KB_OK);
    for (size_t i = 0; i < n; i++) {
        for (int how = 0; how < 3; how++) {
            struct kb__deliver_header t[KB_DELIVER_SIGNED_MAX];
            memcpy(t, hdrs, sizeof t);
            char changed[600];
            snprintf(changed, sizeof changed, "%sx", hdrs[i].value);
            size_t tn = n;
            if (how == 0) {
                t[i].value = changed;
            } else if (how == 1) {
                t[i].name = "ce-other";
            } else {
                memmove(&t[i], &t[i + 1], (n - i - 1) * sizeof t[0]);
                tn--;
            }
            char *c = NULL;
            size_t cl = 0;
            CHECK_INT(kb__deliver_canonical_v2("1700000000", t, tn, &c, &cl), KB_OK);
            CHECK(c && (cl != base_len || memcmp(c, base, cl) != 0));
            free(c);
            struct kb__deliver_sig ts;
            CHECK_INT(kb__deliver_sign(key, 16, "1700000000", t, tn, "{\"a\":1}", 7, 1, &ts),
                      KB_OK);
            CHECK(strncmp(ts.header, sig.header, 68) == 0);      /* v1 the same */
            CHECK(strcmp(ts.header + 68, sig.header + 68) != 0); /* v2 not */
        }
    }
    /* The timestamp and the body are in v2 too. */
    struct kb__deliver_sig other;
    CHECK_INT(kb__deliver_sign(key, 16, "1700000001", hdrs, n, "{\"a\":1}", 7, 1, &other), KB_OK);
    CHECK(strcmp(other.header + 68, sig.header + 68) != 0);
    CHECK_INT(kb__deliver_sign(key, 16, "1700000000", hdrs, n, "{\"a\":2}", 7, 1, &other), KB_OK);
    CHECK(strcmp(other.header + 68, sig.header + 68) != 0);

    /* A receiver is handed values without surrounding white space: the
     * same value signed with it gives the same string. */
    struct kb__deliver_header t[KB_DELIVER_SIGNED_MAX];
    memcpy(t, hdrs, sizeof t);
    char padded[600];
    snprintf(padded, sizeof padded, " \t%s \t", hdrs[0].value);
    t[0].value = padded;
    char *c = NULL;
    size_t cl = 0;
    CHECK_INT(kb__deliver_canonical_v2("1700000000", t, n, &c, &cl), KB_OK);
    CHECK(c && cl == base_len && memcmp(c, base, cl) == 0);
    free(c);
    /* A value that could start a line of its own is refused, not signed. */
    static const char *const forged[] = {"nl.x\nce-type:nl.y", "nl.x\r", "\nnl.x"};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        t[0].value = forged[i];
        c = NULL;
        CHECK_INT(kb__deliver_canonical_v2("1700000000", t, n, &c, &cl), KB_ERR_INVALID);
        CHECK(c == NULL);
        CHECK_INT(kb__deliver_sign(key, 16, "1700000000", t, n, "{}", 2, 1, &other),
                  KB_ERR_INVALID);
        CHECK_INT(kb__deliver_sign(key, 16, "1700000000", t, n, "{}", 2, 0, &other),
                  KB_ERR_INVALID);
    }
    free(base);

    /* --signature v1: the same v1, alone, and no headers named as signed. */
    struct kb__deliver_sig v1only;
    memset(&v1only, 'x', sizeof v1only);
    CHECK_INT(kb__deliver_sign(key, 16, "1700000000", hdrs, n, "{\"a\":1}", 7, 0, &v1only), KB_OK);
    CHECK_STR(v1only.header, "v1=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23");
    CHECK_STR(v1only.signed_headers, "");
}

static void test_time(void)
{
    CHECK_INT(kb__deliver_parse_time("2024-03-18T09:15:30.250Z"), 1710753330250LL);
    CHECK_INT(kb__deliver_parse_time("2024-03-18T10:15:30+01:00"), 1710753330000LL);
    CHECK_INT(kb__deliver_parse_time("2024-03-18T09:15:30.2Z"), 1710753330200LL);
    CHECK_INT(kb__deliver_parse_time("2024-03-18 09:15:30"), -1);
    CHECK_INT(kb__deliver_parse_time("2024-03-18T09:15:30Zjunk"), -1);
    CHECK_INT(kb__deliver_parse_time(NULL), -1);
}

static void test_permanent_status(void)
{
    struct kb__deliver_statuses set;
    char errstr[256];
    CHECK_INT(kb__deliver_statuses_parse(KB_DELIVER_PERMANENT_DEFAULT, &set, errstr, sizeof errstr),
              KB_OK);
    /* the request is wrong for good: dead-letter at once */
    static const int permanent[] = {400, 410, 413, 415, 422};
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++)
        CHECK_INT(kb__deliver_statuses_has(&set, permanent[i]), 1);
    /* may pass: a timeout, too early, throttled, the webhook's own trouble,
     * and a key or certificate the operator can still fix */
    static const int retryable[] = {401, 403, 404, 408, 425, 429, 500,
                                    502, 503, 504, 0,   200, 399, 600};
    for (size_t i = 0; i < sizeof retryable / sizeof retryable[0]; i++)
        CHECK_INT(kb__deliver_statuses_has(&set, retryable[i]), 0);

    CHECK_INT(kb__deliver_statuses_parse("599,400,463", &set, errstr, sizeof errstr), KB_OK);
    CHECK_INT(kb__deliver_statuses_has(&set, 400), 1);
    CHECK_INT(kb__deliver_statuses_has(&set, 463), 1); /* 463 = bit 63: the first word's end */
    CHECK_INT(kb__deliver_statuses_has(&set, 464), 0);
    CHECK_INT(kb__deliver_statuses_has(&set, 599), 1);
    CHECK_INT(kb__deliver_statuses_has(&set, 410), 0);
    CHECK_INT(kb__deliver_statuses_parse("none", &set, errstr, sizeof errstr), KB_OK);
    CHECK_INT(kb__deliver_statuses_has(&set, 410), 0);
    static const char *const bad[] = {"",    "410,",     ",410",    "41",  "4100",     "399",
                                      "600", "410 ,422", "410;422", "abc", "none,410", "-410"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errstr[0] = '\0';
        CHECK_INT(kb__deliver_statuses_parse(bad[i], &set, errstr, sizeof errstr), KB_ERR_CONF);
        CHECK(strstr(errstr, "HTTP statuses 400 to 599") != NULL);
    }
}

/* Whether partition @p i of three, holding pending[0..2], may take another
 * event under --max-pending @p max (with @p room to spare). */
static int may_take(const int pending[3], int max, int i, int room)
{
    int reserve = kb__deliver_partition_reserve(max, 3);
    long used = 0;
    for (int j = 0; j < 3; j++)
        used += pending[j] > reserve ? pending[j] : reserve;
    return kb__deliver_partition_may_take(pending[i], reserve, used, max, room);
}

static void test_partition_budget(void)
{
    CHECK_INT(kb__deliver_partition_reserve(1000, 3), 166);
    CHECK_INT(kb__deliver_partition_reserve(1000, 1), 500);
    CHECK_INT(kb__deliver_partition_reserve(2, 3), 1); /* never 0: each partition can move */
    CHECK_INT(kb__deliver_partition_reserve(7, 0), 3);

    /* --max-pending 12 over three partitions: a reserve of 2 each, 6 shared.
     * Partition 0's events never finish (its key's head keeps failing); 1 and
     * 2 deliver every event at once. 0 fills its reserve and the shared part,
     * then waits; 1 and 2 are never refused; the total stays within 12. */
    int pending[3] = {0, 0, 0}, refused[3] = {0, 0, 0};
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 3; i++) {
            if (may_take(pending, 12, i, 0))
                pending[i]++;
            else
                refused[i]++;
        }
        CHECK(pending[0] + pending[1] + pending[2] <= 12);
        pending[1] = pending[2] = 0;
    }
    CHECK_INT(pending[0], 8);
    CHECK(refused[0] > 0);
    CHECK_INT(refused[1] + refused[2], 0);
    /* A single partition may use the whole budget (reserve 500 of 1000). */
    CHECK_INT(kb__deliver_partition_may_take(999, 500, 999, 1000, 0), 1);
    CHECK_INT(kb__deliver_partition_may_take(1000, 500, 1000, 1000, 0), 0);

    /* Partition 1 gets stuck too: it still has its reserve, and 2 goes on. */
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 3; i++) {
            if (may_take(pending, 12, i, 0))
                pending[i]++;
            else
                refused[i]++;
        }
        CHECK(pending[0] + pending[1] + pending[2] <= 12);
        pending[2] = 0;
    }
    CHECK_INT(pending[0], 8);
    CHECK_INT(pending[1], 2);
    CHECK_INT(refused[2], 0);

    /* Resuming wants room for reserve/2 = 1 more: 0 stays paused when one
     * of its events finishes, and resumes when two have. */
    pending[0] = 7;
    CHECK_INT(may_take(pending, 12, 0, 0), 1);
    CHECK_INT(may_take(pending, 12, 0, 1), 0);
    pending[0] = 6;
    CHECK_INT(may_take(pending, 12, 0, 1), 1);
}

static void test_render(void)
{
    const char *src = getenv("KB_SOURCE_DIR");
    char dir[1024], errstr[256];
    snprintf(dir, sizeof dir, "%s/schemas", src ? src : ".");
    kb_schemas_t *schemas = kb_schemas_load_dir(dir, errstr, sizeof errstr);
    CHECK(schemas != NULL);
    if (!schemas) {
        fprintf(stderr, "%s\n", errstr);
        return;
    }
    const struct kb_schema *s = kb_schemas_by_type(schemas, "nl.kinderbijslag.aanvraag-uitgenodigd");
    CHECK(s != NULL);
    if (!s)
        goto out;
    avro_value_t v, f, el;
    avro_generic_value_new(s->iface, &v);
    kb_value_init_nulls(&v);
    kb_value_set_string(&v, "kenmerk", "100000000007");
    kb_value_set_string(&v, "bsnOuder", "999996204");
    kb_value_set_string(&v, "bsnKind", "999995303");
    kb_value_set_string(&v, "geboortedatumKind", "20240315");
    avro_value_get_by_name(&v, "kanaal", &f, NULL);
    avro_value_set_enum(&f, 1);
    kb_value_set_int(&v, "uitersteReactiedatum", 19889);
    avro_value_get_by_name(&v, "bronEventIds", &f, NULL);
    avro_value_append(&f, &el, NULL);
    avro_value_set_string(&el, "id-1");
    uint8_t *val = NULL;
    size_t len = 0;
    CHECK_INT(kb_schema_encode(s, &v, &val, &len, errstr, sizeof errstr), KB_OK);
    avro_value_decref(&v);

    struct kb_event_attrs a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "5f0c6e0e-0000-5000-8000-000000000001");
    snprintf(a.source, sizeof a.source, "urn:nld:oin:00000001234567890000:systeem:test");
    snprintf(a.type, sizeof a.type, "nl.kinderbijslag.aanvraag-uitgenodigd");
    snprintf(a.time, sizeof a.time, "2024-03-18T09:15:30.250Z");
    snprintf(a.subject, sizeof a.subject, "0123456789abcdef0123456789abcdef");
    a.sequence = 42;
    char *body = NULL;
    size_t blen = 0;
    CHECK_INT(kb__deliver_render(schemas, &a, val, len, KB_DELIVER_STRUCTURED, &body, &blen, errstr,
                                 sizeof errstr),
              KB_OK);
    json_error_t jerr;
    json_t *doc = body ? json_loadb(body, blen, 0, &jerr) : NULL;
    CHECK(doc != NULL);
    CHECK_STR(json_string_value(json_object_get(doc, "specversion")), "1.0");
    CHECK_STR(json_string_value(json_object_get(doc, "id")), a.id);
    CHECK_STR(json_string_value(json_object_get(doc, "type")), a.type);
    CHECK_STR(json_string_value(json_object_get(doc, "subject")), a.subject);
    CHECK_STR(json_string_value(json_object_get(doc, "sequence")), "42");
    CHECK_STR(json_string_value(json_object_get(doc, "sequencetype")), "Integer");
    CHECK_STR(json_string_value(json_object_get(doc, "datacontenttype")), "application/json");
    CHECK(json_object_get(doc, "dataref") == NULL); /* unset attributes are left out */
    json_t *data = json_object_get(doc, "data");
    CHECK_STR(json_string_value(json_object_get(data, "kenmerk")), "100000000007");
    CHECK_STR(json_string_value(json_object_get(data, "kanaal")), "PAPIER");
    CHECK_INT(json_integer_value(json_object_get(data, "uitersteReactiedatum")), 19889);
    CHECK_STR(json_string_value(json_array_get(json_object_get(data, "bronEventIds"), 0)), "id-1");
    json_decref(doc);
    free(body);

    body = NULL;
    CHECK_INT(kb__deliver_render(schemas, &a, val, len, KB_DELIVER_BINARY, &body, &blen, errstr,
                                 sizeof errstr),
              KB_OK);
    doc = body ? json_loadb(body, blen, 0, &jerr) : NULL;
    CHECK(doc && json_object_get(doc, "specversion") == NULL); /* data only */
    CHECK_STR(json_string_value(json_object_get(doc, "bsnKind")), "999995303");
    json_decref(doc);
    free(body);

    /* Permanent failures: not framed, unknown schema. (Truncated payloads are
     * kb_schema_decode's, tested in test_schema.c.) */
    CHECK_INT(kb__deliver_render(schemas, &a, "xy", 2, KB_DELIVER_STRUCTURED, &body, &blen, errstr,
                                 sizeof errstr),
              KB_ERR_INVALID);
    val[4] ^= 0x55;
    CHECK_INT(kb__deliver_render(schemas, &a, val, len, KB_DELIVER_STRUCTURED, &body, &blen, errstr,
                                 sizeof errstr),
              KB_ERR_SCHEMA);
    CHECK(strstr(errstr, "unknown schema id") != NULL);
    val[4] ^= 0x55;

    /* Bytes the validator refuses are never handed to avro-c, and the
     * reason is the validator's: a BSN that fails the 11-proef is good Avro
     * (avro-c would decode and render it), and a value cut short is
     * refused at the offset where it ends. */
    avro_generic_value_new(s->iface, &v);
    kb_value_init_nulls(&v);
    kb_value_set_string(&v, "kenmerk", "100000000007");
    kb_value_set_string(&v, "bsnOuder", "999996204");
    kb_value_set_string(&v, "bsnKind", "999995304"); /* 11-proef fails */
    kb_value_set_string(&v, "geboortedatumKind", "20240315");
    kb_value_set_int(&v, "uitersteReactiedatum", 19889);
    uint8_t *bad = NULL;
    size_t bad_len = 0;
    CHECK_INT(kb_schema_encode(s, &v, &bad, &bad_len, errstr, sizeof errstr), KB_OK);
    avro_value_decref(&v);
    body = NULL;
    errstr[0] = '\0';
    CHECK_INT(kb__deliver_render(schemas, &a, bad, bad_len, KB_DELIVER_STRUCTURED, &body, &blen,
                                 errstr, sizeof errstr),
              KB_ERR_INVALID);
    CHECK(body == NULL);
    CHECK(strstr(errstr, "payload fails schema 2001: bsn-11proef at bsnKind") != NULL);
    CHECK(strstr(errstr, "999995304") == NULL); /* never the value */
    free(bad);
    CHECK_INT(kb__deliver_render(schemas, &a, val, len - 1, KB_DELIVER_BINARY, &body, &blen, errstr,
                                 sizeof errstr),
              KB_ERR_INVALID);
    CHECK(strstr(errstr, "payload fails schema 2001: truncated") != NULL);
    free(val);
out:
    kb_schemas_destroy(schemas);
}

int main(void)
{
    test_backoff();
    test_retry_after();
    test_signature();
    test_signature_v2();
    test_time();
    test_permanent_status();
    test_partition_budget();
    test_render();
    KB_TEST_DONE();
}
