/* iem-int-branch.c - interpreter: near branches (Jcc, JMP, CALL, RET, JCXZ, LOOP) and BOUND. */

/*
 * Targets are truncated to the operand size and checked against the CS limit (or for
 * canonical form) by iem_jump_near before anything else changes; CALL pushes its return
 * address after that check, so a #GP for a bad target leaves RSP alone and a #SS/#PF on
 * the push is restarted by the run loop with RIP back on the CALL.  The far forms that
 * share these mnemonics go to the system family (iem-sys.h).
 */

#include <Zydis/Mnemonic.h>

#include "iem-alu.h"
#include "iem-int.h"
#include "iem-sys.h"

/* Address of the next instruction (the decoder's length; iem_jump_near truncates). */
static uint64_t branch_next(const struct iem_cpu *cpu, const struct iem_insn *in)
{
    return cpu->insn_rip + in->len;
}

/* Target of a relative branch, or the value of a register/memory operand. */
static uint64_t branch_target(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (in->op[0].kind == IEM_OPK_REL || in->op[0].kind == IEM_OPK_IMM)
        return branch_next(cpu, in) + in->imm;
    return iem_op_read(cpu, in, 0);
}

int iem_int_jcc(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (!iem_cond(cpu, in->cond))
        return IEM_NEXT;
    iem_jump_near(cpu, branch_next(cpu, in) + in->imm, in->opsize);
    return IEM_JUMPED;
}

int iem_int_jmp(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (iem_insn_is_far_branch(in))
        return iem_jmp_far(cpu, in);
    iem_jump_near(cpu, branch_target(cpu, in), in->opsize);
    return IEM_JUMPED;
}

int iem_int_call(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t target, ret;

    if (iem_insn_is_far_branch(in))
        return iem_call_far(cpu, in);
    target = branch_target(cpu, in);
    ret = iem_int_wrap(in->opsize, branch_next(cpu, in));
    iem_jump_near(cpu, target, in->opsize);
    iem_push(cpu, in->opsize, ret);
    return IEM_JUMPED;
}

/* RET and RET imm16: the return address is read, checked and jumped to before RSP moves. */
int iem_int_ret(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t target, release = 0;

    if (iem_insn_is_far_ret(in))
        return iem_ret_far(cpu, in);
    if (in->nops > 0 && in->op[0].kind == IEM_OPK_IMM)
        release = in->imm & 0xffff;
    target = iem_stack_peek(cpu, in->opsize, 0);
    iem_jump_near(cpu, target, in->opsize);
    iem_int_sp_add(cpu, in->opsize + release);
    return IEM_JUMPED;
}

/* JCXZ/JECXZ/JRCXZ: the counter width follows the address size (Zydis names it). */
int iem_int_jcxz(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned w = in->mnemonic == ZYDIS_MNEMONIC_JCXZ ? 2 : in->mnemonic == ZYDIS_MNEMONIC_JECXZ ? 4 : 8;
    if (iem_gpr_read(cpu, CPU_RCX, w) != 0)
        return IEM_NEXT;
    iem_jump_near(cpu, branch_next(cpu, in) + in->imm, in->opsize);
    return IEM_JUMPED;
}

/* LOOP/LOOPE/LOOPNE: the counter is CX, ECX or RCX by address size (SDM LOOPcc).  The jump
 * is checked before the decremented counter is stored. */
int iem_int_loop(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned w = in->addrsize;
    uint64_t count = iem_int_wrap(w, iem_gpr_read(cpu, CPU_RCX, w) - 1);
    bool zf = (cpu->s->rflags & IEM_F_ZF) != 0, take = count != 0;

    if (in->mnemonic == ZYDIS_MNEMONIC_LOOPE)
        take = take && zf;
    else if (in->mnemonic == ZYDIS_MNEMONIC_LOOPNE)
        take = take && !zf;
    if (take)
        iem_jump_near(cpu, branch_next(cpu, in) + in->imm, in->opsize);
    iem_gpr_write(cpu, CPU_RCX, w, count);
    return take ? IEM_JUMPED : IEM_NEXT;
}

/* BOUND r, m16&16 / m32&32: #BR unless lower <= index <= upper, all signed (SDM BOUND). */
int iem_int_bound(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    uint64_t off;
    int64_t index, lower, upper;

    iem_int_no64(cpu);
    if (in->op[1].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    off = iem_ea(cpu, in);
    index = (int64_t)iem_alu_sext(size, iem_op_read(cpu, in, 0));
    lower = (int64_t)iem_alu_sext(size, iem_int_mem_read(cpu, in->mem.seg, off, size));
    upper = (int64_t)iem_alu_sext(size, iem_int_mem_read(cpu, in->mem.seg, iem_int_wrap(in->addrsize, off + size), size));
    if (index < lower || index > upper)
        iem_raise(cpu, IEM_X_BR);
    return IEM_NEXT;
}
