/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/cli_num.h - strict parsing of numeric and time command-line options,
 * shared by the ketenbus commands and the adapters: "--batch abc", "--rate -3"
 * or an empty "--received-ms ''" is a usage error with a reason, never a
 * silent 0, and "--from 2026-02-31" is refused, never read as 3 March.
 */
#ifndef KETENBUS_CLI_NUM_H
#define KETENBUS_CLI_NUM_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

/**
 * Parse @p text, the argument of option @p opt (e.g. "--batch"), as a whole
 * decimal number from @p min to @p max (inclusive) into *@p out. The whole of
 * @p text must be the number: an optional sign and digits, no space, no
 * trailing characters, no other base. KB_OK, or KB_ERR_INVALID (not a whole
 * number, empty or NULL included) or KB_ERR_RANGE (outside [min, max], or
 * beyond long long) with the reason in @p errstr, e.g.
 * `--batch: "abc" is not a whole number` or
 * `--batch: 0 is out of range (1 to 1000000)`; *@p out is then unchanged.
 * @thread any (only the calling thread's errno is used)
 */
kb_err_t kb_cli_long(const char *opt, const char *text, long long min, long long max,
                     long long *out, char *errstr, size_t errstr_size);

/**
 * As kb_cli_long() for a decimal number with optional fraction and exponent
 * ("2", "0.5", "1e3"). Only finite values: "nan", "inf" and hexadecimal
 * floats are not numbers here, and a value beyond double is out of range.
 * @thread any
 */
kb_err_t kb_cli_double(const char *opt, const char *text, double min, double max, double *out,
                       char *errstr, size_t errstr_size);

/**
 * How long option --@p name was written in @p argv, for an error message:
 * getopt_long() takes an unambiguous shortening ("--subject" for
 * "--subject-key-file"), and an error naming only the full name would puzzle
 * whoever typed the short one. Copies the first "--x" or "--x=..." of
 * @p argv (before a "--") whose x is a shortening of @p name, without the
 * "=...", into @p out; "" when there is none (written in full or not found).
 * @thread any
 */
void kb_cli_abbrev(int argc, char **argv, const char *name, char *out, size_t out_size);

struct option;

/**
 * Say on stderr that `@p cmd @p sub` does not take the option getopt_long
 * just read (@p longindex into @p longopts, or -1 for the short option
 * @p opt), how it was typed when shortened, and which of the @p n_subs
 * subcommands @p subs take it (bit i of @p takers: subs[i]).
 */
void kb_cli_refuse_option(const char *cmd, const char *sub, int argc, char **argv,
                          const struct option *longopts, int longindex, int opt, unsigned takers,
                          const char *const *subs, size_t n_subs);

/* The last instant kb_cli_time() takes: 9999-12-31T23:59:59.999Z. */
#define KB_CLI_TIME_MAX_MS 253402300799999LL

/**
 * Parse @p text, the argument of time option @p opt (e.g. "--from"), into
 * milliseconds since 1970-01-01T00:00:00Z in *@p out_ms. One of:
 *  - RFC 3339 with seconds and a zone: 2024-03-18T09:15:30Z, with an
 *    optional fraction (2024-03-18T09:15:30.250Z; digits beyond the
 *    millisecond are cut off) and "Z" or an offset (+01:00); "t", "z" and a
 *    space for "T" are taken as RFC 3339 allows;
 *  - a date, YYYY-MM-DD, meaning its midnight UTC;
 *  - milliseconds since 1970, digits only (0 to KB_CLI_TIME_MAX_MS).
 * Calendar fields must name a real instant, never normalised the way
 * timegm() does: 2026-02-31, month 13, hour 24, minute 60 and second 60 (a
 * leap second) are refused, as are a time without its zone (local or UTC
 * would be a guess) and instants before 1970 or after KB_CLI_TIME_MAX_MS.
 * KB_OK, or KB_ERR_INVALID (not such a time) or KB_ERR_RANGE (a field or
 * the instant out of range) with the reason in @p errstr, e.g.
 * `--from: "2026-02-31": day 31 is out of range (2026-02 has 28 days)`;
 * *@p out_ms is then unchanged.
 * @thread any
 */
kb_err_t kb_cli_time(const char *opt, const char *text, int64_t *out_ms, char *errstr,
                     size_t errstr_size);

#endif
