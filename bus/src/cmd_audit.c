/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_audit.c - `ketenbus audit keygen|verify|subject|export`: make the
 * checkpoint signing key, prove the trail complete and unaltered, answer a
 * person's right-of-access question, and export the trail in the shape of
 * the Logboek Dataverwerkingen standard.
 */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "cmd.h"
#include "ketenbus/audit.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/log.h"

static const char usage[] =
    "usage: ketenbus audit <keygen|verify|subject|export> [options]\n"
    "\n"
    "  keygen --private FILE --public FILE\n"
    "      new Ed25519 key pair for signing checkpoints (private key 0600, never overwritten)\n"
    "  verify --public-key FILE [--public-key FILE...] [--from T] [--to T] [--threads N]\n"
    "         [--router-group ID]\n"
    "      prove every chain complete and unaltered and every checkpoint validly signed;\n"
    "      names audit partition, offset and what is wrong; reports records whose input\n"
    "      events are gone from kb.in.* (retention). Exit 0 intact, 1 problems found,\n"
    "      2 could not check (e.g. a watermark or committed offset that cannot be read).\n"
    "      Without --from every chain must start at seq 0 and every audit partition at\n"
    "      offset 0 (a deleted head is a problem). Without --to every chain must reach\n"
    "      the input offset the router group (default <prefix>-route; \"-\": skip the\n"
    "      check) had committed. Audit partitions are read and checked on N threads\n"
    "      (default: one per CPU); the verdict is the same for any N.\n"
    "  subject --bsn N|--anummer N [--bsn N --anummer N] --subject-key-file FILE\n"
    "          [--from T] [--to T] [--format text|json]\n"
    "      right-of-access report: every delivery of this person's data (when, to whom,\n"
    "      for which purpose, which fields). GBA events are keyed by the BSN (births)\n"
    "      or the A-nummer (most others): give both for a complete report; the report\n"
    "      says which identifiers were searched. Each is keyed-hashed before searching.\n"
    "  export --format ldv [--from T] [--to T] [--activity-base URI]\n"
    "      JSON lines in the shape of the Logboek Dataverwerkingen standard\n"
    "\n"
    "common options (verify, subject, export; keygen uses no broker and takes none):\n"
    "  --topic NAME                 audit topic (default <prefix>.audit)\n"
    "  -b, --bootstrap HOST:PORT    Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V     any librdkafka property (TLS, SASL, ...)\n"
    "      --kafka-config FILE      properties file with librdkafka properties\n"
    "T is RFC 3339 with its zone (2024-03-18T09:15:30Z, 2024-03-18T10:15:30+01:00), a date\n"
    "(2024-03-18, midnight UTC) or milliseconds since 1970; 2026-02-31 or 24:00 is refused.\n"
    "An option the subcommand does not use is refused (exit 2).\n";

enum {
    OPT_PRIV = 1000,
    OPT_PUB,
    OPT_PUBKEY,
    OPT_FROM,
    OPT_TO,
    OPT_BSN,
    OPT_SKEY,
    OPT_FORMAT,
    OPT_TOPIC,
    OPT_KCONF,
    OPT_BASE,
    OPT_THREADS,
    OPT_ANR,
    OPT_RGROUP,
};

/* The subcommands, as the bits of the set that takes an option. */
enum {
    SUB_KEYGEN = 1,
    SUB_VERIFY = 2,
    SUB_SUBJECT = 4,
    SUB_EXPORT = 8,
    SUB_READERS = SUB_VERIFY | SUB_SUBJECT | SUB_EXPORT, /* those that read the trail */
};

static const char *const sub_names[] = {"keygen", "verify", "subject", "export"};

/* The subcommands that take option @p opt (getopt_long's value): any other
 * refuses it, as `audit verify --subject-key-file` would otherwise run a
 * verify that silently ignored what the operator meant. */
static unsigned option_takers(int opt)
{
    switch (opt) {
    case OPT_PRIV:
    case OPT_PUB: return SUB_KEYGEN;
    case OPT_PUBKEY:
    case OPT_THREADS:
    case OPT_RGROUP: return SUB_VERIFY;
    case OPT_BSN:
    case OPT_ANR:
    case OPT_SKEY: return SUB_SUBJECT;
    case OPT_FORMAT: return SUB_SUBJECT | SUB_EXPORT;
    case OPT_BASE: return SUB_EXPORT;
    default: return SUB_READERS; /* --from, --to, --topic and the Kafka options */
    }
}

