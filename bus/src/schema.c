/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * schema.c - the schemas/ folder as a schema source: parse every .avsc with
 * avro-c, read its ketenbus attributes with jansson, index by id and type.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "ketenbus/event.h"
#include "ketenbus/schema.h"

struct kb_schemas {
    struct kb_schema *items; /* all schemas, in load order */
    size_t n;                /* used entries */
    size_t cap;              /* allocated entries */
};

static void schema_fini(struct kb_schema *sc)
{
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

static kb_err_t load_file(kb_schemas_t *s, const char *path, char *errstr, size_t errstr_size)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: cannot read (or over 1 MiB)",
                          path);
    kb_err_t err = KB_OK;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root) {
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "%s:%d:%d: %s", path, jerr.line,
                         jerr.column, jerr.text);
        goto out_free_text;
    }
    json_t *jtype = json_object_get(root, "kb.eventType");
    json_t *jid = json_object_get(root, "kb.schemaId");
    if (!json_is_string(jtype) || !json_is_integer(jid) || json_integer_value(jid) <= 0 ||
        json_integer_value(jid) > INT32_MAX) {
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                         "%s: needs \"kb.eventType\" (string) and \"kb.schemaId\" (int > 0)",
                         path);
        goto out_free_json;
    }
    int32_t id = (int32_t)json_integer_value(jid);
    const char *type = json_string_value(jtype);
    if (kb_schemas_by_id(s, id) || kb_schemas_by_type(s, type)) {
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                         "%s: kb.schemaId %d or kb.eventType %s already used", path, id, type);
        goto out_free_json;
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        struct kb_schema *nitems = realloc(s->items, ncap * sizeof *nitems);
        if (!nitems) {
            err = KB_ERR_NOMEM;
            goto out_free_json;
        }
        s->items = nitems;
        s->cap = ncap;
    }
    struct kb_schema *sc = &s->items[s->n];
    memset(sc, 0, sizeof *sc);
    avro_schema_error_t aerr;
    if (avro_schema_from_json(text, (int32_t)len, &sc->avro, &aerr) != 0) {
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "%s: %s", path, avro_strerror());
        goto out_free_json;
    }
    if (!is_avro_record(sc->avro)) {
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "%s: top level must be a record",
                         path);
        schema_fini(sc);
        goto out_free_json;
    }
    sc->iface = avro_generic_class_from_schema(sc->avro);
    sc->type = strdup(type);
    sc->path = strdup(path);
    sc->json = strdup(text);
    sc->id = id;
    if (!sc->iface || !sc->type || !sc->path || !sc->json) {
        schema_fini(sc);
        err = KB_ERR_NOMEM;
        goto out_free_json;
    }
    s->n++;
out_free_json:
    json_decref(root);
out_free_text:
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

kb_schemas_t *kb_schemas_load_dir(const char *dir, char *errstr, size_t errstr_size)
{
    kb_schemas_t *s = calloc(1, sizeof *s);
    if (!s) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
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

void kb_schemas_destroy(kb_schemas_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        schema_fini(&s->items[i]);
    free(s->items);
    free(s);
}

const struct kb_schema *kb_schemas_by_id(const kb_schemas_t *s, int32_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].id == id)
            return &s->items[i];
    return NULL;
}

const struct kb_schema *kb_schemas_by_type(const kb_schemas_t *s, const char *type)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].type, type))
            return &s->items[i];
    return NULL;
}

size_t kb_schemas_count(const kb_schemas_t *s)
{
    return s->n;
}

kb_err_t kb_schema_encode(const struct kb_schema *schema, avro_value_t *value, uint8_t **out,
                          size_t *out_len, char *errstr, size_t errstr_size)
{
    size_t size = 0;
    if (avro_value_sizeof(value, &size) != 0)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "avro sizeof: %s",
                          avro_strerror());
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
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "avro read (%s): %s",
                         schema->type, avro_strerror());
    /* avro-c has no reader position; the canonical re-encoded size of what
     * was read must equal the input, which also rejects trailing bytes and
     * over-long varints. */
    else if (avro_value_sizeof(value, &size) != 0 || size != len)
        err = kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size,
                         "avro payload of %zu bytes is not canonical (%zu bytes used)", len,
                         size);
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
    default:
        return KB_OK;
    }
}
