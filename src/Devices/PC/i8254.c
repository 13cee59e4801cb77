/* i8254.c - the 8254 programmable interval timer (ports 0x40-0x43) and port 0x61 (gate 2, speaker, refresh, OUT2). */

/*
 * Design: the counters are not stepped.  Each one is described by a segment: the
 * CLK tick at which its counting element (CE) was loaded, the count it was loaded
 * with and, for the periodic modes, a phase; the CE value and the OUT level at any
 * later tick follow in closed form from the mode (Intel 8254 datasheet, "Mode
 * Definitions").  Events that change the picture (a control word, a count write, a
 * gate edge, a new count taking effect at the end of a mode 2/3 cycle) start a new
 * segment.  The input clock is 1.193182 MHz derived from the virtual clock:
 * tick(t) = floor(t * 1193182 / 1e9); tick k happens at ceil(k * 1e9 / 1193182) ns.
 *
 * Load latency: a count written (or a trigger seen) during tick k is loaded into
 * the CE by the next CLK pulse, k + 1, so mode 0's OUT rises N + 1 pulses after the
 * count is written, as the datasheet's waveforms show.  Until then the old CE value
 * and OUT level (the segment's "pre" values) stay visible.
 *
 * Counter 0's OUT drives the IRQ line (GSI 0 by default).  A timer fires at each of
 * its transitions, at the exact virtual time, and the line follows OUT.  A periodic
 * program faster than PIT_MIN_PERIOD_NS is coalesced: the timer then runs every
 * PIT_MIN_PERIOD_NS and presents one rising edge for the edges in that window (the
 * interrupt controller would have merged them anyway), so a reload of 2 cannot
 * flood the timer thread.  Count reads, status and OUT2 stay exact.  Counters 1
 * and 2 have no timer: their state is computed when read.
 *
 * Gates: counters 0 and 1 are tied high; counter 2's gate is port 0x61 bit 0.
 * Port 0x61 (PIIX3 datasheet, "NMI Status and Control Register"): bit 0 timer 2
 * gate, bit 1 speaker data enable, bits 2-3 NMI source enables (stored), bit 4
 * refresh cycle toggle, bit 5 OUT2, bits 6-7 NMI sources (none here).
 */

#include <string.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "pit"

#define PIT_SSM_VERSION 1
#define PIT_HZ          1193182u
#define PIT_PORT        0x40
#define PIT_PORT61      0x61
#define PIT_NEVER       UINT64_MAX
/* Periodic programs faster than this are coalesced (100 kHz: far above any OS tick). */
#define PIT_MIN_PERIOD_NS 10000u
/* The refresh toggle flips every 18 CLKs (15.09 us), the BIOS's refresh programming. */
#define PIT_REFRESH_TICKS 18u
/* Port 0x61 bits (bit 1, speaker data enable, is only stored: there is no speaker). */
#define PIT_P61_GATE2    0x01
#define PIT_P61_WRITABLE 0x0f
#define PIT_P61_REFRESH  0x10
#define PIT_P61_OUT2     0x20

enum pit_latch {
    PIT_LATCH_NONE = 0,
    PIT_LATCH_LSB,      /* RW=1: one byte left */
    PIT_LATCH_MSB,      /* RW=2: one byte left */
    PIT_LATCH_WORD_LSB, /* RW=3: both bytes left */
    PIT_LATCH_WORD_MSB, /* RW=3: the MSB left */
    PIT_LATCH_COUNT
};

struct pit_seg {
    uint64_t start; /* tick at which the CE was loaded */
    uint64_t phase; /* modes 2 and 3: position within the cycle at start */
    uint32_t n;     /* 1..M: modes 0,1,4,5 the CE value at start (0 counts as M); 2,3 the reload */
    bool tc_done;   /* modes 0 and 4: terminal count was reached before start */
};

struct pit_chan {
    uint8_t mode; /* 0-5 */
    uint8_t rw;   /* 1 LSB, 2 MSB, 3 LSB then MSB */
    bool bcd;
    uint8_t cw;     /* control word bits 5-0 as written, for the status byte */
    uint16_t cr;    /* count register as written */
    bool write_msb; /* write flip-flop: the next byte is the MSB */
    uint8_t write_lsb;
    bool read_msb; /* read flip-flop */
    uint8_t latch_state;
    uint16_t latch;
    bool status_latched;
    uint8_t status;
    uint64_t null_until; /* NULL COUNT reads 1 before this tick (the CR to CE load) */
    bool gate;
    bool armed;   /* a count was written since the control word */
    bool running; /* the segment describes the counter; otherwise static_* hold */
    bool static_out;
    bool static_tc; /* modes 0/4 held by the gate: terminal count already reached */
    uint32_t static_ce;
    struct pit_seg seg;
    bool pre_out; /* OUT and CE before seg.start */
    uint32_t pre_ce;
    bool pending;     /* modes 2/3: a new count takes effect at pending_at */
    bool pending_low; /* mode 3: ... and starts with its low half */
    uint64_t pending_at;
    struct pit_seg next;
};

