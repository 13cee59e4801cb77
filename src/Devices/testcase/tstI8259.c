/* tstI8259.c - 8259A PIC pair tests: initialization, masking, priorities and EOIs, ELCR, cascade, spurious, poll, saved
 * state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MASTER_CMD  0x20
#define MASTER_DATA 0x21
#define SLAVE_CMD   0xa0
#define SLAVE_DATA  0xa1
#define ELCR1       0x4d0
#define ELCR2       0x4d1
#define MASTER_BASE 0x20
#define SLAVE_BASE  0x28

/* OCW2 and OCW3 values (8259A datasheet, "Operation Command Words"). */
#define OCW2_EOI                 0x20
#define OCW2_SPECIFIC_EOI        0x60
#define OCW2_ROTATE_EOI          0xa0
#define OCW2_ROTATE_SPECIFIC_EOI 0xe0
#define OCW2_SET_PRIORITY        0xc0
#define OCW2_ROTATE_AEOI_SET     0x80
#define OCW2_ROTATE_AEOI_CLEAR   0x00
#define OCW3_READ_IRR            0x0a
#define OCW3_READ_ISR            0x0b
#define OCW3_POLL                0x0c
#define OCW3_SET_SMM             0x68
#define OCW3_RESET_SMM           0x48

struct fixture {
    struct vm *vm;
    struct pdm_dev *pic;
    struct pdm_irq *line[16];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create(0);
    f->pic = harness_dev_create(f->vm, &g_dev_i8259, "pic", NULL);
    for (unsigned i = 0; i < 16; i++)
        assert_int_equal(pdm_irq_create(f->vm, i, "test", &f->line[i]), 0);
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

static void line_set(struct fixture *f, unsigned irq, bool level)
{
    pdm_irq_set(f->line[irq], level);
}

static void line_pulse(struct fixture *f, unsigned irq)
{
    pdm_irq_pulse(f->line[irq]);
}

/* The PC BIOS/Linux sequence: edge, cascade, ICW4 as given, everything unmasked. */
static void pic_init(struct vm *vm, uint8_t icw4_master, uint8_t icw4_slave)
{
    harness_outb(vm, MASTER_CMD, 0x11);
    harness_outb(vm, MASTER_DATA, MASTER_BASE);
    harness_outb(vm, MASTER_DATA, 0x04);
    harness_outb(vm, MASTER_DATA, icw4_master);
    harness_outb(vm, SLAVE_CMD, 0x11);
    harness_outb(vm, SLAVE_DATA, SLAVE_BASE);
    harness_outb(vm, SLAVE_DATA, 0x02);
    harness_outb(vm, SLAVE_DATA, icw4_slave);
    harness_outb(vm, MASTER_DATA, 0x00);
    harness_outb(vm, SLAVE_DATA, 0x00);
}

static uint8_t read_isr(struct vm *vm, uint16_t cmd_port)
{
    harness_outb(vm, cmd_port, OCW3_READ_ISR);
    return harness_inb(vm, cmd_port);
}

static uint8_t read_irr(struct vm *vm, uint16_t cmd_port)
{
    harness_outb(vm, cmd_port, OCW3_READ_IRR);
    return harness_inb(vm, cmd_port);
}

static void test_init_and_vector(void **state)
{
    struct fixture *f = *state;
    /* Before initialization nothing is signalled and INTA has no vector. */
    line_pulse(f, 1);
    assert_false(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), -1);

    pic_init(f->vm, 0x01, 0x01);
    /* ICW1 reset the edge sense: the earlier pulse is gone. */
    assert_false(harness_intr_pending(f->vm));
    assert_int_equal(read_irr(f->vm, MASTER_CMD), 0x00);

    line_pulse(f, 1);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(read_irr(f->vm, MASTER_CMD), 0x02);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 1);
    assert_false(harness_intr_pending(f->vm));
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x02);
    assert_int_equal(read_irr(f->vm, MASTER_CMD), 0x00);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x00);
    /* IMR reads back through the odd port. */
    harness_outb(f->vm, MASTER_DATA, 0xa5);
    assert_int_equal(harness_inb(f->vm, MASTER_DATA), 0xa5);
    harness_outb(f->vm, SLAVE_DATA, 0x5a);
    assert_int_equal(harness_inb(f->vm, SLAVE_DATA), 0x5a);
}

