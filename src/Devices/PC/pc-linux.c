/* pc-linux.c - direct Linux boot: a bzImage, initrd and command line loaded by the Linux x86 32-bit boot protocol, and the MP table that firmware would have written. */

/*
 * Facts from the Linux x86 boot protocol (Documentation/arch/x86/boot.rst): the
 * setup header sits at 0x1f1 of the bzImage ("HdrS" at 0x202); the protected-mode
 * kernel follows (setup_sects + 1) sectors and is loaded at code32_start (1 MiB);
 * the 32-bit entry wants flat 4 GiB segments with selectors 0x10 (code) and 0x18
 * (data) in a loaded GDT, interrupts off and %esi pointing at the boot_params
 * ("zero page"), which carries the setup header and the e820 memory map.  No
 * firmware runs, so a test guest starts in the kernel within milliseconds.
 */
#include <stdlib.h>
#include <string.h>

#include "pc-internal.h"

#define LOG_COMPONENT "linux"

#define LINUX_GDT_GPA      0x500ULL
#define LINUX_ZERO_PAGE    0x10000ULL
#define LINUX_CMDLINE_GPA  0x20000ULL
#define LINUX_CMDLINE_MAX  0x10000u
#define LINUX_KERNEL_GPA   0x100000ULL
#define LINUX_MAX_IMAGE    (512u << 20)
/*
 * The last KiB of base memory: the e820 map below reserves it, and the kernel looks there for the MP
 * floating pointer (MP spec 4.1).  The ACPI RSDP (36 bytes) takes its first 64 bytes; the MP table
 * follows (for 32 vCPUs it needs 860 bytes).
 */
#define LINUX_MPTABLE_GPA  (PC_ACPI_DIRECT_RSDP + 0x40u)
#define LINUX_MPTABLE_MAX  0x3c0u
_Static_assert(PC_ACPI_DIRECT_RSDP == 0x9fc00ULL, "the RSDP and the MP table share the last KiB of base memory");

/* Offsets in the bzImage / boot_params. */
#define BP_ACPI_RSDP_ADDR  0x070
#define BP_E820_ENTRIES    0x1e8
#define BP_SETUP_SECTS     0x1f1
#define BP_BOOT_FLAG       0x1fe
#define BP_HEADER_JUMP     0x201
#define BP_HEADER          0x202
#define BP_VERSION         0x206
#define BP_TYPE_OF_LOADER  0x210
#define BP_LOADFLAGS       0x211
#define BP_CODE32_START    0x214
#define BP_RAMDISK_IMAGE   0x218
#define BP_RAMDISK_SIZE    0x21c
#define BP_CMD_LINE_PTR    0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_CMDLINE_SIZE    0x238
#define BP_E820_TABLE      0x2d0
#define BP_E820_MAX        128
#define LOADED_HIGH        0x01

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

static size_t setup_bytes(const uint8_t *img)
{
    unsigned sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
    return (size_t)(sects + 1) * 512;
}

