/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * adapter_metrics.h - what every adapter process reports on /metrics and
 * how it decides /readyz: messages per transport and outcome, refusals of
 * hostile or broken peers, events produced per type, produce latency and
 * spool backlog, and readiness = "the Kafka client reaches a broker and
 * the work loop (spool scan or consumer poll) is turning".
 *
 * The shared --metrics-addr HOST:PORT option (adapter.h) starts the server
 * in kb_adapter_load(); the counting calls below are made by the shared
 * transports (spool.c, tcp.c, ingress.c, egress.c), so adapters get the
 * figures without code of their own. Every function may be called from any
 * thread, also when no server runs (then they only count).
 *
 * Families (labels): kb_adapter_messages_total (source, transport,
 * outcome = received | accepted | quarantined | retry),
 * kb_adapter_refused_total (source, transport, reason),
 * kb_adapter_produce_seconds (source), kb_adapter_spool_backlog (source),
 * kb_adapter_kafka_up (source), and the catalogue's kb_events_in_total
 * (source, type) and kb_quarantined_total (source).
 */
#ifndef KETENBUS_ADAPTER_METRICS_H
#define KETENBUS_ADAPTER_METRICS_H

#include <stddef.h>

#include "ketenbus/err.h"

/** The value of the "source" label (gba, svb, kadaster); copied. Until
 *  set, the program name without "ketenbus-". */
void kb_adapter_metrics_source(const char *source);

/** Count one message of @p transport ("spool", "tcp", "http", "tcp-staged") reaching
 *  @p outcome ("received", "accepted", "quarantined", "retry"). */
void kb_adapter_count_message(const char *transport, const char *outcome);

/** Count a connection, frame or file refused before it became a message
 *  (@p reason: a fixed word such as "frame-timeout", never input text). */
void kb_adapter_count_refused(const char *transport, const char *reason);

/** Files waiting in the spool's in/ at the last scan; also a heartbeat. */
void kb_adapter_spool_backlog(size_t files);

/** The work loop turned (consumer poll, spool scan): readiness heartbeat. */
void kb_adapter_heartbeat(void);

/** Record one produce-and-wait-for-acks round trip of @p seconds. */
void kb_adapter_produce_observe(double seconds);

/**
 * The Kafka client (an rd_kafka_t *) readiness probes, or NULL when it goes
 * away. Call with NULL before destroying it: this waits for a probe in
 * progress, so none uses it afterwards.
 */
void kb_adapter_metrics_kafka(void *rk);

/**
 * Serve /metrics, /metrics.json, /healthz and /readyz on @p addr
 * ("host:port"; port 0 picks one, printed as "metrics HOST:PORT" on stdout
 * for scripts) and start the readiness probe (every second: ready when the
 * registered Kafka client answers a metadata request within 1.5 s and a
 * heartbeat came within the last 30 s). KB_ERR_* with errstr on failure.
 */
kb_err_t kb_adapter_metrics_start(const char *addr, char *errstr, size_t errstr_size);

/** Stop the server and the probe. Idempotent; no-op when never started. */
void kb_adapter_metrics_stop(void);

#endif
