/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/validate.h - the gate every event passes: an Avro schema (with its
 * kb.* constraint attributes, see schemas/README.md) compiled into a flat
 * program that checks Avro binary bytes directly, structure and meaning, and
 * projections that cut a validated payload down to a subscriber's fields by
 * copying byte ranges, pseudonymising chosen strings with a keyed HMAC.
 *
 * Thread rules: a validator or projection is immutable once built; any
 * number of threads may call kb_validate() and kb_projection_apply() on the
 * same object at once. Build and destroy from one thread, after every user
 * is done. Nothing here logs; rejections never carry a field's value.
 */
#ifndef KETENBUS_VALIDATE_H
#define KETENBUS_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"

typedef struct kb_validator kb_validator_t;   /* opaque: one compiled schema */
typedef struct kb_projection kb_projection_t; /* opaque: one schema x one subscriber */

/** Options of kb_validate_compile(). Zero fields take the default. */
struct kb_validate_opts {
    uint32_t max_string;       /* max bytes of one string, bytes or fixed value (default 1 MiB) */
    uint32_t max_items;        /* max items of one array or map, all blocks (default 100000) */
    uint32_t max_depth;        /* max nesting of records/arrays/maps/unions (default 64) */
    const char *codetable_dir; /* folder of the "kb.codeTable" files (<name>.txt); NULL:
                                * $KETENBUS_CODETABLES, else <schemas>/codetables */
    const char *simd;          /* kernel path "scalar", "sse42", "avx2", "avx512"; NULL:
                                * $KETENBUS_SIMD, else the best this CPU has */
    int structure_only;        /* 1: Avro structure only (varints, lengths, indexes, limits,
                                * trailing bytes); no UTF-8 and no kb.* checks. For the
                                * differential fuzzer against avro-c, never for the gate. */
};

/** Why a payload was rejected. Never contains the offending value. */
struct kb_validate_result {
    size_t offset;    /* byte offset in the payload where the failing value (or the
                       * failing varint/length) starts */
    const char *rule; /* static rule name: "varint", "int-range", "truncated", "length",
                       * "max-string", "max-items", "max-depth", "union-index",
                       * "enum-index", "trailing-bytes", "utf8", "bsn-11proef",
                       * "anummer", "gba-datum", "datum", "pattern", "allowed",
                       * "code-table", "min-length", "max-length", "minimum", "maximum",
                       * "uuid", "decimal", "time-range", "negative-count" */
    char path[160];   /* field path, e.g. "kind.bsn" or "ouders[1].persoon.bsn"; ""
                       * for the top level (e.g. trailing bytes) */
    char message[96]; /* short explanation, no data values */
};

/**
 * Compile the Avro schema text @p schema_json (struct kb_schema.json, which
 * keeps the kb.* attributes). @p opts may be NULL for the defaults.
 * @returns the validator, or NULL with errstr saying what in the schema is
 * wrong or unsupported (unknown kb.* attribute, bad pattern, missing code
 * table, unknown SIMD path or one this CPU lacks).
 * @thread any; the result is shared read-only afterwards
 */
kb_validator_t *kb_validate_compile(const char *schema_json, const struct kb_validate_opts *opts,
                                    char *errstr, size_t errstr_size);

/** Release @p v. NULL is a no-op. Projections made from @p v must be gone. */
void kb_validate_destroy(kb_validator_t *v);

/**
 * Check one bare Avro datum (Confluent framing already removed).
 * @returns KB_OK, or KB_ERR_INVALID with *@p res filled (@p res may be NULL
 * when only the verdict matters).
 * @thread any, concurrently on the same @p v; no allocation
 */
kb_err_t kb_validate(const kb_validator_t *v, const uint8_t *payload, size_t len,
                     struct kb_validate_result *res);

/**
 * Like kb_validate(), for a datum at the start of @p payload that may be
 * followed by more (the datums of an Avro container block): *@p used gets
 * the datum's length. Never fails with "trailing-bytes".
 * @thread any, concurrently on the same @p v; no allocation
 */
