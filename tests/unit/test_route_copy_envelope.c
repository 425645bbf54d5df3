/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_route_copy_envelope.c - what of an input's Kafka key and headers a
 * subscriber's copy carries (route.c stage_view, sub_view.c), against
 * librdkafka's mock cluster. Inputs may come from any producer with write
 * access to kb.in.*, so:
 *  - an event without ce_subject but with a key (a clear BSN here) reaches
 *    each subscriber under a keyed hash of that key, its own per
 *    subscriber, never the key as it came;
 *  - headers outside the envelope (an "x-bsn" here) are not passed on;
 *  - a ce_subject that is not a pseudonym, a repeated envelope header, and
 *    more than KB_GATE_MAX_HEADERS headers (so that one could hide past the
 *    ones read) are dead-lettered;
 *  - an event of ours keeps its per-subscriber pseudonym as key and
 *    ce_subject.
 * Two subscribers: one takes the whole event, one a projection.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kb_test.h"
#include "test_mock_kafka.h"
#include "test_birth_event.h"
#include "ketenbus/event.h"
#include "ketenbus/gate.h"
#include "ketenbus/kafka.h"
#include "ketenbus/route.h"
#include "ketenbus/schema.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (via kafka.h) */

#define CLEAR_BSN "999995303" /* a test BSN, standing for what must not leak */

static uint8_t subject_key[32]; /* a fixed test key, set in main(); never a secret */

enum kind {
    NO_SUBJECT,    /* key = clear BSN, no ce_subject, an x-bsn header: routed */
    CLEAR_SUBJECT, /* ce_subject = clear BSN: dead-lettered */
    TWO_IDS,       /* ce_id twice: dead-lettered */
    MANY_HEADERS,  /* KB_GATE_MAX_HEADERS padding headers, then ce_subject: dead-lettered */
    OURS,          /* as an adapter makes it: routed */
};

