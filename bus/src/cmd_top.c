/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * cmd_top.c - `ketenbus top`: the figures of one or more running ketenbus
 * processes in the terminal (events in/out per second, delivery outcomes,
 * retry backlog, dead letters, consumer lag), read from their /metrics.json.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd.h"
#include "ketenbus/cli_num.h"
#include "ketenbus/http.h"
#include "ketenbus/stop.h"

static const char usage[] =
    "usage: ketenbus top [--interval SECONDS] [--once] URL...\n"
    "\n"
    "Polls http://HOST:PORT/metrics.json of each given ketenbus process (the\n"
    "--metrics-addr of deliver, route, adapters) and shows per source and\n"
    "subscriber: totals, rates per second since the previous poll, delivery\n"
    "outcomes, retry backlog, dead letters and consumer lag. --once prints one\n"
    "table (totals only) and exits: handy in scripts. --interval is the time\n"
    "between polls, 0.1 to 3600 seconds (default 2).\n";

#define MAX_ROWS 256

/* --interval: usleep() takes it in microseconds, in an unsigned int (3600 s fits). */
#define TOP_MIN_INTERVAL 0.1
#define TOP_MAX_INTERVAL 3600.0

/* One figure: a family and a label value it is shown under. */
struct row {
    char what[48];   /* short name of the family */
    char who[128];   /* the label values, joined */
    double value;    /* summed over the processes polled */
    double previous; /* at the previous poll, for the rate */
};

static struct row rows[MAX_ROWS];
static size_t n_rows;

static const struct shown {
    const char *family; /* metric family */
    const char *what;   /* column text */
} shown[] = {
    {"kb_events_in_total", "in"},
    {"kb_events_out_total", "out"},
    {"kb_validation_failures_total", "invalid"},
    {"kb_dead_letters_total", "dead-letter"},
    {"kb_quarantined_total", "quarantine"},
    {"kb_deliver_delivered_total", "delivered"},
    {"kb_deliver_attempts_total", "attempts"},
    {"kb_deliver_retry_backlog", "retry-backlog"},
    {"kb_deliver_pending", "pending"},
    {"kb_kafka_consumer_lag", "lag"},
};

static struct row *row_get(const char *what, const char *who)
{
    for (size_t i = 0; i < n_rows; i++)
        if (!strcmp(rows[i].what, what) && !strcmp(rows[i].who, who))
            return &rows[i];
    if (n_rows == MAX_ROWS)
        return NULL;
    struct row *r = &rows[n_rows++];
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->who, sizeof r->who, "%s", who);
    return r;
}

static int poll_one(const char *base, char *errstr, size_t errstr_size)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s/metrics.json", strncmp(base, "http://", 7) ? "http://" : "",
             base);
    struct kb_http_response resp = {0};
    if (kb_http_fetch("GET", url, NULL, NULL, 0, 5000, &resp, errstr, errstr_size))
        return -1;
    json_error_t jerr;
    json_t *root = resp.status == 200 ? json_loadb(resp.body, resp.len, 0, &jerr) : NULL;
    kb_http_response_fini(&resp);
    if (!root) {
        kb_err_set(KB_ERR_INVALID, errstr, errstr_size, "%s: no metrics JSON", url);
        return -1;
    }
    for (size_t s = 0; s < sizeof shown / sizeof shown[0]; s++) {
        json_t *series = json_object_get(root, shown[s].family), *item;
        size_t i;
        json_array_foreach(series, i, item)
        {
            char who[128] = "";
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(item, "labels"), k, v)
            {
                size_t l = strlen(who);
                snprintf(who + l, sizeof who - l, "%s%s", l ? " " : "", json_string_value(v));
            }
            struct row *r = row_get(shown[s].what, who);
            if (r)
                r->value += json_number_value(json_object_get(item, "value"));
        }
    }
    json_decref(root);
    return 0;
}

int kb_cmd_top(int argc, char **argv)
{
    static const struct option longopts[] = {{"interval", required_argument, NULL, 'i'},
                                             {"once", no_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    double interval = 2;
    int once = 0, opt;
    char oerr[256];
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            if (kb_cli_double("--interval", optarg, TOP_MIN_INTERVAL, TOP_MAX_INTERVAL, &interval,
                              oerr, sizeof oerr)) {
                fprintf(stderr, "error: %s\n", oerr);
                return 2;
            }
            break;
        case 'o': once = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    static atomic_int stop;
    char serr[256];
    if (kb_stop_signals(&stop, "top", "none: top only reads figures", serr, sizeof serr)) {
        fprintf(stderr, "error: %s\n", serr);
        return 1;
    }
    for (int round = 0; !atomic_load(&stop); round++) {
        for (size_t i = 0; i < n_rows; i++) {
            rows[i].previous = rows[i].value;
            rows[i].value = 0;
        }
        char errstr[256];
        int failed = 0;
        for (int a = optind; a < argc; a++) {
            if (poll_one(argv[a], errstr, sizeof errstr)) {
                fprintf(stderr, "ketenbus top: %s\n", errstr);
                failed = 1;
            }
        }
        if (once && failed)
            return 1;
        if (!once)
            printf("\033[H\033[2J");
        time_t now = time(NULL);
        char ts[32];
        strftime(ts, sizeof ts, "%H:%M:%S", localtime(&now));
        printf("ketenbus top  %s  (%d process%s)\n\n", ts, argc - optind,
               argc - optind == 1 ? "" : "es");
        printf("%-14s %-48s %14s %10s\n", "figure", "for", "value", once ? "" : "per s");
        for (size_t i = 0; i < n_rows; i++) {
            const struct row *r = &rows[i];
            int is_total = strstr(r->what, "lag") == NULL && strstr(r->what, "backlog") == NULL &&
                           strstr(r->what, "pending") == NULL;
            printf("%-14s %-48.48s %14.0f", r->what, r->who, r->value);
            if (!once && round > 0 && is_total)
                printf(" %10.1f", (r->value - r->previous) / interval);
            printf("\n");
        }
        fflush(stdout);
        if (once)
            return 0;
        usleep((useconds_t)(interval * 1e6));
    }
    return 0;
}
