/* rec-gen.c - the recompiler's translator: a decoded block into one host function, with inline code for the common integer forms and calls to the interpreter for the rest. */

/*
 * Host register use inside translated code (SysV x86-64; the function saves what it uses):
 *   r12  struct iem_cpu * (also the struct iem_core *, its first member)
 *   rbx  struct cpu_state * (guest registers and RIP live in memory there)
 *   r13  the guest's arithmetic flags while they are pending (below)
 *   rbp, r14, r15, rdi, r9, r10  the register cache (below)
 *   rax, rcx, rdx, rsi, r8, r11  scratch, dead across calls (rdi, rsi, rdx: call arguments)
 *
 * Layout of a translation: a fixed prologue (rec_core.prologue_bytes long) that saves
 * registers and loads r12/rbx, the instructions in order, then the out-of-line tails
 * (slow paths); the epilogue and the exit for an invalidated block are shared by all
 * translations.  A chained successor is entered past its prologue, reusing the frame:
 * through the exit's link slot, or as rec_chain decides (as iem_fast_jump does for the
 * interpreter).
 *
 * Every instruction either has inline code (below) or calls the interpreter's handler:
 * cpu->insn, RIP and cpu->insn_rip are set first, as the generic handler contract needs
 * (iem-internal.h); a result other than IEM_NEXT, or an invalidated block, leaves the
 * translation at once.  Inline code never changes guest state before its last check, and
 * its slow cases jump to an out-of-line tail that runs the same instruction through the interpreter,
 * so faults and their order are the interpreter's.  Flags are computed by the same host
 * instructions the interpreter's helpers use (iem-alu.h), loaded with the guest's flags
 * first for the operations whose result depends on them, so both CPUs agree bit for bit,
 * the architecturally undefined flags included, wherever flags can be observed (a read,
 * a possible fault, a block exit); in between, a backward liveness pass (plan_block)
 * leaves out the flags later instructions overwrite.
 *
 * Pending flags: an inline instruction leaves its flags in r13 (the host's PUSHFQ image,
 * whose arithmetic bits sit where RFLAGS has them) instead of merging them into RFLAGS in
 * memory; later inline code reads them there.  They are merged (rec_run_flags, the shared
 * way out of exits) before anything else can see RFLAGS: a call to a handler (inline or in
 * a tail) and a return to the run loop.  Whether they are pending is known at translation
 * time at each point (gen.fpend); a tail records it for its instruction's start, and one
 * that resumes inline code reloads r13 from RFLAGS when the code after the instruction
 * expects pending flags.
 * Register cache: the seven guest registers an instruction sequence uses most (plan_cache)
 * live in host registers within a translation: loaded at first use, written back
 * (when changed) before anything else can see guest registers: a handler call (inline or
 * in a tail, which then reloads what the code it resumes expects) and every exit; a
 * handler may change any register, so after one the cache starts empty again.  Which
 * host register holds which guest register is fixed per translation; whether it holds it
 * yet (valid) and whether memory is behind (dirty) is known at translation time at each
 * point, as for the flags.
 *
 * Every translation starts with them pending: the prologue loads r13 from RFLAGS, and a
 * block exit that runs on into the next translation (a link, a self-loop or rec_chain, which
 * leaves r13 alone as the ABI has it) passes r13 along unmerged, after loading it from
 * RFLAGS where a handler had the last word.
 */

#include <stddef.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "../iem/iem-core.h"
#include "../iem/iem-int.h"
#include "../iem/iem-sys.h"
#include "rec-internal.h"

#define OFF_INSN      ((int32_t)offsetof(struct iem_cpu, insn))
#define OFF_BLOCK_RIP ((int32_t)offsetof(struct iem_cpu, block_rip))
#define OFF_GPR(r)   ((int32_t)(offsetof(struct cpu_state, gpr) + 8 * (r)))
#define OFF_RIP       ((int32_t)offsetof(struct cpu_state, rip))
#define OFF_RFLAGS    ((int32_t)offsetof(struct cpu_state, rflags))
#define OFF_CPL       ((int32_t)offsetof(struct iem_cpu, cpl))
#define OFF_TLB(kind) ((int32_t)(offsetof(struct iem_cpu, tlb) + (kind) * IEM_TLB_ENTRIES * sizeof(struct iem_tlb_entry)))
#define OFF_TLB_TAG   ((int32_t)offsetof(struct iem_tlb_entry, tag))
#define OFF_TLB_ADDEND ((int32_t)offsetof(struct iem_tlb_entry, addend))
#define OFF_HIT_MASK  ((int32_t)offsetof(struct iem_core, tlb_hit_mask))
#define OFF_WSIDE_WORD ((int32_t)(offsetof(struct iem_core, wside) + offsetof(struct iem_tlb_wside, dirty_word)))
#define OFF_WSIDE_BIT  ((int32_t)(offsetof(struct iem_core, wside) + offsetof(struct iem_tlb_wside, dirty_bit)))
/* The inline TLB code scales slots by these sizes and masks them with IEM_TLB_ENTRIES - 1. */
_Static_assert(sizeof(struct iem_tlb_entry) == 32, "TLB entries of 32 bytes");
_Static_assert(sizeof(struct iem_tlb_wside) == 32, "TLB side entries of 32 bytes");
_Static_assert((IEM_TLB_ENTRIES & (IEM_TLB_ENTRIES - 1)) == 0, "a power of two of TLB slots");
#define OFF_CUR_BLOCK ((int32_t)offsetof(struct iem_cpu, cur_block))
#define OFF_COUNT_BASE ((int32_t)offsetof(struct iem_core, count_base))
#define OFF_LINK_KEY ((int32_t)offsetof(struct iem_core, link_key))
#define OFF_JCACHE    ((int32_t)offsetof(struct iem_core, jcache))
#define OFF_KICKED    ((int32_t)offsetof(struct iem_core, kicked))
#define OFF_WORK      ((int32_t)offsetof(struct iem_core, work))
#define OFF_BUDGET    ((int32_t)offsetof(struct iem_core, rec_budget))
#define OFF_INSNS     ((int32_t)offsetof(struct iem_block, insns))
/* One 8-byte compare reads both request words (emit_run_on_checks). */
_Static_assert(sizeof(atomic_uint) == 4 && offsetof(struct iem_core, work) % 8 == 0 && OFF_KICKED == OFF_WORK + 4,
               "work and kicked share 8 bytes");
#define OFF_SEGBASE(i) ((int32_t)(offsetof(struct cpu_state, seg) + (i) * sizeof(struct cpu_seg) + \
                                  offsetof(struct cpu_seg, base)))

/* The executable address of the emission point: a placeholder target in reach, patched later. */
#define HERE(g) rec_code_exec((g)->code, (g)->b.p)

#define CPU RX_R12
#define ST  RX_RBX

enum { TAIL_BRANCH, TAIL_SLOW };

/* Out-of-line code (a tail) emitted after the body: where it is reached from and what it does. */
#define TAIL_FROM_MAX 8
struct tail {
    uint8_t *from[TAIL_FROM_MAX]; /* rel32s to patch (several for the slow cases of one instruction) */
    uint8_t nfrom;
    uint8_t kind;
    uint16_t k;        /* instruction index */
    uint8_t *resume;   /* TAIL_SLOW: where the inline code goes on after the instruction */
    bool fpend;        /* flags pending in r13 when the instruction started */
    bool fpend_after;  /* TAIL_SLOW: ... and at resume */
    uint8_t cvalid, cdirty; /* the register cache when the instruction started */
    uint8_t cvalid_after;   /* TAIL_SLOW: cache slots the code at resume expects loaded */
    bool host_flags_after;  /* TAIL_SLOW: the code at resume (a Jcc) branches on the host flags */
};

/*
 * The register cache's host registers: three callee-saved and four caller-saved ones
 * (nothing stays cached across a call: handler calls write back and empty the cache, and
 * the calls at exits leave the translation).  r8 is scratch only on the way out of an exit.
 */
#define NCACHE 7
static const enum rec_reg g_cache_host[NCACHE] = { RX_RBP, RX_R14, RX_R15, RX_RDI, RX_R9, RX_R10, RX_R8 };

struct gen {
    struct rec_buf b;
    const struct rec_code *code;
    const struct iem_block *blk;
    unsigned code_size;      /* 2, 4, 8 */
    bool fpend;              /* at the emission point the guest's arithmetic flags are in r13, not yet in RFLAGS */
    bool fpend_insn;         /* fpend when the current instruction started */
    bool exit_self;          /* the next exit (emit_exit_chain) goes to this block's own start */
    bool exit_canon;         /* ... is a JMP's or Jcc's: its target's canonical test is still owed */
    unsigned exit_ways;      /* the next exit's link slots (0: one; a RET asks for REC_RET_WAYS) */
    bool exit_rel_known;     /* the next exit's target is this block's start + exit_rel (a direct branch, the end) */
    int64_t exit_rel;
    const void *body;        /* this translation past its prologue (executable view) */
    const void *loop_head;   /* where a branch to the block's own start goes: past the loads of the cache */
    uint8_t cache_slots;      /* the cache slots in use (a mask) */
    bool cond_in_host;       /* emit_alu_op (or a unary op) left the host flags holding the next Jcc's condition ... */
    unsigned cond_in_host_for; /* ... for this instruction (0: none) */
    struct rec_core *rc;
    int8_t cache_slot[16];   /* guest register -> register cache slot, or -1 (fixed per translation) */
    int8_t cache_guest[NCACHE]; /* slot -> guest register, or -1 */
    uint8_t cvalid, cdirty;  /* at the emission point: slots holding their register, and those memory lacks */
    uint8_t cvalid_insn, cdirty_insn; /* ... when the current instruction started */
    struct tail tails[6 * IEM_BLOCK_MAX + 8]; /* at most six per instruction (a CALL: its slow cases and their exits) */
    unsigned ntails;
    unsigned ninline, ncall;
    uint8_t plan[IEM_BLOCK_MAX];        /* enum plan per instruction */
    uint16_t live_after[IEM_BLOCK_MAX]; /* arithmetic flags observed after it (plan_block) */
};

static void add_tail(struct gen *g, uint8_t *from, int kind, unsigned k, uint8_t *resume)
{
    if (!from)
        return;
    /* The slow cases of one instruction share its tail. */
    if (kind == TAIL_SLOW && g->ntails) {
        struct tail *last = &g->tails[g->ntails - 1];
        if (last->kind == TAIL_SLOW && last->k == k && last->nfrom < TAIL_FROM_MAX) {
            last->from[last->nfrom++] = from;
            return;
        }
    }
    if (g->ntails >= RT_ARRAY_SIZE(g->tails)) {
        g->b.overflow = true;
        return;
    }
    struct tail *st = &g->tails[g->ntails++];
    memset(st, 0, sizeof(*st));
    st->from[0] = from;
    st->nfrom = 1;
    st->kind = (uint8_t)kind;
    st->k = (uint16_t)k;
    st->resume = resume;
    st->fpend = g->fpend_insn;
    st->cvalid = g->cvalid_insn;
    st->cdirty = g->cdirty_insn;
}