struct pit_state {
    struct pdm_dev *dev;
    struct vm *vm;
    struct io_region *io, *io61;
    struct pdm_irq *irq;
    struct tm_timer *timer;
    unsigned gsi;
    struct pit_chan ch[3];
    uint8_t port61; /* writable bits of port 0x61 */
    bool irq_level;
    uint64_t irq_tick; /* counter 0's OUT has been reflected on the line up to this tick */
    /*
     * The chipset connects counter 0's OUT to the interrupt line unless the HPET's legacy
     * replacement took IRQ 0 (i8254_set_irq_enabled).  Wiring, not chip state: reset and
     * saved state leave it alone; the HPET tells the board again after a load.
     */
    bool irq_connected;
};

/* ---- Clock ---------------------------------------------------------------------- */

static uint64_t pit_ticks(uint64_t ns)
{
    return (uint64_t)(((unsigned __int128)ns * PIT_HZ) / RT_NS_PER_SEC);
}

static uint64_t pit_tick_ns(uint64_t tick)
{
    unsigned __int128 ns = ((unsigned __int128)tick * RT_NS_PER_SEC + PIT_HZ - 1) / PIT_HZ;
    return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

/* ---- Counting element in closed form ------------------------------------------------ */

static uint32_t pit_modulus(const struct pit_chan *ch)
{
    return ch->bcd ? 10000u : 65536u;
}

/* The count a raw CR value stands for: 1..M (0 is the largest count, M). */
static uint32_t pit_count_value(const struct pit_chan *ch, uint16_t raw)
{
    uint32_t v = raw;
    if (ch->bcd) {
        /* Invalid BCD digits (A-F) count as 9: the datasheet leaves them undefined. */
        uint32_t d[4];
        for (unsigned i = 0; i < 4; i++) {
            d[i] = (raw >> (4 * i)) & 0xfu;
            if (d[i] > 9)
                d[i] = 9;
        }
        v = d[3] * 1000 + d[2] * 100 + d[1] * 10 + d[0];
    }
    return v ? v : pit_modulus(ch);
}

static uint16_t pit_to_bcd(uint32_t v)
{
    return (uint16_t)((v / 1000 % 10) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | (v % 10));
}

/* Mode 3 high half: (N + 1) / 2 CLKs (odd counts are high one CLK longer). */
static uint64_t pit_half(uint32_t n)
{
    return (n + 1u) / 2u;
}

/* OUT at d ticks into a segment (d counts from the load). */
static bool pit_seg_out(const struct pit_chan *ch, const struct pit_seg *seg, uint64_t d)
{
    uint64_t n = seg->n, p;
    switch (ch->mode) {
    case 0: /* low until terminal count, then high */
        return seg->tc_done || d >= n;
    case 1: /* one-shot: low from the trigger's load until terminal count */
        return d >= n;
    case 2: /* low for the one CLK when the CE is 1 */
        p = (d + seg->phase) % n;
        return p != n - 1;
    case 3:
        p = (d + seg->phase) % n;
        return p < pit_half(seg->n);
    case 4:
        return seg->tc_done || d != n;
    default: /* 5 */
        return d != n;
    }
}

/* The CE value (0..M-1) at d ticks into a segment. */
static uint32_t pit_seg_ce(const struct pit_chan *ch, const struct pit_seg *seg, uint64_t d)
{
    uint64_t m = pit_modulus(ch), n = seg->n, p, h;
    switch (ch->mode) {
    case 2:
        p = (d + seg->phase) % n;
        return (uint32_t)((n - p) % m);
    case 3:
        /* Decrements by two; odd counts load N - 1 (datasheet, mode 3). */
        p = (d + seg->phase) % n;
        h = pit_half(seg->n);
        if (p >= h)
            p -= h;
        return (uint32_t)(((n & ~1ull) - 2 * p) % m);
    default:
        return (uint32_t)((n + m - d % m) % m);
    }
}

/* Modes 4 and 5: OUT is low for the one CLK at which the CE reaches zero. */
static uint64_t pit_strobe_next(uint64_t n, uint64_t d)
{
    if (d < n)
        return n;
    return d == n ? n + 1 : PIT_NEVER;
}

/* The first d' > d at which OUT changes within the segment, or PIT_NEVER. */
static uint64_t pit_seg_next(const struct pit_chan *ch, const struct pit_seg *seg, uint64_t d)
{
    uint64_t n = seg->n, p, h;
    switch (ch->mode) {
    case 0:
        return seg->tc_done || d >= n ? PIT_NEVER : n;
    case 1:
        return d < n ? n : PIT_NEVER;
    case 2:
        if (n == 1)
            return PIT_NEVER;
        p = (d + seg->phase) % n;
        return p < n - 1 ? d + (n - 1 - p) : d + 1;
    case 3:
        h = pit_half(seg->n);
        if (h == n)
            return PIT_NEVER;
        p = (d + seg->phase) % n;
        return p < h ? d + (h - p) : d + (n - p);
    case 4:
        return seg->tc_done ? PIT_NEVER : pit_strobe_next(n, d);
    default:
        return pit_strobe_next(n, d);
    }
}

static const struct pit_seg *pit_seg_at(const struct pit_chan *ch, uint64_t tick)
{
    return ch->pending && tick >= ch->pending_at ? &ch->next : &ch->seg;
}

static bool pit_out(const struct pit_chan *ch, uint64_t tick)
{
    if (!ch->running)
        return ch->static_out;
    const struct pit_seg *seg = pit_seg_at(ch, tick);
    if (tick < seg->start)
        return ch->pre_out;
    return pit_seg_out(ch, seg, tick - seg->start);
}

static uint32_t pit_ce(const struct pit_chan *ch, uint64_t tick)
{
    if (!ch->running)
        return ch->static_ce;
    const struct pit_seg *seg = pit_seg_at(ch, tick);
    if (tick < seg->start)
        return ch->pre_ce;
    return pit_seg_ce(ch, seg, tick - seg->start);
}

static uint64_t pit_seg_next_abs(const struct pit_chan *ch, const struct pit_seg *seg, uint64_t tick)
{
    uint64_t d = pit_seg_next(ch, seg, tick - seg->start);
    return d == PIT_NEVER ? PIT_NEVER : seg->start + d;
}

/* The first tick after `tick` at which OUT changes, or PIT_NEVER. */
static uint64_t pit_next_change(const struct pit_chan *ch, uint64_t tick)
{
    if (!ch->running)
        return PIT_NEVER;
    if (ch->pending && tick >= ch->pending_at)
        return pit_seg_next_abs(ch, &ch->next, tick);
    bool cur = pit_out(ch, tick);
    uint64_t c;
    if (tick < ch->seg.start)
        c = pit_seg_out(ch, &ch->seg, 0) != ch->pre_out ? ch->seg.start : pit_seg_next_abs(ch, &ch->seg, ch->seg.start);
    else
        c = pit_seg_next_abs(ch, &ch->seg, tick);
    if (ch->pending && c >= ch->pending_at) {
        /* OUT is constant up to the switch; the new segment decides from there. */
        if (pit_seg_out(ch, &ch->next, ch->pending_at - ch->next.start) != cur)
            return ch->pending_at;
        return pit_seg_next_abs(ch, &ch->next, ch->pending_at);
    }
    return c;
}

static uint64_t pit_next_rise(const struct pit_chan *ch, uint64_t tick)
{
    uint64_t c = pit_next_change(ch, tick);
    if (c == PIT_NEVER || pit_out(ch, c))
        return c;
    return pit_next_change(ch, c);
}

/* Makes a due count switch the current segment, before anything changes the counter. */
static void pit_chan_sync(struct pit_chan *ch, uint64_t tick)
{
    if (ch->running && ch->pending && tick >= ch->pending_at) {
        ch->seg = ch->next;
        ch->pending = false;
    }
}

/* Freezes the counter with its present CE value and the given OUT. */
static void pit_chan_hold(struct pit_chan *ch, uint64_t tick, bool out)
{
    ch->static_ce = pit_ce(ch, tick);
    ch->static_out = out;
    ch->running = false;
    ch->pending = false;
}

/* Starts a segment: CE loaded with n at `start`; OUT and CE keep their present values until then. */
static void pit_chan_start(struct pit_chan *ch, uint64_t tick, uint64_t start, uint32_t n, bool tc_done)
{
    bool out = pit_out(ch, tick);
    uint32_t ce = pit_ce(ch, tick);
    ch->pre_out = out;
    ch->pre_ce = ce;
    ch->seg = (struct pit_seg){.start = start, .phase = 0, .n = n, .tc_done = tc_done};
    ch->running = true;
    ch->pending = false;
}

/* ---- Counter events (datasheet, "Gate Pin Operations Summary" and the mode pages) -------- */

static void pit_chan_control(struct pit_chan *ch, uint8_t cw, uint64_t tick)
{
    uint8_t mode = (cw >> 1) & 7u;
    pit_chan_hold(ch, tick, mode != 0); /* OUT goes to its initial state: low in mode 0, else high */
    ch->mode = mode > 5 ? mode - 4 : mode;
    ch->rw = (cw >> 4) & 3u;
    ch->bcd = (cw & 1u) != 0;
    ch->cw = cw & 0x3f;
    ch->static_ce %= pit_modulus(ch);
    ch->write_msb = false;
    ch->read_msb = false;
    ch->latch_state = PIT_LATCH_NONE;
    ch->status_latched = false;
    ch->null_until = PIT_NEVER;
    ch->armed = false;
    ch->static_tc = false;
}

/* Mode 2/3 count written while counting: it takes effect at the end of the cycle (mode 2) or half-cycle (mode 3). */
static void pit_chan_defer_count(struct pit_chan *ch, uint64_t tick, uint32_t n)
{
    if (tick < ch->seg.start) {
        /* Not loaded yet: the next CLK loads the newest count. */
        ch->seg.n = n;
        ch->null_until = ch->seg.start;
        return;
    }
    if (ch->pending) {
        ch->next.n = n;
        ch->next.phase = ch->pending_low ? pit_half(n) % n : 0;
        return;
    }
    uint64_t cyc = ch->seg.n;
    uint64_t p = (tick - ch->seg.start + ch->seg.phase) % cyc;
    uint64_t h = pit_half(ch->seg.n);
    ch->pending = true;
    ch->next = (struct pit_seg){.n = n};
    ch->pending_low = ch->mode == 3 && p < h;
    if (ch->pending_low) {
        /* End of the high half: the new count starts in its low half. */
        ch->pending_at = tick + (h - p);
        ch->next.phase = pit_half(n) % n;
    } else {
        ch->pending_at = tick + (cyc - p);
    }
    ch->next.start = ch->pending_at;
    ch->null_until = ch->pending_at;
}

static void pit_chan_load(struct pit_chan *ch, uint16_t raw, uint64_t tick)
{
    uint32_t n = pit_count_value(ch, raw);
    ch->cr = raw;
    ch->armed = true;
    switch (ch->mode) {
    case 0:
    case 4:
        /* Loaded on the next CLK; mode 0's OUT goes low at once, mode 4's stays high. */
        if (ch->gate) {
            if (ch->mode == 0)
                pit_chan_hold(ch, tick, false);
            pit_chan_start(ch, tick, tick + 1, n, false);
        } else {
            ch->running = false;
            ch->pending = false;
            ch->static_out = ch->mode != 0;
            ch->static_ce = n % pit_modulus(ch);
            ch->static_tc = false;
        }
        ch->null_until = tick + 1;
        break;
    case 1:
    case 5:
        /* Waits for a gate trigger; NULL COUNT stays set until then. */
        ch->null_until = PIT_NEVER;
        break;
    default: /* 2, 3 */
        if (ch->running) {
            pit_chan_defer_count(ch, tick, n);
        } else if (ch->gate) {
            pit_chan_start(ch, tick, tick + 1, n, false);
            ch->null_until = tick + 1;
        } else {
            ch->null_until = PIT_NEVER;
        }
        break;
    }
}

static void pit_chan_set_gate(struct pit_chan *ch, bool gate, uint64_t tick)
{
    if (gate == ch->gate)
        return;
    ch->gate = gate;
    if (gate) {
        if (!ch->armed)
            return;
        switch (ch->mode) {
        case 0:
        case 4:
            /* Counting resumes from the held CE value. */
            if (!ch->running) {
                uint32_t n = ch->static_ce ? ch->static_ce : pit_modulus(ch);
                pit_chan_start(ch, tick, tick, n, ch->static_tc);
            }
            break;
        default: /* 1, 2, 3, 5: a rising edge (re)loads the count on the next CLK */
            pit_chan_start(ch, tick, tick + 1, pit_count_value(ch, ch->cr), false);
            if (ch->null_until > tick + 1)
                ch->null_until = tick + 1;
            break;
        }
        return;
    }
    if (!ch->running)
        return;
    switch (ch->mode) {
    case 0:
    case 4: {
        /* Counting stops; mode 0's OUT keeps its level, mode 4's is high between strobes. */
        bool out = pit_out(ch, tick);
        const struct pit_seg *seg = &ch->seg;
        bool tc = tick >= seg->start && (seg->tc_done || tick - seg->start >= seg->n);
        pit_chan_hold(ch, tick, ch->mode == 0 ? out : true);
        ch->static_tc = tc;
        if (tick < seg->start)
            ch->static_ce = seg->n % pit_modulus(ch);
        break;
    }
    case 2:
    case 3:
        /* Counting stops and OUT goes high at once. */
        pit_chan_hold(ch, tick, true);
        break;
    default: /* 1, 5: the gate level does not matter */
        break;
    }
}

/* ---- Reads ------------------------------------------------------------------------- */

static uint16_t pit_read_value(const struct pit_chan *ch, uint64_t tick)
{
    uint32_t ce = pit_ce(ch, tick);
    return ch->bcd ? pit_to_bcd(ce) : (uint16_t)ce;
}

static void pit_latch_count(struct pit_chan *ch, uint64_t tick)
{
    if (ch->latch_state != PIT_LATCH_NONE)
        return; /* a latched count is held until read */
    ch->latch = pit_read_value(ch, tick);
    ch->latch_state = ch->rw == 1 ? PIT_LATCH_LSB : ch->rw == 2 ? PIT_LATCH_MSB : PIT_LATCH_WORD_LSB;
}

static void pit_latch_status(struct pit_chan *ch, uint64_t tick)
{
    if (ch->status_latched)
        return;
    bool null = tick < ch->null_until;
    ch->status = (uint8_t)((pit_out(ch, tick) ? 0x80 : 0) | (null ? 0x40 : 0) | ch->cw);
    ch->status_latched = true;
}

static uint8_t pit_chan_read(struct pit_chan *ch, uint64_t tick)
{
    if (ch->status_latched) {
        ch->status_latched = false;
        return ch->status;
    }
    uint16_t v;
    switch (ch->latch_state) {
    case PIT_LATCH_LSB:
        ch->latch_state = PIT_LATCH_NONE;
        return (uint8_t)ch->latch;
    case PIT_LATCH_MSB:
        ch->latch_state = PIT_LATCH_NONE;
        return (uint8_t)(ch->latch >> 8);
    case PIT_LATCH_WORD_LSB:
        ch->latch_state = PIT_LATCH_WORD_MSB;
        return (uint8_t)ch->latch;
    case PIT_LATCH_WORD_MSB:
        ch->latch_state = PIT_LATCH_NONE;
        return (uint8_t)(ch->latch >> 8);
    default:
        break;
    }
    v = pit_read_value(ch, tick);
    switch (ch->rw) {
    case 1:
        return (uint8_t)v;
    case 2:
        return (uint8_t)(v >> 8);
    default:
        ch->read_msb = !ch->read_msb;
        return ch->read_msb ? (uint8_t)v : (uint8_t)(v >> 8);
    }
}

static void pit_chan_write(struct pit_chan *ch, uint8_t value, uint64_t tick)
{
    switch (ch->rw) {
    case 1: /* LSB only: the MSB is zero */
        pit_chan_load(ch, value, tick);
        break;
    case 2: /* MSB only: the LSB is zero */
        pit_chan_load(ch, (uint16_t)(value << 8), tick);
        break;
    default:
        if (!ch->write_msb) {
            ch->write_msb = true;
            ch->write_lsb = value;
            /* Mode 0: the first byte stops counting and sets OUT low (datasheet, mode 0). */
            if (ch->mode == 0) {
                pit_chan_hold(ch, tick, false);
                ch->armed = false;
            }
        } else {
            ch->write_msb = false;
            pit_chan_load(ch, (uint16_t)(ch->write_lsb | value << 8), tick);
        }
        break;
    }
}

/* ---- Counter 0's interrupt line ------------------------------------------------------ */

static void pit_irq_set(struct pit_state *s, bool level)
{
    if (s->irq_level != level) {
        s->irq_level = level;
        if (s->irq_connected)
            pdm_irq_set(s->irq, level);
    }
}

void i8254_set_irq_enabled(struct pdm_dev *pit, bool on)
{
    struct pit_state *s = pdm_dev_state(pit);
    s->irq_connected = on;
    pdm_irq_set(s->irq, on && s->irq_level);
}

/*
 * Brings the line up to date at `tick`: it follows OUT, and a rising edge that came
 * and went since the last update is shown as one pulse so the controller sees it.
 */
static void pit_irq_update(struct pit_state *s, uint64_t tick)
{
    struct pit_chan *ch = &s->ch[0];
    bool out = pit_out(ch, tick);
    bool missed = tick > s->irq_tick && pit_next_rise(ch, s->irq_tick) <= tick;
    if (missed && !(out && !s->irq_level)) {
        pit_irq_set(s, false);
        pit_irq_set(s, true);
    }
    pit_irq_set(s, out);
    s->irq_tick = tick;
}

/* A periodic program faster than PIT_MIN_PERIOD_NS: only the timer drives the line. */
static bool pit_irq_is_coalesced(const struct pit_state *s, uint64_t tick)
{
    const struct pit_chan *ch = &s->ch[0];
    if (!ch->running || (ch->mode != 2 && ch->mode != 3))
        return false;
    return (uint64_t)pit_seg_at(ch, tick)->n * RT_NS_PER_SEC < (uint64_t)PIT_MIN_PERIOD_NS * PIT_HZ;
}

static void pit_irq_schedule(struct pit_state *s, uint64_t now_ns, uint64_t tick)
{
    struct pit_chan *ch = &s->ch[0];
    uint64_t next = pit_next_change(ch, tick);
    if (next == PIT_NEVER) {
        tm_timer_cancel(s->timer);
        return;
    }
    uint64_t when = pit_tick_ns(next);
    if (pit_irq_is_coalesced(s, tick)) {
        /* Coalesced: keep a deadline already within the window, so polling cannot postpone it forever. */
        if (tm_timer_is_armed(s->timer) && tm_timer_expire_ns(s->timer) <= now_ns + PIT_MIN_PERIOD_NS)
            return;
        when = RT_MAX(when, now_ns + PIT_MIN_PERIOD_NS);
    }
    tm_timer_arm(s->timer, when);
}

static void pit_timer_fired(void *opaque)
{
    struct pit_state *s = opaque;
    uint64_t now = tm_now_ns(s->vm);
    uint64_t tick = pit_ticks(now);
    pit_irq_update(s, tick);
    pit_chan_sync(&s->ch[0], tick);
    pit_irq_schedule(s, now, tick);
}

/* ---- Port handlers -------------------------------------------------------------------- */

/*
 * Every access: settle counter 0's line at `now` first (edges the timer has not
 * shown yet), then follow the change and reschedule.  A coalesced program leaves
 * the line to its timer, so a guest polling the counter adds no edges.
 */
static uint64_t pit_access_begin(struct pit_state *s, uint64_t *now_ns)
{
    *now_ns = tm_now_ns(s->vm);
    uint64_t tick = pit_ticks(*now_ns);
    if (!pit_irq_is_coalesced(s, tick))
        pit_irq_update(s, tick);
    for (unsigned i = 0; i < 3; i++)
        pit_chan_sync(&s->ch[i], tick);
    return tick;
}

static void pit_access_end(struct pit_state *s, uint64_t now_ns, uint64_t tick)
{
    if (!pit_irq_is_coalesced(s, tick)) {
        /* Leaving a coalesced program: its timer owned the history up to now. */
        s->irq_tick = RT_MAX(s->irq_tick, tick);
        pit_irq_update(s, tick);
    }
    pit_irq_schedule(s, now_ns, tick);
}

static void pit_control_write(struct pit_state *s, uint8_t cw, uint64_t tick)
{
    unsigned sc = cw >> 6;
    if (sc == 3) {
        /* Read-back command: bit 5 low latches counts, bit 4 low latches status, bits 1-3 select. */
        for (unsigned i = 0; i < 3; i++) {
            if (!(cw & (2u << i)))
                continue;
            if (!(cw & 0x20))
                pit_latch_count(&s->ch[i], tick);
            if (!(cw & 0x10))
                pit_latch_status(&s->ch[i], tick);
        }
        return;
    }
    if (((cw >> 4) & 3u) == 0)
        pit_latch_count(&s->ch[sc], tick);
    else
        pit_chan_control(&s->ch[sc], cw, tick);
}

static uint64_t pit_io_read(void *opaque, uint64_t offset, unsigned size)
{
    struct pit_state *s = opaque;
    (void)size;
    if (offset >= 3)
        return 0xff; /* the control word register is write-only */
    uint64_t now;
    uint64_t tick = pit_access_begin(s, &now);
    uint8_t v = pit_chan_read(&s->ch[offset], tick);
    pit_access_end(s, now, tick);
    return v;
}

static void pit_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct pit_state *s = opaque;
    (void)size;
    uint64_t now;
    uint64_t tick = pit_access_begin(s, &now);
    if (offset >= 3)
        pit_control_write(s, (uint8_t)value, tick);
    else
        pit_chan_write(&s->ch[offset], (uint8_t)value, tick);
    pit_access_end(s, now, tick);
}

