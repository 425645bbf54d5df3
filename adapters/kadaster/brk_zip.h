/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * brk_zip.h - the zipped deliveries Kadaster ships: walk the regular files
 * of a zip archive held in memory with libarchive, never trusting the sizes
 * the archive claims (limits on entries, on each entry's and on the total
 * uncompressed size are counted while inflating, so a zip bomb stops at the
 * limit instead of filling memory).
 */
#ifndef KETENBUS_BRK_ZIP_H
#define KETENBUS_BRK_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

struct kb_brk_zip_limits {
    size_t max_entries; /* regular files in one archive */
    size_t max_entry;   /* uncompressed bytes of one entry */
    size_t max_total;   /* uncompressed bytes of all entries together */
};

void kb_brk_zip_limits_default(struct kb_brk_zip_limits *lim);

/** 1 when @p buf starts like a zip archive (local header or empty archive). */
int kb_brk_is_zip(const uint8_t *buf, size_t len);

/**
 * Called once per regular file of the archive, in archive order, with its
 * name and uncompressed bytes (valid only during the call). A non-zero
 * return stops the walk; kb_brk_zip_each() then returns KB_ERR_STATE.
 */
typedef int (*kb_brk_zip_cb)(void *arg, const char *name, const uint8_t *data, size_t len);

/**
 * Walk the zip archive @p buf. KB_ERR_INVALID (errstr says why) for a
 * corrupt or encrypted archive, KB_ERR_RANGE when a limit is exceeded; in
 * both cases the callback may already have run for earlier entries.
 * @thread any
 */
kb_err_t kb_brk_zip_each(const uint8_t *buf, size_t len, const struct kb_brk_zip_limits *lim,
                         kb_brk_zip_cb cb, void *arg, char *errstr, size_t errstr_size);

#endif
