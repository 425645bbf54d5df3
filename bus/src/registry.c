/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * registry.c - the schema registry's state and its Kafka log. The state
 * (subjects, versions, ids, compatibility settings) is a pure function of the
 * records of the one-partition compacted topic <prefix>.schemas, applied in
 * offset order by fixed rules, so every instance that has read the same
 * prefix of the log holds the same state, and a restarted one rebuilds it.
 *
 * Invariants:
 *  1. A SCHEMA record is applied only when it is the next version of its
 *     subject, its schema is not already in the subject, and its id is free
 *     or already names the same (canonical) schema, and the schema has no
 *     other id. Otherwise it changes nothing ("rejected"). Hence the record
 *     at the lowest offset wins every race.
 *  2. Each write carries a fresh nonce in its key, so compaction never
 *     replaces one instance's record with another's; only rejected records
 *     are removed (their writer tombstones them), which cannot change any
 *     decision because a rejected record changed nothing.
 *  3. CONFIG records are last-writer-wins per subject (key without nonce),
 *     which is exactly what compaction keeps.
 *  4. r->mu is held for every read or change of the state; next_offset is
 *     the offset of the next record to apply.
 *  5. Records that no ketenbus instance writes (a schema that is not Avro, a
 *     subject that is not a valid name, a CONFIG value that is neither null
 *     nor a known level) change nothing and are logged with their offset
 *     only; every instance judges them by the same rules, so all agree.
 *  6. Automatic ids come from below KB__REG_DERIVED_ID_BASE only; ids from
 *     there up are the router's projections (kb_registry_register_derived).
 *
 * Registration: sync (read to the end) -> decide (id, version) -> produce ->
 * sync past our offset -> our schema at that version with that id? done :
 * tombstone our record, retry.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <avro.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "ketenbus/log.h"
#include "ketenbus/registry.h"
#include "registry_int.h"
#include "utf8.h"

#define COMP          "registry"
#define AUTO_ID_FLOOR 100000 /* ids below are for the kb.schemaId ranges of schemas/ */
#define MAX_ATTEMPTS  8
#define MAX_SUBJECT   255 /* bytes of a subject name */

static void status_set(struct kb_registry_status *st, int http, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void status_set(struct kb_registry_status *st, int http, int code, const char *fmt, ...)
{
    if (!st)
        return;
    st->http_status = http;
    st->error_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof st->message, fmt, ap);
    va_end(ap);
    /* The reply is JSON, which must be UTF-8: a cut may split a character. */
    kb__registry_utf8_clean(st->message);
}

