/* rec-x86.c - the recompiler's x86-64 instruction emitter: host instructions encoded into a rec_buf. */
#include <stdint.h>
#include <string.h>

#include "vireo/rt.h"

#include "rec-x86.h"

/*
 * Every emitter assembles its instruction into a small scratch encoding (struct rx_enc)
 * and rx_commit() copies it into the buffer only when all of it fits.  So the room check
 * is exact (an instruction that just fits is written), a buffer never holds part of an
 * instruction, and once overflow is set every later emitter writes nothing.
 *
 * A request that has no encoding is a caller bug (index RSP, a scale other than 1/2/4/8,
 * a register above R15 or RX_NONE where a register is needed, an operand size the
 * instruction lacks, a displacement out of reach).  Such an emitter marks its encoding
 * bad; the commit then sets overflow and writes nothing, so the broken block is never
 * run.  Retrying after a flush fails the same way, which makes the bug visible.
 *
 * References are to the Intel SDM vol. 2: 2.1 (instruction format, ModRM/SIB tables
 * 2-2 and 2-3), 2.2.1 (REX prefixes, table 2-4 and the 64-bit special cases) and the
 * opcode of each instruction in its reference page (chapters 3 and 4).
 */

/* SDM vol. 2, 2.3.11: no instruction is longer than 15 bytes. */
#define RX_MAX_INSN 15

/* Operand-size masks: bit n set when size n bytes is allowed. */
#define RX_SZ_1248 ((1u << 1) | (1u << 2) | (1u << 4) | (1u << 8))
#define RX_SZ_248  ((1u << 2) | (1u << 4) | (1u << 8))
#define RX_SZ_48   ((1u << 4) | (1u << 8))

/* enc_modrm flags: which ModRM fields name byte registers (SPL..DIL need a REX prefix). */
#define RX_F_BYTE_REG 1u
#define RX_F_BYTE_RM  2u

struct rx_enc {
    uint8_t bytes[RX_MAX_INSN];
    unsigned len;
    bool bad;
};

/* The r/m side of a ModRM instruction: a register or a memory operand. */
struct rx_rm {
    bool is_mem;
    uint8_t reg;
    struct rec_mem mem;
};

static struct rx_rm rm_reg(enum rec_reg r)
{
    struct rx_rm rm = { .is_mem = false, .reg = (uint8_t)r };
    return rm;
}

static struct rx_rm rm_mem(struct rec_mem m)
{
    struct rx_rm rm = { .is_mem = true, .reg = RX_NONE, .mem = m };
    return rm;
}

/* ---- Byte-level helpers ----------------------------------------------------------------- */

static void enc_u8(struct rx_enc *e, unsigned v)
{
    if (e->len < RX_MAX_INSN)
        e->bytes[e->len++] = (uint8_t)v;
    else
        e->bad = true;
}

static void enc_u16(struct rx_enc *e, uint32_t v)
{
    enc_u8(e, v & 0xff);
    enc_u8(e, (v >> 8) & 0xff);
}

static void enc_u32(struct rx_enc *e, uint32_t v)
{
    enc_u16(e, v & 0xffff);
    enc_u16(e, v >> 16);
}

static void enc_u64(struct rx_enc *e, uint64_t v)
{
    enc_u32(e, (uint32_t)v);
    enc_u32(e, (uint32_t)(v >> 32));
}

/* One- or two-byte opcodes: 0x0fXX is the two-byte map (SDM vol. 2, 2.1.2). */
static void enc_opcode(struct rx_enc *e, unsigned opcode)
{
    if (opcode > 0xff)
        enc_u8(e, opcode >> 8);
    enc_u8(e, opcode & 0xff);
}

static void enc_check_size(struct rx_enc *e, unsigned size, unsigned allowed)
{
    if (size > 8 || !(allowed & (1u << size)))
        e->bad = true;
}

static void enc_check_reg(struct rx_enc *e, unsigned r)
{
    if (r > RX_R15)
        e->bad = true;
}

static bool fits_i8(int64_t v)
{
    return v >= INT8_MIN && v <= INT8_MAX;
}

static bool fits_i32(int64_t v)
{
    return v >= INT32_MIN && v <= INT32_MAX;
}

/*
 * Legacy operand-size prefix and REX (SDM vol. 2, 2.2.1): 0x66 selects 16-bit operands;
 * REX.W (bit 3) 64-bit operands; R, X, B (bits 2..0) extend ModRM.reg, SIB.index and
 * ModRM.rm / SIB.base / the opcode register.  `force` emits a REX even without bits, which
 * makes byte registers 4..7 mean SPL..DIL instead of AH..BH (2.2.1.2, table 3-1 note).
 * The REX byte must come right before the opcode, after the legacy prefixes.
 */
