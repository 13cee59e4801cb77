/* rec-core.c - the recompiler's per-vCPU state: the code area and its generations, when blocks get translated, and chaining from one translated block into the next. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../iem/iem-core.h"
#include "rec-internal.h"

#define LOG_COMPONENT "rec"

#define OFF_S ((int32_t)offsetof(struct iem_cpu, s))

void rec_gen_prologue(struct rec_buf *b)
{
    /* Six pushes and eight bytes more keep the stack 16-byte aligned for the calls the body makes (SysV ABI). */
    rx_push(b, RX_RBX);
    rx_push(b, RX_R12);
    rx_push(b, RX_R13);
    rx_push(b, RX_RBP);
    rx_push(b, RX_R14);
    rx_push(b, RX_R15);
    rx_alu_ri(b, RX_SUB, 8, RX_RSP, 8);
    rx_mov_rr(b, 8, RX_R12, RX_RDI);
    rx_load(b, 8, RX_RBX, rx_mem(RX_R12, OFF_S));
    /* A translation starts with the guest's flags pending in r13 (rec-gen.c): chained entries bring them there. */
    rx_load(b, 8, RX_R13, rx_mem(RX_RBX, (int32_t)offsetof(struct cpu_state, rflags)));
}

void rec_gen_epilogue(struct rec_buf *b)
{
    rx_alu_ri(b, RX_ADD, 8, RX_RSP, 8);
    rx_pop(b, RX_R15);
    rx_pop(b, RX_R14);
    rx_pop(b, RX_RBP);
    rx_pop(b, RX_R13);
    rx_pop(b, RX_R12);
    rx_pop(b, RX_RBX);
    rx_ret(b);
}

/*
 * With VIREO_PERF_MAP=1 in the environment, every translation is listed in
 * /tmp/perf-<pid>.map (address, size, "vireo:<guest RIP>/<guest-physical address>"), the
 * format Linux perf reads for code generated at run time (perf itself skips it for the
 * memfd-backed code area; tools/bench/rec-profile.py joins it with perf script output).
 * With VIREO_PERF_MAP=2 the map also lists each translation's guest instructions and
 * whether they were translated inline or call the interpreter's handler.
 */
static FILE *g_perf_map;
static int g_perf_map_level;
static pthread_once_t g_perf_map_once = PTHREAD_ONCE_INIT;

static void perf_map_open(void)
{
    const char *v = getenv("VIREO_PERF_MAP");
    if (!v || (strcmp(v, "1") && strcmp(v, "2")))
        return;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
    g_perf_map = fopen(path, "w");
    if (!g_perf_map)
        LOG_WARN("VIREO_PERF_MAP: cannot write %s", path);
    g_perf_map_level = v[0] - '0';
}

static void perf_map_add(const struct iem_core *core, const struct iem_block *b, size_t size,
                         const struct rec_gen_result *res)
{
    fprintf(g_perf_map, "%lx %lx vireo:%llx/%llx\n", (unsigned long)(uintptr_t)b->rec_code, (unsigned long)size,
            (unsigned long long)core->cpu.s->rip, (unsigned long long)b->gpa);
    if (g_perf_map_level == 2) {
        for (unsigned k = 0; k < b->ninsns; k++) {
            const struct iem_insn *in = &b->insns[k];
            fprintf(g_perf_map, "# +%03x %-10s %s", in->off, ZydisMnemonicGetString((ZydisMnemonic)in->mnemonic),
                    res->inlined[k] ? "inline" : "call");
            if (!res->inlined[k]) {
                /* What the translation would have to handle: operand kinds and sizes, address size, prefixes. */
                static const char kinds[] = "-rmiscdfxX"; /* enum iem_opkind order; h: a legacy high byte */
                for (unsigned i = 0; i < in->nops && i < 4; i++) {
                    const struct iem_operand *op = &in->op[i];
                    char c = op->kind < sizeof(kinds) - 1 ? kinds[op->kind] : '?';
                    fprintf(g_perf_map, " %c%u", op->kind == IEM_OPK_GPR && op->reg >= 16 ? 'h' : c, op->size);
                }
                fprintf(g_perf_map, " a%u p%02x%s", in->addrsize, in->prefixes, in->fast ? "" : " generic");
            }
            fputc('\n', g_perf_map);
        }
    }
    fflush(g_perf_map);
}

