/* tstIemInt.c - unit tests of the interpreter's integer family: ALU helpers against hand-computed values, guest programs in 16/32/64-bit modes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../iem-alu.h"
#include "harness.h"

#define CF IEM_F_CF
#define PF IEM_F_PF
#define AF IEM_F_AF
#define ZF IEM_F_ZF
#define SF IEM_F_SF
#define OF IEM_F_OF
#define ALL IEM_F_ARITH
/* Flags outside the arithmetic ones that must survive every helper. */
#define OTHER (0x2u | IEM_F_TF | IEM_F_IF | IEM_F_DF | IEM_F_AC | IEM_F_ID)

/* ---- ADD/SUB/ADC/SBB/logic ------------------------------------------------------------------ */

static void test_add_sub_flags(void **state)
{
    uint64_t fl;

    fl = OTHER;
    assert_int_equal(iem_alu_add(1, 0xff, 1, &fl), 0);
    assert_int_equal(fl, OTHER | CF | ZF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_add(1, 0x7f, 1, &fl), 0x80);
    assert_int_equal(fl, OF | SF | AF);

    fl = 0;
    assert_int_equal(iem_alu_add(8, 0x8000000000000000ull, 0x8000000000000000ull, &fl), 0);
    assert_int_equal(fl, CF | OF | ZF | PF);

    fl = ALL; /* stale input flags must not leak into the result */
    assert_int_equal(iem_alu_add(2, 0x1000, 0x0234, &fl), 0x1234);
    assert_int_equal(fl, 0);

    fl = 0;
    assert_int_equal(iem_alu_sub(4, 0, 1, &fl), 0xffffffffu);
    assert_int_equal(fl, CF | SF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_sub(2, 0x8000, 1, &fl), 0x7fff);
    assert_int_equal(fl, OF | AF | PF);

    fl = OTHER;
    iem_alu_cmp(8, 5, 5, &fl);
    assert_int_equal(fl, OTHER | ZF | PF);
}

static void test_adc_sbb_carry_in(void **state)
{
    uint64_t fl;

    fl = CF;
    assert_int_equal(iem_alu_adc(4, 0xffffffffu, 0, &fl), 0);
    assert_int_equal(fl, CF | ZF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_adc(1, 5, 3, &fl), 8);
    assert_int_equal(fl, 0);

    fl = CF;
    assert_int_equal(iem_alu_adc(1, 5, 3, &fl), 9);
    assert_int_equal(fl, PF);

    fl = CF;
    assert_int_equal(iem_alu_sbb(2, 0, 0, &fl), 0xffff);
    assert_int_equal(fl, CF | SF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_sbb(1, 5, 3, &fl), 2);
    assert_int_equal(fl, 0);

    fl = CF;
    assert_int_equal(iem_alu_sbb(8, 0, 0xffffffffffffffffull, &fl), 0);
    assert_int_equal(fl & (CF | ZF), CF | ZF);
}

static void test_logic_clears_cf_of(void **state)
{
    uint64_t fl;

    fl = CF | OF;
    assert_int_equal(iem_alu_and(4, 0xf0f0f0f0u, 0x0f0f0f0fu, &fl), 0);
    assert_int_equal(fl & ~(uint64_t)AF, ZF | PF); /* AF is undefined after logic ops */

    fl = CF;
    assert_int_equal(iem_alu_or(1, 0x80, 1, &fl), 0x81);
    assert_int_equal(fl & ~(uint64_t)AF, SF | PF);

    fl = OF;
    assert_int_equal(iem_alu_xor(8, 0x123456789ull, 0x123456789ull, &fl), 0);
    assert_int_equal(fl & ~(uint64_t)AF, ZF | PF);

    fl = 0;
    iem_alu_test(1, 0x80, 0x80, &fl);
    assert_int_equal(fl & ~(uint64_t)AF, SF);
}

/* ---- INC/DEC/NEG/NOT --------------------------------------------------------------------------- */

static void test_inc_dec_keep_cf(void **state)
{
    uint64_t fl;

    fl = CF;
    assert_int_equal(iem_alu_inc(1, 0xff, &fl), 0);
    assert_int_equal(fl, CF | ZF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_inc(1, 0xff, &fl), 0);
    assert_int_equal(fl, ZF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_inc(4, 0x7fffffffu, &fl), 0x80000000u);
    assert_int_equal(fl, OF | SF | AF | PF);

    fl = CF;
    assert_int_equal(iem_alu_dec(4, 0, &fl), 0xffffffffu);
    assert_int_equal(fl, CF | SF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_dec(1, 0x80, &fl), 0x7f);
    assert_int_equal(fl, OF | AF);
}

static void test_neg_not(void **state)
{
    uint64_t fl;

    fl = CF;
    assert_int_equal(iem_alu_neg(1, 0, &fl), 0);
    assert_int_equal(fl, ZF | PF);

    fl = 0;
    assert_int_equal(iem_alu_neg(1, 1, &fl), 0xff);
    assert_int_equal(fl, CF | SF | AF | PF);

    fl = 0;
    assert_int_equal(iem_alu_neg(1, 0x80, &fl), 0x80);
    assert_int_equal(fl, CF | OF | SF);

    fl = 0;
    assert_int_equal(iem_alu_neg(8, 1, &fl), 0xffffffffffffffffull);
    assert_true(fl & CF);

    assert_int_equal(iem_alu_not(2, 0x1234), 0xedcb);
    assert_int_equal(iem_alu_not(4, 0), 0xffffffffu);
}

/* ---- Shifts and rotates -------------------------------------------------------------------------- */

static void test_shift_count_zero_keeps_flags(void **state)
{
    uint64_t fl;

    fl = OTHER | CF | PF | AF | ZF | SF | OF;
    assert_int_equal(iem_alu_shl(4, 0x1234, 0, &fl), 0x1234);
    assert_int_equal(fl, OTHER | ALL);

    fl = PF | OF;
    assert_int_equal(iem_alu_shl(4, 0x1234, 32, &fl), 0x1234); /* masked to 0 */
    assert_int_equal(fl, PF | OF);

    fl = SF;
    assert_int_equal(iem_alu_sar(8, 0x8000, 64, &fl), 0x8000); /* masked to 0 with 6 bits */
    assert_int_equal(fl, SF);

    fl = CF | ZF;
    assert_int_equal(iem_alu_rcl(1, 0x42, 0, &fl), 0x42);
    assert_int_equal(fl, CF | ZF);

    fl = ZF;
    assert_int_equal(iem_alu_shld(4, 0x1234, 0xffffffffu, 0, &fl), 0x1234);
    assert_int_equal(fl, ZF);
}

static void test_shift_one_and_large(void **state)
{
    uint64_t fl;
    const uint64_t def = CF | OF | SF | ZF | PF;

    fl = 0;
    assert_int_equal(iem_alu_shl(1, 0x81, 1, &fl), 0x02);
    assert_int_equal(fl & def, CF | OF);

    fl = 0;
    assert_int_equal(iem_alu_shl(1, 0x01, 9, &fl), 0); /* 8-bit shift by 9: count not masked */
    assert_int_equal(fl & (SF | ZF | PF), ZF | PF);

    fl = 0;
    assert_int_equal(iem_alu_shr(2, 0x8001, 1, &fl), 0x4000);
    assert_int_equal(fl & def, CF | OF | PF);

    fl = CF;
    assert_int_equal(iem_alu_sar(1, 0x80, 7, &fl), 0xff);
    assert_int_equal(fl & (CF | SF | ZF | PF), SF | PF);

    fl = OF;
    assert_int_equal(iem_alu_sar(4, 0x80000000u, 1, &fl), 0xc0000000u);
    assert_int_equal(fl & def, SF | PF);

    fl = 0;
    assert_int_equal(iem_alu_shl(8, 1, 65, &fl), 2); /* 65 & 63 = 1 */
    assert_int_equal(fl & def, 0);
}

