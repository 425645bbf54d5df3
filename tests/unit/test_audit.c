/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_audit.c - the audit trail offline: record encoding against avro-c in
 * both directions, chain rules across commit/abort, signed checkpoints, and
 * the verifier's verdict on tampered in-memory trails (altered, deleted,
 * reordered, re-signed, re-hashed). Run with arguments it is the broker-side
 * helper of tests/integration/audit_trail.sh (see tool_main below).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "audit_int.h"
#include "kb_test.h"
#include "test_audit_trail.h"
#include "ketenbus/admin.h"
#include "ketenbus/audit.h"
#include "ketenbus/event.h"
#include "ketenbus/schema.h"

static char tmpdir[256];
static char priv_path[300], pub_path[300], wrong_priv[300], wrong_pub[300];

static const char *const fields_svb[] = {"kind.bsn", "kind.geboortedatum", "inschrijving.gemeente"};

static void decision_for(struct kb_audit_decision *d, struct kb_audit_recipient *r,
                         const char *topic, int32_t partition, int64_t offset, char id[37])
{
    memset(d, 0, sizeof *d);
    char name[64];
    snprintf(name, sizeof name, "%s-%d-%" PRId64, topic, partition, offset);
    kb_event_uuid5(name, strlen(name), id);
    d->input_topic = topic;
    d->input_partition = partition;
    d->input_offset = offset;
    d->event_id = id;
    d->event_type = "nl.brp.persoon-geboren";
    d->event_time = "2024-03-18T09:15:30.250Z";
    d->subject = "0123456789abcdef0123456789abcdef";
    d->schema_id = 1001;
    kb_audit_sha256(name, strlen(name), d->payload_sha256);
    d->recorded_at_ms = 1710753330250 + offset;
    if (offset % 2 == 0) {
        r->subscriber = "svb-kinderbijslag";
        r->purpose = "akw-uitnodiging";
        r->fields = fields_svb;
        r->n_fields = 3;
        d->outcome = KB_AUDIT_DELIVERED;
        d->recipients = r;
        d->n_recipients = 1;
    } else {
        d->outcome = KB_AUDIT_FILTERED;
    }
}

/* Two chains (in.gba/0, in.gba/1) of @p per_chain records each, committed
 * in transactions of 4, checkpoints every 5 records, into one audit
 * partition (partitions = 1, as the verifier sees a partition). */
static void build_trail(struct trail *t, int per_chain)
{
    char errstr[256];
    struct kb_audit_opts o = {.partitions = 1, .signing_key_file = priv_path,
                              .checkpoint_every = 5, .checkpoint_ms = 3600000};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    CHECK(a != NULL);
    if (!a)
        return;
    kb_audit_resume_at(a, "kb.in.gba", 0, 0, NULL);
    kb_audit_resume_at(a, "kb.in.gba", 1, 0, NULL);
    for (int i = 0; i < per_chain; i += 4) {
        for (int j = i; j < i + 4 && j < per_chain; j++) {
            for (int p = 0; p < 2; p++) {
                struct kb_audit_decision d;
                struct kb_audit_recipient r;
                char id[37];
                struct kb_audit_msg am;
                decision_for(&d, &r, "kb.in.gba", p, j, id);
                CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_OK);
                trail_add(t, &am);
            }
        }
        struct kb_audit_msg cps[4];
        size_t n = kb_audit_checkpoints(a, cps, 4);
        for (size_t k = 0; k < n; k++)
            trail_add(t, &cps[k]);
        kb_audit_commit(a);
    }
    kb_audit_destroy(a);
}

struct verdict {
    size_t n;
    struct kb_audit_problem p[16];
    uint64_t records, checkpoints;
    uint64_t gone;
};

static int64_t low_five(void *opaque, const char *topic, int32_t partition)
{
    return partition == 0 ? 5 : 0;
}

static void verify_with(const struct trail *t, const struct kb_audit_verify_opts *vo,
                        struct verdict *out);

static void verify_trail(const struct trail *t, const char *pub, struct verdict *out,
                         int with_retention)
{
    const char *keys[1] = {pub};
    struct kb_audit_verify_opts vo = {.public_key_files = keys, .n_public_keys = 1,
                                      .from_start = 1,
                                      .input_low = with_retention ? low_five : NULL};
    verify_with(t, &vo, out);
}

/* Feed trail @p t as audit partition 0 to a verifier made with @p vo. */
static void verify_with(const struct trail *t, const struct kb_audit_verify_opts *vo,
                        struct verdict *out)
{
    char errstr[256];
    kb_audit_verifier_t *v = kb_audit_verifier_new(vo, errstr, sizeof errstr);
    CHECK(v != NULL);
    memset(out, 0, sizeof *out);
    if (!v)
        return;
    for (size_t i = 0; i < t->n; i++)
        kb_audit_verifier_feed(v, 0, (int64_t)i, t->m[i].key, strlen(t->m[i].key),
                               t->m[i].value, t->m[i].len);
    kb_audit_verifier_finish(v);
    size_t n;
    const struct kb_audit_problem *p = kb_audit_verifier_problems(v, &n);
    out->n = n;
    if (n)
        memcpy(out->p, p, (n < 16 ? n : 16) * sizeof *p);
    kb_audit_verifier_counts(v, NULL, &out->records, &out->checkpoints);
    size_t nc;
    const struct kb_audit_chain_summary *cs = kb_audit_verifier_chains(v, &nc);
    for (size_t i = 0; i < nc; i++)
        out->gone += cs[i].gone;
    kb_audit_verifier_destroy(v);
}

/* Index of the k-th record (not checkpoint) of chain @p key in @p t. */
static size_t nth_record(const struct trail *t, const char *key, int k)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->m[i].key, key) &&
            kb_audit_kind(t->m[i].value, t->m[i].len) == KB_AUDIT_RECORD_SCHEMA_ID && k-- == 0)
            return i;
    return (size_t)-1;
}

static void test_encoding_matches_avro(void)
{
    char dir[1200], errstr[512] = "";
    snprintf(dir, sizeof dir, "%s/schemas/ketenbus", getenv("KB_SOURCE_DIR"));
    kb_schemas_t *s = kb_schemas_load_dir(dir, errstr, sizeof errstr);
    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "schemas: %s\n", errstr);
        return;
    }
    const struct kb_schema *sc = kb_schemas_by_id(s, KB_AUDIT_RECORD_SCHEMA_ID);
    CHECK(sc != NULL);
    CHECK_STR(sc ? sc->type : NULL, "ketenbus.audit-record");
    CHECK(kb_schemas_by_id(s, KB_AUDIT_CHECKPOINT_SCHEMA_ID) != NULL);

    struct trail t = {0};
    build_trail(&t, 8);
    /* Message 0 is in.gba/0 seq 0 (delivered, offset 0). avro-c reads it. */
    const struct msg *m = &t.m[0];
    avro_value_t val;
    avro_generic_value_new(sc->iface, &val);
    CHECK_INT(kb_schema_decode(sc, m->value + 5, m->len - 5, &val, errstr, sizeof errstr), KB_OK);
    avro_value_t f, item, sub;
    int64_t l = -1;
    const char *str = NULL;
    size_t sz = 0;
    avro_value_get_by_name(&val, "sequence", &f, NULL);
    avro_value_get_long(&f, &l);
    CHECK_INT(l, 0);
    avro_value_get_by_name(&val, "inputTopic", &f, NULL);
    avro_value_get_string(&f, &str, &sz);
    CHECK_STR(str, "kb.in.gba");
    avro_value_get_by_name(&val, "recordedAt", &f, NULL);
    avro_value_get_long(&f, &l);
    CHECK_INT(l, 1710753330250);
    avro_value_get_by_name(&val, "recipients", &f, NULL);
    avro_value_get_size(&f, &sz);
    CHECK_INT(sz, 1);
    avro_value_get_by_index(&f, 0, &item, NULL);
    avro_value_get_by_name(&item, "fields", &sub, NULL);
    avro_value_get_size(&sub, &sz);
    CHECK_INT(sz, 3);
    avro_value_get_by_index(&sub, 2, &f, NULL);
    avro_value_get_string(&f, &str, &sz);
    CHECK_STR(str, "inschrijving.gemeente");
    /* ...and writes the same bytes (both directions). */
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    CHECK_INT(kb_schema_encode(sc, &val, &enc, &enc_len, errstr, sizeof errstr), KB_OK);
    CHECK_INT(enc_len, m->len);
    CHECK(enc && !memcmp(enc, m->value, m->len));
    free(enc);
    avro_value_decref(&val);

    /* Checkpoints decode with avro-c too. */
    const struct kb_schema *cs = kb_schemas_by_id(s, KB_AUDIT_CHECKPOINT_SCHEMA_ID);
    size_t cpi = (size_t)-1;
    for (size_t i = 0; i < t.n && cpi == (size_t)-1; i++)
        if (kb_audit_kind(t.m[i].value, t.m[i].len) == KB_AUDIT_CHECKPOINT_SCHEMA_ID)
            cpi = i;
    CHECK(cpi != (size_t)-1);
    if (cs && cpi != (size_t)-1) {
        avro_generic_value_new(cs->iface, &val);
        CHECK_INT(kb_schema_decode(cs, t.m[cpi].value + 5, t.m[cpi].len - 5, &val, errstr,
                                   sizeof errstr),
                  KB_OK);
        avro_value_get_by_name(&val, "sequence", &f, NULL);
        avro_value_get_long(&f, &l);
        CHECK_INT(l, 7); /* 8 records (seq 0..7) of a chain after the second commit */
        avro_value_decref(&val);
    }
    trail_free(&t);
    kb_schemas_destroy(s);
}

