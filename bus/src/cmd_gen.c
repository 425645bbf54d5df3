/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_gen.c - `ketenbus gen`: synthetic traffic for tests and benchmarks.
 * Produces valid nl.brp.persoon-geboren events (fictitious children in the
 * 9999... BSN test range, parents, municipalities) straight to
 * <prefix>.in.<source>, as an adapter would: binary-mode CloudEvents,
 * Confluent framing, pseudonym keys, ids derived from --seed and the index
 * so a run can be repeated exactly and counted by id.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/log.h"
#include "ketenbus/schema.h"
#include "ketenbus/stop.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

/* Ranges of the numeric options: start + count stays far from overflow, and
 * the rate is one every 100 s at least (0.01/s) up to beyond what one
 * producer sends. */
#define GEN_MAX_COUNT 1000000000000LL    /* 10^12 */
#define GEN_MAX_START 1000000000000000LL /* 10^15 */
#define GEN_MIN_RATE  0.01
#define GEN_MAX_RATE  1e6

static const char usage[] =
    "usage: ketenbus gen --count N [options]\n"
    "\n"
    "Produces N synthetic nl.brp.persoon-geboren events (fictitious people, BSNs in\n"
    "the 9999... test range) to <prefix>.in.<source> with an idempotent producer.\n"
    "\n"
    "  --count N               events to produce (required; 1 to 10^12)\n"
    "  --seed S                varies ids and people (default 1); same seed, same events\n"
    "  --start I               first index (default 0, at most 10^15), to continue an\n"
    "                          earlier run\n"
    "  --rate R                events per second, 0.01 to 1000000 (default: as fast as\n"
    "                          possible)\n"
    "  --source NAME           topic <prefix>.in.NAME (default gba)\n"
    "  --gemeenten LIST        comma-separated gemeentecodes to draw from (default 0344,0363,0599,0518)\n"
    "  --subject-key-file FILE key for the pseudonym keys (required)\n"
    "  --schemas DIR           schema folder\n"
    "  -b, -X, --kafka-config  Kafka connection, as for every command\n";

/* A BSN 9999xxxxx passing the 11-proef, derived from @p n. */
static void test_bsn(uint64_t n, char out[10])
{
    for (uint64_t k = n * 7;; k++) {
        snprintf(out, 10, "9999%05" PRIu64, k % 100000);
        int sum = 0;
        for (int i = 0; i < 8; i++)
            sum += (9 - i) * (out[i] - '0');
        sum -= out[8] - '0';
        if (sum % 11 == 0 && out[8] != '0')
            return;
    }
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

enum { OPT_COUNT = 1000, OPT_SEED, OPT_START, OPT_RATE, OPT_SOURCE, OPT_GEM, OPT_KEY,
       OPT_SCHEMAS, OPT_KCONF };

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    if (m->err) {
        uint64_t *failed = opaque;
        (*failed)++;
    }
}

