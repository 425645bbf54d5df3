/* SPDX-License-Identifier: EUPL-1.2 */
/* test_registry_hostile.c - the schema registry against hostile input, on
 * librdkafka's mock cluster: subjects that are not valid UTF-8 or hold
 * control characters get a clear 422 (never an uninitialised status or no
 * answer), explicit ids in or near the projection range cannot make the
 * automatic ids overflow or drift into that range, garbage records on the
 * schemas topic change nothing (and are logged by offset only, the same way
 * on every instance), an explicit default level NONE is honoured, and
 * schemas built to make the compatibility check exponential or huge are
 * answered quickly. */
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kb_test.h"
#include "test_schema_gen.h"
#include "ketenbus/registry.h"
#include "registry_int.h"

#define S1 "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"
#define S3 "{\"type\":\"record\",\"name\":\"Q\",\"fields\":[{\"name\":\"q\",\"type\":\"int\"}]}"
#define S4 "{\"type\":\"record\",\"name\":\"Q4\",\"fields\":[{\"name\":\"q\",\"type\":\"int\"}]}"
#define S5 "{\"type\":\"enum\",\"name\":\"E5\",\"symbols\":[\"A\"]}"
#define S6 "{\"type\":\"enum\",\"name\":\"E6\",\"symbols\":[\"A\"]}"
#define S7 "{\"type\":\"enum\",\"name\":\"E7\",\"symbols\":[\"A\"]}"
#define S8 "{\"type\":\"enum\",\"name\":\"E8\",\"symbols\":[\"A\"]}"

static char base[64];
static rd_kafka_mock_cluster_t *mc;
static struct kb_kafka_opts ko;

