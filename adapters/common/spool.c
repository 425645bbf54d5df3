/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * spool.c - spool folders (see spool.h). Every move is a rename within one
 * file system followed by an fsync of the folders, so after a crash a file
 * is in exactly one of in/, done/ or quarantine/ (on a file system without
 * RENAME_NOREPLACE see rename_noreplace()).
 */
#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "adapter.h"
#include "adapter_metrics.h"
#include "hmac.h" /* bus/src: kb__hex */
#include "ingress.h"
#include "ketenbus/log.h"
#include "spool.h"

#define COMP "spool"
#define QUARANTINE_REASON_MAX (128u << 10) /* bytes of a .reason file, newline included */
#define MAX_SUFFIX 99999 /* <name>.1 ... <name>.99999: a name reused daily for centuries */
/* Hex digits of the name's SHA-256 in a name cut to fit (see candidate()). */
#define HASH_HEX              8
#define REASON_EXT            ".reason"
/* Longest name of a file in done/, and in quarantine/, where <name>.reason
 * and the temp file kb_file_write_atomic() writes first, ".<name>.reason.tmp",
 * must fit NAME_MAX too. */
#define DONE_NAME_MAX         ((size_t)NAME_MAX)
#define QUARANTINE_NAME_MAX   ((size_t)NAME_MAX - (sizeof "." REASON_EXT ".tmp" - 1))

static const char *const spool_subdirs[] = {"in", "done", "quarantine", "out"};

/* An oversize file is hashed up to this size: hashing must not take
 * unbounded time either. */
#define OVERSIZE_HASHED (1ull << 30)

/* SHA-256 of in/@p name as hex into @p sha ("" when it cannot be read or is
 * larger than OVERSIZE_HASHED) and its size into *@p size (-1 unknown). */
static void hash_in_file(const struct kb_spool *sp, const char *name, char sha[65], long long *size)
{
    char path[2600];
    sha[0] = '\0';
    *size = -1;
    kb_spool_path(sp, "in", name, path, sizeof path);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *piece = malloc(1u << 16);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !md || !piece)
        goto out;
    *size = (long long)st.st_size;
    if ((unsigned long long)st.st_size > OVERSIZE_HASHED ||
        !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        goto out;
    ssize_t got;
    while ((got = read(fd, piece, 1u << 16)) > 0)
        EVP_DigestUpdate(md, piece, (size_t)got);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (got == 0 && EVP_DigestFinal_ex(md, digest, &dlen) && dlen == 32) {
        kb__hex(digest, 32, sha);
        sha[64] = '\0';
    }
out:
    free(piece);
    EVP_MD_CTX_free(md);
    close(fd);
}

void kb_spool_oversize_reason(const struct kb_spool *sp, const char *name, const char *rule,
                              size_t limit, char *out, size_t out_size)
{
    char sha[65], lim[32];
    long long size;
    hash_in_file(sp, name, sha, &size);
    if (limit && limit % (1u << 20) == 0)
        snprintf(lim, sizeof lim, "%zu MiB", limit >> 20);
    else
        snprintf(lim, sizeof lim, "%zu bytes", limit);
    char sz[40];
    if (size >= 0)
        snprintf(sz, sizeof sz, "%lld bytes", size);
    else
        snprintf(sz, sizeof sz, "size unknown"); /* gone or unreadable since the read */
    snprintf(out, out_size,
             "%s: file larger than %s (%s, sha256 %s); not read, kept in the quarantine folder",
             rule, lim, sz, sha[0] ? sha : "not computed");
}

void kb_spool_path(const struct kb_spool *sp, const char *sub, const char *name, char *out,
                   size_t out_size)
{
    int n = snprintf(out, out_size, "%s/%s%s%s", sp->dir, sub, name ? "/" : "", name ? name : "");
    /* A path that does not fit must not name a different, shorter file. */
    if (n < 0 || (size_t)n >= out_size)
        out[0] = '\0';
}

static int mkdir_p(const char *path)
{
    char tmp[2400];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s", path) >= sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

/*
 * Make the names in folder @p dir durable. 0, or -1 with errno when the
 * folder could not be opened or synced: a rename done before is then in
 * place but may not survive a crash. A file write reports that as a
 * failure (its caller writes again, the same bytes under the same name);
 * a move cannot be undone, so it is logged (moved() below).
 */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* fsync_dir() of both folders of a move that has happened. */
static void moved(const char *to_dir, const char *from_dir)
{
    if (fsync_dir(to_dir) || (from_dir && fsync_dir(from_dir)))
        KB_LOG_WARN(COMP,
                    "cannot sync a spool folder after a move; the move may not survive a crash",
                    "errno=%d", errno);
}

kb_err_t kb_spool_open(struct kb_spool *sp, const char *dir, char *errstr, size_t errstr_size)
{
    if (strlen(dir) >= sizeof sp->dir - 32)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "spool path too long");
    memset(sp, 0, sizeof *sp);
    snprintf(sp->dir, sizeof sp->dir, "%s", dir);
    for (size_t i = 0; i < sizeof spool_subdirs / sizeof spool_subdirs[0]; i++) {
        char path[2200];
        kb_spool_path(sp, spool_subdirs[i], NULL, path, sizeof path);
        if (mkdir_p(path) != 0)
            return kb_err_set(KB_ERR_IO, errstr, errstr_size, "cannot create %s: %s", path,
                              strerror(errno));
    }
    return KB_OK;
}

