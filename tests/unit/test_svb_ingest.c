/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_svb_ingest.c - kb_svb_ingest_file() on librdkafka's mock cluster with
 * hostile and oversize spool files. Before the fix a file of newlines cost
 * ~1.3 kB per newline and one acknowledged quarantine message per line (an
 * 8 MiB file: ~11 GB and ~16 hours; here the ctest timeout), and a file over
 * 8 MiB reached quarantine/ but never <prefix>.quarantine.svb. (The whole-
 * file path of a file without a good record: tests/integration/svb_ingest.sh.)
 */
#define _GNU_SOURCE /* mkdtemp */
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "akw.h"
#include "kb_test.h"
#include "ketenbus/kafka.h"
#include "svb_ingest.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (via kafka.h) */

#define SOURCE      "urn:nld:oin:00000099999999999000:systeem:test-svb"
#define MAX_REFUSED 1000 /* svb_ingest.c: refused records quarantined one by one */

/* One message read back from a topic: the headers the checks need. */
struct msg {
    size_t len;       /* value length */
    char rule[64];    /* kb_rule */
    char error[512];  /* kb_error */
    char offset[24];  /* kb_offset */
    char omitted[24]; /* kb_raw_omitted, "" when the bytes travelled */
    char id[48];      /* ce_id */
};

static void header(rd_kafka_headers_t *h, const char *name, char *out, size_t cap)
{
    const void *v = NULL;
    size_t vlen = 0;
    out[0] = '\0';
    if (h && !rd_kafka_header_get_last(h, name, &v, &vlen)) {
        vlen = vlen < cap - 1 ? vlen : cap - 1;
        memcpy(out, v, vlen);
        out[vlen] = '\0';
    }
}

/* Every message of @p topic (@p parts partitions) from the start, in
 * partition order, into *@p out (malloc'ed); returns how many. */
static size_t consume(const char *bootstrap, const char *topic, int parts, struct msg **out)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "test-svb-ingest", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    size_t n = 0, cap = 0;
    *out = NULL;
    if (!rk)
        return 0;
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(tp, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    int eofs = 0;
    for (int idle = 0; eofs < parts && idle < 100;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle++;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err) {
            if (n == cap) {
                cap = cap ? 2 * cap : 256;
                *out = realloc(*out, cap * sizeof **out);
            }
            struct msg *x = &(*out)[n++];
            rd_kafka_headers_t *h = NULL;
            rd_kafka_message_headers(m, &h);
            x->len = m->len;
            header(h, "kb_rule", x->rule, sizeof x->rule);
            header(h, "kb_error", x->error, sizeof x->error);
            header(h, "kb_offset", x->offset, sizeof x->offset);
            header(h, "kb_raw_omitted", x->omitted, sizeof x->omitted);
            header(h, "ce_id", x->id, sizeof x->id);
        }
        rd_kafka_message_destroy(m);
    }
    CHECK_INT(eofs, parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

static void drop(struct kb_spool *sp, const char *name, const void *data, size_t len)
{
    char path[2600];
    kb_spool_path(sp, "in", name, path, sizeof path);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK_INT(fwrite(data, 1, len, f), len);
        fclose(f);
    }
}

