/* iem-core.c - the software CPU backend: vCPU setup, the run loop, fault unwinding and exception nesting, iem_step for tests. */

/*
 * Design.  The interpreter runs on the vCPU thread that calls vcpu_run.  Its loop, at
 * every block boundary: takes cross-thread work (map changes, DMA into code pages),
 * frees invalidated blocks, returns when the core has a request, sleeps while halted,
 * delivers an external interrupt when RFLAGS.IF is set and no STI/MOV SS shadow is
 * active, then finds or decodes the block at CS:RIP and runs it.  A block holds at
 * most IEM_BLOCK_MAX instructions and ends after unconditional control transfers, port
 * I/O and mode changes; a block entered with an interrupt shadow or EFLAGS.TF runs one
 * instruction.
 *
 * Speed (the interpreter runs every guest instruction, so the per-instruction path is
 * kept short): the decoder gives the commonest instruction forms specialised handlers
 * (iem-int-fast.c) that run on into the next instruction of the block themselves (a
 * tail call, iem_fast_next) and, after a taken near branch, into the next block when the
 * run loop would have nothing to do at that boundary (iem_fast_jump: no kick, no
 * cross-thread work, no interrupt to take, a live link or jump-cache entry).  So
 * requests and interrupts are still looked at between blocks, at most IEM_CHAIN_MAX
 * instructions apart.  Blocks find their successors through per-block links and a
 * direct-mapped jump cache by linear address, both valid while iem_link_valid
 * (generations and privilege), before the hash of decoded blocks.
 *
 * Faults: iem_raise records the exception and longjmps to the setjmp in vcpu_run (or
 * iem_step).  RIP goes back to cpu->insn_rip and the exception is delivered with
 * iem_deliver.  A fault while delivering is combined with the first by the rules of
 * SDM vol. 3A 6.15 (Tables 6-4 and 6-5): contributory + contributory, or #PF +
 * contributory/#PF, become #DF; a contributory fault or #PF while delivering #DF is a
 * triple fault and vcpu_run returns CPU_EXIT_SHUTDOWN.
 *
 * Port I/O returns to the loop promptly because the decoder ends a block after every
 * IN, OUT, INS and OUTS; REP INS/OUTS (and other long REP instructions) may poll
 * iem_core_should_yield between iterations and stop with RIP at the instruction.
 */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "iem-core.h"
#include "iem-dbg.h"
#include "iem-fast.h"
#include "iem-sys.h"
#include "../rec/rec.h"

#define LOG_COMPONENT "iem"

/* What is being delivered when a nested fault happens (SDM vol. 3A Table 6-4). */
enum { DLV_NONE = -1, DLV_BENIGN = 0, DLV_CONTRIBUTORY, DLV_PAGE_FAULT, DLV_DOUBLE_FAULT };

#define DR6_BS (1u << 14)

static int exception_class(int vector)
{
    switch (vector) {
    case IEM_X_DE:
    case IEM_X_TS:
    case IEM_X_NP:
    case IEM_X_SS:
    case IEM_X_GP:
        return DLV_CONTRIBUTORY;
    case IEM_X_PF:
        return DLV_PAGE_FAULT;
    case IEM_X_DF:
        return DLV_DOUBLE_FAULT;
    default:
        return DLV_BENIGN;
    }
}

struct iem_cpu *iem_cpu_of(struct vcpu *vcpu)
{
    struct iem_core *core = vcpu_get_backend_data(vcpu);
    return core ? &core->cpu : NULL;
}

bool iem_core_should_yield(struct iem_cpu *cpu)
{
    struct iem_core *core = iem_core_of(cpu);
    if (core->step_mode)
        return false;
    if (atomic_load_explicit(&core->kicked, memory_order_relaxed) || atomic_load_explicit(&core->work, memory_order_relaxed))
        return true;
    if (vcpu_has_request(cpu->vcpu))
        return true;
    return (cpu->s->rflags & IEM_F_IF) && vcpu_intr_pending(cpu->vcpu);
}

static bool is_soft_int(uint16_t mnemonic)
{
    return mnemonic == ZYDIS_MNEMONIC_INT || mnemonic == ZYDIS_MNEMONIC_INT3 || mnemonic == ZYDIS_MNEMONIC_INTO ||
           mnemonic == ZYDIS_MNEMONIC_INT1;
}

