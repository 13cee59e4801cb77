/* iem-int-stack.c - interpreter: PUSH, POP, PUSHA/POPA, ENTER and LEAVE. */

/*
 * Instructions that touch several stack slots read every slot (and probe every slot they
 * will write) before they change a register, so a #SS or #PF in the middle leaves RSP and
 * the registers as they were (the fault rule of iem-internal.h).  Stack slots wrap within
 * the stack width: a 16-bit SP goes from 0000h to FFFEh.
 */

#include <Zydis/Mnemonic.h>

#include "iem-int.h"
#include "iem-sys.h"

/* Offset in SS of the slot at SP + delta, wrapped to the stack width. */
static uint64_t stack_slot(const struct iem_cpu *cpu, uint64_t delta)
{
    return iem_int_wrap(iem_int_stack_width(cpu), cpu->s->gpr[CPU_RSP] + delta);
}

int iem_int_push(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->opsize;
    uint64_t v;

    if (in->op[0].kind == IEM_OPK_SEG)
        return iem_push_seg(cpu, in);
    if (in->op[0].kind == IEM_OPK_IMM)
        v = in->imm;
    else
        v = iem_op_read(cpu, in, 0); /* PUSH rSP pushes the value before the push (SDM PUSH) */
    iem_push(cpu, size, iem_int_wrap(size, v));
    return IEM_NEXT;
}

/*
 * POP r/m: a memory destination whose address uses rSP is computed with the incremented
 * rSP (SDM POP); RSP changes only after the memory write succeeded.  POP rSP leaves the
 * popped value in rSP (the increment is overwritten).
 */
int iem_int_pop(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->opsize;
    uint64_t v;

    if (in->op[0].kind == IEM_OPK_SEG)
        return iem_pop_seg(cpu, in);
    v = iem_stack_peek(cpu, size, 0);
    if (in->op[0].kind == IEM_OPK_MEM) {
        uint64_t ea = iem_ea(cpu, in), new_rsp = iem_int_sp_after(cpu, size);
        if (in->mem.base == CPU_RSP)
            ea = iem_int_wrap(in->addrsize, ea + (new_rsp - cpu->s->gpr[CPU_RSP]));
        iem_int_mem_write(cpu, in->mem.seg, ea, in->op[0].size, v);
        cpu->s->gpr[CPU_RSP] = new_rsp;
        return IEM_NEXT;
    }
    iem_int_sp_add(cpu, size);
    iem_op_write(cpu, in, 0, v);
    return IEM_NEXT;
}

/* PUSHA/PUSHAD: AX CX DX BX (original) SP BP SI DI; #UD in 64-bit mode. */
int iem_int_pusha(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->opsize;
    uint64_t sp = cpu->s->gpr[CPU_RSP];

    iem_int_no64(cpu);
    for (unsigned k = 1; k <= 8; k++)
        iem_mem_probe_write(cpu, CPU_SS, stack_slot(cpu, (uint64_t)0 - k * size), size);
    for (unsigned r = CPU_RAX; r <= CPU_RDI; r++)
        iem_push(cpu, size, iem_int_wrap(size, r == CPU_RSP ? sp : iem_gpr_read(cpu, r, size)));
    return IEM_NEXT;
}

/* POPA/POPAD: DI SI BP (skipped SP) BX DX CX AX. */
int iem_int_popa(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->opsize;
    uint64_t v[8];

    iem_int_no64(cpu);
    for (unsigned k = 0; k < 8; k++)
        v[k] = iem_stack_peek(cpu, size, (uint64_t)k * size);
    for (unsigned k = 0; k < 8; k++) {
        unsigned reg = CPU_RDI - k;
        if (reg != CPU_RSP)
            iem_gpr_write(cpu, reg, size, v[k]);
    }
    iem_int_sp_add(cpu, 8 * (uint64_t)size);
    return IEM_NEXT;
}

/*
 * ENTER's nested frame pointers are read from the enclosing frame while the new frame is
 * being pushed, and with an odd rBP a read can overlap a slot pushed just before it (SDM
 * ENTER pushes each copy as soon as it is read).  The writes are only made after every read
 * succeeded (fault rule), so a read takes the bytes of slots already "pushed" from them.
 */