static int visible(const struct dirent *de)
{
    /* Dot files are in-flight writes. Every other name is the sender's,
     * "x.reason" too: reasons are written to quarantine/, never to in/. */
    return de->d_name[0] != '.';
}

/* Move in/@p name, which is no regular file (a symbolic link, a fifo, a
 * socket), to quarantine/ unread: following a link could publish any file
 * the adapter may read (its key file, /etc/passwd), opening a fifo blocks. */
static void quarantine_unread(const struct kb_spool *sp, const char *name, mode_t mode)
{
    const char *what = S_ISLNK(mode) ? "symbolic link" : S_ISFIFO(mode) ? "fifo" : "special file";
    KB_LOG_WARN(COMP, "not a regular file; quarantined unread", "kind=%s", what);
    kb_adapter_count_refused("spool", "not-a-regular-file");
    char reason[128];
    snprintf(reason, sizeof reason, "not a regular file (%s); not read", what);
    if (kb_spool_quarantine(sp, name, NULL, reason) != KB_OK)
        KB_LOG_ERR(COMP, "cannot move a non-regular file to quarantine", "kind=%s", what);
}

/* Forget the failed reads of files no longer in in/ (an operator took one
 * away): a new file of the same name starts from zero. */
static void forget_gone(struct kb_spool *sp)
{
    for (size_t i = 0; i < KB_SPOOL_FAILING_MAX; i++) {
        struct kb_spool_failing *f = &sp->failing[i];
        char path[2600];
        struct stat st;
        if (!f->name[0])
            continue;
        kb_spool_path(sp, "in", f->name, path, sizeof path);
        if (lstat(path, &st) != 0 && errno == ENOENT)
            memset(f, 0, sizeof *f);
    }
}

kb_err_t kb_spool_list(struct kb_spool *sp, char ***names, size_t *n)
{
    forget_gone(sp);
    char path[2200];
    kb_spool_path(sp, "in", NULL, path, sizeof path);
    struct dirent **ents;
    int cnt = scandir(path, &ents, visible, alphasort);
    if (cnt < 0)
        return KB_ERR_IO;
    char **out = calloc((size_t)cnt + 1, sizeof *out);
    size_t k = 0;
    for (int i = 0; i < cnt; i++) {
        if (out) {
            char fp[2600];
            struct stat st;
            snprintf(fp, sizeof fp, "%s/%s", path, ents[i]->d_name);
            if (lstat(fp, &st) != 0) {
                /* gone since the listing */
            } else if (S_ISREG(st.st_mode)) {
                out[k] = strdup(ents[i]->d_name);
                if (out[k])
                    k++;
            } else if (!S_ISDIR(st.st_mode)) { /* folders are the sender's business */
                quarantine_unread(sp, ents[i]->d_name, st.st_mode);
            }
        }
        free(ents[i]);
    }
    free(ents);
    if (!out)
        return KB_ERR_NOMEM;
    kb_adapter_spool_backlog(k);
    *names = out;
    *n = k;
    return KB_OK;
}

void kb_spool_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The failure slot of @p name, or NULL. */
static struct kb_spool_failing *failing_find(struct kb_spool *sp, const char *name)
{
    for (size_t i = 0; i < KB_SPOOL_FAILING_MAX; i++)
        if (sp->failing[i].name[0] && !strcmp(sp->failing[i].name, name))
            return &sp->failing[i];
    return NULL;
}

static void failing_forget(struct kb_spool *sp, const char *name)
{
    struct kb_spool_failing *f = failing_find(sp, name);
    if (f)
        memset(f, 0, sizeof *f);
}

/* Count one more failed read of @p name; returns the count. With every slot
 * taken the least-tried file is forgotten: it is still logged and skipped,
 * only its quarantine comes later. */
static unsigned failing_count(struct kb_spool *sp, const char *name)
{
    struct kb_spool_failing *f = failing_find(sp, name);
    if (!f) {
        f = &sp->failing[0];
        for (size_t i = 0; i < KB_SPOOL_FAILING_MAX && f->name[0]; i++)
            if (!sp->failing[i].name[0] || sp->failing[i].attempts < f->attempts)
                f = &sp->failing[i];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", name);
    }
    return ++f->attempts;
}

