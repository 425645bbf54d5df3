/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_replay.c - `ketenbus replay`: re-deliver to one subscriber what the
 * audit trail says it received (the work is ketenbus/replay.h's); this file
 * reads the options, shows progress and prints what was refused.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "ketenbus/audit.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/event.h"
#include "ketenbus/kafka.h"
#include "ketenbus/replay.h"
#include "ketenbus/schema.h"
#include "ketenbus/stop.h"
#include "ketenbus/sub.h"

/* Ranges of the numeric options: --rate down to one event per 100 s; a batch
 * is one Kafka transaction. */
#define REPLAY_MIN_RATE  0.01
#define REPLAY_MAX_RATE  1e6
#define REPLAY_MAX_BATCH 1000000

static const char usage[] =
    "usage: ketenbus replay --subscriber S --reason TEXT --subscriptions PATH\n"
    "                       --subject-key-file FILE [options]\n"
    "\n"
    "Re-deliver to subscriber S what the audit trail says it received: the trail's\n"
    "DELIVERED records naming S (in the window, for the subject and type given) are\n"
    "looked up in kb.in.* by their recorded position, checked, and produced again to\n"
    "S's topic exactly as the router made them (projection, pseudonyms), each with a\n"
    "new ce_id and the headers kb_replay_id and kb_original_event_id, in Kafka\n"
    "transactions together with a REPLAYED audit record saying who replayed and why.\n"
    "Refused, and listed: events whose value no longer has the recorded SHA-256\n"
    "(altered), that retention removed (gone), that no longer validate (invalid),\n"
    "or whose recorded field list differs from the subscription's current one\n"
    "(fields-changed: a replay never gives more or other fields than were given),\n"
    "or that the subscription as it is now would not deliver now (not-entitled: its\n"
    "types, filter, validity or follow list no longer cover the event).\n"
    "\n"
    "  --subscriber NAME            the subscription to replay to (required)\n"
    "  --reason TEXT                why (required; stored in the audit trail)\n"
    "  --operator NAME              who (default: the login name); stored in the trail\n"
    "  --subscriptions PATH         subscription file or folder, as the router's\n"
    "  --subject-key-file FILE      the bus's subject key, as the router's\n"
    "  --schemas DIR                schema folder (default: the installed schemas)\n"
    "  --since TIME, --until TIME   deliveries recorded in this window (RFC 3339 with\n"
    "                               its zone, a date (midnight UTC), or ms since 1970)\n"
    "  --bsn N, --anummer N         only this person's events (keyed-hashed first);\n"
    "                               GBA keys births by the BSN and most other events\n"
    "                               by the A-nummer: give both to cover them all\n"
    "  --subject PSEUDONYM          only this subject pseudonym (ce_subject)\n"
    "  --type TYPE                  only this event type\n"
    "  --rate N                     at most N events per second (0.01 to 1000000)\n"
    "  --dry-run                    plan and check, deliver and record nothing\n"
    "  --audit-signing-key FILE     Ed25519 key: sign checkpoints of the replay chain\n"
    "  --audit-topic NAME           audit topic (default <prefix>.audit)\n"
    "  --batch N                    events per transaction (default 200; 1 to 1000000)\n"
    "  --progress, --no-progress    progress bar on stderr (default: when a terminal)\n"
    "  -b, --bootstrap HOST:PORT    Kafka bootstrap servers (default $KB_BOOTSTRAP)\n"
    "  -X, --kafka-property K=V     any librdkafka property (TLS, SASL, ...)\n"
    "      --kafka-config FILE      properties file with librdkafka properties\n"
    "  -h, --help\n"
    "\n"
    "Exit status: 0 every planned event replayed, 1 some refused or an error, 2 usage.\n";

enum {
    OPT_SUB = 1000, OPT_REASON, OPT_OPERATOR, OPT_SUBS, OPT_KEY, OPT_SCHEMAS, OPT_SINCE,
    OPT_UNTIL, OPT_BSN, OPT_ANR, OPT_SUBJECT, OPT_TYPE, OPT_RATE, OPT_DRY, OPT_AKEY, OPT_ATOPIC,
    OPT_BATCH, OPT_PROGRESS, OPT_NOPROGRESS, OPT_KCONF
};

/* "[#####.....] 120/500 24% 80/s 5 s left", redrawn in place. */
static void progress_bar(void *opaque, uint64_t done, uint64_t total, double elapsed)
{
    (void)opaque;
    if (!total)
        return;
    char bar[31];
    size_t fill = (size_t)(30 * done / total);
    memset(bar, '#', fill);
    memset(bar + fill, '.', 30 - fill);
    bar[30] = '\0';
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    double left = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\r[%s] %" PRIu64 "/%" PRIu64 " %3d%% %.0f/s %.0f s left ", bar, done,
            total, (int)(100 * done / total), rate, left);
    if (done == total)
        fputc('\n', stderr);
}

