/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_common.c - shared parts of the broker benchmarks (see bench_common.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <librdkafka/rdkafka.h>

#include "bench_common.h"
#include "ketenbus/sub.h"

#ifndef KB_BIN_DIR
#error "KB_BIN_DIR must name the folder of the ketenbus executable"
#endif

#define PARTITIONS 3

#ifndef KB_SOURCE_DIR
#error "KB_SOURCE_DIR must name the source tree"
#endif

#define BIRTH "nl.brp.persoon-geboren"

/*
 * The benchmark's subscribers: the parties that receive a birth in a real
 * chain (SVB, CBS, the municipality of registration, GGD/JGZ regions, IND,
 * RIVM, DUO, health insurers, research), a few with exact-source filters,
 * most with payload field filters, projections and pseudonyms, plus
 * subscriptions to other types and sources that never match these events
 * but still sit in the index. Fan-out per birth event is about 5.9.
 */
const struct bench_sub bench_subs[BENCH_N_SUBS] = {
    {"svb-kinderbijslag", BIRTH, NULL, NULL, NULL, NULL, "kind,ouders,inschrijving", NULL},
    {"cbs-geboortestatistiek", BIRTH, NULL, NULL, NULL, NULL,
     "kind.bsn,kind.geboortedatum,kind.geslacht,kind.geboorteland,inschrijving.gemeente", "kind.bsn"},
    {"gemeente-utrecht", BIRTH, NULL, "inschrijving.gemeente", "=", "0344", "kind,ouders,inschrijving", NULL},
    {"gemeente-amsterdam", BIRTH, NULL, "inschrijving.gemeente", "=", "0363", "kind,ouders,inschrijving", NULL},
    {"gemeente-rotterdam", BIRTH, NULL, "inschrijving.gemeente", "=", "0599", "kind,ouders,inschrijving", NULL},
    {"gemeente-den-haag", BIRTH, NULL, "inschrijving.gemeente", "=", "0518", "kind,ouders,inschrijving", NULL},
    {"ggd-regio-midden", BIRTH, NULL, "inschrijving.gemeente", "in", "0344,0599", "kind,inschrijving", NULL},
    {"jgz-randstad-noord", BIRTH, NULL, "inschrijving.gemeente", "in", "0363,0518", "kind,ouders,inschrijving", "kind.bsn"},
    {"ind-geboren-buitenland", BIRTH, BENCH_GEN_SOURCE, "kind.geboorteland", "!=", "6030",
     "kind,herkomst.berichtType", NULL},
    {"rivm-vaccinatie", BIRTH, NULL, NULL, NULL, NULL, "kind.bsn,kind.geboortedatum,inschrijving.gemeente", NULL},
    {"duo-leerplicht", BIRTH, NULL, "kind.geboortedatum", ">=", "20241101",
     "kind.bsn,kind.geboortedatum,inschrijving", NULL},
    {"zorgverzekeraar-meisjes", BIRTH, BENCH_GEN_SOURCE, "kind.geslacht", "=", "V",
     "kind,inschrijving.gemeente", "kind.bsn"},
    {"onderzoek-steekproef", BIRTH, BENCH_GEN_SOURCE, "kind.geboortedatum", "<", "20240201",
     "kind.bsn,kind.geboortedatum", "kind.bsn"},
    {"toeslagen-brpv", BIRTH, "urn:nld:oin:00000001003214345000:systeem:brp-verstrekkingen", NULL,
     NULL, NULL, "kind.bsn,ouders", NULL},
    {"gemeente-groningen", BIRTH, NULL, "inschrijving.gemeente", "=", "0014", "kind,ouders,inschrijving", NULL},
    {"anummer-beheer", BIRTH, NULL, "kind.aNummer", "exists", NULL, "kind.aNummer,inschrijving", NULL},
    {"pensioenfonds-overlijden", "nl.brp.persoon-overleden", NULL, NULL, NULL, NULL, NULL, NULL},
    {"gemeenten-verhuizing", "nl.brp.persoon-verhuisd", NULL, NULL, NULL, NULL, NULL, NULL},
    {"burgerzaken-huwelijk", "nl.brp.huwelijk-gesloten,nl.brp.partnerschap-aangegaan", NULL, NULL,
     NULL, NULL, NULL, NULL},
    {"svb-aanvragen", "nl.kinderbijslag.aanvraag-ontvangen", NULL, NULL, NULL, NULL, NULL, NULL},
};

/* Print a comma list as a YAML flow sequence of quoted strings. */
static void yaml_list(FILE *f, const char *list)
{
    fputc('[', f);
    const char *p = list;
    for (int first = 1; *p; first = 0) {
        size_t n = strcspn(p, ",");
        fprintf(f, "%s\"%.*s\"", first ? "" : ", ", (int)n, p);
        p += n;
        if (*p == ',')
            p++;
    }
    fputc(']', f);
}

int bench_subs_write_yaml(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("# Written by the ketenbus benchmarks (bench/common/bench_common.c).\nsubscriptions:\n", f);
    for (size_t i = 0; i < BENCH_N_SUBS; i++) {
        const struct bench_sub *s = &bench_subs[i];
        fprintf(f, "  - name: %s\n    purpose: {id: bench-%zu, legal_basis: \"benchmark\"}\n    types: ",
                s->name, i);
        yaml_list(f, s->types);
        fputc('\n', f);
        char field[512] = "";
        if (s->path) {
            if (!strcmp(s->op, "in")) {
                char vals[256];
                FILE *m = fmemopen(vals, sizeof vals, "w");
                yaml_list(m, s->values);
                fclose(m);
                snprintf(field, sizeof field, "{field: {path: %s, op: in, values: %s}}", s->path, vals);
            } else if (!strcmp(s->op, "exists"))
                snprintf(field, sizeof field, "{field: {path: %s, op: exists}}", s->path);
            else
                snprintf(field, sizeof field, "{field: {path: %s, op: \"%s\", value: \"%s\"}}",
                         s->path, s->op, s->values);
        }
        if (s->source && s->path)
            fprintf(f, "    filter: {all: [{exact: {source: \"%s\"}}, %s]}\n", s->source, field);
        else if (s->source)
            fprintf(f, "    filter: {exact: {source: \"%s\"}}\n", s->source);
        else if (s->path)
            fprintf(f, "    filter: %s\n", field);
        if (s->fields) {
            fputs("    fields: ", f);
            yaml_list(f, s->fields);
            fputc('\n', f);
        }
        if (s->pseudonymise) {
            fputs("    pseudonymise: ", f);
            yaml_list(f, s->pseudonymise);
            fputc('\n', f);
        }
    }
    return fclose(f) ? -1 : 0;
}

int bench_subs_write_spec(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
#define OR_DASH(x) ((x) ? (x) : "-")
    for (size_t i = 0; i < BENCH_N_SUBS; i++) {
        const struct bench_sub *s = &bench_subs[i];
        fprintf(f, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s->name, s->types, OR_DASH(s->source),
                OR_DASH(s->path), OR_DASH(s->op), OR_DASH(s->values), OR_DASH(s->fields),
                OR_DASH(s->pseudonymise));
    }
#undef OR_DASH
    return fclose(f) ? -1 : 0;
}

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t bench_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pid_t bench_spawn(char *const argv[], const char *log, char *const env[])
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        dup2(null, 0);
        close(null);
    }
    for (size_t i = 0; env && env[i]; i++)
        putenv(env[i]);
    execv(argv[0], argv);
    fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int bench_wait(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int bench_stop(pid_t pid, double grace_s)
{
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    double deadline = bench_now_s() + grace_s;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -1;
        if (bench_now_s() > deadline) {
            kill(pid, SIGKILL);
            return bench_wait(pid);
        }
        usleep(20000);
    }
}

