/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_sub_hostile.c - hostile or mistaken subscription files (review of the
 * subscription loader): each is refused with file:line:column, quickly, and
 * never blocks. Filters on pseudonymised fields, follow lists that are no
 * regular file (FIFO, /dev/zero), hold NUL bytes or are too large, YAML
 * aliases and filters too large, a second document, delivery topics that
 * are the bus's own or another subscriber's, and follow files posted to the
 * server. An alarm ends the run if a load blocks, as the old loader did.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdtemp */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/sub.h"

static char dir[256];
static const uint8_t key[32] = "test-subject-key-not-a-secret!!";

static const char *tmp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static const char *write_tmp(const char *name, const char *text, size_t len)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(text, 1, len, f);
    fclose(f);
    return path;
}

static const char *write_text(const char *name, const char *text)
{
    return write_tmp(name, text, strlen(text));
}

/* (tmp_path and write_* return the same static buffer: copy to keep one.) */

/* Load @p yaml as file "t.yaml" (untrusted: as from a request body); expect
 * KB_OK when @p want is NULL, else KB_ERR_CONF with errstr "<dir>/@p want..."
 * (or containing @p want when it does not start with "t.yaml"). */
static void expect_load(const char *yaml, int untrusted, const char *want)
{
    const char *path = write_text("t.yaml", yaml);
    struct kb_subs subs;
    char errstr[1024] = "";
    kb_err_t err = untrusted
                       ? kb_subs_load_untrusted(path, key, sizeof key, &subs, errstr, sizeof errstr)
                       : kb_subs_load(path, key, sizeof key, &subs, errstr, sizeof errstr);
    if (!want) {
        if (err)
            fprintf(stderr, "expected to load, got: %s\n", errstr);
        CHECK_INT(err, KB_OK);
    } else {
        char expect[1024];
        if (!strncmp(want, "t.yaml", 6))
            snprintf(expect, sizeof expect, "%s/%s", dir, want);
        else
            snprintf(expect, sizeof expect, "%s", want);
        int ok = err != KB_OK && strstr(errstr, expect) != NULL &&
                 (strncmp(want, "t.yaml", 6) != 0 || strstr(errstr, expect) == errstr);
        if (!ok)
            fprintf(stderr, "expected \"%s\", got err=%d \"%s\"\n", expect, err, errstr);
        CHECK(ok);
        CHECK_INT(subs.n, 0);
    }
    kb_subs_fini(&subs);
}

#define HEAD                                 \
    "subscriptions:\n"                       \
    "  - name: a\n"                          \
    "    purpose: {id: p, legal_basis: w}\n" \
    "    types: [nl.brp.persoon-geboren]\n"

/* Finding 1: a comparison on a pseudonymised field tells the subscriber
 * which pseudonym belongs to which BSN. */
