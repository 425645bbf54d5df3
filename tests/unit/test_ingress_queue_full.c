/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_ingress_queue_full.c - a batch larger than the producer's local queue
 * (queue.buffering.max.messages) is sent whole and once, against
 * librdkafka's mock cluster; a refused send does not give its ce_sequence
 * numbers out again. Before the fix the first QUEUE_FULL failed the
 * send after part of the batch was produced, so an SVB file or Kadaster
 * round above 100,000 records was re-produced in part every 2 s forever.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ingress.h"
#include "kb_test.h"
#include "ketenbus/kafka.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (via kafka.h) */

#define N_EVENTS 1000 /* ten times the queue below */

/* Every message of @p topic (3 partitions) from the start; the sequences
 * seen are marked in @p seen; returns the number of messages read. */
static size_t consume_all(const char *bootstrap, const char *topic, unsigned char *seen,
                          size_t max_seq)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "test-ingress-queue-full", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    CHECK(rk != NULL);
    if (!rk)
        return 0;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(3);
    for (int p = 0; p < 3; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    CHECK_INT(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    size_t got = 0;
    int eofs = 0;
    for (int idle = 0; eofs < 3 && idle < 100;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle++;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err) {
            got++;
            rd_kafka_headers_t *h = NULL;
            const void *v = NULL;
            size_t vlen = 0;
            if (!rd_kafka_message_headers(m, &h) &&
                !rd_kafka_header_get_last(h, "ce_sequence", &v, &vlen) && vlen < 24) {
                char num[24];
                memcpy(num, v, vlen);
                num[vlen] = '\0';
                unsigned long long seq = strtoull(num, NULL, 10);
                if (seq >= 1 && seq <= max_seq)
                    seen[seq]++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    CHECK_INT(eofs, 3);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return got;
}

int main(void)
{
    char err[512], state[] = "/tmp/kb-test-ingress-qf-XXXXXX";
    CHECK(mkdtemp(state) != NULL);
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 1);
    CHECK(mc != NULL);
    if (!mc)
        KB_TEST_DONE();
    setenv("KETENBUS_TOPIC_PREFIX", "qftest", 1);
    /* the mock cluster has no CreateTopics: make the topics ingress wants */
    rd_kafka_mock_topic_create(mc, "qftest.in.qf", 3, 1);
    rd_kafka_mock_topic_create(mc, "qftest.quarantine.qf", 1, 1);
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);

    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    CHECK_INT(kb_kafka_opts_set(&ko, "bootstrap.servers", bootstrap, err, sizeof err), KB_OK);
    /* a local queue of 100 messages, so that a batch of 1000 overflows it */
    CHECK_INT(kb_kafka_opts_set(&ko, "queue.buffering.max.messages", "100", err, sizeof err),
              KB_OK);
    struct kb_ingress_opts io = {.kafka = &ko, .source = "qf", .state_dir = state, .partitions = 3};
    kb_ingress_t *ing = kb_ingress_new(&io, err, sizeof err);
    CHECK(ing != NULL);
    if (!ing) {
        fprintf(stderr, "ingress: %s\n", err);
        KB_TEST_DONE();
    }

    static struct kb_ingress_event evs[N_EVENTS];
    static uint8_t value[] = {0, 0, 0, 0, 1, 2, 'x'};
    for (size_t i = 0; i < N_EVENTS; i++) {
        struct kb_event_attrs *a = &evs[i].attrs;
        snprintf(a->id, sizeof a->id, "00000000-0000-5000-8000-%012zu", i);
        snprintf(a->source, sizeof a->source, "urn:nld:oin:00000099999999999000:systeem:t");
        snprintf(a->type, sizeof a->type, "nl.test.queue-full");
        snprintf(a->time, sizeof a->time, "2024-03-20T08:00:00Z");
        snprintf(evs[i].key, sizeof evs[i].key, "%032zx", i);
        evs[i].value = value;
        evs[i].len = sizeof value;
    }
    kb_err_t rc = kb_ingress_send(ing, evs, N_EVENTS, 30000, err, sizeof err);
    CHECK_INT(rc, KB_OK);
    if (rc)
        fprintf(stderr, "send: %s\n", err);
    CHECK(evs[0].attrs.sequence == 1 && evs[N_EVENTS - 1].attrs.sequence == N_EVENTS);

    /* every event on the topic, each exactly once */
    static unsigned char seen[N_EVENTS + 1];
    size_t got = consume_all(bootstrap, "qftest.in.qf", seen, N_EVENTS);
    CHECK_INT(got, N_EVENTS);
    size_t once = 0;
    for (size_t s = 1; s <= N_EVENTS; s++)
        once += seen[s] == 1;
    CHECK_INT(once, N_EVENTS);

    /* A send the broker refuses still uses its ce_sequence numbers: part of
     * a failed batch may be in Kafka, so the next batch continues after
     * them (before, it was given the same numbers again). */
    rd_kafka_mock_push_request_errors(mc, 0 /* Produce */, 1,
                                      RD_KAFKA_RESP_ERR_INVALID_RECORD);
    for (size_t i = 0; i < 10; i++)
        snprintf(evs[i].key, sizeof evs[i].key, "%032x", 7u); /* one partition, one request */
    CHECK(kb_ingress_send(ing, evs, 10, 30000, err, sizeof err) != KB_OK);
    rc = kb_ingress_send(ing, evs, 10, 30000, err, sizeof err);
    CHECK_INT(rc, KB_OK);
    if (rc)
        fprintf(stderr, "send after the refused one: %s\n", err);
    CHECK(evs[0].attrs.sequence == N_EVENTS + 11 && evs[9].attrs.sequence == N_EVENTS + 20);
    char path[256], text[32] = "";
    snprintf(path, sizeof path, "%s/sequence", state);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(text, sizeof text, f))
            text[0] = '\0';
        fclose(f);
    }
    CHECK_STR(text, "1020\n");

    kb_ingress_destroy(ing);
    kb_kafka_opts_fini(&ko);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    CHECK_INT(kb_test_rm_tree(state), 0);
    KB_TEST_DONE();
}