const char *bench_broker_state(const char *name, char *buf, size_t cap)
{
    const char *env = getenv("BENCH_KAFKA_STATE");
    struct statvfs vs;
    if (env && *env)
        snprintf(buf, cap, "%s", env);
    else if (statvfs("/dev/shm", &vs) == 0 && access("/dev/shm", W_OK) == 0 &&
             (unsigned long long)vs.f_bavail * vs.f_frsize >= (8ull << 30))
        snprintf(buf, cap, "/dev/shm/kb-kafka-bench-%s", name);
    else
        snprintf(buf, cap, "/tmp/kb-kafka-bench-%s", name);
    return buf;
}

int bench_broker_start(const char *state, char *bootstrap, size_t cap)
{
    setenv("KB_KAFKA_STATE", state, 1);
    /* The JVM settings Apache Kafka's documentation gives as typical for a
     * production broker (Operations, Java Version), where the machine has
     * room for the 6 GB heap; tests/kafka/broker.sh's own default is a
     * small heap for tests. With 1 MB G1 regions (any heap below 4 GB) a
     * produce request of half a megabyte or more is a humongous object,
     * and the broker's GC work per event doubled from one drain to the
     * next. KB_KAFKA_HEAP and KB_KAFKA_JAVA_OPTS, each when set, replace
     * their own part. A "16 GB" machine reports about 15.5 GiB. */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (double)pages * (double)page >= 15.0 * (1 << 30)) {
        setenv("KB_KAFKA_HEAP", "-Xms6g -Xmx6g", 0);
        setenv("KB_KAFKA_JAVA_OPTS",
               "-XX:MetaspaceSize=96m -XX:InitiatingHeapOccupancyPercent=35 "
               "-XX:G1HeapRegionSize=16M -XX:MinMetaspaceFreeRatio=50 "
               "-XX:MaxMetaspaceFreeRatio=80 -XX:+ExplicitGCInvokesConcurrent",
               0);
    }
    const char *heap = getenv("KB_KAFKA_HEAP"), *opts = getenv("KB_KAFKA_JAVA_OPTS");
    printf("bench: broker JVM options: %s %s\n", heap ? heap : "(broker.sh default heap)",
           opts ? opts : "");
    fflush(stdout);
    FILE *p = popen(KB_SOURCE_DIR "/tests/kafka/broker.sh start", "r");
    if (!p)
        return -1;
    char line[256] = "";
    bootstrap[0] = 0;
    while (fgets(line, sizeof line, p))
        if (!strncmp(line, "127.0.0.1:", 10)) {
            line[strcspn(line, "\r\n")] = 0;
            snprintf(bootstrap, cap, "%s", line);
        }
    int rc = pclose(p);
    return rc == 0 && bootstrap[0] ? 0 : -1;
}

