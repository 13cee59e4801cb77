/* tstRtc.c - MC146818 RTC tests: seeded time and rollovers, data modes, SET, divider, UIP, periodic/alarm/update
 * interrupts, NVRAM, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define RTC_INDEX    0x70
#define RTC_DATA     0x71
#define RTC_INDEX_HI 0x72
#define RTC_DATA_HI  0x73
#define GSI          8
#define NS_PER_MS    1000000ull
#define NS_PER_S     1000000000ull
/* 2024-02-29 23:59:58 UTC, a Thursday. */
#define EPOCH_LEAP_DAY 1709251198ull
/* 2000-01-01 00:00:00 UTC, a Saturday. */
#define EPOCH_Y2K 946684800ull

#define REG_SEC        0x00
#define REG_SEC_ALARM  0x01
#define REG_MIN        0x02
#define REG_MIN_ALARM  0x03
#define REG_HOUR       0x04
#define REG_HOUR_ALARM 0x05
#define REG_DOW        0x06
#define REG_DAY        0x07
#define REG_MONTH      0x08
#define REG_YEAR       0x09
#define REG_A          0x0a
#define REG_B          0x0b
#define REG_C          0x0c
#define REG_D          0x0d
#define REG_CENTURY    0x32
#define A_UIP          0x80
#define B_SET          0x80
#define B_PIE          0x40
#define B_AIE          0x20
#define B_UIE          0x10
#define B_DM           0x04
#define B_24H          0x02
#define C_IRQF         0x80
#define C_PF           0x40
#define C_AF           0x20
#define C_UF           0x10

