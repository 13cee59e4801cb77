/* mc146818.c - the MC146818 real-time clock with 256 bytes of CMOS NVRAM (ports 0x70-0x73). */

/*
 * Design: the clock is seeded from the host's wall clock at power-on
 * (tm_boot_real_ns) and afterwards follows only the virtual clock, so pausing and
 * saved state never make the guest's time jump (DESIGN.md, "Time").  A reset at
 * virtual time 0 is the power-on reset and (re)seeds the clock; later resets, like
 * the RESET pin of a battery-backed RTC, keep the time and the NVRAM.
 *
 * While the clock updates (divider 010 and SET clear), the time is `base_sec`
 * (seconds since the epoch, read as a UTC calendar) at the update boundary
 * `base_vns` (virtual ns) plus the whole seconds since.  The update boundaries and
 * the 32.768 kHz divider chain that times the periodic interrupt and UIP are
 * anchored at base_vns.  While the clock is stopped (SET, or the divider held in
 * reset), the time registers hold raw bytes exactly as written, as the chip's
 * registers do; when updating resumes they are read back into base_sec.
 *
 * Register C's flags are set by events whether or not their interrupts are
 * enabled (datasheet, "Register C"), so flags are settled lazily: every access
 * that can observe or change them first accounts for the periodic ticks, updates
 * and alarm matches since the last settlement.  The timer is armed only for an
 * enabled interrupt whose flag is still clear, so an idle RTC costs nothing and a
 * guest polling UIP is served by arithmetic.  IRQF = PF.PIE + AF.AIE + UF.UIE, and
 * the IRQ line follows IRQF until register C is read.
 */

#include <string.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "rtc"

#define RTC_SSM_VERSION 1
#define RTC_PORT        0x70
#define RTC_NVRAM_BYTES 256

/* Register indices (datasheet, "Address Map"). */
#define RTC_SEC        0x00
#define RTC_SEC_ALARM  0x01
#define RTC_MIN        0x02
#define RTC_MIN_ALARM  0x03
#define RTC_HOUR       0x04
#define RTC_HOUR_ALARM 0x05
#define RTC_DOW        0x06
#define RTC_DAY        0x07
#define RTC_MONTH      0x08
#define RTC_YEAR       0x09
#define RTC_REG_A      0x0a
#define RTC_REG_B      0x0b
#define RTC_REG_C      0x0c
#define RTC_REG_D      0x0d
#define RTC_CENTURY    0x32 /* the PC's century byte (ACPI FADT CENTURY) */

#define RTC_A_UIP           0x80
#define RTC_A_DV_MASK       0x70
#define RTC_A_DV_32K        0x20
#define RTC_A_RS_MASK       0x0f
#define RTC_B_SET           0x80
#define RTC_B_PIE           0x40
#define RTC_B_AIE           0x20
#define RTC_B_UIE           0x10
#define RTC_B_SQWE          0x08
#define RTC_B_DM            0x04 /* binary when set, BCD when clear */
#define RTC_B_24H           0x02
#define RTC_C_IRQF          0x80
#define RTC_C_PF            0x40
#define RTC_C_AF            0x20
#define RTC_C_UF            0x10
#define RTC_D_VRT           0x80
#define RTC_ALARM_DONT_CARE 0xc0

/* The 32.768 kHz time base: update boundaries every 32768 counts. */
#define RTC_BASE_HZ 32768
/* UIP is set for the last 8 counts (244 us, tBUC) before an update. */
#define RTC_UIP_COUNTS   8
#define RTC_SECS_PER_DAY 86400
#define RTC_NEVER        INT64_MAX

