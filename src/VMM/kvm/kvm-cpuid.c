/* kvm-cpuid.c - the CPUID a KVM guest sees: KVM's supported set filtered to what Vireo emulates and saves. */

/*
 * Policy.  KVM_GET_SUPPORTED_CPUID lists what KVM and the host CPU can run.  Vireo
 * takes that and removes what would not hold up without help Vireo does not give:
 *
 *  - The local APIC is Vireo's xAPIC model (kvm-apic.c): APIC (1.EDX[9]) stays, and
 *    KVM recomputes it from IA32_APIC_BASE.EN at run time, as hardware does (a board
 *    without the model keeps EN clear, so the guest sees none).  ARAT (6.EAX[2]) is
 *    the whole of leaf 6, as on the software CPU (the model's timer never stops).
 *    What the model does not offer is hidden: x2APIC (1.ECX[21]) and TSC deadline
 *    (1.ECX[24], the MSR would reach KVM, which has no APIC timer without its irqchip).
 *  - Paravirtual interfaces: the KVM leaves 0x40000000+ are dropped (kvmclock,
 *    PV EOI, async page faults and steal time need host support Vireo does not
 *    wire up and state it does not save).  The "hypervisor present" bit
 *    (1.ECX[31]) stays, so guests do not trust TSC calibration to real hardware.
 *  - Register state outside struct cpu_state: XCR0 is limited to x87, SSE and AVX
 *    (0xD.0), so AVX-512, PKRU, AMX, MPX and CET state never exists; their feature
 *    bits in leaf 7 and the XSAVES/IA32_XSS mechanism (0xD.1 EAX[3]) go too.
 *  - Features with host-side machinery or model-specific MSRs Vireo does not save:
 *    VMX/SVM (no nested virtualization), SMX, PDCM (IA32_PERF_CAPABILITIES),
 *    the performance-monitoring leaf 0xA, SGX (7.EBX[2], leaf 0x12), Intel PT
 *    (7.EBX[25], leaf 0x14), WAITPKG (7.ECX[5], IA32_UMWAIT_CONTROL), SVM leaf
 *    0x8000000A.
 *  - Topology, as the software CPU reports it (iem-sys-msr.c): one package of n cores,
 *    one thread each, APIC ID = vCPU index.  Leaf 1 EBX[31:24] is the APIC ID and, with
 *    n > 1, HTT is set and EBX[23:16] = 2^ceil(log2 n); leaf 4 EAX[31:26] and the L3's
 *    EAX[25:14] count the package's cores; leaf 0xB is rebuilt (SMT level 1 thread,
 *    core level n) since KVM reports it empty; leaf 0x1F goes (0xB says it all).
 *
 * Everything else (SSE*, AVX/AVX2, BMI, AES, RDRAND, long mode, NX, RDTSCP with
 * TSC_AUX saved, ...) executes natively and its state is in struct cpu_state.  The
 * invariant TSC bit (0x80000007 EDX[8]) passes through as KVM reports it (only when the
 * host's TSC is invariant; the guest's TSC runs at the host's rate, Vireo sets no
 * KVM_SET_TSC_KHZ), and so does the frequency leaf 0x16.  Leaf 0x15 goes: its crystal
 * is the host's, and Linux would take it as the clock of the local APIC timer, which
 * is Vireo's model at its own rate, not the host's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm-internal.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "kvm"

#define BIT(n) (1u << (n))

/* XCR0 components Vireo saves: x87 (0), SSE (1), AVX (2). */
#define KVM_XCR0_SAVED 0x7u

/* Bits to clear in one register of one leaf (every subleaf when subleaf is -1). */
struct kvm_cpuid_mask {
    uint32_t function;
    int subleaf;
    uint32_t eax, ebx, ecx, edx;
};

