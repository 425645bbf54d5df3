/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * http.c - the embedded HTTP server (evhttp on a private event base and
 * thread) and the small blocking HTTP client of ketenbus.
 *
 * Server invariants:
 *  1. Only the server thread touches the event base, evhttp and every
 *     evhttp_request while the thread runs; other threads talk to it through
 *     the wake pipe (one byte: 's' = streams or deferred replies have work,
 *     'q' = quit).
 *  2. A stream is shared by its owner (until kb_http_stream_end) and the
 *     server (while its connection is open and the server runs); s->refs
 *     counts both and the last one frees it. s->mu guards buf/ended/closed
 *     and out_len.
 *  2a. A stream's bytes not yet written to its client, s->len (queued here)
 *     plus s->in_transit (taken by streams_flush, on their way to libevent)
 *     plus s->out_len (in libevent's output buffer of the connection, kept
 *     current by a callback on that buffer, on_stream_out), never exceed
 *     s->max_pending, but for the chunk framing (a dozen bytes per flush)
 *     that evhttp adds on the way: kb_http_stream_send refuses a chunk that
 *     would pass it. So a client that reads slowly, but not so slowly that
 *     timeout_s ends it, holds about max_pending bytes of memory at most. The callback is
 *     registered while the server holds the stream (stream_unwatch removes
 *     it before the server lets go, invariant 3).
 *  3. closed == 1 means the server will never touch the stream again, so a
 *     sender that sees closed == 0 under s->mu may still write to the wake
 *     pipe: stop marks every stream closed (under its mutex) before it
 *     closes the pipe.
 *  4. Every accepted connection has one struct conn (server thread only)
 *     from on_new_bev until evhttp closes it (on_conn_close) or the server
 *     stops; h->n_conns counts them, so the cap needs no libevent internals.
 *     conn->deadline is pending exactly while a request is awaited (from
 *     accept or the end of the previous response until the request is read)
 *     and never while a stream or a deferred reply answers on the connection.
 *  5. A deferred reply (kb_http_defer) is shared like a stream: by its owner
 *     until kb_http_deferred_reply*, and by the server while its request is
 *     unanswered and its connection open; d->refs counts both and the last
 *     one frees it. d->mu guards replied/closed and the reply itself.
 *     closed == 1 means the server let go (reply handed to evhttp,
 *     connection gone, or stop) and will never touch d again; a replier
 *     that sees closed == 0 under d->mu may write to the wake pipe, as in 3:
 *     stop marks every deferred reply closed before it closes the pipe.
 *  6. While a deferred reply is awaited, its connection's conn->deferred
 *     points to it (untracked connection: the close callback is ours), its
 *     deadline is not pending, and evhttp reads nothing from it (it stops
 *     reading once a request is in), so neither request_timeout_s nor
 *     timeout_s can close it under the reply; stop and a client whose
 *     connection fails are the only ways it goes. evhttp answers one request
 *     per connection at a time, so one pointer is enough. The server
 *     unlinks d (deferred_release) before it hands the reply to evhttp:
 *     a connection closing inside that send finds nothing left to release.
 *
 * Server states: new --kb_http_start--> running --kb_http_stop--> stopped
 *                --kb_http_destroy--> freed. Stream states: open --client
 *                gone/server stop--> closed; open|closed --kb_http_stream_end
 *                --> ended (freed once the server let go too).
 * Deferred reply states: awaited (kb_http_defer) --kb_http_deferred_reply-->
 *                replied --deferred_flush: sent--> closed; awaited|replied
 *                --connection gone (deferred_conn_gone) / stop
 *                (server_teardown)--> closed, reply dropped. Freed when the
 *                owner replied and the server let go, in either order.
 * Connection states: accepted (on_new_bev) --on_attach--> awaiting a request
 *                (deadline pending) --on_request--> answering (no deadline;
 *                a stream or a deferred reply keeps it here)
 *                --on_request_done--> awaiting the next request; any
 *                --on_deadline / client gone / stop--> closed (on_conn_close).
 *                Over the cap: accepted --on_attach--> refused (503 from
 *                on_request, or closed by the deadline).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "ketenbus/http.h"
#include "ketenbus/json_err.h"
#include "ketenbus/kafka.h" /* kb_kafka_host_is_loopback */
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"

#define COMP "http"

/* Failed authentications are counted per client address in a small table
 * (server thread only); an address over the limit gets 429 until its window
 * ends. A full table reuses the slot whose window started first. */
#define AUTH_SLOTS 256
#define AUTH_PROBE 8

struct auth_slot {
    char addr[64];       /* client address ("" = free) */
    time_t window_start; /* when its current window began */
    int failures;        /* failures inside that window */
};

/* A connection over the cap gets this long to send the request that is
 * answered 503; slower ones are just closed. */
#define REFUSE_GRACE_S 2

struct kb_http_stream;

/* One accepted connection (invariant 4). */
struct conn {
    kb_http_t *h;                   /* the server */
    struct bufferevent *bev;        /* its bufferevent (owned by evhttp once attached) */
    struct evhttp_connection *evcon;/* evhttp's connection, set by on_attach */
    struct event *attach;           /* one-shot: runs once evhttp set the connection up */
    struct event *deadline;         /* pending while a request is awaited */
    int refused;                    /* accepted over max_connections: 1 = answer 503,
                                     * 2 = far over it: close at once */
    struct kb_http_stream *stream;  /* a stream answering on it, or NULL */
    kb_http_deferred_t *deferred;   /* a deferred reply awaited on it, or NULL
                                     * (invariant 6) */
    struct conn *prev, *next;       /* in h->conns */
};

struct route {
    char *method;          /* "GET"... or "*" */
    char *prefix;          /* path prefix, without trailing '/' unless it is "/" */
    size_t prefix_len;     /* strlen(prefix) */
    kb_http_handler_fn fn; /* the handler */
    void *opaque;          /* the handler's argument (caller's) */
};

struct kb_http {
    char *addr;                     /* listen address (owned) */
    uint16_t port;                  /* requested, then actual port */
    size_t max_body;                /* request body limit */
    int timeout_s;                  /* connection timeout */
    struct route *routes;           /* registered routes */
    size_t nroutes;                 /* used entries of routes */
    struct event_base *base;        /* private event base (server thread) */
    struct evhttp *http;            /* the evhttp server */
    struct event *wake_ev;          /* read side of the wake pipe */
    int wake[2];                    /* wake pipe: [0] read (server), [1] write (any) */
    pthread_t thread;               /* the server thread */
    int running;                    /* thread started and not joined */
    struct kb_http_stream *streams; /* open streams (server thread only) */
    kb_http_deferred_t *deferred;   /* deferred replies not sent yet (server thread) */
    /* security (see kb_http_opts) */
    char *tls_cert, *tls_key;       /* HTTPS certificate and key files (owned), or NULL */
    char *tls_client_ca;            /* client-certificate CA file (owned), or NULL */
    char *token_file;               /* bearer token file (owned), or NULL */
    char **public_prefixes;         /* paths open without authentication (owned) */
    size_t n_public;                /* entries of public_prefixes */
    int auth_required;              /* a token or a client CA is configured */
    int have_token;                 /* token_hash is set */
    unsigned char token_hash[32];   /* SHA-256 of the token (the token itself is not kept) */
    int auth_fail_max;              /* failures per window before 429 */
    int auth_fail_window_s;         /* the window */
    size_t max_headers;             /* request line + headers limit */
    int request_timeout_s;          /* total time for one request to arrive */
    int max_conns;                  /* connections served at once */
    size_t stream_max_pending;      /* bytes a stream may hold for its client */
    int n_conns;                    /* struct conn alive (server thread) */
    struct conn *conns;             /* every tracked connection (server thread) */
    SSL_CTX *ssl_ctx;               /* HTTPS context (after start), or NULL */
    struct auth_slot auth[AUTH_SLOTS]; /* failure counters (server thread) */
};

