/* iem-fpu.c - the interpreter's x87/MMX family: shared state helpers and the mnemonic table. */
#include <string.h>

#include <Zydis/Zydis.h>

#include "vireo/rt.h"

#include "iem-fpu.h"
#include "iem-mmx.h"

#define LOG_COMPONENT "iem-fpu"

/*
 * Design of the family (files iem-fpu*.c and iem-mmx.c):
 * - iem-fpu-host.c: every x87 instruction that computes, run on the host as the same
 *   encoding against a copy of the guest's x87 state (exact 80-bit results, flags and
 *   masked/unmasked responses by construction).
 * - iem-fpu-ctl.c: the control instructions (FNINIT, FNCLEX, FLDCW, FNSTCW, FNSTSW, FLDENV,
 *   FNSTENV, FRSTOR, FNSAVE, FWAIT) with the 16/32-bit real and protected environment formats.
 * - iem-fpu-fxsr.c: FXSAVE/FXRSTOR (and the REX.W forms).
 * - iem-mmx.c: MMX (and the MMX-register forms of SSE/SSE2/SSSE3 integer instructions) in C;
 *   the SIMD family forwards MMX-operand forms of shared mnemonics to iem_mmx_exec.
 * Exceptions: an unmasked x87 exception only sets ES/B; the next waiting instruction raises
 * #MF (CR0.NE=1), SDM vol. 1, 8.6 "x87 FPU exception synchronization".
 */

uint16_t iem_fpu_tags_full(const struct cpu_fpu *f)
{
    unsigned top = iem_fpu_top(f);
    uint16_t ftw = 0;
    for (unsigned p = 0; p < 8; p++) {
        unsigned tag;
        if (!(f->ftw & (1u << p))) {
            tag = 3; /* empty */
        } else {
            const uint8_t *r = f->st[(p - top) & 7];
            uint64_t mant;
            memcpy(&mant, r, 8);
            unsigned exp = (unsigned)(r[8] | (r[9] << 8)) & 0x7fff;
            /* SDM vol. 2A, FXSAVE, "Recreating FSAVE format": 00 valid, 01 zero, 10 special. */
            if (exp == 0x7fff)
                tag = 2;
            else if (exp == 0)
                tag = mant == 0 ? 1 : 2;
            else
                tag = (mant >> 63) ? 0 : 2;
        }
        ftw |= (uint16_t)(tag << (2 * p));
    }
    return ftw;
}

uint8_t iem_fpu_tags_abridge(uint16_t ftw)
{
    uint8_t tags = 0;
    for (unsigned p = 0; p < 8; p++)
        if (((ftw >> (2 * p)) & 3) != 3)
            tags |= (uint8_t)(1u << p);
    return tags;
}

void iem_fpu_reset(struct cpu_fpu *f)
{
    f->fcw = IEM_FCW_INIT;
    f->fsw = 0;
    f->ftw = 0;
    f->fop = 0;
    f->fip = 0;
    f->fdp = 0;
}

void iem_fpu_pending(struct iem_cpu *cpu)
{
    if (cpu->s->cr0 & IEM_CR0_NE)
        iem_raise(cpu, IEM_X_MF);
    /* CR0.NE=0 (MS-DOS compatible mode, SDM vol. 1, 8.7): the processor asserts FERR#, which
     * a PC routes to IRQ13 through the board; that wiring is the board's.  Execution goes on
     * as with IGNNE# asserted, and ES stays set until the guest clears it. */
    LOG_DEBUG("x87 exception pending with CR0.NE=0 at %#llx (FERR#)", (unsigned long long)cpu->insn_rip);
}

void iem_fpu_enter(struct iem_cpu *cpu, const struct iem_insn *in, bool waiting)
{
    if (in->prefixes & IEM_PFX_LOCK)
        iem_raise_ud(cpu);
    /* SDM vol. 3A, 2.5 (CR0.EM, CR0.TS) and Table 2-2: x87 instructions take #NM. */
    if (cpu->s->cr0 & (IEM_CR0_EM | IEM_CR0_TS))
        iem_raise(cpu, IEM_X_NM);
    if (waiting && (cpu->s->fpu.fsw & IEM_FSW_ES))
        iem_fpu_pending(cpu);
}

