/* iem-fast.h - the interpreter's fast paths: inline effective addresses, condition codes and TLB-hit memory accesses for the specialised handlers (iem-int-fast*.c). */
#ifndef VIREO_IEM_FAST_H
#define VIREO_IEM_FAST_H

/*
 * The specialised handlers never decide anything the generic ones would decide
 * differently: they take the fast path only where its outcome is known to be the
 * generic outcome, and otherwise hand the whole instruction to the generic handler
 * before changing any state.  The facts they rely on:
 *
 * - In 64-bit mode a memory operand's linear address is the effective address plus the
 *   FS or GS base (SDM vol. 3A 3.4.4); its only segment check is the canonical one.  A
 *   TLB tag holds a canonical linear page, so a tag hit proves the address canonical,
 *   and an access that stays inside the page is canonical to its last byte.
 * - A TLB hit with a host address is exactly the case in which the core's own accessors
 *   (iem-mem.c) copy from or to that host address; their slow cases (miss, MMIO, ROM,
 *   pages holding decoded code, page-crossing accesses) all leave hva NULL or fail the
 *   tag or bounds test here.
 * - Alignment checking (#AC) can only trigger at CPL 3; a misaligned access at CPL 3
 *   takes the generic path, which applies the CR0.AM/EFLAGS.AC rule.
 * - A write TLB entry is filled by a walk for a write, which proves the page readable and
 *   has set the accessed and dirty bits, so a read-modify-write may read through it.
 */

#include <string.h>

#include "iem-core.h"

/* Condition codes 0-15 in Jcc's opcode order (SDM vol. 1 B.1.4.7) on an RFLAGS value. */
static inline __attribute__((always_inline)) bool iem_cond_flags(uint64_t f, unsigned cond)
{
    bool r;
    switch ((cond >> 1) & 7) {
    case 0: r = f & IEM_F_OF; break;
    case 1: r = f & IEM_F_CF; break;
    case 2: r = f & IEM_F_ZF; break;
    case 3: r = f & (IEM_F_CF | IEM_F_ZF); break;
    case 4: r = f & IEM_F_SF; break;
    case 5: r = f & IEM_F_PF; break;
    case 6: r = !(f & IEM_F_SF) != !(f & IEM_F_OF); break;
    default: r = (f & IEM_F_ZF) || (!(f & IEM_F_SF) != !(f & IEM_F_OF)); break;
    }
    return (cond & 1) ? !r : r;
}

static inline __attribute__((always_inline)) uint64_t iem_fast_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * size)) - 1;
}

/* The effective address before the address-size wrap (iem_ea without the wrap). */
static inline __attribute__((always_inline)) uint64_t iem_fast_ea_raw(const struct iem_cpu *cpu, const struct iem_insn *in)
{
    const struct iem_mem *m = &in->mem;
    const struct cpu_state *s = cpu->s;
    uint64_t a = (uint64_t)m->disp;
    if (m->base < 16)
        a += s->gpr[m->base];
    if (m->index < 16)
        a += s->gpr[m->index] * m->scale;
    if (m->rip_rel)
        a += cpu->block_rip + in->off + in->len; /* 64-bit mode only: no RIP wrap */
    return a;
}

/* The linear address of the memory operand of a 64-bit-mode instruction with a 64-bit address size. */
static inline __attribute__((always_inline)) uint64_t iem_fast_lin64(const struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t a = iem_fast_ea_raw(cpu, in);
    if (in->mem.seg >= CPU_FS)
        a += cpu->s->seg[in->mem.seg].base;
    return a;
}

/* Host address of [lin, lin+size) when the kind's TLB entry maps it to plain RAM at this privilege, else NULL. */
static inline __attribute__((always_inline)) uint8_t *iem_fast_ptr(struct iem_cpu *cpu, uint64_t lin, unsigned size, int kind)
{
    const struct iem_tlb_entry *e = &cpu->tlb[kind][(lin >> 12) & (IEM_TLB_ENTRIES - 1)];
    unsigned off = (unsigned)lin & (IEM_PAGE_SIZE - 1);
    if (__builtin_expect(!iem_tlb_direct(iem_core_of(cpu), e, lin), 0))
        return NULL;
    if (__builtin_expect(off > IEM_PAGE_SIZE - size, 0))
        return NULL;
    if (__builtin_expect((lin & (size - 1)) && cpu->cpl == 3, 0))
        return NULL;
    return e->hva + off;
}

