/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * topic_handles.h - a producer's topic handles by topic name, each made on
 * first use and kept until the table is destroyed.
 *
 * rd_kafka_producev() given a topic name finds the topic under the client's
 * write lock in a list of all its topics, for every message: 150-250 ns a
 * message more than producing with a handle (librdkafka 2.0.2, 22 topics).
 * The router writes 6.85 messages per event in bench-route and bench-e2e
 * (5.85 copies and an audit record), to a few dozen topics.
 */
#ifndef KETENBUS_TOPIC_HANDLES_H
#define KETENBUS_TOPIC_HANDLES_H

#include <librdkafka/rdkafka.h>

typedef struct kb_topic_handles kb_topic_handles_t;

/** An empty table for @p producer. NULL on NOMEM. */
kb_topic_handles_t *kb__topic_handles_new(rd_kafka_t *producer);

/**
 * The handle of topic @p name, made with the producer's default topic
 * settings the first time (a topic the client already knows keeps its own:
 * librdkafka returns the existing topic). NULL when no handle could be made;
 * the caller then produces by name.
 * @thread one thread per table: not locked.
 */
rd_kafka_topic_t *kb__topic_handles_get(kb_topic_handles_t *h, const char *name);

/** Number of topics held. */
size_t kb__topic_handles_count(const kb_topic_handles_t *h);

/** Release every handle and @p h; before the producer is destroyed. NULL is a no-op. */
void kb__topic_handles_destroy(kb_topic_handles_t *h);

#endif
