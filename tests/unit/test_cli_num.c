/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_cli_num.c - strict numbers for command-line options (ketenbus/cli_num.h):
 * valid values and the edges of their range are taken; junk, empty text,
 * trailing characters, space, overflow, nan and inf are refused with a reason
 * naming the option, and the output is left alone.
 */
#include <limits.h>

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

int main(void)
{
    test_long_valid();
    test_long_junk();
    test_long_range();
    test_small_errstr();
    test_double();
    KB_TEST_DONE();
}
