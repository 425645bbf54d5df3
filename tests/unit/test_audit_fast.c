/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_audit_fast.c - the verifier's fast paths (bus/src/audit_codec.c,
 * audit_read.c): SHA-256 through the plain SHA256_CTX against the FIPS 180-2
 * test vectors, the hashed chain index over many interleaved chains (still
 * finding altered, missing, reordered and misfiled records, each in the right
 * chain), the same verdict whether partitions are fed interleaved, one after
 * another or from one thread each, and the ASCII word-at-a-time UTF-8 check.
 */
#define _GNU_SOURCE /* memmem */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_int.h"
#include "kb_test.h"
#include "test_audit_trail.h"
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

/* Three topics whose names share prefixes, 50 partitions each: 150 chains,
 * more than the index's first size, so it grows while records arrive. */
static const char *const topics[] = {"kb.in.a", "kb.in.a1", "kb.in.gba"};
#define N_TOPICS 3
#define N_PARTS 50
#define N_CHAINS (N_TOPICS * N_PARTS)
#define PER_CHAIN 4

/* With @p signing_key, a checkpoint per chain every 2 records. */
static void build(struct trail *t, const char *signing_key)
{
    char errstr[256];
    struct kb_audit_opts o = {.partitions = 3, .signing_key_file = signing_key,
                              .checkpoint_every = 2, .checkpoint_ms = 3600000};
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
        struct kb_audit_msg cps[N_CHAINS];
        size_t n = kb_audit_checkpoints(a, cps, N_CHAINS);
        for (size_t k = 0; k < n; k++)
            trail_add(t, &cps[k]);
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
    build(&t, NULL);
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

/* ---- one verdict, however the partitions are fed ---------------------------- */

/* The whole verdict as text: problems in their order, chain summaries, counts. */
struct report {
    char *text;
    size_t len;
    size_t problems;
    unsigned partitions; /* bit p: a problem in audit partition p */
};

static void report_of(kb_audit_verifier_t *v, struct report *r)
{
    FILE *f = open_memstream(&r->text, &r->len);
    size_t np, nc;
    const struct kb_audit_problem *p = kb_audit_verifier_problems(v, &np);
    const struct kb_audit_chain_summary *cs = kb_audit_verifier_chains(v, &nc);
    uint64_t m, rec, cp;
    kb_audit_verifier_counts(v, &m, &rec, &cp);
    fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", m, rec, cp);
    r->partitions = 0;
    for (size_t i = 0; i < np; i++)
        r->partitions |= 1u << (p[i].partition & 7);
    for (size_t i = 0; i < np; i++)
        fprintf(f, "%s %d %" PRId64 " %s: %s\n", kb_audit_problem_name(p[i].kind),
                (int)p[i].partition, p[i].offset, p[i].chain, p[i].what);
    for (size_t i = 0; i < nc; i++)
        fprintf(f, "%s %" PRIu64 "..%" PRIu64 " %" PRIu64 "\n", cs[i].chain, cs[i].first_seq,
                cs[i].last_seq, cs[i].records);
    fclose(f);
    r->problems = np;
}

/* Problems come out by partition, then offset (a REORDERED one keeps the
 * offset of the gap it was found at, which is where its partition raised it). */
static int problems_sorted(kb_audit_verifier_t *v)
{
    size_t np;
    const struct kb_audit_problem *p = kb_audit_verifier_problems(v, &np);
    for (size_t i = 1; i < np; i++)
        if (p[i].partition < p[i - 1].partition ||
            (p[i].partition == p[i - 1].partition && p[i].offset < p[i - 1].offset))
            return 0;
    return 1;
}

struct feeder {
    kb_audit_verifier_t *v;
    const struct trail *t;
    const int64_t *offset; /* of each message within its partition */
    int32_t partition;
};

static void *feed_partition(void *opaque)
{
    struct feeder *f = opaque;
    for (size_t i = 0; i < f->t->n; i++)
        if (f->t->m[i].partition == f->partition)
            kb_audit_verifier_feed(f->v, f->partition, f->offset[i], f->t->m[i].key,
                                   strlen(f->t->m[i].key), f->t->m[i].value, f->t->m[i].len);
    return NULL;
}

/* mode 0: in trail order (partitions interleaved); 1: partition 2, 1, then 0;
 * 2: one thread per partition, all at once. */
static void verify_mode(const struct trail *t, const int64_t *offset, const char *pub, int mode,
                        struct report *r)
{
    char errstr[256];
    const char *keys[1] = {pub};
    struct kb_audit_verify_opts vo = {.public_key_files = keys, .n_public_keys = 1,
                                      .from_start = 1};
    kb_audit_verifier_t *v = kb_audit_verifier_new(&vo, errstr, sizeof errstr);
    CHECK(v != NULL);
    if (!v)
        return;
    if (mode == 0) {
        for (size_t i = 0; i < t->n; i++)
            kb_audit_verifier_feed(v, t->m[i].partition, offset[i], t->m[i].key,
                                   strlen(t->m[i].key), t->m[i].value, t->m[i].len);
    } else if (mode == 1) {
        for (int32_t p = 2; p >= 0; p--) {
            struct feeder f = {v, t, offset, p};
            feed_partition(&f);
        }
    } else {
        CHECK_INT(kb__audit_verifier_lanes(v, 3), KB_OK);
        struct feeder f[3];
        pthread_t th[3];
        for (int32_t p = 0; p < 3; p++) {
            f[p] = (struct feeder){v, t, offset, p};
            CHECK_INT(pthread_create(&th[p], NULL, feed_partition, &f[p]), 0);
        }
        for (int p = 0; p < 3; p++)
            pthread_join(th[p], NULL);
    }
    kb_audit_verifier_finish(v);
    CHECK(problems_sorted(v));
    report_of(v, r);
    kb_audit_verifier_destroy(v);
}

static void test_same_verdict(void)
{
    /* Signed: the threads also check Ed25519 signatures side by side. */
    char dir[] = "/tmp/kb-test-audit-fast-XXXXXX", priv[64], pub[64], errstr[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(priv, sizeof priv, "%s/audit.key", dir);
    snprintf(pub, sizeof pub, "%s/audit.pub", dir);
    CHECK_INT(kb_audit_keygen(priv, pub, NULL, errstr, sizeof errstr), KB_OK);
    struct trail t = {0};
    build(&t, priv);
    CHECK_INT(t.n, N_CHAINS * PER_CHAIN * 3 / 2);
    /* Tamper in every audit partition: alter a record, swap two, drop one. */
    const char *alter[] = {"kb.in.a/3", "kb.in.gba/20", "kb.in.a1/44"};
    for (size_t k = 0; k < 3; k++) {
        size_t i = find(&t, alter[k], 1);
        CHECK(i != (size_t)-1);
        uint8_t *idp = i == (size_t)-1 ? NULL : memmem(t.m[i].value, t.m[i].len, "00000000-0000", 13);
        CHECK(idp != NULL);
        if (idp)
            idp[0] = '1'; /* in the event id: the record no longer fits its hash */
    }
    size_t i1 = find(&t, "kb.in.a/9", 1), i2 = find(&t, "kb.in.a/9", 2);
    struct msg tmp = t.m[i1];
    t.m[i1] = t.m[i2];
    t.m[i2] = tmp;
    size_t drop = find(&t, "kb.in.gba/7", 2);
    free(t.m[drop].value);
    memmove(&t.m[drop], &t.m[drop + 1], (t.n - drop - 1) * sizeof *t.m);
    t.n--;
    int64_t *offset = calloc(t.n, sizeof *offset), next[3] = {0};
    int in_partition[3] = {0};
    for (size_t i = 0; i < t.n; i++) {
        offset[i] = next[t.m[i].partition]++;
        in_partition[t.m[i].partition] = 1;
    }
    CHECK(in_partition[0] && in_partition[1] && in_partition[2]);
    struct report r[3];
    for (int mode = 0; mode < 3; mode++)
        verify_mode(&t, offset, pub, mode, &r[mode]);
    /* 3 altered (each hash still fits the checkpoints: only the content
     * changed); the swapped pair: seq 1 reordered, and the checkpoint of
     * seq 1 now standing after seq 2; the dropped record: missing. */
    CHECK_INT(r[0].problems, 6);
    CHECK(r[0].partitions != 1 && r[0].partitions != 2 && r[0].partitions != 4);
    CHECK_STR(r[1].text, r[0].text);
    CHECK_STR(r[2].text, r[0].text);
    /* Threads race differently each run: the verdict must not. */
    for (int run = 0; run < 20; run++) {
        struct report again;
        verify_mode(&t, offset, pub, 2, &again);
        CHECK_STR(again.text, r[0].text);
        free(again.text);
    }
    for (int mode = 0; mode < 3; mode++)
        free(r[mode].text);
    free(offset);
    trail_free(&t);
    unlink(priv);
    unlink(pub);
    rmdir(dir);
}

/* ---- UTF-8: the 8-bytes-at-a-time ASCII path and the full check behind it -- */

/* The decoder's check on raw bytes. The writer escapes what is not UTF-8
 * (test_audit.c), so the record is made with a placeholder subject of the
 * same length, the bytes are put in its place and the hash is redone. */
static int decodes_with_subject(const char *subject)
{
    char errstr[256];
    size_t n = strlen(subject);
    char *placeholder = malloc(n + 1);
    memset(placeholder, 's', n);
    placeholder[n] = '\0';
    struct kb_audit_opts o = {.partitions = 1};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    kb_audit_resume_at(a, "kb.in.gba", 0, 0, NULL);
    struct kb_audit_decision d = {.input_topic = "kb.in.gba",
                                  .event_id = "e",
                                  .subject = placeholder,
                                  .schema_id = -1,
                                  .outcome = KB_AUDIT_FILTERED,
                                  .recorded_at_ms = 1};
    struct kb_audit_msg am;
    struct kb_audit_record rec;
    int ok = -1;
    if (!kb_audit_append(a, &d, &am, errstr, sizeof errstr) &&
        !kb_audit_decode_record(am.value, am.len, &rec, errstr, sizeof errstr)) {
        uint8_t *value = malloc(am.len);
        memcpy(value, am.value, am.len);
        memcpy(value + ((const uint8_t *)rec.subject.ptr - am.value), subject, n);
        kb_audit_sha256(value, am.len - KB_AUDIT_HASH_LEN, value + am.len - KB_AUDIT_HASH_LEN);
        ok = !kb_audit_decode_record(value, am.len, &rec, errstr, sizeof errstr) &&
             rec.subject.len == n && !memcmp(rec.subject.ptr, subject, n);
        /* The verifier says the same: undecodable means ALTERED. */
        struct kb_audit_verify_opts vo = {0};
        kb_audit_verifier_t *v = kb_audit_verifier_new(&vo, errstr, sizeof errstr);
        kb_audit_verifier_feed(v, 0, 0, am.key, am.key_len, value, am.len);
        size_t np;
        const struct kb_audit_problem *p = kb_audit_verifier_problems(v, &np);
        CHECK_INT(np, ok ? 0 : 1);
        if (np)
            CHECK_INT(p[0].kind, KB_AUDIT_ALTERED);
        kb_audit_verifier_destroy(v);
        free(value);
    }
    kb_audit_destroy(a);
    free(placeholder);
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

/* The trail's codec is checked when the handle is made, and a producer's
 * audit topic handle carries it. */
static void test_codec(void)
{
    char errstr[256] = "";
    struct kb_audit_opts o = {.partitions = 3, .compression = "brotli"};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    CHECK(a == NULL);
    CHECK(strstr(errstr, "audit compression \"brotli\"") != NULL);
    o.compression = "zstd";
    a = kb_audit_new(&o, errstr, sizeof errstr);
    CHECK(a != NULL);
    kb_audit_destroy(a);
    o.compression = NULL; /* KB_AUDIT_COMPRESSION */
    a = kb_audit_new(&o, errstr, sizeof errstr);
    CHECK(a != NULL);
    if (!a)
        return;
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof errstr);
    CHECK(p != NULL);
    rd_kafka_topic_t *rkt = p ? kb_audit_topic_handle(a, p, errstr, sizeof errstr) : NULL;
    CHECK(rkt != NULL);
    if (rkt) {
        char name[128];
        kb_topic_name(name, sizeof name, "audit");
        CHECK_STR(rd_kafka_topic_name(rkt), name);
        rd_kafka_topic_destroy(rkt);
    }
    if (p)
        rd_kafka_destroy(p);
    kb_audit_destroy(a);
}

int main(void)
{
    test_codec();
    test_sha256_vectors();
    test_many_chains();
    test_same_verdict();
    test_utf8();
    KB_TEST_DONE();
}
