/* tstApic.c - local APIC tests: reset values, TPR/PPR, IRR/ISR/EOI, spurious, timer modes, IPIs, NMI/INIT/SIPI,
 * the PIC in virtual wire, MSRs, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define BASE 0xfee00000u
/* Register offsets (SDM vol. 3A, table 10-1). */
#define ID       0x020
#define VER      0x030
#define TPR      0x080
#define APR      0x090
#define PPR      0x0a0
#define EOI      0x0b0
#define LDR      0x0d0
#define DFR      0x0e0
#define SVR      0x0f0
#define ISR(n)   (0x100 + 0x10 * (n))
#define TMR(n)   (0x180 + 0x10 * (n))
#define IRR(n)   (0x200 + 0x10 * (n))
#define ESR      0x280
#define ICR_LO   0x300
#define ICR_HI   0x310
#define LVT_TIMER 0x320
#define LVT_THERM 0x330
#define LVT_PERF  0x340
#define LVT_LINT0 0x350
#define LVT_LINT1 0x360
#define LVT_ERROR 0x370
#define TMICT    0x380
#define TMCCT    0x390
#define TDCR     0x3e0

#define MASKED       0x10000u
#define MODE_PERIODIC 0x20000u
#define MODE_DEADLINE 0x40000u
#define SVR_ON       0x100u

#define MSR_APIC_BASE    0x1b
#define MSR_TSC_DEADLINE 0x6e0

struct fixture {
    struct vm *vm;
    struct pdm_dev *apic;
    struct vm_intc intc;
    unsigned eoi_count;
    uint8_t eoi_vector;
};

static int setup_n(void **state, unsigned vcpus)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create_smp(0, vcpus);
    f->apic = harness_dev_create(f->vm, &g_dev_apic, "apic", NULL);
    apic_get_intc(f->apic, &f->intc);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_n(state, 2);
}

static int setup1(void **state)
{
    return setup_n(state, 1);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    harness_vm_destroy(f->vm);
    free(f);
    return 0;
}

static uint32_t rd(struct fixture *f, unsigned cpu, unsigned off)
{
    return apic_reg_read(f->apic, cpu, off);
}

static void wr(struct fixture *f, unsigned cpu, unsigned off, uint32_t v)
{
    apic_reg_write(f->apic, cpu, off, v);
}

static struct vcpu *vc(struct fixture *f, unsigned cpu)
{
    return vm_get_vcpu(f->vm, cpu);
}

static bool pending(struct fixture *f, unsigned cpu)
{
    return vcpu_intr_pending(vc(f, cpu));
}

static int ack(struct fixture *f, unsigned cpu)
{
    return vcpu_intr_ack(vc(f, cpu));
}

static bool irr_has(struct fixture *f, unsigned cpu, unsigned v)
{
    return (rd(f, cpu, IRR(v / 32)) >> (v % 32)) & 1;
}

static bool isr_has(struct fixture *f, unsigned cpu, unsigned v)
{
    return (rd(f, cpu, ISR(v / 32)) >> (v % 32)) & 1;
}

static void enable(struct fixture *f, unsigned cpu)
{
    wr(f, cpu, SVR, SVR_ON | 0xff);
}

/* A fixed IPI from cpu to itself. */
static void self_ipi(struct fixture *f, unsigned cpu, uint8_t vector)
{
    wr(f, cpu, ICR_LO, 0x00044000u | vector);
}

static uint64_t msr_get(struct fixture *f, unsigned cpu, uint32_t msr)
{
    uint64_t v = 0xdead;
    assert_true(f->intc.msr_read(f->intc.opaque, vc(f, cpu), msr, &v));
    return v;
}

static bool msr_set(struct fixture *f, unsigned cpu, uint32_t msr, uint64_t v)
{
    return f->intc.msr_write(f->intc.opaque, vc(f, cpu), msr, v);
}

static void eoi_listener(void *opaque, uint8_t vector)
{
    struct fixture *f = opaque;
    f->eoi_count++;
    f->eoi_vector = vector;
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_reset_values(void **state)
{
    struct fixture *f = *state;
    for (unsigned cpu = 0; cpu < 2; cpu++) {
        assert_int_equal(rd(f, cpu, ID), cpu << 24);
        assert_int_equal(rd(f, cpu, VER), 0x00050014);
        assert_int_equal(rd(f, cpu, TPR), 0);
        assert_int_equal(rd(f, cpu, APR), 0);
        assert_int_equal(rd(f, cpu, PPR), 0);
        assert_int_equal(rd(f, cpu, LDR), 0);
        assert_int_equal(rd(f, cpu, DFR), 0xffffffff);
        assert_int_equal(rd(f, cpu, SVR), 0xff);
        for (unsigned i = 0; i < 8; i++) {
            assert_int_equal(rd(f, cpu, ISR(i)), 0);
            assert_int_equal(rd(f, cpu, TMR(i)), 0);
            assert_int_equal(rd(f, cpu, IRR(i)), 0);
        }
        assert_int_equal(rd(f, cpu, ESR), 0);
        assert_int_equal(rd(f, cpu, ICR_LO), 0);
        assert_int_equal(rd(f, cpu, ICR_HI), 0);
        assert_int_equal(rd(f, cpu, LVT_TIMER), MASKED);
        assert_int_equal(rd(f, cpu, LVT_THERM), MASKED);
        assert_int_equal(rd(f, cpu, LVT_PERF), MASKED);
        /* The BSP's LINT0 starts in virtual wire (ExtINT, unmasked). */
        assert_int_equal(rd(f, cpu, LVT_LINT0), cpu == 0 ? 0x700 : MASKED);
        assert_int_equal(rd(f, cpu, LVT_LINT1), MASKED);
        assert_int_equal(rd(f, cpu, LVT_ERROR), MASKED);
        assert_int_equal(rd(f, cpu, TMICT), 0);
        assert_int_equal(rd(f, cpu, TMCCT), 0);
        assert_int_equal(rd(f, cpu, TDCR), 0);
        assert_false(pending(f, cpu));
    }
    assert_int_equal(msr_get(f, 0, MSR_APIC_BASE), 0xfee00900);
    assert_int_equal(msr_get(f, 1, MSR_APIC_BASE), 0xfee00800);
    /* The page through MMIO: a device-thread access is vCPU 0's. */
    assert_int_equal(mem_mmio_read(f->vm, BASE + VER, 4), 0x00050014);
    assert_int_equal(mem_mmio_read(f->vm, BASE + DFR, 4), 0xffffffff);
    assert_int_equal(mem_mmio_read(f->vm, BASE + VER, 1), 0x14);
    assert_int_equal(mem_mmio_read(f->vm, BASE + VER + 2, 1), 0x05);
    assert_int_equal(mem_mmio_read(f->vm, BASE + VER + 4, 4), 0);
    mem_mmio_write(f->vm, BASE + TPR, 0x20, 4);
    assert_int_equal(rd(f, 0, TPR), 0x20);
    assert_int_equal(rd(f, 1, TPR), 0);
    /* Nothing pending: INTA has no vector. */
    assert_int_equal(ack(f, 0), -1);
}

static void test_tpr_ppr(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    wr(f, 0, TPR, 0x35);
    assert_int_equal(rd(f, 0, PPR), 0x35);
    assert_int_equal(rd(f, 0, APR), 0x35);
    self_ipi(f, 0, 0x51);
    /* IRR class 5 above TPR class 3: APR follows the IRR class. */
    assert_int_equal(rd(f, 0, APR), 0x50);
    assert_int_equal(ack(f, 0), 0x51);
    /* In service 0x51 (class 5) above TPR class 3: PPR is 0x50. */
    assert_int_equal(rd(f, 0, PPR), 0x50);
    wr(f, 0, TPR, 0x62);
    assert_int_equal(rd(f, 0, PPR), 0x62);
    wr(f, 0, TPR, 0x5f);
    assert_int_equal(rd(f, 0, PPR), 0x5f); /* same class: the TPR wins */
    wr(f, 0, EOI, 0);
    /* The TPR class blocks vectors of its class and below. */
    wr(f, 0, TPR, 0x50);
    self_ipi(f, 0, 0x55);
    assert_false(pending(f, 0));
    self_ipi(f, 0, 0x65);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x65);
    wr(f, 0, EOI, 0);
    wr(f, 0, TPR, 0x40);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x55);
    wr(f, 0, EOI, 0);
    /* CR8 through the CPU-side callbacks: MOV CR8 writes TPR[7:4]. */
    f->intc.tpr_set(f->intc.opaque, vc(f, 0), 0x90);
    assert_int_equal(rd(f, 0, TPR), 0x90);
    assert_int_equal(f->intc.tpr_get(f->intc.opaque, vc(f, 0)), 0x90);
    assert_int_equal(f->intc.tpr_get(f->intc.opaque, vc(f, 1)), 0);
    wr(f, 0, TPR, 0x1234567);
    assert_int_equal(rd(f, 0, TPR), 0x67);
}

