/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * idset.h - a bounded set of 64-bit event-id hashes that forgets the oldest
 * entry once it holds its capacity: the router's memory of which events of
 * one input partition it has already routed (duplicate removal window).
 */
#ifndef KETENBUS_IDSET_H
#define KETENBUS_IDSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct kb_idset kb_idset_t;

/** A set remembering the last @p capacity ids (capacity >= 1). NULL on NOMEM. */
kb_idset_t *kb__idset_new(size_t capacity);

/** Release @p s. NULL is a no-op. */
void kb__idset_destroy(kb_idset_t *s);

/** 1 when @p id is in the set. */
int kb__idset_contains(const kb_idset_t *s, uint64_t id);

/** Add @p id (no-op when present), evicting the oldest id when full. */
void kb__idset_add(kb_idset_t *s, uint64_t id);

/** Number of ids held. */
size_t kb__idset_size(const kb_idset_t *s);

/** 64-bit FNV-1a of a string: the id hash used for event ids. */
uint64_t kb__idset_hash(const char *str);

#endif
