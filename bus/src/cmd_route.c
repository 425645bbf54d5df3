/* SPDX-License-Identifier: EUPL-1.2 */
/* cmd_route.c - `ketenbus route`: run one routing-core instance. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "ketenbus/admin.h"
#include "ketenbus/audit.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/http.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"
#include "ketenbus/route.h"
#include "ketenbus/serve.h"
#include "ketenbus/stop.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

/* Ranges of the numeric options. A batch is one Kafka transaction and its
 * buffers; a dedup window costs 24 to 40 bytes per id and input partition. */
#define ROUTE_MAX_CHECKPOINT_EVERY 1000000
#define ROUTE_MIN_CHECKPOINT_MS    100
#define ROUTE_MAX_CHECKPOINT_MS    86400000 /* a day */
#define ROUTE_MAX_VERIFY_EVERY     604800   /* a week, in seconds */
#define ROUTE_MAX_BATCH            1000000
#define ROUTE_MAX_DEDUP_WINDOW     10000000

static const char usage[] =
    "usage: ketenbus route --subscriptions PATH [options]\n"
    "\n"
    "Consumes kb.in.*, drops duplicate event ids, and produces every event to\n"
    "the topic of each subscriber whose types include it; malformed events go\n"
    "to kb.dlq with context headers. Input offsets and output are committed in\n"
    "one Kafka transaction (exactly-once). Run any number of instances with\n"
    "distinct --instance names: they share the input through one consumer group.\n"
    "Topic and group names start with $KETENBUS_TOPIC_PREFIX (default \"kb\").\n"
    "\n"
    "  --subscriptions PATH         YAML file or folder of subscription files; reloaded\n"
    "                               on SIGHUP and when the files change\n"
    "  --subject-key-file FILE      subject key (required): follow lists, and the key\n"
    "                               from which each subscriber's pseudonyms derive\n"
    "  --schemas DIR                schema folder (default: the source tree's schemas/)\n"
    "  --no-register-projections    do not put projected schemas in the registry topic\n"
    "                               (by default each is registered under the id its\n"
    "                               copies are framed with, subject <topic>-<record>)\n"
    "  --audit-signing-key FILE     Ed25519 key (ketenbus audit keygen) for signed\n"
    "                               checkpoints of the audit trail\n"
    "  --checkpoint-every N         records per chain between checkpoints (default 1000;\n"
    "                               1 to 1000000)\n"
    "  --checkpoint-ms MS           or after this long with new records (default 60000;\n"
    "                               100 to 86400000)\n"
    "  --audit-compression CODEC    codec of the audit topic's batches: none, gzip,\n"
    "                               snappy, lz4 or zstd (default " KB_AUDIT_COMPRESSION ")\n"
    "  --compression CODEC          codec of the batches of subscriber topics and the\n"
    "                               dead-letter topic: none, gzip, snappy, lz4 or zstd\n"
    "                               (default: -X compression.type, else " KB_ROUTE_COMPRESSION ")\n"
    "  --metrics-addr HOST:PORT     serve /metrics (Prometheus), /healthz, /readyz, the\n"
    "                               dashboard (/dashboard, /events) and the admin API\n"
    "                               (/admin/...; HTTP options below)\n"
    "  --no-admin                   no admin API on that server\n"
    "  --admin-addr HOST:PORT       serve the admin API on a server of its own instead,\n"
    "                               on another address than the probes and metrics\n"
    "  --audit-public-key FILE      trusted checkpoint key for /admin/audit/status\n"
    "                               (repeatable)\n"
    "  --audit-verify-every SECONDS verify the audit trail this often for the status\n"
    "                               (default 300, at most 604800; 0 = only on\n"
    "                               POST /admin/audit/verify)\n"
    "  --dashboard-peer URL         http://HOST:PORT of a deliver process (its\n"
    "                               --metrics-addr): webhook backlog on the dashboard\n"
    "                               (repeatable)\n"
    "  --no-audit                   no audit trail (benchmarks only: conservation is\n"
    "                               then unrecorded)\n"
    "  --instance NAME              unique per instance; names the transactional.id\n"
    "                               (default: the host name)\n"
    "  --group ID                   consumer group (default <prefix>-route: kb-route)\n"
    "  --batch N                    most events per transaction, 1 to 1000000 "
    "(default " KB_ROUTE_BATCH_MAX_STR ";\n"
    "                               under light load a batch closes when the last commit\n"
    "                               ends)\n"
    "  --dedup-window N             event ids remembered per input partition, 1 to\n"
    "                               10000000 (default 100000)\n"
    "  -b, --bootstrap HOST:PORT    Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V     any librdkafka property (TLS, SASL, ...; the\n"
    "                               producer's linger.ms defaults to " KB_ROUTE_LINGER_MS
    ": every\n"
    "                               transaction's commit flushes it at once)\n"
    "      --kafka-config FILE      properties file with librdkafka properties\n"
    "  -h, --help\n";