struct fixture {
    struct vm *vm;
    struct pdm_dev *rtc;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create(0);
    tm_set_boot_real_ns(f->vm, EPOCH_LEAP_DAY * NS_PER_S);
    f->rtc = harness_dev_create(f->vm, &g_dev_mc146818, "rtc", NULL);
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

static uint8_t rd(struct vm *vm, uint8_t index)
{
    harness_outb(vm, RTC_INDEX, index);
    return harness_inb(vm, RTC_DATA);
}

static void wr(struct vm *vm, uint8_t index, uint8_t value)
{
    harness_outb(vm, RTC_INDEX, index);
    harness_outb(vm, RTC_DATA, value);
}

static void step_to_ns(struct vm *vm, uint64_t t)
{
    uint64_t now = tm_now_ns(vm);
    assert_true(t >= now);
    harness_step_ns(vm, t - now);
}

/* Steps `total` ns in `step` increments, reading register C whenever the IRQ is up; returns the count. */
static unsigned count_irqs(struct vm *vm, uint64_t total, uint64_t step, uint8_t expect_flag)
{
    unsigned n = 0;
    uint64_t end = tm_now_ns(vm) + total;
    while (tm_now_ns(vm) < end) {
        harness_step_ns(vm, RT_MIN(step, end - tm_now_ns(vm)));
        if (harness_gsi_level(vm, GSI)) {
            uint8_t c = rd(vm, REG_C);
            assert_int_equal(c & (C_IRQF | expect_flag), C_IRQF | expect_flag);
            assert_false(harness_gsi_level(vm, GSI));
            n++;
        }
    }
    return n;
}

static void set_time_bcd(struct vm *vm, uint8_t century, uint8_t year, uint8_t month, uint8_t day, uint8_t dow,
                         uint8_t hour, uint8_t min, uint8_t sec)
{
    uint8_t b = rd(vm, REG_B);
    wr(vm, REG_B, b | B_SET);
    wr(vm, REG_SEC, sec);
    wr(vm, REG_MIN, min);
    wr(vm, REG_HOUR, hour);
    wr(vm, REG_DOW, dow);
    wr(vm, REG_DAY, day);
    wr(vm, REG_MONTH, month);
    wr(vm, REG_YEAR, year);
    wr(vm, REG_CENTURY, century);
    wr(vm, REG_B, b & (uint8_t)~B_SET);
}

static void test_seeded_time_and_rollovers(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f->vm, REG_SEC), 0x58);
    assert_int_equal(rd(f->vm, REG_MIN), 0x59);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x23);
    assert_int_equal(rd(f->vm, REG_DOW), 5);
    assert_int_equal(rd(f->vm, REG_DAY), 0x29);
    assert_int_equal(rd(f->vm, REG_MONTH), 0x02);
    assert_int_equal(rd(f->vm, REG_YEAR), 0x24);
    assert_int_equal(rd(f->vm, REG_CENTURY), 0x20);
    assert_int_equal(rd(f->vm, REG_A), 0x26);
    assert_int_equal(rd(f->vm, REG_B), B_24H);
    assert_int_equal(rd(f->vm, REG_D), 0x80);
    harness_step_ns(f->vm, NS_PER_S - 1);
    assert_int_equal(rd(f->vm, REG_SEC), 0x58);
    harness_step_ns(f->vm, 1);
    assert_int_equal(rd(f->vm, REG_SEC), 0x59);
    /* Leap day rolls over into March. */
    harness_step_ns(f->vm, NS_PER_S);
    assert_int_equal(rd(f->vm, REG_SEC), 0x00);
    assert_int_equal(rd(f->vm, REG_MIN), 0x00);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x00);
    assert_int_equal(rd(f->vm, REG_DAY), 0x01);
    assert_int_equal(rd(f->vm, REG_MONTH), 0x03);
    assert_int_equal(rd(f->vm, REG_DOW), 6);
    /* Only the virtual clock moves it: an hour of virtual time is an hour. */
    harness_step_ns(f->vm, 3600 * NS_PER_S);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x01);
    assert_int_equal(rd(f->vm, REG_MIN), 0x00);
    /* Century rollover, with the day of week kept as written. */
    set_time_bcd(f->vm, 0x20, 0x99, 0x12, 0x31, 5, 0x23, 0x59, 0x59);
    assert_int_equal(rd(f->vm, REG_YEAR), 0x99);
    harness_step_ns(f->vm, NS_PER_S);
    assert_int_equal(rd(f->vm, REG_SEC), 0x00);
    assert_int_equal(rd(f->vm, REG_DAY), 0x01);
    assert_int_equal(rd(f->vm, REG_MONTH), 0x01);
    assert_int_equal(rd(f->vm, REG_YEAR), 0x00);
    assert_int_equal(rd(f->vm, REG_CENTURY), 0x21);
    assert_int_equal(rd(f->vm, REG_DOW), 6);
    /* 2100 is not a leap year: February 28 is followed by March 1. */
    set_time_bcd(f->vm, 0x21, 0x00, 0x02, 0x28, 1, 0x23, 0x59, 0x59);
    harness_step_ns(f->vm, NS_PER_S);
    assert_int_equal(rd(f->vm, REG_MONTH), 0x03);
    assert_int_equal(rd(f->vm, REG_DAY), 0x01);
    assert_int_equal(rd(f->vm, REG_DOW), 2);
}

static void test_sub_second_seed(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    tm_set_boot_real_ns(vm, EPOCH_LEAP_DAY * NS_PER_S + 300 * NS_PER_MS);
    harness_dev_create(vm, &g_dev_mc146818, "rtc", NULL);
    /* Power-on was 300 ms into second :58, so :59 starts 700 ms later. */
    harness_step_ns(vm, 700 * NS_PER_MS - 1);
    assert_int_equal(rd(vm, REG_SEC), 0x58);
    harness_step_ns(vm, 1);
    assert_int_equal(rd(vm, REG_SEC), 0x59);
    harness_vm_destroy(vm);
}

static void test_binary_and_12_hour(void **state)
{
    struct fixture *f = *state;
    wr(f->vm, REG_B, B_DM | B_24H);
    assert_int_equal(rd(f->vm, REG_SEC), 58);
    assert_int_equal(rd(f->vm, REG_MIN), 59);
    assert_int_equal(rd(f->vm, REG_HOUR), 23);
    assert_int_equal(rd(f->vm, REG_DAY), 29);
    assert_int_equal(rd(f->vm, REG_YEAR), 24);
    assert_int_equal(rd(f->vm, REG_CENTURY), 20);
    /* 12-hour mode: 11 PM is 11 with bit 7. */
    wr(f->vm, REG_B, B_DM);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x80 | 11);
    wr(f->vm, REG_B, 0);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x91);
    harness_step_ns(f->vm, 2 * NS_PER_S);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x12); /* midnight is 12 AM */
    /* Setting 1 PM in 12-hour BCD, then reading it in 24-hour mode. */
    wr(f->vm, REG_B, B_SET);
    wr(f->vm, REG_HOUR, 0x81);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x81);
    wr(f->vm, REG_B, 0);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x81);
    wr(f->vm, REG_B, B_24H);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x13);
    /* Binary time written while running. */
    wr(f->vm, REG_B, B_DM | B_24H);
    wr(f->vm, REG_MIN, 42);
    assert_int_equal(rd(f->vm, REG_MIN), 42);
    assert_int_equal(rd(f->vm, REG_HOUR), 13);
}

