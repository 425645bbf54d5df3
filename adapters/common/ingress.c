/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ingress.c - acknowledged production for adapters (see ingress.h). A send
 * waits on the delivery reports of exactly its own messages through a
 * per-call tracker passed as the message opaque.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapter_metrics.h"
#include "hmac.h" /* bus/src: kb__sha256, kb__hex */
#include "ingress.h"
#include "ketenbus/clock.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"
#include "spool.h"

#define COMP "ingress"

struct kb_ingress {
    rd_kafka_t *producer;        /* idempotent, acks=all; NULL once dropped (txn_begin) */
    struct kb_ingress_opts opts; /* what it was made with (producer rebuilds) */
    char txn_id[160];            /* transactional.id, or "" when not transactional */
    size_t batch_size;           /* batch.size it was made with (0: librdkafka's) */
    char topic[128];            /* kb.in.<source> */
    char quarantine_topic[128]; /* kb.quarantine.<source> */
    char seq_path[2048];        /* file holding the last ce_sequence used */
    uint64_t sequence;          /* last ce_sequence taken (persisted before use) */
    char source[64];            /* source name, the metrics label */
    size_t max_message;         /* largest message the events topic takes (learn_limits) */
    size_t quarantine_raw_max;  /* raw bytes a quarantine record carries at most */
};

/* Outcome of one kb_ingress_send() call, filled by delivery reports. */
struct tracker {
    size_t pending;            /* messages without a delivery report yet */
    rd_kafka_resp_err_t first; /* first failure, or NO_ERROR */
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct tracker *t = m->_private;
    if (!t)
        return;
    if (m->err && !t->first)
        t->first = m->err;
    t->pending--;
}

void kb_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t md[KB_HMAC_LEN];
    kb__sha256(data, len, md);
    kb__hex(md, sizeof md, out);
    out[64] = '\0';
}

static uint64_t sequence_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long v = 0;
    if (fscanf(f, "%llu", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

/* The producer of @p opts (idempotent, acks=all, reporting to dr_cb) with
 * batch.size @p batch_size when not 0, transactional as @p txn_id when not
 * "" (transactions initialised), or NULL with errstr set. */
static rd_kafka_t *producer_new(const struct kb_ingress_opts *opts, size_t batch_size,
                                const char *txn_id, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = kb_kafka_conf_new(opts->kafka, errstr, errstr_size);
    if (!conf)
        return NULL;
    char rerr[512], client_id[160], batch[24];
    snprintf(client_id, sizeof client_id, "ketenbus-%s", opts->source);
    snprintf(batch, sizeof batch, "%zu", batch_size);
    if (rd_kafka_conf_set(conf, "acks", "all", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "client.id", client_id, rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", rerr, sizeof rerr) ||
        (batch_size && rd_kafka_conf_set(conf, "batch.size", batch, rerr, sizeof rerr)) ||
        (*txn_id && rd_kafka_conf_set(conf, "transactional.id", txn_id, rerr, sizeof rerr))) {
        rd_kafka_conf_destroy(conf);
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "producer: %s", rerr);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rerr, sizeof rerr);
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* librdkafka owns it only on success */
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "producer: %s", rerr);
        return NULL;
    }
    if (*txn_id) {
        /* Also fences an older producer with this id (a zombie of this
         * adapter) and aborts what it left open. */
        rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 30000);
        if (e) {
            kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "producer: init transactions: %s",
                       rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            rd_kafka_destroy(rk);
            return NULL;
        }
    }
    return rk;
}

/* The transactional.id of an ingress with @p opts and events topic @p topic:
 * stable for one adapter (same topics, instance name and state directory),
 * so that a restart fences the process before it and aborts what it left
 * open; distinct for adapters that must not fence each other (another
 * spool, another instance, another topic prefix). The instance is
 * opts->instance, else the host name: a restart under another host name
 * then fences nothing, and a transaction its predecessor left open holds
 * read_committed readers of those partitions back until the broker aborts
 * it (transaction.timeout.ms, 60 s). Hence the Kadaster adapter's
 * --instance, which deploy/k8s/adapters.yaml gives. */