int pc_linux_setup(struct pc_board *pc, const struct pc_params *params)
{
    void *data;
    size_t len;
    int rc = rt_file_read_all(params->kernel_path, LINUX_MAX_IMAGE, &data, &len);
    if (rc) {
        LOG_ERR("cannot read kernel '%s': %s", params->kernel_path, rt_err_str(rc));
        return rc;
    }
    pc->linux_image = data;
    pc->linux_size = len;
    const uint8_t *img = data;
    if (len < 0x1000 || rd16(img + BP_BOOT_FLAG) != 0xaa55 || rd32(img + BP_HEADER) != 0x53726448) {
        LOG_ERR("kernel '%s' is not a Linux bzImage (no boot sector signature or 'HdrS' header)",
                params->kernel_path);
        return VERR_BAD_FORMAT;
    }
    uint16_t version = rd16(img + BP_VERSION);
    if (version < 0x0206 || !(img[BP_LOADFLAGS] & LOADED_HIGH)) {
        LOG_ERR("kernel '%s' uses boot protocol %u.%02u; Vireo needs a bzImage with protocol 2.06 or later",
                params->kernel_path, version >> 8, version & 0xff);
        return VERR_BAD_FORMAT;
    }
    size_t setup = setup_bytes(img);
    if (setup >= len) {
        LOG_ERR("kernel '%s' is truncated (setup code claims %zu of %zu bytes)", params->kernel_path, setup, len);
        return VERR_TRUNCATED;
    }
    size_t kernel = len - setup;
    uint64_t ram_top = pc->lowmem - pc->acpi_reserved; /* the ACPI tables sit above */
    if (LINUX_KERNEL_GPA + kernel > ram_top) {
        LOG_ERR("kernel '%s' (%zu KiB) does not fit in %llu MiB of memory", params->kernel_path, kernel >> 10,
                (unsigned long long)(pc->lowmem >> 20));
        return VERR_TOO_LARGE;
    }
    const char *cmdline = params->cmdline ? params->cmdline : "";
    size_t cmd_len = strlen(cmdline);
    uint32_t cmd_max = rd32(img + BP_CMDLINE_SIZE);
    if (cmd_len >= LINUX_CMDLINE_MAX || (cmd_max && cmd_len > cmd_max)) {
        LOG_ERR("kernel command line is %zu bytes; this kernel accepts at most %u", cmd_len,
                cmd_max ? cmd_max : LINUX_CMDLINE_MAX - 1);
        return VERR_TOO_LARGE;
    }
    pc->cmdline = strdup(cmdline);
    if (!pc->cmdline)
        return VERR_NO_MEMORY;
    if (params->initrd_path) {
        rc = rt_file_read_all(params->initrd_path, LINUX_MAX_IMAGE, &data, &len);
        if (rc) {
            LOG_ERR("cannot read initrd '%s': %s", params->initrd_path, rt_err_str(rc));
            return rc;
        }
        pc->initrd = data;
        pc->initrd_size = len;
        uint64_t top = RT_MIN((uint64_t)rd32(img + BP_INITRD_ADDR_MAX) + 1, ram_top);
        uint64_t kernel_end = RT_ALIGN_UP(LINUX_KERNEL_GPA + kernel, 4096);
        if (len > top || ((top - len) & ~4095ULL) < kernel_end) {
            LOG_ERR("initrd '%s' (%zu KiB) does not fit in memory beside the kernel; give the VM more memory",
                    params->initrd_path, len >> 10);
            return VERR_TOO_LARGE;
        }
        pc->initrd_gpa = (top - len) & ~4095ULL;
    }
    /* The same images through fw_cfg, for firmware that loads the kernel itself. */
    struct pdm_dev *f = pc->fwcfg;
    rc = fwcfg_set_u32(f, FWCFG_KERNEL_ADDR, (uint32_t)LINUX_KERNEL_GPA);
    if (!rc)
        rc = fwcfg_set_u32(f, FWCFG_KERNEL_SIZE, (uint32_t)kernel);
    if (!rc)
        rc = fwcfg_set_item(f, FWCFG_KERNEL_DATA, img + setup, kernel);
    if (!rc)
        rc = fwcfg_set_u32(f, FWCFG_SETUP_SIZE, (uint32_t)setup);
    if (!rc)
        rc = fwcfg_set_item(f, FWCFG_SETUP_DATA, img, setup);
    if (!rc)
        rc = fwcfg_set_u32(f, FWCFG_CMDLINE_ADDR, (uint32_t)LINUX_CMDLINE_GPA);
    if (!rc)
        rc = fwcfg_set_u32(f, FWCFG_CMDLINE_SIZE, (uint32_t)cmd_len + 1);
    if (!rc)
        rc = fwcfg_set_item(f, FWCFG_CMDLINE_DATA, pc->cmdline, cmd_len + 1);
    if (!rc && pc->initrd) {
        rc = fwcfg_set_u32(f, FWCFG_INITRD_ADDR, (uint32_t)pc->initrd_gpa);
        if (!rc)
            rc = fwcfg_set_u32(f, FWCFG_INITRD_SIZE, (uint32_t)pc->initrd_size);
        if (!rc)
            rc = fwcfg_set_item(f, FWCFG_INITRD_DATA, pc->initrd, pc->initrd_size);
    }
    if (!rc)
        LOG_INFO("direct boot: kernel '%s' (%zu KiB, protocol %u.%02u)%s%s", params->kernel_path, kernel >> 10,
                 version >> 8, version & 0xff, pc->initrd ? ", initrd " : "",
                 pc->initrd ? params->initrd_path : "");
    return rc;
}

/*
 * Without firmware the board is the loader: it runs the ACPI linker/loader script
 * itself, with the tables at acpi_gpa and the RSDP in the EBDA.  The kernel finds the
 * RSDP through boot_params.acpi_rsdp_addr (boot protocol 2.14) and, older ones, by
 * searching the EBDA that the BIOS data area's word at 0x40e points to (ACPI 6.4 5.2.5.1).
 */
