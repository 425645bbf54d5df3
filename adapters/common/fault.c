/* SPDX-License-Identifier: EUPL-1.2 */
/* fault.c - KETENBUS_FAULT, the tests' crash points (see fault.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

int kb_fault_hit(const char *point, unsigned long count)
{
    const char *fault = getenv("KETENBUS_FAULT");
    size_t n = strlen(point);
    if (!fault || strncmp(fault, point, n) != 0)
        return 0;
    if (fault[n] == '\0')
        return 1;
    /* a name that merely starts with the point's is another point */
    if (fault[n] != ':' || fault[n + 1] < '0' || fault[n + 1] > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long at = strtoul(fault + n + 1, &end, 10);
    return !*end && !errno && at > 0 && at == count;
}
