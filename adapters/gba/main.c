/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus-gba - the GBA/BRP adapter: reads LO3 messages from a spool
 * folder, a TCP listener (tcp.h frames) or HTTP (BRP Berichten API JSON),
 * publishes the life events they carry to kb.in.gba and acknowledges the
 * sender only after Kafka acknowledged all its events; unreadable input goes
 * raw to kb.quarantine.gba with the reason. Also: egress (events -> Ag01/Gv01
 * for legacy afnemers), decode/encode (LO3 <-> JSON) and send (a test sender).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "adapter_metrics.h"
#include "egress.h"
#include "fault.h"
#include "gba_egress.h"
#include "gba_events.h"
#include "ingress.h"
#include "ketenbus/clock.h"
#include "ketenbus/http.h"
#include "ketenbus/log.h"
#include "lo3.h"
#include "lo3_json.h"
#include "spool.h"
#include "tcp.h"

#define COMP "gba"
#define MAX_MESSAGE (8u << 20) /* no LO3 message comes near: Xa01 sets stay far below */
#define ACK_TIMEOUT_MS 30000
/* room for ce_dataref: the attribute's own (kb_event_attrs.dataref), so a
 * longer URI is left out by kb_adapter_dataref() rather than cut later */
#define DATAREF_MAX    512

enum { OPT_HTTP = KB_OPT_FIRST_OWN + 50, OPT_LISTEN = KB_OPT_FIRST_OWN, OPT_TOPIC, OPT_GROUP, OPT_CONNECT, OPT_IDLE_EXIT };

static const char usage[] =
    "usage: ketenbus-gba ingest --spool DIR --subject-key-file FILE [--listen HOST:PORT] "
    "[options]\n"
    "       ketenbus-gba egress --spool DIR --subject-key-file FILE [--topic T] [--group G]\n"
    "                           [--connect HOST:PORT] [--idle-exit MS] [options]\n"
    "       ketenbus-gba send --connect HOST:PORT FILE...   (a legacy sender, for tests)\n"
    "       ketenbus-gba decode [FILE|-]   LO3 bytes -> BRP Berichten API JSON\n"
    "       ketenbus-gba encode [FILE|-]   that JSON -> the exact LO3 bytes\n"
    "\n"
    "Reads LO3 messages (one per file, Teletex bytes) from DIR/in, publishes the\n"
    "life events below to kb.in.gba once Kafka acknowledged them, then moves the\n"
    "file to DIR/done.\n"
    "Unreadable files go to DIR/quarantine and kb.quarantine.gba with the reason.\n"
    "With --listen it also accepts LO3 messages over TCP: 4-byte big-endian length +\n"
    "message per frame, answered per frame with A (durable in Kafka), R (rejected,\n"
    "quarantined, do not resend) or N (not durable, resend), see adapters/common/tcp.h.\n"
    "\n"
    "Life events: persoon-geboren (Lg01), kind-toegevoegd, persoon-overleden,\n"
    "persoon-verhuisd, huwelijk-gesloten, partnerschap-aangegaan, huwelijk-ontbonden,\n"
    "partnerschap-ontbonden, naam-gewijzigd, bsn-gewijzigd, bijhouding-opgeschort,\n"
    "persoonslijst-gewijzigd (Gv01/Gv02), persoonslijst-afgevoerd (Ng01),\n"
    "anummer-gewijzigd (Wa11/Wa01).\n"
    "\n"
    "      --listen HOST:PORT          also serve the TCP transport\n"
    "      --http HOST:PORT            also accept POST /berichten with one message in the\n"
    "                                  BRP Berichten API JSON form (202 accepted once\n"
    "                                  durable, 422 rejected+quarantined, 503 retry)\n"
    "\n"
    "egress: consumes a subscriber topic (default kb.out.gba-lo3) and renders\n"
    "persoon-geboren as Ag01, kind-toegevoegd and persoon-overleden as Gv01, for a\n"
    "legacy afnemer: DIR/out/<event-id>.lo3, or pushed over TCP with --connect\n"
    "(committed only after the afnemer answered A). Other types go to DIR/quarantine.\n"
    "      --idle-exit MS              exit after MS milliseconds without events while\n"
    "                                  partitions are assigned (an error when none are\n"
    "                                  for MS + the session timeout + 15 s), 1 to\n"
    "                                  86400000 (tests, batch runs)\n";

struct gba {
    struct kb_adapter_run run; /* options, spool, schemas, subject key */
    kb_ingress_t *ing;
    struct kb_gba_ctx ctx;
    char source[160];   /* ce_source */
    const char *listen; /* --listen HOST:PORT, or NULL for the spool only */
    char host[256], hhost[256]; /* --listen's and --http's host and port */
    int port, hport;
    unsigned long acked;/* messages whose events Kafka acknowledged (fault injection) */
    int64_t next_scan_ms;/* TCP mode: next spool scan (monotonic ms) */
    const char *http;   /* --http HOST:PORT, or NULL */
    pthread_mutex_t lock;/* one message at a time: the HTTP thread and the
                          * spool/TCP thread share the ingress producer */
};

/* What became of one message. */
enum outcome {
    OUT_DONE,        /* its events (possibly none) are durable in Kafka */
    OUT_QUARANTINED, /* unreadable; durable in kb.quarantine.gba with the reason */
    OUT_RETRY,       /* nothing durable (Kafka down): the sender must retry */
};

/* Put unreadable bytes on the quarantine topic; OUT_RETRY when Kafka did
 * not acknowledge. */
