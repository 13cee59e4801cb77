/* tstAcpi.c - ACPI tables: checksums and lengths, the loader script, MADT per vCPU count, DSDT sentinels and wiring, optional tables, the TPM log area, hostile scripts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../PC/acpi-internal.h"

#define TABLES_GPA 0x0ffe0000ULL
#define RSDP_GPA   0x000f0000ULL
#define LOG_GPA    0x0ffc0000ULL
#define MAX_TABLES 16

/* A built and linked set of tables, as the OS finds them. */
struct linked {
    struct acpi_tables t;
    uint8_t *tables, *rsdp;
    const uint8_t *found[MAX_TABLES]; /* every table reached from the RSDP, XSDT and FADT */
    unsigned count;
};

static uint64_t le(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static const uint8_t *at_gpa(const struct linked *l, uint64_t gpa)
{
    assert_true(gpa >= TABLES_GPA && gpa < TABLES_GPA + l->t.tables_len);
    const uint8_t *p = l->tables + (gpa - TABLES_GPA);
    assert_true(le(p + 4, 4) <= l->t.tables_len - (gpa - TABLES_GPA));
    return p;
}

static void add_found(struct linked *l, const uint8_t *p)
{
    for (unsigned i = 0; i < l->count; i++)
        if (l->found[i] == p)
            return;
    assert_true(l->count < MAX_TABLES);
    l->found[l->count++] = p;
}

static const uint8_t *find(const struct linked *l, const char *sig)
{
    for (unsigned i = 0; i < l->count; i++)
        if (!memcmp(l->found[i], sig, 4))
            return l->found[i];
    return NULL;
}

static struct acpi_config config(unsigned vcpus)
{
    struct acpi_config c = {
        .vcpus = vcpus, .apic = true, .com = { true, false, false, false },
        .lowmem_bytes = 256u << 20, .highmem_bytes = 0, .phys_bits = 40,
    };
    return c;
}

/* Builds, links and walks the tables; checks every checksum and length on the way. */
static void build_linked(const struct acpi_config *cfg, struct linked *l)
{
    memset(l, 0, sizeof(*l));
    assert_int_equal(acpi_tables_build(cfg, &l->t), 0);
    l->tables = malloc(l->t.tables_len);
    l->rsdp = malloc(l->t.rsdp_len);
    assert_non_null(l->tables);
    assert_non_null(l->rsdp);
    assert_int_equal(acpi_tables_link(&l->t, TABLES_GPA, RSDP_GPA, LOG_GPA, l->tables, l->rsdp), 0);
    /* RSDP: ACPI 1.0 checksum over 20 bytes, extended checksum over all 36, revision 2. */
    assert_int_equal(l->t.rsdp_len, ACPI_RSDP_BYTES);
    assert_memory_equal(l->rsdp, "RSD PTR ", 8);
    assert_int_equal(acpi_checksum(l->rsdp, 20), 0);
    assert_int_equal(acpi_checksum(l->rsdp, ACPI_RSDP_BYTES), 0);
    assert_int_equal(l->rsdp[15], 2);
    assert_int_equal(le(l->rsdp + 20, 4), ACPI_RSDP_BYTES);
    const uint8_t *rsdt = at_gpa(l, le(l->rsdp + 16, 4));
    const uint8_t *xsdt = at_gpa(l, le(l->rsdp + 24, 8));
    assert_memory_equal(rsdt, "RSDT", 4);
    assert_memory_equal(xsdt, "XSDT", 4);
    unsigned n_r = (unsigned)(le(rsdt + 4, 4) - ACPI_HEADER_BYTES) / 4;
    unsigned n_x = (unsigned)(le(xsdt + 4, 4) - ACPI_HEADER_BYTES) / 8;
    assert_int_equal(n_r, n_x);
    add_found(l, rsdt);
    add_found(l, xsdt);
    for (unsigned i = 0; i < n_x; i++) {
        /* Both lists name the same tables in the same order. */
        assert_int_equal(le(rsdt + ACPI_HEADER_BYTES + 4 * i, 4), le(xsdt + ACPI_HEADER_BYTES + 8 * i, 8));
        add_found(l, at_gpa(l, le(xsdt + ACPI_HEADER_BYTES + 8 * i, 8)));
    }
    const uint8_t *fadt = find(l, "FACP");
    assert_non_null(fadt);
    assert_int_equal(le(fadt + 4, 4), ACPI_FADT_BYTES);
    assert_int_equal(le(fadt + 40, 4), le(fadt + 140, 8)); /* DSDT and X_DSDT agree */
    const uint8_t *facs = at_gpa(l, le(fadt + 36, 4));
    assert_int_equal((TABLES_GPA + (uint64_t)(facs - l->tables)) % 64, 0);
    add_found(l, facs);
    add_found(l, at_gpa(l, le(fadt + 40, 4)));
    for (unsigned i = 0; i < l->count; i++) {
        const uint8_t *p = l->found[i];
        if (!memcmp(p, "FACS", 4)) {
            assert_int_equal(le(p + 4, 4), ACPI_FACS_BYTES);
            continue;
        }
        assert_true(le(p + 4, 4) >= ACPI_HEADER_BYTES);
        assert_int_equal(acpi_checksum(p, le(p + 4, 4)), 0);
        assert_memory_equal(p + 10, "VIREO ", 6);
        assert_memory_equal(p + 16, "VIREOPC ", 8);
        assert_memory_equal(p + 28, "VIRE", 4);
    }
}

static void free_linked(struct linked *l)
{
    acpi_tables_free(&l->t);
    free(l->tables);
    free(l->rsdp);
}

static void test_checksums_and_lengths(void **state)
{
    static const unsigned counts[] = { 1, 2, 4, 32 };
    for (unsigned i = 0; i < 4; i++) {
        for (unsigned opt = 0; opt < 4; opt++) {
            struct acpi_config c = config(counts[i]);
            c.hpet = opt & 1;
            c.tpm = opt & 2;
            struct linked l;
            build_linked(&c, &l);
            /* RSDT, XSDT, FACP, SSDT, APIC, FACS, DSDT, and the optional two. */
            assert_int_equal(l.count, 7 + (c.hpet ? 1 : 0) + (c.tpm ? 1 : 0));
            free_linked(&l);
        }
    }
}

static void test_loader_script(void **state)
{
    struct acpi_config c = config(4);
    c.hpet = c.tpm = true;
    struct acpi_tables t;
    assert_int_equal(acpi_tables_build(&c, &t), 0);
    assert_int_equal(t.loader_len % ACPI_LOADER_ENTRY_BYTES, 0);
    size_t n = t.loader_len / ACPI_LOADER_ENTRY_BYTES;
    unsigned allocs = 0, pointers = 0, log_pointers = 0, sums = 0;
    uint8_t *covered = calloc(t.tables_len, 1);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = t.loader + i * ACPI_LOADER_ENTRY_BYTES;
        const char *file = (const char *)e + 4;
        assert_non_null(memchr(file, 0, ACPI_LOADER_FNAME_BYTES));
        bool is_tables = !strcmp(file, ACPI_FILE_TABLES), is_log = !strcmp(file, ACPI_FILE_TPM_LOG);
        assert_true(is_tables || is_log || !strcmp(file, ACPI_FILE_RSDP));
        size_t len = is_tables ? t.tables_len : t.rsdp_len;
        switch (le(e, 4)) {
        case ACPI_LOADER_ALLOCATE:
            assert_int_equal(i, allocs); /* the allocations come first */
            allocs++;
            assert_int_equal(e[4 + 60], is_tables || is_log ? ACPI_LOADER_ZONE_HIGH : ACPI_LOADER_ZONE_FSEG);
            break;
        case ACPI_LOADER_ADD_POINTER: {
            const char *src = file + ACPI_LOADER_FNAME_BYTES;
            assert_false(is_log); /* the log is only pointed at */
            uint64_t off = le(e + 4 + 112, 4);
            unsigned size = e[4 + 116];
            assert_true(size == 4 || size == 8);
            assert_true(off + size <= len);
            const uint8_t *dst = is_tables ? t.tables : t.rsdp;
            uint64_t target = le(dst + off, size);
            if (!strcmp(src, ACPI_FILE_TPM_LOG)) {
                /* The TPM2 table's LASA (offset 68, 8 bytes) holds offset 0: the start of the log blob. */
                assert_true(is_tables && size == 8 && off >= 68);
                assert_memory_equal(t.tables + off - 68, "TPM2", 4);
                assert_int_equal(target, 0);
                log_pointers++;
                break;
            }
            assert_string_equal(src, ACPI_FILE_TABLES);
            /* The field holds the offset of a table (or the FACS) in the tables blob. */
            assert_true(target + ACPI_HEADER_BYTES <= t.tables_len || !memcmp(t.tables + target, "FACS", 4));
            assert_true(le(t.tables + target + 4, 4) >= 36 && le(t.tables + target + 4, 4) + target <= t.tables_len);
            pointers++;
            break;
        }
        case ACPI_LOADER_ADD_CHECKSUM: {
            assert_false(is_log);
            uint64_t result = le(e + 4 + 56, 4), start = le(e + 4 + 60, 4), length = le(e + 4 + 64, 4);
            assert_true(start + length <= len);
            assert_true(result >= start && result < start + length);
            if (is_tables) {
                /* Each table's checksum covers the whole table, once, at its header's byte 9. */
                assert_int_equal(result, start + 9);
                assert_int_equal(le(t.tables + start + 4, 4), length);
                for (uint64_t b = start; b < start + length; b++) {
                    assert_int_equal(covered[b], 0);
                    covered[b] = 1;
                }
            }
            sums++;
            break;
        }
        default:
            fail_msg("unknown loader command %llu", (unsigned long long)le(e, 4));
        }
    }
    free(covered);
    assert_int_equal(allocs, 3);
    assert_int_equal(log_pointers, 1);
    /* FADT: FACS, DSDT, X_DSDT; RSDT and XSDT: 5 tables each; RSDP: 2. */
    assert_int_equal(pointers, 3 + 5 + 5 + 2);
    /* DSDT, SSDT, FACP, APIC, HPET, TPM2, RSDT, XSDT, and the RSDP's two. */
    assert_int_equal(sums, 8 + 2);
    acpi_tables_free(&t);
}

