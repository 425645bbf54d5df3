/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_lo3.c - libFuzzer target for the LO3 parser: any bytes must parse or
 * fail cleanly; on success every slice must lie inside the input, the
 * categories must tile the elements, every element's number and length
 * must be the digits at its offset, and every element value that is valid
 * Teletex must survive the round trip through UTF-8 unchanged. The
 * element checks must find the same through their word-at-a-time paths
 * (the parsed buffer) as through the byte loops (the values copied out).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lo3.h"
#include "lo3_check.h"
#include "t61.h"

/* A slice must lie inside the fuzz input. */
static void check_slice(const uint8_t *data, size_t size, const uint8_t *p, size_t len)
{
    if (len == 0)
        return;
    if (p < data || p > data + size || len > (size_t)(data + size - p))
        abort();
}

static void round_trip(const uint8_t *v, size_t len)
{
    /* element values are at most 999 bytes; free text up to 99999 */
    static char utf8[3 * 99999 + 1];
    static uint8_t back[99999];
    size_t n, m, bad;

    if (kb_t61_to_utf8(v, len, utf8, sizeof utf8, &n, &bad) != KB_OK) {
        if (bad >= len)
            abort(); /* the reported offset must be inside the value */
        return;
    }
    if (kb_t61_from_utf8(utf8, n, back, sizeof back, &m, &bad) != KB_OK)
        abort();
    if (m != len || memcmp(back, v, len) != 0)
        abort();
}

/* The number of @p n ASCII digits at @p p (they were checked by the parser). */
static size_t number_at(const uint8_t *p, size_t n)
{
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            abort();
        v = v * 10 + (size_t)(p[i] - '0');
    }
    return v;
}

/* kb_lo3_check() of @p msg and of a copy whose values each live in their
 * own exact-size block, with no buffer known: the same findings. */
static void same_checks(const struct kb_lo3_message *msg)
{
    struct kb_lo3_message copy = *msg;
    struct kb_lo3_element *els = malloc((msg->n_elements + 1) * sizeof *els);
    if (!els)
        return;
    for (size_t i = 0; i < msg->n_elements; i++) {
        els[i] = msg->elements[i];
        uint8_t *v = malloc(els[i].len + 1);
        if (v && els[i].len)
            memcpy(v, msg->elements[i].value, els[i].len);
        els[i].value = v;
    }
    copy.elements = els;
    copy.buf = NULL;
    copy.buf_len = 0;
    struct kb_lo3_findings a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (kb_lo3_check(msg, &a) == KB_OK && kb_lo3_check(&copy, &b) == KB_OK) {
        if (a.n != b.n || a.n_reject != b.n_reject)
            abort();
        for (size_t i = 0; i < a.n; i++)
            if (strcmp(a.items[i].rubriek, b.items[i].rubriek) ||
                strcmp(a.items[i].rule, b.items[i].rule) ||
                a.items[i].offset != b.items[i].offset || a.items[i].reject != b.items[i].reject)
                abort();
    }
    kb_lo3_findings_fini(&a);
    kb_lo3_findings_fini(&b);
    for (size_t i = 0; i < msg->n_elements; i++)
        free((void *)els[i].value);
    free(els);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kb_lo3_message msg;
    char err[256];

    if (kb_lo3_parse(data, size, &msg, err, sizeof err) != KB_OK) {
        if (msg.categories || msg.elements || msg.n_header || err[0] == '\0')
            abort(); /* failed parses are empty and say why */
        return 0;
    }
    if (msg.n_header > KB_LO3_MAX_HEADER_FIELDS)
        abort();
    for (size_t i = 0; i < msg.n_header; i++) {
        check_slice(data, size, msg.header[i].value, msg.header[i].len);
        if (kb_lo3_header(&msg, msg.header[i].name) == NULL)
            abort();
        if (strcmp(msg.header[i].name, "vrijeTekst") == 0)
            round_trip(msg.header[i].value, msg.header[i].len);
    }
    size_t next = 0, stapel = 0;
    for (size_t c = 0; c < msg.n_categories; c++) {
        const struct kb_lo3_category *cat = &msg.categories[c];
        if (cat->first != next || cat->first + cat->count > msg.n_elements)
            abort();
        if (cat->offset + 5 > size || cat->nummer == 0 || cat->nummer == 50 || cat->nummer > 99)
            abort();
        /* stapel indexes start at 0 and only ever grow by one */
        if (cat->stapel != stapel && cat->stapel != stapel + 1 && !(c == 0 && cat->stapel == 0))
            abort();
        if (c > 0 && cat->stapel < msg.categories[c - 1].stapel)
            abort();
        stapel = cat->stapel;
        next += cat->count;
        for (size_t e = 0; e < cat->count; e++) {
            const struct kb_lo3_element *el = &msg.elements[cat->first + e];
            check_slice(data, size, el->value, el->len);
            if (el->len > 999 || el->nummer > 9999 || el->offset + 7 + el->len > size)
                abort();
            if (number_at(data + el->offset, 4) != el->nummer ||
                number_at(data + el->offset + 4, 3) != el->len ||
                el->value != data + el->offset + 7)
                abort();
            if (kb_lo3_element(&msg, c, el->nummer) == NULL)
                abort();
            round_trip(el->value, el->len);
        }
    }
    if (next != msg.n_elements)
        abort();
    same_checks(&msg);
    kb_lo3_message_fini(&msg);
    return 0;
}
