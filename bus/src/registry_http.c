/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * registry_http.c - the Confluent Schema Registry REST subset on top of the
 * registry state: /subjects, /schemas/ids, /compatibility, /config, with
 * Confluent's status codes and error bodies ({"error_code", "message"}), so
 * that standard registry clients work against ketenbus unchanged.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ketenbus/http.h"
#include "ketenbus/registry.h"
#include "registry_int.h"

#define CT       "application/vnd.schemaregistry.v1+json"
#define MAX_SEGS 6

static void reply_err(kb_http_req_t *req, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answer an error. The message may echo the client's path, which need not be
 * UTF-8 while the JSON body must be: such bytes become '?'. Always answers. */
static void reply_err(kb_http_req_t *req, int status, int code, const char *fmt, ...)
{
    static const char fallback[] = "{\"error_code\":50001,\"message\":\"out of memory\"}";
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kb__registry_utf8_clean(msg);
    if (kb_http_reply_error(req, status, code, "%s", msg) != KB_OK)
        kb_http_reply(req, 500, "application/json", fallback, sizeof fallback - 1);
}

static void reply_status(kb_http_req_t *req, const struct kb_registry_status *st)
{
    /* A status nobody set is a bug here, not a reason to send garbage. */
    if (st->http_status < 400 || st->http_status > 599)
        reply_err(req, 500, 50001, "internal error");
    else
        reply_err(req, st->http_status, st->error_code, "%s", st->message);
}

static void reply(kb_http_req_t *req, json_t *body)
{
    if (!body)
        reply_err(req, 500, 50001, "out of memory");
    else if (kb_http_reply_json(req, 200, CT, body) != KB_OK)
        reply_err(req, 500, 50001, "out of memory");
}

/* Split "/a/b/c" into segments (in @p buf). Returns the count, -1 when too
 * many or when the path does not fit (a cut could change its meaning). */
static int split(const char *rest, char *buf, size_t buf_size, char **segs)
{
    if ((size_t)snprintf(buf, buf_size, "%s", rest) >= buf_size)
        return -1;
    int n = 0;
    char *p = buf;
    while (*p == '/')
        p++;
    while (*p) {
        if (n == MAX_SEGS)
            return -1;
        segs[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return n;
}

/* Version "latest", "-1" or 1..2^31-1; 0 when invalid. */
static int parse_version(const char *v, const struct kb__reg_subject *s)
{
    if (!strcmp(v, "latest") || !strcmp(v, "-1"))
        return s && s->n ? s->versions[s->n - 1].version : -1;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < 1 || n > INT32_MAX)
        return 0;
    return (int)n;
}

static const struct kb__reg_version *find_version(const struct kb__reg_subject *s, int version)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (s->versions[i].version == version)
            return &s->versions[i];
    return NULL;
}

/* The "schema" member of a request body (with schemaType/references checks). */
static json_t *body_schema(kb_http_req_t *req, const char **schema, struct kb_registry_status *st)
{
    char err[256];
    json_t *body = kb_http_req_json(req, err, sizeof err);
    if (!body) {
        st->http_status = 422;
        st->error_code = 42201;
        snprintf(st->message, sizeof st->message, "Invalid request body: %s", err);
        return NULL;
    }
    const char *type = json_string_value(json_object_get(body, "schemaType"));
    json_t *refs = json_object_get(body, "references");
    *schema = json_string_value(json_object_get(body, "schema"));
    if (!*schema || (type && strcmp(type, "AVRO")) || (refs && json_array_size(refs) > 0)) {
        st->http_status = 422;
        st->error_code = 42201;
        snprintf(st->message, sizeof st->message, "%s",
                 !*schema ? "Invalid schema: the body needs a \"schema\" string"
                 : refs && json_array_size(refs) ? "Invalid schema: references are not supported"
                                                 : "Invalid schema: only AVRO is supported");
        json_decref(body);
        return NULL;
    }
    return body;
}

static void subject_not_found(kb_http_req_t *req, const char *subject)
{
    reply_err(req, 404, 40401, "Subject '%s' not found.", subject);
}

/* Refuse an invalid subject before it is looked up, echoed or logged. */
static int subject_refused(kb_http_req_t *req, const char *subject)
{
    struct kb_registry_status st = {0};
    if (kb__registry_subject_check(subject, &st) == KB_OK)
        return 0;
    reply_status(req, &st);
    return 1;
}

static void version_invalid(kb_http_req_t *req, const char *v)
{
    reply_err(req, 422, 42202,
              "The specified version '%s' is not a valid version id. Allowed values "
              "are between [1, 2^31-1] and the string \"latest\"",
              v);
}

static json_t *version_json(kb_registry_t *r, const char *subject, const struct kb__reg_version *v)
{
    const struct kb__reg_schema *sc = kb__registry_schema(r, v->id);
    return json_pack("{s:s,s:i,s:i,s:s}", "subject", subject, "version", v->version, "id",
                     (int)v->id, "schema", sc ? sc->text : "");
}

/* GET/POST /subjects... */
static void h_subjects(kb_http_req_t *req, void *opaque)
{
    kb_registry_t *r = opaque;
    const char *method = kb_http_req_method(req);
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int is_post = !strcmp(method, "POST");
    char buf[1024], *seg[MAX_SEGS];
    int n = split(kb_http_req_rest(req), buf, sizeof buf, seg);
    struct kb_registry_status st = {0};
    if (n >= 1 && subject_refused(req, seg[0]))
        return;

    if (n == 2 && is_post && !strcmp(seg[1], "versions")) { /* register: outside the lock */
        const char *schema = NULL;
        json_t *body = body_schema(req, &schema, &st);
        if (!body) {
            reply_status(req, &st);
            return;
        }
        json_t *jid = json_object_get(body, "id");
        int32_t want = json_is_integer(jid) && json_integer_value(jid) > 0 &&
                               json_integer_value(jid) <= INT32_MAX
                           ? (int32_t)json_integer_value(jid)
                           : 0;
        int32_t id = 0;
        int version = 0;
        kb_err_t err = kb_registry_register(r, seg[0], schema, want, &id, &version, &st);
        json_decref(body);
        if (err)
            reply_status(req, &st);
        else
            reply(req, json_pack("{s:i}", "id", (int)id));
        return;
    }

    pthread_mutex_lock(&r->mu);
    if (kb__registry_sync(r, &st) != KB_OK) {
        reply_status(req, &st);
        goto out_unlock;
    }
    if (n == 0 && is_get) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < r->nsubjects; i++)
            if (r->subjects[i].n)
                json_array_append_new(arr, json_string(r->subjects[i].name));
        reply(req, arr);
        goto out_unlock;
    }
    if (n < 1 || n > 4) {
        reply_err(req, 404, 404, "HTTP 404 Not Found");
        goto out_unlock;
    }
    const struct kb__reg_subject *s = kb__registry_subject(r, seg[0]);
    if (!s || !s->n) {
        /* lookups in an unknown subject: 40401 for every endpoint below */
        if ((n == 1 && is_post) || (n >= 2 && !strcmp(seg[1], "versions")))
            subject_not_found(req, seg[0]);
        else
            reply_err(req, 404, 404, "HTTP 404 Not Found");
        goto out_unlock;
    }
    if (n == 1 && is_post) { /* lookup: is this schema in the subject? */
        const char *schema = NULL;
        json_t *body = body_schema(req, &schema, &st);
        if (!body) {
            reply_status(req, &st);
            goto out_unlock;
        }
        kb_avsc_t *a = NULL;
        if (kb__registry_validate(schema, &a, &st) != KB_OK) {
            json_decref(body);
            reply_status(req, &st);
            goto out_unlock;
        }
        kb_avsc_destroy(a);
        char *canon = kb__registry_canonical(schema);
        const struct kb__reg_version *found = NULL;
        for (size_t i = 0; canon && i < s->n && !found; i++) {
            const struct kb__reg_schema *sc = kb__registry_schema(r, s->versions[i].id);
            if (sc && !strcmp(sc->canon, canon))
                found = &s->versions[i];
        }
        free(canon);
        json_decref(body);
        if (!found)
            reply_err(req, 404, 40403, "Schema not found");
        else
            reply(req, version_json(r, s->name, found));
        goto out_unlock;
    }
    if (!is_get || strcmp(seg[1], "versions") != 0 || (n == 4 && strcmp(seg[3], "schema") != 0)) {
        reply_err(req, n >= 2 && !strcmp(seg[1], "versions") ? 405 : 404,
                  n >= 2 && !strcmp(seg[1], "versions") ? 405 : 404, "HTTP %d",
                  n >= 2 && !strcmp(seg[1], "versions") ? 405 : 404);
        goto out_unlock;
    }
    if (n == 2) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < s->n; i++)
            json_array_append_new(arr, json_integer(s->versions[i].version));
        reply(req, arr);
        goto out_unlock;
    }
    int v = parse_version(seg[2], s);
    if (v == 0) {
        version_invalid(req, seg[2]);
        goto out_unlock;
    }
    const struct kb__reg_version *ver = find_version(s, v);
    if (!ver) {
        reply_err(req, 404, 40402, "Version %s not found.", seg[2]);
        goto out_unlock;
    }
    if (n == 4) {
        const struct kb__reg_schema *sc = kb__registry_schema(r, ver->id);
        kb_http_reply(req, 200, CT, sc->text, strlen(sc->text));
    } else {
        reply(req, version_json(r, s->name, ver));
    }