struct audit_args {
    struct kb_kafka_opts kafka;
    const char *topic;
    const char *private_path, *public_path;
    const char *pubkeys[16];
    size_t n_pubkeys;
    int64_t from_ms, to_ms;
    const char *bsn, *subject_key_file, *format, *activity_base;
    const char *anummer;      /* subject: the person's A-nummer (GBA keys most events by it) */
    const char *router_group; /* verify: group whose committed offsets the chains must reach */
    int threads; /* verify: reader threads; 0 = one per CPU */
};

static void str_copy(char *out, size_t out_size, struct kb_audit_str s)
{
    size_t n = s.len < out_size - 1 ? s.len : out_size - 1;
    memcpy(out, s.ptr, n);
    out[n] = '\0';
}

/* ---- keygen ---------------------------------------------------------------- */

static int run_keygen(struct audit_args *a)
{
    if (!a->private_path || !a->public_path) {
        fprintf(stderr, "error: keygen needs --private FILE and --public FILE\n");
        return 2;
    }
    char errstr[512], id[17];
    if (kb_audit_keygen(a->private_path, a->public_path, id, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }
    printf("key id %s\nprivate key %s (mode 0600; give it to the router only)\n"
           "public key %s (give it to every verifier)\n",
           id, a->private_path, a->public_path);
    return 0;
}

/* ---- verify ------------------------------------------------------------------ */

struct verify_ctx {
    kb_audit_verifier_t *v;
    rd_kafka_t *rk;    /* for input watermarks */
    rd_kafka_topic_partition_list_t *committed; /* router group's offsets before the scan */
};

static int64_t input_low(void *opaque, const char *topic, int32_t partition)
{
    return kb_audit_input_low_of(((struct verify_ctx *)opaque)->rk, topic, partition);
}

static int run_verify(struct audit_args *a)
{
    char errstr[512], tbuf[256];
    const char *topic = a->topic;
    if (!topic) {
        kb_topic_name(tbuf, sizeof tbuf, "audit");
        topic = tbuf;
    }
    if (!a->n_pubkeys)
        fprintf(stderr, "warning: no --public-key given: every checkpoint will be reported\n");
    struct verify_ctx vc = {0};
    rd_kafka_conf_t *conf = kb_kafka_conf_new(&a->kafka, errstr, sizeof errstr);
    if (!conf) {
        fprintf(stderr, "error: %s\n", errstr);
        return 2;
    }
    rd_kafka_conf_set(conf, "group.id", "ketenbus-audit-verify", NULL, 0);
    vc.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!vc.rk) {
        fprintf(stderr, "error: %s\n", errstr);
        return 2;
    }
    /* Without --from the whole trail is read: every chain starts at seq 0
     * and every audit partition at offset 0 (kb_audit_verify_scan reports
     * a partition whose head was deleted, and fails on a watermark it
     * cannot read). The low watermark never relaxes the rule. */
    struct kb_audit_verify_opts vo = {
        .public_key_files = a->pubkeys,
        .n_public_keys = a->n_pubkeys,
        .from_start = a->from_ms <= 0,
        .input_low = input_low,
        .opaque = &vc,
    };
    int rc = 2;
    char group_buf[200];
    const char *group = a->router_group;
    if (!group) {
        snprintf(group_buf, sizeof group_buf, "%s-route", kb_topic_prefix());
        group = group_buf;
    }
    /* The tail check needs the trail read to its end. */
    if (!a->to_ms && strcmp(group, "-")) {
        if (kb_audit_committed_snapshot(&a->kafka, group, 10000, &vc.committed, errstr,
                                        sizeof errstr)) {
            fprintf(stderr, "error: %s\n", errstr);
            goto out_rk;
        }
        vo.input_committed = vc.committed;
    }
    vc.v = kb_audit_verifier_new(&vo, errstr, sizeof errstr);
    if (!vc.v) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_rk;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* input_low runs on the reader threads: rd_kafka_query_watermark_offsets
     * on the shared vc.rk is thread-safe. */
    kb_err_t err = kb_audit_verify_scan(&a->kafka, topic, a->from_ms, a->to_ms, vc.v,
                                        a->threads, errstr, sizeof errstr);
    if (err) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_v;
    }
    kb_audit_verifier_finish(vc.v);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t msgs, recs, cps;
    kb_audit_verifier_counts(vc.v, &msgs, &recs, &cps);
    size_t n_chains, n_problems;
    const struct kb_audit_chain_summary *ch = kb_audit_verifier_chains(vc.v, &n_chains);
    const struct kb_audit_problem *pr = kb_audit_verifier_problems(vc.v, &n_problems);
    printf("audit trail %s: %" PRIu64 " messages, %" PRIu64 " records, %" PRIu64
           " valid checkpoints, %zu chains (%.2f s)\n",
           topic, msgs, recs, cps, n_chains, secs);
    for (size_t i = 0; i < n_chains; i++) {
        printf("chain %s: seq %" PRIu64 "..%" PRIu64 ", %" PRIu64 " records, %" PRIu64
               " checkpoints, %" PRIu64 " records after the last checkpoint\n",
               ch[i].chain, ch[i].first_seq, ch[i].last_seq, ch[i].records, ch[i].checkpoints,
               ch[i].unsigned_tail);
    }
    for (size_t i = 0; i < n_problems; i++)
        printf("PROBLEM %s: audit partition %" PRId32 " offset %" PRId64 " chain %s: %s\n",
               kb_audit_problem_name(pr[i].kind), pr[i].partition, pr[i].offset,
               pr[i].chain[0] ? pr[i].chain : "?", pr[i].what);
    for (size_t i = 0; i < n_chains; i++) {
        if (ch[i].input_low == -2)
            printf("RETENTION chain %s: input topic %s is gone: none of its %" PRIu64
                   " events can be replayed\n",
                   ch[i].chain, ch[i].input_topic, ch[i].records);
        else if (ch[i].gone)
            printf("RETENTION chain %s: %" PRIu64 " records refer to events no longer in %s [%" PRId32
                   "] (it starts at offset %" PRId64 "): they cannot be replayed\n",
                   ch[i].chain, ch[i].gone, ch[i].input_topic, ch[i].input_partition,
                   ch[i].input_low);
    }
    if (vc.committed)
        printf("tail check: each chain against the offsets group %s had committed on %d input "
               "partitions\n",
               group, vc.committed->cnt);
    else
        printf("tail check: not run (%s): a chain's tail cut off with its checkpoints "
               "goes unseen\n",
               a->to_ms ? "--to" : "--router-group -");
    printf("result: %s\n", n_problems ? "FAILED" : "OK");
    rc = n_problems ? 1 : 0;
