/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ingress.h - the adapter side of "acknowledge only once Kafka holds it":
 * produce a legacy message's events to kb.in.<source> with acks=all and an
 * idempotent producer, and return only when the broker acknowledged every
 * one of them (or report that it did not). Unreadable input goes to
 * kb.quarantine.<source> the same way, raw bytes plus the reason.
 *
 * Invariant: kb_ingress_send() returning KB_OK means every event is durable
 * in Kafka; only then may the caller acknowledge the sender (move the
 * file, answer the peer). On any error the caller must NOT acknowledge.
 */
#ifndef KETENBUS_INGRESS_H
#define KETENBUS_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"

struct kb_ingress_opts {
    const struct kb_kafka_opts *kafka; /* connection (not owned) */
    const char *source;                /* source name: topics kb.in.<source>, kb.quarantine.<source> */
    const char *state_dir;             /* where the ce_sequence counter is kept */
    int partitions;                    /* partitions for topics this adapter creates; default 3 */
    int transactional;                 /* each send all or nothing (see kb_ingress_send) */
    const char *instance;              /* transactional: a name that stays the same across
                                        * restarts, in the transactional.id in place of the
                                        * host name (NULL: the host name) */
};

/** One event ready to send: attributes, key (a pseudonym) and framed value. */
struct kb_ingress_event {
    struct kb_event_attrs attrs; /* sequence is assigned by kb_ingress_send() */
    char key[KB_PSEUDONYM_LEN + 1];
    uint8_t *value;              /* Confluent-framed Avro (not owned) */
    size_t len;
};

typedef struct kb_ingress kb_ingress_t;

/** Connect, make sure the source's topics exist, load the sequence counter. */
kb_ingress_t *kb_ingress_new(const struct kb_ingress_opts *opts, char *errstr,
                             size_t errstr_size);

/**
 * The largest Kafka message (key, value and headers) kb.in.<source> takes:
 * the smaller of the producer's message.max.bytes and the topic's
 * max.message.bytes (its own setting, else the broker's message.max.bytes)
 * as DescribeConfigs reported it at kb_ingress_new(); the producer's alone
 * when the broker did not answer (logged). A limit lowered later shows as
 * KB_ERR_RANGE from kb_ingress_send(); a new kb_ingress_t learns it again.
 * @thread any
 */
size_t kb_ingress_max_message(const kb_ingress_t *ing);

/** Room left in a Kafka message for the key, the ce_* headers and the
 *  record's own overhead: ce_* values are bounded by struct kb_event_attrs
 *  (about 1.2 KiB together). */
#define KB_INGRESS_EVENT_HEADROOM 4096
/** The event size limit under librdkafka's default message.max.bytes
 *  (1,000,000). kb_ingress_event_limit() gives it for a configured one. */
#define KB_INGRESS_MAX_EVENT      (1000000 - KB_INGRESS_EVENT_HEADROOM)

/** The largest event value a message of @p message_max_bytes (0: librdkafka's
 *  default message.max.bytes) holds with its key and headers. */
size_t kb_ingress_event_limit(size_t message_max_bytes);

/** KB_ERR_RANGE with the reason an event of @p what (no personal data) of
 *  @p size bytes is refused under @p limit (kb_ingress_event_limit). */
kb_err_t kb_ingress_too_large(char *errstr, size_t errstr_size, const char *what, size_t size,
                              size_t limit);

/** KB_OK when every one of @p n events fits, with its key and headers, the
 *  message size @p ing learnt (kb_ingress_max_message), else
 *  kb_ingress_too_large() for the first that does not. */
kb_err_t kb_ingress_check_sizes(const kb_ingress_t *ing, const struct kb_ingress_event *evs,
                                size_t n, char *errstr, size_t errstr_size);

/**
 * Kafka refused a record as too large that fit the limits learnt: a topic's
 * max.message.bytes was lowered since. Make the producer again (its
 * batch.size must fit the new limit too) and learn the limits again. The
 * old producer stays when no new one can be made (Kafka unreachable).
 * Nothing of @p ing may be in flight.
 * @thread the one thread that owns @p ing
 */
kb_err_t kb_ingress_relearn(kb_ingress_t *ing, char *errstr, size_t errstr_size);

/** Raw bytes a quarantine record of @p ing carries at most (above them only
 *  the reason, size and SHA-256): 512 KiB, or less when the quarantine
 *  topic's max.message.bytes is lower. */
size_t kb_ingress_quarantine_max_raw(const kb_ingress_t *ing);

/** Release @p ing, flushing nothing: unacknowledged sends were already reported. */
void kb_ingress_destroy(kb_ingress_t *ing);

