/* tstI8254.c - 8254 PIT tests: every mode's OUT timing and exact counts, latches, read-back, BCD, gates, port 0x61,
 * IRQ0 rate, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PIT_HZ      1193182ull
#define CH0         0x40
#define CH2         0x42
#define CTRL        0x43
#define PORT61      0x61
#define P61_GATE2   0x01
#define P61_REFRESH 0x10
#define P61_OUT2    0x20
#define STATUS_OUT  0x80
#define STATUS_NULL 0x40

struct fixture {
    struct vm *vm;
    struct pdm_dev *pit;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create(0);
    f->pit = harness_dev_create(f->vm, &g_dev_i8254, "pit", NULL);
    harness_gsi_clear(f->vm);
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

/* The virtual time of CLK tick k (the first nanosecond at which k ticks have passed). */
static uint64_t tick_ns(uint64_t k)
{
    return (k * 1000000000ull + PIT_HZ - 1) / PIT_HZ;
}

static void step_to_ns(struct vm *vm, uint64_t t)
{
    uint64_t now = tm_now_ns(vm);
    assert_true(t >= now);
    harness_step_ns(vm, t - now);
}

static void step_to_tick(struct vm *vm, uint64_t k)
{
    step_to_ns(vm, tick_ns(k));
}

static void load16(struct vm *vm, unsigned ch, uint16_t v)
{
    harness_outb(vm, (uint16_t)(CH0 + ch), (uint8_t)v);
    harness_outb(vm, (uint16_t)(CH0 + ch), (uint8_t)(v >> 8));
}

/* Counter latch command, then LSB and MSB (the counter must be in LSB/MSB mode). */
static uint16_t read_count(struct vm *vm, unsigned ch)
{
    harness_outb(vm, CTRL, (uint8_t)(ch << 6));
    uint8_t lo = harness_inb(vm, (uint16_t)(CH0 + ch));
    uint8_t hi = harness_inb(vm, (uint16_t)(CH0 + ch));
    return (uint16_t)(lo | hi << 8);
}

/* Read-back command latching the status of one counter. */
static uint8_t read_status(struct vm *vm, unsigned ch)
{
    harness_outb(vm, CTRL, (uint8_t)(0xe0 | (2u << ch)));
    return harness_inb(vm, (uint16_t)(CH0 + ch));
}

static bool out2(struct vm *vm)
{
    return (harness_inb(vm, PORT61) & P61_OUT2) != 0;
}

static void test_mode0_interrupt_on_terminal_count(void **state)
{
    struct fixture *f = *state;
    step_to_tick(f->vm, 100);
    harness_outb(f->vm, CTRL, 0x30);
    assert_int_equal(read_status(f->vm, 0), STATUS_NULL | 0x30);
    load16(f->vm, 0, 1000);
    /* NULL COUNT until the next CLK moves the count into the counting element. */
    assert_int_equal(read_status(f->vm, 0), STATUS_NULL | 0x30);
    step_to_tick(f->vm, 101);
    assert_int_equal(read_status(f->vm, 0), 0x30);
    assert_int_equal(read_count(f->vm, 0), 1000);
    step_to_tick(f->vm, 600);
    assert_int_equal(read_count(f->vm, 0), 501);
    step_to_tick(f->vm, 1100);
    assert_int_equal(read_count(f->vm, 0), 1);
    assert_false(harness_gsi_level(f->vm, 0));
    /* OUT rises N + 1 CLKs after the count was written, at that tick's exact time. */
    step_to_ns(f->vm, tick_ns(1101) - 1);
    assert_false(harness_gsi_level(f->vm, 0));
    harness_step_ns(f->vm, 1);
    assert_true(harness_gsi_level(f->vm, 0));
    assert_int_equal(harness_gsi_rises(f->vm, 0), 1);
    assert_int_equal(read_count(f->vm, 0), 0);
    assert_int_equal(read_status(f->vm, 0), STATUS_OUT | 0x30);
    /* The counter wraps and keeps counting; OUT stays high. */
    step_to_tick(f->vm, 1103);
    assert_int_equal(read_count(f->vm, 0), 0xfffe);
    assert_true(harness_gsi_level(f->vm, 0));
    /* A new count sets OUT low at once and starts over. */
    load16(f->vm, 0, 10);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, 1113);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, 1114);
    assert_true(harness_gsi_level(f->vm, 0));
    assert_int_equal(harness_gsi_rises(f->vm, 0), 2);
    harness_step_ns(f->vm, 100000000);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 2);
}