struct rtc_state {
    struct pdm_dev *dev;
    struct vm *vm;
    struct io_region *io;
    struct pdm_irq *irq;
    struct tm_timer *timer;
    uint8_t cmos[RTC_NVRAM_BYTES]; /* time bytes hold the raw registers only while stopped */
    uint8_t reg_a;                 /* without UIP */
    uint8_t reg_b;
    uint8_t flags;              /* PF, AF, UF */
    uint8_t index_lo, index_hi; /* ports 0x70 and 0x72 */
    bool nmi_disabled;          /* port 0x70 bit 7 */
    bool irq_level;
    /* The IRQ output is connected unless the HPET's legacy replacement took IRQ 8 (wiring: not saved, not reset). */
    bool irq_connected;
    uint8_t dow_offset; /* day-of-week register minus the calendar's weekday, mod 7 */
    int64_t base_sec;
    int64_t base_vns;
    uint64_t flags_ns; /* flags are settled up to this virtual time */
};

/* ---- Calendar arithmetic (proleptic Gregorian, UTC) ------------------------------ */

static int64_t rtc_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t rtc_floor_mod(int64_t a, int64_t b)
{
    return a - rtc_floor_div(a, b) * b;
}

static bool rtc_is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static unsigned rtc_month_days(int64_t year, unsigned month)
{
    static const uint8_t days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && rtc_is_leap(year) ? 29 : days[(month - 1) % 12];
}

/* Days since 1970-01-01, counting in 400-year eras of 146097 days with years starting in March. */
static int64_t rtc_days_from_date(int64_t year, unsigned month, unsigned day)
{
    int64_t y = month <= 2 ? year - 1 : year;
    int64_t era = rtc_floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t mp = month > 2 ? month - 3 : month + 9;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void rtc_date_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    int64_t z = days + 719468;
    int64_t era = rtc_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2 ? 1 : 0);
}

struct rtc_tm {
    int64_t year;
    unsigned month, day, hour, min, sec, dow; /* dow: 1 = Sunday */
};

static void rtc_tm_from_sec(const struct rtc_state *s, int64_t t, struct rtc_tm *tm)
{
    int64_t days = rtc_floor_div(t, RTC_SECS_PER_DAY);
    int64_t sod = t - days * RTC_SECS_PER_DAY;
    rtc_date_from_days(days, &tm->year, &tm->month, &tm->day);
    tm->hour = (unsigned)(sod / 3600);
    tm->min = (unsigned)(sod / 60 % 60);
    tm->sec = (unsigned)(sod % 60);
    /* 1970-01-01 was a Thursday (4 with Sunday = 0). */
    tm->dow = (unsigned)rtc_floor_mod(days + 4 + s->dow_offset, 7) + 1;
}

/* ---- Register encoding (BCD or binary, 12 or 24 hour) ------------------------------ */

static bool rtc_is_bcd(const struct rtc_state *s)
{
    return !(s->reg_b & RTC_B_DM);
}

static uint8_t rtc_encode(const struct rtc_state *s, unsigned v)
{
    if (!rtc_is_bcd(s))
        return (uint8_t)v;
    v %= 100;
    return (uint8_t)((v / 10) << 4 | (v % 10));
}

static unsigned rtc_decode(const struct rtc_state *s, uint8_t v)
{
    return rtc_is_bcd(s) ? (v >> 4) * 10u + (v & 0xfu) : v;
}

/* 12-hour mode: 1-12 with bit 7 set for PM (datasheet, "Time, Calendar and Alarm Data Modes"). */
static uint8_t rtc_encode_hour(const struct rtc_state *s, unsigned hour)
{
    if (s->reg_b & RTC_B_24H)
        return rtc_encode(s, hour);
    unsigned h12 = hour % 12 ? hour % 12 : 12;
    return (uint8_t)(rtc_encode(s, h12) | (hour >= 12 ? 0x80 : 0));
}

static unsigned rtc_decode_hour(const struct rtc_state *s, uint8_t v)
{
    if (s->reg_b & RTC_B_24H)
        return rtc_decode(s, v);
    unsigned h = rtc_decode(s, v & 0x7f) % 12;
    return h + (v & 0x80 ? 12 : 0);
}