static const struct kvm_cpuid_mask g_kvm_cpuid_masks[] = {
    /* Leaf 1 (SDM vol. 2A, CPUID, table 3-10/3-11). */
    {0x1, -1, 0, 0,
     BIT(2) /* DTES64 */ | BIT(3) /* MONITOR */ | BIT(4) /* DS-CPL */ | BIT(5) /* VMX */ | BIT(6) /* SMX */ |
         BIT(7) /* EST */ | BIT(8) /* TM2 */ | BIT(14) /* xTPR */ | BIT(15) /* PDCM */ | BIT(18) /* DCA */ |
         BIT(21) /* x2APIC */ | BIT(24) /* TSC deadline */,
     BIT(18) /* PSN */ | BIT(21) /* DS */ | BIT(22) /* ACPI thermal MSRs */ | BIT(28) /* HTT */ |
         BIT(29) /* TM */ | BIT(31) /* PBE */},
    /* Leaf 7.0 (SDM vol. 2A, table 3-8, structured extended features). */
    {0x7, 0, 0,
     BIT(2) /* SGX */ | BIT(14) /* MPX */ | BIT(16) /* AVX512F */ | BIT(17) /* AVX512DQ */ | BIT(21) /* AVX512_IFMA */ |
         BIT(25) /* Intel PT */ | BIT(26) /* AVX512PF */ | BIT(27) /* AVX512ER */ | BIT(28) /* AVX512CD */ |
         BIT(30) /* AVX512BW */ | BIT(31) /* AVX512VL */,
     BIT(1) /* AVX512_VBMI */ | BIT(3) /* PKU */ | BIT(4) /* OSPKE */ | BIT(5) /* WAITPKG */ |
         BIT(6) /* AVX512_VBMI2 */ | BIT(7) /* CET_SS */ | BIT(11) /* AVX512_VNNI */ | BIT(12) /* AVX512_BITALG */ |
         BIT(14) /* AVX512_VPOPCNTDQ */ | BIT(30) /* SGX_LC */,
     BIT(2) /* AVX512_4VNNIW */ | BIT(3) /* AVX512_4FMAPS */ | BIT(8) /* AVX512_VP2INTERSECT */ |
         BIT(20) /* CET_IBT */ | BIT(22) /* AMX_BF16 */ | BIT(23) /* AVX512_FP16 */ | BIT(24) /* AMX_TILE */ |
         BIT(25) /* AMX_INT8 */},
    /* Leaf 7.1: AVX512_BF16 (EAX[5]); AMX_FP16 (EAX[21]). */
    {0x7, 1, BIT(5) | BIT(21), 0, 0, 0},
    /* Leaf 0xD.1: XSAVES/XRSTORS and IA32_XSS (EAX[3]); supervisor components (ECX/EDX). */
    {0xd, 1, BIT(3), 0, 0xffffffffu, 0xffffffffu},
    /* Leaf 0x80000001: SVM (ECX[2]). */
    {0x80000001, -1, 0, 0, BIT(2), 0},
};

/* Leaves removed entirely (their whole range for 0x40000000). */
static bool kvm_cpuid_leaf_dropped(uint32_t function, uint32_t index)
{
    if (function >= 0x40000000 && function <= 0x4fffffff)
        return true;
    switch (function) {
    case 0xa:        /* architectural performance monitoring */
    case 0x12:       /* SGX */
    case 0x14:       /* Intel PT */
    case 0x15:       /* TSC/crystal ratio: the host's crystal is not the APIC timer's clock */
    case 0x1d:       /* AMX tile information */
    case 0x1e:       /* AMX TMUL */
    case 0x8000000a: /* SVM */
    case 0xb:        /* rebuilt by kvm_cpuid_topology */
    case 0x1f:       /* V2 extended topology: leaf 0xB describes the same */
        return true;
    case 0xd:
        /* Keep the XCR0 summary (0), the XSAVE feature flags (1) and the components Vireo saves. */
        return index >= 2 && !(index < 32 && (KVM_XCR0_SAVED & (1u << index)));
    default:
        return false;
    }
}

static void kvm_cpuid_apply_masks(struct kvm_cpuid_entry2 *e)
{
    for (size_t i = 0; i < RT_ARRAY_SIZE(g_kvm_cpuid_masks); i++) {
        const struct kvm_cpuid_mask *m = &g_kvm_cpuid_masks[i];
        if (m->function != e->function || (m->subleaf >= 0 && (uint32_t)m->subleaf != e->index))
            continue;
        e->eax &= ~m->eax;
        e->ebx &= ~m->ebx;
        e->ecx &= ~m->ecx;
        e->edx &= ~m->edx;
    }
}

/* The size of the XSAVE area for the kept components (standard format), from their subleaves. */
static uint32_t kvm_cpuid_xsave_size(const struct kvm_cpuid2 *c, uint32_t xcr0)
{
    uint32_t size = 576; /* legacy area 512 + XSAVE header 64 */
    for (uint32_t i = 0; i < c->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 0xd && e->index >= 2 && e->index < 32 && (xcr0 & (1u << e->index)) && e->eax != 0 &&
            e->ebx + e->eax > size)
            size = e->ebx + e->eax;
    }
    return size;
}

