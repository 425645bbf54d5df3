/* SPDX-License-Identifier: EUPL-1.2 */
/* test_spool_hostile.c - spool folders against hostile senders: a symbolic
 * link (to a secret) and a fifo dropped into in/ are quarantined unread with
 * a reason, a read never follows a link nor blocks on a fifo, and a long
 * reason is kept whole up to 128 KiB, then cut and marked, never written
 * past a buffer (tests/integration/hostile_input.sh once found svb's reason
 * for a file full of bad records overflowing a stack buffer; a later
 * review found the fix cut it at 1,199 bytes, losing its last lines). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/spool.h"
#include "kb_test.h"

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static size_t slurp(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, size - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return n;
}

int main(void)
{
    char root[] = "/tmp/kb-test-spool-hostile-XXXXXX", errstr[256], path[4096], secret[4096];
    char buf[8192];
    CHECK(mkdtemp(root) != NULL);
    struct kb_spool sp;
    CHECK_INT(kb_spool_open(&sp, root, errstr, sizeof errstr), KB_OK);
    snprintf(secret, sizeof secret, "%s/secret.key", root);
    put(secret, "TOP-SECRET-KEY-MATERIAL\n");

    /* a link to the secret, a fifo and one honest file */
    kb_spool_path(&sp, "in", "001-link.lo3", path, sizeof path);
    CHECK_INT(symlink(secret, path), 0);
    kb_spool_path(&sp, "in", "002-fifo.lo3", path, sizeof path);
    CHECK_INT(mkfifo(path, 0600), 0);
    kb_spool_path(&sp, "in", "003-good.lo3", path, sizeof path);
    put(path, "good");

    /* reading them directly: neither followed nor blocking */
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t mtime = 0;
    CHECK_INT(kb_spool_read(&sp, "001-link.lo3", 1 << 20, &data, &len, &mtime, NULL), KB_ERR_IO);
    CHECK_INT(kb_spool_read(&sp, "002-fifo.lo3", 1 << 20, &data, &len, &mtime, NULL), KB_ERR_IO);
    CHECK(data == NULL);

    /* the listing offers only the regular file and quarantines the others unread */
    char **names = NULL;
    size_t n = 0;
    CHECK_INT(kb_spool_list(&sp, &names, &n), KB_OK);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(names[0], "003-good.lo3");
    kb_spool_names_free(names, n);
    struct stat st;
    kb_spool_path(&sp, "quarantine", "001-link.lo3", path, sizeof path);
    CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode)); /* the link moved, not its target */
    kb_spool_path(&sp, "quarantine", "001-link.lo3.reason", path, sizeof path);
    slurp(path, buf, sizeof buf);
    CHECK_STR(buf, "not a regular file (symbolic link); not read\n");
    kb_spool_path(&sp, "quarantine", "002-fifo.lo3.reason", path, sizeof path);
    slurp(path, buf, sizeof buf);
    CHECK_STR(buf, "not a regular file (fifo); not read\n");
    CHECK(lstat(secret, &st) == 0 && S_ISREG(st.st_mode)); /* the target untouched */

    /* a 5000-byte reason (an SVB file with many bad records) is kept whole */
    char reason[5001];
    memset(reason, 'r', 5000);
    reason[5000] = '\0';
    CHECK_INT(kb_spool_quarantine(&sp, "003-good.lo3", NULL, reason), KB_OK);
    kb_spool_path(&sp, "quarantine", "003-good.lo3.reason", path, sizeof path);
    size_t got = slurp(path, buf, sizeof buf);
    CHECK_INT(got, 5001);
    CHECK(got == 5001 && buf[4999] == 'r' && buf[5000] == '\n');

    /* one of 200 KiB is cut at 128 KiB, marked, no overflow */
    size_t big_n = 200u << 10;
    char *big = malloc(big_n + 1);
    memset(big, 'r', big_n);
    big[big_n] = '\0';
    kb_spool_path(&sp, "in", "004-big-reason.lo3", path, sizeof path);
    put(path, "x\n");
    CHECK_INT(kb_spool_quarantine(&sp, "004-big-reason.lo3", NULL, big), KB_OK);
    free(big);
    kb_spool_path(&sp, "quarantine", "004-big-reason.lo3.reason", path, sizeof path);
    char *back = malloc(big_n);
    FILE *bf = fopen(path, "rb");
    size_t bn = bf ? fread(back, 1, big_n, bf) : 0;
    if (bf)
        fclose(bf);
    CHECK_INT(bn, 128u << 10);
    CHECK(bn == 128u << 10 && !memcmp(back + bn - 4, "...\n", 4) && back[0] == 'r');
    free(back);

    CHECK_INT(kb_test_rm_tree(root), 0);
    KB_TEST_DONE();
}
