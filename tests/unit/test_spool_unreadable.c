/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_spool_unreadable.c - a spool file that cannot be read must neither
 * hold up the files behind it nor stay in in/ for ever: kb_spool_read()
 * logs the errno (never the name), the scan goes on, and the
 * KB_SPOOL_READ_ATTEMPTS-th failed read in a row quarantines the file with
 * the reason. The tests run as root, which reads any file whatever its mode,
 * so the failure is a write lease held on the file: an open with O_NONBLOCK
 * (as kb_spool_read does) then fails with EWOULDBLOCK, as it would while
 * e.g. Samba holds a lease on a share.
 */
#define _GNU_SOURCE /* F_SETLEASE */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/spool.h"
#include "kb_test.h"
#include "test_spool_helpers.h"

static struct kb_spool sp;
static char log_path[4200];

/* Hold a write lease on in/@p name: other opens fail with EWOULDBLOCK.
 * Returns the fd that holds it (close to release), or -1. */
static int hold_lease(const char *name)
{
    char path[4200];
    kb_spool_path(&sp, "in", name, path, sizeof path);
    int fd = open(path, O_RDONLY);
    if (fd >= 0 && fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
        perror("F_SETLEASE");
        close(fd);
        fd = -1;
    }
    return fd;
}

static void release_lease(int fd)
{
    if (fd >= 0) {
        fcntl(fd, F_SETLEASE, F_UNLCK);
        close(fd);
    }
}

/* One scan as the adapters do it: list, then read every file once, going on
 * after a failed read. Returns the number of files read. */
static int scan(void)
{
    char **names = NULL;
    size_t n = 0;
    int ok = 0;
    CHECK_INT(kb_spool_list(&sp, &names, &n), KB_OK);
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int64_t mtime = 0;
        if (kb_spool_read(&sp, names[i], 1 << 20, &buf, &len, &mtime, NULL) == KB_OK) {
            ok++;
            free(buf);
        }
    }
    kb_spool_names_free(names, n);
    return ok;
}

/* A file that cannot be opened is skipped, the file behind it is read, and
 * on the third failed scan the file goes to quarantine/ with the errno. */
static void test_quarantined_after_attempts(void)
{
    spool_put(&sp, "001-held.lo3", "BSN 999996204");
    spool_put(&sp, "002-good.lo3", "good");
    int lease = hold_lease("001-held.lo3");
    CHECK(lease >= 0);
    for (int round = 1; round < KB_SPOOL_READ_ATTEMPTS; round++) {
        CHECK_INT(scan(), 1); /* 002 read, although 001 before it was not */
        CHECK(spool_has(&sp, "in", "001-held.lo3"));
        CHECK(!spool_has(&sp, "quarantine", "001-held.lo3"));
    }
    CHECK_INT(scan(), 1);
    CHECK(!spool_has(&sp, "in", "001-held.lo3"));
    CHECK(spool_has(&sp, "quarantine", "001-held.lo3"));
    char buf[512];
    spool_slurp(&sp, "quarantine", "001-held.lo3.reason", buf, sizeof buf);
    CHECK(strstr(buf, "unreadable: ") == buf);
    char want[64];
    snprintf(want, sizeof want, "(errno %d) on %d reads in a row", EWOULDBLOCK,
             KB_SPOOL_READ_ATTEMPTS);
    CHECK(strstr(buf, want) != NULL);
    release_lease(lease);
    /* the good file was read every round and is still there for its adapter */
    CHECK(spool_has(&sp, "in", "002-good.lo3"));
    kb_spool_done(&sp, "002-good.lo3", NULL);
}

/* Failures count in a row: a good read in between starts again from zero. */
static void test_success_resets(void)
{
    spool_put(&sp, "003-flaky.lo3", "flaky");
    int lease = hold_lease("003-flaky.lo3");
    for (int i = 1; i < KB_SPOOL_READ_ATTEMPTS; i++)
        CHECK_INT(scan(), 0);
    release_lease(lease);
    CHECK_INT(scan(), 1);
    lease = hold_lease("003-flaky.lo3");
    for (int i = 1; i < KB_SPOOL_READ_ATTEMPTS; i++)
        CHECK_INT(scan(), 0);
    CHECK(spool_has(&sp, "in", "003-flaky.lo3"));
    CHECK(!spool_has(&sp, "quarantine", "003-flaky.lo3"));
    release_lease(lease);
    /* taken away by an operator: forgotten, so a new file of that name starts from zero */
    char path[4200];
    kb_spool_path(&sp, "in", "003-flaky.lo3", path, sizeof path);
    CHECK_INT(unlink(path), 0);
    CHECK_INT(scan(), 0);
    spool_put(&sp, "003-flaky.lo3", "new");
    lease = hold_lease("003-flaky.lo3");
    CHECK_INT(scan(), 0);
    CHECK(spool_has(&sp, "in", "003-flaky.lo3"));
    release_lease(lease);
    CHECK_INT(scan(), 1);
    kb_spool_done(&sp, "003-flaky.lo3", NULL);
}

