/* iem-decode.c - instruction decoding with Zydis into struct iem_insn, handler selection, and block building at CS:RIP. */

/*
 * Design.  Zydis (one decoder per machine mode, set up once) decodes; each instruction
 * becomes a struct iem_insn with a handler from the families' tables.  Rules that
 * instruction families rely on:
 *
 * - op[] holds the visible operands (explicit and implicit, Zydis order, at most 4).
 *   An immediate is zero-extended to its own size, or for sign-extended immediates
 *   sign-extended to the operand size (op[i].size says which); op[i].reg selects imm
 *   (0) or imm2 (1) for the first and second immediate (ENTER).  Relative branches
 *   are IEM_OPK_REL with the sign-extended displacement in imm; far pointers are
 *   IEM_OPK_PTR (imm = offset, imm2 = selector).  A memory operand wider than 255
 *   bytes (FXSAVE) has size 0.
 * - insn->mem is the visible memory operand, or for string instructions and XLAT the
 *   hidden one: the DS:rSI side after a segment override (MOVS, CMPS, LODS, OUTS, XLAT),
 *   else ES:rDI (STOS, SCAS, INS).  Stack operands are never described there.
 * - opsize is Zydis' operand width in bytes (1 for byte forms such as MOVSB, IN AL).
 * - A mnemonic registered by several families goes to the one the instruction belongs
 *   to: x87 forms to fpu, MMX/SSE forms (MMX or XMM operands, SSE extensions) to simd,
 *   forms with a control, debug or segment register to sys, the rest to int; when that
 *   family does not register it, the first of int, sys, fpu, simd that does.  So MOV,
 *   MOVSD and CMPSD can be registered by two families.
 * - Instructions outside the advertised CPUID features (any VEX/EVEX/XOP/3DNow!
 *   encoding, and ISA extensions not in the list below), undecodable bytes and
 *   mnemonics without a handler decode into a #UD instruction; instructions longer
 *   than 15 bytes into #GP(0).  TZCNT is BSF (BMI1 is not advertised), MPX and CET
 *   hints are NOPs, as on a processor without those features.
 *
 * Blocks: runs of up to IEM_BLOCK_MAX instructions in one page, ending after
 * unconditional control transfers, port I/O, and instructions that change mode, paging,
 * descriptor tables or interruptibility; a conditional branch that is not taken falls
 * through inside its block.  Each instruction gets the specialised handler of
 * iem_fast_select (iem-int-fast.c) when its form has one.  An instruction that crosses into the next
 * page, or past the CS limit, is decoded only when it is the first of its block, so a
 * fetch fault (#PF on the next page, #GP on the limit) is raised when that
 * instruction executes and not before the instructions in front of it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "iem-core.h"
#include "iem-fast.h"

#define LOG_COMPONENT "iem"

enum { FAM_INT, FAM_SYS, FAM_FPU, FAM_SIMD, FAM_COUNT };

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;
static ZydisDecoder g_decoders[ZYDIS_MACHINE_MODE_MAX_VALUE + 1];
static iem_fn *g_fns[FAM_COUNT][ZYDIS_MNEMONIC_MAX_VALUE + 1];
static int8_t g_cond[ZYDIS_MNEMONIC_MAX_VALUE + 1];

static int insn_raise_ud(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_raise_ud(cpu);
}

static int insn_raise_gp0(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_raise_gp0(cpu);
}

static void table_add(int fam, const struct iem_handler_map *map)
{
    for (; map && map->fn; map++)
        if (map->mnemonic > ZYDIS_MNEMONIC_INVALID && map->mnemonic <= ZYDIS_MNEMONIC_MAX_VALUE)
            g_fns[fam][map->mnemonic] = map->fn;
}

static void cond_add(const ZydisMnemonic *list, const int8_t *conds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g_cond[list[i]] = conds[i];
}

static void decode_init(void)
{
    iem_fast_init();
    static const struct {
        ZydisMachineMode mode;
        ZydisStackWidth width;
    } modes[] = {
        { ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64 },
        { ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_STACK_WIDTH_32 },
        { ZYDIS_MACHINE_MODE_LONG_COMPAT_16, ZYDIS_STACK_WIDTH_16 },
        { ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32 },
        { ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16 },
        { ZYDIS_MACHINE_MODE_REAL_16, ZYDIS_STACK_WIDTH_16 },
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(modes); i++) {
        ZydisDecoder *d = &g_decoders[modes[i].mode];
        ZydisDecoderInit(d, modes[i].mode, modes[i].width);
        /* The advertised CPU has none of these: their encodings are the older NOP/BSF forms. */
        ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE);
        ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_CET, ZYAN_FALSE);
        ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_TZCNT, ZYAN_FALSE);
        ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_CLDEMOTE, ZYAN_FALSE);
        ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_LZCNT, ZYAN_TRUE);
    }
    table_add(FAM_INT, g_iem_map_int);
    table_add(FAM_SYS, g_iem_map_sys);
    table_add(FAM_FPU, g_iem_map_fpu);
    table_add(FAM_SIMD, g_iem_map_simd);

    memset(g_cond, -1, sizeof(g_cond));
    /* Condition codes in Jcc's opcode order (SDM vol. 1 B.1.4.7): O NO B NB Z NZ BE NBE S NS P NP L NL LE NLE. */
    static const int8_t seq[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    static const ZydisMnemonic jcc[16] = {
        ZYDIS_MNEMONIC_JO, ZYDIS_MNEMONIC_JNO, ZYDIS_MNEMONIC_JB, ZYDIS_MNEMONIC_JNB,
        ZYDIS_MNEMONIC_JZ, ZYDIS_MNEMONIC_JNZ, ZYDIS_MNEMONIC_JBE, ZYDIS_MNEMONIC_JNBE,
        ZYDIS_MNEMONIC_JS, ZYDIS_MNEMONIC_JNS, ZYDIS_MNEMONIC_JP, ZYDIS_MNEMONIC_JNP,
        ZYDIS_MNEMONIC_JL, ZYDIS_MNEMONIC_JNL, ZYDIS_MNEMONIC_JLE, ZYDIS_MNEMONIC_JNLE,
    };
    static const ZydisMnemonic setcc[16] = {
        ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETNB,
        ZYDIS_MNEMONIC_SETZ, ZYDIS_MNEMONIC_SETNZ, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETNBE,
        ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETNP,
        ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETLE, ZYDIS_MNEMONIC_SETNLE,
    };
    static const ZydisMnemonic cmovcc[16] = {
        ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVNB,
        ZYDIS_MNEMONIC_CMOVZ, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVNBE,
        ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVP, ZYDIS_MNEMONIC_CMOVNP,
        ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVNL, ZYDIS_MNEMONIC_CMOVLE, ZYDIS_MNEMONIC_CMOVNLE,
    };
    /* FCMOVcc tests B, E, BE, U (= P) and their negations (SDM vol. 2A FCMOVcc). */
    static const ZydisMnemonic fcmov[8] = {
        ZYDIS_MNEMONIC_FCMOVB, ZYDIS_MNEMONIC_FCMOVE, ZYDIS_MNEMONIC_FCMOVBE, ZYDIS_MNEMONIC_FCMOVU,
        ZYDIS_MNEMONIC_FCMOVNB, ZYDIS_MNEMONIC_FCMOVNE, ZYDIS_MNEMONIC_FCMOVNBE, ZYDIS_MNEMONIC_FCMOVNU,
    };
    static const int8_t fcmov_cond[8] = { 2, 4, 6, 10, 3, 5, 7, 11 };
    cond_add(jcc, seq, 16);
    cond_add(setcc, seq, 16);
    cond_add(cmovcc, seq, 16);
    cond_add(fcmov, fcmov_cond, 8);
}

