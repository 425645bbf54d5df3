/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/stop.h - how a long-running ketenbus process stops: the first
 * SIGINT/SIGTERM asks for a clean stop, and a watchdog bounds that stop, so
 * an operator's stop (Kubernetes, systemd) ends in time with a line saying
 * why even when Kafka does not answer.
 */
#ifndef KETENBUS_STOP_H
#define KETENBUS_STOP_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

#include "ketenbus/err.h"

/* Exit status of a process whose clean stop was cut short: the stop took
 * longer than KETENBUS_STOP_TIMEOUT, or a second SIGINT/SIGTERM came during
 * it. Distinct from 0 (stopped cleanly), 1 (error) and 2 (usage). */
#define KB_STOP_EXIT_FORCED 3

/* Seconds a stop may take when KETENBUS_STOP_TIMEOUT is unset: below the
 * 30 s Kubernetes waits before SIGKILL, so the reason is logged first. */
#define KB_STOP_TIMEOUT_DEFAULT 25

/* Largest KETENBUS_STOP_TIMEOUT accepted (a day); 0 means no deadline. */
#define KB_STOP_TIMEOUT_MAX 86400

#define KB_STOP_STR_(x) #x
#define KB_STOP_STR(x) KB_STOP_STR_(x)

/* The lines every --help (ketenbus and the adapters) ends with. */
#define KB_STOP_HELP                                                                       \
    "SIGINT/SIGTERM stop a command cleanly; a stop that takes longer than\n"                \
    "$KETENBUS_STOP_TIMEOUT seconds (default " KB_STOP_STR(KB_STOP_TIMEOUT_DEFAULT)          \
    ", 0: no limit), or a second\nsignal, ends it with exit status "                        \
    KB_STOP_STR(KB_STOP_EXIT_FORCED) " and one error line saying why.\n"

/**
 * The stop deadline in seconds from KETENBUS_STOP_TIMEOUT: unset gives
 * KB_STOP_TIMEOUT_DEFAULT, 0 means wait forever. Anything but a whole number
 * from 0 to KB_STOP_TIMEOUT_MAX is KB_ERR_CONF with errstr saying so.
 * @thread any
 */
kb_err_t kb_stop_timeout_env(unsigned *seconds, char *errstr, size_t errstr_size);

/**
 * Install the stop handling of this process, once:
 *  - the first SIGINT or SIGTERM sets *@p stop (the caller's loops look at
 *    it and stop cleanly) and starts the stop deadline;
 *  - when the process is still there at the deadline, or on a second SIGINT
 *    or SIGTERM, a watchdog thread logs one error line (component
 *    @p component, saying what a cut-short stop means: @p consequence) and
 *    ends the process with _exit(KB_STOP_EXIT_FORCED);
 *  - SIGPIPE is ignored (a peer that goes away is an error return instead).
 * The signal handler only stores to *@p stop and posts a semaphore (both
 * async-signal-safe); everything else runs on the detached watchdog thread,
 * which never delays a normal exit. @p stop, @p component and
 * @p consequence must live as long as the process (statics, literals);
 * @p consequence must not contain a double quote.
 * @returns KB_OK; KB_ERR_CONF when KETENBUS_STOP_TIMEOUT is invalid,
 *          KB_ERR_STATE on a second call, KB_ERR_NOMEM when the thread cannot
 *          start (errstr says which; nothing is installed then).
 * @thread the main thread, before the work starts
 */
kb_err_t kb_stop_signals(atomic_int *stop, const char *component, const char *consequence,
                         char *errstr, size_t errstr_size);

/**
 * Pass a SIGTERM on to child @p pid when this process's stop is cut short,
 * so that a child in a process group of its own (ketenbus dev's adapters)
 * is not left running; the child then stops on its own deadline. At most
 * 8 children. 0, or -1 when full.
 * @thread any
 */
int kb_stop_forward(pid_t pid);

/** Forget @p pid (kb_stop_forward) once it is reaped: its number may be
 *  reused by an unrelated process. @thread any */
void kb_stop_forget(pid_t pid);

#endif