/* The register value of a time field, from broken-down time. */
static uint8_t rtc_tm_reg(const struct rtc_state *s, const struct rtc_tm *tm, unsigned index)
{
    switch (index) {
    case RTC_SEC:
        return rtc_encode(s, tm->sec);
    case RTC_MIN:
        return rtc_encode(s, tm->min);
    case RTC_HOUR:
        return rtc_encode_hour(s, tm->hour);
    case RTC_DOW:
        return rtc_encode(s, tm->dow);
    case RTC_DAY:
        return rtc_encode(s, tm->day);
    case RTC_MONTH:
        return rtc_encode(s, tm->month);
    case RTC_YEAR:
        return rtc_encode(s, (unsigned)rtc_floor_mod(tm->year, 100));
    default: /* RTC_CENTURY */
        return rtc_encode(s, (unsigned)(rtc_floor_div(tm->year, 100) & 0xff));
    }
}

static bool rtc_is_time_reg(unsigned index)
{
    return index == RTC_SEC || index == RTC_MIN || index == RTC_HOUR || index == RTC_CENTURY ||
           (index >= RTC_DOW && index <= RTC_YEAR);
}

static const uint8_t g_rtc_time_regs[] = {RTC_SEC, RTC_MIN,   RTC_HOUR, RTC_DOW,
                                          RTC_DAY, RTC_MONTH, RTC_YEAR, RTC_CENTURY};

static unsigned rtc_clamp(unsigned v, unsigned lo, unsigned hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/*
 * Reads the raw time bytes back into base_sec.  Values the calendar cannot hold
 * (minute 75, day 31 of April, invalid BCD digits) are clamped into range.
 */
static void rtc_time_from_regs(struct rtc_state *s)
{
    const uint8_t *r = s->cmos;
    int64_t year =
        (int64_t)rtc_clamp(rtc_decode(s, r[RTC_CENTURY]), 0, 255) * 100 + rtc_clamp(rtc_decode(s, r[RTC_YEAR]), 0, 99);
    unsigned month = rtc_clamp(rtc_decode(s, r[RTC_MONTH]), 1, 12);
    unsigned day = rtc_clamp(rtc_decode(s, r[RTC_DAY]), 1, rtc_month_days(year, month));
    unsigned hour = rtc_clamp(rtc_decode_hour(s, r[RTC_HOUR]), 0, 23);
    unsigned min = rtc_clamp(rtc_decode(s, r[RTC_MIN]), 0, 59);
    unsigned sec = rtc_clamp(rtc_decode(s, r[RTC_SEC]), 0, 59);
    int64_t days = rtc_days_from_date(year, month, day);
    s->base_sec = days * RTC_SECS_PER_DAY + hour * 3600 + min * 60 + sec;
    /* The day of week is an independent counter on the chip: keep what was written. */
    unsigned dow = rtc_decode(s, r[RTC_DOW]);
    if (dow >= 1 && dow <= 7)
        s->dow_offset = (uint8_t)rtc_floor_mod((int64_t)dow - 1 - (days + 4), 7);
}

/* ---- The divider chain and the clock ------------------------------------------------- */

static bool rtc_divider_on(const struct rtc_state *s)
{
    return (s->reg_a & RTC_A_DV_MASK) == RTC_A_DV_32K;
}

static bool rtc_is_updating(const struct rtc_state *s)
{
    return rtc_divider_on(s) && !(s->reg_b & RTC_B_SET);
}

/* 32.768 kHz counts since base_vns at virtual time t (0 before it). */
static uint64_t rtc_counts(const struct rtc_state *s, uint64_t t)
{
    int64_t diff = (int64_t)t - s->base_vns;
    if (diff <= 0)
        return 0;
    uint64_t d = (uint64_t)diff;
    return d / RT_NS_PER_SEC * RTC_BASE_HZ + d % RT_NS_PER_SEC * RTC_BASE_HZ / RT_NS_PER_SEC;
}

/* The first virtual time at which rtc_counts reaches c. */
static int64_t rtc_counts_to_ns(const struct rtc_state *s, uint64_t c)
{
    uint64_t rem = c % RTC_BASE_HZ;
    uint64_t off = c / RTC_BASE_HZ * RT_NS_PER_SEC + (rem * RT_NS_PER_SEC + RTC_BASE_HZ - 1) / RTC_BASE_HZ;
    return s->base_vns + (int64_t)off;
}

/* Periodic interrupt period in 32.768 kHz counts (datasheet, "Periodic Interrupt Rate"), 0: none. */
static uint64_t rtc_periodic_counts(const struct rtc_state *s)
{
    unsigned rs = s->reg_a & RTC_A_RS_MASK;
    if (rs == 0)
        return 0;
    if (rs <= 2)
        rs += 7; /* with a 32.768 kHz time base, rates 1 and 2 repeat rates 8 and 9 */
    return 1ull << (rs - 1);
}

static int64_t rtc_now_sec(const struct rtc_state *s, uint64_t now)
{
    if (!rtc_is_updating(s))
        return s->base_sec;
    return s->base_sec + (int64_t)(rtc_counts(s, now) / RTC_BASE_HZ);
}

/* Moves base_sec/base_vns to the last update boundary at or before now, keeping the phase. */
static void rtc_rebase(struct rtc_state *s, uint64_t now)
{
    uint64_t secs = rtc_counts(s, now) / RTC_BASE_HZ;
    if (rtc_is_updating(s))
        s->base_sec += (int64_t)secs;
    s->base_vns += (int64_t)(secs * RT_NS_PER_SEC);
}

/* Writes the current time into the raw time bytes (the clock is about to stop). */
static void rtc_regs_from_time(struct rtc_state *s)
{
    struct rtc_tm tm;
    rtc_tm_from_sec(s, s->base_sec, &tm);
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_rtc_time_regs); i++)
        s->cmos[g_rtc_time_regs[i]] = rtc_tm_reg(s, &tm, g_rtc_time_regs[i]);
}

