/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_follow_topic.c - follow lists kept in a compacted topic: the
 * `follow: {topic: NAME}` syntax with its strict errors (file:line:column),
 * and the folding of topic records into a list (latest value per key wins,
 * tombstones and unreadable values remove) as pure code, without a broker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/sub.h"

static char dir[256];

static const char *write_tmp(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static const char head[] = "subscriptions:\n"
                           "  - name: svb\n"
                           "    purpose: {id: akw, legal_basis: AKW}\n"
                           "    types: [nl.brp.persoon-geboren]\n";

static void test_syntax(void)
{
    char text[1024], errstr[512];
    struct kb_subs subs;
    snprintf(text, sizeof text, "%s    follow: {topic: toeslagen.kinderopvang}\n", head);
    const char *p = write_tmp("ok.yaml", text);
    /* No subject key needed: the topic holds pseudonyms already. */
    CHECK_INT(kb_subs_load(p, NULL, 0, &subs, errstr, sizeof errstr), KB_OK);
    CHECK_INT(subs.n, 1);
    if (subs.n == 1) {
        char want[200];
        snprintf(want, sizeof want, "%s.follow.toeslagen.kinderopvang", kb_topic_prefix());
        CHECK_STR(subs.items[0].follow_topic, want);
        CHECK(subs.items[0].follow_file == NULL);
        /* Not read yet: follows nobody (never everybody). */
        CHECK(subs.items[0].follow != NULL);
        CHECK_INT(subs.items[0].n_follow, 0);
        CHECK_INT(kb_sub_follows(&subs.items[0], "0123456789abcdef0123456789abcdef", 0), 0);
    }
    /* Loading without follow topics needs no connection and changes nothing. */
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    kb_follow_topics_t *ft = kb_follow_topics_new(&ko);
    CHECK(ft != NULL);
    CHECK_INT(kb_follow_topics_refresh(ft, &subs, 0, 3000), 0);
    kb_follow_topics_destroy(ft);
    kb_kafka_opts_fini(&ko);
    kb_subs_fini(&subs);

    /* Block style works the same. */
    snprintf(text, sizeof text, "%s    follow:\n      topic: volgers\n", head);
    p = write_tmp("block.yaml", text);
    CHECK_INT(kb_subs_load(p, NULL, 0, &subs, errstr, sizeof errstr), KB_OK);
    CHECK_INT(subs.n, 1);
    kb_subs_fini(&subs);
}

static void expect_error(const char *follow_line, const char *want_tail)
{
    char text[1024], errstr[512] = "", want[1024];
    struct kb_subs subs;
    snprintf(text, sizeof text, "%s%s", head, follow_line);
    const char *p = write_tmp("bad.yaml", text);
    CHECK_INT(kb_subs_load(p, NULL, 0, &subs, errstr, sizeof errstr), KB_ERR_CONF);
    CHECK_INT(subs.n, 0);
    snprintf(want, sizeof want, "%s:%s", p, want_tail);
    CHECK_STR(errstr, want);
}

static void test_errors(void)
{
    expect_error("    follow: {topc: x}\n", "5:14: unknown key \"topc\" (did you mean \"topic\"?)");
    expect_error("    follow: {topic: x, file: y}\n", "5:24: unknown key \"file\"");
    expect_error("    follow: {topic: x, topic: y}\n", "5:24: duplicate key \"topic\"");
    expect_error("    follow: {topic: Bad Name}\n",
                 "5:21: follow.topic must be 1-100 characters of a-z, 0-9, -, _ and single dots");
    expect_error("    follow: {topic: a..b}\n",
                 "5:21: follow.topic must be 1-100 characters of a-z, 0-9, -, _ and single dots");
    expect_error("    follow: {topic: [a]}\n", "5:21: follow.topic must be a string");
    expect_error("    follow: {}\n",
                 "5:13: follow needs topic: NAME (or a file name instead of a mapping)");
    expect_error("    follow: [x]\n", "5:13: follow (a file, or {topic: NAME}) must be a string");
}

/* ------------------------------------------------------------- the log */

static char pa[KB_PSEUDONYM_LEN + 1], pb[KB_PSEUDONYM_LEN + 1], pc[KB_PSEUDONYM_LEN + 1];

static kb_err_t add(kb_follow_log_t *log, const char *key, const char *value)
{
    return kb_follow_log_add(log, key, strlen(key), value, value ? strlen(value) : 0);
}

static int64_t day(const char *d)
{
    int64_t ms;
    kb_parse_time(d, &ms);
    return ms;
}

static void test_period(void)
{
    int64_t f, u;
    CHECK_INT(kb_follow_parse_period("2024-01-01,2025-01-01", 21, &f, &u), KB_OK);
    CHECK_INT(f, 1704067200000LL); /* 2024-01-01T00:00:00Z */
    CHECK_INT(u, 1735689600000LL); /* 2025-01-01T00:00:00Z */
    CHECK_INT(kb_follow_parse_period(",", 1, &f, &u), KB_OK);
    CHECK(f == INT64_MIN && u == INT64_MAX);
    CHECK_INT(kb_follow_parse_period("2024-03-15T10:00:00Z,", 21, &f, &u), KB_OK);
    CHECK_INT(f, 1710496800000LL);
    CHECK(u == INT64_MAX);
    CHECK_INT(kb_follow_parse_period(",2024-03-15", 11, &f, &u), KB_OK);
    CHECK(f == INT64_MIN);
    CHECK_INT(kb_follow_parse_period("2024-01-01", 10, &f, &u), KB_ERR_INVALID);   /* no comma */
    CHECK_INT(kb_follow_parse_period("2024-01-01,,", 12, &f, &u), KB_ERR_INVALID); /* two */
    CHECK_INT(kb_follow_parse_period("2025-01-01,2024-01-01", 21, &f, &u), KB_ERR_INVALID);
    CHECK_INT(kb_follow_parse_period("2024-01-01,2024-01-01", 21, &f, &u), KB_ERR_INVALID);
    CHECK_INT(kb_follow_parse_period("2024-13-01,", 11, &f, &u), KB_ERR_INVALID);
    CHECK_INT(kb_follow_parse_period(" 2024-01-01,", 12, &f, &u), KB_ERR_INVALID);
    CHECK_INT(kb_follow_parse_period("2024-01-01\0,", 12, &f, &u), KB_ERR_INVALID);
    CHECK_INT(kb_follow_parse_period(NULL, 0, &f, &u), KB_ERR_INVALID);
}

static void test_log(void)
{
    static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";
    CHECK_INT(kb_event_pseudonym(key, sizeof key, "bsn", "999995303", pa), KB_OK);
    CHECK_INT(kb_event_pseudonym(key, sizeof key, "bsn", "999993653", pb), KB_OK);
    CHECK_INT(kb_event_pseudonym(key, sizeof key, "anummer", "1234567890", pc), KB_OK);

    kb_follow_log_t *log = kb_follow_log_new();
    CHECK_INT(add(log, pa, "2024-01-01,2024-07-01"), KB_OK);
    CHECK_INT(add(log, pb, ","), KB_OK);
    CHECK_INT(add(log, pa, "2024-03-01,"), KB_OK); /* later value wins */
    CHECK_INT(add(log, pc, "2024-01-01,"), KB_OK);
    CHECK_INT(add(log, pc, NULL), KB_OK); /* tombstone removes */
    /* Keys that are not pseudonyms are refused and touch nothing: a BSN in
     * clear, upper-case hex, a short key, none. */
    CHECK_INT(add(log, "999995303", "2024-01-01,"), KB_ERR_INVALID);
    char upper[KB_PSEUDONYM_LEN + 1];
    for (size_t i = 0; i <= KB_PSEUDONYM_LEN; i++)
        upper[i] = (char)(pb[i] >= 'a' && pb[i] <= 'f' ? pb[i] - 32 : pb[i]);
    CHECK_INT(strcmp(upper, pb) != 0 ? add(log, upper, NULL) : KB_ERR_INVALID, KB_ERR_INVALID);
    CHECK_INT(kb_follow_log_add(log, pa, 31, NULL, 0), KB_ERR_INVALID);
    CHECK_INT(kb_follow_log_add(log, NULL, 0, "2024-01-01,", 11), KB_ERR_INVALID);

    struct kb_follow *items;
    size_t n;
    CHECK_INT(kb_follow_log_list(log, &items, &n), KB_OK);
    CHECK_INT(n, 2);
    /* Sorted by subject, one entry each. */
    const char *lo = strcmp(pa, pb) < 0 ? pa : pb, *hi = lo == pa ? pb : pa;
    CHECK_STR(items[0].subject, lo);
    CHECK_STR(items[1].subject, hi);
    struct kb_sub sub;
    memset(&sub, 0, sizeof sub);
    sub.follow = items;
    sub.n_follow = n;
    CHECK_INT(kb_sub_follows(&sub, pa, day("2024-02-01")), 0); /* old period replaced */
    CHECK_INT(kb_sub_follows(&sub, pa, day("2024-03-01")), 1);
    CHECK_INT(kb_sub_follows(&sub, pa, day("2030-01-01")), 1);
    CHECK_INT(kb_sub_follows(&sub, pb, day("1990-01-01")), 1);
    CHECK_INT(kb_sub_follows(&sub, pc, day("2024-03-01")), 0); /* tombstoned */
    free(items);

    /* Followed again after a tombstone; then an unreadable value ends it. */
    CHECK_INT(add(log, pc, ",2024-06-01"), KB_OK);
    CHECK_INT(add(log, pb, "yesterday,"), KB_ERR_INVALID);
    CHECK_INT(kb_follow_log_list(log, &items, &n), KB_OK);
    CHECK_INT(n, 2);
    sub.follow = items;
    sub.n_follow = n;
    CHECK_INT(kb_sub_follows(&sub, pc, day("2024-05-31")), 1);
    CHECK_INT(kb_sub_follows(&sub, pc, day("2024-06-01")), 0); /* until is exclusive */
    CHECK_INT(kb_sub_follows(&sub, pb, day("2024-03-01")), 0);
    CHECK_INT(kb_sub_follows(&sub, pa, day("2024-03-01")), 1);
    free(items);
    kb_follow_log_destroy(log);

    /* An empty log is an empty, non-NULL list: follows nobody. */
    log = kb_follow_log_new();
    CHECK_INT(add(log, pa, NULL), KB_OK);
    CHECK_INT(kb_follow_log_list(log, &items, &n), KB_OK);
    CHECK(items != NULL);
    CHECK_INT(n, 0);
    sub.follow = items;
    sub.n_follow = n;
    CHECK_INT(kb_sub_follows(&sub, pa, day("2024-03-01")), 0);
    free(items);
    kb_follow_log_destroy(log);

    /* Many records: the latest of each of 1000 keys, in any order. */
    log = kb_follow_log_new();
    char keys[1000][KB_PSEUDONYM_LEN + 1];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 1000; i++) {
            char id[16];
            if (!round) {
                snprintf(id, sizeof id, "%010d", 1000000000 + i * 7);
                kb_event_pseudonym(key, sizeof key, "anummer", id, keys[i]);
            }
            /* round 2 ends every odd key; round 0/1 give periods */
            add(log, keys[i],
                round == 2 ? (i % 2 ? NULL : "2020-01-01,")
                           : (round ? "2021-01-01," : "2019-01-01,"));
        }
    CHECK_INT(kb_follow_log_list(log, &items, &n), KB_OK);
    CHECK_INT(n, 500);
    sub.follow = items;
    sub.n_follow = n;
    int ok = 1;
    for (int i = 0; i < 1000; i++)
        ok &= kb_sub_follows(&sub, keys[i], day("2020-06-01")) == !(i % 2);
    CHECK(ok);
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(items[i - 1].subject, items[i].subject) < 0);
    free(items);
    kb_follow_log_destroy(log);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kb-test-follow-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_syntax();
    test_errors();
    test_period();
    test_log();
    if (kb_test_rm_tree(dir) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    KB_TEST_DONE();
}