/* ---- Pieces shared by every instruction ------------------------------------------------- */

/* rax = RIP of instruction k plus extra, wrapped at the code size. */
static void emit_rip(struct gen *g, unsigned k, unsigned extra)
{
    const struct iem_insn *in = &g->blk->insns[k];
    rx_load(&g->b, 8, RX_RAX, rx_mem(CPU, OFF_BLOCK_RIP));
    uint32_t add = (uint32_t)in->off + extra;
    if (add)
        rx_alu_ri(&g->b, RX_ADD, 8, RX_RAX, (int32_t)add);
    if (g->code_size == 4)
        rx_mov_rr(&g->b, 4, RX_RAX, RX_RAX);
    else if (g->code_size == 2)
        rx_movzx_rr(&g->b, 4, 2, RX_RAX, RX_RAX);
}

/* Changed cached registers back to memory (the cache stays valid). */
static void cache_flush(struct gen *g)
{
    for (unsigned i = 0; i < NCACHE; i++)
        if (g->cdirty & (1u << i))
            rx_store(&g->b, 8, rx_mem(ST, OFF_GPR(g->cache_guest[i])), g_cache_host[i]);
    g->cdirty = 0;
}

/* Loads the cache slots in mask that are not loaded yet. */
static void cache_load(struct gen *g, uint8_t mask)
{
    for (unsigned i = 0; i < NCACHE; i++)
        if ((mask & ~g->cvalid) & (1u << i))
            rx_load(&g->b, 8, g_cache_host[i], rx_mem(ST, OFF_GPR(g->cache_guest[i])));
    g->cvalid |= mask;
}

/* Pending flags (r13) into RFLAGS (as rec_run_flags does): afterwards RFLAGS holds them.  Clobbers rax, rcx. */
static void flags_merge(struct rec_buf *b)
{
    rx_mov_rr(b, 4, RX_RAX, RX_R13);
    rx_alu_ri(b, RX_AND, 4, RX_RAX, IEM_F_ARITH);
    rx_load(b, 8, RX_RCX, rx_mem(ST, OFF_RFLAGS));
    rx_alu_ri(b, RX_AND, 8, RX_RCX, (int32_t)~(uint32_t)IEM_F_ARITH);
    rx_alu_rr(b, RX_OR, 8, RX_RCX, RX_RAX);
    rx_store(b, 8, rx_mem(ST, OFF_RFLAGS), RX_RCX);
}

/*
 * Instruction k through the interpreter: pending flags merged, RIP and insn as a handler
 * expects them, the call, then out on a result other than IEM_NEXT or an invalidated block.
 */
static void emit_call(struct gen *g, unsigned k)
{
    const struct iem_insn *in = &g->blk->insns[k];
    cache_flush(g);
    rx_mov_rr(&g->b, 8, RX_RDI, CPU);
    rx_mov_ri(&g->b, 8, RX_RSI, (uint64_t)(uintptr_t)in);
    if (g->fpend) {
        rx_mov_rr(&g->b, 8, RX_RDX, RX_R13);
        rx_call(&g->b, g->code, (const void *)rec_run_flags);
        g->fpend = false;
    } else {
        rx_call(&g->b, g->code, (const void *)rec_run);
    }
    /*
     * A result other than IEM_NEXT leaves as it is: the handler set RIP and left cpu->insn
     * alone (a specialised handler moves it on only when it returns IEM_NEXT); an
     * invalidated block leaves through the shared exit that moves RIP past cpu->insn.  A
     * deliverable interrupt the handler made (IF set, this vCPU's own line raised by a
     * device access) kicked the vCPU in rec_run, so the next block exit goes to the run loop
     * (emit_run_on_checks).
     */
    rx_test_rr(&g->b, 4, RX_RAX, RX_RAX);
    rx_jcc32(&g->b, g->code, RX_CC_NE, g->rc->run_leave);
    /* The handler may have changed any guest register. */
    g->cvalid = 0;
    g->ncall++;
}

/* ---- Plans: what each instruction becomes, and the flags it reads and overwrites -------------- */

enum plan {
    P_CALL = 0,       /* through the interpreter */
    P_NOP, P_MOV_RR, P_MOV_RI, P_MOVX_RR, P_LEA,
    P_ALU_RR, P_ALU_RI, P_SHIFT_RI, P_SHIFT_RCL, P_IMUL_RR, P_IMUL_RRI, P_UNARY, P_SETCC, P_CMOV,
    P_LOAD, P_MOVX_LOAD, P_STORE_R, P_STORE_I, P_ALU_RM, P_CMP_MR, P_CMP_MI, P_ALU_MR, P_ALU_MI, P_UNARY_M, P_SHIFT_MI, P_PUSH, P_POP,
    P_JCC, P_JMP, P_CALL_REL, P_RET,
};

#define F_ALL  IEM_F_ARITH
#define F_NOAF (IEM_F_ARITH & ~(uint32_t)IEM_F_AF)

/* An instruction whose inline code has no slow path and never leaves the block: flags can die across it. */
static bool plan_safe(enum plan p)
{
    return p >= P_NOP && p <= P_CMOV;
}

static bool is_gpr(const struct iem_operand *op, unsigned size)
{
    return op->kind == IEM_OPK_GPR && op->reg < 16 && op->size == size;
}

static bool size_ok(unsigned n)
{
    return n == 1 || n == 2 || n == 4 || n == 8;
}

/* ALU operations by mnemonic: the host operation and whether it is a logic operation (AF passes through). */
static bool alu_of(uint16_t mnemonic, enum rec_alu *op, bool *logic, bool *is_test)
{
    *is_test = false;
    *logic = false;
    switch (mnemonic) {
    case ZYDIS_MNEMONIC_ADD: *op = RX_ADD; return true;
    case ZYDIS_MNEMONIC_SUB: *op = RX_SUB; return true;
    case ZYDIS_MNEMONIC_CMP: *op = RX_CMP; return true;
    case ZYDIS_MNEMONIC_ADC: *op = RX_ADC; return true;
    case ZYDIS_MNEMONIC_SBB: *op = RX_SBB; return true;
    case ZYDIS_MNEMONIC_OR: *op = RX_OR; *logic = true; return true;
    case ZYDIS_MNEMONIC_AND: *op = RX_AND; *logic = true; return true;
    case ZYDIS_MNEMONIC_XOR: *op = RX_XOR; *logic = true; return true;
    case ZYDIS_MNEMONIC_TEST: *op = RX_AND; *logic = true; *is_test = true; return true;
    default: return false;
    }
}

static bool shift_of(uint16_t mnemonic, enum rec_shift *op)
{
    switch (mnemonic) {
    case ZYDIS_MNEMONIC_SHL: *op = RX_SHL; return true;
    case ZYDIS_MNEMONIC_SHR: *op = RX_SHR; return true;
    case ZYDIS_MNEMONIC_SAR: *op = RX_SAR; return true;
    case ZYDIS_MNEMONIC_ROL: *op = RX_ROL; return true;
    case ZYDIS_MNEMONIC_ROR: *op = RX_ROR; return true;
    default: return false;
    }
}

/* A memory operand the inline path handles: 64-bit mode, 64-bit address size, a 32-bit displacement. */
static bool mem_ok(const struct gen *g, const struct iem_insn *in)
{
    return g->code_size == 8 && in->addrsize == 8 && in->mem.disp == (int64_t)(int32_t)in->mem.disp;
}

static enum plan plan_of(const struct gen *g, const struct iem_insn *in)
{
    const struct iem_operand *d = &in->op[0], *s = &in->op[1];
    unsigned n = d->size;
    enum rec_alu aop;
    enum rec_shift sop;
    bool logic, is_test;
    if (in->mnemonic == ZYDIS_MNEMONIC_NOP && !(in->prefixes & IEM_PFX_LOCK))
        return P_NOP; /* the hinting forms with a memory operand access nothing either */
    if (in->prefixes & IEM_PFX_LOCK)
        return P_CALL;
    bool mem = mem_ok(g, in);
    /* INC, DEC, NEG, NOT and shifts of memory have no specialised handler; their slow case calls the generic one. */
    if ((in->mnemonic == ZYDIS_MNEMONIC_INC || in->mnemonic == ZYDIS_MNEMONIC_DEC || in->mnemonic == ZYDIS_MNEMONIC_NEG ||
         in->mnemonic == ZYDIS_MNEMONIC_NOT) && in->nops == 1 && size_ok(n) && d->kind == IEM_OPK_MEM && mem)
        return P_UNARY_M;
    if (shift_of(in->mnemonic, &sop) && in->nops == 2 && size_ok(n) && d->kind == IEM_OPK_MEM && mem &&
        s->kind == IEM_OPK_IMM && ((in->imm & 0xff) & (n == 8 ? 0x3f : 0x1f)))
        return P_SHIFT_MI;
    if (!in->fast)
        return P_CALL;
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
        if (in->nops != 2 || !size_ok(n))
            return P_CALL;
        if (is_gpr(d, n))
            return is_gpr(s, n) ? P_MOV_RR : s->kind == IEM_OPK_IMM ? P_MOV_RI
                   : (s->kind == IEM_OPK_MEM && mem) ? P_LOAD : P_CALL;
        if (d->kind == IEM_OPK_MEM && mem)
            return is_gpr(s, n) ? P_STORE_R : s->kind == IEM_OPK_IMM ? P_STORE_I : P_CALL;
        return P_CALL;
    case ZYDIS_MNEMONIC_MOVZX: case ZYDIS_MNEMONIC_MOVSX: case ZYDIS_MNEMONIC_MOVSXD:
        if (in->nops != 2 || !is_gpr(d, n) || !size_ok(s->size))
            return P_CALL;
        if (is_gpr(s, s->size))
            return P_MOVX_RR;
        return s->kind == IEM_OPK_MEM && mem ? P_MOVX_LOAD : P_CALL;
    case ZYDIS_MNEMONIC_LEA:
        return g->code_size == 8 && in->addrsize == 8 && (is_gpr(d, 8) || is_gpr(d, 4)) &&
               in->mem.disp == (int64_t)(int32_t)in->mem.disp ? P_LEA : P_CALL;
    case ZYDIS_MNEMONIC_SHL: case ZYDIS_MNEMONIC_SHR: case ZYDIS_MNEMONIC_SAR: case ZYDIS_MNEMONIC_ROL:
    case ZYDIS_MNEMONIC_ROR:
        (void)shift_of(in->mnemonic, &sop);
        /* A count of zero keeps the interpreter's handling (no flags change, the register still written). */
        if (in->nops == 2 && is_gpr(d, n) && s->kind == IEM_OPK_IMM && ((in->imm & 0xff) & (n == 8 ? 0x3f : 0x1f)))
            return P_SHIFT_RI;
        /* By CL: the host's shift by the same count, zero included (then no flag changes, as the guest's). */
        if (in->nops == 2 && is_gpr(d, n) && is_gpr(s, 1) && s->reg == CPU_RCX)
            return P_SHIFT_RCL;
        return P_CALL;
    case ZYDIS_MNEMONIC_IMUL:
        if (!is_gpr(d, n) || n == 1)
            return P_CALL;
        if (in->nops == 2 && is_gpr(s, n))
            return P_IMUL_RR;
        if (in->nops == 3 && is_gpr(s, n) && in->op[2].kind == IEM_OPK_IMM &&
            (int64_t)in->imm == (int64_t)(int32_t)in->imm)
            return P_IMUL_RRI;
        return P_CALL;
    case ZYDIS_MNEMONIC_INC: case ZYDIS_MNEMONIC_DEC: case ZYDIS_MNEMONIC_NEG: case ZYDIS_MNEMONIC_NOT:
        return in->nops == 1 && is_gpr(d, n) ? P_UNARY : P_CALL;
    case ZYDIS_MNEMONIC_JMP:
        return g->code_size == 8 && in->opsize == 8 && d->kind == IEM_OPK_REL ? P_JMP : P_CALL;
    case ZYDIS_MNEMONIC_CALL:
        return g->code_size == 8 && in->opsize == 8 && d->kind == IEM_OPK_REL ? P_CALL_REL : P_CALL;
    case ZYDIS_MNEMONIC_RET:
        return g->code_size == 8 && in->opsize == 8 && in->nops == 0 ? P_RET : P_CALL;
    case ZYDIS_MNEMONIC_PUSH:
        return g->code_size == 8 && in->opsize == 8 && is_gpr(d, 8) ? P_PUSH : P_CALL;
    case ZYDIS_MNEMONIC_POP:
        return g->code_size == 8 && in->opsize == 8 && is_gpr(d, 8) ? P_POP : P_CALL;
    default:
        break;
    }
    if (alu_of(in->mnemonic, &aop, &logic, &is_test)) {
        /* CMP and TEST of a memory operand only read it. */
        if (in->nops == 2 && size_ok(n) && d->kind == IEM_OPK_MEM && mem && (aop == RX_CMP || is_test)) {
            if (is_gpr(s, n))
                return P_CMP_MR;
            if (s->kind == IEM_OPK_IMM && !(n == 8 && (int64_t)in->imm != (int64_t)(int32_t)in->imm))
                return P_CMP_MI;
            return P_CALL;
        }
        /* A read-modify-write of memory (no LOCK, above). */
        if (in->nops == 2 && size_ok(n) && d->kind == IEM_OPK_MEM && mem) {
            if (is_gpr(s, n))
                return P_ALU_MR;
            if (s->kind == IEM_OPK_IMM && !(n == 8 && (int64_t)in->imm != (int64_t)(int32_t)in->imm))
                return P_ALU_MI;
            return P_CALL;
        }
        if (in->nops != 2 || !size_ok(n) || !is_gpr(d, n))
            return P_CALL;
        if (is_gpr(s, n))
            return P_ALU_RR;
        if (s->kind == IEM_OPK_IMM)
            return n == 8 && (int64_t)in->imm != (int64_t)(int32_t)in->imm ? P_CALL : P_ALU_RI;
        return s->kind == IEM_OPK_MEM && mem ? P_ALU_RM : P_CALL;
    }
    if (rec_insn_is_jcc(in))
        return g->code_size == 8 && in->opsize == 8 && d->kind == IEM_OPK_REL ? P_JCC : P_CALL;
    if (in->mnemonic >= ZYDIS_MNEMONIC_SETB && in->mnemonic <= ZYDIS_MNEMONIC_SETZ && in->nops == 1 && is_gpr(d, 1))
        return P_SETCC;
    if (in->mnemonic >= ZYDIS_MNEMONIC_CMOVB && in->mnemonic <= ZYDIS_MNEMONIC_CMOVZ && in->nops == 2 &&
        (is_gpr(d, 4) || is_gpr(d, 8)) && is_gpr(s, n))
        return P_CMOV;
    return P_CALL;
}

