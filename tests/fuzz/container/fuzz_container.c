/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_container.c - libFuzzer target for the Avro object container reader of
 * `ketenbus validate` (bus/src/validate_container.c): integration teams hand
 * it their files, so it must take any bytes and end promptly whatever the
 * blocks claim (libFuzzer's -timeout catches a loop; schemas whose datums
 * take no bytes are among the ones below).
 *
 * Input: byte 0 picks a schema (mod 4) and, by bit 7, the form of the rest:
 *  - raw: the rest is the container file as is. Checked: exit status 0, 1 or
 *    2; status 2 says why in one line on the error stream; otherwise the last
 *    line counts N datums, status 0 means nothing invalid or unchecked, and
 *    every reported datum number is below N and above the one before.
 *  - blocks: the rest is a list of blocks, each 1 byte count, 1 byte size and
 *    that many data bytes (clipped to what is left), written into a well-
 *    formed file here. On top of the checks above: the file is refused
 *    exactly when a block claims more datums than bytes and more than the
 *    item limit (8 here), naming that block's offset, and otherwise N is
 *    the sum of the counts.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate_container.h"

#define N_SCHEMAS 4
#define MAX_ITEMS 8

static const char *const schema_texts[N_SCHEMAS] = {
    /* Datums of no bytes. */
    "{\"type\":\"null\"}",
    "{\"type\":\"record\",\"name\":\"Leeg\",\"namespace\":\"fuzz\",\"fields\":["
    "{\"name\":\"a\",\"type\":\"null\"},{\"name\":\"b\",\"type\":{\"type\":\"record\","
    "\"name\":\"Niets\",\"fields\":[{\"name\":\"c\",\"type\":\"null\"}]}}]}",
    /* One byte each, with invalid bytes. */
    "{\"type\":\"boolean\"}",
    /* Variable length, with rules and arrays of datums of no bytes. */
    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"fuzz\",\"fields\":["
    "{\"name\":\"n\",\"type\":\"int\",\"kb.minimum\":0,\"kb.maximum\":9},"
    "{\"name\":\"s\",\"type\":[\"null\",\"string\"],\"kb.maxLength\":4},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"null\"}}]}",
};

static const uint8_t sync_marker[16] = "fuzz-sync-marker";

static kb_validator_t *validators[N_SCHEMAS];

static void init(void)
{
    char err[256];
    for (int s = 0; s < N_SCHEMAS; s++) {
        struct kb_validate_opts o = {.max_items = MAX_ITEMS, .max_string = 64};
        validators[s] = kb_validate_compile(schema_texts[s], &o, err, sizeof err);
        if (!validators[s]) {
            fprintf(stderr, "schema %d: %s\n", s, err);
            abort();
        }
    }
}

static void fail(const char *why, const char *out, const char *err)
{
    fprintf(stderr, "fuzz_container: %s\n--- out:\n%s--- err:\n%s", why, out, err);
    abort();
}

/* What a run printed, checked against the rules every run must keep. */
struct run {
    int rc;         /* kb__validate_container's exit status */
    char *out;      /* its output stream, NUL-terminated */
    char *err;      /* its error stream */
    uint64_t total; /* N of the count line (status 0 and 1) */
};

static void run_container(const kb_validator_t *v, const uint8_t *file, size_t len, struct run *r)
{
    size_t out_len = 0, err_len = 0;
    FILE *out = open_memstream(&r->out, &out_len), *err = open_memstream(&r->err, &err_len);
    if (!out || !err)
        abort();
    r->rc = kb__validate_container(v, file, len, out, err);
    fclose(out);
    fclose(err);
    if (r->rc == 2) {
        const char *nl = strchr(r->err, '\n');
        if (strncmp(r->err, "ketenbus validate: ", 19) || !nl || nl[1])
            fail("status 2 without one error line", r->out, r->err);
        return;
    }
    if ((r->rc != 0 && r->rc != 1) || r->err[0])
        fail("status other than 0, 1 or 2, or an error line without status 2", r->out, r->err);
    const char *last = r->out, *nl;
    while ((nl = strchr(last, '\n')) && nl[1])
        last = nl + 1;
    uint64_t invalid, unchecked;
    if (sscanf(last, "%" SCNu64 " datums, %" SCNu64 " invalid, %" SCNu64 " not checked", &r->total,
               &invalid, &unchecked) != 3)
        fail("no count line", r->out, r->err);
    if ((r->rc == 0) != (invalid == 0 && unchecked == 0) || unchecked > r->total)
        fail("count line and status disagree", r->out, r->err);
    /* "datum K: invalid" lines: K below N and increasing. */
    uint64_t prev = 0, k;
    int any = 0;
    for (const char *line = r->out; line < last; line = strchr(line, '\n') + 1) {
        if (sscanf(line, "datum %" SCNu64 ": invalid", &k) == 1) {
            if (k >= r->total || (any && k <= prev))
                fail("datum number out of order or beyond the count", r->out, r->err);
            prev = k;
            any = 1;
        }
    }
}

static size_t put_varint(uint8_t *p, int64_t n)
{
    uint64_t z = ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
    size_t i = 0;
    for (; z >= 0x80; z >>= 7)
        p[i++] = (uint8_t)(z | 0x80);
    p[i++] = (uint8_t)z;
    return i;
}

/* Write the blocks described by in[0..len) into a well-formed file and check
 * that the count and a refusal are exactly as claimed. */
static void blocks(const kb_validator_t *v, const uint8_t *in, size_t len)
{
    static const char header[] = "Obj\x01\x02\x14"
                                 "avro.codec\x08null\x00";
    size_t cap = sizeof header - 1 + 16 + len / 2 * (2 + 2 + 16) + len + 1;
    uint8_t *file = malloc(cap), *p = file;
    if (!file)
        abort();
    memcpy(p, header, sizeof header - 1);
    p += sizeof header - 1;
    memcpy(p, sync_marker, 16);
    p += 16;
    uint64_t total = 0;
    long refused_at = -1;
    for (size_t i = 0; i + 2 <= len;) {
        size_t count = in[i], size = in[i + 1];
        i += 2;
        if (size > len - i)
            size = len - i;
        if (refused_at < 0 && count > size && count > MAX_ITEMS)
            refused_at = (long)(p - file);
        if (refused_at < 0)
            total += count;
        p += put_varint(p, (int64_t)count);
        p += put_varint(p, (int64_t)size);
        memcpy(p, in + i, size);
        p += size;
        i += size;
        memcpy(p, sync_marker, 16);
        p += 16;
    }
    struct run r;
    run_container(v, file, (size_t)(p - file), &r);
    if (refused_at >= 0) {
        char want[64];
        snprintf(want, sizeof want, "block at file offset %ld claims", refused_at);
        if (r.rc != 2 || !strstr(r.err, want))
            fail("a block claiming too many datums was not refused", r.out, r.err);
    } else if (r.rc == 2 || r.total != total) {
        fail("well-formed blocks: refused, or not every claimed datum counted", r.out, r.err);
    }
    free(r.out);
    free(r.err);
    free(file);
}

/* The input as the file, with only the checks every run must pass. */
static void raw(const kb_validator_t *v, const uint8_t *file, size_t len)
{
    struct run r;
    run_container(v, file, len, &r);
    free(r.out);
    free(r.err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!validators[0])
        init();
    if (size == 0)
        return 0;
    const kb_validator_t *v = validators[data[0] % N_SCHEMAS];
    if (data[0] & 0x80)
        blocks(v, data + 1, size - 1);
    else
        raw(v, data + 1, size - 1);
    return 0;
}