static void test_chain_rules(void)
{
    char errstr[256];
    struct kb_audit_opts o = {.partitions = 3};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    CHECK(a != NULL);
    struct kb_audit_decision d;
    struct kb_audit_recipient r;
    struct kb_audit_msg am;
    char id[37];
    decision_for(&d, &r, "kb.in.gba", 2, 0, id);
    CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_ERR_STATE);
    CHECK_INT(kb_audit_resume_at(a, "kb.in.gba", 2, 0, NULL), KB_OK);

    uint8_t prev[KB_AUDIT_HASH_LEN] = {0}, h[KB_AUDIT_HASH_LEN];
    for (int i = 0; i < 3; i++) {
        decision_for(&d, &r, "kb.in.gba", 2, i, id);
        CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_OK);
        struct kb_audit_record rec;
        CHECK_INT(kb_audit_decode_record(am.value, am.len, &rec, errstr, sizeof errstr), KB_OK);
        CHECK_INT(rec.sequence, i);
        CHECK(!memcmp(rec.prev_hash, prev, sizeof prev));
        SHA256(am.value, am.len - KB_AUDIT_HASH_LEN, h); /* independent of the codec */
        CHECK(!memcmp(rec.record_hash, h, sizeof h));
        memcpy(prev, h, sizeof h);
        CHECK_MEM(am.key, am.key_len, "kb.in.gba/2");
        CHECK_INT(rec.n_recipients, i % 2 == 0 ? 1 : 0);
        CHECK_INT(rec.outcome, i % 2 == 0 ? KB_AUDIT_DELIVERED : KB_AUDIT_FILTERED);
        CHECK_MEM(rec.event_id.ptr, rec.event_id.len, id);
    }
    kb_audit_commit(a);
    uint64_t next;
    uint8_t head[KB_AUDIT_HASH_LEN];
    CHECK_INT(kb_audit_head(a, "kb.in.gba", 2, &next, head), KB_OK);
    CHECK_INT(next, 3);
    CHECK(!memcmp(head, prev, sizeof prev));

    /* An aborted transaction leaves neither gap nor fork. */
    for (int i = 3; i < 6; i++) {
        decision_for(&d, &r, "kb.in.gba", 2, i, id);
        kb_audit_append(a, &d, &am, errstr, sizeof errstr);
    }
    CHECK_INT(kb_audit_release(a, "kb.in.gba", 2), KB_ERR_STATE);
    kb_audit_abort(a);
    decision_for(&d, &r, "kb.in.gba", 2, 3, id);
    CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_OK);
    struct kb_audit_record rec;
    kb_audit_decode_record(am.value, am.len, &rec, errstr, sizeof errstr);
    CHECK_INT(rec.sequence, 3);
    CHECK(!memcmp(rec.prev_hash, prev, sizeof prev));
    kb_audit_commit(a);

    /* Pipelined: records 4-5 are handed off (mark), 6-7 appended behind
     * them; the commit of the marked transaction makes 4-5 committed and
     * leaves 6-7 pending, chained on 5. */
    uint8_t h5[KB_AUDIT_HASH_LEN];
    for (int i = 4; i < 8; i++) {
        if (i == 6)
            kb_audit_mark(a);
        decision_for(&d, &r, "kb.in.gba", 2, i, id);
        CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_OK);
        if (i == 5)
            SHA256(am.value, am.len - KB_AUDIT_HASH_LEN, h5);
        if (i == 6) {
            kb_audit_decode_record(am.value, am.len, &rec, errstr, sizeof errstr);
            CHECK(!memcmp(rec.prev_hash, h5, sizeof h5));
        }
    }
    CHECK_INT(kb_audit_head(a, "kb.in.gba", 2, &next, NULL), KB_OK);
    CHECK_INT(next, 4); /* nothing committed yet */
    kb_audit_commit_mark(a);
    CHECK_INT(kb_audit_head(a, "kb.in.gba", 2, &next, head), KB_OK);
    CHECK_INT(next, 6);
    CHECK(!memcmp(head, h5, sizeof h5));
    CHECK_INT(kb_audit_release(a, "kb.in.gba", 2), KB_ERR_STATE); /* 6-7 still pending */
    /* The batch behind aborts: back to 5, the next append is 6 again. */
    kb_audit_abort(a);
    decision_for(&d, &r, "kb.in.gba", 2, 6, id);
    CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_OK);
    kb_audit_decode_record(am.value, am.len, &rec, errstr, sizeof errstr);
    CHECK_INT(rec.sequence, 6);
    CHECK(!memcmp(rec.prev_hash, h5, sizeof h5));
    /* A mark followed by an abort (the marked transaction failed) drops both. */
    kb_audit_mark(a);
    kb_audit_abort(a);
    kb_audit_commit_mark(a); /* no mark left: nothing moves */
    CHECK_INT(kb_audit_head(a, "kb.in.gba", 2, &next, head), KB_OK);
    CHECK_INT(next, 6);
    CHECK(!memcmp(head, h5, sizeof h5));
    CHECK_INT(kb_audit_release(a, "kb.in.gba", 2), KB_OK);
    CHECK_INT(kb_audit_head(a, "kb.in.gba", 2, &next, head), KB_ERR_NOTFOUND);
    kb_audit_destroy(a);

    /* Kafka's murmur2 test vectors (Java Utils.murmur2), as partition numbers. */
    struct {
        const char *key;
        int32_t murmur;
    } vec[] = {{"21", -973932308},
               {"foobar", -790332482},
               {"a-little-bit-long-string", -985981536},
               {"a-little-bit-longer-string", -1486304829},
               {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
               {"abc", 479470107}};
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
        CHECK_INT(kb__audit_partition_for(vec[i].key, strlen(vec[i].key), 1000),
                  (int32_t)(((uint32_t)vec[i].murmur & 0x7fffffff) % 1000));
}

