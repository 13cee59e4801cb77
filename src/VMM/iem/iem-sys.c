/* iem-sys.c - the interpreter's system instructions: interrupts, IRET, far transfers, flags, fast system calls, cache/TLB control, and the handler table. */

/*
 * Design.  System instructions are rare next to integer code, so the handlers here
 * favour exactness over speed: every privilege and mode check of the instruction's
 * page in Intel SDM vol. 2 happens before any state changes.  The heavy lifting lives
 * in iem-seg.c (segment loads, stacks), iem-far.c (far JMP/CALL/RET, IRET), iem-task.c
 * (task switches), iem-except.c (interrupt delivery), iem-sys-desc.c (descriptor
 * tables, CRn/DRn) and iem-sys-msr.c (CPUID, MSRs, TSC).
 *
 * Instructions that change the mode, the privilege level, the interrupt flag or the
 * translation return IEM_STOP with RIP set, so the block loop re-checks pending
 * interrupts and the decoded-block key.
 */
#include <stdatomic.h>

#include "iem-sys.h"

#include "Zydis/Mnemonic.h"

uint64_t iem_sys_next_rip(const struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t r = cpu->insn_rip + in->len;
    if (cpu->code_size == 2)
        return r & 0xffff;
    if (cpu->code_size == 4)
        return r & 0xffffffffu;
    return r;
}

static int stop_at_next(struct iem_cpu *cpu, const struct iem_insn *in)
{
    cpu->s->rip = iem_sys_next_rip(cpu, in);
    return IEM_STOP;
}

static unsigned iopl_of(const struct iem_cpu *cpu)
{
    return (unsigned)(cpu->s->rflags >> 12) & 3;
}

static bool is_v86(const struct iem_cpu *cpu)
{
    return (cpu->s->cr0 & IEM_CR0_PE) && (cpu->s->rflags & IEM_F_VM);
}

/* ---- Software interrupts and IRET --------------------------------------------------------------- */

static int h_int(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t next = iem_sys_next_rip(cpu, in);
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_INT3:
        iem_deliver(cpu, IEM_X_BP, IEM_INT_SOFT_EXC, false, 0, next);
        break;
    case ZYDIS_MNEMONIC_INT1:
        iem_deliver(cpu, IEM_X_DB, IEM_INT_ICEBP, false, 0, next);
        break;
    case ZYDIS_MNEMONIC_INTO:
        if (cpu->mode == IEM_MODE_LONG64)
            iem_raise_ud(cpu);
        if (!(cpu->s->rflags & IEM_F_OF))
            return IEM_NEXT;
        iem_deliver(cpu, IEM_X_OF, IEM_INT_SOFT_EXC, false, 0, next);
        break;
    default:
        iem_deliver(cpu, (int)(in->imm & 0xff), IEM_INT_SOFTWARE, false, 0, next);
        break;
    }
    return IEM_STOP;
}

static int h_iret(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned opsize = in->mnemonic == ZYDIS_MNEMONIC_IRETQ ? 8 : in->mnemonic == ZYDIS_MNEMONIC_IRETD ? 4 : 2;
    iem_iret(cpu, opsize);
    return IEM_STOP;
}

/* ---- Far transfers (entry points for the integer family's JMP/CALL/RET) --------------------------- */

