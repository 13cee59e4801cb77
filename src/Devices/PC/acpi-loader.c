/* acpi-loader.c - runs the ACPI linker/loader script as firmware does (direct kernel boot, table dumps, tests) and hands the files to fw_cfg. */

/*
 * Design: the script that acpi.c writes for SeaBIOS and OVMF is also the one
 * description of how the tables link together here.  acpi_tables_link executes
 * it strictly: every file named must be one of the blobs (the tables, the RSDP
 * and, with a TPM, the event log area) and allocated
 * exactly once before use, every pointer field and checksum range must lie
 * inside its blob, and a pointer's final value must fit its width.  A direct
 * kernel boot (no firmware) places the result in guest RAM; vireo-vm
 * --dump-acpi walks it from the RSDP as an OS would and writes each table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vireo/rt.h"
#include "acpi-internal.h"

#define LOG_COMPONENT "acpi"

#define LINK_FILES 3 /* tables, rsdp, TPM log */
/* Where a dump places the blobs: like SeaBIOS, high memory for the tables and the log, the F segment for the RSDP. */
#define DUMP_TABLES_GPA  0x07fe0000ULL
#define DUMP_RSDP_GPA    0x000f5a00ULL
#define DUMP_TPM_LOG_GPA 0x07fc0000ULL
#define DUMP_MAX_TABLES 16u

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void set_le(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

struct link_file {
    const char *name;
    uint8_t *data;
    size_t len;
    uint64_t gpa;
    bool allocated;
};

/* The file a 56-byte name field names: it must be NUL-terminated within the field and exist (a log only with a TPM). */
static struct link_file *link_lookup(struct link_file *files, const uint8_t *field)
{
    if (!memchr(field, 0, ACPI_LOADER_FNAME_BYTES))
        return NULL;
    for (unsigned i = 0; i < LINK_FILES; i++)
        if (files[i].len && !strcmp((const char *)field, files[i].name))
            return &files[i];
    return NULL;
}

static int link_fail(size_t entry, const char *what)
{
    LOG_ERR("ACPI loader script entry %zu: %s", entry, what);
    return VERR_BAD_FORMAT;
}

int acpi_tables_link(const struct acpi_tables *t, uint64_t tables_gpa, uint64_t rsdp_gpa, uint64_t tpm_log_gpa,
                     uint8_t *tables_out, uint8_t *rsdp_out)
{
    if (!t || !t->tables || !t->rsdp || !t->loader || t->loader_len % ACPI_LOADER_ENTRY_BYTES ||
        !t->tables_len || !t->rsdp_len || !t->tpm_log != !t->tpm_log_len)
        return VERR_BAD_FORMAT;
    /* The log is a pointer target only: no command writes into it, so it has no output copy. */
    struct link_file files[LINK_FILES] = {
        { ACPI_FILE_TABLES, tables_out, t->tables_len, tables_gpa, false },
        { ACPI_FILE_RSDP, rsdp_out, t->rsdp_len, rsdp_gpa, false },
        { ACPI_FILE_TPM_LOG, NULL, t->tpm_log_len, tpm_log_gpa, false },
    };
    memcpy(tables_out, t->tables, t->tables_len);
    memcpy(rsdp_out, t->rsdp, t->rsdp_len);
    size_t count = t->loader_len / ACPI_LOADER_ENTRY_BYTES;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = t->loader + i * ACPI_LOADER_ENTRY_BYTES;
        const uint8_t *args = e + 4;
        uint32_t cmd = (uint32_t)get_le(e, 4);
        if (cmd == ACPI_LOADER_ALLOCATE) {
            struct link_file *f = link_lookup(files, args);
            uint64_t align = get_le(args + ACPI_LOADER_FNAME_BYTES, 4);
            uint8_t zone = args[ACPI_LOADER_FNAME_BYTES + 4];
            if (!f || f->allocated)
                return link_fail(i, "ALLOCATE of an unknown or already allocated file");
            if (align == 0 || (align & (align - 1)) || f->gpa % align)
                return link_fail(i, "ALLOCATE alignment is not a power of two the placement meets");
            if (zone != ACPI_LOADER_ZONE_HIGH && zone != ACPI_LOADER_ZONE_FSEG)
                return link_fail(i, "ALLOCATE zone is neither HIGH nor FSEG");
            if (zone == ACPI_LOADER_ZONE_FSEG && f->gpa + f->len > 0x100000)
                return link_fail(i, "an FSEG file placed above 1 MiB, where no OS searches for it");
            f->allocated = true;
        } else if (cmd == ACPI_LOADER_ADD_POINTER) {
            struct link_file *dst = link_lookup(files, args);
            struct link_file *src = link_lookup(files, args + ACPI_LOADER_FNAME_BYTES);
            uint64_t off = get_le(args + 2 * ACPI_LOADER_FNAME_BYTES, 4);
            unsigned size = args[2 * ACPI_LOADER_FNAME_BYTES + 4];
            if (!dst || !src || !dst->allocated || !src->allocated)
                return link_fail(i, "ADD_POINTER names a file that is not allocated");
            if (!dst->data)
                return link_fail(i, "ADD_POINTER writes into the TPM log area, which holds no tables");
            if (size != 1 && size != 2 && size != 4 && size != 8)
                return link_fail(i, "ADD_POINTER width is not 1, 2, 4 or 8");
            if (off > dst->len || size > dst->len - off)
                return link_fail(i, "ADD_POINTER field lies outside its file");
            uint64_t target = get_le(dst->data + off, size);
            if (target >= src->len)
                return link_fail(i, "ADD_POINTER points past the end of its target file");
            uint64_t value = target + src->gpa;
            if (size < 8 && (value >> (8 * size)))
                return link_fail(i, "ADD_POINTER result does not fit its field");
            set_le(dst->data + off, value, size);
        } else if (cmd == ACPI_LOADER_ADD_CHECKSUM) {
            struct link_file *f = link_lookup(files, args);
            uint64_t result = get_le(args + ACPI_LOADER_FNAME_BYTES, 4);
            uint64_t start = get_le(args + ACPI_LOADER_FNAME_BYTES + 4, 4);
            uint64_t len = get_le(args + ACPI_LOADER_FNAME_BYTES + 8, 4);
            if (!f || !f->allocated)
                return link_fail(i, "ADD_CHECKSUM names a file that is not allocated");
            if (!f->data)
                return link_fail(i, "ADD_CHECKSUM of the TPM log area, which holds no tables");
            if (start > f->len || len > f->len - start || result < start || result >= start + len)
                return link_fail(i, "ADD_CHECKSUM range or result byte lies outside its file");
            f->data[result] = 0;
            f->data[result] = (uint8_t)-acpi_checksum(f->data + start, len);
        } else {
            return link_fail(i, "unknown command");
        }
    }
    for (unsigned i = 0; i < LINK_FILES; i++)
        if (files[i].len && !files[i].allocated)
            return link_fail(count, "a file is never allocated");
    return 0;
}

