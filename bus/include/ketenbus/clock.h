/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * ketenbus/clock.h - the two clocks ketenbus reads, in milliseconds.
 *
 * Monotonic for deadlines, timeouts and durations: a step of the wall clock
 * (NTP, an operator) must not end a wait early or stretch it. The wall clock
 * for what is recorded or compared with recorded times (event times, audit
 * records, latency from ce_time).
 */
#ifndef KETENBUS_CLOCK_H
#define KETENBUS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t kb_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t kb_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