out_unlock:
    pthread_mutex_unlock(&r->mu);
}

/* GET /schemas/ids/{id}[/versions], /schemas/types */
static void h_schemas(kb_http_req_t *req, void *opaque)
{
    kb_registry_t *r = opaque;
    char buf[256], *seg[MAX_SEGS];
    int n = split(kb_http_req_rest(req), buf, sizeof buf, seg);
    if (n == 1 && !strcmp(seg[0], "types")) {
        reply(req, json_pack("[s]", "AVRO"));
        return;
    }
    if ((n != 2 && n != 3) || strcmp(seg[0], "ids") || (n == 3 && strcmp(seg[2], "versions"))) {
        reply_err(req, 404, 404, "HTTP 404 Not Found");
        return;
    }
    char *end;
    errno = 0;
    long id = strtol(seg[1], &end, 10);
    if (errno || *end || end == seg[1] || id < 1 || id > INT32_MAX) {
        reply_err(req, 404, 40403, "Schema %s not found", seg[1]);
        return;
    }
    char *text = NULL;
    struct kb_registry_status st = {0};
    if (kb_registry_schema_by_id(r, (int32_t)id, &text, &st) != KB_OK) {
        reply_status(req, &st);
        return;
    }
    if (n == 2) {
        reply(req, json_pack("{s:s}", "schema", text));
        free(text);
        return;
    }
    free(text);
    pthread_mutex_lock(&r->mu);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < r->nsubjects; i++)
        for (size_t k = 0; k < r->subjects[i].n; k++)
            if (r->subjects[i].versions[k].id == id)
                json_array_append_new(arr,
                                      json_pack("{s:s,s:i}", "subject", r->subjects[i].name,
                                                "version", r->subjects[i].versions[k].version));
    pthread_mutex_unlock(&r->mu);
    reply(req, arr);
}

