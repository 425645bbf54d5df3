/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_route.c - bench-route: (a) the cost of matching one event against
 * 10, 100, 1,000 and 10,000 generated subscriptions, as a ratio to 10; (b) on
 * a real broker, in one run, a bare librdkafka transactional copy
 * topic->topic (the limit) against `ketenbus route` with the 20 benchmark
 * subscriptions: drain throughput and produce-to-consume latency at a fixed
 * rate, both on identical input from `ketenbus gen`.
 *
 * Usage: bench-route [--matching] [--count N] [--rate R] [--seconds S]
 *                    [--match-seconds S] [--batch N] [--warmup N] [--rounds N]
 *                    [--process-warmup N] [--compression CODEC]
 *                    [--bootstrap HOST:PORT] [--profile-router]
 * Part (b) also runs a fan-out copy: the bare copy writing each input as many
 * times as the router writes per event, so that the router's own cost shows
 * apart from what writing its output costs.
 * Child mode (the bare copies run in their own process, like the router):
 *        bench-route --copy-worker ... (bench_copy_worker_main())
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <librdkafka/rdkafka.h>

#include "bench_common.h"
#include "ketenbus/kafka.h"
#include "ketenbus/route.h"
#include "ketenbus/sub.h"
#include "match.h"

#ifndef KB_BIN_DIR
#error "KB_BIN_DIR must name the folder of the ketenbus executable"
#endif

#define PARTITIONS 3

/* ------------------------------------------------------------ (a) matching */

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* The event types of the schema folder and how often each occurs: births,
 * moves and changes to the persoonslijst dominate, as in BRP traffic. */
static const struct {
    const char *type;
    int weight;
} types[] = {
    {"nl.brp.persoon-geboren", 10},          {"nl.brp.persoon-verhuisd", 25},
    {"nl.brp.persoonslijst-gewijzigd", 20},  {"nl.brp.persoon-overleden", 8},
    {"nl.brp.naam-gewijzigd", 4},            {"nl.brp.huwelijk-gesloten", 3},
    {"nl.brp.huwelijk-ontbonden", 2},        {"nl.brp.partnerschap-aangegaan", 1},
    {"nl.brp.partnerschap-ontbonden", 1},    {"nl.brp.kind-toegevoegd", 3},
    {"nl.brp.anummer-gewijzigd", 1},         {"nl.brp.bsn-gewijzigd", 1},
    {"nl.brp.bijhouding-opgeschort", 1},     {"nl.brp.persoonslijst-afgevoerd", 1},
    {"nl.brk.eigendom-overgedragen", 8},     {"nl.brk.kadastraal-object-gemuteerd", 6},
    {"nl.brk.kadastraal-object-vervallen", 1}, {"nl.kinderbijslag.aanvraag-ontvangen", 3},
    {"nl.kinderbijslag.aanvraag-uitgenodigd", 1},
};
#define N_TYPES (sizeof types / sizeof types[0])

static const char *pick_type(void)
{
    int total = 0;
    for (size_t i = 0; i < N_TYPES; i++)
        total += types[i].weight;
    int r = (int)(rnd() % (uint64_t)total);
    for (size_t i = 0; i < N_TYPES; i++)
        if ((r -= types[i].weight) < 0)
            return types[i].type;
    return types[0].type;
}

/* Selective values: a value space that grows with the number of
 * subscriptions (more subscribers means more municipalities, systems and
 * areas being told apart), so that the matches per event stay about the same
 * at every size and the ratio measures the index, not the fan-out. */
static void value_code(uint64_t v, char out[5])
{
    unsigned code = (unsigned)(v % 10000u);
    for (int i = 3; i >= 0; i--, code /= 10)
        out[i] = (char)('0' + code % 10);
    out[4] = 0;
}

/* One system (a municipality's civil-affairs system, a notary's office...)
 * per source value. */
static void value_source(uint64_t v, char *out, size_t cap)
{
    snprintf(out, cap, "urn:nld:oin:00000001%012" PRIu64 "0000:systeem:bzs", 1000 + v);
}

