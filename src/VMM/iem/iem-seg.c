/* iem-seg.c - segmentation for the interpreter: descriptor reads, segment register loads, explicit stacks, RFLAGS write rules. */

/*
 * Segment loads follow Intel SDM vol. 3A, chapter 5 (5.5-5.10) and the MOV/POP/LDS
 * pages of vol. 2: the checks run in the order the pseudocode gives them, so the
 * first failing check decides the exception and its error code.  Descriptor tables
 * and the TSS are read as supervisor (implicit) accesses whatever the CPL (SDM 4.6).
 *
 * Stack switches build their frame on a stack that is not loaded yet, so they use
 * struct iem_stack: a copy of the stack segment, its pointer, width and privilege,
 * with the limit checks done here and the accesses going through the linear path.
 */
#include "iem-sys.h"

/* Linear addresses wrap at 4 GiB outside IA-32e mode. */
static uint64_t seg_linear(const struct iem_cpu *cpu, uint64_t a)
{
    return (cpu->s->efer & IEM_EFER_LMA) ? a : (uint32_t)a;
}

/* ---- Descriptor tables ------------------------------------------------------------ */

/* Table base and limit for sel (GDT, or the LDT when TI is set); false when the LDT is unusable. */
static bool desc_table(const struct iem_cpu *cpu, uint16_t sel, uint64_t *base, uint32_t *limit)
{
    const struct cpu_state *s = cpu->s;
    if (sel & 4) {
        const struct cpu_seg *ldt = &s->seg[CPU_LDTR];
        if ((ldt->attr & CPU_SEG_ATTR_UNUSABLE) || (ldt->sel & 0xfffc) == 0)
            return false;
        *base = ldt->base;
        *limit = ldt->limit;
    } else {
        *base = s->gdtr.base;
        *limit = s->gdtr.limit;
    }
    return true;
}

void iem_desc_fetch(struct iem_cpu *cpu, uint16_t sel, int vector, uint32_t ext, uint64_t desc[2])
{
    uint32_t err = (sel & 0xfffc) | ext;
    uint64_t base;
    uint32_t limit;
    if (!desc_table(cpu, sel, &base, &limit))
        iem_raise_err(cpu, vector, err);
    uint32_t off = sel & 0xfff8u;
    if ((uint64_t)off + 7 > limit)
        iem_raise_err(cpu, vector, err);
    desc[0] = iem_lin_read(cpu, seg_linear(cpu, base + off), 8, IEM_ACC_SYS);
    desc[1] = 0;
    /* IA-32e mode: LDT, TSS and call-gate descriptors are 16 bytes (SDM vol. 3A, 7.2.3, 5.8.3.1). */
    if ((cpu->s->efer & IEM_EFER_LMA) && !iem_desc_is_s(desc[0])) {
        if ((uint64_t)off + 15 > limit)
            iem_raise_err(cpu, vector, err);
        desc[1] = iem_lin_read(cpu, seg_linear(cpu, base + off + 8), 8, IEM_ACC_SYS);
    }
}

void iem_desc_read(struct iem_cpu *cpu, uint16_t sel, int vector, uint64_t desc[2])
{
    iem_desc_fetch(cpu, sel, vector, 0, desc);
}

/* Writes byte 5 (type, S, DPL, P) of the descriptor for sel. */
static void desc_write_byte5(struct iem_cpu *cpu, uint16_t sel, uint8_t value)
{
    uint64_t base;
    uint32_t limit;
    if (!desc_table(cpu, sel, &base, &limit))
        return;
    iem_lin_write(cpu, seg_linear(cpu, base + (sel & 0xfff8u) + 5), 1, value, IEM_ACC_SYS);
}

void iem_desc_set_accessed(struct iem_cpu *cpu, uint16_t sel, uint64_t desc[2])
{
    /* SDM vol. 3A, 3.4.5.1: the processor sets the accessed bit when it loads the selector. */
    if (!iem_desc_is_s(desc[0]) || (desc[0] & (1ULL << 40)))
        return;
    desc[0] |= 1ULL << 40;
    desc_write_byte5(cpu, sel, (uint8_t)(desc[0] >> 40));
}

