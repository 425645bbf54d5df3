/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * audit_codec.c - the Avro binary encoding of audit records and checkpoints
 * (schemas/ketenbus/audit-*.avsc), written and read directly for these two
 * fixed schemas: verify must read a million records a second and must never
 * trust the bytes it reads, so decoding is allocation-free and bounds-checked
 * (avro-c is neither). test_audit.c cross-checks both directions with avro-c.
 */
/* The low-level SHA256_* API is deprecated in OpenSSL 3 in favour of EVP,
 * but EVP_DigestInit_ex2/Update/Final cost about as much as hashing a
 * 300-byte record again (provider dispatch, context reset and cleanse), and
 * the one-shot SHA256() fetches the algorithm on every call. The plain
 * SHA256_CTX runs the same assembly (SHA-NI where the CPU has it) with no
 * allocation, lock or lookup, and needs no per-thread state. (bus/src/hmac.c
 * does the same for HMAC.) */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "audit_int.h"
#include "utf8.h"
#include "validate_kernels.h" /* kb__utf8_scalar */

void kb__audit_sha256(const void *data, size_t len, uint8_t out[KB_AUDIT_HASH_LEN])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);
}

/* ---- writing ------------------------------------------------------------ */

kb_err_t kb__audit_buf_reserve(struct kb__audit_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return KB_OK;
    size_t ncap = b->cap ? b->cap : 512;
    while (ncap < b->len + extra)
        ncap *= 2;
    uint8_t *np = realloc(b->p, ncap);
    if (!np)
        return KB_ERR_NOMEM;
    b->p = np;
    b->cap = ncap;
    return KB_OK;
}

/* Callers reserve first; these never fail. */
static void put_long(struct kb__audit_buf *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        b->p[b->len++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    b->p[b->len++] = (uint8_t)z;
}

static void put_bytes(struct kb__audit_buf *b, const void *p, size_t n)
{
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static int utf8_ok(const uint8_t *s, size_t n);

/*
 * Strings come from outside (ce_* headers, subscription files): the
 * decoder refuses a string that is not UTF-8, so writing one verbatim
 * would make a record that verify calls altered and on which
 * kb_audit_resume refuses to extend the chain, forever. The record is
 * written anyway (refusing it would leave the routing decision, even a
 * dead letter's, without a record) with each byte that is not part of a
 * valid UTF-8 sequence as "\xHH" and, in such a string only, each
 * backslash as "\\", so the original bytes can be read back; the input
 * message at the record's input position keeps them too. A valid string
 * is written byte for byte, as before.
 */
static size_t escaped_len(const uint8_t *s, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        size_t k = kb__utf8_seq(s + i, n - i, NULL);
        out += k ? (s[i] == '\\' ? 2 : k) : 4;
        i += k ? k : 1;
    }
    return out;
}

static void put_str(struct kb__audit_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    const uint8_t *u = (const uint8_t *)s;
    if (utf8_ok(u, n)) {
        put_long(b, (int64_t)n);
        put_bytes(b, s, n);
        return;
    }
    static const char digits[] = "0123456789abcdef";
    put_long(b, (int64_t)escaped_len(u, n));
    for (size_t i = 0; i < n;) {
        size_t k = kb__utf8_seq(u + i, n - i, NULL);
        if (!k) {
            uint8_t *o = b->p + b->len;
            o[0] = '\\';
            o[1] = 'x';
            o[2] = (uint8_t)digits[u[i] >> 4];
            o[3] = (uint8_t)digits[u[i] & 15];
            b->len += 4;
            i++;
        } else if (u[i] == '\\') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = '\\';
            i++;
        } else {
            put_bytes(b, u + i, k);
            i += k;
        }
    }
}

/* Room for @p s in the worst case: every byte escaped to four. */
static size_t str_room(const char *s)
{
    return 4 * (s ? strlen(s) : 0) + 10;
}

