/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * admin_api.c - the router's admin API (JSON over the embedded HTTP server):
 * subscriptions (list, show, validate, dry-run), dead letters (list, redrive)
 * and the audit verification status. Authentication is the server's
 * (bearer token or client certificate, kb_http_opts); this file only answers.
 *
 * Nothing that waits on Kafka or reads the subscription files runs on the
 * server thread, which must stay free for /metrics, probes and the
 * dashboard stream. A dry-run is a job (202, then polled) and the audit
 * verification runs on a timer or on request, both on the admin's worker
 * thread, each bounded in time.
 * Dead-letter pages and redrives are parsed and checked on the server
 * thread (a bad request is answered at once), then handed to a second
 * thread, the dead-letter worker, which answers them with a deferred reply
 * (kb_http_defer) once Kafka did: a slow or frozen broker keeps that one
 * request waiting, never /healthz. A worker of their own, because a page
 * must not wait minutes behind a dry-run or an audit verification; one, not
 * a pool, because they are rare operator requests and a frozen broker would
 * tie up a pool all the same. `route --admin-addr` is for putting the admin
 * API on another address (network separation), not for keeping probes alive.
 * GET /admin/subscriptions reads the files (follow lists of up to 64 MiB
 * each) on a third thread, the subscriptions worker, also answered with a
 * deferred reply: never behind Kafka or a dry-run, bounded in time, and one
 * load answers every request waiting for it.
 *
 * Invariants:
 *  1. At most one dry-run is queued or running; a second POST gets 429.
 *  2. A job's result is written once, under mu, when its state leaves RUNNING.
 *  3. No worker holds mu while talking to Kafka.
 *  4. At most MAX_DLQ_WORK dead-letter requests are queued or running
 *     (dlq_busy, under mu); one more is answered 503 with Retry-After at
 *     once, so a frozen broker costs a bounded number of waiting requests.
 *  5. A queued dead-letter request holds a deferred reply that is answered
 *     exactly once: by the dead-letter worker when it ran, or, when it never
 *     started, by kb_admin_destroy (503; a stopped server drops it). Only
 *     the dead-letter worker takes requests off the queue.
 *  6. A subscriptions request waits for the next load of the files, which
 *     begins after it arrived (the files as they are now) and answers every
 *     request waiting when it began. At most MAX_SUBS_WAIT wait (subs_waiting,
 *     under mu); one more is answered 503 with Retry-After at once. A load
 *     gives up after SUBS_MAX_MS (503), or at kb_admin_destroy.
 *  7. A waiting subscriptions request's deferred reply is answered exactly
 *     once: by the subscriptions worker, or, when its load never began, by
 *     kb_admin_destroy (503). Only that worker takes requests off the list.
 *
 * Job states: QUEUED --worker picks it--> RUNNING --kb_dryrun_run--> DONE | FAILED.
 * Dead-letter request states: parsed (on_dlq / on_redrive, server thread)
 *     --dlq_submit--> queued --dlq_worker_main--> running --run_dlq_page /
 *     run_redrive: deferred reply--> freed; queued --kb_admin_destroy: 503-->
 *     freed; parsed --bad request 400 / queue full 503--> freed, never queued.
 * Subscriptions request states: waiting (on_subs: deferred) --subs_worker_main
 *     takes the list--> loading --subs_answer--> freed; waiting
 *     --kb_admin_destroy: 503--> freed; list full 503 --> never waiting.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "admin_int.h"
#include "sub_int.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/clock.h"
#include "ketenbus/event.h"
#include "ketenbus/log.h"

#define MAX_JOBS 8
#define MAX_DLQ_WORK 4 /* dead-letter requests queued or running (invariant 4) */
#define MAX_REDRIVE 100
#define MAX_PAGE 1000
#define MAX_YAML (1u << 20)
#define MAX_SUBS_WAIT 16    /* subscriptions requests waiting for the next load (invariant 6) */
#define SUBS_MAX_MS   30000 /* bound on one load of the files for them */

enum job_state { JOB_FREE = 0, JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED };

struct job {
    unsigned id;            /* 1, 2, ...; names the job in its URL */
    enum job_state state;
    struct kb_subs subs;    /* the proposed subscriptions (owned) */
    int64_t since_ms, until_ms;
    size_t samples;
    int64_t created_ms;     /* wall clock, for the reply */
    json_t *result;         /* DONE: the dry-run result */
    char error[512];        /* FAILED: why */
};

enum dlq_kind { DLQ_PAGE, DLQ_REDRIVE };

/* One dead-letter request for the dead-letter worker, parsed and checked
 * on the server thread (invariants 4 and 5). */
struct dlq_work {
    enum dlq_kind kind;              /* a page or a redrive */
    kb_http_deferred_t *reply;       /* answered exactly once (invariant 5) */
    const char *topic;               /* DLQ_PAGE: the dead-letter topic (a->o.dlq_topic or tbuf) */
    char tbuf[256];                  /* the default topic's name */
    int32_t partition;               /* DLQ_PAGE: the cursor's partition ... */
    int64_t offset;                  /* ... and offset */
    size_t limit;                    /* DLQ_PAGE: letters on the page */
    struct kb_admin_letter *letters; /* DLQ_REDRIVE: what to send back (owned) */
    int n_letters;                   /* entries of letters */
    const char *auth;                /* DLQ_REDRIVE: how the request authenticated (static) */
    struct dlq_work *next;           /* in the queue, oldest first */
};

/* One GET /admin/subscriptions[/NAME] waiting for a load (invariants 6, 7). */
struct subs_wait {
    kb_http_deferred_t *reply; /* answered exactly once (invariant 7) */
    struct subs_wait *next;    /* the next waiting request (newest first) */
    char rest[];               /* the path after /admin/subscriptions: "", "/" or "/NAME" */
};

