/* apic.c - the local APICs of all vCPUs (xAPIC mode): registers, priorities, IPIs, LVT, timer, INTA and the MSRs. */

/*
 * Design: one device instance holds one local APIC per vCPU (Intel SDM vol. 3A,
 * chapter 10, xAPIC mode only; x2APIC is not advertised).  Each APIC has its own
 * 4 KiB MMIO region mapped at its IA32_APIC_BASE (0xFEE00000 after reset), each at
 * its own priority so that regions at the same address may overlap; an access is
 * served by the APIC of the vCPU doing it (vcpu_current(); vCPU 0 for device
 * threads and tests), as the page is private to each processor.
 *
 * Interrupts into the CPU: the APIC replaces the PIC as the VM's interrupt
 * controller (struct vm_intc in vm.h).  Each APIC drives its vCPU's INTR line as an
 * attention line: high while a fixed interrupt is deliverable (its priority class
 * above the PPR's, 10.8.3.1), while an ExtINT interrupt is pending (the 8259 behind
 * LINT0 in virtual-wire mode, or an ExtINT message), or while an NMI, INIT or
 * start-up IPI waits for the CPU (take_events).  The INTA cycle (ack_vcpu) moves
 * the highest deliverable IRR bit to the ISR, or runs the 8259's INTA for ExtINT,
 * or answers the spurious vector when the interrupt that raised INTR was masked by
 * the TPR before the INTA (10.9).
 *
 * The PIC's INT output is LINT0 of vCPU 0.  After a power-on reset the BSP's LVT
 * LINT0 is ExtINT and unmasked (virtual wire), as QEMU's model does and as SeaBIOS
 * and Linux's direct boot expect: PIC interrupts reach the CPU before software
 * programs the APIC.  With IA32_APIC_BASE.EN clear the APIC is out of the system:
 * LINT0 is the INTR pin and LINT1 the NMI pin (10.4.3), and its page is unmapped.
 *
 * Timer (10.5.4): the count runs at timer_hz / divide on the virtual clock
 * (tm_now_ns, never host time).  The state is (count at base, base_ns); the current
 * count is computed on read.  Periodic programs faster than 100 kHz are coalesced.  TSC-deadline mode uses the CPU's TSC relation
 * TSC = ns * tsc_khz / 1e6 + offset (config key "tsc_khz", offset 0, until the CPU
 * calls vm_intc.tsc_sync).
 *
 * Level-triggered interrupts set the TMR bit; their EOI is broadcast to the EOI
 * listener (the I/O APIC's remote IRR).  Messages are delivered at once, so the
 * delivery status bits always read idle.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "apic"

#define APIC_SSM_VERSION   1
#define APIC_PAGE_BYTES    0x1000u
/* Above PCI BARs and PAM windows: the processor's own APIC decodes its page first. */
#define APIC_MMIO_PRIORITY 40
#define APIC_MAX_CPUS      64 /* destination sets are 64-bit masks */
/* Version register: version 0x14 (integrated APIC), max LVT entry 5 (six entries), no EOI suppression. */
#define APIC_VERSION       0x00050014u

/* Register offsets in the page (SDM vol. 3A, table 10-1). */
#define APIC_REG_ID       0x020
#define APIC_REG_VERSION  0x030
#define APIC_REG_TPR      0x080
#define APIC_REG_APR      0x090
#define APIC_REG_PPR      0x0a0
#define APIC_REG_EOI      0x0b0
#define APIC_REG_RRD      0x0c0
#define APIC_REG_LDR      0x0d0
#define APIC_REG_DFR      0x0e0
#define APIC_REG_SVR      0x0f0
#define APIC_REG_ISR      0x100
#define APIC_REG_TMR      0x180
#define APIC_REG_IRR      0x200
#define APIC_REG_ESR      0x280
#define APIC_REG_ICR_LO   0x300
#define APIC_REG_ICR_HI   0x310
#define APIC_REG_LVT      0x320 /* timer, thermal, perf, LINT0, LINT1, error: 0x320-0x370 */
#define APIC_REG_TMICT    0x380
#define APIC_REG_TMCCT    0x390
#define APIC_REG_TDCR     0x3e0

enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_COUNT };

/* LVT bits (10.5.1). */
#define LVT_VECTOR      0x000000ffu
#define LVT_DM_SHIFT    8
#define LVT_POLARITY    (1u << 13)
#define LVT_REMOTE_IRR  (1u << 14)
#define LVT_LEVEL       (1u << 15)
#define LVT_MASKED      (1u << 16)
#define LVT_TIMER_SHIFT 17
enum { TIMER_ONESHOT = 0, TIMER_PERIODIC = 1, TIMER_DEADLINE = 2 };
/* Writable bits per entry: timer (vector, mask, mode), thermal/perf (+ delivery mode),
 * LINT (+ polarity, trigger), error (vector, mask). */
static const uint32_t g_lvt_wmask[LVT_COUNT] = {0x000700ff, 0x000107ff, 0x000107ff, 0x0001a7ff, 0x0001a7ff,
                                                0x000100ff};

/* SVR (10.9): spurious vector, APIC software enable, focus processor checking disabled. */
#define SVR_ENABLE        (1u << 8)
#define SVR_FOCUS_DISABLE (1u << 9)
#define SVR_WMASK         0x3ffu
/* ICR (10.6.1): vector, delivery mode, destination mode, level, trigger, shorthand. */
#define ICR_LO_WMASK   0x000ccfffu
#define ICR_LOGICAL    (1u << 11)
#define ICR_ASSERT     (1u << 14)
#define ICR_LEVEL      (1u << 15)
#define ICR_SHORTHAND_SHIFT 18
enum { SH_NONE, SH_SELF, SH_ALL, SH_OTHERS };
/* ESR bits (10.5.3). */
#define ESR_SEND_ILLEGAL_VECTOR 0x20u
#define ESR_RECV_ILLEGAL_VECTOR 0x40u
#define ESR_ILLEGAL_REGISTER    0x80u
/* Divide configuration: bits 0, 1 and 3. */
#define TDCR_WMASK 0xbu

/* IA32_APIC_BASE (10.4.4) and IA32_TSC_DEADLINE (10.5.4.1). */
#define MSR_APIC_BASE    0x1b
#define MSR_TSC_DEADLINE 0x6e0
#define APIC_BASE_BSP    (1ULL << 8)
#define APIC_BASE_EXTD   (1ULL << 10)
#define APIC_BASE_EN     (1ULL << 11)

#define NS_PER_SEC 1000000000ULL
/* Periodic timers faster than this are coalesced (100 kHz, far above any OS tick). */
#define APIC_MIN_PERIOD_NS 10000u

struct apic_state;

struct lapic {
    struct apic_state *s;
    unsigned index;
    struct vcpu *vcpu;
    struct mem_region *mmio;
    uint64_t mapped_gpa; /* where mmio is, while mapped */
    struct tm_timer *timer;
    /* Registers. */
    uint64_t base_msr;
    uint8_t id;
    uint8_t tpr;
    uint8_t ldr;       /* LDR[31:24] */
    uint8_t dfr_model; /* DFR[31:28]: 0xf flat, 0 cluster */
    uint32_t svr;
    uint32_t irr[8], isr[8], tmr[8];
    uint32_t esr;         /* what software reads: latched by the last ESR write */
    uint32_t esr_pending; /* errors seen since that write */
    uint32_t icr_lo, icr_hi;
    uint32_t lvt[LVT_COUNT];
    uint32_t timer_initial;
    uint32_t timer_dcr;
    /* Timer: timer_count ticks remained at timer_base_ns; 0 means not counting. */
    uint32_t timer_count;
    uint64_t timer_base_ns;
    uint64_t tsc_deadline;
    uint64_t tsc_khz, tsc_offset;
    /* Inputs and what waits for the CPU. */
    bool lint[2];
    bool extint_msg; /* an ExtINT message waits for its INTA */
    unsigned events; /* VM_INTC_EVENT_* */
    uint8_t sipi_vector;
    bool intr;     /* the level driven on the vCPU's INTR */
    bool irq_seen; /* a fixed interrupt was signalled since the last INTA */
};