static void test_set_bit(void **state)
{
    struct fixture *f = *state;
    /* SET stops updates and clears UIE. */
    wr(f->vm, REG_B, B_SET | B_UIE | B_24H);
    assert_int_equal(rd(f->vm, REG_B), B_SET | B_24H);
    harness_step_ns(f->vm, 5 * NS_PER_S);
    assert_int_equal(rd(f->vm, REG_SEC), 0x58);
    assert_int_equal(rd(f->vm, REG_A) & A_UIP, 0);
    wr(f->vm, REG_SEC, 0x56);
    wr(f->vm, REG_MIN, 0x34);
    wr(f->vm, REG_HOUR, 0x12);
    wr(f->vm, REG_DOW, 7);
    wr(f->vm, REG_DAY, 0x01);
    wr(f->vm, REG_MONTH, 0x01);
    wr(f->vm, REG_YEAR, 0x00);
    /* While SET holds, registers read back exactly as written, even out of range. */
    wr(f->vm, REG_CENTURY, 0x7a);
    assert_int_equal(rd(f->vm, REG_CENTURY), 0x7a);
    wr(f->vm, REG_CENTURY, 0x20);
    assert_int_equal(rd(f->vm, REG_SEC), 0x56);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x12);
    /* Clearing SET resumes at the divider's next update, one second after the last. */
    wr(f->vm, REG_B, B_24H);
    harness_step_ns(f->vm, NS_PER_S - 1);
    assert_int_equal(rd(f->vm, REG_SEC), 0x56);
    harness_step_ns(f->vm, 1);
    assert_int_equal(rd(f->vm, REG_SEC), 0x57);
    assert_int_equal(rd(f->vm, REG_MIN), 0x34);
    assert_int_equal(rd(f->vm, REG_DAY), 0x01);
    assert_int_equal(rd(f->vm, REG_YEAR), 0x00);
    assert_int_equal(rd(f->vm, REG_CENTURY), 0x20);
    assert_int_equal(rd(f->vm, REG_DOW), 7);
    /* A field written while running changes only that field. */
    harness_step_ns(f->vm, 300 * NS_PER_MS);
    wr(f->vm, REG_MIN, 0x10);
    assert_int_equal(rd(f->vm, REG_MIN), 0x10);
    assert_int_equal(rd(f->vm, REG_SEC), 0x57);
    harness_step_ns(f->vm, 700 * NS_PER_MS);
    assert_int_equal(rd(f->vm, REG_SEC), 0x58);
    /* Out-of-range values are clamped when counting resumes. */
    wr(f->vm, REG_B, B_SET | B_24H);
    wr(f->vm, REG_SEC, 0x75);
    wr(f->vm, REG_MONTH, 0x02);
    wr(f->vm, REG_DAY, 0x31);
    assert_int_equal(rd(f->vm, REG_SEC), 0x75);
    wr(f->vm, REG_B, B_24H);
    assert_int_equal(rd(f->vm, REG_SEC), 0x59);
    assert_int_equal(rd(f->vm, REG_DAY), 0x29); /* 2000 is a leap year */
}