/* The target of a far JMP/CALL: an immediate pointer, or m16:16/m16:32/m16:64 (offset first). */
static void far_operand(struct iem_cpu *cpu, const struct iem_insn *in, uint16_t *sel, uint64_t *off,
                        unsigned *opsize)
{
    if (in->op[0].kind == IEM_OPK_PTR) {
        *sel = (uint16_t)in->imm2;
        *off = in->imm;
        *opsize = in->opsize;
        return;
    }
    if (in->op[0].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    unsigned size = in->op[0].size;
    if (size != 4 && size != 6 && size != 10)
        size = in->opsize + 2u;
    unsigned offsz = size - 2u;
    uint64_t ea = iem_ea(cpu, in);
    unsigned seg = in->mem.seg;
    *off = offsz == 8 ? iem_mem_read64(cpu, seg, ea) : offsz == 4 ? iem_mem_read32(cpu, seg, ea)
                                                                    : iem_mem_read16(cpu, seg, ea);
    uint64_t sel_ea = ea + offsz;
    if (in->addrsize == 2)
        sel_ea &= 0xffff;
    else if (in->addrsize == 4)
        sel_ea &= 0xffffffffu;
    *sel = iem_mem_read16(cpu, seg, sel_ea);
    *opsize = offsz;
}

int iem_jmp_far(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint16_t sel;
    uint64_t off;
    unsigned opsize;
    far_operand(cpu, in, &sel, &off, &opsize);
    iem_far_jump(cpu, sel, off, opsize);
    return IEM_STOP;
}

int iem_call_far(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint16_t sel;
    uint64_t off;
    unsigned opsize;
    far_operand(cpu, in, &sel, &off, &opsize);
    iem_far_call(cpu, sel, off, opsize);
    return IEM_STOP;
}

int iem_ret_far(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint16_t pop = in->opcode == 0xca ? (uint16_t)in->imm : 0;
    iem_far_return(cpu, in->opsize, pop);
    return IEM_STOP;
}

/* ---- HLT, CLI, STI, PUSHF, POPF --------------------------------------------------------------------- */

static int h_hlt(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (cpu->cpl != 0)
        iem_raise_gp0(cpu);
    cpu->s->halted = true;
    return stop_at_next(cpu, in);
}

/*
 * CLI/STI (SDM vol. 2A CLI, vol. 2B STI, table 3-7): IF where CPL <= IOPL (always in
 * real mode); VIF in virtual-8086 mode with VME or at CPL 3 with PVI; #GP(0) otherwise.
 * STI also faults when it would set VIF with VIP pending.
 */
static int h_cli_sti(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    bool set = in->mnemonic == ZYDIS_MNEMONIC_STI;
    uint64_t bit;
    if (!(s->cr0 & IEM_CR0_PE)) {
        bit = IEM_F_IF;
    } else if (s->rflags & IEM_F_VM) {
        if (iopl_of(cpu) == 3)
            bit = IEM_F_IF;
        else if (s->cr4 & IEM_CR4_VME)
            bit = IEM_F_VIF;
        else
            iem_raise_gp0(cpu);
    } else if (cpu->cpl <= iopl_of(cpu)) {
        bit = IEM_F_IF;
    } else if ((s->cr4 & IEM_CR4_PVI) && cpu->cpl == 3) {
        bit = IEM_F_VIF;
    } else {
        iem_raise_gp0(cpu);
    }
    if (!set) {
        s->rflags &= ~bit;
        return IEM_NEXT;
    }
    if (bit == IEM_F_VIF && (s->rflags & IEM_F_VIP))
        iem_raise_gp0(cpu);
    bool was_set = (s->rflags & bit) != 0;
    s->rflags |= bit;
    if (bit != IEM_F_IF || was_set)
        return IEM_NEXT;
    /* Interrupts stay blocked until the instruction after STI completes. */
    cpu->inhibit_irq_next = true;
    return stop_at_next(cpu, in);
}

static unsigned flags_opsize(const struct iem_insn *in)
{
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_PUSHFQ: case ZYDIS_MNEMONIC_POPFQ: return 8;
    case ZYDIS_MNEMONIC_PUSHFD: case ZYDIS_MNEMONIC_POPFD: return 4;
    default: return 2;
    }
}

