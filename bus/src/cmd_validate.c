/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_validate.c - `ketenbus validate`: check Avro data against a schema with
 * the compiled validator, for integration teams before they go live. DATA is
 * an Avro object container file (codec null, read by validate_container.c),
 * or with --raw one bare datum.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "ketenbus/validate.h"
#include "validate_container.h"

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
            "  index, field path, byte offset in the datum and rule), 2 on usage or I/O errors\n"
            "  and on a malformed container, such as one with a block that claims more datums\n"
            "  than it has bytes and more than 100000.\n");
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
            kb__validate_print_invalid(stdout, 0, &r);
            printf("1 datum, 1 invalid\n");
            rc = 1;
        }
    } else {
        rc = kb__validate_container(v, data, len, stdout, stderr);
    }
    free(data);
out_destroy:
    kb_validate_destroy(v);
    return rc;
}
