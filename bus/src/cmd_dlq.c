/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_dlq.c - `ketenbus dlq list|show|redrive`: inspect the dead letters in
 * <prefix>.dlq by their context headers (never by payload values) and put a
 * dead letter, or a corrected value for it, back into its original input
 * topic, where the router judges it again (its event id keeps a repeated
 * redrive from being delivered twice).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cmd.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"

static const char usage[] =
    "usage: ketenbus dlq list [--limit N] [options]\n"
    "       ketenbus dlq show OFFSET [--partition P] [options]\n"
    "       ketenbus dlq redrive OFFSET [--partition P] [--value FILE] [options]\n"
    "\n"
    "list     one line per dead letter of <prefix>.dlq: partition/offset, stage, rule,\n"
    "         field path, byte offset, error, original topic/partition/offset, event\n"
    "         id and type (no payload values)\n"
    "show     every header of one dead letter, and its payload's size and SHA-256\n"
    "redrive  produce the dead letter again to its original topic (header kb_topic),\n"
    "         with its original headers minus the kb_* context headers, plus\n"
    "         kb_redriven_from=<dlq topic>/<partition>/<offset>; --value FILE replaces\n"
    "         the value with a corrected one (Confluent-framed Avro bytes). Idempotent\n"
    "         producer; waits for the broker's acknowledgement.\n"
    "\n"
    "  --limit N                    list at most N dead letters (default: all)\n"
    "  --partition P                partition of OFFSET (default 0)\n"
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

/* A header's value, printable: control and non-ASCII bytes as \xNN, cut at
 * 200 bytes. Missing headers print as "-". */
static void put_value(FILE *out, const void *val, size_t len, int present)
{
    if (!present) {
        fputc('-', out);
        return;
    }
    const unsigned char *p = val;
    size_t n = len > 200 ? 200 : len;
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            fputc(p[i], out);
        else
            fprintf(out, "\\x%02x", p[i]);
    }
    if (len > n)
        fputs("...", out);
}