void kb__ingress_txn_id(const struct kb_ingress_opts *opts, const char *topic, const char *host,
                        char *out, size_t size)
{
    char dir[4096], in[4096 + 256 + 160], hex[65];
    if (!realpath(opts->state_dir, dir))
        snprintf(dir, sizeof dir, "%s", opts->state_dir);
    /* The name stands where the host name stood: --instance set to the
     * host name a running adapter has keeps its transactional.id. */
    int n = snprintf(in, sizeof in, "%s|%.255s|%s", topic, opts->instance ? opts->instance : host,
                     dir);
    kb_sha256_hex(in, n < 0 ? 0 : (size_t)n < sizeof in ? (size_t)n : sizeof in - 1, hex);
    /* Under the topic prefix, as the router's "<prefix>-route-...": one
     * prefixed ACL (WRITE, DESCRIBE on the transactional id) covers it. */
    snprintf(out, size, "%s-%s-ingress-%.16s", kb_topic_prefix(), opts->source, hex);
}

static void txn_id_make(const struct kb_ingress_opts *opts, const char *topic, char *out,
                        size_t size)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    kb__ingress_txn_id(opts, topic, host, out, size);
}

/* Room in a quarantine record for its headers (kb_error is a bounded reason). */
#define QUARANTINE_HEADROOM 4096

/*
 * max.message.bytes of @p n topics as the broker has it (the topic's own
 * setting, else the broker's message.max.bytes: DescribeConfigs reports the
 * effective value) into @p out, 0 for a topic it did not report. A topic
 * created a moment ago may be unknown to the node that answers for a while:
 * asked again until @p timeout_ms. An error (the principal may lack
 * DESCRIBE_CONFIGS, say) names the first topic not reported; the limits of
 * the others are in @p out all the same.
 */
static kb_err_t topic_limits(rd_kafka_t *rk, const char *const *topics, size_t n, size_t *out,
                             int timeout_ms, char *errstr, size_t errstr_size)
{
    int64_t deadline = kb_mono_ms() + timeout_ms;
    if (n > 2)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size, "at most two topics");
    for (size_t i = 0; i < n; i++)
        out[i] = 0;
    /* DescribeConfigs goes to the controller. librdkafka's mock cluster (dev
     * mode, tests) names no broker of its own as the controller, and the
     * request would wait for one until the timeout: asked only when the
     * controller is one of the brokers. */
    int32_t controller = rd_kafka_controllerid(rk, timeout_ms);
    const struct rd_kafka_metadata *md = NULL;
    int known = 0;
    if (controller >= 0 && !rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms)) {
        for (int b = 0; b < md->broker_cnt; b++)
            known |= md->brokers[b].id == controller;
        rd_kafka_metadata_destroy(md);
    }
    if (!known)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                          "the cluster names no broker as its controller");
    kb_err_t err = KB_OK;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, NULL, 0);
    for (int unknown = 1; unknown && !err;) {
        rd_kafka_ConfigResource_t *res[2]; /* the events and the quarantine topic */
        for (size_t i = 0; i < n; i++)
            res[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topics[i]);
        rd_kafka_DescribeConfigs(rk, res, n, ao, q);
        rd_kafka_ConfigResource_destroy_array(res, n);
        rd_kafka_event_t *ev = NULL;
        unknown = 0;
        err = kb_kafka_admin_wait(q, "DescribeConfigs", timeout_ms, &ev, errstr, errstr_size);
        if (!err) {
            size_t cnt = 0;
            const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(
                rd_kafka_event_DescribeConfigs_result(ev), &cnt);
            for (size_t r = 0; r < cnt; r++) {
                rd_kafka_resp_err_t rerr = rd_kafka_ConfigResource_error(rs[r]);
                unknown |= rerr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
                if (rerr && rerr != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && !err)
                    err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "topic %s: %s",
                                     rd_kafka_ConfigResource_name(rs[r]), rd_kafka_err2str(rerr));
                size_t ti = 0;
                while (ti < n && strcmp(topics[ti], rd_kafka_ConfigResource_name(rs[r])))
                    ti++;
                size_t nc = 0;
                const rd_kafka_ConfigEntry_t **ce =
                    rerr || ti == n ? NULL : rd_kafka_ConfigResource_configs(rs[r], &nc);
                for (size_t c = 0; c < nc; c++) {
                    const char *v = rd_kafka_ConfigEntry_value(ce[c]);
                    if (v && !strcmp(rd_kafka_ConfigEntry_name(ce[c]), "max.message.bytes"))
                        out[ti] = (size_t)strtoull(v, NULL, 10);
                }
            }
        }
        if (ev)
            rd_kafka_event_destroy(ev);
        if (unknown && !err && kb_mono_ms() >= deadline)
            err = kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size,
                             "a topic stayed unknown to DescribeConfigs");
        if (unknown && err)
            break;
        if (unknown) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    return err;
}

