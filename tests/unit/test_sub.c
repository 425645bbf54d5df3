/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_sub.c - subscription files of tests/unit/data/sub: a valid file and a
 * folder load with every field as written, and each kind of mistake is an
 * error naming the exact file:line:column.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb_test.h"
#include "ketenbus/sub.h"

static char data_dir[1024];

static const char *data_path(const char *rel, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", data_dir, rel);
    return buf;
}

static void test_valid_file(void)
{
    struct kb_subs subs;
    char path[1200], errstr[512] = "";

    CHECK_INT(kb_subs_load(data_path("valid.yaml", path, sizeof path), NULL, 0, &subs, errstr,
                           sizeof errstr),
              KB_OK);
    CHECK_STR(errstr, "");
    CHECK_INT(subs.n, 2);
    if (subs.n != 2)
        return;
    const struct kb_sub *a = &subs.items[0], *b = &subs.items[1];
    CHECK_STR(a->name, "svb-kinderbijslag");
    CHECK_STR(a->purpose_id, "kinderbijslag-uitnodiging");
    CHECK_STR(a->legal_basis, "AKW art. 14");
    CHECK_INT(a->n_types, 2);
    if (a->n_types == 2) {
        CHECK_STR(a->types[0], "nl.brp.persoon-geboren");
        CHECK_STR(a->types[1], "nl.brp.kind-toegevoegd");
    }
    CHECK_STR(a->topic, "kb.out.svb-kinderbijslag");

    CHECK_STR(b->name, "gemeente-0344");
    CHECK_STR(b->purpose_id, "basisregistratie");
    CHECK_STR(b->legal_basis, "Wet BRP art. 3.3");
    CHECK_INT(b->n_types, 1);
    if (b->n_types == 1)
        CHECK_STR(b->types[0], "nl.brp.persoon-geboren");
    CHECK_STR(b->topic, "gemeente.utrecht.in");

    CHECK_INT(kb_sub_wants(a, "nl.brp.persoon-geboren"), 1);
    CHECK_INT(kb_sub_wants(a, "nl.brp.kind-toegevoegd"), 1);
    CHECK_INT(kb_sub_wants(a, "nl.brp.kind"), 0);
    CHECK_INT(kb_sub_wants(a, "nl.brp.persoon-geboren "), 0);
    CHECK_INT(kb_sub_wants(a, ""), 0);
    CHECK_INT(kb_sub_wants(b, "nl.brp.persoon-geboren"), 1);
    CHECK_INT(kb_sub_wants(b, "nl.brp.kind-toegevoegd"), 0);

    kb_subs_fini(&subs);
    CHECK_INT(subs.n, 0);
    CHECK(subs.items == NULL);
    kb_subs_fini(&subs); /* safe on an empty set */
}

static void test_folder(void)
{
    struct kb_subs subs;
    char path[1200], errstr[512] = "";

    /* 10-first.yaml and 20-second.yml in name order; notes.txt and
     * .hidden.yaml are not read (.hidden.yaml would not even parse). */
    CHECK_INT(kb_subs_load(data_path("folder", path, sizeof path), NULL, 0, &subs, errstr,
                           sizeof errstr),
              KB_OK);
    CHECK_STR(errstr, "");
    CHECK_INT(subs.n, 2);
    if (subs.n == 2) {
        CHECK_STR(subs.items[0].name, "a-first");
        CHECK_STR(subs.items[0].purpose_id, "p1");
        CHECK_STR(subs.items[0].legal_basis, "l1");
        CHECK_STR(subs.items[0].topic, "kb.out.a-first");
        CHECK_INT(kb_sub_wants(&subs.items[0], "t.one"), 1);
        CHECK_INT(kb_sub_wants(&subs.items[0], "t.two"), 0);
        CHECK_STR(subs.items[1].name, "b-second");
        CHECK_STR(subs.items[1].topic, "kb.out.b-second");
        CHECK_INT(kb_sub_wants(&subs.items[1], "t.two"), 1);
    }
    kb_subs_fini(&subs);
}

/* Load data/sub/@p rel, expect KB_ERR_CONF, an empty set and errstr
 * "<path>: @p want" exactly. */
static void expect_error(const char *rel, kb_err_t want_err, const char *want)
{
    struct kb_subs subs;
    char path[1200], errstr[512] = "", expect[2048];

    data_path(rel, path, sizeof path);
    CHECK_INT(kb_subs_load(path, NULL, 0, &subs, errstr, sizeof errstr), want_err);
    CHECK_INT(subs.n, 0);
    CHECK(subs.items == NULL);
    snprintf(expect, sizeof expect, "%s/%s", data_dir, want);
    CHECK_STR(errstr, expect);
    kb_subs_fini(&subs);
}