static void put_header(FILE *out, rd_kafka_headers_t *h, const char *name, int quoted)
{
    const void *val = NULL;
    size_t len = 0;
    int present = h && rd_kafka_header_get_last(h, name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (quoted && present)
        fputc('"', out);
    put_value(out, val, len, present && val && len); /* empty prints as "-" */
    if (quoted && present)
        fputc('"', out);
}

static rd_kafka_t *consumer_new(const struct dlq_args *a, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = kb_kafka_conf_new(&a->kafka, errstr, errstr_size);
    if (!conf)
        return NULL;
    /* librdkafka's assign() needs a group.id, but the group is never
     * joined (no subscribe) and nothing is committed: it stays empty. */
    char gid[200];
    snprintf(gid, sizeof gid, "%s.tools.%ld", kb_topic_prefix(), (long)getpid());
    if (rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "group.id", gid, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

static void consumer_destroy(rd_kafka_t *rk)
{
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
}

static void list_line(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    printf("%" PRId32 "/%" PRId64 " stage=", m->partition, m->offset);
    put_header(stdout, h, "kb_stage", 0);
    fputs(" rule=", stdout);
    put_header(stdout, h, "kb_rule", 0);
    fputs(" path=", stdout);
    put_header(stdout, h, "kb_field_path", 0);
    fputs(" byte_offset=", stdout);
    put_header(stdout, h, "kb_byte_offset", 0);
    fputs(" from=", stdout);
    put_header(stdout, h, "kb_topic", 0);
    fputc('/', stdout);
    put_header(stdout, h, "kb_partition", 0);
    fputc('/', stdout);
    put_header(stdout, h, "kb_offset", 0);
    fputs(" id=", stdout);
    put_header(stdout, h, "ce_id", 0);
    fputs(" type=", stdout);
    put_header(stdout, h, "ce_type", 0);
    fputs(" error=", stdout);
    put_header(stdout, h, "kb_error", 1);
    fputc('\n', stdout);
}

static int run_list(struct dlq_args *a)
{
    char errstr[512];
    int rc = 1;
    rd_kafka_t *rk = consumer_new(a, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, a->topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "error: dead-letter topic %s: %s\n", a->topic,
                rd_kafka_err2str(e ? e : md->topic_cnt ? md->topics[0].err
                                                       : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < md->topics[0].partition_cnt; p++) {
        int64_t lo, hi;
        int32_t id = md->topics[0].partitions[p].id;
        if (rd_kafka_query_watermark_offsets(rk, a->topic, id, &lo, &hi, 10000) || lo >= hi)
            continue;
        rd_kafka_topic_partition_list_add(parts, a->topic, id)->offset = lo;
    }
    int open = parts->cnt;
    e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        fprintf(stderr, "error: assign: %s\n", rd_kafka_err2str(e));
        goto out;
    }
    uint64_t shown = 0, total = 0;
    int idle = 0;
    while (open > 0 && idle < 60) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) {
            idle++;
            continue;
        }
        idle = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            open--;
        } else if (m->err) {
            fprintf(stderr, "error: consume: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        } else {
            total++;
            if (a->limit < 0 || shown < (uint64_t)a->limit) {
                list_line(m);
                shown++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (open > 0)
        fprintf(stderr, "warning: no progress for 30 s; the list may be incomplete\n");
    printf("%" PRIu64 " dead letter(s) in %s%s\n", total, a->topic,
           shown < total ? " (more than --limit: not all shown)" : "");
    rc = 0;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    consumer_destroy(rk);
    return rc;
}

/* The committed message at partition/offset of the DLQ, or NULL (errstr says why). */
static rd_kafka_message_t *fetch_one(rd_kafka_t *rk, const struct dlq_args *a, char *errstr,
                                     size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, a->topic, a->partition)->offset = a->offset;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        snprintf(errstr, errstr_size, "assign %s [%" PRId32 "]: %s", a->topic, a->partition,
                 rd_kafka_err2str(e));
        return NULL;
    }
    for (int idle = 0; idle < 40;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 250);
        if (!m) {
            idle++;
            continue;
        }
        if (!m->err && m->offset == a->offset)
            return m;
        if (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* Past it (a transaction marker or an aborted record), or at the end. */
            snprintf(errstr, errstr_size, "no committed dead letter at %s [%" PRId32 "] offset %"
                     PRId64, a->topic, a->partition, a->offset);
        } else {
            snprintf(errstr, errstr_size, "consume %s [%" PRId32 "]: %s", a->topic, a->partition,
                     rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        return NULL;
    }
    snprintf(errstr, errstr_size, "no answer for %s [%" PRId32 "] offset %" PRId64 " in 10 s",
             a->topic, a->partition, a->offset);
    return NULL;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data ? data : "", len, md, &n, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int run_show(struct dlq_args *a)
{
    char errstr[512];
    rd_kafka_t *rk = consumer_new(a, errstr, sizeof errstr);
    rd_kafka_message_t *m = rk ? fetch_one(rk, a, errstr, sizeof errstr) : NULL;
    if (!m) {
        fprintf(stderr, "error: %s\n", errstr);
        consumer_destroy(rk);
        return 1;
    }
    printf("dead letter %s/%" PRId32 "/%" PRId64 "\n", a->topic, m->partition, m->offset);
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &val, &len); i++) {
        printf("header %s=", name);
        put_value(stdout, val, len, 1);
        putchar('\n');
    }
    char hex[65];
    sha256_hex(m->payload, m->len, hex);
    printf("key_bytes=%zu\npayload_bytes=%zu\npayload_sha256=%s\n", m->key_len, m->len, hex);
    int32_t sid;
    const uint8_t *pl;
    size_t pl_len;
    if (m->payload && !kb_event_unframe(m->payload, m->len, &sid, &pl, &pl_len))
        printf("payload_schema_id=%" PRId32 "\n", sid);
    else
        printf("payload_schema_id=- (no Confluent framing)\n");
    rd_kafka_message_destroy(m);
    consumer_destroy(rk);
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

struct ack {
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
    int done;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct ack *ack = m->_private;
    ack->err = m->err;
    ack->partition = m->partition;
    ack->offset = m->offset;
    ack->done = 1;
}

static int run_redrive(struct dlq_args *a)
{
    char errstr[512], in_pfx[160];
    int rc = 1;
    uint8_t *file_value = NULL;
    rd_kafka_headers_t *out_h = NULL;
    rd_kafka_t *producer = NULL;
    rd_kafka_t *rk = consumer_new(a, errstr, sizeof errstr);
    rd_kafka_message_t *m = rk ? fetch_one(rk, a, errstr, sizeof errstr) : NULL;
    if (!m) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    rd_kafka_headers_t *h = NULL;
    rd_kafka_message_headers(m, &h);
    const void *tv = NULL;
    size_t tlen = 0;
    char topic[256];
    if (!h || rd_kafka_header_get_last(h, "kb_topic", &tv, &tlen) || !tv || !tlen ||
        tlen >= sizeof topic) {
        fprintf(stderr, "error: the dead letter has no kb_topic header: not from the router\n");
        goto out;
    }
    memcpy(topic, tv, tlen);
    topic[tlen] = 0;
    /* Only back into an input topic of this installation: redrive must not
     * become a way to write into a subscriber's topic. */
    kb_topic_name(in_pfx, sizeof in_pfx, "in.");
    if (strncmp(topic, in_pfx, strlen(in_pfx)) != 0) {
        fprintf(stderr, "error: original topic %s is not an input topic (%s*)\n", topic, in_pfx);
        goto out;
    }
    const void *value = m->payload;
    size_t value_len = m->len;
    if (a->value_file) {
        file_value = read_file(a->value_file, &value_len, errstr, sizeof errstr);
        if (!file_value) {
            fprintf(stderr, "error: %s\n", errstr);
            goto out;
        }
        int32_t sid;
        const uint8_t *pl;
        size_t pl_len;
        if (kb_event_unframe(file_value, value_len, &sid, &pl, &pl_len)) {
            fprintf(stderr, "error: %s: not Confluent-framed (magic byte 0, schema id)\n",
                    a->value_file);
            goto out;
        }
        value = file_value;
    }
    out_h = rd_kafka_headers_new(16);
    const char *name;
    const void *val;
    size_t len;
    size_t kept = 0;
    for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &val, &len); i++) {
        if (!strncmp(name, "kb_", 3))
            continue; /* the router's context headers describe the rejection */
        rd_kafka_header_add(out_h, name, -1, val, (ssize_t)len);
        kept++;
    }
    char from[320];
    snprintf(from, sizeof from, "%s/%" PRId32 "/%" PRId64, a->topic, m->partition, m->offset);
    rd_kafka_header_add(out_h, "kb_redriven_from", -1, from, -1);

    rd_kafka_conf_t *conf = kb_kafka_conf_new(&a->kafka, errstr, sizeof errstr);
    if (!conf || rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof errstr)) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!producer) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    struct ack ack = {0};
    rd_kafka_resp_err_t e = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(out_h), RD_KAFKA_V_OPAQUE(&ack), RD_KAFKA_V_END);
    if (e) {
        fprintf(stderr, "error: produce to %s: %s\n", topic, rd_kafka_err2str(e));
        goto out;
    }
    out_h = NULL; /* the message owns them now */
    rd_kafka_flush(producer, 30000);
    if (!ack.done || ack.err) {
        fprintf(stderr, "error: %s not acknowledged: %s\n", topic,
                ack.done ? rd_kafka_err2str(ack.err) : "timed out after 30 s");
        goto out;
    }
    char hex[65];
    sha256_hex(value, value_len, hex);
    printf("redriven %s -> %s/%" PRId32 "/%" PRId64 " value=%s bytes=%zu sha256=%s "
           "headers_kept=%zu\n",
           from, topic, ack.partition, ack.offset, a->value_file ? "corrected" : "original",
           value_len, hex, kept);
    rc = 0;
