/* acpi.c - Vireo's ACPI tables (RSDP, RSDT, XSDT, FADT, FACS, DSDT, SSDT, MADT, HPET, TPM2), the TPM event log area and the linker/loader script that places them. */

/*
 * Design: firmware does not build ACPI tables for Vireo; it loads them.  The
 * tables are built here for the machine's configuration and handed over as the
 * fw_cfg files that SeaBIOS and OVMF both read: "etc/acpi/tables" (every table
 * but the RSDP, one blob), "etc/acpi/rsdp" and "etc/table-loader", a script of
 * 128-byte commands that tells the firmware to allocate the two blobs (the RSDP
 * in the F segment, where an OS searches for it), add the blobs' final addresses
 * to the pointer fields (which hold offsets into the target blob until then) and
 * compute each table's checksum once its pointers are in place.  OVMF follows the
 * pointers to find the tables and installs each through its ACPI table protocol,
 * so every table is reached from the RSDT/XSDT or the FADT.
 *
 * With a TPM a fourth file, "etc/tpm/log", is a zero-filled blob the firmware
 * allocates in high memory; the TPM2 table's LASA field points at it.  SeaBIOS
 * measures the boot only when the TPM2 table names such an area (it writes its
 * event log there), and Linux reads that log back through the same fields.  OVMF
 * keeps the blob (no table lives in it) and hands its own log over EFI instead.
 *
 * The DSDT is ASL compiled by iasl at build time; the few per-VM values in it are
 * named integers holding unique sentinels that acpi_dsdt_patch replaces.  The
 * processors (one device per vCPU) are in an SSDT written here, because their
 * number is per VM.  For a direct kernel boot the board runs the same script
 * itself (acpi_tables_link) and copies the result into guest RAM.
 *
 * Facts used: ACPI 6.4 chapter 5 (table layouts, the FADT of revision 6, MADT
 * entries), the IA-PC HPET spec 1.0a 3.2.4, the TCG ACPI spec 1.3 (TPM2 table)
 * and the PIIX4 datasheet for the power-management registers.
 */
#include <stdlib.h>
#include <string.h>

#include "vireo/rt.h"
#include "acpi-internal.h"

#define LOG_COMPONENT "acpi"

#define ACPI_OEM_ID       "VIREO "
#define ACPI_OEM_TABLE_ID "VIREOPC "
#define ACPI_OEM_REV      1u
#define ACPI_CREATOR_ID   "VIRE"
#define ACPI_CREATOR_REV  1u
#define ACPI_TABLES_ALIGN 64u /* the FACS, first in the blob, must be 64-byte aligned (ACPI 6.4 5.2.10) */
#define ACPI_RSDP_ALIGN   16u /* the OS searches 16-byte boundaries (ACPI 6.4 5.2.5.1) */

/* FADT fields (ACPI 6.4 table 5.9): offsets. */
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT          40
#define FADT_INT_MODEL     44
#define FADT_SCI_INT       46
#define FADT_SMI_CMD       48
#define FADT_ACPI_ENABLE   52
#define FADT_ACPI_DISABLE  53
#define FADT_PM1A_EVT_BLK  56
#define FADT_PM1A_CNT_BLK  64
#define FADT_PM_TMR_BLK    76
#define FADT_GPE0_BLK      80
#define FADT_PM1_EVT_LEN   88
#define FADT_PM1_CNT_LEN   89
#define FADT_PM_TMR_LEN    91
#define FADT_GPE0_BLK_LEN  92
#define FADT_P_LVL2_LAT    96
#define FADT_P_LVL3_LAT    98
#define FADT_CENTURY       108
#define FADT_BOOT_ARCH     109
#define FADT_FLAGS         112
#define FADT_RESET_REG     116
#define FADT_RESET_VALUE   128
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT        140
#define FADT_X_PM1A_EVT    148
#define FADT_X_PM1A_CNT    172
#define FADT_X_PM_TMR      208
#define FADT_X_GPE0        220

/* FADT flags (ACPI 6.4 table 5.10) and IA-PC boot architecture flags (table 5.11). */
#define FADT_F_WBINVD        (1u << 0)
#define FADT_F_PROC_C1       (1u << 2)
#define FADT_F_SLP_BUTTON    (1u << 5) /* set: no fixed-feature sleep button (and we have no control-method one) */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define BOOT_ARCH_LEGACY     (1u << 0)
#define BOOT_ARCH_8042       (1u << 1)

