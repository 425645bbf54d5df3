/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_follow_topic_reload.c - follow topics across a reload, against
 * librdkafka's mock cluster: the router loads the new set's follow topics
 * before it knows whether the new set takes over (matcher, output topics,
 * projections may still fail). Loading them must not make the handle forget
 * the topics of the set still in force, or that set's lists stop being
 * refreshed (follow_topic.c invariant 4); kb_follow_topics_retain() forgets
 * them once the new set is in force.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kb_test.h"
#include "test_mock_kafka.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/sub.h"
#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h (via kafka.h) */

static char dir[256];

/* One subscription "name" following topic <prefix>.follow.@p topic. */
static void load_set(const char *name, const char *topic, struct kb_subs *subs)
{
    char path[512], yaml[512], errstr[512] = "";
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    snprintf(yaml, sizeof yaml,
             "subscriptions:\n"
             "  - name: %s\n"
             "    purpose: {id: toezicht, legal_basis: test}\n"
             "    types: [nl.brp.persoon-geboren]\n"
             "    follow: {topic: %s}\n",
             name, topic);
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    CHECK_INT(kb_subs_load(path, NULL, 0, subs, errstr, sizeof errstr), KB_OK);
    unlink(path);
}

/* Follow the person with fictitious BSN @p bsn from 2020 on, in @p topic. */
static void follow(rd_kafka_t *producer, const char *topic, const char *bsn)
{
    static const uint8_t key[32] = "test-subject-key-not-a-secret!!";
    char pseudonym[KB_PSEUDONYM_LEN + 1];
    CHECK_INT(kb_event_pseudonym(key, sizeof key, "bsn", bsn, pseudonym), KB_OK);
    CHECK_INT(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_KEY(pseudonym, KB_PSEUDONYM_LEN),
                                RD_KAFKA_V_VALUE("2020-01-01,", 11), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    CHECK_INT(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kb-test-follow-reload-%d", (int)getpid());
    CHECK_INT(mkdir(dir, 0700), 0);
    char errstr[512];
    rd_kafka_t *mrk;
    rd_kafka_mock_cluster_t *mc = test_mock_cluster(1, &mrk);
    if (!mc)
        KB_TEST_DONE();
    char topic_old[128], topic_new[128];
    kb_topic_name(topic_old, sizeof topic_old, "follow.oud");
    kb_topic_name(topic_new, sizeof topic_new, "follow.nieuw");
    rd_kafka_mock_topic_create(mc, topic_old, 1, 1);
    rd_kafka_mock_topic_create(mc, topic_new, 1, 1);

    struct kb_kafka_opts ko;
    kb_kafka_opts_init(&ko);
    kb_kafka_opts_set(&ko, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), NULL, 0);
    rd_kafka_conf_t *pconf = kb_kafka_conf_new(&ko, errstr, sizeof errstr);
    rd_kafka_t *producer =
        pconf ? rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, sizeof errstr) : NULL;
    CHECK(producer != NULL);
    if (!producer)
        KB_TEST_DONE();
    follow(producer, topic_old, "999995303");

    struct kb_subs in_force, fresh;
    load_set("oud", "oud", &in_force);
    load_set("nieuw", "nieuw", &fresh);
    kb_follow_topics_t *ft = kb_follow_topics_new(&ko);
    CHECK_INT(kb_follow_topics_load(ft, &in_force, errstr, sizeof errstr), KB_OK);
    CHECK_INT(in_force.items[0].n_follow, 1);

    /* A reload: the new set's lists load, then the take-over fails and
     * the old set stays in force. */
    CHECK_INT(kb_follow_topics_load(ft, &fresh, errstr, sizeof errstr), KB_OK);
    kb_subs_fini(&fresh);

    /* The old set's topic changes: its refresh must still see that. */
    follow(producer, topic_old, "999996204");
    CHECK_INT(kb_follow_topics_refresh(ft, &in_force, 1000000, 0), 1);
    CHECK_INT(in_force.items[0].n_follow, 2);

    /* A reload that takes over: the old topic is forgotten. */
    load_set("nieuw", "nieuw", &fresh);
    CHECK_INT(kb_follow_topics_load(ft, &fresh, errstr, sizeof errstr), KB_OK);
    kb_follow_topics_retain(ft, &fresh);
    kb_subs_fini(&in_force);
    follow(producer, topic_old, "999997105");
    CHECK_INT(kb_follow_topics_refresh(ft, &fresh, 2000000, 0), 0);
    follow(producer, topic_new, "999995303");
    CHECK_INT(kb_follow_topics_refresh(ft, &fresh, 3000000, 0), 1);
    CHECK_INT(fresh.items[0].n_follow, 1);
    kb_subs_fini(&fresh);

    kb_follow_topics_destroy(ft);
    rd_kafka_destroy(producer);
    kb_kafka_opts_fini(&ko);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    rmdir(dir);
    KB_TEST_DONE();
}
