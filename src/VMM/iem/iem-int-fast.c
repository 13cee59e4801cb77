/* iem-int-fast.c - interpreter: handlers specialised at decode time for the commonest integer instruction forms, falling back to the generic handlers. */

/*
 * Design.  The generic integer handlers (iem-int*.c) look at operand kinds, sizes and the
 * mode every time they run.  For the forms that dominate real code (a Linux boot spends
 * most of its instructions in MOV, MOVZX, LEA, ALU, shifts, IMUL, CMOVcc, Jcc, CALL/RET
 * and PUSH/POP with register, immediate and simple memory operands) the decoder asks
 * iem_fast_select for a handler made for exactly that form and size, so the operation is
 * a compile-time constant and nothing is dispatched at run time.
 *
 * Semantics have one source: results and flags come from the same iem-alu.h helpers the
 * generic handlers use, conditions from iem_cond_flags, and every case a specialised
 * handler does not finish on its fast path (a TLB miss, MMIO, a page-crossing or, at CPL
 * 3, misaligned access, a non-canonical target, a shift count of zero) is passed whole to
 * the generic handler before any state changes, so faults and their order are the
 * generic ones.  Memory forms are specialised only in 64-bit mode with a 64-bit address
 * size (see iem-fast.h); in other modes the register and immediate forms are.  LOCK-
 * prefixed instructions always stay generic (atomic host operations, #UD rules).
 *
 * A specialised handler ends by running the next instruction's handler itself
 * (iem_fast_end/iem_fast_next) and a taken branch by entering the next block
 * (iem_fast_jump), see iem-core.c.  Memory forms come in two flavours of effective
 * address: the general one and base register plus displacement (LIN_b), the form most
 * memory operands have.
 */

#include <stdlib.h>

#include <Zydis/Zydis.h>

#include "iem-alu.h"
#include "iem-fast.h"
#include "iem-int.h"
#include "iem-sys.h"

#define R0(in) ((in)->op[0].reg & 15)
#define R1(in) ((in)->op[1].reg & 15)
#define FAST(name) static int name(struct iem_cpu *cpu, const struct iem_insn *in)
/* Start and end of a specialised handler (iem-fast.h): fx, s, r0 and r1 are loaded before any store. */
#define BEGIN                                                                                   \
    struct iem_fast_ctx fx;                                                                     \
    iem_fast_begin(cpu, in, &fx);                                                               \
    struct cpu_state *s = fx.s;                                                                 \
    unsigned r0 = R0(in), r1 = R1(in);                                                          \
    (void)s, (void)r0, (void)r1
#define END return iem_fast_end(cpu, &fx)

/*
 * Linear address of the memory operand (64-bit mode, 64-bit address size): _g any form,
 * _b the commonest one, a base register plus displacement in a segment without a base
 * (iem-fast.h).  Memory-form handlers come in both flavours.
 */
#define LIN_g(cpu, s, in) iem_fast_lin64(cpu, in)
#define LIN_b(cpu, s, in) ((s)->gpr[(in)->mem.base & 15] + (uint64_t)(in)->mem.disp)
enum { EA_G, EA_B, EA_COUNT };

/* ---- MOV ------------------------------------------------------------------------------------ */

