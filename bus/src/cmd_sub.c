/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_sub.c - `ketenbus sub dry-run`: judge a proposed subscription against
 * the history in <prefix>.in.* exactly as the router would (envelope, schema,
 * validation gate, matcher with payload field filters), and print what it
 * would have received: counts per type and a few samples with field names
 * only. It reads with a group-less consumer and produces nothing.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <avro.h>

#include "cmd.h"
#include "idset.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"
#include "ketenbus/sub.h"
#include "ketenbus/validate.h"
#include "match.h"

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

#define MAX_TYPES 32

struct type_count {
    char type[96];
    uint64_t n;
};

struct sub_tally {
    uint64_t total;
    struct type_count types[MAX_TYPES];
    size_t n_types;
    size_t n_samples;
};

struct gate {
    int32_t schema_id;
    kb_validator_t *v; /* NULL: the schema does not compile; its events are rejected */
};

struct dry {
    const struct kb_subs *subs;
    kb_matcher_t *matcher;
    kb_schemas_t *schemas;
    struct gate *gates;
    size_t n_gates;
    kb_idset_t *seen;
    struct sub_tally *tally;
    size_t max_samples;
    uint64_t read, rejected, duplicates, filtered;
    uint64_t rej_envelope, rej_schema, rej_validate, rej_decode;
};


static const kb_validator_t *gate_of(struct dry *d, const struct kb_schema *schema)
{
    for (size_t i = 0; i < d->n_gates; i++)
        if (d->gates[i].schema_id == schema->id)
            return d->gates[i].v;
    char errstr[256];
    kb_validator_t *v = kb_validate_compile(schema->json, NULL, errstr, sizeof errstr);
    if (!v)
        fprintf(stderr, "warning: schema %" PRId32 " does not compile (%s): its events count "
                        "as rejected\n", schema->id, errstr);
    struct gate *ng = realloc(d->gates, (d->n_gates + 1) * sizeof *ng);
    if (!ng) {
        kb_validate_destroy(v);
        return NULL;
    }
    d->gates = ng;
    d->gates[d->n_gates++] = (struct gate){schema->id, v};
    return v;
}

/* The field names a subscriber would receive: its field list (pseudonymised
 * ones marked), or every top-level field of the schema. Names only. */
static void print_fields(const struct kb_sub *sub, const struct kb_schema *schema)
{
    const char *sep = "";
    if (sub->n_fields) {
        for (size_t i = 0; i < sub->n_fields; i++, sep = ",")
            printf("%s%s", sep, sub->fields[i]);
    } else {
        size_t n = avro_schema_record_size(schema->avro);
        for (size_t i = 0; i < n; i++, sep = ",")
            printf("%s%s", sep, avro_schema_record_field_name(schema->avro, (int)i));
    }
    for (size_t i = 0; i < sub->n_pseudonymise; i++)
        printf("%s%s", i ? "," : " pseudonymised=", sub->pseudonymise[i]);
}

static void tally_hit(struct dry *d, size_t si, const struct kb_event_attrs *attrs,
                      const struct kb_schema *schema)
{
    struct sub_tally *t = &d->tally[si];
    t->total++;
    size_t k = 0;
    while (k < t->n_types && strcmp(t->types[k].type, attrs->type) != 0)
        k++;
    if (k == t->n_types && k < MAX_TYPES) {
        snprintf(t->types[k].type, sizeof t->types[k].type, "%s", attrs->type);
        t->n_types++;
    }
    if (k < MAX_TYPES)
        t->types[k].n++;
    if (t->n_samples < d->max_samples) {
        t->n_samples++;
        const struct kb_sub *sub = &d->subs->items[si];
        printf("sample %s id=%s type=%s time=%s fields=", sub->name, attrs->id, attrs->type,
               attrs->time[0] ? attrs->time : "-");
        print_fields(sub, schema);
        putchar('\n');
    }
}

