/* hpet.c - the IA-PC High Precision Event Timer: a 100 MHz main counter and three comparators (MMIO 0xfed00000). */

/*
 * Design (IA-PC HPET Specification 1.0a; sections cited as "spec").
 *
 * Registers (spec 2.3): general capabilities and ID (0x000), general configuration
 * (0x010), general interrupt status (0x020), main counter (0x0f0), and per timer n
 * configuration/capabilities (0x100 + 0x20n), comparator (0x108 + 0x20n) and FSB route
 * (0x110 + 0x20n).  Every register is 64 bits wide; the guest may use 32-bit accesses
 * to either half or 64-bit accesses (spec 2.3.1).  The handler works on byte masks, so
 * a half written with a 32-bit access leaves the other half as it was, and 8- and
 * 16-bit accesses are widened (reads) or dropped (writes) by the MMIO dispatcher.
 *
 * The main counter is not stepped: while ENABLE_CNF is set it is floor(now / 10 ns)
 * plus an offset taken when the counter was started, so it advances at exactly
 * 100 MHz of virtual time and stops with the VM.  While halted it holds its value and
 * software may write it (writes while it runs are ignored: spec 2.3.7 has software
 * halt it first).
 *
 * Timers: timer 0 can be periodic, timers 1 and 2 are one-shot; all are 64-bit
 * capable and can be put in 32-bit mode (Tn_32MODE_CNF).  A comparator matches when
 * the counter reaches its value (the low 32 bits in 32-bit mode), so a one-shot
 * timer matches again each time the counter wraps its width.  A periodic comparator
 * is an accumulator: at a match the value last written to it (the period) is added
 * (spec 2.3.9.2.2).  In periodic mode a comparator write sets the period, and sets
 * the comparator itself only with Tn_VAL_SET_CNF, which clears after the write (as
 * QEMU and the AMD-8111 that Linux's driver mentions behave: Linux writes the start
 * value with VAL_SET and then the period).  Comparators are evaluated while the
 * counter runs and the timer's interrupt is enabled (Tn_INT_ENB_CNF), as QEMU does;
 * one virtual-clock timer per comparator is armed for the next match.
 *
 * Periodic programs faster than HPET_MIN_PERIOD_NS are coalesced: after a match the
 * next one is not looked for before that much virtual time has passed, and the
 * matches in between raise one interrupt (an interrupt controller would merge them
 * anyway), so a period of one tick cannot flood the timer thread.
 *
 * Interrupts (spec 2.3.9): level-triggered timers set their bit in the general
 * interrupt status register and hold their line while the bit is set (write 1 to
 * clear); edge-triggered timers pulse their line and leave the status bit alone.
 * ENABLE_CNF clear masks every timer interrupt.  Tn_INT_ROUTE_CNF picks an I/O APIC
 * input among Tn_INT_ROUTE_CAP: pins 20-23, which no ISA device and no PCI PIRQ use
 * (the PIRQs reach the ISA IRQs through the PIIX3 and would take 16-19 in an APIC
 * routing).  A route outside the capability is not taken (spec: the value read back
 * then differs from the value written) and the reset route, 0, drives nothing.  FSB
 * (MSI) delivery is not offered.
 *
 * Legacy replacement (LEG_RT_CNF, spec 2.3.9.2.2 and table 3): timer 0 drives ISA
 * IRQ 0 and I/O APIC pin 2 (the router's GSI 0, which the I/O APIC model wires to
 * pin 2), timer 1 drives IRQ 8, whatever their route fields say, and the chipset
 * disconnects the PIT's and RTC's interrupt outputs.  The HPET does not know those
 * devices: it tells a listener the board installs (hpet_set_legacy_listener), and the
 * board mutes them.  The listener hears the mode on every change, at reset and on load.
 */

#include <string.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "hpet"

#define HPET_SSM_VERSION 1
#define HPET_TIMERS      3
#define HPET_TICK_NS     10u
#define HPET_NEVER       UINT64_MAX
/* Decoded by the chipset ahead of PCI BARs, as the I/O APIC is. */
#define HPET_MMIO_PRIORITY 30
/* Periodic programs faster than this are coalesced (100 kHz, far above any OS tick). */
#define HPET_MIN_PERIOD_NS 10000u