out:
    if (out_h)
        rd_kafka_headers_destroy(out_h);
    if (producer)
        rd_kafka_destroy(producer);
    if (m)
        rd_kafka_message_destroy(m);
    consumer_destroy(rk);
    free(file_value);
    return rc;
}

enum { OPT_LIMIT = 1000, OPT_PARTITION, OPT_VALUE, OPT_TOPIC, OPT_KCONF };

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
    argc--, argv++;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_LIMIT: a.limit = strtol(optarg, NULL, 10); break;
        case OPT_PARTITION: a.partition = (int32_t)strtol(optarg, NULL, 10); break;
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
    }
    if (!strcmp(verb, "list")) {
        if (optind != argc || a.value_file) {
            fputs(usage, stderr);
            goto out;
        }
        rc = run_list(&a);
        goto out;
    }
    char *end = NULL;
    if (optind + 1 != argc || (a.offset = strtoll(argv[optind], &end, 10)) < 0 || !end ||
        *end || a.partition < 0 || (a.value_file && strcmp(verb, "redrive"))) {
        fprintf(stderr, "error: %s needs one OFFSET (a number)\n\n%s", verb, usage);
        goto out;
    }
    rc = !strcmp(verb, "show") ? run_show(&a) : run_redrive(&a);
out:
    kb_kafka_opts_fini(&a.kafka);
    return rc;
}