/* Swapped after the listing: a fifo is quarantined at once (it never
 * becomes readable), a folder is left to the sender, a file gone is no
 * failure at all. */
static void test_swapped_after_listing(void)
{
    spool_put(&sp, "004-fifo.lo3", "x");
    spool_put(&sp, "005-folder.lo3", "x");
    spool_put(&sp, "006-gone.lo3", "x");
    char **names = NULL;
    size_t n = 0;
    CHECK_INT(kb_spool_list(&sp, &names, &n), KB_OK);
    CHECK_INT(n, 3);
    char path[4200];
    kb_spool_path(&sp, "in", "004-fifo.lo3", path, sizeof path);
    CHECK_INT(unlink(path), 0);
    CHECK_INT(mkfifo(path, 0600), 0);
    kb_spool_path(&sp, "in", "005-folder.lo3", path, sizeof path);
    CHECK_INT(unlink(path), 0);
    CHECK_INT(mkdir(path, 0700), 0);
    kb_spool_path(&sp, "in", "006-gone.lo3", path, sizeof path);
    CHECK_INT(unlink(path), 0);
    for (int round = 0; round < KB_SPOOL_READ_ATTEMPTS + 1; round++) {
        for (size_t i = 0; i < n; i++) {
            uint8_t *buf = NULL;
            size_t len = 0;
            int64_t mtime = 0;
            CHECK_INT(kb_spool_read(&sp, names[i], 100, &buf, &len, &mtime, NULL), KB_ERR_IO);
        }
        CHECK(spool_has(&sp, "quarantine", "004-fifo.lo3"));
    }
    kb_spool_names_free(names, n);
    char buf[256];
    CHECK_STR(spool_slurp(&sp, "quarantine", "004-fifo.lo3.reason", buf, sizeof buf),
              "not a regular file (fifo); not read\n");
    CHECK(spool_has(&sp, "in", "005-folder.lo3"));
    CHECK(!spool_has(&sp, "quarantine", "005-folder.lo3"));
    CHECK(!spool_has(&sp, "quarantine", "006-gone.lo3"));
    CHECK(!spool_has(&sp, "quarantine", "006-gone.lo3.reason"));
    CHECK_INT(scan(), 0); /* the folder is not listed any more */
}

int main(void)
{
    char root[] = "/tmp/kb-test-spool-unreadable-XXXXXX", errstr[256];
    CHECK(mkdtemp(root) != NULL);
    /* a lease break signals the holder: SIGIO would end this process */
    signal(SIGIO, SIG_IGN);
    CHECK_INT(kb_spool_open(&sp, root, errstr, sizeof errstr), KB_OK);

    /* the spool's log lines, to check what they say and do not say */
    snprintf(log_path, sizeof log_path, "%s/log", root);
    int saved = dup(2), logfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(saved >= 0 && logfd >= 0);
    dup2(logfd, 2);
    close(logfd);

    test_quarantined_after_attempts();
    test_success_resets();
    test_swapped_after_listing();

    dup2(saved, 2);
    close(saved);
    char log[16384];
    FILE *f = fopen(log_path, "r");
    size_t got = f ? fread(log, 1, sizeof log - 1, f) : 0;
    log[got] = '\0';
    if (f)
        fclose(f);
    CHECK(strstr(log, "msg=\"cannot read spool file; skipped this scan\"") != NULL);
    char want[64];
    snprintf(want, sizeof want, "errno=%d", EWOULDBLOCK);
    CHECK(strstr(log, want) != NULL);
    CHECK(strstr(log, "msg=\"cannot read spool file; quarantined unread\"") != NULL);
    /* neither the name (which may carry a BSN) nor the content */
    CHECK(strstr(log, "001-held") == NULL && strstr(log, "999996204") == NULL);
    if (kb_test_failures)
        fprintf(stderr, "--- spool log ---\n%s", log);

    CHECK_INT(kb_test_rm_tree(root), 0);
    KB_TEST_DONE();
}
