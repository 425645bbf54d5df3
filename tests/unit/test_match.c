/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_match.c - the subscription language end to end in process: YAML with
 * filters, projection fields, follow lists and validity periods is loaded,
 * compiled into the index, and a table of events is matched against it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/clock.h"
#include "ketenbus/event.h"
#include "ketenbus/gate.h"
#include "ketenbus/sub.h"
#include "match.h"

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

/* Payload stand-in for field filters: a fixed set of path=value pairs. */
struct fake_payload {
    const char *const *pairs; /* "path", "value", ..., NULL */
};

static int fake_get(void *opaque, const char *path, char *buf, size_t cap)
{
    const struct fake_payload *p = opaque;
    for (size_t i = 0; p->pairs[i]; i += 2)
        if (!strcmp(p->pairs[i], path)) {
            snprintf(buf, cap, "%s", p->pairs[i + 1]);
            return 1;
        }
    return 0;
}

static const char subs_yaml[] =
    "subscriptions:\n"
    "  - name: alle-geboorten\n"
    "    purpose: {id: p1, legal_basis: wet 1}\n"
    "    types: [nl.brp.persoon-geboren]\n"
    "  - name: utrecht\n"
    "    purpose: {id: p2, legal_basis: wet 2}\n"
    "    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd]\n"
    "    fields: [inschrijving, kind.geboortedatum, kind.geboorteland]\n"
    "    filter:\n"
    "      all:\n"
    "        - exact: {source: 'urn:nld:oin:1:systeem:gba'}\n"
    "        - field: {path: inschrijving.gemeente, op: '=', value: '0344'}\n"
    "  - name: buitenland\n"
    "    purpose: {id: p3, legal_basis: wet 3}\n"
    "    types: [nl.brp.persoon-geboren]\n"
    "    fields: [kind.geboorteland]\n"
    "    filter:\n"
    "      not: {field: {path: kind.geboorteland, op: in, values: ['6030', '0000']}}\n"
    "  - name: prefix-suffix\n"
    "    purpose: {id: p4, legal_basis: wet 4}\n"
    "    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd]\n"
    "    filter:\n"
    "      any:\n"
    "        - prefix: {source: 'urn:nld:oin:2:'}\n"
    "        - suffix: {id: '-0001'}\n"
    "  - name: recent\n"
    "    purpose: {id: p5, legal_basis: wet 5}\n"
    "    types: [nl.brp.persoon-geboren]\n"
    "    fields: [kind.geboortedatum]\n"
    "    valid_from: 2024-01-01\n"
    "    valid_until: 2025-01-01\n"
    "    filter: {field: {path: kind.geboortedatum, op: '>=', value: '20240101'}}\n"
    "  - name: volglijst\n"
    "    purpose: {id: p6, legal_basis: wet 6}\n"
    "    types: [nl.brp.persoon-geboren]\n"
    "    follow: follow.csv\n"
    "  - name: zonder-akte\n"
    "    purpose: {id: p7, legal_basis: wet 7}\n"
    "    types: [nl.brp.persoon-geboren]\n"
    "    filter: {field: {path: akte, op: exists, value: false}}\n";

struct event_case {
    const char *what;
    const char *type;
    const char *source;
    const char *id;
    const char *time;          /* ce_time */
    const char *subject_bsn;   /* pseudonymised into ce_subject; NULL = none */
    const char *const *payload;
    const char *expect;        /* matching subscription names, comma separated */
};

/* ---- the index against the plain definition, on random subscriptions ---- */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* Values whose equality the comparison decides by number or by bytes; the
 * whole numbers of up to 15 digits in every spelling (the index keeps those
 * in a table of integers, the others as text), and numbers just past that. */
/* clang-format off */
static const char *const values[] = {
    "0363", "363", "363.0", "3.63e2", "+363", "0344", "344", "abc", "ABC", "nan", "-0", "0",
    "0.0", "1e999", "20240315", "-5", "-5.0", "999999999999999", "0999999999999999",
    "9999999999999999", "1e16", "10000000000000000"};
/* clang-format on */
#define N_VALUES (sizeof values / sizeof values[0])
static const char *const sources[] = {"urn:a", "urn:b", "urn:c"};
static const char *const types[] = {"t.een", "t.twee"};
static const char *const paths[] = {"g", "h", "i", "j", "k", "l"};
#define N_PATHS (sizeof paths / sizeof paths[0])

