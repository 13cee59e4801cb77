/* tstIemSys.c - unit tests of the interpreter's system family: descriptors, CPUID, MSRs, flags, and guest code through gates, tasks, IST and fast system calls. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../iem-core.h"
#include "../iem-sys.h"
#include "harness.h"

/* CPUID.80000008H must report the width the page walker enforces. */
_Static_assert(IEM_SYS_PHYS_BITS == IEM_MAXPHYADDR, "CPUID and the page walker disagree on MAXPHYADDR");

/* ---- Guest layout ------------------------------------------------------------------------------ */

#define RAM_BYTES (16u << 20)
#define GDT       0x1000u
#define IDT       0x2000u
#define TSS1      0x3000u
#define TSS2      0x3100u
#define TSS64     0x3200u
#define K_CODE    0x4000u
#define U_CODE    0x5000u
#define T2_CODE   0x6000u
#define K_STACK   0x9000u
#define U_STACK   0xa000u
#define T2_STACK  0xb000u
#define IST_STACK 0xc000u
#define PML4      0x20000u

/* GDT selectors built by fx_gdt. */
#define SEL_K32   0x08
#define SEL_KDATA 0x10
#define SEL_U32   0x1b
#define SEL_UDATA 0x23
#define SEL_TSS1  0x28
#define SEL_TSS2  0x30
#define SEL_K64   0x38
#define SEL_U64   0x43
#define SEL_GATE  0x4b
#define SEL_NP    0x50
#define SEL_TSS64 0x60

#define MSR_EFER 0xc0000080u

/* The harness VM (RAM at 0, one vCPU, manual clock); this file builds its own tables in it. */
struct fx {
    struct iemh *h;
    struct vm *vm;
    struct iem_cpu *cpu;
    struct cpu_state *s;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->h = iemh_create(RAM_BYTES);
    f->vm = f->h->vm;
    f->cpu = f->h->cpu;
    f->s = f->h->s;
    iem_sys_reset(f->cpu);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    iemh_destroy(f->h);
    free(f);
    return 0;
}

static void wr(struct fx *f, uint64_t gpa, const void *p, size_t n)
{
    assert_int_equal(mem_write(f->vm, gpa, p, n), 0);
}

static void w16(struct fx *f, uint64_t gpa, uint16_t v) { wr(f, gpa, &v, 2); }
static void w32(struct fx *f, uint64_t gpa, uint32_t v) { wr(f, gpa, &v, 4); }
static void w64(struct fx *f, uint64_t gpa, uint64_t v) { wr(f, gpa, &v, 8); }

static uint64_t rd(struct fx *f, uint64_t gpa, unsigned n)
{
    uint64_t v = 0;
    assert_int_equal(mem_read(f->vm, gpa, &v, n), 0);
    return v;
}

/* A code/data descriptor: access = byte 5 (type, S, DPL, P), flags = G, D/B, L, AVL nibble. */
static uint64_t seg_desc(uint32_t base, uint32_t limit, unsigned access, unsigned flags)
{
    return (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)(access & 0xff) << 40) |
           ((uint64_t)((limit >> 16) & 0xf) << 48) | ((uint64_t)(flags & 0xf) << 52) | ((uint64_t)(base >> 24) << 56);
}

static uint64_t gate_desc(uint16_t sel, uint32_t off, unsigned access, unsigned params)
{
    return (off & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)(params & 0x1f) << 32) | ((uint64_t)access << 40) |
           ((uint64_t)(off >> 16) << 48);
}

static void gdt_set(struct fx *f, unsigned index, uint64_t d)
{
    w64(f, GDT + 8 * index, d);
}

static void idt32(struct fx *f, unsigned vec, uint16_t sel, uint32_t off, unsigned access)
{
    w64(f, IDT + 8 * vec, gate_desc(sel, off, access, 0));
}

static void idt64(struct fx *f, unsigned vec, uint16_t sel, uint64_t off, unsigned access, unsigned ist)
{
    uint64_t lo = gate_desc(sel, (uint32_t)off, access, 0) | ((uint64_t)ist << 32);
    w64(f, IDT + 16 * vec, lo);
    w64(f, IDT + 16 * vec + 8, off >> 32);
}

/* Loads a segment register's cache from the GDT, as if the guest had loaded it earlier. */
static void load_seg(struct fx *f, unsigned seg, uint16_t sel)
{
    uint64_t d[2] = {rd(f, GDT + (sel & ~7u), 8), 0};
    if (seg == CPU_TR)
        d[1] = rd(f, GDT + (sel & ~7u) + 8, 8) * ((f->s->efer & IEM_EFER_LMA) != 0);
    iem_seg_from_desc(&f->s->seg[seg], sel, d);
}

static void fx_gdt(struct fx *f)
{
    gdt_set(f, 1, seg_desc(0, 0xfffff, 0x9a, 0xc));            /* 0x08 32-bit code, DPL 0, not accessed */
    gdt_set(f, 2, seg_desc(0, 0xfffff, 0x93, 0xc));            /* 0x10 data, DPL 0 */
    gdt_set(f, 3, seg_desc(0, 0xfffff, 0xfb, 0xc));            /* 0x18 32-bit code, DPL 3 */
    gdt_set(f, 4, seg_desc(0, 0xfffff, 0xf3, 0xc));            /* 0x20 data, DPL 3 */
    gdt_set(f, 5, seg_desc(TSS1, 0xff, 0x8b, 0));              /* 0x28 32-bit TSS, busy (current) */
    gdt_set(f, 6, seg_desc(TSS2, 0x67, 0x89, 0));              /* 0x30 32-bit TSS, available */
    gdt_set(f, 7, seg_desc(0, 0xfffff, 0x9b, 0xa));            /* 0x38 64-bit code, DPL 0 */
    gdt_set(f, 8, seg_desc(0, 0xfffff, 0xfb, 0xa));            /* 0x40 64-bit code, DPL 3 */
    gdt_set(f, 9, gate_desc(SEL_K32, K_CODE + 0x100, 0xec, 2)); /* 0x48 32-bit call gate, DPL 3, 2 params */
    gdt_set(f, 10, seg_desc(0, 0xfffff, 0x13, 0xc));           /* 0x50 data, not present */
    gdt_set(f, 12, seg_desc(TSS64, 0x67, 0x8b, 0));            /* 0x60 64-bit TSS, busy (16 bytes) */
    gdt_set(f, 13, 0);
    f->s->gdtr.base = GDT;
    f->s->gdtr.limit = 14 * 8 - 1;
}

/* 32-bit protected mode at CPL cpl, flat segments, TSS1 current (ESP0 = K_STACK), an empty IDT. */
static void fx_prot32(struct fx *f, unsigned cpl)
{
    struct cpu_state *s = f->s;
    fx_gdt(f);
    s->cr0 = IEM_CR0_PE | CPU_CR0_ET;
    uint16_t cs = cpl ? SEL_U32 : SEL_K32, ds = cpl ? SEL_UDATA : SEL_KDATA;
    load_seg(f, CPU_CS, cs);
    load_seg(f, CPU_SS, ds);
    load_seg(f, CPU_DS, ds);
    load_seg(f, CPU_ES, ds);
    load_seg(f, CPU_FS, ds);
    load_seg(f, CPU_GS, ds);
    load_seg(f, CPU_TR, SEL_TSS1);
    iem_seg_set_null(f->cpu, CPU_LDTR, 0, 0);
    s->idtr.base = IDT;
    s->idtr.limit = 256 * 8 - 1;
    w32(f, TSS1 + 4, K_STACK);
    w16(f, TSS1 + 8, SEL_KDATA);
    w16(f, TSS1 + 0x66, 0xa8); /* I/O map base: the redirection bitmap is at 0x88..0xa7 */
    s->rflags = 0x202;
    s->gpr[CPU_RSP] = cpl ? U_STACK : K_STACK;
    iem_update_mode(f->cpu);
}

/* Identity map of the first 16 MiB with 2 MiB user pages (SDM vol. 3A, 4.5). */
static void fx_paging(struct fx *f)
{
    w64(f, PML4, (PML4 + 0x1000) | 7);
    w64(f, PML4 + 0x1000, (PML4 + 0x2000) | 7);
    for (unsigned i = 0; i < 8; i++)
        w64(f, PML4 + 0x2000 + 8 * i, ((uint64_t)i << 21) | 0x87);
}

