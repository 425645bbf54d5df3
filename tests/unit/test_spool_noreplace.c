/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_spool_noreplace.c - moving a file into done/ or quarantine/ never
 * replaces an earlier file of the same name (a sender reusing a daily
 * name): the second one gets a numeric suffix, and a quarantined file keeps
 * its own .reason. Run twice: with renameat2(RENAME_NOREPLACE), and with a
 * file system that lacks it (renameat2 is replaced here to fail with
 * EINVAL, as on such a file system), where link + unlink must do the same.
 * Names near NAME_MAX, which cannot take a suffix or a ".reason", still move,
 * each time under a new name that fits.
 */
#define _GNU_SOURCE /* renameat2 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/spool.h"
#include "kb_test.h"
#include "test_spool_helpers.h"

static int no_renameat2; /* 1: behave like a file system without RENAME_NOREPLACE */
static int renameat2_calls;

/* Replaces glibc's for the spool code linked into this test. */
int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags)
{
    renameat2_calls++;
    if (no_renameat2) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

static struct kb_spool sp;

static void run(const char *root, int fallback)
{
    char dir[256], errstr[256], buf[256];
    snprintf(dir, sizeof dir, "%s/%s", root, fallback ? "fallback" : "renameat2");
    CHECK_INT(kb_spool_open(&sp, dir, errstr, sizeof errstr), KB_OK);
    no_renameat2 = fallback;

    /* done/: the same name three times, one after another */
    spool_put(&sp, "AKW02.txt", "day 1");
    CHECK_INT(kb_spool_done(&sp, "AKW02.txt", NULL), KB_OK);
    spool_put(&sp, "AKW02.txt", "day 2");
    CHECK_INT(kb_spool_done(&sp, "AKW02.txt", NULL), KB_OK);
    spool_put(&sp, "AKW02.txt", "day 3");
    CHECK_INT(kb_spool_done(&sp, "AKW02.txt", NULL), KB_OK);
    CHECK_STR(spool_slurp(&sp, "done", "AKW02.txt", buf, sizeof buf), "day 1");
    CHECK_STR(spool_slurp(&sp, "done", "AKW02.txt.1", buf, sizeof buf), "day 2");
    CHECK_STR(spool_slurp(&sp, "done", "AKW02.txt.2", buf, sizeof buf), "day 3");
    CHECK(!spool_has(&sp, "in", "AKW02.txt"));

    /* quarantine/: each file keeps its own reason */
    spool_put(&sp, "bad.lo3", "first");
    CHECK_INT(kb_spool_quarantine(&sp, "bad.lo3", NULL, "reason one"), KB_OK);
    spool_put(&sp, "bad.lo3", "second");
    CHECK_INT(kb_spool_quarantine(&sp, "bad.lo3", NULL, "reason two"), KB_OK);
    CHECK_STR(spool_slurp(&sp, "quarantine", "bad.lo3", buf, sizeof buf), "first");
    CHECK_STR(spool_slurp(&sp, "quarantine", "bad.lo3.reason", buf, sizeof buf), "reason one\n");
    CHECK_STR(spool_slurp(&sp, "quarantine", "bad.lo3.1", buf, sizeof buf), "second");
    CHECK_STR(spool_slurp(&sp, "quarantine", "bad.lo3.1.reason", buf, sizeof buf), "reason two\n");

    /* what quarantine/ holds already, under a name or its suffixed ones:
     * a retry of a failed round does not add a copy (the Kadaster adapter
     * asks before it quarantines a bad zip entry again) */
    CHECK(kb_spool_quarantined_before(&sp, "bad.lo3", "first", 5));
    CHECK(kb_spool_quarantined_before(&sp, "bad.lo3", "second", 6));
    CHECK(!kb_spool_quarantined_before(&sp, "bad.lo3", "third", 5));
    CHECK(!kb_spool_quarantined_before(&sp, "bad.lo3", "firs", 4));
    CHECK(!kb_spool_quarantined_before(&sp, "never.lo3", "first", 5));

    /* a reason left behind without its file (a crash between the two) is
     * not taken over either */
    char path[4200];
    kb_spool_path(&sp, "quarantine", "orphan.lo3.reason", path, sizeof path);
    CHECK_INT(kb_file_write_atomic(path, "old\n", 4), KB_OK);
    spool_put(&sp, "orphan.lo3", "x");
    CHECK_INT(kb_spool_quarantine(&sp, "orphan.lo3", NULL, "new"), KB_OK);
    CHECK_STR(spool_slurp(&sp, "quarantine", "orphan.lo3.reason", buf, sizeof buf), "old\n");
    CHECK_STR(spool_slurp(&sp, "quarantine", "orphan.lo3.1.reason", buf, sizeof buf), "new\n");
    CHECK_STR(spool_slurp(&sp, "quarantine", "orphan.lo3.1", buf, sizeof buf), "x");

    /* nothing to move: an error, and no reason file left behind */
    CHECK_INT(kb_spool_done(&sp, "missing.lo3", NULL), KB_ERR_IO);
    CHECK(kb_spool_quarantine(&sp, "missing.lo3", NULL, "r") != KB_OK);
    CHECK(!spool_has(&sp, "quarantine", "missing.lo3.reason"));
}

/* Name of @p len bytes: "<len>-" then "é" (2 bytes) up to the last one or two. */
static void long_name(char *out, size_t len)
{
    size_t at = (size_t)snprintf(out, len + 1, "%zu-", len);
    while (at + 2 <= len) {
        memcpy(out + at, "\xc3\xa9", 2);
        at += 2;
    }
    if (at < len)
        out[at++] = 'x';
    out[at] = '\0';
}

/* 1 when @p s is whole UTF-8 sequences: a cut name stays text. */
static int utf8_whole(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p == 0xc3 && p[1] != 0xa9)
            return 0;
        else if (*p == 0xa9 && (p == (const unsigned char *)s || p[-1] != 0xc3))
            return 0;
    return 1;
}