/*
 * The careful loop: the block was entered with an interrupt shadow, EFLAGS.TF or
 * EFLAGS.RF, or with breakpoints enabled in DR7 (core->dbg_exec), so it runs one
 * instruction at a time (at most one with a shadow or TF).  Single-step (EFLAGS.TF at
 * the start of an instruction, SDM vol. 3A 17.3.1.4) raises the #DB trap after the
 * instruction; so do data and I/O breakpoints it hit (17.3.1.2), in the same #DB.
 * Instruction breakpoints raise their #DB fault before it (iem-dbg.c).
 */
static __attribute__((noinline)) void exec_block_careful(struct iem_core *core, struct iem_block *b, unsigned n)
{
    struct iem_cpu *cpu = &core->cpu;
    struct cpu_state *s = cpu->s;
    if (s->int_shadow || (s->rflags & IEM_F_TF))
        n = 1;
    uint64_t rip_mask = core->rip_mask;
    cpu->cur_block = b;
    cpu->block_dirty = false;
    const struct iem_insn *in = b->insns;
    for (unsigned i = 0; i < n; i++, in++) {
        uint64_t flags_before = s->rflags;
        bool dbg = core->dbg_exec;
        uint64_t rcx_before = s->gpr[CPU_RCX];
        uint64_t rip = s->rip;
        cpu->insn_rip = rip;
        /* Specialised handlers find RIP as the block's first RIP plus their offset (iem-fast.h). */
        cpu->block_rip = (rip - in->off) & rip_mask;
        cpu->insn = in;
        if (dbg) {
            core->dbg_hits = 0;
            if (!(flags_before & IEM_F_RF))
                iem_dbg_insn_check(core);
        }
        core->chain_end = in + 1; /* one instruction: no running on, no chaining (chain_left is 0) */
        /* Each instruction may be the last before the loop stops: every one computes its flags. */
        int rc = b->has_nf ? iem_fast_full(in)(cpu, in) : in->fn(cpu, in);
        core->chain_end = NULL;
        cpu->icount++;
        if (cpu->inhibit_irq_next || s->int_shadow) {
            s->int_shadow = cpu->inhibit_irq_next;
            cpu->inhibit_irq_next = false;
        }
        /* Falling through: generic handlers leave RIP alone, specialised ones need not store it. */
        if (rc == IEM_NEXT)
            s->rip = (rip + in->len) & rip_mask;
        cpu->insn = in;
        uint32_t db = dbg ? iem_dbg_insn_done(core, in, rcx_before) : 0;
        if ((flags_before & (IEM_F_TF | IEM_F_RF)) || db) {
            /* RF is cleared once an instruction completes, except by IRET which loads it (SDM vol. 3A 17.3.1.1). */
            if ((flags_before & IEM_F_RF) && in->mnemonic != ZYDIS_MNEMONIC_IRET &&
                in->mnemonic != ZYDIS_MNEMONIC_IRETD && in->mnemonic != ZYDIS_MNEMONIC_IRETQ)
                s->rflags &= ~(uint64_t)IEM_F_RF;
            if ((flags_before & IEM_F_TF) && !s->int_shadow && !is_soft_int(in->mnemonic))
                db |= DR6_BS;
            if (db) {
                cpu->cur_block = NULL;
                s->dr[6] |= db;
                cpu->insn_rip = s->rip; /* a trap: delivered with RIP after the instruction */
                iem_raise(cpu, IEM_X_DB);
            }
        }
        if (rc != IEM_NEXT || cpu->block_dirty)
            break;
    }
    cpu->cur_block = NULL;
}

/*
 * The end of a run of blocks (exec_block, exec_block_rec): retired instructions of the
 * last block counted, the chain state cleared, a shadow opened by the last instruction
 * applied.  Returns the block that ran last.
 */
static struct iem_block *block_done(struct iem_core *core, uint64_t retired)
{
    struct iem_cpu *cpu = &core->cpu;
    struct iem_block *b = cpu->cur_block;
    cpu->icount += retired;
    core->count_base = NULL;
    core->chain_end = NULL;
    core->chain_left = 0;
    if (cpu->inhibit_irq_next) {
        cpu->s->int_shadow = true;
        cpu->inhibit_irq_next = false;
    }
    cpu->cur_block = NULL;
    return b;
}

