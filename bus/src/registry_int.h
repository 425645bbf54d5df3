/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * registry_int.h - the registry's state, shared by registry.c (the Kafka log
 * and the operations) and registry_http.c (the REST endpoints).
 */
#ifndef KETENBUS_REGISTRY_INT_H
#define KETENBUS_REGISTRY_INT_H

#include <pthread.h>

#include <librdkafka/rdkafka.h>

#include "ketenbus/registry.h"

/* Ids from here up are projections' (0x40000000 | hash, sub_view.c), given
 * only through kb_registry_register_derived; automatic ids stay below. */
#define KB__REG_DERIVED_ID_BASE 0x40000000

struct kb__reg_schema {
    int32_t id;  /* registry id */
    char *text;  /* schema text as first registered under this id */
    char *canon; /* canonical JSON (sorted keys, compact): identity of a schema */
};

struct kb__reg_version {
    int version; /* 1, 2, ... without gaps */
    int32_t id;  /* schema id of this version */
};

struct kb__reg_subject {
    char *name;                       /* subject name (the event type for ketenbus) */
    struct kb__reg_version *versions; /* oldest first */
    size_t n, cap;                    /* used / allocated versions */
    int has_compat;                   /* a subject-level compatibility is set */
    enum kb_compat compat;            /* that level */
};

struct kb_registry {
    pthread_mutex_t mu;               /* guards everything below (invariant 4) */
    rd_kafka_t *producer;             /* writes the schemas topic (idempotent, acks=all) */
    rd_kafka_t *consumer;             /* reads it from the beginning */
    char topic[256];                  /* <prefix>.schemas */
    int timeout_ms;                   /* Kafka round-trip limit */
    int64_t next_offset;              /* next record to apply */
    int broken;                       /* an allocation failed while applying */
    enum kb_compat default_compat;    /* global level when none was set (this instance's
                                       * option, never KB_COMPAT_DEFAULT) */
    int has_global;                   /* PUT /config happened */
    enum kb_compat global;            /* its level */
    int32_t max_id;                   /* largest id in use below KB__REG_DERIVED_ID_BASE */
    struct kb__reg_subject *subjects; /* every subject seen */
    size_t nsubjects, subjects_cap;   /* used / allocated */
    struct kb__reg_schema *schemas;   /* every schema, by id */
    size_t nschemas, schemas_cap;     /* used / allocated */
};

/* Caller holds r->mu for all of these. */
kb_err_t kb__registry_sync(kb_registry_t *r, struct kb_registry_status *st);
struct kb__reg_subject *kb__registry_subject(kb_registry_t *r, const char *name);
struct kb__reg_schema *kb__registry_schema(kb_registry_t *r, int32_t id);
enum kb_compat kb__registry_level(kb_registry_t *r, const struct kb__reg_subject *s);
kb_err_t kb__registry_versions(kb_registry_t *r, const struct kb__reg_subject *s, kb_avsc_t ***out,
                               struct kb_registry_status *st);
kb_err_t kb__registry_set_config(kb_registry_t *r, const char *subject, enum kb_compat level,
                                 struct kb_registry_status *st);

/* No lock needed. */
void kb__registry_versions_free(kb_avsc_t **vs, size_t n);
kb_err_t kb__registry_validate(const char *schema_json, kb_avsc_t **out,
                               struct kb_registry_status *st);
char *kb__registry_canonical(const char *schema_json);
/* KB_OK when @p subject is a valid name: 1..255 bytes of UTF-8 without control
 * characters (U+0000-U+001F, U+007F-U+009F); else KB_ERR_INVALID, 422/42201. */
kb_err_t kb__registry_subject_check(const char *subject, struct kb_registry_status *st);
/* Replace every byte of @p s that is not part of valid UTF-8 by '?'. */
void kb__registry_utf8_clean(char *s);
/* Status for a compatibility check that gave no yes/no answer (@p err from
 * kb_compat_check other than KB_ERR_SCHEMA): 422 when too complex, else 500. */
void kb__registry_compat_status(struct kb_registry_status *st, kb_err_t err, const char *why);

#endif