struct apic_state {
    struct pdm_dev *dev;
    struct vm *vm;
    unsigned count;
    struct lapic *cpu;
    uint64_t timer_hz;
    uint64_t tsc_khz;
    unsigned phys_bits;
    int (*extint_inta)(void *opaque);
    void *extint_opaque;
    void (*eoi_fn)(void *opaque, uint8_t vector);
    void *eoi_opaque;
    bool smi_logged;
    bool intc_installed;
};

static void lapic_update(struct lapic *l);
static void lapic_lvt_raise(struct lapic *l, unsigned idx);

/* ---- 256-bit vector registers ------------------------------------------------------------ */

static void vec_set(uint32_t *r, unsigned v)
{
    r[(v >> 5) & 7] |= 1u << (v & 31);
}

static void vec_clear(uint32_t *r, unsigned v)
{
    r[(v >> 5) & 7] &= ~(1u << (v & 31));
}

static bool vec_test(const uint32_t *r, unsigned v)
{
    return (r[(v >> 5) & 7] >> (v & 31)) & 1;
}

static int vec_highest(const uint32_t *r)
{
    for (int i = 7; i >= 0; i--)
        if (r[i])
            return i * 32 + 31 - __builtin_clz(r[i]);
    return -1;
}

/* ---- State and priorities --------------------------------------------------------------- */

static bool lapic_hw_enabled(const struct lapic *l)
{
    return (l->base_msr & APIC_BASE_EN) != 0;
}

static bool lapic_sw_enabled(const struct lapic *l)
{
    return lapic_hw_enabled(l) && (l->svr & SVR_ENABLE);
}

/* PPR (10.8.3.1): the TPR, or the class of the highest in-service vector when that is higher. */
static uint8_t lapic_ppr(const struct lapic *l)
{
    int isrv = vec_highest(l->isr);
    unsigned isr_class = isrv < 0 ? 0 : ((unsigned)isrv & 0xf0);
    if ((l->tpr & 0xf0u) >= isr_class)
        return l->tpr;
    return (uint8_t)isr_class;
}

/* APR (10.8.3.1, figure 10-15): what lowest-priority arbitration compares. */
static uint8_t lapic_apr(const struct lapic *l)
{
    int isrv = vec_highest(l->isr);
    int irrv = vec_highest(l->irr);
    unsigned isr_class = isrv < 0 ? 0 : ((unsigned)isrv & 0xf0);
    unsigned irr_class = irrv < 0 ? 0 : ((unsigned)irrv & 0xf0);
    unsigned tpr_class = l->tpr & 0xf0u;
    if (tpr_class >= irr_class && tpr_class > isr_class)
        return l->tpr;
    return (uint8_t)RT_MAX(tpr_class, RT_MAX(isr_class, irr_class));
}

/* The vector the next INTA takes from the IRR, or -1. */
static int lapic_deliverable(const struct lapic *l)
{
    if (!lapic_sw_enabled(l))
        return -1;
    int v = vec_highest(l->irr);
    if (v < 0 || ((unsigned)v & 0xf0) <= (lapic_ppr(l) & 0xf0u))
        return -1;
    return v;
}

/* The pin's asserted state after the LVT's polarity (LINT pins only). */
static bool lapic_lint_active(const struct lapic *l, unsigned pin)
{
    return l->lint[pin] != ((l->lvt[LVT_LINT0 + pin] & LVT_POLARITY) != 0);
}

static unsigned lvt_dm(uint32_t lvt)
{
    return (lvt >> LVT_DM_SHIFT) & 7;
}

static bool lapic_extint_pending(const struct lapic *l)
{
    if (!lapic_hw_enabled(l))
        return l->lint[0]; /* LINT0 is the processor's INTR pin (10.4.3) */
    if (l->extint_msg)
        return true;
    uint32_t lvt = l->lvt[LVT_LINT0];
    return !(lvt & LVT_MASKED) && lvt_dm(lvt) == APIC_DM_EXTINT && lapic_lint_active(l, 0);
}

static void lapic_update(struct lapic *l)
{
    int v = lapic_deliverable(l);
    if (v >= 0)
        l->irq_seen = true;
    bool level = v >= 0 || l->events || lapic_extint_pending(l);
    if (level != l->intr) {
        l->intr = level;
        vcpu_set_intr(l->vcpu, level);
    }
}

/* Records errors in the ESR; a newly seen error raises the error LVT (10.5.3). */
static void lapic_error(struct lapic *l, uint32_t bits)
{
    uint32_t fresh = bits & ~l->esr_pending;
    l->esr_pending |= bits;
    if (fresh)
        lapic_lvt_raise(l, LVT_ERROR);
}

/* A fixed interrupt into the IRR (10.8.4): refused when the APIC is software-disabled (10.4.7.2). */
static bool lapic_accept(struct lapic *l, uint8_t vector, bool level)
{
    if (!lapic_sw_enabled(l))
        return false;
    if (vector < 16) {
        lapic_error(l, ESR_RECV_ILLEGAL_VECTOR);
        return false;
    }
    vec_set(l->irr, vector);
    if (level)
        vec_set(l->tmr, vector);
    else
        vec_clear(l->tmr, vector);
    lapic_update(l);
    return true;
}

/* ---- Reset ------------------------------------------------------------------------------ */

/*
 * Power-up and INIT reset of the registers (10.4.7.1, 10.4.7.3): INIT keeps the APIC
 * ID and IA32_APIC_BASE.  The BSP's LINT0 is left in virtual wire after power-up
 * (see the design note).
 */
static void lapic_reset_regs(struct lapic *l, bool power_on)
{
    tm_timer_cancel(l->timer);
    if (power_on)
        l->id = (uint8_t)l->index;
    l->tpr = 0;
    l->ldr = 0;
    l->dfr_model = 0xf;
    l->svr = 0xff;
    memset(l->irr, 0, sizeof(l->irr));
    memset(l->isr, 0, sizeof(l->isr));
    memset(l->tmr, 0, sizeof(l->tmr));
    l->esr = 0;
    l->esr_pending = 0;
    l->icr_lo = 0;
    l->icr_hi = 0;
    for (unsigned i = 0; i < LVT_COUNT; i++)
        l->lvt[i] = LVT_MASKED;
    if (power_on && l->index == 0)
        l->lvt[LVT_LINT0] = (uint32_t)APIC_DM_EXTINT << LVT_DM_SHIFT;
    l->timer_initial = 0;
    l->timer_dcr = 0;
    l->timer_count = 0;
    l->timer_base_ns = 0;
    l->tsc_deadline = 0;
    l->extint_msg = false;
    l->irq_seen = false;
}

