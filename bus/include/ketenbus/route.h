/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/route.h - the routing core: consume kb.in.*, check the envelope,
 * drop duplicates by event id, fan out to the subscribers' topics and send
 * what cannot be routed to the dead-letter topic, all inside one Kafka
 * transaction together with the consumer offsets (exactly-once).
 */
#ifndef KETENBUS_ROUTE_H
#define KETENBUS_ROUTE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"
#include "ketenbus/sub.h"

/*
 * Default most events in one transaction. A transaction costs the broker
 * about the same whatever it holds (a produce request, a verification and a
 * commit marker for each partition it touches: the per-subscriber topics
 * make that dozens), so under load the router lets a batch grow: a batch
 * closes as soon as the commit before it ended (group commit), and this cap
 * only bounds memory (kept input messages, staged copies). At 500 the
 * router spent two thirds of the broker's CPU on transaction overhead
 * under load (bench/README.md).
 */
#define KB_ROUTE_BATCH_MAX 5000
/* The same as text, for help messages (stringified, so the two cannot drift). */
#define KB_ROUTE_BATCH_MAX_STR KB__ROUTE_STR(KB_ROUTE_BATCH_MAX)
#define KB__ROUTE_STR(x) KB__ROUTE_STR_(x)
#define KB__ROUTE_STR_(x) #x

/*
 * Default linger.ms of the router's producer (-X linger.ms wins). Every
 * transaction ends in a flush, which sends whatever lingers at once
 * (librdkafka ignores linger.ms while flushing). With a long linger a
 * batch's copies mostly go out in that flush, one request per partition,
 * instead of in many small requests while the batch is produced; none
 * becomes readable later for it (subscribers read committed, and the
 * commit waits for every copy anyway). librdkafka puts one partition in a
 * ProduceRequest and has at most five in flight per broker; the benchmark
 * subscriptions write to 63 partitions. With 5 ms, at about 9,000
 * events/s, the router's p99 was 269-552 ms in about half of the bench-e2e
 * runs (110-154 in the rest); with 100 ms, 111-145 ms in seven runs of
 * nine (bench/README.md, 2026-12-01). Kafka Streams' producers linger 100 ms as
 * well.
 */
#define KB_ROUTE_LINGER_MS "100"

/*
 * Codec of the batches the router writes to subscriber topics and kb.dlq
 * when neither `--compression` nor a `compression.type` property (-X,
 * --kafka-config) says otherwise: librdkafka's default, none. lz4 stores
 * the copies in fewer bytes, but in bench-e2e it cost the router about 8 us
 * of CPU per event and saved the broker nothing measurable (bench/README.md,
 * "Compressed copies"). Consumers need nothing either way.
 */
#define KB_ROUTE_COMPRESSION "none"

struct kb_route_opts {
    const struct kb_kafka_opts *kafka; /* connection (not owned) */
    const char *subs_path;             /* subscription file or folder; reloaded on change */
    const uint8_t *subject_key;        /* required: follow lists, per-subscriber keys (not owned) */
    size_t subject_key_len;
    atomic_int *reload;                /* set (e.g. by SIGHUP) to reload now; may be NULL */
    const kb_schemas_t *schemas;       /* schema lookup (not owned, outlive the router) */
    const char *group_id;              /* consumer group; default "<prefix>-route" */
    const char *instance;              /* names the transactional.id; unique per instance */
    const char *input_pattern;         /* regex of input topics; default ^<prefix>\.in\..* */
    const char *dlq_topic;             /* default "<prefix>.dlq" (kb_topic_prefix()) */
    int batch_max;                     /* most events per transaction; default
                                        * KB_ROUTE_BATCH_MAX */
    int batch_ms;                      /* longest wait to fill a batch; default 100 */
    size_t dedup_window;               /* ids remembered per input partition; default 100000 */
    int rebuild_stall_ms;              /* a dedup window rebuild that reads nothing new this
                                        * long gives up its try; default 30000 */
    int no_audit;                      /* 1: no audit trail (benchmarks only) */
    int no_register_projections;       /* 1: do not put projected schemas in the registry
                                        * (proj_register.h); subscribers must then get them
                                        * elsewhere */
    const char *audit_signing_key_file;/* Ed25519 PEM key for checkpoints; NULL = unsigned trail */
    uint32_t audit_checkpoint_every;   /* records per chain between checkpoints (0: default) */
    int audit_checkpoint_ms;           /* or after this long (0: default) */
    const char *audit_compression;     /* codec of the audit topic; NULL: KB_AUDIT_COMPRESSION */
    const char *compression;           /* codec of the copies and dead letters; NULL:
                                        * the kafka properties' compression.type, else
                                        * KB_ROUTE_COMPRESSION */
};

/** Counters since start; read with atomic loads from any thread. */
struct kb_route_stats {
    atomic_uint_fast64_t consumed;     /* input messages seen */
    atomic_uint_fast64_t delivered;    /* messages produced to subscriber topics */
    atomic_uint_fast64_t filtered;     /* valid events no subscriber wanted */
    atomic_uint_fast64_t dead_letters; /* messages sent to the DLQ */
    atomic_uint_fast64_t duplicates;   /* events dropped as already routed */
    atomic_uint_fast64_t transactions; /* committed transactions */
    atomic_uint_fast64_t aborts;       /* aborted (and retried) transactions */
    atomic_uint_fast64_t reloads;      /* subscription sets loaded after start */
};

typedef struct kb_router kb_router_t;

/**
 * Create a router: loads the subscriptions, connects, initialises transactions (fencing an older
 * instance with the same transactional.id) and subscribes. NULL with errstr
 * on failure.
 * @thread the thread that will call kb_router_run()
 */
kb_router_t *kb_router_new(const struct kb_route_opts *opts, char *errstr, size_t errstr_size);

/**
 * Route until *@p stop becomes non-zero (checked at least every batch_ms)
 * or a fatal error. Returns KB_OK on a requested stop, KB_ERR_FATAL when
 * the producer was fenced or hit a fatal error.
 */
kb_err_t kb_router_run(kb_router_t *r, atomic_int *stop);

/** Counters of @p r; valid as long as @p r lives. */
const struct kb_route_stats *kb_router_stats(const kb_router_t *r);

/** Leave the group and release @p r. NULL is a no-op. */
void kb_router_destroy(kb_router_t *r);

#endif
