/* tstIemSmp.c - the software CPU with several vCPUs: power-on state, CPUID topology, INIT/SIPI, cross-vCPU code invalidation and locked instructions on concurrent host threads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "harness.h"
#include "../iem-core.h"
#include "vireo/rt.h"

#define MAX_VIEWS 4

/* ---- power-on state and CPUID ---------------------------------------------------------------- */

static void test_power_on_state(void **state)
{
    (void)state;
    struct iemh *v[3];
    iemh_create_smp(0, 3, v);
    /* vCPU 0 is the BSP and runs; the others wait for a start-up IPI with the BSP bit clear (SDM vol. 3A, 9.4.1). */
    assert_false(v[0]->s->wait_for_sipi);
    assert_true(v[0]->s->apic_base & CPU_APIC_BASE_BSP);
    for (unsigned i = 1; i < 3; i++) {
        assert_true(v[i]->s->wait_for_sipi);
        assert_false(v[i]->s->apic_base & CPU_APIC_BASE_BSP);
        assert_true(v[i]->s->apic_base & (1u << 11)); /* enabled */
    }
    iemh_destroy_smp(v, 3);
}

static void test_cpuid_topology(void **state)
{
    (void)state;
    struct iemh *v[4];
    uint32_t r[4];
    iemh_create_smp(0, 4, v);
    for (unsigned i = 0; i < 4; i++) {
        iem_cpuid(v[i]->cpu, 1, 0, r);
        assert_int_equal(r[1] >> 24, i);            /* initial APIC ID = vCPU index */
        assert_int_equal((r[1] >> 16) & 0xff, 4);   /* logical processor IDs in the package */
        assert_true(r[3] & (1u << 28));             /* HTT */
        iem_cpuid(v[i]->cpu, 0xb, 0, r);
        assert_int_equal(r[3], i);                  /* x2APIC ID */
        assert_int_equal(r[1], 1);                  /* one thread per core */
        assert_int_equal((r[2] >> 8) & 0xff, 1);    /* SMT level */
        iem_cpuid(v[i]->cpu, 0xb, 1, r);
        assert_int_equal(r[0], 2);                  /* APIC ID bits of the package level */
        assert_int_equal(r[1], 4);                  /* four cores */
        assert_int_equal((r[2] >> 8) & 0xff, 2);    /* core level */
        iem_cpuid(v[i]->cpu, 4, 0, r);
        assert_int_equal((r[0] >> 26) + 1, 4);      /* cores per package */
    }
    iemh_destroy_smp(v, 4);
}

/* ---- INIT and start-up IPIs ------------------------------------------------------------------- */

struct fake_intc {
    unsigned events[2];
    uint8_t vector;
};

static unsigned fake_take_events(void *opaque, struct vcpu *vcpu, uint8_t *sipi_vector)
{
    struct fake_intc *f = opaque;
    unsigned i = vcpu_get_index(vcpu);
    unsigned ev = f->events[i];
    f->events[i] = 0;
    *sipi_vector = f->vector;
    return ev;
}

static void test_init_sipi(void **state)
{
    (void)state;
    struct iemh *v[2];
    iemh_create_smp(0, 2, v);
    struct fake_intc f = { .vector = 0x12 };
    struct vm_intc intc = { .opaque = &f, .take_events = fake_take_events };
    vm_set_intc(v[0]->vm, &intc);

    /* A start-up IPI starts the waiting AP in real mode at vector:0000 (SDM vol. 3A, 8.4.4.1). */
    f.events[1] = VM_INTC_EVENT_SIPI;
    assert_true(iem_intc_events(v[1]->cpu));
    assert_false(v[1]->s->wait_for_sipi);
    assert_int_equal(v[1]->s->seg[CPU_CS].sel, 0x1200);
    assert_int_equal(v[1]->s->seg[CPU_CS].base, 0x12000);
    assert_int_equal(v[1]->s->rip, 0);
    assert_false(v[1]->s->cr0 & CPU_CR0_PE);
    /* A second SIPI to a running AP is ignored. */
    v[1]->s->rip = 0x40;
    f.events[1] = VM_INTC_EVENT_SIPI;
    assert_false(iem_intc_events(v[1]->cpu));
    assert_int_equal(v[1]->s->rip, 0x40);
    /* INIT puts the AP back into wait-for-SIPI; on the BSP it restarts at the reset vector. */
    f.events[1] = VM_INTC_EVENT_INIT;
    assert_true(iem_intc_events(v[1]->cpu));
    assert_true(v[1]->s->wait_for_sipi);
    f.events[0] = VM_INTC_EVENT_INIT;
    v[0]->s->rip = 0x1234;
    assert_true(iem_intc_events(v[0]->cpu));
    assert_false(v[0]->s->wait_for_sipi);
    assert_int_equal(v[0]->s->rip, 0xfff0);
    assert_int_equal(v[0]->s->seg[CPU_CS].base, 0xffff0000);
    iemh_destroy_smp(v, 2);
}