/* ---- Alarm ----------------------------------------------------------------------------- */

static bool rtc_alarm_field_match(uint8_t alarm, uint8_t value)
{
    return (alarm & RTC_ALARM_DONT_CARE) == RTC_ALARM_DONT_CARE || alarm == value;
}

/*
 * The first second in (after, after + one day] whose time matches the alarm bytes
 * (in the current data mode), or RTC_NEVER.  The alarm repeats at least daily, so
 * a day of search is enough; whole hours and minutes that cannot match are skipped.
 */
static int64_t rtc_alarm_next(const struct rtc_state *s, int64_t after)
{
    int64_t t = after + 1;
    while (t <= after + RTC_SECS_PER_DAY) {
        int64_t sod = rtc_floor_mod(t, RTC_SECS_PER_DAY);
        unsigned hour = (unsigned)(sod / 3600), min = (unsigned)(sod / 60 % 60), sec = (unsigned)(sod % 60);
        if (!rtc_alarm_field_match(s->cmos[RTC_HOUR_ALARM], rtc_encode_hour(s, hour))) {
            t += 3600 - (int64_t)(min * 60 + sec);
            continue;
        }
        if (!rtc_alarm_field_match(s->cmos[RTC_MIN_ALARM], rtc_encode(s, min))) {
            t += 60 - (int64_t)sec;
            continue;
        }
        if (!rtc_alarm_field_match(s->cmos[RTC_SEC_ALARM], rtc_encode(s, sec))) {
            t++;
            continue;
        }
        return t;
    }
    return RTC_NEVER;
}

/* ---- Flags, IRQ and timer ---------------------------------------------------------------- */

/* Accounts for periodic ticks, updates and alarms in (flags_ns, now]. */
static void rtc_settle(struct rtc_state *s, uint64_t now)
{
    if (now <= s->flags_ns)
        return;
    if (rtc_divider_on(s)) {
        uint64_t ca = rtc_counts(s, s->flags_ns), cb = rtc_counts(s, now);
        uint64_t period = rtc_periodic_counts(s);
        if (period && cb / period > ca / period)
            s->flags |= RTC_C_PF;
        uint64_t updates = cb / RTC_BASE_HZ - ca / RTC_BASE_HZ;
        if (rtc_is_updating(s) && updates) {
            s->flags |= RTC_C_UF;
            int64_t sec_a = s->base_sec + (int64_t)(ca / RTC_BASE_HZ);
            int64_t next = rtc_alarm_next(s, sec_a);
            if (next != RTC_NEVER && (updates >= RTC_SECS_PER_DAY || next <= sec_a + (int64_t)updates))
                s->flags |= RTC_C_AF;
        }
    }
    s->flags_ns = now;
}

