/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * sub_view.h - what one subscription receives of events of one schema
 * (internal): its own pseudonym key, its projection (or the whole event),
 * and the Kafka copy made from an input message. Shared by the router and
 * `ketenbus replay`, so a replayed copy is byte for byte what routing made.
 */
#ifndef KETENBUS_SUB_VIEW_H
#define KETENBUS_SUB_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "hmac.h"
#include "ketenbus/err.h"
#include "ketenbus/event.h"
#include "ketenbus/metrics.h"
#include "ketenbus/schema.h"
#include "ketenbus/sub.h"
#include "ketenbus/validate.h"

struct kb__sub_view {
    const struct kb_sub *sub;    /* borrowed: the subscription */
    int32_t schema_id;           /* source schema */
    kb_projection_t *pj;         /* NULL when the subscription receives every field */
    int32_t out_schema_id;       /* id in the copy's framing: projected, or schema_id */
    struct kb__hmac subject_key; /* this subscriber's key for ce_subject and the Kafka key */
    char record_name[KB_SUB_NAME_MAX + 160]; /* projected record's full name ("" when
                                               * the whole event is delivered) */
    kb_series_t *out_series;     /* the router's kb_events_out_total{subscriber, type} */
    kb_series_t *latency_series; /* and kb_e2e_latency_seconds{subscriber} (NULL elsewhere) */
};

/* Scratch buffers for kb__sub_view_value (one set per thread; free with _fini). */
struct kb__sub_view_bufs {
    uint8_t *datum;              /* a projected datum (grown by the projection) */
    size_t datum_cap;
    uint8_t *framed;             /* the framed projected value */
    size_t framed_cap;
};

/*
 * Build the view of @p sub on events of @p schema (validator @p v).
 * @p subject_key is the bus's subject key; each subscriber gets a key derived
 * from it, so no two subscribers see the same pseudonym for one person.
 * KB_ERR_INVALID with errstr when the subscription's fields do not fit.
 */
kb_err_t kb__sub_view_init(struct kb__sub_view *w, const struct kb_sub *sub,
                           const struct kb_schema *schema, const kb_validator_t *v,
                           const uint8_t *subject_key, size_t subject_key_len, char *errstr,
                           size_t errstr_size);
void kb__sub_view_fini(struct kb__sub_view *w);
void kb__sub_view_bufs_fini(struct kb__sub_view_bufs *b);

/*
 * The subscriber's value of an input value @p value (framed) whose Avro
 * datum is @p payload: the projected, re-framed datum in @p b, or @p value
 * itself. KB_ERR_NOMEM; KB_ERR_INVALID when the payload does not project.
 */
kb_err_t kb__sub_view_value(const struct kb__sub_view *w, const void *value, size_t len,
                            const uint8_t *payload, size_t plen, struct kb__sub_view_bufs *b,
                            const void **out, size_t *out_len);

/* The subscriber's pseudonym of @p subject (a bus pseudonym): a pseudonym of
 * the pseudonym, deterministic per subscriber, unlinkable across them. */
void kb__sub_view_subject(const struct kb__sub_view *w, const char *subject,
                          char out[KB_PSEUDONYM_LEN + 1]);

/* The subscriber's Kafka key for an event without ce_subject whose input
 * key is @p key: a keyed hash of those bytes, so the copies of one key
 * keep their order and no input key (a BSN, say) reaches a subscriber. */
void kb__sub_view_key(const struct kb__sub_view *w, const void *key, size_t key_len,
                      char out[KB_PSEUDONYM_LEN + 1]);

/*
 * Headers of the subscriber's copy of @p m: the original envelope headers
 * (kb_event_header_known) in their order, without ce_subject when
 * @p pseudonym is not empty and without every header named in @p set; then
 * ce_subject = @p pseudonym (when not empty) and @p set. Other headers are
 * left out.
 * The names in @p set are distinct and none is ce_subject. Caller owns the
 * result; NULL when out of memory.
 */
rd_kafka_headers_t *kb__sub_view_headers(const rd_kafka_message_t *m, const char *pseudonym,
                                         const struct kb_header *set, size_t n_set);

/* The same from the original headers @p orig (may be NULL); for tests. */
rd_kafka_headers_t *kb__sub_view_headers_from(const rd_kafka_headers_t *orig,
                                              const char *pseudonym, const struct kb_header *set,
                                              size_t n_set);

/*
 * An input message's headers read once, for the several copies the router
 * makes of it: reading the list per copy (a call per header and a name
 * compare) was a few per cent of the router's time.
 */
struct kb__in_header {
    const char *name;
    size_t name_len;
    const void *value; /* NULL: a null value */
    size_t len;
    int subject;       /* named ce_subject */
    int known;         /* part of the envelope (kb_event_header_known): passed on */
};
struct kb__in_headers {
    const void *of;    /* the caller's tag for whose headers these are (NULL: none) */
    size_t n, cap;
    struct kb__in_header *h;   /* borrowed from the message's headers: valid while it is */
    struct kb__in_header inline_h[16];
};

/* Read @p orig (may be NULL) into @p in, tagged @p of. KB_ERR_NOMEM. */
kb_err_t kb__in_headers_read(struct kb__in_headers *in, const rd_kafka_headers_t *orig,
                             const void *of);

/* kb__sub_view_headers() from headers read with kb__in_headers_read();
 * @p pseudonym_len is strlen(@p pseudonym). NULL when out of memory. */
rd_kafka_headers_t *kb__in_headers_copy(const struct kb__in_headers *in, const char *pseudonym,
                                        size_t pseudonym_len, const struct kb_header *set,
                                        size_t n_set);

/* Free what kb__in_headers_read() allocated (nothing for 16 headers or fewer). */
void kb__in_headers_fini(struct kb__in_headers *in);

/* Full name of the projected record: nl.ketenbus.out.<subscriber>.<source
 * record name>, dashes made underscores (valid Avro, and one name per
 * subscriber and event type, as code generators need). */
const char *kb__sub_view_record_name(const struct kb__sub_view *w);

/* Schema id of a projected schema text (0x40000000 | hash; see sub_view.c). */
int32_t kb__projected_schema_id(const char *schema_json);

#endif