/* RCL/RCR of 8/16-bit operands rotate through CF modulo 9/17 after masking by 31 (SDM RCL). */
static void test_rcl_rcr_count_rules(void **state)
{
    uint64_t fl;

    fl = CF | ZF;
    assert_int_equal(iem_alu_rcl(1, 0x81, 9, &fl), 0x81);
    assert_int_equal(fl & (CF | ZF | SF), CF | ZF);

    fl = 0;
    assert_int_equal(iem_alu_rcl(1, 0x80, 1, &fl), 0x00);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = CF;
    assert_int_equal(iem_alu_rcl(1, 0x00, 1, &fl), 0x01);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0;
    assert_int_equal(iem_alu_rcl(2, 0x8000, 17, &fl), 0x8000);
    assert_int_equal(fl & CF, 0);

    fl = 0;
    assert_int_equal(iem_alu_rcl(2, 0x8000, 18, &fl), 0x0000);
    assert_int_equal(fl & CF, CF);

    fl = 0;
    assert_int_equal(iem_alu_rcr(2, 0x0001, 18, &fl), 0x0000);
    assert_int_equal(fl & CF, CF);

    fl = CF;
    assert_int_equal(iem_alu_rcr(1, 0x01, 1, &fl), 0x80);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = 0; /* 32-bit RCL: only the 5-bit mask, no modulo 33 */
    assert_int_equal(iem_alu_rcl(4, 0x80000000u, 33, &fl), 0);
    assert_int_equal(fl & CF, CF);

    fl = 0; /* 8-bit RCL by 31: 31 mod 9 = 4 */
    assert_int_equal(iem_alu_rcl(1, 0x01, 31, &fl), 0x10);
}

static void test_rol_ror_flags(void **state)
{
    uint64_t fl;

    /* ROL by a multiple of the size: value unchanged, CF = LSB, SF/ZF/PF untouched. */
    fl = ZF | SF | PF;
    assert_int_equal(iem_alu_rol(1, 0x81, 8, &fl), 0x81);
    assert_int_equal(fl & (CF | ZF | SF | PF), CF | ZF | SF | PF);

    fl = 0;
    assert_int_equal(iem_alu_rol(1, 0x81, 1, &fl), 0x03);
    assert_int_equal(fl & (CF | OF | ZF | SF), CF | OF);

    fl = 0;
    assert_int_equal(iem_alu_ror(4, 0x12345678u, 4, &fl), 0x81234567u);
    assert_int_equal(fl & CF, CF);

    fl = ZF;
    assert_int_equal(iem_alu_ror(1, 0x01, 1, &fl), 0x80);
    assert_int_equal(fl & (CF | OF | ZF), CF | OF | ZF);
}

static void test_shld_shrd(void **state)
{
    uint64_t fl;

    fl = 0;
    assert_int_equal(iem_alu_shld(4, 0x12345678u, 0x9abcdef0u, 8, &fl), 0x3456789au);
    assert_int_equal(fl & (CF | ZF | SF | PF), PF);

    fl = CF;
    assert_int_equal(iem_alu_shrd(2, 0x1234, 0xabcd, 4, &fl), 0xd123);
    assert_int_equal(fl & (CF | ZF | SF | PF), SF);

    fl = 0;
    assert_int_equal(iem_alu_shld(8, 1, 0x8000000000000000ull, 1, &fl), 3);
    assert_int_equal(fl & (CF | OF | ZF | SF | PF), PF);

    fl = 0; /* 64-bit count 70 masks to 6 */
    assert_int_equal(iem_alu_shrd(8, 0x40, 0x3f, 70, &fl), 0xfc00000000000001ull);
}

/* ---- MUL/IMUL/DIV/IDIV --------------------------------------------------------------------------- */

static void test_mul_imul_flags(void **state)
{
    uint64_t fl, hi;

    fl = 0;
    assert_int_equal(iem_alu_mul(1, 0x80, 2, &hi, &fl), 0x100);
    assert_int_equal(hi, 1);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = CF | OF;
    assert_int_equal(iem_alu_mul(2, 3, 4, &hi, &fl), 12);
    assert_int_equal(hi, 0);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0;
    assert_int_equal(iem_alu_mul(4, 0xffffffffu, 0xffffffffu, &hi, &fl), 1);
    assert_int_equal(hi, 0xfffffffeu);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = 0;
    assert_int_equal(iem_alu_mul(8, 1ull << 32, 1ull << 32, &hi, &fl), 0);
    assert_int_equal(hi, 1);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = CF | OF;
    assert_int_equal(iem_alu_imul1(1, 0xff, 0xff, &hi, &fl), 0x0001);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0; /* -128 * -1 = 128 does not fit in AL */
    assert_int_equal(iem_alu_imul1(1, 0x80, 0xff, &hi, &fl), 0x0080);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = 0;
    assert_int_equal(iem_alu_imul1(4, 0xfffffffeu, 3, &hi, &fl), 0xfffffffau);
    assert_int_equal(hi, 0xffffffffu);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0;
    assert_int_equal(iem_alu_imul2(4, 0x40000000u, 2, &fl), 0x80000000u);
    assert_int_equal(fl & (CF | OF), CF | OF);

    fl = CF | OF;
    assert_int_equal(iem_alu_imul2(2, 0xfffe, 3, &fl), 0xfffa);
    assert_int_equal(fl & (CF | OF), 0);

    fl = 0;
    assert_int_equal(iem_alu_imul2(8, 1ull << 32, 1ull << 32, &fl), 0);
    assert_int_equal(fl & (CF | OF), CF | OF);
}

static void test_div_de_cases(void **state)
{
    /* DIV: zero divisor and quotient overflow. */
    assert_false(iem_alu_div_ok(4, 0, 0, 0));
    assert_false(iem_alu_div_ok(4, 0, 5, 5));
    assert_true(iem_alu_div_ok(4, 0xffffffffu, 4, 5));
    assert_false(iem_alu_div_ok(1, 0x1005, 0, 0x10));
    assert_true(iem_alu_div_ok(1, 0x0105, 0, 0x10));
    assert_true(iem_alu_div_ok(8, 5, 1, 2));
    assert_false(iem_alu_div_ok(2, 0, 0x10000 | 7, 7)); /* only the operand-size bits of DX count */
    assert_false(iem_alu_div_ok(2, 0x1234, 0, 0x10000)); /* divisor 0 after truncation */

    /* IDIV: the most negative quotient fits, its negation does not. */
    assert_false(iem_alu_idiv_ok(4, 0x80000000u, 0xffffffffu, 0xffffffffu));
    assert_false(iem_alu_idiv_ok(1, 0xff80, 0, 0xff));
    assert_true(iem_alu_idiv_ok(1, 0xff81, 0, 0xff));
    assert_true(iem_alu_idiv_ok(1, 0xff80, 0, 0x01)); /* -128 / 1 = -128 fits */
    assert_false(iem_alu_idiv_ok(8, 0, 0x8000000000000000ull, ~0ull));
    assert_false(iem_alu_idiv_ok(2, 0x8000, 0xffff, 0xffff));
    assert_true(iem_alu_idiv_ok(8, (uint64_t)-8, ~0ull, 2));
    assert_false(iem_alu_idiv_ok(8, 0, 0, 0));
    assert_false(iem_alu_idiv_ok(4, 0, 1, 2)); /* 2^32 / 2 = 2^31 > INT32_MAX */
    assert_true(iem_alu_idiv_ok(4, 0, 0xffffffffu, 2)); /* -2^32 / 2 = -2^31 fits */
}

static void test_div_results(void **state)
{
    uint64_t fl = 0, rem;

    assert_int_equal(iem_alu_div(8, 5, 1, 2, &rem, &fl), 0x8000000000000002ull);
    assert_int_equal(rem, 1);
    assert_int_equal(iem_alu_div(1, 0x0105, 0, 0x10, &rem, &fl), 0x10);
    assert_int_equal(rem, 5);
    assert_int_equal(iem_alu_div(2, 0x0000, 0x0001, 3, &rem, &fl), 0x5555);
    assert_int_equal(rem, 1);
    assert_int_equal(iem_alu_idiv(4, (uint32_t)-7, 0xffffffffu, 2, &rem, &fl), 0xfffffffdu);
    assert_int_equal(rem, 0xffffffffu);
    assert_int_equal(iem_alu_idiv(1, 0xfff9, 0, 2, &rem, &fl), 0xfd);
    assert_int_equal(rem, 0xff);
    fl = OTHER;
    (void)iem_alu_idiv(8, 100, 0, (uint64_t)-7, &rem, &fl);
    assert_int_equal(rem, 2);
    assert_int_equal(fl & OTHER, OTHER);
}

/* ---- Bit instructions ------------------------------------------------------------------------------- */

static void test_bt_family(void **state)
{
    uint64_t fl;

    fl = ZF;
    assert_int_equal(iem_alu_bt(4, 0x10, 4, &fl), 0x10);
    assert_int_equal(fl & (CF | ZF), CF | ZF); /* ZF unaffected */

    fl = CF;
    assert_int_equal(iem_alu_bts(4, 0, 35, &fl), 8);
    assert_int_equal(fl & CF, 0);

    fl = 0;
    assert_int_equal(iem_alu_btr(2, 0xffff, 15, &fl), 0x7fff);
    assert_int_equal(fl & CF, CF);

    fl = 0;
    assert_int_equal(iem_alu_btc(8, 0, 63, &fl), 0x8000000000000000ull);
    assert_int_equal(fl & CF, 0);

    fl = 0;
    assert_int_equal(iem_alu_btc(8, 0x8000000000000000ull, 127, &fl), 0);
    assert_int_equal(fl & CF, CF);
}

