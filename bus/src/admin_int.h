/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * admin_int.h - cross-file internals of the admin modules: the group-less
 * reading consumer, the single-letter fetch that `ketenbus dlq show`
 * shares with redrive, and the dead-letter read the admin API can stop.
 */
#ifndef KETENBUS_ADMIN_INT_H
#define KETENBUS_ADMIN_INT_H

#include <librdkafka/rdkafka.h>

#include "ketenbus/admin.h"

/** A consumer that reads committed messages by assign() only (its group
 *  is never joined, nothing is committed). NULL with errstr. */
rd_kafka_t *kb__admin_reader_new(const struct kb_kafka_opts *kafka, char *errstr,
                                 size_t errstr_size);

/** Close and destroy a reader. NULL is a no-op. */
void kb__admin_reader_destroy(rd_kafka_t *rk);

/** The committed message at @p partition / @p offset of @p topic, or NULL
 *  with errstr (*@p err: KB_ERR_NOTFOUND when nothing committed is there). */
rd_kafka_message_t *kb__dlq_fetch(rd_kafka_t *rk, const char *topic, int32_t partition,
                                  int64_t offset, kb_err_t *err, char *errstr,
                                  size_t errstr_size);

/** kb_dlq_read that gives up between polls once *@p stop is set (then
 *  *@p complete is 0). @p stop may be NULL. */
kb_err_t kb__dlq_read(const struct kb_dlq_read_opts *o, atomic_int *stop, kb_dlq_letter_cb cb,
                      void *opaque, uint64_t *depth, int32_t *next_partition, int64_t *next_offset,
                      int *complete, char *errstr, size_t errstr_size);

/** SHA-256 of @p len bytes as 64 hex digits. */
void kb__sha256_hex(const void *data, size_t len, char out[65]);

#endif
