/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus-svb - the SVB child-benefit adapter. Egress: consumes SVB's
 * subscriber topic and writes AKW01 invitation records (ketenbus's own
 * fixed-width design, see README.md) to its spool's out/ folder for SVB's
 * legacy systems. Ingest: reads AKW02 applications from a spool folder
 * and/or the shared TCP transport and publishes them to <prefix>.in.svb.
 */
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter.h"
#include "egress.h"
#include "ingress.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/log.h"
#include "svb_ingest.h"
#include "svb_join.h"
#include "tcp.h"

#define COMP "svb"

enum {
    OPT_TOPIC = KB_OPT_FIRST_OWN,
    OPT_GROUP,
    OPT_KANAAL,
    OPT_IDLE_EXIT,
    OPT_TCP,
    OPT_TCP_BIND,
};

#define ACK_TIMEOUT_MS 30000

static const char usage[] =
    "usage: ketenbus-svb egress --spool DIR --subject-key-file FILE [options]\n"
    "       ketenbus-svb ingest --spool DIR --subject-key-file FILE [--tcp PORT] [options]\n"
    "\n"
    "egress: consumes SVB's subscriber topic and writes one AKW01 invitation\n"
    "record (160 bytes + newline) per new child, for both parents together, to\n"
    "DIR/out/<kenmerk>.akw01 once nl.brp.persoon-geboren and a parent's\n"
    "nl.brp.kind-toegevoegd have arrived. A later child born in NL is marked\n"
    "automatic (verwerking A), a child born abroad flagged (buitenland J).\n"
    "  --topic T         subscriber topic (default <prefix>.out.svb-kinderbijslag)\n"
    "  --group G         consumer group (default <prefix>-svb)\n"
    "  --kanaal D|P      D: digital (Mijn SVB), P: paper (default D)\n"
    "  --idle-exit MS    exit after MS milliseconds without events while partitions\n"
    "                    are assigned (an error when none are for MS + the session\n"
    "                    timeout + 15 s), 1 to 86400000 (tests, batch runs)\n"
    "\n"
    "ingest: reads AKW02 applications (one record per line) from DIR/in and\n"
    "publishes nl.kinderbijslag.aanvraag-ontvangen to <prefix>.in.svb; a file\n"
    "moves to DIR/done after Kafka acknowledged it. Refused records go to\n"
    "<prefix>.quarantine.svb and DIR/quarantine with the rule and reason.\n"
    "  --tcp PORT        also accept AKW02 records as length-prefixed TCP frames\n"
    "                    (adapters/common/tcp.h: answer A, R or N per frame)\n"
    "  --tcp-bind HOST   address to listen on (default 127.0.0.1)\n"
    "\n";

static kb_err_t render(void *opaque, const struct kb_event_attrs *attrs,
                       const struct kb_schema *schema, const uint8_t *payload, size_t len,
                       char *errstr, size_t errstr_size, char *detail, size_t detail_size)
{
    (void)detail, (void)detail_size; /* SVB's egress has no peer to answer it */
    return kb_svb_handle(opaque, attrs, schema, payload, len, errstr, errstr_size);
}

/* What the egress command's own options set. */
struct egress_args {
    const char *topic, *group;
    char kanaal;
    int idle_exit;
};

static int egress_opt(void *ctx, int opt, const char *arg)
{
    struct egress_args *ea = ctx;
    switch (opt) {
    case OPT_TOPIC: ea->topic = arg; return 0;
    case OPT_GROUP: ea->group = arg; return 0;
    case OPT_IDLE_EXIT: return kb_adapter_idle_exit_opt(arg, &ea->idle_exit);
    case OPT_KANAAL:
        if (strcmp(arg, "D") && strcmp(arg, "P")) {
            fprintf(stderr, "error: --kanaal must be D or P\n");
            return 2;
        }
        ea->kanaal = arg[0];
        return 0;
    }
    return 2;
}