static size_t min_known(size_t a, size_t b)
{
    return !a ? b : !b ? a : a < b ? a : b;
}

/*
 * What the broker takes, learnt once per producer: a topic (or the broker)
 * with a max.message.bytes below the producer's refuses a larger message
 * for good, and refuses a whole batch of small ones larger than that too
 * (librdkafka does not split a batch the broker refused), so batch.size is
 * brought down to the smaller topic limit by building the producer again.
 * Without an answer (no DESCRIBE_CONFIGS right) the producer's own limit is
 * used, as before, with a warning.
 */
static kb_err_t learn_limits(kb_ingress_t *ing, const struct kb_ingress_opts *opts, char *errstr,
                             size_t errstr_size)
{
    const char *topics[] = {ing->topic, ing->quarantine_topic};
    size_t limit[2] = {0, 0};
    char werr[512];
    if (topic_limits(ing->producer, topics, 2, limit, 30000, werr, sizeof werr))
        KB_LOG_WARN(COMP, "cannot learn a topic's max.message.bytes; the producer's applies to it",
                    "topic=%s error=\"%s\"", ing->topic, werr);
    size_t mmb = kb_kafka_conf_size(ing->producer, "message.max.bytes", 0);
    size_t batch = min_known(limit[0], limit[1]);
    if (batch && batch < kb_kafka_conf_size(ing->producer, "batch.size", 0)) {
        rd_kafka_destroy(ing->producer); /* nothing was produced with it */
        ing->producer = producer_new(opts, batch, ing->txn_id, errstr, errstr_size);
        ing->batch_size = batch;
        if (!ing->producer)
            return KB_ERR_KAFKA;
    }
    ing->max_message = min_known(mmb, limit[0]);
    size_t q = min_known(mmb, limit[1]);
    ing->quarantine_raw_max = KB_INGRESS_QUARANTINE_MAX_RAW;
    if (q && q < KB_INGRESS_QUARANTINE_MAX_RAW + QUARANTINE_HEADROOM)
        ing->quarantine_raw_max = q > QUARANTINE_HEADROOM ? q - QUARANTINE_HEADROOM : 0;
    KB_LOG_INFO(COMP, "message size limits", "topic=%s max_message=%zu quarantine_raw_max=%zu",
                ing->topic, ing->max_message, ing->quarantine_raw_max);
    return KB_OK;
}

kb_ingress_t *kb_ingress_new(const struct kb_ingress_opts *opts, char *errstr,
                             size_t errstr_size)
{
    kb_ingress_t *ing = calloc(1, sizeof *ing);
    if (!ing) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    char suffix[96];
    snprintf(suffix, sizeof suffix, "in.%s", opts->source);
    kb_topic_name(ing->topic, sizeof ing->topic, suffix);
    snprintf(suffix, sizeof suffix, "quarantine.%s", opts->source);
    kb_topic_name(ing->quarantine_topic, sizeof ing->quarantine_topic, suffix);
    snprintf(ing->seq_path, sizeof ing->seq_path, "%s/sequence", opts->state_dir);
    ing->sequence = sequence_load(ing->seq_path);

    ing->opts = *opts;
    if (opts->transactional)
        txn_id_make(opts, ing->topic, ing->txn_id, sizeof ing->txn_id);
    ing->producer = producer_new(opts, 0, ing->txn_id, errstr, errstr_size);
    if (!ing->producer)
        goto out_fail;
    const char *topics[] = {ing->topic, ing->quarantine_topic};
    if (kb_kafka_ensure_topics(ing->producer, topics, 2, opts->partitions > 0 ? opts->partitions : 3,
                               30000, errstr, errstr_size))
        goto out_fail;
    if (learn_limits(ing, opts, errstr, errstr_size))
        goto out_fail;
    snprintf(ing->source, sizeof ing->source, "%s", opts->source);
    kb_adapter_metrics_source(opts->source);
    kb_adapter_metrics_kafka(ing->producer); /* readiness probe */
    return ing;
out_fail:
    kb_ingress_destroy(ing);
    return NULL;
}