static void test_divider_control(void **state)
{
    struct fixture *f = *state;
    /* Divider held in reset: time stands still and there is no UIP or periodic flag. */
    wr(f->vm, REG_A, 0x76);
    harness_step_ns(f->vm, 3 * NS_PER_S);
    assert_int_equal(rd(f->vm, REG_SEC), 0x58);
    assert_int_equal(rd(f->vm, REG_A), 0x76);
    assert_int_equal(rd(f->vm, REG_C), 0x00);
    /* Out of reset: the first update is half a second later. */
    wr(f->vm, REG_A, 0x26);
    harness_step_ns(f->vm, 500 * NS_PER_MS - 1);
    assert_int_equal(rd(f->vm, REG_SEC), 0x58);
    harness_step_ns(f->vm, 1);
    assert_int_equal(rd(f->vm, REG_SEC), 0x59);
    harness_step_ns(f->vm, NS_PER_S);
    assert_int_equal(rd(f->vm, REG_SEC), 0x00);
    /* Other time bases (000, 001) are not 32.768 kHz: the clock does not run. */
    wr(f->vm, REG_A, 0x06);
    harness_step_ns(f->vm, 2 * NS_PER_S);
    assert_int_equal(rd(f->vm, REG_SEC), 0x00);
}

static void test_uip(void **state)
{
    struct fixture *f = *state;
    /* UIP is set 244 us (8 counts of 32.768 kHz) before each update. */
    step_to_ns(f->vm, NS_PER_S - 245000);
    assert_int_equal(rd(f->vm, REG_A), 0x26);
    step_to_ns(f->vm, NS_PER_S - 244000);
    assert_int_equal(rd(f->vm, REG_A), A_UIP | 0x26);
    step_to_ns(f->vm, NS_PER_S - 1);
    assert_int_equal(rd(f->vm, REG_A) & A_UIP, A_UIP);
    assert_int_equal(rd(f->vm, REG_SEC), 0x58);
    step_to_ns(f->vm, NS_PER_S);
    assert_int_equal(rd(f->vm, REG_A) & A_UIP, 0);
    assert_int_equal(rd(f->vm, REG_SEC), 0x59);
    /* A write cannot set UIP, and SET clears it. */
    wr(f->vm, REG_A, A_UIP | 0x26);
    assert_int_equal(rd(f->vm, REG_A), 0x26);
    step_to_ns(f->vm, 2 * NS_PER_S - 100000);
    assert_int_equal(rd(f->vm, REG_A) & A_UIP, A_UIP);
    wr(f->vm, REG_B, B_SET | B_24H);
    assert_int_equal(rd(f->vm, REG_A) & A_UIP, 0);
}

static void test_periodic_interrupt(void **state)
{
    struct fixture *f = *state;
    /* Rate 6: 1024 Hz. */
    wr(f->vm, REG_B, B_PIE | B_24H);
    assert_int_equal(count_irqs(f->vm, NS_PER_S, 100000, C_PF), 1024);
    assert_int_equal(harness_gsi_rises(f->vm, GSI), 1024);
    /* Rate 15: 2 Hz. */
    wr(f->vm, REG_A, 0x2f);
    assert_int_equal(count_irqs(f->vm, NS_PER_S, 10 * NS_PER_MS, C_PF), 2);
    /* Rate 3: 8192 Hz, 81 whole periods in 10 ms. */
    wr(f->vm, REG_A, 0x23);
    assert_int_equal(count_irqs(f->vm, 10 * NS_PER_MS, 50000, C_PF), 81);
    /* Rates 1 and 2 repeat 8 and 9 with a 32.768 kHz time base: 256 Hz. */
    wr(f->vm, REG_A, 0x21);
    assert_int_equal(count_irqs(f->vm, NS_PER_S, 1 * NS_PER_MS, C_PF), 256);
    /* Rate 0: none. */
    wr(f->vm, REG_A, 0x20);
    assert_int_equal(count_irqs(f->vm, NS_PER_S, 10 * NS_PER_MS, C_PF), 0);

    /* PF is set without PIE, but raises no interrupt; enabling PIE then raises it at once. */
    wr(f->vm, REG_A, 0x26);
    wr(f->vm, REG_B, B_24H);
    rd(f->vm, REG_C);
    harness_gsi_clear(f->vm);
    harness_step_ns(f->vm, 10 * NS_PER_MS);
    assert_false(harness_gsi_level(f->vm, GSI));
    assert_int_equal(harness_gsi_rises(f->vm, GSI), 0);
    wr(f->vm, REG_B, B_PIE | B_24H);
    assert_true(harness_gsi_level(f->vm, GSI));
    assert_int_equal(rd(f->vm, REG_C), C_IRQF | C_PF);
    assert_false(harness_gsi_level(f->vm, GSI));
    /* Register C clears on read. */
    assert_int_equal(rd(f->vm, REG_C), 0x00);
    /* Disabling PIE drops a pending IRQ. */
    harness_step_ns(f->vm, NS_PER_MS);
    assert_true(harness_gsi_level(f->vm, GSI));
    wr(f->vm, REG_B, B_24H);
    assert_false(harness_gsi_level(f->vm, GSI));
    assert_int_equal(rd(f->vm, REG_C), C_PF);
}

