/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_lo3_json_errors.c - JSON that does not parse is refused with line,
 * column and a reason of our own, never with bytes of the input: jansson's
 * error text quotes up to 20 bytes near the fault, which put BSNs and names
 * into the logs and the kb_error header of kb.quarantine.gba.
 */
#include <stdio.h>
#include <string.h>

#include "gba/lo3_json.h"
#include "kb_test.h"

/* Refused, with "JSON line L column C: @p what" and no digit of the BSN. */
static void refused(const char *json, size_t len, const char *what)
{
    uint8_t *lo3 = NULL;
    size_t lo3_len = 0;
    char err[512] = "";
    CHECK_INT(kb_lo3_from_json(json, len, &lo3, &lo3_len, err, sizeof err), KB_ERR_INVALID);
    CHECK(lo3 == NULL);
    CHECK(strncmp(err, "JSON line ", 10) == 0);
    CHECK(strstr(err, what) != NULL);
    /* not the BSN nor any run of its digits, not the name */
    CHECK(strstr(err, "9999") == NULL && strstr(err, "6204") == NULL);
    CHECK(strstr(err, "Jansen") == NULL);
    CHECK(strstr(err, "near") == NULL);
    if (kb_test_failures)
        fprintf(stderr, "error: %s\n", err);
}

/* Well-formed JSON with a key that is no field: refused with @p what and
 * neither the key's BSN nor its name. */
static void unknown_key(const char *json, const char *what)
{
    uint8_t *lo3 = NULL;
    size_t lo3_len = 0;
    char err[512] = "";
    CHECK_INT(kb_lo3_from_json(json, strlen(json), &lo3, &lo3_len, err, sizeof err),
              KB_ERR_INVALID);
    CHECK(lo3 == NULL);
    CHECK_STR(err, what);
    CHECK(strstr(err, "9999") == NULL && strstr(err, "Jansen") == NULL);
}

int main(void)
{
    /* a control character inside the BSN: jansson said
     * "control character 0x1 near '"99999'" */
    static const char ctl[] = "{\"berichtType\": \"Lg01\", \"bsn\": \"99999\x01" "6204\"}";
    refused(ctl, sizeof ctl - 1, "line 1 column ");
    refused(ctl, sizeof ctl - 1, ": invalid syntax");

    /* a name cut short at the end of the input */
    static const char cut[] = "{\"geslachtsnaam\": \"Jansen 999996204";
    refused(cut, sizeof cut - 1, ": unexpected end of input");

    /* a bare BSN where a value belongs */
    static const char bare[] = "{\"bsn\": 999996204x}";
    refused(bare, sizeof bare - 1, "invalid syntax");

    /* invalid UTF-8 after the digits */
    static const char utf[] = "{\"bsn\": \"999996204\xff\"}";
    refused(utf, sizeof utf - 1, ": invalid UTF-8");

    /* a duplicate key names no value either */
    static const char dup[] = "{\"bsn\": \"999996204\", \"bsn\": \"999996204\"}";
    refused(dup, sizeof dup - 1, ": duplicate object key");

    /* the position still comes through: line 2 */
    static const char line2[] = "{\n  \"bsn\": \"9999\x02" "96204\"}";
    refused(line2, sizeof line2 - 1, "JSON line 2 column ");

    /* A key that is no field is the sender's text as much as a value is:
     * the error named it ("$.Jansen 999996204: not a field of Gv01"), and
     * so the log line and kb_error header of kb.quarantine.gba did. Now
     * it says where the key stands, never what it says. */
    static const char top[] = "{\"berichtType\": \"Gv01\", \"aNummer\": \"5281301274\", "
                              "\"Jansen 999996204\": {}}";
    unknown_key(top, "$: key 3 is not a field of Gv01");
    static const char cat[] = "{\"berichtType\": \"Gv01\", \"aNummer\": \"5281301274\", "
                              "\"plData\": {\"c09\": [], \"Jansen 999996204\": []}}";
    unknown_key(cat, "$.plData: key 2 is unknown (expected c01-c49)");
    static const char el[] = "{\"berichtType\": \"Gv01\", \"aNummer\": \"5281301274\", "
                             "\"plData\": {\"c09\": [{\"e0240\": \"Dijk\", "
                             "\"Jansen 999996204\": \"x\"}]}}";
    unknown_key(el, "$.plData.c09[0]: key 2 is unknown (expected eGGEE or historie)");
    KB_TEST_DONE();
}
