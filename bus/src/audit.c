/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * audit.c - the writer side of the audit trail: the chains of one router,
 * extended inside the router's Kafka transactions, resumed from the audit
 * topic's tail, with Ed25519-signed checkpoints (see ketenbus/audit.h).
 *
 * Each chain (one per input partition) has a committed head and a pending
 * head:
 *
 *     UNKNOWN --kb_audit_resume()/resume_at()--> CLEAN
 *     CLEAN   --kb_audit_append()/checkpoints()--> DIRTY   (pending head moves)
 *     DIRTY   --kb_audit_commit()--> CLEAN   (committed := pending)
 *     DIRTY   --kb_audit_abort()---> CLEAN   (pending := committed)
 *     CLEAN   --kb_audit_release()--> UNKNOWN
 *
 * A router that routes the next batch while the previous transaction
 * commits marks the pending heads when it hands that transaction off
 * (kb_audit_mark: mark := pending); appends go on from the pending heads;
 * kb_audit_commit_mark() then makes the marked heads the committed ones
 * (committed := mark), and the chain stays DIRTY when appends followed
 * the mark. kb_audit_abort() drops the mark along with everything pending.
 *
 * Invariants:
 *  1. A record's sequence is the previous record's + 1 and its prevHash the
 *     previous record's recordHash (zeros before sequence 0), so an aborted
 *     transaction leaves neither a gap nor a fork: its records are never
 *     visible to read_committed readers, and the next append reuses their
 *     sequence numbers from the committed head.
 *  2. All records of a chain go to one audit partition (key
 *     "<input topic>/<partition>", murmur2 partitioning), in sequence order.
 *  3. A checkpoint names the pending head of its chain at the time it is
 *     made, and is produced after that head's record in the same partition.
 *  4. The handle never blocks except in kb_audit_resume() (reads Kafka).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/sha.h>

#include "audit_int.h"
#include "ketenbus/clock.h"
#include "ketenbus/log.h"

#define COMP "audit"

struct chain {
    char *topic;                 /* input topic (owned) */
    int32_t partition;           /* input partition */
    char key[KB_AUDIT_KEY_MAX];  /* "<topic>/<partition>": the audit message key */
    size_t key_len;
    int32_t audit_partition;     /* where this chain's records go (invariant 2) */
    uint64_t next_seq;           /* committed: sequence of the next record */
    uint8_t head[KB_AUDIT_HASH_LEN]; /* committed: hash of the last record (zeros: none) */
    uint64_t since_cp;           /* committed: records since the last checkpoint */
    int64_t last_cp_ms;          /* committed: when the last checkpoint was made */
    uint64_t p_next_seq;         /* pending (this transaction) counterparts */
    uint8_t p_head[KB_AUDIT_HASH_LEN];
    uint64_t p_since_cp;
    int64_t p_last_cp_ms;
    uint64_t m_next_seq;         /* marked (transaction in flight) counterparts */
    uint8_t m_head[KB_AUDIT_HASH_LEN];
    uint64_t m_since_cp;
    int64_t m_last_cp_ms;
    int marked;                  /* the m_ fields hold a mark */
    int dirty;                   /* pending differs from committed */
    struct kb__audit_buf cp_buf; /* the chain's last checkpoint message */
};

struct kb_audit {
    struct kb_audit_opts opts;   /* copy; strings below owned */
    char topic[256];             /* audit topic */
    int32_t partitions;          /* audit topic partition count */
    EVP_PKEY *sign_key;          /* Ed25519 private key, or NULL (no checkpoints) */
    char key_id[17];             /* its id */
    rd_kafka_topic_conf_t *topic_conf; /* the audit topic's producer settings (its codec) */
    rd_kafka_t *reader;          /* group-less consumer for resume (lazy) */
    struct chain **chains;       /* chains of the assigned input partitions */
    size_t n_chains;
    struct kb__audit_buf rec_buf; /* the last record message */
};

/* ---- keys --------------------------------------------------------------- */

kb_err_t kb__audit_key_id(EVP_PKEY *pkey, char out[17])
{
    uint8_t raw[32], h[KB_AUDIT_HASH_LEN];
    size_t n = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &n) != 1 || n != 32)
        return KB_ERR_INVALID;
    SHA256(raw, n, h);
    kb__audit_hex(h, 8, out);
    return KB_OK;
}

