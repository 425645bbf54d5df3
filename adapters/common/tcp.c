/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * tcp.c - length-prefixed frames over TCP with a per-frame ack/nack given
 * only after the handler made the message durable (see tcp.h for the wire
 * format, invariants and connection states). One poll() loop serves all
 * connections on the caller's thread; frames are handled one at a time.
 */
#define _GNU_SOURCE /* accept4, SOCK_NONBLOCK */
#include "tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adapter_metrics.h"
#include "ketenbus/clock.h"
#include "ketenbus/log.h"

#define COMP "tcp"
#define WRITE_TIMEOUT_MS 10000 /* a peer that does not read its answer is dropped */
#define REASON_MAX       512   /* bytes of a rejection's reason in an answer */
#define FIRST_CHUNK      (64u << 10) /* first payload buffer; doubles as bytes arrive */

struct conn {
    int fd;              /* -1 when the slot is free */
    char peer[64];       /* "ip:port" for logs */
    uint8_t hdr[4];      /* length prefix being read */
    size_t hdr_got;      /* bytes of hdr read so far */
    uint8_t *buf;        /* frame payload received so far (grows as it arrives) */
    size_t cap;          /* allocated size of buf, counted in srv->buffered */
    size_t need;         /* frame length from the prefix; 0 while reading the prefix */
    size_t got;          /* payload bytes read so far */
    int64_t last_ms;     /* last activity, for the idle timeout */
    int64_t frame_ms;    /* when the current frame's first byte came (0: between frames) */
    /* The answer not yet taken by the peer's socket. While it waits, nothing
     * more is read from the peer: a sender that does not read its answers
     * stops itself, never the listener's one thread (which a blocking write
     * would, for every other sender). */
    uint8_t out[4 + 1 + REASON_MAX];
    size_t out_len, out_at;
    int64_t out_ms; /* when the answer was made (svc_ms) */
};

struct kb_tcp_server {
    struct kb_tcp_server_opts opts; /* copy; bind_host points at host[] */
    char host[64];                  /* copy of the bind address */
    int lfd;                        /* listening socket */
    int port;                       /* bound port */
    struct conn *conns;             /* opts.max_clients slots */
    size_t buffered;                /* sum of conns[].cap: the memory budget in use */
    struct kb_tcp_stats stats;      /* counters (tcp.h) */
    int64_t busy_ms;                /* time spent serving frames and on_idle (svc_ms) */
    int64_t accept_again_ms;        /* accept failed for want of descriptors: not before */
};

