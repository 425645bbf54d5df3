/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_avsc.c - libFuzzer target for the schema registry's schema intake:
 * kb_avsc_parse() and the compatibility checker over schema text as it
 * arrives in POST /subjects/... and POST /compatibility/... bodies, plus
 * what the registry does with such text before storing it
 * (kb__registry_validate, which also runs avro-c's parser, and
 * kb__registry_canonical). The REST handlers themselves need a live
 * registry (Kafka), so this drives the parts that read the outside bytes.
 *
 * Input: schema A, optionally followed by "\n--\n" and schema B. Checked:
 *  - a rejection always says why; the registry gate accepts exactly what
 *    kb_avsc_parse accepts or avro-c rejects (never more);
 *  - every accepted schema can read its own data (can_read(A, A));
 *  - canonical text is a fixed point and parses to the same schema name;
 *  - with two schemas, kb_compat_check at every level agrees with the
 *    can_read results it is made of.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ketenbus/registry.h"
#include "registry_int.h"

static char *text(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static kb_avsc_t *parse_one(const char *s, size_t n)
{
    char why[512];
    why[0] = '\0';
    kb_avsc_t *a = kb_avsc_parse(s, n, why, sizeof why);
    if (!a) {
        if (!why[0])
            abort(); /* rejected without a reason */
        return NULL;
    }
    if (!kb_avsc_name(a) || !kb_avsc_name(a)[0])
        abort();
    if (kb_avsc_can_read(a, a, why, sizeof why) != KB_OK)
        abort(); /* a schema that cannot read its own data */
    return a;
}

/* The registry's gate and canonical form, on NUL-free text only (C strings). */
static void registry_side(const char *s, size_t n, const kb_avsc_t *parsed)
{
    if (strlen(s) != n)
        return;
    struct kb_registry_status st;
    memset(&st, 0, sizeof st);
    kb_avsc_t *a = NULL;
    kb_err_t err = kb__registry_validate(s, &a, &st);
    if (err == KB_OK) {
        if (!a || !parsed || strcmp(kb_avsc_name(a), kb_avsc_name(parsed)))
            abort(); /* the gate let through what the parser rejects */
        kb_avsc_destroy(a);
    } else if (st.http_status != 422 || st.error_code != 42201 || !st.message[0]) {
        abort();
    }
    char *c1 = kb__registry_canonical(s);
    if (c1) {
        char *c2 = kb__registry_canonical(c1);
        if (!c2 || strcmp(c1, c2))
            abort(); /* canonical form is not a fixed point */
        if (parsed) {
            char why[512];
            kb_avsc_t *b = kb_avsc_parse(c1, strlen(c1), why, sizeof why);
            if (!b || strcmp(kb_avsc_name(b), kb_avsc_name(parsed)))
                abort(); /* canonicalising changed the schema */
            kb_avsc_destroy(b);
        }
        free(c2);
        free(c1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char sep[] = "\n--\n";
    const uint8_t *cut = NULL;
    for (size_t i = 0; i + 4 <= size; i++)
        if (!memcmp(data + i, sep, 4)) {
            cut = data + i;
            break;
        }
    size_t na = cut ? (size_t)(cut - data) : size;
    char *sa = text(data, na);
    kb_avsc_t *a = parse_one(sa, na);
    registry_side(sa, na, a);
    if (cut) {
        size_t nb = size - na - 4;
        char *sb = text(cut + 4, nb);
        kb_avsc_t *b = parse_one(sb, nb);
        if (a && b) {
            char why[512];
            /* A refusal must say what and where; KB_ERR_RANGE is the
             * check's work budget running out (compat.c), which says so. */
            kb_err_t ab = kb_avsc_can_read(a, b, why, sizeof why);
            if (ab != KB_OK && ((ab != KB_ERR_SCHEMA && ab != KB_ERR_RANGE) || !why[0]))
                abort();
            kb_err_t ba = kb_avsc_can_read(b, a, why, sizeof why);
            if (ba != KB_OK && ((ba != KB_ERR_SCHEMA && ba != KB_ERR_RANGE) || !why[0]))
                abort();
            const kb_avsc_t *versions[2] = {b, a};
            for (int lvl = KB_COMPAT_NONE; lvl <= KB_COMPAT_FULL_TRANSITIVE; lvl++) {
                kb_err_t c = kb_compat_check((enum kb_compat)lvl, a, versions, 1, why, sizeof why);
                int back = lvl == KB_COMPAT_BACKWARD || lvl == KB_COMPAT_BACKWARD_TRANSITIVE ||
                           lvl >= KB_COMPAT_FULL;
                int fwd = lvl == KB_COMPAT_FORWARD || lvl == KB_COMPAT_FORWARD_TRANSITIVE ||
                          lvl >= KB_COMPAT_FULL;
                int want_ok = (!back || ab == KB_OK) && (!fwd || ba == KB_OK);
                if ((c == KB_OK) != want_ok || (c != KB_OK && !why[0]))
                    abort(); /* the level check disagrees with can_read */
                /* Transitive over [b, a] against candidate a. */
                kb_compat_check((enum kb_compat)lvl, a, versions, 2, why, sizeof why);
            }
        }
        kb_avsc_destroy(b);
        free(sb);
    }
    kb_avsc_destroy(a);
    free(sa);
    return 0;
}