size_t kb_ingress_max_message(const kb_ingress_t *ing)
{
    return ing->max_message;
}

size_t kb_ingress_quarantine_max_raw(const kb_ingress_t *ing)
{
    return ing->quarantine_raw_max;
}

size_t kb_ingress_event_limit(size_t message_max_bytes)
{
    if (!message_max_bytes)
        message_max_bytes = 1000000; /* librdkafka's default */
    if (message_max_bytes <= 2 * KB_INGRESS_EVENT_HEADROOM)
        return message_max_bytes / 2;
    return message_max_bytes - KB_INGRESS_EVENT_HEADROOM;
}

kb_err_t kb_ingress_too_large(char *errstr, size_t errstr_size, const char *what, size_t size,
                              size_t limit)
{
    return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                      "%s: its event of %zu bytes would be over the event size limit of %zu "
                      "(the smaller of the producer's message.max.bytes and the topic's "
                      "max.message.bytes, less room for headers)",
                      what, size, limit);
}

/* Bytes a message takes besides its value, counted as the broker counts a
 * one-record batch against max.message.bytes, rounded up: the batch header
 * (61), the record's own varints and attributes (at most 24), the key, and
 * each header's name and value with their two varints (4). */
static size_t message_overhead(const struct kb_ingress_event *ev)
{
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24];
    /* The sequence is given in kb_ingress_send, after this check: counted
     * at its longest, with ce_sequencetype (left out while it is 0). */
    struct kb_event_attrs a = ev->attrs;
    a.sequence = UINT64_MAX;
    size_t nh = kb_event_headers(&a, hdrs, seqbuf);
    size_t n = 61 + 24 + strlen(ev->key);
    for (size_t i = 0; i < nh; i++)
        n += strlen(hdrs[i].name) + hdrs[i].len + 4;
    return n;
}

kb_err_t kb_ingress_check_sizes(const kb_ingress_t *ing, const struct kb_ingress_event *evs,
                                size_t n, char *errstr, size_t errstr_size)
{
    size_t max = ing->max_message ? ing->max_message : 1000000; /* librdkafka's default */
    for (size_t i = 0; i < n; i++) {
        size_t over = message_overhead(&evs[i]);
        size_t limit = max > over ? max - over : 0;
        if (evs[i].len > limit)
            return kb_ingress_too_large(errstr, errstr_size, evs[i].attrs.type, evs[i].len, limit);
    }
    return KB_OK;
}

kb_err_t kb_ingress_relearn(kb_ingress_t *ing, char *errstr, size_t errstr_size)
{
    rd_kafka_t *fresh = producer_new(&ing->opts, 0, ing->txn_id, errstr, errstr_size);
    if (!fresh)
        return KB_ERR_KAFKA; /* the old one stays: the next send tries with it */
    size_t before = ing->max_message;
    if (ing->producer) {
        kb_adapter_metrics_kafka(NULL); /* waits for a probe using it */
        rd_kafka_flush(ing->producer, 10000);
        rd_kafka_destroy(ing->producer);
    }
    ing->producer = fresh;
    ing->batch_size = 0;
    kb_err_t err = learn_limits(ing, &ing->opts, errstr, errstr_size);
    /* Kafka refused a record that fit the old limit, so the new one is not
     * higher: when the broker did not answer (the producer's own limit came
     * back) or the learning failed part-way, the old one stays. */
    if (before && (!ing->max_message || ing->max_message > before))
        ing->max_message = before;
    if (ing->producer) /* NULL when learn_limits could not make one with a smaller batch */
        kb_adapter_metrics_kafka(ing->producer);
    KB_LOG_WARN(COMP, "Kafka refused a record as too large; limits learnt again",
                "topic=%s max_message_before=%zu max_message=%zu", ing->topic, before,
                ing->max_message);
    return err;
}