/* ModRM of a memory operand rebuilt from the decoded effective address (the canonical
 * encoding: the shortest displacement); only FOP sees it. */
static uint8_t mem_modrm(const struct iem_insn *in)
{
    const struct iem_mem *m = &in->mem;
    uint8_t reg = (uint8_t)((in->modrm_reg & 7) << 3);
    int64_t disp = m->disp;
    unsigned mod, rm;
    if (in->addrsize == 2) {
        unsigned b = m->base, x = m->index;
        disp = (int16_t)disp;
        if (b == CPU_RBX && x == CPU_RSI) rm = 0;
        else if (b == CPU_RBX && x == CPU_RDI) rm = 1;
        else if (b == CPU_RBP && x == CPU_RSI) rm = 2;
        else if (b == CPU_RBP && x == CPU_RDI) rm = 3;
        else if (b == CPU_RSI || (b == IEM_NOREG && x == CPU_RSI)) rm = 4;
        else if (b == CPU_RDI || (b == IEM_NOREG && x == CPU_RDI)) rm = 5;
        else if (b == CPU_RBP) rm = 6;
        else if (b == CPU_RBX) rm = 7;
        else return (uint8_t)(reg | 6); /* [disp16] */
        if (disp == 0 && rm != 6) mod = 0;
        else if (disp == (int8_t)disp) mod = 1;
        else mod = 2;
        return (uint8_t)((mod << 6) | reg | rm);
    }
    if (m->rip_rel)
        return (uint8_t)(reg | 5);
    if (m->base == IEM_NOREG)
        return (uint8_t)(reg | (m->index != IEM_NOREG || in->addrsize == 8 ? 4 : 5));
    rm = (m->index != IEM_NOREG || (m->base & 7) == 4) ? 4 : (m->base & 7u);
    if (disp == 0 && (m->base & 7) != 5) mod = 0;
    else if (disp == (int8_t)disp) mod = 1;
    else mod = 2;
    return (uint8_t)((mod << 6) | reg | rm);
}

/* The encodings without an ST(i) operand (SDM vol. 2, A.5.2). */
static bool fixed_encoding(unsigned mnemonic, uint8_t *opc, uint8_t *modrm)
{
    static const struct { uint16_t mnemonic; uint8_t opc, modrm; } tab[] = {
        {ZYDIS_MNEMONIC_FNOP, 0xd9, 0xd0},    {ZYDIS_MNEMONIC_FCHS, 0xd9, 0xe0},    {ZYDIS_MNEMONIC_FABS, 0xd9, 0xe1},
        {ZYDIS_MNEMONIC_FTST, 0xd9, 0xe4},    {ZYDIS_MNEMONIC_FXAM, 0xd9, 0xe5},    {ZYDIS_MNEMONIC_FLD1, 0xd9, 0xe8},
        {ZYDIS_MNEMONIC_FLDL2T, 0xd9, 0xe9},  {ZYDIS_MNEMONIC_FLDL2E, 0xd9, 0xea},  {ZYDIS_MNEMONIC_FLDPI, 0xd9, 0xeb},
        {ZYDIS_MNEMONIC_FLDLG2, 0xd9, 0xec},  {ZYDIS_MNEMONIC_FLDLN2, 0xd9, 0xed},  {ZYDIS_MNEMONIC_FLDZ, 0xd9, 0xee},
        {ZYDIS_MNEMONIC_F2XM1, 0xd9, 0xf0},   {ZYDIS_MNEMONIC_FYL2X, 0xd9, 0xf1},   {ZYDIS_MNEMONIC_FPTAN, 0xd9, 0xf2},
        {ZYDIS_MNEMONIC_FPATAN, 0xd9, 0xf3},  {ZYDIS_MNEMONIC_FXTRACT, 0xd9, 0xf4}, {ZYDIS_MNEMONIC_FPREM1, 0xd9, 0xf5},
        {ZYDIS_MNEMONIC_FDECSTP, 0xd9, 0xf6}, {ZYDIS_MNEMONIC_FINCSTP, 0xd9, 0xf7}, {ZYDIS_MNEMONIC_FPREM, 0xd9, 0xf8},
        {ZYDIS_MNEMONIC_FYL2XP1, 0xd9, 0xf9}, {ZYDIS_MNEMONIC_FSQRT, 0xd9, 0xfa},   {ZYDIS_MNEMONIC_FSINCOS, 0xd9, 0xfb},
        {ZYDIS_MNEMONIC_FRNDINT, 0xd9, 0xfc}, {ZYDIS_MNEMONIC_FSCALE, 0xd9, 0xfd},  {ZYDIS_MNEMONIC_FSIN, 0xd9, 0xfe},
        {ZYDIS_MNEMONIC_FCOS, 0xd9, 0xff},    {ZYDIS_MNEMONIC_FUCOMPP, 0xda, 0xe9}, {ZYDIS_MNEMONIC_FCOMPP, 0xde, 0xd9},
        {ZYDIS_MNEMONIC_FENI8087_NOP, 0xdb, 0xe0}, {ZYDIS_MNEMONIC_FDISI8087_NOP, 0xdb, 0xe1},
        {ZYDIS_MNEMONIC_FNCLEX, 0xdb, 0xe2},  {ZYDIS_MNEMONIC_FNINIT, 0xdb, 0xe3},
        {ZYDIS_MNEMONIC_FSETPM287_NOP, 0xdb, 0xe4},
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(tab); i++) {
        if (tab[i].mnemonic == mnemonic) {
            *opc = tab[i].opc;
            *modrm = tab[i].modrm;
            return true;
        }
    }
    return false;
}

