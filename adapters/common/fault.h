/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * fault.h - fault injection for the tests: KETENBUS_FAULT=<point>[:N] makes
 * an adapter _exit(137), as a kill -9 would leave it, at a named point of
 * its work, so that a test can show what a restart makes of that moment.
 * The points: "crash-after-ack" (ingest: Kafka acknowledged a message's
 * events, its sender not yet answered) and "crash-after-deliver" (egress:
 * an event's output is durable, its offset not yet committed).
 */
#ifndef KETENBUS_FAULT_H
#define KETENBUS_FAULT_H

/**
 * 1 when KETENBUS_FAULT names @p point and the caller, having passed it
 * @p count times (1 the first time), is to crash now: "<point>" fires at
 * the first pass, "<point>:N" at the N-th. 0 when it is unset, names
 * another point, or N is not a whole number from 1. The caller logs (no
 * personal data) and calls _exit(137). Any thread.
 */
int kb_fault_hit(const char *point, unsigned long count);

#endif