static long long file_size(struct kb_spool *sp, const char *sub, const char *name)
{
    char path[2600];
    struct stat st;
    kb_spool_path(sp, sub, name, path, sizeof path);
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The event id kb_svb_ingest_file() must give @p line: a UUIDv5 of its bytes. */
static void expected_id(const struct kb_svb_ingest_ctx *ctx, const char *line, char id[48])
{
    struct kb_akw02 *rec = malloc(sizeof *rec);
    struct kb_ingress_event ev;
    char err[256];
    id[0] = '\0';
    CHECK_INT(kb_akw02_parse(line, strlen(line), rec, err, sizeof err), KB_AKW02_OK);
    CHECK_INT(kb_svb_akw02_event(ctx, rec, line, strlen(line), KB_SVB_SPOOL, 1, 0, NULL, &ev, err,
                                 sizeof err),
              KB_OK);
    snprintf(id, 48, "%s", ev.attrs.id);
    free(ev.value);
    free(rec);
}

int main(void)
{
    char err[512], root[] = "/tmp/kb-test-svb-ingest-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    const char *src = getenv("KB_SOURCE_DIR");
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/schemas", src ? src : ".");
    kb_schemas_t *schemas = kb_schemas_load_dir(dir, err, sizeof err);
    CHECK(schemas != NULL);
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, 1);
    CHECK(mc != NULL);
    if (!schemas || !mc)
        KB_TEST_DONE();
    setenv("KETENBUS_TOPIC_PREFIX", "svbtest", 1);
    rd_kafka_mock_topic_create(mc, "svbtest.in.svb", 3, 1);
    rd_kafka_mock_topic_create(mc, "svbtest.quarantine.svb", 1, 1);
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    CHECK_INT(kb_kafka_opts_set(&ko, "bootstrap.servers", bootstrap, err, sizeof err), KB_OK);
    struct kb_spool sp;
    CHECK_INT(kb_spool_open(&sp, root, err, sizeof err), KB_OK);
    struct kb_ingress_opts io = {
        .kafka = &ko, .source = "svb", .state_dir = sp.dir, .partitions = 3};
    kb_ingress_t *ing = kb_ingress_new(&io, err, sizeof err);
    CHECK(ing != NULL);
    if (!ing) {
        fprintf(stderr, "ingress: %s\n", err);
        KB_TEST_DONE();
    }
    static const uint8_t key[32] = "0123456789abcdef0123456789abcde";
    struct kb_svb_ingest_ctx ctx = {schemas, key, sizeof key, SOURCE};
    const char *done_uri = "file:///spool/done";
    struct msg *q = NULL, *ev = NULL;
    size_t nq, nev;

    /* 1. A file over 8 MiB is not read, but its reason, size and SHA-256
     *    reach the quarantine topic (empty value) as well as quarantine/. */
    size_t big_len = (8u << 20) + 1;
    char *big = malloc(big_len);
    memset(big, 'A', big_len);
    char big_sha[65];
    kb_sha256_hex(big, big_len, big_sha);
    drop(&sp, "001-groot.akw02", big, big_len);
    free(big);
    CHECK_INT(kb_svb_ingest_file(&ctx, ing, &sp, done_uri, "001-groot.akw02"), 0);
    CHECK_INT(file_size(&sp, "quarantine", "001-groot.akw02"), (long long)big_len);
    nq = consume(bootstrap, "svbtest.quarantine.svb", 1, &q);
    CHECK_INT(nq, 1);
    if (nq == 1) {
        CHECK_INT(q[0].len, 0);
        CHECK_STR(q[0].rule, "akw02-length");
        CHECK(strstr(q[0].error, "larger than 8 MiB") != NULL);
        CHECK(strstr(q[0].error, big_sha) != NULL);
        CHECK(strstr(q[0].error, "8388609 bytes") != NULL);
    }
    free(q);

    /* 2. A good record, then 4 MiB of newlines (empty records), then a good
     *    record: 1,000 refused records are quarantined one by one, the rest
     *    (the last good record included) as one message, in bounded time;
     *    the first good record is published under the id its bytes give. */
    FILE *f = NULL;
    char path[1200], good1[200] = "", good2[200] = "";
    snprintf(path, sizeof path, "%s/tests/fixtures/svb/aanvragen-goed.akw02", src ? src : ".");
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        CHECK(fgets(good1, sizeof good1, f) != NULL);
        CHECK(fgets(good2, sizeof good2, f) != NULL);
        fclose(f);
    }
    good1[strcspn(good1, "\n")] = '\0';
    good2[strcspn(good2, "\n")] = '\0';
    char id1[48], id2[48];
    expected_id(&ctx, good1, id1);
    expected_id(&ctx, good2, id2);
    size_t l1 = strlen(good1) + 1, nls = 4u << 20, l2 = strlen(good2) + 1;
    size_t mlen = l1 + nls + l2;
    char *mixed = malloc(mlen);
    snprintf(mixed, l1 + 1, "%s\n", good1);
    memset(mixed + l1, '\n', nls);
    memcpy(mixed + l1 + nls, good2, l2 - 1);
    mixed[mlen - 1] = '\n';
    drop(&sp, "002-leeg.akw02", mixed, mlen);
    free(mixed);
    double t0 = mono();
    CHECK_INT(kb_svb_ingest_file(&ctx, ing, &sp, done_uri, "002-leeg.akw02"), 0);
    double took = mono() - t0;
    CHECK(took < 40.0);
    fprintf(stderr, "  4 MiB of newlines: %.1f s\n", took);
    CHECK_INT(file_size(&sp, "done", "002-leeg.akw02"), (long long)mlen);
    CHECK_INT(file_size(&sp, "quarantine", "002-leeg.akw02.regel-2"), 0);
    CHECK(file_size(&sp, "quarantine", "002-leeg.akw02.regel-1001.reason") > 0);
    CHECK(file_size(&sp, "quarantine", "002-leeg.akw02.regel-1002") < 0);
    size_t rest_len = nls - MAX_REFUSED + l2;
    CHECK_INT(file_size(&sp, "quarantine", "002-leeg.akw02.vanaf-regel-1002"), (long long)rest_len);
    CHECK(file_size(&sp, "quarantine", "002-leeg.akw02.vanaf-regel-1002.reason") > 0);
    nev = consume(bootstrap, "svbtest.in.svb", 3, &ev);
    CHECK_INT(nev, 1);
    if (nev == 1)
        CHECK_STR(ev[0].id, id1);
    free(ev);
    nq = consume(bootstrap, "svbtest.quarantine.svb", 1, &q);
    CHECK_INT(nq, 1 + MAX_REFUSED + 1);
    if (nq == 1 + MAX_REFUSED + 1) {
        CHECK_STR(q[1].rule, "akw02-length");
        CHECK_INT(atoll(q[1].offset), (long long)l1);
        CHECK_INT(atoll(q[MAX_REFUSED].offset), (long long)(l1 + MAX_REFUSED - 1));
        struct msg *rest = &q[MAX_REFUSED + 1];
        CHECK_STR(rest->rule, "akw02-too-many-refused");
        CHECK_INT(atoll(rest->offset), (long long)(l1 + MAX_REFUSED));
        char lines[64];
        snprintf(lines, sizeof lines, "regel 1002-%zu ", 1 + nls + 1);
        CHECK(strstr(rest->error, lines) != NULL);
        char omitted[24];
        snprintf(omitted, sizeof omitted, "%zu", rest_len);
        CHECK_STR(rest->omitted, omitted); /* over the topic's raw limit: hash only */
    }
    free(q);

    /* 4. A file of good records with a few bad ones: every good one is
     *    published under the id its bytes give, in one pass. */
    char small[600];
    int slen = snprintf(small, sizeof small, "%s\r\n\n%s\n", good1, good2);
    drop(&sp, "004-goed.akw02", small, (size_t)slen);
    CHECK_INT(kb_svb_ingest_file(&ctx, ing, &sp, done_uri, "004-goed.akw02"), 0);
    nev = consume(bootstrap, "svbtest.in.svb", 3, &ev);
    CHECK_INT(nev, 3);
    int seen1 = 0, seen2 = 0;
    for (size_t i = 0; i < nev; i++) {
        seen1 += !strcmp(ev[i].id, id1);
        seen2 += !strcmp(ev[i].id, id2);
    }
    CHECK_INT(seen1, 2); /* the same record in two files: the same id */
    CHECK_INT(seen2, 1);
    free(ev);
    CHECK(file_size(&sp, "quarantine", "004-goed.akw02.regel-2") == 0);

    /* 5. The same file under a name of 250 bytes (NAME_MAX is 255): its
     *    refused record's quarantine file cannot be "<name>.regel-2", so it
     *    takes the spool's cut name; the file must still leave in/ (it was
     *    kept for ever, the scan stopping at it, before the fix). */
    char longname[251];
    memset(longname, 'n', 250);
    longname[250] = '\0';
    memcpy(longname, "005-", 4);
    drop(&sp, longname, small, (size_t)slen);
    CHECK_INT(kb_svb_ingest_file(&ctx, ing, &sp, done_uri, longname), 0);
    CHECK_INT(file_size(&sp, "in", longname), -1);
    CHECK_INT(file_size(&sp, "done", longname), (long long)slen);
    /* the piece's name, whatever the cut: "005-nnn...~<hash>.regel-2" */
    char pattern[2700];
    kb_spool_path(&sp, "quarantine", "005-*.regel-2", pattern, sizeof pattern);
    glob_t gl;
    CHECK_INT(glob(pattern, 0, NULL, &gl), 0);
    CHECK_INT(gl.gl_pathc, 1);
    if (gl.gl_pathc == 1) {
        struct stat st;
        char reason_path[2800];
        CHECK(stat(gl.gl_pathv[0], &st) == 0 && st.st_size == 0);
        snprintf(reason_path, sizeof reason_path, "%s.reason", gl.gl_pathv[0]);
        CHECK(stat(reason_path, &st) == 0 && st.st_size > 0);
    }
    globfree(&gl);
    nev = consume(bootstrap, "svbtest.in.svb", 3, &ev);
    CHECK_INT(nev, 5);
    free(ev);

    /* 6. A refused record's piece name that holds other bytes (the piece of
     *    an earlier file a sender replaced under the same name) is kept; the
     *    new piece goes beside it. A retry of the same file rewrites its own
     *    piece, no second copy. */
    char qpath[2600];
    kb_spool_path(&sp, "quarantine", "006-twee.akw02.regel-2", qpath, sizeof qpath);
    FILE *qf = fopen(qpath, "w");
    CHECK(qf != NULL);
    if (qf) {
        fputs("the record of the earlier file\n", qf);
        fclose(qf);
    }
    drop(&sp, "006-twee.akw02", small, (size_t)slen);
    CHECK_INT(kb_svb_ingest_file(&ctx, ing, &sp, done_uri, "006-twee.akw02"), 0);
    CHECK_INT(file_size(&sp, "quarantine", "006-twee.akw02.regel-2"), 31);
    CHECK_INT(file_size(&sp, "quarantine", "006-twee.akw02.regel-2.1"), 0);
    CHECK(file_size(&sp, "quarantine", "006-twee.akw02.regel-2.1.reason") > 0);
    drop(&sp, "007-weer.akw02", small, (size_t)slen);
    kb_spool_path(&sp, "quarantine", "007-weer.akw02.regel-2", qpath, sizeof qpath);
    CHECK_INT(close(open(qpath, O_WRONLY | O_CREAT | O_TRUNC, 0640)), 0); /* its own: 0 bytes */
    CHECK_INT(kb_svb_ingest_file(&ctx, ing, &sp, done_uri, "007-weer.akw02"), 0);
    CHECK(file_size(&sp, "quarantine", "007-weer.akw02.regel-2.reason") > 0);
    CHECK_INT(file_size(&sp, "quarantine", "007-weer.akw02.regel-2.1"), -1);

    kb_ingress_destroy(ing);
    kb_kafka_opts_fini(&ko);
    kb_schemas_destroy(schemas);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    CHECK_INT(kb_test_rm_tree(root), 0);
    KB_TEST_DONE();
}
