/* tstRecX86.c - unit tests of the recompiler's x86-64 emitter (checked with the Zydis decoder) and its W^X code area. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <Zydis/Zydis.h>

#include "vireo/err.h"

#include "../rec-x86.h"

/*
 * Encodings are checked against an independent decoder: each emitter writes one
 * instruction into g_buf, Zydis decodes it, and the test compares the mnemonic, operand
 * sizes, registers, memory operand parts and immediates with what was asked for, plus
 * the length of the displacement and immediate fields where the emitter must pick the
 * shortest form.  The execution tests run emitted code through the executable view.
 */

static ZydisDecoder g_dec;
static uint8_t g_buf[64];
static struct rec_buf g_b;

struct dec {
    ZydisDecodedInstruction in;
    ZydisDecodedOperand op[ZYDIS_MAX_OPERAND_COUNT];
};

static const unsigned k_sizes[] = { 1, 2, 4, 8 };
static const int32_t k_disps[] = { 0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0x12345678, INT32_MIN, INT32_MAX };
static const int32_t k_imms[] = { 0, 1, -1, 0x7f, 0x80, -0x80, -0x81, 0x7fff, -0x8000, 0xffff, 0x12345678, INT32_MIN };

static const ZydisRegister k_gpr8[16] = {
    ZYDIS_REGISTER_AL, ZYDIS_REGISTER_CL, ZYDIS_REGISTER_DL, ZYDIS_REGISTER_BL,
    ZYDIS_REGISTER_SPL, ZYDIS_REGISTER_BPL, ZYDIS_REGISTER_SIL, ZYDIS_REGISTER_DIL,
    ZYDIS_REGISTER_R8B, ZYDIS_REGISTER_R9B, ZYDIS_REGISTER_R10B, ZYDIS_REGISTER_R11B,
    ZYDIS_REGISTER_R12B, ZYDIS_REGISTER_R13B, ZYDIS_REGISTER_R14B, ZYDIS_REGISTER_R15B,
};
static const ZydisRegister k_gpr16[16] = {
    ZYDIS_REGISTER_AX, ZYDIS_REGISTER_CX, ZYDIS_REGISTER_DX, ZYDIS_REGISTER_BX,
    ZYDIS_REGISTER_SP, ZYDIS_REGISTER_BP, ZYDIS_REGISTER_SI, ZYDIS_REGISTER_DI,
    ZYDIS_REGISTER_R8W, ZYDIS_REGISTER_R9W, ZYDIS_REGISTER_R10W, ZYDIS_REGISTER_R11W,
    ZYDIS_REGISTER_R12W, ZYDIS_REGISTER_R13W, ZYDIS_REGISTER_R14W, ZYDIS_REGISTER_R15W,
};
static const ZydisRegister k_gpr32[16] = {
    ZYDIS_REGISTER_EAX, ZYDIS_REGISTER_ECX, ZYDIS_REGISTER_EDX, ZYDIS_REGISTER_EBX,
    ZYDIS_REGISTER_ESP, ZYDIS_REGISTER_EBP, ZYDIS_REGISTER_ESI, ZYDIS_REGISTER_EDI,
    ZYDIS_REGISTER_R8D, ZYDIS_REGISTER_R9D, ZYDIS_REGISTER_R10D, ZYDIS_REGISTER_R11D,
    ZYDIS_REGISTER_R12D, ZYDIS_REGISTER_R13D, ZYDIS_REGISTER_R14D, ZYDIS_REGISTER_R15D,
};
static const ZydisRegister k_gpr64[16] = {
    ZYDIS_REGISTER_RAX, ZYDIS_REGISTER_RCX, ZYDIS_REGISTER_RDX, ZYDIS_REGISTER_RBX,
    ZYDIS_REGISTER_RSP, ZYDIS_REGISTER_RBP, ZYDIS_REGISTER_RSI, ZYDIS_REGISTER_RDI,
    ZYDIS_REGISTER_R8, ZYDIS_REGISTER_R9, ZYDIS_REGISTER_R10, ZYDIS_REGISTER_R11,
    ZYDIS_REGISTER_R12, ZYDIS_REGISTER_R13, ZYDIS_REGISTER_R14, ZYDIS_REGISTER_R15,
};

static const ZydisMnemonic k_alu_mn[8] = {
    ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_OR, ZYDIS_MNEMONIC_ADC, ZYDIS_MNEMONIC_SBB,
    ZYDIS_MNEMONIC_AND, ZYDIS_MNEMONIC_SUB, ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_CMP,
};
/* SAL is the same instruction as SHL (SDM SAL/SAR/SHL/SHR). */
static const ZydisMnemonic k_shift_mn[8] = {
    ZYDIS_MNEMONIC_ROL, ZYDIS_MNEMONIC_ROR, ZYDIS_MNEMONIC_RCL, ZYDIS_MNEMONIC_RCR,
    ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SHR, ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SAR,
};
static const ZydisMnemonic k_jcc_mn[16] = {
    ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JNB,
    ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
    ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JNP,
    ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE,
};
static const ZydisMnemonic k_setcc_mn[16] = {
    ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETNB,
    ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
    ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP,
    ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE,
};
static const ZydisMnemonic k_cmov_mn[16] = {
    ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVNB,
    ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
    ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
    ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNLE,
};

/* ---- Helpers ------------------------------------------------------------------------------ */

static struct rec_buf *fresh(void)
{
    memset(g_buf, 0xcc, sizeof(g_buf));
    rec_buf_init(&g_b, g_buf, g_buf + sizeof(g_buf));
    return &g_b;
}

static size_t emitted(void)
{
    return (size_t)(g_b.p - g_buf);
}

/* Decodes the instruction at g_buf + off, which must end at `end` bytes. */
static void decode_at(struct dec *d, size_t off, size_t end)
{
    assert_false(g_b.overflow);
    assert_true(end > off);
    assert_true(ZYAN_SUCCESS(ZydisDecoderDecodeFull(&g_dec, g_buf + off, end - off, &d->in, d->op)));
    assert_int_equal(d->in.length, end - off);
}

/* Decodes everything emitted since fresh(): exactly one instruction. */
static void decode(struct dec *d)
{
    decode_at(d, 0, emitted());
}

static ZydisRegister zreg(unsigned size, unsigned r)
{
    assert_true(r < 16);
    switch (size) {
    case 1: return k_gpr8[r];
    case 2: return k_gpr16[r];
    case 4: return k_gpr32[r];
    default: return k_gpr64[r];
    }
}

