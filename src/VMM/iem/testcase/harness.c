/* harness.c - interpreter test harness: a VM on the software CPU with RAM, mode setups and stepping (see harness.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../iem-core.h"

/* The views of vCPUs 1.. share vCPU 0's VM: only the first view owns it. */
static struct iemh *iemh_view(struct iemh *h0, unsigned index)
{
    struct iemh *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    *h = *h0;
    h->vcpu = vm_get_vcpu(h->vm, index);
    h->cpu = iem_cpu_of(h->vcpu);
    assert_non_null(h->cpu);
    h->s = vcpu_state(h->vcpu);
    h->owns_vm = false;
    return h;
}

void iemh_create_smp(uint64_t ram_bytes, unsigned n, struct iemh **views)
{
    views[0] = iemh_create_n(ram_bytes, n);
    for (unsigned i = 1; i < n; i++)
        views[i] = iemh_view(views[0], i);
}

void iemh_destroy_smp(struct iemh **views, unsigned n)
{
    for (unsigned i = n; i-- > 0;)
        iemh_destroy(views[i]);
}

struct iemh *iemh_create(uint64_t ram_bytes)
{
    return iemh_create_n(ram_bytes, 1);
}

struct iemh *iemh_create_n(uint64_t ram_bytes, unsigned vcpus)
{
    if (ram_bytes == 0)
        ram_bytes = 4u << 20;
    struct iemh *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->owns_vm = true;
    struct vm_params p = {
        .name = "iem-test",
        .ram_bytes = ram_bytes,
        .vcpu_count = vcpus,
        .exec = VM_EXEC_INTERP, /* the reference; VIREO_TEST_REC below adds the recompiler */
        .clock_mode = VM_CLOCK_MANUAL,
    };
    assert_int_equal(vm_create(&p, &h->vm), 0);
    assert_int_equal(mem_region_create_ram(h->vm, "ram", ram_bytes, &h->ram_region), 0);
    assert_int_equal(mem_region_map(h->ram_region, 0, 0), 0);
    h->ram = mem_region_hva(h->ram_region);
    h->ram_bytes = ram_bytes;
    h->vcpu = vm_get_vcpu(h->vm, 0);
    h->cpu = iem_cpu_of(h->vcpu);
    assert_non_null(h->cpu);
    h->s = vcpu_state(h->vcpu);
    /* VIREO_TEST_REC=N: every test runs on the recompiler, blocks translated after N interpreted runs. */
    const char *rec = getenv("VIREO_TEST_REC");
    if (rec && *rec)
        assert_int_equal(iem_rec_enable(h->cpu, true, (unsigned)strtoul(rec, NULL, 10)), 0);
    iemh_sync(h);
    return h;
}

void iemh_destroy(struct iemh *h)
{
    if (!h)
        return;
    if (h->owns_vm)
        vm_destroy(h->vm);
    free(h);
}

void iemh_write(struct iemh *h, uint64_t gpa, const void *buf, size_t len)
{
    assert_int_equal(mem_write(h->vm, gpa, buf, len), 0);
}

void iemh_read(struct iemh *h, uint64_t gpa, void *buf, size_t len)
{
    assert_int_equal(mem_read(h->vm, gpa, buf, len), 0);
}

uint64_t iemh_read64(struct iemh *h, uint64_t gpa)
{
    uint64_t v;
    iemh_read(h, gpa, &v, sizeof(v));
    return v;
}

uint32_t iemh_read32(struct iemh *h, uint64_t gpa)
{
    uint32_t v;
    iemh_read(h, gpa, &v, sizeof(v));
    return v;
}

void iemh_sync(struct iemh *h)
{
    assert_int_equal(g_cpu_backend_iem.state_put(h->vcpu, h->s), 0);
}

/* A segment descriptor (SDM vol. 3A 3.4.5): attr holds bytes 5-6 as in cpu_seg.attr. */
static uint64_t make_desc(uint32_t base, uint32_t limit, uint32_t attr)
{
    uint64_t d = limit & 0xffff;
    d |= (uint64_t)(base & 0xffffff) << 16;
    d |= (uint64_t)(attr & 0xff) << 40;
    d |= (uint64_t)((limit >> 16) & 0xf) << 48;
    d |= (uint64_t)((attr >> 12) & 0xf) << 52;
    d |= (uint64_t)(base >> 24) << 56;
    return d;
}

#define A_CODE (CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0xb)
#define A_DATA (CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0x3)
#define A_FLAT (CPU_SEG_ATTR_DB | CPU_SEG_ATTR_G)
#define A_DPL3 (3u << CPU_SEG_ATTR_DPL_SHIFT)

