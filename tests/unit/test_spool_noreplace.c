/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_spool_noreplace.c - moving a file into done/ or quarantine/ never
 * replaces an earlier file of the same name (a sender reusing a daily
 * name): the second one gets a numeric suffix, and a quarantined file keeps
 * its own .reason. Run twice: with renameat2(RENAME_NOREPLACE), and with a
 * file system that lacks it (renameat2 is replaced here to fail with
 * EINVAL, as on such a file system), where link + unlink must do the same.
 */
#define _GNU_SOURCE /* renameat2 */
#include <errno.h>
#include <fcntl.h>
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
    CHECK_INT(kb_spool_done(&sp, "AKW02.txt"), KB_OK);
    spool_put(&sp, "AKW02.txt", "day 2");
    CHECK_INT(kb_spool_done(&sp, "AKW02.txt"), KB_OK);
    spool_put(&sp, "AKW02.txt", "day 3");
    CHECK_INT(kb_spool_done(&sp, "AKW02.txt"), KB_OK);
    CHECK_STR(spool_slurp(&sp, "done", "AKW02.txt", buf, sizeof buf), "day 1");
    CHECK_STR(spool_slurp(&sp, "done", "AKW02.txt.1", buf, sizeof buf), "day 2");
    CHECK_STR(spool_slurp(&sp, "done", "AKW02.txt.2", buf, sizeof buf), "day 3");
    CHECK(!spool_has(&sp, "in", "AKW02.txt"));

    /* quarantine/: each file keeps its own reason */
    spool_put(&sp, "bad.lo3", "first");
    CHECK_INT(kb_spool_quarantine(&sp, "bad.lo3", "reason one"), KB_OK);
    spool_put(&sp, "bad.lo3", "second");
    CHECK_INT(kb_spool_quarantine(&sp, "bad.lo3", "reason two"), KB_OK);
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
    CHECK_INT(kb_spool_quarantine(&sp, "orphan.lo3", "new"), KB_OK);
    CHECK_STR(spool_slurp(&sp, "quarantine", "orphan.lo3.reason", buf, sizeof buf), "old\n");
    CHECK_STR(spool_slurp(&sp, "quarantine", "orphan.lo3.1.reason", buf, sizeof buf), "new\n");
    CHECK_STR(spool_slurp(&sp, "quarantine", "orphan.lo3.1", buf, sizeof buf), "x");

    /* nothing to move: an error, and no reason file left behind */
    CHECK_INT(kb_spool_done(&sp, "missing.lo3"), KB_ERR_IO);
    CHECK(kb_spool_quarantine(&sp, "missing.lo3", "r") != KB_OK);
    CHECK(!spool_has(&sp, "quarantine", "missing.lo3.reason"));
}

int main(void)
{
    char root[] = "/tmp/kb-test-spool-noreplace-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    run(root, 0);
    CHECK(renameat2_calls > 0); /* the spool code did go through it */
    run(root, 1);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK_INT(system(cmd), 0);
    KB_TEST_DONE();
}
