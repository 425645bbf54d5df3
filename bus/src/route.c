/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * route.c - the routing loop (see ketenbus/route.h).
 *
 * Each batch of input messages is handled in one Kafka transaction. Routing
 * is CPU work and committing is waiting for the broker, so the two overlap:
 * batch N+1 is routed into a staging list (nothing produced yet) while a
 * committer thread sends the offsets of batch N and commits it.
 *
 *     READY  --poll batch N+1 (a rebalance first finishes N)--> BATCH
 *     BATCH  --route_one() per message into the stage--> ROUTED
 *     ROUTED --join N: committed--> (N's ids, audit mark become committed)
 *            --begin, produce the stage, hand off send_offsets+commit--> READY
 *     ROUTED --join N: aborted--> abort, rewind N and N+1, forget ids --> READY
 *     any    --fatal error (fenced, ...)--> kb_router_run() returns KB_ERR_FATAL
 *
 * Invariants:
 *  1. An input offset is committed only in the transaction that also holds
 *     everything produced for it (subscriber copies, dead letter).
 *  2. An event id enters a partition's dedup set only when its transaction
 *     committed; ids of an aborted batch are forgotten (pending). Ids of
 *     the batch in flight count as seen for the batch routed behind it.
 *  3. A dedup set holds the ids of routed events (delivered or filtered),
 *     never of dead letters, so a corrected dead letter redriven with its
 *     id is routed. After (re)assignment a partition's set is rebuilt from
 *     the dedup_window input messages before its committed offset that
 *     pass the gate, less those this group dead-lettered after the gate
 *     (read back from the dead-letter topic, dead_lettered.h), so a
 *     duplicate is recognised across router restarts and rebalances.
 *  4. Order per input partition (and so per subject key) is kept: a batch
 *     is produced in consumption order, after the batch before it was
 *     handed off, and an aborted batch is replayed from its first offset
 *     together with the batch routed behind it (which is never produced).
 *  5. Every input message yields exactly one audit record (delivered,
 *     filtered, dead-lettered or duplicate) in the same transaction as its
 *     routing; the audit chain of a partition advances only on commit
 *     (kb_audit_mark when handed off, kb_audit_commit_mark when committed)
 *     and is rewound on abort (kb_audit_abort).
 *  6. Only the committer thread touches the producer while a transaction is
 *     in flight; the router thread joins it before anything else does
 *     (produce, abort, reload, a rebalance, stop).
 */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>

#include "admin_int.h"
#include "dead_lettered.h"
#include "ketenbus/clock.h"
#include "ketenbus/gate.h"
#include "idset.h"
#include "pending_ids.h"
#include "ketenbus/audit.h"
#include "ketenbus/metrics.h"
#include "ketenbus/validate.h"
#include "match.h"
#include "proj_register.h"
#include "sub_view.h"
#include "topic_handles.h"
#include "ketenbus/event.h"
#include "ketenbus/log.h"
#include "ketenbus/route.h"

#define COMP "route"
#define TXN_RETRIES 5            /* calls again after a retriable transaction error */

/* Dedup state of one input partition. */
struct part_state {
    char *topic;        /* input topic (owned) */
    int32_t partition;  /* input partition */
    kb_idset_t *ids;    /* ids of committed events, last dedup_window of them */
};

/* One message routed but not yet produced. Its bytes live in the stage's
 * buffer (offsets: the buffer grows); the headers are owned until produced. */
struct staged_msg {
    size_t topic_off;
    int32_t partition;           /* RD_KAFKA_PARTITION_UA: by key */
    size_t key_off, key_len;
    int has_key;
    size_t val_off, val_len;
    int has_val;
    rd_kafka_headers_t *hdrs;    /* NULL: none, or made from hdrs_from */
    /* A subscriber's copy: its headers are made from this input message's
     * (alive until the batch settles) only when it is produced, with
     * ce_subject = the key when pseud. Made at staging, some 30 MB of
     * header objects per 5,000-event batch were cold in every cache by
     * the time librdkafka's broker thread wrote them into a request. */
    const rd_kafka_message_t *hdrs_from;
    int pseud;
};

/* What a routed batch will produce, in order (invariant 4). */
struct stage {
    struct staged_msg *msgs;
    size_t n, cap;
    char *buf;
    size_t len, size;
};

/* The transaction handed to the committer thread (invariant 6). */
struct inflight {
    int active;                  /* a transaction was handed off and is not settled */
    int threaded;                /* it commits in thread (else it committed already) */
    pthread_t thread;
    rd_kafka_t *producer;
    rd_kafka_topic_partition_list_t *offs;      /* offsets it commits */
    rd_kafka_consumer_group_metadata_t *cgmd;
    rd_kafka_error_t *result;    /* set by the thread: NULL = committed */
    int64_t commit_ms;           /* set by the thread: how long send_offsets+commit took */
    atomic_int settled;          /* set by the thread last: result and commit_ms are final */
    rd_kafka_message_t **msgs;   /* the batch, kept for a rewind; owned */
    size_t n;
    size_t n_ids;                /* its ids: the first n_ids of pending */
};

/* What the router keeps per schema: its validator, compiled once
 * (invariant: schema ids are immutable, so a compiled gate never goes
 * stale), and the series its events are counted in. */
struct gate {
    int32_t schema_id;
    const kb_validator_t *v;     /* kb_schema_validator()'s; NULL: did not compile (logged) */
    char in_topic[256];          /* input topic of in_series ("" none yet) */
    kb_series_t *in_series;      /* kb_events_in_total{source, this schema's type} */
};

struct kb_router {
    struct kb_route_opts opts;   /* copy of the options, defaults filled in */
    struct kb_subs subs;         /* the subscriptions in force */
    kb_matcher_t *matcher;       /* index over subs */
    int64_t subs_stamp;          /* subs_stamp() of the files that loaded */
    int64_t next_reload_check;   /* monotonic ms of the next look at the files */
    int64_t failed_stamp;        /* stamp of the last set that did not load (log once) */
    rd_kafka_t *consumer;        /* group member reading kb.in.* */
    rd_kafka_t *producer;        /* transactional producer */
    struct part_state *parts;    /* dedup state per assigned partition */
    size_t n_parts;
    struct kb__pending_ids pending; /* ids routed, not yet committed: the batch in
                                  * flight first (inflight.n_ids), then the one routed */
    struct stage stage;          /* the routed batch's messages, not yet produced */
    struct inflight inflight;    /* the batch being committed */
    struct kb_route_stats stats;
    char group_buf[128];         /* default group id: <prefix>-route */
    char pattern_buf[200];       /* default input regex: ^<prefix>\.in\..* */
    char dlq_buf[128];           /* default DLQ topic: <prefix>.dlq */
    struct gate *gates;          /* per schema id, made on first use */
    size_t n_gates;
    kb_series_t *audit_series[8]; /* kb_audit_records_total per outcome, on first use */
    struct kb__sub_view **views; /* view per (subscription, schema), made on first use,
                                  * rebuilt after a reload */
    size_t n_views;
    struct kb__sub_view_bufs bufs; /* scratch for projected copies */
    /* Per event, one entry per subscription (so every match fits), grown
     * with the subscriptions (fanout_fit): */
    const struct kb_sub **hits;  /* the subscriptions it matched */
    const struct kb__sub_view **hit_views; /* the view each one gets */
    struct kb_audit_recipient *rcpt; /* the recipients its audit record names */
    size_t fanout_cap;
    size_t max_msg;              /* the producer's message.max.bytes: a copy larger than
                                  * this fails at produce, and would abort every retry */
    kb_audit_t *audit;           /* the audit chains of this instance; NULL = no trail */
    rd_kafka_topic_t *audit_rkt; /* the producer's audit topic handle: holds its codec */
    kb_topic_handles_t *topics;  /* the producer's handles of every topic it writes */
    const struct kb_event_attrs *cur_attrs; /* attributes of the message being routed, once known */
    /* The headers of the input whose copies are being staged (view_size)
     * or produced (make_copy_headers), read once for all its copies;
     * route_one and stage_produce clear in_hdrs.of. */
    struct kb__in_headers in_hdrs;
    int fatal;                   /* set in a callback: stop the router */
    uint64_t rebalances;         /* assignments and revocations so far (rebalance_cb) */
    kb_follow_topics_t *follows; /* follow lists read from compacted topics */
};

static struct part_state *part_find(kb_router_t *r, const char *topic, int32_t partition,
                                    int create)
{
    for (size_t i = 0; i < r->n_parts; i++)
        if (r->parts[i].partition == partition && !strcmp(r->parts[i].topic, topic))
            return &r->parts[i];
    if (!create)
        return NULL;
    struct part_state *np = realloc(r->parts, (r->n_parts + 1) * sizeof *np);
    if (!np)
        return NULL;
    r->parts = np;
    struct part_state *ps = &r->parts[r->n_parts];
    ps->topic = strdup(topic);
    ps->partition = partition;
    ps->ids = kb__idset_new(r->opts.dedup_window);
    if (!ps->topic || !ps->ids) {
        free(ps->topic);
        kb__idset_destroy(ps->ids);
        return NULL;
    }
    r->n_parts++;
    return ps;
}

static void parts_clear(kb_router_t *r)
{
    for (size_t i = 0; i < r->n_parts; i++) {
        free(r->parts[i].topic);
        kb__idset_destroy(r->parts[i].ids);
    }
    free(r->parts);
    r->parts = NULL;
    r->n_parts = 0;
}

static struct gate *gate_of(kb_router_t *r, const struct kb_schema *schema);

/* Whether input @p m passes route_one's gate (envelope, framing, schema,
 * validation), with what the envelope check found in @p in. Only events
 * that passed it can have been routed, and only routed events belong in a
 * dedup window: a dead letter redriven with its own id must be routed, not
 * dropped as a duplicate. (A dead letter of a later stage passed the gate:
 * rebuild_take() leaves it out by its letter.) */
static int passes_gate(kb_router_t *r, const rd_kafka_message_t *m, struct kb_gate_input *in)
{
    if (kb_gate_envelope(r->opts.schemas, m, in, NULL, 0) != KB_GATE_PASSED)
        return 0;
    struct gate *g = gate_of(r, in->schema);
    return g && g->v && kb_validate(g->v, in->payload, in->plen, NULL) == KB_OK;
}

/* One partition's share of a dedup rebuild: the window [from, to) of its
 * input, read into r->parts[part].ids. */
struct rebuild {
    size_t part;
    int64_t from, to;
    size_t added;
    size_t dead_lettered;     /* of the events that passed the gate, those dead-lettered later */
    int state;                /* REBUILD_* */
    rd_kafka_resp_err_t err;  /* the last error its partition reported */
    struct rebuild_id *seen;  /* what passed the gate, held until its dead letters are known */
    size_t n_seen, cap_seen;
    int64_t oldest_ms;        /* the oldest timestamp among them (INT64_MAX: none) */
};

/* An event of a window that passed the gate, by input offset. */
struct rebuild_id {
    int64_t offset;
    uint64_t hash;
};

enum { REBUILD_TODO, REBUILD_READ, REBUILD_DONE }; /* READ: read in this try, not yet logged */

/* The window of message @p m, looked up from the one of the message before
 * (@p hint): records arrive in runs per partition. */
static struct rebuild *rebuild_of(kb_router_t *r, struct rebuild *w, size_t n, size_t *hint,
                                  const rd_kafka_message_t *m)
{
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
    for (size_t k = 0; k < n; k++) {
        size_t i = (*hint + k) % n;
        if (r->parts[w[i].part].partition == m->partition &&
            !strcmp(r->parts[w[i].part].topic, topic)) {
            *hint = i;
            return &w[i];
        }
    }
    return NULL;
}

/* Stop fetching a partition whose window is read: on a restart behind a
 * backlog, fetches past the window would only slow the others down. */
static void rebuild_pause(rd_kafka_t *rk, const struct part_state *ps)
{
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, ps->topic, ps->partition);
    rd_kafka_pause_partitions(rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
}

/* Hold event @p m of window @p b, which passed the gate, by offset. */
static int rebuild_seen(struct rebuild *b, const rd_kafka_message_t *m, uint64_t hash)
{
    if (b->n_seen == b->cap_seen) {
        size_t cap = b->cap_seen ? 2 * b->cap_seen : 1024;
        struct rebuild_id *ns = realloc(b->seen, cap * sizeof *ns);
        if (!ns)
            return -1;
        b->seen = ns;
        b->cap_seen = cap;
    }
    b->seen[b->n_seen++] = (struct rebuild_id){m->offset, hash};
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (ts >= 0 && ts < b->oldest_ms)
        b->oldest_ms = ts;
    return 0;
}

/* The windows read in this try join their dedup sets, but for the events
 * this group dead-lettered after the gate (dead_lettered.h): a redrive of
 * one, corrected and with its own id, must be routed. When the dead-letter
 * topic cannot be read, every event joins (what the gate alone says) and a
 * warning tells what that means. */
static void rebuild_take(kb_router_t *r, struct rebuild *w, size_t n)
{
    struct kb__dl_window *dl = calloc(n + 1, sizeof *dl);
    size_t k = 0;
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; dl && i < n; i++) {
        if (w[i].state != REBUILD_READ || !w[i].n_seen)
            continue;
        dl[k++] = (struct kb__dl_window){.topic = r->parts[w[i].part].topic,
                                          .partition = r->parts[w[i].part].partition,
                                          .from = w[i].from, .to = w[i].to};
        if (w[i].oldest_ms < oldest)
            oldest = w[i].oldest_ms;
    }
    char errstr[512] = "out of memory";
    if (!dl || (k && kb__dead_lettered(r->opts.kafka, r->opts.dlq_topic, r->opts.group_id,
                                       oldest == INT64_MAX ? 0 : oldest,
                                       r->opts.rebuild_stall_ms, dl, k, errstr,
                                       sizeof errstr))) {
        KB_LOG_WARN(COMP, "dead letters of the rebuilt windows not read; a redriven dead "
                          "letter of them may be taken for a duplicate",
                    "topic=%s error=\"%s\"", r->opts.dlq_topic, errstr);
        for (size_t j = 0; dl && j < k; j++)
            dl[j].n = 0;
    }
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i].state != REBUILD_READ)
            continue;
        struct kb__dl_window *d = dl && w[i].n_seen ? &dl[k++] : NULL;
        if (d)
            kb__dl_window_sort(d);
        w[i].dead_lettered = 0;
        for (size_t j = 0; j < w[i].n_seen; j++) {
            if (d && kb__dl_window_has(d, w[i].seen[j].offset)) {
                w[i].dead_lettered++;
                continue;
            }
            kb__idset_add(r->parts[w[i].part].ids, w[i].seen[j].hash);
            w[i].added++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(w[i].seen);
        w[i].seen = NULL;
        w[i].n_seen = w[i].cap_seen = 0;
    }
    for (size_t j = 0; dl && j < n; j++)
        free(dl[j].offsets);
    free(dl);
}

