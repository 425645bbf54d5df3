/* SPDX-License-Identifier: EUPL-1.2 */
/* adapter.c - shared option handling of the adapters (see adapter.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "adapter_metrics.h"
#include "ketenbus/check.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/event.h"
#include "ketenbus/log.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

const char kb_adapter_common_help[] =
    "Kafka and shared options:\n"
    "  -b, --bootstrap HOST:PORT[,..]  Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V        any librdkafka property, e.g. security.protocol=SSL\n"
    "      --kafka-config FILE         properties file (key=value) for TLS/SASL settings\n"
    "      --subject-key-file FILE     secret (>= 16 bytes) for subject pseudonyms\n"
    "      --schemas DIR               schema folder (default: the source tree's schemas/)\n"
    "      --spool DIR                 spool folder (in/ done/ quarantine/ out/)\n"
    "      --oin OIN                   OIN of the publishing organisation (ce_source)\n"
    "      --once                      process what is waiting, then exit\n"
    "      --metrics-addr HOST:PORT    serve /metrics, /healthz and /readyz (port 0: any;\n"
    "                                  printed as metrics_port=N)\n"
    "  -h, --help                      this help\n" KB_STOP_HELP;

void kb_adapter_args_init(struct kb_adapter_args *a)
{
    memset(a, 0, sizeof *a);
    kb_kafka_opts_init(&a->kafka);
    a->schemas_dir = getenv("KB_SCHEMAS") ? getenv("KB_SCHEMAS") : KB_SCHEMA_DIR;
    /* A fictitious OIN: real deployments must set their own. */
    a->oin = "00000099999999999000";
}

void kb_adapter_args_fini(struct kb_adapter_args *a)
{
    kb_adapter_metrics_stop();
    kb_kafka_opts_fini(&a->kafka);
}

int kb_adapter_common_opt(struct kb_adapter_args *a, int opt, const char *arg)
{
    char errstr[512];
    switch (opt) {
    case 'b':
    case 'X':
    case KB_OPT_KAFKA_CONFIG:
        if (kb_kafka_opts_arg(&a->kafka, opt == KB_OPT_KAFKA_CONFIG ? 'F' : opt, arg, errstr,
                              sizeof errstr))
            goto bad;
        return 1;
    case KB_OPT_SUBJECT_KEY:
        a->subject_key_file = arg;
        return 1;
    case KB_OPT_SCHEMAS:
        a->schemas_dir = arg;
        return 1;
    case KB_OPT_SPOOL:
        a->spool_dir = arg;
        return 1;
    case KB_OPT_ONCE:
        a->once = 1;
        return 1;
    case KB_OPT_METRICS_ADDR:
        a->metrics_addr = arg;
        return 1;
    case KB_OPT_OIN:
        if (strlen(arg) != 20 || strspn(arg, "0123456789") != 20) {
            snprintf(errstr, sizeof errstr, "--oin must be 20 digits");
            goto bad;
        }
        a->oin = arg;
        return 1;
    }
    return 0;
bad:
    fprintf(stderr, "error: %s\n", errstr);
    return -1;
}

int kb_adapter_idle_exit_opt(const char *arg, int *ms)
{
    char errstr[256];
    long long n = 0;
    if (kb_cli_long("--idle-exit", arg, 1, KB_ADAPTER_IDLE_EXIT_MAX_MS, &n, errstr,
                    sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 2;
    }
    *ms = (int)n;
    return 0;
}

void kb_adapter_source(const struct kb_adapter_args *a, const char *system, char *out,
                       size_t out_size)
{
    snprintf(out, out_size, "urn:nld:oin:%s:systeem:%s", a->oin, system);
}

/* Append @p s to out[*len..] percent-encoded: unreserved characters and
 * those in @p keep stay, every other byte becomes %XX. -1 when it does not
 * fit (out is then cut, the caller clears it). */
static int uri_put(char *out, size_t cap, size_t *len, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("-._~", c) || strchr(keep, c);
        if (*len + (plain ? 1 : 3) >= cap)
            return -1;
        if (plain) {
            out[(*len)++] = (char)c;
        } else {
            out[(*len)++] = '%';
            out[(*len)++] = hex[c >> 4];
            out[(*len)++] = hex[c & 15];
        }
    }
    out[*len] = '\0';
    return 0;
}

void kb_adapter_done_uri(const char *spool_dir, char *out, size_t out_size)
{
    char real[PATH_MAX];
    size_t len = 0;
    if (out_size < sizeof "file://")
        return;
    memcpy(out, "file://", sizeof "file://");
    len = sizeof "file://" - 1;
    if (uri_put(out, out_size, &len, realpath(spool_dir, real) ? real : spool_dir, "/") ||
        uri_put(out, out_size, &len, "/done", "/"))
        out[0] = '\0'; /* no base: every ce_dataref is left out */
}

/* Whether @p s holds a run of exactly 9 digits that passes the BSN
 * 11-proef or of exactly 10 that is a valid A-nummer: a sender may name
 * its files after the person, and the name would then travel in a header. */
