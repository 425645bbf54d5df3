/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_metrics.c - the metrics registry: exact Prometheus text for known
 * updates, label escaping, histogram buckets, conflicting declarations,
 * concurrent updates, librdkafka statistics, the HTTP endpoints, and (when
 * promtool is installed) `promtool check metrics` over the output.
 */
#include <pthread.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/http.h"
#include "ketenbus/metrics.h"

static char *render(void)
{
    char *out = NULL;
    size_t len = 0;
    CHECK_INT(kb_metrics_render(&out, &len), KB_OK);
    CHECK_INT(strlen(out), len);
    return out;
}

/* The block of text about one family, from its HELP line to the next family. */
static char *family_block(const char *text, const char *name)
{
    char head[128];
    snprintf(head, sizeof head, "# HELP %s ", name);
    const char *p = strstr(text, head);
    if (!p)
        return strdup("");
    const char *end = strstr(p + 1, "# HELP ");
    return strndup(p, end ? (size_t)(end - p) : strlen(p));
}

static void test_counter_text(void)
{
    kb_metrics_reset();
    CHECK_INT(kb_metrics_declare(KB_METRIC_COUNTER, "t_requests_total", "Requests\\seen\nhere",
                                 "route,code", NULL, 0),
              KB_OK);
    kb_metrics_counter_add("t_requests_total", 2, "/a", "200", NULL);
    kb_metrics_counter_add("t_requests_total", 3, "/a", "200", NULL);
    kb_metrics_counter_add("t_requests_total", 1, "q\"uote\\back\nline", "500", NULL);
    kb_metrics_counter_add("t_requests_total", -5, "/a", "200", NULL); /* ignored */
    kb_metrics_counter_add("t_requests_total", 0.5, "/b", "200", NULL);
    char *text = render();
    char *block = family_block(text, "t_requests_total");
    CHECK_STR(block, "# HELP t_requests_total Requests\\\\seen\\nhere\n"
                     "# TYPE t_requests_total counter\n"
                     "t_requests_total{route=\"/a\",code=\"200\"} 5\n"
                     "t_requests_total{route=\"q\\\"uote\\\\back\\nline\",code=\"500\"} 1\n"
                     "t_requests_total{route=\"/b\",code=\"200\"} 0.5\n");
    free(block);
    free(text);
}

static void test_gauge_and_lookup_errors(void)
{
    kb_metrics_reset();
    CHECK_INT(kb_metrics_declare(KB_METRIC_GAUGE, "t_depth", "Depth", NULL, NULL, 0), KB_OK);
    /* Same declaration again: fine. Different kind or labels: conflict. */
    CHECK_INT(kb_metrics_declare(KB_METRIC_GAUGE, "t_depth", "Depth", "", NULL, 0), KB_OK);
    CHECK_INT(kb_metrics_declare(KB_METRIC_COUNTER, "t_depth", "Depth", NULL, NULL, 0),
              KB_ERR_CONF);
    CHECK_INT(kb_metrics_declare(KB_METRIC_GAUGE, "t_depth", "Depth", "x", NULL, 0),
              KB_ERR_CONF);
    CHECK_INT(kb_metrics_declare(KB_METRIC_GAUGE, "9bad", "x", NULL, NULL, 0), KB_ERR_CONF);
    CHECK_INT(kb_metrics_declare(KB_METRIC_GAUGE, "t_bad_label", "x", "le", NULL, 0),
              KB_ERR_CONF);
    CHECK_INT(kb_metrics_declare(KB_METRIC_GAUGE, "t_bad_label2", "x", "a-b", NULL, 0),
              KB_ERR_CONF);
    double unsorted[] = {1, 0.5};
    CHECK_INT(kb_metrics_declare(KB_METRIC_HISTOGRAM, "t_h_bad", "x", NULL, unsorted, 2),
              KB_ERR_CONF);

    kb_metrics_gauge_set("t_depth", 7, NULL);
    kb_metrics_gauge_add("t_depth", -2.5, NULL);
    kb_series_t *d = kb_metrics_series("t_depth", NULL);
    CHECK(d != NULL);
    CHECK(kb_series_value(d) == 4.5);
    CHECK(kb_metrics_series("t_depth", "extra", NULL) == NULL);
    CHECK(kb_metrics_series("t_undeclared", NULL) == NULL);
    kb_series_add(NULL, 1); /* no-ops */
    kb_series_set(NULL, 1);
    kb_series_observe(NULL, 1);
    /* The same label values give the same series pointer. */
    kb_series_t *a = kb_metrics_series("kb_events_in_total", "gba", "nl.brp.persoon-geboren", NULL);
    kb_series_t *b = kb_metrics_series("kb_events_in_total", "gba", "nl.brp.persoon-geboren", NULL);
    CHECK(a != NULL && a == b);
    kb_series_t *c = kb_metrics_series("kb_events_in_total", "gba", "nl.brp.kind-toegevoegd", NULL);
    CHECK(c != NULL && c != a);
}