struct kb_admin {
    struct kb_admin_opts o;   /* pointers not owned (the router's argv and options) */
    pthread_t worker;         /* dry-runs and audit verification */
    int worker_started;
    pthread_t dlq_worker;     /* dead-letter pages and redrives */
    int dlq_worker_started;
    pthread_t subs_worker; /* loads of the files for GET /admin/subscriptions */
    int subs_worker_started;
    pthread_mutex_t mu;       /* guards everything below */
    pthread_cond_t cv;        /* work arrived or stop */
    pthread_cond_t dlq_cv;    /* dead-letter work arrived or stop */
    pthread_cond_t subs_cv;   /* a subscriptions request arrived or stop */
    struct subs_wait *subs_waiting;       /* requests for the next load (invariant 6) */
    int n_subs_waiting;                   /* entries of subs_waiting */
    struct dlq_work *dlq_head, *dlq_tail; /* queued dead-letter requests, oldest first */
    int dlq_busy;             /* queued + running (invariant 4) */
    atomic_int stop;
    struct job jobs[MAX_JOBS];
    unsigned next_id;
    /* audit verification */
    int audit_running;
    int audit_requested;
    int64_t audit_next_ms;    /* monotonic: next timed run; 0 = none */
    int64_t audit_started, audit_finished; /* wall clock ms; 0 = never */
    unsigned audit_runs;
    json_t *audit_last;       /* the last completed result, or NULL */
    char audit_error[512];    /* the last run's failure, or "" */
};

static json_t *time_json(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[40];
    kb_event_time(ms, buf);
    return json_string(buf);
}

/* ---- worker --------------------------------------------------------------- */

static void *dlq_worker_main(void *arg);
static void *subs_worker_main(void *arg);
static void dlq_work_free(struct dlq_work *w);
static void reply_stopping(kb_http_deferred_t *reply);

static void run_job(kb_admin_t *a, struct job *j)
{
    char errstr[512] = "";
    json_t *result = NULL;
    kb_schemas_t *schemas = kb_schemas_open(a->o.schemas_source, errstr, sizeof errstr);
    if (schemas) {
        struct kb_dryrun_result res;
        struct kb_dryrun_opts dro = {
            .kafka = a->o.kafka,
            .subs = &j->subs,
            .schemas = schemas,
            .since_ms = j->since_ms,
            .until_ms = j->until_ms,
            .max_samples = j->samples,
            .deadline_ms = kb_mono_ms() + 1000LL * (a->o.dryrun_max_seconds > 0
                                                     ? a->o.dryrun_max_seconds : 120),
            .stop = &a->stop,
        };
        if (!kb_dryrun_run(&dro, &res, errstr, sizeof errstr)) {
            result = kb_dryrun_result_json(&res, &j->subs);
            kb_dryrun_result_fini(&res);
            if (!result)
                snprintf(errstr, sizeof errstr, "out of memory");
        }
        kb_schemas_destroy(schemas);
    }
    pthread_mutex_lock(&a->mu);
    j->result = result;
    j->state = result ? JOB_DONE : JOB_FAILED;
    if (!result)
        snprintf(j->error, sizeof j->error, "%s", errstr);
    /* The result is built: the parsed subscriptions (about 10 MB for a
     * 1 MiB body) are not kept for as long as the slot holds it. */
    kb_subs_fini(&j->subs);
    pthread_mutex_unlock(&a->mu);
    KB_LOG_INFO("admin", "dry-run finished", "job=%u state=%s", j->id,
                result ? "done" : "failed");
}

static void run_audit(kb_admin_t *a)
{
    char errstr[512] = "";
    struct kb_audit_status_opts so = {
        .kafka = a->o.kafka,
        .public_key_files = a->o.audit_public_keys,
        .n_public_keys = a->o.n_audit_public_keys,
        .max_seconds = a->o.audit_max_seconds,
        .router_group = a->o.router_group,
    };
    int64_t started = kb_wall_ms();
    json_t *r = kb_audit_status_verify(&so, errstr, sizeof errstr);
    pthread_mutex_lock(&a->mu);
    a->audit_running = 0;
    a->audit_started = started;
    a->audit_finished = kb_wall_ms();
    a->audit_runs++;
    if (r) {
        json_decref(a->audit_last);
        a->audit_last = r;
        a->audit_error[0] = '\0';
    } else {
        snprintf(a->audit_error, sizeof a->audit_error, "%s", errstr);
    }
    pthread_mutex_unlock(&a->mu);
    KB_LOG_INFO("admin", "audit verification finished", "result=%s",
                r ? json_string_value(json_object_get(r, "result")) : "error");
}

static void *worker_main(void *arg)
{
    kb_admin_t *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!atomic_load(&a->stop)) {
        struct job *j = NULL;
        for (int i = 0; i < MAX_JOBS; i++)
            if (a->jobs[i].state == JOB_QUEUED)
                j = &a->jobs[i];
        if (j) {
            j->state = JOB_RUNNING;
            pthread_mutex_unlock(&a->mu);
            run_job(a, j);
            pthread_mutex_lock(&a->mu);
            continue;
        }
        int64_t now = kb_mono_ms();
        if (a->audit_requested || (a->audit_next_ms && now >= a->audit_next_ms)) {
            a->audit_requested = 0;
            a->audit_running = 1;
            if (a->o.audit_every_s > 0)
                a->audit_next_ms = now + 1000LL * a->o.audit_every_s;
            pthread_mutex_unlock(&a->mu);
            run_audit(a);
            pthread_mutex_lock(&a->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

kb_admin_t *kb_admin_new(const struct kb_admin_opts *opts, char *errstr, size_t errstr_size)
{
    if (!opts || !opts->kafka || !opts->subs_path || !opts->schemas_source) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                   "admin: kafka, subscriptions and schemas are required");
        return NULL;
    }
    kb_admin_t *a = calloc(1, sizeof *a);
    if (!a) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    a->o = *opts;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_cond_init(&a->dlq_cv, NULL);
    pthread_cond_init(&a->subs_cv, NULL);
    /* The first timed verification soon after start, so the status page
     * says something about the trail the router is extending. */
    if (a->o.audit_every_s > 0)
        a->audit_next_ms = kb_mono_ms() + 2000;
    if (pthread_create(&a->worker, NULL, worker_main, a) != 0) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "admin: cannot start its thread");
        kb_admin_destroy(a);
        return NULL;
    }
    a->worker_started = 1;
    if (pthread_create(&a->dlq_worker, NULL, dlq_worker_main, a) != 0) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "admin: cannot start its thread");
        kb_admin_destroy(a);
        return NULL;
    }
    a->dlq_worker_started = 1;
    if (pthread_create(&a->subs_worker, NULL, subs_worker_main, a) != 0) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "admin: cannot start its thread");
        kb_admin_destroy(a);
        return NULL;
    }
    a->subs_worker_started = 1;
    return a;
}

