/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * log.c - structured one-line logs to stderr. Each line is assembled in a
 * local buffer and written with a single write(2), so lines from threads and
 * child processes sharing stderr never interleave.
 *
 * String values (%s, %c, the message, the component) often come from outside
 * (subject names, file names, broker messages): written raw, a newline in one
 * would forge a whole log line, and a quote inside a quoted value a field. So
 * each is escaped as it is written: control characters always (\n, \r, \t,
 * \xHH, C1 controls as \u00HH), and '"' and '\' inside a quoted value
 * (key="...%s..."); a bare value (key=%s) holding a space, '=', '"' or '\'
 * is written quoted, as logfmt would. Ordinary values come out byte for
 * byte as printf would write them.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
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

/* The line being built: never past cap, never half an escape. */
struct line {
    char *buf;  /* the bytes */
    size_t n;   /* used */
    size_t cap; /* usable (the newline is added after) */
};

static void put(struct line *l, const char *p, size_t len)
{
    if (len > l->cap - l->n)
        len = l->cap - l->n;
    memcpy(l->buf + l->n, p, len);
    l->n += len;
}

/* Write @p len bytes of @p s escaped (see the file comment); @p quoted: the
 * value stands between double quotes. Stops before an escape that does not fit. */
static void put_escaped(struct line *l, const char *s, size_t len, int quoted)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len; i++) {
        char esc[8];
        size_t k = 0;
        unsigned c = p[i];
        if (c == '\n' || c == '\r' || c == '\t') {
            esc[k++] = '\\';
            esc[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            esc[k++] = '\\';
            esc[k++] = 'x';
            esc[k++] = hex[c >> 4];
            esc[k++] = hex[c & 15];
        } else if (c == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
            /* U+0080..U+009F: NEL (U+0085) ends a line for some readers */
            memcpy(esc, "\\u00", 4);
            k = 4;
            esc[k++] = hex[p[i + 1] >> 4];
            esc[k++] = hex[p[i + 1] & 15];
            i++;
        } else if (quoted && (c == '"' || c == '\\')) {
            esc[k++] = '\\';
            esc[k++] = (char)c;
        } else {
            esc[k++] = (char)c;
        }
        if (k > l->cap - l->n)
            return;
        put(l, esc, k);
    }
}

/* printf with one conversion @p spec (a literal from kb_log's checked format,
 * with '*' already replaced by numbers). */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
#define PUT_NUM(l, spec, value)                                                    \
    do {                                                                           \
        char num_[128];                                                            \
        int m_ = snprintf(num_, sizeof num_, spec, value);                         \
        if (m_ > 0)                                                                \
            put(l, num_, (size_t)m_ < sizeof num_ ? (size_t)m_ : sizeof num_ - 1); \
    } while (0)

/*
 * The printf subset of kb_log's formats (checked by the compiler through the
 * format attribute): flags, width and precision (also '*'), length
 * modifiers hh h l ll j z t L, conversions d i o u x X c s p f F e E g G a A
 * and %%. String and character values are escaped; %n writes nothing.
 */
