/* SPDX-License-Identifier: EUPL-1.2 */
/* test_admin.c - the pure parts of the admin API and dashboard: the
 * dashboard snapshot merged from metrics documents, the server-sent event
 * frame, the redrive request parser, dead-letter header escaping, and the
 * shared serving options; and the dead-letter routes against a broker that
 * never answers: they wait on the admin's dead-letter worker, never on the
 * server thread, at most 4 at once, and a stop with some still queued is
 * clean; and /events clients that stop reading: snapshots dropped for them
 * (counted, then announced), and one that stays stuck disconnected. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/admin.h"
#include "ketenbus/kafka.h"
#include "ketenbus/metrics.h"
#include "ketenbus/serve.h"
#include "ketenbus/sub.h"

static double num(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    return json_is_number(v) ? json_number_value(v) : -1;
}

static void test_snapshot(void)
{
    const char *self =
        "{\"kb_events_in_total\":[{\"labels\":{\"source\":\"gba\",\"type\":\"a\"},\"value\":7},"
        "{\"labels\":{\"source\":\"gba\",\"type\":\"b\"},\"value\":3},"
        "{\"labels\":{\"source\":\"svb\",\"type\":\"a\"},\"value\":2}],"
        "\"kb_events_out_total\":[{\"labels\":{\"subscriber\":\"x\",\"type\":\"a\"},\"value\":5}],"
        "\"kb_validation_failures_total\":[{\"labels\":{\"rule\":\"bsn-11\"},\"value\":4}],"
        "\"kb_kafka_consumer_lag\":[{\"labels\":{\"topic\":\"t\",\"partition\":\"0\"},\"value\":6},"
        "{\"labels\":{\"topic\":\"t\",\"partition\":\"1\"},\"value\":1}],"
        "\"kb_audit_records_total\":[{\"labels\":{\"outcome\":\"delivered\"},\"value\":9}],"
        "\"kb_e2e_latency_seconds\":[{\"labels\":{\"subscriber\":\"x\"},\"count\":5,\"sum\":1}]}";
    const char *peer =
        "{\"kb_deliver_retry_backlog\":[{\"labels\":{\"subscriber\":\"x\"},\"value\":11}],"
        "\"kb_deliver_attempts_total\":[{\"labels\":{\"subscriber\":\"x\",\"outcome\":\"ok\"},\"value\":20},"
        "{\"labels\":{\"subscriber\":\"x\",\"outcome\":\"http_5xx\"},\"value\":3},"
        "{\"labels\":{\"subscriber\":\"x\",\"outcome\":\"throttled\"},\"value\":2}]}";
    const char *docs[] = {self, peer, "not json", NULL};
    size_t lens[] = {strlen(self), strlen(peer), 8, 0};
    json_t *depth = json_pack("{s:i}", "kb.dlq", 4);
    json_t *s = kb_dashboard_snapshot(docs, lens, 4, 1234, depth);
    CHECK(s != NULL);
    CHECK_INT(num(s, "t", NULL), 1234);
    CHECK_INT(num(s, "in", "gba"), 10); /* summed over types */
    CHECK_INT(num(s, "in", "svb"), 2);
    CHECK_INT(num(s, "out", "x"), 5);
    CHECK_INT(num(s, "failures", "bsn-11"), 4);
    CHECK_INT(num(s, "lag", "t"), 7); /* summed over partitions */
    CHECK_INT(num(s, "audit", NULL), 9);
    CHECK_INT(num(s, "backlog", "x"), 11); /* from the peer */
    CHECK_INT(num(s, "attempts_failed", "x"), 5); /* every outcome but ok */
    CHECK_INT(num(s, "dlq_depth", "kb.dlq"), 4);
    CHECK_INT(num(s, "peers_down", NULL), 2); /* unparsable and absent */
    CHECK_INT(json_object_size(json_object_get(s, "dead_letters")), 0);
    json_decref(s);
    /* depth is copied, not taken */
    CHECK_INT(depth->refcount, 1);
    json_decref(depth);
    s = kb_dashboard_snapshot(NULL, NULL, 0, 1, NULL);
    CHECK(s && json_is_object(json_object_get(s, "dlq_depth")));
    json_decref(s);
}