/*
 * n generated subscriptions in one YAML file: 30 % require an exact source,
 * 40 % filter on a payload field value (the municipality of registration),
 * 10 % on a set of three values, 20 % combine an exact source with a payload
 * comparison; one more takes every birth. Each names one or two types drawn
 * like the traffic.
 */
static int write_match_subs(const char *path, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("subscriptions:\n  - name: alle-geboorten\n    purpose: {id: p, legal_basis: \"bench\"}\n"
          "    types: [\"nl.brp.persoon-geboren\"]\n", f);
    for (size_t i = 1; i < n; i++) {
        const char *t1 = pick_type(), *t2 = rnd() % 2 ? pick_type() : NULL;
        if (t2 && !strcmp(t1, t2))
            t2 = NULL;
        fprintf(f, "  - name: s%zu\n    purpose: {id: p%zu, legal_basis: \"bench\"}\n", i, i);
        fprintf(f, "    types: [\"%s\"%s%s%s]\n", t1, t2 ? ", \"" : "", t2 ? t2 : "", t2 ? "\"" : "");
        char src[160], code[5], code2[5], code3[5];
        int kind = (int)(rnd() % 10);
        value_source(rnd() % n, src, sizeof src);
        value_code(rnd() % n, code);
        value_code(rnd() % n, code2);
        value_code(rnd() % n, code3);
        if (kind < 3)
            fprintf(f, "    filter: {exact: {source: \"%s\"}}\n", src);
        else if (kind < 7)
            fprintf(f, "    filter: {field: {path: inschrijving.gemeente, op: \"=\", value: \"%s\"}}\n",
                    code);
        else if (kind < 8)
            fprintf(f, "    filter: {field: {path: inschrijving.gemeente, op: in, values: [\"%s\", \"%s\", \"%s\"]}}\n",
                    code, code2, code3);
        else
            fprintf(f, "    filter: {all: [{exact: {source: \"%s\"}}, {field: {path: kind.geboortedatum, op: \">=\", value: \"2024%02d01\"}}]}\n",
                    src, (int)(rnd() % 12) + 1);
    }
    return fclose(f) ? -1 : 0;
}

/* A payload as the matcher's field callback sees it. */
struct fake_payload {
    char gemeente[5];
    char geboortedatum[9];
};

static int fake_field(void *opaque, const char *path, char *buf, size_t cap)
{
    const struct fake_payload *p = opaque;
    if (!strcmp(path, "inschrijving.gemeente"))
        snprintf(buf, cap, "%s", p->gemeente);
    else if (!strcmp(path, "kind.geboortedatum"))
        snprintf(buf, cap, "%s", p->geboortedatum);
    else
        return 0;
    return 1;
}

#define N_EVENTS 4096

/*
 * One event as it reaches the matcher in the router: the router reads ce_type
 * and ce_source from the Kafka headers into a kb_event_attrs on its stack
 * right before it matches, so the attributes are hot. The pool therefore
 * keeps only what varies (about 80 bytes an event) and each event is copied
 * into one reused kb_event_attrs, as the router's header decoding does; a
 * pool of 4,096 whole kb_event_attrs (1 KB each) would time cache misses on
 * the pool, not on the index. The copy is timed alone too and subtracted.
 */
struct match_event {
    const char *type;
    char source[64];
    struct fake_payload payload;
};

/* What the index of one subscription count needs for timing. */
struct match_set {
    size_t n_subs;
    struct kb_subs subs;
    kb_matcher_t *m;
    struct match_event *evs;
    double best_ns;             /* least ns per event over all slices (matching + copy) */
    double hits_per_event;
};

static void fill_attrs(struct kb_event_attrs *a, const struct match_event *e)
{
    size_t lt = strlen(e->type) + 1, ls = strlen(e->source) + 1;
    memcpy(a->type, e->type, lt);
    memcpy(a->source, e->source, ls);
}