static void refused_line(void *opaque, const struct kb_replay_item *it, int why,
                         const char *detail)
{
    (void)opaque;
    printf("refused %s %s/%" PRId32 "@%" PRId64 " event %s type %s: %s\n",
           kb_replay_refusal_name(why), it->input_topic, it->input_partition, it->input_offset,
           it->event_id, it->event_type, detail);
}

static const char *login_name(void)
{
    const char *u = getenv("SUDO_USER");
    if (!u || !*u)
        u = getenv("USER");
    if (!u || !*u) {
        struct passwd *pw = getpwuid(getuid());
        u = pw ? pw->pw_name : NULL;
    }
    return u && *u ? u : "unknown";
}

int kb_cmd_replay(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"subscriber", required_argument, NULL, OPT_SUB},
        {"reason", required_argument, NULL, OPT_REASON},
        {"operator", required_argument, NULL, OPT_OPERATOR},
        {"subscriptions", required_argument, NULL, OPT_SUBS},
        {"subject-key-file", required_argument, NULL, OPT_KEY},
        {"schemas", required_argument, NULL, OPT_SCHEMAS},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"bsn", required_argument, NULL, OPT_BSN},
        {"anummer", required_argument, NULL, OPT_ANR},
        {"subject", required_argument, NULL, OPT_SUBJECT},
        {"type", required_argument, NULL, OPT_TYPE},
        {"rate", required_argument, NULL, OPT_RATE},
        {"dry-run", no_argument, NULL, OPT_DRY},
        {"audit-signing-key", required_argument, NULL, OPT_AKEY},
        {"audit-topic", required_argument, NULL, OPT_ATOPIC},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NOPROGRESS},
        {"bootstrap", required_argument, NULL, 'b'},
        {"kafka-property", required_argument, NULL, 'X'},
        {"kafka-config", required_argument, NULL, OPT_KCONF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct kb_kafka_opts kopts;
    kb_kafka_opts_init(&kopts);
    struct kb_replay_opts ro;
    memset(&ro, 0, sizeof ro);
    const char *subs_path = NULL, *key_file = NULL, *schemas_dir = KB_SCHEMA_DIR, *bsn = NULL,
               *anummer = NULL;
    int progress = isatty(2);
    char errstr[512];
    struct kb_audit_person_id ids[2];
    const char *subjects[2];
    size_t n_ids = 0;
    int opt, rc = 2;
    while ((opt = getopt_long(argc, argv, "b:X:h", longopts, NULL)) != -1) {
        kb_err_t bad = KB_OK; /* a numeric option's value is a usage error */
        long long n = 0;
        switch (opt) {
        case OPT_SUB: ro.subscriber = optarg; break;
        case OPT_REASON: ro.reason = optarg; break;
        case OPT_OPERATOR: ro.operator_name = optarg; break;
        case OPT_SUBS: subs_path = optarg; break;
        case OPT_KEY: key_file = optarg; break;
        case OPT_SCHEMAS: schemas_dir = optarg; break;
        case OPT_SINCE:
        case OPT_UNTIL:
            bad =
                kb_cli_time(opt == OPT_SINCE ? "--since" : "--until", optarg,
                            opt == OPT_SINCE ? &ro.since_ms : &ro.until_ms, errstr, sizeof errstr);
            break;
        case OPT_BSN: bsn = optarg; break;
        case OPT_ANR: anummer = optarg; break;
        case OPT_SUBJECT: ro.subject = optarg; break;
        case OPT_TYPE: ro.event_type = optarg; break;
        case OPT_RATE:
            bad = kb_cli_double("--rate", optarg, REPLAY_MIN_RATE, REPLAY_MAX_RATE, &ro.rate,
                                errstr, sizeof errstr);
            break;
        case OPT_DRY: ro.dry_run = 1; break;
        case OPT_AKEY: ro.audit_signing_key_file = optarg; break;
        case OPT_ATOPIC: ro.audit_topic = optarg; break;
        case OPT_BATCH:
            bad = kb_cli_long("--batch", optarg, 1, REPLAY_MAX_BATCH, &n, errstr, sizeof errstr);
            ro.batch_max = (int)n;
            break;
        case OPT_PROGRESS: progress = 1; break;
        case OPT_NOPROGRESS: progress = 0; break;
        case 'b':
        case 'X':
        case OPT_KCONF:
            if (kb_kafka_opts_arg(&kopts, opt == OPT_KCONF ? 'F' : opt, optarg, errstr,
                                  sizeof errstr)) {
                fprintf(stderr, "error: %s\n", errstr);
                goto out_opts;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto out_opts;
        default:
            fputs(usage, stderr);
            goto out_opts;
        }
        if (bad) {
            fprintf(stderr, "error: %s\n", errstr);
            goto out_opts;
        }
    }
    if (!ro.subscriber || !ro.reason || !*ro.reason || !subs_path || !key_file) {
        fprintf(stderr, "error: --subscriber, --reason, --subscriptions and "
                        "--subject-key-file are required\n\n%s", usage);
        goto out_opts;
    }
    if ((bsn || anummer) && ro.subject) {
        fprintf(stderr, "error: give --bsn/--anummer or --subject, not both\n");
        goto out_opts;
    }
    if (bsn && (strlen(bsn) != 9 || strspn(bsn, "0123456789") != 9)) {
        fprintf(stderr, "error: --bsn must be 9 digits\n"); /* the value is not echoed */
        goto out_opts;
    }
    if (anummer && (strlen(anummer) != 10 || strspn(anummer, "0123456789") != 10)) {
        fprintf(stderr, "error: --anummer must be 10 digits\n");
        goto out_opts;
    }
    if (!ro.operator_name)
        ro.operator_name = login_name();
    rc = 1;
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (kb_event_key_load(key_file, &key, &key_len, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_opts;
    }
    if (bsn || anummer) {
        if (kb_audit_person_ids(key, key_len, bsn, anummer, ids, &n_ids, errstr, sizeof errstr)) {
            fprintf(stderr, "error: %s\n", errstr);
            goto out_key;
        }
        for (size_t i = 0; i < n_ids; i++)
            subjects[i] = ids[i].pseudonym;
        ro.subjects = subjects;
        ro.n_subjects = n_ids;
        /* Name what was searched (never the numbers): a replay by one
         * identifier misses the events keyed by the other. */
        fprintf(stderr, "replay: events keyed by the %s%s%s\n", bsn ? "BSN" : "",
                bsn && anummer ? " and the " : "", anummer ? "A-nummer" : "");
        if (!bsn || !anummer)
            fprintf(stderr, "replay: not searched: events keyed by the %s\n",
                    bsn ? "A-nummer" : "BSN");
    }
    struct kb_subs subs;
    memset(&subs, 0, sizeof subs);
    if (kb_subs_load(subs_path, key, key_len, &subs, errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_key;
    }
    kb_schemas_t *schemas = kb_schemas_load_dir(schemas_dir, errstr, sizeof errstr);
    if (!schemas) {
        fprintf(stderr, "error: %s\n", errstr);
        goto out_subs;
    }
    static atomic_int stop;
    if (kb_stop_signals(&stop, "replay",
                        "copies in the open transaction never appear (the next replay aborts "
                        "it); the REPLAYED records in the audit trail list the committed ones",
                        errstr, sizeof errstr)) {
        fprintf(stderr, "error: %s\n", errstr);
        kb_schemas_destroy(schemas);
        goto out_subs;
    }
    ro.kafka = &kopts;
    ro.subs = &subs;
    ro.schemas = schemas;
    ro.subject_key = key;
    ro.subject_key_len = key_len;
    ro.progress = progress ? progress_bar : NULL;
    ro.refused = refused_line;
    struct kb_replay_result res;
    kb_err_t err = kb_replay_run(&ro, &res, &stop, errstr, sizeof errstr);
    uint64_t refused = 0;
    for (size_t i = 0; i < sizeof res.refused / sizeof res.refused[0]; i++)
        refused += res.refused[i];
    printf("replay %s%s to %s: planned %" PRIu64 ", replayed %" PRIu64 ", refused %" PRIu64
           " (altered %" PRIu64 ", gone %" PRIu64 ", invalid %" PRIu64 ", fields-changed %" PRIu64
           ", not-entitled %" PRIu64 ")\n",
           res.replay_id, ro.dry_run ? " (dry run)" : "", ro.subscriber, res.planned, res.replayed,
           refused, res.refused[KB_REPLAY_ALTERED], res.refused[KB_REPLAY_GONE],
           res.refused[KB_REPLAY_INVALID], res.refused[KB_REPLAY_FIELDS_CHANGED],
           res.refused[KB_REPLAY_NOT_ENTITLED]);
    if (err)
        fprintf(stderr, "error: %s\n", errstr);
    rc = err || refused ? 1 : 0;
    kb_schemas_destroy(schemas);
out_subs:
    kb_subs_fini(&subs);
out_key:
    free(key);
out_opts:
    kb_kafka_opts_fini(&kopts);
    return rc;
}
