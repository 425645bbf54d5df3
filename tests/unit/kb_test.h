/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * kb_test.h - the tiny assertion harness of the unit tests: each test file is
 * its own executable (one process per test file, run by ctest with a
 * timeout); a failed check prints file:line and the values, and the process
 * exits non-zero at the end.
 */
#ifndef KB_TEST_H
#define KB_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int kb_test_failures;
static int kb_test_checks;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        kb_test_checks++;                                                                \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);     \
            kb_test_failures++;                                                          \
        }                                                                                \
    } while (0)

#define CHECK_INT(a, b)                                                                  \
    do {                                                                                 \
        long long va_ = (long long)(a), vb_ = (long long)(b);                            \
        kb_test_checks++;                                                                \
        if (va_ != vb_) {                                                                \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__,        \
                    __LINE__, #a, va_, #b, vb_);                                         \
            kb_test_failures++;                                                          \
        }                                                                                \
    } while (0)

#define CHECK_STR(a, b)                                                                  \
    do {                                                                                 \
        const char *sa_ = (a), *sb_ = (b);                                               \
        kb_test_checks++;                                                                \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                     \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,          \
                    __LINE__, #a, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");           \
            kb_test_failures++;                                                          \
        }                                                                                \
    } while (0)

/* Compare a byte slice (not NUL-terminated) with a string. */
#define CHECK_MEM(ptr, len, str)                                                         \
    do {                                                                                 \
        const void *pa_ = (ptr);                                                         \
        size_t la_ = (len);                                                              \
        const char *sb_ = (str);                                                         \
        kb_test_checks++;                                                                \
        if (la_ != strlen(sb_) || memcmp(pa_, sb_, la_) != 0) {                          \
            fprintf(stderr, "%s:%d: %s == \"%.*s\", expected \"%s\"\n", __FILE__,        \
                    __LINE__, #ptr, (int)la_, (const char *)pa_, sb_);                   \
            kb_test_failures++;                                                          \
        }                                                                                \
    } while (0)

/* Seconds on the monotonic clock: for checks that something answered, or
 * waited, within a bound. */
/* Remove a test's temporary tree @p dir (made with mkdtemp): the status of
 * rm -rf, or -1 when the command does not fit. */
static inline int kb_test_rm_tree(const char *dir)
{
    char cmd[4200];
    int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return n > 0 && (size_t)n < sizeof cmd ? system(cmd) : -1;
}

static inline double kb_test_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define KB_TEST_DONE()                                                                   \
    do {                                                                                 \
        printf("%d checks, %d failed\n", kb_test_checks, kb_test_failures);              \
        return kb_test_failures ? 1 : 0;                                                 \
    } while (0)

#endif