static void expect_reg(const ZydisDecodedOperand *op, unsigned size, unsigned r)
{
    assert_int_equal(op->type, ZYDIS_OPERAND_TYPE_REGISTER);
    assert_int_equal(op->reg.value, zreg(size, r));
    assert_int_equal(op->size, size * 8);
}

/* size 0: the operand's size is not checked (LEA, JMP m64). */
static void expect_mem(const struct dec *d, const ZydisDecodedOperand *op, unsigned size, struct rec_mem m)
{
    unsigned disp_bits;

    assert_int_equal(op->type, ZYDIS_OPERAND_TYPE_MEMORY);
    if (size)
        assert_int_equal(op->size, size * 8);
    assert_int_equal(op->mem.base, m.base == RX_NONE ? ZYDIS_REGISTER_NONE : k_gpr64[m.base]);
    assert_int_equal(op->mem.index, m.index == RX_NONE ? ZYDIS_REGISTER_NONE : k_gpr64[m.index]);
    assert_int_equal(op->mem.scale, m.index == RX_NONE ? 0 : m.scale);
    assert_int_equal(op->mem.disp.value, m.disp);
    /* The shortest displacement: none, disp8, or disp32 (always disp32 without a base). */
    if (m.base == RX_NONE)
        disp_bits = 32;
    else if (m.disp == 0 && (m.base & 7) != RX_RBP)
        disp_bits = 0;
    else if (m.disp >= -128 && m.disp <= 127)
        disp_bits = 8;
    else
        disp_bits = 32;
    assert_int_equal(d->in.raw.disp.size, disp_bits);
}

/* The immediate as the instruction uses it: compared at the instruction's operand width. */
static void expect_imm(const struct dec *d, const ZydisDecodedOperand *op, uint64_t value)
{
    unsigned w = d->in.operand_width;
    uint64_t mask = w >= 64 ? UINT64_MAX : (UINT64_C(1) << w) - 1;

    assert_int_equal(op->type, ZYDIS_OPERAND_TYPE_IMMEDIATE);
    assert_int_equal(op->imm.value.u & mask, value & mask);
}

static bool has_rex(const struct dec *d)
{
    return (d->in.attributes & ZYDIS_ATTRIB_HAS_REX) != 0;
}

static bool byte_hi(unsigned size, unsigned r)
{
    return size == 1 && r >= 4 && r <= 7;
}

/* A set of memory operands: every base (and none) with every displacement class, and every
 * base with every legal index (RSP excluded, R12 included) and all four scales. */
static size_t mem_cases(struct rec_mem *out, size_t max)
{
    size_t n = 0;
    size_t nd = sizeof(k_disps) / sizeof(k_disps[0]);

    for (unsigned base = 0; base <= 16; base++) {
        enum rec_reg br = base == 16 ? RX_NONE : (enum rec_reg)base;
        for (size_t i = 0; i < nd; i++) {
            assert_true(n < max);
            out[n++] = rx_mem(br, k_disps[i]);
        }
        for (unsigned index = 0; index < 16; index++) {
            if (index == RX_RSP)
                continue;
            assert_true(n < max);
            out[n++] = rx_mem_idx(br, (enum rec_reg)index, 1u << ((base + index) & 3),
                                  k_disps[(base * 3 + index) % nd]);
        }
    }
    return n;
}

static struct rec_mem g_mems[512];
static size_t g_nmems;

static int group_setup(void **state)
{
    if (!ZYAN_SUCCESS(ZydisDecoderInit(&g_dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)))
        return -1;
    g_nmems = mem_cases(g_mems, sizeof(g_mems) / sizeof(g_mems[0]));
    return 0;
}

/* ---- Moves ---------------------------------------------------------------------------------- */

static void test_mov_rr(void **state)
{
    struct dec d;

    for (unsigned s = 0; s < 4; s++) {
        unsigned size = k_sizes[s];
        for (unsigned dst = 0; dst < 16; dst++) {
            for (unsigned src = 0; src < 16; src++) {
                rx_mov_rr(fresh(), size, dst, src);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_MOV);
                expect_reg(&d.op[0], size, dst);
                expect_reg(&d.op[1], size, src);
                /* A REX only where one is needed: W, an extended register, SPL..DIL. */
                assert_int_equal(has_rex(&d), size == 8 || dst >= 8 || src >= 8 ||
                                 byte_hi(size, dst) || byte_hi(size, src));
                assert_int_equal(d.in.raw.prefix_count, (size == 2) + has_rex(&d));
            }
        }
    }
}

static void test_mov_ri(void **state)
{
    static const uint64_t imms[] = {
        0, 1, 0x7fffffff, 0x80000000, 0xffffffff, UINT64_C(0x100000000), UINT64_C(0xffffffff80000000),
        UINT64_MAX, UINT64_C(0x123456789abcdef0), UINT64_C(0x8000000000000000), UINT64_C(0xfffffffe00000000),
    };
    struct dec d;

    for (unsigned r = 0; r < 16; r++) {
        for (size_t i = 0; i < sizeof(imms) / sizeof(imms[0]); i++) {
            for (unsigned size = 4; size <= 8; size += 4) {
                uint64_t want = size == 4 ? (uint32_t)imms[i] : imms[i];
                int64_t sv = (int64_t)want;
                size_t len;
                uint64_t got;

                rx_mov_ri(fresh(), size, r, imms[i]);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_MOV);
                /* What the register holds afterwards: a 32-bit MOV zero-extends. */
                got = d.op[1].imm.value.u;
                if (d.in.operand_width == 32) {
                    expect_reg(&d.op[0], 4, r);
                    got &= UINT32_MAX;
                } else {
                    expect_reg(&d.op[0], 8, r);
                }
                assert_int_equal(got, want);
                /* Shortest: B8+r id (5, REX.B 6), REX.W C7 /0 id (7), REX.W B8+r io (10). */
                if (want <= UINT32_MAX)
                    len = 5 + (r >= 8);
                else if (sv >= INT32_MIN && sv <= INT32_MAX)
                    len = 7;
                else
                    len = 10;
                assert_int_equal(emitted(), len);
            }
        }
    }
}

