/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_follow.c - libFuzzer target for follow lists read from a compacted
 * topic (bus/src/follow_topic.c): whoever can write that topic controls the
 * keys and values, so kb_follow_log_add() and kb_follow_log_list() must
 * take any bytes. The list they produce is checked against a model written
 * here independently: the last record of a key decides (a tombstone or a
 * value that does not parse removes it), keys that are not pseudonyms are
 * refused and change nothing, the list is sorted with one entry per key,
 * and every period is non-empty.
 *
 * Input: records, each
 *   1 byte  flags: bit 0 tombstone (no value); bit 1 the key is one of
 *           four valid pseudonyms (the next byte, mod 4, picks it)
 *   key:    with bit 1, 1 selector byte; else 1 length byte L + L bytes
 *   value:  unless a tombstone, 1 length byte V + V bytes
 * Lengths are clipped to what is left; input ending early ends the records.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/event.h"
#include "ketenbus/sub.h"

#define MAX_RECS 256

static const char *const keys[4] = {
    "0123456789abcdef0123456789abcdef", "00000000000000000000000000000000",
    "ffffffffffffffffffffffffffffffff", "0123456789abcdef0123456789abcdee"};

struct model {
    char key[KB_PSEUDONYM_LEN + 1];
    int alive;
    int64_t from, until;
};

static size_t take(const uint8_t **p, const uint8_t *end, size_t want)
{
    size_t left = (size_t)(end - *p);
    return want < left ? want : left;
}

static int valid_key(const uint8_t *k, size_t len)
{
    if (len != KB_PSEUDONYM_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kb_follow_log_t *log = kb_follow_log_new();
    if (!log)
        return 0;
    static struct model m[MAX_RECS];
    size_t nm = 0;
    const uint8_t *p = data, *end = data + size;
    for (int r = 0; r < MAX_RECS && p < end; r++) {
        uint8_t flags = *p++;
        const uint8_t *key;
        size_t klen;
        if (flags & 2) {
            if (p == end)
                break;
            key = (const uint8_t *)keys[*p++ & 3];
            klen = KB_PSEUDONYM_LEN;
        } else {
            if (p == end)
                break;
            klen = take(&p, end, *p++);
            key = p;
            p += klen;
        }
        const uint8_t *val = NULL;
        size_t vlen = 0;
        if (!(flags & 1)) {
            if (p == end)
                break;
            vlen = take(&p, end, *p++);
            val = p;
            p += vlen;
        }
        int64_t from = 0, until = 0;
        int parsed = val && kb_follow_parse_period(val, vlen, &from, &until) == KB_OK;
        if (parsed && from >= until)
            abort(); /* an empty period accepted */
        kb_err_t err = kb_follow_log_add(log, key, klen, val, vlen);
        if (!valid_key(key, klen)) {
            if (err != KB_ERR_INVALID)
                abort(); /* a key that is no pseudonym accepted */
            continue;
        }
        if ((err == KB_OK) != (val == NULL || parsed))
            abort(); /* the add's verdict differs from the period parser's */
        size_t i = 0;
        while (i < nm && memcmp(m[i].key, key, KB_PSEUDONYM_LEN) != 0)
            i++;
        if (i == nm) {
            memcpy(m[nm].key, key, KB_PSEUDONYM_LEN);
            m[nm].key[KB_PSEUDONYM_LEN] = '\0';
            nm++;
        }
        m[i].alive = parsed;
        m[i].from = from;
        m[i].until = until;
    }

    struct kb_follow *items = NULL;
    size_t n = 0;
    if (kb_follow_log_list(log, &items, &n) == KB_OK) {
        size_t alive = 0;
        for (size_t i = 0; i < nm; i++)
            alive += (size_t)m[i].alive;
        if (n != alive)
            abort(); /* an entry too many or too few */
        for (size_t k = 0; k < n; k++) {
            if (k && strcmp(items[k - 1].subject, items[k].subject) >= 0)
                abort(); /* not sorted, or a key twice */
            size_t i = 0;
            while (i < nm && strcmp(m[i].key, items[k].subject) != 0)
                i++;
            if (i == nm || !m[i].alive || m[i].from != items[k].from_ms ||
                m[i].until != items[k].until_ms)
                abort(); /* not what the last record of that key says */
        }
    }
    free(items);
    kb_follow_log_destroy(log);
    return 0;
}
