/* iem-far.c - far JMP, CALL and RET (code segments, call gates, task gates, TSS targets) and IRET in every mode. */

/*
 * The checks follow the JMP, CALL, RET and IRET pseudocode of Intel SDM vol. 2 and the
 * privilege rules of vol. 3A, 5.8 (call gates, 5.8.5 stack switching, 5.8.6 returning
 * from a called procedure, 5.8.3.1 IA-32e call gates).  Every read of the old stack,
 * every descriptor read and every write of the new frame happens before CS, SS, RSP,
 * RIP or RFLAGS change.
 */
#include "iem-sys.h"

static uint64_t op_mask(unsigned opsize)
{
    return opsize == 8 ? ~0ULL : opsize == 4 ? 0xffffffffULL : 0xffffULL;
}

/* The target of a transfer into the code segment described by cd: canonical for 64-bit code, else within the limit. */
static void check_target(struct iem_cpu *cpu, const uint64_t cd[2], uint64_t target)
{
    if ((cpu->s->efer & IEM_EFER_LMA) && iem_desc_is_l(cd[0])) {
        if (!iem_is_canonical(target))
            iem_raise_gp0(cpu);
        return;
    }
    struct cpu_seg code;
    iem_seg_from_desc(&code, 0, cd);
    if (target > code.limit)
        iem_raise_gp0(cpu);
}

/* IA-32e mode forbids a code segment with both L and D set (SDM vol. 3A, 5.2.1). */
static void check_code_ld(struct iem_cpu *cpu, const uint64_t cd[2], uint32_t err)
{
    if ((cpu->s->efer & IEM_EFER_LMA) && iem_desc_is_l(cd[0]) && iem_desc_is_db(cd[0]))
        iem_raise_err(cpu, IEM_X_GP, err);
}

/* Code segment named directly by JMP or CALL (not through a gate): SDM vol. 3A, 5.8.1. */
static void check_direct_code(struct iem_cpu *cpu, uint16_t sel, const uint64_t cd[2])
{
    uint32_t err = sel & 0xfffc;
    unsigned dpl = iem_desc_dpl(cd[0]);
    if (!iem_desc_is_code(cd[0]))
        iem_raise_err(cpu, IEM_X_GP, err);
    if (iem_desc_is_conforming(cd[0])) {
        if (dpl > cpu->cpl)
            iem_raise_err(cpu, IEM_X_GP, err);
    } else if ((sel & 3) > cpu->cpl || dpl != cpu->cpl) {
        iem_raise_err(cpu, IEM_X_GP, err);
    }
    if (!iem_desc_is_present(cd[0]))
        iem_raise_err(cpu, IEM_X_NP, err);
    check_code_ld(cpu, cd, err);
}

/* A TSS or task gate named by JMP or CALL (SDM vol. 3A, 7.3): privilege, presence, then the switch. */
static void far_to_task(struct iem_cpu *cpu, uint16_t sel, const uint64_t d[2], enum iem_task_reason why,
                        uint64_t next_rip)
{
    uint32_t err = sel & 0xfffc;
    unsigned dpl = iem_desc_dpl(d[0]);
    if (dpl < cpu->cpl || dpl < (sel & 3u))
        iem_raise_err(cpu, IEM_X_GP, err);
    if (!iem_desc_is_present(d[0]))
        iem_raise_err(cpu, IEM_X_NP, err);
    uint16_t tss = sel;
    if (iem_desc_type(d[0]) == IEM_SYS_TASK)
        tss = iem_gate_sel(d[0]);
    iem_task_switch_ext(cpu, tss, why, false, 0, next_rip, 0);
}

