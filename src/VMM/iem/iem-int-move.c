/* iem-int-move.c - interpreter: data movement (MOV and its extending/byte-swapping forms, LEA, XCHG, XADD, CMPXCHG*, BSWAP, XLAT, NOP). */

#include <Zydis/Mnemonic.h>

#include "iem-alu.h"
#include "iem-int.h"
#include "iem-sys.h"

static uint64_t move_src(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx, unsigned size)
{
    if (in->op[idx].kind == IEM_OPK_IMM)
        return iem_int_wrap(size, in->imm);
    return iem_int_wrap(size, iem_op_read(cpu, in, idx));
}

/* MOV: the segment, control and debug register forms are system instructions (iem-sys.h). */
int iem_int_mov(struct iem_cpu *cpu, const struct iem_insn *in)
{
    const struct iem_operand *dst = &in->op[0], *src = &in->op[1];
    struct cpu_state *s = cpu->s;

    if (iem_int_is_gpr(dst)) {
        uint64_t v;
        if (iem_int_is_gpr(src))
            v = s->gpr[src->reg];
        else if (src->kind == IEM_OPK_IMM)
            v = in->imm;
        else if (src->kind == IEM_OPK_MEM || src->kind == IEM_OPK_GPR)
            v = iem_op_read(cpu, in, 1);
        else
            goto system;
        iem_int_gpr_store(s, dst->reg, dst->size, v);
        return IEM_NEXT;
    }
    if (dst->kind == IEM_OPK_MEM || dst->kind == IEM_OPK_GPR) {
        if (src->kind == IEM_OPK_SEG || src->kind == IEM_OPK_CR || src->kind == IEM_OPK_DR)
            goto system;
        iem_op_write(cpu, in, 0, move_src(cpu, in, 1, dst->size));
        return IEM_NEXT;
    }
system:
    if (dst->kind == IEM_OPK_SEG || src->kind == IEM_OPK_SEG)
        return iem_mov_seg(cpu, in);
    if (dst->kind == IEM_OPK_CR || src->kind == IEM_OPK_CR)
        return iem_mov_cr(cpu, in);
    if (dst->kind == IEM_OPK_DR || src->kind == IEM_OPK_DR)
        return iem_mov_dr(cpu, in);
    iem_raise_ud(cpu);
}

/* MOVZX, MOVSX, MOVSXD (without REX.W MOVSXD is a plain 32-bit move, SDM MOVSX/MOVSXD). */
int iem_int_movx(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t v = iem_int_wrap(in->op[1].size, iem_op_read(cpu, in, 1));
    if (in->mnemonic != ZYDIS_MNEMONIC_MOVZX)
        v = iem_alu_sext(in->op[1].size, v);
    iem_op_write(cpu, in, 0, v);
    return IEM_NEXT;
}

/* MOVBE: a byte-reversing load or store; unlike BSWAP its 16-bit form swaps the two bytes. */
int iem_int_movbe(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    uint64_t v = iem_op_read(cpu, in, 1);
    switch (size) {
    case 2: v = __builtin_bswap16((uint16_t)v); break;
    case 4: v = __builtin_bswap32((uint32_t)v); break;
    default: v = __builtin_bswap64(v); break;
    }
    iem_op_write(cpu, in, 0, v);
    return IEM_NEXT;
}

/* LEA: the offset computed at the address size, then truncated or zero-extended to the
 * operand size (SDM LEA, table 3-54). */