static void test_single_mode_sequence(void **state)
{
    struct fixture *f = *state;
    /* SNGL: no ICW3, so the second odd write is ICW4 and the third is OCW1. */
    harness_outb(f->vm, MASTER_CMD, 0x13);
    harness_outb(f->vm, MASTER_DATA, 0x40);
    harness_outb(f->vm, MASTER_DATA, 0x01);
    harness_outb(f->vm, MASTER_DATA, 0xf7);
    assert_int_equal(harness_inb(f->vm, MASTER_DATA), 0xf7);
    line_pulse(f, 3);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), 0x43);
    /* No ICW4 (IC4 = 0): the third odd write is already OCW1. */
    harness_outb(f->vm, SLAVE_CMD, 0x10);
    harness_outb(f->vm, SLAVE_DATA, 0x70);
    harness_outb(f->vm, SLAVE_DATA, 0x02);
    harness_outb(f->vm, SLAVE_DATA, 0x33);
    assert_int_equal(harness_inb(f->vm, SLAVE_DATA), 0x33);
}

static void test_masking(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    harness_outb(f->vm, MASTER_DATA, 0x10);
    line_pulse(f, 4);
    /* Masked: latched in IRR but not signalled. */
    assert_false(harness_intr_pending(f->vm));
    assert_int_equal(read_irr(f->vm, MASTER_CMD), 0x10);
    harness_outb(f->vm, MASTER_DATA, 0x00);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 4);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);

    /* Master IR2 masks every slave input; the slave's own IMR masks one. */
    harness_outb(f->vm, MASTER_DATA, 0x04);
    line_pulse(f, 12);
    assert_false(harness_intr_pending(f->vm));
    harness_outb(f->vm, MASTER_DATA, 0x00);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 4);
    harness_outb(f->vm, SLAVE_CMD, OCW2_EOI);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    harness_outb(f->vm, SLAVE_DATA, 0x20);
    line_pulse(f, 13);
    assert_false(harness_intr_pending(f->vm));
    harness_outb(f->vm, SLAVE_DATA, 0x00);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 5);
}

static void test_priority_nesting(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    line_pulse(f, 3);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 3);
    /* A lower priority request waits while IR3 is in service... */
    line_pulse(f, 5);
    assert_false(harness_intr_pending(f->vm));
    /* ...a higher one nests. */
    line_pulse(f, 1);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 1);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x0a);
    /* Non-specific EOI clears the highest in-service level only. */
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x08);
    assert_false(harness_intr_pending(f->vm));
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 5);
    /* Simultaneous requests: the lowest IR number wins with default priorities. */
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    line_pulse(f, 7);
    line_pulse(f, 6);
    line_pulse(f, 0);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 0);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 6);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 7);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_false(harness_intr_pending(f->vm));
}

static void test_specific_eoi_and_rotation(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    line_pulse(f, 3);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 3);
    line_pulse(f, 1);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 1);
    /* Specific EOI clears the named level even though it is not the highest. */
    harness_outb(f->vm, MASTER_CMD, OCW2_SPECIFIC_EOI | 3);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x02);
    harness_outb(f->vm, MASTER_CMD, OCW2_SPECIFIC_EOI | 1);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x00);

    /* Rotate on non-specific EOI: IR0 becomes the lowest priority. */
    line_pulse(f, 0);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 0);
    harness_outb(f->vm, MASTER_CMD, OCW2_ROTATE_EOI);
    line_pulse(f, 0);
    line_pulse(f, 7);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 7);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 0);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);

    /* Set priority: IR4 lowest, so IR5 is the highest and 6 beats 3. */
    harness_outb(f->vm, MASTER_CMD, OCW2_SET_PRIORITY | 4);
    line_pulse(f, 3);
    line_pulse(f, 6);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 6);
    /* IR3 is now below IR6 in the ring: it waits until IR6's EOI. */
    assert_false(harness_intr_pending(f->vm));
    /* Rotate on specific EOI of 6: IR6 lowest, IR7 highest; IR3 goes out next. */
    harness_outb(f->vm, MASTER_CMD, OCW2_ROTATE_SPECIFIC_EOI | 6);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x00);
    line_pulse(f, 7);
    line_pulse(f, 6);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 7);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 3);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 6);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    /* The no-operation command changes nothing. */
    harness_outb(f->vm, MASTER_CMD, 0x40);
    assert_false(harness_intr_pending(f->vm));
}

