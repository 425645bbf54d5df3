/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_kafka_topics.c - topic creation of kafka.c (kb_kafka_create_topics,
 * kb_kafka_ensure_topic_specs, kb_kafka_ensure_topics, kb_kafka_admin_wait).
 * Without arguments it checks what needs no broker: bad specs are refused
 * before any request, with the topic named, and a broker that never answers
 * is a timeout. `test_kafka_topics broker` (integration/kafka_topics.sh,
 * broker from $KB_BOOTSTRAP) creates topics on a real broker and reads back
 * their partitions and configs; `test_kafka_topics describe TOPIC` prints
 * them, for the integration tests of the modules that create topics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/kafka.h"

/* A producer on @p bootstrap (NULL: $KB_BOOTSTRAP); exits when it cannot be made. */
static rd_kafka_t *client(const char *bootstrap)
{
    struct kb_kafka_opts o;
    kb_kafka_opts_init(&o);
    char errstr[512];
    if (bootstrap)
        kb_kafka_opts_set(&o, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_conf_t *conf = kb_kafka_conf_new(&o, errstr, sizeof errstr);
    kb_kafka_opts_fini(&o);
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr) : NULL;
    if (!rk) {
        fprintf(stderr, "client: %s\n", errstr);
        exit(2);
    }
    return rk;
}

static void test_bad_specs(void)
{
    /* Nothing listens on port 1: a request would time out, not fail fast. */
    rd_kafka_t *rk = client("127.0.0.1:1");
    char errstr[512] = "";
    CHECK_INT(kb_kafka_create_topics(rk, NULL, 0, 0, 1000, errstr, sizeof errstr), KB_OK);

    double t0 = kb_test_now_s();
    struct kb_topic_spec zero = {.name = "t.zero", .partitions = -2};
    CHECK_INT(kb_kafka_create_topics(rk, &zero, 1, 0, 1000, errstr, sizeof errstr), KB_ERR_KAFKA);
    CHECK(strstr(errstr, "topic t.zero: ") == errstr);

    static const char *const no_value[] = {"cleanup.policy", NULL};
    struct kb_topic_spec specs[2] = {
        {.name = "t.fine", .partitions = 1},
        {.name = "t.half", .partitions = 1, .configs = no_value},
    };
    CHECK_INT(kb_kafka_create_topics(rk, specs, 2, 0, 1000, errstr, sizeof errstr), KB_ERR_KAFKA);
    CHECK_STR(errstr, "topic t.half: config cleanup.policy without a value");
    CHECK(kb_test_now_s() - t0 < 1.0); /* refused before any request was sent */

    /* A broker that never answers: the wait ends at the timeout plus 2 s. */
    struct kb_topic_spec one = {.name = "t.unanswered", .partitions = 1};
    t0 = kb_test_now_s();
    CHECK_INT(kb_kafka_create_topics(rk, &one, 1, 0, 500, errstr, sizeof errstr), KB_ERR_TIMEOUT);
    double waited = kb_test_now_s() - t0;
    CHECK(waited >= 2.4 && waited < 10);
    CHECK_STR(errstr, "CreateTopics t.unanswered timed out");
    rd_kafka_destroy(rk);
}

/* ---- on a real broker ------------------------------------------------------- */

/* The value of config @p name of resource @p type/@p rname into @p out ("" if
 * not reported); 0 on success. */
static int describe_config(rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *rname,
                           const char *name, char *out, size_t out_size)
{
    out[0] = '\0';
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(type, rname);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_event_t *ev = NULL;
    char errstr[512];
    int rc = kb_kafka_admin_wait(q, "DescribeConfigs", 30000, &ev, errstr, sizeof errstr);
    if (!rc) {
        size_t cnt = 0, nc = 0;
        const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &cnt);
        rc = cnt != 1 || rd_kafka_ConfigResource_error(rs[0]);
        const rd_kafka_ConfigEntry_t **ce = rc ? NULL : rd_kafka_ConfigResource_configs(rs[0], &nc);
        for (size_t c = 0; c < nc; c++)
            if (!strcmp(rd_kafka_ConfigEntry_name(ce[c]), name) &&
                rd_kafka_ConfigEntry_value(ce[c]))
                snprintf(out, out_size, "%s", rd_kafka_ConfigEntry_value(ce[c]));
        rd_kafka_event_destroy(ev);
    } else {
        fprintf(stderr, "describe %s: %s\n", rname, errstr);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return rc;
}

/* Partition count of @p topic, waiting up to 10 s for it to show; -1 if none. */
static int partitions_of(rd_kafka_t *rk, const char *topic)
{
    for (int attempt = 0; attempt < 40; attempt++) {
        const struct rd_kafka_metadata *md = NULL;
        int n = -1;
        if (!rd_kafka_metadata(rk, 1, NULL, &md, 5000)) {
            for (int t = 0; t < md->topic_cnt; t++)
                if (!strcmp(md->topics[t].topic, topic) && !md->topics[t].err)
                    n = md->topics[t].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        if (n > 0)
            return n;
        usleep(250000);
    }
    return -1;
}

/* The broker's num.partitions (what partitions -1 gives). */
static int broker_default_partitions(rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, 10000))
        return -1;
    char id[16], v[32];
    snprintf(id, sizeof id, "%d", md->brokers[0].id);
    rd_kafka_metadata_destroy(md);
    if (describe_config(rk, RD_KAFKA_RESOURCE_BROKER, id, "num.partitions", v, sizeof v))
        return -1;
    return atoi(v);
}

