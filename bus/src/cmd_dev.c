/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_dev.c - `ketenbus dev`: the whole bus on one machine with no external
 * service. librdkafka's in-process mock cluster stands in for Kafka (it
 * listens on loopback, so the adapter processes and kcat can connect), the
 * router runs in a thread here, and the GBA and SVB adapters run as child
 * processes, exactly as they would in production. `--demo` then drops the
 * canonical birth (the child's Lg01 and the mother's Gv01) into the GBA
 * spool and prints the AKW01 invitation SVB's legacy side receives.
 *
 * Lifecycle: start_mock() -> create_topics() -> router thread -> spawn
 * adapters -> (demo) feed + wait -> stop children -> join router -> destroy
 * mock. Every step after a failure undoes the ones before it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <openssl/rand.h>

#include "akw.h"
#include "cmd.h"
#include "ketenbus/admin.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"
#include "ketenbus/route.h"
#include "ketenbus/serve.h"
#include "ketenbus/stop.h"
#include "spool.h"

extern char **environ;

#ifndef KB_SOURCE_DIR
#define KB_SOURCE_DIR "."
#endif

#define COMP "dev"

/* Ranges of the numeric options: a mock cluster of up to 9 brokers, a demo
 * waiting up to a day. */
#define DEV_MAX_BROKERS   9
#define DEV_MAX_TIMEOUT_S 86400

static const char usage[] =
    "usage: ketenbus dev [--demo] [--workdir DIR] [--brokers N] [--timeout SECONDS]\n"
    "\n"
    "Starts an in-process Kafka mock cluster (default 3 brokers), creates the\n"
    "ketenbus topics, runs the router and the GBA and SVB adapters against it,\n"
    "and prints the bootstrap address so other processes (kcat, more adapters)\n"
    "can connect. Ctrl-C stops everything cleanly.\n"
    "\n"
    "  --demo          feed the canonical birth (Lg01 of the child, Gv01 of the\n"
    "                  mother) and print the AKW01 invitation SVB receives; exit\n"
    "  --workdir DIR   spools, keys and logs (default: a new /tmp/ketenbus-dev-*)\n"
    "  --brokers N     mock brokers, 1 to 9 (default 3)\n"
    "  --timeout S     demo: seconds to wait for the invitation, 1 to 86400\n"
    "                  (default 120)\n"
    "  --subscriptions PATH  (default deploy/dev/subscriptions.yaml of the source tree)\n"
    "  --dashboard HOST:PORT live dashboard and /metrics of the router (default\n"
    "                  127.0.0.1:0, a free port, printed; \"off\" for none; --demo: off)\n";

struct router_thread {
    kb_router_t *router;
    atomic_int stop;
    kb_err_t result;
};

static void *router_main(void *arg)
{
    struct router_thread *rt = arg;
    rt->result = kb_router_run(rt->router, &rt->stop);
    return NULL;
}

/* The folder this executable lives in: the adapters are built beside it. */
static void self_dir(char *out, size_t cap)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        snprintf(out, cap, ".");
        return;
    }
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    snprintf(out, cap, "%s", buf);
}

static pid_t spawn(const char *exe, char *const argv[], const char *log_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (log_path) {
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log_path,
                                         O_WRONLY | O_CREAT | O_APPEND, 0640);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    /* A process group of its own: a Ctrl-C at the terminal reaches dev only,
     * which passes one SIGTERM on (stop_children). Both would be two stop
     * signals, and the second ends an adapter's clean stop at once (stop.h). */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, exe, &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "error: cannot start %s: %s\n", exe, strerror(rc));
        return -1;
    }
    return pid;
}

/* SIGTERM to both adapters at once, SIGKILL to what is left after 10 s. At
 * once, so that the whole stop fits in dev's own stop deadline (stop.h),
 * the adapters' deadlines running alongside it. -1 is no child. */
