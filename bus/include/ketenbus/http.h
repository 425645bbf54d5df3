/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/http.h - a small embedded HTTP/1.1 server (libevent evhttp, its own
 * event base on its own thread) for the schema registry, metrics and admin
 * API, plus a tiny blocking client for talking to such servers. Handlers are
 * registered by method and path prefix; replies are buffers, JSON (jansson),
 * deferred replies given later from another thread, or chunked streams
 * (server-sent events) fed from any thread.
 *
 * Thread rules, in one place:
 *  - kb_http_new/route/start/stop/destroy: the owning thread, in that order;
 *    routes are registered before kb_http_start().
 *  - handlers run on the server thread, one at a time; a kb_http_req_t is
 *    valid only inside the handler call that received it.
 *  - kb_http_stream_send/end, kb_http_deferred_reply*: any thread (they
 *    queue and wake the server).
 *  - kb_http_fetch: any thread (it makes its own event base).
 */
#ifndef KETENBUS_HTTP_H
#define KETENBUS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ketenbus/err.h"

typedef struct kb_http kb_http_t;                   /* opaque: one listening server */
typedef struct kb_http_req kb_http_req_t;           /* opaque: one request, inside a handler */
typedef struct kb_http_stream kb_http_stream_t;     /* opaque: one chunked response */
typedef struct kb_http_deferred kb_http_deferred_t; /* opaque: one reply given later */

/** Server options; zero-initialise and set what you need. */
struct kb_http_opts {
    const char *addr; /* listen address; NULL means "127.0.0.1" */
    uint16_t port;    /* listen port; 0 picks a free one (see kb_http_port) */
    size_t max_body;  /* largest accepted request body; 0 means 1 MiB. Larger
                       * bodies get 413 before any handler runs */
    int timeout_s;    /* idle/read timeout per connection; 0 means 30 s */

    /* --- security (all optional; zero keeps plain, unauthenticated HTTP) --- */
    const char *tls_cert_file;      /* PEM certificate chain: serve HTTPS only */
    const char *tls_key_file;       /* its PEM private key (unencrypted, mode 600) */
    const char *tls_client_ca_file; /* PEM CA(s): a client certificate signed by
                                     * one of them authenticates the request */
    const char *token_file;         /* file holding the bearer token (one line):
                                     * "Authorization: Bearer <token>" authenticates */
    const char *public_prefixes;    /* comma-separated path prefixes served without
                                     * authentication, e.g. "/metrics,/healthz" */
    int auth_fail_max;              /* failed authentications per client address in
                                     * auth_fail_window_s before it gets 429; 0 = 10 */
    int auth_fail_window_s;         /* that window; 0 = 60 s */
    size_t max_headers;             /* request line + headers limit; 0 = 16 KiB
                                     * (larger: 431-like refusal, connection closed) */

    /* --- slow and numerous clients (see "Deadlines" below) --- */
    int request_timeout_s;          /* a whole request (TLS handshake, headers and
                                     * body) must arrive within this; 0 = 10 s */
    int max_connections;            /* simultaneous connections; 0 = 256 */
    size_t stream_max_pending;      /* bytes a streaming reply may hold for a client
                                     * that reads slowly; 0 = 1 MiB (see
                                     * kb_http_stream_send) */
};
/*
 * Deadlines: timeout_s bounds silence (no byte for that long closes the
 * connection); request_timeout_s bounds the total time from accepting a
 * connection, or from the end of the previous response on a kept-alive one,
 * until the request's last body byte, so a client dribbling a byte every few
 * seconds (slowloris) is cut off after request_timeout_s whatever its pace.
 * The connection is closed without an answer (what nginx does too). A
 * streaming response (kb_http_stream_start) is not subject to it, nor is the
 * wait for a deferred reply (kb_http_defer): both are the server answering,
 * and the clock for the next request starts when the answer has gone out.
 *
 * Connection cap: a connection accepted while max_connections are open is
 * answered 503 {"error_code": 50303} with Retry-After: 1 and closed once its
 * request is read (it has 2 s for that); beyond max_connections plus a
 * quarter (at least 16) more, connections are closed at once. Connections
 * already being served are not disturbed. Both are counted in
 * kb_http_refused_total{reason="max-connections"|"request-timeout"}.
 */
/*
 * Authentication: when tls_client_ca_file or token_file is set, every
 * request must present a verified client certificate or the bearer token
 * (compared in constant time), except on public_prefixes (matched like
 * routes, at a segment boundary). Otherwise 401 {"error_code": 40101} with
 * WWW-Authenticate: Bearer, before any handler runs. An address with
 * auth_fail_max failures inside the window gets 429 (Retry-After) for every
 * protected route until the window passes, even with valid credentials, so
 * guessing is slowed to auth_fail_max tries per window. The token is never
 * logged; failures are logged with the client address and path only.
 */

