/* diff-int.h - tstIemDiff's integer instruction templates: table entries and the builders for shifts, division, strings, branches and the stack. */
#ifndef VIREO_DIFF_INT_H
#define VIREO_DIFF_INT_H

#include "diff-gen.h"

/* ---- Special builders ------------------------------------------------------------------------- */

/*
 * Shifts and rotates (C0/C1 imm8, D0/D1 by one, D2/D3 by CL; t->arg = 0, 1, 2).  The count is
 * known (immediate, or CL loaded just before), so the flags are exact: SDM vol. 2 SAL/SAR/SHL/
 * SHR and RCL/RCR/ROL/ROR "Flags Affected": a masked count of 0 changes nothing; OF is defined
 * for a count of 1 only; AF is undefined after shifts; CF is undefined for SHL/SHR (and here
 * SAR) when the count reaches the operand width; rotates leave SF/ZF/AF/PF alone.
 */
static void dg_unit_shift(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    unsigned osz = dg_pick_size(g, t->sizes);
    unsigned op = t->traits & DG_T_EXTR ? dg_below(r, 8) : t->ext;
    unsigned count;
    if (t->arg == 1)
        count = 1;
    else if (dg_chance(r, 4))
        count = dg_rand(r) & 0xff;
    else
        count = dg_below(r, osz * 8 + 3);
    bool memform = dg_chance(r, 3);
    bool legacy8 = osz == 1 && dg_chance(r, 2);
    struct dg_enc e = { .op = t->op, .has_modrm = true, .reg = (uint8_t)op };
    struct dg_memop m;
    if (memform) {
        dg_mem_pick(g, &m, osz, 1, legacy8 ? DG_MF_LEGACY : 0, 1u << 1);
        dg_mem_setup(g, &m);
        dg_mem_prefixes(&e, &m);
        e.mem = &m;
    } else {
        e.rm = (uint8_t)dg_gpr(g, true, legacy8, osz, 0);
    }
    if (t->arg == 2)
        dg_mov_imm8(g, 1, (uint8_t)count);
    if (t->arg == 0) {
        e.immsz = 1;
        e.imm = count;
    }
    if (osz == 1 && !legacy8)
        e.rex_force = true;
    dg_enc_size(&e, osz, t);
    dg_enc_finish_prefixes(g, &e, t);
    bool rcx = op == 2 || op == 3;
    if (rcx)
        dg_need_flags(g, DG_CF);
    dg_emit(g, &e);
    unsigned c = count & (osz == 8 ? 63u : 31u);
    if (c == 0)
        return;
    uint32_t def = DG_CF, und = 0;
    if (c == 1)
        def |= DG_OF;
    else
        und |= DG_OF;
    if (op >= 4) {
        def |= DG_SZP;
        und |= DG_AF;
        if (c >= osz * 8)
            und |= DG_CF;
    }
    dg_flags_result(g, def, und);
}

/* SHLD/SHRD (0F A4/AC imm8, A5/AD CL): counts above 16 leave a 16-bit result undefined, so 16-bit counts stay <= 16. */
static void dg_unit_shd(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    unsigned osz = dg_pick_size(g, DG_SZ_WDQ);
    unsigned count = dg_below(r, osz == 2 ? 17 : osz * 8 + 1);
    if (osz != 2 && dg_chance(r, 4))
        count = dg_rand(r) & 0xff;
    else if (osz == 2)
        count |= (unsigned)(dg_rand(r) & 0xe0) & (dg_chance(r, 2) ? 0xc0u : 0u); /* bits the 5-bit mask drops */
    bool memform = dg_chance(r, 3);
    struct dg_enc e = { .map = DG_MAP_0F, .op = t->op, .has_modrm = true };
    struct dg_memop m;
    e.reg = (uint8_t)dg_gpr(g, false, false, osz, 0);
    if (memform) {
        /* No RIP-relative form with the imm8: QEMU 5 forgets the immediate when it computes the
         * address (rip_offset unset for 0F A4/AC), so Unicorn would access the byte before. */
        dg_mem_pick(g, &m, osz, 1, t->arg == 2 ? 0 : DG_MF_NO_RIP, 1u << 1);
        dg_mem_setup(g, &m);
        dg_mem_prefixes(&e, &m);
        e.mem = &m;
    } else {
        e.rm = (uint8_t)dg_gpr(g, true, false, osz, 0);
    }
    if (t->arg == 2)
        dg_mov_imm8(g, 1, (uint8_t)count);
    else {
        e.immsz = 1;
        e.imm = count;
    }
    dg_enc_size(&e, osz, t);
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
    unsigned c = count & (osz == 8 ? 63u : 31u);
    if (c == 0)
        return;
    dg_flags_result(g, DG_SZP | DG_CF | (c == 1 ? DG_OF : 0), DG_AF | (c == 1 ? 0 : DG_OF));
}

/*
 * DIV/IDIV (F6/F7 /6 /7): the dividend and divisor are loaded first so that most divisions
 * succeed and some raise #DE on purpose: a zero divisor, or a quotient that does not fit
 * (SDM vol. 2 DIV/IDIV, "Protected Mode Exceptions").  All six flags are undefined.
 */
static void dg_unit_div(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    unsigned osz = dg_pick_size(g, t->sizes);
    bool sdiv = t->ext == 7;
    uint64_t mask = osz == 8 ? ~0ull : (1ull << (osz * 8)) - 1;
    unsigned kind = dg_below(r, 10); /* 0: divide by zero, 1: overflow, else fits */
    uint64_t d = dg_rand_int(r) & mask;
    if (kind == 0)
        d = 0;
    else if (d == 0)
        d = 3;
    bool memform = dg_chance(r, 3);
    bool legacy8 = osz == 1 && dg_chance(r, 2);
    struct dg_enc e = { .op = t->op, .has_modrm = true, .reg = t->ext };
    struct dg_memop m;
    /* The dividend: RDX:RAX (AX for bytes). */
    uint64_t lo = dg_rand_int(r);
    if (osz == 1 && !sdiv)
        lo = (lo & ~0xff00ull) | ((kind == 1 ? d + dg_below(r, 256 - (unsigned)d) : dg_below(r, (unsigned)d)) << 8);
    dg_mov_imm(g, 0, lo, false);
    if (sdiv) {
        static const uint8_t cvt[4][2] = { { 0x66, 0x98 }, { 0x66, 0x99 }, { 0x99 }, { 0x48, 0x99 } };
        unsigned i = osz == 1 ? 0 : osz == 2 ? 1 : osz == 4 ? 2 : 3;
        if (kind == 1) { /* the most negative dividend by -1 */
            d = mask;
            dg_mov_imm(g, 0, osz == 8 ? 0x8000000000000000ull : (1ull << (osz * 8 - 1)) | (dg_rand(r) << (osz * 8)), false);
        }
        dg_emit_raw(g, cvt[i], i == 2 ? 1 : 2, true);
    } else if (osz > 1) {
        uint64_t hi = kind == 1 ? d + (dg_rand(r) & mask) % (mask - d + 1) : (d ? dg_rand(r) % d : 0);
        if (kind == 1 && hi < d)
            hi = d;
        dg_mov_imm(g, 2, hi | (osz < 8 ? dg_rand(r) << (osz * 8) : 0), false);
    }
    if (memform) {
        dg_mem_pick(g, &m, osz, 1, legacy8 ? DG_MF_LEGACY : 0, (1u << 0) | (1u << 2));
        dg_mem_setup(g, &m);
        dg_store_imm(g, m.target, osz, d);
        if (osz == 8 && (int64_t)(int32_t)d != (int64_t)d)
            d = (uint64_t)(int64_t)(int32_t)d; /* what the imm32 store really wrote */
        dg_mem_prefixes(&e, &m);
        e.mem = &m;
    } else {
        uint16_t avoid = legacy8 ? 0 : 1u << 4; /* SPL: the divisor is loaded into the register */
        if (!dg_chance(r, 16))
            avoid |= (1u << 0) | (1u << 2);
        int rr = dg_gpr(g, true, legacy8, osz, avoid);
        int full = legacy8 && rr >= 4 ? rr - 4 : rr;
        if (full != 0 && full != 2) {
            if (legacy8 && rr >= 4)
                dg_mov_imm(g, full, (dg_rand(r) & ~0xff00ull) | (d << 8), false);
            else
                dg_mov_imm(g, rr, (d & mask) | (osz < 8 ? dg_rand(r) << (osz * 8) : 0), false);
        }
        e.rm = (uint8_t)rr;
    }
    if (osz == 1 && !legacy8)
        e.rex_force = true;
    dg_enc_size(&e, osz, t);
    dg_enc_finish_prefixes(g, &e, t);
    /* JMP $+2 first: Unicorn 2.0.1 sometimes reports a #DE raised by its division helper with
     * RIP at the start of the translation block (seen after long runs), so DIV starts one. */
    dg_emit_raw(g, (const uint8_t[]){ 0xeb, 0x00 }, 2, true);
    dg_emit(g, &e);
    dg_flags_result(g, 0, DG_ARITH);
}