/*
 * Runs block b, and the blocks the specialised branch handlers chain into after it
 * (iem_fast_jump), up to max instructions in all; returns the block that ran last.
 * Entered without an interrupt shadow and with TF and RF clear, blocks run in the lean
 * loop below: only the instructions that end a block (the decoder's rule: POPF, IRET,
 * STI, MOV/POP SS, far transfers, ...) can set TF or RF or open a shadow, so nothing
 * needs looking at between instructions but the handler's result and an invalidated
 * block; a shadow opened by the last instruction is applied after the loop.  Retired
 * instructions are counted once per block; a fault adds the ones before the faulting
 * instruction (count_base).
 */
static struct iem_block *exec_block(struct iem_core *core, struct iem_block *b, unsigned max)
{
    struct iem_cpu *cpu = &core->cpu;
    struct cpu_state *s = cpu->s;
    unsigned n = b->ninsns;
    /* A block with forms that leave the flags alone never stops in the middle of the lean loop. */
    if (n > max) {
        n = max;
        if (b->has_nf) {
            exec_block_careful(core, b, n);
            return b;
        }
    }
    if (__builtin_expect(s->int_shadow || (s->rflags & (IEM_F_TF | IEM_F_RF)) || core->dbg_exec, 0)) {
        exec_block_careful(core, b, n);
        return b;
    }
    uint64_t rip_mask = core->rip_mask;
    cpu->cur_block = b;
    cpu->block_dirty = false;
    const struct iem_insn *in = b->insns;
    uint64_t rip = s->rip;
    core->count_base = in;
    core->chain_end = in + n;
    core->chain_left = max - n;
    cpu->insn_rip = rip;
    cpu->block_rip = rip;
    cpu->insn = in;
    for (;;) {
        int rc = in->fn(cpu, in);
        /* Specialised handlers run on into the next instructions and blocks (iem-fast.h):
         * cpu->insn is the instruction that returned, in the block chain_end belongs to. */
        in = cpu->insn;
        if (__builtin_expect(rc != IEM_NEXT, 0)) {
            in++;
            break;
        }
        if (in == core->chain_end) {
            /* A specialised handler ended the block: RIP follows the last instruction. */
            s->rip = (cpu->block_rip + in[-1].off + in[-1].len) & rip_mask;
            break;
        }
        /* IEM_NEXT from a generic handler: it left RIP alone (iem-internal.h). */
        rip = (cpu->insn_rip + in->len) & rip_mask;
        s->rip = rip;
        in++;
        if (in == core->chain_end || cpu->block_dirty)
            break;
        cpu->insn_rip = rip;
        cpu->insn = in;
    }
    return block_done(core, (uint64_t)(in - core->count_base));
}

/* What translated code charged the chain budget since the last look counts as retired (struct iem_core). */
static inline void count_rec_charges(struct iem_core *core)
{
    core->cpu.icount += (uint64_t)(int64_t)(core->rec_budget_start - core->rec_budget);
    core->rec_budget_start = core->rec_budget;
}

/*
 * Runs block b through its translation when it has one (rec.h): the entry conditions of
 * exec_block's lean loop, and the whole block (max covers it); the translation chains
 * into further translated blocks itself (rec_chain).  Otherwise the interpreter runs it.
 */
static struct iem_block *exec_block_rec(struct iem_core *core, struct iem_block *b, unsigned max)
{
    struct iem_cpu *cpu = &core->cpu;
    struct cpu_state *s = cpu->s;
    rec_fn *fn;
    if (s->int_shadow || (s->rflags & (IEM_F_TF | IEM_F_RF)) || core->dbg_exec || !b->cached || b->ninsns > max ||
        !(fn = rec_block_code(core, b, true)))
        return exec_block(core, b, max > IEM_CHAIN_MAX ? IEM_CHAIN_MAX : max); /* its chaining uses the C stack */
    cpu->cur_block = b;
    cpu->block_dirty = false;
    core->count_base = b->insns;
    /* Specialised handlers the translation calls run their one instruction: no running on, no chaining. */
    core->chain_end = NULL;
    core->chain_left = 0;
    core->rec_budget = core->rec_budget_start = (int32_t)max - IEM_BLOCK_MAX;
    cpu->block_rip = s->rip;
    cpu->insn_rip = s->rip;
    cpu->insn = b->insns;
    fn(cpu);
    /* The blocks it ran on from charged the budget; it leaves cpu->insn at the last instruction it ran. */
    count_rec_charges(core);
    return block_done(core, (uint64_t)(cpu->insn - core->count_base) + 1);
}