void iem_desc_set_busy(struct iem_cpu *cpu, uint16_t sel, bool busy, uint64_t *desc)
{
    uint64_t d[2];
    if (desc) {
        d[0] = *desc;
    } else {
        iem_desc_fetch(cpu, sel & ~4u, IEM_X_GP, 0, d);
    }
    /* The busy flag is bit 1 of a TSS descriptor's type (SDM vol. 3A, 7.2.2). */
    if (busy)
        d[0] |= 1ULL << 41;
    else
        d[0] &= ~(1ULL << 41);
    desc_write_byte5(cpu, sel & ~4u, (uint8_t)(d[0] >> 40));
    if (desc)
        *desc = d[0];
}

void iem_seg_from_desc(struct cpu_seg *seg, uint16_t sel, const uint64_t desc[2])
{
    uint64_t d = desc[0];
    seg->sel = sel;
    seg->base = ((d >> 16) & 0xffffffu) | ((d >> 32) & 0xff000000u);
    if (!iem_desc_is_s(d))
        seg->base |= (desc[1] & 0xffffffffu) << 32;
    uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000u));
    if (d & (1ULL << 55))
        limit = (limit << 12) | 0xfff;
    seg->limit = limit;
    seg->attr = (uint32_t)((d >> 40) & 0xff) | (uint32_t)(((d >> 52) & 0xf) << 12);
}

uint64_t iem_tss_read(struct iem_cpu *cpu, uint32_t off, unsigned size, uint32_t ext)
{
    const struct cpu_seg *tr = &cpu->s->seg[CPU_TR];
    if ((uint64_t)off + size - 1 > tr->limit)
        iem_raise_err(cpu, IEM_X_TS, (tr->sel & 0xfffc) | ext);
    return iem_lin_read(cpu, seg_linear(cpu, tr->base + off), size, IEM_ACC_SYS);
}

/* The inner stack for privilege dpl from the current TSS (SDM vol. 3A, 6.12.1, figures 7-2, 7-11). */
void iem_tss_inner_stack(struct iem_cpu *cpu, unsigned dpl, uint32_t ext, uint16_t *ss, uint64_t *sp)
{
    unsigned type = cpu->s->seg[CPU_TR].attr & CPU_SEG_ATTR_TYPE_MASK;
    if (type & 8) {
        *sp = iem_tss_read(cpu, 4 + dpl * 8, 4, ext);
        *ss = (uint16_t)iem_tss_read(cpu, 8 + dpl * 8, 2, ext);
    } else {
        *sp = iem_tss_read(cpu, 2 + dpl * 4, 2, ext);
        *ss = (uint16_t)iem_tss_read(cpu, 4 + dpl * 4, 2, ext);
    }
}

/* ---- Loading segment registers ------------------------------------------------------ */

void iem_seg_set_cs(struct iem_cpu *cpu, uint16_t sel, const uint64_t desc[2], unsigned cpl)
{
    iem_seg_from_desc(&cpu->s->seg[CPU_CS], (uint16_t)((sel & 0xfffc) | cpl), desc);
}

void iem_seg_set(struct iem_cpu *cpu, unsigned seg, uint16_t sel, const uint64_t desc[2])
{
    iem_seg_from_desc(&cpu->s->seg[seg], sel, desc);
    if (seg == CPU_SS)
        cpu->stack32 = (cpu->s->seg[CPU_SS].attr & CPU_SEG_ATTR_DB) != 0;
}

void iem_seg_set_null(struct iem_cpu *cpu, unsigned seg, uint16_t sel, unsigned dpl)
{
    struct cpu_seg *sr = &cpu->s->seg[seg];
    sr->sel = sel;
    /* Intel clears the base of a null FS/GS in 64-bit mode (Linux's X86_BUG_NULL_SEG is AMD's). */
    sr->base = 0;
    sr->limit = 0;
    sr->attr = CPU_SEG_ATTR_UNUSABLE | (dpl << CPU_SEG_ATTR_DPL_SHIFT);
}

