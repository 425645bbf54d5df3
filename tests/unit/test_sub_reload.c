/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_sub_reload.c - how a reload notices a follow list's change
 * (kb_file_changed): an edit in place of the same size whose mtime was set
 * back; an edit within the time stamp tick of the read ("racy", caught by
 * the content hash only); no hashing once the file is known to be settled;
 * the same for the subscription files themselves.
 * And a load that gives up in time or when stopped (kb__subs_load_bounded),
 * as the admin API's GET /admin/subscriptions does (inside a long follow
 * list: test_admin.c).
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/clock.h"
#include "ketenbus/sub.h"
#include "sub_int.h"

static char dir[256];
static const uint8_t key[32] = "test-subject-key-not-a-secret!!";

static const char *tmp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Write @p text over the start of @p name in place (no truncation, same
 * inode), then set its mtime back to @p mtime: size and mtime as before. */
static void rewrite_in_place(const char *name, const char *text, struct timespec mtime)
{
    int fd = open(tmp_path(name), O_WRONLY);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, text, strlen(text), 0) == (ssize_t)strlen(text));
    struct timespec times[2] = {{0, UTIME_OMIT}, mtime};
    CHECK_INT(futimens(fd, times), 0);
    close(fd);
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(tmp_path(name), "wb");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

#define SUBS                                 \
    "subscriptions:\n"                       \
    "  - name: a\n"                          \
    "    purpose: {id: p, legal_basis: w}\n" \
    "    types: [nl.brp.persoon-geboren]\n"  \
    "    follow: volgers.csv\n"

/* Two lists of the same size: another person followed. */
#define LIST_1 "bsn:999995303,2024-01-01,\n"
#define LIST_2 "bsn:999990019,2024-01-01,\n"

static void load(struct kb_subs *subs)
{
    char errstr[512] = "";
    kb_err_t err =
        kb_subs_load(tmp_path("subs.yaml"), key, sizeof key, subs, errstr, sizeof errstr);
    if (err)
        fprintf(stderr, "load: %s\n", errstr);
    CHECK_INT(err, KB_OK);
    CHECK_INT(subs->n, 1);
}

static void test_same_size_same_mtime(void)
{
    write_file("subs.yaml", SUBS);
    write_file("volgers.csv", LIST_1);
    struct kb_subs subs;
    load(&subs);
    if (subs.n != 1)
        return;
    struct kb_sub *sub = &subs.items[0];
    const char *csv = sub->follow_path;
    /* Just written: read within a tick of its change, so its hash is kept. */
    CHECK_INT(sub->follow_id.racy, 1);
    CHECK_INT(kb_file_changed(csv, &sub->follow_id, KB_SUB_FOLLOW_FILE_MAX), 0);

    struct stat st;
    CHECK_INT(stat(csv, &st), 0);
    struct kb_file_id before = sub->follow_id;
    usleep(20 * 1000); /* past a kernel clock tick: a new change time */
    rewrite_in_place("volgers.csv", LIST_2, st.st_mtim);
    struct stat st2;
    CHECK_INT(stat(csv, &st2), 0);
    CHECK_INT(st2.st_size, st.st_size);
    CHECK(st2.st_mtim.tv_sec == st.st_mtim.tv_sec && st2.st_mtim.tv_nsec == st.st_mtim.tv_nsec);

    /* Size and mtime as read: the change time still tells, also for a file
     * that is no longer racy (the usual case: an edit long after the load). */
    struct kb_file_id settled = before;
    settled.racy = 0;
    uint64_t f1 = kb_file_changed(csv, &settled, KB_SUB_FOLLOW_FILE_MAX);
    CHECK(f1 != 0);
    CHECK(kb_file_changed(csv, &settled, KB_SUB_FOLLOW_FILE_MAX) == f1); /* same version */

    /* Within one tick even the change time can stay as read: pretend it
     * did. Only the content (hashed because the read was racy) tells. */
    struct kb_file_id racy = before;
    racy.ctime_ns = (int64_t)st2.st_ctim.tv_sec * 1000000000 + st2.st_ctim.tv_nsec;
    CHECK(kb_file_changed(csv, &racy, KB_SUB_FOLLOW_FILE_MAX) != 0);
    /* ... which only a racy read pays for: a settled one is one stat. */
    racy.racy = 0;
    CHECK_INT(kb_file_changed(csv, &racy, KB_SUB_FOLLOW_FILE_MAX), 0);

    /* Gone: changed. */
    kb_subs_fini(&subs);
    load(&subs);
    if (subs.n == 1) {
        unlink(subs.items[0].follow_path);
        CHECK(kb_file_changed(subs.items[0].follow_path, &subs.items[0].follow_id,
                              KB_SUB_FOLLOW_FILE_MAX) != 0);
    }
    kb_subs_fini(&subs);
}