static void test_load_store(void **state)
{
    struct dec d;

    for (size_t i = 0; i < g_nmems; i++) {
        struct rec_mem m = g_mems[i];
        for (unsigned s = 0; s < 4; s++) {
            unsigned size = k_sizes[s];
            unsigned r = (unsigned)(i + s * 5) % 16;
            int32_t imm = k_imms[(i + s) % (sizeof(k_imms) / sizeof(k_imms[0]))];
            bool ext = (m.base != RX_NONE && m.base >= 8) || (m.index != RX_NONE && m.index >= 8);

            rx_load(fresh(), size, r, m);
            decode(&d);
            assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_MOV);
            expect_reg(&d.op[0], size, r);
            expect_mem(&d, &d.op[1], size, m);
            assert_int_equal(has_rex(&d), size == 8 || r >= 8 || ext || byte_hi(size, r));

            rx_store(fresh(), size, m, r);
            decode(&d);
            assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_MOV);
            expect_mem(&d, &d.op[0], size, m);
            expect_reg(&d.op[1], size, r);

            rx_store_imm(fresh(), size, m, imm);
            decode(&d);
            assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_MOV);
            expect_mem(&d, &d.op[0], size, m);
            expect_imm(&d, &d.op[1], (uint64_t)(int64_t)imm);
            assert_int_equal(d.in.raw.imm[0].size, size == 8 ? 32 : size * 8);
        }
    }
}

static void test_extend(void **state)
{
    static const struct { unsigned dsize, ssize; } pairs[] = {
        { 2, 1 }, { 4, 1 }, { 8, 1 }, { 4, 2 }, { 8, 2 }, { 8, 4 },
    };
    struct dec d;

    for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++) {
        unsigned ds = pairs[p].dsize, ss = pairs[p].ssize;
        bool dword = ss == 4;
        for (unsigned dst = 0; dst < 16; dst++) {
            for (unsigned src = 0; src < 16; src++) {
                rx_movzx_rr(fresh(), ds, ss, dst, src);
                decode(&d);
                if (dword) {
                    /* Zero-extending a dword is a 32-bit MOV. */
                    assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_MOV);
                    expect_reg(&d.op[0], 4, dst);
                } else {
                    assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_MOVZX);
                    expect_reg(&d.op[0], ds, dst);
                }
                expect_reg(&d.op[1], ss, src);

                rx_movsx_rr(fresh(), ds, ss, dst, src);
                decode(&d);
                assert_int_equal(d.in.mnemonic, dword ? ZYDIS_MNEMONIC_MOVSXD : ZYDIS_MNEMONIC_MOVSX);
                expect_reg(&d.op[0], ds, dst);
                expect_reg(&d.op[1], ss, src);
            }
        }
        for (size_t i = p; i < g_nmems; i += 3) {
            unsigned dst = (unsigned)i % 16;
            rx_movzx_load(fresh(), ds, ss, dst, g_mems[i]);
            decode(&d);
            assert_int_equal(d.in.mnemonic, dword ? ZYDIS_MNEMONIC_MOV : ZYDIS_MNEMONIC_MOVZX);
            expect_reg(&d.op[0], dword ? 4 : ds, dst);
            expect_mem(&d, &d.op[1], ss, g_mems[i]);

            rx_movsx_load(fresh(), ds, ss, dst, g_mems[i]);
            decode(&d);
            assert_int_equal(d.in.mnemonic, dword ? ZYDIS_MNEMONIC_MOVSXD : ZYDIS_MNEMONIC_MOVSX);
            expect_reg(&d.op[0], ds, dst);
            expect_mem(&d, &d.op[1], ss, g_mems[i]);
        }
    }
}

static void test_lea_xchg_bswap(void **state)
{
    struct dec d;

    for (size_t i = 0; i < g_nmems; i++) {
        unsigned size = 2u << (i % 3);
        unsigned r = (unsigned)(i * 7) % 16;
        rx_lea(fresh(), size, r, g_mems[i]);
        decode(&d);
        assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_LEA);
        expect_reg(&d.op[0], size, r);
        expect_mem(&d, &d.op[1], 0, g_mems[i]);
    }
    for (unsigned s = 0; s < 4; s++) {
        unsigned size = k_sizes[s];
        for (unsigned a = 0; a < 16; a++) {
            for (unsigned c = 0; c < 16; c++) {
                rx_xchg_rr(fresh(), size, a, c);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_XCHG);
                /* Never the 90+r short form: 90 is NOP in 64-bit mode. */
                assert_int_equal(d.in.opcode, size == 1 ? 0x86 : 0x87);
                expect_reg(&d.op[0], size, a);
                expect_reg(&d.op[1], size, c);
            }
        }
    }
    for (unsigned r = 0; r < 16; r++) {
        for (unsigned size = 4; size <= 8; size += 4) {
            rx_bswap(fresh(), size, r);
            decode(&d);
            assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_BSWAP);
            expect_reg(&d.op[0], size, r);
        }
    }
}

/* ---- Arithmetic and logic --------------------------------------------------------------------- */

static void test_alu_rr(void **state)
{
    struct dec d;

    for (unsigned op = 0; op < 8; op++) {
        for (unsigned s = 0; s < 4; s++) {
            unsigned size = k_sizes[s];
            for (unsigned dst = 0; dst < 16; dst++) {
                for (unsigned src = 0; src < 16; src++) {
                    rx_alu_rr(fresh(), op, size, dst, src);
                    decode(&d);
                    assert_int_equal(d.in.mnemonic, k_alu_mn[op]);
                    expect_reg(&d.op[0], size, dst);
                    expect_reg(&d.op[1], size, src);
                }
            }
        }
    }
}

/* The immediate field an ALU op must use: imm8 for bytes and values that fit, else iw/id. */
static unsigned alu_imm_bits(unsigned size, int32_t imm)
{
    int32_t v = size == 2 ? (int16_t)imm : imm;

    if (size == 1 || (v >= -128 && v <= 127))
        return 8;
    return size == 2 ? 16 : 32;
}

static void test_alu_ri(void **state)
{
    struct dec d;

    for (unsigned op = 0; op < 8; op++) {
        for (unsigned s = 0; s < 4; s++) {
            unsigned size = k_sizes[s];
            for (unsigned r = 0; r < 16; r++) {
                for (size_t i = 0; i < sizeof(k_imms) / sizeof(k_imms[0]); i++) {
                    int32_t imm = k_imms[i];
                    unsigned bits = alu_imm_bits(size, imm);

                    rx_alu_ri(fresh(), op, size, r, imm);
                    decode(&d);
                    assert_int_equal(d.in.mnemonic, k_alu_mn[op]);
                    expect_reg(&d.op[0], size, r);
                    expect_imm(&d, &d.op[1], (uint64_t)(int64_t)imm);
                    assert_int_equal(d.in.raw.imm[0].size, bits);
                    /* The accumulator forms are a byte shorter than 80/81 /op. */
                    if (r == RX_RAX && size == 1)
                        assert_int_equal(d.in.opcode, op * 8 + 4);
                    else if (r == RX_RAX && bits > 8)
                        assert_int_equal(d.in.opcode, op * 8 + 5);
                    else
                        assert_int_equal(d.in.opcode, size == 1 ? 0x80 : bits == 8 ? 0x83 : 0x81);
                }
            }
        }
    }
}