static void enc_prefixes(struct rx_enc *e, unsigned opsize, unsigned rex_bits, bool force)
{
    if (opsize == 2)
        enc_u8(e, 0x66);
    if (opsize == 8)
        rex_bits |= 8;
    if (rex_bits || force)
        enc_u8(e, 0x40 | rex_bits);
}

static unsigned scale_bits(struct rx_enc *e, unsigned scale)
{
    switch (scale) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    default:
        e->bad = true;
        return 0;
    }
}

static unsigned modrm(unsigned mod, unsigned reg, unsigned rm)
{
    return (mod << 6) | ((reg & 7) << 3) | (rm & 7);
}

/*
 * ModRM, SIB and displacement for a memory operand (SDM vol. 2, tables 2-2 and 2-3, and
 * 2.2.1.6 for 64-bit mode):
 * - r/m 100 means "a SIB byte follows", so a base of RSP or R12 always needs a SIB
 *   (with index 100 = none);
 * - mod 00 with r/m 101 is RIP-relative in 64-bit mode, and mod 00 with SIB base 101 has
 *   no base, so a base of RBP or R13 with no displacement uses mod 01 with disp8 0;
 * - no base at all is mod 00, SIB base 101 and a disp32;
 * - SIB index 100 without REX.X means "no index": RSP can never be an index (R12 can).
 */
static void enc_mem(struct rx_enc *e, unsigned reg, struct rec_mem m)
{
    bool has_index = m.index != RX_NONE;
    unsigned ss = has_index ? scale_bits(e, m.scale) : 0;
    unsigned index = has_index ? (m.index & 7u) : 4u;
    unsigned mod;

    if (has_index && (m.index == RX_RSP || m.index > RX_R15))
        e->bad = true;
    if (m.base == RX_NONE) {
        enc_u8(e, modrm(0, reg, 4));
        enc_u8(e, modrm(ss, index, 5));
        enc_u32(e, (uint32_t)m.disp);
        return;
    }
    enc_check_reg(e, m.base);
    if (m.disp == 0 && (m.base & 7) != RX_RBP)
        mod = 0;
    else if (fits_i8(m.disp))
        mod = 1;
    else
        mod = 2;
    if (!has_index && (m.base & 7) != RX_RSP) {
        enc_u8(e, modrm(mod, reg, m.base));
    } else {
        enc_u8(e, modrm(mod, reg, 4));
        enc_u8(e, modrm(ss, index, m.base));
    }
    if (mod == 1)
        enc_u8(e, (uint8_t)m.disp);
    else if (mod == 2)
        enc_u32(e, (uint32_t)m.disp);
}

/*
 * [prefixes] opcode ModRM [SIB] [disp]: reg is a register number or an opcode extension
 * (/digit, 0..7); the immediate, if any, is appended by the caller.
 */
static void enc_modrm(struct rx_enc *e, unsigned opsize, unsigned flags, unsigned opcode,
                      unsigned reg, struct rx_rm rm)
{
    unsigned rex = 0;
    bool force = false;

    enc_check_reg(e, reg);
    if (reg & 8)
        rex |= 4;
    if (flags & RX_F_BYTE_REG)
        force |= reg >= 4 && reg <= 7;
    if (rm.is_mem) {
        if (rm.mem.base != RX_NONE && (rm.mem.base & 8))
            rex |= 1;
        if (rm.mem.index != RX_NONE && (rm.mem.index & 8))
            rex |= 2;
    } else {
        enc_check_reg(e, rm.reg);
        if (rm.reg & 8)
            rex |= 1;
        if (flags & RX_F_BYTE_RM)
            force |= rm.reg >= 4 && rm.reg <= 7;
    }
    enc_prefixes(e, opsize, rex, force);
    enc_opcode(e, opcode);
    if (rm.is_mem)
        enc_mem(e, reg, rm.mem);
    else
        enc_u8(e, modrm(3, reg, rm.reg));
}

/* Opcode with the register in its low three bits (B8+r, 50+r, 0F C8+r), REX.B for R8..R15. */
static void enc_plus_reg(struct rx_enc *e, unsigned opsize, unsigned opcode, unsigned r)
{
    enc_check_reg(e, r);
    enc_prefixes(e, opsize, (r & 8) ? 1 : 0, false);
    enc_opcode(e, opcode + (r & 7));
}

/* An immediate of the operand size; 8-byte operands take a sign-extended imm32. */
static void enc_imm(struct rx_enc *e, unsigned size, int32_t imm)
{
    if (size == 1)
        enc_u8(e, (uint8_t)imm);
    else if (size == 2)
        enc_u16(e, (uint16_t)imm);
    else
        enc_u32(e, (uint32_t)imm);
}

/* Copies the encoding into the buffer when all of it fits; its start, or NULL. */
static uint8_t *rx_commit(struct rec_buf *b, const struct rx_enc *e)
{
    uint8_t *start = b->p;

    if (b->overflow)
        return NULL;
    if (e->bad || b->p > b->end || (size_t)(b->end - b->p) < e->len) {
        b->overflow = true;
        return NULL;
    }
    memcpy(b->p, e->bytes, e->len);
    b->p += e->len;
    return start;
}