static void test_irr_isr_eoi_nested(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    /* Two requests: the higher vector first. */
    self_ipi(f, 0, 0x30);
    self_ipi(f, 0, 0x90);
    assert_true(irr_has(f, 0, 0x30) && irr_has(f, 0, 0x90));
    assert_int_equal(ack(f, 0), 0x90);
    assert_true(isr_has(f, 0, 0x90));
    assert_false(irr_has(f, 0, 0x90));
    assert_false(pending(f, 0)); /* 0x30 is below the in-service class */
    wr(f, 0, EOI, 0);
    assert_false(isr_has(f, 0, 0x90));
    assert_int_equal(ack(f, 0), 0x30);
    /* Nesting: a higher class interrupts the one in service. */
    self_ipi(f, 0, 0x80);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x80);
    assert_int_equal(rd(f, 0, PPR), 0x80);
    self_ipi(f, 0, 0x45);
    self_ipi(f, 0, 0x38); /* same class as 0x30 in service: waits */
    assert_false(pending(f, 0));
    wr(f, 0, EOI, 0); /* retires 0x80, the highest in service */
    assert_false(isr_has(f, 0, 0x80));
    assert_true(isr_has(f, 0, 0x30));
    assert_int_equal(rd(f, 0, PPR), 0x30);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x45);
    wr(f, 0, EOI, 0); /* 0x45 */
    assert_false(pending(f, 0));
    wr(f, 0, EOI, 0); /* 0x30 */
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x38);
    wr(f, 0, EOI, 0);
    for (unsigned i = 0; i < 8; i++)
        assert_int_equal(rd(f, 0, ISR(i)) | rd(f, 0, IRR(i)), 0);
    /* An EOI with nothing in service changes nothing. */
    wr(f, 0, EOI, 0);
    assert_int_equal(rd(f, 0, PPR), 0);
    /* Edge-triggered: no TMR bit and no EOI broadcast. */
    apic_set_eoi_listener(f->apic, eoi_listener, f);
    self_ipi(f, 0, 0x70);
    assert_int_equal(rd(f, 0, TMR(3)), 0);
    assert_int_equal(ack(f, 0), 0x70);
    wr(f, 0, EOI, 0);
    assert_int_equal(f->eoi_count, 0);
    /* Level-triggered message: TMR set, EOI broadcast with the vector. */
    struct apic_msg msg = {.vector = 0x71, .delivery_mode = APIC_DM_FIXED, .dest = 0, .level = true};
    assert_true(apic_deliver(f->apic, &msg));
    assert_int_equal(rd(f, 0, TMR(3)), 1u << (0x71 - 0x60));
    assert_int_equal(ack(f, 0), 0x71);
    wr(f, 0, EOI, 0);
    assert_int_equal(f->eoi_count, 1);
    assert_int_equal(f->eoi_vector, 0x71);
}

static void test_spurious(void **state)
{
    struct fixture *f = *state;
    /* Software-disabled: fixed interrupts are not accepted. */
    self_ipi(f, 0, 0x41);
    assert_false(irr_has(f, 0, 0x41));
    assert_false(pending(f, 0));
    wr(f, 0, SVR, SVR_ON | 0xef);
    assert_int_equal(rd(f, 0, SVR), 0x1ef);
    self_ipi(f, 0, 0x41);
    assert_true(pending(f, 0));
    /* The TPR masks it before the INTA: the spurious vector, nothing in service. */
    wr(f, 0, TPR, 0x50);
    assert_false(pending(f, 0));
    assert_int_equal(ack(f, 0), 0xef);
    assert_int_equal(rd(f, 0, ISR(2)), 0);
    assert_true(irr_has(f, 0, 0x41));
    assert_int_equal(ack(f, 0), -1);
    wr(f, 0, TPR, 0);
    assert_int_equal(ack(f, 0), 0x41);
    /* Software disable masks every LVT entry and keeps them masked. */
    wr(f, 0, LVT_TIMER, 0x30);
    assert_int_equal(rd(f, 0, LVT_TIMER), 0x30);
    wr(f, 0, SVR, 0xff);
    assert_int_equal(rd(f, 0, LVT_TIMER), MASKED | 0x30);
    assert_int_equal(rd(f, 0, LVT_LINT0), MASKED | 0x700);
    wr(f, 0, LVT_TIMER, 0x31);
    assert_int_equal(rd(f, 0, LVT_TIMER), MASKED | 0x31);
}

static void timer_start(struct fixture *f, uint32_t lvt, uint32_t tdcr, uint32_t initial)
{
    wr(f, 0, LVT_TIMER, lvt);
    wr(f, 0, TDCR, tdcr);
    wr(f, 0, TMICT, initial);
}

