/* SPDX-License-Identifier: EUPL-1.2 */
/* test_http.c - the embedded HTTP server and client: routing, 404/405/413,
 * request accessors, JSON and error replies, chunked streams fed from another
 * thread, stop with a stream still held, deferred replies (given from another
 * thread while the server goes on serving, past the request deadlines, after
 * the client left, around a stop), client failures and timeouts. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/http.h"

static void h_echo(kb_http_req_t *req, void *opaque)
{
    size_t len = 0;
    const char *body = kb_http_req_body(req, &len);
    const char *q = kb_http_req_query(req, "q");
    const char *hdr = kb_http_req_header(req, "x-Test");
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s#,s:s}", "route", (const char *)opaque,
                          "method", kb_http_req_method(req), "path", kb_http_req_path(req), "rest",
                          kb_http_req_rest(req), "q", q, "hdr", hdr, "body", body, len, "x", "y");
    kb_http_reply_header(req, "X-Reply", "1");
    kb_http_reply_json(req, 200, NULL, j);
}

static void h_json(kb_http_req_t *req, void *opaque)
{
    char err[128];
    json_t *j = kb_http_req_json(req, err, sizeof err);
    if (!j) {
        kb_http_reply_error(req, 422, 42201, "bad json: %s", err);
        return;
    }
    kb_http_reply_json(req, 201, "application/vnd.test+json", j);
}

static void h_silent(kb_http_req_t *req, void *opaque)
{
    (void)req;
}

static void h_slow(kb_http_req_t *req, void *opaque)
{
    usleep(1500 * 1000);
    kb_http_reply(req, 200, "text/plain", "late", 4);
}

struct feeder {
    kb_http_stream_t *s;
    pthread_t t;
};

static void *feed(void *arg)
{
    kb_http_stream_t *s = arg;
    for (int i = 0; i < 3; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "data: %d\n\n", i);
        kb_http_stream_send(s, line, (size_t)n);
        usleep(20 * 1000);
    }
    kb_http_stream_end(s);
    return NULL;
}

static void h_stream(kb_http_req_t *req, void *opaque)
{
    kb_http_stream_t *s = kb_http_stream_start(req, 200, "text/event-stream");
    /* a second answer is refused */
    CHECK_INT(kb_http_reply(req, 200, "text/plain", "x", 1), KB_ERR_STATE);
    pthread_t t;
    pthread_create(&t, NULL, feed, s);
    pthread_detach(t);
}

static kb_http_stream_t *held;

static void h_hold(kb_http_req_t *req, void *opaque)
{
    held = kb_http_stream_start(req, 200, "text/event-stream");
    kb_http_stream_send(held, "data: first\n\n", 13);
}

static char base_url[64];

static int get(const char *method, const char *path, const char *body, struct kb_http_response *r)
{
    char url[256], err[256];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    kb_err_t e = kb_http_fetch(method, url, body ? "application/json" : NULL, body,
                               body ? strlen(body) : 0, 5000, r, err, sizeof err);
    if (e != KB_OK)
        fprintf(stderr, "fetch %s: %s\n", path, err);
    return e;
}

static void check_json_field(const char *text, const char *key, const char *want)
{
    json_t *j = json_loads(text, 0, NULL);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, key)), want);
    json_decref(j);
}

static void check_error_code(const char *text, int want)
{
    json_t *j = json_loads(text, 0, NULL);
    CHECK(j != NULL);
    CHECK_INT(json_integer_value(json_object_get(j, "error_code")), want);
    CHECK(json_is_string(json_object_get(j, "message")));
    json_decref(j);
}

/* --- deferred replies --- */

static _Atomic(kb_http_deferred_t *) deferred_held;

static void h_defer(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    kb_http_deferred_t *d = kb_http_defer(req);
    CHECK(d != NULL);
    /* deferring answers the request: no second answer, no 500 for it */
    CHECK(kb_http_defer(req) == NULL);
    CHECK_INT(kb_http_reply(req, 200, "text/plain", "x", 1), KB_ERR_STATE);
    CHECK(kb_http_stream_start(req, 200, "text/plain") == NULL);
    atomic_store(&deferred_held, d);
}

static void h_ok(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    kb_http_reply(req, 200, "text/plain", "ok", 2);
}

/* A Content-Type set as a header first: the reply's own replaces it. */
static void h_ctype(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    kb_http_reply_header(req, "Content-Type", "text/plain");
    kb_http_reply(req, 200, "application/json", "{}", 2);
}

