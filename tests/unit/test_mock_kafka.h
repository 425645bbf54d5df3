/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_mock_kafka.h - what the tests that run on librdkafka's mock cluster
 * share: a group's committed offset, and a router on a thread of its own
 * (as in `ketenbus dev`). Include after kb_test.h.
 */
#ifndef KB_TEST_MOCK_KAFKA_H
#define KB_TEST_MOCK_KAFKA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h */

#include "ketenbus/kafka.h"
#include "ketenbus/route.h"

/* The offset group @p group has committed on @p topic [0]; -2 when no
 * consumer could be made. */
static inline int64_t test_committed(const char *bootstrap, const char *topic, const char *group)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    CHECK(rk != NULL);
    if (!rk)
        return -2;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0);
    CHECK_INT(rd_kafka_committed(rk, parts, 10000), 0);
    int64_t off = parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return off;
}

/* A mock cluster of @p brokers brokers, standing on a client of its own
 * (*@p owner, quiet below errors), or NULL (checked). Destroy the cluster,
 * then the owner. */
static inline rd_kafka_mock_cluster_t *test_mock_cluster(int brokers, rd_kafka_t **owner)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    rd_kafka_mock_cluster_t *mc = *owner ? rd_kafka_mock_cluster_new(*owner, brokers) : NULL;
    CHECK(mc != NULL);
    return mc;
}

/* Read @p topic [0] from @p offset (RD_KAFKA_OFFSET_BEGINNING: all of it)
 * to its end, or for at most 10 s, as group @p group, only committed
 * messages when @p read_committed; @p on_msg gets each message without an
 * error (it must copy what it keeps: the message is freed after it) and
 * returns 1 to stop early. */
static inline void test_read_partition(const struct kb_kafka_opts *ko, const char *topic,
                                       int64_t offset, const char *group, int read_committed,
                                       int (*on_msg)(const rd_kafka_message_t *m, void *opaque),
                                       void *opaque)
{
    char errstr[512];
    rd_kafka_conf_t *conf = kb_kafka_conf_new(ko, errstr, sizeof errstr);
    CHECK(conf != NULL);
    if (!conf)
        return;
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    if (read_committed)
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    CHECK(rk != NULL);
    if (!rk)
        return;
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, topic, 0)->offset = offset;
    rd_kafka_assign(rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    for (int i = 0, done = 0; i < 100 && !done; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        done = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || (!m->err && on_msg(m, opaque));
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* A router under test on a thread of its own. */
struct router_thread {
    kb_router_t *r;
    atomic_int stop;
    kb_err_t result; /* kb_router_run()'s, once joined */
    pthread_t tid;
};

static inline void *router_main(void *arg)
{
    struct router_thread *rt = arg;
    rt->result = kb_router_run(rt->r, &rt->stop);
    return NULL;
}

/* Make the router of @p ro and start it: 0, or -1 (said on stderr). */
static inline int router_start(struct router_thread *rt, const struct kb_route_opts *ro)
{
    char errstr[512];
    memset(rt, 0, sizeof *rt);
    rt->r = kb_router_new(ro, errstr, sizeof errstr);
    if (!rt->r) {
        fprintf(stderr, "router: %s\n", errstr);
        return -1;
    }
    return pthread_create(&rt->tid, NULL, router_main, rt) ? -1 : 0;
}

/* Stop it (or join one that ended by itself) and destroy it. */
static inline void router_stop(struct router_thread *rt)
{
    atomic_store(&rt->stop, 1);
    pthread_join(rt->tid, NULL);
    kb_router_destroy(rt->r);
    rt->r = NULL;
}

#endif
