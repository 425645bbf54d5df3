/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * deliver.c - one subscriber's webhook delivery loop: Kafka consumer,
 * libevent HTTPS client (bufferevent_openssl + evhttp), per-key queues,
 * retries that survive restarts, and the subscriber's dead-letter topic.
 *
 * Where retry state lives: in Kafka, the compacted topic
 * <prefix>.retry.<subscriber>, keyed "<partition>/<offset>" of the event in
 * <prefix>.out.<subscriber>, value JSON {attempts, first_failure_ms,
 * next_attempt_ms, last_error}; a tombstone once the event is delivered or
 * dead-lettered. On start the whole topic is read back, so a restarted
 * (or rescheduled) process continues the backoff and the window from the
 * first failure instead of starting over. No local files: the pod may move.
 *
 * Invariants:
 *  1. The committed offset of a partition is the offset of its oldest event
 *     not yet finished (2xx or dead-letter acknowledged by Kafka): nothing
 *     unfinished is ever committed past (at-least-once).
 *  2. At most one event per key is in flight, and it is the oldest
 *     unfinished event of that key: a failing key waits, other keys go on.
 *  3. In flight requests never exceed opts.concurrency; launches never
 *     exceed opts.rate per second (token bucket).
 *  4. An event's window starts at its first failure; an attempt is never
 *     scheduled after first_failure + window, and a failure at or after it
 *     dead-letters the event with the last error. An answer with a
 *     permanent status dead-letters it at once, whatever its window.
 *  5. Consumption is paused per partition, never all at once: a partition
 *     is paused only when it holds more than its reserve (half an even split
 *     of --max-pending) and the shared rest of the budget is spent
 *     (apply_budget()), so a key whose head keeps failing holds up its own
 *     partition, not the others; the events held stay within
 *     max(--max-pending, assigned partitions).
 *
 * Event life cycle (function behind each transition):
 *
 *   consumed --enqueue()--> queued --launch()--> in flight --on_response()
 *        2xx --finish()--> done (committable)
 *        failure, inside window --schedule_retry()--> waiting --(time)--> queued
 *        failure at window end, a permanent status (--permanent-status),
 *        or not renderable --dead_letter()--> dlq pending
 *   queued, not a CloudEvent, once it heads its key --pump()/dead_letter()--> dlq pending
 *        dlq pending --on_dr()--> done
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "deliver.h"
#include "ketenbus/clock.h"
#include "ketenbus/log.h"
#include "ketenbus/metrics.h"

#define KEY_BUCKETS 4096
#define TICK_MS 10
#define ERR_MAX 240
#define RESPONSE_MAX_HEADERS (16 << 10) /* bytes of a webhook's response headers */
#define RESPONSE_MAX_BODY    (64 << 10) /* ... and of its body, never used */
#define MAX_HEADERS 32           /* an event's headers read, and kept in its dead letter */

struct keyq;
struct partition;

/* One consumed event until it is finished. */
struct msg {
    struct msg *key_next;        /* next younger event of the same key */
    struct msg *part_next;       /* next unfinished offset of the same partition */
    struct msg *part_prev;       /* the one before it */
    struct partition *part;      /* its partition */
    struct keyq *kq;             /* its key queue */
    rd_kafka_message_t *rkm;     /* the Kafka message (owned until finished) */
    struct kb_event_attrs attrs; /* its CloudEvents attributes */
    int attrs_ok;                /* attrs could be read */
    int64_t offset;              /* its offset */
    int in_flight;               /* an HTTP request or DLQ produce is pending */
    int orphan;                  /* partition revoked meanwhile: drop on completion */
    int attempts;                /* failed attempts so far (from retry state too) */
    int64_t first_failure_ms;    /* when the first attempt failed; 0 = none yet */
    int64_t next_attempt_ms;     /* earliest time for the next attempt */
    int persisted;               /* a retry-state record exists (tombstone when done) */
    int doomed;                  /* to be dead-lettered: a retry repeats the dead letter,
                                  * never the request */
    char last_error[ERR_MAX];    /* why the last attempt failed (no personal data) */
};

/* Events of one subject key, oldest first; only the head may be in flight. */
struct keyq {
    struct keyq *hash_next;      /* chain in the key table */
    struct keyq *prev, *next;    /* the list of non-empty queues, for scheduling */
    char *key;                   /* the Kafka key (pseudonym) bytes */
    size_t klen;
    struct msg *head, *tail;
};

/* An assigned partition: its unfinished events in offset order. A finished
 * event leaves the list at once, wherever it stands: the commit point is the
 * oldest unfinished offset, and events finished behind one that keeps
 * failing (retried for days) must not pile up in memory. */
struct partition {
    struct partition *next;
    int32_t id;
    struct msg *head, *tail;
    int64_t next_offset;         /* one past the last consumed offset */
    int64_t committed;           /* last committed offset */
    int pending;                 /* its unfinished events held (the list's length) */
    int paused;                  /* consumption paused: its budget is spent (apply_budget) */
};

/* Retry state read back from the retry topic, until its event is consumed. */
struct saved {
    struct saved *next;
    int32_t partition;
    int64_t offset;
    int attempts;
    int64_t first_failure_ms, next_attempt_ms;
    char last_error[ERR_MAX];
};

struct kb_deliver {
    struct kb_deliver_opts o;    /* options, with defaults filled in */
    char topic_out[256], topic_retry[256], topic_dlq[256], group[256];
    char host[256], path[1024], hostport[300];
    int port;
    rd_kafka_t *consumer;        /* group member on topic_out */
    rd_kafka_t *producer;        /* writes retry state and dead letters */
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *ssl_ctx;
    struct event *tick;          /* TICK_MS heartbeat: poll Kafka, schedule */
    atomic_int *stop;
    int stopping;
    int failed;                  /* out of memory: stopped so nothing is committed past */
    struct partition *parts;     /* assigned partitions */
    struct keyq *keys[KEY_BUCKETS];
    struct keyq *active;         /* non-empty key queues (round robin) */
    struct saved *saved;         /* retry state not yet matched to an event */
    int pending;                 /* unfinished events held, all partitions */
    int in_flight;               /* HTTP requests outstanding */
    double tokens;               /* rate limiter bucket */
    int64_t tokens_ms;           /* last refill */
    int handshake;               /* 0 not yet, 1 in flight, 2 done */
    int handshake_failures;
    int64_t handshake_next_ms;
    int64_t last_commit_ms;
    double allowed_rate;                   /* WebHook-Allowed-Rate from the handshake, 0 = none */
    struct kb__deliver_statuses permanent; /* answers that dead-letter at once */
    kb_series_t *m_ok, *m_4xx, *m_5xx, *m_throttled, *m_timeout, *m_error;
    kb_series_t *m_delivered, *m_backlog, *m_pending, *m_paused, *m_latency, *m_dlq;
};