static void test_sse_frame(void)
{
    json_t *d = json_pack("{s:s, s:i}", "b", "two\nlines", "a", 1);
    size_t len = 0;
    char *f = kb_dashboard_sse_frame("metrics", d, &len);
    CHECK_STR(f, "event: metrics\ndata: {\"a\":1,\"b\":\"two\\nlines\"}\n\n");
    CHECK_INT(len, strlen(f));
    free(f);
    json_decref(d);
}

static void test_parse_redrive(void)
{
    char err[256];
    struct kb_admin_letter *l;
    json_t *b = json_loads("{\"letters\":[{\"partition\":1,\"offset\":5},{\"partition\":0,\"offset\":0}]}", 0, NULL);
    CHECK_INT(kb_admin_parse_redrive(b, 10, &l, err, sizeof err), 2);
    CHECK_INT(l[0].partition, 1);
    CHECK_INT(l[0].offset, 5);
    CHECK_INT(l[1].partition, 0);
    CHECK(l[0].value == NULL && l[1].value == NULL);
    kb_admin_letters_free(l, 2);
    json_decref(b);
    b = json_loads("{\"partition\":2,\"offsets\":[7,8,9]}", 0, NULL);
    CHECK_INT(kb_admin_parse_redrive(b, 10, &l, err, sizeof err), 3);
    CHECK_INT(l[2].partition, 2);
    CHECK_INT(l[2].offset, 9);
    kb_admin_letters_free(l, 3);
    json_decref(b);
    /* A corrected value: the bytes decoded exactly, padding of 0, 1 and 2. */
    b = json_loads("{\"letters\":[{\"partition\":0,\"offset\":1,\"value_base64\":\"AAAAA+lh\"},"
                   "{\"partition\":0,\"offset\":2,\"value_base64\":\"AAAAA+k=\"},"
                   "{\"partition\":0,\"offset\":3,\"value_base64\":\"AAAAAw==\"}]}",
                   0, NULL);
    CHECK_INT(kb_admin_parse_redrive(b, 10, &l, err, sizeof err), 3);
    CHECK_INT(l[0].value_len, 6);
    CHECK(l[0].value && !memcmp(l[0].value, "\x00\x00\x00\x03\xe9\x61", 6));
    CHECK_INT(l[1].value_len, 5);
    CHECK(l[1].value && !memcmp(l[1].value, "\x00\x00\x00\x03\xe9", 5));
    CHECK_INT(l[2].value_len, 4);
    CHECK(l[2].value && !memcmp(l[2].value, "\x00\x00\x00\x03", 4));
    kb_admin_letters_free(l, 3);
    json_decref(b);
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"letters\":[]}",
        "{\"offsets\":[1], \"letters\":[]}",
        "{\"letters\":[{\"partition\":0}]}",
        "{\"letters\":[{\"partition\":-1,\"offset\":1}]}",
        "{\"offsets\":[\"1\"]}",
        "{\"offsets\":[1.5]}",
        "{\"partition\":\"x\",\"offsets\":[1]}",
        "{\"offsets\":[1,2,3,4,5,6,7,8,9,10,11]}",
        "{\"letters\":[1]}",
        "{\"letters\":[{\"partition\":0,\"offset\":1,\"value_base64\":\"AAA\"}]}",
        "{\"letters\":[{\"partition\":0,\"offset\":1,\"value_base64\":\"AA=A\"}]}",
        "{\"letters\":[{\"partition\":0,\"offset\":1,\"value_base64\":\"AAAA\\nAAAA\"}]}",
        "{\"letters\":[{\"partition\":0,\"offset\":1,\"value_base64\":\"AA-_\"}]}",
        "{\"letters\":[{\"partition\":0,\"offset\":1,\"value_base64\":5}]}",
        /* bits after the last byte: "AAAtiok=" and "AAAAAw==" are the texts */
        "{\"letters\":[{\"partition\":0,\"offset\":1,\"value_base64\":\"AAAtion=\"}]}",
        "{\"letters\":[{\"partition\":0,\"offset\":1,\"value_base64\":\"AAAAAx==\"}]}",
        "{\"letters\":[{\"partition\":0,\"offset\":1,\"value_base64\":\"AAAAA/==\"}]}",
        ("{\"letters\":[{\"partition\":0,\"offset\":1},"
         "{\"partition\":0,\"offset\":2,\"value_base64\":\"A===\"}]}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        b = json_loads(bad[i], 0, NULL);
        CHECK(b != NULL);
        err[0] = 0;
        l = (struct kb_admin_letter *)1;
        CHECK_INT(kb_admin_parse_redrive(b, 10, &l, err, sizeof err), -1);
        CHECK(l == NULL && err[0]);
        json_decref(b);
    }
}

