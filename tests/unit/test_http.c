/* SPDX-License-Identifier: EUPL-1.2 */
/* test_http.c - the embedded HTTP server and client: routing, 404/405/413,
 * request accessors, JSON and error replies, chunked streams fed from another
 * thread, stop with a stream still held, client failures and timeouts. */
#include <pthread.h>
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
    KB_TEST_DONE();
}
