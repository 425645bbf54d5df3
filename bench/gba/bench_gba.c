/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_gba.c - throughput of the GBA adapter's CPU path on one core: LO3
 * parse, element checks, life-event derivation and Avro encode (everything
 * but Kafka), for the §1.10 Lg01 alone and for a mix of the project's Gv01
 * fixtures; parse-only and decode-to-JSON are measured side by side.
 * Usage: bench-gba [SECONDS_PER_SCENARIO [profile [lg01]]] (default 24 s,
 * five scenarios; "profile" runs only the Gv01 mix, "profile lg01" only the
 * Lg01, through the full path). The full path is what ketenbus-gba does per
 * message before producing: kb_lo3_parse() + kb_gba_events() with the one
 * kb_gba_cache the adapter keeps. Every rate is also given per second of
 * the thread's CPU time (cpu_*), for machines shared with other work.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gba_events.h"
#include "lo3.h"
#include "lo3_json.h"

struct msg {
    uint8_t *buf;
    size_t len;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: on a machine shared with other work the wall
 * clock also counts the time the scheduler gave away. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load(const char *path, struct msg *m)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    m->buf = malloc(1 << 16);
    m->len = fread(m->buf, 1, 1 << 16, f);
    fclose(f);
    return 0;
}

static kb_schemas_t *schemas;
static kb_gba_cache_t *cache; /* as ketenbus-gba keeps one for its lifetime */
static const uint8_t key[32] = {42};
static size_t events_made;
static size_t last_done; /* messages the last run() processed */
static double last_cpu;  /* ... per second of its thread's CPU time */

enum mode { PARSE, FULL, JSON };

static int one(const struct msg *m, enum mode mode)
{
    struct kb_lo3_message lo3;
    char err[256];
    if (mode == JSON) {
        char *json = NULL;
        int rc = kb_lo3_to_json(m->buf, m->len, 0, &json, err, sizeof err) != KB_OK;
        free(json);
        return rc;
    }
    if (kb_lo3_parse(m->buf, m->len, &lo3, err, sizeof err))
        return 1;
    int rc = 0;
    if (mode == FULL) {
        struct kb_gba_ctx ctx = {schemas, key, sizeof key,
                                 "urn:nld:oin:00000099999999999000:systeem:bench", cache};
        struct kb_ingress_event *evs = NULL;
        size_t n = 0;
        rc = kb_gba_events(&ctx, m->buf, m->len, &lo3, 1710753330250, "", &evs, &n, err,
                           sizeof err) != KB_OK;
        events_made += n;
        kb_gba_events_free(evs, n);
    }
    kb_lo3_message_fini(&lo3);
    return rc;
}

/* Run @p mode over @p msgs round-robin for @p seconds; messages per second. */
static double run(const struct msg *msgs, size_t n, enum mode mode, double seconds)
{
    size_t done = 0, errors = 0;
    double t0 = now_s(), c0 = cpu_s(), t;
    do {
        for (size_t i = 0; i < 256; i++, done++)
            errors += (size_t)one(&msgs[done % n], mode);
        t = now_s();
    } while (t - t0 < seconds);
    double c = cpu_s() - c0;
    if (errors)
        fprintf(stderr, "bench-gba: %zu messages failed\n", errors);
    last_done = done;
    last_cpu = c > 0 ? (double)done / c : 0;
    return (double)done / (t - t0);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 24.0;
    char err[512], dir[1200];
    snprintf(dir, sizeof dir, "%s/schemas", KB_SOURCE_DIR);
    schemas = kb_schemas_load_dir(dir, err, sizeof err);
    if (!schemas) {
        fprintf(stderr, "bench-gba: %s\n", err);
        return 1;
    }
    cache = kb_gba_cache_new();
    if (!cache) {
        fprintf(stderr, "bench-gba: cannot make the GBA cache\n");
        return 1;
    }
    struct msg lg01, mix[64];
    size_t n_mix = 0;
    snprintf(dir, sizeof dir, "%s/tests/fixtures/gba/lg01-geboorte-sophie.lo3", KB_SOURCE_DIR);
    if (load(dir, &lg01))
        return 1;
    /* the Gv01 mix: the new-child Gv01 and every event fixture that is a Gv01 */
    snprintf(dir, sizeof dir, "%s/tests/fixtures/gba/gv01-moeder-kind-sophie.lo3",
             KB_SOURCE_DIR);
    if (load(dir, &mix[n_mix++]))
        return 1;
    snprintf(dir, sizeof dir, "%s/tests/fixtures/gba/events", KB_SOURCE_DIR);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) && n_mix < 64) {
        if (strncmp(de->d_name, "gv01-", 5) || strstr(de->d_name, "bad"))
            continue;
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (!load(path, &mix[n_mix]))
            n_mix++;
    }
    if (d)
        closedir(d);
    fprintf(stderr, "bench-gba: %zu Gv01 messages in the mix, %.0f s per scenario\n", n_mix,
            secs);
    if (argc > 2 && !strcmp(argv[2], "profile")) {
        /* messages= lets `perf stat -e instructions` or callgrind divide */
        if (argc > 3 && !strcmp(argv[3], "lg01"))
            printf("bench-gba lg01_msgs_per_s=%.0f", run(&lg01, 1, FULL, secs));
        else
            printf("bench-gba gv01_mix_msgs_per_s=%.0f", run(mix, n_mix, FULL, secs));
        printf(" cpu_msgs_per_s=%.0f messages=%zu events=%zu\n", last_cpu, last_done, events_made);
        kb_gba_cache_destroy(cache);
        kb_schemas_destroy(schemas);
        return 0;
    }
    double lg_parse = run(&lg01, 1, PARSE, secs / 2);
    double lg_full = run(&lg01, 1, FULL, secs);
    double lg_cpu = last_cpu;
    double gv_parse = run(mix, n_mix, PARSE, secs / 2);
    double gv_full = run(mix, n_mix, FULL, secs);
    double gv_cpu = last_cpu;
    double gv_json = run(mix, n_mix, JSON, secs / 2);
    /* headline: the mix as an adapter sees it, 1 Lg01 per 4 Gv01; the
     * cpu_ figures divide by the thread's CPU time instead of the wall
     * clock (the same unless the machine is shared) */
    double mixed = 5.0 / (1.0 / lg_full + 4.0 / gv_full);
    double mixed_cpu = lg_cpu > 0 && gv_cpu > 0 ? 5.0 / (1.0 / lg_cpu + 4.0 / gv_cpu) : 0;
    printf("bench-gba msgs_per_s=%.0f lg01_msgs_per_s=%.0f gv01_mix_msgs_per_s=%.0f "
           "lg01_parse_only_msgs_per_s=%.0f gv01_parse_only_msgs_per_s=%.0f "
           "gv01_decode_json_msgs_per_s=%.0f cpu_msgs_per_s=%.0f lg01_cpu_msgs_per_s=%.0f "
           "gv01_mix_cpu_msgs_per_s=%.0f goal_msgs_per_s=500000 cores=1\n",
           mixed, lg_full, gv_full, lg_parse, gv_parse, gv_json, mixed_cpu, lg_cpu, gv_cpu);
    for (size_t i = 0; i < n_mix; i++)
        free(mix[i].buf);
    free(lg01.buf);
    kb_gba_cache_destroy(cache);
    kb_schemas_destroy(schemas);
    return 0;
}
