/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_audit_fast.c - the verifier's fast paths (bus/src/audit_codec.c,
 * audit_read.c): SHA-256 through the plain SHA256_CTX against the FIPS 180-2
 * test vectors, the hashed chain index over many interleaved chains (still
 * finding altered, missing, reordered and misfiled records, each in the right
 * chain), and the ASCII word-at-a-time UTF-8 check.
 */
#define _GNU_SOURCE /* memmem */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "kb_test.h"
#include "ketenbus/audit.h"

static void hex(const uint8_t *h, char out[2 * KB_AUDIT_HASH_LEN + 1])
{
    kb__audit_hex(h, KB_AUDIT_HASH_LEN, out);
}

static void test_sha256_vectors(void)
{
    uint8_t h[KB_AUDIT_HASH_LEN];
    char x[2 * KB_AUDIT_HASH_LEN + 1];
    kb_audit_sha256("", 0, h);
    hex(h, x);
    CHECK_STR(x, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    kb_audit_sha256("abc", 3, h);
    hex(h, x);
    CHECK_STR(x, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    kb_audit_sha256(two, strlen(two), h);
    hex(h, x);
    CHECK_STR(x, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    kb_audit_sha256(a, n, h);
    hex(h, x);
    CHECK_STR(x, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

/* ---- a trail of many chains, interleaved ---------------------------------- */

struct msg {
    int32_t partition;
    char key[KB_AUDIT_KEY_MAX];
    uint8_t *value;
    size_t len;
};

struct trail {
    struct msg *m;
    size_t n, cap;
};

static void trail_add(struct trail *t, const struct kb_audit_msg *am)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->m = realloc(t->m, t->cap * sizeof *t->m);
    }
    struct msg *m = &t->m[t->n++];
    m->partition = am->partition;
    snprintf(m->key, sizeof m->key, "%.*s", (int)am->key_len, am->key);
    m->value = malloc(am->len);
    memcpy(m->value, am->value, am->len);
    m->len = am->len;
}

static void trail_free(struct trail *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->m[i].value);
    free(t->m);
    memset(t, 0, sizeof *t);
}

/* Three topics whose names share prefixes, 50 partitions each: 150 chains,
 * more than the index's first size, so it grows while records arrive. */
static const char *const topics[] = {"kb.in.a", "kb.in.a1", "kb.in.gba"};
#define N_TOPICS 3
#define N_PARTS 50
#define N_CHAINS (N_TOPICS * N_PARTS)
#define PER_CHAIN 4

static void build(struct trail *t)
{
    char errstr[256];
    struct kb_audit_opts o = {.partitions = 3};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    CHECK(a != NULL);
    if (!a)
        return;
    for (int c = 0; c < N_CHAINS; c++)
        kb_audit_resume_at(a, topics[c / N_PARTS], c % N_PARTS, 0, NULL);
    for (int r = 0; r < PER_CHAIN; r++) {
        for (int c = 0; c < N_CHAINS; c++) {
            char id[40];
            snprintf(id, sizeof id, "00000000-0000-5000-8000-%06d%06d", c, r);
            struct kb_audit_decision d = {
                .input_topic = topics[c / N_PARTS], .input_partition = c % N_PARTS,
                .input_offset = r, .event_id = id, .event_type = "nl.brp.persoon-geboren",
                .event_time = "2024-03-18T09:15:30.250Z", .subject = "0123456789abcdef",
                .schema_id = 1001, .outcome = KB_AUDIT_FILTERED, .recorded_at_ms = 1000 + r};
            struct kb_audit_msg am;
            CHECK_INT(kb_audit_append(a, &d, &am, errstr, sizeof errstr), KB_OK);
            trail_add(t, &am);
        }
        kb_audit_commit(a);
    }
    kb_audit_destroy(a);
}

struct verdict {
    struct kb_audit_problem p[64];
    size_t n;
    size_t chains;
    uint64_t records;
    int all_chains_full; /* every chain: PER_CHAIN records, seq 0..PER_CHAIN-1 */
};

/* Feed @p t in order; the offset is the position within its partition. */
static void verify(const struct trail *t, struct verdict *out)
{
    char errstr[256];
    struct kb_audit_verify_opts vo = {.from_start = 1};
    kb_audit_verifier_t *v = kb_audit_verifier_new(&vo, errstr, sizeof errstr);
    CHECK(v != NULL);
    memset(out, 0, sizeof *out);
    if (!v)
        return;
    int64_t next[8] = {0};
    for (size_t i = 0; i < t->n; i++) {
        const struct msg *m = &t->m[i];
        CHECK_INT(kb_audit_verifier_feed(v, m->partition, next[m->partition & 7]++, m->key,
                                         strlen(m->key), m->value, m->len),
                  KB_OK);
    }
    kb_audit_verifier_finish(v);
    size_t np, nc;
    const struct kb_audit_problem *p = kb_audit_verifier_problems(v, &np);
    const struct kb_audit_chain_summary *cs = kb_audit_verifier_chains(v, &nc);
    out->n = np < 64 ? np : 64;
    if (out->n)
        memcpy(out->p, p, out->n * sizeof *p);
    out->chains = nc;
    kb_audit_verifier_counts(v, NULL, &out->records, NULL);
    out->all_chains_full = 1;
    for (size_t i = 0; i < nc; i++)
        if (cs[i].records != PER_CHAIN || cs[i].first_seq != 0 || cs[i].last_seq != PER_CHAIN - 1)
            out->all_chains_full = 0;
    kb_audit_verifier_destroy(v);
}

/* Index in the trail of record @p seq of chain @p key. */
static size_t find(const struct trail *t, const char *key, uint64_t seq)
{
    for (size_t i = 0; i < t->n; i++) {
        struct kb_audit_record rec;
        if (!strcmp(t->m[i].key, key) &&
            !kb_audit_decode_record(t->m[i].value, t->m[i].len, &rec, NULL, 0) &&
            rec.sequence == seq)
            return i;
    }
    return (size_t)-1;
}

static void test_many_chains(void)
{
    struct trail t = {0};
    build(&t);
    CHECK_INT(t.n, N_CHAINS * PER_CHAIN);
    struct verdict v;
    verify(&t, &v);
    CHECK_INT(v.n, 0);
    CHECK_INT(v.chains, N_CHAINS);
    CHECK_INT(v.records, N_CHAINS * PER_CHAIN);
    CHECK(v.all_chains_full);

    /* Altered: one byte of the event id of kb.in.a1/7 seq 2 (hash no longer fits). */
    size_t i = find(&t, "kb.in.a1/7", 2);
    CHECK(i != (size_t)-1);
    uint8_t *idp = memmem(t.m[i].value, t.m[i].len, "00000000-0000", 13);
    CHECK(idp != NULL);
    idp[0] = '1';
    verify(&t, &v);
    CHECK_INT(v.n, 1);
    CHECK_INT(v.p[0].kind, KB_AUDIT_ALTERED);
    CHECK_STR(v.p[0].chain, "kb.in.a1/7");
    idp[0] = '0';
    verify(&t, &v);
    CHECK_INT(v.n, 0);

    /* Missing: drop seq 1 of kb.in.a/17; the gap shows at its seq 2. */
    i = find(&t, "kb.in.a/17", 1);
    struct trail cut = {0};
    for (size_t k = 0; k < t.n; k++) {
        if (k == i)
            continue;
        struct kb_audit_msg am = {.partition = t.m[k].partition, .key = t.m[k].key,
                                  .key_len = strlen(t.m[k].key), .value = t.m[k].value,
                                  .len = t.m[k].len};
        trail_add(&cut, &am);
    }
    verify(&cut, &v);
    CHECK_INT(v.n, 1);
    CHECK_INT(v.p[0].kind, KB_AUDIT_MISSING);
    CHECK_STR(v.p[0].chain, "kb.in.a/17");
    trail_free(&cut);

    /* Reordered: seq 1 and seq 2 of kb.in.gba/49 swap places. */
    size_t i1 = find(&t, "kb.in.gba/49", 1), i2 = find(&t, "kb.in.gba/49", 2);
    CHECK(i1 != (size_t)-1 && i2 != (size_t)-1);
    struct msg tmp = t.m[i1];
    t.m[i1] = t.m[i2];
    t.m[i2] = tmp;
    verify(&t, &v);
    CHECK_INT(v.n, 1);
    CHECK_INT(v.p[0].kind, KB_AUDIT_REORDERED);
    CHECK_STR(v.p[0].chain, "kb.in.gba/49");
    tmp = t.m[i1];
    t.m[i1] = t.m[i2];
    t.m[i2] = tmp;

    /* Misfiled: the record of kb.in.a/1 seq 0 under the key of kb.in.a1/1
     * (names that differ only where the index hashes them apart). */
    i = find(&t, "kb.in.a/1", 0);
    snprintf(t.m[i].key, sizeof t.m[i].key, "kb.in.a1/1");
    verify(&t, &v);
    CHECK_INT(v.n, 1);
    CHECK_INT(v.p[0].kind, KB_AUDIT_ALTERED);
    CHECK_STR(v.p[0].chain, "kb.in.a/1");
    trail_free(&t);
}

/* ---- UTF-8: the 8-bytes-at-a-time ASCII path and the full check behind it -- */

static int decodes_with_subject(const char *subject)
{
    char errstr[256];
    struct kb_audit_opts o = {.partitions = 1};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    kb_audit_resume_at(a, "kb.in.gba", 0, 0, NULL);
    struct kb_audit_decision d = {.input_topic = "kb.in.gba", .event_id = "e",
                                  .subject = subject, .schema_id = -1,
                                  .outcome = KB_AUDIT_FILTERED, .recorded_at_ms = 1};
    struct kb_audit_msg am;
    int ok = -1;
    if (!kb_audit_append(a, &d, &am, errstr, sizeof errstr)) {
        struct kb_audit_record rec;
        ok = !kb_audit_decode_record(am.value, am.len, &rec, errstr, sizeof errstr) &&
             rec.subject.len == strlen(subject) && !memcmp(rec.subject.ptr, subject, rec.subject.len);
        /* The verifier says the same: undecodable means ALTERED. */
        struct kb_audit_verify_opts vo = {0};
        kb_audit_verifier_t *v = kb_audit_verifier_new(&vo, errstr, sizeof errstr);
        kb_audit_verifier_feed(v, 0, 0, am.key, am.key_len, am.value, am.len);
        size_t np;
        const struct kb_audit_problem *p = kb_audit_verifier_problems(v, &np);
        CHECK_INT(np, ok ? 0 : 1);
        if (np)
            CHECK_INT(p[0].kind, KB_AUDIT_ALTERED);
        kb_audit_verifier_destroy(v);
    }
    kb_audit_destroy(a);
    return ok;
}

static void test_utf8(void)
{
    CHECK_INT(decodes_with_subject("0123456789abcdef0123456789abcdef"), 1);
    CHECK_INT(decodes_with_subject(""), 1);
    CHECK_INT(decodes_with_subject("abcdefgh\xc3\xa9xyz"), 1);          /* é after 8 ASCII */
    CHECK_INT(decodes_with_subject("abcdefghijklmnop\xf0\x9f\x98\x80"), 1); /* 4-byte, at 16 */
    CHECK_INT(decodes_with_subject("abcdefghij\xff"), 0);               /* after the words */
    CHECK_INT(decodes_with_subject("abc\xff" "defghijkl"), 0);          /* inside word one */
    CHECK_INT(decodes_with_subject("abcdefghabcdefgh\xc0\xaf"), 0);     /* overlong */
    CHECK_INT(decodes_with_subject("abcdefgh\xed\xa0\x80"), 0);         /* surrogate */
    CHECK_INT(decodes_with_subject("abcdefgh\xc3"), 0);                 /* cut short */
}

int main(void)
{
    test_sha256_vectors();
    test_many_chains();
    test_utf8();
    KB_TEST_DONE();
}
