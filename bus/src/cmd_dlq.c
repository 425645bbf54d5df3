/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_dlq.c - `ketenbus dlq list|show|redrive`: inspect the dead letters in
 * <prefix>.dlq by their context headers (never by payload values) and put a
 * dead letter, or a corrected value for it, back into its original input
 * topic, where the router judges it again (its event id keeps a repeated
 * redrive from being delivered twice). The reading and redriving are the
 * library's (admin_dlq.c), shared with the router's admin API.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_int.h"
#include "cmd.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"

/* --limit: 0 prints only the count; more than this is "all" in practice. */
#define DLQ_MAX_LIMIT 1000000000

static const char usage[] =
    "usage: ketenbus dlq list [--limit N] [options]\n"
    "       ketenbus dlq show OFFSET [--partition P] [options]\n"
    "       ketenbus dlq redrive OFFSET [--partition P] [--value FILE] [options]\n"
    "\n"
    "list     one line per dead letter of <prefix>.dlq: partition/offset, stage, rule,\n"
    "         field path, byte offset, error, original topic/partition/offset, event\n"
    "         id and type (no payload values), then the count. A partition whose offsets\n"
    "         cannot be read is named on stderr, the count says \"at least ...\n"
    "         (INCOMPLETE: ...)\", and the exit status is 1 (also after 30 s without\n"
    "         progress)\n"
    "show     every header of one dead letter, and its payload's size and SHA-256\n"
    "redrive  produce the dead letter again to its original topic (header kb_topic),\n"
    "         with its original headers minus the kb_* context headers, plus\n"
    "         kb_redriven_from=<dlq topic>/<partition>/<offset>; --value FILE replaces\n"
    "         the value with a corrected one (Confluent-framed Avro bytes), also for a\n"
    "         letter kept without its value whose input retention removed (the letter's\n"
    "         CloudEvents headers go with it). Idempotent producer; waits for the\n"
    "         broker's acknowledgement.\n"
    "\n"
    "  --limit N                    list at most N dead letters, 0 to 1000000000\n"
    "                               (default: all)\n"
    "  --partition P                partition of OFFSET (default 0; 0 to 2147483647)\n"
    "  --value FILE                 corrected value for redrive\n"
    "  --topic NAME                 dead-letter topic (default <prefix>.dlq)\n"
    "  -b, --bootstrap HOST:PORT    Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V     any librdkafka property (TLS, SASL, ...)\n"
    "      --kafka-config FILE      properties file with librdkafka properties\n"
    "  -h, --help\n";

#define MAX_VALUE (16u << 20)

struct dlq_args {
    struct kb_kafka_opts kafka;
    char topic[256];
    long limit;
    int32_t partition;
    int64_t offset;
    const char *value_file;
};

static void list_line(const struct kb_dlq_letter *l)
{
    printf("%" PRId32 "/%" PRId64 " stage=%s rule=%s path=%s byte_offset=%s from=%s/%s/%s id=%s "
           "type=%s error=%s%s%s\n",
           l->partition, l->offset, l->stage, l->rule, l->field_path, l->byte_offset,
           l->from_topic, l->from_partition, l->from_offset, l->id, l->type,
           l->has_error ? "\"" : "", l->error, l->has_error ? "\"" : "");
}

struct list_ctx {
    long limit;
    uint64_t shown, total;
    char unread[200]; /* partitions whose offsets could not be read, "3, 7" */
    int n_unread;
};

static void on_unreadable(void *opaque, int32_t partition, const char *why)
{
    struct list_ctx *c = opaque;
    fprintf(stderr,
            "warning: partition %" PRId32 ": offsets could not be read (%s): its dead "
            "letters are not listed or counted\n",
            partition, why);
    size_t used = strlen(c->unread);
    if (used + 16 < sizeof c->unread)
        snprintf(c->unread + used, sizeof c->unread - used, "%s%" PRId32, used ? ", " : "",
                 partition);
    else if (!strstr(c->unread, "..."))
        snprintf(c->unread + used, sizeof c->unread - used, ", ...");
    c->n_unread++;
}

static int on_letter(void *opaque, const struct kb_dlq_letter *l)
{
    struct list_ctx *c = opaque;
    c->total++;
    if (c->limit < 0 || c->shown < (uint64_t)c->limit) {
        list_line(l);
        c->shown++;
    }
    return 0;
}