/**
 * kb_ingress_send() under the size rule, for an adapter that quarantines an
 * input whose event Kafka can never take: KB_ERR_RANGE (errstr: which
 * event, its size and the limit) when an event is over the limit learnt,
 * also when Kafka refused one as too large (the limits are then learnt
 * again first, and the events checked against them); nothing was sent
 * then, except after such a refusal by Kafka without opts.transactional,
 * when some events of the batch may be in Kafka already (their ids are
 * deterministic: a later send of the same input repeats them). Another
 * refusal as too large after learning again (a batch over a topic's
 * limit) is KB_ERR_KAFKA: retry with the new producer. Other errors as
 * kb_ingress_send().
 */
kb_err_t kb_ingress_send_sized(kb_ingress_t *ing, struct kb_ingress_event *evs, size_t n,
                               int timeout_ms, char *errstr, size_t errstr_size);

/**
 * Send @p n events, assigning consecutive ce_sequence numbers, and wait up
 * to @p timeout_ms until the broker acknowledged all. KB_OK only when every
 * event was acknowledged; then the counter is persisted. @p n may exceed
 * the producer's local queue (queue.buffering.max.messages): a full queue
 * is waited out, within the same @p timeout_ms, as acknowledgements drain it.
 * KB_ERR_RANGE when Kafka refused a message as too large (the topic's limit
 * was lowered since kb_ingress_new(), or an event was over
 * kb_ingress_max_message()); other failures are KB_ERR_KAFKA or KB_ERR_TIMEOUT.
 * Without opts.transactional a failed send may have put some of the events
 * in Kafka all the same; with it the send is one Kafka transaction, and on
 * any failure it is aborted: a read_committed consumer (the router) sees all
 * of the events or none. The transactional.id is derived from the topic, the
 * host name and the state directory, so an adapter restarted on the same
 * spool fences a zombie of itself.
 * @thread the one thread that owns @p ing
 */
kb_err_t kb_ingress_send(kb_ingress_t *ing, struct kb_ingress_event *evs, size_t n,
                         int timeout_ms, char *errstr, size_t errstr_size);

/** Raw bytes larger than this are not put on the quarantine topic (they
 *  would exceed the broker's message size, and a quarantine that can never
 *  be acknowledged would block its spool for good): the record then carries
 *  the reason, size and SHA-256 only, with header kb_raw_omitted=<bytes>.
 *  Lower when the quarantine topic takes less (its max.message.bytes less
 *  4 KiB for the headers, as learnt at kb_ingress_new()). */
#define KB_INGRESS_QUARANTINE_MAX_RAW (512u << 10)

/**
 * Put @p raw (the unreadable legacy bytes) on kb.quarantine.<source> with
 * headers kb_error (@p reason), kb_rule, kb_offset (byte offset in the
 * input or -1), kb_sha256 (of all of @p raw) and kb_received, and wait for
 * the acknowledgement. Beyond KB_INGRESS_QUARANTINE_MAX_RAW bytes the value
 * is empty (see there). @p reason must not contain personal data.
 */
kb_err_t kb_ingress_quarantine(kb_ingress_t *ing, const void *raw, size_t len, const char *rule,
                               const char *reason, int64_t offset, int timeout_ms,
                               char *errstr, size_t errstr_size);

/** One record for kb_ingress_quarantine_many(): the arguments of
 *  kb_ingress_quarantine(). */
struct kb_ingress_refusal {
    const void *raw;
    size_t len;
    const char *rule, *reason;
    int64_t offset;
};

/**
 * kb_ingress_quarantine() of @p n records together: all are enqueued, then
 * acknowledged within @p timeout_ms in one wait (a file of a thousand bad
 * records costs one round trip, not a thousand). KB_OK only when Kafka
 * acknowledged every one; on failure some may be in Kafka all the same, so
 * a retry quarantines them again (each carries its offset and SHA-256).
 */
kb_err_t kb_ingress_quarantine_many(kb_ingress_t *ing, const struct kb_ingress_refusal *r,
                                    size_t n, int timeout_ms, char *errstr, size_t errstr_size);

/** SHA-256 of @p len bytes as 64 hex characters. */
void kb_sha256_hex(const void *data, size_t len, char out[65]);

/** The transactional.id an ingress with @p opts, events topic @p topic, on
 *  host @p host uses (exposed for tests: the ingress passes gethostname()). */
void kb__ingress_txn_id(const struct kb_ingress_opts *opts, const char *topic, const char *host,
                        char *out, size_t size);

#endif