/* Judge one input event: the router's steps, minus producing. */
static void judge(struct dry *d, const rd_kafka_message_t *m)
{
    d->read++;
    struct kb_header hdrs[32];
    size_t n = kb_kafka_headers(m, hdrs, 32);
    struct kb_event_attrs attrs;
    int32_t schema_id;
    const uint8_t *payload;
    size_t plen;
    if (kb_event_attrs_from_headers(hdrs, n, &attrs, NULL, 0) || !m->payload ||
        kb_event_unframe(m->payload, m->len, &schema_id, &payload, &plen)) {
        d->rejected++, d->rej_envelope++;
        return;
    }
    const struct kb_schema *schema = kb_schemas_by_id(d->schemas, schema_id);
    if (!schema || strcmp(schema->type, attrs.type) != 0) {
        d->rejected++, d->rej_schema++;
        return;
    }
    const kb_validator_t *v = gate_of(d, schema);
    if (!v || kb_validate(v, payload, plen, NULL) != KB_OK) {
        d->rejected++, d->rej_validate++;
        return;
    }
    /* Like the router, an id seen before is a duplicate (only valid events
     * are remembered, so a corrected redrive counts once). */
    uint64_t idh = kb__idset_hash(attrs.id);
    if (kb__idset_contains(d->seen, idh)) {
        d->duplicates++;
        return;
    }
    kb__idset_add(d->seen, idh);
    int64_t time_ms;
    if (!attrs.time[0] || kb_parse_time(attrs.time, &time_ms)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    struct kb_payload_view pv = {schema, payload, plen, 0, 0, {0}};
    const struct kb_sub *hits[64];
    size_t nhits = kb_matcher_match(d->matcher, &attrs, time_ms, kb_payload_field, &pv, hits, 64);
    kb_payload_view_fini(&pv);
    if (pv.failed) {
        d->rejected++, d->rej_decode++;
        return;
    }
    if (!nhits)
        d->filtered++;
    for (size_t i = 0; i < nhits; i++)
        tally_hit(d, (size_t)(hits[i] - d->subs->items), &attrs, schema);
}

/* Offsets of every partition of the input topics at @p ms (or the end when
 * @p ms is INT64_MAX) into @p parts, which lists them. */
static kb_err_t offsets_at(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int64_t ms,
                           char *errstr, size_t errstr_size)
{
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            rk, parts->elems[i].topic, parts->elems[i].partition, &lo, &hi, 10000);
        if (e)
            return kb_err_set(kb_kafka_err(e), errstr, errstr_size, "watermarks of %s [%" PRId32
                              "]: %s", parts->elems[i].topic, parts->elems[i].partition,
                              rd_kafka_err2str(e));
        parts->elems[i].offset = ms == INT64_MAX ? hi : ms;
    }
    if (ms == INT64_MAX)
        return KB_OK;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, parts, 10000);
    if (!e)
        for (int i = 0; i < parts->cnt; i++) {
            /* No record at or after ms: the partition's end. */
            if (parts->elems[i].err || parts->elems[i].offset < 0) {
                int64_t lo, h;
                rd_kafka_query_watermark_offsets(rk, parts->elems[i].topic,
                                                 parts->elems[i].partition, &lo, &h, 10000);
                parts->elems[i].offset = h;
                parts->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
            }
        }
    if (e)
        return kb_err_set(kb_kafka_err(e), errstr, errstr_size, "offsets_for_times: %s",
                          rd_kafka_err2str(e));
    return KB_OK;
}

