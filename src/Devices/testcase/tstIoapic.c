/* tstIoapic.c - I/O APIC tests: registers, edge and level delivery with remote IRR and EOI, masking, polarity,
 * destinations, the IRQ 0 override, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define IOAPIC  0xfec00000u
#define REGSEL  (IOAPIC + 0x00)
#define IOWIN   (IOAPIC + 0x10)
#define RTE_LO(pin) (0x10 + 2 * (pin))
#define RTE_HI(pin) (0x11 + 2 * (pin))

#define RTE_REMOTE_IRR 0x4000u
#define RTE_LEVEL      0x8000u
#define RTE_MASKED     0x10000u
#define RTE_LOW        0x2000u
#define RTE_LOGICAL    0x800u

/* Local APIC registers the tests touch. */
#define SVR    0x0f0
#define TPR    0x080
#define EOI    0x0b0
#define LDR    0x0d0
#define TMR(n) (0x180 + 0x10 * (n))
#define IRR(n) (0x200 + 0x10 * (n))

struct fixture {
    struct vm *vm;
    struct pdm_dev *pic, *apic, *ioapic;
    struct pdm_irq *line[PDM_GSI_COUNT];
};

static void pic_to_lint0(void *opaque, bool level)
{
    apic_set_lint(opaque, 0, 0, level);
}

static int pic_inta(void *opaque)
{
    return pic_intack(opaque);
}

/* The board's wiring (pc-board.c) on a two-vCPU VM with both local APICs enabled. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create_smp(0, 2);
    f->pic = harness_dev_create(f->vm, &g_dev_i8259, "pic", NULL);
    f->apic = harness_dev_create(f->vm, &g_dev_apic, "apic", NULL);
    f->ioapic = harness_dev_create(f->vm, &g_dev_ioapic, "ioapic", NULL);
    ioapic_connect(f->ioapic, f->apic);
    apic_set_extint(f->apic, pic_inta, f->pic);
    pic_set_output(f->pic, pic_to_lint0, f->apic);
    for (unsigned i = 0; i < PDM_GSI_COUNT; i++)
        assert_int_equal(pdm_irq_create(f->vm, i, "test", &f->line[i]), 0);
    for (unsigned cpu = 0; cpu < 2; cpu++)
        apic_reg_write(f->apic, cpu, SVR, 0x1ff);
    /* As Linux does with the I/O APIC: LINT0 masked, so only the I/O APIC reaches the CPU. */
    apic_reg_write(f->apic, 0, 0x350, 0x10700);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    harness_vm_destroy(f->vm);
    free(f);
    return 0;
}

static uint32_t io_rd(struct fixture *f, uint8_t reg)
{
    mem_mmio_write(f->vm, REGSEL, reg, 4);
    return (uint32_t)mem_mmio_read(f->vm, IOWIN, 4);
}

static void io_wr(struct fixture *f, uint8_t reg, uint32_t value)
{
    mem_mmio_write(f->vm, REGSEL, reg, 4);
    mem_mmio_write(f->vm, IOWIN, value, 4);
}

static void rte_set(struct fixture *f, unsigned pin, uint32_t lo, uint8_t dest)
{
    io_wr(f, RTE_HI(pin), (uint32_t)dest << 24);
    io_wr(f, RTE_LO(pin), lo);
}

static bool irr_has(struct fixture *f, unsigned cpu, unsigned v)
{
    return (apic_reg_read(f->apic, cpu, IRR(v / 32)) >> (v % 32)) & 1;
}

static int ack(struct fixture *f, unsigned cpu)
{
    return vcpu_intr_ack(vm_get_vcpu(f->vm, cpu));
}

static bool pending(struct fixture *f, unsigned cpu)
{
    return vcpu_intr_pending(vm_get_vcpu(f->vm, cpu));
}

static void eoi(struct fixture *f, unsigned cpu)
{
    apic_reg_write(f->apic, cpu, EOI, 0);
}