static void test_histogram(void)
{
    kb_metrics_reset();
    double bounds[] = {0.1, 1, 10};
    CHECK_INT(kb_metrics_declare(KB_METRIC_HISTOGRAM, "t_latency_seconds", "Latency", "sub",
                                 bounds, 3),
              KB_OK);
    double obs[] = {0.05, 0.1, 0.5, 2, 2, 100};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        kb_metrics_observe("t_latency_seconds", obs[i], "x", NULL);
    char *text = render();
    char *block = family_block(text, "t_latency_seconds");
    /* le=0.1 holds 0.05 and 0.1 (upper bound inclusive); cumulative after. */
    CHECK_STR(block, "# HELP t_latency_seconds Latency\n"
                     "# TYPE t_latency_seconds histogram\n"
                     "t_latency_seconds_bucket{sub=\"x\",le=\"0.1\"} 2\n"
                     "t_latency_seconds_bucket{sub=\"x\",le=\"1\"} 3\n"
                     "t_latency_seconds_bucket{sub=\"x\",le=\"10\"} 5\n"
                     "t_latency_seconds_bucket{sub=\"x\",le=\"+Inf\"} 6\n"
                     "t_latency_seconds_sum{sub=\"x\"} 104.65000000000001\n"
                     "t_latency_seconds_count{sub=\"x\"} 6\n");
    free(block);
    free(text);
    CHECK(kb_series_value(kb_metrics_series("t_latency_seconds", "x", NULL)) == 6);
}

#define THREADS 4
#define PER_THREAD 100000

static void *hammer(void *arg)
{
    const char *label = arg;
    kb_series_t *cached = kb_metrics_series("kb_events_out_total", "svb", "t", NULL);
    for (int i = 0; i < PER_THREAD; i++) {
        kb_series_add(cached, 1);
        /* Lookups by name racing with series creation for new labels. */
        kb_metrics_counter_add("kb_events_in_total", 1, label, "t", NULL);
    }
    return NULL;
}

