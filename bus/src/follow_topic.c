/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * follow_topic.c - follow lists kept in a compacted Kafka topic (see
 * ketenbus/sub.h): the records folded into a sorted list (latest value per
 * key wins, tombstones remove), and the reading of the topics to their end,
 * with a cheap end-offset check so a changed list is picked up between
 * transactions without re-reading an unchanged one.
 *
 * Invariants:
 *  1. A subscription with a follow topic always has a non-NULL list; until
 *     its topic was read it is empty (follows nobody), never "all".
 *  2. A topic's list is replaced only by a complete read to its end; a read
 *     that fails or times out leaves the previous list in force.
 *  3. Keys are pseudonyms; logs name topics, partitions, offsets and counts,
 *     never a key or a value.
 *  4. A topic is forgotten only by kb_follow_topics_retain(), once no
 *     subscription of the set in force follows it: loading a new set that
 *     then fails to take over never stops the refresh of the old set's.
 *
 * Per topic: NEW --read ok--> LOADED --end offsets moved--> re-read -->
 * LOADED (new list) or FAILING (old list, logged once) --read ok--> LOADED.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "ketenbus/clock.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/log.h"
#include "ketenbus/sub.h"

#define COMP             "follow"
#define CHECK_TIMEOUT_MS 2000  /* end-offset look between transactions: short */
#define READ_TIMEOUT_MS  10000 /* a whole read, to the end of every partition */

/* ------------------------------------------------------------- the log */

struct rec {
    struct kb_follow f;
    int dead;   /* tombstone, or a value nobody can read */
    size_t seq; /* order of arrival: the later one wins */
};

struct kb_follow_log {
    struct rec *recs;
    size_t n, cap;
};

kb_follow_log_t *kb_follow_log_new(void)
{
    return calloc(1, sizeof(kb_follow_log_t));
}

void kb_follow_log_destroy(kb_follow_log_t *log)
{
    if (!log)
        return;
    free(log->recs);
    free(log);
}