/* Register offsets (spec 2.3.1, table 2). */
#define HPET_REG_CAP     0x000
#define HPET_REG_CONFIG  0x010
#define HPET_REG_STATUS  0x020
#define HPET_REG_COUNTER 0x0f0
#define HPET_REG_TIMER0  0x100
#define HPET_TIMER_STRIDE 0x20
#define HPET_TN_CONFIG   0x00
#define HPET_TN_CMP      0x08

/* General capabilities and ID (spec 2.3.4). */
#define HPET_REV_ID      0x01ULL
#define HPET_CAP_COUNT64 (1ULL << 13)
#define HPET_CAP_LEG_RT  (1ULL << 15)
#define HPET_VENDOR_ID   0x8086ULL
#define HPET_PERIOD_FS   10000000ULL /* 10 ns in femtoseconds */
#define HPET_CAP_VALUE                                                                                        \
    (HPET_REV_ID | ((uint64_t)(HPET_TIMERS - 1) << 8) | HPET_CAP_COUNT64 | HPET_CAP_LEG_RT |                  \
     (HPET_VENDOR_ID << 16) | (HPET_PERIOD_FS << 32))

/* General configuration (spec 2.3.5). */
#define HPET_CFG_ENABLE  (1ULL << 0)
#define HPET_CFG_LEG_RT  (1ULL << 1)
#define HPET_CFG_WMASK   (HPET_CFG_ENABLE | HPET_CFG_LEG_RT)

/* Timer n configuration and capabilities (spec 2.3.8). */
#define HPET_TN_LEVEL       (1ULL << 1)
#define HPET_TN_INT_ENB     (1ULL << 2)
#define HPET_TN_PERIODIC    (1ULL << 3)
#define HPET_TN_PER_CAP     (1ULL << 4)
#define HPET_TN_SIZE_CAP    (1ULL << 5)
#define HPET_TN_VAL_SET     (1ULL << 6)
#define HPET_TN_32BIT       (1ULL << 8)
#define HPET_TN_ROUTE_SHIFT 9
#define HPET_TN_ROUTE_MASK  (0x1fULL << HPET_TN_ROUTE_SHIFT)
/* I/O APIC inputs a timer may be routed to (Tn_INT_ROUTE_CAP, bits 63:32). */
#define HPET_ROUTE_CAP      0x00f00000u
#define HPET_TN_WMASK       (HPET_TN_LEVEL | HPET_TN_INT_ENB | HPET_TN_PERIODIC | HPET_TN_VAL_SET | HPET_TN_32BIT | \
                             HPET_TN_ROUTE_MASK)

/* The ISA IRQs of legacy replacement: the router's GSI 0 reaches PIC IRQ 0 and I/O APIC pin 2. */
#define HPET_LEGACY_GSI0 0u
#define HPET_LEGACY_GSI1 8u

struct hpet_state;

struct hpet_timer {
    struct hpet_state *hpet;
    unsigned index;
    uint64_t config;   /* the writable bits of Tn_CONFIG */
    uint64_t cmp;      /* comparator (32 bits in 32-bit mode) */
    uint64_t period;   /* periodic increment: the value last written to the comparator */
    uint64_t match_ns; /* when the next match is looked for, HPET_NEVER when the comparator is idle */
    struct tm_timer *timer;
    struct pdm_irq *irq;
    int gsi;           /* where the line is connected, -1: nowhere */
    bool level;        /* the line's level */
};

struct hpet_state {
    struct pdm_dev *dev;
    struct vm *vm;
    struct mem_region *mmio;
    uint64_t config;      /* general configuration */
    uint64_t isr;         /* general interrupt status */
    uint64_t counter;     /* the main counter while halted */
    uint64_t counter_off; /* while running: counter = now / 10 ns + counter_off (mod 2^64) */
    struct hpet_timer t[HPET_TIMERS];
    void (*legacy_fn)(void *opaque, bool legacy);
    void *legacy_opaque;
};

/* ---- Main counter ------------------------------------------------------------------------ */

