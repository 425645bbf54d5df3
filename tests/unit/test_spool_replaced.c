/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_spool_replaced.c - a sender renames a new file over a name of in/
 * while the adapter handles the old file under it: kb_spool_done() and
 * kb_spool_quarantine(), given the file that was read, leave the new file in
 * in/ for the next scan instead of archiving it unread. Both when the rename
 * lands before the move (seen before it) and when it lands between that look
 * and the move itself (renameat2 is replaced here to let the sender's rename
 * in first: the move takes the new file, which must come back to in/). Run
 * with renameat2(RENAME_NOREPLACE) and with the link + unlink fallback,
 * which also gets the rename between its link and its unlink (link() is
 * replaced too).
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
/* A sender's rename to do just before the spool's next renameat2: it lands
 * between the spool's look at the name and its move. */
static char sender_from[4200], sender_to[4200];

/* Replaces glibc's for the spool code linked into this test. */
int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags)
{
    if (sender_from[0]) {
        CHECK_INT(rename(sender_from, sender_to), 0);
        sender_from[0] = '\0';
    }
    if (no_renameat2) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

/* A sender's rename to do just after the spool's next link(): with the
 * fallback, between its link into done/ or quarantine/ and the removal of
 * the name from in/, which must then not take the new file with it. */
static char after_link_from[4200], after_link_to[4200];

/* Replaces glibc's for the spool code linked into this test. */
int link(const char *oldpath, const char *newpath)
{
    int r = (int)syscall(SYS_link, oldpath, newpath);
    if (r == 0 && after_link_from[0]) {
        CHECK_INT(rename(after_link_from, after_link_to), 0);
        after_link_from[0] = '\0';
    }
    return r;
}

static struct kb_spool sp;

/* Read in/@p name (it must hold @p text) and tell which file that was. */
static void read_it(const char *name, const char *text, struct kb_spool_file *file)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t mtime = 0;
    CHECK_INT(kb_spool_read(&sp, name, 1 << 20, &data, &len, &mtime, file), KB_OK);
    CHECK(len == strlen(text) && data && !memcmp(data, text, len));
    free(data);
}

/* The sender's new file for in/@p name, written under a dot-name: renamed
 * over the name now (@p now) or by the spool's next renameat2. */
static void replace(const char *name, const char *text, int now)
{
    char dot[300], from[4200], to[4200];
    snprintf(dot, sizeof dot, ".%s.new", name);
    spool_put(&sp, dot, text);
    kb_spool_path(&sp, "in", dot, from, sizeof from);
    kb_spool_path(&sp, "in", name, to, sizeof to);
    if (now) {
        CHECK_INT(rename(from, to), 0);
    } else {
        snprintf(sender_from, sizeof sender_from, "%s", from);
        snprintf(sender_to, sizeof sender_to, "%s", to);
    }
}

/* One case: read in/@p name, replace it (@p now: before the move, else
 * during it), then done (@p quarantine 0) or quarantine. */
static void one(const char *name, int now, int quarantine)
{
    char buf[256], reason_name[300];
    struct kb_spool_file file;
    spool_put(&sp, name, "old message");
    read_it(name, "old message", &file);
    replace(name, "new message", now);
    if (quarantine)
        CHECK_INT(kb_spool_quarantine(&sp, name, &file, "bad"), KB_OK);
    else
        CHECK_INT(kb_spool_done(&sp, name, &file), KB_OK);
    CHECK(sender_from[0] == '\0'); /* the sender's rename did happen */
    /* the new file waits in in/, unread; nothing was archived under the name */
    CHECK_STR(spool_slurp(&sp, "in", name, buf, sizeof buf), "new message");
    snprintf(reason_name, sizeof reason_name, "%s.reason", name);
    CHECK(!spool_has(&sp, "done", name));
    CHECK(!spool_has(&sp, "quarantine", name));
    CHECK(!spool_has(&sp, "quarantine", reason_name));
    /* the next scan reads it, and then it moves */
    read_it(name, "new message", &file);
    if (quarantine) {
        CHECK_INT(kb_spool_quarantine(&sp, name, &file, "bad"), KB_OK);
        CHECK_STR(spool_slurp(&sp, "quarantine", name, buf, sizeof buf), "new message");
        CHECK_STR(spool_slurp(&sp, "quarantine", reason_name, buf, sizeof buf), "bad\n");
    } else {
        CHECK_INT(kb_spool_done(&sp, name, &file), KB_OK);
        CHECK_STR(spool_slurp(&sp, "done", name, buf, sizeof buf), "new message");
    }
    CHECK(!spool_has(&sp, "in", name));
}

/* The fallback only: the sender's rename lands after the link of the file
 * read. That file is archived (it was read), the new one stays in in/ and
 * is archived beside it once read; nothing is unlinked unchecked. */
static void after_link(const char *name, int quarantine)
{
    char buf[256], dot[300], next[300];
    struct kb_spool_file file;
    spool_put(&sp, name, "old message");
    read_it(name, "old message", &file);
    snprintf(dot, sizeof dot, ".%s.new", name);
    spool_put(&sp, dot, "new message");
    kb_spool_path(&sp, "in", dot, after_link_from, sizeof after_link_from);
    kb_spool_path(&sp, "in", name, after_link_to, sizeof after_link_to);
    const char *sub = quarantine ? "quarantine" : "done";
    if (quarantine)
        CHECK_INT(kb_spool_quarantine(&sp, name, &file, "bad"), KB_OK);
    else
        CHECK_INT(kb_spool_done(&sp, name, &file), KB_OK);
    CHECK(after_link_from[0] == '\0'); /* the sender's rename did happen */
    CHECK_STR(spool_slurp(&sp, sub, name, buf, sizeof buf), "old message");
    CHECK_STR(spool_slurp(&sp, "in", name, buf, sizeof buf), "new message");
    CHECK(!spool_has(&sp, "in", ".kb-spool-moving"));
    read_it(name, "new message", &file);
    if (quarantine)
        CHECK_INT(kb_spool_quarantine(&sp, name, &file, "bad"), KB_OK);
    else
        CHECK_INT(kb_spool_done(&sp, name, &file), KB_OK);
    snprintf(next, sizeof next, "%s.1", name);
    CHECK_STR(spool_slurp(&sp, sub, next, buf, sizeof buf), "new message");
    CHECK(!spool_has(&sp, "in", name));
}

static void run(const char *root, int fallback)
{
    char dir[256], errstr[256];
    snprintf(dir, sizeof dir, "%s/%s", root, fallback ? "fallback" : "renameat2");
    CHECK_INT(kb_spool_open(&sp, dir, errstr, sizeof errstr), KB_OK);
    no_renameat2 = fallback;
    one("before-done.lo3", 1, 0);
    one("before-quarantine.lo3", 1, 1);
    one("during-done.lo3", 0, 0);
    one("during-quarantine.lo3", 0, 1);
    if (fallback) {
        after_link("after-link-done.lo3", 0);
        after_link("after-link-quarantine.lo3", 1);
    }
}

int main(void)
{
    char root[] = "/tmp/kb-test-spool-replaced-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    run(root, 0);
    run(root, 1);
    CHECK_INT(kb_test_rm_tree(root), 0);
    KB_TEST_DONE();
}