/* ISA extensions of the advertised CPUID (see iem-sys.c); everything else raises #UD. */
static bool isa_ext_allowed(ZydisISAExt ext)
{
    switch (ext) {
    case ZYDIS_ISA_EXT_BASE:
    case ZYDIS_ISA_EXT_X87:
    case ZYDIS_ISA_EXT_MMX:
    case ZYDIS_ISA_EXT_SSE:
    case ZYDIS_ISA_EXT_SSE2:
    case ZYDIS_ISA_EXT_SSE3:
    case ZYDIS_ISA_EXT_SSSE3:
    case ZYDIS_ISA_EXT_SSE4: /* SSE4.1, SSE4.2 and POPCNT */
    case ZYDIS_ISA_EXT_LONGMODE:
    case ZYDIS_ISA_EXT_LZCNT:
    case ZYDIS_ISA_EXT_MOVBE:
    case ZYDIS_ISA_EXT_PAUSE:
    case ZYDIS_ISA_EXT_CLFSH:
    case ZYDIS_ISA_EXT_RDTSCP:
    case ZYDIS_ISA_EXT_AMD3DNOW_PREFETCH: /* PREFETCH/PREFETCHW: hints */
        return true;
    default:
        return false;
    }
}

static void map_reg(ZydisRegister r, struct iem_operand *op)
{
    op->kind = IEM_OPK_GPR;
    if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_BL)
        op->reg = (uint8_t)(r - ZYDIS_REGISTER_AL);
    else if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH)
        op->reg = (uint8_t)(IEM_GPR_AH + (r - ZYDIS_REGISTER_AH));
    else if (r >= ZYDIS_REGISTER_SPL && r <= ZYDIS_REGISTER_DIL)
        op->reg = (uint8_t)(4 + (r - ZYDIS_REGISTER_SPL));
    else if (r >= ZYDIS_REGISTER_R8B && r <= ZYDIS_REGISTER_R15B)
        op->reg = (uint8_t)(8 + (r - ZYDIS_REGISTER_R8B));
    else if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W)
        op->reg = (uint8_t)(r - ZYDIS_REGISTER_AX);
    else if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D)
        op->reg = (uint8_t)(r - ZYDIS_REGISTER_EAX);
    else if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15)
        op->reg = (uint8_t)(r - ZYDIS_REGISTER_RAX);
    else if (r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS)
        op->kind = IEM_OPK_SEG, op->reg = (uint8_t)(r - ZYDIS_REGISTER_ES);
    else if (r >= ZYDIS_REGISTER_CR0 && r <= ZYDIS_REGISTER_CR15)
        op->kind = IEM_OPK_CR, op->reg = (uint8_t)(r - ZYDIS_REGISTER_CR0);
    else if (r >= ZYDIS_REGISTER_DR0 && r <= ZYDIS_REGISTER_DR15)
        op->kind = IEM_OPK_DR, op->reg = (uint8_t)(r - ZYDIS_REGISTER_DR0);
    else if (r >= ZYDIS_REGISTER_ST0 && r <= ZYDIS_REGISTER_ST7)
        op->kind = IEM_OPK_ST, op->reg = (uint8_t)(r - ZYDIS_REGISTER_ST0);
    else if (r >= ZYDIS_REGISTER_MM0 && r <= ZYDIS_REGISTER_MM7)
        op->kind = IEM_OPK_MMX, op->reg = (uint8_t)(r - ZYDIS_REGISTER_MM0);
    else if (r >= ZYDIS_REGISTER_XMM0 && r <= ZYDIS_REGISTER_XMM15)
        op->kind = IEM_OPK_XMM, op->reg = (uint8_t)(r - ZYDIS_REGISTER_XMM0);
    else
        op->kind = IEM_OPK_NONE, op->reg = 0;
}

