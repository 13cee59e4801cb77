/* iem-int-string.c - interpreter: string instructions with REP/REPE/REPNE, and port I/O (IN, OUT, INS, OUTS). */

/*
 * Each iteration does its memory and port accesses first and then commits rSI/rDI/rCX, so
 * a fault in iteration k leaves the registers of k completed iterations and RIP on the
 * instruction, which is how hardware reports it (SDM vol. 2B, REP: the instruction can be
 * restarted).  rSI, rDI and rCX are used at the address size: a 16-bit address size updates
 * only SI/DI/CX, a 32-bit one in 64-bit mode zero-extends them.  The DS side (MOVS, CMPS,
 * LODS, OUTS) takes the decoder's segment (override included); the ES side never changes.
 *
 * Long repeats run at most IEM_INT_REP_CHUNK iterations per call (fewer when
 * iem_core_should_yield says an interrupt or a request is waiting) and then return
 * IEM_JUMPED with RIP on the instruction, so interrupts and VM requests are taken between
 * chunks.  Forward REP MOVS/STOS on RAM move whole page runs at once (str_bulk).  REP with
 * MOVS/STOS/LODS/INS/OUTS repeats whichever of F2/F3 is present (Intel processors treat F2
 * like F3 there); CMPS/SCAS stop on ZF = 0 (F3, REPE) or ZF = 1 (F2, REPNE).
 */

#include <string.h>

#include <Zydis/Mnemonic.h>

#include "iem-alu.h"
#include "iem-core.h"
#include "iem-int.h"
#include "iem-simd.h"
#include "iem-sys.h"

enum str_kind { STR_MOVS, STR_CMPS, STR_SCAS, STR_LODS, STR_STOS, STR_INS, STR_OUTS };

/* Element size from the mnemonic's last letter (B, W, D, Q). */
static unsigned str_esize(uint16_t mnemonic)
{
    switch (mnemonic) {
    case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_CMPSB: case ZYDIS_MNEMONIC_SCASB:
    case ZYDIS_MNEMONIC_LODSB: case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_INSB:
    case ZYDIS_MNEMONIC_OUTSB:
        return 1;
    case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_CMPSW: case ZYDIS_MNEMONIC_SCASW:
    case ZYDIS_MNEMONIC_LODSW: case ZYDIS_MNEMONIC_STOSW: case ZYDIS_MNEMONIC_INSW:
    case ZYDIS_MNEMONIC_OUTSW:
        return 2;
    case ZYDIS_MNEMONIC_MOVSQ: case ZYDIS_MNEMONIC_CMPSQ: case ZYDIS_MNEMONIC_SCASQ:
    case ZYDIS_MNEMONIC_LODSQ: case ZYDIS_MNEMONIC_STOSQ:
        return 8;
    default:
        return 4;
    }
}

/* One iteration; returns false when a REPE/REPNE condition ends the repeat. */
static bool str_step(struct iem_cpu *cpu, const struct iem_insn *in, enum str_kind kind, unsigned esize,
                     uint64_t step)
{
    unsigned asz = in->addrsize;
    uint64_t si = iem_gpr_read(cpu, CPU_RSI, asz), di = iem_gpr_read(cpu, CPU_RDI, asz), v, fl;
    uint16_t port = (uint16_t)iem_gpr_read(cpu, CPU_RDX, 2);

    switch (kind) {
    case STR_MOVS:
        v = iem_int_mem_read(cpu, in->mem.seg, si, esize);
        iem_int_mem_write(cpu, CPU_ES, di, esize, v);
        iem_gpr_write(cpu, CPU_RSI, asz, si + step);
        iem_gpr_write(cpu, CPU_RDI, asz, di + step);
        return true;
    case STR_CMPS: {
        uint64_t a = iem_int_mem_read(cpu, in->mem.seg, si, esize);
        uint64_t b = iem_int_mem_read(cpu, CPU_ES, di, esize);
        fl = cpu->s->rflags;
        iem_alu_cmp(esize, a, b, &fl);
        cpu->s->rflags = fl;
        iem_gpr_write(cpu, CPU_RSI, asz, si + step);
        iem_gpr_write(cpu, CPU_RDI, asz, di + step);
        break;
    }
    case STR_SCAS: {
        uint64_t b = iem_int_mem_read(cpu, CPU_ES, di, esize);
        fl = cpu->s->rflags;
        iem_alu_cmp(esize, iem_gpr_read(cpu, CPU_RAX, esize), b, &fl);
        cpu->s->rflags = fl;
        iem_gpr_write(cpu, CPU_RDI, asz, di + step);
        break;
    }
    case STR_LODS:
        v = iem_int_mem_read(cpu, in->mem.seg, si, esize);
        iem_gpr_write(cpu, CPU_RAX, esize, v);
        iem_gpr_write(cpu, CPU_RSI, asz, si + step);
        return true;
    case STR_STOS:
        iem_int_mem_write(cpu, CPU_ES, di, esize, iem_gpr_read(cpu, CPU_RAX, esize));
        iem_gpr_write(cpu, CPU_RDI, asz, di + step);
        return true;
    case STR_INS:
        /* The destination is checked before the port is read: a port read can have side
         * effects that a restarted instruction must not repeat. */
        iem_mem_probe_write(cpu, CPU_ES, di, esize);
        v = iem_port_in(cpu, port, esize);
        iem_int_mem_write(cpu, CPU_ES, di, esize, v);
        iem_gpr_write(cpu, CPU_RDI, asz, di + step);
        return true;
    case STR_OUTS:
        v = iem_int_mem_read(cpu, in->mem.seg, si, esize);
        iem_port_out(cpu, port, esize, (uint32_t)v);
        iem_gpr_write(cpu, CPU_RSI, asz, si + step);
        return true;
    }
    /* CMPS and SCAS: REPE goes on while equal, REPNE while not equal. */
    if (in->prefixes & IEM_PFX_REPNE)
        return !(cpu->s->rflags & IEM_F_ZF);
    return (cpu->s->rflags & IEM_F_ZF) != 0;
}

