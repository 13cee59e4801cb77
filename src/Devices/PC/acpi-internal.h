/* acpi-internal.h - the ACPI table builder and its linker/loader script, shared by the board, vireo-vm's dump and tstAcpi. */
#ifndef VIREO_ACPI_INTERNAL_H
#define VIREO_ACPI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/devices.h"

/* The fw_cfg files SeaBIOS (romfile_loader) and OVMF (QemuFwCfgAcpiPlatformDxe) read. */
#define ACPI_FILE_TABLES "etc/acpi/tables"
#define ACPI_FILE_RSDP   "etc/acpi/rsdp"
#define ACPI_FILE_LOADER "etc/table-loader"
/* With a TPM: the zero-filled event log area the TPM2 table's LASA points at (SeaBIOS writes its log there). */
#define ACPI_FILE_TPM_LOG "etc/tpm/log"
/* Its size, the TPM2 table's LAML: 64 KiB, the TCG PC Client minimum for a TPM 2.0 log. */
#define ACPI_TPM_LOG_BYTES (64u << 10)

/* Linker/loader script: 128-byte little-endian entries, a command and its arguments. */
#define ACPI_LOADER_ENTRY_BYTES 128u
#define ACPI_LOADER_FNAME_BYTES 56u
enum {
    ACPI_LOADER_ALLOCATE = 1,    /* file[56], align u32, zone u8 */
    ACPI_LOADER_ADD_POINTER = 2, /* dest file[56], src file[56], offset u32, size u8 */
    ACPI_LOADER_ADD_CHECKSUM = 3 /* file[56], result offset u32, start u32, length u32 */
};
enum { ACPI_LOADER_ZONE_HIGH = 1, ACPI_LOADER_ZONE_FSEG = 2 };

#define ACPI_HEADER_BYTES 36u
#define ACPI_RSDP_BYTES   36u
#define ACPI_FACS_BYTES   64u
#define ACPI_FADT_BYTES   276u /* revision 6 */
#define ACPI_MAX_CPUS     32u
/* The HPET's capabilities as ACPI's event timer block ID shows them: vendor 8086, legacy replacement, 64-bit, 3 timers, rev 1. */
#define ACPI_HPET_BLOCK_ID 0x8086a201u

/* What the tables describe; the board fills it from pc_params and its memory layout. */
struct acpi_config {
    unsigned vcpus;                    /* 1-ACPI_MAX_CPUS; APIC ID = ACPI processor UID = vCPU index */
    bool apic;                         /* local APICs and an I/O APIC: a MADT */
    bool hpet;                         /* an HPET at PC_HPET_BASE: an HPET table and the PNP0103 device */
    bool tpm;                          /* a TPM 2.0 TIS at PC_TPM_TIS_BASE: a TPM2 table and the MSFT0101 device */
    bool com[PC_SERIAL_PORTS];         /* which COM ports exist */
    uint64_t lowmem_bytes;             /* RAM below the PCI hole: the 32-bit PCI window starts there */
    uint64_t highmem_bytes;            /* RAM at 4 GiB: the 64-bit window starts above it */
    unsigned phys_bits;                /* guest physical address width: the 64-bit window ends there */
    uint16_t pm_base;                  /* where the PIIX4 PM block decodes (0: PC_ACPI_PM_BASE) */
};

/* The fw_cfg files' contents. */
struct acpi_tables {
    uint8_t *tables;  /* FACS, DSDT, SSDT, FACP, APIC, HPET, TPM2, RSDT, XSDT */
    size_t tables_len;
    uint8_t *rsdp;
    size_t rsdp_len;
    uint8_t *loader;  /* the script that places and links them */
    size_t loader_len;
    uint8_t *tpm_log; /* with a TPM: the event log area, ACPI_TPM_LOG_BYTES of zeros; NULL and 0 without */
    size_t tpm_log_len;
};

/* The DSDT compiled from acpi-dsdt.asl by iasl at build time (acpi-dsdt-gen.c in the object folder). */
extern const unsigned char g_acpi_dsdt_aml[];
extern const size_t g_acpi_dsdt_aml_len;

/* Builds the tables and the script for cfg; *out is owned by the caller (acpi_tables_free). */
int acpi_tables_build(const struct acpi_config *cfg, struct acpi_tables *out);
void acpi_tables_free(struct acpi_tables *t);
/* Adds the fw_cfg files (three, or four with a TPM's log area). */
int acpi_tables_add_fwcfg(struct pdm_dev *fwcfg, const struct acpi_tables *t);

/*
 * Runs the script as firmware does with the tables placed at tables_gpa, the RSDP at
 * rsdp_gpa and the TPM event log area (if t has one) at tpm_log_gpa: fills tables_out
 * (tables_len bytes) and rsdp_out (rsdp_len bytes) with the patched copies (the log
 * area is only pointed at; its zeros are the caller's to place).  Any malformed
 * command, file name, range or alignment fails with VERR_BAD_FORMAT and leaves
 * nothing half-done to use.
 */
int acpi_tables_link(const struct acpi_tables *t, uint64_t tables_gpa, uint64_t rsdp_gpa, uint64_t tpm_log_gpa,
                     uint8_t *tables_out, uint8_t *rsdp_out);
/*
 * Writes each table as the firmware hands it to the OS into dir (created if needed),
 * as <signature>.dat (RSDP, XSDT, RSDT, FACP, FACS, DSDT, SSDT, APIC, HPET, TPM2).
 */
int acpi_tables_dump(const struct acpi_tables *t, const char *dir);

/* Byte sum of len bytes (a table is valid when the sum over its length is 0). */
uint8_t acpi_checksum(const uint8_t *data, size_t len);

#endif
