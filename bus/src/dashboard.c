/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * dashboard.c - the router's live dashboard: GET /dashboard serves the page
 * built into the binary (bus/src/dashboard/index.html, embedded at build
 * time), GET /events streams one compact metrics snapshot per second as
 * server-sent events, merged from this process and its peers (deliver
 * processes: webhook backlog) plus the dead-letter depth read from Kafka.
 *
 * One ticker thread makes each snapshot once and queues the same frame on
 * every open stream, so the cost does not grow with the number of viewers
 * beyond a copy; streams whose client went away are ended on the next tick.
 * At most MAX_STREAMS viewers; more get 503.
 *
 * Slow viewers: a stream holds at most the server's stream_max_pending
 * bytes for its client (kb_http_stream_send says KB_ERR_RANGE beyond). A
 * snapshot that does not fit is dropped for that viewer only and counted
 * (kb_dashboard_events_dropped_total); before its next snapshot that fits,
 * the viewer gets "event: dropped" with the number dropped so far, so the
 * page can say so. Dropping loses nothing but resolution: every snapshot
 * carries totals, so rates over the gap still come out right. A viewer that
 * takes no snapshot for slow_viewer_s is disconnected (logged), freeing
 * its place among the MAX_STREAMS; a browser reconnects by itself.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_int.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"

#define MAX_STREAMS 32
#define MAX_SNAPSHOTS 3600 /* the ?max= bound of one /events request */
#define DEPTH_EVERY 5      /* ticks between dead-letter depth reads */

/* Generated from src/dashboard/index.html by src/dashboard/embed.cmake. */
extern const unsigned char kb__dashboard_html[];
extern const size_t kb__dashboard_html_len;

struct viewer {
    kb_http_stream_t *s;
    long left;          /* snapshots still to send; -1 = unlimited */
    uint64_t dropped;   /* snapshots dropped because the client read too slowly */
    uint64_t told;      /* of those, how many the last "dropped" event reported */
    int64_t last_ok_ms; /* monotonic time of the last snapshot taken */
};

struct kb_dashboard {
    struct kb_dashboard_opts o;  /* peers copied below; kafka not owned */
    char **peers;                /* owned copies of o.peers */
    pthread_t ticker;
    int started;
    pthread_mutex_t mu;          /* guards viewers, last, the cond */
    pthread_cond_t cv;           /* stop */
    int stop;
    struct viewer viewers[MAX_STREAMS];
    size_t n_viewers;
    char *last;                  /* the last frame, sent first to a new viewer */
    size_t last_len;
    rd_kafka_t *rk;              /* for dead-letter depth; NULL when no kafka */
    json_t *depth;               /* {topic: n}, refreshed every DEPTH_EVERY ticks */
};

/* ---- the snapshot (pure) ------------------------------------------------------ */

static void add_to(json_t *obj, const char *key, double v)
{
    if (!key)
        key = "-";
    json_t *old = json_object_get(obj, key);
    json_object_set_new(obj, key, json_real((old ? json_number_value(old) : 0) + v));
}

/* Sum family @p fam of metrics document @p doc by label @p label into @p obj
 * (or into *total when @p obj is NULL). */
static void sum_family(const json_t *doc, const char *fam, const char *label, json_t *obj,
                       double *total)
{
    const json_t *series = json_object_get(doc, fam), *item;
    size_t i;
    json_array_foreach(series, i, item)
    {
        const json_t *v = json_object_get(item, "value");
        if (!json_is_number(v))
            v = json_object_get(item, "count");
        double x = json_number_value(v);
        if (obj)
            add_to(obj, json_string_value(json_object_get(json_object_get(item, "labels"), label)),
                   x);
        else
            *total += x;
    }
}

/* Failed webhook attempts: every outcome but "ok". */
static void sum_failed_attempts(const json_t *doc, json_t *obj)
{
    const json_t *series = json_object_get(doc, "kb_deliver_attempts_total"), *item;
    size_t i;
    json_array_foreach(series, i, item)
    {
        const json_t *labels = json_object_get(item, "labels");
        const char *outcome = json_string_value(json_object_get(labels, "outcome"));
        if (outcome && strcmp(outcome, "ok") != 0)
            add_to(obj, json_string_value(json_object_get(labels, "subscriber")),
                   json_number_value(json_object_get(item, "value")));
    }
}