int rec_core_create(struct rec_core **out)
{
    struct rec_core *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return VERR_NO_MEMORY;
    rc->links = calloc(REC_LINKS_MAX, sizeof(*rc->links));
    int err = rc->links ? rec_code_init(&rc->code, REC_CODE_BYTES) : VERR_NO_MEMORY;
    if (err) {
        free(rc->links);
        free(rc);
        return err;
    }
    /* The shared epilogue first, then the prologue's length (the same for every block). */
    struct rec_buf b;
    rec_buf_init(&b, rc->code.rw, rc->code.rw + rc->code.size);
    rc->epilogue = rec_code_exec(&rc->code, b.p);
    rec_gen_epilogue(&b);
    rc->exit_dirty = rec_code_exec(&rc->code, b.p);
    rx_mov_rr(&b, 8, RX_RDI, RX_R12);
    rx_call(&b, &rc->code, (const void *)rec_exit_dirty);
    rx_alu_rr(&b, RX_XOR, 4, RX_RAX, RX_RAX);
    rx_jmp32(&b, &rc->code, rc->epilogue);
    /* Where a rec_run call that does not go on leads: the invalidated-block exit, or the epilogue with its result. */
    rc->run_leave = rec_code_exec(&rc->code, b.p);
    rx_alu_ri(&b, RX_CMP, 4, RX_RAX, REC_RUN_DIRTY);
    rx_jcc32(&b, &rc->code, RX_CC_E, rc->exit_dirty);
    rx_jmp32(&b, &rc->code, rc->epilogue);
    rc->exit_next = rec_code_exec(&rc->code, b.p);
    rec_gen_exit_way(&b, &rc->code, IEM_NEXT, rc->epilogue);
    rc->exit_jumped = rec_code_exec(&rc->code, b.p);
    rec_gen_exit_way(&b, &rc->code, IEM_JUMPED, rc->epilogue);
    uint8_t *pro = b.p;
    rec_gen_prologue(&b);
    rc->prologue_bytes = (unsigned)(b.p - pro);
    if (b.overflow) {
        rec_code_fini(&rc->code);
        free(rc->links);
        free(rc);
        return VERR_GENERAL;
    }
    pthread_once(&g_perf_map_once, perf_map_open);
    rc->first = rc->code.rw + ((size_t)(b.p - rc->code.rw + 63) & ~(size_t)63);
    rc->next = rc->first;
    rc->end = rc->code.rw + rc->code.size;
    rc->pure = rec_probe_host(rc);
    rc->gen = 1;
    rc->hot_runs = REC_HOT_RUNS;
    *out = rc;
    return 0;
}

int rec_run(struct iem_cpu *cpu, const struct iem_insn *in)
{
    struct iem_core *core = iem_core_of(cpu);
    struct cpu_state *s = cpu->s;
    uint64_t rip = (cpu->block_rip + in->off) & core->rip_mask;
    s->rip = rip;
    cpu->insn_rip = rip;
    cpu->insn = in;
    int rc = in->fn(cpu, in);
    if (rc != IEM_NEXT)
        return rc;
    if (cpu->block_dirty)
        return REC_RUN_DIRTY;
    /* IF set, or this vCPU's own line raised (a device access): the next block exit goes to the run loop. */
    if ((s->rflags & IEM_F_IF) && atomic_load_explicit(core->intr_line, memory_order_relaxed))
        atomic_store_explicit(&core->kicked, 1, memory_order_relaxed);
    return IEM_NEXT;
}

int rec_run_flags(struct iem_cpu *cpu, const struct iem_insn *in, uint64_t pending)
{
    struct cpu_state *s = cpu->s;
    s->rflags = (s->rflags & ~(uint64_t)IEM_F_ARITH) | (pending & IEM_F_ARITH);
    return rec_run(cpu, in);
}

void rec_exit_dirty(struct iem_cpu *cpu)
{
    const struct iem_insn *in = cpu->insn;
    cpu->s->rip = (cpu->block_rip + in->off + in->len) & iem_core_of(cpu)->rip_mask;
}

void rec_core_destroy(struct rec_core *rc)
{
    if (!rc)
        return;
    rec_code_fini(&rc->code);
    free(rc->links);
    free(rc);
}

void rec_core_set_hot(struct rec_core *rc, unsigned runs)
{
    rc->hot_runs = runs > UINT16_MAX ? UINT16_MAX : runs;
}

void rec_core_limit_pure(struct rec_core *rc, unsigned mask)
{
    rc->pure &= mask;
}