static EVP_PKEY *load_key(const char *path, int private, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *k = private ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
                          : PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!k) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s: not a PEM %s key", path,
                   private ? "private" : "public");
        return NULL;
    }
    if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s: not an Ed25519 key", path);
        return NULL;
    }
    return k;
}

EVP_PKEY *kb__audit_load_private(const char *path, char *errstr, size_t errstr_size)
{
    return load_key(path, 1, errstr, errstr_size);
}

EVP_PKEY *kb__audit_load_public(const char *path, char *errstr, size_t errstr_size)
{
    return load_key(path, 0, errstr, errstr_size);
}

kb_err_t kb_audit_keygen(const char *private_path, const char *public_path, char key_id[17],
                         char *errstr, size_t errstr_size)
{
    kb_err_t err = KB_OK;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!k)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "Ed25519 key generation failed");
    /* O_EXCL: an existing key is never overwritten (its checkpoints would
     * become unverifiable); 0600 from the start, not chmod afterwards. */
    int fd = open(private_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", private_path, strerror(errno));
        goto out_free_key;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", private_path, strerror(errno));
        goto out_free_key;
    }
    int ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (fclose(f) != 0 || !ok) {
        err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: write failed", private_path);
        goto out_free_key;
    }
    f = fopen(public_path, "w");
    if (!f) {
        err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: %s", public_path, strerror(errno));
        goto out_free_key;
    }
    ok = PEM_write_PUBKEY(f, k) == 1;
    if (fclose(f) != 0 || !ok) {
        err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "%s: write failed", public_path);
        goto out_free_key;
    }
    if (key_id)
        err = kb__audit_key_id(k, key_id);
out_free_key:
    EVP_PKEY_free(k);
    return err;
}

/* ---- handle --------------------------------------------------------------- */

/* The retention the trail needs (AUDIT.md): kept forever, never compacted.
 * And CreateTime whatever the broker's default: the access report's --from
 * start relies on a record's timestamp being its router's clock, taken
 * after recordedAt (kb_audit_query). */
/* clang-format off */
static const char *const audit_topic_configs[] = {
    "retention.ms", "-1", "retention.bytes", "-1", "cleanup.policy", "delete",
    "message.timestamp.type", "CreateTime", NULL,
};
/* clang-format on */

/* Partition count of @p topic, asking up to @p attempts times (a topic
 * created a moment ago may not show in the metadata yet); -1 if none. */
static int32_t topic_partitions(rd_kafka_t *rk, const char *topic, int attempts)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int32_t n = -1;
    for (int attempt = 0; attempt < attempts && n <= 0; attempt++) {
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && !md->topics[0].err)
                n = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        if (n <= 0 && attempt + 1 < attempts)
            usleep(250000);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