struct kb_tcp_client {
    int fd; /* connected socket, blocking, used with poll() timeouts */
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Write all of @p len bytes to a (possibly non-blocking) socket within
 * @p timeout_ms. 0 on success. */
static int write_all(int fd, const void *data, size_t len, int timeout_ms)
{
    const uint8_t *p = data;
    int64_t deadline = kb_mono_ms() + timeout_ms;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int left = (int)(deadline - kb_mono_ms());
            if (left <= 0)
                return -1;
            struct pollfd pfd = {fd, POLLOUT, 0};
            if (poll(&pfd, 1, left) < 0 && errno != EINTR)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

/* Read exactly @p len bytes within the deadline. 0 ok, -1 I/O/EOF, -2 timeout. */
static int read_all(int fd, void *data, size_t len, int64_t deadline)
{
    uint8_t *p = data;
    while (len > 0) {
        int left = (int)(deadline - kb_mono_ms());
        if (left <= 0)
            return -2;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return -2;
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Drop @p c's payload buffer and give its bytes back to the budget. */
static void conn_buf_free(kb_tcp_server_t *srv, struct conn *c)
{
    srv->buffered -= c->cap;
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
}

/* Make room for at least one more payload byte of @p c, within the budget.
 * 0 ok, -1 over the budget, -2 out of memory. */
static int conn_buf_grow(kb_tcp_server_t *srv, struct conn *c)
{
    size_t cap = c->cap ? c->cap * 2 : FIRST_CHUNK;
    if (cap > c->need)
        cap = c->need;
    if (srv->buffered - c->cap + cap > srv->opts.max_buffered)
        return -1;
    uint8_t *nb = realloc(c->buf, cap);
    if (!nb)
        return -2;
    srv->buffered = srv->buffered - c->cap + cap;
    c->buf = nb;
    c->cap = cap;
    return 0;
}

static void conn_close(kb_tcp_server_t *srv, struct conn *c, const char *why)
{
    if (c->fd < 0)
        return;
    KB_LOG_INFO(COMP, "connection closed", "peer=%s reason=%s", c->peer, why);
    if (strcmp(why, "eof") != 0 && strcmp(why, "server-stopped") != 0)
        kb_adapter_count_refused("tcp", why);
    close(c->fd);
    conn_buf_free(srv, c);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

kb_tcp_server_t *kb_tcp_server_new(const struct kb_tcp_server_opts *opts, char *errstr,
                                   size_t errstr_size)
{
    if (!opts || !opts->on_frame) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "tcp: on_frame is required");
        return NULL;
    }
    kb_tcp_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "tcp: out of memory");
        return NULL;
    }
    srv->opts = *opts;
    snprintf(srv->host, sizeof srv->host, "%s", opts->bind_host ? opts->bind_host : "127.0.0.1");
    srv->opts.bind_host = srv->host;
    if (!srv->opts.max_frame)
        srv->opts.max_frame = KB_TCP_DEFAULT_MAX_FRAME;
    if (srv->opts.max_clients <= 0)
        srv->opts.max_clients = 64;
    if (srv->opts.idle_timeout_ms <= 0)
        srv->opts.idle_timeout_ms = 300000;
    if (srv->opts.frame_timeout_ms <= 0)
        srv->opts.frame_timeout_ms = 30000;
    if (!srv->opts.max_buffered)
        srv->opts.max_buffered = (size_t)64 << 20;
    if (srv->opts.max_buffered < srv->opts.max_frame)
        srv->opts.max_buffered = srv->opts.max_frame; /* one full frame always fits */
    srv->conns = calloc((size_t)srv->opts.max_clients, sizeof *srv->conns);
    if (!srv->conns) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "tcp: out of memory");
        goto out_free_srv;
    }
    for (int i = 0; i < srv->opts.max_clients; i++)
        srv->conns[i].fd = -1;

    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", srv->opts.port);
    int gai = getaddrinfo(srv->host, portstr, &hints, &ai);
    if (gai) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "tcp: bad bind address %s: %s", srv->host,
                   gai_strerror(gai));
        goto out_free_conns;
    }
    srv->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (srv->lfd < 0) {
        kb_err_set(KB_ERR_IO, errstr, errstr_size, "tcp: socket: %s", strerror(errno));
        goto out_free_ai;
    }
    int one = 1;
    setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(srv->lfd, ai->ai_addr, ai->ai_addrlen) || listen(srv->lfd, 64)) {
        kb_err_set(KB_ERR_IO, errstr, errstr_size, "tcp: cannot listen on %s:%d: %s", srv->host,
                   srv->opts.port, strerror(errno));
        goto out_close;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(srv->lfd, (struct sockaddr *)&ss, &sl);
    srv->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    freeaddrinfo(ai);
    return srv;

out_close:
    close(srv->lfd);
out_free_ai:
    freeaddrinfo(ai);
out_free_conns:
    free(srv->conns);
out_free_srv:
    free(srv);
    return NULL;
}

int kb_tcp_server_port(const kb_tcp_server_t *srv)
{
    return srv->port;
}

const struct kb_tcp_stats *kb_tcp_server_stats(const kb_tcp_server_t *srv)
{
    return &srv->stats;
}

/*
 * The clock of the clients' deadlines: wall time less the time the one
 * thread spent in a frame's handler and answer or in on_idle. Meanwhile no
 * client could be read, though its bytes may have arrived: a handler
 * waiting 30 s for Kafka, or a long spool scan, must not time out the
 * honest peers it kept waiting.
 */
static int64_t svc_ms(const kb_tcp_server_t *srv)
{
    return kb_mono_ms() - srv->busy_ms;
}