/* One HTTP exchange; outlives the msg if the partition is revoked. */
struct exchange {
    struct kb_deliver *d;
    struct msg *m;               /* NULL for the handshake */
    struct evhttp_connection *conn;
    int64_t started_ms;
    struct evhttp_request *req;  /* while in flight */
    struct event *deadline;      /* --timeout for the whole exchange (on_deadline) */
};

static uint32_t random_u32(void)
{
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)kb_wall_ms();
    return r;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* --- URL and TLS --- */

static kb_err_t parse_url(struct kb_deliver *d, const char *url, char *errstr,
                          size_t errstr_size)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "webhook URL does not parse");
    kb_err_t err = KB_OK;
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    if (!scheme || strcasecmp(scheme, "https")) {
        err = kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                         "webhook URL must be https:// (TLS verification is always on)");
        goto out;
    }
    if (!host || !*host || strlen(host) >= sizeof d->host) {
        err = kb_err_set(KB_ERR_CONF, errstr, errstr_size, "webhook URL has no usable host");
        goto out;
    }
    snprintf(d->host, sizeof d->host, "%s", host);
    d->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 443;
    const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
    snprintf(d->path, sizeof d->path, "%s%s%s", path && *path ? path : "/", query ? "?" : "",
             query ? query : "");
    if (d->port == 443)
        snprintf(d->hostport, sizeof d->hostport, "%s", d->host);
    else
        snprintf(d->hostport, sizeof d->hostport, "%s:%d", d->host, d->port);
out:
    evhttp_uri_free(u);
    return err;
}

static kb_err_t tls_init(struct kb_deliver *d, char *errstr, size_t errstr_size)
{
    d->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!d->ssl_ctx)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(d->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(d->ssl_ctx, SSL_VERIFY_PEER, NULL);
    int ok = d->o.ca_file ? SSL_CTX_load_verify_locations(d->ssl_ctx, d->o.ca_file, NULL)
                          : SSL_CTX_set_default_verify_paths(d->ssl_ctx);
    if (ok != 1)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "cannot load CA %s",
                          d->o.ca_file ? d->o.ca_file : "(system store)");
    if (d->o.cert_file) {
        if (SSL_CTX_use_certificate_chain_file(d->ssl_ctx, d->o.cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(d->ssl_ctx,
                                        d->o.key_file ? d->o.key_file : d->o.cert_file,
                                        SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(d->ssl_ctx) != 1)
            return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                              "cannot load client certificate %s", d->o.cert_file);
    }
    return KB_OK;
}

/* A new connection to the webhook with hostname verification. */
static struct evhttp_connection *connect_webhook(struct kb_deliver *d)
{
    SSL *ssl = SSL_new(d->ssl_ctx);
    if (!ssl)
        return NULL;
    SSL_set_tlsext_host_name(ssl, d->host);
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    if (!X509_VERIFY_PARAM_set1_ip_asc(param, d->host)) /* not an IP: a DNS name */
        SSL_set1_host(ssl, d->host);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        d->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    struct evhttp_connection *conn =
        evhttp_connection_base_bufferevent_new(d->base, d->dns, bev, d->host, (uint16_t)d->port);
    if (!conn) {
        bufferevent_free(bev);
        return NULL;
    }
    struct timeval tv = {d->o.timeout_ms / 1000, (d->o.timeout_ms % 1000) * 1000};
    evhttp_connection_set_timeout_tv(conn, &tv);
    evhttp_connection_set_retries(conn, 0);
    /* The answer is only read for its status and a few headers: a webhook
     * sending endless headers or body fails its request instead of filling
     * this process's memory. */
    evhttp_connection_set_max_headers_size(conn, RESPONSE_MAX_HEADERS);
    evhttp_connection_set_max_body_size(conn, RESPONSE_MAX_BODY);
    return conn;
}

static void free_conn_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evhttp_connection_free(arg);
}

/* --- Kafka helpers --- */

static kb_err_t create_topics(struct kb_deliver *d, char *errstr, size_t errstr_size)
{
    /* The retry topic is compacted (only the latest state per event
     * matters); out and dlq keep the broker's retention. Managed clusters
     * (Strimzi KafkaTopic) create topics themselves: a refusal there is
     * no error, and a missing topic shows up right after this. */
    static const char *const compacted[] = {"cleanup.policy", "compact", NULL};
    const struct kb_topic_spec specs[3] = {
        {.name = d->topic_out, .partitions = -1},
        {.name = d->topic_dlq, .partitions = -1},
        {.name = d->topic_retry, .partitions = -1, .configs = compacted},
    };
    return kb_kafka_create_topics(d->producer, specs, 3, KB_TOPICS_MANAGED_OK, 30000, errstr,
                                  errstr_size);
}

