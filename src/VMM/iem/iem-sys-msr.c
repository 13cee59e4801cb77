/* iem-sys-msr.c - CPUID, model-specific registers and the time-stamp counter of the software CPU. */

/*
 * CPUID reports exactly what the interpreter implements (see the feature list below);
 * everything it does not report raises #UD or #GP where hardware without the feature
 * would.  The model is an Intel family 6 model 3Ah (Ivy Bridge) class CPU with one
 * thread per core and one package, so the topology leaves (1, 4, 0Bh) agree.
 *
 * MSRs.  Besides the architectural ones Linux and Windows program (EFER, the SYSCALL
 * and SYSENTER MSRs, FS/GS/kernel-GS base, PAT, MTRRs, TSC, TSC_AUX, APIC base), the
 * ones they read at boot without a fault handler are answered:
 *   IA32_PLATFORM_ID (17h)       microcode loader: platform bits 0
 *   IA32_FEATURE_CONTROL (3Ah)   locked with VMX off (no VMX in CPUID)
 *   IA32_BIOS_UPDT_TRIG (79h)    write accepted and ignored (no microcode to load)
 *   IA32_BIOS_SIGN_ID (8Bh)      microcode revision; writes (the "clear before CPUID" idiom) ignored
 *   MSR_PLATFORM_INFO (CEh)      the TSC ratio to a 100 MHz bus
 *   IA32_MTRRCAP (FEh)           8 variable ranges, fixed ranges, write-combining
 *   IA32_MCG_CAP/STATUS (179h/17Ah) no banks, no machine check in progress
 *   IA32_ARCH_CAPABILITIES (10Ah) read-only: the "not affected" bits of every speculative-execution
 *                                attack it has one for (see IEM_ARCH_CAPS)
 *   IA32_MISC_ENABLE (1A0h)      fast strings (on at reset, as the SDM gives its default); BTS/PEBS
 *                                unavailable; the limit-CPUID and XD-disable bits honoured
 *   IA32_DEBUGCTL (1D9h)         reads 0; LBR/BTF writes accepted (no branch recording is modelled)
 * Everything else is unknown: the caller raises #GP(0), which Linux's rdmsr_safe expects.
 */
#include <string.h>

#include "iem-sys.h"

#define LOG_COMPONENT "iem"

#define BIT(n) (1u << (n))
#define BIT64(n) (1ULL << (n))

/* MSR indices (Intel SDM vol. 4, table 2-2). */
#define MSR_TSC              0x10u
#define MSR_PLATFORM_ID      0x17u
#define MSR_APIC_BASE        0x1bu
#define MSR_TSC_ADJUST       0x3bu
#define MSR_FEATURE_CONTROL  0x3au
#define MSR_BIOS_UPDT_TRIG   0x79u
#define MSR_BIOS_SIGN_ID     0x8bu
#define MSR_PLATFORM_INFO    0xceu
#define MSR_ARCH_CAPABILITIES 0x10au
#define MSR_MTRRCAP          0xfeu
#define MSR_SYSENTER_CS      0x174u
#define MSR_SYSENTER_ESP     0x175u
#define MSR_SYSENTER_EIP     0x176u
#define MSR_MCG_CAP          0x179u
#define MSR_MCG_STATUS       0x17au
#define MSR_MISC_ENABLE      0x1a0u
#define MSR_DEBUGCTL         0x1d9u
#define MSR_MTRR_PHYS_FIRST  0x200u
#define MSR_MTRR_FIX64K      0x250u
#define MSR_MTRR_FIX16K_80   0x258u
#define MSR_MTRR_FIX16K_A0   0x259u
#define MSR_MTRR_FIX4K_FIRST 0x268u
#define MSR_MTRR_FIX4K_LAST  0x26fu
#define MSR_PAT              0x277u
#define MSR_MTRR_DEF_TYPE    0x2ffu
#define MSR_EFER             0xc0000080u
#define MSR_STAR             0xc0000081u
#define MSR_LSTAR            0xc0000082u
#define MSR_CSTAR            0xc0000083u
#define MSR_SFMASK           0xc0000084u
#define MSR_FS_BASE          0xc0000100u
#define MSR_GS_BASE          0xc0000101u
#define MSR_KERNEL_GS_BASE   0xc0000102u
#define MSR_TSC_AUX          0xc0000103u

