/* i8259.c - the 8259A interrupt controller pair (master 0x20, slave 0xa0, cascade on IR2) with PIIX3's ELCR
 * (0x4d0/0x4d1). */

/*
 * Design: two chips with the datasheet's registers (IRR, ISR, IMR), the ICW1-ICW4
 * initialization sequence and the OCW commands.  The interrupt router's GSIs 0-15
 * are the IR pins (GSI n is ISA IRQ n: 0-7 on the master, 8-15 on the slave).  The
 * slave's INT output is the master's IR2 pin, and the master's INT output is the
 * INTR line of vCPU 0; the INTA cycle is the vm_intc ack callback.  With local
 * APICs the board redirects the INT output (pic_set_output) into the BSP's LINT0
 * and the APIC runs the INTA cycle (pic_intack) for ExtINT interrupts.
 *
 * Each input is edge- or level-sensitive: level when the chip's ICW1 LTIM bit is
 * set or the input's ELCR bit is (PIIX3 datasheet, 4.1.12: ELCR1/ELCR2; IRQ0, 1, 2,
 * 8 and 13 must stay edge-triggered, so those ELCR bits are read-only zero).  In
 * edge mode a rising edge latches the IRR bit until INTA or initialization; in
 * level mode the IRR bit follows the pin.
 *
 * Priority: `lowest` is the IR with the lowest priority (7 after ICW1); the next IR
 * round the ring has the highest.  A request is delivered when it is unmasked and
 * its priority is above every in-service level that still blocks (8259A datasheet,
 * "Fully Nested Mode", "Special Mask Mode", "Special Fully Nested Mode").
 *
 * INTA and spurious requests: the datasheet answers an INTA with the IR7 vector,
 * without setting an ISR bit, when the request that raised INT has gone away by
 * then (a level input dropped).  INTR is recomputed on every change here, so that
 * happens when the CPU side acknowledges after INTR fell: ack() returns the IR7
 * vector when INTR was raised since the last INTA, and -1 when nothing was ever
 * signalled.  When the master picks its cascade input and the slave has nothing,
 * the slave answers with its own IR7 vector (the classic spurious IRQ15) and the
 * master's ISR2 stays set, as on the real pair.
 *
 * The slave's INT is modelled as released during the INTA cycle, so a slave that
 * still has a deliverable request presents a fresh edge on the master's IR2 and no
 * request is lost while the master's cascade input is edge-triggered.
 *
 * GSI 2 is not an IR pin (the master's IR2 carries the cascade); on the I/O APIC
 * GSI 2 is the timer's input, which the PIC does not see.
 */

#include <string.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "pic"

#define PIC_SSM_VERSION 1
#define PIC_MASTER      0
#define PIC_SLAVE       1
#define PIC_CASCADE_IR  2
#define PIC_MASTER_PORT 0x20
#define PIC_SLAVE_PORT  0xa0
#define PIC_ELCR_PORT   0x4d0
/* ELCR bits that can be set: IRQ0-2 (master) and IRQ8, IRQ13 (slave) are edge only. */
#define PIC_ELCR_MASK_MASTER 0xf8
#define PIC_ELCR_MASK_SLAVE  0xde
/* ICW1, OCW2 and OCW3 bits (8259A datasheet, "Initialization Command Words", "Operation Command Words"). */
#define PIC_ICW1_IC4    0x01
#define PIC_ICW1_SNGL   0x02
#define PIC_ICW1_LTIM   0x08
#define PIC_ICW1_SELECT 0x10
#define PIC_OCW3_SELECT 0x08
#define PIC_OCW3_RIS    0x01
#define PIC_OCW3_RR     0x02
#define PIC_OCW3_POLL   0x04
#define PIC_OCW3_SMM    0x20
#define PIC_OCW3_ESMM   0x40
#define PIC_ICW4_UPM    0x01
#define PIC_ICW4_AEOI   0x02
#define PIC_ICW4_SFNM   0x10
/* Initialization steps: which ICW the next odd-port write is. */
#define PIC_INIT_READY 0
#define PIC_INIT_ICW2  2
#define PIC_INIT_ICW3  3
#define PIC_INIT_ICW4  4

