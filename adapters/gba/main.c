/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus-gba - the GBA/BRP adapter: reads LO3 messages from a spool
 * folder, publishes the life events they carry to kb.in.gba, and moves each
 * file to done/ only after Kafka acknowledged all its events. A file that
 * cannot be read goes to quarantine/ and, raw, to kb.quarantine.gba.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "gba_events.h"
#include "ingress.h"
#include "ketenbus/log.h"
#include "lo3.h"
#include "spool.h"

#define COMP "gba"
#define MAX_MESSAGE (8u << 20) /* no LO3 message comes near: Xa01 sets stay far below */
#define ACK_TIMEOUT_MS 30000

static const char usage[] =
    "usage: ketenbus-gba ingest --spool DIR --subject-key-file FILE [options]\n"
    "\n"
    "Reads LO3 messages (one per file, Teletex bytes) from DIR/in, publishes\n"
    "nl.brp.persoon-geboren (Lg01 of a newborn) and nl.brp.kind-toegevoegd\n"
    "(Gv01 with a new 09 stapel) to kb.in.gba, then moves the file to DIR/done.\n"
    "Unreadable files go to DIR/quarantine and kb.quarantine.gba with the reason.\n"
    "\n";

struct gba {
    struct kb_adapter_args args;
    struct kb_spool spool;
    kb_ingress_t *ing;
    struct kb_gba_ctx ctx;
    char source[160];   /* ce_source */
    char done_uri[4200];/* file:// URI of done/, for ce_dataref */
};

/* Quarantine @p name: raw bytes to Kafka first (acknowledged), then the file
 * moves. If Kafka is unreachable the file stays in in/ for the next round. */
static int quarantine(struct gba *g, const char *name, const uint8_t *buf, size_t len,
                      const char *rule, const char *reason, long offset)
{
    char errstr[512];
    KB_LOG_WARN(COMP, "quarantined", "rule=%s reason=\"%s\"", rule, reason);
    if (kb_ingress_quarantine(g->ing, buf, len, rule, reason, offset, ACK_TIMEOUT_MS, errstr,
                              sizeof errstr)) {
        KB_LOG_ERR(COMP, "quarantine topic not acknowledged; file kept", "error=\"%s\"", errstr);
        return -1;
    }
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", rule, reason);
    if (kb_spool_quarantine(&g->spool, name, full)) {
        KB_LOG_ERR(COMP, "cannot move file to quarantine", "rule=%s", rule);
        return -1;
    }
    return 0;
}

/* Handle one spool file. Returns 0 when it left in/, -1 when it must be retried. */
static int handle_file(struct gba *g, const char *name)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t mtime = 0;
    char errstr[512];
    kb_err_t err = kb_spool_read(&g->spool, name, MAX_MESSAGE, &buf, &len, &mtime);
    if (err == KB_ERR_RANGE) {
        /* Too big to hold: quarantine the name only, with no bytes read. */
        KB_LOG_WARN(COMP, "file over size limit", "limit=%u", MAX_MESSAGE);
        return kb_spool_quarantine(&g->spool, name, "size: file larger than 8 MiB") ? -1 : 0;
    }
    if (err)
        return -1;
    int rc = 0;
    struct kb_lo3_message msg;
    memset(&msg, 0, sizeof msg);
    char sha[65];
    kb_sha256_hex(buf, len, sha);
    if (kb_lo3_parse(buf, len, &msg, errstr, sizeof errstr)) {
        long off = -1;
        sscanf(errstr, "offset %ld", &off);
        rc = quarantine(g, name, buf, len, "lo3-syntax", errstr, off);
        goto out;
    }
    char dataref[4400];
    snprintf(dataref, sizeof dataref, "%s/%s", g->done_uri, name);
    struct kb_ingress_event *evs = NULL;
    size_t n = 0;
    err = kb_gba_events(&g->ctx, buf, len, &msg, mtime, dataref, &evs, &n, errstr,
                        sizeof errstr);
    if (err == KB_ERR_INVALID) {
        long off = -1;
        sscanf(errstr, "offset %ld", &off);
        rc = quarantine(g, name, buf, len, "lo3-semantics", errstr, off);
        goto out;
    }
    if (err) {
        KB_LOG_ERR(COMP, "cannot build events; file kept", "type=%s error=\"%s\"", msg.type,
                   errstr);
        rc = -1;
        goto out;
    }
    if (n == 0) {
        /* Valid LO3 without a life event this adapter publishes (yet): kept
         * in done/ with a log line, so it is accounted for. */
        KB_LOG_INFO(COMP, "no life event in message", "type=%s sha256=%s", msg.type, sha);
    } else if (kb_ingress_send(g->ing, evs, n, ACK_TIMEOUT_MS, errstr, sizeof errstr)) {
        KB_LOG_ERR(COMP, "events not acknowledged; file kept for retry", "type=%s error=\"%s\"",
                   msg.type, errstr);
        kb_gba_events_free(evs, n);
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        KB_LOG_INFO(COMP, "event published", "event_id=%s type=%s subject=%s sequence=%llu",
                    evs[i].attrs.id, evs[i].attrs.type, evs[i].attrs.subject,
                    (unsigned long long)evs[i].attrs.sequence);
    kb_gba_events_free(evs, n);
    /* Fault injection for the tests: die after Kafka acknowledged but before
     * the sender is acknowledged, the window that deterministic ids cover. */
    const char *fault = getenv("KETENBUS_FAULT");
    if (fault && !strcmp(fault, "crash-after-ack") && n > 0) {
        KB_LOG_WARN(COMP, "fault injection: exiting before acknowledging the file", "type=%s",
                    msg.type);
        _exit(137);
    }
    if (kb_spool_done(&g->spool, name)) {
        KB_LOG_ERR(COMP, "cannot move file to done", "type=%s", msg.type);
        rc = -1;
    }
out:
    kb_lo3_message_fini(&msg);
    free(buf);
    return rc;
}