/* Read the windows in @p w not yet read into their partitions' dedup sets
 * (invariant 3). One group-less consumer reads all of them at once, so the
 * group member's position is untouched and an assignment of many
 * partitions waits for one scan, not one per partition. A window ends in a
 * commit marker, after which no record comes: its end shows only as an
 * empty fetch, which the broker would hold for the default 500 ms. A window
 * that starts below the log start (retention) starts at the log start.
 * -1 when a window could not be read whole (no progress for rebuild_stall_ms,
 * default 30 s): the caller tries once more (only the windows left; adding
 * an id twice is a no-op) and then stops the router rather than let
 * duplicates through. */
static int dedup_rebuild(kb_router_t *r, struct rebuild *w, size_t n)
{
    size_t todo = 0;
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new((int)n + 1);
    for (size_t i = 0; i < n; i++) {
        if (w[i].state == REBUILD_TODO) {
            struct part_state *ps = &r->parts[w[i].part];
            rd_kafka_topic_partition_list_add(tp, ps->topic, ps->partition)->offset = w[i].from;
            w[i].added = 0;
            w[i].n_seen = 0;
            w[i].oldest_ms = INT64_MAX;
            w[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
            todo++;
        }
    }
    if (!todo) {
        rd_kafka_topic_partition_list_destroy(tp);
        return 0;
    }
    char errstr[512];
    rd_kafka_t *rk =
        kb_kafka_scanner_new(r->opts.kafka, "ketenbus-route-dedup-scan", errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_topic_partition_list_destroy(tp);
        KB_LOG_ERR(COMP, "dedup rebuild: no consumer", "error=\"%s\"", errstr);
        return -1;
    }
    rd_kafka_assign(rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    const int64_t stall_ms = r->opts.rebuild_stall_ms;
    int64_t deadline = kb_mono_ms() + stall_ms;
    size_t hint = 0;
    while (todo && kb_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        struct rebuild *b = rebuild_of(r, w, n, &hint, m);
        int eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (!b || b->state != REBUILD_TODO) {
            /* not ours, or past the end of a window already read */
        } else if (m->err && !eof) {
            b->err = m->err; /* told when the window fails */
        } else {
            deadline = kb_mono_ms() + stall_ms; /* progress */
            int end = eof || m->offset >= b->to;
            if (!end) {
                struct kb_gate_input in;
                if (passes_gate(r, m, &in) &&
                    rebuild_seen(b, m, kb__idset_hash(in.attrs.id))) {
                    KB_LOG_ERR(COMP, "out of memory reading a dedup window",
                               "topic=%s partition=%" PRId32, r->parts[b->part].topic,
                               m->partition);
                    rd_kafka_message_destroy(m);
                    break; /* out of memory: this try fails, the next may not */
                }
                end = m->offset + 1 >= b->to;
            }
            if (eof && m->offset < b->to)
                KB_LOG_WARN(COMP, "dedup window ends before the committed offset",
                            "topic=%s partition=%" PRId32 " end=%" PRId64 " committed=%" PRId64,
                            r->parts[b->part].topic, m->partition, m->offset, b->to);
            if (end) {
                b->state = REBUILD_READ;
                todo--;
                rebuild_pause(rk, &r->parts[b->part]);
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    rebuild_take(r, w, n);
    for (size_t i = 0; i < n; i++) {
        struct part_state *ps = &r->parts[w[i].part];
        if (w[i].state == REBUILD_TODO) {
            KB_LOG_ERR(COMP, "dedup window not read: no progress",
                       "topic=%s partition=%" PRId32 " from=%" PRId64 " to=%" PRId64
                       " ids=%zu stall_ms=%" PRId64 " error=\"%s\"",
                       ps->topic, ps->partition, w[i].from, w[i].to, w[i].added, stall_ms,
                       w[i].err ? rd_kafka_err2str(w[i].err) : "none");
        } else if (w[i].state == REBUILD_READ) {
            KB_LOG_INFO(COMP, "dedup window rebuilt",
                        "topic=%s partition=%" PRId32 " from=%" PRId64 " to=%" PRId64
                        " ids=%zu dead_lettered=%zu",
                        ps->topic, ps->partition, w[i].from, w[i].to, w[i].added,
                        w[i].dead_lettered);
            w[i].state = REBUILD_DONE;
        }
    }
    return todo ? -1 : 0;
}

static kb_err_t inflight_finish(kb_router_t *r, rd_kafka_message_t **later, size_t n_later,
                                int rewind);

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kb_router_t *r = opaque;
    r->rebalances++;
    /* The transaction in flight settles first: its offsets are what the
     * next owner of these partitions starts from, and its chain heads what
     * the audit resumes from. Nothing else is routed at this point (polls
     * happen only between batches); the main loop drops what it collected.
     * No rewind: the new assignment starts at the committed offsets. */
    if (r->inflight.active && inflight_finish(r, NULL, 0, 0) == KB_ERR_FATAL)
        r->fatal = 1;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        int64_t t0 = kb_mono_ms(); /* routing waits for all of this: worth a figure */
        /* Committed offsets tell where each partition resumes; the window
         * before it is what we must remember. Without them (the group
         * coordinator still loading after a restart) the window is unknown:
         * a few tries, then the router stops rather than route blind. */
        rd_kafka_resp_err_t cerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int tries = 0; tries < 3; tries++) {
            cerr = rd_kafka_committed(rk, parts, 10000);
            for (int i = 0; !cerr && i < parts->cnt; i++)
                cerr = parts->elems[i].err;
            if (!cerr)
                break;
            KB_LOG_WARN(COMP, "committed offsets not read", "error=\"%s\" try=%d",
                        rd_kafka_err2str(cerr), tries + 1);
        }
        if (cerr) {
            KB_LOG_ERR(COMP, "committed offsets unknown; router stops", "error=\"%s\"",
                       rd_kafka_err2str(cerr));
            r->fatal = 1;
        }
        /* Windows by index into r->parts: part_find() may move the states. */
        struct rebuild *w = cerr ? NULL : calloc((size_t)parts->cnt + 1, sizeof *w);
        size_t n_w = 0;
        int nomem = !cerr && !w;
        for (int i = 0; w && !nomem && i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *p = &parts->elems[i];
            struct part_state *ps = part_find(r, p->topic, p->partition, 1);
            if ((nomem = !ps))
                break;
            if (p->offset <= 0)
                continue; /* nothing committed yet: nothing to remember */
            int64_t from = p->offset - (int64_t)r->opts.dedup_window, lo = 0, hi = 0;
            /* Without the log start the scan starts below it and is moved
             * there (auto.offset.reset=earliest), one round trip later. */
            if (!rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, &lo, &hi, 10000) &&
                from < lo)
                from = lo;
            if (from >= p->offset)
                continue; /* the whole window is gone (retention) */
            w[n_w].part = (size_t)(ps - r->parts);
            w[n_w].from = from < 0 ? 0 : from;
            w[n_w].to = p->offset;
            w[n_w].state = REBUILD_TODO;
            n_w++;
        }
        if (nomem) {
            KB_LOG_ERR(COMP, "out of memory at assignment; router stops", "count=%d", parts->cnt);
            r->fatal = 1;
        } else if (w && dedup_rebuild(r, w, n_w) && dedup_rebuild(r, w, n_w)) {
            /* Twice: a slow moment is not a reason to stop; a window still
             * unread is, since its duplicates would go through. */
            size_t unread = 0;
            for (size_t i = 0; i < n_w; i++)
                unread += w[i].state == REBUILD_TODO;
            KB_LOG_ERR(COMP, "dedup windows not rebuilt after two tries; router stops",
                       "count=%zu", unread);
            r->fatal = 1;
        }
        free(w);
        /* Each partition's audit chain continues from its last committed
         * record (invariant 5); a chain that cannot be found is fatal:
         * routing on would fork the trail. */
        for (int i = 0; r->audit && i < parts->cnt; i++) {
            char errstr[512];
            rd_kafka_topic_partition_t *p = &parts->elems[i];
            if (kb_audit_resume(r->audit, p->topic, p->partition, p->offset > 0 ? p->offset : 0,
                                errstr, sizeof errstr)) {
                KB_LOG_ERR(COMP, "audit chain cannot be resumed; router stops",
                           "topic=%s partition=%" PRId32 " error=\"%s\"", p->topic, p->partition,
                           errstr);
                r->fatal = 1;
            }
        }
        KB_LOG_INFO(COMP, "partitions assigned", "count=%d seconds=%.2f", parts->cnt,
                    (double)(kb_mono_ms() - t0) / 1000.0);
        rd_kafka_assign(rk, parts);
    } else {
        KB_LOG_INFO(COMP, "partitions revoked", "count=%d", parts->cnt);
        for (int i = 0; r->audit && i < parts->cnt; i++)
            kb_audit_release(r->audit, parts->elems[i].topic, parts->elems[i].partition);
        rd_kafka_assign(rk, NULL);
        parts_clear(r);
    }
}

static void views_clear(kb_router_t *r);

/* A fingerprint of the subscription file, or of the folder and every entry
 * in it: a hash over each entry's name, size, modification and change time.
 * Any edit, added, removed or renamed file changes it, even within one tick
 * of the file system clock (a newest-mtime stamp missed a file written and
 * renamed in within the same tick), and an edit in place whose mtime was
 * set back (the change time cannot be). */
static int64_t subs_stamp(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    uint64_t h = 14695981039346656037ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    MIX(st.st_mtim.tv_sec);
    MIX(st.st_mtim.tv_nsec);
    MIX(st.st_ctim.tv_sec);
    MIX(st.st_ctim.tv_nsec);
    MIX(st.st_size);
    if (S_ISDIR(st.st_mode)) {
        struct dirent **names;
        int n = scandir(path, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            char file[4096];
            snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
            if (names[i]->d_name[0] != '.' && stat(file, &st) == 0) {
                for (const char *c = names[i]->d_name; *c; c++)
                    MIX((unsigned char)*c);
                MIX(st.st_mtim.tv_sec);
                MIX(st.st_mtim.tv_nsec);
                MIX(st.st_ctim.tv_sec);
                MIX(st.st_ctim.tv_nsec);
                MIX(st.st_size);
            }
            free(names[i]);
        }
        if (n >= 0)
            free(names);
    }
#undef MIX
    return (int64_t)h;
}

/* 0 when every file @p subs was read from (the subscription files and
 * the follow lists) is still the version that was read, else a
 * fingerprint of the versions there now. subs_stamp() sees most edits, and
 * every added, removed or renamed file; this sees a follow list, which is a
 * file of its own, often beside the subscription files, and an edit that
 * kept the size within a time stamp tick of the read (kb_file_changed
 * compares the content then, and may mark an id no longer racy). */
static int64_t read_files_changed(struct kb_subs *subs)
{
    uint64_t h = 14695981039346656037ull;
    int changed = 0;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    for (size_t i = 0; i < subs->n_files; i++) {
        struct kb_subs_file *f = &subs->files[i];
        uint64_t now = kb_file_changed(f->path, &f->id, KB_SUB_FILE_MAX);
        if (now) {
            changed = 1;
            MIX(i);
            MIX(now);
        }
    }
    for (size_t i = 0; i < subs->n; i++) {
        struct kb_sub *sub = &subs->items[i];
        if (!sub->follow_path)
            continue;
        uint64_t now = kb_file_changed(sub->follow_path, &sub->follow_id, KB_SUB_FOLLOW_FILE_MAX);
        if (now) {
            changed = 1;
            MIX(subs->n_files + i);
            MIX(now);
        }
    }
#undef MIX
    return changed ? (int64_t)(h | 1) : 0;
}

/* kb_subscriptions_reload_failed: 1 while the files on disk did not load
 * and an older set routes, so an alert need not wait for someone to read the
 * log. Declared here (idempotent) as it belongs to the reload path. */
static void reload_gauge(int failed)
{
    kb_metrics_declare(KB_METRIC_GAUGE, "kb_subscriptions_reload_failed",
                       "1 while the last reload of the subscriptions failed and the previous "
                       "set stays in force, else 0",
                       "", NULL, 0);
    kb_metrics_gauge_set("kb_subscriptions_reload_failed", failed ? 1.0 : 0.0, NULL);
}

static kb_err_t ensure_output_topics(kb_router_t *r, const struct kb_subs *subs, char *errstr,
                                     size_t errstr_size)
{
    const char **topics = calloc(subs->n + 1, sizeof *topics);
    if (!topics)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    size_t k = 0;
    topics[k++] = r->opts.dlq_topic;
    for (size_t i = 0; i < subs->n; i++)
        topics[k++] = subs->items[i].topic;
    kb_err_t err = kb_kafka_ensure_topics(r->producer, topics, k, 3, 30000, errstr, errstr_size);
    free(topics);
    return err;
}

/*
 * Between two transactions (so nothing is half routed): if asked, or if the
 * files changed (subscription files or follow list files), load the
 * subscriptions again. A set that does not load keeps the old one in force,
 * with the reason logged at every requested reload and at every change of
 * the files, and kb_subscriptions_reload_failed at 1 until a set loads.
 * r->failed_stamp: 0 when the last attempt loaded, else a fingerprint of the
 * files that failed (so an unchanged failure retried every look logs once).
 */
static void maybe_reload(kb_router_t *r, int64_t now)
{
    /* Follow topics whose end moved are re-read here too, between
     * transactions; a failed read keeps the list in force (follow_topic.c). */
    kb_follow_topics_refresh(r->follows, &r->subs, now, 3000);
    int asked = r->opts.reload && atomic_exchange(r->opts.reload, 0);
    if (!asked && now < r->next_reload_check)
        return;
    r->next_reload_check = now + 2000;
    int64_t stamp = subs_stamp(r->opts.subs_path);
    int64_t files_now = read_files_changed(&r->subs);
    if (!asked && stamp == r->subs_stamp && !files_now) {
        reload_gauge(r->failed_stamp != 0);
        return;
    }
    /* Never 0, which means "loaded". */
    int64_t failed = (int64_t)(((uint64_t)stamp ^ ((uint64_t)files_now * 31)) | 1);
    /* The stamp is recorded only once a set loaded: a file caught half
     * written is tried again at the next look (logged once per change, and
     * at every SIGHUP: whoever asked must see the answer). */
    struct kb_subs fresh;
    char errstr[512];
    if (kb_subs_load(r->opts.subs_path, r->opts.subject_key, r->opts.subject_key_len, &fresh,
                     errstr, sizeof errstr) ||
        kb_follow_topics_load(r->follows, &fresh, errstr, sizeof errstr)) {
        kb_subs_fini(&fresh);
        if (asked || failed != r->failed_stamp)
            KB_LOG_ERR(COMP, "subscriptions not reloaded; the previous set stays in force",
                       "requested=%d error=\"%s\"", asked, errstr);
        r->failed_stamp = failed;
        reload_gauge(1);
        return;
    }
    kb_matcher_t *m = kb_matcher_new(&fresh);
    if (!m || ensure_output_topics(r, &fresh, errstr, sizeof errstr) ||
        (!r->opts.no_register_projections &&
         kb__projections_register(r->opts.kafka, &fresh, r->opts.schemas, r->opts.subject_key,
                                  r->opts.subject_key_len, errstr, sizeof errstr))) {
        /* Tried again at the next look: topic creation and registration
         * can fail for a moment (broker restart). */
        if (asked || failed != r->failed_stamp)
            KB_LOG_ERR(COMP, "subscriptions not reloaded; the previous set stays in force",
                       "requested=%d error=\"%s\"", asked, m ? errstr : "out of memory");
        r->failed_stamp = failed;
        reload_gauge(1);
        kb_matcher_destroy(m);
        kb_subs_fini(&fresh);
        /* Lists of topics both sets follow were just read for the new set;
         * give the old set the same (the topics of the old set were all kept
         * by kb_follow_topics_load; a failed read here is retried by the
         * next refresh). */
        if (kb_follow_topics_load(r->follows, &r->subs, errstr, sizeof errstr))
            KB_LOG_ERR(COMP, "follow lists not re-read", "error=\"%s\"", errstr);
        return;
    }
    r->subs_stamp = stamp;
    r->failed_stamp = 0;
    reload_gauge(0);
    views_clear(r); /* they point into the old subscriptions */
    kb_matcher_destroy(r->matcher);
    kb_subs_fini(&r->subs);
    r->subs = fresh;
    r->matcher = m;
    /* Only now are the old set's follow topics no longer needed. */
    kb_follow_topics_retain(r->follows, &r->subs);
    atomic_fetch_add(&r->stats.reloads, 1);
    KB_LOG_INFO(COMP, "subscriptions reloaded", "subscriptions=%zu", r->subs.n);
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    return kb_metrics_kafka_stats_cb(rk, json, json_len, opaque);
}

kb_router_t *kb_router_new(const struct kb_route_opts *opts, char *errstr, size_t errstr_size)
{
    kb_router_t *r = calloc(1, sizeof *r);
    if (!r) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->opts = *opts;
    if (!r->opts.group_id) {
        snprintf(r->group_buf, sizeof r->group_buf, "%s-route", kb_topic_prefix());
        r->opts.group_id = r->group_buf;
    }
    if (!r->opts.instance)
        r->opts.instance = "0";
    if (!r->opts.input_pattern) {
        /* A regex subscription: every <prefix>.in.<source> topic, also ones
         * created after start. Dots in the prefix are escaped. */
        char *o = r->pattern_buf;
        o += sprintf(o, "^");
        for (const char *c = kb_topic_prefix(); *c && o < r->pattern_buf + 160; c++)
            o += sprintf(o, *c == '.' ? "\\." : "%c", *c);
        sprintf(o, "\\.in\\..*");
        r->opts.input_pattern = r->pattern_buf;
    }
    if (!r->opts.dlq_topic) {
        kb_topic_name(r->dlq_buf, sizeof r->dlq_buf, "dlq");
        r->opts.dlq_topic = r->dlq_buf;
    }
    if (r->opts.batch_max <= 0)
        r->opts.batch_max = KB_ROUTE_BATCH_MAX;
    if (r->opts.batch_ms <= 0)
        r->opts.batch_ms = 100;
    if (!r->opts.dedup_window)
        r->opts.dedup_window = 100000;
    if (r->opts.rebuild_stall_ms <= 0)
        r->opts.rebuild_stall_ms = 30000;
    if (!r->opts.subs_path) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "no subscriptions given");
        goto out_fail;
    }
    /* Both codecs are checked before anything is read or connected. */
    if ((r->opts.compression &&
         kb_kafka_codec_check(r->opts.compression, "--compression", errstr, errstr_size)) ||
        (!r->opts.no_audit && r->opts.audit_compression &&
         kb_kafka_codec_check(r->opts.audit_compression, "--audit-compression", errstr,
                              errstr_size)))
        goto out_fail;
    r->subs_stamp = subs_stamp(r->opts.subs_path);
    if (kb_subs_load(r->opts.subs_path, r->opts.subject_key, r->opts.subject_key_len, &r->subs,
                     errstr, errstr_size))
        goto out_fail;
    /* Every subscriber gets its own pseudonyms, derived from this key. */
    if (!r->opts.subject_key || r->opts.subject_key_len < 16) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                   "the router needs the subject key (--subject-key-file)");
        goto out_fail;
    }
    r->follows = kb_follow_topics_new(opts->kafka);
    if (!r->follows) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_fail;
    }
    if (kb_follow_topics_load(r->follows, &r->subs, errstr, errstr_size))
        goto out_fail;
    if (!r->opts.no_register_projections &&
        kb__projections_register(opts->kafka, &r->subs, r->opts.schemas, r->opts.subject_key,
                                 r->opts.subject_key_len, errstr, errstr_size))
        goto out_fail;
    r->matcher = kb_matcher_new(&r->subs);
    if (!r->matcher) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_fail;
    }
    /* room for the batch in flight and the one routed behind it */
    if (kb__pending_ids_init(&r->pending, 2 * (size_t)r->opts.batch_max)) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_fail;
    }

    char rerr[512];
    char txn_id[256];
    snprintf(txn_id, sizeof txn_id, "%s-%s", r->opts.group_id, r->opts.instance);
    rd_kafka_conf_t *pconf = kb_kafka_conf_new(opts->kafka, errstr, errstr_size);
    if (!pconf)
        goto out_fail;
    if (rd_kafka_conf_set(pconf, "transactional.id", txn_id, rerr, sizeof rerr) ||
        rd_kafka_conf_set(pconf, "client.id", "ketenbus-route", rerr, sizeof rerr) ||
        /* Only when asked: else a compression.type given with -X or
         * --kafka-config stays (librdkafka's default is KB_ROUTE_COMPRESSION). */
        (r->opts.compression &&
         rd_kafka_conf_set(pconf, "compression.type", r->opts.compression, rerr, sizeof rerr))) {
        rd_kafka_conf_destroy(pconf);
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "producer: %s", rerr);
        goto out_fail;
    }
    if (kb_kafka_conf_default(pconf, opts->kafka, "linger.ms", "queue.buffering.max.ms",
                              KB_ROUTE_LINGER_MS, errstr, errstr_size)) {
        rd_kafka_conf_destroy(pconf);
        goto out_fail;
    }
    r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, rerr, sizeof rerr);
    if (!r->producer) {
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "producer: %s", rerr);
        goto out_fail;
    }
    r->max_msg = kb_kafka_conf_size(r->producer, "message.max.bytes", 1000000);
    r->topics = kb__topic_handles_new(r->producer);
    if (!r->topics) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_fail;
    }

    /* Output topics must exist before a transaction writes to them. */
    if (ensure_output_topics(r, &r->subs, errstr, errstr_size))
        goto out_fail;

    rd_kafka_error_t *txerr = rd_kafka_init_transactions(r->producer, 60000);
    if (txerr) {
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "init_transactions: %s",
                   rd_kafka_error_string(txerr));
        rd_kafka_error_destroy(txerr);
        goto out_fail;
    }

    if (!r->opts.no_audit) {
        struct kb_audit_opts ao = {
            .kafka = opts->kafka,
            .signing_key_file = r->opts.audit_signing_key_file,
            .checkpoint_every = r->opts.audit_checkpoint_every,
            .checkpoint_ms = r->opts.audit_checkpoint_ms,
            .compression = r->opts.audit_compression,
        };
        r->audit = kb_audit_new(&ao, errstr, errstr_size);
        if (!r->audit)
            goto out_fail;
        r->audit_rkt = kb_audit_topic_handle(r->audit, r->producer, errstr, errstr_size);
        if (!r->audit_rkt)
            goto out_fail;
    }

    rd_kafka_conf_t *cconf = kb_kafka_conf_new(opts->kafka, errstr, errstr_size);
    if (!cconf)
        goto out_fail;
    if (rd_kafka_conf_set(cconf, "group.id", r->opts.group_id, rerr, sizeof rerr) ||
        rd_kafka_conf_set(cconf, "client.id", "ketenbus-route", rerr, sizeof rerr) ||
        rd_kafka_conf_set(cconf, "enable.auto.commit", "false", rerr, sizeof rerr) ||
        rd_kafka_conf_set(cconf, "isolation.level", "read_committed", rerr, sizeof rerr) ||
        rd_kafka_conf_set(cconf, "auto.offset.reset", "earliest", rerr, sizeof rerr) ||
        rd_kafka_conf_set(cconf, "topic.metadata.refresh.interval.ms", "5000", rerr,
                          sizeof rerr)) {
        rd_kafka_conf_destroy(cconf);
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "consumer: %s", rerr);
        goto out_fail;
    }
    rd_kafka_conf_set_rebalance_cb(cconf, rebalance_cb);
    /* Consumer lag per partition for /metrics, from librdkafka's statistics. */
    rd_kafka_conf_set(cconf, "statistics.interval.ms", "5000", NULL, 0);
    rd_kafka_conf_set_stats_cb(cconf, stats_cb);
    rd_kafka_conf_set_opaque(cconf, r);
    r->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, rerr, sizeof rerr);
    if (!r->consumer) {
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "consumer: %s", rerr);
        goto out_fail;
    }
    rd_kafka_poll_set_consumer(r->consumer);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, r->opts.input_pattern, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(r->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (serr) {
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(serr));
        goto out_fail;
    }
    KB_LOG_INFO(COMP, "router started",
                "group=%s transactional_id=%s input=%s subscriptions=%zu schemas=%zu",
                r->opts.group_id, txn_id, r->opts.input_pattern, r->subs.n,
                kb_schemas_count(r->opts.schemas));
    return r;
