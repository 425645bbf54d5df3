/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/kafka.h - how every ketenbus process reaches Kafka: connection
 * options (bootstrap servers, TLS/SASL and any other librdkafka property,
 * from the command line or a properties file), client configuration with
 * ketenbus logging, and topic creation. This module wraps librdkafka, so its
 * types appear here and nowhere else in the public headers.
 */
#ifndef KETENBUS_KAFKA_H
#define KETENBUS_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "ketenbus/err.h"
#include "ketenbus/event.h"

#define KB_KAFKA_MAX_PROPS 64

/** Connection options shared by every client a process makes. */
struct kb_kafka_opts {
    char bootstrap[1024];            /* bootstrap.servers; from KB_BOOTSTRAP if unset */
    size_t n;                        /* extra properties used */
    char *keys[KB_KAFKA_MAX_PROPS];  /* librdkafka property names (owned) */
    char *vals[KB_KAFKA_MAX_PROPS];  /* their values (owned; may be secrets: never logged) */
};

/** Initialise @p o; bootstrap defaults to $KB_BOOTSTRAP, else 127.0.0.1:9092. */
void kb_kafka_opts_init(struct kb_kafka_opts *o);

/** Free the properties of @p o. */
void kb_kafka_opts_fini(struct kb_kafka_opts *o);

/** Set one property; "bootstrap.servers" sets the bootstrap. A later set wins. */
kb_err_t kb_kafka_opts_set(struct kb_kafka_opts *o, const char *key, const char *val,
                           char *errstr, size_t errstr_size);

/**
 * Parse "key=value" (the -X option). Secret properties (sasl.password,
 * ssl.key.password, ssl.keystore.password, sasl.oauthbearer.client.secret,
 * ssl.key.pem) are refused here with KB_ERR_CONF: a command line is visible
 * to every local user. Their "<name>.file=PATH" forms are fine.
 */
kb_err_t kb_kafka_opts_set_kv(struct kb_kafka_opts *o, const char *kv, char *errstr,
                              size_t errstr_size);

/**
 * One command-line connection option, the same for every command: @p kind
 * 'b' (--bootstrap), 'X' (--kafka-property K=V) or 'F' (--kafka-config FILE).
 */
kb_err_t kb_kafka_opts_arg(struct kb_kafka_opts *o, int kind, const char *arg, char *errstr,
                           size_t errstr_size);

/**
 * Read a Java-style properties file (key=value lines, # comments): the usual
 * way to pass TLS and SASL settings, so secrets stay off the command line.
 */
kb_err_t kb_kafka_opts_load(struct kb_kafka_opts *o, const char *path, char *errstr,
                            size_t errstr_size);

/**
 * A new librdkafka configuration with the bootstrap, every property of @p o
 * and ketenbus's log callback. Caller owns the result (rd_kafka_new takes
 * it). NULL with errstr naming the property librdkafka rejected.
 *
 * Security rules applied here, before any client or socket exists:
 *  - "<secret>.file=PATH" (sasl.password.file, ssl.key.password.file,
 *    ssl.keystore.password.file, sasl.oauthbearer.client.secret.file,
 *    ssl.key.pem.file) reads the secret from PATH (one line, trailing
 *    newline dropped) and sets <secret>; the buffer is wiped afterwards.
 *    Errors name the file, never the content; secrets are never logged.
 *  - security.protocol plaintext (the default) or sasl_plaintext to any
 *    bootstrap host that is not loopback (127.0.0.0/8, ::1, "localhost";
 *    names are not resolved) fails with KB_ERR_CONF unless the ketenbus
 *    property allow.plaintext=true is set (it is not passed to librdkafka).
 *    The mock cluster (test.mock.num.brokers) is exempt.
 *  - ssl and sasl_ssl get ssl.endpoint.identification.algorithm=https
 *    (hostname verification) unless set; "none" is honoured with a warning.
 */
rd_kafka_conf_t *kb_kafka_conf_new(const struct kb_kafka_opts *o, char *errstr,
                                   size_t errstr_size);

/**
 * A command's own default for one librdkafka property: set @p key to
 * @p value in @p conf (made by kb_kafka_conf_new() from @p o) unless the
 * user gave @p key, or its librdkafka alias @p alias (may be NULL), with -X
 * or --kafka-config; what the user gave stays. KB_ERR_CONF, with
 * librdkafka's reason, when it refuses the value.
 */
kb_err_t kb_kafka_conf_default(rd_kafka_conf_t *conf, const struct kb_kafka_opts *o,
                               const char *key, const char *alias, const char *value, char *errstr,
                               size_t errstr_size);

/**
 * KB_OK when @p codec is a compression.type librdkafka takes (none, gzip,
 * snappy, lz4, zstd), else KB_ERR_CONF naming @p what (e.g. "--compression")
 * and the codecs. For options checked at start, before any connection.
 */
kb_err_t kb_kafka_codec_check(const char *codec, const char *what, char *errstr,
                              size_t errstr_size);

/**
 * A consumer that reads assigned partitions without joining a group (it
 * commits nothing; @p group_id only names it to the broker), committed
 * records only, and says where each partition ends (partition EOF). It
 * waits at most 10 ms for an empty fetch: a transactional partition ends in
 * a commit marker, after which no record comes, and the default 500 ms wait
 * would be paid at every end. Offsets below the log start begin at the log
 * start. NULL with the reason in @p errstr.
 */
