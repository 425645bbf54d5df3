/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/admin.h - the operator tools as library functions, shared by the
 * command line (`ketenbus sub dry-run`, `ketenbus dlq`) and the router's
 * HTTP server: subscription dry-runs against the input history, the
 * dead-letter reader and redrive, audit verification status, the admin API
 * routes (/admin/...) and the live dashboard (/dashboard, /events).
 *
 * Nothing here prints: results come back as structs or JSON; what is said
 * about events is ids, types, offsets, rules and field names, never values.
 */
#ifndef KETENBUS_ADMIN_H
#define KETENBUS_ADMIN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ketenbus/err.h"
#include "ketenbus/http.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"
#include "ketenbus/sub.h"

/* ---- dry-run of subscriptions over the input history ------------------ */

#define KB_DRYRUN_MAX_TYPES 32
/* Samples a run keeps in all unless told otherwise: a run over many
 * subscriptions keeps fewer of each (at least one), so that a posted body
 * of 16,000 subscriptions cannot keep 100 samples of each. */
#define KB_DRYRUN_SAMPLES_TOTAL 10000

struct kb_dryrun_opts {
    const struct kb_kafka_opts *kafka; /* connection (not owned) */
    const struct kb_subs *subs;        /* the proposed subscriptions (not owned) */
    const kb_schemas_t *schemas;       /* lookups by id; only this run's thread uses it */
    int64_t since_ms;                  /* first record time (Kafka timestamp) */
    int64_t until_ms;                  /* stop before; INT64_MAX = the end as of the start */
    size_t max_samples;                /* samples kept per subscription ... */
    size_t max_samples_total;          /* ... and in all: fewer per subscription when
                                        * needed, at least 1; 0 = KB_DRYRUN_SAMPLES_TOTAL */
    int64_t deadline_ms;               /* CLOCK_MONOTONIC ms to give up at; 0 = none */
    atomic_int *stop;                  /* set to abandon the run early; may be NULL */
};

struct kb_dryrun_sample {
    char id[40];       /* ce_id */
    char type[96];     /* ce_type */
    char time[40];     /* ce_time or "" */
    size_t field_list; /* the field names it would receive: an index into its
                        * subscription's field_lists; SIZE_MAX: out of memory */
};

struct kb_dryrun_sub_result {
    uint64_t total;                               /* events it would have received */
    struct { char type[96]; uint64_t n; } types[KB_DRYRUN_MAX_TYPES]; /* per event type */
    size_t n_types;
    struct kb_dryrun_sample *samples; /* up to samples_per_sub, in read order */
    size_t n_samples;
    /* The field names its samples would receive, each list once (a sample
     * names its own by index): comma-separated names, then " pseudonymised=a,b"
     * when any; names only. One list when the subscription lists its fields,
     * else one per schema among its samples. Once, not per sample: a posted
     * field list may be most of a 1 MiB body. */
    char **field_lists;
    size_t n_field_lists;
};

struct kb_dryrun_result {
    uint64_t read;                    /* input messages judged */
    uint64_t rejected;                /* of which the router would dead-letter: */
    uint64_t rej_envelope, rej_schema, rej_validate, rej_decode;
    uint64_t duplicates;              /* valid events with an id seen before */
    uint64_t filtered;                /* valid events no proposed subscription wants */
    int partitions_read;              /* input partitions with something in range */
    int partitions_total;             /* input partitions */
    int complete;                     /* 1: every partition read to its end; 0: stopped
                                       * (deadline, stop flag, or no progress for 30 s) */
    struct kb_dryrun_sub_result *subs; /* one per opts.subs item, same order */
    size_t n_subs;
    size_t samples_per_sub; /* samples kept per subscription: max_samples, or
                             * fewer to stay within max_samples_total */
};

/**
 * Judge every event of <prefix>.in.* recorded in [since, until) as the
 * router would (envelope, schema, validation gate, duplicates, matcher with
 * payload fields, validity and follow lists), producing nothing and
 * committing nothing. On success the caller owns @p res (fini it); on
 * error @p res is left empty.
 * @thread any (makes its own Kafka consumer)
 */