static void test_timer_oneshot_divide(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    static const struct { uint32_t code, divide; } divs[] = {
        {0x0, 2}, {0x1, 4}, {0x2, 8}, {0x3, 16}, {0x8, 32}, {0x9, 64}, {0xa, 128}, {0xb, 1},
    };
    for (unsigned i = 0; i < sizeof(divs) / sizeof(divs[0]); i++) {
        uint32_t d = divs[i].divide;
        timer_start(f, 0x30, divs[i].code, 100);
        assert_int_equal(rd(f, 0, TDCR), divs[i].code);
        assert_int_equal(rd(f, 0, TMCCT), 100);
        harness_step_ns(f->vm, 25 * d); /* 1 GHz bus clock: one tick per ns before the divider */
        assert_int_equal(rd(f, 0, TMCCT), 75);
        harness_step_ns(f->vm, 75 * d - 1);
        assert_int_equal(rd(f, 0, TMCCT), 1);
        assert_false(pending(f, 0));
        harness_step_ns(f->vm, 1);
        assert_int_equal(rd(f, 0, TMCCT), 0);
        assert_true(pending(f, 0));
        assert_int_equal(ack(f, 0), 0x30);
        wr(f, 0, EOI, 0);
        /* One-shot: no second interrupt. */
        harness_step_ns(f->vm, 1000 * d);
        assert_false(pending(f, 0));
        assert_int_equal(rd(f, 0, TMCCT), 0);
    }
    /* A divide change keeps the current count and counts on at the new rate. */
    timer_start(f, 0x30, 0xb, 1000);
    harness_step_ns(f->vm, 400);
    assert_int_equal(rd(f, 0, TMCCT), 600);
    wr(f, 0, TDCR, 0x0); /* divide by 2 */
    assert_int_equal(rd(f, 0, TMCCT), 600);
    harness_step_ns(f->vm, 1000);
    assert_int_equal(rd(f, 0, TMCCT), 100);
    harness_step_ns(f->vm, 199);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 1);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x30);
    wr(f, 0, EOI, 0);
    /* Writing 0 stops the timer. */
    timer_start(f, 0x30, 0xb, 500);
    harness_step_ns(f->vm, 100);
    wr(f, 0, TMICT, 0);
    harness_step_ns(f->vm, 1000);
    assert_false(pending(f, 0));
    assert_int_equal(rd(f, 0, TMCCT), 0);
    /* Rewriting the initial count restarts it. */
    timer_start(f, 0x30, 0xb, 500);
    harness_step_ns(f->vm, 400);
    wr(f, 0, TMICT, 500);
    harness_step_ns(f->vm, 400);
    assert_false(pending(f, 0));
    assert_int_equal(rd(f, 0, TMCCT), 100);
}

static void test_timer_periodic(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    timer_start(f, MODE_PERIODIC | 0x40, 0xb, 10000);
    for (unsigned i = 0; i < 5; i++) {
        harness_step_ns(f->vm, 9999);
        assert_false(pending(f, 0));
        harness_step_ns(f->vm, 1);
        assert_true(pending(f, 0));
        assert_int_equal(ack(f, 0), 0x40);
        wr(f, 0, EOI, 0);
        assert_int_equal(rd(f, 0, TMCCT), 10000); /* reloaded */
    }
    harness_step_ns(f->vm, 3000);
    assert_int_equal(rd(f, 0, TMCCT), 7000);
    /* Missed periods coalesce into one pending interrupt; the count stays in phase. */
    harness_step_ns(f->vm, 100000);
    assert_int_equal(rd(f, 0, TMCCT), 7000);
    assert_int_equal(ack(f, 0), 0x40);
    wr(f, 0, EOI, 0);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 7000);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x40);
    wr(f, 0, EOI, 0);
    /* Divide by 4: period 40000 ns. */
    timer_start(f, MODE_PERIODIC | 0x40, 0x1, 10000);
    harness_step_ns(f->vm, 39999);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 1);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x40);
    wr(f, 0, EOI, 0);
    /* Periodic to one-shot keeps the count; it then ends at zero. */
    harness_step_ns(f->vm, 20000);
    assert_int_equal(rd(f, 0, TMCCT), 5000);
    wr(f, 0, LVT_TIMER, 0x40);
    harness_step_ns(f->vm, 19999);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 1);
    assert_int_equal(ack(f, 0), 0x40);
    wr(f, 0, EOI, 0);
    harness_step_ns(f->vm, 200000);
    assert_false(pending(f, 0));
    /* A 100 ns period is coalesced to one timer run per 10 us; the count stays exact. */
    timer_start(f, MODE_PERIODIC | 0x40, 0xb, 100);
    harness_step_ns(f->vm, 50);
    assert_int_equal(rd(f, 0, TMCCT), 50);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 9950);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x40);
    wr(f, 0, EOI, 0);
    harness_step_ns(f->vm, 5030);
    assert_int_equal(rd(f, 0, TMCCT), 70);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 4970);
    assert_true(pending(f, 0));
}

static void test_timer_masked(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    /* A masked timer counts and reaches zero without an interrupt. */
    timer_start(f, MASKED | 0x30, 0xb, 100);
    harness_step_ns(f->vm, 50);
    assert_int_equal(rd(f, 0, TMCCT), 50);
    harness_step_ns(f->vm, 50);
    assert_int_equal(rd(f, 0, TMCCT), 0);
    assert_false(pending(f, 0));
    assert_false(irr_has(f, 0, 0x30));
    /* Periodic and masked: unmasking lets the next period through. */
    timer_start(f, MASKED | MODE_PERIODIC | 0x30, 0xb, 10000);
    harness_step_ns(f->vm, 25000);
    assert_false(pending(f, 0));
    wr(f, 0, LVT_TIMER, MODE_PERIODIC | 0x30);
    assert_int_equal(rd(f, 0, TMCCT), 5000);
    harness_step_ns(f->vm, 4999);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 1);
    assert_int_equal(ack(f, 0), 0x30);
    /* Masked LINT and error entries deliver nothing. */
    wr(f, 0, LVT_LINT1, MASKED | 0x66);
    apic_set_lint(f->apic, 0, 1, true);
    apic_set_lint(f->apic, 0, 1, false);
    assert_false(irr_has(f, 0, 0x66));
}

