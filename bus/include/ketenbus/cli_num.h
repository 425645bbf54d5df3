/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/cli_num.h - strict parsing of numeric command-line options, shared
 * by the ketenbus commands and the adapters: "--batch abc", "--rate -3" or an
 * empty "--received-ms ''" is a usage error with a reason, never a silent 0.
 */
#ifndef KETENBUS_CLI_NUM_H
#define KETENBUS_CLI_NUM_H

#include <stddef.h>

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

#endif