static bool hpet_is_running(const struct hpet_state *s)
{
    return (s->config & HPET_CFG_ENABLE) != 0;
}

static uint64_t hpet_counter(const struct hpet_state *s, uint64_t now)
{
    return hpet_is_running(s) ? now / HPET_TICK_NS + s->counter_off : s->counter;
}

/* ---- Timers ------------------------------------------------------------------------------- */

static uint64_t hpet_timer_mask(const struct hpet_timer *t)
{
    return (t->config & HPET_TN_32BIT) ? UINT32_MAX : UINT64_MAX;
}

static uint64_t hpet_timer_caps(const struct hpet_timer *t)
{
    uint64_t caps = HPET_TN_SIZE_CAP | ((uint64_t)HPET_ROUTE_CAP << 32);
    if (t->index == 0)
        caps |= HPET_TN_PER_CAP;
    return caps;
}

static bool hpet_timer_is_periodic(const struct hpet_timer *t)
{
    return (t->config & HPET_TN_PERIODIC) != 0;
}

/* The GSI the timer's interrupt goes to now, or -1 (spec 2.3.8, Tn_INT_ROUTE_CNF; legacy replacement). */
static int hpet_timer_gsi(const struct hpet_timer *t)
{
    const struct hpet_state *s = t->hpet;
    if ((s->config & HPET_CFG_LEG_RT) && t->index < 2)
        return t->index == 0 ? (int)HPET_LEGACY_GSI0 : (int)HPET_LEGACY_GSI1;
    unsigned route = (unsigned)((t->config & HPET_TN_ROUTE_MASK) >> HPET_TN_ROUTE_SHIFT);
    return (HPET_ROUTE_CAP >> route) & 1 ? (int)route : -1;
}

/* Whether a level-triggered timer holds its line: status set, interrupt enabled, counter enabled. */
static bool hpet_timer_wants_level(const struct hpet_timer *t)
{
    const struct hpet_state *s = t->hpet;
    return hpet_is_running(s) && (t->config & HPET_TN_INT_ENB) && (t->config & HPET_TN_LEVEL) &&
           ((s->isr >> t->index) & 1);
}

/* Moves the line to the GSI the configuration asks for and drives the level it should have. */
static void hpet_timer_line_update(struct hpet_timer *t)
{
    int gsi = hpet_timer_gsi(t);
    bool level = gsi >= 0 && hpet_timer_wants_level(t);
    if (gsi != t->gsi) {
        /* Drop the level before moving, so neither GSI sees a stray edge. */
        if (t->level) {
            pdm_irq_set(t->irq, false);
            t->level = false;
        }
        if (gsi >= 0)
            pdm_irq_reroute(t->irq, (unsigned)gsi);
        t->gsi = gsi;
    }
    if (level != t->level) {
        t->level = level;
        pdm_irq_set(t->irq, level);
    }
}

/* A comparator match (spec 2.3.9.2): status and line for level-triggered timers, an edge for edge-triggered ones. */
static void hpet_timer_raise(struct hpet_timer *t)
{
    struct hpet_state *s = t->hpet;
    if (t->config & HPET_TN_LEVEL) {
        s->isr |= 1ULL << t->index;
        hpet_timer_line_update(t);
    } else if (t->gsi >= 0 && !t->level) {
        pdm_irq_pulse(t->irq);
    }
}

/*
 * Arms the timer for the comparator's next match after `now` (not before not_before_ns).
 * The counter reaches the comparator after d ticks, d in 1..2^width: a comparator equal
 * to the counter matches only when the counter comes round again.
 */
static void hpet_timer_arm(struct hpet_timer *t, uint64_t now, uint64_t not_before_ns)
{
    struct hpet_state *s = t->hpet;
    if (!hpet_is_running(s) || !(t->config & HPET_TN_INT_ENB)) {
        t->match_ns = HPET_NEVER;
        tm_timer_cancel(t->timer);
        return;
    }
    uint64_t mask = hpet_timer_mask(t);
    uint64_t d = (t->cmp - hpet_counter(s, now)) & mask;
    unsigned __int128 ticks = d ? d : (unsigned __int128)mask + 1;
    unsigned __int128 when = ((unsigned __int128)(now / HPET_TICK_NS) + ticks) * HPET_TICK_NS;
    if (when >= HPET_NEVER) {
        t->match_ns = HPET_NEVER;
        tm_timer_cancel(t->timer);
        return;
    }
    t->match_ns = RT_MAX((uint64_t)when, not_before_ns);
    tm_timer_arm(t->timer, t->match_ns);
}

