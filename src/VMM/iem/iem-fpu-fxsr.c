/* iem-fpu-fxsr.c - FXSAVE/FXRSTOR and their REX.W forms: the 512-byte x87/MMX/SSE state image. */
#include <string.h>

#include <Zydis/Zydis.h>

#include "iem-fpu.h"

/*
 * Layout (SDM vol. 1, 10.5.1, Tables 10-2 and 10-3; vol. 2A, FXSAVE): FCW, FSW, the abridged
 * FTW, FOP (11 bits), FIP/FCS and FDP/FDS (or 64-bit FIP/FDP with REX.W), MXCSR and
 * MXCSR_MASK, ST0-ST7 in 16-byte slots (stack order), then XMM0-7 (XMM0-15 in 64-bit mode).
 * Bytes 288/416-511 are reserved or available to software and are never written.
 * With CR4.OSFXSR clear the processor "may not" save or restore MXCSR and the XMM registers
 * (implementation dependent): Vireo, like QEMU, leaves both alone then.  Neither instruction
 * checks for pending x87 exceptions; both take #NM on CR0.TS or CR0.EM and #GP(0) when the
 * operand is not 16-byte aligned.
 */

#define FX_XMM_OFF 160u
#define FX_ST_OFF 32u

static uint32_t mxcsr_mask_of(const struct cpu_fpu *f)
{
    /* SDM vol. 1, 11.6.6: a zero mask field means the default 0000FFBFh. */
    return f->mxcsr_mask ? f->mxcsr_mask : 0xffbfu;
}

void iem_fpu_fxsave_image(const struct cpu_fpu *f, uint8_t *img, unsigned xmm_count, bool rex_w)
{
    uint16_t fop = f->fop & 0x7ffu;
    memcpy(img + 0, &f->fcw, 2);
    memcpy(img + 2, &f->fsw, 2);
    img[4] = f->ftw;
    img[5] = 0;
    memcpy(img + 6, &fop, 2);
    if (rex_w) {
        memcpy(img + 8, &f->fip, 8);
        memcpy(img + 16, &f->fdp, 8);
    } else {
        uint32_t ip = (uint32_t)f->fip, dp = (uint32_t)f->fdp;
        uint16_t cs = (uint16_t)(f->fip >> 32), ds = (uint16_t)(f->fdp >> 32), zero = 0;
        memcpy(img + 8, &ip, 4);
        memcpy(img + 12, &cs, 2);
        memcpy(img + 14, &zero, 2);
        memcpy(img + 16, &dp, 4);
        memcpy(img + 20, &ds, 2);
        memcpy(img + 22, &zero, 2);
    }
    if (xmm_count) {
        uint32_t mask = mxcsr_mask_of(f);
        memcpy(img + 24, &f->mxcsr, 4);
        memcpy(img + 28, &mask, 4);
    }
    for (unsigned i = 0; i < 8; i++) {
        memcpy(img + FX_ST_OFF + 16 * i, f->st[i], 10);
        memset(img + FX_ST_OFF + 16 * i + 10, 0, 6);
    }
    for (unsigned i = 0; i < xmm_count && i < 16; i++)
        memcpy(img + FX_XMM_OFF + 16 * i, f->xmm[i], 16);
}

