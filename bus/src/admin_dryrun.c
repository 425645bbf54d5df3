/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * admin_dryrun.c - judge proposed subscriptions against the history in
 * <prefix>.in.* exactly as the router would (envelope, schema, validation
 * gate, duplicates, matcher with payload field filters) and count what each
 * would have received. Reads with a group-less consumer, produces nothing.
 * Used by `ketenbus sub dry-run` and POST /admin/subscriptions/dry-run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <avro.h>

#include "ketenbus/clock.h"
#include "ketenbus/gate.h"
#include "idset.h"
#include "ketenbus/admin.h"
#include "ketenbus/event.h"
#include "ketenbus/log.h"
#include "ketenbus/validate.h"
#include "match.h"

struct dry {
    const struct kb_dryrun_opts *o;
    kb_matcher_t *matcher;
    const struct kb_sub **hits; /* one per subscription: every match fits */
    kb_idset_t *seen;
    struct kb_dryrun_result *res;
    size_t *samples_cap; /* per subscription: samples its array has room for */
};

/* Append @p s to the growing string *buf. */
static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap ? *cap * 2 : 128) + n;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return 0;
}

/* The field names a subscriber would receive: its field list, or every
 * top-level field of the schema; then the pseudonymised ones. Names only. */
static char *field_names(const struct kb_sub *sub, const struct kb_schema *schema)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int bad = append(&buf, &len, &cap, "");
    if (sub->n_fields) {
        for (size_t i = 0; i < sub->n_fields && !bad; i++)
            bad = (i && append(&buf, &len, &cap, ",")) || append(&buf, &len, &cap, sub->fields[i]);
    } else {
        size_t n = avro_schema_record_size(schema->avro);
        for (size_t i = 0; i < n && !bad; i++)
            bad = (i && append(&buf, &len, &cap, ",")) ||
                  append(&buf, &len, &cap, avro_schema_record_field_name(schema->avro, (int)i));
    }
    for (size_t i = 0; i < sub->n_pseudonymise && !bad; i++)
        bad = append(&buf, &len, &cap, i ? "," : " pseudonymised=") ||
              append(&buf, &len, &cap, sub->pseudonymise[i]);
    if (bad) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The index in @p t's field_lists of the names @p sub would receive from an
 * event of @p schema, added when new; SIZE_MAX when out of memory. A
 * subscription that lists its fields has one list for every schema; else
 * the schema's (operator's) fields decide, compared by their names. */
static size_t field_list_of(struct kb_dryrun_sub_result *t, const struct kb_sub *sub,
                            const struct kb_schema *schema)
{
    if (sub->n_fields && t->n_field_lists)
        return 0;
    char *names = field_names(sub, schema);
    if (!names)
        return SIZE_MAX;
    for (size_t i = 0; i < t->n_field_lists; i++)
        if (!strcmp(t->field_lists[i], names)) {
            free(names);
            return i;
        }
    char **nl = realloc(t->field_lists, (t->n_field_lists + 1) * sizeof *nl);
    if (!nl) {
        free(names);
        return SIZE_MAX;
    }
    t->field_lists = nl;
    nl[t->n_field_lists] = names;
    return t->n_field_lists++;
}

static void tally_hit(struct dry *d, size_t si, const struct kb_event_attrs *attrs,
                      const struct kb_schema *schema)
{
    struct kb_dryrun_sub_result *t = &d->res->subs[si];
    t->total++;
    size_t k = 0;
    while (k < t->n_types && strcmp(t->types[k].type, attrs->type) != 0)
        k++;
    if (k == t->n_types && k < KB_DRYRUN_MAX_TYPES) {
        snprintf(t->types[k].type, sizeof t->types[k].type, "%s", attrs->type);
        t->n_types++;
    }
    if (k < KB_DRYRUN_MAX_TYPES)
        t->types[k].n++;
    if (t->n_samples == d->res->samples_per_sub)
        return;
    if (t->n_samples == d->samples_cap[si]) {
        /* Grown as samples come, not at the start for every subscription. */
        size_t ncap = t->n_samples ? t->n_samples * 2 : 4;
        if (ncap > d->res->samples_per_sub)
            ncap = d->res->samples_per_sub;
        struct kb_dryrun_sample *ns = realloc(t->samples, ncap * sizeof *ns);
        if (!ns)
            return; /* one sample fewer */
        t->samples = ns;
        d->samples_cap[si] = ncap;
    }
    struct kb_dryrun_sample *s = &t->samples[t->n_samples];
    snprintf(s->id, sizeof s->id, "%s", attrs->id);
    snprintf(s->type, sizeof s->type, "%s", attrs->type);
    snprintf(s->time, sizeof s->time, "%s", attrs->time);
    s->field_list = field_list_of(t, &d->o->subs->items[si], schema);
    t->n_samples++;
}