kb_audit_t *kb_audit_new(const struct kb_audit_opts *opts, char *errstr, size_t errstr_size)
{
    kb_audit_t *a = calloc(1, sizeof *a);
    if (!a) {
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    a->opts = *opts;
    if (opts->topic)
        snprintf(a->topic, sizeof a->topic, "%s", opts->topic);
    else
        kb_topic_name(a->topic, sizeof a->topic, "audit");
    if (!a->opts.checkpoint_every)
        a->opts.checkpoint_every = 1000;
    if (a->opts.checkpoint_ms <= 0)
        a->opts.checkpoint_ms = 60000;
    /* Checked here, where a bad value stops the start with a clear error,
     * not at the first produce; kb_audit_topic_handle() hands out copies. */
    const char *codec = opts->compression ? opts->compression : KB_AUDIT_COMPRESSION;
    if (kb_kafka_codec_check(codec, "audit compression", errstr, errstr_size))
        goto out_fail;
    a->topic_conf = rd_kafka_topic_conf_new();
    (void)rd_kafka_topic_conf_set(a->topic_conf, "compression.type", codec, NULL, 0); /* checked */
    if (opts->signing_key_file) {
        a->sign_key = kb__audit_load_private(opts->signing_key_file, errstr, errstr_size);
        if (!a->sign_key || kb__audit_key_id(a->sign_key, a->key_id))
            goto out_fail;
    }
    a->partitions = opts->partitions;
    if (opts->kafka) {
        char rerr[512];
        rd_kafka_conf_t *conf = kb_kafka_conf_new(opts->kafka, errstr, errstr_size);
        if (!conf)
            goto out_fail;
        if (rd_kafka_conf_set(conf, "group.id", "ketenbus-audit-resume", rerr, sizeof rerr) ||
            rd_kafka_conf_set(conf, "isolation.level", "read_committed", rerr, sizeof rerr) ||
            rd_kafka_conf_set(conf, "enable.partition.eof", "true", rerr, sizeof rerr) ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", rerr, sizeof rerr) ||
            /* A tail scan ends at a commit marker that no record follows:
             * the end shows only as an empty fetch, which the broker would
             * hold for the default 500 ms, per scan of every partition the
             * router is given. */
            rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", rerr, sizeof rerr)) {
            rd_kafka_conf_destroy(conf);
            kb_err_set(KB_ERR_CONF, errstr, errstr_size, "audit reader: %s", rerr);
            goto out_fail;
        }
        a->reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rerr, sizeof rerr);
        if (!a->reader) {
            kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "audit reader: %s", rerr);
            goto out_fail;
        }
        /* Create only when missing: a cluster that does not allow (or, like
         * the embedded mock, cannot do) CreateTopics may have it already.
         * One look first: a missing topic stays missing however long we
         * ask (asking 20 times cost every first start 5 s); after the
         * create, wait for it to show. */
        struct kb_topic_spec spec = {.name = a->topic,
                                     .partitions = a->partitions > 0 ? a->partitions : 3,
                                     .configs = audit_topic_configs};
        if (topic_partitions(a->reader, a->topic, 1) <= 0 &&
            kb_kafka_create_topics(a->reader, &spec, 1, 0, 30000, errstr, errstr_size))
            goto out_fail;
        int32_t n = topic_partitions(a->reader, a->topic, 20);
        if (n <= 0) {
            kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "no metadata for %s", a->topic);
            goto out_fail;
        }
        a->partitions = n;
    }
    if (a->partitions <= 0)
        a->partitions = 1;
    KB_LOG_INFO(COMP, "audit trail ready",
                "topic=%s partitions=%" PRId32 " key_id=%s compression=%s", a->topic,
                a->partitions, a->sign_key ? a->key_id : "none", codec);
    return a;
out_fail:
    kb_audit_destroy(a);
    return NULL;
}

rd_kafka_topic_t *kb_audit_topic_handle(const kb_audit_t *a, rd_kafka_t *producer,
                                        char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(producer, a->topic,
                                               rd_kafka_topic_conf_dup(a->topic_conf));
    if (!rkt)
        kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "audit topic %s: %s", a->topic,
                   rd_kafka_err2str(rd_kafka_last_error()));
    return rkt;
}

static void chain_free(struct chain *c)
{
    if (!c)
        return;
    free(c->topic);
    free(c->cp_buf.p);
    free(c);
}

void kb_audit_destroy(kb_audit_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_chains; i++)
        chain_free(a->chains[i]);
    free(a->chains);
    free(a->rec_buf.p);
    if (a->reader) {
        rd_kafka_consumer_close(a->reader);
        rd_kafka_destroy(a->reader);
    }
    EVP_PKEY_free(a->sign_key);
    if (a->topic_conf)
        rd_kafka_topic_conf_destroy(a->topic_conf);
    free(a);
}

static struct chain *chain_find(const kb_audit_t *a, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < a->n_chains; i++)
        if (a->chains[i]->partition == partition && !strcmp(a->chains[i]->topic, topic))
            return a->chains[i];
    return NULL;
}

static struct chain *chain_get(kb_audit_t *a, const char *topic, int32_t partition)
{
    struct chain *c = chain_find(a, topic, partition);
    if (c)
        return c;
    if (strlen(topic) > KB_AUDIT_KEY_MAX - 16)
        return NULL;
    struct chain **nc = realloc(a->chains, (a->n_chains + 1) * sizeof *nc);
    if (!nc)
        return NULL;
    a->chains = nc;
    c = calloc(1, sizeof *c);
    if (!c || !(c->topic = strdup(topic))) {
        free(c);
        return NULL;
    }
    c->partition = partition;
    c->key_len = (size_t)snprintf(c->key, sizeof c->key, "%s/%" PRId32, topic, partition);
    c->audit_partition = kb__audit_partition_for(c->key, c->key_len, a->partitions);
    a->chains[a->n_chains++] = c;
    return c;
}

