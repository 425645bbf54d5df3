/* SPDX-License-Identifier: EUPL-1.2 */
/* json_err.c - see json_err.h. */
#include "ketenbus/json_err.h"

const char *kb_json_error_what(const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {
    case json_error_out_of_memory: return "out of memory";
    case json_error_stack_overflow: return "nested too deeply";
    case json_error_invalid_utf8: return "invalid UTF-8";
    case json_error_premature_end_of_input: return "unexpected end of input";
    case json_error_end_of_input_expected: return "text after the value";
    case json_error_invalid_syntax: return "invalid syntax";
    case json_error_null_character: return "NUL character in a string";
    case json_error_null_byte_in_key: return "NUL byte in an object key";
    case json_error_duplicate_key: return "duplicate object key";
    case json_error_numeric_overflow: return "number out of range";
    default: return "not valid JSON";
    }
}