enum {
    OPT_ADMINADDR = 960,
    OPT_NOREG = 970,
    OPT_NOADMIN = 980,
    OPT_APUB,
    OPT_AEVERY,
    OPT_PEER,
    OPT_METRICS = 989,
    OPT_NOAUDIT = 990,
    OPT_AKEY,
    OPT_CPN,
    OPT_CPMS,
    OPT_ACODEC,
    OPT_CODEC,
    OPT_KEY = 999,
    OPT_SUBS = 1000,
    OPT_SCHEMAS,
    OPT_INSTANCE,
    OPT_GROUP,
    OPT_BATCH,
    OPT_WINDOW,
    OPT_KCONF
};

/* The admin API changes things (redrive): it is never open to the network
 * without authentication. 0 when @p addr is loopback or the server is secured. */
static int admin_open_check(const char *addr, const struct kb_serve_opts *so, char *errstr,
                            size_t errstr_size)
{
    char host[256];
    uint16_t port;
    if (kb_serve_addr_parse(addr, host, sizeof host, &port, errstr, errstr_size))
        return -1;
    int loopback = !strncmp(host, "127.", 4) || !strcmp(host, "::1") ||
                   !strcmp(host, "localhost");
    if (!kb_serve_secured(so) && !loopback) {
        snprintf(errstr, errstr_size,
                 "the admin API on %s needs --http-token-file or --http-client-ca "
                 "(or --no-admin)", addr);
        return -1;
    }
    return 0;
}

/* "host:port" of a started server for the log (the port it got for port 0). */
struct served {
    char s[300];
};

static struct served served_at(const char *addr, const kb_http_t *h)
{
    struct served r;
    char host[256] = "?";
    uint16_t port;
    char e[128];
    kb_serve_addr_parse(addr, host, sizeof host, &port, e, sizeof e);
    snprintf(r.s, sizeof r.s, "%s:%u", host, (unsigned)kb_http_port(h));
    return r;
}

