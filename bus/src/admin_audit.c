/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * admin_audit.c - one bounded verification of the audit trail through the
 * public verifier (audit.h), summarised as JSON for GET /admin/audit/status:
 * chains, records, checkpoints, problems and retention findings. Like
 * `audit verify` it reports a deleted head (a partition starting above
 * offset 0) and, with verify's own code (kb_audit_committed_snapshot), a
 * tail cut off together with its checkpoints: a chain ending below the
 * router group's committed input offset. It runs on the admin API's worker
 * thread, never on the HTTP thread, and within its deadline: the two Kafka
 * round trips of the tail check wait at most TAIL_CHECK_MAX_MS each, and
 * when they fail the tail check is "unknown" and the result never OK.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin_int.h"
#include "ketenbus/audit.h"
#include "ketenbus/clock.h"

/* Longest wait of each Kafka round trip of the tail check (as `audit verify`). */
#define TAIL_CHECK_MAX_MS 10000

struct ctx {
    kb_audit_verifier_t *v;
    rd_kafka_t *rk;   /* input watermarks */
    rd_kafka_topic_partition_list_t *committed; /* router group's offsets before the scan */
    kb_err_t err;
    int64_t deadline; /* CLOCK_MONOTONIC ms */
    int cut;          /* stopped at the deadline */
};

static int64_t input_low(void *opaque, const char *topic, int32_t partition)
{
    return kb_audit_input_low_of(((struct ctx *)opaque)->rk, topic, partition);
}

/* Each audit partition's start, as `audit verify` checks it: the topic
 * never expires records, so a low watermark above 0 is a deleted head, a
 * problem naming partition and offset. A watermark that cannot be read
 * fails the run: the check must not pass by not running. */
static kb_err_t partition_starts(struct ctx *c, const char *topic, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->rk, topic, NULL);
    if (!rkt)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    const struct rd_kafka_metadata *md = NULL;
    kb_err_t err = KB_OK;
    rd_kafka_resp_err_t e = rd_kafka_metadata(c->rk, 0, rkt, &md, 10000);
    if (!e && (md->topic_cnt != 1 || md->topics[0].err))
        e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (e)
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "cannot read %s's partitions: %s",
                         topic, rd_kafka_err2str(e));
    for (int i = 0; !err && i < md->topics[0].partition_cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo = -1, hi = -1;
        e = rd_kafka_query_watermark_offsets(c->rk, topic, p, &lo, &hi, 10000);
        if (e)
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                             "cannot read where %s [%" PRId32 "] starts: %s", topic, p,
                             rd_kafka_err2str(e));
        else
            err = kb_audit_verifier_partition_start(c->v, p, lo);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return err;
}

static int feed(void *opaque, int32_t partition, int64_t offset, int64_t ts, const void *key,
                size_t key_len, const void *value, size_t len)
{
    (void)ts;
    struct ctx *c = opaque;
    c->err = kb_audit_verifier_feed(c->v, partition, offset, key, key_len, value, len);
    if (!c->err && (offset & 255) == 0 && kb_mono_ms() > c->deadline)
        c->cut = 1;
    return c->err != KB_OK || c->cut;
}

