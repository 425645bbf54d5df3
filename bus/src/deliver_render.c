/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * deliver_render.c - the pure parts of webhook delivery: an event rendered
 * as a CloudEvent in JSON (jansson) after the schema's validator accepted
 * it, the HMAC signatures (v1 over the body, v2 over the headers a receiver
 * acts on too), retry delays, Retry-After parsing, the set of
 * permanent statuses and the partitions' consumption budget. No I/O here,
 * so the unit tests cover it directly.
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "deliver.h"
#include "hmac.h"
#include "ketenbus/avro_json.h"

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

/* v1 with the key absorbed in @p h: HMAC over "<ts>.<body>". Binding the
 * timestamp lets the receiver refuse replays of an old, validly signed
 * request. An empty signature (ts too long, never ours) fails verification:
 * safe. */
static void signature_v1(const struct kb__hmac *h, const char *ts, const void *body, size_t len,
                         char out[68])
{
    char head[40];
    int hl = snprintf(head, sizeof head, "%s.", ts);
    memcpy(out, "v1=", 4);
    if (hl > 0 && (size_t)hl < sizeof head)
        kb__hmac_hex(h, head, (size_t)hl, body, len, out + 3, 2 * KB_HMAC_LEN);
}

void kb__deliver_signature(const uint8_t *secret, size_t secret_len, const char *ts,
                           const void *body, size_t len, char out[68])
{
    struct kb__hmac h;
    kb__hmac_init(&h, secret, secret_len);
    signature_v1(&h, ts, body, len, out);
    kb__hmac_wipe(&h);
}

size_t kb__deliver_post_headers(const struct kb_event_attrs *attrs, enum kb_deliver_mode mode,
                                char seqbuf[24], struct kb__deliver_header *out)
{
    /* Listed in name order, so the result is sorted. traceparent is not
     * here: tracing proxies may rewrite it, and it changes nothing a
     * receiver does with the event. */
    size_t n = 0;
#define PUT(hname, str)            \
    do {                           \
        if ((str)[0]) {            \
            out[n].name = (hname); \
            out[n].value = (str);  \
            n++;                   \
        }                          \
    } while (0)
    seqbuf[0] = '\0';
    if (mode == KB_DELIVER_BINARY) {
        if (attrs->sequence)
            snprintf(seqbuf, 24, "%llu", (unsigned long long)attrs->sequence);
        PUT("ce-dataref", attrs->dataref);
        PUT("ce-id", attrs->id);
        PUT("ce-sequence", seqbuf);
        PUT("ce-sequencetype", seqbuf[0] ? "Integer" : "");
        PUT("ce-source", attrs->source);
        PUT("ce-specversion", KB_EVENT_SPECVERSION);
        PUT("ce-subject", attrs->subject);
        PUT("ce-time", attrs->time);
        PUT("ce-type", attrs->type);
        PUT("content-type", "application/json");
    } else {
        PUT("content-type", "application/cloudevents+json; charset=utf-8");
    }
    PUT("idempotency-key", attrs->id);
#undef PUT
    return n;
}

/* A value with CR or LF could forge a line of the canonical string, and an
 * HTTP header besides: such a request is not sent, whatever is signed. */
static int headers_sendable(const struct kb__deliver_header *hdrs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strpbrk(hdrs[i].value, "\r\n"))
            return 0;
    return 1;
}

kb_err_t kb__deliver_canonical_v2(const char *ts, const struct kb__deliver_header *hdrs, size_t n,
                                  char **out, size_t *len)
{
    if (!headers_sendable(hdrs, n))
        return KB_ERR_INVALID;
    size_t need = 3 + strlen(ts) + 1 + 1 + 1;
    for (size_t i = 0; i < n; i++)
        need += 2 * strlen(hdrs[i].name) + 1 + strlen(hdrs[i].value) + 2;
    char *s = malloc(need + 1);
    if (!s)
        return KB_ERR_NOMEM;
    size_t at = (size_t)snprintf(s, need + 1, "v2\n%s\n", ts);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, need + 1 - at, "%s%s", i ? "," : "", hdrs[i].name);
    s[at++] = '\n';
    for (size_t i = 0; i < n; i++) {
        /* An HTTP field value has no surrounding white space: a receiver
         * is handed the value without it, so it is signed without it. */
        const char *v = hdrs[i].value + strspn(hdrs[i].value, " \t");
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        at += (size_t)snprintf(s + at, need + 1 - at, "%s:%.*s\n", hdrs[i].name, (int)vl, v);
    }
    s[at++] = '\n';
    *out = s;
    *len = at;
    return KB_OK;
}

