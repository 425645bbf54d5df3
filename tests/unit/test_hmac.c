/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_hmac.c - the prepared-key HMAC against OpenSSL's one-shot HMAC (the
 * independent reference) and RFC 4231's published vectors, and the
 * subscriber pseudonym of a view against kb_event_pseudonym.
 */
#include <openssl/hmac.h>

#include "hmac.h"
#include "kb_test.h"
#include "ketenbus/event.h"
#include "ketenbus/schema.h"
#include "sub_view.h"

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* RFC 4231 test cases 1, 2 and 6 (key longer than the block: hashed first). */
static void test_rfc4231(void)
{
    struct kb__hmac h;
    uint8_t mac[KB_HMAC_LEN];
    char hex[65];
    uint8_t k1[20];
    memset(k1, 0x0b, sizeof k1);
    kb__hmac_init(&h, k1, sizeof k1);
    kb__hmac_sha256(&h, "Hi There", 8, NULL, 0, mac);
    to_hex(mac, sizeof mac, hex);
    CHECK_STR(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    kb__hmac_init(&h, (const uint8_t *)"Jefe", 4);
    kb__hmac_sha256(&h, "what do ya want ", 16, "for nothing?", 12, mac);
    to_hex(mac, sizeof mac, hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    uint8_t k6[131];
    memset(k6, 0xaa, sizeof k6);
    kb__hmac_init(&h, k6, sizeof k6);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    kb__hmac_sha256(&h, m6, strlen(m6), NULL, 0, mac);
    to_hex(mac, sizeof mac, hex);
    CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    kb__hmac_hex(&h, m6, strlen(m6), NULL, 0, hex, 32);
    CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f");
}

/* Many key lengths and message splits against OpenSSL's HMAC(). */
static void test_against_openssl(void)
{
    uint8_t key[200], msg[300];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 13 + 5);
    int mismatches = 0;
    for (size_t kl = 1; kl <= sizeof key; kl += 17)
        for (size_t ml = 0; ml <= sizeof msg; ml += 29) {
            struct kb__hmac h;
            uint8_t a[KB_HMAC_LEN], b[EVP_MAX_MD_SIZE];
            unsigned int bl = 0;
            kb__hmac_init(&h, key, kl);
            kb__hmac_sha256(&h, msg, ml / 3, msg + ml / 3, ml - ml / 3, a);
            HMAC(EVP_sha256(), key, (int)kl, msg, ml, b, &bl);
            mismatches += bl != KB_HMAC_LEN || memcmp(a, b, KB_HMAC_LEN) != 0;
        }
    CHECK_INT(mismatches, 0);
}

/* kb__hex() against sprintf("%02x") for every byte value, at every length
 * and start 0-40 (the word-wide part and the byte tail, and the seams
 * between them), and that it writes exactly 2 * n characters. */
static void test_hex(void)
{
    uint8_t in[256 + 48];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 151 + 7); /* every byte value within 256 */
    char got[2 * sizeof in + 2], want[2 * sizeof in + 2];
    int mismatches = 0;
    for (size_t at = 0; at <= 40; at++)
        for (size_t n = 0; at + n <= sizeof in; n += n < 40 ? 1 : 37) {
            memset(got, '#', sizeof got);
            kb__hex(in + at, n, got);
            to_hex(in + at, n, want);
            mismatches += memcmp(got, want, 2 * n) != 0 || got[2 * n] != '#';
        }
    CHECK_INT(mismatches, 0);
    uint8_t all[256];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (uint8_t)i;
    char hex[513];
    kb__hex(all, sizeof all, hex);
    to_hex(all, sizeof all, want);
    CHECK(memcmp(hex, want, 512) == 0);
    kb__hex((const uint8_t *)"\x00\x09\x0a\x0f\x10\x9f\xa0\xff", 8, hex);
    hex[16] = '\0';
    CHECK_STR(hex, "00090a0f109fa0ff");
}

/* A view's subscriber pseudonym is kb_event_pseudonym under the subscriber's
 * derived key: HMAC(subject key, "ketenbus-subscriber:" + name). */
static void test_view_subject(void)
{
    static const char schema_json[] =
        "{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]}";
    uint8_t subject_key[32];
    for (size_t i = 0; i < sizeof subject_key; i++)
        subject_key[i] = (uint8_t)(200 - i);
    char errstr[256];
    kb_validator_t *v = kb_validate_compile(schema_json, NULL, errstr, sizeof errstr);
    CHECK(v != NULL);
    if (!v)
        return;
    struct kb_sub sub;
    memset(&sub, 0, sizeof sub);
    snprintf(sub.name, sizeof sub.name, "svb-kinderbijslag");
    struct kb_schema schema;
    memset(&schema, 0, sizeof schema);
    schema.id = 1001;
    struct kb__sub_view w;
    CHECK_INT(kb__sub_view_init(&w, &sub, &schema, v, subject_key, sizeof subject_key, errstr,
                                sizeof errstr),
              KB_OK);
    CHECK(w.pj == NULL);
    CHECK_INT(w.out_schema_id, 1001);
    uint8_t derived[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    const char *label = "ketenbus-subscriber:svb-kinderbijslag";
    HMAC(EVP_sha256(), subject_key, sizeof subject_key, (const uint8_t *)label, strlen(label),
         derived, &dl);
    char want[KB_PSEUDONYM_LEN + 1], got[KB_PSEUDONYM_LEN + 1];
    const char *bus_pseudonym = "0123456789abcdef0123456789abcdef";
    CHECK_INT(kb_event_pseudonym(derived, dl, "subject", bus_pseudonym, want), KB_OK);
    kb__sub_view_subject(&w, bus_pseudonym, got);
    CHECK_STR(got, want);
    kb__sub_view_fini(&w);
    kb_validate_destroy(v);
}

int main(void)
{
    test_rfc4231();
    test_against_openssl();
    test_hex();
    test_view_subject();
    KB_TEST_DONE();
}
