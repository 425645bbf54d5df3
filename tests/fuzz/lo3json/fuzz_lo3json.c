/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_lo3json.c - libFuzzer target for the LO3 <-> JSON codec: any bytes
 * either fail to decode with a reason, or decode to JSON that encodes back
 * to exactly the same bytes (encode(decode(x)) == x). The same input is also
 * fed to the encoder as JSON text, which must fail cleanly or produce LO3
 * that parses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gba/lo3.h"
#include "gba/lo3_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    char *json = NULL;
    err[0] = '\0';
    if (kb_lo3_to_json(data, size, 0, &json, err, sizeof err) == KB_OK) {
        uint8_t *out = NULL;
        size_t len = 0;
        if (kb_lo3_from_json(json, strlen(json), &out, &len, err, sizeof err) != KB_OK)
            abort();
        if (len != size || (size && memcmp(out, data, size) != 0))
            abort();
        free(out);
        free(json);
    } else if (json || err[0] == '\0') {
        abort();
    }
    uint8_t *out = NULL;
    size_t len = 0;
    if (kb_lo3_from_json((const char *)data, size, &out, &len, err, sizeof err) == KB_OK) {
        struct kb_lo3_message msg;
        if (kb_lo3_parse(out, len, &msg, err, sizeof err) != KB_OK)
            abort();
        kb_lo3_message_fini(&msg);
        free(out);
    } else if (out) {
        abort();
    }
    return 0;
}
