/* iem-core.h - private structures of the interpreter core: per-vCPU and per-VM data, decoded blocks, code cache, TLB internals. */
#ifndef VIREO_IEM_CORE_H
#define VIREO_IEM_CORE_H

/*
 * Only the core's files (iem-core.c, iem-decode.c, iem-cache.c, iem-mem.c, iem-ops.c)
 * and tests use this header; instruction families use iem-internal.h.  The helpers at
 * the end (iem_core_should_yield, iem_core_lin_to_gpa) are safe for any family to call.
 */

#include <pthread.h>
#include <stdatomic.h>

#include "iem-internal.h"
#include "vireo/rt.h"

/* Physical address width the walker enforces (reserved bits above it); CPUID 0x80000008 must agree. */
#define IEM_MAXPHYADDR 40
#define IEM_PHYS_MASK (((uint64_t)1 << IEM_MAXPHYADDR) - 1)

/* TLB tag bits beyond IEM_TLB_VALID: the page also allows this access kind at CPL 3. */
#define IEM_TLB_USER_OK 2u
/* Flags kept in the low bits of iem_tlb_entry.gpa (the page address is 4 KiB aligned). */
#define IEM_TLBF_GLOBAL 0x1u
#define IEM_TLBF_LARGE  0x2u /* filled from a 2 MiB or 4 MiB page */
#define IEM_TLBF_LARGE4M 0x4u
#define IEM_TLBF_MASK   0xfffu

#define IEM_NOGPA UINT64_MAX

/* Successor links per block: a block runs on past conditional branches, so it has several exits. */
#define IEM_BLOCK_LINKS 4
/*
 * Instructions one exec_block call runs at most, chained blocks included (run loop).  It
 * also bounds the stack a build without tail calls (sanitizers, -O0) uses for chaining.
 */
#define IEM_CHAIN_MAX 2048
/*
 * The same bound for translated code (rec.h): it looks at kicks (which a deliverable
 * interrupt brings) and cross-thread work at every block exit itself and chains without the
 * C stack, so the bound only spaces out the returns to the run loop (each one costs a block
 * lookup and a prologue).
 */
#define IEM_REC_CHAIN_MAX 65536
/* Entries of the jump cache: blocks by linear address, for block starts the links miss (returns, indirect jumps). */
#define IEM_JCACHE_BITS 12
#define IEM_JCACHE (1u << IEM_JCACHE_BITS)

/*
 * A block link or jump-cache entry: the block that runs at linear address lin, valid while
 * (core->link_key & mask) == key (iem_link_valid).  The mask keeps user_gen out of links
 * whose target lies on global pages only: flushes that keep global pages (CR3 writes) leave
 * those links alone.
 */
struct iem_link {
    uint64_t lin;
    struct iem_block *to;
    uint64_t key;
    uint64_t mask;
};
/* Linear pages (4 KiB, 2 MiB and 4 MiB, hashed) that links and jump-cache entries depend on: INVLPG elsewhere keeps them. */
#define IEM_LINK_PAGE_BITS 4096

/* A straight run of decoded instructions at one guest-physical address. */
struct iem_block {
    struct iem_block *hnext;       /* hash chain */
    struct iem_block *pnext[2];    /* list of the block's first page [0] and second page [1] */
    uint64_t gpa;                  /* first byte */
    uint64_t gpa2;                 /* page holding the bytes past the first page, or IEM_NOGPA */
    uint8_t zmode;                 /* decode mode (ZydisMachineMode) */
    bool dead;                     /* invalidated: unlinked, freed at the next block boundary */
    bool cached;                   /* in the hash table (false for the scratch block) */
    bool has_nf;                   /* holds forms without flags (iem_fast_dead_flags): runs whole or carefully */
    uint16_t ninsns;
    uint16_t nbytes;               /* bytes covered (the second page included) */
    /* Direct links to the blocks that followed (by linear address), each valid while iem_link_valid. */
    struct iem_link link[IEM_BLOCK_LINKS];
    uint8_t link_next;             /* slot the next new link replaces once all are used */
    /* The recompiler's translation (src/VMM/rec), valid while rec_gen is its code generation. */
    uint16_t rec_runs;             /* interpreted runs so far: translated once hot */
    uint32_t rec_gen;
    void *rec_code;
    struct iem_insn insns[];
};