rd_kafka_t *kb_kafka_scanner_new(const struct kb_kafka_opts *o, const char *group_id,
                                 char *errstr, size_t errstr_size);

/**
 * True when @p host is a loopback address literal (127.0.0.0/8, ::1,
 * ::ffff:127.x.y.z) or "localhost". Any other name is not loopback: it is
 * never resolved, so the answer needs no network.
 */
int kb_kafka_host_is_loopback(const char *host);

/**
 * Numeric property @p name of @p rk's configuration (message.max.bytes,
 * session.timeout.ms, ...), or @p dflt when it is unset or not a number.
 */
size_t kb_kafka_conf_size(rd_kafka_t *rk, const char *name, size_t dflt);

/**
 * A topic to create: kb_kafka_create_topics() and kb_kafka_ensure_topic_specs()
 * take an array of these. The caller owns every pointer; they are only read
 * during the call.
 */
struct kb_topic_spec {
    const char *name;           /* full topic name, prefix included */
    int partitions;             /* partition count; -1: the broker's num.partitions */
    const char *const *configs; /* topic configs as name, value, ... pairs ended by a
                                 * NULL name; NULL for none */
};

/** Flags of kb_kafka_create_topics(). */
enum {
    /* A topic refused for lack of rights (topic or cluster authorization)
     * or by the cluster's create-topic policy is logged, not an error:
     * managed clusters (Strimzi KafkaTopic) create topics themselves, and a
     * topic that is really missing shows at its first use. So is a request
     * refused as a whole (a service without the CreateTopics API); a
     * timeout is not. */
    KB_TOPICS_MANAGED_OK = 1 << 0,
};

/**
 * Wait for the result of an admin request sent to @p q: at most
 * @p timeout_ms plus 2 s for the round trip (the request's own timeout is
 * @p timeout_ms). On KB_OK *evp is the result event, which the caller
 * destroys; otherwise *evp is NULL and errstr says "<what> timed out"
 * (KB_ERR_TIMEOUT) or "<what>: <reason>" when the request as a whole failed
 * (KB_ERR_KAFKA). Per-resource errors inside the result are the caller's.
 * @thread any; @p q is polled by this thread only for the duration
 */
kb_err_t kb_kafka_admin_wait(rd_kafka_queue_t *q, const char *what, int timeout_ms,
                             rd_kafka_event_t **evp, char *errstr, size_t errstr_size);

/**
 * Create the @p n topics of @p specs with one CreateTopics request, with the
 * broker's default replication factor, and wait up to @p timeout_ms for the
 * answer. A topic that exists already (TOPIC_ALREADY_EXISTS: another process
 * won the race) is fine and is left as it is: its partitions and configs are
 * not checked. Topics are not looked up first; see
 * kb_kafka_ensure_topic_specs(). @p flags: KB_TOPICS_MANAGED_OK or 0.
 * On error errstr names the first topic that failed; the other topics may
 * have been created all the same. Each created topic is logged.
 */
kb_err_t kb_kafka_create_topics(rd_kafka_t *rk, const struct kb_topic_spec *specs, size_t n,
                                int flags, int timeout_ms, char *errstr, size_t errstr_size);

/**
 * Make sure the topics of @p specs exist: one metadata request (of every
 * topic, so the broker never auto-creates one), then
 * kb_kafka_create_topics() of the missing ones. Topics that exist already are
 * left alone, whatever their partitions and configs. @p timeout_ms bounds the
 * metadata request and the creation each.
 */
kb_err_t kb_kafka_ensure_topic_specs(rd_kafka_t *rk, const struct kb_topic_spec *specs, size_t n,
                                     int timeout_ms, char *errstr, size_t errstr_size);

/**
 * Make sure @p topics exist, creating the missing ones with @p partitions
 * partitions, no topic configs and the broker's default replication factor
 * (kb_kafka_ensure_topic_specs() with the same spec for each). Topics that
 * exist already are left alone.
 */
kb_err_t kb_kafka_ensure_topics(rd_kafka_t *rk, const char *const *topics, size_t n,
                                int partitions, int timeout_ms, char *errstr,
                                size_t errstr_size);

/**
 * Prefix of every ketenbus topic and consumer group: "kb" unless the
 * environment sets KETENBUS_TOPIC_PREFIX (tests give each run its own, and
 * one cluster can host separate ketenbus installations). Static string.
 */
const char *kb_topic_prefix(void);

/** "<prefix>.<suffix>" into @p out, e.g. kb_topic_name(buf, n, "in.gba") -> "kb.in.gba". */
void kb_topic_name(char *out, size_t out_size, const char *suffix);

/** Wrap a librdkafka error: KB_ERR_FATAL for fatal ones, else KB_ERR_KAFKA. */
kb_err_t kb_kafka_err(rd_kafka_resp_err_t err);

/** Copy a message's headers as kb_header entries (values point into the message). */
size_t kb_kafka_headers(const rd_kafka_message_t *m, struct kb_header *out, size_t max);

/** Turn kb_header entries into a new librdkafka header list (caller owns it). */
rd_kafka_headers_t *kb_kafka_headers_new(const struct kb_header *hdrs, size_t n);

#endif