/* Read the retry topic from the beginning to its end into d->saved. */
static kb_err_t load_retry_state(struct kb_deliver *d, char *errstr, size_t errstr_size)
{
    char e[512];
    rd_kafka_conf_t *conf = kb_kafka_conf_new(d->o.kafka, e, sizeof e);
    if (!conf)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s", e);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "group.id", d->group, NULL, 0); /* required, never joined */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "%s", e);
    }
    kb_err_t err = KB_OK;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, d->topic_retry, NULL);
    rd_kafka_resp_err_t ke;
    /* A topic created a moment ago may not be in every broker's metadata yet. */
    for (int tries = 0;; tries++) {
        ke = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (ke || tries == 40 || (md->topic_cnt == 1 && !md->topics[0].err))
            break;
        rd_kafka_metadata_destroy(md);
        md = NULL;
        usleep(250 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    if (ke || md->topic_cnt != 1 || md->topics[0].err) {
        err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "metadata of %s: %s",
                         d->topic_retry, rd_kafka_err2str(ke ? ke : md->topics[0].err));
        goto out;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(4);
    int64_t *end = calloc((size_t)md->topics[0].partition_cnt + 1, sizeof *end);
    if (!end) {
        rd_kafka_topic_partition_list_destroy(parts);
        err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    int remaining = 0;
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        rd_kafka_query_watermark_offsets(rk, d->topic_retry, p, &lo, &hi, 10000);
        end[i] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(parts, d->topic_retry, p)->offset = lo;
            remaining++;
        }
    }
    rd_kafka_assign(rk, parts);
    int64_t deadline = kb_wall_ms() + 60000;
    size_t loaded = 0;
    while (remaining > 0 && kb_wall_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        int idx = -1;
        for (int i = 0; i < md->topics[0].partition_cnt; i++)
            if (md->topics[0].partitions[i].id == m->partition)
                idx = i;
        if (idx >= 0 && m->offset + 1 >= end[idx]) {
            end[idx] = -1;
            remaining--;
        }
        /* Key "<partition>/<offset>"; the latest record per key wins. */
        char key[64];
        int32_t part;
        long long off;
        if (m->key_len && m->key_len < sizeof key) {
            memcpy(key, m->key, m->key_len);
            key[m->key_len] = '\0';
            if (sscanf(key, "%d/%lld", &part, &off) == 2) {
                struct saved **link = &d->saved, *s;
                while ((s = *link) && !(s->partition == part && s->offset == off))
                    link = &s->next;
                json_error_t jerr;
                json_t *j = m->payload ? json_loadb(m->payload, m->len, 0, &jerr) : NULL;
                if (!j && s) { /* tombstone */
                    *link = s->next;
                    free(s);
                } else if (j) {
                    if (!s && (s = calloc(1, sizeof *s))) {
                        s->next = d->saved;
                        d->saved = s;
                    }
                    if (s) {
                        s->partition = part;
                        s->offset = off;
                        s->attempts = (int)json_integer_value(json_object_get(j, "attempts"));
                        s->first_failure_ms =
                            json_integer_value(json_object_get(j, "first_failure_ms"));
                        s->next_attempt_ms =
                            json_integer_value(json_object_get(j, "next_attempt_ms"));
                        const char *le = json_string_value(json_object_get(j, "last_error"));
                        snprintf(s->last_error, sizeof s->last_error, "%s", le ? le : "");
                        loaded++;
                    }
                }
                json_decref(j);
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (remaining > 0)
        err = kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size, "reading %s timed out",
                         d->topic_retry);
    else
        KB_LOG_INFO("deliver", "retry state loaded", "subscriber=%s records=%zu",
                    d->o.subscriber, loaded);
    free(end);
    rd_kafka_topic_partition_list_destroy(parts);
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return err;
}

/* Write the retry state of the event at @p part / @p offset: @p val (JSON),
 * or NULL for a tombstone. Keyed by the event's own partition, so the state
 * follows it. */
static rd_kafka_resp_err_t write_state(struct kb_deliver *d, int32_t part, int64_t offset,
                                       const char *val)
{
    char key[64];
    int klen = snprintf(key, sizeof key, "%d/%lld", (int)part, (long long)offset);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        d->producer, RD_KAFKA_V_TOPIC(d->topic_retry), RD_KAFKA_V_KEY(key, (size_t)klen),
        RD_KAFKA_V_VALUE((void *)val, val ? strlen(val) : 0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
    if (e)
        KB_LOG_WARN("deliver", "retry state not written", "subscriber=%s partition=%d "
                    "offset=%lld tombstone=%d error=\"%s\"", d->o.subscriber, (int)part,
                    (long long)offset, !val, rd_kafka_err2str(e));
    return e;
}

static void persist_state(struct kb_deliver *d, struct msg *m, int tombstone)
{
    char *val = NULL;
    if (!tombstone) {
        json_t *j = json_pack("{s:i,s:I,s:I,s:s}", "attempts", m->attempts, "first_failure_ms",
                              (json_int_t)m->first_failure_ms, "next_attempt_ms",
                              (json_int_t)m->next_attempt_ms, "last_error", m->last_error);
        val = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!val)
            return;
    }
    rd_kafka_resp_err_t e = write_state(d, m->part->id, m->offset, val);
    free(val);
    if (!e)
        m->persisted = !tombstone;
}

/* Retry state of partition @p part below @p first, the offset consumption
 * resumed at: those events were finished (the group committed past them),
 * by an instance that did not know the state. Tombstone and forget it, or
 * it would be read back at every start for good. */
static void drop_stale_state(struct kb_deliver *d, int32_t part, int64_t first)
{
    for (struct saved **link = &d->saved, *s; (s = *link);) {
        if (s->partition != part || s->offset >= first) {
            link = &s->next;
            continue;
        }
        write_state(d, s->partition, s->offset, NULL);
        *link = s->next;
        free(s);
    }
}

/* --- queues --- */

static struct keyq *keyq_get(struct kb_deliver *d, const void *key, size_t klen)
{
    uint64_t h = hash_bytes(key, klen) % KEY_BUCKETS;
    for (struct keyq *k = d->keys[h]; k; k = k->hash_next)
        if (k->klen == klen && !memcmp(k->key, key, klen))
            return k;
    struct keyq *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->key = malloc(klen ? klen : 1);
    if (!k->key) {
        free(k);
        return NULL;
    }
    memcpy(k->key, key, klen);
    k->klen = klen;
    k->hash_next = d->keys[h];
    d->keys[h] = k;
    /* Into the active list, at the tail (round robin). */
    if (d->active) {
        k->prev = d->active->prev;
        k->next = d->active;
        d->active->prev->next = k;
        d->active->prev = k;
    } else {
        d->active = k->prev = k->next = k;
    }
    return k;
}

static void keyq_release(struct kb_deliver *d, struct keyq *k)
{
    uint64_t h = hash_bytes(k->key, k->klen) % KEY_BUCKETS;
    struct keyq **link = &d->keys[h];
    while (*link != k)
        link = &(*link)->hash_next;
    *link = k->hash_next;
    if (k->next == k) {
        d->active = NULL;
    } else {
        k->prev->next = k->next;
        k->next->prev = k->prev;
        if (d->active == k)
            d->active = k->next;
    }
    free(k->key);
    free(k);
}

static struct partition *partition_get(struct kb_deliver *d, int32_t id, int create)
{
    for (struct partition *p = d->parts; p; p = p->next)
        if (p->id == id)
            return p;
    if (!create)
        return NULL;
    struct partition *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->id = id;
    p->next_offset = -1;
    p->committed = -1;
    p->next = d->parts;
    d->parts = p;
    return p;
}

static void update_gauges(struct kb_deliver *d)
{
    int backlog = 0, paused = 0;
    struct keyq *k = d->active;
    if (k) {
        do {
            if (k->head && k->head->attempts > 0) {
                paused++;
                for (struct msg *m = k->head; m; m = m->key_next)
                    backlog++;
            }
            k = k->next;
        } while (k != d->active);
    }
    kb_series_set(d->m_backlog, backlog);
    kb_series_set(d->m_paused, paused);
    kb_series_set(d->m_pending, d->pending);
}

/* The event is finished (delivered or dead-lettered): let its key move on. */
static void finish(struct kb_deliver *d, struct msg *m)
{
    if (m->persisted)
        persist_state(d, m, 1);
    m->in_flight = 0;
    struct keyq *k = m->kq;
    if (k) {
        k->head = m->key_next; /* m is always its key's head (invariant 2) */
        if (!k->head) {
            k->tail = NULL;
            keyq_release(d, k);
        }
        m->kq = NULL;
    }
    rd_kafka_message_destroy(m->rkm);
    m->rkm = NULL;
    d->pending--;
    /* Out of its partition's list: the commit point moves when it was the
     * oldest, and nothing of it is kept either way. */
    struct partition *p = m->part;
    p->pending--;
    if (m->part_prev)
        m->part_prev->part_next = m->part_next;
    else
        p->head = m->part_next;
    if (m->part_next)
        m->part_next->part_prev = m->part_prev;
    else
        p->tail = m->part_prev;
    free(m);
}

/* --- dead letters --- */

static void dead_letter(struct kb_deliver *d, struct msg *m, const char *why)
{
    m->doomed = 1;
    if (why != m->last_error)
        snprintf(m->last_error, sizeof m->last_error, "%s", why);
    /* The event's headers as enqueue() read them (up to MAX_HEADERS), then ours. */
    struct kb_header hdrs[MAX_HEADERS + 7];
    size_t n = kb_kafka_headers(m->rkm, hdrs, MAX_HEADERS);
    char attempts[16], first[40], part[16], off[24];
    snprintf(attempts, sizeof attempts, "%d", m->attempts);
    kb_event_time(m->first_failure_ms ? m->first_failure_ms : kb_wall_ms(), first);
    snprintf(part, sizeof part, "%d", (int)m->rkm->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->rkm->offset);
    const struct kb_header extra[] = {
        {"kb_stage", "deliver", 7},
        {"kb_error", m->last_error, strlen(m->last_error)},
        {"kb_attempts", attempts, strlen(attempts)},
        {"kb_first_failure", first, strlen(first)},
        {"kb_topic", d->topic_out, strlen(d->topic_out)},
        {"kb_partition", part, strlen(part)},
        {"kb_offset", off, strlen(off)},
    };
    _Static_assert(sizeof extra / sizeof extra[0] <= sizeof hdrs / sizeof hdrs[0] - MAX_HEADERS,
                   "room for the dead-letter headers");
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        hdrs[n++] = extra[i];
    rd_kafka_headers_t *h = kb_kafka_headers_new(hdrs, n);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        d->producer, RD_KAFKA_V_TOPIC(d->topic_dlq), RD_KAFKA_V_KEY(m->rkm->key, m->rkm->key_len),
        RD_KAFKA_V_VALUE(m->rkm->payload, m->rkm->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h);
        /* Try again later; the event stays unfinished, nothing is lost. */
        KB_LOG_WARN("deliver", "dead letter not produced", "subscriber=%s error=\"%s\"",
                    d->o.subscriber, rd_kafka_err2str(e));
        m->next_attempt_ms = kb_wall_ms() + 1000;
        return;
    }
    m->in_flight = 1;
    KB_LOG_WARN("deliver", "dead-lettered", "subscriber=%s partition=%d offset=%lld id=%s "
                "attempts=%d error=\"%s\"", d->o.subscriber, (int)m->rkm->partition,
                (long long)m->rkm->offset, m->attrs_ok ? m->attrs.id : "-", m->attempts,
                m->last_error);
}

/* Delivery report of a dead letter (opaque = msg) or retry state (NULL). */
static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    struct kb_deliver *d = opaque;
    struct msg *m = rkm->_private;
    if (!m)
        return;
    m->in_flight = 0;
    if (rkm->err) {
        KB_LOG_WARN("deliver", "dead letter failed, will retry", "subscriber=%s error=\"%s\"",
                    d->o.subscriber, rd_kafka_err2str(rkm->err));
        m->next_attempt_ms = kb_wall_ms() + 1000;
        m->attempts = m->attempts ? m->attempts : 1;
        if (m->orphan) { /* revoked meanwhile: the new owner starts over */
            rd_kafka_message_destroy(m->rkm);
            free(m);
        }
        return;
    }
    if (m->orphan) {
        rd_kafka_message_destroy(m->rkm);
        free(m);
        return;
    }
    kb_series_add(d->m_dlq, 1);
    finish(d, m);
}