static uint64_t enter_read(struct iem_cpu *cpu, uint64_t off, unsigned size, const uint64_t *pushed,
                           unsigned npushed)
{
    unsigned w = iem_int_stack_width(cpu);
    uint64_t v = iem_int_mem_read(cpu, CPU_SS, off, size);

    for (unsigned k = 0; k < npushed; k++) {
        uint64_t slot = stack_slot(cpu, (uint64_t)0 - (k + 1) * size);
        for (unsigned j = 0; j < size; j++) {
            uint64_t d = iem_int_wrap(w, off + j - slot);
            if (d < size) {
                v &= ~((uint64_t)0xff << (8 * j));
                v |= ((pushed[k] >> (8 * d)) & 0xff) << (8 * j);
            }
        }
    }
    return v;
}

/*
 * ENTER's last check (SDM ENTER, Operation and Protected Mode Exceptions): the final stack
 * pointer, after the frame pointers and the imm16 bytes of locals, must lie inside SS
 * (#SS(0)), and be canonical in 64-bit mode (#SS(0)); a frame that would wrap below the stack
 * segment faults before anything is pushed.  The limit rules are those of a data access
 * (SDM vol. 3A, 5.3: expand-down segments, in protected mode, hold offsets above the limit).
 */
static void enter_check_final_sp(struct iem_cpu *cpu, uint64_t sp)
{
    const struct cpu_seg *ss = &cpu->s->seg[CPU_SS];

    if (cpu->mode == IEM_MODE_LONG64) {
        if ((uint64_t)((int64_t)(sp << 16) >> 16) != sp)
            iem_raise_err(cpu, IEM_X_SS, 0);
        return;
    }
    if (cpu->mode == IEM_MODE_PROT && (ss->attr & CPU_SEG_ATTR_TYPE_MASK & 0x4)) {
        uint64_t upper = (ss->attr & CPU_SEG_ATTR_DB) ? 0xffffffffu : 0xffffu;
        if (sp <= ss->limit || sp > upper)
            iem_raise_err(cpu, IEM_X_SS, 0);
        return;
    }
    if (sp > ss->limit)
        iem_raise_err(cpu, IEM_X_SS, 0);
}

/*
 * ENTER imm16, imm8 (SDM ENTER): push rBP, copy level-1 frame pointers from the enclosing
 * frame (read at rBP - size, rBP - 2*size, ... with the stack width), push the new frame
 * pointer, then rBP = frame pointer (written at the operand size) and rSP -= imm16 (at the
 * stack width).  The level is taken modulo 32.
 */
int iem_int_enter(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->opsize, w = iem_int_stack_width(cpu);
    unsigned level = (unsigned)(in->imm2 & 31), n = level == 0 ? 1 : level + 1;
    uint64_t alloc = in->imm & 0xffff, bp = cpu->s->gpr[CPU_RBP];
    uint64_t frame = stack_slot(cpu, (uint64_t)0 - size), v[32];

    v[0] = iem_int_wrap(size, bp);
    if (level > 0) {
        for (unsigned i = 1; i < level; i++) {
            bp -= size;
            v[i] = enter_read(cpu, iem_int_wrap(w, bp), size, v, i);
        }
        v[level] = iem_int_wrap(size, frame);
    }
    for (unsigned k = 0; k < n; k++)
        iem_mem_probe_write(cpu, CPU_SS, stack_slot(cpu, (uint64_t)0 - (k + 1) * size), size);
    enter_check_final_sp(cpu, stack_slot(cpu, (uint64_t)0 - n * size - alloc));
    for (unsigned k = 0; k < n; k++)
        iem_int_mem_write(cpu, CPU_SS, stack_slot(cpu, (uint64_t)0 - (k + 1) * size), size, v[k]);
    iem_int_sp_add(cpu, (uint64_t)0 - n * size - alloc);
    iem_gpr_write(cpu, CPU_RBP, size, frame);
    return IEM_NEXT;
}

/* LEAVE: rSP = rBP (stack width), then rBP = pop (operand size). */
int iem_int_leave(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->opsize, w = iem_int_stack_width(cpu);
    uint64_t bp = iem_int_wrap(w, cpu->s->gpr[CPU_RBP]);
    uint64_t v = iem_int_mem_read(cpu, CPU_SS, bp, size);

    iem_int_sp_add(cpu, bp - iem_int_wrap(w, cpu->s->gpr[CPU_RSP]) + size);
    iem_gpr_write(cpu, CPU_RBP, size, v);
    return IEM_NEXT;
}