static void test_bsf_bsr_zero_source(void **state)
{
    uint64_t fl;

    fl = 0;
    assert_int_equal(iem_alu_bsf(4, 0x1234, 0, &fl), 0x1234);
    assert_true(fl & ZF);

    fl = ZF;
    assert_int_equal(iem_alu_bsf(4, 0x1234, 0x80, &fl), 7);
    assert_false(fl & ZF);

    fl = ZF;
    assert_int_equal(iem_alu_bsr(8, 0, 0x8000000000000001ull, &fl), 63);
    assert_false(fl & ZF);

    fl = 0;
    assert_int_equal(iem_alu_bsr(2, 0xdead, 0, &fl), 0xdead);
    assert_true(fl & ZF);

    fl = 0;
    assert_int_equal(iem_alu_bsr(2, 0, 0x0100, &fl), 8);
}

static void test_popcnt_lzcnt_tzcnt(void **state)
{
    uint64_t fl;

    fl = ALL;
    assert_int_equal(iem_alu_popcnt(4, 0xff00ff, &fl), 16);
    assert_int_equal(fl & ALL, 0);

    fl = 0;
    assert_int_equal(iem_alu_popcnt(2, 0x10000, &fl), 0);
    assert_int_equal(fl & ALL, ZF);

    fl = ZF;
    assert_int_equal(iem_alu_lzcnt(4, 0, &fl), 32);
    assert_int_equal(fl & (CF | ZF), CF);

    fl = 0;
    assert_int_equal(iem_alu_lzcnt(2, 1, &fl), 15);
    assert_int_equal(iem_alu_lzcnt(8, 1ull << 63, &fl), 0);
    assert_int_equal(fl & (CF | ZF), ZF);

    fl = 0;
    assert_int_equal(iem_alu_tzcnt(2, 0, &fl), 16);
    assert_int_equal(fl & (CF | ZF), CF);
    assert_int_equal(iem_alu_tzcnt(4, 0x100, &fl), 8);
}

static void test_bswap(void **state)
{
    assert_int_equal(iem_alu_bswap(4, 0x12345678u), 0x78563412u);
    assert_int_equal(iem_alu_bswap(8, 0x0102030405060708ull), 0x0807060504030201ull);
    assert_int_equal(iem_alu_bswap(2, 0x1234), 0);
}

static void test_cmpxchg_compare(void **state)
{
    uint64_t fl;

    fl = 0;
    assert_true(iem_alu_cmpxchg_cmp(4, 5, 5, &fl));
    assert_int_equal(fl & (ZF | CF), ZF);

    fl = ZF;
    assert_false(iem_alu_cmpxchg_cmp(4, 5, 6, &fl));
    assert_int_equal(fl & (ZF | CF | SF), CF | SF);

    fl = 0;
    assert_false(iem_alu_cmpxchg_cmp(1, 0x80, 0x01, &fl));
    assert_int_equal(fl & OF, OF);

    fl = 0;
    assert_int_equal(iem_alu_xadd(2, 0xffff, 1, &fl), 0);
    assert_int_equal(fl & (CF | ZF), CF | ZF);
}

/* ---- BCD (values checked against a real processor in 32-bit mode) ----------------------------------- */

static void test_daa_das(void **state)
{
    uint64_t fl;

    /* SDM DAA example: 79h + 35h = AEh, DAA -> 14h with CF. */
    fl = 0;
    assert_int_equal(iem_alu_daa(0xae, &fl), 0x14);
    assert_int_equal(fl & ~(uint64_t)OF, CF | AF | PF);

    /* The SDM's second DAA example prints CF=1, but 2Eh adjusts to 34h without a decimal carry. */
    fl = OF | SF;
    assert_int_equal(iem_alu_daa(0x2e, &fl), 0x34);
    assert_int_equal(fl & ~(uint64_t)OF, AF);

    fl = 0;
    assert_int_equal(iem_alu_daa(0x99, &fl), 0x99);
    assert_int_equal(fl & ~(uint64_t)OF, SF | PF);

    fl = 0;
    assert_int_equal(iem_alu_daa(0x9a, &fl), 0x00);
    assert_int_equal(fl & ~(uint64_t)OF, CF | AF | ZF | PF);

    fl = CF; /* 0x00 with carry in: + 60h */
    assert_int_equal(iem_alu_daa(0x00, &fl), 0x60);
    assert_int_equal(fl & CF, CF);

    /* SDM DAS example: 35h - 47h = EEh, DAS -> 88h with CF. */
    fl = SF | AF | PF | CF;
    assert_int_equal(iem_alu_das(0xee, &fl), 0x88);
    assert_int_equal(fl & ~(uint64_t)OF, SF | AF | PF | CF);

    fl = 0;
    assert_int_equal(iem_alu_das(0x15, &fl), 0x15);
    assert_int_equal(fl & (CF | AF), 0);

    fl = AF; /* borrow from the low digit only */
    assert_int_equal(iem_alu_das(0x20, &fl), 0x1a);
    assert_int_equal(fl & (CF | AF), AF);
}

static void test_aaa_aas_aam_aad(void **state)
{
    uint64_t fl;

    fl = AF; /* '9' + '8' as unpacked BCD: AL = 11h with AF */
    assert_int_equal(iem_alu_aaa(0x0011, &fl), 0x0107);
    assert_int_equal(fl & (CF | AF), CF | AF);

    fl = 0;
    assert_int_equal(iem_alu_aaa(0x000f, &fl), 0x0105);
    assert_int_equal(fl & (CF | AF), CF | AF);

    fl = CF;
    assert_int_equal(iem_alu_aaa(0x0005, &fl), 0x0005);
    assert_int_equal(fl & (CF | AF), 0);

    fl = 0; /* AX + 106h carries out of AL into AH (current SDM pseudo-code, as hardware does) */
    assert_int_equal(iem_alu_aaa(0x00fa, &fl), 0x0200);

    fl = AF;
    assert_int_equal(iem_alu_aas(0x0208, &fl), 0x0102);
    assert_int_equal(fl & (CF | AF), CF | AF);

    fl = AF;
    assert_int_equal(iem_alu_aas(0x0003, &fl), 0xfe0d);

    fl = 0;
    assert_int_equal(iem_alu_aas(0x0105, &fl), 0x0105);
    assert_int_equal(fl & (CF | AF), 0);

    fl = 0;
    assert_int_equal(iem_alu_aam(0x003f, 10, &fl), 0x0603);
    assert_int_equal(fl & (SF | ZF | PF), PF);

    fl = 0;
    assert_int_equal(iem_alu_aam(0x1200, 10, &fl), 0x0000);
    assert_int_equal(fl & (SF | ZF | PF), ZF | PF);

    fl = 0;
    assert_int_equal(iem_alu_aam(0x00ff, 16, &fl), 0x0f0f);

    fl = 0;
    assert_int_equal(iem_alu_aad(0x0603, 10, &fl), 0x003f);
    assert_int_equal(fl & (SF | ZF | PF), PF);

    fl = 0;
    assert_int_equal(iem_alu_aad(0x0905, 16, &fl), 0x0095);
    assert_int_equal(fl & (SF | ZF), SF);
}

/* ---- Guest programs through the whole interpreter (decoder, handlers, memory) ------------------------ */

/*
 * Code runs at CODE_GPA, data lives at DATA_GPA, the stack at STACK_TOP; the expected values
 * in the tests were worked out from the SDM by hand (the byte arrays come from GNU as, the
 * source is in the comments).
 */
#define CODE_GPA  0x20000u
#define DATA_GPA  0x30000u
#define STACK_TOP 0x40000u

static struct iemh *prog_create(void)
{
    struct iemh *h = iemh_create(0);
    memset(h->ram + DATA_GPA, 0, 0x20000);
    return h;
}

static void prog_run(struct iemh *h, const uint8_t *code, size_t len, uint64_t max, enum iem_step_status want,
                     struct iem_step_result *res)
{
    iemh_exec(h, CODE_GPA, code, len, max, res);
    assert_int_equal(res->status, want);
}

static uint16_t ram16(struct iemh *h, uint64_t gpa)
{
    uint16_t v;
    iemh_read(h, gpa, &v, 2);
    return v;
}