static enum outcome quarantine(struct gba *g, const uint8_t *buf, size_t len, const char *rule,
                               const char *reason, long offset)
{
    char errstr[512];
    KB_LOG_WARN(COMP, "quarantined", "rule=%s reason=\"%s\"", rule, reason);
    if (kb_ingress_quarantine(g->ing, buf, len, rule, reason, offset, ACK_TIMEOUT_MS, errstr,
                              sizeof errstr)) {
        KB_LOG_ERR(COMP, "quarantine topic not acknowledged; message kept", "error=\"%s\"",
                   errstr);
        return OUT_RETRY;
    }
    return OUT_QUARANTINED;
}

/*
 * One message, from any transport: parse, check, derive events, produce
 * them and wait for the broker. @p reason (no personal data) says why on
 * quarantine/retry. The caller acknowledges its sender only on OUT_DONE or
 * OUT_QUARANTINED.
 */
static enum outcome process_locked(struct gba *g, const uint8_t *buf, size_t len,
                                   int64_t received_ms, const char *dataref, char *reason,
                                   size_t reason_size)
{
    enum outcome out = OUT_DONE;
    struct kb_lo3_message msg;
    memset(&msg, 0, sizeof msg);
    char errstr[512];
    if (kb_lo3_parse(buf, len, &msg, errstr, sizeof errstr)) {
        long off = -1;
        sscanf(errstr, "offset %ld", &off);
        snprintf(reason, reason_size, "lo3-syntax: %s", errstr);
        return quarantine(g, buf, len, "lo3-syntax", errstr, off);
    }
    struct kb_ingress_event *evs = NULL;
    size_t n = 0;
    kb_err_t err = kb_gba_events(&g->ctx, buf, len, &msg, received_ms, dataref, &evs, &n,
                                 errstr, sizeof errstr);
    if (err == KB_ERR_INVALID) {
        long off = -1;
        sscanf(errstr, "offset %ld", &off);
        snprintf(reason, reason_size, "lo3-semantics: %s", errstr);
        out = quarantine(g, buf, len, "lo3-semantics", errstr, off);
        goto out;
    }
    if (err) {
        KB_LOG_ERR(COMP, "cannot build events; message kept", "type=%s error=\"%s\"", msg.type,
                   errstr);
        snprintf(reason, reason_size, "internal: %s", kb_err_str(err));
        out = OUT_RETRY;
        goto out;
    }
    if (n == 0) {
        /* Valid LO3 without a life event: accounted for by this log line
         * and done/ (every transport archives there). The digest only for
         * this line: bench-gba times the rest of this function's CPU work. */
        char sha[65];
        kb_sha256_hex(buf, len, sha);
        KB_LOG_INFO(COMP, "no life event in message", "type=%s sha256=%s", msg.type, sha);
    } else if ((err =
                    kb_ingress_send_sized(g->ing, evs, n, ACK_TIMEOUT_MS, errstr, sizeof errstr))) {
        kb_gba_events_free(evs, n);
        if (err == KB_ERR_RANGE) {
            /* An event Kafka can never take (the topic's max.message.bytes):
             * retrying would hold the spool or the sender for good. */
            snprintf(reason, reason_size, "size: %s", errstr);
            out = quarantine(g, buf, len, "size", errstr, -1);
            goto out;
        }
        KB_LOG_ERR(COMP, "events not acknowledged; message kept for retry",
                   "type=%s error=\"%s\"", msg.type, errstr);
        snprintf(reason, reason_size, "kafka: events not acknowledged");
        out = OUT_RETRY;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        KB_LOG_INFO(COMP, "event published", "event_id=%s type=%s subject=%s sequence=%llu",
                    evs[i].attrs.id, evs[i].attrs.type, evs[i].attrs.subject,
                    (unsigned long long)evs[i].attrs.sequence);
    kb_gba_events_free(evs, n);
    g->acked++;
    /* Fault injection for the tests: die after Kafka acknowledged but before
     * the sender is acknowledged, the window that deterministic ids cover.
     * "crash-after-ack" on the first message with events, "crash-after-ack:N"
     * on the N-th acknowledged message. */
    if (n > 0 && kb_fault_hit("crash-after-ack", g->acked)) {
        KB_LOG_WARN(COMP, "fault injection: exiting before acknowledging the sender", "type=%s",
                    msg.type);
        _exit(137);
    }
out:
    kb_lo3_message_fini(&msg);
    return out;
}

static enum outcome process_message(struct gba *g, const uint8_t *buf, size_t len,
                                    int64_t received_ms, const char *dataref, char *reason,
                                    size_t reason_size)
{
    pthread_mutex_lock(&g->lock);
    enum outcome out = process_locked(g, buf, len, received_ms, dataref, reason, reason_size);
    pthread_mutex_unlock(&g->lock);
    return out;
}

/* What became of one spool file. */
enum file_result {
    FILE_LEFT = 0,     /* left in/: done/ or quarantine/ */
    FILE_SKIPPED = 1,  /* unreadable for now (spool.h): later files go on */
    FILE_RETRY = -1,   /* Kafka did not acknowledge: the scan stops, retried later */
};

/* Handle one spool file. */
static enum file_result handle_file(struct gba *g, const char *name)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t mtime = 0;
    struct kb_spool_file file;
    kb_err_t err = kb_spool_read(&g->run.spool, name, MAX_MESSAGE, &buf, &len, &mtime, &file);
    if (err == KB_ERR_RANGE) {
        /* Too big to hold: its size and hash (no bytes) on the quarantine
         * topic, as every refused input, then the file to quarantine/. */
        char why[320];
        kb_spool_oversize_reason(&g->run.spool, name, "size", MAX_MESSAGE, why, sizeof why);
        pthread_mutex_lock(&g->lock);
        enum outcome out = quarantine(g, (const uint8_t *)"", 0, "size", why, -1);
        pthread_mutex_unlock(&g->lock);
        if (out != OUT_QUARANTINED)
            return FILE_RETRY;
        return kb_spool_quarantine(&g->run.spool, name, &file, why) ? FILE_RETRY : FILE_LEFT;
    }
    if (err)
        return FILE_SKIPPED;
    char dataref[DATAREF_MAX], reason[600], done_name[300];
    if (kb_spool_done_name(&g->run.spool, name, done_name, sizeof done_name)) {
        free(buf);
        return FILE_RETRY;
    }
    kb_adapter_dataref(g->run.done_uri, done_name, NULL, dataref, sizeof dataref);
    enum file_result rc = FILE_LEFT;
    switch (process_message(g, buf, len, mtime, dataref, reason, sizeof reason)) {
    case OUT_DONE:
        if (kb_spool_done(&g->run.spool, name, &file)) {
            KB_LOG_ERR(COMP, "cannot move file to done", "file_bytes=%zu", len);
            rc = FILE_RETRY;
        }
        break;
    case OUT_QUARANTINED:
        if (kb_spool_quarantine(&g->run.spool, name, &file, reason)) {
            KB_LOG_ERR(COMP, "cannot move file to quarantine", "file_bytes=%zu", len);
            rc = FILE_RETRY;
        }
        break;
    case OUT_RETRY:
        rc = FILE_RETRY;
        break;
    }
    free(buf);
    return rc;
}