static void set_seg(struct cpu_seg *sg, uint16_t sel, uint64_t base, uint32_t limit, uint32_t attr)
{
    sg->sel = sel;
    sg->base = base;
    sg->limit = limit;
    sg->attr = attr;
}

static void write_gdt(struct iemh *h, bool long_tss)
{
    uint64_t gdt[12] = { 0 };
    gdt[IEMH_SEL_CODE32 >> 3] = make_desc(0, 0xfffff, A_CODE | A_FLAT);
    gdt[IEMH_SEL_DATA32 >> 3] = make_desc(0, 0xfffff, A_DATA | A_FLAT);
    gdt[IEMH_SEL_CODE64 >> 3] = make_desc(0, 0xfffff, A_CODE | CPU_SEG_ATTR_L | CPU_SEG_ATTR_G);
    gdt[IEMH_SEL_CODE16 >> 3] = make_desc(0, 0xffff, A_CODE);
    gdt[IEMH_SEL_DATA16 >> 3] = make_desc(0, 0xffff, A_DATA);
    gdt[IEMH_SEL_CODE32_3 >> 3] = make_desc(0, 0xfffff, A_CODE | A_FLAT | A_DPL3);
    gdt[IEMH_SEL_DATA32_3 >> 3] = make_desc(0, 0xfffff, A_DATA | A_FLAT | A_DPL3);
    gdt[IEMH_SEL_CODE64_3 >> 3] = make_desc(0, 0xfffff, A_CODE | CPU_SEG_ATTR_L | CPU_SEG_ATTR_G | A_DPL3);
    gdt[IEMH_SEL_TSS >> 3] = make_desc(IEMH_TSS_GPA, 0x67, CPU_SEG_ATTR_P | 0xb);
    if (long_tss)
        gdt[(IEMH_SEL_TSS >> 3) + 1] = 0; /* upper half of the 16-byte descriptor: base 63:32 = 0 */
    iemh_write(h, IEMH_GDT_GPA, gdt, sizeof(gdt));
    uint8_t tss[0x68] = { 0 };
    tss[0x66] = 0x68; /* I/O bitmap base just past the limit */
    iemh_write(h, IEMH_TSS_GPA, tss, sizeof(tss));
    uint8_t zero[256 * 16] = { 0 };
    iemh_write(h, IEMH_IDT_GPA, zero, sizeof(zero));
    h->s->gdtr.base = IEMH_GDT_GPA;
    h->s->gdtr.limit = sizeof(gdt) - 1;
    set_seg(&h->s->seg[CPU_LDTR], 0, 0, 0, CPU_SEG_ATTR_UNUSABLE | 0x2);
    set_seg(&h->s->seg[CPU_TR], IEMH_SEL_TSS, IEMH_TSS_GPA, 0x67, CPU_SEG_ATTR_P | 0xb);
}

void iemh_mode_real(struct iemh *h, uint16_t cs, uint16_t ip, uint16_t ss, uint16_t sp)
{
    struct cpu_state *s = h->s;
    cpu_state_reset(s);
    for (int i = 0; i < CPU_LDTR; i++)
        set_seg(&s->seg[i], 0, 0, 0xffff, A_DATA);
    set_seg(&s->seg[CPU_CS], cs, (uint64_t)cs << 4, 0xffff, A_CODE);
    set_seg(&s->seg[CPU_SS], ss, (uint64_t)ss << 4, 0xffff, A_DATA);
    s->rip = ip;
    s->gpr[CPU_RSP] = sp;
    s->gpr[CPU_RDX] = 0;
    s->idtr.base = 0;
    s->idtr.limit = 0x3ff;
    iemh_sync(h);
}

void iemh_mode_prot32(struct iemh *h, uint32_t eip, uint32_t esp)
{
    struct cpu_state *s = h->s;
    cpu_state_reset(s);
    s->gpr[CPU_RDX] = 0;
    write_gdt(h, false);
    s->cr0 = IEM_CR0_PE | IEM_CR0_MP | CPU_CR0_ET | IEM_CR0_NE;
    s->cr4 = IEM_CR4_OSFXSR | IEM_CR4_OSXMMEXCPT;
    s->efer = 0;
    set_seg(&s->seg[CPU_CS], IEMH_SEL_CODE32, 0, 0xffffffffu, A_CODE | A_FLAT);
    for (int i = 0; i < CPU_LDTR; i++)
        if (i != CPU_CS)
            set_seg(&s->seg[i], IEMH_SEL_DATA32, 0, 0xffffffffu, A_DATA | A_FLAT);
    s->idtr.base = IEMH_IDT_GPA;
    s->idtr.limit = 256 * 8 - 1;
    s->rip = eip;
    s->gpr[CPU_RSP] = esp;
    iemh_sync(h);
}

