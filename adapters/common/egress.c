/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * egress.c - the consume/render/commit loop of legacy egress (see egress.h).
 *
 * Invariant: an offset is committed only after render() returned KB_OK or
 * the event was quarantined durably. On a transient failure
 * (kb_egress_retryable(): I/O, timeout, Kafka, memory) the consumer seeks
 * back to the event and tries again after a pause, keeping order; any
 * other failure is the event's own and quarantines it, so that one bad
 * event never blocks the events behind it.
 * When it cannot seek back, the loop stops without committing: carrying on
 * would render the events behind it and commit past it, skipping it.
 * A crash between the durable output and the commit (the tests inject one
 * with KETENBUS_FAULT=crash-after-deliver[:N], fault.h) has the restart
 * render the event again, so a renderer must make the same output of it
 * again (gba: the same out/ name and bytes; over TCP the afnemer gets the
 * same frame twice and must take a repeat for one).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapter_metrics.h"
#include "egress.h"
#include "fault.h"
#include "ketenbus/clock.h"
#include "ketenbus/gate.h"
#include "ketenbus/log.h"

#define COMP "egress"
#define SEEK_ATTEMPTS 3 /* seeks back to a failed event before the loop stops */

int kb_egress_retryable(kb_err_t err)
{
    switch (err) {
    case KB_ERR_IO:
    case KB_ERR_TIMEOUT:
    case KB_ERR_KAFKA:
    case KB_ERR_NOMEM: return 1;
    default: return 0;
    }
}

int kb_egress_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > KB_EGRESS_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

kb_err_t kb_egress_decode(const struct kb_schema *schema, const uint8_t *payload, size_t len,
                          avro_value_t *value, char *errstr, size_t errstr_size)
{
    kb_err_t err = kb_schema_check(schema, payload, len, errstr, errstr_size);
    if (err)
        return err;
    avro_value_t decoded;
    if (avro_generic_value_new(schema->iface, &decoded))
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    char derr[256];
    if (kb_schema_decode(schema, payload, len, &decoded, derr, sizeof derr)) {
        /* The validator accepted it, so avro-c disagrees with it: still the
         * event's bytes, never worth a retry. */
        avro_value_decref(&decoded);
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "payload does not decode with schema %" PRId32, schema->id);
    }
    *value = decoded;
    return KB_OK;
}

/* @p in as printable ASCII into @p out (KB_EGRESS_DETAIL_MAX + 4 bytes:
 * at most KB_EGRESS_DETAIL_MAX of them, then "..." when cut): the legacy
 * peer's words, not ours, so neither a control character nor their length
 * may reach the .reason file. */