/* What becomes of a staged frame whose staging could not end as it should. */
enum staged_left {
    STAGED_DROP, /* a sender waits and resends on N: the resend stages it anew */
    STAGED_KEEP, /* nobody resends (recovery at the start): the next start tries again */
};

/* The name a message received by @p transport ("tcp", "http") is staged
 * and archived under: done/<transport>-<sha256>.lo3. The digest makes a
 * resend land on the same file; the transport tells the operator where it
 * came from, and recover_frame() checks both parts. */
static void staged_name(const char *transport, const char *sha, char *out, size_t size)
{
    snprintf(out, size, "%s-%s.lo3", transport, sha);
}

/*
 * A staged frame's way from done/.<name>.staged, <name> being
 * "tcp-<sha256>.lo3" of its bytes, shared by a live frame (on_frame) and a
 * frame a crash left staged (recover_frame): produce its events with
 * ce_dataref naming done/<name>, then end the staging by the outcome.
 * OUT_DONE when done/<name> holds the frame; OUT_QUARANTINED when
 * kb.quarantine.gba holds it (and quarantine/, unless that move failed and
 * @p left is STAGED_DROP); else OUT_RETRY with @p reason set, the staged
 * copy dropped or kept by @p left. @p peer is for the log only.
 */
static enum outcome staged_frame(struct gba *g, const uint8_t *frame, size_t len, const char *name,
                                 const char *sha, int64_t received_ms, const char *peer,
                                 enum staged_left left, char *reason, size_t reason_size)
{
    char dataref[DATAREF_MAX];
    kb_adapter_dataref(g->run.done_uri, name, NULL, dataref, sizeof dataref);
    enum outcome out = process_message(g, frame, len, received_ms, dataref, reason, reason_size);
    switch (out) {
    case OUT_DONE:
        /* Kafka holds events naming done/<name>: without that file the
         * sender's resend (STAGED_DROP) or the next start (STAGED_KEEP)
         * must still move it there. */
        if (!kb_spool_stage_done(&g->run.spool, name))
            return OUT_DONE;
        KB_LOG_ERR(COMP, "cannot move frame to done", "peer=%s sha256=%s errno=%d", peer, sha,
                   errno);
        snprintf(reason, reason_size, "archive: cannot move to done/");
        out = OUT_RETRY;
        break;
    case OUT_QUARANTINED:
        /* not a message we accepted: kb.quarantine.gba holds it durably, the
         * local copy is for the operator */
        if (!kb_spool_stage_quarantine(&g->run.spool, name, reason))
            return OUT_QUARANTINED;
        KB_LOG_ERR(COMP, "cannot move frame to quarantine", "peer=%s sha256=%s errno=%d", peer, sha,
                   errno);
        if (left == STAGED_KEEP) { /* still staged: the next start quarantines it again */
            snprintf(reason, reason_size, "archive: cannot move to quarantine/");
            out = OUT_RETRY;
        }
        break;
    case OUT_RETRY:
        break;
    }
    if (left == STAGED_DROP && kb_spool_stage_drop(&g->run.spool, name))
        KB_LOG_ERR(COMP, "cannot delete a staged frame", "sha256=%s errno=%d", sha, errno);
    return out;
}

/* TCP frame handler: one LO3 message per frame. The frame is staged for
 * done/ (named by its SHA-256, so a resent frame lands on the same file)
 * before its events are produced, and moved into done/ only once Kafka
 * acknowledged them: done/ holds what the events' ce_dataref names, and
 * nothing Kafka never held. */
static enum kb_tcp_verdict on_frame(void *opaque, const uint8_t *frame, size_t len,
                                    const char *peer, char *reason, size_t reason_size)
{
    struct gba *g = opaque;
    char sha[65], name[128];
    kb_sha256_hex(frame, len, sha);
    staged_name("tcp", sha, name, sizeof name);
    if (kb_spool_stage(&g->run.spool, name, frame, len)) {
        snprintf(reason, reason_size, "archive: cannot write done/ file");
        return KB_TCP_NACK;
    }
    switch (staged_frame(g, frame, len, name, sha, kb_wall_ms(), peer, STAGED_DROP, reason,
                         reason_size)) {
    case OUT_DONE:
        KB_LOG_INFO(COMP, "frame acknowledged", "peer=%s sha256=%s", peer, sha);
        return KB_TCP_ACK;
    case OUT_QUARANTINED:
        return KB_TCP_REJECT;
    default:
        return KB_TCP_NACK;
    }
}