void kb_admin_destroy(kb_admin_t *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    atomic_store(&a->stop, 1);
    pthread_cond_broadcast(&a->cv);
    pthread_cond_broadcast(&a->dlq_cv);
    pthread_cond_broadcast(&a->subs_cv);
    pthread_mutex_unlock(&a->mu);
    if (a->worker_started)
        pthread_join(a->worker, NULL);
    if (a->dlq_worker_started)
        pthread_join(a->dlq_worker, NULL);
    if (a->subs_worker_started)
        pthread_join(a->subs_worker, NULL);
    /* Requests whose load never began (invariant 7). */
    while (a->subs_waiting) {
        struct subs_wait *w = a->subs_waiting;
        a->subs_waiting = w->next;
        reply_stopping(w->reply);
        free(w);
    }
    /* What the dead-letter worker never started is answered here
     * (invariant 5); the server has normally stopped, dropping it. */
    while (a->dlq_head) {
        struct dlq_work *w = a->dlq_head;
        a->dlq_head = w->next;
        reply_stopping(w->reply);
        dlq_work_free(w);
    }
    for (int i = 0; i < MAX_JOBS; i++) {
        kb_subs_fini(&a->jobs[i].subs);
        json_decref(a->jobs[i].result);
    }
    json_decref(a->audit_last);
    pthread_cond_destroy(&a->subs_cv);
    pthread_cond_destroy(&a->dlq_cv);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* ---- pure helpers ---------------------------------------------------------- */

static const char *const op_names[] = {"=", "!=", "<", "<=", ">", ">=", "in", "exists"};

static json_t *filter_json(const struct kb_filter *f)
{
    json_t *j = NULL, *kids;
    switch (f->kind) {
    case KB_FILTER_EXACT:
    case KB_FILTER_PREFIX:
    case KB_FILTER_SUFFIX:
        j = json_pack("{s:{s:s}}",
                      f->kind == KB_FILTER_EXACT    ? "exact"
                      : f->kind == KB_FILTER_PREFIX ? "prefix"
                                                    : "suffix",
                      f->attr ? f->attr : "", f->n_values ? f->values[0] : "");
        break;
    case KB_FILTER_ALL:
    case KB_FILTER_ANY:
    case KB_FILTER_NOT:
        kids = json_array();
        for (size_t i = 0; i < f->n_children; i++)
            json_array_append_new(kids, filter_json(&f->children[i]));
        if (f->kind == KB_FILTER_NOT)
            j = json_pack("{s:o}", "not", f->n_children ? json_incref(json_array_get(kids, 0))
                                                        : json_null());
        else
            j = json_pack("{s:O}", f->kind == KB_FILTER_ALL ? "all" : "any", kids);
        json_decref(kids);
        break;
    case KB_FILTER_FIELD: {
        json_t *field = json_pack("{s:s, s:s}", "path", f->path ? f->path : "", "op",
                                  (size_t)f->op < sizeof op_names / sizeof *op_names
                                      ? op_names[f->op] : "?");
        if (f->op == KB_OP_EXISTS) {
            json_object_set_new(field, "value", json_boolean(f->exists));
        } else if (f->op == KB_OP_IN) {
            json_t *vals = json_array();
            for (size_t i = 0; i < f->n_values; i++)
                json_array_append_new(vals, json_string(f->values[i]));
            json_object_set_new(field, "values", vals);
        } else if (f->n_values) {
            json_object_set_new(field, "value", json_string(f->values[0]));
        }
        j = json_pack("{s:o}", "field", field);
        break;
    }
    }
    return j ? j : json_null();
}

static json_t *strings_json(char *const *list, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

json_t *kb_admin_sub_json(const struct kb_sub *sub)
{
    static const char *const kinds[] = {"kafka", "webhook", "legacy"};
    json_t *j = json_pack(
        "{s:s, s:s?, s:I, s:{s:s?, s:s?}, s:o, s:o, s:o, s:o}", "name", sub->name, "file",
        sub->file, "line", (json_int_t)sub->line, "purpose", "id", sub->purpose_id,
        "legal_basis", sub->legal_basis, "types", strings_json(sub->types, sub->n_types),
        "filter", sub->filter ? filter_json(sub->filter) : json_null(), "fields",
        strings_json(sub->fields, sub->n_fields), "pseudonymise",
        strings_json(sub->pseudonymise, sub->n_pseudonymise));
    if (!j)
        return NULL;
    json_t *del = json_pack("{s:s, s:s?}", "kind",
                            (size_t)sub->delivery < 3 ? kinds[sub->delivery] : "?", "topic",
                            sub->topic);
    if (sub->delivery == KB_DELIVERY_WEBHOOK)
        /* The URL and file paths, never the secret's bytes. */
        json_object_set_new(del, "webhook",
                            json_pack("{s:s?, s:s?, s:s?, s:b, s:i, s:f, s:I}", "url",
                                      sub->webhook.url, "secret_file", sub->webhook.secret_file,
                                      "ca_file", sub->webhook.ca_file, "binary_mode",
                                      sub->webhook.binary_mode, "concurrency",
                                      sub->webhook.concurrency, "rate_per_s",
                                      sub->webhook.rate_per_s, "retry_window_s",
                                      (json_int_t)sub->webhook.retry_window_s));
    else if (sub->delivery == KB_DELIVERY_LEGACY)
        json_object_set_new(del, "legacy", json_pack("{s:s?, s:s?}", "adapter",
                                                     sub->legacy_adapter, "format",
                                                     sub->legacy_format));
    json_object_set_new(j, "delivery", del);
    if (sub->follow_file)
        json_object_set_new(j, "follow", json_pack("{s:s, s:I}", "file", sub->follow_file,
                                                   "subjects", (json_int_t)sub->n_follow));
    else if (sub->follow_topic) /* read from the files: the topic's list is not loaded here */
        json_object_set_new(j, "follow", json_pack("{s:s}", "topic", sub->follow_topic));
    json_object_set_new(j, "valid_from",
                        sub->valid_from_ms == INT64_MIN ? json_null() : time_json(sub->valid_from_ms));
    json_object_set_new(j, "valid_until", sub->valid_until_ms == INT64_MAX
                                              ? json_null()
                                              : time_json(sub->valid_until_ms));
    return j;
}

static int json_int_in(const json_t *v, long long lo, long long hi, long long *out)
{
    if (!json_is_integer(v))
        return -1;
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* Decode standard, padded base64 (RFC 4648 section 4) into a new buffer.
 * -1 on anything else: other characters, line breaks, a length that is not
 * a multiple of 4, padding inside, and bits after the last byte that are
 * not zero ("AAAtion=" would decode as "AAAtiok=" does). RFC 4648 section
 * 3.5 lets a decoder reject those; this one does, so that one value has one
 * text and what an operator sent is what the audit can show again. */
static int b64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t pad = len >= 1 && s[len - 1] == '=' ? (len >= 2 && s[len - 2] == '=' ? 2 : 1) : 0;
    if (len % 4 || len > INT_MAX || strspn(s, alphabet) != len - pad)
        return -1;
    /* The last character before the padding carries 2 (pad 2) or 4 (pad 1)
     * bits of the last byte; the rest of its 6 must be zero. */
    if (pad && (strchr(alphabet, s[len - pad - 1]) - alphabet) & (pad == 2 ? 0x0f : 0x03))
        return -1;
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return -1;
    /* EVP_DecodeBlock counts the bytes of the padding as decoded zeros. */
    int n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
    if (n < 0 || (size_t)n < pad) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = (size_t)n - pad;
    return 0;
}

void kb_admin_letters_free(struct kb_admin_letter *letters, size_t n)
{
    for (size_t i = 0; letters && i < n; i++)
        free(letters[i].value);
    free(letters);
}

int kb_admin_parse_redrive(const json_t *body, size_t max, struct kb_admin_letter **out,
                           char *errstr, size_t errstr_size)
{
    *out = NULL;
    if (!json_is_object(body)) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "the body must be a JSON object");
        return -1;
    }
    const json_t *letters = json_object_get(body, "letters");
    const json_t *offsets = json_object_get(body, "offsets");
    if (!letters == !offsets) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                   "give either \"letters\": [{\"partition\": P, \"offset\": O}] or "
                   "\"partition\" with \"offsets\": [O, ...]");
        return -1;
    }
    const json_t *list = letters ? letters : offsets;
    size_t n = json_is_array(list) ? json_array_size(list) : 0;
    if (n == 0 || n > max) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s must be a list of 1 to %zu entries",
                   letters ? "letters" : "offsets", max);
        return -1;
    }
    long long partition = 0;
    const json_t *pj = json_object_get(body, "partition");
    if (offsets && pj && json_int_in(pj, 0, INT32_MAX, &partition)) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "partition must be an integer >= 0");
        return -1;
    }
    struct kb_admin_letter *l = calloc(n, sizeof *l);
    if (!l) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(list, i);
        long long p = partition, o;
        if (letters) {
            if (!json_is_object(e) ||
                json_int_in(json_object_get(e, "partition"), 0, INT32_MAX, &p) ||
                json_int_in(json_object_get(e, "offset"), 0, INT64_MAX, &o)) {
                kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                           "letters[%zu] needs integer partition and offset >= 0", i);
                goto fail;
            }
            const json_t *v = json_object_get(e, "value_base64");
            if (v && (!json_is_string(v) ||
                      b64_decode(json_string_value(v), json_string_length(v), &l[i].value,
                                 &l[i].value_len))) {
                kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                           "letters[%zu].value_base64 must be a string of standard, padded "
                           "base64 (no line breaks)",
                           i);
                goto fail;
            }
        } else if (json_int_in(e, 0, INT64_MAX, &o)) {
            kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                       "offsets[%zu] must be an integer >= 0", i);
            goto fail;
        }
        l[i].partition = (int32_t)p;
        l[i].offset = (int64_t)o;
    }
    *out = l;
    return (int)n;
