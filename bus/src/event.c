/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * event.c - CloudEvents binary-mode headers, Confluent framing, UUIDv5 event
 * ids and HMAC pseudonyms (see ketenbus/event.h).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA1_Init & co., see kb_event_uuid5() */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "ketenbus/event.h"
#include "utf8.h"

/* The ketenbus UUID namespace: a fixed random UUID, never to change, as
 * every event id ever issued is derived from it. */
static const uint8_t kb_uuid_namespace[16] = {0x6b, 0x8e, 0x1c, 0x57, 0x0d, 0x2a, 0x4f, 0x39,
                                              0x9a, 0x61, 0x3c, 0x5e, 0x77, 0x12, 0xb4, 0x80};

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t kb_event_headers(const struct kb_event_attrs *attrs, struct kb_header *out, char *seqbuf)
{
    size_t n = 0;
#define PUT(hname, str)                                                                  \
    do {                                                                                 \
        out[n].name = (hname);                                                           \
        out[n].value = (str);                                                            \
        out[n].len = strlen(str);                                                        \
        n++;                                                                             \
    } while (0)
    PUT("ce_specversion", KB_EVENT_SPECVERSION);
    PUT("ce_id", attrs->id);
    PUT("ce_source", attrs->source);
    PUT("ce_type", attrs->type);
    if (attrs->time[0])
        PUT("ce_time", attrs->time);
    PUT("content-type", KB_EVENT_CONTENT_TYPE);
    if (attrs->subject[0])
        PUT("ce_subject", attrs->subject);
    if (attrs->dataref[0])
        PUT("ce_dataref", attrs->dataref);
    if (attrs->sequence) {
        snprintf(seqbuf, 24, "%" PRIu64, attrs->sequence);
        PUT("ce_sequence", seqbuf);
        PUT("ce_sequencetype", "Integer");
    }
    if (attrs->traceparent[0])
        PUT("traceparent", attrs->traceparent);
#undef PUT
    return n;
}

static kb_err_t copy_attr(const struct kb_header *h, char *dst, size_t cap, char *errstr,
                          size_t errstr_size)
{
    if (h->len >= cap)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "header %s is %zu bytes, limit %zu", h->name, h->len, cap - 1);
    if (memchr(h->value, '\0', h->len))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "header %s contains NUL",
                          h->name);
    /* A CloudEvents String: attributes come from anyone who can write to
     * a topic, and everything downstream takes them as text (JSON, the audit
     * record, log lines, file names). The value is not quoted: it may be the
     * very bytes that are wrong. */
    if (kb__utf8_text((const uint8_t *)h->value, h->len) != KB_TEXT_OK)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "header %s is not UTF-8 text without control characters", h->name);
    memcpy(dst, h->value, h->len);
    dst[h->len] = '\0';
    return KB_OK;
}

/* The headers of the event envelope, in the order of the "seen" bits of
 * kb_event_attrs_from_headers(). Every one is checked there, and these are
 * the only input headers a subscriber's copy carries (kb_event_header_known). */
static const char *const envelope_headers[] = {
    "ce_specversion", "ce_id",       "ce_source",       "ce_type",
    "ce_time",        "ce_subject",  "ce_dataref",      "ce_sequence",
    "ce_sequencetype", "content-type", "traceparent",
};
#define N_ENVELOPE (sizeof envelope_headers / sizeof envelope_headers[0])

static int envelope_index(const char *name)
{
    for (size_t i = 0; i < N_ENVELOPE; i++)
        if (!strcmp(name, envelope_headers[i]))
            return (int)i;
    return -1;
}

int kb_event_header_known(const char *name)
{
    return envelope_index(name) >= 0;
}

static int lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* W3C Trace Context: "vv-<32 hex>-<16 hex>-ff", version 00 exactly that
 * long, a later version possibly longer after a '-'. */
static int traceparent_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || !lower_hex(s, 2) ||
        !lower_hex(s + 3, 32) || !lower_hex(s + 36, 16) || !lower_hex(s + 53, 2) ||
        !memcmp(s, "ff", 2))
        return 0;
    return n == 55 || (memcmp(s, "00", 2) != 0 && s[55] == '-');
}

