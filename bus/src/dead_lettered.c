/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * dead_lettered.c - the input positions a group dead-lettered, from its
 * dead-letter topic (dead_lettered.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dead_lettered.h"
#include "ketenbus/clock.h"
#include "ketenbus/err.h"

/* Header @p name of @p h as a string in @p buf; 0, or -1 when absent,
 * empty or too long. */
static int header_str(rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *v = NULL;
    size_t len = 0;
    if (rd_kafka_header_get_last(h, name, &v, &len) || !v || !len || len >= size)
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return 0;
}

int kb__dl_header_int(rd_kafka_headers_t *h, const char *name, int64_t *out)
{
    char buf[24], *end;
    if (header_str(h, name, buf, sizeof buf) || buf[strspn(buf, "0123456789")] != '\0')
        return -1;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int window_add(struct kb__dl_window *w, int64_t offset)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        int64_t *no = realloc(w->offsets, cap * sizeof *no);
        if (!no)
            return -1;
        w->offsets = no;
        w->cap = cap;
    }
    w->offsets[w->n++] = offset;
    return 0;
}

/* Note letter @p m if this group wrote it for a position in one of @p w. */
static int note_letter(const rd_kafka_message_t *m, const char *group, struct kb__dl_window *w,
                       size_t n)
{
    rd_kafka_headers_t *h = NULL;
    char g[256], topic[256];
    int64_t part, off;
    if (rd_kafka_message_headers(m, &h) || header_str(h, "kb_group", g, sizeof g) ||
        strcmp(g, group) || header_str(h, "kb_topic", topic, sizeof topic) ||
        kb__dl_header_int(h, "kb_partition", &part) || kb__dl_header_int(h, "kb_offset", &off))
        return 0; /* another group's, or older than kb_group: not ours to count */
    for (size_t i = 0; i < n; i++)
        if (w[i].partition == part && off >= w[i].from && off < w[i].to &&
            !strcmp(w[i].topic, topic))
            return window_add(&w[i], off);
    return 0;
}

/* The partitions of @p topic to read, each from the first letter at or
 * after @p since_ms (offset) to the end it had now (in *@p ends, by
 * index). NULL with *@p empty set when there is nothing to read. */
static rd_kafka_topic_partition_list_t *plan(rd_kafka_t *rk, const char *topic, int64_t since_ms,
                                             int64_t **ends, int *empty, char *errstr,
                                             size_t errstr_size)
{
    *empty = 0;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err =
        rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (!err && md->topic_cnt == 1 &&
        md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rd_kafka_metadata_destroy(md); /* no letter was ever written */
        *empty = 1;
        return NULL;
    }
    if (!err && (md->topic_cnt != 1 || md->topics[0].err))
        err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (err) {
        if (md)
            rd_kafka_metadata_destroy(md);
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "metadata of %s: %s", topic,
                   rd_kafka_err2str(err));
        return NULL;
    }
    int cnt = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(cnt + 1);
    *ends = calloc((size_t)cnt + 1, sizeof **ends);
    for (int i = 0; *ends && i < cnt; i++)
        rd_kafka_topic_partition_list_add(tp, topic, md->topics[0].partitions[i].id)->offset =
            since_ms;
    rd_kafka_metadata_destroy(md);
    if (!*ends) {
        rd_kafka_topic_partition_list_destroy(tp);
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    err = rd_kafka_offsets_for_times(rk, tp, 10000);
    for (int i = 0; !err && i < tp->cnt; i++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_topic_partition_t *p = &tp->elems[i];
        err = p->err ? p->err
                     : rd_kafka_query_watermark_offsets(rk, topic, p->partition, &lo, &hi, 10000);
        (*ends)[i] = hi;
        if (!err && (p->offset < 0 || p->offset >= hi))
            p->offset = hi; /* no letter since then: nothing to read here */
    }
    if (err) {
        rd_kafka_topic_partition_list_destroy(tp);
        free(*ends);
        *ends = NULL;
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "offsets of %s: %s", topic,
                   rd_kafka_err2str(err));
        return NULL;
    }
    return tp;
}

int kb__dead_lettered(const struct kb_kafka_opts *ko, const char *dlq_topic, const char *group,
                      int64_t since_ms, int stall_ms, struct kb__dl_window *w, size_t n,
                      char *errstr, size_t errstr_size)
{
    if (!n)
        return 0;
    rd_kafka_t *rk = kb_kafka_scanner_new(ko, "ketenbus-route-dlq-scan", errstr, errstr_size);
    if (!rk)
        return -1;
    int64_t *ends = NULL;
    int empty = 0, rc = -1;
    /* Timestamps below 0 are special to ListOffsets (-1 latest, -2
     * earliest): 0 reads from the first letter. */
    int64_t since = since_ms - KB_DL_CLOCK_MARGIN_MS;
    rd_kafka_topic_partition_list_t *tp =
        plan(rk, dlq_topic, since > 0 ? since : 0, &ends, &empty, errstr, errstr_size);
    if (!tp) {
        rc = empty ? 0 : -1;
        goto out;
    }
    size_t todo = 0;
    for (int i = 0; i < tp->cnt; i++)
        todo += tp->elems[i].offset < ends[i];
    rd_kafka_assign(rk, tp);
    int64_t deadline = kb_mono_ms() + stall_ms;
    while (todo && kb_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        int i = 0;
        while (i < tp->cnt && tp->elems[i].partition != m->partition)
            i++;
        int eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (i < tp->cnt && tp->elems[i].offset < ends[i] && (!m->err || eof)) {
            deadline = kb_mono_ms() + stall_ms; /* progress */
            if (!m->err && note_letter(m, group, w, n)) {
                rd_kafka_message_destroy(m);
                kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
                goto out;
            }
            if (eof || m->offset + 1 >= ends[i]) {
                tp->elems[i].offset = ends[i]; /* read */
                todo--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rc = todo ? -1 : 0;
    if (rc)
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size,
                   "%s: no progress for %d ms, %zu partition(s) not read to their end",
                   dlq_topic, stall_ms, todo);
out:
    if (tp)
        rd_kafka_topic_partition_list_destroy(tp);
    free(ends);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void kb__dl_window_sort(struct kb__dl_window *w)
{
    if (w->n > 1)
        qsort(w->offsets, w->n, sizeof *w->offsets, cmp_i64);
}

int kb__dl_window_has(const struct kb__dl_window *w, int64_t offset)
{
    return w->n && bsearch(&offset, w->offsets, w->n, sizeof *w->offsets, cmp_i64) != NULL;
}