kb_err_t kb__deliver_sign(const uint8_t *secret, size_t secret_len, const char *ts,
                          const struct kb__deliver_header *hdrs, size_t n, const void *body,
                          size_t len, int with_v2, struct kb__deliver_sig *sig)
{
    sig->signed_headers[0] = '\0';
    if (!with_v2) {
        /* v1 alone, for receivers that compare the whole header value: no
         * canonical string made, no second HMAC over the body. */
        if (!headers_sendable(hdrs, n))
            return KB_ERR_INVALID;
        kb__deliver_signature(secret, secret_len, ts, body, len, sig->header);
        return KB_OK;
    }
    char *canon;
    size_t canon_len;
    kb_err_t err = kb__deliver_canonical_v2(ts, hdrs, n, &canon, &canon_len);
    if (err)
        return err;
    size_t at = 0;
    for (size_t i = 0; i < n && at < sizeof sig->signed_headers; i++)
        at += (size_t)snprintf(sig->signed_headers + at, sizeof sig->signed_headers - at, "%s%s",
                               i ? "," : "", hdrs[i].name);
    char v1[68], v2[2 * KB_HMAC_LEN + 1];
    struct kb__hmac h; /* the key absorbed once for both */
    kb__hmac_init(&h, secret, secret_len);
    signature_v1(&h, ts, body, len, v1);
    kb__hmac_hex(&h, canon, canon_len, body, len, v2, sizeof v2 - 1);
    kb__hmac_wipe(&h);
    free(canon);
    /* v1 first and unchanged: a receiver that splits the value at commas
     * (the usual convention for signature lists) and knows only v1 still
     * finds it. */
    snprintf(sig->header, sizeof sig->header, "%s, v2=%s", v1, v2);
    return at < sizeof sig->signed_headers ? KB_OK : KB_ERR_INVALID;
}

kb_err_t kb__deliver_statuses_parse(const char *list, struct kb__deliver_statuses *set,
                                    char *errstr, size_t errstr_size)
{
    memset(set, 0, sizeof *set);
    if (!strcmp(list, "none"))
        return KB_OK;
    for (const char *p = list;; p++) {
        int status = 0, digits = 0;
        for (; *p >= '0' && *p <= '9' && digits < 4; p++, digits++)
            status = status * 10 + (*p - '0');
        if (digits != 3 || status < 400 || status > 599 || (*p && *p != ','))
            return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                              "\"%s\" is not a comma-separated list of HTTP statuses 400 to 599 "
                              "(or none)",
                              list);
        set->bits[(status - 400) / 64] |= UINT64_C(1) << ((status - 400) % 64);
        if (!*p)
            return KB_OK;
    }
}

int kb__deliver_statuses_has(const struct kb__deliver_statuses *set, int status)
{
    if (status < 400 || status > 599)
        return 0;
    return (set->bits[(status - 400) / 64] >> ((status - 400) % 64)) & 1;
}

int kb__deliver_partition_reserve(int max_pending, int n_parts)
{
    int reserved = n_parts > 0 ? max_pending / (2 * n_parts) : max_pending / 2;
    return reserved > 0 ? reserved : 1; /* a partition that can hold nothing cannot move on */
}

int kb__deliver_partition_may_take(int pending, int reserved, long used, int max_pending, int room)
{
    /* Within its reserve a partition never waits for another's backlog;
     * beyond it, only while the budget nobody uses or keeps has room. */
    return pending + room < reserved || used + room < max_pending;
}

kb_err_t kb__deliver_render(const kb_schemas_t *schemas, const struct kb_event_attrs *attrs,
                            const void *value, size_t len, enum kb_deliver_mode mode, char **body,
                            size_t *body_len, char *errstr, size_t errstr_size)
{
    /* kb_avro_event_json() runs the schema's validator first: a copy in a
     * subscriber's topic may come from anyone with write access to it, not
     * only from the router's gate, and avro-c is not hardened against
     * hostile bytes. */
    json_t *data;
    kb_err_t err = kb_avro_event_json(schemas, value, len, &data, NULL, errstr, errstr_size);
    if (err)
        return err;
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
    if (!s)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "JSON rendering failed");
    *body = s;
    *body_len = strlen(s);
    return KB_OK;
}