static void test_pseudonymised_filters(void)
{
    /* The reviewer's case: = on the pseudonymised BSN. */
    expect_load(HEAD "    fields: [kind.bsn, kind.geboortedatum]\n"
                     "    pseudonymise: [kind.bsn]\n"
                     "    filter: {field: {path: kind.bsn, op: '=', value: '999995303'}}\n",
                0,
                "t.yaml:7:13: filter on pseudonymised field \"kind.bsn\": comparing it would "
                "link");
    /* Also when every field is received (no fields:). */
    expect_load(HEAD "    pseudonymise: [kind.bsn]\n"
                     "    filter: {field: {path: kind.bsn, op: '=', value: '999995303'}}\n",
                0, "t.yaml:6:13: filter on pseudonymised field \"kind.bsn\"");
    /* Ranges and lists narrow it down as well. */
    expect_load(HEAD "    pseudonymise: [kind.bsn]\n"
                     "    filter: {field: {path: kind.bsn, op: '<', value: '999995304'}}\n",
                0, "t.yaml:6:13: filter on pseudonymised field");
    expect_load(HEAD "    pseudonymise: [kind.bsn]\n"
                     "    filter: {field: {path: kind.bsn, op: in, values: ['999995303']}}\n",
                0, "t.yaml:6:13: filter on pseudonymised field");
    /* Deep inside all/not: the position of the offending filter. */
    expect_load(HEAD "    pseudonymise: [kind.bsn]\n"
                     "    filter:\n"
                     "      all:\n"
                     "        - exact: {type: nl.brp.persoon-geboren}\n"
                     "        - not: {field: {path: kind.bsn, op: '!=', value: '999995303'}}\n",
                0, "t.yaml:9:16: filter on pseudonymised field \"kind.bsn\"");
    /* Above (a field holding it) and below (inside it). */
    expect_load(HEAD "    fields: [kind]\n"
                     "    pseudonymise: [kind.bsn]\n"
                     "    filter: {field: {path: kind, op: '=', value: x}}\n",
                0,
                "t.yaml:7:13: filter on field \"kind\" holding pseudonymised field "
                "\"kind.bsn\"");
    expect_load(HEAD "    pseudonymise: [ouders]\n"
                     "    filter: {field: {path: ouders.bsn, op: exists}}\n",
                0,
                "t.yaml:6:13: filter on field \"ouders.bsn\" inside pseudonymised field "
                "\"ouders\"");
    /* exists on the field itself or above: a copy shows that anyway. */
    expect_load(HEAD "    pseudonymise: [kind.bsn]\n"
                     "    filter: {field: {path: kind.bsn, op: exists}}\n",
                0, NULL);
    expect_load(HEAD "    fields: [kind]\n"
                     "    pseudonymise: [kind.bsn]\n"
                     "    filter: {field: {path: kind, op: exists, value: false}}\n",
                0, NULL);
    /* A name that merely starts the same is another field. */
    expect_load(HEAD "    pseudonymise: [kind.bsn]\n"
                     "    filter: {field: {path: kind.bsnx, op: '=', value: '1'}}\n",
                0, NULL);
}

/* Appends to a growing YAML text (aborts when out of room: a test bug). */
struct text {
    char *buf;
    size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, int i)
{
    int n = snprintf(t->buf + t->len, t->cap - t->len, fmt, i);
    if (n < 0 || (size_t)n >= t->cap - t->len)
        abort();
    t->len += (size_t)n;
}

/* "[p0, p1, ...]" with @p n entries printed from @p fmt (one %d) into @p t. */
static void text_list(struct text *t, const char *fmt, int n)
{
    text_add(t, "[", 0);
    for (int i = 0; i < n; i++) {
        if (i)
            text_add(t, ", ", 0);
        text_add(t, fmt, i);
    }
    text_add(t, "]\n", 0);
}

/* A posted subscription (800 KB: 200,000 entries in fields and in
 * pseudonymise) held the server for two minutes: every pseudonymised field
 * was looked for in the whole field list. Lists are bounded now, and the
 * checks between them are binary searches. The alarm in main() ends the
 * run should a load take long again. */
