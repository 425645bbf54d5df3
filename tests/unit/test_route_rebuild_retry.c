/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_route_rebuild_retry.c - the second try of the router's dedup window
 * rebuild (route.c, dedup_rebuild), against librdkafka's mock cluster.
 *
 * K events in each of the two input partitions are committed in the
 * router's group. A router is then assigned both. Partition 0 is led by
 * broker 1 and reads fine; partition 1 is led by broker 2, whose Fetch
 * requests first fail with injected errors, the last answered late, so the
 * first try makes no progress on it for 2 s (the test's rebuild_stall_ms;
 * taken, not the default 30 s) and gives up. The
 * router must log that window as not read, naming the last error its
 * partition reported, and try again for that window only (the errors are
 * used up by then): each window is logged as rebuilt exactly once, the
 * router keeps running, and sending the 2K events again drops every one
 * of them as a duplicate, so both windows really hold their ids.
 *
 * Then a second router meets broker 2 down for both tries: it must say so
 * and stop (KB_ERR_FATAL) rather than route with a window it could not
 * read.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kb_test.h"
#include "test_mock_kafka.h"
#include "test_birth_event.h"
#include "ketenbus/clock.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/route.h"
#include "ketenbus/schema.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (via kafka.h) */

#define K           10 /* events per input partition */
#define API_FETCH   1  /* Kafka protocol ApiKey of Fetch (rdkafka_mock.h has no names) */
#define SLOW_BROKER 2  /* leads input partition 1 */

static char tmpdir[] = "/tmp/kb-test-rebuild-retry-XXXXXX";
static char log_path[1200];
static uint8_t subject_key[32]; /* a fixed test key, set in main(); never a secret */

/* A BSN 9999xxxxx passing the 11-proef, derived from @p n (as `ketenbus gen`). */
static void test_bsn(unsigned n, char out[10])
{
    for (unsigned k = n * 7;; k++) {
        snprintf(out, 10, "9999%05u", k % 100000);
        int sum = 0;
        for (int i = 0; i < 8; i++)
            sum += (9 - i) * (out[i] - '0');
        sum -= out[8] - '0';
        if (sum % 11 == 0 && out[8] != '0')
            return;
    }
}

/* Event i (a valid birth, id derived from i) into input partition i % 2. */
static int produce_event(rd_kafka_t *rk, const char *topic, const struct kb_schema *schema,
                         unsigned i)
{
    char bsn[10], bsn1[10], bsn2[10], name[64];
    test_bsn(i, bsn);
    test_bsn(i + 30000, bsn1);
    test_bsn(i + 60000, bsn2);
    const char *const parents[] = {bsn1, bsn2};
    snprintf(name, sizeof name, "rebuild-retry-%u", i);
    size_t len = 0;
    uint8_t *value = test_birth_value(schema, bsn, parents, 2, name, &len);
    if (!value)
        return -1;
    struct kb_event_attrs a;
    memset(&a, 0, sizeof a);
    kb_event_uuid5(name, strlen(name), a.id);
    snprintf(a.source, sizeof a.source, "urn:nld:oin:00000099999999999000:systeem:unit-test");
    snprintf(a.type, sizeof a.type, "nl.brp.persoon-geboren");
    kb_event_time(1710500000000, a.time);
    kb_event_pseudonym(subject_key, sizeof subject_key, "bsn", bsn, a.subject);
    kb_event_traceparent(a.id, a.traceparent);
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24];
    size_t nh = kb_event_headers(&a, hdrs, seqbuf);
    rd_kafka_resp_err_t perr = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)(i % 2)),
        RD_KAFKA_V_KEY(a.subject, strlen(a.subject)), RD_KAFKA_V_VALUE(value, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_HEADERS(kb_kafka_headers_new(hdrs, nh)), RD_KAFKA_V_END);
    if (perr) {
        free(value);
        return -1;
    }
    return 0;
}