static int is_pseudonym(const char *k, size_t len)
{
    if (len != KB_PSEUDONYM_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
            return 0;
    return 1;
}

static kb_err_t parse_bound(const char *s, size_t len, int64_t open, int64_t *out)
{
    if (!len) {
        *out = open;
        return KB_OK;
    }
    char buf[64];
    if (len >= sizeof buf || memchr(s, '\0', len))
        return KB_ERR_INVALID;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return kb_parse_time(buf, out) ? KB_ERR_INVALID : KB_OK;
}

kb_err_t kb_follow_parse_period(const void *value, size_t len, int64_t *from_ms, int64_t *until_ms)
{
    const char *v = value;
    const char *comma = v ? memchr(v, ',', len) : NULL;
    if (!comma || memchr(comma + 1, ',', len - (size_t)(comma + 1 - v)))
        return KB_ERR_INVALID;
    if (parse_bound(v, (size_t)(comma - v), INT64_MIN, from_ms) ||
        parse_bound(comma + 1, len - (size_t)(comma + 1 - v), INT64_MAX, until_ms) ||
        *from_ms >= *until_ms)
        return KB_ERR_INVALID;
    return KB_OK;
}

kb_err_t kb_follow_log_add(kb_follow_log_t *log, const void *key, size_t key_len, const void *value,
                           size_t value_len)
{
    if (!key || !is_pseudonym(key, key_len))
        return KB_ERR_INVALID;
    if (log->n == log->cap) {
        size_t ncap = log->cap ? log->cap * 2 : 64;
        struct rec *nr = realloc(log->recs, ncap * sizeof *nr);
        if (!nr)
            return KB_ERR_NOMEM;
        log->recs = nr;
        log->cap = ncap;
    }
    struct rec *r = &log->recs[log->n];
    memset(r, 0, sizeof *r);
    memcpy(r->f.subject, key, key_len);
    r->f.subject[key_len] = '\0';
    r->seq = log->n++;
    kb_err_t err = KB_OK;
    if (!value)
        r->dead = 1;
    else if ((err = kb_follow_parse_period(value, value_len, &r->f.from_ms, &r->f.until_ms)))
        r->dead = 1;
    return err;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    int c = strcmp(x->f.subject, y->f.subject);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

kb_err_t kb_follow_log_list(const kb_follow_log_t *log, struct kb_follow **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    struct rec *tmp = malloc((log->n ? log->n : 1) * sizeof *tmp);
    struct kb_follow *out = calloc(log->n ? log->n : 1, sizeof *out);
    if (!tmp || !out) {
        free(tmp);
        free(out);
        return KB_ERR_NOMEM;
    }
    if (log->n)
        memcpy(tmp, log->recs, log->n * sizeof *tmp);
    qsort(tmp, log->n, sizeof *tmp, rec_cmp);
    size_t k = 0;
    for (size_t i = 0; i < log->n; i++) {
        int last = i + 1 == log->n || strcmp(tmp[i].f.subject, tmp[i + 1].f.subject) != 0;
        if (last && !tmp[i].dead)
            out[k++] = tmp[i].f;
    }
    free(tmp);
    *items = out;
    *n = k;
    return KB_OK;
}

/* ---------------------------------------------------------- the topics */

struct ftopic {
    char *name;
    struct kb_follow *items; /* the list as last read completely */
    size_t n;
    uint64_t fp; /* fingerprint of the end offsets at that read */
    int loaded;  /* read completely at least once */
    int failing; /* last check or read failed (logged once) */
    int used;    /* read by the current kb_follow_topics_load() call (once per call) */
};

struct kb_follow_topics {
    const struct kb_kafka_opts *kafka;
    rd_kafka_t *rk; /* group-less reader, made on first use */
    struct ftopic *t;
    size_t n;
    int64_t next_check; /* monotonic ms */
};

kb_follow_topics_t *kb_follow_topics_new(const struct kb_kafka_opts *kafka)
{
    kb_follow_topics_t *ft = calloc(1, sizeof *ft);
    if (ft)
        ft->kafka = kafka;
    return ft;
}

void kb_follow_topics_destroy(kb_follow_topics_t *ft)
{
    if (!ft)
        return;
    if (ft->rk) {
        rd_kafka_consumer_close(ft->rk);
        rd_kafka_destroy(ft->rk);
    }
    for (size_t i = 0; i < ft->n; i++) {
        free(ft->t[i].name);
        free(ft->t[i].items);
    }
    free(ft->t);
    free(ft);
}

static kb_err_t reader(kb_follow_topics_t *ft, char *errstr, size_t errstr_size)
{
    if (ft->rk)
        return KB_OK;
    rd_kafka_conf_t *conf = kb_kafka_conf_new(ft->kafka, errstr, errstr_size);
    if (!conf)
        return KB_ERR_CONF;
    /* assign() wants a group.id; the group is never joined, nothing is
     * committed. */
    char gid[200];
    snprintf(gid, sizeof gid, "%s.follow-reader.%ld", kb_topic_prefix(), (long)getpid());
    if (rd_kafka_conf_set(conf, "group.id", gid, errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "client.id", "ketenbus-follow", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return KB_ERR_CONF;
    }
    ft->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!ft->rk) {
        rd_kafka_conf_destroy(conf);
        return KB_ERR_KAFKA;
    }
    return KB_OK;
}

/*
 * The end offsets of @p topic: a fingerprint, and per partition [lo, hi)
 * in *@p parts (NULL: not wanted). A topic that does not exist has
 * fingerprint 1 and no partitions.
 */
static kb_err_t ends(kb_follow_topics_t *ft, const char *topic, int timeout_ms, uint64_t *fp,
                     rd_kafka_topic_partition_list_t **parts, char *errstr, size_t errstr_size)
{
    if (parts)
        *parts = NULL;
    kb_err_t err = reader(ft, errstr, errstr_size);
    if (err)
        return err;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(ft->rk, topic, NULL);
    if (!rkt)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "topic handle %s", topic);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rerr = rd_kafka_metadata(ft->rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (rerr)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "metadata of %s: %s", topic,
                          rd_kafka_err2str(rerr));
    uint64_t h = 14695981039346656037ull;
    if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        (!md->topics[0].err && md->topics[0].partition_cnt == 0)) {
        rd_kafka_metadata_destroy(md);
        *fp = 1;
        return KB_OK;
    }
    if (md->topics[0].err) {
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "metadata of %s: %s", topic,
                         rd_kafka_err2str(md->topics[0].err));
        rd_kafka_metadata_destroy(md);
        return err;
    }
    int np = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(np ? np : 1);
    for (int i = 0; i < np && !err; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        rerr = rd_kafka_query_watermark_offsets(ft->rk, topic, p, &lo, &hi, timeout_ms);
        if (rerr) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "end offsets of %s: %s", topic,
                             rd_kafka_err2str(rerr));
            break;
        }
        h = (h ^ (uint64_t)p) * 1099511628211ull;
        h = (h ^ (uint64_t)hi) * 1099511628211ull;
        h = (h ^ (uint64_t)lo) * 1099511628211ull;
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(pl, topic, p);
        tp->offset = lo;
        /* the end, kept in the list as the partition's opaque */
        tp->opaque = (void *)(intptr_t)hi;
    }
    rd_kafka_metadata_destroy(md);
    if (err || !parts)
        rd_kafka_topic_partition_list_destroy(pl);
    else
        *parts = pl;
    *fp = h | 2; /* never 0 (nothing read) nor 1 (no topic) */
    return err;
}

