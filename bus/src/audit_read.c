/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * audit_read.c - the reader side of the audit trail: scanning the audit
 * topic (one consumer, or one per reader thread), filtering records (the
 * access report, and what replay will need), and the streaming verifier that
 * proves every chain complete and unaltered and every checkpoint signed by a
 * trusted key (see ketenbus/audit.h).
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
 *
 * Invariants of the verifier: a chain lives in the lane of the audit
 * partition it was read from (a key's messages all go to one partition, so
 * a genuine chain has one lane); a lane is fed by one thread at a time, in
 * offset order, and touches nothing of another lane; the one shared thing
 * that changes, the problem list, is appended under a mutex and put in
 * (partition, order within the partition) order by kb_audit_verifier_finish,
 * so the report does not depend on how partitions interleaved or on threads.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit_int.h"
#include "ketenbus/clock.h"
#include "ketenbus/event.h"
#include "ketenbus/log.h"

/* ---- scanning ------------------------------------------------------------ */

#define SCAN_BATCH 1000       /* messages taken off the consumer queue at once */
#define SCAN_IDLE_MS 60000    /* a reader that gets nothing for this long gives up */
/* rd_kafka_consume_batch_queue() returns when it has SCAN_BATCH messages or
 * when this much time has passed: the last, partial batch of a partition
 * always waits the full time, so keep it short (500 ms here cost every scan
 * half a second: a 30,000-record verify took 0.54 s instead of 0.06 s). */
#define SCAN_WAIT_MS 10

/* A consumer for reading the audit topic from end to end. */
static rd_kafka_t *scan_consumer(const struct kb_kafka_opts *kafka, char *errstr,
                                 size_t errstr_size)
{
    char rerr[512];
    rd_kafka_conf_t *conf = kb_kafka_conf_new(kafka, errstr, errstr_size);
    if (!conf)
        return NULL;
    if (rd_kafka_conf_set(conf, "group.id", "ketenbus-audit-scan", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "fetch.max.bytes", "52428800", rerr, sizeof rerr) ||
        /* Prefetch deeply (bounded by the kbytes limit below): the scan
         * reads everything, and the reader should never wait for a fetch.
         * librdkafka 2.0 leaves a partition whose queue is over these limits
         * unfetched until its fetch thread wakes up again (up to a second):
         * 16-32 MB measured no faster, and up to 2x slower when the verifier
         * falls behind. Larger per-partition fetches (4, 8, 16 MB) measured
         * no faster than the default 1 MB. */
        rd_kafka_conf_set(conf, "queued.min.messages", "1000000", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "262144", rerr, sizeof rerr)) {
        rd_kafka_conf_destroy(conf);
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "audit scan: %s", rerr);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rerr, sizeof rerr);
    if (!rk)
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "audit scan: %s", rerr);
    return rk;
}

struct scan;

/* One reader: its own consumer (so its own broker connection and fetch
 * thread) over its share of the partitions, on its own thread. */
struct scan_reader {
    struct scan *s;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts; /* at their start offsets */
    uint64_t load;                          /* messages to read */
    pthread_t thread;
    int started;
    kb_err_t err;
    char errstr[512];
};

struct scan {
    const char *topic;
    int64_t to_ms;
    int np;                 /* partition count; end[] and done[] are indexed by partition */
    int64_t *end;           /* high watermark when the scan started */
    char *done;             /* each element written by the one reader of that partition */
    kb_audit_scan_cb cb;
    void *opaque;
    atomic_int stop;        /* a callback asked to stop or a reader failed: all stop */
};

/* Read the reader's partitions to their end (or to_ms), calling cb per
 * message. Messages come a batch at a time off the consumer queue: one lock
 * and one clock read per batch rather than per message. */
