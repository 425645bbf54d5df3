/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cli_num.c - strict numbers for command-line options (ketenbus/cli_num.h).
 * atoi() and friends read "abc" as 0 and "5x" as 5, so a typo silently became
 * a different setting; here the whole argument must be the number, in range.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