static void test_mode0_first_byte_stops_counting(void **state)
{
    struct fixture *f = *state;
    step_to_tick(f->vm, 10);
    harness_outb(f->vm, CTRL, 0x30);
    load16(f->vm, 0, 1000);
    step_to_tick(f->vm, 111);
    assert_int_equal(read_count(f->vm, 0), 900);
    harness_outb(f->vm, CH0, 0x34);
    step_to_tick(f->vm, 200);
    assert_int_equal(read_count(f->vm, 0), 900);
    assert_int_equal(read_status(f->vm, 0) & STATUS_OUT, 0);
    harness_outb(f->vm, CH0, 0x12);
    step_to_tick(f->vm, 201);
    assert_int_equal(read_count(f->vm, 0), 0x1234);
    step_to_tick(f->vm, 201 + 0x1234 - 1);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, 201 + 0x1234);
    assert_true(harness_gsi_level(f->vm, 0));
}

static void test_mode0_gate(void **state)
{
    struct fixture *f = *state;
    step_to_tick(f->vm, 50);
    harness_outb(f->vm, PORT61, 0);
    harness_outb(f->vm, CTRL, 0xb0);
    load16(f->vm, 2, 100);
    /* Gate low: loaded but not counting. */
    step_to_tick(f->vm, 500);
    assert_int_equal(read_count(f->vm, 2), 100);
    assert_false(out2(f->vm));
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 540);
    assert_int_equal(read_count(f->vm, 2), 60);
    harness_outb(f->vm, PORT61, 0);
    step_to_tick(f->vm, 1000);
    assert_int_equal(read_count(f->vm, 2), 60);
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 1059);
    assert_int_equal(read_count(f->vm, 2), 1);
    assert_false(out2(f->vm));
    step_to_tick(f->vm, 1060);
    assert_int_equal(read_count(f->vm, 2), 0);
    assert_true(out2(f->vm));
    /* Gate low after terminal count: OUT keeps its level in mode 0. */
    harness_outb(f->vm, PORT61, 0);
    assert_true(out2(f->vm));
    /* Counter 2 has no interrupt line. */
    assert_int_equal(harness_gsi_rises(f->vm, 0), 0);
}

static void test_mode1_one_shot(void **state)
{
    struct fixture *f = *state;
    step_to_tick(f->vm, 20);
    harness_outb(f->vm, PORT61, 0);
    harness_outb(f->vm, CTRL, 0xb2);
    assert_true(out2(f->vm));
    load16(f->vm, 2, 500);
    step_to_tick(f->vm, 100);
    /* Waiting for a trigger: OUT high, NULL COUNT still set. */
    assert_true(out2(f->vm));
    assert_int_equal(read_status(f->vm, 2), STATUS_OUT | STATUS_NULL | 0x32);
    harness_outb(f->vm, PORT61, P61_GATE2);
    assert_true(out2(f->vm)); /* OUT falls on the CLK after the trigger */
    step_to_tick(f->vm, 101);
    assert_false(out2(f->vm));
    assert_int_equal(read_count(f->vm, 2), 500);
    assert_int_equal(read_status(f->vm, 2), 0x32);
    step_to_tick(f->vm, 400);
    assert_int_equal(read_count(f->vm, 2), 201);
    /* Retrigger: reloads on the next CLK, OUT stays low. */
    harness_outb(f->vm, PORT61, 0);
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 401);
    assert_int_equal(read_count(f->vm, 2), 500);
    step_to_tick(f->vm, 900);
    assert_int_equal(read_count(f->vm, 2), 1);
    assert_false(out2(f->vm));
    step_to_tick(f->vm, 901);
    assert_true(out2(f->vm));
    assert_int_equal(read_count(f->vm, 2), 0);
    /* The gate level itself does not stop mode 1. */
    harness_outb(f->vm, PORT61, 0);
    step_to_tick(f->vm, 903);
    assert_int_equal(read_count(f->vm, 2), 0xfffe);
    /* A new count waits for the next trigger. */
    load16(f->vm, 2, 10);
    step_to_tick(f->vm, 950);
    assert_true(out2(f->vm));
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 951);
    assert_false(out2(f->vm));
    step_to_tick(f->vm, 961);
    assert_true(out2(f->vm));
}

