/* SPDX-License-Identifier: EUPL-1.2 */
/* cmd_route.c - `ketenbus route`: run one routing-core instance. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/http.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"
#include "ketenbus/route.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

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
    "  --audit-signing-key FILE     Ed25519 key (ketenbus audit keygen) for signed\n"
    "                               checkpoints of the audit trail\n"
    "  --checkpoint-every N         records per chain between checkpoints (default 1000)\n"
    "  --checkpoint-ms MS           or after this long with new records (default 60000)\n"
    "  --metrics-addr HOST:PORT     serve /metrics (Prometheus), /healthz, /readyz\n"
    "  --no-audit                   no audit trail (benchmarks only: conservation is\n"
    "                               then unrecorded)\n"
    "  --instance NAME              unique per instance; names the transactional.id\n"
    "                               (default: the host name)\n"
    "  --group ID                   consumer group (default ketenbus-route)\n"
    "  --batch N                    events per transaction (default 500)\n"
    "  --dedup-window N             event ids remembered per input partition (default 100000)\n"
    "  -b, --bootstrap HOST:PORT    Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V     any librdkafka property (TLS, SASL, ...)\n"
    "      --kafka-config FILE      properties file with librdkafka properties\n"
    "  -h, --help\n";

enum { OPT_METRICS = 989, OPT_NOAUDIT = 990, OPT_AKEY, OPT_CPN, OPT_CPMS, OPT_KEY = 999, OPT_SUBS = 1000, OPT_SCHEMAS, OPT_INSTANCE, OPT_GROUP, OPT_BATCH, OPT_WINDOW, OPT_KCONF };

int kb_cmd_route(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"subscriptions", required_argument, NULL, OPT_SUBS},
        {"subject-key-file", required_argument, NULL, OPT_KEY},
        {"audit-signing-key", required_argument, NULL, OPT_AKEY},
        {"checkpoint-every", required_argument, NULL, OPT_CPN},
        {"checkpoint-ms", required_argument, NULL, OPT_CPMS},
        {"no-audit", no_argument, NULL, OPT_NOAUDIT},
        {"metrics-addr", required_argument, NULL, OPT_METRICS},
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
    const char *metrics_addr = NULL;
    struct kb_route_opts ro;
    memset(&ro, 0, sizeof ro);
    char host[128] = "0";
    gethostname(host, sizeof host - 1);
    ro.instance = host;
    char errstr[512];
    int opt, rc = 1;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_SUBS: subs_path = optarg; break;
        case OPT_KEY: key_file = optarg; break;
        case OPT_AKEY: ro.audit_signing_key_file = optarg; break;
        case OPT_CPN: ro.audit_checkpoint_every = (uint32_t)strtoul(optarg, NULL, 10); break;
        case OPT_CPMS: ro.audit_checkpoint_ms = atoi(optarg); break;
        case OPT_NOAUDIT: ro.no_audit = 1; break;
        case OPT_METRICS: metrics_addr = optarg; break;
        case OPT_SCHEMAS: schemas_dir = optarg; break;
        case OPT_INSTANCE: ro.instance = optarg; break;
        case OPT_GROUP: ro.group_id = optarg; break;
        case OPT_BATCH: ro.batch_max = atoi(optarg); break;
        case OPT_WINDOW: ro.dedup_window = (size_t)strtoull(optarg, NULL, 10); break;
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
            rc = 0;
            goto out_opts;
        default:
            fputs(usage, stderr);
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
    struct kb_http *metrics = NULL;
    if (metrics_addr && !(metrics = kb_metrics_serve(metrics_addr, errstr, sizeof errstr))) {
        fprintf(stderr, "error: metrics: %s\n", errstr);
        goto out_schemas;
    }
    kb_router_t *r = kb_router_new(&ro, errstr, sizeof errstr);
    if (!r) {
        fprintf(stderr, "error: %s\n", errstr);
        kb_http_destroy(metrics);
        goto out_schemas;
    }
    kb_metrics_set_ready(1);
    kb_cmd_signals(&stop);
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
    kb_http_destroy(metrics);
    rc = err ? 1 : 0;
out_schemas:
    kb_schemas_destroy(schemas);
out_key:
    free(key);
out_opts:
    kb_kafka_opts_fini(&kopts);
    return rc;
}