static uint8_t rtc_irqf(const struct rtc_state *s)
{
    uint8_t enabled = s->flags & (s->reg_b & (RTC_B_PIE | RTC_B_AIE | RTC_B_UIE));
    return enabled ? RTC_C_IRQF : 0;
}

static void rtc_irq_update(struct rtc_state *s)
{
    bool level = rtc_irqf(s) != 0;
    if (level != s->irq_level) {
        s->irq_level = level;
        if (s->irq_connected)
            pdm_irq_set(s->irq, level);
    }
}

void rtc_set_irq_enabled(struct pdm_dev *rtc, bool on)
{
    struct rtc_state *s = pdm_dev_state(rtc);
    s->irq_connected = on;
    pdm_irq_set(s->irq, on && s->irq_level);
}

/* Arms the timer for the earliest enabled event whose flag is still clear. */
static void rtc_timer_schedule(struct rtc_state *s, uint64_t now)
{
    int64_t when = RTC_NEVER;
    uint64_t c = rtc_counts(s, now);
    uint64_t period = rtc_periodic_counts(s);
    if (rtc_divider_on(s) && (s->reg_b & RTC_B_PIE) && period && !(s->flags & RTC_C_PF))
        when = RT_MIN(when, rtc_counts_to_ns(s, (c / period + 1) * period));
    if (rtc_is_updating(s) && (s->reg_b & RTC_B_UIE) && !(s->flags & RTC_C_UF))
        when = RT_MIN(when, rtc_counts_to_ns(s, (c / RTC_BASE_HZ + 1) * RTC_BASE_HZ));
    if (rtc_is_updating(s) && (s->reg_b & RTC_B_AIE) && !(s->flags & RTC_C_AF)) {
        int64_t cur = s->base_sec + (int64_t)(c / RTC_BASE_HZ);
        int64_t next = rtc_alarm_next(s, cur);
        if (next != RTC_NEVER)
            when = RT_MIN(when, rtc_counts_to_ns(s, (c / RTC_BASE_HZ + (uint64_t)(next - cur)) * RTC_BASE_HZ));
    }
    if (when == RTC_NEVER) {
        tm_timer_cancel(s->timer);
        return;
    }
    tm_timer_arm(s->timer, when > (int64_t)now ? (uint64_t)when : now + 1);
}

static void rtc_timer_fired(void *opaque)
{
    struct rtc_state *s = opaque;
    uint64_t now = tm_now_ns(s->vm);
    rtc_settle(s, now);
    rtc_irq_update(s);
    rtc_timer_schedule(s, now);
}

/* ---- Registers ------------------------------------------------------------------------- */

static uint8_t rtc_reg_a_read(const struct rtc_state *s, uint64_t now)
{
    uint8_t v = s->reg_a;
    if (rtc_is_updating(s) && rtc_counts(s, now) % RTC_BASE_HZ >= RTC_BASE_HZ - RTC_UIP_COUNTS)
        v |= RTC_A_UIP;
    return v;
}

