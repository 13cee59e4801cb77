/* iem-fpu-ctl.c - x87 control instructions: FNINIT, FNCLEX, FLDCW/FNSTCW, FNSTSW, FWAIT, and FLDENV/FNSTENV/FRSTOR/FNSAVE in every format. */
#include <string.h>

#include <Zydis/Zydis.h>

#include "iem-fpu.h"

/*
 * The environment images (SDM vol. 1, 8.1.10, Figures 8-9 to 8-12): 28 bytes with a 32-bit
 * operand size, 14 with a 16-bit one; protected mode stores offsets and selectors, real and
 * virtual-8086 mode the 20/32-bit linear addresses split around FOP.  In 64-bit mode the
 * 32-bit layout is used (REX.W does not widen it).  Reserved halves read back as FFFFh,
 * as on Intel processors.  FSAVE/FRSTOR add the eight registers in stack order (ST(0) first),
 * 10 bytes each.  FCS/FDS are stored as 0 in 64-bit mode, where FIP/FDP hold 64-bit values
 * (the later processors' behaviour, CPUID.(EAX=07H,ECX=0):EBX[13]).
 */

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

static uint32_t get16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return get16(p) | (get16(p + 2) << 16);
}

/* The linear (real-mode) form of a pointer kept as offset | selector << 32. */
static uint32_t ptr_linear(uint64_t ptr)
{
    return (uint32_t)ptr + (((uint32_t)(ptr >> 32) & 0xffff) << 4);
}

unsigned iem_fpu_env_store(const struct cpu_fpu *f, uint8_t *buf, bool op16, bool real, bool long64)
{
    uint32_t fip = (uint32_t)f->fip, fdp = (uint32_t)f->fdp;
    uint32_t fcs = long64 ? 0 : (uint32_t)(f->fip >> 32) & 0xffff;
    uint32_t fds = long64 ? 0 : (uint32_t)(f->fdp >> 32) & 0xffff;
    uint32_t fop = f->fop & 0x7ffu;
    uint32_t ftw = iem_fpu_tags_full(f);
    if (real) {
        fip = ptr_linear(f->fip);
        fdp = ptr_linear(f->fdp);
    }
    if (op16) {
        put16(buf + 0, f->fcw);
        put16(buf + 2, f->fsw);
        put16(buf + 4, ftw);
        if (real) {
            put16(buf + 6, fip);
            put16(buf + 8, ((fip >> 16) & 0xf) << 12 | fop);
            put16(buf + 10, fdp);
            put16(buf + 12, ((fdp >> 16) & 0xf) << 12);
        } else {
            put16(buf + 6, fip);
            put16(buf + 8, fcs);
            put16(buf + 10, fdp);
            put16(buf + 12, fds);
        }
        return 14;
    }
    put32(buf + 0, 0xffff0000u | f->fcw);
    put32(buf + 4, 0xffff0000u | f->fsw);
    put32(buf + 8, 0xffff0000u | ftw);
    if (real) {
        put32(buf + 12, 0xffff0000u | (fip & 0xffff));
        put32(buf + 16, ((fip >> 16) & 0xffff) << 12 | fop);
        put32(buf + 20, 0xffff0000u | (fdp & 0xffff));
        put32(buf + 24, ((fdp >> 16) & 0xffff) << 12);
    } else {
        put32(buf + 12, fip);
        put32(buf + 16, fop << 16 | fcs);
        put32(buf + 20, fdp);
        put32(buf + 24, 0xffff0000u | fds);
    }
    return 28;
}

