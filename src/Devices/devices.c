/* devices.c - the registry table of every device model Vireo ships, and lookup by name. */
#include <string.h>

#include "vireo/devices.h"

const struct pdm_dev_desc *const g_pdm_devices[] = {
    &g_dev_i8259, &g_dev_i8254, &g_dev_mc146818, &g_dev_uart16550,
    &g_dev_i440fx, &g_dev_fwcfg, &g_dev_debugport, &g_dev_testexit,
    &g_dev_apic, &g_dev_ioapic,
    &g_dev_piix3_ide,
    &g_dev_virtio_blk,
    &g_dev_ahci,
    &g_dev_i8042,
    &g_dev_vga,
    &g_dev_hpet,
    &g_dev_tpm_tis,
    &g_dev_pflash,
    &g_dev_piix4_pm,
    NULL,
};

const struct pdm_dev_desc *devices_find(const char *name)
{
    for (const struct pdm_dev_desc *const *d = g_pdm_devices; *d; d++)
        if (strcmp((*d)->name, name) == 0)
            return *d;
    return NULL;
}
