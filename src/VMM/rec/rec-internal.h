/* rec-internal.h - private structures of the recompiler: the per-vCPU code area and the translator's entry points. */
#ifndef VIREO_REC_INTERNAL_H
#define VIREO_REC_INTERNAL_H

#include <Zydis/Zydis.h>

#include "rec-x86.h"
#include "rec.h"

/* Executable memory per vCPU; when it fills, every translation is dropped and blocks translate again. */
#define REC_CODE_BYTES (32u << 20)
/* Room one block's translation may take at most (64 instructions with their out-of-line tails). */
#define REC_BLOCK_MAX_BYTES (64u << 10)

/*
 * A block exit's memory of where it went last (filled by rec_chain): the translated code
 * checks it inline and jumps straight into that block while nothing has changed since
 * (the link key: no block died, no flush, same privilege).
 */
struct rec_link {
    uint64_t lin;               /* the guest RIP it was filled for (64-bit code: the linear address) */
    const void *body;           /* the target's translation past its prologue */
    struct iem_block *to;
    uint64_t key, mask;         /* valid while (core->link_key & mask) == key, as struct iem_link */
    uint16_t ways;              /* first slot of an exit: how many consecutive slots it has (RET: REC_RET_WAYS) */
    uint16_t next;              /* first slot of an exit: the slot rec_chain fills next (round robin) */
    /*
     * A direct exit to the first page of its own block (rec_gen_block decides): the target
     * is that page's code wherever the block runs, so the translated code compares no RIP,
     * and rec_chain fills the slot only for a target that stays on the page, with the mask
     * 0xffffffff, which the code checks as the zero-extended low half of the link key.
     */
    bool page_local;
};
/* The key of an empty slot: no link key matches it, masked (mask 0) or zero-extended (page-local). */
#define REC_LINK_EMPTY_KEY (1ull << 32)
/* A RET returns to wherever its caller was: its exit remembers this many targets. */
#define REC_RET_WAYS 8
#define REC_LINKS_MAX (256u << 10)
/* At most one exit per instruction and the fall-through, one of them a RET (a block's last instruction). */
#define REC_LINKS_PER_BLOCK (IEM_BLOCK_MAX + 1 + REC_RET_WAYS - 1)

struct rec_core {
    struct rec_code code;
    uint8_t *next;              /* where the next translation goes (writable view) */
    uint8_t *first;             /* first byte after the shared code (writable view) */
    uint8_t *end;               /* end of the usable code area (writable view) */
    uint32_t gen;               /* translations of other generations are stale */
    const void *epilogue;       /* shared epilogue (executable view) */
    const void *exit_dirty;     /* shared: RIP past cpu->insn (rec_exit_dirty), IEM_NEXT, epilogue */
    const void *run_leave;      /* shared: after a rec_run result other than IEM_NEXT (exit_dirty or the epilogue) */
    const void *exit_next, *exit_jumped; /* shared: a block exit's way out through rec_chain (rec_gen_exit_way) */
    unsigned prologue_bytes;    /* a chained block is entered this far into its code */
    unsigned hot_runs;          /* interpreted runs before translation */
    unsigned pure;              /* REC_PURE_*: host operations whose flags do not depend on the flags before */
    struct rec_link *links;     /* slots for block exits, handed out with the code and emptied with it */
    unsigned nlinks;
    struct rec_stats stats;
};

/*
 * Host operations whose arithmetic flags come out the same whatever the flags going in
 * (rec_probe_host, at start-up): the interpreter runs them with the guest's flags loaded
 * (iem-alu.h), so the translation must load them too unless the result cannot depend on
 * them.  The SDM leaves these flags undefined, so it is a property of the host CPU:
 * LOGIC: AF after AND/OR/XOR/TEST, register and immediate forms alike; SHIFT: OF and AF
 * after SHL/SHR/SAR by CL = 1..31 (63); IMUL: SF, ZF, AF and PF after two-operand IMUL.
 * The translation uses the interpreter's encodings where undefined flags are observed
 * (shifts by CL, two-operand IMUL): the host's immediate forms may differ (ROL by an
 * immediate keeps OF where ROL by CL does not).
 */
#define REC_PURE_LOGIC 1u
#define REC_PURE_SHIFT 2u
#define REC_PURE_IMUL  4u
/* Probes the host in the code area's free space (before any translation): the REC_PURE_* that hold. */
unsigned rec_probe_host(struct rec_core *rc);

struct rec_gen_result {
    unsigned ninline, ncall;
    bool inlined[IEM_BLOCK_MAX];    /* per instruction: translated inline (else a call to its handler) */
};

/* Translates blk into [start, end) (writable view): returns the end of the code, or NULL when it did not fit. */
uint8_t *rec_gen_block(struct rec_core *rc, const struct iem_block *blk, uint8_t *start, uint8_t *end,
                       struct rec_gen_result *res);
/* The fixed prologue every translation starts with (saves rbx, r12, r13, rbp, r14, r15; r12 = cpu, rbx = state, r13 = RFLAGS). */
void rec_gen_prologue(struct rec_buf *b);
/* ecx holds guest RFLAGS: its arithmetic flags into the host's, as iem-alu.h's IEM_ALU_FIN loads them (clobbers rax, rcx). */
void rec_gen_flags_load(struct rec_buf *b);
void rec_gen_epilogue(struct rec_buf *b);
/* The shared way out of block exits with result rc through rec_chain (rax: RIP, rsi: cpu->insn, rdx: the link slot or NULL). */
void rec_gen_exit_way(struct rec_buf *b, const struct rec_code *code, int rc, const void *epilogue);
/* Called by the shared exit for an invalidated block: RIP past the instruction that ran (cpu->insn). */
void rec_exit_dirty(struct iem_cpu *cpu);
/*
 * Called by translated code for an instruction the interpreter runs: RIP, cpu->insn_rip and
 * cpu->insn set as the handler contract wants, the handler called.  Returns its result when
 * it is not IEM_NEXT, REC_RUN_DIRTY when the block was invalidated, else IEM_NEXT, after
 * kicking the vCPU when an interrupt became deliverable (IF set, the line high).
 * rec_run_flags first puts the pending arithmetic flags (r13's image) into RFLAGS.
 */
int rec_run(struct iem_cpu *cpu, const struct iem_insn *in);
int rec_run_flags(struct iem_cpu *cpu, const struct iem_insn *in, uint64_t pending);
#define REC_RUN_DIRTY 0x100
/* Called by translated code at a block exit: the body of the next block's translation to run, or NULL. */
void *rec_chain(struct iem_cpu *cpu, int rc, struct rec_link *link);

static inline bool rec_insn_is_jcc(const struct iem_insn *in)
{
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_JO: case ZYDIS_MNEMONIC_JNO: case ZYDIS_MNEMONIC_JB: case ZYDIS_MNEMONIC_JNB:
    case ZYDIS_MNEMONIC_JZ: case ZYDIS_MNEMONIC_JNZ: case ZYDIS_MNEMONIC_JBE: case ZYDIS_MNEMONIC_JNBE:
    case ZYDIS_MNEMONIC_JS: case ZYDIS_MNEMONIC_JNS: case ZYDIS_MNEMONIC_JP: case ZYDIS_MNEMONIC_JNP:
    case ZYDIS_MNEMONIC_JL: case ZYDIS_MNEMONIC_JNL: case ZYDIS_MNEMONIC_JLE: case ZYDIS_MNEMONIC_JNLE:
        return true;
    default:
        return false;
    }
}

#endif
