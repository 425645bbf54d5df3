/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * feed.c - kb-webhook-feed: produce synthetic subscriber events (as the
 * router writes them to <prefix>.out.<subscriber>) with chosen keys, so the
 * delivery tests control which events share a key and in what order. The
 * events are nl.kinderbijslag.aanvraag-uitgenodigd for fictitious people
 * (BSNs in the 9999... test range that pass the 11-proef).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"

#ifndef KB_SCHEMA_DIR
#define KB_SCHEMA_DIR "schemas"
#endif

static const char usage[] =
    "usage: kb-webhook-feed --topic-suffix out.NAME --count N [--keys K] [--start I]\n"
    "                       [--schemas DIR] [--bad N] [--bare N] [--invalid N]\n"
    "Event i (from --start) gets key k = i %% K: the pseudonym of \"k<k>\", which is\n"
    "also its ce_subject; ce_sequence = i + 1. --bad N makes the last N values\n"
    "undecodable (schema id 999999) to test dead-lettering of poison events;\n"
    "--bare N sends the last N without headers: not CloudEvents at all;\n"
    "--invalid N gives the last N a child BSN that fails the 11-proef: good Avro\n"
    "that the schema's validator refuses.\n";

static const char *const test_bsns[] = {"999995303", "999996204", "999997105"};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"topic-suffix", required_argument, NULL, 't'}, {"count", required_argument, NULL, 'n'},
        {"keys", required_argument, NULL, 'k'},         {"start", required_argument, NULL, 's'},
        {"schemas", required_argument, NULL, 'S'},      {"bad", required_argument, NULL, 'B'},
        {"bare", required_argument, NULL, 'N'},         {"invalid", required_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},               {NULL, 0, NULL, 0}};
    const char *suffix = NULL, *schemas_dir = KB_SCHEMA_DIR;
    long count = 0, keys = 1, start = 0, bad = 0, bare = 0, invalid = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 't': suffix = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'k': keys = atol(optarg); break;
        case 's': start = atol(optarg); break;
        case 'S': schemas_dir = optarg; break;
        case 'B': bad = atol(optarg); break;
        case 'N': bare = atol(optarg); break;
        case 'I': invalid = atol(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!suffix || count <= 0 || keys <= 0) {
        fputs(usage, stderr);
        return 2;
    }
    char errstr[512], topic[256];
    kb_topic_name(topic, sizeof topic, suffix);
    kb_schemas_t *schemas = kb_schemas_load_dir(schemas_dir, errstr, sizeof errstr);
    const struct kb_schema *schema =
        schemas ? kb_schemas_by_type(schemas, "nl.kinderbijslag.aanvraag-uitgenodigd") : NULL;
    if (!schema) {
        fprintf(stderr, "schema: %s\n", schemas ? "aanvraag-uitgenodigd missing" : errstr);
        return 1;
    }
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    rd_kafka_conf_t *conf = kb_kafka_conf_new(&ko, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "kafka: %s\n", errstr);
        return 1;
    }
    const char *const topics[] = {topic};
    if (kb_kafka_ensure_topics(rk, topics, 1, 3, 30000, errstr, sizeof errstr)) {
        fprintf(stderr, "topics: %s\n", errstr);
        return 1;
    }
    uint8_t hkey[32];
    for (int i = 0; i < 32; i++)
        hkey[i] = (uint8_t)(0xa0 + i); /* a test key, not a secret */
    int failed = 0;
    for (long i = start; i < start + count; i++) {
        avro_value_t v;
        avro_generic_value_new(schema->iface, &v);
        kb_value_init_nulls(&v);
        char kenmerk[24];
        snprintf(kenmerk, sizeof kenmerk, "%012ld", 100000000000L + i);
        kb_value_set_string(&v, "kenmerk", kenmerk);
        kb_value_set_string(&v, "bsnOuder", test_bsns[i % 2 + 1]);
        /* the last digit off by one: the 11-proef fails */
        kb_value_set_string(&v, "bsnKind",
                            i >= start + count - invalid ? "999995304" : test_bsns[0]);
        kb_value_set_string(&v, "geboortedatumKind", "20240315");
        avro_value_t f, el;
        avro_value_get_by_name(&v, "kanaal", &f, NULL);
        avro_value_set_enum(&f, (int)(i % 2));
        kb_value_set_int(&v, "uitersteReactiedatum", 19889 + (int32_t)i);
        avro_value_get_by_name(&v, "bronEventIds", &f, NULL);
        avro_value_append(&f, &el, NULL);
        avro_value_set_string(&el, "00000000-0000-5000-8000-000000000001");
        uint8_t *val = NULL;
        size_t len = 0;
        if (kb_schema_encode(schema, &v, &val, &len, errstr, sizeof errstr)) {
            fprintf(stderr, "encode: %s\n", errstr);
            return 1;
        }
        avro_value_decref(&v);
        if (i >= start + count - bad) { /* poison: an unknown schema id */
            val[1] = 0x00, val[2] = 0x0f, val[3] = 0x42, val[4] = 0x3f;
        }
        struct kb_event_attrs a;
        memset(&a, 0, sizeof a);
        char name[64], kname[32];
        snprintf(name, sizeof name, "feed-%s-%ld", suffix, i);
        kb_event_uuid5(name, strlen(name), a.id);
        snprintf(a.source, sizeof a.source, "urn:nld:oin:00000001234567890000:systeem:test");
        snprintf(a.type, sizeof a.type, "%s", schema->type);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        kb_event_time((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, a.time);
        snprintf(kname, sizeof kname, "k%ld", i % keys);
        kb_event_pseudonym(hkey, sizeof hkey, "test", kname, a.subject);
        a.sequence = (uint64_t)i + 1;
        a.schema_id = schema->id;
        kb_event_traceparent(a.id, a.traceparent);
        struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
        char seqbuf[24];
        size_t nh = kb_event_headers(&a, hdrs, seqbuf);
        if (i >= start + count - bare)
            nh = 0; /* no ce_* headers: not a CloudEvent */
        rd_kafka_headers_t *h = kb_kafka_headers_new(hdrs, nh);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(a.subject, strlen(a.subject)),
            RD_KAFKA_V_VALUE(val, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        free(val);
        if (e) {
            rd_kafka_headers_destroy(h);
            fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
            failed = 1;
            break;
        }
        printf("%s %s %llu\n", a.id, a.subject, (unsigned long long)a.sequence);
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 30000)) {
        fprintf(stderr, "flush timed out\n");
        failed = 1;
    }
    rd_kafka_destroy(rk);
    kb_kafka_opts_fini(&ko);
    kb_schemas_destroy(schemas);
    return failed;
}