static void test_alu_mem(void **state)
{
    struct dec d;
    size_t nimm = sizeof(k_imms) / sizeof(k_imms[0]);

    for (size_t i = 0; i < g_nmems; i++) {
        struct rec_mem m = g_mems[i];
        for (unsigned s = 0; s < 4; s++) {
            unsigned size = k_sizes[s];
            unsigned op = (unsigned)(i + s) % 8;
            unsigned r = (unsigned)(i * 5 + s) % 16;
            int32_t imm = k_imms[(i * 3 + s) % nimm];

            rx_alu_rm(fresh(), op, size, r, m);
            decode(&d);
            assert_int_equal(d.in.mnemonic, k_alu_mn[op]);
            expect_reg(&d.op[0], size, r);
            expect_mem(&d, &d.op[1], size, m);

            rx_alu_mr(fresh(), op, size, m, r);
            decode(&d);
            assert_int_equal(d.in.mnemonic, k_alu_mn[op]);
            expect_mem(&d, &d.op[0], size, m);
            expect_reg(&d.op[1], size, r);

            rx_alu_mi(fresh(), op, size, m, imm);
            decode(&d);
            assert_int_equal(d.in.mnemonic, k_alu_mn[op]);
            expect_mem(&d, &d.op[0], size, m);
            expect_imm(&d, &d.op[1], (uint64_t)(int64_t)imm);
            assert_int_equal(d.in.raw.imm[0].size, alu_imm_bits(size, imm));

            rx_test_mi(fresh(), size, m, imm);
            decode(&d);
            assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_TEST);
            expect_mem(&d, &d.op[0], size, m);
            expect_imm(&d, &d.op[1], (uint64_t)(int64_t)imm);

            rx_test_mr(fresh(), size, m, r);
            decode(&d);
            assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_TEST);
            expect_mem(&d, &d.op[0], size, m);
            expect_reg(&d.op[1], size, r);

            if (size > 1) {
                /* BT m, imm8 (the recompiler's CF-only flags load): BT, BTS, BTR, BTC in turn. */
                static const ZydisMnemonic bt_mi_mn[4] = {
                    ZYDIS_MNEMONIC_BT, ZYDIS_MNEMONIC_BTS, ZYDIS_MNEMONIC_BTR, ZYDIS_MNEMONIC_BTC,
                };
                unsigned bop = 4 + (unsigned)(i + s) % 4;
                uint8_t bit = (uint8_t)(i % 64);
                rx_bt_mi(fresh(), bop, size, m, bit);
                decode(&d);
                assert_int_equal(d.in.mnemonic, bt_mi_mn[bop - 4]);
                expect_mem(&d, &d.op[0], size, m);
                expect_imm(&d, &d.op[1], bit);
            }
        }
    }
}

static void test_test(void **state)
{
    struct dec d;

    for (unsigned s = 0; s < 4; s++) {
        unsigned size = k_sizes[s];
        for (unsigned a = 0; a < 16; a++) {
            for (unsigned c = 0; c < 16; c++) {
                rx_test_rr(fresh(), size, a, c);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_TEST);
                expect_reg(&d.op[0], size, a);
                expect_reg(&d.op[1], size, c);
            }
            for (size_t i = 0; i < sizeof(k_imms) / sizeof(k_imms[0]); i++) {
                rx_test_ri(fresh(), size, a, k_imms[i]);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_TEST);
                expect_reg(&d.op[0], size, a);
                expect_imm(&d, &d.op[1], (uint64_t)(int64_t)k_imms[i]);
                /* TEST keeps its operand size (a narrower one would change SF). */
                assert_int_equal(d.in.operand_width, size * 8);
                assert_int_equal(d.in.raw.imm[0].size, size == 8 ? 32 : size * 8);
            }
        }
    }
}

static void test_shift(void **state)
{
    static const uint8_t counts[] = { 0, 1, 2, 7, 31, 63 };
    struct dec d;

    for (unsigned op = 0; op < 8; op++) {
        for (unsigned s = 0; s < 4; s++) {
            unsigned size = k_sizes[s];
            for (unsigned r = 0; r < 16; r++) {
                for (size_t i = 0; i < sizeof(counts); i++) {
                    rx_shift_ri(fresh(), op, size, r, counts[i]);
                    decode(&d);
                    assert_int_equal(d.in.mnemonic, k_shift_mn[op]);
                    expect_reg(&d.op[0], size, r);
                    expect_imm(&d, &d.op[1], counts[i]);
                    if (counts[i] == 1)
                        assert_int_equal(d.in.opcode, size == 1 ? 0xd0 : 0xd1);
                    else
                        assert_int_equal(d.in.opcode, size == 1 ? 0xc0 : 0xc1);
                    /* SAL uses the documented /4, never /6. */
                    assert_int_equal(d.in.raw.modrm.reg, op == RX_SAL ? 4 : op);
                }
                rx_shift_rcl(fresh(), op, size, r);
                decode(&d);
                assert_int_equal(d.in.mnemonic, k_shift_mn[op]);
                expect_reg(&d.op[0], size, r);
                expect_reg(&d.op[1], 1, RX_RCX);
            }
        }
    }
}

static void test_double_shift(void **state)
{
    struct dec d;

    for (unsigned size = 2; size <= 8; size *= 2) {
        for (unsigned dst = 0; dst < 16; dst++) {
            for (unsigned src = 0; src < 16; src++) {
                uint8_t count = (uint8_t)(dst + src);

                rx_shld_ri(fresh(), size, dst, src, count);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_SHLD);
                expect_reg(&d.op[0], size, dst);
                expect_reg(&d.op[1], size, src);
                expect_imm(&d, &d.op[2], count);

                rx_shrd_ri(fresh(), size, dst, src, count);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_SHRD);
                expect_reg(&d.op[0], size, dst);
                expect_reg(&d.op[1], size, src);
                expect_imm(&d, &d.op[2], count);

                rx_shld_rcl(fresh(), size, dst, src);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_SHLD);
                expect_reg(&d.op[0], size, dst);
                expect_reg(&d.op[1], size, src);
                expect_reg(&d.op[2], 1, RX_RCX);

                rx_shrd_rcl(fresh(), size, dst, src);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_SHRD);
                expect_reg(&d.op[0], size, dst);
                expect_reg(&d.op[1], size, src);
                expect_reg(&d.op[2], 1, RX_RCX);
            }
        }
    }
}