json_t *kb_dashboard_snapshot(const char *const *docs, const size_t *lens, size_t n_docs,
                              int64_t t_ms, const json_t *depth)
{
    json_t *in = json_object(), *out = json_object(), *lag = json_object(),
           *failures = json_object(), *dead = json_object(), *backlog = json_object(),
           *delivered = json_object(), *att_failed = json_object();
    double filtered = 0, audit = 0;
    int down = 0;
    for (size_t d = 0; d < n_docs; d++) {
        json_t *doc = docs[d] ? json_loadb(docs[d], lens[d], 0, NULL) : NULL;
        if (!json_is_object(doc)) {
            json_decref(doc);
            down++;
            continue;
        }
        sum_family(doc, "kb_events_in_total", "source", in, NULL);
        sum_family(doc, "kb_events_out_total", "subscriber", out, NULL);
        sum_family(doc, "kb_events_filtered_total", NULL, NULL, &filtered);
        sum_family(doc, "kb_kafka_consumer_lag", "topic", lag, NULL);
        sum_family(doc, "kb_validation_failures_total", "rule", failures, NULL);
        sum_family(doc, "kb_dead_letters_total", "stage", dead, NULL);
        sum_family(doc, "kb_deliver_retry_backlog", "subscriber", backlog, NULL);
        sum_family(doc, "kb_deliver_delivered_total", "subscriber", delivered, NULL);
        sum_family(doc, "kb_audit_records_total", NULL, NULL, &audit);
        sum_failed_attempts(doc, att_failed);
        json_decref(doc);
    }
    json_t *depth_j = depth ? json_deep_copy(depth) : json_object();
    return json_pack("{s:I, s:o, s:o, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:i}", "t",
                     (json_int_t)t_ms, "in", in, "out", out, "filtered", filtered, "lag", lag,
                     "failures", failures, "dead_letters", dead, "dlq_depth",
                     depth_j, "backlog", backlog, "delivered",
                     delivered, "attempts_failed", att_failed, "audit", audit, "peers_down",
                     down);
}

char *kb_dashboard_sse_frame(const char *event, const json_t *data, size_t *len)
{
    /* Compact JSON has no raw newline (strings escape it), so one data line. */
    char *js = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
    if (!js)
        return NULL;
    size_t n = strlen("event: ") + strlen(event) + strlen("\ndata: ") + strlen(js) + 2;
    char *out = malloc(n + 1);
    if (out)
        *len = (size_t)snprintf(out, n + 1, "event: %s\ndata: %s\n\n", event, js);
    free(js);
    return out;
}

/* ---- the ticker ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What became of a snapshot offered to a viewer. */
enum offer { OFFER_END = 0, OFFER_DROPPED = 1, OFFER_SENT = 2 };

/* Queue @p frame on viewer @p v, after the news of snapshots dropped.
 * OFFER_END: end the viewer (gone, or too slow for too long). */
static enum offer viewer_send(kb_dashboard_t *d, struct viewer *v, const char *frame, size_t len,
                              int64_t now)
{
    kb_err_t err = KB_OK;
    if (v->dropped > v->told) {
        json_t *n = json_pack("{s:I}", "dropped", (json_int_t)v->dropped);
        size_t nlen = 0;
        char *note = n ? kb_dashboard_sse_frame("dropped", n, &nlen) : NULL;
        json_decref(n);
        err = note ? kb_http_stream_send(v->s, note, nlen) : KB_ERR_NOMEM;
        free(note);
        if (err == KB_OK)
            v->told = v->dropped;
    }
    if (err == KB_OK)
        err = kb_http_stream_send(v->s, frame, len);
    if (err == KB_OK) {
        v->last_ok_ms = now;
        return OFFER_SENT;
    }
    if (err != KB_ERR_RANGE && err != KB_ERR_NOMEM)
        return OFFER_END; /* the client went away */
    if (v->dropped++ == 0)
        KB_LOG_WARN("dashboard", "events client reads too slowly: snapshots dropped for it",
                    "pending_bytes=%zu", kb_http_stream_pending(v->s));
    kb_metrics_counter_add("kb_dashboard_events_dropped_total", 1, NULL);
    if (now - v->last_ok_ms >= (int64_t)d->o.slow_viewer_s * 1000) {
        KB_LOG_WARN("dashboard", "events client disconnected: no snapshot taken in time",
                    "seconds=%d dropped=%" PRIu64, d->o.slow_viewer_s, v->dropped);
        return OFFER_END;
    }
    return OFFER_DROPPED;
}