static void test_madt(void **state)
{
    static const unsigned counts[] = { 1, 2, 4, 32 };
    for (unsigned i = 0; i < 4; i++) {
        struct acpi_config c = config(counts[i]);
        struct linked l;
        build_linked(&c, &l);
        const uint8_t *madt = find(&l, "APIC");
        assert_non_null(madt);
        assert_int_equal(le(madt + 36, 4), APIC_DEFAULT_BASE);
        assert_int_equal(le(madt + 40, 4) & 1, 1); /* PCAT_COMPAT: the 8259s exist */
        size_t len = le(madt + 4, 4);
        unsigned lapics = 0, ioapics = 0, nmis = 0, overrides = 0;
        for (size_t off = 44; off < len;) {
            const uint8_t *e = madt + off;
            assert_true(e[1] >= 2 && off + e[1] <= len);
            switch (e[0]) {
            case 0:
                assert_int_equal(e[2], lapics); /* UID */
                assert_int_equal(e[3], lapics); /* APIC ID */
                assert_int_equal(le(e + 4, 4), 1);
                lapics++;
                break;
            case 1:
                assert_int_equal(e[2], 0); /* the I/O APIC model's ID after reset */
                assert_int_equal(le(e + 4, 4), IOAPIC_DEFAULT_BASE);
                assert_int_equal(le(e + 8, 4), 0);
                ioapics++;
                break;
            case 2:
                if (e[3] == 0) {
                    assert_int_equal(le(e + 4, 4), 2);
                    assert_int_equal(le(e + 8, 2), 0x5); /* edge, active high */
                } else {
                    assert_int_equal(le(e + 4, 4), e[3]);
                    assert_int_equal(le(e + 8, 2), 0xd); /* level, active high */
                    assert_true(e[3] == PC_ACPI_SCI_IRQ || e[3] == 5 || e[3] == 10 || e[3] == 11);
                }
                overrides++;
                break;
            case 4:
                assert_int_equal(e[2], 0xff);
                assert_int_equal(e[5], 1); /* LINT1 */
                nmis++;
                break;
            default:
                fail_msg("unexpected MADT entry type %u", e[0]);
            }
            off += e[1];
        }
        assert_int_equal(lapics, counts[i]);
        assert_int_equal(ioapics, 1);
        assert_int_equal(overrides, 5);
        assert_int_equal(nmis, 1);
        /* The SSDT has one processor device per vCPU with _UID = the MADT's UID. */
        const uint8_t *ssdt = find(&l, "SSDT");
        size_t slen = le(ssdt + 4, 4);
        unsigned devs = 0;
        for (size_t off = ACPI_HEADER_BYTES; off + 2 < slen; off++) {
            if (ssdt[off] != 0x5b || ssdt[off + 1] != 0x82)
                continue;
            const uint8_t *d = ssdt + off + 3;
            char name[5];
            snprintf(name, sizeof(name), "C%03X", devs);
            assert_memory_equal(d, name, 4);
            assert_memory_equal(d + 4, "\x08_HID\x0d" "ACPI0007", 14);
            assert_memory_equal(d + 19, "\x08_UID\x0a", 6);
            assert_int_equal(d[25], devs);
            devs++;
        }
        assert_int_equal(devs, counts[i]);
        free_linked(&l);
    }
    /* Without a guest-visible APIC (KVM today) there is no MADT, and the rest stays. */
    struct acpi_config c = config(2);
    c.apic = false;
    struct linked l;
    build_linked(&c, &l);
    assert_null(find(&l, "APIC"));
    assert_non_null(find(&l, "FACP"));
    assert_non_null(find(&l, "DSDT"));
    assert_int_equal(find(&l, "FACP")[44], 0); /* ACPI 1.0 INT_MODEL: dual PIC */
    free_linked(&l);
}

