/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_egress_quarantine.c - the egress loop against librdkafka's mock
 * cluster with events that can never be rendered in front of a good one:
 * an element over LO3's 999 bytes (KB_ERR_RANGE), a ce_id that would name a
 * file outside the spool, a payload with a mutated length, and one the
 * afnemer rejects with text of its own. Each must be quarantined once with
 * its reason and committed, the good event behind them rendered, nothing
 * written outside the spool, and the afnemer's text kept out of the log.
 * Before the fix the first one was retried every second for ever.
 */
#define _GNU_SOURCE /* mkdtemp */
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/egress.h"
#include "common/spool.h"
#include "gba/gba_egress.h"
#include "gba/gba_events.h"
#include "gba/lo3.h"
#include "kb_test.h"
#include "test_mock_kafka.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (via kafka.h) */

/* As long as Kafka allows (249): "<topic>-<partition>-<offset>.event.reason"
 * and the temp file written first are then over NAME_MAX, so the quarantine
 * names must be cut (before the fix each such event was retried for ever). */
#define TEN_O "oooooooooo"
#define TOPIC                                                                                 \
    "quartest." TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O \
        TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O TEN_O ".out"

/* The events on the topic, in this order. */
enum { EV_TOO_LONG, EV_TRAVERSAL, EV_MUTATED, EV_REJECTED, EV_GOOD, N_EVENTS };

/* What the afnemer answers to EV_REJECTED starts with a fictitious
 * person's data and a control character, and is far longer than a .reason
 * file keeps. */
#define PEER_TEXT_HEAD "bericht geweigerd: Jansen, Pieter 999995303\a "

static kb_schemas_t *schemas;
static const struct kb_spool *spool;
static char event_ids[N_EVENTS][40]; /* ce_id of each event */
static int renders[N_EVENTS];        /* render calls per event */
static atomic_int stop;

/* The GBA egress renderer as main.c has it, towards a peer that rejects
 * EV_REJECTED. Stops the loop when an event comes round a third time:
 * the retry for ever of before the fix. */
static kb_err_t render(void *opaque, const struct kb_event_attrs *attrs,
                       const struct kb_schema *schema, const uint8_t *payload, size_t len,
                       char *errstr, size_t errstr_size, char *detail, size_t detail_size)
{
    (void)opaque;
    for (int i = 0; i < N_EVENTS; i++)
        if (!strcmp(attrs->id, event_ids[i]) && ++renders[i] >= 3)
            atomic_store(&stop, 1);
    char name[KB_EGRESS_NAME_MAX + 8];
    uint8_t *lo3 = NULL;
    size_t n = 0;
    kb_err_t err = kb_gba_out_name(attrs, name, sizeof name, errstr, errstr_size);
    if (!err)
        err = kb_gba_render_lo3(attrs, schema, payload, len, &lo3, &n, errstr, errstr_size);
    if (!err && !strcmp(attrs->id, event_ids[EV_REJECTED])) {
        char text[600];
        memset(text, 'x', sizeof text - 1);
        text[sizeof text - 1] = '\0';
        memcpy(text, PEER_TEXT_HEAD, strlen(PEER_TEXT_HEAD));
        err = kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "afnemer rejected the message");
        snprintf(detail, detail_size, "%s", text);
    } else if (!err) {
        err = kb_spool_write_out(spool, name, lo3, n);
    }
    free(lo3);
    return err;
}

/* The first event of GBA fixture @p fixture, re-encoded into *@p framed
 * (malloc'ed) after @p place (non-NULL) became the child's birth place. */
static void event_of(const char *fixture, const char *place, struct kb_event_attrs *attrs,
                     uint8_t **framed, size_t *len)
{
    static const uint8_t key[32] = {7};
    char err[512], path[1400];
    const char *src = getenv("KB_SOURCE_DIR") ? getenv("KB_SOURCE_DIR") : ".";
    snprintf(path, sizeof path, "%s/tests/fixtures/gba/%s", src, fixture);
    FILE *fp = fopen(path, "rb");
    CHECK(fp != NULL);
    static uint8_t buf[8192];
    size_t blen = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp)
        fclose(fp);
    struct kb_lo3_message msg;
    CHECK_INT(kb_lo3_parse(buf, blen, &msg, err, sizeof err), KB_OK);
    struct kb_gba_ctx ctx = {schemas, key, sizeof key, "urn:nld:oin:00000099999999999000:systeem:t",
                             NULL};
    struct kb_ingress_event *evs = NULL;
    size_t n = 0;
    CHECK_INT(kb_gba_events(&ctx, buf, blen, &msg, 1710921600000, "", &evs, &n, err, sizeof err),
              KB_OK);
    kb_lo3_message_fini(&msg);
    *framed = NULL;
    CHECK(n >= 1);
    if (n < 1)
        return;
    *attrs = evs[0].attrs;
    const struct kb_schema *sc = kb_schemas_by_id(schemas, evs[0].attrs.schema_id);
    avro_value_t v;
    CHECK_INT(avro_generic_value_new(sc->iface, &v), 0);
    CHECK_INT(kb_schema_decode(sc, evs[0].value + 5, evs[0].len - 5, &v, err, sizeof err), KB_OK);
    if (place)
        CHECK_INT(kb_value_set_string(&v, "kind.geboorteplaats", place), KB_OK);
    CHECK_INT(kb_schema_encode(sc, &v, framed, len, err, sizeof err), KB_OK);
    avro_value_decref(&v);
    kb_gba_events_free(evs, n);
}