/* The common shape: one ModRM instruction of an allowed size, no immediate. */
static void emit_modrm(struct rec_buf *b, unsigned size, unsigned allowed, unsigned flags,
                       unsigned opcode, unsigned reg, struct rx_rm rm)
{
    struct rx_enc e = { .len = 0 };

    enc_check_size(&e, size, allowed);
    enc_modrm(&e, size, flags, opcode, reg, rm);
    rx_commit(b, &e);
}

/* Byte flags for an instruction whose reg and/or r/m registers have the operand size. */
static unsigned byte_flags(unsigned size, unsigned which)
{
    return size == 1 ? which : 0;
}

void rx_bytes(struct rec_buf *b, const void *bytes, size_t n)
{
    if (b->overflow)
        return;
    if (b->p > b->end || (size_t)(b->end - b->p) < n) {
        b->overflow = true;
        return;
    }
    memcpy(b->p, bytes, n);
    b->p += n;
}

/* ---- Moves ------------------------------------------------------------------------------ */

/* MOV r/m, r: 88 /r (byte), 89 /r. */
void rx_mov_rr(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src)
{
    emit_modrm(b, size, RX_SZ_1248, byte_flags(size, RX_F_BYTE_REG | RX_F_BYTE_RM),
               size == 1 ? 0x88 : 0x89, src, rm_reg(dst));
}

/*
 * MOV r32, imm32 (B8+rd id) zero-extends into the 64-bit register (SDM vol. 1, 3.4.1.1),
 * so it serves any 8-byte value below 4 GiB; REX.W C7 /0 id sign-extends an imm32;
 * only the rest needs REX.W B8+rd io.
 */
void rx_mov_ri(struct rec_buf *b, unsigned size, enum rec_reg dst, uint64_t imm)
{
    struct rx_enc e = { .len = 0 };

    enc_check_size(&e, size, RX_SZ_48);
    if (size == 4 || imm <= UINT32_MAX) {
        enc_plus_reg(&e, 4, 0xb8, dst);
        enc_u32(&e, (uint32_t)imm);
    } else if (fits_i32((int64_t)imm)) {
        enc_modrm(&e, 8, 0, 0xc7, 0, rm_reg(dst));
        enc_u32(&e, (uint32_t)imm);
    } else {
        enc_plus_reg(&e, 8, 0xb8, dst);
        enc_u64(&e, imm);
    }
    rx_commit(b, &e);
}

/* MOV r, r/m: 8A /r (byte), 8B /r. */
void rx_load(struct rec_buf *b, unsigned size, enum rec_reg dst, struct rec_mem m)
{
    emit_modrm(b, size, RX_SZ_1248, byte_flags(size, RX_F_BYTE_REG), size == 1 ? 0x8a : 0x8b,
               dst, rm_mem(m));
}

void rx_store(struct rec_buf *b, unsigned size, struct rec_mem m, enum rec_reg src)
{
    emit_modrm(b, size, RX_SZ_1248, byte_flags(size, RX_F_BYTE_REG), size == 1 ? 0x88 : 0x89,
               src, rm_mem(m));
}

/* MOV r/m, imm: C6 /0 ib, C7 /0 iw/id (REX.W: imm32 sign-extended). */
void rx_store_imm(struct rec_buf *b, unsigned size, struct rec_mem m, int32_t imm)
{
    struct rx_enc e = { .len = 0 };

    enc_check_size(&e, size, RX_SZ_1248);
    enc_modrm(&e, size, 0, size == 1 ? 0xc6 : 0xc7, 0, rm_mem(m));
    enc_imm(&e, size, imm);
    rx_commit(b, &e);
}

/*
 * MOVZX 0F B6/B7 /r, MOVSX 0F BE/BF /r, MOVSXD REX.W 63 /r.  A zero-extension from 4 to
 * 8 bytes is a plain 32-bit MOV, which clears the upper half (SDM vol. 1, 3.4.1.1).
 */
static void emit_extend(struct rec_buf *b, bool sign, unsigned dsize, unsigned ssize,
                        enum rec_reg dst, struct rx_rm src)
{
    struct rx_enc e = { .len = 0 };
    unsigned flags = ssize == 1 ? RX_F_BYTE_RM : 0;

    enc_check_size(&e, dsize, RX_SZ_248);
    if (ssize >= dsize)
        e.bad = true;
    if (ssize == 4 && dsize == 8)
        enc_modrm(&e, sign ? 8 : 4, 0, sign ? 0x63 : 0x8b, dst, src);
    else if (ssize == 1 || ssize == 2)
        enc_modrm(&e, dsize, flags, (sign ? 0x0fbe : 0x0fb6) + (ssize == 2), dst, src);
    else
        e.bad = true;
    rx_commit(b, &e);
}

