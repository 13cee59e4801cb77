/* tstHpet.c - HPET tests: capabilities, the 100 MHz counter, one-shot and periodic comparators (32/64-bit), level and
 * edge interrupts, routing, legacy replacement muting the PIT and RTC, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define HPET        PC_HPET_BASE
#define CAP         (HPET + 0x000)
#define CONFIG      (HPET + 0x010)
#define STATUS      (HPET + 0x020)
#define COUNTER     (HPET + 0x0f0)
#define TN_CFG(n)   (HPET + 0x100 + 0x20 * (n))
#define TN_CMP(n)   (HPET + 0x108 + 0x20 * (n))
#define TN_FSB(n)   (HPET + 0x110 + 0x20 * (n))

#define CFG_ENABLE  0x1u
#define CFG_LEG_RT  0x2u
#define TN_LEVEL    (1u << 1)
#define TN_INT_ENB  (1u << 2)
#define TN_PERIODIC (1u << 3)
#define TN_PER_CAP  (1u << 4)
#define TN_SIZE_CAP (1u << 5)
#define TN_VAL_SET  (1u << 6)
#define TN_32BIT    (1u << 8)
#define TN_ROUTE(p) ((uint32_t)(p) << 9)

#define US 1000ull
#define MS 1000000ull

struct fixture {
    struct vm *vm;
    struct pdm_dev *pit, *rtc, *hpet;
    unsigned legacy_calls;
    bool legacy;
};

/* The board's listener (pc-board.c): legacy replacement disconnects the PIT's and RTC's outputs. */
static void legacy_listener(void *opaque, bool legacy)
{
    struct fixture *f = opaque;
    f->legacy_calls++;
    f->legacy = legacy;
    i8254_set_irq_enabled(f->pit, !legacy);
    rtc_set_irq_enabled(f->rtc, !legacy);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create(0);
    f->pit = harness_dev_create(f->vm, &g_dev_i8254, "pit", NULL);
    f->rtc = harness_dev_create(f->vm, &g_dev_mc146818, "rtc", NULL);
    f->hpet = harness_dev_create(f->vm, &g_dev_hpet, "hpet", NULL);
    hpet_set_legacy_listener(f->hpet, legacy_listener, f);
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

static uint64_t rd64(struct fixture *f, uint64_t gpa) { return mem_mmio_read(f->vm, gpa, 8); }
static uint32_t rd32(struct fixture *f, uint64_t gpa) { return (uint32_t)mem_mmio_read(f->vm, gpa, 4); }
static void wr64(struct fixture *f, uint64_t gpa, uint64_t v) { mem_mmio_write(f->vm, gpa, v, 8); }
static void wr32(struct fixture *f, uint64_t gpa, uint32_t v) { mem_mmio_write(f->vm, gpa, v, 4); }

static void test_capabilities(void **state)
{
    struct fixture *f = *state;
    uint64_t cap = rd64(f, CAP);
    assert_int_equal(cap & 0xff, 1);              /* REV_ID */
    assert_int_equal((cap >> 8) & 0x1f, 2);       /* NUM_TIM_CAP: three timers */
    assert_true(cap & (1u << 13));                /* COUNT_SIZE_CAP: 64-bit */
    assert_true(cap & (1u << 15));                /* LEG_RT_CAP */
    assert_int_equal((cap >> 16) & 0xffff, 0x8086);
    assert_int_equal(cap >> 32, 10000000);        /* 10 ns in fs */
    /* Both halves through 32-bit reads. */
    assert_int_equal(rd32(f, CAP), (uint32_t)cap);
    assert_int_equal(rd32(f, CAP + 4), 10000000);
    /* Capabilities are read-only. */
    wr64(f, CAP, 0);
    assert_int_equal(rd64(f, CAP), cap);

    uint64_t t0 = rd64(f, TN_CFG(0)), t1 = rd64(f, TN_CFG(1)), t2 = rd64(f, TN_CFG(2));
    assert_true(t0 & TN_PER_CAP);
    assert_false(t1 & TN_PER_CAP);
    assert_false(t2 & TN_PER_CAP);
    for (unsigned i = 0; i < 3; i++) {
        uint64_t c = rd64(f, TN_CFG(i));
        assert_true(c & TN_SIZE_CAP);
        assert_int_equal(c >> 32, 0x00f00000);    /* routable to I/O APIC pins 20-23 */
        assert_false(c & (1u << 15));             /* no FSB delivery */
        assert_int_equal(c & 0xffff & ~(TN_PER_CAP | TN_SIZE_CAP), 0);
        assert_true(rd64(f, TN_CMP(i)) == UINT64_MAX); /* comparators reset to all ones */
        assert_int_equal(rd64(f, TN_FSB(i)), 0);
    }
    assert_int_equal(rd64(f, CONFIG), 0);
    assert_int_equal(rd64(f, STATUS), 0);
    /* Only ENABLE and LEG_RT are writable in the general configuration. */
    wr64(f, CONFIG, ~0ull);
    assert_int_equal(rd64(f, CONFIG), CFG_ENABLE | CFG_LEG_RT);
    /* Periodic mode and FSB enable cannot be set where they are not offered. */
    wr64(f, TN_CFG(1), TN_PERIODIC | (1u << 14) | TN_LEVEL);
    assert_int_equal(rd64(f, TN_CFG(1)) & 0xffff, TN_LEVEL | TN_SIZE_CAP);
    /* Reserved registers and the space past timer 2 read zero and ignore writes. */
    wr64(f, HPET + 0x160, ~0ull);
    assert_int_equal(rd64(f, HPET + 0x160), 0);
    assert_int_equal(rd64(f, HPET + 0x3f8), 0);
    assert_int_equal(rd64(f, HPET + 0x008), 0);
}

static void test_counter(void **state)
{
    struct fixture *f = *state;
    harness_step_ns(f->vm, MS);
    assert_int_equal(rd64(f, COUNTER), 0); /* halted out of reset */
    wr64(f, CONFIG, CFG_ENABLE);
    harness_step_ns(f->vm, MS);
    assert_int_equal(rd64(f, COUNTER), 100000); /* 100 MHz of virtual time */
    harness_step_ns(f->vm, 5);
    assert_int_equal(rd64(f, COUNTER), 100000); /* half a tick */
    harness_step_ns(f->vm, 5);
    assert_int_equal(rd64(f, COUNTER), 100001);
    /* Writes while running are ignored. */
    wr64(f, COUNTER, 42);
    assert_int_equal(rd64(f, COUNTER), 100001);
    /* Halted, it holds its value and takes writes, in halves too. */
    wr64(f, CONFIG, 0);
    harness_step_ns(f->vm, MS);
    assert_int_equal(rd64(f, COUNTER), 100001);
    wr64(f, COUNTER, 0x00000001fffffff0ull);
    assert_int_equal(rd64(f, COUNTER), 0x00000001fffffff0ull);
    wr32(f, COUNTER + 4, 7);
    assert_int_equal(rd64(f, COUNTER), 0x00000007fffffff0ull);
    /* Restarted, it continues from the held value and carries into the high half. */
    wr64(f, CONFIG, CFG_ENABLE);
    harness_step_ns(f->vm, 200);
    assert_int_equal(rd32(f, COUNTER), 0x00000004);
    assert_int_equal(rd32(f, COUNTER + 4), 8);
}

/* One-shot timer 2 in 64-bit mode, edge-triggered on pin 20. */
static void test_oneshot_64(void **state)
{
    struct fixture *f = *state;
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_ROUTE(20));
    wr64(f, TN_CMP(2), 5000); /* 50 us */
    harness_step_ns(f->vm, MS);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 0); /* the counter is halted */
    wr64(f, COUNTER, 0);
    wr64(f, CONFIG, CFG_ENABLE);
    harness_step_ns(f->vm, 50 * US - 10);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 0);
    harness_step_ns(f->vm, 10);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 1);
    assert_false(harness_gsi_level(f->vm, 20)); /* an edge: the line went back low */
    assert_int_equal(rd64(f, STATUS), 0);        /* edge-triggered timers leave the status alone */
    assert_int_equal(rd64(f, TN_CMP(2)), 5000);  /* one-shot: the comparator stays */
    harness_step_ns(f->vm, 10ull * 1000 * MS);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 1); /* a 64-bit counter does not come round */
    /* A new comparator ahead of the counter fires again; one in the past does not. */
    uint64_t now = rd64(f, COUNTER);
    wr64(f, TN_CMP(2), now + 100);
    wr64(f, TN_CMP(2), now - 1);
    harness_step_ns(f->vm, 10 * US);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 1);
    wr64(f, TN_CMP(2), rd64(f, COUNTER) + 100);
    harness_step_ns(f->vm, US);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 2);
    /* Nothing on the other GSIs (the PIT has no count and the RTC no interrupt enabled). */
    for (unsigned gsi = 0; gsi < PDM_GSI_COUNT; gsi++)
        if (gsi != 20)
            assert_int_equal(harness_gsi_rises(f->vm, gsi), 0);
}