int kb_cmd_gen(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"count", required_argument, NULL, OPT_COUNT},   {"seed", required_argument, NULL, OPT_SEED},
        {"start", required_argument, NULL, OPT_START},   {"rate", required_argument, NULL, OPT_RATE},
        {"source", required_argument, NULL, OPT_SOURCE}, {"gemeenten", required_argument, NULL, OPT_GEM},
        {"subject-key-file", required_argument, NULL, OPT_KEY},
        {"schemas", required_argument, NULL, OPT_SCHEMAS},
        {"bootstrap", required_argument, NULL, 'b'},     {"kafka-property", required_argument, NULL, 'X'},
        {"kafka-config", required_argument, NULL, OPT_KCONF}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    uint64_t count = 0, seed = 1, start = 0;
    double rate = 0;
    const char *source = "gba", *gemeenten = "0344,0363,0599,0518", *key_file = NULL;
    const char *schemas_dir = getenv("KB_SCHEMAS") ? getenv("KB_SCHEMAS") : KB_SCHEMA_DIR;
    char errstr[512];
    int opt, rc = 1;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, NULL)) != -1) {
        kb_err_t err = KB_OK, bad = KB_OK; /* bad: a value that is a usage error */
        long long n = 0;
        switch (opt) {
        case OPT_COUNT:
            bad = kb_cli_long("--count", optarg, 1, GEN_MAX_COUNT, &n, errstr, sizeof errstr);
            count = (uint64_t)n;
            break;
        case OPT_SEED:
            bad = kb_cli_long("--seed", optarg, 0, LLONG_MAX, &n, errstr, sizeof errstr);
            seed = (uint64_t)n;
            break;
        case OPT_START:
            bad = kb_cli_long("--start", optarg, 0, GEN_MAX_START, &n, errstr, sizeof errstr);
            start = (uint64_t)n;
            break;
        case OPT_RATE:
            bad = kb_cli_double("--rate", optarg, GEN_MIN_RATE, GEN_MAX_RATE, &rate, errstr,
                                sizeof errstr);
            break;
        case OPT_SOURCE: source = optarg; break;
        case OPT_GEM: gemeenten = optarg; break;
        case OPT_KEY: key_file = optarg; break;
        case OPT_SCHEMAS: schemas_dir = optarg; break;
        case 'b': err = kb_kafka_opts_set(&kopts, "bootstrap.servers", optarg, errstr, sizeof errstr); break;
        case 'X': err = kb_kafka_opts_set_kv(&kopts, optarg, errstr, sizeof errstr); break;
        case OPT_KCONF: err = kb_kafka_opts_load(&kopts, optarg, errstr, sizeof errstr); break;
        case 'h': fputs(usage, stdout); rc = 0; goto out_opts;
        default: fputs(usage, stderr); rc = 2; goto out_opts;
        }
        if (err || bad) {
            fprintf(stderr, "error: %s\n", errstr);
            rc = bad ? 2 : 1;
            goto out_opts;
        }
    }
    if (!count || !key_file) {
        fprintf(stderr, "error: --count and --subject-key-file are required\n\n%s", usage);
        rc = 2;
        goto out_opts;
    }
    /* The municipality list, split once. */
    char gem_buf[512];
    const char *gem[32];
    size_t n_gem = 0;
    snprintf(gem_buf, sizeof gem_buf, "%s", gemeenten);
    for (char *tok = strtok(gem_buf, ","); tok && n_gem < 32; tok = strtok(NULL, ","))
        if (strlen(tok) == 4 && strspn(tok, "0123456789") == 4)
            gem[n_gem++] = tok;
    if (!n_gem) {
        fprintf(stderr, "error: --gemeenten needs 4-digit codes\n");
        goto out_opts;
    }
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (kb_event_key_load(key_file, &key, &key_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_opts;
    }
    kb_schemas_t *schemas = kb_schemas_load_dir(schemas_dir, errstr, sizeof errstr);
    const struct kb_schema *schema =
        schemas ? kb_schemas_by_type(schemas, "nl.brp.persoon-geboren") : NULL;
    if (!schema) {
        fprintf(stderr, "error: %s\n", schemas ? "no schema for nl.brp.persoon-geboren" : errstr);
        goto out_schemas;
    }
    rd_kafka_conf_t *conf = kb_kafka_conf_new(&kopts, errstr, sizeof errstr);
    if (!conf) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_schemas;
    }
    uint64_t failed = 0;
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "10", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, &failed);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_schemas;
    }
    char topic[160], suffix[96];
    snprintf(suffix, sizeof suffix, "in.%s", source);
    kb_topic_name(topic, sizeof topic, suffix);
    if (kb_kafka_ensure_topics(rk, (const char *[]){topic}, 1, 3, 30000, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_rk;
    }
    static atomic_int stop;
    if (kb_stop_signals(&stop, "gen",
                        "events Kafka had not acknowledged may be missing; no summary line",
                        errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_rk;
    }
    char src[160];
    snprintf(src, sizeof src, "urn:nld:oin:00000099999999999000:systeem:ketenbus-gen");
    static const char *const voornamen[] = {"Sanne", "Daan", "Noor", "Levi", "Fenna", "Bram",
                                            "Isa", "Milan", "Roos", "Thijs"};
    static const char *const achternamen[] = {"Proefman", "Testerink", "Voorbeeld", "Fictief",
                                              "Oefenaar", "Steekproef"};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t produced = 0;
    for (uint64_t i = start; i < start + count && !atomic_load(&stop); i++) {
        uint64_t h = mix(seed * 0x9e3779b97f4a7c15ull + i);
        char bsn[10], bsn1[10], bsn2[10], date[9], name[64];
        test_bsn(h % 90000, bsn);
        test_bsn((h >> 20) % 90000 + 3, bsn1);
        test_bsn((h >> 40) % 90000 + 7, bsn2);
        snprintf(date, sizeof date, "2024%02d%02d", (int)(h % 12) + 1, (int)((h >> 8) % 28) + 1);
        avro_value_t v;
        avro_generic_value_new(schema->iface, &v);
        kb_value_init_nulls(&v);
        kb_value_set_string(&v, "kind.bsn", bsn);
        kb_value_set_string(&v, "kind.voornamen", voornamen[h % 10]);
        kb_value_set_string(&v, "kind.geslachtsnaam", achternamen[(h >> 4) % 6]);
        kb_value_set_string(&v, "kind.geboortedatum", date);
        kb_value_set_string(&v, "kind.geboorteland", (h >> 12) % 10 ? "6030" : "5010");
        kb_value_set_string(&v, "kind.geslacht", h & 1 ? "V" : "M");
        avro_value_t ouders, ouder;
        avro_value_get_by_name(&v, "ouders", &ouders, NULL);
        for (int o = 1; o <= 2; o++) {
            size_t idx;
            avro_value_append(&ouders, &ouder, &idx);
            kb_value_init_nulls(&ouder);
            kb_value_set_int(&ouder, "ouderNummer", o);
            kb_value_set_string(&ouder, "persoon.bsn", o == 1 ? bsn1 : bsn2);
            kb_value_set_string(&ouder, "persoon.voornamen", voornamen[(h >> (o * 3)) % 10]);
            kb_value_set_string(&ouder, "persoon.geslachtsnaam", achternamen[(h >> (o * 5)) % 6]);
        }
        kb_value_set_string(&v, "inschrijving.gemeente", gem[(h >> 16) % n_gem]);
        kb_value_set_string(&v, "inschrijving.datumInschrijving", date);
        kb_value_set_string(&v, "herkomst.berichtType", "Lg01");
        kb_value_set_string(&v, "herkomst.randomKey", "00000000");
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        kb_value_set_long(&v, "herkomst.ontvangen", now_ms);
        snprintf(name, sizeof name, "gen-%" PRIu64 "-%" PRIu64, seed, i);
        kb_value_set_string(&v, "herkomst.sha256", name);
        uint8_t *value = NULL;
        size_t len = 0;
        kb_err_t err = kb_schema_encode(schema, &v, &value, &len, errstr, sizeof errstr);
        avro_value_decref(&v);
        if (err) {
            fprintf(stderr, "error: %s\n", errstr);
            goto out_rk;
        }
        struct kb_event_attrs a;
        memset(&a, 0, sizeof a);
        kb_event_uuid5(name, strlen(name), a.id);
        snprintf(a.source, sizeof a.source, "%s", src);
        snprintf(a.type, sizeof a.type, "nl.brp.persoon-geboren");
        kb_event_time(now_ms, a.time);
        kb_event_pseudonym(key, key_len, "bsn", bsn, a.subject);
        kb_event_traceparent(a.id, a.traceparent);
        a.sequence = i + 1;
        struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
        char seqbuf[24];
        size_t nh = kb_event_headers(&a, hdrs, seqbuf);
        for (;;) {
            rd_kafka_resp_err_t perr = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(a.subject, strlen(a.subject)),
                RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                RD_KAFKA_V_HEADERS(kb_kafka_headers_new(hdrs, nh)), RD_KAFKA_V_END);
            if (perr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 50);
                continue;
            }
            if (perr) {
                fprintf(stderr, "error: produce: %s\n", rd_kafka_err2str(perr));
                free(value);
                goto out_rk;
            }
            break;
        }
        produced++;
        rd_kafka_poll(rk, 0);
        if (rate > 0) {
            struct timespec tn;
            clock_gettime(CLOCK_MONOTONIC, &tn);
            double due = (double)produced / rate;
            double el = (double)(tn.tv_sec - t0.tv_sec) + (tn.tv_nsec - t0.tv_nsec) / 1e9;
            if (due > el) {
                struct timespec ts = {(time_t)(due - el), (long)((due - el - (double)(time_t)(due - el)) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
    }
    rd_kafka_flush(rk, 60000);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("gen: produced=%" PRIu64 " failed=%" PRIu64 " topic=%s seconds=%.2f eps=%.0f\n",
           produced, failed, topic, secs, secs > 0 ? (double)produced / secs : 0.0);
    rc = failed || rd_kafka_outq_len(rk) ? 1 : 0;
out_rk:
    rd_kafka_destroy(rk);
out_schemas:
    kb_schemas_destroy(schemas);
    free(key);
out_opts:
    kb_kafka_opts_fini(&kopts);
    return rc;
}
