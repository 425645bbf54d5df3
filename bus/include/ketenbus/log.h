/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/log.h - structured logging: one line per event, key=value pairs,
 * always with ts, level and component. Never pass personal data (BSN,
 * A-nummer, names, addresses) to these functions: log pseudonyms, event ids,
 * offsets and byte positions instead.
 */
#ifndef KETENBUS_LOG_H
#define KETENBUS_LOG_H

enum kb_log_level { KB_LOG_ERROR = 0, KB_LOG_WARN = 1, KB_LOG_INFO = 2, KB_LOG_DEBUG = 3 };

/** Set the most verbose level that is written (default INFO; KETENBUS_LOG=debug overrides). */
void kb_log_set_level(enum kb_log_level level);

/** True when @p level would be written: check before formatting costly values. */
int kb_log_enabled(enum kb_log_level level);

/**
 * Write one line to stderr: `ts=... level=... comp=<component> msg="<msg>" <fmt...>`.
 * @p fmt continues the line with further key=value pairs (may be NULL).
 * Thread-safe: each line is written with one write(2).
 */
void kb_log(enum kb_log_level level, const char *component, const char *msg,
            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define KB_LOG_ERR(comp, msg, ...) kb_log(KB_LOG_ERROR, comp, msg, __VA_ARGS__)
#define KB_LOG_WARN(comp, msg, ...) kb_log(KB_LOG_WARN, comp, msg, __VA_ARGS__)
#define KB_LOG_INFO(comp, msg, ...) kb_log(KB_LOG_INFO, comp, msg, __VA_ARGS__)
#define KB_LOG_DBG(comp, msg, ...)                                                       \
    do {                                                                                 \
        if (kb_log_enabled(KB_LOG_DEBUG))                                                \
            kb_log(KB_LOG_DEBUG, comp, msg, __VA_ARGS__);                                \
    } while (0)

#endif