out_fail:
    kb_router_destroy(r);
    return NULL;
}

/* Append @p len bytes to the stage's buffer; their offset in *@p off. */
static int stage_bytes(struct stage *st, const void *p, size_t len, size_t *off)
{
    if (st->len + len > st->size) {
        size_t size = st->size ? st->size : 1 << 16;
        while (size < st->len + len)
            size *= 2;
        char *nb = realloc(st->buf, size);
        if (!nb)
            return -1;
        st->buf = nb;
        st->size = size;
    }
    *off = st->len;
    if (len)
        memcpy(st->buf + st->len, p, len);
    st->len += len;
    return 0;
}

/* Stage one message for the next transaction. Takes @p hdrs (destroyed on
 * failure). The bytes are copied: the buffers they come from are reused. */
static kb_err_t stage_put(kb_router_t *r, const char *topic, int32_t partition, const void *key,
                          size_t key_len, const void *value, size_t len, rd_kafka_headers_t *hdrs)
{
    struct stage *st = &r->stage;
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 1024;
        struct staged_msg *nm = realloc(st->msgs, cap * sizeof *nm);
        if (!nm)
            goto nomem;
        st->msgs = nm;
        st->cap = cap;
    }
    struct staged_msg *sm = &st->msgs[st->n];
    *sm = (struct staged_msg){.partition = partition, .key_len = key_len, .has_key = key != NULL,
                              .val_len = len, .has_val = value != NULL, .hdrs = hdrs};
    if (stage_bytes(st, topic, strlen(topic) + 1, &sm->topic_off) ||
        (key && stage_bytes(st, key, key_len, &sm->key_off)) ||
        (value && stage_bytes(st, value, len, &sm->val_off)))
        goto nomem;
    st->n++;
    return KB_OK;
