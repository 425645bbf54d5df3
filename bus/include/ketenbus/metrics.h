/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/metrics.h - the process-wide metrics registry (counters, gauges,
 * histograms with labels), its Prometheus text exposition, the librdkafka
 * statistics that give consumer lag per partition, and the /metrics,
 * /healthz and /readyz endpoints every long-running process serves.
 *
 * Every family ketenbus uses is declared once in the catalogue table of
 * metrics.c (name, kind, help, labels), so the documentation and the
 * exposition agree; callers only name a family and give label values:
 *
 *     kb_metrics_counter_add("kb_events_in_total", 1, "gba", ev->type, NULL);
 *
 * On a hot loop, look the series up once and keep the pointer:
 *
 *     kb_series_t *in = kb_metrics_series("kb_events_in_total", "gba", type, NULL);
 *     kb_series_add(in, 1);          (one atomic add, no lock)
 *
 * Thread rules: every function here may be called from any thread. Series
 * pointers stay valid for the life of the process (kb_metrics_reset, for
 * tests only, invalidates them).
 */
#ifndef KETENBUS_METRICS_H
#define KETENBUS_METRICS_H

#include <stddef.h>

#include "ketenbus/err.h"

struct kb_http;

enum kb_metric_kind {
    KB_METRIC_COUNTER = 0,   /* only goes up (events, attempts) */
    KB_METRIC_GAUGE = 1,     /* goes up and down (lag, backlog) */
    KB_METRIC_HISTOGRAM = 2, /* distribution in fixed buckets (latency) */
};

typedef struct kb_series kb_series_t; /* opaque: one label combination of a family */

/** Most labels a family may have. */
#define KB_METRICS_MAX_LABELS 6

/**
 * Declare a family beyond the built-in catalogue (the catalogue is declared
 * automatically on first use). @p labels is a comma-separated list of
 * label names ("subscriber,outcome") or NULL for none; @p buckets (upper
 * bounds, ascending, without +Inf) only for histograms, NULL for the
 * default latency buckets (1 ms .. 60 s). Declaring the same family again
 * with the same kind and labels is a no-op; a conflicting declaration is
 * KB_ERR_CONF. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*.
 */
kb_err_t kb_metrics_declare(enum kb_metric_kind kind, const char *name, const char *help,
                            const char *labels, const double *buckets, size_t n_buckets);

/**
 * The series of family @p name for the given label values (one const char *
 * per declared label, then NULL), created on first use. Values may be any
 * UTF-8; they are escaped on output. NULL when the family is unknown, the
 * number of values is wrong, or memory ran out (the failure is logged once
 * per family): callers need not check, the update functions ignore NULL.
 * Never use personal data as a label value.
 */
kb_series_t *kb_metrics_series(const char *name, ...) __attribute__((sentinel));

/** Same with an array of @p n label values. */
kb_series_t *kb_metrics_series_v(const char *name, const char *const *values, size_t n);

/** Add @p v to a counter (v >= 0) or gauge. NULL is a no-op. Lock-free. */
void kb_series_add(kb_series_t *s, double v);

/** Set a gauge to @p v. NULL is a no-op. Lock-free. */
void kb_series_set(kb_series_t *s, double v);

/** Record one observation @p v in a histogram. NULL is a no-op. Lock-free. */
void kb_series_observe(kb_series_t *s, double v);

/** Current value of a counter or gauge (histograms: the count). For tests and `top`. */
double kb_series_value(const kb_series_t *s);

/* Convenience: look up and update in one call. Label values, then NULL. */
void kb_metrics_counter_add(const char *name, double v, ...) __attribute__((sentinel));
void kb_metrics_gauge_set(const char *name, double v, ...) __attribute__((sentinel));
void kb_metrics_gauge_add(const char *name, double v, ...) __attribute__((sentinel));
void kb_metrics_observe(const char *name, double v, ...) __attribute__((sentinel));

/**
 * Withdraw the gauge series of family @p name with these label values
 * (then NULL): it is left out of kb_metrics_render and
 * kb_metrics_render_json, and reads 0, until the next update to it brings
 * it back. For a figure that stopped applying to this process, such as the
 * lag of a partition that moved to another one, whose last value would
 * otherwise be shown for ever. A series pointer to it stays valid. No-op
 * when the series does not exist or the family is not a gauge.
 */
void kb_metrics_gauge_remove(const char *name, ...) __attribute__((sentinel));

/**
 * The whole registry in the Prometheus text exposition format (version
 * 0.0.4): families sorted by name, each with HELP and TYPE, series in
 * creation order. On success *out is malloc'ed (caller frees), *len set.
 */
kb_err_t kb_metrics_render(char **out, size_t *len);

/**
 * The registry as a JSON object {"<family>": [{"labels": {...}, "value": v}, ...]}
 * (histograms give "count" and "sum"), serialised compactly: what the
 * dashboard's server-sent events and `ketenbus top` read. *out malloc'ed.
 */
kb_err_t kb_metrics_render_json(char **out, size_t *len);

/**
 * Feed one librdkafka statistics document (statistics.interval.ms) into the
 * registry: kb_kafka_consumer_lag{topic,partition} per assigned partition
 * (partitions whose lag librdkafka does not know yet are skipped; in a
 * consumer's document ("type": "consumer"), a partition no longer assigned,
 * "desired": false, has its series withdrawn, see kb_metrics_gauge_remove),
 * and kb_kafka_stats_total. Malformed JSON is KB_ERR_INVALID and changes nothing.
 */
kb_err_t kb_metrics_kafka_stats(const char *json, size_t len);

/**
 * A librdkafka stats_cb that calls kb_metrics_kafka_stats: pass it to
 * rd_kafka_conf_set_stats_cb() and set statistics.interval.ms (e.g. 5000).
 * The signature is librdkafka's (rk is a rd_kafka_t *); returns 0 so
 * librdkafka frees @p json.
 */
int kb_metrics_kafka_stats_cb(void *rk, char *json, size_t json_len, void *opaque);

/** Mark the process ready (1) or not (0) for /readyz. Starts not ready. */
void kb_metrics_set_ready(int ready);

/** Mark the process healthy (1, the default) or broken (0) for /healthz. */
void kb_metrics_set_healthy(int healthy);

/**
 * Register GET /metrics, /metrics.json (kb_metrics_render_json, for
 * `ketenbus top` and the dashboard), /healthz and /readyz on @p h (before
 * kb_http_start). Long-running processes that serve more (the router's
 * dashboard and admin API) call this on their own server.
 */
kb_err_t kb_metrics_routes(struct kb_http *h);

/**
 * Start a server for just the three endpoints on @p addr ("host:port", or
 * ":port" for 127.0.0.1; port 0 picks a free one). Returns the running
 * server (stop and free it with kb_http_destroy), or NULL with errstr.
 */
struct kb_http *kb_metrics_serve(const char *addr, char *errstr, size_t errstr_size);

/** Drop every series and family not in the catalogue. Tests only: no other thread may
 *  hold a series pointer. */
void kb_metrics_reset(void);

#endif
