/* SPDX-License-Identifier: EUPL-1.2 */
/* cmd_deliver.c - `ketenbus deliver`: push one subscriber's events to its HTTPS webhook. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "deliver.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/http.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"
#include "ketenbus/serve.h"
#include "ketenbus/stop.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

/* Ranges of the numeric options. Each request in flight holds a connection
 * (a file descriptor); each pending event its message in memory. --rate
 * goes down to one request per 100 s. */
#define DELIVER_MAX_CONCURRENCY 1000
#define DELIVER_MIN_RATE        0.01
#define DELIVER_MAX_RATE        1e6
#define DELIVER_MAX_PENDING     10000000

static const char usage[] =
    "usage: ketenbus deliver --subscriber NAME --url https://... --secret-file FILE [options]\n"
    "\n"
    "Consumes $KETENBUS_TOPIC_PREFIX.out.NAME and POSTs every event to the webhook as a\n"
    "CloudEvent (HTTP binding), signed with HMAC-SHA-256: X-Ketenbus-Timestamp,\n"
    "X-Ketenbus-Signature: v1=<hex>, v2=<hex> and X-Ketenbus-Signed-Headers. v1 covers\n"
    "\"<timestamp>.<body>\"; v2 covers the timestamp, the headers a receiver acts on\n"
    "(content-type, idempotency-key and in binary mode every ce-*) and the body:\n"
    "HMAC over \"v2\\n<timestamp>\\n<signed-headers>\\n\", then \"<name>:<value>\\n\" for\n"
    "each header in the order X-Ketenbus-Signed-Headers lists it, then \"\\n\" and the\n"
    "body (values without surrounding white space). Receivers should check v2, refuse\n"
    "a request without it, and refuse a ce-* header that is not listed or comes twice\n"
    "(--signature v1 sends v1 alone, for receivers not yet updated). The webhook is\n"
    "validated first (CloudEvents OPTIONS handshake). Failed deliveries are retried with\n"
    "exponential backoff and jitter (429/503 Retry-After honoured), per key in order; the\n"
    "retry state lives in the compacted topic <prefix>.retry.NAME so restarts continue\n"
    "it. After the retry window the event goes to <prefix>.dlq.NAME with the last error;\n"
    "an answer with a permanent status (--permanent-status) sends it there at once.\n"
    "Offsets are committed only past events that were delivered (2xx) or dead-lettered.\n"
    "\n"
    "  --subscriber NAME          subscriber (names the topics and the consumer group)\n"
    "  --url URL                  https:// webhook URL\n"
    "  --secret-file FILE         HMAC key: a file of 32 or more hex digits (white\n"
    "                             space around them ignored) is the bytes they spell;\n"
    "                             any other file is the key exactly as stored, a final\n"
    "                             newline included; at least 16 bytes\n"
    "  --ca-file PEM              CA bundle that signs the webhook's certificate\n"
    "                             (default: the system store); verification is always on\n"
    "  --cert PEM, --key PEM      client certificate and key for mutual TLS\n"
    "  --mode structured|binary   CloudEvents HTTP mode (default structured)\n"
    "  --signature v1,v2|v1       signatures sent (default v1,v2; v1 alone covers no\n"
    "                             header: only while a receiver cannot read the list)\n"
    "  --concurrency N            requests in flight at most, 1 to 1000 (default 4)\n"
    "  --rate N                   requests per second at most, 0.01 to 1000000\n"
    "                             (default unlimited)\n"
    "  --retry-window DURATION    give up after this long (default 5d; s/m/h/d suffix)\n"
    "  --backoff-base DURATION    first retry delay (default 1s; ms suffix allowed)\n"
    "  --backoff-max DURATION     longest retry delay (default 1h)\n"
    "  --timeout DURATION         per request (default 10s)\n"
    "  --max-pending N            unfinished events held in memory, 1 to 10000000\n"
    "                             (default 1000): each partition may hold half an even\n"
    "                             split, the rest is shared; only a partition holding\n"
    "                             more than that (a failing key's backlog) is paused\n"
    "  --permanent-status LIST    HTTP statuses that dead-letter an event at once, comma-\n"
    "                             separated, 400 to 599, or none (default\n"
    "                             " KB_DELIVER_PERMANENT_DEFAULT "); any other failure is\n"
    "                             retried within the window\n"
    "  --origin NAME              WebHook-Request-Origin (default: the host name)\n"
    "  --no-handshake             skip the validation handshake\n"
    "  --schemas DIR|URL          schema folder (default: the source tree's schemas/), or\n"
    "                             the registry's URL: needed for a subscriber with fields\n"
    "                             or pseudonymise, whose copies carry projected schema ids\n"
    "                             the router registers there\n"
    "  --metrics-addr HOST:PORT   serve /metrics, /healthz, /readyz here (HTTP options below)\n"
    "  -b, --bootstrap HOST:PORT  Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V   any librdkafka property (TLS, SASL, ...)\n"
    "      --kafka-config FILE    properties file with librdkafka properties\n"
    "  -h, --help\n";