/* Read @p topic from its start to its end into a fresh list (invariant 2). */
static kb_err_t read_topic(kb_follow_topics_t *ft, const char *topic, struct kb_follow **items,
                           size_t *n, uint64_t *fp, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *pl = NULL;
    kb_err_t err = ends(ft, topic, 5000, fp, &pl, errstr, errstr_size);
    if (err)
        return err;
    kb_follow_log_t *log = kb_follow_log_new();
    if (!log) {
        rd_kafka_topic_partition_list_destroy(pl);
        return KB_ERR_NOMEM;
    }
    if (!pl) {
        KB_LOG_WARN(COMP, "follow topic does not exist (yet): the list is empty", "topic=%s",
                    topic);
        goto out_list;
    }
    /* Partitions already at their end need no fetch. */
    int pending = 0;
    rd_kafka_topic_partition_list_t *assign =
        rd_kafka_topic_partition_list_new(pl->cnt ? pl->cnt : 1);
    for (int i = 0; i < pl->cnt; i++)
        if (pl->elems[i].offset < (int64_t)(intptr_t)pl->elems[i].opaque) {
            rd_kafka_topic_partition_list_add(assign, topic, pl->elems[i].partition)->offset =
                pl->elems[i].offset;
            pending++;
        }
    if (pending) {
        rd_kafka_resp_err_t rerr = rd_kafka_assign(ft->rk, assign);
        if (rerr)
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "assign %s: %s", topic,
                             rd_kafka_err2str(rerr));
    }
    size_t bad = 0, records = 0;
    int64_t deadline = kb_mono_ms() + READ_TIMEOUT_MS;
    while (!err && pending > 0) {
        if (kb_mono_ms() > deadline) {
            err = kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size,
                             "follow topic %s not read to its end within %d ms", topic,
                             READ_TIMEOUT_MS);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ft->rk, 100);
        if (!m)
            continue;
        rd_kafka_topic_partition_t *tp =
            m->rkt ? rd_kafka_topic_partition_list_find(assign, rd_kafka_topic_name(m->rkt),
                                                        m->partition)
                   : NULL;
        int64_t end =
            tp ? (int64_t)(intptr_t)rd_kafka_topic_partition_list_find(pl, topic, m->partition)
                     ->opaque
               : 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (tp && tp->err == 0) {
                tp->err = RD_KAFKA_RESP_ERR__PARTITION_EOF; /* marks it done */
                pending--;
            }
        } else if (m->err) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "reading %s: %s", topic,
                             rd_kafka_message_errstr(m));
        } else if (tp && tp->err == 0) {
            records++;
            kb_err_t aerr = kb_follow_log_add(log, m->key, m->key_len, m->payload, m->len);
            if (aerr == KB_ERR_NOMEM)
                err = aerr;
            else if (aerr) {
                bad++;
                /* invariant 3: where, never what */
                KB_LOG_WARN(COMP, "follow record unreadable: subject not followed",
                            "topic=%s partition=%" PRId32 " offset=%" PRId64, topic, m->partition,
                            m->offset);
            }
            if (m->offset + 1 >= end) {
                tp->err = RD_KAFKA_RESP_ERR__PARTITION_EOF;
                pending--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (assign->cnt)
        rd_kafka_assign(ft->rk, NULL);
    rd_kafka_topic_partition_list_destroy(assign);
    rd_kafka_topic_partition_list_destroy(pl);
    if (!err)
        KB_LOG_DBG(COMP, "follow topic read", "topic=%s records=%zu unreadable=%zu", topic, records,
                   bad);
out_list:
    if (!err)
        err = kb_follow_log_list(log, items, n);
    kb_follow_log_destroy(log);
    return err;
}

static kb_err_t give(struct kb_sub *sub, const struct ftopic *t)
{
    struct kb_follow *copy = calloc(t->n ? t->n : 1, sizeof *copy);
    if (!copy)
        return KB_ERR_NOMEM;
    if (t->n)
        memcpy(copy, t->items, t->n * sizeof *copy);
    free(sub->follow);
    sub->follow = copy;
    sub->n_follow = t->n;
    return KB_OK;
}

static struct ftopic *find(kb_follow_topics_t *ft, const char *name, int create)
{
    for (size_t i = 0; i < ft->n; i++)
        if (!strcmp(ft->t[i].name, name))
            return &ft->t[i];
    if (!create)
        return NULL;
    struct ftopic *nt = realloc(ft->t, (ft->n + 1) * sizeof *nt);
    if (!nt)
        return NULL;
    ft->t = nt;
    struct ftopic *t = &ft->t[ft->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name)))
        return NULL;
    ft->n++;
    return t;
}