/*
 * Flags a safe instruction reads, and those it overwrites whatever they were (the rest pass
 * through).  Undefined flags the host sets independently of the flags before (pure, from
 * rec_probe_host) are overwritten too.
 */
static void plan_flags(const struct iem_insn *in, enum plan p, unsigned pure, uint32_t *reads, uint32_t *kills)
{
    enum rec_alu aop;
    bool logic, is_test;
    *reads = 0;
    *kills = 0;
    switch (p) {
    case P_ALU_RR: case P_ALU_RI:
        alu_of(in->mnemonic, &aop, &logic, &is_test);
        if (aop == RX_ADC || aop == RX_SBB)
            *reads = IEM_F_CF;
        *kills = logic && !(pure & REC_PURE_LOGIC) ? F_NOAF : F_ALL;
        break;
    case P_SHIFT_RCL:
        /* A count of zero changes no flag. */
        break;
    case P_SHIFT_RI:
        /* OF (counts above 1) and AF are undefined: the host may keep them. */
        *kills = in->mnemonic == ZYDIS_MNEMONIC_ROL || in->mnemonic == ZYDIS_MNEMONIC_ROR ? 0
                 : (pure & REC_PURE_SHIFT) ? F_ALL : IEM_F_CF | IEM_F_SF | IEM_F_ZF | IEM_F_PF;
        break;
    case P_IMUL_RR: case P_IMUL_RRI:
        *kills = (pure & REC_PURE_IMUL) ? F_ALL : IEM_F_CF | IEM_F_OF;
        break;
    case P_UNARY:
        if (in->mnemonic == ZYDIS_MNEMONIC_NEG)
            *kills = F_ALL;
        else if (in->mnemonic != ZYDIS_MNEMONIC_NOT)
            *kills = F_ALL & ~(uint32_t)IEM_F_CF;
        break;
    case P_SETCC: case P_CMOV:
        *reads = F_ALL;
        break;
    default:
        break;
    }
}

/* Backward pass: the flags still to be observed after each instruction (a fault, exit or read). */
static void plan_block(struct gen *g)
{
    const struct iem_block *blk = g->blk;
    for (unsigned k = 0; k < blk->ninsns; k++)
        g->plan[k] = (uint8_t)plan_of(g, &blk->insns[k]);
    uint32_t live = F_ALL;
    for (unsigned k = blk->ninsns; k-- > 0;) {
        g->live_after[k] = (uint16_t)live;
        enum plan p = (enum plan)g->plan[k];
        if (!plan_safe(p)) {
            live = F_ALL;
            continue;
        }
        uint32_t reads, kills;
        plan_flags(&blk->insns[k], p, g->rc->pure, &reads, &kills);
        live = reads | (live & ~kills);
    }
}

/* Whether plan p computes instruction's memory operand address (base and index registers read). */
static bool plan_uses_mem(enum plan p)
{
    return p == P_LEA || p == P_LOAD || p == P_MOVX_LOAD || p == P_STORE_R || p == P_STORE_I || p == P_ALU_RM ||
           p == P_CMP_MR || p == P_CMP_MI || p == P_ALU_MR || p == P_ALU_MI || p == P_UNARY_M || p == P_SHIFT_MI;
}

/* The register cache's guest registers: the NCACHE the inline instructions name most, twice at least. */
static void plan_cache(struct gen *g)
{
    unsigned count[16] = { 0 };
    for (unsigned k = 0; k < g->blk->ninsns; k++) {
        enum plan p = (enum plan)g->plan[k];
        const struct iem_insn *in = &g->blk->insns[k];
        if (p == P_CALL)
            continue;
        for (unsigned i = 0; i < in->nops && i < 4; i++)
            if (in->op[i].kind == IEM_OPK_GPR && in->op[i].reg < 16)
                count[in->op[i].reg]++;
        if (plan_uses_mem(p)) {
            if (in->mem.base < 16)
                count[in->mem.base]++;
            if (in->mem.index < 16)
                count[in->mem.index]++;
        }
        if (p == P_PUSH || p == P_POP || p == P_CALL_REL || p == P_RET)
            count[CPU_RSP] += 2;
        if (p == P_SHIFT_RCL)
            count[CPU_RCX]++;
    }
    memset(g->cache_slot, -1, sizeof(g->cache_slot));
    for (unsigned i = 0; i < NCACHE; i++) {
        int best = -1;
        for (int r = 0; r < 16; r++)
            if (g->cache_slot[r] < 0 && count[r] >= 2 && (best < 0 || count[r] > count[best]))
                best = r;
        g->cache_guest[i] = (int8_t)best;
        if (best >= 0) {
            g->cache_slot[best] = (int8_t)i;
            g->cache_slots |= (uint8_t)(1u << i);
        }
    }
    g->cvalid = g->cdirty = 0;
}

/* ---- Inline code ----------------------------------------------------------------------------- */

/* The cached host register of guest register gr, loaded, or RX_NONE when gr is not cached. */
static enum rec_reg cache_reg(struct gen *g, unsigned gr)
{
    int slot = gr < 16 ? g->cache_slot[gr] : -1;
    if (slot < 0)
        return RX_NONE;
    cache_load(g, (uint8_t)(1u << slot));
    return g_cache_host[slot];
}

/* A write of the low n bytes into a cached guest register (a 4-byte write zero-extends): RX_NONE if not cached. */
static enum rec_reg cache_reg_write(struct gen *g, unsigned n, unsigned gr)
{
    int slot = gr < 16 ? g->cache_slot[gr] : -1;
    if (slot < 0)
        return RX_NONE;
    if (n < 4)
        cache_load(g, (uint8_t)(1u << slot)); /* the bytes above stay */
    g->cvalid |= (uint8_t)(1u << slot);
    g->cdirty |= (uint8_t)(1u << slot);
    return g_cache_host[slot];
}

static bool is_cache_host(enum rec_reg r)
{
    for (unsigned i = 0; i < NCACHE; i++)
        if (g_cache_host[i] == r)
            return true;
    return false;
}

/*
 * Stores the low n bytes of host register r into guest register gr (a 4-byte write
 * zero-extends).  zext: at n = 4, r's upper half is known clear (a 32-bit operation wrote
 * r), so no zero-extending move is needed.  r itself is left alone when it is a cache
 * register (its upper half belongs to its own guest register).
 */
static void store_gpr_ext(struct gen *g, unsigned n, unsigned gr, enum rec_reg r, bool zext)
{
    bool extend = n == 4 && !zext;
    enum rec_reg h = cache_reg_write(g, n, gr);
    if (h != RX_NONE) {
        if (h != r || extend)
            rx_mov_rr(&g->b, n, h, r); /* even onto itself at n = 4: that clears the upper half */
        return;
    }
    if (extend) {
        enum rec_reg z = is_cache_host(r) ? RX_RAX : r;
        rx_mov_rr(&g->b, 4, z, r);
        r = z;
    }
    rx_store(&g->b, n == 4 ? 8 : n, rx_mem(ST, OFF_GPR(gr)), r);
}

static void store_gpr(struct gen *g, unsigned n, unsigned gr, enum rec_reg r)
{
    store_gpr_ext(g, n, gr, r, false);
}

/* store_gpr for a value whose host register a 32-bit operation wrote (already zero-extended at n = 4). */
static void store_gpr_z(struct gen *g, unsigned n, unsigned gr, enum rec_reg r)
{
    store_gpr_ext(g, n, gr, r, true);
}

