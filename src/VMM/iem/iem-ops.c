/* iem-ops.c - operand and register helpers for instruction handlers: GPRs, operands, effective addresses, stack, near jumps, port I/O, conditions, mode. */
#include <string.h>

#include "iem-core.h"
#include "iem-fast.h"

#define LOG_COMPONENT "iem"

static inline uint64_t size_mask(unsigned bytes)
{
    return bytes >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * bytes)) - 1;
}

/* ---- general-purpose registers --------------------------------------------------- */

uint64_t iem_gpr_read(struct iem_cpu *cpu, unsigned reg, unsigned size)
{
    if (reg >= IEM_GPR_AH)
        return (cpu->s->gpr[(reg - IEM_GPR_AH) & 3] >> 8) & 0xff;
    return cpu->s->gpr[reg & 15] & size_mask(size);
}

void iem_gpr_write(struct iem_cpu *cpu, unsigned reg, unsigned size, uint64_t value)
{
    uint64_t *r;
    if (reg >= IEM_GPR_AH) {
        r = &cpu->s->gpr[(reg - IEM_GPR_AH) & 3];
        *r = (*r & ~(uint64_t)0xff00) | ((value & 0xff) << 8);
        return;
    }
    r = &cpu->s->gpr[reg & 15];
    switch (size) {
    case 1:
        *r = (*r & ~(uint64_t)0xff) | (value & 0xff);
        break;
    case 2:
        *r = (*r & ~(uint64_t)0xffff) | (value & 0xffff);
        break;
    case 4:
        /* 32-bit results zero-extend into the full register (SDM vol. 1 3.4.1.1). */
        *r = (uint32_t)value;
        break;
    default:
        *r = value;
        break;
    }
}

/* ---- operands ------------------------------------------------------------------------ */

uint64_t iem_ea(struct iem_cpu *cpu, const struct iem_insn *in)
{
    const struct iem_mem *m = &in->mem;
    const struct cpu_state *s = cpu->s;
    uint64_t a = (uint64_t)m->disp;
    if (m->rip_rel)
        a += cpu->insn_rip + in->len;
    if (m->base < 16)
        a += s->gpr[m->base];
    if (m->index < 16)
        a += s->gpr[m->index] * m->scale;
    /* 16-bit forms wrap at 64 KiB, 32-bit forms at 4 GiB (SDM vol. 2A 2.1.5). */
    switch (in->addrsize) {
    case 2:
        return a & 0xffff;
    case 4:
        return a & 0xffffffffu;
    default:
        return a;
    }
}

static uint64_t mem_read_sized(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size)
{
    switch (size) {
    case 1:
        return iem_mem_read8(cpu, seg, off);
    case 2:
        return iem_mem_read16(cpu, seg, off);
    case 4:
        return iem_mem_read32(cpu, seg, off);
    case 8:
        return iem_mem_read64(cpu, seg, off);
    default: {
        uint64_t v = 0;
        iem_mem_read_bytes(cpu, seg, off, &v, size == 0 || size > 8 ? 8 : size);
        return v;
    }
    }
}

static void mem_write_sized(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        iem_mem_write8(cpu, seg, off, (uint8_t)v);
        break;
    case 2:
        iem_mem_write16(cpu, seg, off, (uint16_t)v);
        break;
    case 4:
        iem_mem_write32(cpu, seg, off, (uint32_t)v);
        break;
    case 8:
        iem_mem_write64(cpu, seg, off, v);
        break;
    default:
        iem_mem_write_bytes(cpu, seg, off, &v, size == 0 || size > 8 ? 8 : size);
        break;
    }
}

static uint64_t *cr_slot(struct cpu_state *s, unsigned reg)
{
    switch (reg) {
    case 0:
        return &s->cr0;
    case 2:
        return &s->cr2;
    case 3:
        return &s->cr3;
    case 4:
        return &s->cr4;
    case 8:
        return &s->cr8;
    default:
        return NULL;
    }
}

uint64_t iem_op_read(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx)
{
    if (idx >= 4)
        return 0;
    const struct iem_operand *op = &in->op[idx];
    struct cpu_state *s = cpu->s;
    if (__builtin_expect(op->kind == IEM_OPK_GPR && op->reg < 16, 1))
        return s->gpr[op->reg] & size_mask(op->size);
    switch (op->kind) {
    case IEM_OPK_GPR:
        return iem_gpr_read(cpu, op->reg, op->size);
    case IEM_OPK_MEM:
        return mem_read_sized(cpu, in->mem.seg, iem_ea(cpu, in), op->size);
    case IEM_OPK_IMM:
        return (op->reg ? in->imm2 : in->imm) & size_mask(op->size);
    case IEM_OPK_REL:
    case IEM_OPK_PTR:
        return in->imm;
    case IEM_OPK_SEG:
        return op->reg < CPU_SEG_COUNT ? s->seg[op->reg].sel : 0;
    case IEM_OPK_CR: {
        uint64_t *p = cr_slot(s, op->reg);
        return p ? *p : 0;
    }
    case IEM_OPK_DR:
        return s->dr[op->reg & 7];
    case IEM_OPK_ST:
    case IEM_OPK_MMX: {
        uint64_t v;
        memcpy(&v, s->fpu.st[op->reg & 7], 8);
        return v;
    }
    case IEM_OPK_XMM: {
        uint64_t v;
        memcpy(&v, s->fpu.xmm[op->reg & 15], 8);
        return v;
    }
    default:
        return 0;
    }
}