/* Maps the page where IA32_APIC_BASE says, or unmaps it while the APIC is disabled. */
static void lapic_map(struct lapic *l)
{
    uint64_t base = l->base_msr & ~0xfffULL & ((1ULL << l->s->phys_bits) - 1);
    bool want = lapic_hw_enabled(l);
    if (mem_region_is_mapped(l->mmio)) {
        if (want && l->mapped_gpa == base)
            return;
        mem_region_unmap(l->mmio);
    }
    if (!want)
        return;
    int rc = mem_region_map(l->mmio, base, APIC_MMIO_PRIORITY + (int)l->index);
    if (rc) {
        LOG_ERR("cannot map the local APIC of vCPU %u at 0x%llx: %s", l->index, (unsigned long long)base,
                rt_err_str(rc));
        return;
    }
    l->mapped_gpa = base;
}

/* ---- Timer -------------------------------------------------------------------------------- */

static unsigned lapic_timer_mode(const struct lapic *l)
{
    return (l->lvt[LVT_TIMER] >> LVT_TIMER_SHIFT) & 3;
}

/* log2 of the divider: TDCR bits 3,1,0 = 111b divides by 1, else by 2^(value+1) (10.5.4). */
static unsigned lapic_timer_shift(const struct lapic *l)
{
    unsigned v = (l->timer_dcr & 3) | ((l->timer_dcr >> 1) & 4);
    return v == 7 ? 0 : v + 1;
}

static uint64_t lapic_ticks_in(const struct lapic *l, uint64_t ns)
{
    unsigned __int128 t = (unsigned __int128)ns * l->s->timer_hz;
    return (uint64_t)(t / ((unsigned __int128)NS_PER_SEC << lapic_timer_shift(l)));
}

/* The nanoseconds until ticks have elapsed (rounded up, so the count has reached zero then). */
static uint64_t lapic_ns_for(const struct lapic *l, uint64_t ticks)
{
    unsigned __int128 n = ((unsigned __int128)ticks << lapic_timer_shift(l)) * NS_PER_SEC;
    n = (n + l->s->timer_hz - 1) / l->s->timer_hz;
    return n > (UINT64_MAX >> 2) ? (UINT64_MAX >> 2) : (uint64_t)n;
}

static uint32_t lapic_timer_current(const struct lapic *l, uint64_t now)
{
    if (lapic_timer_mode(l) == TIMER_DEADLINE || l->timer_count == 0)
        return 0;
    uint64_t t = lapic_ticks_in(l, now - l->timer_base_ns);
    if (t < l->timer_count)
        return l->timer_count - (uint32_t)t;
    if (lapic_timer_mode(l) != TIMER_PERIODIC || l->timer_initial == 0)
        return 0;
    return l->timer_initial - (uint32_t)((t - l->timer_count) % l->timer_initial);
}

static uint64_t lapic_tsc_at(const struct lapic *l, uint64_t ns)
{
    return (uint64_t)((unsigned __int128)ns * l->tsc_khz / 1000000u) + l->tsc_offset;
}

/* The first virtual time at which the TSC has reached the deadline. */
static uint64_t lapic_deadline_ns(const struct lapic *l, uint64_t now)
{
    if (l->tsc_deadline <= lapic_tsc_at(l, now))
        return now;
    unsigned __int128 n = (unsigned __int128)(l->tsc_deadline - l->tsc_offset) * 1000000u;
    n = (n + l->tsc_khz - 1) / l->tsc_khz;
    if (n > (UINT64_MAX >> 2))
        return UINT64_MAX >> 2;
    return (uint64_t)n < now ? now : (uint64_t)n;
}

static void lapic_timer_arm(struct lapic *l)
{
    uint64_t now = tm_now_ns(l->s->vm);
    if (lapic_timer_mode(l) == TIMER_DEADLINE) {
        if (l->tsc_deadline)
            tm_timer_arm(l->timer, lapic_deadline_ns(l, now));
        else
            tm_timer_cancel(l->timer);
        return;
    }
    if (l->timer_count == 0) {
        tm_timer_cancel(l->timer);
        return;
    }
    uint64_t when = l->timer_base_ns + lapic_ns_for(l, l->timer_count);
    /*
     * A periodic program faster than APIC_MIN_PERIOD_NS runs the timer every
     * APIC_MIN_PERIOD_NS instead (the IRR would merge the interrupts anyway), so a
     * guest cannot flood the timer thread; the current count stays exact.
     */
    if (lapic_timer_mode(l) == TIMER_PERIODIC && lapic_ns_for(l, l->timer_initial) < APIC_MIN_PERIOD_NS)
        when = RT_MAX(when, now + APIC_MIN_PERIOD_NS);
    tm_timer_arm(l->timer, when);
}

/* Restarts counting from the current count (divide or mode changes keep the count). */
static void lapic_timer_rebase(struct lapic *l, uint32_t current, uint64_t now)
{
    l->timer_count = current;
    l->timer_base_ns = now;
    lapic_timer_arm(l);
}

static void lapic_timer_fired(void *opaque)
{
    struct lapic *l = opaque;
    uint64_t now = tm_now_ns(l->s->vm);
    if (lapic_timer_mode(l) == TIMER_DEADLINE) {
        if (!l->tsc_deadline)
            return;
        if (lapic_tsc_at(l, now) < l->tsc_deadline) {
            lapic_timer_arm(l); /* the TSC relation changed since arming */
            return;
        }
        /* The timer disarms itself and clears IA32_TSC_DEADLINE (10.5.4.1). */
        l->tsc_deadline = 0;
        lapic_lvt_raise(l, LVT_TIMER);
        return;
    }
    if (l->timer_count == 0)
        return;
    uint64_t expiry = l->timer_base_ns + lapic_ns_for(l, l->timer_count);
    if (now < expiry) {
        lapic_timer_arm(l);
        return;
    }
    if (lapic_timer_mode(l) == TIMER_PERIODIC && l->timer_initial) {
        /* Reload; a late callback skips whole periods (the IRR holds one interrupt anyway). */
        uint64_t period = lapic_ns_for(l, l->timer_initial);
        uint64_t base = expiry;
        if (period && now - base >= period)
            base += (now - base) / period * period;
        l->timer_base_ns = base;
        l->timer_count = l->timer_initial;
        lapic_timer_arm(l);
    } else {
        l->timer_count = 0;
    }
    lapic_lvt_raise(l, LVT_TIMER);
}

static void lapic_timer_write_initial(struct lapic *l, uint32_t value)
{
    if (lapic_timer_mode(l) == TIMER_DEADLINE)
        return; /* ignored in TSC-deadline mode (10.5.4.1) */
    l->timer_initial = value;
    lapic_timer_rebase(l, value, tm_now_ns(l->s->vm));
}

static void lapic_timer_write_dcr(struct lapic *l, uint32_t value)
{
    uint64_t now = tm_now_ns(l->s->vm);
    uint32_t current = lapic_timer_current(l, now);
    l->timer_dcr = value & TDCR_WMASK;
    if (l->timer_count && current)
        lapic_timer_rebase(l, current, now);
}

static void lapic_timer_write_lvt(struct lapic *l, uint32_t lvt)
{
    uint64_t now = tm_now_ns(l->s->vm);
    unsigned old_mode = lapic_timer_mode(l);
    uint32_t current = lapic_timer_current(l, now);
    l->lvt[LVT_TIMER] = lvt;
    unsigned mode = lapic_timer_mode(l);
    if (mode == old_mode)
        return;
    if (mode == TIMER_DEADLINE || old_mode == TIMER_DEADLINE) {
        /* Switching into or out of TSC-deadline mode disarms the timer (10.5.4.1). */
        l->timer_count = 0;
        l->tsc_deadline = 0;
        tm_timer_cancel(l->timer);
        return;
    }
    lapic_timer_rebase(l, current, now);
}