void iem_fpu_env_load(struct cpu_fpu *f, const uint8_t *buf, bool op16, bool real)
{
    uint32_t fcw, fsw, ftw;
    uint64_t fip, fdp;
    uint32_t fop = f->fop;
    if (op16) {
        fcw = get16(buf + 0);
        fsw = get16(buf + 2);
        ftw = get16(buf + 4);
        if (real) {
            uint32_t w = get16(buf + 8);
            fip = get16(buf + 6) | ((w >> 12) << 16);
            fop = w & 0x7ff;
            fdp = get16(buf + 10) | ((get16(buf + 12) >> 12) << 16);
        } else {
            fip = get16(buf + 6) | ((uint64_t)get16(buf + 8) << 32);
            fdp = get16(buf + 10) | ((uint64_t)get16(buf + 12) << 32);
        }
    } else {
        fcw = get16(buf + 0);
        fsw = get16(buf + 4);
        ftw = get16(buf + 8);
        if (real) {
            uint32_t w = get32(buf + 16);
            fip = get16(buf + 12) | (((w >> 12) & 0xffff) << 16);
            fop = w & 0x7ff;
            fdp = get16(buf + 20) | (((get32(buf + 24) >> 12) & 0xffff) << 16);
        } else {
            uint32_t w = get32(buf + 16);
            fip = get32(buf + 12) | ((uint64_t)(w & 0xffff) << 32);
            fop = (w >> 16) & 0x7ff;
            fdp = get32(buf + 20) | ((uint64_t)get16(buf + 24) << 32);
        }
    }
    f->fcw = (uint16_t)((fcw & IEM_FCW_WRITABLE) | IEM_FCW_ONES);
    f->fsw = iem_fpu_fsw_summary((uint16_t)fsw, f->fcw);
    f->ftw = iem_fpu_tags_abridge((uint16_t)ftw);
    f->fop = (uint16_t)fop;
    f->fip = fip;
    f->fdp = fdp;
}

static bool mode_real(const struct iem_cpu *cpu)
{
    return cpu->mode == IEM_MODE_REAL || cpu->mode == IEM_MODE_V86;
}

static bool env_op16(const struct iem_insn *in)
{
    return in->opsize == 2;
}

/* In 64-bit mode a 32-bit format keeps only the offsets (the selectors are not part of a
 * 64-bit FIP/FDP). */
static void env_fix_long64(struct iem_cpu *cpu)
{
    if (cpu->mode == IEM_MODE_LONG64) {
        cpu->s->fpu.fip &= 0xffffffffu;
        cpu->s->fpu.fdp &= 0xffffffffu;
    }
}

/* Writes a multi-byte image with every page checked first, so a fault leaves memory alone. */
static void mem_store(struct iem_cpu *cpu, const struct iem_insn *in, const void *buf, unsigned len)
{
    uint64_t ea = iem_ea(cpu, in);
    iem_mem_probe_write(cpu, in->mem.seg, ea, len);
    iem_mem_write_bytes(cpu, in->mem.seg, ea, buf, len);
}

/* ---- Handlers --------------------------------------------------------------------------- */

int iem_fpu_fninit(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, false);
    iem_fpu_reset(&cpu->s->fpu);
    return IEM_NEXT;
}

int iem_fpu_fnclex(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, false);
    /* SDM vol. 2A, FCLEX: PE UE OE ZE DE IE, SF, ES and B are cleared; C0-C3 undefined (kept). */
    cpu->s->fpu.fsw &= (uint16_t)(IEM_FSW_CC | IEM_FSW_TOP);
    return IEM_NEXT;
}

int iem_fpu_fldcw(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, true);
    uint16_t v = iem_mem_read16(cpu, in->mem.seg, iem_ea(cpu, in));
    struct cpu_fpu *f = &cpu->s->fpu;
    f->fcw = (uint16_t)((v & IEM_FCW_WRITABLE) | IEM_FCW_ONES);
    /* Unmasking a flag that is set makes it pending (SDM vol. 2A, FLDCW). */
    f->fsw = iem_fpu_fsw_summary(f->fsw, f->fcw);
    return IEM_NEXT;
}

