/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * replay.c - re-delivery from the audit trail (see ketenbus/replay.h).
 *
 *     PLAN  (read the trail: DELIVERED records for the subscriber)
 *       --> FETCH per input partition, in offset order (assign/seek)
 *       --> CHECK each event (hash, retention, validity, recorded fields,
 *           entitlement under the subscription as it is now)
 *       --> DELIVER in transactions of batch_max events or 5 s, each copy
 *           with its REPLAYED audit record in the same transaction
 *
 * Invariants:
 *  1. A copy is produced only when the event's value has the SHA-256 the
 *     trail recorded, so what is replayed is what was delivered.
 *  2. A copy carries exactly the fields the trail says the subscriber got
 *     (refused otherwise), made by the router's own code (sub_view).
 *  2a. A copy goes only to a subscriber that is still entitled to it: the
 *     subscription as it is now (types, filter, validity, follow list) must
 *     select the event at its own time and still be in force, and follow
 *     its subject, at the time of the replay. A replay is a new delivery.
 *  3. Copies and their audit records commit together or not at all, and the
 *     replay chain has one writer (transactional id fencing).
 *  4. Per input partition the copies keep the original order (per person).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ketenbus/clock.h"
#include "ketenbus/gate.h"
#include "ketenbus/audit.h"
#include "ketenbus/event.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"
#include "match.h"
#include "ketenbus/replay.h"
#include "ketenbus/validate.h"
#include "sub_view.h"

#define COMP "replay"
#define SEEK_GAP 1000        /* further than this ahead: seek instead of reading through */
#define BATCH_MS 5000        /* longest open transaction (well inside transaction.timeout.ms) */
#define FETCH_TIMEOUT_MS 30000

const char *kb_replay_refusal_name(int why)
{
    switch (why) {
    case KB_REPLAY_ALTERED: return "altered";
    case KB_REPLAY_GONE: return "gone";
    case KB_REPLAY_INVALID: return "invalid";
    case KB_REPLAY_FIELDS_CHANGED: return "fields-changed";
    case KB_REPLAY_NOT_ENTITLED: return "not-entitled";
    default: return "unknown";
    }
}

void kb_replay_chain_topic(char *out, size_t out_size)
{
    kb_topic_name(out, out_size, "replay");
}

/* One delivery the trail names, copied out of its record. */
struct item {
    char *topic;
    int32_t partition;
    int64_t offset;
    uint8_t sha256[KB_AUDIT_HASH_LEN];
    char *event_id, *event_type;
    int64_t recorded_ms;       /* when the router recorded the delivery */
    char *fields;              /* the recorded field paths, sorted, '\n'-joined ("*" = all) */
};

struct plan {
    struct item *items;
    size_t n, cap;
    const char *subscriber;
    int nomem;
};

/* Compiled gate and view per schema id, made on first use. */
struct schema_state {
    int32_t schema_id;
    const kb_validator_t *v; /* kb_schema_validator()'s; NULL: does not compile */
    struct kb__sub_view view;
    int view_ok;
};

struct replay {
    const struct kb_replay_opts *o;
    struct kb_replay_result *res;
    const struct kb_sub *sub;
    char *current_fields;      /* the subscription's fields, sorted, '\n'-joined */
    kb_matcher_t *matcher;     /* the subscriptions in force, as the router indexes them */
    const struct kb_sub **hits; /* one slot per subscription */
    rd_kafka_t *consumer;
    rd_kafka_t *producer;      /* transactional; NULL in a dry run */
    rd_kafka_topic_t *audit_rkt; /* producer's audit topic handle: holds the trail's codec */
    kb_audit_t *audit;
    char chain_topic[200];
    struct schema_state *states;
    size_t n_states;
    struct kb__sub_view_bufs bufs;
    size_t in_txn;             /* copies in the open transaction */
    int64_t txn_started_ms;
    uint64_t done;             /* items handled (replayed or refused) */
    struct timespec t0;
    char detail_head[400];     /* "replay <id> by <who>: <reason>" */
};

static char *str_dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, '\n'-joined copy of @p n strings ("*" when @p n is 0), so field
 * lists compare equal whatever order the file or the record used. */