static void stop_children(pid_t a, pid_t b)
{
    pid_t pids[2] = {a, b};
    for (int k = 0; k < 2; k++)
        if (pids[k] > 0)
            kill(pids[k], SIGTERM);
    for (int i = 0; i < 100 && (pids[0] > 0 || pids[1] > 0); i++) {
        for (int k = 0; k < 2; k++)
            if (pids[k] > 0 && waitpid(pids[k], NULL, WNOHANG) != 0) {
                kb_stop_forget(pids[k]);
                pids[k] = -1; /* reaped now, or earlier (ECHILD) */
            }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int k = 0; k < 2; k++) {
        if (pids[k] > 0) {
            kill(pids[k], SIGKILL);
            waitpid(pids[k], NULL, 0);
            kb_stop_forget(pids[k]);
        }
    }
}

static int copy_file(const char *from, const char *to)
{
    FILE *f = fopen(from, "rb");
    if (!f)
        return -1;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return kb_file_write_atomic(to, buf, n) == KB_OK ? 0 : -1;
}

/* Wait for the first *.akw01 file in @p dir; its path into @p found. Files
 * in out/ are complete when visible (write-then-rename). */
static int wait_for_record(const char *dir, int timeout_s, atomic_int *stop, char *found,
                           size_t cap)
{
    for (int i = 0; i < timeout_s * 10 && !atomic_load(stop); i++) {
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            size_t l = strlen(de->d_name);
            if (de->d_name[0] != '.' && l > 6 && !strcmp(de->d_name + l - 6, ".akw01")) {
                snprintf(found, cap, "%s/%s", dir, de->d_name);
                closedir(d);
                return 0;
            }
        }
        if (d)
            closedir(d);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void print_record(const char *path)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (!f || !fgets(line, sizeof line, f)) {
        if (f)
            fclose(f);
        return;
    }
    fclose(f);
    size_t len = strcspn(line, "\r\n");
    line[len] = '\0';
    printf("\nSVB received an AKW01 invitation record (%s):\n\n%s\n", path, line);
    struct kb_akw01 rec;
    char errstr[256];
    if (kb_akw01_parse(line, len, &rec, errstr, sizeof errstr)) {
        printf("  (record does not parse: %s)\n", errstr);
        return;
    }
    printf("\n  kenmerk SVB            %s\n"
           "  datum aanmaak          %s\n"
           "  BSN ouder              %s\n"
           "  BSN kind               %s\n"
           "  geboortedatum kind     %s\n"
           "  gemeente kind          %s\n"
           "  kanaal                 %c\n"
           "  uiterste reactiedatum  %s\n"
           "  bron A-nummer          %s\n"
           "  bron bericht           %s ontvangen %s\n"
           "  verwerking             %c (U uitnodiging, A automatisch)\n"
           "  geboren in buitenland  %c (geboorteland %s)\n"
           "  BSN partner            %s\n"
           "  naam geadresseerde     %s\n",
           rec.kenmerk, rec.datum_aanmaak, rec.bsn_ouder, rec.bsn_kind, rec.geboortedatum_kind,
           rec.gemeente_kind, rec.kanaal, rec.uiterste_reactiedatum, rec.bron_anummer,
           rec.bron_berichttype, rec.bron_ontvangstdatum, rec.verwerking, rec.buitenland,
           rec.geboorteland, rec.bsn_partner[0] ? rec.bsn_partner : "(geen)", rec.naam);
}

static int write_key(const char *path)
{
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1)
        return -1;
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, hex, 64);
    close(fd);
    return w == 64 ? 0 : -1;
}

enum { OPT_DEMO = 1000, OPT_WORKDIR, OPT_BROKERS, OPT_TIMEOUT, OPT_SUBS, OPT_DASH };