/* IA-32e mode, 64-bit code at CPL cpl, the 64-bit TSS current (RSP0 = K_STACK, IST1 = IST_STACK + 8). */
static void fx_long(struct fx *f, unsigned cpl)
{
    struct cpu_state *s = f->s;
    fx_gdt(f);
    fx_paging(f);
    s->cr0 = IEM_CR0_PE | CPU_CR0_ET | IEM_CR0_PG;
    s->cr4 = IEM_CR4_PAE;
    s->cr3 = PML4;
    s->efer = IEM_EFER_LME | IEM_EFER_LMA;
    uint16_t ds = cpl ? SEL_UDATA : SEL_KDATA;
    load_seg(f, CPU_CS, cpl ? SEL_U64 : SEL_K64);
    load_seg(f, CPU_SS, ds);
    load_seg(f, CPU_DS, ds);
    load_seg(f, CPU_ES, ds);
    load_seg(f, CPU_TR, SEL_TSS64);
    iem_seg_set_null(f->cpu, CPU_LDTR, 0, 0);
    s->idtr.base = IDT;
    s->idtr.limit = 256 * 16 - 1;
    w64(f, TSS64 + 4, K_STACK);
    w64(f, TSS64 + 0x24, IST_STACK + 8);
    s->rflags = 0x202;
    s->gpr[CPU_RSP] = cpl ? U_STACK : K_STACK;
    iem_update_mode(f->cpu);
}

static struct iem_step_result run(struct fx *f, uint64_t max)
{
    struct iem_step_result r;
    iem_step(f->cpu, max, &r);
    return r;
}

static void code_at(struct fx *f, uint64_t gpa, const uint8_t *code, size_t n)
{
    wr(f, gpa, code, n);
}

/* ---- Guest code (nasm, listed beside each array) ----------------------------------------------- */

/* bits 16: sti; int 0x21; hlt */
static const uint8_t code_real_int[] = {0xfb, 0xcd, 0x21, 0xf4};
/* bits 16: mov ax, 0x1234; pushf; pop bx; iret */
static const uint8_t code_real_handler[] = {0xb8, 0x34, 0x12, 0x9c, 0x5b, 0xcf};
/* bits 32: mov eax, 7; int 0x80; ud2 */
static const uint8_t code_user_int80[] = {0xb8, 0x07, 0x00, 0x00, 0x00, 0xcd, 0x80, 0x0f, 0x0b};
/* bits 32: mov ebx, [esp]; mov ecx, [esp+4]; mov edx, [esp+8]; mov esi, [esp+12]; mov edi, [esp+16]; mov ebp, esp; iret */
static const uint8_t code_k_int80[] = {0x8b, 0x1c, 0x24, 0x8b, 0x4c, 0x24, 0x04, 0x8b, 0x54, 0x24, 0x08, 0x8b,
                                       0x74, 0x24, 0x0c, 0x8b, 0x7c, 0x24, 0x10, 0x89, 0xe5, 0xcf};
/* bits 32: int 0x81 */
static const uint8_t code_user_int81[] = {0xcd, 0x81};
/* bits 32: int 0x82 */
static const uint8_t code_user_int82[] = {0xcd, 0x82};
/* bits 32: push 0x11111111; push 0x22222222; call 0x4b:0; ud2 */
static const uint8_t code_user_callgate[] = {0x68, 0x11, 0x11, 0x11, 0x11, 0x68, 0x22, 0x22, 0x22, 0x22,
                                             0x9a, 0x00, 0x00, 0x00, 0x00, 0x4b, 0x00, 0x0f, 0x0b};
/* bits 32: mov eax, [esp+8]; mov ebx, [esp+12]; mov ecx, [esp+16]; retf 8 */
static const uint8_t code_k_callgate[] = {0x8b, 0x44, 0x24, 0x08, 0x8b, 0x5c, 0x24, 0x0c,
                                          0x8b, 0x4c, 0x24, 0x10, 0xca, 0x08, 0x00};
/* bits 32: mov eax, 1; mov ecx, 2; call 0x30:0; mov edx, 3; int 0x40; hlt */
static const uint8_t code_task1[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xb9, 0x02, 0x00, 0x00, 0x00, 0x9a, 0x00, 0x00,
                                     0x00, 0x00, 0x30, 0x00, 0xba, 0x03, 0x00, 0x00, 0x00, 0xcd, 0x40, 0xf4};
/* bits 32: mov ecx, 0x55; iret; jmp $-8 */
static const uint8_t code_task2[] = {0xb9, 0x55, 0x00, 0x00, 0x00, 0xcf, 0xeb, 0xf6};
/* bits 64: int 0x30; ud2 */
static const uint8_t code_user64_int30[] = {0xcd, 0x30, 0x0f, 0x0b};
/* bits 64: iretq */
static const uint8_t code_k64_iretq[] = {0x48, 0xcf};
/* bits 64: mov eax, 1; syscall; ud2 */
static const uint8_t code_user64_syscall[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x0f, 0x0b};
/* bits 64: mov rdx, rcx; o64 sysret */
static const uint8_t code_k64_sysret[] = {0x48, 0x89, 0xca, 0x48, 0x0f, 0x07};
/* bits 32: mov eax, 0x40000; mov cr4, eax (CR4.OSXSAVE: XSAVE is not reported) */
static const uint8_t code_cr4_bad[] = {0xb8, 0x00, 0x00, 0x04, 0x00, 0x0f, 0x22, 0xe0};
/* bits 32: mov eax, 0x80000000; mov cr0, eax (PG without PE) */
static const uint8_t code_cr0_pg_nope[] = {0xb8, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0};
/* bits 32: mov cr1, eax */
static const uint8_t code_cr1[] = {0x0f, 0x22, 0xc8};
/* bits 32: mov eax, cr0 */
static const uint8_t code_rd_cr0[] = {0x0f, 0x20, 0xc0};
/* bits 32: mov eax, cr4; or eax, 0x20; mov cr4, eax; mov eax, 0x20000; mov cr3, eax; mov ecx, 0xc0000080;
 *          rdmsr; or eax, 0x100; wrmsr; mov eax, cr0; or eax, 0x80000000; mov cr0, eax; jmp 0x38:0x4400 */
static const uint8_t code_to_long[] = {0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x00, 0x02,
                                       0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00,
                                       0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80,
                                       0x0f, 0x22, 0xc0, 0xea, 0x00, 0x44, 0x00, 0x00, 0x38, 0x00};
#define TO_LONG_CR4_BYTES 9  /* the first three instructions set CR4.PAE */
#define TO_LONG_MOV_CR0 39   /* offset of "mov cr0, eax" */
/* bits 64: mov rax, 0x123456789; hlt */
static const uint8_t code_long_entry[] = {0x48, 0xb8, 0x89, 0x67, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00, 0xf4};
/* bits 16: mov ss, ax; nop; pop ss; nop */
static const uint8_t code_mov_ss[] = {0x8e, 0xd0, 0x90, 0x17, 0x90};
/* bits 32: lar eax, ebx; lsl ecx, ebx; verr bx */
static const uint8_t code_lar[] = {0x0f, 0x02, 0xc3, 0x0f, 0x03, 0xcb, 0x0f, 0x00, 0xe3};
/* bits 16: int 0x21; hlt */
static const uint8_t code_v86_int[] = {0xcd, 0x21, 0xf4};
/* bits 16: iret */
static const uint8_t code_iret16[] = {0xcf};
/* bits 32: iret */
static const uint8_t code_iret32[] = {0xcf};
/* bits 32: sysenter; ud2 */
static const uint8_t code_sysenter[] = {0x0f, 0x34, 0x0f, 0x0b};
/* bits 32: sysexit */
static const uint8_t code_k_sysexit[] = {0x0f, 0x35};
/* bits 16: jmp 0x1000:0x20 */
static const uint8_t code_ljmp_real[] = {0xea, 0x20, 0x00, 0x00, 0x10};
/* bits 32: mov dr0, eax; mov dr4, eax */
static const uint8_t code_mov_dr[] = {0x0f, 0x23, 0xc0, 0x0f, 0x23, 0xe0};

/* ---- Descriptors ------------------------------------------------------------------------------------ */

static void test_seg_from_desc(void **state)
{
    (void)state;
    struct cpu_seg sg;
    uint64_t d[2] = {0x00cf9a000000ffffULL, 0};
    iem_seg_from_desc(&sg, 0x08, d);
    assert_int_equal(sg.sel, 0x08);
    assert_int_equal(sg.base, 0);
    assert_int_equal(sg.limit, 0xffffffffu); /* 0xfffff pages, G = 1 */
    assert_int_equal(sg.attr, 0xc09a);       /* G, D/B, P, S, type A (CPU_SEG_ATTR_* layout) */

    d[0] = seg_desc(0x12345678, 0x12345, 0xf2, 0x0); /* byte granular, DPL 3 */
    iem_seg_from_desc(&sg, 0x23, d);
    assert_int_equal(sg.base, 0x12345678);
    assert_int_equal(sg.limit, 0x12345);
    assert_int_equal((sg.attr & CPU_SEG_ATTR_DPL_MASK) >> CPU_SEG_ATTR_DPL_SHIFT, 3);
    assert_false(sg.attr & CPU_SEG_ATTR_G);

    /* A 16-byte system descriptor contributes base bits 63:32; a code/data one does not. */
    d[0] = seg_desc(0x12345678, 0x67, 0x89, 0);
    d[1] = 0xffff8000u;
    iem_seg_from_desc(&sg, 0x60, d);
    assert_int_equal(sg.base, 0xffff800012345678ULL);
    d[0] = seg_desc(0x1000, 0xffff, 0x93, 0);
    iem_seg_from_desc(&sg, 0x10, d);
    assert_int_equal(sg.base, 0x1000);

    /* 64-bit code: L set, D clear. */
    d[0] = 0x00af9b000000ffffULL;
    d[1] = 0;
    iem_seg_from_desc(&sg, 0x38, d);
    assert_true(sg.attr & CPU_SEG_ATTR_L);
    assert_false(sg.attr & CPU_SEG_ATTR_DB);
}