static void test_mode2_rate_generator(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, CTRL, 0x34);
    load16(f->vm, 0, 1193);
    harness_gsi_clear(f->vm);
    step_to_tick(f->vm, 1);
    assert_int_equal(read_count(f->vm, 0), 1193);
    step_to_tick(f->vm, 1192);
    assert_int_equal(read_count(f->vm, 0), 2);
    assert_true(harness_gsi_level(f->vm, 0));
    /* OUT is low for the one CLK when the count is 1, then the count reloads. */
    step_to_tick(f->vm, 1193);
    assert_int_equal(read_count(f->vm, 0), 1);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_ns(f->vm, tick_ns(1194) - 1);
    assert_false(harness_gsi_level(f->vm, 0));
    harness_step_ns(f->vm, 1);
    assert_true(harness_gsi_level(f->vm, 0));
    assert_int_equal(read_count(f->vm, 0), 1193);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 1);
    /* Rising edges at ticks 1 + k * 1193: 1000 of them in the first second. */
    step_to_ns(f->vm, 1000000000);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 1000);
}

static void test_mode2_new_count_at_cycle_end(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, CTRL, 0x34);
    load16(f->vm, 0, 100);
    harness_gsi_clear(f->vm);
    step_to_tick(f->vm, 150);
    assert_int_equal(read_count(f->vm, 0), 51);
    load16(f->vm, 0, 40);
    /* The current cycle finishes with the old count. */
    assert_int_equal(read_status(f->vm, 0), STATUS_OUT | STATUS_NULL | 0x34);
    step_to_tick(f->vm, 200);
    assert_int_equal(read_count(f->vm, 0), 1);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, 201);
    assert_int_equal(read_count(f->vm, 0), 40);
    assert_int_equal(read_status(f->vm, 0), STATUS_OUT | 0x34);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 2);
    step_to_tick(f->vm, 240);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, 241);
    assert_true(harness_gsi_level(f->vm, 0));
    assert_int_equal(harness_gsi_rises(f->vm, 0), 3);
    /* A control word stops the counter and sets OUT to mode 0's initial low. */
    harness_outb(f->vm, CTRL, 0x30);
    assert_false(harness_gsi_level(f->vm, 0));
    harness_step_ns(f->vm, 10000000);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 3);
}

static void test_mode2_gate(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, PORT61, P61_GATE2);
    harness_outb(f->vm, CTRL, 0xb4);
    load16(f->vm, 2, 50);
    step_to_tick(f->vm, 30);
    assert_int_equal(read_count(f->vm, 2), 21);
    step_to_tick(f->vm, 50);
    assert_false(out2(f->vm));
    /* Gate low: OUT high at once, counting stops. */
    harness_outb(f->vm, PORT61, 0);
    assert_true(out2(f->vm));
    step_to_tick(f->vm, 80);
    assert_int_equal(read_count(f->vm, 2), 1);
    assert_true(out2(f->vm));
    /* Gate high: the count reloads on the next CLK. */
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 81);
    assert_int_equal(read_count(f->vm, 2), 50);
    step_to_tick(f->vm, 130);
    assert_false(out2(f->vm));
    step_to_tick(f->vm, 131);
    assert_true(out2(f->vm));
}