static void test_printable(void)
{
    char buf[64];
    kb_dlq_printable("ok \"q\"\x01\xff", 8, buf, sizeof buf);
    CHECK_STR(buf, "ok \\x22q\\x22\\x01\\xff");
    kb_dlq_printable(NULL, 0, buf, sizeof buf);
    CHECK_STR(buf, "-");
    char big[300];
    memset(big, 'a', sizeof big);
    char out[400];
    kb_dlq_printable(big, sizeof big, out, sizeof out);
    CHECK_INT(strlen(out), 203); /* cut at 200, then "..." */
    kb_dlq_printable("\x01\x02\x03\x04", 4, buf, 10); /* never overflows */
    CHECK(strlen(buf) < 10);
}

static void test_serve_opts(void)
{
    struct kb_serve_opts o = {0};
    char buf[256], host[64], err[128];
    uint16_t port;
    CHECK_INT(kb_serve_opts_arg(&o, KB_SERVE_OPT_TOKEN_FILE, "/t"), 1);
    CHECK_INT(kb_serve_opts_arg(&o, 'b', "x"), 0);
    CHECK_STR(o.token_file, "/t");
    CHECK_INT(kb_serve_secured(&o), 1);
    CHECK_INT(kb_serve_public(&o, buf, sizeof buf), KB_OK);
    CHECK_STR(buf, KB_SERVE_PUBLIC_DEFAULT);
    o.extra_public = "/dashboard";
    kb_serve_public(&o, buf, sizeof buf);
    CHECK_STR(buf, KB_SERVE_PUBLIC_DEFAULT ",/dashboard");
    kb_serve_opts_arg(&o, KB_SERVE_OPT_PUBLIC, "");
    kb_serve_public(&o, buf, sizeof buf); /* explicit: exactly that, extras not added */
    CHECK_STR(buf, "");
    CHECK_INT(kb_serve_public(&o, buf, 0), KB_ERR_CONF);
    CHECK_INT(kb_serve_addr_parse(":9100", host, sizeof host, &port, err, sizeof err), KB_OK);
    CHECK_STR(host, "127.0.0.1");
    CHECK_INT(port, 9100);
    CHECK_INT(kb_serve_addr_parse("[::1]:80", host, sizeof host, &port, err, sizeof err), KB_OK);
    CHECK_STR(host, "::1");
    CHECK_INT(kb_serve_addr_parse("0.0.0.0:0", host, sizeof host, &port, err, sizeof err), KB_OK);
    CHECK_INT(port, 0);
    static const char *const bad[] = {"9100", "h:", "h:x", "h:70000", "h:-1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_INT(kb_serve_addr_parse(bad[i], host, sizeof host, &port, err, sizeof err),
                  KB_ERR_CONF);
    /* a certificate without its key, a client CA without TLS: refused before listening */
    struct kb_serve_opts t = {.tls_cert_file = "/c"};
    CHECK(kb_serve_new("127.0.0.1:0", &t, err, sizeof err) == NULL);
    struct kb_serve_opts c = {.tls_client_ca_file = "/ca"};
    CHECK(kb_serve_new("127.0.0.1:0", &c, err, sizeof err) == NULL);
    CHECK(strstr(err, "TLS") != NULL);
    kb_http_t *h = kb_serve_start("127.0.0.1:0", NULL, err, sizeof err);
    CHECK(h != NULL && kb_http_port(h) > 0);
    kb_http_destroy(h);
}

