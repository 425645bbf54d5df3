/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * log.c - structured one-line logs to stderr. Each line is assembled in a
 * local buffer and written with a single write(2), so lines from threads and
 * child processes sharing stderr never interleave.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ketenbus/log.h"

static atomic_int log_level = -1; /* -1: not yet read from KETENBUS_LOG */

static int current_level(void)
{
    int lvl = atomic_load(&log_level);
    if (lvl >= 0)
        return lvl;
    const char *env = getenv("KETENBUS_LOG");
    lvl = KB_LOG_INFO;
    if (env) {
        if (!strcasecmp(env, "debug"))
            lvl = KB_LOG_DEBUG;
        else if (!strcasecmp(env, "warn"))
            lvl = KB_LOG_WARN;
        else if (!strcasecmp(env, "error"))
            lvl = KB_LOG_ERROR;
    }
    atomic_store(&log_level, lvl);
    return lvl;
}

void kb_log_set_level(enum kb_log_level level)
{
    atomic_store(&log_level, (int)level);
}

int kb_log_enabled(enum kb_log_level level)
{
    return (int)level <= current_level();
}

void kb_log(enum kb_log_level level, const char *component, const char *msg, const char *fmt,
            ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (!kb_log_enabled(level))
        return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s comp=%s msg=\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), names[level], component, msg);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line - 2 && fmt && *fmt) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
