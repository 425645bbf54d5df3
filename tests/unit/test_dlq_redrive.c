/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_dlq_redrive.c - kb_dlq_redrive of a dead letter whose value the
 * router dropped (route.c stage_copy: a copy too large for the dead-letter
 * topic goes without its value and, if still too large, without the
 * original headers, saying so in kb_value_dropped and kb_value_sha256),
 * against librdkafka's mock cluster. Its bytes and headers are still at
 * the input position the letter names: redrive must put that event back,
 * not an empty value without its CloudEvents headers, and must refuse when
 * the input there is not the event that was dead-lettered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_test.h"
#include "test_mock_kafka.h"
#include "admin_int.h" /* kb__sha256_hex */
#include "ketenbus/admin.h"
#include "ketenbus/kafka.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (via kafka.h) */

static const char event_id[] = "5b1f9a52-2f0c-4c55-9d64-8f0f6f5a3c11";

static void produce(rd_kafka_t *rk, const char *topic, const void *value, size_t len,
                    rd_kafka_headers_t *h)
{
    CHECK_INT(rd_kafka_producev(
                  rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                  RD_KAFKA_V_KEY("subject-key", 11), RD_KAFKA_V_VALUE((void *)value, len),
                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* A letter as stage_copy writes it when even the lean copy with the
 * original headers was too large: context headers only, no value. */
static rd_kafka_headers_t *lean_letter(const char *in_topic, const char *offset, const char *len,
                                       const char *sha)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(10);
    rd_kafka_header_add(h, "kb_stage", -1, "size", -1);
    rd_kafka_header_add(h, "kb_rule", -1, "message-too-large", -1);
    rd_kafka_header_add(h, "kb_topic", -1, in_topic, -1);
    rd_kafka_header_add(h, "kb_partition", -1, "0", -1);
    rd_kafka_header_add(h, "kb_offset", -1, offset, -1);
    rd_kafka_header_add(h, "kb_group", -1, "rd-route", -1);
    rd_kafka_header_add(h, "kb_value_dropped", -1, len, -1);
    rd_kafka_header_add(h, "kb_value_sha256", -1, sha, -1);
    return h;
}

/* What the message at an offset of the input topic holds. */
struct got {
    int found;
    size_t len;
    uint8_t value[64];
    char ce_id[64], redriven_from[400];
    int dropped; /* has kb_value_dropped */
};

static void header_copy(rd_kafka_headers_t *h, const char *name, char *out, size_t size)
{
    const void *v = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (h && !rd_kafka_header_get_last(h, name, &v, &len) && v)
        snprintf(out, size, "%.*s", (int)len, (const char *)v);
}

struct wanted {
    int64_t offset;
    struct got *g;
};

static int take_at(const rd_kafka_message_t *m, void *opaque)
{
    struct wanted *w = opaque;
    if (m->offset != w->offset)
        return 0;
    struct got *g = w->g;
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t vl;
    rd_kafka_message_headers(m, &h);
    g->found = 1;
    g->len = m->len;
    if (m->len)
        memcpy(g->value, m->payload, m->len < sizeof g->value ? m->len : sizeof g->value);
    header_copy(h, "ce_id", g->ce_id, sizeof g->ce_id);
    header_copy(h, "kb_redriven_from", g->redriven_from, sizeof g->redriven_from);
    g->dropped = h && !rd_kafka_header_get_last(h, "kb_value_dropped", &v, &vl);
    return 1;
}

/* The message at @p offset of @p topic [0], copied out (a consumer cannot
 * be destroyed while a message of it is held). */
static void read_at(const struct kb_kafka_opts *ko, const char *topic, int64_t offset,
                    struct got *g)
{
    memset(g, 0, sizeof *g);
    struct wanted w = {offset, g};
    test_read_partition(ko, topic, offset, "dlq-redrive-reader", 0, take_at, &w);
}

int main(void)
{
    char errstr[512], in_topic[160], dlq[160];
    setenv("KETENBUS_TOPIC_PREFIX", "rd", 1);
    kb_topic_name(in_topic, sizeof in_topic, "in.gba");
    kb_topic_name(dlq, sizeof dlq, "dlq");

    rd_kafka_t *mrk;
    rd_kafka_mock_cluster_t *mc = test_mock_cluster(1, &mrk);
    rd_kafka_mock_topic_create(mc, in_topic, 1, 1);
    rd_kafka_mock_topic_create(mc, dlq, 1, 1);
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    kb_kafka_opts_set(&ko, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);

    /* The event (Confluent framing, then payload bytes) and its envelope. */
    static const uint8_t value[] = {0, 0, 0, 0x03, 0xe9, 'p', 'a', 'y', 'l', 'o', 'a', 'd'};
    static const uint8_t other[] = {0, 0, 0, 0x03, 0xe9, 'o', 't', 'h', 'e', 'r'};
    char sha[65], len[24];
    kb__sha256_hex(value, sizeof value, sha);
    snprintf(len, sizeof len, "%zu", sizeof value);
    rd_kafka_conf_t *pc = kb_kafka_conf_new(&ko, errstr, sizeof errstr);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "ce_id", -1, event_id, -1);
    rd_kafka_header_add(h, "ce_type", -1, "nl.brp.persoon-geboren", -1);
    produce(prod, in_topic, value, sizeof value, h);                   /* input offset 0 */
    produce(prod, in_topic, other, sizeof other, NULL);                /* input offset 1 */
    produce(prod, dlq, NULL, 0, lean_letter(in_topic, "0", len, sha)); /* letter 0 */
    produce(prod, dlq, NULL, 0, lean_letter(in_topic, "1", len, sha)); /* letter 1 */
    CHECK_INT(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(prod);

    /* Letter 1 names an input that is not the dead-lettered event: refused. */
    struct kb_dlq_redriven r;
    CHECK_INT(kb_dlq_redrive(&ko, NULL, 0, 1, NULL, 0, &r, errstr, sizeof errstr), KB_ERR_INVALID);

    /* Letter 0: the event goes back whole, with its envelope. */
    kb_err_t err = kb_dlq_redrive(&ko, NULL, 0, 0, NULL, 0, &r, errstr, sizeof errstr);
    CHECK_INT(err, KB_OK);
    if (err)
        fprintf(stderr, "redrive: %s\n", errstr);
    CHECK_INT(r.bytes, sizeof value);
    CHECK_STR(r.sha256, sha);
    CHECK_INT(r.headers_kept, 2);
    struct got g;
    read_at(&ko, in_topic, 2, &g);
    CHECK(g.found);
    CHECK_INT(g.len, sizeof value);
    CHECK(g.len == sizeof value && !memcmp(g.value, value, sizeof value));
    CHECK_STR(g.ce_id, event_id);
    CHECK_STR(g.redriven_from, r.from);
    CHECK(!g.dropped);
    /* Nothing else was produced: the refused letter added no message. */
    read_at(&ko, in_topic, 3, &g);
    CHECK(!g.found);

    /* Retention removed the input (offset 50 was never there): a letter
     * that kept the original headers goes back with --value, as the help
     * offers, with its envelope; without a value it cannot, and says what
     * can. A letter without the headers cannot: the value alone would
     * lack the envelope. */
    static const uint8_t fixed[] = {0, 0, 0, 0x03, 0xe9, 'f', 'i', 'x', 'e', 'd'};
    char fixed_sha[65];
    kb__sha256_hex(fixed, sizeof fixed, fixed_sha);
    rd_kafka_headers_t *kept = lean_letter(in_topic, "50", len, sha);
    rd_kafka_header_add(kept, "ce_specversion", -1, "1.0", -1);
    rd_kafka_header_add(kept, "ce_id", -1, event_id, -1);
    rd_kafka_header_add(kept, "ce_type", -1, "nl.brp.persoon-geboren", -1);
    pc = kb_kafka_conf_new(&ko, errstr, sizeof errstr);
    prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    produce(prod, dlq, NULL, 0, kept);                                  /* letter 2 */
    produce(prod, dlq, NULL, 0, lean_letter(in_topic, "50", len, sha)); /* letter 3 */
    CHECK_INT(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(prod);

    CHECK(kb_dlq_redrive(&ko, NULL, 0, 2, NULL, 0, &r, errstr, sizeof errstr) != KB_OK);
    CHECK(strstr(errstr, "cannot be read") != NULL);
    CHECK(strstr(errstr, "a corrected value can still go back with the letter's headers"));
    err = kb_dlq_redrive(&ko, NULL, 0, 2, fixed, sizeof fixed, &r, errstr, sizeof errstr);
    if (err)
        fprintf(stderr, "redrive --value: %s\n", errstr);
    CHECK_INT(err, KB_OK);
    CHECK_INT(r.corrected, 1);
    CHECK_INT(r.bytes, sizeof fixed);
    CHECK_STR(r.sha256, fixed_sha);
    CHECK_INT(r.headers_kept, 3); /* ce_specversion, ce_id, ce_type; no kb_* */
    CHECK_INT(r.offset, 3);
    read_at(&ko, in_topic, 3, &g);
    CHECK(g.found);
    CHECK(g.len == sizeof fixed && !memcmp(g.value, fixed, sizeof fixed));
    CHECK_STR(g.ce_id, event_id);
    CHECK_STR(g.redriven_from, r.from);
    CHECK(!g.dropped);

    CHECK(kb_dlq_redrive(&ko, NULL, 0, 3, fixed, sizeof fixed, &r, errstr, sizeof errstr) != KB_OK);
    CHECK(strstr(errstr, "CloudEvents headers, which a corrected value still needs") != NULL);
    read_at(&ko, in_topic, 4, &g);
    CHECK(!g.found);

    kb_kafka_opts_fini(&ko);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    KB_TEST_DONE();
}