static void test_unary(void **state)
{
    static void (*const fns[])(struct rec_buf *, unsigned, enum rec_reg) = {
        rx_inc, rx_dec, rx_neg, rx_not, rx_mul, rx_imul1, rx_div, rx_idiv,
    };
    static const ZydisMnemonic mns[] = {
        ZYDIS_MNEMONIC_INC, ZYDIS_MNEMONIC_DEC, ZYDIS_MNEMONIC_NEG, ZYDIS_MNEMONIC_NOT,
        ZYDIS_MNEMONIC_MUL, ZYDIS_MNEMONIC_IMUL, ZYDIS_MNEMONIC_DIV, ZYDIS_MNEMONIC_IDIV,
    };
    struct dec d;

    for (size_t f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
        for (unsigned s = 0; s < 4; s++) {
            for (unsigned r = 0; r < 16; r++) {
                fns[f](fresh(), k_sizes[s], r);
                decode(&d);
                assert_int_equal(d.in.mnemonic, mns[f]);
                assert_int_equal(d.in.operand_count_visible, 1);
                expect_reg(&d.op[0], k_sizes[s], r);
            }
        }
    }
}

static void test_imul(void **state)
{
    struct dec d;

    for (unsigned size = 2; size <= 8; size *= 2) {
        for (unsigned dst = 0; dst < 16; dst++) {
            for (unsigned src = 0; src < 16; src++) {
                int32_t imm = k_imms[(dst + src) % (sizeof(k_imms) / sizeof(k_imms[0]))];

                rx_imul_rr(fresh(), size, dst, src);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_IMUL);
                expect_reg(&d.op[0], size, dst);
                expect_reg(&d.op[1], size, src);

                rx_imul_rri(fresh(), size, dst, src, imm);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_IMUL);
                expect_reg(&d.op[0], size, dst);
                expect_reg(&d.op[1], size, src);
                expect_imm(&d, &d.op[2], (uint64_t)(int64_t)imm);
                assert_int_equal(d.in.raw.imm[0].size, alu_imm_bits(size, imm));
            }
        }
    }
}

static void test_bits(void **state)
{
    static const ZydisMnemonic bt_mn[4] = {
        ZYDIS_MNEMONIC_BT, ZYDIS_MNEMONIC_BTS, ZYDIS_MNEMONIC_BTR, ZYDIS_MNEMONIC_BTC,
    };
    struct dec d;

    for (unsigned size = 2; size <= 8; size *= 2) {
        for (unsigned a = 0; a < 16; a++) {
            for (unsigned c = 0; c < 16; c++) {
                for (unsigned op = 4; op <= 7; op++) {
                    rx_bt_rr(fresh(), op, size, a, c);
                    decode(&d);
                    assert_int_equal(d.in.mnemonic, bt_mn[op - 4]);
                    expect_reg(&d.op[0], size, a);
                    expect_reg(&d.op[1], size, c);
                }
                rx_bsf(fresh(), size, a, c);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_BSF);
                expect_reg(&d.op[0], size, a);
                expect_reg(&d.op[1], size, c);

                rx_bsr(fresh(), size, a, c);
                decode(&d);
                assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_BSR);
                expect_reg(&d.op[0], size, a);
                expect_reg(&d.op[1], size, c);
            }
            for (unsigned op = 4; op <= 7; op++) {
                uint8_t bit = (uint8_t)(a * 4 + op);
                rx_bt_ri(fresh(), op, size, a, bit);
                decode(&d);
                assert_int_equal(d.in.mnemonic, bt_mn[op - 4]);
                expect_reg(&d.op[0], size, a);
                expect_imm(&d, &d.op[1], bit);
            }
        }
    }
}

/* ---- Flags and conditions --------------------------------------------------------------------- */

static void test_cc(void **state)
{
    struct dec d;

    for (unsigned cc = 0; cc < 16; cc++) {
        for (unsigned r = 0; r < 16; r++) {
            rx_setcc(fresh(), cc, r);
            decode(&d);
            assert_int_equal(d.in.mnemonic, k_setcc_mn[cc]);
            expect_reg(&d.op[0], 1, r);
            for (unsigned size = 2; size <= 8; size *= 2) {
                unsigned src = (r * 3 + cc) % 16;
                rx_cmov(fresh(), cc, size, r, src);
                decode(&d);
                assert_int_equal(d.in.mnemonic, k_cmov_mn[cc]);
                expect_reg(&d.op[0], size, r);
                expect_reg(&d.op[1], size, src);
            }
        }
    }
}

static void test_flag_ops(void **state)
{
    static void (*const fns[])(struct rec_buf *) = {
        rx_lahf, rx_sahf, rx_pushfq, rx_popfq, rx_cmc, rx_clc, rx_stc, rx_ret,
    };
    static const ZydisMnemonic mns[] = {
        ZYDIS_MNEMONIC_LAHF, ZYDIS_MNEMONIC_SAHF, ZYDIS_MNEMONIC_PUSHFQ, ZYDIS_MNEMONIC_POPFQ,
        ZYDIS_MNEMONIC_CMC, ZYDIS_MNEMONIC_CLC, ZYDIS_MNEMONIC_STC, ZYDIS_MNEMONIC_RET,
    };
    struct dec d;

    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        fns[i](fresh());
        decode(&d);
        assert_int_equal(d.in.mnemonic, mns[i]);
        assert_int_equal(d.in.length, 1);
    }
}

/* ---- Control flow ------------------------------------------------------------------------------ */

/* The absolute target of a decoded relative branch that ran at exec. */
static uint64_t branch_target(const struct dec *d, uintptr_t exec)
{
    ZyanU64 target = 0;

    assert_true(ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&d->in, &d->op[0], exec, &target)));
    return target;
}

