/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_audit.c - bench-audit: in one run, (1) the audit trail's cost in
 * the router: `ketenbus route` drains the same events with and without the
 * trail on a real broker, in ABBA order after a warm-up, timed by committed
 * offsets like bench-route, with the router's and broker's CPU per event read
 * from /proc at the first and last commit; (2) `ketenbus audit verify` over
 * synthetic records written to the broker, end to end (process start to
 * exit), on one reader thread and on the default (one per CPU), beside the
 * same readers consuming without verifying (what Kafka alone costs) and the
 * verifier alone on records in memory; (3) `ketenbus audit subject` (the
 * access report) over those records. Every figure is measured; nothing is
 * extrapolated.
 *
 * usage: bench-audit [--records N] [--subject-records N] [--route-count N]
 *                    [--route-pairs K] [--warmup N] [--batch N] [--chains C]
 *                    [--bootstrap HOST:PORT] [--memory-only] [--no-route]
 *                    [--verify-loop SECONDS] [--verify-runs K] [--audit-compression CODEC]
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/wait.h>

#include <librdkafka/rdkafka.h>

#include "bench_common.h"
#include "ketenbus/audit.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/route.h"

#ifndef KB_BIN_DIR
#error "KB_BIN_DIR must name the folder of the ketenbus executable"
#endif

/* The audit topic's codec, for the router and the synthetic trail alike
 * (--audit-compression). */
static const char *g_codec = KB_AUDIT_COMPRESSION;

#define PARTITIONS 3          /* audit topic and router input, as bench-route */
#define FIXTURE_BSN "999995303"
#define FIXTURE_EVERY 5000    /* 1 in 5000 records is about the fixture person */
#define N_PSEUDO 65536        /* other subjects, drawn round-robin */
#define CHUNK 100000

/* ---------------------------------------------------- synthetic records */

struct gen {
    kb_audit_t *a;
    char input_topic[128];
    long chains;
    char target[KB_PSEUDONYM_LEN + 1];
    char (*pseudo)[KB_PSEUDONYM_LEN + 1];
    double t_append;   /* seconds inside kb_audit_append */
    long appended;
};

/* A router-shaped trail: decisions spread round-robin over the chains (input
 * partitions), a checkpoint round every 100 decisions (a transaction). */
static int gen_open(struct gen *g, const char *priv, const uint8_t *skey, size_t skey_len,
                    long chains, int partitions, const char *topic, char *errstr, size_t cap)
{
    memset(g, 0, sizeof *g);
    g->chains = chains;
    kb_topic_name(g->input_topic, sizeof g->input_topic, "in.gba");
    struct kb_audit_opts o = {.topic = topic, .partitions = partitions, .signing_key_file = priv,
                              .checkpoint_every = 1000, .checkpoint_ms = 3600000,
                              .compression = g_codec};
    g->a = kb_audit_new(&o, errstr, cap);
    g->pseudo = malloc(sizeof *g->pseudo * N_PSEUDO);
    if (!g->a || !g->pseudo)
        return -1;
    kb_event_pseudonym(skey, skey_len, "bsn", FIXTURE_BSN, g->target);
    char bsn[16];
    for (long i = 0; i < N_PSEUDO; i++) {
        snprintf(bsn, sizeof bsn, "%09ld", 100000000 + i * 7919);
        kb_event_pseudonym(skey, skey_len, "bsn", bsn, g->pseudo[i]);
    }
    for (long c = 0; c < chains; c++)
        kb_audit_resume_at(g->a, g->input_topic, (int32_t)c, 0, NULL);
    return 0;
}

static void gen_close(struct gen *g)
{
    kb_audit_destroy(g->a);
    free(g->pseudo);
}

typedef void (*emit_fn)(void *opaque, const struct kb_audit_msg *m);

/* Decision number @p i; its record and any due checkpoints go to @p emit. */
static void gen_one(struct gen *g, long i, emit_fn emit, void *opaque)
{
    static const char *const fields[] = {"kind.bsn", "kind.geboortedatum", "inschrijving.gemeente"};
    static const struct kb_audit_recipient r = {"svb-kinderbijslag", "akw-uitnodiging", fields, 3};
    char id[48], errstr[256];
    snprintf(id, sizeof id, "%08lx-0000-5000-8000-000000000000", i);
    struct kb_audit_decision d = {
        .input_topic = g->input_topic, .input_partition = (int32_t)(i % g->chains),
        .input_offset = i / g->chains, .event_id = id,
        .event_type = "nl.brp.persoon-geboren", .event_time = "2024-03-18T09:15:30.250Z",
        .subject = i % FIXTURE_EVERY == 0 ? g->target : g->pseudo[i % N_PSEUDO],
        .schema_id = 1001, .outcome = KB_AUDIT_DELIVERED,
        .recipients = &r, .n_recipients = 1, .recorded_at_ms = 1710753330250 + i};
    struct kb_audit_msg m;
    double t = bench_now_s();
    kb_err_t err = kb_audit_append(g->a, &d, &m, errstr, sizeof errstr);
    g->t_append += bench_now_s() - t;
    if (err) {
        fprintf(stderr, "bench-audit: append: %s\n", errstr);
        exit(1);
    }
    g->appended++;
    emit(opaque, &m);
    if (i % 100 == 99) {
        struct kb_audit_msg cps[64];
        size_t n = kb_audit_checkpoints(g->a, cps, 64);
        for (size_t k = 0; k < n; k++)
            emit(opaque, &cps[k]);
        kb_audit_commit(g->a);
    }
}

