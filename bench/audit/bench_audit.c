/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_audit.c - bench-audit: how fast `audit verify` checks records and
 * how long the access report takes over N synthetic records (default 10
 * million), both on records held in memory (the Kafka read is measured by
 * `ketenbus audit verify` itself, which prints its time). Also the cost of
 * kb_audit_append per routing decision, the figure behind the router's
 * overhead: audit_overhead_pct needs the router with and without the trail
 * (`ketenbus route --audit-...` once wired) and is printed as "n/a" until
 * then; pass --route-rps-with/--route-rps-without to have it computed.
 *
 * usage: bench-audit [--records N] [--chains C] [--route-rps-with R --route-rps-without R]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ketenbus/audit.h"
#include "ketenbus/event.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define CHUNK 100000

struct chunk {
    uint8_t *data;          /* values back to back */
    size_t *off, *len;      /* per message */
    char (*key)[64];
    size_t n, used, cap;
};

static void chunk_add(struct chunk *c, const struct kb_audit_msg *m)
{
    if (c->used + m->len > c->cap) {
        c->cap = (c->used + m->len) * 2;
        c->data = realloc(c->data, c->cap);
    }
    memcpy(c->data + c->used, m->value, m->len);
    c->off[c->n] = c->used;
    c->len[c->n] = m->len;
    snprintf(c->key[c->n], 64, "%.*s", (int)m->key_len, m->key);
    c->used += m->len;
    c->n++;
}

int main(int argc, char **argv)
{
    long records = 10000000, chains = 12;
    double rps_with = 0, rps_without = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--records"))
            records = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--chains"))
            chains = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--route-rps-with"))
            rps_with = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--route-rps-without"))
            rps_without = atof(argv[i + 1]);
    }
    char dir[] = "/tmp/bench-audit-XXXXXX", priv[64], pub[64], errstr[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(priv, sizeof priv, "%s/k", dir);
    snprintf(pub, sizeof pub, "%s/k.pub", dir);
    if (kb_audit_keygen(priv, pub, NULL, errstr, sizeof errstr)) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    struct kb_audit_opts o = {.partitions = 1, .signing_key_file = priv,
                              .checkpoint_every = 1000, .checkpoint_ms = 3600000};
    kb_audit_t *a = kb_audit_new(&o, errstr, sizeof errstr);
    const char *keys[1] = {pub};
    struct kb_audit_verify_opts vo = {.public_key_files = keys, .n_public_keys = 1,
                                      .from_start = 1};
    kb_audit_verifier_t *v = kb_audit_verifier_new(&vo, errstr, sizeof errstr);
    if (!a || !v) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    uint8_t skey[32] = "bench-audit subject key 32 bytes";
    char target[KB_PSEUDONYM_LEN + 1];
    kb_event_pseudonym(skey, sizeof skey, "bsn", "999995303", target);
    for (long c = 0; c < chains; c++)
        kb_audit_resume_at(a, "kb.in.gba", (int32_t)c, 0, NULL);
    static const char *const fields[] = {"kind.bsn", "kind.geboortedatum", "inschrijving.gemeente"};
    struct kb_audit_recipient r = {"svb-kinderbijslag", "akw-uitnodiging", fields, 3};
    struct chunk ch = {0};
    ch.off = malloc(sizeof *ch.off * (CHUNK * 2));
    ch.len = malloc(sizeof *ch.len * (CHUNK * 2));
    ch.key = malloc(sizeof *ch.key * (CHUNK * 2));
    double t_append = 0, t_verify = 0, t_subject = 0;
    uint64_t matches = 0, checked = 0;
    struct kb_audit_filter f = {.subject = target, .outcome = -1};
    char pseudo[KB_PSEUDONYM_LEN + 1], bsn[16], id[48];
    for (long done = 0; done < records;) {
        ch.n = ch.used = 0;
        double t0 = now_s();
        for (long i = 0; i < CHUNK && done < records; i++, done++) {
            /* 1 in 5000 records is about the fixture person. */
            if (done % 5000 == 0)
                memcpy(pseudo, target, sizeof pseudo);
            else {
                snprintf(bsn, sizeof bsn, "%09ld", 100000000 + done % 1000003);
                kb_event_pseudonym(skey, sizeof skey, "bsn", bsn, pseudo);
            }
            snprintf(id, sizeof id, "%08lx-0000-5000-8000-000000000000", done);
            struct kb_audit_decision d = {
                .input_topic = "kb.in.gba", .input_partition = (int32_t)(done % chains),
                .input_offset = done / chains, .event_id = id,
                .event_type = "nl.brp.persoon-geboren", .event_time = "2024-03-18T09:15:30.250Z",
                .subject = pseudo, .schema_id = 1001, .outcome = KB_AUDIT_DELIVERED,
                .recipients = &r, .n_recipients = 1, .recorded_at_ms = 1710753330250 + done};
            double ta = now_s();
            struct kb_audit_msg m;
            kb_audit_append(a, &d, &m, errstr, sizeof errstr);
            t_append += now_s() - ta;
            chunk_add(&ch, &m);
            if (i % 100 == 99) {
                struct kb_audit_msg cps[64];
                size_t n = kb_audit_checkpoints(a, cps, 64);
                for (size_t k = 0; k < n; k++)
                    chunk_add(&ch, &cps[k]);
                kb_audit_commit(a);
            }
        }
        (void)t0;
        double tv = now_s();
        for (size_t i = 0; i < ch.n; i++)
            kb_audit_verifier_feed(v, 0, (int64_t)(checked + i), ch.key[i], strlen(ch.key[i]),
                                   ch.data + ch.off[i], ch.len[i]);
        t_verify += now_s() - tv;
        double ts = now_s();
        for (size_t i = 0; i < ch.n; i++) {
            struct kb_audit_record rec;
            const uint8_t *val = ch.data + ch.off[i];
            if (kb_audit_kind(val, ch.len[i]) != KB_AUDIT_RECORD_SCHEMA_ID ||
                kb_audit_decode_record(val, ch.len[i], &rec, NULL, 0))
                continue;
            matches += kb_audit_filter_match(&f, &rec);
        }
        t_subject += now_s() - ts;
        checked += ch.n;
    }
    kb_audit_verifier_finish(v);
    size_t np;
    kb_audit_verifier_problems(v, &np);
    uint64_t recs, cps;
    kb_audit_verifier_counts(v, NULL, &recs, &cps);
    long expect = (records + 4999) / 5000;
    printf("records=%ld checkpoints=%" PRIu64 " problems=%zu subject_matches=%" PRIu64
           " (expected %ld)\n",
           records, cps, np, matches, expect);
    printf("append: %.0f ns/record; verify: %.2f s; subject: %.2f s\n",
           t_append / (double)records * 1e9, t_verify, t_subject);
    char overhead[32] = "n/a";
    if (rps_with > 0 && rps_without > 0)
        snprintf(overhead, sizeof overhead, "%.1f", (1 - rps_with / rps_without) * 100);
    printf("bench-audit verify_rps=%.0f subject_s=%.2f append_ns=%.0f audit_overhead_pct=%s "
           "records=%ld ok=%d\n",
           (double)recs / t_verify, t_subject, t_append / (double)records * 1e9, overhead,
           records, np == 0 && (long)matches == expect && (long)recs == records);
    kb_audit_verifier_destroy(v);
    kb_audit_destroy(a);
    free(ch.data);
    free(ch.off);
    free(ch.len);
    free(ch.key);
    unlink(priv);
    unlink(pub);
    rmdir(dir);
    return np == 0 ? 0 : 1;
}
