/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * adapter.h - what every adapter executable shares: the common command-line
 * options (Kafka connection, subject key, schemas, spool), their help text,
 * and what a stop cut short by the stop watchdog (ketenbus/stop.h) means.
 */
#ifndef KETENBUS_ADAPTER_H
#define KETENBUS_ADAPTER_H

#include <getopt.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ketenbus/kafka.h"
#include "ketenbus/schema.h"
#include "ketenbus/stop.h"
#include "spool.h"

/* Option codes of the shared long options (beyond single letters). */
enum {
    KB_OPT_KAFKA_CONFIG = 1000,
    KB_OPT_SUBJECT_KEY,
    KB_OPT_SCHEMAS,
    KB_OPT_SPOOL,
    KB_OPT_ONCE,
    KB_OPT_OIN,
    KB_OPT_METRICS_ADDR,
    KB_OPT_FIRST_OWN = 1100 /* adapters number their own options from here */
};

#define KB_ADAPTER_LONGOPTS                                                              \
    {"bootstrap", required_argument, NULL, 'b'},                                         \
        {"kafka-property", required_argument, NULL, 'X'},                                \
        {"kafka-config", required_argument, NULL, KB_OPT_KAFKA_CONFIG},                  \
        {"subject-key-file", required_argument, NULL, KB_OPT_SUBJECT_KEY},               \
        {"schemas", required_argument, NULL, KB_OPT_SCHEMAS},                            \
        {"spool", required_argument, NULL, KB_OPT_SPOOL},                                \
        {"once", no_argument, NULL, KB_OPT_ONCE}, {"oin", required_argument, NULL, KB_OPT_OIN}, \
        {"metrics-addr", required_argument, NULL, KB_OPT_METRICS_ADDR},                  \
        {"help", no_argument, NULL, 'h'}

#define KB_ADAPTER_SHORTOPTS "b:X:h"

/** Help text of the shared options, for each adapter's --help. */
extern const char kb_adapter_common_help[];

struct kb_adapter_args {
    struct kb_kafka_opts kafka;  /* connection options */
    const char *subject_key_file;/* secret for pseudonyms (required) */
    const char *schemas_dir;     /* schema folder; default the source tree's schemas/ */
    const char *spool_dir;       /* the adapter's spool folder */
    const char *oin;             /* OIN of the publishing organisation, for ce_source */
    int once;                    /* process what is waiting, then exit */
    const char *metrics_addr;    /* --metrics-addr HOST:PORT, or NULL: no metrics server */
};

void kb_adapter_args_init(struct kb_adapter_args *a);
/** Also stops the metrics server kb_adapter_load may have started. */
void kb_adapter_args_fini(struct kb_adapter_args *a);

/**
 * Apply shared option @p opt with argument @p arg. Returns 1 when it was a
 * shared option, 0 when not, -1 on a bad value (message printed).
 */
int kb_adapter_common_opt(struct kb_adapter_args *a, int opt, const char *arg);

/* Largest --idle-exit of an egress command: a day, in milliseconds. */
#define KB_ADAPTER_IDLE_EXIT_MAX_MS 86400000

/**
 * An egress command's --idle-exit MS into *@p ms: 0, or 2 (a usage error, as
 * an own_opt callback returns it) after printing why when @p arg is not a
 * whole number from 1 to KB_ADAPTER_IDLE_EXIT_MAX_MS.
 */
int kb_adapter_idle_exit_opt(const char *arg, int *ms);

/* The consequence kb_stop_signals() logs when an adapter's stop is cut short
 * (deadline or second signal). Ingest acknowledges a sender, and moves a
 * spool file to done/, only after Kafka holds its events; egress commits an
 * offset only after the event is written (or quarantined). */
#define KB_ADAPTER_INGEST_STOP_EFFECT                                                    \
    "input not yet acknowledged (spool files still in in/, messages not acked to their " \
    "sender) is read or resent after a restart; a repeat keeps its event id and the "    \
    "router drops the duplicate"
#define KB_ADAPTER_EGRESS_STOP_EFFECT                                                    \
    "events after the last committed offset are written to the spool again after a "    \
    "restart; none is lost"

/** ce_source of an adapter: urn:nld:oin:<OIN>:systeem:<system> (NL GOV profile). */
void kb_adapter_source(const struct kb_adapter_args *a, const char *system, char *out,
                       size_t out_size);