static void test_fadt(void **state)
{
    struct acpi_config c = config(1);
    struct linked l;
    build_linked(&c, &l);
    const uint8_t *f = find(&l, "FACP");
    assert_int_equal(f[8], 6);
    assert_int_equal(le(f + 46, 2), PC_ACPI_SCI_IRQ);
    assert_int_equal(le(f + 48, 4), PC_APM_CNT_PORT);
    assert_int_equal(f[52], PC_ACPI_ENABLE_CMD);
    assert_int_equal(f[53], PC_ACPI_DISABLE_CMD);
    assert_int_equal(le(f + 56, 4), PC_ACPI_PM1_EVT);
    assert_int_equal(le(f + 64, 4), PC_ACPI_PM1_CNT);
    assert_int_equal(le(f + 76, 4), PC_ACPI_PM_TMR);
    assert_int_equal(le(f + 80, 4), PC_ACPI_GPE0);
    assert_int_equal(f[88], 4);
    assert_int_equal(f[89], 2);
    assert_int_equal(f[91], 4);
    assert_int_equal(f[92], PC_ACPI_GPE0_LEN);
    assert_int_equal(f[108], 0x32);
    assert_int_equal(le(f + 109, 2), 3); /* legacy devices, 8042 */
    uint32_t flags = (uint32_t)le(f + 112, 4);
    assert_int_equal(flags & (1u << 4), 0); /* the power button is the fixed feature */
    assert_int_not_equal(flags & (1u << 5), 0);
    assert_int_not_equal(flags & (1u << 10), 0);
    assert_int_equal(f[116], 1); /* reset register in I/O space */
    assert_int_equal(le(f + 120, 8), PC_RESET_PORT);
    assert_int_equal(f[128], PC_RESET_VALUE);
    /* The GAS forms match the 32-bit blocks. */
    assert_int_equal(le(f + 152, 8), PC_ACPI_PM1_EVT);
    assert_int_equal(le(f + 176, 8), PC_ACPI_PM1_CNT);
    assert_int_equal(le(f + 212, 8), PC_ACPI_PM_TMR);
    assert_int_equal(le(f + 224, 8), PC_ACPI_GPE0);
    free_linked(&l);
}

