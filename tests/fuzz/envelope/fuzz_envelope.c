/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_envelope.c - libFuzzer target for the event envelope read from
 * Kafka: kb_event_attrs_from_headers() over arbitrary headers and
 * kb_event_unframe() over arbitrary values, and the gate's rule on ce_time
 * (kb_gate_attrs_check). Accepted input must satisfy the documented
 * guarantees, and accepted headers must survive a round trip through
 * kb_event_headers().
 *
 * Input format:
 *   1 byte  H: number of header records (taken mod 33)
 *   H records, each
 *     1 byte  name selector (index into header_names; values past the end
 *             name a header "x-<byte>" that the reader must ignore)
 *     1 byte  value length L (clipped to what is left)
 *     L bytes value
 *   the rest: the framed Kafka value.
 * Input that ends early simply has fewer headers and an empty value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/event.h"
#include "ketenbus/gate.h"
#include "ketenbus/sub.h" /* kb_parse_time */

#define MAX_FUZZ_HEADERS 32

static const char *const header_names[] = {
    "ce_specversion", "ce_id",       "ce_source",      "ce_type",
    "ce_time",        "ce_subject",  "ce_dataref",     "ce_sequence",
    "ce_sequencetype", "traceparent", "content-type",  "ce_ID",
};
#define N_NAMES (sizeof header_names / sizeof header_names[0])

/* 1 when @p s has a NUL within its first @p cap bytes (a C string that fits). */
static int fits(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static void check_attrs(const struct kb_event_attrs *a)
{
    if (!fits(a->id, sizeof a->id) || !fits(a->source, sizeof a->source) ||
        !fits(a->type, sizeof a->type) || !fits(a->time, sizeof a->time) ||
        !fits(a->subject, sizeof a->subject) || !fits(a->dataref, sizeof a->dataref) ||
        !fits(a->traceparent, sizeof a->traceparent))
        abort(); /* an attribute is not terminated */
    if (!a->id[0] || !a->source[0] || !a->type[0])
        abort(); /* accepted without a required attribute */
    if (a->schema_id != -1)
        abort();
}

/* Headers rebuilt from @p a must read back as @p a. */
static void round_trip(const struct kb_event_attrs *a)
{
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    struct kb_event_attrs back;
    char seqbuf[24], errstr[256];
    size_t n = kb_event_headers(a, hdrs, seqbuf);
    if (n > KB_EVENT_MAX_HEADERS)
        abort();
    if (kb_event_attrs_from_headers(hdrs, n, &back, errstr, sizeof errstr) != KB_OK)
        abort(); /* our own headers rejected */
    if (strcmp(back.id, a->id) || strcmp(back.source, a->source) || strcmp(back.type, a->type) ||
        strcmp(back.time, a->time) || strcmp(back.subject, a->subject) ||
        strcmp(back.dataref, a->dataref) || strcmp(back.traceparent, a->traceparent) ||
        back.sequence != a->sequence)
        abort(); /* not a round trip */
}

static void fuzz_unframe(const uint8_t *data, size_t size)
{
    int32_t id = 0;
    const uint8_t *payload = NULL;
    size_t plen = 0;
    /* Copy so that ASan sees reads past the end of the value. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return;
    if (size)
        memcpy(copy, data, size);
    kb_err_t err = kb_event_unframe(copy, size, &id, &payload, &plen);
    if (err == KB_OK) {
        if (size < 5 || copy[0] != 0 || payload != copy + 5 || plen != size - 5)
            abort();
        uint8_t *re = malloc(plen + 5);
        if (re) {
            kb_event_frame(id, payload, plen, re);
            if (memcmp(re, copy, size) != 0)
                abort(); /* frame(unframe(x)) != x */
            free(re);
        }
    } else if (err != KB_ERR_INVALID || (size >= 5 && copy[0] == 0)) {
        abort(); /* rejected a well-formed frame */
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kb_header hdrs[MAX_FUZZ_HEADERS];
    char names[MAX_FUZZ_HEADERS][8];
    uint8_t *values[MAX_FUZZ_HEADERS];
    size_t n = 0, pos = 1;

    if (size == 0)
        return 0;
    size_t want = data[0] % (MAX_FUZZ_HEADERS + 1);
    while (n < want && pos + 2 <= size) {
        uint8_t sel = data[pos];
        size_t len = data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = size - pos;
        /* Each value in its own allocation of exactly its size. */
        values[n] = malloc(len ? len : 1);
        if (!values[n])
            break;
        if (len)
            memcpy(values[n], data + pos, len);
        pos += len;
        if (sel < N_NAMES) {
            hdrs[n].name = header_names[sel];
        } else {
            snprintf(names[n], sizeof names[n], "x-%u", (unsigned)sel);
            hdrs[n].name = names[n];
        }
        hdrs[n].value = values[n];
        hdrs[n].len = len;
        n++;
    }

    struct kb_event_attrs attrs;
    char errstr[256];
    errstr[0] = '\0';
    kb_err_t err = kb_event_attrs_from_headers(hdrs, n, &attrs, errstr, sizeof errstr);
    if (err == KB_OK) {
        check_attrs(&attrs);
        round_trip(&attrs);
        /* The gate takes a ce_time only as a date-time that exists, and
         * then judges the event by exactly that instant. */
        char why[256] = "";
        kb_err_t terr = kb_gate_attrs_check(&attrs, why, sizeof why);
        int64_t ms;
        if (terr == KB_OK && attrs.time[0] &&
            (kb_parse_time(attrs.time, &ms) || kb_gate_decision_time(&attrs) != ms))
            abort();
        if (terr != KB_OK && (terr != KB_ERR_INVALID || !why[0] || !attrs.time[0]))
            abort(); /* refused only for its ce_time, saying why */
    } else if (err != KB_ERR_INVALID || !errstr[0]) {
        abort(); /* every rejection is INVALID and says why */
    }
    for (size_t i = 0; i < n; i++)
        free(values[i]);

    fuzz_unframe(data + pos, size - pos);
    return 0;
}