static void load_gpr(struct gen *g, unsigned n, enum rec_reg r, unsigned gr)
{
    enum rec_reg h = cache_reg(g, gr);
    if (h != RX_NONE) {
        rx_mov_rr(&g->b, n, r, h);
        return;
    }
    rx_load(&g->b, n, r, rx_mem(ST, OFF_GPR(gr)));
}

/* The host register holding guest register gr: its cache register, or scratch loaded with its low n bytes. */
static enum rec_reg src_gpr(struct gen *g, unsigned n, unsigned gr, enum rec_reg scratch)
{
    enum rec_reg h = cache_reg(g, gr);
    if (h != RX_NONE)
        return h;
    load_gpr(g, n, scratch, gr);
    return scratch;
}

/*
 * The way out of a block exit through rec_chain, shared by every exit with result rc: RIP
 * (rax) and cpu->insn (rsi) stored, rec_chain asked with the exit's link slot (rdx, or
 * NULL); its body is jumped to, or the pending flags (r13, always pending at an exit) go
 * into RFLAGS and the translation returns rc through the epilogue.
 */
void rec_gen_exit_way(struct rec_buf *b, const struct rec_code *code, int rc, const void *epilogue)
{
    rx_store(b, 8, rx_mem(ST, OFF_RIP), RX_RAX);
    rx_store(b, 8, rx_mem(CPU, OFF_INSN), RX_RSI);
    rx_mov_rr(b, 8, RX_RDI, CPU);
    rx_mov_ri(b, 4, RX_RSI, (uint32_t)rc);
    rx_call(b, code, (const void *)rec_chain);
    rx_test_rr(b, 8, RX_RAX, RX_RAX);
    uint8_t *out = rx_jcc8(b, RX_CC_E);
    rx_jmp_reg(b, RX_RAX);
    if (out)
        rx_bind8(b, out);
    flags_merge(b);
    rx_mov_ri(b, 4, RX_RAX, (uint32_t)rc);
    rx_jmp32(b, code, epilogue);
}

void rec_gen_flags_load(struct rec_buf *b)
{
    rx_mov_rr(b, 4, RX_RAX, RX_RCX);
    rx_shift_ri(b, RX_SHL, 4, RX_RAX, 8);     /* AH = SF ZF - AF - PF - CF */
    rx_shift_ri(b, RX_SHR, 4, RX_RCX, 11);
    rx_alu_ri(b, RX_AND, 4, RX_RCX, 1);       /* OF */
    rx_alu_ri(b, RX_ADD, 1, RX_RCX, 0x7f);    /* overflows exactly when OF was set */
    rx_sahf(b);
}

/* The guest's arithmetic flags into the host's (as iem-alu.h's IEM_ALU_FIN does): clobbers rax, rcx. */
static void emit_flags_in(struct gen *g)
{
    if (g->fpend)
        rx_mov_rr(&g->b, 4, RX_RCX, RX_R13);
    else
        rx_load(&g->b, 4, RX_RCX, rx_mem(ST, OFF_RFLAGS));
    rec_gen_flags_load(&g->b);
}

/*
 * The guest's CF into the host's, for an operation that reads no other flag and defines
 * every other flag it writes (INC, DEC, ADC, SBB): one BT, which clobbers no register.
 */
static void emit_cf_in(struct gen *g)
{
    if (g->fpend)
        rx_bt_ri(&g->b, 4, 4, RX_R13, 0);
    else
        rx_bt_mi(&g->b, 4, 4, rx_mem(ST, OFF_RFLAGS), 0);
}

/* The host's arithmetic flags become the guest's, pending in r13 (merged into RFLAGS as flags_merge does). */
static void emit_flags_out(struct gen *g)
{
    rx_pushfq(&g->b);
    rx_pop(&g->b, RX_R13);
    g->fpend = true;
}

/*
 * Whether instruction k's flags must reach RFLAGS, and whether the guest's flags must go
 * into the host first: always for ADC/SBB (CF) and for the operations whose undefined flags
 * the host may keep, and for a logic operation only when its AF (passed through) is live.
 */
static bool flags_needed(const struct gen *g, unsigned k)
{
    return (g->live_after[k] & F_ALL) != 0;
}

/* A slow case of instruction k: the interpreter runs it whole, then the code after k goes on. */
static void slow_jump(struct gen *g, unsigned k, enum rec_cc cc)
{
    add_tail(g, rx_jcc32(&g->b, g->code, cc, HERE(g)), TAIL_SLOW, k, NULL);
}

/* dst = the effective address of instruction k's memory operand (64-bit address size). Clobbers rax, rcx. */
static void emit_ea(struct gen *g, unsigned k, const struct iem_insn *in, enum rec_reg dst)
{
    const struct iem_mem *m = &in->mem;
    int32_t disp = (int32_t)m->disp;
    if (m->rip_rel) {
        emit_rip(g, k, in->len);
        rx_lea(&g->b, 8, dst, rx_mem(RX_RAX, disp));
        return;
    }
    if (m->base >= 16 && m->index >= 16) {
        rx_mov_ri(&g->b, 8, dst, (uint64_t)(int64_t)disp);
        return;
    }
    /* Cached registers take part as they are. */
    enum rec_reg base = m->base < 16 ? src_gpr(g, 8, m->base, dst) : RX_NONE;
    enum rec_reg index = m->index < 16 ? src_gpr(g, 8, m->index, RX_RCX) : RX_NONE;
    if (index == RX_NONE && base == dst && !disp)
        return;
    rx_lea(&g->b, 8, dst, rx_mem_idx(base, index, index == RX_NONE ? 1 : m->scale, disp));
}

/* rsi = the linear address of instruction k's memory operand (mem_ok forms). Clobbers rax, rcx. */
static void emit_lin(struct gen *g, unsigned k, const struct iem_insn *in)
{
    const struct iem_mem *m = &in->mem;
    emit_ea(g, k, in, RX_RSI);
    if (m->seg >= CPU_FS)
        rx_alu_rm(&g->b, RX_ADD, 8, RX_RSI, rx_mem(ST, OFF_SEGBASE(m->seg)));
}

/*
 * The host address of [rsi, rsi+n) for an access of this kind when the TLB maps it to
 * plain RAM at this privilege and it stays in its page (iem_fast_ptr's test), else the
 * slow case of instruction k: returned as [rax + rsi] (rax the entry's addend).  One
 * test covers the rest: the page of the access's last byte with its twelve low bits set,
 * XORed with the entry's tag and masked with tlb_hit_mask (which keeps the page, VALID,
 * DIRECT and, at CPL 3, USER_OK), must be zero; an access that crosses into the next page
 * names a page this slot cannot hold.
 * Leaves the slot times 32 in r11 (emit_dirty).  Clobbers rcx.
 */
static struct rec_mem emit_tlb(struct gen *g, unsigned k, unsigned n, int kind)
{
    rx_mov_rr(&g->b, 4, RX_R11, RX_RSI);
    rx_shift_ri(&g->b, RX_SHR, 4, RX_R11, 12 - 5);
    rx_alu_ri(&g->b, RX_AND, 4, RX_R11, (IEM_TLB_ENTRIES - 1) << 5); /* slot * 32: entries of 32 bytes */
    if (n > 1)
        rx_lea(&g->b, 8, RX_RCX, rx_mem(RX_RSI, (int32_t)n - 1));
    else
        rx_mov_rr(&g->b, 8, RX_RCX, RX_RSI);
    rx_alu_ri(&g->b, RX_OR, 8, RX_RCX, 0xfff); /* the page with every tag bit: tlb_hit_mask keeps those that count */
    rx_alu_rm(&g->b, RX_XOR, 8, RX_RCX, rx_mem_idx(CPU, RX_R11, 1, OFF_TLB(kind) + OFF_TLB_TAG));
    rx_alu_rm(&g->b, RX_AND, 8, RX_RCX, rx_mem(CPU, OFF_HIT_MASK));
    slow_jump(g, k, RX_CC_NE);
    if (n > 1) {
        /* A misaligned access at CPL 3 with EFLAGS.AC set may owe #AC: the interpreter decides. */
        rx_test_ri(&g->b, 1, RX_RSI, (int32_t)(n - 1));
        uint8_t *aligned = rx_jcc8(&g->b, RX_CC_E);
        rx_test_mi(&g->b, 4, rx_mem(ST, OFF_RFLAGS), IEM_F_AC);
        uint8_t *no_ac = rx_jcc8(&g->b, RX_CC_E);
        rx_alu_mi(&g->b, RX_CMP, 4, rx_mem(CPU, OFF_CPL), 3);
        slow_jump(g, k, RX_CC_E);
        if (aligned)
            rx_bind8(&g->b, aligned);
        if (no_ac)
            rx_bind8(&g->b, no_ac);
    }
    rx_load(&g->b, 8, RX_RAX, rx_mem_idx(CPU, RX_R11, 1, OFF_TLB(kind) + OFF_TLB_ADDEND));
    return rx_mem_idx(RX_RAX, RX_RSI, 1, 0);
}

/*
 * Marks the page of the write just done dirty (iem_fast_dirty), its TLB slot times 32 in
 * r11 from emit_tlb.  A write entry with IEM_TLB_DIRECT maps RAM, whose dirty bitmap
 * always exists, so the side entry's word is never NULL on this path.  Clobbers rcx, rdx.
 */
static void emit_dirty(struct gen *g)
{
    rx_load(&g->b, 8, RX_RDX, rx_mem_idx(CPU, RX_R11, 1, OFF_WSIDE_WORD));
    rx_load(&g->b, 8, RX_RCX, rx_mem_idx(CPU, RX_R11, 1, OFF_WSIDE_BIT));
    rx_test_mr(&g->b, 8, rx_mem(RX_RDX, 0), RX_RCX);
    uint8_t *set = rx_jcc8(&g->b, RX_CC_NE);
    static const uint8_t lock = 0xf0;
    rx_bytes(&g->b, &lock, 1);
    rx_alu_mr(&g->b, RX_OR, 8, rx_mem(RX_RDX, 0), RX_RCX);
    if (set)
        rx_bind8(&g->b, set);
}

/*
 * What ALU instruction k needs of the guest's flags in the host's before it: CF for ADC and
 * SBB (emit_cf_in, no register clobbered), all of them for a logic operation whose AF
 * (passed through) is live on a host where it depends on the flags before (emit_flags_in,
 * which clobbers rax and rcx).
 */
enum flags_in { FIN_NONE, FIN_CF, FIN_ALL };
static enum flags_in alu_flags_in(const struct gen *g, unsigned k, const struct iem_insn *in)
{
    enum rec_alu op = RX_ADD;
    bool logic, is_test;
    alu_of(in->mnemonic, &op, &logic, &is_test);
    if (op == RX_ADC || op == RX_SBB)
        return FIN_CF;
    if (flags_needed(g, k) && logic && (g->live_after[k] & IEM_F_AF) && !(g->rc->pure & REC_PURE_LOGIC))
        return FIN_ALL;
    return FIN_NONE;
}

static void emit_alu_flags_in(struct gen *g, enum flags_in fin)
{
    if (fin == FIN_CF)
        emit_cf_in(g);
    else if (fin == FIN_ALL)
        emit_flags_in(g);
}