/* ------------------------------------------------ (2, 3) in memory */

struct chunk {
    uint8_t *data;          /* values back to back */
    size_t *off, *len;
    char (*key)[64];
    size_t n, used, cap;
};

static void chunk_add(void *opaque, const struct kb_audit_msg *m)
{
    struct chunk *c = opaque;
    if (c->used + m->len > c->cap) {
        c->cap = (c->used + m->len) * 2;
        c->data = realloc(c->data, c->cap);
        if (!c->data)
            exit(1);
    }
    memcpy(c->data + c->used, m->value, m->len);
    c->off[c->n] = c->used;
    c->len[c->n] = m->len;
    snprintf(c->key[c->n], 64, "%.*s", (int)m->key_len, m->key);
    c->used += m->len;
    c->n++;
}

struct mem_result {
    double verify_rps, subject_s, append_ns;
    uint64_t records, checkpoints, matches;
    size_t problems;
};

/*
 * @p records decisions, generated a chunk at a time; each chunk is fed to
 * one verifier (timed) and filtered for the fixture subject (timed). With
 * @p loop_s > 0 the first chunk is verified over and over for that long
 * instead (fresh verifier each pass), for a profiler.
 */
static int run_memory(const char *priv, const char *pub, const uint8_t *skey, size_t skey_len,
                      long records, long chains, double loop_s, struct mem_result *res)
{
    char errstr[512];
    struct gen g;
    if (gen_open(&g, priv, skey, skey_len, chains, 1, NULL, errstr, sizeof errstr)) {
        fprintf(stderr, "bench-audit: %s\n", errstr);
        return -1;
    }
    const char *keys[1] = {pub};
    struct kb_audit_verify_opts vo = {.public_key_files = keys, .n_public_keys = 1,
                                      .from_start = 1};
    kb_audit_verifier_t *v = kb_audit_verifier_new(&vo, errstr, sizeof errstr);
    if (!v) {
        fprintf(stderr, "bench-audit: %s\n", errstr);
        return -1;
    }
    struct chunk ch = {0};
    ch.off = malloc(sizeof *ch.off * CHUNK * 2);
    ch.len = malloc(sizeof *ch.len * CHUNK * 2);
    ch.key = malloc(sizeof *ch.key * CHUNK * 2);
    double t_verify = 0, t_subject = 0;
    uint64_t checked = 0;
    struct kb_audit_filter f = {.subject = g.target, .outcome = -1};
    for (long done = 0; done < records;) {
        ch.n = ch.used = 0;
        for (long i = 0; i < CHUNK && done < records; i++, done++)
            gen_one(&g, done, chunk_add, &ch);
        if (loop_s > 0) {
            uint64_t fed = 0;
            double t0 = bench_now_s();
            while (bench_now_s() - t0 < loop_s) {
                kb_audit_verifier_t *lv = kb_audit_verifier_new(&vo, errstr, sizeof errstr);
                for (size_t i = 0; i < ch.n; i++)
                    kb_audit_verifier_feed(lv, 0, (int64_t)i, ch.key[i], strlen(ch.key[i]),
                                           ch.data + ch.off[i], ch.len[i]);
                fed += ch.n;
                kb_audit_verifier_destroy(lv);
            }
            printf("verify loop: %.0f messages/s\n", (double)fed / (bench_now_s() - t0));
            break;
        }
        double tv = bench_now_s();
        for (size_t i = 0; i < ch.n; i++)
            kb_audit_verifier_feed(v, 0, (int64_t)(checked + i), ch.key[i], strlen(ch.key[i]),
                                   ch.data + ch.off[i], ch.len[i]);
        t_verify += bench_now_s() - tv;
        double ts = bench_now_s();
        for (size_t i = 0; i < ch.n; i++) {
            struct kb_audit_record rec;
            const uint8_t *val = ch.data + ch.off[i];
            if (kb_audit_kind(val, ch.len[i]) != KB_AUDIT_RECORD_SCHEMA_ID ||
                kb_audit_decode_record(val, ch.len[i], &rec, NULL, 0))
                continue;
            res->matches += (uint64_t)kb_audit_filter_match(&f, &rec);
        }
        t_subject += bench_now_s() - ts;
        checked += ch.n;
    }
    kb_audit_verifier_finish(v);
    kb_audit_verifier_problems(v, &res->problems);
    kb_audit_verifier_counts(v, NULL, &res->records, &res->checkpoints);
    res->verify_rps = t_verify > 0 ? (double)res->records / t_verify : 0;
    res->subject_s = t_subject;
    res->append_ns = g.appended ? g.t_append / (double)g.appended * 1e9 : 0;
    kb_audit_verifier_destroy(v);
    gen_close(&g);
    free(ch.data);
    free(ch.off);
    free(ch.len);
    free(ch.key);
    return 0;
}