static void test_racy_settles(void)
{
    write_file("subs.yaml", SUBS);
    write_file("volgers.csv", LIST_1);
    struct kb_subs subs;
    load(&subs);
    if (subs.n != 1)
        return;
    struct kb_sub *sub = &subs.items[0];
    CHECK_INT(sub->follow_id.racy, 1);
    /* Looked at a tick after its last change, with the content as read:
     * settled, later looks are one stat. */
    usleep((useconds_t)(KB_FILE_TICK_NS / 1000) + 100 * 1000);
    CHECK_INT(kb_file_changed(sub->follow_path, &sub->follow_id, KB_SUB_FOLLOW_FILE_MAX), 0);
    CHECK_INT(sub->follow_id.racy, 0);
    /* A file read long after its change is not racy to begin with. */
    kb_subs_fini(&subs);
    load(&subs);
    if (subs.n == 1)
        CHECK_INT(subs.items[0].follow_id.racy, 0);
    kb_subs_fini(&subs);

    /* Not even with its mtime an hour ahead (touch -d, rsync -t from a host
     * whose clock is ahead): the change time says when it changed, else it
     * would be read and hashed at every look for that hour. */
    struct timespec ahead;
    clock_gettime(CLOCK_REALTIME, &ahead);
    ahead.tv_sec += 3600;
    struct timespec times[2] = {{0, UTIME_OMIT}, ahead};
    CHECK_INT(utimensat(AT_FDCWD, tmp_path("volgers.csv"), times, 0), 0);
    usleep((useconds_t)(KB_FILE_TICK_NS / 1000) + 100 * 1000);
    load(&subs);
    if (subs.n == 1)
        CHECK_INT(subs.items[0].follow_id.racy, 0);
    kb_subs_fini(&subs);
}

/* The subscription files themselves: each file a load read is recorded
 * with the version read (kb_subs.files), so a reload notices an edit that
 * keeps the size within the tick of the read, as for follow lists. */