/** file:// URI of the spool's done/ folder (absolute, its path percent-encoded
 *  as RFC 3986 asks), the base of ce_dataref. */
void kb_adapter_done_uri(const char *spool_dir, char *out, size_t out_size);

/**
 * ce_dataref of a file archived in done/: @p done_uri, "/" @p name when
 * @p name is not NULL, and "#" @p fragment when @p fragment is not NULL
 * (@p done_uri may be such a URI already, to add a fragment), with name and fragment
 * percent-encoded (RFC 3986). File names come from senders and ZIP entry
 * names from their bytes: they may hold spaces, '#', '%' or bytes that are
 * not UTF-8, none of which may stand in a URI, and a ce_dataref that is not
 * a CloudEvents String would make the router dead-letter the event. 0, or
 * -1 with @p out "" when the URI does not fit @p out_size (at most
 * sizeof ce_dataref, so it is left out rather than cut), and when the name
 * or fragment holds a run of exactly 9 digits passing the BSN 11-proef or
 * of 10 forming a valid A-nummer: no personal data in headers (logged,
 * without the name).
 */
int kb_adapter_dataref(const char *done_uri, const char *name, const char *fragment, char *out,
                       size_t out_size);

/** 1 when a sender's name (a file, a zip entry) holds a run of exactly 9
 *  digits passing the BSN 11-proef or of 10 forming a valid A-nummer: it
 *  stays out of headers and logs. */
int kb_adapter_name_may_hold_id(const char *s);

/** Load the schemas and the subject key named in @p a, and start the
 *  metrics server when --metrics-addr was given (adapter_metrics.h);
 *  prints why on failure. */
int kb_adapter_load(const struct kb_adapter_args *a, kb_schemas_t **schemas, uint8_t **key,
                    size_t *key_len);

/* ------------------------------------------------------------ a command */

/* What an adapter command (ingest, egress, decode) says about itself to the
 * shared start below: its help, its own options and, for the long-running
 * ones, what its stop means. */
struct kb_adapter_cmd {
    const char *usage;             /* printed before the shared options' help */
    const struct option *own;      /* its own long options, {NULL} ends (NULL: none); long
                                    * only, numbered from KB_OPT_FIRST_OWN (anything else
                                    * is taken for an unknown option) */
    /* Apply one of them: 0, or an exit status (2: usage) after printing why. */
    int (*own_opt)(void *ctx, int opt, const char *arg);
    void *ctx;                     /* passed to own_opt */
    const char *comp;              /* log component of the stop watchdog */
    const char *stop_effect;       /* KB_ADAPTER_{INGEST,EGRESS}_STOP_EFFECT */
    atomic_int *stop;              /* set on SIGINT/SIGTERM (kb_stop_signals) */
};

/* What the start sets up for a long-running command. */
struct kb_adapter_run {
    struct kb_adapter_args args;
    struct kb_spool spool;         /* --spool, opened */
    char done_uri[PATH_MAX + 16];  /* file:// URI of its done/, the base of ce_dataref */
    kb_schemas_t *schemas;
    uint8_t *key;                  /* the subject key */
    size_t key_len;
};

/**
 * Parse @p argv: the shared options into @p args (initialised here), the
 * command's own through @p c->own_opt; --help prints both helps. -1 to go
 * on (getopt's optind is at the first operand), else the exit status: 0
 * after --help, 2 on a usage error (a bad value included). Either way
 * kb_adapter_args_fini() frees @p args.
 */
int kb_adapter_parse(const struct kb_adapter_cmd *c, int argc, char **argv,
                     struct kb_adapter_args *args);

/**
 * The start of a long-running command: kb_adapter_parse(), then --spool
 * required and opened, schemas and subject key loaded. -1 to go on, else
 * the exit status. Either way kb_adapter_cmd_end() frees what was set up.
 */
int kb_adapter_cmd_start(const struct kb_adapter_cmd *c, int argc, char **argv,
                         struct kb_adapter_run *run);
void kb_adapter_cmd_end(struct kb_adapter_run *run);

/** Install the stop signals of @p c (kb_stop_signals); prints why on
 *  failure. A command calls it once its start-up can no longer block: a
 *  SIGTERM before that (Kafka unreachable while topics are made, say)
 *  still ends the process at once, not after the watchdog's deadline with
 *  a line about unacknowledged input. */
int kb_adapter_stop_signals(const struct kb_adapter_cmd *c);

#endif
