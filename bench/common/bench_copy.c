/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_copy.c - the bare librdkafka copies the broker benchmarks hold the
 * router against: a one-to-one copy topic->topic (bench-route's limit), and
 * a fan-out copy that writes each input as many times as the router writes
 * per event, with none of its work (what any router writing those messages
 * through this client library could reach on the same broker).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_common.h"
#include "ketenbus/kafka.h"
#include "ketenbus/route.h"

#define PARTITIONS 3

static atomic_int copy_stop;

static void on_term(int sig)
{
    (void)sig;
    atomic_store(&copy_stop, 1);
}

void bench_fanout_topic_name(const char *prefix, size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%s", prefix, i < BENCH_N_SUBS ? bench_subs[i].name : "trail");
}

/* Which topics input number @p n goes to in fan-out mode, into @p out
 * (BENCH_FANOUT_TOPICS long); returns how many. As many messages as the router
 * writes for the benchmark's birth events: 5.85 copies on average (6 for 17
 * inputs in 20, else 5) to subscriber topics spread evenly over the 20, and
 * one record to the trail topic. */
static size_t fanout_topics(uint64_t n, size_t *out)
{
    size_t copies = n % 20 < 17 ? 6 : 5, k = 0;
    for (size_t t = 0; t < copies; t++)
        out[k++] = (size_t)((n + t * 3) % BENCH_N_SUBS);
    out[k++] = BENCH_N_SUBS;
    return k;
}

/*
 * The limit the router is held against: consume, copy key, value and
 * headers to one topic, send the offsets and commit, in batches of the same
 * size and wait as the router's, with the router's client settings
 * (read_committed, its linger.ms KB_ROUTE_LINGER_MS, transactions, the codec
 * of its copies).
 *
 * With @p fanout, the same loop writes each input unchanged to the number of
 * topics and partitions the router writes (fanout_topics()), with none of the
 * router's work: the limit of a router that writes what this one writes,
 * with this client library on this broker.
 */
static int copy_worker(const char *bootstrap, const char *in, const char *out, const char *group,
                       int batch_max, const char *codec, int fanout)
{
    char errstr[512];
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    rd_kafka_t *prod = NULL, *cons = NULL;
    rd_kafka_topic_t *outs[BENCH_FANOUT_TOPICS] = {0};
    rd_kafka_message_t **batch = NULL;
    uint64_t copied = 0, txns = 0;
    int rc = 1;
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    char txn[200];
    snprintf(txn, sizeof txn, "%s-txn", group);
    if (rd_kafka_conf_set(pc, "bootstrap.servers", bootstrap, errstr, sizeof errstr) ||
        rd_kafka_conf_set(pc, "transactional.id", txn, errstr, sizeof errstr) ||
        rd_kafka_conf_set(pc, "linger.ms", KB_ROUTE_LINGER_MS, errstr, sizeof errstr) ||
        rd_kafka_conf_set(pc, "compression.type", codec, errstr, sizeof errstr)) {
        fprintf(stderr, "copy: %s\n", errstr);
        rd_kafka_conf_destroy(pc);
        return 1;
    }
    prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    if (!prod) {
        fprintf(stderr, "copy: %s\n", errstr);
        rd_kafka_conf_destroy(pc);
        return 1;
    }
    rd_kafka_error_t *e = rd_kafka_init_transactions(prod, 60000);
    if (e) {
        fprintf(stderr, "copy: init_transactions: %s\n", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        goto out;
    }
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_conf_set(cc, "group.id", group, NULL, 0);
    rd_kafka_conf_set(cc, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(cc, "isolation.level", "read_committed", NULL, 0);
    rd_kafka_conf_set(cc, "auto.offset.reset", "earliest", NULL, 0);
    cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
    if (!cons) {
        fprintf(stderr, "copy: %s\n", errstr);
        rd_kafka_conf_destroy(cc);
        goto out;
    }
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, in, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(cons, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    /* Handles made once, as the router keeps its own (kb__topic_handles). */
    for (size_t i = 0; i < (fanout ? BENCH_FANOUT_TOPICS : 1); i++) {
        char name[160];
        if (fanout)
            bench_fanout_topic_name(out, i, name, sizeof name);
        else
            snprintf(name, sizeof name, "%s", out);
        outs[i] = rd_kafka_topic_new(prod, name, NULL);
        if (!outs[i]) {
            fprintf(stderr, "copy: topic %s: %s\n", name, rd_kafka_err2str(rd_kafka_last_error()));
            goto out;
        }
    }
    batch = calloc((size_t)batch_max, sizeof *batch);
    if (!batch) {
        fprintf(stderr, "copy: out of memory\n");
        goto out;
    }
    rc = 0;
    while (!atomic_load(&copy_stop)) {
        size_t n = 0;
        double deadline = 0;
        while (n < (size_t)batch_max && !atomic_load(&copy_stop)) {
            int wait = 100;
            if (n) {
                double left = deadline - bench_now_s();
                if (left <= 0)
                    break;
                wait = (int)(left * 1000) + 1;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, wait);
            if (!m)
                continue;
            if (m->err) {
                rd_kafka_message_destroy(m);
                continue;
            }
            if (!n)
                deadline = bench_now_s() + 0.1;
            batch[n++] = m;
        }
        if (!n)
            continue;
        e = rd_kafka_begin_transaction(prod);
        rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; !e && !rc && i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            size_t to[BENCH_FANOUT_TOPICS];
            size_t n_to = fanout ? fanout_topics(copied, to) : 1;
            for (size_t t = 0; t < n_to && !rc; t++) {
                rd_kafka_headers_t *h = NULL, *hc = NULL;
                if (!rd_kafka_message_headers(m, &h) && h)
                    hc = rd_kafka_headers_copy(h);
                rd_kafka_topic_t *rkt = fanout ? outs[to[t]] : outs[0];
                rd_kafka_resp_err_t err;
                do {
                    err = rd_kafka_producev(prod, RD_KAFKA_V_RKT(rkt),
                                            RD_KAFKA_V_KEY(m->key, m->key_len),
                                            RD_KAFKA_V_VALUE(m->payload, m->len),
                                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                            RD_KAFKA_V_HEADERS(hc), RD_KAFKA_V_END);
                    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) /* as the router: wait it out */
                        rd_kafka_poll(prod, 20);
                } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !atomic_load(&copy_stop));
                if (err) {
                    fprintf(stderr, "copy: produce: %s\n", rd_kafka_err2str(err));
                    rd_kafka_headers_destroy(hc);
                    rc = 1;
                }
            }
            if (rc)
                break;
            rd_kafka_topic_partition_t *p =
                rd_kafka_topic_partition_list_find(offs, rd_kafka_topic_name(m->rkt), m->partition);
            if (!p)
                p = rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(m->rkt),
                                                      m->partition);
            p->offset = m->offset + 1;
            copied++;
        }
        if (!e && !rc) {
            rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(cons);
            e = rd_kafka_send_offsets_to_transaction(prod, offs, md, 30000);
            rd_kafka_consumer_group_metadata_destroy(md);
            if (!e)
                e = rd_kafka_commit_transaction(prod, 60000);
        }
        rd_kafka_topic_partition_list_destroy(offs);
        for (size_t i = 0; i < n; i++)
            rd_kafka_message_destroy(batch[i]);
        if (e || rc) {
            /* A benchmark, not a router: no rewind and retry; report and stop. */
            fprintf(stderr, "copy: transaction failed: %s\n",
                    e ? rd_kafka_error_string(e) : "produce");
            if (e)
                rd_kafka_error_destroy(e);
            rc = 1;
            break;
        }
        txns++;
    }
    fprintf(stderr, "copy: copied=%" PRIu64 " transactions=%" PRIu64 "\n", copied, txns);
out:
    free(batch);
    for (size_t i = 0; i < BENCH_FANOUT_TOPICS; i++)
        if (outs[i])
            rd_kafka_topic_destroy(outs[i]);
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    rd_kafka_destroy(prod);
    return rc;
}