static const char *config_of(rd_kafka_t *rk, const char *topic, const char *name)
{
    static char v[4][256];
    static int next;
    char *out = v[next++ % 4];
    if (describe_config(rk, RD_KAFKA_RESOURCE_TOPIC, topic, name, out, sizeof v[0]))
        snprintf(out, sizeof v[0], "(not described)");
    return out;
}

static int run_broker(void)
{
    rd_kafka_t *rk = client(NULL);
    char errstr[512] = "";
    int dflt = broker_default_partitions(rk);
    CHECK(dflt > 0);
    if (dflt == 1) /* -1 and 1 would look the same: the test would prove nothing */
        fprintf(stderr, "broker num.partitions is 1: set it higher for this test\n");
    CHECK(dflt != 1);

    char compacted[200], dflt_t[200], kept[200], plain[200], bad[200];
    kb_topic_name(compacted, sizeof compacted, "kt.compacted");
    kb_topic_name(dflt_t, sizeof dflt_t, "kt.default");
    kb_topic_name(kept, sizeof kept, "kt.kept");
    kb_topic_name(plain, sizeof plain, "kt.plain");
    kb_topic_name(bad, sizeof bad, "kt.bad");

    static const char *const compact_cfg[] = {"cleanup.policy", "compact", NULL};
    static const char *const kept_cfg[] = {
        "retention.ms", "-1", "retention.bytes", "-1", "cleanup.policy", "delete", NULL};
    struct kb_topic_spec specs[3] = {
        {.name = compacted, .partitions = 1, .configs = compact_cfg},
        {.name = dflt_t, .partitions = -1},
        {.name = kept, .partitions = 2, .configs = kept_cfg},
    };
    CHECK_INT(kb_kafka_ensure_topic_specs(rk, specs, 3, 30000, errstr, sizeof errstr), KB_OK);
    CHECK_INT(partitions_of(rk, compacted), 1);
    CHECK_STR(config_of(rk, compacted, "cleanup.policy"), "compact");
    CHECK_INT(partitions_of(rk, dflt_t), dflt);
    CHECK_STR(config_of(rk, dflt_t, "cleanup.policy"), "delete");
    CHECK_INT(partitions_of(rk, kept), 2);
    CHECK_STR(config_of(rk, kept, "retention.ms"), "-1");
    CHECK_STR(config_of(rk, kept, "retention.bytes"), "-1");

    /* Existing topics are left as they are: looked up (ensure) or refused
     * as TOPIC_ALREADY_EXISTS (create), never changed to the new spec. */
    struct kb_topic_spec other = {.name = compacted, .partitions = 4};
    CHECK_INT(kb_kafka_ensure_topic_specs(rk, &other, 1, 30000, errstr, sizeof errstr), KB_OK);
    CHECK_INT(kb_kafka_create_topics(rk, specs, 3, 0, 30000, errstr, sizeof errstr), KB_OK);
    CHECK_INT(partitions_of(rk, compacted), 1);
    CHECK_STR(config_of(rk, compacted, "cleanup.policy"), "compact");

    /* The thin wrapper: partitions for all, no configs. */
    const char *const plain_list[] = {plain, compacted};
    CHECK_INT(kb_kafka_ensure_topics(rk, plain_list, 2, 2, 30000, errstr, sizeof errstr), KB_OK);
    CHECK_INT(partitions_of(rk, plain), 2);
    CHECK_STR(config_of(rk, plain, "cleanup.policy"), "delete");

    /* A config the broker refuses fails with the topic named, also with
     * KB_TOPICS_MANAGED_OK (only refusals for rights or policy pass). */
    static const char *const bad_cfg[] = {"cleanup.policy", "sometimes", NULL};
    struct kb_topic_spec bad_spec = {.name = bad, .partitions = 1, .configs = bad_cfg};
    CHECK_INT(kb_kafka_create_topics(rk, &bad_spec, 1, KB_TOPICS_MANAGED_OK, 30000, errstr,
                                     sizeof errstr),
              KB_ERR_KAFKA);
    char want[300];
    snprintf(want, sizeof want, "create topic %s: ", bad);
    CHECK(strstr(errstr, want) == errstr);
    rd_kafka_destroy(rk);
    KB_TEST_DONE();
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "broker"))
        return run_broker();
    if (argc == 3 && !strcmp(argv[1], "describe")) {
        rd_kafka_t *rk = client(NULL);
        printf("partitions=%d cleanup.policy=%s retention.ms=%s\n", partitions_of(rk, argv[2]),
               config_of(rk, argv[2], "cleanup.policy"), config_of(rk, argv[2], "retention.ms"));
        rd_kafka_destroy(rk);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: %s [broker | describe TOPIC]\n", argv[0]);
        return 2;
    }
    test_bad_specs();
    KB_TEST_DONE();
}