/*
 * The host-flag probe.  The interpreter computes an operation's flags by running the
 * host's instruction with the guest's flags loaded (iem-alu.h: register operands, shifts
 * by CL, two-operand IMUL); the translation may leave the load out only where the host
 * gives the same flags whatever was loaded, and where it uses another encoding (an
 * immediate operand) only if that gives the same flags too.  Each form gets a small
 * function emitted with the translator's own encoders into the free code area, called
 * with the flags all clear and all set (loaded as emit_flags_in does) for operands that
 * reach every result class (zero, sign, carry out, parity, overflow).  The code written is
 * dropped afterwards: translations start at rc->first.
 */
typedef uint64_t probe_fn(uint64_t flags_in, uint64_t a, uint64_t b);

enum { PR_ALU_RR, PR_ALU_RI, PR_TEST_RR, PR_TEST_RI, PR_SHIFT_CL, PR_IMUL_RR };

/* probe(flags_in, a, b): the host's arithmetic flags after the form on a (and b, or imm). */
static probe_fn *probe_emit(struct rec_core *rc, struct rec_buf *b, int form, unsigned op, unsigned size, int32_t imm)
{
    uint8_t *start = b->p;
    /* flags_in (rdi) into the host flags as translations load them. */
    rx_mov_rr(b, 4, RX_RCX, RX_RDI);
    rec_gen_flags_load(b);
    switch (form) {
    case PR_ALU_RR: rx_alu_rr(b, (enum rec_alu)op, size, RX_RSI, RX_RDX); break;
    case PR_ALU_RI: rx_alu_ri(b, (enum rec_alu)op, size, RX_RSI, imm); break;
    case PR_TEST_RR: rx_test_rr(b, size, RX_RSI, RX_RDX); break;
    case PR_TEST_RI: rx_test_ri(b, size, RX_RSI, imm); break;
    case PR_SHIFT_CL:
        rx_mov_rr(b, 4, RX_RCX, RX_RDX);
        rx_shift_rcl(b, (enum rec_shift)op, size, RX_RSI);
        break;
    default: rx_imul_rr(b, size, RX_RSI, RX_RDX); break;
    }
    rx_pushfq(b);
    rx_pop(b, RX_RAX);
    rx_ret(b);
    return b->overflow ? NULL : (probe_fn *)rec_code_exec(&rc->code, start);
}

static const uint64_t g_probe_vals[] = {
    0, 1, 2, 3, 0x0f, 0x10, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff,
    0x80000000, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull,
    0x123456789abcdef0ull, 0xfedcba9876543210ull, 0x5555555555555555ull, 0xaaaaaaaaaaaaaaaaull,
    0x0f0f0f0f0f0f0f0full, 0x00000000deadbeefull, 0x8000000080008080ull,
};
#define PROBE_NVALS (sizeof(g_probe_vals) / sizeof(g_probe_vals[0]))

/* Whether fn gives the interpreter's flags (ref with the flags loaded) for any flags before, on a by each b. */
static bool probe_same(probe_fn *fn, probe_fn *ref, const uint64_t *bs, unsigned nb)
{
    if (!fn || !ref)
        return false;
    for (unsigned i = 0; i < PROBE_NVALS; i++) {
        for (unsigned j = 0; j < nb; j++) {
            uint64_t a = g_probe_vals[i], bv = bs[j];
            uint64_t want = ref(0, a, bv) & IEM_F_ARITH;
            if ((ref(IEM_F_ARITH, a, bv) & IEM_F_ARITH) != want || (fn(0, a, bv) & IEM_F_ARITH) != want ||
                (fn(IEM_F_ARITH, a, bv) & IEM_F_ARITH) != want)
                return false;
        }
    }
    return true;
}

/* A logic operation (AND/OR/XOR, or TEST for op RX_CMP) in the register and immediate forms the translator emits. */
static bool probe_logic(struct rec_core *rc, struct rec_buf *b, unsigned op, unsigned n)
{
    static const int32_t imms[] = { 0, 1, 0x7f, -1, -128, 0x10, 0x12345678, (int32_t)0x80000000 };
    bool test = op == RX_CMP;
    probe_fn *ref = probe_emit(rc, b, test ? PR_TEST_RR : PR_ALU_RR, op, n, 0);
    if (!probe_same(ref, ref, g_probe_vals, PROBE_NVALS))
        return false;
    for (unsigned i = 0; i < sizeof(imms) / sizeof(imms[0]); i++) {
        /* The immediate as the translator passes it for this size (emit_alu_op), and as the interpreter's operand. */
        int32_t v = n == 1 ? (int8_t)imms[i] : n == 2 ? (int16_t)imms[i] : imms[i];
        uint64_t bv = (uint64_t)(int64_t)v;
        if (!probe_same(probe_emit(rc, b, test ? PR_TEST_RI : PR_ALU_RI, op, n, v), ref, &bv, 1))
            return false;
    }
    return true;
}

