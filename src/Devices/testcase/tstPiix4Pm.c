/* tstPiix4Pm.c - PIIX4 PM function tests: PCI IDs, PMBA/PMIOSE, PM timer and TMROF, SCI, power button, S5, APM port, saved state, garbage. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vireo/pci.h"

#define CFG_ADDR(devfn, reg) (0x80000000u | (uint32_t)(devfn) << 8 | ((reg)&0xfc))
#define PM_DEVFN PCI_DEVFN(PC_PIIX4_PM_SLOT, PC_PIIX4_PM_FUNC)

#define PM1_STS  (PC_ACPI_PM1_EVT + 0)
#define PM1_EN   (PC_ACPI_PM1_EVT + 2)
#define PM1_CNT  PC_ACPI_PM1_CNT
#define PM_TMR   PC_ACPI_PM_TMR
#define GPE0_STS (PC_ACPI_GPE0 + 0)
#define GPE0_EN  (PC_ACPI_GPE0 + 2)

#define TMROF    0x0001u
#define PWRBTN   0x0100u
#define RTC      0x0400u
#define WAK      0x8000u
#define SCI_EN   0x0001u
#define SLP_EN   0x2000u
#define SLP_TYP(t) ((uint16_t)((t) << 10))

#define PM_HZ 3579545ull
/* The virtual time of PM timer tick k (the first ns at which the count reaches k). */
#define TICK_NS(k) (((uint64_t)(k) * RT_NS_PER_SEC + PM_HZ - 1) / PM_HZ)

struct fixture {
    struct vm *vm;
    struct pdm_dev *chipset, *pm;
};

static uint32_t cfg_read(struct vm *vm, unsigned reg, unsigned size)
{
    harness_outl(vm, 0xcf8, CFG_ADDR(PM_DEVFN, reg));
    uint16_t port = (uint16_t)(0xcfc + (reg & 3));
    return size == 1 ? harness_inb(vm, port) : size == 2 ? harness_inw(vm, port) : harness_inl(vm, port);
}

static void cfg_write(struct vm *vm, unsigned reg, uint32_t value, unsigned size)
{
    harness_outl(vm, 0xcf8, CFG_ADDR(PM_DEVFN, reg));
    uint16_t port = (uint16_t)(0xcfc + (reg & 3));
    if (size == 1)
        harness_outb(vm, port, (uint8_t)value);
    else if (size == 2)
        harness_outw(vm, port, (uint16_t)value);
    else
        harness_outl(vm, port, value);
}