int acpi_tables_add_fwcfg(struct pdm_dev *fwcfg, const struct acpi_tables *t)
{
    int rc = fwcfg_add_file(fwcfg, ACPI_FILE_TABLES, t->tables, t->tables_len);
    if (!rc)
        rc = fwcfg_add_file(fwcfg, ACPI_FILE_RSDP, t->rsdp, t->rsdp_len);
    if (!rc)
        rc = fwcfg_add_file(fwcfg, ACPI_FILE_LOADER, t->loader, t->loader_len);
    if (!rc && t->tpm_log_len)
        rc = fwcfg_add_file(fwcfg, ACPI_FILE_TPM_LOG, t->tpm_log, t->tpm_log_len);
    return rc;
}

/* ---- Dumps ----------------------------------------------------------------------------- */

struct dump {
    const uint8_t *tables;
    size_t tables_len;
    const char *dir;
    char written[DUMP_MAX_TABLES][8];
    unsigned count;
};

/* The table at guest address gpa, checked to lie whole inside the blob; NULL otherwise. */
static const uint8_t *dump_table_at(const struct dump *d, uint64_t gpa, size_t *len)
{
    if (gpa < DUMP_TABLES_GPA || gpa - DUMP_TABLES_GPA + 8 > d->tables_len)
        return NULL;
    const uint8_t *p = d->tables + (gpa - DUMP_TABLES_GPA);
    uint64_t l = get_le(p + 4, 4);
    if (l < 8 || l > d->tables_len - (gpa - DUMP_TABLES_GPA))
        return NULL;
    *len = (size_t)l;
    return p;
}

