/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * deliver_render.c - the pure parts of webhook delivery: an event rendered
 * as a CloudEvent in JSON (jansson), the HMAC signature, retry delays and
 * Retry-After parsing. No I/O here, so the unit tests cover it directly.
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "deliver.h"

int64_t kb__deliver_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd)
{
    if (attempt < 1)
        attempt = 1;
    int64_t cap = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    if (cap < 1)
        cap = 1;
    int64_t half = cap / 2;
    int64_t d = half + (int64_t)(rnd % (uint64_t)(cap - half + 1));
    return d < 1 ? 1 : d;
}

int64_t kb__deliver_retry_after_ms(const char *value, int64_t now_ms)
{
    if (!value)
        return -1;
    while (*value == ' ')
        value++;
    if (*value >= '0' && *value <= '9') {
        char *end;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ')
            end++;
        if (*end || s < 0 || s > 100LL * 365 * 86400)
            return -1;
        return (int64_t)s * 1000;
    }
    /* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (the only form
     * senders must produce; the obsolete ones are not accepted). */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    int64_t at = (int64_t)timegm(&tm) * 1000;
    return at > now_ms ? at - now_ms : 0;
}

int64_t kb__deliver_parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!p)
        return -1;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        for (; digits < 3 && digits > 0; digits++)
            ms *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int sign = *p == '-' ? -1 : 1;
        offset_s = sign * ((p[1] - '0') * 36000 + (p[2] - '0') * 3600 + (p[4] - '0') * 600 +
                           (p[5] - '0') * 60);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    return ((int64_t)timegm(&tm) - offset_s) * 1000 + ms;
}

void kb__deliver_signature(const uint8_t *secret, size_t secret_len, const char *ts,
                           const void *body, size_t len, char out[68])
{
    /* HMAC over "<ts>.<body>": binding the timestamp lets the receiver
     * refuse replays of an old, validly signed request. */
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t tl = strlen(ts);
    unsigned char *msg = malloc(tl + 1 + len);
    memcpy(out, "v1=", 4);
    if (!msg) {
        out[3] = '\0'; /* an empty signature fails verification: safe */
        return;
    }
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    if (len)
        memcpy(msg + tl + 1, body, len);
    HMAC(EVP_sha256(), secret, (int)secret_len, msg, tl + 1 + len, mac, &mac_len);
    free(msg);
    for (unsigned i = 0; i < mac_len && i < 32; i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", mac[i]);
}

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

/* avro-c generic value -> plain JSON (not Avro's JSON encoding: unions are
 * their branch, so subscribers read {"x": "a"}, not {"x": {"string": "a"}}). */
static json_t *avro_to_json(avro_value_t *v, int depth)
{
    if (depth > 64)
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
        return avro_to_json(&branch, depth + 1);
    }
    case AVRO_RECORD:
    case AVRO_MAP: {
        json_t *o = json_object();
        size_t n = 0;
        avro_value_get_size(v, &n);
        for (size_t i = 0; o && i < n; i++) {
            avro_value_t child;
            const char *name = NULL;
            if (avro_value_get_by_index(v, i, &child, &name) || !name) {
                json_decref(o);
                return NULL;
            }
            json_t *c = avro_to_json(&child, depth + 1);
            if (!c || json_object_set_new(o, name, c)) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case AVRO_ARRAY: {
        json_t *a = json_array();
        size_t n = 0;
        avro_value_get_size(v, &n);
        for (size_t i = 0; a && i < n; i++) {
            avro_value_t child;
            if (avro_value_get_by_index(v, i, &child, NULL)) {
                json_decref(a);
                return NULL;
            }
            json_t *c = avro_to_json(&child, depth + 1);
            if (!c || json_array_append_new(a, c)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    default: return NULL;
    }
}

kb_err_t kb__deliver_render(const kb_schemas_t *schemas, const struct kb_event_attrs *attrs,
                            const void *value, size_t len, enum kb_deliver_mode mode,
                            char **body, size_t *body_len, char *errstr, size_t errstr_size)
{
    int32_t schema_id;
    const uint8_t *payload;
    size_t payload_len;
    if (kb_event_unframe(value, len, &schema_id, &payload, &payload_len))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "value is not in the Confluent wire format");
    const struct kb_schema *schema = kb_schemas_by_id(schemas, schema_id);
    if (!schema)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "unknown schema id %d",
                          (int)schema_id);
    avro_value_t v;
    if (avro_generic_value_new(schema->iface, &v))
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "avro value allocation failed");
    kb_err_t err = kb_schema_decode(schema, payload, payload_len, &v, errstr, errstr_size);
    if (err)
        goto out_value;
    json_t *data = avro_to_json(&v, 0);
    if (!data) {
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                         "payload of schema %d cannot be rendered as JSON", (int)schema_id);
        goto out_value;
    }
    json_t *doc = data;
    if (mode == KB_DELIVER_STRUCTURED) {
        doc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "specversion", KB_EVENT_SPECVERSION, "id",
                        attrs->id, "source", attrs->source, "type", attrs->type,
                        "datacontenttype", "application/json", "data", data);
        if (doc && attrs->time[0])
            json_object_set_new(doc, "time", json_string(attrs->time));
        if (doc && attrs->subject[0])
            json_object_set_new(doc, "subject", json_string(attrs->subject));
        if (doc && attrs->dataref[0])
            json_object_set_new(doc, "dataref", json_string(attrs->dataref));
        if (doc && attrs->traceparent[0])
            json_object_set_new(doc, "traceparent", json_string(attrs->traceparent));
        if (doc && attrs->sequence) {
            /* CloudEvents extension attributes are strings in JSON;
             * NL GOV sequencetype Integer says how to compare them. */
            char seq[24];
            snprintf(seq, sizeof seq, "%llu", (unsigned long long)attrs->sequence);
            json_object_set_new(doc, "sequence", json_string(seq));
            json_object_set_new(doc, "sequencetype", json_string("Integer"));
        }
    }
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!s) {
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "JSON rendering failed");
        goto out_value;
    }
    *body = s;
    *body_len = strlen(s);
out_value:
    avro_value_decref(&v);
    return err;
}
