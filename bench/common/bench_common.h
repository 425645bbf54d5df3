/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_common.h - what the broker benchmarks (bench-route, bench-e2e) share:
 * the 20 benchmark subscriptions (written as ketenbus YAML and as the Kafka
 * Streams peer's spec, from one table, so both route the same way), child
 * processes, the broker from tests/kafka/broker.sh, and the measurements:
 * drain throughput from a consumer group's committed offsets and
 * produce-to-consume latency from the ce_time header of the outputs.
 */
#ifndef KB_BENCH_COMMON_H
#define KB_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ce_source of the events `ketenbus gen` produces. */
#define BENCH_GEN_SOURCE "urn:nld:oin:00000099999999999000:systeem:ketenbus-gen"

/* One benchmark subscription; lists are comma-separated, NULL = none. */
struct bench_sub {
    const char *name;         /* subscriber; topic <prefix>.out.<name> */
    const char *types;        /* event types */
    const char *source;       /* exact ce_source required, or NULL */
    const char *path;         /* payload field filter: path, or NULL */
    const char *op;           /* =, !=, <, <=, >, >=, in, exists */
    const char *values;       /* one value, or the list for `in` */
    const char *fields;       /* projection; NULL = every field */
    const char *pseudonymise; /* fields delivered as keyed pseudonyms */
};

#define BENCH_N_SUBS 20
extern const struct bench_sub bench_subs[BENCH_N_SUBS];

/** Write the 20 subscriptions as one ketenbus YAML file. 0 on success. */
int bench_subs_write_yaml(const char *path);

/** Write them as the Kafka Streams peer's spec: one tab-separated line each
 *  (name, types, source, path, op, values, fields, pseudonymise; "-" = none). */
int bench_subs_write_spec(const char *path);

/** Monotonic and wall clocks. */
double bench_now_s(void);
int64_t bench_wall_ms(void);

/**
 * Start @p argv[0] (a path) with stdout and stderr appended to @p log and the
 * NAME=VALUE strings of @p env (NULL-terminated, may be NULL) added to the
 * environment. Returns the child's pid, or -1.
 */
pid_t bench_spawn(char *const argv[], const char *log, char *const env[]);

/** Wait for @p pid; its exit status (128+signal when killed), -1 on error. */
int bench_wait(pid_t pid);

/** SIGTERM, then SIGKILL after @p grace_s; returns its exit status. */
int bench_stop(pid_t pid, double grace_s);

/**
 * The state folder of a bench's own broker: $BENCH_KAFKA_STATE, else
 * /dev/shm/kb-kafka-bench-<@p name> when /dev/shm has 8 GiB free, else
 * /tmp/kb-kafka-bench-<@p name>. In memory because on the test machines'
 * virtual disk the kernel's writeback of the broker's log, from about a
 * minute into a run, halved the speed of every later drain, so whichever
 * side of a comparison ran late lost. Written into @p buf; returns it.
 */
const char *bench_broker_state(const char *name, char *buf, size_t cap);

/** Start a fresh broker with state folder @p state via tests/kafka/broker.sh;
 *  writes its bootstrap into @p bootstrap. 0 on success. */
int bench_broker_start(const char *state, char *bootstrap, size_t cap);

/** Stop it (errors ignored); a state folder in /dev/shm is removed (it holds memory). */
void bench_broker_stop(const char *state);

/** Write a random 32-byte subject key as hex into @p path. 0 on success. */
int bench_write_key(const char *path);

/**
 * Committed offsets of consumer group @p group on @p topic, summed over its
 * @p partitions partitions (absent commits count 0). -1 on error.
 */
int64_t bench_group_committed(const char *bootstrap, const char *group, const char *topic,
                              int partitions);

/** High watermarks of @p topic summed over @p partitions. -1 on error. */
int64_t bench_topic_end(const char *bootstrap, const char *topic, int partitions);

/* Throughput of one drain: from the first commit that moved past @p from to
 * the commit that reached @p target. */
struct bench_drain {
    double eps;          /* input events per second between those commits */
    double seconds;      /* that interval */
    double events;       /* input events between the first commit and the last */
    double startup_s;    /* from the call until the first commit moved */
    double cpu_us;       /* CPU (user + system) of the contestant per event between those
                          * commits; -1 when unknown */
    double broker_cpu_us; /* the same for the broker of $KB_KAFKA_STATE; -1 when unknown */
    int ok;              /* 1 when @p target was reached in time */
    int timed;           /* 1 when a commit before the one reaching @p target was seen, so
                          * eps, seconds and the CPU figures measure something */
    int exited;          /* 1 when a process of @p alive exited (and was reaped) before that */
};

/**
 * Poll @p group's committed offsets on @p topic every 20 ms until they sum to
 * @p target or @p timeout_s passed; @p alive (0: none) is checked too so a
 * dead contestant ends the wait early (reported in exited only: the pid
 * passed is a copy). The offsets are those of committed transactions, read
 * without waiting for the group to have none pending.
 */
struct bench_drain bench_drain(const char *bootstrap, const char *group, const char *topic,
                               int partitions, int64_t from, int64_t target, double timeout_s,
                               pid_t alive);

/** 1, with a message naming @p name and the option @p count_flag to raise,
 *  when @p d timed nothing (bench_drain.timed); else 0. */
int bench_drain_untimed(const struct bench_drain *d, const char *name, const char *count_flag);

/**
 * bench_drain() for a contestant of @p n processes @p alive (one consumer
 * group): the CPU is their sum, and the first of them to exit ends the wait.
 * A pid it reaped is set to 0 in @p alive, so that no signal reaches another
 * process that may since have got that pid.
 */
struct bench_drain bench_drain_procs(const char *bootstrap, const char *group, const char *topic,
                                     int partitions, int64_t from, int64_t target,
                                     double timeout_s, pid_t *alive, int n);

/* Latency collector: consumes output topics (read_committed) from their
 * current ends and records now - ce_time for every message whose ce_time is
 * at or after a given instant. */
typedef struct bench_lat bench_lat_t;

bench_lat_t *bench_lat_start(const char *bootstrap, const char *const *topics, size_t n,
                             int partitions, int64_t since_ms);

/** Stop collecting; the latencies stay readable until bench_lat_destroy. */
void bench_lat_stop(bench_lat_t *l);

/** Number of latencies recorded. */
size_t bench_lat_count(const bench_lat_t *l);

/** The @p q quantile (0..1) in ms, after bench_lat_stop. */
double bench_lat_quantile(bench_lat_t *l, double q);

void bench_lat_destroy(bench_lat_t *l);

/**
 * Count the committed messages of each of @p n topics (read_committed, from
 * the beginning to the current end) into @p counts. 0 on success.
 */
int bench_count(const char *bootstrap, const char *const *topics, size_t n, int partitions,
                int64_t *counts);

/* What every contestant of a broker benchmark shares. */
struct bench_ctx {
    char dir[256];        /* work folder */
    char bootstrap[128];
    char key[300];        /* subject key file */
    char subs[300];       /* the 20 subscriptions */
    long count;           /* events in the drain phase */
    double rate;          /* events/s in the latency phase; 0 = half the slowest drain */
    double seconds;       /* length of the latency phase */
    int batch;            /* events per transaction (copy and router) */
    long process_warmup;  /* events a started contestant drains untimed before its timed part */
    int profiling;        /* the contestant runs under valgrind: stop it gently */
    const char *codec;    /* compression.type of every contestant's output */
};

#define BENCH_MAX_ROUNDS 8

/* Results for one contestant. */
struct bench_result {
    struct bench_drain drain;   /* over all drains of bench_drain_rounds() */
    double round_eps[BENCH_MAX_ROUNDS]; /* each drain's events/s */
    int rounds;
    double rate;         /* offered in the latency phase */
    double p50, p99, p999;
    size_t lat_n;
};

/** 0 when c->count spans more than one transaction of c->batch events, else
 *  -1 with a message naming @p bench: the drain timer needs a commit before
 *  the last one. */
int bench_check_count(const struct bench_ctx *c, const char *bench);

/** `ketenbus gen` on topic prefix @p prefix: @p count events of seed @p seed,
 *  at @p rate events/s (0 = as fast as possible). Its exit status. */
int bench_run_gen(const struct bench_ctx *c, const char *prefix, long count, long seed,
                  double rate, const char *log);

#define BENCH_MAX_INSTANCES 8

/* One service under test, on its own topic prefix: input <prefix>.in.gba
 * (3 partitions), consumer group @p group, outputs @p outs. It runs as
 * @p instances processes of @p argv in that group (0 counts as 1): the value
 * after the argument @p instance_flag gets "-1", "-2", ... in the second
 * and later ones, so each has its own name (a router's transactional id). */
struct bench_contestant {
    const char *name;
    const char *prefix;
    const char *group;
    char *const *argv;        /* argv[0] is a path */
    char *const *env;         /* extra NAME=VALUE, NULL-terminated, or NULL */
    const char *const *outs;
    size_t n_outs;
    int instances;            /* processes, at most BENCH_MAX_INSTANCES */
    const char *instance_flag; /* e.g. "--instance"; needed when instances > 1 */
};

/**
 * Start the contestant, let it drain @p count events (seed 4), stop it;
 * nothing is timed. A fresh broker compiles its hot paths (the JVM's JIT) in
 * its first tens of seconds, on the cores the contestants need; warming up
 * every contestant first keeps that out of whichever happens to be measured
 * first. 0 when the drain completed.
 */
int bench_warmup_phase(const struct bench_ctx *c, const struct bench_contestant *k, long count);

/**
 * @p rounds drains of each of the @p n contestants @p k (results in @p res),
 * in ABC CBA order: forward in even rounds, backward in odd ones (ABBA for
 * two), so over an even number of rounds every contestant's mean position is
 * the same and a linear drift lands on each alike. Round r (counted from 0)
 * is on seed 1 + 10 r for every contestant. Each drain starts its
 * contestant, lets it drain c->process_warmup events untimed (seed 5 + 10 r)
 * so a JVM has compiled, pauses it (SIGSTOP) while c->count events are
 * preloaded, and times from its first commit after the pause to the commit of
 * the last event. A single drain of a few seconds takes whatever the shared
 * broker is doing at the time (its JIT, GC, a writeback); alternating the
 * order cancels a drift, and the sum of several drains averages the rest.
 * Each result's drain holds the totals: events and seconds summed, eps their
 * quotient, CPU per event weighted by events; round_eps each drain's rate.
 * 0 when every drain completed; a pause of more than 30 s fails the drain
 * (the contestant's group may have dropped it).
 */
int bench_drain_rounds(const struct bench_ctx *c, const struct bench_contestant *const *k, size_t n,
                       int rounds, struct bench_result *const *res);

/**
 * Print one line "@p bench: drains NAME_A eps ... NAME_B eps ... ratios ..."
 * with each round's events/s and the round's ratio a/b; the smallest of
 * those ratios (0 when there is none).
 */
double bench_round_ratios(const struct bench_result *a, const struct bench_result *b,
                          const char *bench, const char *name_a, const char *name_b);

/**
 * Start the contestant again, warm it up with c->process_warmup events (at
 * least 300, seed 3), then offer @p rate events/s for c->seconds (seed 2) and
 * time each output from ce_time to consumption; stop it. 0 when every offered event was committed.
 */
int bench_latency_phase(const struct bench_ctx *c, const struct bench_contestant *k, double rate,
                        struct bench_result *res);

/**
 * Input events each contestant was given: @p warmup (bench_warmup_phase),
 * @p rounds drains of c->count with their process warm-ups and, when
 * @p latency_ran, the latency phase at @p rate with its warm-up.
 */
long bench_inputs(const struct bench_ctx *c, long warmup, int rounds, int latency_ran,
                  double rate);

/* ------------------------------------------------------- the bare copies */

/* The fan-out copy's output topics: <prefix>.out.<subscriber> for each of
 * the 20 benchmark subscriptions, then <prefix>.out.trail in the audit
 * topic's place. */
#define BENCH_FANOUT_TOPICS (BENCH_N_SUBS + 1)

/* Messages the fan-out copy writes per input: the router's 5.85 copies of a
 * benchmark birth event (6 for 17 inputs in 20, else 5) and one trail
 * record. */
#define BENCH_FANOUT_MSGS_PER_EVENT (1 + (17 * 6 + 3 * 5) / 20.0)

/** Topic @p i (0 .. BENCH_FANOUT_TOPICS-1) of the fan-out copy with output
 *  prefix @p prefix ("<p>.out"). */
void bench_fanout_topic_name(const char *prefix, size_t i, char *buf, size_t cap);

/** Create @p topics (3 partitions) when absent; 0, or -1 with a message
 *  naming @p who. */
int bench_ensure_topics(const char *bootstrap, const char *const *topics, size_t n,
                        const char *who);

/**
 * The child mode of a benchmark that runs a bare copy:
 *   BENCH --copy-worker BOOTSTRAP IN OUT GROUP BATCH CODEC [fanout]
 * consumes IN (read_committed) and copies key, value and headers to topic
 * OUT, or with "fanout" to the topics of prefix OUT (as many messages per
 * input as the router writes, BENCH_FANOUT_MSGS_PER_EVENT), committing its
 * offsets in transactions of at most BATCH inputs or 100 ms, with the
 * router's client settings (linger.ms KB_ROUTE_LINGER_MS, codec CODEC).
 * Its exit status; 2, with a message, on bad arguments.
 */
int bench_copy_worker_main(int argc, char **argv);

/** 1 when @p argv asks for that child mode (argv[1] is "--copy-worker"). */
int bench_is_copy_worker(int argc, char **argv);

/** The path of the running executable (what a bench starts its copies as). */
void bench_self_exe(char *buf, size_t cap);

/* A bare copy set up as a contestant (bench_copy_contestant). */
struct bench_copy {
    struct bench_contestant k;
    char in[64], out[64], group[64], self[512], batch[16];
    char names[BENCH_FANOUT_TOPICS][128];
    const char *outs[BENCH_FANOUT_TOPICS];
    char *argv[12];
};

/**
 * A bare copy on topic prefix @p prefix, run as @p self --copy-worker: its
 * input <prefix>.in.gba and outputs (one topic, or the fan-out copy's with
 * @p fanout) are created on c->bootstrap. 0, or -1 with a message.
 */
int bench_copy_contestant(const struct bench_ctx *c, const char *self, const char *prefix,
                          int fanout, struct bench_copy *out);

/** Machine description for the report: CPU model, cores, kernel. */
void bench_machine(char *out, size_t cap);

#endif
