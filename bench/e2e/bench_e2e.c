/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_e2e.c - bench-e2e: `ketenbus route` against a Kafka Streams
 * application doing the same routing (bench/peers/kstreams: the same 20
 * subscriptions as filters and projections, Avro generic records,
 * exactly_once_v2), side by side in one run on one broker, on identical
 * input: drain throughput (events/s) and produce-to-consume latency at a
 * fixed offered rate (p50/p99/p999). Afterwards the outputs of both are
 * counted per subscriber and must agree. A third contestant, the fan-out
 * copy (bench_copy.c), writes each input as many times as the router writes
 * per event with no routing at all: what any router producing those messages
 * through librdkafka could reach against Kafka Streams on this machine.
 *
 * Input: birth events from `ketenbus gen` on <prefix>.in.gba, i.e. what
 * ketenbus-gba produces from Lg01 messages; the adapter itself is not in
 * the measured path (see bench/README.md: its spool ingest fsyncs every
 * file, so it would measure the disk, and the Kafka Streams side could not
 * read LO3 anyway). The summary line says input=gen.
 *
 * Usage: bench-e2e [--count N] [--rate R] [--seconds S] [--threads N]
 *                  [--instances N] [--warmup N] [--rounds N] [--process-warmup N]
 *                  [--batch N]
 *                  [--bootstrap HOST:PORT]
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_common.h"
#include "ketenbus/kafka.h"
#include "ketenbus/route.h"

#ifndef KB_BIN_DIR
#error "KB_BIN_DIR must name the folder of the ketenbus executable"
#endif

#define PARTITIONS 3

static void usage(FILE *f)
{
    fputs("usage: bench-e2e [--count N] [--rate R] [--seconds S] [--threads N]\n"
          "                 [--instances N] [--warmup N] [--rounds N] [--process-warmup N]\n"
          "                 [--batch N] [--compression CODEC]\n"
          "                 [--bootstrap HOST:PORT]\n"
          "  --count N      events preloaded for each drain (default 50000)\n"
          "  --rate R       events/s offered in the latency phase (default: half the\n"
          "                 slower drain, so both run below capacity)\n"
          "  --seconds S    length of the latency phase (default 10)\n"
          "  --instances N  `ketenbus route` processes in one group (default 1, at most 3:\n"
          "                 one per input partition)\n"
          "  --threads N    Kafka Streams stream threads (default: as many as router\n"
          "                 instances)\n"
          "  --warmup N     events each contestant drains first, untimed, so the broker\n"
          "                 has compiled its hot paths (default 50000)\n"
          "  --rounds N     drains per contestant, in ABC CBA order (default 2, at most\n"
          "                 8; even, so every contestant's mean position is the same)\n"
          "  --process-warmup N  events each started contestant drains untimed before\n"
          "                 a drain or the latency phase (default 10000, at least 1)\n"
          "  --batch N      most events in one router transaction (default the\n"
          "                 router's, " KB_ROUTE_BATCH_MAX_STR ")\n"
          "  --compression C  codec of both contestants' output batches: none, gzip,\n"
          "                 snappy, lz4 or zstd (default " KB_ROUTE_COMPRESSION ")\n"
          "  --bootstrap HP use this broker instead of starting one\n"
          "Environment: BENCH_KAFKA_STATE (default /dev/shm/kb-kafka-bench-e2e, in memory,\n"
          "or /tmp/... when /dev/shm has less than 8 GiB free), KB_CACHE_DIR\n"
          "(Kafka Streams jars, default /var/cache/ketenbus).\n",
          f);
}