static int match_set_init(struct match_set *s, const char *dir, size_t n_subs)
{
    s->n_subs = n_subs;
    s->evs = calloc(N_EVENTS, sizeof *s->evs);
    if (!s->evs)
        return -1;
    /* Events draw their values from the same spaces as the subscriptions. */
    for (size_t i = 0; i < N_EVENTS; i++) {
        struct match_event *e = &s->evs[i];
        e->type = pick_type();
        value_source(rnd() % n_subs, e->source, sizeof e->source);
        value_code(rnd() % n_subs, e->payload.gemeente);
        snprintf(e->payload.geboortedatum, sizeof e->payload.geboortedatum, "2024%02d%02d",
                 (int)(rnd() % 12) + 1, (int)(rnd() % 28) + 1);
    }
    char path[512], errstr[512];
    snprintf(path, sizeof path, "%s/match-%zu.yaml", dir, n_subs);
    if (write_match_subs(path, n_subs))
        return -1;
    if (kb_subs_load(path, NULL, 0, &s->subs, errstr, sizeof errstr)) {
        fprintf(stderr, "bench-route: %s\n", errstr);
        return -1;
    }
    s->m = kb_matcher_new(&s->subs);
    return s->m ? 0 : -1;
}

static void match_set_fini(struct match_set *s)
{
    kb_matcher_destroy(s->m);
    kb_subs_fini(&s->subs);
    free(s->evs);
}

/* One pass over the pool: ns per event, matching when @p s->m is used,
 * else only the copy into the attributes (the part subtracted). */
static double match_pass(struct match_set *s, int match, int64_t now, uint64_t *hits)
{
    const struct kb_sub *out[256];
    struct kb_event_attrs a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "00000000-0000-5000-8000-000000000001");
    kb_event_time(now, a.time);
    snprintf(a.subject, sizeof a.subject, "%032x", 1u);
    double t0 = bench_now_s();
    for (size_t i = 0; i < N_EVENTS; i++) {
        fill_attrs(&a, &s->evs[i]);
        if (match)
            *hits += kb_matcher_match(s->m, &a, now, fake_field, (void *)&s->evs[i].payload,
                                      out, 256);
        else
            __asm__ volatile("" : : "r"(&a) : "memory"); /* the copy must happen */
    }
    return (bench_now_s() - t0) * 1e9 / N_EVENTS;
}

/*
 * The four subscription counts take turns in short slices until @p seconds
 * per count have passed, and each keeps its least time per event: the
 * machine is shared, and the least time is the one least disturbed, so
 * interference does not land on one count more than another.
 */
static int run_matching(const char *dir, double seconds, double *ratio_10k)
{
    static const size_t counts[] = {10, 100, 1000, 10000};
    enum { N_COUNTS = sizeof counts / sizeof counts[0] };
    struct match_set sets[N_COUNTS];
    memset(sets, 0, sizeof sets);
    int rc = -1;
    for (size_t i = 0; i < N_COUNTS; i++) {
        rng_state = 0x9e3779b97f4a7c15ull + counts[i]; /* same mix for a count, every run */
        if (match_set_init(&sets[i], dir, counts[i]))
            goto out;
    }
    int64_t now = bench_wall_ms();
    double copy_ns = 0;
    uint64_t hits[N_COUNTS] = {0}, passes[N_COUNTS] = {0};
    double t_end = bench_now_s() + seconds * N_COUNTS;
    while (bench_now_s() < t_end) {
        for (size_t i = 0; i < N_COUNTS; i++) {
            double t = bench_now_s() + 0.05; /* a slice: whole passes for 50 ms */
            do {
                double ns = match_pass(&sets[i], 1, now, &hits[i]);
                passes[i]++;
                if (!sets[i].best_ns || ns < sets[i].best_ns)
                    sets[i].best_ns = ns;
                uint64_t dummy = 0;
                double c = match_pass(&sets[i], 0, now, &dummy);
                if (!copy_ns || c < copy_ns)
                    copy_ns = c;
            } while (bench_now_s() < t);
        }
    }
    printf("matching: copying the attributes alone: %.1f ns per event (subtracted)\n", copy_ns);
    double base = 0;
    for (size_t i = 0; i < N_COUNTS; i++) {
        double ns = sets[i].best_ns - copy_ns;
        if (i == 0)
            base = ns;
        printf("matching: subscriptions=%zu ns_per_event=%.0f matches_per_event=%.3f ratio=%.2f\n",
               counts[i], ns, (double)hits[i] / (double)(passes[i] * N_EVENTS), ns / base);
        *ratio_10k = ns / base;
    }
    fflush(stdout);
    rc = 0;
out:
    for (size_t i = 0; i < N_COUNTS; i++)
        match_set_fini(&sets[i]);
    return rc;
}

