/* iem-dbg.c - the interpreter's debug-register breakpoints: instruction, data, I/O breakpoints (SDM vol. 3B, chapter 17). */

/*
 * Design.  Breakpoints cost nothing while DR7 enables none: the only test on the fast
 * paths is exec_block's entry condition (core->dbg_exec), and TLB fills look at
 * dbg_data_mask.  Once DR7 enables one:
 *
 * - every block runs in exec_block_careful, one instruction at a time; before an
 *   instruction whose EFLAGS.RF is clear, iem_dbg_insn_check compares the linear address
 *   of CS:RIP with the enabled instruction breakpoints (R/W = 00) and raises the
 *   fault-class #DB (17.3.1.1);
 * - the TLB never gives a host pointer for a linear page that overlaps an enabled data
 *   breakpoint (R/W = 01 for writes, 11 for reads and writes), so every access there takes
 *   the slow path of iem-mem.c, which calls iem_dbg_data_access to record the hit;
 * - after the instruction completed, iem_dbg_insn_done adds the I/O breakpoints (R/W = 10,
 *   only with CR4.DE, 17.2.4/17.2.5) its port access hit, and the careful loop raises one
 *   trap-class #DB with DR6.B0-B3 (and BS when single-stepping) set (17.3.1.2).  A fault
 *   in the instruction drops the hits: the instruction did not complete.
 *
 * LEN (17.2.5): 00 one byte, 01 two, 11 four, 10 eight; a data or I/O breakpoint covers
 * the naturally aligned range of that size that holds its address (the low address bits
 * are ignored), and an access hits when any of its bytes fall in that range.  R/W = 10 with
 * CR4.DE clear is undefined in the SDM; here it never matches.  Instruction breakpoints
 * match the address of the instruction's first byte whatever LEN says.
 *
 * Limits: a hit inside a REP string instruction traps after the whole instruction rather
 * than after the iteration; an instruction breakpoint on a block whose fetch faults loses
 * to that fault (the SDM gives the code breakpoint priority, table 6-2).
 */
#include <Zydis/Mnemonic.h>

#include "iem-dbg.h"

#define DR_RW_EXEC  0u
#define DR_RW_WRITE 1u
#define DR_RW_IO    2u
#define DR_RW_RW    3u

static unsigned dr7_rw(uint64_t dr7, unsigned n)
{
    return (unsigned)(dr7 >> (16 + 4 * n)) & 3;
}

static uint64_t dr7_len(uint64_t dr7, unsigned n)
{
    static const uint8_t len[4] = { 1, 2, 8, 4 };
    return len[(dr7 >> (18 + 4 * n)) & 3];
}

static bool dr7_enabled(uint64_t dr7, unsigned n)
{
    return (dr7 >> (2 * n)) & 3;
}

/* A breakpoint's address as a linear address of the current paging mode (32 bits outside IA-32e mode). */
static uint64_t dr_linear(const struct iem_cpu *cpu, unsigned n)
{
    uint64_t a = cpu->s->dr[n];
    return (cpu->s->efer & IEM_EFER_LMA) ? a : (uint32_t)a;
}

/* Whether [a, a+size) overlaps the aligned range of breakpoint n of length len. */
static bool dr_overlaps(uint64_t bp, uint64_t len, uint64_t a, uint64_t size)
{
    uint64_t base = bp & ~(len - 1);
    return a - base < len || base - a < size;
}

void iem_dbg_sync(struct iem_core *core)
{
    const struct cpu_state *s = core->cpu.s;
    uint64_t dr7 = s->dr[7];
    bool exec = false;
    uint8_t data = 0;
    for (unsigned n = 0; n < 4; n++) {
        if (!dr7_enabled(dr7, n))
            continue;
        unsigned rw = dr7_rw(dr7, n);
        if (rw == DR_RW_IO && !(s->cr4 & IEM_CR4_DE))
            continue;
        exec = true;
        if (rw == DR_RW_WRITE || rw == DR_RW_RW)
            data |= (uint8_t)(1u << n);
    }
    core->dbg_exec = exec;
    core->dbg_data_mask = data;
}

void iem_dbg_changed(struct iem_cpu *cpu)
{
    struct iem_core *core = iem_core_of(cpu);
    core->dbg_hits = 0;
    /* The full flush re-syncs the summary and drops the host pointers of newly watched pages. */
    iem_tlb_flush(cpu, true);
}

