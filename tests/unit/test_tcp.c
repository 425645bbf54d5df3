/* SPDX-License-Identifier: EUPL-1.2 */
/* test_tcp.c - the adapters' TCP transport against hostile peers: frames
 * dribbled a byte at a time are cut off at frame_timeout_ms, bad lengths
 * close the connection, length prefixes claiming megabytes cost only what
 * arrived and all unfinished frames together stay within max_buffered,
 * connections over max_clients are closed at accept; an honest client is
 * served before, during and after all of it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/tcp.h"
#include "kb_test.h"
#include "ketenbus/metrics.h"

static enum kb_tcp_verdict on_frame(void *opaque, const uint8_t *frame, size_t len,
                                    const char *peer, char *reason, size_t reason_size)
{
    (void)opaque;
    (void)peer;
    if (len >= 4 && !memcmp(frame, "slow", 4)) {
        usleep(1500 * 1000); /* as a handler waiting on Kafka: longer than the frame deadline */
        return KB_TCP_ACK;
    }
    if (len >= 2 && !memcmp(frame, "ok", 2))
        return KB_TCP_ACK;
    snprintf(reason, reason_size, "test: not ok (%zu bytes)", len);
    return KB_TCP_REJECT;
}

struct server {
    kb_tcp_server_t *srv;
    atomic_int stop;
    pthread_t t;
};

static void *run(void *arg)
{
    struct server *s = arg;
    char err[256];
    kb_tcp_server_run(s->srv, &s->stop, err, sizeof err);
    return NULL;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void put_len(int fd, uint32_t len)
{
    uint8_t h[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    ssize_t n = send(fd, h, 4, MSG_NOSIGNAL);
    (void)n;
}

/* Seconds until the server closes @p fd (reading and discarding), or -1
 * when it stays open for @p give_up_s; sends one byte every @p drip_ms
 * (0: none) meanwhile. */
static double wait_closed(int fd, int drip_ms, double give_up_s)
{
    double t0 = kb_test_now_s();
    while (kb_test_now_s() - t0 < give_up_s) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, drip_ms ? drip_ms : 100) > 0) {
            char buf[512];
            if (recv(fd, buf, sizeof buf, 0) <= 0)
                return kb_test_now_s() - t0;
            continue;
        }
        if (drip_ms && send(fd, "x", 1, MSG_NOSIGNAL) < 0)
            return kb_test_now_s() - t0;
    }
    return -1;
}

static void honest(int port, const char *what)
{
    char err[256], reason[128];
    kb_tcp_client_t *c = kb_tcp_client_new("127.0.0.1", port, 2000, err, sizeof err);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "honest client (%s): %s\n", what, err);
        return;
    }
    enum kb_tcp_verdict v = KB_TCP_NACK;
    CHECK_INT(
        kb_tcp_client_send(c, "ok-message", 10, 3000, &v, reason, sizeof reason, err, sizeof err),
        KB_OK);
    CHECK_INT(v, KB_TCP_ACK);
    CHECK_INT(kb_tcp_client_send(c, "garbage", 7, 3000, &v, reason, sizeof reason, err, sizeof err),
              KB_OK);
    CHECK_INT(v, KB_TCP_REJECT);
    CHECK_STR(reason, "test: not ok (7 bytes)");
    kb_tcp_client_destroy(c);
}

/* A sender that pipelines frames and never reads its answers, with a
 * small receive buffer: once its answers back up, the listener stops
 * reading from it, and an honest client beside it is served at once (it
 * waited up to the 10 s write deadline per answer while the listener's one
 * thread blocked on this peer's socket). */
static void beside_a_peer_that_never_reads(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small); /* before connect: the window */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_INT(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    uint8_t chunk[6 * 100];
    for (int i = 0; i < 100; i++)
        memcpy(chunk + 6 * i, "\0\0\0\2ok", 6);
    size_t sent = 0;
    int stalled_ms = 0;
    while (sent < (16u << 20) && stalled_ms < 500) {
        size_t at = sent % sizeof chunk; /* a partial send leaves the next frame cut */
        ssize_t w = send(fd, chunk + at, sizeof chunk - at, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            sent += (size_t)w;
            stalled_ms = 0;
        } else {
            usleep(10 * 1000);
            stalled_ms += 10;
        }
    }
    CHECK(stalled_ms >= 500); /* it could not send more: its answers stopped the reading */
    honest(port, "beside a peer that never reads");
    /* ... and the peer was not dropped for it: its answers are there, acks. */
    uint8_t ans[5] = {0};
    CHECK_INT(recv(fd, ans, sizeof ans, MSG_WAITALL), 5);
    CHECK(ans[0] == 0 && ans[1] == 0 && ans[2] == 0 && ans[3] == 1 && ans[4] == KB_TCP_ACK);
    close(fd);
}