/* The 2K events, once more each time: same ids, same partitions. */
static void produce_all(const struct kb_kafka_opts *ko, const char *topic,
                        const struct kb_schema *schema)
{
    char errstr[512];
    rd_kafka_conf_t *conf = kb_kafka_conf_new(ko, errstr, sizeof errstr);
    CHECK(conf != NULL);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    CHECK(rk != NULL);
    if (!rk)
        return;
    for (unsigned i = 0; i < 2 * K; i++)
        CHECK_INT(produce_event(rk, topic, schema, i), 0);
    CHECK_INT(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

/* Commits offset K for both input partitions in the router's group, as a
 * router that had routed the 2K events would have. (The mock cluster
 * answers a transaction's offset commit but keeps nothing of it, so a
 * router cannot leave them behind here.) */
static int commit_offsets(const struct kb_kafka_opts *ko, const char *topic, const char *group)
{
    char errstr[512];
    rd_kafka_conf_t *conf = kb_kafka_conf_new(ko, errstr, sizeof errstr);
    if (!conf)
        return -1;
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk)
        return -1;
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(2);
    for (int32_t p = 0; p < 2; p++)
        rd_kafka_topic_partition_list_add(offs, topic, p)->offset = K;
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, offs, 0);
    for (int p = 0; !err && p < 2; p++)
        offs->elems[p].offset = RD_KAFKA_OFFSET_INVALID;
    if (!err)
        err = rd_kafka_committed(rk, offs, 10000);
    int ok = !err && offs->elems[0].offset == K && offs->elems[1].offset == K;
    rd_kafka_topic_partition_list_destroy(offs);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ok ? 0 : -1;
}

static uint64_t stat_of(const atomic_uint_fast64_t *c)
{
    return (uint64_t)atomic_load(c);
}

/* Waits up to @p seconds for *@p c to reach @p want. */
static int wait_stat(const atomic_uint_fast64_t *c, uint64_t want, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        if (stat_of(c) >= want)
            return 0;
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    return -1;
}

/* Lines of the router's log (stderr, sent to log_path) holding every one of
 * @p a and @p b (NULL: any). */
static int log_count(const char *a, const char *b)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, a) && (!b || strstr(line, b));
    fclose(f);
    return n;
}

static int wait_log(const char *a, const char *b, int seconds)
{
    for (int i = 0; i < seconds * 50; i++) {
        if (log_count(a, b))
            return 0;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    return -1;
}

/* After a failed check, the router's log (without the flood of dropped
 * duplicates) on stderr. */
static void show_log_on_failure(void)
{
    if (!kb_test_failures)
        return;
    fprintf(stderr, "--- router log %s ---\n", log_path);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "grep -v 'duplicate dropped' '%s' | tail -n 40 >&2", log_path);
    CHECK(system(cmd) >= 0);
}