/* Bytes from off to the segment limit or the address-size wrap, whichever comes first; 0 for
 * an expand-down segment (the bulk path leaves those to the element-wise one). */
static uint64_t str_seg_room(const struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned asz)
{
    uint64_t room = asz >= 8 ? UINT64_MAX : iem_int_wrap(asz, ~(uint64_t)0) - off + 1;
    if (cpu->mode != IEM_MODE_LONG64) {
        const struct cpu_seg *sg = &cpu->s->seg[seg];
        if (cpu->mode == IEM_MODE_PROT && (sg->attr & (CPU_SEG_ATTR_S | 0xc)) == (CPU_SEG_ATTR_S | 0x4))
            return 0;
        if (off > sg->limit)
            return 0;
        if ((uint64_t)sg->limit - off + 1 < room)
            room = (uint64_t)sg->limit - off + 1;
    }
    return room;
}

/*
 * REP MOVS/STOS forward on RAM: after an element went through the full path (segment type
 * and limit checks, paging, #AC, code-page and MMIO handling), the following elements that
 * lie in the same guest pages, inside the segment and before the address-size wrap are
 * copied directly through the TLB's host mappings.  They can raise nothing the element-wise
 * path would not (same pages, limit checked), and the stores happen in the same order, so
 * an overlapping MOVS replicates its pattern exactly as hardware does.  Returns the
 * elements done (0: not applicable).
 */
static uint64_t str_bulk(struct iem_cpu *cpu, const struct iem_insn *in, enum str_kind kind, unsigned esize,
                         uint64_t count)
{
    const struct cpu_state *s = cpu->s;
    unsigned asz = in->addrsize;
    uint64_t di, dlin, n, bytes, si = 0, slin = 0;
    uint8_t *dst, *src = NULL;

    if ((s->rflags & IEM_F_DF) || (cpu->cpl == 3 && (s->cr0 & IEM_CR0_AM) && (s->rflags & IEM_F_AC)))
        return 0;
    di = iem_gpr_read(cpu, CPU_RDI, asz);
    dlin = iem_int_linear(cpu, CPU_ES, di);
    n = count;
    if (str_seg_room(cpu, CPU_ES, di, asz) / esize < n)
        n = str_seg_room(cpu, CPU_ES, di, asz) / esize;
    if ((IEM_PAGE_SIZE - (dlin & (IEM_PAGE_SIZE - 1))) / esize < n)
        n = (IEM_PAGE_SIZE - (dlin & (IEM_PAGE_SIZE - 1))) / esize;
    if (kind == STR_MOVS) {
        si = iem_gpr_read(cpu, CPU_RSI, asz);
        slin = iem_int_linear(cpu, in->mem.seg, si);
        if (str_seg_room(cpu, in->mem.seg, si, asz) / esize < n)
            n = str_seg_room(cpu, in->mem.seg, si, asz) / esize;
        if ((IEM_PAGE_SIZE - (slin & (IEM_PAGE_SIZE - 1))) / esize < n)
            n = (IEM_PAGE_SIZE - (slin & (IEM_PAGE_SIZE - 1))) / esize;
    }
    if (n == 0)
        return 0;
    dst = iem_int_tlb_ram(cpu, dlin, IEM_ACC_WRITE);
    if (dst == NULL)
        return 0;
    if (kind == STR_MOVS) {
        src = iem_int_tlb_ram(cpu, slin, IEM_ACC_READ);
        if (src == NULL)
            return 0;
    }
    bytes = n * esize;
    iem_int_tlb_dirty(cpu, dlin, (unsigned)bytes);
    if (kind == STR_STOS) {
        uint64_t v = iem_gpr_read(cpu, CPU_RAX, esize);
        if (esize == 1) {
            memset(dst, (int)v, bytes);
        } else {
            for (uint64_t i = 0; i < n; i++)
                memcpy(dst + i * esize, &v, esize);
        }
    } else if (dst > src && dst < src + bytes) {
        /* Forward element copies into their own source: the repeating pattern of hardware. */
        for (uint64_t i = 0; i < n; i++)
            memmove(dst + i * esize, src + i * esize, esize);
    } else {
        memmove(dst, src, bytes);
    }
    iem_gpr_write(cpu, CPU_RDI, asz, di + bytes);
    if (kind == STR_MOVS)
        iem_gpr_write(cpu, CPU_RSI, asz, si + bytes);
    return n;
}