static void test_auto_eoi_rotation(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x03, 0x01);
    line_pulse(f, 0);
    line_pulse(f, 1);
    line_pulse(f, 3);
    /* AEOI without rotation: no ISR bit, fixed priorities. */
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 0);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x00);
    harness_outb(f->vm, MASTER_CMD, OCW2_ROTATE_AEOI_SET);
    line_pulse(f, 0);
    /* Fixed priority would give 0 now; rotation makes each served level the lowest. */
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 0);
    line_pulse(f, 0);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 1);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 3);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 0);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x00);
    /* Clearing the rotation brings back a fixed ring (still rotated to the last position). */
    harness_outb(f->vm, MASTER_CMD, OCW2_ROTATE_AEOI_CLEAR);
    line_pulse(f, 1);
    line_pulse(f, 4);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 1);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 4);
    assert_false(harness_intr_pending(f->vm));
}

static void test_level_vs_edge_elcr(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    /* IRQ0-2, 8 and 13 can never be level-triggered. */
    harness_outb(f->vm, ELCR1, 0xff);
    harness_outb(f->vm, ELCR2, 0xff);
    assert_int_equal(harness_inb(f->vm, ELCR1), 0xf8);
    assert_int_equal(harness_inb(f->vm, ELCR2), 0xde);
    harness_outb(f->vm, ELCR1, 0x00);
    harness_outb(f->vm, ELCR2, 0x04);
    assert_int_equal(harness_inw(f->vm, ELCR1), 0x0400);

    /* Level IRQ10: re-delivered after EOI while the line stays high. */
    line_set(f, 10, true);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 2);
    assert_false(harness_intr_pending(f->vm));
    assert_int_equal(read_isr(f->vm, SLAVE_CMD), 0x04);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x04);
    harness_outb(f->vm, SLAVE_CMD, OCW2_EOI);
    assert_false(harness_intr_pending(f->vm)); /* the master's IR2 is still in service */
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 2);
    line_set(f, 10, false);
    assert_int_equal(read_irr(f->vm, SLAVE_CMD) & 0x04, 0);
    harness_outb(f->vm, SLAVE_CMD, OCW2_EOI);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_false(harness_intr_pending(f->vm));

    /* Level IRQ5 with the line dropped before INTA: the request disappears from IRR. */
    harness_outb(f->vm, ELCR1, 0x20);
    line_set(f, 5, true);
    assert_int_equal(read_irr(f->vm, MASTER_CMD), 0x20);
    line_set(f, 5, false);
    assert_int_equal(read_irr(f->vm, MASTER_CMD), 0x00);
    assert_false(harness_intr_pending(f->vm));

    /* Edge IRQ4 held high: one interrupt only, a new edge gives the next. */
    line_set(f, 4, true);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 4);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_false(harness_intr_pending(f->vm));
    line_set(f, 4, false);
    assert_false(harness_intr_pending(f->vm));
    line_set(f, 4, true);
    assert_true(harness_intr_pending(f->vm));
    /* An edge latched IRR bit survives the line going low. */
    line_set(f, 4, false);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 4);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);

    /* ICW1 LTIM makes every input of that chip level-sensitive. */
    harness_outb(f->vm, MASTER_CMD, 0x19);
    harness_outb(f->vm, MASTER_DATA, MASTER_BASE);
    harness_outb(f->vm, MASTER_DATA, 0x04);
    harness_outb(f->vm, MASTER_DATA, 0x01);
    line_set(f, 6, true);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 6);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_true(harness_intr_pending(f->vm));
    line_set(f, 6, false);
    assert_false(harness_intr_pending(f->vm));
}

