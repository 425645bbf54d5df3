/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * schema.c - where schemas come from: the schemas/ folder (every .avsc, ids
 * from "kb.schemaId") or a Confluent-compatible registry URL (ketenbus's own
 * `schema serve` or any other), both indexed by id and by event type. A
 * registry-backed set fetches ids it has not seen on first use.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "ketenbus/event.h"
#include "ketenbus/http.h"
#include "ketenbus/log.h"
#include "ketenbus/schema.h"
#include "ketenbus/validate.h"

#define COMP             "schema"
#define MISS_SLOTS       64 /* ids recently not found in the registry */
#define MISS_RETRY_S     30 /* ... are not asked for again within this time */
#define FETCH_TIMEOUT_MS 5000

struct kb_schemas {
    struct kb_schema **items;    /* all schemas, in load order (pointers stay valid) */
    size_t n;                    /* used entries */
    size_t cap;                  /* allocated entries */
    char *url;                   /* registry base URL, or NULL for a folder */
    pthread_mutex_t mu;          /* guards items/n/cap and the miss cache (lookups
                                  * may add schemas from any thread) */
    int32_t miss_id[MISS_SLOTS]; /* ids the registry did not have */
    time_t miss_at[MISS_SLOTS];  /* when it said so */
    size_t miss_next;            /* next slot to overwrite */
};

/* What kb_schema_validator() made of a schema: published once, then read
 * without a lock. */
struct kb__schema_check {
    kb_validator_t *v; /* NULL: the schema does not compile */
    char why[256];     /* kb_validate_compile()'s reason when v is NULL */
};

/* Serialises compiling: two threads asking for one schema at once must not
 * both publish. Compiling is rare (once per schema), so one lock will do. */
static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER;

static void schema_fini(struct kb_schema *sc)
{
    if (sc->check) {
        kb_validate_destroy(sc->check->v);
        free(sc->check);
    }
    if (sc->iface)
        avro_value_iface_decref(sc->iface);
    if (sc->avro)
        avro_schema_decref(sc->avro);
    free(sc->type);
    free(sc->path);
    free(sc->json);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > 1 << 20) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[st.st_size] = '\0';
        *len = (size_t)st.st_size;
    }
    return buf;
}

static const struct kb_schema *find_id(const kb_schemas_t *s, int32_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i]->id == id)
            return s->items[i];
    return NULL;
}

/* The latest version of @p type: the highest id carrying it. */
static const struct kb_schema *find_type(const kb_schemas_t *s, const char *type)
{
    const struct kb_schema *best = NULL;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i]->type, type) && (!best || s->items[i]->id > best->id))
            best = s->items[i];
    return best;
}

/*
 * Add the schema @p text. @p id 0 takes the id from "kb.schemaId" (then
 * required); @p type NULL takes the type from "kb.eventType" (then
 * required), else "kb.eventType" still wins when present. @p origin names
 * the source in messages and becomes sc->path. Caller holds s->mu (or owns
 * s exclusively).
 */