/* The PM block where the firmware put it (SeaBIOS: 0x600): every FADT register field follows, the size does not change. */
static void test_fadt_pm_base(void **state)
{
    struct acpi_config c = config(2);
    struct acpi_tables base;
    assert_int_equal(acpi_tables_build(&c, &base), 0);
    c.pm_base = 0x600;
    struct linked l;
    build_linked(&c, &l);
    const uint8_t *f = find(&l, "FACP");
    assert_int_equal(le(f + 56, 4), 0x600);
    assert_int_equal(le(f + 64, 4), 0x604);
    assert_int_equal(le(f + 76, 4), 0x608);
    assert_int_equal(le(f + 80, 4), 0x60c);
    assert_int_equal(le(f + 152, 8), 0x600);
    assert_int_equal(le(f + 176, 8), 0x604);
    assert_int_equal(le(f + 212, 8), 0x608);
    assert_int_equal(le(f + 224, 8), 0x60c);
    struct acpi_tables moved;
    assert_int_equal(acpi_tables_build(&c, &moved), 0);
    /* The board swaps only etc/acpi/tables: the loader script and the layout must be the same. */
    assert_int_equal(moved.tables_len, base.tables_len);
    assert_int_equal(moved.loader_len, base.loader_len);
    assert_memory_equal(moved.loader, base.loader, base.loader_len);
    acpi_tables_free(&moved);
    acpi_tables_free(&base);
    free_linked(&l);
}