struct pic_chip {
    uint8_t irr, isr, imr;
    uint8_t pins;        /* IR input levels */
    uint8_t elcr;        /* level-triggered inputs (ELCR) */
    uint8_t elcr_mask;   /* ELCR bits that may be set */
    uint8_t vector_base; /* ICW2 T7-T3 */
    uint8_t icw3;        /* master: inputs with a slave; slave: its ID */
    uint8_t icw4;        /* as written (0 when ICW1 said no ICW4); BUF and M/S only steer bus buffers */
    uint8_t lowest;      /* IR with the lowest priority */
    uint8_t init_step;   /* PIC_INIT_* */
    bool icw4_needed, single, ltim;
    bool rotate_aeoi;
    bool special_mask;
    bool read_isr;
    bool poll;
    bool initialised; /* a full ICW sequence has completed since reset */
};

struct pic_state {
    struct pdm_dev *dev;
    struct vm *vm;
    struct io_region *io_master, *io_slave, *io_elcr;
    struct pic_chip chip[2];
    uint16_t elcr_reset; /* ELCR value after reset ("elcr" config) */
    bool intr;           /* master INT: vCPU 0's INTR line, or the output callback's level */
    void (*output)(void *opaque, bool level); /* where INT goes instead of vCPU 0 (pic_set_output) */
    void *output_opaque;
    bool intr_seen;      /* INTR was high at some point since the last INTA */
    bool upm_logged;
};

/* ---- Priority resolution ---------------------------------------------------- */

static uint8_t pic_level_mask(const struct pic_chip *c)
{
    return c->ltim ? 0xff : c->elcr;
}

/* 0 is the highest priority. */
static unsigned pic_prio(const struct pic_chip *c, unsigned ir)
{
    return (ir - c->lowest - 1u) & 7u;
}

/* The IR with the highest priority among bits, or -1. */
static int pic_highest(const struct pic_chip *c, uint8_t bits)
{
    for (unsigned i = 0; i < 8; i++) {
        unsigned ir = (c->lowest + 1u + i) & 7u;
        if (bits & (1u << ir))
            return (int)ir;
    }
    return -1;
}

static bool pic_is_ready(const struct pic_chip *c)
{
    return c->initialised && c->init_step == PIC_INIT_READY;
}

static bool pic_has_cascade(const struct pic_chip *master)
{
    return !master->single && (master->icw3 & (1u << PIC_CASCADE_IR));
}

static bool pic_sfnm(const struct pic_chip *c)
{
    return (c->icw4 & PIC_ICW4_SFNM) != 0;
}

/*
 * The IR this chip would present on INTA, or -1: the highest-priority unmasked
 * request whose priority is above every blocking in-service level.  In special mask
 * mode an in-service level that is masked does not block; in special fully nested
 * mode the master's in-service cascade input does not block a new request on it.
 */
static int pic_pending(const struct pic_chip *c, bool is_master)
{
    int ir = pic_highest(c, c->irr & (uint8_t)~c->imr);
    if (ir < 0)
        return -1;
    uint8_t block = c->isr;
    if (c->special_mask)
        block &= (uint8_t)~c->imr;
    if (is_master && ir == PIC_CASCADE_IR && pic_sfnm(c) && pic_has_cascade(c))
        block &= (uint8_t) ~(1u << PIC_CASCADE_IR);
    int in = pic_highest(c, block);
    if (in >= 0 && pic_prio(c, (unsigned)in) <= pic_prio(c, (unsigned)ir))
        return -1;
    return ir;
}

/* ---- Pins and outputs ------------------------------------------------------- */

static void pic_chip_set_pin(struct pic_chip *c, unsigned ir, bool level)
{
    uint8_t bit = (uint8_t)(1u << ir);
    if (level) {
        /* Edge mode latches a rising edge; level mode tracks the pin. */
        if (!(c->pins & bit) || (pic_level_mask(c) & bit))
            c->irr |= bit;
        c->pins |= bit;
    } else {
        c->pins &= (uint8_t)~bit;
        if (pic_level_mask(c) & bit)
            c->irr &= (uint8_t)~bit;
    }
}

static bool pic_chip_int(const struct pic_chip *c, bool is_master)
{
    return pic_is_ready(c) && pic_pending(c, is_master) >= 0;
}

/* Drives the master's INT output: the board's callback, or vCPU 0's INTR line. */
static void pic_drive(struct pic_state *s, bool level)
{
    if (s->output) {
        s->output(s->output_opaque, level);
        return;
    }
    struct vcpu *vcpu = vm_get_vcpu(s->vm, 0);
    if (vcpu)
        vcpu_set_intr(vcpu, level);
}