#define MOV_REG_FORMS(N)                                                                        \
    FAST(mov_rr##N)                                                                             \
    {                                                                                           \
        BEGIN;                                                                                  \
        iem_int_gpr_store(s, r0, N, s->gpr[r1]);                                                \
        END;                                                                                    \
    }                                                                                           \
    FAST(mov_ri##N)                                                                             \
    {                                                                                           \
        BEGIN;                                                                                  \
        iem_int_gpr_store(s, r0, N, in->imm);                                                   \
        END;                                                                                    \
    }
#define MOV_MEM_FORMS(N, E)                                                                     \
    FAST(mov_rm##N##E)                                                                          \
    {                                                                                           \
        BEGIN;                                                                                  \
        const uint8_t *p = iem_fast_rptr(cpu, LIN_##E(cpu, s, in), N);                          \
        if (!p)                                                                                 \
            return iem_fast_generic(cpu, in, iem_int_mov);                                      \
        iem_int_gpr_store(s, r0, N, iem_fast_load(p, N));                                       \
        END;                                                                                    \
    }                                                                                           \
    FAST(mov_mr##N##E)                                                                          \
    {                                                                                           \
        BEGIN;                                                                                  \
        uint64_t lin = LIN_##E(cpu, s, in);                                                     \
        uint8_t *p = iem_fast_wptr(cpu, lin, N);                                                \
        if (!p)                                                                                 \
            return iem_fast_generic(cpu, in, iem_int_mov);                                      \
        iem_fast_store(p, N, s->gpr[r1]);                                                       \
        iem_fast_dirty(cpu, lin, N);                                                            \
        END;                                                                                    \
    }                                                                                           \
    FAST(mov_mi##N##E)                                                                          \
    {                                                                                           \
        BEGIN;                                                                                  \
        uint64_t lin = LIN_##E(cpu, s, in), imm = in->imm;                                      \
        uint8_t *p = iem_fast_wptr(cpu, lin, N);                                                \
        if (!p)                                                                                 \
            return iem_fast_generic(cpu, in, iem_int_mov);                                      \
        iem_fast_store(p, N, imm);                                                              \
        iem_fast_dirty(cpu, lin, N);                                                            \
        END;                                                                                    \
    }
#define MOV_FORMS(N) MOV_REG_FORMS(N) MOV_MEM_FORMS(N, g) MOV_MEM_FORMS(N, b)

MOV_FORMS(1)
MOV_FORMS(2)
MOV_FORMS(4)
MOV_FORMS(8)

#define SIZES(p, sfx) { p##1##sfx, p##2##sfx, p##4##sfx, p##8##sfx }
static iem_fn *const g_mov_reg[2][4] = { SIZES(mov_rr, ), SIZES(mov_ri, ) };
static iem_fn *const g_mov_mem[3][EA_COUNT][4] = {
    { SIZES(mov_rm, g), SIZES(mov_rm, b) },
    { SIZES(mov_mr, g), SIZES(mov_mr, b) },
    { SIZES(mov_mi, g), SIZES(mov_mi, b) },
};

/* ---- MOVZX MOVSX MOVSXD: D = destination size, S = source size, X = sign-extend --------------- */

static inline uint64_t movx_value(uint64_t v, unsigned s, bool sx)
{
    v &= iem_fast_mask(s);
    return sx ? iem_alu_sext(s, v) : v;
}

#define MOVX_MEM_FORM(D, S, X, E)                                                               \
    FAST(movx_rm_##D##_##S##_##X##E)                                                            \
    {                                                                                           \
        BEGIN;                                                                                  \
        const uint8_t *p = iem_fast_rptr(cpu, LIN_##E(cpu, s, in), S);                          \
        if (!p)                                                                                 \
            return iem_fast_generic(cpu, in, iem_int_movx);                                     \
        iem_int_gpr_store(s, r0, D, movx_value(iem_fast_load(p, S), S, X));                     \
        END;                                                                                    \
    }
#define MOVX_FORMS(D, S, X)                                                                     \
    FAST(movx_rr_##D##_##S##_##X)                                                               \
    {                                                                                           \
        BEGIN;                                                                                  \
        iem_int_gpr_store(s, r0, D, movx_value(s->gpr[r1], S, X));                              \
        END;                                                                                    \
    }                                                                                           \
    MOVX_MEM_FORM(D, S, X, g) MOVX_MEM_FORM(D, S, X, b)

MOVX_FORMS(2, 1, 0)
MOVX_FORMS(4, 1, 0)
MOVX_FORMS(8, 1, 0)
MOVX_FORMS(4, 2, 0)
MOVX_FORMS(8, 2, 0)
MOVX_FORMS(2, 1, 1)
MOVX_FORMS(4, 1, 1)
MOVX_FORMS(8, 1, 1)
MOVX_FORMS(4, 2, 1)
MOVX_FORMS(8, 2, 1)
MOVX_FORMS(8, 4, 1)
MOVX_FORMS(4, 4, 1)

/* ---- LEA: the offset at the address size (A), then cut or zero-extended to the operand size (N) ---- */

#define LEA_FORM(N, A)                                                                          \
    FAST(lea_##N##_##A)                                                                         \
    {                                                                                           \
        BEGIN;                                                                                  \
        iem_int_gpr_store(s, r0, N, iem_fast_ea_raw(cpu, in) & iem_fast_mask(A));               \
        END;                                                                                    \
    }

LEA_FORM(2, 4)
LEA_FORM(4, 4)
LEA_FORM(2, 8)
LEA_FORM(4, 8)
LEA_FORM(8, 8)

/* Base plus displacement, 64-bit address and operand size: the commonest LEA. */
FAST(lea_8_8b)
{
    BEGIN;
    s->gpr[r0] = LIN_b(cpu, s, in);
    END;
}

/* ---- ADD OR ADC SBB AND SUB XOR CMP TEST ------------------------------------------------------ */

enum fast_alu { F_ADD, F_OR, F_ADC, F_SBB, F_AND, F_SUB, F_XOR, F_CMP, F_TEST };

static inline __attribute__((always_inline)) uint64_t alu_op(enum fast_alu op, unsigned size, uint64_t a, uint64_t b,
                                                             uint64_t *fl)
{
    switch (op) {
    case F_ADD: return iem_alu_add(size, a, b, fl);
    case F_OR: return iem_alu_or(size, a, b, fl);
    case F_ADC: return iem_alu_adc(size, a, b, fl);
    case F_SBB: return iem_alu_sbb(size, a, b, fl);
    case F_AND: return iem_alu_and(size, a, b, fl);
    case F_SUB: return iem_alu_sub(size, a, b, fl);
    case F_XOR: return iem_alu_xor(size, a, b, fl);
    case F_CMP: return iem_alu_sub(size, a, b, fl);
    default: return iem_alu_and(size, a, b, fl);
    }
}

#define ALU_STORES(op) ((op) != F_CMP && (op) != F_TEST)

/* dst(register r0) = dst OP b. */
#define ALU_REG(OP, N, B)                                                                       \
    do {                                                                                        \
        uint64_t b_ = (B), fl_ = s->rflags;                                                     \
        uint64_t r_ = alu_op(OP, N, s->gpr[r0], b_, &fl_);                                      \
        s->rflags = fl_;                                                                        \
        if (ALU_STORES(OP))                                                                     \
            iem_int_gpr_store(s, r0, N, r_);                                                    \
    } while (0)

/* dst(memory) = dst OP b, or the generic handler when the fast path does not apply. */
#define ALU_MEM(name, OP, N, E, B)                                                              \
    do {                                                                                        \
        uint64_t b_ = (B) & iem_fast_mask(N), lin_ = LIN_##E(cpu, s, in);                       \
        uint8_t *p_ = iem_fast_ptr(cpu, lin_, N, ALU_STORES(OP) ? IEM_ACC_WRITE : IEM_ACC_READ); \
        if (!p_)                                                                                \
            return iem_fast_generic(cpu, in, iem_int_##name);                                   \
        uint64_t fl_ = s->rflags;                                                               \
        uint64_t r_ = alu_op(OP, N, iem_fast_load(p_, N), b_, &fl_);                            \
        if (ALU_STORES(OP)) {                                                                   \
            iem_fast_store(p_, N, r_);                                                          \
            iem_fast_dirty(cpu, lin_, N);                                                       \
        }                                                                                       \
        s->rflags = fl_;                                                                        \
    } while (0)

#define ALU_MEM_FORMS(name, OP, N, E)                                                           \
    FAST(name##_rm##N##E)                                                                       \
    {                                                                                           \
        BEGIN;                                                                                  \
        const uint8_t *p = iem_fast_rptr(cpu, LIN_##E(cpu, s, in), N);                          \
        if (!p)                                                                                 \
            return iem_fast_generic(cpu, in, iem_int_##name);                                   \
        ALU_REG(OP, N, iem_fast_load(p, N));                                                    \
        END;                                                                                    \
    }                                                                                           \
    FAST(name##_mr##N##E)                                                                       \
    {                                                                                           \
        BEGIN;                                                                                  \
        ALU_MEM(name, OP, N, E, s->gpr[r1]);                                                    \
        END;                                                                                    \
    }                                                                                           \
    FAST(name##_mi##N##E)                                                                       \
    {                                                                                           \
        BEGIN;                                                                                  \
        ALU_MEM(name, OP, N, E, in->imm);                                                       \
        END;                                                                                    \
    }

#define ALU_FORMS(name, OP, N)                                                                  \
    FAST(name##_rr##N)                                                                          \
    {                                                                                           \
        BEGIN;                                                                                  \
        ALU_REG(OP, N, s->gpr[r1]);                                                             \
        END;                                                                                    \
    }                                                                                           \
    FAST(name##_ri##N)                                                                          \
    {                                                                                           \
        BEGIN;                                                                                  \
        ALU_REG(OP, N, in->imm);                                                                \
        END;                                                                                    \
    }                                                                                           \
    ALU_MEM_FORMS(name, OP, N, g) ALU_MEM_FORMS(name, OP, N, b)

#define ALU_SIZES(name, OP) ALU_FORMS(name, OP, 1) ALU_FORMS(name, OP, 2) ALU_FORMS(name, OP, 4) ALU_FORMS(name, OP, 8)

ALU_SIZES(add, F_ADD)
ALU_SIZES(or, F_OR)
ALU_SIZES(adc, F_ADC)
ALU_SIZES(sbb, F_SBB)
ALU_SIZES(and, F_AND)
ALU_SIZES(sub, F_SUB)
ALU_SIZES(xor, F_XOR)
ALU_SIZES(cmp, F_CMP)
ALU_SIZES(test, F_TEST)

/* Forms indexed [form][EA flavour][size index]: rr, ri (EA flavour unused), rm, mr, mi. */
#define ALU_TABLE(name)                                                                         \
    {                                                                                           \
        { SIZES(name##_rr, ), SIZES(name##_rr, ) }, { SIZES(name##_ri, ), SIZES(name##_ri, ) }, \
        { SIZES(name##_rm, g), SIZES(name##_rm, b) }, { SIZES(name##_mr, g), SIZES(name##_mr, b) }, \
        { SIZES(name##_mi, g), SIZES(name##_mi, b) },                                           \
    }
enum { FORM_RR, FORM_RI, FORM_RM, FORM_MR, FORM_MI, FORM_COUNT };
static iem_fn *const g_alu[9][FORM_COUNT][EA_COUNT][4] = {
    [F_ADD] = ALU_TABLE(add), [F_OR] = ALU_TABLE(or), [F_ADC] = ALU_TABLE(adc),
    [F_SBB] = ALU_TABLE(sbb), [F_AND] = ALU_TABLE(and), [F_SUB] = ALU_TABLE(sub),
    [F_XOR] = ALU_TABLE(xor), [F_CMP] = ALU_TABLE(cmp), [F_TEST] = ALU_TABLE(test),
};

/* ---- INC DEC NEG NOT on a register ------------------------------------------------------------ */

#define UNARY_FORM(name, N, EXPR)                                                               \
    FAST(name##_r##N)                                                                           \
    {                                                                                           \
        BEGIN;                                                                                  \
        uint64_t a = s->gpr[r0], fl = s->rflags;                                                \
        uint64_t r = EXPR;                                                                      \
        s->rflags = fl;                                                                         \
        iem_int_gpr_store(s, r0, N, r);                                                         \
        END;                                                                                    \
    }
#define UNARY_SIZES(name, EXPR)                                                                 \
    UNARY_FORM(name, 1, EXPR(1)) UNARY_FORM(name, 2, EXPR(2)) UNARY_FORM(name, 4, EXPR(4))      \
    UNARY_FORM(name, 8, EXPR(8))
#define E_INC(N) iem_alu_inc(N, a, &fl)
#define E_DEC(N) iem_alu_dec(N, a, &fl)
#define E_NEG(N) iem_alu_neg(N, a, &fl)
#define E_NOT(N) iem_alu_not(N, a)
UNARY_SIZES(inc, E_INC)
UNARY_SIZES(dec, E_DEC)
UNARY_SIZES(neg, E_NEG)
UNARY_SIZES(not, E_NOT)

static iem_fn *const g_unary[4][4] = {
    SIZES(inc_r, ), SIZES(dec_r, ), SIZES(neg_r, ), SIZES(not_r, ),
};

/* ---- Shifts and rotates of a register by an immediate or CL ---------------------------------- */

/* A masked count of zero goes to the generic handler (it still writes a 32-bit register). */
#define SHIFT_FORM(name, N, F, C)                                                               \
    FAST(name##_r##F##N)                                                                        \
    {                                                                                           \
        BEGIN;                                                                                  \
        unsigned count = (unsigned)((C) & 0xff) & (N == 8 ? 0x3f : 0x1f);                       \
        if (count == 0)                                                                         \
            return iem_fast_generic(cpu, in, iem_int_##name);                                   \
        uint64_t fl = s->rflags;                                                                \
        uint64_t r = iem_alu_##name(N, s->gpr[r0], count, &fl);                                 \
        s->rflags = fl;                                                                         \
        iem_int_gpr_store(s, r0, N, r);                                                         \
        END;                                                                                    \
    }
#define SHIFT_FORMS(name, N) SHIFT_FORM(name, N, i, in->imm) SHIFT_FORM(name, N, c, s->gpr[CPU_RCX])
#define SHIFT_SIZES(name) SHIFT_FORMS(name, 1) SHIFT_FORMS(name, 2) SHIFT_FORMS(name, 4) SHIFT_FORMS(name, 8)
SHIFT_SIZES(shl)
SHIFT_SIZES(shr)
SHIFT_SIZES(sar)
SHIFT_SIZES(rol)
SHIFT_SIZES(ror)

#define SHIFT_TABLE(name) { SIZES(name##_ri, ), SIZES(name##_rc, ) }
static iem_fn *const g_shift[5][2][4] = {
    SHIFT_TABLE(shl), SHIFT_TABLE(shr), SHIFT_TABLE(sar), SHIFT_TABLE(rol), SHIFT_TABLE(ror),
};

/* ---- IMUL r, r/m and r, r/m, imm ---------------------------------------------------------------- */

#define IMUL_DO(N, A, B)                                                                        \
    do {                                                                                        \
        uint64_t a_ = (A), b_ = (B), fl_ = s->rflags;                                           \
        uint64_t r_ = iem_alu_imul2(N, a_ & iem_fast_mask(N), b_ & iem_fast_mask(N), &fl_);     \
        iem_int_gpr_store(s, r0, N, r_);                                                        \
        s->rflags = fl_;                                                                        \
    } while (0)

#define IMUL_MEM_FORM(N, E)                                                                     \
    FAST(imul_rm##N##E)                                                                         \
    {                                                                                           \
        BEGIN;                                                                                  \
        const uint8_t *p = iem_fast_rptr(cpu, LIN_##E(cpu, s, in), N);                          \
        if (!p)                                                                                 \
            return iem_fast_generic(cpu, in, iem_int_alu_imul);                                 \
        IMUL_DO(N, s->gpr[r0], iem_fast_load(p, N));                                            \
        END;                                                                                    \
    }
#define IMUL_FORMS(N)                                                                           \
    FAST(imul_rr##N)                                                                            \
    {                                                                                           \
        BEGIN;                                                                                  \
        IMUL_DO(N, s->gpr[r0], s->gpr[r1]);                                                     \
        END;                                                                                    \
    }                                                                                           \
    FAST(imul_rri##N)                                                                           \
    {                                                                                           \
        BEGIN;                                                                                  \
        IMUL_DO(N, s->gpr[r1], in->imm);                                                        \
        END;                                                                                    \
    }                                                                                           \
    IMUL_MEM_FORM(N, g) IMUL_MEM_FORM(N, b)
IMUL_FORMS(2)
IMUL_FORMS(4)
IMUL_FORMS(8)

/* ---- Jcc, SETcc, CMOVcc: one handler per condition ------------------------------------------------ */

/* 64-bit mode, 64-bit operand size: the target is only checked for canonical form. */
static inline __attribute__((always_inline)) int jump64(struct iem_cpu *cpu, const struct iem_insn *in,
                                                        iem_fn *generic)
{
    uint64_t t = cpu->block_rip + in->off + in->len + in->imm;
    if (!iem_fast_canonical(t))
        return iem_fast_generic(cpu, in, generic);
    cpu->s->rip = t;
    return iem_fast_jump(cpu, in);
}

static inline int jump_any(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fast_sync(cpu, in); /* iem_jump_near may fault */
    iem_jump_near(cpu, cpu->insn_rip + in->len + in->imm, in->opsize);
    return IEM_JUMPED;
}

/* The source is read whatever the condition; a 32-bit destination is written (zero-extended) even when it is false. */
#define CMOV_DO(N, TAKE, SRC)                                                                   \
    do {                                                                                        \
        uint64_t src_ = (SRC);                                                                  \
        if (TAKE)                                                                               \
            iem_int_gpr_store(s, r0, N, src_);                                                  \
        else if (N == 4)                                                                        \
            iem_int_gpr_store(s, r0, 4, s->gpr[r0]);                                            \
    } while (0)

#define COND_FORMS(C)                                                                           \
    FAST(jcc64_##C)                                                                             \
    {                                                                                           \
        if (!iem_cond_flags(cpu->s->rflags, C))                                                 \
            return iem_fast_next(cpu, in);                                                      \
        return jump64(cpu, in, iem_int_jcc);                                                    \
    }                                                                                           \
    FAST(jcc_##C) { return iem_cond_flags(cpu->s->rflags, C) ? jump_any(cpu, in) : iem_fast_next(cpu, in); } \
    FAST(setcc_##C)                                                                             \
    {                                                                                           \
        BEGIN;                                                                                  \
        iem_int_gpr_store(s, r0, 1, iem_cond_flags(s->rflags, C));                              \
        END;                                                                                    \
    }                                                                                           \
    FAST(cmov_rr4_##C)                                                                          \
    {                                                                                           \
        BEGIN;                                                                                  \
        CMOV_DO(4, iem_cond_flags(s->rflags, C), s->gpr[r1]);                                   \
        END;                                                                                    \
    }                                                                                           \
    FAST(cmov_rr8_##C)                                                                          \
    {                                                                                           \
        BEGIN;                                                                                  \
        CMOV_DO(8, iem_cond_flags(s->rflags, C), s->gpr[r1]);                                   \
        END;                                                                                    \
    }

COND_FORMS(0) COND_FORMS(1) COND_FORMS(2) COND_FORMS(3) COND_FORMS(4) COND_FORMS(5) COND_FORMS(6) COND_FORMS(7)
COND_FORMS(8) COND_FORMS(9) COND_FORMS(10) COND_FORMS(11) COND_FORMS(12) COND_FORMS(13) COND_FORMS(14) COND_FORMS(15)

#define COND_TABLE(p)                                                                           \
    {                                                                                           \
        p##0, p##1, p##2, p##3, p##4, p##5, p##6, p##7, p##8, p##9, p##10, p##11, p##12, p##13, p##14, p##15 \
    }
static iem_fn *const g_jcc64[16] = COND_TABLE(jcc64_);
static iem_fn *const g_jcc[16] = COND_TABLE(jcc_);
static iem_fn *const g_setcc[16] = COND_TABLE(setcc_);
static iem_fn *const g_cmov4[16] = COND_TABLE(cmov_rr4_);
static iem_fn *const g_cmov8[16] = COND_TABLE(cmov_rr8_);

/* ---- JMP, CALL, RET, PUSH, POP (near, 64-bit mode) ------------------------------------------------- */

FAST(jmp64) { return jump64(cpu, in, iem_int_jmp); }
FAST(jmp_rel) { return jump_any(cpu, in); }

FAST(call64)
{
    struct cpu_state *s = cpu->s;
    uint64_t ret = cpu->block_rip + in->off + in->len, t = ret + in->imm, sp = s->gpr[CPU_RSP] - 8;
    uint8_t *p = iem_fast_canonical(t) ? iem_fast_wptr(cpu, sp, 8) : NULL;
    if (!p)
        return iem_fast_generic(cpu, in, iem_int_call);
    iem_fast_store(p, 8, ret);
    iem_fast_dirty(cpu, sp, 8);
    s->gpr[CPU_RSP] = sp;
    s->rip = t;
    return iem_fast_jump(cpu, in);
}

FAST(ret64)
{
    struct cpu_state *s = cpu->s;
    uint64_t sp = s->gpr[CPU_RSP];
    const uint8_t *p = iem_fast_rptr(cpu, sp, 8);
    uint64_t t = p ? iem_fast_load(p, 8) : 0;
    if (!p || !iem_fast_canonical(t))
        return iem_fast_generic(cpu, in, iem_int_ret);
    s->gpr[CPU_RSP] = sp + 8;
    s->rip = t;
    return iem_fast_jump(cpu, in);
}

FAST(push64)
{
    BEGIN;
    uint64_t sp = s->gpr[CPU_RSP] - 8;
    uint8_t *p = iem_fast_wptr(cpu, sp, 8);
    if (!p)
        return iem_fast_generic(cpu, in, iem_int_push);
    iem_fast_store(p, 8, s->gpr[r0]);
    iem_fast_dirty(cpu, sp, 8);
    s->gpr[CPU_RSP] = sp;
    END;
}

FAST(pop64)
{
    BEGIN;
    uint64_t sp = s->gpr[CPU_RSP];
    const uint8_t *p = iem_fast_rptr(cpu, sp, 8);
    if (!p)
        return iem_fast_generic(cpu, in, iem_int_pop);
    uint64_t v = iem_fast_load(p, 8);
    s->gpr[CPU_RSP] = sp + 8;
    s->gpr[r0] = v;
    END;
}

/* ---- CMP or TEST followed by a 64-bit Jcc: one handler for the pair ------------------------------ */

/*
 * The pair is the commonest sequence there is.  The fused handler computes the flags (and
 * stores them: the Jcc leaves them as they are), tests the condition on the value it has
 * in hand, and then is the Jcc (instruction in + 1: its RIP, its fallback, its count) as
 * jcc64 is.  Where the block must stop after the CMP (chain_end), it stops there.
 */
static inline __attribute__((always_inline)) int fused_jcc(struct iem_cpu *cpu, const struct iem_fast_ctx *fx,
                                                           uint64_t fl, unsigned cond)
{
    const struct iem_insn *j = fx->next;
    if ((uintptr_t)j >= (uintptr_t)fx->end)
        return iem_fast_end(cpu, fx);
    cpu->insn = j;
    if (!iem_cond_flags(fl, cond))
        return iem_fast_next(cpu, j);
    return jump64(cpu, j, iem_int_jcc);
}

#define FUSE_FORMS(name, OP, N, C)                                                              \
    FAST(name##_rr##N##_j##C)                                                                   \
    {                                                                                           \
        BEGIN;                                                                                  \
        uint64_t fl = s->rflags;                                                                \
        alu_op(OP, N, s->gpr[r0], s->gpr[r1], &fl);                                             \
        s->rflags = fl;                                                                         \
        return fused_jcc(cpu, &fx, fl, C);                                                      \
    }                                                                                           \
    FAST(name##_ri##N##_j##C)                                                                   \
    {                                                                                           \
        BEGIN;                                                                                  \
        uint64_t fl = s->rflags;                                                                \
        alu_op(OP, N, s->gpr[r0], in->imm, &fl);                                                \
        s->rflags = fl;                                                                         \
        return fused_jcc(cpu, &fx, fl, C);                                                      \
    }
#define FUSE_CONDS(name, OP, N)                                                                 \
    FUSE_FORMS(name, OP, N, 0) FUSE_FORMS(name, OP, N, 1) FUSE_FORMS(name, OP, N, 2)            \
    FUSE_FORMS(name, OP, N, 3) FUSE_FORMS(name, OP, N, 4) FUSE_FORMS(name, OP, N, 5)            \
    FUSE_FORMS(name, OP, N, 6) FUSE_FORMS(name, OP, N, 7) FUSE_FORMS(name, OP, N, 8)            \
    FUSE_FORMS(name, OP, N, 9) FUSE_FORMS(name, OP, N, 10) FUSE_FORMS(name, OP, N, 11)          \
    FUSE_FORMS(name, OP, N, 12) FUSE_FORMS(name, OP, N, 13) FUSE_FORMS(name, OP, N, 14)         \
    FUSE_FORMS(name, OP, N, 15)
#define FUSE_SIZES(name, OP) FUSE_CONDS(name, OP, 1) FUSE_CONDS(name, OP, 2) FUSE_CONDS(name, OP, 4) FUSE_CONDS(name, OP, 8)
FUSE_SIZES(cmp, F_CMP)
FUSE_SIZES(test, F_TEST)

#define FUSE_ROW(name, F, N)                                                                    \
    {                                                                                           \
        name##_##F##N##_j0, name##_##F##N##_j1, name##_##F##N##_j2, name##_##F##N##_j3,          \
        name##_##F##N##_j4, name##_##F##N##_j5, name##_##F##N##_j6, name##_##F##N##_j7,          \
        name##_##F##N##_j8, name##_##F##N##_j9, name##_##F##N##_j10, name##_##F##N##_j11,        \
        name##_##F##N##_j12, name##_##F##N##_j13, name##_##F##N##_j14, name##_##F##N##_j15,      \
    }
#define FUSE_FORM_ROWS(name, F) { FUSE_ROW(name, F, 1), FUSE_ROW(name, F, 2), FUSE_ROW(name, F, 4), FUSE_ROW(name, F, 8) }
/* [cmp 0 / test 1][rr 0 / ri 1][size index][condition] */
static iem_fn *const g_fused[2][2][4][16] = {
    { FUSE_FORM_ROWS(cmp, rr), FUSE_FORM_ROWS(cmp, ri) },
    { FUSE_FORM_ROWS(test, rr), FUSE_FORM_ROWS(test, ri) },
};

void iem_fast_fuse(struct iem_insn *insns, unsigned n)
{
    for (unsigned k = 0; k + 1 < n; k++) {
        struct iem_insn *c = &insns[k];
        const struct iem_insn *j = &insns[k + 1];
        if (!c->fast || !j->fast || j->fn != g_jcc64[j->cond & 15])
            continue;
        for (int op = 0; op < 2; op++) {
            for (int form = 0; form < 2; form++) {
                for (int z = 0; z < 4; z++) {
                    if (c->fn == g_alu[op ? F_TEST : F_CMP][form ? FORM_RI : FORM_RR][0][z]) {
                        c->fn = g_fused[op][form][z][j->cond & 15];
                        goto next;
                    }
                }
            }
        }
    next:;
    }
}

/* ---- Forms that leave the flags alone ------------------------------------------------------- */

/*
 * Where nothing can observe an instruction's flags before later instructions overwrite
 * them all (no read, no fault, no block exit in between: iem_fast_dead_flags below), the
 * decoder gives it one of these.  The run loops never stop inside such a stretch: a block
 * holding one runs whole or in the careful loop, which runs the full forms (iem_fast_full).
 */
#define NF_BIN(name, N, EXPR)                                                                   \
    FAST(name##_rr##N##_nf)                                                                     \
    {                                                                                           \
        BEGIN;                                                                                  \
        uint64_t a = s->gpr[r0], b = s->gpr[r1];                                                \
        iem_int_gpr_store(s, r0, N, (EXPR));                                                    \
        END;                                                                                    \
    }                                                                                           \
    FAST(name##_ri##N##_nf)                                                                     \
    {                                                                                           \
        BEGIN;                                                                                  \
        uint64_t a = s->gpr[r0], b = in->imm;                                                   \
        iem_int_gpr_store(s, r0, N, (EXPR));                                                    \
        END;                                                                                    \
    }
#define NF_BIN_SIZES(name, EXPR) NF_BIN(name, 1, EXPR) NF_BIN(name, 2, EXPR) NF_BIN(name, 4, EXPR) NF_BIN(name, 8, EXPR)
NF_BIN_SIZES(add, a + b)
NF_BIN_SIZES(sub, a - b)
NF_BIN_SIZES(or, a | b)
NF_BIN_SIZES(and, a & b)
NF_BIN_SIZES(xor, a ^ b)

/* CMP and TEST whose flags nobody reads do nothing. */
FAST(cmp_test_nf)
{
    BEGIN;
    END;
}

#define NF_UNARY(name, N, EXPR)                                                                 \
    FAST(name##_r##N##_nf)                                                                      \
    {                                                                                           \
        BEGIN;                                                                                  \
        uint64_t a = s->gpr[r0];                                                                \
        iem_int_gpr_store(s, r0, N, (EXPR));                                                    \
        END;                                                                                    \
    }
#define NF_UNARY_SIZES(name, EXPR) NF_UNARY(name, 1, EXPR) NF_UNARY(name, 2, EXPR) NF_UNARY(name, 4, EXPR) NF_UNARY(name, 8, EXPR)
NF_UNARY_SIZES(inc, a + 1)
NF_UNARY_SIZES(dec, a - 1)
NF_UNARY_SIZES(neg, 0 - a)

/* Shifts by an immediate: a masked count of zero still goes to the generic handler, as in the full form. */
#define NF_SHIFT(name, N, EXPR)                                                                 \
    FAST(name##_ri##N##_nf)                                                                     \
    {                                                                                           \
        BEGIN;                                                                                  \
        unsigned c = (unsigned)(in->imm & 0xff) & (N == 8 ? 0x3f : 0x1f);                       \
        if (c == 0)                                                                             \
            return iem_fast_generic(cpu, in, iem_int_##name);                                   \
        const unsigned sz = N;                                                                  \
        uint64_t a = s->gpr[r0];                                                                \
        iem_int_gpr_store(s, r0, N, (EXPR));                                                    \
        END;                                                                                    \
    }
#define NF_SHIFT_SIZES(name, EXPR) NF_SHIFT(name, 1, EXPR) NF_SHIFT(name, 2, EXPR) NF_SHIFT(name, 4, EXPR) NF_SHIFT(name, 8, EXPR)
NF_SHIFT_SIZES(shl, (a << c) & iem_fast_mask(sz))
NF_SHIFT_SIZES(shr, (a & iem_fast_mask(sz)) >> c)
NF_SHIFT_SIZES(sar, (uint64_t)((int64_t)iem_alu_sext(sz, a) >> c))

#define NF_IMUL(N)                                                                              \
    FAST(imul_rr##N##_nf)                                                                       \
    {                                                                                           \
        BEGIN;                                                                                  \
        iem_int_gpr_store(s, r0, N, s->gpr[r0] * s->gpr[r1]);                                   \
        END;                                                                                    \
    }                                                                                           \
    FAST(imul_rri##N##_nf)                                                                      \
    {                                                                                           \
        BEGIN;                                                                                  \
        iem_int_gpr_store(s, r0, N, s->gpr[r1] * in->imm);                                      \
        END;                                                                                    \
    }
NF_IMUL(2)
NF_IMUL(4)
NF_IMUL(8)

/*
 * What the liveness pass knows of a specialised handler: the flags it reads, those it
 * overwrites whatever they were (the rest it leaves or may leave as they were), those it
 * may write, and its form without flags.  Handlers not listed are treated as able to fault
 * or leave the block, where every flag is observed.
 */
struct fast_flags {
    iem_fn *full, *nf;
    uint16_t reads, kills, writes;
};
#define FA IEM_F_ARITH
#define FNOAF (IEM_F_ARITH & ~IEM_F_AF)
#define FNOCF (IEM_F_ARITH & ~IEM_F_CF)
#define FSZPC (IEM_F_SF | IEM_F_ZF | IEM_F_PF | IEM_F_CF)
#define T1(full, nf, r, k, w) { full, nf, r, k, w }
#define T3(base, r, k, w) T1(base##2, base##2##_nf, r, k, w), T1(base##4, base##4##_nf, r, k, w), T1(base##8, base##8##_nf, r, k, w)
#define T4(base, r, k, w) T1(base##1, base##1##_nf, r, k, w), T3(base, r, k, w)
#define T4N(base, nf, r, k, w) T1(base##1, nf, r, k, w), T1(base##2, nf, r, k, w), T1(base##4, nf, r, k, w), T1(base##8, nf, r, k, w)
#define T16(base, r) T1(base##0, NULL, r, 0, 0), T1(base##1, NULL, r, 0, 0), T1(base##2, NULL, r, 0, 0), \
    T1(base##3, NULL, r, 0, 0), T1(base##4, NULL, r, 0, 0), T1(base##5, NULL, r, 0, 0), T1(base##6, NULL, r, 0, 0), \
    T1(base##7, NULL, r, 0, 0), T1(base##8, NULL, r, 0, 0), T1(base##9, NULL, r, 0, 0), T1(base##10, NULL, r, 0, 0), \
    T1(base##11, NULL, r, 0, 0), T1(base##12, NULL, r, 0, 0), T1(base##13, NULL, r, 0, 0), T1(base##14, NULL, r, 0, 0), \
    T1(base##15, NULL, r, 0, 0)
static const struct fast_flags g_fast_flags[] = {
    T4(add_rr, 0, FA, FA), T4(add_ri, 0, FA, FA), T4(sub_rr, 0, FA, FA), T4(sub_ri, 0, FA, FA),
    T4(or_rr, 0, FNOAF, FA), T4(or_ri, 0, FNOAF, FA), T4(and_rr, 0, FNOAF, FA), T4(and_ri, 0, FNOAF, FA),
    T4(xor_rr, 0, FNOAF, FA), T4(xor_ri, 0, FNOAF, FA),
    T4N(cmp_rr, cmp_test_nf, 0, FA, FA), T4N(cmp_ri, cmp_test_nf, 0, FA, FA),
    T4N(test_rr, cmp_test_nf, 0, FNOAF, FA), T4N(test_ri, cmp_test_nf, 0, FNOAF, FA),
    T4N(adc_rr, NULL, IEM_F_CF, FA, FA), T4N(adc_ri, NULL, IEM_F_CF, FA, FA),
    T4N(sbb_rr, NULL, IEM_F_CF, FA, FA), T4N(sbb_ri, NULL, IEM_F_CF, FA, FA),
    T4(inc_r, 0, FNOCF, FNOCF), T4(dec_r, 0, FNOCF, FNOCF), T4(neg_r, 0, FA, FA), T4N(not_r, NULL, 0, 0, 0),
    /* OF (counts above 1) and AF of shifts are undefined and may pass through; a count in CL may be 0. */
    T4(shl_ri, 0, FSZPC, FA), T4(shr_ri, 0, FSZPC, FA), T4(sar_ri, 0, FSZPC, FA),
    T4N(rol_ri, NULL, 0, 0, FA), T4N(ror_ri, NULL, 0, 0, FA),
    T4N(shl_rc, NULL, 0, 0, FA), T4N(shr_rc, NULL, 0, 0, FA), T4N(sar_rc, NULL, 0, 0, FA),
    T4N(rol_rc, NULL, 0, 0, FA), T4N(ror_rc, NULL, 0, 0, FA),
    T3(imul_rr, 0, IEM_F_CF | IEM_F_OF, FA), T3(imul_rri, 0, IEM_F_CF | IEM_F_OF, FA),
    T4N(mov_rr, NULL, 0, 0, 0), T4N(mov_ri, NULL, 0, 0, 0),
    T1(movx_rr_2_1_0, NULL, 0, 0, 0), T1(movx_rr_4_1_0, NULL, 0, 0, 0), T1(movx_rr_8_1_0, NULL, 0, 0, 0),
    T1(movx_rr_4_2_0, NULL, 0, 0, 0), T1(movx_rr_8_2_0, NULL, 0, 0, 0), T1(movx_rr_2_1_1, NULL, 0, 0, 0),
    T1(movx_rr_4_1_1, NULL, 0, 0, 0), T1(movx_rr_8_1_1, NULL, 0, 0, 0), T1(movx_rr_4_2_1, NULL, 0, 0, 0),
    T1(movx_rr_8_2_1, NULL, 0, 0, 0), T1(movx_rr_8_4_1, NULL, 0, 0, 0), T1(movx_rr_4_4_1, NULL, 0, 0, 0),
    T1(lea_2_4, NULL, 0, 0, 0), T1(lea_4_4, NULL, 0, 0, 0), T1(lea_2_8, NULL, 0, 0, 0), T1(lea_4_8, NULL, 0, 0, 0),
    T1(lea_8_8, NULL, 0, 0, 0), T1(lea_8_8b, NULL, 0, 0, 0),
    T16(setcc_, FA), T16(cmov_rr4_, FA), T16(cmov_rr8_, FA),
};
static const struct fast_flags *g_by_full[RT_ARRAY_SIZE(g_fast_flags)];
static const struct fast_flags *g_by_nf[RT_ARRAY_SIZE(g_fast_flags)];
static size_t g_nf_count;

static int cmp_full(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(const struct fast_flags *const *)a)->full;
    uintptr_t y = (uintptr_t)(*(const struct fast_flags *const *)b)->full;
    return x < y ? -1 : x > y;
}

static int cmp_nf(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(const struct fast_flags *const *)a)->nf;
    uintptr_t y = (uintptr_t)(*(const struct fast_flags *const *)b)->nf;
    return x < y ? -1 : x > y;
}

void iem_fast_init(void)
{
    size_t n = RT_ARRAY_SIZE(g_fast_flags);
    g_nf_count = 0;
    for (size_t i = 0; i < n; i++) {
        g_by_full[i] = &g_fast_flags[i];
        /* cmp_test_nf stands for several full forms: the careful loop needs one per nf form. */
        if (g_fast_flags[i].nf && g_fast_flags[i].nf != cmp_test_nf)
            g_by_nf[g_nf_count++] = &g_fast_flags[i];
    }
    qsort(g_by_full, n, sizeof(g_by_full[0]), cmp_full);
    qsort(g_by_nf, g_nf_count, sizeof(g_by_nf[0]), cmp_nf);
}

static const struct fast_flags *find(const struct fast_flags *const *tab, size_t n, iem_fn *fn, bool by_nf)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        iem_fn *k = by_nf ? tab[mid]->nf : tab[mid]->full;
        if ((uintptr_t)k == (uintptr_t)fn)
            return tab[mid];
        if ((uintptr_t)k < (uintptr_t)fn)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

iem_fn *iem_fast_full(const struct iem_insn *in)
{
    /* CMP and TEST share one form without flags: the generic handler does either whole. */
    if (in->fn == cmp_test_nf)
        return in->mnemonic == ZYDIS_MNEMONIC_CMP ? iem_int_cmp : iem_int_test;
    const struct fast_flags *f = find(g_by_nf, g_nf_count, in->fn, true);
    return f ? f->full : in->fn;
}

bool iem_fast_dead_flags(struct iem_insn *insns, unsigned n)
{
    bool any = false;
    uint32_t live = IEM_F_ARITH; /* the next block, a fault or an interrupt may look at any flag */
    for (unsigned k = n; k-- > 0;) {
        struct iem_insn *in = &insns[k];
        const struct fast_flags *f = in->fast ? find(g_by_full, RT_ARRAY_SIZE(g_fast_flags), in->fn, false) : NULL;
        if (!f) {
            live = IEM_F_ARITH;
            continue;
        }
        if (f->nf && !(live & f->writes)) {
            in->fn = f->nf;
            any = true;
        }
        live = f->reads | (live & ~(uint32_t)f->kills);
    }
    return any;
}

/* ---- Selection -------------------------------------------------------------------------------------- */

static int size_index(unsigned size)
{
    switch (size) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    default: return -1;
    }
}

/* A register of the register file proper (not AH..BH) of the given size. */
static bool is_reg(const struct iem_operand *op, unsigned size)
{
    return op->kind == IEM_OPK_GPR && op->reg < 16 && op->size == size;
}

static bool is_mem(const struct iem_operand *op, unsigned size, bool mem64)
{
    return mem64 && op->kind == IEM_OPK_MEM && op->size == size;
}

/* The effective-address flavour of the memory operand (LIN_g, LIN_b). */
static int ea_kind(const struct iem_insn *in)
{
    const struct iem_mem *m = &in->mem;
    return m->base < 16 && m->index == IEM_NOREG && !m->rip_rel && m->seg < CPU_FS ? EA_B : EA_G;
}

static iem_fn *select_mov(const struct iem_insn *in, bool mem64)
{
    const struct iem_operand *d = &in->op[0], *s = &in->op[1];
    int z = size_index(d->size), e = ea_kind(in);
    if (in->nops != 2 || z < 0)
        return NULL;
    if (is_reg(d, d->size)) {
        if (is_reg(s, d->size))
            return g_mov_reg[0][z];
        if (s->kind == IEM_OPK_IMM)
            return g_mov_reg[1][z];
        if (is_mem(s, d->size, mem64))
            return g_mov_mem[0][e][z];
    } else if (is_mem(d, d->size, mem64)) {
        if (is_reg(s, d->size))
            return g_mov_mem[1][e][z];
        if (s->kind == IEM_OPK_IMM)
            return g_mov_mem[2][e][z];
    }
    return NULL;
}

static iem_fn *select_movx(const struct iem_insn *in, bool mem64)
{
#define MOVX_CASE(D, S, X)                                                                      \
    if (d == D && sz == S && sx == X)                                                           \
        return !mem ? movx_rr_##D##_##S##_##X : ea_kind(in) == EA_B ? movx_rm_##D##_##S##_##X##b : movx_rm_##D##_##S##_##X##g;
    const struct iem_operand *dst = &in->op[0], *src = &in->op[1];
    unsigned d = dst->size, sz = src->size;
    bool sx = in->mnemonic != ZYDIS_MNEMONIC_MOVZX;
    bool mem = src->kind == IEM_OPK_MEM;
    if (in->nops != 2 || !is_reg(dst, d) || !(mem ? is_mem(src, sz, mem64) : is_reg(src, sz)))
        return NULL;
    MOVX_CASE(2, 1, 0) MOVX_CASE(4, 1, 0) MOVX_CASE(8, 1, 0) MOVX_CASE(4, 2, 0) MOVX_CASE(8, 2, 0)
    MOVX_CASE(2, 1, 1) MOVX_CASE(4, 1, 1) MOVX_CASE(8, 1, 1) MOVX_CASE(4, 2, 1) MOVX_CASE(8, 2, 1)
    MOVX_CASE(8, 4, 1) MOVX_CASE(4, 4, 1)
    return NULL;
#undef MOVX_CASE
}

static iem_fn *select_lea(const struct iem_insn *in, bool long64)
{
    const struct iem_operand *d = &in->op[0];
    if (in->nops != 2 || in->op[1].kind != IEM_OPK_MEM || d->kind != IEM_OPK_GPR || d->reg >= 16)
        return NULL;
    /* RIP-relative forms exist only in 64-bit mode, where the address size is 8 or 4. */
    if (in->addrsize == 8 && long64)
        return d->size == 8 ? (ea_kind(in) == EA_B ? lea_8_8b : lea_8_8) : d->size == 4 ? lea_4_8
               : d->size == 2 ? lea_2_8 : NULL;
    if (in->addrsize == 4 && !in->mem.rip_rel)
        return d->size == 4 ? lea_4_4 : d->size == 2 ? lea_2_4 : NULL;
    return NULL;
}

static iem_fn *select_alu(const struct iem_insn *in, enum fast_alu op, bool mem64)
{
    const struct iem_operand *d = &in->op[0], *s = &in->op[1];
    int z = size_index(d->size), e = ea_kind(in);
    if (in->nops != 2 || z < 0)
        return NULL;
    if (is_reg(d, d->size)) {
        if (is_reg(s, d->size))
            return g_alu[op][FORM_RR][0][z];
        if (s->kind == IEM_OPK_IMM)
            return g_alu[op][FORM_RI][0][z];
        if (is_mem(s, d->size, mem64))
            return g_alu[op][FORM_RM][e][z];
    } else if (is_mem(d, d->size, mem64)) {
        if (is_reg(s, d->size))
            return g_alu[op][FORM_MR][e][z];
        if (s->kind == IEM_OPK_IMM)
            return g_alu[op][FORM_MI][e][z];
    }
    return NULL;
}

static iem_fn *select_shift(const struct iem_insn *in, int op)
{
    const struct iem_operand *d = &in->op[0], *c = &in->op[1];
    int z = size_index(d->size);
    if (in->nops != 2 || z < 0 || !is_reg(d, d->size))
        return NULL;
    if (c->kind == IEM_OPK_IMM)
        return g_shift[op][0][z];
    if (is_reg(c, 1) && c->reg == CPU_RCX)
        return g_shift[op][1][z];
    return NULL;
}

static iem_fn *select_imul(const struct iem_insn *in, bool mem64)
{
    const struct iem_operand *d = &in->op[0], *s = &in->op[1];
    unsigned n = d->size;
    if (n != 2 && n != 4 && n != 8)
        return NULL;
    if (!is_reg(d, n))
        return NULL;
    if (in->nops == 2) {
        if (is_reg(s, n))
            return n == 2 ? imul_rr2 : n == 4 ? imul_rr4 : imul_rr8;
        if (is_mem(s, n, mem64)) {
            if (ea_kind(in) == EA_B)
                return n == 2 ? imul_rm2b : n == 4 ? imul_rm4b : imul_rm8b;
            return n == 2 ? imul_rm2g : n == 4 ? imul_rm4g : imul_rm8g;
        }
    } else if (in->nops == 3 && is_reg(s, n) && in->op[2].kind == IEM_OPK_IMM) {
        return n == 2 ? imul_rri2 : n == 4 ? imul_rri4 : imul_rri8;
    }
    return NULL;
}

iem_fn *iem_fast_select(const struct iem_insn *in, uint8_t zmode)
{
    bool long64 = zmode == ZYDIS_MACHINE_MODE_LONG_64;
    /* Memory forms: 64-bit mode with a 64-bit address size (iem-fast.h). */
    bool mem64 = long64 && in->addrsize == 8;
    const struct iem_operand *d = &in->op[0];

    if (in->prefixes & IEM_PFX_LOCK)
        return NULL;
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
        return in->fn == iem_int_mov ? select_mov(in, mem64) : NULL;
    case ZYDIS_MNEMONIC_MOVZX:
    case ZYDIS_MNEMONIC_MOVSX:
    case ZYDIS_MNEMONIC_MOVSXD:
        return in->fn == iem_int_movx ? select_movx(in, mem64) : NULL;
    case ZYDIS_MNEMONIC_LEA:
        return in->fn == iem_int_lea ? select_lea(in, long64) : NULL;
    case ZYDIS_MNEMONIC_ADD: return in->fn == iem_int_add ? select_alu(in, F_ADD, mem64) : NULL;
    case ZYDIS_MNEMONIC_OR: return in->fn == iem_int_or ? select_alu(in, F_OR, mem64) : NULL;
    case ZYDIS_MNEMONIC_ADC: return in->fn == iem_int_adc ? select_alu(in, F_ADC, mem64) : NULL;
    case ZYDIS_MNEMONIC_SBB: return in->fn == iem_int_sbb ? select_alu(in, F_SBB, mem64) : NULL;
    case ZYDIS_MNEMONIC_AND: return in->fn == iem_int_and ? select_alu(in, F_AND, mem64) : NULL;
    case ZYDIS_MNEMONIC_SUB: return in->fn == iem_int_sub ? select_alu(in, F_SUB, mem64) : NULL;
    case ZYDIS_MNEMONIC_XOR: return in->fn == iem_int_xor ? select_alu(in, F_XOR, mem64) : NULL;
    case ZYDIS_MNEMONIC_CMP: return in->fn == iem_int_cmp ? select_alu(in, F_CMP, mem64) : NULL;
    case ZYDIS_MNEMONIC_TEST: return in->fn == iem_int_test ? select_alu(in, F_TEST, mem64) : NULL;
    case ZYDIS_MNEMONIC_INC:
    case ZYDIS_MNEMONIC_DEC:
    case ZYDIS_MNEMONIC_NEG:
    case ZYDIS_MNEMONIC_NOT: {
        int z = size_index(d->size);
        int op = in->mnemonic == ZYDIS_MNEMONIC_INC ? 0 : in->mnemonic == ZYDIS_MNEMONIC_DEC ? 1
                 : in->mnemonic == ZYDIS_MNEMONIC_NEG ? 2 : 3;
        static iem_fn *const generic[4] = { iem_int_inc, iem_int_dec, iem_int_neg, iem_int_not };
        if (in->fn != generic[op] || in->nops != 1 || z < 0 || !is_reg(d, d->size))
            return NULL;
        return g_unary[op][z];
    }
    case ZYDIS_MNEMONIC_SHL: return in->fn == iem_int_shl ? select_shift(in, 0) : NULL;
    case ZYDIS_MNEMONIC_SHR: return in->fn == iem_int_shr ? select_shift(in, 1) : NULL;
    case ZYDIS_MNEMONIC_SAR: return in->fn == iem_int_sar ? select_shift(in, 2) : NULL;
    case ZYDIS_MNEMONIC_ROL: return in->fn == iem_int_rol ? select_shift(in, 3) : NULL;
    case ZYDIS_MNEMONIC_ROR: return in->fn == iem_int_ror ? select_shift(in, 4) : NULL;
    case ZYDIS_MNEMONIC_IMUL:
        return in->fn == iem_int_alu_imul ? select_imul(in, mem64) : NULL;
    case ZYDIS_MNEMONIC_JMP:
        if (in->fn != iem_int_jmp || d->kind != IEM_OPK_REL || iem_insn_is_far_branch(in))
            return NULL;
        return long64 && in->opsize == 8 ? jmp64 : jmp_rel;
    case ZYDIS_MNEMONIC_CALL:
        if (in->fn != iem_int_call || d->kind != IEM_OPK_REL || !long64 || in->opsize != 8)
            return NULL;
        return call64;
    case ZYDIS_MNEMONIC_RET:
        if (in->fn != iem_int_ret || iem_insn_is_far_ret(in) || in->nops != 0 || !long64 || in->opsize != 8)
            return NULL;
        return ret64;
    case ZYDIS_MNEMONIC_PUSH:
        return in->fn == iem_int_push && long64 && in->opsize == 8 && is_reg(d, 8) ? push64 : NULL;
    case ZYDIS_MNEMONIC_POP:
        return in->fn == iem_int_pop && long64 && in->opsize == 8 && is_reg(d, 8) ? pop64 : NULL;
    default:
        break;
    }
    if (in->fn == iem_int_jcc && d->kind == IEM_OPK_REL)
        return long64 && in->opsize == 8 ? g_jcc64[in->cond & 15] : g_jcc[in->cond & 15];
    if (in->fn == iem_int_alu_setcc && in->nops == 1 && is_reg(d, 1))
        return g_setcc[in->cond & 15];
    if (in->fn == iem_int_alu_cmovcc && in->nops == 2 && is_reg(&in->op[1], d->size)) {
        if (is_reg(d, 4))
            return g_cmov4[in->cond & 15];
        if (is_reg(d, 8))
            return g_cmov8[in->cond & 15];
    }
    return NULL;
}