void rx_movzx_rr(struct rec_buf *b, unsigned dsize, unsigned ssize, enum rec_reg dst, enum rec_reg src)
{
    emit_extend(b, false, dsize, ssize, dst, rm_reg(src));
}

void rx_movsx_rr(struct rec_buf *b, unsigned dsize, unsigned ssize, enum rec_reg dst, enum rec_reg src)
{
    emit_extend(b, true, dsize, ssize, dst, rm_reg(src));
}

void rx_movzx_load(struct rec_buf *b, unsigned dsize, unsigned ssize, enum rec_reg dst, struct rec_mem m)
{
    emit_extend(b, false, dsize, ssize, dst, rm_mem(m));
}

void rx_movsx_load(struct rec_buf *b, unsigned dsize, unsigned ssize, enum rec_reg dst, struct rec_mem m)
{
    emit_extend(b, true, dsize, ssize, dst, rm_mem(m));
}

/* LEA r, m: 8D /r (16-bit results are legal too). */
void rx_lea(struct rec_buf *b, unsigned size, enum rec_reg dst, struct rec_mem m)
{
    emit_modrm(b, size, RX_SZ_248, 0, 0x8d, dst, rm_mem(m));
}

/*
 * XCHG r/m, r: 86 /r, 87 /r.  The short 90+r form is avoided: 90 is NOP in 64-bit mode,
 * so XCHG EAX, EAX there would not clear the upper half of RAX (SDM XCHG, NOP).
 */
void rx_xchg_rr(struct rec_buf *b, unsigned size, enum rec_reg a, enum rec_reg c)
{
    emit_modrm(b, size, RX_SZ_1248, byte_flags(size, RX_F_BYTE_REG | RX_F_BYTE_RM),
               size == 1 ? 0x86 : 0x87, c, rm_reg(a));
}

/* BSWAP: 0F C8+rd (16-bit operands are undefined, SDM BSWAP). */
void rx_bswap(struct rec_buf *b, unsigned size, enum rec_reg r)
{
    struct rx_enc e = { .len = 0 };

    enc_check_size(&e, size, RX_SZ_48);
    enc_plus_reg(&e, size, 0x0fc8, r);
    rx_commit(b, &e);
}

/* ---- Arithmetic and logic --------------------------------------------------------------- */

/*
 * ALU op with an immediate: 80 /op ib for bytes; 83 /op ib (sign-extended) when the value
 * fits; else 81 /op iw/id, or the accumulator form op*8+5 (one byte shorter) for RAX.  The
 * byte accumulator form op*8+4 ib likewise saves a byte.
 */
static void enc_alu_imm(struct rx_enc *e, enum rec_alu op, unsigned size, struct rx_rm rm, int32_t imm)
{
    bool acc = !rm.is_mem && rm.reg == RX_RAX;
    int32_t v = size == 2 ? (int16_t)imm : imm;

    if ((unsigned)op > RX_CMP)
        e->bad = true;
    enc_check_size(e, size, RX_SZ_1248);
    if (size == 1) {
        if (acc) {
            enc_u8(e, op * 8 + 4);
        } else {
            enc_modrm(e, 1, RX_F_BYTE_RM, 0x80, op, rm);
        }
        enc_u8(e, (uint8_t)imm);
    } else if (fits_i8(v)) {
        enc_modrm(e, size, 0, 0x83, op, rm);
        enc_u8(e, (uint8_t)v);
    } else {
        if (acc) {
            enc_prefixes(e, size, 0, false);
            enc_u8(e, op * 8 + 5);
        } else {
            enc_modrm(e, size, 0, 0x81, op, rm);
        }
        enc_imm(e, size, v);
    }
}

/* op r/m, r: op*8 + 0 (byte) or + 1. */
void rx_alu_rr(struct rec_buf *b, enum rec_alu op, unsigned size, enum rec_reg dst, enum rec_reg src)
{
    struct rx_enc e = { .len = 0 };

    if ((unsigned)op > RX_CMP)
        e.bad = true;
    enc_check_size(&e, size, RX_SZ_1248);
    enc_modrm(&e, size, byte_flags(size, RX_F_BYTE_REG | RX_F_BYTE_RM), op * 8 + (size != 1), src,
              rm_reg(dst));
    rx_commit(b, &e);
}

void rx_alu_ri(struct rec_buf *b, enum rec_alu op, unsigned size, enum rec_reg dst, int32_t imm)
{
    struct rx_enc e = { .len = 0 };

    enc_alu_imm(&e, op, size, rm_reg(dst), imm);
    rx_commit(b, &e);
}