/* Propagates the slave's INT into the master's IR2 and the master's INT to its output. */
static void pic_update(struct pic_state *s)
{
    struct pic_chip *m = &s->chip[PIC_MASTER];
    if (!m->single)
        pic_chip_set_pin(m, PIC_CASCADE_IR, pic_chip_int(&s->chip[PIC_SLAVE], false));
    bool intr = pic_chip_int(m, true);
    if (intr)
        s->intr_seen = true;
    if (intr != s->intr) {
        s->intr = intr;
        pic_drive(s, intr);
    }
}

/* The INTA (or poll) side of one chip for the request at ir (datasheet, "Interrupt Sequence"). */
static void pic_chip_ack(struct pic_chip *c, unsigned ir)
{
    uint8_t bit = (uint8_t)(1u << ir);
    c->irr &= (uint8_t)~bit;
    if (pic_level_mask(c) & c->pins & bit)
        c->irr |= bit;
    if (c->icw4 & PIC_ICW4_AEOI) {
        /* Automatic EOI: no ISR bit; with rotation the level just served goes last. */
        if (c->rotate_aeoi)
            c->lowest = (uint8_t)ir;
    } else {
        c->isr |= bit;
    }
}

static int pic_inta(void *opaque)
{
    struct pic_state *s = opaque;
    struct pic_chip *m = &s->chip[PIC_MASTER];
    struct pic_chip *sl = &s->chip[PIC_SLAVE];
    if (!pic_is_ready(m))
        return -1;
    int ir = pic_pending(m, true);
    if (ir < 0) {
        int vector = s->intr_seen ? (m->vector_base | 7) : -1;
        s->intr_seen = s->intr;
        return vector;
    }
    int vector;
    pic_chip_ack(m, (unsigned)ir);
    if (ir == PIC_CASCADE_IR && pic_has_cascade(m)) {
        int sir = pic_is_ready(sl) ? pic_pending(sl, false) : -1;
        if (sir < 0) {
            vector = sl->vector_base | 7;
        } else {
            pic_chip_ack(sl, (unsigned)sir);
            vector = sl->vector_base + sir;
        }
        /* The slave released INT during INTA: a request it still has is a new edge. */
        m->pins &= (uint8_t) ~(1u << PIC_CASCADE_IR);
    } else {
        vector = m->vector_base + ir;
    }
    if (!(m->icw4 & PIC_ICW4_UPM) && !s->upm_logged) {
        s->upm_logged = true;
        LOG_WARN("MCS-80/85 mode (ICW4 uPM=0) is not emulated; delivering 8086 vectors");
    }
    s->intr_seen = false;
    pic_update(s);
    return vector;
}

/* ---- Commands ---------------------------------------------------------------- */

/* ICW1: the datasheet's list of what initialization resets. */
static void pic_icw1(struct pic_chip *c, uint8_t value)
{
    c->icw4_needed = (value & PIC_ICW1_IC4) != 0;
    c->single = (value & PIC_ICW1_SNGL) != 0;
    c->ltim = (value & PIC_ICW1_LTIM) != 0;
    c->imr = 0;
    c->isr = 0;
    /* The edge sense circuit is reset: edge inputs need a new low-to-high transition. */
    c->irr = c->pins & pic_level_mask(c);
    c->lowest = 7;
    c->special_mask = false;
    c->read_isr = false;
    c->poll = false;
    c->rotate_aeoi = false;
    c->icw4 = 0;
    c->init_step = PIC_INIT_ICW2;
    c->initialised = false;
}

static void pic_ocw2(struct pic_chip *c, uint8_t value)
{
    unsigned level = value & 7u;
    uint8_t eoi_mask = c->isr;
    int ir;
    /* A non-specific EOI in special mask mode skips in-service levels that are masked. */
    if (c->special_mask)
        eoi_mask &= (uint8_t)~c->imr;
    switch (value >> 5) {
    case 0: /* clear rotate in automatic EOI mode */
        c->rotate_aeoi = false;
        break;
    case 1: /* non-specific EOI */
    case 5: /* rotate on non-specific EOI */
        ir = pic_highest(c, eoi_mask);
        if (ir >= 0) {
            c->isr &= (uint8_t) ~(1u << ir);
            if ((value >> 5) == 5)
                c->lowest = (uint8_t)ir;
        }
        break;
    case 2: /* no operation */
        break;
    case 3: /* specific EOI */
        c->isr &= (uint8_t) ~(1u << level);
        break;
    case 4: /* set rotate in automatic EOI mode */
        c->rotate_aeoi = true;
        break;
    case 6: /* set priority: level becomes the lowest */
        c->lowest = (uint8_t)level;
        break;
    default: /* 7: rotate on specific EOI */
        c->isr &= (uint8_t) ~(1u << level);
        c->lowest = (uint8_t)level;
        break;
    }
}