/* --- HTTP --- */

static void add_header(struct evkeyvalq *h, const char *name, const char *value)
{
    if (value && *value)
        evhttp_add_header(h, name, value);
}

static void schedule_retry(struct kb_deliver *d, struct msg *m, int64_t retry_after_ms)
{
    int64_t now = kb_wall_ms();
    if (!m->first_failure_ms)
        m->first_failure_ms = now;
    m->attempts++;
    int64_t window_end = m->first_failure_ms + d->o.retry_window_ms;
    if (now >= window_end) {
        dead_letter(d, m, m->last_error);
        return;
    }
    int64_t delay = retry_after_ms >= 0
                        ? retry_after_ms
                        : kb__deliver_backoff_ms(m->attempts, d->o.backoff_base_ms,
                                                 d->o.backoff_max_ms, random_u32());
    m->next_attempt_ms = now + delay;
    if (m->next_attempt_ms > window_end - 1)
        m->next_attempt_ms = window_end - 1; /* one last try just inside the window */
    persist_state(d, m, 0);
    KB_LOG_INFO("deliver", "retry scheduled", "subscriber=%s partition=%d offset=%lld id=%s "
                "attempt=%d delay_ms=%lld error=\"%s\"", d->o.subscriber, (int)m->part->id,
                (long long)m->offset, m->attrs.id, m->attempts,
                (long long)(m->next_attempt_ms - now), m->last_error);
}

static void on_response(struct evhttp_request *req, void *arg);

