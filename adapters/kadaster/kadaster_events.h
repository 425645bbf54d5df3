/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * kadaster_events.h - from BRK Levering delivery files to events:
 *   mutation with a new tenaamstelling based on a deed of sale (aard 001)
 *                                     -> nl.brk.eigendom-overgedragen
 *   mutation without `wordt`          -> nl.brk.kadastraal-object-vervallen
 *   any other mutation, stand snapshot -> nl.brk.kadastraal-object-gemuteerd
 *
 * A batch collects the documents of one delivery (the files of one spool
 * scan, each plain XML or a zip of XML files). Events are built for the
 * whole batch at once so that (1) per kadastraal object they come out in
 * (brkDatum, volgnummer) order whatever the file order was, and (2) all
 * events caused by one deed carry the same group id with "n of m".
 */
#ifndef KETENBUS_KADASTER_EVENTS_H
#define KETENBUS_KADASTER_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "brk_xml.h"
#include "brk_zip.h"
#include "ingress.h"
#include "ketenbus/schema.h"

struct kb_kadaster_ctx {
    const kb_schemas_t *schemas; /* where event schemas are looked up */
    const uint8_t *key;          /* subject-key secret for ce_subject; NULL: no subject */
    size_t key_len;
    const char *source; /* ce_source */
};

/** Room for a document's ce_dataref: the file's URI and "#" its ZIP entry
 *  (events leave out one longer than the header takes). */
#define KB_KADASTER_DATAREF_MAX 1024

/** One well-formed, checked document of a batch. */
struct kb_kadaster_doc {
    char name[512];      /* file name, "zip!entry" for zip entries */
    char sha256[65];     /* of the XML bytes */
    char dataref[KB_KADASTER_DATAREF_MAX]; /* where the original is archived, or "" */
    int64_t received_ms; /* file modification time */
    size_t file_index;   /* caller's index of the delivery file */
    struct kb_brk_doc brk;
};

struct kb_kadaster_batch {
    struct kb_brk_limits xml;     /* limits per XML document */
    struct kb_brk_zip_limits zip; /* limits per zip archive */
    struct kb_kadaster_doc *docs; /* accepted documents */
    size_t n_docs;
    /* Set by the caller after kb_kadaster_batch_init() (not owned, must
     * outlive the batch): a document whose events would not fit
     * max_event is then refused when added, with rule "size", while
     * its bytes are at hand. NULL: not checked before kb_kadaster_events(),
     * which then fails the whole batch on such a document. */
    const struct kb_kadaster_ctx *ctx;
    size_t max_event; /* largest event value (framed Avro) the producer takes, in bytes;
                         0 (after init): KB_INGRESS_MAX_EVENT */
};

/**
 * A document (or a whole file, @p whole_file = 1) the batch refuses: its
 * raw bytes (valid during the call), a rule ("xml", "brk-semantics", "zip",
 * "size") and a reason without personal data. Returns 0 when the reject was
 * recorded durably; non-zero makes kb_kadaster_batch_add() fail with
 * KB_ERR_STATE, so the caller keeps the file for a retry.
 */
typedef int (*kb_kadaster_reject_cb)(void *arg, size_t file_index, const char *document,
                                     int whole_file, const uint8_t *raw, size_t len,
                                     const char *rule, const char *reason);

void kb_kadaster_batch_init(struct kb_kadaster_batch *b);
void kb_kadaster_batch_fini(struct kb_kadaster_batch *b);

/**
 * Add delivery file @p name (@p len bytes: one XML document, or a zip of
 * them) to @p b. Every document either joins the batch or goes to @p reject.
 * @p dataref_base (may be NULL) is the archive URI of the file.
 * KB_ERR_NOMEM, or KB_ERR_STATE when @p reject failed.
 */
kb_err_t kb_kadaster_batch_add(struct kb_kadaster_batch *b, size_t file_index, const char *name,
                               const uint8_t *buf, size_t len, int64_t received_ms,
                               const char *dataref_base, kb_kadaster_reject_cb reject, void *arg);

/**
 * Check the business rules of a parsed document (dates, identifiers, the
 * 11-proef of BSN and RSIN, references that resolve inside each snapshot).
 * KB_ERR_INVALID with errstr naming the element path, never a value.
 */
kb_err_t kb_kadaster_check(const struct kb_brk_doc *doc, char *errstr, size_t errstr_size);

/**
 * Events of the whole batch, in publication order. On success *evs is a
 * malloc'ed array of *n events with malloc'ed values; free with
 * kb_kadaster_events_free(). The Kafka key is the kadastraal object id.
 * No event is larger than b->max_event: KB_ERR_RANGE when one would be
 * (only possible when the batch had no ctx when its documents were added).
 */
kb_err_t kb_kadaster_events(const struct kb_kadaster_ctx *ctx, struct kb_kadaster_batch *b,
                            struct kb_ingress_event **evs, size_t *n, char *errstr,
                            size_t errstr_size);

void kb_kadaster_events_free(struct kb_ingress_event *evs, size_t n);

/**
 * One event as a JSON line (no newline): its CloudEvents attributes, key
 * and the payload decoded back from the Avro bytes as plain JSON. Returns a
 * malloc'ed string, or NULL with errstr set.
 */
char *kb_kadaster_event_json(const kb_schemas_t *schemas, const struct kb_ingress_event *ev,
                             char *errstr, size_t errstr_size);

/**
 * The `decode` command as a function: read the files @p paths (one
 * delivery together), write every event as a JSON line to @p out and every
 * refused document as {"quarantine": {document, rule, reason, sha256}}.
 * File names are reported without their folder; @p received_ms >= 0
 * replaces the files' modification times (for reproducible output); a
 * document with an event over @p max_event bytes (0: KB_INGRESS_MAX_EVENT)
 * is refused with rule "size", as ingest refuses it.
 * Returns the number of refused documents, or -1 with errstr set.
 */
int kb_kadaster_decode(const struct kb_kadaster_ctx *ctx, const char *const *paths, size_t n,
                       int64_t received_ms, size_t max_event, FILE *out, char *errstr,
                       size_t errstr_size);

#endif
