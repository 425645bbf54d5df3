/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gba_diff.c - bench-gba-diff: the byte-identity check for speed work on the
 * GBA adapter. For every LO3 file named on stdin (the fixtures and fuzz
 * corpora), 64 variants of the context (key, source, cache or none,
 * dataref, time), messages generated from them in the style of `ketenbus
 * gen` (fictitious 9999 BSNs passing the 11-proef, dates, A-nummers, names
 * with Teletex diacritics, other lengths), every truncation and seeded
 * mutants, it runs what ketenbus-gba runs (kb_lo3_parse, kb_lo3_check,
 * kb_gba_events, and for some kb_lo3_to_json) and prints one line per case:
 * its number and a hash of everything produced (parse result, findings,
 * events with ids, attributes, keys and Avro bytes, errors). Two builds that
 * print the same lines produce the same output; `--dump N` prints case N in
 * full to see a difference.
 *   find tests/fixtures/gba tests/fuzz/lo3/corpus -type f |
 *     bench-gba-diff SOURCE_DIR [MUTANTS [GENERATED]] [--dump N] > cases.txt
 * (defaults: 3000 mutants and 6000 generated messages per input).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gba_events.h"
#include "lo3.h"
#include "lo3_check.h"
#include "lo3_json.h"

static kb_schemas_t *schemas;
static kb_gba_cache_t *cache;
static const uint8_t keys[3][40] = {
    {42}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, {0xff, 0xee, 0xdd}};
static const size_t key_lens[3] = {32, 17, 40};
static long dump_case = -1;
static long case_no, n_parsed, n_with_events, n_events_err;
static EVP_MD_CTX *md;
static FILE *dumpf;

static void out(const void *p, size_t n)
{
    EVP_DigestUpdate(md, p, n);
    if (dumpf)
        fwrite(p, 1, n, dumpf);
}

