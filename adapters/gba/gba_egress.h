/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * gba_egress.h - rendering bus events back into LO3 for legacy afnemers that
 * still expect BRP-V's messages: persoon-geboren as an Ag01 (the child's
 * authorised PL), kind-toegevoegd as a Gv01 (new 09 stapel + empty 59),
 * persoon-overleden as a Gv01 (new 06 + empty 56). Fields a subscriber's
 * projection left out are simply absent elements.
 */
#ifndef KETENBUS_GBA_EGRESS_H
#define KETENBUS_GBA_EGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/err.h"
#include "ketenbus/event.h"
#include "ketenbus/schema.h"

/**
 * Render one event (@p payload: bare Avro of @p schema, framing removed)
 * as LO3 bytes. *out is malloc'ed; the caller frees it. KB_ERR_INVALID when
 * the event type has no LO3 form or a value cannot be written in Teletex
 * (errstr names the type or field path, never a value).
 * Any thread; @p schema's avro values are made and released inside.
 */
kb_err_t kb_gba_render_lo3(const struct kb_event_attrs *attrs, const struct kb_schema *schema,
                           const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len,
                           char *errstr, size_t errstr_size);

#endif