static const uint8_t prog_t64a[] = {
    0x48, 0xc7, 0xc3, 0x00, 0x00, 0x03, 0x00,          /* mov rbx, 0x30000 */
    0x48, 0xc7, 0x03, 0x05, 0x00, 0x00, 0x00,          /* mov qword ptr [rbx], 5 */
    0x48, 0x83, 0x03, 0x07,                            /* add qword ptr [rbx], 7 */
    0xf0, 0x48, 0x83, 0x03, 0x01,                      /* lock add qword ptr [rbx], 1 */
    0xb8, 0x0d, 0x00, 0x00, 0x00,                      /* mov eax, 13 */
    0xb9, 0x64, 0x00, 0x00, 0x00,                      /* mov ecx, 100 */
    0xf0, 0x48, 0x0f, 0xb1, 0x0b,                      /* lock cmpxchg [rbx], rcx */
    0x0f, 0x94, 0xc2,                                  /* setz dl */
    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,          /* mov rax, -1 */
    0xb8, 0x05, 0x00, 0x00, 0x00,                      /* mov eax, 5 */
    0x48, 0x0f, 0xb1, 0x0b,                            /* cmpxchg [rbx], rcx */
    0x41, 0x0f, 0x94, 0xc0,                            /* setz r8b */
    0x49, 0xc7, 0xc1, 0x03, 0x00, 0x00, 0x00,          /* mov r9, 3 */
    0xf0, 0x4c, 0x0f, 0xc1, 0x0b,                      /* lock xadd [rbx], r9 */
    0x49, 0xc7, 0xc2, 0x55, 0x00, 0x00, 0x00,          /* mov r10, 0x55 */
    0x4c, 0x87, 0x13,                                  /* xchg [rbx], r10 */
    0xc7, 0x43, 0x08, 0x00, 0x00, 0x00, 0x80,          /* mov dword ptr [rbx+8], 0x80000000 */
    0xf0, 0xf7, 0x5b, 0x08,                            /* lock neg dword ptr [rbx+8] */
    0x41, 0x0f, 0x90, 0xc3,                            /* seto r11b */
    0xf0, 0x0f, 0xba, 0x6b, 0x08, 0x03,                /* lock bts dword ptr [rbx+8], 3 */
    0xc6, 0x43, 0x0e, 0x80,                            /* mov byte ptr [rbx+14], 0x80 */
    0x49, 0xc7, 0xc4, 0xf7, 0xff, 0xff, 0xff,          /* mov r12, -9 */
    0x4c, 0x0f, 0xa3, 0x63, 0x10,                      /* bt [rbx+16], r12 */
    0x41, 0x0f, 0x92, 0xc5,                            /* setc r13b */
    0x4c, 0x0f, 0xb3, 0x63, 0x10,                      /* btr [rbx+16], r12 */
    0x41, 0x0f, 0x92, 0xc6,                            /* setc r14b */
    0xf4,                                              /* hlt */
};

/* Memory read-modify-write with and without LOCK, CMPXCHG both ways, XADD, XCHG, NEG overflow,
 * BTS on memory, and BT/BTR with a negative register bit offset into a bit string. */
static void test_prog64_alu_memory(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64a, sizeof(prog_t64a), 100, IEM_STEP_HLT, &res);
    assert_int_equal(iemh_read64(h, DATA_GPA), 0x55);
    assert_int_equal(h->s->gpr[CPU_RDX] & 0xff, 1);        /* LOCK CMPXCHG matched */
    assert_int_equal(h->s->gpr[CPU_R8] & 0xff, 0);         /* CMPXCHG did not */
    assert_int_equal(h->s->gpr[CPU_RAX], 100);             /* ... and loaded the accumulator */
    assert_int_equal(h->s->gpr[CPU_R9], 100);              /* XADD: old value */
    assert_int_equal(h->s->gpr[CPU_R10], 103);             /* XCHG: old value */
    assert_int_equal(iemh_read32(h, DATA_GPA + 8), 0x80000008u);
    assert_int_equal(h->s->gpr[CPU_R11] & 0xff, 1);        /* NEG 80000000h overflows */
    assert_int_equal(h->s->gpr[CPU_R13] & 0xff, 1);        /* BT bit -9 = bit 55 of [rbx+8] */
    assert_int_equal(h->s->gpr[CPU_R14] & 0xff, 1);        /* BTR found it set ... */
    assert_int_equal(h->ram[DATA_GPA + 14], 0);            /* ... and cleared it */
    iemh_destroy(h);
}

static const uint8_t prog_t64s[] = {
    0x48, 0xc7, 0xc6, 0x00, 0x00, 0x03, 0x00,          /* mov rsi, 0x30000 */
    0x48, 0xc7, 0xc7, 0x00, 0x10, 0x03, 0x00,          /* mov rdi, 0x31000 */
    0x48, 0xc7, 0xc1, 0x0c, 0x00, 0x00, 0x00,          /* mov rcx, 12 */
    0xfc,                                              /* cld */
    0xf3, 0xa4,                                        /* rep movsb */
    0x49, 0x89, 0xf0,                                  /* mov r8, rsi */
    0x49, 0x89, 0xf9,                                  /* mov r9, rdi */
    0x48, 0xc7, 0xc7, 0x00, 0x20, 0x03, 0x00,          /* mov rdi, 0x32000 */
    0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* mov rax, 0x1122334455667788 */
    0xb9, 0x03, 0x00, 0x00, 0x00,                      /* mov ecx, 3 */
    0xf3, 0x48, 0xab,                                  /* rep stosq */
    0x49, 0x89, 0xfa,                                  /* mov r10, rdi */
    0x48, 0xc7, 0xc7, 0x00, 0x00, 0x03, 0x00,          /* mov rdi, 0x30000 */
    0xb0, 0x77,                                        /* mov al, 'w' */
    0xb9, 0x64, 0x00, 0x00, 0x00,                      /* mov ecx, 100 */
    0xf2, 0xae,                                        /* repne scasb */
    0x49, 0x89, 0xfb,                                  /* mov r11, rdi */
    0x49, 0x89, 0xcc,                                  /* mov r12, rcx */
    0x48, 0xc7, 0xc6, 0x00, 0x00, 0x03, 0x00,          /* mov rsi, 0x30000 */
    0x48, 0xc7, 0xc7, 0x00, 0x10, 0x03, 0x00,          /* mov rdi, 0x31000 */
    0xb9, 0x0c, 0x00, 0x00, 0x00,                      /* mov ecx, 12 */
    0xf3, 0xa6,                                        /* repe cmpsb */
    0x41, 0x0f, 0x94, 0xc5,                            /* setz r13b */
    0x49, 0x89, 0xce,                                  /* mov r14, rcx */
    0xfd,                                              /* std */
    0x48, 0xc7, 0xc6, 0x03, 0x00, 0x03, 0x00,          /* mov rsi, 0x30003 */
    0x48, 0xc7, 0xc7, 0x03, 0x30, 0x03, 0x00,          /* mov rdi, 0x33003 */
    0xb9, 0x04, 0x00, 0x00, 0x00,                      /* mov ecx, 4 */
    0xf3, 0xa4,                                        /* rep movsb */
    0xfc,                                              /* cld */
    0x49, 0x89, 0xff,                                  /* mov r15, rdi */
    0x48, 0xc7, 0xc6, 0x00, 0x00, 0x03, 0x00,          /* mov rsi, 0x30000 */
    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,          /* mov rax, -1 */
    0xad,                                              /* lodsd */
    0x48, 0x89, 0xf5,                                  /* mov rbp, rsi */
    0x48, 0xbe, 0x04, 0x00, 0x03, 0x00, 0xff, 0xff, 0xff, 0xff, /* mov rsi, 0xffffffff00030004 */
    0x67, 0xac,                                        /* addr32 lodsb */
    0x48, 0x89, 0xf3,                                  /* mov rbx, rsi */
    0xf4,                                              /* hlt */
};

/* REP MOVSB/STOSQ/SCASB/CMPSB forward and backward, LODSD zero-extension, and a 32-bit
 * address size in 64-bit mode (ESI used and zero-extended). */
