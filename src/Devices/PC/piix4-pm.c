/* piix4-pm.c - the PIIX4 power-management function (PCI 00:01.3): ACPI PM1/GPE0 registers, PM timer, SCI, APM port, power button and soft-off. */

/*
 * Design: the function is what the ACPI tables' FADT points at (Intel 82371AB
 * PIIX4 datasheet, section 7 "Power Management" and 11 "Power Management
 * Registers"; ACPI 6.4 section 4.8 "Fixed Hardware Registers").
 *
 * Config space: PMBA (0x40) holds the I/O base of the 64-byte register block (bits
 * 15:6; bit 0 reads 1, an I/O resource), PMREGMISC (0x80) bit 0 (PMIOSE) lets the
 * block decode.  The firmware programs PMBA = PC_ACPI_PM_BASE; another base moves
 * the block, PMIOSE clear or a base of 0 hides it.  This is not a standard BAR, so
 * the config-write hook maps the region itself.  The other chipset registers in
 * 0x44-0x7f are stored without effect; the SMBus (0x90, 0xd2) reads as absent.
 * DEVACTB's APMC_EN (bit 25) reads 1, which tells SeaBIOS that SMM was already set
 * up: there is no SMM here, and SeaBIOS would otherwise raise an SMI through APMC
 * and wait forever for a handler to clear APMS.
 *
 * The block: PM1 status/enable (0x00/0x02), PM1 control (0x04), the PM timer
 * (0x08), GPE0 status/enable (0x0c/0x0e) and the processor, global and device
 * registers (0x10-0x37), which hold what is written and do nothing (there are no
 * C states, no SMI and no device monitors here).  Every byte is handled on its
 * own, so an access of any size at any offset behaves like the same bytes
 * written one at a time; side effects (SCI level, sleep) run once per access.
 *
 * The PM timer is not state: it is a function of the virtual clock,
 * floor(now_ns * 3579545 / 1e9) mod 2^24, so pause and saved state keep it
 * right.  TMROF_STS is set each time bit 23 of the count changes (ACPI 4.8.3.3):
 * the next such tick is kept and checked whenever PM1_STS is touched; a virtual
 * timer is armed for it only while TMROF_EN is set, the one case where the guest
 * wants to hear of it without looking.
 *
 * The SCI is a level interrupt on PC_ACPI_SCI_IRQ (through the interrupt router),
 * high while SCI_EN is set and an enabled PM1 or GPE0 status bit is set.
 *
 * Without SMM, the chipset answers the FADT's SMI_CMD itself: a write of
 * PC_ACPI_ENABLE_CMD / PC_ACPI_DISABLE_CMD to the APM control port (APMC, 0xb2)
 * sets / clears SCI_EN; APMS (0xb3) is a scratch byte (datasheet 11.1.x, APMC
 * and APMS).
 *
 * Sleep: writing SLP_EN with SLP_TYP == PC_ACPI_SLP_TYP_S5 powers the VM off
 * (exit code 0); our DSDT offers no other sleep state, so other types are logged
 * and ignored.
 */

#include <string.h>

#include "vireo/devices.h"
#include "vireo/pci.h"
#include "vireo/pdm.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

#define LOG_COMPONENT "piix4-pm"

#define PM_SSM_VERSION 1
#define PM_TIMER_HZ    3579545u
#define PM_TIMER_MASK  0xffffffu
#define PM_OVF_SHIFT   23 /* TMROF_STS is set when bit 23 of the count changes */

/* Config registers (datasheet 11.1). */
#define PM_CFG_PMBA      0x40
#define PM_CFG_PMBA_WMASK 0xffc0u /* base address bits 15:6 */
#define PM_CFG_PMBA_IO   0x1u    /* resource type indicator: I/O */
#define PM_CFG_SCRATCH   0x44     /* CNTA .. DEVRESx: stored, no effect */
#define PM_CFG_SCRATCH_END 0x80
#define PM_CFG_DEVACTB   0x58
#define PM_DEVACTB_APMC_EN 0x02000000u /* reads 1: see pm_reset */
#define PM_CFG_PMREGMISC 0x80
#define PM_PMREGMISC_PMIOSE 0x01