static char *join_sorted(char **list, size_t n)
{
    if (!n)
        return strdup("*");
    char **tmp = malloc(n * sizeof *tmp);
    if (!tmp)
        return NULL;
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        tmp[i] = list[i];
        total += strlen(list[i]) + 1;
    }
    qsort(tmp, n, sizeof *tmp, cmp_str);
    char *out = malloc(total), *w = out;
    if (out) {
        for (size_t i = 0; i < n; i++) {
            size_t l = strlen(tmp[i]);
            memcpy(w, tmp[i], l);
            w += l;
            *w++ = i + 1 < n ? '\n' : '\0';
        }
    }
    free(tmp);
    return out;
}

/* The recorded field list of the subscriber's recipient entry. */
static char *recorded_fields(const struct kb_audit_rcpt_view *rv)
{
    /* fields and pseudonymise entries, each at most KB_SUB_LIST_MAX */
    char *list[2 * KB_SUB_LIST_MAX];
    size_t n = 0;
    struct kb_audit_iter it;
    struct kb_audit_str f;
    char *out = NULL;
    kb_audit_field_iter(rv, &it);
    while (n < 2 * KB_SUB_LIST_MAX && kb_audit_field_next(&it, &f)) {
        if (!(list[n] = str_dup_n(f.ptr, f.len)))
            goto out;
        n++;
    }
    /* The router writes "*" for "every field", which join_sorted spells the same. */
    if (n == 1 && !strcmp(list[0], "*"))
        out = strdup("*");
    else
        out = join_sorted(list, n);
out:
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    return out;
}

static int plan_one(void *opaque, const struct kb_audit_record *rec, int32_t audit_partition,
                    int64_t audit_offset)
{
    (void)audit_partition;
    (void)audit_offset;
    struct plan *p = opaque;
    struct kb_audit_iter it;
    struct kb_audit_rcpt_view rv;
    kb_audit_rcpt_iter(rec, &it);
    while (kb_audit_rcpt_next(&it, &rv)) {
        if (rv.subscriber.len != strlen(p->subscriber) ||
            memcmp(rv.subscriber.ptr, p->subscriber, rv.subscriber.len))
            continue;
        if (p->n == p->cap) {
            size_t ncap = p->cap ? p->cap * 2 : 256;
            struct item *ni = realloc(p->items, ncap * sizeof *ni);
            if (!ni) {
                p->nomem = 1;
                return 1;
            }
            p->items = ni;
            p->cap = ncap;
        }
        struct item *x = &p->items[p->n];
        memset(x, 0, sizeof *x);
        x->topic = str_dup_n(rec->input_topic.ptr, rec->input_topic.len);
        x->partition = rec->input_partition;
        x->offset = rec->input_offset;
        memcpy(x->sha256, rec->payload_sha256, KB_AUDIT_HASH_LEN);
        x->event_id = str_dup_n(rec->event_id.ptr, rec->event_id.len);
        x->event_type = str_dup_n(rec->event_type.ptr, rec->event_type.len);
        x->recorded_ms = rec->recorded_at;
        x->fields = recorded_fields(&rv);
        p->n++;
        if (!x->topic || !x->event_id || !x->event_type || !x->fields) {
            p->nomem = 1;
            return 1;
        }
        break;
    }
    return 0;
}

static void item_fini(struct item *x)
{
    free(x->topic);
    free(x->event_id);
    free(x->event_type);
    free(x->fields);
}

static int cmp_item(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c)
        return c;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static double elapsed_s(const struct replay *rp)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - rp->t0.tv_sec) + (double)(t.tv_nsec - rp->t0.tv_nsec) / 1e9;
}

static kb_err_t txn_commit(struct replay *rp, char *errstr, size_t errstr_size);

/* One item handled: progress, then hold the pace the rate option asks. An
 * open transaction is committed first when it is BATCH_MS old, or would be
 * by the end of the pause: Kafka aborts a transaction left open for
 * transaction.timeout.ms (60 s), and --rate 0.01 pauses 100 s per copy, as
 * a long run of refused items can. */