static void pic_ocw3(struct pic_chip *c, uint8_t value)
{
    if (value & PIC_OCW3_POLL)
        c->poll = true;
    if (value & PIC_OCW3_RR)
        c->read_isr = (value & PIC_OCW3_RIS) != 0;
    if (value & PIC_OCW3_ESMM)
        c->special_mask = (value & PIC_OCW3_SMM) != 0;
}

static void pic_write_odd(struct pic_state *s, struct pic_chip *c, uint8_t value)
{
    switch (c->init_step) {
    case PIC_INIT_ICW2:
        c->vector_base = value & 0xf8;
        if (!c->single)
            c->init_step = PIC_INIT_ICW3;
        else
            c->init_step = c->icw4_needed ? PIC_INIT_ICW4 : PIC_INIT_READY;
        break;
    case PIC_INIT_ICW3:
        c->icw3 = value;
        c->init_step = c->icw4_needed ? PIC_INIT_ICW4 : PIC_INIT_READY;
        break;
    case PIC_INIT_ICW4:
        c->icw4 = value & 0x1f;
        c->init_step = PIC_INIT_READY;
        break;
    default: /* OCW1 */
        c->imr = value;
        break;
    }
    if (c->init_step == PIC_INIT_READY && !c->initialised) {
        c->initialised = true;
        LOG_DEBUG("%s initialised: vector base 0x%02x, icw3 0x%02x, icw4 0x%02x",
                  c == &s->chip[PIC_MASTER] ? "master" : "slave", c->vector_base, c->icw3, c->icw4);
    }
}

/* Poll command: the next read is an INTA for this chip alone (datasheet, "The Poll Command"). */
static uint8_t pic_poll_read(struct pic_state *s, struct pic_chip *c, bool is_master)
{
    c->poll = false;
    int ir = pic_pending(c, is_master);
    if (ir < 0)
        return 0;
    pic_chip_ack(c, (unsigned)ir);
    pic_update(s);
    return (uint8_t)(0x80 | ir);
}

/* ---- Port handlers ------------------------------------------------------------- */

static uint8_t pic_port_read(struct pic_state *s, unsigned index, uint64_t offset)
{
    struct pic_chip *c = &s->chip[index];
    if (offset & 1)
        return c->imr;
    if (c->poll)
        return pic_poll_read(s, c, index == PIC_MASTER);
    return c->read_isr ? c->isr : c->irr;
}

static void pic_port_write(struct pic_state *s, unsigned index, uint64_t offset, uint8_t value)
{
    struct pic_chip *c = &s->chip[index];
    if (offset & 1)
        pic_write_odd(s, c, value);
    else if (value & PIC_ICW1_SELECT)
        pic_icw1(c, value);
    else if (value & PIC_OCW3_SELECT)
        pic_ocw3(c, value);
    else
        pic_ocw2(c, value);
    pic_update(s);
}

static uint64_t pic_master_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return pic_port_read(opaque, PIC_MASTER, offset);
}

static void pic_master_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    (void)size;
    pic_port_write(opaque, PIC_MASTER, offset, (uint8_t)value);
}

static uint64_t pic_slave_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)size;
    return pic_port_read(opaque, PIC_SLAVE, offset);
}

static void pic_slave_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    (void)size;
    pic_port_write(opaque, PIC_SLAVE, offset, (uint8_t)value);
}

/* Switching inputs between edge and level: level inputs' IRR follows the pin from now on. */
static void pic_chip_set_elcr(struct pic_chip *c, uint8_t value)
{
    c->elcr = value & c->elcr_mask;
    uint8_t level = pic_level_mask(c);
    c->irr = (uint8_t)((c->irr & ~level) | (c->pins & level));
}

static uint64_t pic_elcr_read(void *opaque, uint64_t offset, unsigned size)
{
    struct pic_state *s = opaque;
    (void)size;
    return s->chip[offset & 1].elcr;
}

static void pic_elcr_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct pic_state *s = opaque;
    (void)size;
    pic_chip_set_elcr(&s->chip[offset & 1], (uint8_t)value);
    pic_update(s);
}

