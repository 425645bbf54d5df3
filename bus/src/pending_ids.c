/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * pending_ids.c - see pending_ids.h. The ids are already hashes, so a slot
 * is picked from their top bits mixed with the partition; the table is kept
 * at most half full by its size, and linear probing ends at an empty slot.
 * Removal happens only as "drop the oldest k" or "drop all", so instead of
 * tombstones the emptied slots are zeroed one by one and the survivors
 * re-entered: O(n) per transaction, never a sweep of the whole table.
 */
#include <stdlib.h>
#include <string.h>

#include "pending_ids.h"

static size_t home(const struct kb__pending_ids *p, uint64_t id, size_t part)
{
    uint64_t h = (id ^ ((uint64_t)part * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    return (size_t)(h >> 32) & p->mask;
}

int kb__pending_ids_init(struct kb__pending_ids *p, size_t max)
{
    memset(p, 0, sizeof *p);
    if (!max || max > UINT32_MAX / 4)
        return -1;
    size_t cap = 16;
    while (cap < 2 * max + 1)
        cap *= 2;
    p->ids = malloc(max * sizeof *p->ids);
    p->parts = malloc(max * sizeof *p->parts);
    p->slots = calloc(cap, sizeof *p->slots);
    if (!p->ids || !p->parts || !p->slots)
        return -1;
    p->max = max;
    p->mask = cap - 1;
    return 0;
}

void kb__pending_ids_fini(struct kb__pending_ids *p)
{
    free(p->ids);
    free(p->parts);
    free(p->slots);
    memset(p, 0, sizeof *p);
}

int kb__pending_ids_contains(const struct kb__pending_ids *p, uint64_t id, size_t part)
{
    if (!p->slots)
        return 0;
    for (size_t i = home(p, id, part);; i = (i + 1) & p->mask) {
        uint32_t s = p->slots[i];
        if (!s)
            return 0;
        if (p->ids[s - 1] == id && p->parts[s - 1] == part)
            return 1;
    }
}

static void slot_put(struct kb__pending_ids *p, size_t pos)
{
    size_t i = home(p, p->ids[pos], p->parts[pos]);
    while (p->slots[i])
        i = (i + 1) & p->mask;
    p->slots[i] = (uint32_t)pos + 1;
}

int kb__pending_ids_add(struct kb__pending_ids *p, uint64_t id, size_t part)
{
    if (p->n >= p->max)
        return -1;
    p->ids[p->n] = id;
    p->parts[p->n] = part;
    slot_put(p, p->n);
    p->n++;
    return 0;
}

/* Zero the slot of every id in use. Each sits at or after its home slot
 * along the probe, so scanning on from home finds it; the scan does not stop
 * at a slot zeroed earlier in this loop. */
static void slots_zero(struct kb__pending_ids *p)
{
    for (size_t pos = 0; pos < p->n; pos++) {
        size_t i = home(p, p->ids[pos], p->parts[pos]);
        while (p->slots[i] != (uint32_t)pos + 1)
            i = (i + 1) & p->mask;
        p->slots[i] = 0;
    }
}

void kb__pending_ids_drop_front(struct kb__pending_ids *p, size_t k)
{
    if (k > p->n)
        k = p->n;
    if (!k)
        return;
    /* Positions shift, so every slot changes: empty them all, then place
     * the survivors again. */
    slots_zero(p);
    p->n -= k;
    memmove(p->ids, p->ids + k, p->n * sizeof *p->ids);
    memmove(p->parts, p->parts + k, p->n * sizeof *p->parts);
    for (size_t pos = 0; pos < p->n; pos++)
        slot_put(p, pos);
}

void kb__pending_ids_clear(struct kb__pending_ids *p)
{
    slots_zero(p);
    p->n = 0;
}