/* A read of in/@p name failed with @p err (0: the file changed size while
 * read). Log it; quarantine the file once it failed often enough. */
static void read_failed(struct kb_spool *sp, const char *name, int err)
{
    const char *what = err ? strerror(err) : "file changed while read";
    if (err == ENOENT) { /* taken away since the listing: nothing to handle */
        KB_LOG_DBG(COMP, "spool file gone before it was read", "errno=%d", err);
        return;
    }
    if (err == ENOMEM || err == EMFILE || err == ENFILE) {
        /* the process is short of something, not the file: never its fault */
        KB_LOG_ERR(COMP, "cannot read spool file; skipped this scan", "errno=%d error=\"%s\"",
                   err, what);
        return;
    }
    unsigned attempts = failing_count(sp, name);
    if (attempts < KB_SPOOL_READ_ATTEMPTS) {
        KB_LOG_WARN(COMP, "cannot read spool file; skipped this scan",
                    "errno=%d error=\"%s\" attempt=%u of=%u", err, what, attempts,
                    KB_SPOOL_READ_ATTEMPTS);
        return;
    }
    KB_LOG_ERR(COMP, "cannot read spool file; quarantined unread",
               "errno=%d error=\"%s\" attempts=%u", err, what, attempts);
    kb_adapter_count_refused("spool", "unreadable");
    char reason[256];
    snprintf(reason, sizeof reason, "unreadable: %s (errno %d) on %u reads in a row; not read",
             what, err, attempts);
    if (kb_spool_quarantine(sp, name, NULL, reason) != KB_OK) {
        KB_LOG_ERR(COMP, "cannot move an unreadable file to quarantine", "errno=%d", errno);
        return; /* counted on: the next scan tries again */
    }
    failing_forget(sp, name);
}

/* Read the @p size bytes of @p fd into a new *@p buf. KB_ERR_NOMEM, or
 * KB_ERR_IO with the errno in *@p rerr (0: the file changed size while read). */
static kb_err_t read_exact(int fd, size_t size, uint8_t **buf, int *rerr)
{
    uint8_t *b = malloc(size + 1);
    if (!b)
        return KB_ERR_NOMEM;
    size_t got = 0;
    *rerr = 0;
    while (got < size) {
        ssize_t r = read(fd, b + got, size - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            *rerr = r < 0 ? errno : 0;
            break;
        }
        got += (size_t)r;
    }
    if (got != size) {
        free(b);
        return KB_ERR_IO;
    }
    *buf = b;
    return KB_OK;
}