struct kb_http_req {
    kb_http_t *h;              /* the server */
    struct evhttp_request *ev; /* libevent's request */
    const char *method;        /* method name (static) */
    char *path;                /* decoded path (owned) */
    const char *rest;          /* path after the matched prefix (into path) */
    struct evkeyvalq query;    /* decoded query parameters */
    char *body;                /* body copy, NUL-terminated (owned) */
    size_t body_len;           /* body length */
    int answered;              /* a reply or stream start happened */
    const char *auth;          /* how it was authenticated (static string) */
};

struct kb_http_stream {
    kb_http_t *h;                   /* the server (only used while !closed) */
    struct evhttp_request *ev;      /* the request being answered (server thread) */
    struct evhttp_connection *conn; /* its connection, for the close callback */
    struct conn *c;                 /* our record of that connection, or NULL when
                                     * untracked (then conn's close callback is ours) */
    struct evbuffer *out;           /* the connection's output buffer, watched
                                     * (server thread; NULL once unwatched) */
    struct evbuffer_cb_entry *out_cb; /* our callback on it (invariant 2a) */
    size_t max_pending;               /* the bound of invariant 2a (fixed at start) */
    pthread_mutex_t mu;             /* guards the fields below */
    char *buf;                      /* queued bytes not yet handed to libevent */
    size_t len, cap;                /* used / allocated size of buf */
    size_t out_len;                 /* bytes in out, as of its last change */
    size_t in_transit;              /* taken from buf, not yet in out (streams_flush) */
    int ended;                      /* the owner called kb_http_stream_end */
    int closed;                     /* the server let go (client gone or stop) */
    int refs;                       /* owner + server, see invariant 2 */
    struct kb_http_stream *next;    /* in h->streams (server thread) */
};

/* One reply given later from another thread (invariants 5 and 6). */
struct kb_http_deferred {
    kb_http_t *h;                   /* the server (only used while !closed) */
    struct evhttp_request *ev;      /* the request to answer (server thread) */
    struct evhttp_connection *conn; /* its connection, for the close callback */
    struct conn *c;                 /* our record of that connection, or NULL when
                                     * untracked (then conn's close callback is ours) */
    pthread_mutex_t mu;             /* guards the fields below */
    int status;                     /* the reply's status (once replied) */
    char *content_type;             /* its Content-Type (owned), or NULL */
    char *body;                     /* its body (owned), or NULL when len is 0 */
    size_t len;                     /* body length */
    int replied;                    /* the owner gave the reply: the fields above hold it */
    int closed;                     /* the server let go (sent, connection gone or stop) */
    int refs;                       /* owner + server, see invariant 5 */
    struct kb_http_deferred *next;  /* in h->deferred (server thread) */
};

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "UNKNOWN";
}

/* --- streams --- */

static void stream_unref(struct kb_http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) {
        pthread_mutex_destroy(&s->mu);
        free(s->buf);
        free(s);
    }
}

/* Server thread: the connection's output buffer changed size. */
static void on_stream_out(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    struct kb_http_stream *s = arg;
    (void)info;
    size_t n = evbuffer_get_length(out);
    pthread_mutex_lock(&s->mu);
    if (!s->in_transit) /* else streams_flush sets it once the chunk is in */
        s->out_len = n;
    pthread_mutex_unlock(&s->mu);
}

/* Server thread: stop watching the output buffer (invariant 2a), while it
 * still exists: before the reply ends or the connection is freed. */
static void stream_unwatch(struct kb_http_stream *s)
{
    if (s->out_cb)
        evbuffer_remove_cb_entry(s->out, s->out_cb);
    s->out_cb = NULL;
    s->out = NULL;
}