/* One-shot timer 1 in 32-bit mode matches again each time the low 32 bits come round (2^32 ticks). */
static void test_oneshot_32_wrap(void **state)
{
    struct fixture *f = *state;
    wr64(f, TN_CFG(1), TN_INT_ENB | TN_32BIT | TN_ROUTE(22));
    wr64(f, TN_CMP(1), 0x1234500000000064ull); /* the high half is dropped in 32-bit mode */
    assert_int_equal(rd64(f, TN_CMP(1)), 100);
    wr64(f, CONFIG, CFG_ENABLE);
    harness_step_ns(f->vm, 1000);
    assert_int_equal(harness_gsi_rises(f->vm, 22), 1);
    uint64_t wrap_ns = (1ull << 32) * 10;
    harness_step_ns(f->vm, wrap_ns - 10);
    assert_int_equal(harness_gsi_rises(f->vm, 22), 1);
    harness_step_ns(f->vm, 10);
    assert_int_equal(harness_gsi_rises(f->vm, 22), 2);
    assert_int_equal(rd64(f, COUNTER), (1ull << 32) + 100); /* the main counter itself is 64-bit */
    /* Back in 64-bit mode the comparator is 100 and the counter is past it: no match for ages. */
    wr64(f, TN_CFG(1), TN_INT_ENB | TN_ROUTE(22));
    harness_step_ns(f->vm, 2 * wrap_ns);
    assert_int_equal(harness_gsi_rises(f->vm, 22), 2);
}

