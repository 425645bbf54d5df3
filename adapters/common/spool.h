/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * spool.h - spool folders, the file transport of legacy peers. A spool has
 * in/ (senders drop files here: write under a name starting with "." and
 * rename, so a half-written file is never picked up), done/ (files whose
 * events Kafka acknowledged), quarantine/ (files that could not be read,
 * each with a .reason file beside it) and out/ (files an egress adapter
 * writes for its legacy peer, again by write-then-rename).
 */
#ifndef KETENBUS_SPOOL_H
#define KETENBUS_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ketenbus/err.h"

/* Failed reads of one file, one per scan, before it goes to quarantine/. */
#define KB_SPOOL_READ_ATTEMPTS 3
/* Unreadable files counted at one time; beyond that the least-tried is forgotten. */
#define KB_SPOOL_FAILING_MAX 32

/* A file of in/ whose reads failed, counted until a read succeeds or it is quarantined. */
struct kb_spool_failing {
    char name[256];    /* its name in in/ (NAME_MAX fits); "" for a free slot */
    unsigned attempts; /* failed reads in a row */
};

/*
 * The file kb_spool_read() read under a name of in/. The protocol lets a
 * sender rename a new file over a name that is still waiting, also while
 * the adapter handles the old one; kb_spool_done() and kb_spool_quarantine()
 * move a name only while it still holds this file, so the new one is read
 * by the next scan instead of being archived unread.
 */
struct kb_spool_file {
    dev_t dev;        /* file system of the file ... */
    ino_t ino;        /* ... and its inode there: which file it is */
    off_t size;       /* size and modification time as read: an inode */
    int64_t mtime_ns; /* number freed and given to a later file differs here */
};

struct kb_spool {
    char dir[2048];                                        /* the spool's root folder */
    struct kb_spool_failing failing[KB_SPOOL_FAILING_MAX]; /* see kb_spool_read() */
};

/** Create (if needed) @p dir and its in/ done/ quarantine/ out/ folders. */
kb_err_t kb_spool_open(struct kb_spool *sp, const char *dir, char *errstr, size_t errstr_size);

/**
 * List the files waiting in in/, oldest name first (senders name files so
 * that name order is arrival order, e.g. with a timestamp prefix). On
 * success *names is a malloc'ed array of *n malloc'ed names; free with
 * kb_spool_names_free(). Links, fifos and sockets are quarantined unread.
 * @thread the one thread that scans @p sp (it forgets failed reads of
 *         files that are gone, see kb_spool_read())
 */
kb_err_t kb_spool_list(struct kb_spool *sp, char ***names, size_t *n);
void kb_spool_names_free(char **names, size_t n);

/**
 * Read in/<name> whole (at most @p max bytes; larger is KB_ERR_RANGE, with
 * nothing read: the caller quarantines it with its own reason). *buf is
 * malloc'ed; *mtime_ms is the file's modification time, used as the stable
 * "received" time of its events. *@p file (when not NULL) is set on KB_OK
 * and KB_ERR_RANGE: which file was read, for kb_spool_done() or
 * kb_spool_quarantine() to move that file and no other.
 *
 * Any other error means the file cannot be read now. It is logged here
 * (errno, never name or content) and the caller skips it and goes on with
 * later files: one unreadable file must not hold up every file behind it.
 * A file turned into a link, fifo or socket since the listing is quarantined
 * at once (that will not heal); any other failure is counted per name, and
 * the KB_SPOOL_READ_ATTEMPTS-th failed read in a row moves the file to
 * quarantine/ with the errno in its .reason. Not counted: a file gone or
 * turned into a folder since the listing, and failures of the process
 * rather than the file (out of memory, out of file descriptors).
 * Callers read each file once per scan, so attempts are scans.
 * @thread the one thread that scans @p sp
 */
kb_err_t kb_spool_read(struct kb_spool *sp, const char *name, size_t max, uint8_t **buf,
                       size_t *len, int64_t *mtime_ms, struct kb_spool_file *file);

