/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * audit_read.c - the reader side of the audit trail: scanning the audit
 * topic, filtering records (the access report, and what replay will need),
 * and the streaming verifier that proves every chain complete and unaltered
 * and every checkpoint signed by a trusted key (see ketenbus/audit.h).
 *
 * The verifier keeps per chain only its head (sequence, hash) and the gaps
 * still open, so memory does not grow with the trail. Its classification:
 *  - a record whose bytes do not hash to its recordHash, whose prevHash is
 *    not the previous record's hash, or that sits under another chain's
 *    key: ALTERED;
 *  - a sequence jump: MISSING, turned into REORDERED when a record of the
 *    gap shows up later; a sequence at or below the head outside any gap:
 *    REORDERED (out of order or duplicated);
 *  - a checkpoint that does not verify with a trusted key: BAD_SIGNATURE;
 *    one that signs a different head hash than the chain has at that point
 *    (a chain altered and re-hashed): ALTERED.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit_int.h"
#include "ketenbus/log.h"

/* ---- scanning ------------------------------------------------------------ */

#define SCAN_BATCH 1000 /* messages taken off the consumer queue at once */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

kb_err_t kb_audit_scan(const struct kb_kafka_opts *kafka, const char *topic, int64_t from_ms,
                       int64_t to_ms, kb_audit_scan_cb cb, void *opaque, char *errstr,
                       size_t errstr_size)
{
    char tbuf[256], rerr[512];
    if (!topic) {
        kb_topic_name(tbuf, sizeof tbuf, "audit");
        topic = tbuf;
    }
    rd_kafka_conf_t *conf = kb_kafka_conf_new(kafka, errstr, errstr_size);
    if (!conf)
        return KB_ERR_CONF;
    if (rd_kafka_conf_set(conf, "group.id", "ketenbus-audit-scan", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "fetch.max.bytes", "52428800", rerr, sizeof rerr) ||
        /* Prefetch deeply (bounded by the kbytes limit below): the scan
         * reads everything, and the verifier should never wait for a fetch.
         * Larger per-partition fetches (4, 16 MB) measured no faster. */
        rd_kafka_conf_set(conf, "queued.min.messages", "1000000", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "262144", rerr, sizeof rerr)) {
        rd_kafka_conf_destroy(conf);
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "audit scan: %s", rerr);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rerr, sizeof rerr);
    if (!rk)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "audit scan: %s", rerr);
    kb_err_t err = KB_OK;
    int64_t *end = NULL;
    int *done = NULL;
    rd_kafka_topic_partition_list_t *tp = NULL;
    rd_kafka_queue_t *rkq = NULL;
    rd_kafka_message_t *batch[SCAN_BATCH];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t merr = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (merr || md->topic_cnt != 1 || md->topics[0].err) {
        err = kb_err_set(KB_ERR_NOTFOUND, errstr, errstr_size, "topic %s: %s", topic,
                         merr ? rd_kafka_err2str(merr)
                              : rd_kafka_err2str(md->topics[0].err));
        goto out_destroy;
    }
    int np = md->topics[0].partition_cnt;
    end = calloc((size_t)np + 1, sizeof *end);
    done = calloc((size_t)np + 1, sizeof *done);
    tp = rd_kafka_topic_partition_list_new(np);
    if (!end || !done || !tp) {
        err = KB_ERR_NOMEM;
        goto out_destroy;
    }
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(tp, topic, md->topics[0].partitions[p].id)->offset =
            from_ms;
    if (from_ms > 0) {
        rd_kafka_resp_err_t oerr = rd_kafka_offsets_for_times(rk, tp, 10000);
        if (oerr) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "offsets for time: %s",
                             rd_kafka_err2str(oerr));
            goto out_destroy;
        }
    }
    int left = 0;
    for (int i = 0; i < tp->cnt; i++) {
        rd_kafka_topic_partition_t *p = &tp->elems[i];
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t werr;
        for (int tries = 0; (werr = rd_kafka_query_watermark_offsets(rk, topic, p->partition,
                                                                     &lo, &hi, 10000)) &&
                            tries < 40;
             tries++)
            usleep(250000); /* a new topic's leader may still be elected */
        if (werr) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "watermarks: %s",
                             rd_kafka_err2str(werr));
            goto out_destroy;
        }
        if (from_ms <= 0)
            p->offset = lo;
        if (p->partition >= 0 && p->partition <= np)
            end[p->partition] = hi;
        /* offset -1 after offsets_for_times: nothing at or after from_ms. */
        if (p->offset < 0 || p->offset >= hi || lo == hi)
            done[p->partition] = 1;
        else
            left++;
    }
    if (left && (merr = rd_kafka_assign(rk, tp))) {
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "assign: %s",
                         rd_kafka_err2str(merr));
        goto out_destroy;
    }
    /* Messages come a batch at a time off the consumer queue: one lock and
     * one clock read per batch rather than per message (a scan of the
     * whole trail handles millions). */
    rkq = rd_kafka_queue_get_consumer(rk);
    if (!rkq) {
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "audit scan: no consumer queue");
        goto out_destroy;
    }
    int64_t idle_since = mono_ms();
    while (left) {
        ssize_t n = rd_kafka_consume_batch_queue(rkq, 500, batch, SCAN_BATCH);
        if (n < 0) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "reading %s: %s", topic,
                             rd_kafka_err2str(rd_kafka_last_error()));
            break;
        }
        if (n == 0) {
            if (mono_ms() - idle_since > 60000) {
                err = kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size,
                                 "no data from %s for 60 s", topic);
                break;
            }
            continue;
        }
        idle_since = mono_ms();
        int stop = 0;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            int32_t p = m->partition;
            if (stop || err || p < 0 || p > np || done[p]) {
                /* after a stop or error: only release the rest of the batch */
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                done[p] = 1;
                left--;
            } else if (m->err) {
                err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "reading %s: %s", topic,
                                 rd_kafka_message_errstr(m));
            } else {
                int64_t ts = rd_kafka_message_timestamp(m, NULL);
                if (to_ms > 0 && ts > to_ms) {
                    done[p] = 1;
                    left--;
                } else if (cb(opaque, p, m->offset, ts, m->key, m->key_len, m->payload,
                              m->len)) {
                    stop = 1;
                } else if (m->offset + 1 >= end[p]) {
                    done[p] = 1;
                    left--;
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (stop || err)
            break;
    }
out_destroy:
    if (rkq)
        rd_kafka_queue_destroy(rkq);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (tp)
        rd_kafka_topic_partition_list_destroy(tp);
    free(end);
    free(done);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return err;
}

