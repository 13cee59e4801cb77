/* diff-uc.h - tstIemDiff's oracle: runs a generated sequence on Unicorn (QEMU TCG) in 64-bit mode. */
#ifndef VIREO_DIFF_UC_H
#define VIREO_DIFF_UC_H

/*
 * One engine serves the whole run: code and data are mapped from host buffers (uc_mem_map_ptr),
 * reloaded before every sequence, and the translation cache of the code page is dropped each
 * time (uc_ctl_remove_cache) because the code changes under Unicorn's feet.
 *
 * Unicorn 2.0.1 hard-codes its CPUID features in x86_reg_reset() (qemu/target/i386/unicorn.c)
 * without POPCNT and MOVBE, and its translator checks them, so those two raise #UD there.  The
 * invalid-opcode hook computes them instead from Zydis' decoding and the SDM definitions
 * (POPCNT: ZF = source is zero, the other flags cleared; MOVBE: byte-reversed load or store),
 * and the run resumes after them.  Exceptions come back as UC_HOOK_INTR (vector, RIP at the
 * faulting instruction) or, for #UD, as UC_ERR_INSN_INVALID.
 *
 * Unicorn stops at an exception before QEMU delivers it, so QEMU's "exception in flight"
 * (env->old_exception) is never cleared: the next contributory fault would become #DF and the
 * one after a triple fault that silently halts.  Every run therefore starts from a CPU context
 * saved right after uc_open (uc_context_restore), then loads the sequence's registers.
 */

#include <stdio.h>
#include <stdlib.h>

#include <unicorn/unicorn.h>

#include "diff-gen.h"

/* The outcome of one run on either side. */
struct dg_result {
    struct dg_state st;
    int vector;              /* exception at st.rip, or -1: the sequence reached its HLT */
    bool error;              /* the run failed for another reason (why) */
    char why[160];
};

#define DU_BLOCKS_MAX 512u

struct du_engine {
    uc_engine *uc;
    uint8_t *code;            /* DG_CODE_BYTES at DG_CODE_BASE */
    uint8_t *mem;             /* DG_MEM_BYTES at DG_DATA_BASE */
    int intno;
    bool resumed;
    bool hook_failed;
    unsigned nblocks;
    struct { uint64_t addr; uint32_t size; } blocks[DU_BLOCKS_MAX];
    ZydisDecoder dec;
    uc_hook h_intr, h_inv, h_block;
    uc_context *fresh;        /* the CPU as uc_open left it */
    uc_hook h_unmapped;
    uint64_t bad_addr;        /* address of the last unmapped data access */
};

static const int g_du_gpr[16] = {
    UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX, UC_X86_REG_RSP, UC_X86_REG_RBP,
    UC_X86_REG_RSI, UC_X86_REG_RDI, UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};

static void du_hook_intr(uc_engine *uc, uint32_t intno, void *opaque)
{
    struct du_engine *u = opaque;
    u->intno = (int)intno;
    uc_emu_stop(uc);
}

static void du_hook_block(uc_engine *uc, uint64_t addr, uint32_t size, void *opaque)
{
    struct du_engine *u = opaque;
    (void)uc;
    if (u->nblocks < DU_BLOCKS_MAX) {
        u->blocks[u->nblocks].addr = addr;
        u->blocks[u->nblocks].size = size;
        u->nblocks++;
    }
}

static bool du_hook_unmapped(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value, void *opaque)
{
    struct du_engine *u = opaque;
    (void)uc, (void)type, (void)size, (void)value;
    u->bad_addr = addr;
    return false;
}

/* Canonical: bits 63:47 all equal (SDM vol. 1, 3.3.7.1). */
static bool du_canonical(uint64_t a)
{
    return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

static uint64_t du_reg(uc_engine *uc, int id)
{
    uint64_t v = 0;
    uc_reg_read(uc, id, &v);
    return v;
}

/* Reads a GPR named by Zydis at its width. */
static uint64_t du_zreg_read(struct du_engine *u, ZydisRegister reg)
{
    ZydisRegister full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
    int id = ZydisRegisterGetId(full);
    uint64_t v = du_reg(u->uc, g_du_gpr[id & 15]);
    unsigned w = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg);
    return w >= 64 ? v : v & ((1ull << w) - 1);
}