int iem_rec_enable(struct iem_cpu *cpu, bool enable, unsigned hot_runs)
{
    struct iem_core *core = iem_core_of(cpu);
    if (!enable) {
        rec_core_destroy(core->rec);
        core->rec = NULL;
        return 0;
    }
    int rc = core->rec ? 0 : rec_core_create(&core->rec);
    if (!rc)
        rec_core_set_hot(core->rec, hot_runs);
    return rc;
}

/* A fault unwound out of exec_block: count the instructions of the block that retired before it. */
static inline void count_on_fault(struct iem_core *core)
{
    /* Blocks translated code ran on from (nothing outside exec_block_rec), then the faulting block's part. */
    count_rec_charges(core);
    if (core->count_base && core->cpu.insn)
        core->cpu.icount += (uint64_t)(core->cpu.insn - core->count_base);
    core->count_base = NULL;
    core->chain_end = NULL;
    core->chain_left = 0;
}

/*
 * The block at CS:RIP: first through the links of the block that ran before (valid
 * while nothing was invalidated, flushed or switched since, at the same privilege:
 * iem_link_valid), then the jump cache (the same validity), else the cache.
 * prev is NULL or a cached block that is still alive (its generation was checked).
 */
static inline __attribute__((always_inline)) struct iem_block *next_block(struct iem_core *core,
                                                                          struct iem_block *prev)
{
    struct iem_cpu *cpu = &core->cpu;
    const struct cpu_state *s = cpu->s;
    /* The linear address as iem_block_lookup computes it (64-bit mode ignores the CS base). */
    uint64_t lin = cpu->mode == IEM_MODE_LONG64 ? s->rip : (uint32_t)(s->seg[CPU_CS].base + s->rip);
    if (prev) {
        for (int i = 0; i < IEM_BLOCK_LINKS; i++) {
            const struct iem_link *l = &prev->link[i];
            if (l->lin == lin && iem_link_valid(core, l) &&
                (cpu->mode == IEM_MODE_LONG64 || s->rip + l->to->nbytes - 1 <= s->seg[CPU_CS].limit))
                return l->to;
        }
    }
    /* The jump cache holds what the lookup found at this address in this generation. */
    struct iem_link *j = iem_jcache_slot(core, lin);
    struct iem_block *b = j->to;
    uint64_t mask = j->mask;
    if (!iem_link_valid(core, j) || j->lin != lin ||
        (cpu->mode != IEM_MODE_LONG64 && s->rip + b->nbytes - 1 > s->seg[CPU_CS].limit)) {
        b = iem_block_lookup(core);
        if (!b->cached)
            return b;
        /* After the lookup: a full cache may have been flushed, and the TLB holds b's pages. */
        mask = iem_link_mask(core, lin, b);
        iem_link_set(core, j, lin, b, mask);
    }
    if (prev && b->cached)
        iem_link_set(core, &prev->link[prev->link_next++ % IEM_BLOCK_LINKS], lin, b, mask);
    return b;
}

static inline void boundary_work(struct iem_core *core)
{
    if (atomic_load_explicit(&core->work, memory_order_relaxed))
        iem_cache_do_work(core);
    if (core->dead)
        iem_cache_free_dead(core);
}