/* "HOST:PORT" (HOST may be empty for 127.0.0.1) into its parts. */
static int split_hostport(const char *arg, char *host, size_t host_size, int *port)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || !colon[1])
        return -1;
    size_t hl = (size_t)(colon - arg);
    if (hl >= host_size)
        return -1;
    memcpy(host, arg, hl);
    host[hl] = '\0';
    if (!hl)
        snprintf(host, host_size, "127.0.0.1");
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* Read all of @p path ("-" or NULL = stdin), at most @p max bytes. */
static int read_input(const char *path, size_t max, uint8_t **buf, size_t *len)
{
    FILE *f = (!path || !strcmp(path, "-")) ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "error: cannot open input file\n");
        return -1;
    }
    size_t cap = 65536, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (!b) {
            fprintf(stderr, "error: out of memory\n");
            break;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n > max) {
            fprintf(stderr, "error: input larger than %zu bytes\n", max);
            break;
        }
        if (r == 0) {
            if (ferror(f)) {
                fprintf(stderr, "error: read failed\n");
                break;
            }
            if (f != stdin)
                fclose(f);
            *buf = b;
            *len = n;
            return 0;
        }
        if (n == cap) {
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb)
                free(b);
            b = nb;
            cap *= 2;
        }
    }
    free(b);
    if (f != stdin)
        fclose(f);
    return -1;
}

/* One pass over the spool's in/ folder. Returns 1 when a file stayed in
 * in/ (Kafka unreachable, or unreadable for now), 0 otherwise. Kafka
 * unreachable stops the pass (every later file would fail alike); an
 * unreadable file does not. With @p budget_ms > 0 the pass also ends after
 * about that long, *@p more set when files were left for the next one: the
 * TCP server's one thread reads no frame meanwhile. */
static int scan_spool(struct gba *g, atomic_int *stop, int64_t budget_ms, int *more)
{
    char **names = NULL;
    size_t n = 0;
    int failed = 0;
    int64_t end = kb_mono_ms() + budget_ms;
    *more = 0;
    if (kb_spool_list(&g->run.spool, &names, &n) == KB_OK) {
        for (size_t i = 0; i < n && !atomic_load(stop); i++) {
            if (budget_ms > 0 && i > 0 && kb_mono_ms() >= end) {
                *more = 1;
                break;
            }
            enum file_result r = handle_file(g, names[i]);
            failed |= r != FILE_LEFT;
            if (r == FILE_RETRY)
                break;
        }
        kb_spool_names_free(names, n);
    }
    return failed;
}

static atomic_int stop_flag;

/* The recovery of staged frames at the start (recover_staged). */
struct recovery {
    struct gba *g;
    unsigned found;       /* staged frames found */
    unsigned done;        /* now in done/ (their events durable in Kafka) */
    unsigned quarantined; /* now in quarantine/: rejected, or damaged */
    unsigned left;        /* still staged: for the sender's resend or the next start */
    int stalled;          /* Kafka did not acknowledge a frame's events: later frames
                           * are not produced, they would wait alike */
};

/* Quarantine a staged file whose bytes are not the frame its name says
 * (damaged on disk, or not staged by this adapter): never deleted, and not
 * published either, since they are not what a sender sent. */
static void quarantine_damaged(struct recovery *r, const char *name, const char *sha,
                               const char *label, const char *reason)
{
    KB_LOG_WARN(COMP, "staged frame damaged; quarantined", "sha256=%s reason=\"%s\"", sha, reason);
    if (kb_spool_stage_quarantine(&r->g->run.spool, name, reason)) {
        KB_LOG_ERR(COMP, "cannot move a damaged staged frame to quarantine", "sha256=%s errno=%d",
                   sha, errno);
        kb_adapter_count_message(label, "retry");
        r->left++;
        return;
    }
    kb_adapter_count_message(label, "quarantined");
    r->quarantined++;
}

/* kb_spool_staged_each callback: one frame a crash left staged, handled as
 * if it had just arrived. Nonzero stops the walk (a stop signal). */