static kb_err_t add_text(kb_schemas_t *s, const char *text, size_t len, int32_t id,
                         const char *type, const char *origin, char *errstr, size_t errstr_size)
{
    kb_err_t err = KB_OK;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "%s:%d:%d: %s", origin, jerr.line,
                          jerr.column, jerr.text);
    json_t *jtype = json_object_get(root, "kb.eventType");
    json_t *jid = json_object_get(root, "kb.schemaId");
    if (json_is_string(jtype))
        type = json_string_value(jtype);
    if (id <= 0 && json_is_integer(jid) && json_integer_value(jid) > 0 &&
        json_integer_value(jid) <= INT32_MAX)
        id = (int32_t)json_integer_value(jid);
    if (!type || id <= 0) {
        err =
            kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                       "%s: needs \"kb.eventType\" (string) and \"kb.schemaId\" (int > 0)", origin);
        goto out_free_json;
    }
    if (find_id(s, id)) {
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                         "%s: kb.schemaId %d or kb.eventType %s already used", origin, id, type);
        goto out_free_json;
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        struct kb_schema **nitems = realloc(s->items, ncap * sizeof *nitems);
        if (!nitems) {
            err = KB_ERR_NOMEM;
            goto out_free_json;
        }
        s->items = nitems;
        s->cap = ncap;
    }
    struct kb_schema *sc = calloc(1, sizeof *sc);
    if (!sc) {
        err = KB_ERR_NOMEM;
        goto out_free_json;
    }
    if (avro_schema_from_json_length(text, len, &sc->avro) != 0) {
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "%s: %s", origin, avro_strerror());
        goto out_free_sc;
    }
    if (!is_avro_record(sc->avro)) {
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "%s: top level must be a record",
                         origin);
        goto out_free_sc;
    }
    sc->iface = avro_generic_class_from_schema(sc->avro);
    sc->type = strdup(type);
    sc->path = strdup(origin);
    sc->json = strndup(text, len);
    sc->id = id;
    if (!sc->iface || !sc->type || !sc->path || !sc->json) {
        err = KB_ERR_NOMEM;
        goto out_free_sc;
    }
    s->items[s->n++] = sc;
    goto out_free_json;
out_free_sc:
    schema_fini(sc);
    free(sc);
out_free_json:
    json_decref(root);
    return err;
}

static kb_err_t load_file(kb_schemas_t *s, const char *path, char *errstr, size_t errstr_size)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: cannot read (or over 1 MiB)", path);
    kb_err_t err = add_text(s, text, len, 0, NULL, path, errstr, errstr_size);
    free(text);
    return err;
}

static kb_err_t load_dir(kb_schemas_t *s, const char *dir, int depth, char *errstr,
                         size_t errstr_size)
{
    if (depth > 8)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "%s: nested too deep", dir);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", dir, strerror(errno));
    kb_err_t err = KB_OK;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (!err && name[0] != '.') {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, name);
            struct stat st;
            size_t nl = strlen(name);
            if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                err = load_dir(s, path, depth + 1, errstr, errstr_size);
            else if (nl > 5 && !strcmp(name + nl - 5, ".avsc"))
                err = load_file(s, path, errstr, errstr_size);
        }
        free(names[i]);
    }
    free(names);
    return err;
}

static kb_schemas_t *set_new(char *errstr, size_t errstr_size)
{
    kb_schemas_t *s = calloc(1, sizeof *s);
    if (!s) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

kb_schemas_t *kb_schemas_load_dir(const char *dir, char *errstr, size_t errstr_size)
{
    kb_schemas_t *s = set_new(errstr, errstr_size);
    if (!s)
        return NULL;
    if (load_dir(s, dir, 0, errstr, errstr_size) != KB_OK) {
        kb_schemas_destroy(s);
        return NULL;
    }
    if (s->n == 0) {
        kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "%s: no .avsc schemas found", dir);
        kb_schemas_destroy(s);
        return NULL;
    }
    return s;
}

/* --- the registry client --- */

/* GET @p path from the registry into a parsed JSON body; NULL with errstr.
 * *status gets the HTTP status (0 when the request failed). */
static json_t *registry_get(const char *url, const char *path, int *status, char *errstr,
                            size_t errstr_size)
{
    char full[2048];
    snprintf(full, sizeof full, "%s%s", url, path);
    struct kb_http_response r;
    *status = 0;
    if (kb_http_fetch("GET", full, NULL, NULL, 0, FETCH_TIMEOUT_MS, &r, errstr, errstr_size))
        return NULL;
    *status = r.status;
    json_t *j = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
    if (r.status != 200 || !j) {
        json_t *msg = json_object_get(j, "message");
        kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "registry %s: HTTP %d %s", path, r.status,
                   json_is_string(msg) ? json_string_value(msg) : "");
        json_decref(j);
        j = NULL;
    }
    kb_http_response_fini(&r);
    return j;
}