/* Offset of the one `Name (NAME, <prefix> ...)` in the AML, asserting it is there exactly once. */
static size_t aml_name_once(const uint8_t *aml, size_t len, const char *name, uint8_t prefix)
{
    size_t found = SIZE_MAX;
    for (size_t i = ACPI_HEADER_BYTES; i + 6 <= len; i++) {
        if (aml[i] == 0x08 && !memcmp(aml + i + 1, name, 4) && aml[i + 5] == prefix) {
            assert_int_equal(found, SIZE_MAX);
            found = i;
        }
    }
    assert_int_not_equal(found, SIZE_MAX);
    return found + 6;
}

static void test_dsdt_sentinels(void **state)
{
    static const struct {
        const char *name;
        uint8_t prefix;
        uint64_t sentinel;
    } s[] = {
        { "COMP", 0x0c, 0x56520001 }, { "HPTP", 0x0c, 0x56520002 }, { "TPMP", 0x0c, 0x56520003 },
        { "P32S", 0x0c, 0x56520004 }, { "P64S", 0x0e, 0x5652000000000005ULL }, { "P64E", 0x0e, 0x5652000000000006ULL },
    };
    /* In the compiled DSDT each sentinel is there once, as its name's value. */
    for (unsigned i = 0; i < RT_ARRAY_SIZE(s); i++) {
        size_t v = aml_name_once(g_acpi_dsdt_aml, g_acpi_dsdt_aml_len, s[i].name, s[i].prefix);
        assert_int_equal(le(g_acpi_dsdt_aml + v, s[i].prefix == 0x0e ? 8 : 4), s[i].sentinel);
    }
    struct acpi_config c = config(2);
    c.com[0] = false;
    c.com[1] = c.com[3] = true;
    c.hpet = true;
    c.lowmem_bytes = 0xc0000000ULL;
    c.highmem_bytes = 0x50000000ULL;
    struct linked l;
    build_linked(&c, &l);
    const uint8_t *dsdt = find(&l, "DSDT");
    size_t len = le(dsdt + 4, 4);
    const uint64_t want[] = { 0xa, 1, 0, 0xc0000000ULL, 0x180000000ULL, (1ULL << 40) - 1 };
    for (unsigned i = 0; i < RT_ARRAY_SIZE(s); i++) {
        size_t v = aml_name_once(dsdt, len, s[i].name, s[i].prefix);
        assert_int_equal(le(dsdt + v, s[i].prefix == 0x0e ? 8 : 4), want[i]);
    }
    free_linked(&l);
}

/* The integer at p (ZeroOp, OneOp, Byte/Word/DWord prefix); advances *p. */
static uint64_t aml_int(const uint8_t **p)
{
    uint8_t op = *(*p)++;
    unsigned n = op == 0x0a ? 1 : op == 0x0b ? 2 : op == 0x0c ? 4 : 0;
    if (op == 0x00 || op == 0x01)
        return op;
    assert_int_not_equal(n, 0);
    uint64_t v = le(*p, n);
    *p += n;
    return v;
}