static int h_pushf(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    unsigned opsize = flags_opsize(in);
    /* The image never has VM or RF set (SDM vol. 2B, PUSHF). */
    uint64_t v = s->rflags & ~(uint64_t)(IEM_F_VM | IEM_F_RF);
    if (is_v86(cpu) && iopl_of(cpu) < 3) {
        /* Virtual-8086 without IOPL 3: only the VME form, IF read from VIF and IOPL as 3. */
        if (!(s->cr4 & IEM_CR4_VME) || opsize != 2)
            iem_raise_gp0(cpu);
        v = (v & ~(uint64_t)IEM_F_IF) | ((s->rflags & IEM_F_VIF) ? IEM_F_IF : 0) | IEM_F_IOPL;
    }
    iem_push(cpu, opsize, opsize == 2 ? (v & 0xffff) : opsize == 4 ? (uint32_t)v : v);
    return IEM_NEXT;
}

static int h_popf(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    unsigned opsize = flags_opsize(in);
    if (is_v86(cpu) && iopl_of(cpu) < 3) {
        if (!(s->cr4 & IEM_CR4_VME) || opsize != 2)
            iem_raise_gp0(cpu);
        uint64_t peek = iem_stack_peek(cpu, 2, 0);
        if ((peek & IEM_F_TF) || ((peek & IEM_F_IF) && (s->rflags & IEM_F_VIP)))
            iem_raise_gp0(cpu);
    }
    bool if_was = (s->rflags & IEM_F_IF) != 0;
    uint64_t v = iem_pop(cpu, opsize);
    iem_flags_write(cpu, v, opsize == 2 ? 0xffff : opsize == 4 ? 0xffffffffu : ~0ULL);
    if (!if_was && (s->rflags & IEM_F_IF))
        return stop_at_next(cpu, in);
    return IEM_NEXT;
}

/* ---- SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS ---------------------------------------------------------- */

/* SYSCALL (SDM vol. 2B): 64-bit mode only on Intel, EFER.SCE; flat CS/SS from STAR[47:32]. */
static int h_syscall(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    if (!(s->efer & IEM_EFER_SCE) || cpu->mode != IEM_MODE_LONG64)
        iem_raise_ud(cpu);
    uint16_t cs = (uint16_t)(s->star >> 32) & 0xfffc;
    s->gpr[CPU_RCX] = iem_sys_next_rip(cpu, in);
    s->gpr[CPU_R11] = s->rflags & ~(uint64_t)IEM_F_RF;
    iem_seg_set_flat(cpu, CPU_CS, cs, 0, true, true);
    iem_seg_set_flat(cpu, CPU_SS, (uint16_t)(cs + 8), 0, false, false);
    s->rflags = (s->rflags & ~(s->sfmask | IEM_F_RF)) | 2;
    s->rip = s->lstar;
    iem_update_mode(cpu);
    return IEM_STOP;
}

/* SYSRET (SDM vol. 2B): CPL 3 flat segments from STAR[63:48]; RCX must be canonical for 64-bit. */
static int h_sysret(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    if (!(s->efer & IEM_EFER_SCE) || cpu->mode != IEM_MODE_LONG64)
        iem_raise_ud(cpu);
    if (cpu->cpl != 0)
        iem_raise_gp0(cpu);
    uint16_t base = (uint16_t)(s->star >> 48);
    uint64_t rip;
    if (in->opsize == 8) {
        if (!iem_is_canonical(s->gpr[CPU_RCX]))
            iem_raise_gp0(cpu);
        rip = s->gpr[CPU_RCX];
        iem_seg_set_flat(cpu, CPU_CS, (uint16_t)((base + 16) | 3), 3, true, true);
    } else {
        rip = (uint32_t)s->gpr[CPU_RCX];
        iem_seg_set_flat(cpu, CPU_CS, (uint16_t)(base | 3), 3, true, false);
    }
    iem_seg_set_flat(cpu, CPU_SS, (uint16_t)((base + 8) | 3), 3, false, false);
    s->rflags = (s->gpr[CPU_R11] & 0x3c7fd7u) | 2;
    s->rip = rip;
    iem_update_mode(cpu);
    return IEM_STOP;
}