/* BT/BTS/BTR/BTC r/m, reg: the memory form addresses a bit string, so the offset register is kept small. */
static void dg_unit_bt(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    if (!dg_chance(r, 3)) {
        dg_unit_generic(g, t);
        return;
    }
    unsigned osz = dg_pick_size(g, DG_SZ_WDQ);
    struct dg_enc e = { .map = DG_MAP_0F, .op = t->op, .has_modrm = true };
    struct dg_memop m;
    int reg = dg_gpr(g, true, false, osz, 1u << 4);
    dg_mem_pick(g, &m, osz, 1, 0, (uint16_t)(1u << reg));
    dg_mem_setup(g, &m);
    /* The offset is the register's signed value at the operand size (SDM vol. 2, BT: bit base + offset). */
    int64_t off = (int64_t)dg_below(r, 1024) - 512;
    uint64_t v = (uint64_t)off;
    if (osz == 2)
        v = (v & 0xffff) | (dg_rand(r) << 16);
    else if (osz == 4)
        v = (v & 0xffffffffu) | (dg_rand(r) << 32);
    dg_mov_imm(g, reg, v, false);
    e.reg = (uint8_t)reg;
    dg_mem_prefixes(&e, &m);
    e.mem = &m;
    if ((t->traits & DG_T_LOCK) && dg_chance(r, 3))
        e.pfx[e.npfx++] = 0xf0;
    dg_enc_size(&e, osz, t);
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
    dg_flags_result(g, t->fdef, t->fund);
}

/*
 * BSF/BSR (0F BC/BD) and TZCNT (F3 0F BC, t->arg 1).
 *
 * With a zero source BSF/BSR leave the destination undefined (SDM vol. 2 BSF); the hardware
 * leaves the whole register alone, also for 32-bit operands, while QEMU 5 writes it back
 * zero-extended.  So 32-bit forms get a source with a bit set (OR of one bit first) and only the
 * 16- and 64-bit forms, where both keep the register, see zero sources (a quarter of the time).
 *
 * TZCNT: the interpreter advertises no BMI1, and without BMI1 F3 0F BC is BSF (SDM vol. 2
 * TZCNT); Unicorn 2.0.1 advertises BMI1 and computes TZCNT.  Both agree for a non-zero source
 * with bit 0 clear (same count, ZF clear, CF undefined for BSF), so that is what TZCNT gets:
 * one bit above bit 0 ORed in, then bit 0 cleared.
 */
static void dg_unit_bsf(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    unsigned osz = dg_pick_size(g, t->sizes);
    bool memform = dg_chance(r, 2);
    bool tz = t->arg == 1;
    struct dg_enc e = { .map = DG_MAP_0F, .op = t->op, .has_modrm = true };
    struct dg_memop m;
    int reg = dg_gpr(g, true, false, osz, 0);
    e.reg = (uint8_t)reg;
    uint32_t bit = 1u << (tz ? 1 + dg_below(r, osz == 2 ? 15 : 30) : dg_below(r, osz == 2 ? 16 : 31));
    bool zero = !tz && osz != 4 && dg_chance(r, 4);
    bool setbit = tz || osz == 4;
    if (memform) {
        dg_mem_pick(g, &m, osz, 1, 0, 0);
        dg_mem_setup(g, &m);
        struct dg_memop am = { .base = -1, .index = -1, .scale = 1, .disp = (int32_t)m.target, .dispsz = 4,
                               .target = m.target };
        if (setbit) { /* OR dword [abs], bit */
            dg_emit_x(g, &(struct dg_enc){ .op = 0x81, .has_modrm = true, .reg = 1, .mem = &am, .immsz = 4, .imm = bit },
                      true);
        } else if (zero) { /* MOV word|qword [abs], 0 */
            struct dg_enc p = { .op = 0xc7, .has_modrm = true, .reg = 0, .mem = &am, .rex_w = osz == 8,
                                .immsz = osz == 2 ? 2 : 4, .imm = 0 };
            if (osz == 2)
                p.pfx[p.npfx++] = 0x66;
            dg_emit_x(g, &p, true);
        }
        if (tz) /* AND byte [abs], 0xfe */
            dg_emit_x(g, &(struct dg_enc){ .op = 0x80, .has_modrm = true, .reg = 4, .mem = &am, .immsz = 1, .imm = 0xfe },
                      true);
        dg_mem_prefixes(&e, &m);
        e.mem = &m;
    } else {
        int rm = dg_gpr(g, false, false, osz, 0);
        if (setbit && rm == 4)
            rm = reg; /* RSP must not be changed: use the destination as the source */
        if (setbit) /* OR r, bit (REX.W keeps a 64-bit source's upper half) */
            dg_emit_x(g, &(struct dg_enc){ .op = 0x81, .has_modrm = true, .reg = 1, .rm = (uint8_t)rm,
                                           .rex_w = osz == 8, .immsz = 4, .imm = bit }, true);
        else if (zero && rm != 4)
            dg_mov_imm(g, rm, 0, false);
        if (tz) /* AND r, -2 */
            dg_emit_x(g, &(struct dg_enc){ .op = 0x83, .has_modrm = true, .reg = 4, .rm = (uint8_t)rm,
                                           .rex_w = osz == 8, .immsz = 1, .imm = 0xfe }, true);
        e.rm = (uint8_t)rm;
    }
    dg_enc_size(&e, osz, t);
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
    dg_flags_result(g, t->fdef, t->fund);
}

/* CMPXCHG (0F B0/B1): half the time the accumulator is made equal to the destination first. */
static void dg_unit_cmpxchg(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    unsigned osz = dg_pick_size(g, t->sizes);
    bool memform = dg_chance(r, 2);
    bool legacy8 = osz == 1 && dg_chance(r, 2);
    struct dg_enc e = { .map = DG_MAP_0F, .op = t->op, .has_modrm = true };
    struct dg_memop m;
    e.reg = (uint8_t)dg_gpr(g, false, legacy8, osz, 0);
    if (memform) {
        dg_mem_pick(g, &m, osz, 1, legacy8 ? DG_MF_LEGACY : 0, 1u << 0);
        dg_mem_setup(g, &m);
        if (dg_chance(r, 2)) { /* MOV RAX, [abs] */
            struct dg_memop a = { .base = -1, .index = -1, .scale = 1, .disp = (int32_t)m.target, .dispsz = 4,
                                  .target = m.target };
            struct dg_enc l = { .op = 0x8b, .rex_w = true, .has_modrm = true, .reg = 0, .mem = &a };
            dg_emit_x(g, &l, true);
        }
        dg_mem_prefixes(&e, &m);
        e.mem = &m;
        if (dg_chance(r, 3))
            e.pfx[e.npfx++] = 0xf0;
    } else {
        int rm = dg_gpr(g, true, legacy8, osz, 0);
        int full = legacy8 && rm >= 4 ? rm - 4 : rm;
        if (dg_chance(r, 2) && !(legacy8 && rm >= 4)) { /* MOV RAX, reg */
            struct dg_enc l = { .op = 0x89, .rex_w = true, .has_modrm = true, .reg = (uint8_t)full, .rm = 0 };
            dg_emit_x(g, &l, true);
        }
        e.rm = (uint8_t)rm;
    }
    if (osz == 4) {
        /*
         * A 32-bit CMPXCHG writes EAX only when the comparison fails and the destination register
         * only when it succeeds (SDM vol. 2 CMPXCHG; zero-extending RAX or the register then).
         * QEMU 5 writes both every time, so the upper halves are cleared first (MOV r32, r32)
         * and the two agree whatever the outcome.
         */
        dg_emit_x(g, &(struct dg_enc){ .op = 0x89, .has_modrm = true, .reg = 0, .rm = 0 }, true);
        if (!memform)
            dg_emit_x(g, &(struct dg_enc){ .op = 0x89, .has_modrm = true, .reg = e.rm, .rm = e.rm }, true);
    }
    if (osz == 1 && !legacy8)
        e.rex_force = true;
    dg_enc_size(&e, osz, t);
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
    dg_flags_result(g, DG_ARITH, 0);
}

/* CMPXCHG8B/16B (0F C7 /1): EDX:EAX / RDX:RAX made equal half the time; 16B misaligned sometimes (#GP(0)). */
static void dg_unit_cmpxchg8b(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    bool b16 = t->arg == 16;
    unsigned n = b16 ? 16 : 8;
    struct dg_enc e = { .map = DG_MAP_0F, .op = 0xc7, .has_modrm = true, .reg = 1, .rex_w = b16 };
    struct dg_memop m;
    /* JMP $+2 first: QEMU 5's CMPXCHG8B helper reads the flags from a lazily computed state that
     * is only written back at a translation block boundary, so it must start a block. */
    dg_emit_raw(g, (const uint8_t[]){ 0xeb, 0x00 }, 2, true);
    dg_mem_pick(g, &m, n, b16 && !dg_chance(r, 8) ? 16 : 1, 0, (1u << 0) | (1u << 2));
    dg_mem_setup(g, &m);
    if (dg_chance(r, 2)) {
        for (int i = 0; i < 2; i++) {
            uint64_t a = m.target + (uint64_t)(i * (int)(n / 2));
            struct dg_memop am = { .base = -1, .index = -1, .scale = 1, .disp = (int32_t)a, .dispsz = 4, .target = a };
            struct dg_enc l = { .op = 0x8b, .rex_w = b16, .has_modrm = true, .reg = (uint8_t)(i ? 2 : 0), .mem = &am };
            dg_emit_x(g, &l, true);
        }
    }
    dg_mem_prefixes(&e, &m);
    e.mem = &m;
    if (dg_chance(r, 3))
        e.pfx[e.npfx++] = 0xf0;
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
    dg_flags_result(g, DG_ZF, 0);
}