/* A guest-physical page holding decoded code. */
struct iem_code_page {
    struct iem_code_page *next;
    uint64_t page;                 /* gpa >> 12 */
    uint64_t chunks;               /* 64-byte chunks covered by blocks (bit i = bytes 64i..64i+63) */
    struct iem_block *blocks;
};

/*
 * Side data of a write TLB entry: the real host page (also for write-slow code pages) and
 * its bit in the RAM region's dirty bitmap.  32 bytes, as a TLB entry: translated code
 * indexes both with the same scaled slot.
 */
struct iem_tlb_wside {
    uint8_t *hva;
    _Atomic(uint64_t) *dirty_word;  /* the page's word in the region's dirty bitmap (mem_dirty_word_set) */
    uint64_t dirty_bit;
    uint64_t reserved;
};

/* A copy of the flat guest-physical map for lookups without the core's lock. */
struct iem_phys_span {
    uint64_t gpa, size;
    enum mem_kind kind;
    bool readonly;
    uint8_t *hva;
    struct mem_region *region;
    uint64_t region_offset;
};

#define IEM_BLOCK_HASH_BITS 16
#define IEM_BLOCK_HASH   (1u << IEM_BLOCK_HASH_BITS)
#define IEM_PAGE_HASH    4096
#define IEM_FILTER_BITS  65536
#define IEM_PENDING_MAX  256
#define IEM_PROTECT_MAX  64
#define IEM_TLB_LARGE_FRAME_BITS 1024
#define IEM_CACHE_MAX_BYTES (48u << 20)

/* Cross-thread work a vCPU picks up at its next block boundary. */
#define IEM_WORK_FLUSH_ALL 0x1u /* map changed: drop TLB and every decoded block */
#define IEM_WORK_INVAL     0x2u /* ranges queued in pending[] */
#define IEM_WORK_TLB       0x4u /* drop the TLB */
#define IEM_WORK_PROTECT   0x8u /* pages queued in protect[] became code on another vCPU */

struct iem_vm;

/* The interpreter's per-vCPU data; struct iem_cpu is what instruction families see. */
struct iem_core {
    struct iem_cpu cpu;
    struct iem_vm *ivm;
    unsigned index;
    const atomic_bool *intr_line;  /* vcpu_intr_line: polled where a chain crosses a block boundary */
    struct rec_core *rec;          /* the recompiler runs hot blocks (NULL: interpreter only) */

    /* Exception nesting (SDM vol. 3A 6.15): the vector being delivered, or -1. */
    int delivering;
    bool step_mode;                /* inside iem_step: nothing is delivered */
    uint64_t paging_sig;           /* CR0/CR4/EFER bits the TLB depends on */
    /* The first instruction of the block exec_block runs (NULL outside it): a fault counts the retired ones from here. */
    const struct iem_insn *count_base;
    /* Where the specialised handlers stop passing control to the next instruction (iem_fast_next). */
    const struct iem_insn *chain_end;
    /* Instructions exec_block may still run in blocks it enters through links (iem_fast_jump). */
    unsigned chain_left;
    /*
     * The same for translated code (exec_block_rec): every block exit that runs on charges the
     * instructions its block retired; a block is entered only while the budget is not negative,
     * and it started IEM_BLOCK_MAX below the limit, so the last block fits.  What was charged
     * since rec_budget_start counts as retired (exec_block_rec, count_on_fault).
     */
    int32_t rec_budget;
    int32_t rec_budget_start;
    uint64_t rip_mask;             /* RIP wraps at the code size: all ones, 0xffffffff or 0xffff */
    uint64_t tlb_tag_or;           /* IEM_TLB_USER_OK below CPL 3, else 0: ORed into a tag before the hit test */
    /* ~(tlb_tag_or | bits 3-11): a hit is ((page | 0xfff) ^ tag) & tlb_hit_mask == 0 (translated code) */
    uint64_t tlb_hit_mask;
    uint8_t zmode;                 /* decode mode of the current CS (set by iem_update_mode) */
    /* Debug registers (iem-dbg.c): DR7 enables a breakpoint, so blocks run in exec_block_careful. */
    bool dbg_exec;
    uint8_t dbg_data_mask;         /* enabled data breakpoints (bit n: DRn), whose pages the TLB maps slow */
    uint8_t dbg_hits;              /* B0-B3 of data/I-O breakpoints hit by the executing instruction */
    bool atomic_held;              /* this vCPU holds ivm->atomic_lock (iem_raise releases it) */
    /* Physical address mask of the A20 gate (bit 20 clear while the gate is off), read at full TLB flushes. */
    uint64_t a20_mask;
    /*
     * What links and jump-cache entries depend on (iem_link_valid).  chain_gen: bumped when a
     * block dies, the decode mode changes, global pages are flushed or INVLPG hits a page in
     * link_pages (iem_chain_bump).  user_gen: bumped by flushes that keep global pages.
     * link_key combines both with CPL 3 (iem_link_key_update).
     */
    uint32_t chain_gen;
    uint32_t user_gen;
    uint64_t link_key;
    uint64_t link_pages[IEM_LINK_PAGE_BITS / 64];

