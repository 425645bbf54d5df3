/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * spool.c - spool folders (see spool.h). Every move is a rename within one
 * file system followed by an fsync of the folders, so after a crash a file
 * is in exactly one of in/, done/ or quarantine/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter_metrics.h"
#include "ketenbus/log.h"
#include "spool.h"

#define COMP "spool"

static const char *const spool_subdirs[] = {"in", "done", "quarantine", "out"};

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

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

kb_err_t kb_spool_open(struct kb_spool *sp, const char *dir, char *errstr, size_t errstr_size)
{
    if (strlen(dir) >= sizeof sp->dir - 32)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size, "spool path too long");
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
    size_t l = strlen(de->d_name);
    /* Dot files are in-flight writes; .reason files are our own notes. */
    return de->d_name[0] != '.' && !(l > 7 && !strcmp(de->d_name + l - 7, ".reason"));
}

static kb_err_t move(const struct kb_spool *sp, const char *name, const char *to);

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
    if (kb_spool_quarantine(sp, name, reason) != KB_OK)
        KB_LOG_ERR(COMP, "cannot move a non-regular file to quarantine", "kind=%s", what);
}

kb_err_t kb_spool_list(const struct kb_spool *sp, char ***names, size_t *n)
{
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

kb_err_t kb_spool_read(const struct kb_spool *sp, const char *name, size_t max, uint8_t **buf,
                       size_t *len, int64_t *mtime_ms)
{
    char path[2600];
    kb_spool_path(sp, "in", name, path, sizeof path);
    /* No links followed, no blocking on a fifo swapped in after the listing. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return KB_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return KB_ERR_IO;
    }
    kb_adapter_count_message("spool", "received");
    if ((size_t)st.st_size > max) {
        close(fd);
        return KB_ERR_RANGE;
    }
    uint8_t *b = malloc((size_t)st.st_size + 1);
    if (!b) {
        close(fd);
        return KB_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(b);
        return KB_ERR_IO;
    }
    *buf = b;
    *len = got;
    *mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return KB_OK;
}

static kb_err_t move(const struct kb_spool *sp, const char *name, const char *to)
{
    char from_path[2600], to_path[2600], from_dir[2200], to_dir[2200];
    kb_spool_path(sp, "in", name, from_path, sizeof from_path);
    kb_spool_path(sp, to, name, to_path, sizeof to_path);
    if (rename(from_path, to_path) != 0)
        return KB_ERR_IO;
    kb_spool_path(sp, "in", NULL, from_dir, sizeof from_dir);
    kb_spool_path(sp, to, NULL, to_dir, sizeof to_dir);
    fsync_dir(to_dir);
    fsync_dir(from_dir);
    return KB_OK;
}

kb_err_t kb_spool_done(const struct kb_spool *sp, const char *name)
{
    kb_err_t err = move(sp, name, "done");
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
            close(fd);
            unlink(tmp);
            return KB_ERR_IO;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return KB_ERR_IO;
    }
    char dir[2700];
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        fsync_dir(dir);
    }
    return KB_OK;
}

kb_err_t kb_spool_quarantine(const struct kb_spool *sp, const char *name, const char *reason)
{
    char rpath[2600], rname[600];
    snprintf(rname, sizeof rname, "%s.reason", name);
    kb_spool_path(sp, "quarantine", rname, rpath, sizeof rpath);
    char line[1200];
    int n = snprintf(line, sizeof line, "%s\n", reason);
    if (n < 0)
        n = 0;
    /* snprintf returns the length it wanted: a long reason (a file with many
     * bad records) is cut, never written past the buffer. */
    if ((size_t)n >= sizeof line) {
        n = (int)sizeof line - 1;
        memcpy(line + n - 4, "...\n", 4);
    }
    kb_err_t err = kb_file_write_atomic(rpath, line, (size_t)n);
    if (err)
        return err;
    err = move(sp, name, "quarantine");
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