static int run_list(struct dlq_args *a)
{
    char errstr[512];
    struct list_ctx c = {.limit = a->limit};
    struct kb_dlq_read_opts ro = {.kafka = &a->kafka,
                                  .topic = a->topic,
                                  .partition = -1,
                                  .offset = -1,
                                  .unreadable = on_unreadable,
                                  .unreadable_opaque = &c};
    int complete = 1;
    if (kb_dlq_read(&ro, on_letter, &c, NULL, NULL, NULL, &complete, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }
    if (!complete && c.n_unread < 1)
        fprintf(stderr, "warning: no progress for 30 s; the list may be incomplete\n");
    /* An incomplete count must not pass for the whole one, in a script
     * neither: the line says so and the exit status is 1. */
    char incomplete[300] = "";
    if (c.n_unread)
        snprintf(incomplete, sizeof incomplete, " (INCOMPLETE: partition%s %s not read)",
                 c.n_unread > 1 ? "s" : "", c.unread);
    else if (!complete)
        snprintf(incomplete, sizeof incomplete, " (INCOMPLETE: no progress for 30 s)");
    printf("%s%" PRIu64 " dead letter(s) in %s%s%s\n", incomplete[0] ? "at least " : "", c.total,
           a->topic, c.shown < c.total ? " (more than --limit: not all shown)" : "", incomplete);
    return complete ? 0 : 1;
}

static int run_show(struct dlq_args *a)
{
    char errstr[512], text[1024];
    kb_err_t err = KB_OK;
    rd_kafka_t *rk = kb__admin_reader_new(&a->kafka, errstr, sizeof errstr);
    rd_kafka_message_t *m =
        rk ? kb__dlq_fetch(rk, a->topic, a->partition, a->offset, &err, errstr, sizeof errstr)
           : NULL;
    if (!m) {
        fprintf(stderr, "error: %s\n", errstr);
        kb__admin_reader_destroy(rk);
        return 1;
    }
    printf("dead letter %s/%" PRId32 "/%" PRId64 "\n", a->topic, m->partition, m->offset);
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &val, &len); i++) {
        kb_dlq_printable(val, len, text, sizeof text);
        printf("header %s=%s\n", name, len ? text : "");
    }
    char hex[65];
    kb__sha256_hex(m->payload, m->len, hex);
    printf("key_bytes=%zu\npayload_bytes=%zu\npayload_sha256=%s\n", m->key_len, m->len, hex);
    int32_t sid;
    const uint8_t *pl;
    size_t pl_len;
    if (m->payload && !kb_event_unframe(m->payload, m->len, &sid, &pl, &pl_len))
        printf("payload_schema_id=%" PRId32 "\n", sid);
    else
        printf("payload_schema_id=- (no Confluent framing)\n");
    rd_kafka_message_destroy(m);
    kb__admin_reader_destroy(rk);
    return 0;
}