fail:
    kb_admin_letters_free(l, n);
    return -1;
}

/* A decimal query parameter in [lo, hi]; @p def when absent. -1 when bad. */
static int query_int(kb_http_req_t *req, const char *name, long long lo, long long hi,
                     long long def, long long *out)
{
    const char *s = kb_http_req_query(req, name);
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* ---- subscriptions ------------------------------------------------------------ */

/* Load subscriptions from the request body (YAML), in memory: the router
 * may have no writable file system (readOnlyRootFilesystem), and errors
 * name it "body". 0 or -1 with a reply sent. */
static int subs_from_body(kb_admin_t *a, kb_http_req_t *req, struct kb_subs *subs)
{
    size_t len;
    const char *body = kb_http_req_body(req, &len);
    if (len == 0 || len > MAX_YAML) {
        kb_http_reply_error(req, 400, 40001, "the body must be a subscription file (YAML, "
                                             "1 byte to 1 MiB)");
        return -1;
    }
    char errstr[1024];
    /* A posted file is untrusted: no follow: FILE (it would read a file of
     * this server's choosing on the request's say-so). */
    kb_err_t err = kb_subs_load_untrusted_buffer("body", body, len, a->o.subject_key,
                                                 a->o.subject_key_len, subs, errstr, sizeof errstr);
    if (err == KB_ERR_NOMEM) {
        kb_http_reply_error(req, 500, 50001, "out of memory");
        return -1;
    }
    if (err) {
        kb_http_reply_error(req, 422, 42201, "%s", errstr);
        return -1;
    }
    return 0;
}

/* Subscriptions worker: answer @p w from one load of the files (@p err,
 * with @p errstr, when it failed). */
static void subs_answer(kb_admin_t *a, const struct subs_wait *w, const struct kb_subs *subs,
                        kb_err_t err, const char *errstr)
{
    const char *rest = w->rest;
    if (err && atomic_load(&a->stop)) {
        reply_stopping(w->reply);
    } else if (err == KB_ERR_TIMEOUT) {
        kb_http_deferred_reply_error(w->reply, 503, 50306,
                                     "the subscription files did not load within %d s: %s",
                                     SUBS_MAX_MS / 1000, errstr);
    } else if (err) {
        /* The router keeps its last good set; say so rather than fail silently. */
        kb_http_deferred_reply_error(w->reply, 500, 50002, "the subscription files do not load: %s",
                                     errstr);
    } else if (!rest[0] || !strcmp(rest, "/")) {
        json_t *list = json_array();
        for (size_t i = 0; i < subs->n; i++)
            json_array_append_new(list, kb_admin_sub_json(&subs->items[i]));
        kb_http_deferred_reply_json(w->reply, 200, NULL,
                                    json_pack("{s:s, s:I, s:o}", "path", a->o.subs_path, "count",
                                              (json_int_t)subs->n, "subscriptions", list));
    } else {
        const char *name = rest + 1;
        size_t i = 0;
        while (i < subs->n && strcmp(subs->items[i].name, name) != 0)
            i++;
        if (i == subs->n || strchr(name, '/'))
            kb_http_deferred_reply_error(w->reply, 404, 40401, "no subscription with that name");
        else
            kb_http_deferred_reply_json(w->reply, 200, NULL, kb_admin_sub_json(&subs->items[i]));
    }
}

static void *subs_worker_main(void *arg)
{
    kb_admin_t *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!atomic_load(&a->stop)) {
        struct subs_wait *batch = a->subs_waiting;
        if (!batch) {
            pthread_cond_wait(&a->subs_cv, &a->mu);
            continue;
        }
        /* Everyone waiting now is answered from one load, which begins
         * after each of them arrived (invariant 6). */
        a->subs_waiting = NULL;
        a->n_subs_waiting = 0;
        pthread_mutex_unlock(&a->mu);
        int open = 0;
        for (const struct subs_wait *w = batch; w; w = w->next)
            open |= kb_http_deferred_open(w->reply);
        struct kb_subs subs = {0};
        char errstr[1024] = "";
        struct kb__subs_bound bound = {kb_mono_ms() + SUBS_MAX_MS, &a->stop};
        /* Nobody will read the answers (they hung up): no load for them. */
        kb_err_t err =
            open ? kb__subs_load_bounded(a->o.subs_path, a->o.subject_key, a->o.subject_key_len,
                                         &bound, &subs, errstr, sizeof errstr)
                 : KB_ERR_STATE;
        while (batch) {
            struct subs_wait *w = batch;
            batch = w->next;
            if (open)
                subs_answer(a, w, &subs, err, errstr);
            else
                reply_stopping(w->reply);
            free(w);
        }
        kb_subs_fini(&subs);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Server thread: the files are read on the subscriptions worker, never
 * here (a 64 MiB follow list would hold up every probe meanwhile). */
static void on_subs(kb_http_req_t *req, void *opaque)
{
    kb_admin_t *a = opaque;
    const char *rest = kb_http_req_rest(req);
    size_t len = strlen(rest);
    struct subs_wait *w = calloc(1, sizeof *w + len + 1);
    if (!w) {
        kb_http_reply_error(req, 500, 50001, "out of memory");
        return;
    }
    memcpy(w->rest, rest, len + 1);
    pthread_mutex_lock(&a->mu);
    if (a->n_subs_waiting >= MAX_SUBS_WAIT) {
        /* Make room first from requests whose clients are gone: they would
         * hold their places until the next load ends (up to 30 s). */
        for (struct subs_wait **pp = &a->subs_waiting; *pp;) {
            struct subs_wait *gone = *pp;
            if (kb_http_deferred_open(gone->reply)) {
                pp = &gone->next;
                continue;
            }
            *pp = gone->next;
            a->n_subs_waiting--;
            reply_stopping(gone->reply); /* dropped: nobody reads it */
            free(gone);
        }
    }
    if (a->n_subs_waiting >= MAX_SUBS_WAIT) {
        pthread_mutex_unlock(&a->mu);
        free(w);
        kb_http_reply_header(req, "Retry-After", "5");
        kb_http_reply_error(req, 503, 50307,
                            "%d subscription requests wait for a load of the files already; "
                            "try again later",
                            MAX_SUBS_WAIT);
        return;
    }
    w->reply = kb_http_defer(req);
    if (!w->reply) {
        pthread_mutex_unlock(&a->mu);
        free(w);
        kb_http_reply_error(req, 500, 50001, "out of memory");
        return;
    }
    w->next = a->subs_waiting;
    a->subs_waiting = w;
    a->n_subs_waiting++;
    pthread_cond_signal(&a->subs_cv);
    pthread_mutex_unlock(&a->mu);
}

static void on_validate(kb_http_req_t *req, void *opaque)
{
    kb_admin_t *a = opaque;
    struct kb_subs subs;
    if (subs_from_body(a, req, &subs))
        return;
    json_t *names = json_array();
    for (size_t i = 0; i < subs.n; i++)
        json_array_append_new(names, json_string(subs.items[i].name));
    kb_http_reply_json(req, 200, NULL,
                       json_pack("{s:b, s:I, s:o}", "ok", 1, "count", (json_int_t)subs.n,
                                 "subscriptions", names));
    kb_subs_fini(&subs);
}

static json_t *job_json(const struct job *j)
{
    static const char *const names[] = {"free", "queued", "running", "done", "failed"};
    char href[96];
    snprintf(href, sizeof href, "/admin/subscriptions/dry-run/%u", j->id);
    json_t *r = json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)j->id, "status",
                          names[j->state], "href", href, "created", time_json(j->created_ms));
    if (j->state == JOB_DONE)
        json_object_set(r, "result", j->result);
    else if (j->state == JOB_FAILED)
        json_object_set_new(r, "error", json_string(j->error));
    return r;
}