void bench_broker_stop(const char *state)
{
    setenv("KB_KAFKA_STATE", state, 1);
    if (system(KB_SOURCE_DIR "/tests/kafka/broker.sh stop 2>/dev/null") != 0)
        fprintf(stderr, "bench: broker stop reported an error\n");
    /* Only a folder of our own naming: a path from the environment could
     * be anything, and quoting it for the shell is not worth the risk. */
    if (!strncmp(state, "/dev/shm/kb-kafka-bench-", 24) && !strchr(state, '\'') &&
        !strstr(state, "..")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.lock'", state, state);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: could not remove %s\n", state);
    }
}

int bench_write_key(const char *path)
{
    unsigned char key[32];
    FILE *r = fopen("/dev/urandom", "rb");
    if (!r || fread(key, 1, sizeof key, r) != sizeof key) {
        if (r)
            fclose(r);
        return -1;
    }
    fclose(r);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < sizeof key; i++)
        fprintf(f, "%02x", key[i]);
    fputc('\n', f);
    return fclose(f) ? -1 : 0;
}

/* A client for offset and watermark queries; group may be NULL. */
static rd_kafka_t *client_new(const char *bootstrap, const char *group, int consumer)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    if (group)
        rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    if (consumer) {
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", NULL, 0);
    } else {
        /* Committed offsets as they are, now: read_committed (the default)
         * makes librdkafka ask for stable offsets only; the broker answers
         * "unstable" for every asked partition with transactional offsets
         * still pending, and librdkafka asks again until none is. A router
         * commits back to back, so a drain timed that way saw its first
         * commit late or not at all. Offsets of transactions not yet
         * committed are not returned either way. (The watermarks this
         * client reads are the input topics', which no transaction writes:
         * their high watermark is their last stable offset.) */
        rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", NULL, 0);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "bench: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static int64_t committed_sum(rd_kafka_t *rk, const char *topic, int partitions)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    int64_t sum = -1;
    if (rd_kafka_committed(rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        sum = 0;
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].offset > 0)
                sum += l->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return sum;
}

int64_t bench_group_committed(const char *bootstrap, const char *group, const char *topic,
                              int partitions)
{
    rd_kafka_t *rk = client_new(bootstrap, group, 0);
    if (!rk)
        return -1;
    int64_t sum = committed_sum(rk, topic, partitions);
    rd_kafka_destroy(rk);
    return sum;
}

static int64_t end_sum(rd_kafka_t *rk, const char *topic, int partitions)
{
    int64_t sum = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000))
            return -1;
        sum += hi;
    }
    return sum;
}

int64_t bench_topic_end(const char *bootstrap, const char *topic, int partitions)
{
    rd_kafka_t *rk = client_new(bootstrap, NULL, 0);
    if (!rk)
        return -1;
    int64_t sum = end_sum(rk, topic, partitions);
    rd_kafka_destroy(rk);
    return sum;
}

