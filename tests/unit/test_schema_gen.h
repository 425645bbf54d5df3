/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_schema_gen.h - Avro schema texts that make a compatibility check work
 * hard, for the compatibility unit tests and the registry's hostile-input
 * tests. Include after kb_test.h. Each returns a malloc'ed string.
 */
#ifndef KB_TEST_SCHEMA_GEN_H
#define KB_TEST_SCHEMA_GEN_H

#include <stdio.h>
#include <stdlib.h>

/* Records N<d> .. N0 where N<i> holds N<i-1> twice (defined inline, then by
 * name; @p union_ref: by name inside ["null", ...]): 2^d paths to N0 through
 * only d+1 records. @p extra is appended to the fields of N<d>. */
static inline char *dag(int d, int union_ref, const char *extra)
{
    size_t cap = (size_t)d * 160 + 512;
    char *s = malloc(cap);
    size_t o = 0;
    for (int i = d; i >= 1; i--)
        o += (size_t)snprintf(s + o, cap - o,
                              "{\"type\":\"record\",\"name\":\"N%d\",\"fields\":[{\"name\":\"a\","
                              "\"type\":",
                              i);
    o += (size_t)snprintf(s + o, cap - o,
                          "{\"type\":\"record\",\"name\":\"N0\",\"fields\":[{\"name\":\"x\","
                          "\"type\":\"int\"}]}");
    for (int i = 1; i <= d; i++) {
        o += (size_t)snprintf(s + o, cap - o,
                              union_ref ? "},{\"name\":\"b\",\"type\":[\"null\",\"N%d\"]}"
                                        : "},{\"name\":\"b\",\"type\":\"N%d\"}",
                              i - 1);
        o += (size_t)snprintf(s + o, cap - o, "%s]}", i == d ? extra : "");
    }
    return s;
}

/* Record W with @p n int fields, in reverse order when @p rev. */
static inline char *wide(int n, int rev)
{
    size_t cap = (size_t)n * 48 + 128;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "{\"type\":\"record\",\"name\":\"W\",\"fields\":[");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s{\"name\":\"f%d\",\"type\":\"int\"}", i ? "," : "",
                              rev ? n - 1 - i : i);
    snprintf(s + o, cap - o, "]}");
    return s;
}

#endif