kb_err_t kb__audit_encode_record(struct kb__audit_buf *b, const struct kb_audit_decision *d,
                                 uint64_t seq, int64_t recorded_at, const uint8_t *prev_hash,
                                 uint8_t record_hash[KB_AUDIT_HASH_LEN])
{
    size_t room = 5 + 10 * 8 + 3 * KB_AUDIT_HASH_LEN + str_room(d->input_topic) +
                  str_room(d->event_id) + str_room(d->event_type) + str_room(d->event_time) +
                  str_room(d->subject) + str_room(d->detail) + 20;
    for (size_t i = 0; i < d->n_recipients; i++) {
        const struct kb_audit_recipient *r = &d->recipients[i];
        room += str_room(r->subscriber) + str_room(r->purpose) + 20;
        for (size_t f = 0; f < r->n_fields; f++)
            room += str_room(r->fields[f]);
    }
    b->len = 0;
    if (kb__audit_buf_reserve(b, room))
        return KB_ERR_NOMEM;
    b->p[b->len++] = 0;
    b->p[b->len++] = (uint8_t)(KB_AUDIT_RECORD_SCHEMA_ID >> 24);
    b->p[b->len++] = (uint8_t)(KB_AUDIT_RECORD_SCHEMA_ID >> 16);
    b->p[b->len++] = (uint8_t)(KB_AUDIT_RECORD_SCHEMA_ID >> 8);
    b->p[b->len++] = (uint8_t)KB_AUDIT_RECORD_SCHEMA_ID;
    put_long(b, (int64_t)seq);
    put_str(b, d->input_topic);
    put_long(b, d->input_partition);
    put_long(b, d->input_offset);
    put_str(b, d->event_id);
    put_str(b, d->event_type);
    put_str(b, d->event_time);
    put_long(b, recorded_at);
    put_str(b, d->subject);
    put_long(b, d->schema_id);
    put_bytes(b, d->payload_sha256, KB_AUDIT_HASH_LEN);
    put_long(b, (int64_t)d->outcome);
    if (d->n_recipients) {
        put_long(b, (int64_t)d->n_recipients);
        for (size_t i = 0; i < d->n_recipients; i++) {
            const struct kb_audit_recipient *r = &d->recipients[i];
            put_str(b, r->subscriber);
            put_str(b, r->purpose);
            if (r->n_fields) {
                put_long(b, (int64_t)r->n_fields);
                for (size_t f = 0; f < r->n_fields; f++)
                    put_str(b, r->fields[f]);
            }
            put_long(b, 0);
        }
    }
    put_long(b, 0);
    put_str(b, d->detail);
    put_bytes(b, prev_hash, KB_AUDIT_HASH_LEN);
    /* The record hash covers every byte before it, framing included. */
    kb__audit_sha256(b->p, b->len, record_hash);
    put_bytes(b, record_hash, KB_AUDIT_HASH_LEN);
    return KB_OK;
}

kb_err_t kb__audit_encode_checkpoint_body(struct kb__audit_buf *b, const char *input_topic,
                                          int32_t input_partition, uint64_t seq,
                                          const uint8_t *head, int64_t created_at,
                                          const char *key_id)
{
    b->len = 0;
    if (kb__audit_buf_reserve(b, 5 + 40 + str_room(input_topic) + str_room(key_id) +
                                     KB_AUDIT_HASH_LEN + KB_AUDIT_SIG_LEN))
        return KB_ERR_NOMEM;
    b->p[b->len++] = 0;
    b->p[b->len++] = (uint8_t)(KB_AUDIT_CHECKPOINT_SCHEMA_ID >> 24);
    b->p[b->len++] = (uint8_t)(KB_AUDIT_CHECKPOINT_SCHEMA_ID >> 16);
    b->p[b->len++] = (uint8_t)(KB_AUDIT_CHECKPOINT_SCHEMA_ID >> 8);
    b->p[b->len++] = (uint8_t)KB_AUDIT_CHECKPOINT_SCHEMA_ID;
    put_str(b, input_topic);
    put_long(b, input_partition);
    put_long(b, (int64_t)seq);
    put_bytes(b, head, KB_AUDIT_HASH_LEN);
    put_long(b, created_at);
    put_str(b, key_id);
    return KB_OK; /* the caller signs b and appends the 64-byte signature */
}