static void test_mode3_square_wave(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 1000);
    harness_outb(f->vm, CTRL, 0xb6);
    load16(f->vm, 2, 10);
    /* Even count: high 5, low 5; the count goes down by two. */
    static const uint16_t even[] = {10, 8, 6, 4, 2, 10, 8, 6, 4, 2, 10};
    for (unsigned i = 0; i < RT_ARRAY_SIZE(even); i++) {
        step_to_tick(f->vm, 1001 + i);
        assert_int_equal(read_count(f->vm, 2), even[i]);
        assert_int_equal(out2(f->vm), (i % 10) < 5);
    }
    /* Odd count: high (N + 1) / 2, low (N - 1) / 2; N - 1 is loaded. */
    step_to_tick(f->vm, 2000);
    harness_outb(f->vm, CTRL, 0xb6);
    load16(f->vm, 2, 7);
    static const uint16_t odd[] = {6, 4, 2, 0, 6, 4, 2, 6, 4};
    static const bool odd_out[] = {true, true, true, true, false, false, false, true, true};
    for (unsigned i = 0; i < RT_ARRAY_SIZE(odd); i++) {
        step_to_tick(f->vm, 2001 + i);
        assert_int_equal(read_count(f->vm, 2), odd[i]);
        assert_int_equal(out2(f->vm), odd_out[i]);
    }
    /* A new count takes effect at the end of the current half-cycle. */
    step_to_tick(f->vm, 3000);
    harness_outb(f->vm, CTRL, 0xb6);
    load16(f->vm, 2, 10);
    step_to_tick(f->vm, 3003);
    load16(f->vm, 2, 20);
    step_to_tick(f->vm, 3005);
    assert_true(out2(f->vm));
    assert_int_equal(read_count(f->vm, 2), 2);
    step_to_tick(f->vm, 3006);
    assert_false(out2(f->vm));
    assert_int_equal(read_count(f->vm, 2), 20);
    step_to_tick(f->vm, 3015);
    assert_false(out2(f->vm));
    assert_int_equal(read_count(f->vm, 2), 2);
    step_to_tick(f->vm, 3016);
    assert_true(out2(f->vm));
    assert_int_equal(read_count(f->vm, 2), 20);
    step_to_tick(f->vm, 3025);
    assert_true(out2(f->vm));
    step_to_tick(f->vm, 3026);
    assert_false(out2(f->vm));
}

static void test_mode3_irq0_1khz(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, CTRL, 0x36);
    load16(f->vm, 0, 1193);
    harness_gsi_clear(f->vm);
    /* High for 597 CLKs, low for 596: falls at tick 598, rises at 1194. */
    step_to_tick(f->vm, 597);
    assert_true(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, 598);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, 1193);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, 1194);
    assert_true(harness_gsi_level(f->vm, 0));
    /* One rising edge per millisecond over a second stepped 1 ms at a time. */
    while (tm_now_ns(f->vm) + 1000000 <= 1000000000)
        harness_step_ns(f->vm, 1000000);
    step_to_ns(f->vm, 1000000000);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 1000);
}

static void test_mode4_software_strobe(void **state)
{
    struct fixture *f = *state;
    step_to_tick(f->vm, 10);
    harness_outb(f->vm, CTRL, 0x38);
    load16(f->vm, 0, 100);
    harness_gsi_clear(f->vm);
    step_to_tick(f->vm, 110);
    assert_true(harness_gsi_level(f->vm, 0));
    assert_int_equal(read_count(f->vm, 0), 1);
    step_to_tick(f->vm, 111);
    assert_false(harness_gsi_level(f->vm, 0));
    assert_int_equal(read_count(f->vm, 0), 0);
    step_to_tick(f->vm, 112);
    assert_true(harness_gsi_level(f->vm, 0));
    assert_int_equal(harness_gsi_rises(f->vm, 0), 1);
    /* One strobe per count written, although the counter wraps through zero again. */
    step_to_tick(f->vm, 200000);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 1);
    load16(f->vm, 0, 5);
    step_to_tick(f->vm, 200006);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, 200007);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 2);
}