void kb__registry_utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s, *end = p + strlen(s);
    while (*p) {
        size_t n = kb__utf8_seq(p, (size_t)(end - p), NULL);
        if (!n) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

kb_err_t kb__registry_subject_check(const char *subject, struct kb_registry_status *st)
{
    /* Subjects end up in JSON (UTF-8 only), in log lines and in Kafka keys:
     * one rule for all of them, applied to requests and to the log alike. */
    const char *why = NULL;
    size_t len = strlen(subject);
    if (!len)
        why = "empty";
    else if (len > MAX_SUBJECT)
        why = "longer than 255 bytes";
    enum kb__text_verdict text = why ? KB_TEXT_OK : kb__utf8_text((const uint8_t *)subject, len);
    if (text == KB_TEXT_NOT_UTF8)
        why = "not valid UTF-8";
    else if (text == KB_TEXT_CONTROL)
        why = "contains a control character";
    if (!why)
        return KB_OK;
    status_set(st, 422, 42201, "Invalid subject name: %s", why);
    return KB_ERR_INVALID;
}

static void status_ok(struct kb_registry_status *st)
{
    if (st) {
        st->http_status = 200;
        st->error_code = 0;
        st->message[0] = '\0';
    }
}

char *kb__registry_canonical(const char *schema_json)
{
    json_t *j = json_loads(schema_json, JSON_DECODE_ANY, NULL);
    if (!j)
        return NULL;
    char *out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(j);
    return out;
}

/* --- state --- */

struct kb__reg_subject *kb__registry_subject(kb_registry_t *r, const char *name)
{
    for (size_t i = 0; i < r->nsubjects; i++)
        if (!strcmp(r->subjects[i].name, name))
            return &r->subjects[i];
    return NULL;
}

struct kb__reg_schema *kb__registry_schema(kb_registry_t *r, int32_t id)
{
    for (size_t i = 0; i < r->nschemas; i++)
        if (r->schemas[i].id == id)
            return &r->schemas[i];
    return NULL;
}

static struct kb__reg_schema *schema_by_canon(kb_registry_t *r, const char *canon)
{
    for (size_t i = 0; i < r->nschemas; i++)
        if (!strcmp(r->schemas[i].canon, canon))
            return &r->schemas[i];
    return NULL;
}

static struct kb__reg_subject *subject_add(kb_registry_t *r, const char *name)
{
    struct kb__reg_subject *s = kb__registry_subject(r, name);
    if (s)
        return s;
    if (r->nsubjects == r->subjects_cap) {
        size_t ncap = r->subjects_cap ? r->subjects_cap * 2 : 16;
        struct kb__reg_subject *ns = realloc(r->subjects, ncap * sizeof *ns);
        if (!ns)
            return NULL;
        r->subjects = ns;
        r->subjects_cap = ncap;
    }
    s = &r->subjects[r->nsubjects];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    if (!s->name)
        return NULL;
    r->nsubjects++;
    return s;
}

enum kb_compat kb__registry_level(kb_registry_t *r, const struct kb__reg_subject *s)
{
    if (s && s->has_compat)
        return s->compat;
    return r->has_global ? r->global : r->default_compat;
}

/* A record no ketenbus instance writes: ignored (invariant 5). The offset
 * names it; its content is the writer's and stays out of the log. */
static void ignore(int64_t offset, const char *why)
{
    KB_LOG_WARN(COMP, "record ignored", "offset=%lld reason=\"%s\"", (long long)offset, why);
}

/* Apply one SCHEMA record (invariants 1 and 5). */
static void apply_schema(kb_registry_t *r, json_t *key, json_t *val, int64_t offset)
{
    const char *subject = json_string_value(json_object_get(val, "subject"));
    const char *text = json_string_value(json_object_get(val, "schema"));
    json_t *jversion = json_object_get(val, "version"), *jid = json_object_get(val, "id");
    json_int_t version = json_integer_value(jversion);
    json_int_t id = json_integer_value(jid);
    if (json_is_true(json_object_get(val, "deleted"))) {
        ignore(offset, "deleted schema records are not supported");
        return;
    }
    if (!subject || !text || !json_is_integer(jversion) || !json_is_integer(jid) || version <= 0 ||
        version > INT32_MAX || id <= 0 || id > INT32_MAX) {
        ignore(offset, "schema record without subject, schema, version or id");
        return;
    }
    if (kb__registry_subject_check(subject, NULL) != KB_OK) {
        ignore(offset, "invalid subject name");
        return;
    }
    const char *ksubject = json_string_value(json_object_get(key, "subject"));
    json_t *kversion = json_object_get(key, "version");
    if (!ksubject || strcmp(ksubject, subject) || !json_is_integer(kversion) ||
        json_integer_value(kversion) != version) {
        ignore(offset, "key and value name different subjects or versions");
        return;
    }
    /* Served to every consumer and read back by every registration in the
     * subject: a schema the registry would refuse must not get in this way. */
    char perr[256];
    kb_avsc_t *parsed = kb_avsc_parse(text, strlen(text), perr, sizeof perr);
    if (!parsed) {
        ignore(offset, "schema is not a valid Avro schema");
        return;
    }
    kb_avsc_destroy(parsed);
    char *canon = kb__registry_canonical(text);
    if (!canon) {
        r->broken = 1; /* the text parsed above: only memory can fail here */
        return;
    }
    struct kb__reg_subject *s = kb__registry_subject(r, subject);
    size_t nver = s ? s->n : 0;
    const char *why = NULL;
    struct kb__reg_schema *by_id = kb__registry_schema(r, (int32_t)id);
    struct kb__reg_schema *by_canon = schema_by_canon(r, canon);
    if ((size_t)version != nver + 1)
        why = "not the next version";
    else if (by_id && strcmp(by_id->canon, canon))
        why = "id names another schema";
    else if (by_canon && by_canon->id != id)
        why = "schema has another id";
    for (size_t i = 0; !why && s && i < s->n; i++)
        if (s->versions[i].id == id)
            why = "schema already in subject";
    if (why) {
        /* A lost race (invariant 1): normal, its writer removes it. */
        KB_LOG_DBG(COMP, "record rejected", "offset=%lld reason=\"%s\"", (long long)offset, why);
        free(canon);
        return;
    }
    if (!by_id) {
        if (r->nschemas == r->schemas_cap) {
            size_t ncap = r->schemas_cap ? r->schemas_cap * 2 : 16;
            struct kb__reg_schema *nsch = realloc(r->schemas, ncap * sizeof *nsch);
            if (!nsch)
                goto out_nomem;
            r->schemas = nsch;
            r->schemas_cap = ncap;
        }
        struct kb__reg_schema *sc = &r->schemas[r->nschemas];
        sc->id = (int32_t)id;
        sc->canon = canon;
        sc->text = strdup(text);
        if (!sc->text)
            goto out_nomem;
        canon = NULL;
        r->nschemas++;
        /* Projection ids stay out: automatic ids must not follow them up
         * into their range (invariant 6). */
        if (id < KB__REG_DERIVED_ID_BASE && id > r->max_id)
            r->max_id = (int32_t)id;
    }
    s = subject_add(r, subject);
    if (!s)
        goto out_nomem;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 4;
        struct kb__reg_version *nv = realloc(s->versions, ncap * sizeof *nv);
        if (!nv)
            goto out_nomem;
        s->versions = nv;
        s->cap = ncap;
    }
    s->versions[s->n].version = (int)version;
    s->versions[s->n].id = (int32_t)id;
    s->n++;
    free(canon);
    return;
out_nomem:
    /* The state would now differ from other instances': stop trusting it. */
    r->broken = 1;
    free(canon);
}

