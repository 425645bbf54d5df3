/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * hmac.h - HMAC-SHA-256 with the key absorbed once (internal). The router
 * computes a pseudonym for every copy it makes; RFC 2104 hashes the padded
 * key before every message, so preparing those two states once per key and
 * copying them per message halves the work, and the plain SHA-256 state
 * (a struct copy) avoids the EVP provider's per-call allocation.
 */
#ifndef KETENBUS_HMAC_H
#define KETENBUS_HMAC_H

#include <stddef.h>
#include <stdint.h>

#define KB_HMAC_LEN 32

/* The two prepared SHA-256 states: key ^ ipad and key ^ opad absorbed.
 * Opaque bytes here so that callers need no OpenSSL deprecated headers. */
struct kb__hmac {
    _Alignas(16) unsigned char inner[128];
    _Alignas(16) unsigned char outer[128];
};

/* Prepare @p h for @p key (any length; longer than 64 bytes is hashed first,
 * as RFC 2104 says). */
void kb__hmac_init(struct kb__hmac *h, const uint8_t *key, size_t key_len);

/* HMAC-SHA-256 of the concatenation @p a || @p b (@p b may be NULL). */
void kb__hmac_sha256(const struct kb__hmac *h, const void *a, size_t a_len, const void *b,
                     size_t b_len, uint8_t out[KB_HMAC_LEN]);

/* Lower-case hex of the first @p hex_len / 2 bytes of the HMAC, NUL-terminated
 * (@p out holds hex_len + 1; hex_len even, at most 64). */
void kb__hmac_hex(const struct kb__hmac *h, const void *a, size_t a_len, const void *b,
                  size_t b_len, char *out, size_t hex_len);

/* Lower-case hex of the @p n bytes at @p in: 2 * @p n characters at @p out,
 * no NUL (digests, pseudonyms: a few words of arithmetic per four bytes
 * instead of a table lookup or two per byte). */
void kb__hex(const uint8_t *in, size_t n, char *out);

/* Plain SHA-256 of @p len bytes (no EVP fetch or allocation: adapters hash
 * every legacy message they receive). */
void kb__sha256(const void *data, size_t len, uint8_t out[KB_HMAC_LEN]);

/* Forget the key material. */
void kb__hmac_wipe(struct kb__hmac *h);

#endif