static int64_t mtime_ms_of(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

static void file_of(const struct stat *st, struct kb_spool_file *file)
{
    file->dev = st->st_dev;
    file->ino = st->st_ino;
    file->size = st->st_size;
    file->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Whether @p path (no link followed) is @p file: 1 yes, 0 another file,
 * -1 none or it cannot be told (lstat failed). */
static int is_file(const char *path, const struct kb_spool_file *file)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    return S_ISREG(st.st_mode) && st.st_dev == file->dev && st.st_ino == file->ino &&
           st.st_size == file->size &&
           (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == file->mtime_ns;
}

kb_err_t kb_spool_read(struct kb_spool *sp, const char *name, size_t max, uint8_t **buf,
                       size_t *len, int64_t *mtime_ms, struct kb_spool_file *file)
{
    char path[2600];
    kb_spool_path(sp, "in", name, path, sizeof path);
    /* No links followed, no blocking on a fifo swapped in after the listing. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP) /* O_NOFOLLOW met a link */
            quarantine_unread(sp, name, S_IFLNK);
        else
            read_failed(sp, name, errno);
        return KB_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        read_failed(sp, name, errno);
        close(fd);
        return KB_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        /* A folder is the sender's business (the listing skips it from now
         * on); anything else is quarantined as the listing would. */
        if (S_ISDIR(st.st_mode))
            KB_LOG_WARN(COMP, "spool file turned into a folder; left alone", "kind=%s", "folder");
        else
            quarantine_unread(sp, name, st.st_mode);
        failing_forget(sp, name);
        return KB_ERR_IO;
    }
    kb_adapter_count_message("spool", "received");
    /* From the descriptor that is read: the name may be another file by now. */
    if (file)
        file_of(&st, file);
    if ((size_t)st.st_size > max) {
        close(fd);
        failing_forget(sp, name);
        return KB_ERR_RANGE;
    }
    int rerr = 0;
    kb_err_t err = read_exact(fd, (size_t)st.st_size, buf, &rerr);
    close(fd);
    if (err) {
        read_failed(sp, name, err == KB_ERR_NOMEM ? ENOMEM : rerr);
        return err;
    }
    failing_forget(sp, name);
    *len = (size_t)st.st_size;
    *mtime_ms = mtime_ms_of(&st);
    return KB_OK;
}

/* The first step of rename_noreplace() and move_read_file(): 0 renamed; 1
 * linked by the fallback (@p from is still there, for the caller to
 * remove); -1 failed (errno). */
static int rename_or_link(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    return link(from, to) == 0 ? 1 : -1;
}

/*
 * rename(2) that never replaces: an existing @p to fails with EEXIST. Where
 * the file system lacks RENAME_NOREPLACE (EINVAL; ENOSYS on old kernels)
 * link + unlink does the same; a crash between the two leaves the file in
 * both folders, so it is handled once more (same event ids), never lost.
 */
static int rename_noreplace(const char *from, const char *to)
{
    int r = rename_or_link(from, to);
    if (r <= 0)
        return r;
    if (unlink(from) != 0) {
        int e = errno;
        unlink(to);
        errno = e;
        return -1;
    }
    return 0;
}

static int taken(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/*
 * Candidate @p k for @p name in @p sub (candidate()): "<name>" or "<name>.<k>",
 * as name (@p cand) and path (@p path). 0 when they do not fit @p cand_size.
 * fit_name() gives "<name><suffix>" so (1, or 0 when @p out is too small),
 * for candidates and for the pieces of kb_spool_piece_name().
 *
 * A candidate longer than @p max_len bytes (a name near NAME_MAX that cannot
 * take its suffix, or its ".reason") would fail every move, scan after scan.
 * It becomes "<prefix>~<hash><suffix>" instead: <prefix> is
 * the start of the name, cut before a UTF-8 sequence so the name stays text,
 * and <hash> the first HASH_HEX digits of the SHA-256 of the whole name, so
 * the archived file can still be told from the name the sender gave it.
 * Uniqueness does not rest on the hash: a taken candidate is skipped anyway.
 */
static int fit_name(const char *name, const char *suffix, size_t max_len, char *out,
                    size_t out_size)
{
    size_t len = strlen(name), slen = strlen(suffix);
    int n;
    if (len + slen <= max_len) {
        n = snprintf(out, out_size, "%s%s", name, suffix);
    } else {
        char sha[65];
        size_t keep = max_len - (1 + HASH_HEX) - slen;
        while (keep && ((unsigned char)name[keep] & 0xc0) == 0x80)
            keep--;
        kb_sha256_hex(name, len, sha);
        n = snprintf(out, out_size, "%.*s~%.*s%s", (int)keep, name, HASH_HEX, sha, suffix);
    }
    return n >= 0 && (size_t)n < out_size;
}

static int candidate(const struct kb_spool *sp, const char *sub, const char *name, unsigned k,
                     size_t max_len, char *cand, size_t cand_size, char *path, size_t path_size)
{
    char suffix[16] = "";
    if (k)
        snprintf(suffix, sizeof suffix, ".%u", k);
    if (!fit_name(name, suffix, max_len, cand, cand_size))
        return 0;
    kb_spool_path(sp, sub, cand, path, path_size);
    return path[0] != '\0';
}

kb_err_t kb_spool_piece_name(const char *name, const char *suffix, char *out, size_t out_size)
{
    /* a suffix longer than the room a cut name leaves would underflow the cut */
    if (strlen(suffix) > QUARANTINE_NAME_MAX - (1 + HASH_HEX))
        return KB_ERR_RANGE;
    return fit_name(name, suffix, QUARANTINE_NAME_MAX, out, out_size) ? KB_OK : KB_ERR_RANGE;
}

/* A candidate other than the name itself (suffixed or shortened) is also
 * taken while a file of that very name waits in in/: it will want that name
 * itself (see spool.h). */
static int candidate_taken(const struct kb_spool *sp, const char *name, const char *cand,
                           const char *path)
{
    char in_path[2600];
    if (taken(path))
        return 1;
    if (!strcmp(cand, name))
        return 0;
    kb_spool_path(sp, "in", cand, in_path, sizeof in_path);
    return taken(in_path);
}

kb_err_t kb_spool_done_name(const struct kb_spool *sp, const char *name, char *out,
                            size_t out_size)
{
    char path[2600];
    for (unsigned k = 0; k <= MAX_SUFFIX; k++) {
        if (!candidate(sp, "done", name, k, DONE_NAME_MAX, out, out_size, path, sizeof path))
            return KB_ERR_RANGE;
        if (!candidate_taken(sp, name, out, path))
            return KB_OK;
    }
    return KB_ERR_RANGE;
}

/*
 * A name of in/ replaced while its file was handled (spool.h, struct
 * kb_spool_file). Files are read and moved by name, as senders address
 * them; nothing is renamed at pick-up. So a sender's rename over the name
 * between kb_spool_read() and the move would hand the move a file nobody
 * read. Two checks keep it in in/:
 *
 *  1. before the move, the name must still be the file read (replaced());
 *  2. rename(2) is by name, so a sender's rename landing between that look
 *     and the move (a few system calls: microseconds) still moves the new
 *     file. The move's target is the adapter's own (done/ and quarantine/
 *     are written by its scanning thread, and a frame transport's staged
 *     messages only under names of their own), so it is looked at after
 *     the move (moved_other()): another file there is moved back to in/.
 *
 * That closes the window but for a third file renamed over the name in
 * those microseconds as well: the moved-back file cannot take the name again
 * without replacing it, so it stays in done/ or quarantine/, and an error
 * names where it is, so nothing vanishes unseen. On a file system without
 * RENAME_NOREPLACE, move_read_file() never unlinks a name it has not
 * checked. Closing the last case would need a private name at pick-up (the
 * file renamed to a dot-name when read) and a start-up recovery of such
 * names after a crash.
 */
static void log_replaced(const char *name)
{
    KB_LOG_WARN(COMP, "spool file replaced by the sender while handled; new file left in in/",
                "file=\"%s\"", kb_adapter_name_may_hold_id(name) ? "(name withheld)" : name);
}

/* 1 when @p file is given and @p from_path no longer holds it (logged). */
static int replaced(const char *from_path, const char *name, const struct kb_spool_file *file)
{
    /* A name gone, or that cannot be looked at, is left to the move to report. */
    if (!file || is_file(from_path, file) != 0)
        return 0;
    log_replaced(name);
    return 1;
}

/* After @p from_path was moved to @p to_path: 1 when that was not @p file
 * (check 2 above) and it is moved back; when it cannot be, an error names
 * where it is (0). */
static int moved_other(const char *from_path, const char *to_path, const char *to_name,
                       const char *name, const struct kb_spool_file *file)
{
    if (!file || is_file(to_path, file) != 0)
        return 0;
    if (rename_noreplace(to_path, from_path) == 0) {
        log_replaced(name);
        return 1;
    }
    KB_LOG_ERR(COMP,
               "spool file replaced by the sender while handled was moved unread; "
               "hand it in again under a new name",
               "errno=%d moved_to=\"%s\"", errno,
               kb_adapter_name_may_hold_id(to_name) ? "(name withheld)" : to_name);
    return 0;
}

/*
 * rename_noreplace(@p from, @p to) of the file read, @p file (NULL: whatever
 * is there): 0 moved, 1 nothing moved because @p from holds another file
 * (logged), -1 failed (errno). With RENAME_NOREPLACE the move is one call
 * and moved_other() looks at its result. Its link + unlink fallback would
 * unlink by name whatever a sender renamed over @p from in between, so here
 * the fallback never unlinks a name it has not checked: after the link, the
 * link must be the file read; then @p from is renamed (atomically, whatever
 * it is) to a private dot-name in its folder, which scans skip and only this
 * thread uses, and only there, checked once more, is it unlinked. A newer
 * file found there goes back to @p from; should a third have taken that
 * name meanwhile, an error names where the newer one waits.
 */
static int move_read_file(const char *from, const char *to, const char *name,
                          const struct kb_spool_file *file)
{
    if (!file)
        return rename_noreplace(from, to);
    int r = rename_or_link(from, to);
    if (r <= 0)
        return r;
    if (is_file(to, file) != 1) { /* replaced before the link: take the link back */
        unlink(to);
        log_replaced(name);
        return 1;
    }
    char priv[2600];
    const char *slash = strrchr(from, '/');
    snprintf(priv, sizeof priv, "%.*s/.kb-spool-moving", slash ? (int)(slash - from) : 1,
             slash ? from : ".");
    /* One left by a crash here may be a sender's newer file: never replaced */
    if (taken(priv)) {
        KB_LOG_ERR(COMP, "a file waits under the spool's private name; move it back to in/",
                   "waits_as=\".kb-spool-moving\"");
        unlink(to);
        errno = EBUSY;
        return -1;
    }
    if (rename(from, priv) != 0) {
        int e = errno;
        unlink(to);
        errno = e;
        return -1;
    }
    if (is_file(priv, file) == 1) {
        unlink(priv);
        return 0;
    }
    /* A newer file was renamed over the name after the link: the file read
     * is archived at @p to, the newer one goes back for the next scan. */
    if (link(priv, from) == 0) {
        unlink(priv);
        log_replaced(name);
        return 0;
    }
    KB_LOG_ERR(COMP,
               "spool file replaced by the sender while handled waits under a private name; "
               "hand it in again under a new name",
               "errno=%d waits_as=\".kb-spool-moving\"", errno);
    return 0;
}

/* Move @p from_path (in folder @p from_dir) to @p to_sub under the first
 * free candidate for @p name, durably, when it is @p file (NULL: any). The
 * chosen name into @p out; "" when the name held another file, left. */
static kb_err_t move_unique(const struct kb_spool *sp, const char *from_path, const char *from_dir,
                            const char *to_sub, const char *name, const struct kb_spool_file *file,
                            char *out, size_t out_size)
{
    char to_path[2600], to_dir[2200];
    if (replaced(from_path, name, file)) {
        out[0] = '\0';
        return KB_OK;
    }
    for (unsigned k = 0; k <= MAX_SUFFIX; k++) {
        if (!candidate(sp, to_sub, name, k, DONE_NAME_MAX, out, out_size, to_path, sizeof to_path))
            return KB_ERR_RANGE;
        if (candidate_taken(sp, name, out, to_path))
            continue;
        int mv = move_read_file(from_path, to_path, name, file);
        if (mv < 0) {
            if (errno == EEXIST) /* appeared since the look: next one */
                continue;
            return KB_ERR_IO;
        }
        if (mv == 1) {
            out[0] = '\0';
            return KB_OK;
        }
        kb_spool_path(sp, to_sub, NULL, to_dir, sizeof to_dir);
        moved(to_dir, from_dir);
        if (moved_other(from_path, to_path, out, name, file)) {
            moved(from_dir, to_dir);
            out[0] = '\0';
        }
        return KB_OK;
    }
    return KB_ERR_RANGE;
}

kb_err_t kb_spool_done(const struct kb_spool *sp, const char *name,
                       const struct kb_spool_file *file)
{
    char from_path[2600], from_dir[2200], done_name[300];
    kb_spool_path(sp, "in", name, from_path, sizeof from_path);
    kb_spool_path(sp, "in", NULL, from_dir, sizeof from_dir);
    kb_err_t err =
        move_unique(sp, from_path, from_dir, "done", name, file, done_name, sizeof done_name);
    /* counted also when the name was replaced: the file read was handled */
    if (!err)
        kb_adapter_count_message("spool", "accepted");
    return err;
}

kb_err_t kb_file_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[2700];
    const char *slash = strrchr(path, '/');
    /* The temp name starts with "." so spool readers skip it. */
    if (slash)
        snprintf(tmp, sizeof tmp, "%.*s/.%s.tmp", (int)(slash - path), path, slash + 1);
    else
        snprintf(tmp, sizeof tmp, ".%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0)
        return KB_ERR_IO;
    const uint8_t *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno; /* the caller logs why the write failed */
            close(fd);
            unlink(tmp);
            errno = e;
            return KB_ERR_IO;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return KB_ERR_IO;
    }
    char dir[2700];
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (fsync_dir(dir))
            return KB_ERR_IO; /* in place, but maybe not after a crash */
    }
    return KB_OK;
}