int bench_is_copy_worker(int argc, char **argv)
{
    return argc > 1 && !strcmp(argv[1], "--copy-worker");
}

int bench_copy_worker_main(int argc, char **argv)
{
    char *end = NULL;
    long batch = argc > 6 ? strtol(argv[6], &end, 10) : 0;
    if (argc < 8 || argc > 9 || !bench_is_copy_worker(argc, argv) ||
        (argc == 9 && strcmp(argv[8], "fanout")) || !end || *end || batch < 1 || batch > 1000000) {
        fprintf(stderr,
                "%s --copy-worker: bad arguments (BOOTSTRAP IN OUT GROUP BATCH CODEC "
                "[fanout], BATCH 1 to 1000000)\n",
                argv[0]);
        return 2;
    }
    return copy_worker(argv[2], argv[3], argv[4], argv[5], (int)batch, argv[7], argc == 9);
}

void bench_self_exe(char *buf, size_t cap)
{
    ssize_t n = cap ? readlink("/proc/self/exe", buf, cap - 1) : -1;
    if (cap)
        buf[n > 0 ? n : 0] = '\0';
}

int bench_ensure_topics(const char *bootstrap, const char *const *topics, size_t n, const char *who)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "%s: %s\n", who, errstr);
        return -1;
    }
    kb_err_t err = kb_kafka_ensure_topics(rk, topics, n, PARTITIONS, 30000, errstr, sizeof errstr);
    rd_kafka_destroy(rk);
    if (err)
        fprintf(stderr, "%s: %s\n", who, errstr);
    return err ? -1 : 0;
}

int bench_copy_contestant(const struct bench_ctx *c, const char *self, const char *prefix,
                          int fanout, struct bench_copy *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->in, sizeof out->in, "%s.in.gba", prefix);
    snprintf(out->group, sizeof out->group, "%s-copy", prefix);
    snprintf(out->self, sizeof out->self, "%s", self);
    snprintf(out->batch, sizeof out->batch, "%d", c->batch);
    size_t n_outs = fanout ? BENCH_FANOUT_TOPICS : 1;
    if (fanout) {
        snprintf(out->out, sizeof out->out, "%s.out", prefix);
        for (size_t i = 0; i < n_outs; i++)
            bench_fanout_topic_name(out->out, i, out->names[i], sizeof out->names[i]);
    } else {
        snprintf(out->out, sizeof out->out, "%s.out.copy", prefix);
        snprintf(out->names[0], sizeof out->names[0], "%s", out->out);
    }
    const char *topics[BENCH_FANOUT_TOPICS + 1];
    topics[0] = out->in;
    for (size_t i = 0; i < n_outs; i++)
        topics[i + 1] = out->outs[i] = out->names[i];
    if (bench_ensure_topics(c->bootstrap, topics, n_outs + 1, "bench"))
        return -1;
    char **a = out->argv;
    *a++ = out->self;
    *a++ = "--copy-worker";
    *a++ = (char *)c->bootstrap;
    *a++ = out->in;
    *a++ = out->out;
    *a++ = out->group;
    *a++ = out->batch;
    *a++ = (char *)c->codec;
    if (fanout)
        *a++ = "fanout";
    *a = NULL;
    out->k = (struct bench_contestant){.name = fanout ? "fanout-copy" : "copy",
                                       .prefix = prefix,
                                       .group = out->group,
                                       .argv = out->argv,
                                       .outs = out->outs,
                                       .n_outs = n_outs};
    return 0;
}