/* The handle the last /defer request left, waiting up to 5 s for it. */
static kb_http_deferred_t *take_deferred(void)
{
    for (int i = 0; i < 500; i++) {
        kb_http_deferred_t *d = atomic_exchange(&deferred_held, NULL);
        if (d)
            return d;
        usleep(10 * 1000);
    }
    return NULL;
}

/* A blocking fetch on a thread of its own. */
struct client {
    char url[128];
    int timeout_ms;
    kb_err_t err;
    struct kb_http_response r;
    pthread_t t;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    char err[256];
    c->err = kb_http_fetch("GET", c->url, NULL, NULL, 0, c->timeout_ms, &c->r, err, sizeof err);
    return NULL;
}

static void client_start(struct client *c, uint16_t port, const char *path, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    c->timeout_ms = timeout_ms;
    pthread_create(&c->t, NULL, client_main, c);
}

/* A reply given on a thread of its own, as the admin's worker does. */
struct replier {
    kb_http_deferred_t *d;
    kb_err_t err;
    pthread_t t;
};

static void *replier_main(void *arg)
{
    struct replier *rp = arg;
    rp->err = kb_http_deferred_reply_json(rp->d, 202, NULL, json_pack("{s:s}", "done", "yes"));
    return NULL;
}

static kb_err_t reply_from_thread(kb_http_deferred_t *d)
{
    struct replier rp = {.d = d};
    pthread_create(&rp.t, NULL, replier_main, &rp);
    pthread_join(rp.t, NULL);
    return rp.err;
}

static int fetch_ok(uint16_t port, double *seconds)
{
    char url[128], err[256];
    struct kb_http_response r;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ok", (unsigned)port);
    double t0 = kb_test_now_s();
    kb_err_t e = kb_http_fetch("GET", url, NULL, NULL, 0, 5000, &r, err, sizeof err);
    if (seconds)
        *seconds = kb_test_now_s() - t0;
    int ok = e == KB_OK && r.status == 200 && r.body && !strcmp(r.body, "ok");
    if (e == KB_OK)
        kb_http_response_fini(&r);
    return ok;
}

/* A running server with /defer and /ok, short deadlines: a deferred reply
 * must outlive both. */
static kb_http_t *defer_server(uint16_t *port)
{
    char err[256];
    struct kb_http_opts opts = {.request_timeout_s = 1, .timeout_s = 1};
    kb_http_t *h = kb_http_new(&opts, err, sizeof err);
    CHECK(h != NULL);
    CHECK_INT(kb_http_route(h, "GET", "/defer", h_defer, NULL), KB_OK);
    CHECK_INT(kb_http_route(h, "GET", "/ok", h_ok, NULL), KB_OK);
    CHECK_INT(kb_http_start(h, err, sizeof err), KB_OK);
    *port = kb_http_port(h);
    return h;
}