static void accept_one(kb_tcp_server_t *srv)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(srv->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* The connection stays queued and the listener readable: poll
             * would return at once, forever. Stop listening for a moment. */
            KB_LOG_WARN(COMP, "cannot accept a connection; pausing accepts", "errno=%d", errno);
            kb_adapter_count_refused("tcp", "no-descriptors");
            srv->accept_again_ms = kb_mono_ms() + 250;
        }
        return;
    }
    struct conn *slot = NULL;
    for (int i = 0; i < srv->opts.max_clients && !slot; i++)
        if (srv->conns[i].fd < 0)
            slot = &srv->conns[i];
    if (!slot) {
        KB_LOG_WARN(COMP, "connection refused: too many clients", "max=%d",
                    srv->opts.max_clients);
        atomic_fetch_add_explicit(&srv->stats.refused, 1, memory_order_relaxed);
        kb_adapter_count_refused("tcp", "too-many-clients");
        close(fd);
        return;
    }
    memset(slot, 0, sizeof *slot);
    slot->fd = fd;
    slot->last_ms = svc_ms(srv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(slot->peer, sizeof slot->peer, "%s:%d", ip, port);
    atomic_fetch_add_explicit(&srv->stats.connections, 1, memory_order_relaxed);
    KB_LOG_INFO(COMP, "connection accepted", "peer=%s", slot->peer);
}

/* Send what the peer's socket takes of @p c's answer; close on failure.
 * What is left waits in c->out (out_len stays set) for room. */
static void flush_answer(kb_tcp_server_t *srv, struct conn *c)
{
    while (c->out_at < c->out_len) {
        ssize_t w =
            send(c->fd, c->out + c->out_at, c->out_len - c->out_at, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->out_at += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        conn_close(srv, c, "answer-write-failed");
        return;
    }
    c->out_len = c->out_at = 0;
}

/* Hand a complete frame to the handler and send its answer. */
static void serve_frame(kb_tcp_server_t *srv, struct conn *c)
{
    char reason[REASON_MAX] = "";
    int64_t t0 = kb_mono_ms();
    atomic_fetch_add_explicit(&srv->stats.frames, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&srv->stats.bytes, c->need, memory_order_relaxed);
    kb_adapter_count_message("tcp", "received");
    enum kb_tcp_verdict v =
        srv->opts.on_frame(srv->opts.opaque, c->buf, c->need, c->peer, reason, sizeof reason);
    if (v != KB_TCP_ACK && v != KB_TCP_REJECT)
        v = KB_TCP_NACK;
    kb_adapter_count_message("tcp", v == KB_TCP_ACK      ? "accepted"
                                    : v == KB_TCP_REJECT ? "quarantined"
                                                         : "retry");
    atomic_ullong *ctr = v == KB_TCP_ACK      ? &srv->stats.acks
                         : v == KB_TCP_REJECT ? &srv->stats.rejects
                                              : &srv->stats.nacks;
    atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed);
    size_t rlen = v == KB_TCP_ACK ? 0 : strnlen(reason, sizeof reason - 1);
    put_be32(c->out, (uint32_t)(1 + rlen));
    c->out[4] = (uint8_t)v;
    memcpy(c->out + 5, reason, rlen);
    c->out_len = 5 + rlen;
    c->out_at = 0;
    conn_buf_free(srv, c);
    c->need = c->got = c->hdr_got = 0;
    c->frame_ms = 0;
    srv->busy_ms += kb_mono_ms() - t0;
    c->out_ms = svc_ms(srv);
    flush_answer(srv, c);
}

