/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_spool_stage.c - the names a file gets in done/ can be told before
 * it moves (ce_dataref is built from it), also when suffixed names are
 * waiting in in/; and staged network messages reach done/ only when their
 * events were acknowledged: done on ACK, quarantine/ with the reason on
 * REJECT, gone on NACK, and a resend of an archived message keeps one copy.
 * What a crash left staged is listed (staged names only: no temp files, no
 * links) and read back.
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
    CHECK_INT(kb_spool_done(&sp, "x", NULL), KB_OK);

    /* in/ holds "x" again and "x.1": x cannot take x.1, which x.1 wants */
    spool_put(&sp, "x", "second x");
    spool_put(&sp, "x.1", "the file named x.1");
    CHECK_INT(kb_spool_done_name(&sp, "x", name, sizeof name), KB_OK);
    CHECK_STR(name, "x.2");
    CHECK_INT(kb_spool_done_name(&sp, "x.1", name2, sizeof name2), KB_OK);
    CHECK_STR(name2, "x.1");
    /* the names told hold whichever moves first */
    CHECK_INT(kb_spool_done(&sp, "x.1", NULL), KB_OK);
    CHECK_INT(kb_spool_done(&sp, "x", NULL), KB_OK);
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

/* Write done/@p name holding @p text, as a crash would leave it. */
static void put_done(const char *name, const char *text)
{
    char path[4200];
    kb_spool_path(&sp, "done", name, path, sizeof path);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* What kb_spool_staged_each() handed over. */
struct seen {
    char names[8][256];
    int n;
    int stop_after; /* return nonzero after this many names; 0: never */
    int finish;     /* end each staging with kb_spool_stage_done() */
};

static int on_staged(void *opaque, const char *name)
{
    struct seen *s = opaque;
    if (s->n < 8)
        snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
    s->n++;
    if (s->finish)
        CHECK_INT(kb_spool_stage_done(&sp, name), KB_OK);
    return s->stop_after && s->n >= s->stop_after;
}

static void test_staged_each(void)
{
    char buf[128], path[4200], target[4200];
    /* left by a crash: two staged frames, beside what is not one */
    CHECK_INT(kb_spool_stage(&sp, "tcp-ddd.lo3", "frame d", 7), KB_OK);
    CHECK_INT(kb_spool_stage(&sp, "tcp-eee.lo3", "frame e!", 8), KB_OK);
    put_done("..tcp-fff.lo3.staged.tmp", "half a staging"); /* kb_file_write_atomic's temp */
    put_done(".tcp-ggg.lo3.tmp", "half a write");
    put_done("tcp-hhh.lo3.staged", "not hidden: not staged");
    put_done(".staged", "no name");
    put_done("..staged", "an empty name");
    put_done(".tcp-iii.lo3.staged.1", "not the suffix");
    kb_spool_path(&sp, "done", "tcp-aaa.lo3", target, sizeof target);
    kb_spool_path(&sp, "done", ".tcp-link.lo3.staged", path, sizeof path);
    CHECK_INT(symlink(target, path), 0); /* a link is not read, whatever it names */
    kb_spool_path(&sp, "done", ".tcp-dir.lo3.staged", path, sizeof path);
    CHECK_INT(mkdir(path, 0700), 0);

    struct seen s = {0};
    CHECK_INT(kb_spool_staged_each(&sp, on_staged, &s), KB_OK);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.names[0], "tcp-ddd.lo3"); /* in name order */
    CHECK_STR(s.names[1], "tcp-eee.lo3");

    /* read back whole, with the time it was staged */
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t mtime_ms = 0;
    CHECK_INT(kb_spool_stage_read(&sp, "tcp-eee.lo3", 1024, &data, &len, &mtime_ms), KB_OK);
    CHECK_MEM(data, len, "frame e!");
    CHECK(mtime_ms > 0);
    free(data);
    data = NULL;
    CHECK_INT(kb_spool_stage_read(&sp, "tcp-eee.lo3", 7, &data, &len, &mtime_ms), KB_ERR_RANGE);
    CHECK(data == NULL);
    CHECK_INT(kb_spool_stage_read(&sp, "tcp-none.lo3", 1024, &data, &len, &mtime_ms),
              KB_ERR_NOTFOUND);
    CHECK_INT(kb_spool_stage_read(&sp, "tcp-link.lo3", 1024, &data, &len, &mtime_ms), KB_ERR_IO);
    CHECK(data == NULL);

    /* a nonzero return stops the walk */
    struct seen once = {.stop_after = 1};
    CHECK_INT(kb_spool_staged_each(&sp, on_staged, &once), KB_OK);
    CHECK_INT(once.n, 1);

    /* the callback may end the staging of the name it is given */
    struct seen finish = {.finish = 1};
    CHECK_INT(kb_spool_staged_each(&sp, on_staged, &finish), KB_OK);
    CHECK_INT(finish.n, 2);
    CHECK_STR(spool_slurp(&sp, "done", "tcp-ddd.lo3", buf, sizeof buf), "frame d");
    CHECK_STR(spool_slurp(&sp, "done", "tcp-eee.lo3", buf, sizeof buf), "frame e!");
    struct seen after = {0};
    CHECK_INT(kb_spool_staged_each(&sp, on_staged, &after), KB_OK);
    CHECK_INT(after.n, 0);
    /* what was not staged is untouched */
    CHECK_STR(spool_slurp(&sp, "done", "..tcp-fff.lo3.staged.tmp", buf, sizeof buf),
              "half a staging");
    CHECK(spool_has(&sp, "done", ".tcp-link.lo3.staged"));
}

int main(void)
{
    char root[] = "/tmp/kb-test-spool-stage-XXXXXX", errstr[256];
    CHECK(mkdtemp(root) != NULL);
    CHECK_INT(kb_spool_open(&sp, root, errstr, sizeof errstr), KB_OK);
    test_done_name();
    test_stage();
    test_staged_each();
    CHECK_INT(kb_test_rm_tree(root), 0);
    KB_TEST_DONE();
}