/* IA32_MISC_ENABLE bits (SDM vol. 4, table 2-2). */
#define MISC_FAST_STRINGS    CPU_MISC_ENABLE_FAST_STRINGS
#define MISC_TCC             BIT64(3)
#define MISC_BTS_UNAVAIL     BIT64(11)
#define MISC_PEBS_UNAVAIL    BIT64(12)
#define MISC_LIMIT_CPUID     BIT64(22)
#define MISC_XTPR_DISABLE    BIT64(23)
#define MISC_XD_DISABLE      BIT64(34)
#define MISC_WRITABLE (MISC_FAST_STRINGS | MISC_TCC | MISC_LIMIT_CPUID | MISC_XTPR_DISABLE | MISC_XD_DISABLE)

/* MTRRcap: 8 variable ranges, fixed ranges (bit 8), write-combining (bit 10).  A constant of the
 * model, so it holds whether or not the core ran iem_sys_reset (which mirrors it in mtrr_cap). */
#define IEM_MTRR_CAP 0x508u
_Static_assert((IEM_MTRR_CAP & 0xff) * 2 <= RT_ARRAY_SIZE(((struct iem_cpu *)0)->mtrr_var), "mtrr_var holds every range");
#define IEM_MICROCODE_REV 0x21u
#define IEM_CPUID_MAX_BASIC 0x16u
/*
 * The core crystal clock that CPUID.15H reports: the local APIC model's timer clock (apic.c's
 * timer_hz default), because Linux programs the APIC timer at the crystal frequency once
 * leaf 15H names one (and then skips calibrating it against the PIT, which fails under host load).
 */
#define IEM_CRYSTAL_HZ 1000000000u
#define IEM_CPUID_MAX_EXT 0x80000008u
/* Family 6, model 3Ah (extended model 3, model 0Ah), stepping 9. */
#define IEM_CPUID_SIGNATURE 0x000306a9u

#define MSR_TSC_DEADLINE     0x6e0u

/*
 * IA32_ARCH_CAPABILITIES (SDM vol. 4, table 2-2).  The software CPU executes nothing
 * speculatively: no load runs ahead of its permission check (RDCL_NO), of an older store
 * (SSB_NO) or through fill, store or load-port buffers (MDS_NO, TAA_NO, SBDR_SSDP_NO,
 * FBSDP_NO, PSDP_NO, GDS_NO, RFDS_NO); a page-size change never raises a machine check
 * (PSCHANGE_MC_NO); branch history and RSB underflow steer nothing (BHI_NO, PBRSB_NO).
 * A guest that reads this runs without the page-table isolation and buffer clearing it
 * would need on the hardware it is modelled after.
 */
#define IEM_ARCH_CAPS (BIT64(0) /* RDCL_NO */ | BIT64(4) /* SSB_NO */ | BIT64(5) /* MDS_NO */ | \
                       BIT64(6) /* PSCHANGE_MC_NO */ | BIT64(8) /* TAA_NO */ | BIT64(13) /* SBDR_SSDP_NO */ | \
                       BIT64(14) /* FBSDP_NO */ | BIT64(15) /* PSDP_NO */ | BIT64(20) /* BHI_NO */ | \
                       BIT64(24) /* PBRSB_NO */ | BIT64(26) /* GDS_NO */ | BIT64(27) /* RFDS_NO */)

/*
 * The local APIC is a device model (src/Devices/PC/apic.c) reached through the VM's
 * interrupt-controller hooks; without it (a board with only the PIC) CPUID reports no
 * APIC and the APIC MSRs keep only the stored base.
 */
static const struct vm_intc *lapic(const struct iem_cpu *cpu)
{
    const struct vm_intc *intc = cpu->vm ? vm_get_intc(cpu->vm) : NULL;
    return intc && intc->msr_read && intc->msr_write ? intc : NULL;
}

/* Keeps the APIC's TSC-deadline timer on the same TSC as RDTSC. */
static void lapic_tsc_sync(struct iem_cpu *cpu)
{
    const struct vm_intc *intc = lapic(cpu);
    if (intc && intc->tsc_sync)
        intc->tsc_sync(intc->opaque, cpu->vcpu, cpu->tsc_khz, cpu->tsc_offset);
}

/* ---- TSC ------------------------------------------------------------------------------- */

static uint64_t tsc_khz(const struct iem_cpu *cpu)
{
    return cpu->tsc_khz ? cpu->tsc_khz : IEM_TSC_KHZ_DEFAULT;
}

/* Virtual nanoseconds scaled to TSC ticks (without the guest's offset). */
static uint64_t tsc_ticks(const struct iem_cpu *cpu)
{
    uint64_t ns = cpu->vm ? tm_now_ns(cpu->vm) : 0;
    return (uint64_t)((unsigned __int128)ns * tsc_khz(cpu) / 1000000u);
}