/* The fault path of vcpu_run: delivers the recorded exception.  False on a triple fault. */
static bool fault_deliver(struct iem_core *core)
{
    struct iem_cpu *cpu = &core->cpu;
    struct cpu_state *s = cpu->s;
    int vector = cpu->fault_vector;
    bool has_error = cpu->fault_has_error;
    uint32_t error = cpu->fault_error;
    s->rip = cpu->insn_rip;
    cpu->cur_block = NULL;
    cpu->inhibit_irq_next = false;
    int prev = core->delivering;
    count_on_fault(core);
    core->delivering = DLV_NONE;
    int cls = exception_class(vector);
    if (prev == DLV_DOUBLE_FAULT && (cls == DLV_CONTRIBUTORY || cls == DLV_PAGE_FAULT)) {
        LOG_INFO("vCPU %u: triple fault (vector %d while delivering #DF) at %04x:%llx", core->index, vector,
                 s->seg[CPU_CS].sel, (unsigned long long)s->rip);
        return false;
    }
    if ((prev == DLV_CONTRIBUTORY && cls == DLV_CONTRIBUTORY) ||
        (prev == DLV_PAGE_FAULT && (cls == DLV_CONTRIBUTORY || cls == DLV_PAGE_FAULT))) {
        vector = IEM_X_DF;
        has_error = true;
        error = 0;
        cls = DLV_DOUBLE_FAULT;
    }
    if (vector == IEM_X_PF)
        s->cr2 = cpu->fault_cr2;
    s->int_shadow = false;
    core->delivering = cls;
    iem_deliver(cpu, vector, IEM_INT_EXCEPTION, has_error, error, s->rip);
    core->delivering = DLV_NONE;
    return true;
}

/* Runs until the core wants the vCPU back (returns) or a fault unwinds to vcpu_run. */
static void run_loop(struct iem_core *core)
{
    struct iem_cpu *cpu = &core->cpu;
    struct cpu_state *s = cpu->s;
    struct vcpu *vcpu = cpu->vcpu;
    struct iem_block *prev = NULL;
    uint32_t prev_gen = 0;
    /*
     * Requests are looked at on entry and after a kick: every request kicks every vCPU,
     * this one included (cpu.h, vcpu_kick), and the kick is cleared before the look.
     * Interrupts raised by this vCPU's own device accesses come without a kick, so the
     * interrupt line is polled at every block boundary while IF is set.
     */
    bool look = true;
    for (;;) {
        boundary_work(core);
        if (look || atomic_load_explicit(&core->kicked, memory_order_relaxed)) {
            atomic_store_explicit(&core->kicked, 0, memory_order_relaxed);
            if (vcpu_has_request(vcpu))
                return;
            look = false;
        }
        /*
         * The local APIC raises INTR for NMI, INIT and start-up IPIs too, whatever IF says:
         * take those first (SDM vol. 3A, 10.5.1).  An NMI waits while NMIs are blocked.
         */
        if (vcpu_intr_pending(vcpu) && iem_intc_events(cpu))
            prev = NULL;
        if (s->wait_for_sipi) {
            /*
             * An application processor waiting for a start-up IPI runs nothing and takes no
             * interrupt (SDM vol. 3A, 9.4.2); INIT and SIPI raise the attention line, which
             * ends the wait.  An ExtINT message (which only a running CPU acknowledges) holds
             * the line high, so then the wait polls.
             */
            look = true;
            if (!vcpu_intr_pending(vcpu))
                vcpu_halt_wait(vcpu);
            else
                rt_sleep_ns(RT_NS_PER_MS);
            continue;
        }
        if (cpu->nmi_pending && !s->nmi_masked) {
            cpu->nmi_pending = false;
            s->halted = false;
            cpu->insn_rip = s->rip;
            core->delivering = DLV_BENIGN;
            iem_deliver(cpu, IEM_X_NMI, IEM_INT_EXTERNAL, false, 0, s->rip);
            core->delivering = DLV_NONE;
            prev = NULL;
            continue;
        }
        if (s->halted) {
            look = true;
            if (!vcpu_intr_pending(vcpu)) {
                vcpu_halt_wait(vcpu);
                continue;
            }
            if (!(s->rflags & IEM_F_IF)) {
                /*
                 * HLT with IF clear stays halted until NMI, SMI, INIT or reset (SDM vol. 2A HLT);
                 * a masked pending interrupt must not wake it and vcpu_halt_wait would return at
                 * once, so poll for the core's requests.
                 */
                rt_sleep_ns(RT_NS_PER_MS);
                continue;
            }
        }
        if ((s->rflags & IEM_F_IF) && !s->int_shadow && vcpu_intr_pending(vcpu)) {
            int vector = vcpu_intr_ack(vcpu);
            if (vector >= 0) {
                s->halted = false;
                cpu->insn_rip = s->rip;
                core->delivering = DLV_BENIGN;
                iem_deliver(cpu, vector & 0xff, IEM_INT_EXTERNAL, false, 0, s->rip);
                core->delivering = DLV_NONE;
                prev = NULL;
                continue;
            }
        }
        if (s->halted) {
            /* The request went away before the acknowledge: stay halted. */
            rt_sleep_ns(RT_NS_PER_MS);
            continue;
        }
        /* prev may have been freed once anything died: every death bumps chain_gen. */
        if (prev && prev_gen != core->chain_gen)
            prev = NULL;
        struct iem_block *b = next_block(core, prev);
        prev_gen = core->chain_gen; /* before running: a block that dies while it runs is never a link source */
        b = core->rec ? exec_block_rec(core, b, IEM_REC_CHAIN_MAX) : exec_block(core, b, IEM_CHAIN_MAX);
        prev = b->cached ? b : NULL;
    }
}