static void lapic_deadline_write(struct lapic *l, uint64_t value)
{
    if (lapic_timer_mode(l) != TIMER_DEADLINE)
        return; /* ignored in the other modes */
    l->tsc_deadline = value;
    uint64_t now = tm_now_ns(l->s->vm);
    if (value && lapic_deadline_ns(l, now) <= now) {
        /* A deadline already passed fires at once. */
        tm_timer_cancel(l->timer);
        l->tsc_deadline = 0;
        lapic_lvt_raise(l, LVT_TIMER);
        return;
    }
    lapic_timer_arm(l);
}

/* ---- Message delivery ---------------------------------------------------------------------- */

/* What one APIC does with an interrupt message or a local interrupt of delivery mode dm. */
static bool lapic_receive(struct lapic *l, unsigned dm, uint8_t vector, bool level)
{
    if (!lapic_hw_enabled(l))
        return false;
    switch (dm) {
    case APIC_DM_FIXED:
    case APIC_DM_LOWEST:
        return lapic_accept(l, vector, level);
    case APIC_DM_SMI:
        if (!l->s->smi_logged) {
            l->s->smi_logged = true;
            LOG_WARN("SMI to vCPU %u ignored: no system management mode (logged once)", l->index);
        }
        return true;
    case APIC_DM_NMI:
        l->events |= VM_INTC_EVENT_NMI;
        break;
    case APIC_DM_INIT:
        /* The processor and its APIC go through INIT; a start-up IPI sent before it is void. */
        lapic_reset_regs(l, false);
        l->events = (l->events & ~VM_INTC_EVENT_SIPI) | VM_INTC_EVENT_INIT;
        break;
    case APIC_DM_STARTUP:
        l->events |= VM_INTC_EVENT_SIPI;
        l->sipi_vector = vector;
        break;
    case APIC_DM_EXTINT:
        l->extint_msg = true;
        break;
    default:
        LOG_DEBUG("vCPU %u: message with reserved delivery mode %u dropped", l->index, dm);
        return false;
    }
    lapic_update(l);
    return true;
}

/* The APICs a physical or logical destination selects (10.6.2). */
static uint64_t apic_match(const struct apic_state *s, uint8_t dest, bool logical)
{
    uint64_t mask = 0;
    for (unsigned i = 0; i < s->count; i++) {
        const struct lapic *l = &s->cpu[i];
        bool hit;
        if (!lapic_hw_enabled(l))
            continue;
        if (!logical)
            hit = dest == 0xff || dest == l->id;
        else if (l->dfr_model == 0) /* cluster: 4-bit cluster ID and 4-bit member mask; cluster 0xf is all */
            hit = ((dest >> 4) == 0xf || (dest >> 4) == (l->ldr >> 4)) && (dest & l->ldr & 0x0f);
        else /* flat: a bit mask of 8 logical IDs */
            hit = (dest & l->ldr) != 0;
        if (hit)
            mask |= 1ULL << i;
    }
    return mask;
}

/*
 * Lowest-priority arbitration (10.6.2.4): the focus processor (the vector already in
 * its IRR or ISR) when focus checking is on, else the lowest APR; ties go to the
 * lowest vCPU index, so the choice is deterministic.
 */
static int apic_arbitrate(const struct apic_state *s, uint64_t mask, uint8_t vector)
{
    int best = -1;
    uint8_t best_apr = 0;
    for (unsigned i = 0; i < s->count; i++) {
        const struct lapic *l = &s->cpu[i];
        if (!(mask & (1ULL << i)) || !lapic_sw_enabled(l))
            continue;
        if (!(l->svr & SVR_FOCUS_DISABLE) && (vec_test(l->irr, vector) || vec_test(l->isr, vector)))
            return (int)i;
        uint8_t apr = lapic_apr(l);
        if (best < 0 || apr < best_apr) {
            best = (int)i;
            best_apr = apr;
        }
    }
    return best;
}

static bool apic_send(struct apic_state *s, uint64_t mask, unsigned dm, uint8_t vector, bool level)
{
    if (dm == APIC_DM_LOWEST) {
        int winner = apic_arbitrate(s, mask, vector);
        if (winner < 0)
            return false;
        mask = 1ULL << winner;
    }
    bool accepted = false;
    for (unsigned i = 0; i < s->count; i++)
        if (mask & (1ULL << i))
            accepted |= lapic_receive(&s->cpu[i], dm, vector, level);
    return accepted;
}

/* A write to ICR low sends the IPI (10.6.1). */
static void lapic_send_ipi(struct lapic *src)
{
    struct apic_state *s = src->s;
    uint32_t lo = src->icr_lo;
    uint8_t vector = lo & 0xff;
    unsigned dm = (lo >> 8) & 7;
    unsigned shorthand = (lo >> ICR_SHORTHAND_SHIFT) & 3;
    uint64_t all = s->count >= 64 ? UINT64_MAX : (1ULL << s->count) - 1;
    uint64_t self = 1ULL << src->index;
    if (dm == APIC_DM_INIT && !(lo & ICR_ASSERT) && (lo & ICR_LEVEL)) {
        /* INIT level de-assert only resynchronises arbitration IDs on the APIC bus: nothing to model. */
        return;
    }
    if ((dm == APIC_DM_FIXED || dm == APIC_DM_LOWEST) && vector < 16) {
        lapic_error(src, ESR_SEND_ILLEGAL_VECTOR);
        return;
    }
    uint64_t mask;
    switch (shorthand) {
    case SH_SELF:
        mask = self;
        break;
    case SH_ALL:
        mask = all;
        break;
    case SH_OTHERS:
        mask = all & ~self;
        break;
    default:
        mask = apic_match(s, (uint8_t)(src->icr_hi >> 24), (lo & ICR_LOGICAL) != 0);
        break;
    }
    /* The trigger mode only qualifies INIT de-assert: IPIs are edge-triggered (10.6.1). */
    apic_send(s, mask, dm, vector, false);
}

/* ---- Local interrupts (LVT) ------------------------------------------------------------------ */

/* An LVT source fired (timer, error, a LINT edge, a level LINT while asserted). */
static void lapic_lvt_raise(struct lapic *l, unsigned idx)
{
    uint32_t lvt = l->lvt[idx];
    if (lvt & LVT_MASKED)
        return;
    uint8_t vector = lvt & LVT_VECTOR;
    unsigned dm = idx == LVT_TIMER || idx == LVT_ERROR ? APIC_DM_FIXED : lvt_dm(lvt);
    if (dm == APIC_DM_EXTINT)
        return; /* ExtINT follows the pin level (lapic_extint_pending) */
    if (dm == APIC_DM_FIXED && (idx == LVT_LINT0 || idx == LVT_LINT1) && (lvt & LVT_LEVEL)) {
        /* Level-triggered LINT: remote IRR holds off re-delivery until the EOI (10.5.1). */
        if (lvt & LVT_REMOTE_IRR)
            return;
        if (lapic_accept(l, vector, true))
            l->lvt[idx] |= LVT_REMOTE_IRR;
        return;
    }
    lapic_receive(l, dm, vector, false);
}

static bool lvt_is_level_fixed(uint32_t lvt)
{
    return lvt_dm(lvt) == APIC_DM_FIXED && (lvt & LVT_LEVEL);
}

