/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_spool_helpers.h - files in a spool's folders for the spool tests:
 * drop one into in/, read one back, ask whether one is there. Include after
 * kb_test.h.
 */
#ifndef KB_TEST_SPOOL_HELPERS_H
#define KB_TEST_SPOOL_HELPERS_H

#include <stdio.h>
#include <sys/stat.h>

#include "common/spool.h"

/* Write in/@p name of @p sp holding @p text. */
static inline void spool_put(const struct kb_spool *sp, const char *name, const char *text)
{
    char path[4200];
    kb_spool_path(sp, "in", name, path, sizeof path);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The content of @p sub/@p name (NUL-terminated, cut to @p size), or "". */
static inline const char *spool_slurp(const struct kb_spool *sp, const char *sub,
                                      const char *name, char *out, size_t size)
{
    char path[4200];
    kb_spool_path(sp, sub, name, path, sizeof path);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, size - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return out;
}

/* 1 when @p sub/@p name exists (links not followed). */
static inline int spool_has(const struct kb_spool *sp, const char *sub, const char *name)
{
    char path[4200];
    struct stat st;
    kb_spool_path(sp, sub, name, path, sizeof path);
    return lstat(path, &st) == 0;
}

#endif
