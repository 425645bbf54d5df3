/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * dead_lettered.h - which input positions a router group dead-lettered,
 * read back from its dead-letter topic.
 *
 * Why: a router that gets partitions rebuilds their duplicate windows from
 * the input, taking every event that passes the gate (route.c, invariant
 * 3). An event can still be dead-lettered after the gate (the payload does
 * not decode for a filter, a subscription's projection does not fit its
 * schema, a copy is too large). Its id must stay out of the window, or the
 * corrected event, redriven with the same id, is taken for a duplicate.
 * Each dead letter names its input position (kb_topic, kb_partition,
 * kb_offset) and the group that wrote it (kb_group): several groups may
 * share one dead-letter topic, and a letter of another group says nothing
 * about what this one delivered.
 */
#ifndef KB_DEAD_LETTERED_H
#define KB_DEAD_LETTERED_H

#include <stddef.h>
#include <stdint.h>

#include "ketenbus/kafka.h"

/* One input partition's window [from, to) and, after the scan, the
 * offsets in it that the group dead-lettered (unsorted, may repeat). */
struct kb__dl_window {
    const char *topic;
    int32_t partition;
    int64_t from, to;
    int64_t *offsets; /* owned; free() */
    size_t n, cap;
};

/* How far before the oldest input of the windows the scan starts: a
 * letter is written after its input, but the two timestamps come from
 * different hosts' clocks. */
#define KB_DL_CLOCK_MARGIN_MS (60 * 60 * 1000)

/**
 * Read @p dlq_topic (read_committed) from the letters timestamped
 * @p since_ms − KB_DL_CLOCK_MARGIN_MS on to its end as it was when the scan
 * began, adding to each window of @p w the offsets that group @p group
 * dead-lettered in it. 0 when read whole; -1 when it could not be (no
 * progress for @p stall_ms, no consumer, no metadata), with the reason in
 * @p errstr: the caller decides what an incomplete answer is worth.
 */
int kb__dead_lettered(const struct kb_kafka_opts *ko, const char *dlq_topic, const char *group,
                      int64_t since_ms, int stall_ms, struct kb__dl_window *w, size_t n,
                      char *errstr, size_t errstr_size);

/** Header @p name of @p h, decimal digits only (a letter's kb_partition or
 *  kb_offset), as a number in *@p out: 0, or -1 when absent or not such. */
int kb__dl_header_int(rd_kafka_headers_t *h, const char *name, int64_t *out);

/** Whether @p offset is among @p w's dead-lettered offsets (sorted by
 *  kb__dl_window_sort first). */
void kb__dl_window_sort(struct kb__dl_window *w);
int kb__dl_window_has(const struct kb__dl_window *w, int64_t offset);

#endif