/*
 * Move @p from_path (in @p from_dir) into quarantine/ as the first free
 * candidate for @p name whose .reason is free too, with @p reason in that
 * .reason, when it is @p file (NULL: any; see replaced()). The reason is
 * written first: a crash in between leaves a reason without a file, never
 * a file without its reason.
 */
static kb_err_t quarantine_write(const struct kb_spool *sp, const char *from_path,
                                 const char *from_dir, const char *name,
                                 const struct kb_spool_file *file, const char *line, size_t n);

static kb_err_t quarantine_move(const struct kb_spool *sp, const char *from_path,
                                const char *from_dir, const char *name,
                                const struct kb_spool_file *file, const char *reason)
{
    /* The reason whole, with its newline (a file with many bad records has
     * a long one: the SVB adapter's go up to 64 KiB), but never beyond
     * QUARANTINE_REASON_MAX, cut there and marked. */
    size_t n = strlen(reason);
    int cut = n > QUARANTINE_REASON_MAX - 1;
    if (cut)
        n = QUARANTINE_REASON_MAX - 1;
    char *line = malloc(n + 1);
    if (!line)
        return KB_ERR_NOMEM;
    memcpy(line, reason, n);
    if (cut)
        memcpy(line + n - 3, "...", 3);
    line[n++] = '\n';
    kb_err_t err = quarantine_write(sp, from_path, from_dir, name, file, line, n);
    free(line);
    return err;
}