/* op r, r/m: op*8 + 2 (byte) or + 3. */
void rx_alu_rm(struct rec_buf *b, enum rec_alu op, unsigned size, enum rec_reg dst, struct rec_mem m)
{
    struct rx_enc e = { .len = 0 };

    if ((unsigned)op > RX_CMP)
        e.bad = true;
    enc_check_size(&e, size, RX_SZ_1248);
    enc_modrm(&e, size, byte_flags(size, RX_F_BYTE_REG), op * 8 + 2 + (size != 1), dst, rm_mem(m));
    rx_commit(b, &e);
}

void rx_alu_mr(struct rec_buf *b, enum rec_alu op, unsigned size, struct rec_mem m, enum rec_reg src)
{
    struct rx_enc e = { .len = 0 };

    if ((unsigned)op > RX_CMP)
        e.bad = true;
    enc_check_size(&e, size, RX_SZ_1248);
    enc_modrm(&e, size, byte_flags(size, RX_F_BYTE_REG), op * 8 + (size != 1), src, rm_mem(m));
    rx_commit(b, &e);
}

void rx_alu_mi(struct rec_buf *b, enum rec_alu op, unsigned size, struct rec_mem m, int32_t imm)
{
    struct rx_enc e = { .len = 0 };

    enc_alu_imm(&e, op, size, rm_mem(m), imm);
    rx_commit(b, &e);
}

/* TEST r/m, r: 84 /r, 85 /r. */
void rx_test_rr(struct rec_buf *b, unsigned size, enum rec_reg a, enum rec_reg c)
{
    emit_modrm(b, size, RX_SZ_1248, byte_flags(size, RX_F_BYTE_REG | RX_F_BYTE_RM),
               size == 1 ? 0x84 : 0x85, c, rm_reg(a));
}

void rx_test_mr(struct rec_buf *b, unsigned size, struct rec_mem m, enum rec_reg r)
{
    emit_modrm(b, size, RX_SZ_1248, byte_flags(size, RX_F_BYTE_REG), size == 1 ? 0x84 : 0x85, r, rm_mem(m));
}

/*
 * TEST r/m, imm: F6 /0 ib, F7 /0 iw/id, or A8 ib / A9 iw/id for the accumulator.  TEST
 * has no sign-extended imm8 form, and a narrower TEST would change SF, so the operand
 * size is kept.
 */
static void emit_test_imm(struct rec_buf *b, unsigned size, struct rx_rm rm, int32_t imm)
{
    struct rx_enc e = { .len = 0 };

    enc_check_size(&e, size, RX_SZ_1248);
    if (!rm.is_mem && rm.reg == RX_RAX) {
        enc_prefixes(&e, size, 0, false);
        enc_u8(&e, size == 1 ? 0xa8 : 0xa9);
    } else {
        enc_modrm(&e, size, byte_flags(size, RX_F_BYTE_RM), size == 1 ? 0xf6 : 0xf7, 0, rm);
    }
    enc_imm(&e, size, imm);
    rx_commit(b, &e);
}

void rx_test_ri(struct rec_buf *b, unsigned size, enum rec_reg a, int32_t imm)
{
    emit_test_imm(b, size, rm_reg(a), imm);
}

void rx_test_mi(struct rec_buf *b, unsigned size, struct rec_mem m, int32_t imm)
{
    emit_test_imm(b, size, rm_mem(m), imm);
}

/*
 * Group 2 digit of a shift: the SDM documents SAL as /4, the same instruction as SHL, so
 * RX_SAL is encoded as /4 rather than the undocumented /6.
 */
static unsigned shift_digit(struct rx_enc *e, enum rec_shift op)
{
    if ((unsigned)op > RX_SAR)
        e->bad = true;
    return op == RX_SAL ? RX_SHL : (unsigned)op & 7;
}

/* Shift by imm8: D0/D1 /op for a count of 1, else C0/C1 /op ib. */
void rx_shift_ri(struct rec_buf *b, enum rec_shift op, unsigned size, enum rec_reg r, uint8_t count)
{
    struct rx_enc e = { .len = 0 };
    unsigned digit = shift_digit(&e, op);
    unsigned flags = byte_flags(size, RX_F_BYTE_RM);

    enc_check_size(&e, size, RX_SZ_1248);
    if (count == 1) {
        enc_modrm(&e, size, flags, size == 1 ? 0xd0 : 0xd1, digit, rm_reg(r));
    } else {
        enc_modrm(&e, size, flags, size == 1 ? 0xc0 : 0xc1, digit, rm_reg(r));
        enc_u8(&e, count);
    }
    rx_commit(b, &e);
}

/* Shift by CL: D2/D3 /op. */
void rx_shift_rcl(struct rec_buf *b, enum rec_shift op, unsigned size, enum rec_reg r)
{
    struct rx_enc e = { .len = 0 };
    unsigned digit = shift_digit(&e, op);

    enc_check_size(&e, size, RX_SZ_1248);
    enc_modrm(&e, size, byte_flags(size, RX_F_BYTE_RM), size == 1 ? 0xd2 : 0xd3, digit, rm_reg(r));
    rx_commit(b, &e);
}