int iem_fpu_fnstcw(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, false);
    iem_mem_write16(cpu, in->mem.seg, iem_ea(cpu, in), cpu->s->fpu.fcw);
    return IEM_NEXT;
}

int iem_fpu_fnstsw(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, false);
    uint16_t fsw = cpu->s->fpu.fsw;
    if (in->nops > 0 && in->op[0].kind == IEM_OPK_MEM)
        iem_mem_write16(cpu, in->mem.seg, iem_ea(cpu, in), fsw);
    else
        iem_gpr_write(cpu, CPU_RAX, 2, fsw);
    return IEM_NEXT;
}

int iem_fpu_fwait(struct iem_cpu *cpu, const struct iem_insn *in)
{
    /* SDM vol. 3A, Table 2-2: WAIT/FWAIT takes #NM only with both CR0.MP and CR0.TS set. */
    if ((cpu->s->cr0 & (IEM_CR0_MP | IEM_CR0_TS)) == (IEM_CR0_MP | IEM_CR0_TS))
        iem_raise(cpu, IEM_X_NM);
    if (cpu->s->fpu.fsw & IEM_FSW_ES)
        iem_fpu_pending(cpu);
    return IEM_NEXT;
}

/* FENI/FDISI (8087) and FSETPM (80287) do nothing on the 80387 and later (SDM vol. 1, 8.3.13
 * "Unsupported x87 FPU instructions"); they are still escape opcodes, so #NM applies. */
int iem_fpu_legacy_nop(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, false);
    return IEM_NEXT;
}

int iem_fpu_fnstenv(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, false);
    struct cpu_fpu *f = &cpu->s->fpu;
    uint8_t buf[28];
    unsigned len = iem_fpu_env_store(f, buf, env_op16(in), mode_real(cpu), cpu->mode == IEM_MODE_LONG64);
    mem_store(cpu, in, buf, len);
    /* SDM vol. 2A, FSTENV: then every exception is masked (so nothing stays pending). */
    f->fcw |= IEM_FCW_MASKS;
    f->fsw = iem_fpu_fsw_summary(f->fsw, f->fcw);
    return IEM_NEXT;
}

int iem_fpu_fldenv(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, true);
    uint8_t buf[28];
    unsigned len = env_op16(in) ? 14 : 28;
    iem_mem_read_bytes(cpu, in->mem.seg, iem_ea(cpu, in), buf, len);
    iem_fpu_env_load(&cpu->s->fpu, buf, env_op16(in), mode_real(cpu));
    env_fix_long64(cpu);
    return IEM_NEXT;
}

int iem_fpu_fnsave(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, false);
    struct cpu_fpu *f = &cpu->s->fpu;
    uint8_t buf[108];
    unsigned len = iem_fpu_env_store(f, buf, env_op16(in), mode_real(cpu), cpu->mode == IEM_MODE_LONG64);
    for (unsigned i = 0; i < 8; i++)
        memcpy(buf + len + 10 * i, f->st[i], 10);
    mem_store(cpu, in, buf, len + 80);
    /* SDM vol. 2A, FSAVE: then the FPU is initialised as by FNINIT. */
    iem_fpu_reset(f);
    return IEM_NEXT;
}

int iem_fpu_frstor(struct iem_cpu *cpu, const struct iem_insn *in)
{
    iem_fpu_enter(cpu, in, true);
    struct cpu_fpu *f = &cpu->s->fpu;
    uint8_t buf[108];
    unsigned len = env_op16(in) ? 14 : 28;
    iem_mem_read_bytes(cpu, in->mem.seg, iem_ea(cpu, in), buf, len + 80);
    iem_fpu_env_load(f, buf, env_op16(in), mode_real(cpu));
    env_fix_long64(cpu);
    for (unsigned i = 0; i < 8; i++) {
        memcpy(f->st[i], buf + len + 10 * i, 10);
        memset(f->st[i] + 10, 0, 6);
    }
    return IEM_NEXT;
}