void kb__audit_put_signature(struct kb__audit_buf *b, const uint8_t sig[KB_AUDIT_SIG_LEN])
{
    put_bytes(b, sig, KB_AUDIT_SIG_LEN);
}

/* ---- reading ------------------------------------------------------------ */

struct rd {
    const uint8_t *p, *end;
    const char *field; /* field being read, for the error message */
};

static int get_long_slow(struct rd *r, int64_t *out)
{
    uint64_t z = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t c = *r->p++;
        if (shift == 63 && c > 1)
            return -1;
        z |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
            return 0;
        }
    }
    return -1;
}

/* Most longs of a record are string lengths under 64: one byte. */
static inline int get_long(struct rd *r, int64_t *out)
{
    if (r->p < r->end && !(*r->p & 0x80)) {
        uint8_t c = *r->p++;
        *out = (int64_t)(c >> 1) ^ -(int64_t)(c & 1);
        return 0;
    }
    return get_long_slow(r, out);
}

static int get_int(struct rd *r, int32_t *out)
{
    int64_t v;
    if (get_long(r, &v) || v < INT32_MIN || v > INT32_MAX)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/* The fields are almost always ASCII: OR the string together 8 bytes at a
 * time (the last word overlapping) and look at the high bits once; only a
 * string with a byte >= 0x80 takes the full check. */
static inline int utf8_ok(const uint8_t *s, size_t n)
{
    uint64_t acc = 0;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            acc |= w;
        }
        uint64_t w;
        memcpy(&w, s + n - 8, 8);
        acc |= w;
    } else {
        for (size_t i = 0; i < n; i++)
            acc |= s[i];
    }
    return !(acc & 0x8080808080808080ull) || kb__utf8_scalar(s, n);
}

static int get_str(struct rd *r, struct kb_audit_str *out)
{
    int64_t n;
    if (get_long(r, &n) || n < 0 || n > r->end - r->p)
        return -1;
    if (!utf8_ok(r->p, (size_t)n))
        return -1;
    out->ptr = (const char *)r->p;
    out->len = (size_t)n;
    r->p += n;
    return 0;
}

static int get_fixed(struct rd *r, size_t n, const uint8_t **out)
{
    if ((size_t)(r->end - r->p) < n)
        return -1;
    *out = r->p;
    r->p += n;
    return 0;
}

/* Start of an Avro array block: item count (a negative count is followed
 * by the block's byte size). 0 ends the array. */
static int get_block(struct rd *r, int64_t *count)
{
    if (get_long(r, count))
        return -1;
    if (*count < 0) {
        int64_t size;
        if (*count == INT64_MIN || get_long(r, &size) || size < 0)
            return -1;
        *count = -*count;
    }
    return 0;
}

/* Walk an array<string>, counting its items. */
static int skip_str_array(struct rd *r, size_t *n_items)
{
    *n_items = 0;
    for (;;) {
        int64_t count;
        if (get_block(r, &count))
            return -1;
        if (!count)
            return 0;
        if (count > r->end - r->p) /* every item takes at least one byte */
            return -1;
        for (int64_t i = 0; i < count; i++) {
            struct kb_audit_str s;
            if (get_str(r, &s))
                return -1;
        }
        *n_items += (size_t)count;
    }
}

static int32_t frame_id(const uint8_t *v, size_t len)
{
    if (len < 5 || v[0] != 0)
        return -1;
    return (int32_t)((uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4]);
}

int32_t kb_audit_kind(const void *value, size_t len)
{
    int32_t id = value ? frame_id(value, len) : -1;
    return id == KB_AUDIT_RECORD_SCHEMA_ID || id == KB_AUDIT_CHECKPOINT_SCHEMA_ID ? id : -1;
}

#define FIELD(name, expr)                                                                \
    do {                                                                                 \
        r.field = name;                                                                  \
        if (expr)                                                                        \
            goto out_bad;                                                                \
    } while (0)

