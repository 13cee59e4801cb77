/* rec-x86.h - the recompiler's host side: an x86-64 instruction emitter and the executable code buffer (W^X). */
#ifndef VIREO_REC_X86_H
#define VIREO_REC_X86_H

/*
 * The recompiler (src/VMM/rec) translates guest blocks into host x86-64 code.  This header
 * is its host layer, independent of the guest:
 *
 * - struct rec_code: one executable code area.  Code is written through a writable
 *   mapping and run through a second, executable mapping of the same memory (a memfd
 *   mapped twice), so no page is ever writable and executable at one address (W^X).
 *   rec_code_exec() turns an address in the writable view into the executable one.
 * - struct rec_buf: an emission cursor inside a writable range.  Every emitter appends
 *   the encoding of one host instruction; running out of room sets buf->overflow and
 *   writes nothing more (the caller checks once per translated block and retries after
 *   flushing the code area), so emitters never fail individually.
 *
 * Encodings follow the Intel SDM vol. 2 (REX prefixes, ModRM/SIB, RIP-relative
 * addressing is not used).  Operand sizes are in bytes: 1, 2, 4 or 8.  For size 1 the
 * registers are the REX byte registers (AL..R15B; SPL, BPL, SIL, DIL, never AH..BH).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Host general-purpose registers, numbered as in the encoding. */
enum rec_reg {
    RX_RAX = 0, RX_RCX, RX_RDX, RX_RBX, RX_RSP, RX_RBP, RX_RSI, RX_RDI,
    RX_R8, RX_R9, RX_R10, RX_R11, RX_R12, RX_R13, RX_R14, RX_R15,
    RX_NONE = 0xff,
};

/* Condition codes in the encoding's order (Jcc = 0x70 + cc). */
enum rec_cc {
    RX_CC_O = 0, RX_CC_NO, RX_CC_B, RX_CC_AE, RX_CC_E, RX_CC_NE, RX_CC_BE, RX_CC_A,
    RX_CC_S, RX_CC_NS, RX_CC_P, RX_CC_NP, RX_CC_L, RX_CC_GE, RX_CC_LE, RX_CC_G,
};

/* The eight classic two-operand ALU operations, in the encoding's order (opcode /digit). */
enum rec_alu { RX_ADD = 0, RX_OR, RX_ADC, RX_SBB, RX_AND, RX_SUB, RX_XOR, RX_CMP };

/* Shifts and rotates in the encoding's order (group 2 /digit). */
enum rec_shift { RX_ROL = 0, RX_ROR, RX_RCL, RX_RCR, RX_SHL, RX_SHR, RX_SAL, RX_SAR };

/* A memory operand: [base + index * scale + disp]; base and index may be RX_NONE (index never RSP). */
struct rec_mem {
    uint8_t base, index, scale; /* scale 1, 2, 4, 8 */
    int32_t disp;
};
static inline struct rec_mem rx_mem(enum rec_reg base, int32_t disp)
{
    struct rec_mem m = { (uint8_t)base, RX_NONE, 1, disp };
    return m;
}
static inline struct rec_mem rx_mem_idx(enum rec_reg base, enum rec_reg index, unsigned scale, int32_t disp)
{
    struct rec_mem m = { (uint8_t)base, (uint8_t)index, (uint8_t)scale, disp };
    return m;
}

/* ---- Code area ------------------------------------------------------------------------ */

struct rec_code {
    uint8_t *rw;        /* writable view */
    uint8_t *rx;        /* executable view of the same bytes */
    size_t size;
    int fd;
};

/* Maps size bytes (rounded up to pages) twice: 0, VERR_INVALID_PARAMETER (size 0), VERR_NO_MEMORY or
 * VERR_NOT_SUPPORTED (no executable memory); on failure the struct is empty and safe to fini. */
int rec_code_init(struct rec_code *code, size_t size);
void rec_code_fini(struct rec_code *code);
/* The executable address of a byte written at p (p inside code->rw). */
static inline void *rec_code_exec(const struct rec_code *code, const void *p)
{
    return code->rx + ((const uint8_t *)p - code->rw);
}

/* ---- Emission cursor ------------------------------------------------------------------- */