int kb_adapter_name_may_hold_id(const char *s)
{
    for (const char *p = s; *p;) {
        if (*p < '0' || *p > '9') {
            p++;
            continue;
        }
        size_t n = 0;
        while (p[n] >= '0' && p[n] <= '9')
            n++;
        if ((n == 9 && kb_check_bsn(p, n)) || (n == 10 && kb_check_anummer(p, n)))
            return 1;
        p += n;
    }
    return 0;
}

int kb_adapter_dataref(const char *done_uri, const char *name, const char *fragment, char *out,
                       size_t out_size)
{
    size_t len = 0;
    if (!out_size)
        return -1;
    out[0] = '\0';
    if ((name && kb_adapter_name_may_hold_id(name)) ||
        (fragment && kb_adapter_name_may_hold_id(fragment))) {
        /* Headers carry no personal data; the payload's herkomst.sha256
         * still names the archived bytes. The name is not logged either. */
        KB_LOG_WARN("adapter", "file name may hold a BSN or A-nummer; ce_dataref left out", "%s",
                    "");
        return -1;
    }
    /* the base is a URI already, copied as it is */
    size_t bl = strlen(done_uri);
    if (!bl || bl >= out_size)
        return -1;
    memcpy(out, done_uri, bl + 1);
    len = bl;
    /* sub-delims and ':' '@' may stand in a fragment; '/' for ZIP folders */
    if ((name &&
         (uri_put(out, out_size, &len, "/", "/") || uri_put(out, out_size, &len, name, ""))) ||
        (fragment && (uri_put(out, out_size, &len, "#", "#") ||
                      uri_put(out, out_size, &len, fragment, "/=:@")))) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int kb_adapter_load(const struct kb_adapter_args *a, kb_schemas_t **schemas, uint8_t **key,
                    size_t *key_len)
{
    char errstr[512];
    if (!a->subject_key_file) {
        fprintf(stderr, "error: --subject-key-file is required\n");
        return -1;
    }
    if (kb_event_key_load(a->subject_key_file, key, key_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return -1;
    }
    *schemas = kb_schemas_load_dir(a->schemas_dir, errstr, sizeof errstr);
    if (!*schemas) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_free_key;
    }
    if (a->metrics_addr && kb_adapter_metrics_start(a->metrics_addr, errstr, sizeof errstr)) {
        fprintf(stderr, "error: metrics: %s\n", errstr);
        kb_schemas_destroy(*schemas);
        *schemas = NULL;
        goto out_free_key;
    }
    return 0;
out_free_key:
    free(*key);
    *key = NULL;
    return -1;
}

/* The shared long options followed by the command's own, in a new array. */
static struct option *all_longopts(const struct option *own)
{
    static const struct option common[] = {KB_ADAPTER_LONGOPTS};
    size_t n_common = sizeof common / sizeof common[0], n_own = 0;
    while (own && own[n_own].name)
        n_own++;
    struct option *all = calloc(n_common + n_own + 1, sizeof *all);
    if (!all)
        return NULL;
    memcpy(all, common, sizeof common);
    if (n_own)
        memcpy(all + n_common, own, n_own * sizeof *own);
    return all;
}

int kb_adapter_parse(const struct kb_adapter_cmd *c, int argc, char **argv,
                     struct kb_adapter_args *args)
{
    kb_adapter_args_init(args);
    struct option *longopts = all_longopts(c->own);
    if (!longopts) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    int opt, rc = -1;
    while (rc < 0 && (opt = getopt_long(argc, argv, KB_ADAPTER_SHORTOPTS, longopts, NULL)) != -1) {
        int r = kb_adapter_common_opt(args, opt, optarg);
        if (r < 0)
            rc = 2;
        else if (opt >= KB_OPT_FIRST_OWN && c->own_opt) {
            int own = c->own_opt(c->ctx, opt, optarg);
            if (own)
                rc = own;
        } else if (r == 0) { /* --help, or getopt's '?' (it said why) */
            fprintf(opt == 'h' ? stdout : stderr, "%s%s", c->usage, kb_adapter_common_help);
            rc = opt == 'h' ? 0 : 2;
        }
    }
    free(longopts);
    return rc;
}

int kb_adapter_cmd_start(const struct kb_adapter_cmd *c, int argc, char **argv,
                         struct kb_adapter_run *run)
{
    run->schemas = NULL;
    run->key = NULL;
    run->key_len = 0;
    int rc = kb_adapter_parse(c, argc, argv, &run->args);
    if (rc >= 0)
        return rc;
    if (!run->args.spool_dir) {
        fprintf(stderr, "error: --spool is required\n%s", c->usage);
        return 2;
    }
    char errstr[512];
    if (kb_spool_open(&run->spool, run->args.spool_dir, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }
    kb_adapter_done_uri(run->args.spool_dir, run->done_uri, sizeof run->done_uri);
    if (kb_adapter_load(&run->args, &run->schemas, &run->key, &run->key_len))
        return 1;
    return -1;
}

int kb_adapter_stop_signals(const struct kb_adapter_cmd *c)
{
    char errstr[512];
    if (kb_stop_signals(c->stop, c->comp, c->stop_effect, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return -1;
    }
    return 0;
}

void kb_adapter_cmd_end(struct kb_adapter_run *run)
{
    kb_schemas_destroy(run->schemas);
    run->schemas = NULL;
    free(run->key);
    run->key = NULL;
    kb_adapter_args_fini(&run->args);
}