nomem:
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    KB_LOG_ERR(COMP, "out of memory staging a message", "topic=%s", topic);
    return KB_ERR_NOMEM;
}

/* Drop what was staged after the first @p n messages and @p len bytes. */
static void stage_truncate(struct stage *st, size_t n, size_t len)
{
    for (size_t i = n; i < st->n; i++)
        if (st->msgs[i].hdrs)
            rd_kafka_headers_destroy(st->msgs[i].hdrs);
    st->n = n;
    st->len = len;
}

/* Drop what is staged (the batch will be routed again). */
static void stage_discard(struct stage *st)
{
    stage_truncate(st, 0, 0);
}

/* Read the headers of input message @p m into r->in_hdrs, unless they are
 * there already: the copies of one input are staged, and produced, one
 * after another. KB_ERR_NOMEM. */
static kb_err_t in_headers_of(kb_router_t *r, const rd_kafka_message_t *m)
{
    if (r->in_hdrs.of == m)
        return KB_OK;
    rd_kafka_headers_t *orig = NULL;
    if (rd_kafka_message_headers(m, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR)
        orig = NULL;
    return kb__in_headers_read(&r->in_hdrs, orig, m);
}

/* Make the headers of staged copy @p sm (key @p key) from its input's.
 * KB_ERR_NOMEM. */
static kb_err_t make_copy_headers(kb_router_t *r, struct staged_msg *sm, const void *key)
{
    if (in_headers_of(r, sm->hdrs_from))
        return KB_ERR_NOMEM;
    sm->hdrs = kb__in_headers_copy(&r->in_hdrs, sm->pseud ? key : NULL,
                                   sm->pseud ? sm->key_len : 0, NULL, 0);
    return sm->hdrs ? KB_OK : KB_ERR_NOMEM;
}

/* Produce everything staged, in order, inside the open transaction. A full
 * local queue is waited out (a batch of 500 events with 20 subscribers is
 * about 10,000 messages at once); any other error fails the transaction. */
static kb_err_t stage_produce(kb_router_t *r)
{
    struct stage *st = &r->stage;
    kb_err_t result = KB_OK;
    r->in_hdrs.of = NULL; /* a message of an earlier batch may have had the address */
    size_t i = 0;
    for (; i < st->n; i++) {
        struct staged_msg *sm = &st->msgs[i];
        const char *topic = st->buf + sm->topic_off;
        void *key = sm->has_key ? st->buf + sm->key_off : NULL;
        void *val = sm->has_val ? st->buf + sm->val_off : NULL;
        rd_kafka_topic_t *rkt = kb__topic_handles_get(r->topics, topic);
        if (sm->hdrs_from && make_copy_headers(r, sm, key)) {
            KB_LOG_ERR(COMP, "out of memory making a copy's headers", "topic=%s", topic);
            result = KB_ERR_NOMEM;
            break;
        }
        rd_kafka_vu_t vu[] = {
            /* by name only when no handle could be made (out of memory, or a
             * name librdkafka refuses: producing by name then fails alike) */
            rkt ? (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_RKT, .u.rkt = rkt}
                : (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = topic},
            {.vtype = RD_KAFKA_VTYPE_PARTITION, .u.i32 = sm->partition},
            {.vtype = RD_KAFKA_VTYPE_KEY, .u.mem = {key, sm->key_len}},
            {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {val, sm->val_len}},
            {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
            {.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = sm->hdrs},
        };
        rd_kafka_resp_err_t err;
        for (;;) {
            rd_kafka_error_t *e = rd_kafka_produceva(r->producer, vu, sizeof vu / sizeof vu[0]);
            err = RD_KAFKA_RESP_ERR_NO_ERROR;
            if (e) {
                err = rd_kafka_error_code(e);
                rd_kafka_error_destroy(e);
            }
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(r->producer, 20);
        }
        if (err) {
            KB_LOG_ERR(COMP, "produce failed", "topic=%s error=\"%s\"", topic,
                       rd_kafka_err2str(err));
            result = kb_kafka_err(err);
            break;
        }
        sm->hdrs = NULL; /* librdkafka owns them now */
    }
    stage_discard(st); /* what was not produced goes with the aborted transaction */
    return result;
}

/* At least the size librdkafka gives a message when it compares it with
 * message.max.bytes: key, value and each header's name and value, plus a
 * header's framing (varints) counted generously. */
static size_t msg_size(size_t key_len, size_t len, const rd_kafka_headers_t *hdrs)
{
    size_t n = key_len + len;
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0; hdrs && !rd_kafka_header_get_all(hdrs, i, &name, &val, &size); i++)
        n += strlen(name) + size + 16;
    return n;
}

/* msg_size() of a subscriber's copy of @p m with a key of @p key_len bytes,
 * which is also its ce_subject when @p pseud (else the original ce_subject,
 * if any, stays), and a value of @p len bytes, in *@p size, without making
 * its headers (kb__sub_view_headers() with no set). KB_ERR_NOMEM. */
static kb_err_t view_size(kb_router_t *r, const rd_kafka_message_t *m, int pseud,
                          size_t key_len, size_t len, size_t *size)
{
    if (in_headers_of(r, m))
        return KB_ERR_NOMEM;
    size_t n = key_len + len;
    for (size_t i = 0; i < r->in_hdrs.n; i++) {
        const struct kb__in_header *h = &r->in_hdrs.h[i];
        if (h->known && !(pseud && h->subject))
            n += h->name_len + h->len + 16;
    }
    if (pseud)
        n += sizeof "ce_subject" - 1 + key_len + 16;
    *size = n;
    return KB_OK;
}

/* Stage one copy of @p m to @p topic. Extra headers are appended to a copy
 * of the original ones. A copy too large to produce (a dead letter of an
 * input at the size limit) goes without the value, then without the
 * original headers, saying so in kb_value_dropped (the value's length) and
 * kb_value_sha256: the record of the event is kept, its bytes stay at the
 * input offset its headers name. */
static kb_err_t stage_copy(kb_router_t *r, const rd_kafka_message_t *m, const char *topic,
                           const struct kb_header *extra, size_t n_extra)
{
    rd_kafka_headers_t *orig = NULL, *hdrs;
    if (rd_kafka_message_headers(m, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR)
        orig = NULL;
    for (int lean = 0; lean < 3; lean++) {
        hdrs = orig && lean < 2 ? rd_kafka_headers_copy(orig) : rd_kafka_headers_new(n_extra + 2);
        for (size_t i = 0; i < n_extra; i++)
            rd_kafka_header_add(hdrs, extra[i].name, -1, extra[i].value, (ssize_t)extra[i].len);
        if (lean) {
            char len[24], sha[65];
            snprintf(len, sizeof len, "%zu", m->len);
            kb__sha256_hex(m->payload, m->len, sha);
            rd_kafka_header_add(hdrs, "kb_value_dropped", -1, len, -1);
            rd_kafka_header_add(hdrs, "kb_value_sha256", -1, sha, -1);
        }
        const void *value = lean ? NULL : m->payload;
        size_t len = lean ? 0 : m->len;
        if (lean == 2 || msg_size(m->key_len, len, hdrs) <= r->max_msg)
            return stage_put(r, topic, RD_KAFKA_PARTITION_UA, m->key, m->key_len, value, len,
                             hdrs);
        rd_kafka_headers_destroy(hdrs);
    }
    return KB_ERR_INVALID; /* not reached */
}

/* Stage one audit record or checkpoint. */
static kb_err_t stage_audit(kb_router_t *r, const struct kb_audit_msg *am)
{
    return stage_put(r, am->topic, am->partition, am->key, am->key_len, am->value, am->len, NULL);
}

/* The audit record of one routing decision about input message @p m. */
static kb_err_t audit_decision(kb_router_t *r, const rd_kafka_message_t *m, int32_t schema_id,
                               enum kb_audit_outcome outcome, const char *detail,
                               const struct kb_audit_recipient *rcpt, size_t n_rcpt)
{
    if (!r->audit)
        return KB_OK;
    const struct kb_event_attrs *a = r->cur_attrs;
    struct kb_audit_decision d = {
        .input_topic = rd_kafka_topic_name(m->rkt),
        .input_partition = m->partition,
        .input_offset = m->offset,
        .event_id = a ? a->id : "",
        .event_type = a ? a->type : "",
        .event_time = a ? a->time : "",
        .subject = a ? a->subject : "",
        .schema_id = schema_id,
        .outcome = outcome,
        .detail = detail,
        .recipients = rcpt,
        .n_recipients = n_rcpt,
    };
    /* the low-level digest: EVP_Digest fetches and frees a context per call */
    kb_audit_sha256(m->payload ? m->payload : "", m->len, d.payload_sha256);
    struct kb_audit_msg am;
    char errstr[512];
    if (kb_audit_append(r->audit, &d, &am, errstr, sizeof errstr)) {
        KB_LOG_ERR(COMP, "audit record not made", "error=\"%s\"", errstr);
        return KB_ERR_STATE;
    }
    /* Series handles are looked up once: a lookup per event costs more
     * than the rest of the bookkeeping together. */
    kb_series_t **as = &r->audit_series[(unsigned)outcome & 7];
    if (!*as)
        *as = kb_metrics_series("kb_audit_records_total", kb_audit_outcome_name(outcome), NULL);
    kb_series_add(*as, 1);
    return stage_audit(r, &am);
}

/* Make the per-event arrays hold one entry per subscription in force. */
static int fanout_fit(kb_router_t *r)
{
    size_t need = r->subs.n ? r->subs.n : 1;
    if (r->fanout_cap >= need)
        return 0;
    const struct kb_sub **h = realloc(r->hits, need * sizeof *h);
    if (h)
        r->hits = h;
    const struct kb__sub_view **w = realloc(r->hit_views, need * sizeof *w);
    if (w)
        r->hit_views = w;
    struct kb_audit_recipient *a = realloc(r->rcpt, need * sizeof *a);
    if (a)
        r->rcpt = a;
    if (!h || !w || !a)
        return -1;
    r->fanout_cap = need;
    return 0;
}

/* Stage the subscriber's copy: its own key and ce_subject (pseudonyms
 * under its key; without ce_subject a keyed hash of the input's key) and,
 * when projected, its own value. Its headers are made
 * when it is produced (staged_msg.hdrs_from); their size counts here. */
static kb_err_t stage_view(kb_router_t *r, const rd_kafka_message_t *m,
                           const struct kb__sub_view *w, const void *value, size_t len,
                           const char *subject)
{
    char key[KB_PSEUDONYM_LEN + 1] = "";
    int pseud = subject && *subject;
    if (pseud)
        kb__sub_view_subject(w, subject, key);
    else if (m->key && m->key_len) /* never the input's key as it is */
        kb__sub_view_key(w, m->key, m->key_len, key);
    size_t key_len = key[0] ? strlen(key) : 0, size;
    if (view_size(r, m, pseud, key_len, len, &size))
        return KB_ERR_NOMEM;
    if (size > r->max_msg)
        return KB_ERR_INVALID; /* too large to produce: the caller dead-letters the event */
    kb_err_t err = stage_put(r, w->sub->topic, RD_KAFKA_PARTITION_UA,
                             key[0] ? (const void *)key : NULL, key_len, value, len, NULL);
    if (!err) {
        r->stage.msgs[r->stage.n - 1].hdrs_from = m;
        r->stage.msgs[r->stage.n - 1].pseud = pseud; /* its key is also its ce_subject */
    }
    return err;
}

static kb_err_t dead_letter_at(kb_router_t *r, const rd_kafka_message_t *m, const char *stage,
                               const char *rule, const char *reason, int32_t schema_id,
                               const char *path, int64_t byte_offset);

static kb_err_t dead_letter(kb_router_t *r, const rd_kafka_message_t *m, const char *stage,
                            const char *rule, const char *reason, int32_t schema_id)
{
    return dead_letter_at(r, m, stage, rule, reason, schema_id, NULL, -1);
}

static kb_err_t dead_letter_at(kb_router_t *r, const rd_kafka_message_t *m, const char *stage,
                               const char *rule, const char *reason, int32_t schema_id,
                               const char *path, int64_t byte_offset)
{
    char part[16], off[24], sid[16], boff[24];
    snprintf(boff, sizeof boff, "%" PRId64, byte_offset);
    snprintf(part, sizeof part, "%" PRId32, m->partition);
    snprintf(off, sizeof off, "%" PRId64, m->offset);
    snprintf(sid, sizeof sid, "%" PRId32, schema_id);
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct kb_header extra[] = {
        {"kb_stage", stage, strlen(stage)},
        {"kb_rule", rule, strlen(rule)},
        {"kb_error", reason, strlen(reason)},
        {"kb_topic", topic, strlen(topic)},
        {"kb_partition", part, strlen(part)},
        {"kb_offset", off, strlen(off)},
        {"kb_schema_id", sid, schema_id >= 0 ? strlen(sid) : 0},
        {"kb_field_path", path ? path : "", path ? strlen(path) : 0},
        {"kb_byte_offset", boff, byte_offset >= 0 ? strlen(boff) : 0},
        /* which group's decision this was (dead_lettered.h): several may
         * share the topic */
        {"kb_group", r->opts.group_id, strlen(r->opts.group_id)},
    };
    KB_LOG_WARN(COMP, "dead letter",
                "topic=%s partition=%" PRId32 " offset=%" PRId64 " stage=%s rule=%s "
                "reason=\"%s\"",
                topic, m->partition, m->offset, stage, rule, reason);
    atomic_fetch_add(&r->stats.dead_letters, 1);
    kb_err_t err = stage_copy(r, m, r->opts.dlq_topic, extra, sizeof extra / sizeof extra[0]);
    if (err)
        return err;
    kb_metrics_counter_add("kb_dead_letters_total", 1, r->opts.dlq_topic, stage, NULL);
    if (!strcmp(stage, "validate"))
        kb_metrics_counter_add("kb_validation_failures_total", 1, rule, NULL);
    char detail[160];
    snprintf(detail, sizeof detail, "%s/%s", stage, rule);
    return audit_decision(r, m, schema_id, KB_AUDIT_DEAD_LETTERED, detail, NULL, 0);
}

static void views_clear(kb_router_t *r)
{
    for (size_t i = 0; i < r->n_views; i++) {
        kb__sub_view_fini(r->views[i]);
        free(r->views[i]);
    }
    free(r->views);
    r->views = NULL;
    r->n_views = 0;
}

static void gates_clear(kb_router_t *r)
{
    free(r->gates);
    r->gates = NULL;
    r->n_gates = 0;
}

/* The source name of an input topic (<prefix>.in.<source>): a metrics label. */
static const char *source_of(const char *topic)
{
    const char *dot = strrchr(topic, '.');
    return dot ? dot + 1 : topic;
}

/* The gate of @p schema, compiled on first use; NULL only when out of memory
 * (a schema that does not compile has a gate with v == NULL). */
static struct gate *gate_of(kb_router_t *r, const struct kb_schema *schema)
{
    for (size_t i = 0; i < r->n_gates; i++)
        if (r->gates[i].schema_id == schema->id)
            return &r->gates[i];
    struct gate *ng = realloc(r->gates, (r->n_gates + 1) * sizeof *ng);
    if (!ng)
        return NULL;
    r->gates = ng;
    const char *why = NULL;
    const kb_validator_t *v = kb_schema_validator(schema, &why);
    if (!v && !why)
        return NULL; /* out of memory: the batch is retried */
    r->gates[r->n_gates] = (struct gate){.schema_id = schema->id, .v = v};
    return &r->gates[r->n_gates++];
}

/* Count an input event by source and type; @p g (or NULL) caches the series
 * of its schema's type for the last input topic. */
/* The type label of an event whose ce_type no registered schema vouches
 * for: the sender's text would make a new series (memory, /metrics) for
 * every value it cares to send. */
#define UNCHECKED_TYPE "unknown"

static void count_in(const char *topic, const char *type, struct gate *g)
{
    if (g && !strcmp(g->in_topic, topic)) {
        kb_series_add(g->in_series, 1);
        return;
    }
    kb_series_t *s = kb_metrics_series("kb_events_in_total", source_of(topic), type, NULL);
    if (g && strlen(topic) < sizeof g->in_topic) {
        strcpy(g->in_topic, topic);
        g->in_series = s;
    }
    kb_series_add(s, 1);
}

/* The view of @p sub on @p schema, built on first use. Views are held by
 * pointer: route_one keeps one across later view_of calls. */
static kb_err_t view_of(kb_router_t *r, const struct kb_sub *sub, const struct kb_schema *schema,
                        const kb_validator_t *v, const struct kb__sub_view **out, char *errstr,
                        size_t errstr_size)
{
    *out = NULL;
    for (size_t i = 0; i < r->n_views; i++)
        if (r->views[i]->sub == sub && r->views[i]->schema_id == schema->id) {
            *out = r->views[i];
            return KB_OK;
        }
    struct kb__sub_view **nv = realloc(r->views, (r->n_views + 1) * sizeof *nv);
    if (!nv)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    r->views = nv;
    struct kb__sub_view *w = malloc(sizeof *w);
    if (!w)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    kb_err_t err = kb__sub_view_init(w, sub, schema, v, r->opts.subject_key,
                                     r->opts.subject_key_len, errstr, errstr_size);
    if (err) {
        free(w);
        return err;
    }
    w->out_series = kb_metrics_series("kb_events_out_total", sub->name, schema->type, NULL);
    w->latency_series = kb_metrics_series("kb_e2e_latency_seconds", sub->name, NULL);
    if (w->pj)
        KB_LOG_INFO(COMP, "projection built", "subscriber=%s schema_id=%" PRId32
                    " projected_schema_id=%" PRId32, sub->name, schema->id, w->out_schema_id);
    r->views[r->n_views++] = w;
    *out = w;
    return KB_OK;
}

/* Route one input message into the stage. */
static kb_err_t route_one(kb_router_t *r, const rd_kafka_message_t *m)
{
    atomic_fetch_add(&r->stats.consumed, 1);
    char why[256];
    struct kb_gate_input in;
    const char *topic = rd_kafka_topic_name(m->rkt);
    r->in_hdrs.of = NULL; /* an earlier message may have had this address */
    enum kb_gate_step step = kb_gate_envelope(r->opts.schemas, m, &in, why, sizeof why);
    r->cur_attrs = step == KB_GATE_HEADERS ? NULL : &in.attrs;
    if (step != KB_GATE_PASSED) {
        if (step != KB_GATE_HEADERS)
            count_in(topic, UNCHECKED_TYPE, NULL);
        return dead_letter(r, m, kb_gate_stage(step), kb_gate_rule(step), why,
                           step >= KB_GATE_SCHEMA ? in.schema_id : -1);
    }
    const struct kb_schema *schema = in.schema;
    int32_t schema_id = in.schema_id;
    const uint8_t *payload = in.payload;
    size_t plen = in.plen;

    /* The gate: structure and meaning, before anything decodes the payload. */
    struct gate *g = gate_of(r, schema);
    if (!g)
        return KB_ERR_NOMEM;
    count_in(topic, in.attrs.type, g);
    const kb_validator_t *v = g->v;
    if (!v)
        return dead_letter(r, m, "validate", "schema-compile",
                           "the schema of this event does not compile into a validator",
                           schema_id);
    struct kb_validate_result vr;
    if (kb_validate(v, payload, plen, &vr) != KB_OK)
        return dead_letter_at(r, m, "validate", vr.rule, vr.message, schema_id, vr.path,
                              (int64_t)vr.offset);

    struct part_state *ps = part_find(r, topic, m->partition, 1);
    if (!ps)
        return KB_ERR_NOMEM;
    uint64_t idh = kb__idset_hash(in.attrs.id);
    size_t pi = (size_t)(ps - r->parts);
    if (kb__idset_contains(ps->ids, idh) || kb__pending_ids_contains(&r->pending, idh, pi)) {
        atomic_fetch_add(&r->stats.duplicates, 1);
        const void *from = NULL;
        size_t from_len = 0;
        rd_kafka_headers_t *h = NULL;
        if (!rd_kafka_message_headers(m, &h) &&
            !rd_kafka_header_get_last(h, "kb_redriven_from", &from, &from_len) && from) {
            /* An operator's redrive that did nothing deserves more than an
             * info line: this group routed the event already (a second
             * redrive, another group's letter), or its letter could not be
             * read back when the window was rebuilt (rebuild_take). The
             * header is the sender's bytes: shown escaped, as dlq list
             * shows headers. */
            char ref[1024];
            kb_dlq_printable(from, from_len, ref, sizeof ref);
            KB_LOG_WARN(COMP, "redriven dead letter dropped as a duplicate",
                        "event_id=%s topic=%s partition=%" PRId32 " offset=%" PRId64
                        " redriven_from=\"%s\"",
                        in.attrs.id, topic, m->partition, m->offset, ref);
        } else {
            KB_LOG_INFO(COMP, "duplicate dropped",
                        "event_id=%s topic=%s partition=%" PRId32 " offset=%" PRId64,
                        in.attrs.id, topic, m->partition, m->offset);
        }
        return audit_decision(r, m, schema_id, KB_AUDIT_DUPLICATE, NULL, NULL, 0);
    }

    int64_t time_ms = kb_gate_decision_time(&in.attrs);
    struct kb_payload_view pv = {schema, payload, plen, 0, 0, {0}, v};
    if (fanout_fit(r))
        return KB_ERR_NOMEM;
    const struct kb_sub **hits = r->hits;
    size_t nhits = kb_matcher_match(r->matcher, &in.attrs, time_ms, kb_payload_field, &pv, hits,
                                    r->subs.n);
    kb_payload_view_fini(&pv);
    if (pv.failed)
        return dead_letter(r, m, "decode", "avro-structure",
                           "payload does not decode with its schema", schema_id);
    if (nhits > r->subs.n) { /* cannot happen: one entry per subscription */
        KB_LOG_ERR(COMP, "more matches than subscriptions; router stops", "count=%zu",
                   r->subs.n);
        return KB_ERR_FATAL;
    }
    size_t fanout = 0;
    struct kb_audit_recipient *rcpt = r->rcpt;
    static const char *const all_fields[] = {"*"};
    /* The copies are staged one by one; if one cannot be made, the event is
     * dead-lettered and the copies made before it are unstaged: no
     * subscriber gets an event whose audit record does not name it. */
    const size_t mark_n = r->stage.n, mark_len = r->stage.len;
    for (size_t i = 0; i < nhits; i++) {
        char why2[512] = "";
        const struct kb__sub_view *w = NULL;
        kb_err_t verr = view_of(r, hits[i], schema, v, &w, why2, sizeof why2);
        if (verr == KB_ERR_NOMEM) { /* not the event's fault: the batch is routed again */
            stage_truncate(&r->stage, mark_n, mark_len);
            return verr;
        }
        if (verr) {
            /* A subscription whose fields do not fit this schema: its copy
             * cannot be made, and must not be made whole. */
            KB_LOG_ERR(COMP, "projection impossible", "subscriber=%s schema_id=%" PRId32
                       " error=\"%s\"", hits[i]->name, schema_id, why2);
            stage_truncate(&r->stage, mark_n, mark_len);
            return dead_letter(r, m, "project", "projection-build", why2, schema_id);
        }
        const void *value;
        size_t len;
        kb_err_t perr = kb__sub_view_value(w, m->payload, m->len, payload, plen, &r->bufs,
                                           &value, &len);
        if (perr == KB_ERR_NOMEM)
            return perr;
        if (perr) {
            stage_truncate(&r->stage, mark_n, mark_len);
            return dead_letter(r, m, "project", "projection-apply",
                               "the validated payload could not be projected", schema_id);
        }
        kb_err_t err = stage_view(r, m, w, value, len, in.attrs.subject);
        if (err == KB_ERR_INVALID) {
            stage_truncate(&r->stage, mark_n, mark_len);
            snprintf(why2, sizeof why2, "the copy for %s is larger than message.max.bytes (%zu)",
                     hits[i]->name, r->max_msg);
            return dead_letter(r, m, "size", "message-too-large", why2, schema_id);
        }
        if (err)
            return err;
        r->hit_views[fanout] = w;
        /* The trail says which fields each recipient got: its field list
         * with the pseudonymised ones marked (kb_sub.audit_fields), or "*"
         * for the whole event. */
        rcpt[fanout] = (struct kb_audit_recipient){
            hits[i]->name, hits[i]->purpose_id,
            hits[i]->n_audit_fields ? (const char *const *)hits[i]->audit_fields : all_fields,
            hits[i]->n_audit_fields ? hits[i]->n_audit_fields : 1};
        fanout++;
    }
    /* One clock reading serves every copy's latency: the copies are made
     * microseconds apart, and the clock is not free on every machine. */
    double latency_s = fanout ? (double)(kb_wall_ms() - time_ms) / 1000.0 : 0;
    for (size_t i = 0; i < fanout; i++) {
        kb_series_add(r->hit_views[i]->out_series, 1);
        kb_series_observe(r->hit_views[i]->latency_series, latency_s);
    }
    /* Only a routed event joins the window (invariant 3): a dead letter,
     * redriven with its own id once corrected, must be routed then. */
    if (kb__pending_ids_add(&r->pending, idh, pi))
        return KB_ERR_NOMEM; /* cannot happen: room for two whole batches */
    if (fanout)
        atomic_fetch_add(&r->stats.delivered, fanout);
    else {
        atomic_fetch_add(&r->stats.filtered, 1);
        kb_metrics_counter_add("kb_events_filtered_total", 1, source_of(topic), NULL);
    }
    kb_err_t aerr = audit_decision(r, m, schema_id, fanout ? KB_AUDIT_DELIVERED : KB_AUDIT_FILTERED,
                                   NULL, rcpt, fanout);
    if (aerr)
        return aerr;
    KB_LOG_DBG(COMP, "routed", "event_id=%s type=%s subscribers=%zu", in.attrs.id, in.attrs.type,
               fanout);
    return KB_OK;
}

/* Add each partition of @p batch with its first offset there, unless the
 * list has it already (from an earlier batch). */
static void add_first_offsets(rd_kafka_topic_partition_list_t *seek, rd_kafka_message_t **batch,
                              size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (batch[i]->err)
            continue;
        const char *topic = rd_kafka_topic_name(batch[i]->rkt);
        if (!rd_kafka_topic_partition_list_find(seek, topic, batch[i]->partition))
            rd_kafka_topic_partition_list_add(seek, topic, batch[i]->partition)->offset =
                batch[i]->offset;
    }
}

/* Seek every partition of batch @p a and of the batch @p b consumed after it
 * back to its first offset in them (invariant 4): b may hold partitions a
 * does not. */
static void rewind_batches(kb_router_t *r, rd_kafka_message_t **a, size_t na,
                           rd_kafka_message_t **b, size_t nb)
{
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new((int)(na + nb) + 1);
    add_first_offsets(seek, a, na);
    add_first_offsets(seek, b, nb);
    if (seek->cnt) {
        /* A partition not sought back would have its next batch commit
         * offsets past the events dropped here: the router stops instead,
         * and the next owner starts at the committed offsets. */
        rd_kafka_error_t *serr = rd_kafka_seek_partitions(r->consumer, seek, 10000);
        if (serr) {
            KB_LOG_ERR(COMP, "rewind failed; router stops", "error=\"%s\"",
                       rd_kafka_error_string(serr));
            rd_kafka_error_destroy(serr);
            r->fatal = 1;
        }
        for (int i = 0; !serr && i < seek->cnt; i++)
            if (seek->elems[i].err) {
                KB_LOG_ERR(COMP, "rewind failed; router stops",
                           "topic=%s partition=%" PRId32 " error=\"%s\"", seek->elems[i].topic,
                           seek->elems[i].partition, rd_kafka_err2str(seek->elems[i].err));
                r->fatal = 1;
            }
    }
    rd_kafka_topic_partition_list_destroy(seek);
}

static void messages_free(rd_kafka_message_t **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rd_kafka_message_destroy(msgs[i]);
}

/* Offsets to commit: one past the last message of each partition in the
 * batch. The list starts small and grows as partitions are added: sized by
 * the batch, it was a 30 KB allocation per transaction, and allocating and
 * freeing that made glibc consolidate its free lists every time (a tenth of
 * the router's CPU). */
static rd_kafka_topic_partition_list_t *batch_offsets(rd_kafka_message_t **batch, size_t n)
{
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < n; i++) {
        if (batch[i]->err)
            continue;
        const char *topic = rd_kafka_topic_name(batch[i]->rkt);
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(offs, topic, batch[i]->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(offs, topic, batch[i]->partition);
        p->offset = batch[i]->offset + 1;
    }
    return offs;
}

/* The committer thread: the broker round trips of one transaction. It
 * touches only the inflight record and the producer (invariant 6). */
static void *committer_main(void *arg)
{
    struct inflight *f = arg;
    int64_t t0 = kb_mono_ms();
    /* A retriable error (a timeout while a coordinator moves) leaves the
     * call going on in librdkafka; calling again waits for it, where an
     * abort would conflict with it. A few minutes, then the error stands
     * (inflight_finish stops the router: the state is unknown). */
    rd_kafka_error_t *e;
    for (int tries = 0;; tries++) {
        e = rd_kafka_send_offsets_to_transaction(f->producer, f->offs, f->cgmd, 30000);
        if (!e || !rd_kafka_error_is_retriable(e) || tries == TXN_RETRIES)
            break;
        rd_kafka_error_destroy(e);
    }
    for (int tries = 0; !e; tries++) {
        e = rd_kafka_commit_transaction(f->producer, 60000);
        if (!e || !rd_kafka_error_is_retriable(e) || tries == TXN_RETRIES)
            break;
        rd_kafka_error_destroy(e);
        e = NULL;
    }
    f->result = e;
    f->commit_ms = kb_mono_ms() - t0;
    atomic_store(&f->settled, 1);
    return NULL;
}

/* Abort the open transaction, again while librdkafka says the abort may
 * be retried. -1 when it did not abort: the transaction's state is then
 * unknown and the caller stops the router (a restart's init_transactions
 * settles it). */
static int abort_txn(kb_router_t *r)
{
    for (int tries = 0;; tries++) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(r->producer, 60000);
        if (!e)
            return 0;
        int again = rd_kafka_error_is_retriable(e) && tries < TXN_RETRIES;
        KB_LOG_ERR(COMP, "abort_transaction failed", "error=\"%s\" retry=%d",
                   rd_kafka_error_string(e), again);
        rd_kafka_error_destroy(e);
        if (!again)
            return -1;
    }
}