/*
 * dst op= src (or the immediate) in dreg (rdx, or the destination's own cache register)
 * and sreg, flags as the liveness wants them.
 */
static void emit_alu_op(struct gen *g, unsigned k, const struct iem_insn *in, unsigned n, bool imm,
                        enum rec_reg dreg, enum rec_reg sreg, const struct rec_mem *msrc)
{
    enum rec_alu op;
    bool logic, is_test;
    alu_of(in->mnemonic, &op, &logic, &is_test);
    bool store_flags = flags_needed(g, k);
    emit_alu_flags_in(g, alu_flags_in(g, k, in));
    int32_t v = (int32_t)in->imm;
    if (msrc) {
        /*
         * The source operand straight from memory: the caller takes this form only when at
         * most CF comes in (a BT), as emit_flags_in would clobber rax.
         */
        if (is_test)
            rx_test_mr(&g->b, n, *msrc, dreg);
        else
            rx_alu_rm(&g->b, op, n, dreg, *msrc);
    } else if (is_test) {
        if (imm)
            rx_test_ri(&g->b, n, dreg, n == 1 ? (int8_t)v : n == 2 ? (int16_t)v : v);
        else
            rx_test_rr(&g->b, n, dreg, sreg);
    } else if (imm) {
        rx_alu_ri(&g->b, op, n, dreg, n == 1 ? (int8_t)v : n == 2 ? (int16_t)v : v);
    } else {
        rx_alu_rr(&g->b, op, n, dreg, sreg);
    }
    /*
     * A Jcc right after the operation branches on the host's flags of this very operation
     * (the host condition codes are the guest's): what comes in between (PUSHFQ and POP
     * into r13, moves into the destination) leaves them alone.  A slow case (a memory
     * operand) resumes at the Jcc's code after loading the guest's flags into the host's.
     */
    g->cond_in_host = k + 1 < g->blk->ninsns &&
                      (g->plan[k + 1] == P_JCC || g->plan[k + 1] == P_CMOV || g->plan[k + 1] == P_SETCC);
    if (store_flags)
        emit_flags_out(g);
    if (!is_test && op != RX_CMP)
        store_gpr_z(g, n, in->op[0].reg, dreg); /* for a cache register: marks it changed */
}

/*
 * Evaluates Jcc condition cc on the guest's RFLAGS: afterwards the host's ZF is clear
 * exactly when the condition (before the cc & 1 inversion) holds.  Clobbers rax, rcx.
 */
static void emit_cond(struct gen *g, unsigned cc)
{
    static const uint32_t simple[6] = { IEM_F_OF, IEM_F_CF, IEM_F_ZF, IEM_F_CF | IEM_F_ZF, IEM_F_SF, IEM_F_PF };
    unsigned c = (cc >> 1) & 7;
    if (c < 6) {
        if (g->fpend)
            rx_test_ri(&g->b, 4, RX_R13, (int32_t)simple[c]);
        else
            rx_test_mi(&g->b, 4, rx_mem(ST, OFF_RFLAGS), (int32_t)simple[c]);
        return;
    }
    /* L: SF != OF (OF is bit 11, SF bit 7); LE: that or ZF (bit 6). */
    if (g->fpend)
        rx_mov_rr(&g->b, 4, RX_RAX, RX_R13);
    else
        rx_load(&g->b, 4, RX_RAX, rx_mem(ST, OFF_RFLAGS));
    rx_mov_rr(&g->b, 4, RX_RCX, RX_RAX);
    rx_shift_ri(&g->b, RX_SHR, 4, RX_RCX, 4);
    rx_alu_rr(&g->b, RX_XOR, 4, RX_RCX, RX_RAX);
    rx_alu_ri(&g->b, RX_AND, 4, RX_RCX, IEM_F_SF);
    if (c == 7) {
        rx_alu_ri(&g->b, RX_AND, 4, RX_RAX, IEM_F_ZF);
        rx_alu_rr(&g->b, RX_OR, 4, RX_RCX, RX_RAX);
    } else {
        rx_test_rr(&g->b, 4, RX_RCX, RX_RCX);
    }
}

/* The host condition that holds when guest condition cc does, after emit_cond. */
static enum rec_cc cond_host(unsigned cc)
{
    return (cc & 1) ? RX_CC_E : RX_CC_NE;
}

/*
 * The host condition that holds when instruction k's condition does: on the host's flags
 * of the operation just before when they are still there (emit_alu_op), else after
 * emit_cond.  Clobbers rax, rcx in the second case.
 */
static enum rec_cc emit_cond_any(struct gen *g, unsigned k)
{
    const struct iem_insn *in = &g->blk->insns[k];
    if (k > 0 && g->cond_in_host_for == k)
        return (enum rec_cc)(in->cond & 15);
    emit_cond(g, in->cond);
    return cond_host(in->cond);
}

/*
 * A branch target in rax that is not canonical goes through the interpreter (its #GP):
 * to a tail of this kind.  Afterwards tmp holds the target too.
 */
static void emit_canonical(struct gen *g, unsigned k, enum rec_reg tmp, int kind)
{
    rx_mov_rr(&g->b, 8, tmp, RX_RAX);
    rx_shift_ri(&g->b, RX_SHL, 8, tmp, 16);
    rx_shift_ri(&g->b, RX_SAR, 8, tmp, 16);
    rx_alu_rr(&g->b, RX_CMP, 8, tmp, RX_RAX);
    add_tail(g, rx_jcc32(&g->b, g->code, RX_CC_NE, HERE(g)), kind, k, NULL);
}

/*
 * rec_chain's conditions besides the link: a kick or cross-thread work go to slow[].  An
 * interrupt to take needs no test of its own here: another thread raising the line kicks
 * (vcpu_set_intr), and what this vCPU does that raises it or sets IF runs through a
 * handler, after which emit_call kicks when one is deliverable.  Inline code does neither.
 */
static void emit_run_on_checks(struct gen *g, uint8_t **slow, unsigned *nslow)
{
    rx_alu_mi(&g->b, RX_CMP, 8, rx_mem(CPU, OFF_WORK), 0); /* work and kicked */
    slow[(*nslow)++] = rx_jcc32(&g->b, g->code, RX_CC_NE, HERE(g));
}

/*
 * The chain budget (iem_core.rec_budget) pays for this block's k + 1 retired instructions
 * as the exit runs on; when it goes negative the exit goes to undo[], which takes the
 * charge back (emit_undo_charge) on the way to rec_chain (which refuses).
 */
static void emit_charge(struct gen *g, unsigned k, uint8_t **undo, unsigned *nundo)
{
    rx_alu_mi(&g->b, RX_SUB, 4, rx_mem(CPU, OFF_BUDGET), (int32_t)(k + 1));
    undo[(*nundo)++] = rx_jcc32(&g->b, g->code, RX_CC_S, HERE(g));
}

/* The target of undo[]: the charge of emit_charge taken back; the code after it is the way out through rec_chain. */
static void emit_undo_charge(struct gen *g, unsigned k, uint8_t **undo, unsigned nundo)
{
    if (!nundo)
        return;
    for (unsigned i = 0; i < nundo; i++)
        rx_bind32(&g->b, undo[i]);
    rx_alu_mi(&g->b, RX_ADD, 4, rx_mem(CPU, OFF_BUDGET), (int32_t)(k + 1));
}

/*
 * rec_chain's bookkeeping for running on into the block in register blk at the RIP in rax:
 * cpu->cur_block, core->count_base (its first instruction) and cpu->block_rip.  Clobbers rcx.
 */
static void emit_enter_block(struct gen *g, enum rec_reg blk)
{
    rx_store(&g->b, 8, rx_mem(CPU, OFF_CUR_BLOCK), blk);
    rx_lea(&g->b, 8, RX_RCX, rx_mem(blk, OFF_INSNS));
    rx_store(&g->b, 8, rx_mem(CPU, OFF_COUNT_BASE), RX_RCX);
    rx_store(&g->b, 8, rx_mem(CPU, OFF_BLOCK_RIP), RX_RAX);
}

/*
 * A RET whose link slots all missed: the jump cache entry of the target RIP in rax
 * (iem_jcache_slot), when it is valid (iem_link_valid) and its block has a translation of
 * this code generation, is run on into as a link would be (rec_chain's conditions and
 * bookkeeping); anything else goes to slow[].  Clobbers rcx, rdx.
 */
static void emit_jcache_probe(struct gen *g, unsigned k, uint8_t **slow, unsigned *nslow, uint8_t **undo, unsigned *nundo)
{
    _Static_assert(sizeof(struct iem_link) == 32, "jump cache entries of 32 bytes");
    rx_mov_ri(&g->b, 8, RX_RCX, 0x9e3779b97f4a7c15ull);
    rx_imul_rr(&g->b, 8, RX_RCX, RX_RAX);
    rx_shift_ri(&g->b, RX_SHR, 8, RX_RCX, 64 - IEM_JCACHE_BITS);
    rx_shift_ri(&g->b, RX_SHL, 8, RX_RCX, 5);
    rx_lea(&g->b, 8, RX_RDX, rx_mem_idx(CPU, RX_RCX, 1, OFF_JCACHE));
    rx_alu_rm(&g->b, RX_CMP, 8, RX_RAX, rx_mem(RX_RDX, (int32_t)offsetof(struct iem_link, lin)));
    slow[(*nslow)++] = rx_jcc32(&g->b, g->code, RX_CC_NE, HERE(g));
    rx_load(&g->b, 8, RX_RCX, rx_mem(CPU, OFF_LINK_KEY));
    rx_alu_rm(&g->b, RX_AND, 8, RX_RCX, rx_mem(RX_RDX, (int32_t)offsetof(struct iem_link, mask)));
    rx_alu_rm(&g->b, RX_CMP, 8, RX_RCX, rx_mem(RX_RDX, (int32_t)offsetof(struct iem_link, key)));
    slow[(*nslow)++] = rx_jcc32(&g->b, g->code, RX_CC_NE, HERE(g));
    /* rdx = the block: present, translated in this generation (a block never translated has rec_gen 0). */
    rx_load(&g->b, 8, RX_RDX, rx_mem(RX_RDX, (int32_t)offsetof(struct iem_link, to)));
    rx_test_rr(&g->b, 8, RX_RDX, RX_RDX);
    slow[(*nslow)++] = rx_jcc32(&g->b, g->code, RX_CC_E, HERE(g));
    rx_alu_mi(&g->b, RX_CMP, 4, rx_mem(RX_RDX, (int32_t)offsetof(struct iem_block, rec_gen)), (int32_t)g->rc->gen);
    slow[(*nslow)++] = rx_jcc32(&g->b, g->code, RX_CC_NE, HERE(g));
    emit_run_on_checks(g, slow, nslow);
    emit_charge(g, k, undo, nundo);
    emit_enter_block(g, RX_RDX);
    rx_load(&g->b, 8, RX_RCX, rx_mem(RX_RDX, (int32_t)offsetof(struct iem_block, rec_code)));
    rx_alu_ri(&g->b, RX_ADD, 8, RX_RCX, (int32_t)g->rc->prologue_bytes);
    rx_jmp_reg(&g->b, RX_RCX);
}

