/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus-kadaster - the Kadaster BRK Levering adapter. `ingest` reads
 * delivery files (plain XML or zip) from a spool folder, publishes their
 * events to kb.in.kadaster in (brkDatum, volgnummer) order per object and
 * moves the files to done/ only after Kafka acknowledged every event;
 * unreadable documents go to quarantine/ and kb.quarantine.kadaster with
 * the reason. `decode` prints the events of files as JSON lines.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "ingress.h"
#include "kadaster_events.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/log.h"
#include "spool.h"

#define COMP               "kadaster"
#define MAX_FILE           (256u << 20) /* a zipped delivery; XML documents are capped lower */
#define MAX_ROUND_FILES    1000         /* files per spool scan (one ordered batch) */
#define MAX_ROUND_BYTES    (512u << 20) /* bytes read per spool scan */
#define ACK_TIMEOUT_MS     60000

static const char usage[] =
    "usage: ketenbus-kadaster ingest --spool DIR --subject-key-file FILE\n"
    "                                [--instance NAME] [options]\n"
    "       ketenbus-kadaster decode [--received-ms MS] [--schemas DIR]\n"
    "                                [--subject-key-file FILE] [--oin OIN]\n"
    "                                [-X message.max.bytes=N] FILE...\n"
    "\n"
    "ingest: reads BRK Levering deliveries (Mutatie or Stand XML, or zips of them)\n"
    "from DIR/in, publishes nl.brk.eigendom-overgedragen, nl.brk.kadastraal-object-\n"
    "gemuteerd and nl.brk.kadastraal-object-vervallen to kb.in.kadaster, keyed by\n"
    "kadastraal object and ordered per object by (brkDatum, volgnummer) within\n"
    "each scan of DIR/in, then moves the files to DIR/done. Documents that cannot\n"
    "be read go to DIR/quarantine and kb.quarantine.kadaster with the reason.\n"
    "\n"
    "Each round is one Kafka transaction. Its transactional.id is derived from the\n"
    "topic prefix, the spool and --instance NAME (1 to 64 of A-Z a-z 0-9 . _ -),\n"
    "by default the host name: a restart with the same one fences the process\n"
    "before it and aborts the round that one left open at once. Give a NAME where\n"
    "the host name changes between restarts (a container), and the same NAME to\n"
    "the same adapter every time; two adapters must not share one.\n"
    "\n"
    "decode: prints the events the FILEs (taken together as one delivery) yield,\n"
    "one JSON object per line; refused documents print as {\"quarantine\": ...}.\n"
    "Exit status 0 when every document was accepted, 1 when some were refused.\n"
    "--received-ms sets the time of receipt (ms since 1970, up to 253402300799999 =\n"
    "9999-12-31; default: each file's modification time). A document whose event\n"
    "would not fit message.max.bytes (-X or --kafka-config, as for ingest; default\n"
    "1000000) is refused; ingest also learns the topic's max.message.bytes.\n"
    "\n";

/* The producer's message.max.bytes as configured (-X, --kafka-config; the
 * last setting wins), or 0 for librdkafka's default: what bounds an event
 * in `decode`, which asks no broker (ingest: kb_ingress_max_message()). */
static size_t message_max_bytes(const struct kb_kafka_opts *o)
{
    for (size_t i = o->n; i-- > 0;)
        if (!strcmp(o->keys[i], "message.max.bytes"))
            return (size_t)strtoull(o->vals[i], NULL, 10);
    return 0;
}

/* ------------------------------------------------------------------ decode */

enum { OPT_RECEIVED = KB_OPT_FIRST_OWN, OPT_INSTANCE };

/* --received-ms: ms since 1970, up to the last millisecond of the year 9999
 * (a four-digit year, as RFC 3339 and kb_event_time() write it). */
#define MAX_RECEIVED_MS 253402300799999LL