void iemh_mode_long64(struct iemh *h, uint64_t rip, uint64_t rsp)
{
    struct cpu_state *s = h->s;
    cpu_state_reset(s);
    s->gpr[CPU_RDX] = 0;
    write_gdt(h, true);
    /* PML4 -> PDPT -> 4 page directories of 2 MiB pages: identity 0-4 GiB. */
    uint64_t pml4[512] = { 0 }, pdpt[512] = { 0 }, pd[512];
    pml4[0] = (IEMH_PT_GPA + 0x1000) | 0x7;
    for (int i = 0; i < 4; i++)
        pdpt[i] = (IEMH_PT_GPA + 0x2000 + i * 0x1000u) | 0x7;
    iemh_write(h, IEMH_PT_GPA, pml4, sizeof(pml4));
    iemh_write(h, IEMH_PT_GPA + 0x1000, pdpt, sizeof(pdpt));
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 512; j++)
            pd[j] = ((uint64_t)i << 30) + ((uint64_t)j << 21) + 0x87;
        iemh_write(h, IEMH_PT_GPA + 0x2000 + i * 0x1000u, pd, sizeof(pd));
    }
    s->cr3 = IEMH_PT_GPA;
    s->cr4 = IEM_CR4_PAE | IEM_CR4_OSFXSR | IEM_CR4_OSXMMEXCPT;
    s->efer = IEM_EFER_LME | IEM_EFER_LMA | IEM_EFER_NXE | IEM_EFER_SCE;
    s->cr0 = IEM_CR0_PE | IEM_CR0_MP | CPU_CR0_ET | IEM_CR0_NE | IEM_CR0_WP | IEM_CR0_PG;
    set_seg(&s->seg[CPU_CS], IEMH_SEL_CODE64, 0, 0xffffffffu, A_CODE | CPU_SEG_ATTR_L | CPU_SEG_ATTR_G);
    for (int i = 0; i < CPU_LDTR; i++)
        if (i != CPU_CS)
            set_seg(&s->seg[i], IEMH_SEL_DATA32, 0, 0xffffffffu, A_DATA | A_FLAT);
    s->idtr.base = IEMH_IDT_GPA;
    s->idtr.limit = 256 * 16 - 1;
    s->rip = rip;
    s->gpr[CPU_RSP] = rsp;
    iemh_sync(h);
}

void iemh_map_4k(struct iemh *h)
{
    uint64_t pt_gpa = h->ram_bytes - (1u << 20);
    uint64_t pd0 = IEMH_PT_GPA + 0x2000;
    for (uint64_t i = 0; i < pt_gpa >> 21; i++) {
        uint64_t pt[512];
        for (int j = 0; j < 512; j++)
            pt[j] = (i << 21) + ((uint64_t)j << 12) + 0x7;
        iemh_write(h, pt_gpa + i * 0x1000, pt, sizeof(pt));
        uint64_t pde = (pt_gpa + i * 0x1000) | 0x7;
        iemh_write(h, pd0 + i * 8, &pde, 8);
    }
    iemh_sync(h);
}

void iemh_run(struct iemh *h, uint64_t max_insns, struct iem_step_result *res)
{
    iem_step(h->cpu, max_insns, res);
}

void iemh_exec(struct iemh *h, uint64_t gpa, const void *code, size_t len, uint64_t max_insns,
               struct iem_step_result *res)
{
    iemh_write(h, gpa, code, len);
    h->s->rip = gpa - h->s->seg[CPU_CS].base;
    h->s->halted = false;
    iem_step(h->cpu, max_insns, res);
}

int iemh_try(struct iemh *h, void (*fn)(struct iem_cpu *cpu, void *arg), void *arg)
{
    return iem_core_try(h->cpu, fn, arg);
}

struct mem_region *iemh_mmio_add(struct iemh *h, uint64_t gpa, uint64_t size, const struct io_ops *ops, void *opaque)
{
    struct mem_region *r;
    if (mem_region_create_mmio(h->vm, "test-mmio", size, ops, opaque, &r) != 0)
        return NULL;
    if (mem_region_map(r, gpa, 10) != 0) {
        mem_region_destroy(r);
        return NULL;
    }
    return r;
}
