/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * svb_ingest.h - SVB ingress: AKW02 applications (ketenbus's own record
 * design, README.md) become nl.kinderbijslag.aanvraag-ontvangen events on
 * <prefix>.in.svb. A spool file holds one record per line; each record is
 * judged on its own: good ones are published, bad ones quarantined with
 * their rule (akw02-length, -recordtype, -bsn, -iban, -date, -field).
 *
 * Invariants:
 *  1. A spool file leaves in/ only after Kafka acknowledged every event and
 *     every quarantine message of it (kb_ingress_send/_quarantine returned
 *     KB_OK); on any failure it stays for the next round.
 *  1a. A file costs bounded memory and time whatever its content: events
 *     are sent 1,024 at a time, and after 1,000 refused records the rest
 *     of the file is quarantined unjudged as one message (rule
 *     akw02-too-many-refused). A file over 8 MiB is not read: its reason,
 *     size and SHA-256 go to the quarantine topic, the file to quarantine/.
 *  2. Event ids derive from the record bytes, so a file read twice (crash
 *     between ack and move) yields the same ids and the router drops the
 *     duplicates; the per-record quarantine files are rewritten identically.
 *  3. No value of a record (BSN, IBAN) reaches a log, key, header or reason.
 *
 *     in/<f> --kb_svb_ingest_file()--> every line parsed
 *       some good  --> bad lines: kb.quarantine.svb + quarantine/<d>.regel-<n>
 *                      good lines: kb.in.svb --> done/<d>
 *       none good  --> kb.quarantine.svb (each line) --> quarantine/<f> (+ .reason)
 *       > 1,000 bad --> as above, the rest as one message, in quarantine/
 *                      <d>.vanaf-regel-<n> (some good) or with <f> (none good)
 *       over 8 MiB --> kb.quarantine.svb (reason, SHA-256) --> quarantine/<f>
 *       Kafka down --> <f> stays in in/
 *       unreadable --> <f> stays in in/, later files go on (kb_spool_read())
 *     where <d> is <f>, or <f>.<N> when a sender reused the name
 *     (kb_spool_done_name()); a piece's name too long for NAME_MAX is cut
 *     (kb_spool_piece_name()).
 */
#ifndef KETENBUS_SVB_INGEST_H
#define KETENBUS_SVB_INGEST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "akw.h"
#include "ingress.h"
#include "ketenbus/schema.h"
#include "spool.h"

/** What building an event needs; nothing here is owned. */
struct kb_svb_ingest_ctx {
    const kb_schemas_t *schemas; /* must hold nl.kinderbijslag.aanvraag-ontvangen */
    const uint8_t *key;          /* subject key: the Kafka key is a pseudonym of the applicant */
    size_t key_len;
    const char *source;          /* ce_source */
};

enum kb_svb_transport { KB_SVB_SPOOL = 0, KB_SVB_TCP = 1 };

/**
 * Build the aanvraag-ontvangen event for the parsed @p rec, read from the
 * raw record @p raw (@p raw_len bytes, without line end) at line @p regel
 * (0 for TCP). On success ev->value is malloc'ed (free it). Its id is a
 * UUIDv5 of source and the SHA-256 of @p raw.
 */
kb_err_t kb_svb_akw02_event(const struct kb_svb_ingest_ctx *ctx, const struct kb_akw02 *rec,
                            const char *raw, size_t raw_len, enum kb_svb_transport transport,
                            int regel, int64_t received_ms, const char *dataref,
                            struct kb_ingress_event *ev, char *errstr, size_t errstr_size);

/** Days since 1970-01-01 of the calendar date JJJJMMDD @p date (Avro "date"). */
int32_t kb_svb_epoch_days(const char *date);

/**
 * Process in/@p name of @p spool: see the diagram above. 0 when the file
 * left in/ (to done/ or quarantine/), -1 when it must be retried (Kafka did
 * not acknowledge: later files would fare alike), 1 when it could not be
 * read now (kb_spool_read() logged it and quarantines it in time): go on
 * with later files. @p done_uri is the file:// URI of done/, for ce_dataref.
 * kb_svb_ingest_lock (if set) is taken around each Kafka call only, so
 * another thread may use @p ing between them.
 * @thread the one thread that scans @p spool
 */
int kb_svb_ingest_file(const struct kb_svb_ingest_ctx *ctx, kb_ingress_t *ing,
                       struct kb_spool *spool, const char *done_uri, const char *name);

/** Counters of kb_svb_ingest_file() and the TCP handler since start. */
struct kb_svb_ingest_stats {
    size_t records;     /* AKW02 records published */
    size_t quarantined; /* records quarantined */
};

/** The process-wide counters (one ingest loop per process). */
extern struct kb_svb_ingest_stats kb_svb_ingest_stats;

/**
 * NULL (one thread), or the mutex of an ingress shared by the spool loop and
 * the TCP thread: held around each Kafka call and counter update, never
 * across a whole file. Set once before either thread starts.
 */
extern pthread_mutex_t *kb_svb_ingest_lock;

/**
 * Handle one AKW02 record that arrived as a TCP frame: 'A' published,
 * 'R' quarantined (reason set), 'N' not durable (reason set, resend).
 * Takes kb_svb_ingest_lock (if set) around its Kafka calls.
 */
char kb_svb_ingest_frame(const struct kb_svb_ingest_ctx *ctx, kb_ingress_t *ing,
                         const uint8_t *frame, size_t len, char *reason, size_t reason_size);

#endif