    struct iem_link jcache[IEM_JCACHE];
    /* The span the last physical lookup of this vCPU found, valid while span_gen == ivm->snap_gen. */
    struct iem_phys_span span_cache;
    uint64_t span_gen;

    /* TLB side data (write kind). */
    struct iem_tlb_wside wside[IEM_TLB_ENTRIES];
    unsigned tlb_global_count;     /* global entries filled since the last full flush */
    unsigned tlb_large_count;
    uint64_t tlb_large_slots[IEM_TLB_ENTRIES / 64]; /* slots that may hold a piece of a large page (any kind) */
    /* Slots that may hold a non-global entry, per kind (a superset): a flush that keeps global pages visits only these. */
    uint64_t tlb_local_slots[IEM_ACC_KINDS][IEM_TLB_ENTRIES / 64];
    /* 4 MiB-aligned linear frames that may hold such a piece (iem_tlb_large_frame_bit): INVLPG elsewhere skips the scan. */
    uint64_t tlb_large_frames[IEM_TLB_LARGE_FRAME_BITS / 64];

    /* Decoded-block cache (this vCPU only). */
    struct iem_block *bhash[IEM_BLOCK_HASH];
    struct iem_code_page *phash[IEM_PAGE_HASH];
    struct iem_block *dead;        /* invalidated blocks awaiting free (chained through hnext) */
    struct iem_block *scratch;     /* uncached decodes (code outside RAM/ROM, limit-cut blocks) */
    size_t cache_bytes;

    /*
     * Cross-thread requests: IEM_WORK_* bits, and a kick (1) from vcpu_kick or from this
     * vCPU itself when an interrupt became deliverable.  Side by side in one aligned eight
     * bytes, which translated code tests with one compare at every chained block exit.
     */
    _Alignas(8) atomic_uint work;
    atomic_uint kicked;
    struct rt_mutex qlock;
    unsigned npending;
    struct { uint64_t gpa, len; } pending[IEM_PENDING_MAX];
    unsigned nprotect;
    uint64_t protect[IEM_PROTECT_MAX]; /* guest-physical pages (gpa >> 12) */
    /*
     * Pages this vCPU decoded code from (hashed like ivm->filter, never cleared), set before
     * the bytes are read: writers queue invalidations only for vCPUs whose filter has the page.
     */
    _Atomic(uint64_t) code_filter[IEM_FILTER_BITS / 64];
};