#define PM1_EVT_LEN 4u /* status + enable, 16 bits each */
#define PM1_CNT_LEN 2u
#define PM_TMR_LEN  4u
#define RTC_CENTURY 0x32u /* the MC146818 CMOS byte SeaBIOS and Linux use for the century */

/* Generic Address Structure (ACPI 6.4 5.2.3.2): address spaces and access sizes. */
#define GAS_SYSTEM_MEMORY 0
#define GAS_SYSTEM_IO     1
#define GAS_ACCESS_BYTE   1
#define GAS_ACCESS_WORD   2
#define GAS_ACCESS_DWORD  3

/* MADT (ACPI 6.4 5.2.12). */
#define MADT_PCAT_COMPAT      1u
#define MADT_LOCAL_APIC       0
#define MADT_IO_APIC          1
#define MADT_IRQ_OVERRIDE     2
#define MADT_LOCAL_APIC_NMI   4
#define MADT_ENABLED          1u
#define MPS_POLARITY_HIGH     0x1u
#define MPS_TRIGGER_EDGE      0x4u
#define MPS_TRIGGER_LEVEL     0xcu
#define MADT_ALL_PROCESSORS   0xffu

/* TPM2 table (TCG ACPI spec 1.3, 8.3): start method 6 is the TIS/FIFO interface, no control area. */
#define TPM2_START_METHOD_TIS 6u
#define TPM2_TABLE_BYTES      76u
#define TPM2_LAML             64 /* log area minimum length, 4 bytes (revision 4) */
#define TPM2_LASA             68 /* log area start address, 8 bytes */
#define TPM_LOG_ALIGN         4096u

/* AML opcodes the SSDT uses (ACPI 6.4 20.2). */
#define AML_NAME_OP        0x08
#define AML_BYTE_PREFIX    0x0a
#define AML_DWORD_PREFIX   0x0c
#define AML_STRING_PREFIX  0x0d
#define AML_QWORD_PREFIX   0x0e
#define AML_SCOPE_OP       0x10
#define AML_EXT_OP_PREFIX  0x5b
#define AML_DEVICE_OP      0x82
#define AML_ROOT_CHAR      0x5c

/* ---- A growing byte buffer ----------------------------------------------------------- */

struct acpi_buf {
    uint8_t *data;
    size_t len, cap;
    bool failed; /* out of memory: later calls do nothing, the caller checks once */
};

/* Appends n zero bytes and returns their offset (SIZE_MAX once out of memory). */
static size_t buf_grow(struct acpi_buf *b, size_t n)
{
    if (b->failed)
        return SIZE_MAX;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p) {
            b->failed = true;
            return SIZE_MAX;
        }
        memset(p + b->cap, 0, cap - b->cap);
        b->data = p;
        b->cap = cap;
    }
    size_t off = b->len;
    b->len += n;
    return off;
}

static void buf_align(struct acpi_buf *b, size_t align)
{
    if (b->len % align)
        buf_grow(b, align - b->len % align);
}

static void put_le(struct acpi_buf *b, size_t off, uint64_t v, unsigned bytes)
{
    if (b->failed || off + bytes > b->len)
        return;
    for (unsigned i = 0; i < bytes; i++)
        b->data[off + i] = (uint8_t)(v >> (8 * i));
}

static void put_bytes(struct acpi_buf *b, size_t off, const void *src, size_t n)
{
    if (!b->failed && off + n <= b->len)
        memcpy(b->data + off, src, n);
}

static void append(struct acpi_buf *b, const void *src, size_t n)
{
    size_t off = buf_grow(b, n);
    put_bytes(b, off, src, n);
}

uint8_t acpi_checksum(const uint8_t *data, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + data[i]);
    return sum;
}

/* ---- The linker/loader script -------------------------------------------------------- */

static size_t loader_entry(struct acpi_buf *script, uint32_t command)
{
    size_t off = buf_grow(script, ACPI_LOADER_ENTRY_BYTES);
    put_le(script, off, command, 4);
    return off;
}

