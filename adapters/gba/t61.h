/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * t61.h - the GBA Teletex (ITU T.61) character set <-> UTF-8: non-spacing
 * diacritic prefixes 0xC1-0xCF followed by the base letter, single-byte
 * specials, and the control codes LF/CR/FF (../shared/protocols.md §1.3).
 */
#ifndef KETENBUS_T61_H
#define KETENBUS_T61_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

/**
 * Convert @p len Teletex bytes to UTF-8 in @p out (capacity @p out_size,
 * at most 3 bytes of UTF-8 per Teletex byte are needed plus one for the NUL
 * terminator). On success *out_len is the UTF-8 length. A byte (or pair)
 * with no mapping returns KB_ERR_INVALID with *bad_offset set to its offset
 * within @p in. KB_ERR_RANGE when @p out is too small.
 */
kb_err_t kb_t61_to_utf8(const uint8_t *in, size_t len, char *out, size_t out_size,
                        size_t *out_len, size_t *bad_offset);

/**
 * 1 when every one of @p len bytes is a character that Teletex and UTF-8
 * write alike (ASCII letters, digits, space and most punctuation): then
 * kb_t61_to_utf8() would return the same bytes, and a caller may use them
 * as they are. 0 otherwise (the bytes may still be valid Teletex).
 */
int kb_t61_plain(const uint8_t *in, size_t len);

/**
 * Whether @p len bytes are valid Teletex, without converting them: KB_OK,
 * or KB_ERR_INVALID with *bad_offset set exactly as kb_t61_to_utf8() would.
 */
kb_err_t kb_t61_check(const uint8_t *in, size_t len, size_t *bad_offset);

/**
 * Convert UTF-8 to Teletex. A code point with no Teletex form (or invalid
 * UTF-8) returns KB_ERR_INVALID with *bad_offset its byte offset in @p in.
 */
kb_err_t kb_t61_from_utf8(const char *in, size_t len, uint8_t *out, size_t out_size,
                          size_t *out_len, size_t *bad_offset);

#endif