static void test_threads(void)
{
    kb_metrics_reset();
    pthread_t th[THREADS];
    static const char *const labels[THREADS] = {"a", "b", "a", "b"};
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, hammer, (void *)labels[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK(kb_series_value(kb_metrics_series("kb_events_out_total", "svb", "t", NULL)) ==
          THREADS * PER_THREAD);
    CHECK(kb_series_value(kb_metrics_series("kb_events_in_total", "a", "t", NULL)) ==
          2 * PER_THREAD);
    CHECK(kb_series_value(kb_metrics_series("kb_events_in_total", "b", "t", NULL)) ==
          2 * PER_THREAD);
}

static void test_kafka_stats(void)
{
    kb_metrics_reset();
    /* The shape of a librdkafka consumer statistics document (trimmed). */
    const char *doc =
        "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"topics\":{"
        "\"kb.out.svb\":{\"topic\":\"kb.out.svb\",\"partitions\":{"
        "\"0\":{\"partition\":0,\"consumer_lag\":42,\"committed_offset\":8},"
        "\"1\":{\"partition\":1,\"consumer_lag\":0},"
        "\"2\":{\"partition\":2,\"consumer_lag\":-1},"
        "\"-1\":{\"partition\":-1,\"consumer_lag\":-1}}},"
        /* A transactional consumer: no committed offset, so lag -1, but its
         * position (app_offset) and the last stable offset give it. */
        "\"kb.in.gba\":{\"topic\":\"kb.in.gba\",\"partitions\":{"
        "\"0\":{\"partition\":0,\"consumer_lag\":-1,\"app_offset\":1000,"
        "\"ls_offset\":1250,\"hi_offset\":1300},"
        "\"1\":{\"partition\":1,\"consumer_lag\":-1,\"app_offset\":-1001,"
        "\"ls_offset\":10}}}}}";
    CHECK_INT(kb_metrics_kafka_stats(doc, strlen(doc)), KB_OK);
    CHECK(kb_series_value(kb_metrics_series("kb_kafka_consumer_lag", "kb.out.svb", "0", NULL)) ==
          42);
    char *text = render();
    char *block = family_block(text, "kb_kafka_consumer_lag");
    CHECK(strstr(block, "kb_kafka_consumer_lag{topic=\"kb.out.svb\",partition=\"0\"} 42\n") != NULL);
    CHECK(strstr(block, "kb_kafka_consumer_lag{topic=\"kb.out.svb\",partition=\"1\"} 0\n") != NULL);
    CHECK(strstr(block, "partition=\"2\"") == NULL);  /* unknown lag skipped */
    CHECK(strstr(block, "kb_kafka_consumer_lag{topic=\"kb.in.gba\",partition=\"0\"} 250\n") !=
          NULL);
    CHECK(strstr(block, "topic=\"kb.in.gba\",partition=\"1\"") == NULL); /* no position yet */
    CHECK(strstr(block, "partition=\"-1\"") == NULL); /* internal partition skipped */
    CHECK(strstr(text, "kb_kafka_stats_total 1\n") != NULL);
    free(block);
    free(text);
    CHECK_INT(kb_metrics_kafka_stats("{\"topics\":", 10), KB_ERR_INVALID);
    CHECK_INT(kb_metrics_kafka_stats("[]", 2), KB_ERR_INVALID);
    CHECK_INT(kb_metrics_kafka_stats_cb(NULL, (char *)"nonsense", 8, NULL), 0);
}

/* A partition that moves to another process stops being reported here:
 * librdkafka keeps listing it in the consumer's statistics with
 * "desired": false, and its lag belongs to the new owner. */
static void test_kafka_stats_revoked(void)
{
    kb_metrics_reset();
    const char *assigned = "{\"type\":\"consumer\",\"topics\":{\"kb.in.gba\":{\"partitions\":{"
                           "\"0\":{\"desired\":true,\"consumer_lag\":42},"
                           "\"1\":{\"desired\":true,\"consumer_lag\":7}}}}}";
    /* After the rebalance: partition 1 went to another router; librdkafka
     * still reports its last known lag (committed offset kept). */
    const char *revoked = "{\"type\":\"consumer\",\"topics\":{\"kb.in.gba\":{\"partitions\":{"
                          "\"0\":{\"desired\":true,\"consumer_lag\":40},"
                          "\"1\":{\"desired\":false,\"consumer_lag\":7}}}}}";
    /* The same process's producer writes to the partition: not a word on
     * who consumes it. */
    const char *producer = "{\"type\":\"producer\",\"topics\":{\"kb.in.gba\":{\"partitions\":{"
                           "\"0\":{\"desired\":false,\"consumer_lag\":-1}}}}}";
    CHECK_INT(kb_metrics_kafka_stats(assigned, strlen(assigned)), KB_OK);
    kb_series_t *p1 = kb_metrics_series("kb_kafka_consumer_lag", "kb.in.gba", "1", NULL);
    CHECK(kb_series_value(p1) == 7);
    CHECK_INT(kb_metrics_kafka_stats(revoked, strlen(revoked)), KB_OK);
    char *text = render();
    char *block = family_block(text, "kb_kafka_consumer_lag");
    CHECK(strstr(block, "kb_kafka_consumer_lag{topic=\"kb.in.gba\","
                        "partition=\"0\"} 40\n") != NULL);
    CHECK(strstr(block, "partition=\"1\"") == NULL);
    free(block);
    free(text);
    char *js = NULL;
    size_t len = 0;
    CHECK_INT(kb_metrics_render_json(&js, &len), KB_OK);
    json_t *doc = json_loadb(js, len, 0, NULL);
    CHECK_INT(json_array_size(json_object_get(doc, "kb_kafka_consumer_lag")), 1);
    json_decref(doc);
    free(js);
    CHECK(kb_series_value(p1) == 0); /* the pointer held stays valid */

    CHECK_INT(kb_metrics_kafka_stats(producer, strlen(producer)), KB_OK);
    CHECK(kb_series_value(kb_metrics_series("kb_kafka_consumer_lag", "kb.in.gba", "0", NULL)) ==
          40);

    /* Assigned back: exported again, with the new value. */
    CHECK_INT(kb_metrics_kafka_stats(assigned, strlen(assigned)), KB_OK);
    text = render();
    CHECK(strstr(text, "kb_kafka_consumer_lag{topic=\"kb.in.gba\",partition=\"1\"} 7\n") != NULL);
    free(text);

    /* Just moved here, nothing handed to the router yet (no app_offset):
     * with nothing fetched waiting, it stands at next_offset, so the lag is
     * known at once (here 0: caught up). With fetched messages waiting the
     * position is not known: skipped. */
    const char *moved =
        "{\"type\":\"consumer\",\"topics\":{\"kb.in.gba\":{\"partitions\":{"
        "\"2\":{\"desired\":true,\"fetch_state\":\"active\",\"fetchq_cnt\":0,"
        "\"next_offset\":13,\"app_offset\":-1001,\"ls_offset\":13,\"consumer_lag\":-1},"
        "\"3\":{\"desired\":true,\"fetch_state\":\"active\",\"fetchq_cnt\":4,"
        "\"next_offset\":20,\"app_offset\":-1001,\"ls_offset\":30,\"consumer_lag\":-1},"
        "\"4\":{\"desired\":true,\"fetch_state\":\"offset-query\",\"fetchq_cnt\":0,"
        "\"next_offset\":-1001,\"app_offset\":-1001,\"ls_offset\":30,\"consumer_lag\":-1}"
        "}}}}";
    CHECK_INT(kb_metrics_kafka_stats(moved, strlen(moved)), KB_OK);
    text = render();
    CHECK(strstr(text, "kb_kafka_consumer_lag{topic=\"kb.in.gba\",partition=\"2\"} 0\n") != NULL);
    CHECK(strstr(text, "partition=\"3\"") == NULL);
    CHECK(strstr(text, "partition=\"4\"") == NULL);
    free(text);

    /* Withdrawing: never creates a series, leaves counters alone. */
    kb_metrics_gauge_remove("kb_kafka_consumer_lag", "kb.in.none", "0", NULL);
    kb_metrics_counter_add("kb_kafka_stats_total", 0, NULL);
    kb_metrics_gauge_remove("kb_kafka_stats_total", NULL);
    kb_metrics_gauge_remove("no_such_family", "x", NULL);
    text = render();
    CHECK(strstr(text, "kb.in.none") == NULL);
    CHECK(strstr(text, "kb_kafka_stats_total 5\n") != NULL);
    free(text);
}

static void test_json(void)
{
    kb_metrics_reset();
    kb_metrics_counter_add("kb_deliver_delivered_total", 3, "svb", NULL);
    kb_metrics_observe("kb_e2e_latency_seconds", 0.25, "svb", NULL);
    char *out = NULL;
    size_t len = 0;
    CHECK_INT(kb_metrics_render_json(&out, &len), KB_OK);
    json_error_t jerr;
    json_t *root = json_loadb(out, len, 0, &jerr);
    CHECK(root != NULL);
    json_t *d = json_array_get(json_object_get(root, "kb_deliver_delivered_total"), 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(d, "labels"), "subscriber")),
              "svb");
    CHECK(json_real_value(json_object_get(d, "value")) == 3);
    json_t *h = json_array_get(json_object_get(root, "kb_e2e_latency_seconds"), 0);
    CHECK(json_real_value(json_object_get(h, "count")) == 1);
    CHECK(json_real_value(json_object_get(h, "sum")) == 0.25);
    json_decref(root);
    free(out);
}