static void test_mode5_hardware_strobe(void **state)
{
    struct fixture *f = *state;
    step_to_tick(f->vm, 10);
    harness_outb(f->vm, PORT61, 0);
    harness_outb(f->vm, CTRL, 0xba);
    load16(f->vm, 2, 50);
    step_to_tick(f->vm, 100);
    assert_true(out2(f->vm));
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 101);
    assert_int_equal(read_count(f->vm, 2), 50);
    step_to_tick(f->vm, 150);
    assert_true(out2(f->vm));
    step_to_tick(f->vm, 151);
    assert_false(out2(f->vm));
    step_to_tick(f->vm, 152);
    assert_true(out2(f->vm));
    /* Retriggered before the strobe: it moves. */
    harness_outb(f->vm, PORT61, 0);
    step_to_tick(f->vm, 200);
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 230);
    harness_outb(f->vm, PORT61, 0);
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 251);
    assert_true(out2(f->vm));
    step_to_tick(f->vm, 281);
    assert_false(out2(f->vm));
}

static void test_bcd(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, PORT61, P61_GATE2);
    step_to_tick(f->vm, 10);
    harness_outb(f->vm, CTRL, 0xb1);
    load16(f->vm, 2, 0x1000);
    step_to_tick(f->vm, 11);
    assert_int_equal(read_count(f->vm, 2), 0x1000);
    step_to_tick(f->vm, 12);
    assert_int_equal(read_count(f->vm, 2), 0x0999);
    step_to_tick(f->vm, 1010);
    assert_int_equal(read_count(f->vm, 2), 0x0001);
    assert_false(out2(f->vm));
    step_to_tick(f->vm, 1011);
    assert_int_equal(read_count(f->vm, 2), 0x0000);
    assert_true(out2(f->vm));
    step_to_tick(f->vm, 1012);
    assert_int_equal(read_count(f->vm, 2), 0x9999);
    /* Count 0 is 10000 in BCD. */
    step_to_tick(f->vm, 2000);
    harness_outb(f->vm, CTRL, 0xb1);
    load16(f->vm, 2, 0);
    step_to_tick(f->vm, 2002);
    assert_int_equal(read_count(f->vm, 2), 0x9999);
    step_to_tick(f->vm, 12000);
    assert_false(out2(f->vm));
    step_to_tick(f->vm, 12001);
    assert_true(out2(f->vm));
    /* Mode 2 in BCD: period 100 (0x0100). */
    harness_outb(f->vm, CTRL, 0xb5);
    load16(f->vm, 2, 0x0100);
    step_to_tick(f->vm, 12002);
    assert_int_equal(read_count(f->vm, 2), 0x0100);
    step_to_tick(f->vm, 12003);
    assert_int_equal(read_count(f->vm, 2), 0x0099);
    step_to_tick(f->vm, 12101);
    assert_false(out2(f->vm));
    step_to_tick(f->vm, 12102);
    assert_true(out2(f->vm));
    assert_int_equal(read_count(f->vm, 2), 0x0100);
    assert_int_equal(read_status(f->vm, 2), STATUS_OUT | 0x35);
}