static void test_branches(void **state)
{
    /* A fake code area: written at g_buf, run (never here) at a distant address. */
    struct rec_code far_code = { g_buf, (uint8_t *)(uintptr_t)UINT64_C(0x100000000000), sizeof(g_buf), -1 };
    const uint8_t *near_rw = g_buf + 40;
    struct dec d;
    uint8_t *at;

    for (unsigned cc = 0; cc < 16; cc++) {
        const void *targets[] = { near_rw, g_buf, (const void *)((uintptr_t)g_buf - 0x10000000) };
        for (size_t t = 0; t < 3; t++) {
            at = rx_jcc32(fresh(), NULL, cc, targets[t]);
            decode(&d);
            assert_int_equal(d.in.mnemonic, k_jcc_mn[cc]);
            assert_int_equal(d.in.raw.imm[0].size, 32);
            assert_ptr_equal(at, g_buf + 2);
            assert_int_equal(branch_target(&d, (uintptr_t)g_buf), (uintptr_t)targets[t]);
        }
        /* Through a code area the displacement is relative to the executable address. */
        at = rx_jcc32(fresh(), &far_code, cc, far_code.rx + 0x1234);
        decode(&d);
        assert_int_equal(branch_target(&d, (uintptr_t)far_code.rx), (uintptr_t)far_code.rx + 0x1234);
        assert_ptr_equal(at, g_buf + 2);

        at = rx_jcc8(fresh(), cc);
        assert_ptr_equal(at, g_buf + 1);
        rx_bytes(&g_b, "\x90\x90\x90", 3);
        rx_bind8(&g_b, at);
        decode_at(&d, 0, 2);
        assert_int_equal(d.in.mnemonic, k_jcc_mn[cc]);
        assert_int_equal(branch_target(&d, (uintptr_t)g_buf), (uintptr_t)g_buf + 5);
    }

    at = rx_jmp32(fresh(), &far_code, far_code.rx - 0x100);
    decode(&d);
    assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_JMP);
    assert_ptr_equal(at, g_buf + 1);
    assert_int_equal(branch_target(&d, (uintptr_t)far_code.rx), (uintptr_t)far_code.rx - 0x100);

    at = rx_jmp8(fresh());
    assert_ptr_equal(at, g_buf + 1);
    rx_ret(&g_b);
    rx_bind8(&g_b, at);
    decode_at(&d, 0, 2);
    assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_JMP);
    assert_int_equal(branch_target(&d, (uintptr_t)g_buf), (uintptr_t)g_buf + 3);

    at = rx_jmp32(fresh(), NULL, g_buf);
    rx_bytes(&g_b, "\xcc\xcc", 2);
    rx_bind32(&g_b, at);
    decode_at(&d, 0, 5);
    assert_int_equal(branch_target(&d, (uintptr_t)g_buf), (uintptr_t)g_buf + 7);

    /* rx_patch_rel32 retargets a branch, relative to the executable view. */
    at = rx_jcc32(fresh(), &far_code, RX_CC_E, far_code.rx);
    rx_patch_rel32(&far_code, at, far_code.rx + 0x7000);
    decode(&d);
    assert_int_equal(branch_target(&d, (uintptr_t)far_code.rx), (uintptr_t)far_code.rx + 0x7000);

    /* CALL rel32 when the executable address is in reach ... */
    rx_call(fresh(), &far_code, far_code.rx + 0x800);
    decode(&d);
    assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_CALL);
    assert_int_equal(emitted(), 5);
    assert_int_equal(branch_target(&d, (uintptr_t)far_code.rx), (uintptr_t)far_code.rx + 0x800);
    /* ... and MOV RAX, imm64; CALL RAX when not, even if the writable view is near. */
    rx_call(fresh(), &far_code, near_rw);
    assert_int_equal(emitted(), 12);
    decode_at(&d, 0, 10);
    assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_MOV);
    expect_reg(&d.op[0], 8, RX_RAX);
    expect_imm(&d, &d.op[1], (uintptr_t)near_rw);
    decode_at(&d, 10, 12);
    assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_CALL);
    expect_reg(&d.op[0], 8, RX_RAX);
    /* Without a code area the buffer's own address is the executable one. */
    rx_call(fresh(), NULL, near_rw);
    decode(&d);
    assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_CALL);
    assert_int_equal(branch_target(&d, (uintptr_t)g_buf), (uintptr_t)near_rw);

    for (unsigned r = 0; r < 16; r++) {
        rx_jmp_reg(fresh(), r);
        decode(&d);
        assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_JMP);
        expect_reg(&d.op[0], 8, r);
        rx_call_reg(fresh(), r);
        decode(&d);
        assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_CALL);
        expect_reg(&d.op[0], 8, r);
        rx_push(fresh(), r);
        decode(&d);
        assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_PUSH);
        expect_reg(&d.op[0], 8, r);
        assert_int_equal(emitted(), 1 + (r >= 8));
        rx_pop(fresh(), r);
        decode(&d);
        assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_POP);
        expect_reg(&d.op[0], 8, r);
    }
    for (size_t i = 0; i < g_nmems; i++) {
        rx_jmp_mem(fresh(), g_mems[i]);
        decode(&d);
        assert_int_equal(d.in.mnemonic, ZYDIS_MNEMONIC_JMP);
        expect_mem(&d, &d.op[0], 8, g_mems[i]);
    }
}

/* ---- Overflow and caller bugs -------------------------------------------------------------------- */

static bool untouched(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0xcc)
            return false;
    }
    return true;
}

static void test_overflow(void **state)
{
    uint8_t small[8];
    struct rec_buf b;

    memset(small, 0xcc, sizeof(small));
    rec_buf_init(&b, small, small + 4);
    rx_mov_ri(&b, 8, RX_RAX, UINT64_C(0x123456789abcdef0));
    assert_true(b.overflow);
    assert_ptr_equal(b.p, small);
    /* Sticky: even a one-byte instruction is refused now. */
    rx_ret(&b);
    rx_bytes(&b, "\x90", 1);
    rx_alu_rr(&b, RX_ADD, 4, RX_RAX, RX_RCX);
    assert_null(rx_jcc32(&b, NULL, RX_CC_E, small));
    assert_null(rx_jmp32(&b, NULL, small));
    assert_null(rx_jcc8(&b, RX_CC_E));
    assert_null(rx_jmp8(&b));
    rx_bind8(&b, small + 1);
    assert_ptr_equal(b.p, small);
    assert_true(untouched(small, sizeof(small)));

    /* An instruction that just fits is written; the next one is not. */
    rec_buf_init(&b, small, small + 4);
    rx_ret(&b);
    rx_alu_ri(&b, RX_ADD, 4, RX_RCX, 1);                /* 83 C1 01 */
    assert_false(b.overflow);
    assert_ptr_equal(b.p, small + 4);
    assert_memory_equal(small, "\xc3\x83\xc1\x01", 4);
    rx_ret(&b);
    assert_true(b.overflow);
    assert_ptr_equal(b.p, small + 4);
    assert_true(untouched(small + 4, 4));

    /* A branch that does not fit returns NULL and writes nothing. */
    memset(small, 0xcc, sizeof(small));
    rec_buf_init(&b, small, small + 5);
    assert_null(rx_jcc32(&b, NULL, RX_CC_NE, small));
    assert_true(b.overflow);
    assert_true(untouched(small, sizeof(small)));

    rec_buf_init(&b, small, small + 4);
    rx_bytes(&b, "\x90\x90\x90\x90\x90", 5);
    assert_true(b.overflow);
    assert_true(untouched(small, sizeof(small)));
}