out_v:
    kb_audit_verifier_destroy(vc.v);
out_rk:
    if (vc.committed)
        rd_kafka_topic_partition_list_destroy(vc.committed);
    rd_kafka_destroy(vc.rk);
    return rc;
}

/* ---- subject ------------------------------------------------------------------ */

struct subject_ctx {
    int json;
    json_t *deliveries;  /* json mode */
    uint64_t events;     /* decisions about the subject */
    uint64_t deliveries_n;
    const struct kb_audit_person_id *ids; /* the identifiers searched */
    size_t n_ids;
};

/* Which of the searched identifiers a record is keyed by. */
static const struct kb_audit_person_id *id_of(const struct subject_ctx *sc,
                                              const struct kb_audit_record *rec)
{
    for (size_t i = 0; i < sc->n_ids; i++)
        if (rec->subject.len == strlen(sc->ids[i].pseudonym) &&
            !memcmp(rec->subject.ptr, sc->ids[i].pseudonym, rec->subject.len))
            return &sc->ids[i];
    return NULL;
}

static int subject_one(void *opaque, const struct kb_audit_record *rec, int32_t partition,
                       int64_t offset)
{
    struct subject_ctx *sc = opaque;
    sc->events++;
    if (rec->outcome != KB_AUDIT_DELIVERED && rec->outcome != KB_AUDIT_REPLAYED)
        return 0;
    char when[40], type[128], id[64];
    kb_event_time(rec->recorded_at, when);
    str_copy(type, sizeof type, rec->event_type);
    str_copy(id, sizeof id, rec->event_id);
    const struct kb_audit_person_id *pid = id_of(sc, rec);
    struct kb_audit_iter it, fit;
    struct kb_audit_rcpt_view rv;
    struct kb_audit_str f;
    kb_audit_rcpt_iter(rec, &it);
    while (kb_audit_rcpt_next(&it, &rv)) {
        sc->deliveries_n++;
        if (sc->json) {
            json_t *fields = json_array();
            kb_audit_field_iter(&rv, &fit);
            while (kb_audit_field_next(&fit, &f))
                json_array_append_new(fields, json_stringn(f.ptr, f.len));
            json_t *d = json_object();
            json_object_set_new(d, "time", json_string(when));
            json_object_set_new(d, "subscriber",
                                json_stringn(rv.subscriber.ptr, rv.subscriber.len));
            json_object_set_new(d, "purpose", json_stringn(rv.purpose.ptr, rv.purpose.len));
            json_object_set_new(d, "fields", fields);
            json_object_set_new(d, "eventType", json_string(type));
            json_object_set_new(d, "eventId", json_string(id));
            json_object_set_new(d, "outcome", json_string(kb_audit_outcome_name(rec->outcome)));
            json_object_set_new(d, "identifier", json_string(pid ? pid->kind : "?"));
            json_array_append_new(sc->deliveries, d);
        } else {
            printf("%s  %.*s  purpose=%.*s  %s  event=%s  by=%s  fields=", when,
                   (int)rv.subscriber.len, rv.subscriber.ptr, (int)rv.purpose.len, rv.purpose.ptr,
                   type, id, pid ? pid->kind : "?");
            kb_audit_field_iter(&rv, &fit);
            for (int first = 1; kb_audit_field_next(&fit, &f); first = 0)
                printf("%s%.*s", first ? "" : ",", (int)f.len, f.ptr);
            printf("%s\n", rec->outcome == KB_AUDIT_REPLAYED ? "  (replayed)" : "");
        }
    }
    return 0;
}