/* Subject names go into URL paths unescaped: keep them to a safe alphabet. */
static int subject_ok(const char *s)
{
    if (!*s || strlen(s) > 200)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

/* Fetch version @p version ("latest" or a number) of @p subject and add it. */
static kb_err_t fetch_version(kb_schemas_t *s, const char *subject, const char *version,
                              char *errstr, size_t errstr_size)
{
    char path[512];
    int status;
    snprintf(path, sizeof path, "/subjects/%s/versions/%s", subject, version);
    json_t *j = registry_get(s->url, path, &status, errstr, errstr_size);
    if (!j)
        return status == 404 ? KB_ERR_NOTFOUND : KB_ERR_SCHEMA;
    const char *text = json_string_value(json_object_get(j, "schema"));
    json_int_t id = json_integer_value(json_object_get(j, "id"));
    kb_err_t err = KB_OK;
    if (!text || id <= 0 || id > INT32_MAX)
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "registry %s: no schema/id", path);
    else if (!find_id(s, (int32_t)id))
        err = add_text(s, text, strlen(text), (int32_t)id, subject, path, errstr, errstr_size);
    json_decref(j);
    return err;
}

kb_schemas_t *kb_schemas_load_url(const char *url, char *errstr, size_t errstr_size)
{
    kb_schemas_t *s = set_new(errstr, errstr_size);
    if (!s)
        return NULL;
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    s->url = strndup(url, ul);
    int status;
    json_t *subjects =
        s->url ? registry_get(s->url, "/subjects", &status, errstr, errstr_size) : NULL;
    if (!subjects || !json_is_array(subjects))
        goto out_fail;
    size_t i;
    json_t *js;
    json_array_foreach(subjects, i, js)
    {
        const char *subject = json_string_value(js);
        if (!subject || !subject_ok(subject)) {
            KB_LOG_WARN(COMP, "registry subject skipped (name not URL-safe)", "index=%zu", i);
            continue;
        }
        char path[512], err[512];
        snprintf(path, sizeof path, "/subjects/%s/versions", subject);
        json_t *vers = registry_get(s->url, path, &status, errstr, errstr_size);
        if (!vers)
            goto out_fail;
        size_t k;
        json_t *jv;
        json_array_foreach(vers, k, jv)
        {
            char v[32];
            snprintf(v, sizeof v, "%lld", (long long)json_integer_value(jv));
            kb_err_t e = fetch_version(s, subject, v, err, sizeof err);
            if (e == KB_ERR_NOMEM) {
                json_decref(vers);
                kb_err_set(e, errstr, errstr_size, "out of memory");
                goto out_fail;
            }
            /* Schemas ketenbus cannot use (not records) stay out of the set. */
            if (e)
                KB_LOG_WARN(COMP, "registry schema skipped", "subject=%s version=%s err=\"%s\"",
                            subject, v, err);
        }
        json_decref(vers);
    }
    json_decref(subjects);
    KB_LOG_INFO(COMP, "schemas loaded from registry", "schemas=%zu", s->n);
    return s;
out_fail:
    json_decref(subjects);
    kb_schemas_destroy(s);
    return NULL;
}

kb_schemas_t *kb_schemas_open(const char *source, char *errstr, size_t errstr_size)
{
    if (!strncmp(source, "http://", 7) || !strncmp(source, "https://", 8))
        return kb_schemas_load_url(source, errstr, errstr_size);
    return kb_schemas_load_dir(source, errstr, errstr_size);
}

void kb_schemas_destroy(kb_schemas_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        schema_fini(s->items[i]);
        free(s->items[i]);
    }
    free(s->items);
    free(s->url);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Registry-backed: an id not seen yet is fetched once (then cached, also
 * when missing, for MISS_RETRY_S, so hostile ids cannot flood the registry). */