static void test_http(void)
{
    kb_metrics_reset();
    kb_metrics_counter_add("kb_events_in_total", 1, "gba", "nl.brp.persoon-geboren", NULL);
    char errstr[256];
    CHECK(kb_metrics_serve("no-port", errstr, sizeof errstr) == NULL);
    CHECK(kb_metrics_serve("127.0.0.1:99999", errstr, sizeof errstr) == NULL);
    kb_http_t *h = kb_metrics_serve("127.0.0.1:0", errstr, sizeof errstr);
    CHECK(h != NULL);
    if (!h)
        return;
    char url[128];
    struct kb_http_response r = {0};
    snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", kb_http_port(h));
    CHECK_INT(kb_http_fetch("GET", url, NULL, NULL, 0, 5000, &r, errstr, sizeof errstr), KB_OK);
    CHECK_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, "kb_events_in_total{source=\"gba\",type=\"nl.brp.persoon-geboren\"} 1\n"));
    CHECK(r.content_type && !strncmp(r.content_type, "text/plain; version=0.0.4", 25));
    kb_http_response_fini(&r);

    snprintf(url, sizeof url, "http://127.0.0.1:%u/readyz", kb_http_port(h));
    kb_metrics_set_ready(0);
    CHECK_INT(kb_http_fetch("GET", url, NULL, NULL, 0, 5000, &r, errstr, sizeof errstr), KB_OK);
    CHECK_INT(r.status, 503);
    kb_http_response_fini(&r);
    kb_metrics_set_ready(1);
    CHECK_INT(kb_http_fetch("GET", url, NULL, NULL, 0, 5000, &r, errstr, sizeof errstr), KB_OK);
    CHECK_INT(r.status, 200);
    kb_http_response_fini(&r);

    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", kb_http_port(h));
    CHECK_INT(kb_http_fetch("GET", url, NULL, NULL, 0, 5000, &r, errstr, sizeof errstr), KB_OK);
    CHECK_INT(r.status, 200);
    kb_http_response_fini(&r);
    kb_metrics_set_healthy(0);
    CHECK_INT(kb_http_fetch("GET", url, NULL, NULL, 0, 5000, &r, errstr, sizeof errstr), KB_OK);
    CHECK_INT(r.status, 503);
    kb_http_response_fini(&r);
    kb_metrics_set_healthy(1);
    kb_http_destroy(h);
}