static int recover_frame(void *opaque, const char *name)
{
    struct recovery *r = opaque;
    struct gba *g = r->g;
    uint8_t *frame = NULL;
    size_t len = 0;
    int64_t staged_ms = 0;
    char sha[65] = "-", want[128], reason[600], done_path[2600];
    /* staged by on_frame() or on_http_bericht(); anything else is damaged */
    int http = !strncmp(name, "http-", 5);
    const char *transport = http ? "http" : "tcp", *label = http ? "http-staged" : "tcp-staged";
    kb_err_t err = kb_spool_stage_read(&g->run.spool, name, MAX_MESSAGE, &frame, &len, &staged_ms);
    int read_errno = errno;
    if (err == KB_ERR_NOTFOUND) /* gone since the listing: nothing left to finish */
        return atomic_load(&stop_flag);
    r->found++;
    kb_adapter_count_message(label, "received");
    if (err == KB_ERR_RANGE) {
        /* neither on_frame nor on_http_bericht stages more than MAX_MESSAGE */
        quarantine_damaged(r, name, sha, label,
                           "damaged: staged file larger than 8 MiB; not processed");
        return atomic_load(&stop_flag);
    }
    if (err) {
        KB_LOG_WARN(COMP, "cannot read a staged frame; left for the next start",
                    "errno=%d error=\"%s\"", read_errno, kb_err_str(err));
        kb_adapter_count_message(label, "retry");
        r->left++;
        return atomic_load(&stop_flag);
    }
    kb_sha256_hex(frame, len, sha);
    staged_name(transport, sha, want, sizeof want);
    kb_spool_path(&g->run.spool, "done", name, done_path, sizeof done_path);
    struct stat st;
    int in_done = done_path[0] && lstat(done_path, &st) == 0; /* something under its name */
    if (strcmp(name, want)) {
        quarantine_damaged(r, name, sha, label,
                           "damaged: the SHA-256 of the staged bytes is not the one its name "
                           "gives; not processed");
    } else if (in_done && !S_ISREG(st.st_mode)) {
        /* Not an archived frame: ending the staging would drop the only
         * copy of these bytes (kb_spool_stage_done takes what is there for
         * the same message). Left for the operator. */
        KB_LOG_ERR(COMP, "done/ holds something else under a staged frame's name; left staged",
                   "sha256=%s", sha);
        kb_adapter_count_message(label, "retry");
        r->left++;
    } else if (in_done) {
        /* done/ holds only frames whose events Kafka holds: this is a
         * resend of an archived frame, its events need no second copy */
        if (kb_spool_stage_done(&g->run.spool, name)) {
            KB_LOG_ERR(COMP, "cannot drop a staged copy of an archived frame", "sha256=%s errno=%d",
                       sha, errno);
            kb_adapter_count_message(label, "retry");
            r->left++;
        } else {
            KB_LOG_INFO(COMP, "staged frame recovered", "sha256=%s outcome=archived-before", sha);
            kb_adapter_count_message(label, "accepted");
            r->done++;
        }
    } else if (r->stalled) {
        KB_LOG_INFO(COMP, "staged frame left for a resend or the next start", "sha256=%s", sha);
        kb_adapter_count_message(label, "retry");
        r->left++;
    } else {
        /* received_ms: when it was staged, about when it arrived */
        enum outcome out = staged_frame(g, frame, len, name, sha, staged_ms, "-", STAGED_KEEP,
                                        reason, sizeof reason);
        if (out == OUT_RETRY) {
            KB_LOG_WARN(COMP, "staged frame not recovered; left for a resend or the next start",
                        "sha256=%s reason=\"%s\"", sha, reason);
            /* Only Kafka not acknowledging holds up the frames after it (each
             * would wait out the same timeout); a failure of this frame alone
             * (an archive move, an internal error) must not. */
            if (!strncmp(reason, "kafka:", 6))
                r->stalled = 1;
            r->left++;
        } else {
            KB_LOG_INFO(COMP, "staged frame recovered", "sha256=%s outcome=%s", sha,
                        out == OUT_DONE ? "done" : "quarantined");
            if (out == OUT_DONE)
                r->done++;
            else
                r->quarantined++;
        }
        kb_adapter_count_message(label, out == OUT_DONE          ? "accepted"
                                        : out == OUT_QUARANTINED ? "quarantined"
                                                                 : "retry");
    }
    free(frame);
    return atomic_load(&stop_flag);
}

/*
 * At the start, before any transport serves: finish every frame a crash
 * left staged in done/ (see spool.h), so that the events Kafka may hold for it name a file
 * in done/ even if its sender never resends. Producing again is safe: event
 * ids derive from the message, so the router drops a second copy. With
 * Kafka unreachable the frames stay staged for a resend or the next start.
 */
static void recover_staged(struct gba *g)
{
    struct recovery r = {.g = g};
    kb_err_t err = kb_spool_staged_each(&g->run.spool, recover_frame, &r);
    if (err)
        KB_LOG_ERR(COMP, "cannot list staged frames; left for the next start",
                   "errno=%d error=\"%s\"", errno, kb_err_str(err));
    if (r.found) /* quiet on the usual start, with nothing staged */
        KB_LOG_INFO(COMP, "staged frames recovered", "found=%u done=%u quarantined=%u left=%u",
                    r.found, r.done, r.quarantined, r.left);
}

/* TCP idle hook: the spool is served between frames, at most every 200 ms and
 * about 100 ms at a time (a backlog continues at the next idle moment). */
static void on_idle(void *opaque)
{
    struct gba *g = opaque;
    int64_t now = kb_mono_ms();
    if (now < g->next_scan_ms)
        return;
    int more;
    int failed = scan_spool(g, &stop_flag, 100, &more);
    g->next_scan_ms = failed ? now + 2000 : more ? 0 : now + 200;
}

/* POST /berichten: one message in the BRP Berichten API JSON form. It is
 * turned into its exact LO3 bytes (so ids and provenance are those of the
 * LO3 message) and handled like a file or frame. */