static uint64_t pit_port61_read(void *opaque, uint64_t offset, unsigned size)
{
    struct pit_state *s = opaque;
    (void)offset;
    (void)size;
    uint64_t tick = pit_ticks(tm_now_ns(s->vm));
    pit_chan_sync(&s->ch[2], tick);
    uint8_t v = s->port61 & PIT_P61_WRITABLE;
    if ((tick / PIT_REFRESH_TICKS) & 1)
        v |= PIT_P61_REFRESH;
    if (pit_out(&s->ch[2], tick))
        v |= PIT_P61_OUT2;
    return v;
}

static void pit_port61_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct pit_state *s = opaque;
    (void)offset;
    (void)size;
    uint64_t now;
    uint64_t tick = pit_access_begin(s, &now);
    s->port61 = (uint8_t)value & PIT_P61_WRITABLE;
    pit_chan_set_gate(&s->ch[2], (s->port61 & PIT_P61_GATE2) != 0, tick);
    pit_access_end(s, now, tick);
}

static const struct io_ops g_pit_ops = {
    .read = pit_io_read,
    .write = pit_io_write,
    .min_access = 1,
    .max_access = 1,
};
static const struct io_ops g_pit_port61_ops = {
    .read = pit_port61_read,
    .write = pit_port61_write,
    .min_access = 1,
    .max_access = 1,
};