/* Delivers a match that is due at `now`, moves a periodic comparator past the counter, re-arms. */
static void hpet_timer_sync(struct hpet_timer *t, uint64_t now)
{
    if (t->match_ns == HPET_NEVER || now < t->match_ns)
        return;
    struct hpet_state *s = t->hpet;
    uint64_t not_before = 0;
    hpet_timer_raise(t);
    if (hpet_timer_is_periodic(t)) {
        uint64_t mask = hpet_timer_mask(t);
        uint64_t period = t->period & mask;
        if (period) {
            /* Every multiple of the period the counter has passed since the match, and one more. */
            uint64_t since = (hpet_counter(s, now) - t->cmp) & mask;
            t->cmp = (t->cmp + (since / period + 1) * period) & mask;
            not_before = now + HPET_MIN_PERIOD_NS;
        }
    }
    hpet_timer_arm(t, now, not_before);
}

static void hpet_sync_all(struct hpet_state *s, uint64_t now)
{
    for (unsigned i = 0; i < HPET_TIMERS; i++)
        hpet_timer_sync(&s->t[i], now);
}

static void hpet_timer_fired(void *opaque)
{
    struct hpet_timer *t = opaque;
    hpet_timer_sync(t, tm_now_ns(t->hpet->vm));
}

/* Re-evaluates every timer's line and match after a change of the general configuration or the counter. */
static void hpet_timers_update(struct hpet_state *s, uint64_t now)
{
    for (unsigned i = 0; i < HPET_TIMERS; i++) {
        hpet_timer_line_update(&s->t[i]);
        hpet_timer_arm(&s->t[i], now, 0);
    }
}

static void hpet_legacy_notify(struct hpet_state *s)
{
    if (s->legacy_fn)
        s->legacy_fn(s->legacy_opaque, (s->config & HPET_CFG_LEG_RT) != 0);
}

/* ---- Register access ---------------------------------------------------------------------- */

static uint64_t hpet_reg_read(struct hpet_state *s, unsigned reg, uint64_t now)
{
    if (reg >= HPET_REG_TIMER0) {
        unsigned n = (reg - HPET_REG_TIMER0) / HPET_TIMER_STRIDE;
        if (n >= HPET_TIMERS)
            return 0;
        const struct hpet_timer *t = &s->t[n];
        switch ((reg - HPET_REG_TIMER0) % HPET_TIMER_STRIDE) {
        case HPET_TN_CONFIG:
            return t->config | hpet_timer_caps(t);
        case HPET_TN_CMP:
            return t->cmp;
        default:
            return 0; /* FSB route: FSB delivery is not offered */
        }
    }
    switch (reg) {
    case HPET_REG_CAP:
        return HPET_CAP_VALUE;
    case HPET_REG_CONFIG:
        return s->config;
    case HPET_REG_STATUS:
        return s->isr;
    case HPET_REG_COUNTER:
        return hpet_counter(s, now);
    default:
        return 0; /* reserved */
    }
}

static void hpet_config_write(struct hpet_state *s, uint64_t value, uint64_t now)
{
    uint64_t old = s->config;
    uint64_t cfg = value & HPET_CFG_WMASK;
    if ((old ^ cfg) & HPET_CFG_ENABLE) {
        /* Starting continues from the held value; halting holds the present one (spec 2.3.5). */
        if (cfg & HPET_CFG_ENABLE)
            s->counter_off = s->counter - now / HPET_TICK_NS;
        else
            s->counter = hpet_counter(s, now);
    }
    s->config = cfg;
    hpet_timers_update(s, now);
    if ((old ^ cfg) & HPET_CFG_LEG_RT)
        hpet_legacy_notify(s);
}

