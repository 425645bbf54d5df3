/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_spool.c - spool folders in a temporary directory: open creates the
 * tree, list shows only finished files in name order, read enforces its
 * size limit and reports the mtime, done/quarantine move files, and
 * write_out leaves exactly the new file behind.
 */
#define _GNU_SOURCE /* utimensat, mkdtemp */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb_test.h"
#include "spool.h"

static char root[64];

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The whole content of @p path into @p out (NUL-terminated), or "". */
static const char *slurp(const char *path, char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return out;
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
    return out;
}

/* Number of entries of @p dir other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *de; (de = readdir(d));)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* Remove @p dir recursively (test files only: plain files and folders). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (is_dir(p))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void test_spool(void)
{
    struct kb_spool sp;
    char dir[256], path[2600], buf[2600], errstr[256] = "";

    /* Open creates missing parents and the four folders; twice is fine. */
    snprintf(dir, sizeof dir, "%s/a/b/spool", root);
    CHECK_INT(kb_spool_open(&sp, dir, errstr, sizeof errstr), KB_OK);
    CHECK_STR(sp.dir, dir);
    static const char *const subs[] = {"in", "done", "quarantine", "out"};
    for (int i = 0; i < 4; i++) {
        kb_spool_path(&sp, subs[i], NULL, path, sizeof path);
        CHECK(is_dir(path));
    }
    CHECK_INT(kb_spool_open(&sp, dir, errstr, sizeof errstr), KB_OK);
    kb_spool_path(&sp, "in", "x.lo3", path, sizeof path);
    snprintf(buf, sizeof buf, "%s/in/x.lo3", dir);
    CHECK_STR(path, buf);

    /* A path that cannot be a folder: a file is in the way. */
    struct kb_spool bad;
    snprintf(path, sizeof path, "%s/plain", root);
    put_file(path, "x");
    snprintf(buf, sizeof buf, "%s/plain/spool", root);
    CHECK_INT(kb_spool_open(&bad, buf, errstr, sizeof errstr), KB_ERR_IO);
    CHECK(strstr(errstr, "cannot create") != NULL);

    /* List: finished files only, in name order. A name ending in .reason
     * is a sender's file like any other: no .reason file is ever written
     * into in/, and one left out of the listing would sit there unread. */
    static const char *const files[] = {"20240318-002.lo3", "20240318-001.lo3",
                                        "20240318-010.lo3", ".20240318-003.lo3",
                                        "old.reason",       ".hidden"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        kb_spool_path(&sp, "in", files[i], path, sizeof path);
        put_file(path, files[i]);
    }
    kb_spool_path(&sp, "in", "a-folder", path, sizeof path);
    CHECK_INT(mkdir(path, 0750), 0);
    char **names = NULL;
    size_t n = 0;
    CHECK_INT(kb_spool_list(&sp, &names, &n), KB_OK);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_STR(names[0], "20240318-001.lo3");
        CHECK_STR(names[1], "20240318-002.lo3");
        CHECK_STR(names[2], "20240318-010.lo3");
        CHECK_STR(names[3], "old.reason");
    }
    kb_spool_names_free(names, n);

    /* Read: content, size limit, mtime. "20240318-001.lo3" is 16 bytes. */
    kb_spool_path(&sp, "in", "20240318-001.lo3", path, sizeof path);
    struct timespec ts[2] = {{1710753330, 250000000}, {1710753330, 250999999}};
    CHECK_INT(utimensat(AT_FDCWD, path, ts, 0), 0);
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t mtime = 0;
    CHECK_INT(kb_spool_read(&sp, "20240318-001.lo3", 16, &data, &len, &mtime, NULL), KB_OK);
    CHECK_INT(len, 16);
    if (data)
        CHECK_MEM(data, len, "20240318-001.lo3");
    CHECK(mtime == 1710753330250); /* milliseconds, truncated */
    free(data);
    data = NULL;
    CHECK_INT(kb_spool_read(&sp, "20240318-001.lo3", 15, &data, &len, &mtime, NULL), KB_ERR_RANGE);
    CHECK(data == NULL);
    CHECK_INT(kb_spool_read(&sp, "no-such-file", 100, &data, &len, &mtime, NULL), KB_ERR_IO);

    /* Done: gone from in/, present in done/ with the same bytes. */
    CHECK_INT(kb_spool_done(&sp, "20240318-001.lo3", NULL), KB_OK);
    kb_spool_path(&sp, "in", "20240318-001.lo3", path, sizeof path);
    CHECK(!exists(path));
    kb_spool_path(&sp, "done", "20240318-001.lo3", path, sizeof path);
    CHECK_STR(slurp(path, buf, sizeof buf), "20240318-001.lo3");
    CHECK_INT(kb_spool_done(&sp, "20240318-001.lo3", NULL), KB_ERR_IO); /* not in in/ any more */

    /* Quarantine: moved, with the reason beside it. */
    CHECK_INT(kb_spool_quarantine(&sp, "20240318-002.lo3", NULL, "offset 76: bad BSN"), KB_OK);
    kb_spool_path(&sp, "in", "20240318-002.lo3", path, sizeof path);
    CHECK(!exists(path));
    kb_spool_path(&sp, "quarantine", "20240318-002.lo3", path, sizeof path);
    CHECK_STR(slurp(path, buf, sizeof buf), "20240318-002.lo3");
    kb_spool_path(&sp, "quarantine", "20240318-002.lo3.reason", path, sizeof path);
    CHECK_STR(slurp(path, buf, sizeof buf), "offset 76: bad BSN\n");
    kb_spool_path(&sp, "quarantine", NULL, path, sizeof path);
    CHECK_INT(count_entries(path), 2); /* no temp file left */

    CHECK_INT(kb_spool_list(&sp, &names, &n), KB_OK);
    CHECK_INT(n, 2);
    if (n == 2)
        CHECK_STR(names[0], "20240318-010.lo3");
    kb_spool_names_free(names, n);

    /* A sender's x.reason quarantined beside a quarantined x and its
     * reason: it takes a name of its own, nothing is replaced. */
    CHECK_INT(kb_spool_quarantine(&sp, "old.reason", NULL, "not LO3"), KB_OK);
    kb_spool_path(&sp, "quarantine", NULL, path, sizeof path);
    CHECK_INT(count_entries(path), 4);
    kb_spool_path(&sp, "quarantine", "old.reason", path, sizeof path);
    CHECK_STR(slurp(path, buf, sizeof buf), "old.reason");
    kb_spool_path(&sp, "quarantine", "old.reason.reason", path, sizeof path);
    CHECK_STR(slurp(path, buf, sizeof buf), "not LO3\n");

    /* write_out: the file and nothing else; overwriting replaces it. */
    CHECK_INT(kb_spool_write_out(&sp, "AKW01-1.txt", "first\n", 6), KB_OK);
    CHECK_INT(kb_spool_write_out(&sp, "AKW01-1.txt", "second", 6), KB_OK);
    CHECK_INT(kb_spool_write_out(&sp, "empty.txt", "", 0), KB_OK);
    kb_spool_path(&sp, "out", "AKW01-1.txt", path, sizeof path);
    CHECK_STR(slurp(path, buf, sizeof buf), "second");
    kb_spool_path(&sp, "out", "empty.txt", path, sizeof path);
    CHECK(exists(path));
    CHECK_STR(slurp(path, buf, sizeof buf), "");
    kb_spool_path(&sp, "out", NULL, path, sizeof path);
    CHECK_INT(count_entries(path), 2);
    kb_spool_path(&sp, "out", ".AKW01-1.txt.tmp", path, sizeof path);
    CHECK(!exists(path));
    /* A folder that does not exist. */
    CHECK_INT(kb_spool_write_out(&sp, "no/such/dir.txt", "x", 1), KB_ERR_IO);
}