/* SHLD/SHRD r/m, r, imm8: 0F A4 / 0F AC; by CL: 0F A5 / 0F AD. */
static void emit_double_shift(struct rec_buf *b, unsigned opcode, bool has_imm, unsigned size,
                              enum rec_reg dst, enum rec_reg src, uint8_t count)
{
    struct rx_enc e = { .len = 0 };

    enc_check_size(&e, size, RX_SZ_248);
    enc_modrm(&e, size, 0, opcode, src, rm_reg(dst));
    if (has_imm)
        enc_u8(&e, count);
    rx_commit(b, &e);
}

void rx_shld_ri(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src, uint8_t count)
{
    emit_double_shift(b, 0x0fa4, true, size, dst, src, count);
}

void rx_shrd_ri(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src, uint8_t count)
{
    emit_double_shift(b, 0x0fac, true, size, dst, src, count);
}

void rx_shld_rcl(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src)
{
    emit_double_shift(b, 0x0fa5, false, size, dst, src, 0);
}

void rx_shrd_rcl(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src)
{
    emit_double_shift(b, 0x0fad, false, size, dst, src, 0);
}

/*
 * Unary group 3 (F6/F7: /2 NOT, /3 NEG, /4 MUL, /5 IMUL, /6 DIV, /7 IDIV) and group 4/5
 * (FE/FF: /0 INC, /1 DEC; 40+r is REX in 64-bit mode).
 */
static void emit_unary(struct rec_buf *b, unsigned opcode8, unsigned digit, unsigned size, enum rec_reg r)
{
    emit_modrm(b, size, RX_SZ_1248, byte_flags(size, RX_F_BYTE_RM), opcode8 + (size != 1), digit,
               rm_reg(r));
}

void rx_inc(struct rec_buf *b, unsigned size, enum rec_reg r)
{
    emit_unary(b, 0xfe, 0, size, r);
}

void rx_dec(struct rec_buf *b, unsigned size, enum rec_reg r)
{
    emit_unary(b, 0xfe, 1, size, r);
}

void rx_not(struct rec_buf *b, unsigned size, enum rec_reg r)
{
    emit_unary(b, 0xf6, 2, size, r);
}

void rx_neg(struct rec_buf *b, unsigned size, enum rec_reg r)
{
    emit_unary(b, 0xf6, 3, size, r);
}

void rx_mul(struct rec_buf *b, unsigned size, enum rec_reg r)
{
    emit_unary(b, 0xf6, 4, size, r);
}

void rx_imul1(struct rec_buf *b, unsigned size, enum rec_reg r)
{
    emit_unary(b, 0xf6, 5, size, r);
}

void rx_div(struct rec_buf *b, unsigned size, enum rec_reg r)
{
    emit_unary(b, 0xf6, 6, size, r);
}

void rx_idiv(struct rec_buf *b, unsigned size, enum rec_reg r)
{
    emit_unary(b, 0xf6, 7, size, r);
}

/* IMUL r, r/m: 0F AF /r. */
void rx_imul_rr(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src)
{
    emit_modrm(b, size, RX_SZ_248, 0, 0x0faf, dst, rm_reg(src));
}

/* IMUL r, r/m, imm: 6B /r ib when the value fits a sign-extended byte, else 69 /r iw/id. */
void rx_imul_rri(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src, int32_t imm)
{
    struct rx_enc e = { .len = 0 };
    int32_t v = size == 2 ? (int16_t)imm : imm;

    enc_check_size(&e, size, RX_SZ_248);
    if (fits_i8(v)) {
        enc_modrm(&e, size, 0, 0x6b, dst, rm_reg(src));
        enc_u8(&e, (uint8_t)v);
    } else {
        enc_modrm(&e, size, 0, 0x69, dst, rm_reg(src));
        enc_imm(&e, size, v);
    }
    rx_commit(b, &e);
}

/* BT/BTS/BTR/BTC r/m, imm8: 0F BA /op ib (op 4..7). */
static void emit_bt_imm(struct rec_buf *b, unsigned op, unsigned size, struct rx_rm rm, uint8_t bit)
{
    struct rx_enc e = { .len = 0 };

    if (op < 4 || op > 7)
        e.bad = true;
    enc_check_size(&e, size, RX_SZ_248);
    enc_modrm(&e, size, 0, 0x0fba, op & 7, rm);
    enc_u8(&e, bit);
    rx_commit(b, &e);
}

void rx_bt_ri(struct rec_buf *b, unsigned op, unsigned size, enum rec_reg r, uint8_t bit)
{
    emit_bt_imm(b, op, size, rm_reg(r), bit);
}

