/* iem-sys-desc.c - segment, descriptor-table, control- and debug-register instructions of the interpreter. */

/*
 * MOV/PUSH/POP Sreg, LDS/LES/LFS/LGS/LSS, LGDT/LIDT/SGDT/SIDT, LLDT/SLDT/LTR/STR,
 * LAR/LSL/VERR/VERW/ARPL, MOV CRn/DRn, LMSW/SMSW/CLTS (Intel SDM vol. 2, one page
 * each).  The control-register writers check every reserved bit and mode rule of
 * SDM vol. 3A, 2.5 and 9.8.5 (IA-32e activation) and keep the TLB and the mode in step.
 */
#include "iem-dbg.h"
#include "iem-sys.h"

#include "Zydis/Mnemonic.h"

/* The architectural CR0 bits (SDM vol. 3A, 2.5); writes of the others are ignored. */
#define CR0_DEFINED (IEM_CR0_PE | IEM_CR0_MP | IEM_CR0_EM | IEM_CR0_TS | CPU_CR0_ET | IEM_CR0_NE | IEM_CR0_WP | \
                     IEM_CR0_AM | CPU_CR0_NW | CPU_CR0_CD | IEM_CR0_PG)
#define IEM_CR4_MCE (1u << 6)
#define IEM_CR4_PCE (1u << 8)
/* CR4 bits of the features CPUID reports; the rest are reserved (#GP). */
#define CR4_VALID (IEM_CR4_VME | IEM_CR4_PVI | IEM_CR4_TSD | IEM_CR4_DE | IEM_CR4_PSE | IEM_CR4_PAE | IEM_CR4_MCE | \
                   IEM_CR4_PGE | IEM_CR4_PCE | IEM_CR4_OSFXSR | IEM_CR4_OSXMMEXCPT)
#define DR6_FIXED1 0xffff0ff0u
#define DR6_WRITABLE 0xe00fu
#define DR7_FIXED1 0x400u
#define DR7_WRITABLE 0xffff23ffu
#define DR7_GD (1u << 13)
#define DR6_BD (1u << 13)

static bool prot_mode(const struct iem_cpu *cpu)
{
    return (cpu->s->cr0 & IEM_CR0_PE) && !(cpu->s->rflags & IEM_F_VM);
}

static void set_zf(struct iem_cpu *cpu, bool on)
{
    cpu->s->rflags = (cpu->s->rflags & ~(uint64_t)IEM_F_ZF) | (on ? IEM_F_ZF : 0);
}

/* Effective address plus n, wrapped to the address size. */
static uint64_t ea_plus(const struct iem_insn *in, uint64_t ea, unsigned n)
{
    uint64_t v = ea + n;
    if (in->addrsize == 2)
        return v & 0xffff;
    if (in->addrsize == 4)
        return v & 0xffffffffu;
    return v;
}

static uint64_t mem_read_sized(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size)
{
    switch (size) {
    case 8: return iem_mem_read64(cpu, seg, off);
    case 4: return iem_mem_read32(cpu, seg, off);
    default: return iem_mem_read16(cpu, seg, off);
    }
}

/* ---- Segment registers ------------------------------------------------------------------------ */

int iem_mov_seg(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (in->op[0].kind == IEM_OPK_SEG) {
        unsigned seg = in->op[0].reg;
        if (seg == CPU_CS || seg > CPU_GS)
            iem_raise_ud(cpu);
        iem_seg_load(cpu, seg, (uint16_t)iem_op_read(cpu, in, 1));
        /* MOV SS inhibits interrupts and debug traps until the next instruction ends (SDM vol. 2B, MOV). */
        if (seg == CPU_SS)
            cpu->inhibit_irq_next = true;
        return IEM_NEXT;
    }
    unsigned seg = in->op[1].reg;
    if (seg > CPU_GS)
        iem_raise_ud(cpu);
    iem_op_write(cpu, in, 0, cpu->s->seg[seg].sel);
    return IEM_NEXT;
}

int iem_push_seg(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned seg = in->op[0].reg;
    if (seg > CPU_GS)
        iem_raise_ud(cpu);
    iem_push(cpu, in->opsize, cpu->s->seg[seg].sel);
    return IEM_NEXT;
}