static void test_prog64_strings(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    memcpy(h->ram + DATA_GPA, "hello, world", 12);
    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64s, sizeof(prog_t64s), 200, IEM_STEP_HLT, &res);
    assert_memory_equal(h->ram + DATA_GPA + 0x1000, "hello, world", 12);
    assert_int_equal(h->s->gpr[CPU_R8], DATA_GPA + 12);
    assert_int_equal(h->s->gpr[CPU_R9], DATA_GPA + 0x1000 + 12);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(iemh_read64(h, DATA_GPA + 0x2000 + 8 * i), 0x1122334455667788ull);
    assert_int_equal(iemh_read64(h, DATA_GPA + 0x2018), 0);
    assert_int_equal(h->s->gpr[CPU_R10], DATA_GPA + 0x2018);
    assert_int_equal(h->s->gpr[CPU_R11], DATA_GPA + 8);    /* REPNE SCASB stopped after the 'w' */
    assert_int_equal(h->s->gpr[CPU_R12], 92);
    assert_int_equal(h->s->gpr[CPU_R13] & 0xff, 1);        /* REPE CMPSB: all equal */
    assert_int_equal(h->s->gpr[CPU_R14], 0);
    assert_memory_equal(h->ram + DATA_GPA + 0x3000, "hell", 4); /* copied backwards with DF=1 */
    assert_int_equal(h->ram[DATA_GPA + 0x2fff], 0);
    assert_int_equal(h->s->gpr[CPU_R15], DATA_GPA + 0x2fff);
    assert_int_equal(h->s->gpr[CPU_RBP], DATA_GPA + 4);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x6c6c656full);  /* LODSD zero-extended, then LODSB 'o' */
    assert_int_equal(h->s->gpr[CPU_RSI], DATA_GPA + 5);   /* ADDR32: ESI incremented, zero-extended */
    assert_false(h->s->rflags & IEM_F_DF);
    iemh_destroy(h);
}

static const uint8_t prog_t64b[] = {
    0x48, 0xc7, 0xc4, 0x00, 0x00, 0x04, 0x00,          /* mov rsp, 0x40000 */
    0x48, 0xc7, 0xc0, 0x34, 0x12, 0x00, 0x00,          /* mov rax, 0x1234 */
    0x50,                                              /* push rax */
    0x6a, 0xfe,                                        /* push -2 */
    0x5b,                                              /* pop rbx */
    0x59,                                              /* pop rcx */
    0xe8, 0x5e, 0x00, 0x00, 0x00,                      /* call func */
    0x49, 0x89, 0xc4,                                  /* mov r12, rax */
    0xb9, 0x05, 0x00, 0x00, 0x00,                      /* mov ecx, 5 */
    0x31, 0xd2,                                        /* xor edx, edx */
    0x01, 0xca,                                        /* 1:  add edx, ecx */
    0xe2, 0xfc,                                        /* loop 1b */
    0x48, 0xc7, 0xc5, 0x11, 0x11, 0x00, 0x00,          /* mov rbp, 0x1111 */
    0xc8, 0x20, 0x00, 0x00,                            /* enter 0x20, 0 */
    0x49, 0x89, 0xed,                                  /* mov r13, rbp */
    0x49, 0x89, 0xe6,                                  /* mov r14, rsp */
    0xc9,                                              /* leave */
    0x49, 0x89, 0xe7,                                  /* mov r15, rsp */
    0x68, 0x00, 0x00, 0x03, 0x00,                      /* push 0x30000 */
    0x8f, 0x44, 0x24, 0xf8,                            /* pop qword ptr [rsp-8] */
    0x4c, 0x8b, 0x44, 0x24, 0xf0,                      /* mov r8, [rsp-16] */
    0x4c, 0x8d, 0x0d, 0x05, 0x00, 0x00, 0x00,          /* lea r9, [rip+target] */
    0x41, 0xff, 0xe1,                                  /* jmp r9 */
    0x0f, 0x0b,                                        /* ud2 */
    0x31, 0xc0,                                        /* xor eax, eax */
    0x74, 0x02,                                        /* jz 2f */
    0x0f, 0x0b,                                        /* ud2 */
    0x48, 0xc7, 0xc2, 0x00, 0x00, 0x03, 0x00,          /* 2:  mov rdx, 0x30000 */
    0x52,                                              /* push rdx */
    0x8f, 0x04, 0x24,                                  /* pop qword ptr [rsp] */
    0x4c, 0x8b, 0x14, 0x24,                            /* mov r10, [rsp - 0] */
    0x6a, 0x42,                                        /* push 0x42 */
    0x8f, 0x44, 0x24, 0x08,                            /* pop qword ptr [rsp+8] */
    0x4c, 0x8b, 0x5c, 0x24, 0x08,                      /* mov r11, [rsp+8] */
    0xf4,                                              /* hlt */
    0xb8, 0x99, 0x00, 0x00, 0x00,                      /* mov eax, 0x99 */
    0xc2, 0x00, 0x00,                                  /* ret 0 */
};

/* PUSH/POP (POP [rsp+x] addresses with the incremented RSP), CALL/RET imm16, LOOP, ENTER/LEAVE,
 * indirect JMP and Jcc. */
static void test_prog64_stack_branch(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64b, sizeof(prog_t64b), 200, IEM_STEP_HLT, &res);
    assert_int_equal(h->s->gpr[CPU_RBX], 0xfffffffffffffffeull);
    assert_int_equal(h->s->gpr[CPU_RCX], 0);
    assert_int_equal(h->s->gpr[CPU_RDX], DATA_GPA);
    assert_int_equal(h->s->gpr[CPU_R12], 0x99);
    assert_int_equal(h->s->gpr[CPU_R13], STACK_TOP - 8);
    assert_int_equal(h->s->gpr[CPU_R14], STACK_TOP - 8 - 0x20);
    assert_int_equal(h->s->gpr[CPU_RBP], 0x1111);
    assert_int_equal(h->s->gpr[CPU_R15], STACK_TOP);
    assert_int_equal(h->s->gpr[CPU_R8], 0xfffffffffffffffeull);
    assert_int_equal(h->s->gpr[CPU_R10], DATA_GPA);
    assert_int_equal(h->s->gpr[CPU_R11], 0x42);
    assert_int_equal(h->s->gpr[CPU_RSP], STACK_TOP);
    iemh_destroy(h);
}

static const uint8_t prog_t64r[] = {
    0x48, 0xb8, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, /* mov rax, 0xffffffff00000005 */
    0x48, 0xbb, 0x07, 0x00, 0x00, 0x00, 0xaa, 0xaa, 0xaa, 0xaa, /* mov rbx, 0xaaaaaaaa00000007 */
    0xb9, 0x55, 0x00, 0x00, 0x00,                      /* mov ecx, 0x55 */
    0x0f, 0xb1, 0xcb,                                  /* cmpxchg ebx, ecx */
    0x49, 0x89, 0xc0,                                  /* mov r8, rax */
    0x49, 0x89, 0xd9,                                  /* mov r9, rbx */
    0x48, 0xb8, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, /* mov rax, 0xffffffff00000007 */
    0x48, 0xbb, 0x07, 0x00, 0x00, 0x00, 0xaa, 0xaa, 0xaa, 0xaa, /* mov rbx, 0xaaaaaaaa00000007 */
    0x0f, 0xb1, 0xcb,                                  /* cmpxchg ebx, ecx */
    0x49, 0x89, 0xc2,                                  /* mov r10, rax */
    0x49, 0x89, 0xdb,                                  /* mov r11, rbx */
    0x49, 0xc7, 0xc4, 0xff, 0xff, 0xff, 0xff,          /* mov r12, -1 */
    0x31, 0xd2,                                        /* xor edx, edx */
    0x44, 0x0f, 0xbc, 0xe2,                            /* bsf r12d, edx */
    0x49, 0xc7, 0xc5, 0xff, 0xff, 0xff, 0xff,          /* mov r13, -1 */
    0x39, 0xc0,                                        /* cmp eax, eax */
    0x44, 0x0f, 0x45, 0xe9,                            /* cmovnz r13d, ecx */
    0x49, 0xc7, 0xc6, 0xff, 0xff, 0xff, 0xff,          /* mov r14, -1 */
    0xba, 0x80, 0x00, 0x00, 0x00,                      /* mov edx, 0x80 */
    0x44, 0x0f, 0xbd, 0xf2,                            /* bsr r14d, edx */
    0x49, 0xbf, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* mov r15, 0x1122334455667788 */
    0x49, 0x0f, 0xcf,                                  /* bswap r15 */
    0x48, 0xbe, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* mov rsi, 0x1122334455667788 */
    0x66, 0x0f, 0xce,                                  /* .byte 0x66, 0x0f, 0xce */
    0x48, 0xc7, 0xc7, 0xff, 0xff, 0xff, 0xff,          /* mov rdi, 0xffffffffffffffff */
    0x0f, 0xb7, 0xff,                                  /* movzx edi, di */
    0x48, 0x0f, 0xbf, 0x2d, 0x01, 0x00, 0x00, 0x00,    /* movsx rbp, word ptr [rip+val] */
    0xf4,                                              /* hlt */
    0x01, 0x80,                                        /* val: .word 0x8001 */
};

/* Which register a 32-bit CMPXCHG, BSF/BSR and CMOVcc write (and so zero-extend) in 64-bit mode,
 * BSWAP r64/r16, MOVZX and MOVSX. */