/* Reads and checks a call gate and its target code segment; returns the gate's target offset. */
static uint64_t call_gate_target(struct iem_cpu *cpu, uint16_t sel, const uint64_t gate[2], bool is_call,
                                 uint16_t *csel, uint64_t cd[2])
{
    uint32_t err = sel & 0xfffc;
    unsigned gdpl = iem_desc_dpl(gate[0]);
    bool lma = (cpu->s->efer & IEM_EFER_LMA) != 0;
    if (gdpl < cpu->cpl || gdpl < (sel & 3u))
        iem_raise_err(cpu, IEM_X_GP, err);
    if (!iem_desc_is_present(gate[0]))
        iem_raise_err(cpu, IEM_X_NP, err);
    /* The upper half of a 64-bit call gate must have type 0 (SDM vol. 3A, figure 5-9). */
    if (lma && ((gate[1] >> 40) & 0x1f) != 0)
        iem_raise_err(cpu, IEM_X_GP, err);
    *csel = iem_gate_sel(gate[0]);
    if ((*csel & 0xfffc) == 0)
        iem_raise_gp0(cpu);
    uint32_t cerr = *csel & 0xfffc;
    iem_desc_fetch(cpu, *csel, IEM_X_GP, 0, cd);
    unsigned dpl = iem_desc_dpl(cd[0]);
    if (!iem_desc_is_code(cd[0]))
        iem_raise_err(cpu, IEM_X_GP, cerr);
    if (is_call || iem_desc_is_conforming(cd[0])) {
        if (dpl > cpu->cpl)
            iem_raise_err(cpu, IEM_X_GP, cerr);
    } else if (dpl != cpu->cpl) {
        iem_raise_err(cpu, IEM_X_GP, cerr);
    }
    if (!iem_desc_is_present(cd[0]))
        iem_raise_err(cpu, IEM_X_NP, cerr);
    if (lma) {
        if (!iem_desc_is_l(cd[0]) || iem_desc_is_db(cd[0]))
            iem_raise_err(cpu, IEM_X_GP, cerr);
        return iem_gate_off32(gate[0]) | ((gate[1] & 0xffffffffu) << 32);
    }
    if (iem_desc_type(gate[0]) == IEM_SYS_CALL16)
        return gate[0] & 0xffff;
    return iem_gate_off32(gate[0]);
}

/* ---- JMP far -------------------------------------------------------------------------------- */

void iem_far_jump(struct iem_cpu *cpu, uint16_t sel, uint64_t offset, unsigned opsize)
{
    struct cpu_state *s = cpu->s;
    offset &= op_mask(opsize);
    if (!(s->cr0 & IEM_CR0_PE) || (s->rflags & IEM_F_VM)) {
        if (offset > s->seg[CPU_CS].limit)
            iem_raise_gp0(cpu);
        iem_seg_set_real(cpu, CPU_CS, sel);
        s->rip = offset;
        iem_update_mode(cpu);
        return;
    }
    if ((sel & 0xfffc) == 0)
        iem_raise_gp0(cpu);
    uint64_t d[2];
    iem_desc_fetch(cpu, sel, IEM_X_GP, 0, d);
    uint32_t err = sel & 0xfffc;
    if (iem_desc_is_s(d[0])) {
        check_direct_code(cpu, sel, d);
        check_target(cpu, d, offset);
        iem_desc_set_accessed(cpu, sel, d);
        iem_seg_set_cs(cpu, sel, d, cpu->cpl);
        s->rip = offset;
        iem_update_mode(cpu);
        return;
    }
    bool lma = (s->efer & IEM_EFER_LMA) != 0;
    unsigned type = iem_desc_type(d[0]);
    uint64_t next_rip = cpu->insn ? iem_sys_next_rip(cpu, cpu->insn) : s->rip;
    switch (type) {
    case IEM_SYS_CALL16:
    case IEM_SYS_CALL: {
        if (lma && type != IEM_SYS_CALL)
            iem_raise_err(cpu, IEM_X_GP, err);
        uint16_t csel;
        uint64_t cd[2];
        uint64_t target = call_gate_target(cpu, sel, d, false, &csel, cd);
        check_target(cpu, cd, target);
        iem_desc_set_accessed(cpu, csel, cd);
        iem_seg_set_cs(cpu, csel, cd, cpu->cpl);
        s->rip = target;
        iem_update_mode(cpu);
        return;
    }
    case IEM_SYS_TASK:
    case IEM_SYS_TSS16_AVAIL:
    case IEM_SYS_TSS_AVAIL:
        if (lma)
            iem_raise_err(cpu, IEM_X_GP, err);
        far_to_task(cpu, sel, d, IEM_TASK_JMP, next_rip);
        return;
    default:
        iem_raise_err(cpu, IEM_X_GP, err);
    }
}

/* ---- CALL far ------------------------------------------------------------------------------- */

