/* kvm-state.c - converts struct cpu_state to and from KVM's register ioctls (REGS, SREGS, XSAVE, MSRs, events). */

/*
 * Direction is always explicit: kvm_state_get copies KVM -> core, kvm_state_put
 * core -> KVM.  Pieces:
 *
 *  - KVM_GET/SET_REGS and SREGS: general registers, segments (KVM's unpacked
 *    attribute bytes <-> CPU_SEG_ATTR_*), descriptor tables, control registers,
 *    EFER, APIC base.
 *  - KVM_GET/SET_XSAVE (standard, non-compacted format; SDM vol. 1, 13.4) for x87,
 *    SSE and the upper YMM halves; KVM_GET/SET_FPU where XSAVE is missing.
 *  - KVM_GET/SET_XCRS for XCR0, KVM_GET/SET_DEBUGREGS for DR0-3/6/7.
 *  - KVM_GET/SET_MSRS for the MSRs struct cpu_state keeps.
 *  - KVM_GET/SET_VCPU_EVENTS for the STI/MOV SS shadow and NMI masking.
 *  - With Vireo's local APIC model (kvm-apic.c), IA32_APIC_BASE and CR8 are shared
 *    with the model: a state put hands them to it, and KVM gets the model's base (the
 *    BSP flag on vCPU 0 only) and run->cr8, which KVM_RUN loads as CR8 every entry.
 *
 * Power-on of an application processor: after a reset the core puts the architectural
 * reset state (CS base FFFF0000h, IP FFF0h, real mode) into every vCPU.  Only the BSP
 * executes it; an AP given that state enters wait-for-SIPI instead (SDM vol. 3A,
 * 8.4.1), which the run loop keeps in userspace (no KVM_RUN until a start-up IPI).  No
 * running AP can hold that state: real mode cannot load a CS base above FFFF0h.
 *
 * Events KVM has queued but not yet delivered (an injected external interrupt, a
 * pending exception) have no place in struct cpu_state.  state_put therefore
 * clears them, which is what reset and loading a saved state need, except when
 * the state being put is exactly what the last state_get returned with no guest
 * execution in between: that round trip is a no-op, so a debugger or the core
 * refreshing its copy never loses an interrupt the PIC has already acknowledged.
 */
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm-internal.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "kvm"

/* Architectural MSR numbers (SDM vol. 4, chapter 2). */
#define MSR_IA32_TSC          0x00000010u
#define MSR_IA32_SYSENTER_CS  0x00000174u
#define MSR_IA32_SYSENTER_ESP 0x00000175u
#define MSR_IA32_SYSENTER_EIP 0x00000176u
#define MSR_IA32_MISC_ENABLE  0x000001a0u
#define MSR_IA32_PAT          0x00000277u
#define MSR_STAR              0xc0000081u
#define MSR_LSTAR             0xc0000082u
#define MSR_CSTAR             0xc0000083u
#define MSR_SFMASK            0xc0000084u
#define MSR_KERNEL_GS_BASE    0xc0000102u
#define MSR_TSC_AUX           0xc0000103u

/* XSAVE standard-format offsets (SDM vol. 1, 10.5.1 and 13.4). */
#define XSAVE_FCW        0
#define XSAVE_FSW        2
#define XSAVE_FTW        4
#define XSAVE_FOP        6
#define XSAVE_FIP        8
#define XSAVE_FDP        16
#define XSAVE_MXCSR      24
#define XSAVE_MXCSR_MASK 28
#define XSAVE_ST         32
#define XSAVE_XMM        160
#define XSAVE_HEADER     512
#define XSTATE_X87       0x1ull
#define XSTATE_SSE       0x2ull
#define XSTATE_YMM       0x4ull
#define FPU_FCW_INIT     0x037f
#define MXCSR_INIT       0x1f80

static const struct {
    uint32_t index;
    size_t offset;
} g_kvm_state_msrs[] = {
    {MSR_IA32_TSC, offsetof(struct cpu_state, tsc)},
    {MSR_IA32_SYSENTER_CS, offsetof(struct cpu_state, sysenter_cs)},
    {MSR_IA32_SYSENTER_ESP, offsetof(struct cpu_state, sysenter_esp)},
    {MSR_IA32_SYSENTER_EIP, offsetof(struct cpu_state, sysenter_eip)},
    {MSR_IA32_MISC_ENABLE, offsetof(struct cpu_state, misc_enable)},
    {MSR_IA32_PAT, offsetof(struct cpu_state, pat)},
    {MSR_STAR, offsetof(struct cpu_state, star)},
    {MSR_LSTAR, offsetof(struct cpu_state, lstar)},
    {MSR_CSTAR, offsetof(struct cpu_state, cstar)},
    {MSR_SFMASK, offsetof(struct cpu_state, sfmask)},
    {MSR_KERNEL_GS_BASE, offsetof(struct cpu_state, kernel_gs_base)},
    {MSR_TSC_AUX, offsetof(struct cpu_state, tsc_aux)},
};