kb_err_t kb_validate_next(const kb_validator_t *v, const uint8_t *payload, size_t len,
                          size_t *used, struct kb_validate_result *res);

/** The kernel path @p v uses ("scalar", "sse42", "avx2", "avx512"). Static string. */
const char *kb_validate_simd(const kb_validator_t *v);

/**
 * The kernel path chosen when none is forced: $KETENBUS_SIMD when set (also
 * when this CPU cannot run it: then NULL), else the best one this CPU and
 * this build support. For `ketenbus --version`.
 */
const char *kb_validate_simd_auto(void);

/** 1 when kernel path @p name is built in and this CPU can run it. */
int kb_validate_simd_usable(const char *name);

/**
 * Build a projection of @p v's schema for one subscriber.
 * @p fields: the field paths the subscriber may receive ("kind.bsn",
 *   "ouders", "ouders.persoon.bsn"): a path ends at any field; the projected
 *   record keeps the named fields in schema order, and a path through a
 *   nested record keeps only the named sub-fields of that record. Paths go
 *   through nullable unions (["null", Record]) and through arrays and maps of
 *   records: "ouders.persoon.bsn" keeps, in every array element, only
 *   persoon.bsn. A path through any other union, a path into a non-record,
 *   or an unknown field is a build error.
 * @p pseudo: paths (each inside a selected field, or selected by itself) of
 *   string fields (or nullable/array-of string) whose values are replaced by
 *   the lowercase hex HMAC-SHA-256 of their bytes under @p key.
 * @p name: full name of the projected record ("nl.svb.sub.PersoonGeboren").
 * Changed nested records get their own names derived from @p name and the path.
 * The caller keeps ownership of every argument; @p key is copied.
 * @returns the projection, or NULL with errstr naming the offending path.
 * @thread any; the result is shared read-only afterwards
 */
kb_projection_t *kb_projection_new(const kb_validator_t *v, const char *const *fields,
                                   size_t n_fields, const char *const *pseudo, size_t n_pseudo,
                                   const uint8_t *key, size_t key_len, const char *name,
                                   char *errstr, size_t errstr_size);

/** Release @p pj. NULL is a no-op. */
void kb_projection_destroy(kb_projection_t *pj);

/** The projected schema as Avro JSON text (no kb.* attributes on pseudonymised
 *  fields). Valid as long as @p pj lives. */
const char *kb_projection_schema_json(const kb_projection_t *pj);

/**
 * Project @p payload, which kb_validate() accepted for the projection's
 * validator (unvalidated bytes give KB_ERR_INVALID or garbage, never a crash
 * or overread). The projected datum is written to *@p out, which is grown
 * with realloc() as needed (*@p out / *@p out_cap may start as NULL / 0; the
 * caller frees it); *@p out_len gets its length.
 * @returns KB_OK, KB_ERR_NOMEM (buffer unchanged) or KB_ERR_INVALID.
 * @thread any, concurrently on the same @p pj with distinct buffers
 */
kb_err_t kb_projection_apply(const kb_projection_t *pj, const uint8_t *payload, size_t len,
                             uint8_t **out, size_t *out_cap, size_t *out_len);

/**
 * The value at field path @p path ("kind.geboortedatum") of @p payload, which
 * kb_validate() accepted, as text into @p buf (at most @p cap bytes with the
 * NUL): strings as they are, int/long in decimal, double %.17g, float %.9g,
 * booleans true/false, enums by symbol; a nullable field's union is stepped
 * through. Read straight from the bytes, skipping the fields before it, with
 * no value tree. Returns 1 when found and not null, 0 otherwise (no such
 * field, null, or a record/array/map/bytes/fixed value).
 * @thread any
 */
int kb_validate_field(const kb_validator_t *v, const uint8_t *payload, size_t len,
                      const char *path, char *buf, size_t cap);

#endif