int kb_event_traceparent_valid(const void *value, size_t len)
{
    char tp[64];
    if (!value || len >= sizeof tp || memchr(value, '\0', len))
        return 0;
    memcpy(tp, value, len);
    tp[len] = '\0';
    return traceparent_ok(tp);
}

kb_err_t kb_event_attrs_from_headers(const struct kb_header *hdrs, size_t n,
                                     struct kb_event_attrs *attrs, char *errstr,
                                     size_t errstr_size)
{
    memset(attrs, 0, sizeof *attrs);
    attrs->schema_id = -1;
    unsigned seen = 0;
    kb_err_t err = KB_OK;
    char buf[64];
    for (size_t i = 0; i < n && !err; i++) {
        const struct kb_header *h = &hdrs[i];
        int at = envelope_index(h->name);
        if (at < 0)
            continue; /* not the envelope's: never passed on (kb_event_header_known) */
        if (at == 10) {
            /* W3C Trace Context: a traceparent that is not valid is ignored
             * (a trace starts anew), not a reason to refuse the event; the
             * first valid one counts (an agent may add a second). */
            if (!attrs->traceparent[0] && kb_event_traceparent_valid(h->value, h->len)) {
                memcpy(attrs->traceparent, h->value, h->len);
                attrs->traceparent[h->len] = '\0';
            }
            continue;
        }
        /* One of each: with two, one part of the system would read the
         * first and another the last. */
        if (seen & (1u << at))
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "header %s appears twice",
                              h->name);
        seen |= 1u << at;
        switch (at) {
        case 0:
            if (h->len != 3 || memcmp(h->value, "1.0", 3) != 0)
                return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                  "ce_specversion is not 1.0");
            break;
        case 1: err = copy_attr(h, attrs->id, sizeof attrs->id, errstr, errstr_size); break;
        case 2:
            err = copy_attr(h, attrs->source, sizeof attrs->source, errstr, errstr_size);
            break;
        case 3: err = copy_attr(h, attrs->type, sizeof attrs->type, errstr, errstr_size); break;
        case 4: err = copy_attr(h, attrs->time, sizeof attrs->time, errstr, errstr_size); break;
        case 5:
            err = copy_attr(h, attrs->subject, sizeof attrs->subject, errstr, errstr_size);
            /* The subject key is a pseudonym (kb_event_pseudonym): a BSN
             * here would reach the audit trail and every subscriber's
             * headers as it is. */
            if (!err && attrs->subject[0] &&
                (strlen(attrs->subject) != KB_PSEUDONYM_LEN ||
                 !lower_hex(attrs->subject, KB_PSEUDONYM_LEN)))
                return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                  "ce_subject is not a pseudonym (%d lower-case hex digits)",
                                  KB_PSEUDONYM_LEN);
            break;
        case 6:
            err = copy_attr(h, attrs->dataref, sizeof attrs->dataref, errstr, errstr_size);
            break;
        case 7:
            err = copy_attr(h, buf, 24, errstr, errstr_size);
            if (!err) {
                char *end;
                errno = 0;
                unsigned long long v = strtoull(buf, &end, 10);
                if (errno || *end || end == buf || !isdigit((unsigned char)buf[0]))
                    return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                      "ce_sequence is not an integer");
                attrs->sequence = v;
            }
            break;
        case 8:
            if (h->len != 7 || memcmp(h->value, "Integer", 7) != 0)
                return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                  "ce_sequencetype is not Integer");
            break;
        case 9: err = copy_attr(h, buf, sizeof buf, errstr, errstr_size); break;
        }
    }
    if (err)
        return err;
    if (!(seen & 1u))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "missing header ce_specversion");
    if (!attrs->id[0])
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "missing header ce_id");
    if (!attrs->source[0])
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "missing header ce_source");
    if (!attrs->type[0])
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "missing header ce_type");
    return KB_OK;
}

void kb_event_frame(int32_t schema_id, const void *payload, size_t len, uint8_t *out)
{
    uint32_t id = (uint32_t)schema_id;
    out[0] = 0;
    out[1] = (uint8_t)(id >> 24);
    out[2] = (uint8_t)(id >> 16);
    out[3] = (uint8_t)(id >> 8);
    out[4] = (uint8_t)id;
    if (len)
        memcpy(out + 5, payload, len);
}

