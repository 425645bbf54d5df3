/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * metrics.c - the process-wide metrics registry, Prometheus text and JSON
 * output, librdkafka statistics ingestion and the health endpoints (see
 * ketenbus/metrics.h).
 *
 * Invariants:
 *  1. Families and series are only ever added (until kb_metrics_reset), so a
 *     series pointer handed out stays valid and updates need no lock.
 *  2. The rwlock guards the family list and every family's series table;
 *     values are atomics, read without the lock's exclusion.
 *  3. A histogram keeps per-bucket (non-cumulative) counts; the exposition
 *     sums them, so _count always equals the +Inf bucket.
 *  4. A gauge that no longer applies (the lag of a partition this process
 *     gave up) is not freed but marked withdrawn (kb_metrics_gauge_remove):
 *     the outputs leave it out until the next update brings it back. So a
 *     series pointer held elsewhere stays valid (1) and updates stay
 *     lock-free.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ketenbus/http.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"

#define SERIES_BUCKETS 256 /* hash buckets per family; chains grow beyond */

/* The catalogue: every family ketenbus itself reports. Kept in one table so
 * the README's metric list and the exposition cannot drift apart. */
static const struct catalogue_entry {
    enum kb_metric_kind kind;
    const char *name;
    const char *labels;
    const char *help;
} catalogue[] = {
    {KB_METRIC_COUNTER, "kb_events_in_total", "source,type",
     "Events produced to kb.in.<source> by an adapter, or consumed from it by the router"},
    {KB_METRIC_COUNTER, "kb_events_out_total", "subscriber,type",
     "Events produced to kb.out.<subscriber> by the router"},
    {KB_METRIC_COUNTER, "kb_events_filtered_total", "source",
     "Input events no subscription wanted"},
    {KB_METRIC_COUNTER, "kb_validation_failures_total", "rule",
     "Events rejected by validation, per rule"},
    {KB_METRIC_COUNTER, "kb_dead_letters_total", "topic,stage",
     "Events written to a dead-letter topic (kb.dlq or kb.dlq.<subscriber>)"},
    {KB_METRIC_COUNTER, "kb_quarantined_total", "source",
     "Legacy messages that could not be translated and were quarantined"},
    {KB_METRIC_COUNTER, "kb_audit_records_total", "outcome",
     "Audit records appended to the hash chain"},
    {KB_METRIC_HISTOGRAM, "kb_e2e_latency_seconds", "subscriber",
     "Time from ce_time (recorded by the bus) to delivery at the subscriber"},
    {KB_METRIC_HISTOGRAM, "kb_route_transaction_seconds", "phase",
     "Time of one router transaction by phase: route (validate, match, project, audit, into "
     "the stage), produce (the stage to librdkafka), commit (input offsets, flush, end of the "
     "transaction; overlaps routing the next batch) and wait (the router thread waiting for "
     "that commit)"},
    {KB_METRIC_COUNTER, "kb_deliver_attempts_total", "subscriber,outcome",
     "Webhook POST attempts by outcome (ok, http_4xx, http_5xx, throttled, timeout, error)"},
    {KB_METRIC_COUNTER, "kb_deliver_delivered_total", "subscriber",
     "Events a webhook acknowledged with 2xx"},
    {KB_METRIC_GAUGE, "kb_deliver_retry_backlog", "subscriber",
     "Events waiting for a retry after a failed attempt"},
    {KB_METRIC_GAUGE, "kb_deliver_pending", "subscriber",
     "Events consumed but not yet delivered or dead-lettered"},
    {KB_METRIC_GAUGE, "kb_deliver_paused_keys", "subscriber",
     "Subject keys paused behind a failing event"},
    {KB_METRIC_GAUGE, "kb_deliver_partition_paused", "subscriber,partition",
     "1 while consumption of this partition of the subscriber topic is paused (it holds more "
     "than its part of --max-pending, typically behind a key whose head keeps failing), else 0; "
     "withdrawn when the partition is revoked"},
    {KB_METRIC_GAUGE, "kb_kafka_consumer_lag", "topic,partition",
     "Messages between this process's position and the end of a partition assigned to it "
     "(librdkafka statistics); a partition that moved elsewhere is left out"},
    {KB_METRIC_COUNTER, "kb_kafka_stats_total", "", "librdkafka statistics documents received"},
    {KB_METRIC_COUNTER, "kb_dashboard_events_dropped_total", "",
     "Dashboard snapshots (/events) dropped for a client that read slower than they came"},
    {KB_METRIC_GAUGE, "kb_process_start_time_seconds", "",
     "Start time of the process since the Unix epoch in seconds"},
};