static void test_list_bounds(void)
{
    struct text t = {malloc(2u << 20), 0, 2u << 20};
    /* The reviewer's body. */
    text_add(&t, HEAD "    fields: [", 0);
    for (int i = 0; i < 200000; i++)
        text_add(&t, "b,", 0);
    text_add(&t, "a]\n    pseudonymise: [a", 0);
    for (int i = 1; i < 200000; i++)
        text_add(&t, ",a", 0);
    text_add(&t, "]\n", 0);
    expect_load(t.buf, 1, "t.yaml:5:13: fields has 200001 entries; at most 1024 are allowed");

    /* At the limit: 1024 fields, each pseudonymised, and a filter of 2,000
     * exists tests on them; then one entry more in each list. */
    for (int n = KB_SUB_LIST_MAX; n <= KB_SUB_LIST_MAX + 1; n++) {
        static const char *const lists[] = {"types", "fields", "pseudonymise"};
        for (size_t which = 0; which < 3; which++) {
            t.len = 0;
            text_add(&t,
                     "subscriptions:\n"
                     "  - name: a\n"
                     "    purpose: {id: p, legal_basis: w}\n"
                     "    types: ",
                     0);
            text_list(&t, "t.%d", which == 0 ? n : 1);
            text_add(&t, "    fields: ", 0);
            text_list(&t, "kind.f%d", which == 1 ? n : KB_SUB_LIST_MAX);
            text_add(&t, "    pseudonymise: ", 0);
            text_list(&t, "kind.f%d", which == 2 ? n : KB_SUB_LIST_MAX);
            text_add(&t, "    filter:\n      all:\n", 0);
            for (int i = 0; i < 2000; i++)
                text_add(&t, "        - field: {path: kind.f%d, op: exists}\n", i % 1024);
            char want[128];
            snprintf(want, sizeof want, "t.yaml:%zu:%d: %s has %d entries; at most %d are allowed",
                     which + 4,
                     which == 0   ? 12
                     : which == 1 ? 13
                                  : 19,
                     lists[which], n, KB_SUB_LIST_MAX);
            /* (which 1 and 2 at n = 1025 name a field no list holds: refused
             * for its count first all the same.) */
            expect_load(t.buf, 1, n == KB_SUB_LIST_MAX ? NULL : want);
        }
    }
    /* A path of many dots: each field above it is looked up once, by a
     * hash taken as the path is read (a search per dot took 1.6 s for
     * 250,000). */
    t.len = 0;
    text_add(&t, HEAD "    fields: [a", 0);
    for (int i = 0; i < 100000; i++)
        text_add(&t, ".a", 0);
    text_add(&t, "]\n    pseudonymise: [a", 0);
    for (int i = 0; i < 100000; i++)
        text_add(&t, ".a", 0);
    text_add(&t, ".b]\n    filter: {field: {path: a", 0);
    for (int i = 0; i < 100000; i++)
        text_add(&t, ".a", 0);
    text_add(&t, ".c, op: exists}}\n", 0);
    expect_load(t.buf, 1, NULL);
    free(t.buf);

    /* An entry twice: named where it is written the second time. */
    expect_load(HEAD "    fields: [a, b, a, b]\n", 0, "t.yaml:5:20: fields: \"a\" is listed twice");
    expect_load("subscriptions:\n"
                "  - name: a\n"
                "    purpose: {id: p, legal_basis: w}\n"
                "    types: [x, y, y]\n",
                0, "t.yaml:4:19: types: \"y\" is listed twice");
    expect_load(HEAD "    pseudonymise:\n      - a.b\n      - a\n      - a.b\n", 0,
                "t.yaml:8:9: pseudonymise: \"a.b\" is listed twice");
    /* A filter near several pseudonymised fields names the one listed first. */
    expect_load(HEAD "    pseudonymise: [a.b.c, a]\n"
                     "    filter: {field: {path: a.b, op: '=', value: x}}\n",
                0, "t.yaml:6:13: filter on field \"a.b\" holding pseudonymised field \"a.b.c\"");
    expect_load(HEAD "    pseudonymise: [a, a.b.c]\n"
                     "    filter: {field: {path: a.b, op: '=', value: x}}\n",
                0, "t.yaml:6:13: filter on field \"a.b\" inside pseudonymised field \"a\"");
    expect_load(HEAD "    pseudonymise: [a.b.c, a.b]\n"
                     "    filter: {field: {path: a.b, op: '=', value: x}}\n",
                0, "t.yaml:6:13: filter on field \"a.b\" holding pseudonymised field \"a.b.c\"");
    expect_load(HEAD "    pseudonymise: [a.b.c, a.b]\n"
                     "    filter: {field: {path: a.b, op: exists}}\n",
                0, NULL);
    /* Fields received through a field above them, or not at all. */
    expect_load(HEAD "    fields: [a.b, c]\n"
                     "    pseudonymise: [c.d.e, a.b]\n",
                0, NULL);
    expect_load(HEAD "    fields: [a.b, c]\n"
                     "    pseudonymise: [a.bc]\n",
                0, "t.yaml:2:5: pseudonymise names a field that is not in fields: a.bc");
    expect_load(HEAD "    fields: [a.b.c]\n"
                     "    pseudonymise: [a.b]\n",
                0, "t.yaml:2:5: pseudonymise names a field that is not in fields: a.b");
}