/* Bits needed to number n cores (the x2APIC ID shift of leaf 0xB's core level). */
static unsigned kvm_cpuid_id_bits(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

/* Leaf 0xB (SDM vol. 2A, CPUID, "V1 Extended Topology Enumeration Leaf"): subleaves 0-2. */
static void kvm_cpuid_topology(struct kvm_cpuid2 *c, unsigned index, unsigned vcpus)
{
    for (uint32_t sub = 0; sub < 3; sub++) {
        struct kvm_cpuid_entry2 e;
        memset(&e, 0, sizeof(e));
        e.function = 0xb;
        e.index = sub;
        e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        e.ecx = sub;
        e.edx = index; /* x2APIC ID of this logical processor */
        if (sub == 0) {
            e.ebx = 1;        /* one thread per core */
            e.ecx |= 1u << 8; /* level type: SMT */
        } else if (sub == 1) {
            e.eax = kvm_cpuid_id_bits(vcpus);
            e.ebx = vcpus;
            e.ecx |= 2u << 8; /* level type: core */
        }
        c->entries[c->nent++] = e;
    }
}

int kvm_cpuid_setup(struct kvm_backend_vcpu *kv)
{
    const struct kvm_cpuid2 *sup = kv->kvm->supported_cpuid;
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (sup->nent + 3) * sizeof(struct kvm_cpuid_entry2));
    if (!c)
        return VERR_NO_MEMORY;

    uint32_t apic_id = kv->index & 0xff;
    unsigned vcpus = kv->kvm->vcpu_count ? kv->kvm->vcpu_count : 1;
    uint32_t cores = 1u << kvm_cpuid_id_bits(vcpus);
    uint32_t max_basic = 0;
    for (uint32_t i = 0; i < sup->nent; i++) {
        struct kvm_cpuid_entry2 e = sup->entries[i];
        if (kvm_cpuid_leaf_dropped(e.function, e.index))
            continue;
        kvm_cpuid_apply_masks(&e);
        switch (e.function) {
        case 0x0:
            max_basic = e.eax;
            break;
        case 0x1:
            /* EBX: [31:24] initial APIC ID, [23:16] logical processors (0: HTT clear), [15:8] CLFLUSH size. */
            e.ebx = (e.ebx & 0x0000ffffu) | (apic_id << 24);
            if (vcpus > 1) {
                e.ebx |= cores << 16;
                e.edx |= BIT(28); /* HTT: more than one logical processor per package */
            }
            break;
        case 0x4:
            /* EAX[31:26]: cores per package - 1; [25:14]: threads sharing the cache - 1 (the L3: all). */
            if (e.eax & 0x1f) {
                e.eax &= 0x00003fffu;
                e.eax |= (cores - 1) << 26;
                if (((e.eax >> 5) & 7) >= 3)
                    e.eax |= (cores - 1) << 14;
            }
            break;
        case 0x6:
            e.eax = BIT(2); /* ARAT: the APIC timer runs in every C-state */
            e.ebx = e.ecx = e.edx = 0;
            break;
        case 0xd:
            if (e.index == 0) {
                uint32_t xcr0 = e.eax & KVM_XCR0_SAVED;
                e.eax = xcr0;
                e.edx = 0; /* XCR0[63:32] */
                e.ecx = kvm_cpuid_xsave_size(sup, xcr0);
                e.ebx = 576; /* for XCR0 = x87|SSE at reset; KVM recomputes it when XCR0 changes */
            }
            break;
        default:
            break;
        }
        c->entries[c->nent++] = e;
    }
    if (max_basic >= 0xb)
        kvm_cpuid_topology(c, kv->index, vcpus);

    int rc = 0;
    if (ioctl(kv->fd, KVM_SET_CPUID2, c) != 0) {
        LOG_ERR("vCPU %u: KVM_SET_CPUID2 (%u entries) failed: %s", kv->index, c->nent, strerror(errno));
        rc = VERR_KVM;
    } else {
        LOG_DEBUG("vCPU %u: CPUID set, %u of %u entries kept", kv->index, c->nent, sup->nent);
    }
    free(c);
    return rc;
}