/* Apply one CONFIG record (invariants 3 and 5). Only a null value (a
 * tombstone) removes a setting; a value that names no level changes nothing. */
static void apply_config(kb_registry_t *r, json_t *key, const rd_kafka_message_t *m)
{
    json_t *jsub = json_object_get(key, "subject");
    if (jsub && !json_is_null(jsub) &&
        (!json_is_string(jsub) || kb__registry_subject_check(json_string_value(jsub), NULL))) {
        ignore(m->offset, "config record with an invalid subject");
        return;
    }
    int set = 0;
    enum kb_compat c = KB_COMPAT_DEFAULT;
    if (m->payload) {
        json_t *val = json_loadb(m->payload, m->len, 0, NULL);
        const char *level = json_string_value(json_object_get(val, "compatibilityLevel"));
        kb_err_t err = level ? kb_compat_parse(level, &c) : KB_ERR_INVALID;
        json_decref(val);
        if (err) {
            ignore(m->offset, "config record without a known compatibilityLevel");
            return;
        }
        set = 1;
    }
    if (json_is_string(jsub)) {
        struct kb__reg_subject *s = subject_add(r, json_string_value(jsub));
        if (!s) {
            r->broken = 1;
            return;
        }
        s->has_compat = set;
        s->compat = c;
    } else {
        r->has_global = set;
        r->global = c;
    }
}

static void apply(kb_registry_t *r, const rd_kafka_message_t *m)
{
    json_t *key = m->key ? json_loadb(m->key, m->key_len, 0, NULL) : NULL;
    const char *kt = json_string_value(json_object_get(key, "keytype"));
    if (!kt) {
        ignore(m->offset, "key without keytype");
    } else if (!strcmp(kt, "SCHEMA")) {
        /* A null value is a losing writer's tombstone (invariant 2). */
        json_t *val = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
        if (val)
            apply_schema(r, key, val, m->offset);
        else if (m->payload)
            ignore(m->offset, "schema record value is not JSON");
        json_decref(val);
    } else if (!strcmp(kt, "CONFIG")) {
        apply_config(r, key, m);
    } else {
        ignore(m->offset, "unknown keytype");
    }
    json_decref(key);
}

/* --- Kafka --- */

struct delivery {
    rd_kafka_resp_err_t err; /* delivery outcome */
    int64_t offset;          /* where the record landed */
    int done;                /* the report arrived */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct delivery *d = m->_private;
    if (d) {
        d->err = m->err;
        d->offset = m->offset;
        d->done = 1;
    }
}