static void test_errors(void)
{
    expect_error("bad/unknown-key.yaml", KB_ERR_CONF,
                 "bad/unknown-key.yaml:4:5: unknown key \"typse\" (did you mean \"types\"?)");
    expect_error("bad/purpose-key.yaml", KB_ERR_CONF,
                 "bad/purpose-key.yaml:6:7: unknown key \"legal_bass\" "
                 "(did you mean \"legal_basis\"?)");
    expect_error("bad/top-key.yaml", KB_ERR_CONF,
                 "bad/top-key.yaml:1:1: unknown key \"subscription\" "
                 "(did you mean \"subscriptions\"?)");
    expect_error("bad/types-string.yaml", KB_ERR_CONF,
                 "bad/types-string.yaml:4:12: types must be a list of strings");
    /* The first subscription is fine; the second (line 5) has no purpose. */
    expect_error("bad/no-purpose.yaml", KB_ERR_CONF,
                 "bad/no-purpose.yaml:5:5: subscription has no purpose");
    expect_error("bad/purpose-empty-id.yaml", KB_ERR_CONF,
                 "bad/purpose-empty-id.yaml:5:7: purpose id and legal_basis must not be empty");
    expect_error("bad/name-chars.yaml", KB_ERR_CONF,
                 "bad/name-chars.yaml:2:11: name must be 1-63 characters of a-z, 0-9 and -");
    expect_error("bad/duplicate.yaml", KB_ERR_CONF,
                 "bad/duplicate.yaml:5:5: duplicate subscription name svb");
    /* Flow mapping left open on line 3: libyaml stops at the ':' of line 4. */
    expect_error("bad/syntax.yaml", KB_ERR_CONF,
                 "bad/syntax.yaml:4:10: did not find expected ',' or '}'");
    expect_error("bad/empty-types.yaml", KB_ERR_CONF,
                 "bad/empty-types.yaml:4:12: types must not be empty");
    /* The same name in two files of a folder. */
    expect_error("dup-folder", KB_ERR_CONF,
                 "dup-folder/b.yaml:5:5: duplicate subscription name svb");
}

/* The default topic follows KETENBUS_TOPIC_PREFIX; an explicit one does not. */
static void test_topic_prefix(void)
{
    struct kb_subs subs;
    char path[1200], errstr[512] = "";
    setenv("KETENBUS_TOPIC_PREFIX", "run42", 1);
    CHECK_INT(kb_subs_load(data_path("valid.yaml", path, sizeof path), NULL, 0, &subs, errstr,
                           sizeof errstr),
              KB_OK);
    CHECK_INT(subs.n, 2);
    if (subs.n == 2) {
        CHECK_STR(subs.items[0].topic, "run42.out.svb-kinderbijslag");
        CHECK_STR(subs.items[1].topic, "gemeente.utrecht.in");
    }
    kb_subs_fini(&subs);
    unsetenv("KETENBUS_TOPIC_PREFIX");
}

static void test_missing(void)
{
    struct kb_subs subs;
    char path[1200], errstr[512] = "";
    CHECK_INT(kb_subs_load(data_path("no-such.yaml", path, sizeof path), NULL, 0, &subs, errstr,
                           sizeof errstr),
              KB_ERR_IO);
    CHECK(strstr(errstr, "no-such.yaml: No such file or directory") != NULL);
    CHECK_INT(subs.n, 0);
}

#if 1 /* regression tests of fixed bugs */
/* Regressions: a
 * repeated key inside one subscription overflows the types array or leaks,
 * and a non-string key is reported with garbage instead of its position. */
static void test_known_bugs(void)
{
    struct kb_subs subs;
    char path[1200], errstr[512] = "";
    CHECK_INT(kb_subs_load(data_path("bad/repeated-types.yaml", path, sizeof path), NULL, 0, &subs,
                           errstr, sizeof errstr),
              KB_ERR_CONF);
    CHECK(strstr(errstr, "repeated-types.yaml:6:5:") != NULL);
    kb_subs_fini(&subs);
    CHECK_INT(kb_subs_load(data_path("bad/repeated-purpose.yaml", path, sizeof path), NULL, 0, &subs,
                           errstr, sizeof errstr),
              KB_ERR_CONF);
    CHECK(strstr(errstr, "repeated-purpose.yaml:5:5:") != NULL);
    kb_subs_fini(&subs);
    expect_error("bad/complex-key.yaml", KB_ERR_CONF,
                 "bad/complex-key.yaml:4:7: keys must be strings");
}
#endif

int main(void)
{
    const char *src = getenv("KB_SOURCE_DIR");
    snprintf(data_dir, sizeof data_dir, "%s/tests/unit/data/sub", src ? src : ".");
    unsetenv("KETENBUS_TOPIC_PREFIX"); /* the default prefix "kb" */
    test_valid_file();
    test_folder();
    test_errors();
    test_topic_prefix();
    test_missing();
#if 1 /* regression tests of fixed bugs */
    test_known_bugs();
#endif
    KB_TEST_DONE();
}
