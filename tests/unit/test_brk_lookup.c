/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_brk_lookup.c - the snapshot index of the Kadaster adapter
 * (adapters/kadaster/brk_lookup.c) gives the same answer as a scan in
 * document order for every key, present or not: persons, rights and deeds
 * by local id or identificatie (one person's local id may be another's
 * identificatie, and ids may repeat), tenaamstellingen, parts by kind and
 * identificatie, fields by kind; empty references match nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brk_lookup.h"
#include "kb_test.h"

#define N 300

static unsigned rng = 12345;
static unsigned next(void)
{
    rng = rng * 1103515245u + 12345u;
    return (rng >> 16) & 0x7fff;
}

/* An id out of a small space, so that repeats and cross matches happen. */
static void id(char *out, const char *prefix)
{
    unsigned r = next() % 40;
    if (r == 0)
        out[0] = '\0';
    else
        snprintf(out, KB_BRK_ID_MAX, "%s%u", prefix, r);
}

int main(void)
{
    struct kb_brk_snapshot s;
    memset(&s, 0, sizeof s);
    s.personen = calloc(N, sizeof *s.personen);
    s.rechten = calloc(N, sizeof *s.rechten);
    s.stukdelen = calloc(N, sizeof *s.stukdelen);
    s.tenaamstellingen = calloc(N, sizeof *s.tenaamstellingen);
    s.parts = calloc(N, sizeof *s.parts);
    s.fields = calloc(N, sizeof *s.fields);
    s.n_personen = s.n_rechten = s.n_stukdelen = s.n_tenaamstellingen = s.n_parts = s.n_fields = N;
    static const char *const kinds[] = {"ZakelijkRecht", "Tenaamstelling", "Persoon", "Stuk"};
    for (size_t i = 0; i < N; i++) {
        /* both kinds of id from one space: a local id may equal another's identificatie */
        id(s.personen[i].local_id, "P");
        id(s.personen[i].identificatie, "P");
        id(s.rechten[i].local_id, "R");
        id(s.rechten[i].identificatie, "R");
        id(s.stukdelen[i].local_id, "S");
        id(s.stukdelen[i].identificatie, "S");
        id(s.tenaamstellingen[i].identificatie, "T");
        snprintf(s.parts[i].kind, KB_BRK_ID_MAX, "%s", kinds[next() % 4]);
        id(s.parts[i].identificatie, "X");
        snprintf(s.fields[i].kind, KB_BRK_ID_MAX, "veld%u", next() % 60);
    }
    /* The same questions of the snapshot without and with its index. */
    const void *scan[7][64][4] = {{{0}}}, *indexed[7][64][4] = {{{0}}};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            CHECK_INT(kb_brk_lookup_build(&s), KB_OK);
        const void *(*out)[64][4] = pass ? indexed : scan;
        for (unsigned k = 0; k < 64; k++) {
            char key[KB_BRK_ID_MAX];
            snprintf(key, sizeof key, k ? "P%u" : "", k);
            out[0][k][0] = kb_brk_find_persoon(&s, key);
            snprintf(key, sizeof key, k ? "R%u" : "", k);
            out[1][k][0] = kb_brk_find_recht(&s, key);
            snprintf(key, sizeof key, k ? "S%u" : "", k);
            out[2][k][0] = kb_brk_find_stukdeel(&s, key);
            snprintf(key, sizeof key, k ? "T%u" : "", k);
            out[3][k][0] = (const void *)(size_t)kb_brk_has_tenaamstelling(&s, key);
            for (unsigned m = 0; m < 4; m++) {
                snprintf(key, sizeof key, k ? "X%u" : "", k);
                out[4][k][m] = kb_brk_find_part(&s, kinds[m], key);
            }
            snprintf(key, sizeof key, "veld%u", k);
            out[5][k][0] = kb_brk_find_field(&s, key);
        }
    }
    size_t found = 0;
    for (int t = 0; t < 6; t++)
        for (unsigned k = 0; k < 64; k++)
            for (unsigned m = 0; m < 4; m++) {
                CHECK(scan[t][k][m] == indexed[t][k][m]);
                found += scan[t][k][m] != NULL;
            }
    CHECK(found > 100); /* the questions do find things: the comparison means something */
    CHECK(kb_brk_find_persoon(&s, "") == NULL);
    CHECK(kb_brk_find_persoon(NULL, "P1") == NULL);
    CHECK(!kb_brk_has_tenaamstelling(NULL, "T1"));
    kb_brk_lookup_free(s.lookup);
    free(s.personen);
    free(s.rechten);
    free(s.stukdelen);
    free(s.tenaamstellingen);
    free(s.parts);
    free(s.fields);
    KB_TEST_DONE();
}