bool iem_dbg_page_watched(const struct iem_core *core, uint64_t lin_page, int kind)
{
    const struct iem_cpu *cpu = &core->cpu;
    uint64_t dr7 = cpu->s->dr[7];
    for (unsigned n = 0; n < 4; n++) {
        if (!(core->dbg_data_mask & (1u << n)))
            continue;
        if (kind == IEM_ACC_READ && dr7_rw(dr7, n) != DR_RW_RW)
            continue;
        if (dr_overlaps(dr_linear(cpu, n), dr7_len(dr7, n), lin_page, IEM_PAGE_SIZE))
            return true;
    }
    return false;
}

void iem_dbg_data_access(struct iem_core *core, uint64_t lin, unsigned size, bool write)
{
    const struct iem_cpu *cpu = &core->cpu;
    uint64_t dr7 = cpu->s->dr[7];
    for (unsigned n = 0; n < 4; n++) {
        if (!(core->dbg_data_mask & (1u << n)))
            continue;
        if (!write && dr7_rw(dr7, n) != DR_RW_RW)
            continue;
        if (dr_overlaps(dr_linear(cpu, n), dr7_len(dr7, n), lin, size))
            core->dbg_hits |= (uint8_t)(1u << n);
    }
}

void iem_dbg_insn_check(struct iem_core *core)
{
    struct iem_cpu *cpu = &core->cpu;
    struct cpu_state *s = cpu->s;
    uint64_t dr7 = s->dr[7];
    uint64_t lin = cpu->mode == IEM_MODE_LONG64 ? s->rip : (uint32_t)(s->seg[CPU_CS].base + s->rip);
    uint32_t hits = 0;
    for (unsigned n = 0; n < 4; n++) {
        if (dr7_enabled(dr7, n) && dr7_rw(dr7, n) == DR_RW_EXEC && dr_linear(cpu, n) == lin)
            hits |= 1u << n;
    }
    if (!hits)
        return;
    /* A fault: RIP stays at the instruction, and the handler returns with RF set to run it (17.3.1.1). */
    s->dr[6] |= hits;
    cpu->insn_rip = s->rip;
    iem_raise(cpu, IEM_X_DB);
}

/* The port range an I/O instruction accessed, or false when it is none or did no I/O. */
static bool insn_port(const struct iem_cpu *cpu, const struct iem_insn *in, uint64_t rcx_before, uint16_t *port,
                      unsigned *size)
{
    const struct cpu_state *s = cpu->s;
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_IN:
        *port = in->op[1].kind == IEM_OPK_IMM ? (uint16_t)(in->imm & 0xff) : (uint16_t)s->gpr[CPU_RDX];
        *size = in->op[0].size;
        return true;
    case ZYDIS_MNEMONIC_OUT:
        *port = in->op[0].kind == IEM_OPK_IMM ? (uint16_t)(in->imm & 0xff) : (uint16_t)s->gpr[CPU_RDX];
        *size = in->op[1].size;
        return true;
    case ZYDIS_MNEMONIC_INSB: case ZYDIS_MNEMONIC_OUTSB: *size = 1; break;
    case ZYDIS_MNEMONIC_INSW: case ZYDIS_MNEMONIC_OUTSW: *size = 2; break;
    case ZYDIS_MNEMONIC_INSD: case ZYDIS_MNEMONIC_OUTSD: *size = 4; break;
    default:
        return false;
    }
    *port = (uint16_t)s->gpr[CPU_RDX];
    if (in->prefixes & (IEM_PFX_REP | IEM_PFX_REPNE)) {
        uint64_t mask = in->addrsize >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * in->addrsize)) - 1;
        if (!(rcx_before & mask))
            return false;
    }
    return true;
}

uint32_t iem_dbg_insn_done(struct iem_core *core, const struct iem_insn *in, uint64_t rcx_before)
{
    struct iem_cpu *cpu = &core->cpu;
    const struct cpu_state *s = cpu->s;
    uint32_t hits = core->dbg_hits;
    core->dbg_hits = 0;
    uint16_t port;
    unsigned size;
    if ((s->cr4 & IEM_CR4_DE) && insn_port(cpu, in, rcx_before, &port, &size)) {
        uint64_t dr7 = s->dr[7];
        for (unsigned n = 0; n < 4; n++) {
            if (dr7_enabled(dr7, n) && dr7_rw(dr7, n) == DR_RW_IO &&
                dr_overlaps((uint16_t)s->dr[n], dr7_len(dr7, n), port, size))
                hits |= 1u << n;
        }
    }
    return hits;
}
