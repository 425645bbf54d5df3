/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_kadaster.c - throughput of the Kadaster adapter's decoding: the
 * project's mutation fixtures (the .xml files of tests/fixtures/kadaster)
 * taken as deliveries of all files at once, through the full path
 * (libxml2 streaming parse, business checks, ordering, groups, Avro
 * encoding) and, alternating in slices of the same run, through the parse
 * alone. No Kafka: this measures the adapter, not the broker.
 *
 * usage: bench-kadaster [SECONDS]   (default 120)
 * last line: bench-kadaster files_per_s=.. mb_per_s=.. parse_files_per_s=.. ...
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kadaster_events.h"

#define MAX_FILES 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int no_reject(void *arg, size_t fi, const char *doc, int whole, const uint8_t *raw,
                     size_t len, const char *rule, const char *reason)
{
    (void)arg, (void)fi, (void)whole, (void)raw, (void)len, (void)rule;
    fprintf(stderr, "unexpected reject of %s: %s\n", doc, reason);
    exit(1);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 120.0;
    char dir[1200], errstr[256];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/kadaster", KB_SOURCE_DIR);
    static uint8_t *files[MAX_FILES];
    static size_t lens[MAX_FILES];
    static char names[MAX_FILES][256];
    size_t n = 0, total = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) && n < MAX_FILES) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".xml"))
            continue;
        char path[1600];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        files[n] = malloc(1 << 20);
        lens[n] = fread(files[n], 1, 1 << 20, f);
        fclose(f);
        snprintf(names[n], sizeof names[n], "%s", de->d_name);
        total += lens[n++];
    }
    if (d)
        closedir(d);
    if (n == 0) {
        fprintf(stderr, "no fixtures in %s\n", dir);
        return 1;
    }
    char sdir[1200];
    snprintf(sdir, sizeof sdir, "%s/schemas", KB_SOURCE_DIR);
    kb_schemas_t *schemas = kb_schemas_load_dir(sdir, errstr, sizeof errstr);
    if (!schemas) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    uint8_t key[32] = {1};
    struct kb_kadaster_ctx ctx = {schemas, key, sizeof key,
                                  "urn:nld:oin:00000099999999999000:systeem:ketenbus-kadaster"};
    struct kb_brk_limits lim;
    kb_brk_limits_default(&lim);
    double full_t = 0, parse_t = 0;
    unsigned long long full_files = 0, parse_files = 0, full_bytes = 0, events = 0;
    double end = now() + seconds;
    while (now() < end) {
        /* one slice of each, side by side: ~0.5 s of full, ~0.5 s of parse */
        double t0 = now();
        while (now() - t0 < 0.5) {
            struct kb_kadaster_batch b;
            kb_kadaster_batch_init(&b);
            for (size_t i = 0; i < n; i++)
                kb_kadaster_batch_add(&b, i, names[i], files[i], lens[i], 0, NULL, no_reject, NULL);
            struct kb_ingress_event *evs = NULL;
            size_t ne = 0;
            if (kb_kadaster_events(&ctx, &b, &evs, &ne, errstr, sizeof errstr)) {
                fprintf(stderr, "%s\n", errstr);
                return 1;
            }
            events += ne;
            kb_kadaster_events_free(evs, ne);
            kb_kadaster_batch_fini(&b);
            full_files += n;
            full_bytes += total;
        }
        full_t += now() - t0;
        t0 = now();
        while (now() - t0 < 0.5) {
            for (size_t i = 0; i < n; i++) {
                struct kb_brk_doc doc;
                if (kb_brk_parse(files[i], lens[i], &lim, &doc, errstr, sizeof errstr))
                    return 1;
                kb_brk_doc_fini(&doc);
            }
            parse_files += n;
        }
        parse_t += now() - t0;
    }
    double fps = (double)full_files / full_t, pps = (double)parse_files / parse_t;
    printf("fixtures=%zu avg_file_bytes=%zu seconds=%.0f\n", n, total / n, seconds);
    printf("bench-kadaster files_per_s=%.0f mb_per_s=%.1f events_per_s=%.0f "
           "parse_files_per_s=%.0f parse_share=%.2f\n",
           fps, (double)full_bytes / full_t / 1e6, (double)events / full_t, pps, fps / pps);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    kb_schemas_destroy(schemas);
    return 0;
}
