/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/registry.h - the schema registry: Avro schema evolution rules
 * (a parsed schema model and the compatibility checker) and the registry
 * itself, kept in a compacted Kafka topic and served over HTTP in the
 * Confluent Schema Registry REST shape. See bus/REGISTRY.md.
 */
#ifndef KETENBUS_REGISTRY_H
#define KETENBUS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/http.h"
#include "ketenbus/kafka.h"

/* --- compatibility --- */

/** Compatibility levels, as Confluent names them. */
enum kb_compat {
    KB_COMPAT_DEFAULT = 0,         /* not a level: "the default", BACKWARD_TRANSITIVE
                                    * (design.md); 0 so that zero-initialised options mean
                                    * it and an explicit NONE stays NONE */
    KB_COMPAT_NONE,                /* anything goes */
    KB_COMPAT_BACKWARD,            /* new schema reads data of the latest one */
    KB_COMPAT_BACKWARD_TRANSITIVE, /* ... of every earlier one */
    KB_COMPAT_FORWARD,             /* latest schema reads data of the new one */
    KB_COMPAT_FORWARD_TRANSITIVE,  /* every earlier schema reads the new one's data */
    KB_COMPAT_FULL,                /* BACKWARD and FORWARD */
    KB_COMPAT_FULL_TRANSITIVE,     /* BACKWARD_TRANSITIVE and FORWARD_TRANSITIVE */
};

/** "BACKWARD_TRANSITIVE" etc. (KB_COMPAT_DEFAULT: the level it stands for). Static string. */
const char *kb_compat_name(enum kb_compat c);

/** Parse a level name (exact, upper case; never KB_COMPAT_DEFAULT). KB_ERR_INVALID when
 *  unknown. */
kb_err_t kb_compat_parse(const char *name, enum kb_compat *out);

typedef struct kb_avsc kb_avsc_t; /* opaque: a parsed and validated Avro schema */

/**
 * Parse Avro schema JSON text and validate it the way the Avro
 * specification asks: names and namespaces, no redefinitions or dangling
 * references, field and enum symbol uniqueness, fixed sizes, union rules,
 * enum defaults, and every field default valid for its type (a union's
 * default matches its first branch). NULL with errstr (naming the location,
 * e.g. "/fields/kind/type") when invalid. @thread any
 */
kb_avsc_t *kb_avsc_parse(const char *json, size_t len, char *errstr, size_t errstr_size);

/** Release @p s. NULL is a no-op. */
void kb_avsc_destroy(kb_avsc_t *s);

/** Full name of the top-level named type ("nl.brp.event.PersoonGeboren"), or
 *  the primitive/complex type name ("string", "array", "union"). Valid as
 *  long as @p s lives. */
const char *kb_avsc_name(const kb_avsc_t *s);

/**
 * Can a reader with schema @p reader decode data written with @p writer
 * (Avro schema resolution)? KB_OK when yes; KB_ERR_SCHEMA when not, with
 * @p why saying what and where ("/fields/x: reader field has no default
 * and writer lacks it"). Logical types must agree (decimal: same scale,
 * reader precision at least the writer's). @thread any
 */
kb_err_t kb_avsc_can_read(const kb_avsc_t *reader, const kb_avsc_t *writer, char *why,
                          size_t why_size);

/**
 * Check @p candidate against the existing @p versions of a subject (oldest
 * first) under @p level (KB_COMPAT_DEFAULT: BACKWARD_TRANSITIVE). KB_OK when
 * allowed, KB_ERR_SCHEMA with @p why (which version, which direction, what)
 * when not. KB_ERR_RANGE with @p why when the schemas are too complex to
 * compare within a fixed amount of work (a hostile schema: the answer would
 * take exponential time), KB_ERR_NOMEM. The same limit holds for
 * kb_avsc_can_read. @thread any
 */
kb_err_t kb_compat_check(enum kb_compat level, const kb_avsc_t *candidate,
                         const kb_avsc_t *const *versions, size_t n, char *why, size_t why_size);