/* CALL through a call gate to a more privileged non-conforming segment (SDM vol. 3A, 5.8.5). */
static void call_gate_inner(struct iem_cpu *cpu, const uint64_t gate[2], uint16_t csel, uint64_t cd[2],
                            uint64_t target, uint64_t next_rip)
{
    struct cpu_state *s = cpu->s;
    unsigned dpl = iem_desc_dpl(cd[0]);
    struct iem_stack nst;
    uint16_t ss_sel;
    uint64_t ssd[2] = {0, 0};
    uint64_t new_sp;

    if (s->efer & IEM_EFER_LMA) {
        /* IA-32e: RSP from the 64-bit TSS, SS = null with RPL = DPL, 64-bit pushes, no parameters. */
        new_sp = iem_tss_read(cpu, 4 + dpl * 8, 8, 0);
        ss_sel = (uint16_t)dpl;
        iem_stack_init(&nst, &s->seg[CPU_SS], new_sp, 8, dpl, 0);
        iem_stack_check_push(cpu, &nst, 4 * 8);
        check_target(cpu, cd, target);
        iem_desc_set_accessed(cpu, csel, cd);
        iem_stack_push(cpu, &nst, 8, s->seg[CPU_SS].sel);
        iem_stack_push(cpu, &nst, 8, s->gpr[CPU_RSP]);
        iem_stack_push(cpu, &nst, 8, s->seg[CPU_CS].sel);
        iem_stack_push(cpu, &nst, 8, next_rip);
        iem_seg_set_null(cpu, CPU_SS, ss_sel, dpl);
        s->gpr[CPU_RSP] = nst.sp;
    } else {
        unsigned gsz = iem_desc_type(gate[0]) == IEM_SYS_CALL ? 4 : 2;
        unsigned nparams = iem_gate_params(gate[0]);
        iem_tss_inner_stack(cpu, dpl, 0, &ss_sel, &new_sp);
        iem_seg_check_new_ss(cpu, ss_sel, dpl, 0, IEM_X_TS, ssd);
        struct cpu_seg nss;
        iem_seg_from_desc(&nss, ss_sel, ssd);
        iem_stack_init(&nst, &nss, new_sp, (nss.attr & CPU_SEG_ATTR_DB) ? 4 : 2, dpl, ss_sel & 0xfffc);
        iem_stack_check_push(cpu, &nst, (uint64_t)(4 + nparams) * gsz);
        check_target(cpu, cd, target);
        struct iem_stack ost;
        iem_stack_current(cpu, &ost);
        iem_stack_check_pop(cpu, &ost, (uint64_t)nparams * gsz);
        iem_desc_set_accessed(cpu, csel, cd);
        iem_stack_push(cpu, &nst, gsz, s->seg[CPU_SS].sel);
        iem_stack_push(cpu, &nst, gsz, s->gpr[CPU_RSP]);
        /* Parameters keep their order: the one at the caller's SP ends on top (SDM figure 5-13). */
        for (unsigned i = nparams; i > 0; i--)
            iem_stack_push(cpu, &nst, gsz, iem_stack_read(cpu, &ost, (uint64_t)(i - 1) * gsz, gsz));
        iem_stack_push(cpu, &nst, gsz, s->seg[CPU_CS].sel);
        iem_stack_push(cpu, &nst, gsz, next_rip);
        iem_seg_set(cpu, CPU_SS, ss_sel, ssd);
        s->gpr[CPU_RSP] = iem_stack_rsp(&nst, new_sp);
    }
    iem_seg_set_cs(cpu, csel, cd, dpl);
    s->rip = target;
}

