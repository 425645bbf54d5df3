/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_audit.c - libFuzzer target for the audit trail readers: the
 * record/checkpoint decoders (kb_audit_decode_record/_checkpoint and the
 * recipient/field iterators) and the streaming verifier, which read bytes
 * from the audit topic that anyone with produce rights could have written.
 *
 * The whole input is decoded as one value (record and checkpoint). Accepted
 * input must keep every view inside the value, iterate to exactly the
 * counted recipients and fields, and survive re-encoding with the writer's
 * own encoder (decode(encode(decode(x))) == decode(x)). Then the input is
 * cut at "\xffAUD" separators into up to 16 audit messages for the
 * verifier; a record's recordHash (and, when the first byte of its segment
 * says so, its prevHash) is fixed up first, so that the fuzzer reaches the
 * chain logic instead of stopping at the hash check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "ketenbus/audit.h"

#define MAX_MSGS   16
#define MAX_RCPT   64
#define MAX_FIELDS 256

static int inside(const void *p, size_t n, const uint8_t *v, size_t len)
{
    const uint8_t *b = p;
    return b >= v && n <= len && b - v <= (ptrdiff_t)(len - n);
}

static int str_inside(struct kb_audit_str s, const uint8_t *v, size_t len)
{
    return inside(s.ptr, s.len, v, len);
}

/* A NUL-terminated copy, or NULL when the string holds a NUL (the encoder
 * takes C strings, so such records cannot be re-encoded). */
static char *cstr(struct kb_audit_str s)
{
    if (memchr(s.ptr, '\0', s.len))
        return NULL;
    char *c = malloc(s.len + 1);
    if (!c)
        abort();
    memcpy(c, s.ptr, s.len);
    c[s.len] = '\0';
    return c;
}

static int str_same(struct kb_audit_str a, struct kb_audit_str b)
{
    return a.len == b.len && !memcmp(a.ptr, b.ptr, a.len);
}

static void same_record(const struct kb_audit_record *a, const struct kb_audit_record *b)
{
    if (a->sequence != b->sequence || !str_same(a->input_topic, b->input_topic) ||
        a->input_partition != b->input_partition || a->input_offset != b->input_offset ||
        !str_same(a->event_id, b->event_id) || !str_same(a->event_type, b->event_type) ||
        !str_same(a->event_time, b->event_time) || a->recorded_at != b->recorded_at ||
        !str_same(a->subject, b->subject) || a->schema_id != b->schema_id ||
        memcmp(a->payload_sha256, b->payload_sha256, KB_AUDIT_HASH_LEN) ||
        a->outcome != b->outcome || a->n_recipients != b->n_recipients ||
        !str_same(a->detail, b->detail) || memcmp(a->prev_hash, b->prev_hash, KB_AUDIT_HASH_LEN))
        abort(); /* re-encoding changed the record */
    struct kb_audit_iter ia, ib;
    struct kb_audit_rcpt_view ra, rb;
    kb_audit_rcpt_iter(a, &ia);
    kb_audit_rcpt_iter(b, &ib);
    while (kb_audit_rcpt_next(&ia, &ra)) {
        if (!kb_audit_rcpt_next(&ib, &rb) || !str_same(ra.subscriber, rb.subscriber) ||
            !str_same(ra.purpose, rb.purpose) || ra.n_fields != rb.n_fields)
            abort();
        struct kb_audit_iter fa, fb;
        struct kb_audit_str sa, sb;
        kb_audit_field_iter(&ra, &fa);
        kb_audit_field_iter(&rb, &fb);
        while (kb_audit_field_next(&fa, &sa))
            if (!kb_audit_field_next(&fb, &sb) || !str_same(sa, sb))
                abort();
        if (kb_audit_field_next(&fb, &sb))
            abort();
    }
    if (kb_audit_rcpt_next(&ib, &rb))
        abort();
}