/* A register read; with clear_c false, register C is returned without its read side effect. */
static uint8_t rtc_reg_read(struct rtc_state *s, unsigned index, uint64_t now, bool clear_c)
{
    if (rtc_is_time_reg(index)) {
        if (!rtc_is_updating(s))
            return s->cmos[index];
        struct rtc_tm tm;
        rtc_tm_from_sec(s, rtc_now_sec(s, now), &tm);
        return rtc_tm_reg(s, &tm, index);
    }
    switch (index) {
    case RTC_REG_A:
        return rtc_reg_a_read(s, now);
    case RTC_REG_B:
        return s->reg_b;
    case RTC_REG_C: {
        rtc_settle(s, now);
        uint8_t v = s->flags | rtc_irqf(s);
        if (clear_c) {
            /* Reading C clears every flag and releases the IRQ (datasheet, "Register C"). */
            s->flags = 0;
            rtc_irq_update(s);
            rtc_timer_schedule(s, now);
        }
        return v;
    }
    case RTC_REG_D:
        return RTC_D_VRT; /* the battery is fine */
    default:
        return s->cmos[index];
    }
}

static void rtc_time_write(struct rtc_state *s, unsigned index, uint8_t value, uint64_t now)
{
    if (!rtc_is_updating(s)) {
        s->cmos[index] = value;
        return;
    }
    /* Running: change one field of the present time; the divider phase is kept. */
    rtc_rebase(s, now);
    rtc_regs_from_time(s);
    s->cmos[index] = value;
    rtc_time_from_regs(s);
}

static void rtc_reg_a_write(struct rtc_state *s, uint8_t value, uint64_t now)
{
    bool was_on = rtc_divider_on(s), was_updating = rtc_is_updating(s);
    if (was_updating) {
        rtc_rebase(s, now);
        rtc_regs_from_time(s);
    }
    s->reg_a = value & (uint8_t)~RTC_A_UIP;
    if (rtc_divider_on(s) && !was_on) {
        /* Divider out of reset: the first update comes half a second later (datasheet, "Divider Control"). */
        s->base_vns = (int64_t)now - (int64_t)(RT_NS_PER_SEC / 2);
        if (rtc_is_updating(s))
            rtc_time_from_regs(s);
    } else if (rtc_is_updating(s) && !was_updating) {
        rtc_time_from_regs(s);
    }
}

static void rtc_reg_b_write(struct rtc_state *s, uint8_t value, uint64_t now)
{
    bool was_updating = rtc_is_updating(s);
    if (was_updating)
        rtc_rebase(s, now);
    /* SET stops updates and clears UIE (datasheet, "Register B"). */
    if (value & RTC_B_SET)
        value &= (uint8_t)~RTC_B_UIE;
    s->reg_b = value;
    if (was_updating && !rtc_is_updating(s)) {
        rtc_regs_from_time(s);
    } else if (!was_updating && rtc_is_updating(s)) {
        /* SET cleared: counting resumes from the written time at the divider's next boundary. */
        rtc_rebase(s, now);
        rtc_time_from_regs(s);
    }
}

static void rtc_reg_write(struct rtc_state *s, unsigned index, uint8_t value)
{
    uint64_t now = tm_now_ns(s->vm);
    rtc_settle(s, now);
    if (rtc_is_time_reg(index)) {
        rtc_time_write(s, index, value, now);
    } else {
        switch (index) {
        case RTC_REG_A:
            rtc_reg_a_write(s, value, now);
            break;
        case RTC_REG_B:
            rtc_reg_b_write(s, value, now);
            break;
        case RTC_REG_C:
        case RTC_REG_D:
            break; /* read-only */
        default:
            s->cmos[index] = value;
            break;
        }
    }
    rtc_irq_update(s);
    rtc_timer_schedule(s, now);
}

/* ---- Ports ------------------------------------------------------------------------------ */

static uint64_t rtc_io_read(void *opaque, uint64_t offset, unsigned size)
{
    struct rtc_state *s = opaque;
    (void)size;
    switch (offset) {
    case 1:
        return rtc_reg_read(s, s->index_lo, tm_now_ns(s->vm), true);
    case 3:
        return s->cmos[0x80 | s->index_hi];
    default:
        return 0xff; /* the index registers are write-only */
    }
}