/* ---- Lifecycle ------------------------------------------------------------------------ */

static void pit_reset(struct pdm_dev *dev)
{
    struct pit_state *s = pdm_dev_state(dev);
    uint64_t tick = pit_ticks(tm_now_ns(s->vm));
    tm_timer_cancel(s->timer);
    for (unsigned i = 0; i < 3; i++) {
        struct pit_chan *ch = &s->ch[i];
        memset(ch, 0, sizeof(*ch));
        ch->gate = i != 2;
        /* Power-on state is undefined: start as after control word 0x30 (mode 0, LSB/MSB, no count). */
        pit_chan_control(ch, 0x30, tick);
    }
    s->port61 = 0;
    s->irq_tick = tick;
    pit_irq_set(s, false);
}

static int pit_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const keys[] = {"irq", NULL};
    struct pit_state *s = pdm_dev_state(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), keys);
    if (rc)
        return rc;
    rc = pdm_cfg_get_gsi(cfg, pdm_dev_name(dev), 0, &s->gsi);
    if (rc)
        return rc;
    rc = tm_timer_create(s->vm, "pit-irq0", pit_timer_fired, s, &s->timer);
    if (!rc)
        rc = iom_region_create(s->vm, "pit", 4, &g_pit_ops, s, &s->io);
    if (!rc)
        rc = iom_region_map(s->io, PIT_PORT);
    if (!rc)
        rc = iom_region_create(s->vm, "port61", 1, &g_pit_port61_ops, s, &s->io61);
    if (!rc)
        rc = iom_region_map(s->io61, PIT_PORT61);
    if (!rc)
        rc = pdm_irq_create(s->vm, s->gsi, pdm_dev_name(dev), &s->irq);
    if (rc) {
        LOG_ERR("%s: setup failed: %s", pdm_dev_name(dev), rt_err_str(rc));
        return rc;
    }
    s->irq_connected = true;
    pit_reset(dev);
    return 0;
}