static void loader_allocate(struct acpi_buf *script, const char *file, uint32_t align, uint8_t zone)
{
    size_t e = loader_entry(script, ACPI_LOADER_ALLOCATE);
    put_bytes(script, e + 4, file, strlen(file));
    put_le(script, e + 4 + ACPI_LOADER_FNAME_BYTES, align, 4);
    put_le(script, e + 8 + ACPI_LOADER_FNAME_BYTES, zone, 1);
}

/* The size-byte field at dest_file+offset holds an offset into src_file; the loader adds src_file's address. */
static void loader_add_pointer(struct acpi_buf *script, const char *dest_file, const char *src_file, size_t offset,
                               uint8_t size)
{
    size_t e = loader_entry(script, ACPI_LOADER_ADD_POINTER);
    put_bytes(script, e + 4, dest_file, strlen(dest_file));
    put_bytes(script, e + 4 + ACPI_LOADER_FNAME_BYTES, src_file, strlen(src_file));
    put_le(script, e + 4 + 2 * ACPI_LOADER_FNAME_BYTES, offset, 4);
    put_le(script, e + 8 + 2 * ACPI_LOADER_FNAME_BYTES, size, 1);
}

static void loader_add_checksum(struct acpi_buf *script, const char *file, size_t result, size_t start,
                                size_t length)
{
    size_t e = loader_entry(script, ACPI_LOADER_ADD_CHECKSUM);
    put_bytes(script, e + 4, file, strlen(file));
    put_le(script, e + 4 + ACPI_LOADER_FNAME_BYTES, result, 4);
    put_le(script, e + 8 + ACPI_LOADER_FNAME_BYTES, start, 4);
    put_le(script, e + 12 + ACPI_LOADER_FNAME_BYTES, length, 4);
}

/* ---- Tables -------------------------------------------------------------------------- */

struct acpi_build {
    const struct acpi_config *cfg;
    struct acpi_buf tables, rsdp, script;
};

/* A pointer field in the tables blob at field_off (width bytes) to target_off in the same blob. */
static void table_pointer(struct acpi_build *bld, size_t field_off, unsigned width, size_t target_off)
{
    put_le(&bld->tables, field_off, target_off, width);
    loader_add_pointer(&bld->script, ACPI_FILE_TABLES, ACPI_FILE_TABLES, field_off, (uint8_t)width);
}

/* Starts a table with the standard header (ACPI 6.4 5.2.6); the length is set by table_end. */
static size_t table_begin(struct acpi_build *bld, const char sig[4], uint8_t revision, size_t fixed_bytes)
{
    struct acpi_buf *b = &bld->tables;
    buf_align(b, 8);
    size_t off = buf_grow(b, fixed_bytes);
    put_bytes(b, off, sig, 4);
    put_le(b, off + 8, revision, 1);
    put_bytes(b, off + 10, ACPI_OEM_ID, 6);
    put_bytes(b, off + 16, ACPI_OEM_TABLE_ID, 8);
    put_le(b, off + 24, ACPI_OEM_REV, 4);
    put_bytes(b, off + 28, ACPI_CREATOR_ID, 4);
    put_le(b, off + 32, ACPI_CREATOR_REV, 4);
    return off;
}

/* Sets the length and asks the loader for the checksum (after the table's pointers, which it patches first). */
static void table_end(struct acpi_build *bld, size_t off)
{
    size_t len = bld->tables.len - off;
    put_le(&bld->tables, off + 4, len, 4);
    loader_add_checksum(&bld->script, ACPI_FILE_TABLES, off + 9, off, len);
}

static void gas_put(struct acpi_buf *b, size_t off, uint8_t space, uint8_t bit_width, uint8_t access, uint64_t addr)
{
    put_le(b, off, space, 1);
    put_le(b, off + 1, bit_width, 1);
    put_le(b, off + 2, 0, 1);
    put_le(b, off + 3, access, 1);
    put_le(b, off + 4, addr, 8);
}