int main(int argc, char **argv)
{
    if (bench_is_copy_worker(argc, argv))
        return bench_copy_worker_main(argc, argv);
    static const struct option longopts[] = {
        {"count", required_argument, NULL, 'n'},   {"rate", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'}, {"threads", required_argument, NULL, 't'},
        {"bootstrap", required_argument, NULL, 'b'}, {"help", no_argument, NULL, 'h'},
        {"warmup", required_argument, NULL, 'W'}, {"batch", required_argument, NULL, 'B'},
        {"rounds", required_argument, NULL, 'R'}, {"instances", required_argument, NULL, 'i'},
        {"process-warmup", required_argument, NULL, 'p'},
        {"compression", required_argument, NULL, 'C'}, {NULL, 0, NULL, 0}};
    struct bench_ctx c = {.count = 50000, .rate = 0, .seconds = 10, .batch = KB_ROUTE_BATCH_MAX,
                         .process_warmup = 10000, .codec = KB_ROUTE_COMPRESSION};
    const char *given_bootstrap = NULL, *threads = NULL;
    long warmup = 50000;
    int opt, rounds = 2, instances = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': c.count = atol(optarg); break;
        case 'r': c.rate = atof(optarg); break;
        case 's': c.seconds = atof(optarg); break;
        case 't': threads = optarg; break;
        case 'W': warmup = atol(optarg); break;
        case 'B': c.batch = atoi(optarg); break;
        case 'R': rounds = atoi(optarg); break;
        case 'i': instances = atoi(optarg); break;
        case 'p': c.process_warmup = atol(optarg); break;
        case 'C': c.codec = optarg; break;
        case 'b': given_bootstrap = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    /* equal parallelism unless asked otherwise: a stream thread per router */
    char threads_buf[16];
    if (!threads) {
        snprintf(threads_buf, sizeof threads_buf, "%d", instances);
        threads = threads_buf;
    }
    if (c.count <= 0 || c.rate < 0 || atoi(threads) <= 0 || warmup < 0 || instances < 1 ||
        instances > PARTITIONS ||
        c.process_warmup < 1 || c.batch <= 0 || rounds < 1 || rounds > BENCH_MAX_ROUNDS ||
        kb_kafka_codec_check(c.codec, "--compression", NULL, 0)) {
        usage(stderr);
        return 2;
    }
    if (bench_check_count(&c, "bench-e2e"))
        return 2;
    snprintf(c.dir, sizeof c.dir, "/tmp/bench-e2e.XXXXXX");
    if (!mkdtemp(c.dir)) {
        perror("bench-e2e: mkdtemp");
        return 1;
    }
    char machine[512];
    bench_machine(machine, sizeof machine);
    printf("bench-e2e: machine: %s; work folder %s\n", machine, c.dir);

    /* The peer's jars and classes first, so no contestant's time includes Maven. */
    char runsh[512], fetch_log[512];
    snprintf(runsh, sizeof runsh, "%s/bench/peers/kstreams/run.sh", KB_SOURCE_DIR);
    snprintf(fetch_log, sizeof fetch_log, "%s/kstreams-fetch.log", c.dir);
    {
        char *argv_f[] = {runsh, "fetch", NULL};
        pid_t pid = bench_spawn(argv_f, fetch_log, NULL);
        if (pid <= 0 || bench_wait(pid)) {
            fprintf(stderr, "bench-e2e: the Kafka Streams peer could not be prepared (log %s)\n",
                    fetch_log);
            return 1;
        }
    }

    char state_buf[512];
    const char *state = bench_broker_state("e2e", state_buf, sizeof state_buf);
    if (given_bootstrap)
        snprintf(c.bootstrap, sizeof c.bootstrap, "%s", given_bootstrap);
    else if (bench_broker_start(state, c.bootstrap, sizeof c.bootstrap)) {
        fprintf(stderr, "bench-e2e: the broker did not start (tests/kafka/broker.sh)\n");
        return 1;
    }
    printf("bench-e2e: broker %s\n", c.bootstrap);
    int rc = 1;
    char spec[300];
    snprintf(c.key, sizeof c.key, "%s/subject.key", c.dir);
    snprintf(c.subs, sizeof c.subs, "%s/subscriptions.yaml", c.dir);
    snprintf(spec, sizeof spec, "%s/subscriptions.tsv", c.dir);
    if (bench_write_key(c.key) || bench_subs_write_yaml(c.subs) || bench_subs_write_spec(spec)) {
        fprintf(stderr, "bench-e2e: cannot write into %s\n", c.dir);
        goto out_broker;
    }
    char sbatch[16];
    snprintf(sbatch, sizeof sbatch, "%d", c.batch);

    /* Output topic names of both contestants. */
    const char *kb_outs[BENCH_N_SUBS], *ks_outs[BENCH_N_SUBS + 1];
    static char kb_names[BENCH_N_SUBS][128], ks_names[BENCH_N_SUBS + 1][128];
    for (size_t i = 0; i < BENCH_N_SUBS; i++) {
        snprintf(kb_names[i], sizeof kb_names[i], "kbek.out.%s", bench_subs[i].name);
        snprintf(ks_names[i], sizeof ks_names[i], "kbks.out.%s", bench_subs[i].name);
        kb_outs[i] = kb_names[i];
        ks_outs[i] = ks_names[i];
    }
    snprintf(ks_names[BENCH_N_SUBS], sizeof ks_names[0], "kbks.in.gba");
    ks_outs[BENCH_N_SUBS] = ks_names[BENCH_N_SUBS];
    /* Kafka Streams needs its source and sink topics to exist; the router makes its own. */
    if (bench_ensure_topics(c.bootstrap, ks_outs, BENCH_N_SUBS + 1, "bench-e2e"))
        goto out_broker;

    /* ketenbus route, prefix kbek. */
    char ketenbus[512], schemas[512];
    snprintf(ketenbus, sizeof ketenbus, "%s/ketenbus", KB_BIN_DIR);
    snprintf(schemas, sizeof schemas, "%s/schemas", KB_SOURCE_DIR);
    char *route_argv[] = {ketenbus, "route", "--subscriptions", c.subs, "--subject-key-file", c.key,
                          "--schemas", schemas, "--instance", "bench", "--group", "kbek-route",
                          "--batch", sbatch, "--compression", (char *)c.codec,
                          "-b", c.bootstrap, NULL};
    char *route_env[] = {"KETENBUS_TOPIC_PREFIX=kbek", NULL};
    struct bench_contestant kb_k = {.name = "ketenbus",
                                    .prefix = "kbek",
                                    .group = "kbek-route",
                                    .argv = route_argv,
                                    .env = route_env,
                                    .outs = kb_outs,
                                    .n_outs = BENCH_N_SUBS,
                                    .instances = instances,
                                    .instance_flag = "--instance"};

    /* Kafka Streams, prefix kbks; its group is its application.id. */
    char state_dir[300];
    snprintf(state_dir, sizeof state_dir, "%s/kstreams-state", c.dir);
    char *ks_argv[] = {runsh, "--bootstrap", c.bootstrap, "--input", "kbks.in.gba",
                       "--out-prefix", "kbks.out.", "--app-id", "kbks-route", "--spec", spec,
                       "--schemas", schemas, "--subject-key-file", c.key, "--threads",
                       (char *)threads, "--state-dir", state_dir, "--compression",
                       (char *)c.codec, NULL};
    struct bench_contestant ks_k = {.name = "kstreams",
                                    .prefix = "kbks",
                                    .group = "kbks-route",
                                    .argv = ks_argv,
                                    .outs = ks_outs,
                                    .n_outs = BENCH_N_SUBS};

    /* The fan-out copy, prefix kbef (one process, whatever --instances). */
    char self[512];
    bench_self_exe(self, sizeof self);
    static struct bench_copy fan_b;
    if (bench_copy_contestant(&c, self, "kbef", 1, &fan_b))
        goto out_broker;

    /* Every drain first: the fan-out copy, ketenbus, Kafka Streams, and back
     * (ketenbus and Kafka Streams keep the ABBA order between them, the copy
     * takes the ends); then both latency phases at one offered rate, half
     * the slower drain unless given, so neither runs past its capacity.
     * Every contestant gets the warm-up phase: without one the copy's first
     * drain was its slower one in every run (its 63 partitions new to the
     * broker). */
    struct bench_result kb = {0}, ks = {0}, fan = {0};
    const struct bench_contestant *all[] = {&fan_b.k, &kb_k, &ks_k};
    struct bench_result *res[] = {&fan, &kb, &ks};
    int ok = !bench_warmup_phase(&c, &kb_k, warmup) && !bench_warmup_phase(&c, &ks_k, warmup) &&
             !bench_warmup_phase(&c, &fan_b.k, warmup) &&
             !bench_drain_rounds(&c, all, 3, rounds, res);
    double rate = c.rate > 0 ? c.rate : 0.5 * (kb.drain.eps < ks.drain.eps ? kb.drain.eps : ks.drain.eps);
    if (ok && c.seconds > 0)
        ok = !bench_latency_phase(&c, &kb_k, rate, &kb) && !bench_latency_phase(&c, &ks_k, rate, &ks);

    /* Same routing: per subscriber, the same number of copies. */
    int64_t kb_counts[BENCH_N_SUBS], ks_counts[BENCH_N_SUBS], kb_total = 0, ks_total = 0;
    int same = 0;
    if (!bench_count(c.bootstrap, kb_outs, BENCH_N_SUBS, PARTITIONS, kb_counts) &&
        !bench_count(c.bootstrap, ks_outs, BENCH_N_SUBS, PARTITIONS, ks_counts)) {
        same = 1;
        for (size_t i = 0; i < BENCH_N_SUBS; i++) {
            kb_total += kb_counts[i];
            ks_total += ks_counts[i];
            if (kb_counts[i] != ks_counts[i]) {
                same = 0;
                printf("bench-e2e: MISMATCH %s: ketenbus %" PRId64 " kstreams %" PRId64 "\n",
                       bench_subs[i].name, kb_counts[i], ks_counts[i]);
            }
        }
    }
    long inputs = bench_inputs(&c, warmup, rounds, ok && c.seconds > 0, rate);
    printf("bench-e2e: delivered ketenbus=%" PRId64 " kstreams=%" PRId64
           " copies of %ld input events each (fan-out %.2f), per-subscriber counts %s\n",
           kb_total, ks_total, inputs, (double)kb_total / (double)inputs, same ? "equal" : "DIFFER");
    printf("bench-e2e: ketenbus p50=%.1f p999=%.1f ms; kstreams p50=%.1f p999=%.1f ms at %.0f events/s\n",
           kb.p50, kb.p999, ks.p50, ks.p999, rate);
    double ratio = ks.drain.eps > 0 ? kb.drain.eps / ks.drain.eps : 0;
    double ratio_min = bench_round_ratios(&kb, &ks, "bench-e2e", "ketenbus", "kstreams");
    double fan_ratio = ks.drain.eps > 0 ? fan.drain.eps / ks.drain.eps : 0;
    bench_round_ratios(&fan, &ks, "bench-e2e", "fanout-copy", "kstreams");
    printf("bench-e2e: the fan-out copy (%.2f messages per event, no routing) drained %.0f "
           "events/s, %.2fx Kafka Streams; CPU per event %.0f us, %.0f us in the broker\n",
           BENCH_FANOUT_MSGS_PER_EVENT, fan.drain.eps, fan_ratio, fan.drain.cpu_us,
           fan.drain.broker_cpu_us);
    printf(
        "bench-e2e ketenbus_eps=%.0f kstreams_eps=%.0f ratio=%.2f p99_ms=%.1f kstreams_p99_ms=%.1f "
        "p50_ms=%.1f kstreams_p50_ms=%.1f p999_ms=%.1f kstreams_p999_ms=%.1f rate=%.0f "
        "same_output=%s input=gen ketenbus_cpu_us=%.0f kstreams_cpu_us=%.0f "
        "ketenbus_broker_cpu_us=%.0f kstreams_broker_cpu_us=%.0f rounds=%d ratio_min=%.2f "
        "instances=%d kstreams_threads=%s fanout_copy_eps=%.0f fanout_copy_ratio=%.2f "
        "fanout_copy_cpu_us=%.0f fanout_copy_broker_cpu_us=%.0f compression=%s\n",
        kb.drain.eps, ks.drain.eps, ratio, kb.p99, ks.p99, kb.p50, ks.p50, kb.p999, ks.p999, rate,
        same ? "yes" : "no", kb.drain.cpu_us, ks.drain.cpu_us, kb.drain.broker_cpu_us,
        ks.drain.broker_cpu_us, kb.rounds, ratio_min, instances, threads, fan.drain.eps, fan_ratio,
        fan.drain.cpu_us, fan.drain.broker_cpu_us, c.codec);
    rc = ok && same ? 0 : 1;
out_broker:
    if (!given_bootstrap)
        bench_broker_stop(state);
    return rc;
}