/* Timer 0 periodic, set up as Linux does: VAL_SET, start value, then the period. */
static void periodic_check(struct fixture *f, bool mode32)
{
    uint32_t bits = mode32 ? TN_32BIT : 0;
    wr32(f, TN_CFG(0), TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | bits | TN_ROUTE(23));
    /* 64-bit mode: one 64-bit write (a 32-bit one would leave the reset value's high half). */
    if (mode32)
        wr32(f, TN_CMP(0), 100000);          /* first match at 1 ms */
    else
        wr64(f, TN_CMP(0), 100000);
    assert_int_equal(rd64(f, TN_CFG(0)) & TN_VAL_SET, 0);
    wr32(f, TN_CMP(0), 100000);              /* period: 1 ms */
    assert_int_equal(rd64(f, TN_CMP(0)), 100000);
    wr64(f, CONFIG, CFG_ENABLE);
    for (unsigned ms = 1; ms <= 10; ms++) {
        harness_step_ns(f->vm, MS - 10);
        assert_int_equal(harness_gsi_rises(f->vm, 23), ms - 1);
        harness_step_ns(f->vm, 10);
        assert_int_equal(harness_gsi_rises(f->vm, 23), ms);
    }
    assert_int_equal(rd64(f, COUNTER), 1000000);
    assert_int_equal(rd64(f, TN_CMP(0)), 1100000); /* the accumulator moved on by the period */
    /* A new period (without VAL_SET) applies from the next match. */
    wr32(f, TN_CMP(0), 50000);
    assert_int_equal(rd64(f, TN_CMP(0)), 1100000);
    harness_step_ns(f->vm, MS);
    assert_int_equal(harness_gsi_rises(f->vm, 23), 11);
    assert_int_equal(rd64(f, TN_CMP(0)), 1150000);
    harness_step_ns(f->vm, MS / 2);
    assert_int_equal(harness_gsi_rises(f->vm, 23), 12);
}