static int str_run(struct iem_cpu *cpu, const struct iem_insn *in, enum str_kind kind)
{
    unsigned esize = str_esize(in->mnemonic), asz = in->addrsize;
    uint64_t step = (cpu->s->rflags & IEM_F_DF) ? (uint64_t)0 - esize : esize, count;
    int done = (kind == STR_OUTS) ? IEM_STOP : IEM_NEXT;
    bool bulk = kind == STR_MOVS || kind == STR_STOS;

    if (!(in->prefixes & (IEM_PFX_REP | IEM_PFX_REPNE))) {
        (void)str_step(cpu, in, kind, esize, step);
    } else {
        count = iem_gpr_read(cpu, CPU_RCX, asz);
        for (uint64_t n = 0; count != 0;) {
            bool more;
            if (n >= IEM_INT_REP_CHUNK || ((n & 255) == 255 && iem_core_should_yield(cpu))) {
                cpu->s->rip = cpu->insn_rip;
                return IEM_JUMPED;
            }
            more = str_step(cpu, in, kind, esize, step);
            count = iem_int_wrap(asz, count - 1);
            n++;
            if (bulk && count != 0) {
                uint64_t k = str_bulk(cpu, in, kind, esize, count);
                count -= k;
                n += k;
            }
            iem_gpr_write(cpu, CPU_RCX, asz, count);
            if (!more)
                break;
        }
    }
    /* A port write may have raised an interrupt line or asked for a reset: back to the run
     * loop so that it is noticed before the next instruction. */
    if (done == IEM_STOP)
        cpu->s->rip = iem_sys_next_rip(cpu, in);
    return done;
}

int iem_int_movs(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (in->nops != 0)
        return iem_simd_movsd(cpu, in);
    return str_run(cpu, in, STR_MOVS);
}

int iem_int_cmps(struct iem_cpu *cpu, const struct iem_insn *in)
{
    if (in->nops != 0)
        return iem_simd_cmpsd(cpu, in);
    return str_run(cpu, in, STR_CMPS);
}

int iem_int_scas(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return str_run(cpu, in, STR_SCAS);
}

int iem_int_lods(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return str_run(cpu, in, STR_LODS);
}

int iem_int_stos(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return str_run(cpu, in, STR_STOS);
}

int iem_int_ins(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return str_run(cpu, in, STR_INS);
}

int iem_int_outs(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return str_run(cpu, in, STR_OUTS);
}

/* ---- IN and OUT --------------------------------------------------------------------------------- */

static uint16_t io_port(struct iem_cpu *cpu, const struct iem_insn *in, unsigned idx)
{
    if (in->op[idx].kind == IEM_OPK_IMM)
        return (uint16_t)(in->imm & 0xff);
    return (uint16_t)iem_gpr_read(cpu, CPU_RDX, 2);
}

/* IN AL/AX/EAX, imm8/DX (a 32-bit IN zero-extends RAX in 64-bit mode). */
int iem_int_in(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[0].size;
    iem_gpr_write(cpu, CPU_RAX, size, iem_port_in(cpu, io_port(cpu, in, 1), size));
    return IEM_NEXT;
}

/* OUT imm8/DX, AL/AX/EAX; returns to the run loop like OUTS. */
int iem_int_out(struct iem_cpu *cpu, const struct iem_insn *in)
{
    unsigned size = in->op[1].size;
    iem_port_out(cpu, io_port(cpu, in, 0), size, (uint32_t)iem_gpr_read(cpu, CPU_RAX, size));
    cpu->s->rip = iem_sys_next_rip(cpu, in);
    return IEM_STOP;
}