static void test_prog64_register_rules(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64r, sizeof(prog_t64r), 100, IEM_STEP_HLT, &res);
    assert_int_equal(h->s->gpr[CPU_R8], 7);                      /* failure: EAX written */
    assert_int_equal(h->s->gpr[CPU_R9], 0xaaaaaaaa00000007ull);  /* ... destination untouched */
    assert_int_equal(h->s->gpr[CPU_R10], 0xffffffff00000007ull); /* success: RAX untouched */
    assert_int_equal(h->s->gpr[CPU_R11], 0x55);                  /* ... destination written */
    assert_int_equal(h->s->gpr[CPU_R12], ~0ull);                 /* BSF of 0: register untouched */
    assert_int_equal(h->s->gpr[CPU_R13], 0xffffffffull);         /* CMOVcc false still zero-extends */
    assert_int_equal(h->s->gpr[CPU_R14], 7);
    assert_int_equal(h->s->gpr[CPU_R15], 0x8877665544332211ull);
    assert_int_equal(h->s->gpr[CPU_RSI], 0x1122334455660000ull); /* BSWAP r16 clears the word */
    assert_int_equal(h->s->gpr[CPU_RDI], 0xffff);
    assert_int_equal(h->s->gpr[CPU_RBP], 0xffffffffffff8001ull);
    iemh_destroy(h);
}

static const uint8_t prog_t64io[] = {
    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,          /* mov rax, -1 */
    0x66, 0xba, 0x78, 0x56,                            /* mov dx, 0x5678 */
    0xed,                                              /* in eax, dx */
    0x49, 0x89, 0xc0,                                  /* mov r8, rax */
    0xe4, 0x81,                                        /* in al, 0x81 */
    0xe6, 0x80,                                        /* out 0x80, al */
    0x48, 0xc7, 0xc7, 0x00, 0x00, 0x03, 0x00,          /* mov rdi, 0x30000 */
    0xb9, 0x03, 0x00, 0x00, 0x00,                      /* mov ecx, 3 */
    0xf3, 0x6c,                                        /* rep insb */
    0x49, 0x89, 0xf9,                                  /* mov r9, rdi */
    0x48, 0xc7, 0xc6, 0x00, 0x00, 0x03, 0x00,          /* mov rsi, 0x30000 */
    0xb9, 0x02, 0x00, 0x00, 0x00,                      /* mov ecx, 2 */
    0x66, 0xf3, 0x6f,                                  /* rep outsw */
    0x49, 0x89, 0xf2,                                  /* mov r10, rsi */
    0x49, 0x89, 0xcb,                                  /* mov r11, rcx */
    0xf4,                                              /* hlt */
};

/* IN/OUT and REP INSB/OUTSW against unassigned ports (reads give all ones). */
static void test_prog64_ports(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64io, sizeof(prog_t64io), 100, IEM_STEP_HLT, &res);
    assert_int_equal(h->s->gpr[CPU_R8], 0xffffffffull); /* IN EAX zero-extends RAX */
    assert_int_equal(h->ram[DATA_GPA], 0xff);
    assert_int_equal(h->ram[DATA_GPA + 2], 0xff);
    assert_int_equal(h->ram[DATA_GPA + 3], 0);
    assert_int_equal(h->s->gpr[CPU_R9], DATA_GPA + 3);
    assert_int_equal(h->s->gpr[CPU_R10], DATA_GPA + 4);
    assert_int_equal(h->s->gpr[CPU_R11], 0);
    iemh_destroy(h);
}

static const uint8_t prog_t64c[] = {
    0x48, 0xc7, 0xc7, 0x00, 0x00, 0x03, 0x00,          /* mov rdi, 0x30000 */
    0xb9, 0x10, 0x27, 0x00, 0x00,                      /* mov ecx, 10000 */
    0xb0, 0x5a,                                        /* mov al, 0x5a */
    0xf3, 0xaa,                                        /* rep stosb */
    0xf4,                                              /* hlt */
};

/* A long REP STOSB stops after IEM_INT_REP_CHUNK iterations with RIP on the instruction and
 * RCX/RDI holding the progress, then finishes when run again. */
static void test_rep_chunk_restart(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;
    const uint64_t rep_rip = CODE_GPA + sizeof(prog_t64c) - 3;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64c, sizeof(prog_t64c), 4, IEM_STEP_LIMIT, &res);
    assert_int_equal(h->s->rip, rep_rip);
    assert_int_equal(h->s->gpr[CPU_RCX], 10000 - 4096);
    assert_int_equal(h->s->gpr[CPU_RDI], DATA_GPA + 4096);
    assert_int_equal(h->ram[DATA_GPA + 4095], 0x5a);
    assert_int_equal(h->ram[DATA_GPA + 4096], 0);
    iemh_run(h, 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RCX], 0);
    assert_int_equal(h->s->gpr[CPU_RDI], DATA_GPA + 10000);
    assert_int_equal(h->ram[DATA_GPA + 9999], 0x5a);
    assert_int_equal(h->ram[DATA_GPA + 10000], 0);
    iemh_destroy(h);
}

static const uint8_t prog_t32[] = {
    0xbc, 0x00, 0x00, 0x04, 0x00,                      /* mov esp, 0x40000 */
    0xb8, 0x11, 0x11, 0x11, 0x11,                      /* mov eax, 0x11111111 */
    0xb9, 0x22, 0x22, 0x22, 0x22,                      /* mov ecx, 0x22222222 */
    0xba, 0x33, 0x33, 0x33, 0x33,                      /* mov edx, 0x33333333 */
    0xbb, 0x44, 0x44, 0x44, 0x44,                      /* mov ebx, 0x44444444 */
    0xbd, 0x55, 0x55, 0x55, 0x55,                      /* mov ebp, 0x55555555 */
    0xbe, 0x66, 0x66, 0x66, 0x66,                      /* mov esi, 0x66666666 */
    0xbf, 0x77, 0x77, 0x77, 0x77,                      /* mov edi, 0x77777777 */
    0x60,                                              /* pushad */
    0x8b, 0x44, 0x24, 0x0c,                            /* mov eax, [esp+12] */
    0xa3, 0x40, 0x00, 0x03, 0x00,                      /* mov [0x30040], eax */
    0x31, 0xc0,                                        /* xor eax, eax */
    0x31, 0xc9,                                        /* xor ecx, ecx */
    0x31, 0xd2,                                        /* xor edx, edx */
    0x31, 0xdb,                                        /* xor ebx, ebx */
    0x31, 0xed,                                        /* xor ebp, ebp */
    0x31, 0xf6,                                        /* xor esi, esi */
    0x31, 0xff,                                        /* xor edi, edi */
    0x61,                                              /* popad */
    0x89, 0x25, 0x44, 0x00, 0x03, 0x00,                /* mov [0x30044], esp */
    0xbd, 0x00, 0xff, 0x03, 0x00,                      /* mov ebp, 0x3ff00 */
    0xc8, 0x08, 0x00, 0x03,                            /* enter 8, 3 */
    0x89, 0x2d, 0x00, 0x00, 0x03, 0x00,                /* mov [0x30000], ebp */
    0x89, 0x25, 0x04, 0x00, 0x03, 0x00,                /* mov [0x30004], esp */
    0xc9,                                              /* leave */
    0x89, 0x2d, 0x08, 0x00, 0x03, 0x00,                /* mov [0x30008], ebp */
    0x89, 0x25, 0x0c, 0x00, 0x03, 0x00,                /* mov [0x3000c], esp */
    0xbf, 0x10, 0x00, 0x03, 0x00,                      /* mov edi, 0x30010 */
    0xba, 0x22, 0x22, 0x11, 0x11,                      /* mov edx, 0x11112222 */
    0xb8, 0x44, 0x44, 0x33, 0x33,                      /* mov eax, 0x33334444 */
    0xb9, 0xef, 0xbe, 0xad, 0xde,                      /* mov ecx, 0xdeadbeef */
    0xbb, 0xbe, 0xba, 0xfe, 0xca,                      /* mov ebx, 0xcafebabe */
    0xf0, 0x0f, 0xc7, 0x0f,                            /* lock cmpxchg8b [edi] */
    0x0f, 0x94, 0x05, 0x20, 0x00, 0x03, 0x00,          /* setz byte ptr [0x30020] */
    0x0f, 0xc7, 0x0f,                                  /* cmpxchg8b [edi] */
    0x0f, 0x94, 0x05, 0x21, 0x00, 0x03, 0x00,          /* setz byte ptr [0x30021] */
    0xa3, 0x24, 0x00, 0x03, 0x00,                      /* mov [0x30024], eax */
    0x89, 0x15, 0x28, 0x00, 0x03, 0x00,                /* mov [0x30028], edx */
    0xb9, 0x03, 0x00, 0x01, 0x00,                      /* mov ecx, 0x10003 */
    0x31, 0xd2,                                        /* xor edx, edx */
    0x42,                                              /* 1:  inc edx */
    0x67, 0xe2, 0xfc,                                  /* addr16 loop 1b */
    0x89, 0x15, 0x2c, 0x00, 0x03, 0x00,                /* mov [0x3002c], edx */
    0x89, 0x0d, 0x30, 0x00, 0x03, 0x00,                /* mov [0x30030], ecx */
    0x31, 0xc9,                                        /* xor ecx, ecx */
    0xe3, 0x02,                                        /* jecxz 2f */
    0x0f, 0x0b,                                        /* ud2 */
    0xb0, 0x79,                                        /* 2:  mov al, 0x79 */
    0x04, 0x35,                                        /* add al, 0x35 */
    0x27,                                              /* daa */
    0x0f, 0x92, 0xc4,                                  /* setc ah */
    0x66, 0xa3, 0x34, 0x00, 0x03, 0x00,                /* mov [0x30034], ax */
    0x66, 0xb8, 0x05, 0x09,                            /* mov ax, 0x0905 */
    0xd5, 0x10,                                        /* aad 16 */
    0x66, 0xa3, 0x36, 0x00, 0x03, 0x00,                /* mov [0x30036], ax */
    0xb0, 0x3f,                                        /* mov al, 63 */
    0xd4, 0x0a,                                        /* aam */
    0x66, 0xa3, 0x38, 0x00, 0x03, 0x00,                /* mov [0x30038], ax */
    0xf9,                                              /* stc */
    0xd6,                                              /* .byte 0xd6 */
    0xa2, 0x3a, 0x00, 0x03, 0x00,                      /* mov [0x3003a], al */
    0xb8, 0x05, 0x00, 0x00, 0x00,                      /* mov eax, 5 */
    0xbb, 0x50, 0x00, 0x03, 0x00,                      /* mov ebx, 0x30050 */
    0x62, 0x03,                                        /* bound eax, [ebx] */
    0xb8, 0x01, 0x00, 0x00, 0x00,                      /* mov eax, 1 */
    0x31, 0xdb,                                        /* xor ebx, ebx */
    0xf7, 0xf3,                                        /* div ebx */
    0xf4,                                              /* hlt */
};