/* What SeaBIOS and OVMF do: PMBA, then PMIOSE. */
static void enable_block(struct vm *vm, uint16_t base)
{
    cfg_write(vm, 0x40, base | 1u, 4);
    cfg_write(vm, 0x80, 0x01, 1);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = harness_vm_create(0);
    f->chipset = harness_dev_create(f->vm, &g_dev_i440fx, "pci", NULL);
    f->pm = harness_dev_create(f->vm, &g_dev_piix4_pm, "pm", NULL);
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

static void test_pci_ids(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    assert_int_equal(cfg_read(vm, 0x00, 4), 0x71138086u);
    assert_int_equal(cfg_read(vm, 0x08, 4), 0x06800003u); /* class 06 80 00, revision 3 */
    assert_int_equal(cfg_read(vm, 0x3c, 1), PC_ACPI_SCI_IRQ);
    assert_int_equal(cfg_read(vm, 0x3d, 1), 0);             /* the SCI is no PCI INTx */
    assert_int_equal(cfg_read(vm, 0x40, 4), 0x00000001u);   /* PMBA: I/O indicator, no base */
    assert_int_equal(cfg_read(vm, 0x80, 1), 0);
    /* PMBA: only bits 15:6 are writable, bit 0 stays 1. */
    cfg_write(vm, 0x40, 0xffffffffu, 4);
    assert_int_equal(cfg_read(vm, 0x40, 4), 0x0000ffc1u);
    cfg_write(vm, 0x80, 0xff, 1);
    assert_int_equal(cfg_read(vm, 0x80, 1), 0x01);
    /* The SMBus reads as absent: its base and host configuration stay 0. */
    cfg_write(vm, 0x90, 0xb101u, 4);
    cfg_write(vm, 0xd2, 0x09, 1);
    assert_int_equal(cfg_read(vm, 0x90, 4), 0);
    assert_int_equal(cfg_read(vm, 0xd2, 1), 0);
    /* DEVACTB and friends hold what the firmware writes, with no effect; DEVACTB's APMC_EN stays 1 (no SMM to set up). */
    assert_int_equal(cfg_read(vm, 0x58, 4), 0x02000000u);
    cfg_write(vm, 0x58, 0x10345678u, 4);
    assert_int_equal(cfg_read(vm, 0x58, 4), 0x12345678u);
    cfg_write(vm, 0x58, 0, 4);
    assert_int_equal(cfg_read(vm, 0x58, 4), 0x02000000u);
    cfg_write(vm, 0x4c, 0xdeadbeefu, 4);
    assert_int_equal(cfg_read(vm, 0x4c, 4), 0xdeadbeefu);
    /* The interrupt line is the firmware's to write. */
    cfg_write(vm, 0x3c, 11, 1);
    assert_int_equal(cfg_read(vm, 0x3c, 1), 11);
    /* A reset brings the power-on values back. */
    pdm_dev_reset_all(vm);
    assert_int_equal(cfg_read(vm, 0x40, 4), 1);
    assert_int_equal(cfg_read(vm, 0x3c, 1), PC_ACPI_SCI_IRQ);
    assert_int_equal(cfg_read(vm, 0x58, 4), 0x02000000u);
    assert_int_equal(cfg_read(vm, 0x4c, 4), 0);
}

static void test_pmba_pmiose(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    /* Nothing decodes before the firmware enables the block. */
    assert_int_equal(harness_inw(vm, PM1_EN), 0xffff);
    cfg_write(vm, 0x40, PC_ACPI_PM_BASE | 1u, 4);
    assert_int_equal(harness_inw(vm, PM1_EN), 0xffff); /* PMIOSE still clear */
    cfg_write(vm, 0x80, 0x01, 1);
    harness_outw(vm, PM1_EN, PWRBTN);
    assert_int_equal(harness_inw(vm, PM1_EN), PWRBTN);
    /* Another base moves the block, registers and all. */
    cfg_write(vm, 0x40, 0xc041u, 4);
    assert_int_equal(harness_inw(vm, PM1_EN), 0xffff);
    assert_int_equal(harness_inw(vm, 0xc040 + 2), PWRBTN);
    /* PMIOSE clear hides it; set again shows it. */
    cfg_write(vm, 0x80, 0x00, 1);
    assert_int_equal(harness_inw(vm, 0xc040 + 2), 0xffff);
    cfg_write(vm, 0x80, 0x01, 1);
    assert_int_equal(harness_inw(vm, 0xc040 + 2), PWRBTN);
    /* A base of 0 decodes nothing (port 0 belongs to the DMA controller on a PC). */
    cfg_write(vm, 0x40, 0x0001u, 4);
    assert_int_equal(harness_inw(vm, 0xc040 + 2), 0xffff);
    /* A base on top of the PCI config ports collides: the block stays hidden, the chipset keeps working. */
    cfg_write(vm, 0x40, 0x0cc1u, 4);
    assert_int_equal(cfg_read(vm, 0x00, 4), 0x71138086u);
    cfg_write(vm, 0x40, PC_ACPI_PM_BASE | 1u, 4);
    assert_int_equal(harness_inw(vm, PM1_EN), PWRBTN);
}

static void test_timer(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    enable_block(vm, PC_ACPI_PM_BASE);
    assert_int_equal(harness_inl(vm, PM_TMR), 0);
    harness_step_ns(vm, RT_NS_PER_SEC);
    assert_int_equal(harness_inl(vm, PM_TMR), 3579545u);
    /* One tick is 279.4 ns: 1 us later the count is 3 or 4 ahead. */
    harness_step_ns(vm, 1000);
    uint32_t t = harness_inl(vm, PM_TMR);
    assert_true(t - 3579545u == 3 || t - 3579545u == 4);
    /* Byte reads of the same count agree with the dword read. */
    assert_int_equal(harness_inb(vm, PM_TMR), t & 0xff);
    assert_int_equal(harness_inb(vm, PM_TMR + 2), (t >> 16) & 0xff);
    assert_int_equal(harness_inb(vm, PM_TMR + 3), 0);
    /* Writes do not change it. */
    harness_outl(vm, PM_TMR, 0);
    assert_int_equal(harness_inl(vm, PM_TMR), t);
    /* TMROF_STS is set when bit 23 changes, and not before. */
    assert_int_equal(harness_inw(vm, PM1_STS) & TMROF, 0);
    uint64_t now = RT_NS_PER_SEC + 1000;
    harness_step_ns(vm, TICK_NS(1u << 23) - 1 - now);
    assert_int_equal(harness_inl(vm, PM_TMR), (1u << 23) - 1);
    assert_int_equal(harness_inw(vm, PM1_STS) & TMROF, 0);
    harness_step_ns(vm, 1);
    assert_int_equal(harness_inl(vm, PM_TMR), 1u << 23);
    assert_int_equal(harness_inw(vm, PM1_STS) & TMROF, TMROF);
    /* Write-1-to-clear; writing 0 leaves it. */
    harness_outw(vm, PM1_STS, 0);
    assert_int_equal(harness_inw(vm, PM1_STS) & TMROF, TMROF);
    harness_outw(vm, PM1_STS, TMROF);
    assert_int_equal(harness_inw(vm, PM1_STS) & TMROF, 0);
    /* The count wraps at 24 bits, and the wrap (bit 23 falling) sets TMROF_STS again. */
    harness_step_ns(vm, TICK_NS(1u << 24) - TICK_NS(1u << 23) + 1000);
    t = harness_inl(vm, PM_TMR);
    assert_true(t < 8);
    assert_int_equal(harness_inw(vm, PM1_STS) & TMROF, TMROF);
    /* The timer does not run while the block is hidden either: it is the virtual clock. */
    cfg_write(vm, 0x80, 0x00, 1);
    harness_step_ns(vm, RT_NS_PER_SEC);
    cfg_write(vm, 0x80, 0x01, 1);
    assert_int_equal(harness_inl(vm, PM_TMR), (t + 3579545u) & 0xffffffu);
}

static void test_sci(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    enable_block(vm, PC_ACPI_PM_BASE);
    /* TMROF with its enable but no SCI_EN: the status sets, the SCI stays low. */
    harness_outw(vm, PM1_EN, TMROF);
    harness_step_ns(vm, TICK_NS(1u << 23));
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    assert_int_equal(harness_inw(vm, PM1_STS) & TMROF, TMROF);
    /* SCI_EN raises it for the pending status. */
    harness_outw(vm, PM1_CNT, SCI_EN);
    assert_true(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    /* Clearing the status lowers it. */
    harness_outw(vm, PM1_STS, TMROF);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    /* The next overflow raises it from the virtual timer alone (nobody reads PM1_STS). */
    harness_gsi_clear(vm);
    harness_step_ns(vm, TICK_NS(1u << 24) - TICK_NS(1u << 23));
    assert_true(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    assert_int_equal(harness_gsi_rises(vm, PC_ACPI_SCI_IRQ), 1);
    /* Disabling the event lowers it while the status stays. */
    harness_outw(vm, PM1_EN, 0);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    assert_int_equal(harness_inw(vm, PM1_STS) & TMROF, TMROF);
    harness_outw(vm, PM1_EN, TMROF);
    assert_true(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    /* Clearing SCI_EN lowers it too. */
    harness_outw(vm, PM1_CNT, 0);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    harness_outw(vm, PM1_CNT, SCI_EN);
    /* A byte write to the status's low byte clears TMROF alone. */
    harness_outb(vm, PM1_STS, TMROF);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    /* The enables keep only the bits the PIIX4 has. */
    harness_outw(vm, PM1_EN, 0xffff);
    assert_int_equal(harness_inw(vm, PM1_EN), 0x0521);
    /* GPE0: enables hold any value, status bits nobody set read 0 and write-1-to-clear changes nothing. */
    harness_outw(vm, GPE0_EN, 0xa5c3);
    assert_int_equal(harness_inw(vm, GPE0_EN), 0xa5c3);
    harness_outb(vm, GPE0_EN + 1, 0x11);
    assert_int_equal(harness_inw(vm, GPE0_EN), 0x11c3);
    harness_outw(vm, GPE0_STS, 0xffff);
    assert_int_equal(harness_inw(vm, GPE0_STS), 0);
    assert_int_equal(harness_inl(vm, PC_ACPI_GPE0), 0x11c30000u);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    /* RTC_STS and WAK_STS are nothing this machine sets. */
    assert_int_equal(harness_inw(vm, PM1_STS) & (RTC | WAK), 0);
}

static void test_power_button(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    enable_block(vm, PC_ACPI_PM_BASE);
    /* Before the guest enables ACPI: the status sets, no SCI. */
    assert_int_equal(vm_power_button(vm), 0);
    assert_int_equal(harness_inw(vm, PM1_STS) & PWRBTN, PWRBTN);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    /* The guest enables ACPI the FADT way (SMI_CMD) and the event: the pending press reaches it. */
    harness_outb(vm, PC_APM_CNT_PORT, PC_ACPI_ENABLE_CMD);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    harness_outw(vm, PM1_EN, PWRBTN);
    assert_true(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    /* The OS clears it with a byte write to the high byte. */
    harness_outb(vm, PM1_STS + 1, PWRBTN >> 8);
    assert_int_equal(harness_inw(vm, PM1_STS) & PWRBTN, 0);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    /* A second press with everything enabled raises the SCI at once. */
    harness_gsi_clear(vm);
    assert_int_equal(vm_power_button(vm), 0);
    assert_true(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    assert_int_equal(harness_gsi_rises(vm, PC_ACPI_SCI_IRQ), 1);
    assert_int_equal(vm_get_state(vm), VM_STATE_CREATED);
}

static void test_no_power_button(void **state)
{
    (void)state;
    /* A machine without the PM function has no button to press. */
    struct vm *vm = harness_vm_create(0);
    assert_int_equal(vm_power_button(vm), VERR_NOT_SUPPORTED);
    harness_vm_destroy(vm);
}

static void test_sleep(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    enable_block(vm, PC_ACPI_PM_BASE);
    /* SLP_TYP alone does nothing; SLP_EN reads 0. */
    harness_outw(vm, PM1_CNT, SCI_EN | SLP_TYP(PC_ACPI_SLP_TYP_S5 + 1));
    assert_int_equal(harness_inw(vm, PM1_CNT), SCI_EN | SLP_TYP(PC_ACPI_SLP_TYP_S5 + 1));
    /* Another sleep type with SLP_EN: there is no such state; ignored. */
    harness_outw(vm, PM1_CNT, SCI_EN | SLP_TYP(PC_ACPI_SLP_TYP_S5 + 1) | SLP_EN);
    assert_int_equal(vm_get_state(vm), VM_STATE_CREATED);
    assert_int_equal(harness_inw(vm, PM1_CNT) & SLP_EN, 0);
    harness_outw(vm, PM1_CNT, SCI_EN | SLP_TYP(7) | SLP_EN);
    assert_int_equal(vm_get_state(vm), VM_STATE_CREATED);
    /* S5 with SLP_EN (byte write to the high byte, as ACPICA may do) powers the VM off with code 0. */
    harness_outb(vm, PM1_CNT + 1, (uint8_t)((SLP_TYP(PC_ACPI_SLP_TYP_S5) | SLP_EN) >> 8));
    assert_int_equal(vm_get_state(vm), VM_STATE_POWERED_OFF);
    assert_int_equal(vm_wait(vm), 0);
}

static void test_apm(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    enable_block(vm, PC_ACPI_PM_BASE);
    assert_int_equal(harness_inw(vm, PM1_CNT) & SCI_EN, 0);
    harness_outb(vm, PC_APM_CNT_PORT, PC_ACPI_ENABLE_CMD);
    assert_int_equal(harness_inw(vm, PM1_CNT) & SCI_EN, SCI_EN);
    assert_int_equal(harness_inb(vm, PC_APM_CNT_PORT), PC_ACPI_ENABLE_CMD);
    /* Other commands are stored and change nothing. */
    harness_outb(vm, PC_APM_CNT_PORT, 0x42);
    assert_int_equal(harness_inb(vm, PC_APM_CNT_PORT), 0x42);
    assert_int_equal(harness_inw(vm, PM1_CNT) & SCI_EN, SCI_EN);
    harness_outb(vm, PC_APM_CNT_PORT, PC_ACPI_DISABLE_CMD);
    assert_int_equal(harness_inw(vm, PM1_CNT) & SCI_EN, 0);
    /* APMS is a scratch byte. */
    harness_outb(vm, PC_APM_CNT_PORT + 1, 0x5a);
    assert_int_equal(harness_inb(vm, PC_APM_CNT_PORT + 1), 0x5a);
    assert_int_equal(harness_inb(vm, PC_APM_CNT_PORT), PC_ACPI_DISABLE_CMD);
    /* The ports answer whether or not the PM block decodes. */
    cfg_write(vm, 0x80, 0x00, 1);
    harness_outb(vm, PC_APM_CNT_PORT, PC_ACPI_ENABLE_CMD);
    cfg_write(vm, 0x80, 0x01, 1);
    assert_int_equal(harness_inw(vm, PM1_CNT) & SCI_EN, SCI_EN);
    pdm_dev_reset_all(vm);
    assert_int_equal(harness_inb(vm, PC_APM_CNT_PORT), 0);
    assert_int_equal(harness_inb(vm, PC_APM_CNT_PORT + 1), 0);
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    enable_block(vm, 0xc000);
    harness_outb(vm, PC_APM_CNT_PORT, PC_ACPI_ENABLE_CMD);
    harness_outb(vm, PC_APM_CNT_PORT + 1, 0x77);
    harness_outw(vm, 0xc000 + 2, PWRBTN | TMROF);
    harness_outw(vm, 0xc000 + 0x0e, 0x0003);
    harness_outl(vm, 0xc000 + 0x10, 0x00000210u); /* PCNTRL: stored */
    assert_int_equal(vm_power_button(vm), 0);
    assert_true(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    harness_step_ns(vm, 1234567);
    uint32_t tmr = harness_inl(vm, 0xc000 + 8);

    assert_int_equal(harness_dev_save_reset_load(f->pm), 0);
    assert_int_equal(harness_inw(vm, 0xc000 + 0), PWRBTN);
    assert_int_equal(harness_inw(vm, 0xc000 + 2), PWRBTN | TMROF);
    assert_int_equal(harness_inw(vm, 0xc000 + 4), SCI_EN);
    assert_int_equal(harness_inw(vm, 0xc000 + 0x0e), 0x0003);
    assert_int_equal(harness_inl(vm, 0xc000 + 0x10), 0x00000210u);
    assert_int_equal(harness_inl(vm, 0xc000 + 8), tmr);
    assert_int_equal(harness_inb(vm, PC_APM_CNT_PORT + 1), 0x77);
    assert_int_equal(harness_inw(vm, PM1_EN), 0xffff); /* still at the moved base */
    assert_true(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    /* The overflow timer is re-armed: TMROF_EN is set and the overflow comes by itself. */
    harness_outw(vm, 0xc000, PWRBTN);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    harness_step_ns(vm, TICK_NS(1u << 23));
    assert_true(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));

    /* A stream cut short fails and leaves the device at power-on values. */
    struct ssm *out = NULL, *in = NULL;
    assert_int_equal(ssm_create(&out), 0);
    assert_int_equal(g_dev_piix4_pm.save(f->pm, out), 0);
    size_t len;
    const void *data = ssm_data(out, &len);
    assert_int_equal(ssm_open(data, len - 3, &in), 0);
    assert_int_not_equal(g_dev_piix4_pm.load(f->pm, in, 1), 0);
    ssm_destroy(in);
    assert_int_equal(g_dev_piix4_pm.load(f->pm, NULL, 2), VERR_SSM_VERSION);
    ssm_destroy(out);
    assert_false(harness_gsi_level(vm, PC_ACPI_SCI_IRQ));
    assert_int_equal(cfg_read(vm, 0x40, 4), 1);
}

static void test_garbage(void **state)
{
    struct fixture *f = *state;
    struct vm *vm = f->vm;
    uint32_t seed = 0x5eed1234u;
    enable_block(vm, PC_ACPI_PM_BASE);
    for (unsigned i = 0; i < 20000; i++) {
        uint32_t r = harness_rand(&seed);
        uint32_t v = harness_rand(&seed);
        unsigned size = 1u << (r % 3);
        switch ((r >> 4) % 4) {
        case 0: /* config space, any offset and size */
            cfg_write(vm, (r >> 8) & 0xff, v, size);
            break;
        case 1: /* the block, any offset */
            iom_port_write(vm, (uint16_t)(PC_ACPI_PM_BASE + ((r >> 8) % PC_ACPI_PM_LEN)), v, size);
            break;
        case 2:
            (void)iom_port_read(vm, (uint16_t)(PC_ACPI_PM_BASE + ((r >> 8) % PC_ACPI_PM_LEN)), size);
            break;
        default:
            iom_port_write(vm, (uint16_t)(PC_APM_CNT_PORT + ((r >> 8) & 1)), v & 0xff, 1);
            harness_step_ns(vm, v & 0xfffff);
            if ((v & 0xff) == 0x5a)
                (void)vm_power_button(vm);
            break;
        }
    }
    /* Whatever happened (a random S5 included), the device still works once the firmware programs it again. */
    assert_int_equal(cfg_read(vm, 0x00, 4), 0x71138086u);
    assert_int_equal(harness_dev_save_reset_load(f->pm), 0);
    pdm_dev_reset_all(vm);
    enable_block(vm, PC_ACPI_PM_BASE);
    harness_outw(vm, PM1_EN, PWRBTN);
    assert_int_equal(harness_inw(vm, PM1_EN), PWRBTN);
    uint32_t t0 = harness_inl(vm, PM_TMR);
    harness_step_ns(vm, RT_NS_PER_SEC / 10);
    uint32_t d = (harness_inl(vm, PM_TMR) - t0) & 0xffffffu;
    assert_true(d == 357954u || d == 357955u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pci_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pmba_pmiose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_button, setup, teardown),
        cmocka_unit_test(test_no_power_button),
        cmocka_unit_test_setup_teardown(test_sleep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