/* FACS (ACPI 6.4 5.2.10): no checksum; the OS writes the waking vector, the firmware reads it on resume. */
static size_t build_facs(struct acpi_build *bld)
{
    struct acpi_buf *b = &bld->tables;
    size_t off = buf_grow(b, ACPI_FACS_BYTES);
    put_bytes(b, off, "FACS", 4);
    put_le(b, off + 4, ACPI_FACS_BYTES, 4);
    put_le(b, off + 8, 0, 4);  /* hardware signature: the hardware never changes under a sleeping OS */
    put_le(b, off + 12, 0, 4); /* firmware waking vector (real mode) */
    put_le(b, off + 16, 0, 4); /* global lock */
    put_le(b, off + 20, 0, 4); /* flags: no S4BIOS, no 64-bit wake */
    put_le(b, off + 24, 0, 8); /* X firmware waking vector */
    put_le(b, off + 32, 2, 1); /* version */
    return off;
}

/* Replaces the value of `Name (NAME, sentinel)` in the AML: exactly one match, or the DSDT does not match this code. */
static int dsdt_patch(uint8_t *aml, size_t len, const char name[4], uint8_t prefix, uint64_t sentinel, uint64_t value)
{
    unsigned width = prefix == AML_QWORD_PREFIX ? 8 : 4;
    uint8_t pat[14];
    pat[0] = AML_NAME_OP;
    memcpy(pat + 1, name, 4);
    pat[5] = prefix;
    for (unsigned i = 0; i < width; i++)
        pat[6 + i] = (uint8_t)(sentinel >> (8 * i));
    size_t pat_len = 6 + width, found = SIZE_MAX;
    for (size_t i = ACPI_HEADER_BYTES; i + pat_len <= len; i++) {
        if (memcmp(aml + i, pat, pat_len) != 0)
            continue;
        if (found != SIZE_MAX) {
            LOG_ERR("the compiled DSDT holds the sentinel of %.4s twice", name);
            return VERR_BAD_FORMAT;
        }
        found = i;
    }
    if (found == SIZE_MAX) {
        LOG_ERR("the compiled DSDT lacks the sentinel of %.4s (acpi-dsdt.asl and acpi.c disagree)", name);
        return VERR_BAD_FORMAT;
    }
    for (unsigned i = 0; i < width; i++)
        aml[found + 6 + i] = (uint8_t)(value >> (8 * i));
    return 0;
}

static size_t build_dsdt(struct acpi_build *bld, int *rc)
{
    const struct acpi_config *cfg = bld->cfg;
    struct acpi_buf *b = &bld->tables;
    buf_align(b, 8);
    size_t off = buf_grow(b, g_acpi_dsdt_aml_len);
    if (b->failed)
        return off;
    uint8_t *aml = b->data + off;
    memcpy(aml, g_acpi_dsdt_aml, g_acpi_dsdt_aml_len);
    /* iasl writes its own creator ID and version; Vireo's tables all name Vireo. */
    memcpy(aml + 28, ACPI_CREATOR_ID, 4);
    put_le(b, off + 32, ACPI_CREATOR_REV, 4);
    uint32_t com = 0;
    for (unsigned i = 0; i < PC_SERIAL_PORTS; i++)
        com |= cfg->com[i] ? 1u << i : 0;
    uint64_t p64_start = RT_ALIGN_UP(0x100000000ULL + cfg->highmem_bytes, 1ULL << 30);
    uint64_t p64_end = (1ULL << cfg->phys_bits) - 1;
    *rc = dsdt_patch(aml, g_acpi_dsdt_aml_len, "COMP", AML_DWORD_PREFIX, 0x56520001, com);
    if (!*rc)
        *rc = dsdt_patch(aml, g_acpi_dsdt_aml_len, "HPTP", AML_DWORD_PREFIX, 0x56520002, cfg->hpet);
    if (!*rc)
        *rc = dsdt_patch(aml, g_acpi_dsdt_aml_len, "TPMP", AML_DWORD_PREFIX, 0x56520003, cfg->tpm);
    if (!*rc)
        *rc = dsdt_patch(aml, g_acpi_dsdt_aml_len, "P32S", AML_DWORD_PREFIX, 0x56520004, cfg->lowmem_bytes);
    if (!*rc)
        *rc = dsdt_patch(aml, g_acpi_dsdt_aml_len, "P64S", AML_QWORD_PREFIX, 0x5652000000000005ULL, p64_start);
    if (!*rc)
        *rc = dsdt_patch(aml, g_acpi_dsdt_aml_len, "P64E", AML_QWORD_PREFIX, 0x5652000000000006ULL, p64_end);
    aml[9] = 0;
    loader_add_checksum(&bld->script, ACPI_FILE_TABLES, off + 9, off, g_acpi_dsdt_aml_len);
    return off;
}

