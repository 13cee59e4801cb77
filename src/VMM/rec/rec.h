/* rec.h - the recompiler as the interpreter core sees it: per-vCPU translation state and the translated code of a decoded block. */
#ifndef VIREO_REC_H
#define VIREO_REC_H

/*
 * The recompiler translates the interpreter's decoded blocks (struct iem_block) into host
 * code; it shares the interpreter's decoder, block cache (and so its invalidation of
 * blocks on written code pages), CPU state, TLB and exception delivery.  A translated
 * block is a host function that runs the whole block, or stops early where the
 * interpreter would (a fault, a handler returning IEM_JUMPED or IEM_STOP, an
 * invalidated block).  It keeps the interpreter's contract at its exit (iem-core.c,
 * exec_block): s->rip is the next RIP, cpu->insn the last instruction that ran, and a
 * fault unwinds with cpu->insn and cpu->insn_rip naming the faulting instruction.
 *
 * Instructions without a translation run through the interpreter's handler for that
 * one instruction (a call from the translated code), so translating never loses
 * coverage.  Translations live in a per-vCPU code area; when it fills, every
 * translation is dropped at once (a generation bump) and blocks are translated again
 * as they run.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iem_core;
struct iem_block;
struct rec_core;

/* A translated block: returns the handler result of its last instruction (IEM_NEXT/JUMPED/STOP). */
typedef int rec_fn(struct iem_cpu *cpu);

/* Per-vCPU translation state: 0, VERR_NO_MEMORY or VERR_NOT_SUPPORTED (no executable memory). */
int rec_core_create(struct rec_core **out);
void rec_core_destroy(struct rec_core *rc);
/* Interpreted runs before a block is translated (REC_HOT_RUNS by default). */
void rec_core_set_hot(struct rec_core *rc, unsigned runs);
/* Tests: use only the first bytes of the code area (at least twice the room one block may take), so it fills sooner. */
void rec_core_set_code_limit(struct rec_core *rc, size_t bytes);
/* Tests: the translator assumes no more than these REC_PURE_* host flag properties (0: loads the guest's flags for every operation whose undefined flags may depend on them). */
void rec_core_limit_pure(struct rec_core *rc, unsigned mask);
/*
 * The translation of b (a cached block) for the current code generation: translated once
 * the block has run REC_HOT_RUNS times in the interpreter; NULL while it is not (yet)
 * translated, and the caller interprets it.  may_flush: the code area may be emptied to make
 * room (never while translated code runs).
 */
rec_fn *rec_block_code(struct iem_core *core, struct iem_block *b, bool may_flush);
/* Counters for the VM log and tests. */
struct rec_stats {
    uint64_t blocks, bytes, flushes, inline_insns, call_insns;
    uint64_t chain_calls;       /* block exits that went through rec_chain (not an inline link) */
};
void rec_core_stats(const struct rec_core *rc, struct rec_stats *out);

/* Most boot code runs a few times only: translating it would cost more than interpreting it. */
#define REC_HOT_RUNS 16

#endif