void iem_op_write(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx, uint64_t value)
{
    if (idx >= 4)
        return;
    const struct iem_operand *op = &in->op[idx];
    struct cpu_state *s = cpu->s;
    switch (op->kind) {
    case IEM_OPK_GPR:
        iem_gpr_write(cpu, op->reg, op->size, value);
        break;
    case IEM_OPK_MEM:
        mem_write_sized(cpu, in->mem.seg, iem_ea(cpu, in), op->size, value);
        break;
    case IEM_OPK_SEG:
        if (op->reg < CPU_LDTR)
            iem_seg_load(cpu, op->reg, (uint16_t)value);
        break;
    case IEM_OPK_CR: {
        uint64_t *p = cr_slot(s, op->reg);
        if (p)
            *p = value;
        break;
    }
    case IEM_OPK_DR:
        s->dr[op->reg & 7] = value;
        break;
    case IEM_OPK_MMX:
        /* Writing an MMX register sets the x87 exponent field to all ones (SDM vol. 1 9.5.1). */
        memcpy(s->fpu.st[op->reg & 7], &value, 8);
        s->fpu.st[op->reg & 7][8] = 0xff;
        s->fpu.st[op->reg & 7][9] = 0xff;
        break;
    case IEM_OPK_XMM:
        memcpy(s->fpu.xmm[op->reg & 15], &value, 8);
        break;
    default:
        break;
    }
}

/* ---- stack ---------------------------------------------------------------------------- */

static inline uint64_t sp_mask(const struct iem_cpu *cpu)
{
    if (cpu->mode == IEM_MODE_LONG64)
        return UINT64_MAX;
    return cpu->stack32 ? 0xffffffffu : 0xffffu;
}

void iem_push(struct iem_cpu *cpu, unsigned size, uint64_t value)
{
    struct cpu_state *s = cpu->s;
    uint64_t mask = sp_mask(cpu);
    uint64_t sp = s->gpr[CPU_RSP];
    uint64_t nsp = (sp - size) & mask;
    mem_write_sized(cpu, CPU_SS, nsp, size, value);
    s->gpr[CPU_RSP] = (sp & ~mask) | nsp;
}

uint64_t iem_pop(struct iem_cpu *cpu, unsigned size)
{
    struct cpu_state *s = cpu->s;
    uint64_t mask = sp_mask(cpu);
    uint64_t sp = s->gpr[CPU_RSP];
    uint64_t v = mem_read_sized(cpu, CPU_SS, sp & mask, size);
    s->gpr[CPU_RSP] = (sp & ~mask) | ((sp + size) & mask);
    return v;
}

uint64_t iem_stack_peek(struct iem_cpu *cpu, unsigned size, uint64_t offset)
{
    uint64_t mask = sp_mask(cpu);
    return mem_read_sized(cpu, CPU_SS, (cpu->s->gpr[CPU_RSP] + offset) & mask, size);
}

/* ---- branches --------------------------------------------------------------------- */

void iem_jump_near(struct iem_cpu *cpu, uint64_t target, unsigned opsize)
{
    target &= size_mask(opsize);
    if (cpu->mode == IEM_MODE_LONG64) {
        if ((uint64_t)((int64_t)(target << 16) >> 16) != target)
            iem_raise_gp0(cpu);
    } else if (target > cpu->s->seg[CPU_CS].limit) {
        iem_raise_gp0(cpu);
    }
    cpu->s->rip = target;
}

bool iem_cond(const struct iem_cpu *cpu, unsigned cond)
{
    return iem_cond_flags(cpu->s->rflags, cond);
}

/* ---- port I/O ------------------------------------------------------------------------ */

/*
 * I/O permission (SDM vol. 1 19.5): in protected mode with CPL > IOPL, and always in
 * virtual-8086 mode, every port of the access must be clear in the TSS I/O bitmap.
 */