static void test_periodic_32(void **state)
{
    periodic_check(*state, true);
}

static void test_periodic_64(void **state)
{
    periodic_check(*state, false);
}

/* A periodic comparator in 32-bit mode wraps at 32 bits; a 64-bit one carries. */
static void test_periodic_wrap(void **state)
{
    struct fixture *f = *state;
    wr64(f, COUNTER, 0xfffff000ull);
    wr64(f, TN_CFG(0), TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | TN_32BIT | TN_ROUTE(20));
    wr64(f, TN_CMP(0), 0xfffff800ull);
    wr64(f, TN_CMP(0), 0x1000);
    wr64(f, CONFIG, CFG_ENABLE);
    harness_step_ns(f->vm, 0x800 * 10);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 1);
    assert_int_equal(rd64(f, TN_CMP(0)), 0x800); /* 0xfffff800 + 0x1000 mod 2^32 */
    harness_step_ns(f->vm, 0x1000 * 10);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 2);
    assert_int_equal(rd64(f, COUNTER), 0x100000800ull);
}

/* Very short periods are coalesced: at most one interrupt per 10 us, the comparator keeps ahead. */
static void test_periodic_coalesced(void **state)
{
    struct fixture *f = *state;
    wr64(f, TN_CFG(0), TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | TN_ROUTE(20));
    wr64(f, TN_CMP(0), 1);
    wr64(f, TN_CMP(0), 1); /* one tick */
    wr64(f, CONFIG, CFG_ENABLE);
    harness_step_ns(f->vm, MS);
    unsigned rises = harness_gsi_rises(f->vm, 20);
    assert_true(rises >= 50 && rises <= 101);
    assert_true(rd64(f, TN_CMP(0)) >= 100000 - 1000);
    /* A period of zero matches once per counter wrap, without spinning. */
    wr64(f, TN_CFG(0), TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | TN_32BIT | TN_ROUTE(20));
    wr64(f, TN_CMP(0), 0);
    harness_step_ns(f->vm, MS);
    harness_gsi_clear(f->vm);
    harness_step_ns(f->vm, MS);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 0);
}

