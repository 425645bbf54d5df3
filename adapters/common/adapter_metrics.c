/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * adapter_metrics.c - the adapters' figures and readiness (see
 * adapter_metrics.h).
 *
 * Invariants:
 *  1. probe.rk is only used by the probe thread while it holds probe.mu,
 *     and kb_adapter_metrics_kafka() changes it under probe.mu: clearing it
 *     waits for a metadata request in progress, so a client is never used
 *     after its owner let go of it.
 *  2. The server and the probe thread exist together: started by
 *     kb_adapter_metrics_start, both gone after kb_adapter_metrics_stop.
 */
#define _GNU_SOURCE /* program_invocation_short_name */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "adapter_metrics.h"
#include "ketenbus/http.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"

#define COMP             "adapter"
#define HEARTBEAT_MAX_S  30 /* a work loop silent this long makes the process unready */
#define PROBE_TIMEOUT_MS 1500

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t source_mu = PTHREAD_MUTEX_INITIALIZER;
static char source[64];           /* the source label ("" = not set yet) */
static atomic_llong last_beat_ms; /* monotonic ms of the last heartbeat, 0 = never */

static struct {
    pthread_mutex_t mu;  /* guards rk and stop; see invariant 1 */
    pthread_cond_t cond; /* wakes the probe thread for stop */
    rd_kafka_t *rk;      /* the client to probe, or NULL */
    int stop;            /* the probe thread must end */
    int running;         /* the probe thread exists */
    pthread_t thread;    /* the probe thread */
    kb_http_t *http;     /* the metrics server, or NULL */
} probe = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, NULL};

static const double produce_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10,   30};

static void declare(void)
{
    kb_metrics_declare(KB_METRIC_COUNTER, "kb_adapter_messages_total",
                       "Legacy messages per transport (spool, tcp, http; tcp-staged: frames "
                       "a crash left staged, finished at the start) and outcome: received, "
                       "accepted (durable in Kafka), quarantined, retry (not durable, sender "
                       "retries)",
                       "source,transport,outcome", NULL, 0);
    kb_metrics_declare(KB_METRIC_COUNTER, "kb_adapter_refused_total",
                       "Connections, frames or files refused before they became a message "
                       "(too many clients, timeouts, bad lengths, size and memory limits)",
                       "source,transport,reason", NULL, 0);
    kb_metrics_declare(KB_METRIC_HISTOGRAM, "kb_adapter_produce_seconds",
                       "Time from producing a message's events (or its quarantine record) until "
                       "Kafka acknowledged all of them",
                       "source", produce_buckets,
                       sizeof produce_buckets / sizeof produce_buckets[0]);
    kb_metrics_declare(KB_METRIC_GAUGE, "kb_adapter_spool_backlog",
                       "Files waiting in the spool's in/ folder at the last scan", "source", NULL,
                       0);
    kb_metrics_declare(KB_METRIC_GAUGE, "kb_adapter_kafka_up",
                       "1 when the adapter's Kafka client answered the last readiness probe",
                       "source", NULL, 0);
}

/* The source label, copied into @p out (the lock keeps a concurrent set out). */
static const char *src(char *out, size_t size)
{
    pthread_once(&once, declare);
    pthread_mutex_lock(&source_mu);
    if (!source[0]) {
        const char *p = program_invocation_short_name;
        if (!strncmp(p, "ketenbus-", 9))
            p += 9;
        snprintf(source, sizeof source, "%s", p);
    }
    snprintf(out, size, "%s", source);
    pthread_mutex_unlock(&source_mu);
    return out;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kb_adapter_metrics_source(const char *name)
{
    pthread_mutex_lock(&source_mu);
    snprintf(source, sizeof source, "%s", name);
    pthread_mutex_unlock(&source_mu);
}

void kb_adapter_count_message(const char *transport, const char *outcome)
{
    char s[64];
    kb_metrics_counter_add("kb_adapter_messages_total", 1, src(s, sizeof s), transport, outcome,
                           NULL);
}

void kb_adapter_count_refused(const char *transport, const char *reason)
{
    char s[64];
    kb_metrics_counter_add("kb_adapter_refused_total", 1, src(s, sizeof s), transport, reason,
                           NULL);
}

void kb_adapter_heartbeat(void)
{
    atomic_store(&last_beat_ms, mono_ms());
}

void kb_adapter_spool_backlog(size_t files)
{
    char s[64];
    kb_metrics_gauge_set("kb_adapter_spool_backlog", (double)files, src(s, sizeof s), NULL);
    kb_adapter_heartbeat();
}

void kb_adapter_produce_observe(double seconds)
{
    char s[64];
    kb_metrics_observe("kb_adapter_produce_seconds", seconds, src(s, sizeof s), NULL);
}

void kb_adapter_metrics_kafka(void *rk)
{
    pthread_mutex_lock(&probe.mu);
    probe.rk = rk;
    pthread_mutex_unlock(&probe.mu);
}

/* Every second: does the Kafka client reach a broker, is the loop turning? */
static void *probe_main(void *arg)
{
    (void)arg;
    char s[64];
    kb_series_t *up = kb_metrics_series("kb_adapter_kafka_up", src(s, sizeof s), NULL);
    pthread_mutex_lock(&probe.mu);
    while (!probe.stop) {
        int kafka_ok = 0;
        if (probe.rk) {
            const struct rd_kafka_metadata *md = NULL;
            kafka_ok = rd_kafka_metadata(probe.rk, 0, NULL, &md, PROBE_TIMEOUT_MS) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR &&
                       md && md->broker_cnt > 0;
            if (md)
                rd_kafka_metadata_destroy(md);
        }
        long long beat = atomic_load(&last_beat_ms);
        int loop_ok = beat && mono_ms() - beat < HEARTBEAT_MAX_S * 1000;
        kb_series_set(up, kafka_ok);
        kb_metrics_set_ready(kafka_ok && loop_ok);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        while (!probe.stop && pthread_cond_timedwait(&probe.cond, &probe.mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&probe.mu);
    return NULL;
}

kb_err_t kb_adapter_metrics_start(const char *addr, char *errstr, size_t errstr_size)
{
    if (probe.http)
        return kb_err_set(KB_ERR_STATE, errstr, errstr_size, "metrics server already running");
    char s[64];
    src(s, sizeof s);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    kb_metrics_gauge_set("kb_process_start_time_seconds", (double)now.tv_sec, NULL);
    kb_metrics_set_ready(0);
    probe.http = kb_metrics_serve(addr, errstr, errstr_size);
    if (!probe.http)
        return KB_ERR_IO;
    probe.stop = 0;
    if (pthread_create(&probe.thread, NULL, probe_main, NULL) != 0) {
        kb_http_destroy(probe.http);
        probe.http = NULL;
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "cannot start the readiness probe");
    }
    probe.running = 1;
    printf("metrics_port=%u\n", (unsigned)kb_http_port(probe.http));
    fflush(stdout);
    KB_LOG_INFO(COMP, "metrics served", "addr=%s port=%u source=%s", addr,
                (unsigned)kb_http_port(probe.http), s);
    return KB_OK;
}

void kb_adapter_metrics_stop(void)
{
    if (probe.running) {
        pthread_mutex_lock(&probe.mu);
        probe.stop = 1;
        pthread_cond_signal(&probe.cond);
        pthread_mutex_unlock(&probe.mu);
        pthread_join(probe.thread, NULL);
        probe.running = 0;
    }
    kb_http_destroy(probe.http);
    probe.http = NULL;
}