static void random_filter(FILE *f, int depth)
{
    switch (rnd(depth ? 5 : 7)) {
    case 0:
        fprintf(f, "{exact: {source: '%s'}}", sources[rnd(3)]);
        break;
    case 1:
    case 2:
        /* Up to six indexed paths in a bucket: more than match.c looks
         * ahead at, so both of its ways are taken. */
        fprintf(f, "{field: {path: %s, op: '=', value: '%s'}}", paths[rnd(N_PATHS)],
                values[rnd(N_VALUES)]);
        break;
    case 3:
        fprintf(f, "{field: {path: g, op: in, values: ['%s', '%s', '%s']}}", values[rnd(N_VALUES)],
                values[rnd(N_VALUES)], values[rnd(N_VALUES)]);
        break;
    case 4:
        fprintf(f, "{field: {path: g, op: '>=', value: '%s'}}", values[rnd(N_VALUES)]);
        break;
    case 5:
        fputs("{all: [", f);
        random_filter(f, depth + 1);
        fputs(", ", f);
        random_filter(f, depth + 1);
        fputs("]}", f);
        break;
    default:
        fputs("{not: ", f);
        random_filter(f, depth + 1);
        fputs("}", f);
        break;
    }
}

static void test_index_equals_definition(void)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%s/random.yaml", dir);
    FILE *f = fopen(yaml, "w");
    fputs("subscriptions:\n", f);
    for (int i = 0; i < 400; i++) {
        fprintf(f, "  - name: s%d\n    purpose: {id: p, legal_basis: w}\n", i);
        fprintf(f, "    types: [%s]\n", rnd(3) ? types[rnd(2)] : "t.een, t.twee");
        if (rnd(10) == 0)
            fprintf(f, "    valid_from: 2024-0%u-01\n", 1 + rnd(6));
        if (rnd(8)) {
            fputs("    filter: ", f);
            random_filter(f, 0);
            fputs("\n", f);
        }
    }
    fclose(f);
    struct kb_subs subs;
    char errstr[512] = "";
    CHECK_INT(kb_subs_load(yaml, NULL, 0, &subs, errstr, sizeof errstr), KB_OK);
    if (errstr[0])
        fprintf(stderr, "%s\n", errstr);
    kb_matcher_t *m = kb_matcher_new(&subs);
    CHECK(m != NULL);
    int mismatches = 0, matched = 0;
    for (int e = 0; e < 3000 && m; e++) {
        struct kb_event_attrs a;
        memset(&a, 0, sizeof a);
        snprintf(a.type, sizeof a.type, "%s", types[rnd(2)]);
        snprintf(a.source, sizeof a.source, "%s", sources[rnd(3)]);
        snprintf(a.id, sizeof a.id, "e-%d", e);
        const char *pairs[2 * N_PATHS + 1] = {NULL};
        size_t k = 0;
        for (size_t p = 0; p < N_PATHS; p++)
            if (p == 0 ? rnd(6) : rnd(2)) {
                pairs[k++] = paths[p];
                pairs[k++] = values[rnd(N_VALUES)];
            }
        struct fake_payload fp = {pairs};
        int64_t t = (int64_t)(1704067200 + rnd(300) * 86400) * 1000; /* 2024 */
        const struct kb_sub *hits[512];
        size_t n = kb_matcher_match(m, &a, t, fake_get, &fp, hits, 512);
        /* The definition: every subscription, in order, of the type, valid
         * at t, whose filter is true. */
        size_t j = 0;
        int same = 1;
        for (size_t i = 0; i < subs.n; i++) {
            const struct kb_sub *s = &subs.items[i];
            if (!kb_sub_wants(s, a.type) || t < s->valid_from_ms || t >= s->valid_until_ms)
                continue;
            if (s->filter && !kb_filter_eval(s->filter, &a, fake_get, &fp))
                continue;
            if (j >= n || hits[j] != s)
                same = 0;
            j++;
        }
        matched += (int)n;
        if (!same || j != n) {
            if (mismatches++ < 3)
                fprintf(stderr, "event %d: index gave %zu, definition %zu\n", e, n, j);
        }
    }
    CHECK_INT(mismatches, 0);
    CHECK(matched > 3000); /* the cases are not all empty */
    kb_matcher_destroy(m);
    kb_subs_fini(&subs);
}

/*
 * More matches than the router's old fixed arrays held (64, and 256 inside
 * the matcher): all of them come back, in file order, each once, even
 * where a NaN value meets a subscription through each value of its `in`;
 * an array too small is said so (max + 1), never passed off as complete.
 */
