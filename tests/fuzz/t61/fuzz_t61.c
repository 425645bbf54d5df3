/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_t61.c - libFuzzer target for the Teletex codec: any bytes, read as
 * Teletex and as UTF-8, must convert or fail with an in-range offset; valid
 * Teletex must round-trip exactly; every buffer size must be respected.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "t61.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n, m, bad;
    kb_err_t rc;

    if (size > 4096)
        return 0;
    /* exact-size heap buffers so ASan sees any write past the end */
    char *utf8 = malloc(3 * size + 1);
    uint8_t *back = malloc(size ? 2 * size : 1);
    if (!utf8 || !back)
        abort();

    /* Teletex -> UTF-8 -> Teletex */
    rc = kb_t61_to_utf8(data, size, utf8, 3 * size + 1, &n, &bad);
    if (rc == KB_OK) {
        if (n > 3 * size || utf8[n] != '\0')
            abort();
        if (kb_t61_from_utf8(utf8, n, back, size, &m, &bad) != KB_OK)
            abort();
        if (m != size || memcmp(back, data, size) != 0)
            abort();
        /* one byte too small must be refused, never overrun */
        if (kb_t61_to_utf8(data, size, utf8, n, &m, &bad) != KB_ERR_RANGE)
            abort();
    } else if (rc != KB_ERR_INVALID || bad >= size) {
        abort();
    }

    /* the input as UTF-8 -> Teletex (at most 2 bytes per character) */
    rc = kb_t61_from_utf8((const char *)data, size, back, 2 * size, &n, &bad);
    if (rc == KB_OK) {
        if (n > 2 * size)
            abort();
        /* what the encoder writes is valid Teletex that decodes again */
        char *again = malloc(3 * n + 1);
        if (!again)
            abort();
        if (kb_t61_to_utf8(back, n, again, 3 * n + 1, &m, &bad) != KB_OK)
            abort();
        free(again);
    } else if (rc != KB_ERR_INVALID || bad >= size) {
        abort();
    }
    free(utf8);
    free(back);
    return 0;
}