/* Default histogram buckets: latencies from 1 ms to a minute. */
static const double default_buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,     2.5,  5,     10,   30,  60};

struct kb_series {
    struct kb_series *hash_next;   /* chain in the family's hash table */
    struct kb_series *order_next;  /* creation order, for output */
    struct family *fam;            /* the family this belongs to */
    char *key;                     /* label values joined by \x1f (hash key) */
    char **values;                 /* label values, fam->n_labels of them */
    _Atomic uint64_t bits;         /* counter/gauge value, or histogram sum (double bits) */
    _Atomic uint64_t *bucket_hits; /* histograms: n_buckets + 1 (the last is +Inf) */
    atomic_int withdrawn;          /* left out of the outputs until updated (invariant 4) */
};

struct family {
    struct family *next;           /* registry list (unsorted; output sorts) */
    enum kb_metric_kind kind;      /* counter, gauge or histogram */
    char *name;                    /* metric name */
    char *help;                    /* HELP text */
    char *labels_csv;              /* the declaration, to detect conflicts */
    size_t n_labels;               /* number of label names */
    char *label_names[KB_METRICS_MAX_LABELS]; /* label names */
    double *buckets;               /* histogram upper bounds (ascending), else NULL */
    size_t n_buckets;              /* their number (without +Inf) */
    struct kb_series *table[SERIES_BUCKETS]; /* series by hash of key */
    struct kb_series *first, *last; /* creation order */
    int builtin;                   /* from the catalogue (survives reset) */
    int warned;                    /* a lookup failure was logged already */
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct family *families;
static atomic_int ready_flag;
static atomic_int healthy_flag = 1;

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static int valid_name(const char *s, int allow_colon)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static struct family *find_family(const char *name)
{
    for (struct family *f = families; f; f = f->next)
        if (!strcmp(f->name, name))
            return f;
    return NULL;
}

static void family_free(struct family *f)
{
    for (struct kb_series *s = f->first, *n; s; s = n) {
        n = s->order_next;
        for (size_t i = 0; i < f->n_labels; i++)
            free(s->values[i]);
        free(s->values);
        free(s->key);
        free(s->bucket_hits);
        free(s);
    }
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->label_names[i]);
    free(f->name);
    free(f->help);
    free(f->labels_csv);
    free(f->buckets);
    free(f);
}

/* Caller holds the write lock. */
static kb_err_t declare_locked(enum kb_metric_kind kind, const char *name, const char *help,
                               const char *labels, const double *buckets, size_t n_buckets,
                               int builtin)
{
    if (!labels)
        labels = "";
    struct family *f = find_family(name);
    if (f)
        return f->kind == kind && !strcmp(f->labels_csv, labels) ? KB_OK : KB_ERR_CONF;
    if (!valid_name(name, 1))
        return KB_ERR_CONF;
    if (kind == KB_METRIC_HISTOGRAM && !buckets) {
        buckets = default_buckets;
        n_buckets = sizeof default_buckets / sizeof default_buckets[0];
    }
    for (size_t i = 1; kind == KB_METRIC_HISTOGRAM && i < n_buckets; i++)
        if (!(buckets[i] > buckets[i - 1]))
            return KB_ERR_CONF;
    f = calloc(1, sizeof *f);
    if (!f)
        return KB_ERR_NOMEM;
    f->kind = kind;
    f->builtin = builtin;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    f->labels_csv = strdup(labels);
    if (!f->name || !f->help || !f->labels_csv)
        goto out_nomem;
    for (const char *p = labels; *p;) {
        size_t n = strcspn(p, ",");
        if (f->n_labels == KB_METRICS_MAX_LABELS)
            goto out_conf;
        char *ln = strndup(p, n);
        if (!ln)
            goto out_nomem;
        f->label_names[f->n_labels++] = ln;
        /* "le" is reserved for histogram buckets; "__" prefixes for Prometheus. */
        if (!valid_name(ln, 0) || !strcmp(ln, "le") || !strncmp(ln, "__", 2))
            goto out_conf;
        p += n;
        if (*p == ',')
            p++;
    }
    if (kind == KB_METRIC_HISTOGRAM) {
        f->buckets = malloc(n_buckets * sizeof *f->buckets);
        if (!f->buckets && n_buckets)
            goto out_nomem;
        memcpy(f->buckets, buckets, n_buckets * sizeof *f->buckets);
        f->n_buckets = n_buckets;
    }
    f->next = families;
    families = f;
    return KB_OK;
out_conf:
    family_free(f);
    return KB_ERR_CONF;
out_nomem:
    family_free(f);
    return KB_ERR_NOMEM;
}