int iem_pop_seg(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    unsigned seg = in->op[0].reg;
    if (seg == CPU_CS || seg > CPU_GS)
        iem_raise_ud(cpu);
    uint64_t v = iem_stack_peek(cpu, in->opsize, 0);
    /* SP moves with the stack width in force before the load (a POP SS may change SS.B). */
    uint64_t mask = cpu->mode == IEM_MODE_LONG64 ? ~0ULL : cpu->stack32 ? 0xffffffffULL : 0xffffULL;
    uint64_t rsp = s->gpr[CPU_RSP];
    iem_seg_load(cpu, seg, (uint16_t)v);
    s->gpr[CPU_RSP] = (rsp & ~mask) | ((rsp + in->opsize) & mask);
    if (seg == CPU_SS)
        cpu->inhibit_irq_next = true;
    return IEM_NEXT;
}

/* LDS/LES/LFS/LGS/LSS r, m16:xx: the selector follows the offset. */
static int h_lxs(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned seg;
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_LDS: seg = CPU_DS; break;
    case ZYDIS_MNEMONIC_LES: seg = CPU_ES; break;
    case ZYDIS_MNEMONIC_LFS: seg = CPU_FS; break;
    case ZYDIS_MNEMONIC_LGS: seg = CPU_GS; break;
    default: seg = CPU_SS; break;
    }
    if (in->op[1].kind != IEM_OPK_MEM || in->op[1].size < 4)
        iem_raise_ud(cpu);
    unsigned offsz = in->op[1].size - 2u;
    uint64_t ea = iem_ea(cpu, in);
    uint64_t off = mem_read_sized(cpu, in->mem.seg, ea, offsz);
    uint16_t sel = iem_mem_read16(cpu, in->mem.seg, ea_plus(in, ea, offsz));
    iem_seg_load(cpu, seg, sel);
    iem_op_write(cpu, in, 0, off);
    return IEM_NEXT;
}

/* ---- Descriptor tables ------------------------------------------------------------------------------ */

static void require_cpl0(struct iem_cpu *cpu)
{
    if (cpu->cpl != 0)
        iem_raise_gp0(cpu);
}