void iem_fpu_encoding(const struct iem_insn *in, uint8_t *opc, uint8_t *modrm)
{
    unsigned rm = 0;
    bool mem = false;
    for (unsigned i = 0; i < in->nops && i < 4; i++) {
        if (in->op[i].kind == IEM_OPK_MEM)
            mem = true;
        else if (in->op[i].kind == IEM_OPK_ST && in->op[i].reg != 0 && rm == 0)
            rm = in->op[i].reg & 7u;
    }
    if (!mem && fixed_encoding(in->mnemonic, opc, modrm))
        return;
    *opc = in->opcode;
    if (mem)
        *modrm = mem_modrm(in);
    else if (in->mnemonic == ZYDIS_MNEMONIC_FNSTSW)
        *modrm = 0xe0; /* FNSTSW AX: DF E0 */
    else
        *modrm = (uint8_t)(0xc0 | ((in->modrm_reg & 7u) << 3) | rm);
}

void iem_fpu_record(struct iem_cpu *cpu, const struct iem_insn *in, uint8_t opc, uint8_t modrm)
{
    struct cpu_fpu *f = &cpu->s->fpu;
    bool long64 = cpu->mode == IEM_MODE_LONG64;
    f->fop = (uint16_t)(((opc & 7u) << 8) | modrm);
    if (long64)
        f->fip = cpu->insn_rip;
    else
        f->fip = (uint32_t)cpu->insn_rip | ((uint64_t)cpu->s->seg[CPU_CS].sel << 32);
    if (modrm < 0xc0) {
        uint64_t ea = iem_ea(cpu, in);
        unsigned seg = in->mem.seg < CPU_SEG_COUNT ? in->mem.seg : CPU_DS;
        f->fdp = long64 ? ea : ((uint32_t)ea | ((uint64_t)cpu->s->seg[seg].sel << 32));
    }
}

/* ---- The mnemonic table -------------------------------------------------------------- */