static enum cpu_exit iem_vcpu_run(struct vcpu *vcpu)
{
    struct iem_core *core = vcpu_get_backend_data(vcpu);
    if (!core)
        return CPU_EXIT_FATAL;
    struct iem_cpu *cpu = &core->cpu;
    core->step_mode = false;
    core->delivering = DLV_NONE;
    iem_decode_global_init();
    if (setjmp(cpu->fault_jmp) != 0) {
        if (!fault_deliver(core)) {
            core->delivering = DLV_NONE;
            return CPU_EXIT_SHUTDOWN;
        }
    }
    run_loop(core);
    return CPU_EXIT_REQUEST;
}

void iem_step(struct iem_cpu *cpu, uint64_t max_insns, struct iem_step_result *result)
{
    struct iem_core *core = iem_core_of(cpu);
    struct cpu_state *s = cpu->s;
    memset(result, 0, sizeof(*result));
    result->status = IEM_STEP_LIMIT;
    iem_decode_global_init();
    uint64_t start = cpu->icount;
    core->step_mode = true;
    if (setjmp(cpu->fault_jmp) != 0) {
        count_on_fault(core);
        s->rip = cpu->insn_rip;
        cpu->cur_block = NULL;
        cpu->inhibit_irq_next = false;
        result->status = IEM_STEP_EXCEPTION;
        result->vector = cpu->fault_vector;
        result->has_error = cpu->fault_has_error;
        result->error = cpu->fault_error;
        result->cr2 = cpu->fault_vector == IEM_X_PF ? cpu->fault_cr2 : 0;
        result->executed = cpu->icount - start;
        core->step_mode = false;
        return;
    }
    struct iem_block *prev = NULL;
    uint32_t prev_gen = 0;
    while (!s->halted && cpu->icount - start < max_insns) {
        boundary_work(core);
        if (prev && prev_gen != core->chain_gen)
            prev = NULL;
        uint64_t left = max_insns - (cpu->icount - start);
        struct iem_block *b = next_block(core, prev);
        prev_gen = core->chain_gen;
        unsigned cap = core->rec ? IEM_REC_CHAIN_MAX : IEM_CHAIN_MAX;
        unsigned max = left > cap ? cap : (unsigned)left;
        b = core->rec ? exec_block_rec(core, b, max) : exec_block(core, b, max);
        prev = b->cached ? b : NULL;
    }
    boundary_work(core);
    if (s->halted)
        result->status = IEM_STEP_HLT;
    result->executed = cpu->icount - start;
    core->step_mode = false;
}

int iem_core_try(struct iem_cpu *cpu, void (*fn)(struct iem_cpu *cpu, void *arg), void *arg)
{
    struct iem_core *core = iem_core_of(cpu);
    bool saved = core->step_mode;
    core->step_mode = true;
    if (setjmp(cpu->fault_jmp) != 0) {
        core->step_mode = saved;
        return cpu->fault_vector;
    }
    fn(cpu, arg);
    core->step_mode = saved;
    return -1;
}

/* ---- the backend ---------------------------------------------------------------- */

static void iem_write_watch(void *opaque, uint64_t gpa, uint64_t len)
{
    struct iem_vm *ivm = vm_get_backend_data(opaque);
    if (ivm)
        iem_cache_write_watch(ivm, gpa, len);
}