/* ------------------------------------------------------ (b) on the broker */

static void usage(FILE *f)
{
    fputs("usage: bench-route [--matching] [--count N] [--rate R] [--seconds S]\n"
          "                   [--match-seconds S] [--batch N] [--warmup N] [--rounds N]\n"
          "                   [--process-warmup N] [--compression CODEC]\n"
          "                   [--bootstrap HOST:PORT] [--profile-router]\n"
          "  --matching        only part (a): matching cost in-process, no broker\n"
          "  --count N         events preloaded for each drain (default 50000)\n"
          "  --rate R          events/s offered in the latency phase (default: half the\n"
          "                    slower drain, so both run below capacity)\n"
          "  --seconds S       length of the latency phase (default 10)\n"
          "  --match-seconds S time per subscription count in part (a) (default 3)\n"
          "  --batch N         most events per transaction, router and copy (default the\n"
          "                    router's, " KB_ROUTE_BATCH_MAX_STR ")\n"
          "  --warmup N        events each contestant drains first, untimed (default 20000)\n"
          "  --rounds N        drains per contestant, in ABC CBA order (default 2, at\n"
          "                    most 8; even, so every contestant's mean position is the\n"
          "                    same)\n"
          "  --process-warmup N  events each started contestant drains untimed before\n"
          "                    a drain or the latency phase (default 10000, at least 1)\n"
          "  --compression C   codec of the router's copies and the bare copy's: none,\n"
          "                    gzip, snappy, lz4 or zstd (default " KB_ROUTE_COMPRESSION ")\n"
          "  --bootstrap HP    use this broker instead of starting one\n"
          "  --profile-router  run the router under valgrind --tool=callgrind\n"
          "Environment: BENCH_KAFKA_STATE (default /dev/shm/kb-kafka-bench-route, in memory,\n"
          "or /tmp/... when /dev/shm has less than 8 GiB free).\n",
          f);
}