static void produce(rd_kafka_t *p, const struct kb_event_attrs *attrs, const uint8_t *value,
                    size_t len)
{
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24];
    size_t nh = kb_event_headers(attrs, hdrs, seqbuf);
    CHECK_INT(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_VALUE((void *)value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(kb_kafka_headers_new(hdrs, nh)), RD_KAFKA_V_END),
              0);
}

static void produce_events(const char *bootstrap)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    CHECK(p != NULL);
    if (!p)
        return;
    char place[1001];
    memset(place, 'A', 1000);
    place[1000] = '\0';
    for (int i = 0; i < N_EVENTS; i++) {
        struct kb_event_attrs attrs;
        uint8_t *framed = NULL;
        size_t len = 0;
        if (i == EV_TOO_LONG)
            event_of("lg01-geboorte-sophie.lo3", place, &attrs, &framed, &len);
        else if (i == EV_GOOD)
            event_of("events/gv01-overlijden.lo3", NULL, &attrs, &framed, &len);
        else
            event_of("lg01-geboorte-sophie.lo3", NULL, &attrs, &framed, &len);
        if (!framed)
            continue;
        /* distinct ids: the fixtures' events share them */
        snprintf(attrs.id, sizeof attrs.id, "%s", i == EV_TRAVERSAL ? "../../PWNED" : "");
        if (i != EV_TRAVERSAL)
            snprintf(attrs.id, sizeof attrs.id, "0b9c7e52-4b1d-5f8e-a2c4-7d3e9f10a60%d", i);
        snprintf(event_ids[i], sizeof event_ids[i], "%s", attrs.id);
        if (i == EV_MUTATED && len > 7) {
            /* kind.aNummer's one-byte length (after its union index) becomes
             * the varint of 2^31 - 1: avro-c would allocate 2 GiB */
            static const uint8_t huge[5] = {0xfe, 0xff, 0xff, 0xff, 0x0f};
            uint8_t *m = malloc(len + 4);
            CHECK(m != NULL);
            if (m) {
                memcpy(m, framed, 6);
                memcpy(m + 6, huge, 5);
                memcpy(m + 11, framed + 7, len - 7);
                len += 4;
            }
            free(framed);
            framed = m;
        }
        if (framed)
            produce(p, &attrs, framed, len);
        free(framed);
    }
    CHECK_INT(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);
}

/* The offset @p group committed on partition 0 of TOPIC, or
 * RD_KAFKA_OFFSET_INVALID for none. */
/* The whole of file @p path (at most 64 KiB) as a string, "" when absent. */
static void slurp(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    out[n] = '\0';
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        n += de->d_name[0] != '.' && l > sl && !strcmp(de->d_name + l - sl, suffix);
    }
    if (d)
        closedir(d);
    return n;
}

/* The .reason file of the event at @p offset (@p ext: "" or its ".N"),
 * under whatever cut of TOPIC. */
static void reason_of_as(const char *root, int offset, const char *ext, char *out, size_t cap)
{
    char pattern[1400];
    glob_t gl;
    snprintf(pattern, sizeof pattern, "%s/spool/quarantine/quartest.o*-0-%d.event%s.reason", root,
             offset, ext);
    out[0] = '\0';
    CHECK_INT(glob(pattern, 0, NULL, &gl), 0);
    CHECK_INT(gl.gl_pathc, 1);
    if (gl.gl_pathc == 1)
        slurp(gl.gl_pathv[0], out, cap);
    globfree(&gl);
}

static void reason_of(const char *root, int offset, char *out, size_t cap)
{
    reason_of_as(root, offset, "", out, cap);
}