static int iem_vm_init(struct vm *vm)
{
    struct iem_vm *ivm = calloc(1, sizeof(*ivm));
    if (!ivm)
        return VERR_NO_MEMORY;
    ivm->vm = vm;
    if (pthread_rwlock_init(&ivm->snap_lock, NULL) != 0) {
        free(ivm);
        return VERR_THREAD;
    }
    int rc = rt_mutex_init(&ivm->lock);
    if (!rc) {
        rc = rt_mutex_init(&ivm->atomic_lock);
        if (rc)
            rt_mutex_destroy(&ivm->lock);
    }
    if (rc) {
        pthread_rwlock_destroy(&ivm->snap_lock);
        free(ivm);
        return rc;
    }
    rc = iem_phys_snapshot(ivm);
    if (!rc)
        rc = mem_write_watch_add(vm, iem_write_watch, vm);
    if (rc) {
        free(ivm->spans);
        rt_mutex_destroy(&ivm->atomic_lock);
        rt_mutex_destroy(&ivm->lock);
        pthread_rwlock_destroy(&ivm->snap_lock);
        free(ivm);
        return rc;
    }
    iem_decode_global_init();
    vm_set_backend_data(vm, ivm);
    return 0;
}

static void iem_vm_fini(struct vm *vm)
{
    struct iem_vm *ivm = vm_get_backend_data(vm);
    if (!ivm)
        return;
    vm_set_backend_data(vm, NULL);
    free(ivm->spans);
    rt_mutex_destroy(&ivm->atomic_lock);
    rt_mutex_destroy(&ivm->lock);
    pthread_rwlock_destroy(&ivm->snap_lock);
    free(ivm);
}

static int iem_vcpu_init(struct vcpu *vcpu)
{
    struct vm *vm = vcpu_get_vm(vcpu);
    struct iem_vm *ivm = vm_get_backend_data(vm);
    if (!ivm)
        return VERR_INVALID_STATE;
    struct iem_core *core = calloc(1, sizeof(*core));
    if (!core)
        return VERR_NO_MEMORY;
    core->scratch = iem_block_alloc(IEM_BLOCK_MAX);
    int rc = core->scratch ? rt_mutex_init(&core->qlock) : VERR_NO_MEMORY;
    if (rc) {
        free(core->scratch);
        free(core);
        return rc;
    }
    core->ivm = ivm;
    core->index = vcpu_get_index(vcpu);
    core->intr_line = vcpu_intr_line(vcpu);
    core->delivering = DLV_NONE;
    core->paging_sig = UINT64_MAX;
    struct iem_cpu *cpu = &core->cpu;
    cpu->vcpu = vcpu;
    cpu->vm = vm;
    cpu->s = vcpu_state(vcpu);
    iem_cache_init(core);
    if (vm_get_exec(vm) == VM_EXEC_SOFT) {
        rc = rec_core_create(&core->rec);
        if (rc) {
            LOG_WARN("vCPU %u: no recompiler (%s): the interpreter runs everything", core->index, rt_err_str(rc));
            rc = 0;
        }
    }
    iem_sys_reset(cpu); /* MTRRs, and the TSC (2 GHz of virtual time) counting from 0 */
    iem_update_mode(cpu);
    rt_mutex_lock(&ivm->lock);
    if (ivm->ncores >= RT_ARRAY_SIZE(ivm->cores)) {
        rt_mutex_unlock(&ivm->lock);
        rt_mutex_destroy(&core->qlock);
        rec_core_destroy(core->rec);
        free(core->scratch);
        free(core);
        return VERR_TOO_LARGE;
    }
    ivm->cores[ivm->ncores++] = core;
    rt_mutex_unlock(&ivm->lock);
    vcpu_set_backend_data(vcpu, core);
    return 0;
}