static void on_dryrun_post(kb_http_req_t *req, void *opaque)
{
    kb_admin_t *a = opaque;
    const char *since_s = kb_http_req_query(req, "since");
    const char *until_s = kb_http_req_query(req, "until");
    int64_t since, until = INT64_MAX;
    long long samples;
    char why[256];
    if (!since_s) {
        kb_http_reply_error(req, 400, 40002,
                            "since is required: RFC 3339 (2024-03-18T09:15:30Z), a date or "
                            "milliseconds since 1970");
        return;
    }
    /* As `ketenbus sub dry-run --since`: one parser, the same answers. */
    if (kb_cli_time("since", since_s, &since, why, sizeof why) ||
        (until_s && kb_cli_time("until", until_s, &until, why, sizeof why))) {
        kb_http_reply_error(req, 400, 40002, "%s", why);
        return;
    }
    if (query_int(req, "samples", 0, 100, 3, &samples)) {
        kb_http_reply_error(req, 400, 40003, "samples must be 0..100");
        return;
    }
    struct kb_subs subs;
    if (subs_from_body(a, req, &subs))
        return;
    pthread_mutex_lock(&a->mu);
    struct job *slot = NULL;
    int busy = 0;
    for (int i = 0; i < MAX_JOBS; i++) {
        struct job *j = &a->jobs[i];
        if (j->state == JOB_QUEUED || j->state == JOB_RUNNING)
            busy = 1;
        /* A free slot, else the oldest finished job gives way. */
        if (j->state == JOB_FREE) {
            if (!slot || slot->state != JOB_FREE)
                slot = j;
        } else if ((j->state == JOB_DONE || j->state == JOB_FAILED) &&
                   (!slot || (slot->state != JOB_FREE && j->id < slot->id))) {
            slot = j;
        }
    }
    if (busy || !slot) {
        pthread_mutex_unlock(&a->mu);
        kb_subs_fini(&subs);
        kb_http_reply_header(req, "Retry-After", "5");
        kb_http_reply_error(req, 429, 42902, "a dry run is already running; try again later");
        return;
    }
    kb_subs_fini(&slot->subs);
    json_decref(slot->result);
    memset(slot, 0, sizeof *slot);
    slot->id = ++a->next_id;
    slot->state = JOB_QUEUED;
    slot->subs = subs;
    slot->since_ms = since;
    slot->until_ms = until;
    slot->samples = (size_t)samples;
    slot->created_ms = kb_wall_ms();
    json_t *reply = job_json(slot);
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    char loc[96];
    snprintf(loc, sizeof loc, "/admin/subscriptions/dry-run/%u", slot->id);
    kb_http_reply_header(req, "Location", loc);
    kb_http_reply_json(req, 202, NULL, reply);
}