static void produce(rd_kafka_t *rk, const char *topic, const struct kb_schema *schema,
                    enum kind kind)
{
    size_t len;
    static const char *const parent[] = {"999990019"};
    uint8_t *value = test_birth_value(schema, CLEAR_BSN, parent, 1, "copy-envelope", &len);
    if (!value)
        exit(2);
    struct kb_event_attrs a;
    memset(&a, 0, sizeof a);
    char name[32];
    snprintf(name, sizeof name, "copy-envelope-%d", (int)kind);
    kb_event_uuid5(name, strlen(name), a.id);
    snprintf(a.source, sizeof a.source, "urn:nld:oin:00000099999999999000:systeem:unit-test");
    snprintf(a.type, sizeof a.type, "nl.brp.persoon-geboren");
    kb_event_time(1710500000000, a.time);
    if (kind == OURS)
        kb_event_pseudonym(subject_key, sizeof subject_key, "bsn", CLEAR_BSN, a.subject);
    struct kb_header hdrs[KB_EVENT_MAX_HEADERS];
    char seqbuf[24];
    size_t nh = kb_event_headers(&a, hdrs, seqbuf);
    rd_kafka_headers_t *h = kb_kafka_headers_new(hdrs, nh);
    const char *key = kind == OURS ? a.subject : CLEAR_BSN;
    switch (kind) {
    case NO_SUBJECT: rd_kafka_header_add(h, "x-bsn", -1, CLEAR_BSN, -1); break;
    case CLEAR_SUBJECT: rd_kafka_header_add(h, "ce_subject", -1, CLEAR_BSN, -1); break;
    case TWO_IDS: rd_kafka_header_add(h, "ce_id", -1, "another-id", -1); break;
    case MANY_HEADERS:
        for (int i = 0; i < KB_GATE_MAX_HEADERS; i++)
            rd_kafka_header_add(h, "x-pad", -1, "p", -1);
        rd_kafka_header_add(h, "ce_subject", -1, CLEAR_BSN, -1);
        break;
    case OURS: break;
    }
    CHECK_INT(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_HEADERS(h),
                                RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* One copy as read back: key and ce_subject, and whether an x-* header came. */
struct copy {
    char key[64], subject[64];
    int extra;
};

struct copies {
    struct copy *v;
    size_t n, max;
};

static int take_copy(const rd_kafka_message_t *m, void *opaque)
{
    struct copies *cs = opaque;
    if (cs->n == cs->max)
        return 0;
    struct copy *c = &cs->v[cs->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->key, sizeof c->key, "%.*s", (int)m->key_len, m->key ? (const char *)m->key : "");
    rd_kafka_headers_t *h = NULL;
    const void *s = NULL;
    size_t sl = 0;
    if (!rd_kafka_message_headers(m, &h) && !rd_kafka_header_get_last(h, "ce_subject", &s, &sl) &&
        s)
        snprintf(c->subject, sizeof c->subject, "%.*s", (int)sl, (const char *)s);
    const char *name;
    const void *val;
    size_t vl;
    for (size_t k = 0; h && !rd_kafka_header_get_all(h, k, &name, &val, &vl); k++)
        c->extra |= !strncmp(name, "x-", 2);
    return 0;
}

/* Read the (committed) messages of @p topic [0] into @p out; their number. */
static size_t read_topic(const struct kb_kafka_opts *ko, const char *topic, struct copy *out,
                         size_t max)
{
    struct copies cs = {out, 0, max};
    test_read_partition(ko, topic, RD_KAFKA_OFFSET_BEGINNING, "copy-envelope-reader", 1, take_copy,
                        &cs);
    return cs.n;
}

static int pseudonym_shaped(const char *s)
{
    if (strlen(s) != KB_PSEUDONYM_LEN)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

int main(void)
{
    char errstr[512], path[1200], in_topic[160], out_alle[160], out_datum[160], dlq[160];
    char tmpdir[] = "/tmp/kb-test-copy-envelope-XXXXXX";
    CHECK(mkdtemp(tmpdir) != NULL);
    memset(subject_key, 0x5a, sizeof subject_key);
    setenv("KETENBUS_TOPIC_PREFIX", "ce", 1);
    kb_topic_name(in_topic, sizeof in_topic, "in.gba");
    kb_topic_name(out_alle, sizeof out_alle, "out.alle");
    kb_topic_name(out_datum, sizeof out_datum, "out.datum");
    kb_topic_name(dlq, sizeof dlq, "dlq");
    const char *src = getenv("KB_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/schemas", src ? src : ".");
    kb_schemas_t *schemas = kb_schemas_load_dir(path, errstr, sizeof errstr);
    CHECK(schemas != NULL);
    if (!schemas)
        return 1;
    const struct kb_schema *birth = kb_schemas_by_type(schemas, "nl.brp.persoon-geboren");
    snprintf(path, sizeof path, "%s/subs.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("subscriptions:\n"
          "  - name: alle\n"
          "    purpose: {id: p1, legal_basis: \"test\"}\n"
          "    types: [nl.brp.persoon-geboren]\n"
          "  - name: datum\n"
          "    purpose: {id: p2, legal_basis: \"test\"}\n"
          "    types: [nl.brp.persoon-geboren]\n"
          "    fields: [kind.geboortedatum]\n",
          f);
    fclose(f);

    rd_kafka_t *mrk;
    rd_kafka_mock_cluster_t *mc = test_mock_cluster(1, &mrk);
    rd_kafka_mock_topic_create(mc, in_topic, 1, 1);
    rd_kafka_mock_topic_create(mc, out_alle, 1, 1);
    rd_kafka_mock_topic_create(mc, out_datum, 1, 1);
    rd_kafka_mock_topic_create(mc, dlq, 1, 1);
    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    kb_kafka_opts_set(&ko, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);

    rd_kafka_conf_t *pc = kb_kafka_conf_new(&ko, errstr, sizeof errstr);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    for (int k = NO_SUBJECT; k <= OURS; k++)
        produce(prod, in_topic, birth, (enum kind)k);
    CHECK_INT(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(prod);

    struct kb_route_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.kafka = &ko;
    ro.subs_path = path;
    ro.subject_key = subject_key;
    ro.subject_key_len = sizeof subject_key;
    ro.schemas = schemas;
    ro.batch_max = 10;
    ro.no_audit = 1;
    ro.no_register_projections = 1;
    ro.instance = "copy-envelope";
    struct router_thread t;
    CHECK_INT(router_start(&t, &ro), 0);
    if (!t.r)
        return 1;
    const struct kb_route_stats *st = kb_router_stats(t.r);
    for (int i = 0; i < 300 && atomic_load(&st->delivered) + atomic_load(&st->dead_letters) < 7;
         i++)
        usleep(100000);
    usleep(500000); /* the last transaction's commit */
    CHECK_INT(atomic_load(&st->delivered), 4); /* 2 routed events x 2 subscribers */
    CHECK_INT(atomic_load(&st->dead_letters), 3);
    router_stop(&t);
    CHECK_INT(t.result, KB_OK);

    struct copy alle[8], datum[8], dead[8];
    size_t na = read_topic(&ko, out_alle, alle, 8), nd = read_topic(&ko, out_datum, datum, 8);
    CHECK_INT(na, 2);
    CHECK_INT(nd, 2);
    CHECK_INT(read_topic(&ko, dlq, dead, 8), 3);
    if (na == 2 && nd == 2) {
        /* the event without ce_subject: a per-subscriber hash of its key */
        CHECK(pseudonym_shaped(alle[0].key));
        CHECK(pseudonym_shaped(datum[0].key));
        CHECK(strcmp(alle[0].key, datum[0].key) != 0);
        CHECK_STR(alle[0].subject, "");
        CHECK_STR(datum[0].subject, "");
        /* the event of ours: per-subscriber pseudonyms, key = ce_subject */
        CHECK(pseudonym_shaped(alle[1].key));
        CHECK_STR(alle[1].subject, alle[1].key);
        CHECK_STR(datum[1].subject, datum[1].key);
        CHECK(strcmp(alle[1].key, datum[1].key) != 0);
        for (size_t i = 0; i < 2; i++) {
            CHECK(!strstr(alle[i].key, CLEAR_BSN) && !strstr(datum[i].key, CLEAR_BSN));
            CHECK(!alle[i].extra && !datum[i].extra);
        }
    }
    kb_kafka_opts_fini(&ko);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    kb_schemas_destroy(schemas);
    unlink(path);
    rmdir(tmpdir);
    KB_TEST_DONE();
}