static kb_err_t quarantine_write(const struct kb_spool *sp, const char *from_path,
                                 const char *from_dir, const char *name,
                                 const struct kb_spool_file *file, const char *line, size_t n)
{
    char qname[600], qpath[2600], rpath[2700], qdir[2200];
    kb_spool_path(sp, "quarantine", NULL, qdir, sizeof qdir);
    if (replaced(from_path, name, file))
        return KB_OK;
    for (unsigned k = 0; k <= MAX_SUFFIX; k++) {
        if (!candidate(sp, "quarantine", name, k, QUARANTINE_NAME_MAX, qname, sizeof qname, qpath,
                       sizeof qpath))
            return KB_ERR_RANGE;
        snprintf(rpath, sizeof rpath, "%s%s", qpath, REASON_EXT);
        if (candidate_taken(sp, name, qname, qpath) || taken(rpath))
            continue;
        kb_err_t err = kb_file_write_atomic(rpath, line, n);
        if (err)
            return err;
        int mv = move_read_file(from_path, qpath, name, file);
        if (mv != 0) {
            int e = errno;
            unlink(rpath);
            if (mv == 1)
                return KB_OK;
            if (e == EEXIST)
                continue;
            return KB_ERR_IO;
        }
        moved(qdir, from_dir);
        if (moved_other(from_path, qpath, qname, name, file)) {
            unlink(rpath); /* the reason of the file read, not of this one */
            moved(from_dir, qdir);
        }
        return KB_OK;
    }
    return KB_ERR_RANGE;
}

