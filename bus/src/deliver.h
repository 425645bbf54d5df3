/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * deliver.h - webhook delivery (`ketenbus deliver`): consume
 * <prefix>.out.<subscriber> and POST each event as a CloudEvent over HTTPS,
 * with persistent retries, per-key order and a subscriber dead-letter topic.
 * Internal to the bus (the command and the unit tests use it).
 */
#ifndef KETENBUS_DELIVER_H
#define KETENBUS_DELIVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"

/* The --permanent-status default: answers that say the request itself is
 * wrong, so sending the same event again cannot succeed. */
/* Not 404 by default: a proxy in front of a webhook being redeployed
 * answers 404 for a while, and that must not dead-letter everything sent
 * meanwhile; 410 is the webhook's own "gone for good". */
#define KB_DELIVER_PERMANENT_DEFAULT "400,410,413,415,422"

enum kb_deliver_mode {
    KB_DELIVER_STRUCTURED = 0, /* application/cloudevents+json, data rendered as JSON */
    KB_DELIVER_BINARY = 1,     /* ce-* headers, body = data rendered as JSON */
};

struct kb_deliver_opts {
    const char *subscriber;          /* names the topics <prefix>.{out,retry,dlq}.<subscriber> */
    const char *url;                 /* https://host[:port]/path */
    const uint8_t *secret;           /* HMAC-SHA-256 signing key (caller's; never logged) */
    size_t secret_len;
    const char *ca_file;             /* CA bundle to verify the webhook; NULL = system store */
    const char *cert_file;           /* client certificate (PEM) for mutual TLS, or NULL */
    const char *key_file;            /* its private key, or NULL */
    enum kb_deliver_mode mode;       /* structured (default) or binary */
    int signature_v1_only;           /* 1: sign v1 alone (receivers not yet reading the
                                      * list); 0: "v1=..., v2=..." */
    int concurrency;                 /* requests in flight at most; 0 = 4 */
    double rate;                     /* requests per second at most; 0 = unlimited */
    int64_t retry_window_ms;         /* give up after this long since the first failure; 0 = 5 days */
    int64_t backoff_base_ms;         /* first retry delay; 0 = 1000 */
    int64_t backoff_max_ms;          /* longest retry delay; 0 = 1 hour */
    int timeout_ms;                  /* per request; 0 = 10000 */
    int max_pending;                 /* consumed but unfinished events at most, shared by the
                                      * partitions (kb__deliver_partition_may_take); 0 = 1000 */
    const char *permanent_status;    /* HTTP statuses that dead-letter at once (comma list of
                                      * 400-599, or "none"); NULL = KB_DELIVER_PERMANENT_DEFAULT */
    const char *origin;              /* WebHook-Request-Origin; NULL = host name */
    int skip_handshake;              /* 1: do not send the validation OPTIONS */
    const char *group_id;            /* consumer group; NULL = <prefix>.deliver.<subscriber> */
    const struct kb_kafka_opts *kafka; /* connection options (caller's) */
    const kb_schemas_t *schemas;     /* to render the Avro payload (caller's) */
};

typedef struct kb_deliver kb_deliver_t; /* opaque: one subscriber's delivery loop */

/** A delivery loop, topics created, retry state loaded. NULL with errstr. */
kb_deliver_t *kb_deliver_new(const struct kb_deliver_opts *opts, char *errstr,
                             size_t errstr_size);

/** Deliver until *@p stop becomes non-zero; then finish in-flight requests
 *  (up to the timeout) and commit. @thread the caller's, exclusively. */
kb_err_t kb_deliver_run(kb_deliver_t *d, atomic_int *stop);

/** Release @p d. NULL is a no-op. */
void kb_deliver_destroy(kb_deliver_t *d);

/* --- pure helpers (deliver_render.c), unit-tested --- */

/* HTTP statuses 400-599, one bit each: those --permanent-status names. */
struct kb__deliver_statuses {
    uint64_t bits[4]; /* bit (status - 400) */
};

/**
 * Parse @p list ("410,422", or "none" for the empty set) into *@p set.
 * KB_ERR_CONF with errstr for anything but codes 400-599 separated by commas.
 */
kb_err_t kb__deliver_statuses_parse(const char *list, struct kb__deliver_statuses *set,
                                    char *errstr, size_t errstr_size);

/** 1 when @p status is in @p set. */
int kb__deliver_statuses_has(const struct kb__deliver_statuses *set, int status);

/**
 * Delay before retry number @p attempt (1 = after the first failure):
 * exponential base * 2^(attempt-1), capped at @p max_ms, with "equal
 * jitter": a value in [cap/2, cap] chosen by @p rnd. Never below 1 ms.
 */
int64_t kb__deliver_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd);

/**
 * Parse a Retry-After value (delta seconds or an HTTP-date, RFC 9110) into
 * a delay in ms relative to @p now_ms (>= 0). -1 when unparsable.
 */
int64_t kb__deliver_retry_after_ms(const char *value, int64_t now_ms);

/**
 * The signature header value "v1=<hex HMAC-SHA-256(secret, ts "." body)>"
 * for the timestamp string @p ts (Unix seconds). @p out holds 68 bytes.
 */
