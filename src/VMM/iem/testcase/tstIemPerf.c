/* tstIemPerf.c - the interpreter's throughput workload (perf-work.h) run as a guest program: checked against the host, with the guest instruction rate printed. */

/*
 * The test asserts only the result (the guest computes what the host computes); the rate
 * it prints (guest instructions per second through iem_step) is for people comparing
 * builds, never asserted.  IEM_PERF_BYTES=N sizes the workload (default 16 KiB, a
 * fraction of a second; 262144 runs about 200 million instructions) and
 * IEM_PERF_ROUNDS=N repeats the guest run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "perf-work.h"
#include "perf-work-gen.h"

#define CODE_GPA  0x20000u
#define STACK_TOP 0x40000u
#define WS_GPA    0x100000u

static uint32_t env_u32(const char *name, uint32_t dflt, uint32_t max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    unsigned long n = strtoul(v, NULL, 0);
    return n == 0 || n > max ? dflt : (uint32_t)n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run_workload(void **state, bool paging_4k)
{
    uint32_t n = env_u32("IEM_PERF_BYTES", 16384, 16u << 20);
    uint32_t rounds = env_u32("IEM_PERF_ROUNDS", 1, 1000);
    size_t ws_bytes = 2 * 256 * PERF_CTX + 4 * (size_t)n + 64;
    uint8_t *host_ws = calloc(1, ws_bytes);
    assert_non_null(host_ws);
    uint64_t want = perf_work(host_ws, n, 7);
    assert_int_equal(want >> 48, 0); /* the host's own round trip is lossless */
    free(host_ws);

    uint64_t ram = ((WS_GPA + ws_bytes + (4u << 20)) + 0x1fffff) & ~(uint64_t)0x1fffff;
    struct iemh *h = iemh_create(ram);
    uint64_t total = 0;
    double secs = 0;
    for (uint32_t r = 0; r < rounds; r++) {
        iemh_mode_long64(h, CODE_GPA, STACK_TOP);
        if (paging_4k)
            iemh_map_4k(h);
        iemh_write(h, CODE_GPA, g_perf_guest_code, sizeof(g_perf_guest_code));
        h->s->gpr[CPU_RDI] = WS_GPA;
        h->s->gpr[CPU_RSI] = n;
        h->s->gpr[CPU_RDX] = 7;
        iemh_sync(h);
        struct iem_step_result res;
        double t0 = now_s();
        iemh_run(h, UINT64_MAX, &res);
        secs += now_s() - t0;
        total += res.executed;
        if (res.status != IEM_STEP_HLT)
            fail_msg("guest stopped with status %d, vector %d at %llx", res.status, res.vector,
                     (unsigned long long)h->s->rip);
        assert_int_equal(h->s->gpr[CPU_RAX], want);
    }
    print_message("perf %s: %u bytes x %u: %llu guest instructions in %.3f s = %.1f M/s\n",
                  paging_4k ? "4k-pages" : "2m-pages", n, rounds, (unsigned long long)total, secs,
                  secs > 0 ? total / secs / 1e6 : 0.0);
    iemh_destroy(h);
    (void)state;
}

/* The decompressor's setting: identity map with 2 MiB pages, CPL 0, 64-bit mode. */
static void test_perf_large_pages(void **state)
{
    run_workload(state, false);
}

/* The same with 4 KiB pages: more TLB misses and walks. */
static void test_perf_small_pages(void **state)
{
    run_workload(state, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perf_large_pages),
        cmocka_unit_test(test_perf_small_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