static int decode_opt(void *ctx, int opt, const char *arg)
{
    if (opt != OPT_RECEIVED)
        return 2;
    char errstr[256];
    if (kb_cli_long("--received-ms", arg, 0, MAX_RECEIVED_MS, ctx, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        return 2;
    }
    return 0;
}

static int cmd_decode(int argc, char **argv)
{
    static const struct option own[] = {{"received-ms", required_argument, NULL, OPT_RECEIVED},
                                        {NULL, 0, NULL, 0}};
    long long received = -1;
    const struct kb_adapter_cmd cmd = {.usage = usage, .own = own, .own_opt = decode_opt,
                                       .ctx = &received};
    struct kb_adapter_args args;
    int rc = kb_adapter_parse(&cmd, argc, argv, &args);
    if (rc >= 0)
        goto out_args;
    rc = 2;
    if (optind >= argc) {
        fprintf(stderr, "error: decode needs a FILE\n%s", usage);
        goto out_args;
    }
    char errstr[512];
    kb_schemas_t *schemas = kb_schemas_load_dir(args.schemas_dir, errstr, sizeof errstr);
    if (!schemas) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_args;
    }
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (args.subject_key_file &&
        kb_event_key_load(args.subject_key_file, &key, &key_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_schemas;
    }
    char source[160];
    kb_adapter_source(&args, "ketenbus-kadaster", source, sizeof source);
    struct kb_kadaster_ctx ctx = {schemas, key, key_len, source};
    int rejects = kb_kadaster_decode(
        &ctx, (const char *const *)argv + optind, (size_t)(argc - optind), received,
        kb_ingress_event_limit(message_max_bytes(&args.kafka)), stdout, errstr, sizeof errstr);
    if (rejects < 0)
        fprintf(stderr, "error: %s\n", errstr);
    rc = rejects < 0 ? 2 : rejects > 0 ? 1 : 0;
    free(key);
out_schemas:
    kb_schemas_destroy(schemas);
out_args:
    kb_adapter_args_fini(&args);
    return rc;
}

/* ------------------------------------------------------------------ ingest */

struct kad {
    struct kb_adapter_run run; /* options, spool, schemas, subject key */
    const char *instance;      /* --instance: in the transactional.id (NULL: the host name) */
    kb_ingress_t *ing;         /* NULL after a failed kb_ingress_new(): made again next round */
    struct kb_kadaster_ctx ctx;
    char source[160];    /* ce_source */
    size_t max_event;    /* largest event the output topic takes with its headers */
    int limit_stale;     /* Kafka refused a record as too large: learn the limits again */
    int redo;            /* this round redoes one Kafka refused (relearn_limit) and that
                          * was aborted (the ingress is transactional) */
    char **names;        /* files of the current round */
    int *gone;           /* per file: left in/ already (quarantined whole) */
    struct kb_spool_file *files; /* per file: which one was read, for its move */
};

/* Raw bytes and reason to kb.quarantine.kadaster, acknowledged. Bytes too
 * large for the topic travel as their size and SHA-256 only (ingress.h,
 * kb_raw_omitted) and stay in the quarantine folder. */
static int quarantine_topic(struct kad *k, const uint8_t *raw, size_t len, const char *rule,
                            const char *reason)
{
    char errstr[512];
    kb_err_t err = kb_ingress_quarantine(k->ing, raw, len, rule, reason, -1, ACK_TIMEOUT_MS, errstr,
                                         sizeof errstr);
    if (err) {
        KB_LOG_ERR(COMP, "quarantine topic not acknowledged; file kept", "error=\"%s\"", errstr);
        k->limit_stale |= err == KB_ERR_RANGE; /* the topic's limit went down */
        return -1;
    }
    return 0;
}

/* Longest name safe_name() gives: with the ".staged", ".<N>", ".reason"
 * and temp-file decorations the spool adds, it stays under NAME_MAX (255);
 * a longer one would fail to be written on every retry of its delivery. */
#define QUARANTINE_NAME_MAX 200

/* Folder-safe form of "file!entry" for the quarantine folder, cut to
 * QUARANTINE_NAME_MAX bytes (the .reason names the entry in full). */
static void safe_name(const char *doc, char *out, size_t cap)
{
    size_t i = 0;
    if (cap > QUARANTINE_NAME_MAX + 1)
        cap = QUARANTINE_NAME_MAX + 1;
    for (; doc[i] && i + 1 < cap; i++) {
        char c = doc[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_';
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
    if (out[0] == '.')
        out[0] = '_';
}

static int ingest_reject(void *arg, size_t file_index, const char *document, int whole_file,
                         const uint8_t *raw, size_t len, const char *rule, const char *reason)
{
    struct kad *k = arg;
    /* The sender's names (file, zip entry) are logged unless they may hold
     * a BSN or A-nummer, as ce_dataref leaves them out then. */
    KB_LOG_WARN(COMP, "quarantined", "document=\"%s\" rule=%s reason=\"%s\"",
                kb_adapter_name_may_hold_id(document) ? "(name withheld)" : document, rule, reason);
    /* A document refused for its size in a round done again after Kafka
     * refused one as too large: whoever looks at it learns that a limit
     * changed, and that the aborted round published none of it. */
    const char *partly = k->redo && !strcmp(rule, "size")
                             ? "; Kafka refused the round before as too large (a topic's limit "
                               "was lowered) and the round was aborted: none of this document's "
                               "events was published"
                             : "";
    char full[1024];
    if (!whole_file)
        snprintf(full, sizeof full, "%s: entry %s: %s%s", rule, strchr(document, '!') + 1, reason,
                 partly);
    else
        snprintf(full, sizeof full, "%s: %s%s", rule, reason, partly);
    if (quarantine_topic(k, raw, len, rule, full))
        return -1;
    if (whole_file) {
        if (kb_spool_quarantine(&k->run.spool, k->names[file_index], &k->files[file_index], full)) {
            KB_LOG_ERR(COMP, "cannot move file to quarantine", "rule=%s", rule);
            return -1;
        }
        k->gone[file_index] = 1;
        return 0;
    }
    /* A bad entry of a zip: its bytes and reason beside the quarantined files;
     * the rest of the archive is published. Named after the name the zip
     * gets in done/ (a delivery name reused on another day gets ".1", ...),
     * and staged then moved by the spool, which never replaces a file: an
     * earlier day's entry and its .reason stay, and a name taken all the
     * same gets a numeric suffix, as kb_spool_quarantine() gives files. */
    char done_name[300], doc[900], safe[QUARANTINE_NAME_MAX + 1];
    if (kb_spool_done_name(&k->run.spool, k->names[file_index], done_name, sizeof done_name))
        snprintf(done_name, sizeof done_name, "%s", k->names[file_index]);
    snprintf(doc, sizeof doc, "%s!%s", done_name, strchr(document, '!') + 1);
    safe_name(doc, safe, sizeof safe);
    /* A round that fails after this (Kafka, a later file) is retried with
     * the zip still in in/: its entry is quarantined once, not once a try. */
    if (kb_spool_quarantined_before(&k->run.spool, safe, raw, len))
        return 0;
    if (kb_spool_stage(&k->run.spool, safe, raw, len) ||
        kb_spool_stage_quarantine(&k->run.spool, safe, full)) {
        KB_LOG_ERR(COMP, "cannot write zip entry to quarantine", "rule=%s", rule);
        kb_spool_stage_drop(&k->run.spool, safe);
        return -1;
    }
    return 0;
}

/* Connect: the ingress learns what the output topic takes, which bounds
 * every event (a document whose event is larger is refused, rule size). */
static int ingress_open(struct kad *k, char *errstr, size_t errstr_size)
{
    /* Transactional: a round's events, of many documents, become visible
     * together or not at all. Kafka refusing one of them as too large (a
     * topic's limit lowered under the running adapter) aborts the round, and
     * the round done again refuses that document whole: no part of it was
     * published. */
    struct kb_ingress_opts iopts = {.kafka = &k->run.args.kafka,
                                    .source = "kadaster",
                                    .state_dir = k->run.spool.dir,
                                    .partitions = 3,
                                    .transactional = 1,
                                    .instance = k->instance};
    k->ing = kb_ingress_new(&iopts, errstr, errstr_size);
    if (!k->ing)
        return -1;
    k->max_event = kb_ingress_event_limit(kb_ingress_max_message(k->ing));
    return 0;
}

/* round_once(): the limits were learnt again, do the round again at once,
 * at most ROUNDS_AGAIN_MAX times in a row (then as a failed round). */
#define ROUND_AGAIN      1
#define ROUNDS_AGAIN_MAX 3

/* Kafka refused a record as too large that fit the limits learnt: a
 * topic's max.message.bytes was lowered since. Learn them again (a new
 * producer, whose batches must fit them too); the round, done again,
 * refuses the documents that no longer fit and publishes the rest, and
 * quarantines with fewer raw bytes. ROUND_AGAIN, or -1 when Kafka cannot
 * be reached (the next round connects) or the limits came back the same
 * (no DESCRIBE_CONFIGS right, say): then doing the round again at once
 * would only send its events again, so it counts as a failed round. */
static int relearn_limit(struct kad *k)
{
    size_t before = k->max_event;
    size_t q_before = k->ing ? kb_ingress_quarantine_max_raw(k->ing) : 0;
    char errstr[512];
    k->limit_stale = 0;
    kb_ingress_destroy(k->ing);
    if (ingress_open(k, errstr, sizeof errstr)) {
        KB_LOG_ERR(COMP, "cannot reconnect to Kafka", "error=\"%s\"", errstr);
        return -1;
    }
    KB_LOG_WARN(COMP, "Kafka refused a record as too large; limits learnt again",
                "max_event_before=%zu max_event=%zu", before, k->max_event);
    return k->max_event != before || kb_ingress_quarantine_max_raw(k->ing) != q_before ? ROUND_AGAIN
                                                                                       : -1;
}

/* One scan of in/: read, decode, publish in order, acknowledge; @p redo when
 * it does again one that Kafka refused (struct kad's redo). Returns 0 when
 * everything left in/, -1 when something must be retried, ROUND_AGAIN when
 * it must be done again at once. */
static int round_once(struct kad *k, int redo)
{
    char **names = NULL;
    size_t n = 0;
    char errstr[512];
    k->redo = redo;
    if (!k->ing && ingress_open(k, errstr, sizeof errstr)) {
        KB_LOG_ERR(COMP, "cannot connect to Kafka", "error=\"%s\"", errstr);
        return -1;
    }
    if (kb_spool_list(&k->run.spool, &names, &n) != KB_OK)
        return -1;
    if (n == 0) {
        kb_spool_names_free(names, n);
        return 0;
    }
    size_t use = n < MAX_ROUND_FILES ? n : MAX_ROUND_FILES;
    int rc = 0;
    k->names = names;
    k->gone = calloc(use, sizeof *k->gone);
    k->files = calloc(use, sizeof *k->files);
    int *skip = calloc(use, sizeof *skip);
    struct kb_kadaster_batch batch;
    kb_kadaster_batch_init(&batch);
    batch.ctx = &k->ctx; /* an event too large for Kafka refuses its document */
    batch.max_event = k->max_event;
    struct kb_ingress_event *evs = NULL;
    size_t n_evs = 0, bytes = 0;
    if (!k->gone || !k->files || !skip) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < use; i++) {
        if (bytes >= MAX_ROUND_BYTES) {
            skip[i] = 1; /* next round */
            continue;
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        int64_t mtime = 0;
        kb_err_t err =
            kb_spool_read(&k->run.spool, names[i], MAX_FILE, &buf, &len, &mtime, &k->files[i]);
        if (err == KB_ERR_RANGE) {
            char reason[320];
            kb_spool_oversize_reason(&k->run.spool, names[i], "size", MAX_FILE, reason,
                                     sizeof reason);
            KB_LOG_WARN(COMP, "file over size limit", "limit=%u", MAX_FILE);
            if (quarantine_topic(k, (const uint8_t *)"", 0, "size", reason) ||
                kb_spool_quarantine(&k->run.spool, names[i], &k->files[i], reason)) {
                rc = -1;
                goto out;
            }
            k->gone[i] = 1;
            continue;
        }
        char done_name[300];
        if (!err && kb_spool_done_name(&k->run.spool, names[i], done_name, sizeof done_name)) {
            free(buf);
            err = KB_ERR_RANGE;
        }
        if (err) {
            /* Unreadable for now (kb_spool_read() logged it and quarantines
             * it in time): the other files of the round go on. */
            skip[i] = 1;
            rc = -1;
            continue;
        }
        bytes += len;
        char dataref[KB_KADASTER_DATAREF_MAX];
        kb_adapter_dataref(k->run.done_uri, done_name, NULL, dataref, sizeof dataref);
        err =
            kb_kadaster_batch_add(&batch, i, names[i], buf, len, mtime, dataref, ingest_reject, k);
        free(buf);
        if (err) {
            KB_LOG_ERR(COMP, "delivery not handled; files kept for retry", "error=%s",
                       kb_err_str(err));
            rc = -1;
            goto out;
        }
    }
    if (kb_kadaster_events(&k->ctx, &batch, &evs, &n_evs, errstr, sizeof errstr)) {
        KB_LOG_ERR(COMP, "cannot build events; files kept", "error=\"%s\"", errstr);
        rc = -1;
        goto out;
    }
    kb_err_t serr =
        n_evs ? kb_ingress_send(k->ing, evs, n_evs, ACK_TIMEOUT_MS, errstr, sizeof errstr) : KB_OK;
    if (serr) {
        KB_LOG_ERR(COMP, "events not acknowledged; files kept for retry", "events=%zu error=\"%s\"",
                   n_evs, errstr);
        k->limit_stale |= serr == KB_ERR_RANGE;
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < n_evs; i++)
        KB_LOG_INFO(COMP, "event published", "event_id=%s type=%s key=%s sequence=%llu",
                    evs[i].attrs.id, evs[i].attrs.type, evs[i].key,
                    (unsigned long long)evs[i].attrs.sequence);
    for (size_t i = 0; i < use; i++) {
        if (k->gone[i] || skip[i])
            continue;
        if (kb_spool_done(&k->run.spool, names[i], &k->files[i])) {
            KB_LOG_ERR(COMP, "cannot move file to done", "index=%zu", i);
            rc = -1;
        }
    }
    KB_LOG_INFO(COMP, "delivery scan done", "files=%zu documents=%zu events=%zu", use, batch.n_docs,
                n_evs);
out:
    kb_kadaster_events_free(evs, n_evs);
    kb_kadaster_batch_fini(&batch);
    free(skip);
    free(k->gone);
    k->gone = NULL;
    free(k->files);
    k->files = NULL;
    k->names = NULL;
    kb_spool_names_free(names, n);
    return k->limit_stale ? relearn_limit(k) : rc;
}

/* --instance NAME: a name for the transactional.id, kept to what a
 * Kubernetes name or a host name holds (no separators of its own). */
static int ingest_opt(void *ctx, int opt, const char *arg)
{
    if (opt != OPT_INSTANCE)
        return 2;
    size_t n = strlen(arg);
    if (n == 0 || n > 64 ||
        strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n) {
        fprintf(stderr, "error: --instance takes 1 to 64 of A-Z a-z 0-9 . _ -\n");
        return 2;
    }
    ((struct kad *)ctx)->instance = arg;
    return 0;
}

static int cmd_ingest(int argc, char **argv)
{
    static atomic_int stop;
    static const struct option own[] = {{"instance", required_argument, NULL, OPT_INSTANCE},
                                        {NULL, 0, NULL, 0}};
    struct kad k;
    memset(&k, 0, sizeof k);
    const struct kb_adapter_cmd cmd = {.usage = usage, .own = own, .own_opt = ingest_opt,
                                       .ctx = &k, .comp = COMP, .stop = &stop,
                                       .stop_effect = KB_ADAPTER_INGEST_STOP_EFFECT};
    int rc = kb_adapter_cmd_start(&cmd, argc, argv, &k.run);
    if (rc >= 0)
        goto out;
    rc = 1;
    kb_adapter_source(&k.run.args, "ketenbus-kadaster", k.source, sizeof k.source);
    k.ctx = (struct kb_kadaster_ctx){k.run.schemas, k.run.key, k.run.key_len, k.source};
    char errstr[512];
    if (ingress_open(&k, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    if (kb_adapter_stop_signals(&cmd)) {
        kb_ingress_destroy(k.ing);
        goto out;
    }
    KB_LOG_INFO(COMP, "adapter started", "spool=%s instance=%s", k.run.spool.dir,
                k.instance ? k.instance : "(host name)");
    rc = 0;
    while (!atomic_load(&stop)) {
        int r, again = 0;
        while ((r = round_once(&k, again > 0)) == ROUND_AGAIN && ++again < ROUNDS_AGAIN_MAX)
            ; /* a limit went down: refuse what no longer fits, publish the rest */
        int failed = r != 0;
        if (k.run.args.once) {
            rc = failed ? 1 : 0;
            break;
        }
        struct timespec ts = {failed ? 2 : 0, failed ? 0 : 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    KB_LOG_INFO(COMP, "adapter stopped", "rc=%d", rc);
    kb_ingress_destroy(k.ing);
out:
    kb_adapter_cmd_end(&k.run);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "ingest"))
        return cmd_ingest(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "decode"))
        return cmd_decode(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("%s%s", usage, kb_adapter_common_help);
        return 0;
    }
    fprintf(stderr, "%s", usage);
    return 2;
}