static void scan_read(struct scan_reader *r)
{
    struct scan *s = r->s;
    rd_kafka_message_t *batch[SCAN_BATCH];
    int left = r->parts->cnt;
    rd_kafka_resp_err_t aerr = rd_kafka_assign(r->rk, r->parts);
    if (aerr) {
        r->err = kb_err_set(KB_ERR_KAFKA, r->errstr, sizeof r->errstr, "assign: %s",
                            rd_kafka_err2str(aerr));
        atomic_store(&s->stop, 1);
        return;
    }
    rd_kafka_queue_t *rkq = rd_kafka_queue_get_consumer(r->rk);
    if (!rkq) {
        r->err = kb_err_set(KB_ERR_KAFKA, r->errstr, sizeof r->errstr,
                            "audit scan: no consumer queue");
        atomic_store(&s->stop, 1);
        return;
    }
    int64_t idle_since = kb_mono_ms();
    while (left && !atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        ssize_t n = rd_kafka_consume_batch_queue(rkq, SCAN_WAIT_MS, batch, SCAN_BATCH);
        if (n < 0) {
            r->err = kb_err_set(KB_ERR_KAFKA, r->errstr, sizeof r->errstr, "reading %s: %s",
                                s->topic, rd_kafka_err2str(rd_kafka_last_error()));
            break;
        }
        if (n == 0) {
            if (kb_mono_ms() - idle_since > SCAN_IDLE_MS) {
                r->err = kb_err_set(KB_ERR_TIMEOUT, r->errstr, sizeof r->errstr,
                                    "no data from %s for 60 s", s->topic);
                break;
            }
            continue;
        }
        idle_since = kb_mono_ms();
        int stop = 0;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            int32_t p = m->partition;
            if (stop || r->err || p < 0 || p > s->np || s->done[p]) {
                /* after a stop or error: only release the rest of the batch */
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                s->done[p] = 1;
                left--;
            } else if (m->err) {
                r->err = kb_err_set(KB_ERR_KAFKA, r->errstr, sizeof r->errstr,
                                    "reading %s: %s", s->topic, rd_kafka_message_errstr(m));
            } else {
                int64_t ts = rd_kafka_message_timestamp(m, NULL);
                if (s->to_ms > 0 && ts > s->to_ms) {
                    s->done[p] = 1;
                    left--;
                } else if (s->cb(s->opaque, p, m->offset, ts, m->key, m->key_len, m->payload,
                                 m->len)) {
                    stop = 1;
                } else if (m->offset + 1 >= s->end[p]) {
                    s->done[p] = 1;
                    left--;
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (stop || r->err)
            break;
    }
    if (r->err || left)
        atomic_store(&s->stop, 1); /* failed, or stopped by a callback: the others stop too */
    rd_kafka_queue_destroy(rkq);
}

static void *scan_thread(void *opaque)
{
    scan_read(opaque);
    return NULL;
}

/* Called once the partitions are known, before any cb: lets the verifier
 * set up what its reader threads will use, and learn where each partition
 * starts (@p low[p]: its low watermark). Non-zero fails the scan. */
typedef kb_err_t (*scan_prepare_fn)(void *opaque, int32_t n_partitions, const int64_t *low);

/*
 * The scan behind kb_audit_scan and kb_audit_scan_parallel: one planning
 * consumer learns the partitions, their start offsets (from_ms) and ends;
 * the partitions with something to read are dealt to up to @p threads
 * readers, largest first to the least loaded, so the split only depends on
 * the message counts. Reader 0 is the planning consumer on the calling
 * thread; the others get their own consumer and thread.
 */
static kb_err_t scan_topic(const struct kb_kafka_opts *kafka, const char *topic,
                           int64_t from_ms, int64_t to_ms, int threads, scan_prepare_fn prepare,
                           kb_audit_scan_cb cb, void *opaque, char *errstr, size_t errstr_size)
{
    char tbuf[256];
    if (!topic) {
        kb_topic_name(tbuf, sizeof tbuf, "audit");
        topic = tbuf;
    }
    rd_kafka_t *rk = scan_consumer(kafka, errstr, errstr_size);
    if (!rk)
        return KB_ERR_KAFKA;
    kb_err_t err = KB_OK;
    struct scan s = {.topic = topic, .to_ms = to_ms, .cb = cb, .opaque = opaque};
    atomic_init(&s.stop, 0);
    struct scan_reader *readers = NULL;
    int n_readers = 0;
    char *dealt = NULL;
    int64_t *low = NULL; /* low watermark by partition, for prepare */
    rd_kafka_topic_partition_list_t *tp = NULL;
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
    int np = s.np = md->topics[0].partition_cnt;
    s.end = calloc((size_t)np + 1, sizeof *s.end);
    s.done = calloc((size_t)np + 1, sizeof *s.done);
    low = calloc((size_t)np + 1, sizeof *low);
    tp = rd_kafka_topic_partition_list_new(np);
    if (!s.end || !s.done || !low || !tp) {
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
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
    int active = 0;
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
            /* Fail closed: without the low watermark nobody can tell
             * whether the partition's head was deleted. */
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                             "cannot read the watermarks of %s [%" PRId32 "]: %s", topic,
                             p->partition, rd_kafka_err2str(werr));
            goto out_destroy;
        }
        if (from_ms <= 0)
            p->offset = lo;
        if (p->partition < 0 || p->partition > np)
            continue;
        s.end[p->partition] = hi;
        low[p->partition] = lo;
        /* offset -1 after offsets_for_times: nothing at or after from_ms. */
        if (p->offset < 0 || p->offset >= hi || lo == hi)
            s.done[p->partition] = 1;
        else
            active++;
    }
    if (prepare && (err = prepare(opaque, np, low))) {
        kb_err_set(err, errstr, errstr_size, "audit scan: %s", kb_err_str(err));
        goto out_destroy;
    }
    if (!active)
        goto out_destroy;
    n_readers = threads < 1 ? 1 : threads > active ? active : threads;
    readers = calloc((size_t)n_readers, sizeof *readers);
    dealt = calloc((size_t)tp->cnt, 1);
    if (!readers || !dealt) {
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_destroy;
    }
    for (int r = 0; r < n_readers; r++) {
        readers[r].s = &s;
        readers[r].parts = rd_kafka_topic_partition_list_new(active);
        if (!readers[r].parts) {
            err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto out_destroy;
        }
    }
    /* Largest first, each to the reader with the least so far (ties: the
     * lower partition, the lower reader), so the split is reproducible. */
    for (int k = 0; k < active; k++) {
        int best = -1;
        uint64_t best_load = 0;
        for (int i = 0; i < tp->cnt; i++) {
            rd_kafka_topic_partition_t *p = &tp->elems[i];
            if (dealt[i] || p->partition < 0 || p->partition > np || s.done[p->partition])
                continue;
            uint64_t load = (uint64_t)(s.end[p->partition] - p->offset);
            if (best < 0 || load > best_load ||
                (load == best_load && p->partition < tp->elems[best].partition)) {
                best = i;
                best_load = load;
            }
        }
        int to = 0;
        for (int r = 1; r < n_readers; r++)
            if (readers[r].load < readers[to].load)
                to = r;
        dealt[best] = 1;
        rd_kafka_topic_partition_list_add(readers[to].parts, topic, tp->elems[best].partition)
            ->offset = tp->elems[best].offset;
        readers[to].load += best_load;
    }
    readers[0].rk = rk;
    for (int r = 1; r < n_readers; r++)
        if (!(readers[r].rk = scan_consumer(kafka, errstr, errstr_size))) {
            err = KB_ERR_KAFKA;
            goto out_destroy;
        }
    for (int r = 1; r < n_readers; r++) {
        if (pthread_create(&readers[r].thread, NULL, scan_thread, &readers[r])) {
            atomic_store(&s.stop, 1);
            err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "audit scan: no thread");
            break;
        }
        readers[r].started = 1;
    }
    if (!err)
        scan_read(&readers[0]);
    for (int r = 1; r < n_readers; r++)
        if (readers[r].started)
            pthread_join(readers[r].thread, NULL);
    /* The first reader's error, in reader order: the same run says the same. */
    for (int r = 0; r < n_readers && !err; r++)
        if (readers[r].err) {
            err = readers[r].err;
            snprintf(errstr, errstr_size, "%s", readers[r].errstr);
        }
