/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cli_num.c - strict numbers and times for command-line options
 * (ketenbus/cli_num.h). atoi() and friends read "abc" as 0 and "5x" as 5, and
 * timegm() reads 2026-02-31 as 3 March, so a typo silently became a different
 * setting; here the whole argument must be the value, in range.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/check.h"
#include "ketenbus/cli_num.h"

/* True when all of @p s (non-empty) consists of characters from @p set. */
static int only(const char *s, const char *set)
{
    return *s && strspn(s, set) == strlen(s);
}

kb_err_t kb_cli_long(const char *opt, const char *text, long long min, long long max,
                     long long *out, char *errstr, size_t errstr_size)
{
    if (!text)
        text = "";
    /* strtoll alone would skip leading space and stop at junk: the digits are
     * checked first, so only overflow is left for it to report. */
    const char *digits = text + (*text == '+' || *text == '-');
    if (!only(digits, "0123456789"))
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s: \"%s\" is not a whole number",
                          opt, text);
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno == ERANGE || v < min || v > max)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "%s: %s is out of range (%lld to %lld)", opt, text, min, max);
    *out = v;
    return KB_OK;
}

kb_err_t kb_cli_double(const char *opt, const char *text, double min, double max, double *out,
                       char *errstr, size_t errstr_size)
{
    if (!text)
        text = "";
    /* Decimal notation only: this keeps out what strtod would also take,
     * "nan", "inf", "infinity", hexadecimal floats and leading space. */
    char *end = NULL;
    double v = 0;
    if (only(text, "+-.0123456789eE"))
        v = strtod(text, &end);
    if (!end || end == text || *end)
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s: \"%s\" is not a number", opt,
                          text);
    /* Overflow gives +-HUGE_VAL; underflow (ERANGE with a tiny value) is held
     * to the range like any other value. */
    if (!isfinite(v) || v < min || v > max)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "%s: %s is out of range (%.15g to %.15g)", opt, text, min, max);
    *out = v;
    return KB_OK;
}

kb_err_t kb_cli_time(const char *opt, const char *text, int64_t *out_ms, char *errstr,
                     size_t errstr_size)
{
    if (!text)
        text = "";
    if (only(text, "0123456789")) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == ERANGE || v > KB_CLI_TIME_MAX_MS)
            return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                              "%s: %s is out of range (0 to %lld ms since 1970)", opt, text,
                              KB_CLI_TIME_MAX_MS);
        *out_ms = v;
        return KB_OK;
    }
    /* The shape first, whole: a range error is only worth naming in
     * something that is a time. */
    struct kb_time_fields f;
    int zoneless;
    if (!kb_time_fields_parse(text, &f, &zoneless)) {
        if (zoneless)
            return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                              "%s: \"%s\" has no zone: add Z for UTC or an offset such as "
                              "+01:00",
                              opt, text);
        return kb_err_set(KB_ERR_INVALID, errstr, errstr_size,
                          "%s: \"%s\" is not a time (RFC 3339 such as 2024-03-18T09:15:30Z, "
                          "a date such as 2024-03-18, or milliseconds since 1970)",
                          opt, text);
    }
    int y = f.year, mo = f.month, d = f.day;
    if (mo < 1 || mo > 12)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "%s: \"%s\": month %02d is out of range (01 to 12)", opt, text, mo);
    if (d < 1 || d > kb_days_in_month(y, mo))
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "%s: \"%s\": day %02d is out of range (%04d-%02d has %d days)", opt, text,
                          d, y, mo, kb_days_in_month(y, mo));
    if (f.hour > 23)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "%s: \"%s\": hour %02d is out of range (00 to 23)", opt, text, f.hour);
    if (f.minute > 59)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "%s: \"%s\": minute %02d is out of range (00 to 59)", opt, text,
                          f.minute);
    if (f.second > 59)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "%s: \"%s\": second %02d is out of range (00 to 59; leap seconds "
                          "are not taken)",
                          opt, text, f.second);
    if (f.zone_hh > 23 || f.zone_mm > 59)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "%s: \"%s\": offset %.6s is out of range (-23:59 to +23:59)", opt, text,
                          f.zone);
    if (y < 1970)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size, "%s: \"%s\" is before 1970", opt,
                          text);
    int64_t t = kb_time_fields_ms(&f);
    if (t < 0 || t > KB_CLI_TIME_MAX_MS)
        return kb_err_set(KB_ERR_RANGE, errstr, errstr_size,
                          "%s: \"%s\" is out of range (1970-01-01T00:00:00Z to "
                          "9999-12-31T23:59:59.999Z)",
                          opt, text);
    *out_ms = t;
    return KB_OK;
}

void kb_cli_abbrev(int argc, char **argv, const char *name, char *out, size_t out_size)
{
    if (!out_size)
        return;
    out[0] = '\0';
    size_t nlen = strlen(name);
    for (int i = 1; i < argc && argv[i]; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        if (strncmp(a, "--", 2))
            continue;
        size_t len = strcspn(a + 2, "=");
        if (len && len < nlen && !strncmp(a + 2, name, len)) {
            snprintf(out, out_size, "%.*s", (int)(len + 2), a);
            return;
        }
    }
}

void kb_cli_refuse_option(const char *cmd, const char *sub, int argc, char **argv,
                          const struct option *longopts, int longindex, int opt, unsigned takers,
                          const char *const *subs, size_t n_subs)
{
    char name[64], typed[64], list[128] = "";
    if (longindex >= 0)
        snprintf(name, sizeof name, "--%s", longopts[longindex].name);
    else
        snprintf(name, sizeof name, "-%c", opt);
    kb_cli_abbrev(argc, argv, longindex >= 0 ? longopts[longindex].name : "", typed, sizeof typed);
    for (size_t i = 0; i < n_subs; i++)
        if (takers & (1u << i))
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                     subs[i]);
    fprintf(stderr, "error: %s %s does not take %s%s%s (an option of %s %s)\n", cmd, sub, name,
            typed[0] ? ", given as " : "", typed, cmd, list);
}
