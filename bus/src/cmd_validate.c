/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_validate.c - `ketenbus validate`: check Avro data against a schema with
 * the compiled validator, for integration teams before they go live. DATA is
 * an Avro object container file (codec null), or with --raw one bare datum.
 *
 * The container framing (magic, metadata map, sync marker, blocks of count +
 * size + datums) is read here with the validator's own bounds-checked varint
 * reader: avro-c's file reader has no way to hand out a datum's raw bytes
 * (it decodes each datum into a value, which is what must not happen to
 * unchecked input), so it cannot be used for the framing alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "ketenbus/validate.h"
#include "validate_internal.h"

#define MAX_FILE (1u << 30)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ketenbus validate --schema FILE [--raw] [--simd PATH] DATA\n"
            "  Checks every datum of DATA against the schema FILE (.avsc, with its kb.*\n"
            "  constraint attributes; see schemas/README.md).\n"
            "  DATA   an Avro object container file (codec null), or with --raw one bare\n"
            "         Avro binary datum (no Confluent framing)\n"
            "  --simd force a kernel path: scalar, sse42, avx2 (default: $KETENBUS_SIMD or the\n"
            "         best this CPU has)\n"
            "  Exit 0 when every datum is valid, 1 when any is not (each reported with its\n"
            "  index, field path, byte offset in the datum and rule), 2 on usage or I/O errors.\n");
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && st.st_size >= 0 && (uint64_t)st.st_size <= MAX_FILE) {
        buf = malloc((size_t)st.st_size + 1);
        if (buf && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
        if (buf) {
            buf[st.st_size] = '\0';
            *len = (size_t)st.st_size;
        }
    }
    fclose(f);
    return buf;
}

static void report(size_t index, const struct kb_validate_result *r)
{
    printf("datum %zu: invalid rule=%s path=%s offset=%zu: %s\n", index, r->rule,
           r->path[0] ? r->path : "(top)", r->offset, r->message);
}

/* A length-prefixed byte string of the metadata map. */
static const uint8_t *meta_bytes(const uint8_t *p, const uint8_t *end, const uint8_t **s,
                                 size_t *n)
{
    int64_t l;
    p = kb__validate_varint(p, end, &l);
    if (!p || l < 0 || (uint64_t)l > (uint64_t)(end - p))
        return NULL;
    *s = p;
    *n = (size_t)l;
    return p + l;
}

/* Check every datum of an object container file. Returns the exit code. */
static int check_container(const kb_validator_t *v, const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    if (len < 4 || memcmp(buf, "Obj\x01", 4)) {
        fprintf(stderr, "ketenbus validate: not an Avro object container file (use --raw for "
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
            if (kl == 10 && !memcmp(k, "avro.codec", 10) &&
                !(vl == 4 && !memcmp(val, "null", 4))) {
                fprintf(stderr, "ketenbus validate: codec \"%.*s\" not supported; write the file "
                                "with codec null\n",
                        (int)(vl > 32 ? 32 : vl), (const char *)val);
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
            fprintf(stderr, "ketenbus validate: malformed block at file offset %zu\n",
                    (size_t)(block - buf));
            return 2;
        }
        const uint8_t *d = p, *dend = p + size;
        for (int64_t i = 0; i < count; i++, index++) {
            struct kb_validate_result r;
            size_t used = 0;
            if (kb_validate_next(v, d, (size_t)(dend - d), &used, &r) != KB_OK) {
                report(index, &r);
                rejected++;
                /* Where the next datum starts is unknown after a bad one. */
                unchecked += (size_t)(count - i - 1);
                if (count - i - 1 > 0)
                    printf("datums %zu..%zu: not checked (they follow an invalid datum in the "
                           "same block)\n",
                           index + 1, index + (size_t)(count - i - 1));
                index += (size_t)(count - i - 1);
                d = dend;
                break;
            }
            d += used;
        }
        if (d != dend) {
            printf("block at file offset %zu: %zu bytes after its last datum\n",
                   (size_t)(block - buf), (size_t)(dend - d));
            rejected++;
        }
        p = dend + 16;
    }
    printf("%zu datums, %zu invalid, %zu not checked\n", index, rejected, unchecked);
    return rejected || unchecked ? 1 : 0;
bad_header:
    fprintf(stderr, "ketenbus validate: malformed container header\n");
    return 2;
}

int kb_cmd_validate(int argc, char **argv)
{
    const char *schema_path = NULL, *data_path = NULL, *simd = NULL;
    int raw = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--schema") && i + 1 < argc) {
            schema_path = argv[++i];
        } else if (!strcmp(argv[i], "--simd") && i + 1 < argc) {
            simd = argv[++i];
        } else if (!strcmp(argv[i], "--raw")) {
            raw = 1;
        } else if (argv[i][0] != '-' && !data_path) {
            data_path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!schema_path || !data_path) {
        usage(stderr);
        return 2;
    }
    size_t schema_len = 0, len = 0;
    char *schema = (char *)slurp(schema_path, &schema_len);
    if (!schema) {
        fprintf(stderr, "ketenbus validate: cannot read %s\n", schema_path);
        return 2;
    }
    struct kb_validate_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.simd = simd;
    char err[256];
    kb_validator_t *v = kb_validate_compile(schema, &opts, err, sizeof err);
    free(schema);
    if (!v) {
        fprintf(stderr, "ketenbus validate: %s: %s\n", schema_path, err);
        return 2;
    }
    int rc = 2;
    uint8_t *data = slurp(data_path, &len);
    if (!data) {
        fprintf(stderr, "ketenbus validate: cannot read %s\n", data_path);
        goto out_destroy;
    }
    if (raw) {
        struct kb_validate_result r;
        if (kb_validate(v, data, len, &r) == KB_OK) {
            printf("1 datum, 0 invalid\n");
            rc = 0;
        } else {
            report(0, &r);
            printf("1 datum, 1 invalid\n");
            rc = 1;
        }
    } else {
        rc = check_container(v, data, len);
    }
    free(data);
out_destroy:
    kb_validate_destroy(v);
    return rc;
}