static const struct kb_schema *fetch_id(kb_schemas_t *s, int32_t id)
{
    time_t now = time(NULL);
    for (size_t i = 0; i < MISS_SLOTS; i++)
        if (s->miss_id[i] == id && now - s->miss_at[i] < MISS_RETRY_S)
            return NULL;
    char path[64], err[512];
    int status;
    snprintf(path, sizeof path, "/schemas/ids/%d", (int)id);
    json_t *j = registry_get(s->url, path, &status, err, sizeof err);
    const char *text = json_string_value(json_object_get(j, "schema"));
    /* The subject (the event type when kb.eventType is absent) is the first
     * one the id is registered under. */
    char subject[256] = "";
    if (text) {
        snprintf(path, sizeof path, "/schemas/ids/%d/versions", (int)id);
        json_t *vs = registry_get(s->url, path, &status, err, sizeof err);
        const char *sub = json_string_value(json_object_get(json_array_get(vs, 0), "subject"));
        if (sub)
            snprintf(subject, sizeof subject, "%s", sub);
        json_decref(vs);
    }
    if (!text || add_text(s, text, strlen(text), id, subject[0] ? subject : "unknown", path, err,
                          sizeof err) != KB_OK) {
        if (text)
            KB_LOG_WARN(COMP, "registry schema unusable", "id=%d err=\"%s\"", (int)id, err);
        s->miss_id[s->miss_next] = id;
        s->miss_at[s->miss_next] = now;
        s->miss_next = (s->miss_next + 1) % MISS_SLOTS;
        json_decref(j);
        return NULL;
    }
    json_decref(j);
    return find_id(s, id);
}

const struct kb_schema *kb_schemas_by_id(const kb_schemas_t *cs, int32_t id)
{
    kb_schemas_t *s = (kb_schemas_t *)cs; /* logically const: only caches grow */
    pthread_mutex_lock(&s->mu);
    const struct kb_schema *sc = find_id(s, id);
    if (!sc && s->url && id > 0)
        sc = fetch_id(s, id);
    pthread_mutex_unlock(&s->mu);
    return sc;
}

const struct kb_schema *kb_schemas_by_type(const kb_schemas_t *cs, const char *type)
{
    kb_schemas_t *s = (kb_schemas_t *)cs;
    pthread_mutex_lock(&s->mu);
    const struct kb_schema *sc = find_type(s, type);
    if (!sc && s->url && subject_ok(type)) {
        char err[512];
        if (fetch_version(s, type, "latest", err, sizeof err) == KB_OK)
            sc = find_type(s, type);
    }
    pthread_mutex_unlock(&s->mu);
    return sc;
}

