/* SPDX-License-Identifier: EUPL-1.2 */
/* audit_int.h - internals shared by the audit_*.c files (not a public interface). */
#ifndef KETENBUS_AUDIT_INT_H
#define KETENBUS_AUDIT_INT_H

#include <stdint.h>

#include <openssl/evp.h>

#include "ketenbus/audit.h"

/* A growable byte buffer. */
struct kb__audit_buf {
    uint8_t *p;
    size_t len, cap;
};

kb_err_t kb__audit_buf_reserve(struct kb__audit_buf *b, size_t extra);

/* Encode a record into b (reset first); fills record_hash. */
kb_err_t kb__audit_encode_record(struct kb__audit_buf *b, const struct kb_audit_decision *d,
                                 uint64_t seq, int64_t recorded_at, const uint8_t *prev_hash,
                                 uint8_t record_hash[KB_AUDIT_HASH_LEN]);

/* Encode a checkpoint up to (not including) its signature. */
kb_err_t kb__audit_encode_checkpoint_body(struct kb__audit_buf *b, const char *input_topic,
                                          int32_t input_partition, uint64_t seq,
                                          const uint8_t *head, int64_t created_at,
                                          const char *key_id);
void kb__audit_put_signature(struct kb__audit_buf *b, const uint8_t sig[KB_AUDIT_SIG_LEN]);

/* SHA-256 through the plain SHA256_CTX: no allocation, lookup or lock (fast path). */
void kb__audit_sha256(const void *data, size_t len, uint8_t out[KB_AUDIT_HASH_LEN]);

int32_t kb__audit_partition_for(const char *key, size_t len, int32_t partitions);

/* Set up the verifier's lanes for audit partitions 0..n_partitions-1, after
 * which those partitions may be fed from different threads (one thread per
 * partition at a time). kb_audit_verify_scan does this; tests call it. */
kb_err_t kb__audit_verifier_lanes(kb_audit_verifier_t *v, int32_t n_partitions);
void kb__audit_hex(const uint8_t *in, size_t n, char *out);

/* Key id of an Ed25519 key: hex of the first 8 bytes of SHA-256(raw public key). */
kb_err_t kb__audit_key_id(EVP_PKEY *pkey, char out[17]);
EVP_PKEY *kb__audit_load_private(const char *path, char *errstr, size_t errstr_size);
EVP_PKEY *kb__audit_load_public(const char *path, char *errstr, size_t errstr_size);

#endif