static void on_dryrun_get(kb_http_req_t *req, void *opaque)
{
    kb_admin_t *a = opaque;
    const char *rest = kb_http_req_rest(req);
    char *end;
    unsigned long id = rest[0] == '/' ? strtoul(rest + 1, &end, 10) : 0;
    if (!id || *end) {
        kb_http_reply_error(req, 404, 40402, "GET /admin/subscriptions/dry-run/ID");
        return;
    }
    json_t *r = NULL;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < MAX_JOBS; i++)
        if (a->jobs[i].state != JOB_FREE && a->jobs[i].id == id)
            r = job_json(&a->jobs[i]);
    pthread_mutex_unlock(&a->mu);
    if (!r)
        kb_http_reply_error(req, 404, 40403, "no dry run with that id (only the last %d are kept)",
                            MAX_JOBS);
    else
        kb_http_reply_json(req, 200, NULL, r);
}

/* ---- dead letters ----------------------------------------------------------- */

static int letter_to_json(void *opaque, const struct kb_dlq_letter *l)
{
    json_t *list = opaque;
    json_array_append_new(
        list, json_pack("{s:i, s:I, s:o, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:s?}",
                        "partition", (int)l->partition, "offset", (json_int_t)l->offset, "time",
                        time_json(l->timestamp_ms > 0 ? l->timestamp_ms : 0), "stage", l->stage,
                        "rule", l->rule, "field_path", l->field_path, "byte_offset",
                        l->byte_offset, "from", "topic", l->from_topic, "partition",
                        l->from_partition, "offset", l->from_offset, "id", l->id, "type",
                        l->type, "error", l->has_error ? l->error : NULL));
    return 0;
}

static void dlq_work_free(struct dlq_work *w)
{
    kb_admin_letters_free(w->letters, (size_t)w->n_letters);
    free(w);
}

/* Answer @p reply that the admin API is stopping (a stopped server drops
 * the answer; it frees the handle all the same). */
static void reply_stopping(kb_http_deferred_t *reply)
{
    kb_http_deferred_reply_error(reply, 503, 50305, "the admin API is stopping; try again later");
}