static void pc_linux_place_acpi(struct pc_board *pc, uint8_t *zp)
{
    uint8_t *tables = malloc(pc->acpi.tables_len), *rsdp = malloc(pc->acpi.rsdp_len);
    uint64_t log_gpa = pc->acpi_gpa - pc->acpi.tpm_log_len;
    if (tables && rsdp && acpi_tables_link(&pc->acpi, pc->acpi_gpa, PC_ACPI_DIRECT_RSDP, log_gpa, tables, rsdp) == 0) {
        mem_write(pc->vm, pc->acpi_gpa, tables, pc->acpi.tables_len);
        if (pc->acpi.tpm_log_len) /* empty: no firmware measured this boot */
            mem_write(pc->vm, log_gpa, pc->acpi.tpm_log, pc->acpi.tpm_log_len);
        mem_write(pc->vm, PC_ACPI_DIRECT_RSDP, rsdp, pc->acpi.rsdp_len);
        uint16_t ebda_segment = (uint16_t)(PC_ACPI_DIRECT_RSDP >> 4);
        mem_write(pc->vm, 0x40e, &ebda_segment, sizeof(ebda_segment));
        wr64(zp + BP_ACPI_RSDP_ADDR, PC_ACPI_DIRECT_RSDP);
    } else {
        LOG_ERR("cannot place the ACPI tables: the kernel boots without them");
    }
    free(tables);
    free(rsdp);
}

static void flat_seg(struct cpu_seg *seg, uint16_t sel, uint32_t type)
{
    seg->sel = sel;
    seg->base = 0;
    seg->limit = 0xffffffff;
    seg->attr = type | CPU_SEG_ATTR_S | CPU_SEG_ATTR_P | CPU_SEG_ATTR_DB | CPU_SEG_ATTR_G;
}