/* --timeout has passed since the request went out: libevent's own timeout
 * is per read, and a webhook answering a byte now and then would hold the
 * exchange (and, at --concurrency, all delivery) for good. The request is
 * cancelled (its callback is then not called) and fails as a timeout. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct exchange *x = arg;
    evhttp_cancel_request(x->req);
    on_response(NULL, x);
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct exchange *x = arg;
    struct kb_deliver *d = x->d;
    if (x->deadline) {
        event_free(x->deadline);
        x->deadline = NULL;
    }
    struct msg *m = x->m;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    const char *retry_after =
        req && status ? evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After")
                      : NULL;
    int64_t ra = kb__deliver_retry_after_ms(retry_after, kb_wall_ms());
    int64_t took = kb_wall_ms() - x->started_ms;
    char why[ERR_MAX];
    if (status == 0) {
        int timed_out = took >= d->o.timeout_ms - 50;
        struct bufferevent *bev = evhttp_connection_get_bufferevent(x->conn);
        unsigned long ssl_err = bev ? bufferevent_get_openssl_error(bev) : 0;
        if (!ssl_err)
            ssl_err = ERR_get_error();
        if (timed_out)
            snprintf(why, sizeof why, "timeout after %d ms", d->o.timeout_ms);
        else if (ssl_err)
            snprintf(why, sizeof why, "tls: %s", ERR_reason_error_string(ssl_err));
        else
            snprintf(why, sizeof why, "connection failed");
        ERR_clear_error();
        kb_series_add(timed_out ? d->m_timeout : d->m_error, 1);
    } else {
        snprintf(why, sizeof why, "HTTP %d", status);
    }
    event_base_once(d->base, -1, EV_TIMEOUT, free_conn_later, x->conn, NULL);
    d->in_flight--;
    free(x);

    if (!m) { /* the validation handshake */
        const char *allowed = status / 100 == 2 ? evhttp_find_header(
                                                      evhttp_request_get_input_headers(req),
                                                      "WebHook-Allowed-Origin")
                                                : NULL;
        if (allowed && (!strcmp(allowed, "*") || !strcmp(allowed, d->o.origin))) {
            const char *rate =
                evhttp_find_header(evhttp_request_get_input_headers(req), "WebHook-Allowed-Rate");
            d->allowed_rate = rate && strcmp(rate, "*") ? atof(rate) : 0;
            d->handshake = 2;
            KB_LOG_INFO("deliver", "webhook validated", "subscriber=%s allowed_rate=%s",
                        d->o.subscriber, rate ? rate : "-");
        } else {
            d->handshake = 0;
            d->handshake_failures++;
            d->handshake_next_ms = kb_wall_ms() + kb__deliver_backoff_ms(
                                                  d->handshake_failures, d->o.backoff_base_ms,
                                                  d->o.backoff_max_ms, random_u32());
            KB_LOG_WARN("deliver", "webhook validation failed", "subscriber=%s error=\"%s\"",
                        d->o.subscriber, allowed ? "origin not allowed" : why);
        }
        return;
    }
    m->in_flight = 0;
    if (m->orphan) {
        rd_kafka_message_destroy(m->rkm);
        free(m);
        return;
    }
    if (status / 100 == 2) {
        kb_series_add(d->m_ok, 1);
        kb_series_add(d->m_delivered, 1);
        int64_t t = kb__deliver_parse_time(m->attrs.time);
        if (t > 0)
            kb_series_observe(d->m_latency, (double)(kb_wall_ms() - t) / 1000.0);
        KB_LOG_DBG("deliver", "delivered", "subscriber=%s partition=%d offset=%lld id=%s ms=%lld",
                   d->o.subscriber, (int)m->part->id, (long long)m->offset, m->attrs.id,
                   (long long)took);
        finish(d, m);
        return;
    }
    if (status == 429 || status == 503)
        kb_series_add(d->m_throttled, 1);
    else if (status >= 500)
        kb_series_add(d->m_5xx, 1);
    else if (status)
        kb_series_add(d->m_4xx, 1);
    if (kb__deliver_statuses_has(&d->permanent, status)) {
        /* The webhook says this request can never succeed (gone, malformed,
         * too large, not processable): the same bytes again would get the
         * same answer for the whole window, and hold up the events of its
         * key meanwhile. */
        if (!m->first_failure_ms)
            m->first_failure_ms = kb_wall_ms();
        m->attempts++;
        snprintf(m->last_error, sizeof m->last_error, "%.200s (permanent)", why);
        dead_letter(d, m, m->last_error);
        return;
    }
    snprintf(m->last_error, sizeof m->last_error, "%s", why);
    schedule_retry(d, m, (status == 429 || status == 503) ? ra : -1);
}