static kb_err_t step(struct replay *rp, char *errstr, size_t errstr_size)
{
    rp->done++;
    double el = elapsed_s(rp);
    if (rp->o->progress)
        rp->o->progress(rp->o->opaque, rp->done, rp->res->planned, el);
    double ahead = rp->o->rate > 0 ? (double)rp->done / rp->o->rate - el : 0;
    int64_t pause_ms = ahead > 0 ? (int64_t)(ahead * 1000) : 0;
    if (rp->in_txn && kb_wall_ms() - rp->txn_started_ms + pause_ms >= BATCH_MS) {
        kb_err_t err = txn_commit(rp, errstr, errstr_size);
        if (err)
            return err;
    }
    if (ahead > 0) {
        struct timespec ts = {(time_t)ahead, (long)((ahead - (double)(time_t)ahead) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return KB_OK;
}

static kb_err_t refuse(struct replay *rp, const struct item *x, int why, const char *detail,
                       char *errstr, size_t errstr_size)
{
    rp->res->refused[why]++;
    struct kb_replay_item it = {x->topic, x->partition, x->offset, x->event_id, x->event_type};
    KB_LOG_WARN(COMP, "event not replayed",
                "replay_id=%s topic=%s partition=%" PRId32 " offset=%" PRId64 " event_id=%s "
                "reason=%s detail=\"%s\"",
                rp->res->replay_id, x->topic, x->partition, x->offset, x->event_id,
                kb_replay_refusal_name(why), detail);
    kb_metrics_counter_add("kb_replay_refused_total", 1, kb_replay_refusal_name(why), NULL);
    if (rp->o->refused)
        rp->o->refused(rp->o->opaque, &it, why, detail);
    return step(rp, errstr, errstr_size);
}

static struct schema_state *state_of(struct replay *rp, const struct kb_schema *schema,
                                     char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < rp->n_states; i++)
        if (rp->states[i].schema_id == schema->id)
            return &rp->states[i];
    struct schema_state *ns = realloc(rp->states, (rp->n_states + 1) * sizeof *ns);
    if (!ns)
        return NULL;
    rp->states = ns;
    struct schema_state *st = &ns[rp->n_states];
    memset(st, 0, sizeof *st);
    st->schema_id = schema->id;
    const char *why = NULL;
    st->v = kb_schema_validator(schema, &why);
    if (!st->v)
        snprintf(errstr, errstr_size, "%s", why ? why : "out of memory");
    if (st->v && !kb__sub_view_init(&st->view, rp->sub, schema, st->v, rp->o->subject_key,
                                    rp->o->subject_key_len, errstr, errstr_size))
        st->view_ok = 1;
    rp->n_states++;
    return st;
}

static kb_err_t txn_begin(struct replay *rp)
{
    if (!rp->producer || rp->in_txn)
        return KB_OK;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(rp->producer);
    if (e) {
        KB_LOG_ERR(COMP, "begin_transaction failed", "error=\"%s\"", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return KB_ERR_KAFKA;
    }
    rp->txn_started_ms = kb_wall_ms();
    return KB_OK;
}

static kb_err_t produce_audit(struct replay *rp, const struct kb_audit_msg *am)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rp->producer, RD_KAFKA_V_TOPIC(am->topic), RD_KAFKA_V_PARTITION(am->partition),
        RD_KAFKA_V_KEY(am->key, am->key_len), RD_KAFKA_V_VALUE((void *)am->value, am->len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    return err ? kb_kafka_err(err) : KB_OK;
}

/* Commit the open transaction (with the replay chain's due checkpoints). */
static kb_err_t txn_commit(struct replay *rp, char *errstr, size_t errstr_size)
{
    if (!rp->producer || !rp->in_txn)
        return KB_OK;
    struct kb_audit_msg cps[4];
    size_t ncp = kb_audit_checkpoints(rp->audit, cps, 4);
    for (size_t i = 0; i < ncp; i++)
        if (produce_audit(rp, &cps[i]))
            return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "audit checkpoint not produced");
    /* A retriable error (a timeout) leaves the commit going on in librdkafka:
     * call again to learn how it ended, a few times. */
    rd_kafka_error_t *e = rd_kafka_commit_transaction(rp->producer, 60000);
    for (int tries = 0; e && rd_kafka_error_is_retriable(e) && tries < 5; tries++) {
        rd_kafka_error_destroy(e);
        e = rd_kafka_commit_transaction(rp->producer, 60000);
    }
    if (e) {
        /* Aborted: the copies were not delivered. Otherwise the outcome is
         * unknown, and a second replay could deliver them twice. */
        int aborted = 0;
        if (rd_kafka_error_txn_requires_abort(e)) {
            rd_kafka_error_t *ae = rd_kafka_abort_transaction(rp->producer, 60000);
            aborted = !ae;
            if (ae)
                rd_kafka_error_destroy(ae);
        }
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                   "commit_transaction: %s (the %zu copies of this transaction %s; %" PRIu64
                   " committed before)",
                   rd_kafka_error_string(e), rp->in_txn,
                   aborted ? "were not delivered"
                           : "may or may not have been delivered: check the subscriber "
                             "topics (read_committed) before replaying again",
                   rp->res->replayed - rp->in_txn);
        rd_kafka_error_destroy(e);
        rp->res->replayed -= rp->in_txn;
        rp->in_txn = 0;
        kb_audit_abort(rp->audit);
        return KB_ERR_KAFKA;
    }
    kb_audit_commit(rp->audit);
    kb_metrics_counter_add("kb_replayed_total", (double)rp->in_txn, rp->sub->name, NULL);
    rp->in_txn = 0;
    return KB_OK;
}

/* entitlement()'s answer for a payload that field filters cannot read. */
static const char UNDECODABLE[] = "the payload does not decode for the subscription's filter";

/* Whether the subscription as it is now selects @p in (matched as the
 * router does, field filters read from the validated bytes) at @p at_ms. */
static int selects(struct replay *rp, const struct kb_gate_input *in, const struct schema_state *st,
                   int64_t at_ms, int *undecodable)
{
    struct kb_payload_view pv = {in->schema, in->payload, in->plen, 0, 0, {0}, st->v};
    size_t n = kb_matcher_match(rp->matcher, &in->attrs, at_ms, kb_payload_field, &pv, rp->hits,
                                rp->o->subs->n);
    kb_payload_view_fini(&pv);
    *undecodable |= pv.failed;
    for (size_t i = 0; i < n && i < rp->o->subs->n; i++)
        if (rp->hits[i] == rp->sub)
            return 1;
    return 0;
}

/*
 * NULL when the subscriber may have the event again, else why not. The
 * trail says it was entitled then, under the subscription of that day; a
 * replay is a delivery made now, so it must also hold under the
 * subscription as it is now: its types, filter, validity and follow list
 * must select the event at the event's own time (as the router judged it:
 * ce_time, or when it was recorded), and the subscription must be in force,
 * and still follow the subject, today.
 */
static const char *entitlement(struct replay *rp, const struct item *x,
                               const struct kb_gate_input *in, const struct schema_state *st)
{
    int undecodable = 0;
    int64_t then = in->attrs.time[0] ? kb_gate_decision_time(&in->attrs) : x->recorded_ms;
    int ok_then = selects(rp, in, st, then, &undecodable);
    if (undecodable)
        return UNDECODABLE;
    if (!ok_then)
        return "the subscription as it is now does not select this event (its types, filter, "
               "validity or follow list changed since the delivery)";
    if (!selects(rp, in, st, kb_wall_ms(), &undecodable))
        return "the subscription is not in force now, or no longer follows this subject";
    return NULL;
}

/* Check one fetched original and, unless refused, deliver its copy. */
static kb_err_t handle(struct replay *rp, const struct item *x, const rd_kafka_message_t *m,
                       char *errstr, size_t errstr_size)
{
    uint8_t sha[KB_AUDIT_HASH_LEN];
    kb_audit_sha256(m->payload ? m->payload : "", m->len, sha);
    if (memcmp(sha, x->sha256, sizeof sha)) {
        return refuse(rp, x, KB_REPLAY_ALTERED,
                      "the value's SHA-256 is not the one the audit trail recorded", errstr,
                      errstr_size);
    }
    /* The router's own gate: the trail says it passed, so anything else
     * means the input is not what was routed. */
    char why[512];
    struct kb_gate_input in;
    if (kb_gate_envelope(rp->o->schemas, m, &in, why, sizeof why) != KB_GATE_PASSED) {
        return refuse(rp, x, KB_REPLAY_INVALID, why, errstr, errstr_size);
    }
    const struct kb_event_attrs *attrs = &in.attrs;
    const struct kb_schema *schema = in.schema;
    const uint8_t *payload = in.payload;
    size_t plen = in.plen;
    if (strcmp(x->fields, rp->current_fields)) {
        return refuse(rp, x, KB_REPLAY_FIELDS_CHANGED,
                      "the subscription's fields differ from those the trail recorded for "
                      "this delivery",
                      errstr, errstr_size);
    }
    struct schema_state *st = state_of(rp, schema, why, sizeof why);
    if (!st)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    struct kb_validate_result vr;
    if (!st->v || kb_validate(st->v, payload, plen, &vr) != KB_OK) {
        return refuse(rp, x, KB_REPLAY_INVALID, st->v ? vr.message : "schema does not compile",
                      errstr, errstr_size);
    }
    if (!st->view_ok) {
        return refuse(rp, x, KB_REPLAY_FIELDS_CHANGED,
                      "the subscription's fields do not fit the schema", errstr, errstr_size);
    }
    const char *not_entitled = entitlement(rp, x, &in, st);
    if (not_entitled)
        return refuse(rp, x,
                      not_entitled == UNDECODABLE ? KB_REPLAY_INVALID : KB_REPLAY_NOT_ENTITLED,
                      not_entitled, errstr, errstr_size);
    const void *value;
    size_t len;
    kb_err_t perr = kb__sub_view_value(&st->view, m->payload, m->len, payload, plen, &rp->bufs,
                                       &value, &len);
    if (perr == KB_ERR_NOMEM)
        return kb_err_set(perr, errstr, errstr_size, "out of memory");
    if (perr) {
        return refuse(rp, x, KB_REPLAY_INVALID, "the payload does not project", errstr,
                      errstr_size);
    }
    rp->res->replayed++;
    if (!rp->producer)
        return step(rp, errstr, errstr_size);

    /* The copy: the router's, with its own id (a replay is a new delivery)
     * and the original id beside it for consumers that deduplicate. */
    char name[200], new_id[37], key[KB_PSEUDONYM_LEN + 1] = "";
    int nl = snprintf(name, sizeof name, "ketenbus-replay:%s:%s", rp->res->replay_id, attrs->id);
    kb_event_uuid5(name, (size_t)nl, new_id);
    if (attrs->subject[0])
        kb__sub_view_subject(&st->view, attrs->subject, key);
    else if (m->key && m->key_len) /* as the router: never the input's key as it is */
        kb__sub_view_key(&st->view, m->key, m->key_len, key);
    struct kb_header set[] = {
        {"ce_id", new_id, strlen(new_id)},
        {"kb_replay_id", rp->res->replay_id, strlen(rp->res->replay_id)},
        {"kb_original_event_id", attrs->id, strlen(attrs->id)},
    };
    kb_err_t err = txn_begin(rp);
    if (err)
        return kb_err_set(err, errstr, errstr_size, "cannot begin a transaction");
    rp->in_txn++;
    rd_kafka_headers_t *h = kb__sub_view_headers(m, attrs->subject[0] ? key : NULL, set,
                                                 sizeof set / sizeof set[0]);
    if (!h)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory for headers");
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        rp->producer, RD_KAFKA_V_TOPIC(rp->sub->topic),
        RD_KAFKA_V_KEY((key[0] ? (const void *)key : NULL), strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (kerr) {
        rd_kafka_headers_destroy(h);
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "produce to %s: %s",
                          rp->sub->topic, rd_kafka_err2str(kerr));
    }

    /* Its audit record: the original's identity and hash, who and why. */
    char detail[600];
    snprintf(detail, sizeof detail, "%s; original %s/%" PRId32 "@%" PRId64, rp->detail_head,
             x->topic, x->partition, x->offset);
    static const char *const all_fields[] = {"*"};
    struct kb_audit_recipient rcpt = {
        rp->sub->name, rp->sub->purpose_id,
        rp->sub->n_fields ? (const char *const *)rp->sub->fields : all_fields,
        rp->sub->n_fields ? rp->sub->n_fields : 1};
    struct kb_audit_decision d = {
        .input_topic = rp->chain_topic,
        .input_partition = 0,
        .input_offset = x->offset,
        .event_id = attrs->id,
        .event_type = attrs->type,
        .event_time = attrs->time,
        .subject = attrs->subject,
        .schema_id = in.schema_id,
        .outcome = KB_AUDIT_REPLAYED,
        .detail = detail,
        .recipients = &rcpt,
        .n_recipients = 1,
    };
    memcpy(d.payload_sha256, sha, sizeof sha);
    struct kb_audit_msg am;
    if (kb_audit_append(rp->audit, &d, &am, errstr, errstr_size))
        return KB_ERR_STATE;
    if (produce_audit(rp, &am))
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "audit record not produced");
    kb_metrics_counter_add("kb_audit_records_total", 1, "replayed", NULL);
    if ((err = step(rp, errstr, errstr_size)))
        return err;
    if (rp->in_txn >= (size_t)(rp->o->batch_max > 0 ? rp->o->batch_max : 200))
        return txn_commit(rp, errstr, errstr_size);
    return KB_OK;
}

