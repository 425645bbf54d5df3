/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_sub.c - `ketenbus sub dry-run`: judge a proposed subscription against
 * the history in <prefix>.in.* exactly as the router would (envelope, schema,
 * validation gate, matcher with payload field filters), and print what it
 * would have received: counts per type and a few samples with field names
 * only. It reads with a group-less consumer and produces nothing; the
 * judging itself is kb_dryrun_run() (admin_dryrun.c), shared with the
 * router's admin API.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "cmd.h"
#include "ketenbus/check.h"
#include "ketenbus/admin.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"
#include "ketenbus/sub.h"
#include "ketenbus/validate.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

#define SUB_MAX_SAMPLES 1000 /* --samples: each one is printed with its field names */

static const char usage[] =
    "usage: ketenbus sub dry-run PATH --since TIME [options]\n"
    "\n"
    "Evaluates the subscription file (or folder) PATH against the events of\n"
    "<prefix>.in.* recorded since TIME, as the router would (envelope, schema,\n"
    "validation, filters, validity, follow lists), and prints per subscription\n"
    "how many events of each type it would have received and a few samples\n"
    "(event id, type, ce_time and the names of the fields it would get; never\n"
    "values). Delivers nothing and commits no offsets. TIME is RFC 3339 with its\n"
    "zone, YYYY-MM-DD (midnight UTC) or milliseconds since 1970, and is compared\n"
    "with the Kafka record timestamps.\n"
    "\n"
    "  --since TIME                 first record time to read (required)\n"
    "  --until TIME                 stop before this record time (default: the end)\n"
    "  --samples N                  samples per subscription, 0 to 1000 (default 3)\n"
    "  --subject-key-file FILE      subject key (needed for follow lists)\n"
    "  --schemas DIR|URL            schema folder or registry http://... (default: schemas/)\n"
    "  -b, --bootstrap HOST:PORT    Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V     any librdkafka property (TLS, SASL, ...)\n"
    "      --kafka-config FILE      properties file with librdkafka properties\n"
    "  -h, --help\n"
    "\n"
    "usage: ketenbus sub follow --topic NAME (--bsn N | --anummer N) [--from DATE]\n"
    "                           [--until DATE] --subject-key-file FILE [-b ...]\n"
    "       ketenbus sub follow --topic NAME --remove (--bsn N | --anummer N)\n"
    "                           --subject-key-file FILE [-b ...]\n"
    "\n"
    "Adds a subject to (or with --remove takes it off) the follow list kept in\n"
    "the compacted topic <prefix>.follow.NAME, read by subscriptions with\n"
    "`follow: {topic: NAME}`. The identifier is turned into its pseudonym with\n"
    "the subject key; only the pseudonym is written (key) with \"from,until\"\n"
    "(value; empty = open) or a tombstone. The topic is created compacted when\n"
    "missing. The identifier is never printed or logged.\n";

static void report(const struct kb_dryrun_result *r, const struct kb_subs *subs)
{
    fprintf(stderr, "read %d partition(s) of %d in %s.in.*%s\n", r->partitions_read,
            r->partitions_total, kb_topic_prefix(),
            r->complete ? "" : " (stopped before the end: counts are partial)");
    for (size_t i = 0; i < r->n_subs; i++)
        for (size_t k = 0; k < r->subs[i].n_samples; k++) {
            const struct kb_dryrun_sub_result *t = &r->subs[i];
            const struct kb_dryrun_sample *s = &t->samples[k];
            printf("sample %s id=%s type=%s time=%s fields=%s\n", subs->items[i].name, s->id,
                   s->type, s->time[0] ? s->time : "-",
                   s->field_list < t->n_field_lists ? t->field_lists[s->field_list] : "");
        }
    printf("events read=%" PRIu64 " rejected=%" PRIu64 " (envelope=%" PRIu64 " schema=%" PRIu64
           " validate=%" PRIu64 " decode=%" PRIu64 ") duplicates=%" PRIu64
           " matched_by_none=%" PRIu64 "\n",
           r->read, r->rejected, r->rej_envelope, r->rej_schema, r->rej_validate, r->rej_decode,
           r->duplicates, r->filtered);
    for (size_t i = 0; i < r->n_subs; i++) {
        const struct kb_dryrun_sub_result *t = &r->subs[i];
        printf("subscription %s events=%" PRIu64 "\n", subs->items[i].name, t->total);
        for (size_t k = 0; k < t->n_types; k++)
            printf("  type %s events=%" PRIu64 "\n", t->types[k].type, t->types[k].n);
    }
    printf("delivered: nothing (dry run)\n");
}

enum { OPT_SINCE = 1000, OPT_UNTIL, OPT_SAMPLES, OPT_KEY, OPT_SCHEMAS, OPT_KCONF };

