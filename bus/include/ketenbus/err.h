/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/err.h - the one error type of ketenbus: 0 is success, errors are
 * negative, kb_err_str() names them. Constructors additionally fill a
 * caller-provided errstr with the reason.
 */
#ifndef KETENBUS_ERR_H
#define KETENBUS_ERR_H

#include <stddef.h>

typedef enum kb_err {
    KB_OK = 0,
    KB_ERR_NOMEM = -1,     /* allocation failed */
    KB_ERR_INVALID = -2,   /* input violates its format (parse error) */
    KB_ERR_IO = -3,        /* file or socket I/O failed */
    KB_ERR_KAFKA = -4,     /* Kafka client or broker error */
    KB_ERR_NOTFOUND = -5,  /* named thing does not exist */
    KB_ERR_RANGE = -6,     /* value or size outside the allowed range */
    KB_ERR_CONF = -7,      /* configuration error */
    KB_ERR_TIMEOUT = -8,   /* gave up waiting */
    KB_ERR_SCHEMA = -9,    /* schema missing, unparsable or not matching */
    KB_ERR_STATE = -10,    /* call not valid in the object's current state */
    KB_ERR_FATAL = -11,    /* unrecoverable (e.g. producer fenced); process must stop */
} kb_err_t;

/** Static name of @p err, e.g. "KB_ERR_INVALID". Any thread. */
const char *kb_err_str(kb_err_t err);

/** printf into errstr if errstr_size > 0; always NUL-terminates. Returns @p err. */
kb_err_t kb_err_set(kb_err_t err, char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