/* @p method @p path with raw @p body; status, body parsed into *out (caller decrefs). */
static int call(const char *method, const char *path, const char *body, json_t **out)
{
    char url[2048], err[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct kb_http_response r;
    if (kb_http_fetch(method, url, "application/json", body, body ? strlen(body) : 0, 20000, &r,
                      err, sizeof err)) {
        fprintf(stderr, "%s %s: %s\n", method, path, err);
        return -1;
    }
    if (out)
        *out = json_loads(r.body ? r.body : "", JSON_DECODE_ANY, NULL);
    int status = r.status;
    kb_http_response_fini(&r);
    return status;
}

/* {"schema": @p schema} plus , @p extra inside the object (may be ""). */
static char *body_of(const char *schema, const char *extra)
{
    json_t *s = json_string(schema);
    char *enc = json_dumps(s, JSON_ENCODE_ANY);
    json_decref(s);
    size_t n = strlen(enc) + strlen(extra) + 32;
    char *b = malloc(n);
    snprintf(b, n, "{\"schema\":%s%s}", enc, extra);
    free(enc);
    return b;
}

/* The status and error_code of a request; the body must be a JSON error. */
static void expect(const char *method, const char *path, const char *body, int status, int code)
{
    json_t *j = NULL;
    int st = call(method, path, body, &j);
    if (st != status)
        fprintf(stderr, "%s %s: status %d, expected %d\n", method, path, st, status);
    CHECK_INT(st, status);
    CHECK_INT(json_integer_value(json_object_get(j, "error_code")), code);
    CHECK(json_is_string(json_object_get(j, "message")));
    json_decref(j);
}

static kb_registry_t *open_registry(const char *prefix, enum kb_compat level)
{
    char topic[128], err[512];
    setenv("KETENBUS_TOPIC_PREFIX", prefix, 1);
    snprintf(topic, sizeof topic, "%s.schemas", prefix);
    rd_kafka_mock_topic_create(mc, topic, 1, 1); /* no CreateTopics in the mock */
    struct kb_registry_opts o = {.kafka = &ko, .timeout_ms = 10000, .default_compat = level};
    kb_registry_t *r = kb_registry_new(&o, err, sizeof err);
    if (!r)
        fprintf(stderr, "registry: %s\n", err);
    return r;
}

static void put(rd_kafka_t *p, const char *topic, const char *k, const char *v)
{
    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                      RD_KAFKA_V_KEY(k, strlen(k)), RD_KAFKA_V_VALUE((void *)v, v ? strlen(v) : 0),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_flush(p, 5000);
}

/* Run kb_registry_new with stderr caught in @p log (NUL-terminated). */
static kb_registry_t *open_logged(const char *prefix, char *log, size_t log_size)
{
    char path[] = "/tmp/kb-test-reglog-XXXXXX";
    int fd = mkstemp(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    kb_registry_t *r = open_registry(prefix, KB_COMPAT_DEFAULT);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, log, log_size - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return r;
}

static void subjects_and_status(kb_registry_t *r)
{
    /* The API: a status full of garbage comes back set, message terminated. */
    struct kb_registry_status st;
    int32_t id = 0;
    int ver = 0;
    memset(&st, 0x41, sizeof st);
    CHECK_INT(kb_registry_register(r, "bad\xff", S1, 0, &id, &ver, &st), KB_ERR_INVALID);
    CHECK_INT(st.http_status, 422);
    CHECK_INT(st.error_code, 42201);
    CHECK(memchr(st.message, '\0', sizeof st.message) != NULL);
    CHECK(strstr(st.message, "UTF-8") != NULL);
    memset(&st, 0x41, sizeof st);
    CHECK(kb_registry_register(r, "line\nbreak", S1, 0, &id, &ver, &st) != KB_OK);
    CHECK_INT(st.http_status, 422);
    CHECK(strstr(st.message, "control character") != NULL);
    memset(&st, 0x41, sizeof st);
    CHECK(kb_registry_register_derived(r, "d\xc2\x85", S1, 0x40000001, &ver, &st) != KB_OK);
    CHECK_INT(st.http_status, 422); /* U+0085 (NEL) is a control character too */
    memset(&st, 0x41, sizeof st);
    pthread_mutex_lock(&r->mu);
    CHECK(kb__registry_set_config(r, "c\x7f", KB_COMPAT_NONE, &st) != KB_OK);
    pthread_mutex_unlock(&r->mu);
    CHECK_INT(st.http_status, 422);
    char longname[300];
    memset(longname, 'x', 256);
    longname[256] = '\0';
    memset(&st, 0x41, sizeof st);
    CHECK(kb_registry_register(r, longname, S1, 0, &id, &ver, &st) != KB_OK);
    CHECK_INT(st.http_status, 422);
    longname[255] = '\0'; /* 255 bytes is allowed */
    CHECK_INT(kb_registry_register(r, longname, S1, 0, &id, &ver, &st), KB_OK);
    /* multi-byte UTF-8 is fine */
    CHECK_INT(kb_registry_register(r, "geboorte-\xc3\xa9v\xc3\xa9nement", S1, 0, &id, &ver, &st),
              KB_OK);

    /* REST: every endpoint answers 422 with a JSON error, none hangs or 500s */
    char *b1 = body_of(S1, "");
    expect("POST", "/subjects/x%FF/versions", b1, 422, 42201);
    expect("POST", "/subjects/x%FF", b1, 422, 42201);
    expect("GET", "/subjects/x%FF/versions", NULL, 422, 42201);
    expect("GET", "/subjects/x%C0%80/versions/1", NULL, 422, 42201); /* overlong NUL */
    expect("POST", "/compatibility/subjects/x%FF/versions/latest", b1, 422, 42201);
    expect("PUT", "/config/y%FF", "{\"compatibility\":\"NONE\"}", 422, 42201);
    expect("GET", "/config/y%FF", NULL, 422, 42201);
    /* a forged log line in a subject is refused, not registered */
    expect("POST",
           "/subjects/ok%0Ats=2026-01-01T00:00:00Z%20level=error%20comp=audit%20msg=%22x%22"
           "/versions",
           b1, 422, 42201);
    expect("POST", "/subjects/tab%09/versions", b1, 422, 42201);
    /* a version segment that is not UTF-8 is echoed safely */
    CHECK_INT(call("POST", "/subjects/s1/versions", b1, NULL), 200);
    expect("GET", "/subjects/s1/versions/%FF", NULL, 422, 42202);
    expect("POST", "/compatibility/subjects/s1/versions/%FF", b1, 422, 42202);
    /* a path too long to split is not found, and never the global config */
    char path[1400];
    int o = snprintf(path, sizeof path, "/config/");
    memset(path + o, 'z', 1200);
    path[o + 1200] = '\0';
    expect("PUT", path, "{\"compatibility\":\"NONE\"}", 404, 404);
    json_t *j = NULL;
    CHECK_INT(call("GET", "/config", NULL, &j), 200);
    CHECK_STR(json_string_value(json_object_get(j, "compatibilityLevel")), "BACKWARD_TRANSITIVE");
    json_decref(j);
    CHECK_INT(call("GET", "/subjects", NULL, &j), 200);
    CHECK_INT(json_array_size(j), 3); /* the long one, the accented one, s1 */
    json_decref(j);
    free(b1);
}

static void ids(kb_registry_t *r)
{
    struct kb_registry_status st;
    int32_t id = 0;
    int ver = 0;
    /* a projection's id does not drag the automatic ids into its range */
    CHECK_INT(kb_registry_register_derived(r, "kb.out.x-Q", S3, 0x40012345, &ver, &st), KB_OK);
    CHECK_INT(kb_registry_register(r, "plain", S4, 0, &id, &ver, &st), KB_OK);
    CHECK(id > 100000 && id < 0x40000000);
    int32_t first_auto = id;
    /* explicit ids from 0x40000000 up: only through register_derived */
    CHECK_INT(kb_registry_register(r, "p2", S5, 0x40000001, &id, &ver, &st), KB_ERR_RANGE);
    CHECK_INT(st.http_status, 422);
    CHECK_INT(st.error_code, 42205);
    char *b = body_of(S5, ",\"id\":2147483647");
    expect("POST", "/subjects/big/versions", b, 422, 42205);
    free(b);
    char kbid[256];
    snprintf(kbid, sizeof kbid,
             "{\"type\":\"enum\",\"name\":\"E9\",\"kb.schemaId\":%d,\"symbols\":[\"A\"]}",
             0x40000002);
    CHECK_INT(kb_registry_register(r, "p3", kbid, 0, &id, &ver, &st), KB_ERR_RANGE);
    CHECK_INT(st.error_code, 42205);
    /* the next automatic id is still the next one */
    CHECK_INT(kb_registry_register(r, "p4", S5, 0, &id, &ver, &st), KB_OK);
    CHECK_INT(id, first_auto + 1);
    /* the last id below the range: taken explicitly, then no automatic id
     * is left; that is refused clearly, and explicit ids keep working */
    b = body_of(S6, ",\"id\":1073741823");
    json_t *j = NULL;
    CHECK_INT(call("POST", "/subjects/last/versions", b, &j), 200);
    CHECK_INT(json_integer_value(json_object_get(j, "id")), 0x3fffffff);
    json_decref(j);
    free(b);
    b = body_of(S7, "");
    expect("POST", "/subjects/after/versions", b, 422, 42205);
    free(b);
    CHECK_INT(kb_registry_register(r, "after", S7, 555, &id, &ver, &st), KB_OK);
    CHECK_INT(id, 555);
    /* and the derived range still takes projections */
    CHECK_INT(kb_registry_register_derived(r, "kb.out.x-Q", S8, 0x40054321, &ver, &st), KB_OK);
    CHECK_INT(ver, 2);
}

static void garbage(void)
{
    char err[256];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    const char *t = "reggarb.schemas";
    rd_kafka_mock_topic_create(mc, t, 1, 1);
    /* 0: JSON, but not Avro */
    put(p, t, "{\"keytype\":\"SCHEMA\",\"subject\":\"bricked\",\"version\":1,\"magic\":1}",
        "{\"subject\":\"bricked\",\"version\":1,\"id\":100001,\"schema\":\"{\\\"secret\\\":1}\","
        "\"deleted\":false}");
    /* 1: a subject with a newline */
    put(p, t, "{\"keytype\":\"SCHEMA\",\"subject\":\"a\\nb\",\"version\":1,\"magic\":1}",
        "{\"subject\":\"a\\nb\",\"version\":1,\"id\":100002,\"schema\":\"\\\"int\\\"\"}");
    /* 2: key and value disagree */
    put(p, t, "{\"keytype\":\"SCHEMA\",\"subject\":\"k\",\"version\":1,\"magic\":1}",
        "{\"subject\":\"v\",\"version\":1,\"id\":100003,\"schema\":\"\\\"int\\\"\"}");
    /* 3..5: a subject level, then a value that is not JSON, then an unknown level */
    put(p, t, "{\"keytype\":\"CONFIG\",\"subject\":\"s\",\"magic\":0}",
        "{\"compatibilityLevel\":\"NONE\"}");
    put(p, t, "{\"keytype\":\"CONFIG\",\"subject\":\"s\",\"magic\":0}", "not json");
    put(p, t, "{\"keytype\":\"CONFIG\",\"subject\":\"s\",\"magic\":0}",
        "{\"compatibilityLevel\":\"BOGUS\"}");
    /* 6..7: a global level, then a key whose subject is a number */
    put(p, t, "{\"keytype\":\"CONFIG\",\"subject\":null,\"magic\":0}",
        "{\"compatibilityLevel\":\"FULL\"}");
    put(p, t, "{\"keytype\":\"CONFIG\",\"subject\":42,\"magic\":0}",
        "{\"compatibilityLevel\":\"NONE\"}");
    /* 8..9: a level and its tombstone: the one true reset */
    put(p, t, "{\"keytype\":\"CONFIG\",\"subject\":\"u\",\"magic\":0}",
        "{\"compatibilityLevel\":\"FORWARD\"}");
    put(p, t, "{\"keytype\":\"CONFIG\",\"subject\":\"u\",\"magic\":0}", NULL);
    /* 10: a value that is not JSON under a SCHEMA key */
    put(p, t, "{\"keytype\":\"SCHEMA\",\"subject\":\"q\",\"version\":1,\"magic\":1}", "{{");
    rd_kafka_destroy(p);

    char log[16384];
    kb_registry_t *r = open_logged("reggarb", log, sizeof log);
    CHECK(r != NULL);
    if (!r)
        return;
    char *d = kb_registry_dump(r);
    CHECK(d != NULL);
    CHECK(d && !strstr(d, "bricked") && !strstr(d, "secret") && !strstr(d, "100002") &&
          !strstr(d, "100003"));
    /* s keeps NONE, the global level stays FULL, u was reset */
    json_t *j = d ? json_loads(d, 0, NULL) : NULL;
    CHECK_STR(json_string_value(json_object_get(j, "compatibility")), "FULL");
    json_t *subs = json_object_get(j, "subjects");
    CHECK_STR(json_string_value(json_object_get(json_object_get(subs, "s"), "compatibility")),
              "NONE");
    CHECK(!json_is_string(json_object_get(json_object_get(subs, "u"), "compatibility")));
    json_decref(j);
    /* logged by offset, never by content */
    CHECK(strstr(log, "msg=\"record ignored\" offset=0 ") != NULL);
    CHECK(strstr(log, "offset=1 ") && strstr(log, "offset=2 ") && strstr(log, "offset=4 ") &&
          strstr(log, "offset=5 ") && strstr(log, "offset=7 ") && strstr(log, "offset=10 "));
    CHECK(!strstr(log, "offset=3 ") && !strstr(log, "offset=9 "));
    CHECK(!strstr(log, "secret") && !strstr(log, "BOGUS") && !strstr(log, "not json"));
    /* the subject the garbage named is usable */
    struct kb_registry_status st;
    int32_t id = 0;
    int ver = 0;
    CHECK_INT(kb_registry_register(r, "bricked", S1, 0, &id, &ver, &st), KB_OK);
    CHECK_INT(ver, 1);
    /* a second instance judges the log the same way */
    kb_registry_t *r2 = open_logged("reggarb", log, sizeof log);
    char *d1 = kb_registry_dump(r), *d2 = r2 ? kb_registry_dump(r2) : NULL;
    CHECK_STR(d2, d1);
    free(d1);
    free(d2);
    free(d);
    kb_registry_destroy(r2);
    kb_registry_destroy(r);
}

static void default_level(void)
{
    kb_registry_t *r = open_registry("reglevel", KB_COMPAT_NONE);
    char *d = r ? kb_registry_dump(r) : NULL;
    CHECK(d && strstr(d, "\"compatibility\":\"NONE\""));
    free(d);
    kb_registry_destroy(r);
    r = open_registry("reglevel", KB_COMPAT_DEFAULT); /* zero: the design's default */
    d = r ? kb_registry_dump(r) : NULL;
    CHECK(d && strstr(d, "\"compatibility\":\"BACKWARD_TRANSITIVE\""));
    free(d);
    kb_registry_destroy(r);
}

static void costly_checks(void)
{
    /* 64 levels of records that each use the previous one twice: 2^64 paths */
    char *v1 = dag(60, 0, ""), *v2 = dag(60, 0, ",{\"name\":\"z\",\"type\":\"int\",\"default\":0}");
    char *v3 = dag(60, 0, ",{\"name\":\"z2\",\"type\":\"int\"}");
    /* explicit ids: ids() used up the automatic ones */
    char *b1 = body_of(v1, ",\"id\":200001"), *b2 = body_of(v2, ",\"id\":200002");
    char *b3 = body_of(v3, ",\"id\":200003");
    double t0 = kb_test_now_s();
    CHECK_INT(call("POST", "/subjects/deep/versions", b1, NULL), 200);
    json_t *j = NULL;
    CHECK_INT(call("POST", "/compatibility/subjects/deep/versions/latest", b3, &j), 200);
    CHECK(json_is_false(json_object_get(j, "is_compatible")));
    json_decref(j);
    expect("POST", "/subjects/deep/versions", b3, 409, 409);
    CHECK_INT(call("POST", "/subjects/deep/versions", b2, NULL), 200);
    /* Not a timing claim, a guard against the exponential walk coming back:
     * without memoising, depth 24 took 40 s on a quiet machine and memoised
     * under 1 ms; the bound leaves room for a loaded CI machine. */
    double dt = kb_test_now_s() - t0;
    if (dt > 5)
        fprintf(stderr, "deep schemas took %.1f s\n", dt);
    CHECK(dt < 30);
    free(v1);
    free(v2);
    free(v3);
    free(b1);
    free(b2);
    free(b3);

    /* too much work even with every pair remembered: a clear 422, quickly */
    char *w1 = wide(6000, 0), *w2 = wide(6000, 1);
    b1 = body_of(w1, ",\"id\":200004");
    b2 = body_of(w2, ",\"id\":200005");
    CHECK_INT(call("POST", "/subjects/wide/versions", b1, NULL), 200);
    t0 = kb_test_now_s();
    expect("POST", "/subjects/wide/versions", b2, 422, 42201);
    expect("POST", "/compatibility/subjects/wide/versions/latest", b2, 422, 42201);
    dt = kb_test_now_s() - t0;
    if (dt > 10)
        fprintf(stderr, "two refused wide schemas took %.1f s\n", dt);
    CHECK(dt < 60); /* the budget is counted in steps, not seconds: this only catches a hang */
    /* the registry still answers */
    CHECK_INT(call("GET", "/subjects/wide/versions", NULL, NULL), 200);
    free(w1);
    free(w2);
    free(b1);
    free(b2);
}

int main(void)
{
    char err[512];
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof err);
    mc = rd_kafka_mock_cluster_new(mrk, 1);
    CHECK(mc != NULL);
    kb_kafka_opts_init(&ko);
    snprintf(ko.bootstrap, sizeof ko.bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mc));

    kb_registry_t *r = open_registry("reghostile", KB_COMPAT_DEFAULT);
    CHECK(r != NULL);
    if (!r)
        KB_TEST_DONE();
    kb_http_t *h = kb_http_new(NULL, err, sizeof err);
    CHECK_INT(kb_registry_routes(r, h), KB_OK);
    CHECK_INT(kb_http_start(h, err, sizeof err), KB_OK);
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)kb_http_port(h));

    subjects_and_status(r);
    ids(r);
    garbage();
    default_level();
    costly_checks(); /* last: before the fix this part never ends */

    kb_http_destroy(h);
    kb_registry_destroy(r);
    kb_kafka_opts_fini(&ko);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    KB_TEST_DONE();
}