static int dry_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"samples", required_argument, NULL, OPT_SAMPLES},
        {"subject-key-file", required_argument, NULL, OPT_KEY},
        {"schemas", required_argument, NULL, OPT_SCHEMAS},
        {"bootstrap", required_argument, NULL, 'b'},
        {"kafka-property", required_argument, NULL, 'X'},
        {"kafka-config", required_argument, NULL, OPT_KCONF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    const char *key_file = NULL, *schemas_dir = KB_SCHEMA_DIR;
    int64_t since = -1, until = INT64_MAX;
    long samples = 3;
    char errstr[512];
    int opt, rc = 2;
    struct kb_dryrun_result res;
    memset(&res, 0, sizeof res);
    kb_schemas_t *schemas = NULL;
    struct kb_subs subs = {0};
    uint8_t *key = NULL;
    size_t key_len = 0;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, NULL)) != -1) {
        kb_err_t bad = KB_OK; /* a numeric option's value is a usage error */
        long long n = 0;
        switch (opt) {
        case OPT_SINCE:
        case OPT_UNTIL:
            bad = kb_cli_time(opt == OPT_SINCE ? "--since" : "--until", optarg,
                              opt == OPT_SINCE ? &since : &until, errstr, sizeof errstr);
            break;
        case OPT_SAMPLES:
            bad = kb_cli_long("--samples", optarg, 0, SUB_MAX_SAMPLES, &n, errstr, sizeof errstr);
            samples = (long)n;
            break;
        case OPT_KEY: key_file = optarg; break;
        case OPT_SCHEMAS: schemas_dir = optarg; break;
        case 'b':
        case 'X':
        case OPT_KCONF: {
            kb_err_t err = kb_kafka_opts_arg(&kopts, opt == OPT_KCONF ? 'F' : opt, optarg,
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
    if (optind + 1 != argc || since < 0) {
        fprintf(stderr, "error: one subscription PATH and --since are required\n\n%s", usage);
        goto out;
    }
    rc = 1;
    if (key_file && kb_event_key_load(key_file, &key, &key_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    if (kb_subs_load(argv[optind], key, key_len, &subs, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    schemas = kb_schemas_open(schemas_dir, errstr, sizeof errstr);
    if (!schemas) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    char t0[40], t1[40];
    kb_event_time(since, t0);
    if (until != INT64_MAX)
        kb_event_time(until, t1);
    printf("dry run of %zu subscription(s) from %s over %s.in.* from %s until %s\n", subs.n,
           argv[optind], kb_topic_prefix(), t0, until != INT64_MAX ? t1 : "the end");
    fflush(stdout);
    struct kb_dryrun_opts dro = {.kafka = &kopts,
                                 .subs = &subs,
                                 .schemas = schemas,
                                 .since_ms = since,
                                 .until_ms = until,
                                 .max_samples = (size_t)samples,
                                 /* the operator's own run: as many as asked for */
                                 .max_samples_total = SIZE_MAX};
    if (kb_dryrun_run(&dro, &res, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    report(&res, &subs);
    rc = 0;
out:
    kb_dryrun_result_fini(&res);
    kb_schemas_destroy(schemas);
    kb_subs_fini(&subs);
    free(key);
    kb_kafka_opts_fini(&kopts);
    return rc;
}

/* Create @p topic compacted (cleanup.policy=compact) unless it exists. */
static kb_err_t ensure_compacted(rd_kafka_t *rk, const char *topic, char *errstr,
                                 size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rerr =
        rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (rerr)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "metadata: %s",
                          rd_kafka_err2str(rerr));
    int exists = md->topic_cnt == 1 && !md->topics[0].err;
    rd_kafka_metadata_destroy(md);
    if (exists)
        return KB_OK;
    static const char *const compacted[] = {"cleanup.policy", "compact", NULL};
    const struct kb_topic_spec spec = {.name = topic, .partitions = 1, .configs = compacted};
    return kb_kafka_create_topics(rk, &spec, 1, 0, 30000, errstr, errstr_size);
}

static void follow_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    *(rd_kafka_resp_err_t *)m->_private = m->err;
}

enum {
    OPT_TOPIC = 1100,
    OPT_BSN,
    OPT_ANUMMER,
    OPT_FROM,
    OPT_FUNTIL,
    OPT_REMOVE,
    OPT_FKEY,
    OPT_FKCONF
};

static int follow(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"bsn", required_argument, NULL, OPT_BSN},
        {"anummer", required_argument, NULL, OPT_ANUMMER},
        {"from", required_argument, NULL, OPT_FROM},
        {"until", required_argument, NULL, OPT_FUNTIL},
        {"remove", no_argument, NULL, OPT_REMOVE},
        {"subject-key-file", required_argument, NULL, OPT_FKEY},
        {"bootstrap", required_argument, NULL, 'b'},
        {"kafka-property", required_argument, NULL, 'X'},
        {"kafka-config", required_argument, NULL, OPT_FKCONF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    const char *name = NULL, *id = NULL, *domain = NULL, *from_s = "", *until_s = "",
               *key_file = NULL;
    int remove = 0, opt, rc = 2;
    char errstr[512];
    uint8_t *key = NULL;
    size_t key_len = 0;
    rd_kafka_t *rk = NULL;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_TOPIC: name = optarg; break;
        case OPT_BSN:
            id = optarg;
            domain = "bsn";
            break;
        case OPT_ANUMMER:
            id = optarg;
            domain = "anummer";
            break;
        case OPT_FROM: from_s = optarg; break;
        case OPT_FUNTIL: until_s = optarg; break;
        case OPT_REMOVE: remove = 1; break;
        case OPT_FKEY: key_file = optarg; break;
        case 'b':
        case 'X':
        case OPT_FKCONF:
            if (kb_kafka_opts_arg(&kopts, opt == OPT_FKCONF ? 'F' : opt, optarg, errstr,
                                  sizeof errstr)) {
                fprintf(stderr, "error: %s\n", errstr);
                goto out;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto out;
        default: fputs(usage, stderr); goto out;
        }
    }
    if (optind != argc || !name || !id || !key_file) {
        fprintf(stderr, "error: --topic, --bsn (or --anummer) and --subject-key-file are "
                        "required\n");
        goto out;
    }
    int ok = name[0] && strlen(name) <= 100 && name[0] != '.';
    for (const char *q = name; ok && *q; q++)
        ok = (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-' || *q == '_' ||
             (*q == '.' && q[1] != '.' && q[1] != '\0');
    if (!ok) {
        fprintf(stderr, "error: --topic must be 1-100 characters of a-z, 0-9, -, _ and single "
                        "dots\n");
        goto out;
    }
    /* The identifier is checked but never echoed. */
    if (!strcmp(domain, "bsn") ? !kb_check_bsn(id, strlen(id))
                               : !kb_check_anummer(id, strlen(id))) {
        fprintf(stderr, "error: --%s is not a valid %s\n", domain,
                !strcmp(domain, "bsn") ? "BSN (9 digits, 11-proef)" : "A-nummer");
        goto out;
    }
    char value[160];
    if (!remove) {
        int64_t f, u;
        int n = snprintf(value, sizeof value, "%s,%s", from_s, until_s);
        if (n < 0 || (size_t)n >= sizeof value ||
            kb_follow_parse_period(value, (size_t)n, &f, &u)) {
            fprintf(stderr, "error: --from/--until must be YYYY-MM-DD or RFC 3339, from before "
                            "until\n");
            goto out;
        }
    } else if (*from_s || *until_s) {
        fprintf(stderr, "error: --remove takes no --from/--until\n");
        goto out;
    }
    rc = 1;
    char pseudonym[KB_PSEUDONYM_LEN + 1];
    if (kb_event_key_load(key_file, &key, &key_len, errstr, sizeof errstr) ||
        kb_event_pseudonym(key, key_len, domain, id, pseudonym)) {
        fprintf(stderr, "error: subject key: %s\n", key ? "unusable" : errstr);
        goto out;
    }
    char topic[256], suffix[120];
    snprintf(suffix, sizeof suffix, "follow.%s", name);
    kb_topic_name(topic, sizeof topic, suffix);
    rd_kafka_conf_t *conf = kb_kafka_conf_new(&kopts, errstr, sizeof errstr);
    if (!conf || rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "client.id", "ketenbus-sub-follow", errstr, sizeof errstr)) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, follow_dr);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    if (ensure_compacted(rk, topic, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    rd_kafka_resp_err_t dr = RD_KAFKA_RESP_ERR__IN_PROGRESS;
    rd_kafka_resp_err_t perr = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(pseudonym, strlen(pseudonym)),
        /* parenthesised: the macro casts its arguments without parentheses */
        RD_KAFKA_V_VALUE((remove ? NULL : value), (remove ? 0 : strlen(value))),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&dr), RD_KAFKA_V_END);
    if (!perr)
        rd_kafka_flush(rk, 30000);
    if (perr || dr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "error: producing to %s: %s\n", topic,
                rd_kafka_err2str(perr ? perr
                                 : dr == RD_KAFKA_RESP_ERR__IN_PROGRESS
                                     ? RD_KAFKA_RESP_ERR__TIMED_OUT
                                     : dr));
        goto out;
    }
    if (remove)
        printf("follow: subject %s removed from %s\n", pseudonym, topic);
    else
        printf("follow: subject %s followed from %s until %s in %s\n", pseudonym,
               *from_s ? from_s : "(open)", *until_s ? until_s : "(open)", topic);
    rc = 0;
out:
    if (rk)
        rd_kafka_destroy(rk);
    free(key);
    kb_kafka_opts_fini(&kopts);
    return rc;
}

int kb_cmd_sub(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "follow"))
        return follow(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "dry-run"))
        return dry_run(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}