out_destroy:
    for (int r = 0; readers && r < n_readers; r++) {
        if (readers[r].parts)
            rd_kafka_topic_partition_list_destroy(readers[r].parts);
        if (r > 0 && readers[r].rk) {
            rd_kafka_consumer_close(readers[r].rk);
            rd_kafka_destroy(readers[r].rk);
        }
    }
    free(readers);
    free(dealt);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (tp)
        rd_kafka_topic_partition_list_destroy(tp);
    free(s.end);
    free(s.done);
    free(low);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return err;
}

kb_err_t kb_audit_scan(const struct kb_kafka_opts *kafka, const char *topic, int64_t from_ms,
                       int64_t to_ms, kb_audit_scan_cb cb, void *opaque, char *errstr,
                       size_t errstr_size)
{
    return scan_topic(kafka, topic, from_ms, to_ms, 1, NULL, cb, opaque, errstr, errstr_size);
}

int kb_audit_scan_threads(int threads)
{
    if (threads > 0)
        return threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

kb_err_t kb_audit_scan_parallel(const struct kb_kafka_opts *kafka, const char *topic,
                                int64_t from_ms, int64_t to_ms, int threads, kb_audit_scan_cb cb,
                                void *opaque, char *errstr, size_t errstr_size)
{
    return scan_topic(kafka, topic, from_ms, to_ms, kb_audit_scan_threads(threads), NULL, cb,
                      opaque, errstr, errstr_size);
}

static int str_eq(struct kb_audit_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && !memcmp(s.ptr, c, n);
}

int kb_audit_filter_match(const struct kb_audit_filter *f, const struct kb_audit_record *rec)
{
    if (f->subject || f->n_subjects) {
        int any = f->subject && str_eq(rec->subject, f->subject);
        for (size_t i = 0; !any && i < f->n_subjects; i++)
            any = str_eq(rec->subject, f->subjects[i]);
        if (!any)
            return 0;
    }
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

kb_err_t kb_audit_person_ids(const uint8_t *key, size_t key_len, const char *bsn,
                             const char *anummer, struct kb_audit_person_id out[2], size_t *n,
                             char *errstr, size_t errstr_size)
{
    /* The domains are the ones adapters/gba/gba_events.c passes to
     * kb_event_pseudonym (finish(..., "bsn"/"anummer", ...)). */
    const struct {
        const char *id, *kind, *label;
        size_t digits;
    } ids[] = {{bsn, "bsn", "BSN", 9}, {anummer, "anummer", "A-nummer", 10}};
    *n = 0;
    if (!bsn && !anummer)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "give --bsn, --anummer or both");
    for (size_t i = 0; i < 2; i++) {
        if (!ids[i].id)
            continue;
        if (strlen(ids[i].id) != ids[i].digits || strspn(ids[i].id, "0123456789") != ids[i].digits)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "--%s must be %zu digits",
                              ids[i].kind, ids[i].digits); /* the value is not echoed */
        kb_err_t err = kb_event_pseudonym(key, key_len, ids[i].kind, ids[i].id, out[*n].pseudonym);
        if (err)
            return kb_err_set(err, errstr, errstr_size, "cannot derive the pseudonym (%s)",
                              kb_err_str(err));
        out[*n].kind = ids[i].kind;
        out[*n].label = ids[i].label;
        (*n)++;
    }
    return KB_OK;
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
    /*
     * Each record is filtered exactly on its recordedAt (query_one); the
     * Kafka timestamps only choose where to start reading.
     *
     * The end: every audit partition is read up to its high watermark as the
     * scan started, whatever f->to_ms says. A partition holds the chains of
     * several routers, each stamping with its own clock, so its timestamps
     * are not in offset order: a record stamped past the end (a clock ahead)
     * can precede records inside the range, and stopping at it would hide
     * them from the access report. No timestamp can bound what follows.
     *
     * The start: offsets-for-times gives each partition's first offset whose
     * timestamp is at or after from_ms - 60 s, in offset order, however the
     * timestamps are ordered; every record before it is stamped earlier. A
     * record's recordedAt (kb_audit_append) and its Kafka timestamp
     * (CreateTime: librdkafka stamps it when the router produces the staged
     * record, later) are read from the same host's clock, so the timestamp
     * is never earlier than recordedAt and skew between routers cannot put a
     * record in range before that offset. Only a broker or topic set to
     * message.timestamp.type=LogAppendTime (the broker's clock), or a host
     * clock stepped back more than 60 s between append and produce, could.
     */
    int64_t from = f->from_ms > 60000 ? f->from_ms - 60000 : 0;
    return kb_audit_scan(kafka, topic, from, 0, query_one, &q, errstr, errstr_size);
}

/* ---- verifier ------------------------------------------------------------ */

/* A range of sequence numbers still missing from a chain. A gap that a
 * late record splits keeps its one problem (its report): the numbers that
 * never show up stay MISSING; only when all of them showed up does the
 * problem become REORDERED. */
struct gap {
    uint64_t lo, hi; /* still missing, lo <= hi */
    size_t report;   /* index into vchain.reports */
};

/* One sequence jump as first seen, and what showed up of it since. */
struct gap_report {
    size_t problem;      /* index of its problem in the verifier's list */
    uint64_t lo, hi;     /* the range missing when the jump was seen */
    uint64_t open;       /* gaps (ranges) of it still missing */
    uint64_t late;       /* records of it that showed up later */
    uint64_t late_seq;   /* the last of those ... */
    int64_t late_offset; /* ... and its audit offset */
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
    struct gap *gaps; /* in sequence order */
    size_t n_gaps;
    struct gap_report *reports;
    size_t n_reports;
    int64_t last_offset; /* audit offset of the head record */
};

/* The chains read from one audit partition and their counts. */
struct vlane {
    int32_t partition;
    struct vchain **chains;      /* in order of first sight */
    size_t n_chains;
    struct vchain **index;       /* open addressing on vchain.hash; n_index a power of two */
    size_t n_index;
    struct vchain *last;         /* the chain of the previous message (fast path) */
    uint64_t messages, records, checkpoints;
    uint64_t n_problems;         /* problems raised here so far: their order in the report */
    int nomem;
};

struct trusted_key {
    EVP_PKEY *pkey;
    char id[17];
};