static void test_sub_json(void)
{
    char *types[] = {"nl.brp.persoon-geboren"};
    char *vals[] = {"0363"};
    struct kb_filter f = {.kind = KB_FILTER_FIELD, .path = "inschrijving.gemeente",
                          .op = KB_OP_EQ, .values = vals, .n_values = 1};
    struct kb_sub sub = {.name = "g", .purpose_id = "p", .legal_basis = "l", .types = types,
                         .n_types = 1, .filter = &f, .valid_from_ms = INT64_MIN,
                         .valid_until_ms = INT64_MAX, .delivery = KB_DELIVERY_WEBHOOK,
                         .topic = "kb.out.g"};
    sub.webhook.url = "https://example.invalid/hook";
    sub.webhook.secret_file = "/etc/secret";
    json_t *j = kb_admin_sub_json(&sub);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(s && strstr(s, "\"filter\":{\"field\":{\"op\":\"=\",\"path\":\"inschrijving.gemeente\","
                         "\"value\":\"0363\"}}"));
    CHECK(s && strstr(s, "\"secret_file\":\"/etc/secret\""));
    CHECK(s && strstr(s, "\"valid_from\":null"));
    free(s);
    json_decref(j);
}

/* A dry-run's samples name their field list by index: each sample carried
 * its own copy of the subscription's list, up to 100 of them per job, and a
 * posted list may be most of a 1 MiB body. */
static void test_dryrun_json(void)
{
    struct kb_sub items[1] = {{.name = "g"}};
    struct kb_subs subs = {.items = items, .n = 1};
    char *lists[] = {"a,b pseudonymised=b"};
    struct kb_dryrun_sample samples[3] = {
        {.id = "e1", .type = "t", .time = "2026-01-01T00:00:00Z", .field_list = 0},
        {.id = "e2", .type = "t", .field_list = 0},
        {.id = "e3", .type = "t", .field_list = SIZE_MAX}, /* out of memory */
    };
    struct kb_dryrun_sub_result t = {
        .total = 3, .samples = samples, .n_samples = 3, .field_lists = lists, .n_field_lists = 1};
    struct kb_dryrun_result r = {.read = 3, .subs = &t, .n_subs = 1, .samples_per_sub = 3};
    json_t *j = kb_dryrun_result_json(&r, &subs);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(s && strstr(s, "\"field_lists\":[\"a,b pseudonymised=b\"]"));
    CHECK(s && strstr(s, "{\"field_list\":0,\"id\":\"e1\",\"time\":\"2026-01-01T00:00:00Z\","
                         "\"type\":\"t\"},{\"field_list\":0,\"id\":\"e2\",\"time\":null,"
                         "\"type\":\"t\"},{\"field_list\":null,\"id\":\"e3\""));
    CHECK(s && strstr(s, "\"samples_per_subscription\":3"));
    /* The list once in all. */
    const char *once = s ? strstr(s, "pseudonymised") : NULL;
    CHECK(once && !strstr(once + 1, "pseudonymised"));
    free(s);
    json_decref(j);
}

/* --- dead-letter routes with no broker --- */

static void h_ok(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    kb_http_reply(req, 200, "text/plain", "ok", 2);
}

/* A GET of /admin/dlq on a thread of its own. */
struct waiter {
    char url[128];
    kb_err_t err;
    struct kb_http_response r;
    pthread_t t;
    atomic_int done; /* the fetch returned */
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    char err[256];
    w->err = kb_http_fetch("GET", w->url, NULL, NULL, 0, 30000, &w->r, err, sizeof err);
    atomic_store(&w->done, 1);
    return NULL;
}