void iem_far_call(struct iem_cpu *cpu, uint16_t sel, uint64_t offset, unsigned opsize)
{
    struct cpu_state *s = cpu->s;
    uint64_t next_rip = cpu->insn ? iem_sys_next_rip(cpu, cpu->insn) : s->rip;
    offset &= op_mask(opsize);
    struct iem_stack st;
    iem_stack_current(cpu, &st);
    if (!(s->cr0 & IEM_CR0_PE) || (s->rflags & IEM_F_VM)) {
        iem_stack_check_push(cpu, &st, 2ULL * opsize);
        if (offset > s->seg[CPU_CS].limit)
            iem_raise_gp0(cpu);
        iem_stack_push(cpu, &st, opsize, s->seg[CPU_CS].sel);
        iem_stack_push(cpu, &st, opsize, next_rip);
        s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
        iem_seg_set_real(cpu, CPU_CS, sel);
        s->rip = offset;
        iem_update_mode(cpu);
        return;
    }
    if ((sel & 0xfffc) == 0)
        iem_raise_gp0(cpu);
    uint64_t d[2];
    iem_desc_fetch(cpu, sel, IEM_X_GP, 0, d);
    uint32_t err = sel & 0xfffc;
    if (iem_desc_is_s(d[0])) {
        check_direct_code(cpu, sel, d);
        iem_stack_check_push(cpu, &st, 2ULL * opsize);
        check_target(cpu, d, offset);
        iem_desc_set_accessed(cpu, sel, d);
        iem_stack_push(cpu, &st, opsize, s->seg[CPU_CS].sel);
        iem_stack_push(cpu, &st, opsize, next_rip);
        s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
        iem_seg_set_cs(cpu, sel, d, cpu->cpl);
        s->rip = offset;
        iem_update_mode(cpu);
        return;
    }
    bool lma = (s->efer & IEM_EFER_LMA) != 0;
    unsigned type = iem_desc_type(d[0]);
    switch (type) {
    case IEM_SYS_CALL16:
    case IEM_SYS_CALL: {
        if (lma && type != IEM_SYS_CALL)
            iem_raise_err(cpu, IEM_X_GP, err);
        uint16_t csel;
        uint64_t cd[2];
        uint64_t target = call_gate_target(cpu, sel, d, true, &csel, cd);
        if (!iem_desc_is_conforming(cd[0]) && iem_desc_dpl(cd[0]) < cpu->cpl) {
            call_gate_inner(cpu, d, csel, cd, target, next_rip);
        } else {
            /* Same privilege through a gate: the gate's size sets the push size. */
            unsigned gsz = lma ? 8 : type == IEM_SYS_CALL ? 4 : 2;
            iem_stack_check_push(cpu, &st, 2ULL * gsz);
            check_target(cpu, cd, target);
            iem_desc_set_accessed(cpu, csel, cd);
            iem_stack_push(cpu, &st, gsz, s->seg[CPU_CS].sel);
            iem_stack_push(cpu, &st, gsz, next_rip);
            s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
            iem_seg_set_cs(cpu, csel, cd, cpu->cpl);
            s->rip = target;
        }
        iem_update_mode(cpu);
        return;
    }
    case IEM_SYS_TASK:
    case IEM_SYS_TSS16_AVAIL:
    case IEM_SYS_TSS_AVAIL:
        if (lma)
            iem_raise_err(cpu, IEM_X_GP, err);
        far_to_task(cpu, sel, d, IEM_TASK_CALL, next_rip);
        return;
    default:
        iem_raise_err(cpu, IEM_X_GP, err);
    }
}

/* ---- RET far -------------------------------------------------------------------------------- */

/* Checks the code segment a RET/IRET returns to (SDM vol. 2, RET "PROTECTED-MODE"). */
static void check_return_code(struct iem_cpu *cpu, uint16_t csel, uint64_t cd[2])
{
    if ((csel & 0xfffc) == 0)
        iem_raise_gp0(cpu);
    iem_desc_fetch(cpu, csel, IEM_X_GP, 0, cd);
    uint32_t err = csel & 0xfffc;
    unsigned rpl = csel & 3, dpl = iem_desc_dpl(cd[0]);
    if (!iem_desc_is_code(cd[0]) || rpl < cpu->cpl)
        iem_raise_err(cpu, IEM_X_GP, err);
    if (iem_desc_is_conforming(cd[0]) ? dpl > rpl : dpl != rpl)
        iem_raise_err(cpu, IEM_X_GP, err);
    if (!iem_desc_is_present(cd[0]))
        iem_raise_err(cpu, IEM_X_NP, err);
    check_code_ld(cpu, cd, err);
}