static void test_caller_bugs(void **state)
{
    struct rec_code far_code = { g_buf, (uint8_t *)(uintptr_t)UINT64_C(0x100000000000), sizeof(g_buf), -1 };
    uint8_t *at;

    /* RSP cannot be an index: refused like an overflow, nothing written. */
    rx_load(fresh(), 8, RX_RAX, rx_mem_idx(RX_RBX, RX_RSP, 1, 0));
    assert_true(g_b.overflow);
    assert_int_equal(emitted(), 0);
    rx_lea(fresh(), 8, RX_RAX, rx_mem_idx(RX_NONE, RX_RSP, 2, 8));
    assert_true(g_b.overflow);
    rx_load(fresh(), 8, RX_RAX, rx_mem_idx(RX_RBX, RX_RCX, 3, 0));
    assert_true(g_b.overflow);
    rx_alu_rr(fresh(), RX_ADD, 3, RX_RAX, RX_RCX);
    assert_true(g_b.overflow);
    rx_mov_ri(fresh(), 2, RX_RAX, 1);
    assert_true(g_b.overflow);
    rx_mov_rr(fresh(), 8, RX_NONE, RX_RAX);
    assert_true(g_b.overflow);
    rx_movzx_rr(fresh(), 2, 2, RX_RAX, RX_RCX);
    assert_true(g_b.overflow);
    rx_bt_ri(fresh(), 3, 4, RX_RAX, 1);
    assert_true(g_b.overflow);
    assert_true(untouched(g_buf, sizeof(g_buf)));

    /* A jump whose target is out of rel32 reach. */
    assert_null(rx_jmp32(fresh(), &far_code, g_buf));
    assert_true(g_b.overflow);
    assert_int_equal(emitted(), 0);

    /* A short label reaches 127 bytes, not 128. */
    {
        uint8_t big[320];
        struct rec_buf b;

        memset(big, 0xcc, sizeof(big));
        rec_buf_init(&b, big, big + sizeof(big));
        at = rx_jcc8(&b, RX_CC_E);
        for (int i = 0; i < 127; i++)
            rx_bytes(&b, "\x90", 1);
        rx_bind8(&b, at);
        assert_false(b.overflow);
        assert_int_equal(*at, 127);
        at = rx_jmp8(&b);
        for (int i = 0; i < 128; i++)
            rx_bytes(&b, "\x90", 1);
        rx_bind8(&b, at);
        assert_true(b.overflow);
        assert_int_equal(*at, 0);
    }
}

/* ---- Execution in a code area ------------------------------------------------------------------ */

static uint64_t helper_3x1(uint64_t x)
{
    return x * 3 + 1;
}

typedef uint64_t (*fn1_t)(uint64_t);
typedef uint64_t (*fn2_t)(uint64_t, uint64_t);

static void *exec_of(const struct rec_code *c, const uint8_t *rw)
{
    return rec_code_exec(c, rw);
}

