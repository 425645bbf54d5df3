/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_idset.c - the router's duplicate window: FIFO eviction at capacity,
 * id 0, FNV-1a known answers, hand-made probe clusters that wrap around the
 * table end, and 200,000 random operations checked against a plain
 * reference model (ring + membership array).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "idset.h"
#include "kb_test.h"

/* Inverse of the Fibonacci multiplier 0x9E3779B97F4A7C15 mod 2^64 (python:
 * pow(0x9E3779B97F4A7C15, -1, 2**64)): id = INV * k hashes to k >> 17. */
#define FIB_INV 0xf1de83e19937733dull

/* An id whose home slot is @p home (in any table larger than @p home); @p j
 * (< 2^17) tells apart ids with the same home. */
static uint64_t id_at(size_t home, uint64_t j)
{
    return FIB_INV * (((uint64_t)home << 17) | j);
}

static void test_basic(void)
{
    kb_idset_t *s = kb__idset_new(3);
    CHECK(s != NULL);
    CHECK_INT(kb__idset_size(s), 0);
    CHECK_INT(kb__idset_contains(s, 10), 0);
    kb__idset_add(s, 10);
    kb__idset_add(s, 20);
    kb__idset_add(s, 30);
    CHECK_INT(kb__idset_size(s), 3);
    CHECK_INT(kb__idset_contains(s, 10), 1);
    CHECK_INT(kb__idset_contains(s, 20), 1);
    CHECK_INT(kb__idset_contains(s, 30), 1);
    CHECK_INT(kb__idset_contains(s, 40), 0);

    /* Full: adding 40 forgets the oldest, 10. */
    kb__idset_add(s, 40);
    CHECK_INT(kb__idset_size(s), 3);
    CHECK_INT(kb__idset_contains(s, 10), 0);
    CHECK_INT(kb__idset_contains(s, 20), 1);
    CHECK_INT(kb__idset_contains(s, 30), 1);
    CHECK_INT(kb__idset_contains(s, 40), 1);

    /* Re-adding 20 is a no-op: it does not become the newest, so it is
     * still the next one forgotten. */
    kb__idset_add(s, 20);
    CHECK_INT(kb__idset_size(s), 3);
    kb__idset_add(s, 50);
    CHECK_INT(kb__idset_contains(s, 20), 0);
    CHECK_INT(kb__idset_contains(s, 30), 1);
    CHECK_INT(kb__idset_contains(s, 40), 1);
    CHECK_INT(kb__idset_contains(s, 50), 1);
    kb__idset_add(s, 60);
    kb__idset_add(s, 70);
    CHECK_INT(kb__idset_contains(s, 30), 0);
    CHECK_INT(kb__idset_contains(s, 40), 0);
    CHECK_INT(kb__idset_contains(s, 50), 1);
    CHECK_INT(kb__idset_contains(s, 60), 1);
    CHECK_INT(kb__idset_contains(s, 70), 1);
    kb__idset_destroy(s);
    kb__idset_destroy(NULL);
}

static void test_zero_and_capacity_one(void)
{
    kb_idset_t *s = kb__idset_new(4);
    CHECK_INT(kb__idset_contains(s, 0), 0);
    kb__idset_add(s, 0);
    CHECK_INT(kb__idset_contains(s, 0), 1);
    CHECK_INT(kb__idset_size(s), 1);
    /* 0 is stored as 1 (documented merge): both look present, one entry. */
    CHECK_INT(kb__idset_contains(s, 1), 1);
    kb__idset_add(s, 1);
    CHECK_INT(kb__idset_size(s), 1);
    kb__idset_add(s, UINT64_MAX);
    CHECK_INT(kb__idset_contains(s, UINT64_MAX), 1);
    CHECK_INT(kb__idset_size(s), 2);
    kb__idset_destroy(s);

    /* Capacity 0 behaves as 1. */
    s = kb__idset_new(0);
    CHECK(s != NULL);
    kb__idset_add(s, 7);
    kb__idset_add(s, 8);
    CHECK_INT(kb__idset_size(s), 1);
    CHECK_INT(kb__idset_contains(s, 7), 0);
    CHECK_INT(kb__idset_contains(s, 8), 1);
    kb__idset_destroy(s);
}