static void printable_copy(const char *in, char out[KB_EGRESS_DETAIL_MAX + 4])
{
    size_t n = 0;
    const char *p = in;
    for (; *p && n < KB_EGRESS_DETAIL_MAX; p++)
        out[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
    if (*p) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Write @p m raw and its .reason (@p reason, then the renderer's @p detail
 * when not "") to quarantine/ as <topic>-<partition>-<offset>.event. A
 * retry after a failed commit rewrites its own bytes; an earlier event under
 * that name (a topic made again, its offsets from 0) is kept and this one
 * gets ".event.1", ... (kb_spool_quarantine_piece()). The log line carries
 * @p reason only: it names a rule or field, where @p detail may be
 * anybody's words. */
static kb_err_t quarantine_event(const struct kb_egress_opts *o, const rd_kafka_message_t *m,
                                 const char *reason, const char *detail)
{
    char suffix[48];
    /* a long topic name is cut as the spool cuts names: uncut, the names
     * of the .reason and its temp file would exceed NAME_MAX, and the
     * write failing as I/O would retry the event for ever */
    snprintf(suffix, sizeof suffix, "-%" PRId32 "-%" PRId64 ".event", m->partition, m->offset);
    char shown[KB_EGRESS_DETAIL_MAX + 4], line[1024];
    printable_copy(detail, shown);
    int n = snprintf(line, sizeof line, "%s\n%s%s%s", reason, shown[0] ? "peer text: " : "", shown,
                     shown[0] ? "\n" : "");
    kb_err_t err = kb_spool_quarantine_piece(o->spool, rd_kafka_topic_name(m->rkt), suffix,
                                             m->payload ? m->payload : "", m->len, line,
                                             n < (int)sizeof line ? (size_t)n : sizeof line - 1);
    if (err)
        KB_LOG_ERR(COMP, "cannot quarantine event; will retry",
                   "topic=%s partition=%" PRId32 " offset=%" PRId64 " error=%s",
                   rd_kafka_topic_name(m->rkt), m->partition, m->offset, kb_err_str(err));
    else
        KB_LOG_WARN(COMP, "event quarantined",
                    "topic=%s partition=%" PRId32 " offset=%" PRId64 " reason=\"%s\"",
                    rd_kafka_topic_name(m->rkt), m->partition, m->offset, reason);
    return err;
}

/* The router's envelope gate (the event may have been written by anyone
 * with access to the topic), then render; kb_egress_retryable() decides
 * between a retry and the quarantine. *@p delivered is set when render()
 * made the output durable (not when the event was quarantined). */
static kb_err_t handle(const struct kb_egress_opts *o, const rd_kafka_message_t *m, int *delivered)
{
    *delivered = 0;
    /* detail has room beyond KB_EGRESS_DETAIL_MAX, so a cut shows as "..." */
    char why[512], detail[2 * KB_EGRESS_DETAIL_MAX] = "";
    struct kb_gate_input in;
    if (kb_gate_envelope(o->schemas, m, &in, why, sizeof why) != KB_GATE_PASSED)
        return quarantine_event(o, m, why, "");
    why[0] = '\0';
    kb_err_t err = o->render(o->opaque, &in.attrs, in.schema, in.payload, in.plen, why, sizeof why,
                             detail, sizeof detail);
    if (!err) {
        *delivered = 1;
        return KB_OK;
    }
    if (!why[0])
        snprintf(why, sizeof why, "%s", kb_err_str(err));
    if (!kb_egress_retryable(err))
        return quarantine_event(o, m, why, detail);
    KB_LOG_ERR(COMP, "render failed; will retry",
               "topic=%s partition=%" PRId32 " offset=%" PRId64 " error=\"%s\"",
               rd_kafka_topic_name(m->rkt), m->partition, m->offset, why);
    return err;
}

/* Point the consumer back at @p m, so that it is fetched again. A seek can
 * fail twice over: the call's error object, or the partition's own error
 * in the list (e.g. not assigned to us any more). */
static kb_err_t seek_back(rd_kafka_t *rk, const rd_kafka_message_t *m, char *errstr,
                          size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(seek, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset;
    kb_err_t err = KB_OK;
    rd_kafka_error_t *se = rd_kafka_seek_partitions(rk, seek, 5000);
    if (se) {
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "%s", rd_kafka_error_string(se));
        rd_kafka_error_destroy(se);
    } else if (seek->elems[0].err) {
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "%s",
                         rd_kafka_err2str(seek->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(seek);
    return err;
}

/* How long --idle-exit waits beyond its own time for partitions that the
 * group has not given this consumer yet: this consumer's session.timeout.ms
 * (the one a crashed predecessor most likely had too; librdkafka's default
 * is 45 s), after which that one's partitions go, and this much more. */
#define UNASSIGNED_GRACE_MS 15000

/* True when the group assigned @p rk at least one partition. */
static int assigned(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a)
        return 1; /* unknown: idle counts as before */
    int n = a->cnt;
    rd_kafka_topic_partition_list_destroy(a);
    return n > 0;
}

kb_err_t kb_egress_run(const struct kb_egress_opts *o, atomic_int *stop, char *errstr,
                       size_t errstr_size)
{
    rd_kafka_conf_t *conf = kb_kafka_conf_new(o->kafka, errstr, errstr_size);
    if (!conf)
        return KB_ERR_CONF;
    char rerr[512];
    if (rd_kafka_conf_set(conf, "group.id", o->group_id, rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", rerr, sizeof rerr) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", rerr, sizeof rerr) ||
        /* A topic created by another process (the router) must be noticed
         * in seconds, not at librdkafka's default of five minutes. */
        rd_kafka_conf_set(conf, "topic.metadata.refresh.interval.ms", "5000", rerr,
                          sizeof rerr)) {
        rd_kafka_conf_destroy(conf);
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "consumer: %s", rerr);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rerr, sizeof rerr);
    if (!rk)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "consumer: %s", rerr);
    rd_kafka_poll_set_consumer(rk);
    kb_adapter_metrics_kafka(rk); /* readiness probe */
    kb_err_t result = kb_kafka_ensure_topics(rk, &o->topic, 1, 3, 30000, errstr, errstr_size);
    if (result)
        goto out_destroy;
    /* A just-created topic reaches every broker's metadata a moment later;
     * subscribing before that costs a metadata refresh interval. */
    for (int i = 0; i < 100; i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, o->topic, NULL);
        int ok = t && rd_kafka_metadata(rk, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                 md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (t)
            rd_kafka_topic_destroy(t);
        if (ok)
            break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, o->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (serr) {
        result = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "subscribe %s: %s", o->topic,
                            rd_kafka_err2str(serr));
        goto out_destroy;
    }
    KB_LOG_INFO(COMP, "egress started", "topic=%s group=%s", o->topic, o->group_id);
    int64_t last = kb_mono_ms();
    int64_t unassigned_since = 0; /* when partitions were last not ours; 0 while they are */
    long session_ms = (long)kb_kafka_conf_size(rk, "session.timeout.ms", 45000);
    unsigned long delivered_count = 0; /* events render() made durable (fault injection) */
    while (!atomic_load(stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        kb_adapter_heartbeat();
        int64_t now = kb_mono_ms();
        if (!m) {
            if (o->once_idle_ms <= 0)
                continue;
            /* Idle only counts while partitions are ours: right after a
             * crash the group keeps them with the dead consumer until its
             * session times out (45 s by default), and a run that stopped
             * then would exit 0 having done nothing. Without any for longer
             * than that it stops, and says why. */
            if (!assigned(rk)) {
                if (!unassigned_since)
                    unassigned_since = now;
                last = now;
                long waited = (long)(now - unassigned_since);
                if (waited > o->once_idle_ms + session_ms + UNASSIGNED_GRACE_MS) {
                    /* Not a clean end: nothing of the topic was looked at. */
                    result = kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size,
                                        "no partition of %s was assigned to this consumer "
                                        "(group %s) within %ld ms: another member holds them",
                                        o->topic, o->group_id, waited);
                    KB_LOG_ERR(COMP, "idle exit: no partition was assigned to this consumer",
                               "topic=%s group=%s waited_ms=%ld", o->topic, o->group_id, waited);
                    break;
                }
                continue;
            }
            unassigned_since = 0;
            if (now - last > o->once_idle_ms)
                break;
            continue;
        }
        last = now;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                KB_LOG_WARN(COMP, "consumer error", "error=\"%s\"", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        int delivered;
        kb_err_t err = handle(o, m, &delivered);
        if (err) {
            /* Retry the same event after a pause; order per partition kept. */
            char serr_text[256] = "";
            kb_err_t serr_code = KB_OK;
            for (int attempt = 0; attempt < SEEK_ATTEMPTS; attempt++) {
                struct timespec pause = {1, 0};
                nanosleep(&pause, NULL);
                serr_code = seek_back(rk, m, serr_text, sizeof serr_text);
                if (!serr_code)
                    break;
                KB_LOG_WARN(COMP, "cannot seek back to the failed event",
                            "topic=%s partition=%" PRId32 " offset=%" PRId64
                            " attempt=%d error=\"%s\"",
                            rd_kafka_topic_name(m->rkt), m->partition, m->offset, attempt + 1,
                            serr_text);
            }
            if (serr_code) {
                /* Nothing past it is committed: a restart resumes at it. */
                result = kb_err_set(serr_code, errstr, errstr_size,
                                    "cannot seek back to %s [%" PRId32 "] offset %" PRId64
                                    " to retry it: %s; stopped so that it is not skipped",
                                    rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                                    serr_text);
                KB_LOG_ERR(COMP, "egress stopped: cannot seek back to the failed event",
                           "topic=%s partition=%" PRId32 " offset=%" PRId64,
                           rd_kafka_topic_name(m->rkt), m->partition, m->offset);
                rd_kafka_message_destroy(m);
                break;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        /* Fault injection for the tests: die with the output durable and the
         * offset not committed, the window a re-render must cover. */
        if (delivered && kb_fault_hit("crash-after-deliver", ++delivered_count)) {
            KB_LOG_WARN(COMP, "fault injection: exiting before committing the offset",
                        "topic=%s partition=%" PRId32 " offset=%" PRId64,
                        rd_kafka_topic_name(m->rkt), m->partition, m->offset);
            _exit(137);
        }
        rd_kafka_resp_err_t cerr = rd_kafka_commit_message(rk, m, 0);
        if (cerr)
            KB_LOG_WARN(COMP, "offset commit failed (event may be rendered again)",
                        "error=\"%s\"", rd_kafka_err2str(cerr));
        rd_kafka_message_destroy(m);
    }
out_destroy:
    kb_adapter_metrics_kafka(NULL);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return result;
}