/*
 * Wait for the transaction in flight and settle it. Committed: its ids join
 * their partitions' windows and the audit chains advance to the mark.
 * Aborted: the transaction is aborted, the ids and appends routed since the
 * last commit are dropped, and with @p rewind both the batch in flight and
 * @p later (routed behind it, never produced) are sought back. Returns
 * KB_OK, KB_ERR_KAFKA (aborted and rewound) or KB_ERR_FATAL.
 */
static kb_err_t inflight_finish(kb_router_t *r, rd_kafka_message_t **later, size_t n_later,
                                int rewind)
{
    struct inflight *f = &r->inflight;
    int64_t t0 = kb_mono_ms();
    if (f->threaded)
        pthread_join(f->thread, NULL);
    f->active = 0;
    kb_metrics_observe("kb_route_transaction_seconds", (double)(kb_mono_ms() - t0) / 1000.0, "wait",
                       NULL);
    rd_kafka_topic_partition_list_destroy(f->offs);
    rd_kafka_consumer_group_metadata_destroy(f->cgmd);
    f->offs = NULL;
    f->cgmd = NULL;
    rd_kafka_error_t *txerr = f->result;
    f->result = NULL;
    kb_err_t result = KB_OK;
    if (!txerr) {
        if (r->audit)
            kb_audit_commit_mark(r->audit);
        for (size_t i = 0; i < f->n_ids; i++)
            kb__idset_add(r->parts[r->pending.parts[i]].ids, r->pending.ids[i]);
        kb__pending_ids_drop_front(&r->pending, f->n_ids);
        atomic_fetch_add(&r->stats.transactions, 1);
        kb_metrics_observe("kb_route_transaction_seconds", (double)f->commit_ms / 1000.0,
                           "commit", NULL);
    } else {
        /* Only an abortable error is aborted and routed again; any other
         * (fatal, fenced, or a commit still unsettled after its retries)
         * leaves the transaction's outcome unknown: stop, and let the next
         * owner start from what was committed. */
        int abortable = rd_kafka_error_txn_requires_abort(txerr);
        KB_LOG_ERR(COMP, "transaction failed", "error=\"%s\" fatal=%d abortable=%d",
                   rd_kafka_error_string(txerr), rd_kafka_error_is_fatal(txerr), abortable);
        rd_kafka_error_destroy(txerr);
        if (!abortable || abort_txn(r)) {
            result = KB_ERR_FATAL;
        } else {
            if (rewind)
                rewind_batches(r, f->msgs, f->n, later, n_later);
            result = KB_ERR_KAFKA;
        }
        if (r->audit)
            kb_audit_abort(r->audit);
        kb__pending_ids_clear(&r->pending);
        atomic_fetch_add(&r->stats.aborts, 1);
    }
    messages_free(f->msgs, f->n);
    f->n = 0;
    f->n_ids = 0;
    return result;
}