/* The outer stack of a return to privilege rpl: a null SS only for 64-bit code below ring 3. */
static void check_return_ss(struct iem_cpu *cpu, uint16_t ss_sel, unsigned rpl, const uint64_t cd[2],
                            uint64_t ssd[2])
{
    if ((ss_sel & 0xfffc) == 0) {
        bool long64 = (cpu->s->efer & IEM_EFER_LMA) && iem_desc_is_l(cd[0]);
        if (!long64 || rpl == 3)
            iem_raise_gp0(cpu);
        ssd[0] = ssd[1] = 0;
        return;
    }
    iem_seg_check_new_ss(cpu, ss_sel, rpl, 0, IEM_X_GP, ssd);
}

/* Loads SS for a return to privilege rpl (a checked descriptor, or null in 64-bit mode). */
static void load_return_ss(struct iem_cpu *cpu, uint16_t ss_sel, unsigned rpl, const uint64_t ssd[2])
{
    if ((ss_sel & 0xfffc) == 0)
        iem_seg_set_null(cpu, CPU_SS, ss_sel, rpl);
    else
        iem_seg_set(cpu, CPU_SS, ss_sel, ssd);
}

/* RSP after loading a popped stack pointer: 16-bit stacks keep the upper half of ESP. */
static uint64_t return_rsp(const struct iem_cpu *cpu, uint64_t old_rsp, uint64_t popped, uint64_t add, bool long64)
{
    if (long64)
        return popped + add;
    if (cpu->s->seg[CPU_SS].attr & CPU_SEG_ATTR_DB)
        return (uint32_t)(popped + add);
    return (old_rsp & ~0xffffULL) | ((popped + add) & 0xffff);
}

void iem_far_return(struct iem_cpu *cpu, unsigned opsize, uint16_t pop_bytes)
{
    struct cpu_state *s = cpu->s;
    struct iem_stack st;
    iem_stack_current(cpu, &st);
    iem_stack_check_pop(cpu, &st, 2ULL * opsize);
    uint64_t ip = iem_stack_read(cpu, &st, 0, opsize);
    uint16_t csel = (uint16_t)iem_stack_read(cpu, &st, opsize, 2);

    if (!(s->cr0 & IEM_CR0_PE) || (s->rflags & IEM_F_VM)) {
        ip &= op_mask(opsize);
        if (ip > s->seg[CPU_CS].limit)
            iem_raise_gp0(cpu);
        st.sp += 2ULL * opsize + pop_bytes;
        s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
        iem_seg_set_real(cpu, CPU_CS, csel);
        s->rip = ip;
        iem_update_mode(cpu);
        return;
    }

    uint64_t cd[2];
    check_return_code(cpu, csel, cd);
    unsigned rpl = csel & 3;
    bool long64 = (s->efer & IEM_EFER_LMA) && iem_desc_is_l(cd[0]);
    if (!long64)
        ip &= 0xffffffffu;
    if (rpl == cpu->cpl) {
        check_target(cpu, cd, ip);
        iem_desc_set_accessed(cpu, csel, cd);
        st.sp += 2ULL * opsize + pop_bytes;
        s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
        iem_seg_set_cs(cpu, csel, cd, rpl);
        s->rip = ip;
        iem_update_mode(cpu);
        return;
    }

    /* Return to an outer privilege level: the caller's SS:SP sit above the released parameters. */
    uint64_t base = 2ULL * opsize + pop_bytes;
    iem_stack_check_pop(cpu, &st, base + 2ULL * opsize);
    uint64_t new_sp = iem_stack_read(cpu, &st, base, opsize);
    uint16_t ss_sel = (uint16_t)iem_stack_read(cpu, &st, base + opsize, 2);
    uint64_t ssd[2];
    check_return_ss(cpu, ss_sel, rpl, cd, ssd);
    check_target(cpu, cd, ip);
    iem_desc_set_accessed(cpu, csel, cd);
    uint64_t old_rsp = s->gpr[CPU_RSP];
    iem_seg_set_cs(cpu, csel, cd, rpl);
    s->rip = ip;
    load_return_ss(cpu, ss_sel, rpl, ssd);
    s->gpr[CPU_RSP] = return_rsp(cpu, old_rsp, new_sp, pop_bytes, long64);
    iem_seg_null_invalid(cpu, rpl);
    iem_update_mode(cpu);
}

/* ---- IRET ------------------------------------------------------------------------------------ */

