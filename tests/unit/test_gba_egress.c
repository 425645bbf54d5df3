/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_gba_egress.c - LO3 egress: events derived from the project's own
 * fixtures are rendered back to LO3 and compared with the bytes expected
 * by hand (the source message minus the elements the event does not
 * carry), and an event type without an LO3 form is refused with a reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gba_egress.h"
#include "gba_events.h"
#include "kb_test.h"
#include "ketenbus/schema.h"
#include "lo3.h"
#include "lo3_json.h"

static char src_dir[1024];
static kb_schemas_t *schemas;
static const uint8_t key[32] = {7};

/* Derive the events of fixture @p name and render event @p i. */
static kb_err_t render(const char *name, size_t i, uint8_t **out, size_t *out_len, char *err,
                       size_t err_size)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/tests/fixtures/gba/%s", src_dir, name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    static uint8_t buf[8192];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    struct kb_lo3_message msg;
    CHECK_INT(kb_lo3_parse(buf, len, &msg, err, err_size), KB_OK);
    struct kb_gba_ctx ctx = {schemas, key, sizeof key, "urn:nld:oin:00000099999999999000:systeem:t",
                             NULL};
    struct kb_ingress_event *evs = NULL;
    size_t n = 0;
    /* 2024-03-20T08:00:00Z */
    CHECK_INT(kb_gba_events(&ctx, buf, len, &msg, 1710921600000, "", &evs, &n, err, err_size),
              KB_OK);
    kb_lo3_message_fini(&msg);
    kb_err_t e = KB_ERR_NOTFOUND;
    if (i < n) {
        const struct kb_schema *sc = kb_schemas_by_id(schemas, evs[i].attrs.schema_id);
        e = kb_gba_render_lo3(&evs[i].attrs, sc, evs[i].value + 5, evs[i].len - 5, out, out_len,
                              err, err_size);
    }
    kb_gba_events_free(evs, n);
    return e;
}

static void expect_bytes(const uint8_t *got, size_t len, const char *want)
{
    CHECK_INT(len, strlen(want));
    int same = len == strlen(want) && !memcmp(got, want, len);
    if (!same)
        fprintf(stderr, "got  %.*s\nwant %s\n", (int)len, (const char *)got, want);
    CHECK(same);
}

int main(void)
{
    const char *src = getenv("KB_SOURCE_DIR");
    char dir[1200], err[512] = "";
    snprintf(src_dir, sizeof src_dir, "%s", src ? src : ".");
    snprintf(dir, sizeof dir, "%s/schemas", src_dir);
    schemas = kb_schemas_load_dir(dir, err, sizeof err);
    CHECK(schemas != NULL);
    if (!schemas)
        KB_TEST_DONE();

    uint8_t *out = NULL;
    size_t len = 0;
    /* kind-toegevoegd -> Gv01: the source Gv01 without 09.86.10 (not on the event) */
    CHECK_INT(render("gv01-moeder-kind-sophie.lo3", 0, &out, &len, err, sizeof err), KB_OK);
    expect_bytes(out, len,
                 "00000000Gv01528130127400161"
                 "09151"
                 "0110010719460101401200099999953030210013Sophie Marije0230003van0240004Dijk"
                 "03100082024031503200040344033000460308110004034481200071AA0123"
                 "851000820240315"
                 "59000");
    free(out);

    /* persoon-overleden -> Gv01 06 + empty 56 (no akte, no 86.10 on the event) */
    CHECK_INT(render("events/gv01-overlijden.lo3", 0, &out, &len, err, sizeof err), KB_OK);
    expect_bytes(out, len,
                 "00000000Gv01528130127400062"
                 "06052081000820240601082000403440830004603085100082024060156000");
    free(out);

    /* persoon-geboren -> Ag01 with the event's date; check via the JSON form */
    CHECK_INT(render("lg01-geboorte-sophie.lo3", 0, &out, &len, err, sizeof err), KB_OK);
    CHECK(len > 21 && !memcmp(out, "00000000Ag01A20240320", 21));
    char *json = NULL;
    CHECK_INT(kb_lo3_to_json(out, len, 0, &json, err, sizeof err), KB_OK);
    CHECK(json && strstr(json, "\"c01\":[{\"e0110\":\"7194601014\",\"e0120\":\"999995303\","
                               "\"e0210\":\"Sophie Marije\""));
    CHECK(json && strstr(json, "\"e8120\":\"1AA0123\""));
    CHECK(json && strstr(json, "\"c02\":[{\"e0110\":\"5281301274\""));
    CHECK(json && strstr(json, "\"c03\":[{\"e0110\":\"3647901080\""));
    CHECK(json && strstr(json, "\"c08\":[{\"e0910\":\"0344\",\"e0920\":\"20240315\"}]"));
    free(json);
    free(out);

    /* no LO3 form: refused with the type named */
    out = NULL;
    CHECK_INT(render("events/gv01-naam.lo3", 0, &out, &len, err, sizeof err), KB_ERR_INVALID);
    CHECK_STR(err, "no LO3 rendering for nl.brp.naam-gewijzigd");
    CHECK(out == NULL);

    kb_schemas_destroy(schemas);
    KB_TEST_DONE();
}