static void test_cascade(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    line_pulse(f, 12);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(read_irr(f->vm, MASTER_CMD), 0x04);
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 4);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x04);
    assert_int_equal(read_isr(f->vm, SLAVE_CMD), 0x10);
    /* A master IR1 request nests above the cascade; slave requests wait for the master's EOI. */
    line_pulse(f, 9);
    assert_false(harness_intr_pending(f->vm));
    line_pulse(f, 1);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 1);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    harness_outb(f->vm, SLAVE_CMD, OCW2_EOI);
    assert_false(harness_intr_pending(f->vm));
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 1);
    harness_outb(f->vm, SLAVE_CMD, OCW2_EOI);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);

    /* Two slave requests at once: both get delivered, one after the other. */
    line_pulse(f, 14);
    line_pulse(f, 11);
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 3);
    harness_outb(f->vm, SLAVE_CMD, OCW2_EOI);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 6);
    harness_outb(f->vm, SLAVE_CMD, OCW2_EOI);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_false(harness_intr_pending(f->vm));

    /* With AEOI on the slave, requests queued behind one another are not lost. */
    pic_init(f->vm, 0x03, 0x03);
    line_pulse(f, 9);
    line_pulse(f, 15);
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 1);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 7);
    assert_false(harness_intr_pending(f->vm));

    /* GSI 2 is not an input of the pair. */
    line_pulse(f, 2);
    assert_false(harness_intr_pending(f->vm));
}

static void test_special_fully_nested(void **state)
{
    struct fixture *f = *state;
    /* Fully nested: a higher slave request waits for the master's cascade EOI. */
    pic_init(f->vm, 0x01, 0x01);
    line_pulse(f, 12);
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 4);
    line_pulse(f, 9);
    assert_false(harness_intr_pending(f->vm));

    /* SFNM on the master: the same request nests. */
    pic_init(f->vm, 0x11, 0x01);
    line_pulse(f, 12);
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 4);
    line_pulse(f, 9);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 1);
    assert_int_equal(read_isr(f->vm, SLAVE_CMD), 0x12);
    /* A lower slave request still waits (the slave's own priority logic). */
    line_pulse(f, 14);
    assert_false(harness_intr_pending(f->vm));
}

static void test_special_mask_mode(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    line_pulse(f, 3);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 3);
    line_pulse(f, 5);
    assert_false(harness_intr_pending(f->vm));
    /* Special mask mode plus masking IR3 lets the lower IR5 through while IR3 is in service. */
    harness_outb(f->vm, MASTER_CMD, OCW3_SET_SMM);
    assert_false(harness_intr_pending(f->vm));
    harness_outb(f->vm, MASTER_DATA, 0x08);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 5);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x28);
    /* Non-specific EOI skips the masked in-service IR3. */
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x08);
    harness_outb(f->vm, MASTER_CMD, OCW3_RESET_SMM);
    harness_outb(f->vm, MASTER_DATA, 0x00);
    line_pulse(f, 6);
    assert_false(harness_intr_pending(f->vm));
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 6);
}

static void test_spurious(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    harness_outb(f->vm, ELCR1, 0x20);
    harness_outb(f->vm, ELCR2, 0x04);
    /* The level request vanishes after INTR was raised: INTA gets IR7 and no ISR bit. */
    line_set(f, 5, true);
    assert_true(harness_intr_pending(f->vm));
    line_set(f, 5, false);
    assert_false(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 7);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x00);
    /* Nothing was signalled since: no vector at all. */
    assert_int_equal(harness_intr_ack(f->vm), -1);

    /* The slave's request vanishes: the master still answers on IR2, the slave with its IR7. */
    line_set(f, 10, true);
    line_set(f, 10, false);
    assert_true(harness_intr_pending(f->vm));
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 7);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x04);
    assert_int_equal(read_isr(f->vm, SLAVE_CMD), 0x00);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_false(harness_intr_pending(f->vm));
}

