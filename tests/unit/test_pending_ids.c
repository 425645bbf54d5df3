/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_pending_ids.c - the router's list of routed, uncommitted event ids:
 * one id in two partitions, a full list, dropping the oldest batch and
 * clearing, then 300,000 random operations at three sizes checked against
 * a plain list scanned from end to end (what the router did before).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kb_test.h"
#include "pending_ids.h"

static void test_basic(void)
{
    struct kb__pending_ids p;
    CHECK_INT(kb__pending_ids_init(&p, 4), 0);
    CHECK_INT(kb__pending_ids_contains(&p, 7, 0), 0);
    CHECK_INT(kb__pending_ids_add(&p, 7, 0), 0);
    CHECK_INT(kb__pending_ids_add(&p, 7, 1), 0); /* same id, other partition */
    CHECK_INT(kb__pending_ids_add(&p, 0, 0), 0); /* id 0 is an id like any other */
    CHECK_INT(kb__pending_ids_contains(&p, 7, 0), 1);
    CHECK_INT(kb__pending_ids_contains(&p, 7, 1), 1);
    CHECK_INT(kb__pending_ids_contains(&p, 7, 2), 0);
    CHECK_INT(kb__pending_ids_contains(&p, 0, 0), 1);
    CHECK_INT(kb__pending_ids_add(&p, 9, 3), 0);
    CHECK_INT(kb__pending_ids_add(&p, 10, 3), -1); /* full */
    CHECK_INT((int)p.n, 4);

    /* The batch in flight (the first two) committed: the rest stay, in order. */
    kb__pending_ids_drop_front(&p, 2);
    CHECK_INT((int)p.n, 2);
    CHECK_INT(kb__pending_ids_contains(&p, 7, 0), 0);
    CHECK_INT(kb__pending_ids_contains(&p, 7, 1), 0);
    CHECK_INT(kb__pending_ids_contains(&p, 0, 0), 1);
    CHECK_INT(kb__pending_ids_contains(&p, 9, 3), 1);
    CHECK(p.ids[0] == 0 && p.parts[0] == 0 && p.ids[1] == 9 && p.parts[1] == 3);
    kb__pending_ids_drop_front(&p, 5); /* more than held: all */
    CHECK_INT((int)p.n, 0);
    CHECK_INT(kb__pending_ids_contains(&p, 9, 3), 0);

    CHECK_INT(kb__pending_ids_add(&p, 11, 0), 0);
    kb__pending_ids_clear(&p);
    CHECK_INT((int)p.n, 0);
    CHECK_INT(kb__pending_ids_contains(&p, 11, 0), 0);
    for (size_t i = 0; i <= p.mask; i++)
        CHECK_INT((int)p.slots[i], 0);
    kb__pending_ids_fini(&p);
    kb__pending_ids_fini(&p); /* twice is safe */

    CHECK_INT(kb__pending_ids_init(&p, 0), -1);
    kb__pending_ids_fini(&p);
}

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Ids drawn from a small pool, with a few partitions, so that the same pair
 * recurs and probe runs form; ids that differ only in bits the slot choice
 * ignores are in the pool too. */
static void random_against_model(size_t max)
{
    struct kb__pending_ids p;
    CHECK_INT(kb__pending_ids_init(&p, max), 0);
    uint64_t *mid = calloc(max, sizeof *mid);
    size_t *mpart = calloc(max, sizeof *mpart), mn = 0;
    uint64_t pool[64];
    for (size_t i = 0; i < 64; i++)
        pool[i] = i < 32 ? rnd() : (pool[i - 32] ^ 0x5); /* low bits only */
    long mismatches = 0;
    for (int op = 0; op < 100000; op++) {
        uint64_t id = pool[rnd() % 64];
        size_t part = (size_t)(rnd() % 3);
        unsigned what = (unsigned)(rnd() % 100);
        if (what < 70) {
            int want = mn < max ? 0 : -1;
            if (kb__pending_ids_add(&p, id, part) != want)
                mismatches++;
            if (mn < max) {
                mid[mn] = id;
                mpart[mn++] = part;
            }
        } else if (what < 97) {
            int in = 0;
            for (size_t i = 0; i < mn && !in; i++)
                in = mid[i] == id && mpart[i] == part;
            if (kb__pending_ids_contains(&p, id, part) != in)
                mismatches++;
        } else if (what < 99) {
            size_t k = mn ? (size_t)(rnd() % (mn + 1)) : 0;
            kb__pending_ids_drop_front(&p, k);
            memmove(mid, mid + k, (mn - k) * sizeof *mid);
            memmove(mpart, mpart + k, (mn - k) * sizeof *mpart);
            mn -= k;
        } else {
            kb__pending_ids_clear(&p);
            mn = 0;
        }
        if (p.n != mn)
            mismatches++;
    }
    /* Every slot in use names a distinct position below n. */
    size_t used = 0;
    for (size_t i = 0; i <= p.mask; i++)
        if (p.slots[i]) {
            used++;
            if (p.slots[i] > p.n)
                mismatches++;
        }
    if (used != p.n)
        mismatches++;
    CHECK_INT(mismatches, 0);
    free(mid);
    free(mpart);
    kb__pending_ids_fini(&p);
}

int main(void)
{
    test_basic();
    random_against_model(1);
    random_against_model(10);
    random_against_model(1000);
    KB_TEST_DONE();
}