static void test_reset_values(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(mem_mmio_read(f->vm, REGSEL, 4), 0);
    assert_int_equal(io_rd(f, 0x00), 0);
    assert_int_equal(io_rd(f, 0x01), 0x00170011);
    assert_int_equal(io_rd(f, 0x02), 0);
    assert_int_equal(mem_mmio_read(f->vm, REGSEL, 4), 0x02);
    for (unsigned pin = 0; pin < 24; pin++) {
        assert_int_equal(io_rd(f, RTE_LO(pin)), RTE_MASKED);
        assert_int_equal(io_rd(f, RTE_HI(pin)), 0);
    }
    /* Past the table and unimplemented registers read 0. */
    assert_int_equal(io_rd(f, 0x40), 0);
    assert_int_equal(io_rd(f, 0xff), 0);
    /* ID: 4 bits; the arbitration ID follows a write of the ID; version and arbitration are read-only. */
    io_wr(f, 0x00, 0xff000000);
    assert_int_equal(io_rd(f, 0x00), 0x0f000000);
    assert_int_equal(io_rd(f, 0x02), 0x0f000000);
    io_wr(f, 0x01, 0);
    io_wr(f, 0x02, 0);
    assert_int_equal(io_rd(f, 0x01), 0x00170011);
    assert_int_equal(io_rd(f, 0x02), 0x0f000000);
    /* Read-only entry bits: delivery status and remote IRR. */
    io_wr(f, RTE_LO(3), 0xffffffff);
    assert_int_equal(io_rd(f, RTE_LO(3)), 0x1afff);
    io_wr(f, RTE_HI(3), 0xffffffff);
    assert_int_equal(io_rd(f, RTE_HI(3)), 0xff000000);
    g_dev_ioapic.reset(f->ioapic);
    assert_int_equal(io_rd(f, RTE_LO(3)), RTE_MASKED);
    assert_int_equal(io_rd(f, 0x00), 0);
    /* The configured ID and bad configurations. */
    struct pdm_dev *other = NULL;
    assert_int_equal(harness_dev_try_create(f->vm, &g_dev_ioapic, "io2", "base=0xfec01000,id=16", &other),
                     VERR_CFG_BAD_VALUE);
    assert_int_equal(harness_dev_try_create(f->vm, &g_dev_ioapic, "io3", "base=0xfec01001", &other),
                     VERR_CFG_BAD_VALUE);
    assert_int_equal(harness_dev_try_create(f->vm, &g_dev_ioapic, "io4", "irq=3", &other), VERR_CFG_UNKNOWN_KEY);
    assert_int_equal(harness_dev_try_create(f->vm, &g_dev_ioapic, "io5", "base=0xfec01000,id=9", &other), 0);
    assert_int_equal(mem_mmio_read(f->vm, 0xfec01010, 4), 9u << 24);
}

static void test_edge(void **state)
{
    struct fixture *f = *state;
    rte_set(f, 4, 0x34, 0);
    pdm_irq_pulse(f->line[4]);
    assert_true(pending(f, 0));
    assert_false(pending(f, 1));
    assert_int_equal(ack(f, 0), 0x34);
    /* Edge: no TMR bit, no remote IRR. */
    assert_int_equal(apic_reg_read(f->apic, 0, TMR(1)), 0);
    assert_int_equal(io_rd(f, RTE_LO(4)), 0x34);
    eoi(f, 0);
    /* Held high: one message only. */
    pdm_irq_set(f->line[4], true);
    pdm_irq_set(f->line[4], true);
    assert_int_equal(ack(f, 0), 0x34);
    eoi(f, 0);
    assert_false(pending(f, 0));
    pdm_irq_set(f->line[4], false);
    /* Edges on a masked pin are lost, also after unmasking. */
    rte_set(f, 4, RTE_MASKED | 0x34, 0);
    pdm_irq_pulse(f->line[4]);
    rte_set(f, 4, 0x34, 0);
    assert_false(pending(f, 0));
    /* Destination vCPU 1. */
    rte_set(f, 4, 0x35, 1);
    pdm_irq_pulse(f->line[4]);
    assert_false(pending(f, 0));
    assert_int_equal(ack(f, 1), 0x35);
    eoi(f, 1);
    /* The PIC saw the same GSI (both controllers see every line). */
    harness_outb(f->vm, 0x20, 0x0a);
    assert_true(harness_inb(f->vm, 0x20) & 0x10);
}

