/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_spool_stage.c - the names a file gets in done/ can be told before
 * it moves (ce_dataref is built from it), also when suffixed names are
 * waiting in in/; and staged network messages reach done/ only when their
 * events were acknowledged: done on ACK, quarantine/ with the reason on
 * REJECT, gone on NACK, and a resend of an archived message keeps one copy.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/spool.h"
#include "kb_test.h"
#include "test_spool_helpers.h"

static struct kb_spool sp;

/* Entries of done/, hidden ones (staged) included, "." and ".." not. */
static int count_done(void)
{
    char path[4200];
    kb_spool_path(&sp, "done", NULL, path, sizeof path);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void test_done_name(void)
{
    char name[300], name2[300], buf[64];
    CHECK_INT(kb_spool_done_name(&sp, "x", name, sizeof name), KB_OK);
    CHECK_STR(name, "x");
    spool_put(&sp, "x", "first x");
    CHECK_INT(kb_spool_done(&sp, "x"), KB_OK);

    /* in/ holds "x" again and "x.1": x cannot take x.1, which x.1 wants */
    spool_put(&sp, "x", "second x");
    spool_put(&sp, "x.1", "the file named x.1");
    CHECK_INT(kb_spool_done_name(&sp, "x", name, sizeof name), KB_OK);
    CHECK_STR(name, "x.2");
    CHECK_INT(kb_spool_done_name(&sp, "x.1", name2, sizeof name2), KB_OK);
    CHECK_STR(name2, "x.1");
    /* the names told hold whichever moves first */
    CHECK_INT(kb_spool_done(&sp, "x.1"), KB_OK);
    CHECK_INT(kb_spool_done(&sp, "x"), KB_OK);
    CHECK_STR(spool_slurp(&sp, "done", "x.2", buf, sizeof buf), "second x");
    CHECK_STR(spool_slurp(&sp, "done", "x.1", buf, sizeof buf), "the file named x.1");
    CHECK_STR(spool_slurp(&sp, "done", "x", buf, sizeof buf), "first x");

    /* too small a buffer says so */
    CHECK_INT(kb_spool_done_name(&sp, "x", name, 2), KB_ERR_RANGE);
}

static void test_stage(void)
{
    char buf[128];
    int before = count_done();
    /* ACK: staged copy moves to done/<name>, nothing else stays */
    CHECK_INT(kb_spool_stage(&sp, "tcp-aaa.lo3", "frame a", 7), KB_OK);
    CHECK(spool_has(&sp, "done", ".tcp-aaa.lo3.staged"));
    CHECK(!spool_has(&sp, "done", "tcp-aaa.lo3"));
    CHECK_INT(kb_spool_stage_done(&sp, "tcp-aaa.lo3"), KB_OK);
    CHECK_STR(spool_slurp(&sp, "done", "tcp-aaa.lo3", buf, sizeof buf), "frame a");
    CHECK(!spool_has(&sp, "done", ".tcp-aaa.lo3.staged"));
    CHECK_INT(count_done(), before + 1);

    /* a resend of the same message: one copy */
    CHECK_INT(kb_spool_stage(&sp, "tcp-aaa.lo3", "frame a", 7), KB_OK);
    CHECK_INT(kb_spool_stage_done(&sp, "tcp-aaa.lo3"), KB_OK);
    CHECK_INT(count_done(), before + 1);

    /* NACK: nothing in done/ */
    CHECK_INT(kb_spool_stage(&sp, "tcp-bbb.lo3", "frame b", 7), KB_OK);
    CHECK_INT(kb_spool_stage_drop(&sp, "tcp-bbb.lo3"), KB_OK);
    CHECK_INT(count_done(), before + 1);
    CHECK_INT(kb_spool_stage_drop(&sp, "tcp-bbb.lo3"), KB_OK); /* gone already: fine */

    /* REJECT: to quarantine/ with the reason, twice without replacing */
    CHECK_INT(kb_spool_stage(&sp, "tcp-ccc.lo3", "frame c", 7), KB_OK);
    CHECK_INT(kb_spool_stage_quarantine(&sp, "tcp-ccc.lo3", "lo3-syntax: offset 3"), KB_OK);
    CHECK_STR(spool_slurp(&sp, "quarantine", "tcp-ccc.lo3", buf, sizeof buf), "frame c");
    CHECK_STR(spool_slurp(&sp, "quarantine", "tcp-ccc.lo3.reason", buf, sizeof buf),
              "lo3-syntax: offset 3\n");
    CHECK_INT(kb_spool_stage(&sp, "tcp-ccc.lo3", "frame c", 7), KB_OK);
    CHECK_INT(kb_spool_stage_quarantine(&sp, "tcp-ccc.lo3", "again"), KB_OK);
    CHECK_STR(spool_slurp(&sp, "quarantine", "tcp-ccc.lo3.1.reason", buf, sizeof buf), "again\n");
    CHECK_INT(count_done(), before + 1);

    /* nothing staged: an error, not a crash */
    CHECK(kb_spool_stage_done(&sp, "tcp-none.lo3") != KB_OK);
    CHECK(kb_spool_stage_quarantine(&sp, "tcp-none.lo3", "r") != KB_OK);
    CHECK(!spool_has(&sp, "quarantine", "tcp-none.lo3.reason"));
}

int main(void)
{
    char root[] = "/tmp/kb-test-spool-stage-XXXXXX", errstr[256];
    CHECK(mkdtemp(root) != NULL);
    CHECK_INT(kb_spool_open(&sp, root, errstr, sizeof errstr), KB_OK);
    test_done_name();
    test_stage();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK_INT(system(cmd), 0);
    KB_TEST_DONE();
}