static void lapic_lvt_write(struct lapic *l, unsigned idx, uint32_t value)
{
    uint32_t lvt = value & g_lvt_wmask[idx];
    /* A software-disabled APIC keeps every LVT entry masked (10.4.7.2). */
    if (!(l->svr & SVR_ENABLE))
        lvt |= LVT_MASKED;
    if (idx == LVT_TIMER) {
        lapic_timer_write_lvt(l, lvt);
        lapic_update(l);
        return;
    }
    if (idx == LVT_LINT0 || idx == LVT_LINT1) {
        if (lvt_is_level_fixed(lvt))
            lvt |= l->lvt[idx] & LVT_REMOTE_IRR;
        l->lvt[idx] = lvt;
        if (lvt_is_level_fixed(lvt) && lapic_lint_active(l, idx - LVT_LINT0))
            lapic_lvt_raise(l, idx);
    } else {
        l->lvt[idx] = lvt;
    }
    lapic_update(l);
}

static void lapic_svr_write(struct lapic *l, uint32_t value)
{
    l->svr = value & SVR_WMASK;
    if (!(l->svr & SVR_ENABLE))
        for (unsigned i = 0; i < LVT_COUNT; i++)
            l->lvt[i] |= LVT_MASKED;
    lapic_update(l);
}

/* EOI (10.8.5): retire the highest in-service vector; level-triggered ones are broadcast. */
static void lapic_eoi(struct lapic *l)
{
    int v = vec_highest(l->isr);
    if (v < 0)
        return;
    vec_clear(l->isr, (unsigned)v);
    if (vec_test(l->tmr, (unsigned)v)) {
        for (unsigned pin = 0; pin < 2; pin++) {
            uint32_t *lvt = &l->lvt[LVT_LINT0 + pin];
            if ((*lvt & LVT_REMOTE_IRR) && (*lvt & LVT_VECTOR) == (unsigned)v) {
                *lvt &= ~LVT_REMOTE_IRR;
                if (lvt_is_level_fixed(*lvt) && lapic_lint_active(l, pin))
                    lapic_lvt_raise(l, LVT_LINT0 + pin);
            }
        }
        if (l->s->eoi_fn)
            l->s->eoi_fn(l->s->eoi_opaque, (uint8_t)v);
    }
    lapic_update(l);
}

/* ---- INTA ----------------------------------------------------------------------------------------- */

static int lapic_inta(struct lapic *l)
{
    struct apic_state *s = l->s;
    int v = lapic_deliverable(l);
    if (v >= 0) {
        vec_clear(l->irr, (unsigned)v);
        vec_set(l->isr, (unsigned)v);
        l->irq_seen = false;
        lapic_update(l);
        return v;
    }
    if (lapic_extint_pending(l)) {
        l->extint_msg = false;
        int vector = s->extint_inta ? s->extint_inta(s->extint_opaque) : -1;
        lapic_update(l);
        return vector;
    }
    if (l->irq_seen && lapic_sw_enabled(l)) {
        /* The interrupt that raised INTR was masked before the INTA (10.9). */
        l->irq_seen = false;
        return (int)(l->svr & 0xff);
    }
    return -1;
}

/* ---- Registers ---------------------------------------------------------------------------------- */

static bool reg_in(unsigned reg, unsigned first, unsigned count)
{
    return reg >= first && reg < first + count * 0x10;
}

static uint32_t lapic_reg_read(struct lapic *l, unsigned reg)
{
    switch (reg) {
    case APIC_REG_ID:
        return (uint32_t)l->id << 24;
    case APIC_REG_VERSION:
        return APIC_VERSION;
    case APIC_REG_TPR:
        return l->tpr;
    case APIC_REG_APR:
        return lapic_apr(l);
    case APIC_REG_PPR:
        return lapic_ppr(l);
    case APIC_REG_EOI:
    case APIC_REG_RRD:
        return 0;
    case APIC_REG_LDR:
        return (uint32_t)l->ldr << 24;
    case APIC_REG_DFR:
        return ((uint32_t)l->dfr_model << 28) | 0x0fffffffu;
    case APIC_REG_SVR:
        return l->svr;
    case APIC_REG_ESR:
        return l->esr;
    case APIC_REG_ICR_LO:
        return l->icr_lo; /* delivery status: always idle, messages go out at once */
    case APIC_REG_ICR_HI:
        return l->icr_hi;
    case APIC_REG_TMICT:
        return l->timer_initial;
    case APIC_REG_TMCCT:
        return lapic_timer_current(l, tm_now_ns(l->s->vm));
    case APIC_REG_TDCR:
        return l->timer_dcr;
    default:
        break;
    }
    if (reg_in(reg, APIC_REG_ISR, 8))
        return l->isr[(reg - APIC_REG_ISR) >> 4];
    if (reg_in(reg, APIC_REG_TMR, 8))
        return l->tmr[(reg - APIC_REG_TMR) >> 4];
    if (reg_in(reg, APIC_REG_IRR, 8))
        return l->irr[(reg - APIC_REG_IRR) >> 4];
    if (reg_in(reg, APIC_REG_LVT, LVT_COUNT))
        return l->lvt[(reg - APIC_REG_LVT) >> 4];
    lapic_error(l, ESR_ILLEGAL_REGISTER);
    return 0;
}

static void lapic_reg_write(struct lapic *l, unsigned reg, uint32_t value)
{
    switch (reg) {
    case APIC_REG_ID:
        l->id = (uint8_t)(value >> 24);
        return;
    case APIC_REG_TPR:
        l->tpr = (uint8_t)value;
        lapic_update(l);
        return;
    case APIC_REG_EOI:
        lapic_eoi(l);
        return;
    case APIC_REG_LDR:
        l->ldr = (uint8_t)(value >> 24);
        return;
    case APIC_REG_DFR:
        l->dfr_model = (uint8_t)(value >> 28);
        return;
    case APIC_REG_SVR:
        lapic_svr_write(l, value);
        return;
    case APIC_REG_ESR:
        /* Write before read: the write latches the errors seen since the last one (10.5.3). */
        l->esr = l->esr_pending;
        l->esr_pending = 0;
        return;
    case APIC_REG_ICR_LO:
        l->icr_lo = value & ICR_LO_WMASK;
        lapic_send_ipi(l);
        return;
    case APIC_REG_ICR_HI:
        l->icr_hi = value & 0xff000000u;
        return;
    case APIC_REG_TMICT:
        lapic_timer_write_initial(l, value);
        return;
    case APIC_REG_TDCR:
        lapic_timer_write_dcr(l, value);
        return;
    case APIC_REG_VERSION:
    case APIC_REG_APR:
    case APIC_REG_PPR:
    case APIC_REG_RRD:
    case APIC_REG_TMCCT:
        return; /* read-only */
    default:
        break;
    }
    if (reg_in(reg, APIC_REG_ISR, 24))
        return; /* ISR, TMR, IRR: read-only */
    if (reg_in(reg, APIC_REG_LVT, LVT_COUNT)) {
        lapic_lvt_write(l, (reg - APIC_REG_LVT) >> 4, value);
        return;
    }
    lapic_error(l, ESR_ILLEGAL_REGISTER);
}