static void test_irq0_override(void **state)
{
    struct fixture *f = *state;
    rte_set(f, 0, 0x40, 0);
    rte_set(f, 2, 0x42, 0);
    /* ISA IRQ 0 arrives on pin 2. */
    pdm_irq_pulse(f->line[0]);
    assert_int_equal(ack(f, 0), 0x42);
    eoi(f, 0);
    /* The router's GSI 2 (the PIC cascade) is not connected. */
    pdm_irq_pulse(f->line[2]);
    assert_false(pending(f, 0));
    /* Pins above 15: GSI n on pin n (PCI lines). */
    rte_set(f, 23, 0x57, 0);
    pdm_irq_pulse(f->line[23]);
    assert_int_equal(ack(f, 0), 0x57);
    eoi(f, 0);
}

static void test_level_remote_irr(void **state)
{
    struct fixture *f = *state;
    rte_set(f, 10, RTE_LEVEL | 0x5a, 0);
    pdm_irq_set(f->line[10], true);
    assert_int_equal(io_rd(f, RTE_LO(10)), RTE_REMOTE_IRR | RTE_LEVEL | 0x5a);
    assert_true((apic_reg_read(f->apic, 0, TMR(2)) >> (0x5a - 0x40)) & 1);
    assert_int_equal(ack(f, 0), 0x5a);
    /* Still asserted at the EOI: remote IRR clears and the message is sent again. */
    eoi(f, 0);
    assert_true(irr_has(f, 0, 0x5a));
    assert_int_equal(io_rd(f, RTE_LO(10)), RTE_REMOTE_IRR | RTE_LEVEL | 0x5a);
    assert_int_equal(ack(f, 0), 0x5a);
    /* Deasserted: the EOI only clears remote IRR. */
    pdm_irq_set(f->line[10], false);
    eoi(f, 0);
    assert_int_equal(io_rd(f, RTE_LO(10)), RTE_LEVEL | 0x5a);
    assert_false(pending(f, 0));
    /* An EOI for another vector leaves remote IRR alone. */
    pdm_irq_set(f->line[10], true);
    assert_int_equal(ack(f, 0), 0x5a);
    ioapic_eoi(f->ioapic, 0x5b);
    assert_true(io_rd(f, RTE_LO(10)) & RTE_REMOTE_IRR);
    pdm_irq_set(f->line[10], false);
    eoi(f, 0);
    assert_false(io_rd(f, RTE_LO(10)) & RTE_REMOTE_IRR);
    /* Shared level line (two sources on one GSI): stays asserted until both drop. */
    struct pdm_irq *second;
    assert_int_equal(pdm_irq_create(f->vm, 10, "second", &second), 0);
    pdm_irq_set(f->line[10], true);
    pdm_irq_set(second, true);
    assert_int_equal(ack(f, 0), 0x5a);
    pdm_irq_set(f->line[10], false);
    eoi(f, 0);
    assert_int_equal(ack(f, 0), 0x5a);
    pdm_irq_set(second, false);
    eoi(f, 0);
    assert_false(pending(f, 0));
    /* A level entry nobody accepts (software-disabled target) does not get stuck in remote IRR. */
    apic_reg_write(f->apic, 1, SVR, 0xff);
    rte_set(f, 11, RTE_LEVEL | 0x5c, 1);
    pdm_irq_set(f->line[11], true);
    assert_false(io_rd(f, RTE_LO(11)) & RTE_REMOTE_IRR);
    apic_reg_write(f->apic, 1, SVR, 0x1ff);
    rte_set(f, 11, RTE_LEVEL | 0x5c, 1); /* rewriting the entry re-evaluates the pin */
    assert_int_equal(ack(f, 1), 0x5c);
    /* Switching the entry to edge drops remote IRR. */
    rte_set(f, 11, 0x5c, 1);
    assert_false(io_rd(f, RTE_LO(11)) & RTE_REMOTE_IRR);
}

static void test_masking_level(void **state)
{
    struct fixture *f = *state;
    rte_set(f, 9, RTE_MASKED | RTE_LEVEL | 0x69, 0);
    pdm_irq_set(f->line[9], true);
    assert_false(pending(f, 0));
    assert_false(io_rd(f, RTE_LO(9)) & RTE_REMOTE_IRR);
    /* Unmasking a level entry whose pin is asserted delivers it. */
    rte_set(f, 9, RTE_LEVEL | 0x69, 0);
    assert_int_equal(ack(f, 0), 0x69);
    /* Masked while in remote IRR: the EOI clears it without a new message. */
    rte_set(f, 9, RTE_MASKED | RTE_LEVEL | 0x69, 0);
    eoi(f, 0);
    assert_false(io_rd(f, RTE_LO(9)) & RTE_REMOTE_IRR);
    assert_false(pending(f, 0));
    /* The TPR holds it back in the local APIC. */
    apic_reg_write(f->apic, 0, TPR, 0x70);
    rte_set(f, 9, RTE_LEVEL | 0x69, 0);
    assert_true(irr_has(f, 0, 0x69));
    assert_false(pending(f, 0));
    apic_reg_write(f->apic, 0, TPR, 0);
    assert_int_equal(ack(f, 0), 0x69);
}

