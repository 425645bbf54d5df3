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

/** An RFC 3339 time as written: YYYY-MM-DD, optionally followed by
 *  [Tt ]hh:mm:ss[.fraction] and its zone (Z, z or +hh:mm / -hh:mm). */
struct kb_time_fields {
    int year, month, day, hour, minute, second, millis; /* millis: the fraction, cut */
    int has_time;         /* a time of day was written (then with its zone) */
    int zone_minutes;     /* the offset east of UTC, as written (Z: 0) */
    const char *zone;     /* where the zone starts in the text; NULL without a time */
    int zone_hh, zone_mm; /* the offset's two fields, for range checks */
};

/** 1 when all of @p s has that shape, its fields in @p f, no range checked
 *  (the callers' rules differ: the bus's times and the command line's).
 *  0 otherwise; then *@p zoneless (may be NULL) says whether a zone was all
 *  that was missing. */
int kb_time_fields_parse(const char *s, struct kb_time_fields *f, int *zoneless);

/** Milliseconds since 1970 of @p f, its offset applied (fields in range). */
int64_t kb_time_fields_ms(const struct kb_time_fields *f);

/** Days from 1970-01-01 to @p year-@p month-@p day (a valid date of the
 *  proleptic Gregorian calendar; negative before 1970). */
int64_t kb_days_from_civil(int year, int month, int day);

/** 1 when all @p len bytes of @p s are ASCII digits (and len > 0). */
int kb_check_digits(const char *s, size_t len);

#endif
