/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_http_auth.c - the embedded HTTP server's protections: bearer tokens
 * (401 without or with a wrong one), public routes (/metrics) opened by
 * configuration at a segment boundary, rate limiting of failed
 * authentication (429 even for the right token), header and body limits,
 * slow clients cut off, and HTTPS with optional client certificates
 * (a certificate from the right CA authenticates, even from an address
 * locked out by failures; one from another CA is refused in the handshake),
 * and requests a browser makes for a page elsewhere (foreign Origin; on an
 * open loopback server a Host that is no loopback name). The client side is raw sockets / OpenSSL,
 * so the test can misbehave on purpose.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kb_test.h"
#include "ketenbus/http.h"

static char dir[] = "/tmp/kb-test-http-auth-XXXXXX";

static void on_any(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    char body[128];
    snprintf(body, sizeof body, "auth=%s", kb_http_req_auth(req));
    kb_http_reply(req, 200, "text/plain", body, strlen(body));
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send @p req raw, read the whole answer into @p out; returns the status (0 = none). */
static int raw(uint16_t port, const char *req, size_t len, char *out, size_t out_size)
{
    int fd = connect_to(port);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t n = 0;
    ssize_t r;
    while (n + 1 < out_size && (r = recv(fd, out + n, out_size - 1 - n, 0)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fd);
    int status = 0;
    sscanf(out, "HTTP/1.%*d %d", &status);
    return status;
}

static int get(uint16_t port, const char *path, const char *auth_header, char *out, size_t size)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s\r\n", path,
                     auth_header ? auth_header : "", auth_header ? "\r\n" : "");
    return raw(port, req, (size_t)n, out, size);
}

static const char *TOKEN = "t0k-3f9a1c7e52b84d06a9c1";

static void test_token(void)
{
    char tokpath[256], out[8192];
    snprintf(tokpath, sizeof tokpath, "%s/token", dir);
    FILE *f = fopen(tokpath, "w");
    fprintf(f, "%s\n", TOKEN);
    fclose(f);
    char errstr[256];
    struct kb_http_opts o = {.token_file = tokpath, .public_prefixes = "/metrics,/healthz",
                             .auth_fail_max = 3, .auth_fail_window_s = 60, .max_body = 1000,
                             .max_headers = 4096, .timeout_s = 1};
    kb_http_t *h = kb_http_new(&o, errstr, sizeof errstr);
    CHECK(h != NULL);
    kb_http_route(h, "*", "/", on_any, NULL);
    CHECK_INT(kb_http_start(h, errstr, sizeof errstr), KB_OK);
    uint16_t port = kb_http_port(h);
    char good[128], bad[128];
    snprintf(good, sizeof good, "Authorization: Bearer %s", TOKEN);
    snprintf(bad, sizeof bad, "Authorization: Bearer %.*sX", (int)strlen(TOKEN) - 1, TOKEN);

    CHECK_INT(get(port, "/subjects", good, out, sizeof out), 200);
    CHECK(strstr(out, "auth=token") != NULL);
    CHECK_INT(get(port, "/metrics", NULL, out, sizeof out), 200);
    CHECK(strstr(out, "auth=none") != NULL);
    CHECK_INT(get(port, "/healthz", NULL, out, sizeof out), 200);
    CHECK_INT(get(port, "/metrics/x", NULL, out, sizeof out), 200);
    /* each of these is one failure (3 allowed per window) */
    CHECK_INT(get(port, "/subjects", NULL, out, sizeof out), 401);
    CHECK(strstr(out, "WWW-Authenticate: Bearer") != NULL);
    CHECK(strstr(out, "40101") != NULL);
    CHECK_INT(get(port, "/metricsx", NULL, out, sizeof out), 401); /* segment boundary */
    CHECK_INT(get(port, "/subjects", bad, out, sizeof out), 401);
    /* now over the limit: 429 even with the right token, with Retry-After */
    CHECK_INT(get(port, "/subjects", bad, out, sizeof out), 429);
    CHECK_INT(get(port, "/subjects", good, out, sizeof out), 429);
    CHECK(strstr(out, "Retry-After: ") != NULL);
    /* public routes stay open meanwhile */
    CHECK_INT(get(port, "/metrics", NULL, out, sizeof out), 200);

    /* header block over 4 KiB: refused, no handler ran */
    size_t big = 8000;
    char *req = malloc(big + 200);
    int n = sprintf(req, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
    memset(req + n, 'a', big);
    n += (int)big;
    n += sprintf(req + n, "\r\nConnection: close\r\n\r\n");
    int st = raw(port, req, (size_t)n, out, sizeof out);
    /* libevent answers 400; or the client sees the reset first (the server
     * closes with the rest of the header block unread): then no status. */
    CHECK(st == 400 || st == 0);
    CHECK(strstr(out, "auth=") == NULL);
    /* body over 1000 bytes: 413 */
    n = sprintf(req, "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n"
                     "Connection: close\r\n\r\n");
    memset(req + n, 'b', 5000 > big ? big : 5000);
    st = raw(port, req, (size_t)n + 5000, out, sizeof out);
    CHECK_INT(st, 413);
    free(req);

    /* slow client: half a request line, then nothing; cut off after the
     * 1 s timeout while other clients are served */
    int fd = connect_to(port);
    CHECK(fd >= 0);
    send(fd, "GET /met", 8, MSG_NOSIGNAL);
    CHECK_INT(get(port, "/metrics", NULL, out, sizeof out), 200);
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    char c;
    ssize_t r = recv(fd, &c, 1, 0); /* blocks until the server closes */
    gettimeofday(&t1, NULL);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_usec - t0.tv_usec) / 1e6;
    CHECK(r <= 0);
    CHECK(waited < 5.0);
    close(fd);
    kb_http_destroy(h);
}