static void test_alarm(void **state)
{
    struct fixture *f = *state;
    wr(f->vm, REG_A, 0x20); /* no periodic flag in the way */
    wr(f->vm, REG_SEC_ALARM, 0x00);
    wr(f->vm, REG_MIN_ALARM, 0x00);
    wr(f->vm, REG_HOUR_ALARM, 0x00);
    wr(f->vm, REG_B, B_AIE | B_24H);
    harness_step_ns(f->vm, NS_PER_S);
    assert_false(harness_gsi_level(f->vm, GSI));
    harness_step_ns(f->vm, NS_PER_S - 1);
    assert_false(harness_gsi_level(f->vm, GSI));
    harness_step_ns(f->vm, 1);
    assert_true(harness_gsi_level(f->vm, GSI));
    assert_int_equal(rd(f->vm, REG_C), C_IRQF | C_AF | C_UF);
    assert_int_equal(rd(f->vm, REG_C), 0x00);
    /* "Don't care" hours and minutes: every minute at :30. */
    wr(f->vm, REG_SEC_ALARM, 0x30);
    wr(f->vm, REG_MIN_ALARM, 0xc0);
    wr(f->vm, REG_HOUR_ALARM, 0xff);
    harness_step_ns(f->vm, 29 * NS_PER_S);
    assert_false(harness_gsi_level(f->vm, GSI));
    harness_step_ns(f->vm, NS_PER_S);
    assert_true(harness_gsi_level(f->vm, GSI));
    rd(f->vm, REG_C);
    assert_int_equal(count_irqs(f->vm, 150 * NS_PER_S, 500 * NS_PER_MS, C_AF), 2);
    /* All three "don't care": every second. */
    wr(f->vm, REG_SEC_ALARM, 0xc0);
    assert_int_equal(count_irqs(f->vm, 5 * NS_PER_S, 100 * NS_PER_MS, C_AF), 5);
    /* AF is set on a match even with AIE off, without IRQF. */
    wr(f->vm, REG_B, B_24H);
    rd(f->vm, REG_C);
    harness_step_ns(f->vm, NS_PER_S);
    assert_false(harness_gsi_level(f->vm, GSI));
    assert_int_equal(rd(f->vm, REG_C), C_AF | C_UF);
    /* A match long ago (no access for two days) is still seen, lazily. */
    wr(f->vm, REG_SEC_ALARM, 0x17);
    wr(f->vm, REG_MIN_ALARM, 0x17);
    wr(f->vm, REG_HOUR_ALARM, 0x17);
    rd(f->vm, REG_C);
    harness_step_ns(f->vm, 2 * 86400 * NS_PER_S);
    assert_int_equal(rd(f->vm, REG_C), C_AF | C_UF);
    /* An alarm that never matches (invalid BCD seconds) never fires. */
    wr(f->vm, REG_SEC_ALARM, 0x7f);
    wr(f->vm, REG_B, B_AIE | B_24H);
    harness_step_ns(f->vm, 86400 * NS_PER_S + NS_PER_S);
    assert_false(harness_gsi_level(f->vm, GSI));
    assert_int_equal(rd(f->vm, REG_C), C_UF);
    /* 12-hour alarm: 1 PM is 0x81. */
    wr(f->vm, REG_B, B_SET);
    wr(f->vm, REG_HOUR, 0x81);
    wr(f->vm, REG_MIN, 0x00);
    wr(f->vm, REG_SEC, 0x00);
    wr(f->vm, REG_HOUR_ALARM, 0x81);
    wr(f->vm, REG_MIN_ALARM, 0x00);
    wr(f->vm, REG_SEC_ALARM, 0x05);
    wr(f->vm, REG_B, B_AIE);
    assert_int_equal(count_irqs(f->vm, 10 * NS_PER_S, 100 * NS_PER_MS, C_AF), 1);
}