static void test_deferred(void)
{
    uint16_t port;
    kb_http_t *h = defer_server(&port);
    struct client c;

    /* A reply from another thread arrives with its status, type and body,
     * and while it is awaited the server answers other requests at once. */
    client_start(&c, port, "/defer", 10000);
    kb_http_deferred_t *d = take_deferred();
    CHECK(d != NULL);
    double took = 99;
    CHECK(fetch_ok(port, &took));
    CHECK(took < 1.0);
    CHECK_INT(kb_http_deferred_open(d), 1);
    usleep(2500 * 1000); /* past request_timeout_s and timeout_s (1 s each) */
    CHECK_INT(reply_from_thread(d), KB_OK);
    pthread_join(c.t, NULL);
    CHECK_INT(c.err, KB_OK);
    CHECK_INT(c.r.status, 202);
    CHECK_STR(c.r.content_type, "application/json");
    CHECK_STR(c.r.body, "{\"done\":\"yes\"}");
    kb_http_response_fini(&c.r);

    /* the error shape, and a plain body with a content type of its own */
    client_start(&c, port, "/defer", 5000);
    d = take_deferred();
    CHECK(d != NULL);
    CHECK_INT(kb_http_deferred_reply_error(d, 502, 50201, "broker %s", "slow"), KB_OK);
    pthread_join(c.t, NULL);
    CHECK_INT(c.err, KB_OK);
    CHECK_INT(c.r.status, 502);
    CHECK_STR(c.r.body, "{\"error_code\":50201,\"message\":\"broker slow\"}");
    kb_http_response_fini(&c.r);
    client_start(&c, port, "/defer", 5000);
    d = take_deferred();
    CHECK(d != NULL);
    CHECK_INT(kb_http_deferred_reply(d, 200, "text/csv", "a,b\n", 4), KB_OK);
    pthread_join(c.t, NULL);
    CHECK_INT(c.err, KB_OK);
    CHECK_STR(c.r.content_type, "text/csv");
    CHECK_STR(c.r.body, "a,b\n");
    kb_http_response_fini(&c.r);

    /* The client gives up before the reply: the reply is dropped, the
     * handle freed (ASan/LSan watch), and the server serves on. */
    client_start(&c, port, "/defer", 300);
    d = take_deferred();
    CHECK(d != NULL);
    pthread_join(c.t, NULL);
    CHECK_INT(c.err, KB_ERR_TIMEOUT);
    CHECK_INT(reply_from_thread(d), KB_OK);
    usleep(100 * 1000);
    CHECK(fetch_ok(port, NULL));
    CHECK(fetch_ok(port, NULL));

    /* A reply given just before a stop: sent or dropped, never both. */
    client_start(&c, port, "/defer", 5000);
    d = take_deferred();
    CHECK(d != NULL);
    CHECK_INT(reply_from_thread(d), KB_OK);
    kb_http_stop(h);
    pthread_join(c.t, NULL);
    if (c.err == KB_OK) {
        CHECK_INT(c.r.status, 202);
        kb_http_response_fini(&c.r);
    }
    kb_http_destroy(h);

    /* Stopped with a deferred reply outstanding: the client is cut off, the
     * handle says closed, and the late reply is dropped and freed. */
    h = defer_server(&port);
    client_start(&c, port, "/defer", 5000);
    d = take_deferred();
    CHECK(d != NULL);
    kb_http_stop(h);
    pthread_join(c.t, NULL);
    CHECK(c.err != KB_OK);
    CHECK_INT(kb_http_deferred_open(d), 0);
    CHECK_INT(kb_http_deferred_reply(d, 200, "text/plain", "late", 4), KB_OK);
    kb_http_destroy(h);

    /* ... also when the server is destroyed before the reply comes. */
    h = defer_server(&port);
    client_start(&c, port, "/defer", 5000);
    d = take_deferred();
    CHECK(d != NULL);
    kb_http_destroy(h);
    pthread_join(c.t, NULL);
    CHECK(c.err != KB_OK);
    CHECK_INT(kb_http_deferred_open(d), 0);
    CHECK_INT(reply_from_thread(d), KB_OK);
}