static int cmd_ingest(int argc, char **argv)
{
    static const struct option longopts[] = {KB_ADAPTER_LONGOPTS, {NULL, 0, NULL, 0}};
    struct gba g;
    memset(&g, 0, sizeof g);
    kb_adapter_args_init(&g.args);
    int opt, rc = 1;
    while ((opt = getopt_long(argc, argv, KB_ADAPTER_SHORTOPTS, longopts, NULL)) != -1) {
        int r = kb_adapter_common_opt(&g.args, opt, optarg);
        if (r < 0)
            goto out_args;
        if (r == 0 || opt == 'h') {
            fprintf(opt == 'h' ? stdout : stderr, "%s%s", usage, kb_adapter_common_help);
            rc = opt == 'h' ? 0 : 2;
            goto out_args;
        }
    }
    if (!g.args.spool_dir) {
        fprintf(stderr, "error: --spool is required\n%s", usage);
        rc = 2;
        goto out_args;
    }
    char errstr[512];
    if (kb_spool_open(&g.spool, g.args.spool_dir, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_args;
    }
    char real[PATH_MAX];
    snprintf(g.done_uri, sizeof g.done_uri, "file://%s/done",
             realpath(g.args.spool_dir, real) ? real : g.args.spool_dir);
    kb_schemas_t *schemas = NULL;
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (kb_adapter_load(&g.args, &schemas, &key, &key_len))
        goto out_args;
    snprintf(g.source, sizeof g.source, "urn:nld:oin:%s:systeem:ketenbus-gba", g.args.oin);
    g.ctx = (struct kb_gba_ctx){schemas, key, key_len, g.source};
    struct kb_ingress_opts iopts = {&g.args.kafka, "gba", g.spool.dir, 3};
    g.ing = kb_ingress_new(&iopts, errstr, sizeof errstr);
    if (!g.ing) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_schemas;
    }
    static atomic_int stop;
    kb_adapter_signals(&stop);
    KB_LOG_INFO(COMP, "adapter started", "spool=%s topic=kb.in.gba", g.spool.dir);
    rc = 0;
    while (!atomic_load(&stop)) {
        char **names = NULL;
        size_t n = 0;
        int failed = 0;
        if (kb_spool_list(&g.spool, &names, &n) == KB_OK) {
            for (size_t i = 0; i < n && !atomic_load(&stop) && !failed; i++)
                failed = handle_file(&g, names[i]) != 0;
            kb_spool_names_free(names, n);
        }
        if (g.args.once) {
            rc = failed ? 1 : 0;
            break;
        }
        /* Back off longer after a failure (Kafka down): the file stays. */
        struct timespec ts = {failed ? 2 : 0, failed ? 0 : 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    KB_LOG_INFO(COMP, "adapter stopped", "rc=%d", rc);
    kb_ingress_destroy(g.ing);
out_schemas:
    kb_schemas_destroy(schemas);
    free(key);
out_args:
    kb_adapter_args_fini(&g.args);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "ingest"))
        return cmd_ingest(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("%s%s", usage, kb_adapter_common_help);
        return 0;
    }
    fprintf(stderr, "%s", usage);
    return 2;
}