/**
 * A request handler. It must answer @p req exactly once, with kb_http_reply*,
 * kb_http_stream_start or kb_http_defer, before returning; a handler that
 * does not gets a 500 sent for it (and a log line). It should return
 * quickly: every other request (probes, /metrics) waits meanwhile. Work
 * that waits on something else (Kafka) belongs on another thread, answered
 * with kb_http_defer.
 * @thread the server thread
 */
typedef void (*kb_http_handler_fn)(kb_http_req_t *req, void *opaque);

/**
 * A server, not yet listening. NULL with errstr on failure.
 * @p opts may be NULL for all defaults. Strings in @p opts are copied.
 */
kb_http_t *kb_http_new(const struct kb_http_opts *opts, char *errstr, size_t errstr_size);

/**
 * Route requests with method @p method ("GET", "POST", "PUT", "DELETE",
 * "HEAD", or "*" for any) whose path starts with @p prefix at a segment
 * boundary ("/subjects" matches "/subjects" and "/subjects/x" but not
 * "/subjectsx"; "/" matches everything) to @p fn. The longest prefix wins;
 * among equally long ones, an exact method beats "*". A path that matches
 * some prefix but no method gets 405, no prefix at all 404 (both with a
 * JSON body {"error_code": status, "message": ...}). @p prefix is copied;
 * @p opaque stays the caller's. Only before kb_http_start.
 */
kb_err_t kb_http_route(kb_http_t *h, const char *method, const char *prefix, kb_http_handler_fn fn,
                       void *opaque);

/** Bind and start serving on a new thread. KB_ERR_IO when the port is taken;
 *  KB_ERR_CONF when a TLS file or the token file cannot be used. */
kb_err_t kb_http_start(kb_http_t *h, char *errstr, size_t errstr_size);

/** The port actually listened on (useful with opts.port = 0); 0 before start. */
uint16_t kb_http_port(const kb_http_t *h);

/**
 * Stop serving: close the listener and every connection (open streams
 * become closed: their sends fail; deferred replies not sent yet are
 * dropped), join the thread. No handler runs after this returns.
 * Idempotent; also done by kb_http_destroy.
 */
void kb_http_stop(kb_http_t *h);

/** Stop and free @p h. NULL is a no-op. Streams and deferred replies still
 *  held stay valid until their kb_http_stream_end / kb_http_deferred_reply*. */
void kb_http_destroy(kb_http_t *h);

/* --- the request (valid only inside the handler) --- */

/** "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS" or "PATCH". */
const char *kb_http_req_method(const kb_http_req_t *req);

/** The path, percent-decoded, without the query ("/subjects/a b/versions").
 *  A path whose decoding contains a NUL byte is rejected with 400 before
 *  any handler runs. */
const char *kb_http_req_path(const kb_http_req_t *req);

/** The path after the matched route prefix (the route "/subjects" on
 *  "/subjects/x/versions" gives "/x/versions"; may be ""). */
const char *kb_http_req_rest(const kb_http_req_t *req);

/** Decoded value of query parameter @p name (first occurrence), or NULL. */
const char *kb_http_req_query(const kb_http_req_t *req, const char *name);

/** How the request was authenticated: "none" (no authentication configured,
 *  or a public route), "client-cert" or "token". Static string. */
const char *kb_http_req_auth(const kb_http_req_t *req);

/** Value of request header @p name (case-insensitive), or NULL. */
const char *kb_http_req_header(const kb_http_req_t *req, const char *name);

/** The request body (NUL-terminated for convenience; *len excludes the NUL).
 *  Never NULL: an absent body is "" with *len 0. */
const char *kb_http_req_body(const kb_http_req_t *req, size_t *len);

/** The body parsed as JSON (new reference, caller decrefs), or NULL with
 *  errstr giving line/column. */
json_t *kb_http_req_json(const kb_http_req_t *req, char *errstr, size_t errstr_size);

/* --- replies (exactly one per request) --- */

/** Add a response header, before the reply call. Copied. */
kb_err_t kb_http_reply_header(kb_http_req_t *req, const char *name, const char *value);

/** Reply @p status with @p body (copied; may be NULL when @p len is 0). */
kb_err_t kb_http_reply(kb_http_req_t *req, int status, const char *content_type, const void *body,
                       size_t len);

/**
 * Reply @p status with @p body serialised compactly, content type
 * @p content_type (NULL means "application/json"). Steals @p body's
 * reference, even on error.
 */
kb_err_t kb_http_reply_json(kb_http_req_t *req, int status, const char *content_type, json_t *body);

/**
 * Reply @p status with the error body {"error_code": @p error_code,
 * "message": "<fmt...>"} (the Confluent REST shape). Never put personal
 * data in the message.
 */