static void test_polarity(void **state)
{
    struct fixture *f = *state;
    /* Active low, level: the idle (low) line is a request. */
    rte_set(f, 12, RTE_LOW | RTE_LEVEL | 0x7c, 0);
    assert_int_equal(ack(f, 0), 0x7c);
    pdm_irq_set(f->line[12], true); /* high: inactive */
    eoi(f, 0);
    assert_false(pending(f, 0));
    pdm_irq_set(f->line[12], false);
    assert_int_equal(ack(f, 0), 0x7c);
    pdm_irq_set(f->line[12], true);
    eoi(f, 0);
    /* Active low, edge: the falling edge of the line is the request. */
    rte_set(f, 13, RTE_LOW | 0x7d, 0);
    pdm_irq_set(f->line[13], true);
    assert_false(pending(f, 0));
    pdm_irq_set(f->line[13], false);
    assert_int_equal(ack(f, 0), 0x7d);
    eoi(f, 0);
}

static void test_delivery_modes(void **state)
{
    struct fixture *f = *state;
    struct vm_intc intc;
    apic_get_intc(f->apic, &intc);
    uint8_t sipi;
    /* Logical destination (flat): vCPU 1 has LDR bit 1. */
    apic_reg_write(f->apic, 0, LDR, 0x01000000);
    apic_reg_write(f->apic, 1, LDR, 0x02000000);
    rte_set(f, 5, RTE_LOGICAL | 0x45, 0x02);
    pdm_irq_pulse(f->line[5]);
    assert_int_equal(ack(f, 1), 0x45);
    eoi(f, 1);
    /* Lowest priority between both: vCPU 0's higher TPR sends it to vCPU 1. */
    apic_reg_write(f->apic, 0, TPR, 0x30);
    rte_set(f, 5, RTE_LOGICAL | 0x100 | 0x46, 0x03);
    pdm_irq_pulse(f->line[5]);
    assert_false(irr_has(f, 0, 0x46));
    assert_int_equal(ack(f, 1), 0x46);
    eoi(f, 1);
    apic_reg_write(f->apic, 0, TPR, 0);
    /* NMI (vector ignored). */
    rte_set(f, 6, 0x400, 1);
    pdm_irq_pulse(f->line[6]);
    assert_int_equal(intc.take_events(intc.opaque, vm_get_vcpu(f->vm, 1), &sipi), VM_INTC_EVENT_NMI);
    /* A level NMI entry does not latch remote IRR (only fixed and lowest priority end with an EOI). */
    rte_set(f, 6, RTE_LEVEL | 0x400, 1);
    pdm_irq_set(f->line[6], true);
    assert_false(io_rd(f, RTE_LO(6)) & RTE_REMOTE_IRR);
    pdm_irq_set(f->line[6], false);
    intc.take_events(intc.opaque, vm_get_vcpu(f->vm, 1), &sipi);
    /* INIT. */
    rte_set(f, 7, 0x500, 1);
    pdm_irq_pulse(f->line[7]);
    assert_int_equal(intc.take_events(intc.opaque, vm_get_vcpu(f->vm, 1), &sipi), VM_INTC_EVENT_INIT);
    /* SMI is ignored; reserved modes are dropped. */
    rte_set(f, 7, 0x200, 0);
    pdm_irq_pulse(f->line[7]);
    rte_set(f, 7, 0x300, 0);
    pdm_irq_pulse(f->line[7]);
    rte_set(f, 7, 0x600, 0);
    pdm_irq_pulse(f->line[7]);
    assert_false(pending(f, 0));
    /* ExtINT: pin 3 as the 8259's virtual wire (MP spec mode B); the PIC answers the INTA. */
    harness_outb(f->vm, 0x20, 0x11);
    harness_outb(f->vm, 0x21, 0x20);
    harness_outb(f->vm, 0x21, 0x04);
    harness_outb(f->vm, 0x21, 0x01);
    harness_outb(f->vm, 0x21, 0x00);
    rte_set(f, 3, 0x700, 0);
    pdm_irq_pulse(f->line[3]);
    assert_true(pending(f, 0));
    assert_int_equal(ack(f, 0), 0x23);
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    io_wr(f, 0x00, 0x05000000);
    rte_set(f, 10, RTE_LEVEL | 0x5a, 0);
    rte_set(f, 4, RTE_LOGICAL | 0x34, 0x80);
    pdm_irq_set(f->line[10], true);
    mem_mmio_write(f->vm, REGSEL, 0x21, 4);
    uint32_t before[0x40];
    for (unsigned r = 0; r < 0x40; r++) {
        mem_mmio_write(f->vm, REGSEL, r, 4);
        before[r] = (uint32_t)mem_mmio_read(f->vm, IOWIN, 4);
    }
    mem_mmio_write(f->vm, REGSEL, 0x21, 4);
    assert_int_equal(harness_dev_save_reset_load(f->ioapic), 0);
    assert_int_equal(mem_mmio_read(f->vm, REGSEL, 4), 0x21);
    for (unsigned r = 0; r < 0x40; r++)
        assert_int_equal(io_rd(f, (uint8_t)r), before[r]);
    /* Remote IRR came back: the EOI with the pin still high sends again. */
    assert_int_equal(ack(f, 0), 0x5a);
    eoi(f, 0);
    assert_int_equal(ack(f, 0), 0x5a);
    /* Corrupt and future streams are refused. */
    struct ssm *bad;
    static const uint8_t junk[] = {1, 1, 0, 0xff, 0xff, 0xff, 0xff, 24};
    assert_int_equal(ssm_open(junk, sizeof(junk), &bad), 0);
    assert_int_equal(g_dev_ioapic.load(f->ioapic, bad, 1), VERR_SSM_CORRUPT);
    ssm_destroy(bad);
    assert_int_equal(ssm_open(junk, sizeof(junk), &bad), 0);
    assert_int_equal(g_dev_ioapic.load(f->ioapic, bad, 2), VERR_SSM_VERSION);
    ssm_destroy(bad);
    assert_int_equal(io_rd(f, 0x00), 0x05000000);
}