/* Longest duration any option takes: a year, far beyond any retry window,
 * and far from where a time plus it overflows. */
#define DELIVER_MAX_DURATION_MS (366.0 * 86400000)

/* "5d", "90s", "250ms", "2h", "10m", or plain milliseconds. -1 when bad
 * (not a number, negative, inf or nan, or above DELIVER_MAX_DURATION_MS). */
static int64_t parse_duration_ms(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0)) /* !(>=) also refuses nan */
        return -1;
    double mult = !*end || !strcmp(end, "ms") ? 1
                  : !strcmp(end, "s")         ? 1000
                  : !strcmp(end, "m")         ? 60000
                  : !strcmp(end, "h")         ? 3600000
                  : !strcmp(end, "d")         ? 86400000
                                              : -1;
    if (mult < 0 || !(v * mult <= DELIVER_MAX_DURATION_MS))
        return -1;
    return (int64_t)(v * mult);
}

enum {
    OPT_SUB = 1000,
    OPT_URL,
    OPT_SECRET,
    OPT_CA,
    OPT_CERT,
    OPT_KEY,
    OPT_MODE,
    OPT_CONC,
    OPT_RATE,
    OPT_WINDOW,
    OPT_BASE,
    OPT_MAX,
    OPT_TIMEOUT,
    OPT_PENDING,
    OPT_ORIGIN,
    OPT_NOHS,
    OPT_SCHEMAS,
    OPT_METRICS,
    OPT_KCONF,
    OPT_PERMANENT,
    OPT_SIG
};

