/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * lo3_json.h - LO3 bytes <-> the JSON form of the RvIG BRP Berichten API:
 * `berichtType`, header fields under their API names, `plData` with `cNN`
 * arrays of stapels, `eGGEE` keys and `historie` arrays, text in UTF-8.
 * encode(decode(x)) == x for every message kb_lo3_parse() accepts.
 *
 * Ketenbus additions to the API shape, needed for an exact round trip:
 * `randomKey` (the 8-digit random key; encode defaults to "00000000") and
 * `plDataSet` (Xa01: an array of plData). `rubrieken` is an array of 6-digit
 * strings as in the API; `autorisatietabelregel` and `tabelData` stay the
 * raw record text (UTF-8) instead of the API's structured form.
 */
#ifndef KETENBUS_LO3_JSON_H
#define KETENBUS_LO3_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

#define KB_LO3_JSON_PRETTY 1 /* indent by two spaces (default: compact) */

/**
 * Parse LO3 @p buf (@p len bytes) and render it as JSON text. *json is
 * malloc'ed and NUL-terminated; the caller frees it. KB_ERR_INVALID when
 * the bytes are not LO3, carry a byte without a Teletex mapping, or hold a
 * shape JSON cannot represent (an element twice in one category, a
 * category's stapels not adjacent); errstr names the byte offset, never a
 * value. Any thread.
 */
kb_err_t kb_lo3_to_json(const uint8_t *buf, size_t len, int flags, char **json, char *errstr,
                        size_t errstr_size);

/**
 * Turn JSON text in the form above back into LO3 bytes: UTF-8 to Teletex,
 * lengths recomputed. *out is malloc'ed (NULL when *out_len is 0, the Null
 * message). KB_ERR_INVALID with errstr naming the JSON path of what is
 * wrong (unknown key, wrong type, character without a Teletex form, wrong
 * width); KB_ERR_RANGE when a value does not fit its length field.
 * Any thread.
 */
kb_err_t kb_lo3_from_json(const char *json, size_t len, uint8_t **out, size_t *out_len,
                          char *errstr, size_t errstr_size);

#endif