kb_err_t kb_dryrun_run(const struct kb_dryrun_opts *opts, struct kb_dryrun_result *res,
                       char *errstr, size_t errstr_size);

void kb_dryrun_result_fini(struct kb_dryrun_result *res);

/** @p res as JSON (new reference): counts, per subscription per type, samples. */
json_t *kb_dryrun_result_json(const struct kb_dryrun_result *res, const struct kb_subs *subs);

/* ---- dead letters ------------------------------------------------------- */

/** One dead letter by its context headers, each printable ASCII ("\xNN" for
 *  other bytes, cut at 200 bytes with "..."), "-" when absent or empty. */
struct kb_dlq_letter {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    char stage[64], rule[128], field_path[256], byte_offset[32];
    char from_topic[256], from_partition[32], from_offset[32]; /* kb_topic/partition/offset */
    char id[128], type[128];                                   /* ce_id, ce_type */
    char error[808];                                           /* kb_error */
    int has_error;                                             /* kb_error present */
};

struct kb_dlq_read_opts {
    const struct kb_kafka_opts *kafka;
    const char *topic;       /* NULL = <prefix>.dlq */
    int32_t partition;       /* start at this partition (-1 or 0 = the first) */
    int64_t offset;          /* ... at this offset (-1 = its start) */
    size_t limit;            /* stop after this many letters; 0 = all */
    /* Called, on the calling thread, for each partition whose offsets
     * (watermarks) could not be read, with the reason: its letters are
     * neither read nor counted in *depth. May be NULL. */
    void (*unreadable)(void *opaque, int32_t partition, const char *why);
    void *unreadable_opaque; /* for unreadable */
};

/** Called per letter, in partition order then offset order; non-zero stops. */
typedef int (*kb_dlq_letter_cb)(void *opaque, const struct kb_dlq_letter *l);

/**
 * Read committed dead letters from the cursor on. *@p depth (may be NULL)
 * gets the messages held in the topic (high minus low watermark, summed).
 * When @p limit stopped the read, *@p next_partition / *@p next_offset say
 * where the next page starts; otherwise next_partition is -1.
 * *@p complete is 0 when a partition gave no answer for 30 s or its offsets
 * could not be read (then o->unreadable names it): the letters and the
 * depth then leave that partition out, or the rest of it.
 */
kb_err_t kb_dlq_read(const struct kb_dlq_read_opts *o, kb_dlq_letter_cb cb, void *opaque,
                     uint64_t *depth, int32_t *next_partition, int64_t *next_offset,
                     int *complete, char *errstr, size_t errstr_size);

/** What a redrive did. */
struct kb_dlq_redriven {
    char from[320];          /* "<dlq topic>/<partition>/<offset>" */
    char topic[256];         /* the input topic it went back to */
    int32_t partition;       /* where it landed */
    int64_t offset;
    size_t bytes;            /* value size */
    char sha256[65];         /* of the value, hex */
    size_t headers_kept;     /* original headers carried over (kb_* dropped) */
    int corrected;           /* 1 when a corrected value replaced the original */
};

/**
 * Produce the dead letter at @p partition / @p offset of @p topic (NULL =
 * <prefix>.dlq) again to its original input topic (header kb_topic, which
 * must be an input topic of this installation), with its original headers
 * minus kb_* plus kb_redriven_from; @p value (Confluent-framed, may be NULL
 * for the original) replaces the value. A letter whose value the router
 * dropped (kb_value_dropped) is redriven from the input position it names,
 * value and headers, when that input still has the recorded SHA-256; with
 * @p value, one that kept the original CloudEvents headers is redriven with
 * them, without reading its input (retention may have removed it).
 * Waits for the broker's ack. KB_ERR_NOTFOUND when no committed letter is
 * there, KB_ERR_INVALID when it is not a router dead letter, @p value is
 * not framed, or a dropped value's input is not the one dead-lettered.
 */
kb_err_t kb_dlq_redrive(const struct kb_kafka_opts *kafka, const char *topic, int32_t partition,
                        int64_t offset, const void *value, size_t value_len,
                        struct kb_dlq_redriven *out, char *errstr, size_t errstr_size);

