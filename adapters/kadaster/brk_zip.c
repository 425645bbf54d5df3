/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * brk_zip.c - zip deliveries through libarchive (see brk_zip.h). Only the
 * zip format is enabled, so a renamed tarball or a compressed stream is a
 * clear "not a zip archive" rather than something half-understood.
 */
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "brk_zip.h"

void kb_brk_zip_limits_default(struct kb_brk_zip_limits *lim)
{
    lim->max_entries = 100000;
    lim->max_entry = 64u << 20;
    lim->max_total = 1u << 30;
}

int kb_brk_is_zip(const uint8_t *buf, size_t len)
{
    return len >= 4 && buf[0] == 'P' && buf[1] == 'K' &&
           ((buf[2] == 3 && buf[3] == 4) || (buf[2] == 5 && buf[3] == 6));
}

kb_err_t kb_brk_zip_each(const uint8_t *buf, size_t len, const struct kb_brk_zip_limits *lim,
                         kb_brk_zip_cb cb, void *arg, char *errstr, size_t errstr_size)
{
    struct kb_brk_zip_limits deflim;
    if (!lim) {
        kb_brk_zip_limits_default(&deflim);
        lim = &deflim;
    }
    struct archive *a = archive_read_new();
    if (!a)
        return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    kb_err_t err = KB_OK;
    uint8_t *data = NULL;
    size_t cap = 0, entries = 0, total = 0;
    archive_read_support_format_zip(a);
    if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "not a readable zip archive");
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                             "corrupt zip archive after %zu entries", entries);
            goto out;
        }
        if (archive_entry_filetype(e) != AE_IFREG)
            continue; /* folders */
        if (archive_entry_is_encrypted(e)) {
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "zip entry %zu is encrypted",
                             entries + 1);
            goto out;
        }
        if (++entries > lim->max_entries) {
            err = kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                             "zip archive has more than %zu entries", lim->max_entries);
            goto out;
        }
        /* A bomb that admits its size is refused before inflating a byte;
         * one that lies is stopped by the counts below. */
        if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
            (uint64_t)archive_entry_size(e) > lim->max_entry) {
            /* same words as when inflating finds it: reasons stay stable */
            err = kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                             "zip entry %zu inflates beyond %zu bytes", entries, lim->max_entry);
            goto out;
        }
        const char *name = archive_entry_pathname(e);
        size_t n = 0;
        for (;;) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 65536;
                if (ncap > lim->max_entry + 1)
                    ncap = lim->max_entry + 1;
                if (ncap <= cap) {
                    err = kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                                     "zip entry %zu inflates beyond %zu bytes", entries,
                                     lim->max_entry);
                    goto out;
                }
                uint8_t *nd = realloc(data, ncap);
                if (!nd) {
                    err = kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
                    goto out;
                }
                data = nd;
                cap = ncap;
            }
            la_ssize_t got = archive_read_data(a, data + n, cap - n);
            if (got < 0) {
                err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                                 "zip entry %zu cannot be inflated", entries);
                goto out;
            }
            if (got == 0)
                break;
            n += (size_t)got;
            total += (size_t)got;
            if (n > lim->max_entry) {
                err =
                    kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                               "zip entry %zu inflates beyond %zu bytes", entries, lim->max_entry);
                goto out;
            }
            if (total > lim->max_total) {
                err = kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                                 "zip archive inflates beyond %zu bytes", lim->max_total);
                goto out;
            }
        }
        if (cb(arg, name ? name : "", data ? data : (const uint8_t *)"", n)) {
            err = KB_ERR_STATE;
            goto out;
        }
    }
out:
    free(data);
    archive_read_free(a);
    return err;
}
