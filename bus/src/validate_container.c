/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_container.c - read an Avro object container file (codec null) for
 * `ketenbus validate` and check each of its datums with the compiled
 * validator.
 *
 * The container framing (magic, metadata map, sync marker, blocks of count +
 * size + datums) is read here with the validator's own bounds-checked varint
 * reader: avro-c's file reader has no way to hand out a datum's raw bytes
 * (it decodes each datum into a value, which is what must not happen to
 * unchecked input), so it cannot be used for the framing alone.
 *
 * A block's datum count is the writer's claim, not backed by bytes when the
 * schema's datums take none (null, records of nulls, fixed of size 0): a
 * block of 0 bytes may claim 2^62 of them. So work never follows the count
 * alone: a datum that read no bytes ends its block (the rest start at the
 * same byte, so their verdict is the same and they are counted, not read),
 * and a block may claim more datums than bytes only up to the validator's
 * item limit (max_items, which bounds zero-byte array items the same way).
 * Each block then costs at most one validation per byte plus one, and the
 * datum count cannot overflow. One validation is itself bounded by the
 * validator, not by the datum's bytes: a schema with an array of zero-byte
 * items costs up to max_items visits for a few bytes (about 37 s per MB of
 * such datums measured; nested ones are refused when the schema compiles).
 */
#include <string.h>

#include "ketenbus/admin.h"
#include "validate_container.h"
#include "validate_internal.h"

void kb__validate_print_invalid(FILE *out, size_t index, const struct kb_validate_result *r)
{
    fprintf(out, "datum %zu: invalid rule=%s path=%s offset=%zu: %s\n", index, r->rule,
            r->path[0] ? r->path : "(top)", r->offset, r->message);
}

/* A length-prefixed byte string of the metadata map. */
static const uint8_t *meta_bytes(const uint8_t *p, const uint8_t *end, const uint8_t **s, size_t *n)
{
    int64_t l;
    p = kb__validate_varint(p, end, &l);
    if (!p || l < 0 || (uint64_t)l > (uint64_t)(end - p))
        return NULL;
    *s = p;
    *n = (size_t)l;
    return p + l;
}

int kb__validate_container(const kb_validator_t *v, const uint8_t *buf, size_t len, FILE *out,
                           FILE *err)
{
    const uint8_t *p = buf, *end = buf + len;
    if (len < 4 || memcmp(buf, "Obj\x01", 4)) {
        fprintf(err, "ketenbus validate: not an Avro object container file (use --raw for "
                     "one bare datum)\n");
        return 2;
    }
    p += 4;
    for (;;) { /* metadata: a map of bytes */
        int64_t count;
        p = kb__validate_varint(p, end, &count);
        if (!p)
            goto bad_header;
        if (count == 0)
            break;
        if (count < 0) {
            int64_t size;
            if (count == INT64_MIN || !(p = kb__validate_varint(p, end, &size)))
                goto bad_header;
            count = -count;
        }
        for (int64_t i = 0; i < count; i++) {
            const uint8_t *k, *val;
            size_t kl, vl;
            if (!(p = meta_bytes(p, end, &k, &kl)) || !(p = meta_bytes(p, end, &val, &vl)))
                goto bad_header;
            if (kl == 10 && !memcmp(k, "avro.codec", 10) && !(vl == 4 && !memcmp(val, "null", 4))) {
                /* The name as printable ASCII: one line, no control bytes
                 * from the file to the terminal. */
                char name[64] = "";
                if (vl)
                    kb_dlq_printable(val, vl, name, sizeof name);
                fprintf(err,
                        "ketenbus validate: codec \"%s\" not supported; write the file "
                        "with codec null\n",
                        name);
                return 2;
            }
        }
    }
    if (end - p < 16)
        goto bad_header;
    const uint8_t *sync = p;
    p += 16;
    size_t index = 0, rejected = 0, unchecked = 0;
    while (p < end) {
        int64_t count, size;
        const uint8_t *block = p;
        if (!(p = kb__validate_varint(p, end, &count)) || count < 0 ||
            !(p = kb__validate_varint(p, end, &size)) || size < 0 ||
            (uint64_t)size > (uint64_t)(end - p) || (uint64_t)(end - p) - (uint64_t)size < 16 ||
            memcmp(p + size, sync, 16)) {
            fprintf(err, "ketenbus validate: malformed block at file offset %zu\n",
                    (size_t)(block - buf));
            return 2;
        }
        if ((uint64_t)count > (uint64_t)size && (uint64_t)count > v->max_items) {
            fprintf(err,
                    "ketenbus validate: block at file offset %zu claims %lld datums in %lld "
                    "bytes (more datums than bytes: limit %u)\n",
                    (size_t)(block - buf), (long long)count, (long long)size, v->max_items);
            return 2;
        }
        const uint8_t *d = p, *dend = p + size;
        for (int64_t i = 0; i < count; i++, index++) {
            struct kb_validate_result r;
            size_t used = 0;
            if (kb_validate_next(v, d, (size_t)(dend - d), &used, &r) != KB_OK) {
                kb__validate_print_invalid(out, index, &r);
                rejected++;
                /* Where the next datum starts is unknown after a bad one. */
                size_t rest = (size_t)(count - i - 1);
                unchecked += rest;
                if (rest > 0)
                    fprintf(out,
                            "datums %zu..%zu: not checked (they follow an invalid datum in the "
                            "same block)\n",
                            index + 1, index + rest);
                index += 1 + rest; /* the loop's index++ is skipped by the break */
                d = dend;
                break;
            }
            if (used == 0) { /* this datum and the rest: the same datum of no bytes */
                index += (size_t)(count - i);
                break;
            }
            d += used;
        }
        if (d != dend) {
            fprintf(out, "block at file offset %zu: %zu bytes after its last datum\n",
                    (size_t)(block - buf), (size_t)(dend - d));
            rejected++;
        }
        p = dend + 16;
    }
    fprintf(out, "%zu datums, %zu invalid, %zu not checked\n", index, rejected, unchecked);
    return rejected || unchecked ? 1 : 0;
bad_header:
    fprintf(err, "ketenbus validate: malformed container header\n");
    return 2;
}