static void chain_set(struct chain *c, uint64_t next_seq, const uint8_t *head, uint64_t since_cp)
{
    c->next_seq = c->p_next_seq = next_seq;
    if (head)
        memcpy(c->head, head, KB_AUDIT_HASH_LEN);
    else
        memset(c->head, 0, KB_AUDIT_HASH_LEN);
    memcpy(c->p_head, c->head, KB_AUDIT_HASH_LEN);
    c->since_cp = c->p_since_cp = since_cp;
    c->last_cp_ms = c->p_last_cp_ms = kb_wall_ms();
    c->dirty = 0;
    c->marked = 0;
}

kb_err_t kb_audit_resume_at(kb_audit_t *a, const char *topic, int32_t partition,
                            uint64_t next_seq, const uint8_t *head)
{
    struct chain *c = chain_get(a, topic, partition);
    if (!c)
        return KB_ERR_NOMEM;
    if (c->dirty)
        return KB_ERR_STATE;
    chain_set(c, next_seq, head, 0);
    return KB_OK;
}

/* What a tail scan found for one chain. */
struct tail {
    int found;
    uint64_t seq;
    uint8_t hash[KB_AUDIT_HASH_LEN];
    int64_t input_offset;
    uint64_t since_cp; /* records after the last checkpoint seen */
    int cp_seen;
};

/* Read the committed records of [from, stop_at) of the chain's audit
 * partition (stop_at < 0: up to its end). */