/* Server thread: forget @p s (unlink, mark closed, drop the server's ref). */
static void stream_release(kb_http_t *h, struct kb_http_stream *s)
{
    stream_unwatch(s);
    for (struct kb_http_stream **pp = &h->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    if (s->c)
        s->c->stream = NULL;
    else if (s->conn)
        evhttp_connection_set_closecb(s->conn, NULL, NULL);
    s->c = NULL;
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    pthread_mutex_unlock(&s->mu);
    stream_unref(s);
}

/* The connection under @p s is going away (client gone, error, stop). */
static void stream_conn_gone(struct kb_http_stream *s)
{
    KB_LOG_DBG(COMP, "stream client gone", "%s", "");
    stream_unwatch(s); /* its buffer goes with the connection */
    /* On EOF/timeout/error libevent detaches an unfinished reply from its
     * connection instead of freeing it, leaving it to reply_end (which then
     * just frees it). A still attached one goes with the connection. */
    if (s->ev && evhttp_request_get_connection(s->ev) == NULL)
        evhttp_send_reply_end(s->ev);
    s->conn = NULL; /* being freed by libevent */
    s->ev = NULL;
    stream_release(s->h, s);
}

static void on_stream_close(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    stream_conn_gone(arg);
}

/* --- deferred replies (invariants 5 and 6) --- */

static void deferred_unref(struct kb_http_deferred *d)
{
    pthread_mutex_lock(&d->mu);
    int last = --d->refs == 0;
    pthread_mutex_unlock(&d->mu);
    if (last) {
        pthread_mutex_destroy(&d->mu);
        free(d->content_type);
        free(d->body);
        free(d);
    }
}

/* Server thread: forget @p d (unlink, mark closed, drop the server's ref). */
static void deferred_release(kb_http_t *h, struct kb_http_deferred *d)
{
    for (struct kb_http_deferred **pp = &h->deferred; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    if (d->c)
        d->c->deferred = NULL;
    else if (d->conn)
        evhttp_connection_set_closecb(d->conn, NULL, NULL);
    d->c = NULL;
    d->conn = NULL;
    d->ev = NULL;
    pthread_mutex_lock(&d->mu);
    d->closed = 1;
    pthread_mutex_unlock(&d->mu);
    deferred_unref(d);
}

/* The connection under @p d is going away before the reply was sent. */
static void deferred_conn_gone(struct kb_http_deferred *d)
{
    KB_LOG_DBG(COMP, "deferred reply dropped: connection gone", "%s", "");
    /* A request that libevent detached from its failing connection (EOF,
     * timeout) is no longer freed with it: it is ours now. */
    if (d->ev && evhttp_request_get_connection(d->ev) == NULL)
        evhttp_request_free(d->ev);
    d->conn = NULL; /* being freed by libevent */
    deferred_release(d->h, d);
}

static void on_deferred_close(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    deferred_conn_gone(arg);
}

/* --- connections (invariant 4) --- */

static void conn_free(struct conn *c)
{
    kb_http_t *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->n_conns--;
    if (c->attach)
        event_free(c->attach);
    if (c->deadline)
        event_free(c->deadline);
    free(c);
}

static struct conn *conn_find(kb_http_t *h, struct evhttp_connection *evcon)
{
    for (struct conn *c = h->conns; c && evcon; c = c->next)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

static void conn_arm(struct conn *c, int seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};
    evtimer_add(c->deadline, &tv);
}

static void count_refused(const char *reason)
{
    kb_metrics_counter_add("kb_http_refused_total", 1, reason, NULL);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct conn *c = arg;
    (void)evcon;
    if (c->stream)
        stream_conn_gone(c->stream); /* clears c->stream */
    if (c->deferred)
        deferred_conn_gone(c->deferred); /* clears c->deferred */
    conn_free(c);
}

/* Close @p c now (evhttp frees the connection and any unread request). */
static void conn_drop(struct conn *c)
{
    struct evhttp_connection *evcon = c->evcon;
    if (c->stream || c->deferred) {
        /* never armed while answering; be safe anyway */
        evtimer_del(c->deadline);
        return;
    }
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    conn_free(c);
    if (evcon)
        evhttp_connection_free(evcon);
}

static const char *conn_peer(struct conn *c, char *buf, size_t size)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (c->evcon)
        evhttp_connection_get_peer(c->evcon, &addr, &port);
    snprintf(buf, size, "%s:%u", addr ? addr : "?", (unsigned)port);
    return buf;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    char peer[80];
    (void)fd;
    (void)what;
    if (c->refused) {
        KB_LOG_WARN(COMP, "connection refused: too many connections", "client=%s max=%d",
                    conn_peer(c, peer, sizeof peer), c->h->max_conns);
    } else {
        KB_LOG_WARN(COMP, "request not complete within the deadline; connection closed",
                    "client=%s request_timeout_s=%d", conn_peer(c, peer, sizeof peer),
                    c->h->request_timeout_s);
        count_refused("request-timeout");
    }
    conn_drop(c);
}

/* Runs right after evhttp set up the connection that on_new_bev's
 * bufferevent belongs to: evhttp made itself the bufferevent's callback
 * argument, which is how we learn its evhttp_connection (libevent 2.1 has
 * no public hook for new connections). */
static void on_attach(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    kb_http_t *h = c->h;
    void *cbarg = NULL;
    (void)fd;
    (void)what;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
    c->evcon = cbarg;
    if (!c->evcon) { /* not adopted by evhttp: nothing to watch */
        conn_free(c);
        return;
    }
    evhttp_connection_set_closecb(c->evcon, on_conn_close, c);
    if (!c->refused) {
        conn_arm(c, h->request_timeout_s);
        return;
    }
    count_refused("max-connections");
    if (c->refused == 2) {
        char peer[80];
        KB_LOG_WARN(COMP, "connection closed: far too many connections", "client=%s open=%d",
                    conn_peer(c, peer, sizeof peer), h->n_conns);
        conn_drop(c);
        return;
    }
    conn_arm(c, REFUSE_GRACE_S < h->request_timeout_s ? REFUSE_GRACE_S : h->request_timeout_s);
}

/* A response went out completely: the connection awaits its next request. */
static void on_request_done(struct evhttp_request *ev, void *arg)
{
    struct conn *c = arg;
    (void)ev;
    if (!c->stream)
        conn_arm(c, c->h->request_timeout_s);
}

/* Server thread: hand queued bytes to libevent, finish ended streams. */
static void streams_flush(kb_http_t *h)
{
    struct kb_http_stream *s = h->streams, *next;
    for (; s; s = next) {
        next = s->next;
        pthread_mutex_lock(&s->mu);
        char *buf = s->buf;
        size_t len = s->len;
        int ended = s->ended;
        s->buf = NULL;
        s->len = s->cap = 0;
        s->in_transit = len; /* still counted (invariant 2a) until out holds it */
        pthread_mutex_unlock(&s->mu);
        if (len) {
            struct evbuffer *eb = evbuffer_new();
            if (eb && evbuffer_add(eb, buf, len) == 0)
                evhttp_send_reply_chunk(s->ev, eb);
            if (eb)
                evbuffer_free(eb);
            pthread_mutex_lock(&s->mu);
            s->in_transit = 0;
            if (s->out) /* read here too, in case the buffer defers its callbacks */
                s->out_len = evbuffer_get_length(s->out);
            pthread_mutex_unlock(&s->mu);
        }
        free(buf);
        if (ended) {
            stream_unwatch(s);
            evhttp_send_reply_end(s->ev);
            s->ev = NULL;
            stream_release(h, s);
        }
    }
}

/* Every answer carries operational data (dead letters, subscriptions with
 * their webhook addresses, metrics): no cache may keep it, and no browser may
 * guess a type other than the one given. A handler's own Cache-Control (the
 * dashboard page's) stays. */
static void data_headers(struct evkeyvalq *hd)
{
    if (!evhttp_find_header(hd, "Cache-Control"))
        evhttp_add_header(hd, "Cache-Control", "no-store");
    if (!evhttp_find_header(hd, "X-Content-Type-Options"))
        evhttp_add_header(hd, "X-Content-Type-Options", "nosniff");
}

/* Server thread: send @p status with @p body on @p ev (evhttp frees @p ev
 * once it went out). KB_ERR_NOMEM leaves @p ev unanswered. */
static kb_err_t send_reply(struct evhttp_request *ev, int status, const char *content_type,
                           const void *body, size_t len)
{
    struct evbuffer *eb = evbuffer_new();
    if (!eb)
        return KB_ERR_NOMEM;
    if (len && evbuffer_add(eb, body, len) != 0) {
        evbuffer_free(eb);
        return KB_ERR_NOMEM;
    }
    struct evkeyvalq *hd = evhttp_request_get_output_headers(ev);
    if (content_type) {
        /* one Content-Type, this one, even if the handler set another */
        evhttp_remove_header(hd, "Content-Type");
        evhttp_add_header(hd, "Content-Type", content_type);
    }
    data_headers(hd);
    evhttp_send_reply(ev, status, NULL, eb);
    evbuffer_free(eb);
    return KB_OK;
}

/* Server thread: send the deferred replies that were given. */
static void deferred_flush(kb_http_t *h)
{
    struct kb_http_deferred *d = h->deferred, *next;
    for (; d; d = next) {
        next = d->next;
        pthread_mutex_lock(&d->mu);
        int replied = d->replied, status = d->status;
        char *content_type = d->content_type, *body = d->body;
        size_t len = d->len;
        if (replied)
            d->content_type = d->body = NULL; /* ours now */
        pthread_mutex_unlock(&d->mu);
        if (!replied)
            continue;
        struct evhttp_request *ev = d->ev;
        /* Let go before sending (invariant 6); this may free d. */
        deferred_release(h, d);
        if (send_reply(ev, status, content_type, body, len) != KB_OK)
            evhttp_send_reply(ev, 500, NULL, NULL); /* never leave it waiting */
        free(content_type);
        free(body);
    }
}

static void wake(kb_http_t *h, char what)
{
    /* Non-blocking: a full pipe already guarantees a wake-up. */
    ssize_t r = write(h->wake[1], &what, 1);
    (void)r;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    kb_http_t *h = arg;
    char buf[64];
    ssize_t n;
    int quit = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == 'q')
                quit = 1;
    streams_flush(h);
    deferred_flush(h);
    if (quit)
        event_base_loopbreak(h->base);
}