/* Re-encode @p rec with the writer's encoder; the result must decode to the same record. */
static void reencode_record(const struct kb_audit_record *rec)
{
    if (rec->n_recipients > MAX_RCPT)
        return;
    struct kb_audit_recipient rcpt[MAX_RCPT];
    char *fields[MAX_FIELDS];
    size_t nf_total = 0, nr = 0;
    char *strs[8] = {0};
    int ok = 1;
    struct kb_audit_decision d;
    memset(&d, 0, sizeof d);
    const struct kb_audit_str *src[6] = {&rec->input_topic, &rec->event_id, &rec->event_type,
                                         &rec->event_time,  &rec->subject,  &rec->detail};
    for (int i = 0; i < 6; i++)
        if (!(strs[i] = cstr(*src[i])))
            ok = 0;
    struct kb_audit_iter it;
    struct kb_audit_rcpt_view rv;
    kb_audit_rcpt_iter(rec, &it);
    while (ok && kb_audit_rcpt_next(&it, &rv)) {
        rcpt[nr].subscriber = cstr(rv.subscriber);
        rcpt[nr].purpose = cstr(rv.purpose);
        rcpt[nr].fields = (const char *const *)&fields[nf_total];
        rcpt[nr].n_fields = 0;
        nr++;
        if (!rcpt[nr - 1].subscriber || !rcpt[nr - 1].purpose) {
            ok = 0;
            break;
        }
        struct kb_audit_iter fi;
        struct kb_audit_str fs;
        kb_audit_field_iter(&rv, &fi);
        while (kb_audit_field_next(&fi, &fs)) {
            if (nf_total == MAX_FIELDS || !(fields[nf_total] = cstr(fs))) {
                ok = 0;
                break;
            }
            nf_total++;
            rcpt[nr - 1].n_fields++;
        }
    }
    if (ok) {
        d.input_topic = strs[0];
        d.input_partition = rec->input_partition;
        d.input_offset = rec->input_offset;
        d.event_id = strs[1];
        d.event_type = strs[2];
        d.event_time = strs[3];
        d.subject = strs[4];
        d.schema_id = rec->schema_id;
        memcpy(d.payload_sha256, rec->payload_sha256, KB_AUDIT_HASH_LEN);
        d.outcome = (enum kb_audit_outcome)rec->outcome;
        d.detail = strs[5];
        d.recipients = rcpt;
        d.n_recipients = nr;
        struct kb__audit_buf b = {0};
        uint8_t hash[KB_AUDIT_HASH_LEN];
        if (kb__audit_encode_record(&b, &d, rec->sequence, rec->recorded_at, rec->prev_hash,
                                    hash) != KB_OK)
            abort();
        struct kb_audit_record back;
        char err[256];
        if (kb_audit_decode_record(b.p, b.len, &back, err, sizeof err) != KB_OK)
            abort(); /* our own encoding rejected */
        if (!kb_audit_record_hash_ok(b.p, b.len) || memcmp(back.record_hash, hash, sizeof hash))
            abort();
        same_record(rec, &back);
        free(b.p);
    }
    for (size_t i = 0; i < nr; i++) {
        free((char *)rcpt[i].subscriber);
        free((char *)rcpt[i].purpose);
    }
    for (size_t i = 0; i < nf_total; i++)
        free(fields[i]);
    for (int i = 0; i < 6; i++)
        free(strs[i]);
}