/* Every name in quarantine/ that is not a .reason: NAME_MAX fits it and
 * its .reason, and each "copy N" lies beside "reason N"; their number. */
static int check_quarantine_pairs(const struct kb_spool *s)
{
    char dir[4200], buf[256], want[64];
    kb_spool_path(s, "quarantine", NULL, dir, sizeof dir);
    DIR *d = opendir(dir);
    int files = 0;
    CHECK(d != NULL);
    for (struct dirent *de; d && (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || (l > 7 && !strcmp(de->d_name + l - 7, ".reason")))
            continue;
        char reason[300];
        CHECK(l + 7 <= NAME_MAX);
        CHECK(utf8_whole(de->d_name));
        snprintf(reason, sizeof reason, "%s.reason", de->d_name);
        unsigned n = 0;
        CHECK_INT(sscanf(spool_slurp(s, "quarantine", de->d_name, buf, sizeof buf), "copy %u", &n),
                  1);
        snprintf(want, sizeof want, "reason %u\n", n);
        CHECK_STR(spool_slurp(s, "quarantine", reason, buf, sizeof buf), want);
        files++;
    }
    if (d)
        closedir(d);
    return files;
}

/* The same name of 250 to 255 bytes three times into done/ and three times
 * into quarantine/: each move succeeds, under a name that fits, never over
 * an earlier file, done/ under the name kb_spool_done_name() told. */
static void long_names(const char *root, int fallback)
{
    char dir[256], errstr[256], buf[256];
    snprintf(dir, sizeof dir, "%s/%s-long", root, fallback ? "fallback" : "renameat2");
    CHECK_INT(kb_spool_open(&sp, dir, errstr, sizeof errstr), KB_OK);
    no_renameat2 = fallback;
    int quarantined = 0;
    for (size_t len = 250; len <= NAME_MAX; len++) {
        char name[NAME_MAX + 1], text[64], reason[64], done[3][300];
        long_name(name, len);
        for (int i = 0; i < 3; i++) {
            snprintf(text, sizeof text, "copy %d", i);
            spool_put(&sp, name, text);
            CHECK_INT(kb_spool_done_name(&sp, name, done[i], sizeof done[i]), KB_OK);
            CHECK(strlen(done[i]) <= NAME_MAX);
            CHECK(utf8_whole(done[i]));
            CHECK(i == 0 || strcmp(done[i], done[i - 1]));
            CHECK_INT(kb_spool_done(&sp, name, NULL), KB_OK);
            CHECK(!spool_has(&sp, "in", name));
        }
        for (int i = 0; i < 3; i++) {
            snprintf(text, sizeof text, "copy %d", i);
            CHECK_STR(spool_slurp(&sp, "done", done[i], buf, sizeof buf), text);
        }
        for (int i = 0; i < 3; i++) {
            snprintf(text, sizeof text, "copy %d", i);
            snprintf(reason, sizeof reason, "reason %d", i);
            spool_put(&sp, name, text);
            CHECK_INT(kb_spool_quarantine(&sp, name, NULL, reason), KB_OK);
            CHECK(!spool_has(&sp, "in", name));
            CHECK(kb_spool_quarantined_before(&sp, name, text, strlen(text)));
            quarantined++;
        }
        CHECK(!kb_spool_quarantined_before(&sp, name, "copy 3", 6));
    }
    CHECK_INT(check_quarantine_pairs(&sp), quarantined);
}

int main(void)
{
    char root[] = "/tmp/kb-test-spool-noreplace-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    run(root, 0);
    long_names(root, 0);
    CHECK(renameat2_calls > 0); /* the spool code did go through it */
    run(root, 1);
    long_names(root, 1);
    CHECK_INT(kb_test_rm_tree(root), 0);
    KB_TEST_DONE();
}