/*
 * Moves into done/ and quarantine/ never replace a file: a sender may reuse
 * a name (a daily "AKW02.txt"), and the earlier file is the archive its
 * events point at. A taken name gets a numeric suffix: <name>.1, <name>.2,
 * ..., skipping suffixed names that are still waiting in in/ (so that every
 * name's place can be told before any file moves, see kb_spool_done_name()).
 * A name that would then exceed NAME_MAX (in quarantine/: with ".reason" and
 * the temp file written before it) is cut and marked with the SHA-256 of the
 * whole name: <start of name>~<8 hex digits>[.<N>]; a cut quarantined file
 * keeps its own .reason beside it, under that cut name.
 */

/**
 * The name in/<name> will get in done/: <name>, or <name>.<N> when taken.
 * Tell it before producing, so that ce_dataref names the file the events
 * came from. Stays true until done/ changes: done/ is written by its
 * adapter's scanning thread, and by a frame transport (TCP, HTTP) only
 * under names of its own (kb_spool_stage()). KB_ERR_RANGE when @p out is
 * too small.
 */
kb_err_t kb_spool_done_name(const struct kb_spool *sp, const char *name, char *out,
                            size_t out_size);

/*
 * kb_spool_done() and kb_spool_quarantine() given the @p file that
 * kb_spool_read() read move in/<name> only while it is still that file.
 * When a sender renamed a new file over the name meanwhile, the old file is
 * gone (the sender's rename replaced it) and the new one has not been read:
 * it is left in in/ for the next scan, a warning is logged (the name only,
 * withheld when it may hold a BSN or A-nummer), and the call is KB_OK, as
 * the old file's handling is over. @p file NULL moves whatever the name
 * holds: for files that were never read (not regular, unreadable).
 */

/** Move in/<name> to done/ (under kb_spool_done_name()) durably: rename + fsync of both folders. */
kb_err_t kb_spool_done(const struct kb_spool *sp, const char *name,
                       const struct kb_spool_file *file);

/** Move in/<name> to quarantine/ (suffixed when taken) beside a .reason file holding @p reason. */
kb_err_t kb_spool_quarantine(const struct kb_spool *sp, const char *name,
                             const struct kb_spool_file *file, const char *reason);

/**
 * The name in quarantine/ of a piece of the file @p name (a refused record:
 * @p suffix ".regel-2"): "<name><suffix>", or, when that with ".reason" and
 * the temp file would exceed NAME_MAX, cut as above: "<start>~<hash><suffix>".
 * The same for the same arguments, so a retry rewrites the same file.
 * KB_ERR_RANGE when @p out (@p out_size bytes) is too small.
 */
kb_err_t kb_spool_piece_name(const char *name, const char *suffix, char *out, size_t out_size);

/**
 * Write @p data (@p len bytes), a piece of or an item from @p name, to
 * quarantine/ under kb_spool_piece_name(@p name, @p suffix), with
 * @p reason (@p reason_len bytes) beside it in "<that>.reason". A retry
 * finds its own bytes there and rewrites them. A name that holds other
 * bytes is kept and "<suffix>.1", "<suffix>.2", ... are tried instead: a
 * newer file renamed over a name still being handled, a topic made again
 * with its offsets from 0. KB_ERR_RANGE when every candidate is taken,
 * else the errors of kb_file_write_atomic().
 */
kb_err_t kb_spool_quarantine_piece(const struct kb_spool *sp, const char *name, const char *suffix,
                                   const void *data, size_t len, const char *reason,
                                   size_t reason_len);

/**
 * 1 when quarantine/ already holds these @p len bytes as <name> or one of
 * its suffixed candidates <name>.N: a retry of a round that quarantined
 * them before (and then failed elsewhere) must not add another copy each
 * time. 0 otherwise, also when a candidate cannot be read.
 */
int kb_spool_quarantined_before(const struct kb_spool *sp, const char *name, const void *data,
                                size_t len);