void kb__deliver_signature(const uint8_t *secret, size_t secret_len, const char *ts,
                           const void *body, size_t len, char out[68]);

/* At most this many headers of a POST are signed by v2 (binary mode's
 * nine ce-* attributes, content-type, idempotency-key). */
#define KB_DELIVER_SIGNED_MAX 12

/* One request header; both strings NUL-terminated. */
struct kb__deliver_header {
    const char *name;  /* lower-case, as signed and as sent */
    const char *value; /* as sent */
};

/**
 * The headers of the POST of @p attrs that a receiver acts on, hence
 * signed by v2: content-type, idempotency-key and, in binary mode, every
 * ce-* attribute; only those with a value, sorted by name. Values point
 * into @p attrs, @p seqbuf (24 bytes) and constants. Returns the count
 * (at most KB_DELIVER_SIGNED_MAX).
 */
size_t kb__deliver_post_headers(const struct kb_event_attrs *attrs, enum kb_deliver_mode mode,
                                char seqbuf[24], struct kb__deliver_header *out);

/**
 * The v2 signing input before the body, malloc'ed into *@p out (caller
 * frees), @p *len bytes, not NUL-terminated in its length:
 *
 *     "v2\n" <ts> "\n" <names> "\n"
 *     then per header of @p hdrs, in that order: <name> ":" <value> "\n"
 *     then "\n"
 *
 * where <names> is the header names joined by "," (the value of
 * X-Ketenbus-Signed-Headers, so the list is signed too) and <value> is
 * the value without leading or trailing spaces and tabs (what HTTP hands a
 * receiver). The body follows it in the HMAC. KB_ERR_INVALID when a value
 * holds CR, LF or NUL (it could forge a line; kb_event_attrs_from_headers()
 * already refuses them in events), KB_ERR_NOMEM.
 */
kb_err_t kb__deliver_canonical_v2(const char *ts, const struct kb__deliver_header *hdrs, size_t n,
                                  char **out, size_t *len);

/* The X-Ketenbus-Signature and X-Ketenbus-Signed-Headers values of a POST. */
struct kb__deliver_sig {
    char header[160];         /* "v1=<64 hex>, v2=<64 hex>" */
    char signed_headers[192]; /* names of the v2-signed headers, comma-separated */
};

/**
 * Sign a POST: v1 (kb__deliver_signature()) and, with @p with_v2, v2,
 * HMAC-SHA-256 with @p secret over kb__deliver_canonical_v2() of @p ts and
 * @p hdrs followed by the body. Without v2 the header holds "v1=<hex>" alone
 * and signed_headers is empty. Errors as kb__deliver_canonical_v2() (a
 * value with CR or LF is refused either way); *@p sig is then unusable.
 */
kb_err_t kb__deliver_sign(const uint8_t *secret, size_t secret_len, const char *ts,
                          const struct kb__deliver_header *hdrs, size_t n, const void *body,
                          size_t len, int with_v2, struct kb__deliver_sig *sig);

/**
 * Render one event for the webhook: check the framed Avro @p value with
 * its schema's compiled validator (kb_avro_event_json() runs
 * kb_schema_check()), then decode it and turn it into JSON (records as objects, unions as
 * their branch, enums as symbols, bytes/fixed as base64). Bytes the
 * validator refuses never reach avro-c. Structured mode gives the whole
 * CloudEvent (attributes + "data"); binary mode just the data. *body is
 * malloc'ed (caller frees). KB_ERR_INVALID when the value cannot be
 * rendered (no framing, refused by the validator with its reason, a schema
 * that does not compile): a permanent failure (dead letter); KB_ERR_SCHEMA
 * for a schema id not known (yet), KB_ERR_NOMEM.
 */
kb_err_t kb__deliver_render(const kb_schemas_t *schemas, const struct kb_event_attrs *attrs,
                            const void *value, size_t len, enum kb_deliver_mode mode, char **body,
                            size_t *body_len, char *errstr, size_t errstr_size);

/**
 * The consumption budget of one partition (per-partition backpressure).
 * Each assigned partition has a reserve (kb__deliver_partition_reserve) of
 * unfinished events it may always hold; beyond it, it takes from the part
 * of --max-pending that no partition uses or keeps in reserve. @p used is
 * the sum over all assigned partitions of max(pending, @p reserved).
 * Returns 1 when a partition holding @p pending events has room for
 * @p room + 1 more: with @p room 0, whether it may take the next event
 * (else it is paused); a paused one is resumed only when it has room for a
 * few (less pause/resume churn at the boundary). So a partition is paused
 * only when it holds more than its reserve, one within its reserve never
 * waits for another's backlog, and the events held stay within
 * max(@p max_pending, number of partitions).
 */
int kb__deliver_partition_may_take(int pending, int reserved, long used, int max_pending, int room);

/**
 * The reserve of each of @p n_parts partitions: half an even split of
 * @p max_pending, at least 1. The other half is shared: a partition whose
 * failing key holds many events keeps its other keys moving longer.
 */
int kb__deliver_partition_reserve(int max_pending, int n_parts);

/** Milliseconds since the epoch of an RFC 3339 time ("...Z" or with offset); -1 if bad. */
int64_t kb__deliver_parse_time(const char *rfc3339);

#endif