static kb_err_t scan_tail(kb_audit_t *a, const struct chain *c, int64_t from, int64_t stop_at,
                          struct tail *t, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, a->topic, c->audit_partition)->offset = from;
    rd_kafka_resp_err_t rerr = rd_kafka_assign(a->reader, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (rerr)
        return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "assign: %s",
                          rd_kafka_err2str(rerr));
    kb_err_t err = KB_OK;
    int64_t deadline = kb_wall_ms() + 30000;
    for (int done = 0; !done;) {
        if (kb_wall_ms() > deadline) {
            err = kb_err_set(KB_ERR_TIMEOUT, errstr, errstr_size,
                             "reading %s [%" PRId32 "] timed out", a->topic, c->audit_partition);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(a->reader, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = 1;
        } else if (m->err) {
            err = kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "reading %s: %s", a->topic,
                             rd_kafka_message_errstr(m));
            done = 1;
        } else if (stop_at >= 0 && m->offset >= stop_at) {
            done = 1;
        } else if (m->key_len == c->key_len && !memcmp(m->key, c->key, c->key_len)) {
            int32_t kind = kb_audit_kind(m->payload, m->len);
            if (kind == KB_AUDIT_RECORD_SCHEMA_ID) {
                struct kb_audit_record rec;
                char why[128];
                if (kb_audit_decode_record(m->payload, m->len, &rec, why, sizeof why) ||
                    !kb_audit_record_hash_ok(m->payload, m->len)) {
                    /* Never extend a chain from a record we cannot trust. */
                    err = kb_err_set(KB_ERR_STATE, errstr, errstr_size,
                                     "audit %s [%" PRId32 "] offset %" PRId64
                                     ": chain %s ends in a damaged record (%s); run "
                                     "`ketenbus audit verify`",
                                     a->topic, c->audit_partition, m->offset, c->key,
                                     why[0] ? why : "hash mismatch");
                    done = 1;
                } else {
                    t->found = 1;
                    t->seq = rec.sequence;
                    memcpy(t->hash, rec.record_hash, KB_AUDIT_HASH_LEN);
                    t->input_offset = rec.input_offset;
                    t->since_cp++;
                }
            } else if (kind == KB_AUDIT_CHECKPOINT_SCHEMA_ID) {
                t->since_cp = 0;
                t->cp_seen = 1;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(a->reader, NULL);
    return err;
}

kb_err_t kb_audit_resume(kb_audit_t *a, const char *topic, int32_t partition,
                         int64_t committed_offset, char *errstr, size_t errstr_size)
{
    struct chain *c = chain_get(a, topic, partition);
    if (!c)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    if (c->dirty)
        return kb_err_set(KB_ERR_STATE, errstr, errstr_size,
                          "chain %s has uncommitted records", c->key);
    if (!a->reader) {
        chain_set(c, 0, NULL, 0);
        return KB_OK;
    }
    /* Scan backwards in growing windows until the chain's last record shows
     * up (other chains share the partition) or the partition's start. */
    for (int attempt = 0;; attempt++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t rerr;
        /* A topic created a moment ago may not have a leader yet. */
        for (int tries = 0; (rerr = rd_kafka_query_watermark_offsets(
                                 a->reader, a->topic, c->audit_partition, &lo, &hi, 10000)) &&
                            tries < 40;
             tries++)
            usleep(250000);
        if (rerr)
            return kb_err_set(KB_ERR_KAFKA, errstr, errstr_size, "watermarks of %s: %s",
                              a->topic, rd_kafka_err2str(rerr));
        struct tail t;
        memset(&t, 0, sizeof t);
        /* The first window ends at the high watermark of now, not at the
         * partition's end: chains of other input partitions may share this
         * audit partition, and while their owner keeps committing, a
         * read_committed consumer never sees the end (every fetch brings
         * new records) and the scan timed out. Records of this chain are
         * all below it: its previous owner settled before we got it. */
        int64_t window = 4096, end = hi, from = hi;
        while (!t.found && from > lo) {
            from = hi - window > lo ? hi - window : lo;
            kb_err_t err = scan_tail(a, c, from, end, &t, errstr, errstr_size);
            if (err)
                return err;
            end = from;
            window *= 4;
        }
        /* No record at all with a committed offset: the trail was switched on
         * for a running chain; it starts here (logged below). */
        int behind = committed_offset > 0 && t.found && t.input_offset + 1 < committed_offset;
        if (behind && attempt < 20) {
            usleep(500000); /* an old owner's transaction may still be settling */
            continue;
        }
        if (behind)
            return kb_err_set(KB_ERR_STATE, errstr, errstr_size,
                              "audit chain %s ends at input offset %" PRId64
                              " but %s [%" PRId32 "] is committed up to %" PRId64
                              ": audit records are missing",
                              c->key, t.input_offset, topic, partition,
                              committed_offset);
        if (t.found)
            chain_set(c, t.seq + 1, t.hash, t.cp_seen ? t.since_cp : a->opts.checkpoint_every);
        else
            chain_set(c, 0, NULL, 0);
        if (!t.found && committed_offset > 0)
            KB_LOG_WARN(COMP, "chain starts after input offset 0",
                        "chain=%s first_input_offset=%" PRId64, c->key, committed_offset);
        KB_LOG_INFO(COMP, "chain resumed",
                    "chain=%s audit_partition=%" PRId32 " next_seq=%" PRIu64, c->key,
                    c->audit_partition, c->next_seq);
        return KB_OK;
    }
}

kb_err_t kb_audit_release(kb_audit_t *a, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < a->n_chains; i++) {
        struct chain *c = a->chains[i];
        if (c->partition != partition || strcmp(c->topic, topic))
            continue;
        if (c->dirty)
            return KB_ERR_STATE;
        chain_free(c);
        a->chains[i] = a->chains[--a->n_chains];
        return KB_OK;
    }
    return KB_ERR_NOTFOUND;
}

kb_err_t kb_audit_append(kb_audit_t *a, const struct kb_audit_decision *d,
                         struct kb_audit_msg *out, char *errstr, size_t errstr_size)
{
    if (!d->input_topic)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "decision without input topic");
    struct chain *c = chain_find(a, d->input_topic, d->input_partition);
    if (!c)
        return kb_err_set(KB_ERR_STATE, errstr, errstr_size,
                          "chain %s/%" PRId32 " was not resumed", d->input_topic,
                          d->input_partition);
    uint8_t hash[KB_AUDIT_HASH_LEN];
    int64_t at = d->recorded_at_ms ? d->recorded_at_ms : kb_wall_ms();
    if (kb__audit_encode_record(&a->rec_buf, d, c->p_next_seq, at, c->p_head, hash))
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    c->p_next_seq++;
    memcpy(c->p_head, hash, KB_AUDIT_HASH_LEN);
    c->p_since_cp++;
    c->dirty = 1;
    out->topic = a->topic;
    out->partition = c->audit_partition;
    out->key = c->key;
    out->key_len = c->key_len;
    out->value = a->rec_buf.p;
    out->len = a->rec_buf.len;
    return KB_OK;
}

