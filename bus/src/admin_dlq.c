/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * admin_dlq.c - the dead-letter topic as a library: read letters by their
 * context headers (never by payload values), page through them, and redrive
 * one back into its original input topic, where the router judges it again
 * (its event id keeps a repeated redrive from being delivered twice). Used
 * by `ketenbus dlq` and the admin API (GET /admin/dlq, POST /admin/dlq/redrive).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "admin_int.h"
#include "dead_lettered.h"
#include "ketenbus/event.h"

rd_kafka_t *kb__admin_reader_new(const struct kb_kafka_opts *kafka, char *errstr,
                                 size_t errstr_size)
{
    rd_kafka_conf_t *conf = kb_kafka_conf_new(kafka, errstr, errstr_size);
    if (!conf)
        return NULL;
    /* librdkafka's assign() needs a group.id, but the group is never
     * joined (no subscribe) and nothing is committed: it stays empty. */
    char gid[200];
    snprintf(gid, sizeof gid, "%s.tools.%ld", kb_topic_prefix(), (long)getpid());
    if (rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "group.id", gid, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

void kb__admin_reader_destroy(rd_kafka_t *rk)
{
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
}

void kb__sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data ? data : "", len, md, &n, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void kb_dlq_printable(const void *val, size_t len, char *buf, size_t size)
{
    if (!size)
        return;
    if (!val || !len) {
        snprintf(buf, size, "-");
        return;
    }
    const unsigned char *p = val;
    size_t n = len > 200 ? 200 : len, o = 0;
    for (size_t i = 0; i < n && o + 5 < size; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            buf[o++] = (char)p[i];
        else
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", p[i]);
    }
    if (len > n && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

static int header_text(rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *val = NULL;
    size_t len = 0;
    int present = h && rd_kafka_header_get_last(h, name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
    kb_dlq_printable(present ? val : NULL, present ? len : 0, buf, size);
    return present;
}

static void letter_of(const rd_kafka_message_t *m, struct kb_dlq_letter *l)
{
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    memset(l, 0, sizeof *l);
    l->partition = m->partition;
    l->offset = m->offset;
    l->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
    header_text(h, "kb_stage", l->stage, sizeof l->stage);
    header_text(h, "kb_rule", l->rule, sizeof l->rule);
    header_text(h, "kb_field_path", l->field_path, sizeof l->field_path);
    header_text(h, "kb_byte_offset", l->byte_offset, sizeof l->byte_offset);
    header_text(h, "kb_topic", l->from_topic, sizeof l->from_topic);
    header_text(h, "kb_partition", l->from_partition, sizeof l->from_partition);
    header_text(h, "kb_offset", l->from_offset, sizeof l->from_offset);
    header_text(h, "ce_id", l->id, sizeof l->id);
    header_text(h, "ce_type", l->type, sizeof l->type);
    l->has_error = header_text(h, "kb_error", l->error, sizeof l->error);
}

static int part_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

kb_err_t kb_dlq_read(const struct kb_dlq_read_opts *o, kb_dlq_letter_cb cb, void *opaque,
                     uint64_t *depth, int32_t *next_partition, int64_t *next_offset,
                     int *complete, char *errstr, size_t errstr_size)
{
    return kb__dlq_read(o, NULL, cb, opaque, depth, next_partition, next_offset, complete, errstr,
                        errstr_size);
}

kb_err_t kb__dlq_read(const struct kb_dlq_read_opts *o, atomic_int *stop, kb_dlq_letter_cb cb,
                      void *opaque, uint64_t *depth, int32_t *next_partition, int64_t *next_offset,
                      int *complete, char *errstr, size_t errstr_size)
{
    char tbuf[256];
    const char *topic = o->topic;
    if (!topic) {
        kb_topic_name(tbuf, sizeof tbuf, "dlq");
        topic = tbuf;
    }
    if (depth)
        *depth = 0;
    if (next_partition)
        *next_partition = -1;
    if (next_offset)
        *next_offset = -1;
    if (complete)
        *complete = 1;
    rd_kafka_t *rk = kb__admin_reader_new(o->kafka, errstr, errstr_size);
    if (!rk)
        return KB_ERR_KAFKA;
    kb_err_t err = KB_OK;
    const struct rd_kafka_metadata *md = NULL;
    int32_t *ids = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        rd_kafka_resp_err_t why =
            e ? e : md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        err = kb_err_set(why == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? KB_ERR_NOTFOUND
                                                                         : KB_ERR_KAFKA,
                         errstr, errstr_size, "dead-letter topic %s: %s", topic,
                         rd_kafka_err2str(why));
        goto out;
    }
    int n = md->topics[0].partition_cnt;
    ids = calloc((size_t)(n ? n : 1), sizeof *ids);
    if (!ids) {
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (int p = 0; p < n; p++)
        ids[p] = md->topics[0].partitions[p].id;
    qsort(ids, (size_t)n, sizeof *ids, part_cmp);
    int64_t *lo = calloc((size_t)(n ? n : 1), sizeof *lo), *hi = calloc((size_t)(n ? n : 1), sizeof *hi);
    if (!lo || !hi) {
        free(lo);
        free(hi);
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (int p = 0; p < n; p++) {
        /* A partition whose offsets cannot be read (leader gone, timeout)
         * is not read and not counted, and that is said: counted as empty,
         * a dead-letter count would look whole and too low. */
        rd_kafka_resp_err_t we =
            rd_kafka_query_watermark_offsets(rk, topic, ids[p], &lo[p], &hi[p], 10000);
        if (we) {
            lo[p] = hi[p] = 0;
            if (complete)
                *complete = 0;
            if (o->unreadable)
                o->unreadable(o->unreadable_opaque, ids[p], rd_kafka_err2str(we));
        }
        if (depth && hi[p] > lo[p])
            *depth += (uint64_t)(hi[p] - lo[p]);
    }
    /* Partition by partition from the cursor, so that a page boundary is
     * one (partition, offset) and paging never skips or repeats a letter. */
    size_t seen = 0;
    int stopped = 0;
    for (int p = 0; p < n && !stopped && !err; p++) {
        if (o->partition > 0 && ids[p] < o->partition)
            continue;
        int64_t from = lo[p];
        if (ids[p] == o->partition && o->offset > from)
            from = o->offset;
        if (from >= hi[p])
            continue;
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, topic, ids[p])->offset = from;
        e = rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (e) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "assign: %s", rd_kafka_err2str(e));
            break;
        }
        int idle = 0;
        while (idle < 60) {
            if (stop && atomic_load(stop)) {
                stopped = 1; /* abandoned: the caller is going away */
                if (complete)
                    *complete = 0;
                break;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
            if (!m) {
                idle++;
                continue;
            }
            idle = 0;
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                rd_kafka_message_destroy(m);
                break;
            }
            if (m->err) {
                err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "consume: %s",
                                 rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                break;
            }
            if (o->limit && seen == o->limit) {
                /* One past the page: where the next page starts. */
                if (next_partition)
                    *next_partition = m->partition;
                if (next_offset)
                    *next_offset = m->offset;
                stopped = 1;
                rd_kafka_message_destroy(m);
                break;
            }
            struct kb_dlq_letter l;
            letter_of(m, &l);
            rd_kafka_message_destroy(m);
            seen++;
            if (cb(opaque, &l)) {
                stopped = 1;
                break;
            }
        }
        if (idle >= 60 && complete)
            *complete = 0; /* no answer for 30 s: the rest of this partition is unread */
    }
    rd_kafka_assign(rk, NULL);
    free(lo);
    free(hi);
out:
    free(ids);
    if (md)
        rd_kafka_metadata_destroy(md);
    kb__admin_reader_destroy(rk);
    return err;
}

rd_kafka_message_t *kb__dlq_fetch(rd_kafka_t *rk, const char *topic, int32_t partition,
                                  int64_t offset, kb_err_t *err, char *errstr,
                                  size_t errstr_size)
{
    *err = KB_ERR_KAFKA;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = offset;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        snprintf(errstr, errstr_size, "assign %s [%" PRId32 "]: %s", topic, partition,
                 rd_kafka_err2str(e));
        return NULL;
    }
    for (int idle = 0; idle < 40;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 250);
        if (!m) {
            idle++;
            continue;
        }
        if (!m->err && m->offset == offset) {
            *err = KB_OK;
            return m;
        }
        if (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* Past it (a transaction marker or an aborted record), or at the end. */
            *err = KB_ERR_NOTFOUND;
            snprintf(errstr, errstr_size, "no committed dead letter at %s [%" PRId32 "] offset %"
                     PRId64, topic, partition, offset);
        } else {
            if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
                *err = KB_ERR_NOTFOUND;
            snprintf(errstr, errstr_size, "consume %s [%" PRId32 "]: %s", topic, partition,
                     rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        return NULL;
    }
    *err = KB_ERR_TIMEOUT;
    snprintf(errstr, errstr_size, "no answer for %s [%" PRId32 "] offset %" PRId64 " in 10 s",
             topic, partition, offset);
    return NULL;
}

struct ack {
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
    int done;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct ack *ack = m->_private;
    ack->err = m->err;
    ack->partition = m->partition;
    ack->offset = m->offset;
    ack->done = 1;
}

kb_err_t kb_dlq_redrive(const struct kb_kafka_opts *kafka, const char *topic, int32_t partition,
                        int64_t offset, const void *value, size_t value_len,
                        struct kb_dlq_redriven *out, char *errstr, size_t errstr_size)
{
    char tbuf[256], in_pfx[160];
    if (!topic) {
        kb_topic_name(tbuf, sizeof tbuf, "dlq");
        topic = tbuf;
    }
    memset(out, 0, sizeof *out);
    kb_err_t err = KB_ERR_KAFKA;
    rd_kafka_headers_t *out_h = NULL;
    rd_kafka_t *producer = NULL;
    rd_kafka_message_t *m = NULL, *orig = NULL; /* orig: the input a dropped value names */
    if (partition < 0 || offset < 0)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "partition and offset must not be negative");
    rd_kafka_t *rk = kb__admin_reader_new(kafka, errstr, errstr_size);
    if (!rk)
        return KB_ERR_KAFKA;
    m = kb__dlq_fetch(rk, topic, partition, offset, &err, errstr, errstr_size);
    if (!m)
        goto out;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    const void *tv = NULL;
    size_t tlen = 0;
    if (!h || rd_kafka_header_get_last(h, "kb_topic", &tv, &tlen) || !tv || !tlen ||
        tlen >= sizeof out->topic) {
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                         "the dead letter has no kb_topic header: not from the router");
        goto out;
    }
    memcpy(out->topic, tv, tlen);
    out->topic[tlen] = 0;
    /* Only back into an input topic of this installation: redrive must not
     * become a way to write into a subscriber's topic. */
    kb_topic_name(in_pfx, sizeof in_pfx, "in.");
    if (strncmp(out->topic, in_pfx, strlen(in_pfx)) != 0 || memchr(tv, 0, tlen)) {
        char shown[300];
        kb_dlq_printable(tv, tlen, shown, sizeof shown);
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                         "original topic %s is not an input topic (%s*)", shown, in_pfx);
        goto out;
    }
    /* A letter too large to keep whole went without its value, and maybe
     * without the original headers (route.c stage_copy: kb_value_dropped).
     * Its bytes and headers are still at the input position it names: put
     * that event back, once its SHA-256 shows it is the one dead-lettered,
     * never an empty value without its envelope. A corrected value needs
     * only the envelope: a letter that kept the original headers has it
     * itself, and goes back also when retention removed its input (what
     * --value is for); one without them takes them from the input. */
    rd_kafka_headers_t *src_h = h;
    const void *dv = NULL, *sv = NULL, *cv = NULL;
    size_t dlen = 0, slen = 0, clen = 0;
    int dropped = !rd_kafka_header_get_last(h, "kb_value_dropped", &dv, &dlen);
    int has_envelope = !rd_kafka_header_get_last(h, "ce_specversion", &cv, &clen);
    if (dropped && !(value && has_envelope)) {
        int64_t ipart = -1, ioff = -1;
        char why[512], sha[65];
        if (kb__dl_header_int(h, "kb_partition", &ipart) || ipart > INT32_MAX ||
            kb__dl_header_int(h, "kb_offset", &ioff) ||
            rd_kafka_header_get_last(h, "kb_value_sha256", &sv, &slen) || !sv || slen != 64) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                             "the dead letter's value was dropped and it does not name its "
                             "input position and SHA-256: nothing to redrive");
            goto out;
        }
        orig = kb__dlq_fetch(rk, out->topic, (int32_t)ipart, ioff, &err, why, sizeof why);
        if (!orig) {
            kb_err_set(err, errstr, errstr_size,
                       "the dead letter's value was dropped%s; its event at %s [%" PRId64
                       "] offset %" PRId64 " cannot be read: %s",
                       value ? " and so were its CloudEvents headers, which a corrected value "
                               "still needs"
                             : "",
                       out->topic, ipart, ioff, why);
            if (!value && has_envelope && errstr && errstr_size)
                snprintf(errstr + strlen(errstr), errstr_size - strlen(errstr),
                         " (a corrected value can still go back with the letter's headers)");
            goto out;
        }
        kb__sha256_hex(orig->payload, orig->len, sha);
        if (memcmp(sha, sv, 64)) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                             "the dead letter's value was dropped, and %s [%" PRId64
                             "] offset %" PRId64 " holds another value than the one "
                             "dead-lettered (SHA-256 differs)",
                             out->topic, ipart, ioff);
            goto out;
        }
        src_h = NULL;
        rd_kafka_message_headers(orig, &src_h);
    }
    if (value) {
        int32_t sid;
        const uint8_t *pl;
        size_t pl_len;
        if (kb_event_unframe(value, value_len, &sid, &pl, &pl_len)) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                             "corrected value is not Confluent-framed (magic byte 0, schema id)");
            goto out;
        }
        out->corrected = 1;
    } else {
        value = orig ? orig->payload : m->payload;
        value_len = orig ? orig->len : m->len;
    }
    out_h = rd_kafka_headers_new(16);
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0; src_h && !rd_kafka_header_get_all(src_h, i, &name, &val, &len); i++) {
        if (!strncmp(name, "kb_", 3))
            continue; /* the router's context headers describe the rejection */
        rd_kafka_header_add(out_h, name, -1, val, (ssize_t)len);
        out->headers_kept++;
    }
    snprintf(out->from, sizeof out->from, "%s/%" PRId32 "/%" PRId64, topic, m->partition,
             m->offset);
    rd_kafka_header_add(out_h, "kb_redriven_from", -1, out->from, -1);

    rd_kafka_conf_t *conf = kb_kafka_conf_new(kafka, errstr, errstr_size);
    if (!conf || rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "acks", "all", errstr, errstr_size)) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        err = KB_ERR_CONF;
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!producer) {
        rd_kafka_conf_destroy(conf);
        err = KB_ERR_KAFKA;
        goto out;
    }
    struct ack ack = {0};
    rd_kafka_resp_err_t e = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(out->topic), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(out_h), RD_KAFKA_V_OPAQUE(&ack), RD_KAFKA_V_END);
    if (e) {
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "produce to %s: %s", out->topic,
                         rd_kafka_err2str(e));
        goto out;
    }
    out_h = NULL; /* the message owns them now */
    rd_kafka_flush(producer, 30000);
    if (!ack.done || ack.err) {
        err = kb_err_set(ack.done ? KB_ERR_KAFKA : KB_ERR_TIMEOUT, errstr, errstr_size,
                         "%s not acknowledged: %s", out->topic,
                         ack.done ? rd_kafka_err2str(ack.err) : "timed out after 30 s");
        goto out;
    }
    out->partition = ack.partition;
    out->offset = ack.offset;
    out->bytes = value_len;
    kb__sha256_hex(value, value_len, out->sha256);
    err = KB_OK;
out:
    if (out_h)
        rd_kafka_headers_destroy(out_h);
    if (producer)
        rd_kafka_destroy(producer);
    if (orig)
        rd_kafka_message_destroy(orig);
    if (m)
        rd_kafka_message_destroy(m);
    kb__admin_reader_destroy(rk);
    return err;
}