/* kb_dlq_read_opts.unreadable: a partition not read, into a JSON array. */
static void unreadable_to_json(void *opaque, int32_t partition, const char *why)
{
    (void)why;
    json_array_append_new(opaque, json_integer(partition));
}

/* Dead-letter worker: one page of letters, answered on w->reply. */
static void run_dlq_page(kb_admin_t *a, struct dlq_work *w)
{
    char errstr[512];
    const char *topic = w->topic;
    json_t *letters = json_array(), *unread = json_array();
    uint64_t depth = 0;
    int32_t np;
    int64_t no;
    int complete;
    struct kb_dlq_read_opts ro = {.kafka = a->o.kafka,
                                  .topic = topic,
                                  .partition = w->partition,
                                  .offset = w->offset,
                                  .limit = w->limit,
                                  .unreadable = unreadable_to_json,
                                  .unreadable_opaque = unread};
    kb_err_t err = kb__dlq_read(&ro, &a->stop, letter_to_json, letters, &depth, &np, &no, &complete,
                                errstr, sizeof errstr);
    if (err == KB_ERR_NOTFOUND) {
        /* No dead letter was ever written: an empty list, not an error. */
        json_decref(letters);
        json_decref(unread);
        kb_http_deferred_reply_json(w->reply, 200, NULL,
                                    json_pack("{s:s, s:i, s:[], s:n, s:b, s:[]}", "topic", topic,
                                              "depth", 0, "letters", "next", "complete", 1,
                                              "unreadable_partitions"));
        return;
    }
    if (err) {
        json_decref(letters);
        json_decref(unread);
        kb_http_deferred_reply_error(w->reply, 502, 50201, "%s", errstr);
        return;
    }
    if (atomic_load(&a->stop)) {
        /* The read gave up between polls: a cut page with no cursor would
         * look like the end of the topic. */
        json_decref(letters);
        json_decref(unread);
        reply_stopping(w->reply);
        return;
    }
    json_t *next = np >= 0 ? json_pack("{s:i, s:I}", "partition", (int)np, "offset",
                                       (json_int_t)no)
                           : json_null();
    kb_http_deferred_reply_json(
        w->reply, 200, NULL,
        json_pack("{s:s, s:I, s:I, s:o, s:o, s:b, s:o}", "topic", topic, "depth", (json_int_t)depth,
                  "count", (json_int_t)json_array_size(letters), "letters", letters, "next", next,
                  "complete", complete, "unreadable_partitions", unread));
}

/* Dead-letter worker: send w's letters back, answered on w->reply. */
static void run_redrive(kb_admin_t *a, struct dlq_work *w)
{
    char errstr[512];
    const struct kb_admin_letter *l = w->letters;
    json_t *done = json_array(), *failed = json_array();
    int ntransient = 0;
    for (int i = 0; i < w->n_letters; i++) {
        struct kb_dlq_redriven r;
        kb_err_t err;
        if (atomic_load(&a->stop)) {
            /* Shutting down: what is left is not attempted, and said so. */
            err = kb_err_set(KB_ERR_STATE, errstr, sizeof errstr,
                             "not attempted: the admin API is stopping");
        } else {
            err = kb_dlq_redrive(a->o.kafka, a->o.dlq_topic, l[i].partition, l[i].offset,
                                 l[i].value, l[i].value_len, &r, errstr, sizeof errstr);
        }
        if (err) {
            /* A broker that did not answer, or a stop, fails nothing for good:
             * those letters may be sent again. (KB_ERR_KAFKA is also a
             * refusal, an ACL or a size: not a reason to try again.) */
            if (err == KB_ERR_TIMEOUT || err == KB_ERR_STATE)
                ntransient++;
            json_array_append_new(failed, json_pack("{s:i, s:I, s:s, s:s}", "partition",
                                                    (int)l[i].partition, "offset",
                                                    (json_int_t)l[i].offset, "error",
                                                    kb_err_str(err), "message", errstr));
            continue;
        }
        KB_LOG_INFO("admin", "dead letter redriven",
                    "from=%s to=%s/%" PRId32 "/%" PRId64 " corrected=%d auth=%s", r.from, r.topic,
                    r.partition, r.offset, r.corrected, w->auth);
        json_array_append_new(
            done, json_pack("{s:s, s:{s:s, s:i, s:I}, s:I, s:s, s:I, s:b}", "from", r.from, "to",
                            "topic", r.topic, "partition", (int)r.partition, "offset",
                            (json_int_t)r.offset, "bytes", (json_int_t)r.bytes, "sha256",
                            r.sha256, "headers_kept", (json_int_t)r.headers_kept, "corrected",
                            r.corrected));
    }
    /* 200 only when every letter went back; otherwise the body says which did
     * not, under 503 when any of them may go back on a retry (Kafka did not
     * answer) and 422 when each was refused for what it is. */
    size_t nfail = json_array_size(failed);
    int status = !nfail ? 200 : ntransient ? 503 : 422;
    kb_http_deferred_reply_json(w->reply, status, NULL,
                                json_pack("{s:o, s:o}", "redriven", done, "failed", failed));
}