/* SYSENTER (SDM vol. 2B): flat CPL 0 segments from IA32_SYSENTER_CS; #GP(0) in real mode or with a null CS. */
static int h_sysenter(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)in;
    struct cpu_state *s = cpu->s;
    uint16_t cs = (uint16_t)s->sysenter_cs & 0xfffc;
    if (!(s->cr0 & IEM_CR0_PE) || cs == 0)
        iem_raise_gp0(cpu);
    bool lma = (s->efer & IEM_EFER_LMA) != 0;
    s->rflags &= ~(uint64_t)(IEM_F_VM | IEM_F_IF | IEM_F_RF);
    iem_seg_set_flat(cpu, CPU_CS, cs, 0, true, lma);
    iem_seg_set_flat(cpu, CPU_SS, (uint16_t)(cs + 8), 0, false, false);
    s->gpr[CPU_RSP] = lma ? s->sysenter_esp : (uint32_t)s->sysenter_esp;
    s->rip = lma ? s->sysenter_eip : (uint32_t)s->sysenter_eip;
    iem_update_mode(cpu);
    return IEM_STOP;
}

/* SYSEXIT (SDM vol. 2B): CPL 3 flat segments at SYSENTER_CS + 16/24 (+32/40 for 64-bit), RIP = RDX, RSP = RCX. */
static int h_sysexit(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    uint16_t cs = (uint16_t)s->sysenter_cs & 0xfffc;
    if (!(s->cr0 & IEM_CR0_PE) || cpu->cpl != 0 || cs == 0)
        iem_raise_gp0(cpu);
    if (in->opsize == 8) {
        if (!iem_is_canonical(s->gpr[CPU_RDX]) || !iem_is_canonical(s->gpr[CPU_RCX]))
            iem_raise_gp0(cpu);
        iem_seg_set_flat(cpu, CPU_CS, (uint16_t)((cs + 32) | 3), 3, true, true);
        iem_seg_set_flat(cpu, CPU_SS, (uint16_t)((cs + 40) | 3), 3, false, false);
        s->rip = s->gpr[CPU_RDX];
        s->gpr[CPU_RSP] = s->gpr[CPU_RCX];
    } else {
        iem_seg_set_flat(cpu, CPU_CS, (uint16_t)((cs + 16) | 3), 3, true, false);
        iem_seg_set_flat(cpu, CPU_SS, (uint16_t)((cs + 24) | 3), 3, false, false);
        s->rip = (uint32_t)s->gpr[CPU_RDX];
        s->gpr[CPU_RSP] = (uint32_t)s->gpr[CPU_RCX];
    }
    iem_update_mode(cpu);
    return IEM_STOP;
}

static int h_swapgs(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)in;
    struct cpu_state *s = cpu->s;
    if (cpu->mode != IEM_MODE_LONG64)
        iem_raise_ud(cpu);
    if (cpu->cpl != 0)
        iem_raise_gp0(cpu);
    uint64_t t = s->seg[CPU_GS].base;
    s->seg[CPU_GS].base = s->kernel_gs_base;
    s->kernel_gs_base = t;
    return IEM_NEXT;
}

/* ---- Caches, TLB, hints ------------------------------------------------------------------------------ */

static int h_invlpg(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct cpu_state *s = cpu->s;
    if (in->op[0].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    if (cpu->cpl != 0)
        iem_raise_gp0(cpu);
    /* INVLPG never faults on the address itself (SDM vol. 2A, INVLPG). */
    uint64_t ea = iem_ea(cpu, in);
    uint64_t base = s->seg[in->mem.seg].base;
    if (cpu->mode == IEM_MODE_LONG64 && in->mem.seg != CPU_FS && in->mem.seg != CPU_GS)
        base = 0;
    uint64_t linear = base + ea;
    if (cpu->mode != IEM_MODE_LONG64)
        linear = (uint32_t)linear;
    iem_tlb_flush_page(cpu, linear);
    return stop_at_next(cpu, in);
}

static int h_invd_wbinvd(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)in;
    if (cpu->cpl != 0)
        iem_raise_gp0(cpu);
    return IEM_NEXT;
}