static void iem_vcpu_fini(struct vcpu *vcpu)
{
    struct iem_core *core = vcpu_get_backend_data(vcpu);
    if (!core)
        return;
    struct iem_vm *ivm = core->ivm;
    rt_mutex_lock(&ivm->lock);
    for (unsigned i = 0; i < ivm->ncores; i++) {
        if (ivm->cores[i] == core) {
            ivm->cores[i] = ivm->cores[--ivm->ncores];
            break;
        }
    }
    rt_mutex_unlock(&ivm->lock);
    vcpu_set_backend_data(vcpu, NULL);
    iem_cache_fini(core);
    free(core->scratch);
    if (core->rec) {
        struct rec_stats st;
        rec_core_stats(core->rec, &st);
        LOG_INFO("vCPU %u: recompiler translated %llu blocks (%llu KiB of code, %llu instructions inline, "
                 "%llu through the interpreter), code area emptied %llu times, %llu exits through rec_chain",
                 core->index, (unsigned long long)st.blocks, (unsigned long long)(st.bytes >> 10),
                 (unsigned long long)st.inline_insns, (unsigned long long)st.call_insns,
                 (unsigned long long)st.flushes, (unsigned long long)st.chain_calls);
    }
    rec_core_destroy(core->rec);
    rt_mutex_destroy(&core->qlock);
    free(core);
}

static void iem_vcpu_kick(struct vcpu *vcpu)
{
    struct iem_core *core = vcpu_get_backend_data(vcpu);
    if (core)
        atomic_store(&core->kicked, 1);
}

static int iem_mem_changed(struct vm *vm)
{
    struct iem_vm *ivm = vm_get_backend_data(vm);
    if (!ivm)
        return 0;
    int rc = iem_phys_snapshot(ivm);
    rt_mutex_lock(&ivm->lock);
    for (unsigned i = 0; i < ivm->ncores; i++)
        atomic_fetch_or(&ivm->cores[i]->work, IEM_WORK_FLUSH_ALL);
    rt_mutex_unlock(&ivm->lock);
    /*
     * A guest access that changed the map (a flash command switching its ROM device out of
     * ROM mode) may be followed by a read of the same page within this block: this vCPU's
     * TLB must not keep the old direct pointer until the block boundary.
     */
    struct vcpu *self = vcpu_current();
    if (self && vcpu_get_vm(self) == vm) {
        struct iem_core *core = vcpu_get_backend_data(self);
        if (core)
            iem_tlb_flush(&core->cpu, true);
    }
    return rc;
}

static int iem_state_get(struct vcpu *vcpu, struct cpu_state *state)
{
    struct iem_core *core = vcpu_get_backend_data(vcpu);
    if (!core)
        return VERR_INVALID_STATE;
    if (state != core->cpu.s)
        *state = *core->cpu.s;
    return 0;
}

static int iem_state_put(struct vcpu *vcpu, const struct cpu_state *state)
{
    struct iem_core *core = vcpu_get_backend_data(vcpu);
    if (!core)
        return VERR_INVALID_STATE;
    struct iem_cpu *cpu = &core->cpu;
    if (state != cpu->s)
        *cpu->s = *state;
    cpu->inhibit_irq_next = false;
    core->delivering = DLV_NONE;
    iem_update_mode(cpu);
    iem_tlb_flush(cpu, true);
    iem_cache_flush_all(core);
    return 0;
}

static int iem_extra_save(struct vcpu *vcpu, struct ssm *ssm)
{
    struct iem_core *core = vcpu_get_backend_data(vcpu);
    if (!core)
        return VERR_INVALID_STATE;
    iem_sys_save(&core->cpu, ssm);
    return ssm_status(ssm);
}

static int iem_extra_load(struct vcpu *vcpu, struct ssm *ssm, uint32_t version)
{
    struct iem_core *core = vcpu_get_backend_data(vcpu);
    if (!core)
        return VERR_INVALID_STATE;
    return iem_sys_load(&core->cpu, ssm, version);
}

const struct cpu_backend g_cpu_backend_iem = {
    .name = "soft",
    .guest_apic = true,
    .vm_init = iem_vm_init,
    .vm_fini = iem_vm_fini,
    .vcpu_init = iem_vcpu_init,
    .vcpu_fini = iem_vcpu_fini,
    .vcpu_run = iem_vcpu_run,
    .vcpu_kick = iem_vcpu_kick,
    .mem_changed = iem_mem_changed,
    .state_get = iem_state_get,
    .state_put = iem_state_put,
    .extra_version = IEM_SYS_SSM_VERSION,
    .extra_save = iem_extra_save,
    .extra_load = iem_extra_load,
};