int main(void)
{
    char err[256];
    struct kb_http_opts opts = {.max_body = 1000};
    kb_http_t *h = kb_http_new(&opts, err, sizeof err);
    CHECK(h != NULL);
    CHECK_INT(kb_http_port(h), 0);
    CHECK_INT(kb_http_route(h, "GET", "/a", h_echo, "get-a"), KB_OK);
    CHECK_INT(kb_http_route(h, "*", "/a/b/", h_echo, "any-ab"), KB_OK);
    CHECK_INT(kb_http_route(h, "POST", "/a/b", h_echo, "post-ab"), KB_OK);
    CHECK_INT(kb_http_route(h, "POST", "/json", h_json, NULL), KB_OK);
    CHECK_INT(kb_http_route(h, "GET", "/silent", h_silent, NULL), KB_OK);
    CHECK_INT(kb_http_route(h, "GET", "/slow", h_slow, NULL), KB_OK);
    CHECK_INT(kb_http_route(h, "GET", "/events", h_stream, NULL), KB_OK);
    CHECK_INT(kb_http_route(h, "GET", "/hold", h_hold, NULL), KB_OK);
    CHECK_INT(kb_http_route(h, "GET", "/ctype", h_ctype, NULL), KB_OK);
    CHECK_INT(kb_http_route(h, "GET", "no-slash", h_echo, NULL), KB_ERR_STATE);
    CHECK_INT(kb_http_start(h, err, sizeof err), KB_OK);
    CHECK(kb_http_port(h) != 0);
    CHECK_INT(kb_http_route(h, "GET", "/late", h_echo, NULL), KB_ERR_STATE);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u", (unsigned)kb_http_port(h));

    /* a second server on the same port fails cleanly */
    struct kb_http_opts same = {.port = kb_http_port(h)};
    kb_http_t *h2 = kb_http_new(&same, err, sizeof err);
    CHECK_INT(kb_http_start(h2, err, sizeof err), KB_ERR_IO);
    kb_http_destroy(h2);

    struct kb_http_response r;
    /* one Content-Type on the wire, the reply's */
    CHECK_INT(get("GET", "/ctype", NULL, &r), KB_OK);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.content_type, "application/json");
    kb_http_response_fini(&r);
    /* routing: prefix at segment boundaries, longest wins, exact method beats "*" */
    CHECK_INT(get("GET", "/a/x%20y?q=hello%20world&q=2", NULL, &r), KB_OK);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.content_type, "application/json");
    check_json_field(r.body, "route", "get-a");
    check_json_field(r.body, "path", "/a/x y");
    check_json_field(r.body, "rest", "/x y");
    check_json_field(r.body, "q", "hello world");
    kb_http_response_fini(&r);
    CHECK_INT(get("GET", "/a/b/c", NULL, &r), KB_OK);
    check_json_field(r.body, "route", "any-ab");
    check_json_field(r.body, "rest", "/c");
    kb_http_response_fini(&r);
    CHECK_INT(get("POST", "/a/b", "{\"k\":1}", &r), KB_OK);
    check_json_field(r.body, "route", "post-ab");
    check_json_field(r.body, "body", "{\"k\":1}");
    check_json_field(r.body, "method", "POST");
    kb_http_response_fini(&r);
    CHECK_INT(get("PUT", "/a", "{}", &r), KB_OK);
    CHECK_INT(r.status, 405);
    check_error_code(r.body, 405);
    kb_http_response_fini(&r);
    CHECK_INT(get("GET", "/ab", NULL, &r), KB_OK);
    CHECK_INT(r.status, 404);
    check_error_code(r.body, 404);
    kb_http_response_fini(&r);
    CHECK_INT(get("GET", "/nothing", NULL, &r), KB_OK);
    CHECK_INT(r.status, 404);
    kb_http_response_fini(&r);

    /* JSON in, JSON out; invalid JSON gets a Confluent-shaped error */
    CHECK_INT(get("POST", "/json", "[1,2,{\"a\":null}]", &r), KB_OK);
    CHECK_INT(r.status, 201);
    CHECK_STR(r.content_type, "application/vnd.test+json");
    CHECK_STR(r.body, "[1,2,{\"a\":null}]");
    kb_http_response_fini(&r);
    CHECK_INT(get("POST", "/json", "{nope", &r), KB_OK);
    CHECK_INT(r.status, 422);
    check_error_code(r.body, 42201);
    kb_http_response_fini(&r);

    /* body limit: 413 before any handler */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(get("POST", "/json", big, &r), KB_OK);
    CHECK_INT(r.status, 413);
    kb_http_response_fini(&r);

    /* a handler that forgets to answer gets a 500 for it */
    CHECK_INT(get("GET", "/silent", NULL, &r), KB_OK);
    CHECK_INT(r.status, 500);
    check_error_code(r.body, 50001);
    kb_http_response_fini(&r);

    /* NUL in the path is refused */
    CHECK_INT(get("GET", "/a/%00x", NULL, &r), KB_OK);
    CHECK_INT(r.status, 400);
    kb_http_response_fini(&r);

    /* chunked stream fed from another thread */
    CHECK_INT(get("GET", "/events", NULL, &r), KB_OK);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.content_type, "text/event-stream");
    CHECK_STR(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    kb_http_response_fini(&r);

    /* client timeout while the server is busy */
    char url[128];
    snprintf(url, sizeof url, "%s/slow", base_url);
    CHECK_INT(kb_http_fetch("GET", url, NULL, NULL, 0, 300, &r, err, sizeof err), KB_ERR_TIMEOUT);
    CHECK(r.body == NULL);
    usleep(1600 * 1000);

    /* a held stream: the client times out, then the server stops; sends fail */
    snprintf(url, sizeof url, "%s/hold", base_url);
    CHECK_INT(kb_http_fetch("GET", url, NULL, NULL, 0, 300, &r, err, sizeof err), KB_ERR_TIMEOUT);
    CHECK(held != NULL);
    kb_http_stop(h);
    CHECK_INT(kb_http_stream_open(held), 0);
    CHECK_INT(kb_http_stream_send(held, "x", 1), KB_ERR_STATE);
    kb_http_stream_end(held);
    kb_http_stop(h); /* idempotent */

    /* client errors: refused connection, bad URLs, unknown method */
    CHECK_INT(kb_http_fetch("GET", base_url, NULL, NULL, 0, 1000, &r, err, sizeof err), KB_ERR_IO);
    CHECK_INT(kb_http_fetch("GET", "https://127.0.0.1/", NULL, NULL, 0, 1000, &r, err, sizeof err),
              KB_ERR_INVALID);
    CHECK_INT(kb_http_fetch("GET", "not a url", NULL, NULL, 0, 1000, &r, err, sizeof err),
              KB_ERR_INVALID);
    CHECK_INT(kb_http_fetch("BREW", "http://127.0.0.1/", NULL, NULL, 0, 1000, &r, err, sizeof err),
              KB_ERR_INVALID);
    kb_http_destroy(h);
    kb_http_destroy(NULL);
    test_deferred();
    KB_TEST_DONE();
}