/* The DSDT says what the board wires: _PRT swizzle as pci.c, _S5, HPET/TPM windows, COM ports. */
static void test_dsdt_wiring(void **state)
{
    const uint8_t *a = g_acpi_dsdt_aml;
    size_t len = g_acpi_dsdt_aml_len;
    unsigned entries = 0;
    for (size_t i = ACPI_HEADER_BYTES; i + 12 < len; i++) {
        /* Package (4) { address, pin, LNKx, 0 } */
        if (a[i] != 0x12 || a[i + 2] != 4)
            continue;
        const uint8_t *p = a + i + 3;
        uint64_t addr = aml_int(&p), pin = aml_int(&p);
        if (memcmp(p, "LNK", 3) != 0)
            continue;
        unsigned slot = (unsigned)(addr >> 16);
        assert_int_equal(addr & 0xffff, 0xffff);
        assert_true(slot < 32 && pin < 4);
        /* pci.c: (slot - 1 + pin) mod 4 with pin 0 = INTA */
        assert_int_equal(p[3], 'A' + (slot + pin + 3) % 4);
        p += 4;
        assert_int_equal(aml_int(&p), 0);
        entries++;
    }
    assert_int_equal(entries, 32 * 4);
    /* _S5: Package (4) { SLP_TYP a, SLP_TYP b, ... } */
    size_t s5 = SIZE_MAX;
    for (size_t i = ACPI_HEADER_BYTES; i + 10 < len; i++)
        if (a[i] == 0x08 && !memcmp(a + i + 1, "_S5_", 4))
            s5 = i + 5;
    assert_int_not_equal(s5, SIZE_MAX);
    const uint8_t *p = a + s5;
    assert_int_equal(p[0], 0x12);
    p += 3;
    assert_int_equal(aml_int(&p), PC_ACPI_SLP_TYP_S5);
    assert_int_equal(aml_int(&p), PC_ACPI_SLP_TYP_S5);
    /* Memory32Fixed descriptors (0x86, length 9) of the HPET and the TPM. */
    unsigned hpet = 0, tpm = 0;
    for (size_t i = ACPI_HEADER_BYTES; i + 12 < len; i++) {
        if (a[i] != 0x86 || a[i + 1] != 9 || a[i + 2] != 0)
            continue;
        uint64_t base = le(a + i + 4, 4), size = le(a + i + 8, 4);
        hpet += base == PC_HPET_BASE && size == PC_HPET_LEN;
        tpm += base == PC_TPM_TIS_BASE && size == PC_TPM_TIS_LEN;
    }
    assert_int_equal(hpet, 1);
    assert_int_equal(tpm, 1);
    /* IO descriptors (0x47) of the four COM ports. */
    static const uint16_t com[4] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
    for (unsigned c = 0; c < 4; c++) {
        unsigned n = 0;
        for (size_t i = ACPI_HEADER_BYTES; i + 8 < len; i++)
            n += a[i] == 0x47 && le(a + i + 2, 2) == com[c] && le(a + i + 4, 2) == com[c] && a[i + 7] == 8;
        assert_int_equal(n, 1);
    }
}

static void test_optional_tables(void **state)
{
    for (unsigned opt = 0; opt < 4; opt++) {
        struct acpi_config c = config(1);
        c.hpet = opt & 1;
        c.tpm = opt & 2;
        struct linked l;
        build_linked(&c, &l);
        const uint8_t *h = find(&l, "HPET"), *t = find(&l, "TPM2");
        assert_true(!h == !c.hpet);
        assert_true(!t == !c.tpm);
        if (h) {
            assert_int_equal(le(h + 4, 4), 56);
            assert_int_equal(le(h + 36, 4), ACPI_HPET_BLOCK_ID);
            assert_int_equal(h[40], 0); /* system memory */
            assert_int_equal(le(h + 44, 8), PC_HPET_BASE);
        }
        if (t) {
            assert_int_equal(le(t + 4, 4), 76);
            assert_int_equal(t[8], 4); /* revision 4: the log area fields exist */
            assert_int_equal(le(t + 40, 8), 0);
            assert_int_equal(le(t + 48, 4), 6); /* TIS */
            assert_int_equal(le(t + 64, 4), ACPI_TPM_LOG_BYTES);
            assert_int_equal(le(t + 68, 8), LOG_GPA);
        }
        /* The log blob exists exactly when there is a TPM. */
        assert_true(!l.t.tpm_log == !c.tpm);
        assert_int_equal(l.t.tpm_log_len, c.tpm ? ACPI_TPM_LOG_BYTES : 0);
        free_linked(&l);
    }
}