static void test_many_matches(void)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%s/many.yaml", dir);
    FILE *f = fopen(yaml, "w");
    fputs("subscriptions:\n", f);
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        fprintf(f, "  - name: m%d\n    purpose: {id: p, legal_basis: w}\n    types: [t.een]\n", i);
        if (i % 2)
            fputs("    filter: {field: {path: g, op: in, values: [\"1\", \"2\", \"3\"]}}\n", f);
    }
    fclose(f);
    struct kb_subs subs;
    char errstr[512] = "";
    CHECK_INT(kb_subs_load(yaml, NULL, 0, &subs, errstr, sizeof errstr), KB_OK);
    kb_matcher_t *m = kb_matcher_new(&subs);
    CHECK(m != NULL);
    struct kb_event_attrs a;
    memset(&a, 0, sizeof a);
    snprintf(a.type, sizeof a.type, "t.een");
    snprintf(a.source, sizeof a.source, "urn:a");
    const char *pairs[] = {"g", "nan", NULL};
    struct fake_payload fp = {pairs};
    const struct kb_sub *hits[N];
    size_t n = m ? kb_matcher_match(m, &a, 0, fake_get, &fp, hits, N) : 0;
    CHECK_INT((int)n, N);
    int in_order = 1;
    for (size_t i = 0; i < n; i++)
        in_order &= hits[i] == &subs.items[i];
    CHECK(in_order);
    /* g = 2: the unfiltered half and every `in` (one list each) */
    pairs[1] = "2";
    n = m ? kb_matcher_match(m, &a, 0, fake_get, &fp, hits, N) : 0;
    CHECK_INT((int)n, N);
    /* g = 7: only the unfiltered half */
    pairs[1] = "7";
    n = m ? kb_matcher_match(m, &a, 0, fake_get, &fp, hits, N) : 0;
    CHECK_INT((int)n, N / 2);
    pairs[1] = "nan";
    n = m ? kb_matcher_match(m, &a, 0, fake_get, &fp, hits, 10) : 0;
    CHECK_INT((int)n, 11);
    kb_matcher_destroy(m);
    kb_subs_fini(&subs);
}

/*
 * Ordered comparisons on digit strings (dates, codes) take a short way in
 * match.c; it must order exactly as the numbers do, which strtod computes
 * here independently: leading zeros, unequal lengths, up to 17 digits (past
 * 15 the short way hands over to strtod), and mixed with non-digit text.
 */