/* I/O block offsets (datasheet 11.2). */
#define PM_REG_PM1_STS  0x00
#define PM_REG_PM1_EN   0x02
#define PM_REG_PM1_CNT  0x04
#define PM_REG_TMR      0x08
#define PM_REG_GPE0_STS 0x0c
#define PM_REG_GPE0_EN  0x0e
#define PM_REG_MISC     0x10 /* PCNTRL .. GPOREG */
#define PM_REG_PLVL2    0x14
#define PM_REG_PLVL3    0x15
#define PM_REG_GLBSTS   0x18
#define PM_REG_DEVSTS   0x1c
#define PM_REG_GPIREG   0x30
#define PM_REG_MISC_END 0x38

/* PM1 status and enable bits (ACPI 4.8.3.1, datasheet 11.2.1-2). */
#define PM1_TMROF     0x0001u
#define PM1_BM        0x0010u
#define PM1_GBL       0x0020u
#define PM1_PWRBTN    0x0100u
#define PM1_RTC       0x0400u
#define PM1_PWRBTNOR  0x0800u
#define PM1_WAK       0x8000u
#define PM1_STS_MASK  (PM1_TMROF | PM1_BM | PM1_GBL | PM1_PWRBTN | PM1_RTC | PM1_PWRBTNOR | PM1_WAK)
#define PM1_EN_MASK   (PM1_TMROF | PM1_GBL | PM1_PWRBTN | PM1_RTC)

/* PM1 control (ACPI 4.8.3.2.1, datasheet 11.2.3). */
#define PM1_CNT_SCI_EN     0x0001u
#define PM1_CNT_BM_RLD     0x0002u
#define PM1_CNT_GBL_RLS    0x0004u /* write-only: would raise an SMI */
#define PM1_CNT_SLP_TYP    0x1c00u
#define PM1_CNT_SLP_SHIFT  10
#define PM1_CNT_SLP_EN     0x2000u /* write-only */
#define PM1_CNT_RW_MASK    (PM1_CNT_SCI_EN | PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP)

struct piix4_pm {
    struct pdm_dev *dev;
    struct vm *vm;
    struct pci_dev *pci;
    struct io_region *io;  /* the 64-byte block at PMBA */
    struct io_region *apm; /* APMC/APMS at PC_APM_CNT_PORT */
    struct pdm_irq *sci;
    struct tm_timer *timer;
    uint16_t io_base;      /* where io is mapped, 0: not mapped */
    bool io_conflict_logged;

    uint16_t pm1_sts, pm1_en, pm1_cnt;
    uint16_t gpe0_sts, gpe0_en;
    uint8_t misc[PM_REG_MISC_END - PM_REG_MISC];
    uint8_t apmc, apms;
    uint64_t ovf_next;     /* the PM timer tick at which bit 23 changes next */
    bool sci_level;
    bool sleep_logged;
};

/* ---- PM timer ------------------------------------------------------------------------------------ */

static uint64_t pm_ticks(uint64_t ns)
{
    return (uint64_t)(((unsigned __int128)ns * PM_TIMER_HZ) / RT_NS_PER_SEC);
}