void rx_bt_mi(struct rec_buf *b, unsigned op, unsigned size, struct rec_mem m, uint8_t bit)
{
    emit_bt_imm(b, op, size, rm_mem(m), bit);
}

/* BT 0F A3, BTS 0F AB, BTR 0F B3, BTC 0F BB, all r/m, r: the opcode steps by 8 with op. */
void rx_bt_rr(struct rec_buf *b, unsigned op, unsigned size, enum rec_reg r, enum rec_reg bit)
{
    struct rx_enc e = { .len = 0 };

    if (op < 4 || op > 7)
        e.bad = true;
    enc_check_size(&e, size, RX_SZ_248);
    enc_modrm(&e, size, 0, 0x0fa3 + ((op & 3) << 3), bit, rm_reg(r));
    rx_commit(b, &e);
}

/* BSF r, r/m: 0F BC /r; BSR: 0F BD /r. */
void rx_bsf(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src)
{
    emit_modrm(b, size, RX_SZ_248, 0, 0x0fbc, dst, rm_reg(src));
}

void rx_bsr(struct rec_buf *b, unsigned size, enum rec_reg dst, enum rec_reg src)
{
    emit_modrm(b, size, RX_SZ_248, 0, 0x0fbd, dst, rm_reg(src));
}

/* ---- Flags and conditions --------------------------------------------------------------- */

static void enc_check_cc(struct rx_enc *e, enum rec_cc cc)
{
    if ((unsigned)cc > RX_CC_G)
        e->bad = true;
}

/* SETcc r/m8: 0F 90+cc (the reg field is ignored; 0 is used). */
void rx_setcc(struct rec_buf *b, enum rec_cc cc, enum rec_reg r8)
{
    struct rx_enc e = { .len = 0 };

    enc_check_cc(&e, cc);
    enc_modrm(&e, 1, RX_F_BYTE_RM, 0x0f90 + (cc & 15), 0, rm_reg(r8));
    rx_commit(b, &e);
}

/* CMOVcc r, r/m: 0F 40+cc /r. */
void rx_cmov(struct rec_buf *b, enum rec_cc cc, unsigned size, enum rec_reg dst, enum rec_reg src)
{
    struct rx_enc e = { .len = 0 };

    enc_check_cc(&e, cc);
    enc_check_size(&e, size, RX_SZ_248);
    enc_modrm(&e, size, 0, 0x0f40 + (cc & 15), dst, rm_reg(src));
    rx_commit(b, &e);
}

static void emit_byte(struct rec_buf *b, unsigned opcode)
{
    struct rx_enc e = { .len = 0 };

    enc_u8(&e, opcode);
    rx_commit(b, &e);
}

void rx_lahf(struct rec_buf *b)
{
    emit_byte(b, 0x9f);
}

void rx_sahf(struct rec_buf *b)
{
    emit_byte(b, 0x9e);
}

/* PUSHF/POPF default to 64-bit operands in 64-bit mode (SDM PUSHF). */
void rx_pushfq(struct rec_buf *b)
{
    emit_byte(b, 0x9c);
}

void rx_popfq(struct rec_buf *b)
{
    emit_byte(b, 0x9d);
}

void rx_cmc(struct rec_buf *b)
{
    emit_byte(b, 0xf5);
}

void rx_clc(struct rec_buf *b)
{
    emit_byte(b, 0xf8);
}

void rx_stc(struct rec_buf *b)
{
    emit_byte(b, 0xf9);
}

/* ---- Control flow ------------------------------------------------------------------------ */

/* Where a byte written at p runs: through the code area's executable view, or in place. */
static uintptr_t exec_addr(const struct rec_code *code, const uint8_t *p)
{
    return code ? (uintptr_t)rec_code_exec(code, p) : (uintptr_t)p;
}

/* The rel32 from the end of an instruction at `next` to target; false when out of reach. */
static bool rel32_to(uintptr_t next, const void *target, int32_t *rel)
{
    int64_t d = (int64_t)((uintptr_t)target - next);

    if (!fits_i32(d))
        return false;
    *rel = (int32_t)d;
    return true;
}

/* An instruction ending in a rel32 to target: its displacement's address, or NULL. */
static uint8_t *emit_rel32(struct rec_buf *b, const struct rec_code *code, struct rx_enc *e,
                           const void *target)
{
    int32_t rel = 0;
    uint8_t *at;

    if (!rel32_to(exec_addr(code, b->p) + e->len + 4, target, &rel))
        e->bad = true;
    enc_u32(e, (uint32_t)rel);
    at = rx_commit(b, e);
    return at ? at + e->len - 4 : NULL;
}

/* Jcc rel32: 0F 80+cc cd. */
uint8_t *rx_jcc32(struct rec_buf *b, const struct rec_code *code, enum rec_cc cc, const void *target)
{
    struct rx_enc e = { .len = 0 };

    enc_check_cc(&e, cc);
    enc_opcode(&e, 0x0f80 + (cc & 15));
    return emit_rel32(b, code, &e, target);
}