static void test_timer_deadline(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    /* Outside TSC-deadline mode the MSR reads 0 and ignores writes. */
    assert_true(msr_set(f, 0, MSR_TSC_DEADLINE, 12345));
    assert_int_equal(msr_get(f, 0, MSR_TSC_DEADLINE), 0);
    wr(f, 0, LVT_TIMER, MODE_DEADLINE | 0x50);
    assert_int_equal(rd(f, 0, LVT_TIMER), MODE_DEADLINE | 0x50);
    /* Default relation: 1 GHz, offset 0, so TSC = virtual ns. */
    harness_step_ns(f->vm, 1000);
    uint64_t now = tm_now_ns(f->vm);
    assert_true(msr_set(f, 0, MSR_TSC_DEADLINE, now + 500));
    assert_int_equal(msr_get(f, 0, MSR_TSC_DEADLINE), now + 500);
    /* The count registers do nothing in this mode. */
    wr(f, 0, TMICT, 10);
    assert_int_equal(rd(f, 0, TMICT), 0);
    assert_int_equal(rd(f, 0, TMCCT), 0);
    harness_step_ns(f->vm, 499);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 1);
    assert_true(pending(f, 0));
    assert_int_equal(msr_get(f, 0, MSR_TSC_DEADLINE), 0);
    assert_int_equal(ack(f, 0), 0x50);
    wr(f, 0, EOI, 0);
    /* A deadline in the past fires at once; 0 disarms. */
    assert_true(msr_set(f, 0, MSR_TSC_DEADLINE, 1));
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x50);
    wr(f, 0, EOI, 0);
    now = tm_now_ns(f->vm);
    assert_true(msr_set(f, 0, MSR_TSC_DEADLINE, now + 100));
    assert_true(msr_set(f, 0, MSR_TSC_DEADLINE, 0));
    harness_step_ns(f->vm, 1000);
    assert_false(pending(f, 0));
    /* Leaving TSC-deadline mode disarms. */
    now = tm_now_ns(f->vm);
    assert_true(msr_set(f, 0, MSR_TSC_DEADLINE, now + 100));
    wr(f, 0, LVT_TIMER, 0x50);
    harness_step_ns(f->vm, 1000);
    assert_false(pending(f, 0));
    wr(f, 0, LVT_TIMER, MODE_DEADLINE | 0x50);
    assert_int_equal(msr_get(f, 0, MSR_TSC_DEADLINE), 0);
    /* The CPU's relation: TSC = ns * 2 + 1000 (2 GHz with an offset). */
    f->intc.tsc_sync(f->intc.opaque, vc(f, 0), 2000000, 1000);
    now = tm_now_ns(f->vm);
    uint64_t tsc = now * 2 + 1000;
    assert_true(msr_set(f, 0, MSR_TSC_DEADLINE, tsc + 2001));
    harness_step_ns(f->vm, 1000);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 1);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x50);
    wr(f, 0, EOI, 0);
    /* The relation changing while armed moves the expiry. */
    now = tm_now_ns(f->vm);
    tsc = now * 2 + 1000;
    assert_true(msr_set(f, 0, MSR_TSC_DEADLINE, tsc + 4000));
    f->intc.tsc_sync(f->intc.opaque, vc(f, 0), 4000000, tsc - now * 4); /* same TSC now, twice the rate */
    harness_step_ns(f->vm, 999);
    assert_false(pending(f, 0));
    harness_step_ns(f->vm, 1);
    assert_true(pending(f, 0));
    /* A masked deadline still disarms and clears the MSR. */
    assert_int_equal(ack(f, 0), 0x50);
    wr(f, 0, EOI, 0);
    wr(f, 0, LVT_TIMER, MASKED | MODE_DEADLINE | 0x50);
    now = tm_now_ns(f->vm);
    assert_true(msr_set(f, 0, MSR_TSC_DEADLINE, (now + 10) * 4 + (tsc - (now - 1000) * 4)));
    harness_step_ns(f->vm, 100);
    assert_false(pending(f, 0));
    assert_int_equal(msr_get(f, 0, MSR_TSC_DEADLINE), 0);
}

static void test_ipi_physical_logical(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    enable(f, 1);
    /* Physical destination 1. */
    wr(f, 0, ICR_HI, 0x01000000);
    wr(f, 0, ICR_LO, 0x00004050);
    assert_int_equal(rd(f, 0, ICR_LO), 0x00004050); /* delivery status idle */
    assert_false(pending(f, 0));
    assert_true(pending(f, 1));
    assert_int_equal(ack(f, 1), 0x50);
    wr(f, 1, EOI, 0);
    /* A changed APIC ID moves the physical destination. */
    wr(f, 1, ID, 0x07000000);
    assert_int_equal(rd(f, 1, ID), 0x07000000);
    wr(f, 0, ICR_LO, 0x00004051);
    assert_false(pending(f, 1));
    wr(f, 0, ICR_HI, 0x07000000);
    wr(f, 0, ICR_LO, 0x00004051);
    assert_int_equal(ack(f, 1), 0x51);
    wr(f, 1, EOI, 0);
    /* Physical broadcast 0xff reaches everyone, the sender included. */
    wr(f, 0, ICR_HI, 0xff000000);
    wr(f, 0, ICR_LO, 0x00004052);
    assert_int_equal(ack(f, 0), 0x52);
    assert_int_equal(ack(f, 1), 0x52);
    wr(f, 0, EOI, 0);
    wr(f, 1, EOI, 0);
    /* Logical flat: LDR bit masks. */
    wr(f, 0, LDR, 0x01000000);
    wr(f, 1, LDR, 0x02000000);
    wr(f, 0, ICR_HI, 0x02000000);
    wr(f, 0, ICR_LO, 0x00004853);
    assert_false(pending(f, 0));
    assert_int_equal(ack(f, 1), 0x53);
    wr(f, 1, EOI, 0);
    wr(f, 1, ICR_HI, 0x03000000);
    wr(f, 1, ICR_LO, 0x00004854);
    assert_int_equal(ack(f, 0), 0x54);
    assert_int_equal(ack(f, 1), 0x54);
    wr(f, 0, EOI, 0);
    wr(f, 1, EOI, 0);
    /* Logical cluster: cluster 2, members 1 and 2. */
    wr(f, 0, DFR, 0x0fffffff);
    wr(f, 1, DFR, 0x00000000);
    assert_int_equal(rd(f, 1, DFR), 0x0fffffff);
    wr(f, 0, LDR, 0x21000000);
    wr(f, 1, LDR, 0x22000000);
    wr(f, 0, ICR_HI, 0x22000000);
    wr(f, 0, ICR_LO, 0x00004855);
    assert_false(pending(f, 0));
    assert_int_equal(ack(f, 1), 0x55);
    wr(f, 1, EOI, 0);
    wr(f, 0, ICR_HI, 0x12000000); /* cluster 1: nobody */
    wr(f, 0, ICR_LO, 0x00004856);
    assert_false(pending(f, 0) || pending(f, 1));
    wr(f, 0, ICR_HI, 0xff000000); /* cluster broadcast */
    wr(f, 0, ICR_LO, 0x00004857);
    assert_int_equal(ack(f, 0), 0x57);
    assert_int_equal(ack(f, 1), 0x57);
    wr(f, 0, EOI, 0);
    wr(f, 1, EOI, 0);
    /* Shorthands: all including self, all excluding self. */
    wr(f, 1, ICR_LO, 0x00084058);
    assert_int_equal(ack(f, 0), 0x58);
    assert_int_equal(ack(f, 1), 0x58);
    wr(f, 0, EOI, 0);
    wr(f, 1, EOI, 0);
    wr(f, 1, ICR_LO, 0x000c4059);
    assert_int_equal(ack(f, 0), 0x59);
    assert_false(pending(f, 1));
    wr(f, 0, EOI, 0);
    /* The ICR trigger bit does not make an IPI level-triggered. */
    wr(f, 0, ICR_LO, 0x0004c05b);
    assert_int_equal(rd(f, 0, TMR(2)), 0);
    assert_int_equal(ack(f, 0), 0x5b);
    wr(f, 0, EOI, 0);
    /* A software-disabled target drops fixed IPIs. */
    wr(f, 1, SVR, 0xff);
    wr(f, 0, ICR_LO, 0x000c405a);
    assert_false(irr_has(f, 1, 0x5a));
    /* Vectors 0-15 are illegal: the sender logs a send error and nothing goes out. */
    enable(f, 1);
    wr(f, 0, ICR_LO, 0x000c4005);
    assert_false(pending(f, 1));
    wr(f, 0, ESR, 0);
    assert_int_equal(rd(f, 0, ESR), 0x20);
}