/* POST /compatibility/subjects/{s}/versions/{v} */
static void h_compat(kb_http_req_t *req, void *opaque)
{
    kb_registry_t *r = opaque;
    char buf[1024], *seg[MAX_SEGS];
    int n = split(kb_http_req_rest(req), buf, sizeof buf, seg);
    struct kb_registry_status st = {0};
    if (n != 4 || strcmp(seg[0], "subjects") || strcmp(seg[2], "versions")) {
        reply_err(req, 404, 404, "HTTP 404 Not Found");
        return;
    }
    if (subject_refused(req, seg[1]))
        return;
    const char *schema = NULL;
    json_t *body = body_schema(req, &schema, &st);
    if (!body) {
        reply_status(req, &st);
        return;
    }
    kb_avsc_t *cand = NULL;
    if (kb__registry_validate(schema, &cand, &st) != KB_OK) {
        json_decref(body);
        reply_status(req, &st);
        return;
    }
    json_decref(body);
    pthread_mutex_lock(&r->mu);
    kb_avsc_t **vs = NULL;
    const struct kb__reg_subject *s = NULL;
    if (kb__registry_sync(r, &st) != KB_OK) {
        reply_status(req, &st);
        goto out_unlock;
    }
    s = kb__registry_subject(r, seg[1]);
    if (!s || !s->n) {
        subject_not_found(req, seg[1]);
        goto out_unlock;
    }
    int latest = !strcmp(seg[3], "latest") || !strcmp(seg[3], "-1");
    int v = parse_version(seg[3], s);
    if (v == 0) {
        version_invalid(req, seg[3]);
        goto out_unlock;
    }
    const struct kb__reg_version *ver = find_version(s, v);
    if (!ver) {
        reply_err(req, 404, 40402, "Version %s not found.", seg[3]);
        goto out_unlock;
    }
    if (kb__registry_versions(r, s, &vs, &st) != KB_OK) {
        reply_status(req, &st);
        goto out_unlock;
    }
    enum kb_compat level = kb__registry_level(r, s);
    char why[1024];
    kb_err_t err;
    if (latest) {
        err = kb_compat_check(level, cand, (const kb_avsc_t *const *)vs, s->n, why, sizeof why);
    } else {
        /* one given version: the level's direction(s), not transitive */
        static const enum kb_compat plain[] = {[KB_COMPAT_NONE] = KB_COMPAT_NONE,
                                               [KB_COMPAT_BACKWARD] = KB_COMPAT_BACKWARD,
                                               [KB_COMPAT_BACKWARD_TRANSITIVE] = KB_COMPAT_BACKWARD,
                                               [KB_COMPAT_FORWARD] = KB_COMPAT_FORWARD,
                                               [KB_COMPAT_FORWARD_TRANSITIVE] = KB_COMPAT_FORWARD,
                                               [KB_COMPAT_FULL] = KB_COMPAT_FULL,
                                               [KB_COMPAT_FULL_TRANSITIVE] = KB_COMPAT_FULL};
        size_t idx = (size_t)(ver - s->versions);
        err = kb_compat_check(plain[level], cand, (const kb_avsc_t *const *)&vs[idx], 1, why,
                              sizeof why);
    }
    if (err != KB_OK && err != KB_ERR_SCHEMA) {
        kb__registry_compat_status(&st, err, why);
        reply_status(req, &st);
        goto out_unlock;
    }
    json_t *out = json_pack("{s:b}", "is_compatible", err == KB_OK);
    const char *verbose = kb_http_req_query(req, "verbose");
    if (out && verbose && !strcmp(verbose, "true")) {
        json_t *msgs = json_array();
        if (err)
            json_array_append_new(msgs, json_string(why));
        json_object_set_new(out, "messages", msgs);
    }
    reply(req, out);
out_unlock:
    if (vs)
        kb__registry_versions_free(vs, s->n);
    pthread_mutex_unlock(&r->mu);
    kb_avsc_destroy(cand);
}