/* AML PkgLength (ACPI 6.4 20.2.4) of a package whose contents (after the PkgLength) are body bytes. */
static size_t aml_pkglen(uint8_t *out, size_t body)
{
    size_t total = body + 1;
    if (total < 0x40) {
        out[0] = (uint8_t)total;
        return 1;
    }
    size_t n = 1;
    while (n < 4 && (body + 1 + n) >= (1ULL << (4 + 8 * n)))
        n++;
    total = body + 1 + n;
    out[0] = (uint8_t)((n << 6) | (total & 0x0f));
    for (size_t i = 1; i <= n; i++)
        out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
    return n + 1;
}

/*
 * SSDT: Scope (\_SB) { Device (Cnnn) { Name (_HID, "ACPI0007") Name (_UID, n) } ... },
 * one processor device per vCPU whose _UID is the MADT's ACPI processor UID (ACPI 6.4 8.4).
 */
static size_t build_ssdt(struct acpi_build *bld)
{
    unsigned n = bld->cfg->vcpus;
    struct acpi_buf body = { 0 };
    for (unsigned i = 0; i < n; i++) {
        uint8_t dev[40];
        size_t d = 0;
        static const char hex[] = "0123456789ABCDEF";
        const char seg[4] = { 'C', hex[(i >> 8) & 0xf], hex[(i >> 4) & 0xf], hex[i & 0xf] };
        memcpy(dev + d, seg, 4), d += 4;
        dev[d++] = AML_NAME_OP;
        memcpy(dev + d, "_HID", 4), d += 4;
        dev[d++] = AML_STRING_PREFIX;
        memcpy(dev + d, "ACPI0007", 9), d += 9;
        dev[d++] = AML_NAME_OP;
        memcpy(dev + d, "_UID", 4), d += 4;
        dev[d++] = AML_BYTE_PREFIX;
        dev[d++] = (uint8_t)i;
        uint8_t head[6] = { AML_EXT_OP_PREFIX, AML_DEVICE_OP };
        size_t h = 2 + aml_pkglen(head + 2, d);
        append(&body, head, h);
        append(&body, dev, d);
    }
    size_t off = table_begin(bld, "SSDT", 2, ACPI_HEADER_BYTES);
    uint8_t head[8] = { AML_SCOPE_OP };
    size_t h = 1 + aml_pkglen(head + 1, 5 + body.len);
    append(&bld->tables, head, h);
    static const uint8_t sb[5] = { AML_ROOT_CHAR, '_', 'S', 'B', '_' };
    append(&bld->tables, sb, sizeof(sb));
    append(&bld->tables, body.data, body.len);
    bld->tables.failed |= body.failed;
    free(body.data);
    table_end(bld, off);
    return off;
}