static void test_ipi_lowest_priority(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    enable(f, 1);
    wr(f, 0, LDR, 0x01000000);
    wr(f, 1, LDR, 0x02000000);
    /* Equal priority: the lowest index. */
    wr(f, 1, ICR_HI, 0x03000000);
    wr(f, 1, ICR_LO, 0x00004960);
    assert_true(irr_has(f, 0, 0x60));
    assert_false(irr_has(f, 1, 0x60));
    assert_int_equal(ack(f, 0), 0x60);
    /* Focus: the APIC that has the vector in service gets it again. */
    wr(f, 1, ICR_LO, 0x00004960);
    assert_true(irr_has(f, 0, 0x60));
    wr(f, 0, EOI, 0);
    assert_int_equal(ack(f, 0), 0x60);
    wr(f, 0, EOI, 0);
    /* A higher TPR on vCPU 0 sends it to vCPU 1. */
    wr(f, 0, TPR, 0x40);
    wr(f, 1, ICR_LO, 0x00004961);
    assert_false(irr_has(f, 0, 0x61));
    assert_true(irr_has(f, 1, 0x61));
    assert_int_equal(ack(f, 1), 0x61);
    wr(f, 1, EOI, 0);
    /* Through a message (an I/O APIC entry in lowest-priority mode). */
    struct apic_msg msg = {.vector = 0x62, .delivery_mode = APIC_DM_LOWEST, .dest_logical = true, .dest = 0x03};
    assert_true(apic_deliver(f->apic, &msg));
    assert_true(irr_has(f, 1, 0x62));
    /* MSI: physical destination 0, vector 0x63. */
    apic_deliver_msi(f->apic, 0xfee00000, 0x0063);
    assert_true(irr_has(f, 0, 0x63));
    apic_deliver_msi(f->apic, 0xfee01000, 0x0064);
    assert_true(irr_has(f, 1, 0x64));
    apic_deliver_msi(f->apic, 0xfed00000, 0x0065);
    assert_false(irr_has(f, 0, 0x65) || irr_has(f, 1, 0x65));
    /* Start-up is reserved in MSIs. */
    apic_deliver_msi(f->apic, 0xfee00000, 0x0666);
    uint8_t sipi;
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 0), &sipi), 0);
    /* NMI by MSI. */
    apic_deliver_msi(f->apic, 0xfee01000, 0x0400);
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 1), &sipi), VM_INTC_EVENT_NMI);
}

static void test_nmi_init_sipi(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    enable(f, 1);
    uint8_t sipi = 0;
    /* NMI to vCPU 1: the attention line rises, take_events hands it over. */
    wr(f, 0, ICR_HI, 0x01000000);
    wr(f, 0, ICR_LO, 0x00004400);
    assert_true(pending(f, 1));
    assert_false(pending(f, 0));
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 1), &sipi), VM_INTC_EVENT_NMI);
    assert_false(pending(f, 1));
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 1), &sipi), 0);
    /* An NMI alone has no INTA vector. */
    wr(f, 0, ICR_LO, 0x00004400);
    assert_int_equal(ack(f, 1), -1);
    f->intc.take_events(f->intc.opaque, vc(f, 1), &sipi);
    /* INIT resets the target's APIC but keeps its ID; SIPI carries the start page. */
    wr(f, 1, TPR, 0x20);
    wr(f, 1, ID, 0x05000000);
    wr(f, 0, ICR_HI, 0x05000000);
    wr(f, 0, ICR_LO, 0x00004500);
    assert_true(pending(f, 1));
    assert_int_equal(rd(f, 1, SVR), 0xff);
    assert_int_equal(rd(f, 1, TPR), 0);
    assert_int_equal(rd(f, 1, ID), 0x05000000);
    /* INIT level de-assert does nothing. */
    wr(f, 0, ICR_LO, 0x00008500);
    wr(f, 0, ICR_LO, 0x0000469a);
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 1), &sipi),
                     VM_INTC_EVENT_INIT | VM_INTC_EVENT_SIPI);
    assert_int_equal(sipi, 0x9a);
    assert_false(pending(f, 1));
    /* SeaBIOS's broadcast to all but self: INIT then SIPI. */
    wr(f, 0, ICR_LO, 0x000c4500);
    wr(f, 0, ICR_LO, 0x000c4609);
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 1), &sipi),
                     VM_INTC_EVENT_INIT | VM_INTC_EVENT_SIPI);
    assert_int_equal(sipi, 0x09);
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 0), &sipi), 0);
    /* A SIPI before an INIT is void once the INIT arrives. */
    wr(f, 0, ICR_LO, 0x000c4610);
    wr(f, 0, ICR_LO, 0x000c4500);
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 1), &sipi), VM_INTC_EVENT_INIT);
    /* SMI is ignored. */
    wr(f, 0, ICR_LO, 0x000c4200);
    assert_false(pending(f, 1));
    /* LINT1 as NMI (as SeaBIOS programs it): an edge gives one NMI. */
    wr(f, 0, LVT_LINT1, 0x8400);
    apic_set_lint(f->apic, 0, 1, true);
    apic_set_lint(f->apic, 0, 1, true);
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 0), &sipi), VM_INTC_EVENT_NMI);
    apic_set_lint(f->apic, 0, 1, false);
    assert_int_equal(f->intc.take_events(f->intc.opaque, vc(f, 0), &sipi), 0);
}

/* The board's wiring: the PIC's INT into LINT0 of vCPU 0, the PIC's INTA for ExtINT. */
static void pic_to_lint0(void *opaque, bool level)
{
    apic_set_lint(opaque, 0, 0, level);
}

static int pic_inta(void *opaque)
{
    return pic_intack(opaque);
}

static void pic_init(struct vm *vm)
{
    harness_outb(vm, 0x20, 0x11);
    harness_outb(vm, 0x21, 0x20);
    harness_outb(vm, 0x21, 0x04);
    harness_outb(vm, 0x21, 0x01);
    harness_outb(vm, 0xa0, 0x11);
    harness_outb(vm, 0xa1, 0x28);
    harness_outb(vm, 0xa1, 0x02);
    harness_outb(vm, 0xa1, 0x01);
    harness_outb(vm, 0x21, 0x00);
    harness_outb(vm, 0xa1, 0x00);
}