void iem_seg_set_real(struct iem_cpu *cpu, unsigned seg, uint16_t sel)
{
    struct cpu_seg *sr = &cpu->s->seg[seg];
    sr->sel = sel;
    sr->base = (uint64_t)sel << 4;
    if (cpu->s->rflags & IEM_F_VM) {
        /* Virtual-8086 segments: 64 KiB, DPL 3, read/write (SDM vol. 3A, 20.1.1). */
        sr->limit = 0xffff;
        sr->attr = CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | (3u << CPU_SEG_ATTR_DPL_SHIFT) | 0x3;
    } else if (sr->attr & CPU_SEG_ATTR_UNUSABLE) {
        sr->limit = 0xffff;
        sr->attr = CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | (seg == CPU_CS ? 0xb : 0x3);
    }
    /* Otherwise real mode keeps the cached limit and attributes ("unreal" mode relies on it). */
    if (seg == CPU_SS)
        cpu->stack32 = (sr->attr & CPU_SEG_ATTR_DB) != 0;
}

void iem_seg_set_flat(struct iem_cpu *cpu, unsigned seg, uint16_t sel, unsigned dpl, bool code, bool long64)
{
    struct cpu_seg *sr = &cpu->s->seg[seg];
    sr->sel = sel;
    sr->base = 0;
    sr->limit = 0xffffffffu;
    sr->attr = CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | (dpl << CPU_SEG_ATTR_DPL_SHIFT) | CPU_SEG_ATTR_G;
    if (code)
        sr->attr |= 0xb | (long64 ? CPU_SEG_ATTR_L : CPU_SEG_ATTR_DB);
    else
        sr->attr |= 0x3 | CPU_SEG_ATTR_DB;
    if (seg == CPU_SS)
        cpu->stack32 = true;
}

void iem_seg_load(struct iem_cpu *cpu, unsigned seg, uint16_t sel)
{
    struct cpu_state *s = cpu->s;
    if (!(s->cr0 & IEM_CR0_PE) || (s->rflags & IEM_F_VM)) {
        iem_seg_set_real(cpu, seg, sel);
        return;
    }
    unsigned cpl = cpu->cpl;
    unsigned rpl = sel & 3;
    uint32_t err = sel & 0xfffc;
    if (err == 0) {
        if (seg == CPU_SS) {
            /* MOV/POP SS (SDM vol. 2B): a null SS only in 64-bit mode at CPL < 3 with RPL = CPL. */
            if (cpu->mode != IEM_MODE_LONG64 || cpl == 3 || rpl != cpl)
                iem_raise_gp0(cpu);
            iem_seg_set_null(cpu, CPU_SS, sel, cpl);
            return;
        }
        iem_seg_set_null(cpu, seg, sel, 0);
        return;
    }
    uint64_t d[2];
    iem_desc_fetch(cpu, sel, IEM_X_GP, 0, d);
    unsigned dpl = iem_desc_dpl(d[0]);
    if (seg == CPU_SS) {
        if (rpl != cpl || !iem_desc_is_writable_data(d[0]) || dpl != cpl)
            iem_raise_err(cpu, IEM_X_GP, err);
        if (!iem_desc_is_present(d[0]))
            iem_raise_err(cpu, IEM_X_SS, err);
    } else {
        if (!iem_desc_is_readable(d[0]))
            iem_raise_err(cpu, IEM_X_GP, err);
        if (!iem_desc_is_conforming(d[0]) && (rpl > dpl || cpl > dpl))
            iem_raise_err(cpu, IEM_X_GP, err);
        if (!iem_desc_is_present(d[0]))
            iem_raise_err(cpu, IEM_X_NP, err);
    }
    iem_desc_set_accessed(cpu, sel, d);
    iem_seg_set(cpu, seg, sel, d);
}

void iem_seg_null_invalid(struct iem_cpu *cpu, unsigned cpl)
{
    /* RET/IRET to an outer level (SDM vol. 2, RET, IRET): data and non-conforming code
     * segments more privileged than the new CPL are replaced by null selectors. */
    static const unsigned segs[] = {CPU_ES, CPU_DS, CPU_FS, CPU_GS};
    for (unsigned i = 0; i < 4; i++) {
        struct cpu_seg *sr = &cpu->s->seg[segs[i]];
        if (sr->attr & CPU_SEG_ATTR_UNUSABLE)
            continue;
        unsigned type = sr->attr & CPU_SEG_ATTR_TYPE_MASK;
        bool conforming_code = (type & 0xc) == 0xc;
        unsigned dpl = (sr->attr & CPU_SEG_ATTR_DPL_MASK) >> CPU_SEG_ATTR_DPL_SHIFT;
        if (!conforming_code && dpl < cpl) {
            sr->sel = 0;
            sr->attr = CPU_SEG_ATTR_UNUSABLE;
        }
    }
}