/* {topic: messages held} for the DLQ and every subscriber DLQ (<dlq>.<name>). */
static json_t *read_depth(kb_dashboard_t *d)
{
    char tbuf[256];
    const char *dlq = d->o.dlq_topic;
    if (!dlq) {
        kb_topic_name(tbuf, sizeof tbuf, "dlq");
        dlq = tbuf;
    }
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(d->rk, 1, NULL, &md, 3000))
        return NULL;
    json_t *out = json_object();
    size_t dl = strlen(dlq);
    for (int t = 0; t < md->topic_cnt; t++) {
        const char *name = md->topics[t].topic;
        if (md->topics[t].err || strncmp(name, dlq, dl) != 0 || (name[dl] && name[dl] != '.'))
            continue;
        json_int_t held = 0;
        for (int p = 0; p < md->topics[t].partition_cnt; p++) {
            int64_t lo, hi;
            if (!rd_kafka_query_watermark_offsets(d->rk, name, md->topics[t].partitions[p].id,
                                                  &lo, &hi, 3000) &&
                hi > lo)
                held += hi - lo;
        }
        json_object_set_new(out, name, json_integer(held));
    }
    rd_kafka_metadata_destroy(md);
    return out;
}

static char *make_frame(kb_dashboard_t *d, size_t *len)
{
    size_t n = 1 + d->o.n_peers;
    char **docs = calloc(n, sizeof *docs);
    size_t *lens = calloc(n, sizeof *lens);
    struct kb_http_response *resp = calloc(n, sizeof *resp);
    char *frame = NULL;
    if (!docs || !lens || !resp)
        goto out;
    kb_metrics_render_json(&docs[0], &lens[0]);
    for (size_t i = 0; i < d->o.n_peers; i++) {
        char url[600], errstr[256];
        snprintf(url, sizeof url, "%s/metrics.json", d->peers[i]);
        if (!kb_http_fetch("GET", url, NULL, NULL, 0, 800, &resp[i + 1], errstr, sizeof errstr) &&
            resp[i + 1].status == 200) {
            docs[i + 1] = resp[i + 1].body;
            lens[i + 1] = resp[i + 1].len;
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *snap = kb_dashboard_snapshot((const char *const *)docs, lens, n,
                                         (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                                         d->depth);
    if (snap) {
        json_object_set_new(snap, "peers", json_integer((json_int_t)d->o.n_peers));
        frame = kb_dashboard_sse_frame("metrics", snap, len);
        json_decref(snap);
    }
out:
    if (docs)
        free(docs[0]);
    for (size_t i = 1; resp && i < n; i++)
        kb_http_response_fini(&resp[i]);
    free(resp);
    free(docs);
    free(lens);
    return frame;
}

static void *ticker_main(void *arg)
{
    kb_dashboard_t *d = arg;
    unsigned tick = 0;
    int interval = d->o.interval_ms > 0 ? d->o.interval_ms : 1000;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        pthread_mutex_unlock(&d->mu);
        if (d->rk && tick++ % DEPTH_EVERY == 0) {
            json_t *depth = read_depth(d);
            if (depth) {
                json_decref(d->depth);
                d->depth = depth;
            }
        }
        size_t len = 0;
        char *frame = make_frame(d, &len);
        int64_t now = now_ms();
        pthread_mutex_lock(&d->mu);
        if (frame) {
            free(d->last);
            d->last = frame;
            d->last_len = len;
            for (size_t i = 0; i < d->n_viewers;) {
                struct viewer *v = &d->viewers[i];
                enum offer o = viewer_send(d, v, frame, len, now);
                if (o == OFFER_END || (o == OFFER_SENT && v->left > 0 && --v->left == 0)) {
                    kb_http_stream_end(v->s);
                    d->viewers[i] = d->viewers[--d->n_viewers];
                    continue;
                }
                i++;
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += interval / 1000;
        ts.tv_nsec += (long)(interval % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ---- routes ------------------------------------------------------------------ */

static void on_page(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    if (kb_http_req_rest(req)[0] && strcmp(kb_http_req_rest(req), "/")) {
        kb_http_reply_error(req, 404, 40410, "not found");
        return;
    }
    /* The page loads nothing from elsewhere and runs only its own script. */
    kb_http_reply_header(req, "Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src "
                         "'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
                         "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    kb_http_reply_header(req, "X-Content-Type-Options", "nosniff");
    kb_http_reply_header(req, "Referrer-Policy", "no-referrer");
    kb_http_reply_header(req, "Cache-Control", "no-store");
    kb_http_reply(req, 200, "text/html; charset=utf-8", kb__dashboard_html, kb__dashboard_html_len);
}

static void on_root(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    if (strcmp(kb_http_req_path(req), "/") != 0) {
        kb_http_reply_error(req, 404, 40411, "not found");
        return;
    }
    kb_http_reply_header(req, "Location", "/dashboard");
    kb_http_reply(req, 302, "text/plain", "see /dashboard\n", 15);
}

static void on_events(kb_http_req_t *req, void *opaque)
{
    kb_dashboard_t *d = opaque;
    const char *max_s = kb_http_req_query(req, "max");
    long left = -1;
    if (max_s) {
        char *end;
        left = strtol(max_s, &end, 10);
        if (!*max_s || *end || left < 1 || left > MAX_SNAPSHOTS) {
            kb_http_reply_error(req, 400, 40012, "max must be 1..%d", MAX_SNAPSHOTS);
            return;
        }
    }
    pthread_mutex_lock(&d->mu);
    if (d->n_viewers >= MAX_STREAMS) {
        pthread_mutex_unlock(&d->mu);
        kb_http_reply_header(req, "Retry-After", "10");
        kb_http_reply_error(req, 503, 50310, "too many dashboard viewers (%d)", MAX_STREAMS);
        return;
    }
    kb_http_reply_header(req, "X-Accel-Buffering", "no");
    kb_http_stream_t *s = kb_http_stream_start(req, 200, "text/event-stream");
    if (!s) {
        pthread_mutex_unlock(&d->mu);
        kb_http_reply_error(req, 500, 50010, "out of memory");
        return;
    }
    /* The client reconnects after 2 s; the last snapshot goes out at once. */
    static const char retry[] = "retry: 2000\n\n";
    int64_t now = now_ms();
    struct viewer v = {.s = s, .left = left, .last_ok_ms = now};
    int kept = kb_http_stream_send(s, retry, sizeof retry - 1) == KB_OK;
    if (kept && d->last) {
        enum offer o = viewer_send(d, &v, d->last, d->last_len, now);
        kept = o != OFFER_END;
        if (o == OFFER_SENT && v.left > 0)
            v.left--;
    }
    if (!kept || v.left == 0)
        kb_http_stream_end(s);
    else
        d->viewers[d->n_viewers++] = v;
    pthread_mutex_unlock(&d->mu);
}

kb_err_t kb_dashboard_routes(kb_dashboard_t *d, kb_http_t *h)
{
    kb_err_t err = kb_http_route(h, "GET", "/dashboard", on_page, d);
    if (!err)
        err = kb_http_route(h, "GET", "/", on_root, d);
    if (!err)
        err = kb_http_route(h, "GET", "/events", on_events, d);
    return err;
}

kb_dashboard_t *kb_dashboard_new(const struct kb_dashboard_opts *opts, char *errstr,
                                 size_t errstr_size)
{
    kb_dashboard_t *d = calloc(1, sizeof *d);
    if (!d) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (opts)
        d->o = *opts;
    if (d->o.slow_viewer_s <= 0)
        d->o.slow_viewer_s = 60;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->peers = calloc(d->o.n_peers ? d->o.n_peers : 1, sizeof *d->peers);
    if (!d->peers)
        goto fail_nomem;
    for (size_t i = 0; i < d->o.n_peers; i++) {
        const char *p = d->o.peers[i];
        size_t l = strlen(p);
        while (l && p[l - 1] == '/')
            l--;
        int scheme = !strncmp(p, "http://", 7);
        if (!strncmp(p, "https://", 8)) {
            kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                       "dashboard peer %s: only http:// peers can be read", p);
            goto fail;
        }
        if (!(d->peers[i] = malloc(l + 8)))
            goto fail_nomem;
        snprintf(d->peers[i], l + 8, "%s%.*s", scheme ? "" : "http://", (int)l, p);
    }
    if (d->o.kafka) {
        d->rk = kb__admin_reader_new(d->o.kafka, errstr, errstr_size);
        if (!d->rk)
            goto fail;
    }
    if (pthread_create(&d->ticker, NULL, ticker_main, d) != 0) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "dashboard: cannot start its thread");
        goto fail;
    }
    d->started = 1;
    return d;
fail_nomem:
    kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
fail:
    kb_dashboard_destroy(d);
    return NULL;
}

void kb_dashboard_destroy(kb_dashboard_t *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (d->started)
        pthread_join(d->ticker, NULL);
    for (size_t i = 0; i < d->n_viewers; i++)
        kb_http_stream_end(d->viewers[i].s);
    for (size_t i = 0; d->peers && i < d->o.n_peers; i++)
        free(d->peers[i]);
    free(d->peers);
    free(d->last);
    json_decref(d->depth);
    kb__admin_reader_destroy(d->rk);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