static void on_http_bericht(kb_http_req_t *req, void *opaque)
{
    struct gba *g = opaque;
    size_t len = 0;
    const char *body = kb_http_req_body(req, &len);
    uint8_t *lo3 = NULL;
    size_t lo3_len = 0;
    char errstr[512], reason[600];
    kb_adapter_count_message("http", "received");
    const char *rule = "json";
    int bad = kb_lo3_from_json(body, len, &lo3, &lo3_len, errstr, sizeof errstr) != KB_OK;
    if (!bad && lo3_len > MAX_MESSAGE) {
        /* the bound of TCP frames and of what recover_frame() reads back */
        snprintf(errstr, sizeof errstr, "the message is %zu LO3 bytes, more than %u", lo3_len,
                 MAX_MESSAGE);
        free(lo3);
        lo3 = NULL;
        bad = 1;
        rule = "size";
    }
    if (bad) {
        /* not a message: the raw JSON goes to quarantine with the reason */
        pthread_mutex_lock(&g->lock);
        enum outcome q = quarantine(g, (const uint8_t *)body, len, rule, errstr, -1);
        pthread_mutex_unlock(&g->lock);
        kb_adapter_count_message("http", q == OUT_RETRY ? "retry" : "quarantined");
        if (q == OUT_RETRY)
            kb_http_reply_error(req, 503, 50301, "quarantine not durable; retry");
        else
            kb_http_reply_error(req, 422, 42201, "%s", errstr);
        return;
    }
    /* Staged and archived as a TCP frame is (on_frame): done/ keeps every
     * message accepted, with or without a life event, and the events'
     * ce_dataref names its file. */
    char sha[65], name[128];
    kb_sha256_hex(lo3, lo3_len, sha);
    staged_name("http", sha, name, sizeof name);
    enum outcome out = OUT_RETRY;
    if (kb_spool_stage(&g->run.spool, name, lo3, lo3_len)) {
        KB_LOG_ERR(COMP, "cannot stage a message for done/", "sha256=%s errno=%d", sha, errno);
        snprintf(reason, sizeof reason, "archive: cannot write done/ file");
    } else {
        out = staged_frame(g, lo3, lo3_len, name, sha, kb_wall_ms(), "http", STAGED_DROP, reason,
                           sizeof reason);
    }
    free(lo3);
    kb_adapter_count_message("http", out == OUT_DONE          ? "accepted"
                                     : out == OUT_QUARANTINED ? "quarantined"
                                                              : "retry");
    if (out == OUT_DONE) {
        json_t *ok = json_pack("{s:s, s:s}", "status", "accepted", "bronBerichtId", "");
        char id[80];
        snprintf(id, sizeof id, "sha256:%s", sha);
        json_object_set_new(ok, "bronBerichtId", json_string(id));
        kb_http_reply_json(req, 202, NULL, ok);
    } else if (out == OUT_QUARANTINED) {
        kb_http_reply_error(req, 422, 42202, "%s", reason);
    } else {
        kb_http_reply_error(req, 503, 50302, "%s", reason);
    }
}

static void on_http_health(kb_http_req_t *req, void *opaque)
{
    (void)opaque;
    kb_http_reply(req, 200, "text/plain", "ok\n", 3);
}

static int ingest_opt(void *ctx, int opt, const char *arg)
{
    struct gba *g = ctx;
    if (opt == OPT_LISTEN) {
        g->listen = arg;
        if (!split_hostport(arg, g->host, sizeof g->host, &g->port))
            return 0;
        fprintf(stderr, "error: --listen must be HOST:PORT\n");
    } else if (opt == OPT_HTTP) {
        g->http = arg;
        if (!split_hostport(arg, g->hhost, sizeof g->hhost, &g->hport))
            return 0;
        fprintf(stderr, "error: --http must be HOST:PORT\n");
    }
    return 2; /* a bad HOST:PORT (the only options passed here are these two) */
}