/* promtool (Debian package prometheus) is the reference parser of the format. */
static void test_promtool(void)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        printf("SKIP promtool check: promtool not installed (apt package prometheus)\n");
        return;
    }
    kb_metrics_reset();
    kb_metrics_counter_add("kb_events_in_total", 12, "gba", "nl.brp.persoon-geboren", NULL);
    kb_metrics_counter_add("kb_events_out_total", 7, "svb-kinderbijslag", "nl.brp.persoon-geboren", NULL);
    kb_metrics_counter_add("kb_validation_failures_total", 1, "bsn-11-proef", NULL);
    kb_metrics_counter_add("kb_deliver_attempts_total", 2, "svb", "throttled", NULL);
    kb_metrics_gauge_set("kb_deliver_retry_backlog", 3, "svb", NULL);
    kb_metrics_gauge_set("kb_kafka_consumer_lag", 5, "kb.in.gba", "0", NULL);
    kb_metrics_observe("kb_e2e_latency_seconds", 0.03, "svb", NULL);
    kb_metrics_declare(KB_METRIC_COUNTER, "t_escapes_total", "Odd \\ help\nline", "v", NULL, 0);
    kb_metrics_counter_add("t_escapes_total", 1, "a\"b\\c\nd", NULL);
    char *text = render();
    char path[] = "/tmp/kb-test-metrics-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_INT(write(fd, text, strlen(text)), strlen(text));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
    int rc = system(cmd);
    CHECK_INT(rc, 0);
    unlink(path);
    free(text);
}

int main(void)
{
    test_counter_text();
    test_gauge_and_lookup_errors();
    test_histogram();
    test_threads();
    test_kafka_stats();
    test_kafka_stats_revoked();
    test_json();
    test_http();
    test_promtool();
    kb_metrics_reset();
    KB_TEST_DONE();
}