kb_err_t kb_event_unframe(const void *buf, size_t len, int32_t *schema_id,
                          const uint8_t **payload, size_t *payload_len)
{
    const uint8_t *b = buf;
    if (len < 5 || b[0] != 0)
        return KB_ERR_INVALID;
    *schema_id = (int32_t)(((uint32_t)b[1] << 24) | ((uint32_t)b[2] << 16) |
                           ((uint32_t)b[3] << 8) | (uint32_t)b[4]);
    *payload = b + 5;
    *payload_len = len - 5;
    return KB_OK;
}

/* SHA-1 through its plain context (deprecated in OpenSSL 3, kept for
 * speed as hmac.c does): EVP would allocate a context and go through the
 * provider for every event id, which costs more than hashing the name
 * (bench-gba). Same digest either way. */
void kb_event_uuid5(const void *name, size_t len, char out[37])
{
    uint8_t digest[SHA_DIGEST_LENGTH];
    SHA_CTX ctx;
    SHA1_Init(&ctx);
    SHA1_Update(&ctx, kb_uuid_namespace, sizeof kb_uuid_namespace);
    SHA1_Update(&ctx, name, len);
    SHA1_Final(digest, &ctx);
    digest[6] = (uint8_t)((digest[6] & 0x0f) | 0x50); /* version 5 */
    digest[8] = (uint8_t)((digest[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    /* 8-4-4-4-12 hex digits; by hand, as this runs for every event */
    char h[33];
    hex(digest, 16, h);
    memcpy(out, h, 8);
    out[8] = '-';
    memcpy(out + 9, h + 8, 4);
    out[13] = '-';
    memcpy(out + 14, h + 12, 4);
    out[18] = '-';
    memcpy(out + 19, h + 16, 4);
    out[23] = '-';
    memcpy(out + 24, h + 20, 12);
    out[36] = '\0';
}

kb_err_t kb_event_pseudonym(const uint8_t *key, size_t key_len, const char *domain,
                            const char *id, char out[KB_PSEUDONYM_LEN + 1])
{
    if (!key || key_len < 16)
        return KB_ERR_INVALID;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t dlen = strlen(domain), ilen = strlen(id);
    uint8_t *msg = malloc(dlen + 1 + ilen);
    if (!msg)
        return KB_ERR_NOMEM;
    memcpy(msg, domain, dlen);
    msg[dlen] = ':';
    memcpy(msg + dlen + 1, id, ilen);
    const uint8_t *ok = HMAC(EVP_sha256(), key, (int)key_len, msg, dlen + 1 + ilen, mac, &mac_len);
    free(msg);
    if (!ok)
        return KB_ERR_INVALID;
    hex(mac, KB_PSEUDONYM_LEN / 2, out);
    return KB_OK;
}

void kb_event_time(int64_t unix_ms, char out[40])
{
    /* Floor division: -1 ms is 23:59:59.999 of the day before 1970. */
    int64_t ms = ((unix_ms % 1000) + 1000) % 1000;
    time_t secs = (time_t)((unix_ms - ms) / 1000);
    /* Adapters stamp every message, many within one second: the date and
     * time of the last second, per thread, saves gmtime_r. */
    static _Thread_local time_t last_secs;
    static _Thread_local char last[20]; /* "YYYY-MM-DDTHH:MM:SS", "" none */
    if (last[0] && secs == last_secs) {
        memcpy(out, last, 19);
        memcpy(out + 19, ".000Z", 6);
        for (int k = 0, v = (int)ms; k < 3; k++, v /= 10)
            out[22 - k] = (char)('0' + v % 10);
        return;
    }
    struct tm tm;
    if (gmtime_r(&secs, &tm) && tm.tm_year >= 1000 - 1900 && tm.tm_year <= 9999 - 1900) {
        /* The four-digit years, by hand: adapters stamp every message. */
        int f[7] = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                    tm.tm_sec, (int)ms};
        static const char tmpl[] = "0000-00-00T00:00:00.000Z";
        static const unsigned char at[7] = {4, 7, 10, 13, 16, 19, 23}; /* end of each */
        static const unsigned char width[7] = {4, 2, 2, 2, 2, 2, 3};
        memcpy(out, tmpl, sizeof tmpl);
        for (int i = 0; i < 7; i++)
            for (int k = 0, v = f[i]; k < width[i]; k++, v /= 10)
                out[at[i] - 1 - k] = (char)('0' + v % 10);
        memcpy(last, out, 19);
        last[19] = '\0';
        last_secs = secs;
        return;
    }
    /* strftime keeps the compiler's truncation analysis quiet about years. */
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%.24s.%03dZ", date, (int)ms);
}

void kb_event_traceparent_uuid(const char uuid[37], char out[64])
{
    /* "00-%.8s%.4s%.4s%.4s%.12s-<first 16 of those>-01", copied in runs */
    memcpy(out, "00-", 3);
    memcpy(out + 3, uuid, 8);
    memcpy(out + 11, uuid + 9, 4);
    memcpy(out + 15, uuid + 14, 4);
    memcpy(out + 19, uuid + 19, 4);
    memcpy(out + 23, uuid + 24, 12);
    out[35] = '-';
    memcpy(out + 36, out + 3, 16);
    memcpy(out + 52, "-01", 4);
}

void kb_event_traceparent(const char *uuid, char out[64])
{
    static const uint64_t dash_at = (1ull << 8) | (1ull << 13) | (1ull << 18) | (1ull << 23);
    uint64_t dashes = 0;
    size_t len = strnlen(uuid, 37);
    for (size_t i = 0; i < len && len == 36; i++)
        dashes |= (uint64_t)(uuid[i] == '-') << i;
    if (len == 36 && dashes == dash_at) {
        /* the 8-4-4-4-12 form of kb_event_uuid5(): the same 32 digits as
         * the scan below */
        kb_event_traceparent_uuid(uuid, out);
        return;
    }
    char h[33];
    size_t n = 0;
    for (const char *p = uuid; *p && n < 32; p++)
        if (*p != '-')
            h[n++] = *p;
    h[n] = '\0';
    if (n != 32) {
        out[0] = '\0';
        return;
    }
    /* "00-%s-%.16s-01", by hand */
    memcpy(out, "00-", 3);
    memcpy(out + 3, h, 32);
    out[35] = '-';
    memcpy(out + 36, h, 16);
    memcpy(out + 52, "-01", 4);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

kb_err_t kb_event_key_load(const char *path, uint8_t **key, size_t *key_len, char *errstr,
                           size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kb_err_set(KB_ERR_IO, errstr, errstr_size, "cannot open subject key file %s: %s",
                          path, strerror(errno));
    uint8_t buf[4097];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n > 4096)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                          "subject key file %s is larger than 4096 bytes", path);
    /* Two forms, told apart without guessing: text of hex digits (white
     * space around it ignored), or raw bytes used exactly as stored. */
    size_t start = 0, end = n;
    while (start < end && isspace(buf[start]))
        start++;
    while (end > start && isspace(buf[end - 1]))
        end--;
    if (end == start)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "subject key file %s is empty",
                          path);
    int is_hex = 1;
    for (size_t i = start; i < end && is_hex; i++)
        is_hex = hexval(buf[i]) >= 0;
    if (is_hex && ((end - start) % 2 != 0 || end - start < 32))
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                          "subject key file %s: a hex key needs an even number of at least 32 "
                          "hex digits",
                          path);
    size_t out_len = is_hex ? (end - start) / 2 : n;
    if (out_len < 16)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                          "subject key file %s holds fewer than 16 bytes of key", path);
    uint8_t *k = malloc(out_len);
    if (!k)
        return KB_ERR_NOMEM;
    if (is_hex)
        for (size_t i = 0; i < out_len; i++)
            k[i] = (uint8_t)(hexval(buf[start + 2 * i]) << 4 | hexval(buf[start + 2 * i + 1]));
    else
        memcpy(k, buf, out_len);
    *key = k;
    *key_len = out_len;
    return KB_OK;
}