static int cmd_ingest(int argc, char **argv)
{
    static const struct option own[] = {{"listen", required_argument, NULL, OPT_LISTEN},
                                        {"http", required_argument, NULL, OPT_HTTP},
                                        {NULL, 0, NULL, 0}};
    struct gba g;
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.lock, NULL);
    kb_http_t *http = NULL;
    const struct kb_adapter_cmd cmd = {.usage = usage, .own = own, .own_opt = ingest_opt,
                                       .ctx = &g, .comp = COMP, .stop = &stop_flag,
                                       .stop_effect = KB_ADAPTER_INGEST_STOP_EFFECT};
    int rc = kb_adapter_cmd_start(&cmd, argc, argv, &g.run);
    if (rc >= 0)
        goto out_args;
    rc = 1;
    char errstr[512];
    kb_adapter_source(&g.run.args, "ketenbus-gba", g.source, sizeof g.source);
    g.ctx = (struct kb_gba_ctx){g.run.schemas, g.run.key, g.run.key_len, g.source,
                                kb_gba_cache_new()};
    if (!g.ctx.cache) {
        fprintf(stderr, "error: out of memory (or OpenSSL lacks SHA-1/SHA-256)\n");
        goto out_schemas;
    }
    struct kb_ingress_opts iopts = {
        .kafka = &g.run.args.kafka, .source = "gba", .state_dir = g.run.spool.dir, .partitions = 3};
    g.ing = kb_ingress_new(&iopts, errstr, sizeof errstr);
    if (!g.ing) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_schemas;
    }
    if (kb_adapter_stop_signals(&cmd))
        goto out_ing;
    kb_tcp_server_t *srv = NULL;
    if (g.listen) {
        struct kb_tcp_server_opts topts = {.bind_host = g.host, .port = g.port,
                                           .max_frame = MAX_MESSAGE, .on_frame = on_frame,
                                           .opaque = &g, .on_idle = on_idle};
        srv = kb_tcp_server_new(&topts, errstr, sizeof errstr);
        if (!srv) {
            fprintf(stderr, "error: %s\n", errstr);
            goto out_ing;
        }
        /* the port on stdout too, so a script can start with port 0; bound
         * before the recovery below so that a bad --listen fails before any
         * produce */
        printf("listening %s:%d\n", g.host, kb_tcp_server_port(srv));
        fflush(stdout);
    }
    /* Whatever the transports now: a start without --listen must not leave
     * frames a crash left staged (and the events naming them) dangling. */
    recover_staged(&g);
    if (g.http) {
        struct kb_http_opts hopts = {.addr = g.hhost, .port = (uint16_t)g.hport,
                                     .max_body = 16u << 20};
        http = kb_http_new(&hopts, errstr, sizeof errstr);
        if (!http || kb_http_route(http, "POST", "/berichten", on_http_bericht, &g) ||
            kb_http_route(http, "GET", "/healthz", on_http_health, &g) ||
            kb_http_start(http, errstr, sizeof errstr)) {
            fprintf(stderr, "error: http: %s\n", errstr);
            kb_http_destroy(http);
            kb_tcp_server_destroy(srv);
            goto out_ing;
        }
        printf("http %s:%u\n", g.hhost, (unsigned)kb_http_port(http));
        fflush(stdout);
    }
    KB_LOG_INFO(COMP, "adapter started", "spool=%s tcp_port=%d", g.run.spool.dir,
                srv ? kb_tcp_server_port(srv) : 0);
    rc = 0;
    if (srv) {
        if (kb_tcp_server_run(srv, &stop_flag, errstr, sizeof errstr)) {
            KB_LOG_ERR(COMP, "tcp listener failed", "error=\"%s\"", errstr);
            rc = 1;
        }
        kb_tcp_server_destroy(srv);
    } else {
        while (!atomic_load(&stop_flag)) {
            int more;
            int failed = scan_spool(&g, &stop_flag, 0, &more);
            if (g.run.args.once) {
                rc = failed ? 1 : 0;
                break;
            }
            /* Back off longer after a failure (Kafka down): the file stays. */
            struct timespec ts = {failed ? 2 : 0, failed ? 0 : 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    kb_http_destroy(http); /* no handler runs after this */
    KB_LOG_INFO(COMP, "adapter stopped", "rc=%d", rc);
out_ing:
    kb_ingress_destroy(g.ing);
out_schemas:
    kb_gba_cache_destroy(g.ctx.cache);
out_args:
    kb_adapter_cmd_end(&g.run);
    pthread_mutex_destroy(&g.lock);
    return rc;
}

/* send: a legacy sender for tests and trials. Prints one line per file:
 * "ack FILE", "reject FILE REASON", "nack FILE REASON"; on a lost
 * connection "lost FILE" and exit 3 (that file's fate is unknown). */
static int cmd_send(int argc, char **argv)
{
    const char *connect = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--connect") && i + 1 < argc)
            connect = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: ketenbus-gba send --connect HOST:PORT FILE...\n");
            return 0;
        } else
            break;
    }
    char host[256];
    int port = 0;
    if (!connect || split_hostport(connect, host, sizeof host, &port) || i >= argc) {
        fprintf(stderr, "usage: ketenbus-gba send --connect HOST:PORT FILE...\n");
        return 2;
    }
    char errstr[512], reason[600];
    kb_tcp_client_t *c = kb_tcp_client_new(host, port, 5000, errstr, sizeof errstr);
    if (!c) {
        fprintf(stderr, "error: %s\n", errstr);
        return 3;
    }
    int rc = 0;
    for (; i < argc; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (read_input(argv[i], MAX_MESSAGE, &buf, &len)) {
            rc = 1;
            continue;
        }
        enum kb_tcp_verdict v;
        kb_err_t err = kb_tcp_client_send(c, buf, len, ACK_TIMEOUT_MS + 5000, &v, reason,
                                          sizeof reason, errstr, sizeof errstr);
        free(buf);
        if (err) {
            printf("lost %s\n", argv[i]);
            fflush(stdout);
            rc = 3;
            break;
        }
        printf("%s %s%s%s\n", v == KB_TCP_ACK ? "ack" : v == KB_TCP_REJECT ? "reject" : "nack",
               argv[i], v == KB_TCP_ACK ? "" : " ", v == KB_TCP_ACK ? "" : reason);
        fflush(stdout);
        if (v == KB_TCP_NACK && rc == 0)
            rc = 4;
    }
    kb_tcp_client_destroy(c);
    return rc;
}

/* Egress state: where rendered messages go. */
struct egress {
    struct kb_adapter_run run; /* options, spool (out/ and quarantine/), schemas */
    const char *topic, *group;
    int idle_exit;
    const char *connect;    /* HOST:PORT of the afnemer's listener, or NULL */
    kb_tcp_client_t *tcp;   /* current connection (reconnected on failure) */
    size_t written;         /* messages delivered */
};

static kb_err_t render_lo3(void *opaque, const struct kb_event_attrs *attrs,
                           const struct kb_schema *schema, const uint8_t *payload, size_t len,
                           char *errstr, size_t errstr_size, char *detail, size_t detail_size)
{
    struct egress *e = opaque;
    uint8_t *lo3 = NULL;
    size_t n = 0;
    char name[KB_EGRESS_NAME_MAX + 8];
    /* Checked in both modes, so an event's fate does not depend on where
     * its LO3 goes. */
    kb_err_t err = kb_gba_out_name(attrs, name, sizeof name, errstr, errstr_size);
    if (!err)
        err = kb_gba_render_lo3(attrs, schema, payload, len, &lo3, &n, errstr, errstr_size);
    if (err)
        return err;
    if (!e->connect) {
        err = kb_spool_write_out(&e->run.spool, name, lo3, n);
        if (err)
            kb_err_set(err, errstr, errstr_size, "cannot write out/ file");
    } else {
        char host[256], reason[512];
        int port = 0;
        split_hostport(e->connect, host, sizeof host, &port);
        if (e->tcp && !kb_tcp_client_alive(e->tcp)) {
            /* closed by the afnemer while idle: a new one, without an error */
            kb_tcp_client_destroy(e->tcp);
            e->tcp = NULL;
        }
        if (!e->tcp)
            e->tcp = kb_tcp_client_new(host, port, 5000, errstr, errstr_size);
        enum kb_tcp_verdict v = KB_TCP_NACK;
        err = e->tcp ? kb_tcp_client_send(e->tcp, lo3, n, ACK_TIMEOUT_MS, &v, reason,
                                          sizeof reason, errstr, errstr_size)
                     : KB_ERR_IO;
        if (err) {
            kb_tcp_client_destroy(e->tcp);
            e->tcp = NULL;
        } else if (v == KB_TCP_REJECT) {
            /* The afnemer's words may quote the message (names, BSNs): the
             * .reason file keeps a bounded printable copy, the log never. */
            err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "afnemer rejected the message");
            snprintf(detail, detail_size, "%s", reason);
        } else if (v == KB_TCP_NACK) {
            err = kb_err_set(KB_ERR_IO, errstr, errstr_size, "afnemer not ready (nack)");
        }
    }
    free(lo3);
    if (!err) {
        e->written++;
        KB_LOG_INFO(COMP, "lo3 rendered", "event_id=%s type=%s bytes=%zu", attrs->id,
                    attrs->type, n);
    }
    return err;
}

