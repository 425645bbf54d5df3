/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_egress_seek.c - the egress loop against librdkafka's mock cluster,
 * when seeking back to an event whose rendering failed does not work. Each
 * way a seek can fail (an error object, or the partition's own error in the
 * list) is injected by replacing rd_kafka_seek_partitions() for this
 * program. The loop must then stop without committing, so that the event is
 * rendered on the next run; before the fix it went on, rendered the next
 * event and committed past the failed one, which was never rendered again.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/egress.h"
#include "gba/gba_events.h"
#include "gba/lo3.h"
#include "kb_test.h"
#include "test_mock_kafka.h"
#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (via kafka.h) */

enum seek_fault { SEEK_REAL, SEEK_ERROR_OBJECT, SEEK_PARTITION_ERROR };
static enum seek_fault seek_fault;
static int seek_faults_left; /* seeks still to fail (then real ones) */
static int seek_calls;

/* Replaces librdkafka's for the egress code linked into this program. */
rd_kafka_error_t *rd_kafka_seek_partitions(rd_kafka_t *rk,
                                           rd_kafka_topic_partition_list_t *partitions,
                                           int timeout_ms)
{
    seek_calls++;
    if (seek_faults_left > 0) {
        seek_faults_left--;
        if (seek_fault == SEEK_ERROR_OBJECT)
            return rd_kafka_error_new(RD_KAFKA_RESP_ERR__STATE, "injected seek failure");
        partitions->elems[0].err = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
        return NULL;
    }
    rd_kafka_error_t *(*real)(rd_kafka_t *, rd_kafka_topic_partition_list_t *, int);
    *(void **)&real = dlsym(RTLD_NEXT, "rd_kafka_seek_partitions");
    return real(rk, partitions, timeout_ms);
}

#define N_EVENTS 2

static kb_schemas_t *schemas;
static char event_ids[N_EVENTS][40]; /* in topic order */

/* What the renderer saw in one run. */
struct renders {
    int calls[N_EVENTS]; /* renders per event */
    int fail_first;      /* 1: the first render of event 0 fails (retryable) */
};

static kb_err_t render(void *opaque, const struct kb_event_attrs *attrs,
                       const struct kb_schema *schema, const uint8_t *payload, size_t len,
                       char *errstr, size_t errstr_size, char *detail, size_t detail_size)
{
    (void)schema, (void)payload, (void)len, (void)detail, (void)detail_size;
    struct renders *r = opaque;
    for (int i = 0; i < N_EVENTS; i++) {
        if (strcmp(attrs->id, event_ids[i]))
            continue;
        r->calls[i]++;
        if (i == 0 && r->fail_first && r->calls[0] == 1)
            return kb_err_set(KB_ERR_IO, errstr, errstr_size, "legacy peer away");
    }
    return KB_OK;
}

/* Produce the events of two GBA fixtures to @p topic (one partition). */
static void produce_events(const char *bootstrap, const char *topic)
{
    static const char *const fixtures[N_EVENTS] = {"lg01-geboorte-sophie.lo3",
                                                   "gv01-moeder-kind-sophie.lo3"};
    static const uint8_t key[32] = {7};
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    CHECK(p != NULL);
    const char *src = getenv("KB_SOURCE_DIR") ? getenv("KB_SOURCE_DIR") : ".";
    for (int f = 0; f < N_EVENTS && p; f++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/tests/fixtures/gba/%s", src, fixtures[f]);
        FILE *fp = fopen(path, "rb");
        CHECK(fp != NULL);
        static uint8_t buf[8192];
        size_t len = fp ? fread(buf, 1, sizeof buf, fp) : 0;
        if (fp)
            fclose(fp);
        struct kb_lo3_message msg;
        CHECK_INT(kb_lo3_parse(buf, len, &msg, err, sizeof err), KB_OK);
        struct kb_gba_ctx ctx = {schemas, key, sizeof key,
                                 "urn:nld:oin:00000099999999999000:systeem:t", NULL};
        struct kb_ingress_event *evs = NULL;
        size_t n = 0;
        CHECK_INT(kb_gba_events(&ctx, buf, len, &msg, 1710921600000, "", &evs, &n, err,
                                sizeof err),
                  KB_OK);
        kb_lo3_message_fini(&msg);
        CHECK(n >= 1);
        if (n >= 1) {
            snprintf(event_ids[f], sizeof event_ids[f], "%s", evs[0].attrs.id);
            struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
            char seqbuf[24];
            size_t nh = kb_event_headers(&evs[0].attrs, hdrs, seqbuf);
            CHECK_INT(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                        RD_KAFKA_V_VALUE(evs[0].value, evs[0].len),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_HEADERS(kb_kafka_headers_new(hdrs, nh)),
                                        RD_KAFKA_V_END),
                      0);
        }
        kb_gba_events_free(evs, n);
    }
    if (p) {
        CHECK_INT(rd_kafka_flush(p, 10000), 0);
        rd_kafka_destroy(p);
    }
}