struct iem_vm {
    struct vm *vm;
    pthread_rwlock_t snap_lock;
    struct iem_phys_span *spans;
    size_t nspans;
    _Atomic(uint64_t) snap_gen;    /* bumped with every new span copy (the vCPUs' span_cache) */
    struct rt_mutex lock;          /* cores[] */
    struct iem_core *cores[32];
    unsigned ncores;
    /* LOCKed read-modify-writes that no host atomic can do (split, MMIO, code pages) hold this (iem-int.c). */
    struct rt_mutex atomic_lock;
    _Atomic(uint64_t) atomic_slow_count; /* how often it was taken (tests) */
    /* Pages that may hold decoded code in some vCPU (hashed, never cleared): DMA writes elsewhere skip the queues. */
    _Atomic(uint64_t) filter[IEM_FILTER_BITS / 64];
};

static inline struct iem_core *iem_core_of(struct iem_cpu *cpu)
{
    return (struct iem_core *)cpu; /* struct iem_cpu is the first member */
}

/*
 * Whether TLB entry e maps the page of lin straight to RAM for an access at the current
 * privilege (iem-mem.c's rule: CPL 3 needs IEM_TLB_USER_OK; only an entry with a host
 * mapping carries IEM_TLB_DIRECT).  Translated code tests the same with tlb_hit_mask.
 */
static inline bool iem_tlb_direct(const struct iem_core *core, const struct iem_tlb_entry *e, uint64_t lin)
{
    return (e->tag | core->tlb_tag_or) == ((lin & IEM_PAGE_MASK) | IEM_TLB_HIT_BITS);
}

/*
 * What block links and jump-cache entries are valid for: the generations, and whether CPL
 * is 3.  A link skips the instruction fetch's checks, and a page may be executable at CPL 0
 * but not at CPL 3, so links made at one privilege do not serve the other; they come back
 * into use when the privilege returns (a system call's round trip).  Called whenever a
 * generation or CPL changes.
 */
static inline void iem_link_key_update(struct iem_core *core)
{
    core->link_key = ((uint64_t)core->user_gen << 32) | (uint32_t)(core->chain_gen << 1) | (core->cpu.cpl == 3);
}

static inline bool iem_link_valid(const struct iem_core *core, const struct iem_link *l)
{
    return l->to && (core->link_key & l->mask) == l->key;
}

static inline void iem_link_set(struct iem_core *core, struct iem_link *l, uint64_t lin, struct iem_block *to,
                                uint64_t mask)
{
    l->lin = lin;
    l->to = to;
    l->mask = mask;
    l->key = core->link_key & mask;
}

static inline struct iem_link *iem_jcache_slot(struct iem_core *core, uint64_t lin)
{
    return &core->jcache[(lin * 0x9e3779b97f4a7c15ull) >> (64 - IEM_JCACHE_BITS)];
}

/* ---- iem-core.c ---- */
/* True when a long-running instruction (REP string, ...) should stop at an iteration boundary
 * and let the run loop look at requests and interrupts (RIP stays at the instruction). */
bool iem_core_should_yield(struct iem_cpu *cpu);
/* Runs fn(cpu, arg) with the fault trap set (tests, tools): returns -1, or the vector it raised
 * (cpu->fault_error, cpu->fault_cr2 tell the rest).  Nothing is delivered. */
int iem_core_try(struct iem_cpu *cpu, void (*fn)(struct iem_cpu *cpu, void *arg), void *arg);

/* ---- iem-mem.c ---- */
/* Guest-physical lookup in the VM's span copy; false when gpa is unassigned. */
bool iem_phys_lookup(struct iem_vm *ivm, uint64_t gpa, struct iem_phys_span *out);
/* Physical reads/writes of up to 8 bytes (RAM, ROM, MMIO, unassigned); writes honour code pages. */
uint64_t iem_phys_read(struct iem_core *core, uint64_t gpa, unsigned size);
void iem_phys_write(struct iem_core *core, uint64_t gpa, unsigned size, uint64_t value);
/* Translates a linear address for an access kind (IEM_ACC_*, flags IEM_ACC_SYS) through the TLB and
 * the page walker; raises #PF.  Returns the guest-physical address. */
