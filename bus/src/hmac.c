/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * hmac.c - HMAC-SHA-256 with prepared key states (see hmac.h).
 *
 * Uses OpenSSL's SHA256_CTX directly: it is deprecated in OpenSSL 3 in favour
 * of EVP, but EVP_MD_CTX_copy_ex allocates and goes through the provider on
 * every copy, which was a third of the router's time per copy. The context
 * is a plain struct here, so preparing is once per key and each HMAC is two
 * struct copies and two short hashes. (audit_codec.c does the same for the
 * audit records' SHA-256, for the same reason.)
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "hmac.h"

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((struct kb__hmac *)0)->inner),
               "struct kb__hmac too small for SHA256_CTX");

void kb__hmac_init(struct kb__hmac *h, const uint8_t *key, size_t key_len)
{
    uint8_t k[SHA256_CBLOCK], pad[SHA256_CBLOCK];
    memset(k, 0, sizeof k);
    if (key_len > sizeof k)
        SHA256(key, key_len, k);
    else if (key_len)
        memcpy(k, key, key_len);
    for (int round = 0; round < 2; round++) {
        uint8_t x = round ? 0x5c : 0x36;
        for (size_t i = 0; i < sizeof pad; i++)
            pad[i] = k[i] ^ x;
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, pad, sizeof pad);
        memcpy(round ? h->outer : h->inner, &c, sizeof c);
        OPENSSL_cleanse(&c, sizeof c);
    }
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
}

void kb__hmac_sha256(const struct kb__hmac *h, const void *a, size_t a_len, const void *b,
                     size_t b_len, uint8_t out[KB_HMAC_LEN])
{
    SHA256_CTX c;
    uint8_t md[SHA256_DIGEST_LENGTH];
    memcpy(&c, h->inner, sizeof c);
    SHA256_Update(&c, a, a_len);
    if (b && b_len)
        SHA256_Update(&c, b, b_len);
    SHA256_Final(md, &c);
    memcpy(&c, h->outer, sizeof c);
    SHA256_Update(&c, md, sizeof md);
    SHA256_Final(out, &c);
}

void kb__hex(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* four bytes at a time: each byte to its own 16-bit lane, its high
     * nibble in the lane's first byte (written first), the low one in the
     * second; then '0' + nibble, plus 39 more for the nibbles 10-15 ('a' is
     * '0' + 49). No byte carries into the next: the sums stay below 0x80. */
    const uint64_t low = 0x000F000F000F000Full, ones = 0x0101010101010101ull;
    for (; i + 4 <= n; i += 4) {
        uint32_t w;
        memcpy(&w, in + i, 4);
        uint64_t y = w;
        y = (y | (y << 16)) & 0x0000FFFF0000FFFFull;
        y = (y | (y << 8)) & 0x00FF00FF00FF00FFull;
        uint64_t nib = ((y >> 4) & low) | ((y & low) << 8);
        uint64_t ten = ((nib + 0x0606060606060606ull) >> 4) & ones; /* 1 where >= 10 */
        uint64_t c = nib + 0x3030303030303030ull + ten * 39;
        memcpy(out + 2 * i, &c, 8);
    }
#endif
    static const char digits[] = "0123456789abcdef";
    for (; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

void kb__hmac_hex(const struct kb__hmac *h, const void *a, size_t a_len, const void *b,
                  size_t b_len, char *out, size_t hex_len)
{
    uint8_t md[KB_HMAC_LEN];
    kb__hmac_sha256(h, a, a_len, b, b_len, md);
    if (hex_len > 2 * KB_HMAC_LEN)
        hex_len = 2 * KB_HMAC_LEN;
    kb__hex(md, hex_len / 2, out);
    out[hex_len & ~(size_t)1] = '\0';
}

void kb__sha256(const void *data, size_t len, uint8_t out[KB_HMAC_LEN])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);
}

void kb__hmac_wipe(struct kb__hmac *h)
{
    OPENSSL_cleanse(h, sizeof *h);
}