static int str_eq(struct kb_audit_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && !memcmp(s.ptr, c, n);
}

int kb_audit_filter_match(const struct kb_audit_filter *f, const struct kb_audit_record *rec)
{
    if (f->subject && !str_eq(rec->subject, f->subject))
        return 0;
    if (f->event_type && !str_eq(rec->event_type, f->event_type))
        return 0;
    if (f->outcome >= 0 && rec->outcome != f->outcome)
        return 0;
    if (f->from_ms > 0 && rec->recorded_at < f->from_ms)
        return 0;
    if (f->to_ms > 0 && rec->recorded_at > f->to_ms)
        return 0;
    if (f->subscriber) {
        struct kb_audit_iter it;
        struct kb_audit_rcpt_view rv;
        kb_audit_rcpt_iter(rec, &it);
        while (kb_audit_rcpt_next(&it, &rv))
            if (str_eq(rv.subscriber, f->subscriber))
                return 1;
        return 0;
    }
    return 1;
}

struct query_ctx {
    const struct kb_audit_filter *f;
    kb_audit_query_cb cb;
    void *opaque;
};

static int query_one(void *opaque, int32_t partition, int64_t offset, int64_t ts,
                     const void *key, size_t key_len, const void *value, size_t len)
{
    struct query_ctx *q = opaque;
    struct kb_audit_record rec;
    if (kb_audit_kind(value, len) != KB_AUDIT_RECORD_SCHEMA_ID ||
        kb_audit_decode_record(value, len, &rec, NULL, 0))
        return 0; /* checkpoints and damaged messages: verify reports those */
    if (!kb_audit_filter_match(q->f, &rec))
        return 0;
    return q->cb(q->opaque, &rec, partition, offset);
}