/* LEA (8D): every addressing form with arbitrary register values (nothing is accessed). */
static void dg_unit_lea(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    unsigned osz = dg_pick_size(g, DG_SZ_WDQ);
    struct dg_memop m = { .base = -1, .index = -1, .scale = 1u << dg_below(r, 4) };
    m.asz32 = dg_chance(r, 4);
    switch (dg_below(r, 6)) {
    case 0:
        m.riprel = true;
        m.target = DG_CODE_BASE + (dg_rand(r) & 0xffff);
        break;
    case 1:
        m.dispsz = 4;
        break;
    case 2:
        m.index = (int)dg_below(r, 16);
        m.dispsz = 4;
        break;
    default:
        m.base = (int)dg_below(r, 16);
        m.index = dg_chance(r, 2) ? (int)dg_below(r, 16) : -1;
        m.dispsz = (unsigned[]){ 0, 1, 4 }[dg_below(r, 3)];
        if (m.dispsz == 0 && (m.base & 7) == 5)
            m.dispsz = 1;
        break;
    }
    if (m.index == 4)
        m.index = -1;
    if (m.base < 0 && m.index < 0 && !m.riprel)
        m.dispsz = 4;
    m.disp = m.dispsz == 1 ? (int8_t)dg_rand(r) : (int32_t)dg_rand(r);
    if (dg_chance(r, 8))
        m.seg = 0x64; /* a segment override does not change LEA's result */
    struct dg_enc e = { .op = 0x8d, .has_modrm = true, .mem = &m };
    e.reg = (uint8_t)dg_gpr(g, true, false, osz, 0);
    dg_mem_prefixes(&e, &m);
    dg_enc_size(&e, osz, t);
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
}

/* XLAT (D7): RBX (EBX with 0x67) points at a 256-byte table inside the data area. */
static void dg_unit_xlat(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    struct dg_enc e = { .op = 0xd7 };
    uint64_t a = DG_DATA_BASE + dg_below(r, (unsigned)(DG_WR_END - DG_DATA_BASE) - 256);
    uint8_t seg = dg_chance(r, 4) ? (dg_chance(r, 2) ? 0x64 : 0x3e) : 0;
    bool a32 = dg_chance(r, 4);
    uint64_t rbx = a - (seg == 0x64 ? DG_FS_BASE : 0);
    if (a32)
        rbx |= dg_rand(r) << 32;
    dg_mov_imm(g, 3, rbx, false);
    if (seg)
        e.pfx[e.npfx++] = seg;
    if (a32)
        e.pfx[e.npfx++] = 0x67;
    e.rex_w = dg_chance(r, 4);
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
}

/* MOV AL/rAX <-> moffs (A0-A3): a 64-bit absolute address (32-bit with 0x67). */
static void dg_unit_moffs(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    unsigned osz = (t->op & 1) ? dg_pick_size(g, DG_SZ_WDQ) : 1;
    uint64_t a = DG_DATA_BASE + dg_below(r, (unsigned)(DG_WR_END - DG_DATA_BASE) - 8);
    uint8_t seg = dg_chance(r, 4) ? 0x65 : 0;
    bool a32 = dg_chance(r, 4);
    struct dg_enc e = { .op = t->op, .immsz = a32 ? 4 : 8, .imm = a - (seg ? DG_GS_BASE : 0) };
    if (seg)
        e.pfx[e.npfx++] = seg;
    if (a32)
        e.pfx[e.npfx++] = 0x67;
    dg_enc_size(&e, osz, t);
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
}

/*
 * String instructions (A4-AF): RSI/RDI in the middle of the data area with room in both
 * directions (DF is whatever the state holds, or set by CLD/STD first), a small RCX with a
 * REP prefix, 32-bit address size sometimes (ESI/EDI/ECX, upper halves set to garbage that
 * must be ignored and then cleared), a segment override on the source.
 */
static void dg_unit_string(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    unsigned osz = (t->op & 1) ? dg_pick_size(g, DG_SZ_WDQ) : 1;
    bool cmp = t->op == 0xa6 || t->op == 0xa7 || t->op == 0xae || t->op == 0xaf;
    bool src = t->op <= 0xa7 || t->op == 0xac || t->op == 0xad;
    bool dst = t->op != 0xac && t->op != 0xad;
    bool a32 = dg_chance(r, 5);
    uint8_t rep = 0;
    if (t->arg || !dg_chance(r, 4))
        rep = cmp ? (dg_chance(r, 2) ? 0xf3 : 0xf2) : 0xf3;
    uint8_t seg = src && dg_chance(r, 4) ? (dg_chance(r, 2) ? 0x64 : 0x2e) : 0;
    unsigned count = dg_below(r, 18);
    if (dg_chance(r, 4))
        dg_emit_raw(g, (const uint8_t[]){ dg_chance(r, 2) ? 0xfc : 0xfd }, 1, true);
    uint64_t room = 20 * 8 + 8;
    if (src) {
        uint64_t a = DG_DATA_BASE + room + dg_below(r, (unsigned)(DG_WR_END - DG_DATA_BASE - 2 * room));
        uint64_t v = a - (seg == 0x64 ? DG_FS_BASE : 0);
        dg_mov_imm(g, 6, a32 ? v | (dg_rand(r) << 32) : v, false);
    }
    if (dst) {
        uint64_t a = DG_DATA_BASE + room + dg_below(r, (unsigned)(DG_WR_END - DG_DATA_BASE - 2 * room));
        dg_mov_imm(g, 7, a32 ? a | (dg_rand(r) << 32) : a, false);
    }
    if (rep)
        dg_mov_imm(g, 1, a32 ? count | (dg_rand(r) << 32) : count, false);
    if (cmp && !src && dg_chance(r, 2)) { /* SCAS: look for the byte/word that is there */
        struct dg_memop am = { .base = 7, .index = -1, .scale = 1, .asz32 = a32 };
        struct dg_enc l = { .op = 0x8b, .rex_w = true, .has_modrm = true, .reg = 0, .mem = &am };
        if (a32)
            l.pfx[l.npfx++] = 0x67;
        dg_emit_x(g, &l, true);
    }
    struct dg_enc e = { .op = t->op };
    if (seg)
        e.pfx[e.npfx++] = seg;
    if (a32)
        e.pfx[e.npfx++] = 0x67;
    dg_enc_size(&e, osz, t);
    dg_shuffle_prefixes(g, &e, 0);
    if (rep)
        e.pfx[e.npfx++] = rep;
    dg_emit(g, &e);
    if (cmp && (!rep || count))
        dg_flags_result(g, DG_ARITH, 0);
}

/*
 * JMP $+2 right before LOOPE/LOOPNE, so that they start a translation block: QEMU 5 writes its
 * lazily tracked flag state back on only one of LOOPcc's paths (gen_jcc1 after gen_op_jz_ecx),
 * and when LOOPcc follows a flag-setting instruction in the same block, the flags read back
 * later (or reloaded when Unicorn resumes after a hook) are garbage, even TF.
 */
static void dg_before_loopcc(struct dg_gen *g, unsigned op)
{
    if (op == 0xe0 || op == 0xe1)
        dg_emit_raw(g, (const uint8_t[]){ 0xeb, 0x00 }, 2, true);
}

/* Emits a rel8 or rel32 branch whose displacement is patched later; returns the patch offset. */
static unsigned dg_branch_placeholder(struct dg_gen *g, const uint8_t *opc, unsigned n, unsigned relsz, bool aux)
{
    unsigned start = g->seq->len;
    for (unsigned i = 0; i < n; i++)
        dg_put8(g, opc[i]);
    unsigned at = g->seq->len;
    dg_putn(g, 0, relsz);
    dg_record(g, start, aux);
    return at;
}

static void dg_patch_rel(struct dg_gen *g, unsigned at, unsigned relsz, unsigned target)
{
    int64_t d = (int64_t)target - (int64_t)(at + relsz);
    if (relsz == 1 && (d < -128 || d > 127)) {
        dg_bad(g, "rel8 out of range");
        return;
    }
    if (g->seq->bad)
        return;
    if (relsz == 1)
        g->seq->code[at] = (uint8_t)(int8_t)d;
    else {
        int32_t d32 = (int32_t)d;
        memcpy(g->seq->code + at, &d32, 4);
    }
}

/*
 * Forward branches (t->arg: 0 Jcc rel8, 1 Jcc rel32, 2 JMP rel8, 3 JMP rel32, 4 JMP r/m64,
 * 5 LOOP family/JRCXZ) over a body of one or two units.  Where the body may be skipped,
 * the flags undefined after it are the union of both paths.
 */