/* 16,000 small subscriptions (a 1 MiB body) took 0.7 s: each was compared
 * with every one before it for its name and topic. Names and topics are
 * looked up in a hash table now; a repeat is still found, late or early. */
static void test_many_subscriptions(void)
{
    enum { N = 20000 };
    struct text t = {malloc(2u << 20), 0, 2u << 20};
    for (int last = 0; last < 3; last++) {
        t.len = 0;
        text_add(&t, "subscriptions:\n", 0);
        for (int i = 0; i < N; i++)
            text_add(&t, "  - {name: s%d, purpose: {id: p, legal_basis: w}, types: [t]}\n", i);
        if (last == 1) /* the name of the first */
            text_add(&t, "  - {name: s0, purpose: {id: p, legal_basis: w}, types: [t]}\n", 0);
        else if (last == 2) /* the topic of one in the middle */
            text_add(&t,
                     "  - {name: x, purpose: {id: p, legal_basis: w}, types: [t], "
                     "delivery: {kafka_topic: gemeente.x}}\n"
                     "  - {name: y, purpose: {id: p, legal_basis: w}, types: [t], "
                     "delivery: {kafka_topic: gemeente.x}}\n",
                     0);
        char want[160];
        snprintf(want, sizeof want, "t.yaml:%d:5: duplicate subscription name s0", N + 2);
        if (last == 2)
            snprintf(want, sizeof want,
                     "t.yaml:%d:85: topic \"gemeente.x\" is already the topic of subscription x",
                     N + 3);
        expect_load(t.buf, 1, last ? want : NULL);
    }
    free(t.buf);
}

/* A body posted to the admin API is loaded from memory: it was written to
 * a temporary file first, which failed on a read-only file system. */
static void test_buffer(void)
{
    struct kb_subs subs;
    char errstr[1024] = "";
    /* Not NUL-terminated: the bytes after len are not read. */
    static const char text[] = HEAD "    fields: [kind.bsn]\n"
                                    "garbage: [";
    size_t len = sizeof HEAD - 1 + strlen("    fields: [kind.bsn]\n");
    CHECK_INT(kb_subs_load_untrusted_buffer("body", text, len, key, sizeof key, &subs, errstr,
                                            sizeof errstr),
              KB_OK);
    CHECK_INT(subs.n, 1);
    CHECK_INT(subs.n_files, 0);
    if (subs.n == 1) {
        CHECK_STR(subs.items[0].name, "a");
        CHECK_STR(subs.items[0].file, "body");
        CHECK_INT(subs.items[0].n_fields, 1);
    }
    kb_subs_fini(&subs);
    /* Errors name the body as they name a file, ... */
    CHECK_INT(kb_subs_load_untrusted_buffer("body", text, sizeof text - 1, key, sizeof key, &subs,
                                            errstr, sizeof errstr),
              KB_ERR_CONF);
    CHECK(!strncmp(errstr, "body:7:1: ", 10));
    CHECK_INT(subs.n, 0);
    /* ... untrusted as a file posted was, ... */
    static const char follow[] = HEAD "    follow: /etc/hostname\n";
    CHECK_INT(kb_subs_load_untrusted_buffer("body", follow, sizeof follow - 1, key, sizeof key,
                                            &subs, errstr, sizeof errstr),
              KB_ERR_CONF);
    CHECK(strstr(errstr, "body:5:13: follow: FILE is not accepted") == errstr);
    /* ... and bounded as a file is. */
    char *huge = calloc(1, KB_SUB_FILE_MAX + 1);
    CHECK_INT(kb_subs_load_untrusted_buffer("body", huge, KB_SUB_FILE_MAX + 1, key, sizeof key,
                                            &subs, errstr, sizeof errstr),
              KB_ERR_CONF);
    CHECK(strstr(errstr, "body: larger than the limit") == errstr);
    free(huge);
}

