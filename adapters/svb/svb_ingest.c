/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * svb_ingest.c - AKW02 records to nl.kinderbijslag.aanvraag-ontvangen
 * events, per spool file and per TCP frame (see svb_ingest.h). All Kafka
 * I/O goes through adapters/common/ingress.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter.h" /* kb_adapter_dataref */
#include "ketenbus/clock.h"
#include "ketenbus/log.h"
#include "svb_ingest.h"

#define COMP "svb"
#define MAX_FILE (8u << 20) /* far above any batch the portal sends; larger is refused */
#define ACK_TIMEOUT_MS 30000
#define EVENT_TYPE "nl.kinderbijslag.aanvraag-ontvangen"

struct kb_svb_ingest_stats kb_svb_ingest_stats;

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

/* One record of a spool file that the parser refused. */
struct refused {
    size_t offset;             /* byte offset of the record in the file */
    size_t len;                /* record length without line end */
    int regel;                 /* 1-based line */
    enum kb_akw02_rule rule;
    char reason[256];          /* "regel N: AKW02 <field> (col a-b): why" */
};

int kb_svb_ingest_file(const struct kb_svb_ingest_ctx *ctx, kb_ingress_t *ing,
                       struct kb_spool *spool, const char *done_uri, const char *name)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t mtime = 0;
    char errstr[512];
    kb_err_t err = kb_spool_read(spool, name, MAX_FILE, &buf, &len, &mtime);
    if (err == KB_ERR_RANGE) {
        KB_LOG_WARN(COMP, "file over size limit", "limit=%u", MAX_FILE);
        return kb_spool_quarantine(spool, name, "akw02-length: file larger than 8 MiB") ? -1 : 0;
    }
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
    struct kb_ingress_event *evs = NULL;
    struct refused *bad = NULL;
    size_t n_evs = 0, n_bad = 0, n_lines = 0;
    const char *text = (const char *)buf;
    struct kb_akw02 *rec = malloc(sizeof *rec);
    /* At most one record per line end, plus a last one without. */
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += buf[i] == '\n';
    evs = calloc(cap, sizeof *evs);
    bad = calloc(cap, sizeof *bad);
    if (!rec || !evs || !bad)
        goto out;

    if (len == 0) {
        bad[n_bad++] = (struct refused){0, 0, 1, KB_AKW02_LENGTH, "regel 1: empty file"};
        n_lines = 1;
    }
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t rlen = end - off;
        if (rlen > 0 && text[off + rlen - 1] == '\r')
            rlen--;
        int regel = (int)++n_lines;
        char perr[200];
        enum kb_akw02_rule rule = kb_akw02_parse(text + off, rlen, rec, perr, sizeof perr);
        if (rule != KB_AKW02_OK) {
            struct refused *r = &bad[n_bad++];
            *r = (struct refused){off, rlen, regel, rule, ""};
            snprintf(r->reason, sizeof r->reason, "regel %d: %s", regel, perr);
        } else {
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
            n_evs++;
        }
        off = nl ? end + 1 : len;
    }

    /* Quarantine first: Kafka holds every refused record (raw bytes, rule,
     * offset) before anything of the file counts as handled. */
    for (size_t i = 0; i < n_bad; i++) {
        struct refused *r = &bad[i];
        KB_LOG_WARN(COMP, "AKW02 record quarantined", "rule=%s reason=\"%s\"",
                    kb_akw02_rule_name(r->rule), r->reason);
        if (kb_ingress_quarantine(ing, text + r->offset, r->len, kb_akw02_rule_name(r->rule),
                                  r->reason, (int64_t)r->offset, ACK_TIMEOUT_MS, errstr,
                                  sizeof errstr)) {
            KB_LOG_ERR(COMP, "quarantine topic not acknowledged; file kept", "error=\"%s\"",
                       errstr);
            goto out;
        }
    }
    if (n_evs > 0 && kb_ingress_send(ing, evs, n_evs, ACK_TIMEOUT_MS, errstr, sizeof errstr)) {
        KB_LOG_ERR(COMP, "events not acknowledged; file kept for retry", "records=%zu error=\"%s\"",
                   n_evs, errstr);
        goto out;
    }
    for (size_t i = 0; i < n_evs; i++)
        KB_LOG_INFO(COMP, "event published", "event_id=%s type=%s subject=%s sequence=%llu",
                    evs[i].attrs.id, evs[i].attrs.type, evs[i].attrs.subject,
                    (unsigned long long)evs[i].attrs.sequence);
    kb_svb_ingest_stats.records += n_evs;
    kb_svb_ingest_stats.quarantined += n_bad;

    if (n_evs == 0) {
        /* Nothing usable: the whole file goes to quarantine/ with every reason. */
        size_t rcap = 64 + n_bad * 256, rlen = 0;
        char *reason = malloc(rcap);
        if (!reason)
            goto out;
        reason[0] = '\0';
        for (size_t i = 0; i < n_bad; i++)
            rlen += (size_t)snprintf(reason + rlen, rcap - rlen, "%s%s: %s", i ? "\n" : "",
                                     kb_akw02_rule_name(bad[i].rule), bad[i].reason);
        rc = kb_spool_quarantine(spool, name, reason) ? -1 : 0;
        free(reason);
        goto out;
    }
    /* Some records are good: the file is done; each refused record gets its
     * own quarantine file with the reason beside it. */
    for (size_t i = 0; i < n_bad; i++) {
        char qname[600], path[2800], rtext[320];
        snprintf(qname, sizeof qname, "%s.regel-%d", done_name, bad[i].regel);
        kb_spool_path(spool, "quarantine", qname, path, sizeof path);
        if (kb_file_write_atomic(path, text + bad[i].offset, bad[i].len))
            goto out;
        int tl = snprintf(rtext, sizeof rtext, "%s: %s\n", kb_akw02_rule_name(bad[i].rule),
                          bad[i].reason);
        strncat(path, ".reason", sizeof path - strlen(path) - 1);
        if (kb_file_write_atomic(path, rtext, (size_t)tl))
            goto out;
    }
    if (kb_spool_done(spool, name)) {
        KB_LOG_ERR(COMP, "cannot move file to done", "records=%zu", n_evs);
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
    char errstr[512], perr[200];
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
    if (rule != KB_AKW02_OK) {
        KB_LOG_WARN(COMP, "AKW02 record quarantined", "transport=tcp rule=%s reason=\"%s\"",
                    kb_akw02_rule_name(rule), perr);
        if (kb_ingress_quarantine(ing, frame, len, kb_akw02_rule_name(rule), perr, 0,
                                  ACK_TIMEOUT_MS, errstr, sizeof errstr)) {
            snprintf(reason, reason_size, "quarantine not acknowledged: %s", errstr);
        } else {
            snprintf(reason, reason_size, "%s: %s", kb_akw02_rule_name(rule), perr);
            kb_svb_ingest_stats.quarantined++;
            verdict = 'R';
        }
        goto out;
    }
    struct kb_ingress_event ev;
    if (kb_svb_akw02_event(ctx, rec, (const char *)frame, rlen, KB_SVB_TCP, 0, kb_wall_ms(), NULL,
                           &ev, errstr, sizeof errstr)) {
        snprintf(reason, reason_size, "cannot build event: %s", errstr);
        goto out;
    }
    if (kb_ingress_send(ing, &ev, 1, ACK_TIMEOUT_MS, errstr, sizeof errstr)) {
        snprintf(reason, reason_size, "not acknowledged by Kafka: %s", errstr);
    } else {
        KB_LOG_INFO(COMP, "event published", "transport=tcp event_id=%s subject=%s sequence=%llu",
                    ev.attrs.id, ev.attrs.subject, (unsigned long long)ev.attrs.sequence);
        kb_svb_ingest_stats.records++;
        reason[0] = '\0';
        verdict = 'A';
    }
    free(ev.value);
out:
    free(rec);
    return verdict;
}