/* The first virtual-clock time at which the tick count reaches tick. */
static uint64_t pm_tick_ns(uint64_t tick)
{
    unsigned __int128 ns = ((unsigned __int128)tick * RT_NS_PER_SEC + PM_TIMER_HZ - 1) / PM_TIMER_HZ;
    return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

static uint64_t pm_ovf_after(uint64_t tick)
{
    return ((tick >> PM_OVF_SHIFT) + 1) << PM_OVF_SHIFT;
}

/* Catches TMROF_STS up with the virtual clock. */
static void pm_timer_sync(struct piix4_pm *s)
{
    uint64_t tick = pm_ticks(tm_now_ns(s->vm));
    if (tick >= s->ovf_next) {
        s->pm1_sts |= PM1_TMROF;
        s->ovf_next = pm_ovf_after(tick);
    }
}

static void pm_timer_schedule(struct piix4_pm *s)
{
    if (s->pm1_en & PM1_TMROF)
        tm_timer_arm(s->timer, pm_tick_ns(s->ovf_next));
    else
        tm_timer_cancel(s->timer);
}

/* ---- SCI ------------------------------------------------------------------------------------------ */

static void pm_sci_update(struct piix4_pm *s)
{
    bool level = (s->pm1_cnt & PM1_CNT_SCI_EN) &&
                 ((s->pm1_sts & s->pm1_en & PM1_EN_MASK) || (s->gpe0_sts & s->gpe0_en));
    if (level != s->sci_level) {
        s->sci_level = level;
        pdm_irq_set(s->sci, level);
    }
}

static void pm_timer_fire(void *opaque)
{
    struct piix4_pm *s = opaque;
    pm_timer_sync(s);
    pm_sci_update(s);
    pm_timer_schedule(s);
}

/* ---- Sleep ---------------------------------------------------------------------------------------- */

static void pm_sleep(struct piix4_pm *s, unsigned slp_typ)
{
    if (slp_typ == PC_ACPI_SLP_TYP_S5) {
        LOG_INFO("guest powered off (ACPI S5)");
        vm_request_poweroff(s->vm, 0);
        return;
    }
    /* The DSDT names _S5 only; a guest asking for another state gets nothing, as on a board without it. */
    if (!s->sleep_logged) {
        s->sleep_logged = true;
        LOG_INFO("guest asked for sleep type %u: this machine offers only soft off (S5); ignored", slp_typ);
    }
}

/* ---- The I/O block -------------------------------------------------------------------------------- */

static uint8_t pm_read_byte(struct piix4_pm *s, unsigned off, uint32_t timer)
{
    switch (off) {
    case PM_REG_PM1_STS:      return (uint8_t)s->pm1_sts;
    case PM_REG_PM1_STS + 1:  return (uint8_t)(s->pm1_sts >> 8);
    case PM_REG_PM1_EN:       return (uint8_t)s->pm1_en;
    case PM_REG_PM1_EN + 1:   return (uint8_t)(s->pm1_en >> 8);
    case PM_REG_PM1_CNT:      return (uint8_t)s->pm1_cnt;
    case PM_REG_PM1_CNT + 1:  return (uint8_t)(s->pm1_cnt >> 8);
    case PM_REG_TMR:          return (uint8_t)timer;
    case PM_REG_TMR + 1:      return (uint8_t)(timer >> 8);
    case PM_REG_TMR + 2:      return (uint8_t)(timer >> 16);
    case PM_REG_GPE0_STS:     return (uint8_t)s->gpe0_sts;
    case PM_REG_GPE0_STS + 1: return (uint8_t)(s->gpe0_sts >> 8);
    case PM_REG_GPE0_EN:      return (uint8_t)s->gpe0_en;
    case PM_REG_GPE0_EN + 1:  return (uint8_t)(s->gpe0_en >> 8);
    default:
        break;
    }
    /* PLVL2/PLVL3 reads would enter C2/C3: there are none, and the registers read 0. */
    if (off >= PM_REG_MISC && off < PM_REG_MISC_END && off != PM_REG_PLVL2 && off != PM_REG_PLVL3)
        return s->misc[off - PM_REG_MISC];
    return 0;
}

/* Returns the sleep type to enter (SLP_EN written), or -1. */
static int pm_write_byte(struct piix4_pm *s, unsigned off, uint8_t v)
{
    switch (off) {
    case PM_REG_PM1_STS:
    case PM_REG_PM1_STS + 1: {
        uint16_t bits = (uint16_t)(v << (8 * (off - PM_REG_PM1_STS)));
        s->pm1_sts &= (uint16_t)~(bits & PM1_STS_MASK);
        return -1;
    }
    case PM_REG_PM1_EN:
    case PM_REG_PM1_EN + 1: {
        unsigned shift = 8 * (off - PM_REG_PM1_EN);
        uint16_t mask = (uint16_t)(0xffu << shift) & PM1_EN_MASK;
        s->pm1_en = (uint16_t)((s->pm1_en & ~mask) | ((v << shift) & mask));
        return -1;
    }
    case PM_REG_PM1_CNT:
    case PM_REG_PM1_CNT + 1: {
        unsigned shift = 8 * (off - PM_REG_PM1_CNT);
        uint16_t bits = (uint16_t)(v << shift);
        uint16_t mask = (uint16_t)(0xffu << shift) & PM1_CNT_RW_MASK;
        s->pm1_cnt = (uint16_t)((s->pm1_cnt & ~mask) | (bits & mask));
        if (bits & PM1_CNT_SLP_EN)
            return (bits & PM1_CNT_SLP_TYP) >> PM1_CNT_SLP_SHIFT;
        return -1;
    }
    case PM_REG_GPE0_STS:
    case PM_REG_GPE0_STS + 1:
        s->gpe0_sts &= (uint16_t)~(v << (8 * (off - PM_REG_GPE0_STS)));
        return -1;
    case PM_REG_GPE0_EN:
    case PM_REG_GPE0_EN + 1: {
        unsigned shift = 8 * (off - PM_REG_GPE0_EN);
        s->gpe0_en = (uint16_t)((s->gpe0_en & ~(0xffu << shift)) | ((unsigned)v << shift));
        return -1;
    }
    default:
        break;
    }
    /*
     * GLBSTS and DEVSTS are write-one-to-clear status that nothing here sets, GPIREG
     * reflects input pins (none): writes to them change nothing.  PLVL2/3 are read-only.
     */
    if (off >= PM_REG_MISC && off < PM_REG_MISC_END && off != PM_REG_PLVL2 && off != PM_REG_PLVL3 &&
        !(off >= PM_REG_GLBSTS && off < PM_REG_GLBSTS + 8) && !(off >= PM_REG_GPIREG && off < PM_REG_GPIREG + 4))
        s->misc[off - PM_REG_MISC] = v;
    return -1;
}

static uint64_t pm_io_read(void *opaque, uint64_t offset, unsigned size)
{
    struct piix4_pm *s = opaque;
    if (offset >= PC_ACPI_PM_LEN || size > PC_ACPI_PM_LEN - offset)
        return 0;
    uint32_t timer = (uint32_t)(pm_ticks(tm_now_ns(s->vm)) & PM_TIMER_MASK);
    if (offset < PM_REG_PM1_STS + 2) {
        pm_timer_sync(s);
        pm_sci_update(s);
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)pm_read_byte(s, (unsigned)offset + i, timer) << (8 * i);
    return v;
}

static void pm_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct piix4_pm *s = opaque;
    if (offset >= PC_ACPI_PM_LEN || size > PC_ACPI_PM_LEN - offset)
        return;
    /* A pending overflow must be latched before a write-one-to-clear may clear it. */
    pm_timer_sync(s);
    int slp_typ = -1;
    for (unsigned i = 0; i < size; i++) {
        int t = pm_write_byte(s, (unsigned)offset + i, (uint8_t)(value >> (8 * i)));
        if (t >= 0)
            slp_typ = t;
    }
    pm_sci_update(s);
    pm_timer_schedule(s);
    if (slp_typ >= 0)
        pm_sleep(s, (unsigned)slp_typ);
}