uint64_t iem_tsc_read(struct iem_cpu *cpu)
{
    return tsc_ticks(cpu) + cpu->tsc_offset;
}

void iem_sys_reset(struct iem_cpu *cpu)
{
    cpu->mtrr_cap = IEM_MTRR_CAP;
    cpu->mtrr_def_type = 0;
    memset(cpu->mtrr_fixed, 0, sizeof(cpu->mtrr_fixed));
    memset(cpu->mtrr_var, 0, sizeof(cpu->mtrr_var));
    cpu->tsc_offset = 0;
    cpu->tsc_adjust = 0;
    if (!cpu->tsc_khz)
        cpu->tsc_khz = IEM_TSC_KHZ_DEFAULT;
    /* Thereafter the TSC counts from 0 at power-on (SDM vol. 3B, 17.17). */
    cpu->tsc_offset = (uint64_t)0 - tsc_ticks(cpu);
    lapic_tsc_sync(cpu);
    cpu->inhibit_irq_next = false;
}

void iem_sys_save(struct iem_cpu *cpu, struct ssm *ssm)
{
    ssm_put_bool(ssm, cpu->nmi_pending);
    ssm_put_bool(ssm, cpu->s->wait_for_sipi);
    ssm_put_u64(ssm, cpu->mtrr_cap);
    ssm_put_u64(ssm, cpu->mtrr_def_type);
    for (unsigned i = 0; i < RT_ARRAY_SIZE(cpu->mtrr_fixed); i++)
        ssm_put_u64(ssm, cpu->mtrr_fixed[i]);
    for (unsigned i = 0; i < RT_ARRAY_SIZE(cpu->mtrr_var); i++)
        ssm_put_u64(ssm, cpu->mtrr_var[i]);
    ssm_put_u64(ssm, tsc_khz(cpu));
    ssm_put_u64(ssm, cpu->tsc_offset);
    ssm_put_u64(ssm, cpu->tsc_adjust); /* version 2 */
}

int iem_sys_load(struct iem_cpu *cpu, struct ssm *ssm, uint32_t version)
{
    if (version < 1 || version > IEM_SYS_SSM_VERSION)
        return VERR_SSM_VERSION;
    bool nmi = false, sipi = false;
    uint64_t cap = 0, def = 0, fixed[RT_ARRAY_SIZE(cpu->mtrr_fixed)], var[RT_ARRAY_SIZE(cpu->mtrr_var)];
    uint64_t khz = 0, offset = 0, adjust = 0;
    ssm_get_bool(ssm, &nmi);
    ssm_get_bool(ssm, &sipi);
    ssm_get_u64(ssm, &cap);
    ssm_get_u64(ssm, &def);
    for (unsigned i = 0; i < RT_ARRAY_SIZE(fixed); i++)
        ssm_get_u64(ssm, &fixed[i]);
    for (unsigned i = 0; i < RT_ARRAY_SIZE(var); i++)
        ssm_get_u64(ssm, &var[i]);
    ssm_get_u64(ssm, &khz);
    ssm_get_u64(ssm, &offset);
    if (version >= 2)
        ssm_get_u64(ssm, &adjust);
    int rc = ssm_status(ssm);
    if (rc)
        return rc;
    /* The capability is the model's, not the guest's; the frequency must be one the model could have. */
    if (cap != IEM_MTRR_CAP || khz < 1000 || khz > 100000000) {
        LOG_ERR("vCPU %u: saved CPU state is inconsistent (MTRR capability %#llx, TSC %llu kHz)",
                vcpu_get_index(cpu->vcpu), (unsigned long long)cap, (unsigned long long)khz);
        return VERR_SSM_CORRUPT;
    }
    cpu->nmi_pending = nmi;
    cpu->s->wait_for_sipi = sipi;
    cpu->mtrr_def_type = def;
    memcpy(cpu->mtrr_fixed, fixed, sizeof(fixed));
    memcpy(cpu->mtrr_var, var, sizeof(var));
    cpu->tsc_khz = khz;
    cpu->tsc_offset = offset;
    cpu->tsc_adjust = adjust;
    lapic_tsc_sync(cpu);
    return 0;
}

/* ---- CPUID ------------------------------------------------------------------------------ */

static unsigned vcpu_count(const struct iem_cpu *cpu)
{
    unsigned n = cpu->vm ? vm_get_vcpu_count(cpu->vm) : 1;
    return n ? n : 1;
}