static void outs(const char *s)
{
    out(s, strlen(s));
}

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...)
{
    char b[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    out(b, n < 0 ? 0 : (size_t)n < sizeof b ? (size_t)n : sizeof b - 1);
}

static void hex(const uint8_t *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    char b[2];
    for (size_t i = 0; i < n; i++) {
        b[0] = d[p[i] >> 4];
        b[1] = d[p[i] & 15];
        out(b, 2);
    }
}

static uint64_t sm(uint64_t *s);
/* one case: variant v selects key / cache / dataref / received */
static void one_case(const uint8_t *buf, size_t len, int variant, int json)
{
    case_no++;
    dumpf = case_no == dump_case ? stdout : NULL;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    struct kb_lo3_message lo3;
    char err[512];
    memset(err, 0, sizeof err);
    kb_err_t rc = kb_lo3_parse(buf, len, &lo3, err, sizeof err);
    outf("parse rc=%d err=%s\n", (int)rc, rc ? err : "");
    if (!rc) {
        outf("type=%s key=%s nh=%zu body=%d nb=%zu ncat=%zu nel=%zu\n", lo3.type, lo3.random_key,
             lo3.n_header, lo3.has_body, lo3.n_bodies, lo3.n_categories, lo3.n_elements);
        for (size_t i = 0; i < lo3.n_header; i++) {
            outf("h %s %zu ", lo3.header[i].name, lo3.header[i].len);
            hex(lo3.header[i].value, lo3.header[i].len);
            outs("\n");
        }
        for (size_t i = 0; i < lo3.n_categories; i++) {
            const struct kb_lo3_category *c = &lo3.categories[i];
            outf("c %u %zu %zu %zu %zu %zu\n", c->nummer, c->first, c->count, c->offset, c->stapel,
                 c->body);
        }
        for (size_t i = 0; i < lo3.n_elements; i++) {
            const struct kb_lo3_element *e = &lo3.elements[i];
            outf("e %u %zu %zu\n", e->nummer, e->offset, (size_t)(e->value - buf));
            (void)e;
        }
        struct kb_lo3_findings f;
        memset(&f, 0, sizeof f);
        kb_err_t crc = kb_lo3_check(&lo3, &f);
        outf("check rc=%d n=%zu nrej=%zu\n", (int)crc, f.n, f.n_reject);
        for (size_t i = 0; i < f.n; i++) {
            char s[512];
            kb_lo3_finding_str(&f.items[i], s, sizeof s);
            outf("f %s|%zu|%s|%s|%d|%s\n", f.items[i].rubriek, f.items[i].offset, f.items[i].rule,
                 f.items[i].what, f.items[i].reject, s);
        }
        kb_lo3_findings_fini(&f);
        int k = variant % 3;
        struct kb_gba_ctx ctx = {schemas, keys[k], key_lens[k],
                                 variant & 4 ? "urn:nld:oin:00000001234567890000:systeem:x"
                                             : "urn:nld:oin:00000099999999999000:systeem:bench",
                                 variant & 8 ? NULL : cache};
        struct kb_ingress_event *evs = NULL;
        size_t n = 0;
        memset(err, 0, sizeof err);
        int64_t rcv = variant & 16 ? 1710753330250 : 1700000000001 + variant;
        rc = kb_gba_events(&ctx, buf, len, &lo3, rcv, variant & 32 ? "s3://archive/x/y.lo3" : "",
                           &evs, &n, err, sizeof err);
        outf("events rc=%d n=%zu err=%s\n", (int)rc, n, rc ? err : "");
        n_parsed++;
        n_with_events += n > 0;
        n_events_err += rc != 0;
        for (size_t i = 0; i < n; i++) {
            const struct kb_event_attrs *a = &evs[i].attrs;
            outf("ev id=%s src=%s type=%s time=%s subj=%s dref=%s seq=%llu tp=%s sid=%d key=%s "
                 "len=%zu\n",
                 a->id, a->source, a->type, a->time, a->subject, a->dataref,
                 (unsigned long long)a->sequence, a->traceparent, a->schema_id, evs[i].key,
                 evs[i].len);
            hex(evs[i].value, evs[i].len);
            outs("\n");
        }
        kb_gba_events_free(evs, n);
    }
    kb_lo3_message_fini(&lo3);
    if (json) {
        char *js = NULL;
        memset(err, 0, sizeof err);
        rc = kb_lo3_to_json(buf, len, 0, &js, err, sizeof err);
        outf("json rc=%d err=%s\n%s\n", (int)rc, rc ? err : "", js ? js : "");
        free(js);
    }
    unsigned char h[32];
    unsigned int hl = 0;
    EVP_DigestFinal_ex(md, h, &hl);
    if (dump_case < 0) {
        printf("%ld ", case_no);
        for (unsigned i = 0; i < 8; i++)
            printf("%02x", h[i]);
        printf("\n");
    }
}

static uint64_t sm(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Generated messages: every element of a valid fixture gets, with some
 * probability, a fresh value in the style of `ketenbus gen` (fictitious
 * 9999 BSNs passing the 11-proef, dates, A-nummers, names with Teletex
 * diacritics and specials), possibly another length; the message is
 * rebuilt with kb_lo3_format() so all lengths agree. */
static void gen_bsn(uint64_t *s, uint8_t *o)
{
    for (;;) {
        memcpy(o, "9999", 4);
        for (int i = 4; i < 9; i++)
            o[i] = (uint8_t)('0' + sm(s) % 10);
        int sum = 0;
        for (int i = 0; i < 8; i++)
            sum += (9 - i) * (o[i] - '0');
        sum -= o[8] - '0';
        if (sum % 11 == 0)
            return;
    }
}

static size_t gen_text(uint64_t *s, uint8_t *o, size_t want)
{
    static const char *plain =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ -.'/0123456789";
    static const uint8_t pairs[][2] = {{0xC1, 'e'}, {0xC2, 'e'}, {0xC3, 'o'}, {0xC4, 'n'},
                                       {0xC8, 'u'}, {0xC8, 'e'}, {0xCB, 'c'}, {0xCA, 'a'},
                                       {0xCF, 's'}, {0xC2, 'E'}, {0xC8, 'I'}, {0xC5, 'a'}};
    static const uint8_t singles[] = {0xA4, 0xA6, 0xE1, 0xE2, 0xE8, 0xE9, 0xEA,
                                      0xF1, 0xF9, 0xFA, 0xFB, 0xA7, 0xB0, 0xC0};
    size_t n = 0;
    while (n < want) {
        unsigned r = (unsigned)(sm(s) % 100);
        if (r < 85 || n + 2 > want) {
            if (r >= 97 && r < 99)
                o[n++] = singles[sm(s) % sizeof singles];
            else if (r == 99)
                o[n++] = (uint8_t)(sm(s) % 256); /* anything: may be unmapped */
            else
                o[n++] = (uint8_t)plain[sm(s) % strlen(plain)];
        } else {
            const uint8_t *p = pairs[sm(s) % (sizeof pairs / sizeof pairs[0])];
            o[n++] = p[0];
            o[n++] = p[1];
        }
    }
    return n;
}

static void gen_value(uint64_t *s, const struct kb_lo3_element *e, uint8_t *o, size_t *ol)
{
    int digits = e->len > 0;
    for (size_t i = 0; i < e->len; i++)
        digits &= e->value[i] >= '0' && e->value[i] <= '9';
    unsigned r = (unsigned)(sm(s) % 100);
    if (r < 4) { /* empty */
        *ol = 0;
        return;
    }
    if (digits || e->len == 0) {
        size_t l = e->len ? e->len : 1 + sm(s) % 10;
        if (r < 8)
            l = 1 + sm(s) % 12; /* another length: may break the format */
        if (l == 9 && r < 80) {
            gen_bsn(s, o);
        } else if (l == 8 && r < 85) {
            unsigned y = 1900 + (unsigned)(sm(s) % 130), m = (unsigned)(sm(s) % 13),
                     dd = (unsigned)(sm(s) % 32);
            if (sm(s) % 4 == 0)
                m = 0, dd = 0;
            char t[16];
            snprintf(t, sizeof t, "%04u%02u%02u", y % 10000, m, dd);
            memcpy(o, t, 8);
        } else {
            for (size_t i = 0; i < l; i++)
                o[i] = (uint8_t)('0' + sm(s) % 10);
            if (l == 10 && r < 40)
                o[0] = (uint8_t)('1' + sm(s) % 9);
        }
        *ol = l;
        return;
    }
    size_t l = e->len;
    if (r < 30)
        l = 1 + sm(s) % (e->len + 8);
    if (r < 40 && l > 1)
        l = 1; /* a code */
    if (l == 1) {
        static const char codes[] = "MVOHPEWBNRF.01234567XZ";
        o[0] = (uint8_t)codes[sm(s) % (sizeof codes - 1)];
        *ol = 1;
        return;
    }
    if (l == 6 && r < 60) {
        o[0] = (uint8_t)('1' + sm(s) % 9);
        for (int i = 1; i < 4; i++)
            o[i] = (uint8_t)('0' + sm(s) % 10);
        o[4] = (uint8_t)('A' + sm(s) % 26);
        o[5] = (uint8_t)('A' + sm(s) % 26);
        *ol = 6;
        return;
    }
    *ol = gen_text(s, o, l);
}

static long n_generated;

static void generate(const uint8_t *buf, size_t len, unsigned idx, int n_gen)
{
    struct kb_lo3_message lo3;
    char e[256];
    if (kb_lo3_parse(buf, len, &lo3, e, sizeof e))
        return;
    if (!lo3.n_elements) {
        kb_lo3_message_fini(&lo3);
        return;
    }
    uint64_t s = 0xabcdefull * (idx + 7);
    struct kb_lo3_element *orig = malloc(lo3.n_elements * sizeof *orig);
    memcpy(orig, lo3.elements, lo3.n_elements * sizeof *orig);
    uint8_t *pool = malloc(lo3.n_elements * 1100);
    for (int g = 0; g < n_gen; g++) {
        unsigned pct = 5 + (unsigned)(sm(&s) % 60);
        for (size_t i = 0; i < lo3.n_elements; i++) {
            lo3.elements[i] = orig[i];
            if (sm(&s) % 100 < pct) {
                size_t ol = 0;
                gen_value(&s, &orig[i], pool + i * 1100, &ol);
                lo3.elements[i].value = pool + i * 1100;
                lo3.elements[i].len = ol;
            }
        }
        uint8_t *out = NULL;
        size_t ol = 0;
        if (!kb_lo3_format(&lo3, &out, &ol, e, sizeof e) && out) {
            n_generated++;
            one_case(out, ol, g % 64, g % 16 == 0);
        }
        free(out);
    }
    memcpy(lo3.elements, orig, lo3.n_elements * sizeof *orig);
    free(orig);
    free(pool);
    kb_lo3_message_fini(&lo3);
}

static void mutate_all(const uint8_t *buf, size_t len, unsigned idx, int n_rand)
{
    uint8_t *m = malloc(len + 64);
    /* every truncation */
    for (size_t t = 0; t < len; t++)
        one_case(buf, t, (int)(t % 64), 0);
    uint64_t s = 0x1234567ull * (idx + 1);
    {
        struct kb_lo3_message lo3;
        char e[256];
        if (!kb_lo3_parse(buf, len, &lo3, e, sizeof e)) {
            struct kb_gba_ctx ctx = {schemas, keys[0], key_lens[0], "urn:x", cache};
            struct kb_ingress_event *evs = NULL;
            size_t n = 0;
            if (!kb_gba_events(&ctx, buf, len, &lo3, 1, "", &evs, &n, e, sizeof e) && n)
                n_rand *= 15; /* an event source: mutate it much more */
            kb_gba_events_free(evs, n);
        }
        kb_lo3_message_fini(&lo3);
    }
    static const uint8_t interesting[] = {'0',  '9',  ' ', 'A', 0x7f, 0xc1, 0xc8, 0xa4,
                                          0x00, 0xff, '5', '1', 0xe1, 0xa6, 0xc2};
    for (int r = 0; r < n_rand && len; r++) {
        size_t ml = len;
        memcpy(m, buf, len);
        int keep = r >= n_rand / 3; /* in-place only: most stay well-formed */
        int nmut = 1 + (int)(sm(&s) % 3);
        for (int j = 0; j < nmut; j++) {
            size_t p = sm(&s) % ml;
            unsigned op = keep ? (sm(&s) % 3 == 0 ? 2u : 1u) : (unsigned)(sm(&s) % 6);
            if (keep && p < 32 && sm(&s) % 2)
                p = 32 + sm(&s) % (ml > 32 ? ml - 32 : 1);
            if (p >= ml)
                p = ml - 1;
            switch (op) {
            case 0: m[p] = (uint8_t)sm(&s); break;
            case 1: /* digit for digit, letter for letter: keeps the structure */
                if (m[p] >= '0' && m[p] <= '9')
                    m[p] = (uint8_t)('0' + sm(&s) % 10);
                else if (m[p] >= 'A' && m[p] <= 'Z')
                    m[p] = (uint8_t)('A' + sm(&s) % 26);
                else if (m[p] >= 'a' && m[p] <= 'z')
                    m[p] = (uint8_t)('a' + sm(&s) % 26);
                else
                    m[p] = interesting[sm(&s) % sizeof interesting];
                break;
            case 2: m[p] = interesting[sm(&s) % sizeof interesting]; break;
            case 3: /* delete */
                memmove(m + p, m + p + 1, ml - p - 1);
                ml--;
                break;
            case 4: /* insert */
                if (ml < len + 60) {
                    memmove(m + p + 1, m + p, ml - p);
                    m[p] = interesting[sm(&s) % sizeof interesting];
                    ml++;
                }
                break;
            default: /* digit in a digit place only */
                if (m[p] >= '0' && m[p] <= '9')
                    m[p] = (uint8_t)('0' + (m[p] - '0' + 1) % 10);
                break;
            }
            if (!ml)
                break;
        }
        one_case(m, ml, r % 64, r % 8 == 0);
    }
    free(m);
}

static int load(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    *buf = malloc(1 << 17);
    *len = fread(*buf, 1, 1 << 17, f);
    fclose(f);
    return 0;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-gba-diff SOURCE_DIR [MUTANTS [GENERATED]] [--dump N] "
                        "< list of LO3 files\n");
        return 2;
    }
    int n_rand = 3000, n_gen = 6000;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--dump") && i + 1 < argc)
            dump_case = atol(argv[++i]);
        else if (i == 2)
            n_rand = atoi(argv[i]);
        else if (i == 3)
            n_gen = atoi(argv[i]);
    }
    char err[512], dir[1200];
    snprintf(dir, sizeof dir, "%s/schemas", argv[1]);
    schemas = kb_schemas_load_dir(dir, err, sizeof err);
    if (!schemas) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    cache = kb_gba_cache_new();
    md = EVP_MD_CTX_new();
    char *files[1000];
    size_t nf = 0;
    char line[4096];
    while (nf < 1000 && fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        files[nf++] = strdup(line);
    }
    qsort(files, nf, sizeof files[0], cmpstr);
    for (size_t i = 0; i < nf; i++) {
        uint8_t *buf;
        size_t len;
        if (load(files[i], &buf, &len))
            continue;
        for (int v = 0; v < 64; v++)
            one_case(buf, len, v, v == 0);
        free(buf);
    }
    for (size_t i = 0; i < nf; i++) {
        uint8_t *buf;
        size_t len;
        if (load(files[i], &buf, &len))
            continue;
        generate(buf, len, (unsigned)i, n_gen);
        mutate_all(buf, len, (unsigned)i, n_rand);
        free(buf);
    }
    fprintf(stderr, "bench-gba-diff: %ld generated, ", n_generated);
    fprintf(stderr, "%zu inputs, %ld cases, %ld parsed, %ld with events, %ld rejected by events\n",
            nf, case_no, n_parsed, n_with_events, n_events_err);
    kb_gba_cache_destroy(cache);
    kb_schemas_destroy(schemas);
    EVP_MD_CTX_free(md);
    for (size_t i = 0; i < nf; i++)
        free(files[i]);
    fflush(stdout);
    return 0;
}
