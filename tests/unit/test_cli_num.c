/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_cli_num.c - strict numbers and times for command-line options
 * (ketenbus/cli_num.h): valid values and the edges of their range are taken;
 * junk, empty text, trailing characters, space, overflow, nan and inf are
 * refused with a reason naming the option, as are impossible calendar dates
 * (2026-02-31, month 13, 24:00, a leap second) that timegm() would have
 * moved to another day; the output is left alone.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kb_test.h"
#include "ketenbus/cli_num.h"

/* kb_cli_long into a sentinel: the status, and the value or the sentinel. */
static kb_err_t parse_long(const char *text, long long min, long long max, long long *v,
                           char *errstr, size_t errstr_size)
{
    *v = -7777;
    errstr[0] = '\0';
    return kb_cli_long("--batch", text, min, max, v, errstr, errstr_size);
}

static void test_long_valid(void)
{
    char e[128];
    long long v;
    CHECK_INT(parse_long("1", 1, 1000000, &v, e, sizeof e), KB_OK);
    CHECK_INT(v, 1);
    CHECK_INT(parse_long("1000000", 1, 1000000, &v, e, sizeof e), KB_OK);
    CHECK_INT(v, 1000000);
    CHECK_INT(parse_long("250", 1, 1000000, &v, e, sizeof e), KB_OK);
    CHECK_INT(v, 250);
    CHECK_INT(parse_long("+42", 0, 100, &v, e, sizeof e), KB_OK);
    CHECK_INT(v, 42);
    CHECK_INT(parse_long("007", 0, 100, &v, e, sizeof e), KB_OK); /* decimal, not octal */
    CHECK_INT(v, 7);
    CHECK_INT(parse_long("-5", -10, 10, &v, e, sizeof e), KB_OK);
    CHECK_INT(v, -5);
    CHECK_INT(parse_long("0", 0, 0, &v, e, sizeof e), KB_OK);
    CHECK_INT(v, 0);
    CHECK_INT(parse_long("9223372036854775807", 0, LLONG_MAX, &v, e, sizeof e), KB_OK);
    CHECK(v == LLONG_MAX);
    CHECK_INT(parse_long("-9223372036854775808", LLONG_MIN, 0, &v, e, sizeof e), KB_OK);
    CHECK(v == LLONG_MIN);
    CHECK_STR(e, "");
}

static void test_long_junk(void)
{
    static const char *const junk[] = {"abc",  "",  "5x", "x5",  " 5",  "5 ",  "1.0",     "1e3",
                                       "0x10", "+", "-",  "--5", "+-5", "5\n", "\xd9\xa1"};
    char e[128];
    long long v;
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        CHECK_INT(parse_long(junk[i], 0, 1000, &v, e, sizeof e), KB_ERR_INVALID);
        CHECK_INT(v, -7777);
    }
    parse_long("abc", 1, 1000000, &v, e, sizeof e);
    CHECK_STR(e, "--batch: \"abc\" is not a whole number");
    parse_long("", 1, 1000000, &v, e, sizeof e);
    CHECK_STR(e, "--batch: \"\" is not a whole number");
    parse_long("5x", 1, 1000000, &v, e, sizeof e);
    CHECK_STR(e, "--batch: \"5x\" is not a whole number");
    CHECK_INT(parse_long(NULL, 0, 10, &v, e, sizeof e), KB_ERR_INVALID);
    CHECK_STR(e, "--batch: \"\" is not a whole number");
}