static void test_update_ended_interrupt(void **state)
{
    struct fixture *f = *state;
    wr(f->vm, REG_A, 0x20);
    wr(f->vm, REG_B, B_UIE | B_24H);
    harness_step_ns(f->vm, NS_PER_S - 1);
    assert_false(harness_gsi_level(f->vm, GSI));
    harness_step_ns(f->vm, 1);
    assert_true(harness_gsi_level(f->vm, GSI));
    assert_int_equal(rd(f->vm, REG_C), C_IRQF | C_UF);
    assert_int_equal(count_irqs(f->vm, 5 * NS_PER_S, 100 * NS_PER_MS, C_UF), 5);
    assert_int_equal(harness_gsi_rises(f->vm, GSI), 6);
    /* No updates while SET holds (and SET cleared UIE). */
    wr(f->vm, REG_B, B_SET | B_UIE | B_24H);
    assert_int_equal(count_irqs(f->vm, 3 * NS_PER_S, 100 * NS_PER_MS, C_UF), 0);
    assert_int_equal(rd(f->vm, REG_C), 0x00);
}

static void test_nvram(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != REG_CENTURY)
            wr(f->vm, (uint8_t)i, (uint8_t)(i * 7 + 3));
    for (unsigned i = 0; i < 0x80; i++) {
        harness_outb(f->vm, RTC_INDEX_HI, (uint8_t)i);
        harness_outb(f->vm, RTC_DATA_HI, (uint8_t)(i ^ 0x5a));
    }
    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != REG_CENTURY)
            assert_int_equal(rd(f->vm, (uint8_t)i), (uint8_t)(i * 7 + 3));
    for (unsigned i = 0; i < 0x80; i++) {
        harness_outb(f->vm, RTC_INDEX_HI, (uint8_t)i);
        assert_int_equal(harness_inb(f->vm, RTC_DATA_HI), (uint8_t)(i ^ 0x5a));
    }
    /* Bit 7 of port 0x70 is the NMI mask, not part of the index. */
    harness_outb(f->vm, RTC_INDEX, 0x80 | 0x40);
    assert_int_equal(harness_inb(f->vm, RTC_DATA), (uint8_t)(0x40 * 7 + 3));
    harness_outb(f->vm, RTC_INDEX_HI, 0xc5);
    assert_int_equal(harness_inb(f->vm, RTC_DATA_HI), 0x45 ^ 0x5a);
    /* The index ports are write-only. */
    assert_int_equal(harness_inb(f->vm, RTC_INDEX), 0xff);
    assert_int_equal(harness_inb(f->vm, RTC_INDEX_HI), 0xff);
    /* The board's helpers see the same bytes and the clock registers. */
    assert_int_equal(rtc_cmos_get(f->rtc, 0x40), (uint8_t)(0x40 * 7 + 3));
    assert_int_equal(rtc_cmos_get(f->rtc, 0x85), 0x05 ^ 0x5a);
    rtc_cmos_set(f->rtc, 0x34, 0xaa);
    rtc_cmos_set(f->rtc, 0xf0, 0xbb);
    assert_int_equal(rd(f->vm, 0x34), 0xaa);
    harness_outb(f->vm, RTC_INDEX_HI, 0x70);
    assert_int_equal(harness_inb(f->vm, RTC_DATA_HI), 0xbb);
    assert_int_equal(rtc_cmos_get(f->rtc, REG_A), 0x26);
    assert_int_equal(rtc_cmos_get(f->rtc, REG_SEC), 0x58);
    assert_int_equal(rtc_cmos_get(f->rtc, REG_CENTURY), 0x20);
    assert_int_equal(rtc_cmos_get(f->rtc, 300), 0xff);
    rtc_cmos_set(f->rtc, 300, 1);
    /* Register D is read-only. */
    wr(f->vm, REG_D, 0x00);
    assert_int_equal(rd(f->vm, REG_D), 0x80);
    /* A reset after power-on keeps the NVRAM and the time. */
    harness_step_ns(f->vm, NS_PER_S);
    pdm_dev_reset_all(f->vm);
    assert_int_equal(rd(f->vm, 0x34), 0xaa);
    assert_int_equal(rd(f->vm, REG_SEC), 0x59);
}