/* Replace @p t's list by a fresh read; on failure keep it (invariant 2). */
static kb_err_t reread(kb_follow_topics_t *ft, struct ftopic *t, char *errstr, size_t errstr_size)
{
    struct kb_follow *items;
    size_t n;
    uint64_t fp;
    kb_err_t err = read_topic(ft, t->name, &items, &n, &fp, errstr, errstr_size);
    if (err)
        return err;
    free(t->items);
    t->items = items;
    t->n = n;
    t->fp = fp;
    t->loaded = 1;
    return KB_OK;
}

kb_err_t kb_follow_topics_load(kb_follow_topics_t *ft, struct kb_subs *subs, char *errstr,
                               size_t errstr_size)
{
    for (size_t i = 0; i < ft->n; i++)
        ft->t[i].used = 0;
    kb_err_t err = KB_OK;
    for (size_t i = 0; i < subs->n && !err; i++) {
        struct kb_sub *sub = &subs->items[i];
        if (!sub->follow_topic)
            continue;
        struct ftopic *t = find(ft, sub->follow_topic, 1);
        if (!t)
            return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        if (!t->used) {
            char why[400];
            err = reread(ft, t, why, sizeof why);
            if (err) {
                kb_err_set(err, errstr, errstr_size, "subscription %s: follow list: %s", sub->name,
                           why);
                break;
            }
            t->used = 1;
            KB_LOG_INFO(COMP, "follow list loaded", "topic=%s subjects=%zu", t->name, t->n);
        }
        if ((err = give(sub, t)))
            kb_err_set(err, errstr, errstr_size, "out of memory");
    }
    if (err) {
        /* The set in force may hold an older copy of a list read here:
         * have the next refresh re-read every topic and give it out. */
        for (size_t i = 0; i < ft->n; i++)
            ft->t[i].fp = 0;
        return err;
    }
    /* Topics @p subs does not use stay: @p subs may be a reload that still
     * fails after this (route.c), and the set in force goes on reading them
     * until kb_follow_topics_retain() says it is gone. */
    return KB_OK;
}

void kb_follow_topics_retain(kb_follow_topics_t *ft, const struct kb_subs *subs)
{
    size_t k = 0;
    for (size_t i = 0; i < ft->n; i++) {
        int used = 0;
        for (size_t s = 0; s < subs->n && !used; s++)
            used =
                subs->items[s].follow_topic && !strcmp(subs->items[s].follow_topic, ft->t[i].name);
        if (used) {
            ft->t[k++] = ft->t[i];
        } else {
            free(ft->t[i].name);
            free(ft->t[i].items);
        }
    }
    ft->n = k;
}

int kb_follow_topics_refresh(kb_follow_topics_t *ft, struct kb_subs *subs, int64_t now_ms,
                             int64_t interval_ms)
{
    if (!ft || !ft->n || now_ms < ft->next_check)
        return 0;
    ft->next_check = now_ms + interval_ms;
    int reread_n = 0;
    for (size_t i = 0; i < ft->n; i++) {
        struct ftopic *t = &ft->t[i];
        char errstr[400];
        uint64_t fp;
        kb_err_t err = ends(ft, t->name, CHECK_TIMEOUT_MS, &fp, NULL, errstr, sizeof errstr);
        if (!err && t->loaded && fp == t->fp) {
            if (t->failing)
                KB_LOG_INFO(COMP, "follow topic readable again", "topic=%s", t->name);
            t->failing = 0;
            continue;
        }
        if (!err)
            err = reread(ft, t, errstr, sizeof errstr);
        if (err) {
            if (!t->failing)
                KB_LOG_ERR(COMP, "follow list not refreshed; the previous list stays in force",
                           "topic=%s error=\"%s\"", t->name, errstr);
            t->failing = 1;
            continue;
        }
        t->failing = 0;
        reread_n++;
        size_t given = 0;
        for (size_t s = 0; s < subs->n; s++)
            if (subs->items[s].follow_topic && !strcmp(subs->items[s].follow_topic, t->name)) {
                if (give(&subs->items[s], t) == KB_OK)
                    given++;
                else
                    KB_LOG_ERR(COMP, "follow list not replaced (out of memory)", "subscriber=%s",
                               subs->items[s].name);
            }
        KB_LOG_INFO(COMP, "follow list refreshed", "topic=%s subjects=%zu subscriptions=%zu",
                    t->name, t->n, given);
    }
    return reread_n;
}