static void hpet_timer_config_write(struct hpet_timer *t, uint64_t value, uint64_t now)
{
    struct hpet_state *s = t->hpet;
    uint64_t cfg = value & HPET_TN_WMASK;
    if (!(hpet_timer_caps(t) & HPET_TN_PER_CAP))
        cfg &= ~HPET_TN_PERIODIC;
    /* A route the timer cannot take is not taken: the old one stays (spec 2.3.8, Tn_INT_ROUTE_CNF). */
    unsigned route = (unsigned)((cfg & HPET_TN_ROUTE_MASK) >> HPET_TN_ROUTE_SHIFT);
    if (!((HPET_ROUTE_CAP >> route) & 1))
        cfg = (cfg & ~HPET_TN_ROUTE_MASK) | (t->config & HPET_TN_ROUTE_MASK);
    if (cfg & HPET_TN_32BIT) {
        /* The comparator is 32 bits wide from now on (spec 2.3.8, Tn_32MODE_CNF). */
        t->cmp &= UINT32_MAX;
        t->period &= UINT32_MAX;
    }
    if (!(cfg & HPET_TN_LEVEL))
        s->isr &= ~(1ULL << t->index); /* the status bit means nothing for edge-triggered timers */
    t->config = cfg;
    hpet_timer_line_update(t);
    hpet_timer_arm(t, now, 0);
}

static void hpet_timer_cmp_write(struct hpet_timer *t, uint64_t value, uint64_t mask, uint64_t now)
{
    mask &= hpet_timer_mask(t);
    if (!hpet_timer_is_periodic(t) || (t->config & HPET_TN_VAL_SET))
        t->cmp = (t->cmp & ~mask) | (value & mask);
    if (hpet_timer_is_periodic(t))
        t->period = (t->period & ~mask) | (value & mask);
    t->config &= ~HPET_TN_VAL_SET;
    hpet_timer_arm(t, now, 0);
}

/* Writes the bytes of one 64-bit register that mask selects. */
static void hpet_reg_write(struct hpet_state *s, unsigned reg, uint64_t value, uint64_t mask, uint64_t now)
{
    if (reg >= HPET_REG_TIMER0) {
        unsigned n = (reg - HPET_REG_TIMER0) / HPET_TIMER_STRIDE;
        if (n >= HPET_TIMERS)
            return;
        struct hpet_timer *t = &s->t[n];
        switch ((reg - HPET_REG_TIMER0) % HPET_TIMER_STRIDE) {
        case HPET_TN_CONFIG:
            hpet_timer_config_write(t, (t->config & ~mask) | (value & mask), now);
            break;
        case HPET_TN_CMP:
            hpet_timer_cmp_write(t, value, mask, now);
            break;
        default:
            break; /* FSB route and reserved: read-only zero */
        }
        return;
    }
    switch (reg) {
    case HPET_REG_CONFIG:
        hpet_config_write(s, (s->config & ~mask) | (value & mask), now);
        break;
    case HPET_REG_STATUS:
        /* Write 1 to clear (spec 2.3.6); only level-triggered timers ever set a bit. */
        s->isr &= ~(value & mask);
        for (unsigned i = 0; i < HPET_TIMERS; i++)
            hpet_timer_line_update(&s->t[i]);
        break;
    case HPET_REG_COUNTER:
        if (!hpet_is_running(s)) {
            s->counter = (s->counter & ~mask) | (value & mask);
            hpet_timers_update(s, now);
        }
        break;
    default:
        break; /* capabilities and reserved registers ignore writes */
    }
}

static uint64_t hpet_size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;
}

/*
 * Accesses of any offset and size (the dispatcher hands 4 and 8 bytes): the bytes that
 * fall in each aligned 64-bit register go to it; bytes past the block read as zero.
 */
static uint64_t hpet_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct hpet_state *s = opaque;
    uint64_t now = tm_now_ns(s->vm);
    hpet_sync_all(s, now);
    uint64_t v = 0;
    for (unsigned done = 0; done < size && done < 8;) {
        uint64_t at = offset + done;
        if (at >= PC_HPET_LEN)
            break;
        unsigned shift = (unsigned)(at & 7);
        unsigned take = RT_MIN(8 - shift, size - done);
        uint64_t reg = hpet_reg_read(s, (unsigned)(at & ~7ULL), now) >> (8 * shift);
        v |= (reg & hpet_size_mask(take)) << (8 * done);
        done += take;
    }
    return v & hpet_size_mask(size);
}