/* Finding 2: a follow list that is no regular file is refused unread. */
static void test_follow_files(void)
{
    expect_load(HEAD "    follow: /dev/zero\n", 0,
                "t.yaml:5:13: refused follow list /dev/zero: not a regular file");
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s", tmp_path("fifo.csv"));
    CHECK_INT(mkfifo(fifo, 0600), 0);
    expect_load(HEAD "    follow: fifo.csv\n", 0, "refused follow list");
    expect_load(HEAD "    follow: .\n", 0, "not a regular file"); /* a folder */

    /* A NUL byte or an overlong line names the line, not its content. */
    write_tmp("nul.csv", "bsn:999995303,,\n\0\n", 18);
    expect_load(HEAD "    follow: nul.csv\n", 0, "nul.csv:2: follow list line holds a NUL byte");
    char longline[700];
    memset(longline, 'x', 600);
    strcpy(longline + 600, "\n");
    write_text("long.csv", longline);
    expect_load(HEAD "    follow: long.csv\n", 0,
                "long.csv:1: follow list line is longer than 511 bytes");

    /* Larger than the cap: refused before reading (sparse, so cheap). */
    int fd = open(tmp_path("big.csv"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK_INT(ftruncate(fd, (off_t)KB_SUB_FOLLOW_FILE_MAX + 1), 0);
    close(fd);
    expect_load(HEAD "    follow: big.csv\n", 0, "t.yaml:5:13: refused follow list");

    /* A good one: the version read is remembered, for the router's reload. */
    char csv[512];
    snprintf(csv, sizeof csv, "%s", write_text("ok.csv", "# volgers\nbsn:999995303,2024-01-01,\n"));
    const char *path = write_text("t.yaml", HEAD "    follow: ok.csv\n");
    struct kb_subs subs;
    char errstr[512] = "";
    CHECK_INT(kb_subs_load(path, key, sizeof key, &subs, errstr, sizeof errstr), KB_OK);
    struct stat st;
    CHECK_INT(stat(csv, &st), 0);
    if (subs.n == 1) {
        CHECK_INT(subs.items[0].n_follow, 1);
        CHECK_STR(subs.items[0].follow_path, csv);
        CHECK_INT(subs.items[0].follow_id.size, (int64_t)st.st_size);
        CHECK(subs.items[0].follow_id.ino == (uint64_t)st.st_ino);
        CHECK(subs.items[0].follow_id.mtime_ns ==
              (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    }
    kb_subs_fini(&subs);

    /* From a request body: no follow files at all (they would read the
     * server's files); a follow topic is fine. */
    expect_load(HEAD "    follow: ok.csv\n", 1,
                "t.yaml:5:13: follow: FILE is not accepted in a subscription sent to the server");
    expect_load(HEAD "    follow: {topic: volgers}\n", 1, NULL);

    /* The subscription file itself: a FIFO is refused, not opened. */
    char errstr2[512] = "";
    CHECK_INT(kb_subs_load(fifo, key, sizeof key, &subs, errstr2, sizeof errstr2), KB_ERR_CONF);
    CHECK(strstr(errstr2, "not a regular file") != NULL);
    unlink(fifo);
}

/* Findings 3 and 4: aliases multiply nodes; a second document was ignored. */
static void test_yaml_shape(void)
{
    expect_load(HEAD "    filter:\n"
                     "      all:\n"
                     "        - &l0 {exact: {source: a}}\n"
                     "        - &l1 {all: [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]}\n"
                     "        - &l2 {all: [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]}\n",
                0, "t.yaml:7:11: YAML anchors (&name) are not allowed");
    expect_load("subscriptions:\n"
                "  - name: a\n"
                "    purpose: &p {id: p, legal_basis: w}\n"
                "    types: [t]\n"
                "  - name: b\n"
                "    purpose: *p\n"
                "    types: [t]\n",
                0, "t.yaml:3:14: YAML anchors (&name) are not allowed");
    expect_load("subscriptions:\n"
                "  - name: b\n"
                "    purpose: *p\n"
                "    types: [t]\n",
                0, "t.yaml:3:14: YAML aliases (*name) are not allowed");
    expect_load(HEAD "---\nsubscriptions:\n  - name: b\n", 0,
                "t.yaml:5:1: a second YAML document (after ---) would not be read");
    expect_load(HEAD "---\n", 0, "t.yaml:5:1: a second YAML document");
    expect_load("---\n" HEAD "...\n", 0, NULL); /* one document, explicitly marked */
    expect_load("%YAML 1.1\n---\n" HEAD, 0, NULL);

    /* libyaml's own costs grow with the square of nesting (1 MiB of '['
     * took hours), of anchors (150,000: 31 s) and of %TAG directives
     * (44,000: 4.6 s); each is refused long before. */
    size_t big = 1u << 20;
    char *deep = malloc(big + 1);
    memcpy(deep, "subscriptions: ", 15);
    memset(deep + 15, '[', big - 15);
    deep[big] = '\0';
    expect_load(deep, 1, "t.yaml:1:115: YAML nested deeper than 100 levels");
    for (size_t off = 0; off + 12 < big; off += 12)
        memcpy(deep + off, "%TAG !a! t:\n", 12);
    expect_load(deep, 1, "t.yaml:17:1: more than 16 lines begin with % (YAML directives)");
    free(deep);
    /* The deepest filter allowed (32 levels below the top) is well within. */
    char nested[4096];
    size_t at = (size_t)snprintf(nested, sizeof nested, "%s    filter: ", HEAD);
    for (int i = 0; i < 32; i++)
        at += (size_t)snprintf(nested + at, sizeof nested - at, "{all: [");
    at += (size_t)snprintf(nested + at, sizeof nested - at,
                           "{field: {path: a, op: in, values: [x]}}");
    for (int i = 0; i < 32; i++)
        at += (size_t)snprintf(nested + at, sizeof nested - at, "]}");
    snprintf(nested + at, sizeof nested - at, "\n");
    expect_load(nested, 0, NULL);

    /* Without aliases a filter is bounded by the file, but not small. */
    size_t cap = 64 + 30 * (KB_SUB_FILTER_NODES_MAX + 1) + sizeof HEAD;
    char *yaml = malloc(cap);
    for (int n = KB_SUB_FILTER_NODES_MAX - 1; n <= KB_SUB_FILTER_NODES_MAX; n++) {
        size_t off = (size_t)snprintf(yaml, cap, "%s    filter:\n      any:\n", HEAD);
        for (int i = 0; i < n; i++)
            off += (size_t)snprintf(yaml + off, cap - off, "        - exact: {id: x%d}\n", i);
        /* n children + the any: at the limit, then one more. */
        expect_load(yaml, 0,
                    n < KB_SUB_FILTER_NODES_MAX ? NULL : "filter has more than 10000 nodes");
    }
    free(yaml);
}

/* Finding 5: delivery topics. */
static void test_topics(void)
{
    static const char *const internal[] = {
        "kb.out.b",   "kb.audit",   "kb.in.gba",   "kb.dlq",    "kb.dlq.a",
        "kb.retry.a", "kb.schemas", "kb.follow.x", "kb.replay", "kb.quarantine.gba"};
    for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++) {
        char yaml[512], want[256];
        snprintf(yaml, sizeof yaml, HEAD "    delivery: {kafka_topic: %s}\n", internal[i]);
        snprintf(want, sizeof want,
                 "t.yaml:5:29: delivery.kafka_topic \"%s\" is one of the bus's own topics",
                 internal[i]);
        expect_load(yaml, 0, want);
    }
    expect_load(HEAD "    delivery: {kafka_topic: __consumer_offsets}\n", 0,
                "t.yaml:5:29: delivery.kafka_topic \"__consumer_offsets\" is one of Kafka's "
                "internal topics");
    expect_load(HEAD "    delivery: {kafka_topic: 'a b'}\n", 0,
                "t.yaml:5:29: delivery.kafka_topic must be 1-249 characters");
    /* Its own default, or a name outside the prefix: fine. */
    expect_load(HEAD "    delivery: {kafka_topic: kb.out.a}\n", 0, NULL);
    expect_load(HEAD "    delivery: {kafka_topic: gemeente.utrecht.in}\n", 0, NULL);
    /* Two subscriptions on one topic. */
    expect_load(HEAD "    delivery: {kafka_topic: gemeente.in}\n"
                     "  - name: b\n"
                     "    purpose: {id: p, legal_basis: w}\n"
                     "    types: [t]\n"
                     "    delivery:\n"
                     "      kafka_topic: gemeente.in\n",
                0, "t.yaml:10:20: topic \"gemeente.in\" is already the topic of subscription a");
    /* ... also across the files of a folder. */
    char sub_dir[300];
    snprintf(sub_dir, sizeof sub_dir, "%s/folder", dir);
    CHECK_INT(mkdir(sub_dir, 0700), 0);
    write_text("folder/1.yaml", HEAD "    delivery: {kafka_topic: gemeente.in}\n");
    write_text("folder/2.yaml", "subscriptions:\n"
                                "  - name: b\n"
                                "    purpose: {id: p, legal_basis: w}\n"
                                "    types: [t]\n"
                                "    delivery: {kafka_topic: gemeente.in}\n");
    struct kb_subs subs;
    char errstr[1024] = "", want[700];
    CHECK_INT(kb_subs_load(sub_dir, key, sizeof key, &subs, errstr, sizeof errstr), KB_ERR_CONF);
    snprintf(want, sizeof want,
             "%s/2.yaml:5:29: topic \"gemeente.in\" is already the topic of subscription a "
             "(%s/1.yaml:5)",
             sub_dir, sub_dir);
    CHECK_STR(errstr, want);
    unlink(tmp_path("folder/1.yaml"));
    unlink(tmp_path("folder/2.yaml"));
    rmdir(sub_dir);

    /* The prefix is the router's (KETENBUS_TOPIC_PREFIX). */
    setenv("KETENBUS_TOPIC_PREFIX", "run42", 1);
    expect_load(HEAD "    delivery: {kafka_topic: run42.audit}\n", 0,
                "t.yaml:5:29: delivery.kafka_topic \"run42.audit\" is one of the bus's own "
                "topics (run42.*");
    expect_load(HEAD "    delivery: {kafka_topic: run42.out.a}\n", 0, NULL);
    unsetenv("KETENBUS_TOPIC_PREFIX");
}

static void cleanup(void)
{
    static const char *const names[] = {"t.yaml",  "nul.csv", "long.csv",
                                        "big.csv", "ok.csv",  "fifo.csv"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp_path(names[i]));
    rmdir(dir);
}

int main(void)
{
    /* The old loader blocked forever on a FIFO: fail, do not hang. */
    alarm(30);
    unsetenv("KETENBUS_TOPIC_PREFIX");
    snprintf(dir, sizeof dir, "/tmp/kb-test-sub-hostile-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_pseudonymised_filters();
    test_follow_files();
    test_yaml_shape();
    test_topics();
    test_list_bounds();
    test_many_subscriptions();
    test_buffer();
    cleanup();
    KB_TEST_DONE();
}