kb_err_t kb_audit_query(const struct kb_kafka_opts *kafka, const char *topic,
                        const struct kb_audit_filter *f, kb_audit_query_cb cb, void *opaque,
                        char *errstr, size_t errstr_size)
{
    struct query_ctx q = {f, cb, opaque};
    /* The Kafka timestamp is set when the router produced the record, so it
     * bounds recordedAt up to clock skew: widen by a minute, filter exactly. */
    int64_t from = f->from_ms > 60000 ? f->from_ms - 60000 : 0;
    int64_t to = f->to_ms > 0 ? f->to_ms + 60000 : 0;
    return kb_audit_scan(kafka, topic, from, to, query_one, &q, errstr, errstr_size);
}

/* ---- verifier ------------------------------------------------------------ */

struct gap {
    uint64_t lo, hi;  /* missing sequence range */
    size_t problem;   /* index of its problem (MISSING until resolved) */
    int resolved;
};

struct vchain {
    struct kb_audit_chain_summary sum;
    char *topic;                 /* the records' inputTopic bytes as read (owned) */
    size_t topic_len;
    uint32_t hash;               /* chain_hash(topic, partition) */
    size_t key_len;
    int started;
    uint64_t head_seq;
    uint8_t head[KB_AUDIT_HASH_LEN];
    struct gap *gaps;
    size_t n_gaps;
};

struct trusted_key {
    EVP_PKEY *pkey;
    char id[17];
};

struct kb_audit_verifier {
    struct kb_audit_verify_opts opts;
    struct trusted_key *keys;
    size_t n_keys;
    struct vchain **chains;
    size_t n_chains;
    struct vchain **index;       /* open addressing on vchain.hash; n_index a power of two */
    size_t n_index;
    struct vchain *last;         /* the chain of the previous message (fast path) */
    struct kb_audit_problem *problems;
    size_t n_problems, cap_problems;
    struct kb_audit_chain_summary *sums; /* snapshot for kb_audit_verifier_chains */
    uint64_t messages, records, checkpoints;
    int nomem;
};

kb_audit_verifier_t *kb_audit_verifier_new(const struct kb_audit_verify_opts *opts,
                                           char *errstr, size_t errstr_size)
{
    kb_audit_verifier_t *v = calloc(1, sizeof *v);
    if (!v) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    v->opts = *opts;
    if (opts->n_public_keys) {
        v->keys = calloc(opts->n_public_keys, sizeof *v->keys);
        if (!v->keys) {
            kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto out_fail;
        }
    }
    for (size_t i = 0; i < opts->n_public_keys; i++) {
        EVP_PKEY *k = kb__audit_load_public(opts->public_key_files[i], errstr, errstr_size);
        if (!k)
            goto out_fail;
        v->keys[v->n_keys].pkey = k;
        kb__audit_key_id(k, v->keys[v->n_keys].id);
        v->n_keys++;
    }
    return v;
out_fail:
    kb_audit_verifier_destroy(v);
    return NULL;
}

void kb_audit_verifier_destroy(kb_audit_verifier_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n_keys; i++)
        EVP_PKEY_free(v->keys[i].pkey);
    free(v->keys);
    for (size_t i = 0; i < v->n_chains; i++) {
        free(v->chains[i]->gaps);
        free(v->chains[i]->topic);
        free(v->chains[i]);
    }
    free(v->chains);
    free(v->index);
    free(v->problems);
    free(v->sums);
    free(v);
}

/* Printable copy of a key or chain name for a report (bytes outside
 * printable ASCII become '?'). */