static void io_check(struct iem_cpu *cpu, uint16_t port, unsigned size)
{
    const struct cpu_state *s = cpu->s;
    if (cpu->mode == IEM_MODE_REAL)
        return;
    unsigned iopl = (unsigned)((s->rflags & IEM_F_IOPL) >> 12);
    if (cpu->mode != IEM_MODE_V86 && cpu->cpl <= iopl)
        return;
    const struct cpu_seg *tr = &s->seg[CPU_TR];
    unsigned type = tr->attr & CPU_SEG_ATTR_TYPE_MASK;
    if ((tr->attr & CPU_SEG_ATTR_UNUSABLE) || (type != 9 && type != 11) || tr->limit < 0x67)
        iem_raise_gp0(cpu);
    uint64_t map = iem_lin_read(cpu, tr->base + 0x66, 2, IEM_ACC_SYS);
    uint64_t at = map + port / 8;
    /* Two bytes are read so an access that spans a byte boundary is covered. */
    if (at + 1 > tr->limit)
        iem_raise_gp0(cpu);
    uint64_t bits = iem_lin_read(cpu, tr->base + at, 2, IEM_ACC_SYS);
    if (bits & (((1u << size) - 1) << (port & 7)))
        iem_raise_gp0(cpu);
}

uint32_t iem_port_in(struct iem_cpu *cpu, uint16_t port, unsigned size)
{
    io_check(cpu, port, size);
    return iom_port_read(cpu->vm, port, size);
}

void iem_port_out(struct iem_cpu *cpu, uint16_t port, unsigned size, uint32_t value)
{
    io_check(cpu, port, size);
    iom_port_write(cpu->vm, port, value, size);
}

/* ---- mode ------------------------------------------------------------------------------ */

void iem_update_mode(struct iem_cpu *cpu)
{
    struct iem_core *core = iem_core_of(cpu);
    const struct cpu_state *s = cpu->s;
    const struct cpu_seg *cs = &s->seg[CPU_CS], *ss = &s->seg[CPU_SS];
    bool lma = (s->efer & IEM_EFER_LMA) != 0;
    if (!(s->cr0 & IEM_CR0_PE)) {
        cpu->mode = IEM_MODE_REAL;
        cpu->cpl = 0;
        /* Real mode keeps the cached D bit of CS (a 32-bit code segment left over from protected mode). */
        cpu->code_size = (cs->attr & CPU_SEG_ATTR_DB) ? 4 : 2;
        cpu->stack32 = (ss->attr & CPU_SEG_ATTR_DB) != 0;
    } else if ((s->rflags & IEM_F_VM) && !lma) {
        cpu->mode = IEM_MODE_V86;
        cpu->cpl = 3;
        cpu->code_size = 2;
        cpu->stack32 = false;
    } else {
        /* CPL is SS.DPL, as VMX and KVM define it; every privilege change loads SS with DPL = CPL. */
        cpu->cpl = (ss->attr & CPU_SEG_ATTR_DPL_MASK) >> CPU_SEG_ATTR_DPL_SHIFT;
        if (lma && (cs->attr & CPU_SEG_ATTR_L)) {
            cpu->mode = IEM_MODE_LONG64;
            cpu->code_size = 8;
            cpu->stack32 = true;
        } else {
            cpu->mode = IEM_MODE_PROT;
            cpu->code_size = (cs->attr & CPU_SEG_ATTR_DB) ? 4 : 2;
            cpu->stack32 = (ss->attr & CPU_SEG_ATTR_DB) != 0;
        }
    }
    cpu->tlb_user = cpu->cpl == 3;
    core->tlb_tag_or = cpu->cpl == 3 ? 0 : IEM_TLB_USER_OK;
    core->tlb_hit_mask = ~(core->tlb_tag_or | (0xfffu & ~(uint64_t)IEM_TLB_HIT_BITS));
    core->rip_mask = cpu->code_size == 8 ? UINT64_MAX : cpu->code_size == 4 ? 0xffffffffu : 0xffffu;
    /* Blocks are decoded per mode; the privilege level is part of link_key instead. */
    uint8_t zmode = iem_decode_mode_key(cpu);
    if (zmode != core->zmode) {
        core->zmode = zmode;
        iem_chain_bump(core);
    }
    iem_link_key_update(core);
    /* Translations depend on these bits; a change drops everything, global entries included. */
    uint64_t sig = (s->cr0 & (IEM_CR0_PE | IEM_CR0_WP | IEM_CR0_PG)) |
                   ((s->cr4 & (uint64_t)(IEM_CR4_PSE | IEM_CR4_PAE | IEM_CR4_PGE)) << 32) |
                   ((s->efer & (uint64_t)(IEM_EFER_NXE | IEM_EFER_LMA)) << 40);
    if (sig != core->paging_sig) {
        core->paging_sig = sig;
        iem_tlb_flush(cpu, true);
    }
}