static void test_long_range(void)
{
    char e[128];
    long long v;
    CHECK_INT(parse_long("0", 1, 1000000, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_STR(e, "--batch: 0 is out of range (1 to 1000000)");
    CHECK_INT(v, -7777);
    CHECK_INT(parse_long("1000001", 1, 1000000, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_STR(e, "--batch: 1000001 is out of range (1 to 1000000)");
    CHECK_INT(parse_long("-3", 0, 10, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_STR(e, "--batch: -3 is out of range (0 to 10)");
    /* Beyond long long: strtoll's ERANGE, never a clamped LLONG_MAX taken as valid. */
    CHECK_INT(parse_long("9223372036854775808", 0, LLONG_MAX, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_STR(e, "--batch: 9223372036854775808 is out of range (0 to 9223372036854775807)");
    CHECK_INT(parse_long("-9223372036854775809", LLONG_MIN, 0, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_INT(parse_long("99999999999999999999999", 1, 10, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_INT(v, -7777);
}

/* A message longer than errstr is cut, still NUL-terminated; no errstr at all is allowed. */
static void test_small_errstr(void)
{
    char e[8];
    long long v;
    CHECK_INT(parse_long("abc", 1, 10, &v, e, sizeof e), KB_ERR_INVALID);
    CHECK_STR(e, "--batch");
    CHECK_INT(kb_cli_long("--batch", "abc", 1, 10, &v, NULL, 0), KB_ERR_INVALID);
    double d;
    CHECK_INT(kb_cli_double("--rate", "x", 0, 1, &d, NULL, 0), KB_ERR_INVALID);
}

static kb_err_t parse_double(const char *text, double min, double max, double *v, char *errstr,
                             size_t errstr_size)
{
    *v = -7777;
    errstr[0] = '\0';
    return kb_cli_double("--rate", text, min, max, v, errstr, errstr_size);
}

static void test_double(void)
{
    char e[128];
    double v;
    CHECK_INT(parse_double("2", 0.01, 1e6, &v, e, sizeof e), KB_OK);
    CHECK(v == 2);
    CHECK_INT(parse_double("0.5", 0.01, 1e6, &v, e, sizeof e), KB_OK);
    CHECK(v == 0.5);
    CHECK_INT(parse_double(".25", 0.01, 1e6, &v, e, sizeof e), KB_OK);
    CHECK(v == 0.25);
    CHECK_INT(parse_double("1e3", 0.01, 1e6, &v, e, sizeof e), KB_OK);
    CHECK(v == 1000);
    CHECK_INT(parse_double("+1.5E+2", 0.01, 1e6, &v, e, sizeof e), KB_OK);
    CHECK(v == 150);
    /* the edges themselves */
    CHECK_INT(parse_double("0.01", 0.01, 1e6, &v, e, sizeof e), KB_OK);
    CHECK(v == 0.01);
    CHECK_INT(parse_double("1000000", 0.01, 1e6, &v, e, sizeof e), KB_OK);
    CHECK(v == 1e6);
    CHECK_STR(e, "");

    static const char *const junk[] = {"abc", "",    "5x",    " 5",       "5 ",   "1e",    "1e+",
                                       ".",   "e5",  "1.2.3", "--1",      "0x10", "0x1p3", "nan",
                                       "NAN", "inf", "-inf",  "infinity", "1,5"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        CHECK_INT(parse_double(junk[i], -1e300, 1e300, &v, e, sizeof e), KB_ERR_INVALID);
        CHECK(v == -7777);
    }
    parse_double("nan", 0, 1, &v, e, sizeof e);
    CHECK_STR(e, "--rate: \"nan\" is not a number");
    parse_double("", 0, 1, &v, e, sizeof e);
    CHECK_STR(e, "--rate: \"\" is not a number");
    CHECK_INT(kb_cli_double("--rate", NULL, 0, 1, &v, e, sizeof e), KB_ERR_INVALID);

    CHECK_INT(parse_double("-3", 0.01, 1e6, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_STR(e, "--rate: -3 is out of range (0.01 to 1000000)");
    CHECK(v == -7777);
    CHECK_INT(parse_double("0", 0.01, 1e6, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_INT(parse_double("0.00999", 0.01, 1e6, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_INT(parse_double("1000000.5", 0.01, 1e6, &v, e, sizeof e), KB_ERR_RANGE);
    /* beyond double: overflow is out of range, underflow is a tiny value held to the range */
    CHECK_INT(parse_double("1e400", -1e300, 1e300, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_INT(parse_double("-1e400", -1e300, 1e300, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK_INT(parse_double("1e-400", 0.01, 1e6, &v, e, sizeof e), KB_ERR_RANGE);
    CHECK(v == -7777);
    CHECK_INT(parse_double("1e-400", 0, 1, &v, e, sizeof e), KB_OK);
    CHECK(v >= 0 && v < 1e-300);
}

/* kb_cli_time into a sentinel: the status, and the value or the sentinel. */
static kb_err_t parse_time(const char *text, int64_t *ms, char *errstr, size_t errstr_size)
{
    *ms = -7777;
    errstr[0] = '\0';
    return kb_cli_time("--from", text, ms, errstr, errstr_size);
}

static void test_time_valid(void)
{
    char e[256];
    int64_t t;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"1710753330250", 1710753330250LL},
        {"253402300799999", KB_CLI_TIME_MAX_MS},
        {"1970-01-01", 0},
        {"1970-01-01T00:00:00Z", 0},
        {"2024-03-18T09:15:30Z", 1710753330000LL},
        {"2024-03-18T09:15:30.250Z", 1710753330250LL},
        {"2024-03-18T09:15:30.2Z", 1710753330200LL},
        {"2024-03-18T09:15:30.2509999Z", 1710753330250LL}, /* cut off, not rounded */
        {"2024-03-18t09:15:30z", 1710753330000LL},
        {"2024-03-18 09:15:30Z", 1710753330000LL},
        {"2024-03-18T10:15:30.250+01:00", 1710753330250LL},
        {"2024-03-18T04:45:30-04:30", 1710753330000LL},
        {"2024-03-18", 1710720000000LL},
        {"2000-02-29T00:00:00Z", 951782400000LL}, /* divisible by 400: a leap year */
        {"2024-02-29", 1709164800000LL},
        {"2026-12-31T23:59:59.999Z", 1798761599999LL},
        {"9999-12-31T23:59:59.999Z", KB_CLI_TIME_MAX_MS},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        kb_err_t err = parse_time(good[i].text, &t, e, sizeof e);
        if (err || t != good[i].ms)
            fprintf(stderr, "     %s: %s\n", good[i].text, e);
        CHECK_INT(err, KB_OK);
        CHECK_INT(t, good[i].ms);
    }
    /* Every day from 1970 to 2200 at a time of day, against timegm(), which
     * is right for valid dates (it only normalises the invalid ones). */
    for (time_t day = 0; day < (time_t)84000 * 86400; day += 86400) {
        time_t at = day + 13 * 3600 + 14 * 60 + 15;
        struct tm tm;
        gmtime_r(&at, &tm);
        char text[40];
        strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (parse_time(text, &t, e, sizeof e) != KB_OK || t != (int64_t)at * 1000) {
            CHECK_STR(text, "a day kb_cli_time reads as timegm does");
            break;
        }
        strftime(text, sizeof text, "%Y-%m-%d", &tm);
        if (parse_time(text, &t, e, sizeof e) != KB_OK || t != (int64_t)day * 1000) {
            CHECK_STR(text, "a date kb_cli_time reads as timegm does");
            break;
        }
    }
}

static void test_time_refused(void)
{
    char e[256];
    int64_t t;
    static const struct {
        const char *text;
        kb_err_t err;
        const char *why; /* part of the message */
    } bad[] = {
        {"", KB_ERR_INVALID, "is not a time"},
        {"abc", KB_ERR_INVALID, "is not a time (RFC 3339"},
        {"-1", KB_ERR_INVALID, "is not a time"},
        {"+5", KB_ERR_INVALID, "is not a time"},
        {" 5", KB_ERR_INVALID, "is not a time"},
        {"5 ", KB_ERR_INVALID, "is not a time"},
        {"1e3", KB_ERR_INVALID, "is not a time"},
        {"253402300800000", KB_ERR_RANGE, "out of range (0 to 253402300799999 ms"},
        {"99999999999999999999", KB_ERR_RANGE, "out of range"},
        {"2026-02-31", KB_ERR_RANGE, "day 31 is out of range (2026-02 has 28 days)"},
        {"2026-02-29T10:00:00Z", KB_ERR_RANGE, "day 29 is out of range (2026-02 has 28 days)"},
        {"1900-02-29", KB_ERR_RANGE, "1900-02 has 28 days"}, /* not a leap year */
        {"2026-04-31", KB_ERR_RANGE, "2026-04 has 30 days"},
        {"2026-01-00", KB_ERR_RANGE, "day 00 is out of range"},
        {"2026-13-01", KB_ERR_RANGE, "month 13 is out of range (01 to 12)"},
        {"2026-00-10", KB_ERR_RANGE, "month 00 is out of range"},
        {"2026-03-01T24:00:00Z", KB_ERR_RANGE, "hour 24 is out of range (00 to 23)"},
        {"2026-03-01T23:60:00Z", KB_ERR_RANGE, "minute 60 is out of range (00 to 59)"},
        {"2026-12-31T23:59:60Z", KB_ERR_RANGE, "second 60 is out of range (00 to 59; leap"},
        {"2026-03-01T10:00:00+24:00", KB_ERR_RANGE, "offset +24:00 is out of range"},
        {"2026-03-01T10:00:00+01:60", KB_ERR_RANGE, "offset +01:60 is out of range"},
        {"2026-03-01T10:00:00", KB_ERR_INVALID, "has no zone: add Z for UTC"},
        {"2026-03-01T10:00:00.5", KB_ERR_INVALID, "has no zone"},
        {"2026-03-01T10:00Z", KB_ERR_INVALID, "is not a time"},
        {"2026-03-01T10:00:00.Z", KB_ERR_INVALID, "is not a time"},
        {"2026-03-01T10:00:00+0100", KB_ERR_INVALID, "is not a time"},
        {"2026-03-01T10:00:00Zjunk", KB_ERR_INVALID, "is not a time"},
        {"2026-03-01X10:00:00Z", KB_ERR_INVALID, "is not a time"},
        {"2026-3-1", KB_ERR_INVALID, "is not a time"},
        {"26-03-01", KB_ERR_INVALID, "is not a time"},
        {"2026-03-01junk", KB_ERR_INVALID, "is not a time"},
        {"1969-12-31", KB_ERR_RANGE, "is before 1970"},
        {"1970-01-01T00:30:00+01:00", KB_ERR_RANGE, "is out of range (1970-01-01T00:00:00Z"},
        {"9999-12-31T23:59:59.999-01:00", KB_ERR_RANGE, "is out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kb_err_t err = parse_time(bad[i].text, &t, e, sizeof e);
        if (err != bad[i].err || !strstr(e, bad[i].why) || strncmp(e, "--from: ", 8))
            fprintf(stderr, "     \"%s\": %s\n", bad[i].text, e);
        CHECK_INT(err, bad[i].err);
        CHECK(strstr(e, bad[i].why) != NULL);
        CHECK(!strncmp(e, "--from: ", 8)); /* names the option */
        CHECK(t == -7777);                 /* left alone */
    }
    /* Digits only are milliseconds, also when they look like a date. */
    CHECK_INT(parse_time("20260301", &t, e, sizeof e), KB_OK);
    CHECK_INT(t, 20260301);
    CHECK_INT(kb_cli_time("--to", NULL, &t, e, sizeof e), KB_ERR_INVALID);
    CHECK(strstr(e, "--to: \"\" is not a time") != NULL);
    /* A small errstr is cut, never overrun. */
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK_INT(kb_cli_time("--from", "2026-02-31", &t, small, sizeof small), KB_ERR_RANGE);
    CHECK(memchr(small, '\0', sizeof small) != NULL);
}

static void test_abbrev(void)
{
    char out[64];
    char *argv1[] = {"audit", "verify", "--subject", "X", "--from=1", NULL};
    kb_cli_abbrev(5, argv1, "subject-key-file", out, sizeof out);
    CHECK_STR(out, "--subject");
    kb_cli_abbrev(5, argv1, "from", out, sizeof out); /* written in full */
    CHECK_STR(out, "");
    char *argv2[] = {"dlq", "show", "--val=x", "--", "--lim", NULL};
    kb_cli_abbrev(5, argv2, "value", out, sizeof out);
    CHECK_STR(out, "--val");
    kb_cli_abbrev(5, argv2, "limit", out, sizeof out); /* after "--": an argument */
    CHECK_STR(out, "");
}

int main(void)
{
    test_time_valid();
    test_time_refused();
    test_abbrev();
    test_long_valid();
    test_long_junk();
    test_long_range();
    test_small_errstr();
    test_double();
    KB_TEST_DONE();
}
