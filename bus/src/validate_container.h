/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * validate_container.h - the Avro object container reader behind `ketenbus
 * validate`, in kb_core so that its fuzz target can drive it.
 */
#ifndef KB_VALIDATE_CONTAINER_H
#define KB_VALIDATE_CONTAINER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ketenbus/validate.h"

/**
 * Check every datum of the Avro object container file @p buf (codec null)
 * against @p v. One line per invalid datum and a closing count line go to
 * @p out; a malformed file gets one line on @p err instead of the count.
 * Work is bounded by one validation per input byte plus one per block,
 * whatever the blocks claim (a validation's own cost: validate.c).
 * @returns the exit status of `ketenbus validate`: 0 every datum valid,
 * 1 some datum invalid or not checked, 2 not a container or malformed
 * @thread any; @p v is only read
 */
int kb__validate_container(const kb_validator_t *v, const uint8_t *buf, size_t len, FILE *out,
                           FILE *err);

/** Print datum @p index's rejection @p r as `ketenbus validate` reports it. */
void kb__validate_print_invalid(FILE *out, size_t index, const struct kb_validate_result *r);

#endif
