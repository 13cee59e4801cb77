/* iem-alu.h - integer ALU results and flags computed by the x86-64 host running the guest's own instruction. */
#ifndef VIREO_IEM_ALU_H
#define VIREO_IEM_ALU_H

/*
 * Every helper takes the operand size in bytes (1, 2, 4, 8), the operands zero-extended in
 * uint64_t, and the guest's RFLAGS by pointer.  It loads the guest's six arithmetic flags
 * into the host, runs the very instruction the guest executes at that size, and stores the
 * host's arithmetic flags back, leaving every other RFLAGS bit alone.  The result is
 * therefore exact by construction, including flags the SDM leaves "undefined" (they are
 * what an x86 CPU produces) and the rules that are easy to get wrong in C: counts masked
 * to 5 or 6 bits, RCL/RCR of 8/16-bit operands rotating through CF modulo 9/17, shifts by
 * zero leaving every flag unchanged, INC/DEC keeping CF, ROL/ROR touching only CF/OF.
 *
 * Loading flags without POPF (slow, and it would touch the red zone below RSP): OF is set
 * by "add $0x7f" on a byte holding the guest's OF (0x01 + 0x7f overflows, 0x00 + 0x7f does
 * not), then SAHF loads SF/ZF/AF/PF/CF from AH.  Storing: PUSHF/POP with RSP moved past the
 * 128-byte red zone first (LEA does not touch flags).  LAHF/SAHF exist in 64-bit mode on
 * every x86-64 host with CPUID.80000001H:ECX.LAHF-SAHF[bit 0], which Vireo's hosts have.
 * The OF byte is a separate register from RAX: writing AL and then reading AH (or LAHF
 * followed by SETO into AL) costs a partial-register merge that made every helper about
 * five times slower.  RAX and the OF register are written before the operands are read, so
 * they are early-clobber operands ("+&"): otherwise the compiler may put an input of equal
 * value in the same register.
 *
 * Division must be checked by the caller with iem_alu_div_ok/iem_alu_idiv_ok first: the
 * host would raise SIGFPE on #DE.  Instructions the host cannot execute in 64-bit mode
 * (the BCD adjustments, SALC) are computed in C from the SDM pseudo-code.
 */

#include <stdbool.h>
#include <stdint.h>

#include "iem-internal.h"

/* ---- Small helpers ------------------------------------------------------------------ */

static inline uint64_t iem_alu_mask(unsigned size)
{
    return size >= 8 ? ~(uint64_t)0 : ((uint64_t)1 << (size * 8)) - 1;
}

static inline uint64_t iem_alu_sext(unsigned size, uint64_t v)
{
    switch (size) {
    case 1: return (uint64_t)(int64_t)(int8_t)v;
    case 2: return (uint64_t)(int64_t)(int16_t)v;
    case 4: return (uint64_t)(int64_t)(int32_t)v;
    default: return v;
    }
}

static inline uint64_t iem_alu_sign_bit(unsigned size)
{
    return (uint64_t)1 << (size * 8 - 1);
}

/* PF: set when the low byte of the result has an even number of one bits (SDM vol. 1, 3.4.3.1). */
static inline bool iem_alu_parity(uint64_t v)
{
    return !__builtin_parity((unsigned)(v & 0xff));
}

/* Packs the guest's arithmetic flags as the asm below expects them (SF ZF AF PF CF in AH of
 * RAX, OF in a byte register of its own), and stores the host's RFLAGS back. */
static inline uint64_t iem_alu_fx_pack(uint64_t fl)
{
    return (fl & 0xd5) << 8;
}

static inline uint64_t iem_alu_of_pack(uint64_t fl)
{
    return (fl >> 11) & 1;
}

static inline void iem_alu_fx_unpack(uint64_t *fl, uint64_t host_rflags)
{
    *fl = (*fl & ~(uint64_t)IEM_F_ARITH) | (host_rflags & IEM_F_ARITH);
}

/* Sets SF, ZF and PF from a result of the given size (used by the C-computed instructions). */
static inline uint64_t iem_alu_szp(unsigned size, uint64_t result)
{
    uint64_t f = 0;
    result &= iem_alu_mask(size);
    if (result == 0)
        f |= IEM_F_ZF;
    if (result & iem_alu_sign_bit(size))
        f |= IEM_F_SF;
    if (iem_alu_parity(result))
        f |= IEM_F_PF;
    return f;
}