int kb_cmd_deliver(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"subscriber", required_argument, NULL, OPT_SUB},
        {"url", required_argument, NULL, OPT_URL},
        {"secret-file", required_argument, NULL, OPT_SECRET},
        {"ca-file", required_argument, NULL, OPT_CA},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"mode", required_argument, NULL, OPT_MODE},
        {"signature", required_argument, NULL, OPT_SIG},
        {"concurrency", required_argument, NULL, OPT_CONC},
        {"rate", required_argument, NULL, OPT_RATE},
        {"retry-window", required_argument, NULL, OPT_WINDOW},
        {"backoff-base", required_argument, NULL, OPT_BASE},
        {"backoff-max", required_argument, NULL, OPT_MAX},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-pending", required_argument, NULL, OPT_PENDING},
        {"permanent-status", required_argument, NULL, OPT_PERMANENT},
        {"origin", required_argument, NULL, OPT_ORIGIN},
        {"no-handshake", no_argument, NULL, OPT_NOHS},
        {"schemas", required_argument, NULL, OPT_SCHEMAS},
        {"metrics-addr", required_argument, NULL, OPT_METRICS},
        KB_SERVE_LONGOPTS,
        {"bootstrap", required_argument, NULL, 'b'},
        {"kafka-property", required_argument, NULL, 'X'},
        {"kafka-config", required_argument, NULL, OPT_KCONF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    struct kb_deliver_opts o;
    memset(&o, 0, sizeof o);
    const char *secret_file = NULL, *schemas_dir = KB_SCHEMA_DIR, *metrics_addr = NULL;
    char errstr[512];
    uint8_t *secret = NULL;
    size_t secret_len = 0;
    kb_schemas_t *schemas = NULL;
    kb_http_t *metrics = NULL;
    struct kb_serve_opts so = {0};
    int opt, rc = 2;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, NULL)) != -1) {
        int64_t dur = 0;
        kb_err_t bad = KB_OK; /* a numeric option's value is a usage error */
        long long n = 0;
        switch (opt) {
        case OPT_SUB: o.subscriber = optarg; break;
        case OPT_URL: o.url = optarg; break;
        case OPT_SECRET: secret_file = optarg; break;
        case OPT_CA: o.ca_file = optarg; break;
        case OPT_CERT: o.cert_file = optarg; break;
        case OPT_KEY: o.key_file = optarg; break;
        case OPT_MODE:
            if (!strcmp(optarg, "structured"))
                o.mode = KB_DELIVER_STRUCTURED;
            else if (!strcmp(optarg, "binary"))
                o.mode = KB_DELIVER_BINARY;
            else {
                fprintf(stderr, "error: --mode is structured or binary\n");
                goto out;
            }
            break;
        case OPT_SIG:
            if (!strcmp(optarg, "v1,v2"))
                o.signature_v1_only = 0;
            else if (!strcmp(optarg, "v1"))
                o.signature_v1_only = 1;
            else {
                fprintf(stderr, "error: --signature is v1,v2 or v1\n");
                goto out;
            }
            break;
        case OPT_CONC:
            bad = kb_cli_long("--concurrency", optarg, 1, DELIVER_MAX_CONCURRENCY, &n, errstr,
                              sizeof errstr);
            o.concurrency = (int)n;
            break;
        case OPT_RATE:
            bad = kb_cli_double("--rate", optarg, DELIVER_MIN_RATE, DELIVER_MAX_RATE, &o.rate,
                                errstr, sizeof errstr);
            break;
        case OPT_PENDING:
            bad = kb_cli_long("--max-pending", optarg, 1, DELIVER_MAX_PENDING, &n, errstr,
                              sizeof errstr);
            o.max_pending = (int)n;
            break;
        case OPT_PERMANENT: {
            struct kb__deliver_statuses set;
            char why[256];
            bad = kb__deliver_statuses_parse(optarg, &set, why, sizeof why);
            if (bad)
                snprintf(errstr, sizeof errstr, "--permanent-status: %s", why);
            o.permanent_status = optarg;
            break;
        }
        case OPT_ORIGIN: o.origin = optarg; break;
        case OPT_NOHS: o.skip_handshake = 1; break;
        case OPT_SCHEMAS: schemas_dir = optarg; break;
        case OPT_METRICS: metrics_addr = optarg; break;
        case OPT_WINDOW:
        case OPT_BASE:
        case OPT_MAX:
        case OPT_TIMEOUT:
            dur = parse_duration_ms(optarg);
            if (dur <= 0) {
                fprintf(stderr, "error: \"%s\" is not a duration of at most a year (e.g. 500ms, "
                        "30s, 5d)\n",
                        optarg);
                goto out;
            }
            if (opt == OPT_WINDOW)
                o.retry_window_ms = dur;
            else if (opt == OPT_BASE)
                o.backoff_base_ms = dur;
            else if (opt == OPT_MAX)
                o.backoff_max_ms = dur;
            else
                o.timeout_ms = dur > 3600000 ? 3600000 : (int)dur;
            break;
        case 'b':
        case 'X':
        case OPT_KCONF: {
            kb_err_t err = kb_kafka_opts_arg(&kopts, opt == OPT_KCONF ? 'F' : opt, optarg,
                                             errstr, sizeof errstr);
            if (err) {
                fprintf(stderr, "error: %s\n", errstr);
                rc = 1;
                goto out;
            }
            break;
        }
        case 'h':
            fputs(usage, stdout);
            fputs(kb_serve_usage, stdout);
            rc = 0;
            goto out;
        default:
            if (kb_serve_opts_arg(&so, opt, optarg))
                break;
            fputs(usage, stderr);
            goto out;
        }
        if (bad) {
            fprintf(stderr, "error: %s\n", errstr);
            goto out;
        }
    }
    if (!o.subscriber || !o.url || !secret_file) {
        fprintf(stderr, "error: --subscriber, --url and --secret-file are required\n\n");
        fputs(usage, stderr);
        goto out;
    }
    rc = 1;
    /* The same loader as the subject key: >= 16 bytes, raw or hex, never logged. */
    if (kb_event_key_load(secret_file, &secret, &secret_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: secret: %s\n", errstr);
        goto out;
    }
    o.secret = secret;
    o.secret_len = secret_len;
    /* a registry URL fetches ids it has not seen, such as the projected
     * schemas the router registers for subscribers with fields */
    schemas = kb_schemas_open(schemas_dir, errstr, sizeof errstr);
    if (!schemas) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    o.schemas = schemas;
    o.kafka = &kopts;
    if (metrics_addr && !(metrics = kb_serve_start(metrics_addr, &so, errstr, sizeof errstr))) {
        fprintf(stderr, "error: metrics: %s\n", errstr);
        goto out;
    }
    kb_deliver_t *d = kb_deliver_new(&o, errstr, sizeof errstr);
    if (!d) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    static atomic_int stop;
    if (kb_stop_signals(&stop, "deliver",
                        "offsets stay before events not yet delivered: after a restart those "
                        "are posted again with the same Idempotency-Key (at least once)",
                        errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        kb_deliver_destroy(d);
        goto out;
    }
    rc = kb_deliver_run(d, &stop) ? 1 : 0;
    kb_deliver_destroy(d);
out:
    kb_http_destroy(metrics);
    kb_schemas_destroy(schemas);
    free(secret);
    kb_kafka_opts_fini(&kopts);
    return rc;
}
