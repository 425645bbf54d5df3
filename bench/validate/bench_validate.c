/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * bench_validate.c - one mix of ~300-byte fictitious birth events (encoded by
 * avro-c from schemas/brp/persoon-geboren.avsc), measured side by side in
 * one run: avro-c generic decode (avro_value_read), kb_validate() on every
 * SIMD path this CPU runs, and kb_projection_apply() with two pseudonymised
 * fields. Usage: bench-validate [SECONDS_PER_MEASUREMENT] (default 20), or
 * bench-validate --passes N: exactly N passes over the mix per measurement,
 * for instruction counts under callgrind; --path NAME measures that SIMD
 * path only. Rates are per CPU second of this
 * thread (the goals are per core; the machine is shared).
 *
 * Perf notes (Release -O3, 2-core AMD EPYC, shared; 256 events, 295.6 B avg):
 *   Instructions per event (valgrind --tool=callgrind --toggle-collect=...,
 *   --passes 20, kb_validate averaged over the three paths):
 *                          before (node walker)   after (flat program)
 *     kb_validate                23 804                 2 937
 *     kb_projection_apply       204 969                23 539
 *   (valgrind has no SHA-NI, so SHA-256 weighs more there than on the CPU.)
 *   CPU-time rates, one run under load average ~8: avro-c 74 MB/s; scalar
 *   1.04 GB/s, sse42 1.11 GB/s, avx2 1.15 GB/s (15.5x avro-c); projection
 *   223 MB/s. Same load, the old code: 0.22-0.31 GB/s, projection 19-34 MB/s.
 *   Where it went: a function call per value and a recursive walk became a
 *   flat instruction array (records inlined, depth limits decided when
 *   compiling, unions and array loops as jumps) run by one loop that each
 *   kernel path compiles with its kernels inlined (validate_run.h); short
 *   ASCII strings are one masked load; UTF-8 is decoded only past a
 *   non-ASCII byte; one-byte varints inline; a field with one rule calls it
 *   directly; BSN/A-nummer/date digits are tested eight at a time (checked
 *   equal to check.c on every 8-digit string, 1.4e8 9-digit strings and
 *   2e8 random ones). A rejection re-walks with the node walker for the
 *   rule, path and offset, so messages are unchanged. Projection: one-shot
 *   HMAC() (an algorithm fetch and key setup per value) became copies of
 *   the inner/outer SHA-256 states keyed once per projection.
 *   Remaining cost per event: about 40 program steps (dispatch ~7 instr
 *   each), ~28 strings (~35 instr each plus their rules); projection:
 *   SHA-256 (2 blocks per pseudonym), EVP_MD_CTX_copy_ex allocations
 *   (OpenSSL 3.0), and kb__validate_skip's recursive walk over dropped fields.
 *
 * Perf notes, round 2 (RelWithDebInfo -O2, same machine, load average 4-7):
 *   kb_validate instructions per event (callgrind as above, --path each):
 *                     scalar   sse42   avx2
 *     before           3 216   3 151   3 169
 *     after            1 766   1 777   1 773
 *   CPU-time rates, best of 3 side by side with the old build (each path
 *   alternating old/new, 3 s each, load ~6-7): scalar 0.76 -> 1.63 GB/s,
 *   sse42 0.83 -> 1.47, avx2 0.86 -> 1.48; avro-c 59-81 MB/s. Quieter
 *   moments gave the new scalar path 1.9-2.17 GB/s (ratio_avroc 26-32).
 *   The paths now differ by little: the hot code is word (SWAR) code on
 *   every path, the vector kernels only win on strings over 16 bytes.
 *   What changed: threaded dispatch (each instruction holds its handler's
 *   address); a handler per string kind instead of a flag test and a rule
 *   switch per value; ["null","string"] reads the branch byte and a
 *   one-byte length together; rules only ASCII can pass (BSN, A-nummer,
 *   dates, patterns, uuid, allowed values) skip the UTF-8 check; fixed
 *   patterns of byte ranges ("[0-9]{4}", postcodes) are two word
 *   additions per 8 bytes; small kb.allowed sets are word compares; BSN
 *   and A-nummer weights are two multiplications, dates split into y/m/d
 *   with one; ints and longs are checked without decoding, two-byte
 *   lengths inline; UTF-8 with only two-byte sequences (é, ë, Ö) is checked
 *   eight bytes at a time; ASCII tests use overlapping loads, no tails.
 *   All helpers were checked equal to the old ones on every 8-digit string,
 *   2e8 random 9/10-digit strings and 1e8 random UTF-8 strings; the unit
 *   test and the fuzz target hold the flat program and the node walker to
 *   the same verdicts. Remaining cost per event: ~1 150 instructions of
 *   structure (46 operations: null unions ~13, strings ~30 each), ~600 in
 *   rules (dates ~34 each, BSN ~40, A-nummer ~70, UTF-8 of the one
 *   non-ASCII name ~100, ASCII tests ~6-20 per string).
 *
 * Perf notes, round 3 (RelWithDebInfo -O2, same machine, shared):
 *   Instructions per event (callgrind, --passes 20, --path each):
 *                          scalar   sse42   avx2   projection (scalar)
 *     before                1 766   1 777   1 773        20 445
 *     after                 1 396   1 445   1 413        15 872
 *   (projection: 12 669 of both are SHA-256 without SHA-NI under valgrind;
 *   the rest went from 7 776 to 3 203.)
 *   Side by side, 5 s per measurement, five rounds alternating old/new
 *   (load average 6-12): best_gbps 1.32-1.82 -> 1.81-2.24 (>= 2.0 in four),
 *   project_gbps 0.21-0.24 -> 0.35-0.41.
 *   What changed: with 66 bytes or more left and max_string >= 63, a
 *   ["null","string"] is one 16-bit load (null: done; branch 1 with a
 *   one-byte length: the string) with no bounds, max_string or limit test,
 *   and the rule is told it may read 64 bytes from the value (lim = s + 64,
 *   a constant distance, so the word loads' tests fold away); plain strings
 *   likewise; the length is a block-local constant (it was spilled to the
 *   stack); digit tests are (w - '0'..) | (w + 0x46..) against the high
 *   bits; GBA dates use a table of the largest day per month and look at the
 *   year only for 29 February; masks for short values come from a table;
 *   an empty array is one byte test. Projection: a flat program of its own
 *   (records inlined, unions and loops as jumps) that copies kept bytes as
 *   whole ranges instead of value by value and hex-encodes pseudonyms eight
 *   digits per word. Tried and dropped: GCC's no-crossjumping on run()
 *   (+25% instructions), a fast path for the end of an array's last block
 *   (+19 instructions: register pressure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ketenbus/schema.h"
#include "ketenbus/validate.h"

#define N_EVENTS 256

/* CPU time of this thread: the goals are per core, and on a shared machine
 * wall-clock time also counts the time other processes held the core. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct mix {
    uint8_t *p[N_EVENTS];
    size_t len[N_EVENTS];
    size_t total;
};

static const char *const firsts[] = {"Sophie", "Daan Pieter", "Émile", "Noor", "Lucas Johannes",
                                     "Zoë", "Sem", "Julia Maria Catharina"};
static const char *const lasts[] = {"Jansen", "de Vries", "van den Berg", "Bakker", "Visser",
                                    "Smit", "Meijer", "de Groot-Öztürk"};

static int build_mix(const struct kb_schema *sc, struct mix *m)
{
    /* BSNs 99999xxxx passing the 11-proef, computed here. */
    char bsns[64][10];
    int nb = 0;
    for (int x = 0; x < 10000 && nb < 64; x++) {
        char s[10];
        snprintf(s, sizeof s, "99999%04d", x);
        int sum = 0;
        for (int i = 0; i < 8; i++)
            sum += (9 - i) * (s[i] - '0');
        sum -= s[8] - '0';
        if (sum % 11 == 0)
            memcpy(bsns[nb++], s, 10);
    }
    m->total = 0;
    for (int e = 0; e < N_EVENTS; e++) {
        avro_value_t v, arr, el;
        char err[256], date[9];
        avro_generic_value_new(sc->iface, &v);
        kb_value_init_nulls(&v);
        kb_value_set_string(&v, "kind.aNummer", "9010101069");
        kb_value_set_string(&v, "kind.bsn", bsns[e % nb]);
        kb_value_set_string(&v, "kind.voornamen", firsts[e % 8]);
        kb_value_set_string(&v, "kind.voorvoegsel", e % 3 ? NULL : "van");
        kb_value_set_string(&v, "kind.geslachtsnaam", lasts[(e / 8) % 8]);
        snprintf(date, sizeof date, "2024%02d%02d", 1 + e % 12, e % 5 ? 1 + e % 28 : 0);
        kb_value_set_string(&v, "kind.geboortedatum", date);
        kb_value_set_string(&v, "kind.geboorteplaats", "0599");
        kb_value_set_string(&v, "kind.geboorteland", "6030");
        kb_value_set_string(&v, "kind.geslacht", e % 2 ? "M" : "V");
        avro_value_get_by_name(&v, "ouders", &arr, NULL);
        for (int i = 0; i < 1 + (e % 4 != 0); i++) {
            avro_value_append(&arr, &el, NULL);
            kb_value_init_nulls(&el);
            kb_value_set_int(&el, "ouderNummer", i + 1);
            kb_value_set_string(&el, "persoon.bsn", bsns[(e + 7 + i) % nb]);
            kb_value_set_string(&el, "persoon.voornamen", firsts[(e + 3 + i) % 8]);
            kb_value_set_string(&el, "persoon.geslachtsnaam", lasts[(e + i) % 8]);
            kb_value_set_string(&el, "datumFamilierechtelijkeBetrekking", date);
        }
        kb_value_set_string(&v, "akte.registergemeente", "0599");
        kb_value_set_string(&v, "akte.aktenummer", "1A0042");
        kb_value_set_string(&v, "inschrijving.gemeente", "0599");
        kb_value_set_string(&v, "inschrijving.datumInschrijving", date);
        kb_value_set_string(&v, "herkomst.berichtType", "Lg01");
        kb_value_set_string(&v, "herkomst.randomKey", "00012345");
        kb_value_set_string(&v, "herkomst.datumTijd", "20240102030405000");
        kb_value_set_long(&v, "herkomst.ontvangen", 1700000000000LL + e);
        kb_value_set_string(&v, "herkomst.sha256",
                            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        uint8_t *framed = NULL;
        size_t flen = 0;
        if (kb_schema_encode(sc, &v, &framed, &flen, err, sizeof err) != KB_OK) {
            fprintf(stderr, "encode: %s\n", err);
            return -1;
        }
        avro_value_decref(&v);
        m->len[e] = flen - 5;
        m->p[e] = malloc(flen - 5);
        memcpy(m->p[e], framed + 5, flen - 5);
        free(framed);
        m->total += m->len[e];
    }
    return 0;
}

/* Run BODY over the mix for @p secs (or exactly `passes` passes when that
 * is set, for instruction counts under callgrind); MB/s (10^6 bytes). */
#define MEASURE(secs, bytes_out, BODY)                                                        \
    do {                                                                                      \
        double t0 = now(), t1;                                                                \
        size_t bytes = 0;                                                                     \
        long done = 0;                                                                        \
        do {                                                                                  \
            for (int rep = 0; rep < (passes ? 1 : 64); rep++, done++)                         \
                for (int e = 0; e < N_EVENTS; e++) {                                          \
                    BODY;                                                                     \
                    bytes += m.len[e];                                                        \
                }                                                                             \
            t1 = now();                                                                       \
        } while (passes ? done < passes : t1 - t0 < (secs));                                  \
        bytes_out = (double)bytes / (t1 - t0) / 1e6;                                          \
    } while (0)

int main(int argc, char **argv)
{
    double secs = 20.0;
    long passes = 0;
    const char *only = NULL; /* --path NAME: measure that SIMD path alone */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--passes") && i + 1 < argc)
            passes = atol(argv[++i]);
        else if (!strcmp(argv[i], "--path") && i + 1 < argc)
            only = argv[++i];
        else
            secs = atof(argv[i]);
    }
    char err[256];
    kb_schemas_t *schemas = kb_schemas_load_dir(KB_SCHEMA_DIR, err, sizeof err);
    if (!schemas) {
        fprintf(stderr, "schemas: %s\n", err);
        return 1;
    }
    const struct kb_schema *sc = kb_schemas_by_type(schemas, "nl.brp.persoon-geboren");
    struct mix m;
    if (!sc || build_mix(sc, &m))
        return 1;
    printf("mix: %d events, %.1f bytes on average\n", N_EVENTS, (double)m.total / N_EVENTS);

    /* avro-c: decode into one reused generic value, as a consumer would. */
    avro_value_t val;
    avro_generic_value_new(sc->iface, &val);
    avro_reader_t rd = avro_reader_memory((const char *)m.p[0], (int64_t)m.len[0]);
    double avroc_mbps;
    int fails = 0;
    MEASURE(secs, avroc_mbps, {
        avro_reader_memory_set_source(rd, (const char *)m.p[e], (int64_t)m.len[e]);
        avro_value_reset(&val);
        fails += avro_value_read(rd, &val) != 0;
    });
    avro_reader_free(rd);
    avro_value_decref(&val);
    printf("avro-c generic decode: %.0f MB/s\n", avroc_mbps);

    static const char *const paths[] = {"scalar", "sse42", "avx2"};
    double best = 0, scalar = 0;
    const char *best_path = "scalar";
    kb_validator_t *v = NULL;
    for (size_t i = 0; i < 3; i++) {
        if (!kb_validate_simd_usable(paths[i]) || (only && strcmp(only, paths[i])))
            continue;
        struct kb_validate_opts o;
        memset(&o, 0, sizeof o);
        o.simd = paths[i];
        kb_validator_t *pv = kb_validate_compile(sc->json, &o, err, sizeof err);
        if (!pv) {
            fprintf(stderr, "compile: %s\n", err);
            return 1;
        }
        double mbps;
        MEASURE(secs, mbps, fails += kb_validate(pv, m.p[e], m.len[e], NULL) != KB_OK);
        printf("ketenbus validate [%s]: %.0f MB/s (%.1fx avro-c)\n", paths[i], mbps,
               mbps / avroc_mbps);
        if (!strcmp(paths[i], "scalar"))
            scalar = mbps;
        if (mbps > best) {
            best = mbps;
            best_path = paths[i];
        }
        kb_validate_destroy(v);
        v = pv;
    }
    if (!v) {
        fprintf(stderr, "SIMD path %s is not usable here\n", only ? only : "(none)");
        return 1;
    }
    const char *fields[] = {"kind.bsn", "kind.geboortedatum", "kind.geslacht", "ouders",
                            "inschrijving"};
    const char *pseudo[] = {"kind.bsn", "ouders.persoon.bsn"};
    static const uint8_t key[] = "bench-key";
    kb_projection_t *pj =
        kb_projection_new(v, fields, 5, pseudo, 2, key, sizeof key - 1, "nl.bench.Sub", err,
                          sizeof err);
    if (!pj) {
        fprintf(stderr, "projection: %s\n", err);
        return 1;
    }
    uint8_t *out = NULL;
    size_t cap = 0, olen = 0;
    double project_mbps;
    MEASURE(secs, project_mbps, fails += kb_projection_apply(pj, m.p[e], m.len[e], &out, &cap,
                                                             &olen) != KB_OK);
    printf("projection (5 fields, 2-3 pseudonymised per event): %.0f MB/s of input\n",
           project_mbps);
    if (fails) {
        fprintf(stderr, "%d operations failed on valid input\n", fails);
        return 1;
    }
    printf("bench-validate avroc_mbps=%.0f best_gbps=%.3f best_path=%s ratio_avroc=%.1f "
           "scalar_gbps=%.3f project_gbps=%.3f\n",
           avroc_mbps, best / 1000, best_path, best / avroc_mbps, scalar / 1000,
           project_mbps / 1000);
    free(out);
    kb_projection_destroy(pj);
    kb_validate_destroy(v);
    for (int e = 0; e < N_EVENTS; e++)
        free(m.p[e]);
    kb_schemas_destroy(schemas);
    return 0;
}