/* Level-triggered: status bit and line held until written 1; INT_ENB and ENABLE gate the line. */
static void test_level_status(void **state)
{
    struct fixture *f = *state;
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_LEVEL | TN_ROUTE(21));
    wr64(f, TN_CMP(2), 100);
    wr64(f, CONFIG, CFG_ENABLE);
    harness_step_ns(f->vm, US);
    assert_int_equal(rd64(f, STATUS), 1u << 2);
    assert_true(harness_gsi_level(f->vm, 21));
    wr64(f, STATUS, 0x3); /* other bits: nothing */
    assert_int_equal(rd64(f, STATUS), 1u << 2);
    assert_true(harness_gsi_level(f->vm, 21));
    /* Interrupt disabled: the line drops, the status stays; enabled again: back. */
    wr64(f, TN_CFG(2), TN_LEVEL | TN_ROUTE(21));
    assert_false(harness_gsi_level(f->vm, 21));
    assert_int_equal(rd64(f, STATUS), 1u << 2);
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_LEVEL | TN_ROUTE(21));
    assert_true(harness_gsi_level(f->vm, 21));
    /* Halting the counter masks every timer interrupt. */
    wr64(f, CONFIG, 0);
    assert_false(harness_gsi_level(f->vm, 21));
    wr64(f, CONFIG, CFG_ENABLE);
    assert_true(harness_gsi_level(f->vm, 21));
    /* A 32-bit write of 1 clears it. */
    wr32(f, STATUS, 1u << 2);
    assert_int_equal(rd64(f, STATUS), 0);
    assert_false(harness_gsi_level(f->vm, 21));
    /* Switching a pending level timer to edge drops its status and line. */
    wr64(f, TN_CMP(2), rd64(f, COUNTER) + 10);
    harness_step_ns(f->vm, US);
    assert_true(harness_gsi_level(f->vm, 21));
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_ROUTE(21));
    assert_false(harness_gsi_level(f->vm, 21));
    assert_int_equal(rd64(f, STATUS), 0);
}

/* Routes outside INT_ROUTE_CAP are not taken; a route change moves a held level. */
static void test_routing(void **state)
{
    struct fixture *f = *state;
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_LEVEL | TN_ROUTE(5));
    assert_int_equal((rd64(f, TN_CFG(2)) >> 9) & 0x1f, 0); /* not in the capability: the reset route stays */
    wr64(f, TN_CMP(2), 10);
    wr64(f, CONFIG, CFG_ENABLE);
    harness_step_ns(f->vm, US);
    assert_int_equal(rd64(f, STATUS), 1u << 2); /* matched ... */
    for (unsigned gsi = 0; gsi < PDM_GSI_COUNT; gsi++)
        assert_false(harness_gsi_level(f->vm, gsi)); /* ... but route 0 is connected to nothing */
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_LEVEL | TN_ROUTE(21));
    assert_true(harness_gsi_level(f->vm, 21));
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_LEVEL | TN_ROUTE(2)); /* pin 2 is the PIT's: not offered */
    assert_int_equal((rd64(f, TN_CFG(2)) >> 9) & 0x1f, 21);
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_LEVEL | TN_ROUTE(22));
    assert_false(harness_gsi_level(f->vm, 21));
    assert_true(harness_gsi_level(f->vm, 22));
    wr64(f, STATUS, 1u << 2);
    assert_false(harness_gsi_level(f->vm, 22));
}