static const struct io_ops g_pm_io_ops = {
    .read = pm_io_read,
    .write = pm_io_write,
    .min_access = 1,
    .max_access = 4,
};

/* ---- APM control and status ports ----------------------------------------------------------------- */

static uint64_t pm_apm_read(void *opaque, uint64_t offset, unsigned size)
{
    struct piix4_pm *s = opaque;
    (void)size;
    return offset == 0 ? s->apmc : s->apms;
}

static void pm_apm_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct piix4_pm *s = opaque;
    (void)size;
    if (offset != 0) {
        s->apms = (uint8_t)value;
        return;
    }
    s->apmc = (uint8_t)value;
    if (s->apmc == PC_ACPI_ENABLE_CMD)
        s->pm1_cnt |= PM1_CNT_SCI_EN;
    else if (s->apmc == PC_ACPI_DISABLE_CMD)
        s->pm1_cnt &= (uint16_t)~PM1_CNT_SCI_EN;
    pm_sci_update(s);
}

static const struct io_ops g_pm_apm_ops = {
    .read = pm_apm_read,
    .write = pm_apm_write,
    .min_access = 1,
    .max_access = 1,
};

/* ---- Config space --------------------------------------------------------------------------------- */

/* Maps the block where PMBA points while PMIOSE is set. */
static void pm_io_update(struct piix4_pm *s)
{
    uint16_t base = (uint16_t)(pci_dev_get_u32(s->pci, PM_CFG_PMBA) & PM_CFG_PMBA_WMASK);
    bool enabled = (pci_dev_get_u8(s->pci, PM_CFG_PMREGMISC) & PM_PMREGMISC_PMIOSE) && base != 0;
    uint16_t want = enabled ? base : 0;
    if (want == s->io_base)
        return;
    iom_region_unmap(s->io);
    s->io_base = 0;
    if (!want)
        return;
    if (iom_region_map(s->io, want) == 0) {
        s->io_base = want;
        s->io_conflict_logged = false;
    } else if (!s->io_conflict_logged) {
        s->io_conflict_logged = true;
        LOG_WARN("%s: PM I/O base 0x%x collides with other ports; the block stays hidden", pdm_dev_name(s->dev),
                 want);
    }
}

