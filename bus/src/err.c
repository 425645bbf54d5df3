/* SPDX-License-Identifier: EUPL-1.2 */
/* err.c - names and formatting of kb_err_t. */
#include <stdarg.h>
#include <stdio.h>

#include "ketenbus/err.h"

const char *kb_err_str(kb_err_t err)
{
    switch (err) {
    case KB_OK: return "KB_OK";
    case KB_ERR_NOMEM: return "KB_ERR_NOMEM";
    case KB_ERR_INVALID: return "KB_ERR_INVALID";
    case KB_ERR_IO: return "KB_ERR_IO";
    case KB_ERR_KAFKA: return "KB_ERR_KAFKA";
    case KB_ERR_NOTFOUND: return "KB_ERR_NOTFOUND";
    case KB_ERR_RANGE: return "KB_ERR_RANGE";
    case KB_ERR_CONF: return "KB_ERR_CONF";
    case KB_ERR_TIMEOUT: return "KB_ERR_TIMEOUT";
    case KB_ERR_SCHEMA: return "KB_ERR_SCHEMA";
    case KB_ERR_STATE: return "KB_ERR_STATE";
    case KB_ERR_FATAL: return "KB_ERR_FATAL";
    }
    return "KB_ERR_UNKNOWN";
}

kb_err_t kb_err_set(kb_err_t err, char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}
