/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * kadaster_decode.c - `ketenbus-kadaster decode`: the events a delivery
 * yields, as JSON lines, for integration teams checking a delivery and for
 * the golden tests (see kb_kadaster_decode() in kadaster_events.h).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "kadaster_events.h"

#define MAX_FILE (256u << 20) /* as ingest: a zipped delivery */

struct rejects {
    FILE *out;
    int count;
};

static int decode_reject(void *arg, size_t file_index, const char *document, int whole_file,
                         const uint8_t *raw, size_t len, const char *rule, const char *reason)
{
    (void)file_index;
    (void)whole_file;
    struct rejects *rj = arg;
    char sha[65];
    kb_sha256_hex(raw, len, sha);
    json_t *o = json_pack("{s:{s:s,s:s,s:s,s:s}}", "quarantine", "document", document, "rule", rule,
                          "reason", reason, "sha256", sha);
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    if (!line)
        return -1;
    fprintf(rj->out, "%s\n", line);
    free(line);
    rj->count++;
    return 0;
}

static uint8_t *read_file(const char *path, size_t *len, int64_t *mtime_ms, char *errstr,
                          size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st)) {
        kb_err_set(KB_ERR_IO, errstr, errstr_size, "cannot read %s", path);
        if (f)
            fclose(f);
        return NULL;
    }
    if ((size_t)st.st_size > MAX_FILE) {
        kb_err_set(KB_ERR_RANGE, errstr, errstr_size, "%s is larger than %u bytes", path, MAX_FILE);
        fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    *len = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf)
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
    *mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return buf;
}

int kb_kadaster_decode(const struct kb_kadaster_ctx *ctx, const char *const *paths, size_t n,
                       int64_t received_ms, size_t max_event, FILE *out, char *errstr,
                       size_t errstr_size)
{
    struct kb_kadaster_batch batch;
    kb_kadaster_batch_init(&batch);
    batch.ctx = ctx; /* as ingest: a document with an event over the size limit is refused */
    batch.max_event = max_event;
    struct rejects rj = {out, 0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len = 0;
        int64_t mtime = 0;
        uint8_t *buf = read_file(paths[i], &len, &mtime, errstr, errstr_size);
        if (!buf) {
            rc = -1;
            break;
        }
        const char *base = strrchr(paths[i], '/');
        if (kb_kadaster_batch_add(&batch, i, base ? base + 1 : paths[i], buf, len,
                                  received_ms >= 0 ? received_ms : mtime, NULL, decode_reject,
                                  &rj)) {
            kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "out of memory");
            rc = -1;
        }
        free(buf);
    }
    struct kb_ingress_event *evs = NULL;
    size_t n_evs = 0;
    if (rc == 0 && kb_kadaster_events(ctx, &batch, &evs, &n_evs, errstr, errstr_size))
        rc = -1;
    for (size_t i = 0; i < n_evs && rc == 0; i++) {
        char *line = kb_kadaster_event_json(ctx->schemas, &evs[i], errstr, errstr_size);
        if (!line) {
            rc = -1;
            break;
        }
        fprintf(out, "%s\n", line);
        free(line);
    }
    kb_kadaster_events_free(evs, n_evs);
    kb_kadaster_batch_fini(&batch);
    return rc < 0 ? -1 : rj.count;
}