static inline const uint8_t *iem_fast_rptr(struct iem_cpu *cpu, uint64_t lin, unsigned size)
{
    return iem_fast_ptr(cpu, lin, size, IEM_ACC_READ);
}

static inline __attribute__((always_inline)) uint8_t *iem_fast_wptr(struct iem_cpu *cpu, uint64_t lin, unsigned size)
{
    return iem_fast_ptr(cpu, lin, size, IEM_ACC_WRITE);
}

/* Marks a direct write through iem_fast_wptr dirty, as the core's own direct writes do. */
static inline __attribute__((always_inline)) void iem_fast_dirty(struct iem_cpu *cpu, uint64_t lin, unsigned size)
{
    (void)size; /* a fast access stays inside its page */
    const struct iem_tlb_wside *side = &iem_core_of(cpu)->wside[(lin >> 12) & (IEM_TLB_ENTRIES - 1)];
    mem_dirty_word_set(side->dirty_word, side->dirty_bit);
}

static inline __attribute__((always_inline)) uint64_t iem_fast_load(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static inline __attribute__((always_inline)) void iem_fast_store(uint8_t *p, unsigned size, uint64_t v)
{
    switch (size) {
    case 1: *p = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

static inline __attribute__((always_inline)) bool iem_fast_canonical(uint64_t a)
{
    return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/*
 * RIP inside a chain of specialised handlers.  A specialised handler does not store RIP:
 * while a chain runs, cpu->insn names the executing instruction and its RIP is the block's
 * first RIP (cpu->block_rip, set wherever a block is entered) plus its offset in the block,
 * wrapped at the code size.  s->rip and cpu->insn_rip are brought up to date (iem_fast_sync)
 * before anything that relies on them runs: a generic handler (the next instruction's, or a
 * specialised handler's fallback), and the block loop when a chain ends (iem-core.c).
 */
static inline __attribute__((always_inline)) uint64_t iem_fast_rip(const struct iem_cpu *cpu,
                                                                   const struct iem_insn *in)
{
    return (cpu->block_rip + in->off) & iem_core_of((struct iem_cpu *)cpu)->rip_mask;
}

static inline __attribute__((always_inline)) void iem_fast_sync(struct iem_cpu *cpu, const struct iem_insn *in)
{
    uint64_t rip = iem_fast_rip(cpu, in);
    cpu->s->rip = rip;
    cpu->insn_rip = rip;
}

/* A specialised handler passing its instruction to the generic handler (the slow cases). */
static inline __attribute__((always_inline)) int iem_fast_generic(struct iem_cpu *cpu, const struct iem_insn *in,
                                                                  iem_fn *generic)
{
    iem_fast_sync(cpu, in);
    return generic(cpu, in);
}

/*
 * What a specialised handler's end needs, loaded at its start: the build compiles with
 * -fno-strict-aliasing, so after the handler's first store the compiler would load all of
 * it again.
 */
struct iem_fast_ctx {
    struct cpu_state *s;
    const struct iem_insn *next, *end;
};

static inline __attribute__((always_inline)) void iem_fast_begin(const struct iem_cpu *cpu, const struct iem_insn *in,
                                                                 struct iem_fast_ctx *fx)
{
    const struct iem_core *core = (const struct iem_core *)cpu;
    fx->s = cpu->s;
    fx->next = in + 1;
    fx->end = core->chain_end;
}

/*
 * The end of a specialised handler that completed its instruction: unless the block ends
 * here (chain_end), the next instruction's handler runs at once as a tail call, so a run
 * of specialised handlers goes without returning to the block loop.  cpu->insn always
 * names the instruction executing; RIP is synchronised only for a generic handler.
 * A specialised handler never writes to a page holding decoded code (those pages have no
 * direct write mapping), so the block cannot have been invalidated under it.
 */
static inline __attribute__((always_inline)) int iem_fast_chain(struct iem_cpu *cpu, const struct iem_insn *next,
                                                                const struct iem_insn *end)
{
    cpu->insn = next;
    if ((uintptr_t)next >= (uintptr_t)end)
        return IEM_NEXT; /* also outside exec_block, where chain_end is NULL */
    if (!next->fast)
        iem_fast_sync(cpu, next);
    return next->fn(cpu, next);
}

/* iem_fast_next with the context of iem_fast_begin. */
static inline __attribute__((always_inline)) int iem_fast_end(struct iem_cpu *cpu, const struct iem_fast_ctx *fx)
{
    return iem_fast_chain(cpu, fx->next, fx->end);
}

static inline __attribute__((always_inline)) int iem_fast_next(struct iem_cpu *cpu, const struct iem_insn *in)
{
    return iem_fast_chain(cpu, in + 1, iem_core_of(cpu)->chain_end);
}

/*
 * The end of a specialised near branch in 64-bit mode that set RIP (IEM_JUMPED): when the
 * run loop would have nothing to do at this block boundary (no kick, cross-thread work or
 * dead blocks, no interrupt to take) and the block has a live link to the target (or the
 * jump cache knows it), the target block starts at once, as run_loop would start it after
 * next_block.  The shadow,
 * TF and RF stay clear inside the lean loop (see exec_block), so the target block needs no
 * careful start either.  chain_left bounds the instructions of one exec_block call.
 */
static inline __attribute__((always_inline)) int iem_fast_jump(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct iem_core *core = iem_core_of(cpu);
    const struct iem_block *b = cpu->cur_block;
    const struct cpu_state *s = cpu->s;
    /*
     * chain_left is 0 outside the lean loop (cur_block may be NULL there).  Links of the
     * current generation exist only on cached blocks, and only once the dead blocks of the
     * last invalidation were freed: every death bumps chain_gen (iem_link_valid), and
     * next_block links only after the boundary work.
     */
    if (!core->chain_left || atomic_load_explicit(&core->kicked, memory_order_relaxed) ||
        atomic_load_explicit(&core->work, memory_order_relaxed))
        return IEM_JUMPED;
    uint64_t rip = s->rip;
    struct iem_block *to = NULL;
    for (int i = 0; i < IEM_BLOCK_LINKS; i++) {
        if (b->link[i].lin == rip && iem_link_valid(core, &b->link[i])) {
            to = b->link[i].to;
            break;
        }
    }
    if (!to) {
        const struct iem_link *j = iem_jcache_slot(core, rip);
        if (j->lin != rip || !iem_link_valid(core, j))
            return IEM_JUMPED;
        to = j->to;
    }
    if ((s->rflags & IEM_F_IF) && atomic_load_explicit(core->intr_line, memory_order_relaxed))
        return IEM_JUMPED;
    /* A block with forms that leave the flags alone runs whole (exec_block). */
    if (to->has_nf && to->ninsns > core->chain_left)
        return IEM_JUMPED;
    unsigned n = to->ninsns < core->chain_left ? to->ninsns : core->chain_left;
    cpu->icount += (uint64_t)(in + 1 - core->count_base);
    core->chain_left -= n;
    core->count_base = to->insns;
    core->chain_end = to->insns + n;
    cpu->cur_block = to;
    cpu->block_rip = rip;
    cpu->insn_rip = rip; /* the first instruction runs with RIP current (s->rip is the target) */
    cpu->insn = to->insns;
    return to->insns[0].fn(cpu, to->insns);
}

/* ---- iem-int-fast.c ---- */
/* The specialised handler for a decoded instruction, or NULL to keep the generic one (in->fn). */
iem_fn *iem_fast_select(const struct iem_insn *in, uint8_t zmode);
/* Once, before the first decode: sorts the table of what the specialised handlers do to the flags. */
void iem_fast_init(void);
/*
 * The liveness pass over a decoded block: instructions whose flags nothing observes before
 * later ones overwrite them (no read, fault, exit or block end in between) get the forms
 * that leave the flags alone.  True when any did; such a block must run whole, or in the
 * careful loop with iem_fast_full.
 */
bool iem_fast_dead_flags(struct iem_insn *insns, unsigned n);
/* After iem_fast_dead_flags: CMP/TEST with a register or immediate followed by a 64-bit Jcc get one handler for both. */
void iem_fast_fuse(struct iem_insn *insns, unsigned n);
/* The handler that computes the flags too, for an instruction the liveness pass changed (else in->fn). */
iem_fn *iem_fast_full(const struct iem_insn *in);

#endif