/* Writes a GPR at its width: 32-bit writes zero-extend, 16-bit writes merge (SDM vol. 1, 3.4.1.1). */
static void du_zreg_write(struct du_engine *u, ZydisRegister reg, uint64_t v)
{
    ZydisRegister full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
    int id = g_du_gpr[ZydisRegisterGetId(full) & 15];
    unsigned w = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg);
    if (w == 16)
        v = (du_reg(u->uc, id) & ~0xffffull) | (v & 0xffff);
    else if (w == 32)
        v &= 0xffffffffu;
    uc_reg_write(u->uc, id, &v);
}

static uint64_t du_ea(struct du_engine *u, const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *op,
                      uint64_t rip)
{
    uint64_t a = (uint64_t)op->mem.disp.value;
    if (op->mem.base == ZYDIS_REGISTER_RIP || op->mem.base == ZYDIS_REGISTER_EIP)
        a += rip + zi->length;
    else if (op->mem.base != ZYDIS_REGISTER_NONE)
        a += du_zreg_read(u, op->mem.base);
    if (op->mem.index != ZYDIS_REGISTER_NONE)
        a += du_zreg_read(u, op->mem.index) * op->mem.scale;
    if (zi->address_width == 32)
        a &= 0xffffffffu;
    if (op->mem.segment == ZYDIS_REGISTER_FS)
        a += du_reg(u->uc, UC_X86_REG_FS_BASE);
    else if (op->mem.segment == ZYDIS_REGISTER_GS)
        a += du_reg(u->uc, UC_X86_REG_GS_BASE);
    return a;
}

static uint64_t du_bswap(uint64_t v, unsigned bytes)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < bytes; i++)
        r |= ((v >> (8 * i)) & 0xff) << (8 * (bytes - 1 - i));
    return r;
}

/* #UD from Unicorn: POPCNT and MOVBE are computed here (see the top of this file). */
static bool du_hook_invalid(uc_engine *uc, void *opaque)
{
    struct du_engine *u = opaque;
    uint64_t rip = du_reg(uc, UC_X86_REG_RIP);
    if (rip < DG_CODE_BASE || rip >= DG_CODE_BASE + DG_CODE_BYTES - 16)
        return false;
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&u->dec, u->code + (rip - DG_CODE_BASE), 16, &zi, ops)))
        return false;
    if (zi.attributes & ZYDIS_ATTRIB_HAS_LOCK)
        return false;
    unsigned bytes = zi.operand_width / 8;
    if (zi.mnemonic == ZYDIS_MNEMONIC_POPCNT) {
        uint64_t src = 0;
        if (ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER)
            src = du_zreg_read(u, ops[1].reg.value);
        else if (uc_mem_read(uc, du_ea(u, &zi, &ops[1], rip), &src, bytes) != UC_ERR_OK)
            return false;
        du_zreg_write(u, ops[0].reg.value, (uint64_t)__builtin_popcountll(src));
        uint64_t fl = du_reg(uc, UC_X86_REG_RFLAGS) & ~(uint64_t)DG_ARITH;
        if (src == 0)
            fl |= DG_ZF;
        uc_reg_write(uc, UC_X86_REG_RFLAGS, &fl);
    } else if (zi.mnemonic == ZYDIS_MNEMONIC_MOVBE) {
        if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
            uint64_t v = 0;
            if (uc_mem_read(uc, du_ea(u, &zi, &ops[1], rip), &v, bytes) != UC_ERR_OK)
                return false;
            du_zreg_write(u, ops[0].reg.value, du_bswap(v, bytes));
        } else {
            uint64_t v = du_bswap(du_zreg_read(u, ops[1].reg.value), bytes);
            if (uc_mem_write(uc, du_ea(u, &zi, &ops[0], rip), &v, bytes) != UC_ERR_OK)
                return false;
        }
    } else {
        return false;
    }
    rip += zi.length;
    uc_reg_write(uc, UC_X86_REG_RIP, &rip);
    u->resumed = true;
    return true;
}

