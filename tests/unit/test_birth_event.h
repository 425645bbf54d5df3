/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_birth_event.h - a valid nl.brp.persoon-geboren payload of a
 * fictitious child, for router tests that put events on a (mock) input
 * topic. Include after kb_test.h and ketenbus/schema.h.
 */
#ifndef KB_TEST_BIRTH_EVENT_H
#define KB_TEST_BIRTH_EVENT_H

#include <stdio.h>
#include <stdlib.h>

#include "ketenbus/schema.h"

/*
 * The Avro bytes (no framing, malloc'ed) of a birth in Utrecht of child
 * @p bsn with @p n_parents parents (ouderNummer 1, 2, ...) of BSNs
 * @p parent_bsns, and @p tag as herkomst.sha256 (it tells events apart).
 * NULL when it cannot be encoded (said on stderr).
 */
static inline uint8_t *test_birth_value(const struct kb_schema *schema, const char *bsn,
                                        const char *const *parent_bsns, int n_parents,
                                        const char *tag, size_t *len)
{
    char errstr[256];
    avro_value_t v, ouders, ouder;
    avro_generic_value_new(schema->iface, &v);
    kb_value_init_nulls(&v);
    kb_value_set_string(&v, "kind.bsn", bsn);
    kb_value_set_string(&v, "kind.voornamen", "Sanne");
    kb_value_set_string(&v, "kind.geslachtsnaam", "Proefman");
    kb_value_set_string(&v, "kind.geboortedatum", "20240315");
    kb_value_set_string(&v, "kind.geboorteland", "6030");
    kb_value_set_string(&v, "kind.geslacht", "V");
    avro_value_get_by_name(&v, "ouders", &ouders, NULL);
    for (int o = 0; o < n_parents; o++) {
        size_t idx;
        avro_value_append(&ouders, &ouder, &idx);
        kb_value_init_nulls(&ouder);
        kb_value_set_int(&ouder, "ouderNummer", o + 1);
        kb_value_set_string(&ouder, "persoon.bsn", parent_bsns[o]);
        kb_value_set_string(&ouder, "persoon.voornamen", "Daan");
        kb_value_set_string(&ouder, "persoon.geslachtsnaam", "Testerink");
    }
    kb_value_set_string(&v, "inschrijving.gemeente", "0344");
    kb_value_set_string(&v, "inschrijving.datumInschrijving", "20240315");
    kb_value_set_string(&v, "herkomst.berichtType", "Lg01");
    kb_value_set_string(&v, "herkomst.randomKey", "00000000");
    kb_value_set_long(&v, "herkomst.ontvangen", 1710500000000);
    kb_value_set_string(&v, "herkomst.sha256", tag);
    uint8_t *value = NULL;
    kb_err_t err = kb_schema_encode(schema, &v, &value, len, errstr, sizeof errstr);
    avro_value_decref(&v);
    if (err) {
        fprintf(stderr, "encode: %s\n", errstr);
        return NULL;
    }
    return value;
}

#endif