static void dg_unit_branch(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    if (g->in_body)
        return;
    unsigned at = 0, relsz = 1;
    unsigned lea_at = 0;
    switch (t->arg) {
    case 0:
    case 1: {
        unsigned cc = dg_below(r, 16);
        dg_need_flags(g, dg_cond_flags(cc));
        if (t->arg == 0)
            at = dg_branch_placeholder(g, (const uint8_t[]){ (uint8_t)(0x70 + cc) }, 1, 1, false);
        else
            at = dg_branch_placeholder(g, (const uint8_t[]){ 0x0f, (uint8_t)(0x80 + cc) }, 2, relsz = 4, false);
        break;
    }
    case 2:
        at = dg_branch_placeholder(g, (const uint8_t[]){ 0xeb }, 1, 1, false);
        break;
    case 3:
        at = dg_branch_placeholder(g, (const uint8_t[]){ 0xe9 }, 1, relsz = 4, false);
        break;
    case 4: {
        /* LEA rX, [RIP + target]; JMP rX, or through a memory slot. */
        int rx = dg_gpr(g, true, false, 8, 0);
        lea_at = dg_branch_placeholder(g, (const uint8_t[]){ (uint8_t)(0x48 | (rx >= 8 ? 4 : 0)), 0x8d,
                                                              (uint8_t)(0x05 | ((rx & 7) << 3)) }, 3, 4, true);
        struct dg_enc e = { .op = 0xff, .has_modrm = true, .reg = 4, .rm = (uint8_t)rx };
        struct dg_memop m;
        if (dg_chance(r, 2)) {
            dg_mem_pick(g, &m, 8, 1, 0, (uint16_t)(1u << rx));
            dg_mem_setup(g, &m);
            struct dg_memop am = { .base = -1, .index = -1, .scale = 1, .disp = (int32_t)m.target, .dispsz = 4,
                                   .target = m.target };
            struct dg_enc st = { .op = 0x89, .rex_w = true, .has_modrm = true, .reg = (uint8_t)rx, .mem = &am };
            dg_emit_x(g, &st, true);
            dg_mem_prefixes(&e, &m);
            e.mem = &m;
        }
        dg_emit(g, &e);
        break;
    }
    default: {
        /* E0 LOOPNE, E1 LOOPE, E2 LOOP, E3 JRCXZ; ECX with 0x67. */
        unsigned op = 0xe0 + dg_below(r, 4);
        bool a32 = dg_chance(r, 4);
        static const uint64_t counts[] = { 0, 1, 2, 0x100000000ull, 0x100000001ull };
        uint64_t c = dg_chance(r, 2) ? counts[dg_below(r, 5)] : dg_rand_int(r);
        dg_mov_imm(g, 1, c, false);
        if (op <= 0xe1)
            dg_need_flags(g, DG_ZF);
        dg_before_loopcc(g, op);
        if (a32)
            at = dg_branch_placeholder(g, (const uint8_t[]){ 0x67, (uint8_t)op }, 2, 1, false);
        else
            at = dg_branch_placeholder(g, (const uint8_t[]){ (uint8_t)op }, 1, 1, false);
        break;
    }
    }
    struct dg_flow at_branch = dg_flow_save(g);
    dg_body(g, 1 + dg_below(r, 2), false);
    unsigned target = g->seq->len;
    if (lea_at)
        dg_patch_rel(g, lea_at, 4, target);
    else
        dg_patch_rel(g, at, relsz, target);
    if (t->arg == 2 || t->arg == 3 || t->arg == 4)
        dg_flow_restore(g, &at_branch); /* the body never runs */
    else
        dg_flow_merge(g, &at_branch);
}

/* A counted loop: MOV ECX, n; body; LOOP back (the body leaves RCX and the flags LOOPcc reads alone). */
static void dg_unit_loop(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    if (g->in_body)
        return;
    dg_mov_imm(g, 1, 1 + dg_below(r, 4), true);
    unsigned top = g->seq->len;
    uint16_t saved = g->reserved;
    g->reserved |= 1u << 1;
    /* The body runs again with what it left behind: assume every XMM register tainted inside. */
    struct dg_flow before = dg_flow_save(g);
    g->xmm_taint = 0xffff;
    dg_body(g, 1 + dg_below(r, 2), true);
    g->reserved = saved;
    dg_flow_merge(g, &before);
    uint8_t op = (uint8_t)(0xe0 + dg_below(r, 3));
    if (op != 0xe2)
        dg_need_flags(g, DG_ZF);
    dg_before_loopcc(g, op);
    unsigned at = dg_branch_placeholder(g, &op, 1, 1, false);
    dg_patch_rel(g, at, 1, top);
}

/*
 * Near calls and returns (t->arg: 0 CALL rel32, 1 CALL r64, 2 CALL m64, 3 CALL next + POP):
 *     call f; jmp over; f: body; ret [imm16]; over:
 */
static void dg_unit_call(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    if (g->in_body)
        return;
    if (t->arg == 3) {
        dg_emit_raw(g, (const uint8_t[]){ 0xe8, 0, 0, 0, 0 }, 5, false);
        int rr = dg_gpr(g, true, false, 8, 0);
        struct dg_enc e = { .op = 0x58, .has_opreg = true, .opreg = (uint8_t)rr };
        dg_emit(g, &e);
        return;
    }
    unsigned call_at = 0, lea_at = 0;
    if (t->arg == 0) {
        call_at = dg_branch_placeholder(g, (const uint8_t[]){ 0xe8 }, 1, 4, false);
    } else {
        int rx = dg_gpr(g, true, false, 8, 0);
        lea_at = dg_branch_placeholder(g, (const uint8_t[]){ (uint8_t)(0x48 | (rx >= 8 ? 4 : 0)), 0x8d,
                                                              (uint8_t)(0x05 | ((rx & 7) << 3)) }, 3, 4, true);
        struct dg_enc e = { .op = 0xff, .has_modrm = true, .reg = 2, .rm = (uint8_t)rx };
        struct dg_memop m;
        if (t->arg == 2) {
            dg_mem_pick(g, &m, 8, 1, 0, (uint16_t)((1u << rx) | (1u << 4)));
            dg_mem_setup(g, &m);
            struct dg_memop am = { .base = -1, .index = -1, .scale = 1, .disp = (int32_t)m.target, .dispsz = 4,
                                   .target = m.target };
            struct dg_enc st = { .op = 0x89, .rex_w = true, .has_modrm = true, .reg = (uint8_t)rx, .mem = &am };
            dg_emit_x(g, &st, true);
            dg_mem_prefixes(&e, &m);
            e.mem = &m;
        }
        dg_emit(g, &e);
    }
    unsigned jmp_at = dg_branch_placeholder(g, (const uint8_t[]){ 0xeb }, 1, 1, true);
    unsigned f = g->seq->len;
    uint16_t saved = g->reserved;
    g->reserved |= 1u << 4; /* the body must leave RSP (and SPL) alone for the RET */
    dg_body(g, dg_below(r, 3), false);
    g->reserved = saved;
    if (dg_chance(r, 3)) {
        uint16_t n = (uint16_t)(8 * dg_below(r, 3));
        dg_emit_raw(g, (const uint8_t[]){ 0xc2, (uint8_t)n, (uint8_t)(n >> 8) }, 3, false);
    } else if (dg_chance(r, 4)) {
        dg_emit_raw(g, (const uint8_t[]){ 0x48, 0xc3 }, 2, false);
    } else {
        dg_emit_raw(g, (const uint8_t[]){ 0xc3 }, 1, false);
    }
    dg_patch_rel(g, jmp_at, 1, g->seq->len);
    if (call_at)
        dg_patch_rel(g, call_at, 4, f);
    else
        dg_patch_rel(g, lea_at, 4, f);
}

/*
 * PUSH/POP (t->arg: 0 PUSH reg, 1 POP reg, 2 PUSH imm, 3 PUSH r/m, 4 POP r/m, 5 PUSHF/POPF,
 * 6 ENTER/LEAVE), with 16-bit operand size sometimes (SDM vol. 2 PUSH: 66 selects 16 bits;
 * 32-bit pushes do not exist in 64-bit mode).
 */
static void dg_unit_stack(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    bool o16 = dg_chance(r, 6);
    struct dg_enc e = { 0 };
    struct dg_memop m;
    if (o16)
        e.pfx[e.npfx++] = 0x66;
    switch (t->arg) {
    case 0:
        e.op = 0x50, e.has_opreg = true, e.opreg = (uint8_t)dg_below(r, 16);
        break;
    case 1:
        e.op = 0x58, e.has_opreg = true, e.opreg = (uint8_t)dg_gpr(g, true, false, 8, 0);
        break;
    case 2:
        if (dg_chance(r, 2))
            e.op = 0x6a, e.immsz = 1, e.imm = dg_rand(r) & 0xff;
        else
            e.op = 0x68, e.immsz = o16 ? 2 : 4, e.imm = dg_rand_int(r);
        break;
    case 3:
    case 4:
        e.op = t->arg == 3 ? 0xff : 0x8f, e.has_modrm = true, e.reg = t->arg == 3 ? 6 : 0;
        if (dg_chance(r, 3)) {
            e.rm = (uint8_t)dg_gpr(g, t->arg == 4, false, 8, 0);
        } else {
            dg_mem_pick(g, &m, o16 ? 2 : 8, 1, 0, 0);
            dg_mem_setup(g, &m);
            dg_mem_prefixes(&e, &m);
            e.mem = &m;
        }
        break;
    case 5: {
        /* PUSHF then POP, or PUSH imm then POPF: only flags a CPL 0 POPF may change with no side effect. */
        if (dg_chance(r, 2)) {
            dg_need_flags(g, DG_ARITH);
            dg_emit_raw(g, o16 ? (const uint8_t[]){ 0x66, 0x9c } : (const uint8_t[]){ 0x9c }, o16 ? 2 : 1, false);
            if (dg_chance(r, 2)) {
                int rr = dg_gpr(g, true, false, 8, 0);
                struct dg_enc p = { .op = 0x58, .has_opreg = true, .opreg = (uint8_t)rr };
                if (o16)
                    p.pfx[p.npfx++] = 0x66;
                dg_emit_x(g, &p, true);
            }
        } else {
            uint32_t v = 0x2 | ((uint32_t)dg_rand(r) & (DG_ARITH | DG_DF));
            dg_emit_raw(g, (const uint8_t[]){ 0x68, (uint8_t)v, (uint8_t)(v >> 8), 0, 0 }, 5, true);
            if (o16) /* POPF with 16 bits pops the low word; the pushed upper word stays on the stack */
                dg_emit_raw(g, (const uint8_t[]){ 0x66, 0x9d }, 2, false);
            else
                dg_emit_raw(g, (const uint8_t[]){ 0x9d }, 1, false);
            g->undef = 0;
        }
        return;
    }
    default: {
        /* ENTER size, level (level copies frame pointers from [RBP - 8*i]); body; LEAVE. */
        uint64_t rbp = DG_STACK_BASE + 0x300 + dg_below(r, 0x600);
        dg_mov_imm(g, 5, rbp, false);
        uint16_t size = (uint16_t)(dg_chance(r, 2) ? 8 * dg_below(r, 16) : dg_below(r, 200));
        uint8_t level = (uint8_t)(dg_chance(r, 2) ? 0 : dg_chance(r, 4) ? dg_rand(r) & 0xff : dg_below(r, 5));
        if ((level & 31) > 8)
            level = (uint8_t)((level & ~31) | 8);
        dg_emit_raw(g, (const uint8_t[]){ 0xc8, (uint8_t)size, (uint8_t)(size >> 8), level }, 4, false);
        uint16_t saved = g->reserved;
        g->reserved |= 1u << 5;
        if (!g->in_body)
            dg_body(g, dg_below(r, 2), false);
        g->reserved = saved;
        if (dg_chance(r, 4))
            dg_emit_raw(g, (const uint8_t[]){ 0x48, 0xc9 }, 2, false);
        else
            dg_emit_raw(g, (const uint8_t[]){ 0xc9 }, 1, false);
        return;
    }
    }
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
}

