/* SPDX-License-Identifier: EUPL-1.2 */
/* test_registry.c - the schema registry against librdkafka's mock cluster:
 * every REST endpoint with its status codes and Confluent error bodies, ids
 * honoured from kb.schemaId, ids stable across a restart, two instances that
 * agree, and concurrent registrations on two instances resolved by the log. */
#include <pthread.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kb_test.h"
#include "ketenbus/registry.h"
#include "ketenbus/schema.h"

#define S1 "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"
#define S2                                                                               \
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}," \
    "{\"name\":\"b\",\"type\":\"string\",\"default\":\"x\"}]}"
#define S_BAD_COMPAT                                                                     \
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}," \
    "{\"name\":\"c\",\"type\":\"string\"}]}"
#define S_KB                                                                             \
    "{\"type\":\"record\",\"name\":\"E\",\"kb.eventType\":\"t.e\",\"kb.schemaId\":1001," \
    "\"fields\":[{\"name\":\"x\",\"type\":\"string\"}]}"

static char base[64];

/* POST/GET @p path; returns the status, body parsed into *out (caller decrefs). */
static int call(const char *method, const char *path, const char *schema, json_t **out)
{
    char url[512], err[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    char *body = NULL;
    if (schema) {
        json_t *b = json_pack("{s:s}", "schema", schema);
        body = json_dumps(b, JSON_COMPACT);
        json_decref(b);
    }
    struct kb_http_response r;
    kb_err_t e = kb_http_fetch(method, url, "application/vnd.schemaregistry.v1+json", body,
                               body ? strlen(body) : 0, 20000, &r, err, sizeof err);
    free(body);
    if (e) {
        fprintf(stderr, "%s %s: %s\n", method, path, err);
        return -1;
    }
    if (out)
        *out = json_loads(r.body, JSON_DECODE_ANY, NULL);
    int status = r.status;
    kb_http_response_fini(&r);
    return status;
}

static int call_raw(const char *method, const char *path, const char *body, json_t **out)
{
    char url[512], err[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct kb_http_response r;
    if (kb_http_fetch(method, url, "application/json", body, strlen(body), 20000, &r, err,
                      sizeof err))
        return -1;
    if (out)
        *out = json_loads(r.body, JSON_DECODE_ANY, NULL);
    int status = r.status;
    kb_http_response_fini(&r);
    return status;
}

static void expect_error(const char *method, const char *path, const char *schema, int status,
                         int code)
{
    json_t *j = NULL;
    int st = call(method, path, schema, &j);
    if (st != status)
        fprintf(stderr, "%s %s: status %d, expected %d\n", method, path, st, status);
    CHECK_INT(st, status);
    CHECK_INT(json_integer_value(json_object_get(j, "error_code")), code);
    CHECK(json_is_string(json_object_get(j, "message")));
    json_decref(j);
}

static int register_schema(const char *subject, const char *schema)
{
    char path[256];
    snprintf(path, sizeof path, "/subjects/%s/versions", subject);
    json_t *j = NULL;
    int st = call("POST", path, schema, &j);
    int id = st == 200 ? (int)json_integer_value(json_object_get(j, "id")) : -st;
    json_decref(j);
    return id;
}

static kb_registry_t *open_registry(const struct kb_kafka_opts *ko)
{
    char err[512];
    struct kb_registry_opts o = {.kafka = ko, .timeout_ms = 10000};
    kb_registry_t *r = kb_registry_new(&o, err, sizeof err);
    if (!r)
        fprintf(stderr, "registry: %s\n", err);
    return r;
}

static char *snapshot(kb_registry_t *r)
{
    return kb_registry_dump(r);
}

struct racer {
    kb_registry_t *r;
    const char *schema;
    int32_t id;
    int version;
    kb_err_t err;
};

static void *race(void *arg)
{
    struct racer *x = arg;
    struct kb_registry_status st;
    x->err = kb_registry_register(x->r, "race", x->schema, 0, &x->id, &x->version, &st);
    return NULL;
}

int main(void)
{
    char err[512];
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 1);
    CHECK(mc != NULL);
    setenv("KETENBUS_TOPIC_PREFIX", "regtest", 1);
    /* the mock cluster has no CreateTopics: make the topic the registry would */
    rd_kafka_mock_topic_create(mc, "regtest.schemas", 1, 1);
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    snprintf(ko.bootstrap, sizeof ko.bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mc));

    kb_registry_t *r = open_registry(&ko);
    CHECK(r != NULL);
    if (!r)
        KB_TEST_DONE();
    kb_http_t *h = kb_http_new(NULL, err, sizeof err);
    CHECK_INT(kb_registry_routes(r, h), KB_OK);
    CHECK_INT(kb_http_start(h, err, sizeof err), KB_OK);
    snprintf(base, sizeof base, "http://127.0.0.1:%u", (unsigned)kb_http_port(h));

    json_t *j = NULL;
    CHECK_INT(call("GET", "/subjects", NULL, &j), 200);
    CHECK(json_is_array(j) && json_array_size(j) == 0);
    json_decref(j);

    /* register: auto ids above 100000, idempotent, kb.schemaId honoured */
    CHECK_INT(register_schema("a", S1), 100001);
    CHECK_INT(register_schema("a", S1), 100001);
    CHECK_INT(register_schema("t.e", S_KB), 1001);
    /* whitespace and key order do not make a new schema */
    CHECK_INT(register_schema("a", "{ \"fields\": [{\"type\":\"int\",\"name\":\"a\"}], "
                                   "\"name\":\"R\", \"type\":\"record\" }"),
              100001);
    /* default level BACKWARD_TRANSITIVE: a new required field is refused */
    expect_error("POST", "/subjects/a/versions", S_BAD_COMPAT, 409, 409);
    expect_error("POST", "/subjects/a/versions", "{\"type\":\"recrd\"}", 422, 42201);
    expect_error("POST", "/subjects/a/versions", "{not json", 422, 42201);
    CHECK_INT(call_raw("POST", "/subjects/a/versions",
                       "{\"schema\":\"\\\"int\\\"\",\"schemaType\":\"PROTOBUF\"}", &j),
              422);
    CHECK_INT(json_integer_value(json_object_get(j, "error_code")), 42201);
    json_decref(j);
    CHECK_INT(register_schema("a", S2), 100002);
    /* the same schema in another subject keeps its id */
    CHECK_INT(register_schema("b", S1), 100001);
    /* an explicit id that names another schema */
    CHECK_INT(call_raw("POST", "/subjects/c/versions",
                       "{\"schema\":\"{\\\"type\\\":\\\"enum\\\",\\\"name\\\":\\\"X\\\","
                       "\\\"symbols\\\":[\\\"A\\\"]}\",\"id\":1001}",
                       &j),
              422);
    CHECK_INT(json_integer_value(json_object_get(j, "error_code")), 42205);
    json_decref(j);
    CHECK_INT(call_raw("POST", "/subjects/c/versions",
                       "{\"schema\":\"{\\\"type\\\":\\\"enum\\\",\\\"name\\\":\\\"X\\\","
                       "\\\"symbols\\\":[\\\"A\\\"]}\",\"id\":1050}",
                       &j),
              200);
    CHECK_INT(json_integer_value(json_object_get(j, "id")), 1050);
    json_decref(j);

    /* subjects and versions */
    CHECK_INT(call("GET", "/subjects", NULL, &j), 200);
    CHECK_INT(json_array_size(j), 4);
    json_decref(j);
    CHECK_INT(call("GET", "/subjects/a/versions", NULL, &j), 200);
    json_t *want = json_pack("[i,i]", 1, 2);
    CHECK(json_equal(j, want) == 1);
    json_decref(want);
    json_decref(j);
    CHECK_INT(call("GET", "/subjects/a/versions/latest", NULL, &j), 200);
    CHECK_INT(json_integer_value(json_object_get(j, "version")), 2);
    CHECK_INT(json_integer_value(json_object_get(j, "id")), 100002);
    CHECK_STR(json_string_value(json_object_get(j, "subject")), "a");
    CHECK_STR(json_string_value(json_object_get(j, "schema")), S2);
    json_decref(j);
    CHECK_INT(call("GET", "/subjects/a/versions/1", NULL, &j), 200);
    CHECK_INT(json_integer_value(json_object_get(j, "id")), 100001);
    json_decref(j);
    CHECK_INT(call("GET", "/subjects/a/versions/-1", NULL, &j), 200);
    CHECK_INT(json_integer_value(json_object_get(j, "version")), 2);
    json_decref(j);
    CHECK_INT(call("GET", "/subjects/a/versions/1/schema", NULL, &j), 200);
    CHECK_STR(json_string_value(json_object_get(j, "type")), "record");
    json_decref(j);
    expect_error("GET", "/subjects/a/versions/3", NULL, 404, 40402);
    expect_error("GET", "/subjects/a/versions/abc", NULL, 422, 42202);
    expect_error("GET", "/subjects/a/versions/0", NULL, 422, 42202);
    expect_error("GET", "/subjects/nope/versions", NULL, 404, 40401);
    expect_error("GET", "/subjects/nope/versions/1", NULL, 404, 40401);

    /* schemas by id */
    CHECK_INT(call("GET", "/schemas/ids/100001", NULL, &j), 200);
    CHECK_STR(json_string_value(json_object_get(j, "schema")), S1);
    json_decref(j);
    CHECK_INT(call("GET", "/schemas/ids/1001", NULL, &j), 200);
    CHECK_STR(json_string_value(json_object_get(j, "schema")), S_KB);
    json_decref(j);
    expect_error("GET", "/schemas/ids/999", NULL, 404, 40403);
    expect_error("GET", "/schemas/ids/x", NULL, 404, 40403);
    CHECK_INT(call("GET", "/schemas/ids/100001/versions", NULL, &j), 200);
    CHECK_INT(json_array_size(j), 2); /* a/1 and b/1 */
    json_decref(j);
    CHECK_INT(call("GET", "/schemas/types", NULL, &j), 200);
    CHECK_STR(json_string_value(json_array_get(j, 0)), "AVRO");
    json_decref(j);

    /* lookup */
    CHECK_INT(call("POST", "/subjects/a", S1, &j), 200);
    CHECK_INT(json_integer_value(json_object_get(j, "version")), 1);
    CHECK_INT(json_integer_value(json_object_get(j, "id")), 100001);
    json_decref(j);
    expect_error("POST", "/subjects/a", S_BAD_COMPAT, 404, 40403);
    expect_error("POST", "/subjects/nope", S1, 404, 40401);
    expect_error("POST", "/subjects/a", "{\"type\":1}", 422, 42201);

    /* compatibility endpoint */
    CHECK_INT(
        call("POST", "/compatibility/subjects/a/versions/latest?verbose=true", S_BAD_COMPAT, &j),
        200);
    CHECK(json_is_false(json_object_get(j, "is_compatible")));
    CHECK(strstr(json_string_value(json_array_get(json_object_get(j, "messages"), 0)),
                 "/fields/c") != NULL);
    json_decref(j);
    CHECK_INT(call("POST", "/compatibility/subjects/a/versions/1", S2, &j), 200);
    CHECK(json_is_true(json_object_get(j, "is_compatible")));
    CHECK(json_object_get(j, "messages") == NULL);
    json_decref(j);
    expect_error("POST", "/compatibility/subjects/nope/versions/latest", S1, 404, 40401);
    expect_error("POST", "/compatibility/subjects/a/versions/9", S1, 404, 40402);
    expect_error("POST", "/compatibility/subjects/a/versions/x", S1, 422, 42202);
    expect_error("POST", "/compatibility/subjects/a/versions/1", "[", 422, 42201);

    /* config */
    CHECK_INT(call("GET", "/config", NULL, &j), 200);
    CHECK_STR(json_string_value(json_object_get(j, "compatibilityLevel")), "BACKWARD_TRANSITIVE");
    json_decref(j);
    expect_error("GET", "/config/a", NULL, 404, 40408);
    CHECK_INT(call("GET", "/config/a?defaultToGlobal=true", NULL, &j), 200);
    CHECK_STR(json_string_value(json_object_get(j, "compatibilityLevel")), "BACKWARD_TRANSITIVE");
    json_decref(j);
    CHECK_INT(call_raw("PUT", "/config/a", "{\"compatibility\":\"FORWARD\"}", &j), 200);
    CHECK_STR(json_string_value(json_object_get(j, "compatibility")), "FORWARD");
    json_decref(j);
    CHECK_INT(call("GET", "/config/a", NULL, &j), 200);
    CHECK_STR(json_string_value(json_object_get(j, "compatibilityLevel")), "FORWARD");
    json_decref(j);
    CHECK_INT(call_raw("PUT", "/config", "{\"compatibility\":\"sideways\"}", &j), 422);
    CHECK_INT(json_integer_value(json_object_get(j, "error_code")), 42203);
    json_decref(j);
    /* FORWARD: adding a required field is fine now (old readers ignore it) */
    CHECK_INT(register_schema("a", S_BAD_COMPAT), 100003);
    CHECK_INT(call_raw("PUT", "/config", "{\"compatibility\":\"NONE\"}", &j), 200);
    json_decref(j);
    CHECK_INT(call("GET", "/config", NULL, &j), 200);
    CHECK_STR(json_string_value(json_object_get(j, "compatibilityLevel")), "NONE");
    json_decref(j);
    /* wrong methods and paths */
    expect_error("DELETE", "/subjects/a", NULL, 405, 405);
    expect_error("GET", "/nothing", NULL, 404, 404);

    /* the schema client backed by this registry: same lookups as the folder */
    kb_schemas_t *set = kb_schemas_open(base, err, sizeof err);
    CHECK(set != NULL);
    if (set) {
        const struct kb_schema *sc = kb_schemas_by_id(set, 1001);
        CHECK(sc != NULL);
        CHECK_STR(sc ? sc->type : NULL, "t.e"); /* from kb.eventType */
        CHECK(sc == kb_schemas_by_type(set, "t.e"));
        sc = kb_schemas_by_type(set, "a"); /* no kb.eventType: the subject; latest */
        CHECK(sc != NULL);
        CHECK_INT(sc ? sc->id : 0, 100003);
        CHECK(kb_schemas_by_id(set, 100001) != NULL); /* an older version stays */
        CHECK(kb_schemas_by_id(set, 4242) == NULL);
        CHECK(kb_schemas_by_id(set, 4242) == NULL); /* negative cache */
        size_t before = kb_schemas_count(set);
        /* registered after loading: fetched on first use */
        CHECK_INT(register_schema("late", "{\"type\":\"record\",\"name\":\"L\",\"fields\":[]}"),
                  100004);
        sc = kb_schemas_by_id(set, 100004);
        CHECK(sc != NULL);
        CHECK_STR(sc ? sc->type : NULL, "late");
        CHECK_INT(kb_schemas_count(set), before + 1);
        /* encode with it, decode with it */
        avro_value_t v;
        avro_generic_value_new(sc->iface, &v);
        uint8_t *enc = NULL;
        size_t enc_len = 0;
        CHECK_INT(kb_schema_encode(sc, &v, &enc, &enc_len, err, sizeof err), KB_OK);
        CHECK_INT(enc_len, 5);
        CHECK_INT(enc[4], 100004 & 0xff);
        avro_value_decref(&v);
        free(enc);
    }
    kb_schemas_destroy(set);
    CHECK(kb_schemas_open("http://127.0.0.1:1", err, sizeof err) == NULL);

    /* a second instance reads the same state; so does a restarted one */
    char *snap1 = snapshot(r);
    kb_registry_t *r2 = open_registry(&ko);
    CHECK(r2 != NULL);
    char *snap2 = snapshot(r2);
    CHECK_STR(snap2, snap1);
    CHECK(strstr(snap1, "\"id\":1001") && strstr(snap1, "\"id\":100003"));
    free(snap2);

    /* concurrent registrations on two instances: distinct versions, both agree */
    int a0_version = 0; /* the version A0 won in round 0 (1 or 2, by the race) */
    for (int round = 0; round < 4; round++) {
        char sa[256], sb[256];
        snprintf(sa, sizeof sa, "{\"type\":\"fixed\",\"name\":\"A%d\",\"size\":%d}", round,
                 round + 1);
        snprintf(sb, sizeof sb, "{\"type\":\"fixed\",\"name\":\"B%d\",\"size\":%d}", round,
                 round + 1);
        struct racer x = {.r = r, .schema = sa}, y = {.r = r2, .schema = sb};
        pthread_t tx, ty;
        pthread_create(&tx, NULL, race, &x);
        pthread_create(&ty, NULL, race, &y);
        pthread_join(tx, NULL);
        pthread_join(ty, NULL);
        CHECK_INT(x.err, KB_OK);
        CHECK_INT(y.err, KB_OK);
        CHECK(x.id != y.id);
        CHECK(x.version != y.version);
        CHECK_INT(x.version + y.version, 4 * round + 3); /* versions 2r+1 and 2r+2 */
        if (round == 0)
            a0_version = x.version;
    }
    snap1 = (free(snap1), snapshot(r));
    snap2 = snapshot(r2);
    CHECK_STR(snap2, snap1);
    free(snap2);

    /* restart: ids and versions survive */
    kb_http_destroy(h);
    kb_registry_destroy(r);
    kb_registry_destroy(r2);
    r = open_registry(&ko);
    CHECK(r != NULL);
    snap2 = snapshot(r);
    CHECK_STR(snap2, snap1);
    free(snap1);
    free(snap2);
    int32_t id = 0;
    int version = 0;
    struct kb_registry_status st;
    CHECK_INT(kb_registry_register(r, "a", S2, 0, &id, &version, &st), KB_OK);
    CHECK_INT(id, 100002);
    CHECK_INT(version, 2);
    CHECK_INT(kb_registry_register(r, "race", "{\"type\":\"fixed\",\"name\":\"A0\",\"size\":1}", 0,
                                   &id, &version, &st),
              KB_OK);
    CHECK_INT(version, a0_version); /* registered again: the version it got in the race */

    kb_registry_destroy(r);
    kb_kafka_opts_fini(&ko);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    KB_TEST_DONE();
}