struct rec_buf {
    uint8_t *p;         /* next byte (writable view) */
    uint8_t *end;
    bool overflow;      /* an instruction did not fit; nothing was written past end */
};

static inline void rec_buf_init(struct rec_buf *b, uint8_t *start, uint8_t *end)
{
    b->p = start;
    b->end = end;
    b->overflow = false;
}

/* Raw bytes (for the rare encodings without an emitter). */
void rx_bytes(struct rec_buf *b, const void *bytes, size_t n);

/* ---- Moves ------------------------------------------------------------------------------ */

void rx_mov_rr(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src);
/* dst = imm: the shortest encoding (32-bit MOV zero-extends; sign-extended imm32; else imm64). Size 4 or 8. */
void rx_mov_ri(struct rec_buf *b, unsigned size, enum rec_reg dst, uint64_t imm);
void rx_load(struct rec_buf *b, unsigned size, enum rec_reg dst, struct rec_mem m);   /* MOV r, [m] */
void rx_store(struct rec_buf *b, unsigned size, struct rec_mem m, enum rec_reg src);  /* MOV [m], r */
void rx_store_imm(struct rec_buf *b, unsigned size, struct rec_mem m, int32_t imm);   /* MOV [m], imm (sign-extended for 8) */
/* MOVZX/MOVSX from a register or memory of ssize (1 or 2) into dsize (2, 4, 8); MOVSXD for ssize 4, dsize 8. */
void rx_movzx_rr(struct rec_buf *b, unsigned dsize, unsigned ssize, enum rec_reg dst, enum rec_reg src);
void rx_movsx_rr(struct rec_buf *b, unsigned dsize, unsigned ssize, enum rec_reg dst, enum rec_reg src);
void rx_movzx_load(struct rec_buf *b, unsigned dsize, unsigned ssize, enum rec_reg dst, struct rec_mem m);
void rx_movsx_load(struct rec_buf *b, unsigned dsize, unsigned ssize, enum rec_reg dst, struct rec_mem m);
void rx_lea(struct rec_buf *b, unsigned size, enum rec_reg dst, struct rec_mem m);      /* size 4 or 8 */
void rx_xchg_rr(struct rec_buf *b, unsigned size, enum rec_reg a, enum rec_reg c);
void rx_bswap(struct rec_buf *b, unsigned size, enum rec_reg r);                        /* size 4 or 8 */

/* ---- Arithmetic and logic --------------------------------------------------------------- */

void rx_alu_rr(struct rec_buf *b, enum rec_alu op, unsigned size, enum rec_reg dst, enum rec_reg src);
/* The shortest form: imm8 sign-extended where it fits, else imm32 (sign-extended for size 8). */
void rx_alu_ri(struct rec_buf *b, enum rec_alu op, unsigned size, enum rec_reg dst, int32_t imm);
void rx_alu_rm(struct rec_buf *b, enum rec_alu op, unsigned size, enum rec_reg dst, struct rec_mem m); /* r op= [m] */
void rx_alu_mr(struct rec_buf *b, enum rec_alu op, unsigned size, struct rec_mem m, enum rec_reg src); /* [m] op= r */
void rx_alu_mi(struct rec_buf *b, enum rec_alu op, unsigned size, struct rec_mem m, int32_t imm);
void rx_test_rr(struct rec_buf *b, unsigned size, enum rec_reg a, enum rec_reg c);
void rx_test_ri(struct rec_buf *b, unsigned size, enum rec_reg a, int32_t imm);
void rx_test_mi(struct rec_buf *b, unsigned size, struct rec_mem m, int32_t imm);
void rx_test_mr(struct rec_buf *b, unsigned size, struct rec_mem m, enum rec_reg r);
/* Shift/rotate by an immediate (count 1 uses the short form) or by CL. */
void rx_shift_ri(struct rec_buf *b, enum rec_shift op, unsigned size, enum rec_reg r, uint8_t count);
void rx_shift_rcl(struct rec_buf *b, enum rec_shift op, unsigned size, enum rec_reg r);
/* SHLD/SHRD dst, src, imm8 or CL (size 2, 4, 8). */
void rx_shld_ri(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src, uint8_t count);
void rx_shrd_ri(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src, uint8_t count);
void rx_shld_rcl(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src);
void rx_shrd_rcl(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src);
void rx_inc(struct rec_buf *b, unsigned size, enum rec_reg r);
void rx_dec(struct rec_buf *b, unsigned size, enum rec_reg r);
void rx_neg(struct rec_buf *b, unsigned size, enum rec_reg r);
void rx_not(struct rec_buf *b, unsigned size, enum rec_reg r);
void rx_imul_rr(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src);          /* size 2, 4, 8 */
void rx_imul_rri(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src, int32_t imm);
/* One-operand MUL/IMUL/DIV/IDIV of RDX:RAX by r (group 3 /4../7). */
void rx_mul(struct rec_buf *b, unsigned size, enum rec_reg r);
void rx_imul1(struct rec_buf *b, unsigned size, enum rec_reg r);
void rx_div(struct rec_buf *b, unsigned size, enum rec_reg r);
void rx_idiv(struct rec_buf *b, unsigned size, enum rec_reg r);
/* BT/BTS/BTR/BTC r, imm8 and r, r (size 2, 4, 8); BSF/BSR/POPCNT/LZCNT/TZCNT dst, src. */
void rx_bt_ri(struct rec_buf *b, unsigned op, unsigned size, enum rec_reg r, uint8_t bit); /* op 4 BT, 5 BTS, 6 BTR, 7 BTC */
void rx_bt_mi(struct rec_buf *b, unsigned op, unsigned size, struct rec_mem m, uint8_t bit);
void rx_bt_rr(struct rec_buf *b, unsigned op, unsigned size, enum rec_reg r, enum rec_reg bit);
void rx_bsf(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src);
void rx_bsr(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src);