/* JMP rel32: E9 cd. */
uint8_t *rx_jmp32(struct rec_buf *b, const struct rec_code *code, const void *target)
{
    struct rx_enc e = { .len = 0 };

    enc_u8(&e, 0xe9);
    return emit_rel32(b, code, &e, target);
}

/*
 * CALL rel32 (E8 cd) when the target is within +-2 GiB of the call's executable address;
 * otherwise MOV RAX, imm64 (REX.W B8 io) and CALL RAX (FF /2), which clobbers RAX.
 */
void rx_call(struct rec_buf *b, const struct rec_code *code, const void *target)
{
    struct rx_enc e = { .len = 0 };
    int32_t rel;

    if (rel32_to(exec_addr(code, b->p) + 5, target, &rel)) {
        enc_u8(&e, 0xe8);
        enc_u32(&e, (uint32_t)rel);
    } else {
        enc_plus_reg(&e, 8, 0xb8, RX_RAX);
        enc_u64(&e, (uint64_t)(uintptr_t)target);
        enc_modrm(&e, 4, 0, 0xff, 2, rm_reg(RX_RAX));
    }
    rx_commit(b, &e);
}

/*
 * JMP r/m64 (FF /4), CALL r/m64 (FF /2), PUSH/POP (50+r, 58+r): 64-bit operands by
 * default in 64-bit mode, so no REX.W (SDM vol. 2, 2.2.1.7).
 */
void rx_jmp_reg(struct rec_buf *b, enum rec_reg r)
{
    emit_modrm(b, 4, RX_SZ_48, 0, 0xff, 4, rm_reg(r));
}

void rx_call_reg(struct rec_buf *b, enum rec_reg r)
{
    emit_modrm(b, 4, RX_SZ_48, 0, 0xff, 2, rm_reg(r));
}

void rx_jmp_mem(struct rec_buf *b, struct rec_mem m)
{
    emit_modrm(b, 4, RX_SZ_48, 0, 0xff, 4, rm_mem(m));
}

void rx_ret(struct rec_buf *b)
{
    emit_byte(b, 0xc3);
}

void rx_push(struct rec_buf *b, enum rec_reg r)
{
    struct rx_enc e = { .len = 0 };

    enc_plus_reg(&e, 4, 0x50, r);
    rx_commit(b, &e);
}

void rx_pop(struct rec_buf *b, enum rec_reg r)
{
    struct rx_enc e = { .len = 0 };

    enc_plus_reg(&e, 4, 0x58, r);
    rx_commit(b, &e);
}

/*
 * The code area is far smaller than 2 GiB, so a target inside it is always in reach; a
 * target outside that is not is a translator bug.
 */
void rx_patch_rel32(const struct rec_code *code, uint8_t *at, const void *target)
{
    int32_t rel = 0;
    bool ok = rel32_to(exec_addr(code, at) + 4, target, &rel);

    RT_ASSERT(ok);
    memcpy(at, &rel, sizeof(rel));
}

/* Jcc rel8: 70+cc cb; JMP rel8: EB cb.  The rel8 is filled in by rx_bind8. */
uint8_t *rx_jcc8(struct rec_buf *b, enum rec_cc cc)
{
    struct rx_enc e = { .len = 0 };
    uint8_t *at;

    enc_check_cc(&e, cc);
    enc_u8(&e, 0x70 + (cc & 15));
    enc_u8(&e, 0);
    at = rx_commit(b, &e);
    return at ? at + 1 : NULL;
}

uint8_t *rx_jmp8(struct rec_buf *b)
{
    struct rx_enc e = { .len = 0 };
    uint8_t *at;

    enc_u8(&e, 0xeb);
    enc_u8(&e, 0);
    at = rx_commit(b, &e);
    return at ? at + 1 : NULL;
}

/*
 * Both ends of a label are in the same buffer, so the distance is the same in either view.
 * A NULL label comes from a branch that overflowed; a label out of rel8 reach is a caller
 * bug and is reported as overflow (the block is unusable).
 */
void rx_bind8(struct rec_buf *b, uint8_t *at)
{
    ptrdiff_t d;

    if (b->overflow || at == NULL)
        return;
    d = b->p - (at + 1);
    if (!fits_i8(d)) {
        b->overflow = true;
        return;
    }
    *at = (uint8_t)(int8_t)d;
}

void rx_bind32(struct rec_buf *b, uint8_t *at)
{
    ptrdiff_t d;
    int32_t rel;

    if (b->overflow || at == NULL)
        return;
    d = b->p - (at + 4);
    if (!fits_i32(d)) {
        b->overflow = true;
        return;
    }
    rel = (int32_t)d;
    memcpy(at, &rel, sizeof(rel));
}