int kb_cmd_dev(int argc, char **argv)
{
    static const struct option longopts[] = {{"demo", no_argument, NULL, OPT_DEMO},
                                             {"workdir", required_argument, NULL, OPT_WORKDIR},
                                             {"brokers", required_argument, NULL, OPT_BROKERS},
                                             {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                             {"subscriptions", required_argument, NULL, OPT_SUBS},
                                             {"dashboard", required_argument, NULL, OPT_DASH},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int demo = 0, brokers = 3, timeout_s = 120, opt;
    const char *workdir = NULL;
    const char *subs_path = KB_SOURCE_DIR "/deploy/dev/subscriptions.yaml";
    const char *dash_addr = NULL;
    char nerr[256];
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        kb_err_t bad = KB_OK; /* a numeric option's value is a usage error */
        long long n = 0;
        switch (opt) {
        case OPT_DEMO: demo = 1; break;
        case OPT_WORKDIR: workdir = optarg; break;
        case OPT_BROKERS:
            bad = kb_cli_long("--brokers", optarg, 1, DEV_MAX_BROKERS, &n, nerr, sizeof nerr);
            brokers = (int)n;
            break;
        case OPT_TIMEOUT:
            bad = kb_cli_long("--timeout", optarg, 1, DEV_MAX_TIMEOUT_S, &n, nerr, sizeof nerr);
            timeout_s = (int)n;
            break;
        case OPT_SUBS: subs_path = optarg; break;
        case OPT_DASH: dash_addr = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "error: %s\n", nerr);
            return 2;
        }
    }
    if (!dash_addr)
        dash_addr = demo ? "off" : "127.0.0.1:0";
    static atomic_int stop;
    int rc = 1;
    char errstr[512];
    if (kb_stop_signals(&stop, "dev",
                        "the mock cluster and its data end with this process; the adapters "
                        "stop on their own deadline",
                        errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }

    char wd[PATH_MAX];
    if (workdir) {
        snprintf(wd, sizeof wd, "%s", workdir);
        if (mkdir(wd, 0750) != 0 && errno != EEXIST) {
            fprintf(stderr, "error: cannot create %s: %s\n", wd, strerror(errno));
            return 1;
        }
    } else {
        snprintf(wd, sizeof wd, "/tmp/ketenbus-dev-XXXXXX");
        if (!mkdtemp(wd)) {
            fprintf(stderr, "error: cannot create a work folder: %s\n", strerror(errno));
            return 1;
        }
    }
    char keyfile[PATH_MAX + 32], logdir[PATH_MAX + 32], gba_spool[PATH_MAX + 32],
        svb_spool[PATH_MAX + 32];
    snprintf(keyfile, sizeof keyfile, "%s/subject.key", wd);
    snprintf(logdir, sizeof logdir, "%s/logs", wd);
    snprintf(gba_spool, sizeof gba_spool, "%s/gba", wd);
    snprintf(svb_spool, sizeof svb_spool, "%s/svb", wd);
    mkdir(logdir, 0750);
    /* Create the spools now, so the demo can drop files before the
     * adapters have started. */
    struct kb_spool gsp, ssp;
    if (kb_spool_open(&gsp, gba_spool, errstr, sizeof errstr) ||
        kb_spool_open(&ssp, svb_spool, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }
    if (access(keyfile, R_OK) != 0 && write_key(keyfile) != 0) {
        fprintf(stderr, "error: cannot write %s\n", keyfile);
        return 1;
    }

    /* Loaded here only to create the topics; the router loads its own. */
    struct kb_subs subs;
    if (kb_subs_load(subs_path, NULL, 0, &subs, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }
    kb_schemas_t *schemas = kb_schemas_load_dir(KB_SCHEMA_DIR, errstr, sizeof errstr);
    if (!schemas) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_subs;
    }

    /* The mock cluster lives inside a client handle, which must outlive it. */
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_conf_set(mconf, "client.id", "ketenbus-dev-mock", NULL, 0);
    /* This handle only hosts the cluster; it never connects anywhere. */
    rd_kafka_conf_set(mconf, "log_level", "3", NULL, 0);
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, errstr, sizeof errstr);
    if (!mrk) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_schemas;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, brokers);
    if (!mc) {
        fprintf(stderr, "error: cannot start the mock cluster\n");
        goto out_mrk;
    }
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    /* The mock cluster cannot create topics on request, so every topic the
     * roles use is made here. */
    const char *fixed_topics[] = {"in.gba", "in.svb", "in.kadaster", "quarantine.gba",
                                  "quarantine.svb", "quarantine.kadaster", "dlq", "audit"};
    for (size_t i = 0; i < sizeof fixed_topics / sizeof fixed_topics[0]; i++) {
        char topic[160];
        kb_topic_name(topic, sizeof topic, fixed_topics[i]);
        rd_kafka_mock_topic_create(mc, topic, 3, 1);
    }
    for (size_t i = 0; i < subs.n; i++)
        rd_kafka_mock_topic_create(mc, subs.items[i].topic, 3, 1);
    /* The registry's topic has one partition (a total order); the router
     * registers projected schemas there. */
    char schemas_topic[160];
    kb_topic_name(schemas_topic, sizeof schemas_topic, "schemas");
    rd_kafka_mock_topic_create(mc, schemas_topic, 1, 1);

    /* Demo output goes to stdout; component logs go to files. */
    char own_log[PATH_MAX + 64];
    snprintf(own_log, sizeof own_log, "%s/router.log", logdir);
    int saved_stderr = -1;
    if (demo) {
        saved_stderr = dup(STDERR_FILENO);
        int fd = open(own_log, O_WRONLY | O_CREAT | O_APPEND, 0640);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    printf("ketenbus dev: mock Kafka cluster with %d brokers at %s\n", brokers, bootstrap);
    printf("ketenbus dev: work folder %s (spools gba/ svb/, logs/)\n", wd);
    fflush(stdout);

    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    kb_kafka_opts_set(&kopts, "bootstrap.servers", bootstrap, NULL, 0);
    struct kb_route_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.kafka = &kopts;
    ro.subs_path = subs_path;
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (kb_event_key_load(keyfile, &key, &key_len, errstr, sizeof errstr)) {
        fprintf(stdout, "error: %s\n", errstr);
        goto out_kopts;
    }
    ro.subject_key = key;
    ro.subject_key_len = key_len;
    ro.schemas = schemas;
    ro.instance = "dev";
    struct router_thread rt;
    memset(&rt, 0, sizeof rt);
    pid_t gba = -1, svb = -1;
    kb_http_t *dash_http = NULL;
    kb_dashboard_t *dash = NULL;
    rt.router = kb_router_new(&ro, errstr, sizeof errstr);
    if (!rt.router) {
        fprintf(stdout, "error: router: %s\n", errstr);
        goto out_kopts;
    }
    pthread_t tid;
    if (pthread_create(&tid, NULL, router_main, &rt) != 0) {
        fprintf(stdout, "error: cannot start the router thread\n");
        kb_router_destroy(rt.router);
        goto out_kopts;
    }

    /* The router runs in this process, so its metrics are this process's:
     * the dashboard serves them as `ketenbus route --metrics-addr` does. */
    if (strcmp(dash_addr, "off") != 0) {
        struct kb_serve_opts so = {.extra_public = "/dashboard"};
        struct kb_dashboard_opts dopts = {.kafka = &kopts};
        char dhost[256];
        uint16_t dport;
        if (kb_serve_addr_parse(dash_addr, dhost, sizeof dhost, &dport, errstr, sizeof errstr) ||
            !(dash_http = kb_serve_new(dash_addr, &so, errstr, sizeof errstr)) ||
            !(dash = kb_dashboard_new(&dopts, errstr, sizeof errstr)) ||
            kb_dashboard_routes(dash, dash_http) ||
            kb_http_start(dash_http, errstr, sizeof errstr)) {
            printf("error: dashboard: %s\n", errstr);
            goto out_children;
        }
        kb_metrics_set_ready(1);
        printf("ketenbus dev: dashboard at http://%s:%u/dashboard (metrics at /metrics)\n",
               dhost, (unsigned)kb_http_port(dash_http));
        fflush(stdout);
    }

    char bindir[PATH_MAX], gba_exe[PATH_MAX + 32], svb_exe[PATH_MAX + 32];
    char gba_log[PATH_MAX + 64], svb_log[PATH_MAX + 64];
    self_dir(bindir, sizeof bindir);
    snprintf(gba_exe, sizeof gba_exe, "%s/ketenbus-gba", bindir);
    snprintf(svb_exe, sizeof svb_exe, "%s/ketenbus-svb", bindir);
    snprintf(gba_log, sizeof gba_log, "%s/gba.log", logdir);
    snprintf(svb_log, sizeof svb_log, "%s/svb.log", logdir);
    char *gba_argv[] = {gba_exe, "ingest", "--spool", gba_spool, "--subject-key-file", keyfile,
                        "-b", (char *)bootstrap, NULL};
    char *svb_argv[] = {svb_exe, "egress", "--spool", svb_spool, "--subject-key-file", keyfile,
                        "-b", (char *)bootstrap, NULL};
    gba = spawn(gba_exe, gba_argv, demo ? gba_log : NULL);
    svb = spawn(svb_exe, svb_argv, demo ? svb_log : NULL);
    /* Not in dev's process group: should dev's own stop be cut short,
     * the watchdog tells them, or they would be left running. */
    if (gba > 0)
        kb_stop_forward(gba);
    if (svb > 0)
        kb_stop_forward(svb);
    if (gba < 0 || svb < 0)
        goto out_children;
    printf("ketenbus dev: router, ketenbus-gba (spool %s) and ketenbus-svb (spool %s) running\n",
           gba_spool, svb_spool);
    fflush(stdout);

    if (!demo) {
        printf("ketenbus dev: drop LO3 files into %s/in; AKW01 records appear in %s/out.\n"
               "ketenbus dev: try: kcat -b %s -L    (Ctrl-C stops)\n",
               gba_spool, svb_spool, bootstrap);
        fflush(stdout);
        while (!atomic_load(&stop)) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
            int gba_gone = waitpid(gba, NULL, WNOHANG) == gba;
            int svb_gone = !gba_gone && waitpid(svb, NULL, WNOHANG) == svb;
            if (gba_gone || svb_gone) {
                printf("ketenbus dev: an adapter exited; see its log, stopping\n");
                /* Reaped: its number may be reused, never signal it again. */
                kb_stop_forget(gba_gone ? gba : svb);
                if (gba_gone)
                    gba = -1;
                else
                    svb = -1;
                break;
            }
        }
        rc = 0;
        goto out_children;
    }

    static const char *const demo_files[] = {"lg01-geboorte-sophie.lo3",
                                             "gv01-moeder-kind-sophie.lo3"};
    for (size_t i = 0; i < 2; i++) {
        char from[PATH_MAX + 64], to[PATH_MAX + 96];
        snprintf(from, sizeof from, "%s/tests/fixtures/gba/%s", KB_SOURCE_DIR, demo_files[i]);
        snprintf(to, sizeof to, "%s/in/%03zu-%s", gba_spool, i + 1, demo_files[i]);
        if (copy_file(from, to) != 0) {
            printf("error: cannot copy demo message %s\n", from);
            goto out_children;
        }
        printf("ketenbus dev: municipality sent %s -> %s\n", demo_files[i], to);
    }
    printf("ketenbus dev: waiting for SVB's invitation (up to %d s)...\n", timeout_s);
    fflush(stdout);
    char out_dir[PATH_MAX + 64], found[PATH_MAX + 400];
    snprintf(out_dir, sizeof out_dir, "%s/out", svb_spool);
    if (wait_for_record(out_dir, timeout_s, &stop, found, sizeof found) == 0) {
        print_record(found);
        const struct kb_route_stats *st = kb_router_stats(rt.router);
        printf("\nrouter: consumed=%llu delivered=%llu dead_letters=%llu duplicates=%llu "
               "transactions=%llu\n",
               (unsigned long long)atomic_load(&st->consumed),
               (unsigned long long)atomic_load(&st->delivered),
               (unsigned long long)atomic_load(&st->dead_letters),
               (unsigned long long)atomic_load(&st->duplicates),
               (unsigned long long)atomic_load(&st->transactions));
        rc = 0;
    } else {
        printf("error: no invitation within %d s; logs are in %s\n", timeout_s, logdir);
    }
    fflush(stdout);

out_children:
    kb_http_stop(dash_http);
    kb_dashboard_destroy(dash);
    kb_http_destroy(dash_http);
    stop_children(gba, svb);
    atomic_store(&rt.stop, 1);
    pthread_join(tid, NULL);
    kb_router_destroy(rt.router);
out_kopts:
    free(key);
    kb_kafka_opts_fini(&kopts);
    if (saved_stderr >= 0) {
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
    }
    rd_kafka_mock_cluster_destroy(mc);
out_mrk:
    rd_kafka_destroy(mrk);
out_schemas:
    kb_schemas_destroy(schemas);
out_subs:
    kb_subs_fini(&subs);
    if (rc == 0)
        printf("ketenbus dev: stopped\n");
    return rc;
}