/* LGDT/LIDT m16&32 (m16&64 in 64-bit mode); a 16-bit operand loads a 24-bit base. */
static int h_lxdt(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    if (in->op[0].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    require_cpl0(cpu);
    uint64_t ea = iem_ea(cpu, in);
    uint16_t limit = iem_mem_read16(cpu, in->mem.seg, ea);
    uint64_t base;
    if (cpu->mode == IEM_MODE_LONG64) {
        base = iem_mem_read64(cpu, in->mem.seg, ea_plus(in, ea, 2));
        if (!iem_is_canonical(base))
            iem_raise_gp0(cpu);
    } else {
        base = iem_mem_read32(cpu, in->mem.seg, ea_plus(in, ea, 2));
        if (in->opsize == 2)
            base &= 0xffffff;
    }
    struct cpu_dtable *t = in->mnemonic == ZYDIS_MNEMONIC_LGDT ? &s->gdtr : &s->idtr;
    t->base = base;
    t->limit = limit;
    return IEM_NEXT;
}

/* SGDT/SIDT: limit then base (all 32 bits outside 64-bit mode, SDM vol. 2B SGDT); no CPL check without UMIP. */
static int h_sxdt(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    if (in->op[0].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    const struct cpu_dtable *t = in->mnemonic == ZYDIS_MNEMONIC_SGDT ? &s->gdtr : &s->idtr;
    uint64_t ea = iem_ea(cpu, in);
    bool long64 = cpu->mode == IEM_MODE_LONG64;
    iem_mem_probe_write(cpu, in->mem.seg, ea, long64 ? 10 : 6);
    iem_mem_write16(cpu, in->mem.seg, ea, t->limit);
    if (long64)
        iem_mem_write64(cpu, in->mem.seg, ea_plus(in, ea, 2), t->base);
    else
        iem_mem_write32(cpu, in->mem.seg, ea_plus(in, ea, 2), (uint32_t)t->base);
    return IEM_NEXT;
}

/* LLDT and LTR share their prelude: protected mode, CPL 0, a GDT selector (SDM vol. 2A, LLDT/LTR). */
static int h_lldt_ltr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    bool is_ltr = in->mnemonic == ZYDIS_MNEMONIC_LTR;
    if (!prot_mode(cpu))
        iem_raise_ud(cpu);
    require_cpl0(cpu);
    uint16_t sel = (uint16_t)iem_op_read(cpu, in, 0);
    uint32_t err = sel & 0xfffc;
    if (err == 0) {
        if (is_ltr)
            iem_raise_gp0(cpu);
        iem_seg_set_null(cpu, CPU_LDTR, sel, 0);
        return IEM_NEXT;
    }
    if (sel & 4)
        iem_raise_err(cpu, IEM_X_GP, err);
    uint64_t d[2];
    iem_desc_fetch(cpu, sel, IEM_X_GP, 0, d);
    bool lma = (s->efer & IEM_EFER_LMA) != 0;
    unsigned type = iem_desc_type(d[0]);
    bool ok;
    if (is_ltr)
        ok = type == IEM_SYS_TSS_AVAIL || (!lma && type == IEM_SYS_TSS16_AVAIL);
    else
        ok = type == IEM_SYS_LDT;
    if (iem_desc_is_s(d[0]) || !ok)
        iem_raise_err(cpu, IEM_X_GP, err);
    if (!iem_desc_is_present(d[0]))
        iem_raise_err(cpu, IEM_X_NP, err);
    if (lma && !iem_is_canonical(((d[0] >> 16) & 0xffffffu) | ((d[0] >> 32) & 0xff000000u) |
                                 ((d[1] & 0xffffffffu) << 32)))
        iem_raise_err(cpu, IEM_X_GP, err);
    if (is_ltr) {
        iem_desc_set_busy(cpu, sel, true, &d[0]);
        iem_seg_from_desc(&s->seg[CPU_TR], sel, d);
    } else {
        iem_seg_from_desc(&s->seg[CPU_LDTR], sel, d);
    }
    return IEM_NEXT;
}

static int h_sldt_str(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (!prot_mode(cpu))
        iem_raise_ud(cpu);
    unsigned seg = in->mnemonic == ZYDIS_MNEMONIC_STR ? CPU_TR : CPU_LDTR;
    iem_op_write(cpu, in, 0, cpu->s->seg[seg].sel);
    return IEM_NEXT;
}

/* A descriptor read for LAR/LSL/VERR/VERW: outside the table is "not valid" (ZF = 0), not a fault. */
static bool desc_probe(struct iem_cpu *cpu, uint16_t sel, uint64_t *d)
{
    const struct cpu_state *s = cpu->s;
    if ((sel & 0xfffc) == 0)
        return false;
    uint64_t base;
    uint32_t limit;
    if (sel & 4) {
        if (s->seg[CPU_LDTR].attr & CPU_SEG_ATTR_UNUSABLE)
            return false;
        base = s->seg[CPU_LDTR].base;
        limit = s->seg[CPU_LDTR].limit;
    } else {
        base = s->gdtr.base;
        limit = s->gdtr.limit;
    }
    if ((uint64_t)(sel & 0xfff8) + 7 > limit)
        return false;
    uint64_t a = base + (sel & 0xfff8);
    if (!(s->efer & IEM_EFER_LMA))
        a = (uint32_t)a;
    *d = iem_lin_read(cpu, a, 8, IEM_ACC_SYS);
    return true;
}

/* Privilege rule of LAR/LSL/VERR/VERW: conforming code is always visible, the rest needs DPL >= CPL, RPL. */
static bool desc_visible(const struct iem_cpu *cpu, uint16_t sel, uint64_t d)
{
    if (iem_desc_is_conforming(d))
        return true;
    unsigned dpl = iem_desc_dpl(d);
    return dpl >= cpu->cpl && dpl >= (sel & 3u);
}

static int h_lar_lsl(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (!prot_mode(cpu))
        iem_raise_ud(cpu);
    bool is_lar = in->mnemonic == ZYDIS_MNEMONIC_LAR;
    uint16_t sel = (uint16_t)iem_op_read(cpu, in, 1);
    uint64_t d;
    bool ok = desc_probe(cpu, sel, &d);
    if (ok && !iem_desc_is_s(d)) {
        /* System types LAR/LSL accept (SDM vol. 2A, LAR table 3-55; LSL table 3-62). */
        unsigned type = iem_desc_type(d);
        bool lma = (cpu->s->efer & IEM_EFER_LMA) != 0;
        unsigned valid;
        if (is_lar)
            valid = lma ? (1u << 2) | (1u << 9) | (1u << 0xb) | (1u << 0xc)
                        : (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 9) | (1u << 0xb) |
                              (1u << 0xc);
        else
            valid = lma ? (1u << 2) | (1u << 9) | (1u << 0xb)
                        : (1u << 1) | (1u << 2) | (1u << 3) | (1u << 9) | (1u << 0xb);
        ok = (valid >> type) & 1;
    }
    if (ok)
        ok = desc_visible(cpu, sel, d);
    set_zf(cpu, ok);
    if (!ok)
        return IEM_NEXT;
    uint64_t v;
    if (is_lar) {
        v = (d >> 32) & (in->opsize == 2 ? 0xff00u : 0x00f0ff00u);
    } else {
        uint64_t desc[2] = {d, 0};
        struct cpu_seg tmp;
        iem_seg_from_desc(&tmp, sel, desc);
        v = tmp.limit;
    }
    iem_op_write(cpu, in, 0, v);
    return IEM_NEXT;
}

static int h_verr_verw(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (!prot_mode(cpu))
        iem_raise_ud(cpu);
    uint16_t sel = (uint16_t)iem_op_read(cpu, in, 0);
    uint64_t d;
    bool ok = desc_probe(cpu, sel, &d) && iem_desc_is_s(d) && desc_visible(cpu, sel, d);
    if (ok) {
        if (in->mnemonic == ZYDIS_MNEMONIC_VERR)
            ok = iem_desc_is_readable(d);
        else
            ok = iem_desc_is_writable_data(d);
    }
    set_zf(cpu, ok);
    return IEM_NEXT;
}

static int h_arpl(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (!prot_mode(cpu))
        iem_raise_ud(cpu);
    uint16_t dst = (uint16_t)iem_op_read(cpu, in, 0);
    uint16_t src = (uint16_t)iem_op_read(cpu, in, 1);
    if ((dst & 3) < (src & 3)) {
        iem_op_write(cpu, in, 0, (dst & ~3u) | (src & 3u));
        set_zf(cpu, true);
    } else {
        set_zf(cpu, false);
    }
    return IEM_NEXT;
}

/* ---- Control registers -------------------------------------------------------------------------------- */

void iem_cr0_write(struct iem_cpu *cpu, uint64_t value)
{
    struct cpu_state *s = cpu->s;
    if (value >> 32)
        iem_raise_gp0(cpu);
    uint64_t v = (value & CR0_DEFINED) | CPU_CR0_ET; /* ET is hardwired to 1 */
    if ((v & IEM_CR0_PG) && !(v & IEM_CR0_PE))
        iem_raise_gp0(cpu);
    if ((v & CPU_CR0_NW) && !(v & CPU_CR0_CD))
        iem_raise_gp0(cpu);
    uint64_t old = s->cr0;
    uint64_t efer = s->efer;
    if (!(old & IEM_CR0_PG) && (v & IEM_CR0_PG) && (efer & IEM_EFER_LME)) {
        /* IA-32e activation (SDM vol. 3A, 9.8.5): needs PAE and a CS that is not 64-bit code. */
        if (!(s->cr4 & IEM_CR4_PAE) || (s->seg[CPU_CS].attr & CPU_SEG_ATTR_L))
            iem_raise_gp0(cpu);
        efer |= IEM_EFER_LMA;
    }
    if ((old & IEM_CR0_PG) && !(v & IEM_CR0_PG) && (efer & IEM_EFER_LMA)) {
        /* Leaving IA-32e mode is only possible from compatibility mode (SDM vol. 3A, 9.8.5.4). */
        if (cpu->mode == IEM_MODE_LONG64)
            iem_raise_gp0(cpu);
        efer &= ~(uint64_t)IEM_EFER_LMA;
    }
    s->cr0 = v;
    s->efer = efer;
    if ((old ^ v) & (IEM_CR0_PG | IEM_CR0_WP | IEM_CR0_PE | CPU_CR0_CD | CPU_CR0_NW))
        iem_tlb_flush(cpu, true);
    iem_update_mode(cpu);
}

void iem_cr3_write(struct iem_cpu *cpu, uint64_t value)
{
    struct cpu_state *s = cpu->s;
    if (s->efer & IEM_EFER_LMA) {
        /* Bits from MAXPHYADDR up are reserved without PCIDs (SDM vol. 3A, 4.5). */
        if (value >> IEM_SYS_PHYS_BITS)
            iem_raise_gp0(cpu);
    } else {
        value = (uint32_t)value;
    }
    s->cr3 = value;
    iem_tlb_flush(cpu, false);
}

void iem_cr4_write(struct iem_cpu *cpu, uint64_t value)
{
    struct cpu_state *s = cpu->s;
    if (value & ~(uint64_t)CR4_VALID)
        iem_raise_gp0(cpu);
    if ((s->efer & IEM_EFER_LMA) && !(value & IEM_CR4_PAE))
        iem_raise_gp0(cpu);
    uint64_t old = s->cr4;
    s->cr4 = value;
    /* SDM vol. 3A, 4.10.4.1: changes of PSE, PAE and PGE invalidate every TLB entry. */
    if ((old ^ value) & (IEM_CR4_PSE | IEM_CR4_PAE | IEM_CR4_PGE))
        iem_tlb_flush(cpu, true);
    /* CR4.DE makes R/W = 10 breakpoints I/O breakpoints (SDM vol. 3B, 17.2.4). */
    if ((old ^ value) & IEM_CR4_DE)
        iem_dbg_sync(iem_core_of(cpu));
    iem_update_mode(cpu);
}

/*
 * CR8 is the task-priority register's priority class, TPR[7:4] (SDM vol. 3A, 10.8.6.1): with
 * the local APIC model present it lives there; without one the CPU keeps the value itself.
 */
static uint64_t iem_cr8_read(struct iem_cpu *cpu)
{
    const struct vm_intc *intc = vm_get_intc(cpu->vm);
    if (intc->tpr_get)
        return intc->tpr_get(intc->opaque, cpu->vcpu) >> 4;
    return cpu->s->cr8 & 0xf;
}

static void iem_cr8_write(struct iem_cpu *cpu, uint64_t v)
{
    const struct vm_intc *intc = vm_get_intc(cpu->vm);
    if (intc->tpr_set)
        intc->tpr_set(intc->opaque, cpu->vcpu, (uint8_t)(v << 4));
    cpu->s->cr8 = v;
}

int iem_mov_cr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    bool to_cr = in->op[0].kind == IEM_OPK_CR;
    unsigned n = to_cr ? in->op[0].reg : in->op[1].reg;
    bool long64 = cpu->mode == IEM_MODE_LONG64;
    if (!(n == 0 || n == 2 || n == 3 || n == 4 || (n == 8 && long64)))
        iem_raise_ud(cpu);
    require_cpl0(cpu);
    if (!to_cr) {
        uint64_t v;
        switch (n) {
        case 0: v = s->cr0; break;
        case 2: v = s->cr2; break;
        case 3: v = s->cr3; break;
        case 4: v = s->cr4; break;
        default: v = iem_cr8_read(cpu); break;
        }
        iem_op_write(cpu, in, 0, long64 ? v : (uint32_t)v);
        return IEM_NEXT;
    }
    uint64_t v = iem_op_read(cpu, in, 1);
    if (!long64)
        v = (uint32_t)v;
    switch (n) {
    case 0: iem_cr0_write(cpu, v); break;
    case 2: s->cr2 = v; break;
    case 3: iem_cr3_write(cpu, v); break;
    case 4: iem_cr4_write(cpu, v); break;
    default:
        if (v & ~0xfULL)
            iem_raise_gp0(cpu);
        iem_cr8_write(cpu, v);
        break;
    }
    s->rip = iem_sys_next_rip(cpu, in);
    return IEM_STOP;
}

