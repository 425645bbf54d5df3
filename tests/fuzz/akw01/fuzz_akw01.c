/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_akw01.c - libFuzzer target for kb_akw01_parse(): any input must be
 * rejected cleanly or parse into a record that renders back to exactly the
 * input's first 160 bytes. The input is also tried as a UTF-8 naam for
 * kb_akw01_render(), whose output must be printable ASCII that parses again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "akw.h"

/* Render a valid record whose naam is the fuzz input (up to its first NUL). */
static void fuzz_naam(const uint8_t *data, size_t size)
{
    struct kb_akw01 rec = {
        .kenmerk = "000004711235",
        .datum_aanmaak = "20240402",
        .bsn_ouder = "999996204",
        .bsn_kind = "999995303",
        .geboortedatum_kind = "20240315",
        .gemeente_kind = "0344",
        .kanaal = 'D',
        .uiterste_reactiedatum = "20240702",
        .bron_anummer = "5281301274",
        .bron_berichttype = "Gv01",
        .bron_ontvangstdatum = "20240318",
        .verwerking = 'U',
        .buitenland = 'N',
        .geboorteland = "6030",
        .bsn_partner = "999997105",
    };
    struct kb_akw01 back;
    char line[KB_AKW01_LEN + 1];

    if (size >= sizeof rec.naam)
        return;
    memcpy(rec.naam, data, size);
    rec.naam[size] = '\0';
    if (kb_akw01_render(&rec, line, NULL, 0) != KB_OK)
        return;
    for (size_t i = 0; i < KB_AKW01_LEN; i++) {
        if (line[i] < 0x20 || line[i] > 0x7E)
            abort(); /* render let a non-printable byte through */
    }
    if (line[KB_AKW01_LEN] != '\0' || kb_akw01_parse(line, KB_AKW01_LEN, &back, NULL, 0) != KB_OK)
        abort(); /* parse rejects what render produced */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kb_akw01 rec;
    char errstr[128];
    char line[KB_AKW01_LEN + 1];

    fuzz_naam(data, size);
    if (kb_akw01_parse((const char *)data, size, &rec, errstr, sizeof errstr) != KB_OK)
        return 0;
    if (kb_akw01_render(&rec, line, errstr, sizeof errstr) != KB_OK)
        abort(); /* parse accepted what render rejects */
    if (size < KB_AKW01_LEN || memcmp(line, data, KB_AKW01_LEN) != 0)
        abort(); /* not a round trip */
    return 0;
}