int main(void)
{
    char err[512], root[] = "/tmp/kb-test-egress-quarantine-XXXXXX", dir[1400];
    CHECK(mkdtemp(root) != NULL);
    const char *src = getenv("KB_SOURCE_DIR") ? getenv("KB_SOURCE_DIR") : ".";
    snprintf(dir, sizeof dir, "%s/schemas", src);
    schemas = kb_schemas_load_dir(dir, err, sizeof err);
    CHECK(schemas != NULL);
    struct kb_spool sp;
    snprintf(dir, sizeof dir, "%s/spool", root);
    CHECK_INT(kb_spool_open(&sp, dir, err, sizeof err), KB_OK);
    spool = &sp;

    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 1);
    CHECK(mc != NULL);
    if (!mc || !schemas)
        KB_TEST_DONE();
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    rd_kafka_mock_topic_create(mc, TOPIC, 1, 1); /* the mock cluster has no CreateTopics */
    produce_events(bootstrap);

    /* An earlier event quarantined under the mutated one's name (its topic
     * made again, offsets from 0) is kept: the new one gets ".1". */
    char earlier[300], suffix[48], earlier_path[2600];
    snprintf(suffix, sizeof suffix, "-0-%d.event", EV_MUTATED);
    CHECK_INT(kb_spool_piece_name(TOPIC, suffix, earlier, sizeof earlier), KB_OK);
    kb_spool_path(&sp, "quarantine", earlier, earlier_path, sizeof earlier_path);
    CHECK_INT(kb_file_write_atomic(earlier_path, "an earlier event", 16), KB_OK);

    /* The loop's log goes to a file, to be searched for the peer's text. */
    char log_path[1400];
    snprintf(log_path, sizeof log_path, "%s/egress.log", root);
    fflush(stderr);
    int saved_stderr = dup(2), log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(log_fd >= 0);
    dup2(log_fd, 2);
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    kb_kafka_opts_set(&ko, "bootstrap.servers", bootstrap, err, sizeof err);
    /* idle for 6 s ends the run (the mock's group join alone takes 3 s) */
    struct kb_egress_opts eo = {&ko, schemas, TOPIC, "quartest", &sp, render, NULL, 6000};
    kb_err_t rc = kb_egress_run(&eo, &stop, err, sizeof err);
    kb_kafka_opts_fini(&ko);
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    close(log_fd);
    CHECK_INT(rc, KB_OK);

    /* Each event rendered once (the mutated one never reaches the renderer's
     * decode), all committed, the good one written. */
    for (int i = 0; i < N_EVENTS; i++)
        CHECK_INT(renders[i], 1);
    CHECK_INT(test_committed(bootstrap, TOPIC, "quartest"), N_EVENTS);
    snprintf(dir, sizeof dir, "%s/spool/out", root);
    CHECK_INT(count_files(dir, ".lo3"), 1);
    snprintf(dir, sizeof dir, "%s/spool/out/%s.lo3", root, event_ids[EV_GOOD]);
    CHECK(access(dir, F_OK) == 0);
    snprintf(dir, sizeof dir, "%s/spool/quarantine", root);
    CHECK_INT(count_files(dir, ".event"), 4); /* three and the earlier one */
    CHECK_INT(count_files(dir, ".event.1"), 1);
    CHECK_INT(count_files(dir, ".reason"), 4);
    char kept[64];
    slurp(earlier_path, kept, sizeof kept);
    CHECK_STR(kept, "an earlier event");
    /* "../../PWNED.lo3" from out/ would have been <root>/PWNED.lo3 */
    snprintf(dir, sizeof dir, "%s/PWNED.lo3", root);
    CHECK(access(dir, F_OK) != 0);

    char reason[4096];
    reason_of(root, EV_TOO_LONG, reason, sizeof reason);
    CHECK(strstr(reason, "element 0320: 1000 bytes exceed 999") != NULL);
    reason_of(root, EV_TRAVERSAL, reason, sizeof reason);
    CHECK(strstr(reason, "ce_id is not a safe file name") != NULL);
    reason_of_as(root, EV_MUTATED, ".1", reason, sizeof reason);
    CHECK(strstr(reason, "payload fails schema 1001") != NULL);
    /* The afnemer's text: in the .reason file, printable and bounded. */
    reason_of(root, EV_REJECTED, reason, sizeof reason);
    const char *peer = strstr(reason, "\npeer text: ");
    CHECK(!strncmp(reason, "afnemer rejected the message\n", 29));
    CHECK(peer != NULL);
    if (peer) {
        peer += strlen("\npeer text: ");
        CHECK(!strncmp(peer, "bericht geweigerd: Jansen, Pieter 999995303? xxx", 48));
        CHECK_INT(strcspn(peer, "\n"), KB_EGRESS_DETAIL_MAX + 3);
        CHECK(!strncmp(peer + KB_EGRESS_DETAIL_MAX, "...\n", 4));
    }
    /* ... and never in the log. */
    static char log[65536];
    slurp(log_path, log, sizeof log);
    CHECK(strstr(log, "event quarantined") != NULL);
    CHECK(strstr(log, "Jansen") == NULL);
    CHECK(strstr(log, "999995303") == NULL);

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    kb_schemas_destroy(schemas);
    CHECK_INT(kb_test_rm_tree(root), 0);
    KB_TEST_DONE();
}
