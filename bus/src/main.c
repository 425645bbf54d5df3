/* SPDX-License-Identifier: EUPL-1.2 */
/* main.c - the ketenbus executable: dispatches to its subcommands. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>

#include "cmd.h"
#include "ketenbus/stop.h"
#include "ketenbus/validate.h"

#ifndef KB_AVRO_VERSION
#define KB_AVRO_VERSION "unknown"
#endif

/* The subcommands. To add one: write cmd_<name>.c with
 * `int kb_cmd_<name>(int argc, char **argv)` (argv[0] is the command name,
 * --help prints its usage), declare it in cmd.h, add one row here. */
static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"dev", kb_cmd_dev, "embedded mode: in-process Kafka mock cluster, router and adapters"},
    {"route", kb_cmd_route, "the routing core: kb.in.* -> kb.out.<subscriber>, exactly once"},
    {"gen", kb_cmd_gen, "synthetic traffic: fictitious birth events for tests and benchmarks"},
    {"audit", kb_cmd_audit, "audit trail: keygen, verify, subject (access report), export"},
    {"validate", kb_cmd_validate, "check Avro data (container file or --raw datum) against a schema"},
    {"schema", kb_cmd_schema, "schemas: check the folder, register it, serve the schema registry"},
    {"deliver", kb_cmd_deliver, "push kb.out.<subscriber> to an HTTPS webhook (CloudEvents), with retries"},
    {"top", kb_cmd_top, "live figures of running ketenbus processes in the terminal"},
    {"sub", kb_cmd_sub, "subscriptions: dry-run a proposed one against the history, delivering nothing"},
    {"dlq", kb_cmd_dlq, "dead letters: list, show (headers, size, SHA-256), redrive into the input"},
    {"replay", kb_cmd_replay, "re-deliver to a subscriber what the audit trail says it received"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ketenbus <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-12s %s\n\nEvery command answers --help.\n", "--version",
            "versions of the libraries and the SIMD support of this CPU");
    fputs("\n" KB_STOP_HELP, out);
}

static atomic_int *reload_flag;

static void on_hup(int sig)
{
    (void)sig;
    if (reload_flag)
        atomic_store(reload_flag, 1);
}

void kb_cmd_reload_signal(atomic_int *reload)
{
    reload_flag = reload;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
}

int kb_cmd_version(void)
{
    printf("ketenbus %s\n", KB_VERSION);
    printf("librdkafka %s\n", rd_kafka_version_str());
    printf("avro-c %s\n", KB_AVRO_VERSION);
    printf("openssl %s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("libevent %s\n", event_get_version());
    __builtin_cpu_init();
    printf("cpu simd: sse4.2=%s avx2=%s avx512bw=%s\n",
           __builtin_cpu_supports("sse4.2") ? "yes" : "no",
           __builtin_cpu_supports("avx2") ? "yes" : "no",
           __builtin_cpu_supports("avx512bw") ? "yes" : "no");
    /* The validator's kernel path: KETENBUS_SIMD when set, else the best
     * one this CPU runs. A forced path this CPU cannot run is an error. */
    const char *simd = kb_validate_simd_auto();
    if (!simd) {
        printf("simd path: unusable (KETENBUS_SIMD=%s: not built in or not supported by this "
               "CPU; use scalar, sse42 or avx2)\n",
               getenv("KETENBUS_SIMD"));
        return 1;
    }
    printf("simd path: %s%s\n", simd, getenv("KETENBUS_SIMD") ? " (forced by KETENBUS_SIMD)" : "");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version"))
        return kb_cmd_version();
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ketenbus: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