static uint64_t *kvm_state_msr_field(struct cpu_state *state, uint32_t index)
{
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_kvm_state_msrs); i++)
        if (g_kvm_state_msrs[i].index == index)
            return (uint64_t *)((char *)state + g_kvm_state_msrs[i].offset);
    return NULL;
}

static struct kvm_backend_vcpu *kvm_state_vcpu(const struct vcpu *vcpu)
{
    return vcpu_get_backend_data(vcpu);
}

int kvm_state_probe(struct kvm_backend_vm *kvm)
{
    const struct kvm_cpuid2 *c = kvm->supported_cpuid;
    for (uint32_t i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        /* 0xD.2: EAX size, EBX offset of the AVX (YMM_Hi128) component. */
        if (e->function == 0xd && e->index == 2 && e->eax == 256 && e->ebx + 256 <= kvm->xsave_size)
            kvm->ymm_offset = e->ebx;
    }

    /*
     * The MSRs this KVM saves and restores: KVM_GET_MSR_INDEX_LIST names them.  An
     * MSR missing from the list (TSC_AUX on a host without RDTSCP) is left out rather
     * than failing every state transfer.
     */
    struct kvm_msr_list probe = {.nmsrs = 0};
    if (ioctl(kvm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) != 0 && errno != E2BIG) {
        LOG_ERR("KVM_GET_MSR_INDEX_LIST failed: %s", strerror(errno));
        return VERR_KVM;
    }
    struct kvm_msr_list *list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
    kvm->msrs = calloc(RT_ARRAY_SIZE(g_kvm_state_msrs), sizeof(uint32_t));
    if (!list || !kvm->msrs) {
        free(list);
        return VERR_NO_MEMORY;
    }
    list->nmsrs = probe.nmsrs;
    if (ioctl(kvm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) != 0) {
        LOG_ERR("KVM_GET_MSR_INDEX_LIST failed: %s", strerror(errno));
        free(list);
        return VERR_KVM;
    }
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_kvm_state_msrs); i++) {
        bool found = false;
        for (uint32_t j = 0; j < list->nmsrs && !found; j++)
            found = list->indices[j] == g_kvm_state_msrs[i].index;
        if (found)
            kvm->msrs[kvm->msr_count++] = g_kvm_state_msrs[i].index;
        else
            LOG_INFO("MSR %#x is not saved by this KVM; its value is not transferred", g_kvm_state_msrs[i].index);
    }
    free(list);
    return 0;
}

/* ---- Segments ---------------------------------------------------------------- */

static void kvm_seg_to_cpu(const struct kvm_segment *k, struct cpu_seg *s)
{
    s->sel = k->selector;
    s->base = k->base;
    s->limit = k->limit;
    s->attr = (k->type & CPU_SEG_ATTR_TYPE_MASK) | (k->s ? CPU_SEG_ATTR_S : 0) |
              ((uint32_t)(k->dpl & 3) << CPU_SEG_ATTR_DPL_SHIFT) | (k->present ? CPU_SEG_ATTR_P : 0) |
              (k->avl ? CPU_SEG_ATTR_AVL : 0) | (k->l ? CPU_SEG_ATTR_L : 0) | (k->db ? CPU_SEG_ATTR_DB : 0) |
              (k->g ? CPU_SEG_ATTR_G : 0) | (k->unusable ? CPU_SEG_ATTR_UNUSABLE : 0);
}

static void kvm_seg_from_cpu(const struct cpu_seg *s, struct kvm_segment *k)
{
    memset(k, 0, sizeof(*k));
    k->selector = s->sel;
    k->base = s->base;
    k->limit = s->limit;
    k->type = s->attr & CPU_SEG_ATTR_TYPE_MASK;
    k->s = !!(s->attr & CPU_SEG_ATTR_S);
    k->dpl = (s->attr & CPU_SEG_ATTR_DPL_MASK) >> CPU_SEG_ATTR_DPL_SHIFT;
    k->present = !!(s->attr & CPU_SEG_ATTR_P);
    k->avl = !!(s->attr & CPU_SEG_ATTR_AVL);
    k->l = !!(s->attr & CPU_SEG_ATTR_L);
    k->db = !!(s->attr & CPU_SEG_ATTR_DB);
    k->g = !!(s->attr & CPU_SEG_ATTR_G);
    k->unusable = !!(s->attr & CPU_SEG_ATTR_UNUSABLE);
}