/* ------------------------------------------- (2, 3) on the broker */

struct producer {
    rd_kafka_t *rk;
    long failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        ((struct producer *)opaque)->failed++;
}

static void produce_one(void *opaque, const struct kb_audit_msg *m)
{
    struct producer *p = opaque;
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(m->topic), RD_KAFKA_V_PARTITION(m->partition),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE((void *)m->value, m->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (err)
                p->failed++;
            break;
        }
        rd_kafka_poll(p->rk, 10);
    }
    rd_kafka_poll(p->rk, 0);
}

/*
 * Write @p n synthetic decisions to <prefix>.audit (3 partitions) as the
 * router would lay them out (keys, partitions, checkpoints), but with a
 * plain idempotent producer rather than one transaction per batch: this
 * fills the topic; it is not the thing measured.
 */
static int write_trail(const char *bootstrap, const char *priv, const uint8_t *skey,
                       size_t skey_len, long n, long chains, double *secs)
{
    char errstr[512], audit_topic[128], in_topic[128];
    kb_topic_name(audit_topic, sizeof audit_topic, "audit");
    kb_topic_name(in_topic, sizeof in_topic, "in.gba");
    struct producer p = {0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "linger.ms", "20", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "batch.size", "1000000", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", errstr,
                          sizeof errstr) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.kbytes", "1048576", errstr,
                          sizeof errstr)) {
        fprintf(stderr, "bench-audit: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &p);
    p.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p.rk) {
        fprintf(stderr, "bench-audit: %s\n", errstr);
        return -1;
    }
    struct gen g;
    if (gen_open(&g, priv, skey, skey_len, chains, PARTITIONS, audit_topic, errstr,
                 sizeof errstr)) {
        fprintf(stderr, "bench-audit: %s\n", errstr);
        rd_kafka_destroy(p.rk);
        return -1;
    }
    /* The router's codec, so verify reads what it would read in production. */
    rd_kafka_topic_t *audit_rkt = kb_audit_topic_handle(g.a, p.rk, errstr, sizeof errstr);
    /* The input topic exists (empty) so verify's retention check has
     * something to look at; the audit topic gets the router's layout. */
    const char *audit_t[] = {audit_topic};
    const char *in_t[] = {in_topic};
    if (!audit_rkt ||
        kb_kafka_ensure_topics(p.rk, audit_t, 1, PARTITIONS, 30000, errstr, sizeof errstr) ||
        kb_kafka_ensure_topics(p.rk, in_t, 1, (int)chains, 30000, errstr, sizeof errstr)) {
        fprintf(stderr, "bench-audit: %s\n", errstr);
        if (audit_rkt)
            rd_kafka_topic_destroy(audit_rkt);
        gen_close(&g);
        rd_kafka_destroy(p.rk);
        return -1;
    }
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++)
        gen_one(&g, i, produce_one, &p);
    rd_kafka_flush(p.rk, 300000);
    *secs = bench_now_s() - t0;
    int left = rd_kafka_outq_len(p.rk);
    gen_close(&g);
    rd_kafka_topic_destroy(audit_rkt);
    rd_kafka_destroy(p.rk);
    if (p.failed || left) {
        fprintf(stderr, "bench-audit: %ld records not written (%d still queued)\n", p.failed, left);
        return -1;
    }
    return 0;
}

static int count_one(void *opaque, int32_t partition, int64_t offset, int64_t ts,
                     const void *key, size_t key_len, const void *value, size_t len)
{
    (void)partition, (void)offset, (void)ts, (void)key, (void)key_len, (void)value, (void)len;
    atomic_fetch_add_explicit((atomic_ulong *)opaque, 1, memory_order_relaxed);
    return 0;
}

/* The audit topic read by verify's readers (one per CPU), doing nothing with
 * the messages: what Kafka and librdkafka cost by themselves. */