static void rtc_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct rtc_state *s = opaque;
    (void)size;
    switch (offset) {
    case 0:
        /* Bit 7 masks NMI on the PC; bits 6-0 select a register of the lower 128 bytes. */
        s->nmi_disabled = (value & 0x80) != 0;
        s->index_lo = value & 0x7f;
        break;
    case 1:
        rtc_reg_write(s, s->index_lo, (uint8_t)value);
        break;
    case 2:
        s->index_hi = value & 0x7f;
        break;
    default:
        s->cmos[0x80 | s->index_hi] = (uint8_t)value;
        break;
    }
}

static const struct io_ops g_rtc_ops = {
    .read = rtc_io_read,
    .write = rtc_io_write,
    .min_access = 1,
    .max_access = 1,
};

/* ---- Board helpers ----------------------------------------------------------------------- */

static struct rtc_state *rtc_from_dev(struct pdm_dev *dev)
{
    if (!dev || pdm_dev_desc(dev) != &g_dev_mc146818) {
        LOG_ERR("CMOS access to a device that is not an RTC");
        return NULL;
    }
    return pdm_dev_state(dev);
}

void rtc_cmos_set(struct pdm_dev *rtc, unsigned index, uint8_t value)
{
    struct rtc_state *s = rtc_from_dev(rtc);
    if (!s || index >= RTC_NVRAM_BYTES)
        return;
    vm_lock(s->vm);
    if (index < 0x80)
        rtc_reg_write(s, index, value);
    else
        s->cmos[index] = value;
    vm_unlock(s->vm);
}

uint8_t rtc_cmos_get(struct pdm_dev *rtc, unsigned index)
{
    struct rtc_state *s = rtc_from_dev(rtc);
    if (!s || index >= RTC_NVRAM_BYTES)
        return 0xff;
    vm_lock(s->vm);
    uint8_t v = index < 0x80 ? rtc_reg_read(s, index, tm_now_ns(s->vm), false) : s->cmos[index];
    vm_unlock(s->vm);
    return v;
}

/* ---- Lifecycle ---------------------------------------------------------------------------- */

/* Power-on: the time is the host's wall clock at power-on, counted from virtual time 0. */
static void rtc_seed(struct rtc_state *s)
{
    uint64_t boot = tm_boot_real_ns(s->vm);
    s->base_sec = (int64_t)(boot / RT_NS_PER_SEC);
    s->base_vns = -(int64_t)(boot % RT_NS_PER_SEC);
    s->dow_offset = 0;
    if (!rtc_is_updating(s))
        rtc_regs_from_time(s);
    LOG_DEBUG("seeded with %lld s since the epoch", (long long)s->base_sec);
}

/* The RESET pin: interrupt enables and flags clear; time, data mode and NVRAM stay. */
static void rtc_reset(struct pdm_dev *dev)
{
    struct rtc_state *s = pdm_dev_state(dev);
    uint64_t now = tm_now_ns(s->vm);
    if (now == 0)
        rtc_seed(s);
    s->reg_b &= (uint8_t) ~(RTC_B_PIE | RTC_B_AIE | RTC_B_UIE | RTC_B_SQWE);
    s->flags = 0;
    s->flags_ns = now;
    s->index_lo = 0;
    s->index_hi = 0;
    s->nmi_disabled = false;
    rtc_irq_update(s);
    rtc_timer_schedule(s, now);
}

static int rtc_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const keys[] = {"irq", NULL};
    struct rtc_state *s = pdm_dev_state(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), keys);
    if (rc)
        return rc;
    unsigned gsi;
    rc = pdm_cfg_get_gsi(cfg, pdm_dev_name(dev), 8, &gsi);
    if (rc)
        return rc;
    rc = tm_timer_create(s->vm, "rtc", rtc_timer_fired, s, &s->timer);
    if (!rc)
        rc = iom_region_create(s->vm, "rtc", 4, &g_rtc_ops, s, &s->io);
    if (!rc)
        rc = iom_region_map(s->io, RTC_PORT);
    if (!rc)
        rc = pdm_irq_create(s->vm, gsi, pdm_dev_name(dev), &s->irq);
    if (rc) {
        LOG_ERR("%s: setup failed: %s", pdm_dev_name(dev), rt_err_str(rc));
        return rc;
    }
    s->irq_connected = true;
    /* What a PC BIOS programs: 32.768 kHz divider, 1024 Hz rate; BCD, 24-hour. */
    s->reg_a = RTC_A_DV_32K | 0x06;
    s->reg_b = RTC_B_24H;
    if (tm_now_ns(s->vm) != 0)
        rtc_seed(s); /* created after power-on; otherwise the reset below seeds */
    rtc_reset(dev);
    return 0;
}