/* ---- CPUID ------------------------------------------------------------------------------------------ */

static void test_cpuid_values(void **state)
{
    struct fx *f = *state;
    uint32_t r[4];
    char vendor[13] = {0};

    iem_cpuid(f->cpu, 0, 0, r);
    assert_int_equal(r[0], 0x16);
    memcpy(vendor, &r[1], 4);
    memcpy(vendor + 4, &r[3], 4);
    memcpy(vendor + 8, &r[2], 4);
    assert_string_equal(vendor, "GenuineIntel");

    iem_cpuid(f->cpu, 1, 0, r);
    assert_int_equal((r[0] >> 8) & 0xf, 6);                       /* family */
    assert_int_equal(((r[0] >> 12) & 0xf0) | ((r[0] >> 4) & 0xf), 0x3a); /* model */
    uint32_t want_ecx = (1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | (1u << 22) | (1u << 23);
    assert_int_equal(r[2], want_ecx); /* nothing else: no AVX, XSAVE, OSXSAVE, x2APIC, RDRAND, PCID, MONITOR */
    uint32_t must_edx = (1u << 0) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) | (1u << 11) | (1u << 12) |
                        (1u << 13) | (1u << 15) | (1u << 16) | (1u << 17) | (1u << 19) | (1u << 23) | (1u << 24) |
                        (1u << 25) | (1u << 26) | (1u << 3);
    assert_int_equal(r[3] & must_edx, must_edx);
    assert_false(r[3] & (1u << 9));  /* no local APIC model yet */
    assert_false(r[3] & (1u << 28)); /* one vCPU: no HTT */
    assert_int_equal((r[1] >> 8) & 0xff, 8); /* CLFLUSH line 64 bytes */

    iem_cpuid(f->cpu, 7, 0, r);
    assert_int_equal(r[0], 0);          /* no subleaf past 0 */
    assert_int_equal(r[1], (1u << 9) | (1u << 1)); /* ERMS and TSC_ADJUST only: no BMI, AVX2, SMEP, SMAP, FSGSBASE, RDSEED */
    assert_int_equal(r[2], 0);
    assert_int_equal(r[3], 1u << 29);   /* IA32_ARCH_CAPABILITIES */
    iem_cpuid(f->cpu, 7, 1, r);
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);

    iem_cpuid(f->cpu, 4, 0, r);
    assert_int_equal(r[0] & 0x1f, 1); /* L1 data */
    assert_int_equal((r[0] >> 5) & 7, 1);
    iem_cpuid(f->cpu, 4, 3, r);
    assert_int_equal((r[0] >> 5) & 7, 3);
    iem_cpuid(f->cpu, 4, 4, r);
    assert_int_equal(r[0] & 0x1f, 0); /* no more caches */

    iem_cpuid(f->cpu, 0xb, 1, r);
    assert_int_equal(r[1], 1);               /* one logical processor at the core level */
    assert_int_equal((r[2] >> 8) & 0xff, 2); /* core level */

    iem_cpuid(f->cpu, 0x80000000u, 0, r);
    assert_int_equal(r[0], 0x80000008u);
    iem_cpuid(f->cpu, 0x80000001u, 0, r);
    assert_int_equal(r[3], (1u << 11) | (1u << 20) | (1u << 27) | (1u << 29)); /* SYSCALL NX RDTSCP LM */
    assert_int_equal(r[2], (1u << 0) | (1u << 5));                            /* LAHF, LZCNT */

    char brand[49] = {0};
    for (unsigned i = 0; i < 3; i++) {
        iem_cpuid(f->cpu, 0x80000002u + i, 0, r);
        memcpy(brand + 16 * i, r, 16);
    }
    assert_string_equal(brand, "Vireo Virtual CPU");

    iem_cpuid(f->cpu, 0x80000008u, 0, r);
    assert_int_equal(r[0] & 0xff, IEM_MAXPHYADDR);
    assert_int_equal((r[0] >> 8) & 0xff, 48);
    iem_cpuid(f->cpu, 0x80000007u, 0, r);
    assert_true(r[3] & (1u << 8)); /* invariant TSC */

    /* The TSC frequency without calibration: crystal (the APIC timer's 1 GHz) * EBX / EAX = 2 GHz; 16H in MHz. */
    iem_cpuid(f->cpu, 0x15, 0, r);
    assert_int_equal(r[2], 1000000000u);
    assert_int_equal((uint64_t)r[2] / 1000 * r[1] / r[0], f->cpu->tsc_khz);
    assert_true((uint64_t)(r[2] / 1000) * r[1] <= UINT32_MAX); /* Linux multiplies in 32 bits */
    iem_cpuid(f->cpu, 0x16, 0, r);
    assert_int_equal(r[0], f->cpu->tsc_khz / 1000);
    assert_int_equal(r[2], 100);
    /* Between 0Bh and 15h: nothing (XSAVE, PMU, RDT, SGX and PT leaves have no feature bit). */
    for (uint32_t leaf = 0xc; leaf < 0x15; leaf++) {
        iem_cpuid(f->cpu, leaf, 0, r);
        assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
    }
    /* Another TSC rate: the ratio follows it, reduced. */
    uint64_t khz = f->cpu->tsc_khz;
    f->cpu->tsc_khz = 2500000;
    iem_cpuid(f->cpu, 0x15, 0, r);
    assert_int_equal(r[0], 2);
    assert_int_equal(r[1], 5);
    /* A frequency whose ratio would overflow that product is not reported: the guest calibrates. */
    f->cpu->tsc_khz = 2999999;
    iem_cpuid(f->cpu, 0x15, 0, r);
    assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
    f->cpu->tsc_khz = khz;

    /* Past the maxima: the highest basic leaf (16H) with the same subleaf. */
    uint32_t hi[4];
    iem_cpuid(f->cpu, 0x16, 1, hi);
    iem_cpuid(f->cpu, 0x40000000u, 1, r);
    assert_memory_equal(r, hi, sizeof(hi));
    iem_cpuid(f->cpu, 0x80000009u, 1, r);
    assert_memory_equal(r, hi, sizeof(hi));
}

/* ---- MSRs ------------------------------------------------------------------------------------------------ */

static void test_msr_efer_and_bases(void **state)
{
    struct fx *f = *state;
    struct iem_cpu *cpu = f->cpu;
    uint64_t v;

    assert_true(iem_msr_write(cpu, MSR_EFER, IEM_EFER_SCE | IEM_EFER_LME | IEM_EFER_NXE));
    assert_true(iem_msr_read(cpu, MSR_EFER, &v));
    assert_int_equal(v, IEM_EFER_SCE | IEM_EFER_LME | IEM_EFER_NXE);
    assert_false(iem_msr_write(cpu, MSR_EFER, 1u << 1));            /* reserved */
    assert_true(iem_msr_write(cpu, MSR_EFER, IEM_EFER_LME | IEM_EFER_LMA)); /* LMA is read-only: ignored */
    assert_true(iem_msr_read(cpu, MSR_EFER, &v));
    assert_int_equal(v, IEM_EFER_LME);
    f->s->cr0 |= IEM_CR0_PG | IEM_CR0_PE;
    assert_false(iem_msr_write(cpu, MSR_EFER, 0)); /* LME cannot change while paging */
    f->s->cr0 &= ~(uint64_t)(IEM_CR0_PG | IEM_CR0_PE);

    assert_false(iem_msr_write(cpu, 0xc0000100u, 0x0000800000000000ULL)); /* FS_BASE not canonical */
    assert_true(iem_msr_write(cpu, 0xc0000100u, 0xffff800000001000ULL));
    assert_int_equal(f->s->seg[CPU_FS].base, 0xffff800000001000ULL);
    assert_false(iem_msr_write(cpu, 0xc0000082u, 0x1234567800000000ULL)); /* LSTAR */
    assert_false(iem_msr_write(cpu, 0xc0000084u, 1ULL << 32));           /* SFMASK bits 63:32 */
    assert_false(iem_msr_write(cpu, 0xc0000103u, 1ULL << 32));           /* TSC_AUX bits 63:32 */
    assert_false(iem_msr_read(cpu, 0x12345u, &v));                       /* unknown */
    assert_false(iem_msr_write(cpu, 0x12345u, 0));

    /* APIC base: reserved bits fault, the BSP flag is read-only. */
    uint64_t apic = f->s->apic_base;
    assert_false(iem_msr_write(cpu, 0x1bu, 0xfee00000u | (1u << 9)));
    assert_false(iem_msr_write(cpu, 0x1bu, 0xfee00000u | (1u << 10)));
    assert_true(iem_msr_write(cpu, 0x1bu, 0xfec00000u | (1u << 11)));
    assert_int_equal(f->s->apic_base, 0xfec00000u | (1u << 11) | (apic & (1u << 8)));
}

