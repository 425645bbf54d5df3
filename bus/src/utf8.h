/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * utf8.h - UTF-8 as the bus checks it outside the validator: one sequence
 * at a time (for escaping what is not UTF-8, audit_codec.c; for cleaning a
 * reply, registry.c), and the text rule of CloudEvents Strings (event
 * attributes, registry subjects). Strict everywhere (RFC 3629): no
 * overlongs, no surrogates, nothing above U+10FFFF; the same verdict as the
 * validator's kb__utf8_scalar(). Internal to kb_core.
 */
#ifndef KB_UTF8_H
#define KB_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 sequence at @p s, of which @p n bytes may
 * be read, or 0 when the bytes there are not one; its code point into *@p cp
 * unless NULL. A NUL inside a multi-byte sequence ends it as invalid. */
size_t kb__utf8_seq(const uint8_t *s, size_t n, uint32_t *cp);

enum kb__text_verdict {
    KB_TEXT_OK = 0,
    KB_TEXT_NOT_UTF8 = 1, /* not well-formed UTF-8 */
    KB_TEXT_CONTROL = 2,  /* a control character: U+0000-U+001F, U+007F-U+009F */
};

/* Whether @p n bytes are a CloudEvents String: well-formed UTF-8 without
 * control characters. All ASCII, the usual case, costs one pass. */
enum kb__text_verdict kb__utf8_text(const uint8_t *s, size_t n);

#endif
