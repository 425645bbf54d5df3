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
#include "ketenbus/admin.h"
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
    "between polls, 0.1 to 3600 seconds (default 2). Every figure is shown,\n"
    "however many; in label values each byte outside printable ASCII is\n"
    "shown as \\xNN, so nothing a process reports can drive the terminal.\n";

/* --interval: usleep() takes it in microseconds, in an unsigned int (3600 s fits). */
#define TOP_MIN_INTERVAL 0.1
#define TOP_MAX_INTERVAL 3600.0

/* Width of the "for" column; a longer text is cut there, at a character. */
#define WHO_COLUMN 48

/* One figure: a family and a label value it is shown under. */
struct row {
    const char *what; /* short name of the family (static, from shown[]) */
    char *who;        /* the label values, escaped for a terminal, joined (owned) */
    double value;     /* summed over the processes polled */
    double previous;  /* at the previous poll, for the rate */
    int seen;         /* reported by some process in this poll */
    int was_seen;     /* ... and in the previous one: previous is a rate's base */
};

/* Every figure seen so far, in the order first seen; as many as the
 * processes report (a router with a thousand partitions has a thousand lag
 * rows). index maps "what\x1fwho" to the position in rows, so a poll costs
 * one hash lookup per series. */
static struct row *rows;
static size_t n_rows, cap_rows;
static json_t *index_of;

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

/* The row of (@p what, @p labels), shown as @p who, made on first sight;
 * NULL when memory ran out. Rows are told apart by the labels as they came
 * (@p labels, a canonical JSON text), not by @p who: escaping shortens long
 * values and shows "" and "-" alike, and two series must never add up in
 * one row. (The same labels from several processes do: that is the sum.) */
static struct row *row_get(const char *what, const char *labels, const char *who)
{
    size_t key_len = strlen(what) + 1 + strlen(labels) + 1;
    char *key = malloc(key_len);
    if (!key || (!index_of && !(index_of = json_object()))) {
        free(key);
        return NULL;
    }
    snprintf(key, key_len, "%s\x1f%s", what, labels);
    json_t *at = json_object_get(index_of, key);
    struct row *r = NULL;
    if (at) {
        r = &rows[json_integer_value(at)];
        goto out;
    }
    if (n_rows == cap_rows) {
        size_t cap = cap_rows ? 2 * cap_rows : 64;
        struct row *nr = realloc(rows, cap * sizeof *nr);
        if (!nr)
            goto out;
        rows = nr;
        cap_rows = cap;
    }
    char *copy = strdup(who);
    if (!copy || json_object_set_new(index_of, key, json_integer((json_int_t)n_rows))) {
        free(copy);
        goto out;
    }
    r = &rows[n_rows++];
    *r = (struct row){.what = what, .who = copy};
out:
    free(key);
    return r;
}

/* Append label value @p v to @p who, escaped: a process's label values are
 * text from outside (source, subscriber and topic names), and a control
 * character in one (ESC starting a terminal sequence, say) must never reach
 * the terminal as such. kb_dlq_printable writes every byte outside
 * printable ASCII as \xNN. */
static int who_append(char **who, size_t *len, const char *v, size_t v_len)
{
    char shown_v[4 * 200 + 8]; /* kb_dlq_printable shows at most 200 bytes */
    kb_dlq_printable(v, v_len, shown_v, sizeof shown_v);
    size_t add = strlen(shown_v) + (*len ? 1 : 0);
    char *nw = realloc(*who, *len + add + 1);
    if (!nw)
        return -1;
    snprintf(nw + *len, add + 1, "%s%s", *len ? " " : "", shown_v);
    *who = nw;
    *len += add;
    return 0;
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
    int failed = 0;
    for (size_t s = 0; s < sizeof shown / sizeof shown[0] && !failed; s++) {
        json_t *series = json_object_get(root, shown[s].family), *item;
        size_t i;
        json_array_foreach(series, i, item)
        {
            char *who = NULL;
            size_t who_len = 0;
            const char *k;
            json_t *v;
            json_t *labels = json_object_get(item, "labels");
            char *id =
                json_dumps(labels ? labels : json_null(),
                           JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
            failed = !id;
            json_object_foreach(labels, k, v)
            {
                /* Not a string: shown as "?" rather than dropped. */
                const char *text = json_is_string(v) ? json_string_value(v) : "?";
                size_t text_len = json_is_string(v) ? json_string_length(v) : 1;
                if (failed || (failed = who_append(&who, &who_len, text, text_len)))
                    break;
            }
            struct row *r = failed ? NULL : row_get(shown[s].what, id, who ? who : "");
            free(who);
            free(id);
            if (!r) {
                failed = 1;
                break;
            }
            r->value += json_number_value(json_object_get(item, "value"));
            r->seen = 1;
        }
    }
    json_decref(root);
    if (failed)
        kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "%s: out of memory", url);
    return failed ? -1 : 0;
}