static int du_init(struct du_engine *u)
{
    memset(u, 0, sizeof(*u));
    ZydisDecoderInit(&u->dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    u->code = aligned_alloc(4096, DG_CODE_BYTES);
    u->mem = aligned_alloc(4096, DG_MEM_BYTES);
    if (!u->code || !u->mem)
        return -1;
    if (uc_open(UC_ARCH_X86, UC_MODE_64, &u->uc) != UC_ERR_OK)
        return -1;
    if (uc_context_alloc(u->uc, &u->fresh) != UC_ERR_OK || uc_context_save(u->uc, u->fresh) != UC_ERR_OK)
        return -1;
    if (uc_mem_map_ptr(u->uc, DG_CODE_BASE, DG_CODE_BYTES, UC_PROT_ALL, u->code) != UC_ERR_OK ||
        uc_mem_map_ptr(u->uc, DG_DATA_BASE, DG_MEM_BYTES, UC_PROT_READ | UC_PROT_WRITE, u->mem) != UC_ERR_OK)
        return -1;
    if (uc_hook_add(u->uc, &u->h_intr, UC_HOOK_INTR, (void *)du_hook_intr, u, 1, 0) != UC_ERR_OK ||
        uc_hook_add(u->uc, &u->h_inv, UC_HOOK_INSN_INVALID, (void *)du_hook_invalid, u, 1, 0) != UC_ERR_OK ||
        uc_hook_add(u->uc, &u->h_block, UC_HOOK_BLOCK, (void *)du_hook_block, u, 1, 0) != UC_ERR_OK ||
        uc_hook_add(u->uc, &u->h_unmapped, UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED,
                    (void *)du_hook_unmapped, u, 1, 0) != UC_ERR_OK)
        return -1;
    return 0;
}

static void du_fini(struct du_engine *u)
{
    if (u->fresh)
        uc_context_free(u->fresh);
    if (u->uc)
        uc_close(u->uc);
    free(u->code);
    free(u->mem);
    memset(u, 0, sizeof(*u));
}

static void du_state_put(struct du_engine *u, const struct dg_state *s)
{
    uc_engine *uc = u->uc;
    for (unsigned i = 0; i < 16; i++)
        uc_reg_write(uc, g_du_gpr[i], &s->gpr[i]);
    uc_reg_write(uc, UC_X86_REG_RIP, &s->rip);
    uc_reg_write(uc, UC_X86_REG_RFLAGS, &s->rflags);
    for (unsigned i = 0; i < 16; i++)
        uc_reg_write(uc, UC_X86_REG_XMM0 + (int)i, s->xmm[i]);
    uc_reg_write(uc, UC_X86_REG_MXCSR, &s->mxcsr);
    uint64_t fs = DG_FS_BASE, gs = DG_GS_BASE;
    uc_reg_write(uc, UC_X86_REG_FS_BASE, &fs);
    uc_reg_write(uc, UC_X86_REG_GS_BASE, &gs);
    uint16_t fcw = s->fcw, fsw = s->fsw, ftag = 0;
    for (unsigned i = 0; i < 8; i++)
        if (!(s->ftw & (1u << i)))
            ftag |= (uint16_t)(3u << (2 * i));
    uc_reg_write(uc, UC_X86_REG_FPCW, &fcw);
    uc_reg_write(uc, UC_X86_REG_FPSW, &fsw);
    uc_reg_write(uc, UC_X86_REG_FPTAG, &ftag);
    for (unsigned i = 0; i < 8; i++) {
        uint8_t v[16] = { 0 };
        memcpy(v, s->st[i], 10);
        uc_reg_write(uc, UC_X86_REG_ST0 + (int)i, v);
    }
}

static void du_state_get(struct du_engine *u, struct dg_state *s)
{
    uc_engine *uc = u->uc;
    for (unsigned i = 0; i < 16; i++)
        s->gpr[i] = du_reg(uc, g_du_gpr[i]);
    s->rip = du_reg(uc, UC_X86_REG_RIP);
    s->rflags = du_reg(uc, UC_X86_REG_RFLAGS);
    for (unsigned i = 0; i < 16; i++)
        uc_reg_read(uc, UC_X86_REG_XMM0 + (int)i, s->xmm[i]);
    uint32_t mx = 0;
    uc_reg_read(uc, UC_X86_REG_MXCSR, &mx);
    s->mxcsr = mx;
    uint16_t fcw = 0, fsw = 0, ftag = 0;
    uc_reg_read(uc, UC_X86_REG_FPCW, &fcw);
    uc_reg_read(uc, UC_X86_REG_FPSW, &fsw);
    uc_reg_read(uc, UC_X86_REG_FPTAG, &ftag);
    s->fcw = fcw;
    s->fsw = fsw;
    s->ftw = 0;
    for (unsigned i = 0; i < 8; i++)
        if (((ftag >> (2 * i)) & 3) != 3)
            s->ftw |= (uint8_t)(1u << i);
    for (unsigned i = 0; i < 8; i++) {
        uint8_t v[16] = { 0 };
        uc_reg_read(uc, UC_X86_REG_ST0 + (int)i, v);
        memcpy(s->st[i], v, 10);
    }
    memcpy(s->mem, u->mem, DG_MEM_BYTES);
}

/* Loads q's code, memory and registers into the engine. */
static void du_load(struct du_engine *u, const struct dg_seq *q)
{
    memset(u->code, 0xf4, DG_CODE_BYTES); /* HLT everywhere else: a stray jump stops at once */
    memcpy(u->code, q->code, q->len);
    memcpy(u->mem, q->init.mem, DG_MEM_BYTES);
    uc_ctl_remove_cache(u->uc, DG_CODE_BASE, DG_CODE_BASE + DG_CODE_BYTES);
    uc_context_restore(u->uc, u->fresh);
    du_state_put(u, &q->init);
    u->nblocks = 0;
}

/* Runs to the end (count 0) or one instruction (count 1) and reads the state back. */
static void du_go(struct du_engine *u, size_t count, struct dg_result *out)
{
    out->vector = -1;
    out->error = false;
    out->why[0] = 0;
    for (int guard = 0; guard < 64; guard++) {
        uint64_t rip = du_reg(u->uc, UC_X86_REG_RIP);
        u->intno = -1;
        u->resumed = false;
        u->bad_addr = 0;
        uc_err err = uc_emu_start(u->uc, rip, DG_CODE_BASE + DG_CODE_BYTES, 0, count);
        if (err == UC_ERR_INSN_INVALID) {
            out->vector = 6;
            break;
        }
        /*
         * Unicorn runs without paging on a flat map, so a data access to a non-canonical address
         * is an unmapped one there; the architecture raises #GP(0) for it (SDM vol. 3A, 6.15,
         * "General Protection Exception"), at the faulting instruction in both cases.
         */
        if ((err == UC_ERR_READ_UNMAPPED || err == UC_ERR_WRITE_UNMAPPED) && !du_canonical(u->bad_addr)) {
            out->vector = 13;
            break;
        }
        if (err != UC_ERR_OK) {
            out->error = true;
            snprintf(out->why, sizeof(out->why), "Unicorn: %s at rip %#llx", uc_strerror(err),
                     (unsigned long long)du_reg(u->uc, UC_X86_REG_RIP));
            break;
        }
        if (u->intno >= 0) {
            out->vector = u->intno;
            break;
        }
        if (!u->resumed || count)
            break;
    }
    du_state_get(u, &out->st);
}

/* Runs q on Unicorn; the executed blocks are left in u->blocks for the coverage count. */
static void du_run(struct du_engine *u, const struct dg_seq *q, struct dg_result *out)
{
    du_load(u, q);
    du_go(u, 0, out);
}

#endif