static const struct io_ops g_pic_master_ops = {
    .read = pic_master_read,
    .write = pic_master_write,
    .min_access = 1,
    .max_access = 1,
};
static const struct io_ops g_pic_slave_ops = {
    .read = pic_slave_read,
    .write = pic_slave_write,
    .min_access = 1,
    .max_access = 1,
};
static const struct io_ops g_pic_elcr_ops = {
    .read = pic_elcr_read,
    .write = pic_elcr_write,
    .min_access = 1,
    .max_access = 1,
};

/* ---- Router input ---------------------------------------------------------------- */

static void pic_gsi_changed(void *opaque, unsigned gsi, bool level)
{
    struct pic_state *s = opaque;
    if (gsi >= 16 || gsi == PIC_CASCADE_IR)
        return;
    pic_chip_set_pin(&s->chip[gsi >> 3], gsi & 7u, level);
    pic_update(s);
}

/* ---- Lifecycle -------------------------------------------------------------------- */

static void pic_reset(struct pdm_dev *dev)
{
    struct pic_state *s = pdm_dev_state(dev);
    for (unsigned i = 0; i < 2; i++) {
        struct pic_chip *c = &s->chip[i];
        memset(c, 0, sizeof(*c));
        c->elcr_mask = i == PIC_MASTER ? PIC_ELCR_MASK_MASTER : PIC_ELCR_MASK_SLAVE;
        c->elcr = (uint8_t)(s->elcr_reset >> (8 * i)) & c->elcr_mask;
        c->lowest = 7;
        for (unsigned ir = 0; ir < 8; ir++) {
            unsigned gsi = i * 8 + ir;
            if (gsi != PIC_CASCADE_IR && pdm_irq_gsi_level(s->vm, gsi))
                c->pins |= (uint8_t)(1u << ir);
        }
        c->irr = c->pins & pic_level_mask(c);
    }
    s->intr = false;
    s->intr_seen = false;
    pic_drive(s, false);
}

static int pic_region(struct pic_state *s, const char *name, uint16_t port, const struct io_ops *ops,
                      struct io_region **out)
{
    int rc = iom_region_create(s->vm, name, 2, ops, s, out);
    if (!rc)
        rc = iom_region_map(*out, port);
    if (rc)
        LOG_ERR("cannot claim ports 0x%x-0x%x for %s: %s", port, port + 1, name, rt_err_str(rc));
    return rc;
}

static int pic_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const keys[] = {"elcr", NULL};
    struct pic_state *s = pdm_dev_state(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    int rc = pdm_cfg_validate(cfg, pdm_dev_name(dev), keys);
    if (rc)
        return rc;
    uint64_t elcr;
    rc = pdm_cfg_get_u64(cfg, "elcr", 0, &elcr);
    if (rc)
        return rc;
    if (elcr > 0xffff) {
        LOG_ERR("%s: elcr=0x%llx does not fit the 16 ELCR bits", pdm_dev_name(dev), (unsigned long long)elcr);
        return VERR_CFG_BAD_VALUE;
    }
    s->elcr_reset = (uint16_t)elcr;
    rc = pic_region(s, "pic-master", PIC_MASTER_PORT, &g_pic_master_ops, &s->io_master);
    if (!rc)
        rc = pic_region(s, "pic-slave", PIC_SLAVE_PORT, &g_pic_slave_ops, &s->io_slave);
    if (!rc)
        rc = pic_region(s, "elcr", PIC_ELCR_PORT, &g_pic_elcr_ops, &s->io_elcr);
    if (!rc)
        rc = pdm_irq_sink_add(s->vm, pic_gsi_changed, s);
    if (rc)
        return rc;
    vm_set_intc(s->vm, &(struct vm_intc){pic_inta, s});
    pic_reset(dev);
    return 0;
}

static void pic_destroy(struct pdm_dev *dev)
{
    struct pic_state *s = pdm_dev_state(dev);
    if (s->vm) {
        vm_set_intc(s->vm, &(struct vm_intc){NULL, NULL});
        pdm_irq_sink_remove(s->vm, pic_gsi_changed, s);
    }
    iom_region_destroy(s->io_elcr);
    iom_region_destroy(s->io_slave);
    iom_region_destroy(s->io_master);
}

/* ---- Saved state -------------------------------------------------------------------- */

