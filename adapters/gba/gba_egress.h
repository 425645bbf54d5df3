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
 * as LO3 bytes. *out is malloc'ed; the caller frees it. The payload is
 * validated before avro-c decodes it (kb_egress_decode()). KB_ERR_INVALID
 * when it fails validation, the event type has no LO3 form, or a value
 * cannot be written (no Teletex form, longer than an element, not a
 * string); KB_ERR_RANGE when the message would exceed LO3's sizes (an
 * element over 999 bytes, too many categories or elements); KB_ERR_NOMEM.
 * All but KB_ERR_NOMEM are the event's own and permanent
 * (kb_egress_retryable()). errstr names the type or field path, never a
 * value. Any thread; @p schema's avro values are made and released inside.
 */
kb_err_t kb_gba_render_lo3(const struct kb_event_attrs *attrs, const struct kb_schema *schema,
                           const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len,
                           char *errstr, size_t errstr_size);

/**
 * The out/ file name of the LO3 of the event @p attrs, "<ce_id>.lo3" (a
 * re-render after a crash rewrites the same file), into @p name.
 * KB_ERR_INVALID when ce_id is not a safe file name (kb_egress_name_ok():
 * "../x" would leave the spool); errstr says so, without the id.
 * Any thread.
 */
kb_err_t kb_gba_out_name(const struct kb_event_attrs *attrs, char *name, size_t name_size,
                         char *errstr, size_t errstr_size);

#endif