/* Whether the regular file @p path holds exactly @p len bytes @p data. */
static int same_bytes(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len;
    uint8_t buf[65536];
    for (size_t at = 0; same && at < len;) {
        ssize_t n = read(fd, buf, len - at < sizeof buf ? len - at : sizeof buf);
        if (n <= 0)
            same = 0;
        else if (memcmp(buf, (const uint8_t *)data + at, (size_t)n))
            same = 0;
        else
            at += (size_t)n;
    }
    close(fd);
    return same;
}

int kb_spool_quarantined_before(const struct kb_spool *sp, const char *name, const void *data,
                                size_t len)
{
    char cand[300], path[2600], rpath[2700];
    /* Candidates are taken in order (quarantine_move), so the first one
     * free of both file and reason ends the search. */
    for (unsigned k = 0; k <= MAX_SUFFIX; k++) {
        if (!candidate(sp, "quarantine", name, k, QUARANTINE_NAME_MAX, cand, sizeof cand, path,
                       sizeof path))
            return 0;
        snprintf(rpath, sizeof rpath, "%s%s", path, REASON_EXT);
        if (!taken(path) && !taken(rpath))
            return 0;
        if (same_bytes(path, data, len))
            return 1;
    }
    return 0;
}

kb_err_t kb_spool_quarantine_piece(const struct kb_spool *sp, const char *name, const char *suffix,
                                   const void *data, size_t len, const char *reason,
                                   size_t reason_len)
{
    char qname[600], path[2800], sfx[64];
    for (unsigned k = 0;; k++) {
        if (k > MAX_SUFFIX)
            return KB_ERR_RANGE;
        snprintf(sfx, sizeof sfx, k ? "%s.%u" : "%s", suffix, k);
        kb_err_t err = kb_spool_piece_name(name, sfx, qname, sizeof qname);
        if (err)
            return err;
        kb_spool_path(sp, "quarantine", qname, path, sizeof path);
        struct stat st;
        if (lstat(path, &st) != 0 || same_bytes(path, data, len))
            break;
    }
    kb_err_t err = kb_file_write_atomic(path, data, len);
    if (err)
        return err;
    strncat(path, REASON_EXT, sizeof path - strlen(path) - 1);
    return kb_file_write_atomic(path, reason, reason_len);
}

kb_err_t kb_spool_quarantine(const struct kb_spool *sp, const char *name,
                             const struct kb_spool_file *file, const char *reason)
{
    char from_path[2600], from_dir[2200];
    kb_spool_path(sp, "in", name, from_path, sizeof from_path);
    kb_spool_path(sp, "in", NULL, from_dir, sizeof from_dir);
    kb_err_t err = quarantine_move(sp, from_path, from_dir, name, file, reason);
    /* counted here, not in quarantine_move(): a staged TCP frame that goes
     * to quarantine/ is the TCP transport's (the caller counts it there) */
    if (!err)
        kb_adapter_count_message("spool", "quarantined");
    return err;
}

kb_err_t kb_spool_write_out(const struct kb_spool *sp, const char *name, const void *data,
                            size_t len)
{
    char path[2600];
    kb_spool_path(sp, "out", name, path, sizeof path);
    return kb_file_write_atomic(path, data, len);
}

/* done/.<name>.staged, or "" when it does not fit. */
static void staged_path(const struct kb_spool *sp, const char *name, char *out, size_t out_size)
{
    char staged[600];
    int n = snprintf(staged, sizeof staged, ".%s.staged", name);
    if (n < 0 || (size_t)n >= sizeof staged)
        out[0] = '\0';
    else
        kb_spool_path(sp, "done", staged, out, out_size);
}

kb_err_t kb_spool_stage(const struct kb_spool *sp, const char *name, const void *data, size_t len)
{
    char path[2600];
    staged_path(sp, name, path, sizeof path);
    return path[0] ? kb_file_write_atomic(path, data, len) : KB_ERR_RANGE;
}