static void hpet_mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct hpet_state *s = opaque;
    uint64_t now = tm_now_ns(s->vm);
    hpet_sync_all(s, now);
    for (unsigned done = 0; done < size && done < 8;) {
        uint64_t at = offset + done;
        if (at >= PC_HPET_LEN)
            break;
        unsigned shift = (unsigned)(at & 7);
        unsigned take = RT_MIN(8 - shift, size - done);
        uint64_t part = (value >> (8 * done)) & hpet_size_mask(take);
        hpet_reg_write(s, (unsigned)(at & ~7ULL), part << (8 * shift), hpet_size_mask(take) << (8 * shift), now);
        done += take;
    }
}

static const struct io_ops g_hpet_mmio_ops = {
    .read = hpet_mmio_read,
    .write = hpet_mmio_write,
    .min_access = 4,
    .max_access = 8,
};

/* ---- Board wiring ------------------------------------------------------------------------- */

void hpet_set_legacy_listener(struct pdm_dev *hpet, void (*fn)(void *opaque, bool legacy), void *opaque)
{
    struct hpet_state *s = pdm_dev_state(hpet);
    s->legacy_fn = fn;
    s->legacy_opaque = opaque;
    hpet_legacy_notify(s);
}

/* ---- Lifecycle ---------------------------------------------------------------------------- */

static void hpet_reset(struct pdm_dev *dev)
{
    struct hpet_state *s = pdm_dev_state(dev);
    s->config = 0;
    s->isr = 0;
    s->counter = 0;
    s->counter_off = 0;
    for (unsigned i = 0; i < HPET_TIMERS; i++) {
        struct hpet_timer *t = &s->t[i];
        t->config = 0;
        t->cmp = UINT64_MAX; /* comparators come out of reset all ones */
        t->period = 0;
        t->match_ns = HPET_NEVER;
        tm_timer_cancel(t->timer);
        hpet_timer_line_update(t);
    }
    hpet_legacy_notify(s);
}

static int hpet_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const keys[] = {NULL};
    struct hpet_state *s = pdm_dev_state(dev);
    const char *name = pdm_dev_name(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    int rc = pdm_cfg_validate(cfg, name, keys);
    if (rc)
        return rc;
    for (unsigned i = 0; i < HPET_TIMERS && !rc; i++) {
        struct hpet_timer *t = &s->t[i];
        t->hpet = s;
        t->index = i;
        t->gsi = -1;
        rc = tm_timer_create(s->vm, "hpet", hpet_timer_fired, t, &t->timer);
        /* The line starts on some GSI but stays low until a route or legacy mode connects it. */
        if (!rc)
            rc = pdm_irq_create(s->vm, HPET_LEGACY_GSI0, name, &t->irq);
    }
    if (!rc)
        rc = mem_region_create_mmio(s->vm, "hpet", PC_HPET_LEN, &g_hpet_mmio_ops, s, &s->mmio);
    if (!rc)
        rc = mem_region_map(s->mmio, PC_HPET_BASE, HPET_MMIO_PRIORITY);
    if (rc) {
        LOG_ERR("%s: setup failed: %s", name, rt_err_str(rc));
        return rc;
    }
    hpet_reset(dev);
    return 0;
}

static void hpet_destroy(struct pdm_dev *dev)
{
    struct hpet_state *s = pdm_dev_state(dev);
    mem_region_destroy(s->mmio);
    for (unsigned i = 0; i < HPET_TIMERS; i++) {
        tm_timer_destroy(s->t[i].timer);
        pdm_irq_destroy(s->t[i].irq);
    }
}

/* ---- Saved state -------------------------------------------------------------------------- */