static void test_recipients_iter(void)
{
    char errstr[256];
    struct kb_audit_opts o = {.partitions = 1};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    kb_audit_resume_at(a, "kb.in.svb", 0, 7, NULL);
    const char *const f2[] = {"aanvraag.kind.bsn"};
    struct kb_audit_recipient rs[2] = {{"svb-kinderbijslag", "akw", fields_svb, 3},
                                       {"gemeente-0344", "brp-bijhouding", f2, 1}};
    struct kb_audit_decision d;
    struct kb_audit_recipient dummy;
    char id[37];
    decision_for(&d, &dummy, "kb.in.svb", 0, 1, id);
    d.outcome = KB_AUDIT_DELIVERED;
    d.recipients = rs;
    d.n_recipients = 2;
    d.detail = NULL;
    struct kb_audit_msg am;
    CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_OK);
    struct kb_audit_record rec;
    CHECK_INT(kb_audit_decode_record(am.value, am.len, &rec, errstr, sizeof errstr), KB_OK);
    CHECK_INT(rec.sequence, 7);
    CHECK_INT(rec.n_recipients, 2);
    struct kb_audit_iter it, fit;
    struct kb_audit_rcpt_view rv;
    struct kb_audit_str s;
    kb_audit_rcpt_iter(&rec, &it);
    CHECK(kb_audit_rcpt_next(&it, &rv));
    CHECK_MEM(rv.subscriber.ptr, rv.subscriber.len, "svb-kinderbijslag");
    CHECK_INT(rv.n_fields, 3);
    kb_audit_field_iter(&rv, &fit);
    CHECK(kb_audit_field_next(&fit, &s));
    CHECK_MEM(s.ptr, s.len, "kind.bsn");
    CHECK(kb_audit_rcpt_next(&it, &rv));
    CHECK_MEM(rv.purpose.ptr, rv.purpose.len, "brp-bijhouding");
    kb_audit_field_iter(&rv, &fit);
    CHECK(kb_audit_field_next(&fit, &s));
    CHECK_MEM(s.ptr, s.len, "aanvraag.kind.bsn");
    CHECK(!kb_audit_field_next(&fit, &s));
    CHECK(!kb_audit_rcpt_next(&it, &rv));
    struct kb_audit_filter flt = {.subscriber = "gemeente-0344", .outcome = -1};
    CHECK(kb_audit_filter_match(&flt, &rec));
    flt.subscriber = "gemeente-0363";
    CHECK(!kb_audit_filter_match(&flt, &rec));
    flt.subscriber = NULL;
    flt.subject = "0123456789abcdef0123456789abcdef";
    flt.event_type = "nl.brp.persoon-geboren";
    CHECK(kb_audit_filter_match(&flt, &rec));
    /* One person's pseudonyms (BSN, A-nummer): any of them matches. */
    const char *const either[] = {"ffffffffffffffffffffffffffffffff",
                                  "0123456789abcdef0123456789abcdef"};
    flt.subject = NULL;
    flt.subjects = either;
    flt.n_subjects = 1;
    CHECK(!kb_audit_filter_match(&flt, &rec));
    flt.n_subjects = 2;
    CHECK(kb_audit_filter_match(&flt, &rec));
    flt.to_ms = 1710753330250 - 1;
    CHECK(!kb_audit_filter_match(&flt, &rec));

    /* Every truncation of a valid record is rejected, never read past. */
    uint8_t *copy = malloc(am.len);
    memcpy(copy, am.value, am.len);
    int rejected = 0;
    for (size_t n = 0; n < am.len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, copy, n);
        rejected += kb_audit_decode_record(cut, n, &rec, errstr, sizeof errstr) != KB_OK;
        free(cut);
    }
    CHECK_INT(rejected, am.len);
    /* A flipped byte anywhere is caught: by the decoder or by the hash. */
    int caught = 0;
    for (size_t i = 0; i < am.len; i++) {
        copy[i] ^= 0x40;
        caught += kb_audit_decode_record(copy, am.len, &rec, errstr, sizeof errstr) != KB_OK ||
                  !kb_audit_record_hash_ok(copy, am.len);
        copy[i] ^= 0x40;
    }
    CHECK_INT(caught, am.len);
    free(copy);
    kb_audit_destroy(a);
}

static int has(const struct verdict *v, int kind, int64_t offset, const char *chain)
{
    for (size_t i = 0; i < v->n && i < 16; i++)
        if (v->p[i].kind == kind && v->p[i].offset == offset && !strcmp(v->p[i].chain, chain))
            return 1;
    for (size_t i = 0; i < v->n && i < 16; i++)
        fprintf(stderr, "  problem %s offset %" PRId64 " chain %s: %s\n",
                kb_audit_problem_name(v->p[i].kind), v->p[i].offset, v->p[i].chain,
                v->p[i].what);
    return 0;
}

/* Re-sign checkpoint message @p m with @p key_path, keeping its key id. */
static void resign(struct msg *m, const char *key_path)
{
    char errstr[256];
    struct kb_audit_checkpoint cp;
    CHECK_INT(kb_audit_decode_checkpoint(m->value, m->len, &cp, errstr, sizeof errstr), KB_OK);
    EVP_PKEY *k = kb__audit_load_private(key_path, errstr, sizeof errstr);
    uint8_t sig[64];
    size_t sl = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestSignInit(md, NULL, NULL, NULL, k);
    EVP_DigestSign(md, sig, &sl, m->value, cp.signed_len);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    memcpy(m->value + cp.signed_len, sig, 64);
}

/* Re-hash a chain from message index @p from on: what an attacker without
 * the signing key can do after altering a record. */
static void rehash_chain(struct trail *t, const char *key, size_t from)
{
    uint8_t prev[KB_AUDIT_HASH_LEN];
    int have = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct msg *m = &t->m[i];
        if (strcmp(m->key, key) || kb_audit_kind(m->value, m->len) != KB_AUDIT_RECORD_SCHEMA_ID)
            continue;
        if (i >= from && have)
            memcpy(m->value + m->len - 2 * KB_AUDIT_HASH_LEN, prev, KB_AUDIT_HASH_LEN);
        if (i >= from)
            SHA256(m->value, m->len - KB_AUDIT_HASH_LEN, m->value + m->len - KB_AUDIT_HASH_LEN);
        memcpy(prev, m->value + m->len - KB_AUDIT_HASH_LEN, KB_AUDIT_HASH_LEN);
        have = 1;
    }
}

static void test_verifier(void)
{
    struct trail t = {0};
    struct verdict v;
    build_trail(&t, 16);
    /* 32 records; transactions of 4 per chain and checkpoint_every 5: a
     * checkpoint after the 2nd (seq 7) and 4th (seq 15) commit per chain. */
    verify_trail(&t, pub_path, &v, 0);
    CHECK_INT(v.n, 0);
    CHECK_INT(v.records, 32);
    CHECK_INT(v.checkpoints, 4);
    verify_trail(&t, pub_path, &v, 1);
    CHECK_INT(v.gone, 5); /* offsets 0..4 of partition 0 are "gone" */

    /* Altered: one byte of record 3 of chain 0. */
    size_t i3 = nth_record(&t, "kb.in.gba/0", 3);
    t.m[i3].value[20] ^= 1;
    verify_trail(&t, pub_path, &v, 0);
    CHECK_INT(v.n, 1);
    CHECK(has(&v, KB_AUDIT_ALTERED, (int64_t)i3, "kb.in.gba/0"));
    t.m[i3].value[20] ^= 1;

    /* Missing: drop record 5 of chain 1 (shows at record 6). */
    size_t i5 = nth_record(&t, "kb.in.gba/1", 5), i6 = nth_record(&t, "kb.in.gba/1", 6);
    struct trail cut = t;
    cut.m = malloc(t.n * sizeof *t.m);
    memcpy(cut.m, t.m, i5 * sizeof *t.m);
    memcpy(cut.m + i5, t.m + i5 + 1, (t.n - i5 - 1) * sizeof *t.m);
    cut.n = t.n - 1;
    verify_trail(&cut, pub_path, &v, 0);
    CHECK_INT(v.n, 1);
    CHECK(has(&v, KB_AUDIT_MISSING, (int64_t)i6 - 1, "kb.in.gba/1"));
    free(cut.m);

    /* Reordered: swap records 5 and 6 of chain 1. */
    struct msg tmp = t.m[i5];
    t.m[i5] = t.m[i6];
    t.m[i6] = tmp;
    verify_trail(&t, pub_path, &v, 0);
    CHECK(has(&v, KB_AUDIT_REORDERED, (int64_t)i5, "kb.in.gba/1"));
    for (size_t k = 0; k < v.n; k++)
        CHECK(v.p[k].kind != KB_AUDIT_MISSING);
    tmp = t.m[i5];
    t.m[i5] = t.m[i6];
    t.m[i6] = tmp;

    /* Bad signature: a checkpoint re-signed with another key. */
    size_t cpi = 0;
    while (kb_audit_kind(t.m[cpi].value, t.m[cpi].len) != KB_AUDIT_CHECKPOINT_SCHEMA_ID)
        cpi++;
    uint8_t saved[64];
    struct kb_audit_checkpoint cp;
    char errstr[128];
    kb_audit_decode_checkpoint(t.m[cpi].value, t.m[cpi].len, &cp, errstr, sizeof errstr);
    memcpy(saved, cp.signature, 64);
    resign(&t.m[cpi], wrong_priv);
    verify_trail(&t, pub_path, &v, 0);
    CHECK_INT(v.n, 1);
    CHECK(has(&v, KB_AUDIT_BAD_SIGNATURE, (int64_t)cpi, t.m[cpi].key));
    /* ...and a verifier that trusts only the wrong key rejects the genuine ones. */
    memcpy(t.m[cpi].value + cp.signed_len, saved, 64);
    verify_trail(&t, wrong_pub, &v, 0);
    CHECK_INT(v.n, 4);
    CHECK(v.n && v.p[0].kind == KB_AUDIT_BAD_SIGNATURE);

    /* Altered and re-hashed: only the next checkpoint can tell. */
    i3 = nth_record(&t, "kb.in.gba/0", 3);
    t.m[i3].value[20] ^= 1;
    rehash_chain(&t, "kb.in.gba/0", i3);
    size_t next_cp = i3;
    while (strcmp(t.m[next_cp].key, "kb.in.gba/0") ||
           kb_audit_kind(t.m[next_cp].value, t.m[next_cp].len) != KB_AUDIT_CHECKPOINT_SCHEMA_ID)
        next_cp++;
    verify_trail(&t, pub_path, &v, 0);
    CHECK(has(&v, KB_AUDIT_ALTERED, (int64_t)next_cp, "kb.in.gba/0"));
    trail_free(&t);
}

