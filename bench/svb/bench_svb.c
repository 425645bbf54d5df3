/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_svb.c - throughput of the SVB adapter's record work, side by side in
 * one run: AKW02 parse alone, AKW02 parse + Avro event (what ingest does per
 * record before Kafka), and AKW01 render + parse. Kafka is not involved: the
 * broker's speed is not the adapter's. ~2 minutes by default (--seconds N
 * per phase, default 40). Ends with one summary line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "akw.h"
#include "svb_ingest.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char two_kids[] = "AKW02000004711235202404109999962049999971050299999530"
                               "3EJ999991012ANNL91ABNA041716430020242";

int main(int argc, char **argv)
{
    double secs = 40;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--seconds"))
            secs = atof(argv[i + 1]);
    char errstr[512];
    kb_schemas_t *schemas = kb_schemas_load_dir(getenv("KB_SCHEMAS") ? getenv("KB_SCHEMAS")
                                                                      : KB_SCHEMA_DIR,
                                                errstr, sizeof errstr);
    if (!schemas) {
        fprintf(stderr, "bench-svb: %s\n", errstr);
        return 1;
    }
    uint8_t key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    struct kb_svb_ingest_ctx ctx = {schemas, key, sizeof key,
                                    "urn:nld:oin:00000099999999999000:systeem:ketenbus-svb"};
    static struct kb_akw02 rec;
    unsigned long long n_parse = 0, n_event = 0, n_akw01 = 0;
    volatile int sink = 0;

    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 1000; i++)
            sink += kb_akw02_parse(two_kids, sizeof two_kids - 1, &rec, NULL, 0);
        n_parse += 1000;
    } while ((t = now_s()) - t0 < secs);
    double parse_rate = n_parse / (t - t0);

    t0 = now_s();
    do {
        for (int i = 0; i < 100; i++) {
            struct kb_ingress_event ev;
            if (kb_akw02_parse(two_kids, sizeof two_kids - 1, &rec, NULL, 0) ||
                kb_svb_akw02_event(&ctx, &rec, two_kids, sizeof two_kids - 1, KB_SVB_SPOOL, 1,
                                   1712743200000, "file:///bench", &ev, errstr, sizeof errstr)) {
                fprintf(stderr, "bench-svb: %s\n", errstr);
                return 1;
            }
            free(ev.value);
        }
        n_event += 100;
    } while ((t = now_s()) - t0 < secs);
    double event_rate = n_event / (t - t0);

    struct kb_akw01 a = {
        .kenmerk = "000004711235", .datum_aanmaak = "20240402", .bsn_ouder = "999996204",
        .bsn_kind = "999995303", .geboortedatum_kind = "20240315", .gemeente_kind = "0344",
        .kanaal = 'D', .uiterste_reactiedatum = "20240702", .bron_anummer = "5281301274",
        .bron_berichttype = "Gv01", .bron_ontvangstdatum = "20240318", .verwerking = 'U',
        .buitenland = 'N', .geboorteland = "6030", .bsn_partner = "999997105",
        .naam = "A.M. Bakker"};
    struct kb_akw01 back;
    char line[KB_AKW01_LEN + 1];
    t0 = now_s();
    do {
        for (int i = 0; i < 1000; i++) {
            sink += kb_akw01_render(&a, line, NULL, 0);
            sink += kb_akw01_parse(line, KB_AKW01_LEN, &back, NULL, 0);
        }
        n_akw01 += 1000;
    } while ((t = now_s()) - t0 < secs);
    double akw01_rate = n_akw01 / (t - t0);

    kb_schemas_destroy(schemas);
    printf("akw02_parse_per_s=%.0f akw02_event_per_s=%.0f akw01_render_parse_per_s=%.0f "
           "(sink %d)\n",
           parse_rate, event_rate, akw01_rate, sink);
    printf("bench-svb records_per_s=%.0f akw02_parse_per_s=%.0f akw01_per_s=%.0f "
           "event_vs_parse=%.3f\n",
           event_rate, parse_rate, akw01_rate, event_rate / parse_rate);
    return 0;
}