/* Start @p w: a GET of @p path on @p port on a thread of its own. */
static void waiter_start(struct waiter *w, uint16_t port, const char *path)
{
    memset(w, 0, sizeof *w);
    snprintf(w->url, sizeof w->url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    pthread_create(&w->t, NULL, waiter_main, w);
}

/* The admin API of @p aopts, and /healthz, on a server of its own listening
 * on a port the kernel chose (into *@p port). The caller stops and destroys
 * both. */
static kb_http_t *admin_serve(const struct kb_admin_opts *aopts, kb_admin_t **a, uint16_t *port)
{
    char err[256];
    *a = kb_admin_new(aopts, err, sizeof err);
    CHECK(*a != NULL);
    kb_http_t *h = kb_http_new(NULL, err, sizeof err);
    CHECK(h != NULL);
    CHECK_INT(kb_admin_routes(*a, h), KB_OK);
    CHECK_INT(kb_http_route(h, "GET", "/healthz", h_ok, NULL), KB_OK);
    CHECK_INT(kb_http_start(h, err, sizeof err), KB_OK);
    *port = kb_http_port(h);
    return h;
}

/* @p method @p path on @p port within @p max_s seconds; the status, or -1. */
static int quick(uint16_t port, const char *method, const char *path, const char *body,
                 double max_s, int want_code)
{
    char url[128], err[256];
    struct kb_http_response r;
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    double t0 = kb_test_now_s();
    kb_err_t e = kb_http_fetch(method, url, body ? "application/json" : NULL, body,
                               body ? strlen(body) : 0, 5000, &r, err, sizeof err);
    double took = kb_test_now_s() - t0;
    if (e != KB_OK)
        return -1;
    CHECK(took < max_s);
    if (want_code) {
        json_t *j = json_loads(r.body, 0, NULL);
        CHECK_INT(json_integer_value(json_object_get(j, "error_code")), want_code);
        json_decref(j);
    }
    int status = r.status;
    kb_http_response_fini(&r);
    return status;
}

static void test_dlq_no_broker(void)
{
    char err[256];
    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    /* Nobody listens there: every dead-letter read waits for its metadata
     * call's 10 s, as with a frozen broker. */
    CHECK_INT(kb_kafka_opts_set(&kopts, "bootstrap.servers", "127.0.0.1:1", err, sizeof err),
              KB_OK);
    struct kb_admin_opts aopts = {.kafka = &kopts,
                                  .subs_path = "unused",
                                  .schemas_source = "unused",
                                  .dlq_topic = "kb-test.dlq"};
    kb_admin_t *a;
    uint16_t port;
    kb_http_t *h = admin_serve(&aopts, &a, &port);

    /* One page runs, three wait: the most there may be. */
    struct waiter w[4];
    for (int i = 0; i < 4; i++)
        waiter_start(&w[i], port, "/admin/dlq");
    usleep(500 * 1000);
    /* ... while the server answers everything else at once */
    CHECK_INT(quick(port, "GET", "/healthz", NULL, 1.0, 0), 200);
    CHECK_INT(quick(port, "GET", "/admin/dlq", NULL, 1.0, 50304), 503);
    CHECK_INT(quick(port, "POST", "/admin/dlq/redrive", "{\"offsets\":[1]}", 1.0, 50304), 503);
    CHECK_INT(quick(port, "GET", "/admin/dlq?limit=0", NULL, 1.0, 40004), 400);
    CHECK_INT(quick(port, "POST", "/admin/dlq/redrive", "{\"letters\":[]}", 1.0, 40006), 400);
    CHECK_INT(quick(port, "POST", "/admin/dlq/redrive", "{nope", 1.0, 40005), 400);
    CHECK_INT(quick(port, "GET", "/admin/dlq/x", NULL, 1.0, 40404), 404);
    CHECK_INT(quick(port, "GET", "/healthz", NULL, 1.0, 0), 200);

    /* Stop with one page running and three queued: the clients are cut
     * off, the running page is abandoned or finishes into a closed reply,
     * the queued ones are answered (dropped) by the destroy; ASan and LSan
     * watch for anything used after free or left behind. */
    kb_http_stop(h);
    for (int i = 0; i < 4; i++) {
        pthread_join(w[i].t, NULL);
        CHECK_INT(w[i].err, KB_ERR_IO);
    }
    kb_admin_destroy(a);
    kb_http_destroy(h);
    kb_kafka_opts_fini(&kopts);
}

/* --- GET /admin/subscriptions: the files are read off the server thread --- */

static const uint8_t subject_key[32] = "test-subject-key-not-a-secret!!";

/* In @p dir: volgers.csv with @p lines distinct people (BSNs passing the
 * eleven test), and subs.yaml with @p n_subs subscriptions following it. */
static void write_subs(const char *dir, int n_subs, int lines)
{
    char path[512];
    snprintf(path, sizeof path, "%s/volgers.csv", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    for (long p = 10000000; f && lines > 0; p++) {
        int sum = 0;
        long q = p;
        for (int weight = 2; weight <= 9; weight++, q /= 10)
            sum += (int)(q % 10) * weight;
        if (sum % 11 == 10)
            continue;
        fprintf(f, "bsn:%ld%d,2020-01-01,\n", p, sum % 11);
        lines--;
    }
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/subs.yaml", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("subscriptions:\n", f);
    for (int i = 0; i < n_subs; i++)
        fprintf(f,
                "  - name: s%d\n    purpose: {id: p, legal_basis: w}\n"
                "    types: [nl.brp.persoon-geboren]\n    follow: volgers.csv\n",
                i);
    fclose(f);
}

/* Seconds one kb_subs_load of @p dir takes here. */
static double load_seconds(const char *dir)
{
    struct kb_subs subs;
    char err[512] = "";
    double t0 = kb_test_now_s();
    CHECK_INT(kb_subs_load(dir, subject_key, sizeof subject_key, &subs, err, sizeof err), KB_OK);
    double took = kb_test_now_s() - t0;
    kb_subs_fini(&subs);
    return took;
}

static void test_subs_off_thread(void)
{
    char dir[] = "/tmp/kb-test-admin-subs-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    /* A load slow enough to see (some 3 s on this machine): subscriptions
     * following one long list, as many as that takes. */
    enum { LINES = 50000 };
    write_subs(dir, 1, LINES);
    double one = load_seconds(dir);
    int n_subs = (int)(3.0 / (one > 0.01 ? one : 0.01)) + 1;
    if (n_subs > 64)
        n_subs = 64;
    write_subs(dir, n_subs, LINES);
    double slow = n_subs * one;
    fprintf(stderr, "test_subs_off_thread: %d subscriptions of %d followed: some %.2f s a load\n",
            n_subs, LINES, slow);

    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    struct kb_admin_opts aopts = {.kafka = &kopts,
                                  .subs_path = dir,
                                  .subject_key = subject_key,
                                  .subject_key_len = sizeof subject_key,
                                  .schemas_source = "unused"};
    kb_admin_t *a;
    uint16_t port;
    kb_http_t *h = admin_serve(&aopts, &a, &port);

    /* The list and one subscription, loading; meanwhile the server answers
     * everything else at once (a hang guard, the bound is generous). */
    struct waiter w[3];
    const char *paths[3] = {"/admin/subscriptions", "/admin/subscriptions/s1",
                            "/admin/subscriptions/nope"};
    for (int i = 0; i < 3; i++)
        waiter_start(&w[i], port, paths[i]);
    usleep(300 * 1000);
    CHECK_INT(quick(port, "GET", "/healthz", NULL, 2.0, 0), 200);
    CHECK_INT(quick(port, "GET", "/admin/subscriptions/dry-run/1", NULL, 2.0, 40403), 404);
    /* ... while the load was still going (or the test showed nothing) */
    CHECK(!atomic_load(&w[0].done));

    /* Answered as before, from the worker. */
    for (int i = 0; i < 3; i++) {
        pthread_join(w[i].t, NULL);
        CHECK_INT(w[i].err, KB_OK);
    }
    json_t *list = json_loads(w[0].r.body ? w[0].r.body : "", 0, NULL);
    CHECK_INT(w[0].r.status, 200);
    CHECK_STR(json_string_value(json_object_get(list, "path")), dir);
    CHECK_INT(json_integer_value(json_object_get(list, "count")), n_subs);
    json_t *s1 = json_loads(w[1].r.body ? w[1].r.body : "", 0, NULL);
    CHECK_INT(w[1].r.status, 200);
    CHECK_STR(json_string_value(json_object_get(s1, "name")), "s1");
    CHECK_INT(num(s1, "follow", "subjects"), LINES);
    CHECK_INT(w[2].r.status, 404);
    json_decref(list);
    json_decref(s1);
    for (int i = 0; i < 3; i++)
        kb_http_response_fini(&w[i].r);

    /* A stop during a load gives it up between follow list lines, well
     * before it would end. */
    waiter_start(&w[0], port, "/admin/subscriptions");
    usleep(300 * 1000);
    double t0 = kb_test_now_s();
    kb_http_stop(h);
    kb_admin_destroy(a);
    CHECK(kb_test_now_s() - t0 < slow / 2);
    pthread_join(w[0].t, NULL);
    CHECK_INT(w[0].err, KB_ERR_IO);
    kb_http_destroy(h);
    kb_kafka_opts_fini(&kopts);
    char path[512];
    snprintf(path, sizeof path, "%s/subs.yaml", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/volgers.csv", dir);
    unlink(path);
    rmdir(dir);
}

/* --- POST /admin/subscriptions/validate: the body is parsed in memory --- */

/* POST @p body (@p len bytes) to validate on @p port: the status, and the
 * reply's message (or list of names) into @p msg. */
static int validate(uint16_t port, const char *body, size_t len, char *msg, size_t msg_size)
{
    char url[128], err[256];
    struct kb_http_response r;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/admin/subscriptions/validate", (unsigned)port);
    if (kb_http_fetch("POST", url, "application/yaml", body, len, 30000, &r, err, sizeof err))
        return -1;
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    const json_t *names = json_object_get(j, "subscriptions");
    snprintf(msg, msg_size, "%s",
             json_is_array(names) ? json_string_value(json_array_get(names, 0))
                                  : json_string_value(json_object_get(j, "message")));
    json_decref(j);
    int status = r.status;
    kb_http_response_fini(&r);
    return status;
}

static void test_validate_in_memory(void)
{
    /* Nowhere to write a temporary file: as on readOnlyRootFilesystem. */
    const char *tmpdir = getenv("TMPDIR");
    char *saved = tmpdir ? strdup(tmpdir) : NULL;
    setenv("TMPDIR", "/nonexistent/kb-test-admin", 1);
    char msg[512];
    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    struct kb_admin_opts aopts = {.kafka = &kopts,
                                  .subs_path = "/nonexistent/kb-test-admin",
                                  .subject_key = subject_key,
                                  .subject_key_len = sizeof subject_key,
                                  .schemas_source = "unused"};
    kb_admin_t *a;
    uint16_t port;
    kb_http_t *h = admin_serve(&aopts, &a, &port);

    static const char good[] = "subscriptions:\n"
                               "  - name: a\n"
                               "    purpose: {id: p, legal_basis: w}\n"
                               "    types: [t]\n";
    CHECK_INT(validate(port, good, sizeof good - 1, msg, sizeof msg), 200);
    CHECK_STR(msg, "a");
    static const char bad[] = "subscriptions:\n"
                              "  - name: a\n"
                              "    bogus: 1\n";
    CHECK_INT(validate(port, bad, sizeof bad - 1, msg, sizeof msg), 422);
    CHECK_STR(msg, "body:3:5: unknown key \"bogus\"");

    /* The reviewer's body (800 KB: 200,000 fields, as many pseudonymised)
     * held the server thread for two minutes; refused by its list's size. */
    size_t cap = 900000, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big + len, cap - len, "%s    fields: [", good);
    for (int i = 0; i < 200000; i++)
        len += (size_t)snprintf(big + len, cap - len, "b,");
    len += (size_t)snprintf(big + len, cap - len, "a]\n    pseudonymise: [a");
    for (int i = 1; i < 200000; i++)
        len += (size_t)snprintf(big + len, cap - len, ",a");
    len += (size_t)snprintf(big + len, cap - len, "]\n");
    CHECK_INT(validate(port, big, len, msg, sizeof msg), 422);
    CHECK_STR(msg, "body:5:13: fields has 200001 entries; at most 1024 are allowed");
    free(big);
    CHECK_INT(quick(port, "GET", "/healthz", NULL, 5.0, 0), 200);

    kb_http_stop(h);
    kb_admin_destroy(a);
    kb_http_destroy(h);
    kb_kafka_opts_fini(&kopts);
    if (saved)
        setenv("TMPDIR", saved, 1);
    else
        unsetenv("TMPDIR");
    free(saved);
}

/* --- /events clients that do not read --- */

/* GET /events on @p port from a socket with a small receive buffer (so the
 * kernel holds little for it); the request is sent, nothing is read. */
static int events_client(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    static const char req[] = "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    CHECK(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1));
    return fd;
}

/* Read what @p fd has for @p seconds, or until EOF (*eof set) or until
 * the bytes read end with @p until (unless NULL), into a growing buffer;
 * returns it (caller frees). */
static char *drain(int fd, double seconds, const char *until, int *eof)
{
    size_t cap = 1 << 20, got = 0;
    char *buf = malloc(cap);
    *eof = 0;
    double t0 = kb_test_now_s();
    while (buf && kb_test_now_s() - t0 < seconds) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if (got + 65536 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                break;
            buf = nb;
        }
        ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r <= 0) {
            *eof = 1;
            break;
        }
        got += (size_t)r;
        if (until && got >= strlen(until) &&
            !memcmp(buf + got - strlen(until), until, strlen(until)))
            break;
    }
    if (buf)
        buf[got] = '\0';
    return buf;
}