void iem_seg_check_new_ss(struct iem_cpu *cpu, uint16_t sel, unsigned cpl, uint32_t ext, int vector,
                          uint64_t desc[2])
{
    uint32_t err = (sel & 0xfffc) | ext;
    if ((sel & 0xfffc) == 0)
        iem_raise_err(cpu, vector, ext);
    iem_desc_fetch(cpu, sel, vector, ext, desc);
    if ((sel & 3) != cpl || !iem_desc_is_writable_data(desc[0]) || iem_desc_dpl(desc[0]) != cpl)
        iem_raise_err(cpu, vector, err);
    if (!iem_desc_is_present(desc[0]))
        iem_raise_err(cpu, IEM_X_SS, err);
    iem_desc_set_accessed(cpu, sel, desc);
}

/* ---- Explicit stacks ---------------------------------------------------------------- */

static uint64_t stack_mask(const struct iem_stack *st)
{
    return st->width == 8 ? ~0ULL : st->width == 4 ? 0xffffffffULL : 0xffffULL;
}

/* [off, off + len) inside the stack segment, without wrapping (SDM vol. 3A, 5.3). */
static bool stack_piece_ok(const struct iem_stack *st, uint64_t off, uint64_t len)
{
    if (len == 0)
        return true;
    uint64_t last = off + len - 1;
    if (st->width == 8)
        return iem_is_canonical(off) && iem_is_canonical(last) && last >= off;
    const struct cpu_seg *sr = &st->seg;
    if (sr->attr & CPU_SEG_ATTR_UNUSABLE)
        return false;
    uint64_t upper = (sr->attr & CPU_SEG_ATTR_DB) ? 0xffffffffULL : 0xffffULL;
    unsigned type = sr->attr & CPU_SEG_ATTR_TYPE_MASK;
    bool expand_down = (sr->attr & CPU_SEG_ATTR_S) && !(type & 8) && (type & 4);
    if (expand_down)
        return off > sr->limit && last <= upper;
    return last <= sr->limit;
}

/* A range that may wrap around the stack width (16-bit SP going below 0). */
static bool stack_range_ok(const struct iem_stack *st, uint64_t off, uint64_t len)
{
    uint64_t mask = stack_mask(st);
    if (st->width == 8 || off + len - 1 <= mask)
        return stack_piece_ok(st, off, len);
    uint64_t first = mask - off + 1;
    return stack_piece_ok(st, off, first) && stack_piece_ok(st, 0, len - first);
}

static uint64_t stack_linear(const struct iem_stack *st, uint64_t off)
{
    if (st->width == 8)
        return off;
    return (uint32_t)(st->seg.base + off);
}

void iem_stack_init(struct iem_stack *st, const struct cpu_seg *seg, uint64_t sp, unsigned width, unsigned cpl,
                    uint32_t err)
{
    st->seg = *seg;
    st->width = width;
    st->sp = sp & stack_mask(st);
    st->acc = cpl == 3 ? 0 : IEM_ACC_SYS;
    st->err = err;
}

void iem_stack_current(struct iem_cpu *cpu, struct iem_stack *st)
{
    unsigned width = cpu->mode == IEM_MODE_LONG64 ? 8 : cpu->stack32 ? 4 : 2;
    iem_stack_init(st, &cpu->s->seg[CPU_SS], cpu->s->gpr[CPU_RSP], width, cpu->cpl, 0);
}

void iem_stack_check_push(struct iem_cpu *cpu, const struct iem_stack *st, uint64_t bytes)
{
    uint64_t off = (st->sp - bytes) & stack_mask(st);
    if (!stack_range_ok(st, off, bytes))
        iem_raise_err(cpu, IEM_X_SS, st->err);
}