static void pit_destroy(struct pdm_dev *dev)
{
    struct pit_state *s = pdm_dev_state(dev);
    tm_timer_destroy(s->timer);
    iom_region_destroy(s->io61);
    iom_region_destroy(s->io);
    pdm_irq_destroy(s->irq);
}

/* ---- Saved state ------------------------------------------------------------------------ */

static void pit_seg_save(struct ssm *ssm, const struct pit_seg *seg)
{
    ssm_put_u64(ssm, seg->start);
    ssm_put_u64(ssm, seg->phase);
    ssm_put_u32(ssm, seg->n);
    ssm_put_bool(ssm, seg->tc_done);
}

static void pit_seg_load(struct ssm *ssm, struct pit_seg *seg)
{
    ssm_get_u64(ssm, &seg->start);
    ssm_get_u64(ssm, &seg->phase);
    ssm_get_u32(ssm, &seg->n);
    ssm_get_bool(ssm, &seg->tc_done);
}

static int pit_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct pit_state *s = pdm_dev_state(dev);
    for (unsigned i = 0; i < 3; i++) {
        const struct pit_chan *ch = &s->ch[i];
        ssm_put_u8(ssm, ch->mode);
        ssm_put_u8(ssm, ch->rw);
        ssm_put_bool(ssm, ch->bcd);
        ssm_put_u8(ssm, ch->cw);
        ssm_put_u16(ssm, ch->cr);
        ssm_put_bool(ssm, ch->write_msb);
        ssm_put_u8(ssm, ch->write_lsb);
        ssm_put_bool(ssm, ch->read_msb);
        ssm_put_u8(ssm, ch->latch_state);
        ssm_put_u16(ssm, ch->latch);
        ssm_put_bool(ssm, ch->status_latched);
        ssm_put_u8(ssm, ch->status);
        ssm_put_u64(ssm, ch->null_until);
        ssm_put_bool(ssm, ch->gate);
        ssm_put_bool(ssm, ch->armed);
        ssm_put_bool(ssm, ch->running);
        ssm_put_bool(ssm, ch->static_out);
        ssm_put_bool(ssm, ch->static_tc);
        ssm_put_u32(ssm, ch->static_ce);
        pit_seg_save(ssm, &ch->seg);
        ssm_put_bool(ssm, ch->pre_out);
        ssm_put_u32(ssm, ch->pre_ce);
        ssm_put_bool(ssm, ch->pending);
        ssm_put_bool(ssm, ch->pending_low);
        ssm_put_u64(ssm, ch->pending_at);
        pit_seg_save(ssm, &ch->next);
    }
    ssm_put_u8(ssm, s->port61);
    ssm_put_bool(ssm, s->irq_level);
    ssm_put_u64(ssm, s->irq_tick);
    return ssm_status(ssm);
}