struct kb_audit_verifier {
    struct kb_audit_verify_opts opts;
    struct trusted_key *keys;
    size_t n_keys;
    struct vlane **lanes;        /* by audit partition; NULL until seen */
    size_t n_lanes;
    struct vlane *odd_lane;      /* any negative partition (never from Kafka) */
    pthread_mutex_t lock;        /* problems, problem_order, n/cap_problems */
    struct kb_audit_problem *problems;
    uint64_t *problem_order;     /* the lane's n_problems when it was raised */
    size_t n_problems, cap_problems;
    struct kb_audit_chain_summary *sums; /* snapshot for kb_audit_verifier_chains */
    size_t n_sums;
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
    pthread_mutex_init(&v->lock, NULL);
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

static void lane_free(struct vlane *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_chains; i++) {
        free(l->chains[i]->gaps);
        free(l->chains[i]->reports);
        free(l->chains[i]->topic);
        free(l->chains[i]);
    }
    free(l->chains);
    free(l->index);
    free(l);
}

void kb_audit_verifier_destroy(kb_audit_verifier_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n_keys; i++)
        EVP_PKEY_free(v->keys[i].pkey);
    free(v->keys);
    for (size_t i = 0; i < v->n_lanes; i++)
        lane_free(v->lanes[i]);
    free(v->lanes);
    lane_free(v->odd_lane);
    free(v->problems);
    free(v->problem_order);
    free(v->sums);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

/* The lane of audit partition @p partition, created on first sight (only
 * ever from one thread: kb_audit_verify_scan creates them all first). */
static struct vlane *lane_get(kb_audit_verifier_t *v, int32_t partition)
{
    if (partition >= 0 && (size_t)partition < v->n_lanes && v->lanes[partition])
        return v->lanes[partition];
    if (partition < 0 && v->odd_lane)
        return v->odd_lane;
    if (partition >= 0 && (size_t)partition >= v->n_lanes) {
        size_t n = (size_t)partition + 1;
        struct vlane **nl = realloc(v->lanes, n * sizeof *nl);
        if (!nl)
            return NULL;
        memset(nl + v->n_lanes, 0, (n - v->n_lanes) * sizeof *nl);
        v->lanes = nl;
        v->n_lanes = n;
    }
    struct vlane *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->partition = partition;
    if (partition < 0)
        v->odd_lane = l;
    else
        v->lanes[partition] = l;
    return l;
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

/* Raise a problem found in lane @p l; its index in v->problems (valid until
 * kb_audit_verifier_finish sorts them), or (size_t)-1 when out of memory. */
static size_t problem(kb_audit_verifier_t *v, struct vlane *l, int kind, int64_t offset,
                      const char *chain, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static size_t problem(kb_audit_verifier_t *v, struct vlane *l, int kind, int64_t offset,
                      const char *chain, const char *fmt, ...)
{
    struct kb_audit_problem pr;
    pr.kind = kind;
    pr.partition = l->partition;
    pr.offset = offset;
    snprintf(pr.chain, sizeof pr.chain, "%s", chain ? chain : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pr.what, sizeof pr.what, fmt, ap);
    va_end(ap);
    size_t at = (size_t)-1;
    pthread_mutex_lock(&v->lock);
    if (v->n_problems == v->cap_problems) {
        size_t ncap = v->cap_problems ? v->cap_problems * 2 : 16;
        struct kb_audit_problem *np = realloc(v->problems, ncap * sizeof *np);
        if (np)
            v->problems = np;
        uint64_t *no = np ? realloc(v->problem_order, ncap * sizeof *no) : NULL;
        if (no) {
            v->problem_order = no;
            v->cap_problems = ncap;
        }
    }
    if (v->n_problems < v->cap_problems) {
        at = v->n_problems++;
        v->problems[at] = pr;
        v->problem_order[at] = l->n_problems++;
    }
    pthread_mutex_unlock(&v->lock);
    if (at == (size_t)-1)
        l->nomem = 1;
    return at;
}

/* Hash of a chain's identity: length, the first and last 8 bytes of the
 * topic and the partition. Chain topics share long prefixes ("kb.in."), so
 * the tail carries the difference; equal hashes are compared in full. */
static uint32_t chain_hash(struct kb_audit_str topic, int32_t partition)
{
    uint64_t a = 0, b = 0;
    if (topic.len >= 8) {
        memcpy(&a, topic.ptr, 8);
        memcpy(&b, topic.ptr + topic.len - 8, 8);
    } else if (topic.len) {
        memcpy(&a, topic.ptr, topic.len);
    }
    uint64_t h = (a ^ (uint64_t)topic.len * 0x9e3779b97f4a7c15ull) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 29) ^ b) * 0xc4ceb9fe1a85ec53ull;
    h ^= (uint64_t)(uint32_t)partition * 0x9e3779b1u;
    h ^= h >> 32;
    return (uint32_t)(h ^ (h >> 16));
}

static int vchain_is(const struct vchain *c, uint32_t h, struct kb_audit_str topic,
                     int32_t partition)
{
    return c->hash == h && c->sum.input_partition == partition && c->topic_len == topic.len &&
           !memcmp(c->topic, topic.ptr, topic.len);
}

/* Put @p c into the lane's index, growing it to keep the load at most one half. */
static int vchain_index(struct vlane *l, struct vchain *c)
{
    if (2 * (l->n_chains + 1) > l->n_index) {
        size_t n = l->n_index ? l->n_index * 2 : 64;
        struct vchain **ni = calloc(n, sizeof *ni);
        if (!ni)
            return -1;
        for (size_t i = 0; i < l->n_chains; i++) {
            size_t j = l->chains[i]->hash & (n - 1);
            while (ni[j])
                j = (j + 1) & (n - 1);
            ni[j] = l->chains[i];
        }
        free(l->index);
        l->index = ni;
        l->n_index = n;
    }
    size_t j = c->hash & (l->n_index - 1);
    while (l->index[j])
        j = (j + 1) & (l->n_index - 1);
    l->index[j] = c;
    return 0;
}

/* The chain of (topic, partition) in lane @p l, created on first sight.
 * Looked up by the raw topic bytes and a hash: no formatting per record
 * (this runs for every record of the trail). */