kb_err_t kb_audit_decode_record(const void *value, size_t len, struct kb_audit_record *rec,
                                char *errstr, size_t errstr_size)
{
    if (!value || frame_id(value, len) != KB_AUDIT_RECORD_SCHEMA_ID)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "not an audit record (framing or schema id)");
    struct rd r = {(const uint8_t *)value + 5, (const uint8_t *)value + len, ""};
    int64_t v;
    FIELD("sequence", get_long(&r, &v) || v < 0);
    rec->sequence = (uint64_t)v;
    FIELD("inputTopic", get_str(&r, &rec->input_topic));
    FIELD("inputPartition", get_int(&r, &rec->input_partition));
    FIELD("inputOffset", get_long(&r, &rec->input_offset));
    FIELD("eventId", get_str(&r, &rec->event_id));
    FIELD("eventType", get_str(&r, &rec->event_type));
    FIELD("eventTime", get_str(&r, &rec->event_time));
    FIELD("recordedAt", get_long(&r, &rec->recorded_at));
    FIELD("subject", get_str(&r, &rec->subject));
    FIELD("schemaId", get_int(&r, &rec->schema_id));
    FIELD("payloadSha256", get_fixed(&r, KB_AUDIT_HASH_LEN, &rec->payload_sha256));
    int32_t outcome;
    FIELD("outcome", get_int(&r, &outcome) || outcome < 0 || outcome > KB_AUDIT_REPLAYED);
    rec->outcome = outcome;
    rec->rcpt_at = r.p;
    rec->n_recipients = 0;
    for (;;) {
        int64_t count;
        FIELD("recipients", get_block(&r, &count) || count > r.end - r.p);
        if (!count)
            break;
        for (int64_t i = 0; i < count; i++) {
            struct kb_audit_str s;
            size_t nf;
            FIELD("recipients.subscriber", get_str(&r, &s));
            FIELD("recipients.purpose", get_str(&r, &s));
            FIELD("recipients.fields", skip_str_array(&r, &nf));
        }
        rec->n_recipients += (size_t)count;
    }
    rec->rcpt_end = r.p;
    FIELD("detail", get_str(&r, &rec->detail));
    FIELD("prevHash", get_fixed(&r, KB_AUDIT_HASH_LEN, &rec->prev_hash));
    FIELD("recordHash", get_fixed(&r, KB_AUDIT_HASH_LEN, &rec->record_hash));
    if (r.p != r.end)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "%zu trailing bytes after recordHash", (size_t)(r.end - r.p));
    return KB_OK;
out_bad:
    return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "malformed field %s at byte %zu",
                      r.field, (size_t)(r.p - (const uint8_t *)value));
}

int kb_audit_record_hash_ok(const void *value, size_t len)
{
    if (len < 5 + KB_AUDIT_HASH_LEN)
        return 0;
    uint8_t h[KB_AUDIT_HASH_LEN];
    kb__audit_sha256(value, len - KB_AUDIT_HASH_LEN, h);
    return !memcmp(h, (const uint8_t *)value + len - KB_AUDIT_HASH_LEN, KB_AUDIT_HASH_LEN);
}

kb_err_t kb_audit_decode_checkpoint(const void *value, size_t len,
                                    struct kb_audit_checkpoint *cp, char *errstr,
                                    size_t errstr_size)
{
    if (!value || frame_id(value, len) != KB_AUDIT_CHECKPOINT_SCHEMA_ID)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "not an audit checkpoint (framing or schema id)");
    struct rd r = {(const uint8_t *)value + 5, (const uint8_t *)value + len, ""};
    int64_t v;
    FIELD("inputTopic", get_str(&r, &cp->input_topic));
    FIELD("inputPartition", get_int(&r, &cp->input_partition));
    FIELD("sequence", get_long(&r, &v) || v < 0);
    cp->sequence = (uint64_t)v;
    FIELD("headHash", get_fixed(&r, KB_AUDIT_HASH_LEN, &cp->head_hash));
    FIELD("createdAt", get_long(&r, &cp->created_at));
    FIELD("keyId", get_str(&r, &cp->key_id));
    cp->signed_len = (size_t)(r.p - (const uint8_t *)value);
    FIELD("signature", get_fixed(&r, KB_AUDIT_SIG_LEN, &cp->signature));
    if (r.p != r.end)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "%zu trailing bytes after signature", (size_t)(r.end - r.p));
    return KB_OK;