const struct iem_handler_map g_iem_map_fpu[] = {
    /* Computing instructions: the host runs them (iem-fpu-host.c). */
    {ZYDIS_MNEMONIC_F2XM1, iem_fpu_op},    {ZYDIS_MNEMONIC_FABS, iem_fpu_op},     {ZYDIS_MNEMONIC_FADD, iem_fpu_op},
    {ZYDIS_MNEMONIC_FADDP, iem_fpu_op},    {ZYDIS_MNEMONIC_FBLD, iem_fpu_op},     {ZYDIS_MNEMONIC_FBSTP, iem_fpu_op},
    {ZYDIS_MNEMONIC_FCHS, iem_fpu_op},     {ZYDIS_MNEMONIC_FCMOVB, iem_fpu_op},   {ZYDIS_MNEMONIC_FCMOVBE, iem_fpu_op},
    {ZYDIS_MNEMONIC_FCMOVE, iem_fpu_op},   {ZYDIS_MNEMONIC_FCMOVNB, iem_fpu_op},  {ZYDIS_MNEMONIC_FCMOVNBE, iem_fpu_op},
    {ZYDIS_MNEMONIC_FCMOVNE, iem_fpu_op},  {ZYDIS_MNEMONIC_FCMOVNU, iem_fpu_op},  {ZYDIS_MNEMONIC_FCMOVU, iem_fpu_op},
    {ZYDIS_MNEMONIC_FCOM, iem_fpu_op},     {ZYDIS_MNEMONIC_FCOMI, iem_fpu_op},    {ZYDIS_MNEMONIC_FCOMIP, iem_fpu_op},
    {ZYDIS_MNEMONIC_FCOMP, iem_fpu_op},    {ZYDIS_MNEMONIC_FCOMPP, iem_fpu_op},   {ZYDIS_MNEMONIC_FCOS, iem_fpu_op},
    {ZYDIS_MNEMONIC_FDECSTP, iem_fpu_op},  {ZYDIS_MNEMONIC_FDIV, iem_fpu_op},     {ZYDIS_MNEMONIC_FDIVP, iem_fpu_op},
    {ZYDIS_MNEMONIC_FDIVR, iem_fpu_op},    {ZYDIS_MNEMONIC_FDIVRP, iem_fpu_op},   {ZYDIS_MNEMONIC_FFREE, iem_fpu_op},
    {ZYDIS_MNEMONIC_FFREEP, iem_fpu_op},   {ZYDIS_MNEMONIC_FIADD, iem_fpu_op},    {ZYDIS_MNEMONIC_FICOM, iem_fpu_op},
    {ZYDIS_MNEMONIC_FICOMP, iem_fpu_op},   {ZYDIS_MNEMONIC_FIDIV, iem_fpu_op},    {ZYDIS_MNEMONIC_FIDIVR, iem_fpu_op},
    {ZYDIS_MNEMONIC_FILD, iem_fpu_op},     {ZYDIS_MNEMONIC_FIMUL, iem_fpu_op},    {ZYDIS_MNEMONIC_FINCSTP, iem_fpu_op},
    {ZYDIS_MNEMONIC_FIST, iem_fpu_op},     {ZYDIS_MNEMONIC_FISTP, iem_fpu_op},    {ZYDIS_MNEMONIC_FISTTP, iem_fpu_op},
    {ZYDIS_MNEMONIC_FISUB, iem_fpu_op},    {ZYDIS_MNEMONIC_FISUBR, iem_fpu_op},   {ZYDIS_MNEMONIC_FLD, iem_fpu_op},
    {ZYDIS_MNEMONIC_FLD1, iem_fpu_op},     {ZYDIS_MNEMONIC_FLDL2E, iem_fpu_op},   {ZYDIS_MNEMONIC_FLDL2T, iem_fpu_op},
    {ZYDIS_MNEMONIC_FLDLG2, iem_fpu_op},   {ZYDIS_MNEMONIC_FLDLN2, iem_fpu_op},   {ZYDIS_MNEMONIC_FLDPI, iem_fpu_op},
    {ZYDIS_MNEMONIC_FLDZ, iem_fpu_op},     {ZYDIS_MNEMONIC_FMUL, iem_fpu_op},     {ZYDIS_MNEMONIC_FMULP, iem_fpu_op},
    {ZYDIS_MNEMONIC_FNOP, iem_fpu_op},     {ZYDIS_MNEMONIC_FPATAN, iem_fpu_op},   {ZYDIS_MNEMONIC_FPREM, iem_fpu_op},
    {ZYDIS_MNEMONIC_FPREM1, iem_fpu_op},   {ZYDIS_MNEMONIC_FPTAN, iem_fpu_op},    {ZYDIS_MNEMONIC_FRNDINT, iem_fpu_op},
    {ZYDIS_MNEMONIC_FSCALE, iem_fpu_op},   {ZYDIS_MNEMONIC_FSIN, iem_fpu_op},     {ZYDIS_MNEMONIC_FSINCOS, iem_fpu_op},
    {ZYDIS_MNEMONIC_FSQRT, iem_fpu_op},    {ZYDIS_MNEMONIC_FST, iem_fpu_op},      {ZYDIS_MNEMONIC_FSTP, iem_fpu_op},
    {ZYDIS_MNEMONIC_FSTPNCE, iem_fpu_op},  {ZYDIS_MNEMONIC_FSUB, iem_fpu_op},     {ZYDIS_MNEMONIC_FSUBP, iem_fpu_op},
    {ZYDIS_MNEMONIC_FSUBR, iem_fpu_op},    {ZYDIS_MNEMONIC_FSUBRP, iem_fpu_op},   {ZYDIS_MNEMONIC_FTST, iem_fpu_op},
    {ZYDIS_MNEMONIC_FUCOM, iem_fpu_op},    {ZYDIS_MNEMONIC_FUCOMI, iem_fpu_op},   {ZYDIS_MNEMONIC_FUCOMIP, iem_fpu_op},
    {ZYDIS_MNEMONIC_FUCOMP, iem_fpu_op},   {ZYDIS_MNEMONIC_FUCOMPP, iem_fpu_op},  {ZYDIS_MNEMONIC_FXAM, iem_fpu_op},
    {ZYDIS_MNEMONIC_FXCH, iem_fpu_op},     {ZYDIS_MNEMONIC_FXTRACT, iem_fpu_op},  {ZYDIS_MNEMONIC_FYL2X, iem_fpu_op},
    {ZYDIS_MNEMONIC_FYL2XP1, iem_fpu_op},
    /* Control instructions (iem-fpu-ctl.c). */
    {ZYDIS_MNEMONIC_FNINIT, iem_fpu_fninit},   {ZYDIS_MNEMONIC_FNCLEX, iem_fpu_fnclex},
    {ZYDIS_MNEMONIC_FLDCW, iem_fpu_fldcw},     {ZYDIS_MNEMONIC_FNSTCW, iem_fpu_fnstcw},
    {ZYDIS_MNEMONIC_FNSTSW, iem_fpu_fnstsw},   {ZYDIS_MNEMONIC_FLDENV, iem_fpu_fldenv},
    {ZYDIS_MNEMONIC_FNSTENV, iem_fpu_fnstenv}, {ZYDIS_MNEMONIC_FRSTOR, iem_fpu_frstor},
    {ZYDIS_MNEMONIC_FNSAVE, iem_fpu_fnsave},   {ZYDIS_MNEMONIC_FWAIT, iem_fpu_fwait},
    {ZYDIS_MNEMONIC_FENI8087_NOP, iem_fpu_legacy_nop}, {ZYDIS_MNEMONIC_FDISI8087_NOP, iem_fpu_legacy_nop},
    {ZYDIS_MNEMONIC_FSETPM287_NOP, iem_fpu_legacy_nop},
    /* FXSAVE/FXRSTOR (iem-fpu-fxsr.c). */
    {ZYDIS_MNEMONIC_FXSAVE, iem_fpu_fxsave},   {ZYDIS_MNEMONIC_FXSAVE64, iem_fpu_fxsave},
    {ZYDIS_MNEMONIC_FXRSTOR, iem_fpu_fxrstor}, {ZYDIS_MNEMONIC_FXRSTOR64, iem_fpu_fxrstor},
    /* MMX-only mnemonics (iem-mmx.c); the shared ones reach iem_mmx_exec through the SIMD table. */
    {ZYDIS_MNEMONIC_EMMS, iem_mmx_emms},       {ZYDIS_MNEMONIC_PSHUFW, iem_mmx_handler},
    {ZYDIS_MNEMONIC_MOVNTQ, iem_mmx_handler},  {ZYDIS_MNEMONIC_MASKMOVQ, iem_mmx_handler},
    {0, NULL},
};