static struct vchain *vchain_get(kb_audit_verifier_t *v, struct vlane *l,
                                 struct kb_audit_str topic, int32_t partition)
{
    uint32_t h = chain_hash(topic, partition);
    if (l->last && vchain_is(l->last, h, topic, partition))
        return l->last;
    for (size_t j = l->n_index ? h & (l->n_index - 1) : 0; l->n_index && l->index[j];
         j = (j + 1) & (l->n_index - 1))
        if (vchain_is(l->index[j], h, topic, partition))
            return l->last = l->index[j];
    char tname[256];
    printable(tname, sizeof tname, topic.ptr, topic.len);
    struct vchain **nc = realloc(l->chains, (l->n_chains + 1) * sizeof *nc);
    if (!nc)
        return NULL;
    l->chains = nc;
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
    if (vchain_index(l, c)) {
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
    l->chains[l->n_chains++] = c;
    return l->last = c;
}

static const uint8_t zero_hash[KB_AUDIT_HASH_LEN];

/* Record @p seq of gap @p gi showed up late (at audit offset @p offset):
 * take it out of the gap, splitting the gap when it sat inside. */
static int gap_fill(struct vchain *c, size_t gi, uint64_t seq, int64_t offset)
{
    struct gap *g = &c->gaps[gi];
    struct gap_report *r = &c->reports[g->report];
    r->late++;
    r->late_seq = seq;
    r->late_offset = offset;
    if (g->lo == g->hi) {
        memmove(g, g + 1, (c->n_gaps - gi - 1) * sizeof *g);
        c->n_gaps--;
        r->open--;
    } else if (seq == g->lo) {
        g->lo++;
    } else if (seq == g->hi) {
        g->hi--;
    } else {
        struct gap *ng = realloc(c->gaps, (c->n_gaps + 1) * sizeof *ng);
        if (!ng)
            return -1;
        c->gaps = ng;
        g = &c->gaps[gi];
        memmove(g + 2, g + 1, (c->n_gaps - gi - 1) * sizeof *g);
        g[1] = (struct gap){seq + 1, g->hi, g->report};
        g->hi = seq - 1;
        c->n_gaps++;
        r->open++;
    }
    return 0;
}

/* Rewrite the problem of gap report @p ri after a late record: MISSING,
 * naming the ranges still missing, while any are; REORDERED once every
 * record of the jump showed up. */
static void gap_report_text(kb_audit_verifier_t *v, const struct vchain *c, size_t ri)
{
    const struct gap_report *r = &c->reports[ri];
    char ranges[200];
    size_t k = 0;
    ranges[0] = '\0';
    for (size_t i = 0; i < c->n_gaps && k < sizeof ranges; i++) {
        const struct gap *g = &c->gaps[i];
        if (g->report != ri)
            continue;
        int w = g->lo == g->hi
                    ? snprintf(ranges + k, sizeof ranges - k, "%s%" PRIu64, k ? ", " : "", g->lo)
                    : snprintf(ranges + k, sizeof ranges - k, "%s%" PRIu64 "..%" PRIu64,
                               k ? ", " : "", g->lo, g->hi);
        k = w < 0 ? sizeof ranges : k + (size_t)w;
    }
    pthread_mutex_lock(&v->lock); /* another lane may be moving the list */
    struct kb_audit_problem *pr = &v->problems[r->problem];
    if (!r->open) {
        pr->kind = KB_AUDIT_REORDERED;
        if (r->lo == r->hi)
            snprintf(pr->what, sizeof pr->what,
                     "records out of order: seq %" PRIu64 " (at offset %" PRId64
                     ") stands after a later record (seq %" PRIu64 " onwards)",
                     r->late_seq, r->late_offset, r->hi + 1);
        else
            snprintf(pr->what, sizeof pr->what,
                     "records out of order: seq %" PRIu64 "..%" PRIu64
                     " stand after a later record (seq %" PRIu64
                     " onwards); the last of them, seq %" PRIu64 ", at offset %" PRId64,
                     r->lo, r->hi, r->hi + 1, r->late_seq, r->late_offset);
    } else {
        pr->kind = KB_AUDIT_MISSING;
        snprintf(pr->what, sizeof pr->what,
                 "seq %s missing before this record (seq %" PRIu64 "); of seq %" PRIu64 "..%" PRIu64
                 ", %" PRIu64 " showed up later, out of order (the last, seq %" PRIu64
                 ", at offset %" PRId64 ")",
                 ranges, r->hi + 1, r->lo, r->hi, r->late, r->late_seq, r->late_offset);
    }
    pthread_mutex_unlock(&v->lock);
}

static void feed_record(kb_audit_verifier_t *v, struct vlane *l, int64_t offset,
                        const void *key, size_t key_len, const void *value, size_t len)
{
    struct kb_audit_record rec;
    char why[160];
    if (kb_audit_decode_record(value, len, &rec, why, sizeof why)) {
        char k[KB_AUDIT_KEY_MAX];
        printable(k, sizeof k, key, key_len);
        problem(v, l, KB_AUDIT_ALTERED, offset, k, "record undecodable: %s", why);
        return;
    }
    l->records++;
    struct vchain *c = vchain_get(v, l, rec.input_topic, rec.input_partition);
    if (!c) {
        l->nomem = 1;
        return;
    }
    const char *name = c->sum.chain;
    if (key_len != c->key_len || memcmp(key, name, key_len)) {
        char k[KB_AUDIT_KEY_MAX];
        printable(k, sizeof k, key, key_len);
        problem(v, l, KB_AUDIT_ALTERED, offset, name,
                "record seq %" PRIu64 " of chain %s stored under key \"%s\"", rec.sequence, name,
                k);
    }
    if (!kb_audit_record_hash_ok(value, len))
        problem(v, l, KB_AUDIT_ALTERED, offset, name,
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
            problem(v, l, KB_AUDIT_MISSING, offset, name,
                    "chain starts at seq %" PRIu64 ": seq 0..%" PRIu64 " missing", rec.sequence,
                    rec.sequence - 1);
        else if (rec.sequence == 0 && memcmp(rec.prev_hash, zero_hash, KB_AUDIT_HASH_LEN))
            problem(v, l, KB_AUDIT_ALTERED, offset, name,
                    "record seq 0 has a non-zero prevHash");
    } else if (rec.sequence == c->head_seq + 1) {
        if (memcmp(rec.prev_hash, c->head, KB_AUDIT_HASH_LEN))
            problem(v, l, KB_AUDIT_ALTERED, offset, name,
                    "record seq %" PRIu64 ": prevHash is not the hash of seq %" PRIu64
                    " (a record was altered or forged)",
                    rec.sequence, c->head_seq);
    } else if (rec.sequence > c->head_seq + 1) {
        struct gap *ng = realloc(c->gaps, (c->n_gaps + 1) * sizeof *ng);
        if (ng)
            c->gaps = ng;
        struct gap_report *nr = realloc(c->reports, (c->n_reports + 1) * sizeof *nr);
        if (nr)
            c->reports = nr;
        size_t pi = problem(v, l, KB_AUDIT_MISSING, offset, name,
                            "seq %" PRIu64 "..%" PRIu64 " missing before this record (seq %" PRIu64
                            ")",
                            c->head_seq + 1, rec.sequence - 1, rec.sequence);
        if (!ng || !nr || pi == (size_t)-1) {
            l->nomem = 1;
        } else {
            nr[c->n_reports] =
                (struct gap_report){pi, c->head_seq + 1, rec.sequence - 1, 1, 0, 0, -1};
            ng[c->n_gaps] = (struct gap){c->head_seq + 1, rec.sequence - 1, c->n_reports};
            c->n_reports++;
            c->n_gaps++;
        }
    } else {
        /* At or below the head: a record that belongs earlier. */
        size_t gi = 0;
        while (gi < c->n_gaps &&
               !(rec.sequence >= c->gaps[gi].lo && rec.sequence <= c->gaps[gi].hi))
            gi++;
        if (gi < c->n_gaps) {
            size_t ri = c->gaps[gi].report;
            if (gap_fill(c, gi, rec.sequence, offset))
                l->nomem = 1;
            else
                gap_report_text(v, c, ri);
        } else {
            problem(v, l, KB_AUDIT_REORDERED, offset, name,
                    "record seq %" PRIu64 " after seq %" PRIu64 " (duplicated or out of order)",
                    rec.sequence, c->head_seq);
        }
        return; /* the head stays where it is */
    }
    c->head_seq = rec.sequence;
    c->last_offset = offset;
    memcpy(c->head, rec.record_hash, KB_AUDIT_HASH_LEN);
    c->sum.last_seq = rec.sequence;
    c->sum.unsigned_tail++;
}

static void feed_checkpoint(kb_audit_verifier_t *v, struct vlane *l, int64_t offset,
                            const void *key, size_t key_len, const void *value, size_t len)
{
    struct kb_audit_checkpoint cp;
    char why[160];
    char k[KB_AUDIT_KEY_MAX];
    printable(k, sizeof k, key, key_len);
    if (kb_audit_decode_checkpoint(value, len, &cp, why, sizeof why)) {
        problem(v, l, KB_AUDIT_ALTERED, offset, k, "checkpoint undecodable: %s", why);
        return;
    }
    struct vchain *c = vchain_get(v, l, cp.input_topic, cp.input_partition);
    if (!c) {
        l->nomem = 1;
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
        problem(v, l, KB_AUDIT_BAD_SIGNATURE, offset, name,
                "checkpoint of seq %" PRIu64 " signed by key id %s, which is not trusted",
                cp.sequence, kid);
        return;
    }
    /* Ed25519 verification is most of a checkpoint's cost (~130 us here,
     * one per checkpoint_every records); a fresh context per call costs
     * nothing next to it and keeps lanes free of shared OpenSSL state. */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, tk->pkey) == 1 &&
             EVP_DigestVerify(md, cp.signature, KB_AUDIT_SIG_LEN, value, cp.signed_len) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
        problem(v, l, KB_AUDIT_BAD_SIGNATURE, offset, name,
                "checkpoint of seq %" PRIu64 ": signature does not verify with key %s",
                cp.sequence, kid);
        return;
    }
    if (key_len != c->key_len || memcmp(key, name, key_len))
        problem(v, l, KB_AUDIT_ALTERED, offset, name,
                "checkpoint of chain %s stored under key \"%s\"", name, k);
    if (!c->started) {
        if (v->opts.from_start)
            problem(v, l, KB_AUDIT_MISSING, offset, name,
                    "checkpoint of seq %" PRIu64 " but no record of the chain before it",
                    cp.sequence);
        return;
    }
    if (cp.sequence > c->head_seq) {
        problem(v, l, KB_AUDIT_MISSING, offset, name,
                "checkpoint covers seq %" PRIu64 " but the chain ends at seq %" PRIu64,
                cp.sequence, c->head_seq);
    } else if (cp.sequence < c->head_seq) {
        problem(v, l, KB_AUDIT_REORDERED, offset, name,
                "checkpoint of seq %" PRIu64 " stands after seq %" PRIu64, cp.sequence,
                c->head_seq);
    } else if (memcmp(cp.head_hash, c->head, KB_AUDIT_HASH_LEN)) {
        problem(v, l, KB_AUDIT_ALTERED, offset, name,
                "checkpoint signs another hash for seq %" PRIu64
                ": records up to it were altered (and re-hashed)",
                cp.sequence);
    } else {
        c->sum.checkpoints++;
        c->sum.unsigned_tail = 0;
        l->checkpoints++;
    }
}

