/* tstIemLockstep.c - the recompiler in lock step with the interpreter: one guest program on both, compared at block boundaries, the first divergence reported. */

/*
 * Two VMs hold the same program and data.  The recompiler's side runs up to 64
 * instructions at a time (whole translated blocks, chained while they fit); the
 * interpreter's side then runs exactly as many.  Registers, RIP and RFLAGS must agree
 * after every step, and the whole guest memory at the end and every 256 steps.  A
 * divergence names the step, the instruction count and both states, which is what a
 * person debugging a translation wants first.
 *
 * The programs: the range-coder round trip of tstIemPerf (compiled C: loops, calls,
 * byte and word loads and stores, flags across blocks), on identity-mapped 2 MiB pages
 * and on 4 KiB pages, and a loop that rewrites its own code as it runs.
 * IEM_LOCKSTEP_BYTES=N sizes the range-coder input (default 4096).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "perf-work.h"
#include "perf-work-gen.h"
#include "../iem-core.h"
#include "../../rec/rec.h"

#define CODE_GPA  0x20000u
#define STACK_TOP 0x40000u
#define WS_GPA    0x100000u

/* The first difference between two states, or false. */
static bool state_differs(const struct cpu_state *a, const struct cpu_state *b, char *why, size_t len)
{
    static const char *const names[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                           "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15" };
    for (int i = 0; i < 16; i++) {
        if (a->gpr[i] != b->gpr[i]) {
            snprintf(why, len, "%s %#llx (recompiler) != %#llx (interpreter)", names[i],
                     (unsigned long long)a->gpr[i], (unsigned long long)b->gpr[i]);
            return true;
        }
    }
    if (a->rip != b->rip) {
        snprintf(why, len, "rip %#llx != %#llx", (unsigned long long)a->rip, (unsigned long long)b->rip);
        return true;
    }
    if (a->rflags != b->rflags) {
        snprintf(why, len, "rflags %#llx != %#llx", (unsigned long long)a->rflags, (unsigned long long)b->rflags);
        return true;
    }
    return false;
}

static void memory_same(const struct iemh *rec, const struct iemh *ref, unsigned step)
{
    if (memcmp(rec->ram, ref->ram, rec->ram_bytes) == 0)
        return;
    for (uint64_t i = 0; i < rec->ram_bytes; i++) {
        if (rec->ram[i] != ref->ram[i])
            fail_msg("step %u: guest memory differs first at %#llx: %#x (recompiler) != %#x (interpreter)", step,
                     (unsigned long long)i, rec->ram[i], ref->ram[i]);
    }
}

/*
 * Runs both to HLT in lock step; returns the instructions run.  setup() prepares one
 * side (it runs for both).
 */
static uint64_t lockstep(uint64_t ram, void (*setup)(struct iemh *h, void *arg), void *arg, uint64_t *rax,
                         struct rec_stats *st)
{
    struct iemh *rec = iemh_create(ram), *ref = iemh_create(ram);
    assert_int_equal(iem_rec_enable(rec->cpu, true, 0), 0);
    assert_int_equal(iem_rec_enable(ref->cpu, false, 0), 0); /* even under VIREO_TEST_REC */
    setup(rec, arg);
    setup(ref, arg);
    uint64_t total = 0;
    for (unsigned step = 0;; step++) {
        struct iem_step_result rr, ri;
        iemh_run(rec, 64, &rr);
        iemh_run(ref, rr.executed, &ri);
        total += rr.executed;
        char why[160];
        if (ri.executed != rr.executed || ri.status != rr.status || ri.vector != rr.vector)
            fail_msg("step %u (%llu instructions in): the recompiler ran %llu (status %d, vector %d), the "
                     "interpreter %llu (status %d, vector %d)", step, (unsigned long long)total,
                     (unsigned long long)rr.executed, rr.status, rr.vector, (unsigned long long)ri.executed,
                     ri.status, ri.vector);
        if (state_differs(rec->s, ref->s, why, sizeof(why)))
            fail_msg("step %u (%llu instructions in, last block before rip %#llx): %s", step,
                     (unsigned long long)total, (unsigned long long)ref->s->rip, why);
        if (step % 256 == 0 || rr.status != IEM_STEP_LIMIT)
            memory_same(rec, ref, step);
        if (rr.status == IEM_STEP_HLT)
            break;
        if (rr.status != IEM_STEP_LIMIT)
            fail_msg("step %u: both stopped with exception %d at %#llx", step, rr.vector,
                     (unsigned long long)rec->s->rip);
    }
    rec_core_stats(iem_core_of(rec->cpu)->rec, st);
    *rax = rec->s->gpr[CPU_RAX];
    iemh_destroy(rec);
    iemh_destroy(ref);
    return total;
}

