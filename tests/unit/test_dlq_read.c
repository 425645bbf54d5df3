/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_dlq_read.c - kb_dlq_read of a dead-letter topic with a partition whose
 * offsets cannot be read, against librdkafka's mock cluster: the partition
 * must be named (o->unreadable) and the read marked incomplete, never
 * counted as empty, while the other partitions are still read whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_test.h"
#include "test_mock_kafka.h"
#include "ketenbus/admin.h"
#include "ketenbus/kafka.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (via kafka.h) */

struct seen {
    int letters[2];    /* per partition */
    int unreadable[2]; /* times named unreadable, per partition */
    char why[256];     /* the last reason given */
};

static int on_letter(void *opaque, const struct kb_dlq_letter *l)
{
    struct seen *s = opaque;
    if (l->partition >= 0 && l->partition < 2)
        s->letters[l->partition]++;
    return 0;
}

static void on_unreadable(void *opaque, int32_t partition, const char *why)
{
    struct seen *s = opaque;
    if (partition >= 0 && partition < 2)
        s->unreadable[partition]++;
    snprintf(s->why, sizeof s->why, "%s", why);
}

/* Two letters in partition 0, three in partition 1. */
static void fill(const struct kb_kafka_opts *ko, const char *dlq)
{
    char errstr[512];
    rd_kafka_conf_t *pc = kb_kafka_conf_new(ko, errstr, sizeof errstr);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    CHECK(prod != NULL);
    for (int i = 0; i < 5; i++) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, "kb_stage", -1, "validate", -1);
        rd_kafka_header_add(h, "kb_rule", -1, "bsn-11proef", -1);
        CHECK_INT(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(dlq),
                                    RD_KAFKA_V_PARTITION(i < 2 ? 0 : 1), RD_KAFKA_V_VALUE("x", 1),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                    RD_KAFKA_V_END),
                  RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    CHECK_INT(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(prod);
}

int main(void)
{
    char errstr[512], dlq[160];
    setenv("KETENBUS_TOPIC_PREFIX", "rl", 1);
    kb_topic_name(dlq, sizeof dlq, "dlq");

    rd_kafka_t *mrk;
    rd_kafka_mock_cluster_t *mc = test_mock_cluster(1, &mrk);
    rd_kafka_mock_topic_create(mc, dlq, 2, 1);
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    kb_kafka_opts_set(&ko, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);
    fill(&ko, dlq);

    /* All readable: every letter, complete, nothing named. */
    struct seen s;
    memset(&s, 0, sizeof s);
    struct kb_dlq_read_opts ro = {.kafka = &ko,
                                  .partition = -1,
                                  .offset = -1,
                                  .unreadable = on_unreadable,
                                  .unreadable_opaque = &s};
    uint64_t depth = 0;
    int complete = 0;
    CHECK_INT(kb_dlq_read(&ro, on_letter, &s, &depth, NULL, NULL, &complete, errstr, sizeof errstr),
              KB_OK);
    CHECK_INT(complete, 1);
    CHECK_INT(depth, 5);
    CHECK_INT(s.letters[0], 2);
    CHECK_INT(s.letters[1], 3);
    CHECK_INT(s.unreadable[0] + s.unreadable[1], 0);

    /* The offsets of the first partition asked for cannot be read: both
     * its ListOffsets requests (low and high watermark) fail with an error
     * the client does not retry. Partition 0 is named and left out, the
     * read is incomplete, partition 1 is read whole. */
    memset(&s, 0, sizeof s);
    rd_kafka_mock_push_request_errors(mc, 2 /* ListOffsets */, 2,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    complete = 1;
    CHECK_INT(kb_dlq_read(&ro, on_letter, &s, &depth, NULL, NULL, &complete, errstr, sizeof errstr),
              KB_OK);
    CHECK_INT(complete, 0);
    CHECK_INT(s.unreadable[0], 1);
    CHECK_INT(s.unreadable[1], 0);
    CHECK(s.why[0] != '\0');
    CHECK_INT(s.letters[0], 0);
    CHECK_INT(s.letters[1], 3);
    CHECK_INT(depth, 3);

    /* Without the callback the fact is still in complete. */
    ro.unreadable = NULL;
    rd_kafka_mock_push_request_errors(mc, 2 /* ListOffsets */, 2,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    complete = 1;
    CHECK_INT(kb_dlq_read(&ro, on_letter, &s, &depth, NULL, NULL, &complete, errstr, sizeof errstr),
              KB_OK);
    CHECK_INT(complete, 0);

    kb_kafka_opts_fini(&ko);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    KB_TEST_DONE();
}