/* Read what is available on @p c; serve a frame once complete. */
static void read_conn(kb_tcp_server_t *srv, struct conn *c)
{
    for (;;) {
        ssize_t n;
        if (c->hdr_got < 4) {
            n = recv(c->fd, c->hdr + c->hdr_got, 4 - c->hdr_got, 0);
        } else {
            if (c->got == c->cap) {
                int g = conn_buf_grow(srv, c);
                if (g) {
                    if (g == -1) {
                        KB_LOG_WARN(COMP, "frame buffers over the memory budget; closing",
                                    "peer=%s length=%zu budget=%zu", c->peer, c->need,
                                    srv->opts.max_buffered);
                        atomic_fetch_add_explicit(&srv->stats.over_budget, 1, memory_order_relaxed);
                    }
                    atomic_fetch_add_explicit(&srv->stats.bad_frames, 1, memory_order_relaxed);
                    conn_close(srv, c, g == -1 ? "memory-budget" : "out-of-memory");
                    return;
                }
            }
            n = recv(c->fd, c->buf + c->got, c->cap - c->got, 0);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            int partial = c->hdr_got > 0;
            if (partial)
                atomic_fetch_add_explicit(&srv->stats.bad_frames, 1, memory_order_relaxed);
            conn_close(srv, c, n == 0 ? (partial ? "eof-mid-frame" : "eof") : "read-error");
            return;
        }
        c->last_ms = svc_ms(srv);
        if (!c->frame_ms)
            c->frame_ms = c->last_ms;
        if (c->hdr_got < 4) {
            c->hdr_got += (size_t)n;
            if (c->hdr_got < 4)
                continue;
            uint32_t len = get_be32(c->hdr);
            if (len == 0 || len > srv->opts.max_frame) {
                KB_LOG_WARN(COMP, "bad frame length; closing", "peer=%s length=%u max=%zu",
                            c->peer, len, srv->opts.max_frame);
                atomic_fetch_add_explicit(&srv->stats.bad_frames, 1, memory_order_relaxed);
                conn_close(srv, c, "bad-frame-length");
                return;
            }
            c->need = len;
            c->got = 0;
            continue; /* the buffer grows as the payload arrives */
        }
        c->got += (size_t)n;
        if (c->got == c->need) {
            serve_frame(srv, c);
            if (c->fd < 0)
                return;
            /* Serve one frame per wake-up per connection so that one busy
             * sender cannot starve the others. */
            return;
        }
    }
}

kb_err_t kb_tcp_server_run(kb_tcp_server_t *srv, atomic_int *stop, char *errstr,
                           size_t errstr_size)
{
    int nmax = srv->opts.max_clients + 1;
    struct pollfd *pfds = calloc((size_t)nmax, sizeof *pfds);
    int *idx = calloc((size_t)nmax, sizeof *idx);
    if (!pfds || !idx) {
        free(pfds);
        free(idx);
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "tcp: out of memory");
    }
    kb_err_t err = KB_OK;
    while (!atomic_load(stop)) {
        int n = 0;
        short accepting = kb_mono_ms() >= srv->accept_again_ms ? POLLIN : 0;
        pfds[n++] = (struct pollfd){srv->lfd, accepting, 0};
        for (int i = 0; i < srv->opts.max_clients; i++)
            if (srv->conns[i].fd >= 0) {
                idx[n] = i;
                short ev = srv->conns[i].out_len ? POLLOUT : POLLIN;
                pfds[n++] = (struct pollfd){srv->conns[i].fd, ev, 0};
            }
        int r = poll(pfds, (nfds_t)n, 200);
        if (r < 0 && errno != EINTR) {
            err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "tcp: poll: %s", strerror(errno));
            break;
        }
        if (r > 0) {
            if (pfds[0].revents & (POLLERR | POLLNVAL)) {
                err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "tcp: listener failed");
                break;
            }
            if (pfds[0].revents & POLLIN)
                accept_one(srv);
            for (int k = 1; k < n; k++) {
                struct conn *c = &srv->conns[idx[k]];
                if (!pfds[k].revents)
                    continue;
                if (c->out_len)
                    flush_answer(srv, c); /* read again once it is gone */
                else
                    read_conn(srv, c);
            }
        }
        if (srv->opts.on_idle) {
            int64_t t0 = kb_mono_ms();
            srv->opts.on_idle(srv->opts.opaque);
            srv->busy_ms += kb_mono_ms() - t0;
        }
        int64_t t = svc_ms(srv);
        for (int i = 0; i < srv->opts.max_clients; i++) {
            struct conn *c = &srv->conns[i];
            if (c->fd < 0)
                continue;
            if (c->out_len && t - c->out_ms > WRITE_TIMEOUT_MS) {
                KB_LOG_WARN(COMP, "answer not taken within the deadline; closing",
                            "peer=%s write_timeout_ms=%d", c->peer, WRITE_TIMEOUT_MS);
                atomic_fetch_add_explicit(&srv->stats.timeouts, 1, memory_order_relaxed);
                conn_close(srv, c, "answer-write-timeout");
            } else if (c->frame_ms && t - c->frame_ms > srv->opts.frame_timeout_ms) {
                KB_LOG_WARN(COMP, "frame not complete within the deadline; closing",
                            "peer=%s got=%zu length=%zu frame_timeout_ms=%d", c->peer, c->got,
                            c->need, srv->opts.frame_timeout_ms);
                atomic_fetch_add_explicit(&srv->stats.timeouts, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&srv->stats.bad_frames, 1, memory_order_relaxed);
                conn_close(srv, c, "frame-timeout");
            } else if (t - c->last_ms > srv->opts.idle_timeout_ms) {
                atomic_fetch_add_explicit(&srv->stats.timeouts, 1, memory_order_relaxed);
                conn_close(srv, c, "idle-timeout");
            }
        }
    }
    free(pfds);
    free(idx);
    return err;
}

