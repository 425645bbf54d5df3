/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_sub_view_headers.c - the headers of a subscriber's copy: the
 * original envelope headers in their order (any other header, "kb_empty"
 * here, left out: it is nobody's to pass on), ce_subject replaced by the
 * subscriber's pseudonym, each replacement header taking the place of every header of
 * its name (appended after the kept ones), null values kept null, and no
 * original headers at all; the list read once and copied for several
 * subscribers (the router), also past the 16 headers kept inline.
 */
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kb_test.h"
#include "sub_view.h"

/* "name=value" of header @p i, "name" for a null value, "" past the end. */
static void nth(const rd_kafka_headers_t *h, size_t i, char *out, size_t cap)
{
    const char *name;
    const void *val;
    size_t size;
    if (rd_kafka_header_get_all(h, i, &name, &val, &size)) {
        out[0] = 0;
        return;
    }
    if (val)
        snprintf(out, cap, "%s=%.*s", name, (int)size, (const char *)val);
    else
        snprintf(out, cap, "%s", name);
}

static void expect(const rd_kafka_headers_t *h, const char *const *want, size_t n)
{
    char got[256];
    CHECK_INT((int)rd_kafka_header_cnt(h), (int)n);
    for (size_t i = 0; i < n; i++) {
        nth(h, i, got, sizeof got);
        CHECK_STR(got, want[i]);
    }
}

static rd_kafka_headers_t *original(void)
{
    rd_kafka_headers_t *o = rd_kafka_headers_new(8);
    rd_kafka_header_add(o, "ce_specversion", -1, "1.0", -1);
    rd_kafka_header_add(o, "ce_id", -1, "id-1", -1);
    rd_kafka_header_add(o, "ce_subject", -1, "bus-pseudonym", -1);
    rd_kafka_header_add(o, "ce_type", -1, "nl.brp.persoon-geboren", -1);
    rd_kafka_header_add(o, "kb_empty", -1, NULL, 0);
    rd_kafka_header_add(o, "ce_id", -1, "id-dup", -1); /* a second of one name */
    return o;
}

/* The copy's headers from original() with @p pseudonym and @p set must be
 * @p want; the original is left as it was. */
static void check_from_original(const char *pseudonym, const struct kb_header *set, size_t n_set,
                                const char *const *want, size_t n_want)
{
    rd_kafka_headers_t *o = original();
    rd_kafka_headers_t *h = kb__sub_view_headers_from(o, pseudonym, set, n_set);
    expect(h, want, n_want);
    rd_kafka_headers_destroy(h);
    CHECK_INT((int)rd_kafka_header_cnt(o), 6);
    rd_kafka_headers_destroy(o);
}

static void test_pseudonym_only(void)
{
    const char *want[] = {"ce_specversion=1.0", "ce_id=id-1", "ce_type=nl.brp.persoon-geboren",
                          "ce_id=id-dup", "ce_subject=sub-pseudonym"};
    check_from_original("sub-pseudonym", NULL, 0, want, sizeof want / sizeof want[0]);
}

static void test_no_pseudonym_keeps_subject(void)
{
    const char *want[] = {"ce_specversion=1.0", "ce_id=id-1", "ce_subject=bus-pseudonym",
                          "ce_type=nl.brp.persoon-geboren", "ce_id=id-dup"};
    check_from_original("", NULL, 0, want, sizeof want / sizeof want[0]);
}

static void test_replacements(void)
{
    struct kb_header set[] = {{"ce_id", "new-id", 6}, {"kb_replay_id", "r1", 2}};
    /* both ce_id headers go; the replacements follow ce_subject */
    const char *want[] = {"ce_specversion=1.0", "ce_type=nl.brp.persoon-geboren", "ce_subject=p",
                          "ce_id=new-id", "kb_replay_id=r1"};
    check_from_original("p", set, 2, want, sizeof want / sizeof want[0]);
}

/* Traceparents as the envelope check takes them: one that is not W3C
 * trace context is left out, and of two valid ones the first travels. */
static void test_traceparent(void)
{
    const char *tp1 = "00-36d522692359568486c0d9789b7c9c9c-36d5226923595684-01";
    const char *tp2 = "00-46d522692359568486c0d9789b7c9c9c-46d5226923595684-01";
    rd_kafka_headers_t *o = rd_kafka_headers_new(4);
    rd_kafka_header_add(o, "traceparent", -1, "not-a-trace", -1);
    rd_kafka_header_add(o, "traceparent", -1, tp1, -1);
    rd_kafka_header_add(o, "traceparent", -1, tp2, -1);
    rd_kafka_headers_t *h = kb__sub_view_headers_from(o, NULL, NULL, 0);
    char want[80];
    snprintf(want, sizeof want, "traceparent=%s", tp1);
    const char *w[] = {want};
    expect(h, w, 1);
    rd_kafka_headers_destroy(h);
    rd_kafka_headers_destroy(o);
}

static void test_no_original(void)
{
    struct kb_header set[] = {{"kb_x", "1", 1}};
    rd_kafka_headers_t *h = kb__sub_view_headers_from(NULL, "p", set, 1);
    const char *want[] = {"ce_subject=p", "kb_x=1"};
    expect(h, want, 2);
    rd_kafka_headers_destroy(h);
    h = kb__sub_view_headers_from(NULL, NULL, NULL, 0);
    CHECK_INT((int)rd_kafka_header_cnt(h), 0);
    rd_kafka_headers_destroy(h);
}

/* One read list, copies for two subscribers and one without a pseudonym:
 * each as kb__sub_view_headers_from() makes it, the pseudonym taken by its
 * length (the router's keys are not NUL-terminated). */
static void test_read_once(void)
{
    rd_kafka_headers_t *o = original();
    struct kb__in_headers in = {.of = NULL};
    CHECK_INT(kb__in_headers_read(&in, o, o), KB_OK);
    CHECK(in.of == o);
    CHECK(in.h == in.inline_h);
    rd_kafka_headers_t *h = kb__in_headers_copy(&in, "sub-pseudonymXXX", 13, NULL, 0);
    const char *want1[] = {"ce_specversion=1.0", "ce_id=id-1", "ce_type=nl.brp.persoon-geboren",
                           "ce_id=id-dup", "ce_subject=sub-pseudonym"};
    expect(h, want1, 5);
    rd_kafka_headers_destroy(h);
    h = kb__in_headers_copy(&in, "other", 5, NULL, 0);
    const char *want2[] = {"ce_specversion=1.0", "ce_id=id-1", "ce_type=nl.brp.persoon-geboren",
                           "ce_id=id-dup", "ce_subject=other"};
    expect(h, want2, 5);
    rd_kafka_headers_destroy(h);
    h = kb__in_headers_copy(&in, NULL, 0, NULL, 0);
    const char *want3[] = {"ce_specversion=1.0", "ce_id=id-1", "ce_subject=bus-pseudonym",
                           "ce_type=nl.brp.persoon-geboren", "ce_id=id-dup"};
    expect(h, want3, 5);
    rd_kafka_headers_destroy(h);
    kb__in_headers_fini(&in);
    rd_kafka_headers_destroy(o);
}

/* 40 headers (more than kept inline), ce_subject and five ce_datarefs
 * among them (the envelope: kept; the gate refuses such repeats, the copy
 * does not judge them); the same list read again after a short one reuses
 * the buffer. */
static void test_many_headers(void)
{
    rd_kafka_headers_t *o = rd_kafka_headers_new(40);
    char name[32], value[32], want_s[40][64];
    const char *want[40];
    size_t n_want = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, i == 17 ? "ce_subject" : i % 8 ? "kb_h%02d" : "ce_dataref", i);
        snprintf(value, sizeof value, "v%d", i);
        rd_kafka_header_add(o, name, -1, value, -1);
        if (i != 17 && i % 8 == 0) {
            snprintf(want_s[n_want], sizeof want_s[0], "%s=%s", name, value);
            want[n_want] = want_s[n_want];
            n_want++;
        }
    }
    snprintf(want_s[n_want], sizeof want_s[0], "ce_subject=p");
    want[n_want] = want_s[n_want];
    n_want++;
    rd_kafka_headers_t *h = kb__sub_view_headers_from(o, "p", NULL, 0);
    expect(h, want, n_want);
    rd_kafka_headers_destroy(h);
    struct kb__in_headers in = {.of = NULL};
    CHECK_INT(kb__in_headers_read(&in, o, o), KB_OK);
    CHECK(in.h != in.inline_h);
    CHECK_INT((int)in.n, 40);
    rd_kafka_headers_t *small = original();
    CHECK_INT(kb__in_headers_read(&in, small, small), KB_OK);
    CHECK_INT((int)in.n, 6);
    CHECK(in.of == small);
    h = kb__in_headers_copy(&in, "p", 1, NULL, 0);
    CHECK_INT((int)rd_kafka_header_cnt(h), 5);
    rd_kafka_headers_destroy(h);
    CHECK_INT(kb__in_headers_read(&in, NULL, NULL), KB_OK);
    CHECK_INT((int)in.n, 0);
    kb__in_headers_fini(&in);
    rd_kafka_headers_destroy(small);
    rd_kafka_headers_destroy(o);
}

int main(void)
{
    test_pseudonym_only();
    test_no_pseudonym_keeps_subject();
    test_replacements();
    test_traceparent();
    test_no_original();
    test_read_once();
    test_many_headers();
    KB_TEST_DONE();
}