/*
 * CLFLUSH: memory is coherent here, so only the access checks remain.  The segment is
 * checked like a byte load (execute-only code segments allowed, SDM vol. 2A CLFLUSH);
 * the page is not probed: the core exports no read probe, and a real read could touch
 * MMIO side effects.
 */
static int h_clflush(struct iem_cpu *cpu, const struct iem_insn *in)
{
    const struct cpu_state *s = cpu->s;
    if (in->op[0].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    uint64_t ea = iem_ea(cpu, in);
    if (cpu->mode == IEM_MODE_LONG64) {
        uint64_t base = (in->mem.seg == CPU_FS || in->mem.seg == CPU_GS) ? s->seg[in->mem.seg].base : 0;
        if (!iem_is_canonical(base + ea))
            iem_raise_err(cpu, in->mem.seg == CPU_SS ? IEM_X_SS : IEM_X_GP, 0);
        return IEM_NEXT;
    }
    const struct cpu_seg *sr = &s->seg[in->mem.seg];
    unsigned type = sr->attr & CPU_SEG_ATTR_TYPE_MASK;
    bool expand_down = !(type & 8) && (type & 4);
    uint64_t upper = (sr->attr & CPU_SEG_ATTR_DB) ? 0xffffffffULL : 0xffffULL;
    bool ok = !(sr->attr & CPU_SEG_ATTR_UNUSABLE) && (expand_down ? ea > sr->limit && ea <= upper : ea <= sr->limit);
    if (!ok)
        iem_raise_err(cpu, in->mem.seg == CPU_SS ? IEM_X_SS : IEM_X_GP, 0);
    return IEM_NEXT;
}

static int h_nop(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)cpu;
    (void)in;
    return IEM_NEXT;
}

/*
 * MFENCE, LFENCE, SFENCE: the host's full barrier.  Guest loads and stores are host loads and
 * stores in program order (the host is x86, TSO), so only the store-to-load order that MFENCE
 * gives needs a host instruction; LFENCE and SFENCE get the same, which orders at least as
 * much as they do (SDM vol. 3A, 8.2.5) at the cost of a few cycles.
 */
static int h_fence(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)cpu;
    (void)in;
    atomic_thread_fence(memory_order_seq_cst);
    return IEM_NEXT;
}

/* UD0/UD1/UD2, RSM outside SMM, and instructions of features CPUID does not report. */
static int h_ud(struct iem_cpu *cpu, const struct iem_insn *in)
{
    (void)in;
    iem_raise_ud(cpu);
}

/* Segment/descriptor/CR forms reached by their own mnemonics. */
static int h_desc(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return iem_sys_desc_dispatch(cpu, in);
}

/* ---- Handler table ------------------------------------------------------------------------------------- */

