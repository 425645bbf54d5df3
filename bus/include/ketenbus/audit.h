/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/audit.h - the tamper-evident audit trail: one hash-chained record
 * per routing decision in <prefix>.audit (one chain per input partition),
 * signed checkpoints, and the readers behind `ketenbus audit verify`,
 * `audit subject` and `audit export`. Record format and chain rules: bus/AUDIT.md.
 *
 * Router contract (who calls what, all from the router's one thread):
 *
 *     on assign of (topic, p), after rd_kafka_committed():
 *         kb_audit_resume(a, topic, p, committed_offset)
 *     per transaction:
 *         begin_transaction
 *         for each input message: kb_audit_append(a, &decision, &msg) -> produce msg
 *         n = kb_audit_checkpoints(a, msgs, max)                      -> produce msgs
 *         send_offsets + commit_transaction -> kb_audit_commit(a)
 *                            or on abort    -> kb_audit_abort(a)
 *     or, routing batch N+1 while N commits (the router does this):
 *         route N+1 (appends) ... N committed -> kb_audit_commit_mark(a)
 *         kb_audit_mark(a); hand N+1 off to commit
 *         N aborted -> kb_audit_abort(a) (N+1 is routed again after the rewind)
 *     on revoke of (topic, p): kb_audit_release(a, topic, p)
 *
 * Messages are produced with the returned partition and key (RD_KAFKA_MSG_F_COPY:
 * the bytes belong to the handle and change on the next call).
 */
#ifndef KETENBUS_AUDIT_H
#define KETENBUS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/kafka.h"

#define KB_AUDIT_RECORD_SCHEMA_ID 9001     /* schemas/ketenbus/audit-record.avsc */
#define KB_AUDIT_CHECKPOINT_SCHEMA_ID 9002 /* schemas/ketenbus/audit-checkpoint.avsc */
#define KB_AUDIT_HASH_LEN 32               /* SHA-256 */
#define KB_AUDIT_SIG_LEN 64                /* Ed25519 */
#define KB_AUDIT_KEY_MAX 300               /* "<input topic>/<partition>" */

/** What the router did with one input message (Avro enum Outcome, same order). */
enum kb_audit_outcome {
    KB_AUDIT_DELIVERED = 0,     /* produced to at least one subscriber */
    KB_AUDIT_FILTERED = 1,      /* valid, but no subscription wanted it */
    KB_AUDIT_DEAD_LETTERED = 2, /* sent to <prefix>.dlq (detail = stage/rule) */
    KB_AUDIT_DUPLICATE = 3,     /* event id already routed: dropped */
    KB_AUDIT_REPLAYED = 4,      /* re-delivered by `ketenbus replay` (detail = who/why) */
};

/** Lower-case name ("delivered", "dead-lettered", ...); "unknown" when out of range. */
const char *kb_audit_outcome_name(int outcome);

/** One subscriber that received the event. All pointers borrowed for the call. */
struct kb_audit_recipient {
    const char *subscriber;    /* subscription name */
    const char *purpose;       /* purpose id (processing activity) */
    const char *const *fields; /* field paths the subscriber received, e.g. "kind.bsn" */
    size_t n_fields;
};

/**
 * One routing decision. Strings are borrowed for the duration of
 * kb_audit_append(); NULL strings are written as "". No personal data:
 * subject is the keyed-hash pseudonym (ce_subject), never a BSN.
 */
struct kb_audit_decision {
    const char *input_topic;                       /* e.g. kb.in.gba */
    int32_t input_partition;
    int64_t input_offset;
    const char *event_id;                          /* ce_id */
    const char *event_type;                        /* ce_type */
    const char *event_time;                        /* ce_time (RFC 3339) */
    const char *subject;                           /* pseudonym, or NULL/"" */
    int32_t schema_id;                             /* from the framing; -1 when unknown */
    uint8_t payload_sha256[KB_AUDIT_HASH_LEN];     /* SHA-256 of the whole Kafka value */
    enum kb_audit_outcome outcome;
    const char *detail;                            /* DLQ stage/rule, replay reason; or NULL */
    const struct kb_audit_recipient *recipients;   /* DELIVERED / REPLAYED: who got it */
    size_t n_recipients;
    int64_t recorded_at_ms;                        /* 0 = now (wall clock) */
};

/** A message for the caller to produce to the audit topic. Valid until the next call on the handle. */
struct kb_audit_msg {
    const char *topic;      /* the audit topic */
    int32_t partition;      /* audit partition (murmur2 of the key, as Java clients do) */
    const char *key;        /* "<input topic>/<partition>", NUL-terminated */
    size_t key_len;
    const uint8_t *value;   /* Confluent framing + Avro */
    size_t len;
};

struct kb_audit_opts {
    const struct kb_kafka_opts *kafka; /* for kb_audit_resume and topic creation; NULL = offline
                                        * (tests, bench: chains start with kb_audit_resume_at) */
    const char *topic;                 /* default kb_topic_name("audit") */
    int partitions;                    /* audit partitions; 0 = from the broker (created with 3) */
    const char *signing_key_file;      /* PEM Ed25519 private key; NULL = no checkpoints */
    uint32_t checkpoint_every;         /* records per chain between checkpoints; default 1000 */
    int checkpoint_ms;                 /* or this much time with new records; default 60000 */
    const char *compression;           /* codec of the audit topic's batches (librdkafka
                                        * compression.type); NULL: KB_AUDIT_COMPRESSION */
};

/*
 * The trail's batches are compressed by default: it is kept forever, and
 * its records repeat subscriber names, purposes and field names, so lz4
 * makes them about 4x smaller. The broker's work on the trail follows its
 * bytes; uncompressed, the trail cost the broker more than the router.
 */
#define KB_AUDIT_COMPRESSION "lz4"

typedef struct kb_audit kb_audit_t; /* opaque: the chains of one router instance */

/**
 * New audit handle. With opts->kafka it makes sure the audit topic exists
 * (retention.ms=-1, cleanup.policy=delete) and learns its partition count.
 * NULL with errstr on failure (bad key file, broker unreachable).
 * @thread the router's thread; every later call on the handle from that same thread
 */
kb_audit_t *kb_audit_new(const struct kb_audit_opts *opts, char *errstr, size_t errstr_size);

/**
 * Make @p producer write the audit topic with the trail's codec
 * (kb_audit_opts.compression). Call it before @p producer first produces to
 * the audit topic (or asks for its metadata by topic handle): librdkafka keeps
 * the settings of a topic's first handle. Destroy the handle
 * (rd_kafka_topic_destroy) before the producer. NULL with errstr on failure.
 */
rd_kafka_topic_t *kb_audit_topic_handle(const kb_audit_t *a, rd_kafka_t *producer,
                                        char *errstr, size_t errstr_size);

/** Release @p a (uncommitted appends are dropped). NULL is a no-op. */
void kb_audit_destroy(kb_audit_t *a);

/**
 * Continue the chain of (@p topic, @p partition): read the tail of its audit
 * partition (read_committed) for the last record with its key and take over
 * its sequence and hash; a chain never written starts at sequence 0. Call it
 * on assignment, after rd_kafka_committed() (which waits for the previous
 * owner's transaction, so its records are visible). @p committed_offset is
 * the partition's committed input offset (or -1): when the chain's last
 * record names an input offset below committed_offset - 1 the tail is
 * retried for a few seconds, then KB_ERR_STATE (records missing).
 */
kb_err_t kb_audit_resume(kb_audit_t *a, const char *topic, int32_t partition,
                         int64_t committed_offset, char *errstr, size_t errstr_size);

/** Set a chain's head explicitly (offline use: tests, bench). @p head NULL = zeros. */
kb_err_t kb_audit_resume_at(kb_audit_t *a, const char *topic, int32_t partition,
                            uint64_t next_seq, const uint8_t *head);

/** Forget a chain (on revoke). KB_ERR_STATE while it has uncommitted appends. */
kb_err_t kb_audit_release(kb_audit_t *a, const char *topic, int32_t partition);

/**
 * Encode the record for @p d, extending its chain's uncommitted head. The
 * chain must have been resumed (KB_ERR_STATE otherwise). *@p out points into
 * the handle until its next call. On error the chain is unchanged.
 */
kb_err_t kb_audit_append(kb_audit_t *a, const struct kb_audit_decision *d,
                         struct kb_audit_msg *out, char *errstr, size_t errstr_size);

/**
 * Signed checkpoints due in this transaction (a chain with checkpoint_every
 * uncheckpointed records, or checkpoint_ms since its last checkpoint and at
 * least one new record). Fills up to @p max messages; returns how many.
 * Each chain's messages stay valid until the next call on the handle.
 * Always 0 without a signing key.
 */
size_t kb_audit_checkpoints(kb_audit_t *a, struct kb_audit_msg *out, size_t max);

/** The transaction committed: uncommitted heads become the chain heads. */
void kb_audit_commit(kb_audit_t *a);

/**
 * A transaction is handed off to commit while appends go on for the next
 * one: remember the uncommitted heads as they are now (the mark).
 */
void kb_audit_mark(kb_audit_t *a);

/** The marked transaction committed: the marked heads become the chain heads;
 * appends made after the mark stay uncommitted. */
void kb_audit_commit_mark(kb_audit_t *a);

/** The transaction aborted: every chain returns to its last committed head
 * (a mark and any appends after it are dropped too). */
void kb_audit_abort(kb_audit_t *a);

/** Committed head of a chain: next sequence and hash of the last record. KB_ERR_NOTFOUND. */
kb_err_t kb_audit_head(const kb_audit_t *a, const char *topic, int32_t partition,
                       uint64_t *next_seq, uint8_t head[KB_AUDIT_HASH_LEN]);

/* ---- keys ------------------------------------------------------------- */

/**
 * Write a new Ed25519 key pair as PEM: the private key to @p private_path
 * (created 0600, never overwritten), the public key to @p public_path.
 * Hex key id (16 chars) into @p key_id when not NULL.
 */
kb_err_t kb_audit_keygen(const char *private_path, const char *public_path, char key_id[17],
                         char *errstr, size_t errstr_size);

/* ---- reading records -------------------------------------------------- */

/** A byte string inside a record (not NUL-terminated). */
struct kb_audit_str {
    const char *ptr;
    size_t len;
};

/** A decoded audit record: views into the value it was decoded from. */
struct kb_audit_record {
    uint64_t sequence;
    struct kb_audit_str input_topic;
    int32_t input_partition;
    int64_t input_offset;
    struct kb_audit_str event_id, event_type, event_time;
    int64_t recorded_at;             /* ms since 1970 */
    struct kb_audit_str subject;     /* pseudonym or "" */
    int32_t schema_id;
    const uint8_t *payload_sha256;
    int outcome;                     /* enum kb_audit_outcome */
    size_t n_recipients;
    const uint8_t *rcpt_at, *rcpt_end; /* encoded recipients, for kb_audit_rcpt_next */
    struct kb_audit_str detail;
    const uint8_t *prev_hash;
    const uint8_t *record_hash;
};

/** A decoded checkpoint. */
struct kb_audit_checkpoint {
    struct kb_audit_str input_topic;
    int32_t input_partition;
    uint64_t sequence;               /* last record the checkpoint covers */
    const uint8_t *head_hash;        /* its record hash */
    int64_t created_at;
    struct kb_audit_str key_id;      /* hex id of the signing key */
    const uint8_t *signature;        /* over the value's bytes before it */
    size_t signed_len;
};

/** One recipient while iterating a record's recipients. */
struct kb_audit_rcpt_view {
    struct kb_audit_str subscriber, purpose;
    size_t n_fields;
    const uint8_t *fields_at, *fields_end; /* for kb_audit_field_next */
};

/** Cursor over recipients or fields; initialise with kb_audit_rcpt_iter / field_iter. */
struct kb_audit_iter {
    const uint8_t *p, *end;
    int64_t left; /* items left in the current Avro block */
};

/**
 * Which kind of message @p value is: KB_AUDIT_RECORD_SCHEMA_ID,
 * KB_AUDIT_CHECKPOINT_SCHEMA_ID, or -1 when neither.
 */
int32_t kb_audit_kind(const void *value, size_t len);

/**
 * Decode and structurally check a record (no allocation; views point into
 * @p value). KB_ERR_INVALID with errstr naming the field when malformed.
 * Does not check the hash: kb_audit_record_hash_ok() does.
 */
kb_err_t kb_audit_decode_record(const void *value, size_t len, struct kb_audit_record *rec,
                                char *errstr, size_t errstr_size);

/** True when the record's stored hash is the SHA-256 of the bytes before it. */
int kb_audit_record_hash_ok(const void *value, size_t len);

/** Decode a checkpoint (views into @p value). KB_ERR_INVALID when malformed. */
kb_err_t kb_audit_decode_checkpoint(const void *value, size_t len,
                                    struct kb_audit_checkpoint *cp, char *errstr,
                                    size_t errstr_size);

void kb_audit_rcpt_iter(const struct kb_audit_record *rec, struct kb_audit_iter *it);
/** Next recipient; 0 at the end. */
int kb_audit_rcpt_next(struct kb_audit_iter *it, struct kb_audit_rcpt_view *out);
void kb_audit_field_iter(const struct kb_audit_rcpt_view *r, struct kb_audit_iter *it);
/** Next field path; 0 at the end. */
int kb_audit_field_next(struct kb_audit_iter *it, struct kb_audit_str *out);

/** SHA-256 of @p len bytes (for kb_audit_decision.payload_sha256). */
void kb_audit_sha256(const void *data, size_t len, uint8_t out[KB_AUDIT_HASH_LEN]);

/**
 * Read every committed message of the audit topic, partition by partition
 * in offset order, from the first message at or after @p from_ms (0 = the
 * beginning) up to the end as it was when the call started, stopping a
 * partition at the first message after @p to_ms (0 = no limit). The
 * timestamps are the producing routers' clocks, not in offset order across
 * routers: a @p to_ms cut is a prefix of each partition, which can leave
 * out later messages stamped before @p to_ms (kb_audit_query reads to the
 * end instead). @p cb returns non-zero to stop. A NULL @p topic means
 * kb_topic_name("audit").
 * @thread any; @p cb runs on the calling thread
 */
typedef int (*kb_audit_scan_cb)(void *opaque, int32_t partition, int64_t offset,
                                int64_t timestamp_ms, const void *key, size_t key_len,
                                const void *value, size_t len);
kb_err_t kb_audit_scan(const struct kb_kafka_opts *kafka, const char *topic, int64_t from_ms,
                       int64_t to_ms, kb_audit_scan_cb cb, void *opaque, char *errstr,
                       size_t errstr_size);

/**
 * kb_audit_scan() with up to @p threads readers at once, each with its own
 * consumer (connection and fetch thread) over its share of the partitions,
 * dealt by message count. @p cb runs on the readers' threads (the calling
 * thread is one of them): every message of one partition on the same
 * thread, in offset order; different partitions at the same time. A
 * non-zero return from any cb stops all readers. @p threads <= 0: one per
 * online CPU (kb_audit_scan_threads); never more than partitions with data.
 */
kb_err_t kb_audit_scan_parallel(const struct kb_kafka_opts *kafka, const char *topic,
                                int64_t from_ms, int64_t to_ms, int threads,
                                kb_audit_scan_cb cb, void *opaque, char *errstr,
                                size_t errstr_size);

/** @p threads when > 0, else the number of online CPUs. */
int kb_audit_scan_threads(int threads);

/**
 * The trail-reading part of replay and the access report: every record
 * matching the filter (NULL/0 members match anything), in per-chain order.
 * A record matches a subscriber when one of its recipients has that name.
 */
struct kb_audit_filter {
    const char *subscriber;  /* recipient name */
    const char *subject;     /* pseudonym */
    const char *const *subjects; /* or any of these n_subjects pseudonyms (one person's
                                  * BSN and A-nummer pseudonyms); with subject: either */
    const char *event_type;
    int outcome;             /* -1 = any */
    int64_t from_ms, to_ms;  /* on the record time (recordedAt) */
    size_t n_subjects;
};
typedef int (*kb_audit_query_cb)(void *opaque, const struct kb_audit_record *rec,
                                 int32_t audit_partition, int64_t audit_offset);
int kb_audit_filter_match(const struct kb_audit_filter *f, const struct kb_audit_record *rec);
/**
 * Call @p cb for every record of the audit topic that @p f matches
 * (kb_audit_filter_match), partition by partition in offset order. Every
 * partition is read to its end as the call started, whatever f->to_ms:
 * no record timestamp bounds what follows it (routers' clocks differ).
 * f->from_ms starts each partition at its first record stamped no earlier
 * than f->from_ms - 60 s (see audit_read.c for why skew cannot hide one).
 * @thread any; @p cb runs on the calling thread
 */
kb_err_t kb_audit_query(const struct kb_kafka_opts *kafka, const char *topic,
                        const struct kb_audit_filter *f, kb_audit_query_cb cb, void *opaque,
                        char *errstr, size_t errstr_size);

/**
 * One identifier of a person for the access report and replay, and its
 * pseudonym: the adapters key an event by the pseudonym of one identifier
 * (the GBA adapter: a birth by the BSN when the message has one, every
 * other event by the A-nummer), so a report must search all of them.
 */
struct kb_audit_person_id {
    const char *kind;   /* pseudonym domain, as the adapters use it: "bsn", "anummer" */
    const char *label;  /* for reports: "BSN", "A-nummer" */
    char pseudonym[33]; /* KB_PSEUDONYM_LEN hex chars */
};

/**
 * Check @p bsn (9 digits) and @p anummer (10 digits), either may be NULL
 * but not both, and derive their pseudonyms under the bus's subject key
 * into @p out (BSN first); *@p n says how many. KB_ERR_INVALID with errstr
 * (never echoing the value) when malformed.
 */
kb_err_t kb_audit_person_ids(const uint8_t *key, size_t key_len, const char *bsn,
                             const char *anummer, struct kb_audit_person_id out[2], size_t *n,
                             char *errstr, size_t errstr_size);

/* ---- verification ----------------------------------------------------- */

enum kb_audit_problem_kind {
    KB_AUDIT_ALTERED = 1,       /* content does not match its hash / checkpoint / place */
    KB_AUDIT_MISSING = 2,       /* sequence numbers absent */
    KB_AUDIT_REORDERED = 3,     /* a record stands before one it should follow (or twice) */
    KB_AUDIT_BAD_SIGNATURE = 4, /* checkpoint signature invalid or by an untrusted key */
};

const char *kb_audit_problem_name(int kind);

struct kb_audit_problem {
    int kind;                   /* enum kb_audit_problem_kind */
    int32_t partition;          /* audit partition */
    int64_t offset;             /* audit offset of the message where it shows */
    char chain[KB_AUDIT_KEY_MAX]; /* "<input topic>/<partition>" or "" */
    char what[320];             /* explanation: sequences, offsets, hashes (no personal data) */
};

/** Per-chain totals after verification. */
struct kb_audit_chain_summary {
    char chain[KB_AUDIT_KEY_MAX];
    char input_topic[256];
    int32_t input_partition;
    uint64_t first_seq, last_seq, records;
    uint64_t checkpoints;        /* valid checkpoints */
    uint64_t unsigned_tail;      /* records after the last valid checkpoint */
    int64_t min_input_offset, max_input_offset;
    int64_t input_low;           /* low watermark of the input partition; -1 unknown */
    uint64_t gone;               /* records whose input event is below input_low (retention) */
};

/** Low watermark of an input partition (-1 unknown, -2 topic gone). */
typedef int64_t (*kb_audit_low_cb)(void *opaque, const char *topic, int32_t partition);

struct kb_audit_verify_opts {
    const char *const *public_key_files; /* trusted PEM public keys */
    size_t n_public_keys;
    int from_start;            /* reading the whole trail (no --from): every chain must start at
                                * seq 0 and every audit partition at offset 0 */
    kb_audit_low_cb input_low; /* NULL = no retention check */
    /* NULL = no tail check. Otherwise the router group's committed offsets, read before the
     * scan (kb_audit_committed_snapshot; a live router commits on), which
     * kb_audit_verifier_finish compares with every chain: a chain whose last input offset
     * is below committed - 1 is MISSING its tail; and, with from_start, an input partition
     * committed past offset 0 that no chain of the trail names is MISSING, its records
     * removed whole (an audit topic recreated empty) or routed without the trail
     * (--no-audit). Only for a scan that reads the trail to its end (no --to). */
    const rd_kafka_topic_partition_list_t *input_committed;
    void *opaque;
};

/**
 * The retention check's view of an input partition, for kb_audit_verify_opts.input_low
 * callers: its low watermark, -2 when the topic or partition no longer exists, -1 when
 * unknown or not applicable (the replay chain "<prefix>.replay" names no input
 * partition of its own; its records name their originals in detail).
 */
int64_t kb_audit_input_low_of(rd_kafka_t *rk, const char *topic, int32_t partition);

/**
 * Whether a verifier reading the whole of audit topic @p topic must require
 * every chain to begin at sequence 0: always 1. The audit topic never
 * expires records, so a partition whose low watermark is above 0 lost its
 * head to DeleteRecords, which is a finding, not a reason to relax the rule
 * (this used to return 0 then, and on any query error: verify failed open).
 * Callers that scan with kb_audit_scan should also pass each partition's
 * low watermark to kb_audit_verifier_partition_start.
 */
int kb_audit_topic_from_start(rd_kafka_t *rk, const char *topic);

/**
 * The tail check's view of the router: group @p group's committed offset of
 * every <prefix>.in.* partition, read now (before the scan whose chains must
 * reach them), into a new list *@p out the caller destroys. Each of its two
 * Kafka round trips (metadata, committed offsets) waits at most
 * @p timeout_ms. Any failure, a single partition's included, is an error
 * with errstr saying which: the check must not pass by not running. Shared
 * by `audit verify` and the admin API's audit status.
 * @thread any
 */
kb_err_t kb_audit_committed_snapshot(const struct kb_kafka_opts *kafka, const char *group,
                                     int timeout_ms, rd_kafka_topic_partition_list_t **out,
                                     char *errstr, size_t errstr_size);

/** The offset @p committed (from kb_audit_committed_snapshot) holds for @p topic
 *  [@p partition], or -1: what the tail check compares a chain with. */
int64_t kb_audit_committed_of(const rd_kafka_topic_partition_list_t *committed, const char *topic,
                              int32_t partition);

typedef struct kb_audit_verifier kb_audit_verifier_t;

kb_audit_verifier_t *kb_audit_verifier_new(const struct kb_audit_verify_opts *opts,
                                           char *errstr, size_t errstr_size);
void kb_audit_verifier_destroy(kb_audit_verifier_t *v);

/**
 * Read audit topic @p topic (NULL = kb_topic_name("audit")) as kb_audit_scan_parallel
 * does and feed every message to @p v, partitions on up to @p threads threads
 * (<= 0: one per CPU). The verdict is the same for any thread count: chains
 * are per audit partition, and kb_audit_verifier_finish orders the problems
 * by partition and offset. opts->input_low is then called from those
 * threads (it must be thread-safe; kb_audit_input_low_of is). Call
 * kb_audit_verifier_finish afterwards. KB_ERR_NOMEM when the verifier ran
 * out of memory (its verdict is incomplete), else the scan's error.
 */
kb_err_t kb_audit_verify_scan(const struct kb_kafka_opts *kafka, const char *topic,
                              int64_t from_ms, int64_t to_ms, kb_audit_verifier_t *v,
                              int threads, char *errstr, size_t errstr_size);

/**
 * Feed one audit message; messages of one audit partition in offset order
 * (partitions may interleave). Problems are collected, never fatal.
 * KB_ERR_NOMEM only. One thread at a time (kb_audit_verify_scan feeds
 * partitions from several threads safely).
 */
kb_err_t kb_audit_verifier_feed(kb_audit_verifier_t *v, int32_t partition, int64_t offset,
                                const void *key, size_t key_len, const void *value, size_t len);

/**
 * Audit partition @p partition starts at offset @p low (its low watermark).
 * With opts.from_start, @p low > 0 is a MISSING problem naming the partition
 * and offset: its head was deleted. kb_audit_verify_scan calls it for every
 * partition; callers that feed messages themselves call it before feeding
 * that partition. KB_ERR_NOMEM only.
 */
kb_err_t kb_audit_verifier_partition_start(kb_audit_verifier_t *v, int32_t partition, int64_t low);

/** End of input: runs the tail check (opts.input_committed), then puts the problems in (audit
 * partition, offset) order and the chain summaries in (input topic, input partition) order. Call
 * once, after the last feed. */
void kb_audit_verifier_finish(kb_audit_verifier_t *v);

const struct kb_audit_problem *kb_audit_verifier_problems(const kb_audit_verifier_t *v,
                                                          size_t *n);
const struct kb_audit_chain_summary *kb_audit_verifier_chains(const kb_audit_verifier_t *v,
                                                              size_t *n);
/** Messages fed, records, valid checkpoints. */
void kb_audit_verifier_counts(const kb_audit_verifier_t *v, uint64_t *messages,
                              uint64_t *records, uint64_t *checkpoints);

#endif
