/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_admin_redrive.c - libFuzzer target for the body of POST
 * /admin/dlq/redrive (bus/src/admin_api.c, kb_admin_parse_redrive): any
 * client holding the admin token sends it, and value_base64 carries bytes
 * that go back onto an input topic. Checked against the parser's contract:
 * a refusal leaves nothing allocated and says why; an acceptance has 1 to
 * max letters with partition and offset as given, and every corrected value
 * is exactly the bytes its value_base64 names (re-encoded with OpenSSL, it
 * is the string that was sent: padded standard base64, nothing else).
 *
 * Input: the raw request body (JSON).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "ketenbus/admin.h"

#define MAX_LETTERS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, 0, NULL);
    if (!body)
        return 0;
    char err[256] = "";
    struct kb_admin_letter *l = (struct kb_admin_letter *)1;
    int n = kb_admin_parse_redrive(body, MAX_LETTERS, &l, err, sizeof err);
    if (n < 0) {
        if (l != NULL || !err[0])
            abort();
        json_decref(body);
        return 0;
    }
    if (n < 1 || n > MAX_LETTERS || !l)
        abort();
    const json_t *letters = json_object_get(body, "letters");
    for (int i = 0; i < n; i++) {
        if (l[i].partition < 0 || l[i].offset < 0)
            abort();
        const json_t *e = letters ? json_array_get(letters, (size_t)i) : NULL;
        if (e && json_integer_value(json_object_get(e, "offset")) != l[i].offset)
            abort();
        const json_t *v = e ? json_object_get(e, "value_base64") : NULL;
        if (!v) {
            if (l[i].value)
                abort();
            continue;
        }
        size_t len = json_string_length(v);
        char *again = malloc(4 * ((l[i].value_len + 2) / 3) + 1);
        if (!again || !l[i].value)
            abort();
        int m = EVP_EncodeBlock((unsigned char *)again, l[i].value, (int)l[i].value_len);
        if (m < 0 || (size_t)m != len || memcmp(again, json_string_value(v), len) != 0)
            abort();
        free(again);
    }
    kb_admin_letters_free(l, (size_t)n);
    json_decref(body);
    return 0;
}