/* Non-UTF-8 bytes from outside (a ce_id, ce_subject, ce_time header) are
 * escaped by the writer: the record decodes, verifies, and the chain goes
 * on. They used to be written verbatim, so the decoder refused the record
 * (verify: altered; kb_audit_resume: "ends in a damaged record"). */
static void test_non_utf8_strings(void)
{
    char errstr[256];
    struct kb_audit_opts o = {.partitions = 1};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    CHECK(a != NULL);
    if (!a)
        return;
    kb_audit_resume_at(a, "kb.in.gba", 0, 0, NULL);
    struct trail t = {0};
    struct kb_audit_decision d;
    struct kb_audit_recipient r;
    struct kb_audit_msg am;
    struct kb_audit_record rec;
    char id[37];
    decision_for(&d, &r, "kb.in.gba", 0, 0, id);
    d.event_id = "\xff\xfe-0001";                     /* not UTF-8 at all */
    d.subject = "ab\xc3(";                            /* a cut 2-byte sequence */
    d.event_time = "2024-03-18T09:15:30\x80Z";        /* a stray continuation byte */
    d.detail = "rule=a\\b \xe2\x82\xac \xed\xa0\x80"; /* backslash, euro, a surrogate */
    CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_OK);
    CHECK_INT(kb_audit_decode_record(am.value, am.len, &rec, errstr, sizeof errstr), KB_OK);
    CHECK(kb_audit_record_hash_ok(am.value, am.len));
    CHECK_MEM(rec.event_id.ptr, rec.event_id.len, "\\xff\\xfe-0001");
    CHECK_MEM(rec.subject.ptr, rec.subject.len, "ab\\xc3(");
    CHECK_MEM(rec.event_time.ptr, rec.event_time.len, "2024-03-18T09:15:30\\x80Z");
    /* in an escaped string a backslash doubles, so the bytes can be read back */
    CHECK_MEM(rec.detail.ptr, rec.detail.len, "rule=a\\\\b \xe2\x82\xac \\xed\\xa0\\x80");
    trail_add(&t, &am);
    /* A valid string is written as it is, backslash and all. */
    decision_for(&d, &r, "kb.in.gba", 0, 1, id);
    d.detail = "rule=a\\b \xe2\x82\xac";
    CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_OK);
    CHECK_INT(kb_audit_decode_record(am.value, am.len, &rec, errstr, sizeof errstr), KB_OK);
    CHECK_MEM(rec.detail.ptr, rec.detail.len, "rule=a\\b \xe2\x82\xac");
    trail_add(&t, &am);
    kb_audit_commit(a);
    struct verdict v;
    struct kb_audit_verify_opts vo = {.from_start = 1};
    verify_with(&t, &vo, &v);
    CHECK_INT(v.n, 0);
    CHECK_INT(v.records, 2);
    trail_free(&t);
    kb_audit_destroy(a);
}

static int has_text(const struct verdict *v, int kind, const char *text)
{
    for (size_t i = 0; i < v->n && i < 16; i++)
        if (v->p[i].kind == kind && strstr(v->p[i].what, text))
            return 1;
    for (size_t i = 0; i < v->n && i < 16; i++)
        fprintf(stderr, "  problem %s offset %" PRId64 " chain %s: %s\n",
                kb_audit_problem_name(v->p[i].kind), v->p[i].offset, v->p[i].chain, v->p[i].what);
    return 0;
}

static size_t count_kind(const struct verdict *v, int kind)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n && i < 16; i++)
        n += v->p[i].kind == kind;
    return n;
}

/* Records 5, 6, 7 of a chain deleted and 6 put back later (after 9): 5
 * and 7 are still missing. The gap's problem used to turn into a single
 * "reordered" as soon as any record of it showed up. */
static void test_gap_partly_filled(void)
{
    struct trail t = {0};
    build_trail(&t, 16);
    const char *c1 = "kb.in.gba/1";
    size_t i5 = nth_record(&t, c1, 5), i6 = nth_record(&t, c1, 6), i7 = nth_record(&t, c1, 7);
    size_t i9 = nth_record(&t, c1, 9);
    struct trail cut = {0};
    cut.m = malloc(t.n * sizeof *t.m);
    for (size_t i = 0; i < t.n; i++) {
        if (i != i5 && i != i6 && i != i7)
            cut.m[cut.n++] = t.m[i];
        if (i == i9)
            cut.m[cut.n++] = t.m[i6];
    }
    struct verdict v;
    verify_trail(&cut, pub_path, &v, 0);
    CHECK(has_text(&v, KB_AUDIT_MISSING, "seq 5, 7 missing before this record (seq 8)"));
    CHECK(has_text(&v, KB_AUDIT_MISSING, "1 showed up later"));
    CHECK_INT(count_kind(&v, KB_AUDIT_REORDERED), 0);

    /* All three back later, in order: nothing is missing any more, the
     * jump is one "reordered". */
    cut.n = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (i != i5 && i != i6 && i != i7)
            cut.m[cut.n++] = t.m[i];
        if (i == i9) {
            cut.m[cut.n++] = t.m[i5];
            cut.m[cut.n++] = t.m[i6];
            cut.m[cut.n++] = t.m[i7];
        }
    }
    verify_trail(&cut, pub_path, &v, 0);
    CHECK(has_text(&v, KB_AUDIT_REORDERED, "seq 5..7 stand after a later record"));
    CHECK(!has_text(&v, KB_AUDIT_MISSING, "missing before this record"));
    free(cut.m);
    trail_free(&t);
}

/* Without --from a partition whose head was deleted is a finding (it used
 * to switch the seq-0 rule off silently). */
