/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * proj_register.h - registration of the router's projected schemas
 * (internal). A copy of a projecting subscription is framed with the id of
 * its projected schema (sub_view.c); that id must resolve in the registry,
 * or the subscriber's deserialiser cannot read its own topic.
 */
#ifndef KETENBUS_PROJ_REGISTER_H
#define KETENBUS_PROJ_REGISTER_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/kafka.h"
#include "ketenbus/registry.h"
#include "ketenbus/schema.h"
#include "ketenbus/sub.h"

/*
 * For every subscription in @p subs that projects or pseudonymises, and
 * every schema version in @p schemas of a type it takes: register the
 * projected schema in <prefix>.schemas, subject "<its topic>-<projected
 * record name>" (compatibility NONE), id as framed. Idempotent: a restart
 * with the same set writes nothing. Connects only when some subscription
 * projects. KB_ERR_* with errstr naming the subscriber when the registry
 * topic cannot be used or an id is taken by another schema.
 */
kb_err_t kb__projections_register(const struct kb_kafka_opts *kafka, const struct kb_subs *subs,
                                  const kb_schemas_t *schemas, const uint8_t *key, size_t key_len,
                                  char *errstr, size_t errstr_size);

#endif