static void put_format(struct line *l, const char *fmt, va_list *ap)
{
    int quoted = 0;
    const char *p = fmt;
    while (*p && l->n < l->cap) {
        if (*p != '%') {
            if (*p == '"')
                quoted = !quoted;
            put(l, p++, 1);
            continue;
        }
        const char *start = p++;
        char spec[64];
        size_t sn = 0;
        spec[sn++] = '%';
        int left = 0, star_left = 0, width = -1, prec = -1;
        while (*p && strchr("-+ #0", *p)) {
            left |= *p == '-';
            if (sn < 8)
                spec[sn++] = *p;
            p++;
        }
        if (*p == '*') {
            width = va_arg(*ap, int);
            p++;
            if (width < 0) { /* a negative '*' width: left-justified */
                left = star_left = 1;
                width = width == INT32_MIN ? 0 : -width;
            }
        } else if (*p >= '0' && *p <= '9') {
            width = 0;
            for (; *p >= '0' && *p <= '9'; p++)
                width = width < 100000 ? width * 10 + (*p - '0') : width;
        }
        if (*p == '.') {
            p++;
            prec = 0;
            if (*p == '*') {
                prec = va_arg(*ap, int); /* negative: as if omitted */
                p++;
            } else {
                for (; *p >= '0' && *p <= '9'; p++)
                    prec = prec < 100000 ? prec * 10 + (*p - '0') : prec;
            }
        }
        if (width >= 0)
            sn +=
                (size_t)snprintf(spec + sn, sizeof spec - sn, "%s%d", star_left ? "-" : "", width);
        if (prec >= 0)
            sn += (size_t)snprintf(spec + sn, sizeof spec - sn, ".%d", prec);
        char len1 = 0, len2 = 0;
        if (*p && strchr("hljztL", *p)) {
            len1 = *p++;
            if ((len1 == 'h' || len1 == 'l') && *p == len1)
                len2 = *p++;
        }
        if (len1)
            spec[sn++] = len1;
        if (len2)
            spec[sn++] = len2;
        char conv = *p ? *p++ : '\0';
        spec[sn++] = conv;
        spec[sn] = '\0';
        switch (conv) {
        case '%': put(l, "%", 1); break;
        case 's':
        case 'c': {
            char ch;
            const char *v;
            size_t vlen;
            if (conv == 'c') {
                ch = (char)va_arg(*ap, int);
                v = &ch;
                vlen = 1;
            } else {
                v = va_arg(*ap, const char *);
                if (!v)
                    v = "(null)";
                vlen = prec >= 0 ? strnlen(v, (size_t)prec) : strlen(v);
            }
            size_t at = l->n;
            /* A bare value (key=%s) with a space, '=', '"' or '\\' in it
             * would read as more fields: it is written quoted instead. */
            int wrap = !quoted && conv == 's' && vlen > 0 &&
                       (memchr(v, ' ', vlen) || memchr(v, '=', vlen) || memchr(v, '"', vlen) ||
                        memchr(v, '\\', vlen));
            if (wrap)
                put(l, "\"", 1);
            put_escaped(l, v, vlen, quoted || wrap);
            if (wrap && l->n < l->cap)
                put(l, "\"", 1);
            size_t w = l->n - at;
            if (width > 0 && (size_t)width > w) {
                size_t pad = (size_t)width - w;
                if (pad > l->cap - l->n)
                    pad = l->cap - l->n;
                if (!left)
                    memmove(l->buf + at + pad, l->buf + at, w);
                memset(l->buf + (left ? l->n : at), ' ', pad);
                l->n += pad;
            }
            break;
        }
        case 'd':
        case 'i':
            if (len1 == 'l' && len2)
                PUT_NUM(l, spec, va_arg(*ap, long long));
            else if (len1 == 'l')
                PUT_NUM(l, spec, va_arg(*ap, long));
            else if (len1 == 'j')
                PUT_NUM(l, spec, va_arg(*ap, intmax_t));
            else if (len1 == 'z' || len1 == 't')
                PUT_NUM(l, spec, va_arg(*ap, ptrdiff_t));
            else
                PUT_NUM(l, spec, va_arg(*ap, int));
            break;
        case 'o':
        case 'u':
        case 'x':
        case 'X':
            if (len1 == 'l' && len2)
                PUT_NUM(l, spec, va_arg(*ap, unsigned long long));
            else if (len1 == 'l')
                PUT_NUM(l, spec, va_arg(*ap, unsigned long));
            else if (len1 == 'j')
                PUT_NUM(l, spec, va_arg(*ap, uintmax_t));
            else if (len1 == 'z' || len1 == 't')
                PUT_NUM(l, spec, va_arg(*ap, size_t));
            else
                PUT_NUM(l, spec, va_arg(*ap, unsigned));
            break;
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
        case 'a':
        case 'A':
            if (len1 == 'L')
                PUT_NUM(l, spec, va_arg(*ap, long double));
            else
                PUT_NUM(l, spec, va_arg(*ap, double));
            break;
        case 'p': PUT_NUM(l, spec, va_arg(*ap, void *)); break;
        case 'n': (void)va_arg(*ap, void *); break;
        default:
            /* Not a conversion the compiler would have let through: keep the
             * text, and stop taking arguments whose types are unknown. */
            put(l, start, strlen(start));
            return;
        }
    }
}
#undef PUT_NUM
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

void kb_log(enum kb_log_level level, const char *component, const char *msg, const char *fmt,
            ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (!kb_log_enabled(level))
        return;
    char buf[2048];
    /* Up to sizeof buf - 2 bytes, then the newline, as before escaping. */
    struct line l = {buf, 0, sizeof buf - 2};
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char head[96];
    int n = snprintf(head, sizeof head,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s comp=", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), names[level]);
    if (n < 0)
        return;
    put(&l, head, (size_t)n < sizeof head ? (size_t)n : sizeof head - 1);
    put_escaped(&l, component, strlen(component), 0);
    put(&l, " msg=\"", 6);
    put_escaped(&l, msg, strlen(msg), 1);
    put(&l, "\"", 1);
    if (fmt && *fmt && l.n < l.cap) {
        put(&l, " ", 1);
        va_list ap;
        va_start(ap, fmt);
        put_format(&l, fmt, &ap);
        va_end(ap);
    }
    buf[l.n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, l.n);
    (void)w;
}