static int dump_write(struct dump *d, const char *sig, const uint8_t *data, size_t len)
{
    char name[8];
    snprintf(name, sizeof(name), "%.4s", sig);
    for (unsigned i = 0; i < d->count; i++)
        if (!strcmp(d->written[i], name))
            return 0; /* reached twice (the RSDT and the XSDT list the same tables) */
    if (d->count == DUMP_MAX_TABLES)
        return VERR_TOO_LARGE;
    snprintf(d->written[d->count++], sizeof(d->written[0]), "%s", name);
    char file[16];
    snprintf(file, sizeof(file), "%s.dat", name);
    char *path = rt_path_join(d->dir, file);
    if (!path)
        return VERR_NO_MEMORY;
    int rc = rt_file_write_atomic(path, data, len, 0644);
    if (rc)
        LOG_ERR("cannot write '%s': %s", path, rt_err_str(rc));
    free(path);
    return rc;
}

static int dump_pointed(struct dump *d, uint64_t gpa, const char *what)
{
    size_t len;
    const uint8_t *p = dump_table_at(d, gpa, &len);
    if (!p) {
        LOG_ERR("ACPI dump: the %s points outside the tables (0x%llx)", what, (unsigned long long)gpa);
        return VERR_BAD_FORMAT;
    }
    return dump_write(d, (const char *)p, p, len);
}

int acpi_tables_dump(const struct acpi_tables *t, const char *dir)
{
    uint8_t *tables = malloc(t->tables_len), *rsdp = malloc(t->rsdp_len);
    int rc = tables && rsdp ? 0 : VERR_NO_MEMORY;
    if (!rc)
        rc = acpi_tables_link(t, DUMP_TABLES_GPA, DUMP_RSDP_GPA, DUMP_TPM_LOG_GPA, tables, rsdp);
    if (!rc && (rc = rt_dir_create_all(dir, 0755)))
        LOG_ERR("cannot create the folder '%s': %s", dir, rt_err_str(rc));
    struct dump d = { .tables = tables, .tables_len = t->tables_len, .dir = dir };
    if (!rc && t->rsdp_len < ACPI_RSDP_BYTES)
        rc = VERR_BAD_FORMAT;
    if (!rc)
        rc = dump_write(&d, "RSDP", rsdp, ACPI_RSDP_BYTES);
    /* As an OS does: the RSDP's XSDT and RSDT, the tables they list, and the FADT's DSDT and FACS. */
    uint64_t roots[2] = { get_le(rsdp + 24, 8), get_le(rsdp + 16, 4) };
    for (unsigned r = 0; !rc && r < 2; r++) {
        size_t len;
        const uint8_t *sdt = dump_table_at(&d, roots[r], &len);
        if (!sdt || len < ACPI_HEADER_BYTES) {
            LOG_ERR("ACPI dump: the RSDP's %s address is outside the tables", r ? "RSDT" : "XSDT");
            rc = VERR_BAD_FORMAT;
            break;
        }
        rc = dump_write(&d, (const char *)sdt, sdt, len);
        unsigned width = r ? 4 : 8;
        for (size_t off = ACPI_HEADER_BYTES; !rc && off + width <= len; off += width) {
            uint64_t gpa = get_le(sdt + off, width);
            size_t tlen;
            const uint8_t *tbl = dump_table_at(&d, gpa, &tlen);
            rc = dump_pointed(&d, gpa, "RSDT/XSDT");
            if (!rc && tbl && !memcmp(tbl, "FACP", 4) && tlen >= 148) {
                rc = dump_pointed(&d, get_le(tbl + 40, 4), "FADT's DSDT");
                if (!rc)
                    rc = dump_pointed(&d, get_le(tbl + 36, 4), "FADT's FACS");
            }
        }
    }
    free(tables);
    free(rsdp);
    return rc;
}
