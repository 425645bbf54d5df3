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

#include "ketenbus/err.h"

struct kb_spool {
    char dir[2048]; /* the spool's root folder */
};

/** Create (if needed) @p dir and its in/ done/ quarantine/ out/ folders. */
kb_err_t kb_spool_open(struct kb_spool *sp, const char *dir, char *errstr, size_t errstr_size);

/**
 * List the files waiting in in/, oldest name first (senders name files so
 * that name order is arrival order, e.g. with a timestamp prefix). On
 * success *names is a malloc'ed array of *n malloc'ed names; free with
 * kb_spool_names_free().
 */
kb_err_t kb_spool_list(const struct kb_spool *sp, char ***names, size_t *n);
void kb_spool_names_free(char **names, size_t n);

/**
 * Read in/<name> whole (at most @p max bytes; larger is KB_ERR_RANGE).
 * *buf is malloc'ed; *mtime_ms is the file's modification time, used as the
 * stable "received" time of its events.
 */
kb_err_t kb_spool_read(const struct kb_spool *sp, const char *name, size_t max, uint8_t **buf,
                       size_t *len, int64_t *mtime_ms);

/** Move in/<name> to done/<name> durably (rename + fsync of both folders). */
kb_err_t kb_spool_done(const struct kb_spool *sp, const char *name);

/** Move in/<name> to quarantine/<name> and write quarantine/<name>.reason. */
kb_err_t kb_spool_quarantine(const struct kb_spool *sp, const char *name, const char *reason);

/** Write out/<name> atomically (temp file, fsync, rename, fsync folder). */
kb_err_t kb_spool_write_out(const struct kb_spool *sp, const char *name, const void *data,
                            size_t len);

/** Path of @p sub/@p name inside the spool, into @p out. */
void kb_spool_path(const struct kb_spool *sp, const char *sub, const char *name, char *out,
                   size_t out_size);

/**
 * Write @p path atomically and durably (temp file beside it, fsync, rename,
 * fsync of the folder): shared by spools and adapter state files.
 */
kb_err_t kb_file_write_atomic(const char *path, const void *data, size_t len);

#endif