bool iem_fpu_fxrstor_image(struct cpu_fpu *f, const uint8_t *img, unsigned xmm_count, bool rex_w)
{
    uint32_t mxcsr = 0;
    if (xmm_count) {
        memcpy(&mxcsr, img + 24, 4);
        /* SDM vol. 2A, FXRSTOR: #GP(0) on reserved MXCSR bits, before anything is loaded. */
        if (mxcsr & ~mxcsr_mask_of(f))
            return false;
    }
    uint16_t fcw, fsw, fop;
    memcpy(&fcw, img + 0, 2);
    memcpy(&fsw, img + 2, 2);
    memcpy(&fop, img + 6, 2);
    f->fcw = (uint16_t)((fcw & IEM_FCW_WRITABLE) | IEM_FCW_ONES);
    f->fsw = iem_fpu_fsw_summary(fsw, f->fcw);
    f->ftw = img[4];
    f->fop = fop & 0x7ffu;
    if (rex_w) {
        memcpy(&f->fip, img + 8, 8);
        memcpy(&f->fdp, img + 16, 8);
    } else {
        uint32_t ip, dp;
        uint16_t cs, ds;
        memcpy(&ip, img + 8, 4);
        memcpy(&cs, img + 12, 2);
        memcpy(&dp, img + 16, 4);
        memcpy(&ds, img + 20, 2);
        f->fip = ip | ((uint64_t)cs << 32);
        f->fdp = dp | ((uint64_t)ds << 32);
    }
    for (unsigned i = 0; i < 8; i++) {
        memcpy(f->st[i], img + FX_ST_OFF + 16 * i, 10);
        memset(f->st[i] + 10, 0, 6);
    }
    if (xmm_count) {
        f->mxcsr = mxcsr;
        for (unsigned i = 0; i < xmm_count && i < 16; i++)
            memcpy(f->xmm[i], img + FX_XMM_OFF + 16 * i, 16);
    }
    return true;
}

/* The checks both instructions make, in the SDM's order; returns the operand's offset. */
static uint64_t fxsr_enter(struct iem_cpu *cpu, const struct iem_insn *in, unsigned *xmm_count)
{
    if ((in->prefixes & IEM_PFX_LOCK) || in->nops == 0 || in->op[0].kind != IEM_OPK_MEM)
        iem_raise_ud(cpu);
    if (cpu->s->cr0 & (IEM_CR0_EM | IEM_CR0_TS))
        iem_raise(cpu, IEM_X_NM);
    uint64_t ea = iem_ea(cpu, in);
    unsigned seg = in->mem.seg < CPU_SEG_COUNT ? in->mem.seg : CPU_DS;
    if ((cpu->s->seg[seg].base + ea) & 15)
        iem_raise_gp0(cpu);
    *xmm_count = !(cpu->s->cr4 & IEM_CR4_OSFXSR) ? 0 : cpu->mode == IEM_MODE_LONG64 ? 16 : 8;
    return ea;
}

int iem_fpu_fxsave(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned xmm_count;
    uint64_t ea = fxsr_enter(cpu, in, &xmm_count);
    bool rex_w = in->mnemonic == ZYDIS_MNEMONIC_FXSAVE64;
    uint8_t img[512];
    iem_fpu_fxsave_image(&cpu->s->fpu, img, xmm_count, rex_w);
    unsigned end = FX_XMM_OFF + 16 * xmm_count;
    iem_mem_probe_write(cpu, in->mem.seg, ea, end);
    if (xmm_count) {
        iem_mem_write_bytes(cpu, in->mem.seg, ea, img, end);
    } else {
        /* MXCSR and its mask (bytes 24-31) are not saved: write around them. */
        iem_mem_write_bytes(cpu, in->mem.seg, ea, img, 24);
        iem_mem_write_bytes(cpu, in->mem.seg, ea + FX_ST_OFF, img + FX_ST_OFF, FX_XMM_OFF - FX_ST_OFF);
    }
    return IEM_NEXT;
}

int iem_fpu_fxrstor(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned xmm_count;
    uint64_t ea = fxsr_enter(cpu, in, &xmm_count);
    bool rex_w = in->mnemonic == ZYDIS_MNEMONIC_FXRSTOR64;
    uint8_t img[512];
    iem_mem_read_bytes(cpu, in->mem.seg, ea, img, FX_XMM_OFF + 16 * xmm_count);
    struct cpu_fpu f = cpu->s->fpu;
    if (!iem_fpu_fxrstor_image(&f, img, xmm_count, rex_w))
        iem_raise_gp0(cpu);
    cpu->s->fpu = f;
    return IEM_NEXT;
}