static int pic_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct pic_state *s = pdm_dev_state(dev);
    for (unsigned i = 0; i < 2; i++) {
        const struct pic_chip *c = &s->chip[i];
        ssm_put_u8(ssm, c->irr);
        ssm_put_u8(ssm, c->isr);
        ssm_put_u8(ssm, c->imr);
        ssm_put_u8(ssm, c->pins);
        ssm_put_u8(ssm, c->elcr);
        ssm_put_u8(ssm, c->vector_base);
        ssm_put_u8(ssm, c->icw3);
        ssm_put_u8(ssm, c->icw4);
        ssm_put_u8(ssm, c->lowest);
        ssm_put_u8(ssm, c->init_step);
        ssm_put_bool(ssm, c->icw4_needed);
        ssm_put_bool(ssm, c->single);
        ssm_put_bool(ssm, c->ltim);
        ssm_put_bool(ssm, c->rotate_aeoi);
        ssm_put_bool(ssm, c->special_mask);
        ssm_put_bool(ssm, c->read_isr);
        ssm_put_bool(ssm, c->poll);
        ssm_put_bool(ssm, c->initialised);
    }
    ssm_put_bool(ssm, s->intr_seen);
    return ssm_status(ssm);
}

static int pic_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct pic_state *s = pdm_dev_state(dev);
    if (version != PIC_SSM_VERSION)
        return VERR_SSM_VERSION;
    struct pic_chip chips[2];
    bool intr_seen = false;
    memcpy(chips, s->chip, sizeof(chips));
    for (unsigned i = 0; i < 2; i++) {
        struct pic_chip *c = &chips[i];
        ssm_get_u8(ssm, &c->irr);
        ssm_get_u8(ssm, &c->isr);
        ssm_get_u8(ssm, &c->imr);
        ssm_get_u8(ssm, &c->pins);
        ssm_get_u8(ssm, &c->elcr);
        ssm_get_u8(ssm, &c->vector_base);
        ssm_get_u8(ssm, &c->icw3);
        ssm_get_u8(ssm, &c->icw4);
        ssm_get_u8(ssm, &c->lowest);
        ssm_get_u8(ssm, &c->init_step);
        ssm_get_bool(ssm, &c->icw4_needed);
        ssm_get_bool(ssm, &c->single);
        ssm_get_bool(ssm, &c->ltim);
        ssm_get_bool(ssm, &c->rotate_aeoi);
        ssm_get_bool(ssm, &c->special_mask);
        ssm_get_bool(ssm, &c->read_isr);
        ssm_get_bool(ssm, &c->poll);
        ssm_get_bool(ssm, &c->initialised);
    }
    ssm_get_bool(ssm, &intr_seen);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    for (unsigned i = 0; i < 2; i++) {
        struct pic_chip *c = &chips[i];
        bool step_ok = c->init_step == PIC_INIT_READY || c->init_step == PIC_INIT_ICW2 ||
                       c->init_step == PIC_INIT_ICW3 || c->init_step == PIC_INIT_ICW4;
        if (c->lowest > 7 || !step_ok || (c->elcr & ~s->chip[i].elcr_mask) || (c->icw4 & ~0x1f) ||
            (c->vector_base & 7)) {
            LOG_ERR("saved state of %s is inconsistent", pdm_dev_name(dev));
            return VERR_SSM_CORRUPT;
        }
        c->elcr_mask = s->chip[i].elcr_mask;
    }
    memcpy(s->chip, chips, sizeof(chips));
    s->intr = false;
    pic_drive(s, false);
    pic_update(s);
    s->intr_seen = intr_seen || s->intr;
    return 0;
}

/* ---- Board wiring ---------------------------------------------------------------------- */

void pic_set_output(struct pdm_dev *pic, void (*fn)(void *opaque, bool level), void *opaque)
{
    struct pic_state *s = pdm_dev_state(pic);
    /* vCPU 0's INTR is no longer ours to drive: leave it low for its new owner. */
    if (!s->output && s->intr && fn)
        pic_drive(s, false);
    s->output = fn;
    s->output_opaque = opaque;
    pic_drive(s, s->intr);
}

int pic_intack(struct pdm_dev *pic)
{
    struct pic_state *s = pdm_dev_state(pic);
    vm_lock(s->vm);
    int vector = pic_inta(s);
    vm_unlock(s->vm);
    return vector;
}

const struct pdm_dev_desc g_dev_i8259 = {
    .name = "i8259",
    .description = "8259A master/slave interrupt controllers with ELCR",
    .state_size = sizeof(struct pic_state),
    .ssm_version = PIC_SSM_VERSION,
    .construct = pic_construct,
    .reset = pic_reset,
    .save = pic_save,
    .load = pic_load,
    .destroy = pic_destroy,
};