kb_err_t kb_http_reply_error(kb_http_req_t *req, int status, int error_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* --- deferred replies: the answer comes later, from another thread --- */

/**
 * Answer @p req later: returns a handle that another thread completes with
 * kb_http_deferred_reply* once the answer is known, while the server thread
 * goes on serving other requests. This answers @p req as far as the handler
 * is concerned (a later kb_http_reply on it is KB_ERR_STATE); headers added
 * with kb_http_reply_header before this call go out with the reply. Copy
 * what the other thread needs from @p req first: @p req itself is gone when
 * the handler returns. The caller owns the handle until it calls one of
 * kb_http_deferred_reply* on it, which it must do exactly once, also after
 * the client went away or the server stopped (the reply is then dropped).
 * Until then the connection waits (no request_timeout_s, see "Deadlines"):
 * bound the work behind it. NULL on allocation failure (then @p req is not
 * answered yet).
 * @thread the server thread (inside the handler)
 */
kb_http_deferred_t *kb_http_defer(kb_http_req_t *req);

/**
 * Complete @p d with @p status and @p body (copied; may be NULL when @p len
 * is 0) and release @p d: the server thread sends it when it wakes. When
 * the client is gone or the server stopped, the reply is dropped and this
 * still returns KB_OK. KB_ERR_NOMEM when the body could not be copied: the
 * client then gets a 500 without a body. Either way @p d is freed.
 * @thread any
 */
kb_err_t kb_http_deferred_reply(kb_http_deferred_t *d, int status, const char *content_type,
                                const void *body, size_t len);

/** kb_http_reply_json for a deferred reply: steals @p body's reference, even
 *  on error, and releases @p d. @thread any */
kb_err_t kb_http_deferred_reply_json(kb_http_deferred_t *d, int status, const char *content_type,
                                     json_t *body);

/** kb_http_reply_error for a deferred reply; releases @p d. @thread any */
kb_err_t kb_http_deferred_reply_error(kb_http_deferred_t *d, int status, int error_code,
                                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/** False once the server let go of @p d (server stopped, connection closed):
 *  a hint for skipping work whose answer nobody can read. A client that
 *  hangs up while it waits is mostly noticed only when the reply is written
 *  (evhttp reads nothing from a connection whose request is being
 *  answered). @thread any */
int kb_http_deferred_open(const kb_http_deferred_t *d);

/* --- chunked (streaming) replies, e.g. text/event-stream --- */

/**
 * Start a chunked reply: status and headers go out now, the body follows in
 * kb_http_stream_send calls, kb_http_stream_end finishes it. This answers
 * @p req. The caller owns the stream until kb_http_stream_end, which it must
 * call exactly once, also after the client went away or the server
 * stopped. NULL on allocation failure (then @p req is not answered yet).
 * @thread the server thread (inside the handler)
 */
kb_http_stream_t *kb_http_stream_start(kb_http_req_t *req, int status, const char *content_type);

/**
 * Queue @p len bytes of @p data (copied) as one chunk. KB_ERR_STATE once
 * the client disconnected or the server stopped: stop producing then.
 * KB_ERR_RANGE when the bytes this stream holds for its client (queued, and
 * in the connection's output buffer) would pass stream_max_pending: the
 * client reads slower than the stream is fed. The chunk is not queued and
 * the stream stays open: the caller drops it (and tells the client so
 * later) or ends the stream. So a client that reads just fast enough to
 * escape timeout_s costs at most stream_max_pending bytes.
 * @thread any
 */
kb_err_t kb_http_stream_send(kb_http_stream_t *s, const void *data, size_t len);

/** True while the client is still connected and the server running. Any thread. */
int kb_http_stream_open(const kb_http_stream_t *s);

/** Bytes @p s holds for its client now: queued, and in the connection's
 *  output buffer (at most stream_max_pending, plus the few bytes of chunk
 *  framing of the last chunk handed on). @thread any */
size_t kb_http_stream_pending(const kb_http_stream_t *s);

/** Finish the reply (when still open) and release @p s. NULL is a no-op.
 *  @thread any */
void kb_http_stream_end(kb_http_stream_t *s);

/* --- a small blocking client --- */

/** One HTTP response from kb_http_fetch. */
struct kb_http_response {
    int status;         /* HTTP status code */
    char *body;         /* malloc'ed, NUL-terminated (caller frees via _fini) */
    size_t len;         /* body length without the NUL */
    char *content_type; /* malloc'ed Content-Type, or NULL */
};

/** Free what @p r holds; leaves it zeroed. */
void kb_http_response_fini(struct kb_http_response *r);

/**
 * Send one request to @p url ("http://host:port/path?query"; https is not
 * supported) and wait at most @p timeout_ms for the whole response. Any
 * status counts as success (check r->status); errors are connection
 * failures and timeouts (KB_ERR_IO, KB_ERR_TIMEOUT). @p body may be NULL
 * (no body); @p content_type applies to it. Responses over 16 MiB fail.
 * On success the caller owns @p r's contents (kb_http_response_fini).
 * @thread any
 */
kb_err_t kb_http_fetch(const char *method, const char *url, const char *content_type,
                       const void *body, size_t body_len, int timeout_ms,
                       struct kb_http_response *r, char *errstr, size_t errstr_size);

#endif