out_bad:
    return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "malformed field %s at byte %zu",
                      r.field, (size_t)(r.p - (const uint8_t *)value));
}

/* Iterators run over bytes kb_audit_decode_record() already checked, so
 * they only stop (never fail) on anything unexpected. */
void kb_audit_rcpt_iter(const struct kb_audit_record *rec, struct kb_audit_iter *it)
{
    it->p = rec->rcpt_at;
    it->end = rec->rcpt_end;
    it->left = 0;
}

static int iter_item(struct kb_audit_iter *it)
{
    if (it->left == 0) {
        struct rd r = {it->p, it->end, ""};
        int64_t count;
        if (r.p >= r.end || get_block(&r, &count) || count == 0) {
            it->p = it->end;
            return 0;
        }
        it->p = r.p;
        it->left = count;
    }
    it->left--;
    return 1;
}

int kb_audit_rcpt_next(struct kb_audit_iter *it, struct kb_audit_rcpt_view *out)
{
    if (!iter_item(it))
        return 0;
    struct rd r = {it->p, it->end, ""};
    if (get_str(&r, &out->subscriber) || get_str(&r, &out->purpose))
        goto out_end;
    out->fields_at = r.p;
    if (skip_str_array(&r, &out->n_fields))
        goto out_end;
    out->fields_end = r.p;
    it->p = r.p;
    return 1;
out_end:
    it->p = it->end;
    it->left = 0;
    return 0;
}

void kb_audit_field_iter(const struct kb_audit_rcpt_view *rv, struct kb_audit_iter *it)
{
    it->p = rv->fields_at;
    it->end = rv->fields_end;
    it->left = 0;
}

int kb_audit_field_next(struct kb_audit_iter *it, struct kb_audit_str *out)
{
    if (!iter_item(it))
        return 0;
    struct rd r = {it->p, it->end, ""};
    if (get_str(&r, out)) {
        it->p = it->end;
        it->left = 0;
        return 0;
    }
    it->p = r.p;
    return 1;
}

void kb_audit_sha256(const void *data, size_t len, uint8_t out[KB_AUDIT_HASH_LEN])
{
    kb__audit_sha256(data, len, out);
}

const char *kb_audit_outcome_name(int outcome)
{
    static const char *const names[] = {"delivered", "filtered", "dead-lettered", "duplicate",
                                        "replayed"};
    return outcome >= 0 && outcome <= KB_AUDIT_REPLAYED ? names[outcome] : "unknown";
}

const char *kb_audit_problem_name(int kind)
{
    switch (kind) {
    case KB_AUDIT_ALTERED: return "altered";
    case KB_AUDIT_MISSING: return "missing";
    case KB_AUDIT_REORDERED: return "reordered";
    case KB_AUDIT_BAD_SIGNATURE: return "bad signature";
    default: return "unknown";
    }
}

/* Kafka's Java default partitioner (murmur2 of the key), so the chain of a
 * key sits in the partition any Kafka tool would also pick. */
int32_t kb__audit_partition_for(const char *key, size_t len, int32_t partitions)
{
    const uint32_t seed = 0x9747b28c, m = 0x5bd1e995;
    const uint8_t *data = (const uint8_t *)key;
    uint32_t h = seed ^ (uint32_t)len;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 |
                     (uint32_t)data[i + 2] << 16 | (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len & 3) {
    case 3: h ^= (uint32_t)data[i + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)data[i + 1] << 8;  /* fall through */
    case 1:
        h ^= data[i];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return partitions > 0 ? (int32_t)((h & 0x7fffffff) % (uint32_t)partitions) : 0;
}

void kb__audit_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}