static unsigned apic_id(const struct iem_cpu *cpu)
{
    return cpu->vcpu ? vcpu_get_index(cpu->vcpu) & 0xff : 0;
}

/* Bits needed to number n cores (the x2APIC ID shift of leaf 0Bh). */
static unsigned id_bits(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

/* Leaf 4: deterministic cache parameters (SDM vol. 2A, CPUID, table 3-8). */
static void cpuid_cache(const struct iem_cpu *cpu, uint32_t subleaf, uint32_t out[4])
{
    /* type, level, ways, sets, shared by the whole package */
    static const struct { uint32_t type, level, ways, sets; bool shared; } caches[] = {
        {1, 1, 8, 64, false},   /* L1 data 32 KiB */
        {2, 1, 8, 64, false},   /* L1 instruction 32 KiB */
        {3, 2, 8, 512, false},  /* L2 256 KiB */
        {3, 3, 16, 8192, true}, /* L3 8 MiB */
    };
    memset(out, 0, 4 * sizeof(uint32_t));
    if (subleaf >= RT_ARRAY_SIZE(caches))
        return;
    unsigned cores = 1u << id_bits(vcpu_count(cpu));
    out[0] = caches[subleaf].type | (caches[subleaf].level << 5) | BIT(8) | ((cores - 1) << 26);
    if (caches[subleaf].shared)
        out[0] |= (cores - 1) << 14;
    out[1] = ((caches[subleaf].ways - 1) << 22) | 63; /* one partition, 64-byte lines */
    out[2] = caches[subleaf].sets - 1;
    out[3] = caches[subleaf].shared ? BIT(1) : 0;     /* L3 inclusive */
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/*
 * Leaf 15H (SDM vol. 2A, CPUID): TSC frequency = crystal Hz * EBX / EAX.  The guest then knows
 * the TSC frequency without calibrating it, which on a software CPU under host load fails or
 * comes out wrong (and Linux then marks the TSC unstable).  Linux multiplies the crystal kHz by
 * EBX in 32 bits, so a ratio whose numerator would overflow that is not reported (all zero:
 * the guest calibrates as before).
 */
static void cpuid_tsc_ratio(const struct iem_cpu *cpu, uint32_t out[4])
{
    uint64_t crystal_khz = IEM_CRYSTAL_HZ / 1000u;
    uint64_t g = gcd64(tsc_khz(cpu), crystal_khz);
    uint64_t num = tsc_khz(cpu) / g, den = crystal_khz / g;
    if (num * crystal_khz > UINT32_MAX)
        return;
    out[0] = (uint32_t)den;
    out[1] = (uint32_t)num;
    out[2] = IEM_CRYSTAL_HZ;
}

static void cpuid_brand(uint32_t leaf, uint32_t out[4])
{
    static const char brand[48] = "Vireo Virtual CPU";
    memcpy(out, brand + (leaf - 0x80000002u) * 16, 16);
}

void iem_cpuid(struct iem_cpu *cpu, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    const struct cpu_state *s = cpu->s;
    uint32_t max_basic = (s->misc_enable & MISC_LIMIT_CPUID) ? 2 : IEM_CPUID_MAX_BASIC;
    /* Leaves past the maxima return the highest basic leaf (SDM vol. 2A, CPUID). */
    if ((leaf > max_basic && leaf < 0x80000000u) || leaf > IEM_CPUID_MAX_EXT)
        leaf = max_basic;
    memset(out, 0, 4 * sizeof(uint32_t));
    unsigned n = vcpu_count(cpu);
    switch (leaf) {
    case 0:
        out[0] = max_basic;
        out[1] = 0x756e6547; /* "Genu" */
        out[3] = 0x49656e69; /* "ineI" */
        out[2] = 0x6c65746e; /* "ntel" */
        break;
    case 1:
        out[0] = IEM_CPUID_SIGNATURE;
        out[1] = (apic_id(cpu) << 24) | (8u << 8); /* CLFLUSH line: 8 quadwords */
        out[2] = BIT(0) /* SSE3 */ | BIT(9) /* SSSE3 */ | BIT(13) /* CX16 */ | BIT(19) /* SSE4.1 */ |
                 BIT(20) /* SSE4.2 */ | BIT(22) /* MOVBE */ | BIT(23) /* POPCNT */;
        out[3] = BIT(0) /* FPU */ | BIT(1) /* VME */ | BIT(2) /* DE */ | BIT(3) /* PSE */ | BIT(4) /* TSC */ |
                 BIT(5) /* MSR */ | BIT(6) /* PAE */ | BIT(7) /* MCE */ | BIT(8) /* CX8 */ | BIT(11) /* SEP */ |
                 BIT(12) /* MTRR */ | BIT(13) /* PGE */ | BIT(15) /* CMOV */ | BIT(16) /* PAT */ |
                 BIT(17) /* PSE36 */ | BIT(19) /* CLFSH */ | BIT(23) /* MMX */ | BIT(24) /* FXSR */ |
                 BIT(25) /* SSE */ | BIT(26) /* SSE2 */;
        /* Hardware reports APIC only while IA32_APIC_BASE enables it (SDM vol. 3A, 10.4.3). */
        if (lapic(cpu) && (s->apic_base & BIT(11)))
            out[3] |= BIT(9);
        /*
         * TSC-deadline mode (ECX bit 24) is not reported although the APIC model has it:
         * Linux guests that use it with the TSC clocksource stall during device probing
         * (kernel timers stop until another interrupt comes; DESIGN-NOTES, Storage), while
         * the one-shot count-down timer they use instead keeps them running.
         */
        if (n > 1) {
            out[1] |= (1u << id_bits(n)) << 16;
            out[3] |= BIT(28); /* HTT: more than one logical processor per package */
        }
        break;
    case 2:
        out[0] = 0x0000ff01; /* one iteration; descriptor FFh: see leaf 4 */
        break;
    case 4:
        cpuid_cache(cpu, subleaf, out);
        break;
    case 6:
        if (lapic(cpu))
            out[0] = BIT(2); /* ARAT: the APIC timer runs in every C-state */
        break;
    case 7:
        /* Structured extended features, subleaf 0 only (EAX: no further subleaves). */
        if (subleaf == 0) {
            /* ERMS: REP MOVSB/STOSB move whole page runs (iem-int-string.c); IA32_TSC_ADJUST. */
            out[1] = BIT(9) | BIT(1);
            out[3] = BIT(29); /* IA32_ARCH_CAPABILITIES */
        }
        break;
    case 0xb:
        /* Extended topology: one thread per core, n cores per package (SDM vol. 2A, table 3-8). */
        out[3] = apic_id(cpu);
        out[2] = subleaf & 0xff;
        if (subleaf == 0) {
            out[1] = 1;
            out[2] |= 1u << 8;
        } else if (subleaf == 1) {
            out[0] = id_bits(n);
            out[1] = n;
            out[2] |= 2u << 8;
        }
        break;
    case 0x15:
        cpuid_tsc_ratio(cpu, out);
        break;
    case 0x16:
        /* Base and maximum frequency in MHz (the TSC's: it is invariant), bus reference 100 MHz. */
        out[0] = out[1] = (uint32_t)(tsc_khz(cpu) / 1000u);
        out[2] = 100;
        break;
    case 0x80000000u:
        out[0] = IEM_CPUID_MAX_EXT;
        break;
    case 0x80000001u:
        out[2] = BIT(0) /* LAHF/SAHF in 64-bit mode */ | BIT(5) /* LZCNT (ABM) */;
        out[3] = BIT(11) /* SYSCALL */ | BIT(27) /* RDTSCP */ | BIT(29) /* LM */;
        if (!(s->misc_enable & MISC_XD_DISABLE))
            out[3] |= BIT(20); /* NX */
        break;
    case 0x80000002u:
    case 0x80000003u:
    case 0x80000004u:
        cpuid_brand(leaf, out);
        break;
    case 0x80000006u:
        out[2] = (256u << 16) | (6u << 12) | 64u; /* L2: 256 KiB, 8-way, 64-byte lines */
        break;
    case 0x80000007u:
        out[3] = BIT(8); /* invariant TSC: it follows the virtual clock at a constant rate */
        break;
    case 0x80000008u:
        out[0] = (48u << 8) | IEM_SYS_PHYS_BITS;
        break;
    default:
        /* Leaves 3, 5, 8-0Ah, 80000005h: all zero. */
        break;
    }
}

/* ---- MSRs --------------------------------------------------------------------------------- */

static bool nx_supported(const struct iem_cpu *cpu)
{
    return !(cpu->s->misc_enable & MISC_XD_DISABLE);
}

/* Memory types valid in PAT entries and MTRRs (SDM vol. 3A, tables 11-10 and 11-8). */
static bool pat_type_ok(uint8_t t)
{
    return t == 0 || t == 1 || t == 4 || t == 5 || t == 6 || t == 7;
}

static bool mtrr_type_ok(uint8_t t)
{
    return t == 0 || t == 1 || t == 4 || t == 5 || t == 6;
}

static bool phys_addr_ok(uint64_t v)
{
    return (v >> IEM_SYS_PHYS_BITS) == 0;
}

/* Index into mtrr_fixed for a fixed-range MTRR, or -1. */
static int mtrr_fixed_index(uint32_t index)
{
    if (index == MSR_MTRR_FIX64K)
        return 0;
    if (index == MSR_MTRR_FIX16K_80)
        return 1;
    if (index == MSR_MTRR_FIX16K_A0)
        return 2;
    if (index >= MSR_MTRR_FIX4K_FIRST && index <= MSR_MTRR_FIX4K_LAST)
        return 3 + (int)(index - MSR_MTRR_FIX4K_FIRST);
    return -1;
}

/* Index into mtrr_var (base, mask interleaved) for a variable-range MTRR the cap reports, or -1. */
static int mtrr_var_index(uint32_t index)
{
    unsigned vcnt = IEM_MTRR_CAP & 0xff;
    if (index < MSR_MTRR_PHYS_FIRST || index >= MSR_MTRR_PHYS_FIRST + 2 * vcnt)
        return -1;
    return (int)(index - MSR_MTRR_PHYS_FIRST);
}

bool iem_msr_read(struct iem_cpu *cpu, uint32_t index, uint64_t *value)
{
    const struct cpu_state *s = cpu->s;
    uint64_t v = 0;
    int i;
    switch (index) {
    case MSR_TSC: v = iem_tsc_read(cpu); break;
    case MSR_TSC_ADJUST: v = cpu->tsc_adjust; break;
    case MSR_PLATFORM_ID: v = 0; break;
    case MSR_APIC_BASE:
    case MSR_TSC_DEADLINE: {
        const struct vm_intc *intc = lapic(cpu);
        if (intc)
            return intc->msr_read(intc->opaque, cpu->vcpu, index, value);
        if (index == MSR_TSC_DEADLINE)
            return false;
        v = s->apic_base;
        break;
    }
    case MSR_FEATURE_CONTROL: v = 1; break; /* locked */
    case MSR_BIOS_SIGN_ID: v = (uint64_t)IEM_MICROCODE_REV << 32; break;
    case MSR_PLATFORM_INFO: v = (uint64_t)((tsc_khz(cpu) / 100000u) & 0xff) << 8; break;
    case MSR_MTRRCAP: v = IEM_MTRR_CAP; break;
    case MSR_ARCH_CAPABILITIES: v = IEM_ARCH_CAPS; break;
    case MSR_SYSENTER_CS: v = s->sysenter_cs; break;
    case MSR_SYSENTER_ESP: v = s->sysenter_esp; break;
    case MSR_SYSENTER_EIP: v = s->sysenter_eip; break;
    case MSR_MCG_CAP: v = 0; break;
    case MSR_MCG_STATUS: v = 0; break;
    case MSR_MISC_ENABLE: v = s->misc_enable | MISC_BTS_UNAVAIL | MISC_PEBS_UNAVAIL; break;
    case MSR_DEBUGCTL: v = 0; break;
    case MSR_PAT: v = s->pat; break;
    case MSR_MTRR_DEF_TYPE: v = cpu->mtrr_def_type; break;
    case MSR_EFER: v = s->efer; break;
    case MSR_STAR: v = s->star; break;
    case MSR_LSTAR: v = s->lstar; break;
    case MSR_CSTAR: v = s->cstar; break;
    case MSR_SFMASK: v = s->sfmask; break;
    case MSR_FS_BASE: v = s->seg[CPU_FS].base; break;
    case MSR_GS_BASE: v = s->seg[CPU_GS].base; break;
    case MSR_KERNEL_GS_BASE: v = s->kernel_gs_base; break;
    case MSR_TSC_AUX: v = s->tsc_aux; break;
    default:
        if ((i = mtrr_fixed_index(index)) >= 0 && (IEM_MTRR_CAP & BIT(8))) {
            v = cpu->mtrr_fixed[i];
            break;
        }
        if ((i = mtrr_var_index(index)) >= 0) {
            v = cpu->mtrr_var[i];
            break;
        }
        return false;
    }
    *value = v;
    return true;
}

static bool efer_write(struct iem_cpu *cpu, uint64_t v)
{
    /* SDM vol. 3A, 2.2.1 and table 2-1: SCE, LME, NXE writable; LMA read-only (writes ignored). */
    struct cpu_state *s = cpu->s;
    uint64_t writable = IEM_EFER_SCE | IEM_EFER_LME | (nx_supported(cpu) ? IEM_EFER_NXE : 0);
    if (v & ~(writable | IEM_EFER_LMA))
        return false;
    if (((v ^ s->efer) & IEM_EFER_LME) && (s->cr0 & IEM_CR0_PG))
        return false;
    uint64_t old = s->efer;
    s->efer = (v & writable) | (old & IEM_EFER_LMA);
    if ((old ^ s->efer) & IEM_EFER_NXE)
        iem_tlb_flush(cpu, true);
    iem_update_mode(cpu);
    return true;
}

static bool mtrr_write(struct iem_cpu *cpu, uint32_t index, uint64_t v)
{
    int i;
    if (index == MSR_MTRR_DEF_TYPE) {
        /* Type in bits 7:0, FE (10), E (11); the rest reserved (SDM vol. 3A, 11.11.2.1). */
        if ((v & ~0xcffULL) || !mtrr_type_ok((uint8_t)v))
            return false;
        cpu->mtrr_def_type = v;
        return true;
    }
    if ((i = mtrr_fixed_index(index)) >= 0 && (IEM_MTRR_CAP & BIT(8))) {
        for (unsigned b = 0; b < 8; b++)
            if (!mtrr_type_ok((uint8_t)(v >> (8 * b))))
                return false;
        cpu->mtrr_fixed[i] = v;
        return true;
    }
    if ((i = mtrr_var_index(index)) >= 0) {
        if (!phys_addr_ok(v))
            return false;
        if (!(i & 1) && ((v & 0xf00) || !mtrr_type_ok((uint8_t)v)))
            return false; /* IA32_MTRR_PHYSBASEn: type, bits 11:8 reserved */
        if ((i & 1) && (v & 0x7ff))
            return false; /* IA32_MTRR_PHYSMASKn: bits 10:0 reserved, 11 valid */
        cpu->mtrr_var[i] = v;
        return true;
    }
    return false;
}

bool iem_msr_write(struct iem_cpu *cpu, uint32_t index, uint64_t v)
{
    struct cpu_state *s = cpu->s;
    switch (index) {
    case MSR_TSC: {
        /* A write to the TSC moves IA32_TSC_ADJUST by the same amount (SDM vol. 3B, 17.17.3). */
        uint64_t ticks = tsc_ticks(cpu);
        cpu->tsc_adjust += v - (ticks + cpu->tsc_offset);
        cpu->tsc_offset = v - ticks;
        lapic_tsc_sync(cpu);
        return true;
    }
    case MSR_TSC_ADJUST:
        /* ... and a write to IA32_TSC_ADJUST moves the TSC by the change. */
        cpu->tsc_offset += v - cpu->tsc_adjust;
        cpu->tsc_adjust = v;
        lapic_tsc_sync(cpu);
        return true;
    case MSR_APIC_BASE:
        /* Bits 0-7, 9 and 10 (x2APIC, not reported) and above MAXPHYADDR are reserved; BSP is read-only. */
        if ((v & 0x6ffULL) || !phys_addr_ok(v))
            return false;
        if (lapic(cpu) && !lapic(cpu)->msr_write(lapic(cpu)->opaque, cpu->vcpu, index, v))
            return false;
        s->apic_base = (v & ~BIT64(8)) | (s->apic_base & BIT64(8));
        return true;
    case MSR_TSC_DEADLINE:
        return lapic(cpu) && lapic(cpu)->msr_write(lapic(cpu)->opaque, cpu->vcpu, index, v);
    case MSR_BIOS_UPDT_TRIG:
    case MSR_BIOS_SIGN_ID:
        return true;
    case MSR_SYSENTER_CS:
        s->sysenter_cs = v & 0xffff;
        return true;
    case MSR_SYSENTER_ESP:
    case MSR_SYSENTER_EIP:
        if (!iem_is_canonical(v))
            return false;
        if (index == MSR_SYSENTER_ESP)
            s->sysenter_esp = v;
        else
            s->sysenter_eip = v;
        return true;
    case MSR_MCG_STATUS:
        return v == 0;
    case MSR_MISC_ENABLE:
        s->misc_enable = v & MISC_WRITABLE;
        if (!nx_supported(cpu) && (s->efer & IEM_EFER_NXE)) {
            s->efer &= ~(uint64_t)IEM_EFER_NXE;
            iem_tlb_flush(cpu, true);
        }
        return true;
    case MSR_DEBUGCTL:
        return (v & ~3ULL) == 0;
    case MSR_PAT:
        for (unsigned b = 0; b < 8; b++)
            if (!pat_type_ok((uint8_t)(v >> (8 * b))))
                return false;
        s->pat = v;
        iem_tlb_flush(cpu, true);
        return true;
    case MSR_EFER:
        return efer_write(cpu, v);
    case MSR_STAR:
        s->star = v;
        return true;
    case MSR_LSTAR:
    case MSR_CSTAR:
    case MSR_FS_BASE:
    case MSR_GS_BASE:
    case MSR_KERNEL_GS_BASE:
        if (!iem_is_canonical(v))
            return false;
        if (index == MSR_LSTAR)
            s->lstar = v;
        else if (index == MSR_CSTAR)
            s->cstar = v;
        else if (index == MSR_FS_BASE)
            s->seg[CPU_FS].base = v;
        else if (index == MSR_GS_BASE)
            s->seg[CPU_GS].base = v;
        else
            s->kernel_gs_base = v;
        return true;
    case MSR_SFMASK:
        if (v >> 32)
            return false;
        s->sfmask = v;
        return true;
    case MSR_TSC_AUX:
        if (v >> 32)
            return false;
        s->tsc_aux = v;
        return true;
    default:
        return mtrr_write(cpu, index, v);
    }
}

/* ---- Instructions ------------------------------------------------------------------------------ */

int iem_sys_handler_cpuid(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)in;
    uint32_t out[4];
    iem_cpuid(cpu, (uint32_t)cpu->s->gpr[CPU_RAX], (uint32_t)cpu->s->gpr[CPU_RCX], out);
    iem_gpr_write(cpu, CPU_RAX, 4, out[0]);
    iem_gpr_write(cpu, CPU_RBX, 4, out[1]);
    iem_gpr_write(cpu, CPU_RCX, 4, out[2]);
    iem_gpr_write(cpu, CPU_RDX, 4, out[3]);
    return IEM_NEXT;
}

int iem_sys_handler_rdmsr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)in;
    uint64_t v;
    if (cpu->cpl != 0 || !iem_msr_read(cpu, (uint32_t)cpu->s->gpr[CPU_RCX], &v))
        iem_raise_gp0(cpu);
    iem_gpr_write(cpu, CPU_RAX, 4, (uint32_t)v);
    iem_gpr_write(cpu, CPU_RDX, 4, (uint32_t)(v >> 32));
    return IEM_NEXT;
}