/* A routed batch that will not be produced (routing or producing failed, or
 * the batch before it aborted and rewound it already): drop its stage, its
 * appends and ids, and unless done already, seek back to it. */
static void routed_drop(kb_router_t *r, rd_kafka_message_t **batch, size_t n, int rewind)
{
    stage_discard(&r->stage);
    if (r->audit)
        kb_audit_abort(r->audit);
    kb__pending_ids_clear(&r->pending);
    if (rewind)
        rewind_batches(r, batch, n, NULL, 0);
    messages_free(batch, n);
}

/* Route one batch into the stage, checkpoints due included. The number of
 * messages routed (not consumer errors) in *@p routed. */
static kb_err_t route_batch(kb_router_t *r, rd_kafka_message_t **batch, size_t n, size_t *routed)
{
    kb_err_t err = KB_OK;
    *routed = 0;
    for (size_t i = 0; i < n && !err; i++) {
        if (batch[i]->err) {
            if (batch[i]->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                KB_LOG_WARN(COMP, "consumer error", "error=\"%s\"",
                            rd_kafka_message_errstr(batch[i]));
            continue;
        }
        err = route_one(r, batch[i]);
        (*routed)++;
    }
    /* Checkpoints due are signed over the chain heads of this batch and
     * travel in the same transaction. */
    for (int more = 1; !err && *routed && r->audit && more;) {
        struct kb_audit_msg cps[16];
        size_t k = kb_audit_checkpoints(r->audit, cps, 16);
        for (size_t i = 0; i < k && !err; i++)
            err = stage_audit(r, &cps[i]);
        more = k == 16;
    }
    return err;
}

/* Open a transaction, produce the routed batch and hand the commit to the
 * committer thread; the batch (array and messages) becomes the inflight
 * one. On failure the batch is dropped and rewound (the caller's array
 * stays its own). */
static kb_err_t hand_off(kb_router_t *r, rd_kafka_message_t ***batch, size_t n)
{
    struct inflight *f = &r->inflight;
    if (r->audit)
        kb_audit_mark(r->audit);
    rd_kafka_error_t *txerr = rd_kafka_begin_transaction(r->producer);
    if (txerr) {
        /* Retrying a begin that failed for any other reason than an
         * abortable state would fail the same way forever. */
        int abortable = rd_kafka_error_txn_requires_abort(txerr);
        KB_LOG_ERR(COMP, "begin_transaction failed", "error=\"%s\" abortable=%d",
                   rd_kafka_error_string(txerr), abortable);
        rd_kafka_error_destroy(txerr);
        routed_drop(r, *batch, n, 1);
        atomic_fetch_add(&r->stats.aborts, 1);
        return abortable && !abort_txn(r) ? KB_ERR_KAFKA : KB_ERR_FATAL;
    }
    int64_t t0 = kb_mono_ms();
    kb_err_t err = stage_produce(r);
    if (err) {
        int aborted = !abort_txn(r);
        routed_drop(r, *batch, n, 1);
        atomic_fetch_add(&r->stats.aborts, 1);
        return aborted ? KB_ERR_KAFKA : KB_ERR_FATAL;
    }
    kb_metrics_observe("kb_route_transaction_seconds", (double)(kb_mono_ms() - t0) / 1000.0,
                       "produce", NULL);
    f->producer = r->producer;
    f->offs = batch_offsets(*batch, n);
    f->cgmd = rd_kafka_consumer_group_metadata(r->consumer);
    f->result = NULL;
    atomic_store(&f->settled, 0);
    f->n_ids = r->pending.n;
    rd_kafka_message_t **spare = f->msgs;
    f->msgs = *batch;
    f->n = n;
    *batch = spare;
    f->active = 1;
    f->threaded = pthread_create(&f->thread, NULL, committer_main, f) == 0;
    if (!f->threaded) {
        /* No thread to spare: commit here, without the overlap; settled at
         * the next join like any other. */
        KB_LOG_WARN(COMP, "no committer thread; committing in the router thread", "%s", "");
        committer_main(f);
    }
    return KB_OK;
}

kb_err_t kb_router_run(kb_router_t *r, atomic_int *stop)
{
    rd_kafka_message_t **batch = calloc((size_t)r->opts.batch_max, sizeof *batch);
    r->inflight.msgs = calloc((size_t)r->opts.batch_max, sizeof *r->inflight.msgs);
    if (!batch || !r->inflight.msgs) {
        free(batch);
        return KB_ERR_NOMEM;
    }
    kb_err_t result = KB_OK;
    while (!atomic_load(stop)) {
        size_t n = 0;
        int64_t deadline = 0;
        /* An idle input still comes back here every half second, so the
         * subscription files are looked at without traffic too. */
        int64_t idle_until = kb_mono_ms() + 500;
        uint64_t epoch = r->rebalances;
        while (n < (size_t)r->opts.batch_max && !atomic_load(stop)) {
            int64_t left = (n ? deadline : idle_until) - kb_mono_ms();
            if (left <= 0)
                break;
            int wait = n ? (int)left : (int)(left < 100 ? left : 100);
            /* Group commit: once nothing is in flight (or it has just
             * committed), the batch need not wait for its timer. Take what
             * the local queue holds and go, so that an event waits about
             * one commit, not the timer and then a commit. While a commit
             * runs, look every 5 ms whether it ended. */
            int early = n && (!r->inflight.active || atomic_load(&r->inflight.settled));
            if (early)
                wait = 0;
            else if (r->inflight.active && wait > 5)
                wait = 5;
            rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, wait);
            if (r->rebalances != epoch) {
                /* A rebalance ran inside that poll (and settled the
                 * transaction in flight). What was collected before it
                 * belongs to the old assignment: the new one (even of the
                 * same partitions) starts again at the committed offsets,
                 * so routing it now would decide those messages twice.
                 * librdkafka returns only messages of the current
                 * assignment after the callback, so m is kept. */
                if (n)
                    KB_LOG_INFO(COMP, "batch dropped after a rebalance", "messages=%zu", n);
                messages_free(batch, n);
                n = 0;
                epoch = r->rebalances;
            }
            if (!m) {
                if (early)
                    break;
                continue;
            }
            if (!n)
                deadline = kb_mono_ms() + r->opts.batch_ms;
            batch[n++] = m;
        }
        if (r->fatal) {
            messages_free(batch, n);
            result = KB_ERR_FATAL;
            break;
        }
        if (!n) {
            /* Idle: settle the transaction in flight before looking at the
             * files (a reload may create topics with the producer). */
            if (r->inflight.active && inflight_finish(r, NULL, 0, 1) == KB_ERR_FATAL) {
                result = KB_ERR_FATAL;
                break;
            }
            maybe_reload(r, kb_mono_ms());
            continue;
        }
        /* Route batch N+1 while N commits. */
        int64_t t0 = kb_mono_ms();
        size_t routed = 0;
        kb_err_t err = route_batch(r, batch, n, &routed);
        int64_t route_ms = kb_mono_ms() - t0;
        if (r->inflight.active) {
            kb_err_t ferr = inflight_finish(r, batch, n, 1);
            if (ferr) {
                /* N aborted and both batches were rewound. */
                routed_drop(r, batch, n, 0);
                if (ferr == KB_ERR_FATAL) {
                    result = KB_ERR_FATAL;
                    break;
                }
                continue;
            }
        }
        if (err) {
            routed_drop(r, batch, n, 1);
            atomic_fetch_add(&r->stats.aborts, 1);
            if (err == KB_ERR_FATAL) {
                result = KB_ERR_FATAL;
                break;
            }
            continue;
        }
        maybe_reload(r, kb_mono_ms());
        if (!routed) { /* consumer errors only: nothing to commit */
            messages_free(batch, n);
            continue;
        }
        err = hand_off(r, &batch, n);
        /* Timed per transaction handed off, so that route, produce and
         * commit (once settled) count the same transactions. */
        if (!err)
            kb_metrics_observe("kb_route_transaction_seconds", (double)route_ms / 1000.0, "route",
                               NULL);
        if (err == KB_ERR_FATAL || r->fatal) {
            KB_LOG_ERR(COMP, "router stops", "reason=%s", "fatal-kafka-error");
            result = KB_ERR_FATAL;
            break;
        }
    }
    /* Stopping: the last transaction settles (committed, or aborted and left
     * for the next owner at the committed offsets). */
    if (r->inflight.active && inflight_finish(r, NULL, 0, 0) == KB_ERR_FATAL)
        result = KB_ERR_FATAL;
    free(batch);
    free(r->inflight.msgs);
    r->inflight.msgs = NULL;
    return result;
}

const struct kb_route_stats *kb_router_stats(const kb_router_t *r)
{
    return &r->stats;
}

void kb_router_destroy(kb_router_t *r)
{
    if (!r)
        return;
    if (r->consumer) {
        rd_kafka_consumer_close(r->consumer);
        rd_kafka_destroy(r->consumer);
    }
    if (r->audit_rkt)
        rd_kafka_topic_destroy(r->audit_rkt);
    kb__topic_handles_destroy(r->topics);
    if (r->producer)
        rd_kafka_destroy(r->producer);
    parts_clear(r);
    views_clear(r);
    kb__sub_view_bufs_fini(&r->bufs);
    gates_clear(r);
    kb_audit_destroy(r->audit);
    kb_matcher_destroy(r->matcher);
    kb_follow_topics_destroy(r->follows);
    kb_subs_fini(&r->subs);
    kb__pending_ids_fini(&r->pending);
    kb__in_headers_fini(&r->in_hdrs);
    stage_discard(&r->stage);
    free(r->stage.msgs);
    free(r->stage.buf);
    free(r->hits);
    free(r->hit_views);
    free(r->rcpt);
    free(r);
}