static void test_msr_pat_mtrr(void **state)
{
    struct fx *f = *state;
    struct iem_cpu *cpu = f->cpu;
    uint64_t v;

    assert_false(iem_msr_write(cpu, 0x277u, 0x0007040600070402ULL)); /* type 2 is reserved */
    assert_false(iem_msr_write(cpu, 0x277u, 0x0007040600070416ULL)); /* upper bits of an entry */
    assert_true(iem_msr_write(cpu, 0x277u, 0x0007010600070106ULL));
    assert_int_equal(f->s->pat, 0x0007010600070106ULL);

    assert_true(iem_msr_read(cpu, 0xfeu, &v));
    assert_int_equal(v & 0xff, 8);            /* variable ranges */
    assert_true(v & (1u << 8));               /* fixed ranges */
    assert_false(iem_msr_write(cpu, 0xfeu, 0)); /* read-only */

    assert_false(iem_msr_write(cpu, 0x2ffu, 0x802));   /* default type 2 */
    assert_false(iem_msr_write(cpu, 0x2ffu, 0x1006));  /* reserved bit 12 */
    assert_true(iem_msr_write(cpu, 0x2ffu, 0xc06));
    assert_true(iem_msr_read(cpu, 0x2ffu, &v));
    assert_int_equal(v, 0xc06);

    assert_false(iem_msr_write(cpu, 0x200u, (1ULL << IEM_SYS_PHYS_BITS) | 6)); /* base beyond MAXPHYADDR */
    assert_false(iem_msr_write(cpu, 0x200u, 0x100007));                       /* type 7 invalid in MTRRs */
    assert_true(iem_msr_write(cpu, 0x200u, 0x100006));
    assert_false(iem_msr_write(cpu, 0x201u, 0xfff00001ULL)); /* mask bits 10:0 reserved */
    assert_true(iem_msr_write(cpu, 0x201u, 0xfff00800ULL));
    assert_true(iem_msr_read(cpu, 0x201u, &v));
    assert_int_equal(v, 0xfff00800ULL);
    assert_false(iem_msr_read(cpu, 0x210u, &v)); /* ninth range does not exist */

    assert_false(iem_msr_write(cpu, 0x250u, 0x0606060606060603ULL)); /* fixed range with type 3 */
    assert_true(iem_msr_write(cpu, 0x268u, 0x0505050505050505ULL));
    assert_true(iem_msr_read(cpu, 0x268u, &v));
    assert_int_equal(v, 0x0505050505050505ULL);
}

static void test_msr_tsc_misc(void **state)
{
    struct fx *f = *state;
    struct iem_cpu *cpu = f->cpu;
    uint64_t v, khz = cpu->tsc_khz;

    assert_true(iem_msr_write(cpu, 0x10u, 1000000));
    assert_true(iem_msr_read(cpu, 0x10u, &v));
    assert_int_equal(v, 1000000);
    tm_clock_step(f->vm, 1000); /* 1 us of virtual time */
    assert_int_equal(iem_tsc_read(cpu), 1000000 + khz / 1000);
    /* IA32_TSC_ADJUST follows writes to the TSC, and writing it moves the TSC (SDM vol. 3B, 17.17.3). */
    assert_true(iem_msr_write(cpu, 0x10u, 0));
    assert_true(iem_msr_write(cpu, 0x10u, 5000));
    uint64_t adj;
    assert_true(iem_msr_read(cpu, 0x3bu, &adj));
    assert_true(iem_msr_write(cpu, 0x3bu, adj + 300));
    assert_int_equal(iem_tsc_read(cpu), 5300);
    assert_true(iem_msr_read(cpu, 0x3bu, &v));
    assert_int_equal(v, adj + 300);
    assert_true(iem_msr_write(cpu, 0x3bu, (uint64_t)-7000)); /* negative adjustments are allowed */
    assert_int_equal(iem_tsc_read(cpu), 5300 + (uint64_t)-7000 - (adj + 300));
    assert_true(iem_msr_write(cpu, 0x10u, 1000000 + khz / 1000));

    /* MISC_ENABLE: fast strings on from reset and writable, BTS/PEBS unavailable read as set, limit-CPUID and XD-disable honoured. */
    assert_true(iem_msr_read(cpu, 0x1a0u, &v));
    assert_true(v & 1);
    assert_true(v & (1u << 11));
    assert_true(v & (1u << 12));
    uint32_t r[4];
    assert_true(iem_msr_write(cpu, 0x1a0u, v | (1ULL << 22)));
    iem_cpuid(cpu, 0, 0, r);
    assert_int_equal(r[0], 2);
    assert_true(iem_msr_write(cpu, 0x1a0u, (v & ~(1ULL << 22)) | (1ULL << 34)));
    iem_cpuid(cpu, 0x80000001u, 0, r);
    assert_false(r[3] & (1u << 20));
    assert_false(iem_msr_write(cpu, MSR_EFER, IEM_EFER_NXE)); /* NX is gone */
    assert_true(iem_msr_write(cpu, 0x1a0u, v));

    /* ARCH_CAPABILITIES: not affected by Meltdown (RDCL_NO) and MDS (MDS_NO), so Linux needs no PTI or VERW; read-only. */
    assert_true(iem_msr_read(cpu, 0x10au, &v));
    assert_true(v & 1);
    assert_true(v & (1u << 5));
    assert_false(v & (1u << 1)); /* no enhanced IBRS: there is no IA32_SPEC_CTRL */
    assert_false(iem_msr_write(cpu, 0x10au, v));

    assert_true(iem_msr_read(cpu, 0x8bu, &v)); /* microcode revision, read by Linux without a handler */
    assert_true(iem_msr_write(cpu, 0x8bu, 0));
    assert_true(iem_msr_read(cpu, 0x3au, &v));
    assert_int_equal(v, 1); /* feature control: locked, no VMX */
    assert_false(iem_msr_write(cpu, 0x3au, 5));
}

/* ---- RFLAGS write rules ----------------------------------------------------------------------------------- */

static void test_flags_write_rules(void **state)
{
    struct fx *f = *state;
    struct iem_cpu *cpu = f->cpu;
    struct cpu_state *s = f->s;

    /* CPL 3, IOPL 0: IOPL and IF stay, arithmetic flags, AC and ID change, VM never. */
    fx_prot32(f, 3);
    s->rflags = 0x202;
    iem_flags_write(cpu, 0x3000 | IEM_F_CF | IEM_F_AC | IEM_F_ID | IEM_F_VM | IEM_F_RF, ~0ULL);
    assert_int_equal(s->rflags, 0x202 | IEM_F_CF | IEM_F_AC | IEM_F_ID);
    /* The same at CPL 0: IOPL and IF follow the value. */
    fx_prot32(f, 0);
    iem_flags_write(cpu, 0x3002 | IEM_F_CF, ~0ULL);
    assert_int_equal(s->rflags, 0x3002 | IEM_F_CF);
    /* A 16-bit POPF leaves the upper half. */
    s->rflags = 0x202 | IEM_F_AC;
    iem_flags_write(cpu, 0x0002, 0xffff);
    assert_int_equal(s->rflags, 0x2 | IEM_F_AC);

    /* Virtual-8086 with VME and IOPL 0: IF goes to VIF, IF and IOPL stay. */
    s->cr4 |= IEM_CR4_VME;
    s->rflags = IEM_F_VM | IEM_F_IF | 2;
    iem_update_mode(cpu);
    iem_flags_write(cpu, 0x3002, 0xffff);
    assert_int_equal(s->rflags, IEM_F_VM | IEM_F_IF | 2);
    iem_flags_write(cpu, 0x0202, 0xffff);
    assert_int_equal(s->rflags, IEM_F_VM | IEM_F_IF | IEM_F_VIF | 2);

    /* IRET at CPL 0 loads IOPL, VIF and VIP; at CPL 3 neither IOPL nor IF. */
    s->rflags = 2;
    s->cr4 = 0;
    fx_prot32(f, 0);
    s->rflags = 2;
    iem_flags_iret(cpu, 0x3202 | IEM_F_VIF | IEM_F_VIP, 4, 0);
    assert_int_equal(s->rflags, 0x3202 | IEM_F_VIF | IEM_F_VIP);
    s->rflags = 2;
    iem_flags_iret(cpu, 0x3202 | IEM_F_VIF | IEM_F_NT, 4, 3);
    assert_int_equal(s->rflags, 2 | IEM_F_NT);
}

/* ---- Real mode ---------------------------------------------------------------------------------------------- */