#define IEM_ALU_FIN  "addb $0x7f, %b[of]\n\tsahf\n\t"
#define IEM_ALU_FOUT "\n\tleaq -128(%%rsp), %%rsp\n\tpushfq\n\tpopq %%rax\n\tleaq 128(%%rsp), %%rsp"

/* ---- Two-operand arithmetic and logic: dst = dst OP src ------------------------------- */

#define IEM_ALU_DEF_BINOP(name, insn)                                                         \
    static inline uint64_t iem_alu_##name(unsigned size, uint64_t a, uint64_t b, uint64_t *fl) \
    {                                                                                         \
        uint64_t fx = iem_alu_fx_pack(*fl), of = iem_alu_of_pack(*fl);                                                   \
        switch (size) {                                                                       \
        case 1: {                                                                             \
            uint8_t r = (uint8_t)a;                                                           \
            __asm__(IEM_ALU_FIN insn "b %b[b], %b[r]" IEM_ALU_FOUT                             \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"((uint8_t)b) : "cc");                    \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        case 2: {                                                                             \
            uint16_t r = (uint16_t)a;                                                         \
            __asm__(IEM_ALU_FIN insn "w %w[b], %w[r]" IEM_ALU_FOUT                             \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"((uint16_t)b) : "cc");                   \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        case 4: {                                                                             \
            uint32_t r = (uint32_t)a;                                                         \
            __asm__(IEM_ALU_FIN insn "l %k[b], %k[r]" IEM_ALU_FOUT                             \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"((uint32_t)b) : "cc");                   \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        default: {                                                                            \
            uint64_t r = a;                                                                   \
            __asm__(IEM_ALU_FIN insn "q %q[b], %q[r]" IEM_ALU_FOUT                             \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"(b) : "cc");                             \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        }                                                                                     \
        iem_alu_fx_unpack(fl, fx);                                                            \
        return a;                                                                             \
    }

/*
 * ADD and SUB (and CMP, NEG below) set all six arithmetic flags from their operands alone
 * (SDM vol. 2A ADD, SUB, NEG: "OF, SF, ZF, AF, CF, and PF flags are set according to the
 * result"), so the guest's flags need not be loaded into the host first.
 */
#define IEM_ALU_DEF_BINOP_FRESH(name, insn)                                                   \
    static inline uint64_t iem_alu_##name(unsigned size, uint64_t a, uint64_t b, uint64_t *fl) \
    {                                                                                         \
        uint64_t fx;                                                                          \
        switch (size) {                                                                       \
        case 1: {                                                                             \
            uint8_t r = (uint8_t)a;                                                           \
            __asm__(insn "b %b[b], %b[r]" IEM_ALU_FOUT : [r] "+r"(r), "=&a"(fx) : [b] "r"((uint8_t)b) : "cc"); \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        case 2: {                                                                             \
            uint16_t r = (uint16_t)a;                                                         \
            __asm__(insn "w %w[b], %w[r]" IEM_ALU_FOUT : [r] "+r"(r), "=&a"(fx) : [b] "r"((uint16_t)b) : "cc"); \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        case 4: {                                                                             \
            uint32_t r = (uint32_t)a;                                                         \
            __asm__(insn "l %k[b], %k[r]" IEM_ALU_FOUT : [r] "+r"(r), "=&a"(fx) : [b] "r"((uint32_t)b) : "cc"); \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        default: {                                                                            \
            uint64_t r = a;                                                                   \
            __asm__(insn "q %q[b], %q[r]" IEM_ALU_FOUT : [r] "+r"(r), "=&a"(fx) : [b] "r"(b) : "cc"); \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        }                                                                                     \
        iem_alu_fx_unpack(fl, fx);                                                            \
        return a;                                                                             \
    }

IEM_ALU_DEF_BINOP_FRESH(add, "add")
IEM_ALU_DEF_BINOP(adc, "adc")
IEM_ALU_DEF_BINOP_FRESH(sub, "sub")
IEM_ALU_DEF_BINOP(sbb, "sbb")
IEM_ALU_DEF_BINOP(and, "and")
IEM_ALU_DEF_BINOP(or, "or")
IEM_ALU_DEF_BINOP(xor, "xor")

/* CMP and TEST: flags of SUB and AND, no result. */
static inline void iem_alu_cmp(unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
    (void)iem_alu_sub(size, a, b, fl);
}

static inline void iem_alu_test(unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
    (void)iem_alu_and(size, a, b, fl);
}

/* ---- One-operand arithmetic: INC, DEC, NEG (NOT changes no flag) ---------------------- */

#define IEM_ALU_DEF_UNOP(name, insn)                                                          \
    static inline uint64_t iem_alu_##name(unsigned size, uint64_t a, uint64_t *fl)             \
    {                                                                                         \
        uint64_t fx = iem_alu_fx_pack(*fl), of = iem_alu_of_pack(*fl);                                                   \
        switch (size) {                                                                       \
        case 1: {                                                                             \
            uint8_t r = (uint8_t)a;                                                           \
            __asm__(IEM_ALU_FIN insn "b %b[r]" IEM_ALU_FOUT : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : : "cc"); \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        case 2: {                                                                             \
            uint16_t r = (uint16_t)a;                                                         \
            __asm__(IEM_ALU_FIN insn "w %w[r]" IEM_ALU_FOUT : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : : "cc"); \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        case 4: {                                                                             \
            uint32_t r = (uint32_t)a;                                                         \
            __asm__(IEM_ALU_FIN insn "l %k[r]" IEM_ALU_FOUT : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : : "cc"); \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        default: {                                                                            \
            uint64_t r = a;                                                                   \
            __asm__(IEM_ALU_FIN insn "q %q[r]" IEM_ALU_FOUT : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : : "cc"); \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        }                                                                                     \
        iem_alu_fx_unpack(fl, fx);                                                            \
        return a;                                                                             \
    }

IEM_ALU_DEF_UNOP(inc, "inc")
IEM_ALU_DEF_UNOP(dec, "dec")
IEM_ALU_DEF_UNOP(neg, "neg")

static inline uint64_t iem_alu_not(unsigned size, uint64_t a)
{
    return ~a & iem_alu_mask(size);
}

/* ---- Shifts and rotates by a count (the host masks the count exactly as the guest does) ---- */

#define IEM_ALU_DEF_SHIFT(name, insn)                                                              \
    static inline uint64_t iem_alu_##name(unsigned size, uint64_t a, unsigned count, uint64_t *fl) \
    {                                                                                              \
        uint64_t fx = iem_alu_fx_pack(*fl), of = iem_alu_of_pack(*fl);                                                        \
        uint8_t c = (uint8_t)count;                                                                \
        switch (size) {                                                                            \
        case 1: {                                                                                  \
            uint8_t r = (uint8_t)a;                                                                \
            __asm__(IEM_ALU_FIN insn "b %%cl, %b[r]" IEM_ALU_FOUT                                   \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : "c"(c) : "cc");                                      \
            a = r;                                                                                 \
            break;                                                                                 \
        }                                                                                          \
        case 2: {                                                                                  \
            uint16_t r = (uint16_t)a;                                                              \
            __asm__(IEM_ALU_FIN insn "w %%cl, %w[r]" IEM_ALU_FOUT                                   \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : "c"(c) : "cc");                                      \
            a = r;                                                                                 \
            break;                                                                                 \
        }                                                                                          \
        case 4: {                                                                                  \
            uint32_t r = (uint32_t)a;                                                              \
            __asm__(IEM_ALU_FIN insn "l %%cl, %k[r]" IEM_ALU_FOUT                                   \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : "c"(c) : "cc");                                      \
            a = r;                                                                                 \
            break;                                                                                 \
        }                                                                                          \
        default: {                                                                                 \
            uint64_t r = a;                                                                        \
            __asm__(IEM_ALU_FIN insn "q %%cl, %q[r]" IEM_ALU_FOUT                                   \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : "c"(c) : "cc");                                      \
            a = r;                                                                                 \
            break;                                                                                 \
        }                                                                                          \
        }                                                                                          \
        iem_alu_fx_unpack(fl, fx);                                                                 \
        return a;                                                                                  \
    }

IEM_ALU_DEF_SHIFT(shl, "shl")
IEM_ALU_DEF_SHIFT(shr, "shr")
IEM_ALU_DEF_SHIFT(sar, "sar")
IEM_ALU_DEF_SHIFT(rol, "rol")
IEM_ALU_DEF_SHIFT(ror, "ror")
IEM_ALU_DEF_SHIFT(rcl, "rcl")
IEM_ALU_DEF_SHIFT(rcr, "rcr")

/* SHLD/SHRD dst, src, count (16/32/64-bit only; the host gives the "undefined" result of a
 * 16-bit count above 16 exactly as x86 hardware does). */
#define IEM_ALU_DEF_DSHIFT(name, insn)                                                           \
    static inline uint64_t iem_alu_##name(unsigned size, uint64_t a, uint64_t b, unsigned count, \
                                          uint64_t *fl)                                          \
    {                                                                                            \
        uint64_t fx = iem_alu_fx_pack(*fl), of = iem_alu_of_pack(*fl);                                                      \
        uint8_t c = (uint8_t)count;                                                              \
        switch (size) {                                                                          \
        case 2: {                                                                                \
            uint16_t r = (uint16_t)a;                                                            \
            __asm__(IEM_ALU_FIN insn "w %%cl, %w[b], %w[r]" IEM_ALU_FOUT                          \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"((uint16_t)b), "c"(c) : "cc");              \
            a = r;                                                                               \
            break;                                                                               \
        }                                                                                        \
        case 4: {                                                                                \
            uint32_t r = (uint32_t)a;                                                            \
            __asm__(IEM_ALU_FIN insn "l %%cl, %k[b], %k[r]" IEM_ALU_FOUT                          \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"((uint32_t)b), "c"(c) : "cc");              \
            a = r;                                                                               \
            break;                                                                               \
        }                                                                                        \
        default: {                                                                               \
            uint64_t r = a;                                                                      \
            __asm__(IEM_ALU_FIN insn "q %%cl, %q[b], %q[r]" IEM_ALU_FOUT                          \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"(b), "c"(c) : "cc");                        \
            a = r;                                                                               \
            break;                                                                               \
        }                                                                                        \
        }                                                                                        \
        iem_alu_fx_unpack(fl, fx);                                                               \
        return a;                                                                                \
    }

IEM_ALU_DEF_DSHIFT(shld, "shld")
IEM_ALU_DEF_DSHIFT(shrd, "shrd")

/* ---- Bit tests, scans, counts ---------------------------------------------------------- */

/* BT/BTS/BTR/BTC on a register-sized value; the host takes the bit number modulo the size
 * (16/32/64-bit only; callers addressing a memory bit string compute the byte first). */
#define IEM_ALU_DEF_BT(name, insn)                                                            \
    static inline uint64_t iem_alu_##name(unsigned size, uint64_t a, uint64_t bit, uint64_t *fl) \
    {                                                                                         \
        uint64_t fx = iem_alu_fx_pack(*fl), of = iem_alu_of_pack(*fl);                                                   \
        switch (size) {                                                                       \
        case 2: {                                                                             \
            uint16_t r = (uint16_t)a;                                                         \
            __asm__(IEM_ALU_FIN insn "w %w[b], %w[r]" IEM_ALU_FOUT                             \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"((uint16_t)bit) : "cc");                 \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        case 4: {                                                                             \
            uint32_t r = (uint32_t)a;                                                         \
            __asm__(IEM_ALU_FIN insn "l %k[b], %k[r]" IEM_ALU_FOUT                             \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"((uint32_t)bit) : "cc");                 \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        default: {                                                                            \
            uint64_t r = a;                                                                   \
            __asm__(IEM_ALU_FIN insn "q %q[b], %q[r]" IEM_ALU_FOUT                             \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"(bit) : "cc");                           \
            a = r;                                                                            \
            break;                                                                            \
        }                                                                                     \
        }                                                                                     \
        iem_alu_fx_unpack(fl, fx);                                                            \
        return a;                                                                             \
    }

IEM_ALU_DEF_BT(bt, "bt")
IEM_ALU_DEF_BT(bts, "bts")
IEM_ALU_DEF_BT(btr, "btr")
IEM_ALU_DEF_BT(btc, "btc")

/* BSF/BSR dst, src: returns the new destination; a zero source sets ZF and leaves the
 * destination's value as it was (the host does exactly that). */
#define IEM_ALU_DEF_BSCAN(name, insn)                                                           \
    static inline uint64_t iem_alu_##name(unsigned size, uint64_t dst, uint64_t src, uint64_t *fl) \
    {                                                                                           \
        uint64_t fx = iem_alu_fx_pack(*fl), of = iem_alu_of_pack(*fl);                                                     \
        switch (size) {                                                                         \
        case 2: {                                                                               \
            uint16_t r = (uint16_t)dst;                                                         \
            __asm__(IEM_ALU_FIN insn "w %w[s], %w[r]" IEM_ALU_FOUT                               \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [s] "r"((uint16_t)src) : "cc");                   \
            dst = r;                                                                            \
            break;                                                                              \
        }                                                                                       \
        case 4: {                                                                               \
            uint32_t r = (uint32_t)dst;                                                         \
            __asm__(IEM_ALU_FIN insn "l %k[s], %k[r]" IEM_ALU_FOUT                               \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [s] "r"((uint32_t)src) : "cc");                   \
            dst = r;                                                                            \
            break;                                                                              \
        }                                                                                       \
        default: {                                                                              \
            uint64_t r = dst;                                                                   \
            __asm__(IEM_ALU_FIN insn "q %q[s], %q[r]" IEM_ALU_FOUT                               \
                    : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [s] "r"(src) : "cc");                             \
            dst = r;                                                                            \
            break;                                                                              \
        }                                                                                       \
        }                                                                                       \
        iem_alu_fx_unpack(fl, fx);                                                              \
        return dst;                                                                             \
    }

IEM_ALU_DEF_BSCAN(bsf, "bsf")
IEM_ALU_DEF_BSCAN(bsr, "bsr")

/*
 * POPCNT/LZCNT/TZCNT are computed in C rather than on the host: a host without ABM/BMI1
 * would silently run LZCNT/TZCNT as BSR/BSF (same encoding with an ignored F3 prefix).
 * POPCNT: ZF = (src == 0), OF SF AF CF PF cleared (SDM POPCNT).  LZCNT/TZCNT: CF = (src ==
 * 0), ZF = (result == 0); OF SF PF AF are undefined and cleared here.
 */
static inline uint64_t iem_alu_popcnt(unsigned size, uint64_t src, uint64_t *fl)
{
    src &= iem_alu_mask(size);
    *fl &= ~(uint64_t)IEM_F_ARITH;
    if (src == 0)
        *fl |= IEM_F_ZF;
    return (uint64_t)__builtin_popcountll(src);
}

static inline uint64_t iem_alu_lzcnt(unsigned size, uint64_t src, uint64_t *fl)
{
    uint64_t r;
    src &= iem_alu_mask(size);
    r = src == 0 ? size * 8 : (uint64_t)(__builtin_clzll(src) - (64 - (int)size * 8));
    *fl &= ~(uint64_t)IEM_F_ARITH;
    if (src == 0)
        *fl |= IEM_F_CF;
    if (r == 0)
        *fl |= IEM_F_ZF;
    return r;
}

static inline uint64_t iem_alu_tzcnt(unsigned size, uint64_t src, uint64_t *fl)
{
    uint64_t r;
    src &= iem_alu_mask(size);
    r = src == 0 ? size * 8 : (uint64_t)__builtin_ctzll(src);
    *fl &= ~(uint64_t)IEM_F_ARITH;
    if (src == 0)
        *fl |= IEM_F_CF;
    if (r == 0)
        *fl |= IEM_F_ZF;
    return r;
}

/* BSWAP: a 16-bit operand is undefined in the SDM; Intel and AMD processors clear the low
 * word (the upper bits of the register stay), which is what is returned here. */
static inline uint64_t iem_alu_bswap(unsigned size, uint64_t v)
{
    switch (size) {
    case 2: return 0;
    case 4: return __builtin_bswap32((uint32_t)v);
    default: return __builtin_bswap64(v);
    }
}

/* ---- Multiplication and division --------------------------------------------------------- */

/* MUL/IMUL with one operand: returns the low half (AL/AX/EAX/RAX part), *hi the high half
 * (AH for size 1: the returned value is then all of AX and *hi is AH). */
#define IEM_ALU_DEF_MUL1(name, insn)                                                               \
    static inline uint64_t iem_alu_##name(unsigned size, uint64_t a, uint64_t b, uint64_t *hi,      \
                                          uint64_t *fl)                                            \
    {                                                                                              \
        uint64_t fx = iem_alu_fx_pack(*fl), of = iem_alu_of_pack(*fl), lo, h = 0;                                             \
        switch (size) {                                                                            \
        case 1:                                                                                    \
            __asm__(IEM_ALU_FIN "movzbl %b[a], %%eax\n\t" insn "b %b[b]\n\tmovzwq %%ax, %q[lo]"       \
                    IEM_ALU_FOUT                                                                   \
                    : "+&a"(fx), [of] "+&r"(of), [lo] "=&r"(lo) : [a] "r"(a), [b] "r"(b) : "cc");                   \
            h = (lo >> 8) & 0xff;                                                                  \
            break;                                                                                 \
        case 2:                                                                                    \
            __asm__(IEM_ALU_FIN "movzwl %w[a], %%eax\n\t" insn "w %w[b]\n\tmovzwq %%ax, %q[lo]"       \
                    IEM_ALU_FOUT                                                                   \
                    : "+&a"(fx), [of] "+&r"(of), [lo] "=&r"(lo), "=&d"(h) : [a] "r"(a), [b] "r"(b) : "cc");         \
            h &= 0xffff;                                                                           \
            break;                                                                                 \
        case 4:                                                                                    \
            __asm__(IEM_ALU_FIN "movl %k[a], %%eax\n\t" insn "l %k[b]\n\tmovl %%eax, %k[lo]"       \
                    IEM_ALU_FOUT                                                                   \
                    : "+&a"(fx), [of] "+&r"(of), [lo] "=&r"(lo), "=&d"(h) : [a] "r"(a), [b] "r"(b) : "cc");         \
            lo &= 0xffffffffu;                                                                     \
            h &= 0xffffffffu;                                                                      \
            break;                                                                                 \
        default:                                                                                   \
            __asm__(IEM_ALU_FIN "movq %q[a], %%rax\n\t" insn "q %q[b]\n\tmovq %%rax, %q[lo]"       \
                    IEM_ALU_FOUT                                                                   \
                    : "+&a"(fx), [of] "+&r"(of), [lo] "=&r"(lo), "=&d"(h) : [a] "r"(a), [b] "r"(b) : "cc");         \
            break;                                                                                 \
        }                                                                                          \
        iem_alu_fx_unpack(fl, fx);                                                                 \
        *hi = h;                                                                                   \
        return lo;                                                                                 \
    }

IEM_ALU_DEF_MUL1(mul, "mul")
IEM_ALU_DEF_MUL1(imul1, "imul")

/* IMUL dst, src and IMUL dst, src, imm (16/32/64-bit): the truncated product; CF = OF = the
 * product did not fit. */
static inline uint64_t iem_alu_imul2(unsigned size, uint64_t a, uint64_t b, uint64_t *fl)
{
    uint64_t fx = iem_alu_fx_pack(*fl), of = iem_alu_of_pack(*fl);
    switch (size) {
    case 2: {
        uint16_t r = (uint16_t)a;
        __asm__(IEM_ALU_FIN "imulw %w[b], %w[r]" IEM_ALU_FOUT
                : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"((uint16_t)b) : "cc");
        a = r;
        break;
    }
    case 4: {
        uint32_t r = (uint32_t)a;
        __asm__(IEM_ALU_FIN "imull %k[b], %k[r]" IEM_ALU_FOUT
                : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"((uint32_t)b) : "cc");
        a = r;
        break;
    }
    default: {
        uint64_t r = a;
        __asm__(IEM_ALU_FIN "imulq %q[b], %q[r]" IEM_ALU_FOUT
                : [r] "+r"(r), "+&a"(fx), [of] "+&r"(of) : [b] "r"(b) : "cc");
        a = r;
        break;
    }
    }
    iem_alu_fx_unpack(fl, fx);
    return a;
}

/* DIV raises #DE when the divisor is 0 or the quotient does not fit (SDM DIV): for an
 * unsigned 2n-bit dividend hi:lo that is exactly hi >= divisor. */
static inline bool iem_alu_div_ok(unsigned size, uint64_t lo, uint64_t hi, uint64_t divisor)
{
    uint64_t m = iem_alu_mask(size);
    divisor &= m;
    if (divisor == 0)
        return false;
    if (size == 1)
        return ((lo >> 8) & 0xff) < divisor; /* dividend is AX: AH is the high half */
    return (hi & m) < divisor;
}

/* IDIV: #DE when the divisor is 0 or the signed quotient is outside the operand's range
 * (also for the most negative dividend divided by -1). */
static inline bool iem_alu_idiv_ok(unsigned size, uint64_t lo, uint64_t hi, uint64_t divisor)
{
    unsigned __int128 mag_n, mag_d, q;
    __int128 n;
    int64_t d = (int64_t)iem_alu_sext(size, divisor);
    bool neg;

    if (d == 0)
        return false;
    switch (size) {
    case 1: n = (int16_t)lo; break;
    case 2: n = (int32_t)(((hi & 0xffff) << 16) | (lo & 0xffff)); break;
    case 4: n = (int64_t)((hi << 32) | (lo & 0xffffffffu)); break;
    default: n = (__int128)(((unsigned __int128)hi << 64) | lo); break;
    }
    neg = (n < 0) != (d < 0);
    mag_n = n < 0 ? -(unsigned __int128)n : (unsigned __int128)n;
    mag_d = d < 0 ? -(unsigned __int128)d : (unsigned __int128)d;
    q = mag_n / mag_d;
    if (neg)
        return q <= (unsigned __int128)iem_alu_sign_bit(size);
    return q < (unsigned __int128)iem_alu_sign_bit(size);
}

/* DIV/IDIV after the check above: returns the quotient, *rem the remainder.  For size 1 the
 * dividend is AX (lo), and the quotient/remainder go to AL/AH. */
#define IEM_ALU_DEF_DIV(name, insn)                                                                 \
    static inline uint64_t iem_alu_##name(unsigned size, uint64_t lo, uint64_t hi, uint64_t divisor, \
                                          uint64_t *rem, uint64_t *fl)                              \
    {                                                                                               \
        uint64_t fx = iem_alu_fx_pack(*fl), of = iem_alu_of_pack(*fl), q, r = 0;                                               \
        switch (size) {                                                                             \
        case 1:                                                                                     \
            __asm__(IEM_ALU_FIN "movzwl %w[lo], %%eax\n\t" insn "b %b[d]\n\tmovzwq %%ax, %q[q]"        \
                    IEM_ALU_FOUT                                                                    \
                    : "+&a"(fx), [of] "+&r"(of), [q] "=&r"(q) : [lo] "r"(lo), [d] "r"(divisor) : "cc");              \
            r = (q >> 8) & 0xff;                                                                    \
            q &= 0xff;                                                                              \
            break;                                                                                  \
        case 2:                                                                                     \
            __asm__(IEM_ALU_FIN "movzwl %w[lo], %%eax\n\tmovzwl %w[hi], %%edx\n\t" insn "w %w[d]\n\t"     \
                    "movzwq %%ax, %q[q]" IEM_ALU_FOUT                                               \
                    : "+&a"(fx), [of] "+&r"(of), [q] "=&r"(q), "=&d"(r) : [lo] "r"(lo), [hi] "r"(hi), [d] "r"(divisor) \
                    : "cc");                                                                        \
            r &= 0xffff;                                                                            \
            break;                                                                                  \
        case 4:                                                                                     \
            __asm__(IEM_ALU_FIN "movl %k[lo], %%eax\n\tmovl %k[hi], %%edx\n\t" insn "l %k[d]\n\t"   \
                    "movl %%eax, %k[q]" IEM_ALU_FOUT                                                \
                    : "+&a"(fx), [of] "+&r"(of), [q] "=&r"(q), "=&d"(r) : [lo] "r"(lo), [hi] "r"(hi), [d] "r"(divisor) \
                    : "cc");                                                                        \
            q &= 0xffffffffu;                                                                       \
            r &= 0xffffffffu;                                                                       \
            break;                                                                                  \
        default:                                                                                    \
            __asm__(IEM_ALU_FIN "movq %q[lo], %%rax\n\tmovq %q[hi], %%rdx\n\t" insn "q %q[d]\n\t"   \
                    "movq %%rax, %q[q]" IEM_ALU_FOUT                                                \
                    : "+&a"(fx), [of] "+&r"(of), [q] "=&r"(q), "=&d"(r) : [lo] "r"(lo), [hi] "r"(hi), [d] "r"(divisor) \
                    : "cc");                                                                        \
            break;                                                                                  \
        }                                                                                           \
        iem_alu_fx_unpack(fl, fx);                                                                  \
        *rem = r;                                                                                   \
        return q;                                                                                   \
    }

IEM_ALU_DEF_DIV(div, "div")
IEM_ALU_DEF_DIV(idiv, "idiv")

/* ---- Exchange-and-operate helpers (the caller does the memory side) -------------------- */

/* XADD: returns the sum for the destination; the source register receives the old
 * destination.  Flags as ADD. */
static inline uint64_t iem_alu_xadd(unsigned size, uint64_t dst, uint64_t src, uint64_t *fl)
{
    return iem_alu_add(size, dst, src, fl);
}

/* CMPXCHG's compare: flags as CMP accumulator, destination; true when they are equal. */
static inline bool iem_alu_cmpxchg_cmp(unsigned size, uint64_t acc, uint64_t dst, uint64_t *fl)
{
    iem_alu_cmp(size, acc, dst, fl);
    return (*fl & IEM_F_ZF) != 0;
}

/* ---- BCD and other instructions the 64-bit host cannot run (SDM pseudo-code) ----------- */

/* DAA (SDM DAA): AL and the flags; the undefined OF is cleared. */
static inline uint8_t iem_alu_daa(uint8_t al, uint64_t *fl)
{
    uint8_t old_al = al;
    bool old_cf = (*fl & IEM_F_CF) != 0, cf = false, af;
    uint64_t f;

    if ((al & 0x0f) > 9 || (*fl & IEM_F_AF)) {
        cf = old_cf || al > 0xf9;
        al = (uint8_t)(al + 6);
        af = true;
    } else {
        af = false;
    }
    if (old_al > 0x99 || old_cf) {
        al = (uint8_t)(al + 0x60);
        cf = true;
    } else {
        cf = false;
    }
    f = iem_alu_szp(1, al);
    if (cf)
        f |= IEM_F_CF;
    if (af)
        f |= IEM_F_AF;
    *fl = (*fl & ~(uint64_t)IEM_F_ARITH) | f;
    return al;
}

/* DAS (SDM DAS): note that the second step has no "else CF = 0"; the undefined OF is cleared. */
static inline uint8_t iem_alu_das(uint8_t al, uint64_t *fl)
{
    uint8_t old_al = al;
    bool old_cf = (*fl & IEM_F_CF) != 0, cf = false, af;
    uint64_t f;

    if ((al & 0x0f) > 9 || (*fl & IEM_F_AF)) {
        cf = old_cf || al < 6;
        al = (uint8_t)(al - 6);
        af = true;
    } else {
        af = false;
    }
    if (old_al > 0x99 || old_cf) {
        al = (uint8_t)(al - 0x60);
        cf = true;
    }
    f = iem_alu_szp(1, al);
    if (cf)
        f |= IEM_F_CF;
    if (af)
        f |= IEM_F_AF;
    *fl = (*fl & ~(uint64_t)IEM_F_ARITH) | f;
    return al;
}

/* AAA (SDM AAA): AX = AX + 106H when adjusting; AL keeps its low nibble.  OF SF ZF PF are
 * undefined: computed from AL here. */
static inline uint16_t iem_alu_aaa(uint16_t ax, uint64_t *fl)
{
    uint64_t f;
    if ((ax & 0x0f) > 9 || (*fl & IEM_F_AF)) {
        ax = (uint16_t)(ax + 0x106);
        f = IEM_F_AF | IEM_F_CF;
    } else {
        f = 0;
    }
    ax &= 0xff0f;
    f |= iem_alu_szp(1, ax & 0xff);
    *fl = (*fl & ~(uint64_t)IEM_F_ARITH) | f;
    return ax;
}

/* AAS (SDM AAS): AX = AX - 6, AH = AH - 1 when adjusting. */
static inline uint16_t iem_alu_aas(uint16_t ax, uint64_t *fl)
{
    uint64_t f;
    if ((ax & 0x0f) > 9 || (*fl & IEM_F_AF)) {
        ax = (uint16_t)(ax - 6);
        ax = (uint16_t)(ax - 0x100);
        f = IEM_F_AF | IEM_F_CF;
    } else {
        f = 0;
    }
    ax &= 0xff0f;
    f |= iem_alu_szp(1, ax & 0xff);
    *fl = (*fl & ~(uint64_t)IEM_F_ARITH) | f;
    return ax;
}

/* AAM imm8 (SDM AAM): AH = AL / imm8, AL = AL mod imm8; the caller raises #DE for imm8 = 0.
 * SF ZF PF from AL; OF AF CF undefined and cleared. */
static inline uint16_t iem_alu_aam(uint16_t ax, uint8_t base, uint64_t *fl)
{
    uint8_t al = (uint8_t)ax;
    uint8_t q = (uint8_t)(al / base), r = (uint8_t)(al % base);
    *fl = (*fl & ~(uint64_t)IEM_F_ARITH) | iem_alu_szp(1, r);
    return (uint16_t)((q << 8) | r);
}

/* AAD imm8 (SDM AAD): AL = AL + AH * imm8, AH = 0.  SF ZF PF from AL; the undefined OF AF CF
 * are those of the 8-bit addition the processor performs. */
static inline uint16_t iem_alu_aad(uint16_t ax, uint8_t base, uint64_t *fl)
{
    uint8_t al = (uint8_t)ax, ah = (uint8_t)(ax >> 8);
    uint8_t r = (uint8_t)iem_alu_add(1, al, (uint8_t)(ah * base), fl);
    return r;
}

#endif
