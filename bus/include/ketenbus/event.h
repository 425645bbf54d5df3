/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/event.h - the event envelope: CloudEvents 1.0 context attributes
 * (NL GOV profile) carried as Kafka headers in binary mode, the Confluent
 * wire framing of the Avro value, deterministic event ids and the keyed
 * pseudonyms that replace personal identifiers in keys and headers.
 *
 * Invariant: nothing in a kb_event_attrs is personal data. subject is a
 * pseudonym (HMAC), never a BSN or A-nummer.
 */
#ifndef KETENBUS_EVENT_H
#define KETENBUS_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

#define KB_EVENT_SPECVERSION "1.0"
#define KB_EVENT_CONTENT_TYPE "application/avro"
#define KB_PSEUDONYM_LEN 32 /* hex chars: 128 bits of HMAC-SHA-256 */

/** CloudEvents context attributes of one event; all NUL-terminated. */
struct kb_event_attrs {
    char id[40];            /* ce_id: UUID (v5, derived from the legacy message) */
    char source[160];       /* ce_source: urn:nld:oin:<OIN>:systeem:<system> */
    char type[96];          /* ce_type: reverse DNS, e.g. nl.brp.persoon-geboren */
    char time[40];          /* ce_time: RFC 3339, when the bus recorded the event */
    char subject[KB_PSEUDONYM_LEN + 1]; /* ce_subject: pseudonym, or "" */
    char dataref[512];      /* ce_dataref: where the legacy original is archived, or "" */
    uint64_t sequence;      /* ce_sequence (sequencetype Integer); 0 = absent */
    char traceparent[64];   /* W3C trace context, or "" */
    int32_t schema_id;      /* registry id of the value's schema (also in the framing) */
};

/** One Kafka header as a name and a byte string (not NUL-terminated). */
struct kb_header {
    const char *name;
    const void *value;
    size_t len;
};

#define KB_EVENT_MAX_HEADERS 12

/**
 * Fill @p out (at least KB_EVENT_MAX_HEADERS entries) with the binary-mode
 * headers for @p attrs: ce_specversion, ce_id, ce_source, ce_type, ce_time,
 * content-type, and ce_subject/ce_dataref/ce_sequence/ce_sequencetype/
 * traceparent when set. Values point into @p attrs and @p seqbuf (>= 24
 * bytes), which must outlive @p out. Returns the number of headers.
 */
size_t kb_event_headers(const struct kb_event_attrs *attrs, struct kb_header *out, char *seqbuf);

/**
 * Read context attributes back from @p n headers. Missing required
 * attributes (specversion 1.0, id, source, type), oversize values, values
 * that are not a CloudEvents String (well-formed UTF-8, no control
 * characters U+0000-U+001F, U+007F-U+009F), an envelope header given twice,
 * a ce_subject that is not a pseudonym (KB_PSEUDONYM_LEN lower-case hex
 * digits) and a ce_sequencetype other than Integer are KB_ERR_INVALID with
 * errstr naming the header, never quoting its value. Headers outside the
 * envelope are ignored, and so is a traceparent that is not W3C trace
 * context (as that standard asks; the first valid one is taken).
 */
kb_err_t kb_event_attrs_from_headers(const struct kb_header *hdrs, size_t n,
                                     struct kb_event_attrs *attrs, char *errstr,
                                     size_t errstr_size);

/**
 * 1 when a header of this name is part of the event envelope that
 * kb_event_attrs_from_headers() checks (ce_specversion, ce_id, ce_source,
 * ce_type, ce_time, ce_subject, ce_dataref, ce_sequence, ce_sequencetype,
 * content-type, traceparent). Only these travel on a subscriber's copy:
 * any other header an input carries is nobody's to pass on.
 */
int kb_event_header_known(const char *name);

/** 1 when @p len bytes are a W3C traceparent ("vv-<32 hex>-<16 hex>-ff",
 *  lower-case; version 00 exactly that long). */
int kb_event_traceparent_valid(const void *value, size_t len);

/**
 * Confluent wire format: byte 0 = 0, bytes 1-4 = schema id big endian, then
 * the Avro binary payload. @p out must hold @p len + 5 bytes.
 */
void kb_event_frame(int32_t schema_id, const void *payload, size_t len, uint8_t *out);

/** Split a framed value. KB_ERR_INVALID when shorter than 5 bytes or magic != 0. */
kb_err_t kb_event_unframe(const void *buf, size_t len, int32_t *schema_id,
                          const uint8_t **payload, size_t *payload_len);

/**
 * RFC 4122 name-based UUID (version 5, SHA-1) in the ketenbus namespace for
 * @p name: the same legacy message always yields the same event id, which is
 * what lets the router drop duplicates after an adapter restart.
 */
void kb_event_uuid5(const void *name, size_t len, char out[37]);

/**
 * Pseudonym of a personal or object identifier: hex of the first 128 bits of
 * HMAC-SHA-256(@p key, @p domain ":" @p id). @p domain separates kinds of
 * identifier ("bsn", "anummer", ...). KB_ERR_INVALID when the key is shorter
 * than 16 bytes.
 */
kb_err_t kb_event_pseudonym(const uint8_t *key, size_t key_len, const char *domain,
                            const char *id, char out[KB_PSEUDONYM_LEN + 1]);

/** RFC 3339 UTC time with milliseconds for @p unix_ms, e.g. 2024-03-18T09:15:30.250Z. */
void kb_event_time(int64_t unix_ms, char out[40]);

/**
 * W3C traceparent derived from the event id (trace id = the UUID's 16
 * bytes, span id = its first 8), so a replayed event keeps its trace.
 */
void kb_event_traceparent(const char *uuid, char out[64]);

/**
 * kb_event_traceparent() of an id known to be in the 8-4-4-4-12 form, as
 * kb_event_uuid5() makes it: no check of the form (adapters call it with
 * the id they have just made, once per event).
 */
void kb_event_traceparent_uuid(const char uuid[37], char out[64]);

/**
 * Read a subject-key file: either hex text (an even number of at least 32
 * hex digits, white space around it ignored) or at least 16 raw bytes used
 * exactly as stored; at most 4096 bytes. The key never appears in logs or
 * errors.
 * On success *key is malloc'ed (caller frees) and *key_len set.
 */
kb_err_t kb_event_key_load(const char *path, uint8_t **key, size_t *key_len, char *errstr,
                           size_t errstr_size);

#endif