kb_http_stream_t *kb_http_stream_start(kb_http_req_t *req, int status, const char *content_type)
{
    if (req->answered)
        return NULL;
    struct kb_http_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->h = req->h;
    s->ev = req->ev;
    s->conn = evhttp_request_get_connection(req->ev);
    s->max_pending = req->h->stream_max_pending;
    struct bufferevent *bev = s->conn ? evhttp_connection_get_bufferevent(s->conn) : NULL;
    if (bev) {
        s->out = bufferevent_get_output(bev);
        s->out_len = evbuffer_get_length(s->out);
        s->out_cb = evbuffer_add_cb(s->out, on_stream_out, s);
        if (!s->out_cb) {
            pthread_mutex_destroy(&s->mu);
            free(s);
            return NULL;
        }
    }
    s->refs = 2;
    s->next = req->h->streams;
    req->h->streams = s;
    s->c = conn_find(req->h, s->conn);
    if (s->c) {
        s->c->stream = s;
        evtimer_del(s->c->deadline);
    } else {
        evhttp_connection_set_closecb(s->conn, on_stream_close, s);
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req->ev);
    evhttp_add_header(out, "Content-Type", content_type ? content_type : "text/plain");
    data_headers(out);
    evhttp_send_reply_start(req->ev, status, NULL);
    req->answered = 1;
    return s;
}

kb_err_t kb_http_stream_send(kb_http_stream_t *s, const void *data, size_t len)
{
    kb_err_t err = KB_OK;
    pthread_mutex_lock(&s->mu);
    if (s->closed || s->ended) {
        err = KB_ERR_STATE;
        goto out_unlock;
    }
    if (len > s->max_pending || s->len + s->in_transit + s->out_len > s->max_pending - len) {
        err = KB_ERR_RANGE; /* invariant 2a: the client is not keeping up */
        goto out_unlock;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + len)
            cap *= 2;
        char *nb = realloc(s->buf, cap);
        if (!nb) {
            err = KB_ERR_NOMEM;
            goto out_unlock;
        }
        s->buf = nb;
        s->cap = cap;
    }
    if (len)
        memcpy(s->buf + s->len, data, len);
    s->len += len;
    wake(s->h, 's'); /* under s->mu: see invariant 3 */
out_unlock:
    pthread_mutex_unlock(&s->mu);
    return err;
}

int kb_http_stream_open(const kb_http_stream_t *s)
{
    struct kb_http_stream *m = (struct kb_http_stream *)s;
    pthread_mutex_lock(&m->mu);
    int open = !m->closed && !m->ended;
    pthread_mutex_unlock(&m->mu);
    return open;
}

size_t kb_http_stream_pending(const kb_http_stream_t *s)
{
    struct kb_http_stream *m = (struct kb_http_stream *)s;
    pthread_mutex_lock(&m->mu);
    size_t n = m->len + m->in_transit + m->out_len;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void kb_http_stream_end(kb_http_stream_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->ended = 1;
    if (!s->closed)
        wake(s->h, 's');
    pthread_mutex_unlock(&s->mu);
    stream_unref(s);
}

/* --- deferred replies --- */

kb_http_deferred_t *kb_http_defer(kb_http_req_t *req)
{
    if (req->answered)
        return NULL;
    struct kb_http_deferred *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->mu, NULL);
    d->h = req->h;
    d->ev = req->ev;
    d->conn = evhttp_request_get_connection(req->ev);
    d->refs = 2;
    d->next = req->h->deferred;
    req->h->deferred = d;
    d->c = conn_find(req->h, d->conn);
    if (d->c)
        d->c->deferred = d; /* its deadline went when the request came in */
    else
        evhttp_connection_set_closecb(d->conn, on_deferred_close, d);
    req->answered = 1;
    return d;
}

kb_err_t kb_http_deferred_reply(kb_http_deferred_t *d, int status, const char *content_type,
                                const void *body, size_t len)
{
    kb_err_t err = KB_OK;
    char *copy = NULL, *ct = NULL;
    /* Copied outside the lock: the server thread may be flushing others. */
    if ((len && !(copy = malloc(len))) || (content_type && !(ct = strdup(content_type)))) {
        free(copy);
        copy = ct = NULL;
        len = 0;
        status = 500;
        err = KB_ERR_NOMEM;
    } else if (len) {
        memcpy(copy, body, len);
    }
    pthread_mutex_lock(&d->mu);
    if (!d->closed && !d->replied) {
        d->status = status;
        d->content_type = ct;
        d->body = copy;
        d->len = len;
        d->replied = 1;
        copy = ct = NULL;
        wake(d->h, 's'); /* under d->mu: see invariant 5 */
    }
    pthread_mutex_unlock(&d->mu);
    free(copy); /* still ours when the reply was dropped */
    free(ct);
    deferred_unref(d);
    return err;
}

static const char oom_json[] = "{\"error_code\":50001,\"message\":\"out of memory\"}";

kb_err_t kb_http_deferred_reply_json(kb_http_deferred_t *d, int status, const char *content_type,
                                     json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!text) {
        kb_http_deferred_reply(d, 500, "application/json", oom_json, sizeof oom_json - 1);
        return KB_ERR_NOMEM;
    }
    kb_err_t err = kb_http_deferred_reply(
        d, status, content_type ? content_type : "application/json", text, strlen(text));
    free(text);
    return err;
}

static json_t *error_json(int error_code, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return json_pack("{s:i,s:s}", "error_code", error_code, "message", msg);
}

kb_err_t kb_http_deferred_reply_error(kb_http_deferred_t *d, int status, int error_code,
                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = error_json(error_code, fmt, ap);
    va_end(ap);
    return kb_http_deferred_reply_json(d, status, NULL, j);
}

int kb_http_deferred_open(const kb_http_deferred_t *d)
{
    struct kb_http_deferred *m = (struct kb_http_deferred *)d;
    pthread_mutex_lock(&m->mu);
    int open = !m->closed;
    pthread_mutex_unlock(&m->mu);
    return open;
}

/* --- requests --- */

static int route_matches(const struct route *r, const char *path)
{
    if (r->prefix_len == 1 && r->prefix[0] == '/')
        return 1;
    return strncmp(path, r->prefix, r->prefix_len) == 0 &&
           (path[r->prefix_len] == '\0' || path[r->prefix_len] == '/');
}

/* --- authentication --- */

static int path_under(const char *prefix, const char *path)
{
    size_t n = strlen(prefix);
    if (n == 1 && prefix[0] == '/')
        return 1;
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static struct auth_slot *auth_slot(kb_http_t *h, const char *addr, int create)
{
    unsigned long hash = 5381;
    for (const char *c = addr; *c; c++)
        hash = hash * 33 + (unsigned char)*c;
    struct auth_slot *oldest = NULL;
    for (int i = 0; i < AUTH_PROBE; i++) {
        struct auth_slot *sl = &h->auth[(hash + (unsigned long)i) % AUTH_SLOTS];
        if (!strcmp(sl->addr, addr))
            return sl;
        if (!oldest || !sl->addr[0] || (oldest->addr[0] && sl->window_start < oldest->window_start))
            oldest = sl;
    }
    if (!create)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->addr, sizeof oldest->addr, "%s", addr);
    return oldest;
}

/* True when @p ev came over TLS with a client certificate that verified. */
static int client_cert_ok(kb_http_t *h, struct evhttp_request *ev)
{
    if (!h->ssl_ctx || !h->tls_client_ca)
        return 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(ev);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl && SSL_get0_peer_certificate(ssl) && SSL_get_verify_result(ssl) == X509_V_OK;
}

static int token_ok(kb_http_t *h, struct evhttp_request *ev)
{
    if (!h->have_token)
        return 0;
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(ev), "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0)
        return 0;
    const char *tok = a + 7;
    while (*tok == ' ')
        tok++;
    /* Hash first, then compare fixed-size digests in constant time: neither
     * the content nor the length of the token leaks through timing. */
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(tok, strlen(tok), md, &mdlen, EVP_sha256(), NULL) || mdlen != sizeof md)
        return 0;
    return CRYPTO_memcmp(md, h->token_hash, sizeof md) == 0;
}