void kb_tcp_server_destroy(kb_tcp_server_t *srv)
{
    if (!srv)
        return;
    for (int i = 0; i < srv->opts.max_clients; i++)
        conn_close(srv, &srv->conns[i], "server-stopped");
    close(srv->lfd);
    free(srv->conns);
    free(srv);
}

kb_tcp_client_t *kb_tcp_client_new(const char *host, int port, int timeout_ms, char *errstr,
                                   size_t errstr_size)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "tcp: cannot resolve %s: %s", host,
                   gai_strerror(gai));
        return NULL;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (poll(&pfd, 1, timeout_ms) == 1 &&
                !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) && soerr == 0)
                rc = 0;
        }
        if (rc < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        kb_err_set(KB_ERR_IO, errstr, errstr_size, "tcp: cannot connect to %s:%d", host, port);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    kb_tcp_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "tcp: out of memory");
        return NULL;
    }
    c->fd = fd;
    return c;
}

kb_err_t kb_tcp_client_send(kb_tcp_client_t *c, const void *frame, size_t len, int timeout_ms,
                            enum kb_tcp_verdict *verdict, char *reason, size_t reason_size,
                            char *errstr, size_t errstr_size)
{
    if (len == 0 || len > UINT32_MAX)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size, "tcp: frame length %zu", len);
    uint8_t hdr[4];
    put_be32(hdr, (uint32_t)len);
    if (write_all(c->fd, hdr, 4, timeout_ms) || write_all(c->fd, frame, len, timeout_ms))
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "tcp: send failed");
    int64_t deadline = kb_mono_ms() + timeout_ms;
    uint8_t ahdr[4];
    int r = read_all(c->fd, ahdr, 4, deadline);
    if (r)
        return kb_err_set(r == -2 ? KB_ERR_TIMEOUT : KB_ERR_IO, errstr, errstr_size,
                          "tcp: no answer (%s)", r == -2 ? "timeout" : "connection closed");
    /* An answer that is none (an HTTP port, a proxy, a broken peer) says
     * nothing of the frame, which may have been taken: the frame's fate is
     * unknown, as when no answer came, so the caller resends it on a new
     * connection instead of giving up on it (KB_ERR_INVALID would
     * quarantine every event in turn while the peer may have them all). */
    uint32_t alen = get_be32(ahdr);
    if (alen == 0 || alen > 65536)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size,
                          "tcp: bad answer length %u (is the peer a ketenbus LO3 listener?)", alen);
    uint8_t *ans = malloc(alen);
    if (!ans)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "tcp: out of memory");
    r = read_all(c->fd, ans, alen, deadline);
    if (r) {
        free(ans);
        return kb_err_set(r == -2 ? KB_ERR_TIMEOUT : KB_ERR_IO, errstr, errstr_size,
                          "tcp: answer cut short");
    }
    if (ans[0] != KB_TCP_ACK && ans[0] != KB_TCP_REJECT && ans[0] != KB_TCP_NACK) {
        unsigned status = ans[0];
        free(ans);
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "tcp: bad answer status 0x%02x", status);
    }
    *verdict = (enum kb_tcp_verdict)ans[0];
    if (reason && reason_size) {
        size_t n = alen - 1 < reason_size - 1 ? alen - 1 : reason_size - 1;
        memcpy(reason, ans + 1, n);
        reason[n] = 0;
    }
    free(ans);
    return KB_OK;
}

int kb_tcp_client_alive(kb_tcp_client_t *c)
{
    /* Nothing may arrive between answers: end of stream (the peer closed an
     * idle connection), an error or unasked bytes all mean the connection
     * cannot carry the next frame. */
    uint8_t b;
    ssize_t n;
    do
        n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void kb_tcp_client_destroy(kb_tcp_client_t *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c);
}