int main(void)
{
    char errstr[512], path[1200], in_topic[160], out_topic[160], dlq_topic[160];
    CHECK(mkdtemp(tmpdir) != NULL);
    memset(subject_key, 0x5a, sizeof subject_key);
    /* Topic names of this test only, whatever the environment says. */
    setenv("KETENBUS_TOPIC_PREFIX", "ut-rebuild", 1);
    kb_topic_name(in_topic, sizeof in_topic, "in.gba");
    kb_topic_name(out_topic, sizeof out_topic, "out.alle");
    kb_topic_name(dlq_topic, sizeof dlq_topic, "dlq");

    const char *src = getenv("KB_SOURCE_DIR") ? getenv("KB_SOURCE_DIR") : ".";
    snprintf(path, sizeof path, "%s/schemas", src);
    kb_schemas_t *schemas = kb_schemas_load_dir(path, errstr, sizeof errstr);
    const struct kb_schema *birth =
        schemas ? kb_schemas_by_type(schemas, "nl.brp.persoon-geboren") : NULL;
    CHECK(birth != NULL);
    snprintf(path, sizeof path, "%s/subs.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f || !birth)
        KB_TEST_DONE();
    fputs("subscriptions:\n"
          "  - name: alle\n"
          "    purpose: {id: statistiek, legal_basis: \"test\"}\n"
          "    types: [nl.brp.persoon-geboren]\n",
          f);
    fclose(f);

    rd_kafka_t *mrk;
    rd_kafka_mock_cluster_t *mc = test_mock_cluster(2, &mrk);
    if (!mc)
        KB_TEST_DONE();
    /* Everything on broker 1 but input partition 1, so that only the
     * rebuild's Fetch of that partition meets broker 2's trouble. */
    rd_kafka_mock_topic_create(mc, in_topic, 2, 1);
    rd_kafka_mock_topic_create(mc, out_topic, 1, 1);
    rd_kafka_mock_topic_create(mc, dlq_topic, 1, 1);
    rd_kafka_mock_partition_set_leader(mc, in_topic, 0, 1);
    rd_kafka_mock_partition_set_leader(mc, in_topic, 1, SLOW_BROKER);
    rd_kafka_mock_partition_set_leader(mc, out_topic, 0, 1);
    rd_kafka_mock_partition_set_leader(mc, dlq_topic, 0, 1);
    rd_kafka_mock_coordinator_set(mc, "group", "ut-rebuild-route", 1);
    rd_kafka_mock_coordinator_set(mc, "transaction", "ut-rebuild-route-retry", 1);

    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    kb_kafka_opts_set(&ko, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);
    struct kb_route_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.kafka = &ko;
    ro.subs_path = path;
    ro.subject_key = subject_key;
    ro.subject_key_len = sizeof subject_key;
    ro.schemas = schemas;
    ro.batch_max = 2 * K;
    /* The audit trail and the registry play no part in the rebuild. */
    ro.no_audit = 1;
    ro.no_register_projections = 1;
    ro.rebuild_stall_ms = 2000; /* the default 30 s would only make the test slow */

    /* The router's log goes to a file: the test reads what it says. */
    snprintf(log_path, sizeof log_path, "%s/router.log", tmpdir);
    int saved_stderr = dup(STDERR_FILENO);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, STDERR_FILENO);
    close(fd);

    /* 1. The 2K events, and offsets committed after them. */
    produce_all(&ko, in_topic, birth);
    int committed = commit_offsets(&ko, in_topic, "ut-rebuild-route") == 0;

    /* 2. Broker 2 answers its next three Fetch requests with errors; the
     *    router must name the last one its partition reported. The third
     *    answer comes only after 4 s: the first try, which reads partition
     *    0 at once, then sees no progress for its 2 s and gives up, its
     *    last error the second one. The stack is empty by then (an error
     *    is taken when its request arrives), so the second try reads
     *    partition 1 whole. No race with the router's fetch timing. */
    size_t left = 99;
    rd_kafka_mock_broker_push_request_error_rtts(mc, SLOW_BROKER, API_FETCH, 3,
                                                 RD_KAFKA_RESP_ERR_INVALID_MSG, 0,
                                                 RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE,
                                                 0, RD_KAFKA_RESP_ERR_INVALID_MSG, 4000);
    struct router_thread rt;
    ro.instance = "retry";
    int64_t t0 = kb_mono_ms();
    int started = committed && router_start(&rt, &ro) == 0;
    int gave_up = started && wait_log("msg=\"dedup window not read", NULL, 60) == 0;
    /* The stall is the option's 2 s, not the default 30 (the group join
     * and the first reads take a few seconds more). */
    int64_t gave_up_ms = kb_mono_ms() - t0;
    rd_kafka_mock_broker_error_stack_cnt(mc, SLOW_BROKER, API_FETCH, &left);
    int errors_used = left == 0;
    int assigned = gave_up && wait_log("msg=\"partitions assigned\" count=2", NULL, 60) == 0;

    /* 3. The same 2K events again: every one is a duplicate now. */
    int dropped = 0;
    uint64_t delivered2 = 0;
    if (assigned) {
        produce_all(&ko, in_topic, birth);
        dropped = wait_stat(&kb_router_stats(rt.r)->consumed, 2 * K, 60) == 0;
        /* consumed counts a message before its decision: let it settle. */
        wait_stat(&kb_router_stats(rt.r)->duplicates, 2 * K, 10);
        delivered2 = stat_of(&kb_router_stats(rt.r)->delivered);
    }
    uint64_t dups = started ? stat_of(&kb_router_stats(rt.r)->duplicates) : 0;
    int fatal = 0;
    if (started) {
        router_stop(&rt);
        fatal = rt.result != KB_OK;
    }
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);

    CHECK(committed);
    CHECK(started);
    CHECK(errors_used);
    CHECK(gave_up);
    CHECK(gave_up_ms < 20000);
    CHECK(assigned);
    char p0[200], p1[200];
    snprintf(p0, sizeof p0, "topic=%s partition=0 from=0 to=%d ids=%d", in_topic, K, K);
    /* The first try read partition 0 and said so once; the retry did not
     * read it again. */
    CHECK_INT(log_count("msg=\"dedup window rebuilt\"", p0), 1);
    /* Partition 1 failed the first try, naming its last error... */
    snprintf(p1, sizeof p1, "topic=%s partition=1 from=0 to=%d ids=0", in_topic, K);
    CHECK_INT(log_count("msg=\"dedup window not read: no progress\"", p1), 1);
    CHECK_INT(log_count("msg=\"dedup window not read", "stall_ms=2000"), 1);
    CHECK_INT(log_count("msg=\"dedup window not read", "error=\"Broker: Unsupported compression"),
              1);
    /* ... and was read whole by the second. */
    snprintf(p1, sizeof p1, "topic=%s partition=1 from=0 to=%d ids=%d", in_topic, K, K);
    CHECK_INT(log_count("msg=\"dedup window rebuilt\"", p1), 1);
    CHECK_INT(log_count("msg=\"dedup window rebuilt\"", NULL), 2);
    CHECK(dropped);
    CHECK_INT(dups, 2 * K);
    CHECK_INT(delivered2, 0);
    CHECK(!fatal);
    CHECK_INT(log_count("not rebuilt after two tries", NULL), 0);
    show_log_on_failure();

    /* 4. Every Fetch fails, for longer than both tries: the router says so
     *    and stops. (Taking broker 2 down instead left the new consumer
     *    without an assignment on the mock cluster.) A group of its own
     *    (the mock cluster keeps the first router's member until its
     *    session times out) and its own log file. */
    ro.group_id = "ut-rebuild-route2";
    rd_kafka_mock_coordinator_set(mc, "group", ro.group_id, 1);
    rd_kafka_mock_coordinator_set(mc, "transaction", "ut-rebuild-route2-retry", 1);
    CHECK_INT(commit_offsets(&ko, in_topic, ro.group_id), 0);
    snprintf(log_path, sizeof log_path, "%s/router2.log", tmpdir);
    saved_stderr = dup(STDERR_FILENO);
    fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, STDERR_FILENO);
    close(fd);
    /* Per broker: the cluster-wide stack went to whichever broker asked
     * first, and one partition read fine. */
    for (int32_t b = 1; b <= SLOW_BROKER; b++)
        for (int i = 0; i < 1000; i++)
            rd_kafka_mock_broker_push_request_error_rtts(
                mc, b, API_FETCH, 1, RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE, 0);
    int stop_line = 0;
    kb_err_t result2 = KB_OK;
    if (started && router_start(&rt, &ro) == 0) {
        stop_line = wait_log("msg=\"dedup windows not rebuilt after two tries; router stops\"",
                             "count=2", 90) == 0;
        router_stop(&rt); /* joins a router that ended by itself, stops one that did not */
        result2 = rt.result;
    }
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    CHECK(stop_line);
    CHECK_INT(result2, KB_ERR_FATAL);
    for (int p = 0; p < 2; p++) { /* each window, once per try */
        snprintf(p1, sizeof p1, "topic=%s partition=%d from=0 to=%d ids=0", in_topic, p, K);
        CHECK_INT(log_count("msg=\"dedup window not read: no progress\"", p1), 2);
    }
    CHECK_INT(log_count("msg=\"dedup window rebuilt\"", NULL), 0);
    show_log_on_failure();

    kb_kafka_opts_fini(&ko);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    kb_schemas_destroy(schemas);
    if (!kb_test_failures) {
        CHECK_INT(kb_test_rm_tree(tmpdir), 0);
    }
    KB_TEST_DONE();
}
