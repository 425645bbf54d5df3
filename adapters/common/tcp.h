/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * tcp.h - the shared TCP transport of the adapters: a listener that reads
 * length-prefixed frames (one legacy message each) and answers every frame
 * with an ack/nack only after the adapter's handler said the message is
 * durable in Kafka, plus the matching client (legacy peer side, and egress
 * adapters that push to a legacy afnemer's listener).
 *
 * Wire format [PLAUSIBLE DESIGN: no public framing exists for these feeds]:
 *   frame  = length:uint32 big endian (1 .. max_frame) + length bytes
 *   answer = length:uint32 big endian (>= 1)            + status byte + text
 *     status 'A' ACK     message durable in Kafka; the sender may forget it
 *            'R' REJECT  unreadable; it is durable in the quarantine topic
 *                        with the reason in text; the sender must NOT resend
 *            'N' NACK    not durable (Kafka down, timeout); text says why;
 *                        the sender MUST resend it later
 *   Answers come in frame order on the same connection. A frame with
 *   length 0 or above max_frame, or a connection closed mid-frame, closes
 *   the connection without an answer (the sender resends: nothing is lost,
 *   ids are deterministic so duplicates are dropped downstream).
 *
 * Hostile peers: a frame must arrive whole within frame_timeout_ms of its
 *   first byte (a sender dribbling a byte at a time is cut off however
 *   steady), a connection silent for idle_timeout_ms between frames is
 *   closed, at most max_clients connections are served (more are closed at
 *   accept), and the payload buffers of all unfinished frames together stay
 *   under max_buffered: a buffer grows with the bytes that actually arrived
 *   (a 4-byte prefix claiming 8 MiB costs nothing), and a frame that would
 *   push the total over the budget closes its connection. All of these
 *   close without an answer, so an honest sender just resends. The
 *   deadlines do not count time the server spent in on_frame or on_idle
 *   (one thread: no peer could be read meanwhile). When accept fails for
 *   want of descriptors, the listener rests 250 ms instead of spinning.
 *
 * Invariants:
 *  1. An 'A' or 'R' is written only after on_frame returned that verdict,
 *     i.e. after the broker acknowledged; a crash before the answer means
 *     the sender never saw an ack and resends (at-least-once).
 *  2. on_frame is called on the thread inside kb_tcp_server_run(), one
 *     frame at a time (never concurrently), so it may use a kb_ingress_t
 *     owned by that thread.
 *  3. Frames of one connection are handled in arrival order.
 *
 * Connection states (server side, one per accepted socket):
 *   ACCEPTED --read 4 bytes--> HEADER --read length bytes--> FRAME
 *   FRAME --on_frame + write answer (kb_tcp_server_run)--> ACCEPTED
 *   any --EOF / bad length / I/O error / idle or frame timeout / over the
 *         memory budget--> CLOSED
 */
#ifndef KETENBUS_TCP_H
#define KETENBUS_TCP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

#define KB_TCP_DEFAULT_MAX_FRAME (8u << 20) /* 8 MiB, the adapters' message cap */

/** What the handler decided for one frame; becomes the answer's status byte. */
enum kb_tcp_verdict {
    KB_TCP_ACK = 'A',    /* durable in kb.in.<source> */
    KB_TCP_REJECT = 'R', /* unreadable, durable in kb.quarantine.<source> */
    KB_TCP_NACK = 'N',   /* not durable: sender resends */
};

/**
 * Handler for one received frame. @p frame (@p len bytes) is owned by the
 * server and valid only during the call. Write the reason for REJECT/NACK
 * (no personal data: rules, offsets, field paths only) into @p reason.
 * @p peer is "ip:port" of the sender, for logs.
 * @thread the thread running kb_tcp_server_run()
 */
typedef enum kb_tcp_verdict(kb_tcp_frame_cb)(void *opaque, const uint8_t *frame, size_t len,
                                             const char *peer, char *reason,
                                             size_t reason_size);

/**
 * Called on the server's thread about every 200 ms and after every frame,
 * between frames (never during on_frame), so an adapter can do other work
 * with the same single-threaded resources, e.g. scan its spool folder.
 */
typedef void(kb_tcp_idle_cb)(void *opaque);

struct kb_tcp_server_opts {
    const char *bind_host;    /* numeric address to listen on; default "127.0.0.1" */
    int port;                 /* port; 0 = any free port (see kb_tcp_server_port) */
    size_t max_frame;         /* largest accepted frame; default KB_TCP_DEFAULT_MAX_FRAME */
    int max_clients;          /* simultaneous connections; default 64, more are refused */
    int idle_timeout_ms;      /* close a connection silent this long; default 300000 */
    int frame_timeout_ms;     /* a frame must arrive whole this long after its first
                               * byte; default 30000 */
    size_t max_buffered;      /* payload bytes held for unfinished frames, all
                               * connections together; default 64 MiB (at least
                               * max_frame) */
    kb_tcp_frame_cb *on_frame;/* required */
    void *opaque;             /* passed to on_frame and on_idle */
    kb_tcp_idle_cb *on_idle;  /* optional */
};

/** Counters since kb_tcp_server_new(); read on any thread (relaxed). */
struct kb_tcp_stats {
    atomic_ullong connections; /* accepted sockets */
    atomic_ullong frames;      /* complete frames handed to on_frame */
    atomic_ullong acks;        /* answered 'A' */
    atomic_ullong rejects;     /* answered 'R' */
    atomic_ullong nacks;       /* answered 'N' */
    atomic_ullong bad_frames;  /* connections closed for a bad length or partial frame */
    atomic_ullong bytes;       /* payload bytes received in complete frames */
    atomic_ullong refused;     /* connections closed at accept: max_clients reached */
    atomic_ullong timeouts;    /* connections closed: frame or idle timeout */
    atomic_ullong over_budget; /* connections closed: max_buffered reached */
};

typedef struct kb_tcp_server kb_tcp_server_t;

/**
 * Bind and listen. @p opts is copied (bind_host too). NULL with errstr set
 * when the address cannot be bound.
 * @thread any; the server is then used by one thread
 */
kb_tcp_server_t *kb_tcp_server_new(const struct kb_tcp_server_opts *opts, char *errstr,
                                   size_t errstr_size);

/** The port actually bound (useful with port 0). */
int kb_tcp_server_port(const kb_tcp_server_t *srv);

/** The server's counters; valid until kb_tcp_server_destroy(). */
const struct kb_tcp_stats *kb_tcp_server_stats(const kb_tcp_server_t *srv);

/**
 * Accept connections and serve frames until *@p stop becomes non-zero
 * (checked at least every 200 ms). A frame being handled when stop is set
 * is finished and answered first. KB_OK on a clean stop; KB_ERR_IO when the
 * listening socket fails.
 * @thread the one thread that owns @p srv; on_frame runs on it
 */
kb_err_t kb_tcp_server_run(kb_tcp_server_t *srv, atomic_int *stop, char *errstr,
                           size_t errstr_size);

/** Close every connection and the listener. NULL is a no-op. */
void kb_tcp_server_destroy(kb_tcp_server_t *srv);

/* ---- client: the sending side of the same protocol ---- */

typedef struct kb_tcp_client kb_tcp_client_t;

/**
 * Connect to @p host (numeric or name) : @p port within @p timeout_ms.
 * NULL with errstr set on failure.
 */
kb_tcp_client_t *kb_tcp_client_new(const char *host, int port, int timeout_ms, char *errstr,
                                   size_t errstr_size);

/**
 * Whether @p c can still carry a frame: 0 when the peer closed it (an idle
 * timeout on its side), it failed, or bytes came that nobody asked for.
 * Checked before reusing a connection, so that such a close costs a new
 * connection rather than a failed send, a logged error and a retry.
 * @thread the one thread that owns @p c
 */
int kb_tcp_client_alive(kb_tcp_client_t *c);

/**
 * Send one frame and wait up to @p timeout_ms for its answer. On KB_OK
 * *verdict is the peer's status and @p reason (may be NULL) its text,
 * NUL-terminated. KB_ERR_IO / KB_ERR_TIMEOUT when no answer came, or
 * what came is no answer (bad length or status): the frame's fate is
 * unknown and it must be resent on a new connection.
 * @thread the one thread that owns @p c
 */
kb_err_t kb_tcp_client_send(kb_tcp_client_t *c, const void *frame, size_t len, int timeout_ms,
                            enum kb_tcp_verdict *verdict, char *reason, size_t reason_size,
                            char *errstr, size_t errstr_size);

/** Close the connection. NULL is a no-op. */
void kb_tcp_client_destroy(kb_tcp_client_t *c);

#endif