/* The request path for a log line: the path is percent-decoded and the
 * client's choice, so a byte outside printable ASCII, a space, a quote or a
 * backslash is written %XX again, or one request could forge log lines or
 * fields. Cut to @p size. */
static void loggable_path(const char *path, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p && o + 4 < size; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

/* The host part of a Host header value or an origin's authority: "[::1]:80"
 * gives "::1", "localhost:9464" gives "localhost". Cut to @p size. */
static void authority_host(const char *auth, char *out, size_t size)
{
    size_t n;
    if (*auth == '[') {
        auth++;
        n = strcspn(auth, "]");
    } else {
        n = strcspn(auth, ":");
    }
    if (n >= size)
        n = size - 1;
    memcpy(out, auth, n);
    out[n] = '\0';
}

/* Refuse what a web browser sends on behalf of a page that is not ours;
 * answers 403 when so. Two attacks, both needing no credential:
 *  - cross-site request forgery: a page elsewhere POSTs a "simple" request
 *    (text/plain, no preflight) to the admin API, which on loopback may run
 *    without authentication, and a client certificate the browser presents
 *    itself. Every browser names the page's origin in Origin on such a
 *    request, so an Origin that is not this server's own is refused;
 *  - DNS rebinding: a name the attacker controls resolves to 127.0.0.1, the
 *    page is then same-origin with it and may also read the answers. An
 *    open server (no token, no client CA) bound to a loopback address is
 *    reached by a loopback name or literal only, so there the Host header
 *    must name one (a local reverse proxy must pass Host: 127.0.0.1, or the
 *    server needs credentials). With credentials a rebound page has none to
 *    send. An open server bound to another address is not covered: it is
 *    open to its network anyway (README). */
static int browser_guard(kb_http_t *h, struct kb_http_req *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req->ev);
    const char *host = evhttp_find_header(in, "Host");
    const char *origin = evhttp_find_header(in, "Origin");
    char path[256];
    loggable_path(req->path, path, sizeof path);
    if (origin) {
        /* Host and port, not the scheme: behind a proxy that ends TLS the
         * page is https and this server plain http, the same site. */
        const char *auth = strstr(origin, "://");
        if (!host || !auth || strcasecmp(auth + 3, host) != 0) {
            KB_LOG_WARN(COMP, "request refused: cross-origin", "path=%s", path);
            kb_http_reply_error(req, 403, 40301,
                                "cross-origin request refused (Origin is not this server)");
            return 0;
        }
    }
    /* "127.1" is bound by libevent and taken for loopback by the admin API's
     * own check, though it is no address literal kb_kafka_host_is_loopback
     * knows. */
    if (!h->auth_required && (kb_kafka_host_is_loopback(h->addr) || !strncmp(h->addr, "127.", 4))) {
        char name[256];
        authority_host(host ? host : "", name, sizeof name);
        if (!kb_kafka_host_is_loopback(name)) {
            KB_LOG_WARN(COMP, "request refused: Host is no loopback name", "path=%s", path);
            kb_http_reply_error(req, 403, 40302,
                                "this server answers to a loopback Host only (localhost, "
                                "127.0.0.1, [::1])");
            return 0;
        }
    }
    return 1;
}

/* Decide whether @p req may proceed; answers it (401/429) when not. */
static int authorize(kb_http_t *h, struct kb_http_req *req)
{
    req->auth = "none";
    if (!h->auth_required)
        return 1;
    for (size_t i = 0; i < h->n_public; i++)
        if (path_under(h->public_prefixes[i], req->path))
            return 1;
    char *peer = NULL;
    ev_uint16_t peer_port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req->ev);
    if (conn)
        evhttp_connection_get_peer(conn, &peer, &peer_port);
    const char *addr = peer ? peer : "?";
    time_t now = time(NULL);
    struct auth_slot *sl = auth_slot(h, addr, 0);
    if (sl && now - sl->window_start >= h->auth_fail_window_s) {
        sl->failures = 0;
        sl->window_start = now;
    }
    /* A verified client certificate cannot be guessed: it passes even from an
     * address locked out by others' failures (behind a proxy or NAT every
     * client shares one). A token is checked only after the lock-out, or the
     * lock-out would not slow a guesser down. */
    if (client_cert_ok(h, req->ev)) {
        req->auth = "client-cert";
        return 1;
    }
    char path[256];
    loggable_path(req->path, path, sizeof path);
    if (sl && sl->failures >= h->auth_fail_max) {
        char retry[32];
        snprintf(retry, sizeof retry, "%ld", (long)(sl->window_start + h->auth_fail_window_s - now));
        kb_http_reply_header(req, "Retry-After", retry);
        kb_http_reply_error(req, 429, 42901, "too many failed authentications; retry later");
        KB_LOG_WARN(COMP, "request refused: too many failed authentications", "client=%s path=%s",
                    addr, path);
        return 0;
    }
    if (token_ok(h, req->ev)) {
        req->auth = "token";
        return 1;
    }
    sl = auth_slot(h, addr, 1);
    if (!sl->window_start)
        sl->window_start = now;
    sl->failures++;
    KB_LOG_WARN(COMP, "authentication failed", "client=%s path=%s failures=%d", addr, path,
                sl->failures);
    kb_http_reply_header(req, "WWW-Authenticate", "Bearer realm=\"ketenbus\"");
    kb_http_reply_error(req, 401, 40101, "authentication required");
    return 0;
}

const char *kb_http_req_auth(const kb_http_req_t *req)
{
    return req->auth ? req->auth : "none";
}

/* Add @p method (and HEAD with GET) to the comma-separated list @p allow,
 * once each. */