/** "\xNN"-escaped printable form of @p len bytes at @p val into @p buf (see kb_dlq_letter). */
void kb_dlq_printable(const void *val, size_t len, char *buf, size_t size);

/* ---- audit verification status ----------------------------------------- */

struct kb_audit_status_opts {
    const struct kb_kafka_opts *kafka;
    const char *topic;                    /* NULL = <prefix>.audit */
    const char *const *public_key_files;  /* trusted checkpoint keys */
    size_t n_public_keys;
    int max_seconds;                      /* bound on one verification (0 = 120) */
    size_t max_problems;                  /* problems listed (0 = 50); all are counted */
    const char *router_group;             /* tail check against its committed offsets:
                                           * NULL = <prefix>-route, "-" = no tail check */
};

/**
 * Verify the whole audit trail once (bounded by max_seconds: then
 * "complete": false) and return the result as JSON (new reference):
 * {"result": "OK"|"FAILED"|"INCOMPLETE", "messages", "records",
 *  "checkpoints", "chains": [...], "problems_total", "problems": [...],
 *  "retention": [...], "tail_check": {...}, "seconds"}. The tail check is
 *  `audit verify`'s (kb_audit_committed_snapshot): "state" "done", "off"
 *  (router_group "-"), "not run" (the run was cut) or "unknown" (the
 *  committed offsets could not be read within the time left, at most 10 s;
 *  "error" says why), and "unknown" makes an otherwise clean result
 *  INCOMPLETE, never OK. NULL with errstr when it could not read.
 * @thread any
 */
json_t *kb_audit_status_verify(const struct kb_audit_status_opts *o, char *errstr,
                               size_t errstr_size);

/* ---- the admin API ------------------------------------------------------ */

struct kb_admin_opts {
    const struct kb_kafka_opts *kafka;    /* connection (not owned, outlives the admin) */
    const char *subs_path;                /* the router's subscription file or folder */
    const uint8_t *subject_key;           /* for follow lists (not owned) */
    size_t subject_key_len;
    const char *schemas_source;           /* folder or registry URL: each dry-run opens its own */
    const char *dlq_topic;                /* NULL = <prefix>.dlq */
    const char *const *audit_public_keys; /* trusted checkpoint keys for audit status */
    size_t n_audit_public_keys;
    int audit_every_s;                    /* verify on a timer; 0 = only when asked */
    int audit_max_seconds;                /* bound on one verification (0 = 120) */
    const char *router_group;             /* the router's group.id, for the audit status's
                                           * tail check (NULL = <prefix>-route) */
    int dryrun_max_seconds;               /* bound on one dry-run (0 = 120) */
};

typedef struct kb_admin kb_admin_t; /* opaque: the admin API's state and worker threads */

/** Create (starts the worker threads: dry-runs and audit; dead letters). NULL with errstr. */
kb_admin_t *kb_admin_new(const struct kb_admin_opts *opts, char *errstr, size_t errstr_size);

/**
 * Register on @p h (before kb_http_start):
 *   GET  /admin/subscriptions            list (the files as they are now)
 *   GET  /admin/subscriptions/NAME       one subscription
 *   POST /admin/subscriptions/validate   YAML body: 200 {"ok": true, ...} or 422
 *   POST /admin/subscriptions/dry-run    YAML body, ?since=&until=&samples=: 202 job
 *   GET  /admin/subscriptions/dry-run/ID the job: running, done (result) or failed
 *   GET  /admin/dlq                      ?partition=&offset=&limit=: a page of letters
 *   POST /admin/dlq/redrive              {"letters": [{"partition": P, "offset": O,
 *                                         "value_base64"?: corrected value}, ...]}
 *   GET  /admin/audit/status             the last verification
 *   POST /admin/audit/verify             start one now: 202
 * @p a must outlive @p h's serving (stop the server before kb_admin_destroy).
 */
kb_err_t kb_admin_routes(kb_admin_t *a, kb_http_t *h);