static void test_power_on_seed(void **state)
{
    struct fixture *f = *state;
    /* A reset at virtual time 0 is power-on: the clock takes the (new) seed. */
    tm_set_boot_real_ns(f->vm, EPOCH_Y2K * NS_PER_S);
    pdm_dev_reset_all(f->vm);
    assert_int_equal(rd(f->vm, REG_YEAR), 0x00);
    assert_int_equal(rd(f->vm, REG_MONTH), 0x01);
    assert_int_equal(rd(f->vm, REG_DAY), 0x01);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x00);
    assert_int_equal(rd(f->vm, REG_DOW), 7);
    harness_step_ns(f->vm, 10 * NS_PER_S);
    /* Later resets keep the running time, even a guest-set one. */
    wr(f->vm, REG_MIN, 0x05);
    tm_set_boot_real_ns(f->vm, EPOCH_LEAP_DAY * NS_PER_S);
    pdm_dev_reset_all(f->vm);
    assert_int_equal(rd(f->vm, REG_YEAR), 0x00);
    assert_int_equal(rd(f->vm, REG_MIN), 0x05);
    assert_int_equal(rd(f->vm, REG_SEC), 0x10);
    /* Reset clears the interrupt enables and flags. */
    wr(f->vm, REG_B, B_PIE | B_AIE | B_UIE | B_24H);
    harness_step_ns(f->vm, NS_PER_S);
    assert_true(harness_gsi_level(f->vm, GSI));
    pdm_dev_reset_all(f->vm);
    assert_false(harness_gsi_level(f->vm, GSI));
    assert_int_equal(rd(f->vm, REG_B), B_24H);
    assert_int_equal(rd(f->vm, REG_C), 0x00);
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != REG_CENTURY)
            wr(f->vm, (uint8_t)i, (uint8_t)(i + 1));
    harness_outb(f->vm, RTC_INDEX_HI, 0x11);
    harness_outb(f->vm, RTC_DATA_HI, 0x99);
    set_time_bcd(f->vm, 0x20, 0x10, 0x06, 0x15, 3, 0x08, 0x30, 0x00);
    wr(f->vm, REG_SEC_ALARM, 0x05);
    wr(f->vm, REG_MIN_ALARM, 0xc0);
    wr(f->vm, REG_HOUR_ALARM, 0xc0);
    wr(f->vm, REG_A, 0x2a); /* 64 Hz */
    wr(f->vm, REG_B, B_PIE | B_AIE | B_24H);
    harness_step_ns(f->vm, 2500 * NS_PER_MS);
    rd(f->vm, REG_C);
    harness_outb(f->vm, RTC_INDEX, REG_MIN);

    assert_int_equal(harness_dev_save_reset_load(f->rtc), 0);

    assert_int_equal(harness_inb(f->vm, RTC_DATA), 0x30); /* the index register survived */
    assert_int_equal(rd(f->vm, REG_SEC), 0x02);
    assert_int_equal(rd(f->vm, REG_HOUR), 0x08);
    assert_int_equal(rd(f->vm, REG_DAY), 0x15);
    assert_int_equal(rd(f->vm, REG_YEAR), 0x10);
    assert_int_equal(rd(f->vm, REG_DOW), 3);
    assert_int_equal(rd(f->vm, REG_A), 0x2a);
    assert_int_equal(rd(f->vm, REG_B), B_PIE | B_AIE | B_24H);
    for (unsigned i = 0x0e; i < 0x80; i++)
        if (i != REG_CENTURY)
            assert_int_equal(rd(f->vm, (uint8_t)i), (uint8_t)(i + 1));
    harness_outb(f->vm, RTC_INDEX_HI, 0x11);
    assert_int_equal(harness_inb(f->vm, RTC_DATA_HI), 0x99);
    /* Timers came back: 64 periodic interrupts a second, the alarm at :05. */
    assert_int_equal(count_irqs(f->vm, NS_PER_S, NS_PER_MS, 0), 64);
    assert_int_equal(count_irqs(f->vm, 2500 * NS_PER_MS, NS_PER_MS, 0), 160);
    assert_int_equal(rd(f->vm, REG_SEC), 0x06);

    /* Short and inconsistent streams are refused. */
    struct ssm *out = NULL, *in = NULL;
    assert_int_equal(ssm_create(&out), 0);
    assert_int_equal(g_dev_mc146818.save(f->rtc, out), 0);
    size_t len;
    const uint8_t *data = ssm_data(out, &len);
    assert_int_equal(ssm_open(data, len - 1, &in), 0);
    assert_int_not_equal(g_dev_mc146818.load(f->rtc, in, 1), 0);
    ssm_destroy(in);
    uint8_t *bad = malloc(len);
    memcpy(bad, data, len);
    bad[256 + 2] = 0xff; /* register C flags */
    assert_int_equal(ssm_open(bad, len, &in), 0);
    assert_int_equal(g_dev_mc146818.load(f->rtc, in, 1), VERR_SSM_CORRUPT);
    ssm_destroy(in);
    free(bad);
    ssm_destroy(out);
    assert_int_equal(rd(f->vm, REG_A), 0x2a);
}