static int cmd_egress(int argc, char **argv)
{
    static const struct option own[] = {{"topic", required_argument, NULL, OPT_TOPIC},
                                        {"group", required_argument, NULL, OPT_GROUP},
                                        {"kanaal", required_argument, NULL, OPT_KANAAL},
                                        {"idle-exit", required_argument, NULL, OPT_IDLE_EXIT},
                                        {NULL, 0, NULL, 0}};
    char default_topic[160], default_group[160];
    kb_topic_name(default_topic, sizeof default_topic, "out.svb-kinderbijslag");
    snprintf(default_group, sizeof default_group, "%s-svb", kb_topic_prefix());
    struct egress_args ea = {default_topic, default_group, 'D', 0};
    static atomic_int stop;
    const struct kb_adapter_cmd cmd = {.usage = usage, .own = own, .own_opt = egress_opt,
                                       .ctx = &ea, .comp = COMP, .stop = &stop,
                                       .stop_effect = KB_ADAPTER_EGRESS_STOP_EFFECT};
    struct kb_adapter_run run;
    int rc = kb_adapter_cmd_start(&cmd, argc, argv, &run);
    if (rc >= 0)
        goto out;
    rc = 1;
    if (kb_adapter_stop_signals(&cmd))
        goto out;
    char errstr[512];
    struct kb_svb svb;
    if (kb_svb_init(&svb, &run.spool, run.key, run.key_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    svb.kanaal = ea.kanaal;
    struct kb_egress_opts eo = {&run.args.kafka, run.schemas, ea.topic, ea.group,
                                &svb.spool,      render,      &svb,     ea.idle_exit};
    if (kb_egress_run(&eo, &stop, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out;
    }
    KB_LOG_INFO(COMP, "adapter stopped", "akw01_written=%zu", svb.written);
    rc = 0;
out:
    kb_adapter_cmd_end(&run);
    return rc;
}

/* The ingest side: one kb_ingress_t shared by the spool loop and the TCP
 * thread, one caller at a time (its delivery-report wait is per caller).
 * The lock is held per Kafka call (kb_svb_ingest_lock), not per file: a long
 * file must not leave TCP senders without an answer. */
struct ingest {
    struct kb_svb_ingest_ctx ctx;
    kb_ingress_t *ing;
    pthread_mutex_t lock;
    kb_tcp_server_t *tcp;
    atomic_int *stop;
};

static enum kb_tcp_verdict on_frame(void *opaque, const uint8_t *frame, size_t len,
                                    const char *peer, char *reason, size_t reason_size)
{
    struct ingest *in = opaque;
    (void)peer;
    char v = kb_svb_ingest_frame(&in->ctx, in->ing, frame, len, reason, reason_size);
    return v == 'A' ? KB_TCP_ACK : v == 'R' ? KB_TCP_REJECT : KB_TCP_NACK;
}

static void *tcp_thread(void *opaque)
{
    struct ingest *in = opaque;
    char errstr[256];
    if (kb_tcp_server_run(in->tcp, in->stop, errstr, sizeof errstr)) {
        KB_LOG_ERR(COMP, "TCP listener failed; stopping", "error=\"%s\"", errstr);
        atomic_store(in->stop, 1);
    }
    return NULL;
}

/* What the ingest command's own options set. */
struct ingest_args {
    const char *tcp_bind;
    int tcp_port; /* -1: no TCP listener */
};

static int ingest_opt(void *ctx, int opt, const char *arg)
{
    struct ingest_args *ia = ctx;
    if (opt == OPT_TCP_BIND) {
        ia->tcp_bind = arg;
        return 0;
    }
    if (opt == OPT_TCP) {
        char errstr[256];
        long long p = 0;
        if (kb_cli_long("--tcp", arg, 0, 65535, &p, errstr, sizeof errstr)) {
            fprintf(stderr, "error: %s\n", errstr);
            return 2;
        }
        ia->tcp_port = (int)p;
        return 0;
    }
    return 2;
}

static int cmd_ingest(int argc, char **argv)
{
    static const struct option own[] = {{"tcp", required_argument, NULL, OPT_TCP},
                                        {"tcp-bind", required_argument, NULL, OPT_TCP_BIND},
                                        {NULL, 0, NULL, 0}};
    struct ingest_args ia = {"127.0.0.1", -1};
    static atomic_int stop;
    const struct kb_adapter_cmd cmd = {.usage = usage, .own = own, .own_opt = ingest_opt,
                                       .ctx = &ia, .comp = COMP, .stop = &stop,
                                       .stop_effect = KB_ADAPTER_INGEST_STOP_EFFECT};
    struct kb_adapter_run run;
    int rc = kb_adapter_cmd_start(&cmd, argc, argv, &run);
    if (rc >= 0)
        goto out_run;
    rc = 1;
    char errstr[512], source[160];
    kb_adapter_source(&run.args, "ketenbus-svb", source, sizeof source);
    struct ingest in = {{run.schemas, run.key, run.key_len, source}, NULL,
                        PTHREAD_MUTEX_INITIALIZER, NULL, &stop};
    kb_svb_ingest_lock = &in.lock;
    struct kb_ingress_opts iopts = {
        .kafka = &run.args.kafka, .source = "svb", .state_dir = run.spool.dir, .partitions = 3};
    in.ing = kb_ingress_new(&iopts, errstr, sizeof errstr);
    if (!in.ing) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_run;
    }
    if (kb_adapter_stop_signals(&cmd))
        goto out_ing;
    pthread_t tcp_tid;
    int tcp_started = 0;
    if (ia.tcp_port >= 0) {
        struct kb_tcp_server_opts topts = {.bind_host = ia.tcp_bind, .port = ia.tcp_port,
                                           .max_frame = KB_AKW02_MAX_LEN + 2,
                                           .on_frame = on_frame, .opaque = &in};
        in.tcp = kb_tcp_server_new(&topts, errstr, sizeof errstr);
        if (!in.tcp) {
            fprintf(stderr, "error: %s\n", errstr);
            goto out_ing;
        }
        /* The port on one line of its own, for scripts that asked for port 0. */
        printf("tcp_port=%d\n", kb_tcp_server_port(in.tcp));
        fflush(stdout);
        if (pthread_create(&tcp_tid, NULL, tcp_thread, &in) != 0) {
            fprintf(stderr, "error: cannot start the TCP thread\n");
            goto out_tcp;
        }
        tcp_started = 1;
    }
    KB_LOG_INFO(COMP, "ingest started", "spool=%s tcp_port=%d", run.spool.dir,
                in.tcp ? kb_tcp_server_port(in.tcp) : -1);
    rc = 0;
    while (!atomic_load(&stop)) {
        char **names = NULL;
        size_t n = 0;
        int failed = 0;
        if (kb_spool_list(&run.spool, &names, &n) == KB_OK) {
            /* Kafka not acknowledging stops the scan; an unreadable file
             * (result 1) only stays behind. */
            for (size_t i = 0; i < n && !atomic_load(&stop); i++) {
                int r = kb_svb_ingest_file(&in.ctx, in.ing, &run.spool, run.done_uri, names[i]);
                failed |= r != 0;
                if (r < 0)
                    break;
            }
            kb_spool_names_free(names, n);
        }
        if (run.args.once && !in.tcp) {
            rc = failed ? 1 : 0;
            break;
        }
        /* Back off longer after a failure (Kafka down): the file stays. */
        struct timespec ts = {failed ? 2 : 0, failed ? 0 : 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    if (tcp_started)
        pthread_join(tcp_tid, NULL);
    KB_LOG_INFO(COMP, "ingest stopped", "records=%zu quarantined=%zu rc=%d",
                kb_svb_ingest_stats.records, kb_svb_ingest_stats.quarantined, rc);
out_tcp:
    kb_tcp_server_destroy(in.tcp);
out_ing:
    kb_ingress_destroy(in.ing);
out_run:
    kb_adapter_cmd_end(&run);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "ingest"))
        return cmd_ingest(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "egress"))
        return cmd_egress(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("%s%s", usage, kb_adapter_common_help);
        return 0;
    }
    fprintf(stderr, "%s", usage);
    return 2;
}