static void test_real_int_iret(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    iem_seg_set_real(f->cpu, CPU_CS, 0);
    iem_seg_set_real(f->cpu, CPU_SS, 0);
    s->gpr[CPU_RSP] = 0x7000;
    s->rip = 0x7c00;
    s->rflags = 2;
    w16(f, 0x21 * 4, 0x8000);
    w16(f, 0x21 * 4 + 2, 0x0000);
    code_at(f, 0x7c00, code_real_int, sizeof(code_real_int));
    code_at(f, 0x8000, code_real_handler, sizeof(code_real_handler));
    iem_update_mode(f->cpu);

    struct iem_step_result r = run(f, 2); /* sti, int 0x21 */
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(s->rip, 0x8000);
    assert_int_equal(s->gpr[CPU_RSP], 0x7000 - 6);
    assert_int_equal(rd(f, 0x7000 - 2, 2), 0x202); /* FLAGS with IF */
    assert_int_equal(rd(f, 0x7000 - 4, 2), 0);     /* CS */
    assert_int_equal(rd(f, 0x7000 - 6, 2), 0x7c03); /* IP after INT */
    assert_false(s->rflags & IEM_F_IF);

    r = run(f, 100);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(s->gpr[CPU_RAX] & 0xffff, 0x1234);
    assert_false(s->gpr[CPU_RBX] & IEM_F_IF); /* IF was clear inside the handler */
    assert_true(s->rflags & IEM_F_IF);
    assert_int_equal(s->gpr[CPU_RSP], 0x7000);
    assert_int_equal(s->rip, 0x7c04);
}

static void test_real_far_jump_and_shadow(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    iem_seg_set_real(f->cpu, CPU_CS, 0);
    iem_seg_set_real(f->cpu, CPU_SS, 0);
    s->rip = 0x7c00;
    code_at(f, 0x7c00, code_ljmp_real, sizeof(code_ljmp_real));
    code_at(f, 0x10020, code_mov_ss, sizeof(code_mov_ss));
    iem_update_mode(f->cpu);
    struct iem_step_result r = run(f, 1);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(s->seg[CPU_CS].sel, 0x1000);
    assert_int_equal(s->seg[CPU_CS].base, 0x10000);
    assert_int_equal(s->rip, 0x20);

    /* MOV SS and POP SS block interrupts for exactly one instruction. */
    s->gpr[CPU_RAX] = 0x0100;
    s->gpr[CPU_RSP] = 0x100;
    w16(f, 0x1000 + 0x100, 0x0200);
    r = run(f, 1);
    assert_int_equal(s->seg[CPU_SS].base, 0x1000);
    assert_true(s->int_shadow);
    r = run(f, 1);
    assert_false(s->int_shadow);
    r = run(f, 1);
    assert_int_equal(s->seg[CPU_SS].sel, 0x200);
    assert_int_equal(s->gpr[CPU_RSP], 0x102);
    assert_true(s->int_shadow);
}

/* ---- Protected mode: interrupt gates, privilege, error codes -------------------------------------------------- */

static void test_prot_int_ring3_to_ring0(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 3);
    idt32(f, 0x80, SEL_K32, K_CODE, 0xee); /* 32-bit interrupt gate, DPL 3 */
    code_at(f, U_CODE, code_user_int80, sizeof(code_user_int80));
    code_at(f, K_CODE, code_k_int80, sizeof(code_k_int80));
    s->rip = U_CODE;

    struct iem_step_result r = run(f, 2);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(f->cpu->cpl, 0);
    assert_int_equal(s->seg[CPU_CS].sel, SEL_K32);
    assert_int_equal(s->seg[CPU_SS].sel, SEL_KDATA);
    assert_int_equal(s->gpr[CPU_RSP], K_STACK - 20);
    assert_int_equal(s->rip, K_CODE);
    assert_false(s->rflags & IEM_F_IF); /* interrupt gate */
    assert_int_equal(rd(f, K_STACK - 4, 4), SEL_UDATA);
    assert_int_equal(rd(f, K_STACK - 8, 4), U_STACK);
    assert_int_equal(rd(f, K_STACK - 12, 4), 0x202);
    assert_int_equal(rd(f, K_STACK - 16, 4), SEL_U32);
    assert_int_equal(rd(f, K_STACK - 20, 4), U_CODE + 7);
    assert_true(rd(f, GDT + SEL_K32, 8) & (1ULL << 40)); /* accessed bit set on load */

    r = run(f, 100);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(s->gpr[CPU_RBX], U_CODE + 7);
    assert_int_equal(s->gpr[CPU_RCX], SEL_U32);
    assert_int_equal(s->gpr[CPU_RDX], 0x202);
    assert_int_equal(s->gpr[CPU_RSI], U_STACK);
    assert_int_equal(s->gpr[CPU_RDI], SEL_UDATA);
    assert_int_equal(s->gpr[CPU_RBP], K_STACK - 20);
    assert_int_equal(f->cpu->cpl, 3);
    assert_int_equal(s->seg[CPU_SS].sel, SEL_UDATA);
    assert_int_equal(s->gpr[CPU_RSP], U_STACK);
    assert_int_equal(s->rip, U_CODE + 7);
    assert_true(s->rflags & IEM_F_IF);
}

struct deliver_arg {
    int vector;
    enum iem_int_kind kind;
    bool has_error;
};

static void try_deliver(struct iem_cpu *cpu, void *arg)
{
    struct deliver_arg *a = arg;
    iem_deliver(cpu, a->vector, a->kind, a->has_error, 0, cpu->s->rip);
}

static void test_prot_gate_errors(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 3);
    idt32(f, 0x80, SEL_K32, K_CODE, 0xee);
    idt32(f, 0x81, SEL_K32, K_CODE, 0x8e); /* DPL 0: INT n from ring 3 is refused */
    idt32(f, 0x82, SEL_K32, K_CODE, 0x6e); /* DPL 3, not present */
    s->rip = U_CODE;

    code_at(f, U_CODE, code_user_int81, sizeof(code_user_int81));
    struct iem_step_result r = run(f, 1);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, 0x81 * 8 + 2); /* IDT bit, no EXT for INT n */
    assert_int_equal(s->rip, U_CODE);
    assert_int_equal(f->cpu->cpl, 3);

    code_at(f, U_CODE, code_user_int82, sizeof(code_user_int82));
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_NP);
    assert_int_equal(r.error, 0x82 * 8 + 2);

    /* An external interrupt skips the DPL check and sets EXT. */
    struct deliver_arg a = {0x82, IEM_INT_EXTERNAL, false};
    assert_int_equal(iemh_try(f->h, try_deliver, &a), IEM_X_NP);
    assert_int_equal(f->cpu->fault_error, 0x82 * 8 + 3);
    a.vector = 0x81;
    assert_int_equal(iemh_try(f->h, try_deliver, &a), -1);
    assert_int_equal(f->cpu->cpl, 0);
    fx_prot32(f, 3);

    /* Past the IDT limit. */
    s->idtr.limit = 0x80 * 8 + 7;
    a.vector = 0x90;
    assert_int_equal(iemh_try(f->h, try_deliver, &a), IEM_X_GP);
    assert_int_equal(f->cpu->fault_error, 0x90 * 8 + 3);
    s->idtr.limit = 256 * 8 - 1;

    /* A bad inner stack in the TSS: #TS with the SS selector (EXT only for external events). */
    w16(f, TSS1 + 8, SEL_K32);
    s->rip = U_CODE;
    code_at(f, U_CODE, code_user_int80, sizeof(code_user_int80));
    r = run(f, 2);
    assert_int_equal(r.vector, IEM_X_TS);
    assert_int_equal(r.error, SEL_K32);
    a.vector = 0x80;
    assert_int_equal(iemh_try(f->h, try_deliver, &a), IEM_X_TS);
    assert_int_equal(f->cpu->fault_error, SEL_K32 | 1);
    w16(f, TSS1 + 8, SEL_NP); /* present check of the new SS: #SS */
    assert_int_equal(iemh_try(f->h, try_deliver, &a), IEM_X_SS);
    assert_int_equal(f->cpu->fault_error, SEL_NP | 1);
    assert_int_equal(f->cpu->cpl, 3); /* nothing changed */
    assert_int_equal(s->gpr[CPU_RSP], U_STACK);
}