static struct kvm_segment *kvm_sregs_seg(struct kvm_sregs *sr, unsigned i)
{
    switch (i) {
    case CPU_ES:
        return &sr->es;
    case CPU_CS:
        return &sr->cs;
    case CPU_SS:
        return &sr->ss;
    case CPU_DS:
        return &sr->ds;
    case CPU_FS:
        return &sr->fs;
    case CPU_GS:
        return &sr->gs;
    case CPU_LDTR:
        return &sr->ldt;
    default:
        return &sr->tr;
    }
}

/* ---- FPU ----------------------------------------------------------------------- */

static void kvm_xsave_to_cpu(const struct kvm_backend_vm *kvm, const uint8_t *x, struct cpu_fpu *f)
{
    uint64_t bv;
    memcpy(&bv, x + XSAVE_HEADER, sizeof(bv));
    memset(f, 0, sizeof(*f));
    /* A component whose XSTATE_BV bit is clear is in its initial state (SDM vol. 1, 13.6). */
    if (bv & XSTATE_X87) {
        memcpy(&f->fcw, x + XSAVE_FCW, 2);
        memcpy(&f->fsw, x + XSAVE_FSW, 2);
        f->ftw = x[XSAVE_FTW];
        memcpy(&f->fop, x + XSAVE_FOP, 2);
        memcpy(&f->fip, x + XSAVE_FIP, 8);
        memcpy(&f->fdp, x + XSAVE_FDP, 8);
        memcpy(f->st, x + XSAVE_ST, sizeof(f->st));
    } else {
        f->fcw = FPU_FCW_INIT;
    }
    memcpy(&f->mxcsr, x + XSAVE_MXCSR, 4);
    memcpy(&f->mxcsr_mask, x + XSAVE_MXCSR_MASK, 4);
    if (bv & XSTATE_SSE)
        memcpy(f->xmm, x + XSAVE_XMM, sizeof(f->xmm));
    if ((bv & XSTATE_YMM) && kvm->ymm_offset)
        memcpy(f->ymmh, x + kvm->ymm_offset, sizeof(f->ymmh));
}

static void kvm_xsave_from_cpu(const struct kvm_backend_vm *kvm, const struct cpu_fpu *f, uint8_t *x)
{
    uint32_t host_mask;
    memcpy(&host_mask, x + XSAVE_MXCSR_MASK, 4);
    if (host_mask == 0)
        host_mask = 0xffbf; /* SDM vol. 1, 11.6.6: the default when MXCSR_MASK reads 0 */
    /* Reserved MXCSR bits would make KVM_SET_XSAVE fail (and XRSTOR #GP). */
    uint32_t mxcsr = f->mxcsr & host_mask;

    memcpy(x + XSAVE_FCW, &f->fcw, 2);
    memcpy(x + XSAVE_FSW, &f->fsw, 2);
    x[XSAVE_FTW] = f->ftw;
    memcpy(x + XSAVE_FOP, &f->fop, 2);
    memcpy(x + XSAVE_FIP, &f->fip, 8);
    memcpy(x + XSAVE_FDP, &f->fdp, 8);
    memcpy(x + XSAVE_MXCSR, &mxcsr, 4);
    memcpy(x + XSAVE_ST, f->st, sizeof(f->st));
    memcpy(x + XSAVE_XMM, f->xmm, sizeof(f->xmm));
    uint64_t bv;
    memcpy(&bv, x + XSAVE_HEADER, sizeof(bv));
    bv |= XSTATE_X87 | XSTATE_SSE;
    if (kvm->ymm_offset) {
        memcpy(x + kvm->ymm_offset, f->ymmh, sizeof(f->ymmh));
        bv |= XSTATE_YMM;
    }
    memcpy(x + XSAVE_HEADER, &bv, sizeof(bv));
}

static void kvm_fpu_to_cpu(const struct kvm_fpu *k, struct cpu_fpu *f)
{
    memset(f, 0, sizeof(*f));
    f->fcw = k->fcw;
    f->fsw = k->fsw;
    f->ftw = k->ftwx;
    f->fop = k->last_opcode;
    f->fip = k->last_ip;
    f->fdp = k->last_dp;
    f->mxcsr = k->mxcsr;
    f->mxcsr_mask = 0xffbf;
    memcpy(f->st, k->fpr, sizeof(f->st));
    memcpy(f->xmm, k->xmm, sizeof(f->xmm));
}

