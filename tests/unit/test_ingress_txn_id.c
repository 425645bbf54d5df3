/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_ingress_txn_id.c - the transactional.id of a transactional ingress
 * (the Kadaster adapter's): the same for a restart of the same adapter, so
 * that the restart fences its predecessor; with --instance the same under
 * another host name (a container's changes at every start), and the same as
 * before for a NAME equal to the host name it had; different for another
 * instance, spool or topic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ingress.h"
#include "kb_test.h"
#include "ketenbus/kafka.h"

static void id(const char *instance, const char *state_dir, const char *topic, const char *host,
               char out[160])
{
    struct kb_ingress_opts o = {.source = "kadaster",
                                .state_dir = state_dir,
                                .transactional = 1,
                                .instance = instance};
    kb__ingress_txn_id(&o, topic, host, out, 160);
}

int main(void)
{
    const char *topic = "kb.in.kadaster", *spool = "/var/lib/ketenbus/kadaster";
    char a[160], b[160], c[160], d[160];

    /* the form: under the topic prefix, 16 hex digits of a SHA-256 */
    id(NULL, spool, topic, "host-a", a);
    char want[80];
    snprintf(want, sizeof want, "%s-kadaster-ingress-", kb_topic_prefix());
    CHECK(!strncmp(a, want, strlen(want)));
    CHECK_INT(strlen(a), strlen(want) + 16);
    CHECK_INT(strspn(a + strlen(want), "0123456789abcdef"), 16);

    /* without --instance: the host name decides */
    id(NULL, spool, topic, "host-a", b);
    CHECK_STR(a, b);
    id(NULL, spool, topic, "host-b", c);
    CHECK(strcmp(a, c) != 0);

    /* with --instance: the host name no longer counts */
    id("kadaster-1", spool, topic, "host-a", b);
    id("kadaster-1", spool, topic, "host-b", c);
    CHECK_STR(b, c);
    CHECK(strcmp(a, b) != 0);
    id("kadaster-2", spool, topic, "host-a", d);
    CHECK(strcmp(b, d) != 0);

    /* a NAME equal to the host name keeps the id the adapter had */
    id("host-a", spool, topic, "host-z", b);
    CHECK_STR(a, b);

    /* another spool or topic: another adapter, another id */
    id("kadaster-1", "/var/lib/ketenbus/kadaster-2", topic, "host-a", b);
    id("kadaster-1", spool, topic, "host-a", c);
    CHECK(strcmp(b, c) != 0);
    id("kadaster-1", spool, "kb.in.kadaster-test", "host-a", b);
    CHECK(strcmp(b, c) != 0);

    KB_TEST_DONE();
}