/* A peer that is not a ketenbus listener (an HTTP port, say): it reads one
 * frame and answers in its own protocol; or (@p close_first) closes each
 * connection at once, as an afnemer whose idle timeout ran out. */
struct foreign_peer {
    int lfd, port, close_first;
    pthread_t t;
};

static void *foreign_run(void *arg)
{
    struct foreign_peer *f = arg;
    for (int i = 0; i < 2; i++) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        if (!f->close_first) {
            char buf[64];
            ssize_t n = recv(fd, buf, sizeof buf, 0); /* the length prefix and the frame */
            (void)n;
            static const char http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
            n = send(fd, http, sizeof http - 1, MSG_NOSIGNAL);
            (void)n;
        }
        close(fd);
    }
    return NULL;
}

static void foreign_start(struct foreign_peer *f, int close_first)
{
    f->close_first = close_first;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    CHECK_INT(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_INT(listen(f->lfd, 4), 0);
    CHECK_INT(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    f->port = ntohs(sa.sin_port);
    pthread_create(&f->t, NULL, foreign_run, f);
}

/* What a client makes of such peers: no answer is no verdict (the frame's
 * fate unknown: I/O, resend, never a rejection), and a connection the peer
 * closed is seen as dead before it is used. */
static void client_against_foreign_peers(int honest_port)
{
    char err[256], reason[128];
    enum kb_tcp_verdict v = KB_TCP_ACK;
    struct foreign_peer f;
    foreign_start(&f, 0);
    kb_tcp_client_t *c = kb_tcp_client_new("127.0.0.1", f.port, 2000, err, sizeof err);
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(kb_tcp_client_send(c, "ok-message", 10, 3000, &v, reason, sizeof reason, err,
                                     sizeof err),
                  KB_ERR_IO);
        CHECK(strstr(err, "bad answer length") != NULL);
        kb_tcp_client_destroy(c);
    }
    c = kb_tcp_client_new("127.0.0.1", f.port, 2000, err, sizeof err); /* lets the thread end */
    kb_tcp_client_destroy(c);
    pthread_join(f.t, NULL);
    close(f.lfd);

    foreign_start(&f, 1);
    c = kb_tcp_client_new("127.0.0.1", f.port, 2000, err, sizeof err);
    CHECK(c != NULL);
    if (c) {
        double t0 = kb_test_now_s();
        int alive = 1;
        while (alive && kb_test_now_s() - t0 < 5) {
            alive = kb_tcp_client_alive(c);
            if (alive)
                usleep(10 * 1000);
        }
        CHECK_INT(alive, 0);
        kb_tcp_client_destroy(c);
    }
    c = kb_tcp_client_new("127.0.0.1", f.port, 2000, err, sizeof err);
    kb_tcp_client_destroy(c);
    pthread_join(f.t, NULL);
    close(f.lfd);

    /* A live connection between answers stays usable. */
    c = kb_tcp_client_new("127.0.0.1", honest_port, 2000, err, sizeof err);
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(kb_tcp_client_alive(c), 1);
        CHECK_INT(
            kb_tcp_client_send(c, "ok-1", 4, 3000, &v, reason, sizeof reason, err, sizeof err),
            KB_OK);
        CHECK_INT(v, KB_TCP_ACK);
        CHECK_INT(kb_tcp_client_alive(c), 1);
        kb_tcp_client_destroy(c);
    }
}