static kb_series_t *series_get(const char *name, const char *const *values, size_t n, int create);

static void declare_catalogue(void)
{
    pthread_rwlock_wrlock(&lock);
    for (size_t i = 0; i < sizeof catalogue / sizeof catalogue[0]; i++)
        declare_locked(catalogue[i].kind, catalogue[i].name, catalogue[i].help,
                       catalogue[i].labels, NULL, 0, 1);
    pthread_rwlock_unlock(&lock);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    kb_series_set(series_get("kb_process_start_time_seconds", NULL, 0, 1),
                  (double)ts.tv_sec + ts.tv_nsec / 1e9);
}

kb_err_t kb_metrics_declare(enum kb_metric_kind kind, const char *name, const char *help,
                            const char *labels, const double *buckets, size_t n_buckets)
{
    pthread_once(&once, declare_catalogue);
    pthread_rwlock_wrlock(&lock);
    kb_err_t err = declare_locked(kind, name, help, labels, buckets, n_buckets, 0);
    pthread_rwlock_unlock(&lock);
    return err;
}

/* Join values with the unit separator, which cannot collide with a
 * different split of the same bytes unless a value contains it (then two
 * combinations share a series: harmless for counting, and such values are
 * not expected in labels). */
static char *join_key(const char *const *values, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(values[i]) + 1;
    char *key = malloc(len), *p = key;
    if (!key)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(values[i]);
        memcpy(p, values[i], l);
        p += l;
        *p++ = '\x1f';
    }
    *p = '\0';
    return key;
}

static struct kb_series *lookup(struct family *f, const char *key, uint64_t h)
{
    for (struct kb_series *s = f->table[h % SERIES_BUCKETS]; s; s = s->hash_next)
        if (!strcmp(s->key, key))
            return s;
    return NULL;
}

static void warn_once(struct family *f, const char *name, const char *why)
{
    if (f && f->warned)
        return;
    if (f)
        f->warned = 1; /* benign race: at worst two log lines */
    KB_LOG_WARN("metrics", "series lookup failed", "family=%s reason=\"%s\"", name, why);
}

kb_series_t *kb_metrics_series_v(const char *name, const char *const *values, size_t n)
{
    pthread_once(&once, declare_catalogue);
    return series_get(name, values, n, 1);
}

/* The lookup itself, making the series when missing and @p create is set;
 * the catalogue is declared already. */
static kb_series_t *series_get(const char *name, const char *const *values, size_t n, int create)
{
    char *key = NULL;
    for (size_t i = 0; i < n; i++)
        if (!values[i])
            return NULL;
    pthread_rwlock_rdlock(&lock);
    struct family *f = find_family(name);
    if (!f || f->n_labels != n) {
        pthread_rwlock_unlock(&lock);
        warn_once(f, name, f ? "wrong number of label values" : "undeclared family");
        return NULL;
    }
    key = join_key(values, n);
    if (!key) {
        pthread_rwlock_unlock(&lock);
        return NULL;
    }
    uint64_t h = hash_str(key);
    struct kb_series *s = lookup(f, key, h);
    pthread_rwlock_unlock(&lock);
    if (s || !create) {
        free(key);
        return s;
    }
    pthread_rwlock_wrlock(&lock);
    s = lookup(f, key, h); /* another thread may have made it meanwhile */
    if (s)
        goto out_unlock;
    s = calloc(1, sizeof *s);
    if (!s)
        goto out_unlock;
    s->fam = f;
    s->values = calloc(n ? n : 1, sizeof *s->values);
    if (f->kind == KB_METRIC_HISTOGRAM)
        s->bucket_hits = calloc(f->n_buckets + 1, sizeof *s->bucket_hits);
    int ok = s->values && (f->kind != KB_METRIC_HISTOGRAM || s->bucket_hits);
    for (size_t i = 0; ok && i < n; i++)
        ok = (s->values[i] = strdup(values[i])) != NULL;
    if (!ok) {
        for (size_t i = 0; s->values && i < n; i++)
            free(s->values[i]);
        free(s->values);
        free(s->bucket_hits);
        free(s);
        s = NULL;
        goto out_unlock;
    }
    atomic_init(&s->bits, double_to_bits(0.0));
    atomic_init(&s->withdrawn, 0);
    s->key = key;
    key = NULL;
    s->hash_next = f->table[h % SERIES_BUCKETS];
    f->table[h % SERIES_BUCKETS] = s;
    if (f->last)
        f->last->order_next = s;
    else
        f->first = s;
    f->last = s;
out_unlock:
    pthread_rwlock_unlock(&lock);
    free(key);
    if (!s)
        warn_once(NULL, name, "out of memory");
    return s;
}