kb_err_t kb_spool_stage_done(const struct kb_spool *sp, const char *name)
{
    char from[2600], to[2600], dir[2200];
    staged_path(sp, name, from, sizeof from);
    kb_spool_path(sp, "done", name, to, sizeof to);
    if (!from[0] || !to[0])
        return KB_ERR_RANGE;
    if (rename_noreplace(from, to) != 0) {
        if (errno != EEXIST)
            return KB_ERR_IO;
        /* a resend of a message archived before: same name, same bytes */
        if (unlink(from) != 0)
            return KB_ERR_IO;
    }
    kb_spool_path(sp, "done", NULL, dir, sizeof dir);
    moved(dir, NULL);
    return KB_OK;
}

kb_err_t kb_spool_stage_quarantine(const struct kb_spool *sp, const char *name,
                                   const char *reason)
{
    char from[2600], dir[2200];
    staged_path(sp, name, from, sizeof from);
    kb_spool_path(sp, "done", NULL, dir, sizeof dir);
    return from[0] ? quarantine_move(sp, from, dir, name, NULL, reason) : KB_ERR_RANGE;
}

kb_err_t kb_spool_stage_drop(const struct kb_spool *sp, const char *name)
{
    char path[2600];
    staged_path(sp, name, path, sizeof path);
    if (!path[0])
        return KB_ERR_RANGE;
    return unlink(path) == 0 || errno == ENOENT ? KB_OK : KB_ERR_IO;
}

/* scandir filter: ".<name>.staged" with a non-empty <name>. The temp files
 * of kb_file_write_atomic() end in ".tmp", so they never pass. */
static int staged_entry(const struct dirent *de)
{
    size_t l = strlen(de->d_name), sl = sizeof ".staged" - 1;
    return de->d_name[0] == '.' && l > 1 + sl && !strcmp(de->d_name + l - sl, ".staged");
}

kb_err_t kb_spool_staged_each(const struct kb_spool *sp, int (*fn)(void *opaque, const char *name),
                              void *opaque)
{
    char dir[2200];
    kb_spool_path(sp, "done", NULL, dir, sizeof dir);
    struct dirent **ents;
    /* The whole list first: fn moves the files it is given out of done/. */
    int cnt = scandir(dir, &ents, staged_entry, alphasort);
    if (cnt < 0)
        return errno == ENOMEM ? KB_ERR_NOMEM : KB_ERR_IO;
    int stop = 0;
    for (int i = 0; i < cnt; i++) {
        const char *d_name = ents[i]->d_name;
        char path[2600], name[256];
        struct stat st;
        size_t nl = strlen(d_name) - 1 - (sizeof ".staged" - 1);
        memcpy(name, d_name + 1, nl); /* d_name holds at most 255 bytes */
        name[nl] = '\0';
        snprintf(path, sizeof path, "%s/%s", dir, d_name);
        if (stop || lstat(path, &st) != 0) {
            /* stopped, or gone since the listing */
        } else if (S_ISREG(st.st_mode)) {
            stop = fn(opaque, name) != 0;
        } else {
            /* staging writes regular files only: whatever a link names is
             * not a message that arrived, so it is neither read nor moved */
            KB_LOG_WARN(COMP, "staged name is not a regular file; left alone", "kind=\"%s\"",
                        S_ISLNK(st.st_mode)   ? "symbolic link"
                        : S_ISDIR(st.st_mode) ? "folder"
                                              : "special file");
        }
        free(ents[i]);
    }
    free(ents);
    return KB_OK;
}

kb_err_t kb_spool_stage_read(const struct kb_spool *sp, const char *name, size_t max, uint8_t **buf,
                             size_t *len, int64_t *mtime_ms)
{
    char path[2600];
    staged_path(sp, name, path, sizeof path);
    if (!path[0]) /* too long a name was never staged */
        return KB_ERR_NOTFOUND;
    /* No links followed (a link could publish any file the adapter may
     * read), no blocking on a fifo. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? KB_ERR_NOTFOUND : KB_ERR_IO;
    struct stat st;
    kb_err_t err = KB_OK;
    int e = 0;
    if (fstat(fd, &st) != 0) {
        e = errno;
        err = KB_ERR_IO;
    } else if (!S_ISREG(st.st_mode)) {
        e = EINVAL;
        err = KB_ERR_IO;
    } else if ((size_t)st.st_size > max) {
        err = KB_ERR_RANGE;
    } else {
        err = read_exact(fd, (size_t)st.st_size, buf, &e);
        if (err == KB_ERR_IO && !e)
            e = EAGAIN; /* changed size while read: try again later */
    }
    close(fd);
    if (err) {
        errno = err == KB_ERR_NOMEM ? ENOMEM : e;
        return err;
    }
    *len = (size_t)st.st_size;
    *mtime_ms = mtime_ms_of(&st);
    return KB_OK;
}