static void printable(char *out, size_t out_size, const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < out_size; i++)
        out[k++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    out[k] = '\0';
}

static struct kb_audit_problem *problem(kb_audit_verifier_t *v, int kind, int32_t partition,
                                        int64_t offset, const char *chain, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static struct kb_audit_problem *problem(kb_audit_verifier_t *v, int kind, int32_t partition,
                                        int64_t offset, const char *chain, const char *fmt, ...)
{
    if (v->n_problems == v->cap_problems) {
        size_t ncap = v->cap_problems ? v->cap_problems * 2 : 16;
        struct kb_audit_problem *np = realloc(v->problems, ncap * sizeof *np);
        if (!np) {
            v->nomem = 1;
            return NULL;
        }
        v->problems = np;
        v->cap_problems = ncap;
    }
    struct kb_audit_problem *pr = &v->problems[v->n_problems++];
    pr->kind = kind;
    pr->partition = partition;
    pr->offset = offset;
    snprintf(pr->chain, sizeof pr->chain, "%s", chain ? chain : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pr->what, sizeof pr->what, fmt, ap);
    va_end(ap);
    return pr;
}

/* FNV-1a over the topic bytes, mixed with the partition. */
static uint32_t chain_hash(struct kb_audit_str topic, int32_t partition)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < topic.len; i++)
        h = (h ^ (uint8_t)topic.ptr[i]) * 16777619u;
    h ^= (uint32_t)partition * 0x9e3779b1u;
    return h ^ (h >> 16);
}

static int vchain_is(const struct vchain *c, uint32_t h, struct kb_audit_str topic,
                     int32_t partition)
{
    return c->hash == h && c->sum.input_partition == partition && c->topic_len == topic.len &&
           !memcmp(c->topic, topic.ptr, topic.len);
}

/* Put @p c into the index, growing it to keep the load at most one half. */
static int vchain_index(kb_audit_verifier_t *v, struct vchain *c)
{
    if (2 * (v->n_chains + 1) > v->n_index) {
        size_t n = v->n_index ? v->n_index * 2 : 64;
        struct vchain **ni = calloc(n, sizeof *ni);
        if (!ni)
            return -1;
        for (size_t i = 0; i < v->n_chains; i++) {
            size_t j = v->chains[i]->hash & (n - 1);
            while (ni[j])
                j = (j + 1) & (n - 1);
            ni[j] = v->chains[i];
        }
        free(v->index);
        v->index = ni;
        v->n_index = n;
    }
    size_t j = c->hash & (v->n_index - 1);
    while (v->index[j])
        j = (j + 1) & (v->n_index - 1);
    v->index[j] = c;
    return 0;
}

/* The chain of (topic, partition), created on first sight. Looked up by the
 * raw topic bytes and a hash: no formatting per record (this runs for every
 * record of the trail). */
static struct vchain *vchain_get(kb_audit_verifier_t *v, struct kb_audit_str topic,
                                 int32_t partition)
{
    uint32_t h = chain_hash(topic, partition);
    if (v->last && vchain_is(v->last, h, topic, partition))
        return v->last;
    for (size_t j = v->n_index ? h & (v->n_index - 1) : 0; v->n_index && v->index[j];
         j = (j + 1) & (v->n_index - 1))
        if (vchain_is(v->index[j], h, topic, partition))
            return v->last = v->index[j];
    char tname[256];
    printable(tname, sizeof tname, topic.ptr, topic.len);
    struct vchain **nc = realloc(v->chains, (v->n_chains + 1) * sizeof *nc);
    if (!nc)
        return NULL;
    v->chains = nc;
    struct vchain *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->topic = malloc(topic.len ? topic.len : 1);
    if (!c->topic) {
        free(c);
        return NULL;
    }
    memcpy(c->topic, topic.ptr, topic.len);
    c->topic_len = topic.len;
    c->hash = h;
    if (vchain_index(v, c)) {
        free(c->topic);
        free(c);
        return NULL;
    }
    int kl = snprintf(c->sum.chain, sizeof c->sum.chain, "%s/%" PRId32, tname, partition);
    c->key_len = kl < 0 ? 0 : (size_t)kl >= sizeof c->sum.chain ? sizeof c->sum.chain - 1 : (size_t)kl;
    snprintf(c->sum.input_topic, sizeof c->sum.input_topic, "%s", tname);
    c->sum.input_partition = partition;
    c->sum.min_input_offset = INT64_MAX;
    c->sum.max_input_offset = -1;
    c->sum.input_low = v->opts.input_low ? v->opts.input_low(v->opts.opaque, tname, partition)
                                         : -1;
    v->chains[v->n_chains++] = c;
    return v->last = c;
}