/* Read the topic up to its end (as of now). Caller holds r->mu. */
kb_err_t kb__registry_sync(kb_registry_t *r, struct kb_registry_status *st)
{
    if (r->broken) {
        status_set(st, 500, 50001, "registry state incomplete after an allocation failure");
        return KB_ERR_NOMEM;
    }
    int64_t lo = 0, hi = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rd_kafka_resp_err_t e;
    /* Right after the topic was created its partition may have no leader
     * yet (UNKNOWN_TOPIC_OR_PART, NOT_LEADER, LEADER_NOT_AVAILABLE): that
     * passes within moments, so wait for it instead of failing start-up.
     * librdkafka says so locally too (_UNKNOWN_PARTITION/_TOPIC) while its
     * metadata cache still lacks the new topic. */
    for (;;) {
        e = rd_kafka_query_watermark_offsets(r->consumer, r->topic, 0, &lo, &hi, r->timeout_ms);
        if (e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
            e != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION && e != RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC &&
            e != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
            e != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
            break;
        struct timespec now, pause = {0, 200 * 1000000L};
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > r->timeout_ms)
            break;
        nanosleep(&pause, NULL);
    }
    if (e) {
        status_set(st, 500, 50001, "Error in the backend data store: %s", rd_kafka_err2str(e));
        return KB_ERR_KAFKA;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (r->next_offset < hi) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, 100);
        if (m) {
            if (!m->err) {
                if (m->offset >= r->next_offset) {
                    apply(r, m);
                    r->next_offset = m->offset + 1;
                }
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* Compaction may leave the end below hi; EOF says we are there. */
                if (m->offset >= hi)
                    r->next_offset = hi;
            } else {
                KB_LOG_WARN(COMP, "consume error", "err=\"%s\"", rd_kafka_err2str(m->err));
            }
            rd_kafka_message_destroy(m);
        }
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms > r->timeout_ms) {
            status_set(st, 500, 50002, "Operation timed out reading the schemas topic");
            return KB_ERR_TIMEOUT;
        }
    }
    return KB_OK;
}