/*
 * Staging, for messages that arrive over a network transport rather than in
 * in/: kb_spool_stage() writes done/.<name>.staged durably before the
 * message's events are produced; then exactly one of kb_spool_stage_done()
 * (Kafka acknowledged), kb_spool_stage_quarantine() (rejected) or
 * kb_spool_stage_drop() (not durable: the sender resends) ends it. Thus
 * done/ holds only messages whose events Kafka holds. @p name must name the
 * content (e.g. by its SHA-256): a resent message stages to the same file,
 * and a done/<name> that exists already holds the same bytes. A crash
 * between kb_spool_stage() and the end of the staging (before the events
 * were produced, or between the broker's acknowledgement and
 * kb_spool_stage_done()) leaves the staged file: at its next start the
 * adapter finds it with kb_spool_staged_each(), reads it back with
 * kb_spool_stage_read() and handles it as if it had just arrived (producing
 * again is safe where event ids derive from the content), so its events'
 * ce_dataref does not name a file that never reaches done/. Until then a
 * resend by the sender, never answered, completes it as well.
 */
kb_err_t kb_spool_stage(const struct kb_spool *sp, const char *name, const void *data, size_t len);

/** Move the staged <name> to done/<name>; when that exists (same bytes) drop the staged copy. */
kb_err_t kb_spool_stage_done(const struct kb_spool *sp, const char *name);

/** Move the staged <name> to quarantine/ (suffixed when taken) with @p reason beside it. */
kb_err_t kb_spool_stage_quarantine(const struct kb_spool *sp, const char *name,
                                   const char *reason);

/** Delete the staged <name>. */
kb_err_t kb_spool_stage_drop(const struct kb_spool *sp, const char *name);

/**
 * Call @p fn with the <name> of every message staged in done/ (each
 * regular file done/.<name>.staged), in name order: at a start, what a
 * crash left staged. Anything else in done/ is skipped, the temp files of
 * kb_file_write_atomic() included. The names are listed before the first
 * call, so @p fn may end the staging of the name it is given; the name
 * stays valid during the call only. A nonzero return from @p fn stops the
 * walk (still KB_OK). KB_ERR_IO when done/ cannot be listed, KB_ERR_NOMEM.
 * @thread at a start, before any thread stages into @p sp
 */
kb_err_t kb_spool_staged_each(const struct kb_spool *sp, int (*fn)(void *opaque, const char *name),
                              void *opaque);

/**
 * Read the staged <name> whole: at most @p max bytes (larger is
 * KB_ERR_RANGE, nothing read). *buf is malloc'ed and the caller's to free;
 * *mtime_ms is the file's modification time, when it was staged. A name
 * that is not staged is KB_ERR_NOTFOUND; a link or other non-regular file
 * is not read (KB_ERR_IO, like any failed read, with errno saying why).
 * Nothing is logged or moved here: what to do with a file that cannot be
 * read is the caller's choice.
 */
kb_err_t kb_spool_stage_read(const struct kb_spool *sp, const char *name, size_t max, uint8_t **buf,
                             size_t *len, int64_t *mtime_ms);

/** Write out/<name> atomically (temp file, fsync, rename, fsync folder). */
kb_err_t kb_spool_write_out(const struct kb_spool *sp, const char *name, const void *data,
                            size_t len);

/**
 * The quarantine reason of in/@p name, a file kb_spool_read() refused as
 * larger than @p limit bytes: "<rule>: file larger than <limit> (<size>
 * bytes, sha256 <hex>); not read, kept in the quarantine folder", into
 * @p out. The SHA-256 is read in pieces (the file is too large to hold),
 * up to 1 GiB; beyond that, or when the file cannot be read, it says "not
 * computed". The caller puts the reason on its quarantine topic (no bytes
 * of the file) and then moves the file with kb_spool_quarantine(), as for
 * every refused input.
 */
void kb_spool_oversize_reason(const struct kb_spool *sp, const char *name, const char *rule,
                              size_t limit, char *out, size_t out_size);

/** Path of @p sub/@p name inside the spool, into @p out. */
void kb_spool_path(const struct kb_spool *sp, const char *sub, const char *name, char *out,
                   size_t out_size);

/**
 * Write @p path atomically and durably (temp file beside it, fsync, rename,
 * fsync of the folder): shared by spools and adapter state files.
 */
kb_err_t kb_file_write_atomic(const char *path, const void *data, size_t len);

#endif