static uint8_t *read_file(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "%s: cannot open", path);
        return NULL;
    }
    uint8_t *buf = malloc(MAX_VALUE + 1);
    size_t n = buf ? fread(buf, 1, MAX_VALUE + 1, f) : 0;
    int bad = !buf || ferror(f) || n > MAX_VALUE;
    fclose(f);
    if (bad) {
        snprintf(errstr, errstr_size, "%s: %s", path,
                 !buf ? "out of memory" : n > MAX_VALUE ? "larger than 16 MiB" : "read error");
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int run_redrive(struct dlq_args *a)
{
    char errstr[512];
    uint8_t *file_value = NULL;
    size_t value_len = 0;
    if (a->value_file && !(file_value = read_file(a->value_file, &value_len, errstr,
                                                  sizeof errstr))) {
        fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }
    struct kb_dlq_redriven r;
    kb_err_t err = kb_dlq_redrive(&a->kafka, a->topic, a->partition, a->offset, file_value,
                                  value_len, &r, errstr, sizeof errstr);
    free(file_value);
    if (err) {
        if (a->value_file && err == KB_ERR_INVALID && strstr(errstr, "Confluent-framed"))
            fprintf(stderr, "error: %s: not Confluent-framed (magic byte 0, schema id)\n",
                    a->value_file);
        else
            fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }
    printf("redriven %s -> %s/%" PRId32 "/%" PRId64 " value=%s bytes=%zu sha256=%s "
           "headers_kept=%zu\n",
           r.from, r.topic, r.partition, r.offset, r.corrected ? "corrected" : "original",
           r.bytes, r.sha256, r.headers_kept);
    return 0;
}

enum { OPT_LIMIT = 1000, OPT_PARTITION, OPT_VALUE, OPT_TOPIC, OPT_KCONF };

/* The verbs, as the bits of the set that takes an option. */
enum { VERB_LIST = 1, VERB_SHOW = 2, VERB_REDRIVE = 4 };

static const char *const verb_names[] = {"list", "show", "redrive"};

/* The verbs that take option @p opt (getopt_long's value): any other refuses
 * it, as `dlq show --limit 5` or `dlq list --partition 2` would otherwise
 * do something else than asked without a word. */
static unsigned option_takers(int opt)
{
    switch (opt) {
    case OPT_LIMIT: return VERB_LIST;
    case OPT_PARTITION: return VERB_SHOW | VERB_REDRIVE;
    case OPT_VALUE: return VERB_REDRIVE;
    default: return VERB_LIST | VERB_SHOW | VERB_REDRIVE; /* --topic, the Kafka options */
    }
}

int kb_cmd_dlq(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"partition", required_argument, NULL, OPT_PARTITION},
        {"value", required_argument, NULL, OPT_VALUE},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"bootstrap", required_argument, NULL, 'b'},
        {"kafka-property", required_argument, NULL, 'X'},
        {"kafka-config", required_argument, NULL, OPT_KCONF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct dlq_args a;
    memset(&a, 0, sizeof a);
    kb_kafka_opts_init(&a.kafka);
    kb_topic_name(a.topic, sizeof a.topic, "dlq");
    a.limit = -1;
    char errstr[512];
    int opt, rc = 2;
    const char *verb = argc >= 2 ? argv[1] : "";
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h")) {
        fputs(usage, stdout);
        rc = 0;
        goto out;
    }
    if (strcmp(verb, "list") && strcmp(verb, "show") && strcmp(verb, "redrive")) {
        fputs(usage, stderr);
        goto out;
    }
    unsigned verb_bit = !strcmp(verb, "list")   ? VERB_LIST
                        : !strcmp(verb, "show") ? VERB_SHOW
                                                : VERB_REDRIVE;
    argc--, argv++;
    int longindex = -1;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, &longindex)) != -1) {
        kb_err_t bad = KB_OK; /* a numeric option's value is a usage error */
        if (opt != 'h' && opt != '?' && !(option_takers(opt) & verb_bit)) {
            kb_cli_refuse_option("dlq", verb, argc, argv, longopts, longindex, opt,
                                 option_takers(opt), verb_names,
                                 sizeof verb_names / sizeof verb_names[0]);
            goto out;
        }
        longindex = -1;
        long long n = 0;
        switch (opt) {
        case OPT_LIMIT:
            bad = kb_cli_long("--limit", optarg, 0, DLQ_MAX_LIMIT, &n, errstr, sizeof errstr);
            a.limit = (long)n;
            break;
        case OPT_PARTITION:
            bad = kb_cli_long("--partition", optarg, 0, INT32_MAX, &n, errstr, sizeof errstr);
            a.partition = (int32_t)n;
            break;
        case OPT_VALUE: a.value_file = optarg; break;
        case OPT_TOPIC: snprintf(a.topic, sizeof a.topic, "%s", optarg); break;
        case 'b':
        case 'X':
        case OPT_KCONF: {
            kb_err_t err = kb_kafka_opts_arg(&a.kafka, opt == OPT_KCONF ? 'F' : opt, optarg,
                                             errstr, sizeof errstr);
            if (err) {
                fprintf(stderr, "error: %s\n", errstr);
                goto out;
            }
            break;
        }
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto out;
        default:
            fputs(usage, stderr);
            goto out;
        }
        if (bad) {
            fprintf(stderr, "error: %s\n", errstr);
            goto out;
        }
    }
    if (!strcmp(verb, "list")) {
        if (optind != argc) {
            fprintf(stderr, "error: dlq list takes no argument \"%s\"\n", argv[optind]);
            goto out;
        }
        rc = run_list(&a);
        goto out;
    }
    /* Strictly a number: strtoll read "" as 0, so a script's empty variable
     * redrove letter 0. */
    char nerr[160];
    long long off = -1;
    if (optind + 1 != argc ||
        kb_cli_long("OFFSET", argv[optind], 0, INT64_MAX, &off, nerr, sizeof nerr)) {
        fprintf(stderr, "error: %s needs one OFFSET (a whole number from 0)\n\n%s", verb, usage);
        goto out;
    }
    a.offset = off;
    rc = !strcmp(verb, "show") ? run_show(&a) : run_redrive(&a);
out:
    kb_kafka_opts_fini(&a.kafka);
    return rc;
}
