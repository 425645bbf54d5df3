/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/replay.h - `ketenbus replay`: re-deliver to one subscriber what
 * the audit trail says it received, from the original events in kb.in.*.
 *
 * Steps: (1) plan: the trail's DELIVERED records naming the subscriber, in
 * the time window and for the subject and type asked; (2) fetch each
 * original event by its recorded input position; (3) refuse, and report,
 * any whose value no longer has the recorded SHA-256 (altered), that is no
 * longer in the input topic (retention), that no longer validates, or whose
 * recorded field list differs from the subscription's current one (a replay
 * never delivers more, or other, fields than the trail says were given);
 * (4) make the subscriber's copy exactly as the router does (sub_view),
 * with a new ce_id and the headers kb_replay_id and kb_original_event_id,
 * and (5) produce it in a Kafka transaction together with a REPLAYED audit
 * record naming who replayed and why.
 *
 * The replay's audit records form their own chain, "<prefix>.replay/0"
 * (the router owns the input partitions' chains; two writers would fork
 * them). Each record keeps the original event's id, type, subject, payload
 * hash and input offset, and its detail names the original input position.
 * The transactional id "<prefix>-replay" fences a second replay that starts
 * while one runs, so the replay chain has one writer at a time.
 */
#ifndef KETENBUS_REPLAY_H
#define KETENBUS_REPLAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"
#include "ketenbus/sub.h"

/** Why an event was not replayed. */
enum kb_replay_refusal {
    KB_REPLAY_ALTERED = 1,        /* value's SHA-256 differs from the trail */
    KB_REPLAY_GONE = 2,           /* no longer in the input topic (retention, compaction) */
    KB_REPLAY_INVALID = 3,        /* no longer decodes/validates with its schema */
    KB_REPLAY_FIELDS_CHANGED = 4, /* the subscription's fields differ from the recorded ones */
    KB_REPLAY_NOT_ENTITLED = 5,   /* the subscription as it is now would not deliver it now */
};
const char *kb_replay_refusal_name(int why);

/** One planned event, for the callbacks. Pointers valid during the call. */
struct kb_replay_item {
    const char *input_topic;
    int32_t input_partition;
    int64_t input_offset;
    const char *event_id;     /* original ce_id */
    const char *event_type;
};

typedef void (*kb_replay_progress_fn)(void *opaque, uint64_t done, uint64_t total,
                                      double elapsed_s);
typedef void (*kb_replay_refused_fn)(void *opaque, const struct kb_replay_item *it, int why,
                                     const char *detail);

struct kb_replay_opts {
    const struct kb_kafka_opts *kafka;
    struct kb_subs *subs; /* the subscriptions in force (the subscriber's among
                           * them); the subscriber's follow topic is loaded */
    const kb_schemas_t *schemas;
    const uint8_t *subject_key;        /* the bus's subject key, as the router's */
    size_t subject_key_len;
    const char *subscriber;            /* required */
    const char *subject;               /* bus pseudonym to restrict to, or NULL */
    const char *const *subjects;       /* or any of these (one person's BSN and A-nummer
                                        * pseudonyms); n_subjects of them */
    size_t n_subjects;
    const char *event_type;            /* or NULL */
    int64_t since_ms, until_ms;        /* on the trail's record time; 0 = open */
    const char *reason;                /* required: why (goes into the trail) */
    const char *operator_name;         /* required: who (goes into the trail) */
    double rate;                       /* events per second; 0 = as fast as possible */
    int dry_run;                       /* plan, fetch and check; deliver and record nothing */
    const char *audit_topic;           /* NULL = kb_topic_name("audit") */
    const char *audit_signing_key_file;/* Ed25519 key: checkpoint the replay chain; NULL = none */
    int batch_max;                     /* events per transaction; 0 = 200 */
    kb_replay_progress_fn progress;    /* after each event, may be NULL */
    kb_replay_refused_fn refused;      /* per refusal, may be NULL */
    void *opaque;
};

struct kb_replay_result {
    char replay_id[37];                /* UUID naming this replay (header kb_replay_id) */
    uint64_t planned;                  /* deliveries the trail names */
    uint64_t replayed;                 /* produced (or, dry run, that would be) */
    uint64_t refused[6];               /* per enum kb_replay_refusal */
};

/** The audit chain name replays write: "<prefix>.replay". */
void kb_replay_chain_topic(char *out, size_t out_size);

/**
 * Run a replay. Returns KB_OK when it ran to the end (refusals are counted,
 * not errors), KB_ERR_INVALID for bad options, KB_ERR_NOTFOUND when the
 * subscriber is not in @p subs, KB_ERR_KAFKA/KB_ERR_FATAL when Kafka failed
 * (what was committed before stays: a replay is resumable by its filter),
 * KB_ERR_STATE when @p stop was set.
 */
kb_err_t kb_replay_run(const struct kb_replay_opts *o, struct kb_replay_result *res,
                       atomic_int *stop, char *errstr, size_t errstr_size);

#endif