static int egress_opt(void *ctx, int opt, const char *arg)
{
    struct egress *e = ctx;
    char host[256];
    int port;
    switch (opt) {
    case OPT_TOPIC: e->topic = arg; return 0;
    case OPT_GROUP: e->group = arg; return 0;
    case OPT_IDLE_EXIT: return kb_adapter_idle_exit_opt(arg, &e->idle_exit);
    case OPT_CONNECT:
        if (split_hostport(arg, host, sizeof host, &port)) {
            fprintf(stderr, "error: --connect must be HOST:PORT\n");
            return 2;
        }
        e->connect = arg;
        return 0;
    }
    return 2;
}

static int cmd_egress(int argc, char **argv)
{
    static const struct option own[] = {{"topic", required_argument, NULL, OPT_TOPIC},
                                        {"group", required_argument, NULL, OPT_GROUP},
                                        {"connect", required_argument, NULL, OPT_CONNECT},
                                        {"idle-exit", required_argument, NULL, OPT_IDLE_EXIT},
                                        {NULL, 0, NULL, 0}};
    struct egress e;
    memset(&e, 0, sizeof e);
    char default_topic[160], default_group[160];
    kb_topic_name(default_topic, sizeof default_topic, "out.gba-lo3");
    snprintf(default_group, sizeof default_group, "%s-gba-egress", kb_topic_prefix());
    e.topic = default_topic;
    e.group = default_group;
    const struct kb_adapter_cmd cmd = {.usage = usage, .own = own, .own_opt = egress_opt,
                                       .ctx = &e, .comp = COMP, .stop = &stop_flag,
                                       .stop_effect = KB_ADAPTER_EGRESS_STOP_EFFECT};
    int rc = kb_adapter_cmd_start(&cmd, argc, argv, &e.run);
    if (rc >= 0)
        goto out;
    rc = 1;
    if (kb_adapter_stop_signals(&cmd))
        goto out;
    char errstr[512];
    struct kb_egress_opts eo = {&e.run.args.kafka, e.run.schemas, e.topic, e.group,
                                &e.run.spool, render_lo3, &e, e.idle_exit};
    rc = kb_egress_run(&eo, &stop_flag, errstr, sizeof errstr) ? 1 : 0;
    if (rc)
        fprintf(stderr, "error: %s\n", errstr);
    else
        KB_LOG_INFO(COMP, "egress stopped", "lo3_written=%zu", e.written);
out:
    kb_tcp_client_destroy(e.tcp);
    kb_adapter_cmd_end(&e.run);
    return rc;
}

/* decode / encode: exit 0 on success, 1 on unreadable input (reason on
 * stderr, naming offsets or JSON paths only), 2 on usage errors. */
static int cmd_codec(int argc, char **argv, int encode)
{
    if (argc > 2 || (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))) {
        printf("usage: ketenbus-gba %s [FILE|-]\n%s", encode ? "encode" : "decode",
               encode ? "Reads BRP Berichten API JSON, writes the LO3 (Teletex) bytes.\n"
                      : "Reads one LO3 message (Teletex bytes), writes it as BRP Berichten "
                        "API JSON.\n");
        return argc > 2 ? 2 : 0;
    }
    uint8_t *in = NULL;
    size_t len = 0;
    if (read_input(argc == 2 ? argv[1] : "-", encode ? (64u << 20) : MAX_MESSAGE, &in, &len))
        return 1;
    char errstr[512];
    int rc = 0;
    if (encode) {
        uint8_t *out = NULL;
        size_t olen = 0;
        if (kb_lo3_from_json((const char *)in, len, &out, &olen, errstr, sizeof errstr)) {
            fprintf(stderr, "error: %s\n", errstr);
            rc = 1;
        } else if (olen && fwrite(out, 1, olen, stdout) != olen) {
            rc = 1;
        }
        free(out);
    } else {
        char *json = NULL;
        if (kb_lo3_to_json(in, len, KB_LO3_JSON_PRETTY, &json, errstr, sizeof errstr)) {
            fprintf(stderr, "error: %s\n", errstr);
            rc = 1;
        } else {
            printf("%s\n", json);
        }
        free(json);
    }
    free(in);
    if (fflush(stdout))
        rc = 1;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "decode"))
        return cmd_codec(argc - 1, argv + 1, 0);
    if (argc >= 2 && !strcmp(argv[1], "encode"))
        return cmd_codec(argc - 1, argv + 1, 1);
    if (argc >= 2 && !strcmp(argv[1], "egress"))
        return cmd_egress(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "send"))
        return cmd_send(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "ingest"))
        return cmd_ingest(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("%s%s", usage, kb_adapter_common_help);
        return 0;
    }
    fprintf(stderr, "%s", usage);
    return 2;
}