static void rtc_destroy(struct pdm_dev *dev)
{
    struct rtc_state *s = pdm_dev_state(dev);
    tm_timer_destroy(s->timer);
    iom_region_destroy(s->io);
    pdm_irq_destroy(s->irq);
}

/* ---- Saved state --------------------------------------------------------------------------- */

static int rtc_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct rtc_state *s = pdm_dev_state(dev);
    ssm_put_bytes(ssm, s->cmos, sizeof(s->cmos));
    ssm_put_u8(ssm, s->reg_a);
    ssm_put_u8(ssm, s->reg_b);
    ssm_put_u8(ssm, s->flags);
    ssm_put_u8(ssm, s->index_lo);
    ssm_put_u8(ssm, s->index_hi);
    ssm_put_bool(ssm, s->nmi_disabled);
    ssm_put_u8(ssm, s->dow_offset);
    ssm_put_u64(ssm, (uint64_t)s->base_sec);
    ssm_put_u64(ssm, (uint64_t)s->base_vns);
    ssm_put_u64(ssm, s->flags_ns);
    return ssm_status(ssm);
}

static int rtc_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct rtc_state *s = pdm_dev_state(dev);
    if (version != RTC_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint8_t cmos[RTC_NVRAM_BYTES];
    uint8_t reg_a = 0, reg_b = 0, flags = 0, index_lo = 0, index_hi = 0, dow_offset = 0;
    bool nmi = false;
    uint64_t base_sec = 0, base_vns = 0, flags_ns = 0;
    ssm_get_bytes(ssm, cmos, sizeof(cmos));
    ssm_get_u8(ssm, &reg_a);
    ssm_get_u8(ssm, &reg_b);
    ssm_get_u8(ssm, &flags);
    ssm_get_u8(ssm, &index_lo);
    ssm_get_u8(ssm, &index_hi);
    ssm_get_bool(ssm, &nmi);
    ssm_get_u8(ssm, &dow_offset);
    ssm_get_u64(ssm, &base_sec);
    ssm_get_u64(ssm, &base_vns);
    ssm_get_u64(ssm, &flags_ns);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if ((flags & ~(RTC_C_PF | RTC_C_AF | RTC_C_UF)) || (reg_a & RTC_A_UIP) || index_lo > 0x7f || index_hi > 0x7f ||
        dow_offset > 6) {
        LOG_ERR("saved state of %s is inconsistent", pdm_dev_name(dev));
        return VERR_SSM_CORRUPT;
    }
    memcpy(s->cmos, cmos, sizeof(cmos));
    s->reg_a = reg_a;
    s->reg_b = reg_b;
    s->flags = flags;
    s->index_lo = index_lo;
    s->index_hi = index_hi;
    s->nmi_disabled = nmi;
    s->dow_offset = dow_offset;
    s->base_sec = (int64_t)base_sec;
    s->base_vns = (int64_t)base_vns;
    uint64_t now = tm_now_ns(s->vm);
    s->flags_ns = RT_MIN(flags_ns, now);
    rtc_settle(s, now);
    rtc_irq_update(s);
    rtc_timer_schedule(s, now);
    return 0;
}

const struct pdm_dev_desc g_dev_mc146818 = {
    .name = "mc146818",
    .description = "MC146818 real-time clock and CMOS NVRAM",
    .state_size = sizeof(struct rtc_state),
    .ssm_version = RTC_SSM_VERSION,
    .construct = rtc_construct,
    .reset = rtc_reset,
    .save = rtc_save,
    .load = rtc_load,
    .destroy = rtc_destroy,
};