static void test_prot_fault_frame(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 0);
    idt32(f, IEM_X_GP, SEL_K32, K_CODE, 0x8f); /* trap gate: IF stays */
    idt32(f, IEM_X_DF, SEL_K32, K_CODE + 0x10, 0x8e);
    s->rip = 0x1234;

    /* A fault pushes RF = 1 and its error code; a trap gate keeps IF. */
    struct deliver_arg a = {IEM_X_GP, IEM_INT_EXCEPTION, true};
    assert_int_equal(iemh_try(f->h, try_deliver, &a), -1);
    assert_int_equal(s->gpr[CPU_RSP], K_STACK - 16);
    assert_int_equal(rd(f, K_STACK - 4, 4), 0x202 | IEM_F_RF);
    assert_int_equal(rd(f, K_STACK - 12, 4), 0x1234);
    assert_int_equal(rd(f, K_STACK - 16, 4), 0);
    assert_true(s->rflags & IEM_F_IF);
    assert_int_equal(s->rip, K_CODE);

    /* #DF: an abort, error code 0, no RF. */
    s->gpr[CPU_RSP] = K_STACK;
    a.vector = IEM_X_DF;
    assert_int_equal(iemh_try(f->h, try_deliver, &a), -1);
    assert_int_equal(s->rip, K_CODE + 0x10);
    assert_int_equal(rd(f, K_STACK - 4, 4) & IEM_F_RF, 0);
    assert_int_equal(rd(f, K_STACK - 16, 4), 0);
    assert_false(s->rflags & IEM_F_IF);
}

struct seg_arg {
    unsigned seg;
    uint16_t sel;
};

static void try_seg_load(struct iem_cpu *cpu, void *arg)
{
    struct seg_arg *a = arg;
    iem_seg_load(cpu, a->seg, a->sel);
}

static int seg_load_vector(struct fx *f, unsigned seg, uint16_t sel)
{
    struct seg_arg a = {seg, sel};
    return iemh_try(f->h, try_seg_load, &a);
}

static void test_seg_load_errors(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 0);

    assert_int_equal(seg_load_vector(f, CPU_DS, SEL_NP), IEM_X_NP);
    assert_int_equal(f->cpu->fault_error, SEL_NP);
    assert_int_equal(seg_load_vector(f, CPU_SS, SEL_NP), IEM_X_SS);
    assert_int_equal(f->cpu->fault_error, SEL_NP);
    assert_int_equal(seg_load_vector(f, CPU_SS, SEL_UDATA), IEM_X_GP); /* RPL 3 at CPL 0 */
    assert_int_equal(f->cpu->fault_error, SEL_UDATA & ~3);
    assert_int_equal(seg_load_vector(f, CPU_SS, SEL_K32), IEM_X_GP);   /* code is no stack */
    assert_int_equal(seg_load_vector(f, CPU_SS, 0), IEM_X_GP);         /* null SS outside 64-bit mode */
    assert_int_equal(f->cpu->fault_error, 0);
    assert_int_equal(seg_load_vector(f, CPU_DS, 0x1000), IEM_X_GP);    /* beyond the GDT limit */
    assert_int_equal(f->cpu->fault_error, 0x1000);
    assert_int_equal(seg_load_vector(f, CPU_DS, SEL_TSS1), IEM_X_GP);  /* system descriptor */
    assert_int_equal(seg_load_vector(f, CPU_DS, 0x0c), IEM_X_GP);      /* LDT selector, no LDT */
    assert_int_equal(s->seg[CPU_DS].sel, SEL_KDATA);                   /* failed loads change nothing */

    /* A readable code segment and a null selector are fine for DS. */
    assert_int_equal(seg_load_vector(f, CPU_DS, SEL_K32), -1);
    assert_int_equal(s->seg[CPU_DS].base, 0);
    assert_int_equal(seg_load_vector(f, CPU_ES, 0), -1);
    assert_true(s->seg[CPU_ES].attr & CPU_SEG_ATTR_UNUSABLE);

    /* At CPL 3 a DPL 0 data segment is out of reach. */
    fx_prot32(f, 3);
    assert_int_equal(seg_load_vector(f, CPU_DS, SEL_KDATA | 3), IEM_X_GP);
    assert_int_equal(f->cpu->fault_error, SEL_KDATA);

    /* 64-bit mode: a null SS is allowed at CPL 0 (RPL = CPL), FS keeps a zero base. */
    fx_long(f, 0);
    assert_int_equal(seg_load_vector(f, CPU_SS, 0), -1);
    assert_true(s->seg[CPU_SS].attr & CPU_SEG_ATTR_UNUSABLE);
    assert_int_equal(f->cpu->cpl, 0);
    assert_int_equal(seg_load_vector(f, CPU_SS, 3), IEM_X_GP);
}

/* ---- Call gate, task switch ----------------------------------------------------------------------------------- */

static void test_call_gate_ring3_to_ring0(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 3);
    code_at(f, U_CODE, code_user_callgate, sizeof(code_user_callgate));
    code_at(f, K_CODE + 0x100, code_k_callgate, sizeof(code_k_callgate));
    s->rip = U_CODE;

    struct iem_step_result r = run(f, 3);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(f->cpu->cpl, 0);
    assert_int_equal(s->seg[CPU_CS].sel, SEL_K32);
    assert_int_equal(s->seg[CPU_SS].sel, SEL_KDATA);
    assert_int_equal(s->rip, K_CODE + 0x100);
    assert_int_equal(s->gpr[CPU_RSP], K_STACK - 24);
    assert_int_equal(rd(f, K_STACK - 4, 4), SEL_UDATA);
    assert_int_equal(rd(f, K_STACK - 8, 4), U_STACK - 8);
    assert_int_equal(rd(f, K_STACK - 12, 4), 0x11111111);
    assert_int_equal(rd(f, K_STACK - 16, 4), 0x22222222);
    assert_int_equal(rd(f, K_STACK - 20, 4), SEL_U32);
    assert_int_equal(rd(f, K_STACK - 24, 4), U_CODE + 17);

    r = run(f, 100);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(s->gpr[CPU_RAX], 0x22222222);
    assert_int_equal(s->gpr[CPU_RBX], 0x11111111);
    assert_int_equal(s->gpr[CPU_RCX], U_STACK - 8);
    assert_int_equal(f->cpu->cpl, 3);
    assert_int_equal(s->seg[CPU_CS].sel, SEL_U32);
    assert_int_equal(s->gpr[CPU_RSP], U_STACK); /* RETF 8 released the parameters on both stacks */
    assert_int_equal(s->rip, U_CODE + 17);

    /* A gate whose DPL is below the CPL is refused with the gate's selector. */
    gdt_set(f, 9, gate_desc(SEL_K32, K_CODE + 0x100, 0x8c, 2));
    s->rip = U_CODE + 10;
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, SEL_GATE & ~3);
}

static void test_task_switch(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 0);
    /* The second task: 32-bit TSS image (SDM vol. 3A, figure 7-2). */
    w32(f, TSS2 + 0x20, T2_CODE);
    w32(f, TSS2 + 0x24, 0x2);
    w32(f, TSS2 + 0x28, 0xaaaa);
    w32(f, TSS2 + 0x38, T2_STACK);
    w16(f, TSS2 + 0x48, SEL_KDATA);
    w16(f, TSS2 + 0x4c, SEL_K32);
    w16(f, TSS2 + 0x50, SEL_KDATA);
    w16(f, TSS2 + 0x54, SEL_KDATA);
    idt32(f, 0x40, SEL_TSS2, 0, 0x85); /* task gate */
    code_at(f, K_CODE, code_task1, sizeof(code_task1));
    code_at(f, T2_CODE, code_task2, sizeof(code_task2));
    s->rip = K_CODE;

    struct iem_step_result r = run(f, 3); /* mov, mov, call 0x30:0 */
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(s->seg[CPU_TR].sel, SEL_TSS2);
    assert_int_equal(s->rip, T2_CODE);
    assert_int_equal(s->gpr[CPU_RAX], 0xaaaa);
    assert_int_equal(s->gpr[CPU_RSP], T2_STACK);
    assert_true(s->rflags & IEM_F_NT);
    assert_true(s->cr0 & IEM_CR0_TS);
    assert_int_equal(rd(f, TSS2, 2), SEL_TSS1);                     /* back link */
    assert_int_equal((rd(f, GDT + SEL_TSS2, 8) >> 40) & 0xf, 0xb);  /* new task busy */
    assert_int_equal((rd(f, GDT + SEL_TSS1, 8) >> 40) & 0xf, 0xb);  /* CALL keeps the old one busy */
    assert_int_equal(rd(f, TSS1 + 0x20, 4), K_CODE + 17);           /* old EIP: after the CALL */
    assert_int_equal(rd(f, TSS1 + 0x28, 4), 1);
    assert_int_equal(rd(f, TSS1 + 0x2c, 4), 2);
    assert_int_equal(rd(f, TSS1 + 0x4c, 2), SEL_K32);

    r = run(f, 2); /* mov ecx, 0x55; iret (nested task return) */
    assert_int_equal(s->seg[CPU_TR].sel, SEL_TSS1);
    assert_int_equal(s->rip, K_CODE + 17);
    assert_int_equal(s->gpr[CPU_RAX], 1);
    assert_int_equal(s->gpr[CPU_RCX], 2);
    assert_false(s->rflags & IEM_F_NT);
    assert_int_equal((rd(f, GDT + SEL_TSS2, 8) >> 40) & 0xf, 0x9); /* IRET frees the task */
    assert_int_equal(rd(f, TSS2 + 0x2c, 4), 0x55);
    assert_int_equal(rd(f, TSS2 + 0x20, 4), T2_CODE + 6);
    assert_false(rd(f, TSS2 + 0x24, 4) & IEM_F_NT);

    /* INT 0x40 through the task gate, then back with IRET. */
    r = run(f, 100);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(s->seg[CPU_TR].sel, SEL_TSS1);
    assert_int_equal(s->gpr[CPU_RDX], 3);
    assert_int_equal(s->rip, K_CODE + 25);
    assert_int_equal(rd(f, TSS1 + 0x20, 4), K_CODE + 24); /* saved by the gate switch: after INT */
    assert_int_equal(rd(f, TSS2 + 0x2c, 4), 0x55);

    /* A busy TSS cannot be called: #GP(selector). */
    s->halted = false;
    s->rip = K_CODE + 10;
    gdt_set(f, 6, seg_desc(TSS2, 0x67, 0x8b, 0));
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, SEL_TSS2);
    /* A TSS limit below 67h: #TS(selector). */
    gdt_set(f, 6, seg_desc(TSS2, 0x50, 0x89, 0));
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_TS);
    assert_int_equal(r.error, SEL_TSS2);
}

