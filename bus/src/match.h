/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * match.h - subscriptions compiled into an index: event type first, then
 * the exact ce_source or the payload field values (`=`, `in`) a
 * subscription requires, so the cost of matching one event depends on the
 * subscriptions that could want it, not on how many there are. Filters,
 * validity periods and follow lists of those candidates are then evaluated
 * in full (unless the index key was the whole filter).
 */
#ifndef KETENBUS_MATCH_H
#define KETENBUS_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/event.h"
#include "ketenbus/schema.h"
#include "ketenbus/sub.h"
#include "ketenbus/validate.h"

/**
 * Payload access for `field` filters: write the value at @p path as text
 * into @p buf (numbers in decimal, booleans true/false, enums by symbol).
 * Returns 1 when the field exists and is not null, 0 otherwise.
 */
typedef int(kb_field_get_cb)(void *opaque, const char *path, char *buf, size_t cap);

typedef struct kb_matcher kb_matcher_t;

/** Index @p subs, which must outlive the matcher. NULL on NOMEM. */
kb_matcher_t *kb_matcher_new(const struct kb_subs *subs);

/** Release @p m. NULL is a no-op. */
void kb_matcher_destroy(kb_matcher_t *m);

/**
 * The subscriptions that receive the event with @p attrs, recorded at
 * @p time_ms, into @p out, in subscription order; returns how many. When
 * more than @p max match, returns @p max + 1 and @p out holds @p max of
 * them: size @p out by the number of subscriptions (never too small) or
 * treat @p max + 1 as an error, never as a complete answer.
 * @p get is called only when a candidate has a field filter.
 * @thread any; the matcher is read-only after creation.
 */
size_t kb_matcher_match(const kb_matcher_t *m, const struct kb_event_attrs *attrs,
                        int64_t time_ms, kb_field_get_cb *get, void *opaque,
                        const struct kb_sub **out, size_t max);

/*
 * The payload of one event as `field` filters see it: decoded with avro-c on
 * first use only (most filters look at context attributes), and only after
 * the validation gate accepted it (avro-c is not hardened against hostile
 * bytes). Router and dry-run both use it, so they judge alike.
 */
struct kb_payload_view {
    const struct kb_schema *schema; /* the event's schema */
    const uint8_t *payload;         /* validated Avro payload (framing removed) */
    size_t len;
    int decoded;                    /* value holds the decoded payload */
    int failed;                     /* decoding failed: treat the event as undecodable */
    avro_value_t value;
    const kb_validator_t *v;        /* the gate that accepted the payload: fields are read
                                     * from the bytes (kb_validate_field), nothing decoded;
                                     * NULL: decode with avro-c */
};

/** kb_field_get_cb over a struct kb_payload_view (the opaque). */
int kb_payload_field(void *opaque, const char *path, char *buf, size_t cap);

/** Release what kb_payload_field() decoded. */
void kb_payload_view_fini(struct kb_payload_view *pv);

/** 1 when filter @p f is definitely true for the event (three-valued logic:
 *  a comparison on an absent field is unknown, and unknown does not match). */
int kb_filter_eval(const struct kb_filter *f, const struct kb_event_attrs *attrs,
                   kb_field_get_cb *get, void *opaque);

#endif