static void test_no_auth_configured(void)
{
    char errstr[256], out[4096];
    kb_http_t *h = kb_http_new(NULL, errstr, sizeof errstr);
    kb_http_route(h, "*", "/", on_any, NULL);
    CHECK_INT(kb_http_start(h, errstr, sizeof errstr), KB_OK);
    CHECK_INT(get(kb_http_port(h), "/subjects", NULL, out, sizeof out), 200);
    CHECK(strstr(out, "auth=none") != NULL);
    kb_http_destroy(h);
    /* bad configurations are refused up front */
    struct kb_http_opts half = {.tls_cert_file = "/nonexistent"};
    CHECK(kb_http_new(&half, errstr, sizeof errstr) == NULL);
    char tok[300];
    snprintf(tok, sizeof tok, "%s/short", dir);
    FILE *f = fopen(tok, "w");
    fputs("short\n", f);
    fclose(f);
    struct kb_http_opts shorttok = {.token_file = tok};
    h = kb_http_new(&shorttok, errstr, sizeof errstr);
    CHECK_INT(kb_http_start(h, errstr, sizeof errstr), KB_ERR_CONF);
    CHECK(strstr(errstr, "short") == NULL || strstr(errstr, tok) != NULL);
    kb_http_destroy(h);
}

/* Send "METHOD PATH" with the given extra header lines (each ending in
 * \r\n, or ""); returns the status. */
static int req_with(uint16_t port, const char *method, const char *path, const char *lines,
                    char *out, size_t size)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\n%sContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n",
                     method, path, lines);
    return raw(port, req, (size_t)n, out, size);
}

/* What a browser sends for a page elsewhere is refused: a foreign Origin
 * (cross-site request forgery) everywhere, and on an open loopback server a
 * Host that names no loopback address (DNS rebinding). Every answer says
 * no-store and nosniff; an unknown path is 404 and a known one with the
 * wrong method 405 with Allow, even beside a route at "/". */