/* --- the registry --- */

typedef struct kb_registry kb_registry_t; /* opaque: one registry instance */

/** Registry options; zero-initialise, then set what you need. */
struct kb_registry_opts {
    const struct kb_kafka_opts *kafka; /* connection (required; not copied: must outlive
                                        * kb_registry_new only) */
    enum kb_compat default_compat;     /* global level until PUT /config, for this
                                        * instance only (not stored in the topic);
                                        * KB_COMPAT_DEFAULT (0): BACKWARD_TRANSITIVE */
    int timeout_ms;                    /* Kafka round trips; 0 means 10000 */
};

/**
 * Connect to Kafka, create the compacted topic <prefix>.schemas (one
 * partition) when missing and read it to its end. NULL with errstr.
 * @thread any; the returned registry may be used from any thread (an
 * internal mutex serialises operations).
 */
kb_registry_t *kb_registry_new(const struct kb_registry_opts *opts, char *errstr,
                               size_t errstr_size);

/** Release @p r. NULL is a no-op. Unregister its routes first (stop the server). */
void kb_registry_destroy(kb_registry_t *r);

/** Outcome of a registry operation that the REST layer turns into a reply. */
struct kb_registry_status {
    int http_status;   /* 200 on success, else 404, 409, 422, 500, ... */
    int error_code;    /* Confluent error_code (40401, 42201, ...), 0 on success */
    char message[512]; /* the error message; never holds personal data */
};

/**
 * Register @p schema_json under @p subject (idempotent: an identical schema
 * already there returns its id and version). @p want_id > 0 asks for that id
 * (kb.schemaId in the schema asks for it too); it is honoured when free or
 * when it already names this schema, else 422/42205; ids from 0x40000000 up
 * belong to projections (kb_registry_register_derived) and are refused with
 * 422/42205. Otherwise the id of an identical schema in another subject,
 * else the next id above both 100000 and every id in use below 0x40000000
 * (422/42205 when none is left). A subject must be 1..255 bytes of UTF-8
 * without control characters (else 422/42201). On every error @p st holds
 * the answer. Concurrent registrations on several instances are ordered by
 * the topic: the lowest offset wins, losers re-read and retry (see
 * REGISTRY.md).
 */
kb_err_t kb_registry_register(kb_registry_t *r, const char *subject, const char *schema_json,
                              int32_t want_id, int32_t *id, int *version,
                              struct kb_registry_status *st);

/**
 * Register a schema derived by ketenbus itself (a subscriber's projection)
 * under @p subject with exactly the id @p id it is framed with. The subject's
 * compatibility is set to NONE first: a projection changes when an
 * entitlement changes, which is not schema evolution, and every copy names
 * the id it was written with. Idempotent; 42205 when @p id already names
 * another schema.
 */
kb_err_t kb_registry_register_derived(kb_registry_t *r, const char *subject,
                                      const char *schema_json, int32_t id, int *version,
                                      struct kb_registry_status *st);

/**
 * Schema text of @p id (malloc'ed into *@p json, caller frees), after
 * reading the topic to its end when the id is not known yet. KB_ERR_NOTFOUND
 * (40403) when absent.
 */
kb_err_t kb_registry_schema_by_id(kb_registry_t *r, int32_t id, char **json,
                                  struct kb_registry_status *st);

/**
 * The whole state after reading the topic to its end, as canonical JSON
 * text ({"compatibility", "schemas": [{id, schema}], "subjects": {name:
 * {versions: [{version, id}], compatibility}}}), malloc'ed; NULL on error.
 * Two instances that agree produce identical text.
 */
char *kb_registry_dump(kb_registry_t *r);

/**
 * Serve the Confluent REST subset on @p h (routes /subjects, /schemas,
 * /compatibility, /config; call before kb_http_start). @p r must outlive
 * the server's running time.
 */
kb_err_t kb_registry_routes(kb_registry_t *r, kb_http_t *h);

#endif