static void kvm_fpu_from_cpu(const struct cpu_fpu *f, struct kvm_fpu *k)
{
    memset(k, 0, sizeof(*k));
    k->fcw = f->fcw;
    k->fsw = f->fsw;
    k->ftwx = f->ftw;
    k->last_opcode = f->fop;
    k->last_ip = f->fip;
    k->last_dp = f->fdp;
    k->mxcsr = f->mxcsr & 0xffbf;
    memcpy(k->fpr, f->st, sizeof(k->fpr));
    memcpy(k->xmm, f->xmm, sizeof(k->xmm));
}

static int kvm_xsave_get(struct kvm_backend_vcpu *kv)
{
    unsigned long req = kv->kvm->use_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
    if (ioctl(kv->fd, req, kv->xsave_buf) != 0) {
        LOG_ERR("vCPU %u: KVM_GET_XSAVE failed: %s", kv->index, strerror(errno));
        return VERR_KVM;
    }
    return 0;
}

/* ---- Whole state ------------------------------------------------------------------ */

static int kvm_ioctl_checked(struct kvm_backend_vcpu *kv, unsigned long req, void *arg, const char *name)
{
    if (ioctl(kv->fd, req, arg) != 0) {
        LOG_ERR("vCPU %u: %s failed: %s", kv->index, name, strerror(errno));
        return VERR_KVM;
    }
    return 0;
}

/* struct kvm_msrs with room for every MSR of struct cpu_state. */
struct kvm_state_msr_buf {
    struct kvm_msrs hdr;
    struct kvm_msr_entry entries[RT_ARRAY_SIZE(g_kvm_state_msrs)];
};