static const uint8_t zero_hash[KB_AUDIT_HASH_LEN];

static void feed_record(kb_audit_verifier_t *v, int32_t partition, int64_t offset,
                        const void *key, size_t key_len, const void *value, size_t len)
{
    struct kb_audit_record rec;
    char why[160];
    if (kb_audit_decode_record(value, len, &rec, why, sizeof why)) {
        char k[KB_AUDIT_KEY_MAX];
        printable(k, sizeof k, key, key_len);
        problem(v, KB_AUDIT_ALTERED, partition, offset, k, "record undecodable: %s", why);
        return;
    }
    v->records++;
    struct vchain *c = vchain_get(v, rec.input_topic, rec.input_partition);
    if (!c) {
        v->nomem = 1;
        return;
    }
    const char *name = c->sum.chain;
    if (key_len != c->key_len || memcmp(key, name, key_len)) {
        char k[KB_AUDIT_KEY_MAX];
        printable(k, sizeof k, key, key_len);
        problem(v, KB_AUDIT_ALTERED, partition, offset, name,
                "record seq %" PRIu64 " of chain %s stored under key \"%s\"", rec.sequence, name,
                k);
    }
    if (!kb_audit_record_hash_ok(value, len))
        problem(v, KB_AUDIT_ALTERED, partition, offset, name,
                "record seq %" PRIu64 ": content does not match its recordHash", rec.sequence);
    c->sum.records++;
    if (rec.input_offset < c->sum.min_input_offset)
        c->sum.min_input_offset = rec.input_offset;
    if (rec.input_offset > c->sum.max_input_offset)
        c->sum.max_input_offset = rec.input_offset;
    if (c->sum.input_low >= 0 && rec.input_offset < c->sum.input_low)
        c->sum.gone++;
    else if (c->sum.input_low == -2)
        c->sum.gone++;

    if (!c->started) {
        c->started = 1;
        c->sum.first_seq = rec.sequence;
        if (v->opts.from_start && rec.sequence != 0)
            problem(v, KB_AUDIT_MISSING, partition, offset, name,
                    "chain starts at seq %" PRIu64 ": seq 0..%" PRIu64 " missing", rec.sequence,
                    rec.sequence - 1);
        else if (rec.sequence == 0 && memcmp(rec.prev_hash, zero_hash, KB_AUDIT_HASH_LEN))
            problem(v, KB_AUDIT_ALTERED, partition, offset, name,
                    "record seq 0 has a non-zero prevHash");
    } else if (rec.sequence == c->head_seq + 1) {
        if (memcmp(rec.prev_hash, c->head, KB_AUDIT_HASH_LEN))
            problem(v, KB_AUDIT_ALTERED, partition, offset, name,
                    "record seq %" PRIu64 ": prevHash is not the hash of seq %" PRIu64
                    " (a record was altered or forged)",
                    rec.sequence, c->head_seq);
    } else if (rec.sequence > c->head_seq + 1) {
        struct gap *ng = realloc(c->gaps, (c->n_gaps + 1) * sizeof *ng);
        if (ng)
            c->gaps = ng;
        struct kb_audit_problem *pr =
            problem(v, KB_AUDIT_MISSING, partition, offset, name,
                    "seq %" PRIu64 "..%" PRIu64 " missing before this record (seq %" PRIu64 ")",
                    c->head_seq + 1, rec.sequence - 1, rec.sequence);
        if (!ng || !pr) {
            v->nomem = 1;
        } else {
            ng[c->n_gaps].lo = c->head_seq + 1;
            ng[c->n_gaps].hi = rec.sequence - 1;
            ng[c->n_gaps].problem = v->n_problems - 1;
            ng[c->n_gaps].resolved = 0;
            c->n_gaps++;
        }
    } else {
        /* At or below the head: a record that belongs earlier. */
        struct gap *g = NULL;
        for (size_t i = 0; i < c->n_gaps && !g; i++)
            if (rec.sequence >= c->gaps[i].lo && rec.sequence <= c->gaps[i].hi)
                g = &c->gaps[i];
        if (g && !g->resolved) {
            struct kb_audit_problem *pr = &v->problems[g->problem];
            pr->kind = KB_AUDIT_REORDERED;
            snprintf(pr->what, sizeof pr->what,
                     "records out of order: seq %" PRIu64 " (at offset %" PRId64
                     ") stands after a later record (seq %" PRIu64 " onwards)",
                     rec.sequence, offset, g->hi + 1);
            g->resolved = 1;
        } else if (!g) {
            problem(v, KB_AUDIT_REORDERED, partition, offset, name,
                    "record seq %" PRIu64 " after seq %" PRIu64 " (duplicated or out of order)",
                    rec.sequence, c->head_seq);
        }
        return; /* the head stays where it is */
    }
    c->head_seq = rec.sequence;
    memcpy(c->head, rec.record_hash, KB_AUDIT_HASH_LEN);
    c->sum.last_seq = rec.sequence;
    c->sum.unsigned_tail++;
}

