/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * sub_int.h - cross-file internals of the subscription loader: a load that
 * gives up in time, for the admin API, which loads on request and must
 * answer within a bound (the router's own loads run to the end).
 */
#ifndef KETENBUS_SUB_INT_H
#define KETENBUS_SUB_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "ketenbus/sub.h"

/* When a load gives up. */
struct kb__subs_bound {
    int64_t deadline_ms;    /* monotonic (kb_mono_ms); 0 = no deadline */
    const atomic_int *stop; /* give up once set; NULL = never */
};

/**
 * kb_subs_load() that gives up with KB_ERR_TIMEOUT (errstr saying so, and
 * @p subs left empty) once @p bound says so; looked at before each file and
 * every 4096 follow list lines, so a load overruns its deadline by at most
 * one YAML file's parse (KB_SUB_FILE_MAX) or 4096 lines. @p bound may be NULL.
 * @thread any; reads files only (no Kafka)
 */
kb_err_t kb__subs_load_bounded(const char *path, const uint8_t *subject_key, size_t key_len,
                               const struct kb__subs_bound *bound, struct kb_subs *subs,
                               char *errstr, size_t errstr_size);

#endif