static void check_record(const uint8_t *v, size_t len)
{
    struct kb_audit_record rec;
    char err[256];
    err[0] = '\0';
    if (kb_audit_decode_record(v, len, &rec, err, sizeof err) != KB_OK) {
        if (!err[0])
            abort(); /* a rejection must say why */
        return;
    }
    if (kb_audit_kind(v, len) != KB_AUDIT_RECORD_SCHEMA_ID)
        abort();
    if (!str_inside(rec.input_topic, v, len) || !str_inside(rec.event_id, v, len) ||
        !str_inside(rec.event_type, v, len) || !str_inside(rec.event_time, v, len) ||
        !str_inside(rec.subject, v, len) || !str_inside(rec.detail, v, len) ||
        !inside(rec.payload_sha256, KB_AUDIT_HASH_LEN, v, len) ||
        !inside(rec.prev_hash, KB_AUDIT_HASH_LEN, v, len) ||
        rec.record_hash != v + len - KB_AUDIT_HASH_LEN || rec.rcpt_at > rec.rcpt_end ||
        !inside(rec.rcpt_at, (size_t)(rec.rcpt_end - rec.rcpt_at), v, len))
        abort(); /* a view outside the value */
    if (rec.outcome < KB_AUDIT_DELIVERED || rec.outcome > KB_AUDIT_REPLAYED)
        abort();
    size_t n = 0;
    struct kb_audit_iter it;
    struct kb_audit_rcpt_view rv;
    kb_audit_rcpt_iter(&rec, &it);
    while (kb_audit_rcpt_next(&it, &rv)) {
        n++;
        if (!str_inside(rv.subscriber, v, len) || !str_inside(rv.purpose, v, len))
            abort();
        size_t nf = 0;
        struct kb_audit_iter fi;
        struct kb_audit_str fs;
        kb_audit_field_iter(&rv, &fi);
        while (kb_audit_field_next(&fi, &fs)) {
            if (!str_inside(fs, v, len))
                abort();
            nf++;
        }
        if (nf != rv.n_fields)
            abort(); /* iterator and count disagree */
    }
    if (n != rec.n_recipients)
        abort();
    struct kb_audit_filter f = {.subscriber = "melding", .subject = NULL, .outcome = -1};
    kb_audit_filter_match(&f, &rec);
    f = (struct kb_audit_filter){
        .event_type = "nl.brp.persoon.geboren", .outcome = 0, .from_ms = 1, .to_ms = INT64_MAX};
    kb_audit_filter_match(&f, &rec);
    reencode_record(&rec);
}

static void check_checkpoint(const uint8_t *v, size_t len)
{
    struct kb_audit_checkpoint cp;
    char err[256];
    err[0] = '\0';
    if (kb_audit_decode_checkpoint(v, len, &cp, err, sizeof err) != KB_OK) {
        if (!err[0])
            abort();
        return;
    }
    if (kb_audit_kind(v, len) != KB_AUDIT_CHECKPOINT_SCHEMA_ID)
        abort();
    if (cp.signed_len + KB_AUDIT_SIG_LEN != len || cp.signature != v + cp.signed_len ||
        !str_inside(cp.input_topic, v, len) || !str_inside(cp.key_id, v, len) ||
        !inside(cp.head_hash, KB_AUDIT_HASH_LEN, v, len))
        abort();
    char *topic = cstr(cp.input_topic), *key_id = cstr(cp.key_id);
    if (topic && key_id) {
        struct kb__audit_buf b = {0};
        if (kb__audit_encode_checkpoint_body(&b, topic, cp.input_partition, cp.sequence,
                                             cp.head_hash, cp.created_at, key_id) != KB_OK)
            abort();
        kb__audit_put_signature(&b, cp.signature);
        struct kb_audit_checkpoint back;
        if (kb_audit_decode_checkpoint(b.p, b.len, &back, err, sizeof err) != KB_OK)
            abort();
        if (!str_same(back.input_topic, cp.input_topic) ||
            back.input_partition != cp.input_partition || back.sequence != cp.sequence ||
            memcmp(back.head_hash, cp.head_hash, KB_AUDIT_HASH_LEN) ||
            back.created_at != cp.created_at || !str_same(back.key_id, cp.key_id) ||
            memcmp(back.signature, cp.signature, KB_AUDIT_SIG_LEN) ||
            back.signed_len != b.len - KB_AUDIT_SIG_LEN)
            abort();
        free(b.p);
    }
    free(topic);
    free(key_id);
}

