/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_topic_handles.c - the router's producer topic handles by name: one
 * handle per name, the same one every time (also after the table grew past
 * its first 64 slots), named as asked, and a topic the client already knew
 * (the audit topic, made with its own settings) is that same topic.
 */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kb_test.h"
#include "topic_handles.h"

#define N_TOPICS 200

int main(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* no broker is asked anything: handles are made locally */
    rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    CHECK(rk != NULL);

    /* a topic made beforehand with its own settings, as the audit topic is */
    rd_kafka_topic_conf_t *tc = rd_kafka_topic_conf_new();
    CHECK(rd_kafka_topic_conf_set(tc, "compression.codec", "lz4", errstr, sizeof errstr) ==
          RD_KAFKA_CONF_OK);
    rd_kafka_topic_t *audit = rd_kafka_topic_new(rk, "kb.audit", tc);
    CHECK(audit != NULL);

    kb_topic_handles_t *h = kb__topic_handles_new(rk);
    CHECK(h != NULL);
    CHECK_INT((int)kb__topic_handles_count(h), 0);

    static rd_kafka_topic_t *first[N_TOPICS];
    char name[64];
    for (int i = 0; i < N_TOPICS; i++) {
        snprintf(name, sizeof name, "kb.out.subscriber-%03d", i);
        first[i] = kb__topic_handles_get(h, name);
        CHECK(first[i] != NULL);
        CHECK_STR(rd_kafka_topic_name(first[i]), name);
        /* asked again at once: the same handle, nothing added */
        CHECK(kb__topic_handles_get(h, name) == first[i]);
        CHECK_INT((int)kb__topic_handles_count(h), i + 1);
    }
    /* after the table grew (64 slots hold 32 names): every handle found again */
    int same = 0;
    for (int i = 0; i < N_TOPICS; i++) {
        snprintf(name, sizeof name, "kb.out.subscriber-%03d", i);
        same += kb__topic_handles_get(h, name) == first[i];
    }
    CHECK_INT(same, N_TOPICS);
    CHECK_INT((int)kb__topic_handles_count(h), N_TOPICS);

    /* a name that is a prefix of held names is its own topic */
    rd_kafka_topic_t *prefix = kb__topic_handles_get(h, "kb.out.subscriber-00");
    CHECK(prefix != NULL);
    CHECK_STR(rd_kafka_topic_name(prefix), "kb.out.subscriber-00");
    CHECK(prefix != first[0]);

    /* the topic the client knew: librdkafka's own topic, not a second one */
    rd_kafka_topic_t *a = kb__topic_handles_get(h, "kb.audit");
    CHECK(a != NULL);
    CHECK(a == audit);
    CHECK_STR(rd_kafka_topic_name(a), "kb.audit");
    CHECK_INT((int)kb__topic_handles_count(h), N_TOPICS + 2);

    kb__topic_handles_destroy(h);
    kb__topic_handles_destroy(NULL);
    rd_kafka_topic_destroy(audit);
    rd_kafka_destroy(rk);
    KB_TEST_DONE();
}
