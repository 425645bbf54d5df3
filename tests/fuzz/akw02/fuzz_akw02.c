/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_akw02.c - libFuzzer target for kb_akw02_parse(): any input must be
 * refused with a rule and a reason, or parse into a record that renders back
 * to exactly the input (minus one line end). The reason must never quote a
 * BSN-like run of 9 digits from the input (no personal data in reasons).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "akw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kb_akw02 rec;
    static char out[KB_AKW02_MAX_LEN + 1];
    char errstr[256];
    size_t out_len = 0;

    errstr[0] = '\0';
    enum kb_akw02_rule rule = kb_akw02_parse((const char *)data, size, &rec, errstr, sizeof errstr);
    if (rule != KB_AKW02_OK) {
        if (rule > KB_AKW02_FIELD || errstr[0] == '\0')
            abort(); /* every refusal names its rule and reason */
        /* a run of 9 digits in the reason must not be copied from the input */
        for (size_t i = 0, run = 0; errstr[i]; i++) {
            run = (errstr[i] >= '0' && errstr[i] <= '9') ? run + 1 : 0;
            if (run >= 9)
                abort();
        }
        return 0;
    }
    size_t len = size;
    if (len > 0 && data[len - 1] == '\n')
        len--;
    if (len > 0 && data[len - 1] == '\r' && len < size)
        len--;
    if (kb_akw02_render(&rec, out, &out_len, errstr, sizeof errstr) != KB_AKW02_OK)
        abort(); /* parse accepted what render rejects */
    if (out_len != len || memcmp(out, data, len) != 0)
        abort(); /* not a round trip */
    return 0;
}