static int h_lmsw(struct iem_cpu *cpu, const struct iem_insn *in)
{
    require_cpl0(cpu);
    uint64_t v = iem_op_read(cpu, in, 0);
    uint64_t cr0 = cpu->s->cr0;
    /* LMSW loads MP, EM, TS and can set PE but never clear it (SDM vol. 2A, LMSW). */
    cr0 = (cr0 & ~0xeULL) | (v & 0xe) | (cr0 & 1) | (v & 1);
    iem_cr0_write(cpu, cr0);
    cpu->s->rip = iem_sys_next_rip(cpu, in);
    return IEM_STOP;
}

static int h_smsw(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_op_write(cpu, in, 0, cpu->s->cr0);
    return IEM_NEXT;
}

static int h_clts(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)in;
    require_cpl0(cpu);
    cpu->s->cr0 &= ~(uint64_t)IEM_CR0_TS;
    return IEM_NEXT;
}

/* ---- Debug registers ----------------------------------------------------------------------------------- */

int iem_mov_dr(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    bool to_dr = in->op[0].kind == IEM_OPK_DR;
    unsigned n = to_dr ? in->op[0].reg : in->op[1].reg;
    if (n > 7)
        iem_raise_ud(cpu);
    /* DR4/DR5 alias DR6/DR7 unless CR4.DE makes them #UD (SDM vol. 3B, 17.2.2). */
    if (n == 4 || n == 5) {
        if (s->cr4 & IEM_CR4_DE)
            iem_raise_ud(cpu);
        n += 2;
    }
    require_cpl0(cpu);
    /*
     * General detect: the access faults with DR6.BD and clears GD so the handler can use DRs
     * (17.2.4).  It is a fault-class #DB other than an instruction breakpoint, so the EFLAGS
     * image pushed has RF set (17.3.1.1); delivery clears RF in EFLAGS itself.
     */
    if (s->dr[7] & DR7_GD) {
        s->dr[6] |= DR6_BD;
        s->dr[7] &= ~(uint64_t)DR7_GD;
        s->rflags |= IEM_F_RF;
        iem_raise(cpu, IEM_X_DB);
    }
    bool long64 = cpu->mode == IEM_MODE_LONG64;
    if (!to_dr) {
        uint64_t v = s->dr[n];
        iem_op_write(cpu, in, 0, long64 ? v : (uint32_t)v);
        return IEM_NEXT;
    }
    uint64_t v = iem_op_read(cpu, in, 1);
    if (!long64)
        v = (uint32_t)v;
    if (n == 6 || n == 7) {
        if (v >> 32)
            iem_raise_gp0(cpu);
        s->dr[n] = n == 6 ? (v & DR6_WRITABLE) | DR6_FIXED1 : (v & DR7_WRITABLE) | DR7_FIXED1;
        if (n == 6)
            return IEM_NEXT;
    } else {
        s->dr[n] = v;
        /* An address with no breakpoint enabled changes nothing the TLB or the block loop keep. */
        if (!iem_core_of(cpu)->dbg_exec)
            return IEM_NEXT;
    }
    /*
     * Breakpoints changed: the TLB must stop (or may start again) mapping watched pages
     * directly, and the next instruction must already be checked, so the block ends here.
     */
    iem_dbg_changed(cpu);
    s->rip = iem_sys_next_rip(cpu, in);
    return IEM_STOP;
}

