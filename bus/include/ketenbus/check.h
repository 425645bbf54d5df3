/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/check.h - the identifier and date rules of the Dutch basic
 * registrations (../shared/protocols.md §1.6, §1.7), shared by adapters and
 * the validator so that every part of the bus agrees on what is valid.
 */
#ifndef KETENBUS_CHECK_H
#define KETENBUS_CHECK_H

#include <stddef.h>
#include <stdint.h>

/** 1 when @p s (@p len bytes) is a BSN: 9 digits passing the 11-proef, not all zero. */
int kb_check_bsn(const char *s, size_t len);

/** 1 when @p s is an A-nummer: 10 digits, first not 0, no two adjacent equal,
 *  digit sum mod 11 in {0,5}, weighted (2^i) sum mod 11 == 0. */
int kb_check_anummer(const char *s, size_t len);

/** 1 when @p s is a GBA date JJJJMMDD: month 00 (then day 00) or 01-12, day
 *  00 or valid for that month; 00000000 (wholly unknown) is allowed. */
int kb_check_gba_date(const char *s, size_t len);

/** 1 when @p s is a full calendar date JJJJMMDD (no unknown parts). */
int kb_check_date(const char *s, size_t len);

/** Days in @p month (1-12) of @p year, leap years included. */
int kb_days_in_month(int year, int month);

/** Days from 1970-01-01 to @p year-@p month-@p day (a valid date of the
 *  proleptic Gregorian calendar; negative before 1970). */
int64_t kb_days_from_civil(int year, int month, int day);

/** 1 when all @p len bytes of @p s are ASCII digits (and len > 0). */
int kb_check_digits(const char *s, size_t len);

#endif
