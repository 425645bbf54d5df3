/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus-svb - the SVB child-benefit adapter. Egress: consumes SVB's
 * subscriber topic and writes AKW01 invitation records (ketenbus's own
 * fixed-width design, see README.md) to its spool's out/ folder for SVB's
 * legacy systems.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "egress.h"
#include "ketenbus/log.h"
#include "svb_join.h"

#define COMP "svb"

enum { OPT_TOPIC = KB_OPT_FIRST_OWN, OPT_GROUP, OPT_KANAAL, OPT_IDLE_EXIT };

static const char usage[] =
    "usage: ketenbus-svb egress --spool DIR --subject-key-file FILE [options]\n"
    "\n"
    "Consumes SVB's subscriber topic and writes one AKW01 invitation record\n"
    "(160 bytes + newline) per new child and parent to DIR/out/<kenmerk>.akw01,\n"
    "once both nl.brp.persoon-geboren and nl.brp.kind-toegevoegd have arrived.\n"
    "\n"
    "  --topic T         subscriber topic (default <prefix>.out.svb-kinderbijslag)\n"
    "  --group G         consumer group (default <prefix>-svb)\n"
    "  --kanaal D|P      D: digital (Mijn SVB), P: paper (default D)\n"
    "  --idle-exit MS    exit after MS milliseconds without events (tests, batch runs)\n"
    "\n";

static kb_err_t render(void *opaque, const struct kb_event_attrs *attrs,
                       const struct kb_schema *schema, const uint8_t *payload, size_t len,
                       char *errstr, size_t errstr_size)
{
    return kb_svb_handle(opaque, attrs, schema, payload, len, errstr, errstr_size);
}

static int cmd_egress(int argc, char **argv)
{
    static const struct option longopts[] = {KB_ADAPTER_LONGOPTS,
                                             {"topic", required_argument, NULL, OPT_TOPIC},
                                             {"group", required_argument, NULL, OPT_GROUP},
                                             {"kanaal", required_argument, NULL, OPT_KANAAL},
                                             {"idle-exit", required_argument, NULL, OPT_IDLE_EXIT},
                                             {NULL, 0, NULL, 0}};
    struct kb_adapter_args args;
    kb_adapter_args_init(&args);
    char default_topic[160], default_group[160];
    kb_topic_name(default_topic, sizeof default_topic, "out.svb-kinderbijslag");
    snprintf(default_group, sizeof default_group, "%s-svb", kb_topic_prefix());
    const char *topic = default_topic, *group = default_group;
    char kanaal = 'D';
    int idle_exit = 0, opt, rc = 1;
    while ((opt = getopt_long(argc, argv, KB_ADAPTER_SHORTOPTS, longopts, NULL)) != -1) {
        int r = kb_adapter_common_opt(&args, opt, optarg);
        if (r < 0)
            goto out_args;
        if (r == 1 && opt != 'h')
            continue;
        switch (opt) {
        case OPT_TOPIC:
            topic = optarg;
            break;
        case OPT_GROUP:
            group = optarg;
            break;
        case OPT_KANAAL:
            if (strcmp(optarg, "D") && strcmp(optarg, "P")) {
                fprintf(stderr, "error: --kanaal must be D or P\n");
                rc = 2;
                goto out_args;
            }
            kanaal = optarg[0];
            break;
        case OPT_IDLE_EXIT:
            idle_exit = atoi(optarg);
            break;
        default:
            fprintf(opt == 'h' ? stdout : stderr, "%s%s", usage, kb_adapter_common_help);
            rc = opt == 'h' ? 0 : 2;
            goto out_args;
        }
    }
    if (!args.spool_dir) {
        fprintf(stderr, "error: --spool is required\n%s", usage);
        rc = 2;
        goto out_args;
    }
    kb_schemas_t *schemas = NULL;
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (kb_adapter_load(&args, &schemas, &key, &key_len))
        goto out_args;
    char errstr[512];
    struct kb_svb svb;
    if (kb_svb_init(&svb, args.spool_dir, key, key_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_load;
    }
    svb.kanaal = kanaal;
    static atomic_int stop;
    kb_adapter_signals(&stop);
    struct kb_egress_opts eo = {&args.kafka, schemas, topic,  group,
                                &svb.spool,  render,  &svb,   idle_exit};
    if (kb_egress_run(&eo, &stop, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_load;
    }
    KB_LOG_INFO(COMP, "adapter stopped", "akw01_written=%zu", svb.written);
    rc = 0;
out_load:
    kb_schemas_destroy(schemas);
    free(key);
out_args:
    kb_adapter_args_fini(&args);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "egress"))
        return cmd_egress(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("%s%s", usage, kb_adapter_common_help);
        return 0;
    }
    fprintf(stderr, "%s", usage);
    return 2;
}