static void test_extint_virtual_wire(void **state)
{
    struct vm *vm = harness_vm_create_smp(0, 2);
    struct pdm_dev *pic = harness_dev_create(vm, &g_dev_i8259, "pic", NULL);
    struct pdm_dev *apic = harness_dev_create(vm, &g_dev_apic, "apic", NULL);
    apic_set_extint(apic, pic_inta, pic);
    pic_set_output(pic, pic_to_lint0, apic);
    struct pdm_irq *irq0, *irq8;
    assert_int_equal(pdm_irq_create(vm, 0, "test", &irq0), 0);
    assert_int_equal(pdm_irq_create(vm, 8, "test", &irq8), 0);
    pic_init(vm);
    /* Power-on virtual wire: PIC IRQ0 -> LINT0 (ExtINT) -> INTR of vCPU 0 -> the PIC's vector. */
    pdm_irq_pulse(irq0);
    assert_true(harness_intr_pending(vm));
    assert_false(vcpu_intr_pending(vm_get_vcpu(vm, 1)));
    assert_int_equal(harness_intr_ack(vm), 0x20);
    assert_false(harness_intr_pending(vm));
    harness_outb(vm, 0x20, 0x20);
    /* The slave through the cascade. */
    pdm_irq_pulse(irq8);
    assert_int_equal(harness_intr_ack(vm), 0x28);
    harness_outb(vm, 0xa0, 0x20);
    harness_outb(vm, 0x20, 0x20);
    /* SeaBIOS's setting (software enable, LINT0 ExtINT level) works the same. */
    apic_reg_write(apic, 0, SVR, 0x1ff);
    apic_reg_write(apic, 0, LVT_LINT0, 0x8700);
    pdm_irq_pulse(irq0);
    assert_true(harness_intr_pending(vm));
    assert_int_equal(harness_intr_ack(vm), 0x20);
    harness_outb(vm, 0x20, 0x20);
    /* Masked LINT0 (Linux with the I/O APIC): the PIC no longer reaches the CPU. */
    apic_reg_write(apic, 0, LVT_LINT0, 0x10700);
    pdm_irq_pulse(irq0);
    assert_false(harness_intr_pending(vm));
    /* Unmasking lets the waiting request through. */
    apic_reg_write(apic, 0, LVT_LINT0, 0x700);
    assert_true(harness_intr_pending(vm));
    /* APIC interrupts come before the ExtINT one. */
    apic_reg_write(apic, 0, ICR_LO, 0x00044090);
    assert_int_equal(harness_intr_ack(vm), 0x90);
    assert_int_equal(harness_intr_ack(vm), 0x20);
    harness_outb(vm, 0x20, 0x20);
    apic_reg_write(apic, 0, EOI, 0);
    /* Globally disabled APIC: LINT0 is the CPU's INTR pin. */
    struct vm_intc intc;
    apic_get_intc(apic, &intc);
    assert_true(intc.msr_write(intc.opaque, vm_get_vcpu(vm, 0), MSR_APIC_BASE, 0xfee00100));
    pdm_irq_pulse(irq0);
    assert_true(harness_intr_pending(vm));
    assert_int_equal(harness_intr_ack(vm), 0x20);
    harness_outb(vm, 0x20, 0x20);
    /* An ExtINT message (an I/O APIC pin in ExtINT mode) also asks the PIC. */
    assert_true(intc.msr_write(intc.opaque, vm_get_vcpu(vm, 0), MSR_APIC_BASE, 0xfee00900));
    apic_reg_write(apic, 0, LVT_LINT0, 0x10700);
    pdm_irq_pulse(irq0);
    assert_false(harness_intr_pending(vm));
    struct apic_msg msg = {.delivery_mode = APIC_DM_EXTINT, .dest = 0};
    assert_true(apic_deliver(apic, &msg));
    assert_true(harness_intr_pending(vm));
    assert_int_equal(harness_intr_ack(vm), 0x20);
    assert_false(harness_intr_pending(vm));
    harness_vm_destroy(vm);
}

static void test_lint_level_fixed(void **state)
{
    struct fixture *f = *state;
    enable(f, 1);
    apic_set_eoi_listener(f->apic, eoi_listener, f);
    /* LINT1 of vCPU 1: fixed, level-triggered, vector 0x66. */
    wr(f, 1, LVT_LINT1, 0x8066);
    apic_set_lint(f->apic, 1, 1, true);
    assert_int_equal(rd(f, 1, LVT_LINT1), 0xc066); /* remote IRR */
    assert_int_equal(ack(f, 1), 0x66);
    assert_true((rd(f, 1, TMR(3)) >> 6) & 1);
    /* Still asserted at the EOI: delivered again. */
    wr(f, 1, EOI, 0);
    assert_int_equal(f->eoi_count, 1);
    assert_true(irr_has(f, 1, 0x66));
    assert_int_equal(ack(f, 1), 0x66);
    apic_set_lint(f->apic, 1, 1, false);
    wr(f, 1, EOI, 0);
    assert_int_equal(rd(f, 1, LVT_LINT1), 0x8066);
    assert_false(pending(f, 1));
    /* Active low: the pin low is the request. */
    wr(f, 1, LVT_LINT1, 0xa066);
    assert_true(irr_has(f, 1, 0x66));
    assert_int_equal(ack(f, 1), 0x66);
    apic_set_lint(f->apic, 1, 1, true);
    wr(f, 1, EOI, 0);
    assert_false(pending(f, 1));
    /* Edge-triggered fixed: one interrupt per rising edge. */
    wr(f, 1, LVT_LINT0, 0x0067);
    apic_set_lint(f->apic, 1, 0, true);
    apic_set_lint(f->apic, 1, 0, true);
    assert_int_equal(ack(f, 1), 0x67);
    wr(f, 1, EOI, 0);
    assert_false(pending(f, 1));
    apic_set_lint(f->apic, 1, 0, false);
    apic_set_lint(f->apic, 1, 0, true);
    assert_int_equal(ack(f, 1), 0x67);
}

static void test_esr_and_error_lvt(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    /* A reserved register: the error is latched by the next ESR write (write before read). */
    assert_int_equal(rd(f, 0, 0x000), 0);
    assert_int_equal(rd(f, 0, ESR), 0);
    wr(f, 0, ESR, 0);
    assert_int_equal(rd(f, 0, ESR), 0x80);
    wr(f, 0, ESR, 0xffffffff);
    assert_int_equal(rd(f, 0, ESR), 0);
    /* With the error LVT unmasked, a new error raises its vector. */
    wr(f, 0, LVT_ERROR, 0xfe);
    wr(f, 0, 0x3f0, 1);
    assert_int_equal(ack(f, 0), 0xfe);
    wr(f, 0, EOI, 0);
    /* The same error again before the ESR write: no second interrupt. */
    wr(f, 0, 0x2f0, 1);
    assert_false(pending(f, 0));
    wr(f, 0, ESR, 0);
    assert_int_equal(rd(f, 0, ESR), 0x80);
    /* An LVT entry with an illegal vector: a receive error. */
    wr(f, 0, LVT_TIMER, 0x05);
    wr(f, 0, TDCR, 0xb);
    wr(f, 0, TMICT, 10);
    harness_step_ns(f->vm, 10);
    assert_false(irr_has(f, 0, 0x05));
    assert_int_equal(ack(f, 0), 0xfe);
    wr(f, 0, ESR, 0);
    assert_int_equal(rd(f, 0, ESR), 0x40);
}