int main(int argc, char **argv)
{
    if (bench_is_copy_worker(argc, argv))
        return bench_copy_worker_main(argc, argv);
    static const struct option longopts[] = {
        {"matching", no_argument, NULL, 'm'},    {"count", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},  {"seconds", required_argument, NULL, 's'},
        {"match-seconds", required_argument, NULL, 'M'}, {"batch", required_argument, NULL, 'B'},
        {"bootstrap", required_argument, NULL, 'b'}, {"profile-router", no_argument, NULL, 'P'},
        {"warmup", required_argument, NULL, 'W'}, {"rounds", required_argument, NULL, 'R'},
        {"process-warmup", required_argument, NULL, 'p'},
        {"compression", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    struct bench_ctx c = {.count = 50000, .rate = 0, .seconds = 10, .batch = KB_ROUTE_BATCH_MAX,
                         .process_warmup = 10000, .codec = KB_ROUTE_COMPRESSION};
    int matching_only = 0, opt, rounds = 2;
    double match_seconds = 3;
    long warmup = 20000;
    const char *given_bootstrap = NULL;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm': matching_only = 1; break;
        case 'n': c.count = atol(optarg); break;
        case 'r': c.rate = atof(optarg); break;
        case 's': c.seconds = atof(optarg); break;
        case 'M': match_seconds = atof(optarg); break;
        case 'B': c.batch = atoi(optarg); break;
        case 'W': warmup = atol(optarg); break;
        case 'R': rounds = atoi(optarg); break;
        case 'p': c.process_warmup = atol(optarg); break;
        case 'C': c.codec = optarg; break;
        case 'b': given_bootstrap = optarg; break;
        case 'P': c.profiling = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (c.count <= 0 || c.batch <= 0 || c.rate < 0 || warmup < 0 ||
        c.process_warmup < 1 || rounds < 1 || rounds > BENCH_MAX_ROUNDS ||
        kb_kafka_codec_check(c.codec, "--compression", NULL, 0)) {
        usage(stderr);
        return 2;
    }
    if (!matching_only && bench_check_count(&c, "bench-route"))
        return 2;
    snprintf(c.dir, sizeof c.dir, "/tmp/bench-route.XXXXXX");
    if (!mkdtemp(c.dir)) {
        perror("bench-route: mkdtemp");
        return 1;
    }
    char machine[512];
    bench_machine(machine, sizeof machine);
    printf("bench-route: machine: %s; work folder %s\n", machine, c.dir);

    double ratio_10k = 0;
    if (run_matching(c.dir, match_seconds, &ratio_10k)) {
        fprintf(stderr, "bench-route: matching part failed\n");
        return 1;
    }
    if (matching_only) {
        printf("bench-route match_ratio_10k=%.2f\n", ratio_10k);
        return 0;
    }

    char state_buf[512];
    const char *state = bench_broker_state("route", state_buf, sizeof state_buf);
    if (given_bootstrap)
        snprintf(c.bootstrap, sizeof c.bootstrap, "%s", given_bootstrap);
    else if (bench_broker_start(state, c.bootstrap, sizeof c.bootstrap)) {
        fprintf(stderr, "bench-route: the broker did not start (tests/kafka/broker.sh)\n");
        return 1;
    }
    printf("bench-route: broker %s\n", c.bootstrap);
    snprintf(c.key, sizeof c.key, "%s/subject.key", c.dir);
    snprintf(c.subs, sizeof c.subs, "%s/subscriptions.yaml", c.dir);
    int rc = 1;
    if (bench_write_key(c.key) || bench_subs_write_yaml(c.subs)) {
        fprintf(stderr, "bench-route: cannot write into %s\n", c.dir);
        goto out_broker;
    }

    char sbatch[16];
    snprintf(sbatch, sizeof sbatch, "%d", c.batch);
    char self[512];
    bench_self_exe(self, sizeof self);
    /* The bare copy on prefix kbbc, the fan-out copy on kbbf; their topics
     * exist up front. */
    static struct bench_copy copy_b, fan_b;
    if (bench_copy_contestant(&c, self, "kbbc", 0, &copy_b) ||
        bench_copy_contestant(&c, self, "kbbf", 1, &fan_b))
        goto out_broker;

    /* ketenbus route with the 20 subscriptions, on prefix kbbr. */
    char ketenbus[512], schemas[512], cg_out[512];
    snprintf(ketenbus, sizeof ketenbus, "%s/ketenbus", KB_BIN_DIR);
    snprintf(schemas, sizeof schemas, "%s/schemas", KB_SOURCE_DIR);
    snprintf(cg_out, sizeof cg_out, "--callgrind-out-file=%s/callgrind.route", c.dir);
    char *route_argv[] = {ketenbus, "route", "--subscriptions", c.subs, "--subject-key-file", c.key,
                          "--schemas", schemas, "--instance", "bench", "--group", "kbbr-route",
                          "--batch", sbatch, "--compression", (char *)c.codec,
                          "-b", c.bootstrap, NULL};
    char *prof_argv[24] = {"/usr/bin/valgrind", "--tool=callgrind", cg_out, NULL};
    char **argv_r = route_argv;
    if (c.profiling) {
        size_t k = 3;
        for (size_t i = 0; route_argv[i]; i++)
            prof_argv[k++] = route_argv[i];
        prof_argv[k] = NULL;
        argv_r = prof_argv;
    }
    char *route_env[] = {"KETENBUS_TOPIC_PREFIX=kbbr", NULL};
    const char *route_outs[BENCH_N_SUBS];
    char route_names[BENCH_N_SUBS][128];
    for (size_t i = 0; i < BENCH_N_SUBS; i++) {
        snprintf(route_names[i], sizeof route_names[i], "kbbr.out.%s", bench_subs[i].name);
        route_outs[i] = route_names[i];
    }
    struct bench_contestant route_k = {.name = "route",
                                       .prefix = "kbbr",
                                       .group = "kbbr-route",
                                       .argv = argv_r,
                                       .env = route_env,
                                       .outs = route_outs,
                                       .n_outs = BENCH_N_SUBS};

    /* Every drain first; then the two latency phases at one offered rate, half
     * the slower drain unless given, so neither runs past its capacity. */
    struct bench_result copy = {0}, route = {0}, fan = {0};
    const struct bench_contestant *copy_k = &copy_b.k, *fan_k = &fan_b.k;
    /* The fan-out copy takes the ends of each round (ABC CBA), so the copy
     * and the router keep their ABBA order between them. Every contestant
     * gets the warm-up phase (without one the fan-out copy's first drain was
     * its slower one in every run). */
    const struct bench_contestant *ks[] = {fan_k, copy_k, &route_k};
    struct bench_result *rs[] = {&fan, &copy, &route};
    int ok = !bench_warmup_phase(&c, copy_k, warmup) && !bench_warmup_phase(&c, &route_k, warmup) &&
             !bench_warmup_phase(&c, fan_k, warmup) && !bench_drain_rounds(&c, ks, 3, rounds, rs);
    double rate = c.rate > 0 ? c.rate : 0.5 * (copy.drain.eps < route.drain.eps ? copy.drain.eps : route.drain.eps);
    if (ok && c.seconds > 0)
        ok = !bench_latency_phase(&c, copy_k, rate, &copy) &&
             !bench_latency_phase(&c, &route_k, rate, &route);

    int64_t counts[BENCH_N_SUBS], delivered = 0;
    if (!bench_count(c.bootstrap, route_outs, BENCH_N_SUBS, PARTITIONS, counts))
        for (size_t i = 0; i < BENCH_N_SUBS; i++)
            delivered += counts[i];
    long inputs = bench_inputs(&c, warmup, rounds, ok && c.seconds > 0, rate);
    printf("route: delivered %" PRId64 " copies of %ld input events (fan-out %.2f)\n", delivered,
           inputs, (double)delivered / (double)inputs);
    if (c.profiling)
        printf("route: callgrind profile in %s/callgrind.route (callgrind_annotate)\n", c.dir);

    double ratio = copy.drain.eps > 0 ? route.drain.eps / copy.drain.eps : 0;
    double ratio_min = bench_round_ratios(&route, &copy, "bench-route", "route", "copy");
    double ratio_fan = fan.drain.eps > 0 ? route.drain.eps / fan.drain.eps : 0;
    bench_round_ratios(&route, &fan, "bench-route", "route", "fanout-copy");
    printf("bench-route: the fan-out copy writes %.2f messages per event (the router's %.2f "
           "copies and one trail record): %.0f events/s, CPU per event %.0f us and %.0f us in "
           "the broker\n",
           BENCH_FANOUT_MSGS_PER_EVENT, BENCH_FANOUT_MSGS_PER_EVENT - 1, fan.drain.eps,
           fan.drain.cpu_us, fan.drain.broker_cpu_us);
    printf("bench-route: at %.0f events/s: copy p50=%.1f ms p99=%.1f ms; route p50=%.1f ms p999=%.1f ms\n",
           rate, copy.p50, copy.p99, route.p50, route.p999);
    printf(
        "bench-route match_ratio_10k=%.2f route_eps=%.0f copy_eps=%.0f ratio_copy=%.2f p99_ms=%.1f "
        "copy_p99_ms=%.1f rate=%.0f fanout=%.2f route_cpu_us=%.0f copy_cpu_us=%.0f "
        "route_broker_cpu_us=%.0f copy_broker_cpu_us=%.0f rounds=%d ratio_copy_min=%.2f "
        "fanout_copy_eps=%.0f ratio_fanout_copy=%.2f fanout_copy_cpu_us=%.0f "
        "fanout_copy_broker_cpu_us=%.0f compression=%s\n",
        ratio_10k, route.drain.eps, copy.drain.eps, ratio, route.p99, copy.p99, rate,
        (double)delivered / (double)inputs, route.drain.cpu_us, copy.drain.cpu_us,
        route.drain.broker_cpu_us, copy.drain.broker_cpu_us, route.rounds, ratio_min, fan.drain.eps,
        ratio_fan, fan.drain.cpu_us, fan.drain.broker_cpu_us, c.codec);
    rc = ok ? 0 : 1;
out_broker:
    if (!given_bootstrap)
        bench_broker_stop(state);
    return rc;
}