static void test_long_path(void)
{
    struct kb_spool sp;
    char dir[2100], errstr[128] = "";
    memset(dir, 'a', sizeof dir - 1);
    dir[0] = '/';
    dir[sizeof dir - 1] = '\0';
    CHECK_INT(kb_spool_open(&sp, dir, errstr, sizeof errstr), KB_ERR_CONF);
    CHECK_STR(errstr, "spool path too long");
}

/* An oversize file's reason names its size and SHA-256, read in pieces;
 * a file that is gone meanwhile still gets a reason. */
static void test_oversize_reason(void)
{
    struct kb_spool sp;
    char dir[256], path[2600], reason[400], errstr[256] = "";
    snprintf(dir, sizeof dir, "%s/oversize", root);
    CHECK_INT(kb_spool_open(&sp, dir, errstr, sizeof errstr), KB_OK);
    kb_spool_path(&sp, "in", "big.lo3", path, sizeof path);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    /* 3 MiB of 'x' (more than one 64 KiB piece) */
    static char block[1 << 16];
    memset(block, 'x', sizeof block);
    for (int i = 0; i < 48; i++)
        fwrite(block, 1, sizeof block, f);
    fclose(f);
    kb_spool_oversize_reason(&sp, "big.lo3", "size", 2u << 20, reason, sizeof reason);
    /* sha256sum of 3 MiB of 'x' */
    CHECK_STR(reason, "size: file larger than 2 MiB (3145728 bytes, sha256 "
                      "3bea8a9a07c1e8dcaa4c1b816815c35a29b4fb585ba6ecc70ea44840a794cfb3); "
                      "not read, kept in the quarantine folder");
    kb_spool_oversize_reason(&sp, "big.lo3", "akw02-length", 1000000, reason, sizeof reason);
    CHECK(strstr(reason, "akw02-length: file larger than 1000000 bytes (3145728 bytes") == reason);
    unlink(path);
    kb_spool_oversize_reason(&sp, "big.lo3", "size", 2u << 20, reason, sizeof reason);
    CHECK_STR(reason, "size: file larger than 2 MiB (size unknown, sha256 not computed); not read, "
                      "kept in the quarantine folder");
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/kb_test_spool_XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    test_spool();
    test_long_path();
    test_oversize_reason();
    rm_tree(root);
    KB_TEST_DONE();
}