size_t kb_schemas_count(const kb_schemas_t *cs)
{
    kb_schemas_t *s = (kb_schemas_t *)cs;
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

const struct kb_schema *kb_schemas_at(const kb_schemas_t *cs, size_t i)
{
    kb_schemas_t *s = (kb_schemas_t *)cs;
    pthread_mutex_lock(&s->mu);
    const struct kb_schema *sc = i < s->n ? s->items[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return sc;
}

const struct kb_validator *kb_schema_validator(const struct kb_schema *cschema, const char **why)
{
    struct kb_schema *schema = (struct kb_schema *)cschema; /* logically const: a cache */
    struct kb__schema_check *c = __atomic_load_n(&schema->check, __ATOMIC_ACQUIRE);
    if (!c) {
        pthread_mutex_lock(&check_mu);
        c = schema->check;
        if (!c && (c = calloc(1, sizeof *c))) {
            c->v = kb_validate_compile(schema->json, NULL, c->why, sizeof c->why);
            if (!c->v)
                KB_LOG_ERR(COMP, "schema does not compile into a validator; its events are refused",
                           "schema_id=%d error=\"%s\"", (int)schema->id, c->why);
            __atomic_store_n(&schema->check, c, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&check_mu);
    }
    if (why)
        *why = c && !c->v ? c->why : NULL;
    return c ? c->v : NULL;
}

kb_err_t kb_schema_check(const struct kb_schema *schema, const uint8_t *payload, size_t len,
                         char *errstr, size_t errstr_size)
{
    const char *why = NULL;
    const kb_validator_t *v = kb_schema_validator(schema, &why);
    if (!v && !why)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    if (!v)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "schema %d does not compile into a validator: %s", (int)schema->id, why);
    struct kb_validate_result vr;
    if (kb_validate(v, payload, len, &vr) != KB_OK)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "payload fails schema %d: %s at %s (offset %zu): %s", (int)schema->id,
                          vr.rule, vr.path[0] ? vr.path : "top level", vr.offset, vr.message);
    return KB_OK;
}

kb_err_t kb_schema_encode(const struct kb_schema *schema, avro_value_t *value, uint8_t **out,
                          size_t *out_len, char *errstr, size_t errstr_size)
{
    size_t size = 0;
    if (avro_value_sizeof(value, &size) != 0)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "avro sizeof: %s", avro_strerror());
    uint8_t *buf = malloc(size + 5);
    if (!buf)
        return KB_ERR_NOMEM;
    avro_writer_t w = avro_writer_memory((char *)buf + 5, (int64_t)size);
    if (!w) {
        free(buf);
        return KB_ERR_NOMEM;
    }
    int rc = avro_value_write(w, value);
    avro_writer_free(w);
    if (rc != 0) {
        free(buf);
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "avro write: %s", avro_strerror());
    }
    kb_event_frame(schema->id, NULL, 0, buf); /* only the 5 framing bytes */
    *out = buf;
    *out_len = size + 5;
    return KB_OK;
}

kb_err_t kb_schema_decode(const struct kb_schema *schema, const uint8_t *payload, size_t len,
                          avro_value_t *value, char *errstr, size_t errstr_size)
{
    avro_reader_t r = avro_reader_memory((const char *)payload, (int64_t)len);
    if (!r)
        return KB_ERR_NOMEM;
    kb_err_t err = KB_OK;
    size_t size = 0;
    if (avro_value_read(r, value) != 0)
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "avro read (%s): %s", schema->type,
                         avro_strerror());
    /* avro-c has no reader position; the canonical re-encoded size of what
     * was read must equal the input, which also rejects trailing bytes and
     * over-long varints. */
    else if (avro_value_sizeof(value, &size) != 0 || size != len)
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                         "avro payload of %zu bytes is not canonical (%zu bytes used)", len, size);
    avro_reader_free(r);
    return err;
}

kb_err_t kb_value_path(avro_value_t *v, const char *path, int for_write, avro_value_t *out)
{
    avro_value_t cur = *v;
    const char *p = path;
    for (;;) {
        /* Step into a union's branch first: a field can be ["null", record]. */
        if (avro_value_get_type(&cur) == AVRO_UNION) {
            avro_value_t branch;
            if (for_write) {
                avro_schema_t us = avro_value_get_schema(&cur);
                int idx = 0;
                for (size_t i = 0; i < avro_schema_union_size(us); i++)
                    if (!is_avro_null(avro_schema_union_branch(us, (int)i))) {
                        idx = (int)i;
                        break;
                    }
                if (avro_value_set_branch(&cur, idx, &branch))
                    return KB_ERR_SCHEMA;
            } else {
                if (avro_value_get_current_branch(&cur, &branch))
                    return KB_ERR_NOTFOUND;
                if (avro_value_get_type(&branch) == AVRO_NULL)
                    return KB_ERR_NOTFOUND;
            }
            cur = branch;
        }
        if (!*p)
            break;
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        char name[128];
        if (len == 0 || len >= sizeof name || avro_value_get_type(&cur) != AVRO_RECORD)
            return KB_ERR_NOTFOUND;
        memcpy(name, p, len);
        name[len] = '\0';
        avro_value_t field;
        if (avro_value_get_by_name(&cur, name, &field, NULL))
            return KB_ERR_NOTFOUND;
        cur = field;
        p = dot ? dot + 1 : p + len;
    }
    *out = cur;
    return KB_OK;
}