void pc_linux_reset(struct pc_board *pc)
{
    struct vm *vm = pc->vm;
    const uint8_t *img = pc->linux_image;
    size_t setup = setup_bytes(img);
    /* The 32-bit entry expects A20 enabled, which a boot loader's real-mode part would have done. */
    vm_set_a20(vm, true);
    /* No firmware ran: do its chipset set-up the tables assume (the PM block where the FADT says). */
    if (pc->pm)
        piix4_pm_set_io_base(pc->pm, pc->acpi_cfg.pm_base ? pc->acpi_cfg.pm_base : PC_ACPI_PM_BASE);
    mem_write(vm, LINUX_KERNEL_GPA, img + setup, pc->linux_size - setup);
    if (pc->initrd)
        mem_write(vm, pc->initrd_gpa, pc->initrd, pc->initrd_size);
    mem_write(vm, LINUX_CMDLINE_GPA, pc->cmdline, strlen(pc->cmdline) + 1);

    /* GDT: null, null, 0x10 flat code, 0x18 flat data. */
    static const uint64_t gdt[4] = { 0, 0, 0x00cf9b000000ffffULL, 0x00cf93000000ffffULL };
    mem_write(vm, LINUX_GDT_GPA, gdt, sizeof(gdt));

    uint8_t zp[4096];
    memset(zp, 0, sizeof(zp));
    size_t hdr_end = RT_MIN((size_t)(BP_HEADER + img[BP_HEADER_JUMP]), sizeof(zp));
    memcpy(zp + BP_SETUP_SECTS, img + BP_SETUP_SECTS, hdr_end - BP_SETUP_SECTS);
    zp[BP_TYPE_OF_LOADER] = 0xff; /* undefined boot loader */
    wr32(zp + BP_CMD_LINE_PTR, (uint32_t)LINUX_CMDLINE_GPA);
    wr32(zp + BP_RAMDISK_IMAGE, (uint32_t)pc->initrd_gpa);
    wr32(zp + BP_RAMDISK_SIZE, (uint32_t)pc->initrd_size);
    struct {
        uint64_t addr, len;
        uint32_t type;
    } __attribute__((packed)) e820[7] = {
        { 0, 0x9fc00, 1 },
        { 0x9fc00, 0x400, 2 },
        { 0xe0000, 0x20000, 2 },
        { 0x100000, pc->lowmem - pc->acpi_reserved - 0x100000, 1 },
    };
    unsigned n = 4;
    if (pc->acpi_reserved) {
        if (pc->acpi.tpm_log_len) {
            /* The TPM event log outlives the tables: reserved, which an OS never reuses. */
            e820[n].addr = pc->acpi_gpa - pc->acpi.tpm_log_len;
            e820[n].len = pc->acpi.tpm_log_len;
            e820[n++].type = 2;
        }
        e820[n].addr = pc->acpi_gpa;
        e820[n].len = PC_ACPI_DIRECT_BYTES;
        e820[n++].type = 3; /* ACPI reclaimable */
        pc_linux_place_acpi(pc, zp);
    }
    if (pc->highmem) {
        e820[n].addr = 0x100000000ULL;
        e820[n].len = pc->highmem;
        e820[n++].type = 1;
    }
    memcpy(zp + BP_E820_TABLE, e820, n * sizeof(e820[0]));
    zp[BP_E820_ENTRIES] = (uint8_t)n;
    mem_write(vm, LINUX_ZERO_PAGE, zp, sizeof(zp));

    /* Without firmware the kernel learns the other processors and the I/O APIC from the MP table. */
    if (pc->apic) {
        uint8_t mp[LINUX_MPTABLE_MAX];
        size_t mp_len = pc_mptable_build(mp, sizeof(mp), (uint32_t)LINUX_MPTABLE_GPA, vm_get_vcpu_count(vm), 0);
        if (mp_len)
            mem_write(vm, LINUX_MPTABLE_GPA, mp, mp_len);
        else
            LOG_ERR("the MP table for %u vCPUs does not fit in %u bytes; the kernel sees one CPU",
                    vm_get_vcpu_count(vm), LINUX_MPTABLE_MAX);
    }

    struct cpu_state *s = vcpu_state(vm_get_vcpu(vm, 0));
    flat_seg(&s->seg[CPU_CS], 0x10, 0xb);
    flat_seg(&s->seg[CPU_DS], 0x18, 0x3);
    flat_seg(&s->seg[CPU_ES], 0x18, 0x3);
    flat_seg(&s->seg[CPU_SS], 0x18, 0x3);
    flat_seg(&s->seg[CPU_FS], 0x18, 0x3);
    flat_seg(&s->seg[CPU_GS], 0x18, 0x3);
    s->gdtr.base = LINUX_GDT_GPA;
    s->gdtr.limit = sizeof(gdt) - 1;
    s->idtr.base = 0;
    s->idtr.limit = 0;
    s->cr0 = CPU_CR0_PE | CPU_CR0_ET;
    s->rflags = CPU_RFLAGS_FIXED;
    s->rip = rd32(img + BP_CODE32_START);
    memset(s->gpr, 0, sizeof(s->gpr));
    s->gpr[CPU_RSI] = LINUX_ZERO_PAGE;
}

/* ---- MP table (Intel MultiProcessor Specification 1.4, chapter 4) ---------------------------------- */