int kb_cmd_route(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"subscriptions", required_argument, NULL, OPT_SUBS},
        {"subject-key-file", required_argument, NULL, OPT_KEY},
        {"audit-signing-key", required_argument, NULL, OPT_AKEY},
        {"checkpoint-every", required_argument, NULL, OPT_CPN},
        {"checkpoint-ms", required_argument, NULL, OPT_CPMS},
        {"audit-compression", required_argument, NULL, OPT_ACODEC},
        {"compression", required_argument, NULL, OPT_CODEC},
        {"no-audit", no_argument, NULL, OPT_NOAUDIT},
        {"no-register-projections", no_argument, NULL, OPT_NOREG},
        {"metrics-addr", required_argument, NULL, OPT_METRICS},
        {"no-admin", no_argument, NULL, OPT_NOADMIN},
        {"admin-addr", required_argument, NULL, OPT_ADMINADDR},
        {"audit-public-key", required_argument, NULL, OPT_APUB},
        {"audit-verify-every", required_argument, NULL, OPT_AEVERY},
        {"dashboard-peer", required_argument, NULL, OPT_PEER},
        KB_SERVE_LONGOPTS,
        {"schemas", required_argument, NULL, OPT_SCHEMAS},
        {"instance", required_argument, NULL, OPT_INSTANCE},
        {"group", required_argument, NULL, OPT_GROUP},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"dedup-window", required_argument, NULL, OPT_WINDOW},
        {"bootstrap", required_argument, NULL, 'b'},
        {"kafka-property", required_argument, NULL, 'X'},
        {"kafka-config", required_argument, NULL, OPT_KCONF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    const char *subs_path = NULL, *schemas_dir = KB_SCHEMA_DIR, *key_file = NULL;
    const char *metrics_addr = NULL, *admin_addr = NULL;
    struct kb_serve_opts so = {.extra_public = "/dashboard"};
    const char *apub[8], *peers[16];
    size_t n_apub = 0, n_peers = 0;
    int no_admin = 0, audit_every = 300;
    struct kb_route_opts ro;
    memset(&ro, 0, sizeof ro);
    char host[128] = "0";
    gethostname(host, sizeof host - 1);
    ro.instance = host;
    char errstr[512] = "";
    int opt, rc = 1;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, NULL)) != -1) {
        kb_err_t bad = KB_OK; /* a numeric option's value is a usage error */
        long long n = 0;
        switch (opt) {
        case OPT_SUBS: subs_path = optarg; break;
        case OPT_KEY: key_file = optarg; break;
        case OPT_AKEY: ro.audit_signing_key_file = optarg; break;
        case OPT_CPN:
            bad = kb_cli_long("--checkpoint-every", optarg, 1, ROUTE_MAX_CHECKPOINT_EVERY, &n,
                              errstr, sizeof errstr);
            ro.audit_checkpoint_every = (uint32_t)n;
            break;
        case OPT_CPMS:
            bad = kb_cli_long("--checkpoint-ms", optarg, ROUTE_MIN_CHECKPOINT_MS,
                              ROUTE_MAX_CHECKPOINT_MS, &n, errstr, sizeof errstr);
            ro.audit_checkpoint_ms = (int)n;
            break;
        case OPT_ACODEC: ro.audit_compression = optarg; break;
        case OPT_CODEC: ro.compression = optarg; break;
        case OPT_NOAUDIT: ro.no_audit = 1; break;
        case OPT_NOREG: ro.no_register_projections = 1; break;
        case OPT_METRICS: metrics_addr = optarg; break;
        case OPT_NOADMIN: no_admin = 1; break;
        case OPT_ADMINADDR: admin_addr = optarg; break;
        case OPT_AEVERY:
            bad = kb_cli_long("--audit-verify-every", optarg, 0, ROUTE_MAX_VERIFY_EVERY, &n, errstr,
                              sizeof errstr);
            audit_every = (int)n;
            break;
        case OPT_APUB:
        case OPT_PEER:
            if (opt == OPT_APUB ? n_apub == 8 : n_peers == 16) {
                fprintf(stderr, "error: too many --%s\n",
                        opt == OPT_APUB ? "audit-public-key" : "dashboard-peer");
                goto out_opts;
            }
            if (opt == OPT_APUB)
                apub[n_apub++] = optarg;
            else
                peers[n_peers++] = optarg;
            break;
        case OPT_SCHEMAS: schemas_dir = optarg; break;
        case OPT_INSTANCE: ro.instance = optarg; break;
        case OPT_GROUP: ro.group_id = optarg; break;
        case OPT_BATCH:
            bad = kb_cli_long("--batch", optarg, 1, ROUTE_MAX_BATCH, &n, errstr, sizeof errstr);
            ro.batch_max = (int)n;
            break;
        case OPT_WINDOW:
            bad = kb_cli_long("--dedup-window", optarg, 1, ROUTE_MAX_DEDUP_WINDOW, &n, errstr,
                              sizeof errstr);
            ro.dedup_window = (size_t)n;
            break;
        case 'b':
        case 'X':
        case OPT_KCONF: {
            kb_err_t err = kb_kafka_opts_arg(&kopts, opt == OPT_KCONF ? 'F' : opt, optarg,
                                             errstr, sizeof errstr);
            if (err) {
                fprintf(stderr, "error: %s\n", errstr);
                goto out_opts;
            }
            break;
        }
        case 'h':
            fputs(usage, stdout);
            fputs(kb_serve_usage, stdout);
            rc = 0;
            goto out_opts;
        default:
            if (kb_serve_opts_arg(&so, opt, optarg))
                break;
            fputs(usage, stderr);
            rc = 2;
            goto out_opts;
        }
        if (bad) {
            fprintf(stderr, "error: %s\n", errstr);
            rc = 2;
            goto out_opts;
        }
    }
    if (!subs_path) {
        fprintf(stderr, "error: --subscriptions is required\n\n%s", usage);
        rc = 2;
        goto out_opts;
    }
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (key_file && kb_event_key_load(key_file, &key, &key_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_opts;
    }
    kb_schemas_t *schemas = kb_schemas_load_dir(schemas_dir, errstr, sizeof errstr);
    if (!schemas) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_key;
    }
    static atomic_int stop, reload;
    ro.kafka = &kopts;
    ro.subs_path = subs_path;
    ro.subject_key = key;
    ro.subject_key_len = key_len;
    ro.reload = &reload;
    ro.schemas = schemas;
    struct kb_http *metrics = NULL, *admin_http = NULL;
    kb_admin_t *admin = NULL;
    kb_dashboard_t *dash = NULL;
    if (admin_addr && no_admin) {
        snprintf(errstr, sizeof errstr, "--admin-addr and --no-admin exclude each other");
        goto out_http;
    }
    struct kb_admin_opts aopts = {
        .kafka = &kopts, .subs_path = subs_path, .subject_key = key,
        .subject_key_len = key_len, .schemas_source = schemas_dir,
        .audit_public_keys = apub, .n_audit_public_keys = n_apub,
        .audit_every_s = ro.no_audit ? 0 : audit_every, .router_group = ro.group_id,
    };
    /* The admin API: on its own server with --admin-addr, else on the
     * metrics server (unless --no-admin). */
    const char *admin_at = admin_addr ? admin_addr : no_admin ? NULL : metrics_addr;
    if (admin_at && admin_open_check(admin_at, &so, errstr, sizeof errstr))
        goto out_http;
    if (admin_at && !(admin = kb_admin_new(&aopts, errstr, sizeof errstr)))
        goto out_http;
    if (metrics_addr) {
        struct kb_dashboard_opts dopts = {.kafka = &kopts, .peers = peers, .n_peers = n_peers};
        if (!(metrics = kb_serve_new(metrics_addr, &so, errstr, sizeof errstr)) ||
            !(dash = kb_dashboard_new(&dopts, errstr, sizeof errstr)) ||
            kb_dashboard_routes(dash, metrics) ||
            (admin && !admin_addr && kb_admin_routes(admin, metrics)) ||
            kb_http_start(metrics, errstr, sizeof errstr))
            goto out_http;
        KB_LOG_INFO("route", "serving", "url=%s://%s/dashboard admin=%s auth=%s",
                    kb_serve_scheme(&so), served_at(metrics_addr, metrics).s,
                    admin && !admin_addr ? "on" : "off", kb_serve_secured(&so) ? "on" : "off");
    }
    if (admin_addr) {
        if (!(admin_http = kb_serve_new(admin_addr, &so, errstr, sizeof errstr)) ||
            kb_admin_routes(admin, admin_http) || kb_http_start(admin_http, errstr, sizeof errstr))
            goto out_http;
        KB_LOG_INFO("route", "serving admin", "url=%s://%s/admin/ auth=%s",
                    kb_serve_scheme(&so), served_at(admin_addr, admin_http).s,
                    kb_serve_secured(&so) ? "on" : "off");
    }
    kb_router_t *r = kb_router_new(&ro, errstr, sizeof errstr);
    if (!r)
        goto out_http;
    if (kb_stop_signals(&stop, "route",
                        "the open Kafka transaction is aborted by the next owner of its "
                        "partitions, which routes those events again; none is lost or "
                        "delivered twice",
                        errstr, sizeof errstr)) {
        kb_router_destroy(r);
        goto out_http;
    }
    kb_metrics_set_ready(1);
    kb_cmd_reload_signal(&reload);
    kb_err_t err = kb_router_run(r, &stop);
    const struct kb_route_stats *st = kb_router_stats(r);
    KB_LOG_INFO("route", "router stopped",
                "consumed=%llu delivered=%llu filtered=%llu dead_letters=%llu duplicates=%llu "
                "transactions=%llu aborts=%llu",
                (unsigned long long)st->consumed, (unsigned long long)st->delivered,
                (unsigned long long)st->filtered, (unsigned long long)st->dead_letters,
                (unsigned long long)st->duplicates, (unsigned long long)st->transactions,
                (unsigned long long)st->aborts);
    kb_router_destroy(r);
    rc = err ? 1 : 0;
    errstr[0] = '\0';
out_http:
    if (rc && errstr[0])
        fprintf(stderr, "error: %s\n", errstr);
    /* Handlers and streams first, then what they use. */
    kb_http_stop(metrics);
    kb_http_stop(admin_http);
    kb_dashboard_destroy(dash);
    kb_admin_destroy(admin);
    kb_http_destroy(metrics);
    kb_http_destroy(admin_http);
    kb_schemas_destroy(schemas);
out_key:
    free(key);
out_opts:
    kb_kafka_opts_fini(&kopts);
    return rc;
}