/* FADT revision 6 (ACPI 6.4 5.2.9) with the PIIX4 PM registers of devices.h; ACPI 1.0 fields too. */
static size_t build_fadt(struct acpi_build *bld, size_t facs, size_t dsdt)
{
    struct acpi_buf *b = &bld->tables;
    /* The register block sits where the firmware put PMBA (the board rebuilds the tables when it asks). */
    uint32_t pm = bld->cfg->pm_base ? bld->cfg->pm_base : PC_ACPI_PM_BASE;
    uint32_t pm1_evt = pm + (PC_ACPI_PM1_EVT - PC_ACPI_PM_BASE), pm1_cnt = pm + (PC_ACPI_PM1_CNT - PC_ACPI_PM_BASE);
    uint32_t pm_tmr = pm + (PC_ACPI_PM_TMR - PC_ACPI_PM_BASE), gpe0 = pm + (PC_ACPI_GPE0 - PC_ACPI_PM_BASE);
    size_t off = table_begin(bld, "FACP", 6, ACPI_FADT_BYTES);
    table_pointer(bld, off + FADT_FIRMWARE_CTRL, 4, facs);
    table_pointer(bld, off + FADT_DSDT, 4, dsdt);
    table_pointer(bld, off + FADT_X_DSDT, 8, dsdt);
    put_le(b, off + FADT_INT_MODEL, bld->cfg->apic ? 1 : 0, 1); /* ACPI 1.0: 1 = multiple APIC */
    put_le(b, off + FADT_SCI_INT, PC_ACPI_SCI_IRQ, 2);
    put_le(b, off + FADT_SMI_CMD, PC_APM_CNT_PORT, 4);
    put_le(b, off + FADT_ACPI_ENABLE, PC_ACPI_ENABLE_CMD, 1);
    put_le(b, off + FADT_ACPI_DISABLE, PC_ACPI_DISABLE_CMD, 1);
    put_le(b, off + FADT_PM1A_EVT_BLK, pm1_evt, 4);
    put_le(b, off + FADT_PM1A_CNT_BLK, pm1_cnt, 4);
    put_le(b, off + FADT_PM_TMR_BLK, pm_tmr, 4);
    put_le(b, off + FADT_GPE0_BLK, gpe0, 4);
    put_le(b, off + FADT_PM1_EVT_LEN, PM1_EVT_LEN, 1);
    put_le(b, off + FADT_PM1_CNT_LEN, PM1_CNT_LEN, 1);
    put_le(b, off + FADT_PM_TMR_LEN, PM_TMR_LEN, 1);
    put_le(b, off + FADT_GPE0_BLK_LEN, PC_ACPI_GPE0_LEN, 1);
    put_le(b, off + FADT_P_LVL2_LAT, 101, 2);  /* over 100: no C2 */
    put_le(b, off + FADT_P_LVL3_LAT, 1001, 2); /* over 1000: no C3 */
    put_le(b, off + FADT_CENTURY, RTC_CENTURY, 1);
    put_le(b, off + FADT_BOOT_ARCH, BOOT_ARCH_LEGACY | BOOT_ARCH_8042, 2);
    put_le(b, off + FADT_FLAGS, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP, 4);
    gas_put(b, off + FADT_RESET_REG, GAS_SYSTEM_IO, 8, GAS_ACCESS_BYTE, PC_RESET_PORT);
    put_le(b, off + FADT_RESET_VALUE, PC_RESET_VALUE, 1);
    put_le(b, off + FADT_MINOR_VERSION, 0, 1);
    gas_put(b, off + FADT_X_PM1A_EVT, GAS_SYSTEM_IO, PM1_EVT_LEN * 8, GAS_ACCESS_WORD, pm1_evt);
    gas_put(b, off + FADT_X_PM1A_CNT, GAS_SYSTEM_IO, PM1_CNT_LEN * 8, GAS_ACCESS_WORD, pm1_cnt);
    gas_put(b, off + FADT_X_PM_TMR, GAS_SYSTEM_IO, PM_TMR_LEN * 8, GAS_ACCESS_DWORD, pm_tmr);
    gas_put(b, off + FADT_X_GPE0, GAS_SYSTEM_IO, PC_ACPI_GPE0_LEN * 8, GAS_ACCESS_BYTE, gpe0);
    table_end(bld, off);
    return off;
}

/*
 * MADT: one enabled local APIC per vCPU (APIC ID = UID = index, as the APIC model
 * numbers them), the I/O APIC with the ID its model resets to (0), the ISA
 * overrides the board wires (IRQ 0 on pin 2; the SCI and the PCI link IRQs 5, 10,
 * 11 level-triggered and active high, as the router drives them) and LINT1 as NMI.
 */