/* The next exit (emit_exit_chain) goes to this block's start + rel: the RIP in rax is that. */
static void exit_to_rel(struct gen *g, int64_t rel)
{
    g->exit_rel_known = true;
    g->exit_rel = rel;
}

/*
 * Leaves the translation after instruction k with result rc (IEM_NEXT or IEM_JUMPED) for
 * the RIP in rax.  In 64-bit code after an inline instruction (nothing can have opened a
 * shadow or set TF), the exit's link slot is checked first: the same target RIP, the same
 * link key (nothing died, nothing flushed, same privilege), no kick, cross-thread work or
 * interrupt to take, room in the chain budget.  Then the target block starts at once,
 * with the bookkeeping rec_chain does.  Else RIP and cpu->insn are stored, rec_chain
 * decides (and fills the slot), and the translation returns when it refuses.
 */
static void emit_exit_chain(struct gen *g, unsigned k, int rc, bool fast_ok)
{
    struct rec_core *rcore = g->rc;
    /* The code after an exit is reached only by other paths, which keep their flags and cache state. */
    bool fpend = g->fpend;
    uint8_t cvalid = g->cvalid, cdirty = g->cdirty;
    /* The next translation starts with the flags pending in r13; only the return to the run loop merges them. */
    if (!g->fpend)
        rx_load(&g->b, 8, RX_R13, rx_mem(ST, OFF_RFLAGS));
    g->fpend = true;
    bool self = g->exit_self && fast_ok && g->code_size == 8;
    g->exit_self = false;
    bool canon = g->exit_canon;
    g->exit_canon = false;
    unsigned ways = g->exit_ways ? g->exit_ways : 1;
    g->exit_ways = 0;
    /*
     * A direct exit to a target on this block's first page (code_size 8: RIP is linear) is a
     * page-local link (struct rec_link): the target RIP needs no compare, the key only its
     * low half.
     */
    int64_t tpage = (int64_t)(g->blk->gpa & 0xfff) + g->exit_rel;
    bool local = g->exit_rel_known && ways == 1 && tpage >= 0 && tpage < 0x1000;
    g->exit_rel_known = false;
    struct rec_link *link = NULL;
    uint8_t *slow[16], *undo[2];
    unsigned nslow = 0, nundo = 0;
    /*
     * RIP, cpu->insn and cpu->insn_rip are exit state: translated code keeps its position in
     * block_rip and the instruction offsets, and sets them itself before a handler call.  So
     * the ways on into translated code below leave them alone; only the way out through
     * rec_chain stores them.  The checks keep rax (the target) intact.
     */
    if (self) {
        /*
         * A loop back to this block's start at the same RIP: the block, its RIP and the
         * link key stay what they are, so only rec_chain's other conditions and the
         * instruction count remain.  The cache stays in its registers: the loop head
         * counts every slot as changed (rec_gen_block), so nothing is written back here.
         */
        emit_run_on_checks(g, slow, &nslow);
        emit_charge(g, k, undo, &nundo);
        /* The loop head expects the whole cache loaded; a slot not loaded here has memory up to date. */
        uint8_t cvalid_here = g->cvalid;
        cache_load(g, g->cache_slots);
        g->cvalid = cvalid_here;
        rx_jmp32(&g->b, g->code, g->loop_head);
        emit_undo_charge(g, k, undo, nundo);
        nundo = 0;
        for (unsigned i = 0; i < nslow; i++)
            rx_bind32(&g->b, slow[i]);
        nslow = 0;
        /* rec_chain decides the rest, without a slot of its own (it would hold this same link). */
        fast_ok = false;
    }
    cache_flush(g); /* the next translation starts with an empty cache */
    if (fast_ok && g->code_size == 8 && rcore->nlinks + ways <= REC_LINKS_MAX) {
        /* A slot used before the last code flush still holds a link into the old code: empty it (no key matches). */
        link = &rcore->links[rcore->nlinks];
        rcore->nlinks += ways;
        memset(link, 0, ways * sizeof(*link));
        for (unsigned w = 0; w < ways; w++)
            link[w].key = REC_LINK_EMPTY_KEY;
        link->ways = (uint16_t)ways;
        link->page_local = local;
    }
    if (link) {
        rx_mov_ri(&g->b, 8, RX_RDX, (uint64_t)(uintptr_t)link);
        uint8_t *probe = NULL;
        if (link->page_local) {
            /* No RIP to compare; the link key's low half, zero-extended, against the slot's key. */
            rx_load(&g->b, 4, RX_RCX, rx_mem(CPU, OFF_LINK_KEY));
        } else {
            /* The slot whose RIP matches (of several for a RET) in rdx; the short jumps reach past eight ways. */
            _Static_assert(REC_RET_WAYS <= 8, "rel8 jumps over the ways' compares");
            uint8_t *found[REC_RET_WAYS];
            unsigned nfound = 0;
            for (unsigned w = 0; w + 1 < ways; w++) {
                rx_alu_rm(&g->b, RX_CMP, 8, RX_RAX, rx_mem(RX_RDX, (int32_t)offsetof(struct rec_link, lin)));
                found[nfound++] = rx_jcc8(&g->b, RX_CC_E);
                rx_alu_ri(&g->b, RX_ADD, 8, RX_RDX, (int32_t)sizeof(struct rec_link));
            }
            rx_alu_rm(&g->b, RX_CMP, 8, RX_RAX, rx_mem(RX_RDX, (int32_t)offsetof(struct rec_link, lin)));
            probe = rx_jcc32(&g->b, g->code, RX_CC_NE, HERE(g));
            if (ways == 1) {
                slow[nslow++] = probe;
                probe = NULL;
            }
            for (unsigned f = 0; f < nfound; f++)
                if (found[f])
                    rx_bind8(&g->b, found[f]);
            /* The link key (iem_link_valid): generations and CPL 3. */
            rx_load(&g->b, 8, RX_RCX, rx_mem(CPU, OFF_LINK_KEY));
            rx_alu_rm(&g->b, RX_AND, 8, RX_RCX, rx_mem(RX_RDX, (int32_t)offsetof(struct rec_link, mask)));
        }
        rx_alu_rm(&g->b, RX_CMP, 8, RX_RCX, rx_mem(RX_RDX, (int32_t)offsetof(struct rec_link, key)));
        slow[nslow++] = rx_jcc32(&g->b, g->code, RX_CC_NE, HERE(g));
        emit_run_on_checks(g, slow, &nslow);
        emit_charge(g, k, undo, &nundo);
        rx_load(&g->b, 8, RX_RCX, rx_mem(RX_RDX, (int32_t)offsetof(struct rec_link, to)));
        emit_enter_block(g, RX_RCX);
        rx_jmp_mem(&g->b, rx_mem(RX_RDX, (int32_t)offsetof(struct rec_link, body)));
        if (probe) {
            rx_bind32(&g->b, probe);
            emit_jcache_probe(g, k, slow, &nslow, undo, &nundo);
        }
        emit_undo_charge(g, k, undo, nundo);
        for (unsigned i = 0; i < nslow; i++)
            rx_bind32(&g->b, slow[i]);
    }
    /*
     * Out through rec_chain: a branch target not checked yet first (a link matched only a
     * RIP a block was found at, so a canonical one), then the exit state.
     */
    if (canon)
        emit_canonical(g, k, RX_RCX, TAIL_BRANCH);
    /* The shared way out for this result (rec_gen_exit_way) stores RIP and cpu->insn and asks rec_chain. */
    rx_mov_ri(&g->b, 8, RX_RSI, (uint64_t)(uintptr_t)&g->blk->insns[k]);
    if (link)
        rx_mov_ri(&g->b, 8, RX_RDX, (uint64_t)(uintptr_t)link);
    else
        rx_alu_rr(&g->b, RX_XOR, 4, RX_RDX, RX_RDX);
    rx_jmp32(&g->b, g->code, rc == IEM_JUMPED ? g->rc->exit_jumped : g->rc->exit_next);
    g->fpend = fpend;
    g->cvalid = cvalid;
    g->cdirty = cdirty;
}

/*
 * Leaves with IEM_JUMPED to the target in rax of a JMP or Jcc, which changed nothing else:
 * a non-canonical target goes through the interpreter (#GP), tested on the way out through
 * rec_chain (emit_exit_chain).  A branch to the block's own start needs no test: it runs there.
 */
static void emit_jump_rax(struct gen *g, unsigned k)
{
    g->exit_canon = !g->exit_self;
    emit_exit_chain(g, k, IEM_JUMPED, true);
}

/* rax = the target of instruction k's relative branch (RIP(k) + len + imm). */
static void emit_rel_target(struct gen *g, unsigned k)
{
    const struct iem_insn *in = &g->blk->insns[k];
    int64_t rel = (int64_t)in->off + (int64_t)in->len + (int64_t)in->imm;
    rx_load(&g->b, 8, RX_RAX, rx_mem(CPU, OFF_BLOCK_RIP));
    if (rel == (int64_t)(int32_t)rel) {
        if (rel)
            rx_lea(&g->b, 8, RX_RAX, rx_mem(RX_RAX, (int32_t)rel));
    } else {
        rx_mov_ri(&g->b, 8, RX_RCX, (uint64_t)rel);
        rx_alu_rr(&g->b, RX_ADD, 8, RX_RAX, RX_RCX);
    }
}

/* SHL/SHR/SAR/ROL/ROR of reg's n bytes by count (1..63), flags as the liveness wants them. */
static void emit_shift_imm(struct gen *g, const struct iem_insn *in, unsigned n, enum rec_reg reg, uint8_t count,
                           bool store_flags)
{
    enum rec_shift op = RX_SHL;
    shift_of(in->mnemonic, &op);
    if (store_flags) {
        /* ROL/ROR keep SF ZF AF PF (defined); the others may keep their undefined OF/AF unless the host is pure. */
        if (op == RX_ROL || op == RX_ROR || !(g->rc->pure & REC_PURE_SHIFT))
            emit_flags_in(g);
        /* By CL as the interpreter shifts: the immediate form may leave other undefined flags. */
        rx_mov_ri(&g->b, 4, RX_RCX, count);
        rx_shift_rcl(&g->b, op, n, reg);
        emit_flags_out(g);
    } else {
        rx_shift_ri(&g->b, op, n, reg, count);
    }
}

/*
 * INC/DEC/NEG/NOT of reg's n bytes (instruction k), flags as the liveness wants them.  INC
 * and DEC keep CF, so the guest's comes in while it is live; NEG defines every flag.
 */
static void emit_unary_op(struct gen *g, unsigned k, const struct iem_insn *in, unsigned n, enum rec_reg reg,
                          bool store_flags)
{
    if (in->mnemonic == ZYDIS_MNEMONIC_NOT) {
        rx_not(&g->b, n, reg);
        return;
    }
    if (store_flags && in->mnemonic != ZYDIS_MNEMONIC_NEG && (g->live_after[k] & IEM_F_CF))
        emit_cf_in(g);
    if (in->mnemonic == ZYDIS_MNEMONIC_INC)
        rx_inc(&g->b, n, reg);
    else if (in->mnemonic == ZYDIS_MNEMONIC_DEC)
        rx_dec(&g->b, n, reg);
    else
        rx_neg(&g->b, n, reg);
    if (store_flags)
        emit_flags_out(g);
}