/* ---- IA-32e: IST, SYSCALL/SYSRET ------------------------------------------------------------------------------------ */

static void test_long_int_ist(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_long(f, 3);
    idt64(f, 0x30, SEL_K64, K_CODE, 0xee, 1);
    code_at(f, U_CODE, code_user64_int30, sizeof(code_user64_int30));
    code_at(f, K_CODE, code_k64_iretq, sizeof(code_k64_iretq));
    s->rip = U_CODE;

    struct iem_step_result r = run(f, 1);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(f->cpu->mode, IEM_MODE_LONG64);
    assert_int_equal(f->cpu->cpl, 0);
    assert_int_equal(s->rip, K_CODE);
    assert_int_equal(s->gpr[CPU_RSP], IST_STACK - 40); /* IST1 aligned down to 16 bytes */
    assert_int_equal(s->seg[CPU_SS].sel, 0);          /* null SS, RPL = new CPL */
    assert_true(s->seg[CPU_SS].attr & CPU_SEG_ATTR_UNUSABLE);
    assert_int_equal(rd(f, IST_STACK - 8, 8), SEL_UDATA);
    assert_int_equal(rd(f, IST_STACK - 16, 8), U_STACK);
    assert_int_equal(rd(f, IST_STACK - 24, 8), 0x202);
    assert_int_equal(rd(f, IST_STACK - 32, 8), SEL_U64);
    assert_int_equal(rd(f, IST_STACK - 40, 8), U_CODE + 2);
    assert_false(s->rflags & IEM_F_IF);

    r = run(f, 100);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(f->cpu->cpl, 3);
    assert_int_equal(s->seg[CPU_CS].sel, SEL_U64);
    assert_int_equal(s->seg[CPU_SS].sel, SEL_UDATA);
    assert_int_equal(s->gpr[CPU_RSP], U_STACK);
    assert_int_equal(s->rip, U_CODE + 2);
    assert_true(s->rflags & IEM_F_IF);

    /* A 32-bit code segment behind a 64-bit gate: #GP(selector | EXT) for an external event. */
    idt64(f, 0x31, SEL_K32, K_CODE, 0x8e, 0);
    struct deliver_arg a = {0x31, IEM_INT_EXTERNAL, false};
    assert_int_equal(iemh_try(f->h, try_deliver, &a), IEM_X_GP);
    assert_int_equal(f->cpu->fault_error, SEL_K32 | 1);
    /* Without IST the stack comes from RSP0. */
    idt64(f, 0x32, SEL_K64, K_CODE, 0x8e, 0);
    a.vector = 0x32;
    assert_int_equal(iemh_try(f->h, try_deliver, &a), -1);
    assert_int_equal(s->gpr[CPU_RSP], K_STACK - 40);
}

static void test_syscall_sysret(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_long(f, 3);
    s->efer |= IEM_EFER_SCE;
    s->star = ((uint64_t)0x1b << 48) | ((uint64_t)SEL_K64 << 32);
    s->lstar = K_CODE;
    s->sfmask = IEM_F_IF | IEM_F_TF;
    code_at(f, U_CODE, code_user64_syscall, sizeof(code_user64_syscall));
    code_at(f, K_CODE, code_k64_sysret, sizeof(code_k64_sysret));
    s->rip = U_CODE;

    struct iem_step_result r = run(f, 2);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(f->cpu->cpl, 0);
    assert_int_equal(s->seg[CPU_CS].sel, SEL_K64);
    assert_int_equal(s->seg[CPU_SS].sel, SEL_K64 + 8);
    assert_int_equal(s->rip, K_CODE);
    assert_int_equal(s->gpr[CPU_RCX], U_CODE + 7);
    assert_int_equal(s->gpr[CPU_R11], 0x202);
    assert_false(s->rflags & IEM_F_IF);

    r = run(f, 100);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(f->cpu->cpl, 3);
    assert_int_equal(f->cpu->mode, IEM_MODE_LONG64);
    assert_int_equal(s->seg[CPU_CS].sel, 0x2b); /* STAR[63:48] + 16, RPL 3 */
    assert_int_equal(s->seg[CPU_SS].sel, 0x23); /* STAR[63:48] + 8, RPL 3 */
    assert_int_equal(s->rip, U_CODE + 7);
    assert_int_equal(s->gpr[CPU_RDX], U_CODE + 7);
    assert_int_equal(s->rflags, 0x202);

    /* SYSRET with a non-canonical RCX faults at CPL 0 (SDM vol. 2B). */
    fx_long(f, 0);
    s->efer |= IEM_EFER_SCE;
    s->gpr[CPU_RCX] = 0x0000800000000000ULL;
    s->rip = K_CODE + 3;
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, 0);
    assert_int_equal(f->cpu->cpl, 0);
    /* SYSCALL without EFER.SCE: #UD. */
    fx_long(f, 3);
    s->rip = U_CODE + 5;
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(s->rip, U_CODE + 5);
}

static void test_sysenter_sysexit(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 3);
    s->sysenter_cs = SEL_K32;
    s->sysenter_esp = K_STACK;
    s->sysenter_eip = K_CODE;
    s->gpr[CPU_RDX] = U_CODE + 2;
    s->gpr[CPU_RCX] = U_STACK - 0x10;
    code_at(f, U_CODE, code_sysenter, sizeof(code_sysenter));
    code_at(f, K_CODE, code_k_sysexit, sizeof(code_k_sysexit));
    s->rip = U_CODE;

    struct iem_step_result r = run(f, 1);
    assert_int_equal(f->cpu->cpl, 0);
    assert_int_equal(s->seg[CPU_CS].sel, SEL_K32);
    assert_int_equal(s->seg[CPU_SS].sel, SEL_KDATA);
    assert_int_equal(s->gpr[CPU_RSP], K_STACK);
    assert_int_equal(s->rip, K_CODE);
    assert_false(s->rflags & IEM_F_IF);

    r = run(f, 100);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(f->cpu->cpl, 3);
    assert_int_equal(s->seg[CPU_CS].sel, SEL_U32);
    assert_int_equal(s->seg[CPU_SS].sel, SEL_UDATA);
    assert_int_equal(s->gpr[CPU_RSP], U_STACK - 0x10);
    assert_int_equal(s->rip, U_CODE + 2);

    /* SYSENTER with a null IA32_SYSENTER_CS: #GP(0). */
    s->sysenter_cs = 0;
    s->rip = U_CODE;
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(s->rip, U_CODE);
}

/* ---- Control and debug registers --------------------------------------------------------------------------------- */

static void test_cr_checks(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 0);

    code_at(f, K_CODE, code_cr4_bad, sizeof(code_cr4_bad));
    s->rip = K_CODE;
    struct iem_step_result r = run(f, 2);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, 0);
    assert_int_equal(s->rip, K_CODE + 5);
    assert_int_equal(s->cr4, 0);

    code_at(f, K_CODE, code_cr0_pg_nope, sizeof(code_cr0_pg_nope));
    s->rip = K_CODE;
    r = run(f, 2);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_true(s->cr0 & IEM_CR0_PE);

    code_at(f, K_CODE, code_cr1, sizeof(code_cr1));
    s->rip = K_CODE;
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_UD);

    /* DR4 aliases DR6 until CR4.DE; then it is #UD. */
    code_at(f, K_CODE, code_mov_dr, sizeof(code_mov_dr));
    s->rip = K_CODE;
    s->gpr[CPU_RAX] = 0x1;
    r = run(f, 2);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(s->dr[0], 1);
    assert_int_equal(s->dr[6], 0xffff0ff1u); /* reserved bits read as 1 */
    s->cr4 = IEM_CR4_DE;
    s->rip = K_CODE + 3;
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_UD);
    /* DR7.GD: the next DR access raises #DB with DR6.BD and clears GD. */
    s->cr4 = 0;
    s->dr[7] = 0x2400;
    s->rip = K_CODE;
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_DB);
    assert_true(s->dr[6] & (1u << 13));
    assert_false(s->dr[7] & (1u << 13));

    /* CPL 3 may not read CR0. */
    fx_prot32(f, 3);
    code_at(f, U_CODE, code_rd_cr0, sizeof(code_rd_cr0));
    s->rip = U_CODE;
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, 0);
}

