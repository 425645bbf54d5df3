/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * idset.c - open-addressing hash set (linear probing, backward-shift delete)
 * plus a FIFO ring that decides which id to forget next.
 *
 * Invariants: 1. every id in the ring is in the table and vice versa;
 * 2. the table is at most half full (slots = power of two >= 2 * capacity);
 * 3. slot value 0 means empty, so id 0 is stored as 1 (a harmless merge).
 */
#include <stdlib.h>

#include "idset.h"

struct kb_idset {
    uint64_t *slots;   /* hash table; 0 = empty */
    size_t mask;       /* number of slots - 1 */
    uint64_t *ring;    /* ids in insertion order, for eviction */
    size_t capacity;   /* ring size: how many ids are remembered */
    size_t head;       /* ring index of the oldest id */
    size_t count;      /* ids held */
};

static size_t slot_of(const kb_idset_t *s, uint64_t id)
{
    /* Fibonacci hashing spreads FNV output over the table. */
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & s->mask;
}

kb_idset_t *kb__idset_new(size_t capacity)
{
    if (capacity == 0)
        capacity = 1;
    kb_idset_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    size_t slots = 16;
    while (slots < capacity * 2)
        slots <<= 1;
    s->slots = calloc(slots, sizeof *s->slots);
    s->ring = calloc(capacity, sizeof *s->ring);
    if (!s->slots || !s->ring) {
        kb__idset_destroy(s);
        return NULL;
    }
    s->mask = slots - 1;
    s->capacity = capacity;
    return s;
}

void kb__idset_destroy(kb_idset_t *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s->ring);
    free(s);
}

int kb__idset_contains(const kb_idset_t *s, uint64_t id)
{
    if (!id)
        id = 1;
    for (size_t i = slot_of(s, id);; i = (i + 1) & s->mask) {
        if (s->slots[i] == id)
            return 1;
        if (!s->slots[i])
            return 0;
    }
}

static void table_remove(kb_idset_t *s, uint64_t id)
{
    size_t i = slot_of(s, id);
    while (s->slots[i] != id) {
        if (!s->slots[i])
            return;
        i = (i + 1) & s->mask;
    }
    /* Backward-shift: move later entries of the probe run into the hole. */
    size_t hole = i;
    for (size_t j = (hole + 1) & s->mask; s->slots[j]; j = (j + 1) & s->mask) {
        size_t home = slot_of(s, s->slots[j]);
        /* Entry j may move to hole when hole lies cyclically in [home, j). */
        if (((j - home) & s->mask) >= ((j - hole) & s->mask)) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->slots[hole] = 0;
}

void kb__idset_add(kb_idset_t *s, uint64_t id)
{
    if (!id)
        id = 1;
    if (kb__idset_contains(s, id))
        return;
    if (s->count == s->capacity) {
        table_remove(s, s->ring[s->head]);
        s->head = (s->head + 1) % s->capacity;
        s->count--;
    }
    size_t i = slot_of(s, id);
    while (s->slots[i])
        i = (i + 1) & s->mask;
    s->slots[i] = id;
    s->ring[(s->head + s->count) % s->capacity] = id;
    s->count++;
}

size_t kb__idset_size(const kb_idset_t *s)
{
    return s->count;
}

uint64_t kb__idset_hash(const char *str)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}