kb_err_t kb_ingress_send_sized(kb_ingress_t *ing, struct kb_ingress_event *evs, size_t n,
                               int timeout_ms, char *errstr, size_t errstr_size)
{
    kb_err_t err = kb_ingress_check_sizes(ing, evs, n, errstr, errstr_size);
    if (err)
        return err;
    err = kb_ingress_send(ing, evs, n, timeout_ms, errstr, errstr_size);
    if (err != KB_ERR_RANGE)
        return err;
    char why[512];
    snprintf(why, sizeof why, "%s", errstr);
    if (kb_ingress_relearn(ing, errstr, errstr_size))
        return KB_ERR_KAFKA; /* errstr says why */
    if (kb_ingress_check_sizes(ing, evs, n, errstr, errstr_size))
        return KB_ERR_RANGE;
    return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                      "%s; limits learnt again, every event fits them: retry", why);
}

void kb_ingress_destroy(kb_ingress_t *ing)
{
    if (!ing)
        return;
    if (ing->producer) {
        kb_adapter_metrics_kafka(NULL); /* waits for a probe using it */
        rd_kafka_flush(ing->producer, 10000);
        rd_kafka_destroy(ing->producer);
    }
    free(ing);
}

/*
 * Enqueue one message for @p t. A full local queue (more messages than
 * queue.buffering.max.messages or bytes than queue.buffering.max.kbytes
 * waiting for the broker) is no failure: serve delivery reports, which
 * empties it as the broker acknowledges, and try the same message again
 * until @p deadline_ms. Giving up on the first QUEUE_FULL made any batch
 * larger than the queue fail for good, re-producing its first part on
 * every retry. On error the caller keeps @p kh.
 */
static rd_kafka_resp_err_t produce(kb_ingress_t *ing, const char *topic, const char *key,
                                   const void *value, size_t len, rd_kafka_headers_t *kh,
                                   struct tracker *t, int64_t deadline_ms)
{
    for (;;) {
        rd_kafka_resp_err_t rerr = rd_kafka_producev(
            ing->producer, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(kh),
            RD_KAFKA_V_OPAQUE(t), RD_KAFKA_V_END);
        if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL || kb_mono_ms() >= deadline_ms)
            return rerr;
        rd_kafka_poll(ing->producer, 100);
    }
}

/* Serve delivery reports until @p t has none pending or @p deadline_ms
 * (monotonic) passed; @p timeout_ms is for the message only. */
static kb_err_t wait_acks(kb_ingress_t *ing, struct tracker *t, int64_t deadline_ms,
                          int timeout_ms, char *errstr, size_t errstr_size)
{
    while (t->pending > 0) {
        rd_kafka_poll(ing->producer, 50);
        if (t->pending > 0 && kb_mono_ms() > deadline_ms) {
            /* Messages still queued must not be reported later to a dead
             * tracker: purge them and serve their (failed) reports now. */
            rd_kafka_purge(ing->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            while (t->pending > 0)
                rd_kafka_poll(ing->producer, 50);
            return kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size,
                              "no acknowledgement from Kafka within %d ms", timeout_ms);
        }
    }
    if (t->first) /* too large: a limit changed since it was learnt (see kb_ingress_send) */
        return kb_err_set(t->first == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? KB_ERR_RANGE
                                                                           : KB_ERR_KAFKA,
                          errstr, errstr_size, "Kafka refused: %s", rd_kafka_err2str(t->first));
    return KB_OK;
}

/* The end of a send begun at @p t0 whose enqueueing ended with @p err:
 * what was enqueued is waited for even after a failure (its reports must
 * not reach a tracker that is gone); then the first error, the wait's, or
 * KB_OK with the time observed. */