#define MP_FLOAT_BYTES   16
#define MP_HEADER_BYTES  44
#define MP_CPU_BYTES     20
#define MP_ENTRY_BYTES   8
#define MP_SPEC_REV      4    /* version 1.4 */
enum { MP_ENTRY_CPU = 0, MP_ENTRY_BUS = 1, MP_ENTRY_IOAPIC = 2, MP_ENTRY_IOINT = 3, MP_ENTRY_LOCALINT = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
#define MP_BUS_PCI       0
#define MP_BUS_ISA       1
/* What the processor entries report: the software CPU's signature (family 6, model 3Ah) with FPU and APIC. */
#define MP_CPU_SIGNATURE 0x000306a9u
#define MP_CPU_FEATURES  0x00000201u
#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* Makes the bytes [p, p+len) sum to zero through the byte at p[at] (MP spec 4.1 and 4.2). */
static void mp_checksum(uint8_t *p, size_t len, size_t at)
{
    uint8_t sum = 0;
    p[at] = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    p[at] = (uint8_t)-sum;
}

/* An interrupt assignment entry (table 4-7 and 4-8): flags 0 conform to the source bus. */
static uint8_t *mp_int_entry(uint8_t *e, unsigned kind, unsigned type, uint8_t bus, uint8_t bus_irq, uint8_t dest,
                             uint8_t pin)
{
    e[0] = (uint8_t)kind;
    e[1] = (uint8_t)type;
    wr16(e + 2, 0);
    e[4] = bus;
    e[5] = bus_irq;
    e[6] = dest;
    e[7] = pin;
    return e + MP_ENTRY_BYTES;
}

size_t pc_mptable_build(uint8_t *buf, size_t cap, uint32_t gpa, unsigned vcpus, uint8_t ioapic_id)
{
    /* ISA IRQs 0-15 but the cascade (2); IRQ 0 arrives on pin 2, as the board wires the PIT. */
    const unsigned isa_irqs = 15;
    size_t entries = (size_t)vcpus + 2 /* buses */ + 1 /* I/O APIC */ + isa_irqs + 2 /* LINT0, LINT1 */;
    size_t table = MP_HEADER_BYTES + (size_t)vcpus * MP_CPU_BYTES + (entries - vcpus) * MP_ENTRY_BYTES;
    if (vcpus == 0 || vcpus > 255 || MP_FLOAT_BYTES + table > cap)
        return 0;
    memset(buf, 0, MP_FLOAT_BYTES + table);

    /* The floating pointer (4.1, table 4-1): one 16-byte paragraph, the table right behind it, no default configuration. */
    uint8_t *f = buf;
    memcpy(f, "_MP_", 4);
    wr32(f + 4, gpa + MP_FLOAT_BYTES);
    f[8] = 1; /* length in paragraphs */
    f[9] = MP_SPEC_REV;
    f[11] = 0; /* feature byte 1: a configuration table is present */
    f[12] = 0; /* feature byte 2: IMCRP clear, virtual wire mode */
    mp_checksum(f, MP_FLOAT_BYTES, 10);

    /* The configuration table header (4.2, table 4-2). */
    uint8_t *h = buf + MP_FLOAT_BYTES;
    memcpy(h, "PCMP", 4);
    wr16(h + 4, (uint16_t)table);
    h[6] = MP_SPEC_REV;
    memcpy(h + 8, "VIREO   ", 8);
    memcpy(h + 16, "PC          ", 12);
    wr16(h + 34, (uint16_t)entries);
    wr32(h + 36, APIC_DEFAULT_BASE);

    uint8_t *e = h + MP_HEADER_BYTES;
    for (unsigned i = 0; i < vcpus; i++, e += MP_CPU_BYTES) {
        /* Processor entries (4.3.1, table 4-4): enabled, vCPU 0 the bootstrap processor. */
        e[0] = MP_ENTRY_CPU;
        e[1] = (uint8_t)i;
        e[2] = MP_LAPIC_VERSION;
        e[3] = (uint8_t)(0x1 | (i == 0 ? 0x2 : 0));
        wr32(e + 4, MP_CPU_SIGNATURE);
        wr32(e + 8, MP_CPU_FEATURES);
    }
    /* Bus entries (4.3.2): the PCI bus 0 and the ISA bus behind the PIIX3. */
    e[0] = MP_ENTRY_BUS;
    e[1] = MP_BUS_PCI;
    memcpy(e + 2, "PCI   ", 6);
    e += MP_ENTRY_BYTES;
    e[0] = MP_ENTRY_BUS;
    e[1] = MP_BUS_ISA;
    memcpy(e + 2, "ISA   ", 6);
    e += MP_ENTRY_BYTES;
    /* The I/O APIC (4.3.3, table 4-6), enabled. */
    e[0] = MP_ENTRY_IOAPIC;
    e[1] = ioapic_id;
    e[2] = MP_IOAPIC_VERSION;
    e[3] = 0x1;
    wr32(e + 4, IOAPIC_DEFAULT_BASE);
    e += MP_ENTRY_BYTES;
    for (unsigned irq = 0; irq < 16; irq++) {
        if (irq == 2)
            continue;
        e = mp_int_entry(e, MP_ENTRY_IOINT, MP_INT, MP_BUS_ISA, (uint8_t)irq, ioapic_id, (uint8_t)(irq == 0 ? 2 : irq));
    }
    /* The PIC's output on LINT0 (virtual wire) and NMI on LINT1 of every local APIC (4.3.5). */
    e = mp_int_entry(e, MP_ENTRY_LOCALINT, MP_EXTINT, MP_BUS_ISA, 0, 0xff, 0);
    e = mp_int_entry(e, MP_ENTRY_LOCALINT, MP_NMI, MP_BUS_ISA, 0, 0xff, 1);
    mp_checksum(h, table, 7);
    return MP_FLOAT_BYTES + table;
}

void pc_linux_free(struct pc_board *pc)
{
    free(pc->linux_image);
    free(pc->initrd);
    free(pc->cmdline);
    pc->linux_image = NULL;
    pc->initrd = NULL;
    pc->cmdline = NULL;
}