/* ---- Handler map entries of this file ----------------------------------------------------------------------- */

int iem_sys_desc_dispatch(struct iem_cpu *cpu, const struct iem_insn *in)
{
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_LDS:
    case ZYDIS_MNEMONIC_LES:
    case ZYDIS_MNEMONIC_LFS:
    case ZYDIS_MNEMONIC_LGS:
    case ZYDIS_MNEMONIC_LSS:
        return h_lxs(cpu, in);
    case ZYDIS_MNEMONIC_LGDT:
    case ZYDIS_MNEMONIC_LIDT:
        return h_lxdt(cpu, in);
    case ZYDIS_MNEMONIC_SGDT:
    case ZYDIS_MNEMONIC_SIDT:
        return h_sxdt(cpu, in);
    case ZYDIS_MNEMONIC_LLDT:
    case ZYDIS_MNEMONIC_LTR:
        return h_lldt_ltr(cpu, in);
    case ZYDIS_MNEMONIC_SLDT:
    case ZYDIS_MNEMONIC_STR:
        return h_sldt_str(cpu, in);
    case ZYDIS_MNEMONIC_LAR:
    case ZYDIS_MNEMONIC_LSL:
        return h_lar_lsl(cpu, in);
    case ZYDIS_MNEMONIC_VERR:
    case ZYDIS_MNEMONIC_VERW:
        return h_verr_verw(cpu, in);
    case ZYDIS_MNEMONIC_ARPL:
        return h_arpl(cpu, in);
    case ZYDIS_MNEMONIC_LMSW:
        return h_lmsw(cpu, in);
    case ZYDIS_MNEMONIC_SMSW:
        return h_smsw(cpu, in);
    case ZYDIS_MNEMONIC_CLTS:
        return h_clts(cpu, in);
    default:
        iem_raise_ud(cpu);
    }
}