/* The APIC whose page this access reaches: the accessing vCPU's, when its page is here. */
static struct lapic *lapic_accessor(struct lapic *owner)
{
    struct apic_state *s = owner->s;
    struct lapic *l = &s->cpu[0];
    struct vcpu *cur = vcpu_current();
    if (cur && vcpu_get_vm(cur) == s->vm && vcpu_get_index(cur) < s->count)
        l = &s->cpu[vcpu_get_index(cur)];
    if (!mem_region_is_mapped(l->mmio) || l->mapped_gpa != owner->mapped_gpa)
        return NULL;
    return l;
}

/*
 * Registers are 32 bits wide on 16-byte boundaries (10.4.1); narrower reads see their
 * bytes, the other 12 bytes of each slot read as zero, and writes elsewhere are dropped.
 */
static uint64_t apic_mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct lapic *l = lapic_accessor(opaque);
    if (!l)
        return UINT32_MAX;
    if ((offset & 0xf) >= 4)
        return 0;
    return lapic_reg_read(l, (unsigned)(offset & 0xff0)) >> (8 * (offset & 3));
}

static void apic_mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct lapic *l = lapic_accessor(opaque);
    if (!l || (offset & 0xf))
        return;
    lapic_reg_write(l, (unsigned)(offset & 0xff0), (uint32_t)value);
}

static const struct io_ops g_apic_mmio_ops = {
    .read = apic_mmio_read,
    .write = apic_mmio_write,
    .min_access = 4,
    .max_access = 4,
};

/* ---- MSRs --------------------------------------------------------------------------------------- */

static bool lapic_base_write(struct lapic *l, uint64_t value)
{
    uint64_t base_mask = ((1ULL << l->s->phys_bits) - 1) & ~0xfffULL;
    /* Reserved bits and x2APIC enable (not advertised) raise #GP (10.4.4, 10.12.1). */
    if (value & ~(base_mask | APIC_BASE_EN | APIC_BASE_BSP))
        return false;
    bool was_enabled = lapic_hw_enabled(l);
    l->base_msr = (value & (base_mask | APIC_BASE_EN)) | (l->base_msr & APIC_BASE_BSP);
    if (was_enabled && !lapic_hw_enabled(l)) {
        /* A globally disabled APIC loses its state and returns to power-up (10.4.3). */
        lapic_reset_regs(l, true);
        l->events &= VM_INTC_EVENT_NMI;
        LOG_DEBUG("vCPU %u: local APIC globally disabled", l->index);
    }
    lapic_map(l);
    lapic_update(l);
    return true;
}

/* ---- vm_intc callbacks (the CPU side) ---------------------------------------------------------- */

static struct lapic *apic_for_vcpu(struct apic_state *s, struct vcpu *vcpu)
{
    if (!vcpu)
        return &s->cpu[0];
    unsigned i = vcpu_get_index(vcpu);
    return i < s->count ? &s->cpu[i] : NULL;
}

static int apic_intc_ack_vcpu(void *opaque, struct vcpu *vcpu)
{
    struct apic_state *s = opaque;
    vm_lock(s->vm);
    struct lapic *l = apic_for_vcpu(s, vcpu);
    int vector = l ? lapic_inta(l) : -1;
    vm_unlock(s->vm);
    return vector;
}

static int apic_intc_ack(void *opaque)
{
    return apic_intc_ack_vcpu(opaque, NULL);
}

static uint8_t apic_intc_tpr_get(void *opaque, struct vcpu *vcpu)
{
    struct apic_state *s = opaque;
    vm_lock(s->vm);
    struct lapic *l = apic_for_vcpu(s, vcpu);
    uint8_t tpr = l ? l->tpr : 0;
    vm_unlock(s->vm);
    return tpr;
}

static void apic_intc_tpr_set(void *opaque, struct vcpu *vcpu, uint8_t tpr)
{
    struct apic_state *s = opaque;
    vm_lock(s->vm);
    struct lapic *l = apic_for_vcpu(s, vcpu);
    if (l) {
        l->tpr = tpr;
        lapic_update(l);
    }
    vm_unlock(s->vm);
}

static bool apic_intc_msr_read(void *opaque, struct vcpu *vcpu, uint32_t msr, uint64_t *value)
{
    struct apic_state *s = opaque;
    bool ok = true;
    vm_lock(s->vm);
    struct lapic *l = apic_for_vcpu(s, vcpu);
    if (!l || !value)
        ok = false;
    else if (msr == MSR_APIC_BASE)
        *value = l->base_msr;
    else if (msr == MSR_TSC_DEADLINE)
        *value = lapic_hw_enabled(l) && lapic_timer_mode(l) == TIMER_DEADLINE ? l->tsc_deadline : 0;
    else
        ok = false;
    vm_unlock(s->vm);
    return ok;
}

static bool apic_intc_msr_write(void *opaque, struct vcpu *vcpu, uint32_t msr, uint64_t value)
{
    struct apic_state *s = opaque;
    bool ok = true;
    vm_lock(s->vm);
    struct lapic *l = apic_for_vcpu(s, vcpu);
    if (!l)
        ok = false;
    else if (msr == MSR_APIC_BASE)
        ok = lapic_base_write(l, value);
    else if (msr == MSR_TSC_DEADLINE) {
        if (lapic_hw_enabled(l))
            lapic_deadline_write(l, value);
    } else
        ok = false;
    vm_unlock(s->vm);
    return ok;
}

static unsigned apic_intc_take_events(void *opaque, struct vcpu *vcpu, uint8_t *sipi_vector)
{
    struct apic_state *s = opaque;
    vm_lock(s->vm);
    struct lapic *l = apic_for_vcpu(s, vcpu);
    unsigned events = 0;
    if (l) {
        events = l->events;
        l->events = 0;
        if ((events & VM_INTC_EVENT_SIPI) && sipi_vector)
            *sipi_vector = l->sipi_vector;
        lapic_update(l);
    }
    vm_unlock(s->vm);
    return events;
}

static void apic_intc_tsc_sync(void *opaque, struct vcpu *vcpu, uint64_t tsc_khz, uint64_t tsc_offset)
{
    struct apic_state *s = opaque;
    vm_lock(s->vm);
    struct lapic *l = apic_for_vcpu(s, vcpu);
    if (l && tsc_khz) {
        l->tsc_khz = tsc_khz;
        l->tsc_offset = tsc_offset;
        if (lapic_timer_mode(l) == TIMER_DEADLINE)
            lapic_timer_arm(l);
    }
    vm_unlock(s->vm);
}

static void apic_fill_intc(struct apic_state *s, struct vm_intc *out)
{
    *out = (struct vm_intc){
        .ack = apic_intc_ack,
        .opaque = s,
        .ack_vcpu = apic_intc_ack_vcpu,
        .tpr_get = apic_intc_tpr_get,
        .tpr_set = apic_intc_tpr_set,
        .msr_read = apic_intc_msr_read,
        .msr_write = apic_intc_msr_write,
        .take_events = apic_intc_take_events,
        .tsc_sync = apic_intc_tsc_sync,
    };
}

static void apic_install_intc(struct apic_state *s)
{
    struct vm_intc intc;
    apic_fill_intc(s, &intc);
    vm_set_intc(s->vm, &intc);
    s->intc_installed = true;
}

/* ---- Board-facing helpers --------------------------------------------------------------------- */

static struct apic_state *apic_state_of(struct pdm_dev *dev)
{
    return dev && pdm_dev_desc(dev) == &g_dev_apic ? pdm_dev_state(dev) : NULL;
}