/* 32-bit protected mode: PUSHAD/POPAD, ENTER with nesting level 3, CMPXCHG8B both ways, LOOP with
 * a 16-bit address size (CX only), JECXZ, DAA/AAD/AAM/SALC, BOUND in range, then DIV by zero. */
static void test_prog32(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;
    uint64_t q = 0x1111222233334444ull;

    iemh_write(h, DATA_GPA + 0x10, &q, 8);
    h->ram[DATA_GPA + 0x54] = 10; /* BOUND limits 0..10 at 0x30050 */
    memcpy(h->ram + 0x3fefc, "\xaa\xaa\x00\x00", 4);
    memcpy(h->ram + 0x3fef8, "\xbb\xbb\x00\x00", 4);
    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t32, sizeof(prog_t32), 200, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_DE);
    assert_int_equal(h->s->rip, CODE_GPA + sizeof(prog_t32) - 3); /* on the DIV */
    assert_int_equal(h->s->gpr[CPU_RAX], 1);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x40), STACK_TOP); /* PUSHAD stored the original ESP */
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x44), STACK_TOP);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x00), STACK_TOP - 4);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x04), STACK_TOP - 0x18);
    assert_int_equal(iemh_read32(h, STACK_TOP - 8), 0xaaaa);       /* copied frame pointers */
    assert_int_equal(iemh_read32(h, STACK_TOP - 12), 0xbbbb);
    assert_int_equal(iemh_read32(h, STACK_TOP - 16), STACK_TOP - 4);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x08), 0x3ff00);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x0c), STACK_TOP);
    assert_int_equal(iemh_read64(h, DATA_GPA + 0x10), 0xdeadbeefcafebabeull);
    assert_int_equal(h->ram[DATA_GPA + 0x20], 1);
    assert_int_equal(h->ram[DATA_GPA + 0x21], 0);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x24), 0xcafebabe);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x28), 0xdeadbeef);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x2c), 3);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x30), 0x10000);
    assert_int_equal(ram16(h, DATA_GPA + 0x34), 0x0114);             /* DAA 14h, CF */
    assert_int_equal(ram16(h, DATA_GPA + 0x36), 0x0095);             /* AAD 16 */
    assert_int_equal(ram16(h, DATA_GPA + 0x38), 0x0603);             /* AAM */
    assert_int_equal(h->ram[DATA_GPA + 0x3a], 0xff);                 /* SALC with CF */
    iemh_destroy(h);
}

static const uint8_t prog_t16[] = {
    0xb8, 0x00, 0x30,                                  /* mov ax, 0x3000 */
    0x8e, 0xd8,                                        /* mov ds, ax */
    0x8e, 0xc0,                                        /* mov es, ax */
    0xbb, 0xff, 0xff,                                  /* mov bx, 0xffff */
    0xbe, 0x02, 0x00,                                  /* mov si, 2 */
    0xc6, 0x00, 0x5a,                                  /* mov byte ptr [bx+si], 0x5a */
    0xb8, 0x11, 0x11,                                  /* mov ax, 0x1111 */
    0xb9, 0x22, 0x22,                                  /* mov cx, 0x2222 */
    0xba, 0x33, 0x33,                                  /* mov dx, 0x3333 */
    0xbb, 0x44, 0x44,                                  /* mov bx, 0x4444 */
    0xbd, 0x55, 0x55,                                  /* mov bp, 0x5555 */
    0xbe, 0x66, 0x66,                                  /* mov si, 0x6666 */
    0xbf, 0x77, 0x77,                                  /* mov di, 0x7777 */
    0x60,                                              /* pusha */
    0x31, 0xc0,                                        /* xor ax, ax */
    0x31, 0xc9,                                        /* xor cx, cx */
    0x31, 0xd2,                                        /* xor dx, dx */
    0x31, 0xdb,                                        /* xor bx, bx */
    0x31, 0xed,                                        /* xor bp, bp */
    0x31, 0xf6,                                        /* xor si, si */
    0x31, 0xff,                                        /* xor di, di */
    0x61,                                              /* popa */
    0xbf, 0x00, 0x01,                                  /* mov di, 0x100 */
    0xb9, 0x04, 0x00,                                  /* mov cx, 4 */
    0xb8, 0xcd, 0xab,                                  /* mov ax, 0xabcd */
    0xfc,                                              /* cld */
    0xf3, 0xab,                                        /* rep stosw */
    0x89, 0x3e, 0x10, 0x00,                            /* mov [0x10], di */
    0xbe, 0xff, 0xff,                                  /* mov si, 0xffff */
    0xbf, 0x00, 0x02,                                  /* mov di, 0x200 */
    0xb9, 0x02, 0x00,                                  /* mov cx, 2 */
    0xf3, 0xa4,                                        /* rep movsb */
    0x89, 0x36, 0x12, 0x00,                            /* mov [0x12], si */
    0xbb, 0x00, 0x04,                                  /* mov bx, 0x400 */
    0xb0, 0x02,                                        /* mov al, 2 */
    0xd7,                                              /* xlat */
    0xa2, 0x14, 0x00,                                  /* mov [0x14], al */
    0xbd, 0x34, 0x12,                                  /* mov bp, 0x1234 */
    0xc8, 0x04, 0x00, 0x01,                            /* enter 4, 1 */
    0x89, 0x2e, 0x16, 0x00,                            /* mov [0x16], bp */
    0x89, 0x26, 0x18, 0x00,                            /* mov [0x18], sp */
    0xc9,                                              /* leave */
    0x89, 0x2e, 0x1a, 0x00,                            /* mov [0x1a], bp */
    0x89, 0x26, 0x1c, 0x00,                            /* mov [0x1c], sp */
    0xb9, 0x03, 0x00,                                  /* mov cx, 3 */
    0x31, 0xd2,                                        /* xor dx, dx */
    0x01, 0xca,                                        /* 1:  add dx, cx */
    0xe2, 0xfc,                                        /* loop 1b */
    0x89, 0x16, 0x1e, 0x00,                            /* mov [0x1e], dx */
    0xfd,                                              /* std */
    0xbe, 0x03, 0x04,                                  /* mov si, 0x403 */
    0xac,                                              /* lodsb */
    0xfc,                                              /* cld */
    0x89, 0x36, 0x20, 0x00,                            /* mov [0x20], si */
    0xa2, 0x22, 0x00,                                  /* mov [0x22], al */
    0x68, 0x65, 0x87,                                  /* push 0x8765 */
    0x8f, 0x06, 0x24, 0x00,                            /* pop word ptr [0x24] */
    0xe8, 0x04, 0x00,                                  /* call 2f */
    0xa3, 0x26, 0x00,                                  /* mov [0x26], ax */
    0xf4,                                              /* hlt */
    0xb8, 0x21, 0x43,                                  /* 2:  mov ax, 0x4321 */
    0xc3,                                              /* ret */
};