static size_t build_madt(struct acpi_build *bld)
{
    struct acpi_buf *b = &bld->tables;
    size_t off = table_begin(bld, "APIC", 3, ACPI_HEADER_BYTES + 8);
    put_le(b, off + 36, APIC_DEFAULT_BASE, 4);
    put_le(b, off + 40, MADT_PCAT_COMPAT, 4);
    for (unsigned i = 0; i < bld->cfg->vcpus; i++) {
        uint8_t e[8] = { MADT_LOCAL_APIC, 8, (uint8_t)i, (uint8_t)i, MADT_ENABLED, 0, 0, 0 };
        append(b, e, sizeof(e));
    }
    uint8_t io[12] = { MADT_IO_APIC, 12, 0, 0 };
    for (unsigned i = 0; i < 4; i++)
        io[4 + i] = (uint8_t)(IOAPIC_DEFAULT_BASE >> (8 * i));
    append(b, io, sizeof(io)); /* GSI base 0 */
    static const struct {
        uint8_t irq, gsi;
        uint16_t flags;
    } overrides[] = {
        { 0, 2, MPS_POLARITY_HIGH | MPS_TRIGGER_EDGE },
        { 5, 5, MPS_POLARITY_HIGH | MPS_TRIGGER_LEVEL },
        { PC_ACPI_SCI_IRQ, PC_ACPI_SCI_IRQ, MPS_POLARITY_HIGH | MPS_TRIGGER_LEVEL },
        { 10, 10, MPS_POLARITY_HIGH | MPS_TRIGGER_LEVEL },
        { 11, 11, MPS_POLARITY_HIGH | MPS_TRIGGER_LEVEL },
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(overrides); i++) {
        uint8_t e[10] = { MADT_IRQ_OVERRIDE, 10, 0 /* ISA */, overrides[i].irq, overrides[i].gsi, 0, 0, 0,
                          (uint8_t)overrides[i].flags, (uint8_t)(overrides[i].flags >> 8) };
        append(b, e, sizeof(e));
    }
    uint8_t nmi[6] = { MADT_LOCAL_APIC_NMI, 6, MADT_ALL_PROCESSORS, 0, 0, 1 /* LINT1 */ };
    append(b, nmi, sizeof(nmi));
    table_end(bld, off);
    return off;
}

/* HPET description table (IA-PC HPET spec 1.0a, 3.2.4). */
static size_t build_hpet(struct acpi_build *bld)
{
    struct acpi_buf *b = &bld->tables;
    size_t off = table_begin(bld, "HPET", 1, ACPI_HEADER_BYTES + 20);
    put_le(b, off + 36, ACPI_HPET_BLOCK_ID, 4);
    gas_put(b, off + 40, GAS_SYSTEM_MEMORY, 64, 0, PC_HPET_BASE);
    put_le(b, off + 52, 0, 1);    /* HPET number */
    put_le(b, off + 53, 0x80, 2); /* main counter minimum clock tick in periodic mode */
    put_le(b, off + 55, 1, 1);    /* page protection: the 4 KiB page holds nothing else */
    table_end(bld, off);
    return off;
}

/*
 * TPM2 table revision 4 (TCG ACPI spec 1.3, 8.3): a client TPM on the TIS interface,
 * with the optional log area fields: LAML is the size of the event log blob and LASA
 * its address, which the loader adds to the offset 0 the field holds.
 */
static size_t build_tpm2(struct acpi_build *bld)
{
    struct acpi_buf *b = &bld->tables;
    size_t off = table_begin(bld, "TPM2", 4, TPM2_TABLE_BYTES);
    put_le(b, off + 36, 0, 2); /* platform class: client */
    put_le(b, off + 40, 0, 8); /* no CRB control area */
    put_le(b, off + 48, TPM2_START_METHOD_TIS, 4);
    /* 52..63: start-method-specific parameters, none for the TIS. */
    put_le(b, off + TPM2_LAML, ACPI_TPM_LOG_BYTES, 4);
    put_le(b, off + TPM2_LASA, 0, 8);
    loader_add_pointer(&bld->script, ACPI_FILE_TABLES, ACPI_FILE_TPM_LOG, off + TPM2_LASA, 8);
    table_end(bld, off);
    return off;
}

/* RSDT (32-bit entries) or XSDT (64-bit entries) listing the tables the OS looks up by signature. */
static size_t build_sdt(struct acpi_build *bld, bool xsdt, const size_t *entries, unsigned count)
{
    unsigned width = xsdt ? 8 : 4;
    size_t off = table_begin(bld, xsdt ? "XSDT" : "RSDT", 1, ACPI_HEADER_BYTES + count * width);
    for (unsigned i = 0; i < count; i++)
        table_pointer(bld, off + ACPI_HEADER_BYTES + i * width, width, entries[i]);
    table_end(bld, off);
    return off;
}