kb_err_t kb_audit_verifier_feed(kb_audit_verifier_t *v, int32_t partition, int64_t offset,
                                const void *key, size_t key_len, const void *value, size_t len)
{
    struct vlane *l = lane_get(v, partition);
    if (!l) {
        v->nomem = 1;
        return KB_ERR_NOMEM;
    }
    l->messages++;
    if (!key)
        key_len = 0;
    int32_t kind = kb_audit_kind(value, len);
    if (kind == KB_AUDIT_RECORD_SCHEMA_ID) {
        feed_record(v, l, offset, key, key_len, value, len);
    } else if (kind == KB_AUDIT_CHECKPOINT_SCHEMA_ID) {
        feed_checkpoint(v, l, offset, key, key_len, value, len);
    } else {
        char k[KB_AUDIT_KEY_MAX];
        printable(k, sizeof k, key, key_len);
        problem(v, l, KB_AUDIT_ALTERED, offset, k,
                "not an audit record or checkpoint (framing/schema id)");
    }
    return l->nomem ? KB_ERR_NOMEM : KB_OK;
}

/* The lanes in partition order (the odd lane first); NULL entries skipped by callers. */
static struct vlane *lane_at(const kb_audit_verifier_t *v, size_t i)
{
    return i == 0 ? v->odd_lane : v->lanes[i - 1];
}