/* GET/PUT /config[/{s}] */
static void h_config(kb_http_req_t *req, void *opaque)
{
    kb_registry_t *r = opaque;
    char buf[1024], *seg[MAX_SEGS];
    int n = split(kb_http_req_rest(req), buf, sizeof buf, seg);
    struct kb_registry_status st = {0};
    if (n < 0 || n > 1) { /* n < 0 must not fall through to the global level */
        reply_err(req, 404, 404, "HTTP 404 Not Found");
        return;
    }
    const char *subject = n == 1 ? seg[0] : NULL;
    if (subject && subject_refused(req, subject))
        return;
    int is_put = !strcmp(kb_http_req_method(req), "PUT");
    enum kb_compat level = KB_COMPAT_DEFAULT;
    if (is_put) {
        char err[256];
        json_t *body = kb_http_req_json(req, err, sizeof err);
        const char *name = json_string_value(json_object_get(body, "compatibility"));
        if (!name || kb_compat_parse(name, &level) != KB_OK) {
            json_decref(body);
            reply_err(req, 422, 42203, "Invalid compatibility level");
            return;
        }
        json_decref(body);
    }
    pthread_mutex_lock(&r->mu);
    if (kb__registry_sync(r, &st) != KB_OK) {
        reply_status(req, &st);
        goto out_unlock;
    }
    if (is_put) {
        if (kb__registry_set_config(r, subject, level, &st) != KB_OK)
            reply_status(req, &st);
        else
            reply(req, json_pack("{s:s}", "compatibility", kb_compat_name(level)));
        goto out_unlock;
    }
    const struct kb__reg_subject *s = subject ? kb__registry_subject(r, subject) : NULL;
    const char *dflt = kb_http_req_query(req, "defaultToGlobal");
    if (subject && (!s || !s->has_compat) && !(dflt && !strcmp(dflt, "true"))) {
        reply_err(req, 404, 40408,
                  "Subject '%s' does not have subject-level compatibility configured", subject);
        goto out_unlock;
    }
    reply(req, json_pack("{s:s}", "compatibilityLevel", kb_compat_name(kb__registry_level(r, s))));
out_unlock:
    pthread_mutex_unlock(&r->mu);
}

kb_err_t kb_registry_routes(kb_registry_t *r, kb_http_t *h)
{
    kb_err_t err;
    if ((err = kb_http_route(h, "GET", "/subjects", h_subjects, r)) ||
        (err = kb_http_route(h, "POST", "/subjects", h_subjects, r)) ||
        (err = kb_http_route(h, "GET", "/schemas", h_schemas, r)) ||
        (err = kb_http_route(h, "POST", "/compatibility", h_compat, r)) ||
        (err = kb_http_route(h, "GET", "/config", h_config, r)) ||
        (err = kb_http_route(h, "PUT", "/config", h_config, r)))
        return err;
    return KB_OK;
}
