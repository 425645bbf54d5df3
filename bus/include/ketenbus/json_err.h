/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * json_err.h - a jansson parse error in words of our own.
 *
 * jansson's json_error_t.text quotes up to 20 bytes of the offending token
 * ("... near '\"9999962'"), which in a request body can be a BSN or a name;
 * error strings travel to logs, Kafka headers and HTTP replies. Report
 * jerr.line, jerr.column and kb_json_error_what(), never jerr.text.
 */
#ifndef KETENBUS_JSON_ERR_H
#define KETENBUS_JSON_ERR_H

#include <jansson.h>

/** What went wrong, from json_error_code() only; never quotes the input. */
const char *kb_json_error_what(const json_error_t *jerr);

#endif