static pthread_mutex_t g_probe_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_probe_result = -1; /* the first core's probe, for every later one (a property of the host) */

unsigned rec_probe_host(struct rec_core *rc)
{
    static const unsigned sizes[] = { 1, 2, 4, 8 };
    pthread_mutex_lock(&g_probe_lock);
    if (g_probe_result >= 0) {
        pthread_mutex_unlock(&g_probe_lock);
        return (unsigned)g_probe_result;
    }
    struct rec_buf b;
    rec_buf_init(&b, rc->next, rc->end);
    unsigned pure = REC_PURE_LOGIC | REC_PURE_SHIFT | REC_PURE_IMUL;
    for (unsigned i = 0; i < 4; i++) {
        unsigned n = sizes[i];
        if (!probe_logic(rc, &b, RX_AND, n) || !probe_logic(rc, &b, RX_OR, n) || !probe_logic(rc, &b, RX_XOR, n) ||
            !probe_logic(rc, &b, RX_CMP, n))
            pure &= ~REC_PURE_LOGIC;
        static const enum rec_shift shifts[] = { RX_SHL, RX_SHR, RX_SAR };
        uint64_t counts[63];
        unsigned ncounts = n == 8 ? 63u : 31u;
        for (unsigned c = 0; c < ncounts; c++)
            counts[c] = c + 1;
        for (unsigned s = 0; s < 3; s++) {
            probe_fn *fn = probe_emit(rc, &b, PR_SHIFT_CL, shifts[s], n, 0);
            if (!probe_same(fn, fn, counts, ncounts))
                pure &= ~REC_PURE_SHIFT;
        }
        probe_fn *imul = n > 1 ? probe_emit(rc, &b, PR_IMUL_RR, 0, n, 0) : NULL;
        if (n > 1 && !probe_same(imul, imul, g_probe_vals, PROBE_NVALS))
            pure &= ~REC_PURE_IMUL;
    }
    /* The probes are gone with the next translation: rc->next stays at rc->first. */
    LOG_INFO("host flags independent of the flags before: logic AF %s, shifts %s, IMUL %s",
             (pure & REC_PURE_LOGIC) ? "yes" : "no", (pure & REC_PURE_SHIFT) ? "yes" : "no",
             (pure & REC_PURE_IMUL) ? "yes" : "no");
    g_probe_result = (int)pure;
    pthread_mutex_unlock(&g_probe_lock);
    return pure;
}

void rec_core_set_code_limit(struct rec_core *rc, size_t bytes)
{
    size_t min = 2 * (size_t)REC_BLOCK_MAX_BYTES;
    bytes = bytes < min ? min : bytes;
    rc->end = rc->first + bytes <= rc->code.rw + rc->code.size ? rc->first + bytes : rc->code.rw + rc->code.size;
}

void rec_core_stats(const struct rec_core *rc, struct rec_stats *out)
{
    *out = rc->stats;
}

/* Drops every translation: the blocks find theirs stale by generation. */
static void code_flush(struct rec_core *rc)
{
    rc->gen++;
    if (rc->gen == 0)
        rc->gen = 1;
    rc->next = rc->first;
    rc->nlinks = 0;
    rc->stats.flushes++;
}

rec_fn *rec_block_code(struct iem_core *core, struct iem_block *b, bool may_flush)
{
    struct rec_core *rc = core->rec;
    if (b->rec_gen == rc->gen)
        return (rec_fn *)b->rec_code;
    if (b->rec_runs == UINT16_MAX)
        return NULL; /* its translation did not fit: the interpreter keeps it */
    if (b->rec_runs < rc->hot_runs) {
        b->rec_runs++;
        return NULL;
    }
    uint8_t *end = rc->end;
    if ((size_t)(end - rc->next) < REC_BLOCK_MAX_BYTES || rc->nlinks + REC_LINKS_PER_BLOCK > REC_LINKS_MAX) {
        /* Not from inside translated code (rec_chain): the running translation would be overwritten. */
        if (!may_flush)
            return NULL;
        code_flush(rc);
    }
    struct rec_gen_result res;
    uint8_t *start = rc->next;
    uint8_t *stop = rec_gen_block(rc, b, start, end, &res);
    if (!stop) {
        /* More than REC_BLOCK_MAX_BYTES: the interpreter keeps this block. */
        LOG_WARN("block at %#llx does not fit a translation; it stays interpreted", (unsigned long long)b->gpa);
        b->rec_runs = UINT16_MAX;
        return NULL;
    }
    rc->next = start + (((size_t)(stop - start) + 15) & ~(size_t)15);
    b->rec_code = rec_code_exec(&rc->code, start);
    b->rec_gen = rc->gen;
    if (g_perf_map)
        perf_map_add(core, b, (size_t)(stop - start), &res);
    rc->stats.blocks++;
    rc->stats.bytes += (uint64_t)(stop - start);
    rc->stats.inline_insns += res.ninline;
    rc->stats.call_insns += res.ncall;
    return (rec_fn *)b->rec_code;
}