static kb_err_t settle(kb_ingress_t *ing, struct tracker *t, int64_t deadline, int timeout_ms,
                       double t0, kb_err_t err, char *errstr, size_t errstr_size)
{
    char werr[256];
    kb_err_t werr_code = wait_acks(ing, t, deadline, timeout_ms, werr, sizeof werr);
    if (err)
        return err;
    if (werr_code)
        return kb_err_set(werr_code, errstr, errstr_size, "%s", werr);
    kb_adapter_produce_observe(mono_s() - t0);
    return KB_OK;
}

/* A producer as @p ing was made with, in ing->producer and the readiness
 * probe; ing->producer stays NULL when Kafka cannot be reached. */
static kb_err_t producer_remake(kb_ingress_t *ing, char *errstr, size_t errstr_size)
{
    ing->producer = producer_new(&ing->opts, ing->batch_size, ing->txn_id, errstr, errstr_size);
    if (!ing->producer)
        return KB_ERR_KAFKA;
    kb_adapter_metrics_kafka(ing->producer);
    return KB_OK;
}

/* Replace a producer whose transaction could not be ended cleanly (fenced by
 * a newer instance with the same transactional.id, an abort that did not
 * complete, a commit whose outcome stayed unknown): what it still holds is
 * purged and its reports served. */
static void producer_drop(kb_ingress_t *ing, struct tracker *t)
{
    rd_kafka_purge(ing->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    while (t && t->pending > 0)
        rd_kafka_poll(ing->producer, 50);
    kb_adapter_metrics_kafka(NULL); /* waits for a probe using it */
    rd_kafka_destroy(ing->producer);
    /* A new one at once: its init_transactions aborts what the old one left
     * open (read_committed readers wait on it), and the readiness probe has
     * a producer again without waiting for the next send. If Kafka cannot
     * be reached now, txn_begin tries again. */
    char errstr[256];
    if (producer_remake(ing, errstr, sizeof errstr))
        KB_LOG_WARN(COMP, "transactional producer not made again yet", "error=\"%s\"", errstr);
}

/* Transactional ingress: make the producer again if one was dropped, and
 * begin a transaction. */
static kb_err_t txn_begin(kb_ingress_t *ing, char *errstr, size_t errstr_size)
{
    if (!ing->producer && producer_remake(ing, errstr, errstr_size))
        return KB_ERR_KAFKA;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(ing->producer);
    if (!e)
        return KB_OK;
    kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "transaction: %s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    producer_drop(ing, NULL);
    return KB_ERR_KAFKA;
}

/* Transactional ingress: the end of a send begun at @p t0 whose enqueueing
 * ended with @p err. Every acknowledgement is awaited first, here and not
 * in the commit (whose own wait, once a message failed, ran to its timeout
 * and then blocked the abort): the transaction is committed only when all
 * of them came back without error, and aborted otherwise, so that none of
 * the send's records becomes visible to a read_committed consumer. */
static kb_err_t txn_end(kb_ingress_t *ing, struct tracker *t, int64_t deadline, int timeout_ms,
                        double t0, kb_err_t err, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = ing->producer;
    if (!err) {
        /* Not past the first failure: the transaction cannot commit then,
         * and librdkafka sends nothing more of it, so the rest would only
         * be reported once the abort purges them. */
        while (t->pending > 0 && !t->first && kb_mono_ms() < deadline)
            rd_kafka_poll(rk, 50);
        if (t->pending > 0 && !t->first)
            err = kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size,
                             "no acknowledgement from Kafka within %d ms", timeout_ms);
        else if (t->first)
            err = kb_err_set(t->first == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? KB_ERR_RANGE
                                                                              : KB_ERR_KAFKA,
                             errstr, errstr_size, "Kafka refused: %s", rd_kafka_err2str(t->first));
    }
    char why[512];
    if (!err) {
        int64_t left = deadline - kb_mono_ms();
        rd_kafka_error_t *e = rd_kafka_commit_transaction(rk, left > 1000 ? (int)left : 1000);
        /* A commit that timed out is still going: calling it again resumes
         * it and learns the outcome (librdkafka's contract), where dropping
         * the producer would leave it unknown and the round sent twice. */
        for (int again = 0; e && rd_kafka_error_is_retriable(e) && again < 3; again++) {
            rd_kafka_error_destroy(e);
            e = rd_kafka_commit_transaction(rk, 10000);
        }
        if (!e) {
            kb_adapter_produce_observe(mono_s() - t0);
            return KB_OK;
        }
        err =
            rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TIMED_OUT ? KB_ERR_TIMEOUT : KB_ERR_KAFKA;
        snprintf(why, sizeof why, "commit: %s", rd_kafka_error_string(e));
        int abortable = rd_kafka_error_txn_requires_abort(e);
        rd_kafka_error_destroy(e);
        if (!abortable) {
            /* Fenced, or timed out with the outcome unknown: what is sent
             * again after this carries the same event ids. */
            producer_drop(ing, t);
            return kb_err_set(err, errstr, errstr_size, "%s; the transaction's outcome is unknown",
                              why);
        }
    } else {
        snprintf(why, sizeof why, "%s", errstr);
    }
    /* Abort. What is still queued or in flight is purged first and its
     * reports served here: the abort waits until no report is owed, and it
     * serves none itself (it ran into its timeout waiting for one). An
     * abort that does not complete all the same drops the producer; its
     * successor's init_transactions aborts the transaction. */
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    while (t->pending > 0)
        rd_kafka_poll(rk, 50);
    rd_kafka_error_t *a = rd_kafka_abort_transaction(rk, 30000);
    if (a) {
        KB_LOG_WARN(COMP, "transaction abort did not complete; producer made again", "error=\"%s\"",
                    rd_kafka_error_string(a));
        rd_kafka_error_destroy(a);
        producer_drop(ing, t);
    }
    return kb_err_set(err, errstr, errstr_size,
                      "%s; transaction aborted, none of its records is visible to "
                      "read_committed consumers",
                      why);
}