int main(void)
{
    char err[256];
    struct kb_tcp_server_opts o = {.max_frame = 1u << 20,
                                   .max_clients = 4,
                                   .idle_timeout_ms = 30000,
                                   .frame_timeout_ms = 800,
                                   .max_buffered = 2u << 20,
                                   .on_frame = on_frame};
    struct server s = {0};
    s.srv = kb_tcp_server_new(&o, err, sizeof err);
    CHECK(s.srv != NULL);
    if (!s.srv)
        KB_TEST_DONE();
    int port = kb_tcp_server_port(s.srv);
    pthread_create(&s.t, NULL, run, &s);
    const struct kb_tcp_stats *st = kb_tcp_server_stats(s.srv);
    honest(port, "first");

    /* a frame dribbled a byte every 150 ms: cut at the frame deadline, no answer */
    int fd = dial(port);
    put_len(fd, 100);
    double t = wait_closed(fd, 150, 5);
    CHECK(t >= 0.7 && t < 2.0);
    close(fd);
    CHECK_INT(atomic_load(&st->timeouts), 1);

    /* half a length prefix, then silence: the same deadline */
    fd = dial(port);
    CHECK_INT(send(fd, "\0\0", 2, MSG_NOSIGNAL), 2);
    t = wait_closed(fd, 0, 5);
    CHECK(t >= 0.7 && t < 2.0);
    close(fd);
    CHECK_INT(atomic_load(&st->timeouts), 2);

    /* lengths 0 and over max_frame close the connection at once */
    fd = dial(port);
    put_len(fd, 0);
    t = wait_closed(fd, 0, 2);
    CHECK(t >= 0 && t < 0.5);
    close(fd);
    fd = dial(port);
    put_len(fd, (1u << 20) + 1);
    t = wait_closed(fd, 0, 2);
    CHECK(t >= 0 && t < 0.5);
    close(fd);
    CHECK_INT(atomic_load(&st->bad_frames), 4);

    /* three prefixes claiming 1 MiB each, with 700 KiB sent: buffers grow
     * with what arrived, and the third would pass the 2 MiB budget */
    static uint8_t junk[700u << 10];
    memset(junk, 'j', sizeof junk);
    int big[3];
    for (int i = 0; i < 3; i++) {
        big[i] = dial(port);
        put_len(big[i], 1u << 20);
        size_t off = 0;
        while (off < sizeof junk) {
            struct pollfd p = {big[i], POLLOUT, 0};
            if (poll(&p, 1, 500) <= 0)
                break;
            ssize_t w = send(big[i], junk + off, sizeof junk - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        usleep(100 * 1000);
    }
    CHECK_INT(atomic_load(&st->over_budget), 1);
    for (int i = 0; i < 3; i++)
        close(big[i]);
    usleep(300 * 1000);
    honest(port, "after the budget");

    /* max_clients: four idle connections fill the server, a fifth is
     * closed at accept; once one goes, honest clients are served again */
    int idle[4];
    for (int i = 0; i < 4; i++)
        idle[i] = dial(port);
    usleep(300 * 1000);
    fd = dial(port);
    t = wait_closed(fd, 0, 0.6);
    CHECK(t >= 0 && t < 0.5);
    close(fd);
    CHECK_INT(atomic_load(&st->refused), 1);
    /* the idle ones are cut at the frame deadline only once they send a
     * byte; silent ones wait for the idle timeout: free a slot by hand */
    close(idle[0]);
    usleep(400 * 1000);
    honest(port, "with three idle");
    for (int i = 1; i < 4; i++)
        close(idle[i]);

    /* A slow handler (1.5 s, over the 0.8 s frame deadline) does not time
     * out a peer whose frame was under way: its rest arrived meanwhile and
     * is read after the handler (before, the sweep closed it). First the
     * server notices the idle ones closed, or b would be one too many. */
    usleep(400 * 1000);
    int b = dial(port);
    put_len(b, 10);
    CHECK_INT(send(b, "ok-", 3, MSG_NOSIGNAL), 3);
    usleep(100 * 1000);
    int a = dial(port);
    put_len(a, 4);
    CHECK_INT(send(a, "slow", 4, MSG_NOSIGNAL), 4);
    usleep(300 * 1000);
    CHECK_INT(send(b, "message", 7, MSG_NOSIGNAL), 7);
    uint8_t ans[5] = {0};
    size_t got = 0;
    while (got < sizeof ans) {
        struct pollfd p = {b, POLLIN, 0};
        if (poll(&p, 1, 4000) <= 0)
            break;
        ssize_t r = recv(b, ans + got, sizeof ans - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    CHECK_INT((int)got, 5);
    CHECK_INT(ans[4], (uint8_t)KB_TCP_ACK);
    close(a);
    close(b);

    /* the refusals are on /metrics (source = the program name here) */
    CHECK(kb_series_value(kb_metrics_series("kb_adapter_refused_total", "test_tcp", "tcp",
                                            "frame-timeout", NULL)) == 2);
    CHECK(kb_series_value(kb_metrics_series("kb_adapter_refused_total", "test_tcp", "tcp",
                                            "memory-budget", NULL)) == 1);
    CHECK(kb_series_value(kb_metrics_series("kb_adapter_refused_total", "test_tcp", "tcp",
                                            "too-many-clients", NULL)) == 1);
    CHECK(kb_series_value(kb_metrics_series("kb_adapter_messages_total", "test_tcp", "tcp",
                                            "accepted", NULL)) == 5);
    CHECK(kb_series_value(kb_metrics_series("kb_adapter_messages_total", "test_tcp", "tcp",
                                            "quarantined", NULL)) == 3);
    client_against_foreign_peers(port);
    beside_a_peer_that_never_reads(port);

    atomic_store(&s.stop, 1);
    pthread_join(s.t, NULL);
    kb_tcp_server_destroy(s.srv);
    KB_TEST_DONE();
}