static void pm_config_write(void *opaque, struct pci_dev *dev, unsigned offset, uint32_t value, unsigned size)
{
    struct piix4_pm *s = opaque;
    (void)dev;
    (void)value;
    unsigned end = offset + size;
    if ((offset < PM_CFG_PMBA + 4 && end > PM_CFG_PMBA) || (offset <= PM_CFG_PMREGMISC && end > PM_CFG_PMREGMISC))
        pm_io_update(s);
}

static const struct pci_dev_ops g_pm_pci_ops = {
    .config_write = pm_config_write,
};

/* ---- Power button --------------------------------------------------------------------------------- */

static void pm_power_button(void *opaque)
{
    struct piix4_pm *s = opaque;
    /* The status bit sets whatever the enables say (ACPI 4.8.3.1): a guest that enables ACPI later sees it. */
    s->pm1_sts |= PM1_PWRBTN;
    if (!(s->pm1_cnt & PM1_CNT_SCI_EN) || !(s->pm1_en & PM1_PWRBTN))
        LOG_INFO("power button pressed (the guest has not enabled ACPI: nothing may happen)");
    else
        LOG_INFO("power button pressed");
    pm_sci_update(s);
}

/* ---- Lifecycle ------------------------------------------------------------------------------------ */

static void pm_reset(struct pdm_dev *dev)
{
    struct piix4_pm *s = pdm_dev_state(dev);
    pci_dev_reset(s->pci);
    pci_dev_set_u32(s->pci, PM_CFG_PMBA, PM_CFG_PMBA_IO);
    pci_dev_set_u8(s->pci, PCI_CFG_INTERRUPT_LINE, PC_ACPI_SCI_IRQ);
    pci_dev_set_u32(s->pci, PM_CFG_DEVACTB, PM_DEVACTB_APMC_EN);
    s->pm1_sts = s->pm1_en = s->pm1_cnt = 0;
    s->gpe0_sts = s->gpe0_en = 0;
    memset(s->misc, 0, sizeof(s->misc));
    s->apmc = s->apms = 0;
    s->sleep_logged = false;
    s->ovf_next = pm_ovf_after(pm_ticks(tm_now_ns(s->vm)));
    pm_io_update(s);
    pm_sci_update(s);
    pm_timer_schedule(s);
}