/*
 * At a block exit of translated code: run on into the next block's translation when the
 * interpreter's chaining would (iem_fast_jump): nothing for the run loop to do at this
 * boundary (no kick, cross-thread work, dead blocks, interrupt to take, shadow, TF/RF or
 * instruction breakpoints), a live link or jump-cache entry to a block of this decode
 * mode, and room in the chain's instruction budget.  Else NULL: the translation returns.
 */
void *rec_chain(struct iem_cpu *cpu, int rc, struct rec_link *link)
{
    (void)rc;
    struct iem_core *core = iem_core_of(cpu);
    core->rec->stats.chain_calls++;
    struct cpu_state *s = cpu->s;
    const struct iem_block *b = cpu->cur_block;
    if (cpu->inhibit_irq_next || s->int_shadow || (s->rflags & (IEM_F_TF | IEM_F_RF)) || core->dbg_exec ||
        atomic_load_explicit(&core->kicked, memory_order_relaxed) ||
        atomic_load_explicit(&core->work, memory_order_relaxed))
        return NULL;
    bool long64 = cpu->mode == IEM_MODE_LONG64;
    uint64_t rip = s->rip;
    uint64_t lin = long64 ? rip : (uint32_t)(s->seg[CPU_CS].base + rip);
    const struct iem_link *via = NULL;
    for (int i = 0; i < IEM_BLOCK_LINKS; i++) {
        if (b->link[i].lin == lin && iem_link_valid(core, &b->link[i])) {
            via = &b->link[i];
            break;
        }
    }
    if (!via) {
        const struct iem_link *j = iem_jcache_slot(core, lin);
        if (j->lin != lin || !iem_link_valid(core, j))
            return NULL;
        via = j;
    }
    struct iem_block *to = via->to;
    struct rec_core *rc_core = core->rec;
    int32_t retired = (int32_t)(cpu->insn - core->count_base) + 1;
    if (to->zmode != core->zmode || core->rec_budget - retired < 0 ||
        (!long64 && rip + to->nbytes - 1 > s->seg[CPU_CS].limit))
        return NULL;
    if ((s->rflags & IEM_F_IF) && atomic_load_explicit(core->intr_line, memory_order_relaxed))
        return NULL;
    rec_fn *fn = rec_block_code(core, to, false);
    if (!fn)
        return NULL;
    void *body = (uint8_t *)fn + rc_core->prologue_bytes;
    if (link && long64) {
        /* An exit with several slots (a RET) fills them in turn; its first slot keeps the count. */
        if (link->ways > 1) {
            struct rec_link *first = link;
            link = &first[first->next];
            first->next = (uint16_t)((first->next + 1) % first->ways);
        }
        /*
         * A target on the first page of the block the exit belongs to is mapped as that page
         * is, which its running at this RIP shows: the link outlives flushes that keep global
         * pages (CR3 writes), as one to a global page does, and only what kills blocks or
         * changes the privilege level ends it.  Not a target that runs on into the next page,
         * which a CR3 write may map elsewhere.
         */
        uint64_t mask = via->mask;
        bool local = ((cpu->block_rip ^ lin) >> 12) == 0 && to->gpa2 == IEM_NOGPA;
        if (local)
            mask = 0xffffffffu;
        if (local || !link->page_local) {
            link->lin = lin;
            link->body = body;
            link->to = to;
            link->key = core->link_key & mask;
            link->mask = mask;
        }
    }
    core->rec_budget -= retired;
    core->count_base = to->insns;
    cpu->cur_block = to;
    cpu->block_rip = rip;
    cpu->insn_rip = rip;
    cpu->insn = to->insns;
    return body;
}