/* CPU seconds (user + system, all threads) of process @p pid so far; -1 when
 * unknown. */
static double bench_proc_cpu_s(pid_t pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the command name, which is in parentheses and may hold
     * spaces: state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The broker's pid from its state folder (tests/kafka/broker.sh), or 0. */
static pid_t bench_broker_pid(const char *state)
{
    if (!state)
        return 0;
    char path[512];
    snprintf(path, sizeof path, "%s/broker.pid", state);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

/* CPU seconds of the @p n processes @p pids together (0 entries skipped);
 * -1 when one is unknown. */
static double procs_cpu_s(const pid_t *pids, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++) {
        if (pids[i] <= 0)
            continue;
        double s = bench_proc_cpu_s(pids[i]);
        if (s < 0)
            return -1;
        sum += s;
    }
    return n > 0 ? sum : -1;
}

struct bench_drain bench_drain_procs(const char *bootstrap, const char *group, const char *topic,
                                     int partitions, int64_t from, int64_t target,
                                     double timeout_s, pid_t *alive, int n_alive)
{
    struct bench_drain d = {0};
    rd_kafka_t *rk = client_new(bootstrap, group, 0);
    if (!rk)
        return d;
    double t_call = bench_now_s(), t_first = 0, cpu_first = -1, bcpu_first = -1;
    int64_t c_first = from;
    pid_t broker = bench_broker_pid(getenv("KB_KAFKA_STATE"));
    for (;;) {
        int64_t c = committed_sum(rk, topic, partitions);
        double t = bench_now_s();
        if (c > from && !t_first) {
            t_first = t;
            c_first = c;
            d.startup_s = t - t_call;
            cpu_first = procs_cpu_s(alive, n_alive);
            bcpu_first = bench_proc_cpu_s(broker);
        }
        if (c >= target) {
            d.ok = 1;
            d.timed = t > t_first; /* else the first commit seen covered it all */
            d.seconds = t - t_first;
            d.events = (double)(target - c_first);
            d.eps = d.seconds > 0 ? d.events / d.seconds : 0;
            double n = d.events, cpu = procs_cpu_s(alive, n_alive),
                   bcpu = bench_proc_cpu_s(broker);
            d.cpu_us = n > 0 && cpu_first >= 0 && cpu >= 0 ? (cpu - cpu_first) / n * 1e6 : -1;
            d.broker_cpu_us =
                n > 0 && bcpu_first >= 0 && bcpu >= 0 ? (bcpu - bcpu_first) / n * 1e6 : -1;
            break;
        }
        if (t - t_call > timeout_s)
            break;
        for (int i = 0; i < n_alive && !d.exited; i++)
            if (alive[i] > 0 && waitpid(alive[i], NULL, WNOHANG) == alive[i]) {
                fprintf(stderr, "bench: the contestant (pid %d) exited early\n", (int)alive[i]);
                alive[i] = 0;
                d.exited = 1;
            }
        if (d.exited)
            break;
        usleep(20000);
    }
    rd_kafka_destroy(rk);
    return d;
}

int bench_drain_untimed(const struct bench_drain *d, const char *name, const char *count_flag)
{
    if (d->timed)
        return 0;
    fprintf(stderr,
            "bench: %s: the first commit seen already covered the whole drain, so nothing was "
            "timed; use a larger %s\n",
            name, count_flag);
    return 1;
}

struct bench_drain bench_drain(const char *bootstrap, const char *group, const char *topic,
                               int partitions, int64_t from, int64_t target, double timeout_s,
                               pid_t alive)
{
    return bench_drain_procs(bootstrap, group, topic, partitions, from, target, timeout_s, &alive,
                             alive > 0);
}

struct bench_lat {
    rd_kafka_t *rk;
    int64_t since_ms;
    pthread_t thread;
    atomic_int stop;
    double *ms;         /* recorded latencies */
    size_t n, cap;
    int sorted;
};

static void *lat_main(void *arg)
{
    bench_lat_t *l = arg;
    while (!atomic_load(&l->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(l->rk, 50);
        if (!m)
            continue;
        int64_t now = bench_wall_ms();
        const void *v;
        size_t len;
        rd_kafka_headers_t *h;
        if (!m->err && !rd_kafka_message_headers(m, &h) &&
            !rd_kafka_header_get_last(h, "ce_time", &v, &len) && len < 64) {
            char buf[64];
            memcpy(buf, v, len);
            buf[len] = 0;
            int64_t t;
            if (!kb_parse_time(buf, &t) && t >= l->since_ms) {
                if (l->n == l->cap) {
                    size_t ncap = l->cap ? l->cap * 2 : 65536;
                    double *nb = realloc(l->ms, ncap * sizeof *nb);
                    if (nb) {
                        l->ms = nb;
                        l->cap = ncap;
                    }
                }
                if (l->n < l->cap)
                    l->ms[l->n++] = (double)(now - t);
            }
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

bench_lat_t *bench_lat_start(const char *bootstrap, const char *const *topics, size_t n,
                             int partitions, int64_t since_ms)
{
    bench_lat_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->since_ms = since_ms;
    l->rk = client_new(bootstrap, "ketenbus-bench-latency", 1);
    if (!l->rk) {
        free(l);
        return NULL;
    }
    /* Start at each partition's current end: only new outputs are timed. */
    rd_kafka_topic_partition_list_t *as = rd_kafka_topic_partition_list_new((int)n * partitions);
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < partitions; p++) {
            int64_t lo = 0, hi = 0;
            rd_kafka_query_watermark_offsets(l->rk, topics[i], p, &lo, &hi, 10000);
            rd_kafka_topic_partition_list_add(as, topics[i], p)->offset = hi;
        }
    rd_kafka_assign(l->rk, as);
    rd_kafka_topic_partition_list_destroy(as);
    if (pthread_create(&l->thread, NULL, lat_main, l)) {
        rd_kafka_destroy(l->rk);
        free(l);
        return NULL;
    }
    return l;
}

void bench_lat_stop(bench_lat_t *l)
{
    if (!l || atomic_exchange(&l->stop, 1))
        return;
    pthread_join(l->thread, NULL);
}

size_t bench_lat_count(const bench_lat_t *l)
{
    return l ? l->n : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_lat_quantile(bench_lat_t *l, double q)
{
    if (!l || !l->n)
        return 0;
    if (!l->sorted) {
        qsort(l->ms, l->n, sizeof *l->ms, cmp_double);
        l->sorted = 1;
    }
    size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
    return l->ms[i < l->n ? i : l->n - 1];
}

void bench_lat_destroy(bench_lat_t *l)
{
    if (!l)
        return;
    bench_lat_stop(l);
    rd_kafka_consumer_close(l->rk);
    rd_kafka_destroy(l->rk);
    free(l->ms);
    free(l);
}

int bench_count(const char *bootstrap, const char *const *topics, size_t n, int partitions,
                int64_t *counts)
{
    rd_kafka_t *rk = client_new(bootstrap, "ketenbus-bench-count", 1);
    if (!rk)
        return -1;
    rd_kafka_topic_partition_list_t *as = rd_kafka_topic_partition_list_new((int)n * partitions);
    size_t open = 0;
    for (size_t i = 0; i < n; i++) {
        counts[i] = 0;
        for (int p = 0; p < partitions; p++) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_query_watermark_offsets(rk, topics[i], p, &lo, &hi, 10000) || hi == 0)
                continue; /* empty or absent: nothing to count */
            rd_kafka_topic_partition_list_add(as, topics[i], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
            open++;
        }
    }
    rd_kafka_assign(rk, as);
    rd_kafka_topic_partition_list_destroy(as);
    double deadline = bench_now_s() + 120;
    int rc = 0;
    while (open && bench_now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            open--;
        else if (!m->err) {
            const char *t = rd_kafka_topic_name(m->rkt);
            for (size_t i = 0; i < n; i++)
                if (!strcmp(t, topics[i]))
                    counts[i]++;
        }
        rd_kafka_message_destroy(m);
    }
    if (open)
        rc = -1;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

void bench_machine(char *out, size_t cap)
{
    char model[256] = "unknown CPU", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c += 1 + strspn(c + 1, " \t");
                c[strcspn(c, "\n")] = 0;
                snprintf(model, sizeof model, "%s", c);
            }
            break;
        }
    if (f)
        fclose(f);
    struct utsname u;
    uname(&u);
    snprintf(out, cap, "%s, %ld cores, Linux %s", model, sysconf(_SC_NPROCESSORS_ONLN), u.release);
}

int bench_run_gen(const struct bench_ctx *c, const char *prefix, long count, long seed, double rate,
                   const char *log)
{
    char env_prefix[128], scount[32], sseed[32], srate[32], gen[512];
    snprintf(env_prefix, sizeof env_prefix, "KETENBUS_TOPIC_PREFIX=%s", prefix);
    snprintf(scount, sizeof scount, "%ld", count);
    snprintf(sseed, sizeof sseed, "%ld", seed);
    snprintf(srate, sizeof srate, "%.0f", rate);
    snprintf(gen, sizeof gen, "%s/ketenbus", KB_BIN_DIR);
    char *argv[] = {gen, "gen", "--count", scount, "--seed", sseed, "--subject-key-file",
                    (char *)c->key, "-b", (char *)c->bootstrap, rate > 0 ? "--rate" : NULL,
                    srate, NULL};
    char *env[] = {env_prefix, NULL};
    pid_t pid = bench_spawn(argv, log, env);
    return pid > 0 ? bench_wait(pid) : -1;
}

/* The processes of one running contestant. */
struct procs {
    pid_t pid[BENCH_MAX_INSTANCES];
    int n;
};

static void procs_signal(const struct procs *p, int sig)
{
    for (int i = 0; i < p->n; i++)
        if (p->pid[i] > 0)
            kill(p->pid[i], sig);
}

static void contestant_stop(const struct bench_ctx *c, const struct bench_contestant *k,
                            struct procs *p);

/* The log of the contestant's process @p i: <work folder>/<name>.log for the
 * first, <name>-<i>.log for the others. */
static void instance_log(const struct bench_ctx *c, const struct bench_contestant *k, int i,
                         char *out, size_t cap)
{
    if (i == 0)
        snprintf(out, cap, "%s/%s.log", c->dir, k->name);
    else
        snprintf(out, cap, "%s/%s-%d.log", c->dir, k->name, i);
}

/* Start the contestant's processes, each writing to its instance_log().
 * 0, or -1 with none left running. */
static int contestant_start(const struct bench_ctx *c, const struct bench_contestant *k,
                            struct procs *p)
{
    int n = k->instances > 1 ? k->instances : 1;
    p->n = 0;
    if (n > BENCH_MAX_INSTANCES || (n > 1 && !k->instance_flag)) {
        fprintf(stderr, "bench: %s: cannot run %d instances\n", k->name, n);
        return -1;
    }
    size_t argc = 0;
    while (k->argv[argc])
        argc++;
    if (argc >= 64) {
        fprintf(stderr, "bench: %s: too many arguments\n", k->name);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char log[512], name[128];
        char *argv[64];
        memcpy(argv, k->argv, (argc + 1) * sizeof *argv);
        instance_log(c, k, i, log, sizeof log);
        for (size_t j = 0; i > 0 && j + 1 < argc; j++)
            if (!strcmp(argv[j], k->instance_flag)) {
                snprintf(name, sizeof name, "%s-%d", argv[j + 1], i);
                argv[j + 1] = name;
            }
        pid_t pid = bench_spawn(argv, log, k->env);
        if (pid <= 0) {
            contestant_stop(c, k, p);
            return -1;
        }
        p->pid[p->n++] = pid;
    }
    return 0;
}

/* Stop (SIGTERM, then SIGKILL) and reap the contestant's processes; those a
 * drain already reaped are 0 in @p p (bench_drain_procs), their pids may
 * belong to others by now. */
static void contestant_stop(const struct bench_ctx *c, const struct bench_contestant *k,
                            struct procs *p)
{
    procs_signal(p, SIGTERM); /* all at once, so that they leave the group together */
    for (int i = 0; i < p->n; i++) {
        if (p->pid[i] <= 0)
            continue;
        int st = bench_stop(p->pid[i], c->profiling ? 60 : 20);
        char log[512];
        instance_log(c, k, i, log, sizeof log);
        if (st != 0 && st != 128 + SIGTERM)
            fprintf(stderr, "bench: %s exited with status %d (log %s)\n", k->name, st, log);
        p->pid[i] = 0;
    }
}

/* Start the contestant and have it drain @p n events (seed @p seed) of its
 * input, untimed: a process measured from its first event would count its own
 * start-up (a JVM interprets before it compiles) as throughput or latency, and
 * a service in production has long been running. 0, or -1 with nothing left
 * running. */
static int start_warm(const struct bench_ctx *c, const struct bench_contestant *k, long n,
                      long seed, int64_t *end, struct procs *p)
{
    char in[160], log[512];
    snprintf(in, sizeof in, "%s.in.gba", k->prefix);
    snprintf(log, sizeof log, "%s/gen-%s-process-warm-up.log", c->dir, k->name);
    int64_t from = bench_topic_end(c->bootstrap, in, PARTITIONS);
    if (contestant_start(c, k, p))
        return -1;
    int rc = bench_run_gen(c, k->prefix, n, seed, 0, log);
    *end = bench_topic_end(c->bootstrap, in, PARTITIONS);
    struct bench_drain w =
        bench_drain_procs(c->bootstrap, k->group, in, PARTITIONS, from, *end, 300, p->pid, p->n);
    if (rc || !w.ok || *end - from < n) {
        fprintf(stderr, "bench: %s did not warm up (log %s)\n", k->name, log);
        contestant_stop(c, k, p);
        return -1;
    }
    return 0;
}

/* The longest pause of a contestant: it sends no group heartbeats while
 * paused, and neither the router nor Kafka Streams changes the consumer's
 * 45 s session timeout. A member evicted by then would rejoin (or be fenced)
 * inside the timed drain. */
#define PAUSE_MAX_S 30.0

/* Start the contestant and warm it up (start_warm, c->process_warmup events of
 * @p warm_seed: the router drops an event id it has routed before, so every
 * warm-up needs fresh ones), pause it (SIGSTOP), preload @p count events of
 * @p seed, let it go on (SIGCONT) and time how its group commits them; then
 * stop it. The pause keeps the preload's CPU out of the drain, and the drain
 * out of the preload. */
static int drain_once(const struct bench_ctx *c, const struct bench_contestant *k, long count,
                      long seed, long warm_seed, const char *what, struct bench_drain *out)
{
    char in[160], log[512];
    snprintf(in, sizeof in, "%s.in.gba", k->prefix);
    snprintf(log, sizeof log, "%s/gen-%s-%s.log", c->dir, k->name, what);
    int64_t from;
    struct procs p;
    if (start_warm(c, k, c->process_warmup, warm_seed, &from, &p))
        return -1;
    procs_signal(&p, SIGSTOP);
    double t = bench_now_s();
    int rc = bench_run_gen(c, k->prefix, count, seed, 0, log);
    int64_t end = bench_topic_end(c->bootstrap, in, PARTITIONS);
    double paused = bench_now_s() - t;
    procs_signal(&p, SIGCONT);
    if (rc) {
        fprintf(stderr, "bench: ketenbus gen failed (log %s)\n", log);
        contestant_stop(c, k, &p);
        return -1;
    }
    printf("%s: %s: preloaded %" PRId64 " events in %.1f s\n", k->name, what, end - from, paused);
    if (paused > PAUSE_MAX_S) {
        fprintf(stderr,
                "bench: %s was paused %.0f s for the preload, more than %.0f s: its group may "
                "have dropped it; use a smaller --count\n",
                k->name, paused, PAUSE_MAX_S);
        contestant_stop(c, k, &p);
        return -1;
    }
    *out = bench_drain_procs(c->bootstrap, k->group, in, PARTITIONS, from, end, 600, p.pid, p.n);
    if (out->ok && bench_drain_untimed(out, k->name, "--count"))
        out->ok = 0;
    printf("%s: %s %s: %.0f events/s over %.1f s (first commit after %.1f s); CPU per event: "
           "%.0f us in the contestant, %.0f us in the broker\n",
           k->name, what, out->ok ? "complete" : "INCOMPLETE", out->eps, out->seconds,
           out->startup_s, out->cpu_us, out->broker_cpu_us);
    fflush(stdout);
    contestant_stop(c, k, &p);
    return out->ok ? 0 : -1;
}

int bench_check_count(const struct bench_ctx *c, const char *bench)
{
    if (c->count > c->batch)
        return 0;
    fprintf(stderr,
            "%s: --count (%ld) must be larger than --batch (%d): a drain that one transaction "
            "covers cannot be timed\n",
            bench, c->count, c->batch);
    return -1;
}

int bench_warmup_phase(const struct bench_ctx *c, const struct bench_contestant *k, long count)
{
    int64_t end;
    if (count <= 0)
        return 0;
    struct procs p;
    if (start_warm(c, k, count, 4, &end, &p))
        return -1;
    printf("%s: warm-up: %ld events drained\n", k->name, count);
    contestant_stop(c, k, &p);
    return 0;
}

/* Add drain @p d to the totals in @p res (weights: events). */
static void drain_add(struct bench_result *res, const struct bench_drain *d)
{
    struct bench_drain *t = &res->drain;
    double n0 = t->events, n1 = d->events, n = n0 + n1;
    if (res->rounds < BENCH_MAX_ROUNDS)
        res->round_eps[res->rounds] = d->eps;
    if (res->rounds++ == 0) {
        *t = *d;
        return;
    }
    t->cpu_us = t->cpu_us >= 0 && d->cpu_us >= 0 && n > 0
                    ? (t->cpu_us * n0 + d->cpu_us * n1) / n : -1;
    t->broker_cpu_us = t->broker_cpu_us >= 0 && d->broker_cpu_us >= 0 && n > 0
                           ? (t->broker_cpu_us * n0 + d->broker_cpu_us * n1) / n : -1;
    t->events = n;
    t->seconds += d->seconds;
    t->eps = t->seconds > 0 ? t->events / t->seconds : 0;
    if (d->startup_s > t->startup_s)
        t->startup_s = d->startup_s;
    t->ok = t->ok && d->ok;
}

int bench_drain_rounds(const struct bench_ctx *c, const struct bench_contestant *const *k, size_t n,
                       int rounds, struct bench_result *const *res)
{
    for (int r = 0; r < rounds && r < BENCH_MAX_ROUNDS; r++) {
        char what[32];
        snprintf(what, sizeof what, rounds > 1 ? "drain-%d" : "drain", r + 1);
        for (size_t i = 0; i < n; i++) {
            size_t j = r % 2 ? n - 1 - i : i; /* ABBA, ABCCBA */
            struct bench_drain d;
            if (drain_once(c, k[j], c->count, 1 + 10L * r, 5 + 10L * r, what, &d))
                return -1;
            drain_add(res[j], &d);
        }
    }
    return 0;
}

double bench_round_ratios(const struct bench_result *a, const struct bench_result *b,
                          const char *bench, const char *name_a, const char *name_b)
{
    int n = a->rounds < b->rounds ? a->rounds : b->rounds;
    if (n > BENCH_MAX_ROUNDS)
        n = BENCH_MAX_ROUNDS;
    double min = 0;
    printf("%s: drains %s", bench, name_a);
    for (int r = 0; r < n; r++)
        printf(" %.0f", a->round_eps[r]);
    printf(" events/s, %s", name_b);
    for (int r = 0; r < n; r++)
        printf(" %.0f", b->round_eps[r]);
    printf(" events/s; ratio per round");
    for (int r = 0; r < n; r++) {
        double q = b->round_eps[r] > 0 ? a->round_eps[r] / b->round_eps[r] : 0;
        if (r == 0 || q < min)
            min = q;
        printf(" %.2f", q);
    }
    printf("\n");
    return min;
}

/* The latency phase's process warm-up: c->process_warmup, at least 300. */
static long latency_warmup(const struct bench_ctx *c)
{
    return c->process_warmup > 300 ? c->process_warmup : 300;
}

long bench_inputs(const struct bench_ctx *c, long warmup, int rounds, int latency_ran,
                  double rate)
{
    return warmup + (c->process_warmup + c->count) * rounds +
           (latency_ran ? latency_warmup(c) + (long)(rate * c->seconds) : 0);
}

int bench_latency_phase(const struct bench_ctx *c, const struct bench_contestant *k, double rate,
                        struct bench_result *res)
{
    char in[160], log[512];
    snprintf(in, sizeof in, "%s.in.gba", k->prefix);
    /* as for a drain: the process is warm before the timed events start */
    int64_t end;
    struct procs p;
    if (start_warm(c, k, latency_warmup(c), 3, &end, &p))
        return -1;
    int64_t since = bench_wall_ms();
    bench_lat_t *lat = bench_lat_start(c->bootstrap, k->outs, k->n_outs, PARTITIONS, since);
    long n = (long)(rate * c->seconds);
    snprintf(log, sizeof log, "%s/gen-%s-rate.log", c->dir, k->name);
    int rc = bench_run_gen(c, k->prefix, n, 2, rate, log);
    struct bench_drain d2 =
        bench_drain_procs(c->bootstrap, k->group, in, PARTITIONS, end, end + n, 120, p.pid, p.n);
    usleep(300000); /* the last transaction's outputs reach the collector */
    bench_lat_stop(lat);
    res->rate = rate;
    res->lat_n = bench_lat_count(lat);
    res->p50 = bench_lat_quantile(lat, 0.50);
    res->p99 = bench_lat_quantile(lat, 0.99);
    res->p999 = bench_lat_quantile(lat, 0.999);
    bench_lat_destroy(lat);
    printf("%s: latency at %.0f events/s for %.0f s: p50=%.1f ms p99=%.1f ms p999=%.1f ms (%zu outputs)\n",
           k->name, rate, c->seconds, res->p50, res->p99, res->p999, res->lat_n);
    fflush(stdout);
    contestant_stop(c, k, &p);
    return !rc && d2.ok ? 0 : -1;
}