static void test_exec(void **state)
{
    struct rec_code c;
    struct rec_buf b;
    uint8_t *f, *top, *at, *j1, *j2, *ret_one, *ret_big;

    assert_int_equal(rec_code_init(&c, 16384), 0);
    rec_buf_init(&b, c.rw, c.rw + c.size);

    /* add(a, b) = a + b */
    f = b.p;
    rx_mov_rr(&b, 8, RX_RAX, RX_RDI);
    rx_alu_rr(&b, RX_ADD, 8, RX_RAX, RX_RSI);
    rx_ret(&b);
    assert_int_equal(((fn2_t)exec_of(&c, f))(40, 2), 42);
    assert_int_equal(((fn2_t)exec_of(&c, f))(UINT64_MAX, 5), 4);

    /* sum(n) = n + (n - 1) + ... + 1, a backward jcc32 */
    f = b.p;
    rx_mov_ri(&b, 4, RX_RAX, 0);
    rx_mov_rr(&b, 8, RX_R9, RX_RDI);
    top = b.p;
    rx_alu_rr(&b, RX_ADD, 8, RX_RAX, RX_R9);
    rx_dec(&b, 8, RX_R9);
    assert_non_null(rx_jcc32(&b, &c, RX_CC_NE, exec_of(&c, top)));
    rx_ret(&b);
    assert_int_equal(((fn1_t)exec_of(&c, f))(100), 5050);
    assert_int_equal(((fn1_t)exec_of(&c, f))(1), 1);

    /* f(x) = helper(x) + x through rx_call (RBX keeps x; the push aligns the stack). */
    f = b.p;
    rx_push(&b, RX_RBX);
    rx_mov_rr(&b, 8, RX_RBX, RX_RDI);
    at = b.p;
    rx_call(&b, &c, (const void *)(uintptr_t)helper_3x1);
    {
        int64_t dist = (int64_t)((uintptr_t)helper_3x1 - ((uintptr_t)exec_of(&c, at) + 5));
        bool near = dist >= INT32_MIN && dist <= INT32_MAX;
        assert_int_equal(at[0], near ? 0xe8 : 0x48);
    }
    rx_alu_rr(&b, RX_ADD, 8, RX_RAX, RX_RBX);
    rx_pop(&b, RX_RBX);
    rx_ret(&b);
    assert_int_equal(((fn1_t)exec_of(&c, f))(10), 41);

    /* An in-area call is always a CALL rel32. */
    top = b.p;
    rx_lea(&b, 8, RX_RAX, rx_mem_idx(RX_RDI, RX_RDI, 4, 7));
    rx_ret(&b);
    f = b.p;
    rx_call(&b, &c, exec_of(&c, top));
    assert_int_equal(f[0], 0xe8);
    rx_alu_ri(&b, RX_SUB, 8, RX_RAX, 1);
    rx_ret(&b);
    assert_int_equal(((fn1_t)exec_of(&c, f))(3), 21);

    /* rx_patch_rel32 retargets a jump between two small functions. */
    ret_one = b.p;
    rx_mov_ri(&b, 4, RX_RAX, 1);
    rx_ret(&b);
    ret_big = b.p;
    rx_mov_ri(&b, 8, RX_RAX, UINT64_C(0xfedcba9876543210));
    rx_ret(&b);
    f = b.p;
    at = rx_jmp32(&b, &c, exec_of(&c, f));
    assert_non_null(at);
    rx_patch_rel32(&c, at, exec_of(&c, ret_one));
    assert_int_equal(((fn1_t)exec_of(&c, f))(0), 1);
    rx_patch_rel32(&c, at, exec_of(&c, ret_big));
    assert_int_equal(((fn1_t)exec_of(&c, f))(0), UINT64_C(0xfedcba9876543210));

    /* max(a, b), signed, with a forward jcc8 label */
    f = b.p;
    rx_mov_rr(&b, 8, RX_RAX, RX_RDI);
    rx_alu_rr(&b, RX_CMP, 8, RX_RDI, RX_RSI);
    j1 = rx_jcc8(&b, RX_CC_GE);
    rx_mov_rr(&b, 8, RX_RAX, RX_RSI);
    rx_bind8(&b, j1);
    rx_ret(&b);
    assert_int_equal(((fn2_t)exec_of(&c, f))(3, 5), 5);
    assert_int_equal(((fn2_t)exec_of(&c, f))(5, 3), 5);
    assert_int_equal(((fn2_t)exec_of(&c, f))((uint64_t)-1, (uint64_t)-7), (uint64_t)-1);

    /* pick(x) = x ? 10 : 20 with jcc8 + jmp8, and the same with jcc32 + rx_bind32 */
    for (int wide = 0; wide < 2; wide++) {
        f = b.p;
        rx_test_rr(&b, 8, RX_RDI, RX_RDI);
        j1 = wide ? rx_jcc32(&b, &c, RX_CC_E, exec_of(&c, b.p)) : rx_jcc8(&b, RX_CC_E);
        rx_mov_ri(&b, 4, RX_RAX, 10);
        j2 = wide ? rx_jmp32(&b, &c, exec_of(&c, b.p)) : rx_jmp8(&b);
        if (wide)
            rx_bind32(&b, j1);
        else
            rx_bind8(&b, j1);
        rx_mov_ri(&b, 4, RX_RAX, 20);
        if (wide)
            rx_bind32(&b, j2);
        else
            rx_bind8(&b, j2);
        rx_ret(&b);
        assert_int_equal(((fn1_t)exec_of(&c, f))(7), 10);
        assert_int_equal(((fn1_t)exec_of(&c, f))(0), 20);
    }

    /* Byte registers 4..7 are SPL..DIL: SIL's low byte, not DH, is extended. */
    f = b.p;
    rx_mov_rr(&b, 8, RX_RSI, RX_RDI);
    rx_mov_ri(&b, 4, RX_RDX, 0xffff);
    rx_movsx_rr(&b, 8, 1, RX_RAX, RX_RSI);
    rx_ret(&b);
    assert_int_equal(((fn1_t)exec_of(&c, f))(0x1234), 0x34);
    assert_int_equal(((fn1_t)exec_of(&c, f))(0x12f0), (uint64_t)-16);

    /* Memory operands through the red zone, with an R12/R13-style SIB base. */
    f = b.p;
    rx_push(&b, RX_R12);
    rx_mov_rr(&b, 8, RX_R12, RX_RSP);
    rx_store(&b, 8, rx_mem(RX_R12, -16), RX_RDI);
    rx_mov_ri(&b, 4, RX_RCX, 2);
    rx_alu_mi(&b, RX_ADD, 8, rx_mem_idx(RX_R12, RX_RCX, 8, -32), 1000);
    rx_load(&b, 8, RX_RAX, rx_mem(RX_R12, -16));
    rx_shift_ri(&b, RX_SHL, 8, RX_RAX, 1);
    rx_pop(&b, RX_R12);
    rx_ret(&b);
    assert_int_equal(((fn1_t)exec_of(&c, f))(5), 2010);

    assert_false(b.overflow);
    rec_code_fini(&c);
}

static bool maps_perms(const void *addr, char perms[5])
{
    FILE *fp = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;

    assert_non_null(fp);
    while (!found && fgets(line, sizeof(line), fp)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && (uintptr_t)addr >= lo &&
            (uintptr_t)addr < hi)
            found = true;
    }
    fclose(fp);
    return found;
}

static void test_code_area(void **state)
{
    struct rec_code c;
    char perms[5];
    long page = sysconf(_SC_PAGESIZE);

    assert_int_equal(rec_code_init(&c, 100), 0);
    assert_int_equal(c.size, (size_t)page);
    assert_true(c.fd >= 0);
    assert_ptr_not_equal(c.rw, c.rx);
    /* W^X: the executable view is not writable, the writable one not executable. */
    assert_true(maps_perms(c.rx, perms));
    assert_memory_equal(perms, "r-x", 3);
    assert_true(maps_perms(c.rw, perms));
    assert_memory_equal(perms, "rw-", 3);
    /* One memory seen twice. */
    c.rw[17] = 0x5a;
    assert_int_equal(c.rx[17], 0x5a);
    assert_ptr_equal(rec_code_exec(&c, c.rw + 17), c.rx + 17);

    rec_code_fini(&c);
    assert_null(c.rw);
    assert_null(c.rx);
    assert_int_equal(c.fd, -1);
    rec_code_fini(&c);

    assert_int_equal(rec_code_init(&c, 0), VERR_INVALID_PARAMETER);
    assert_null(c.rw);
    rec_code_fini(&c);
    assert_int_equal(rec_code_init(&c, SIZE_MAX), VERR_NO_MEMORY);
    rec_code_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mov_rr),
        cmocka_unit_test(test_mov_ri),
        cmocka_unit_test(test_load_store),
        cmocka_unit_test(test_extend),
        cmocka_unit_test(test_lea_xchg_bswap),
        cmocka_unit_test(test_alu_rr),
        cmocka_unit_test(test_alu_ri),
        cmocka_unit_test(test_alu_mem),
        cmocka_unit_test(test_test),
        cmocka_unit_test(test_shift),
        cmocka_unit_test(test_double_shift),
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_imul),
        cmocka_unit_test(test_bits),
        cmocka_unit_test(test_cc),
        cmocka_unit_test(test_flag_ops),
        cmocka_unit_test(test_branches),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_caller_bugs),
        cmocka_unit_test(test_exec),
        cmocka_unit_test(test_code_area),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