/* Print @p who in WHO_COLUMN columns: padded, or cut with "..." when longer.
 * Escaping made it ASCII, so a byte is a column; the cut never splits an
 * \xNN (a backslash only ever starts one). */
static void print_who(const char *who)
{
    size_t len = strlen(who);
    if (len <= WHO_COLUMN) {
        printf("%-*s", WHO_COLUMN, who);
        return;
    }
    int cut = WHO_COLUMN - 3;
    for (int k = 1; k < 4; k++)
        if (who[cut - k] == '\\') {
            cut -= k;
            break;
        }
    printf("%.*s...%*s", cut, who, WHO_COLUMN - 3 - cut, "");
}

static void rows_free(void)
{
    for (size_t i = 0; i < n_rows; i++)
        free(rows[i].who);
    free(rows);
    json_decref(index_of);
    rows = NULL;
    n_rows = cap_rows = 0;
    index_of = NULL;
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
    int rc = 0;
    double t_prev = 0;
    int prev_failed = 1; /* no rates before a second complete round */
    for (int round = 0; !atomic_load(&stop); round++) {
        for (size_t i = 0; i < n_rows; i++) {
            rows[i].previous = rows[i].value;
            rows[i].was_seen = rows[i].seen;
            rows[i].value = 0;
            rows[i].seen = 0;
        }
        char errstr[256], first_err[256] = "";
        int failed = 0;
        for (int a = optind; a < argc; a++) {
            if (poll_one(argv[a], errstr, sizeof errstr)) {
                fprintf(stderr, "ketenbus top: %s\n", errstr);
                if (!failed)
                    snprintf(first_err, sizeof first_err, "%s", errstr);
                failed = 1;
            }
        }
        /* A rate is the change over the time that really passed between two
         * complete rounds: a process that does not answer adds up to its
         * timeout to a round, and leaves its share out of the sums. */
        struct timespec ts_now;
        clock_gettime(CLOCK_MONOTONIC, &ts_now);
        double t_now = (double)ts_now.tv_sec + (double)ts_now.tv_nsec / 1e9;
        int rates = !failed && !prev_failed && t_now > t_prev;
        if (once && failed) {
            rc = 1;
            break;
        }
        /* A series no process reports any more (the lag of a partition
         * that moved elsewhere) is left out, not shown as 0. */
        size_t n_seen = 0;
        for (size_t i = 0; i < n_rows; i++)
            n_seen += rows[i].seen;
        if (!once)
            printf("\033[H\033[2J");
        time_t now = time(NULL);
        char ts[32];
        strftime(ts, sizeof ts, "%H:%M:%S", localtime(&now));
        printf("ketenbus top  %s  (%d process%s, %zu figure%s)\n\n", ts, argc - optind,
               argc - optind == 1 ? "" : "es", n_seen, n_seen == 1 ? "" : "s");
        if (failed && !once) /* the screen was cleared: say it again here */
            printf("not answering: %s (no rates this round)\n\n", first_err);
        printf("%-14s %-*s %14s %10s\n", "figure", WHO_COLUMN, "for", "value", once ? "" : "per s");
        for (size_t i = 0; i < n_rows; i++) {
            const struct row *r = &rows[i];
            if (!r->seen)
                continue;
            int is_total = strstr(r->what, "lag") == NULL && strstr(r->what, "backlog") == NULL &&
                           strstr(r->what, "pending") == NULL;
            printf("%-14s ", r->what);
            print_who(r->who);
            printf(" %14.0f", r->value);
            if (!once && rates && r->was_seen && is_total)
                printf(" %10.1f", (r->value - r->previous) / (t_now - t_prev));
            printf("\n");
        }
        fflush(stdout);
        t_prev = t_now;
        prev_failed = failed;
        if (once)
            break;
        usleep((useconds_t)(interval * 1e6));
    }
    rows_free();
    return rc;
}