static void test_browser_guard(void)
{
    char errstr[256], out[4096], lines[256];
    kb_http_t *h = kb_http_new(NULL, errstr, sizeof errstr); /* open, on 127.0.0.1 */
    CHECK(h != NULL);
    kb_http_route(h, "GET", "/", on_any, NULL);
    kb_http_route(h, "GET", "/x", on_any, NULL);
    kb_http_route(h, "POST", "/x/do", on_any, NULL);
    CHECK_INT(kb_http_start(h, errstr, sizeof errstr), KB_OK);
    uint16_t port = kb_http_port(h);

    CHECK_INT(req_with(port, "GET", "/x", "Host: 127.0.0.1\r\n", out, sizeof out), 200);
    CHECK(strstr(out, "\r\nCache-Control: no-store\r\n") != NULL);
    CHECK(strstr(out, "\r\nX-Content-Type-Options: nosniff\r\n") != NULL);
    CHECK_INT(req_with(port, "GET", "/x", "Host: localhost:8080\r\n", out, sizeof out), 200);
    CHECK_INT(req_with(port, "GET", "/x", "Host: [::1]:80\r\n", out, sizeof out), 200);
    CHECK_INT(req_with(port, "GET", "/x", "Host: 127.1.2.3\r\n", out, sizeof out), 200);
    /* a rebound name, and none at all */
    CHECK_INT(req_with(port, "GET", "/x", "Host: evil.example\r\n", out, sizeof out), 403);
    CHECK(strstr(out, "40302") != NULL);
    CHECK(strstr(out, "auth=") == NULL);
    CHECK_INT(req_with(port, "GET", "/x", "Host: localhost.evil.example\r\n", out, sizeof out),
              403);
    CHECK_INT(req_with(port, "GET", "/x", "", out, sizeof out), 403);
    /* a form on another site posting here; the page's own origin may */
    snprintf(lines, sizeof lines, "Host: 127.0.0.1:%u\r\nOrigin: http://evil.example\r\n",
             (unsigned)port);
    CHECK_INT(req_with(port, "POST", "/x/do", lines, out, sizeof out), 403);
    CHECK(strstr(out, "40301") != NULL);
    CHECK(strstr(out, "auth=") == NULL);
    snprintf(lines, sizeof lines, "Host: 127.0.0.1:%u\r\nOrigin: http://127.0.0.1:%u.evil\r\n",
             (unsigned)port, (unsigned)port);
    CHECK_INT(req_with(port, "POST", "/x/do", lines, out, sizeof out), 403);
    snprintf(lines, sizeof lines, "Host: 127.0.0.1:%u\r\nOrigin: null\r\n", (unsigned)port);
    CHECK_INT(req_with(port, "POST", "/x/do", lines, out, sizeof out), 403);
    snprintf(lines, sizeof lines, "Host: 127.0.0.1:%u\r\nOrigin: https://127.0.0.1:%u\r\n",
             (unsigned)port, (unsigned)port);
    CHECK_INT(req_with(port, "POST", "/x/do", lines, out, sizeof out), 200); /* TLS proxy */
    snprintf(lines, sizeof lines, "Host: 127.0.0.1:%u\r\nOrigin: http://127.0.0.1:%u\r\n",
             (unsigned)port, (unsigned)port);
    CHECK_INT(req_with(port, "POST", "/x/do", lines, out, sizeof out), 200);
    /* 404 for what is not there, 405 with Allow for the wrong method */
    CHECK_INT(req_with(port, "POST", "/nothing", "Host: 127.0.0.1\r\n", out, sizeof out), 404);
    CHECK_INT(req_with(port, "DELETE", "/x", "Host: 127.0.0.1\r\n", out, sizeof out), 405);
    CHECK(strstr(out, "\r\nAllow: GET, HEAD\r\n") != NULL);
    /* (GET /x/do is GET /x's: a route is a prefix at a segment boundary) */
    CHECK_INT(req_with(port, "PUT", "/x/do", "Host: 127.0.0.1\r\n", out, sizeof out), 405);
    CHECK(strstr(out, "\r\nAllow: GET, HEAD, POST\r\n") != NULL);
    kb_http_destroy(h);

    /* With a token the Host is not checked (a rebound page has no token to
     * send, and behind a proxy the Host is the proxy's name); Origin is. */
    char tokpath[256];
    snprintf(tokpath, sizeof tokpath, "%s/token-guard", dir);
    FILE *f = fopen(tokpath, "w");
    fprintf(f, "%s\n", TOKEN);
    fclose(f);
    struct kb_http_opts o = {.token_file = tokpath};
    h = kb_http_new(&o, errstr, sizeof errstr);
    CHECK(h != NULL);
    kb_http_route(h, "*", "/", on_any, NULL);
    CHECK_INT(kb_http_start(h, errstr, sizeof errstr), KB_OK);
    port = kb_http_port(h);
    snprintf(lines, sizeof lines, "Host: ketenbus.example\r\nAuthorization: Bearer %s\r\n", TOKEN);
    CHECK_INT(req_with(port, "GET", "/x", lines, out, sizeof out), 200);
    snprintf(lines, sizeof lines,
             "Host: ketenbus.example\r\nOrigin: http://evil.example\r\n"
             "Authorization: Bearer %s\r\n",
             TOKEN);
    CHECK_INT(req_with(port, "POST", "/x", lines, out, sizeof out), 403);
    kb_http_destroy(h);
}