static void test_partition_start(void)
{
    char errstr[256];
    for (int from_start = 0; from_start < 2; from_start++) {
        struct kb_audit_verify_opts vo = {.from_start = from_start};
        kb_audit_verifier_t *v = kb_audit_verifier_new(&vo, errstr, sizeof errstr);
        CHECK(v != NULL);
        if (!v)
            return;
        CHECK_INT(kb_audit_verifier_partition_start(v, 0, 0), KB_OK);
        CHECK_INT(kb_audit_verifier_partition_start(v, 2, 17), KB_OK);
        kb_audit_verifier_finish(v);
        size_t n;
        const struct kb_audit_problem *p = kb_audit_verifier_problems(v, &n);
        CHECK_INT(n, from_start ? 1 : 0);
        if (n == 1) {
            CHECK_INT(p[0].kind, KB_AUDIT_MISSING);
            CHECK_INT(p[0].partition, 2);
            CHECK_INT(p[0].offset, 17);
            CHECK(strstr(p[0].what, "audit partition 2 starts at offset 17") != NULL);
        }
        kb_audit_verifier_destroy(v);
    }
}

/* The router group's committed offsets: kb.in.gba [0] at @p gba0, [1] at 16. */
static rd_kafka_topic_partition_list_t *committed_list(int64_t gba0)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    rd_kafka_topic_partition_list_add(l, "kb.in.gba", 0)->offset = gba0;
    rd_kafka_topic_partition_list_add(l, "kb.in.gba", 1)->offset = 16;
    return l;
}

/* A chain cut off with the checkpoints that covered its tail verifies as
 * far as it goes; the router group's committed offset shows the loss. */
static void test_committed_tail(void)
{
    struct trail t = {0};
    build_trail(&t, 16); /* input offsets 0..15 on both partitions */
    size_t last = nth_record(&t, "kb.in.gba/0", 15);
    const char *keys[1] = {pub_path};
    struct kb_audit_verify_opts vo = {
        .public_key_files = keys, .n_public_keys = 1, .from_start = 1};
    struct verdict v;
    rd_kafka_topic_partition_list_t *at16 = committed_list(16), *at0 = committed_list(0),
                                    *at20 = committed_list(20);
    vo.input_committed = at16;
    verify_with(&t, &vo, &v);
    CHECK_INT(v.n, 0);
    vo.input_committed = at0; /* nothing committed: nothing to check */
    verify_with(&t, &vo, &v);
    CHECK_INT(v.n, 0);
    vo.input_committed = at20;
    verify_with(&t, &vo, &v);
    CHECK_INT(v.n, 1);
    CHECK(has(&v, KB_AUDIT_MISSING, (int64_t)last, "kb.in.gba/0"));
    CHECK(has_text(&v, KB_AUDIT_MISSING, "input offsets 16..19 are gone"));

    /* An input partition the group committed with no chain in the trail at
     * all (its records removed whole): missing, when the whole trail is
     * read; one committed at 0 is not. */
    rd_kafka_topic_partition_list_t *all = committed_list(16);
    rd_kafka_topic_partition_list_add(all, "kb.in.svb", 0)->offset = 7;
    rd_kafka_topic_partition_list_add(all, "kb.in.svb", 1)->offset = 0;
    vo.input_committed = all;
    verify_with(&t, &vo, &v);
    CHECK_INT(v.n, 1);
    CHECK(has(&v, KB_AUDIT_MISSING, -1, "kb.in.svb/0"));
    CHECK(has_text(&v, KB_AUDIT_MISSING, "no chain for kb.in.svb [0] in the trail"));
    vo.from_start = 0; /* a window of the trail: a chain may lie before it */
    verify_with(&t, &vo, &v);
    CHECK_INT(v.n, 0);
    rd_kafka_topic_partition_list_destroy(at16);
    rd_kafka_topic_partition_list_destroy(at0);
    rd_kafka_topic_partition_list_destroy(at20);
    rd_kafka_topic_partition_list_destroy(all);
    trail_free(&t);
}

static void test_keygen(void)
{
    struct stat st;
    CHECK_INT(stat(priv_path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    char errstr[256], id[17];
    CHECK_INT(kb_audit_keygen(priv_path, pub_path, id, errstr, sizeof errstr), KB_ERR_IO);
    EVP_PKEY *k = kb__audit_load_public(pub_path, errstr, sizeof errstr);
    CHECK(k != NULL);
    EVP_PKEY_free(k);
    CHECK(kb__audit_load_public(priv_path, errstr, sizeof errstr) == NULL);
}

/* ---- broker-side helper for tests/integration/audit_trail.sh -------------- */

/* Run as `test_audit <command> ...` (broker from $KB_BOOTSTRAP) it is the
 * helper of tests/integration/audit_trail.sh: it writes input events and an
 * audit trail the way the router will (appends produced inside transactions,
 * aborts, a crash with an open transaction, a restart), and it makes
 * tampered copies of an audit topic. */

struct kmsg {
    int32_t partition;
    int64_t offset;
    char key[KB_AUDIT_KEY_MAX];
    uint8_t *value;
    size_t len;
};

struct kmsgs {
    struct kmsg *m;
    size_t n, cap;
};

static int collect_cb(void *opaque, int32_t partition, int64_t offset, int64_t ts,
                      const void *key, size_t key_len, const void *value, size_t len)
{
    struct kmsgs *c = opaque;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->m = realloc(c->m, c->cap * sizeof *c->m);
    }
    struct kmsg *m = &c->m[c->n++];
    m->partition = partition;
    m->offset = offset;
    snprintf(m->key, sizeof m->key, "%.*s", (int)(key ? key_len : 0), key ? (const char *)key : "");
    m->value = malloc(len ? len : 1);
    if (len)
        memcpy(m->value, value, len);
    m->len = len;
    return 0;
}

static int kmsg_cmp(const void *a, const void *b)
{
    const struct kmsg *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int collect(const struct kb_kafka_opts *ko, const char *topic, struct kmsgs *out)
{
    char errstr[512];
    memset(out, 0, sizeof *out);
    if (kb_audit_scan(ko, topic, 0, 0, collect_cb, out, errstr, sizeof errstr)) {
        fprintf(stderr, "scan %s: %s\n", topic, errstr);
        return -1;
    }
    if (out->n)
        qsort(out->m, out->n, sizeof *out->m, kmsg_cmp);
    return 0;
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return def;
}

static rd_kafka_t *producer(const struct kb_kafka_opts *ko, const char *txn_id)
{
    char errstr[512];
    rd_kafka_conf_t *conf = kb_kafka_conf_new(ko, errstr, sizeof errstr);
    if (txn_id)
        rd_kafka_conf_set(conf, "transactional.id", txn_id, NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "producer: %s\n", errstr);
    return rk;
}

/* Produce with Kafka timestamp @p ts_ms (0: now, as librdkafka stamps it). */
static int produce_at(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key,
                      size_t key_len, const void *value, size_t len, int64_t ts_ms)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_TIMESTAMP(ts_ms),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err)
        fprintf(stderr, "produce %s: %s\n", topic, rd_kafka_err2str(err));
    return err ? -1 : 0;
}

static int produce(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key,
                   size_t key_len, const void *value, size_t len)
{
    return produce_at(rk, topic, partition, key, key_len, value, len, 0);
}