static void test_poll(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    harness_outb(f->vm, MASTER_DATA, 0xff); /* polling works with INTR masked off */
    harness_outb(f->vm, MASTER_CMD, OCW3_POLL);
    assert_int_equal(harness_inb(f->vm, MASTER_CMD), 0x00);
    line_pulse(f, 6);
    line_pulse(f, 4);
    harness_outb(f->vm, MASTER_DATA, 0x00);
    harness_outb(f->vm, MASTER_CMD, OCW3_POLL);
    assert_int_equal(harness_inb(f->vm, MASTER_CMD), 0x84);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x10);
    /* The poll is one read only: the next read is the selected register again. */
    assert_int_equal(harness_inb(f->vm, MASTER_CMD), 0x10);
    harness_outb(f->vm, MASTER_CMD, OCW3_POLL);
    assert_int_equal(harness_inb(f->vm, MASTER_CMD), 0x00); /* IR6 is below the in-service IR4 */
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    harness_outb(f->vm, MASTER_CMD, OCW3_POLL);
    assert_int_equal(harness_inb(f->vm, MASTER_CMD), 0x86);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    /* Poll on the slave reports the slave's own level. */
    line_pulse(f, 13);
    harness_outb(f->vm, SLAVE_CMD, OCW3_POLL);
    assert_int_equal(harness_inb(f->vm, SLAVE_CMD), 0x85);
}

static void test_icw1_resets_state(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    harness_outb(f->vm, MASTER_DATA, 0xf0);
    line_pulse(f, 1);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 1);
    harness_outb(f->vm, MASTER_CMD, OCW2_SET_PRIORITY | 2);
    harness_outb(f->vm, MASTER_CMD, OCW3_SET_SMM);
    harness_outb(f->vm, MASTER_CMD, OCW3_READ_ISR);
    line_set(f, 4, true);
    pic_init(f->vm, 0x01, 0x01);
    /* IMR, ISR, priority, special mask and the read select are reset; the held edge input needs a new edge. */
    assert_int_equal(harness_inb(f->vm, MASTER_DATA), 0x00);
    assert_int_equal(harness_inb(f->vm, MASTER_CMD), 0x00);
    assert_int_equal(read_isr(f->vm, MASTER_CMD), 0x00);
    assert_false(harness_intr_pending(f->vm));
    line_set(f, 4, false);
    line_set(f, 4, true);
    line_pulse(f, 3);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 3);
    /* Special mask mode is off again: in-service IR3 blocks IR4 even when masked. */
    harness_outb(f->vm, MASTER_DATA, 0x08);
    assert_false(harness_intr_pending(f->vm));
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    pic_init(f->vm, 0x01, 0x01);
    harness_outb(f->vm, ELCR2, 0x08);
    harness_outb(f->vm, MASTER_DATA, 0x80);
    harness_outb(f->vm, MASTER_CMD, OCW2_SET_PRIORITY | 2);
    line_pulse(f, 3);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 3);
    line_pulse(f, 5);
    line_set(f, 11, true);
    assert_false(harness_intr_pending(f->vm));
    harness_outb(f->vm, MASTER_CMD, OCW3_READ_ISR);

    assert_int_equal(harness_dev_save_reset_load(f->pic), 0);

    assert_int_equal(harness_inb(f->vm, MASTER_CMD), 0x08); /* read select kept */
    assert_int_equal(harness_inb(f->vm, MASTER_DATA), 0x80);
    assert_int_equal(harness_inb(f->vm, ELCR2), 0x08);
    assert_int_equal(read_irr(f->vm, MASTER_CMD), 0x24);
    assert_false(harness_intr_pending(f->vm));
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    /* Priority is still rotated (IR2 lowest): IR5 goes before the cascade. */
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 5);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 3);
    harness_outb(f->vm, SLAVE_CMD, OCW2_EOI);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    /* The level input is still high: delivered again after the EOIs. */
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 3);
    line_set(f, 11, false);

    /* Streams that are short or inconsistent are refused. */
    struct ssm *out = NULL, *in = NULL;
    assert_int_equal(ssm_create(&out), 0);
    assert_int_equal(g_dev_i8259.save(f->pic, out), 0);
    size_t len;
    const uint8_t *data = ssm_data(out, &len);
    assert_int_equal(ssm_open(data, len / 2, &in), 0);
    assert_int_not_equal(g_dev_i8259.load(f->pic, in, 1), 0);
    ssm_destroy(in);
    uint8_t *bad = malloc(len);
    memcpy(bad, data, len);
    bad[8] = 9; /* master's lowest-priority IR */
    assert_int_equal(ssm_open(bad, len, &in), 0);
    assert_int_equal(g_dev_i8259.load(f->pic, in, 1), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(g_dev_i8259.load(f->pic, in, 2), VERR_SSM_VERSION);
    ssm_destroy(in);
    free(bad);
    ssm_destroy(out);
    /* The refused loads left the state alone. */
    assert_int_equal(harness_inb(f->vm, MASTER_DATA), 0x80);
}