kb_err_t kb_value_set_string(avro_value_t *v, const char *path, const char *str)
{
    avro_value_t f;
    if (!str) {
        /* Null: find the union and select its null branch. */
        kb_err_t err = KB_OK;
        avro_value_t cur = *v, field;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", path);
        char *last = strrchr(buf, '.');
        if (last) {
            *last = '\0';
            err = kb_value_path(v, buf, 1, &cur);
            if (err)
                return err;
        }
        if (avro_value_get_by_name(&cur, last ? last + 1 : buf, &field, NULL))
            return KB_ERR_NOTFOUND;
        if (avro_value_get_type(&field) != AVRO_UNION)
            return KB_ERR_SCHEMA;
        avro_schema_t us = avro_value_get_schema(&field);
        for (size_t i = 0; i < avro_schema_union_size(us); i++)
            if (is_avro_null(avro_schema_union_branch(us, (int)i))) {
                avro_value_t branch;
                if (avro_value_set_branch(&field, (int)i, &branch))
                    return KB_ERR_SCHEMA;
                return avro_value_set_null(&branch) ? KB_ERR_SCHEMA : KB_OK;
            }
        return KB_ERR_SCHEMA;
    }
    kb_err_t err = kb_value_path(v, path, 1, &f);
    if (err)
        return err;
    if (avro_value_get_type(&f) != AVRO_STRING)
        return KB_ERR_SCHEMA;
    return avro_value_set_string(&f, str) ? KB_ERR_SCHEMA : KB_OK;
}

kb_err_t kb_value_get_string(avro_value_t *v, const char *path, char *out, size_t out_size)
{
    avro_value_t f;
    kb_err_t err = kb_value_path(v, path, 0, &f);
    if (err)
        return err;
    const char *s = NULL;
    size_t size = 0;
    if (avro_value_get_type(&f) != AVRO_STRING || avro_value_get_string(&f, &s, &size))
        return KB_ERR_SCHEMA;
    /* size counts avro-c's NUL terminator. */
    size_t len = size ? size - 1 : 0;
    if (len >= out_size)
        return KB_ERR_RANGE;
    memcpy(out, s, len);
    out[len] = '\0';
    return KB_OK;
}

kb_err_t kb_value_set_long(avro_value_t *v, const char *path, int64_t val)
{
    avro_value_t f;
    kb_err_t err = kb_value_path(v, path, 1, &f);
    if (err)
        return err;
    return avro_value_set_long(&f, val) ? KB_ERR_SCHEMA : KB_OK;
}

kb_err_t kb_value_set_int(avro_value_t *v, const char *path, int32_t val)
{
    avro_value_t f;
    kb_err_t err = kb_value_path(v, path, 1, &f);
    if (err)
        return err;
    return avro_value_set_int(&f, val) ? KB_ERR_SCHEMA : KB_OK;
}

kb_err_t kb_value_init_nulls(avro_value_t *v)
{
    switch (avro_value_get_type(v)) {
    case AVRO_RECORD: {
        size_t n = 0;
        avro_value_get_size(v, &n);
        for (size_t i = 0; i < n; i++) {
            avro_value_t f;
            if (avro_value_get_by_index(v, i, &f, NULL))
                return KB_ERR_SCHEMA;
            kb_err_t err = kb_value_init_nulls(&f);
            if (err)
                return err;
        }
        return KB_OK;
    }
    case AVRO_UNION: {
        avro_schema_t us = avro_value_get_schema(v);
        for (size_t i = 0; i < avro_schema_union_size(us); i++)
            if (is_avro_null(avro_schema_union_branch(us, (int)i))) {
                avro_value_t branch;
                if (avro_value_set_branch(v, (int)i, &branch) || avro_value_set_null(&branch))
                    return KB_ERR_SCHEMA;
                return KB_OK;
            }
        /* No null branch: the caller must choose one. */
        return KB_OK;
    }
    default: return KB_OK;
    }
}