bool apic_deliver(struct pdm_dev *apic, const struct apic_msg *msg)
{
    struct apic_state *s = apic_state_of(apic);
    if (!s || !msg)
        return false;
    vm_lock(s->vm);
    bool ok = apic_send(s, apic_match(s, msg->dest, msg->dest_logical), msg->delivery_mode & 7, msg->vector,
                        msg->level);
    vm_unlock(s->vm);
    return ok;
}

void apic_deliver_msi(struct pdm_dev *apic, uint64_t addr, uint32_t data)
{
    /* Address: 0xFEE, destination ID in 19:12, destination mode in bit 2.  Data: vector, delivery mode, trigger. */
    if ((addr >> 20) != 0xfee) {
        LOG_DEBUG("MSI to 0x%llx outside the interrupt window dropped", (unsigned long long)addr);
        return;
    }
    unsigned dm = (data >> 8) & 7;
    if (dm == 3 || dm == APIC_DM_STARTUP) {
        LOG_DEBUG("MSI with reserved delivery mode %u dropped", dm);
        return;
    }
    struct apic_msg msg = {
        .vector = (uint8_t)data,
        .delivery_mode = (uint8_t)dm,
        .dest_logical = (addr & 4) != 0,
        .dest = (uint8_t)(addr >> 12),
        .level = (data & (1u << 15)) != 0,
    };
    apic_deliver(apic, &msg);
}

void apic_set_lint(struct pdm_dev *apic, unsigned cpu, unsigned pin, bool level)
{
    struct apic_state *s = apic_state_of(apic);
    if (!s || cpu >= s->count || pin > 1)
        return;
    vm_lock(s->vm);
    struct lapic *l = &s->cpu[cpu];
    bool was_raw = l->lint[pin];
    bool was_active = lapic_lint_active(l, pin);
    l->lint[pin] = level;
    if (!lapic_hw_enabled(l)) {
        /* Without the APIC, LINT1 is the NMI pin (edge-triggered). */
        if (pin == 1 && level && !was_raw)
            l->events |= VM_INTC_EVENT_NMI;
    } else {
        uint32_t lvt = l->lvt[LVT_LINT0 + pin];
        bool active = lapic_lint_active(l, pin);
        if (lvt_is_level_fixed(lvt)) {
            if (active)
                lapic_lvt_raise(l, LVT_LINT0 + pin);
        } else if (active && !was_active) {
            /* NMI, SMI and INIT are always edge-triggered (10.5.1); so is fixed without the level bit. */
            lapic_lvt_raise(l, LVT_LINT0 + pin);
        }
    }
    lapic_update(l);
    vm_unlock(s->vm);
}

void apic_set_extint(struct pdm_dev *apic, int (*inta)(void *opaque), void *opaque)
{
    struct apic_state *s = apic_state_of(apic);
    if (!s)
        return;
    s->extint_inta = inta;
    s->extint_opaque = opaque;
}

void apic_set_eoi_listener(struct pdm_dev *apic, void (*fn)(void *opaque, uint8_t vector), void *opaque)
{
    struct apic_state *s = apic_state_of(apic);
    if (!s)
        return;
    s->eoi_fn = fn;
    s->eoi_opaque = opaque;
}

void apic_get_intc(struct pdm_dev *apic, struct vm_intc *out)
{
    struct apic_state *s = apic_state_of(apic);
    if (!out)
        return;
    if (s)
        apic_fill_intc(s, out);
    else
        *out = (struct vm_intc){NULL, NULL};
}

uint32_t apic_reg_read(struct pdm_dev *apic, unsigned cpu, unsigned offset)
{
    struct apic_state *s = apic_state_of(apic);
    if (!s || cpu >= s->count || offset >= APIC_PAGE_BYTES || (offset & 0xf))
        return 0;
    vm_lock(s->vm);
    uint32_t v = lapic_reg_read(&s->cpu[cpu], offset);
    vm_unlock(s->vm);
    return v;
}

void apic_reg_write(struct pdm_dev *apic, unsigned cpu, unsigned offset, uint32_t value)
{
    struct apic_state *s = apic_state_of(apic);
    if (!s || cpu >= s->count || offset >= APIC_PAGE_BYTES || (offset & 0xf))
        return;
    vm_lock(s->vm);
    lapic_reg_write(&s->cpu[cpu], offset, value);
    vm_unlock(s->vm);
}

/* ---- Lifecycle ------------------------------------------------------------------------------------ */

static void lapic_drive_low(struct lapic *l)
{
    l->intr = false;
    vcpu_set_intr(l->vcpu, false);
}

static void apic_reset(struct pdm_dev *dev)
{
    struct apic_state *s = pdm_dev_state(dev);
    for (unsigned i = 0; i < s->count; i++) {
        struct lapic *l = &s->cpu[i];
        lapic_reset_regs(l, true);
        l->base_msr = APIC_DEFAULT_BASE | APIC_BASE_EN | (i == 0 ? APIC_BASE_BSP : 0);
        l->events = 0;
        l->sipi_vector = 0;
        lapic_map(l);
        lapic_drive_low(l);
        lapic_update(l);
    }
}

static int apic_cfg_range(const struct pdm_cfg *cfg, const char *dev_name, const char *key, uint64_t def,
                          uint64_t min, uint64_t max, uint64_t *out)
{
    int rc = pdm_cfg_get_u64(cfg, key, def, out);
    if (rc)
        return rc;
    if (*out < min || *out > max) {
        LOG_ERR("%s: %s=%llu is outside %llu..%llu", dev_name, key, (unsigned long long)*out,
                (unsigned long long)min, (unsigned long long)max);
        return VERR_CFG_BAD_VALUE;
    }
    return 0;
}

static int apic_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const keys[] = {"timer_hz", "tsc_khz", "phys_bits", NULL};
    struct apic_state *s = pdm_dev_state(dev);
    const char *name = pdm_dev_name(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    int rc = pdm_cfg_validate(cfg, name, keys);
    uint64_t phys_bits = 0;
    /* 1 GHz bus clock by default (QEMU's choice); the TSC default matches a 1 GHz CPU. */
    if (!rc)
        rc = apic_cfg_range(cfg, name, "timer_hz", NS_PER_SEC, 1000, 100 * NS_PER_SEC, &s->timer_hz);
    if (!rc)
        rc = apic_cfg_range(cfg, name, "tsc_khz", 1000000, 1000, 100000000, &s->tsc_khz);
    if (!rc)
        rc = apic_cfg_range(cfg, name, "phys_bits", 40, 32, 52, &phys_bits);
    if (rc)
        return rc;
    s->phys_bits = (unsigned)phys_bits;
    s->count = vm_get_vcpu_count(s->vm);
    if (s->count == 0 || s->count > APIC_MAX_CPUS) {
        LOG_ERR("%s: %u vCPUs; the local APIC model supports 1 to %u", name, s->count, APIC_MAX_CPUS);
        return VERR_NOT_SUPPORTED;
    }
    s->cpu = calloc(s->count, sizeof(*s->cpu));
    if (!s->cpu)
        return VERR_NO_MEMORY;
    for (unsigned i = 0; i < s->count; i++) {
        struct lapic *l = &s->cpu[i];
        l->s = s;
        l->index = i;
        l->vcpu = vm_get_vcpu(s->vm, i);
        l->tsc_khz = s->tsc_khz;
    }
    for (unsigned i = 0; i < s->count; i++) {
        struct lapic *l = &s->cpu[i];
        char rname[32];
        snprintf(rname, sizeof(rname), "apic%u", i);
        rc = mem_region_create_mmio(s->vm, rname, APIC_PAGE_BYTES, &g_apic_mmio_ops, l, &l->mmio);
        if (!rc) {
            snprintf(rname, sizeof(rname), "apic%u-timer", i);
            rc = tm_timer_create(s->vm, rname, lapic_timer_fired, l, &l->timer);
        }
        if (rc)
            return rc;
    }
    apic_install_intc(s);
    apic_reset(dev);
    return 0;
}

