/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fuzz_brk_xml.c - libFuzzer target for the BRK Levering reader: any bytes
 * (XML, or a zip of XML) must be accepted or refused cleanly. A refusal
 * leaves the document empty and says why; an accepted document passes or
 * fails the business checks without crashing; a zip never yields more
 * documents than its entry limit. Limits are lowered so the fuzzer reaches
 * them with small inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "brk_xml.h"
#include "kadaster_events.h"

static int reject(void *arg, size_t file_index, const char *document, int whole_file,
                  const uint8_t *raw, size_t len, const char *rule, const char *reason)
{
    (void)arg, (void)file_index, (void)whole_file, (void)raw, (void)len;
    if (!document || !rule || !reason || !reason[0])
        abort(); /* every refusal names the document, the rule and the reason */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kb_brk_limits lim;
    kb_brk_limits_default(&lim);
    lim.max_depth = 24;
    lim.max_attr = 256;
    lim.max_text = 4096;
    lim.max_parts = 64;
    lim.max_snapshots = 8;
    char errstr[256] = "";
    struct kb_brk_doc doc;
    kb_err_t err = kb_brk_parse(data, size, &lim, &doc, errstr, sizeof errstr);
    if (err) {
        if (!errstr[0] || doc.kind || doc.stand || doc.was.parts || doc.wordt.parts)
            abort();
    } else {
        if (doc.kind != KB_BRK_MUTATIE && doc.kind != KB_BRK_STAND)
            abort();
        if (doc.n_stand > lim.max_snapshots || doc.was.n_parts > lim.max_parts ||
            doc.wordt.n_parts > lim.max_parts)
            abort();
        kb_kadaster_check(&doc, errstr, sizeof errstr);
    }
    kb_brk_doc_fini(&doc);

    if (kb_brk_is_zip(data, size)) {
        struct kb_kadaster_batch b;
        kb_kadaster_batch_init(&b);
        b.xml = lim;
        b.zip.max_entries = 4;
        b.zip.max_entry = 1u << 20;
        b.zip.max_total = 2u << 20;
        if (kb_kadaster_batch_add(&b, 0, "fuzz.zip", data, size, 0, NULL, reject, NULL) != KB_OK ||
            b.n_docs > 4)
            abort();
        kb_kadaster_batch_fini(&b);
    }
    return 0;
}