int kvm_state_get(struct vcpu *vcpu, struct cpu_state *state)
{
    struct kvm_backend_vcpu *kv = kvm_state_vcpu(vcpu);
    if (!kv)
        return VERR_INVALID_STATE;
    struct kvm_backend_vm *kvm = kv->kvm;
    int rc = kvm_vcpu_complete_pending(kv);
    if (rc != 0)
        return rc;

    struct cpu_state *s = &kv->last_get;
    memset(s, 0, sizeof(*s));

    struct kvm_regs regs;
    struct kvm_sregs sregs;
    rc = kvm_ioctl_checked(kv, KVM_GET_REGS, &regs, "KVM_GET_REGS");
    if (rc == 0)
        rc = kvm_ioctl_checked(kv, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
    if (rc != 0)
        return rc;
    const uint64_t gpr[16] = {regs.rax, regs.rcx, regs.rdx, regs.rbx, regs.rsp, regs.rbp, regs.rsi, regs.rdi,
                              regs.r8,  regs.r9,  regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15};
    memcpy(s->gpr, gpr, sizeof(s->gpr));
    s->rip = regs.rip;
    s->rflags = regs.rflags;
    for (unsigned i = 0; i < CPU_SEG_COUNT; i++)
        kvm_seg_to_cpu(kvm_sregs_seg(&sregs, i), &s->seg[i]);
    s->gdtr.base = sregs.gdt.base;
    s->gdtr.limit = sregs.gdt.limit;
    s->idtr.base = sregs.idt.base;
    s->idtr.limit = sregs.idt.limit;
    s->cr0 = sregs.cr0;
    s->cr2 = sregs.cr2;
    s->cr3 = sregs.cr3;
    s->cr4 = sregs.cr4;
    s->cr8 = sregs.cr8;
    s->efer = sregs.efer;
    s->apic_base = sregs.apic_base;

    if (kvm->cap_xsave) {
        rc = kvm_xsave_get(kv);
        if (rc != 0)
            return rc;
        kvm_xsave_to_cpu(kvm, kv->xsave_buf, &s->fpu);
    } else {
        struct kvm_fpu fpu;
        rc = kvm_ioctl_checked(kv, KVM_GET_FPU, &fpu, "KVM_GET_FPU");
        if (rc != 0)
            return rc;
        kvm_fpu_to_cpu(&fpu, &s->fpu);
    }

    s->xcr0 = 1;
    if (kvm->cap_xcrs) {
        struct kvm_xcrs xcrs;
        rc = kvm_ioctl_checked(kv, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS");
        if (rc != 0)
            return rc;
        for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
            if (xcrs.xcrs[i].xcr == 0)
                s->xcr0 = xcrs.xcrs[i].value;
    }

    if (kvm->cap_debugregs) {
        struct kvm_debugregs dbg;
        rc = kvm_ioctl_checked(kv, KVM_GET_DEBUGREGS, &dbg, "KVM_GET_DEBUGREGS");
        if (rc != 0)
            return rc;
        memcpy(s->dr, dbg.db, sizeof(dbg.db));
        s->dr[6] = dbg.dr6;
        s->dr[7] = dbg.dr7;
    } else {
        s->dr[6] = 0xffff0ff0;
        s->dr[7] = 0x400;
    }

    struct kvm_state_msr_buf msrs;
    memset(&msrs, 0, sizeof(msrs));
    msrs.hdr.nmsrs = kvm->msr_count;
    for (unsigned i = 0; i < kvm->msr_count; i++)
        msrs.entries[i].index = kvm->msrs[i];
    int n = ioctl(kv->fd, KVM_GET_MSRS, &msrs);
    if (n != (int)kvm->msr_count) {
        LOG_ERR("vCPU %u: KVM_GET_MSRS read %d of %u MSRs (stopped at %#x)", kv->index, n, kvm->msr_count,
                n >= 0 && n < (int)kvm->msr_count ? msrs.entries[n].index : 0);
        return VERR_KVM;
    }
    for (unsigned i = 0; i < kvm->msr_count; i++) {
        uint64_t *field = kvm_state_msr_field(s, msrs.entries[i].index);
        if (field)
            *field = msrs.entries[i].data;
    }

    if (kvm->cap_vcpu_events) {
        struct kvm_vcpu_events ev;
        rc = kvm_ioctl_checked(kv, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
        if (rc != 0)
            return rc;
        s->int_shadow = ev.interrupt.shadow != 0;
        s->nmi_masked = ev.nmi.masked != 0;
    }
    s->halted = kv->halted || kv->wait_for_sipi;

    *state = *s;
    kv->last_get_valid = true;
    return 0;
}

/* Field-wise, so that padding bytes never make two equal states differ. */
static bool kvm_state_equal(const struct cpu_state *a, const struct cpu_state *b)
{
    if (memcmp(a->gpr, b->gpr, sizeof(a->gpr)) != 0 || a->rip != b->rip || a->rflags != b->rflags)
        return false;
    for (unsigned i = 0; i < CPU_SEG_COUNT; i++) {
        const struct cpu_seg *x = &a->seg[i], *y = &b->seg[i];
        if (x->sel != y->sel || x->base != y->base || x->limit != y->limit || x->attr != y->attr)
            return false;
    }
    if (a->gdtr.base != b->gdtr.base || a->gdtr.limit != b->gdtr.limit || a->idtr.base != b->idtr.base ||
        a->idtr.limit != b->idtr.limit)
        return false;
    if (a->cr0 != b->cr0 || a->cr2 != b->cr2 || a->cr3 != b->cr3 || a->cr4 != b->cr4 || a->cr8 != b->cr8 ||
        a->efer != b->efer || memcmp(a->dr, b->dr, sizeof(a->dr)) != 0 || a->xcr0 != b->xcr0)
        return false;
    if (a->apic_base != b->apic_base || a->tsc != b->tsc || a->star != b->star || a->lstar != b->lstar ||
        a->cstar != b->cstar || a->sfmask != b->sfmask || a->kernel_gs_base != b->kernel_gs_base ||
        a->sysenter_cs != b->sysenter_cs || a->sysenter_esp != b->sysenter_esp || a->sysenter_eip != b->sysenter_eip ||
        a->pat != b->pat || a->tsc_aux != b->tsc_aux || a->misc_enable != b->misc_enable)
        return false;
    const struct cpu_fpu *f = &a->fpu, *g = &b->fpu;
    if (f->fcw != g->fcw || f->fsw != g->fsw || f->ftw != g->ftw || f->fop != g->fop || f->fip != g->fip ||
        f->fdp != g->fdp || f->mxcsr != g->mxcsr || f->mxcsr_mask != g->mxcsr_mask ||
        memcmp(f->st, g->st, sizeof(f->st)) != 0 || memcmp(f->xmm, g->xmm, sizeof(f->xmm)) != 0 ||
        memcmp(f->ymmh, g->ymmh, sizeof(f->ymmh)) != 0)
        return false;
    return a->int_shadow == b->int_shadow && a->nmi_masked == b->nmi_masked && a->halted == b->halted;
}

static int kvm_state_put_msrs(struct kvm_backend_vcpu *kv, const struct cpu_state *state, bool keep_tsc)
{
    struct kvm_backend_vm *kvm = kv->kvm;
    struct kvm_state_msr_buf msrs;
    memset(&msrs, 0, sizeof(msrs));
    unsigned count = 0;
    for (unsigned i = 0; i < kvm->msr_count; i++) {
        if (keep_tsc && kvm->msrs[i] == MSR_IA32_TSC)
            continue;
        msrs.entries[count].index = kvm->msrs[i];
        const uint64_t *field = kvm_state_msr_field((struct cpu_state *)state, kvm->msrs[i]);
        msrs.entries[count].data = field ? *field : 0;
        count++;
    }
    msrs.hdr.nmsrs = count;
    int n = ioctl(kv->fd, KVM_SET_MSRS, &msrs);
    if (n != (int)count) {
        /* KVM stops at the first MSR it refuses (a reserved bit set, e.g. in PAT); name it. */
        LOG_ERR("vCPU %u: KVM_SET_MSRS wrote %d of %u MSRs (refused %#x = %#llx)", kv->index, n, count,
                n >= 0 && n < (int)count ? msrs.entries[n].index : 0,
                n >= 0 && n < (int)count ? (unsigned long long)msrs.entries[n].data : 0ULL);
        return VERR_KVM;
    }
    return 0;
}

static bool kvm_state_at_reset_vector(const struct cpu_state *s)
{
    return !(s->cr0 & CPU_CR0_PE) && s->seg[CPU_CS].base == 0xffff0000ULL && s->rip == 0xfff0;
}

static int kvm_state_put_common(struct kvm_backend_vcpu *kv, const struct cpu_state *state, bool keep_tsc)
{
    struct kvm_backend_vm *kvm = kv->kvm;

    /* A half-done IN must not land in the new state after it is loaded. */
    int rc = kvm_vcpu_complete_pending(kv);
    if (rc != 0)
        return rc;

    struct kvm_sregs sregs;
    memset(&sregs, 0, sizeof(sregs));
    for (unsigned i = 0; i < CPU_SEG_COUNT; i++)
        kvm_seg_from_cpu(&state->seg[i], kvm_sregs_seg(&sregs, i));
    sregs.gdt.base = state->gdtr.base;
    sregs.gdt.limit = state->gdtr.limit;
    sregs.idt.base = state->idtr.base;
    sregs.idt.limit = state->idtr.limit;
    sregs.cr0 = state->cr0;
    sregs.cr2 = state->cr2;
    sregs.cr3 = state->cr3;
    sregs.cr4 = state->cr4;
    sregs.cr8 = state->cr8 & 0xf;
    sregs.efer = state->efer;
    sregs.apic_base = kvm_apic_state_put(kv, state);
    /* interrupt_bitmap stays zero: no external interrupt is queued by the new state. */

    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    const uint64_t *g = state->gpr;
    regs.rax = g[CPU_RAX];
    regs.rcx = g[CPU_RCX];
    regs.rdx = g[CPU_RDX];
    regs.rbx = g[CPU_RBX];
    regs.rsp = g[CPU_RSP];
    regs.rbp = g[CPU_RBP];
    regs.rsi = g[CPU_RSI];
    regs.rdi = g[CPU_RDI];
    regs.r8 = g[CPU_R8];
    regs.r9 = g[CPU_R9];
    regs.r10 = g[CPU_R10];
    regs.r11 = g[CPU_R11];
    regs.r12 = g[CPU_R12];
    regs.r13 = g[CPU_R13];
    regs.r14 = g[CPU_R14];
    regs.r15 = g[CPU_R15];
    regs.rip = state->rip;
    regs.rflags = state->rflags | CPU_RFLAGS_FIXED;

    rc = kvm_ioctl_checked(kv, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
    if (rc == 0)
        rc = kvm_ioctl_checked(kv, KVM_SET_REGS, &regs, "KVM_SET_REGS");
    if (rc != 0)
        return rc;

    if (kvm->cap_xcrs) {
        /* XCR0 bit 0 is always set, and AVX needs SSE (SDM vol. 1, 13.3). */
        uint64_t xcr0 = state->xcr0 | 1;
        if ((xcr0 & XSTATE_YMM) && !(xcr0 & XSTATE_SSE))
            xcr0 &= ~XSTATE_YMM;
        struct kvm_xcrs xcrs;
        memset(&xcrs, 0, sizeof(xcrs));
        xcrs.nr_xcrs = 1;
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = xcr0;
        rc = kvm_ioctl_checked(kv, KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS");
        if (rc != 0)
            return rc;
    }

    if (kvm->cap_xsave) {
        rc = kvm_xsave_get(kv);
        if (rc != 0)
            return rc;
        kvm_xsave_from_cpu(kvm, &state->fpu, kv->xsave_buf);
        rc = kvm_ioctl_checked(kv, KVM_SET_XSAVE, kv->xsave_buf, "KVM_SET_XSAVE");
    } else {
        struct kvm_fpu fpu;
        kvm_fpu_from_cpu(&state->fpu, &fpu);
        rc = kvm_ioctl_checked(kv, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
    }
    if (rc != 0)
        return rc;

    if (kvm->cap_debugregs) {
        struct kvm_debugregs dbg;
        memset(&dbg, 0, sizeof(dbg));
        memcpy(dbg.db, state->dr, sizeof(dbg.db));
        /* DR6/DR7 bits 63:32 are reserved and must be zero (SDM vol. 3B, 17.2). */
        dbg.dr6 = state->dr[6] & 0xffffffffULL;
        dbg.dr7 = state->dr[7] & 0xffffffffULL;
        rc = kvm_ioctl_checked(kv, KVM_SET_DEBUGREGS, &dbg, "KVM_SET_DEBUGREGS");
        if (rc != 0)
            return rc;
    }

    rc = kvm_state_put_msrs(kv, state, keep_tsc);
    if (rc != 0)
        return rc;

    if (kvm->cap_vcpu_events) {
        struct kvm_vcpu_events ev;
        memset(&ev, 0, sizeof(ev));
        ev.interrupt.shadow = state->int_shadow ? KVM_X86_SHADOW_INT_STI : 0;
        ev.nmi.masked = state->nmi_masked;
        ev.flags = KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_NMI_PENDING;
        rc = kvm_ioctl_checked(kv, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
        if (rc != 0)
            return rc;
    }

    kv->halted = state->halted;
    kv->if_flag = (state->rflags & CPU_RFLAGS_IF) != 0;
    /* Stale from the last exit; zero makes the next entry ask KVM for an interrupt window first. */
    kv->run->ready_for_interrupt_injection = 0;
    /* KVM_RUN loads CR8 from run->cr8 when there is no in-kernel APIC (KVM API, "cr8"). */
    kv->run->cr8 = sregs.cr8;
    kv->cr8_put = (uint8_t)sregs.cr8;
    kv->tpr_dirty = true;
    kv->apic_base_seen = sregs.apic_base;
    kv->last_get_valid = false;
    return 0;
}

int kvm_state_put(struct vcpu *vcpu, const struct cpu_state *state)
{
    struct kvm_backend_vcpu *kv = kvm_state_vcpu(vcpu);
    if (!kv)
        return VERR_INVALID_STATE;
    if (kv->last_get_valid && kvm_state_equal(state, &kv->last_get))
        return 0; /* nothing changed since state_get: keep KVM's queued events */
    int rc = kvm_state_put_common(kv, state, false);
    if (rc == 0)
        kv->wait_for_sipi = kv->index != 0 && kvm_state_at_reset_vector(state);
    return rc;
}

int kvm_state_put_keep_tsc(struct kvm_backend_vcpu *kv, const struct cpu_state *state)
{
    return kvm_state_put_common(kv, state, true);
}

void kvm_state_log_regs(struct kvm_backend_vcpu *kv, enum rt_log_level level)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(kv->fd, KVM_GET_REGS, &r) != 0 || ioctl(kv->fd, KVM_GET_SREGS, &s) != 0) {
        rt_log(level, LOG_COMPONENT, "vCPU %u: cannot read registers: %s", kv->index, strerror(errno));
        return;
    }
    rt_log(level, LOG_COMPONENT, "vCPU %u: rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx", kv->index,
           (unsigned long long)r.rax, (unsigned long long)r.rbx, (unsigned long long)r.rcx, (unsigned long long)r.rdx);
    rt_log(level, LOG_COMPONENT, "vCPU %u: rsi=%016llx rdi=%016llx rbp=%016llx rsp=%016llx", kv->index,
           (unsigned long long)r.rsi, (unsigned long long)r.rdi, (unsigned long long)r.rbp, (unsigned long long)r.rsp);
    rt_log(level, LOG_COMPONENT,
           "vCPU %u: rip=%016llx rflags=%08llx cs=%04x base=%llx limit=%x type=%x l=%u db=%u ss=%04x", kv->index,
           (unsigned long long)r.rip, (unsigned long long)r.rflags, s.cs.selector, (unsigned long long)s.cs.base,
           s.cs.limit, s.cs.type, s.cs.l, s.cs.db, s.ss.selector);
    rt_log(level, LOG_COMPONENT, "vCPU %u: cr0=%llx cr2=%llx cr3=%llx cr4=%llx efer=%llx gdt=%llx/%x idt=%llx/%x",
           kv->index, (unsigned long long)s.cr0, (unsigned long long)s.cr2, (unsigned long long)s.cr3,
           (unsigned long long)s.cr4, (unsigned long long)s.efer, (unsigned long long)s.gdt.base, s.gdt.limit,
           (unsigned long long)s.idt.base, s.idt.limit);

    struct kvm_translation tr = {.linear_address = s.cs.base + r.rip};
    if (!(s.efer & (1u << 10)) || !s.cs.l)
        tr.linear_address &= 0xffffffffULL;
    uint8_t code[16];
    if (ioctl(kv->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid &&
        mem_read(vcpu_get_vm(kv->vcpu), tr.physical_address, code, sizeof(code)) == 0) {
        char hex[3 * sizeof(code) + 1];
        for (size_t i = 0; i < sizeof(code); i++)
            snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x ", code[i]);
        rt_log(level, LOG_COMPONENT, "vCPU %u: code at %llx: %s", kv->index, (unsigned long long)tr.physical_address,
               hex);
    }
}

/*
 * Saved state beyond struct cpu_state: the events KVM has queued for the next entry (an
 * external interrupt the PIC already acknowledged, a pending exception, an NMI), which
 * state_put clears.  Without the capability there is nothing queued that survives a pause.
 */
int kvm_state_extra_save(struct vcpu *vcpu, struct ssm *ssm)
{
    struct kvm_backend_vcpu *kv = kvm_state_vcpu(vcpu);
    if (!kv)
        return VERR_INVALID_STATE;
    struct kvm_vcpu_events ev;
    memset(&ev, 0, sizeof(ev));
    if (kv->kvm->cap_vcpu_events) {
        int rc = kvm_ioctl_checked(kv, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
        if (rc != 0)
            return rc;
    }
    ssm_put_bool(ssm, ev.exception.injected != 0);
    ssm_put_u8(ssm, ev.exception.nr);
    ssm_put_bool(ssm, ev.exception.has_error_code != 0);
    ssm_put_u32(ssm, ev.exception.error_code);
    ssm_put_bool(ssm, ev.interrupt.injected != 0);
    ssm_put_u8(ssm, ev.interrupt.nr);
    ssm_put_bool(ssm, ev.interrupt.soft != 0);
    ssm_put_bool(ssm, ev.nmi.injected != 0);
    ssm_put_bool(ssm, ev.nmi.pending != 0);
    ssm_put_bool(ssm, kv->wait_for_sipi); /* version 2 */
    return ssm_status(ssm);
}

int kvm_state_extra_load(struct vcpu *vcpu, struct ssm *ssm, uint32_t version)
{
    struct kvm_backend_vcpu *kv = kvm_state_vcpu(vcpu);
    if (!kv)
        return VERR_INVALID_STATE;
    if (version != 1 && version != 2)
        return VERR_SSM_VERSION;
    bool exc = false, exc_err = false, intr = false, intr_soft = false, nmi_inj = false, nmi_pend = false;
    bool wait_sipi = false;
    uint8_t exc_nr = 0, intr_nr = 0;
    uint32_t error = 0;
    ssm_get_bool(ssm, &exc);
    ssm_get_u8(ssm, &exc_nr);
    ssm_get_bool(ssm, &exc_err);
    ssm_get_u32(ssm, &error);
    ssm_get_bool(ssm, &intr);
    ssm_get_u8(ssm, &intr_nr);
    ssm_get_bool(ssm, &intr_soft);
    ssm_get_bool(ssm, &nmi_inj);
    ssm_get_bool(ssm, &nmi_pend);
    if (version >= 2)
        ssm_get_bool(ssm, &wait_sipi);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    /* Version 1 predates SMP under KVM: only the BSP ran, and it never waits for a SIPI. */
    kv->wait_for_sipi = wait_sipi && kv->index != 0;
    if (exc_nr >= 32) {
        LOG_ERR("vCPU %u: saved state queues exception %u, which is not an exception vector", kv->index, exc_nr);
        return VERR_SSM_CORRUPT;
    }
    if (!kv->kvm->cap_vcpu_events) {
        if (exc || intr || nmi_inj || nmi_pend) {
            LOG_ERR("vCPU %u: saved state has queued events and this KVM cannot take them (no KVM_CAP_VCPU_EVENTS)",
                    kv->index);
            return VERR_NOT_SUPPORTED;
        }
        return 0;
    }
    struct kvm_vcpu_events ev;
    rc = kvm_ioctl_checked(kv, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
    if (rc != 0)
        return rc;
    ev.exception.injected = exc;
    ev.exception.nr = exc_nr;
    ev.exception.has_error_code = exc_err;
    ev.exception.error_code = error;
    ev.interrupt.injected = intr;
    ev.interrupt.nr = intr_nr;
    ev.interrupt.soft = intr_soft;
    ev.nmi.injected = nmi_inj;
    ev.nmi.pending = nmi_pend;
    ev.flags = KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_NMI_PENDING;
    rc = kvm_ioctl_checked(kv, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
    kv->last_get_valid = false;
    return rc;
}