/* Every partition of the topics named "<prefix>.in.*". */
static rd_kafka_topic_partition_list_t *input_partitions(rd_kafka_t *rk, char *errstr,
                                                         size_t errstr_size)
{
    char pfx[160];
    kb_topic_name(pfx, sizeof pfx, "in.");
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (e) {
        kb_err_set(kb_kafka_err(e), errstr, errstr_size, "metadata: %s", rd_kafka_err2str(e));
        return NULL;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    for (int t = 0; t < md->topic_cnt; t++) {
        if (strncmp(md->topics[t].topic, pfx, strlen(pfx)) != 0 || md->topics[t].err)
            continue;
        for (int p = 0; p < md->topics[t].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, md->topics[t].topic,
                                              md->topics[t].partitions[p].id);
    }
    rd_kafka_metadata_destroy(md);
    return parts;
}

/* Read [since, until) of every input partition and judge each event. */
static kb_err_t scan(struct dry *d, rd_kafka_t *rk, int64_t since, int64_t until,
                     char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *start = input_partitions(rk, errstr, errstr_size);
    if (!start)
        return KB_ERR_KAFKA;
    rd_kafka_topic_partition_list_t *end = rd_kafka_topic_partition_list_copy(start);
    kb_err_t err = offsets_at(rk, start, since, errstr, errstr_size);
    if (!err)
        err = offsets_at(rk, end, until, errstr, errstr_size);
    if (err)
        goto out;
    /* Partitions with nothing to read are left out; the rest are done when
     * the position reaches the end offset or the partition's (committed) end. */
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(start->cnt);
    for (int i = 0; i < start->cnt; i++)
        if (start->elems[i].offset < end->elems[i].offset)
            rd_kafka_topic_partition_list_add(assign, start->elems[i].topic,
                                              start->elems[i].partition)->offset =
                start->elems[i].offset;
    int open = assign->cnt;
    fprintf(stderr, "reading %d partition(s) of %d in %s.in.*\n", open, start->cnt,
            kb_topic_prefix());
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, assign);
    rd_kafka_topic_partition_list_destroy(assign);
    if (e) {
        err = kb_err_set(kb_kafka_err(e), errstr, errstr_size, "assign: %s", rd_kafka_err2str(e));
        goto out;
    }
    int idle = 0;
    while (open > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) {
            /* Partition EOF is reported at the last stable offset; an end
             * beyond it (an open transaction) is not waited for forever. */
            if (++idle >= 60) {
                fprintf(stderr, "warning: no progress for 30 s; stopping with %d partition(s) "
                                "not at their end\n", open);
                break;
            }
            continue;
        }
        idle = 0;
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : NULL;
        rd_kafka_topic_partition_t *ep =
            topic ? rd_kafka_topic_partition_list_find(end, topic, m->partition) : NULL;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (ep && ep->offset >= 0) {
                ep->offset = -1; /* done */
                open--;
            }
        } else if (m->err) {
            err = kb_err_set(kb_kafka_err(m->err), errstr, errstr_size, "consume: %s",
                             rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        } else if (ep && ep->offset >= 0) {
            if (m->offset < ep->offset)
                judge(d, m);
            if (m->offset + 1 >= ep->offset) {
                ep->offset = -1;
                open--;
            }
        }
        rd_kafka_message_destroy(m);
    }
out:
    rd_kafka_topic_partition_list_destroy(start);
    rd_kafka_topic_partition_list_destroy(end);
    return err;
}

static void report(const struct dry *d)
{
    printf("events read=%" PRIu64 " rejected=%" PRIu64 " (envelope=%" PRIu64 " schema=%" PRIu64
           " validate=%" PRIu64 " decode=%" PRIu64 ") duplicates=%" PRIu64
           " matched_by_none=%" PRIu64 "\n",
           d->read, d->rejected, d->rej_envelope, d->rej_schema, d->rej_validate, d->rej_decode,
           d->duplicates, d->filtered);
    for (size_t i = 0; i < d->subs->n; i++) {
        const struct sub_tally *t = &d->tally[i];
        printf("subscription %s events=%" PRIu64 "\n", d->subs->items[i].name, t->total);
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
    struct dry d;
    memset(&d, 0, sizeof d);
    struct kb_subs subs = {0};
    uint8_t *key = NULL;
    size_t key_len = 0;
    rd_kafka_t *rk = NULL;
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
    d.subs = &subs;
    d.max_samples = (size_t)samples;
    d.schemas = kb_schemas_open(schemas_dir, errstr, sizeof errstr);
    d.matcher = kb_matcher_new(&subs);
    d.seen = kb__idset_new(1u << 20);
    d.tally = calloc(subs.n ? subs.n : 1, sizeof *d.tally);
    if (!d.schemas || !d.matcher || !d.seen || !d.tally) {
        fprintf(stderr, "error: %s\n", d.schemas ? "out of memory" : errstr);
        goto out;
    }
    rd_kafka_conf_t *conf = kb_kafka_conf_new(&kopts, errstr, sizeof errstr);
    if (!conf) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    /* librdkafka's assign() needs a group.id, but the group is never
     * joined (no subscribe) and nothing is committed: it stays empty. */
    char gid[200];
    snprintf(gid, sizeof gid, "%s.tools.%ld", kb_topic_prefix(), (long)getpid());
    if (rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "group.id", gid, errstr, sizeof errstr)) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    char t0[40], t1[40];
    kb_event_time(since, t0);
    if (until != INT64_MAX)
        kb_event_time(until, t1);
    printf("dry run of %zu subscription(s) from %s over %s.in.* from %s until %s\n", subs.n,
           argv[optind], kb_topic_prefix(), t0, until != INT64_MAX ? t1 : "the end");
    if (scan(&d, rk, since, until, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    report(&d);
    rc = 0;
out:
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    for (size_t i = 0; i < d.n_gates; i++)
        kb_validate_destroy(d.gates[i].v);
    free(d.gates);
    free(d.tally);
    kb__idset_destroy(d.seen);
    kb_matcher_destroy(d.matcher);
    kb_schemas_destroy(d.schemas);
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