void iem_stack_check_pop(struct iem_cpu *cpu, const struct iem_stack *st, uint64_t bytes)
{
    if (!stack_range_ok(st, st->sp, bytes))
        iem_raise_err(cpu, IEM_X_SS, st->err);
}

void iem_stack_push(struct iem_cpu *cpu, struct iem_stack *st, unsigned size, uint64_t value)
{
    uint64_t off = (st->sp - size) & stack_mask(st);
    if (!stack_piece_ok(st, off, size))
        iem_raise_err(cpu, IEM_X_SS, st->err);
    iem_lin_write(cpu, stack_linear(st, off), size, value, st->acc);
    st->sp = off;
}

uint64_t iem_stack_read(struct iem_cpu *cpu, const struct iem_stack *st, uint64_t offset, unsigned size)
{
    uint64_t off = (st->sp + offset) & stack_mask(st);
    if (!stack_piece_ok(st, off, size))
        iem_raise_err(cpu, IEM_X_SS, st->err);
    return iem_lin_read(cpu, stack_linear(st, off), size, st->acc);
}

uint64_t iem_stack_pop(struct iem_cpu *cpu, struct iem_stack *st, unsigned size)
{
    uint64_t v = iem_stack_read(cpu, st, 0, size);
    st->sp = (st->sp + size) & stack_mask(st);
    return v;
}

uint64_t iem_stack_rsp(const struct iem_stack *st, uint64_t old_rsp)
{
    uint64_t mask = stack_mask(st);
    return (old_rsp & ~mask) | (st->sp & mask);
}

/* ---- RFLAGS -------------------------------------------------------------------------- */

/* Flags every POPF/IRET may change. */
#define FLAGS_ALWAYS (IEM_F_ARITH | IEM_F_TF | IEM_F_DF | IEM_F_NT | IEM_F_AC | IEM_F_ID)

void iem_flags_write(struct iem_cpu *cpu, uint64_t value, uint64_t mask)
{
    /* POPF (SDM vol. 2B): IOPL at CPL 0 only, IF when CPL <= IOPL; VM, VIP and VIF never
     * (except VIF through the VME path); RF is cleared.  Real mode changes IOPL and IF. */
    struct cpu_state *s = cpu->s;
    uint64_t f = s->rflags;
    unsigned iopl = (unsigned)(f >> 12) & 3;
    uint64_t chg = FLAGS_ALWAYS;
    if (!(s->cr0 & IEM_CR0_PE)) {
        chg |= IEM_F_IF | IEM_F_IOPL;
    } else if (f & IEM_F_VM) {
        if (iopl == 3)
            chg |= IEM_F_IF;
        else if ((s->cr4 & IEM_CR4_VME) && mask == 0xffff)
            f = (f & ~(uint64_t)IEM_F_VIF) | ((value & IEM_F_IF) ? IEM_F_VIF : 0);
    } else {
        if (cpu->cpl == 0)
            chg |= IEM_F_IOPL;
        if (cpu->cpl <= iopl)
            chg |= IEM_F_IF;
    }
    chg &= mask;
    f = (f & ~chg) | (value & chg);
    s->rflags = (f & ~(uint64_t)IEM_F_RF) | 2;
}

void iem_flags_iret(struct iem_cpu *cpu, uint64_t value, unsigned opsize, unsigned old_cpl)
{
    /* IRET, protected and IA-32e mode (SDM vol. 2A, IRET "RETURN-TO-*-PRIVILEGE-LEVEL"). */
    struct cpu_state *s = cpu->s;
    uint64_t f = s->rflags;
    unsigned iopl = (unsigned)(f >> 12) & 3;
    uint64_t chg = FLAGS_ALWAYS | IEM_F_RF;
    if (old_cpl <= iopl)
        chg |= IEM_F_IF;
    if (old_cpl == 0) {
        chg |= IEM_F_IOPL;
        if (opsize >= 4)
            chg |= IEM_F_VIF | IEM_F_VIP;
    }
    if (opsize == 2)
        chg &= 0xffff;
    s->rflags = ((f & ~chg) | (value & chg)) | 2;
}