static void test_latch_and_read_back(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, CTRL, 0x34);
    load16(f->vm, 0, 1000);
    step_to_tick(f->vm, 101);
    harness_outb(f->vm, CTRL, 0x00);
    step_to_tick(f->vm, 500);
    /* A second latch command is ignored until the first latched count is read. */
    harness_outb(f->vm, CTRL, 0x00);
    assert_int_equal(harness_inb(f->vm, CH0), 900 & 0xff);
    step_to_tick(f->vm, 550);
    assert_int_equal(harness_inb(f->vm, CH0), 900 >> 8);
    assert_int_equal(read_count(f->vm, 0), 451);
    /* Read-back of status and count: status first, then the count. */
    step_to_tick(f->vm, 701);
    harness_outb(f->vm, CTRL, 0xc2);
    step_to_tick(f->vm, 720);
    assert_int_equal(harness_inb(f->vm, CH0), STATUS_OUT | 0x34);
    assert_int_equal(harness_inb(f->vm, CH0), 300 & 0xff);
    assert_int_equal(harness_inb(f->vm, CH0), 300 >> 8);
    /* Unlatched reads follow the counter, LSB then MSB through the flip-flop. */
    step_to_tick(f->vm, 801);
    assert_int_equal(harness_inb(f->vm, CH0), 200);
    assert_int_equal(harness_inb(f->vm, CH0), 0);
    /* Read-back of counts for several counters at once. */
    harness_outb(f->vm, PORT61, P61_GATE2);
    harness_outb(f->vm, CTRL, 0xb4);
    load16(f->vm, 2, 0x4000);
    step_to_tick(f->vm, 811);
    harness_outb(f->vm, CTRL, 0xda);
    step_to_tick(f->vm, 900);
    assert_int_equal(harness_inb(f->vm, CH0), 190);
    assert_int_equal(harness_inb(f->vm, CH0), 0);
    uint8_t lo = harness_inb(f->vm, CH2);
    uint8_t hi = harness_inb(f->vm, CH2);
    assert_int_equal(lo | hi << 8, 0x4000 - 9);
    /* LSB-only and MSB-only access. */
    harness_outb(f->vm, CTRL, 0x54);
    harness_outb(f->vm, 0x41, 0x80);
    step_to_tick(f->vm, 910);
    assert_int_equal(harness_inb(f->vm, 0x41), 0x80 - 9);
    assert_int_equal(harness_inb(f->vm, 0x41), 0x80 - 9);
    harness_outb(f->vm, CTRL, 0x64);
    harness_outb(f->vm, 0x41, 0x02);
    step_to_tick(f->vm, 1000);
    assert_int_equal(harness_inb(f->vm, 0x41), 0x01); /* 0x200 - 89 = 0x1a7 */
    harness_outb(f->vm, CTRL, 0x40);
    assert_int_equal(harness_inb(f->vm, 0x41), 0x01);
    /* Read and write flip-flops are separate: read LSB, write LSB, read MSB, write MSB. */
    harness_outb(f->vm, CTRL, 0xb0);
    load16(f->vm, 2, 0x1234);
    step_to_tick(f->vm, 1001);
    harness_outb(f->vm, CTRL, 0x80);
    assert_int_equal(harness_inb(f->vm, CH2), 0x34);
    harness_outb(f->vm, CH2, 0x78);
    assert_int_equal(harness_inb(f->vm, CH2), 0x12);
    harness_outb(f->vm, CH2, 0x56);
    step_to_tick(f->vm, 1002);
    assert_int_equal(read_count(f->vm, 2), 0x5678);
    /* A control word drops a pending latch. */
    harness_outb(f->vm, CTRL, 0x80);
    harness_outb(f->vm, CTRL, 0xb0);
    load16(f->vm, 2, 0x0777);
    step_to_tick(f->vm, 1003);
    assert_int_equal(read_count(f->vm, 2), 0x0777);
    /* The control register is write-only. */
    assert_int_equal(harness_inb(f->vm, CTRL), 0xff);
}

static void test_port61(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, PORT61, 0xff);
    uint8_t v = harness_inb(f->vm, PORT61);
    assert_int_equal(v & 0xcf, 0x0f);
    harness_outb(f->vm, PORT61, 0x02);
    assert_int_equal(harness_inb(f->vm, PORT61) & 0x0f, 0x02);
    /* The refresh bit toggles every 18 CLKs of virtual time. */
    step_to_tick(f->vm, 5);
    assert_int_equal(harness_inb(f->vm, PORT61) & P61_REFRESH, 0);
    step_to_tick(f->vm, 20);
    assert_int_equal(harness_inb(f->vm, PORT61) & P61_REFRESH, P61_REFRESH);
    step_to_tick(f->vm, 40);
    assert_int_equal(harness_inb(f->vm, PORT61) & P61_REFRESH, 0);
    /* OUT2 follows counter 2 (mode 0 after reset, no count: low). */
    assert_false(out2(f->vm));
    harness_outb(f->vm, PORT61, P61_GATE2 | 0x02);
    harness_outb(f->vm, CTRL, 0xb6);
    assert_true(out2(f->vm));
    load16(f->vm, 2, 4);
    step_to_tick(f->vm, 43);
    assert_false(out2(f->vm));
}