static void test_msr_apic_base(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    wr(f, 0, TPR, 0x30);
    /* Reserved bits, x2APIC enable and bits above MAXPHYADDR (40) fault. */
    assert_false(msr_set(f, 0, MSR_APIC_BASE, 0xfee00901));
    assert_false(msr_set(f, 0, MSR_APIC_BASE, 0xfee00d00));
    assert_false(msr_set(f, 0, MSR_APIC_BASE, 0x1000fee00900ULL));
    assert_false(f->intc.msr_write(f->intc.opaque, vc(f, 0), 0x10, 0));
    uint64_t v;
    assert_false(f->intc.msr_read(f->intc.opaque, vc(f, 0), 0x10, &v));
    assert_int_equal(msr_get(f, 0, MSR_APIC_BASE), 0xfee00900);
    /* Relocation: the page follows; the BSP bit is read-only. */
    assert_true(msr_set(f, 0, MSR_APIC_BASE, 0xfed00800));
    assert_int_equal(msr_get(f, 0, MSR_APIC_BASE), 0xfed00900);
    assert_int_equal(mem_mmio_read(f->vm, 0xfed00000 + TPR, 4), 0x30);
    assert_int_equal(mem_mmio_read(f->vm, BASE + TPR, 4), 0xffffffff); /* vCPU 1's page is not vCPU 0's */
    assert_true(msr_set(f, 1, MSR_APIC_BASE, 0xfee00900));
    assert_int_equal(msr_get(f, 1, MSR_APIC_BASE), 0xfee00800);
    assert_true(msr_set(f, 0, MSR_APIC_BASE, 0xfee00800));
    assert_int_equal(mem_mmio_read(f->vm, BASE + TPR, 4), 0x30);
    /* Global disable: the page goes, the state returns to power-up, messages are refused. */
    assert_true(msr_set(f, 0, MSR_APIC_BASE, 0xfee00000));
    assert_int_equal(msr_get(f, 0, MSR_APIC_BASE), 0xfee00100);
    struct apic_msg msg = {.vector = 0x40, .delivery_mode = APIC_DM_FIXED, .dest = 0};
    assert_false(apic_deliver(f->apic, &msg));
    assert_true(msr_set(f, 0, MSR_APIC_BASE, 0xfee00800));
    assert_int_equal(rd(f, 0, TPR), 0);
    assert_int_equal(rd(f, 0, SVR), 0xff);
    assert_int_equal(mem_mmio_read(f->vm, BASE + VER, 4), 0x00050014);
}

/* Every register with a defined read value (TMCCT is checked on its own). */
static const unsigned g_regs[] = {
    ID, VER, TPR, APR, PPR, LDR, DFR, SVR, ISR(0), ISR(1), ISR(2), ISR(3), ISR(4), ISR(5), ISR(6), ISR(7),
    TMR(0), TMR(1), TMR(2), TMR(3), TMR(4), TMR(5), TMR(6), TMR(7), IRR(0), IRR(1), IRR(2), IRR(3), IRR(4),
    IRR(5), IRR(6), IRR(7), ESR, ICR_LO, ICR_HI, LVT_TIMER, LVT_THERM, LVT_PERF, LVT_LINT0, LVT_LINT1,
    LVT_ERROR, TMICT, TDCR,
};
#define NREGS (sizeof(g_regs) / sizeof(g_regs[0]))

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    enable(f, 0);
    enable(f, 1);
    wr(f, 0, TPR, 0x20);
    wr(f, 0, LDR, 0x01000000);
    wr(f, 1, DFR, 0x0fffffff);
    self_ipi(f, 0, 0x70);
    self_ipi(f, 0, 0x60);
    assert_int_equal(ack(f, 0), 0x70);
    wr(f, 0, ICR_HI, 0x01000000);
    wr(f, 0, LVT_LINT1, 0x8066);
    wr(f, 1, LVT_ERROR, 0xfe);
    timer_start(f, MODE_PERIODIC | 0x40, 0x1, 10000); /* period 40 us */
    harness_step_ns(f->vm, 15000);
    wr(f, 1, 0x000, 0); /* an error pending on vCPU 1 (and its LVT interrupt) */
    uint32_t before[2][NREGS];
    for (unsigned cpu = 0; cpu < 2; cpu++)
        for (unsigned i = 0; i < NREGS; i++)
            before[cpu][i] = rd(f, cpu, g_regs[i]);
    assert_int_equal(harness_dev_save_reset_load(f->apic), 0);
    for (unsigned cpu = 0; cpu < 2; cpu++)
        for (unsigned i = 0; i < NREGS; i++)
            assert_int_equal(rd(f, cpu, g_regs[i]), before[cpu][i]);
    assert_int_equal(rd(f, 0, TMCCT), 6250);
    assert_true(pending(f, 1)); /* the error interrupt */
    wr(f, 1, ESR, 0);
    assert_int_equal(rd(f, 1, ESR), 0x80);
    /* The timer keeps its phase: next interrupt 25 us later. */
    harness_step_ns(f->vm, 24999);
    assert_false(irr_has(f, 0, 0x40));
    harness_step_ns(f->vm, 1);
    assert_true(irr_has(f, 0, 0x40));
    /* The pending interrupt and in-service state came back. */
    assert_true(isr_has(f, 0, 0x70));
    wr(f, 0, EOI, 0);
    assert_int_equal(ack(f, 0), 0x60);
    /* A corrupt stream is refused and leaves the state alone. */
    struct ssm *bad;
    static const uint8_t junk[] = {2, 0, 0, 0, 1, 2, 3};
    assert_int_equal(ssm_open(junk, sizeof(junk), &bad), 0);
    assert_int_not_equal(g_dev_apic.load(f->apic, bad, 1), 0);
    ssm_destroy(bad);
    assert_true(isr_has(f, 0, 0x60));
    struct ssm *ver;
    assert_int_equal(ssm_open(junk, sizeof(junk), &ver), 0);
    assert_int_equal(g_dev_apic.load(f->apic, ver, 2), VERR_SSM_VERSION);
    ssm_destroy(ver);
    /* A stream for another vCPU count is refused. */
    static const uint8_t one[] = {1, 0, 0, 0};
    assert_int_equal(ssm_open(one, sizeof(one), &bad), 0);
    assert_int_equal(g_dev_apic.load(f->apic, bad, 1), VERR_SSM_CORRUPT);
    ssm_destroy(bad);
}