uint64_t iem_core_lin_to_gpa(struct iem_cpu *cpu, uint64_t linear, int kind, unsigned flags);
/* The exec TLB entry for a linear address (filled on a miss; raises #PF). */
struct iem_tlb_entry *iem_tlb_exec(struct iem_core *core, uint64_t linear);
/* Every link and jump-cache entry goes stale (a block died, the decode mode changed, ...). */
void iem_chain_bump(struct iem_core *core);
/*
 * The mask (struct iem_link) of a link to block b, which the lookup just found at linear
 * address lin: notes the linear pages it depends on for INVLPG (the TLB holds them now).
 */
uint64_t iem_link_mask(struct iem_core *core, uint64_t lin, const struct iem_block *b);
/* Drops write entries that map guest page gpa_page (it now holds code). */
void iem_tlb_protect_page(struct iem_core *core, uint64_t gpa_page);
/* Rebuilds the span copy (mem_changed). */
int iem_phys_snapshot(struct iem_vm *ivm);
/* Whether the current access at CPL 3 must be treated as user (CPL 3 and not IEM_ACC_SYS). */
static inline bool iem_is_user(const struct iem_cpu *cpu, unsigned flags)
{
    return cpu->cpl == 3 && !(flags & IEM_ACC_SYS);
}

/* ---- iem-cache.c ---- */
void iem_cache_init(struct iem_core *core);
void iem_cache_fini(struct iem_core *core);
struct iem_block *iem_cache_find(struct iem_core *core, uint64_t gpa, uint8_t zmode);
/* Allocates a block with room for ninsns instructions (NULL when out of memory). */
struct iem_block *iem_block_alloc(unsigned ninsns);
/* Inserts a decoded block and records its pages as code pages. */
void iem_cache_insert(struct iem_core *core, struct iem_block *b);
/* Whether gpa's page holds decoded code of this vCPU. */
bool iem_cache_is_code_page(struct iem_core *core, uint64_t gpa);
/* Drops the blocks overlapping [gpa, gpa+len); returns true when some were dropped. */
bool iem_cache_invalidate(struct iem_core *core, uint64_t gpa, uint64_t len);
void iem_cache_flush_all(struct iem_core *core);
void iem_cache_free_dead(struct iem_core *core);
/* Takes the cross-thread work queued for this vCPU. */
void iem_cache_do_work(struct iem_core *core);
/* Queues an invalidation of [gpa, gpa+len) for every vCPU except skip (NULL: all). */
void iem_cache_post(struct iem_vm *ivm, uint64_t gpa, uint64_t len, struct iem_core *skip);
/* The DMA write watcher (mem_write_watch_add). */
void iem_cache_write_watch(void *opaque, uint64_t gpa, uint64_t len);
bool iem_filter_test(struct iem_vm *ivm, uint64_t page);
/* Marks page in the filter; true when the bit was clear. */
bool iem_filter_set(struct iem_vm *ivm, uint64_t page);
/* This vCPU is about to decode code from page (gpa >> 12): writes by others to it must reach its queue from now on. */
void iem_cache_note_code(struct iem_core *core, uint64_t page);
/* Whether guest writes to gpa's page must take the slow path (decoded code here, or maybe on another vCPU). */
bool iem_cache_write_is_slow(struct iem_core *core, uint64_t gpa);

/* ---- iem-decode.c ---- */
/* Finds or decodes the block at CS:RIP (raises #GP/#PF as instruction fetch does). */
struct iem_block *iem_block_lookup(struct iem_core *core);
/* Decodes one instruction in Zydis machine mode zmode (tests, tracing): 0, or VERR_NOT_FOUND when the bytes do
 * not decode (*in then raises #UD or #GP); *ends_block (may be NULL) says whether it ends a block. */
int iem_decode_one(unsigned zmode, const uint8_t *bytes, size_t len, struct iem_insn *in, bool *ends_block);
/* Whether a decoded instruction is a placeholder that raises #UD or #GP(0). */
bool iem_decode_is_fault(const struct iem_insn *in);
/* Builds the handler index (once); the run loop calls it before decoding. */
void iem_decode_global_init(void);
/* The decode mode key of the current CS. */
uint8_t iem_decode_mode_key(const struct iem_cpu *cpu);

#endif