/* Legacy replacement: timers 0 and 1 on IRQ 0 and IRQ 8, the PIT and RTC outputs muted meanwhile. */
static void test_legacy(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(f->legacy_calls, 1); /* told at once when the listener was installed */
    assert_false(f->legacy);
    /* PIT counter 0, mode 2, count 100: about 11.9 kHz. */
    harness_outb(f->vm, 0x43, 0x34);
    harness_outb(f->vm, 0x40, 100);
    harness_outb(f->vm, 0x40, 0);
    harness_step_ns(f->vm, MS);
    unsigned pit_rises = harness_gsi_rises(f->vm, 0);
    assert_true(pit_rises >= 11 && pit_rises <= 13);
    /* RTC periodic interrupt (1024 Hz): IRQ 8 goes high and stays until register C is read. */
    harness_outb(f->vm, 0x70, 0x0b);
    harness_outb(f->vm, 0x71, 0x42);
    harness_step_ns(f->vm, 2 * MS);
    assert_true(harness_gsi_level(f->vm, 8));

    /* Timer 0 periodic 1 ms, timer 1 one-shot at 2.5 ms; routes point elsewhere but legacy mode wins. */
    wr64(f, TN_CFG(0), TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | TN_ROUTE(20));
    wr64(f, TN_CMP(0), 100000);
    wr64(f, TN_CMP(0), 100000);
    wr64(f, TN_CFG(1), TN_INT_ENB | TN_ROUTE(21));
    wr64(f, TN_CMP(1), 250000);
    wr64(f, CONFIG, CFG_ENABLE | CFG_LEG_RT);
    assert_int_equal(f->legacy_calls, 2);
    assert_true(f->legacy);
    assert_false(harness_gsi_level(f->vm, 8)); /* the RTC's held level is disconnected */
    harness_gsi_clear(f->vm);
    harness_step_ns(f->vm, 10 * MS);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 10);  /* the HPET's, not the PIT's 119 */
    assert_int_equal(harness_gsi_rises(f->vm, 8), 1);   /* timer 1, not the RTC */
    assert_int_equal(harness_gsi_rises(f->vm, 20), 0);
    assert_int_equal(harness_gsi_rises(f->vm, 21), 0);
    /* Rewriting the configuration with legacy mode unchanged tells nobody. */
    wr64(f, CONFIG, CFG_ENABLE | CFG_LEG_RT);
    assert_int_equal(f->legacy_calls, 2);

    /* Leaving legacy mode: timers go back to their routes, the PIT and RTC reconnect. */
    wr64(f, CONFIG, CFG_ENABLE);
    assert_int_equal(f->legacy_calls, 3);
    assert_false(f->legacy);
    assert_true(harness_gsi_level(f->vm, 8));
    harness_gsi_clear(f->vm);
    harness_step_ns(f->vm, 10 * MS);
    assert_true(harness_gsi_rises(f->vm, 0) >= 110);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 10);

    /* Reset ends legacy mode and tells the board. */
    pdm_dev_reset_all(f->vm);
    assert_false(f->legacy);
    assert_int_equal(rd64(f, CONFIG), 0);
}

/* Saved state with a one-shot and a periodic timer armed: they fire at the same virtual times after a load. */
static void test_save_load(void **state)
{
    struct fixture *f = *state;
    wr64(f, TN_CFG(0), TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | TN_32BIT);
    wr64(f, TN_CMP(0), 100000);
    wr64(f, TN_CMP(0), 100000);
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_LEVEL | TN_ROUTE(23));
    wr64(f, TN_CMP(2), 150000);
    wr64(f, CONFIG, CFG_ENABLE | CFG_LEG_RT);
    harness_step_ns(f->vm, MS / 2);
    uint64_t counter = rd64(f, COUNTER);
    unsigned calls = f->legacy_calls;
    assert_int_equal(harness_dev_save_reset_load(f->hpet), 0);
    assert_true(f->legacy_calls >= calls + 2); /* reset (off), then load (on) */
    assert_true(f->legacy);
    assert_int_equal(rd64(f, COUNTER), counter);
    assert_int_equal(rd64(f, CONFIG), CFG_ENABLE | CFG_LEG_RT);
    assert_int_equal(rd64(f, TN_CMP(0)), 100000);
    harness_gsi_clear(f->vm);
    harness_step_ns(f->vm, MS / 2 - 10);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 0);
    harness_step_ns(f->vm, 10);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 1);
    harness_step_ns(f->vm, MS / 2);
    assert_true(harness_gsi_level(f->vm, 23));
    assert_int_equal(rd64(f, STATUS), 1u << 2);
    /* A held level survives a round trip too. */
    assert_int_equal(harness_dev_save_reset_load(f->hpet), 0);
    assert_true(harness_gsi_level(f->vm, 23));
    harness_step_ns(f->vm, MS / 2);
    assert_int_equal(harness_gsi_rises(f->vm, 0), 2);
    assert_int_equal(rd64(f, TN_CMP(0)), 300000);
}

static int load_bytes(struct fixture *f, const void *data, size_t len)
{
    struct ssm *in = NULL;
    assert_int_equal(ssm_open(data, len, &in), 0);
    int rc = g_dev_hpet.load(f->hpet, in, g_dev_hpet.ssm_version);
    ssm_destroy(in);
    return rc;
}