static kb_err_t produce(kb_registry_t *r, json_t *key, json_t *val, int64_t *offset,
                        struct kb_registry_status *st)
{
    char *k = json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS);
    char *v = val ? json_dumps(val, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    kb_err_t err = KB_OK;
    if (!k || (val && !v)) {
        status_set(st, 500, 50001, "out of memory");
        err = KB_ERR_NOMEM;
        goto out_free;
    }
    struct delivery d = {0};
    rd_kafka_resp_err_t e = rd_kafka_producev(
        r->producer, RD_KAFKA_V_TOPIC(r->topic), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_KEY(k, strlen(k)), RD_KAFKA_V_VALUE(v, v ? strlen(v) : 0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
    if (e) {
        status_set(st, 500, 50001, "Error in the backend data store: %s", rd_kafka_err2str(e));
        err = KB_ERR_KAFKA;
        goto out_free;
    }
    rd_kafka_flush(r->producer, r->timeout_ms);
    if (!d.done) {
        /* d lives on this stack: the report must not arrive later. */
        rd_kafka_purge(r->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(r->producer, 1000);
        status_set(st, 500, 50002, "Operation timed out writing the schemas topic");
        err = KB_ERR_TIMEOUT;
    } else if (d.err) {
        status_set(st, 500, 50001, "Error in the backend data store: %s", rd_kafka_err2str(d.err));
        err = KB_ERR_KAFKA;
    } else if (offset) {
        *offset = d.offset;
    }
out_free:
    free(k);
    free(v);
    return err;
}

static kb_err_t create_topic(kb_registry_t *r, char *errstr, size_t errstr_size)
{
    /* Existing topic: it must have one partition, or there is no total order. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->producer, r->topic, NULL);
    rd_kafka_resp_err_t me =
        rkt ? rd_kafka_metadata(r->producer, 0, rkt, &md, r->timeout_ms) : RD_KAFKA_RESP_ERR__FAIL;
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (!me && md->topic_cnt == 1 && !md->topics[0].err) {
        int parts = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        if (parts != 1)
            return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                              "topic %s has %d partitions; the registry needs exactly 1", r->topic,
                              parts);
        return KB_OK;
    }
    if (!me)
        rd_kafka_metadata_destroy(md);
    static const char *const compacted[] = {"cleanup.policy", "compact", NULL};
    const struct kb_topic_spec spec = {.name = r->topic, .partitions = 1, .configs = compacted};
    return kb_kafka_create_topics(r->producer, &spec, 1, 0, r->timeout_ms, errstr, errstr_size);
}

kb_registry_t *kb_registry_new(const struct kb_registry_opts *opts, char *errstr,
                               size_t errstr_size)
{
    kb_registry_t *r = calloc(1, sizeof *r);
    if (!r) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
    if (!strcmp(kb_compat_name(opts->default_compat), "?")) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "unknown compatibility level %d",
                   (int)opts->default_compat);
        goto out_destroy;
    }
    /* An explicit NONE is honoured; only "no choice" means the default. */
    r->default_compat = opts->default_compat != KB_COMPAT_DEFAULT ? opts->default_compat
                                                                  : KB_COMPAT_BACKWARD_TRANSITIVE;
    kb_topic_name(r->topic, sizeof r->topic, "schemas");

    char kerr[512];
    rd_kafka_conf_t *pc = kb_kafka_conf_new(opts->kafka, errstr, errstr_size);
    if (!pc)
        goto out_destroy;
    rd_kafka_conf_set(pc, "acks", "all", NULL, 0);
    rd_kafka_conf_set(pc, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(pc, "linger.ms", "0", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, kerr, sizeof kerr);
    if (!r->producer) {
        rd_kafka_conf_destroy(pc);
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "producer: %s", kerr);
        goto out_destroy;
    }
    rd_kafka_conf_t *cc = kb_kafka_conf_new(opts->kafka, errstr, errstr_size);
    if (!cc)
        goto out_destroy;
    /* A private group id: partitions are assigned by hand and nothing is
     * ever committed, the id only satisfies the consumer API. */
    unsigned char rnd[8];
    char gid[300];
    RAND_bytes(rnd, sizeof rnd);
    snprintf(gid, sizeof gid, "%s.registry.%02x%02x%02x%02x%02x%02x%02x%02x", kb_topic_prefix(),
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    rd_kafka_conf_set(cc, "group.id", gid, NULL, 0);
    rd_kafka_conf_set(cc, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(cc, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_conf_set(cc, "isolation.level", "read_committed", NULL, 0);
    /* A registration waits to read its own record back: do not let the
     * broker hold an empty fetch for the default 500 ms. */
    rd_kafka_conf_set(cc, "fetch.wait.max.ms", "10", NULL, 0);
    rd_kafka_conf_set(cc, "fetch.error.backoff.ms", "10", NULL, 0);
    r->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, kerr, sizeof kerr);
    if (!r->consumer) {
        rd_kafka_conf_destroy(cc);
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "consumer: %s", kerr);
        goto out_destroy;
    }
    rd_kafka_poll_set_consumer(r->consumer);
    if (create_topic(r, errstr, errstr_size) != KB_OK)
        goto out_destroy;
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, r->topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(r->consumer, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (e) {
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "assign: %s", rd_kafka_err2str(e));
        goto out_destroy;
    }
    struct kb_registry_status st;
    pthread_mutex_lock(&r->mu);
    kb_err_t err = kb__registry_sync(r, &st);
    pthread_mutex_unlock(&r->mu);
    if (err) {
        kb_err_set(err, errstr, errstr_size, "%s", st.message);
        goto out_destroy;
    }
    /* The default level is this instance's own (not in the topic): say it. */
    KB_LOG_INFO(COMP, "registry ready",
                "topic=%s schemas=%zu subjects=%zu next_offset=%lld default_level=%s", r->topic,
                r->nschemas, r->nsubjects, (long long)r->next_offset,
                kb_compat_name(r->default_compat));
    return r;
out_destroy:
    kb_registry_destroy(r);
    return NULL;
}

void kb_registry_destroy(kb_registry_t *r)
{
    if (!r)
        return;
    if (r->consumer) {
        rd_kafka_consumer_close(r->consumer);
        rd_kafka_destroy(r->consumer);
    }
    if (r->producer) {
        rd_kafka_flush(r->producer, 2000);
        rd_kafka_destroy(r->producer);
    }
    for (size_t i = 0; i < r->nschemas; i++) {
        free(r->schemas[i].text);
        free(r->schemas[i].canon);
    }
    free(r->schemas);
    for (size_t i = 0; i < r->nsubjects; i++) {
        free(r->subjects[i].name);
        free(r->subjects[i].versions);
    }
    free(r->subjects);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* --- operations --- */

void kb__registry_compat_status(struct kb_registry_status *st, kb_err_t err, const char *why)
{
    if (err == KB_ERR_RANGE)
        /* Not retriable (the same schemas give the same answer), so 422. */
        status_set(st, 422, 42201, "Invalid schema: %s", why);
    else
        status_set(st, 500, 50001, "compatibility check failed: %s", kb_err_str(err));
}

kb_err_t kb__registry_validate(const char *schema_json, kb_avsc_t **out,
                               struct kb_registry_status *st)
{
    char why[512];
    kb_avsc_t *a = kb_avsc_parse(schema_json, strlen(schema_json), why, sizeof why);
    if (!a) {
        status_set(st, 422, 42201, "Invalid schema: %s", why);
        return KB_ERR_SCHEMA;
    }
    /* Every ketenbus process decodes with avro-c: it must take the schema too. */
    avro_schema_t as = NULL;
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &as) != 0) {
        status_set(st, 422, 42201, "Invalid schema: avro-c: %s", avro_strerror());
        kb_avsc_destroy(a);
        return KB_ERR_SCHEMA;
    }
    avro_schema_decref(as);
    if (out)
        *out = a;
    else
        kb_avsc_destroy(a);
    return KB_OK;
}

/* The parsed versions of subject @p s, oldest first (caller frees each and the array). */
kb_err_t kb__registry_versions(kb_registry_t *r, const struct kb__reg_subject *s, kb_avsc_t ***out,
                               struct kb_registry_status *st)
{
    kb_avsc_t **vs = calloc(s->n ? s->n : 1, sizeof *vs);
    if (!vs) {
        status_set(st, 500, 50001, "out of memory");
        return KB_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct kb__reg_schema *sc = kb__registry_schema(r, s->versions[i].id);
        char why[256];
        vs[i] = sc ? kb_avsc_parse(sc->text, strlen(sc->text), why, sizeof why) : NULL;
        if (!vs[i]) {
            kb__registry_versions_free(vs, i);
            status_set(st, 500, 50001, "stored version %d of the subject does not parse",
                       s->versions[i].version);
            return KB_ERR_SCHEMA;
        }
    }
    *out = vs;
    return KB_OK;
}

void kb__registry_versions_free(kb_avsc_t **vs, size_t n)
{
    for (size_t i = 0; vs && i < n; i++)
        kb_avsc_destroy(vs[i]);
    free(vs);
}

static const struct kb__reg_version *
find_canon_in_subject(kb_registry_t *r, const struct kb__reg_subject *s, const char *canon)
{
    for (size_t i = 0; s && i < s->n; i++) {
        const struct kb__reg_schema *sc = kb__registry_schema(r, s->versions[i].id);
        if (sc && !strcmp(sc->canon, canon))
            return &s->versions[i];
    }
    return NULL;
}

/* kb_registry_register; @p derived allows ids from KB__REG_DERIVED_ID_BASE. */
static kb_err_t register_schema(kb_registry_t *r, const char *subject, const char *schema_json,
                                int32_t want_id, int derived, int32_t *id, int *version,
                                struct kb_registry_status *st)
{
    /* Every path below that fails says why; this covers any that would not. */
    status_set(st, 500, 50001, "internal error");
    kb_err_t err = kb__registry_subject_check(subject, st);
    if (err)
        return err;
    kb_avsc_t *cand = NULL;
    err = kb__registry_validate(schema_json, &cand, st);
    if (err)
        return err;
    char *canon = kb__registry_canonical(schema_json);
    if (!canon) {
        kb_avsc_destroy(cand);
        status_set(st, 500, 50001, "out of memory");
        return KB_ERR_NOMEM;
    }
    if (want_id <= 0) {
        json_t *root = json_loads(schema_json, JSON_DECODE_ANY, NULL);
        json_t *jid = json_object_get(root, "kb.schemaId");
        if (json_is_integer(jid) && json_integer_value(jid) > 0 &&
            json_integer_value(jid) <= INT32_MAX)
            want_id = (int32_t)json_integer_value(jid);
        json_decref(root);
    }
    if (!derived && want_id >= KB__REG_DERIVED_ID_BASE) {
        status_set(st, 422, 42205,
                   "Id %d is not permitted: ids from %d up are reserved for projected schemas",
                   (int)want_id, KB__REG_DERIVED_ID_BASE);
        err = KB_ERR_RANGE;
        goto out_free;
    }

    pthread_mutex_lock(&r->mu);
    err = KB_ERR_STATE;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if ((err = kb__registry_sync(r, st)) != KB_OK)
            break;
        struct kb__reg_subject *s = kb__registry_subject(r, subject);
        const struct kb__reg_version *have = find_canon_in_subject(r, s, canon);
        if (have) {
            if (want_id > 0 && have->id != want_id) {
                status_set(st, 422, 42205,
                           "Schema already registered with id %d instead of input id %d", have->id,
                           want_id);
                err = KB_ERR_RANGE;
                break;
            }
            *id = have->id;
            *version = have->version;
            status_ok(st);
            err = KB_OK;
            break;
        }
        if (s && s->n) {
            kb_avsc_t **vs = NULL;
            if ((err = kb__registry_versions(r, s, &vs, st)) != KB_OK)
                break;
            char why[1024];
            enum kb_compat level = kb__registry_level(r, s);
            err = kb_compat_check(level, cand, (const kb_avsc_t *const *)vs, s->n, why, sizeof why);
            kb__registry_versions_free(vs, s->n);
            if (err == KB_ERR_SCHEMA) {
                status_set(st, 409, 409,
                           "Schema being registered is incompatible with an earlier schema "
                           "for subject \"%s\": %s",
                           subject, why);
                break;
            }
            if (err) {
                kb__registry_compat_status(st, err, why);
                break;
            }
        }
        const struct kb__reg_schema *same = schema_by_canon(r, canon);
        int32_t new_id;
        if (same) {
            if (want_id > 0 && same->id != want_id) {
                status_set(st, 422, 42205,
                           "Schema already registered with id %d instead of input id %d", same->id,
                           want_id);
                err = KB_ERR_RANGE;
                break;
            }
            new_id = same->id;
        } else if (want_id > 0) {
            if (kb__registry_schema(r, want_id)) {
                status_set(st, 422, 42205,
                           "Overwrite new schema with id %d is not permitted: the id names "
                           "another schema",
                           want_id);
                err = KB_ERR_RANGE;
                break;
            }
            new_id = want_id;
        } else {
            /* 64 bits: max_id may be INT32_MAX - 1 and must not wrap. */
            int64_t next = (int64_t)(r->max_id > AUTO_ID_FLOOR ? r->max_id : AUTO_ID_FLOOR) + 1;
            if (next >= KB__REG_DERIVED_ID_BASE) {
                status_set(st, 422, 42205,
                           "No automatic schema id left below %d; register with an explicit "
                           "free id",
                           KB__REG_DERIVED_ID_BASE);
                err = KB_ERR_RANGE;
                break;
            }
            new_id = (int32_t)next;
        }
        int new_version = (s ? (int)s->n : 0) + 1;

        unsigned char rnd[8];
        char nonce[17];
        RAND_bytes(rnd, sizeof rnd);
        for (int i = 0; i < 8; i++)
            snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
        json_t *key = json_pack("{s:s,s:s,s:i,s:i,s:s}", "keytype", "SCHEMA", "subject", subject,
                                "version", new_version, "magic", 1, "nonce", nonce);
        json_t *val = json_pack("{s:s,s:i,s:i,s:s,s:b}", "subject", subject, "version", new_version,
                                "id", (int)new_id, "schema", schema_json, "deleted", 0);
        int64_t offset = -1;
        err = KB_ERR_NOMEM;
        if (!key || !val)
            status_set(st, 500, 50001, "out of memory");
        else
            err = produce(r, key, val, &offset, st);
        if (err == KB_OK && (err = kb__registry_sync(r, st)) == KB_OK && r->next_offset <= offset) {
            status_set(st, 500, 50002, "Operation timed out: own record not read back");
            err = KB_ERR_TIMEOUT;
        }
        if (err) {
            json_decref(key);
            json_decref(val);
            break;
        }
        s = kb__registry_subject(r, subject);
        have = find_canon_in_subject(r, s, canon);
        if (have && have->version == new_version && have->id == new_id) {
            KB_LOG_INFO(COMP, "schema registered", "subject=%s version=%d id=%d offset=%lld",
                        subject, new_version, new_id, (long long)offset);
            *id = new_id;
            *version = new_version;
            status_ok(st);
            json_decref(key);
            json_decref(val);
            err = KB_OK;
            break;
        }
        /* Lost a race (invariant 1): drop our record, decide again. */
        KB_LOG_INFO(COMP, "registration lost a race, retrying", "subject=%s attempt=%d", subject,
                    attempt + 1);
        produce(r, key, NULL, NULL, NULL);
        json_decref(key);
        json_decref(val);
        err = KB_ERR_STATE;
        status_set(st, 500, 50001, "registration kept losing races with other instances");
    }
    pthread_mutex_unlock(&r->mu);
out_free:
    free(canon);
    kb_avsc_destroy(cand);
    return err;
}

kb_err_t kb_registry_register(kb_registry_t *r, const char *subject, const char *schema_json,
                              int32_t want_id, int32_t *id, int *version,
                              struct kb_registry_status *st)
{
    return register_schema(r, subject, schema_json, want_id, 0, id, version, st);
}

kb_err_t kb_registry_register_derived(kb_registry_t *r, const char *subject,
                                      const char *schema_json, int32_t id, int *version,
                                      struct kb_registry_status *st)
{
    kb_err_t err = kb__registry_subject_check(subject, st);
    if (err)
        return err;
    pthread_mutex_lock(&r->mu);
    err = kb__registry_sync(r, st);
    if (!err) {
        /* Written only when not already NONE, so a restart writes nothing. */
        const struct kb__reg_subject *s = kb__registry_subject(r, subject);
        if (!s || !s->has_compat || s->compat != KB_COMPAT_NONE)
            err = kb__registry_set_config(r, subject, KB_COMPAT_NONE, st);
    }
    pthread_mutex_unlock(&r->mu);
    if (err)
        return err;
    int32_t got = 0;
    return register_schema(r, subject, schema_json, id, 1, &got, version, st);
}

kb_err_t kb_registry_schema_by_id(kb_registry_t *r, int32_t id, char **json,
                                  struct kb_registry_status *st)
{
    kb_err_t err = KB_OK;
    pthread_mutex_lock(&r->mu);
    struct kb__reg_schema *sc = kb__registry_schema(r, id);
    if (!sc && (err = kb__registry_sync(r, st)) == KB_OK)
        sc = kb__registry_schema(r, id);
    if (!err && !sc) {
        status_set(st, 404, 40403, "Schema %d not found", (int)id);
        err = KB_ERR_NOTFOUND;
    }
    if (!err) {
        *json = strdup(sc->text);
        if (!*json) {
            status_set(st, 500, 50001, "out of memory");
            err = KB_ERR_NOMEM;
        } else {
            status_ok(st);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return err;
}

kb_err_t kb__registry_set_config(kb_registry_t *r, const char *subject, enum kb_compat level,
                                 struct kb_registry_status *st)
{
    if (subject && kb__registry_subject_check(subject, st) != KB_OK)
        return KB_ERR_INVALID;
    if (level == KB_COMPAT_DEFAULT || !strcmp(kb_compat_name(level), "?")) {
        status_set(st, 422, 42203, "Invalid compatibility level");
        return KB_ERR_INVALID;
    }
    json_t *key =
        subject ? json_pack("{s:s,s:s,s:i}", "keytype", "CONFIG", "subject", subject, "magic", 0)
                : json_pack("{s:s,s:n,s:i}", "keytype", "CONFIG", "subject", "magic", 0);
    json_t *val = json_pack("{s:s}", "compatibilityLevel", kb_compat_name(level));
    kb_err_t err = KB_ERR_NOMEM;
    if (!key || !val)
        status_set(st, 500, 50001, "out of memory");
    else
        err = produce(r, key, val, NULL, st);
    json_decref(key);
    json_decref(val);
    if (!err)
        err = kb__registry_sync(r, st);
    if (!err)
        status_ok(st);
    return err;
}

char *kb_registry_dump(kb_registry_t *r)
{
    struct kb_registry_status st;
    char *out = NULL;
    pthread_mutex_lock(&r->mu);
    if (kb__registry_sync(r, &st) != KB_OK)
        goto out_unlock;
    json_t *j = json_pack("{s:s,s:[],s:{}}", "compatibility",
                          kb_compat_name(kb__registry_level(r, NULL)), "schemas", "subjects");
    json_t *schemas = json_object_get(j, "schemas"), *subjects = json_object_get(j, "subjects");
    for (size_t i = 0; j && i < r->nschemas; i++)
        json_array_append_new(schemas, json_pack("{s:i,s:s}", "id", (int)r->schemas[i].id, "schema",
                                                 r->schemas[i].text));
    for (size_t i = 0; j && i < r->nsubjects; i++) {
        const struct kb__reg_subject *s = &r->subjects[i];
        json_t *vs = json_array();
        for (size_t k = 0; k < s->n; k++)
            json_array_append_new(vs, json_pack("{s:i,s:i}", "version", s->versions[k].version,
                                                "id", (int)s->versions[k].id));
        json_object_set_new(subjects, s->name,
                            json_pack("{s:o,s:s?}", "versions", vs, "compatibility",
                                      s->has_compat ? kb_compat_name(s->compat) : NULL));
    }
    out = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    json_decref(j);
out_unlock:
    pthread_mutex_unlock(&r->mu);
    return out;
}