static int scan_only(const char *bootstrap, uint64_t *messages)
{
    char errstr[512];
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    kb_kafka_opts_set(&ko, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    atomic_ulong n;
    atomic_init(&n, 0);
    kb_err_t err = kb_audit_scan_parallel(&ko, NULL, 0, 0, 0, count_one, &n, errstr,
                                          sizeof errstr);
    kb_kafka_opts_fini(&ko);
    *messages = atomic_load(&n);
    if (err)
        fprintf(stderr, "bench-audit: %s\n", errstr);
    return err ? -1 : 0;
}

/* Run `ketenbus audit ARGS...` with topic prefix @p prefix; wall seconds in
 * *@p secs, its output in @p log. The exit status. */
static int run_audit_cmd(const char *prefix, const char *log, double *secs, char **args)
{
    char ketenbus[512], env_prefix[128];
    snprintf(ketenbus, sizeof ketenbus, "%s/ketenbus", KB_BIN_DIR);
    snprintf(env_prefix, sizeof env_prefix, "KETENBUS_TOPIC_PREFIX=%s", prefix);
    char *argv[16] = {ketenbus, "audit"};
    size_t k = 2;
    for (size_t i = 0; args[i] && k < 15; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    char *env[] = {env_prefix, NULL};
    unlink(log);
    double t0 = bench_now_s();
    pid_t pid = bench_spawn(argv, log, env);
    int st = pid > 0 ? bench_wait(pid) : -1;
    *secs = bench_now_s() - t0;
    return st;
}

/* The first line of @p log that starts with @p prefix, into @p out. */
static int log_line(const char *log, const char *prefix, char *out, size_t cap)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return -1;
    char line[1024];
    int found = -1;
    while (found && fgets(line, sizeof line, f))
        if (!strncmp(line, prefix, strlen(prefix))) {
            line[strcspn(line, "\n")] = 0;
            snprintf(out, cap, "%s", line);
            found = 0;
        }
    fclose(f);
    return found;
}

struct verify_out {
    double secs;          /* wall time of the whole command */
    double cpu_s;         /* its CPU time, user + system, all threads */
    uint64_t records;
    int ok;               /* exit 0 and "result: OK" */
};

/* `ketenbus audit verify`, with --threads @p threads when > 0. */
static void run_verify(const char *prefix, const char *bootstrap, const char *pub,
                       const char *dir, const char *name, int threads, struct verify_out *out)
{
    char log[512], line[1024], sthreads[16];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    snprintf(sthreads, sizeof sthreads, "%d", threads);
    char *args[] = {"verify", "--public-key", (char *)pub, "-b", (char *)bootstrap,
                    threads > 0 ? "--threads" : NULL, sthreads, NULL};
    struct rusage r0, r1;
    getrusage(RUSAGE_CHILDREN, &r0);
    int st = run_audit_cmd(prefix, log, &out->secs, args);
    getrusage(RUSAGE_CHILDREN, &r1);
    out->cpu_s = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
                 (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                 (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec +
                          r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
    out->records = 0;
    out->ok = st == 0 && !log_line(log, "result: OK", line, sizeof line);
    if (!log_line(log, "audit trail ", line, sizeof line)) {
        const char *p = strstr(line, " messages, ");
        if (p)
            out->records = strtoull(p + 11, NULL, 10);
        printf("  %s\n", line);
    }
    if (!out->ok)
        fprintf(stderr, "bench-audit: audit verify failed (status %d, log %s)\n", st, log);
}

/* ------------------------------------------------------------ (1) route */


/*
 * One cold drain, the way bench-e2e and bench-route drained before their
 * rounds (preload c->count events with gen seed 1, start the router, time
 * from its first commit to the commit of
 * the last event, with the router's and the broker's CPU per event between
 * those commits: CPU per event hardly depends on what else runs on the
 * machine, throughput does), on a prefix and with arguments of its own.
 */
static int drain_with_cpu(const struct bench_ctx *c, const char *prefix, const char *group,
                          char *const *argv, char *const *env, const char *name,
                          struct bench_drain *out)
{
    char in[160], log[512];
    snprintf(in, sizeof in, "%s.in.gba", prefix);
    snprintf(log, sizeof log, "%s/gen-%s.log", c->dir, name);
    if (bench_run_gen(c, prefix, c->count, 1, 0, log)) {
        fprintf(stderr, "bench-audit: ketenbus gen failed (log %s)\n", log);
        return -1;
    }
    int64_t end = bench_topic_end(c->bootstrap, in, PARTITIONS);
    snprintf(log, sizeof log, "%s/%s.log", c->dir, name);
    pid_t pid = bench_spawn(argv, log, env);
    if (pid <= 0)
        return -1;
    *out = bench_drain(c->bootstrap, group, in, PARTITIONS, 0, end, 600, pid);
    if (out->ok)
        printf("%s: drain %.0f events/s over %.1f s (first commit after %.1f s); "
               "router %.0f us CPU/event, broker %.0f us\n",
               name, out->eps, out->seconds, out->startup_s, out->cpu_us, out->broker_cpu_us);
    else
        fprintf(stderr, "bench-audit: %s did not drain (log %s)\n", name, log);
    if (!out->exited) { /* else bench_drain() reaped it: its pid may be another's now */
        int st = bench_stop(pid, 20);
        if (st != 0 && st != 128 + SIGTERM)
            fprintf(stderr, "bench-audit: %s exited with status %d (log %s)\n", name, st, log);
    }
    fflush(stdout);
    return out->ok ? 0 : -1;
}

struct route_side {
    double events, seconds, cpu_sum, broker_sum;
    int runs, broker_runs;
};

/*
 * 2 * @p pairs drains of @p c->count events, with and without the trail,
 * after two uncounted warm-up drains of @p warmup events (with, then
 * without the trail); each on a fresh topic prefix so every run routes the
 * same input (gen seed 1) from an empty state. The first
 * counted trail is then verified (it must be complete and unaltered: the
 * figure is for a working trail).
 */
static int run_route(struct bench_ctx *c, const char *run_id, const char *priv, const char *pub,
                     int pairs, long warmup, struct route_side *with,
                     struct route_side *without, int *trail_ok)
{
    char ketenbus[512], schemas[512], sbatch[16];
    snprintf(ketenbus, sizeof ketenbus, "%s/ketenbus", KB_BIN_DIR);
    snprintf(schemas, sizeof schemas, "%s/schemas", KB_SOURCE_DIR);
    snprintf(sbatch, sizeof sbatch, "%d", c->batch);
    *trail_ok = 0;
    long count = c->count;
    /* runs -2 and -1 warm the broker up and are not counted. A fresh
     * broker's JIT keeps getting faster for about 100,000 routed events:
     * with a warm-up of a quarter drain, the first counted drain (with the
     * trail) still cost the broker 122 us per event against 48-58 later,
     * and the trail "cost" 25 %. Each side gets a warm-up of its own. Then
     * pairs in the order with/without, without/with, ... (ABBA), so a
     * linear drift in the machine's load falls on both sides alike
     * (exactly so for an even number of pairs). */
    for (int run = -2; run < 2 * pairs; run++) {
        int audit = run == -2 || (run >= 0 && (run % 4 == 0 || run % 4 == 3));
        char prefix[64], group[96], env_prefix[96], name[32];
        snprintf(prefix, sizeof prefix, "kba%sr%d", run_id, run + 2);
        snprintf(group, sizeof group, "%s-route", prefix);
        snprintf(env_prefix, sizeof env_prefix, "KETENBUS_TOPIC_PREFIX=%s", prefix);
        if (run < 0)
            snprintf(name, sizeof name, "route-warmup-%s", audit ? "audit" : "noaudit");
        else
            snprintf(name, sizeof name, "route-%s-%d", audit ? "audit" : "noaudit", run);
        char *argv[24] = {ketenbus, "route", "--subscriptions", c->subs, "--subject-key-file",
                          c->key, "--schemas", schemas, "--instance", "bench", "--group", group,
                          "--batch", sbatch, "-b", c->bootstrap, NULL};
        size_t k = 16;
        if (audit) {
            argv[k++] = "--audit-signing-key";
            argv[k++] = (char *)priv;
            argv[k++] = "--audit-compression";
            argv[k++] = (char *)g_codec;
        } else {
            argv[k++] = "--no-audit";
        }
        argv[k] = NULL;
        char *env[] = {env_prefix, NULL};
        struct bench_drain d = {0};
        c->count = run < 0 ? (warmup > 1000 ? warmup : 1000) : count;
        int failed = drain_with_cpu(c, prefix, group, argv, env, name, &d);
        c->count = count;
        if (failed)
            return -1;
        if (run < 0)
            continue;
        if (bench_drain_untimed(&d, name, "--route-count"))
            return -1;
        struct route_side *s = audit ? with : without;
        s->events += d.events;
        s->seconds += d.seconds;
        s->cpu_sum += d.cpu_us;
        s->runs++;
        if (d.broker_cpu_us >= 0) {
            s->broker_sum += d.broker_cpu_us;
            s->broker_runs++;
        }
        if (run == 0) {
            struct verify_out vo;
            run_verify(prefix, c->bootstrap, pub, c->dir, "verify-route-trail", 0, &vo);
            *trail_ok = vo.ok && vo.records == (uint64_t)c->count;
            printf("route: the trail of run 0 verifies %s (%" PRIu64 " records for %ld events)\n",
                   *trail_ok ? "OK" : "NOT OK", vo.records, c->count);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fputs("usage: bench-audit [--records N] [--subject-records N] [--route-count N]\n"
          "                   [--route-pairs K] [--warmup N] [--batch N] [--chains C]\n"
          "                   [--bootstrap HOST:PORT] [--memory-only] [--no-route]\n"
          "                   [--verify-loop SECONDS] [--verify-runs K]\n"
          "                   [--audit-compression CODEC]\n"
          "  --records N          decisions for the in-memory verifier (default 1000000)\n"
          "  --subject-records N  decisions written to the broker for `audit verify` and\n"
          "                       `audit subject` (default 2000000)\n"
          "  --route-count N      events per router drain (default 50000: ten full\n"
          "                       transactions of the router's default batch)\n"
          "  --route-pairs K      drains with and without the trail, in ABBA order (default 4)\n"
          "  --warmup N           events of each of the two uncounted warm-up drains (with\n"
          "                       and without the trail; default the --route-count)\n"
          "  --batch N            most events per router transaction (default the router's,\n"
          "                       " KB_ROUTE_BATCH_MAX_STR ")\n"
          "  --chains C           input partitions = chains (default 12)\n"
          "  --bootstrap HP       use this broker instead of starting one\n"
          "  --memory-only        only the in-memory verifier and filter, no broker\n"
          "  --no-route           skip the router part\n"
          "  --verify-loop S      verify the first 100,000 messages over and over for S\n"
          "                       seconds (for a profiler), then stop\n"
          "  --verify-runs K      rounds of read-only / verify on 1 thread / verify on\n"
          "                       the default threads; the best of each (default 3)\n"
          "  --audit-compression CODEC\n"
          "                       the audit topic's codec, for the router and the\n"
          "                       synthetic trail (default the router's, "
          KB_AUDIT_COMPRESSION ")\n"
          "Environment: KB_BOOTSTRAP (as --bootstrap); BENCH_KAFKA_STATE, the state\n"
          "folder of the broker it starts (default /dev/shm/kb-kafka-bench-audit, in\n"
          "memory, or /tmp/... when /dev/shm has less than 8 GiB free).\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"records", required_argument, NULL, 'n'},
        {"subject-records", required_argument, NULL, 'S'},
        {"route-count", required_argument, NULL, 'R'},
        {"route-pairs", required_argument, NULL, 'P'},
        {"warmup", required_argument, NULL, 'W'},
        {"batch", required_argument, NULL, 'B'},
        {"chains", required_argument, NULL, 'c'},
        {"bootstrap", required_argument, NULL, 'b'},
        {"memory-only", no_argument, NULL, 'm'},
        {"no-route", no_argument, NULL, 'x'},
        {"verify-loop", required_argument, NULL, 'L'},
        {"verify-runs", required_argument, NULL, 'V'},
        {"audit-compression", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    long records = 1000000, subject_records = 2000000, chains = 12, warmup = 0;
    int pairs = 4, memory_only = 0, no_route = 0, verify_runs = 3, opt;
    double loop_s = 0;
    const char *given_bootstrap = getenv("KB_BOOTSTRAP") && *getenv("KB_BOOTSTRAP")
                                      ? getenv("KB_BOOTSTRAP")
                                      : NULL;
    struct bench_ctx c = {.count = 50000, .batch = KB_ROUTE_BATCH_MAX};
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': records = atol(optarg); break;
        case 'S': subject_records = atol(optarg); break;
        case 'R': c.count = atol(optarg); break;
        case 'P': pairs = atoi(optarg); break;
        case 'W': warmup = atol(optarg); break;
        case 'B': c.batch = atoi(optarg); break;
        case 'c': chains = atol(optarg); break;
        case 'b': given_bootstrap = optarg; break;
        case 'm': memory_only = 1; break;
        case 'x': no_route = 1; break;
        case 'L': loop_s = atof(optarg); break;
        case 'V': verify_runs = atoi(optarg); break;
        case 'C': g_codec = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (records <= 0 || subject_records <= 0 || c.count <= 0 || pairs <= 0 || c.batch <= 0 ||
        chains <= 0 || chains > 1000 || verify_runs <= 0) {
        usage(stderr);
        return 2;
    }
    snprintf(c.dir, sizeof c.dir, "/tmp/bench-audit.XXXXXX");
    if (!mkdtemp(c.dir)) {
        perror("bench-audit: mkdtemp");
        return 1;
    }
    char priv[300], pub[300], errstr[512];
    snprintf(priv, sizeof priv, "%s/audit.key", c.dir);
    snprintf(pub, sizeof pub, "%s/audit.pub", c.dir);
    snprintf(c.key, sizeof c.key, "%s/subject.key", c.dir);
    snprintf(c.subs, sizeof c.subs, "%s/subscriptions.yaml", c.dir);
    uint8_t *skey = NULL;
    size_t skey_len = 0;
    if (kb_audit_keygen(priv, pub, NULL, errstr, sizeof errstr) || bench_write_key(c.key) ||
        bench_subs_write_yaml(c.subs) ||
        kb_event_key_load(c.key, &skey, &skey_len, errstr, sizeof errstr)) {
        fprintf(stderr, "bench-audit: cannot prepare %s: %s\n", c.dir, errstr);
        return 1;
    }
    char machine[512];
    bench_machine(machine, sizeof machine);
    printf("bench-audit: machine: %s; work folder %s\n", machine, c.dir);

    /* (2, 3) in memory: the verifier and the filter alone. */
    struct mem_result mem = {0};
    if (run_memory(priv, pub, skey, skey_len, records, chains, loop_s, &mem))
        return 1;
    if (loop_s > 0)
        return 0;
    long expect_mem = (records + FIXTURE_EVERY - 1) / FIXTURE_EVERY;
    int mem_ok = mem.problems == 0 && mem.records == (uint64_t)records &&
                 mem.matches == (uint64_t)expect_mem;
    printf("memory: %ld records, %" PRIu64 " checkpoints, %zu problems; verify %.0f records/s; "
           "subject filter %.2f s (%" PRIu64 " matches, expected %ld); append %.0f ns\n",
           records, mem.checkpoints, mem.problems, mem.verify_rps, mem.subject_s, mem.matches,
           expect_mem, mem.append_ns);
    if (memory_only) {
        printf("bench-audit verify_mem_rps=%.0f subject_mem_s=%.2f subject_mem_records=%ld "
               "append_ns=%.0f ok=%d\n",
               mem.verify_rps, mem.subject_s, records, mem.append_ns, mem_ok);
        return mem_ok ? 0 : 1;
    }

    char state_buf[512];
    const char *state = bench_broker_state("audit", state_buf, sizeof state_buf);
    if (given_bootstrap)
        snprintf(c.bootstrap, sizeof c.bootstrap, "%s", given_bootstrap);
    else if (bench_broker_start(state, c.bootstrap, sizeof c.bootstrap)) {
        fprintf(stderr, "bench-audit: the broker did not start (tests/kafka/broker.sh)\n");
        return 1;
    }
    printf("bench-audit: broker %s\n", c.bootstrap);
    int rc = 1;
    /* Topic prefixes of this run: kba<id>r<N> for the routers, kba<id>v for
     * the synthetic trail, so a broker given with --bootstrap can be reused. */
    char run_id[16], vprefix[32];
    snprintf(run_id, sizeof run_id, "%x", (unsigned)(bench_wall_ms() / 1000) & 0xfffffu);
    snprintf(vprefix, sizeof vprefix, "kba%sv", run_id);

    /* (1) the router with and without the trail, alternating. */
    struct route_side with = {0}, without = {0};
    int trail_ok = 1;
    double overhead = 0, eps_with = 0, eps_without = 0, cpu_with = 0, cpu_without = 0;
    double cpu_overhead = 0, bcpu_with = -1, bcpu_without = -1;
    if (!no_route) {
        if (run_route(&c, run_id, priv, pub, pairs, warmup > 0 ? warmup : c.count, &with,
                      &without, &trail_ok)) {
            fprintf(stderr, "bench-audit: a router drain failed (logs in %s)\n", c.dir);
            goto out_broker;
        }
        /* All events over all drain time of a side: a single run that
         * caught a quiet moment on the shared machine weighs by its time,
         * not by its rate. */
        eps_with = with.seconds > 0 ? with.events / with.seconds : 0;
        eps_without = without.seconds > 0 ? without.events / without.seconds : 0;
        overhead = (1 - eps_with / eps_without) * 100;
        cpu_with = with.cpu_sum / with.runs;
        cpu_without = without.cpu_sum / without.runs;
        cpu_overhead = (cpu_with / cpu_without - 1) * 100;
        if (with.broker_runs && without.broker_runs) {
            bcpu_with = with.broker_sum / with.broker_runs;
            bcpu_without = without.broker_sum / without.broker_runs;
        }
        printf("route: %.0f events/s with the trail, %.0f without (%d runs each): "
               "throughput overhead %.1f %%\n",
               eps_with, eps_without, pairs, overhead);
        printf("route: router CPU %.0f us/event with the trail, %.0f without: +%.1f %%; "
               "broker CPU %.0f us/event with, %.0f without\n",
               cpu_with, cpu_without, cpu_overhead, bcpu_with, bcpu_without);
    }

    /* (2, 3) on the broker: fill kba<id>v.audit, then the real commands. */
    setenv("KETENBUS_TOPIC_PREFIX", vprefix, 1);
    double wsecs = 0;
    if (write_trail(c.bootstrap, priv, skey, skey_len, subject_records, chains, &wsecs))
        goto out_broker;
    printf("broker: wrote %ld records (+ checkpoints) in %.1f s\n", subject_records, wsecs);
    /* Side by side, @p verify_runs rounds of: the readers alone, verify on
     * one thread, verify on the default threads; the best of each (the
     * machine is shared: the best run is the one least disturbed). */
    int threads = kb_audit_scan_threads(0);
    struct verify_out vo = {0}, vo1 = {0};
    double scan_s = 0, verify_rps = 0, verify1_rps = 0, scan_rps = 0;
    uint64_t scanned = 0;
    for (int run = 0; run < verify_runs; run++) {
        uint64_t n = 0;
        double t0 = bench_now_s();
        if (scan_only(c.bootstrap, &n)) {
            fprintf(stderr, "bench-audit: reading the trail failed\n");
            goto out_broker;
        }
        double t = bench_now_s() - t0;
        if (!scan_s || t < scan_s) {
            scan_s = t;
            scanned = n;
        }
        struct verify_out one, all;
        run_verify(vprefix, c.bootstrap, pub, c.dir, "verify-1", 1, &one);
        run_verify(vprefix, c.bootstrap, pub, c.dir, "verify", 0, &all);
        double r1 = one.secs > 0 ? (double)one.records / one.secs : 0;
        double rn = all.secs > 0 ? (double)all.records / all.secs : 0;
        printf("broker: run %d: read only %.2f s, verify 1 thread %.2f s (%.2f s CPU), "
               "%d threads %.2f s (%.2f s CPU)\n",
               run, t, one.secs, one.cpu_s, threads, all.secs, all.cpu_s);
        if (run == 0 || !one.ok || (vo1.ok && r1 > verify1_rps)) {
            vo1 = one;
            verify1_rps = r1;
        }
        if (run == 0 || !all.ok || (vo.ok && rn > verify_rps)) {
            vo = all;
            verify_rps = rn;
        }
    }
    scan_rps = scan_s > 0 ? (double)scanned / scan_s : 0;
    printf("broker: the readers alone (%d threads, no verification): %" PRIu64
           " messages in %.2f s = %.0f messages/s\n",
           threads, scanned, scan_s, scan_rps);
    printf("broker: `ketenbus audit verify --threads 1`: %" PRIu64 " records in %.2f s wall = "
           "%.0f records/s (%s)\n",
           vo1.records, vo1.secs, verify1_rps, vo1.ok ? "OK" : "FAILED");
    printf("broker: `ketenbus audit verify` (%d threads): %" PRIu64 " records in %.2f s wall = "
           "%.0f records/s (%s), %.2f us CPU per record\n",
           threads, vo.records, vo.secs, verify_rps, vo.ok ? "OK" : "FAILED",
           vo.records ? vo.cpu_s / (double)vo.records * 1e6 : 0);
    char slog[512], line[1024];
    snprintf(slog, sizeof slog, "%s/subject.log", c.dir);
    char *sargs[] = {"subject", "--bsn", FIXTURE_BSN, "--subject-key-file", c.key, "-b",
                     c.bootstrap, NULL};
    double subject_s = 0;
    int sst = run_audit_cmd(vprefix, slog, &subject_s, sargs);
    long expect = (subject_records + FIXTURE_EVERY - 1) / FIXTURE_EVERY;
    long got = -1;
    /* "N deliveries of M events about this subject (S s)" */
    FILE *sf = fopen(slog, "r");
    while (sf && fgets(line, sizeof line, sf)) {
        long d, e;
        if (sscanf(line, "%ld deliveries of %ld events", &d, &e) == 2) {
            got = e;
            line[strcspn(line, "\n")] = 0;
            printf("  %s\n", line);
        }
    }
    if (sf)
        fclose(sf);
    int subject_ok = sst == 0 && got == expect;
    printf("broker: `ketenbus audit subject`: %.2f s wall over %ld records, %ld events found "
           "(expected %ld)\n",
           subject_s, subject_records, got, expect);

    char soverhead[32] = "n/a", scpu[32] = "n/a", swith[32] = "n/a", swithout[32] = "n/a";
    if (!no_route) {
        snprintf(soverhead, sizeof soverhead, "%.1f", overhead);
        snprintf(scpu, sizeof scpu, "%.1f", cpu_overhead);
        snprintf(swith, sizeof swith, "%.0f", eps_with);
        snprintf(swithout, sizeof swithout, "%.0f", eps_without);
    }
    int ok = mem_ok && vo.ok && vo.records == (uint64_t)subject_records && vo1.ok &&
             vo1.records == (uint64_t)subject_records && subject_ok && trail_ok;
    printf("bench-audit audit_overhead_pct=%s verify_rps=%.0f subject_s=%.2f "
           "subject_records=%ld verify_mem_rps=%.0f verify_1t_rps=%.0f verify_threads=%d "
           "scan_rps=%.0f verify_cpu_us=%.2f audit_cpu_overhead_pct=%s "
           "route_eps_with=%s route_eps_without=%s route_count=%ld route_pairs=%d "
           "append_ns=%.0f audit_compression=%s ok=%d\n",
           soverhead, verify_rps, subject_s, subject_records, mem.verify_rps, verify1_rps,
           threads, scan_rps, vo.records ? vo.cpu_s / (double)vo.records * 1e6 : 0, scpu, swith,
           swithout, c.count, pairs, mem.append_ns, g_codec, ok);
    rc = ok ? 0 : 1;
out_broker:
    if (!given_bootstrap)
        bench_broker_stop(state);
    free(skey);
    return rc;
}