static kb_series_t *series_va(const char *name, va_list ap, int create)
{
    const char *values[KB_METRICS_MAX_LABELS + 1];
    size_t n = 0;
    const char *v;
    while ((v = va_arg(ap, const char *)) != NULL) {
        if (n == KB_METRICS_MAX_LABELS + 1)
            return NULL;
        values[n++] = v;
    }
    pthread_once(&once, declare_catalogue);
    return series_get(name, values, n, create);
}

kb_series_t *kb_metrics_series(const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    kb_series_t *s = series_va(name, ap, 1);
    va_end(ap);
    return s;
}

static void atomic_add_double(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old,
                                                  double_to_bits(bits_to_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void kb_series_add(kb_series_t *s, double v)
{
    if (!s || s->fam->kind == KB_METRIC_HISTOGRAM)
        return;
    if (s->fam->kind == KB_METRIC_COUNTER && !(v >= 0))
        return; /* a counter never goes down (and NaN would poison it) */
    atomic_add_double(&s->bits, v);
    /* a load first: counters are added to per event, and are never withdrawn */
    if (atomic_load_explicit(&s->withdrawn, memory_order_relaxed))
        atomic_store_explicit(&s->withdrawn, 0, memory_order_relaxed);
}

void kb_series_set(kb_series_t *s, double v)
{
    if (!s || s->fam->kind != KB_METRIC_GAUGE)
        return;
    atomic_store_explicit(&s->bits, double_to_bits(v), memory_order_relaxed);
    if (atomic_load_explicit(&s->withdrawn, memory_order_relaxed))
        atomic_store_explicit(&s->withdrawn, 0, memory_order_relaxed);
}

void kb_series_observe(kb_series_t *s, double v)
{
    if (!s || s->fam->kind != KB_METRIC_HISTOGRAM || isnan(v))
        return;
    size_t i = 0;
    while (i < s->fam->n_buckets && v > s->fam->buckets[i])
        i++;
    atomic_fetch_add_explicit(&s->bucket_hits[i], 1, memory_order_relaxed);
    atomic_add_double(&s->bits, v);
}

double kb_series_value(const kb_series_t *s)
{
    if (!s)
        return 0;
    if (s->fam->kind == KB_METRIC_HISTOGRAM) {
        uint64_t n = 0;
        for (size_t i = 0; i <= s->fam->n_buckets; i++)
            n += atomic_load_explicit(&s->bucket_hits[i], memory_order_relaxed);
        return (double)n;
    }
    return bits_to_double(atomic_load_explicit(&s->bits, memory_order_relaxed));
}

void kb_metrics_counter_add(const char *name, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    kb_series_add(series_va(name, ap, 1), v);
    va_end(ap);
}

void kb_metrics_gauge_set(const char *name, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    kb_series_set(series_va(name, ap, 1), v);
    va_end(ap);
}

void kb_metrics_gauge_add(const char *name, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    kb_series_add(series_va(name, ap, 1), v);
    va_end(ap);
}

void kb_metrics_gauge_remove(const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    /* Looked up without creating it: withdrawing what was never there is a no-op. */
    kb_series_t *s = series_va(name, ap, 0);
    va_end(ap);
    if (!s || s->fam->kind != KB_METRIC_GAUGE)
        return;
    atomic_store_explicit(&s->withdrawn, 1, memory_order_relaxed);
    atomic_store_explicit(&s->bits, double_to_bits(0.0), memory_order_relaxed);
}

void kb_metrics_observe(const char *name, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    kb_series_observe(series_va(name, ap, 1), v);
    va_end(ap);
}

/* --- output --- */

/* A growable text buffer; `failed` makes every later append a no-op. */
struct text {
    char *buf;
    size_t len, cap;
    int failed;
};

static void text_append(struct text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            t->failed = 1;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_puts(struct text *t, const char *s)
{
    text_append(t, s, strlen(s));
}

/* Escape for the exposition format: label values escape \ " and newline,
 * HELP text only \ and newline. */
static void text_escaped(struct text *t, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            text_puts(t, "\\\\");
        else if (*s == '\n')
            text_puts(t, "\\n");
        else if (quote && *s == '"')
            text_puts(t, "\\\"");
        else
            text_append(t, s, 1);
    }
}

static void text_number(struct text *t, double v)
{
    char num[40];
    if (isnan(v))
        snprintf(num, sizeof num, "NaN");
    else if (isinf(v))
        snprintf(num, sizeof num, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(int64_t)v && fabs(v) < 1e15)
        snprintf(num, sizeof num, "%lld", (long long)v);
    else
        snprintf(num, sizeof num, "%.17g", v);
    text_puts(t, num);
}

/* name{l1="v1",...[,le="x"]} value\n */
static void text_sample(struct text *t, const struct family *f, const struct kb_series *s,
                        const char *suffix, const char *le, double v)
{
    text_puts(t, f->name);
    text_puts(t, suffix);
    if (f->n_labels || le) {
        text_puts(t, "{");
        for (size_t i = 0; i < f->n_labels; i++) {
            if (i)
                text_puts(t, ",");
            text_puts(t, f->label_names[i]);
            text_puts(t, "=\"");
            text_escaped(t, s->values[i], 1);
            text_puts(t, "\"");
        }
        if (le) {
            text_puts(t, f->n_labels ? ",le=\"" : "le=\"");
            text_puts(t, le);
            text_puts(t, "\"");
        }
        text_puts(t, "}");
    }
    text_puts(t, " ");
    text_number(t, v);
    text_puts(t, "\n");
}

static int cmp_family(const void *a, const void *b)
{
    return strcmp((*(struct family *const *)a)->name, (*(struct family *const *)b)->name);
}

/* The families sorted by name; caller holds the read lock and frees. */
static struct family **sorted_families(size_t *n)
{
    size_t count = 0;
    for (struct family *f = families; f; f = f->next)
        count++;
    struct family **v = malloc((count ? count : 1) * sizeof *v);
    if (!v)
        return NULL;
    count = 0;
    for (struct family *f = families; f; f = f->next)
        v[count++] = f;
    qsort(v, count, sizeof *v, cmp_family);
    *n = count;
    return v;
}

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

kb_err_t kb_metrics_render(char **out, size_t *len)
{
    pthread_once(&once, declare_catalogue);
    struct text t = {0};
    pthread_rwlock_rdlock(&lock);
    size_t n = 0;
    struct family **fams = sorted_families(&n);
    if (!fams) {
        pthread_rwlock_unlock(&lock);
        return KB_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct family *f = fams[i];
        text_puts(&t, "# HELP ");
        text_puts(&t, f->name);
        text_puts(&t, " ");
        text_escaped(&t, f->help, 0);
        text_puts(&t, "\n# TYPE ");
        text_puts(&t, f->name);
        text_puts(&t, " ");
        text_puts(&t, kind_names[f->kind]);
        text_puts(&t, "\n");
        for (const struct kb_series *s = f->first; s; s = s->order_next) {
            if (atomic_load_explicit(&s->withdrawn, memory_order_relaxed))
                continue;
            double sum = bits_to_double(atomic_load_explicit(&s->bits, memory_order_relaxed));
            if (f->kind != KB_METRIC_HISTOGRAM) {
                text_sample(&t, f, s, "", NULL, sum);
                continue;
            }
            uint64_t cum = 0;
            for (size_t b = 0; b <= f->n_buckets; b++) {
                cum += atomic_load_explicit(&s->bucket_hits[b], memory_order_relaxed);
                char le[40];
                if (b == f->n_buckets)
                    snprintf(le, sizeof le, "+Inf");
                else
                    snprintf(le, sizeof le, "%g", f->buckets[b]);
                text_sample(&t, f, s, "_bucket", le, (double)cum);
            }
            text_sample(&t, f, s, "_sum", NULL, sum);
            text_sample(&t, f, s, "_count", NULL, (double)cum);
        }
    }
    pthread_rwlock_unlock(&lock);
    free(fams);
    if (t.failed || !t.buf) {
        free(t.buf);
        return KB_ERR_NOMEM;
    }
    *out = t.buf;
    *len = t.len;
    return KB_OK;
}

kb_err_t kb_metrics_render_json(char **out, size_t *len)
{
    pthread_once(&once, declare_catalogue);
    json_t *root = json_object();
    int failed = !root;
    pthread_rwlock_rdlock(&lock);
    for (const struct family *f = families; f && !failed; f = f->next) {
        json_t *arr = json_array();
        failed |= !arr || json_object_set_new(root, f->name, arr);
        for (const struct kb_series *s = f->first; s && !failed; s = s->order_next) {
            if (atomic_load_explicit(&s->withdrawn, memory_order_relaxed))
                continue;
            json_t *labels = json_object(), *item = json_object();
            failed |= !labels || !item;
            for (size_t i = 0; !failed && i < f->n_labels; i++)
                failed |= json_object_set_new(labels, f->label_names[i],
                                              json_string(s->values[i]));
            double sum = bits_to_double(atomic_load_explicit(&s->bits, memory_order_relaxed));
            if (!failed) {
                json_object_set_new(item, "labels", labels);
                labels = NULL;
                if (f->kind == KB_METRIC_HISTOGRAM) {
                    json_object_set_new(item, "count", json_real(kb_series_value(s)));
                    json_object_set_new(item, "sum", json_real(isfinite(sum) ? sum : 0));
                } else {
                    json_object_set_new(item, "value", json_real(isfinite(sum) ? sum : 0));
                }
                failed |= json_array_append_new(arr, item);
                item = NULL;
            }
            json_decref(labels);
            json_decref(item);
        }
    }
    pthread_rwlock_unlock(&lock);
    /* Insertion order keeps labels in their declared order. */
    char *s = failed ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!s)
        return KB_ERR_NOMEM;
    *out = s;
    *len = strlen(s);
    return KB_OK;
}

/* --- librdkafka statistics --- */

/* Integer field @p name of a statistics object, or -1 when it is missing
 * (librdkafka's logical offsets are negative too: all mean "not known"). */
static json_int_t stat_int(const json_t *part, const char *name)
{
    const json_t *v = json_object_get(part, name);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

kb_err_t kb_metrics_kafka_stats(const char *json, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return KB_ERR_INVALID;
    }
    kb_metrics_counter_add("kb_kafka_stats_total", 1, NULL);
    /* Only a consumer's own document says which partitions it holds: a
     * producer's lists the partitions it writes to, all "not desired". */
    const char *type = json_string_value(json_object_get(root, "type"));
    int consumer = type && !strcmp(type, "consumer");
    json_t *topics = json_object_get(root, "topics");
    const char *tname;
    json_t *topic;
    json_object_foreach(topics, tname, topic)
    {
        const char *pname;
        json_t *part;
        json_object_foreach(json_object_get(topic, "partitions"), pname, part)
        {
            /* -1 is librdkafka's internal UA partition; a lag of -1 means unknown. */
            if (!strcmp(pname, "-1"))
                continue;
            /* librdkafka marks a partition desired while it is assigned to
             * this consumer and clears the mark when it is revoked, but
             * goes on listing it (with the lag it had). Its lag is now the
             * business of the process that got it: stop exporting it here. */
            if (consumer && json_is_false(json_object_get(part, "desired"))) {
                kb_metrics_gauge_remove("kb_kafka_consumer_lag", tname, pname, NULL);
                continue;
            }
            json_t *lag = json_object_get(part, "consumer_lag");
            json_int_t v = json_is_integer(lag) ? json_integer_value(lag) : -1;
            if (v < 0) {
                /* A transactional consumer never commits itself (its offsets
                 * go through the producer), so librdkafka knows no committed
                 * offset: the lag is then the end of the partition (the last
                 * stable offset, as read_committed sees it) minus the next
                 * offset handed to the application. */
                json_int_t end = stat_int(part, "ls_offset");
                json_int_t pos = stat_int(part, "app_offset");
                if (end < 0)
                    end = stat_int(part, "hi_offset");
                /* Nothing handed over since the partition was assigned (no
                 * app_offset) and nothing fetched waiting: the application
                 * stands where fetching stands. Without this a partition
                 * that just moved here shows no lag until an event comes. */
                const char *state = json_string_value(json_object_get(part, "fetch_state"));
                if (pos < 0 && state && !strcmp(state, "active") &&
                    stat_int(part, "fetchq_cnt") == 0)
                    pos = stat_int(part, "next_offset");
                if (pos >= 0 && end >= pos)
                    v = end - pos;
            }
            if (v < 0)
                continue;
            kb_metrics_gauge_set("kb_kafka_consumer_lag", (double)v, tname, pname, NULL);
        }
    }
    json_decref(root);
    return KB_OK;
}

int kb_metrics_kafka_stats_cb(void *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (kb_metrics_kafka_stats(json, json_len))
        KB_LOG_WARN("metrics", "unreadable librdkafka statistics", "bytes=%zu", json_len);
    return 0;
}

/* --- endpoints --- */

void kb_metrics_set_ready(int ready)
{
    atomic_store(&ready_flag, ready ? 1 : 0);
}

void kb_metrics_set_healthy(int healthy)
{
    atomic_store(&healthy_flag, healthy ? 1 : 0);
}

static void on_metrics(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    char *body;
    size_t len;
    if (kb_metrics_render(&body, &len)) {
        kb_http_reply_error(req, 500, 500, "out of memory");
        return;
    }
    kb_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
    free(body);
}

static void on_metrics_json(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    char *body;
    size_t len;
    if (kb_metrics_render_json(&body, &len)) {
        kb_http_reply_error(req, 500, 500, "out of memory");
        return;
    }
    kb_http_reply(req, 200, "application/json", body, len);
    free(body);
}

static void on_flag(kb_http_req_t *req, void *opaque)
{
    int ok = atomic_load((atomic_int *)opaque);
    const char *body = ok ? "ok\n" : "not ok\n";
    kb_http_reply(req, ok ? 200 : 503, "text/plain; charset=utf-8", body, strlen(body));
}

kb_err_t kb_metrics_routes(struct kb_http *h)
{
    kb_err_t err = kb_http_route(h, "GET", "/metrics", on_metrics, NULL);
    if (!err)
        err = kb_http_route(h, "GET", "/metrics.json", on_metrics_json, NULL);
    if (!err)
        err = kb_http_route(h, "GET", "/healthz", on_flag, &healthy_flag);
    if (!err)
        err = kb_http_route(h, "GET", "/readyz", on_flag, &ready_flag);
    return err;
}

struct kb_http *kb_metrics_serve(const char *addr, char *errstr, size_t errstr_size)
{
    char host[256] = "127.0.0.1";
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon[1] == '\0' || *end || port < 0 || port > 65535) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                   "metrics address \"%s\" is not host:port", addr ? addr : "");
        return NULL;
    }
    if (colon > addr) {
        size_t hl = (size_t)(colon - addr);
        if (hl >= sizeof host) {
            kb_err_set(KB_ERR_CONF, errstr, errstr_size, "metrics host too long");
            return NULL;
        }
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    struct kb_http_opts o = {.addr = host, .port = (uint16_t)port};
    kb_http_t *h = kb_http_new(&o, errstr, errstr_size);
    if (!h)
        return NULL;
    if (kb_metrics_routes(h)) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "registering metrics routes failed");
        goto out_destroy;
    }
    if (kb_http_start(h, errstr, errstr_size))
        goto out_destroy;
    return h;
out_destroy:
    kb_http_destroy(h);
    return NULL;
}

void kb_metrics_reset(void)
{
    pthread_once(&once, declare_catalogue);
    pthread_rwlock_wrlock(&lock);
    struct family **link = &families;
    while (*link) {
        struct family *f = *link;
        if (f->builtin) {
            /* Keep the declaration, drop its series. */
            for (struct kb_series *s = f->first, *n; s; s = n) {
                n = s->order_next;
                for (size_t i = 0; i < f->n_labels; i++)
                    free(s->values[i]);
                free(s->values);
                free(s->key);
                free(s->bucket_hits);
                free(s);
            }
            memset(f->table, 0, sizeof f->table);
            f->first = f->last = NULL;
            link = &f->next;
        } else {
            *link = f->next;
            family_free(f);
        }
    }
    pthread_rwlock_unlock(&lock);
}
