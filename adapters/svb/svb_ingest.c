/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * svb_ingest.c - AKW02 records to nl.kinderbijslag.aanvraag-ontvangen
 * events, per spool file and per TCP frame (see svb_ingest.h). All Kafka
 * I/O goes through adapters/common/ingress.h.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h" /* kb_adapter_dataref */
#include "ketenbus/clock.h"
#include "ketenbus/log.h"
#include "svb_ingest.h"

#define COMP "svb"
#define MAX_FILE (8u << 20) /* far above any batch the portal sends; larger is refused */
#define ACK_TIMEOUT_MS 30000
#define EVENT_TYPE "nl.kinderbijslag.aanvraag-ontvangen"

struct kb_svb_ingest_stats kb_svb_ingest_stats;
pthread_mutex_t *kb_svb_ingest_lock;

int32_t kb_svb_epoch_days(const char *date)
{
    /* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian calendar. */
    int y = (date[0] - '0') * 1000 + (date[1] - '0') * 100 + (date[2] - '0') * 10 + (date[3] - '0');
    int m = (date[4] - '0') * 10 + (date[5] - '0');
    int d = (date[6] - '0') * 10 + (date[7] - '0');
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Set field @p name of record @p rec to enum symbol index @p idx. */
static kb_err_t set_enum(avro_value_t *rec, const char *name, int idx)
{
    avro_value_t f;
    if (avro_value_get_by_name(rec, name, &f, NULL) || avro_value_set_enum(&f, idx))
        return KB_ERR_SCHEMA;
    return KB_OK;
}

static kb_err_t fill(avro_value_t *v, const struct kb_akw02 *rec, enum kb_svb_transport transport,
                     int regel, int64_t received_ms, const char *sha)
{
    kb_err_t err = kb_value_init_nulls(v);
    if (!err)
        err = kb_value_set_string(v, "kenmerkUitnodiging", rec->kenmerk_uitnodiging);
    if (!err)
        err = kb_value_set_int(v, "datumAanvraag", kb_svb_epoch_days(rec->datum_aanvraag));
    if (!err)
        err = kb_value_set_string(v, "bsnAanvrager", rec->bsn_aanvrager);
    if (!err && rec->bsn_partner[0])
        err = kb_value_set_string(v, "bsnPartner", rec->bsn_partner);
    avro_value_t kinderen;
    if (!err && avro_value_get_by_name(v, "kinderen", &kinderen, NULL))
        err = KB_ERR_SCHEMA;
    for (int i = 0; !err && i < rec->aantal_kinderen; i++) {
        const struct kb_akw02_kind *k = &rec->kinderen[i];
        avro_value_t kind, f;
        if (avro_value_append(&kinderen, &kind, NULL)) {
            err = KB_ERR_SCHEMA;
            break;
        }
        err = kb_value_set_string(&kind, "bsn", k->bsn);
        if (!err)
            err = set_enum(&kind, "relatie", k->relatie == 'E' ? 0 : k->relatie == 'A' ? 1 : 2);
        if (!err && (avro_value_get_by_name(&kind, "inwonend", &f, NULL) ||
                     avro_value_set_boolean(&f, k->inwonend == 'J')))
            err = KB_ERR_SCHEMA;
    }
    if (!err)
        err = kb_value_set_string(v, "iban", rec->iban);
    if (!err) {
        char jaar[5];
        memcpy(jaar, rec->ingangskwartaal, 4);
        jaar[4] = '\0';
        err = kb_value_set_int(v, "ingangskwartaal.jaar", atoi(jaar));
    }
    if (!err)
        err = kb_value_set_int(v, "ingangskwartaal.kwartaal", rec->ingangskwartaal[4] - '0');
    if (!err)
        err = kb_value_set_string(v, "herkomst.recordType", "AKW02");
    avro_value_t herkomst;
    if (!err && (avro_value_get_by_name(v, "herkomst", &herkomst, NULL) ||
                 set_enum(&herkomst, "transport", transport == KB_SVB_TCP)))
        err = KB_ERR_SCHEMA;
    if (!err)
        err = kb_value_set_int(v, "herkomst.regel", regel);
    if (!err)
        err = kb_value_set_long(v, "herkomst.ontvangen", received_ms);
    if (!err)
        err = kb_value_set_string(v, "herkomst.sha256", sha);
    return err;
}

kb_err_t kb_svb_akw02_event(const struct kb_svb_ingest_ctx *ctx, const struct kb_akw02 *rec,
                            const char *raw, size_t raw_len, enum kb_svb_transport transport,
                            int regel, int64_t received_ms, const char *dataref,
                            struct kb_ingress_event *ev, char *errstr, size_t errstr_size)
{
    memset(ev, 0, sizeof *ev);
    const struct kb_schema *schema = kb_schemas_by_type(ctx->schemas, EVENT_TYPE);
    if (!schema)
        return kb_err_set(KB_ERR_SCHEMA, errstr, errstr_size, "no schema for " EVENT_TYPE);
    char sha[65];
    kb_sha256_hex(raw, raw_len, sha);
    avro_value_t v;
    if (avro_generic_value_new(schema->iface, &v))
        return KB_ERR_NOMEM;
    kb_err_t err = fill(&v, rec, transport, regel, received_ms, sha);
    if (err)
        err = kb_err_set(err, errstr, errstr_size, "cannot fill " EVENT_TYPE " (schema mismatch)");
    else
        err = kb_schema_encode(schema, &v, &ev->value, &ev->len, errstr, errstr_size);
    avro_value_decref(&v);
    if (err)
        return err;
    /* The same record bytes are the same application, whichever file or
     * connection carried them: the router drops the repeat. */
    char name[300];
    int nlen = snprintf(name, sizeof name, "%s|%s|%s", ctx->source, sha, EVENT_TYPE);
    kb_event_uuid5(name, (size_t)nlen, ev->attrs.id);
    snprintf(ev->attrs.source, sizeof ev->attrs.source, "%s", ctx->source);
    snprintf(ev->attrs.type, sizeof ev->attrs.type, "%s", EVENT_TYPE);
    kb_event_time(received_ms, ev->attrs.time);
    snprintf(ev->attrs.dataref, sizeof ev->attrs.dataref, "%s", dataref ? dataref : "");
    kb_event_traceparent(ev->attrs.id, ev->attrs.traceparent);
    ev->attrs.schema_id = schema->id;
    err = kb_event_pseudonym(ctx->key, ctx->key_len, "bsn", rec->bsn_aanvrager, ev->attrs.subject);
    if (err) {
        free(ev->value);
        ev->value = NULL;
        return kb_err_set(err, errstr, errstr_size, "subject key unusable");
    }
    memcpy(ev->key, ev->attrs.subject, sizeof ev->key);
    return KB_OK;
}

/*
 * Bounds of one spool file, so that hostile input costs neither memory nor
 * time out of proportion. Memory: the file (MAX_FILE), at most EVENT_CHUNK
 * built events and MAX_REFUSED refused records at a time, however many lines
 * the file has (sizing arrays per line end cost ~1.3 kB per newline: 11 GB for
 * 8 MiB of newlines). Time: every refused record is its own acknowledged
 * message on the quarantine topic (ingress.h has no batch quarantine), so
 * after MAX_REFUSED of them the rest of the file goes as one message.
 */
#define EVENT_CHUNK     1024         /* events built before they are sent together */
#define MAX_REFUSED     1000         /* refused records quarantined one by one per file */
#define MAX_FILE_REASON (64u << 10)  /* .reason of a file quarantined whole */
#define RULE_REST       "akw02-too-many-refused"

/* One record of a spool file that the parser refused. */
struct refused {
    size_t offset;             /* byte offset of the record in the file */
    size_t len;                /* record length without line end */
    int regel;                 /* 1-based line */
    const char *rule;          /* kb_akw02_rule_name(), or "size" */
    char reason[360];          /* "regel N: AKW02 <field> (col a-b): why" */
};

/* What of a spool file was not judged, once MAX_REFUSED records were refused. */
struct rest {
    size_t offset; /* byte offset of the first record not judged; the file length: none */
    size_t len;    /* bytes from there to the end of the file */
    int regel;     /* its line */
    char reason[320];
};

/* The ingress is shared with the TCP thread: held per Kafka call, not per
 * file, so that a long file never keeps TCP senders waiting for an answer. */
static void ing_lock(void)
{
    if (kb_svb_ingest_lock)
        pthread_mutex_lock(kb_svb_ingest_lock);
}

static void ing_unlock(void)
{
    if (kb_svb_ingest_lock)
        pthread_mutex_unlock(kb_svb_ingest_lock);
}

/* Records (raw bytes, rule, reason) to the quarantine topic, all
 * acknowledged: 0, or -1 (logged). */
static int quarantine_many(kb_ingress_t *ing, const struct kb_ingress_refusal *q, size_t n)
{
    char errstr[512];
    ing_lock();
    kb_err_t err = kb_ingress_quarantine_many(ing, q, n, ACK_TIMEOUT_MS, errstr, sizeof errstr);
    if (!err)
        kb_svb_ingest_stats.quarantined += n;
    ing_unlock();
    if (err)
        KB_LOG_ERR(COMP, "quarantine topic not acknowledged; file kept", "error=\"%s\"", errstr);
    return err ? -1 : 0;
}

/* One record to the quarantine topic (quarantine_many). */
static int quarantine_topic(kb_ingress_t *ing, const void *raw, size_t len, const char *rule,
                            const char *reason, int64_t offset)
{
    struct kb_ingress_refusal r = {raw, len, rule, reason, offset};
    return quarantine_many(ing, &r, 1);
}

/* Send @p n built events and free their values: 0, or -1 (logged; values freed too). */
static int send_events(kb_ingress_t *ing, struct kb_ingress_event *evs, size_t n)
{
    char errstr[512];
    ing_lock();
    /* Every event was checked against the limit when it was built: a
     * KB_ERR_RANGE here means Kafka refused one as too large after a topic's
     * limit was lowered; the limits are learnt again, the file kept, and the
     * next scan refuses that record by the new limit. */
    kb_err_t err = kb_ingress_send_sized(ing, evs, n, ACK_TIMEOUT_MS, errstr, sizeof errstr);
    if (!err)
        kb_svb_ingest_stats.records += n;
    ing_unlock();
    if (err)
        KB_LOG_ERR(COMP, "events not acknowledged; file kept for retry", "records=%zu error=\"%s\"",
                   n, errstr);
    for (size_t i = 0; i < n; i++) {
        if (!err)
            KB_LOG_INFO(COMP, "event published", "event_id=%s type=%s subject=%s sequence=%llu",
                        evs[i].attrs.id, evs[i].attrs.type, evs[i].attrs.subject,
                        (unsigned long long)evs[i].attrs.sequence);
        free(evs[i].value);
        evs[i].value = NULL;
    }
    return err ? -1 : 0;
}

/* A file over MAX_FILE: its reason, size and SHA-256 (no bytes) to the
 * quarantine topic, as every refused input, then the file to quarantine/. */
static int quarantine_oversize(kb_ingress_t *ing, struct kb_spool *spool, const char *name,
                               const struct kb_spool_file *file)
{
    char reason[320];
    const char *rule = kb_akw02_rule_name(KB_AKW02_LENGTH);
    kb_spool_oversize_reason(spool, name, rule, MAX_FILE, reason, sizeof reason);
    KB_LOG_WARN(COMP, "file over size limit", "limit=%u", MAX_FILE);
    if (quarantine_topic(ing, "", 0, rule, reason, -1))
        return -1;
    return kb_spool_quarantine(spool, name, file, reason) ? -1 : 0;
}

/* Append to @p buf (@p cap bytes, *@p len used), cutting what does not fit. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (w > 0)
        *len += (size_t)w < cap - *len ? (size_t)w : cap - *len - 1;
}

/* The .reason of a file quarantined whole: every reason while they fit in
 * MAX_FILE_REASON (each is on the quarantine topic anyway), then a count. */
static char *file_reason(const struct refused *bad, size_t n_bad, const struct rest *rest)
{
    char *reason = malloc(MAX_FILE_REASON);
    if (!reason)
        return NULL;
    size_t rl = 0;
    reason[0] = '\0';
    for (size_t i = 0; i < n_bad; i++) {
        if (rl + 2 * sizeof bad->reason + sizeof rest->reason > MAX_FILE_REASON) {
            append(reason, MAX_FILE_REASON, &rl,
                   "\n%zu more refused records, each with its reason on the quarantine topic",
                   n_bad - i);
            break;
        }
        append(reason, MAX_FILE_REASON, &rl, "%s%s: %s", rl ? "\n" : "", bad[i].rule,
               bad[i].reason);
    }
    if (rest->reason[0])
        append(reason, MAX_FILE_REASON, &rl, "%s%s: %s", rl ? "\n" : "", RULE_REST, rest->reason);
    return reason;
}

/*
 * Write the piece @p suffix (".regel-7") of the file archived as
 * done/@p done_name into quarantine/, @p raw with its .reason beside it
 * (kb_spool_quarantine_piece(): a retry rewrites its own bytes; a newer file
 * a sender renamed over the name while the first was handled gets the same
 * done name once the first is archived, kb_spool_done() leaving it in in/,
 * so its pieces go to "<suffix>.1", ...).
 */
static int quarantine_piece(struct kb_spool *spool, const char *done_name, const char *suffix,
                            const void *raw, size_t len, const char *rule, const char *reason)
{
    char rtext[400];
    int tl = snprintf(rtext, sizeof rtext, "%s: %s\n", rule, reason);
    if (tl < 0 || (size_t)tl >= sizeof rtext)
        tl = (int)sizeof rtext - 1;
    return kb_spool_quarantine_piece(spool, done_name, suffix, raw, len, rtext, (size_t)tl) ? -1
                                                                                            : 0;
}

int kb_svb_ingest_file(const struct kb_svb_ingest_ctx *ctx, kb_ingress_t *ing,
                       struct kb_spool *spool, const char *done_uri, const char *name)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t mtime = 0;
    char errstr[512];
    struct kb_spool_file file;
    kb_err_t err = kb_spool_read(spool, name, MAX_FILE, &buf, &len, &mtime, &file);
    if (err == KB_ERR_RANGE)
        return quarantine_oversize(ing, spool, name, &file);
    if (err)
        return 1; /* unreadable for now, logged by the spool: later files go on */
    /* The name the file will have in done/, for ce_dataref and the names of
     * its refused records: a sender reusing a name gets a new one. */
    char done_name[300];
    if (kb_spool_done_name(spool, name, done_name, sizeof done_name)) {
        free(buf);
        return -1;
    }

    int rc = -1;
    struct refused *bad = NULL;
    struct rest rest = {len, 0, 0, ""};
    size_t n_evs = 0, n_bad = 0, bad_cap = 0, n_lines = 0, published = 0;
    const char *text = (const char *)buf;
    struct kb_akw02 *rec = malloc(sizeof *rec);
    /* Events are sent EVENT_CHUNK at a time: a file leaves in/ only after
     * the last chunk and every quarantine message were acknowledged, and a
     * retry after a failure sends the same ids again (the router drops them). */
    struct kb_ingress_event *evs = calloc(EVENT_CHUNK, sizeof *evs);
    if (!rec || !evs)
        goto out;

    for (size_t off = 0; off < len || (len == 0 && n_lines == 0);) {
        const char *nl = len ? memchr(text + off, '\n', len - off) : NULL;
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t rlen = end - off;
        if (rlen > 0 && text[off + rlen - 1] == '\r')
            rlen--;
        int regel = (int)++n_lines;
        char perr[320];
        enum kb_akw02_rule rule =
            len == 0 ? KB_AKW02_LENGTH : kb_akw02_parse(text + off, rlen, rec, perr, sizeof perr);
        if (len == 0)
            snprintf(perr, sizeof perr, "empty file");
        const char *rule_name = kb_akw02_rule_name(rule);
        int refused = rule != KB_AKW02_OK;
        if (!refused) {
            char dataref[sizeof evs->attrs.dataref], fragment[24];
            snprintf(fragment, sizeof fragment, "regel=%d", regel);
            kb_adapter_dataref(done_uri, done_name, fragment, dataref, sizeof dataref);
            err = kb_svb_akw02_event(ctx, rec, text + off, rlen, KB_SVB_SPOOL, regel, mtime,
                                     dataref, &evs[n_evs], errstr, sizeof errstr);
            if (err) {
                KB_LOG_ERR(COMP, "cannot build event; file kept", "regel=%d error=\"%s\"", regel,
                           errstr);
                goto out;
            }
            /* An event Kafka can never take (the topic's max.message.bytes)
             * is refused like a bad record: retrying would hold the spool. */
            ing_lock();
            kb_err_t serr = kb_ingress_check_sizes(ing, &evs[n_evs], 1, perr, sizeof perr);
            ing_unlock();
            if (serr) {
                free(evs[n_evs].value);
                evs[n_evs].value = NULL;
                refused = 1;
                rule_name = "size";
            }
        }
        if (refused && n_bad == MAX_REFUSED) {
            /* Not a batch with a few bad records but no AKW02 file at all
             * (or a hostile one): stop judging, quarantine the rest whole. */
            rest.offset = off;
            rest.len = len - off;
            rest.regel = regel;
            break;
        }
        if (refused) {
            if (n_bad == bad_cap) {
                size_t ncap = bad_cap ? 2 * bad_cap : 16;
                ncap = ncap < MAX_REFUSED ? ncap : MAX_REFUSED;
                struct refused *nb = realloc(bad, ncap * sizeof *nb);
                if (!nb)
                    goto out;
                bad = nb;
                bad_cap = ncap;
            }
            struct refused *r = &bad[n_bad++];
            *r = (struct refused){off, rlen, regel, rule_name, ""};
            snprintf(r->reason, sizeof r->reason, "regel %d: %s", regel, perr);
        } else {
            if (++n_evs == EVENT_CHUNK) {
                n_evs = 0; /* send_events() frees the values, sent or not */
                if (send_events(ing, evs, EVENT_CHUNK))
                    goto out;
                published += EVENT_CHUNK;
            }
        }
        off = nl ? end + 1 : len;
    }
    if (n_evs > 0) {
        size_t n = n_evs;
        n_evs = 0;
        if (send_events(ing, evs, n))
            goto out;
        published += n;
    }

    /* Kafka holds every refused record (raw bytes, rule, offset) before
     * anything of the file counts as handled: all in one wait, as a file
     * of a thousand bad records would otherwise wait a thousand times. */
    if (n_bad > 0) {
        struct kb_ingress_refusal *q = malloc(n_bad * sizeof *q);
        if (!q)
            goto out;
        for (size_t i = 0; i < n_bad; i++) {
            struct refused *r = &bad[i];
            KB_LOG_WARN(COMP, "AKW02 record quarantined", "rule=%s reason=\"%s\"", r->rule,
                        r->reason);
            q[i] = (struct kb_ingress_refusal){text + r->offset, r->len, r->rule, r->reason,
                                               (int64_t)r->offset};
        }
        int qrc = quarantine_many(ing, q, n_bad);
        free(q);
        if (qrc)
            goto out;
    }
    if (rest.offset < len) {
        int last = rest.regel;
        for (const char *p = text + rest.offset; (p = memchr(p, '\n', len - (size_t)(p - text)));)
            last += ++p < text + len;
        snprintf(rest.reason, sizeof rest.reason,
                 "regel %d-%d (%zu bytes) not judged: %d records of this file were refused "
                 "before it; any good record in it was not published",
                 rest.regel, last, rest.len, MAX_REFUSED);
        KB_LOG_WARN(COMP, "rest of AKW02 file quarantined unjudged", "rule=%s reason=\"%s\"",
                    RULE_REST, rest.reason);
        if (quarantine_topic(ing, text + rest.offset, rest.len, RULE_REST, rest.reason,
                             (int64_t)rest.offset))
            goto out;
    }

    if (published == 0) {
        /* Nothing usable: the whole file goes to quarantine/ with the reasons. */
        char *reason = file_reason(bad, n_bad, &rest);
        if (!reason)
            goto out;
        rc = kb_spool_quarantine(spool, name, &file, reason) ? -1 : 0;
        free(reason);
        goto out;
    }
    /* Some records are good: the file is done; each refused record (and an
     * unjudged rest) gets its own quarantine file with the reason beside it. */
    for (size_t i = 0; i < n_bad; i++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, ".regel-%d", bad[i].regel);
        if (quarantine_piece(spool, done_name, suffix, text + bad[i].offset, bad[i].len,
                             bad[i].rule, bad[i].reason))
            goto out;
    }
    if (rest.offset < len) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, ".vanaf-regel-%d", rest.regel);
        if (quarantine_piece(spool, done_name, suffix, text + rest.offset, rest.len, RULE_REST,
                             rest.reason))
            goto out;
    }
    if (kb_spool_done(spool, name, &file)) {
        KB_LOG_ERR(COMP, "cannot move file to done", "records=%zu", published);
        goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; evs && i < n_evs; i++)
        free(evs[i].value);
    free(evs);
    free(bad);
    free(rec);
    free(buf);
    return rc;
}