static kb_err_t assign_at(struct replay *rp, const char *topic, int32_t partition, int64_t offset,
                          char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, topic, partition)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_assign(rp->consumer, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (err)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "assign %s/%" PRId32 ": %s", topic,
                          partition, rd_kafka_err2str(err));
    return KB_OK;
}

/* Items [from, to) share one input partition, in offset order. */
static kb_err_t replay_partition(struct replay *rp, struct item *items, size_t from, size_t to,
                                 atomic_int *stop, char *errstr, size_t errstr_size)
{
    const char *topic = items[from].topic;
    int32_t partition = items[from].partition;
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t werr =
        rd_kafka_query_watermark_offsets(rp->consumer, topic, partition, &lo, &hi, 15000);
    if (werr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        kb_err_t err = KB_OK;
        for (size_t k = from; k < to && !err; k++)
            err = refuse(rp, &items[k], KB_REPLAY_GONE,
                         "the input topic or partition no longer exists", errstr, errstr_size);
        return err;
    }
    if (werr)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "watermarks of %s/%" PRId32 ": %s",
                          topic, partition, rd_kafka_err2str(werr));
    rd_kafka_message_t *pending = NULL; /* read but not yet needed */
    int64_t next = -1;                  /* offset the consumer reads next; -1 unassigned */
    int eof = 0;
    kb_err_t err = KB_OK;
    for (size_t k = from; k < to && !err; k++) {
        if (stop && atomic_load(stop)) {
            err = kb_err_set(KB_ERR_STATE, errstr, errstr_size, "stopped");
            break;
        }
        struct item *x = &items[k];
        if (k > from && x->offset == items[k - 1].offset)
            continue; /* the trail named it twice: replay once */
        if (x->offset < lo || x->offset >= hi) {
            err = refuse(rp, x, KB_REPLAY_GONE,
                         x->offset < lo ? "deleted from the input topic by retention"
                                        : "beyond the end of the input topic",
                         errstr, errstr_size);
            continue;
        }
        if (pending && pending->offset < x->offset) {
            rd_kafka_message_destroy(pending);
            pending = NULL;
        }
        if (!pending) {
            if (next < 0 || x->offset < next || x->offset - next > SEEK_GAP) {
                if ((err = assign_at(rp, topic, partition, x->offset, errstr, errstr_size)))
                    break;
                next = x->offset;
                eof = 0;
            }
            int64_t waited = 0;
            while (!pending && !eof) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rp->consumer, 500);
                if (!m) {
                    if ((waited += 500) >= FETCH_TIMEOUT_MS) {
                        err = kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size,
                                         "no data from %s/%" PRId32 " in %d s", topic, partition,
                                         FETCH_TIMEOUT_MS / 1000);
                        break;
                    }
                    continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    eof = 1;
                } else if (m->err) {
                    err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "fetch %s/%" PRId32 ": %s",
                                     topic, partition, rd_kafka_message_errstr(m));
                } else if (m->offset >= x->offset) {
                    next = m->offset + 1;
                    pending = m;
                    continue;
                } else {
                    next = m->offset + 1;
                }
                rd_kafka_message_destroy(m);
            }
            if (err)
                break;
        }
        if (pending && pending->offset == x->offset) {
            err = handle(rp, x, pending, errstr, errstr_size);
            rd_kafka_message_destroy(pending);
            pending = NULL;
        } else {
            /* Read committed skips aborted records and compaction removes
             * others: the offset is simply no longer there. */
            err = refuse(rp, x, KB_REPLAY_GONE, "no committed message at this offset any more",
                         errstr, errstr_size);
        }
    }
    if (pending)
        rd_kafka_message_destroy(pending);
    return err;
}