static void test_tiny_reload_no_storm(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, CTRL, 0x34);
    load16(f->vm, 0, 2);
    harness_gsi_clear(f->vm);
    step_to_tick(f->vm, 1);
    assert_int_equal(read_count(f->vm, 0), 2);
    step_to_tick(f->vm, 2);
    assert_int_equal(read_count(f->vm, 0), 1);
    step_to_tick(f->vm, 3);
    assert_int_equal(read_count(f->vm, 0), 2);
    /* 596 kHz of edges are coalesced to one per 10 us of virtual time. */
    harness_step_ns(f->vm, 10000000);
    unsigned rises = harness_gsi_rises(f->vm, 0);
    assert_true(rises >= 900 && rises <= 1002);
    /* Counts stay exact. */
    uint64_t k = (tm_now_ns(f->vm) * PIT_HZ) / 1000000000ull;
    assert_int_equal(read_count(f->vm, 0), (k - 1) % 2 ? 1 : 2);

    /* A guest polling the counter every 5 us does not starve the coalesced edges. */
    harness_gsi_clear(f->vm);
    for (unsigned i = 0; i < 200; i++) {
        harness_step_ns(f->vm, 5000);
        read_count(f->vm, 0);
    }
    rises = harness_gsi_rises(f->vm, 0);
    assert_true(rises >= 90 && rises <= 101);

    /* Count 1 in mode 2: OUT stays low, no edges, no timer. */
    harness_outb(f->vm, CTRL, 0x34);
    load16(f->vm, 0, 1);
    harness_step_ns(f->vm, 1000);
    harness_gsi_clear(f->vm);
    harness_step_ns(f->vm, 1000000);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 0);
    assert_false(harness_gsi_level(f->vm, 0));
    assert_int_equal(read_count(f->vm, 0), 1);
    /* Count 1 in mode 3: OUT stays high. */
    harness_outb(f->vm, CTRL, 0x36);
    load16(f->vm, 0, 1);
    harness_step_ns(f->vm, 1000000);
    assert_true(harness_gsi_level(f->vm, 0));
    assert_int_equal(harness_gsi_rises(f->vm, 0), 1);
    /* Count 2 in mode 3 on counter 0 is coalesced too. */
    load16(f->vm, 0, 2);
    harness_gsi_clear(f->vm);
    harness_step_ns(f->vm, 1000000);
    rises = harness_gsi_rises(f->vm, 0);
    assert_true(rises >= 90 && rises <= 102);
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    harness_outb(f->vm, CTRL, 0x34);
    load16(f->vm, 0, 1193);
    harness_outb(f->vm, PORT61, P61_GATE2 | 0x02);
    harness_outb(f->vm, CTRL, 0xb6);
    load16(f->vm, 2, 10);
    harness_outb(f->vm, CTRL, 0x74);
    load16(f->vm, 1, 18);
    step_to_ns(f->vm, 500000000);
    uint64_t k = (tm_now_ns(f->vm) * PIT_HZ) / 1000000000ull;
    harness_outb(f->vm, CTRL, 0x40); /* latch counter 1 */
    harness_outb(f->vm, CTRL, 0x34);
    load16(f->vm, 0, 1193);
    harness_gsi_clear(f->vm);

    assert_int_equal(harness_dev_save_reset_load(f->pit), 0);
    /* The line is back at its level (high between mode 2's pulses). */
    assert_true(harness_gsi_level(f->vm, 0));
    harness_gsi_clear(f->vm);

    uint8_t lo = harness_inb(f->vm, 0x41);
    uint8_t hi = harness_inb(f->vm, 0x41);
    assert_int_equal(lo | hi << 8, 18 - (k - 1) % 18);
    assert_int_equal(harness_inb(f->vm, PORT61) & 0x0f, P61_GATE2 | 0x02);
    uint64_t t0 = tm_now_ns(f->vm);
    uint64_t k0 = (t0 * PIT_HZ) / 1000000000ull; /* counter 0 was loaded at k0 + 1 */
    step_to_tick(f->vm, k0 + 11);
    assert_int_equal(read_count(f->vm, 0), 1193 - 10);
    assert_int_equal(read_count(f->vm, 2), 10 - 2 * ((k0 + 10) % 5));
    /* The interrupt timer came back with the state: 100 edges in the next 100 ms. */
    step_to_ns(f->vm, t0 + 100000000);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 100);

    /* Short and inconsistent streams are refused. */
    struct ssm *out = NULL, *in = NULL;
    assert_int_equal(ssm_create(&out), 0);
    assert_int_equal(g_dev_i8254.save(f->pit, out), 0);
    size_t len;
    const uint8_t *data = ssm_data(out, &len);
    assert_int_equal(ssm_open(data, len - 1, &in), 0);
    assert_int_not_equal(g_dev_i8254.load(f->pit, in, 1), 0);
    ssm_destroy(in);
    uint8_t *bad = malloc(len);
    memcpy(bad, data, len);
    bad[0] = 7; /* counter 0's mode */
    assert_int_equal(ssm_open(bad, len, &in), 0);
    assert_int_equal(g_dev_i8254.load(f->pit, in, 1), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    free(bad);
    ssm_destroy(out);
    assert_int_equal(read_status(f->vm, 0) & 0x3f, 0x34);
}