/*
 * A read-modify-write of instruction k's memory operand through the write TLB entry (a
 * writable page is readable): the host address into rsi and the n-byte value into rdx;
 * emit_rmw_store writes rdx back and marks the page dirty.
 */
static void emit_rmw_load(struct gen *g, unsigned k, const struct iem_insn *in, unsigned n)
{
    emit_lin(g, k, in);
    struct rec_mem hm = emit_tlb(g, k, n, IEM_ACC_WRITE);
    rx_lea(&g->b, 8, RX_RSI, hm);
    rx_load(&g->b, n, RX_RDX, rx_mem(RX_RSI, 0));
}

static void emit_rmw_store(struct gen *g, unsigned n)
{
    rx_store(&g->b, n, rx_mem(RX_RSI, 0), RX_RDX);
    emit_dirty(g);
}

static void gen_inline(struct gen *g, unsigned k, enum plan p)
{
    const struct iem_insn *in = &g->blk->insns[k];
    const struct iem_operand *d = &in->op[0], *s = &in->op[1];
    unsigned n = d->size;
    bool store_flags = flags_needed(g, k);
    struct rec_mem hm; /* host address of the memory operand (emit_tlb) */
    switch (p) {
    case P_NOP:
        break;
    case P_MOV_RR: {
        /* A value loaded from memory at n = 4 is zero-extended; a cache register's upper half is its own. */
        enum rec_reg r = src_gpr(g, n, s->reg, RX_RAX);
        store_gpr_ext(g, n, d->reg, r, r == RX_RAX);
        break;
    }
    case P_MOV_RI:
        rx_mov_ri(&g->b, n == 8 ? 8 : 4, RX_RAX, n == 8 ? in->imm : in->imm & 0xffffffffu);
        store_gpr_z(g, n, d->reg, RX_RAX);
        break;
    case P_MOVX_RR: {
        /*
         * Into a cached destination of 4 or 8 bytes straight from the source's register (its
         * cache register or rax): a 4-byte result zero-extends, as the guest's does.
         */
        int slot = n >= 4 && s->size < n && d->reg < 16 ? g->cache_slot[d->reg] : -1;
        if (slot >= 0) {
            enum rec_reg src = src_gpr(g, s->size, s->reg, RX_RAX);
            enum rec_reg h = cache_reg_write(g, n, d->reg);
            if (in->mnemonic == ZYDIS_MNEMONIC_MOVZX)
                rx_movzx_rr(&g->b, 4, s->size, h, src);
            else
                rx_movsx_rr(&g->b, n, s->size, h, src);
            break;
        }
        /* Extended to 64 bits, then the destination's n bytes stored (a 4-byte one zero-extends). */
        load_gpr(g, s->size, RX_RAX, s->reg);
        if (in->mnemonic == ZYDIS_MNEMONIC_MOVZX) {
            rx_movzx_rr(&g->b, 4, s->size, RX_RAX, RX_RAX);
            store_gpr_z(g, n, d->reg, RX_RAX);
        } else {
            rx_movsx_rr(&g->b, 8, s->size, RX_RAX, RX_RAX);
            store_gpr(g, n, d->reg, RX_RAX);
        }
        break;
    }
    case P_LEA: {
        /*
         * A 64-bit LEA into a cached register computes there, unless its base is an uncached
         * register, which emit_ea would load into that very register before reading an index
         * that may be the destination's old value.
         */
        int slot = n == 8 && d->reg < 16 ? g->cache_slot[d->reg] : -1;
        const struct iem_mem *m = &in->mem;
        if (slot >= 0 && (m->rip_rel || m->base >= 16 || g->cache_slot[m->base] >= 0)) {
            emit_ea(g, k, in, g_cache_host[slot]);
            cache_reg_write(g, 8, d->reg);
        } else {
            emit_ea(g, k, in, RX_RAX);
            store_gpr(g, n, d->reg, RX_RAX);
        }
        break;
    }
    case P_ALU_RR: case P_ALU_RI: {
        /* On the cache registers themselves where they hold the operands (same width, same partial writes). */
        enum rec_reg dreg = src_gpr(g, n, d->reg, RX_RDX);
        enum rec_reg sreg = p == P_ALU_RR ? src_gpr(g, n, s->reg, RX_RSI) : RX_NONE;
        emit_alu_op(g, k, in, n, p == P_ALU_RI, dreg, sreg, NULL);
        break;
    }
    case P_SHIFT_RI: {
        uint8_t count = (uint8_t)((in->imm & 0xff) & (n == 8 ? 0x3f : 0x1f));
        /*
         * On the destination's cache register itself (partial writes as the guest's), except
         * a 4-byte shift by 0: through rdx, whose 32-bit load clears the upper half.
         */
        enum rec_reg dreg = n == 4 && !count ? RX_NONE : cache_reg(g, d->reg);
        if (dreg == RX_NONE) {
            dreg = RX_RDX;
            load_gpr(g, n, RX_RDX, d->reg);
        }
        emit_shift_imm(g, in, n, dreg, count, store_flags);
        store_gpr_z(g, n, d->reg, dreg);
        break;
    }
    case P_SHIFT_RCL: {
        enum rec_shift op = RX_SHL;
        shift_of(in->mnemonic, &op);
        load_gpr(g, n, RX_RDX, d->reg);
        if (store_flags)
            emit_flags_in(g);                  /* clobbers rcx: the count comes after */
        load_gpr(g, 1, RX_RCX, CPU_RCX);
        rx_shift_rcl(&g->b, op, n, RX_RDX);
        if (store_flags)
            emit_flags_out(g);
        store_gpr_z(g, n, d->reg, RX_RDX);
        break;
    }
    case P_IMUL_RR: case P_IMUL_RRI: {
        /* Two-operand IMUL on the cache registers themselves where it can (a 32-bit product clears the upper half). */
        enum rec_reg dreg = RX_RDX, sreg = RX_RSI;
        if (p == P_IMUL_RR) {
            sreg = src_gpr(g, n, s->reg, RX_RSI);
            dreg = src_gpr(g, n, d->reg, RX_RDX);
        } else {
            load_gpr(g, n, RX_RSI, s->reg);
        }
        if (store_flags && !(g->rc->pure & REC_PURE_IMUL))
            emit_flags_in(g);
        if (p == P_IMUL_RR) {
            rx_imul_rr(&g->b, n, dreg, sreg);
        } else {
            /* Two-operand IMUL as the interpreter multiplies (the three-operand form's undefined flags may differ). */
            rx_mov_rr(&g->b, 8, RX_RDX, RX_RSI);
            rx_mov_ri(&g->b, 8, RX_RSI, (uint64_t)(int64_t)(n == 2 ? (int16_t)in->imm : (int32_t)in->imm));
            rx_imul_rr(&g->b, n, dreg, RX_RSI);
        }
        if (store_flags)
            emit_flags_out(g);
        store_gpr_z(g, n, d->reg, dreg);
        break;
    }
    case P_UNARY: {
        /* On the cache register itself where it is one (a 32-bit operation clears the upper half). */
        enum rec_reg dreg = src_gpr(g, n, d->reg, RX_RDX);
        emit_unary_op(g, k, in, n, dreg, store_flags);
        store_gpr_z(g, n, d->reg, dreg);
        /* As after emit_alu_op: a Jcc, CMOV or SETcc next reads INC's, DEC's or NEG's host flags (NOT sets none). */
        g->cond_in_host = in->mnemonic != ZYDIS_MNEMONIC_NOT && store_flags && k + 1 < g->blk->ninsns &&
                          (g->plan[k + 1] == P_JCC || g->plan[k + 1] == P_CMOV || g->plan[k + 1] == P_SETCC);
        break;
    }
    case P_SETCC:
        rx_setcc(&g->b, emit_cond_any(g, k), RX_RDX);
        store_gpr(g, 1, d->reg, RX_RDX);
        break;
    case P_CMOV: {
        enum rec_cc cc = emit_cond_any(g, k);
        enum rec_reg h = cache_reg(g, d->reg);
        enum rec_reg sreg = src_gpr(g, 8, s->reg, RX_RSI);
        if (h != RX_NONE) {
            /* In place: a 4-byte CMOV clears the upper half whether it moves or not, as the guest's does. */
            rx_cmov(&g->b, cc, n, h, sreg);
            store_gpr_z(g, n, d->reg, h);
        } else {
            load_gpr(g, 8, RX_RDX, d->reg);
            rx_cmov(&g->b, cc, 8, RX_RDX, sreg);
            store_gpr(g, n, d->reg, RX_RDX);
        }
        break;
    }
    case P_LOAD: case P_MOVX_LOAD: case P_ALU_RM: {
        unsigned ms = p == P_MOVX_LOAD ? s->size : n;
        emit_lin(g, k, in);
        hm = emit_tlb(g, k, ms, IEM_ACC_READ);
        if (p == P_LOAD) {
            /* Straight into the destination's cache register (a 1- or 2-byte load keeps the bytes above). */
            enum rec_reg h = cache_reg_write(g, n, d->reg);
            if (h != RX_NONE) {
                rx_load(&g->b, n, h, hm);
            } else {
                rx_load(&g->b, n, RX_RDX, hm);
                store_gpr_z(g, n, d->reg, RX_RDX);
            }
        } else if (p == P_MOVX_LOAD) {
            enum rec_reg h = in->mnemonic == ZYDIS_MNEMONIC_MOVZX && n >= 4 ? cache_reg_write(g, n, d->reg) : RX_NONE;
            if (h != RX_NONE) {
                rx_movzx_load(&g->b, 4, ms, h, hm);
            } else if (in->mnemonic == ZYDIS_MNEMONIC_MOVZX) {
                rx_movzx_load(&g->b, 4, ms, RX_RDX, hm);
                store_gpr_z(g, n, d->reg, RX_RDX);
            } else {
                rx_movsx_load(&g->b, 8, ms, RX_RDX, hm);
                store_gpr(g, n, d->reg, RX_RDX);
            }
        } else {
            if (alu_flags_in(g, k, in) != FIN_ALL) {
                emit_alu_op(g, k, in, n, false, src_gpr(g, n, d->reg, RX_RDX), RX_NONE, &hm);
            } else {
                rx_load(&g->b, n, RX_RSI, hm);
                emit_alu_op(g, k, in, n, false, src_gpr(g, n, d->reg, RX_RDX), RX_RSI, NULL);
            }
        }
        break;
    }
    case P_CMP_MR: case P_CMP_MI:
        /* The memory operand is the first (rdx), as emit_alu_op wants it; nothing is stored. */
        emit_lin(g, k, in);
        hm = emit_tlb(g, k, n, IEM_ACC_READ);
        rx_load(&g->b, n, RX_RDX, hm);
        emit_alu_op(g, k, in, n, p == P_CMP_MI, RX_RDX, p == P_CMP_MR ? src_gpr(g, n, s->reg, RX_RSI) : RX_NONE, NULL);
        break;
    case P_ALU_MR: case P_ALU_MI: {
        /*
         * Through the write entry (a writable page is readable): the host address in rsi, the
         * value in rdx, the guest's flags into the host's where the operation needs them (as
         * emit_alu_op decides; rax and rcx are free by then), the source in its cache register
         * or rcx, then the store and the dirty mark, which changes the host's flags (no Jcc
         * reads them after this).
         */
        enum rec_alu op = RX_ADD;
        bool logic, is_test;
        alu_of(in->mnemonic, &op, &logic, &is_test);
        emit_rmw_load(g, k, in, n);
        emit_alu_flags_in(g, alu_flags_in(g, k, in));
        if (p == P_ALU_MI) {
            int32_t v = (int32_t)in->imm;
            rx_alu_ri(&g->b, op, n, RX_RDX, n == 1 ? (int8_t)v : n == 2 ? (int16_t)v : v);
        } else {
            rx_alu_rr(&g->b, op, n, RX_RDX, src_gpr(g, n, s->reg, RX_RCX));
        }
        if (store_flags)
            emit_flags_out(g);
        emit_rmw_store(g, n);
        break;
    }
    case P_UNARY_M:
        /* INC, DEC, NEG, NOT of memory. */
        emit_rmw_load(g, k, in, n);
        emit_unary_op(g, k, in, n, RX_RDX, store_flags);
        emit_rmw_store(g, n);
        break;
    case P_SHIFT_MI:
        /* A shift of memory by an immediate (the flags loaded into the host's clobber rax, free after the address). */
        emit_rmw_load(g, k, in, n);
        emit_shift_imm(g, in, n, RX_RDX, (uint8_t)((in->imm & 0xff) & (n == 8 ? 0x3f : 0x1f)), store_flags);
        emit_rmw_store(g, n);
        break;
    case P_STORE_R: case P_STORE_I:
        emit_lin(g, k, in);
        hm = emit_tlb(g, k, n, IEM_ACC_WRITE);
        if (p == P_STORE_R) {
            rx_store(&g->b, n, hm, src_gpr(g, n, s->reg, RX_RDX));
        } else {
            rx_mov_ri(&g->b, 8, RX_RDX, in->imm);
            rx_store(&g->b, n, hm, RX_RDX);
        }
        emit_dirty(g);
        break;
    case P_PUSH:
        load_gpr(g, 8, RX_RSI, CPU_RSP);
        rx_alu_ri(&g->b, RX_SUB, 8, RX_RSI, 8);
        hm = emit_tlb(g, k, 8, IEM_ACC_WRITE);
        load_gpr(g, 8, RX_RDX, d->reg);
        rx_store(&g->b, 8, hm, RX_RDX);
        store_gpr(g, 8, CPU_RSP, RX_RSI);
        emit_dirty(g);
        break;
    case P_POP:
        load_gpr(g, 8, RX_RSI, CPU_RSP);
        hm = emit_tlb(g, k, 8, IEM_ACC_READ);
        rx_load(&g->b, 8, RX_RDX, hm);
        rx_alu_ri(&g->b, RX_ADD, 8, RX_RSI, 8);
        store_gpr(g, 8, CPU_RSP, RX_RSI);
        store_gpr(g, 8, d->reg, RX_RDX);
        break;
    case P_JCC: {
        uint8_t *skip;
        if (k > 0 && g->cond_in_host_for == k) {
            /* The host flags still hold those of the instruction before (emit_alu_op): the inverse skips. */
            skip = rx_jcc32(&g->b, g->code, (enum rec_cc)((in->cond & 15) ^ 1), HERE(g));
        } else {
            emit_cond(g, in->cond);
            skip = rx_jcc32(&g->b, g->code, (in->cond & 1) ? RX_CC_NE : RX_CC_E, HERE(g));
        }
        emit_rel_target(g, k);
        g->exit_self = (int64_t)in->off + (int64_t)in->len + (int64_t)in->imm == 0;
        exit_to_rel(g, (int64_t)in->off + (int64_t)in->len + (int64_t)in->imm);
        emit_jump_rax(g, k);
        if (skip)
            rx_bind32(&g->b, skip);
        break;
    }
    case P_JMP:
        emit_rel_target(g, k);
        g->exit_self = (int64_t)in->off + (int64_t)in->len + (int64_t)in->imm == 0;
        exit_to_rel(g, (int64_t)in->off + (int64_t)in->len + (int64_t)in->imm);
        emit_jump_rax(g, k);
        break;
    case P_CALL_REL:
        /* The return address and the target first: a non-canonical target faults before the push. */
        emit_rel_target(g, k);
        emit_canonical(g, k, RX_RCX, TAIL_BRANCH);
        load_gpr(g, 8, RX_RSI, CPU_RSP);
        rx_alu_ri(&g->b, RX_SUB, 8, RX_RSI, 8);
        hm = emit_tlb(g, k, 8, IEM_ACC_WRITE);
        rx_lea(&g->b, 8, RX_RDX, hm);        /* host address of the new stack slot */
        emit_rip(g, k, in->len);             /* the return address */
        rx_store(&g->b, 8, rx_mem(RX_RDX, 0), RX_RAX);
        store_gpr(g, 8, CPU_RSP, RX_RSI);
        emit_dirty(g);
        emit_rel_target(g, k);               /* the target again (checked above) */
        exit_to_rel(g, (int64_t)in->off + (int64_t)in->len + (int64_t)in->imm);
        emit_exit_chain(g, k, IEM_JUMPED, true);
        break;
    case P_RET:
        load_gpr(g, 8, RX_RSI, CPU_RSP);
        hm = emit_tlb(g, k, 8, IEM_ACC_READ);
        rx_load(&g->b, 8, RX_RAX, hm);
        emit_canonical(g, k, RX_RCX, TAIL_SLOW);
        rx_alu_ri(&g->b, RX_ADD, 8, RX_RSI, 8);
        store_gpr(g, 8, CPU_RSP, RX_RSI);
        g->exit_ways = REC_RET_WAYS; /* a function returns to several callers */
        emit_exit_chain(g, k, IEM_JUMPED, true);
        break;
    default:
        break;
    }
}