int iem_sys_handler_wrmsr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    uint64_t v = (uint32_t)s->gpr[CPU_RAX] | ((uint64_t)(uint32_t)s->gpr[CPU_RDX] << 32);
    if (cpu->cpl != 0 || !iem_msr_write(cpu, (uint32_t)s->gpr[CPU_RCX], v))
        iem_raise_gp0(cpu);
    /* EFER, PAT and MTRR writes can change the mode or the translations: leave the block. */
    s->rip = iem_sys_next_rip(cpu, in);
    return IEM_STOP;
}

/* CR4.TSD restricts RDTSC/RDTSCP to CPL 0 (SDM vol. 2B, RDTSC). */
static void tsc_check(struct iem_cpu *cpu)
{
    if ((cpu->s->cr4 & IEM_CR4_TSD) && cpu->cpl != 0)
        iem_raise_gp0(cpu);
}

int iem_sys_handler_rdtsc(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)in;
    tsc_check(cpu);
    uint64_t t = iem_tsc_read(cpu);
    iem_gpr_write(cpu, CPU_RAX, 4, (uint32_t)t);
    iem_gpr_write(cpu, CPU_RDX, 4, (uint32_t)(t >> 32));
    return IEM_NEXT;
}

int iem_sys_handler_rdtscp(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)in;
    tsc_check(cpu);
    uint64_t t = iem_tsc_read(cpu);
    iem_gpr_write(cpu, CPU_RAX, 4, (uint32_t)t);
    iem_gpr_write(cpu, CPU_RDX, 4, (uint32_t)(t >> 32));
    iem_gpr_write(cpu, CPU_RCX, 4, (uint32_t)cpu->s->tsc_aux);
    return IEM_NEXT;
}

int iem_sys_handler_rdpmc(struct iem_cpu *cpu, const struct iem_insn *in)
{
    /* No performance counters are reported (leaf 0Ah is zero): every ECX is invalid -> #GP(0),
     * as is CPL > 0 without CR4.PCE (SDM vol. 2B, RDPMC). */
    (void)in;
    iem_raise_gp0(cpu);
}