/* ---- Flags and conditions --------------------------------------------------------------- */

void rx_setcc(struct rec_buf *b, enum rec_cc cc, enum rec_reg r8);
void rx_cmov(struct rec_buf *b, enum rec_cc cc, unsigned size, enum rec_reg dst, enum rec_reg src); /* size 2, 4, 8 */
void rx_lahf(struct rec_buf *b);
void rx_sahf(struct rec_buf *b);
void rx_pushfq(struct rec_buf *b);
void rx_popfq(struct rec_buf *b);
void rx_cmc(struct rec_buf *b);
void rx_clc(struct rec_buf *b);
void rx_stc(struct rec_buf *b);

/* ---- Control flow ------------------------------------------------------------------------ */

/*
 * Branches with a 32-bit displacement return the address of that displacement (writable
 * view) for rx_patch_rel32, or NULL on overflow.  Targets are executable-view addresses
 * when the buffer is a code area (the caller converts with rec_code_exec); the
 * displacement is relative to the executable address of the next instruction, so the
 * emitters take the code area (NULL for a plain buffer whose code runs where it is written).
 */
uint8_t *rx_jcc32(struct rec_buf *b, const struct rec_code *code, enum rec_cc cc, const void *target);
uint8_t *rx_jmp32(struct rec_buf *b, const struct rec_code *code, const void *target);
/* A call to an absolute host address: CALL rel32 when in reach, else MOV RAX, imm64; CALL RAX (RAX clobbered). */
void rx_call(struct rec_buf *b, const struct rec_code *code, const void *target);
void rx_jmp_reg(struct rec_buf *b, enum rec_reg r);
void rx_call_reg(struct rec_buf *b, enum rec_reg r);
void rx_jmp_mem(struct rec_buf *b, struct rec_mem m);
void rx_ret(struct rec_buf *b);
void rx_push(struct rec_buf *b, enum rec_reg r);
void rx_pop(struct rec_buf *b, enum rec_reg r);
/* Points the rel32 at `at` (writable view, as returned above) to target (executable view). */
void rx_patch_rel32(const struct rec_code *code, uint8_t *at, const void *target);
/* Short forward branch to a label in the same block: emit, then bind once the target is known. */
uint8_t *rx_jcc8(struct rec_buf *b, enum rec_cc cc);
uint8_t *rx_jmp8(struct rec_buf *b);
void rx_bind8(struct rec_buf *b, uint8_t *at);      /* the rel8 at `at` now reaches b->p (must be within 127 bytes) */
void rx_bind32(struct rec_buf *b, uint8_t *at);     /* the rel32 at `at` now reaches b->p */

#endif