struct perf_arg {
    uint32_t n;
    bool pages_4k;
};

static void perf_setup(struct iemh *h, void *argp)
{
    const struct perf_arg *arg = argp;
    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    if (arg->pages_4k)
        iemh_map_4k(h);
    iemh_write(h, CODE_GPA, g_perf_guest_code, sizeof(g_perf_guest_code));
    h->s->gpr[CPU_RDI] = WS_GPA;
    h->s->gpr[CPU_RSI] = arg->n;
    h->s->gpr[CPU_RDX] = 7;
    iemh_sync(h);
}

static void run_perf(bool pages_4k)
{
    const char *v = getenv("IEM_LOCKSTEP_BYTES");
    struct perf_arg arg = { v && *v ? (uint32_t)strtoul(v, NULL, 0) : 4096u, pages_4k };
    if (arg.n == 0 || arg.n > (1u << 20))
        arg.n = 4096;
    size_t ws_bytes = 2 * 256 * PERF_CTX + 4 * (size_t)arg.n + 64;
    uint64_t ram = ((WS_GPA + ws_bytes + (4u << 20)) + 0x1fffff) & ~(uint64_t)0x1fffff;
    uint8_t *host_ws = calloc(1, ws_bytes);
    assert_non_null(host_ws);
    uint64_t want = perf_work(host_ws, arg.n, 7), rax;
    free(host_ws);
    struct rec_stats st;
    uint64_t n = lockstep(ram, perf_setup, &arg, &rax, &st);
    print_message("lock step: range coder over %u bytes, %s pages: %llu instructions agree (%llu blocks "
                  "translated, %llu instructions inline, %llu through the interpreter)\n", arg.n,
                  pages_4k ? "4 KiB" : "2 MiB", (unsigned long long)n, (unsigned long long)st.blocks,
                  (unsigned long long)st.inline_insns, (unsigned long long)st.call_insns);
    assert_int_equal(rax, want); /* and both computed what the host computes */
    assert_true(n > 100000);
    /* The recompiler really ran: translated blocks, most instructions inline. */
    assert_true(st.blocks > 0);
    assert_true(st.inline_insns > st.call_insns);
}

static void test_lockstep_perf_large_pages(void **state)
{
    run_perf(false);
    (void)state;
}

static void test_lockstep_perf_small_pages(void **state)
{
    run_perf(true);
    (void)state;
}

/*
 * A loop that patches the immediate of an instruction ahead of it in the same block each
 * round (the translation must be dropped and redone), summing what the patched
 * instruction loads: 1 + 2 + ... + 200.
 */
static void smc_setup(struct iemh *h, void *arg)
{
    static const uint8_t code[] = {
        0x31, 0xc0,                         /*  0: xor eax, eax */
        0xb9, 0x01, 0x00, 0x00, 0x00,       /*  2: mov ecx, 1 */
        0x89, 0x0d, 0x07, 0x00, 0x00, 0x00, /*  7: mov [rip+7], ecx   (the imm32 of the mov at 0x13) */
        0x90, 0x90, 0x90, 0x90, 0x90, 0x90, /*  d: nop x6 */
        0xba, 0x00, 0x00, 0x00, 0x00,       /* 13: mov edx, imm32 (patched) */
        0x01, 0xd0,                         /* 18: add eax, edx */
        0xff, 0xc1,                         /* 1a: inc ecx */
        0x81, 0xf9, 0xc9, 0x00, 0x00, 0x00, /* 1c: cmp ecx, 201 */
        0x75, 0xe3,                         /* 22: jne 7 */
        0xf4,                               /* 24: hlt */
    };
    (void)arg;
    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    iemh_write(h, CODE_GPA, code, sizeof(code));
    iemh_sync(h);
}

static void test_lockstep_self_modifying(void **state)
{
    uint64_t rax;
    struct rec_stats st;
    uint64_t n = lockstep(4u << 20, smc_setup, NULL, &rax, &st);
    assert_true(n > 1000);
    assert_int_equal(rax, 200 * 201 / 2);
    /* The patched block was translated again and again. */
    assert_true(st.blocks > 100);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lockstep_perf_large_pages),
        cmocka_unit_test(test_lockstep_perf_small_pages),
        cmocka_unit_test(test_lockstep_self_modifying),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