/* Bits a real-mode IRET loads (SDM vol. 2A, IRET: 257FD5H; VM, VIF and VIP keep their value). */
#define IRET_REAL_MASK 0x257fd5u

static void iret_real(struct iem_cpu *cpu, unsigned opsize)
{
    struct cpu_state *s = cpu->s;
    struct iem_stack st;
    iem_stack_current(cpu, &st);
    iem_stack_check_pop(cpu, &st, 3ULL * opsize);
    uint64_t ip = iem_stack_read(cpu, &st, 0, opsize);
    uint16_t csel = (uint16_t)iem_stack_read(cpu, &st, opsize, 2);
    uint64_t fl = iem_stack_read(cpu, &st, 2ULL * opsize, opsize);
    if (ip > s->seg[CPU_CS].limit)
        iem_raise_gp0(cpu);
    st.sp += 3ULL * opsize;
    s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
    uint64_t mask = opsize == 4 ? IRET_REAL_MASK : (IRET_REAL_MASK & 0xffff);
    s->rflags = (s->rflags & ~mask) | (fl & mask) | 2;
    iem_seg_set_real(cpu, CPU_CS, csel);
    s->rip = ip;
}

/* IRET inside virtual-8086 mode: IOPL 3, or VME with a 16-bit operand (SDM vol. 3A, 20.2.7, 20.3). */
static void iret_v86(struct iem_cpu *cpu, unsigned opsize)
{
    struct cpu_state *s = cpu->s;
    unsigned iopl = (unsigned)(s->rflags >> 12) & 3;
    bool vme = iopl < 3 && (s->cr4 & IEM_CR4_VME) && opsize == 2;
    if (iopl < 3 && !vme)
        iem_raise_gp0(cpu);
    struct iem_stack st;
    iem_stack_current(cpu, &st);
    iem_stack_check_pop(cpu, &st, 3ULL * opsize);
    uint64_t ip = iem_stack_read(cpu, &st, 0, opsize);
    uint16_t csel = (uint16_t)iem_stack_read(cpu, &st, opsize, 2);
    uint64_t fl = iem_stack_read(cpu, &st, 2ULL * opsize, opsize);
    if (ip > 0xffff)
        iem_raise_gp0(cpu);
    uint64_t chg;
    if (vme) {
        if (((fl & IEM_F_IF) && (s->rflags & IEM_F_VIP)) || (fl & IEM_F_TF))
            iem_raise_gp0(cpu);
        chg = (IRET_REAL_MASK & 0xffff) & ~(uint64_t)(IEM_F_IF | IEM_F_IOPL);
        s->rflags = (s->rflags & ~(uint64_t)IEM_F_VIF) | ((fl & IEM_F_IF) ? IEM_F_VIF : 0);
    } else {
        chg = IRET_REAL_MASK & ~(uint64_t)IEM_F_IOPL;
        if (opsize == 2)
            chg &= 0xffff;
    }
    st.sp += 3ULL * opsize;
    s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
    s->rflags = (s->rflags & ~chg) | (fl & chg) | 2;
    iem_seg_set_real(cpu, CPU_CS, csel);
    s->rip = ip;
}

/* IRET from CPL 0 with VM set in the popped EFLAGS: back to virtual-8086 mode (SDM IRET RETURN-TO-VIRTUAL-8086-MODE). */
static void iret_to_v86(struct iem_cpu *cpu, struct iem_stack *st, uint64_t ip, uint16_t csel, uint64_t fl)
{
    struct cpu_state *s = cpu->s;
    iem_stack_check_pop(cpu, st, 9 * 4);
    uint64_t esp = iem_stack_read(cpu, st, 12, 4);
    uint16_t ss = (uint16_t)iem_stack_read(cpu, st, 16, 2);
    uint16_t es = (uint16_t)iem_stack_read(cpu, st, 20, 2);
    uint16_t ds = (uint16_t)iem_stack_read(cpu, st, 24, 2);
    uint16_t fs = (uint16_t)iem_stack_read(cpu, st, 28, 2);
    uint16_t gs = (uint16_t)iem_stack_read(cpu, st, 32, 2);
    s->rflags = (fl & 0x3f7fd5u) | 2;
    iem_seg_set_real(cpu, CPU_CS, csel);
    iem_seg_set_real(cpu, CPU_SS, ss);
    iem_seg_set_real(cpu, CPU_ES, es);
    iem_seg_set_real(cpu, CPU_DS, ds);
    iem_seg_set_real(cpu, CPU_FS, fs);
    iem_seg_set_real(cpu, CPU_GS, gs);
    s->gpr[CPU_RSP] = (uint32_t)esp;
    s->rip = ip & 0xffff;
}