static void test_config(void **state)
{
    (void)state;
    struct vm *vm = harness_vm_create(0);
    struct pdm_dev *dev = NULL;
    assert_int_equal(harness_dev_try_create(vm, &g_dev_mc146818, "r1", "irq=99", &dev), VERR_CFG_BAD_VALUE);
    assert_int_equal(harness_dev_try_create(vm, &g_dev_mc146818, "r2", "base=1", &dev), VERR_CFG_UNKNOWN_KEY);
    harness_dev_create(vm, &g_dev_mc146818, "rtc", "irq=5");
    wr(vm, REG_B, B_PIE | B_24H);
    harness_step_ns(vm, NS_PER_MS);
    assert_true(harness_gsi_level(vm, 5));
    assert_false(harness_gsi_level(vm, GSI));
    harness_vm_destroy(vm);
}

static void test_garbage(void **state)
{
    struct fixture *f = *state;
    enum { N = 4 * 256 };
    uint32_t ops[N];
    uint32_t seed = 0x146818;
    for (unsigned round = 0; round < 8; round++) {
        harness_shuffle(ops, N, &seed);
        for (unsigned i = 0; i < N; i++) {
            uint16_t port = (uint16_t)(RTC_INDEX + ops[i] / 256);
            uint8_t value = (uint8_t)(ops[i] % 256);
            uint32_t r = harness_rand(&seed);
            /* Half the data writes go to the registers that matter most. */
            if (port == RTC_DATA && (r & 1))
                harness_outb(f->vm, RTC_INDEX, (uint8_t)(r >> 8) % 0x0e);
            harness_outb(f->vm, port, value);
            if (r % 4 == 0)
                harness_step_ns(f->vm, (r >> 4) % (5 * NS_PER_MS));
            if (r % 8 == 1)
                harness_inb(f->vm, (uint16_t)(RTC_INDEX + (r >> 8) % 4));
        }
        harness_step_ns(f->vm, (uint64_t)harness_rand(&seed) % (100 * NS_PER_S));
        assert_int_equal(harness_dev_save_reset_load(f->rtc), 0);
    }
    /* A proper setup still gives a working clock. */
    wr(f->vm, REG_A, 0x26);
    wr(f->vm, REG_B, B_SET | B_24H);
    set_time_bcd(f->vm, 0x20, 0x24, 0x02, 0x29, 5, 0x23, 0x59, 0x59);
    rd(f->vm, REG_C);
    uint64_t t = tm_now_ns(f->vm);
    step_to_ns(f->vm, t + 2 * NS_PER_S);
    assert_int_equal(rd(f->vm, REG_DAY), 0x01);
    assert_int_equal(rd(f->vm, REG_MONTH), 0x03);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seeded_time_and_rollovers, setup, teardown),
        cmocka_unit_test(test_sub_second_seed),
        cmocka_unit_test_setup_teardown(test_binary_and_12_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divider_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_ended_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nvram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_on_seed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test(test_config),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