static void feed_checkpoint(kb_audit_verifier_t *v, int32_t partition, int64_t offset,
                            const void *key, size_t key_len, const void *value, size_t len)
{
    struct kb_audit_checkpoint cp;
    char why[160];
    char k[KB_AUDIT_KEY_MAX];
    printable(k, sizeof k, key, key_len);
    if (kb_audit_decode_checkpoint(value, len, &cp, why, sizeof why)) {
        problem(v, KB_AUDIT_ALTERED, partition, offset, k, "checkpoint undecodable: %s", why);
        return;
    }
    struct vchain *c = vchain_get(v, cp.input_topic, cp.input_partition);
    if (!c) {
        v->nomem = 1;
        return;
    }
    const char *name = c->sum.chain;
    char kid[20];
    printable(kid, sizeof kid, cp.key_id.ptr, cp.key_id.len);
    const struct trusted_key *tk = NULL;
    for (size_t i = 0; i < v->n_keys && !tk; i++)
        if (!strcmp(v->keys[i].id, kid))
            tk = &v->keys[i];
    if (!tk) {
        problem(v, KB_AUDIT_BAD_SIGNATURE, partition, offset, name,
                "checkpoint of seq %" PRIu64 " signed by key id %s, which is not trusted",
                cp.sequence, kid);
        return;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, tk->pkey) == 1 &&
             EVP_DigestVerify(md, cp.signature, KB_AUDIT_SIG_LEN, value, cp.signed_len) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
        problem(v, KB_AUDIT_BAD_SIGNATURE, partition, offset, name,
                "checkpoint of seq %" PRIu64 ": signature does not verify with key %s",
                cp.sequence, kid);
        return;
    }
    if (key_len != c->key_len || memcmp(key, name, key_len))
        problem(v, KB_AUDIT_ALTERED, partition, offset, name,
                "checkpoint of chain %s stored under key \"%s\"", name, k);
    if (!c->started) {
        if (v->opts.from_start)
            problem(v, KB_AUDIT_MISSING, partition, offset, name,
                    "checkpoint of seq %" PRIu64 " but no record of the chain before it",
                    cp.sequence);
        return;
    }
    if (cp.sequence > c->head_seq) {
        problem(v, KB_AUDIT_MISSING, partition, offset, name,
                "checkpoint covers seq %" PRIu64 " but the chain ends at seq %" PRIu64,
                cp.sequence, c->head_seq);
    } else if (cp.sequence < c->head_seq) {
        problem(v, KB_AUDIT_REORDERED, partition, offset, name,
                "checkpoint of seq %" PRIu64 " stands after seq %" PRIu64, cp.sequence,
                c->head_seq);
    } else if (memcmp(cp.head_hash, c->head, KB_AUDIT_HASH_LEN)) {
        problem(v, KB_AUDIT_ALTERED, partition, offset, name,
                "checkpoint signs another hash for seq %" PRIu64
                ": records up to it were altered (and re-hashed)",
                cp.sequence);
    } else {
        c->sum.checkpoints++;
        c->sum.unsigned_tail = 0;
        v->checkpoints++;
    }
}