static int run_subject(struct audit_args *a)
{
    if ((!a->bsn && !a->anummer) || !a->subject_key_file) {
        fprintf(stderr, "error: subject needs --bsn N and/or --anummer N, and "
                        "--subject-key-file FILE\n");
        return 2;
    }
    int json = a->format && !strcmp(a->format, "json");
    if (a->format && !json && strcmp(a->format, "text")) {
        fprintf(stderr, "error: --format is text or json\n");
        return 2;
    }
    char errstr[512];
    uint8_t *key = NULL;
    size_t key_len = 0, n_ids = 0;
    struct kb_audit_person_id ids[2];
    if (kb_event_key_load(a->subject_key_file, &key, &key_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 2;
    }
    kb_err_t err =
        kb_audit_person_ids(key, key_len, a->bsn, a->anummer, ids, &n_ids, errstr, sizeof errstr);
    free(key);
    if (err) {
        fprintf(stderr, "error: %s\n", errstr);
        return 2;
    }
    /* Say what was searched: a report by one identifier alone misses the
     * events keyed by the other, and the reader must be able to tell. */
    char searched[64] = "", missing[64] = "";
    const char *subjects[2];
    for (size_t i = 0; i < n_ids; i++) {
        subjects[i] = ids[i].pseudonym;
        snprintf(searched + strlen(searched), sizeof searched - strlen(searched), "%s%s",
                 i ? " and " : "", ids[i].label);
    }
    if (!a->bsn)
        snprintf(missing, sizeof missing, "BSN");
    else if (!a->anummer)
        snprintf(missing, sizeof missing, "A-nummer");
    struct subject_ctx sc = {.json = json, .ids = ids, .n_ids = n_ids};
    if (json) {
        sc.deliveries = json_array();
    } else {
        printf("access report searched by %s (keyed-hashed; the identifiers themselves are "
               "not stored)\n",
               searched);
        for (size_t i = 0; i < n_ids; i++)
            printf("  %s pseudonym %s\n", ids[i].label, ids[i].pseudonym);
        if (missing[0])
            printf("  not searched: events keyed by the %s (GBA keys births by the BSN and "
                   "most other events by the A-nummer): give --%s too\n",
                   missing, a->bsn ? "anummer" : "bsn");
    }
    struct kb_audit_filter f = {.subjects = subjects,
                                .n_subjects = n_ids,
                                .outcome = -1,
                                .from_ms = a->from_ms,
                                .to_ms = a->to_ms};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    err = kb_audit_query(&a->kafka, a->topic, &f, subject_one, &sc, errstr, sizeof errstr);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (err) {
        fprintf(stderr, "error: %s\n", errstr);
        json_decref(sc.deliveries);
        return 1;
    }
    if (json) {
        json_t *root = json_object(), *by = json_array(), *not_searched = json_array();
        for (size_t i = 0; i < n_ids; i++)
            json_array_append_new(by, json_pack("{s:s, s:s}", "identifier", ids[i].kind,
                                                "pseudonym", ids[i].pseudonym));
        if (missing[0])
            json_array_append_new(not_searched, json_string(a->bsn ? "anummer" : "bsn"));
        /* "subject": the first pseudonym, as before there were two */
        json_object_set_new(root, "subject", json_string(ids[0].pseudonym));
        json_object_set_new(root, "searched", by);
        json_object_set_new(root, "not_searched", not_searched);
        json_object_set_new(root, "events", json_integer((json_int_t)sc.events));
        json_object_set_new(root, "deliveries", sc.deliveries);
        char *text = json_dumps(root, JSON_INDENT(2));
        if (text)
            puts(text);
        free(text);
        json_decref(root);
    } else {
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("%" PRIu64 " deliveries of %" PRIu64 " events about this subject (%.2f s)\n",
               sc.deliveries_n, sc.events, secs);
    }
    return 0;
}

/* ---- export (Logboek Dataverwerkingen) --------------------------------------- */

/* dpl.core.data_subject_id_type: a ketenbus subject pseudonym, HMAC-SHA-256
 * of "<kind>:<identifier>" under the subject key (kb_event_pseudonym), the
 * kind not recorded in the trail. */
#define LDV_SUBJECT_ID_TYPE "urn:ketenbus:pseudonym:hmac-sha256"

struct export_ctx {
    const char *activity_base;
    uint64_t lines;
};

/* trace id: the event's UUID (as kb_event_traceparent does), else a hash. */
static void trace_id_of(struct kb_audit_str id, char out[33])
{
    size_t k = 0;
    for (size_t i = 0; i < id.len && k < 32; i++)
        if (isxdigit((unsigned char)id.ptr[i]))
            out[k++] = (char)tolower((unsigned char)id.ptr[i]);
        else if (id.ptr[i] != '-')
            break;
    if (k == 32 && id.len == 36) {
        out[32] = '\0';
        return;
    }
    static const char digits[] = "0123456789abcdef";
    uint8_t h[32];
    SHA256((const uint8_t *)id.ptr, id.len, h);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[32] = '\0';
}

static void span_id_of(const uint8_t *record_hash, const void *extra, size_t extra_len,
                       char out[17])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t buf[KB_AUDIT_HASH_LEN + 256], h[32];
    if (extra_len > 256)
        extra_len = 256; /* subscriber names are short; the record hash makes it unique */
    memcpy(buf, record_hash, KB_AUDIT_HASH_LEN);
    if (extra_len)
        memcpy(buf + KB_AUDIT_HASH_LEN, extra, extra_len);
    SHA256(buf, KB_AUDIT_HASH_LEN + extra_len, h);
    for (int i = 0; i < 8; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[16] = '\0';
}

static void export_line(struct export_ctx *ec, const struct kb_audit_record *rec,
                        const struct kb_audit_rcpt_view *rv)
{
    char trace[33], span[17], when[40], activity[512], chain[300];
    trace_id_of(rec->event_id, trace);
    if (rv)
        span_id_of(rec->record_hash, rv->subscriber.ptr, rv->subscriber.len, span);
    else
        span_id_of(rec->record_hash, "", 0, span);
    kb_event_time(rec->recorded_at, when);
    if (rv)
        snprintf(activity, sizeof activity, "%s%.*s", ec->activity_base, (int)rv->purpose.len,
                 rv->purpose.ptr);
    else
        snprintf(activity, sizeof activity, "%srouting", ec->activity_base);
    snprintf(chain, sizeof chain, "%.*s/%" PRId32, (int)rec->input_topic.len,
             rec->input_topic.ptr, rec->input_partition);
    json_t *attrs = json_object();
    json_object_set_new(attrs, "dpl.core.processing_activity_id", json_string(activity));
    if (rec->subject.len) {
        /* Which identifier the pseudonym was made of (the adapter chooses:
         * GBA the BSN of a birth that has one, else the A-nummer; SVB the
         * BSN; Kadaster the object) is not in the record, nor in the
         * schema: the type says what is known, a keyed hash, and no more.
         * It said "bsn" for every subject before. */
        json_object_set_new(attrs, "dpl.core.data_subject_id",
                            json_stringn(rec->subject.ptr, rec->subject.len));
        json_object_set_new(attrs, "dpl.core.data_subject_id_type",
                            json_string(LDV_SUBJECT_ID_TYPE));
    }
    json_object_set_new(attrs, "ketenbus.event_id",
                        json_stringn(rec->event_id.ptr, rec->event_id.len));
    json_object_set_new(attrs, "ketenbus.event_type",
                        json_stringn(rec->event_type.ptr, rec->event_type.len));
    json_object_set_new(attrs, "ketenbus.outcome",
                        json_string(kb_audit_outcome_name(rec->outcome)));
    json_object_set_new(attrs, "ketenbus.audit.chain", json_string(chain));
    json_object_set_new(attrs, "ketenbus.audit.sequence", json_integer((json_int_t)rec->sequence));
    if (rv) {
        json_object_set_new(attrs, "ketenbus.subscriber",
                            json_stringn(rv->subscriber.ptr, rv->subscriber.len));
        json_t *fields = json_array();
        struct kb_audit_iter fit;
        struct kb_audit_str f;
        kb_audit_field_iter(rv, &fit);
        while (kb_audit_field_next(&fit, &f))
            json_array_append_new(fields, json_stringn(f.ptr, f.len));
        json_object_set_new(attrs, "ketenbus.fields", fields);
    }
    char name[160];
    snprintf(name, sizeof name, "ketenbus.route.%s", kb_audit_outcome_name(rec->outcome));
    json_t *line = json_object();
    json_object_set_new(line, "trace_id", json_string(trace));
    json_object_set_new(line, "span_id", json_string(span));
    json_object_set_new(line, "parent_span_id", json_stringn(trace, 16));
    json_object_set_new(line, "status",
                        json_string(rec->outcome == KB_AUDIT_DEAD_LETTERED ? "Error" : "Ok"));
    json_object_set_new(line, "name", json_string(name));
    json_object_set_new(line, "start_time", json_string(when));
    json_object_set_new(line, "end_time", json_string(when));
    json_object_set_new(line, "resource",
                        json_pack("{s:{s:s}}", "attributes", "service.name", "ketenbus-route"));
    json_object_set_new(line, "attributes", attrs);
    char *text = json_dumps(line, JSON_COMPACT);
    if (text) {
        puts(text);
        free(text);
        ec->lines++;
    }
    json_decref(line);
}

static int export_one(void *opaque, const struct kb_audit_record *rec, int32_t partition,
                      int64_t offset)
{
    struct export_ctx *ec = opaque;
    struct kb_audit_iter it;
    struct kb_audit_rcpt_view rv;
    kb_audit_rcpt_iter(rec, &it);
    int any = 0;
    while (kb_audit_rcpt_next(&it, &rv)) {
        export_line(ec, rec, &rv);
        any = 1;
    }
    if (!any)
        export_line(ec, rec, NULL);
    return 0;
}

static int run_export(struct audit_args *a)
{
    if (!a->format || strcmp(a->format, "ldv")) {
        fprintf(stderr, "error: export needs --format ldv\n");
        return 2;
    }
    struct export_ctx ec = {a->activity_base ? a->activity_base : "urn:ketenbus:purpose:", 0};
    struct kb_audit_filter f = {.outcome = -1, .from_ms = a->from_ms, .to_ms = a->to_ms};
    char errstr[512];
    if (kb_audit_query(&a->kafka, a->topic, &f, export_one, &ec, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 1;
    }
    fprintf(stderr, "exported %" PRIu64 " log lines\n", ec.lines);
    return 0;
}

int kb_cmd_audit(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"private", required_argument, NULL, OPT_PRIV},
        {"public", required_argument, NULL, OPT_PUB},
        {"public-key", required_argument, NULL, OPT_PUBKEY},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"bsn", required_argument, NULL, OPT_BSN},
        {"anummer", required_argument, NULL, OPT_ANR},
        {"router-group", required_argument, NULL, OPT_RGROUP},
        {"subject-key-file", required_argument, NULL, OPT_SKEY},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"activity-base", required_argument, NULL, OPT_BASE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"bootstrap", required_argument, NULL, 'b'},
        {"kafka-property", required_argument, NULL, 'X'},
        {"kafka-config", required_argument, NULL, OPT_KCONF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    unsigned sub_bit = 0; /* 0: not a subcommand, said after the options */
    for (size_t i = 0; i < sizeof sub_names / sizeof sub_names[0]; i++)
        if (!strcmp(sub, sub_names[i]))
            sub_bit = 1u << i;
    struct audit_args a;
    memset(&a, 0, sizeof a);
    kb_kafka_opts_init(&a.kafka);
    char errstr[512];
    int opt, rc = 2, longindex = -1;
    optind = 1;
    while ((opt = getopt_long(argc - 1, argv + 1, "b:X:h", longopts, &longindex)) != -1) {
        if (opt != 'h' && opt != '?' && sub_bit && !(option_takers(opt) & sub_bit)) {
            kb_cli_refuse_option("audit", sub, argc, argv, longopts, longindex, opt,
                                 option_takers(opt), sub_names,
                                 sizeof sub_names / sizeof sub_names[0]);
            goto out;
        }
        longindex = -1;
        switch (opt) {
        case OPT_PRIV: a.private_path = optarg; break;
        case OPT_PUB: a.public_path = optarg; break;
        case OPT_PUBKEY:
            if (a.n_pubkeys == sizeof a.pubkeys / sizeof a.pubkeys[0]) {
                fprintf(stderr, "error: too many --public-key\n");
                goto out;
            }
            a.pubkeys[a.n_pubkeys++] = optarg;
            break;
        case OPT_FROM:
        case OPT_TO:
            if (kb_cli_time(opt == OPT_FROM ? "--from" : "--to", optarg,
                            opt == OPT_FROM ? &a.from_ms : &a.to_ms, errstr, sizeof errstr)) {
                fprintf(stderr, "error: %s\n", errstr);
                goto out;
            }
            /* 0 is "no bound" to the readers: --to 1970-01-01 (the epoch
             * itself) means nothing after the first millisecond instead. */
            if (opt == OPT_TO && a.to_ms == 0)
                a.to_ms = 1;
            break;
        case OPT_BSN: a.bsn = optarg; break;
        case OPT_ANR: a.anummer = optarg; break;
        case OPT_RGROUP: a.router_group = optarg; break;
        case OPT_SKEY: a.subject_key_file = optarg; break;
        case OPT_FORMAT: a.format = optarg; break;
        case OPT_TOPIC: a.topic = optarg; break;
        case OPT_BASE: a.activity_base = optarg; break;
        case OPT_THREADS: {
            long long n;
            if (kb_cli_long("--threads", optarg, 1, 64, &n, errstr, sizeof errstr)) {
                fprintf(stderr, "error: %s\n", errstr);
                goto out;
            }
            a.threads = (int)n;
            break;
        }
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
    if (sub_bit && optind < argc - 1) {
        fprintf(stderr, "error: audit %s takes no argument \"%s\"\n", sub, argv[1 + optind]);
        goto out;
    }
    if (!strcmp(sub, "keygen"))
        rc = run_keygen(&a);
    else if (!strcmp(sub, "verify"))
        rc = run_verify(&a);
    else if (!strcmp(sub, "subject"))
        rc = run_subject(&a);
    else if (!strcmp(sub, "export"))
        rc = run_export(&a);
    else
        fprintf(stderr, "error: unknown audit command \"%s\"\n\n%s", sub, usage);
out:
    kb_kafka_opts_fini(&a.kafka);
    return rc;
}