struct problem_key {
    int32_t partition;
    uint64_t order;
    size_t at;
};

static int problem_key_cmp(const void *a, const void *b)
{
    const struct problem_key *p = a, *q = b;
    if (p->partition != q->partition)
        return p->partition < q->partition ? -1 : 1;
    return p->order < q->order ? -1 : p->order > q->order;
}

static int sum_cmp(const void *a, const void *b)
{
    const struct kb_audit_chain_summary *x = a, *y = b;
    int c = strcmp(x->input_topic, y->input_topic);
    if (c)
        return c;
    if (x->input_partition != y->input_partition)
        return x->input_partition < y->input_partition ? -1 : 1;
    return 0;
}

/* 1 when a chain of input @p topic [@p partition] is in any lane. */
static int has_chain(const kb_audit_verifier_t *v, const char *topic, int32_t partition)
{
    for (size_t i = 0; i <= v->n_lanes; i++) {
        const struct vlane *l = lane_at(v, i);
        for (size_t k = 0; l && k < l->n_chains; k++)
            if (l->chains[k]->sum.input_partition == partition &&
                !strcmp(l->chains[k]->sum.input_topic, topic))
                return 1;
    }
    return 0;
}

/*
 * The router commits its input offsets in the transaction that writes the
 * audit records of the messages before them, so a chain must reach the
 * input offset below its partition's committed offset. One that ends
 * earlier lost its tail: a tail cut off together with the checkpoints
 * covering it leaves a chain that is valid as far as it goes, and only
 * this comparison shows it.
 */
static void check_committed(kb_audit_verifier_t *v)
{
    if (!v->opts.input_committed)
        return;
    for (size_t i = 0; i <= v->n_lanes; i++) {
        struct vlane *l = lane_at(v, i);
        for (size_t k = 0; l && k < l->n_chains; k++) {
            struct vchain *c = l->chains[k];
            if (!c->started)
                continue;
            int64_t committed = kb_audit_committed_of(v->opts.input_committed, c->sum.input_topic,
                                                      c->sum.input_partition);
            if (committed > 0 && c->sum.max_input_offset + 1 < committed)
                problem(v, l, KB_AUDIT_MISSING, c->last_offset, c->sum.chain,
                        "chain ends at input offset %" PRId64 " (seq %" PRIu64
                        ") but the router has committed %s [%" PRId32 "] up to offset %" PRId64
                        ": the records of input offsets %" PRId64 "..%" PRId64
                        " are gone (the chain's tail was cut off)",
                        c->sum.max_input_offset, c->head_seq, c->sum.input_topic,
                        c->sum.input_partition, committed, c->sum.max_input_offset + 1,
                        committed - 1);
        }
    }
    /* An input partition routed (every input message has a record,
     * invariant 5 of route.c) with no chain at all: only a whole trail read
     * can tell. */
    const rd_kafka_topic_partition_list_t *all = v->opts.input_committed;
    for (int i = 0; v->opts.from_start && i < all->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &all->elems[i];
        if (p->err || p->offset <= 0 || has_chain(v, p->topic, p->partition))
            continue;
        struct vlane *odd = lane_get(v, -1);
        if (!odd) {
            v->nomem = 1;
            return;
        }
        char chain[KB_AUDIT_KEY_MAX];
        snprintf(chain, sizeof chain, "%s/%" PRId32, p->topic, p->partition);
        problem(v, odd, KB_AUDIT_MISSING, -1, chain,
                "no chain for %s [%" PRId32 "] in the trail, although the router has committed "
                "it up to offset %" PRId64 ": its records are gone whole (or it was routed "
                "without the trail, --no-audit)",
                p->topic, p->partition, p->offset);
    }
}

void kb_audit_verifier_finish(kb_audit_verifier_t *v)
{
    check_committed(v);
    /* Problems: by audit partition, then in the order the partition's
     * messages raised them (its offset order). */
    if (v->n_problems > 1) {
        struct problem_key *keys = malloc(v->n_problems * sizeof *keys);
        struct kb_audit_problem *sorted = malloc(v->n_problems * sizeof *sorted);
        if (!keys || !sorted) {
            v->nomem = 1;
            free(sorted);
        } else {
            for (size_t i = 0; i < v->n_problems; i++)
                keys[i] = (struct problem_key){v->problems[i].partition, v->problem_order[i], i};
            qsort(keys, v->n_problems, sizeof *keys, problem_key_cmp);
            for (size_t i = 0; i < v->n_problems; i++) {
                sorted[i] = v->problems[keys[i].at];
                v->problem_order[i] = keys[i].order;
            }
            free(v->problems);
            v->problems = sorted;
            v->cap_problems = v->n_problems;
        }
        free(keys);
    }
    /* Chains: by input topic and partition; one chain found in two audit
     * partitions (a moved record) shows twice, lane by lane. */
    size_t n = 0;
    for (size_t i = 0; i <= v->n_lanes; i++)
        if (lane_at(v, i))
            n += lane_at(v, i)->n_chains;
    free(v->sums);
    v->n_sums = 0;
    v->sums = calloc(n ? n : 1, sizeof *v->sums);
    if (!v->sums) {
        v->nomem = 1;
        return;
    }
    for (size_t i = 0; i <= v->n_lanes; i++) {
        struct vlane *l = lane_at(v, i);
        for (size_t c = 0; l && c < l->n_chains; c++)
            v->sums[v->n_sums++] = l->chains[c]->sum;
    }
    /* Insertion sort: stable (lane order for equal names), and few chains. */
    for (size_t i = 1; i < v->n_sums; i++) {
        struct kb_audit_chain_summary t = v->sums[i];
        size_t j = i;
        for (; j > 0 && sum_cmp(&v->sums[j - 1], &t) > 0; j--)
            v->sums[j] = v->sums[j - 1];
        v->sums[j] = t;
    }
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
    *n = v->sums ? v->n_sums : 0;
    return v->sums;
}

