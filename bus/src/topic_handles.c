/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * topic_handles.c - open addressing (linear probing) on the name's FNV-1a
 * hash; the table is at most half full and only grows (topics are never
 * forgotten: a router has a few dozen, one per subscriber and its own).
 */
#include "topic_handles.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "idset.h" /* kb__idset_hash: FNV-1a of a string */

struct slot {
    uint64_t hash;
    char *name; /* NULL: empty */
    rd_kafka_topic_t *rkt;
};

struct kb_topic_handles {
    rd_kafka_t *producer;
    struct slot *slots;
    size_t mask; /* slots - 1, a power of two minus one */
    size_t n;
};

kb_topic_handles_t *kb__topic_handles_new(rd_kafka_t *producer)
{
    kb_topic_handles_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->slots = calloc(64, sizeof *h->slots);
    if (!h->slots) {
        free(h);
        return NULL;
    }
    h->mask = 63;
    h->producer = producer;
    return h;
}

/* Double the table; 0, or -1 on NOMEM (the table is left as it was). */
static int grow(kb_topic_handles_t *h)
{
    size_t n_slots = 2 * (h->mask + 1);
    struct slot *ns = calloc(n_slots, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i <= h->mask; i++) {
        if (!h->slots[i].name)
            continue;
        size_t j = (size_t)h->slots[i].hash & (n_slots - 1);
        while (ns[j].name)
            j = (j + 1) & (n_slots - 1);
        ns[j] = h->slots[i];
    }
    free(h->slots);
    h->slots = ns;
    h->mask = n_slots - 1;
    return 0;
}

rd_kafka_topic_t *kb__topic_handles_get(kb_topic_handles_t *h, const char *name)
{
    uint64_t hash = kb__idset_hash(name);
    size_t i = (size_t)hash & h->mask;
    for (; h->slots[i].name; i = (i + 1) & h->mask)
        if (h->slots[i].hash == hash && !strcmp(h->slots[i].name, name))
            return h->slots[i].rkt;
    /* not held yet: keep the table at most half full, then fill the empty
     * slot the probe ended on (after growing, the probe runs again) */
    if (2 * (h->n + 1) > h->mask + 1) {
        if (grow(h))
            return NULL;
        return kb__topic_handles_get(h, name);
    }
    char *copy = strdup(name);
    if (!copy)
        return NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(h->producer, name, NULL);
    if (!rkt) {
        free(copy);
        return NULL;
    }
    h->slots[i] = (struct slot){hash, copy, rkt};
    h->n++;
    return rkt;
}

size_t kb__topic_handles_count(const kb_topic_handles_t *h)
{
    return h ? h->n : 0;
}

void kb__topic_handles_destroy(kb_topic_handles_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i <= h->mask; i++)
        if (h->slots[i].name) {
            rd_kafka_topic_destroy(h->slots[i].rkt);
            free(h->slots[i].name);
        }
    free(h->slots);
    free(h);
}