kb_err_t kb_ingress_send(kb_ingress_t *ing, struct kb_ingress_event *evs, size_t n,
                         int timeout_ms, char *errstr, size_t errstr_size)
{
    struct tracker t = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    /* kb_ingress_relearn() may have left no producer (see there) */
    if (!ing->producer && producer_remake(ing, errstr, errstr_size))
        return KB_ERR_KAFKA;
    /* The batch's ce_sequence numbers are taken, durably, before anything
     * is produced: a send that fails half-way (or times out while messages
     * are in flight) may still have put some of them in Kafka, and a number
     * must never be given to two events, not even after a restart. A retry
     * gets new numbers; gaps are allowed, reuse is not. */
    uint64_t seq = ing->sequence;
    char buf[32];
    int blen = snprintf(buf, sizeof buf, "%" PRIu64 "\n", seq + n);
    if (kb_file_write_atomic(ing->seq_path, buf, (size_t)blen) != KB_OK)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size,
                          "cannot persist the ce_sequence counter (errno %d); nothing sent",
                          errno);
    ing->sequence = seq + n;
    int txn = ing->txn_id[0] != '\0';
    if (txn && txn_begin(ing, errstr, errstr_size))
        return KB_ERR_KAFKA; /* nothing produced: the numbers taken are a gap */
    kb_err_t err = KB_OK;
    double t0 = mono_s();
    /* One deadline for enqueueing and acknowledgement together. */
    int64_t deadline = kb_mono_ms() + timeout_ms;
    for (size_t i = 0; i < n; i++) {
        evs[i].attrs.sequence = ++seq;
        struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
        char seqbuf[24];
        size_t nh = kb_event_headers(&evs[i].attrs, hdrs, seqbuf);
        rd_kafka_headers_t *kh = kb_kafka_headers_new(hdrs, nh);
        rd_kafka_resp_err_t rerr =
            produce(ing, ing->topic, evs[i].key, evs[i].value, evs[i].len, kh, &t, deadline);
        if (rerr) {
            rd_kafka_headers_destroy(kh);
            err = kb_err_set(rerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? KB_ERR_RANGE
                                                                          : KB_ERR_KAFKA,
                             errstr, errstr_size, "produce: %s", rd_kafka_err2str(rerr));
            break;
        }
        t.pending++;
    }
    err = txn ? txn_end(ing, &t, deadline, timeout_ms, t0, err, errstr, errstr_size)
              : settle(ing, &t, deadline, timeout_ms, t0, err, errstr, errstr_size);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++)
        kb_metrics_counter_add("kb_events_in_total", 1, ing->source, evs[i].attrs.type, NULL);
    return KB_OK;
}