/* One run of the egress loop until 6 s without a message (the mock's
 * group join alone takes 3 s). */
static kb_err_t run(const char *bootstrap, const char *topic, const char *group,
                    const struct kb_spool *sp, struct renders *r, char *err, size_t err_size)
{
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    kb_kafka_opts_set(&ko, "bootstrap.servers", bootstrap, err, err_size);
    struct kb_egress_opts eo = {&ko, schemas, topic, group, sp, render, r, 6000};
    atomic_int stop = 0;
    kb_err_t rc = kb_egress_run(&eo, &stop, err, err_size);
    kb_kafka_opts_fini(&ko);
    return rc;
}

/* The offset @p group committed on partition 0 of @p topic, or
 * RD_KAFKA_OFFSET_INVALID for none. */
/* Seeks fail for good: the loop stops without rendering the next event or
 * committing anything past the failed one. */
static void test_seek_fails(const char *bootstrap, const char *topic, enum seek_fault fault,
                            const char *group, const struct kb_spool *sp)
{
    char err[512] = "";
    struct renders r = {{0}, 1};
    seek_fault = fault;
    seek_faults_left = 1000;
    seek_calls = 0;
    kb_err_t rc = run(bootstrap, topic, group, sp, &r, err, sizeof err);
    CHECK(rc != KB_OK);
    CHECK(strstr(err, "cannot seek back") != NULL);
    CHECK(strstr(err, "stopped so that it is not skipped") != NULL);
    CHECK(seek_calls >= 1);
    CHECK_INT(r.calls[0], 1);
    CHECK_INT(r.calls[1], 0); /* not rendered past the failed event */
    /* nothing committed: a restart resumes at the failed event */
    CHECK_INT(test_committed(bootstrap, topic, group), RD_KAFKA_OFFSET_INVALID);
    seek_faults_left = 0;
}

/* One failed seek, then a good one: the loop goes on in order. */
static void test_seek_fails_once(const char *bootstrap, const char *topic,
                                 const struct kb_spool *sp)
{
    char err[512] = "";
    struct renders r = {{0}, 1};
    seek_fault = SEEK_PARTITION_ERROR;
    seek_faults_left = 1;
    seek_calls = 0;
    CHECK_INT(run(bootstrap, topic, "seek-once", sp, &r, err, sizeof err), KB_OK);
    CHECK_INT(seek_calls, 2);
    CHECK_INT(r.calls[0], 2);
    CHECK_INT(r.calls[1], 1);
    CHECK_INT(test_committed(bootstrap, topic, "seek-once"), N_EVENTS);
}

int main(void)
{
    char err[512], root[] = "/tmp/kb-test-egress-seek-XXXXXX", dir[1200];
    CHECK(mkdtemp(root) != NULL);
    const char *src = getenv("KB_SOURCE_DIR") ? getenv("KB_SOURCE_DIR") : ".";
    snprintf(dir, sizeof dir, "%s/schemas", src);
    schemas = kb_schemas_load_dir(dir, err, sizeof err);
    CHECK(schemas != NULL);
    struct kb_spool sp;
    CHECK_INT(kb_spool_open(&sp, root, err, sizeof err), KB_OK);

    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 1);
    CHECK(mc != NULL);
    if (!mc || !schemas)
        KB_TEST_DONE();
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    /* the mock cluster has no CreateTopics */
    rd_kafka_mock_topic_create(mc, "seektest.out", 1, 1);
    produce_events(bootstrap, "seektest.out");

    test_seek_fails(bootstrap, "seektest.out", SEEK_ERROR_OBJECT, "seek-error-object", &sp);
    test_seek_fails(bootstrap, "seektest.out", SEEK_PARTITION_ERROR, "seek-partition", &sp);
    test_seek_fails_once(bootstrap, "seektest.out", &sp);

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    kb_schemas_destroy(schemas);
    CHECK_INT(kb_test_rm_tree(root), 0);
    KB_TEST_DONE();
}