/* The TPM event log area: zero-filled, placed where the linker says, never a write target; no log, no file. */
static void test_tpm_log(void **state)
{
    struct acpi_config c = config(1);
    c.tpm = true;
    struct linked l;
    build_linked(&c, &l);
    for (size_t i = 0; i < l.t.tpm_log_len; i++)
        assert_int_equal(l.t.tpm_log[i], 0);
    /* Linking at another log address moves LASA, and the TPM2 checksum follows it. */
    uint8_t *tables = malloc(l.t.tables_len), *rsdp = malloc(l.t.rsdp_len);
    assert_int_equal(acpi_tables_link(&l.t, TABLES_GPA, RSDP_GPA, 0x7fff0000ULL, tables, rsdp), 0);
    const uint8_t *t = find(&l, "TPM2");
    const uint8_t *t2 = tables + (t - l.tables);
    assert_int_equal(le(t2 + 68, 8), 0x7fff0000ULL);
    assert_int_equal(acpi_checksum(t2, 76), 0);
    /* A log address the 4 KiB alignment of its ALLOCATE does not meet. */
    assert_int_equal(acpi_tables_link(&l.t, TABLES_GPA, RSDP_GPA, LOG_GPA + 16, tables, rsdp), VERR_BAD_FORMAT);
    /* Tables that claim a log blob without one (or the reverse) do not link. */
    struct acpi_tables bad = l.t;
    bad.tpm_log = NULL;
    assert_int_equal(acpi_tables_link(&bad, TABLES_GPA, RSDP_GPA, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    bad.tpm_log_len = 0;
    assert_int_equal(acpi_tables_link(&bad, TABLES_GPA, RSDP_GPA, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    /* A script that writes a pointer or a checksum into the log is refused. */
    uint8_t *script = malloc(l.t.loader_len);
    size_t n = l.t.loader_len / ACPI_LOADER_ENTRY_BYTES;
    for (unsigned cmd = ACPI_LOADER_ADD_POINTER; cmd <= ACPI_LOADER_ADD_CHECKSUM; cmd++) {
        memcpy(script, l.t.loader, l.t.loader_len);
        bool changed = false;
        for (size_t i = 0; i < n && !changed; i++) {
            uint8_t *e = script + i * ACPI_LOADER_ENTRY_BYTES;
            if (le(e, 4) != cmd)
                continue;
            memset(e + 4, 0, ACPI_LOADER_FNAME_BYTES);
            memcpy(e + 4, ACPI_FILE_TPM_LOG, strlen(ACPI_FILE_TPM_LOG));
            changed = true;
        }
        assert_true(changed);
        bad = l.t;
        bad.loader = script;
        assert_int_equal(acpi_tables_link(&bad, TABLES_GPA, RSDP_GPA, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    }
    /* Without a TPM the script never names the log, and a script that does names no file. */
    struct linked none;
    struct acpi_config c0 = config(1);
    build_linked(&c0, &none);
    for (size_t i = 0; i < none.t.loader_len / ACPI_LOADER_ENTRY_BYTES; i++) {
        const uint8_t *e = none.t.loader + i * ACPI_LOADER_ENTRY_BYTES;
        assert_string_not_equal((const char *)e + 4, ACPI_FILE_TPM_LOG);
        assert_string_not_equal((const char *)e + 4 + ACPI_LOADER_FNAME_BYTES, ACPI_FILE_TPM_LOG);
    }
    uint8_t *script0 = malloc(none.t.loader_len);
    memcpy(script0, none.t.loader, none.t.loader_len);
    memset(script0 + 4, 0, ACPI_LOADER_FNAME_BYTES);
    memcpy(script0 + 4, ACPI_FILE_TPM_LOG, strlen(ACPI_FILE_TPM_LOG)); /* the first ALLOCATE */
    bad = none.t;
    bad.loader = script0;
    uint8_t *tables0 = malloc(none.t.tables_len), *rsdp0 = malloc(none.t.rsdp_len);
    assert_int_equal(acpi_tables_link(&bad, TABLES_GPA, RSDP_GPA, LOG_GPA, tables0, rsdp0), VERR_BAD_FORMAT);
    free(tables0);
    free(rsdp0);
    free(script0);
    free_linked(&none);
    free(script);
    free(tables);
    free(rsdp);
    free_linked(&l);
}

static void test_bad_config(void **state)
{
    struct acpi_tables t;
    struct acpi_config c = config(0);
    assert_int_equal(acpi_tables_build(&c, &t), VERR_INVALID_PARAMETER);
    c = config(ACPI_MAX_CPUS + 1);
    assert_int_equal(acpi_tables_build(&c, &t), VERR_INVALID_PARAMETER);
    c = config(1);
    c.phys_bits = 64;
    assert_int_equal(acpi_tables_build(&c, &t), VERR_INVALID_PARAMETER);
    assert_int_equal(acpi_tables_build(NULL, &t), VERR_INVALID_PARAMETER);
}

/* A damaged script never links and never writes outside the copies. */
static void test_hostile_scripts(void **state)
{
    struct acpi_config c = config(2);
    c.tpm = true; /* the log blob is a file the fuzzed script may name too */
    struct acpi_tables good;
    assert_int_equal(acpi_tables_build(&c, &good), 0);
    uint8_t *tables = malloc(good.tables_len), *rsdp = malloc(good.rsdp_len);
    uint8_t *script = malloc(good.loader_len);
    size_t n = good.loader_len / ACPI_LOADER_ENTRY_BYTES;
    /* Misaligned placement. */
    assert_int_equal(acpi_tables_link(&good, TABLES_GPA + 8, RSDP_GPA, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    assert_int_equal(acpi_tables_link(&good, TABLES_GPA, RSDP_GPA + 4, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    /* An RSDP placed where no OS searches. */
    assert_int_equal(acpi_tables_link(&good, TABLES_GPA, 0x200000, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    /* A pointer whose final value cannot fit its 32-bit field. */
    assert_int_equal(acpi_tables_link(&good, 0xffffff00ULL << 8, RSDP_GPA, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    uint32_t seed = 12345;
    for (unsigned round = 0; round < 600; round++) {
        memcpy(script, good.loader, good.loader_len);
        size_t e = (seed = seed * 1103515245u + 12345u) % n;
        uint8_t *entry = script + e * ACPI_LOADER_ENTRY_BYTES;
        switch (round % 6) {
        case 0: entry[0] = (uint8_t)(seed >> 16); break;                        /* command */
        case 1: memset(entry + 4, 'A', ACPI_LOADER_FNAME_BYTES); break;         /* no NUL in the name */
        case 2: entry[4 + 112 + (seed >> 20) % 4] ^= (uint8_t)(seed >> 8); break; /* pointer offset */
        case 3: entry[4 + 60 + (seed >> 20) % 8] ^= (uint8_t)(seed >> 8); break;  /* checksum range */
        case 4: entry[4 + 116] = (uint8_t)(seed >> 12); break;                   /* pointer width */
        default: memcpy(entry, script, ACPI_LOADER_ENTRY_BYTES); break;          /* a second ALLOCATE */
        }
        struct acpi_tables bad = good;
        bad.loader = script;
        int rc = acpi_tables_link(&bad, TABLES_GPA, RSDP_GPA, LOG_GPA, tables, rsdp);
        assert_true(rc == 0 || rc == VERR_BAD_FORMAT);
    }
    /* A truncated script and an empty one. */
    struct acpi_tables bad = good;
    bad.loader_len = good.loader_len - 1;
    assert_int_equal(acpi_tables_link(&bad, TABLES_GPA, RSDP_GPA, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    bad.loader_len = 0;
    assert_int_equal(acpi_tables_link(&bad, TABLES_GPA, RSDP_GPA, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    /* A pointer aimed past its target file. */
    memcpy(script, good.loader, good.loader_len);
    bad = good;
    bad.loader = script;
    uint8_t *copy = malloc(good.tables_len);
    memcpy(copy, good.tables, good.tables_len);
    bad.tables = copy;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *en = script + i * ACPI_LOADER_ENTRY_BYTES;
        if (le(en, 4) == ACPI_LOADER_ADD_POINTER && !strcmp((const char *)en + 4, ACPI_FILE_TABLES)) {
            size_t off = (size_t)le(en + 4 + 112, 4);
            memset(copy + off, 0xff, en[4 + 116]);
            break;
        }
    }
    assert_int_equal(acpi_tables_link(&bad, TABLES_GPA, RSDP_GPA, LOG_GPA, tables, rsdp), VERR_BAD_FORMAT);
    free(copy);
    free(script);
    free(tables);
    free(rsdp);
    acpi_tables_free(&good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksums_and_lengths),
        cmocka_unit_test(test_loader_script),
        cmocka_unit_test(test_madt),
        cmocka_unit_test(test_fadt),
        cmocka_unit_test(test_fadt_pm_base),
        cmocka_unit_test(test_dsdt_sentinels),
        cmocka_unit_test(test_dsdt_wiring),
        cmocka_unit_test(test_optional_tables),
        cmocka_unit_test(test_tpm_log),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_hostile_scripts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