static void test_config(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *dev = NULL;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_i8259, "p1", "bogus=1", &dev), VERR_CFG_UNKNOWN_KEY);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_i8259, "p2", "elcr=0x10000", &dev), VERR_CFG_BAD_VALUE);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_i8259, "p3", "elcr=junk", &dev), VERR_CFG_BAD_VALUE);
    dev = harness_dev_create(vm, &g_dev_i8259, "pic", "elcr=0x0c27");
    /* Edge-only inputs are dropped from the configured value. */
    assert_int_equal(harness_inb(vm, ELCR1), 0x20);
    assert_int_equal(harness_inb(vm, ELCR2), 0x0c);
    harness_outb(vm, ELCR2, 0x00);
    pdm_dev_reset_all(vm);
    assert_int_equal(harness_inb(vm, ELCR2), 0x0c);
    harness_vm_destroy(vm);
}

static void test_garbage(void **state)
{
    struct fixture *f = *state;
    static const uint16_t ports[] = {MASTER_CMD, MASTER_DATA, SLAVE_CMD, SLAVE_DATA, ELCR1, ELCR2};
    enum { N = RT_ARRAY_SIZE(ports) * 256 };
    uint32_t ops[N];
    uint32_t seed = 0x8259a;
    for (unsigned round = 0; round < 8; round++) {
        harness_shuffle(ops, N, &seed);
        for (unsigned i = 0; i < N; i++) {
            harness_outb(f->vm, ports[ops[i] / 256], (uint8_t)(ops[i] % 256));
            uint32_t r = harness_rand(&seed);
            switch (r % 8) {
            case 0:
                line_set(f, (r >> 8) % 16, (r >> 12) & 1);
                break;
            case 1:
                harness_intr_ack(f->vm);
                break;
            case 2:
                harness_inb(f->vm, ports[(r >> 8) % RT_ARRAY_SIZE(ports)]);
                break;
            default:
                break;
            }
        }
    }
    /* Still a working controller after a proper initialization. */
    for (unsigned i = 0; i < 16; i++)
        line_set(f, i, false);
    harness_outb(f->vm, ELCR1, 0);
    harness_outb(f->vm, ELCR2, 0);
    pic_init(f->vm, 0x01, 0x01);
    line_pulse(f, 7);
    assert_int_equal(harness_intr_ack(f->vm), MASTER_BASE + 7);
    harness_outb(f->vm, MASTER_CMD, OCW2_EOI);
    line_pulse(f, 15);
    assert_int_equal(harness_intr_ack(f->vm), SLAVE_BASE + 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_and_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_mode_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_specific_eoi_and_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_eoi_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_vs_edge_elcr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cascade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_fully_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_mask_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spurious, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icw1_resets_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test(test_config),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