static void allow_add(char *allow, size_t size, const char *method)
{
    const char *add[2] = {method, !strcmp(method, "GET") ? "HEAD" : NULL};
    for (int i = 0; i < 2 && add[i]; i++) {
        size_t n = strlen(add[i]), len = strlen(allow);
        int seen = 0;
        for (const char *p = allow; (p = strstr(p, add[i])) != NULL; p += n)
            if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
                seen = 1;
        if (!seen && len + n + 3 < size)
            snprintf(allow + len, size - len, "%s%s", len ? ", " : "", add[i]);
    }
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    kb_http_t *h = arg;
    struct kb_http_req req;
    memset(&req, 0, sizeof req);
    TAILQ_INIT(&req.query);
    req.h = h;
    req.ev = ev;
    req.method = method_name(evhttp_request_get_command(ev));

    /* The request is in: its deadline is met; the next one starts when
     * this answer has gone out. */
    struct conn *c = conn_find(h, evhttp_request_get_connection(ev));
    if (c) {
        evtimer_del(c->deadline);
        evhttp_request_set_on_complete_cb(ev, on_request_done, c);
        if (c->refused) {
            char peer[80];
            KB_LOG_WARN(COMP, "connection refused: too many connections", "client=%s max=%d",
                        conn_peer(c, peer, sizeof peer), h->max_conns);
            kb_http_reply_header(&req, "Retry-After", "1");
            kb_http_reply_header(&req, "Connection", "close");
            kb_http_reply_error(&req, 503, 50303, "too many connections; retry later");
            return;
        }
    }

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *raw_path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!raw_path || !*raw_path)
        raw_path = "/";
    size_t plen = 0;
    req.path = evhttp_uridecode(raw_path, 0, &plen);
    if (!req.path) {
        kb_http_reply_error(&req, 500, 50001, "out of memory");
        goto out;
    }
    if (strlen(req.path) != plen) {
        kb_http_reply_error(&req, 400, 400, "path contains a NUL byte");
        goto out;
    }
    if (!browser_guard(h, &req) || !authorize(h, &req))
        goto out;
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    if (q && evhttp_parse_query_str(q, &req.query) != 0) {
        kb_http_reply_error(&req, 400, 400, "malformed query string");
        goto out;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(ev);
    req.body_len = in ? evbuffer_get_length(in) : 0;
    req.body = malloc(req.body_len + 1);
    if (!req.body) {
        kb_http_reply_error(&req, 500, 50001, "out of memory");
        goto out;
    }
    if (req.body_len)
        evbuffer_copyout(in, req.body, req.body_len);
    req.body[req.body_len] = '\0';

    const struct route *best = NULL;
    int path_known = 0;
    char allow[64] = ""; /* the methods of the path, for a 405's Allow */
    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *r = &h->routes[i];
        if (!route_matches(r, req.path))
            continue;
        /* A route at "/" (the dashboard's redirect) is everybody's fallback;
         * it makes no other path known, or every method on an unknown path
         * would be "not allowed" rather than "not found". */
        if (r->prefix_len > 1 || !strcmp(req.path, "/")) {
            path_known = 1;
            allow_add(allow, sizeof allow, r->method);
        }
        int exact = strcmp(r->method, req.method) == 0 ||
                    (!strcmp(r->method, "GET") && !strcmp(req.method, "HEAD"));
        if (!exact && strcmp(r->method, "*") != 0)
            continue;
        if (!best || r->prefix_len > best->prefix_len ||
            (r->prefix_len == best->prefix_len && strcmp(best->method, "*") == 0 &&
             strcmp(r->method, "*") != 0))
            best = r;
    }
    if (!best) {
        if (path_known) {
            kb_http_reply_header(&req, "Allow", allow);
            kb_http_reply_error(&req, 405, 405, "method not allowed");
        } else
            kb_http_reply_error(&req, 404, 404, "HTTP 404 Not Found");
        goto out;
    }
    req.rest =
        (best->prefix_len == 1 && best->prefix[0] == '/') ? req.path : req.path + best->prefix_len;
    best->fn(&req, best->opaque);
    if (!req.answered) {
        KB_LOG_ERR(COMP, "handler did not answer", "route=%s", best->prefix);
        kb_http_reply_error(&req, 500, 50001, "internal server error");
    }
out:
    evhttp_clear_headers(&req.query);
    free(req.path);
    free(req.body);
}

const char *kb_http_req_method(const kb_http_req_t *req)
{
    return req->method;
}
const char *kb_http_req_path(const kb_http_req_t *req)
{
    return req->path;
}
const char *kb_http_req_rest(const kb_http_req_t *req)
{
    return req->rest ? req->rest : "";
}

const char *kb_http_req_query(const kb_http_req_t *req, const char *name)
{
    return evhttp_find_header(&req->query, name);
}

const char *kb_http_req_header(const kb_http_req_t *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

const char *kb_http_req_body(const kb_http_req_t *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

json_t *kb_http_req_json(const kb_http_req_t *req, char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *j = json_loadb(req->body ? req->body : "", req->body_len, 0, &jerr);
    if (!j)
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "line %d column %d: %s", jerr.line,
                   jerr.column, kb_json_error_what(&jerr));
    return j;
}

kb_err_t kb_http_reply_header(kb_http_req_t *req, const char *name, const char *value)
{
    if (evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value) != 0)
        return KB_ERR_INVALID;
    return KB_OK;
}

kb_err_t kb_http_reply(kb_http_req_t *req, int status, const char *content_type, const void *body,
                       size_t len)
{
    if (req->answered)
        return KB_ERR_STATE;
    kb_err_t err = send_reply(req->ev, status, content_type, body, len);
    if (!err)
        req->answered = 1;
    return err;
}

kb_err_t kb_http_reply_json(kb_http_req_t *req, int status, const char *content_type, json_t *body)
{
    if (!body)
        return KB_ERR_NOMEM;
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (!text)
        return KB_ERR_NOMEM;
    kb_err_t err = kb_http_reply(req, status, content_type ? content_type : "application/json",
                                 text, strlen(text));
    free(text);
    return err;
}

kb_err_t kb_http_reply_error(kb_http_req_t *req, int status, int error_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = error_json(error_code, fmt, ap);
    va_end(ap);
    return kb_http_reply_json(req, status, NULL, j);
}

/* --- the server --- */

kb_http_t *kb_http_new(const struct kb_http_opts *opts, char *errstr, size_t errstr_size)
{
    kb_http_t *h = calloc(1, sizeof *h);
    if (!h)
        goto out_nomem;
    h->wake[0] = h->wake[1] = -1;
    h->addr = strdup(opts && opts->addr ? opts->addr : "127.0.0.1");
    if (!h->addr)
        goto out_free;
    h->port = opts ? opts->port : 0;
    h->max_body = opts && opts->max_body ? opts->max_body : (size_t)1 << 20;
    h->timeout_s = opts && opts->timeout_s > 0 ? opts->timeout_s : 30;
    h->max_headers = opts && opts->max_headers ? opts->max_headers : (size_t)16 << 10;
    h->request_timeout_s = opts && opts->request_timeout_s > 0 ? opts->request_timeout_s : 10;
    h->max_conns = opts && opts->max_connections > 0 ? opts->max_connections : 256;
    h->stream_max_pending =
        opts && opts->stream_max_pending ? opts->stream_max_pending : (size_t)1 << 20;
    h->auth_fail_max = opts && opts->auth_fail_max > 0 ? opts->auth_fail_max : 10;
    h->auth_fail_window_s = opts && opts->auth_fail_window_s > 0 ? opts->auth_fail_window_s : 60;
    if (opts) {
        const char *src[4] = {opts->tls_cert_file, opts->tls_key_file, opts->tls_client_ca_file,
                              opts->token_file};
        char **dst[4] = {&h->tls_cert, &h->tls_key, &h->tls_client_ca, &h->token_file};
        for (int i = 0; i < 4; i++)
            if (src[i] && !(*dst[i] = strdup(src[i])))
                goto out_free_sec;
        for (const char *p = opts->public_prefixes; p && *p;) {
            size_t n = strcspn(p, ",");
            if (n) {
                char **np = realloc(h->public_prefixes, (h->n_public + 1) * sizeof *np);
                if (!np)
                    goto out_free_sec;
                h->public_prefixes = np;
                if (!(np[h->n_public] = strndup(p, n)))
                    goto out_free_sec;
                h->n_public++;
            }
            p += n;
            if (*p == ',')
                p++;
        }
    }
    if ((h->tls_cert != NULL) != (h->tls_key != NULL) || (h->tls_client_ca && !h->tls_cert)) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                   "HTTPS needs both tls_cert_file and tls_key_file (and a client CA needs them)");
        kb_http_destroy(h);
        return NULL;
    }
    h->auth_required = h->token_file || h->tls_client_ca;
    return h;
out_free_sec:
    kb_http_destroy(h);
    goto out_nomem;
out_free:
    free(h);
out_nomem:
    kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    return NULL;
}

