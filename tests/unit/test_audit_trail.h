/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_audit_trail.h - an in-memory audit trail for the unit tests of the
 * audit trail (test_audit, test_audit_fast): the records the writer hands
 * to its sink, copied in order, so a test can tamper with them and feed
 * them to the verifier as if read back from Kafka.
 */
#ifndef TEST_AUDIT_TRAIL_H
#define TEST_AUDIT_TRAIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/audit.h"

/* One message of an in-memory trail. */
struct msg {
    int32_t partition;
    char key[KB_AUDIT_KEY_MAX];
    uint8_t *value;
    size_t len;
};

struct trail {
    struct msg *m;
    size_t n, cap;
};

/* Append a copy of @p am (aborts on out of memory: a test cannot go on). */
static inline void trail_add(struct trail *t, const struct kb_audit_msg *am)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct msg *m = realloc(t->m, cap * sizeof *m);
        if (!m)
            abort();
        t->m = m;
        t->cap = cap;
    }
    struct msg *m = &t->m[t->n];
    m->partition = am->partition;
    snprintf(m->key, sizeof m->key, "%.*s", (int)am->key_len, am->key);
    if (!(m->value = malloc(am->len ? am->len : 1)))
        abort();
    memcpy(m->value, am->value, am->len);
    m->len = am->len;
    t->n++;
}

static inline void trail_free(struct trail *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->m[i].value);
    free(t->m);
    memset(t, 0, sizeof *t);
}

#endif