int iem_int_lea(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (in->op[1].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    iem_op_write(cpu, in, 0, iem_ea(cpu, in));
    return IEM_NEXT;
}

static uint64_t rmw_xchg(unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
    return b;
}

/* XCHG: with a memory operand the processor locks the bus whatever the prefixes say (SDM
 * XCHG), so the exchange is atomic on guest RAM; the register is written after the memory. */
int iem_int_xchg(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    int mem = in->op[0].kind == IEM_OPK_MEM ? 0 : in->op[1].kind == IEM_OPK_MEM ? 1 : -1;

    if (mem >= 0) {
        unsigned reg = (unsigned)(1 - mem);
        uint64_t v = iem_op_read(cpu, in, reg);
        uint64_t old = iem_int_rmw_at(cpu, in, in->mem.seg, iem_ea(cpu, in), size, rmw_xchg, v, true);
        iem_op_write(cpu, in, reg, old);
    } else {
        uint64_t a, b;
        if (in->prefixes & IEM_PFX_LOCK)
            iem_raise_ud(cpu);
        a = iem_op_read(cpu, in, 0);
        b = iem_op_read(cpu, in, 1);
        iem_op_write(cpu, in, 0, b);
        iem_op_write(cpu, in, 1, a);
    }
    return IEM_NEXT;
}

/* XADD dst, src: TEMP = SRC + DEST; SRC = DEST; DEST = TEMP (so XADD r, r with one register
 * leaves the sum). */
int iem_int_xadd(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    uint64_t src = iem_op_read(cpu, in, 1);

    if (in->op[0].kind == IEM_OPK_MEM) {
        uint64_t old = iem_int_rmw(cpu, in, iem_alu_xadd, src, false);
        iem_op_write(cpu, in, 1, old);
    } else {
        uint64_t dst = iem_op_read(cpu, in, 0), fl = cpu->s->rflags, sum;
        if (in->prefixes & IEM_PFX_LOCK)
            iem_raise_ud(cpu);
        sum = iem_alu_xadd(size, dst, src, &fl);
        iem_op_write(cpu, in, 1, dst);
        iem_op_write(cpu, in, 0, sum);
        cpu->s->rflags = fl;
    }
    return IEM_NEXT;
}

/*
 * CMPXCHG r/m, r: flags of CMP accumulator, destination.  Equal: DEST = SRC.  Not equal: the
 * accumulator receives DEST.  A memory destination always gets a write cycle (SDM CMPXCHG),
 * so a read-only page faults either way.  A register destination is left completely alone
 * on failure and the accumulator on success: Intel processors zero-extend only the register
 * that is actually written in 64-bit mode.
 */
int iem_int_cmpxchg(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    uint64_t src = iem_int_wrap(size, iem_op_read(cpu, in, 1));
    uint64_t acc = iem_gpr_read(cpu, CPU_RAX, size), old, fl = cpu->s->rflags;
    bool equal;

    if (in->op[0].kind == IEM_OPK_MEM) {
        unsigned seg = in->mem.seg;
        uint64_t off = iem_ea(cpu, in);
        void *p = (in->prefixes & IEM_PFX_LOCK) ? iem_int_lock_ptr(cpu, seg, off, size) : NULL;
        if (p != NULL) {
            old = acc;
            (void)iem_int_atomic_cas(p, size, &old, src);
        } else if (in->prefixes & IEM_PFX_LOCK) {
            iem_int_atomic_begin(cpu);
            old = iem_int_mem_read(cpu, seg, off, size);
            iem_int_mem_write(cpu, seg, off, size, old == acc ? src : old);
            iem_int_atomic_end(cpu);
        } else {
            old = iem_int_mem_read(cpu, seg, off, size);
            iem_int_mem_write(cpu, seg, off, size, old == acc ? src : old);
        }
        equal = iem_alu_cmpxchg_cmp(size, acc, old, &fl);
    } else {
        if (in->prefixes & IEM_PFX_LOCK)
            iem_raise_ud(cpu);
        old = iem_int_wrap(size, iem_op_read(cpu, in, 0));
        equal = iem_alu_cmpxchg_cmp(size, acc, old, &fl);
        if (equal)
            iem_op_write(cpu, in, 0, src);
    }
    if (!equal)
        iem_gpr_write(cpu, CPU_RAX, size, old);
    cpu->s->rflags = fl;
    return IEM_NEXT;
}

/* The host's LOCK CMPXCHG16B on a 16-byte aligned host address. */
static bool move_cas128(void *p, uint64_t *lo, uint64_t *hi, uint64_t new_lo, uint64_t new_hi)
{
    bool ok;
    __asm__ volatile("lock cmpxchg16b %[m]"
                     : [m] "+m"(*(unsigned __int128 *)p), "+a"(*lo), "+d"(*hi), "=@ccz"(ok)
                     : "b"(new_lo), "c"(new_hi)
                     : "memory");
    return ok;
}

/*
 * CMPXCHG8B m64 / CMPXCHG16B m128 (SDM CMPXCHG8B/CMPXCHG16B): compare EDX:EAX (RDX:RAX)
 * with the memory; equal: ZF = 1 and memory = ECX:EBX (RCX:RBX); else ZF = 0 and the
 * memory goes to EDX:EAX (RDX:RAX).  Only ZF changes.  CMPXCHG16B needs a 16-byte aligned
 * operand (#GP(0)).
 */
int iem_int_cmpxchg8b(struct iem_cpu *cpu, const struct iem_insn *in)
{
    bool wide = in->mnemonic == ZYDIS_MNEMONIC_CMPXCHG16B, equal;
    unsigned half = wide ? 8 : 4, seg = in->mem.seg;
    uint64_t off, cmp_lo, cmp_hi, new_lo, new_hi, old_lo, old_hi;
    void *p = NULL;

    if (in->op[0].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    off = iem_ea(cpu, in);
    if (wide && (iem_int_linear(cpu, seg, off) & 15))
        iem_raise_gp0(cpu);
    cmp_lo = iem_gpr_read(cpu, CPU_RAX, half);
    cmp_hi = iem_gpr_read(cpu, CPU_RDX, half);
    new_lo = iem_gpr_read(cpu, CPU_RBX, half);
    new_hi = iem_gpr_read(cpu, CPU_RCX, half);

    bool serialise = false;
    if (in->prefixes & IEM_PFX_LOCK) {
        p = iem_int_lock_ptr(cpu, seg, off, half * 2);
        serialise = p == NULL;
    }
    if (serialise)
        iem_int_atomic_begin(cpu);
    if (p != NULL && wide) {
        old_lo = cmp_lo;
        old_hi = cmp_hi;
        equal = move_cas128(p, &old_lo, &old_hi, new_lo, new_hi);
    } else if (p != NULL) {
        uint64_t old = (cmp_hi << 32) | cmp_lo;
        equal = iem_int_atomic_cas(p, 8, &old, (new_hi << 32) | new_lo);
        old_lo = (uint32_t)old;
        old_hi = old >> 32;
    } else if (wide) {
        uint64_t m[2];
        iem_mem_read_bytes(cpu, seg, off, m, 16);
        old_lo = m[0];
        old_hi = m[1];
        equal = old_lo == cmp_lo && old_hi == cmp_hi;
        if (equal) {
            m[0] = new_lo;
            m[1] = new_hi;
        }
        iem_mem_write_bytes(cpu, seg, off, m, 16);
    } else {
        uint64_t old = iem_mem_read64(cpu, seg, off);
        old_lo = (uint32_t)old;
        old_hi = old >> 32;
        equal = old_lo == cmp_lo && old_hi == cmp_hi;
        iem_mem_write64(cpu, seg, off, equal ? (new_hi << 32) | new_lo : old);
    }
    if (serialise)
        iem_int_atomic_end(cpu);
    if (equal) {
        cpu->s->rflags |= IEM_F_ZF;
    } else {
        iem_gpr_write(cpu, CPU_RAX, half, old_lo);
        iem_gpr_write(cpu, CPU_RDX, half, old_hi);
        cpu->s->rflags &= ~(uint64_t)IEM_F_ZF;
    }
    return IEM_NEXT;
}

int iem_int_bswap(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    iem_op_write(cpu, in, 0, iem_alu_bswap(size, iem_op_read(cpu, in, 0)));
    return IEM_NEXT;
}

/* XLAT: AL = [seg:rBX + AL] at the address size (SDM XLAT). */
int iem_int_xlat(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t off = iem_int_wrap(in->addrsize, iem_gpr_read(cpu, CPU_RBX, in->addrsize) +
                                                  iem_gpr_read(cpu, CPU_RAX, 1));
    iem_gpr_write(cpu, CPU_RAX, 1, iem_mem_read8(cpu, in->mem.seg, off));
    return IEM_NEXT;
}

/* NOP, XCHG eAX,eAX without REX.B, and the multi-byte NOP 0F 1F /0 (which does not access
 * its memory operand). */
int iem_int_nop(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return IEM_NEXT;
}