kb_err_t kb_http_route(kb_http_t *h, const char *method, const char *prefix, kb_http_handler_fn fn,
                       void *opaque)
{
    if (h->running || !method || !prefix || prefix[0] != '/' || !fn)
        return KB_ERR_STATE;
    struct route *nr = realloc(h->routes, (h->nroutes + 1) * sizeof *nr);
    if (!nr)
        return KB_ERR_NOMEM;
    h->routes = nr;
    struct route *r = &nr[h->nroutes];
    r->method = strdup(method);
    r->prefix = strdup(prefix);
    if (!r->method || !r->prefix) {
        free(r->method);
        free(r->prefix);
        return KB_ERR_NOMEM;
    }
    r->prefix_len = strlen(r->prefix);
    while (r->prefix_len > 1 && r->prefix[r->prefix_len - 1] == '/')
        r->prefix[--r->prefix_len] = '\0';
    r->fn = fn;
    r->opaque = opaque;
    h->nroutes++;
    return KB_OK;
}

/* A new connection: its bufferevent (wrapped in TLS on an HTTPS server)
 * and its struct conn, counted against the cap. evhttp sets the
 * connection up after this returns; on_attach runs right after that. */
static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    kb_http_t *h = arg;
    struct bufferevent *bev;
    if (h->ssl_ctx) {
        SSL *ssl = SSL_new(h->ssl_ctx);
        if (!ssl)
            return NULL;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev)
        return NULL;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return bev; /* served, untracked: only under memory exhaustion */
    c->h = h;
    c->bev = bev;
    c->attach = event_new(base, -1, 0, on_attach, c);
    c->deadline = evtimer_new(base, on_deadline, c);
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->n_conns++;
    if (!c->attach || !c->deadline) {
        conn_free(c);
        return bev;
    }
    /* Decided now, in accept order (on_attach runs after a whole batch). */
    int hard = h->max_conns + (h->max_conns / 4 > 16 ? h->max_conns / 4 : 16);
    c->refused = h->n_conns > hard ? 2 : h->n_conns > h->max_conns ? 1 : 0;
    /* Active now, so it runs in this loop pass, before any I/O callback of
     * the new connection can. */
    event_active(c->attach, EV_TIMEOUT, 0);
    return bev;
}

/* Read the bearer token file and keep only its SHA-256. */
static kb_err_t load_token(kb_http_t *h, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(h->token_file, "r");
    if (!f)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "token file %s: %s", h->token_file,
                          strerror(errno));
    char tok[1024];
    size_t n = fread(tok, 1, sizeof tok - 1, f);
    fclose(f);
    tok[n] = '\0';
    while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        tok[--n] = '\0';
    kb_err_t err = KB_OK;
    unsigned int mdlen = 0;
    if (n < 16 || strlen(tok) != n || strchr(tok, '\n'))
        err = kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                         "token file %s: need one line of at least 16 characters", h->token_file);
    else if (!EVP_Digest(tok, n, h->token_hash, &mdlen, EVP_sha256(), NULL))
        err = kb_err_set(KB_ERR_CONF, errstr, errstr_size, "token digest failed");
    else
        h->have_token = 1;
    OPENSSL_cleanse(tok, sizeof tok);
    return err;
}

static kb_err_t tls_fail(char *errstr, size_t errstr_size, const char *what, const char *path)
{
    char ebuf[256];
    ERR_error_string_n(ERR_get_error(), ebuf, sizeof ebuf);
    ERR_clear_error();
    return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s %s: %s", what, path, ebuf);
}

static kb_err_t security_init(kb_http_t *h, char *errstr, size_t errstr_size)
{
    if (h->token_file && load_token(h, errstr, errstr_size))
        return KB_ERR_CONF;
    if (!h->tls_cert)
        return KB_OK;
    h->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!h->ssl_ctx)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    SSL_CTX_set_min_proto_version(h->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(h->ssl_ctx, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(h->ssl_ctx, h->tls_cert) != 1)
        return tls_fail(errstr, errstr_size, "certificate", h->tls_cert);
    if (SSL_CTX_use_PrivateKey_file(h->ssl_ctx, h->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(h->ssl_ctx) != 1)
        return tls_fail(errstr, errstr_size, "private key", h->tls_key);
    if (h->tls_client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(h->tls_client_ca);
        if (!names || SSL_CTX_load_verify_locations(h->ssl_ctx, h->tls_client_ca, NULL) != 1) {
            if (names)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            return tls_fail(errstr, errstr_size, "client CA", h->tls_client_ca);
        }
        SSL_CTX_set_client_CA_list(h->ssl_ctx, names);
        /* Asked, not required: public routes and token holders need none;
         * a certificate that is offered must verify or the handshake fails. */
        SSL_CTX_set_verify(h->ssl_ctx, SSL_VERIFY_PEER, NULL);
    }
    return KB_OK;
}

static void *server_main(void *arg)
{
    kb_http_t *h = arg;
    event_base_dispatch(h->base);
    return NULL;
}

static void server_teardown(kb_http_t *h)
{
    /* The thread is not running: this thread owns everything now. */
    while (h->streams)
        stream_release(h, h->streams);
    /* Replies not sent yet are dropped; the requests go with their
     * connections just below. */
    while (h->deferred)
        deferred_release(h, h->deferred);
    if (h->http)
        evhttp_free(h->http); /* closes every connection: on_conn_close */
    while (h->conns)          /* accepted but never attached */
        conn_free(h->conns);
    if (h->wake_ev)
        event_free(h->wake_ev);
    if (h->base)
        event_base_free(h->base);
    if (h->ssl_ctx)
        SSL_CTX_free(h->ssl_ctx);
    h->ssl_ctx = NULL;
    h->http = NULL;
    h->wake_ev = NULL;
    h->base = NULL;
    for (int i = 0; i < 2; i++)
        if (h->wake[i] >= 0) {
            close(h->wake[i]);
            h->wake[i] = -1;
        }
}

kb_err_t kb_http_start(kb_http_t *h, char *errstr, size_t errstr_size)
{
    kb_err_t err = KB_OK;
    if (h->running || h->base)
        return kb_err_set(KB_ERR_STATE, errstr, errstr_size, "server already started");
    if (pipe(h->wake) != 0) {
        err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "pipe: %s", strerror(errno));
        goto out_teardown;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(h->wake[i], F_SETFL, fcntl(h->wake[i], F_GETFL) | O_NONBLOCK);
        fcntl(h->wake[i], F_SETFD, FD_CLOEXEC);
    }
    h->base = event_base_new();
    if (!h->base)
        goto out_nomem;
    h->http = evhttp_new(h->base);
    h->wake_ev = event_new(h->base, h->wake[0], EV_READ | EV_PERSIST, on_wake, h);
    if (!h->http || !h->wake_ev || event_add(h->wake_ev, NULL) != 0)
        goto out_nomem;
    if ((err = security_init(h, errstr, errstr_size)))
        goto out_teardown;
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)h->max_headers);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)h->max_body);
    evhttp_set_timeout(h->http, h->timeout_s);
    evhttp_set_bevcb(h->http, on_new_bev, h);
    kb_metrics_declare(KB_METRIC_COUNTER, "kb_http_refused_total",
                       "HTTP connections refused (max-connections) or cut off because a request "
                       "did not arrive in time (request-timeout)",
                       "reason", NULL, 0);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(h->http, on_request, h);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(h->http, h->addr, h->port);
    if (!sock) {
        err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "cannot listen on %s:%u", h->addr,
                         (unsigned)h->port);
        goto out_teardown;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (pthread_create(&h->thread, NULL, server_main, h) != 0) {
        err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "cannot start the server thread");
        goto out_teardown;
    }
    h->running = 1;
    KB_LOG_INFO(COMP, "listening", "addr=%s port=%u", h->addr, (unsigned)h->port);
    return KB_OK;
out_nomem:
    err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
