/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_check.c - the identifier and date rules of protocols.md §1.6/§1.7:
 * the published BSN and A-nummer examples pass, every single-digit change
 * of a BSN fails, each A-nummer rule is violated on its own, and GBA dates
 * with unknown parts are told apart from impossible ones.
 */
#include <string.h>

#include "kb_test.h"
#include "ketenbus/check.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_bsn(void)
{
    static const char *const good[] = {"999995303", "999996204", "999997105", "999990342",
                                       "123456782"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_INT(kb_check_bsn(good[i], 9), 1);
        /* The 11-proef weights (9..2, -1) are all non-zero mod 11, so every
         * change of one digit must be caught. */
        for (int pos = 0; pos < 9; pos++)
            for (char d = '0'; d <= '9'; d++) {
                char s[10];
                memcpy(s, good[i], 10);
                if (s[pos] == d)
                    continue;
                s[pos] = d;
                if (kb_check_bsn(s, 9) != 0)
                    fprintf(stderr, "BSN %s accepted\n", s);
                CHECK_INT(kb_check_bsn(s, 9), 0);
            }
    }
    CHECK_INT(kb_check_bsn(S("99999530")), 0);    /* 8 digits */
    CHECK_INT(kb_check_bsn(S("0999995303")), 0);  /* 10 digits */
    CHECK_INT(kb_check_bsn(S("")), 0);
    CHECK_INT(kb_check_bsn("999995303", 8), 0);   /* length counts, not the NUL */
    CHECK_INT(kb_check_bsn(S("99999530a")), 0);
    CHECK_INT(kb_check_bsn(S("9999 5303")), 0);
    CHECK_INT(kb_check_bsn(S("-99995303")), 0);
}

static void test_anummer(void)
{
    static const char *const good[] = {"7194601014", "5281301274", "3647901080", "8919258058",
                                       "1839305202"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_INT(kb_check_anummer(good[i], 10), 1);

    /* Each breaks exactly one of the four rules and keeps the other three
     * (found by a python search over random 10-digit strings). */
    CHECK_INT(kb_check_anummer(S("0368016153")), 0); /* 1: first digit 0 */
    CHECK_INT(kb_check_anummer(S("2009030789")), 0); /* 2: "00" adjacent */
    CHECK_INT(kb_check_anummer(S("3962172321")), 0); /* 3: digit sum 36, mod 11 = 3 */
    CHECK_INT(kb_check_anummer(S("8093972980")), 0); /* 4: weighted sum not 0 mod 11 */

    CHECK_INT(kb_check_anummer(S("719460101")), 0);   /* 9 digits */
    CHECK_INT(kb_check_anummer(S("71946010140")), 0); /* 11 digits */
    CHECK_INT(kb_check_anummer(S("719460101a")), 0);
    CHECK_INT(kb_check_anummer(S("")), 0);
}

static void test_gba_date(void)
{
    CHECK_INT(kb_check_gba_date(S("19860000")), 1); /* month and day unknown */
    CHECK_INT(kb_check_gba_date(S("19860400")), 1); /* day unknown */
    CHECK_INT(kb_check_gba_date(S("00000000")), 1); /* wholly unknown */
    CHECK_INT(kb_check_gba_date(S("20240229")), 1); /* leap year */
    CHECK_INT(kb_check_gba_date(S("20000229")), 1); /* 400-year leap */
    CHECK_INT(kb_check_gba_date(S("20240315")), 1);
    CHECK_INT(kb_check_gba_date(S("20241231")), 1);
    CHECK_INT(kb_check_gba_date(S("20240430")), 1);

    CHECK_INT(kb_check_gba_date(S("20230229")), 0); /* not a leap year */
    CHECK_INT(kb_check_gba_date(S("19000229")), 0); /* century, not a leap year */
    CHECK_INT(kb_check_gba_date(S("19860010")), 0); /* day without month */
    CHECK_INT(kb_check_gba_date(S("20241301")), 0);
    CHECK_INT(kb_check_gba_date(S("20240431")), 0);
    CHECK_INT(kb_check_gba_date(S("20240132")), 0);
    CHECK_INT(kb_check_gba_date(S("2024031")), 0);
    CHECK_INT(kb_check_gba_date(S("202403150")), 0);
    CHECK_INT(kb_check_gba_date(S("2024031a")), 0);
    CHECK_INT(kb_check_gba_date(S("2024-3-1")), 0);
    CHECK_INT(kb_check_gba_date(S("")), 0);
}

static void test_date(void)
{
    CHECK_INT(kb_check_date(S("20240315")), 1);
    CHECK_INT(kb_check_date(S("20240229")), 1);
    CHECK_INT(kb_check_date(S("20000229")), 1);
    CHECK_INT(kb_check_date(S("19920704")), 1);
    CHECK_INT(kb_check_date(S("20241231")), 1);
    CHECK_INT(kb_check_date(S("00010101")), 1);

    CHECK_INT(kb_check_date(S("19860000")), 0); /* unknown parts are not a full date */
    CHECK_INT(kb_check_date(S("19860400")), 0);
    CHECK_INT(kb_check_date(S("00000000")), 0);
    CHECK_INT(kb_check_date(S("00000101")), 0); /* year 0 */
    CHECK_INT(kb_check_date(S("20230229")), 0);
    CHECK_INT(kb_check_date(S("19000229")), 0);
    CHECK_INT(kb_check_date(S("20241301")), 0);
    CHECK_INT(kb_check_date(S("20240631")), 0);
    CHECK_INT(kb_check_date(S("2024031")), 0);
    CHECK_INT(kb_check_date(S("2024031x")), 0);
}

static void test_digits(void)
{
    CHECK_INT(kb_check_digits(S("0123456789")), 1);
    CHECK_INT(kb_check_digits(S("0")), 1);
    CHECK_INT(kb_check_digits(S("")), 0);
    CHECK_INT(kb_check_digits(S("12 3")), 0);
    CHECK_INT(kb_check_digits(S("/:")), 0); /* the bytes either side of '0'..'9' */
    CHECK_INT(kb_check_digits("12\0" "3", 4), 0);
}

int main(void)
{
    test_bsn();
    test_anummer();
    test_gba_date();
    test_date();
    test_digits();
    KB_TEST_DONE();
}