json_t *kb_audit_status_verify(const struct kb_audit_status_opts *o, char *errstr,
                               size_t errstr_size)
{
    char tbuf[256];
    const char *topic = o->topic;
    if (!topic) {
        kb_topic_name(tbuf, sizeof tbuf, "audit");
        topic = tbuf;
    }
    char gbuf[200], tail_error[512] = "";
    const char *group = o->router_group;
    if (!group) {
        snprintf(gbuf, sizeof gbuf, "%s-route", kb_topic_prefix());
        group = gbuf;
    }
    struct ctx c = {0};
    json_t *out = NULL;
    int64_t t0 = kb_mono_ms();
    c.deadline = t0 + 1000LL * (o->max_seconds > 0 ? o->max_seconds : 120);
    c.rk = kb__admin_reader_new(o->kafka, errstr, errstr_size);
    if (!c.rk)
        return NULL;
    struct kb_audit_verify_opts vo = {
        .public_key_files = o->public_key_files,
        .n_public_keys = o->n_public_keys,
        .from_start = kb_audit_topic_from_start(c.rk, topic),
        .input_low = input_low,
        .opaque = &c,
    };
    /* The offsets before the scan, as `audit verify` reads them; within
     * the deadline, and never failing the whole status: the rest of the
     * verification is still worth showing beside an "unknown" tail check. */
    if (strcmp(group, "-")) {
        int64_t left = c.deadline - kb_mono_ms();
        int wait_ms = left < TAIL_CHECK_MAX_MS ? (int)(left > 0 ? left : 0) : TAIL_CHECK_MAX_MS;
        if (kb_audit_committed_snapshot(o->kafka, group, wait_ms, &c.committed, tail_error,
                                        sizeof tail_error) == KB_OK)
            vo.input_committed = c.committed;
        else if (!tail_error[0])
            snprintf(tail_error, sizeof tail_error, "cannot read the committed offsets");
    }
    c.v = kb_audit_verifier_new(&vo, errstr, errstr_size);
    if (!c.v)
        goto out_rk;
    kb_err_t err = partition_starts(&c, topic, errstr, errstr_size);
    if (!err)
        err = kb_audit_scan(o->kafka, topic, 0, 0, feed, &c, errstr, errstr_size);
    if (!err && c.err)
        err = kb_err_set(c.err, errstr, errstr_size, "verifier: %s", kb_err_str(c.err));
    if (err)
        goto out_v;
    /* A cut run leaves open gaps that are not problems, only unread. */
    if (!c.cut)
        kb_audit_verifier_finish(c.v);
    uint64_t msgs, recs, cps;
    kb_audit_verifier_counts(c.v, &msgs, &recs, &cps);
    size_t n_chains, n_problems;
    const struct kb_audit_chain_summary *ch = kb_audit_verifier_chains(c.v, &n_chains);
    const struct kb_audit_problem *pr = kb_audit_verifier_problems(c.v, &n_problems);
    json_t *chains = json_array(), *problems = json_array(), *retention = json_array();
    for (size_t i = 0; i < n_chains; i++) {
        json_array_append_new(
            chains, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "chain", ch[i].chain, "first_seq",
                              (json_int_t)ch[i].first_seq, "last_seq", (json_int_t)ch[i].last_seq,
                              "records", (json_int_t)ch[i].records, "checkpoints",
                              (json_int_t)ch[i].checkpoints, "unsigned_tail",
                              (json_int_t)ch[i].unsigned_tail));
        if (ch[i].input_low == -2 || ch[i].gone)
            json_array_append_new(
                retention, json_pack("{s:s, s:s, s:I, s:b}", "chain", ch[i].chain, "input_topic",
                                     ch[i].input_topic,
                                     "records_not_replayable",
                                     (json_int_t)(ch[i].input_low == -2 ? ch[i].records
                                                                        : ch[i].gone),
                                     "topic_gone", ch[i].input_low == -2));
    }
    /* A cut run does not finish, so neither does its tail check. */
    const char *tail_state = !strcmp(group, "-") ? "off"
                             : !c.committed      ? "unknown"
                             : c.cut             ? "not run"
                                                 : "done";
    json_t *tail = json_pack("{s:s, s:s}", "state", tail_state, "group", group);
    if (tail && c.committed)
        json_object_set_new(tail, "input_partitions", json_integer(c.committed->cnt));
    if (tail && tail_error[0])
        json_object_set_new(tail, "error", json_string(tail_error));
    size_t max = o->max_problems ? o->max_problems : 50;
    for (size_t i = 0; i < n_problems && i < max; i++)
        json_array_append_new(
            problems, json_pack("{s:s, s:i, s:I, s:s, s:s}", "kind",
                                kb_audit_problem_name(pr[i].kind), "partition",
                                (int)pr[i].partition, "offset", (json_int_t)pr[i].offset,
                                "chain", pr[i].chain, "what", pr[i].what));
    /* Not OK while a check could not run: an unread tail is no clean one. */
    int unknown = c.cut || !strcmp(tail_state, "unknown");
    out = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:i, s:I, s:o, s:o, s:o, s:o, s:f, s:i}",
                    "result",
                    n_problems ? "FAILED"
                    : unknown  ? "INCOMPLETE"
                               : "OK",
                    "topic", topic, "complete", !c.cut, "messages", (json_int_t)msgs, "records",
                    (json_int_t)recs, "checkpoints", (json_int_t)cps, "chains_total", (int)n_chains,
                    "problems_total", (json_int_t)n_problems, "chains", chains, "problems",
                    problems, "retention", retention, "tail_check", tail, "seconds",
                    (double)(kb_mono_ms() - t0) / 1000.0, "trusted_keys", (int)o->n_public_keys);
    if (!out)
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
out_v:
    kb_audit_verifier_destroy(c.v);
out_rk:
    if (c.committed)
        rd_kafka_topic_partition_list_destroy(c.committed);
    kb__admin_reader_destroy(c.rk);
    return out;
}