/* GPR index of an address register, IEM_NOREG for none; rip for RIP/EIP. */
static uint8_t addr_reg(ZydisRegister r, bool *rip)
{
    struct iem_operand op;
    if (r == ZYDIS_REGISTER_NONE)
        return IEM_NOREG;
    if (r == ZYDIS_REGISTER_RIP || r == ZYDIS_REGISTER_EIP || r == ZYDIS_REGISTER_IP) {
        if (rip)
            *rip = true;
        return IEM_NOREG;
    }
    map_reg(r, &op);
    return op.kind == IEM_OPK_GPR && op.reg < 16 ? op.reg : IEM_NOREG;
}

static void mem_from(const ZydisDecodedOperand *zo, struct iem_mem *m)
{
    m->seg = (zo->mem.segment >= ZYDIS_REGISTER_ES && zo->mem.segment <= ZYDIS_REGISTER_GS)
                 ? (uint8_t)(zo->mem.segment - ZYDIS_REGISTER_ES)
                 : CPU_DS;
    m->rip_rel = false;
    m->base = addr_reg(zo->mem.base, &m->rip_rel);
    m->index = addr_reg(zo->mem.index, NULL);
    m->scale = zo->mem.scale ? zo->mem.scale : 1;
    m->disp = zo->mem.disp.value;
}

static bool is_stack_reg(ZydisRegister r)
{
    return r == ZYDIS_REGISTER_SP || r == ZYDIS_REGISTER_ESP || r == ZYDIS_REGISTER_RSP;
}