out_teardown:
    server_teardown(h);
    return err;
}

uint16_t kb_http_port(const kb_http_t *h)
{
    return h->base ? h->port : 0;
}

void kb_http_stop(kb_http_t *h)
{
    if (!h || !h->running)
        return;
    wake(h, 'q');
    pthread_join(h->thread, NULL);
    h->running = 0;
    server_teardown(h);
}

void kb_http_destroy(kb_http_t *h)
{
    if (!h)
        return;
    kb_http_stop(h);
    for (size_t i = 0; i < h->nroutes; i++) {
        free(h->routes[i].method);
        free(h->routes[i].prefix);
    }
    free(h->routes);
    for (size_t i = 0; i < h->n_public; i++)
        free(h->public_prefixes[i]);
    free(h->public_prefixes);
    free(h->tls_cert);
    free(h->tls_key);
    free(h->tls_client_ca);
    free(h->token_file);
    OPENSSL_cleanse(h->token_hash, sizeof h->token_hash);
    free(h->addr);
    free(h);
}

/* --- the client --- */

#define FETCH_MAX_BODY ((size_t)16 << 20)

struct fetch {
    struct event_base *base;          /* the private base of this fetch */
    struct kb_http_response *r;       /* where the answer goes */
    int done;                         /* response handled (or failed) */
    kb_err_t err;                     /* outcome */
    enum evhttp_request_error ev_err; /* libevent's reason on failure */
    int have_ev_err;                  /* ev_err is set */
};

static void on_fetch_error(enum evhttp_request_error e, void *arg)
{
    struct fetch *f = arg;
    f->ev_err = e;
    f->have_ev_err = 1;
}

static void on_fetch_done(struct evhttp_request *ev, void *arg)
{
    struct fetch *f = arg;
    f->done = 1;
    event_base_loopbreak(f->base);
    if (!ev || evhttp_request_get_response_code(ev) == 0) {
        f->err = KB_ERR_IO;
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(ev);
    size_t len = evbuffer_get_length(in);
    if (len > FETCH_MAX_BODY) {
        f->err = KB_ERR_RANGE;
        return;
    }
    f->r->body = malloc(len + 1);
    if (!f->r->body) {
        f->err = KB_ERR_NOMEM;
        return;
    }
    evbuffer_remove(in, f->r->body, len);
    f->r->body[len] = '\0';
    f->r->len = len;
    f->r->status = evhttp_request_get_response_code(ev);
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(ev), "Content-Type");
    if (ct)
        f->r->content_type = strdup(ct);
    f->err = KB_OK;
}

static void on_fetch_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct fetch *f = arg;
    f->err = KB_ERR_TIMEOUT;
    event_base_loopbreak(f->base);
}

void kb_http_response_fini(struct kb_http_response *r)
{
    free(r->body);
    free(r->content_type);
    memset(r, 0, sizeof *r);
}

static int method_type(const char *m, enum evhttp_cmd_type *t)
{
    static const struct {
        const char *name;
        enum evhttp_cmd_type type;
    } tab[] = {{"GET", EVHTTP_REQ_GET},    {"POST", EVHTTP_REQ_POST},
               {"PUT", EVHTTP_REQ_PUT},    {"DELETE", EVHTTP_REQ_DELETE},
               {"HEAD", EVHTTP_REQ_HEAD},  {"OPTIONS", EVHTTP_REQ_OPTIONS},
               {"PATCH", EVHTTP_REQ_PATCH}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(m, tab[i].name)) {
            *t = tab[i].type;
            return 0;
        }
    return -1;
}

kb_err_t kb_http_fetch(const char *method, const char *url, const char *content_type,
                       const void *body, size_t body_len, int timeout_ms,
                       struct kb_http_response *r, char *errstr, size_t errstr_size)
{
    kb_err_t err = KB_OK;
    memset(r, 0, sizeof *r);
    enum evhttp_cmd_type type;
    if (method_type(method, &type) != 0)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "unknown method %s", method);
    struct evhttp_uri *uri = evhttp_uri_parse(url);
    if (!uri)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "malformed URL");
    const char *scheme = evhttp_uri_get_scheme(uri);
    const char *host = evhttp_uri_get_host(uri);
    if (!scheme || strcmp(scheme, "http") != 0 || !host) {
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "only http://host[:port]/ URLs");
        goto out_free_uri;
    }
    int port = evhttp_uri_get_port(uri);
    if (port < 0)
        port = 80;
    const char *path = evhttp_uri_get_path(uri);
    const char *query = evhttp_uri_get_query(uri);
    char target[4096];
    int tn = snprintf(target, sizeof target, "%s%s%s", path && *path ? path : "/", query ? "?" : "",
                      query ? query : "");
    if (tn < 0 || (size_t)tn >= sizeof target) {
        err = kb_err_set(KB_ERR_RANGE, errstr, errstr_size, "URL too long");
        goto out_free_uri;
    }

    struct fetch f = {.r = r, .err = KB_ERR_IO};
    f.base = event_base_new();
    if (!f.base) {
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_free_uri;
    }
    struct evhttp_connection *conn =
        evhttp_connection_base_new(f.base, NULL, host, (unsigned short)port);
    struct event *timer = evtimer_new(f.base, on_fetch_timeout, &f);
    struct evhttp_request *ev = evhttp_request_new(on_fetch_done, &f);
    if (!conn || !timer || !ev) {
        if (ev)
            evhttp_request_free(ev);
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out_free_conn;
    }
    evhttp_connection_set_max_body_size(conn, (ev_ssize_t)FETCH_MAX_BODY);
    evhttp_connection_set_timeout(conn, (timeout_ms + 999) / 1000);
    evhttp_request_set_error_cb(ev, on_fetch_error);
    struct evkeyvalq *hdrs = evhttp_request_get_output_headers(ev);
    char hostport[300];
    snprintf(hostport, sizeof hostport, "%s:%d", host, port);
    evhttp_add_header(hdrs, "Host", hostport);
    evhttp_add_header(hdrs, "Connection", "close");
    evhttp_add_header(hdrs, "Accept", "application/json, */*");
    if (body) {
        if (content_type)
            evhttp_add_header(hdrs, "Content-Type", content_type);
        evbuffer_add(evhttp_request_get_output_buffer(ev), body, body_len);
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    evtimer_add(timer, &tv);
    if (evhttp_make_request(conn, ev, type, target) != 0) {
        /* libevent freed the request */
        err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "cannot send request");
        goto out_free_conn;
    }
    event_base_dispatch(f.base);
    err = f.err;
    if (err == KB_ERR_TIMEOUT)
        kb_err_set(err, errstr, errstr_size, "no answer from %s within %d ms", hostport,
                   timeout_ms);
    else if (err == KB_ERR_RANGE)
        kb_err_set(err, errstr, errstr_size, "response over %zu bytes", FETCH_MAX_BODY);
    else if (err == KB_ERR_NOMEM)
        kb_err_set(err, errstr, errstr_size, "out of memory");
    else if (err != KB_OK)
        kb_err_set(err, errstr, errstr_size, "request to %s failed%s", hostport,
                   f.have_ev_err && f.ev_err == EVREQ_HTTP_TIMEOUT ? " (timeout)" : "");
    if (err != KB_OK)
        kb_http_response_fini(r);
out_free_conn:
    if (conn)
        evhttp_connection_free(conn); /* frees a still pending request too */
    if (timer)
        event_free(timer);
    event_base_free(f.base);
out_free_uri:
    evhttp_uri_free(uri);
    return err;
}