/* Judge one input event: the router's steps, minus producing. */
static void judge(struct dry *d, const rd_kafka_message_t *m)
{
    struct kb_dryrun_result *r = d->res;
    r->read++;
    struct kb_gate_input in;
    switch (kb_gate_envelope(d->o->schemas, m, &in, NULL, 0)) {
    case KB_GATE_PASSED:
        break;
    case KB_GATE_HEADERS:
    case KB_GATE_FRAMING:
        r->rejected++, r->rej_envelope++;
        return;
    default:
        r->rejected++, r->rej_schema++;
        return;
    }
    const struct kb_schema *schema = in.schema;
    const struct kb_event_attrs *attrs = &in.attrs;
    /* a schema that does not compile: its events are rejected, as the router's */
    const kb_validator_t *v = kb_schema_validator(schema, NULL);
    if (!v || kb_validate(v, in.payload, in.plen, NULL) != KB_OK) {
        r->rejected++, r->rej_validate++;
        return;
    }
    /* Like the router, an id seen before is a duplicate (only valid events
     * are remembered, so a corrected redrive counts once). */
    uint64_t idh = kb__idset_hash(attrs->id);
    if (kb__idset_contains(d->seen, idh)) {
        r->duplicates++;
        return;
    }
    kb__idset_add(d->seen, idh);
    int64_t time_ms = kb_gate_decision_time(attrs);
    /* Fields are read from the bytes, as the router reads them. */
    struct kb_payload_view pv = {schema, in.payload, in.plen, 0, 0, {0}, v};
    const struct kb_sub **hits = d->hits;
    size_t nhits = kb_matcher_match(d->matcher, attrs, time_ms, kb_payload_field, &pv, hits,
                                    d->o->subs->n);
    kb_payload_view_fini(&pv);
    if (pv.failed) {
        r->rejected++, r->rej_decode++;
        return;
    }
    if (!nhits)
        r->filtered++;
    for (size_t i = 0; i < nhits; i++)
        tally_hit(d, (size_t)(hits[i] - d->o->subs->items), attrs, schema);
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
static kb_err_t scan(struct dry *d, rd_kafka_t *rk, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *start = input_partitions(rk, errstr, errstr_size);
    if (!start)
        return KB_ERR_KAFKA;
    rd_kafka_topic_partition_list_t *end = rd_kafka_topic_partition_list_copy(start);
    kb_err_t err = offsets_at(rk, start, d->o->since_ms, errstr, errstr_size);
    if (!err)
        err = offsets_at(rk, end, d->o->until_ms, errstr, errstr_size);
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
    d->res->partitions_read = open;
    d->res->partitions_total = start->cnt;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, assign);
    rd_kafka_topic_partition_list_destroy(assign);
    if (e) {
        err = kb_err_set(kb_kafka_err(e), errstr, errstr_size, "assign: %s", rd_kafka_err2str(e));
        goto out;
    }
    int idle = 0;
    while (open > 0) {
        if ((d->o->stop && atomic_load(d->o->stop)) ||
            (d->o->deadline_ms && kb_mono_ms() >= d->o->deadline_ms)) {
            KB_LOG_WARN("dryrun", "stopped before the end", "partitions_open=%d", open);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) {
            /* Partition EOF is reported at the last stable offset; an end
             * beyond it (an open transaction) is not waited for forever. */
            if (++idle >= 60) {
                KB_LOG_WARN("dryrun", "no progress for 30 s; stopping before the end",
                            "partitions_open=%d", open);
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
    d->res->complete = open == 0;
out:
    rd_kafka_topic_partition_list_destroy(start);
    rd_kafka_topic_partition_list_destroy(end);
    return err;
}

void kb_dryrun_result_fini(struct kb_dryrun_result *res)
{
    for (size_t i = 0; i < res->n_subs; i++) {
        free(res->subs[i].samples);
        for (size_t k = 0; k < res->subs[i].n_field_lists; k++)
            free(res->subs[i].field_lists[k]);
        free(res->subs[i].field_lists);
    }
    free(res->subs);
    memset(res, 0, sizeof *res);
}

kb_err_t kb_dryrun_run(const struct kb_dryrun_opts *o, struct kb_dryrun_result *res,
                       char *errstr, size_t errstr_size)
{
    memset(res, 0, sizeof *res);
    struct dry d = {.o = o, .res = res};
    kb_err_t err = KB_ERR_NOMEM;
    rd_kafka_t *rk = NULL;
    res->n_subs = o->subs->n;
    res->subs = calloc(o->subs->n ? o->subs->n : 1, sizeof *res->subs);
    d.samples_cap = calloc(o->subs->n ? o->subs->n : 1, sizeof *d.samples_cap);
    if (!res->subs || !d.samples_cap)
        goto out;
    size_t total = o->max_samples_total ? o->max_samples_total : KB_DRYRUN_SAMPLES_TOTAL;
    res->samples_per_sub = o->max_samples;
    if (o->subs->n && res->samples_per_sub > total / o->subs->n)
        res->samples_per_sub = total / o->subs->n ? total / o->subs->n : 1;
    /* Follow lists kept in topics are read now, as the router would; they
     * are the one part of the (caller's, mutable) set filled at run time. */
    kb_follow_topics_t *follows = kb_follow_topics_new(o->kafka);
    if (!follows) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    err = kb_follow_topics_load(follows, (struct kb_subs *)o->subs, errstr, errstr_size);
    kb_follow_topics_destroy(follows);
    if (err)
        goto out;
    err = KB_ERR_NOMEM;
    d.matcher = kb_matcher_new(o->subs);
    d.seen = kb__idset_new(1u << 20);
    d.hits = malloc((o->subs->n ? o->subs->n : 1) * sizeof *d.hits);
    if (!d.matcher || !d.seen || !d.hits) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    rd_kafka_conf_t *conf = kb_kafka_conf_new(o->kafka, errstr, errstr_size);
    if (!conf) {
        err = KB_ERR_CONF;
        goto out;
    }
    /* librdkafka's assign() needs a group.id, but the group is never
     * joined (no subscribe) and nothing is committed: it stays empty. */
    char gid[200];
    snprintf(gid, sizeof gid, "%s.tools.%ld", kb_topic_prefix(), (long)getpid());
    if (rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "group.id", gid, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        err = KB_ERR_CONF;
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        err = KB_ERR_KAFKA;
        goto out;
    }
    err = scan(&d, rk, errstr, errstr_size);
out:
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    kb__idset_destroy(d.seen);
    kb_matcher_destroy(d.matcher);
    free(d.hits);
    free(d.samples_cap);
    if (err) {
        if (err == KB_ERR_NOMEM && errstr && errstr_size && !errstr[0])
            kb_err_set(err, errstr, errstr_size, "out of memory");
        kb_dryrun_result_fini(res);
    }
    return err;
}

json_t *kb_dryrun_result_json(const struct kb_dryrun_result *r, const struct kb_subs *subs)
{
    json_t *subs_j = json_array();
    for (size_t i = 0; i < r->n_subs && i < subs->n; i++) {
        const struct kb_dryrun_sub_result *t = &r->subs[i];
        json_t *types = json_object(), *samples = json_array(), *lists = json_array();
        for (size_t k = 0; k < t->n_types; k++)
            json_object_set_new(types, t->types[k].type, json_integer((json_int_t)t->types[k].n));
        for (size_t k = 0; k < t->n_samples; k++) {
            const struct kb_dryrun_sample *s = &t->samples[k];
            json_t *list = s->field_list < t->n_field_lists
                               ? json_integer((json_int_t)s->field_list)
                               : json_null();
            json_array_append_new(samples, json_pack("{s:s, s:s, s:s?, s:o}", "id", s->id, "type",
                                                     s->type, "time", s->time[0] ? s->time : NULL,
                                                     "field_list", list));
        }
        for (size_t k = 0; k < t->n_field_lists; k++)
            json_array_append_new(lists, json_string(t->field_lists[k]));
        json_array_append_new(subs_j,
                              json_pack("{s:s, s:I, s:o, s:o, s:o}", "name", subs->items[i].name,
                                        "events", (json_int_t)t->total, "types", types,
                                        "field_lists", lists, "samples", samples));
    }
    return json_pack("{s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:i, s:i, s:b, s:I, s:o, s:s}",
                     "read", (json_int_t)r->read, "rejected", (json_int_t)r->rejected,
                     "rejected_by", "envelope", (json_int_t)r->rej_envelope, "schema",
                     (json_int_t)r->rej_schema, "validate", (json_int_t)r->rej_validate, "decode",
                     (json_int_t)r->rej_decode, "duplicates", (json_int_t)r->duplicates,
                     "matched_by_none", (json_int_t)r->filtered, "partitions_read",
                     r->partitions_read, "partitions_total", r->partitions_total, "complete",
                     r->complete, "samples_per_subscription", (json_int_t)r->samples_per_sub,
                     "subscriptions", subs_j, "delivered", "nothing (dry run)");
}