/* Enqueue one quarantine record (see kb_ingress_quarantine) on @p t. */
static kb_err_t enqueue_refusal(kb_ingress_t *ing, const struct kb_ingress_refusal *r,
                                struct tracker *t, int64_t deadline, char *errstr,
                                size_t errstr_size)
{
    char sha[65], off[24], received[40];
    size_t len = r->len;
    kb_sha256_hex(r->raw, len, sha);
    snprintf(off, sizeof off, "%" PRId64, r->offset);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    kb_event_time((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, received);
    char omitted[24];
    snprintf(omitted, sizeof omitted, "%zu", len);
    struct kb_header hdrs[] = {
        {"kb_error", r->reason, strlen(r->reason)},
        {"kb_rule", r->rule, strlen(r->rule)},
        {"kb_offset", off, strlen(off)},
        {"kb_sha256", sha, 64},
        {"kb_received", received, strlen(received)},
        {"kb_raw_omitted", omitted, strlen(omitted)},
    };
    size_t nh = sizeof hdrs / sizeof hdrs[0];
    if (len > ing->quarantine_raw_max) {
        KB_LOG_WARN(COMP, "quarantined bytes too large for the topic; reason and hash only",
                    "bytes=%zu sha256=%s", len, sha);
        len = 0;
    } else {
        nh--; /* the bytes travel: no kb_raw_omitted */
    }
    rd_kafka_headers_t *kh = kb_kafka_headers_new(hdrs, nh);
    rd_kafka_resp_err_t rerr =
        produce(ing, ing->quarantine_topic, NULL, r->raw, len, kh, t, deadline);
    if (rerr) {
        rd_kafka_headers_destroy(kh);
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "produce: %s",
                          rd_kafka_err2str(rerr));
    }
    t->pending++;
    return KB_OK;
}

kb_err_t kb_ingress_quarantine_many(kb_ingress_t *ing, const struct kb_ingress_refusal *r,
                                    size_t n, int timeout_ms, char *errstr, size_t errstr_size)
{
    struct tracker t = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    if (!ing->producer && producer_remake(ing, errstr, errstr_size))
        return KB_ERR_KAFKA; /* as in kb_ingress_send */
    int txn = ing->txn_id[0] != '\0';
    if (txn && txn_begin(ing, errstr, errstr_size))
        return KB_ERR_KAFKA;
    double t0 = mono_s();
    /* One deadline for enqueueing and acknowledgement together, as for events
     * (after the begin, which may have made a producer again). */
    int64_t deadline = kb_mono_ms() + timeout_ms;
    kb_err_t err = KB_OK;
    for (size_t i = 0; i < n && !err; i++)
        err = enqueue_refusal(ing, &r[i], &t, deadline, errstr, errstr_size);
    err = txn ? txn_end(ing, &t, deadline, timeout_ms, t0, err, errstr, errstr_size)
              : settle(ing, &t, deadline, timeout_ms, t0, err, errstr, errstr_size);
    if (err)
        return err;
    kb_metrics_counter_add("kb_quarantined_total", (double)n, ing->source, NULL);
    return KB_OK;
}

kb_err_t kb_ingress_quarantine(kb_ingress_t *ing, const void *raw, size_t len, const char *rule,
                               const char *reason, int64_t offset, int timeout_ms,
                               char *errstr, size_t errstr_size)
{
    struct kb_ingress_refusal r = {raw, len, rule, reason, offset};
    return kb_ingress_quarantine_many(ing, &r, 1, timeout_ms, errstr, errstr_size);
}