static int txn_ok(rd_kafka_error_t *e, const char *what)
{
    if (!e)
        return 1;
    fprintf(stderr, "%s: %s\n", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return 0;
}

/* inputs --topic T --count N --partitions P: N fake input events, event i
 * to partition i % P (not transactional: offsets 0.. without gaps). */
static int tool_inputs(const struct kb_kafka_opts *ko, int argc, char **argv)
{
    const char *topic = arg(argc, argv, "--topic", NULL);
    int count = atoi(arg(argc, argv, "--count", "0"));
    int parts = atoi(arg(argc, argv, "--partitions", "2"));
    char errstr[512];
    rd_kafka_t *rk = producer(ko, NULL);
    if (!topic || !rk)
        return 2;
    const char *topics[1] = {topic};
    if (kb_kafka_ensure_topics(rk, topics, 1, parts, 30000, errstr, sizeof errstr)) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    for (int i = 0; i < count; i++) {
        char payload[32];
        uint8_t value[40];
        int n = snprintf(payload, sizeof payload, "event-%d", i); /* a fake Avro payload */
        kb_event_frame(1001, payload, (size_t)n, value);
        if (produce(rk, topic, i % parts, "k", 1, value, (size_t)n + 5))
            return 1;
    }
    rd_kafka_flush(rk, 30000);
    rd_kafka_destroy(rk);
    printf("inputs=%d\n", count);
    return 0;
}

static kb_audit_t *open_trail(const struct kb_kafka_opts *ko, const char *key,
                              uint32_t cp_every)
{
    char errstr[512];
    struct kb_audit_opts o = {.kafka = ko, .signing_key_file = key, .checkpoint_every = cp_every,
                              .checkpoint_ms = 3600000};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    if (!a) {
        fprintf(stderr, "audit: %s\n", errstr);
        return NULL;
    }
    return a;
}

static int resume_all(kb_audit_t *a, const char *topic, const struct kmsgs *in)
{
    char errstr[512];
    for (size_t i = 0; i < in->n; i++) {
        if (i && in->m[i].partition == in->m[i - 1].partition)
            continue;
        if (kb_audit_resume(a, topic, in->m[i].partition, -1, errstr, sizeof errstr)) {
            fprintf(stderr, "resume: %s\n", errstr);
            return -1;
        }
        uint64_t next;
        kb_audit_head(a, topic, in->m[i].partition, &next, NULL);
        printf("resumed %s/%d next_seq=%" PRIu64 "\n", topic, in->m[i].partition, next);
    }
    return 0;
}

/* The subject pseudonyms the tools write records for, under the subject key
 * in file @p skey: the fixture person's BSN, the other test person's
 * (999996204), and, when @p anummer is given, that A-nummer's. 0, or -1
 * with the reason on stderr. */
static int tool_pseudonyms(const char *skey, const char *bsn, const char *anummer,
                           char fixture[KB_PSEUDONYM_LEN + 1], char other[KB_PSEUDONYM_LEN + 1],
                           char *anr)
{
    char errstr[512];
    uint8_t *sk = NULL;
    size_t sk_len = 0;
    if (kb_event_key_load(skey, &sk, &sk_len, errstr, sizeof errstr)) {
        fprintf(stderr, "%s\n", errstr);
        return -1;
    }
    kb_event_pseudonym(sk, sk_len, "bsn", bsn, fixture);
    kb_event_pseudonym(sk, sk_len, "bsn", "999996204", other);
    if (anummer && anr)
        kb_event_pseudonym(sk, sk_len, "anummer", anummer, anr);
    free(sk);
    return 0;
}

/* trail --input T --key PRIV --subject-key F --bsn B --every K [--first I]
 *       [--batch 4] [--checkpoint-every 5] [--abort-batch A] [--crash-at J]
 *       [--restart-at J]: one audit record per input event i >= I. Event i
 *       is about the fixture person (BSN B) when i % K == 0 and then
 *       delivered to svb-kinderbijslag; otherwise about another fictitious
 *       person, delivered to gemeente-0344 (i even) or filtered (i odd). */
static int tool_trail(const struct kb_kafka_opts *ko, int argc, char **argv)
{
    const char *input = arg(argc, argv, "--input", NULL);
    const char *key = arg(argc, argv, "--key", NULL);
    const char *skey = arg(argc, argv, "--subject-key", NULL);
    const char *bsn = arg(argc, argv, "--bsn", "999995303");
    /* With --anummer, every second event about the fixture person is keyed
     * by its A-nummer pseudonym, as the GBA adapter keys all but births. */
    const char *anummer = arg(argc, argv, "--anummer", NULL);
    int every = atoi(arg(argc, argv, "--every", "3"));
    int first = atoi(arg(argc, argv, "--first", "0"));
    int batch = atoi(arg(argc, argv, "--batch", "4"));
    uint32_t cp_every = (uint32_t)atoi(arg(argc, argv, "--checkpoint-every", "5"));
    int abort_batch = atoi(arg(argc, argv, "--abort-batch", "-1"));
    int crash_at = atoi(arg(argc, argv, "--crash-at", "-1"));
    int restart_at = atoi(arg(argc, argv, "--restart-at", "-1"));
    if (!input || !key || !skey || every <= 0 || batch <= 0)
        return 2;
    char errstr[512], pseudo_fixture[KB_PSEUDONYM_LEN + 1], pseudo_other[KB_PSEUDONYM_LEN + 1];
    char pseudo_anr[KB_PSEUDONYM_LEN + 1];
    if (tool_pseudonyms(skey, bsn, anummer, pseudo_fixture, pseudo_other, pseudo_anr))
        return 2;
    struct kmsgs in;
    if (collect(ko, input, &in))
        return 1;
    kb_audit_t *a = open_trail(ko, key, cp_every);
    if (!a || resume_all(a, input, &in))
        return 1;
    char txn_id[300];
    snprintf(txn_id, sizeof txn_id, "%s-audit-test", kb_topic_prefix());
    rd_kafka_t *rk = producer(ko, txn_id);
    if (!rk || !txn_ok(rd_kafka_init_transactions(rk, 60000), "init_transactions"))
        return 1;
    static const char *const f_svb[] = {"kind.bsn", "kind.geboortedatum"};
    static const char *const f_gem[] = {"kind.geboortedatum"};
    struct kb_audit_recipient r_svb = {"svb-kinderbijslag", "akw-uitnodiging", f_svb, 2};
    struct kb_audit_recipient r_gem = {"gemeente-0344", "brp-bijhouding", f_gem, 1};
    int batch_no = 0, produced = 0, aborted = 0;
    for (int i = first; i < (int)in.n;) {
        if (restart_at >= 0 && i >= restart_at) {
            /* A new handle, as a restarted router would make. */
            kb_audit_destroy(a);
            a = open_trail(ko, key, cp_every);
            if (!a || resume_all(a, input, &in))
                return 1;
            restart_at = -1;
        }
        if (!txn_ok(rd_kafka_begin_transaction(rk), "begin"))
            return 1;
        int end = i + batch < (int)in.n ? i + batch : (int)in.n;
        for (int j = i; j < end; j++) {
            const struct kmsg *m = &in.m[j];
            struct kb_audit_decision d;
            memset(&d, 0, sizeof d);
            char id[37], name[64];
            snprintf(name, sizeof name, "%s-%d-%" PRId64, input, m->partition, m->offset);
            kb_event_uuid5(name, strlen(name), id);
            d.input_topic = input;
            d.input_partition = m->partition;
            d.input_offset = m->offset;
            d.event_id = id;
            d.event_type = "nl.brp.persoon-geboren";
            d.event_time = "2024-03-18T09:15:30.250Z";
            d.schema_id = 1001;
            kb_audit_sha256(m->value, m->len, d.payload_sha256);
            if (j % every == 0) {
                d.subject = anummer && (j / every) % 2 ? pseudo_anr : pseudo_fixture;
                d.outcome = KB_AUDIT_DELIVERED;
                d.recipients = &r_svb;
                d.n_recipients = 1;
            } else {
                d.subject = pseudo_other;
                d.outcome = j % 2 ? KB_AUDIT_FILTERED : KB_AUDIT_DELIVERED;
                d.recipients = j % 2 ? NULL : &r_gem;
                d.n_recipients = j % 2 ? 0 : 1;
            }
            struct kb_audit_msg am;
            if (kb_audit_append(a, &d, &am, errstr, sizeof errstr)) {
                fprintf(stderr, "append: %s\n", errstr);
                return 1;
            }
            if (produce(rk, am.topic, am.partition, am.key, am.key_len, am.value, am.len))
                return 1;
            if (j == crash_at) {
                /* kill -9 with the transaction open: its records reached the
                 * broker but are never committed. */
                rd_kafka_flush(rk, 10000);
                fflush(stdout);
                _exit(137);
            }
        }
        struct kb_audit_msg cps[8];
        size_t n = kb_audit_checkpoints(a, cps, 8);
        for (size_t k = 0; k < n; k++)
            if (produce(rk, cps[k].topic, cps[k].partition, cps[k].key, cps[k].key_len,
                        cps[k].value, cps[k].len))
                return 1;
        if (batch_no++ == abort_batch && !aborted) {
            rd_kafka_flush(rk, 10000); /* the records did reach the broker */
            if (!txn_ok(rd_kafka_abort_transaction(rk, 60000), "abort"))
                return 1;
            kb_audit_abort(a);
            aborted = 1;
            continue; /* the same batch again, as the router rewinds */
        }
        if (!txn_ok(rd_kafka_commit_transaction(rk, 60000), "commit"))
            return 1;
        kb_audit_commit(a);
        produced += end - i;
        i = end;
    }
    printf("records=%d aborted_batches=%d\n", produced, aborted);
    kb_audit_destroy(a);
    rd_kafka_destroy(rk);
    for (size_t i = 0; i < in.n; i++)
        free(in.m[i].value);
    free(in.m);
    return 0;
}

/* skew --topic T --input I --subject-key F --bsn B --at-ms A --ahead-ms D: a
 *       one-partition audit topic T holding what two routers with different
 *       clocks write into one audit partition: first (offset 0) a record of
 *       chain I/0 about another person, from a router whose clock runs D ms
 *       ahead (recordedAt and Kafka timestamp A + D), then (offset 1) a
 *       record of chain I/1 about the fixture person (BSN B), delivered to
 *       svb-kinderbijslag, from a router with the right time (A). */
static int tool_skew(const struct kb_kafka_opts *ko, int argc, char **argv)
{
    const char *topic = arg(argc, argv, "--topic", NULL);
    const char *input = arg(argc, argv, "--input", NULL);
    const char *skey = arg(argc, argv, "--subject-key", NULL);
    const char *bsn = arg(argc, argv, "--bsn", "999995303");
    int64_t at = atoll(arg(argc, argv, "--at-ms", "0"));
    int64_t ahead = atoll(arg(argc, argv, "--ahead-ms", "0"));
    if (!topic || !input || !skey || at <= 0 || ahead <= 0)
        return 2;
    char errstr[512], pseudo_fixture[KB_PSEUDONYM_LEN + 1], pseudo_other[KB_PSEUDONYM_LEN + 1];
    if (tool_pseudonyms(skey, bsn, NULL, pseudo_fixture, pseudo_other, NULL))
        return 2;
    struct kb_audit_opts o = {.kafka = ko, .topic = topic, .partitions = 1};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    if (!a) {
        fprintf(stderr, "audit: %s\n", errstr);
        return 1;
    }
    rd_kafka_t *rk = producer(ko, NULL);
    if (!rk)
        return 1;
    static const char *const f_svb[] = {"kind.bsn", "kind.geboortedatum"};
    static const char *const f_gem[] = {"kind.geboortedatum"};
    const struct {
        int32_t input_partition;
        const char *subject;
        struct kb_audit_recipient rcpt;
        int64_t at_ms;
    } recs[] = {
        {0, pseudo_other, {"gemeente-0344", "brp-bijhouding", f_gem, 1}, at + ahead},
        {1, pseudo_fixture, {"svb-kinderbijslag", "akw-uitnodiging", f_svb, 2}, at},
    };
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        char id[37], name[64];
        snprintf(name, sizeof name, "%s-skew-%zu", input, i);
        kb_event_uuid5(name, strlen(name), id);
        struct kb_audit_decision d = {
            .input_topic = input,
            .input_partition = recs[i].input_partition,
            .event_id = id,
            .event_type = "nl.brp.persoon-geboren",
            .event_time = "2024-03-18T09:15:30.250Z",
            .schema_id = 1001,
            .subject = recs[i].subject,
            .outcome = KB_AUDIT_DELIVERED,
            .recipients = &recs[i].rcpt,
            .n_recipients = 1,
            .recorded_at_ms = recs[i].at_ms,
        };
        struct kb_audit_msg am;
        if (kb_audit_resume_at(a, input, recs[i].input_partition, 0, NULL) ||
            kb_audit_append(a, &d, &am, errstr, sizeof errstr)) {
            fprintf(stderr, "append: %s\n", errstr);
            return 1;
        }
        /* One at a time, so the far-ahead record surely comes first. */
        if (produce_at(rk, am.topic, am.partition, am.key, am.key_len, am.value, am.len,
                       recs[i].at_ms) ||
            rd_kafka_flush(rk, 30000)) {
            fprintf(stderr, "record %zu not written\n", i);
            return 1;
        }
        kb_audit_commit(a);
    }
    printf("skew records=2\n");
    rd_kafka_destroy(rk);
    kb_audit_destroy(a);
    return 0;
}