/* Real mode: MOV to DS/ES, 16-bit addressing wrapping at 64 KiB, PUSHA/POPA, REP STOSW, REP MOVSB
 * with SI wrapping, XLAT, ENTER level 1/LEAVE, LOOP, LODSB with DF=1, POP to memory, CALL/RET. */
static void test_prog16_real(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;
    static const uint8_t table[4] = { 0x10, 0x20, 0x30, 0x40 };

    memcpy(h->ram + DATA_GPA + 0x400, table, 4);
    h->ram[DATA_GPA + 0xffff] = 0xa1;
    h->ram[DATA_GPA] = 0xb2;
    iemh_mode_real(h, CODE_GPA >> 4, 0, STACK_TOP >> 4, 0x100);
    prog_run(h, prog_t16, sizeof(prog_t16), 200, IEM_STEP_HLT, &res);
    assert_int_equal(h->ram[DATA_GPA + 1], 0x5a);        /* [BX+SI] = FFFFh + 2 wraps to 1 */
    assert_int_equal(h->ram[DATA_GPA + 0x10001], 0);
    assert_int_equal(ram16(h, STACK_TOP + 0xfe), 0x0099); /* CALL's return IP, last into this slot */
    assert_int_equal(ram16(h, STACK_TOP + 0xfa), 0x3333); /* PUSHA: AX CX DX ... */
    assert_int_equal(ram16(h, STACK_TOP + 0xf6), 0x0100); /* ... the original SP ... */
    assert_int_equal(ram16(h, STACK_TOP + 0xf0), 0x7777); /* ... DI last */
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(ram16(h, DATA_GPA + 0x100 + 2 * i), 0xabcd);
    assert_int_equal(ram16(h, DATA_GPA + 0x108), 0);
    assert_int_equal(ram16(h, DATA_GPA + 0x10), 0x108);
    assert_int_equal(h->ram[DATA_GPA + 0x200], 0xa1);    /* DS:FFFF then DS:0000 */
    assert_int_equal(h->ram[DATA_GPA + 0x201], 0xb2);
    assert_int_equal(ram16(h, DATA_GPA + 0x12), 0x0001);
    assert_int_equal(h->ram[DATA_GPA + 0x14], 0x30);     /* XLAT */
    assert_int_equal(ram16(h, DATA_GPA + 0x16), 0x00fe); /* ENTER 4, 1 */
    assert_int_equal(ram16(h, DATA_GPA + 0x18), 0x00f8);
    assert_int_equal(ram16(h, STACK_TOP + 0xfc), 0x00fe);
    assert_int_equal(ram16(h, DATA_GPA + 0x1a), 0x1234); /* LEAVE */
    assert_int_equal(ram16(h, DATA_GPA + 0x1c), 0x0100);
    assert_int_equal(ram16(h, DATA_GPA + 0x1e), 6);      /* LOOP: 3 + 2 + 1 */
    assert_int_equal(ram16(h, DATA_GPA + 0x20), 0x402);  /* LODSB with DF=1 */
    assert_int_equal(h->ram[DATA_GPA + 0x22], 0x40);
    assert_int_equal(ram16(h, DATA_GPA + 0x24), 0x8765);
    assert_int_equal(ram16(h, DATA_GPA + 0x26), 0x4321);
    assert_int_equal(h->s->gpr[CPU_RSP] & 0xffff, 0x100);
    iemh_destroy(h);
}

static const uint8_t prog_t32f[] = {
    0xbf, 0x00, 0x00, 0x03, 0x00,                      /* mov edi, 0x30000 */
    0xb9, 0x08, 0x00, 0x00, 0x00,                      /* mov ecx, 8 */
    0xb0, 0x77,                                        /* mov al, 0x77 */
    0xf3, 0xaa,                                        /* rep stosb */
    0xf4,                                              /* hlt */
};

/* A fault in the middle of REP STOSB (ES limit) reports the iterations done so far. */
static void test_rep_fault_midway(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    h->s->seg[CPU_ES].limit = DATA_GPA + 3;
    iemh_sync(h);
    prog_run(h, prog_t32f, sizeof(prog_t32f), 100, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_GP);
    assert_int_equal(h->s->rip, CODE_GPA + sizeof(prog_t32f) - 3);
    assert_int_equal(h->s->gpr[CPU_RCX], 4);
    assert_int_equal(h->s->gpr[CPU_RDI], DATA_GPA + 4);
    assert_int_equal(h->ram[DATA_GPA + 3], 0x77);
    assert_int_equal(h->ram[DATA_GPA + 4], 0);
    iemh_destroy(h);
}

static const uint8_t prog_t32p[] = {
    0xbc, 0x00, 0x00, 0x04, 0x00,                      /* mov esp, 0x40000 */
    0x60,                                              /* pushad */
    0xf4,                                              /* hlt */
};

/* PUSHAD whose last slots fall outside an expand-down stack segment: #SS before anything is
 * written, ESP unchanged. */
static void test_pushad_fault_keeps_state(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    h->s->seg[CPU_SS].attr = CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | CPU_SEG_ATTR_DB | 0x6; /* data, expand-down, writable */
    h->s->seg[CPU_SS].limit = STACK_TOP - 0x19;
    iemh_sync(h);
    prog_run(h, prog_t32p, sizeof(prog_t32p), 100, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_SS);
    assert_int_equal(h->s->gpr[CPU_RSP], STACK_TOP);
    assert_int_equal(iemh_read32(h, STACK_TOP - 4), 0);
    iemh_destroy(h);
}

static const uint8_t prog_t32b[] = {
    0xb8, 0x0b, 0x00, 0x00, 0x00,                      /* mov eax, 11 */
    0xbb, 0x50, 0x00, 0x03, 0x00,                      /* mov ebx, 0x30050 */
    0x62, 0x03,                                        /* bound eax, [ebx] */
    0xf4,                                              /* hlt */
};
static const uint8_t prog_t32m[] = {
    0x66, 0xb8, 0x34, 0x12,                            /* mov ax, 0x1234 */
    0xd4, 0x00,                                        /* .byte 0xd4, 0x00 */
    0xf4,                                              /* hlt */
};

/* BOUND out of range raises #BR; AAM 0 raises #DE; neither changes a register. */
static void test_bound_and_aam_faults(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    h->ram[DATA_GPA + 0x54] = 10;
    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t32b, sizeof(prog_t32b), 10, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_BR);
    assert_int_equal(h->s->rip, CODE_GPA + sizeof(prog_t32b) - 3);

    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t32m, sizeof(prog_t32m), 10, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_DE);
    assert_int_equal(h->s->gpr[CPU_RAX] & 0xffff, 0x1234);
    iemh_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_sub_flags),
        cmocka_unit_test(test_adc_sbb_carry_in),
        cmocka_unit_test(test_logic_clears_cf_of),
        cmocka_unit_test(test_inc_dec_keep_cf),
        cmocka_unit_test(test_neg_not),
        cmocka_unit_test(test_shift_count_zero_keeps_flags),
        cmocka_unit_test(test_shift_one_and_large),
        cmocka_unit_test(test_rcl_rcr_count_rules),
        cmocka_unit_test(test_rol_ror_flags),
        cmocka_unit_test(test_shld_shrd),
        cmocka_unit_test(test_mul_imul_flags),
        cmocka_unit_test(test_div_de_cases),
        cmocka_unit_test(test_div_results),
        cmocka_unit_test(test_bt_family),
        cmocka_unit_test(test_bsf_bsr_zero_source),
        cmocka_unit_test(test_popcnt_lzcnt_tzcnt),
        cmocka_unit_test(test_bswap),
        cmocka_unit_test(test_cmpxchg_compare),
        cmocka_unit_test(test_daa_das),
        cmocka_unit_test(test_aaa_aas_aam_aad),
        cmocka_unit_test(test_prog64_alu_memory),
        cmocka_unit_test(test_prog64_strings),
        cmocka_unit_test(test_prog64_stack_branch),
        cmocka_unit_test(test_prog64_register_rules),
        cmocka_unit_test(test_prog64_ports),
        cmocka_unit_test(test_rep_chunk_restart),
        cmocka_unit_test(test_prog32),
        cmocka_unit_test(test_prog16_real),
        cmocka_unit_test(test_rep_fault_midway),
        cmocka_unit_test(test_pushad_fault_keeps_state),
        cmocka_unit_test(test_bound_and_aam_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
