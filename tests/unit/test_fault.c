/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_fault.c - KETENBUS_FAULT parsing (adapters/common/fault.c): a test
 * that means to crash an adapter at the N-th pass must get exactly that
 * pass, and a typo must crash nothing rather than something else.
 */
#include <stdlib.h>

#include "fault.h"
#include "kb_test.h"

int main(void)
{
    unsetenv("KETENBUS_FAULT");
    CHECK_INT(kb_fault_hit("crash-after-ack", 1), 0);

    /* no count: the first pass */
    setenv("KETENBUS_FAULT", "crash-after-ack", 1);
    CHECK_INT(kb_fault_hit("crash-after-ack", 1), 1);
    CHECK_INT(kb_fault_hit("crash-after-deliver", 1), 0);

    /* ":N": that pass only */
    setenv("KETENBUS_FAULT", "crash-after-deliver:2", 1);
    CHECK_INT(kb_fault_hit("crash-after-deliver", 1), 0);
    CHECK_INT(kb_fault_hit("crash-after-deliver", 2), 1);
    CHECK_INT(kb_fault_hit("crash-after-deliver", 3), 0);
    CHECK_INT(kb_fault_hit("crash-after-ack", 2), 0);
    setenv("KETENBUS_FAULT", "crash-after-ack:12", 1);
    CHECK_INT(kb_fault_hit("crash-after-ack", 1), 0);
    CHECK_INT(kb_fault_hit("crash-after-ack", 12), 1);

    /* not a point, or not a count: never fires */
    static const char *const bad[] = {"crash-after-ackx",   "crash-after-ack:",
                                      "crash-after-ack:0",  "crash-after-ack:2x",
                                      "crash-after-ack:-2", "crash-after-ack: 2",
                                      "crash-after",        "crash-after-ack:99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("KETENBUS_FAULT", bad[i], 1);
        for (unsigned long count = 0; count < 3; count++)
            CHECK_INT(kb_fault_hit("crash-after-ack", count), 0);
        CHECK_INT(kb_fault_hit("crash-after-ack", 2), 0);
    }
    unsetenv("KETENBUS_FAULT");
    KB_TEST_DONE();
}