static void test_hash(void)
{
    /* python3: 64-bit FNV-1a, offset 0xcbf29ce484222325, prime 0x100000001b3. */
    CHECK(kb__idset_hash("") == 0xcbf29ce484222325ull);
    CHECK(kb__idset_hash("a") == 0xaf63dc4c8601ec8cull);
    CHECK(kb__idset_hash("foobar") == 0x85944171f73967e8ull);
    CHECK(kb__idset_hash("36d52269-2359-5684-86c0-d9789b7c9c9c") == 0x06d0e3c2c921053cull);
}

/* Ids that share home slots near the end of the table, so that probe runs
 * wrap around and deletions must shift entries back across slot 0. */
static void test_clusters(void)
{
    const size_t capacity = 8, mask = 15; /* 16 slots: the minimum table */
    kb_idset_t *s = kb__idset_new(capacity);
    uint64_t ids[8] = {
        id_at(14, 1), id_at(14, 2), id_at(15, 1), id_at(14, 3),
        id_at(0, 1),  id_at(15, 2), id_at(1, 1),  id_at(0, 2),
    };
    for (int i = 0; i < 8; i++)
        kb__idset_add(s, ids[i]);
    for (int i = 0; i < 8; i++)
        CHECK_INT(kb__idset_contains(s, ids[i]), 1);
    /* Each further add evicts the oldest; all later ones must stay findable. */
    for (int round = 0; round < 64; round++) {
        uint64_t nid = id_at((size_t)(14 + round % 4) & mask, (uint64_t)(100 + round));
        uint64_t oldest = ids[0];
        memmove(ids, ids + 1, 7 * sizeof ids[0]);
        ids[7] = nid;
        kb__idset_add(s, nid);
        CHECK_INT(kb__idset_size(s), 8);
        CHECK_INT(kb__idset_contains(s, oldest), 0);
        for (int i = 0; i < 8; i++)
            CHECK_INT(kb__idset_contains(s, ids[i]), 1);
    }
    kb__idset_destroy(s);
}

/* xorshift64*: a fixed pseudo-random sequence, independent of libc. */
static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

#define POOL 4096
#define CAP 1000

static void test_random_against_model(void)
{
    /* Half the pool random 64-bit ids, half crowded onto 16 home slots
     * around the table's wrap point (2048 slots for capacity 1000). */
    static uint64_t pool[POOL];
    static unsigned char in_model[POOL];
    static size_t ring[CAP];
    size_t head = 0, count = 0;
    const size_t mask = 2047;
    for (size_t i = 0; i < POOL; i++) {
        if (i % 2)
            pool[i] = rnd() | 2; /* never 0 or 1, which merge */
        else
            pool[i] = id_at((2040 + i % 16) & mask, (uint64_t)i + 2);
    }
    memset(in_model, 0, sizeof in_model);

    kb_idset_t *s = kb__idset_new(CAP);
    long mismatches = 0;
    for (long op = 0; op < 200000; op++) {
        size_t k = (size_t)(rnd() % POOL);
        if (rnd() % 3) {
            /* add */
            if (!in_model[k]) {
                if (count == CAP) {
                    in_model[ring[head]] = 0;
                    head = (head + 1) % CAP;
                    count--;
                }
                ring[(head + count) % CAP] = k;
                count++;
                in_model[k] = 1;
            }
            kb__idset_add(s, pool[k]);
        } else if (kb__idset_contains(s, pool[k]) != in_model[k]) {
            mismatches++;
        }
        if (kb__idset_size(s) != count)
            mismatches++;
        if (op % 5000 == 4999)
            for (size_t i = 0; i < POOL; i++)
                if (kb__idset_contains(s, pool[i]) != in_model[i])
                    mismatches++;
    }
    CHECK_INT(mismatches, 0);
    CHECK_INT(kb__idset_size(s), CAP);
    kb__idset_destroy(s);
}

int main(void)
{
    test_basic();
    test_zero_and_capacity_one();
    test_hash();
    test_clusters();
    test_random_against_model();
    KB_TEST_DONE();
}