static int send_request(struct kb_deliver *d, struct msg *m)
{
    struct exchange *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->d = d;
    x->m = m;
    x->started_ms = kb_wall_ms();
    x->conn = connect_webhook(d);
    if (!x->conn) {
        free(x);
        return -1;
    }
    struct evhttp_request *req = evhttp_request_new(on_response, x);
    if (!req) {
        evhttp_connection_free(x->conn);
        free(x);
        return -1;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    add_header(h, "Host", d->hostport);
    add_header(h, "User-Agent", "ketenbus-deliver/" KB_VERSION);
    enum evhttp_cmd_type cmd = EVHTTP_REQ_OPTIONS;
    if (!m) {
        add_header(h, "WebHook-Request-Origin", d->o.origin);
        if (d->o.rate > 0) {
            char r[32];
            snprintf(r, sizeof r, "%d", (int)(d->o.rate * 60));
            add_header(h, "WebHook-Request-Rate", r); /* requests per minute */
        }
    } else {
        cmd = EVHTTP_REQ_POST;
        char *body = NULL, errstr[256] = "";
        size_t len = 0;
        kb_err_t err = kb__deliver_render(d->o.schemas, &m->attrs, m->rkm->payload, m->rkm->len,
                                          d->o.mode, &body, &len, errstr, sizeof errstr);
        if (err) {
            evhttp_request_free(req);
            evhttp_connection_free(x->conn);
            free(x);
            char why[ERR_MAX];
            snprintf(why, sizeof why, "not renderable: %.200s", errstr[0] ? errstr : kb_err_str(err));
            /* A schema id not known here (a projection the router put in
             * the registry, a registry-backed --schemas not reachable yet)
             * or a lack of memory may pass: retried within the window like
             * a failed request. Bytes that the validator refuses or that
             * do not decode never will. */
            if (err == KB_ERR_SCHEMA || err == KB_ERR_NOMEM) {
                snprintf(m->last_error, sizeof m->last_error, "%s", why);
                schedule_retry(d, m, -1);
            } else {
                dead_letter(d, m, why);
            }
            return 1;
        }
        char ts[24], seq[24];
        snprintf(ts, sizeof ts, "%lld", (long long)(kb_wall_ms() / 1000));
        struct kb__deliver_header signed_hdrs[KB_DELIVER_SIGNED_MAX];
        size_t n_signed = kb__deliver_post_headers(&m->attrs, d->o.mode, seq, signed_hdrs);
        struct kb__deliver_sig sig;
        err = kb__deliver_sign(d->o.secret, d->o.secret_len, ts, signed_hdrs, n_signed, body, len,
                               !d->o.signature_v1_only, &sig);
        if (err) {
            free(body);
            evhttp_request_free(req);
            evhttp_connection_free(x->conn);
            free(x);
            /* The event's attributes were checked on the way in, so only
             * memory can fail here; an unsignable value never gets better. */
            if (err == KB_ERR_NOMEM) {
                snprintf(m->last_error, sizeof m->last_error, "out of memory signing");
                schedule_retry(d, m, -1);
            } else {
                dead_letter(d, m, "not signable: a header value holds CR or LF");
            }
            return 1;
        }
        add_header(h, "X-Ketenbus-Timestamp", ts);
        add_header(h, "X-Ketenbus-Signature", sig.header);
        if (!d->o.signature_v1_only)
            add_header(h, "X-Ketenbus-Signed-Headers", sig.signed_headers);
        add_header(h, "WebHook-Request-Origin", d->o.origin);
        add_header(h, "traceparent", m->attrs.traceparent);
        /* What was signed is what is sent: the same list. */
        for (size_t i = 0; i < n_signed; i++)
            add_header(h, signed_hdrs[i].name, signed_hdrs[i].value);
        evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
        free(body);
        m->in_flight = 1;
    }
    if (evhttp_make_request(x->conn, req, cmd, d->path)) {
        /* evhttp freed req; count it as a failed attempt */
        evhttp_connection_free(x->conn);
        free(x);
        if (m) {
            m->in_flight = 0;
            snprintf(m->last_error, sizeof m->last_error, "request could not be sent");
            schedule_retry(d, m, -1);
        }
        return 1;
    }
    d->in_flight++;
    x->req = req;
    struct timeval tv = {d->o.timeout_ms / 1000, (d->o.timeout_ms % 1000) * 1000};
    if ((x->deadline = evtimer_new(d->base, on_deadline, x)) && evtimer_add(x->deadline, &tv)) {
        event_free(x->deadline); /* not armed: libevent's per-read timeout still holds */
        x->deadline = NULL;
    }
    return 0;
}

/* --- scheduling --- */

static void refill_tokens(struct kb_deliver *d, int64_t now)
{
    double rate = d->o.rate;
    if (d->allowed_rate > 0 && (rate <= 0 || d->allowed_rate / 60.0 < rate))
        rate = d->allowed_rate / 60.0; /* the receiver's WebHook-Allowed-Rate is per minute */
    if (rate <= 0) {
        d->tokens = 1e9;
        return;
    }
    d->tokens += rate * (double)(now - d->tokens_ms) / 1000.0;
    double cap = rate < 1 ? 1 : rate;
    if (d->tokens > cap)
        d->tokens = cap;
    d->tokens_ms = now;
}

static void pump(struct kb_deliver *d)
{
    int64_t now = kb_wall_ms();
    if (!d->o.skip_handshake && d->handshake != 2) {
        if (d->handshake == 0 && now >= d->handshake_next_ms && !d->stopping) {
            d->handshake = 1;
            if (send_request(d, NULL))
                d->handshake = 0;
        }
        return;
    }
    refill_tokens(d, now);
    struct keyq *k = d->active;
    if (!k)
        return;
    int n = 0;
    /* Walk each queue once; the keyq may be released while walking. */
    struct keyq *stop_at = k->prev;
    for (;;) {
        struct keyq *next = k->next;
        int last = k == stop_at;
        struct msg *m = k->head;
        if (d->stopping || d->in_flight >= d->o.concurrency || d->tokens < 1)
            break;
        if (m && !m->in_flight && m->next_attempt_ms <= now) {
            if (!m->attrs_ok || m->doomed) {
                /* Not a CloudEvent: never sent; dead-lettered only now that it heads its
                 * key, since finish() moves the key's queue on from its head. Or a dead
                 * letter that could not be produced: that is what is tried again. */
                dead_letter(d, m, m->last_error);
            } else if (m->first_failure_ms &&
                       now >= m->first_failure_ms + d->o.retry_window_ms) {
                dead_letter(d, m, m->last_error); /* the window closed while we were down */
            } else {
                d->tokens -= 1;
                send_request(d, m);
            }
            n++;
        }
        if (last || !d->active)
            break;
        k = next;
    }
    if (d->active && n)
        d->active = d->active->next; /* rotate so no key starves */
}

/* --- consuming --- */

/* Hold @p rkm until it is finished. -1 when out of memory: the event is
 * released unheld, and the caller must stop consuming, so that no later
 * offset is committed past it (a restart reads it again). */
static int enqueue(struct kb_deliver *d, rd_kafka_message_t *rkm)
{
    struct partition *p = partition_get(d, rkm->partition, 1);
    struct msg *m = calloc(1, sizeof *m);
    struct keyq *k = NULL;
    char okey[48];
    if (p && m) {
        /* No key means no order to keep: a queue of its own. */
        if (rkm->key_len)
            k = keyq_get(d, rkm->key, rkm->key_len);
        else
            k = keyq_get(d, okey, (size_t)snprintf(okey, sizeof okey, "\x1f%d/%lld",
                                                    (int)rkm->partition, (long long)rkm->offset));
    }
    if (!k) {
        KB_LOG_ERR("deliver", "out of memory, stopping; the event is read again on restart",
                   "subscriber=%s partition=%d offset=%lld", d->o.subscriber,
                   (int)rkm->partition, (long long)rkm->offset);
        free(m);
        rd_kafka_message_destroy(rkm);
        return -1;
    }
    if (p->next_offset < 0)
        drop_stale_state(d, p->id, rkm->offset);
    m->rkm = rkm;
    m->part = p;
    m->kq = k;
    m->offset = rkm->offset;
    if (k->tail)
        k->tail->key_next = m;
    else
        k->head = m;
    k->tail = m;
    m->part_prev = p->tail;
    if (p->tail)
        p->tail->part_next = m;
    else
        p->head = m;
    p->tail = m;
    p->next_offset = rkm->offset + 1;
    p->pending++;
    d->pending++;

    struct kb_header hdrs[MAX_HEADERS];
    size_t n = kb_kafka_headers(rkm, hdrs, MAX_HEADERS);
    char errstr[256];
    m->attrs_ok = !kb_event_attrs_from_headers(hdrs, n, &m->attrs, errstr, sizeof errstr);
    /* Continue a retry schedule persisted before a restart. */
    for (struct saved **link = &d->saved, *s; (s = *link); link = &s->next) {
        if (s->partition == rkm->partition && s->offset == rkm->offset) {
            m->attempts = s->attempts;
            m->first_failure_ms = s->first_failure_ms;
            m->next_attempt_ms = s->next_attempt_ms;
            m->persisted = 1;
            snprintf(m->last_error, sizeof m->last_error, "%s", s->last_error);
            *link = s->next;
            free(s);
            KB_LOG_INFO("deliver", "retry state resumed", "subscriber=%s partition=%d "
                        "offset=%lld attempts=%d", d->o.subscriber, (int)rkm->partition,
                        (long long)rkm->offset, m->attempts);
            break;
        }
    }
    /* Not a CloudEvent: pump() dead-letters it when it heads its key queue
     * (an older event of the same key may still be unfinished). */
    if (!m->attrs_ok)
        snprintf(m->last_error, sizeof m->last_error, "not a CloudEvent: %.200s", errstr);
    return 0;
}

static void commit(struct kb_deliver *d, int sync)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (struct partition *p = d->parts; p; p = p->next) {
        int64_t at = p->head ? p->head->offset : p->next_offset;
        if (at >= 0 && at > p->committed) {
            rd_kafka_topic_partition_list_add(l, d->topic_out, p->id)->offset = at;
            p->committed = at;
        }
    }
    if (l->cnt) {
        rd_kafka_resp_err_t e = rd_kafka_commit(d->consumer, l, sync ? 0 : 1);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            KB_LOG_WARN("deliver", "commit failed", "subscriber=%s error=\"%s\"",
                        d->o.subscriber, rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* kb_deliver_partition_paused of partition @p id: @p paused 0 or 1, or -1
 * to withdraw it (revoked: no longer this process's to report). */
static void paused_gauge(const struct kb_deliver *d, int32_t id, int paused)
{
    char part[16];
    snprintf(part, sizeof part, "%d", (int)id);
    if (paused < 0)
        kb_metrics_gauge_remove("kb_deliver_partition_paused", d->o.subscriber, part, NULL);
    else
        kb_metrics_gauge_set("kb_deliver_partition_paused", paused, d->o.subscriber, part, NULL);
}

/* Drop every unfinished event of partition @p p (it was revoked). */
static void drop_partition(struct kb_deliver *d, struct partition *p)
{
    for (struct msg *m = p->head, *n; m; m = n) {
        n = m->part_next;
        /* the list holds unfinished events only (finish() takes the rest out) */
        struct keyq *k = m->kq;
        /* Unlink from its key queue (events of one key share a partition). */
        if (k) {
            struct msg **link = &k->head;
            while (*link && *link != m)
                link = &(*link)->key_next;
            if (*link)
                *link = m->key_next;
            if (k->tail == m) {
                k->tail = NULL;
                for (struct msg *t = k->head; t; t = t->key_next)
                    k->tail = t;
            }
            if (!k->head)
                keyq_release(d, k);
        }
        d->pending--;
        if (m->in_flight) {
            m->orphan = 1; /* freed by its completion */
        } else {
            if (m->rkm)
                rd_kafka_message_destroy(m->rkm);
            free(m);
        }
    }
    paused_gauge(d, p->id, -1);
    struct partition **link = &d->parts;
    while (*link != p)
        link = &(*link)->next;
    *link = p->next;
    free(p);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kb_deliver *d = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Partitions may come from an instance that wrote retry state since
         * this one read the topic (at start, or at its last assignment; even
         * the first assignment can come a while after start): read it again,
         * so their events continue their backoff and window. */
        char e[512];
        if (load_retry_state(d, e, sizeof e))
            KB_LOG_WARN("deliver", "retry state not re-read; those events start over",
                        "subscriber=%s error=\"%s\"", d->o.subscriber, e);
        for (int i = 0; i < parts->cnt; i++) {
            partition_get(d, parts->elems[i].partition, 1);
            paused_gauge(d, parts->elems[i].partition, 0);
        }
        rd_kafka_assign(rk, parts);
        /* Held nothing of them yet: none is paused, also not one that this
         * process paused before it was revoked (librdkafka keeps that flag). */
        rd_kafka_resume_partitions(rk, parts);
        kb_metrics_set_ready(1);
        KB_LOG_INFO("deliver", "partitions assigned", "subscriber=%s count=%d",
                    d->o.subscriber, parts->cnt);
    } else {
        commit(d, 1);
        for (int i = 0; i < parts->cnt; i++) {
            struct partition *p = partition_get(d, parts->elems[i].partition, 0);
            if (p)
                drop_partition(d, p);
        }
        rd_kafka_assign(rk, NULL);
        KB_LOG_INFO("deliver", "partitions revoked", "subscriber=%s count=%d",
                    d->o.subscriber, parts->cnt);
    }
}

/* Pause the partitions whose budget is spent, resume those with room for a
 * few events again (kb__deliver_partition_may_take; invariant 5). Pausing
 * makes librdkafka drop what it fetched ahead for the partition, and
 * resuming fetches from the next offset not consumed, so nothing is skipped. */
static void apply_budget(struct kb_deliver *d)
{
    int n = 0;
    for (struct partition *p = d->parts; p; p = p->next)
        n++;
    if (!n)
        return;
    int reserved = kb__deliver_partition_reserve(d->o.max_pending, n);
    long used = 0;
    for (struct partition *p = d->parts; p; p = p->next)
        used += p->pending > reserved ? p->pending : reserved;
    rd_kafka_topic_partition_list_t *pause = NULL, *resume = NULL;
    for (struct partition *p = d->parts; p; p = p->next) {
        int may = kb__deliver_partition_may_take(p->pending, reserved, used, d->o.max_pending,
                                                 p->paused ? reserved / 2 : 0);
        if (may == !p->paused)
            continue;
        rd_kafka_topic_partition_list_t **l = may ? &resume : &pause;
        if (!*l)
            *l = rd_kafka_topic_partition_list_new(n);
        rd_kafka_topic_partition_list_add(*l, d->topic_out, p->id);
        p->paused = !may;
        paused_gauge(d, p->id, p->paused);
        KB_LOG_DBG("deliver", may ? "partition resumed" : "partition paused",
                   "subscriber=%s partition=%d pending=%d reserved=%d budget_used=%ld",
                   d->o.subscriber, (int)p->id, p->pending, reserved, used);
    }
    if (pause) {
        rd_kafka_pause_partitions(d->consumer, pause);
        rd_kafka_topic_partition_list_destroy(pause);
    }
    if (resume) {
        rd_kafka_resume_partitions(d->consumer, resume);
        rd_kafka_topic_partition_list_destroy(resume);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct kb_deliver *d = arg;
    if (atomic_load(d->stop) && !d->stopping) {
        d->stopping = 1;
        KB_LOG_INFO("deliver", "stopping", "subscriber=%s in_flight=%d", d->o.subscriber,
                    d->in_flight);
    }
    rd_kafka_poll(d->producer, 0);
    if (!d->stopping) {
        /* Paused partitions give nothing, so this takes what the budget
         * allows, and serves rebalances and heartbeats while every partition
         * is paused. (Not rd_kafka_poll(): it is not allowed on a consumer
         * whose main queue was redirected with rd_kafka_poll_set_consumer.)
         * A message fetched before its partition was paused is held like any
         * other: it is never dropped, so never committed past. */
        apply_budget(d);
        for (int i = 0; i < 500; i++) {
            rd_kafka_message_t *rkm = rd_kafka_consumer_poll(d->consumer, 0);
            if (!rkm)
                break;
            if (rkm->err) {
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    KB_LOG_WARN("deliver", "consumer error", "subscriber=%s error=\"%s\"",
                                d->o.subscriber, rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
                continue;
            }
            if (enqueue(d, rkm)) {
                d->failed = d->stopping = 1;
                break;
            }
            apply_budget(d); /* the partition that took it may be full now */
        }
    }
    pump(d);
    int64_t now = kb_wall_ms();
    if (now - d->last_commit_ms >= 1000) {
        commit(d, 0);
        update_gauges(d);
        d->last_commit_ms = now;
    }
    if (d->stopping && d->in_flight == 0)
        event_base_loopbreak(d->base);
}

/* --- lifecycle --- */

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    return kb_metrics_kafka_stats_cb(rk, json, len, opaque);
}

kb_deliver_t *kb_deliver_new(const struct kb_deliver_opts *opts, char *errstr,
                             size_t errstr_size)
{
    struct kb_deliver *d = calloc(1, sizeof *d);
    if (!d) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    d->o = *opts;
    if (!d->o.subscriber || !d->o.url || !d->o.kafka || !d->o.schemas) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "subscriber, url, kafka and schemas needed");
        goto out_fail;
    }
    if (!d->o.concurrency)
        d->o.concurrency = 4;
    if (!d->o.retry_window_ms)
        d->o.retry_window_ms = 5LL * 24 * 3600 * 1000;
    if (!d->o.backoff_base_ms)
        d->o.backoff_base_ms = 1000;
    if (!d->o.backoff_max_ms)
        d->o.backoff_max_ms = 3600 * 1000;
    if (!d->o.timeout_ms)
        d->o.timeout_ms = 10000;
    if (!d->o.max_pending)
        d->o.max_pending = 1000;
    if (kb__deliver_statuses_parse(d->o.permanent_status ? d->o.permanent_status
                                                         : KB_DELIVER_PERMANENT_DEFAULT,
                                   &d->permanent, errstr, errstr_size))
        goto out_fail;
    static char hostname[256];
    if (!d->o.origin) {
        if (gethostname(hostname, sizeof hostname - 1))
            snprintf(hostname, sizeof hostname, "ketenbus");
        d->o.origin = hostname;
    }
    char suffix[200];
    snprintf(suffix, sizeof suffix, "out.%s", d->o.subscriber);
    kb_topic_name(d->topic_out, sizeof d->topic_out, suffix);
    snprintf(suffix, sizeof suffix, "retry.%s", d->o.subscriber);
    kb_topic_name(d->topic_retry, sizeof d->topic_retry, suffix);
    snprintf(suffix, sizeof suffix, "dlq.%s", d->o.subscriber);
    kb_topic_name(d->topic_dlq, sizeof d->topic_dlq, suffix);
    snprintf(suffix, sizeof suffix, "deliver.%s", d->o.subscriber);
    if (d->o.group_id)
        snprintf(d->group, sizeof d->group, "%s", d->o.group_id);
    else
        kb_topic_name(d->group, sizeof d->group, suffix);
    if (parse_url(d, d->o.url, errstr, errstr_size) || tls_init(d, errstr, errstr_size))
        goto out_fail;

    char e[512];
    rd_kafka_conf_t *pc = kb_kafka_conf_new(d->o.kafka, e, sizeof e);
    if (!pc) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s", e);
        goto out_fail;
    }
    rd_kafka_conf_set(pc, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(pc, "acks", "all", NULL, 0);
    rd_kafka_conf_set(pc, "linger.ms", "5", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(pc, on_dr);
    rd_kafka_conf_set_opaque(pc, d);
    d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
    if (!d->producer) {
        rd_kafka_conf_destroy(pc);
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "%s", e);
        goto out_fail;
    }
    if (create_topics(d, errstr, errstr_size) || load_retry_state(d, errstr, errstr_size))
        goto out_fail;

    rd_kafka_conf_t *cc = kb_kafka_conf_new(d->o.kafka, e, sizeof e);
    if (!cc) {
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s", e);
        goto out_fail;
    }
    if (rd_kafka_conf_set(cc, "group.id", d->group, e, sizeof e) ||
        rd_kafka_conf_set(cc, "enable.auto.commit", "false", e, sizeof e) ||
        rd_kafka_conf_set(cc, "auto.offset.reset", "earliest", e, sizeof e) ||
        rd_kafka_conf_set(cc, "statistics.interval.ms", "5000", e, sizeof e) ||
        /* A killed deliverer's partitions move on after 10 s, not 45. */
        rd_kafka_conf_set(cc, "session.timeout.ms", "10000", e, sizeof e)) {
        rd_kafka_conf_destroy(cc);
        kb_err_set(KB_ERR_CONF, errstr, errstr_size, "%s", e);
        goto out_fail;
    }
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    rd_kafka_conf_set_stats_cb(cc, on_stats);
    rd_kafka_conf_set_opaque(cc, d);
    d->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
    if (!d->consumer) {
        rd_kafka_conf_destroy(cc);
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "%s", e);
        goto out_fail;
    }
    rd_kafka_poll_set_consumer(d->consumer);
    d->base = event_base_new();
    d->dns = d->base ? evdns_base_new(d->base, EVDNS_BASE_INITIALIZE_NAMESERVERS) : NULL;
    d->tick = d->base ? event_new(d->base, -1, EV_PERSIST, on_tick, d) : NULL;
    if (!d->tick) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "libevent setup failed");
        goto out_fail;
    }
    const char *sub = d->o.subscriber;
    d->m_ok = kb_metrics_series("kb_deliver_attempts_total", sub, "ok", NULL);
    d->m_4xx = kb_metrics_series("kb_deliver_attempts_total", sub, "http_4xx", NULL);
    d->m_5xx = kb_metrics_series("kb_deliver_attempts_total", sub, "http_5xx", NULL);
    d->m_throttled = kb_metrics_series("kb_deliver_attempts_total", sub, "throttled", NULL);
    d->m_timeout = kb_metrics_series("kb_deliver_attempts_total", sub, "timeout", NULL);
    d->m_error = kb_metrics_series("kb_deliver_attempts_total", sub, "error", NULL);
    d->m_delivered = kb_metrics_series("kb_deliver_delivered_total", sub, NULL);
    d->m_backlog = kb_metrics_series("kb_deliver_retry_backlog", sub, NULL);
    d->m_pending = kb_metrics_series("kb_deliver_pending", sub, NULL);
    d->m_paused = kb_metrics_series("kb_deliver_paused_keys", sub, NULL);
    d->m_latency = kb_metrics_series("kb_e2e_latency_seconds", sub, NULL);
    d->m_dlq = kb_metrics_series("kb_dead_letters_total", d->topic_dlq, "deliver", NULL);
    return d;