static void try_cr0_clear_pg(struct iem_cpu *cpu, void *arg)
{
    (void)arg;
    iem_cr0_write(cpu, cpu->s->cr0 & ~(uint64_t)IEM_CR0_PG);
}

static void try_cr0_high(struct iem_cpu *cpu, void *arg)
{
    (void)arg;
    iem_cr0_write(cpu, cpu->s->cr0 | (1ULL << 32));
}

static void test_cr0_enables_long_mode(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 0);
    fx_paging(f);
    code_at(f, K_CODE, code_to_long, sizeof(code_to_long));
    code_at(f, 0x4400, code_long_entry, sizeof(code_long_entry));
    s->rip = K_CODE;
    struct iem_step_result r = run(f, 100);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_true(s->efer & IEM_EFER_LMA);
    assert_int_equal(f->cpu->mode, IEM_MODE_LONG64);
    assert_int_equal(s->seg[CPU_CS].sel, SEL_K64);
    assert_int_equal(s->gpr[CPU_RAX], 0x123456789ULL);

    /* 64-bit mode cannot clear PG, and CR0 bits 63:32 are reserved. */
    assert_int_equal(iemh_try(f->h, try_cr0_clear_pg, NULL), IEM_X_GP);
    assert_int_equal(iemh_try(f->h, try_cr0_high, NULL), IEM_X_GP);
    assert_true(s->cr0 & IEM_CR0_PG);
    assert_true(s->efer & IEM_EFER_LMA);
}

static void test_cr0_long_mode_needs_pae(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 0);
    fx_paging(f);
    code_at(f, K_CODE, code_to_long + TO_LONG_CR4_BYTES, sizeof(code_to_long) - TO_LONG_CR4_BYTES);
    s->rip = K_CODE;
    struct iem_step_result r = run(f, 100);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(s->rip, K_CODE + TO_LONG_MOV_CR0 - TO_LONG_CR4_BYTES);
    assert_true(s->efer & IEM_EFER_LME);
    assert_false(s->efer & IEM_EFER_LMA);
    assert_false(s->cr0 & IEM_CR0_PG);
}

/* ---- Descriptor instructions ------------------------------------------------------------------------------------- */

static void test_lar_lsl_verr(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;
    fx_prot32(f, 0);
    code_at(f, K_CODE, code_lar, sizeof(code_lar));
    s->rip = K_CODE;
    s->gpr[CPU_RBX] = SEL_UDATA;
    s->gpr[CPU_RAX] = s->gpr[CPU_RCX] = 0;
    struct iem_step_result r = run(f, 3);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(s->gpr[CPU_RAX], 0x00c0f300);
    assert_int_equal(s->gpr[CPU_RCX], 0xffffffffu);
    assert_true(s->rflags & IEM_F_ZF);

    /* Beyond the GDT: ZF = 0 and the destination is unchanged. */
    s->gpr[CPU_RBX] = 0x1000;
    s->gpr[CPU_RAX] = 0x77;
    s->rip = K_CODE;
    r = run(f, 1);
    assert_false(s->rflags & IEM_F_ZF);
    assert_int_equal(s->gpr[CPU_RAX], 0x77);

    /* CPL 3 cannot see a DPL 0 data segment, but LAR accepts a TSS it may see. */
    fx_prot32(f, 3);
    code_at(f, U_CODE, code_lar, sizeof(code_lar));
    s->gpr[CPU_RBX] = SEL_KDATA | 3;
    s->rip = U_CODE;
    r = run(f, 1);
    assert_false(s->rflags & IEM_F_ZF);
    gdt_set(f, 6, seg_desc(TSS2, 0x67, 0xe9, 0));
    s->gpr[CPU_RBX] = SEL_TSS2 | 3;
    s->rip = U_CODE;
    r = run(f, 2);
    assert_true(s->rflags & IEM_F_ZF);
    assert_int_equal(s->gpr[CPU_RCX], 0x67);
}

/* ---- Virtual-8086 mode -------------------------------------------------------------------------------------------- */

/* Protected mode with a V86 task at 0000:7C00 (SS:SP 0000:7000), the given IOPL and CR4.VME. */
static void fx_v86(struct fx *f, unsigned iopl, bool vme)
{
    struct cpu_state *s = f->s;
    fx_prot32(f, 0);
    s->cr4 = vme ? IEM_CR4_VME : 0;
    s->rflags = IEM_F_VM | ((uint64_t)iopl << 12) | 2;
    for (unsigned i = CPU_ES; i <= CPU_GS; i++)
        iem_seg_set_real(f->cpu, i, 0);
    s->gpr[CPU_RSP] = 0x7000;
    s->rip = 0x7c00;
    code_at(f, 0x7c00, code_v86_int, sizeof(code_v86_int));
    idt32(f, 0x21, SEL_K32, K_CODE, 0xee);
    code_at(f, K_CODE, code_iret32, sizeof(code_iret32));
    iem_update_mode(f->cpu);
}

static void test_v86_interrupts(void **state)
{
    struct fx *f = *state;
    struct cpu_state *s = f->s;

    /* IOPL 0 without VME: INT n is #GP(0). */
    fx_v86(f, 0, false);
    assert_int_equal(f->cpu->mode, IEM_MODE_V86);
    struct iem_step_result r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, 0);

    /* IOPL 3: through the protected-mode IDT to ring 0 with the V86 frame, and back with IRET. */
    fx_v86(f, 3, false);
    r = run(f, 1);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(f->cpu->mode, IEM_MODE_PROT);
    assert_int_equal(f->cpu->cpl, 0);
    assert_false(s->rflags & IEM_F_VM);
    assert_int_equal(s->gpr[CPU_RSP], K_STACK - 36);
    assert_true(s->seg[CPU_DS].attr & CPU_SEG_ATTR_UNUSABLE);
    assert_int_equal(rd(f, K_STACK - 20, 4), 0);      /* SS */
    assert_int_equal(rd(f, K_STACK - 24, 4), 0x7000); /* ESP */
    assert_true(rd(f, K_STACK - 28, 4) & IEM_F_VM);   /* EFLAGS */
    assert_int_equal(rd(f, K_STACK - 36, 4), 0x7c02); /* EIP */
    r = run(f, 1);
    assert_int_equal(f->cpu->mode, IEM_MODE_V86);
    assert_int_equal(s->rip, 0x7c02);
    assert_int_equal(s->gpr[CPU_RSP], 0x7000);
    assert_int_equal(s->seg[CPU_DS].base, 0);
    r = run(f, 1); /* HLT at CPL 3 */
    assert_int_equal(r.vector, IEM_X_GP);

    /* VME with the redirection bit clear: the V86 task's own IVT; IF in the image is VIF, IOPL reads 3. */
    fx_v86(f, 0, true);
    s->rflags |= IEM_F_VIF;
    w16(f, 0x21 * 4, 0x8000);
    w16(f, 0x21 * 4 + 2, 0);
    code_at(f, 0x8000, code_iret16, sizeof(code_iret16));
    r = run(f, 1);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(f->cpu->mode, IEM_MODE_V86);
    assert_int_equal(s->rip, 0x8000);
    assert_int_equal(s->gpr[CPU_RSP], 0x7000 - 6);
    assert_int_equal(rd(f, 0x7000 - 2, 2), 0x3202);
    assert_false(s->rflags & IEM_F_VIF);
    r = run(f, 1); /* IRET with VME: VIF from the image's IF */
    assert_int_equal(s->rip, 0x7c02);
    assert_true(s->rflags & IEM_F_VIF);
    assert_int_equal(s->gpr[CPU_RSP], 0x7000);

    /* The redirection bit set with IOPL < 3: #GP(0). */
    fx_v86(f, 0, true);
    w16(f, TSS1 + 0x88 + 4, 1u << 1); /* bit 0x21 */
    r = run(f, 1);
    assert_int_equal(r.vector, IEM_X_GP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seg_from_desc),
        cmocka_unit_test_setup_teardown(test_cpuid_values, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_msr_efer_and_bases, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_msr_pat_mtrr, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_msr_tsc_misc, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_flags_write_rules, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_int_iret, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_real_far_jump_and_shadow, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prot_int_ring3_to_ring0, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prot_gate_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prot_fault_frame, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_seg_load_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_call_gate_ring3_to_ring0, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_task_switch, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_long_int_ist, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_syscall_sysret, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sysenter_sysexit, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cr_checks, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cr0_enables_long_mode, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cr0_long_mode_needs_pae, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lar_lsl_verr, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_v86_interrupts, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