static int pm_construct(struct pdm_dev *dev, const struct pdm_cfg *cfg)
{
    static const char *const allowed[] = {PCI_CFG_LOCATION_KEYS, "irq", NULL};
    struct piix4_pm *s = pdm_dev_state(dev);
    const char *name = pdm_dev_name(dev);
    s->dev = dev;
    s->vm = pdm_dev_vm(dev);
    int rc = pdm_cfg_validate(cfg, name, allowed);
    if (rc)
        return rc;
    unsigned gsi = 0;
    rc = pdm_cfg_get_gsi(cfg, name, PC_ACPI_SCI_IRQ, &gsi);
    if (rc)
        return rc;
    struct pci_bus *bus = NULL;
    unsigned devfn = 0;
    rc = pci_cfg_get_location(s->vm, cfg, name, PC_PIIX4_PM_SLOT, &bus, &devfn);
    if (rc)
        return rc;
    /* Function 3 of the PIIX4's slot unless configured otherwise. */
    if (!pdm_cfg_get_str(cfg, "function", NULL))
        devfn = PCI_DEVFN(PCI_SLOT(devfn), PC_PIIX4_PM_FUNC);

    rc = tm_timer_create(s->vm, name, pm_timer_fire, s, &s->timer);
    if (!rc)
        rc = pdm_irq_create(s->vm, gsi, name, &s->sci);
    if (!rc)
        rc = iom_region_create(s->vm, name, PC_ACPI_PM_LEN, &g_pm_io_ops, s, &s->io);
    if (!rc)
        rc = iom_region_create(s->vm, "apm", 2, &g_pm_apm_ops, s, &s->apm);
    if (!rc)
        rc = iom_region_map(s->apm, PC_APM_CNT_PORT);
    if (rc)
        return rc;
    const struct pci_dev_params params = {
        .name = name,
        .vendor_id = 0x8086,
        .device_id = 0x7113,
        .class_code = 0x068000, /* bridge, other */
        .revision = 0x03,
        .ops = &g_pm_pci_ops,
        .opaque = s,
    };
    rc = pci_dev_register(bus, devfn, &params, &s->pci);
    if (rc)
        return rc;
    pci_dev_set_u16(s->pci, PCI_CFG_STATUS, PCI_STATUS_FAST_BACK | PCI_STATUS_DEVSEL_MEDIUM);
    pci_dev_set_wmask(s->pci, PM_CFG_PMBA, 4, PM_CFG_PMBA_WMASK);
    for (unsigned off = PM_CFG_SCRATCH; off < PM_CFG_SCRATCH_END; off += 4)
        pci_dev_set_wmask(s->pci, off, 4, 0xffffffffu);
    pci_dev_set_wmask(s->pci, PM_CFG_DEVACTB, 4, ~PM_DEVACTB_APMC_EN);
    pci_dev_set_wmask(s->pci, PM_CFG_PMREGMISC, 1, PM_PMREGMISC_PMIOSE);
    vm_set_power_button(s->vm, pm_power_button, s);
    pm_reset(dev);
    return 0;
}

static void pm_destroy(struct pdm_dev *dev)
{
    struct piix4_pm *s = pdm_dev_state(dev);
    if (s->vm)
        vm_set_power_button(s->vm, NULL, NULL);
    pci_dev_unregister(s->pci);
    s->pci = NULL;
    iom_region_destroy(s->io);
    iom_region_destroy(s->apm);
    s->io = s->apm = NULL;
    tm_timer_destroy(s->timer);
    s->timer = NULL;
    pdm_irq_destroy(s->sci);
    s->sci = NULL;
}

