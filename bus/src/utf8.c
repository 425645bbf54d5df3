/* SPDX-License-Identifier: EUPL-1.2 */
/* utf8.c - UTF-8 sequences and the CloudEvents String rule (see utf8.h). */
#include "utf8.h"
#include "validate_kernels.h" /* kb__utf8_scalar */

size_t kb__utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
    if (!n)
        return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        if (cp)
            *cp = c;
        return 1;
    }
    size_t k = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (!k || k > n)
        return 0;
    uint32_t v = c & (0x7f >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if ((k == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
        (k == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    if (cp)
        *cp = v;
    return k;
}

enum kb__text_verdict kb__utf8_text(const uint8_t *s, size_t n)
{
    int high = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return KB_TEXT_CONTROL;
        high |= s[i] & 0x80;
    }
    if (!high)
        return KB_TEXT_OK;
    if (!kb__utf8_scalar(s, n))
        return KB_TEXT_NOT_UTF8;
    /* in well-formed UTF-8 the C1 controls are exactly C2 80 .. C2 9F */
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] < 0xa0)
            return KB_TEXT_CONTROL;
    return KB_TEXT_OK;
}
