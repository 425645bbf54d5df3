/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/schema.h - looking up the Avro schema of an event, by registry id
 * (from the Confluent framing) or by event type. This is the one interface
 * through which every process finds schemas, backed either by the schemas/
 * folder (ids from each file's "kb.schemaId") or by a Confluent-compatible
 * registry URL (ketenbus's own `ketenbus schema serve`, or any other), with
 * the same lookups either way: kb_schemas_open() picks by the source.
 *
 * Versions: several schemas may carry the same event type (successive
 * versions of one subject); by_type answers the latest (highest id), by_id
 * any of them, so events framed with an older id stay decodable.
 *
 * This module wraps avro-c, so avro types appear here.
 */
#ifndef KETENBUS_SCHEMA_H
#define KETENBUS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>

#include "ketenbus/err.h"

struct kb__schema_check; /* schema.c */
struct kb_validator;     /* ketenbus/validate.h's kb_validator_t */

struct kb_schema {
    int32_t id;                /* registry id, as written in the Confluent framing */
    char *type;                /* CloudEvents type this schema carries ("kb.eventType") */
    char *path;                /* file it was read from, for error messages */
    char *json;                /* the schema text as read, with every attribute
                                * (avro-c drops the kb.* constraint attributes) */
    avro_schema_t avro;        /* the parsed schema (owned) */
    avro_value_iface_t *iface; /* generic value class of avro (owned) */
    struct kb__schema_check *check; /* kb_schema_validator()'s, made on first use (owned) */
};

typedef struct kb_schemas kb_schemas_t; /* opaque: a set of schemas */

/**
 * Load every *.avsc below @p dir (recursively). Each file must be a record
 * schema with the attributes "kb.eventType" (string) and "kb.schemaId"
 * (positive int, unique across the folder; files sharing an event type are
 * versions of it, ordered by id). Returns NULL with errstr naming the file
 * on any error.
 * @thread any; the returned set is read-only afterwards, but avro-c values
 * made from it belong to the thread that made them.
 */
kb_schemas_t *kb_schemas_load_dir(const char *dir, char *errstr, size_t errstr_size);

/**
 * Load every schema of the registry at @p url ("http://host:port"): each
 * version of each subject. The event type is the schema's "kb.eventType",
 * else the subject name; the id is the registry's. Schemas that are not
 * records are skipped (logged). Ids and types not loaded yet are fetched on
 * first lookup (by_id: GET /schemas/ids/{id}; by_type: the subject's latest
 * version); an id the registry does not know is not asked for again for 30
 * seconds. NULL with errstr when the registry cannot be read.
 * @thread any; lookups on the set may come from any thread.
 */
kb_schemas_t *kb_schemas_load_url(const char *url, char *errstr, size_t errstr_size);

/** kb_schemas_load_url() when @p source starts with "http://", else
 *  kb_schemas_load_dir(). */
kb_schemas_t *kb_schemas_open(const char *source, char *errstr, size_t errstr_size);

/** Release @p s. NULL is a no-op. */
void kb_schemas_destroy(kb_schemas_t *s);

/** The @p i-th schema in load order (i < kb_schemas_count), or NULL. Valid
 *  as long as @p s lives. */
const struct kb_schema *kb_schemas_at(const kb_schemas_t *s, size_t i);

/** Schema with registry id @p id, or NULL. Valid as long as @p s lives.
 *  Registry-backed sets may fetch it (blocking, at most 5 s). Any thread. */
const struct kb_schema *kb_schemas_by_id(const kb_schemas_t *s, int32_t id);

/** Latest schema carrying event type @p type, or NULL. Valid as long as
 *  @p s lives. Registry-backed sets may fetch it. Any thread. */
const struct kb_schema *kb_schemas_by_type(const kb_schemas_t *s, const char *type);

/** Number of schemas loaded. */
size_t kb_schemas_count(const kb_schemas_t *s);

/**
 * The compiled validator of @p schema (kb_validate_compile() of its json,
 * default options), compiled on first use and kept as long as the schema.
 * A schema id names one text for good, so every part of a process (router
 * gate, dry-run, replay, egress, webhook delivery, projections) shares this
 * one instead of compiling its own. NULL when the schema does not compile
 * (*why, if given, is the reason, and the error is logged once) or when out
 * of memory (*why NULL; the next call tries again). Thread-safe.
 */
const struct kb_validator *kb_schema_validator(const struct kb_schema *schema, const char **why);

/**
 * Check the Avro binary @p payload (framing already removed) with @p
 * schema's validator (kb_schema_validator()), as every reader must before
 * avro-c decodes bytes that came from a topic: avro-c is not hardened
 * against hostile bytes. KB_ERR_INVALID with the validator's reason (rule,
 * field path, offset) or when the schema does not compile (never worth a
 * retry); KB_ERR_NOMEM (worth one).
 */
kb_err_t kb_schema_check(const struct kb_schema *schema, const uint8_t *payload, size_t len,
                         char *errstr, size_t errstr_size);

/**
 * Encode @p value (made from @p schema's iface) as Avro binary with the
 * Confluent framing. On success *out is malloc'ed (caller frees).
 */
kb_err_t kb_schema_encode(const struct kb_schema *schema, avro_value_t *value, uint8_t **out,
                          size_t *out_len, char *errstr, size_t errstr_size);

/**
 * Decode the Avro binary @p payload (framing already removed) into @p value,
 * which the caller made with avro_generic_value_new(schema->iface, ...).
 * Fails unless the payload is consumed exactly. The payload must have been
 * checked by the router (avro-c is not hardened against hostile bytes).
 */
kb_err_t kb_schema_decode(const struct kb_schema *schema, const uint8_t *payload, size_t len,
                          avro_value_t *value, char *errstr, size_t errstr_size);

/**
 * Navigate @p path ("kind.bsn": field names separated by dots) from record
 * @p v into *@p out. Unions are followed into their current branch when
 * reading, and switched to their first non-null branch when @p for_write.
 * KB_ERR_NOTFOUND when a field does not exist or (reading) a union is null.
 */
kb_err_t kb_value_path(avro_value_t *v, const char *path, int for_write, avro_value_t *out);

/**
 * Give every union under @p v (recursively through records) its null branch
 * where it has one, so a freshly made value encodes before every optional
 * field is set. Call after avro_generic_value_new() and avro_value_append().
 */
kb_err_t kb_value_init_nulls(avro_value_t *v);

/** Set the string (or nullable string) at @p path; @p str NULL sets null. */
kb_err_t kb_value_set_string(avro_value_t *v, const char *path, const char *str);

/** Copy the string at @p path into @p out; KB_ERR_NOTFOUND when null/absent,
 *  KB_ERR_RANGE when it does not fit. */
kb_err_t kb_value_get_string(avro_value_t *v, const char *path, char *out, size_t out_size);

/** Set the long (incl. timestamp-millis) at @p path. */
kb_err_t kb_value_set_long(avro_value_t *v, const char *path, int64_t val);

/** Set the int (incl. date) at @p path. */
kb_err_t kb_value_set_int(avro_value_t *v, const char *path, int32_t val);

#endif
