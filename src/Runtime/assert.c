/* assert.c - reports a broken programming invariant through the log and aborts. */
#include <stdlib.h>

#include "vireo/rt.h"

noreturn void rt_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    /* Errors reach stderr and the per-VM log, so the reason survives the core dump. */
    rt_log(RT_LOG_ERROR, "assert", "assertion failed: %s at %s:%d in %s()", expr ? expr : "?",
           file ? file : "?", line, func ? func : "?");
    abort();
}