static void test_config(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *dev = NULL;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_i8254, "p1", "irq=24", &dev), VERR_CFG_BAD_VALUE);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_i8254, "p2", "foo=1", &dev), VERR_CFG_UNKNOWN_KEY);
    dev = harness_dev_create(vm, &g_dev_i8254, "pit", "irq=5");
    harness_outb(vm, CTRL, 0x34);
    load16(vm, 0, 1193);
    harness_gsi_clear(vm);
    harness_step_ns(vm, 10000000);
    assert_int_equal(harness_gsi_rises(vm, 5), 10);
    assert_int_equal(harness_gsi_rises(vm, 0), 0);
    /* Reset stops the counter and drops the line. */
    pdm_dev_reset_all(vm);
    assert_false(harness_gsi_level(vm, 5));
    harness_gsi_clear(vm);
    harness_step_ns(vm, 10000000);
    assert_int_equal(harness_gsi_rises(vm, 5), 0);
    harness_vm_destroy(vm);
}

static void test_garbage(void **state)
{
    struct fixture *f = *state;
    static const uint16_t ports[] = {CH0, 0x41, CH2, CTRL, PORT61};
    enum { N = RT_ARRAY_SIZE(ports) * 256 };
    uint32_t ops[N];
    uint32_t seed = 0x8254;
    for (unsigned round = 0; round < 6; round++) {
        harness_shuffle(ops, N, &seed);
        for (unsigned i = 0; i < N; i++) {
            harness_outb(f->vm, ports[ops[i] / 256], (uint8_t)(ops[i] % 256));
            uint32_t r = harness_rand(&seed);
            if (r % 4 == 0)
                harness_step_ns(f->vm, (r >> 4) % 50000);
            if (r % 8 == 1)
                harness_inb(f->vm, ports[(r >> 8) % RT_ARRAY_SIZE(ports)]);
        }
        harness_step_ns(f->vm, 5000000);
        assert_int_equal(harness_dev_save_reset_load(f->pit), 0);
    }
    /* Still an exact timer after reprogramming. */
    uint64_t k = (tm_now_ns(f->vm) * PIT_HZ) / 1000000000ull;
    harness_outb(f->vm, CTRL, 0x30);
    load16(f->vm, 0, 100);
    step_to_tick(f->vm, k + 100);
    assert_false(harness_gsi_level(f->vm, 0));
    step_to_tick(f->vm, k + 101);
    assert_true(harness_gsi_level(f->vm, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mode0_interrupt_on_terminal_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode0_first_byte_stops_counting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode0_gate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode1_one_shot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode2_rate_generator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode2_new_count_at_cycle_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode2_gate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode3_square_wave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode3_irq0_1khz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode4_software_strobe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode5_hardware_strobe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bcd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latch_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port61, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiny_reload_no_storm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test(test_config),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