static kb_err_t open_clients(struct replay *rp, char *errstr, size_t errstr_size)
{
    char rerr[512];
    rd_kafka_conf_t *conf = kb_kafka_conf_new(rp->o->kafka, errstr, errstr_size);
    if (!conf)
        return KB_ERR_CONF;
    char group[160];
    snprintf(group, sizeof group, "%s-replay", kb_topic_prefix());
    if (rd_kafka_conf_set(conf, "group.id", group, rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "client.id", "ketenbus-replay", rerr, sizeof rerr)) {
        rd_kafka_conf_destroy(conf);
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "consumer: %s", rerr);
    }
    if (!(rp->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rerr, sizeof rerr)))
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "consumer: %s", rerr);
    if (rp->o->dry_run)
        return KB_OK;

    /* One transactional id for every replay: a second replay fences the
     * first, so the replay chain never has two writers. */
    char txn_id[160];
    snprintf(txn_id, sizeof txn_id, "%s-replay", kb_topic_prefix());
    rd_kafka_conf_t *pconf = kb_kafka_conf_new(rp->o->kafka, errstr, errstr_size);
    if (!pconf)
        return KB_ERR_CONF;
    if (rd_kafka_conf_set(pconf, "transactional.id", txn_id, rerr, sizeof rerr) ||
        rd_kafka_conf_set(pconf, "client.id", "ketenbus-replay", rerr, sizeof rerr) ||
        rd_kafka_conf_set(pconf, "linger.ms", "5", rerr, sizeof rerr)) {
        rd_kafka_conf_destroy(pconf);
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "producer: %s", rerr);
    }
    if (!(rp->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, rerr, sizeof rerr)))
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "producer: %s", rerr);
    const char *topics[] = {rp->sub->topic};
    if (kb_kafka_ensure_topics(rp->producer, topics, 1, 3, 30000, errstr, errstr_size))
        return KB_ERR_KAFKA;
    rd_kafka_error_t *e = rd_kafka_init_transactions(rp->producer, 60000);
    if (e) {
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "init_transactions: %s",
                   rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return KB_ERR_KAFKA;
    }
    struct kb_audit_opts ao = {
        .kafka = rp->o->kafka,
        .topic = rp->o->audit_topic,
        .signing_key_file = rp->o->audit_signing_key_file,
    };
    if (!(rp->audit = kb_audit_new(&ao, errstr, errstr_size)))
        return KB_ERR_CONF;
    if (!(rp->audit_rkt = kb_audit_topic_handle(rp->audit, rp->producer, errstr, errstr_size)))
        return KB_ERR_CONF;
    /* After init_transactions: a fenced predecessor's open transaction is
     * aborted by then, so the chain's committed tail is final. */
    kb_replay_chain_topic(rp->chain_topic, sizeof rp->chain_topic);
    return kb_audit_resume(rp->audit, rp->chain_topic, 0, -1, errstr, errstr_size);
}