/* ---- Saved state ---------------------------------------------------------------------------------- */

static int pm_save(struct pdm_dev *dev, struct ssm *ssm)
{
    struct piix4_pm *s = pdm_dev_state(dev);
    pm_timer_sync(s);
    pci_dev_save(s->pci, ssm);
    ssm_put_u16(ssm, s->pm1_sts);
    ssm_put_u16(ssm, s->pm1_en);
    ssm_put_u16(ssm, s->pm1_cnt);
    ssm_put_u16(ssm, s->gpe0_sts);
    ssm_put_u16(ssm, s->gpe0_en);
    ssm_put_bytes(ssm, s->misc, sizeof(s->misc));
    ssm_put_u8(ssm, s->apmc);
    ssm_put_u8(ssm, s->apms);
    ssm_put_u64(ssm, s->ovf_next);
    return ssm_status(ssm);
}

static int pm_load(struct pdm_dev *dev, struct ssm *ssm, uint32_t version)
{
    struct piix4_pm *s = pdm_dev_state(dev);
    if (version != PM_SSM_VERSION)
        return VERR_SSM_VERSION;
    int rc = pci_dev_load(s->pci, ssm);
    if (rc) {
        pm_reset(dev);
        return rc;
    }
    uint16_t pm1_sts = 0, pm1_en = 0, pm1_cnt = 0, gpe0_sts = 0, gpe0_en = 0;
    uint8_t misc[sizeof(s->misc)];
    uint8_t apmc = 0, apms = 0;
    uint64_t ovf_next = 0;
    ssm_get_u16(ssm, &pm1_sts);
    ssm_get_u16(ssm, &pm1_en);
    ssm_get_u16(ssm, &pm1_cnt);
    ssm_get_u16(ssm, &gpe0_sts);
    ssm_get_u16(ssm, &gpe0_en);
    ssm_get_bytes(ssm, misc, sizeof(misc));
    ssm_get_u8(ssm, &apmc);
    ssm_get_u8(ssm, &apms);
    ssm_get_u64(ssm, &ovf_next);
    rc = ssm_status(ssm);
    if (rc) {
        LOG_ERR("saved state of %s is truncated", pdm_dev_name(dev));
        pm_reset(dev);
        return rc;
    }
    /* Bits no register can hold are masked; an overflow tick off the 2^23 grid or far ahead is recomputed. */
    s->pm1_sts = pm1_sts & PM1_STS_MASK;
    s->pm1_en = pm1_en & PM1_EN_MASK;
    s->pm1_cnt = pm1_cnt & PM1_CNT_RW_MASK;
    s->gpe0_sts = gpe0_sts;
    s->gpe0_en = gpe0_en;
    memcpy(s->misc, misc, sizeof(misc));
    s->apmc = apmc;
    s->apms = apms;
    uint64_t tick = pm_ticks(tm_now_ns(s->vm));
    if ((ovf_next & ((1ull << PM_OVF_SHIFT) - 1)) || ovf_next > pm_ovf_after(tick))
        ovf_next = pm_ovf_after(tick);
    s->ovf_next = ovf_next;
    /* The config bytes came back without the hook: re-map the block from them. */
    iom_region_unmap(s->io);
    s->io_base = 0;
    pm_io_update(s);
    pm_sci_update(s);
    pm_timer_schedule(s);
    return 0;
}

const struct pdm_dev_desc g_dev_piix4_pm = {
    .name = "piix4-pm",
    .description = "PIIX4 power management (ACPI PM1/GPE0, PM timer, SCI, APM port, power button, soft-off)",
    .state_size = sizeof(struct piix4_pm),
    .ssm_version = PM_SSM_VERSION,
    .construct = pm_construct,
    .reset = pm_reset,
    .save = pm_save,
    .load = pm_load,
    .destroy = pm_destroy,
};