static double dropped_total(void)
{
    return kb_series_value(kb_metrics_series("kb_dashboard_events_dropped_total", NULL));
}

static void test_events_slow_viewers(void)
{
    char err[256];
    /* Big snapshots (600 sources, some 20 KB each), 200 a second, and a
     * small allowance per stream. */
    for (int i = 0; i < 600; i++) {
        char source[40];
        snprintf(source, sizeof source, "source-with-a-long-name-%03d", i);
        kb_metrics_counter_add("kb_events_in_total", i, source, "t", NULL);
    }
    double dropped_before = dropped_total();
    struct kb_http_opts hopts = {.stream_max_pending = 64 * 1024};
    kb_http_t *h = kb_http_new(&hopts, err, sizeof err);
    struct kb_dashboard_opts dopts = {.interval_ms = 5, .slow_viewer_s = 4};
    kb_dashboard_t *d = kb_dashboard_new(&dopts, err, sizeof err);
    CHECK(h != NULL && d != NULL);
    CHECK_INT(kb_dashboard_routes(d, h), KB_OK);
    CHECK_INT(kb_http_start(h, err, sizeof err), KB_OK);
    uint16_t port = kb_http_port(h);

    /* Two clients stop reading: once the kernel's buffers and their
     * allowance are full, snapshots are dropped for them, and counted. */
    int slow = events_client(port), stuck = events_client(port);
    CHECK(slow >= 0 && stuck >= 0);
    double t0 = kb_test_now_s();
    while (dropped_total() < dropped_before + 40 && kb_test_now_s() - t0 < 30)
        usleep(50 * 1000);
    CHECK(dropped_total() >= dropped_before + 40);

    /* One reads again, for longer than slow_viewer_s: it gets what was
     * taken for it, then the news of the dropped snapshots, then snapshots
     * again; it is not cut off. */
    int eof = 0;
    char *seen = drain(slow, 6.0, NULL, &eof);
    CHECK(seen != NULL);
    CHECK_INT(eof, 0);
    static const char news[] = "event: dropped\ndata: {\"dropped\":";
    const char *note = seen ? strstr(seen, news) : NULL;
    CHECK(note != NULL);
    if (note) {
        CHECK(atoi(note + strlen(news)) >= 1);
        /* the next snapshot is whole: one JSON document up to its blank line */
        static const char metrics[] = "event: metrics\ndata: ";
        const char *js = strstr(note, metrics);
        const char *end = js ? strstr(js, "\n\n") : NULL;
        CHECK(end != NULL);
        json_t *snap = end ? json_loadb(js + strlen(metrics),
                                        (size_t)(end - js - (ptrdiff_t)strlen(metrics)), 0, NULL)
                           : NULL;
        CHECK(num(json_object_get(snap, "in"), "source-with-a-long-name-599", NULL) == 599);
        json_decref(snap);
        CHECK(strstr(end, "event: metrics") != NULL); /* and more after it */
    }
    free(seen);

    /* The other stayed stuck past slow_viewer_s meanwhile: the server ended
     * its stream (what was taken for it still arrives, then the last chunk). */
    seen = drain(stuck, 10, "\r\n0\r\n\r\n", &eof);
    size_t n = seen ? strlen(seen) : 0;
    CHECK(n > 7 && !strcmp(seen + n - 7, "\r\n0\r\n\r\n"));
    free(seen);

    /* The reader goes on being served. */
    seen = drain(slow, 1.0, NULL, &eof);
    CHECK_INT(eof, 0);
    CHECK(seen && strstr(seen, "event: metrics") != NULL);
    free(seen);
    close(slow);
    close(stuck);
    kb_http_stop(h);
    kb_dashboard_destroy(d);
    kb_http_destroy(h);
}

int main(void)
{
    test_snapshot();
    test_sse_frame();
    test_parse_redrive();
    test_printable();
    test_serve_opts();
    test_sub_json();
    test_dryrun_json();
    test_dlq_no_broker();
    test_subs_off_thread();
    test_validate_in_memory();
    test_events_slow_viewers();
    KB_TEST_DONE();
}