static void test_garbage(void **state)
{
    struct fixture *f = *state;
    uint32_t seed = 0x5eed1234;
    /* Every register of the page with all ones, then zeros, through the MMIO path. */
    enable(f, 0);
    for (unsigned pass = 0; pass < 2; pass++) {
        for (unsigned off = 0; off < 0x1000; off += 0x10) {
            if (off == 0x0f0 || off == 0x300)
                continue; /* SVR and ICR get their own values below */
            mem_mmio_write(f->vm, BASE + off, pass ? 0 : 0xffffffff, 4);
            (void)mem_mmio_read(f->vm, BASE + off, 4);
        }
        assert_int_equal(rd(f, 0, VER), 0x00050014);
        assert_int_equal(rd(f, 0, ID), pass ? 0 : 0xff000000);
        assert_int_equal(rd(f, 0, TPR), pass ? 0 : 0xff);
        assert_int_equal(rd(f, 0, LDR), pass ? 0 : 0xff000000);
        assert_int_equal(rd(f, 0, DFR), pass ? 0x0fffffff : 0xffffffff);
        assert_int_equal(rd(f, 0, ICR_HI), pass ? 0 : 0xff000000);
        assert_int_equal(rd(f, 0, LVT_TIMER), pass ? 0 : 0x700ff);
        assert_int_equal(rd(f, 0, LVT_LINT0), pass ? 0 : 0x1a7ff);
        assert_int_equal(rd(f, 0, LVT_ERROR), pass ? 0 : 0x100ff);
        assert_int_equal(rd(f, 0, TDCR), pass ? 0 : 0xb);
    }
    wr(f, 0, ID, 0);
    wr(f, 0, ICR_LO, 0xffffffff); /* a reserved delivery mode to all: dropped */
    wr(f, 0, SVR, 0xffffffff);
    assert_int_equal(rd(f, 0, SVR), 0x3ff);
    for (unsigned round = 0; round < 10000; round++) {
        uint32_t r = harness_rand(&seed);
        unsigned cpu = r & 1;
        unsigned off = (harness_rand(&seed) % 0x1000);
        uint32_t value = harness_rand(&seed);
        switch ((r >> 1) % 8) {
        case 0:
        case 1:
            wr(f, cpu, off & 0xff0, value);
            break;
        case 2:
            mem_mmio_write(f->vm, BASE + off, value, 1u << ((r >> 8) & 3));
            break;
        case 3:
            (void)mem_mmio_read(f->vm, BASE + off, 1u << ((r >> 8) & 3));
            (void)rd(f, cpu, off & 0xff0);
            break;
        case 4:
            msr_set(f, cpu, (r & 0x100) ? MSR_TSC_DEADLINE : MSR_APIC_BASE,
                    (r & 0x200) ? value : (0xfee00000u | (value & 0xd00)));
            break;
        case 5:
            apic_set_lint(f->apic, cpu, (r >> 8) & 1, (r >> 9) & 1);
            break;
        case 6: {
            int v = ack(f, cpu);
            assert_true(v >= -1 && v <= 255);
            uint8_t sipi;
            f->intc.take_events(f->intc.opaque, vc(f, cpu), &sipi);
            break;
        }
        default:
            harness_step_ns(f->vm, value % 20000);
            break;
        }
        if ((round & 1023) == 0) {
            /* Keep the APICs reachable: enabled at the default base, software-enabled. */
            msr_set(f, 0, MSR_APIC_BASE, 0xfee00900);
            msr_set(f, 1, MSR_APIC_BASE, 0xfee00800);
            enable(f, 0);
        }
    }
    assert_int_equal(rd(f, 0, VER), 0x00050014);
    assert_int_equal(harness_dev_save_reset_load(f->apic), 0);
    g_dev_apic.reset(f->apic);
    assert_int_equal(rd(f, 1, SVR), 0xff);
    assert_false(pending(f, 0) || pending(f, 1));
}

static void test_board_wiring(void **state)
{
    if (access(PC_DEFAULT_BIOS, R_OK) != 0)
        skip();
    struct vm *vm = NULL;
    struct pc_params params = {.apic = true};
    struct vm_params p = {
        .name = "apic-board", .ram_bytes = 16u << 20, .vcpu_count = 1,
        .exec = VM_EXEC_NONE, .clock_mode = VM_CLOCK_MANUAL,
    };
    assert_int_equal(vm_create(&p, &vm), 0);
    assert_int_equal(pc_board_create(vm, &params), 0);
    assert_non_null(pdm_dev_find(vm, "apic"));
    assert_non_null(pdm_dev_find(vm, "ioapic"));
    pdm_dev_reset_all(vm);
    /* The I/O APIC answers at 0xfec00000 and the APIC at 0xfee00000. */
    mem_mmio_write(vm, 0xfec00000, 1, 4);
    assert_int_equal(mem_mmio_read(vm, 0xfec00010, 4), 0x00170011);
    assert_int_equal(mem_mmio_read(vm, BASE + VER, 4), 0x00050014);
    /* The PIT's IRQ 0 through the PIC, LINT0 (virtual wire) and the INTA. */
    pic_init(vm);
    harness_outb(vm, 0x43, 0x34);
    harness_outb(vm, 0x40, 0x00);
    harness_outb(vm, 0x40, 0x10); /* 4096 PIT ticks, about 3.4 ms */
    harness_step_ns(vm, 4000000);
    assert_true(vcpu_intr_pending(vm_get_vcpu(vm, 0)));
    assert_int_equal(vcpu_intr_ack(vm_get_vcpu(vm, 0)), 0x20);
    harness_outb(vm, 0x20, 0x20);
    /* The same IRQ 0 through I/O APIC pin 2 to vector 0x30, with LINT0 masked. */
    struct pdm_dev *apic = pdm_dev_find(vm, "apic");
    apic_reg_write(apic, 0, SVR, 0x1ff);
    apic_reg_write(apic, 0, LVT_LINT0, 0x10700);
    mem_mmio_write(vm, 0xfec00000, 0x14, 4);
    mem_mmio_write(vm, 0xfec00010, 0x30, 4);
    harness_step_ns(vm, 4000000);
    assert_true(vcpu_intr_pending(vm_get_vcpu(vm, 0)));
    assert_int_equal(vcpu_intr_ack(vm_get_vcpu(vm, 0)), 0x30);
    vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tpr_ppr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irr_isr_eoi_nested, setup1, teardown),
        cmocka_unit_test_setup_teardown(test_spurious, setup1, teardown),
        cmocka_unit_test_setup_teardown(test_timer_oneshot_divide, setup1, teardown),
        cmocka_unit_test_setup_teardown(test_timer_periodic, setup1, teardown),
        cmocka_unit_test_setup_teardown(test_timer_masked, setup1, teardown),
        cmocka_unit_test_setup_teardown(test_timer_deadline, setup1, teardown),
        cmocka_unit_test_setup_teardown(test_ipi_physical_logical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipi_lowest_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nmi_init_sipi, setup, teardown),
        cmocka_unit_test(test_extint_virtual_wire),
        cmocka_unit_test_setup_teardown(test_lint_level_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_esr_and_error_lvt, setup1, teardown),
        cmocka_unit_test_setup_teardown(test_msr_apic_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test(test_board_wiring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