const struct iem_handler_map g_iem_map_sys[] = {
    {ZYDIS_MNEMONIC_INT, h_int},
    {ZYDIS_MNEMONIC_INT1, h_int},
    {ZYDIS_MNEMONIC_INT3, h_int},
    {ZYDIS_MNEMONIC_INTO, h_int},
    {ZYDIS_MNEMONIC_IRET, h_iret},
    {ZYDIS_MNEMONIC_IRETD, h_iret},
    {ZYDIS_MNEMONIC_IRETQ, h_iret},
    {ZYDIS_MNEMONIC_HLT, h_hlt},
    {ZYDIS_MNEMONIC_CLI, h_cli_sti},
    {ZYDIS_MNEMONIC_STI, h_cli_sti},
    {ZYDIS_MNEMONIC_PUSHF, h_pushf},
    {ZYDIS_MNEMONIC_PUSHFD, h_pushf},
    {ZYDIS_MNEMONIC_PUSHFQ, h_pushf},
    {ZYDIS_MNEMONIC_POPF, h_popf},
    {ZYDIS_MNEMONIC_POPFD, h_popf},
    {ZYDIS_MNEMONIC_POPFQ, h_popf},
    {ZYDIS_MNEMONIC_LDS, h_desc},
    {ZYDIS_MNEMONIC_LES, h_desc},
    {ZYDIS_MNEMONIC_LFS, h_desc},
    {ZYDIS_MNEMONIC_LGS, h_desc},
    {ZYDIS_MNEMONIC_LSS, h_desc},
    {ZYDIS_MNEMONIC_LGDT, h_desc},
    {ZYDIS_MNEMONIC_LIDT, h_desc},
    {ZYDIS_MNEMONIC_SGDT, h_desc},
    {ZYDIS_MNEMONIC_SIDT, h_desc},
    {ZYDIS_MNEMONIC_LLDT, h_desc},
    {ZYDIS_MNEMONIC_SLDT, h_desc},
    {ZYDIS_MNEMONIC_LTR, h_desc},
    {ZYDIS_MNEMONIC_STR, h_desc},
    {ZYDIS_MNEMONIC_LMSW, h_desc},
    {ZYDIS_MNEMONIC_SMSW, h_desc},
    {ZYDIS_MNEMONIC_CLTS, h_desc},
    {ZYDIS_MNEMONIC_LAR, h_desc},
    {ZYDIS_MNEMONIC_LSL, h_desc},
    {ZYDIS_MNEMONIC_VERR, h_desc},
    {ZYDIS_MNEMONIC_VERW, h_desc},
    {ZYDIS_MNEMONIC_ARPL, h_desc},
    {ZYDIS_MNEMONIC_CPUID, iem_sys_handler_cpuid},
    {ZYDIS_MNEMONIC_RDMSR, iem_sys_handler_rdmsr},
    {ZYDIS_MNEMONIC_WRMSR, iem_sys_handler_wrmsr},
    {ZYDIS_MNEMONIC_RDTSC, iem_sys_handler_rdtsc},
    {ZYDIS_MNEMONIC_RDTSCP, iem_sys_handler_rdtscp},
    {ZYDIS_MNEMONIC_RDPMC, iem_sys_handler_rdpmc},
    {ZYDIS_MNEMONIC_SYSCALL, h_syscall},
    {ZYDIS_MNEMONIC_SYSRET, h_sysret},
    {ZYDIS_MNEMONIC_SYSENTER, h_sysenter},
    {ZYDIS_MNEMONIC_SYSEXIT, h_sysexit},
    {ZYDIS_MNEMONIC_SWAPGS, h_swapgs},
    {ZYDIS_MNEMONIC_INVLPG, h_invlpg},
    {ZYDIS_MNEMONIC_INVD, h_invd_wbinvd},
    {ZYDIS_MNEMONIC_WBINVD, h_invd_wbinvd},
    {ZYDIS_MNEMONIC_CLFLUSH, h_clflush},
    {ZYDIS_MNEMONIC_CLFLUSHOPT, h_ud},
    {ZYDIS_MNEMONIC_LFENCE, h_fence},
    {ZYDIS_MNEMONIC_MFENCE, h_fence},
    {ZYDIS_MNEMONIC_SFENCE, h_fence},
    {ZYDIS_MNEMONIC_PAUSE, h_nop},
    {ZYDIS_MNEMONIC_NOP, h_nop},
    {ZYDIS_MNEMONIC_UD0, h_ud},
    {ZYDIS_MNEMONIC_UD1, h_ud},
    {ZYDIS_MNEMONIC_UD2, h_ud},
    {ZYDIS_MNEMONIC_RSM, h_ud},
    {ZYDIS_MNEMONIC_XGETBV, h_ud},
    {ZYDIS_MNEMONIC_XSETBV, h_ud},
    {ZYDIS_MNEMONIC_MONITOR, h_ud},
    {ZYDIS_MNEMONIC_MWAIT, h_ud},
    {0, NULL},
};