out_fail:
    kb_deliver_destroy(d);
    return NULL;
}

kb_err_t kb_deliver_run(kb_deliver_t *d, atomic_int *stop)
{
    d->stop = stop;
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, d->topic_out, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(d->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        KB_LOG_ERR("deliver", "subscribe failed", "error=\"%s\"", rd_kafka_err2str(e));
        return KB_ERR_KAFKA;
    }
    KB_LOG_INFO("deliver", "delivering", "subscriber=%s topic=%s host=%s mode=%s concurrency=%d",
                d->o.subscriber, d->topic_out, d->host,
                d->o.mode == KB_DELIVER_STRUCTURED ? "structured" : "binary", d->o.concurrency);
    d->tokens_ms = kb_wall_ms();
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(d->tick, &tv);
    event_base_dispatch(d->base);
    event_del(d->tick);
    rd_kafka_flush(d->producer, 10000); /* dead letters: their reports finish events */
    commit(d, 1);
    rd_kafka_flush(d->producer, 10000); /* the tombstones those reports wrote */
    return d->failed ? KB_ERR_NOMEM : KB_OK;
}

void kb_deliver_destroy(kb_deliver_t *d)
{
    if (!d)
        return;
    if (d->consumer) {
        rd_kafka_consumer_close(d->consumer);
        rd_kafka_destroy(d->consumer);
    }
    while (d->parts) {
        struct partition *p = d->parts;
        for (struct msg *m = p->head, *n; m; m = n) {
            n = m->part_next;
            m->orphan = 1;
            if (!m->in_flight) {
                if (m->rkm)
                    rd_kafka_message_destroy(m->rkm);
                free(m);
            }
        }
        d->parts = p->next;
        free(p);
    }
    while (d->active)
        keyq_release(d, d->active);
    if (d->producer) {
        rd_kafka_flush(d->producer, 5000);
        rd_kafka_destroy(d->producer);
    }
    while (d->saved) {
        struct saved *s = d->saved;
        d->saved = s->next;
        free(s);
    }
    if (d->tick)
        event_free(d->tick);
    if (d->dns)
        evdns_base_free(d->dns, 0);
    if (d->base)
        event_base_free(d->base);
    if (d->ssl_ctx)
        SSL_CTX_free(d->ssl_ctx);
    free(d);
}