static void iret_prot(struct iem_cpu *cpu, unsigned opsize)
{
    struct cpu_state *s = cpu->s;
    bool lma = (s->efer & IEM_EFER_LMA) != 0;
    if (s->rflags & IEM_F_NT) {
        /* Return from a nested task (SDM vol. 3A, 7.4); IA-32e mode has no task switching. */
        if (lma)
            iem_raise_gp0(cpu);
        uint16_t link = (uint16_t)iem_tss_read(cpu, 0, 2, 0);
        uint64_t next_rip = cpu->insn ? iem_sys_next_rip(cpu, cpu->insn) : s->rip;
        iem_task_switch_ext(cpu, link, IEM_TASK_IRET, false, 0, next_rip, 0);
        return;
    }
    struct iem_stack st;
    iem_stack_current(cpu, &st);
    iem_stack_check_pop(cpu, &st, 3ULL * opsize);
    uint64_t ip = iem_stack_read(cpu, &st, 0, opsize);
    uint16_t csel = (uint16_t)iem_stack_read(cpu, &st, opsize, 2);
    uint64_t fl = iem_stack_read(cpu, &st, 2ULL * opsize, opsize);

    if (!lma && (fl & IEM_F_VM) && cpu->cpl == 0 && opsize == 4) {
        iret_to_v86(cpu, &st, ip, csel, fl);
        return;
    }

    uint64_t cd[2];
    check_return_code(cpu, csel, cd);
    unsigned rpl = csel & 3;
    unsigned old_cpl = cpu->cpl;
    bool long64 = lma && iem_desc_is_l(cd[0]);
    if (!long64)
        ip &= 0xffffffffu;
    /* 64-bit mode IRET always pops SS:RSP (SDM vol. 2A, IRET, IA-32e mode). */
    bool pop_stack = rpl > old_cpl || cpu->mode == IEM_MODE_LONG64;
    if (!pop_stack) {
        check_target(cpu, cd, ip);
        iem_desc_set_accessed(cpu, csel, cd);
        st.sp += 3ULL * opsize;
        s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
        iem_flags_iret(cpu, fl, opsize, old_cpl);
        iem_seg_set_cs(cpu, csel, cd, rpl);
        s->rip = ip;
        return;
    }
    iem_stack_check_pop(cpu, &st, 5ULL * opsize);
    uint64_t new_sp = iem_stack_read(cpu, &st, 3ULL * opsize, opsize);
    uint16_t ss_sel = (uint16_t)iem_stack_read(cpu, &st, 4ULL * opsize, 2);
    uint64_t ssd[2];
    check_return_ss(cpu, ss_sel, rpl, cd, ssd);
    check_target(cpu, cd, ip);
    iem_desc_set_accessed(cpu, csel, cd);
    uint64_t old_rsp = s->gpr[CPU_RSP];
    iem_flags_iret(cpu, fl, opsize, old_cpl);
    iem_seg_set_cs(cpu, csel, cd, rpl);
    s->rip = ip;
    load_return_ss(cpu, ss_sel, rpl, ssd);
    if (opsize == 2 && !long64)
        new_sp &= 0xffff;
    s->gpr[CPU_RSP] = return_rsp(cpu, old_rsp, new_sp, 0, long64);
    if (rpl > old_cpl)
        iem_seg_null_invalid(cpu, rpl);
}

void iem_iret(struct iem_cpu *cpu, unsigned opsize)
{
    struct cpu_state *s = cpu->s;
    if (!(s->cr0 & IEM_CR0_PE))
        iret_real(cpu, opsize);
    else if (s->rflags & IEM_F_VM)
        iret_v86(cpu, opsize);
    else
        iret_prot(cpu, opsize);
    /* IRET ends NMI blocking (SDM vol. 3A, 6.7.1). */
    s->nmi_masked = false;
    iem_update_mode(cpu);
}