static void apic_destroy(struct pdm_dev *dev)
{
    struct apic_state *s = pdm_dev_state(dev);
    if (s->intc_installed)
        vm_set_intc(s->vm, &(struct vm_intc){NULL, NULL});
    for (unsigned i = 0; s->cpu && i < s->count; i++) {
        tm_timer_destroy(s->cpu[i].timer);
        mem_region_destroy(s->cpu[i].mmio);
    }
    free(s->cpu);
    s->cpu = NULL;
    s->count = 0;
}

/* ---- Saved state ---------------------------------------------------------------------------------- */

static void put_vec(struct ssm *ssm, const uint32_t *r)
{
    for (unsigned i = 0; i < 8; i++)
        ssm_put_u32(ssm, r[i]);
}

static void get_vec(struct ssm *ssm, uint32_t *r)
{
    for (unsigned i = 0; i < 8; i++)
        ssm_get_u32(ssm, &r[i]);
}

static int apic_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct apic_state *s = pdm_dev_state(dev);
    ssm_put_u32(ssm, s->count);
    for (unsigned i = 0; i < s->count; i++) {
        const struct lapic *l = &s->cpu[i];
        ssm_put_u64(ssm, l->base_msr);
        ssm_put_u8(ssm, l->id);
        ssm_put_u8(ssm, l->tpr);
        ssm_put_u8(ssm, l->ldr);
        ssm_put_u8(ssm, l->dfr_model);
        ssm_put_u32(ssm, l->svr);
        put_vec(ssm, l->irr);
        put_vec(ssm, l->isr);
        put_vec(ssm, l->tmr);
        ssm_put_u32(ssm, l->esr);
        ssm_put_u32(ssm, l->esr_pending);
        ssm_put_u32(ssm, l->icr_lo);
        ssm_put_u32(ssm, l->icr_hi);
        for (unsigned j = 0; j < LVT_COUNT; j++)
            ssm_put_u32(ssm, l->lvt[j]);
        ssm_put_u32(ssm, l->timer_initial);
        ssm_put_u32(ssm, l->timer_dcr);
        ssm_put_u32(ssm, l->timer_count);
        ssm_put_u64(ssm, l->timer_base_ns);
        ssm_put_u64(ssm, l->tsc_deadline);
        ssm_put_u64(ssm, l->tsc_khz);
        ssm_put_u64(ssm, l->tsc_offset);
        ssm_put_bool(ssm, l->lint[0]);
        ssm_put_bool(ssm, l->lint[1]);
        ssm_put_bool(ssm, l->extint_msg);
        ssm_put_u32(ssm, l->events);
        ssm_put_u8(ssm, l->sipi_vector);
        ssm_put_bool(ssm, l->irq_seen);
    }
    return ssm_status(ssm);
}

static bool lapic_loaded_ok(const struct apic_state *s, const struct lapic *l)
{
    uint64_t base_mask = ((1ULL << s->phys_bits) - 1) & ~0xfffULL;
    if (l->base_msr & ~(base_mask | APIC_BASE_EN | APIC_BASE_BSP))
        return false;
    if ((l->svr & ~SVR_WMASK) || (l->icr_lo & ~ICR_LO_WMASK) || (l->icr_hi & 0x00ffffffu) ||
        (l->timer_dcr & ~TDCR_WMASK) || l->tsc_khz == 0 || (l->events & ~7u))
        return false;
    for (unsigned j = 0; j < LVT_COUNT; j++)
        if (l->lvt[j] & ~(g_lvt_wmask[j] | LVT_REMOTE_IRR))
            return false;
    return true;
}

static int apic_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct apic_state *s = pdm_dev_state(dev);
    if (version != APIC_SSM_VERSION)
        return VERR_SSM_VERSION;
    uint32_t count = 0;
    ssm_get_u32(ssm, &count);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    if (count != s->count) {
        LOG_ERR("saved state of %s has %u local APICs, this VM has %u vCPUs", pdm_dev_name(dev), count, s->count);
        return VERR_SSM_CORRUPT;
    }
    struct lapic *tmp = calloc(s->count, sizeof(*tmp));
    if (!tmp)
        return VERR_NO_MEMORY;
    memcpy(tmp, s->cpu, s->count * sizeof(*tmp));
    for (unsigned i = 0; i < s->count; i++) {
        struct lapic *l = &tmp[i];
        ssm_get_u64(ssm, &l->base_msr);
        ssm_get_u8(ssm, &l->id);
        ssm_get_u8(ssm, &l->tpr);
        ssm_get_u8(ssm, &l->ldr);
        ssm_get_u8(ssm, &l->dfr_model);
        ssm_get_u32(ssm, &l->svr);
        get_vec(ssm, l->irr);
        get_vec(ssm, l->isr);
        get_vec(ssm, l->tmr);
        ssm_get_u32(ssm, &l->esr);
        ssm_get_u32(ssm, &l->esr_pending);
        ssm_get_u32(ssm, &l->icr_lo);
        ssm_get_u32(ssm, &l->icr_hi);
        for (unsigned j = 0; j < LVT_COUNT; j++)
            ssm_get_u32(ssm, &l->lvt[j]);
        ssm_get_u32(ssm, &l->timer_initial);
        ssm_get_u32(ssm, &l->timer_dcr);
        ssm_get_u32(ssm, &l->timer_count);
        ssm_get_u64(ssm, &l->timer_base_ns);
        ssm_get_u64(ssm, &l->tsc_deadline);
        ssm_get_u64(ssm, &l->tsc_khz);
        ssm_get_u64(ssm, &l->tsc_offset);
        ssm_get_bool(ssm, &l->lint[0]);
        ssm_get_bool(ssm, &l->lint[1]);
        ssm_get_bool(ssm, &l->extint_msg);
        ssm_get_u32(ssm, &l->events);
        ssm_get_u8(ssm, &l->sipi_vector);
        ssm_get_bool(ssm, &l->irq_seen);
    }
    rc = ssm_status(ssm);
    for (unsigned i = 0; !rc && i < s->count; i++) {
        if (!lapic_loaded_ok(s, &tmp[i])) {
            LOG_ERR("saved state of %s is inconsistent (local APIC %u)", pdm_dev_name(dev), i);
            rc = VERR_SSM_CORRUPT;
        }
    }
    if (rc) {
        free(tmp);
        return rc;
    }
    memcpy(s->cpu, tmp, s->count * sizeof(*tmp));
    free(tmp);
    for (unsigned i = 0; i < s->count; i++) {
        struct lapic *l = &s->cpu[i];
        lapic_map(l);
        lapic_timer_arm(l);
        lapic_drive_low(l);
        lapic_update(l);
    }
    return 0;
}

const struct pdm_dev_desc g_dev_apic = {
    .name = "apic",
    .description = "local APICs of all vCPUs (xAPIC)",
    .state_size = sizeof(struct apic_state),
    .ssm_version = APIC_SSM_VERSION,
    .construct = apic_construct,
    .reset = apic_reset,
    .save = apic_save,
    .load = apic_load,
    .destroy = apic_destroy,
};