/* The matcher entitlement() asks, over the subscriptions in force with
 * their follow lists as the router has them (a follow topic is read now). */
static kb_err_t load_entitlement(struct replay *rp, char *errstr, size_t errstr_size)
{
    if (rp->sub->follow_topic) {
        kb_follow_topics_t *ft = kb_follow_topics_new(rp->o->kafka);
        if (!ft)
            return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        kb_err_t err = kb_follow_topics_load(ft, rp->o->subs, errstr, errstr_size);
        kb_follow_topics_destroy(ft);
        if (err)
            return err;
    }
    rp->hits = calloc(rp->o->subs->n, sizeof *rp->hits);
    rp->matcher = kb_matcher_new(rp->o->subs);
    if (!rp->hits || !rp->matcher)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    return KB_OK;
}

kb_err_t kb_replay_run(const struct kb_replay_opts *o, struct kb_replay_result *res,
                       atomic_int *stop, char *errstr, size_t errstr_size)
{
    memset(res, 0, sizeof *res);
    if (!o->subscriber || !*o->subscriber || !o->reason || !*o->reason || !o->operator_name ||
        !*o->operator_name || !o->subs || !o->schemas || !o->subject_key)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "a replay needs a subscriber, a reason, an operator, the "
                          "subscriptions, the schemas and the subject key");
    struct replay rp = {.o = o, .res = res};
    for (size_t i = 0; i < o->subs->n && !rp.sub; i++)
        if (!strcmp(o->subs->items[i].name, o->subscriber))
            rp.sub = &o->subs->items[i];
    if (!rp.sub)
        return kb_err_set(KB_ERR_NOTFOUND, errstr, errstr_size,
                          "subscriber %s is not among the subscriptions", o->subscriber);
    /* A fresh id per run; random, since two replays with the same filter
     * are two deliveries. */
    uint8_t rnd[16];
    char seed[80];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    FILE *ur = fopen("/dev/urandom", "rb");
    size_t got = ur ? fread(rnd, 1, sizeof rnd, ur) : 0;
    if (ur)
        fclose(ur);
    int sl = snprintf(seed, sizeof seed, "%lld.%09ld.%zu.", (long long)now.tv_sec, now.tv_nsec,
                      got);
    for (size_t i = 0; i < got && sl + 2 < (int)sizeof seed; i++)
        sl += snprintf(seed + sl, sizeof seed - (size_t)sl, "%02x", rnd[i]);
    kb_event_uuid5(seed, (size_t)sl, res->replay_id);
    snprintf(rp.detail_head, sizeof rp.detail_head, "replay %s by %.60s: %.200s", res->replay_id,
             o->operator_name, o->reason);

    kb_err_t err;
    struct plan plan = {.subscriber = o->subscriber};
    struct kb_audit_filter f = {.subscriber = o->subscriber,
                                .subject = o->subject,
                                .subjects = o->subjects,
                                .n_subjects = o->n_subjects,
                                .event_type = o->event_type,
                                .outcome = KB_AUDIT_DELIVERED,
                                .from_ms = o->since_ms,
                                .to_ms = o->until_ms};
    clock_gettime(CLOCK_MONOTONIC, &rp.t0);
    if (!(rp.current_fields = join_sorted(rp.sub->audit_fields, rp.sub->n_audit_fields))) {
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    if ((err = kb_audit_query(o->kafka, o->audit_topic, &f, plan_one, &plan, errstr,
                              errstr_size)))
        goto out;
    if (plan.nomem) {
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    if (plan.n) /* an empty plan has no array: qsort(NULL, 0) is undefined */
        qsort(plan.items, plan.n, sizeof *plan.items, cmp_item);
    res->planned = plan.n;
    KB_LOG_INFO(COMP, "replay planned",
                "replay_id=%s subscriber=%s deliveries=%zu dry_run=%d operator=\"%s\"",
                res->replay_id, o->subscriber, plan.n, o->dry_run, o->operator_name);
    if (!plan.n)
        goto out;
    if ((err = load_entitlement(&rp, errstr, errstr_size)))
        goto out;
    if ((err = open_clients(&rp, errstr, errstr_size)))
        goto out;
    for (size_t i = 0; i < plan.n && !err;) {
        size_t j = i + 1;
        while (j < plan.n && plan.items[j].partition == plan.items[i].partition &&
               !strcmp(plan.items[j].topic, plan.items[i].topic))
            j++;
        err = replay_partition(&rp, plan.items, i, j, stop, errstr, errstr_size);
        i = j;
    }
    if (!err)
        err = txn_commit(&rp, errstr, errstr_size);
    else if (rp.producer && rp.in_txn) {
        rd_kafka_error_t *ae = rd_kafka_abort_transaction(rp.producer, 60000);
        if (ae)
            rd_kafka_error_destroy(ae);
        kb_audit_abort(rp.audit);
        res->replayed -= rp.in_txn;
        rp.in_txn = 0;
    }
    KB_LOG_INFO(COMP, "replay finished",
                "replay_id=%s subscriber=%s planned=%" PRIu64 " replayed=%" PRIu64
                " altered=%" PRIu64 " gone=%" PRIu64 " invalid=%" PRIu64 " fields_changed=%" PRIu64
                " not_entitled=%" PRIu64 " result=%s",
                res->replay_id, o->subscriber, res->planned, res->replayed,
                res->refused[KB_REPLAY_ALTERED], res->refused[KB_REPLAY_GONE],
                res->refused[KB_REPLAY_INVALID], res->refused[KB_REPLAY_FIELDS_CHANGED],
                res->refused[KB_REPLAY_NOT_ENTITLED], kb_err_str(err));
out:
    for (size_t i = 0; i < plan.n; i++)
        item_fini(&plan.items[i]);
    free(plan.items);
    for (size_t i = 0; i < rp.n_states; i++) {
        if (rp.states[i].view_ok)
            kb__sub_view_fini(&rp.states[i].view);
    }
    free(rp.states);
    kb__sub_view_bufs_fini(&rp.bufs);
    free(rp.current_fields);
    kb_matcher_destroy(rp.matcher);
    free(rp.hits);
    kb_audit_destroy(rp.audit);
    if (rp.consumer) {
        rd_kafka_consumer_close(rp.consumer);
        rd_kafka_destroy(rp.consumer);
    }
    if (rp.audit_rkt)
        rd_kafka_topic_destroy(rp.audit_rkt);
    if (rp.producer) {
        rd_kafka_flush(rp.producer, 10000);
        rd_kafka_destroy(rp.producer);
    }
    return err;
}
