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
    /* Three pushes keep the stack 16-byte aligned for the calls the body makes (SysV ABI). */
    rx_push(b, RX_RBX);
    rx_push(b, RX_R12);
    rx_push(b, RX_R13);
    rx_mov_rr(b, 8, RX_R12, RX_RDI);
    rx_load(b, 8, RX_RBX, rx_mem(RX_R12, OFF_S));
}

void rec_gen_epilogue(struct rec_buf *b)
{
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
        for (unsigned k = 0; k < b->ninsns; k++)
            fprintf(g_perf_map, "# +%03x %-10s %s\n", b->insns[k].off,
                    ZydisMnemonicGetString((ZydisMnemonic)b->insns[k].mnemonic), res->inlined[k] ? "inline" : "call");
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
    rc->gen = 1;
    rc->hot_runs = REC_HOT_RUNS;
    *out = rc;
    return 0;
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

void rec_core_set_code_limit(struct rec_core *rc, size_t bytes)
{
    size_t min = 2 * (size_t)REC_BLOCK_MAX_BYTES;
    bytes = bytes < min ? min : bytes;
    rc->end = rc->first + bytes <= rc->code.rw + rc->code.size ? rc->first + bytes : rc->code.rw + rc->code.size;
}

void rec_core_set_budget(struct rec_core *rc, unsigned insns)
{
    rc->budget = insns;
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
    if (to->zmode != core->zmode || to->ninsns > rc_core->budget ||
        (!long64 && rip + to->nbytes - 1 > s->seg[CPU_CS].limit))
        return NULL;
    if ((s->rflags & IEM_F_IF) && atomic_load_explicit(core->intr_line, memory_order_relaxed))
        return NULL;
    rec_fn *fn = rec_block_code(core, to, false);
    if (!fn)
        return NULL;
    void *body = (uint8_t *)fn + rc_core->prologue_bytes;
    if (link && long64) {
        link->lin = lin;
        link->body = body;
        link->to = to;
        link->key = via->key;
        link->mask = via->mask;
        link->ninsns = to->ninsns;
    }
    cpu->icount += (uint64_t)(cpu->insn - core->count_base) + 1;
    rc_core->budget -= to->ninsns;
    core->count_base = to->insns;
    cpu->cur_block = to;
    cpu->block_rip = rip;
    cpu->insn_rip = rip;
    cpu->insn = to->insns;
    return body;
}