/* ---- code written by another vCPU --------------------------------------------------------------- */

#define CODE_A  (IEMH_FREE_GPA + 0x10000)
#define CODE_B  (IEMH_FREE_GPA + 0x20000)
#define PROG1   (IEMH_FREE_GPA + 0x30000)

static const uint8_t g_nop_nop_ud2[] = { 0x90, 0x90, 0x0f, 0x0b };

/* mov byte [addr32], imm8; hlt */
static size_t prog_store8(uint8_t *p, uint32_t addr, uint8_t value)
{
    const uint8_t insn[] = { 0xc6, 0x04, 0x25, (uint8_t)addr, (uint8_t)(addr >> 8), (uint8_t)(addr >> 16),
                             (uint8_t)(addr >> 24), value, 0xf4 };
    memcpy(p, insn, sizeof(insn));
    return sizeof(insn);
}

static void test_cross_vcpu_smc(void **state)
{
    (void)state;
    struct iemh *v[2];
    struct iem_step_result r;
    iemh_create_smp(0, 2, v);
    iemh_mode_long64(v[0], CODE_A, 0x8000);
    iemh_mode_long64(v[1], PROG1, 0x9000);
    struct iem_core *c0 = iem_core_of(v[0]->cpu);

    iemh_exec(v[0], CODE_A, g_nop_nop_ud2, sizeof(g_nop_nop_ud2), 10, &r);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_true(iem_cache_is_code_page(c0, CODE_A));
    /* vCPU 1 turns the UD2 into HLT with a guest store: vCPU 0 hears of it through its queue. */
    uint8_t prog[16];
    size_t n = prog_store8(prog, CODE_A + 2, 0xf4);
    iemh_exec(v[1], PROG1, prog, n, 10, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_true(atomic_load(&c0->work) & IEM_WORK_INVAL);
    v[0]->s->rip = CODE_A;
    iemh_run(v[0], 10, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(v[0]->s->rip, CODE_A + 3);
    iemh_destroy_smp(v, 2);
}

/*
 * vCPU 1 maps a data page directly for writes; then vCPU 0 runs code there (the page becomes
 * code).  A store vCPU 1 makes through its old entry before its next block boundary is not
 * seen by the write path; at that boundary vCPU 1 finds the direct entry, drops it and queues
 * an invalidation of the page for vCPU 0, which then runs the new code.
 */
static void test_protect_direct_entry(void **state)
{
    (void)state;
    struct iemh *v[2];
    struct iem_step_result r;
    iemh_create_smp(0, 2, v);
    iemh_mode_long64(v[0], CODE_B, 0x8000);
    iemh_mode_long64(v[1], PROG1, 0x9000);
    struct iem_core *c0 = iem_core_of(v[0]->cpu), *c1 = iem_core_of(v[1]->cpu);

    uint8_t prog[16];
    size_t n = prog_store8(prog, CODE_B + 0x100, 1);
    iemh_exec(v[1], PROG1, prog, n, 10, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    unsigned slot = (CODE_B >> 12) % IEM_TLB_ENTRIES;
    struct iem_tlb_entry *e = &v[1]->cpu->tlb[IEM_ACC_WRITE][slot];
    assert_true(iem_tlb_direct(c1, e, CODE_B));

    iemh_exec(v[0], CODE_B, g_nop_nop_ud2, sizeof(g_nop_nop_ud2), 10, &r);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_true(atomic_load(&c1->work) & IEM_WORK_PROTECT);
    assert_false(atomic_load(&c0->work) & IEM_WORK_INVAL);

    /* The store through the stale entry (as translated code does it). */
    e->hva[(CODE_B + 2) & 0xfff] = 0xf4;
    v[1]->s->rip = PROG1 + n - 1; /* its HLT: one boundary, one instruction */
    iemh_run(v[1], 1, &r);
    assert_false(iem_tlb_direct(c1, e, CODE_B));
    assert_true(atomic_load(&c0->work) & IEM_WORK_INVAL);
    v[0]->s->rip = CODE_B;
    iemh_run(v[0], 10, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(v[0]->s->rip, CODE_B + 3);

    /* From now on vCPU 1's writes to the page take the slow path and reach vCPU 0 at once. */
    n = prog_store8(prog, CODE_B + 2, 0x0f);
    iemh_exec(v[1], PROG1, prog, n, 10, &r);
    assert_false(iem_tlb_direct(c1, e, CODE_B));
    assert_true(atomic_load(&c0->work) & IEM_WORK_INVAL);
    iemh_destroy_smp(v, 2);
}

/* A write goes only to the vCPUs that decoded code from its page. */
static void test_post_only_to_decoders(void **state)
{
    (void)state;
    struct iemh *v[3];
    struct iem_step_result r;
    iemh_create_smp(0, 3, v);
    iemh_mode_long64(v[0], CODE_A, 0x8000);
    iemh_mode_long64(v[1], PROG1, 0x9000);
    iemh_mode_long64(v[2], PROG1, 0xa000);
    struct iem_core *c0 = iem_core_of(v[0]->cpu), *c2 = iem_core_of(v[2]->cpu);
    iemh_exec(v[0], CODE_A, g_nop_nop_ud2, sizeof(g_nop_nop_ud2), 10, &r);
    uint8_t prog[16];
    size_t n = prog_store8(prog, CODE_A + 0x800, 7);
    iemh_exec(v[1], PROG1, prog, n, 10, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_true(atomic_load(&c0->work) & IEM_WORK_INVAL);
    assert_false(atomic_load(&c2->work) & IEM_WORK_INVAL);
    assert_int_equal(c2->npending, 0);
    iemh_destroy_smp(v, 3);
}

/* ---- locked instructions on concurrent host threads ---------------------------------------------- */

/*
 * Each vCPU runs ATOM_ROUNDS rounds (patched into the first MOV) of: LOCK INC, LOCK XADD (+2), a LOCK CMPXCHG16B increment loop,
 * LOCK ADD on a dword split across a page, and an XCHG spinlock around a plain increment:
 *   mov r8d, 20000 / .round: lock inc dword [A] / mov eax, 2 / lock xadd [B], eax /
 *   mov rax, [C] / mov rdx, [C+8] / .cas16: mov rbx, rax / mov rcx, rdx / add rbx, 1 / adc rcx, 0 /
 *   lock cmpxchg16b [C] / jnz .cas16 / lock add dword [S], 1 / mov eax, 1 / .take: xchg [L], eax /
 *   test eax, eax / jz .locked / .spin: pause / cmp dword [L], 0 / jne .spin / mov eax, 1 / jmp .take /
 *   .locked: mov edi, [V] / add edi, 1 / mov [V], edi / mov dword [L], 0 / dec r8d / jnz .round / hlt
 * with A = 0x100000, B = A + 0x40, C = A + 0x80, L = A + 0xc0, V = A + 0x100, S = A + 0xffe.
 */
static const uint8_t g_atomics[] = {
      0x41, 0xb8, 0x20, 0x4e, 0x00, 0x00, 0xf0, 0xff, 0x04, 0x25, 0x00, 0x00,
      0x10, 0x00, 0xb8, 0x02, 0x00, 0x00, 0x00, 0xf0, 0x0f, 0xc1, 0x04, 0x25,
      0x40, 0x00, 0x10, 0x00, 0x48, 0x8b, 0x04, 0x25, 0x80, 0x00, 0x10, 0x00,
      0x48, 0x8b, 0x14, 0x25, 0x88, 0x00, 0x10, 0x00, 0x48, 0x89, 0xc3, 0x48,
      0x89, 0xd1, 0x48, 0x83, 0xc3, 0x01, 0x48, 0x83, 0xd1, 0x00, 0xf0, 0x48,
      0x0f, 0xc7, 0x0c, 0x25, 0x80, 0x00, 0x10, 0x00, 0x75, 0xe6, 0xf0, 0x83,
      0x04, 0x25, 0xfe, 0x0f, 0x10, 0x00, 0x01, 0xb8, 0x01, 0x00, 0x00, 0x00,
      0x87, 0x04, 0x25, 0xc0, 0x00, 0x10, 0x00, 0x85, 0xc0, 0x74, 0x13, 0xf3,
      0x90, 0x83, 0x3c, 0x25, 0xc0, 0x00, 0x10, 0x00, 0x00, 0x75, 0xf4, 0xb8,
      0x01, 0x00, 0x00, 0x00, 0xeb, 0xe2, 0x8b, 0x3c, 0x25, 0x00, 0x01, 0x10,
      0x00, 0x83, 0xc7, 0x01, 0x89, 0x3c, 0x25, 0x00, 0x01, 0x10, 0x00, 0xc7,
      0x04, 0x25, 0xc0, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x41, 0xff,
      0xc8, 0x0f, 0x85, 0x6f, 0xff, 0xff, 0xff, 0xf4
};
#define ATOM_ROUNDS 100000u /* enough for the threads to overlap: a non-atomic LOCK INC fails this */
#define ATOM_DATA   0x100000u
#define ATOM_CODE   0x80000u

struct runner {
    struct iemh *h;
    struct iem_step_result r;
};

static void *runner_main(void *arg)
{
    struct runner *run = arg;
    do
        iemh_run(run->h, 100000000, &run->r);
    while (run->r.status == IEM_STEP_LIMIT);
    return NULL;
}

static void run_atomics(bool rec)
{
    struct iemh *v[MAX_VIEWS];
    struct runner runs[MAX_VIEWS];
    struct rt_thread *threads[MAX_VIEWS];
    iemh_create_smp(8u << 20, MAX_VIEWS, v);
    uint8_t code[sizeof(g_atomics)];
    memcpy(code, g_atomics, sizeof(code));
    uint32_t rounds = ATOM_ROUNDS;
    memcpy(code + 2, &rounds, sizeof(rounds)); /* mov r8d, imm32 */
    iemh_write(v[0], ATOM_CODE, code, sizeof(code));
    for (unsigned i = 0; i < MAX_VIEWS; i++) {
        iemh_mode_long64(v[i], ATOM_CODE, 0x8000 + 0x1000 * i);
        if (rec)
            assert_int_equal(iem_rec_enable(v[i]->cpu, true, 1), 0);
        runs[i].h = v[i];
    }
    for (unsigned i = 0; i < MAX_VIEWS; i++)
        assert_int_equal(rt_thread_create(&threads[i], "atomics", runner_main, &runs[i]), 0);
    for (unsigned i = 0; i < MAX_VIEWS; i++)
        rt_thread_join(threads[i], NULL);
    for (unsigned i = 0; i < MAX_VIEWS; i++) {
        assert_int_equal(runs[i].r.status, IEM_STEP_HLT);
    }
    uint32_t total = ATOM_ROUNDS * MAX_VIEWS;
    assert_int_equal(iemh_read32(v[0], ATOM_DATA), total);
    assert_int_equal(iemh_read32(v[0], ATOM_DATA + 0x40), 2 * total);
    assert_int_equal(iemh_read64(v[0], ATOM_DATA + 0x80), total);
    assert_int_equal(iemh_read64(v[0], ATOM_DATA + 0x88), 0);
    assert_int_equal(iemh_read32(v[0], ATOM_DATA + 0xffe), total);
    assert_int_equal(iemh_read32(v[0], ATOM_DATA + 0x100), total);
    assert_int_equal(iemh_read32(v[0], ATOM_DATA + 0xc0), 0);
    /* The split operand went through the VM-wide lock. */
    struct iem_core *c0 = iem_core_of(v[0]->cpu);
    assert_true(atomic_load(&c0->ivm->atomic_slow_count) >= total);
    iemh_destroy_smp(v, MAX_VIEWS);
}

static void test_atomics_interp(void **state)
{
    (void)state;
    run_atomics(false);
}

static void test_atomics_rec(void **state)
{
    (void)state;
    run_atomics(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_on_state),     cmocka_unit_test(test_cpuid_topology),
        cmocka_unit_test(test_init_sipi),          cmocka_unit_test(test_cross_vcpu_smc),
        cmocka_unit_test(test_protect_direct_entry), cmocka_unit_test(test_post_only_to_decoders),
        cmocka_unit_test(test_atomics_interp),     cmocka_unit_test(test_atomics_rec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