static void test_digit_comparisons(void)
{
    static const enum kb_filter_op ops[] = {KB_OP_EQ, KB_OP_NE, KB_OP_LT,
                                            KB_OP_LE, KB_OP_GT, KB_OP_GE};
    int wrong = 0, checked = 0;
    for (int round = 0; round < 20000; round++) {
        char a[24], b[32];
        char *sv[2] = {a, b};
        for (int k = 0; k < 2; k++) {
            size_t len = 1 + rnd(17), zeros = rnd(4) ? 0 : rnd((unsigned)len);
            for (size_t i = 0; i < len; i++)
                sv[k][i] = (char)(i < zeros ? '0' : '0' + rnd(10));
            sv[k][len] = 0;
        }
        if (round % 5 == 0) /* the same number spelled with other zeros */
            snprintf(b, sizeof b, "00%s", a);
        if (round % 97 == 0) /* text: compared as bytes */
            snprintf(b, sizeof b, "%.5sx", a);
        double da = strtod(a, NULL), db = strtod(b, NULL);
        int num = strspn(b, "0123456789") == strlen(b);
        int c = num ? (da < db ? -1 : da > db) : strcmp(a, b) < 0 ? -1 : strcmp(a, b) > 0;
        int want[] = {c == 0, c != 0, c < 0, c <= 0, c > 0, c >= 0};
        const char *pairs[] = {"g", a, NULL};
        struct fake_payload fp = {pairs};
        struct kb_event_attrs attrs;
        memset(&attrs, 0, sizeof attrs);
        for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
            char *vals[] = {b};
            struct kb_filter f = {.kind = KB_FILTER_FIELD, .path = "g", .op = ops[o],
                                  .values = vals, .n_values = 1};
            if (kb_filter_eval(&f, &attrs, fake_get, &fp) != want[o] && wrong++ < 3)
                fprintf(stderr, "compare %s with %s, op %zu: got %d\n", a, b, o, !want[o]);
            checked++;
        }
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(checked, 120000);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kb-test-match-%d", (int)getpid());
    mkdir(dir, 0700);
    static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    write_tmp("follow.csv", "# followed persons\n"
                            "bsn:999995303,2024-01-01,2024-06-01\n"
                            "999996204,,\n");
    const char *path = write_tmp("subs.yaml", subs_yaml);
    struct kb_subs subs;
    char errstr[512] = "";
    CHECK_INT(kb_subs_load(path, key, sizeof key, &subs, errstr, sizeof errstr), KB_OK);
    CHECK_STR(errstr, "");
    CHECK_INT(subs.n, 7);
    if (subs.n != 7)
        KB_TEST_DONE();
    CHECK_INT(subs.items[5].n_follow, 2);
    CHECK(kb_sub_receives(&subs.items[1], "inschrijving.gemeente"));
    CHECK(kb_sub_receives(&subs.items[1], "kind.geboortedatum"));
    CHECK(!kb_sub_receives(&subs.items[1], "kind.bsn"));
    CHECK(!kb_sub_receives(&subs.items[1], "kind.geboortedatumx"));
    CHECK(kb_sub_receives(&subs.items[0], "anything.at.all"));

    kb_matcher_t *m = kb_matcher_new(&subs);
    CHECK(m != NULL);

    static const char *const utrecht_nl[] = {"inschrijving.gemeente", "0344",
                                             "kind.geboorteland", "6030",
                                             "kind.geboortedatum", "20240315",
                                             "akte", "x", NULL};
    static const char *const rotterdam_abroad[] = {"inschrijving.gemeente", "0599",
                                                   "kind.geboorteland", "5010",
                                                   "kind.geboortedatum", "20231231", NULL};
    static const char *const unknown_land[] = {"inschrijving.gemeente", "0344",
                                               "kind.geboorteland", "0000",
                                               "kind.geboortedatum", "20240101", "akte", "x",
                                               NULL};
    static const char *const empty[] = {NULL};
    static const struct event_case cases[] = {
        {"Utrecht birth from gba", "nl.brp.persoon-geboren", "urn:nld:oin:1:systeem:gba",
         "a-1", "2024-03-18T09:00:00Z", NULL, utrecht_nl, "alle-geboorten,utrecht,recent"},
        {"Utrecht birth from another source", "nl.brp.persoon-geboren",
         "urn:nld:oin:2:systeem:x", "a-2", "2024-03-18T09:00:00Z", NULL, utrecht_nl,
         "alle-geboorten,prefix-suffix,recent"},
        {"born abroad, registered in Rotterdam, in 2023 (before valid_from)",
         "nl.brp.persoon-geboren", "urn:nld:oin:1:systeem:gba", "a-3", "2023-12-31T23:59:59Z",
         NULL, rotterdam_abroad, "alle-geboorten,buitenland,zonder-akte"},
        {"land 0000 is excluded by in; recent ends at valid_until",
         "nl.brp.persoon-geboren", "urn:nld:oin:1:systeem:gba", "b-0001",
         "2025-01-01T00:00:00Z", NULL, unknown_land, "alle-geboorten,utrecht,prefix-suffix"},
        {"kind-toegevoegd: no payload fields present", "nl.brp.kind-toegevoegd",
         "urn:nld:oin:1:systeem:gba", "c-1", "2024-03-18T09:00:00Z", NULL, empty, ""},
        {"followed subject inside its period", "nl.brp.persoon-geboren", "urn:nld:oin:9:x",
         "d-1", "2024-03-18T09:00:00Z", "999995303", empty,
         "alle-geboorten,volglijst,zonder-akte"},
        {"followed subject after its period", "nl.brp.persoon-geboren", "urn:nld:oin:9:x", "d-2",
         "2024-06-01T00:00:00Z", "999995303", empty, "alle-geboorten,zonder-akte"},
        {"open-ended follow entry", "nl.brp.persoon-geboren", "urn:nld:oin:9:x", "d-3",
         "2030-01-01T00:00:00Z", "999996204", empty, "alle-geboorten,volglijst,zonder-akte"},
        {"unfollowed subject", "nl.brp.persoon-geboren", "urn:nld:oin:9:x", "d-4",
         "2024-03-18T09:00:00Z", "999997105", empty, "alle-geboorten,zonder-akte"},
        {"unknown type", "nl.brp.persoon-overleden", "urn:nld:oin:1:systeem:gba", "e-1",
         "2024-03-18T09:00:00Z", NULL, utrecht_nl, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct event_case *c = &cases[i];
        struct kb_event_attrs a;
        memset(&a, 0, sizeof a);
        snprintf(a.type, sizeof a.type, "%s", c->type);
        snprintf(a.source, sizeof a.source, "%s", c->source);
        snprintf(a.id, sizeof a.id, "%s", c->id);
        snprintf(a.time, sizeof a.time, "%s", c->time);
        if (c->subject_bsn)
            kb_event_pseudonym(key, sizeof key, "bsn", c->subject_bsn, a.subject);
        int64_t t = 0;
        CHECK_INT(kb_parse_time(c->time, &t), KB_OK);
        struct fake_payload fp = {c->payload};
        const struct kb_sub *hits[16];
        size_t n = kb_matcher_match(m, &a, t, fake_get, &fp, hits, 16);
        char got[512] = "";
        for (size_t k = 0; k < n; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", k ? "," : "",
                     hits[k]->name);
        if (strcmp(got, c->expect) != 0)
            fprintf(stderr, "case %zu (%s)\n", i, c->what);
        CHECK_STR(got, c->expect);
    }
    kb_matcher_destroy(m);
    kb_subs_fini(&subs);
    test_index_equals_definition();
    test_many_matches();

    /* Strictness: each file must fail with its position and reason. */
    static const struct {
        const char *yaml;
        const char *expect;
    } bad[] = {
        {"subscriptions:\n  - name: a\n    purpose: {id: p, legal_basis: w}\n    types: [t]\n"
         "    fields: [kind.geboortedatum]\n"
         "    filter: {field: {path: kind.bsn, op: '=', value: '1'}}\n",
         "bad.yaml:6:13: filter on field \"kind.bsn\" which this subscriber may not receive"},
        {"subscriptions:\n  - name: a\n    purpose: {id: p, legal_basis: w}\n    types: [t]\n"
         "    filter: {exact: {sorce: x}}\n",
         "bad.yaml:5:22: unknown key \"sorce\" (did you mean \"source\"?)"},
        {"subscriptions:\n  - name: a\n    purpose: {id: p, legal_basis: w}\n    types: [t]\n"
         "    filter: {field: {path: a.b, op: '~', value: x}}\n",
         "bad.yaml:5:37: op must be one of"},
        {"subscriptions:\n  - name: a\n    purpose: {id: p, legal_basis: w}\n    types: [t]\n"
         "    filter: {all: []}\n",
         "bad.yaml:5:19: all needs a non-empty list of filters"},
        {"subscriptions:\n  - name: a\n    purpose: {id: p, legal_basis: w}\n    types: [t]\n"
         "    filter: {exact: {type: t}, prefix: {type: t}}\n",
         "bad.yaml:5:13: a filter is a mapping with exactly one dialect:"},
        {"subscriptions:\n  - name: a\n    purpose: {id: p, legal_basis: w}\n    types: [t]\n"
         "    fields: [x]\n    pseudonymise: [y]\n",
         "bad.yaml:2:5: pseudonymise names a field that is not in fields: y"},
        {"subscriptions:\n  - name: a\n    purpose: {id: p, legal_basis: w}\n    types: [t]\n"
         "    valid_from: 2024-13-01\n",
         "bad.yaml:5:17: valid_from must be a date"},
        {"subscriptions:\n  - name: a\n    purpose: {id: p, legal_basis: w}\n    types: [t]\n"
         "    delivery: {webhook: {url: 'http://x', secret_file: s}}\n",
         "bad.yaml:5:31: webhook.url must be https://"},
        {"subscriptions:\n  - name: a\n    purpose: {id: p, legal_basis: w}\n    types: [t]\n"
         "    follow: missing.csv\n",
         "bad.yaml:5:13: cannot open follow list"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = write_tmp("bad.yaml", bad[i].yaml);
        errstr[0] = '\0';
        CHECK_INT(kb_subs_load(p, key, sizeof key, &subs, errstr, sizeof errstr), KB_ERR_CONF);
        if (!strstr(errstr, bad[i].expect))
            fprintf(stderr, "bad case %zu: got \"%s\"\n", i, errstr);
        CHECK(strstr(errstr, bad[i].expect) != NULL);
        CHECK_INT(subs.n, 0);
    }
    /* A follow list entry with an invalid BSN names the line, not the value. */
    write_tmp("follow-bad.csv", "999995304,,\n");
    const char *p = write_tmp("bad.yaml", "subscriptions:\n  - name: a\n    purpose: {id: p, "
                                          "legal_basis: w}\n    types: [t]\n"
                                          "    follow: follow-bad.csv\n");
    CHECK_INT(kb_subs_load(p, key, sizeof key, &subs, errstr, sizeof errstr), KB_ERR_CONF);
    CHECK(strstr(errstr, "follow-bad.csv:1: follow list entry") != NULL);
    CHECK(strstr(errstr, "999995304") == NULL);

    /* kb_parse_time against known instants. */
    int64_t t;
    CHECK_INT(kb_parse_time("1970-01-01", &t), KB_OK);
    CHECK_INT(t, 0);
    CHECK_INT(kb_parse_time("2024-03-18T10:15:30.250+01:00", &t), KB_OK);
    CHECK_INT(t, 1710753330250LL);
    CHECK_INT(kb_parse_time("2000-02-29T00:00:00Z", &t), KB_OK);
    CHECK_INT(t, 951782400000LL);
    CHECK_INT(kb_parse_time("2023-02-29", &t), KB_ERR_INVALID);
    CHECK_INT(kb_parse_time("2024-03-18T10:15:30", &t), KB_ERR_INVALID);
    /* Impossible dates are refused, never moved to another day as timegm()
     * would (2026-02-31 to 3 March): a ce_time or a subscription's validity
     * date read so would judge an event by the wrong day. The envelope
     * check refuses such a ce_time (test_event); kb_gate_decision_time,
     * given one all the same, takes the wall clock. */
    t = -7;
    CHECK_INT(kb_parse_time("2026-02-31", &t), KB_ERR_INVALID);
    CHECK_INT(kb_parse_time("2026-02-31T10:00:00Z", &t), KB_ERR_INVALID);
    CHECK_INT(kb_parse_time("2026-04-31T10:00:00+01:00", &t), KB_ERR_INVALID);
    CHECK_INT(kb_parse_time("2026-13-01", &t), KB_ERR_INVALID);
    CHECK_INT(kb_parse_time("2026-00-01", &t), KB_ERR_INVALID);
    CHECK_INT(kb_parse_time("2026-03-00", &t), KB_ERR_INVALID);
    CHECK_INT(kb_parse_time("2026-03-01T24:00:00Z", &t), KB_ERR_INVALID);
    CHECK_INT(kb_parse_time("2026-03-01T23:60:00Z", &t), KB_ERR_INVALID);
    CHECK_INT(kb_parse_time("2026-03-01T10:00:00+24:00", &t), KB_ERR_INVALID); /* offset */
    CHECK_INT(kb_parse_time("2026-03-01T10:00:00-01:60", &t), KB_ERR_INVALID);
    CHECK_INT(t, -7);
    struct kb_event_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    snprintf(attrs.time, sizeof attrs.time, "2026-02-31T10:00:00Z");
    int64_t before = kb_wall_ms(), decided = kb_gate_decision_time(&attrs);
    CHECK(decided >= before && decided <= kb_wall_ms()); /* now, not 2026-03-03 */
    snprintf(attrs.time, sizeof attrs.time, "2026-02-28T10:00:00Z");
    CHECK_INT(kb_gate_decision_time(&attrs), 1772272800000LL);
    /* The envelope refuses a ce_time that is not an existing date-time. */
    char why[160];
    CHECK_INT(kb_gate_attrs_check(&attrs, why, sizeof why), KB_OK);
    static const char *const bad_times[] = {"2026-02-31T10:00:00Z", "gisteren", "2026-02-28",
                                            "2026-02-28T10:00:00", "2026-02-28T10:00:00+24:00"};
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        snprintf(attrs.time, sizeof attrs.time, "%s", bad_times[i]);
        why[0] = '\0';
        CHECK_INT(kb_gate_attrs_check(&attrs, why, sizeof why), KB_ERR_INVALID);
        CHECK(strstr(why, "ce_time is not an RFC 3339 date-time") != NULL);
    }
    attrs.time[0] = '\0'; /* no ce_time: allowed (optional in CloudEvents) */
    CHECK_INT(kb_gate_attrs_check(&attrs, why, sizeof why), KB_OK);
    test_digit_comparisons();
    CHECK_INT(kb_test_rm_tree(dir), 0);
    KB_TEST_DONE();
}
