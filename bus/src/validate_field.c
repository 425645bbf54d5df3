/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_field.c - one field of a validated payload as text, read from the
 * Avro bytes by walking the validator's type nodes (see kb_validate_field).
 * The router's payload filters used to decode the whole event with avro-c to
 * compare one field; this skips to it instead. The text is the one the
 * avro-c path produced (kb_payload_field in match.c), so filters judge alike.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "validate_internal.h"

/* Avro's floats and doubles are little-endian IEEE 754, whatever the host. */
static uint64_t le_bits(const uint8_t *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

/* Step through a union to its branch; 0 when null or malformed. */
static int through_union(const kb_validator_t *v, uint32_t *t, const uint8_t **p,
                         const uint8_t *end)
{
    const struct kb__vnode *n = &v->nodes[*t];
    if (n->op != VOP_UNION)
        return 1;
    int64_t b;
    if (!(*p = kb__validate_varint(*p, end, &b)) || b < 0 || (uint64_t)b >= n->n)
        return 0;
    *t = v->branches[n->first + (uint32_t)b];
    return v->nodes[*t].op != VOP_NULL;
}

int kb_validate_field(const kb_validator_t *v, const uint8_t *payload, size_t len,
                      const char *path, char *buf, size_t cap)
{
    const uint8_t *p = payload, *end = payload + len;
    uint32_t t = v->root;
    const char *seg = path;
    if (!cap)
        return 0;
    for (;;) {
        if (!through_union(v, &t, &p, end))
            return 0;
        if (!*seg)
            break;
        const char *dot = strchr(seg, '.');
        size_t sl = dot ? (size_t)(dot - seg) : strlen(seg);
        const struct kb__vnode *rn = &v->nodes[t];
        if (!sl || sl >= 128 || rn->op != VOP_RECORD)
            return 0;
        uint32_t fi = UINT32_MAX;
        for (uint32_t i = 0; i < rn->n && fi == UINT32_MAX; i++) {
            const char *name = v->fields[rn->first + i].name;
            if (!strncmp(name, seg, sl) && !name[sl])
                fi = i;
        }
        if (fi == UINT32_MAX)
            return 0;
        for (uint32_t i = 0; i < fi; i++)
            if (!(p = kb__validate_skip(v, v->fields[rn->first + i].type, p, end, 0)))
                return 0;
        t = v->fields[rn->first + fi].type;
        seg = dot ? dot + 1 : seg + sl;
    }
    const struct kb__vnode *n = &v->nodes[t];
    int64_t x;
    switch (n->op) {
    case VOP_STRING: {
        if (!(p = kb__validate_varint(p, end, &x)) || x < 0 || (uint64_t)x > (uint64_t)(end - p))
            return 0;
        /* As "%s" would: up to an embedded NUL, cut to the buffer. */
        size_t l = (size_t)x;
        const uint8_t *nul = memchr(p, 0, l);
        if (nul)
            l = (size_t)(nul - p);
        if (l > cap - 1)
            l = cap - 1;
        memcpy(buf, p, l);
        buf[l] = '\0';
        return 1;
    }
    case VOP_INT:
    case VOP_LONG:
        if (!kb__validate_varint(p, end, &x))
            return 0;
        snprintf(buf, cap, "%" PRId64, x);
        return 1;
    case VOP_DOUBLE: {
        if (end - p < 8)
            return 0;
        uint64_t bits = le_bits(p, 8);
        double d;
        memcpy(&d, &bits, sizeof d);
        snprintf(buf, cap, "%.17g", d);
        return 1;
    }
    case VOP_FLOAT: {
        if (end - p < 4)
            return 0;
        uint32_t bits = (uint32_t)le_bits(p, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        snprintf(buf, cap, "%.9g", (double)f);
        return 1;
    }
    case VOP_BOOLEAN:
        if (end - p < 1)
            return 0;
        snprintf(buf, cap, "%s", *p ? "true" : "false");
        return 1;
    case VOP_ENUM: {
        if (!kb__validate_varint(p, end, &x) || x < 0 || (uint64_t)x >= n->n)
            return 0;
        json_t *syms = json_object_get(n->def, "symbols");
        const char *sym = json_string_value(json_array_get(syms, (size_t)x));
        snprintf(buf, cap, "%s", sym ? sym : "");
        return 1;
    }
    default:
        return 0;
    }
}