void kb_audit_verifier_counts(const kb_audit_verifier_t *v, uint64_t *messages,
                              uint64_t *records, uint64_t *checkpoints)
{
    uint64_t m = 0, r = 0, c = 0;
    for (size_t i = 0; i <= v->n_lanes; i++) {
        const struct vlane *l = lane_at(v, i);
        if (l) {
            m += l->messages;
            r += l->records;
            c += l->checkpoints;
        }
    }
    if (messages)
        *messages = m;
    if (records)
        *records = r;
    if (checkpoints)
        *checkpoints = c;
}

/* ---- verifying a topic ---------------------------------------------------- */

kb_err_t kb__audit_verifier_lanes(kb_audit_verifier_t *v, int32_t n_partitions)
{
    for (int32_t p = 0; p < n_partitions; p++)
        if (!lane_get(v, p))
            return KB_ERR_NOMEM;
    return KB_OK;
}

static kb_err_t verify_prepare(void *opaque, int32_t n_partitions, const int64_t *low)
{
    kb_err_t err = kb__audit_verifier_lanes(opaque, n_partitions);
    for (int32_t p = 0; !err && p < n_partitions; p++)
        err = kb_audit_verifier_partition_start(opaque, p, low[p]);
    return err;
}

kb_err_t kb_audit_verifier_partition_start(kb_audit_verifier_t *v, int32_t partition, int64_t low)
{
    struct vlane *l = lane_get(v, partition);
    if (!l) {
        v->nomem = 1;
        return KB_ERR_NOMEM;
    }
    /* The audit topic never expires records (retention.ms=-1), so a log
     * start above 0 means someone deleted its head (DeleteRecords): the
     * chains' first records are gone with whatever they said. */
    if (v->opts.from_start && low > 0)
        problem(v, l, KB_AUDIT_MISSING, low, "",
                "audit partition %" PRId32 " starts at offset %" PRId64
                ": the messages before it were deleted (the audit topic never expires any); "
                "verify --from T checks what is left",
                partition, low);
    return l->nomem ? KB_ERR_NOMEM : KB_OK;
}

static int verify_feed(void *opaque, int32_t partition, int64_t offset, int64_t ts,
                       const void *key, size_t key_len, const void *value, size_t len)
{
    (void)ts;
    return kb_audit_verifier_feed(opaque, partition, offset, key, key_len, value, len) != KB_OK;
}

/* Out of memory anywhere: the verdict is incomplete. */
static int verifier_nomem(const kb_audit_verifier_t *v)
{
    for (size_t i = 0; i <= v->n_lanes; i++)
        if (lane_at(v, i) && lane_at(v, i)->nomem)
            return 1;
    return v->nomem;
}

kb_err_t kb_audit_verify_scan(const struct kb_kafka_opts *kafka, const char *topic,
                              int64_t from_ms, int64_t to_ms, kb_audit_verifier_t *v,
                              int threads, char *errstr, size_t errstr_size)
{
    kb_err_t err = scan_topic(kafka, topic, from_ms, to_ms, kb_audit_scan_threads(threads),
                              verify_prepare, verify_feed, v, errstr, errstr_size);
    if (!err && verifier_nomem(v))
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "verifier: out of memory");
    return err;
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
    (void)rk;
    (void)topic;
    return 1; /* see audit.h: the rule holds for any whole-trail read */
}

/*
 * The router group's committed offsets of every <prefix>.in.* partition,
 * read before the scan: the router commits an offset in the transaction
 * that writes the audit records below it, so every chain read afterwards
 * must reach it. Offsets committed while the scan runs are newer than the
 * trail it reads, so they are not asked for. read_committed makes
 * librdkafka ask for stable offsets (none of an open transaction). Any
 * failure is an error: the check must not pass by not running.
 */
kb_err_t kb_audit_committed_snapshot(const struct kb_kafka_opts *kafka, const char *group,
                                     int timeout_ms, rd_kafka_topic_partition_list_t **out,
                                     char *errstr, size_t errstr_size)
{
    char prefix[256];
    kb_topic_name(prefix, sizeof prefix, "in.");
    rd_kafka_t *rk = kb_kafka_scanner_new(kafka, group, errstr, errstr_size);
    if (!rk)
        return KB_ERR_KAFKA;
    const struct rd_kafka_metadata *md = NULL;
    kb_err_t err = KB_OK;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    rd_kafka_resp_err_t rerr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (rerr) {
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                         "cannot list the input topics for the tail check: %s",
                         rd_kafka_err2str(rerr));
        goto out;
    }
    for (int t = 0; t < md->topic_cnt; t++)
        if (!strncmp(md->topics[t].topic, prefix, strlen(prefix)) && !md->topics[t].err)
            for (int p = 0; p < md->topics[t].partition_cnt; p++)
                rd_kafka_topic_partition_list_add(parts, md->topics[t].topic,
                                                  md->topics[t].partitions[p].id);
    if (parts->cnt && (rerr = rd_kafka_committed(rk, parts, timeout_ms))) {
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                         "cannot read the committed offsets of group %s for the tail "
                         "check: %s",
                         group, rd_kafka_err2str(rerr));
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].err) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                             "cannot read the committed offset of group %s on %s [%" PRId32
                             "] for the tail check: %s",
                             group, parts->elems[i].topic, parts->elems[i].partition,
                             rd_kafka_err2str(parts->elems[i].err));
            goto out;
        }
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    if (err)
        rd_kafka_topic_partition_list_destroy(parts);
    else
        *out = parts;
    return err;
}

int64_t kb_audit_committed_of(const rd_kafka_topic_partition_list_t *committed, const char *topic,
                              int32_t partition)
{
    const rd_kafka_topic_partition_t *p =
        rd_kafka_topic_partition_list_find(committed, topic, partition);
    return p && !p->err && p->offset >= 0 ? p->offset : -1;
}