/*
 * A data access through a non-canonical address: #GP(0) (SDM vol. 3A, 6.15).  The base is never
 * RSP or RBP (those address SS, where the fault is #SS).  Last unit: nothing runs after it.
 */
static void dg_unit_noncanonical(struct dg_gen *g, const struct dg_tmpl *t)
{
    struct dg_rng *r = &g->rng;
    static const uint8_t bases[] = { 0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 14, 15 };
    int base = bases[dg_below(r, sizeof(bases))];
    uint64_t a = dg_chance(r, 2) ? 0x0000800000000000ull + (dg_rand(r) & 0xffffffffffull)
                                 : 0x8000000000000000ull | (dg_rand(r) & 0x7fff7fffffffffffull);
    if ((uint64_t)((int64_t)(a << 16) >> 16) == a)
        a ^= 1ull << 62;
    dg_mov_imm(g, base, a, false);
    /* JMP $+2: Unicorn reports an unmapped access with RIP at the start of its translation block. */
    dg_emit_raw(g, (const uint8_t[]){ 0xeb, 0x00 }, 2, true);
    struct dg_memop m = { .base = base, .index = -1, .scale = 1, .dispsz = dg_chance(r, 2) ? 1 : 0,
                          .disp = (int8_t)(dg_rand(r) & 0x3f) };
    if ((base & 7) == 5 && m.dispsz == 0)
        m.dispsz = 1;
    static const uint8_t ops[] = { 0x8b, 0x89, 0x01, 0x3b, 0x87 }; /* MOV r,m / MOV m,r / ADD / CMP / XCHG */
    struct dg_enc e = { .op = ops[dg_below(r, sizeof(ops))], .rex_w = dg_chance(r, 2), .has_modrm = true,
                        .reg = (uint8_t)dg_gpr(g, true, false, 8, 0), .mem = &m };
    dg_enc_finish_prefixes(g, &e, t);
    dg_emit(g, &e);
}

/* ---- The table ---------------------------------------------------------------------------------- */

#define DG_W  (DG_T_WRM | DG_T_LOCK)
#define DG_LOGIC_DEF (DG_ARITH & ~DG_AF)

/* The eight classic ALU operations in all their encodings (SDM vol. 2, ADD..CMP; 00-3F, 80-83). */
#define DG_ALU8(nm, i, w, fr, fd, fu)                                                                           \
    DG_RM(nm " rm8,r8", DG_G_ALU, DG_MAP_1, (i) * 8 + 0, 0, DG_SZ_B, (w) ? DG_W : 0, fr, fd, fu),               \
    DG_RM(nm " rm,r", DG_G_ALU, DG_MAP_1, (i) * 8 + 1, 0, DG_SZ_WDQ, (w) ? DG_W : 0, fr, fd, fu),               \
    DG_RM(nm " r8,rm8", DG_G_ALU, DG_MAP_1, (i) * 8 + 2, 0, DG_SZ_B, (w) ? DG_T_WREG : 0, fr, fd, fu),          \
    DG_RM(nm " r,rm", DG_G_ALU, DG_MAP_1, (i) * 8 + 3, 0, DG_SZ_WDQ, (w) ? DG_T_WREG : 0, fr, fd, fu),          \
    DG_ACC(nm " al,imm8", DG_G_ALU, (i) * 8 + 4, DG_SZ_B, DG_IMM_B, fr, fd, fu),                                \
    DG_ACC(nm " rax,imm", DG_G_ALU, (i) * 8 + 5, DG_SZ_WDQ, DG_IMM_Z, fr, fd, fu),                              \
    DG_EXT(nm " rm8,imm8", DG_G_ALU, DG_MAP_1, 0x80, i, DG_SZ_B, DG_IMM_B, (w) ? DG_W : 0, fr, fd, fu),         \
    DG_EXT(nm " rm,imm", DG_G_ALU, DG_MAP_1, 0x81, i, DG_SZ_WDQ, DG_IMM_Z, (w) ? DG_W : 0, fr, fd, fu),         \
    DG_EXT(nm " rm,imm8", DG_G_ALU, DG_MAP_1, 0x83, i, DG_SZ_WDQ, DG_IMM_B, (w) ? DG_W : 0, fr, fd, fu)

#define DG_SHIFTS(nm, x)                                                                                        \
    DG_SPECIAL(nm " rm8,imm8", DG_G_SHIFT, dg_unit_shift, 0xc0, x, DG_SZ_B, 0, 0),                              \
    DG_SPECIAL(nm " rm,imm8", DG_G_SHIFT, dg_unit_shift, 0xc1, x, DG_SZ_WDQ, 0, 0),                             \
    DG_SPECIAL(nm " rm8,1", DG_G_SHIFT, dg_unit_shift, 0xd0, x, DG_SZ_B, 1, 0),                                 \
    DG_SPECIAL(nm " rm,1", DG_G_SHIFT, dg_unit_shift, 0xd1, x, DG_SZ_WDQ, 1, 0),                                \
    DG_SPECIAL(nm " rm8,cl", DG_G_SHIFT, dg_unit_shift, 0xd2, x, DG_SZ_B, 2, 0),                                \
    DG_SPECIAL(nm " rm,cl", DG_G_SHIFT, dg_unit_shift, 0xd3, x, DG_SZ_WDQ, 2, 0)

#define DG_CC16(nm, grp_, map_, op0, form_, tr, sz)                                                             \
    DG_CC1(nm, grp_, map_, op0 + 0, form_, tr, sz), DG_CC1(nm, grp_, map_, op0 + 1, form_, tr, sz),            \
    DG_CC1(nm, grp_, map_, op0 + 2, form_, tr, sz), DG_CC1(nm, grp_, map_, op0 + 3, form_, tr, sz),            \
    DG_CC1(nm, grp_, map_, op0 + 4, form_, tr, sz), DG_CC1(nm, grp_, map_, op0 + 5, form_, tr, sz),            \
    DG_CC1(nm, grp_, map_, op0 + 6, form_, tr, sz), DG_CC1(nm, grp_, map_, op0 + 7, form_, tr, sz),            \
    DG_CC1(nm, grp_, map_, op0 + 8, form_, tr, sz), DG_CC1(nm, grp_, map_, op0 + 9, form_, tr, sz),            \
    DG_CC1(nm, grp_, map_, op0 + 10, form_, tr, sz), DG_CC1(nm, grp_, map_, op0 + 11, form_, tr, sz),          \
    DG_CC1(nm, grp_, map_, op0 + 12, form_, tr, sz), DG_CC1(nm, grp_, map_, op0 + 13, form_, tr, sz),          \
    DG_CC1(nm, grp_, map_, op0 + 14, form_, tr, sz), DG_CC1(nm, grp_, map_, op0 + 15, form_, tr, sz)
#define DG_CC1(nm, grp_, map_, op_, form_, tr, sz)                                                              \
    { .name = nm, .grp = grp_, .map = map_, .op = op_, .form = form_, .sizes = sz, .rk = DG_K_GPR,           \
      .mk = DG_K_GPR, .msz = (sz) == DG_SZ_B ? 1 : 0, .mem = DG_MEM_ANY, .traits = DG_T_COND | (tr) }