static void *dlq_worker_main(void *arg)
{
    kb_admin_t *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!atomic_load(&a->stop)) {
        struct dlq_work *w = a->dlq_head;
        if (!w) {
            pthread_cond_wait(&a->dlq_cv, &a->mu);
            continue;
        }
        a->dlq_head = w->next;
        if (!a->dlq_head)
            a->dlq_tail = NULL;
        pthread_mutex_unlock(&a->mu);
        if (atomic_load(&a->stop) || !kb_http_deferred_open(w->reply))
            /* Nobody will read the answer (stopping, or the server let go):
             * no Kafka round trips for it, which would delay the stop. */
            reply_stopping(w->reply);
        else if (w->kind == DLQ_PAGE)
            run_dlq_page(a, w);
        else
            run_redrive(a, w);
        dlq_work_free(w);
        pthread_mutex_lock(&a->mu);
        a->dlq_busy--;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Server thread: queue @p w (takes it) for the dead-letter worker and
 * answer @p req from there, or at once when the queue is full (invariant 4). */
static void dlq_submit(kb_admin_t *a, kb_http_req_t *req, struct dlq_work *w)
{
    pthread_mutex_lock(&a->mu);
    if (a->dlq_busy >= MAX_DLQ_WORK) {
        pthread_mutex_unlock(&a->mu);
        dlq_work_free(w);
        kb_http_reply_header(req, "Retry-After", "5");
        kb_http_reply_error(req, 503, 50304,
                            "%d dead-letter requests wait on Kafka already; "
                            "try again later",
                            MAX_DLQ_WORK);
        return;
    }
    w->reply = kb_http_defer(req);
    if (!w->reply) {
        pthread_mutex_unlock(&a->mu);
        dlq_work_free(w);
        kb_http_reply_error(req, 500, 50001, "out of memory");
        return;
    }
    if (a->dlq_tail)
        a->dlq_tail->next = w;
    else
        a->dlq_head = w;
    a->dlq_tail = w;
    a->dlq_busy++;
    pthread_cond_signal(&a->dlq_cv);
    pthread_mutex_unlock(&a->mu); /* w may be answered and gone from here on */
}

static void on_dlq(kb_http_req_t *req, void *opaque)
{
    kb_admin_t *a = opaque;
    if (kb_http_req_rest(req)[0]) {
        kb_http_reply_error(req, 404, 40404, "GET /admin/dlq or POST /admin/dlq/redrive");
        return;
    }
    long long part, off, limit;
    if (query_int(req, "partition", 0, INT32_MAX, 0, &part) ||
        query_int(req, "offset", 0, INT64_MAX, -1, &off) ||
        query_int(req, "limit", 1, MAX_PAGE, 100, &limit)) {
        kb_http_reply_error(req, 400, 40004, "partition, offset >= 0; limit 1..%d", MAX_PAGE);
        return;
    }
    struct dlq_work *w = calloc(1, sizeof *w);
    if (!w) {
        kb_http_reply_error(req, 500, 50001, "out of memory");
        return;
    }
    w->kind = DLQ_PAGE;
    w->topic = a->o.dlq_topic;
    if (!w->topic) {
        kb_topic_name(w->tbuf, sizeof w->tbuf, "dlq");
        w->topic = w->tbuf;
    }
    w->partition = (int32_t)part;
    w->offset = off;
    w->limit = (size_t)limit;
    dlq_submit(a, req, w);
}

static void on_redrive(kb_http_req_t *req, void *opaque)
{
    kb_admin_t *a = opaque;
    char errstr[512];
    json_t *body = kb_http_req_json(req, errstr, sizeof errstr);
    if (!body) {
        kb_http_reply_error(req, 400, 40005, "body: %s", errstr);
        return;
    }
    struct kb_admin_letter *l;
    int n = kb_admin_parse_redrive(body, MAX_REDRIVE, &l, errstr, sizeof errstr);
    json_decref(body);
    if (n < 0) {
        kb_http_reply_error(req, 400, 40006, "%s", errstr);
        return;
    }
    struct dlq_work *w = calloc(1, sizeof *w);
    if (!w) {
        kb_admin_letters_free(l, (size_t)n);
        kb_http_reply_error(req, 500, 50001, "out of memory");
        return;
    }
    w->kind = DLQ_REDRIVE;
    w->letters = l;
    w->n_letters = n;
    w->auth = kb_http_req_auth(req);
    dlq_submit(a, req, w);
}

/* ---- audit ------------------------------------------------------------------ */

static void on_audit_status(kb_http_req_t *req, void *opaque)
{
    kb_admin_t *a = opaque;
    pthread_mutex_lock(&a->mu);
    const char *state = a->audit_running                           ? "running"
                        : a->audit_requested                       ? "queued"
                        : !a->audit_runs                           ? "never"
                        : a->audit_error[0]                        ? "error"
                                                                   : "done";
    json_t *r = json_pack("{s:s, s:I, s:o, s:o, s:i, s:O?, s:s?}", "state", state, "runs",
                          (json_int_t)a->audit_runs, "started", time_json(a->audit_started),
                          "finished", time_json(a->audit_finished), "every_s",
                          a->o.audit_every_s, "last", a->audit_last, "error",
                          a->audit_error[0] ? a->audit_error : NULL);
    pthread_mutex_unlock(&a->mu);
    kb_http_reply_json(req, 200, NULL, r);
}

static void on_audit_verify(kb_http_req_t *req, void *opaque)
{
    kb_admin_t *a = opaque;
    pthread_mutex_lock(&a->mu);
    a->audit_requested = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    kb_http_reply_header(req, "Location", "/admin/audit/status");
    kb_http_reply_json(req, 202, NULL,
                       json_pack("{s:s, s:s}", "status", "queued", "href", "/admin/audit/status"));
}

kb_err_t kb_admin_routes(kb_admin_t *a, kb_http_t *h)
{
    static const struct {
        const char *method, *prefix;
        kb_http_handler_fn fn;
    } routes[] = {
        {"GET", "/admin/subscriptions", on_subs},
        {"POST", "/admin/subscriptions/validate", on_validate},
        {"POST", "/admin/subscriptions/dry-run", on_dryrun_post},
        {"GET", "/admin/subscriptions/dry-run", on_dryrun_get},
        {"GET", "/admin/dlq", on_dlq},
        {"POST", "/admin/dlq/redrive", on_redrive},
        {"GET", "/admin/audit/status", on_audit_status},
        {"POST", "/admin/audit/verify", on_audit_verify},
    };
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        kb_err_t err = kb_http_route(h, routes[i].method, routes[i].prefix, routes[i].fn, a);
        if (err)
            return err;
    }
    return KB_OK;
}