static int hpet_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct hpet_state *s = pdm_dev_state(dev);
    uint64_t now = tm_now_ns(s->vm);
    hpet_sync_all(s, now);
    ssm_put_u64(ssm, s->config);
    ssm_put_u64(ssm, s->isr);
    ssm_put_u64(ssm, hpet_counter(s, now));
    ssm_put_u8(ssm, HPET_TIMERS);
    for (unsigned i = 0; i < HPET_TIMERS; i++) {
        const struct hpet_timer *t = &s->t[i];
        ssm_put_u64(ssm, t->config);
        ssm_put_u64(ssm, t->cmp);
        ssm_put_u64(ssm, t->period);
        /* A coalesced periodic match keeps its deadline: saved relative to now. */
        ssm_put_u64(ssm, t->match_ns == HPET_NEVER ? HPET_NEVER : t->match_ns - RT_MIN(t->match_ns, now));
    }
    return ssm_status(ssm);
}

static bool hpet_timer_state_is_valid(const struct hpet_timer *t, unsigned index)
{
    unsigned route = (unsigned)((t->config & HPET_TN_ROUTE_MASK) >> HPET_TN_ROUTE_SHIFT);
    if ((t->config & ~HPET_TN_WMASK) || (route && !((HPET_ROUTE_CAP >> route) & 1)))
        return false;
    if (index != 0 && (t->config & HPET_TN_PERIODIC))
        return false;
    return !(t->config & HPET_TN_32BIT) || (t->cmp <= UINT32_MAX && t->period <= UINT32_MAX);
}

static int hpet_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct hpet_state *s = pdm_dev_state(dev);
    if (version != HPET_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint64_t config = 0, isr = 0, counter = 0;
    uint8_t count = 0;
    struct hpet_timer t[HPET_TIMERS];
    uint64_t pending[HPET_TIMERS];
    memset(t, 0, sizeof(t));
    ssm_get_u64(ssm, &config);
    ssm_get_u64(ssm, &isr);
    ssm_get_u64(ssm, &counter);
    ssm_get_u8(ssm, &count);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (count != HPET_TIMERS || (config & ~HPET_CFG_WMASK) || (isr >> HPET_TIMERS)) {
        LOG_ERR("saved state of %s is inconsistent", pdm_dev_name(dev));
        return VERR_SSM_CORRUPT;
    }
    for (unsigned i = 0; i < HPET_TIMERS; i++) {
        ssm_get_u64(ssm, &t[i].config);
        ssm_get_u64(ssm, &t[i].cmp);
        ssm_get_u64(ssm, &t[i].period);
        ssm_get_u64(ssm, &pending[i]);
    }
    rc = ssm_status(ssm);
    if (rc)
        return rc;
    for (unsigned i = 0; i < HPET_TIMERS; i++) {
        if (!hpet_timer_state_is_valid(&t[i], i)) {
            LOG_ERR("saved state of %s: timer %u is inconsistent", pdm_dev_name(dev), i);
            return VERR_SSM_CORRUPT;
        }
    }
    uint64_t now = tm_now_ns(s->vm);
    s->config = config;
    s->isr = isr;
    s->counter = counter;
    s->counter_off = counter - now / HPET_TICK_NS;
    for (unsigned i = 0; i < HPET_TIMERS; i++) {
        struct hpet_timer *d = &s->t[i];
        d->config = t[i].config;
        d->cmp = t[i].cmp;
        d->period = t[i].period;
        hpet_timer_line_update(d);
        /* Re-arm from the comparator; a coalesced deadline that was further out is kept. */
        uint64_t not_before = pending[i] == HPET_NEVER || pending[i] > HPET_MIN_PERIOD_NS ? 0 : now + pending[i];
        hpet_timer_arm(d, now, not_before);
    }
    hpet_legacy_notify(s);
    return 0;
}

const struct pdm_dev_desc g_dev_hpet = {
    .name = "hpet",
    .description = "IA-PC HPET: 100 MHz counter, 3 timers (MMIO 0xfed00000)",
    .state_size = sizeof(struct hpet_state),
    .ssm_version = HPET_SSM_VERSION,
    .construct = hpet_construct,
    .reset = hpet_reset,
    .save = hpet_save,
    .load = hpet_load,
    .destroy = hpet_destroy,
};
