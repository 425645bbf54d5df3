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

#include "cmd.h"
#include "ketenbus/admin.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"
#include "ketenbus/sub.h"
#include "ketenbus/validate.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

static const char usage[] =
    "usage: ketenbus sub dry-run PATH --since TIME [options]\n"
    "\n"
    "Evaluates the subscription file (or folder) PATH against the events of\n"
    "<prefix>.in.* recorded since TIME, as the router would (envelope, schema,\n"
    "validation, filters, validity, follow lists), and prints per subscription\n"
    "how many events of each type it would have received and a few samples\n"
    "(event id, type, ce_time and the names of the fields it would get; never\n"
    "values). Delivers nothing and commits no offsets. TIME is RFC 3339 or\n"
    "YYYY-MM-DD and is compared with the Kafka record timestamps.\n"
    "\n"
    "  --since TIME                 first record time to read (required)\n"
    "  --until TIME                 stop before this record time (default: the end)\n"
    "  --samples N                  samples per subscription (default 3)\n"
    "  --subject-key-file FILE      subject key (needed for follow lists)\n"
    "  --schemas DIR|URL            schema folder or registry http://... (default: schemas/)\n"
    "  -b, --bootstrap HOST:PORT    Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V     any librdkafka property (TLS, SASL, ...)\n"
    "      --kafka-config FILE      properties file with librdkafka properties\n"
    "  -h, --help\n";

static void report(const struct kb_dryrun_result *r, const struct kb_subs *subs)
{
    fprintf(stderr, "read %d partition(s) of %d in %s.in.*%s\n", r->partitions_read,
            r->partitions_total, kb_topic_prefix(),
            r->complete ? "" : " (stopped before the end: counts are partial)");
    for (size_t i = 0; i < r->n_subs; i++)
        for (size_t k = 0; k < r->subs[i].n_samples; k++) {
            const struct kb_dryrun_sample *s = &r->subs[i].samples[k];
            printf("sample %s id=%s type=%s time=%s fields=%s\n", subs->items[i].name, s->id,
                   s->type, s->time[0] ? s->time : "-", s->fields ? s->fields : "");
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
    const char *since_s = NULL, *until_s = NULL, *key_file = NULL, *schemas_dir = KB_SCHEMA_DIR;
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
        switch (opt) {
        case OPT_SINCE: since_s = optarg; break;
        case OPT_UNTIL: until_s = optarg; break;
        case OPT_SAMPLES: samples = strtol(optarg, NULL, 10); break;
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
    }
    int64_t since, until = INT64_MAX;
    if (optind + 1 != argc || !since_s) {
        fprintf(stderr, "error: one subscription PATH and --since are required\n\n%s", usage);
        goto out;
    }
    if (kb_parse_time(since_s, &since) || (until_s && kb_parse_time(until_s, &until)) ||
        samples < 0 || samples > 1000) {
        fprintf(stderr, "error: --since/--until need RFC 3339 or YYYY-MM-DD; --samples 0..1000\n");
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
    struct kb_dryrun_opts dro = {.kafka = &kopts, .subs = &subs, .schemas = schemas,
                                 .since_ms = since, .until_ms = until,
                                 .max_samples = (size_t)samples};
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

int kb_cmd_sub(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "dry-run"))
        return dry_run(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}