/** Stop both workers (an ongoing run is abandoned; dead-letter requests never started are
 *  answered 503) and free. NULL is a no-op. */
void kb_admin_destroy(kb_admin_t *a);

/* One dead letter to send back, as POST /admin/dlq/redrive names it. */
struct kb_admin_letter {
    int32_t partition;
    int64_t offset;
    unsigned char *value; /* the corrected value (decoded value_base64), or NULL: as it is */
    size_t value_len;
};

/**
 * Parse the request of POST /admin/dlq/redrive: {"letters": [{"partition":
 * P, "offset": O, "value_base64": "..."?}, ...]} or {"partition": P,
 * "offsets": [O, ...]}; at most @p max entries. value_base64 (standard
 * alphabet, padded) replaces the letter's value with a corrected one, as
 * `ketenbus dlq redrive --value` does. Returns the count (>= 1) with
 * *@p out malloc'ed (kb_admin_letters_free), or -1 with errstr. Pure (for
 * tests).
 */
int kb_admin_parse_redrive(const json_t *body, size_t max, struct kb_admin_letter **out,
                           char *errstr, size_t errstr_size);

/** Free what kb_admin_parse_redrive returned. NULL is a no-op. */
void kb_admin_letters_free(struct kb_admin_letter *letters, size_t n);

/** A subscription as JSON (new reference), without secrets (file paths only). Pure. */
json_t *kb_admin_sub_json(const struct kb_sub *sub);

/* ---- the dashboard ------------------------------------------------------ */

struct kb_dashboard_opts {
    const struct kb_kafka_opts *kafka; /* for dead-letter depth; NULL = no depth */
    const char *dlq_topic;             /* NULL = <prefix>.dlq; <that>.* are subscriber DLQs */
    const char *const *peers;          /* http://HOST:PORT of deliver processes etc.: their
                                        * /metrics.json is merged (webhook backlog) */
    size_t n_peers;
    int interval_ms;                   /* snapshot period (0 = 1000) */
    int slow_viewer_s;                 /* an /events client that takes no snapshot for this
                                        * long (it reads slower than they come, so they are
                                        * dropped for it) is disconnected (0 = 60) */
};

typedef struct kb_dashboard kb_dashboard_t; /* opaque: the snapshot ticker and its streams */

kb_dashboard_t *kb_dashboard_new(const struct kb_dashboard_opts *opts, char *errstr,
                                 size_t errstr_size);

/** Register GET /dashboard (the page), GET / (redirects there) and GET
 *  /events (text/event-stream, one snapshot per interval) on @p h. A
 *  snapshot that would pass @p h's stream_max_pending for a slow client is
 *  dropped for it, counted in kb_dashboard_events_dropped_total, and
 *  announced to it before the next one as "event: dropped" with data
 *  {"dropped": total so far}. */
kb_err_t kb_dashboard_routes(kb_dashboard_t *d, kb_http_t *h);

/** Stop the ticker, end every stream, free. Call after kb_http_stop. NULL is a no-op. */
void kb_dashboard_destroy(kb_dashboard_t *d);

/**
 * The dashboard snapshot from metrics JSON documents (kb_metrics_render_json
 * of this process, then its peers'), summed by the labels the page shows:
 * {"t": ms, "in": {source: n}, "out": {subscriber: n}, "filtered": n,
 *  "lag": {topic: n}, "failures": {rule: n}, "dead_letters": {stage: n},
 *  "dlq_depth": {topic: n} (from @p depth, may be NULL),
 *  "backlog": {subscriber: n}, "delivered": {subscriber: n},
 *  "attempts_failed": {subscriber: n}, "audit": n, "peers_down": n}.
 * Documents that do not parse count as peers_down. New reference. Pure.
 */
json_t *kb_dashboard_snapshot(const char *const *docs, const size_t *lens, size_t n_docs,
                              int64_t t_ms, const json_t *depth);

/** One server-sent event "event: @p event\ndata: <compact json>\n\n";
 *  malloc'ed, *len set. NULL on allocation failure. Pure. */
char *kb_dashboard_sse_frame(const char *event, const json_t *data, size_t *len);

#endif