/* Corrupt saved state is refused; an older or newer version too. */
static void test_load_corrupt(void **state)
{
    struct fixture *f = *state;
    struct ssm *out = NULL;
    assert_int_equal(ssm_create(&out), 0);
    assert_int_equal(g_dev_hpet.save(f->hpet, out), 0);
    size_t len;
    const uint8_t *data = ssm_data(out, &len);
    uint8_t *copy = malloc(len);
    memcpy(copy, data, len);
    assert_int_equal(load_bytes(f, copy, len), 0);
    assert_int_not_equal(load_bytes(f, copy, len - 1), 0); /* truncated */
    copy[0] = 0x80;                                        /* configuration bit outside the register */
    assert_int_equal(load_bytes(f, copy, len), VERR_SSM_CORRUPT);
    memcpy(copy, data, len);
    copy[24] = 4;                                          /* timer count */
    assert_int_equal(load_bytes(f, copy, len), VERR_SSM_CORRUPT);
    memcpy(copy, data, len);
    copy[25 + 32] = TN_PERIODIC;                           /* timer 1 periodic: not offered */
    assert_int_equal(load_bytes(f, copy, len), VERR_SSM_CORRUPT);
    struct ssm *in = NULL;
    assert_int_equal(ssm_open(data, len, &in), 0);
    assert_int_equal(g_dev_hpet.load(f->hpet, in, g_dev_hpet.ssm_version + 1), VERR_SSM_VERSION);
    ssm_destroy(in);
    free(copy);
    ssm_destroy(out);
}

/* Random accesses of every size at every offset, with time passing: nothing breaks, the identity holds. */
static void test_garbage(void **state)
{
    struct fixture *f = *state;
    uint64_t cap = rd64(f, CAP);
    uint32_t seed = 0x4e7f00d1;
    for (unsigned i = 0; i < 200000; i++) {
        uint32_t r = harness_rand(&seed);
        uint64_t v = (uint64_t)harness_rand(&seed) << 32 | harness_rand(&seed);
        unsigned size = 1u << (r & 3);
        uint64_t off = (r >> 2) % (PC_HPET_LEN + 16);
        /* Bias towards the registers that do something. */
        if (r & 0x80000000u)
            off = (r >> 4) & 0x13f;
        switch ((r >> 12) & 7) {
        case 0:
        case 1:
        case 2:
            mem_mmio_write(f->vm, HPET + off, v, size);
            break;
        case 3:
        case 4:
            (void)mem_mmio_read(f->vm, HPET + off, size);
            break;
        case 5:
            harness_step_ns(f->vm, v % (50 * US));
            break;
        case 6:
            if ((v & 0xff) == 0)
                harness_step_ns(f->vm, v % (50ull * 1000 * MS));
            break;
        default:
            if ((v & 0xfff) == 0)
                assert_int_equal(harness_dev_save_reset_load(f->hpet), 0);
            break;
        }
    }
    assert_int_equal(rd64(f, CAP), cap);
    assert_int_equal(rd64(f, CONFIG) & ~3ull, 0);
    assert_int_equal(rd64(f, STATUS) & ~7ull, 0);
    assert_int_equal(harness_dev_save_reset_load(f->hpet), 0);
    /* Still a working device afterwards. */
    pdm_dev_reset_all(f->vm);
    harness_gsi_clear(f->vm);
    wr64(f, TN_CFG(2), TN_INT_ENB | TN_ROUTE(20));
    wr64(f, TN_CMP(2), 1000);
    wr64(f, CONFIG, CFG_ENABLE);
    harness_step_ns(f->vm, 10 * US);
    assert_int_equal(harness_gsi_rises(f->vm, 20), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oneshot_64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oneshot_32_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_coalesced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