static bool is_si_reg(ZydisRegister r)
{
    return r == ZYDIS_REGISTER_SI || r == ZYDIS_REGISTER_ESI || r == ZYDIS_REGISTER_RSI;
}

static inline uint64_t size_mask(unsigned bytes)
{
    return bytes >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * bytes)) - 1;
}

static void insn_convert(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo, struct iem_insn *in)
{
    memset(in, 0, sizeof(*in));
    in->mnemonic = (uint16_t)zi->mnemonic;
    in->len = zi->length;
    in->opsize = (uint8_t)(zi->operand_width / 8);
    in->addrsize = (uint8_t)(zi->address_width / 8);
    if (zi->attributes & ZYDIS_ATTRIB_HAS_LOCK)
        in->prefixes |= IEM_PFX_LOCK;
    if (zi->attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
        in->prefixes |= IEM_PFX_REP;
    if (zi->attributes & ZYDIS_ATTRIB_HAS_REPNE)
        in->prefixes |= IEM_PFX_REPNE;
    if (zi->attributes & ZYDIS_ATTRIB_HAS_REX)
        in->prefixes |= IEM_PFX_REX;
    /* 66 counts when present at all, also as the mandatory prefix of SSE forms. */
    if (zi->attributes & ZYDIS_ATTRIB_HAS_OPERANDSIZE)
        in->prefixes |= IEM_PFX_OPSZ;
    for (unsigned i = 0; i < zi->raw.prefix_count && i < ZYDIS_MAX_INSTRUCTION_LENGTH; i++)
        if (zi->raw.prefixes[i].value == 0x66)
            in->prefixes |= IEM_PFX_OPSZ;
    in->opcode = zi->opcode;
    in->modrm_reg = zi->raw.modrm.reg;
    in->cond = g_cond[zi->mnemonic] >= 0 ? (uint8_t)g_cond[zi->mnemonic] : 0;
    in->mem.seg = CPU_DS;
    in->mem.base = in->mem.index = IEM_NOREG;
    in->mem.scale = 1;

    unsigned nvis = RT_MIN((unsigned)zi->operand_count_visible, 4u);
    unsigned nimm = 0;
    bool have_mem = false;
    for (unsigned i = 0; i < nvis; i++) {
        const ZydisDecodedOperand *o = &zo[i];
        struct iem_operand *op = &in->op[i];
        unsigned bytes = o->size / 8;
        switch (o->type) {
        case ZYDIS_OPERAND_TYPE_REGISTER:
            map_reg(o->reg.value, op);
            op->size = (uint8_t)RT_MIN(bytes, 255u);
            break;
        case ZYDIS_OPERAND_TYPE_MEMORY:
            op->kind = IEM_OPK_MEM;
            op->size = bytes > 255 ? 0 : (uint8_t)bytes;
            mem_from(o, &in->mem);
            have_mem = true;
            break;
        case ZYDIS_OPERAND_TYPE_POINTER:
            op->kind = IEM_OPK_PTR;
            op->size = (uint8_t)bytes;
            in->imm = o->ptr.offset;
            in->imm2 = o->ptr.segment;
            break;
        case ZYDIS_OPERAND_TYPE_IMMEDIATE:
            if (o->imm.is_relative) {
                op->kind = IEM_OPK_REL;
                op->size = in->opsize;
                in->imm = (uint64_t)o->imm.value.s;
                break;
            }
            op->kind = IEM_OPK_IMM;
            /* Zydis sign-extends signed immediates to 64 bits; keep the bits the instruction uses. */
            if (o->imm.is_signed && zi->operand_width > o->size)
                bytes = zi->operand_width / 8;
            if (bytes == 0 || bytes > 8)
                bytes = 8;
            op->size = (uint8_t)bytes;
            op->reg = (uint8_t)RT_MIN(nimm, 1u);
            if (nimm++ == 0)
                in->imm = o->imm.value.u & size_mask(bytes);
            else
                in->imm2 = o->imm.value.u & size_mask(bytes);
            break;
        default:
            op->kind = IEM_OPK_NONE;
            break;
        }
        in->nops = (uint8_t)(i + 1);
    }
    if (!have_mem) {
        /* String instructions and XLAT: describe the overridable side (see the design note). */
        int pick = -1;
        for (unsigned i = nvis; i < zi->operand_count; i++) {
            const ZydisDecodedOperand *o = &zo[i];
            if (o->type != ZYDIS_OPERAND_TYPE_MEMORY || is_stack_reg(o->mem.base))
                continue;
            if (pick < 0 || is_si_reg(o->mem.base))
                pick = (int)i;
        }
        if (pick >= 0)
            mem_from(&zo[pick], &in->mem);
    }
    if (in->opsize == 0)
        in->opsize = in->addrsize;
}

/*
 * Whether execution must return to the run loop after this instruction.  Conditional
 * branches do not end a block: taken, they leave it (IEM_JUMPED); not taken, the block
 * runs on.  The run loop's lean path (iem-core.c exec_block) relies on every instruction
 * that can set EFLAGS.TF or RF or open an interrupt shadow (STI, MOV SS, POP SS) ending
 * its block.
 */
static bool insn_ends_block(const ZydisDecodedInstruction *zi, const struct iem_insn *in)
{
    switch (zi->meta.category) {
    case ZYDIS_CATEGORY_UNCOND_BR:
    case ZYDIS_CATEGORY_CALL:
    case ZYDIS_CATEGORY_RET:
    case ZYDIS_CATEGORY_INTERRUPT:
    case ZYDIS_CATEGORY_SYSCALL:
    case ZYDIS_CATEGORY_SYSRET:
    case ZYDIS_CATEGORY_IO:
    case ZYDIS_CATEGORY_IOSTRINGOP:
        return true;
    default:
        break;
    }
    switch (zi->mnemonic) {
    case ZYDIS_MNEMONIC_CPUID: /* serialising: code another vCPU modified runs new after it (iem-cache.c) */
    case ZYDIS_MNEMONIC_HLT:
    case ZYDIS_MNEMONIC_IRET:
    case ZYDIS_MNEMONIC_IRETD:
    case ZYDIS_MNEMONIC_IRETQ:
    case ZYDIS_MNEMONIC_POPF:
    case ZYDIS_MNEMONIC_POPFD:
    case ZYDIS_MNEMONIC_POPFQ:
    case ZYDIS_MNEMONIC_STI:
    case ZYDIS_MNEMONIC_LGDT:
    case ZYDIS_MNEMONIC_LIDT:
    case ZYDIS_MNEMONIC_LLDT:
    case ZYDIS_MNEMONIC_LTR:
    case ZYDIS_MNEMONIC_LMSW:
    case ZYDIS_MNEMONIC_CLTS:
    case ZYDIS_MNEMONIC_WRMSR:
    case ZYDIS_MNEMONIC_INVLPG:
    case ZYDIS_MNEMONIC_INVD:
    case ZYDIS_MNEMONIC_WBINVD:
    case ZYDIS_MNEMONIC_RSM:
    case ZYDIS_MNEMONIC_XSETBV:
    case ZYDIS_MNEMONIC_SWAPGS:
    case ZYDIS_MNEMONIC_MWAIT:
    case ZYDIS_MNEMONIC_PAUSE:
    case ZYDIS_MNEMONIC_SYSENTER:
    case ZYDIS_MNEMONIC_SYSEXIT:
    case ZYDIS_MNEMONIC_UD0:
    case ZYDIS_MNEMONIC_UD1:
    case ZYDIS_MNEMONIC_UD2:
        return true;
    case ZYDIS_MNEMONIC_MOV:
        for (unsigned i = 0; i < in->nops; i++)
            if (in->op[i].kind == IEM_OPK_CR || in->op[i].kind == IEM_OPK_DR)
                return true;
        /* MOV SS opens an interrupt shadow (SDM vol. 2B MOV). */
        return in->op[0].kind == IEM_OPK_SEG && in->op[0].reg == CPU_SS;
    case ZYDIS_MNEMONIC_POP:
        return in->op[0].kind == IEM_OPK_SEG && in->op[0].reg == CPU_SS;
    default:
        return false;
    }
}

static int natural_family(const ZydisDecodedInstruction *zi, const struct iem_insn *in)
{
    if (zi->meta.isa_ext == ZYDIS_ISA_EXT_X87)
        return FAM_FPU;
    for (unsigned i = 0; i < in->nops; i++) {
        switch (in->op[i].kind) {
        case IEM_OPK_MMX:
        case IEM_OPK_XMM:
            return FAM_SIMD;
        case IEM_OPK_ST:
            return FAM_FPU;
        case IEM_OPK_CR:
        case IEM_OPK_DR:
        case IEM_OPK_SEG:
            return FAM_SYS;
        default:
            break;
        }
    }
    switch (zi->meta.isa_ext) {
    case ZYDIS_ISA_EXT_MMX:
    case ZYDIS_ISA_EXT_SSE:
    case ZYDIS_ISA_EXT_SSE2:
    case ZYDIS_ISA_EXT_SSE3:
    case ZYDIS_ISA_EXT_SSSE3:
    case ZYDIS_ISA_EXT_SSE4:
        return zi->meta.category == ZYDIS_CATEGORY_STRINGOP ? FAM_INT : FAM_SIMD;
    default:
        return FAM_INT;
    }
}

static iem_fn *handler_for(const ZydisDecodedInstruction *zi, const struct iem_insn *in)
{
    if (zi->encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY || !isa_ext_allowed(zi->meta.isa_ext))
        return insn_raise_ud;
    int fam = natural_family(zi, in);
    if (g_fns[fam][zi->mnemonic])
        return g_fns[fam][zi->mnemonic];
    for (int f = 0; f < FAM_COUNT; f++)
        if (g_fns[f][zi->mnemonic])
            return g_fns[f][zi->mnemonic];
    return insn_raise_ud;
}

/* A fault placeholder for bytes that do not decode: #UD, or #GP(0) for more than 15 bytes (SDM vol. 2A 2.3.11). */
static void insn_fault(struct iem_insn *in, ZyanStatus st)
{
    memset(in, 0, sizeof(*in));
    in->fn = st == ZYDIS_STATUS_INSTRUCTION_TOO_LONG ? insn_raise_gp0 : insn_raise_ud;
    in->len = 1;
    in->mem.base = in->mem.index = IEM_NOREG;
}

/* Decodes bytes[0..len) in zmode: returns the status, fills *in (a fault placeholder on failure). */
static ZyanStatus decode_insn(uint8_t zmode, const uint8_t *bytes, size_t len, struct iem_insn *in, bool *ends)
{
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
    ZyanStatus st = ZydisDecoderDecodeFull(&g_decoders[zmode], bytes, len, &zi, zo);
    if (!ZYAN_SUCCESS(st)) {
        insn_fault(in, st);
        *ends = true;
        return st;
    }
    insn_convert(&zi, zo, in);
    in->fn = handler_for(&zi, in);
    *ends = insn_ends_block(&zi, in) || in->fn == insn_raise_ud;
    iem_fn *fast = iem_fast_select(in, zmode);
    if (fast) {
        in->fn = fast;
        in->fast = true;
    }
    return st;
}

int iem_decode_one(unsigned zmode, const uint8_t *bytes, size_t len, struct iem_insn *in, bool *ends_block)
{
    pthread_once(&g_init_once, decode_init);
    bool ends;
    if (zmode > ZYDIS_MACHINE_MODE_MAX_VALUE) {
        insn_fault(in, ZYDIS_STATUS_DECODING_ERROR);
        return VERR_INVALID_PARAMETER;
    }
    ZyanStatus st = decode_insn((uint8_t)zmode, bytes, len, in, &ends);
    if (ends_block)
        *ends_block = ends;
    return ZYAN_SUCCESS(st) ? 0 : VERR_NOT_FOUND;
}

bool iem_decode_is_fault(const struct iem_insn *in)
{
    return in->fn == insn_raise_ud || in->fn == insn_raise_gp0;
}

uint8_t iem_decode_mode_key(const struct iem_cpu *cpu)
{
    bool lma = (cpu->s->efer & IEM_EFER_LMA) != 0;
    switch (cpu->mode) {
    case IEM_MODE_LONG64:
        return ZYDIS_MACHINE_MODE_LONG_64;
    case IEM_MODE_V86:
        return ZYDIS_MACHINE_MODE_REAL_16;
    case IEM_MODE_REAL:
        return cpu->code_size == 4 ? ZYDIS_MACHINE_MODE_LEGACY_32 : ZYDIS_MACHINE_MODE_REAL_16;
    case IEM_MODE_PROT:
    default:
        if (cpu->code_size == 4)
            return lma ? ZYDIS_MACHINE_MODE_LONG_COMPAT_32 : ZYDIS_MACHINE_MODE_LEGACY_32;
        return lma ? ZYDIS_MACHINE_MODE_LONG_COMPAT_16 : ZYDIS_MACHINE_MODE_LEGACY_16;
    }
}

/* ---- blocks --------------------------------------------------------------------- */

static inline uint64_t lin_wrap(const struct iem_cpu *cpu, uint64_t lin)
{
    return cpu->mode == IEM_MODE_LONG64 ? lin : (uint32_t)lin;
}

/* Code bytes [gpa, gpa+len) of a page: direct from RAM/ROM, else through the physical path. */
static const uint8_t *fetch_window(struct iem_core *core, const uint8_t *page_hva, uint64_t gpa, unsigned len,
                                   uint8_t *tmp)
{
    if (page_hva)
        return page_hva + (gpa & 0xfff);
    mem_read(core->cpu.vm, gpa, tmp, len);
    return tmp;
}

/*
 * The first instruction of a block runs past the page end: fetch the rest from the next
 * page (a #PF there belongs to this instruction) and decode it as a block of its own.
 * first = bytes available on this page; extra_max = bytes the CS limit allows beyond it.
 */
static void decode_cross(struct iem_core *core, struct iem_block *b, uint64_t lin, uint64_t gpa,
                         const uint8_t *page_hva, unsigned first, unsigned extra_max, bool *cacheable)
{
    struct iem_cpu *cpu = &core->cpu;
    uint8_t buf[32], tmp[16];
    bool ends;
    memcpy(buf, fetch_window(core, page_hva, gpa, first, tmp), first);
    unsigned extra = RT_MIN(15u - RT_MIN(first, 15u), extra_max);
    if (extra == 0) {
        /* Nothing may be fetched past the CS limit (SDM vol. 3A 5.3): #GP(0). */
        insn_fault(&b->insns[0], ZYDIS_STATUS_INSTRUCTION_TOO_LONG);
        b->ninsns = 1;
        b->nbytes = (uint16_t)first;
        *cacheable = false;
        return;
    }
    uint64_t lin2 = lin_wrap(cpu, lin + first);
    struct iem_tlb_entry *e2 = iem_tlb_exec(core, lin2);
    uint64_t gpa2 = e2->gpa & ~(uint64_t)IEM_TLBF_MASK;
    const uint8_t *hva2 = e2->hva;
    if (hva2 && *cacheable)
        iem_cache_note_code(core, gpa2 >> 12);
    memcpy(buf + first, fetch_window(core, hva2, gpa2, extra, tmp), extra);
    ZyanStatus st = decode_insn(b->zmode, buf, first + extra, &b->insns[0], &ends);
    if (st == ZYDIS_STATUS_NO_MORE_DATA)
        insn_fault(&b->insns[0], extra < 15u - first ? ZYDIS_STATUS_INSTRUCTION_TOO_LONG : st);
    b->ninsns = 1;
    b->nbytes = (uint16_t)(ZYAN_SUCCESS(st) ? b->insns[0].len : first + extra);
    if (b->nbytes > first)
        b->gpa2 = gpa2;
    if (!hva2)
        *cacheable = false;
}

static struct iem_block *decode_block(struct iem_core *core, uint64_t lin, uint64_t gpa, const uint8_t *page_hva,
                                      uint8_t zmode, bool cacheable)
{
    struct iem_cpu *cpu = &core->cpu;
    struct iem_block *b = core->scratch;
    const struct cpu_state *s = cpu->s;
    b->gpa = gpa;
    b->gpa2 = IEM_NOGPA;
    b->zmode = zmode;
    b->dead = false;
    b->cached = false;
    b->ninsns = 0;
    b->nbytes = 0;

    unsigned off = gpa & 0xfff;
    unsigned bound = IEM_PAGE_SIZE - off;
    bool limited = false;
    uint64_t limit_left = UINT64_MAX; /* bytes the CS limit allows from RIP */
    if (cpu->mode != IEM_MODE_LONG64) {
        limit_left = (uint64_t)s->seg[CPU_CS].limit - s->rip + 1;
        if (limit_left < bound) {
            bound = (unsigned)limit_left;
            limited = true;
        }
    }
    if (!page_hva || limited)
        cacheable = false;
    /*
     * An uncached block in RAM holds one instruction: writes to it are not watched, so
     * self-modifying code must find the next instruction decoded afresh.
     */
    unsigned max = (!cacheable && page_hva) ? 1 : IEM_BLOCK_MAX;
    /* Before the bytes are read: another vCPU's write from now on reaches this vCPU's queue (iem-cache.c). */
    if (cacheable)
        iem_cache_note_code(core, gpa >> 12);

    unsigned pos = 0;
    uint8_t tmp[16];
    while (b->ninsns < max && pos < bound) {
        unsigned avail = RT_MIN(bound - pos, 15u);
        const uint8_t *w = fetch_window(core, page_hva, gpa + pos, avail, tmp);
        struct iem_insn *in = &b->insns[b->ninsns];
        bool ends;
        ZyanStatus st = decode_insn(zmode, w, avail, in, &ends);
        if (st == ZYDIS_STATUS_NO_MORE_DATA) {
            if (b->ninsns > 0)
                break;
            if (limited) {
                insn_fault(in, ZYDIS_STATUS_INSTRUCTION_TOO_LONG);
                b->ninsns = 1;
                pos += avail;
                cacheable = false;
                break;
            }
            uint64_t extra_max = limit_left == UINT64_MAX ? 15 : limit_left - bound;
            decode_cross(core, b, lin, gpa, page_hva, bound, (unsigned)RT_MIN(extra_max, 15u), &cacheable);
            pos = b->nbytes;
            break;
        }
        b->ninsns++;
        in->off = (uint16_t)pos;
        if (!ZYAN_SUCCESS(st)) {
            /* The bytes looked at stay covered so that a later write to them re-decodes. */
            pos += avail;
            break;
        }
        pos += in->len;
        if (ends)
            break;
    }
    b->nbytes = (uint16_t)pos;
    b->has_nf = iem_fast_dead_flags(b->insns, b->ninsns);
    iem_fast_fuse(b->insns, b->ninsns);
    if (!cacheable)
        return b;
    struct iem_block *nb = iem_block_alloc(b->ninsns);
    if (!nb)
        return b;
    nb->gpa = b->gpa;
    nb->gpa2 = b->gpa2;
    nb->zmode = b->zmode;
    nb->ninsns = b->ninsns;
    nb->nbytes = b->nbytes;
    nb->has_nf = b->has_nf;
    memcpy(nb->insns, b->insns, b->ninsns * sizeof(struct iem_insn));
    iem_cache_insert(core, nb);
    return nb;
}

struct iem_block *iem_block_lookup(struct iem_core *core)
{
    struct iem_cpu *cpu = &core->cpu;
    const struct cpu_state *s = cpu->s;
    uint64_t rip = s->rip;
    uint64_t lin;
    cpu->insn_rip = rip;
    cpu->insn = NULL;
    if (cpu->mode == IEM_MODE_LONG64) {
        if ((uint64_t)((int64_t)(rip << 16) >> 16) != rip)
            iem_raise_gp0(cpu);
        lin = rip;
    } else {
        if (rip > s->seg[CPU_CS].limit)
            iem_raise_gp0(cpu);
        lin = (uint32_t)(s->seg[CPU_CS].base + rip);
    }
    uint8_t zmode = core->zmode;
    struct iem_tlb_entry *e = iem_tlb_exec(core, lin);
    uint64_t gpa = (e->gpa & ~(uint64_t)IEM_TLBF_MASK) | (lin & 0xfff);
    const uint8_t *page_hva = e->hva;
    bool cacheable = page_hva != NULL;
    if (cacheable) {
        struct iem_block *b = iem_cache_find(core, gpa, zmode);
        if (b) {
            bool ok = true;
            if (b->gpa2 != IEM_NOGPA) {
                /* The second page may map elsewhere now. */
                struct iem_tlb_entry *e2 = iem_tlb_exec(core, lin_wrap(cpu, (lin | 0xfff) + 1));
                ok = (e2->gpa & ~(uint64_t)IEM_TLBF_MASK) == b->gpa2 && e2->hva;
            }
            if (ok && cpu->mode != IEM_MODE_LONG64 && rip + b->nbytes - 1 > s->seg[CPU_CS].limit)
                ok = false;
            if (ok)
                return b;
            cacheable = false;
        }
    }
    return decode_block(core, lin, gpa, page_hva, zmode, cacheable);
}

void iem_decode_global_init(void)
{
    pthread_once(&g_init_once, decode_init);
}