static bool pit_seg_is_valid(const struct pit_chan *ch, const struct pit_seg *seg)
{
    return seg->n >= 1 && seg->n <= pit_modulus(ch) && seg->phase < seg->n;
}

static bool pit_chan_is_valid(const struct pit_chan *ch)
{
    if (ch->mode > 5 || ch->rw < 1 || ch->rw > 3 || ch->latch_state >= PIT_LATCH_COUNT || (ch->cw & 0xc0) ||
        ch->static_ce >= pit_modulus(ch) || ch->pre_ce >= pit_modulus(ch))
        return false;
    if (ch->running && !pit_seg_is_valid(ch, &ch->seg))
        return false;
    return !(ch->running && ch->pending && (!pit_seg_is_valid(ch, &ch->next) || ch->next.start > ch->pending_at));
}

static int pit_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct pit_state *s = pdm_dev_state(dev);
    if (version != PIT_SSM_VERSION)
        return VERR_SSM_VERSION;
    struct pit_chan chans[3];
    memset(chans, 0, sizeof(chans));
    uint8_t port61 = 0;
    bool irq_level = false;
    uint64_t irq_tick = 0;
    for (unsigned i = 0; i < 3; i++) {
        struct pit_chan *ch = &chans[i];
        ssm_get_u8(ssm, &ch->mode);
        ssm_get_u8(ssm, &ch->rw);
        ssm_get_bool(ssm, &ch->bcd);
        ssm_get_u8(ssm, &ch->cw);
        ssm_get_u16(ssm, &ch->cr);
        ssm_get_bool(ssm, &ch->write_msb);
        ssm_get_u8(ssm, &ch->write_lsb);
        ssm_get_bool(ssm, &ch->read_msb);
        ssm_get_u8(ssm, &ch->latch_state);
        ssm_get_u16(ssm, &ch->latch);
        ssm_get_bool(ssm, &ch->status_latched);
        ssm_get_u8(ssm, &ch->status);
        ssm_get_u64(ssm, &ch->null_until);
        ssm_get_bool(ssm, &ch->gate);
        ssm_get_bool(ssm, &ch->armed);
        ssm_get_bool(ssm, &ch->running);
        ssm_get_bool(ssm, &ch->static_out);
        ssm_get_bool(ssm, &ch->static_tc);
        ssm_get_u32(ssm, &ch->static_ce);
        pit_seg_load(ssm, &ch->seg);
        ssm_get_bool(ssm, &ch->pre_out);
        ssm_get_u32(ssm, &ch->pre_ce);
        ssm_get_bool(ssm, &ch->pending);
        ssm_get_bool(ssm, &ch->pending_low);
        ssm_get_u64(ssm, &ch->pending_at);
        pit_seg_load(ssm, &ch->next);
    }
    ssm_get_u8(ssm, &port61);
    ssm_get_bool(ssm, &irq_level);
    ssm_get_u64(ssm, &irq_tick);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    for (unsigned i = 0; i < 3; i++) {
        if (!pit_chan_is_valid(&chans[i])) {
            LOG_ERR("saved state of %s: counter %u is inconsistent", pdm_dev_name(dev), i);
            return VERR_SSM_CORRUPT;
        }
    }
    memcpy(s->ch, chans, sizeof(chans));
    s->port61 = port61 & PIT_P61_WRITABLE;
    s->ch[0].gate = true;
    s->ch[1].gate = true;
    s->ch[2].gate = (s->port61 & PIT_P61_GATE2) != 0;
    pit_irq_set(s, irq_level);
    uint64_t now = tm_now_ns(s->vm);
    uint64_t tick = pit_ticks(now);
    s->irq_tick = RT_MIN(irq_tick, tick);
    pit_irq_update(s, tick);
    pit_chan_sync(&s->ch[0], tick);
    pit_irq_schedule(s, now, tick);
    return 0;
}

const struct pdm_dev_desc g_dev_i8254 = {
    .name = "i8254",
    .description = "8254 programmable interval timer and port 0x61",
    .state_size = sizeof(struct pit_state),
    .ssm_version = PIT_SSM_VERSION,
    .construct = pit_construct,
    .reset = pit_reset,
    .save = pit_save,
    .load = pit_load,
    .destroy = pit_destroy,
};
