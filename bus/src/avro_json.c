/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * avro_json.c - avro-c generic values as plain JSON (ketenbus/avro_json.h).
 */
#include <stdlib.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "ketenbus/avro_json.h"
#include "ketenbus/event.h"

/* Deeper than any schema of ours; a bound, because the recursion follows
 * the value. */
#define MAX_DEPTH 64

static json_t *base64_json(const void *buf, size_t len)
{
    char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (!b64)
        return NULL;
    EVP_EncodeBlock((unsigned char *)b64, buf, (int)len);
    json_t *s = json_string(b64);
    free(b64);
    return s;
}

static json_t *to_json(avro_value_t *v, int depth);

/* A record's or map's entries as an object (both are read by index). */
static json_t *object_json(avro_value_t *v, int depth)
{
    json_t *o = json_object();
    size_t n = 0;
    avro_value_get_size(v, &n);
    for (size_t i = 0; o && i < n; i++) {
        avro_value_t child;
        const char *name = NULL;
        if (avro_value_get_by_index(v, i, &child, &name) || !name)
            goto fail;
        json_t *c = to_json(&child, depth + 1);
        if (!c || json_object_set_new(o, name, c))
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

static json_t *array_json(avro_value_t *v, int depth)
{
    json_t *a = json_array();
    size_t n = 0;
    avro_value_get_size(v, &n);
    for (size_t i = 0; a && i < n; i++) {
        avro_value_t child;
        if (avro_value_get_by_index(v, i, &child, NULL))
            goto fail;
        json_t *c = to_json(&child, depth + 1);
        if (!c || json_array_append_new(a, c))
            goto fail;
    }
    return a;
fail:
    json_decref(a);
    return NULL;
}

static json_t *to_json(avro_value_t *v, int depth)
{
    if (depth > MAX_DEPTH)
        return NULL;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL: return json_null();
    case AVRO_BOOLEAN: {
        int b = 0;
        avro_value_get_boolean(v, &b);
        return json_boolean(b);
    }
    case AVRO_INT32: {
        int32_t i = 0;
        avro_value_get_int(v, &i);
        return json_integer(i);
    }
    case AVRO_INT64: {
        int64_t i = 0;
        avro_value_get_long(v, &i);
        return json_integer(i);
    }
    case AVRO_FLOAT: {
        float f = 0;
        avro_value_get_float(v, &f);
        return json_real(f);
    }
    case AVRO_DOUBLE: {
        double d = 0;
        avro_value_get_double(v, &d);
        return json_real(d);
    }
    case AVRO_STRING: {
        const char *s = NULL;
        size_t size = 0;
        avro_value_get_string(v, &s, &size);
        return json_stringn(s ? s : "", size ? size - 1 : 0);
    }
    case AVRO_BYTES: {
        const void *b = NULL;
        size_t size = 0;
        avro_value_get_bytes(v, &b, &size);
        return base64_json(b, size);
    }
    case AVRO_FIXED: {
        const void *b = NULL;
        size_t size = 0;
        avro_value_get_fixed(v, &b, &size);
        return base64_json(b, size);
    }
    case AVRO_ENUM: {
        int idx = 0;
        avro_value_get_enum(v, &idx);
        const char *sym = avro_schema_enum_get(avro_value_get_schema(v), idx);
        return sym ? json_string(sym) : NULL;
    }
    case AVRO_UNION: {
        avro_value_t branch;
        if (avro_value_get_current_branch(v, &branch))
            return NULL;
        return to_json(&branch, depth + 1);
    }
    case AVRO_RECORD:
    case AVRO_MAP: return object_json(v, depth);
    case AVRO_ARRAY: return array_json(v, depth);
    default: return NULL;
    }
}

json_t *kb_avro_to_json(avro_value_t *v)
{
    return to_json(v, 0);
}

kb_err_t kb_avro_event_json(const kb_schemas_t *schemas, const void *value, size_t len,
                            json_t **out, int32_t *schema_id, char *errstr, size_t errstr_size)
{
    *out = NULL;
    int32_t id;
    const uint8_t *payload;
    size_t plen;
    if (kb_event_unframe(value, len, &id, &payload, &plen))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "value is not in the Confluent wire format");
    const struct kb_schema *schema = kb_schemas_by_id(schemas, id);
    if (!schema)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "unknown schema id %d", (int)id);
    if (schema_id)
        *schema_id = id;
    kb_err_t err = kb_schema_check(schema, payload, plen, errstr, errstr_size);
    if (err)
        return err;
    avro_value_t v;
    if (avro_generic_value_new(schema->iface, &v))
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "avro value allocation failed");
    err = kb_schema_decode(schema, payload, plen, &v, errstr, errstr_size);
    if (!err) {
        *out = kb_avro_to_json(&v);
        if (!*out)
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                             "payload of schema %d cannot be rendered as JSON", (int)id);
    }
    avro_value_decref(&v);
    return err;
}