/* RSDP revision 2 (ACPI 6.4 5.2.5.3): both checksums, the first over the ACPI 1.0 part. */
static void build_rsdp(struct acpi_build *bld, size_t rsdt, size_t xsdt)
{
    struct acpi_buf *b = &bld->rsdp;
    size_t off = buf_grow(b, ACPI_RSDP_BYTES);
    put_bytes(b, off, "RSD PTR ", 8);
    put_bytes(b, off + 9, ACPI_OEM_ID, 6);
    put_le(b, off + 15, 2, 1);
    put_le(b, off + 16, rsdt, 4);
    put_le(b, off + 20, ACPI_RSDP_BYTES, 4);
    put_le(b, off + 24, xsdt, 8);
    loader_add_pointer(&bld->script, ACPI_FILE_RSDP, ACPI_FILE_TABLES, off + 16, 4);
    loader_add_pointer(&bld->script, ACPI_FILE_RSDP, ACPI_FILE_TABLES, off + 24, 8);
    loader_add_checksum(&bld->script, ACPI_FILE_RSDP, off + 8, off, 20);
    loader_add_checksum(&bld->script, ACPI_FILE_RSDP, off + 32, off, ACPI_RSDP_BYTES);
}

int acpi_tables_build(const struct acpi_config *cfg, struct acpi_tables *out)
{
    memset(out, 0, sizeof(*out));
    if (!cfg || cfg->vcpus == 0 || cfg->vcpus > ACPI_MAX_CPUS || cfg->phys_bits < 33 || cfg->phys_bits > 52 ||
        cfg->lowmem_bytes > 0xfec00000ULL) {
        LOG_ERR("ACPI tables: unsupported configuration (%u vCPUs, %u address bits)", cfg ? cfg->vcpus : 0,
                cfg ? cfg->phys_bits : 0);
        return VERR_INVALID_PARAMETER;
    }
    if (g_acpi_dsdt_aml_len < ACPI_HEADER_BYTES || memcmp(g_acpi_dsdt_aml, "DSDT", 4) != 0) {
        LOG_ERR("the DSDT compiled into Vireo is not a DSDT");
        return VERR_BAD_FORMAT;
    }
    struct acpi_build bld = { .cfg = cfg };
    int rc = 0;
    loader_allocate(&bld.script, ACPI_FILE_TABLES, ACPI_TABLES_ALIGN, ACPI_LOADER_ZONE_HIGH);
    loader_allocate(&bld.script, ACPI_FILE_RSDP, ACPI_RSDP_ALIGN, ACPI_LOADER_ZONE_FSEG);
    if (cfg->tpm)
        loader_allocate(&bld.script, ACPI_FILE_TPM_LOG, TPM_LOG_ALIGN, ACPI_LOADER_ZONE_HIGH);
    size_t facs = build_facs(&bld);
    size_t dsdt = build_dsdt(&bld, &rc);
    size_t listed[8];
    unsigned count = 0;
    listed[count++] = build_fadt(&bld, facs, dsdt);
    listed[count++] = build_ssdt(&bld);
    if (cfg->apic)
        listed[count++] = build_madt(&bld);
    if (cfg->hpet)
        listed[count++] = build_hpet(&bld);
    if (cfg->tpm)
        listed[count++] = build_tpm2(&bld);
    size_t rsdt = build_sdt(&bld, false, listed, count);
    size_t xsdt = build_sdt(&bld, true, listed, count);
    build_rsdp(&bld, rsdt, xsdt);
    /* The event log starts empty: the firmware writes it (SeaBIOS clears it again first). */
    uint8_t *log = cfg->tpm ? calloc(1, ACPI_TPM_LOG_BYTES) : NULL;
    if (!rc && (bld.tables.failed || bld.rsdp.failed || bld.script.failed || (cfg->tpm && !log)))
        rc = VERR_NO_MEMORY;
    if (rc) {
        free(bld.tables.data);
        free(bld.rsdp.data);
        free(bld.script.data);
        free(log);
        return rc;
    }
    out->tables = bld.tables.data;
    out->tables_len = bld.tables.len;
    out->rsdp = bld.rsdp.data;
    out->rsdp_len = bld.rsdp.len;
    out->loader = bld.script.data;
    out->loader_len = bld.script.len;
    out->tpm_log = log;
    out->tpm_log_len = log ? ACPI_TPM_LOG_BYTES : 0;
    return 0;
}

void acpi_tables_free(struct acpi_tables *t)
{
    if (!t)
        return;
    free(t->tables);
    free(t->rsdp);
    free(t->loader);
    free(t->tpm_log);
    memset(t, 0, sizeof(*t));
}