static const struct dg_tmpl g_dg_int_tmpls[] = {
    /* ALU */
    DG_ALU8("add", 0, 1, 0, DG_ARITH, 0),
    DG_ALU8("or", 1, 1, 0, DG_LOGIC_DEF, DG_AF),
    DG_ALU8("adc", 2, 1, DG_CF, DG_ARITH, 0),
    DG_ALU8("sbb", 3, 1, DG_CF, DG_ARITH, 0),
    DG_ALU8("and", 4, 1, 0, DG_LOGIC_DEF, DG_AF),
    DG_ALU8("sub", 5, 1, 0, DG_ARITH, 0),
    DG_ALU8("xor", 6, 1, 0, DG_LOGIC_DEF, DG_AF),
    DG_ALU8("cmp", 7, 0, 0, DG_ARITH, 0),
    DG_RM("test rm8,r8", DG_G_ALU, DG_MAP_1, 0x84, 0, DG_SZ_B, 0, 0, DG_LOGIC_DEF, DG_AF),
    DG_RM("test rm,r", DG_G_ALU, DG_MAP_1, 0x85, 0, DG_SZ_WDQ, 0, 0, DG_LOGIC_DEF, DG_AF),
    DG_ACC("test al,imm8", DG_G_ALU, 0xa8, DG_SZ_B, DG_IMM_B, 0, DG_LOGIC_DEF, DG_AF),
    DG_ACC("test rax,imm", DG_G_ALU, 0xa9, DG_SZ_WDQ, DG_IMM_Z, 0, DG_LOGIC_DEF, DG_AF),
    /* F6/F7 /1, the undocumented TEST alias, is left out: QEMU 5 raises #UD for it. */
    DG_EXT("test rm8,imm8", DG_G_ALU, DG_MAP_1, 0xf6, 0, DG_SZ_B, DG_IMM_B, 0, 0, DG_LOGIC_DEF, DG_AF),
    DG_EXT("test rm,imm", DG_G_ALU, DG_MAP_1, 0xf7, 0, DG_SZ_WDQ, DG_IMM_Z, 0, 0, DG_LOGIC_DEF, DG_AF),
    DG_EXT("not rm8", DG_G_ALU, DG_MAP_1, 0xf6, 2, DG_SZ_B, 0, DG_W, 0, 0, 0),
    DG_EXT("not rm", DG_G_ALU, DG_MAP_1, 0xf7, 2, DG_SZ_WDQ, 0, DG_W, 0, 0, 0),
    /* NEG without LOCK: QEMU 5 computes the flags of a locked NEG from the old value. */
    DG_EXT("neg rm8", DG_G_ALU, DG_MAP_1, 0xf6, 3, DG_SZ_B, 0, DG_T_WRM, 0, DG_ARITH, 0),
    DG_EXT("neg rm", DG_G_ALU, DG_MAP_1, 0xf7, 3, DG_SZ_WDQ, 0, DG_T_WRM, 0, DG_ARITH, 0),
    DG_EXT("inc rm8", DG_G_ALU, DG_MAP_1, 0xfe, 0, DG_SZ_B, 0, DG_W, 0, DG_ARITH & ~DG_CF, 0),
    DG_EXT("dec rm8", DG_G_ALU, DG_MAP_1, 0xfe, 1, DG_SZ_B, 0, DG_W, 0, DG_ARITH & ~DG_CF, 0),
    DG_EXT("inc rm", DG_G_ALU, DG_MAP_1, 0xff, 0, DG_SZ_WDQ, 0, DG_W, 0, DG_ARITH & ~DG_CF, 0),
    DG_EXT("dec rm", DG_G_ALU, DG_MAP_1, 0xff, 1, DG_SZ_WDQ, 0, DG_W, 0, DG_ARITH & ~DG_CF, 0),

    /* Shifts and rotates; /6 is the undocumented SAL alias of SHL. */
    DG_SHIFTS("rol", 0), DG_SHIFTS("ror", 1), DG_SHIFTS("rcl", 2), DG_SHIFTS("rcr", 3),
    DG_SHIFTS("shl", 4), DG_SHIFTS("shr", 5), DG_SHIFTS("sal", 6), DG_SHIFTS("sar", 7),
    DG_SPECIAL("shld imm8", DG_G_SHIFT, dg_unit_shd, 0xa4, 0, DG_SZ_WDQ, 0, 0),
    DG_SPECIAL("shld cl", DG_G_SHIFT, dg_unit_shd, 0xa5, 0, DG_SZ_WDQ, 2, 0),
    DG_SPECIAL("shrd imm8", DG_G_SHIFT, dg_unit_shd, 0xac, 0, DG_SZ_WDQ, 0, 0),
    DG_SPECIAL("shrd cl", DG_G_SHIFT, dg_unit_shd, 0xad, 0, DG_SZ_WDQ, 2, 0),

    /* Multiply and divide: SF/ZF/AF/PF undefined after MUL/IMUL (SDM vol. 2 MUL, IMUL). */
    DG_EXT("mul rm8", DG_G_MULDIV, DG_MAP_1, 0xf6, 4, DG_SZ_B, 0, 0, 0, DG_CF | DG_OF, DG_SZAP),
    DG_EXT("mul rm", DG_G_MULDIV, DG_MAP_1, 0xf7, 4, DG_SZ_WDQ, 0, 0, 0, DG_CF | DG_OF, DG_SZAP),
    DG_EXT("imul rm8", DG_G_MULDIV, DG_MAP_1, 0xf6, 5, DG_SZ_B, 0, 0, 0, DG_CF | DG_OF, DG_SZAP),
    DG_EXT("imul rm", DG_G_MULDIV, DG_MAP_1, 0xf7, 5, DG_SZ_WDQ, 0, 0, 0, DG_CF | DG_OF, DG_SZAP),
    DG_RM("imul r,rm", DG_G_MULDIV, DG_MAP_0F, 0xaf, 0, DG_SZ_WDQ, DG_T_WREG, 0, DG_CF | DG_OF, DG_SZAP),
    { .name = "imul r,rm,imm", .grp = DG_G_MULDIV, .op = 0x69, .form = DG_FORM_RM, .sizes = DG_SZ_WDQ,
      .imm = DG_IMM_Z, .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_ANY, .traits = DG_T_WREG,
      .fdef = DG_CF | DG_OF, .fund = DG_SZAP },
    { .name = "imul r,rm,imm8", .grp = DG_G_MULDIV, .op = 0x6b, .form = DG_FORM_RM, .sizes = DG_SZ_WDQ,
      .imm = DG_IMM_B, .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_ANY, .traits = DG_T_WREG,
      .fdef = DG_CF | DG_OF, .fund = DG_SZAP },
    DG_SPECIAL("div rm8", DG_G_MULDIV, dg_unit_div, 0xf6, 6, DG_SZ_B, 0, 0),
    DG_SPECIAL("div rm", DG_G_MULDIV, dg_unit_div, 0xf7, 6, DG_SZ_WDQ, 0, 0),
    DG_SPECIAL("idiv rm8", DG_G_MULDIV, dg_unit_div, 0xf6, 7, DG_SZ_B, 0, 0),
    DG_SPECIAL("idiv rm", DG_G_MULDIV, dg_unit_div, 0xf7, 7, DG_SZ_WDQ, 0, 0),

    /* Bit instructions: after BT* only CF is defined, ZF is unchanged; after BSF/BSR only ZF. */
    { .name = "bt rm,r", .grp = DG_G_BIT, .fn = dg_unit_bt, .map = DG_MAP_0F, .op = 0xa3, .form = DG_FORM_RM,
      .sizes = DG_SZ_WDQ, .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_REG, .fdef = DG_CF,
      .fund = DG_OF | DG_SF | DG_AF | DG_PF },
    { .name = "bts rm,r", .grp = DG_G_BIT, .fn = dg_unit_bt, .map = DG_MAP_0F, .op = 0xab, .form = DG_FORM_RM,
      .sizes = DG_SZ_WDQ, .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_REG, .traits = DG_W, .fdef = DG_CF,
      .fund = DG_OF | DG_SF | DG_AF | DG_PF },
    { .name = "btr rm,r", .grp = DG_G_BIT, .fn = dg_unit_bt, .map = DG_MAP_0F, .op = 0xb3, .form = DG_FORM_RM,
      .sizes = DG_SZ_WDQ, .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_REG, .traits = DG_W, .fdef = DG_CF,
      .fund = DG_OF | DG_SF | DG_AF | DG_PF },
    { .name = "btc rm,r", .grp = DG_G_BIT, .fn = dg_unit_bt, .map = DG_MAP_0F, .op = 0xbb, .form = DG_FORM_RM,
      .sizes = DG_SZ_WDQ, .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_REG, .traits = DG_W, .fdef = DG_CF,
      .fund = DG_OF | DG_SF | DG_AF | DG_PF },
    DG_EXT("bt rm,imm8", DG_G_BIT, DG_MAP_0F, 0xba, 4, DG_SZ_WDQ, DG_IMM_B, 0, 0, DG_CF, DG_OF | DG_SF | DG_AF | DG_PF),
    DG_EXT("bts rm,imm8", DG_G_BIT, DG_MAP_0F, 0xba, 5, DG_SZ_WDQ, DG_IMM_B, DG_W, 0, DG_CF, DG_OF | DG_SF | DG_AF | DG_PF),
    DG_EXT("btr rm,imm8", DG_G_BIT, DG_MAP_0F, 0xba, 6, DG_SZ_WDQ, DG_IMM_B, DG_W, 0, DG_CF, DG_OF | DG_SF | DG_AF | DG_PF),
    DG_EXT("btc rm,imm8", DG_G_BIT, DG_MAP_0F, 0xba, 7, DG_SZ_WDQ, DG_IMM_B, DG_W, 0, DG_CF, DG_OF | DG_SF | DG_AF | DG_PF),
    { .name = "bsf", .grp = DG_G_BIT, .fn = dg_unit_bsf, .map = DG_MAP_0F, .op = 0xbc, .form = DG_FORM_RM,
      .sizes = DG_SZ_WDQ, .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_ANY, .traits = DG_T_WREG, .fdef = DG_ZF,
      .fund = DG_CF | DG_OF | DG_SF | DG_AF | DG_PF },
    { .name = "bsr", .grp = DG_G_BIT, .fn = dg_unit_bsf, .map = DG_MAP_0F, .op = 0xbd, .form = DG_FORM_RM,
      .sizes = DG_SZ_WDQ, .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_ANY, .traits = DG_T_WREG, .fdef = DG_ZF,
      .fund = DG_CF | DG_OF | DG_SF | DG_AF | DG_PF },
    /* TZCNT: see dg_unit_bsf (the interpreter has no BMI1, Unicorn has). */
    { .name = "tzcnt", .grp = DG_G_BIT, .fn = dg_unit_bsf, .map = DG_MAP_0F, .op = 0xbc, .pfx = 0xf3,
      .form = DG_FORM_RM, .sizes = DG_SZ_WDQ, .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_ANY,
      .traits = DG_T_WREG, .fdef = DG_ZF, .fund = DG_CF | DG_OF | DG_SF | DG_AF | DG_PF, .arg = 1 },
    DG_RM("lzcnt", DG_G_BIT, DG_MAP_0F, 0xbd, 0xf3, DG_SZ_WDQ, DG_T_WREG, 0, DG_ZF | DG_CF, DG_OF | DG_SF | DG_AF | DG_PF),
    DG_RM("popcnt", DG_G_BIT, DG_MAP_0F, 0xb8, 0xf3, DG_SZ_WDQ, DG_T_WREG, 0, DG_ARITH, 0),
    { .name = "bswap", .grp = DG_G_BIT, .map = DG_MAP_0F, .op = 0xc8, .form = DG_FORM_OPR, .sizes = DG_SZ_DQ,
      .traits = DG_T_WREG },
    { .name = "movbe r,m", .grp = DG_G_BIT, .map = DG_MAP_0F38, .op = 0xf0, .form = DG_FORM_RM, .sizes = DG_SZ_WDQ,
      .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_ONLY, .traits = DG_T_WREG },
    { .name = "movbe m,r", .grp = DG_G_BIT, .map = DG_MAP_0F38, .op = 0xf1, .form = DG_FORM_RM, .sizes = DG_SZ_WDQ,
      .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_ONLY, .traits = DG_T_WRM },

    /* Data movement */
    DG_RM("mov rm8,r8", DG_G_MOVE, DG_MAP_1, 0x88, 0, DG_SZ_B, DG_T_WRM, 0, 0, 0),
    DG_RM("mov rm,r", DG_G_MOVE, DG_MAP_1, 0x89, 0, DG_SZ_WDQ, DG_T_WRM, 0, 0, 0),
    DG_RM("mov r8,rm8", DG_G_MOVE, DG_MAP_1, 0x8a, 0, DG_SZ_B, DG_T_WREG, 0, 0, 0),
    DG_RM("mov r,rm", DG_G_MOVE, DG_MAP_1, 0x8b, 0, DG_SZ_WDQ, DG_T_WREG, 0, 0, 0),
    DG_EXT("mov rm8,imm8", DG_G_MOVE, DG_MAP_1, 0xc6, 0, DG_SZ_B, DG_IMM_B, DG_T_WRM, 0, 0, 0),
    DG_EXT("mov rm,imm", DG_G_MOVE, DG_MAP_1, 0xc7, 0, DG_SZ_WDQ, DG_IMM_Z, DG_T_WRM, 0, 0, 0),
    { .name = "mov r8,imm8", .grp = DG_G_MOVE, .op = 0xb0, .form = DG_FORM_OPR, .sizes = DG_SZ_B, .imm = DG_IMM_B,
      .traits = DG_T_WREG },
    { .name = "mov r,imm", .grp = DG_G_MOVE, .op = 0xb8, .form = DG_FORM_OPR, .sizes = DG_SZ_WDQ, .imm = DG_IMM_V,
      .traits = DG_T_WREG },
    DG_SPECIAL("mov al,moffs", DG_G_MOVE, dg_unit_moffs, 0xa0, 0, 0, 0, 0),
    DG_SPECIAL("mov rax,moffs", DG_G_MOVE, dg_unit_moffs, 0xa1, 0, 0, 0, 0),
    DG_SPECIAL("mov moffs,al", DG_G_MOVE, dg_unit_moffs, 0xa2, 0, 0, 0, 0),
    DG_SPECIAL("mov moffs,rax", DG_G_MOVE, dg_unit_moffs, 0xa3, 0, 0, 0, 0),
    { .name = "movzx r,rm8", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0xb6, .form = DG_FORM_RM, .sizes = DG_SZ_WDQ,
      .rk = DG_K_GPR, .mk = DG_K_GPR, .msz = 1, .mem = DG_MEM_ANY, .traits = DG_T_WREG },
    { .name = "movzx r,rm16", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0xb7, .form = DG_FORM_RM, .sizes = DG_SZ_DQ,
      .rk = DG_K_GPR, .mk = DG_K_GPR, .msz = 2, .mem = DG_MEM_ANY, .traits = DG_T_WREG },
    { .name = "movsx r,rm8", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0xbe, .form = DG_FORM_RM, .sizes = DG_SZ_WDQ,
      .rk = DG_K_GPR, .mk = DG_K_GPR, .msz = 1, .mem = DG_MEM_ANY, .traits = DG_T_WREG },
    { .name = "movsx r,rm16", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0xbf, .form = DG_FORM_RM, .sizes = DG_SZ_DQ,
      .rk = DG_K_GPR, .mk = DG_K_GPR, .msz = 2, .mem = DG_MEM_ANY, .traits = DG_T_WREG },
    { .name = "movsxd r,rm32", .grp = DG_G_MOVE, .op = 0x63, .form = DG_FORM_RM, .sizes = DG_SZ_DQ,
      .rk = DG_K_GPR, .mk = DG_K_GPR, .msz = 4, .mem = DG_MEM_ANY, .traits = DG_T_WREG },
    DG_SPECIAL("lea", DG_G_MOVE, dg_unit_lea, 0x8d, 0, DG_SZ_WDQ, 0, 0),
    DG_RM("xchg rm8,r8", DG_G_MOVE, DG_MAP_1, 0x86, 0, DG_SZ_B, DG_T_WREG | DG_W, 0, 0, 0),
    DG_RM("xchg rm,r", DG_G_MOVE, DG_MAP_1, 0x87, 0, DG_SZ_WDQ, DG_T_WREG | DG_W, 0, 0, 0),
    { .name = "xchg rax,r", .grp = DG_G_MOVE, .op = 0x90, .form = DG_FORM_OPR, .sizes = DG_SZ_WDQ,
      .traits = DG_T_WREG },
    DG_RM("xadd rm8,r8", DG_G_MOVE, DG_MAP_0F, 0xc0, 0, DG_SZ_B, DG_T_WREG | DG_W, 0, DG_ARITH, 0),
    DG_RM("xadd rm,r", DG_G_MOVE, DG_MAP_0F, 0xc1, 0, DG_SZ_WDQ, DG_T_WREG | DG_W, 0, DG_ARITH, 0),
    DG_SPECIAL("cmpxchg rm8,r8", DG_G_MOVE, dg_unit_cmpxchg, 0xb0, 0, DG_SZ_B, 0, 0),
    DG_SPECIAL("cmpxchg rm,r", DG_G_MOVE, dg_unit_cmpxchg, 0xb1, 0, DG_SZ_WDQ, 0, 0),
    DG_SPECIAL("cmpxchg8b", DG_G_MOVE, dg_unit_cmpxchg8b, 0xc7, 1, 0, 8, 0),
    DG_SPECIAL("cmpxchg16b", DG_G_MOVE, dg_unit_cmpxchg8b, 0xc7, 1, 0, 16, 0),
    DG_CC16("cmovcc", DG_G_MOVE, DG_MAP_0F, 0x40, DG_FORM_RM, DG_T_WREG, DG_SZ_WDQ),
    DG_CC16("setcc", DG_G_MOVE, DG_MAP_0F, 0x90, DG_FORM_EXT, DG_T_WRM | DG_T_EXTR, DG_SZ_B),
    DG_OP("cbw/cwde/cdqe", DG_G_MOVE, DG_MAP_1, 0x98, 0, DG_SZ_WDQ, 0, 0, 0, 0),
    DG_OP("cwd/cdq/cqo", DG_G_MOVE, DG_MAP_1, 0x99, 0, DG_SZ_WDQ, 0, 0, 0, 0),
    DG_OP("lahf", DG_G_MOVE, DG_MAP_1, 0x9f, 0, 0, 0, DG_SZAPC, 0, 0),
    DG_OP("sahf", DG_G_MOVE, DG_MAP_1, 0x9e, 0, 0, 0, 0, DG_SZAPC, 0),
    DG_OP("clc", DG_G_MOVE, DG_MAP_1, 0xf8, 0, 0, 0, 0, DG_CF, 0),
    DG_OP("stc", DG_G_MOVE, DG_MAP_1, 0xf9, 0, 0, 0, 0, DG_CF, 0),
    DG_OP("cmc", DG_G_MOVE, DG_MAP_1, 0xf5, 0, 0, 0, 0, 0, 0),
    DG_OP("cld", DG_G_MOVE, DG_MAP_1, 0xfc, 0, 0, 0, 0, 0, 0),
    DG_OP("std", DG_G_MOVE, DG_MAP_1, 0xfd, 0, 0, 0, 0, 0, 0),
    DG_OP("nop", DG_G_MOVE, DG_MAP_1, 0x90, 0, 0, 0, 0, 0, 0),
    DG_OP("pause", DG_G_MOVE, DG_MAP_1, 0x90, 0xf3, 0, 0, 0, 0, 0),
    DG_EXT("nop rm", DG_G_MOVE, DG_MAP_0F, 0x1f, 0, DG_SZ_W | DG_SZ_D, 0, 0, 0, 0, 0),
    DG_SPECIAL("xlat", DG_G_MOVE, dg_unit_xlat, 0xd7, 0, 0, 0, 0),
    { .name = "lfence", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0xae, .form = DG_FORM_EXT, .ext = 5,
      .mem = DG_MEM_REG, .traits = DG_T_NOREXW },
    { .name = "mfence", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0xae, .form = DG_FORM_EXT, .ext = 6,
      .mem = DG_MEM_REG, .traits = DG_T_NOREXW },
    { .name = "sfence", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0xae, .form = DG_FORM_EXT, .ext = 7,
      .mem = DG_MEM_REG, .traits = DG_T_NOREXW },
    { .name = "clflush", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0xae, .form = DG_FORM_EXT, .ext = 7, .msz = 1,
      .mem = DG_MEM_ONLY, .traits = DG_T_NOREXW },
    { .name = "prefetch", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0x18, .form = DG_FORM_EXT, .msz = 1,
      .mem = DG_MEM_ONLY, .traits = DG_T_EXTR | DG_T_NOREXW },
    { .name = "prefetch (0f 0d /0)", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0x0d, .form = DG_FORM_EXT, .ext = 0,
      .msz = 1, .mem = DG_MEM_ONLY, .traits = DG_T_NOREXW },
    { .name = "prefetchw", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0x0d, .form = DG_FORM_EXT, .ext = 1, .msz = 1,
      .mem = DG_MEM_ONLY, .traits = DG_T_NOREXW },
    { .name = "movnti", .grp = DG_G_MOVE, .map = DG_MAP_0F, .op = 0xc3, .form = DG_FORM_RM, .sizes = DG_SZ_DQ,
      .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_ONLY, .traits = DG_T_WRM },
    { .name = "crc32 r,rm8", .grp = DG_G_BIT, .map = DG_MAP_0F38, .op = 0xf0, .pfx = 0xf2, .form = DG_FORM_RM,
      .sizes = DG_SZ_DQ, .rk = DG_K_GPR, .mk = DG_K_GPR, .msz = 1, .mem = DG_MEM_ANY, .traits = DG_T_WREG },
    { .name = "crc32 r,rm", .grp = DG_G_BIT, .map = DG_MAP_0F38, .op = 0xf1, .pfx = 0xf2, .form = DG_FORM_RM,
      .sizes = DG_SZ_WDQ, .rk = DG_K_GPR, .mk = DG_K_GPR, .rsz = 4, .mem = DG_MEM_ANY, .traits = DG_T_WREG },

    /* Control flow */
    DG_SPECIAL("jcc rel8", DG_G_BRANCH, dg_unit_branch, 0x70, 0, 0, 0, DG_T_NOBODY),
    DG_SPECIAL("jcc rel32", DG_G_BRANCH, dg_unit_branch, 0x80, 0, 0, 1, DG_T_NOBODY),
    DG_SPECIAL("jmp rel8", DG_G_BRANCH, dg_unit_branch, 0xeb, 0, 0, 2, DG_T_NOBODY),
    DG_SPECIAL("jmp rel32", DG_G_BRANCH, dg_unit_branch, 0xe9, 0, 0, 3, DG_T_NOBODY),
    DG_SPECIAL("jmp rm64", DG_G_BRANCH, dg_unit_branch, 0xff, 4, 0, 4, DG_T_NOBODY),
    DG_SPECIAL("loop/jrcxz fwd", DG_G_BRANCH, dg_unit_branch, 0xe2, 0, 0, 5, DG_T_NOBODY),
    DG_SPECIAL("loop back", DG_G_BRANCH, dg_unit_loop, 0xe2, 0, 0, 0, DG_T_NOBODY),
    DG_SPECIAL("call rel32", DG_G_BRANCH, dg_unit_call, 0xe8, 0, 0, 0, DG_T_NOBODY),
    DG_SPECIAL("call r64", DG_G_BRANCH, dg_unit_call, 0xff, 2, 0, 1, DG_T_NOBODY),
    DG_SPECIAL("call m64", DG_G_BRANCH, dg_unit_call, 0xff, 2, 0, 2, DG_T_NOBODY),
    DG_SPECIAL("call next; pop", DG_G_BRANCH, dg_unit_call, 0xe8, 0, 0, 3, DG_T_NOBODY),

    /* Stack */
    DG_SPECIAL("push r", DG_G_STACK, dg_unit_stack, 0x50, 0, 0, 0, 0),
    DG_SPECIAL("pop r", DG_G_STACK, dg_unit_stack, 0x58, 0, 0, 1, 0),
    DG_SPECIAL("push imm", DG_G_STACK, dg_unit_stack, 0x68, 0, 0, 2, 0),
    DG_SPECIAL("push rm", DG_G_STACK, dg_unit_stack, 0xff, 6, 0, 3, 0),
    DG_SPECIAL("pop rm", DG_G_STACK, dg_unit_stack, 0x8f, 0, 0, 4, 0),
    DG_SPECIAL("pushf/popf", DG_G_STACK, dg_unit_stack, 0x9c, 0, 0, 5, 0),
    DG_SPECIAL("enter/leave", DG_G_STACK, dg_unit_stack, 0xc8, 0, 0, 6, DG_T_NOBODY),

    /* Strings (arg 1: always with a REP prefix) */
    DG_SPECIAL("movsb", DG_G_STRING, dg_unit_string, 0xa4, 0, 0, 0, 0),
    DG_SPECIAL("movs", DG_G_STRING, dg_unit_string, 0xa5, 0, 0, 0, 0),
    DG_SPECIAL("cmpsb", DG_G_STRING, dg_unit_string, 0xa6, 0, 0, 0, 0),
    DG_SPECIAL("cmps", DG_G_STRING, dg_unit_string, 0xa7, 0, 0, 0, 0),
    DG_SPECIAL("stosb", DG_G_STRING, dg_unit_string, 0xaa, 0, 0, 0, 0),
    DG_SPECIAL("stos", DG_G_STRING, dg_unit_string, 0xab, 0, 0, 0, 0),
    DG_SPECIAL("lodsb", DG_G_STRING, dg_unit_string, 0xac, 0, 0, 0, 0),
    DG_SPECIAL("lods", DG_G_STRING, dg_unit_string, 0xad, 0, 0, 0, 0),
    DG_SPECIAL("scasb", DG_G_STRING, dg_unit_string, 0xae, 0, 0, 0, 0),
    DG_SPECIAL("scas", DG_G_STRING, dg_unit_string, 0xaf, 0, 0, 0, 0),
    DG_SPECIAL("rep movs", DG_G_STRING, dg_unit_string, 0xa5, 0, 0, 1, 0),
    DG_SPECIAL("rep cmps", DG_G_STRING, dg_unit_string, 0xa7, 0, 0, 1, 0),
    DG_SPECIAL("rep stos", DG_G_STRING, dg_unit_string, 0xab, 0, 0, 1, 0),
    DG_SPECIAL("rep scas", DG_G_STRING, dg_unit_string, 0xaf, 0, 0, 1, 0),

    /* Faults: #UD for UD2, opcodes invalid in 64-bit mode (SDM vol. 2, appendix A.2.5) and
     * LOCK on an instruction or operand form that does not allow it (SDM vol. 2, LOCK). */
    DG_OP("ud2", DG_G_FAULT, DG_MAP_0F, 0x0b, 0, 0, DG_T_LAST | DG_T_INVALID, 0, 0, 0),
    DG_OP("push es (64-bit #UD)", DG_G_FAULT, DG_MAP_1, 0x06, 0, 0, DG_T_LAST | DG_T_INVALID, 0, 0, 0),
    DG_OP("pop ds (64-bit #UD)", DG_G_FAULT, DG_MAP_1, 0x1f, 0, 0, DG_T_LAST | DG_T_INVALID, 0, 0, 0),
    DG_OP("daa (64-bit #UD)", DG_G_FAULT, DG_MAP_1, 0x27, 0, 0, DG_T_LAST | DG_T_INVALID, 0, 0, 0),
    DG_OP("aas (64-bit #UD)", DG_G_FAULT, DG_MAP_1, 0x3f, 0, 0, DG_T_LAST | DG_T_INVALID, 0, 0, 0),
    DG_OP("pusha (64-bit #UD)", DG_G_FAULT, DG_MAP_1, 0x60, 0, 0, DG_T_LAST | DG_T_INVALID, 0, 0, 0),
    DG_OP("into (64-bit #UD)", DG_G_FAULT, DG_MAP_1, 0xce, 0, 0, DG_T_LAST | DG_T_INVALID, 0, 0, 0),
    DG_OP("aam (64-bit #UD)", DG_G_FAULT, DG_MAP_1, 0xd4, 0, 0, DG_T_LAST | DG_T_INVALID, 0, 0, 0),
    { .name = "lock add reg", .grp = DG_G_FAULT, .op = 0x01, .pfx = 0xf0, .form = DG_FORM_RM, .sizes = DG_SZ_WDQ,
      .rk = DG_K_GPR, .mk = DG_K_GPR, .mem = DG_MEM_REG, .traits = DG_T_WRM | DG_T_LAST | DG_T_INVALID },
    DG_SPECIAL("non-canonical access", DG_G_FAULT, dg_unit_noncanonical, 0x8b, 0, 0, 0, DG_T_LAST),
    /* Left out: LOCK MOV m, r (#UD on hardware; QEMU 5 executes it) and LOCK CMP m, r (#UD; it
     * aborts Unicorn 2.0.1 with "tcg fatal error" in tcg.c). */
    { .name = NULL },
};

#endif