static int is_kind(const struct kmsg *m, const char *chain, int32_t kind)
{
    return !strcmp(m->key, chain) && kb_audit_kind(m->value, m->len) == kind;
}

/* tamper --from T --to T2 --mode alter|delete|reorder|resign|rehash|truncate|copy
 *        --chain C --index K [--wrong-key F]: copy T to T2 (same partitions),
 *        changing the K-th record (resign: K-th checkpoint) of chain C
 *        (truncate: dropping it and everything of C after it, checkpoints
 *        included; copy: nothing); prints where verify must find it:
 *        "target partition=P offset=O" (truncate: C's last record kept). */
static int tool_tamper(const struct kb_kafka_opts *ko, int argc, char **argv)
{
    const char *from = arg(argc, argv, "--from", NULL), *to = arg(argc, argv, "--to", NULL);
    const char *mode = arg(argc, argv, "--mode", ""), *chain = arg(argc, argv, "--chain", "");
    const char *wrong = arg(argc, argv, "--wrong-key", NULL);
    int index = atoi(arg(argc, argv, "--index", "0"));
    if (!from || !to)
        return 2;
    struct kmsgs all;
    if (collect(ko, from, &all))
        return 1;
    int32_t kind = !strcmp(mode, "resign") ? KB_AUDIT_CHECKPOINT_SCHEMA_ID
                                           : KB_AUDIT_RECORD_SCHEMA_ID;
    size_t victim = (size_t)-1;
    for (size_t i = 0, k = 0; i < all.n && victim == (size_t)-1; i++)
        if (is_kind(&all.m[i], chain, kind) && (int)k++ == index)
            victim = i;
    if (victim == (size_t)-1) {
        fprintf(stderr, "no such message in %s\n", from);
        return 1;
    }
    size_t next = victim + 1; /* next record of the chain */
    while (next < all.n && !is_kind(&all.m[next], chain, KB_AUDIT_RECORD_SCHEMA_ID))
        next++;
    size_t target = victim;
    int truncate = !strcmp(mode, "truncate");
    if (truncate) /* the chain's last record kept: where verify must see it */
        for (size_t i = 0; i < victim; i++)
            if (is_kind(&all.m[i], chain, KB_AUDIT_RECORD_SCHEMA_ID))
                target = i;
    char errstr[512];
    struct kb_audit_record rec;
    if (!strcmp(mode, "alter") || !strcmp(mode, "rehash")) {
        kb_audit_decode_record(all.m[victim].value, all.m[victim].len, &rec, errstr,
                               sizeof errstr);
        all.m[victim].value[rec.payload_sha256 - all.m[victim].value] ^= 0x01;
        if (!strcmp(mode, "rehash")) {
            uint8_t prev[KB_AUDIT_HASH_LEN];
            int have = 0;
            for (size_t i = victim; i < all.n; i++) {
                struct kmsg *m = &all.m[i];
                if (!is_kind(m, chain, KB_AUDIT_RECORD_SCHEMA_ID))
                    continue;
                if (have)
                    memcpy(m->value + m->len - 2 * KB_AUDIT_HASH_LEN, prev, KB_AUDIT_HASH_LEN);
                SHA256(m->value, m->len - KB_AUDIT_HASH_LEN, m->value + m->len - KB_AUDIT_HASH_LEN);
                memcpy(prev, m->value + m->len - KB_AUDIT_HASH_LEN, KB_AUDIT_HASH_LEN);
                have = 1;
            }
            target = victim + 1;
            while (target < all.n && !is_kind(&all.m[target], chain, KB_AUDIT_CHECKPOINT_SCHEMA_ID))
                target++;
        }
    } else if (!strcmp(mode, "reorder")) {
        if (next >= all.n)
            return 1;
        struct kmsg tmp = all.m[victim];
        all.m[victim] = all.m[next];
        all.m[next] = tmp;
    } else if (!strcmp(mode, "resign")) {
        struct kb_audit_checkpoint cp;
        kb_audit_decode_checkpoint(all.m[victim].value, all.m[victim].len, &cp, errstr,
                                   sizeof errstr);
        EVP_PKEY *k = wrong ? kb__audit_load_private(wrong, errstr, sizeof errstr) : NULL;
        if (!k) {
            fprintf(stderr, "--wrong-key: %s\n", errstr);
            return 2;
        }
        uint8_t sig[64];
        size_t sl = sizeof sig;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestSignInit(md, NULL, NULL, NULL, k);
        EVP_DigestSign(md, sig, &sl, all.m[victim].value, cp.signed_len);
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(k);
        memcpy(all.m[victim].value + cp.signed_len, sig, 64);
    } else if (strcmp(mode, "delete") && strcmp(mode, "copy") && !truncate) {
        fprintf(stderr, "unknown --mode\n");
        return 2;
    }
    rd_kafka_t *rk = producer(ko, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, from, NULL);
    rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    int parts = md && md->topic_cnt == 1 ? md->topics[0].partition_cnt : 1;
    if (md)
        rd_kafka_metadata_destroy(md);
    const char *topics[1] = {to};
    if (kb_kafka_ensure_topics(rk, topics, 1, parts, 30000, errstr, sizeof errstr)) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    /* A fresh topic written without transactions: offsets are positions. */
    int64_t pos[64] = {0}, target_offset = -1;
    int skip = !strcmp(mode, "delete");
    for (size_t i = 0; i < all.n; i++) {
        struct kmsg *m = &all.m[i];
        if (skip && i == victim)
            continue;
        /* truncate: the chain's tail from the victim on, checkpoints too */
        if (truncate && i >= victim && !strcmp(m->key, chain))
            continue;
        if (i == (skip ? next : target))
            target_offset = pos[m->partition];
        if (produce(rk, to, m->partition, m->key, strlen(m->key), m->value, m->len))
            return 1;
        pos[m->partition]++;
    }
    rd_kafka_flush(rk, 30000);
    rd_kafka_destroy(rk);
    printf("target partition=%d offset=%" PRId64 "\n", all.m[victim].partition, target_offset);
    for (size_t i = 0; i < all.n; i++)
        free(all.m[i].value);
    free(all.m);
    return 0;
}