static void test_garbage(void **state)
{
    struct fixture *f = *state;
    uint32_t seed = 0x10a11c;
    /* Every indirect register with all ones, then zeros. */
    for (unsigned pass = 0; pass < 2; pass++)
        for (unsigned reg = 0; reg < 0x100; reg++) {
            io_wr(f, (uint8_t)reg, pass ? 0 : 0xffffffff);
            (void)io_rd(f, (uint8_t)reg);
        }
    assert_int_equal(io_rd(f, 0x00), 0);
    assert_int_equal(io_rd(f, 0x01), 0x00170011);
    assert_int_equal(io_rd(f, RTE_LO(23)), 0);
    assert_int_equal(io_rd(f, RTE_HI(23)), 0);
    for (unsigned round = 0; round < 20000; round++) {
        uint32_t r = harness_rand(&seed);
        uint32_t v = harness_rand(&seed);
        switch (r % 6) {
        case 0:
            mem_mmio_write(f->vm, IOAPIC + (v & 0xfff), harness_rand(&seed), 1u << ((r >> 4) & 3));
            break;
        case 1:
            (void)mem_mmio_read(f->vm, IOAPIC + (v & 0xfff), 1u << ((r >> 4) & 3));
            break;
        case 2:
            io_wr(f, (uint8_t)(r >> 8), v);
            break;
        case 3:
            pdm_irq_set(f->line[(r >> 8) % PDM_GSI_COUNT], (v & 1) != 0);
            break;
        case 4: {
            int vec = ack(f, (r >> 8) & 1);
            assert_true(vec >= -1 && vec <= 255);
            break;
        }
        default:
            if (v & 1)
                eoi(f, (r >> 8) & 1);
            else
                ioapic_eoi(f->ioapic, (uint8_t)(v >> 8));
            break;
        }
    }
    assert_int_equal(io_rd(f, 0x01), 0x00170011);
    assert_int_equal(harness_dev_save_reset_load(f->ioapic), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq0_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_remote_irr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masking_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_polarity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