static void test_subscription_files(void)
{
    static const char one[] = "subscriptions:\n"
                              "  - name: a\n"
                              "    purpose: {id: p, legal_basis: w}\n"
                              "    types: [nl.brp.persoon-geboren]\n";
    /* the same size: another type */
    static const char two[] = "subscriptions:\n"
                              "  - name: a\n"
                              "    purpose: {id: p, legal_basis: w}\n"
                              "    types: [nl.brp.kind-toegevoegd]\n";
    char sub_dir[300];
    snprintf(sub_dir, sizeof sub_dir, "%s/subs.d", dir);
    CHECK_INT(mkdir(sub_dir, 0700), 0);
    write_file("subs.d/a.yaml", one);
    write_file("subs.d/b.yml", "subscriptions:\n  - name: b\n    purpose: {id: p, legal_basis: w}\n"
                               "    types: [nl.brp.persoon-verhuisd]\n");
    write_file("subs.d/notes.txt", "not read\n");
    struct kb_subs subs;
    char errstr[512] = "";
    CHECK_INT(kb_subs_load(sub_dir, key, sizeof key, &subs, errstr, sizeof errstr), KB_OK);
    CHECK_INT(subs.n_files, 2); /* the .txt is not a subscription file */
    if (subs.n_files != 2) {
        kb_subs_fini(&subs);
        return;
    }
    CHECK_STR(subs.files[0].path, tmp_path("subs.d/a.yaml"));
    CHECK_STR(subs.files[1].path, tmp_path("subs.d/b.yml"));
    struct kb_subs_file *a = &subs.files[0];
    CHECK_INT(a->id.racy, 1); /* just written */
    CHECK_INT(kb_file_changed(a->path, &a->id, KB_SUB_FILE_MAX), 0);

    struct stat st;
    CHECK_INT(stat(a->path, &st), 0);
    usleep(20 * 1000);
    rewrite_in_place("subs.d/a.yaml", two, st.st_mtim);
    struct stat st2;
    CHECK_INT(stat(a->path, &st2), 0);
    CHECK_INT(st2.st_size, st.st_size);
    /* Within the tick of the read even the change time can stay: pretend
     * it did. The hash of what was read tells. */
    a->id.ctime_ns = (int64_t)st2.st_ctim.tv_sec * 1000000000 + st2.st_ctim.tv_nsec;
    CHECK(kb_file_changed(a->path, &a->id, KB_SUB_FILE_MAX) != 0);
    a->id.racy = 0; /* without the hash, that edit would go unseen */
    CHECK_INT(kb_file_changed(a->path, &a->id, KB_SUB_FILE_MAX), 0);
    kb_subs_fini(&subs);
    CHECK_INT(subs.n_files, 0);
    CHECK(subs.files == NULL);

    /* One file: recorded too. */
    CHECK_INT(kb_subs_load(tmp_path("subs.d/b.yml"), key, sizeof key, &subs, errstr, sizeof errstr),
              KB_OK);
    CHECK_INT(subs.n_files, 1);
    kb_subs_fini(&subs);
    unlink(tmp_path("subs.d/a.yaml"));
    unlink(tmp_path("subs.d/b.yml"));
    unlink(tmp_path("subs.d/notes.txt"));
    rmdir(sub_dir);
}

static void test_bounded(void)
{
    write_file("subs.yaml", SUBS);
    write_file("volgers.csv", LIST_1);
    const char *path = tmp_path("subs.yaml");
    struct kb_subs subs;
    char errstr[512] = "";
    struct kb__subs_bound in_time = {kb_mono_ms() + 60000, NULL};
    CHECK_INT(kb__subs_load_bounded(path, key, sizeof key, &in_time, &subs, errstr, sizeof errstr),
              KB_OK);
    CHECK_INT(subs.n, 1);
    kb_subs_fini(&subs);

    struct kb__subs_bound late = {kb_mono_ms() - 1, NULL};
    CHECK_INT(kb__subs_load_bounded(path, key, sizeof key, &late, &subs, errstr, sizeof errstr),
              KB_ERR_TIMEOUT);
    CHECK(strstr(errstr, "not loaded within the time allowed") != NULL);
    CHECK_INT(subs.n, 0);

    atomic_int stop = 1;
    struct kb__subs_bound stopping = {0, &stop};
    CHECK_INT(kb__subs_load_bounded(path, key, sizeof key, &stopping, &subs, errstr, sizeof errstr),
              KB_ERR_TIMEOUT);
    CHECK(strstr(errstr, "stopping") != NULL);
    CHECK_INT(subs.n, 0);
}

int main(void)
{
    alarm(50);
    unsetenv("KETENBUS_TOPIC_PREFIX");
    snprintf(dir, sizeof dir, "/tmp/kb-test-sub-reload-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_same_size_same_mtime();
    test_racy_settles();
    test_subscription_files();
    test_bounded();
    unlink(tmp_path("subs.yaml"));
    unlink(tmp_path("volgers.csv"));
    rmdir(dir);
    KB_TEST_DONE();
}
