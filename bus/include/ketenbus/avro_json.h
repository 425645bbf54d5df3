/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/avro_json.h - an event's Avro payload as plain JSON, for the
 * places that show events to people or to systems that read JSON: the
 * webhook delivery (CloudEvents in JSON) and the adapters' decode commands.
 *
 * Plain JSON, not Avro's JSON encoding: a union is its branch, so a reader
 * gets {"x": "a"}, not {"x": {"string": "a"}}; bytes and fixed are base64;
 * an enum is its symbol.
 */
#ifndef KETENBUS_AVRO_JSON_H
#define KETENBUS_AVRO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <jansson.h>

#include "ketenbus/err.h"
#include "ketenbus/schema.h"

/** @p v as a new JSON value; NULL when out of memory or when the value is
 *  nested deeper than 64 levels or holds something avro-c cannot read. */
json_t *kb_avro_to_json(avro_value_t *v);

/**
 * The payload of a Confluent-framed event @p value as a new JSON value in
 * *@p out, decoded with its registered schema (whose id goes to
 * *@p schema_id when that is not NULL). The payload is checked with the
 * schema's validator first (kb_schema_check()): avro-c is not hardened
 * against hostile bytes, and a topic's bytes may come from anyone allowed
 * to write to it. KB_ERR_INVALID for a value without the framing, one the
 * validator refuses (with its reason) or one that does not decode;
 * KB_ERR_SCHEMA for an unknown schema id; KB_ERR_NOMEM.
 */
kb_err_t kb_avro_event_json(const kb_schemas_t *schemas, const void *value, size_t len,
                            json_t **out, int32_t *schema_id, char *errstr, size_t errstr_size);

#endif