/* One HTTPS GET with OpenSSL; returns the status, -1 when the handshake fails. */
static int tls_get(uint16_t port, const char *ca, const char *cert, const char *key,
                   const char *keypass, const char *path, char *out, size_t size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, ca, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (keypass)
        SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)keypass);
    if (cert && (SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
                 SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return -2;
    }
    int fd = connect_to(port);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "localhost");
    SSL_set_tlsext_host_name(ssl, "localhost");
    int status = -1;
    if (SSL_connect(ssl) == 1) {
        char req[256];
        int n = snprintf(req, sizeof req,
                         "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
        if (SSL_write(ssl, req, n) == n) {
            size_t got = 0;
            int r;
            while (got + 1 < size && (r = SSL_read(ssl, out + got, (int)(size - 1 - got))) > 0)
                got += (size_t)r;
            out[got] = '\0';
            status = 0;
            sscanf(out, "HTTP/1.%*d %d", &status);
        }
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    return status;
}

static void test_tls(void)
{
    const char *src = getenv("KB_SOURCE_DIR");
    char cmd[4096], pki[300];
    snprintf(pki, sizeof pki, "%s/pki", dir);
    snprintf(cmd, sizeof cmd,
             "P=%s/tests/kafka/secure/pki.sh; $P ca %s && $P broker %s && $P client %s admin && "
             "$P other-ca %s other && cp %s/admin.key %s/admin2.key >/dev/null",
             src ? src : ".", pki, pki, pki, pki, pki, pki);
    if (!src || system(cmd) != 0) {
        fprintf(stderr, "SKIP tls: no KB_SOURCE_DIR or openssl\n");
        return;
    }
    char ca[400], crt[400], key[400], bkey[400], bcrt[400], kp[400], pass[128] = "";
    snprintf(ca, sizeof ca, "%s/ca.pem", pki);
    snprintf(crt, sizeof crt, "%s/admin.crt", pki);
    snprintf(key, sizeof key, "%s/admin.key", pki);
    snprintf(bcrt, sizeof bcrt, "%s/broker.crt", pki);
    snprintf(bkey, sizeof bkey, "%s/broker.key", pki);
    snprintf(kp, sizeof kp, "%s/admin.keypass", pki);
    FILE *f = fopen(kp, "r");
    if (f) {
        if (!fgets(pass, sizeof pass, f))
            pass[0] = '\0';
        fclose(f);
    }
    pass[strcspn(pass, "\n")] = '\0';
    /* a self-signed client certificate from another CA */
    char ocrt[400], okey[400];
    snprintf(ocrt, sizeof ocrt, "%s/other.pem", pki);
    snprintf(okey, sizeof okey, "%s/other.key", pki);

    char errstr[256], out[4096];
    struct kb_http_opts o = {.tls_cert_file = bcrt,
                             .tls_key_file = bkey,
                             .tls_client_ca_file = ca,
                             .public_prefixes = "/metrics",
                             .auth_fail_max = 2,
                             .auth_fail_window_s = 60};
    kb_http_t *h = kb_http_new(&o, errstr, sizeof errstr);
    CHECK(h != NULL);
    kb_http_route(h, "*", "/", on_any, NULL);
    CHECK_INT(kb_http_start(h, errstr, sizeof errstr), KB_OK);
    uint16_t port = kb_http_port(h);

    CHECK_INT(tls_get(port, ca, crt, key, pass, "/subjects", out, sizeof out), 200);
    CHECK(strstr(out, "auth=client-cert") != NULL);
    CHECK_INT(tls_get(port, ca, NULL, NULL, NULL, "/subjects", out, sizeof out), 401);
    CHECK_INT(tls_get(port, ca, NULL, NULL, NULL, "/metrics", out, sizeof out), 200);
    /* locked out by failures from this address, a verified certificate still
     * passes: it cannot be guessed, and behind a proxy every client shares
     * the address */
    CHECK_INT(tls_get(port, ca, NULL, NULL, NULL, "/subjects", out, sizeof out), 401);
    CHECK_INT(tls_get(port, ca, NULL, NULL, NULL, "/subjects", out, sizeof out), 429);
    CHECK_INT(tls_get(port, ca, crt, key, pass, "/subjects", out, sizeof out), 200);
    CHECK(strstr(out, "auth=client-cert") != NULL);
    /* a certificate from another CA: the server aborts the handshake (with
     * TLS 1.3 the client learns it only when reading): no HTTP answer */
    out[0] = '\0';
    CHECK(tls_get(port, ca, ocrt, okey, NULL, "/subjects", out, sizeof out) <= 0);
    CHECK(strstr(out, "auth=") == NULL);
    /* the client refuses a server it cannot verify (wrong CA on its side) */
    CHECK_INT(tls_get(port, ocrt, crt, key, pass, "/metrics", out, sizeof out), -1);
    /* plain HTTP to the HTTPS port gets no HTTP answer */
    CHECK(get(port, "/metrics", NULL, out, sizeof out) <= 0);
    kb_http_destroy(h);
}

int main(void)
{
    /* SSL_write to a server that aborted the handshake must fail, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_token();
    test_no_auth_configured();
    test_browser_guard();
    test_tls();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    KB_TEST_DONE();
}