/* ---- The whole block ---------------------------------------------------------------------- */

/* Instruction k completed and the translation leaves after it with IEM_NEXT (RIP after it). */
static void emit_exit_after(struct gen *g, unsigned k, bool fast_ok)
{
    const struct iem_insn *in = &g->blk->insns[k];
    emit_rip(g, k, in->len);
    exit_to_rel(g, (int64_t)in->off + (int64_t)in->len);
    emit_exit_chain(g, k, IEM_NEXT, fast_ok);
}

static void emit_tails(struct gen *g)
{
    for (unsigned i = 0; i < g->ntails && !g->b.overflow; i++) {
        struct tail *st = &g->tails[i];
        for (unsigned f = 0; f < st->nfrom; f++)
            rx_bind32(&g->b, st->from[f]);
        g->fpend = st->fpend;
        g->cvalid = st->cvalid;
        g->cdirty = st->cdirty;
        switch (st->kind) {
        case TAIL_SLOW:
            /* A slow case of inline code: the interpreter runs the instruction whole, the block goes on. */
            emit_call(g, st->k);
            if (st->fpend_after)
                rx_load(&g->b, 8, RX_R13, rx_mem(ST, OFF_RFLAGS));
            cache_load(g, st->cvalid_after);
            if (st->host_flags_after)
                emit_flags_in(g); /* RFLAGS (merged by emit_call) into the host's flags: the last to touch them */
            rx_jmp32(&g->b, g->code, rec_code_exec(g->code, st->resume));
            break;
        case TAIL_BRANCH:
        default:
            /* A slow case of a branch: the interpreter runs it (and leaves, or falls through to the end). */
            emit_call(g, st->k);
            emit_exit_after(g, st->k, false);
            break;
        }
    }
}

uint8_t *rec_gen_block(struct rec_core *rc, const struct iem_block *blk, uint8_t *start, uint8_t *end,
                       struct rec_gen_result *res)
{
    struct gen gs, *g = &gs;
    memset(g, 0, offsetof(struct gen, tails)); /* the tail array fills as it is used */
    g->ntails = 0;
    g->ninline = 0;
    g->ncall = 0;
    rec_buf_init(&g->b, start, end);
    g->code = &rc->code;
    g->blk = blk;
    g->code_size = blk->zmode == ZYDIS_MACHINE_MODE_LONG_64 ? 8
                   : (blk->zmode == ZYDIS_MACHINE_MODE_LEGACY_32 || blk->zmode == ZYDIS_MACHINE_MODE_LONG_COMPAT_32) ? 4 : 2;
    g->rc = rc;

    rec_gen_prologue(&g->b);
    g->body = HERE(g);
    g->fpend = true; /* the prologue, or the exit that chained here, left the flags in r13 */
    plan_block(g);
    plan_cache(g);
    /*
     * A block that branches to its own start loads its whole cache first and loops to just
     * after those loads, the cache staying in registers across rounds.
     */
    g->loop_head = g->body;
    bool self_loop = false;
    for (unsigned k = 0; k < blk->ninsns; k++)
        if ((g->plan[k] == P_JCC || g->plan[k] == P_JMP) &&
            (int64_t)blk->insns[k].off + (int64_t)blk->insns[k].len + (int64_t)blk->insns[k].imm == 0)
            self_loop = true;
    if (self_loop && g->cache_slots) {
        cache_load(g, g->cache_slots);
        g->loop_head = HERE(g);
        /* The branch back keeps what it changed in the registers (emit_exit_chain): anything may be unwritten. */
        g->cdirty = g->cache_slots;
    }
    for (unsigned k = 0; k < blk->ninsns && !g->b.overflow; k++) {
        enum plan p = (enum plan)g->plan[k];
        res->inlined[k] = p != P_CALL;
        g->fpend_insn = g->fpend;
        g->cvalid_insn = g->cvalid;
        g->cdirty_insn = g->cdirty;
        if (p == P_CALL) {
            emit_call(g, k);
            g->cond_in_host_for = 0;
            continue;
        }
        unsigned first = g->ntails;
        g->cond_in_host = false;
        gen_inline(g, k, p);
        g->cond_in_host_for = g->cond_in_host ? k + 1 : 0;
        for (unsigned i = first; i < g->ntails; i++) {
            if (g->tails[i].kind == TAIL_SLOW) {
                g->tails[i].resume = g->b.p;
                g->tails[i].fpend_after = g->fpend;
                g->tails[i].cvalid_after = g->cvalid;
                g->tails[i].host_flags_after = g->cond_in_host;
            }
        }
        g->ninline++;
    }
    /* The block ran to its end (its last instruction did not leave): RIP after it. */
    if (blk->ninsns)
        emit_exit_after(g, blk->ninsns - 1, g->plan[blk->ninsns - 1] != P_CALL);
    emit_tails(g);
    if (g->b.overflow)
        return NULL;
    res->ninline = g->ninline;
    res->ncall = g->ncall;
    return g->b.p;
}