/* The verifier over the input cut into messages (each in its own allocation). */
static void verify(const uint8_t *data, size_t size)
{
    static const uint8_t sep[4] = {0xff, 'A', 'U', 'D'};
    struct kb_audit_verify_opts o = {0};
    char err[256];
    kb_audit_verifier_t *v = kb_audit_verifier_new(&o, err, sizeof err);
    if (!v)
        abort();
    uint8_t last_hash[KB_AUDIT_HASH_LEN] = {0};
    size_t pos = 0;
    for (int m = 0; m < MAX_MSGS && pos < size; m++) {
        const uint8_t *seg = data + pos;
        size_t n = size - pos;
        const uint8_t *cut = NULL;
        for (size_t i = 0; i + sizeof sep <= n; i++)
            if (!memcmp(seg + i, sep, sizeof sep)) {
                cut = seg + i;
                break;
            }
        if (cut)
            n = (size_t)(cut - seg);
        pos += n + (cut ? sizeof sep : 0);
        if (n == 0)
            continue;
        /* Segment: 1 control byte (bit 0-1 partition, bit 2 link prevHash,
         * bit 3 key from the record, bit 4 no hash fix-up), then the value. */
        uint8_t ctl = seg[0];
        size_t len = n - 1;
        uint8_t *val = malloc(len ? len : 1);
        if (!val)
            abort();
        if (len)
            memcpy(val, seg + 1, len);
        char key[KB_AUDIT_KEY_MAX] = "kb.in.gba/0";
        struct kb_audit_record rec;
        struct kb_audit_checkpoint cp;
        if (kb_audit_decode_record(val, len, &rec, err, sizeof err) == KB_OK) {
            if (ctl & 8)
                snprintf(key, sizeof key, "%.*s/%d",
                         (int)(rec.input_topic.len > 200 ? 200 : rec.input_topic.len),
                         rec.input_topic.ptr, (int)rec.input_partition);
            if (ctl & 4)
                memcpy((uint8_t *)rec.prev_hash, last_hash, KB_AUDIT_HASH_LEN);
            if (!(ctl & 16))
                kb__audit_sha256(val, len - KB_AUDIT_HASH_LEN, (uint8_t *)rec.record_hash);
            memcpy(last_hash, rec.record_hash, KB_AUDIT_HASH_LEN);
        } else if ((ctl & 8) &&
                   kb_audit_decode_checkpoint(val, len, &cp, err, sizeof err) == KB_OK) {
            snprintf(key, sizeof key, "%.*s/%d",
                     (int)(cp.input_topic.len > 200 ? 200 : cp.input_topic.len), cp.input_topic.ptr,
                     (int)cp.input_partition);
        }
        if (kb_audit_verifier_feed(v, ctl & 3, m, key, strlen(key), val, len) != KB_OK)
            abort();
        free(val);
    }
    kb_audit_verifier_finish(v);
    size_t np, nc;
    const struct kb_audit_problem *p = kb_audit_verifier_problems(v, &np);
    const struct kb_audit_chain_summary *c = kb_audit_verifier_chains(v, &nc);
    for (size_t i = 0; i < np; i++)
        if (!memchr(p[i].chain, '\0', sizeof p[i].chain) ||
            !memchr(p[i].what, '\0', sizeof p[i].what) || !kb_audit_problem_name(p[i].kind))
            abort();
    for (size_t i = 0; i < nc; i++)
        if (!memchr(c[i].chain, '\0', sizeof c[i].chain) ||
            !memchr(c[i].input_topic, '\0', sizeof c[i].input_topic))
            abort();
    uint64_t msgs, recs, cps;
    kb_audit_verifier_counts(v, &msgs, &recs, &cps);
    if (recs + cps > msgs)
        abort();
    kb_audit_verifier_destroy(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy so that ASan sees any read past the value. */
    uint8_t *v = malloc(size ? size : 1);
    if (!v)
        abort();
    if (size)
        memcpy(v, data, size);
    check_record(v, size);
    check_checkpoint(v, size);
    free(v);
    verify(data, size);
    return 0;
}
