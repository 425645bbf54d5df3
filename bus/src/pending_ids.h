/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * pending_ids.h - the event ids the router has routed but not yet committed
 * (the batch in flight, then the one routed behind it), in routing order,
 * each with the index of its input partition, and a hash index over them.
 *
 * A duplicate check looks here for every event. A transaction may hold
 * thousands of events, so a scan of the list per event would cost the
 * square of the batch size; the index keeps the check constant.
 */
#ifndef KETENBUS_PENDING_IDS_H
#define KETENBUS_PENDING_IDS_H

#include <stddef.h>
#include <stdint.h>

struct kb__pending_ids {
    uint64_t *ids;               /* id hashes (kb__idset_hash), oldest first */
    size_t *parts;               /* input partition index of each */
    size_t n, max;               /* in use; room */
    uint32_t *slots;             /* open addressing: 0 empty, else position + 1 */
    size_t mask;                 /* slot count - 1; slots > 2 * max */
};

/** Room for @p max ids. 0, or -1 on NOMEM (then fini is still safe). */
int kb__pending_ids_init(struct kb__pending_ids *p, size_t max);

void kb__pending_ids_fini(struct kb__pending_ids *p);

/** 1 when (@p id, @p part) is pending. */
int kb__pending_ids_contains(const struct kb__pending_ids *p, uint64_t id, size_t part);

/** Append (@p id, @p part). -1 when full (the caller sized it for two batches). */
int kb__pending_ids_add(struct kb__pending_ids *p, uint64_t id, size_t part);

/** Forget the oldest @p k (a committed batch); the rest keep their order. */
void kb__pending_ids_drop_front(struct kb__pending_ids *p, size_t k);

/** Forget all (an aborted or dropped batch). */
void kb__pending_ids_clear(struct kb__pending_ids *p);

#endif