kb_err_t kb_audit_verifier_feed(kb_audit_verifier_t *v, int32_t partition, int64_t offset,
                                const void *key, size_t key_len, const void *value, size_t len)
{
    v->messages++;
    if (!key)
        key_len = 0;
    int32_t kind = kb_audit_kind(value, len);
    if (kind == KB_AUDIT_RECORD_SCHEMA_ID) {
        feed_record(v, partition, offset, key, key_len, value, len);
    } else if (kind == KB_AUDIT_CHECKPOINT_SCHEMA_ID) {
        feed_checkpoint(v, partition, offset, key, key_len, value, len);
    } else {
        char k[KB_AUDIT_KEY_MAX];
        printable(k, sizeof k, key, key_len);
        problem(v, KB_AUDIT_ALTERED, partition, offset, k,
                "not an audit record or checkpoint (framing/schema id)");
    }
    return v->nomem ? KB_ERR_NOMEM : KB_OK;
}

void kb_audit_verifier_finish(kb_audit_verifier_t *v)
{
    free(v->sums);
    v->sums = calloc(v->n_chains ? v->n_chains : 1, sizeof *v->sums);
    if (!v->sums) {
        v->nomem = 1;
        return;
    }
    for (size_t i = 0; i < v->n_chains; i++)
        v->sums[i] = v->chains[i]->sum;
}

const struct kb_audit_problem *kb_audit_verifier_problems(const kb_audit_verifier_t *v,
                                                          size_t *n)
{
    *n = v->n_problems;
    return v->problems;
}

const struct kb_audit_chain_summary *kb_audit_verifier_chains(const kb_audit_verifier_t *v,
                                                              size_t *n)
{
    *n = v->sums ? v->n_chains : 0;
    return v->sums;
}

void kb_audit_verifier_counts(const kb_audit_verifier_t *v, uint64_t *messages,
                              uint64_t *records, uint64_t *checkpoints)
{
    if (messages)
        *messages = v->messages;
    if (records)
        *records = v->records;
    if (checkpoints)
        *checkpoints = v->checkpoints;
}

int64_t kb_audit_input_low_of(rd_kafka_t *rk, const char *topic, int32_t partition)
{
    char replay_chain[200];
    kb_topic_name(replay_chain, sizeof replay_chain, "replay"); /* kb_replay_chain_topic */
    if (!strcmp(topic, replay_chain))
        return -1;
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi,
                                                             10000);
    if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return -2;
    return e ? -1 : lo;
}

int kb_audit_topic_from_start(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int ok = 0;
    if (!rd_kafka_metadata(rk, 0, rkt, &md, 10000)) {
        ok = md->topic_cnt == 1 && !md->topics[0].err;
        for (int p = 0; ok && p < md->topics[0].partition_cnt; p++) {
            int64_t lo = -1, hi = -1;
            ok = !rd_kafka_query_watermark_offsets(rk, topic, md->topics[0].partitions[p].id,
                                                   &lo, &hi, 10000) &&
                 lo == 0;
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return ok;
}