/* delete-records --topic T --partition P --before N: what retention does. */
static int tool_delete_records(const struct kb_kafka_opts *ko, int argc, char **argv)
{
    const char *topic = arg(argc, argv, "--topic", NULL);
    int part = atoi(arg(argc, argv, "--partition", "0"));
    int64_t before = atoll(arg(argc, argv, "--before", "0"));
    if (!topic)
        return 2;
    rd_kafka_t *rk = producer(ko, NULL);
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offs, topic, part)->offset = before;
    rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(offs);
    rd_kafka_topic_partition_list_destroy(offs);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteRecords(rk, &del, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = !ev || rd_kafka_event_error(ev);
    /* The request can succeed while its partition did not: each partition
     * has its own error, and its new log start, which must be @p before. */
    const rd_kafka_DeleteRecords_result_t *res =
        rc ? NULL : rd_kafka_event_DeleteRecords_result(ev);
    const rd_kafka_topic_partition_list_t *got =
        res ? rd_kafka_DeleteRecords_result_offsets(res) : NULL;
    const rd_kafka_topic_partition_t *tp = got && got->cnt == 1 ? &got->elems[0] : NULL;
    if (rc)
        fprintf(stderr, "DeleteRecords failed: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "no answer in 30 s");
    else if ((rc = !tp))
        fprintf(stderr, "DeleteRecords failed: no result for the partition\n");
    else if ((rc = tp->err != RD_KAFKA_RESP_ERR_NO_ERROR))
        fprintf(stderr, "DeleteRecords failed: %s\n", rd_kafka_err2str(tp->err));
    else if ((rc = tp->offset != before))
        fprintf(stderr, "DeleteRecords: log start %" PRId64 ", asked %" PRId64 "\n",
                tp->offset, before);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_DeleteRecords_destroy(del);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* commit --group G --topic T --partition P --offset N: commit an input
 * offset for group G, as the router does in its transactions. */
static int tool_commit(const struct kb_kafka_opts *ko, int argc, char **argv)
{
    const char *group = arg(argc, argv, "--group", NULL), *topic = arg(argc, argv, "--topic", NULL);
    int part = atoi(arg(argc, argv, "--partition", "0"));
    int64_t offset = atoll(arg(argc, argv, "--offset", "0"));
    if (!group || !topic)
        return 2;
    char errstr[512];
    rd_kafka_t *rk = kb_kafka_scanner_new(ko, group, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "consumer: %s\n", errstr);
        return 1;
    }
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offs, topic, part)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, offs, 0);
    if (err)
        fprintf(stderr, "commit: %s\n", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(offs);
    rd_kafka_destroy(rk);
    return err ? 1 : 0;
}

/* status --topic T [--group G] [--pub F]: the JSON that GET
 * /admin/audit/status serves as "last" (kb_audit_status_verify, the admin
 * worker's call), on stdout; exit 1 when it could not read. */
static int tool_status(const struct kb_kafka_opts *ko, int argc, char **argv)
{
    const char *pub = arg(argc, argv, "--pub", NULL);
    struct kb_audit_status_opts so = {
        .kafka = ko,
        .topic = arg(argc, argv, "--topic", NULL),
        .public_key_files = &pub,
        .n_public_keys = pub ? 1 : 0,
        .max_seconds = 60,
        .router_group = arg(argc, argv, "--group", NULL),
    };
    char errstr[512];
    json_t *j = kb_audit_status_verify(&so, errstr, sizeof errstr);
    if (!j) {
        fprintf(stderr, "status: %s\n", errstr);
        return 1;
    }
    char *text = json_dumps(j, JSON_COMPACT);
    if (text)
        puts(text);
    free(text);
    json_decref(j);
    return text ? 0 : 1;
}

static int tool_main(int argc, char **argv)
{
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    int rc = 2;
    if (!strcmp(argv[1], "inputs"))
        rc = tool_inputs(&ko, argc, argv);
    else if (!strcmp(argv[1], "trail"))
        rc = tool_trail(&ko, argc, argv);
    else if (!strcmp(argv[1], "tamper"))
        rc = tool_tamper(&ko, argc, argv);
    else if (!strcmp(argv[1], "delete-records"))
        rc = tool_delete_records(&ko, argc, argv);
    else if (!strcmp(argv[1], "commit"))
        rc = tool_commit(&ko, argc, argv);
    else if (!strcmp(argv[1], "status"))
        rc = tool_status(&ko, argc, argv);
    else if (!strcmp(argv[1], "skew"))
        rc = tool_skew(&ko, argc, argv);
    else
        fprintf(stderr,
                "usage: test_audit [inputs|trail|tamper|delete-records|commit|status|skew ...]\n");
    kb_kafka_opts_fini(&ko);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return tool_main(argc, argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kb-test-audit-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    snprintf(priv_path, sizeof priv_path, "%s/audit.key", tmpdir);
    snprintf(pub_path, sizeof pub_path, "%s/audit.pub", tmpdir);
    snprintf(wrong_priv, sizeof wrong_priv, "%s/wrong.key", tmpdir);
    snprintf(wrong_pub, sizeof wrong_pub, "%s/wrong.pub", tmpdir);
    char errstr[256];
    CHECK_INT(kb_audit_keygen(priv_path, pub_path, NULL, errstr, sizeof errstr), KB_OK);
    CHECK_INT(kb_audit_keygen(wrong_priv, wrong_pub, NULL, errstr, sizeof errstr), KB_OK);
    test_keygen();
    test_encoding_matches_avro();
    test_chain_rules();
    test_recipients_iter();
    test_verifier();
    test_non_utf8_strings();
    test_gap_partly_filled();
    test_partition_start();
    test_committed_tail();
    unlink(priv_path);
    unlink(pub_path);
    unlink(wrong_priv);
    unlink(wrong_pub);
    rmdir(tmpdir);
    KB_TEST_DONE();
}