char kb_svb_ingest_frame(const struct kb_svb_ingest_ctx *ctx, kb_ingress_t *ing,
                         const uint8_t *frame, size_t len, char *reason, size_t reason_size)
{
    struct kb_akw02 *rec = malloc(sizeof *rec);
    char errstr[512], perr[320];
    char verdict = 'N';
    if (!rec) {
        snprintf(reason, reason_size, "out of memory");
        return 'N';
    }
    size_t rlen = len;
    if (rlen > 0 && frame[rlen - 1] == '\n')
        rlen--;
    if (rlen > 0 && frame[rlen - 1] == '\r')
        rlen--;
    enum kb_akw02_rule rule = kb_akw02_parse((const char *)frame, len, rec, perr, sizeof perr);
    const char *rule_name = kb_akw02_rule_name(rule);
    if (rule == KB_AKW02_OK) {
        struct kb_ingress_event ev;
        if (kb_svb_akw02_event(ctx, rec, (const char *)frame, rlen, KB_SVB_TCP, 0, kb_wall_ms(),
                               NULL, &ev, errstr, sizeof errstr)) {
            snprintf(reason, reason_size, "cannot build event: %s", errstr);
            goto out;
        }
        ing_lock();
        kb_err_t err = kb_ingress_send_sized(ing, &ev, 1, ACK_TIMEOUT_MS, errstr, sizeof errstr);
        if (!err)
            kb_svb_ingest_stats.records++;
        ing_unlock();
        if (!err) {
            KB_LOG_INFO(COMP, "event published",
                        "transport=tcp event_id=%s subject=%s sequence=%llu", ev.attrs.id,
                        ev.attrs.subject, (unsigned long long)ev.attrs.sequence);
            reason[0] = '\0';
            verdict = 'A';
        } else if (err != KB_ERR_RANGE) {
            snprintf(reason, reason_size, "not acknowledged by Kafka: %s", errstr);
        }
        free(ev.value);
        if (err != KB_ERR_RANGE)
            goto out;
        /* An event Kafka can never take (the topic's max.message.bytes) is
         * refused like a bad record: the sender would retry it for good. */
        snprintf(perr, sizeof perr, "%.319s", errstr);
        rule_name = "size";
    }
    KB_LOG_WARN(COMP, "AKW02 record quarantined", "transport=tcp rule=%s reason=\"%s\"", rule_name,
                perr);
    ing_lock();
    kb_err_t qerr = kb_ingress_quarantine(ing, frame, len, rule_name, perr, 0, ACK_TIMEOUT_MS,
                                          errstr, sizeof errstr);
    if (!qerr)
        kb_svb_ingest_stats.quarantined++;
    ing_unlock();
    if (qerr) {
        snprintf(reason, reason_size, "quarantine not acknowledged: %s", errstr);
    } else {
        snprintf(reason, reason_size, "%s: %s", rule_name, perr);
        verdict = 'R';
    }
out:
    free(rec);
    return verdict;
}