/* Sign the checkpoint of chain @p c's pending head into c->cp_buf. */
static kb_err_t make_checkpoint(kb_audit_t *a, struct chain *c, int64_t now)
{
    if (kb__audit_encode_checkpoint_body(&c->cp_buf, c->topic, c->partition, c->p_next_seq - 1,
                                         c->p_head, now, a->key_id))
        return KB_ERR_NOMEM;
    uint8_t sig[KB_AUDIT_SIG_LEN];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, a->sign_key) == 1 &&
             EVP_DigestSign(md, sig, &sig_len, c->cp_buf.p, c->cp_buf.len) == 1 &&
             sig_len == KB_AUDIT_SIG_LEN;
    EVP_MD_CTX_free(md);
    if (!ok)
        return KB_ERR_INVALID;
    kb__audit_put_signature(&c->cp_buf, sig);
    return KB_OK;
}

size_t kb_audit_checkpoints(kb_audit_t *a, struct kb_audit_msg *out, size_t max)
{
    if (!a->sign_key)
        return 0;
    size_t n = 0;
    int64_t now = kb_wall_ms();
    for (size_t i = 0; i < a->n_chains && n < max; i++) {
        struct chain *c = a->chains[i];
        if (!c->p_since_cp || c->p_next_seq == 0)
            continue;
        if (c->p_since_cp < a->opts.checkpoint_every &&
            now - c->p_last_cp_ms < a->opts.checkpoint_ms)
            continue;
        if (make_checkpoint(a, c, now)) {
            KB_LOG_ERR(COMP, "checkpoint not signed", "chain=%s", c->key);
            continue;
        }
        c->p_since_cp = 0;
        c->p_last_cp_ms = now;
        c->dirty = 1;
        out[n].topic = a->topic;
        out[n].partition = c->audit_partition;
        out[n].key = c->key;
        out[n].key_len = c->key_len;
        out[n].value = c->cp_buf.p;
        out[n].len = c->cp_buf.len;
        n++;
    }
    return n;
}

void kb_audit_commit(kb_audit_t *a)
{
    for (size_t i = 0; i < a->n_chains; i++) {
        struct chain *c = a->chains[i];
        c->next_seq = c->p_next_seq;
        memcpy(c->head, c->p_head, KB_AUDIT_HASH_LEN);
        c->since_cp = c->p_since_cp;
        c->last_cp_ms = c->p_last_cp_ms;
        c->dirty = 0;
        c->marked = 0;
    }
}

void kb_audit_mark(kb_audit_t *a)
{
    for (size_t i = 0; i < a->n_chains; i++) {
        struct chain *c = a->chains[i];
        c->m_next_seq = c->p_next_seq;
        memcpy(c->m_head, c->p_head, KB_AUDIT_HASH_LEN);
        c->m_since_cp = c->p_since_cp;
        c->m_last_cp_ms = c->p_last_cp_ms;
        c->marked = 1;
    }
}

void kb_audit_commit_mark(kb_audit_t *a)
{
    for (size_t i = 0; i < a->n_chains; i++) {
        struct chain *c = a->chains[i];
        if (!c->marked)
            continue; /* resumed after the mark: nothing of it was in flight */
        c->next_seq = c->m_next_seq;
        memcpy(c->head, c->m_head, KB_AUDIT_HASH_LEN);
        c->since_cp = c->m_since_cp;
        c->last_cp_ms = c->m_last_cp_ms;
        c->marked = 0;
        c->dirty = c->p_next_seq != c->next_seq || c->p_since_cp != c->since_cp ||
                   c->p_last_cp_ms != c->last_cp_ms;
    }
}

void kb_audit_abort(kb_audit_t *a)
{
    for (size_t i = 0; i < a->n_chains; i++) {
        struct chain *c = a->chains[i];
        c->p_next_seq = c->next_seq;
        memcpy(c->p_head, c->head, KB_AUDIT_HASH_LEN);
        c->p_since_cp = c->since_cp;
        c->p_last_cp_ms = c->last_cp_ms;
        c->dirty = 0;
        c->marked = 0;
    }
}

kb_err_t kb_audit_head(const kb_audit_t *a, const char *topic, int32_t partition,
                       uint64_t *next_seq, uint8_t head[KB_AUDIT_HASH_LEN])
{
    const struct chain *c = chain_find(a, topic, partition);
    if (!c)
        return KB_ERR_NOTFOUND;
    if (next_seq)
        *next_seq = c->next_seq;
    if (head)
        memcpy(head, c->head, KB_AUDIT_HASH_LEN);
    return KB_OK;
}
