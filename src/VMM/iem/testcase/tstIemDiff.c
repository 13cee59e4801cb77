/* tstIemDiff.c - differential test of the interpreter against Unicorn: generated 64-bit instruction sequences run on both and compared. */

/*
 * Usage:
 *   tstIemDiff                      the kmk check form: fixed seed, 110,000 sequences of 1-8 units in
 *                                   one cmocka test per instruction group, a mixed test drawing from
 *                                   all groups, then the coverage check.
 *   tstIemDiff --seed N --count M   another seed and M sequences in total (same split over the tests).
 *   tstIemDiff --group NAME         only that group's test (names as printed: alu, shift, ..., mixed);
 *                                   with --count, M sequences of that group.
 *   tstIemDiff --verbose            print every divergence in full, not only the first of each test.
 * A divergence report names its seed, group and sequence number and the command that replays it
 * ("--seed S --group G --count N+1 --verbose": every sequence follows from the seed and the group
 * alone).
 *
 * Each sequence starts both machines from one random state (GPRs, arithmetic flags and DF, XMM,
 * MXCSR, x87, 12 KiB of data and stack) with identical memory layout (diff-gen.h), runs to the
 * final HLT or the first exception, and compares RIP, the exception vector, all GPRs, RFLAGS
 * without the flags the generator knows to be undefined, XMM, MXCSR (control bits), the x87/MMX
 * state where the sequence used it, and the data and stack memory.
 *
 * Where Unicorn 2.0.1 (QEMU 5 TCG) differs from the hardware, the generator keeps the case out
 * or the comparison masks it, with the reason next to the code; on the host these were checked
 * against the real instruction where the SDM leaves doubt.  In short:
 * - Engine state: QEMU's "exception in flight" is never cleared (every run restores a fresh CPU
 *   context, diff-uc.h); lazily tracked flags go stale across LOOPE/LOOPNE and into the
 *   CMPXCHG8B helper (a JMP $+2 starts a new translation block first, diff-int.h); RIP after
 *   an unmapped access is the block start (JMP $+2 before the non-canonical access).
 * - Missing or different features: POPCNT and MOVBE are absent from Unicorn's fixed CPUID
 *   (computed by the invalid-opcode hook, diff-uc.h); Unicorn has BMI1 where the interpreter has
 *   not (TZCNT only with sources where TZCNT and BSF agree); F6/F7 /1 TEST is #UD there.
 * - Faults not raised: no alignment check on m128 operands, no reserved-bit check in LDMXCSR,
 *   no x87 stack overflow/underflow, LOCK MOV accepted; LOCK CMP aborts Unicorn; a non-canonical
 *   data address is reported as unmapped and read here as #GP(0).
 * - Results: MXCSR exception flags never set and FZ applied to the x87 unit (flags masked, FZ
 *   never set); x87 status exception flags and C1 not kept (masked; C0/C2/C3 checked through
 *   FNSTSW right after compares); FCOMI keeps OF/SF/AF; an MMX write leaves bits 79:64 alone;
 *   SSSE3 on MMX registers keeps the tag word; two NaN operands pick the x87 way (the generator
 *   feeds floating-point instructions no NaN, dg_fp32 and xmm_taint); MIN/MAX return a denormal
 *   as is under DAZ; DPPS/DPPD sum from +0.0 in order; RCPPS/RSQRTPS are exact; PHADD/PHSUB
 *   with one register as both operands read overwritten words; PCMPxSTRx "equal ordered" misses
 *   tail matches and huge explicit lengths crash it; SHLD/SHRD imm8 get RIP-relative addresses
 *   wrong; LOCK NEG flags come from the old value; CMPXCHG r32 and BSF/BSR r32 with a zero
 *   source write the register back zero-extended; FLD m32/m64 keeps a signalling NaN signalling;
 *   CVTPI2PS/PD with a memory source switch to MMX mode.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <Zydis/Zydis.h>

#include "harness.h"
#include "diff-gen.h"
#include "diff-int.h"
#include "diff-simd.h"
#include "diff-uc.h"

#define DIFF_DEFAULT_SEED   0x5eed1e11ull
#define DIFF_DEFAULT_COUNT  110000u
#define DIFF_MIXED_SHARES   4u            /* the mixed test runs this many groups' worth of sequences */
#define DIFF_GROUP_MIXED    DG_G_COUNT
#define DIFF_MAX_INSNS      20000u        /* per sequence: far above any generated sequence */
#define DIFF_REPORT_LINES   12u           /* one-line summaries after the first full report of a test */

/* RFLAGS bits that have a meaning in 64-bit mode (SDM vol. 1, 3.4.3); the rest read as fixed values. */
#define DIFF_RFLAGS_BITS 0x3f7fd5ull
/* MXCSR without its six exception flags (Unicorn does not set them). */
#define DIFF_MXCSR_CMP   0xffc0u
/*
 * x87 status word: TOP.  The exception flags and C1 are not maintained by Unicorn, and C0/C2/C3
 * are undefined after most instructions (they are compared through FNSTSW AX right after a
 * compare, see dg_unit_x87).
 */
#define DIFF_FSW_CMP     0x3800u

struct diff_run {
    uint64_t seed;
    uint64_t count;
    bool count_given;
    int only;                 /* group index, or -1 for all */
    bool verbose;
    struct dg_gen gen;
    struct du_engine uc;
    struct iemh *h;
    uint8_t page[DG_CODE_BYTES];
    struct dg_seq seq;
    struct dg_result res_uc, res_iem;
    uint64_t mnemonic_runs[ZYDIS_MNEMONIC_MAX_VALUE + 1];
    uint64_t tmpl_runs[DG_TMPL_MAX];
    uint64_t tmpl_invalid[DG_TMPL_MAX];   /* non-fault templates Zydis rejected (generator bugs) */
    bool all_tests_ran;
    unsigned tests_done;
};

static struct diff_run g_run;

/* ---- The interpreter side ---------------------------------------------------------------------- */

static void diff_iem_load(const struct dg_seq *q)
{
    struct iemh *h = g_run.h;
    struct cpu_state *s = h->s;
    memset(g_run.page, 0xf4, sizeof(g_run.page));
    memcpy(g_run.page, q->code, q->len);
    iemh_write(h, DG_CODE_BASE, g_run.page, sizeof(g_run.page)); /* through mem_write: drops stale decoded code */
    iemh_write(h, DG_DATA_BASE, q->init.mem, DG_MEM_BYTES);
    const struct dg_state *in = &q->init;
    memcpy(s->gpr, in->gpr, sizeof(s->gpr));
    s->rip = in->rip;
    s->rflags = in->rflags;
    memcpy(s->fpu.xmm, in->xmm, sizeof(s->fpu.xmm));
    s->fpu.mxcsr = in->mxcsr;
    s->fpu.fcw = in->fcw;
    s->fpu.fsw = in->fsw;
    s->fpu.ftw = in->ftw;
    for (unsigned i = 0; i < 8; i++) {
        memset(s->fpu.st[i], 0, 16);
        memcpy(s->fpu.st[i], in->st[i], 10);
    }
    s->seg[CPU_FS].base = DG_FS_BASE;
    s->seg[CPU_GS].base = DG_GS_BASE;
    s->halted = false;
}

/* Runs at most max instructions and reads the state back. */
static void diff_iem_go(uint64_t max, struct dg_result *out)
{
    struct iemh *h = g_run.h;
    struct cpu_state *s = h->s;
    struct iem_step_result r;
    iemh_run(h, max, &r);
    out->error = false;
    out->why[0] = 0;
    out->vector = r.status == IEM_STEP_EXCEPTION ? r.vector : -1;
    if (r.status == IEM_STEP_LIMIT && max == DIFF_MAX_INSNS) {
        out->error = true;
        snprintf(out->why, sizeof(out->why), "interpreter: no HLT after %u instructions", DIFF_MAX_INSNS);
    }
    struct dg_state *o = &out->st;
    memcpy(o->gpr, s->gpr, sizeof(o->gpr));
    o->rip = s->rip;
    o->rflags = s->rflags;
    memcpy(o->xmm, s->fpu.xmm, sizeof(o->xmm));
    o->mxcsr = s->fpu.mxcsr;
    o->fcw = s->fpu.fcw;
    o->fsw = s->fpu.fsw;
    o->ftw = s->fpu.ftw;
    for (unsigned i = 0; i < 8; i++)
        memcpy(o->st[i], s->fpu.st[i], 10);
    iemh_read(h, DG_DATA_BASE, o->mem, DG_MEM_BYTES);
}

static void diff_iem_run(const struct dg_seq *q, struct dg_result *out)
{
    diff_iem_load(q);
    diff_iem_go(DIFF_MAX_INSNS, out);
}

/* ---- Comparison and reports ------------------------------------------------------------------ */

static const char *const g_gpr_names[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                             "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15" };

/* The instruction index at code offset off, or -1. */
static int diff_insn_at(const struct dg_seq *q, uint64_t rip)
{
    for (unsigned i = 0; i < q->ninsn; i++)
        if (DG_CODE_BASE + q->insn[i].off == rip)
            return (int)i;
    return -1;
}

/* Flags that must not be compared where the run stopped. */
static uint32_t diff_undef_at(const struct dg_seq *q, const struct dg_result *r)
{
    if (r->vector < 0)
        return q->undef_end;
    int i = diff_insn_at(q, r->st.rip);
    return i >= 0 ? q->insn[i].undef_before : DG_ARITH;
}

/* What differs, as a mask: the GPRs in bits 0-15, XMM registers in 16-31, then the rest. */
#define DIFF_W_FLOW  (UINT64_C(1) << 32) /* exception vector or RIP */
#define DIFF_W_FLAGS (UINT64_C(1) << 33)
#define DIFF_W_MXCSR (UINT64_C(1) << 34)
#define DIFF_W_X87   (UINT64_C(1) << 35)
#define DIFF_W_MEM   (UINT64_C(1) << 36)
#define DIFF_W_ALL   (~UINT64_C(0))

/*
 * Compares the parts of two results selected by only, describes each difference in buf and
 * returns the mask of what differs.
 */
static uint64_t diff_compare(const struct dg_seq *q, const struct dg_result *a, const struct dg_result *b,
                             uint64_t only, char *buf, size_t len)
{
    uint64_t what = 0;
    size_t at = 0;
#define DIFF_NOTE(w, ...)                                                                                 \
    do {                                                                                                  \
        what |= (w);                                                                                      \
        if (at < len)                                                                                     \
            at += (size_t)snprintf(buf + at, len - at, __VA_ARGS__);                                      \
    } while (0)
    if (len)
        buf[0] = 0;
    if (a->error || b->error) {
        DIFF_NOTE(DIFF_W_FLOW, "  run failed: unicorn %s / iem %s\n", a->error ? a->why : "ok", b->error ? b->why : "ok");
        return what;
    }
    if ((only & DIFF_W_FLOW) && a->vector != b->vector)
        DIFF_NOTE(DIFF_W_FLOW, "  exception: unicorn %d, iem %d\n", a->vector, b->vector);
    if ((only & DIFF_W_FLOW) && a->st.rip != b->st.rip)
        DIFF_NOTE(DIFF_W_FLOW, "  rip: unicorn %#" PRIx64 ", iem %#" PRIx64 "\n", a->st.rip, b->st.rip);
    bool done = a->vector < 0 && b->vector < 0;
    for (unsigned i = 0; i < 16; i++) {
        if ((done && (q->dc_gpr >> i) & 1) || !((only >> i) & 1))
            continue;
        if (a->st.gpr[i] != b->st.gpr[i])
            DIFF_NOTE(UINT64_C(1) << i, "  %s: unicorn %#018" PRIx64 ", iem %#018" PRIx64 "\n", g_gpr_names[i],
                      a->st.gpr[i], b->st.gpr[i]);
    }
    uint64_t fmask = DIFF_RFLAGS_BITS & ~(uint64_t)diff_undef_at(q, a);
    if ((only & DIFF_W_FLAGS) && ((a->st.rflags ^ b->st.rflags) & fmask))
        DIFF_NOTE(DIFF_W_FLAGS, "  rflags: unicorn %#" PRIx64 ", iem %#" PRIx64 " (compared bits %#" PRIx64 ")\n",
                  a->st.rflags, b->st.rflags, fmask);
    for (unsigned i = 0; i < 16; i++) {
        if ((done && (q->dc_xmm >> i) & 1) || !((only >> (16 + i)) & 1))
            continue;
        if (memcmp(a->st.xmm[i], b->st.xmm[i], 16) != 0) {
            uint64_t ua[2], ub[2];
            memcpy(ua, a->st.xmm[i], 16);
            memcpy(ub, b->st.xmm[i], 16);
            DIFF_NOTE(UINT64_C(1) << (16 + i), "  xmm%u: unicorn %016" PRIx64 ":%016" PRIx64 ", iem %016" PRIx64
                      ":%016" PRIx64 "\n", i, ua[1], ua[0], ub[1], ub[0]);
        }
    }
    if ((only & DIFF_W_MXCSR) && ((a->st.mxcsr ^ b->st.mxcsr) & DIFF_MXCSR_CMP))
        DIFF_NOTE(DIFF_W_MXCSR, "  mxcsr: unicorn %#x, iem %#x\n", a->st.mxcsr, b->st.mxcsr);
    if (q->uses_x87 && (only & DIFF_W_X87)) {
        if (a->st.fcw != b->st.fcw)
            DIFF_NOTE(DIFF_W_X87, "  fcw: unicorn %#x, iem %#x\n", a->st.fcw, b->st.fcw);
        if ((a->st.fsw ^ b->st.fsw) & DIFF_FSW_CMP)
            DIFF_NOTE(DIFF_W_X87, "  fsw: unicorn %#x, iem %#x\n", a->st.fsw, b->st.fsw);
        if (a->st.ftw != b->st.ftw && !q->no_ftw)
            DIFF_NOTE(DIFF_W_X87, "  ftw (abridged): unicorn %#x, iem %#x\n", a->st.ftw, b->st.ftw);
        for (unsigned i = 0; i < 8; i++) {
            if (memcmp(a->st.st[i], b->st.st[i], q->uses_mmx ? 8 : 10) != 0) {
                uint64_t ma, mb;
                uint16_t ea, eb;
                memcpy(&ma, a->st.st[i], 8);
                memcpy(&mb, b->st.st[i], 8);
                memcpy(&ea, a->st.st[i] + 8, 2);
                memcpy(&eb, b->st.st[i] + 8, 2);
                DIFF_NOTE(DIFF_W_X87, "  st(%u): unicorn %04x:%016" PRIx64 ", iem %04x:%016" PRIx64 "\n", i, ea, ma,
                          eb, mb);
            }
        }
    }
    unsigned shown = 0;
    for (unsigned off = 0; off < DG_MEM_BYTES && (only & DIFF_W_MEM); off++) {
        if (a->st.mem[off] == b->st.mem[off])
            continue;
        if (shown++ < 8)
            DIFF_NOTE(DIFF_W_MEM, "  mem[%#" PRIx64 "]: unicorn %02x, iem %02x (initially %02x)\n", DG_DATA_BASE + off,
                      a->st.mem[off], b->st.mem[off], q->init.mem[off]);
    }
#undef DIFF_NOTE
    return what;
}

static void diff_print_state(const char *title, const struct dg_state *s, bool simd, bool x87)
{
    printf("  %s: rip %#" PRIx64 " rflags %#" PRIx64 " mxcsr %#x\n", title, s->rip, s->rflags, s->mxcsr);
    for (unsigned i = 0; i < 16; i += 4)
        printf("    %-3s %016" PRIx64 "  %-3s %016" PRIx64 "  %-3s %016" PRIx64 "  %-3s %016" PRIx64 "\n",
               g_gpr_names[i], s->gpr[i], g_gpr_names[i + 1], s->gpr[i + 1], g_gpr_names[i + 2], s->gpr[i + 2],
               g_gpr_names[i + 3], s->gpr[i + 3]);
    if (simd) {
        for (unsigned i = 0; i < 16; i += 2) {
            uint64_t x[2], y[2];
            memcpy(x, s->xmm[i], 16);
            memcpy(y, s->xmm[i + 1], 16);
            printf("    xmm%-2u %016" PRIx64 ":%016" PRIx64 "  xmm%-2u %016" PRIx64 ":%016" PRIx64 "\n", i, x[1], x[0],
                   i + 1, y[1], y[0]);
        }
    }
    if (x87) {
        printf("    fcw %#x fsw %#x ftw %#x\n", s->fcw, s->fsw, s->ftw);
        for (unsigned i = 0; i < 8; i++) {
            uint64_t m;
            uint16_t e;
            memcpy(&m, s->st[i], 8);
            memcpy(&e, s->st[i] + 8, 2);
            printf("    st(%u) %04x:%016" PRIx64 "\n", i, e, m);
        }
    }
}

static void diff_print_seq(const struct dg_seq *q, const struct dg_result *a)
{
    for (unsigned i = 0; i < q->ninsn; i++) {
        const struct dg_insn *in = &q->insn[i];
        ZydisDisassembledInstruction zd;
        char bytes[48] = "";
        for (unsigned k = 0; k < in->len && k < 15; k++)
            snprintf(bytes + 3 * k, sizeof(bytes) - 3 * k, "%02x ", q->code[in->off + k]);
        const char *text = "(invalid)";
        if (ZYAN_SUCCESS(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, DG_CODE_BASE + in->off, q->code + in->off,
                                               in->len, &zd)))
            text = zd.text;
        bool here = a->vector >= 0 && a->st.rip == DG_CODE_BASE + in->off;
        printf("  %s%#07" PRIx64 "  %-45s %-40s %s\n", here ? "=>" : "  ", DG_CODE_BASE + in->off, bytes, text,
               in->aux ? "" : g_run.gen.tmpl[in->tmpl]->name);
    }
}

/*
 * Replays q on both sides one instruction at a time and returns the index of the first
 * instruction after which the parts in only differ (-1 if none is found); only is what differs
 * at the end, so that a difference that goes away again (the x87 exception flags read by FNSTSW
 * and masked at once, say) does not hide the real one.  A REP string instruction
 * may take several steps on one side and one on the other: the side still on the instruction
 * the other one has left is stepped until both agree on RIP again.
 */
static int diff_lockstep(const struct dg_seq *q, uint64_t only, char *buf, size_t len)
{
    static struct dg_result a, b;
    du_load(&g_run.uc, q);
    diff_iem_load(q);
    uint64_t prev = q->init.rip;
    for (unsigned step = 0; step < 4 * DG_INSN_MAX; step++) {
        du_go(&g_run.uc, 1, &a);
        diff_iem_go(1, &b);
        for (int catchup = 0; catchup < 256 && a.st.rip != b.st.rip && a.vector < 0 && b.vector < 0; catchup++) {
            if (a.st.rip == prev)
                du_go(&g_run.uc, 1, &a);
            else if (b.st.rip == prev)
                diff_iem_go(1, &b);
            else
                break;
        }
        struct dg_seq probe = *q;
        /* The flags undefined before the next instruction (or at the end) are what may differ now. */
        int next = diff_insn_at(q, a.st.rip);
        probe.undef_end = next >= 0 ? q->insn[next].undef_before : q->undef_end;
        bool end = a.vector >= 0 || b.vector >= 0 || a.st.rip == DG_CODE_BASE + q->len || next < 0;
        if (!end) {
            probe.dc_gpr = 0;
            probe.dc_xmm = 0;
        }
        if (diff_compare(&probe, &a, &b, only, buf, len) != 0)
            return diff_insn_at(q, prev);
        if (end)
            return -1;
        prev = a.st.rip;
    }
    return -1;
}

/* One line: the instruction after which the states first differ and the first difference. */
static void diff_report_line(const char *test, uint64_t index, const struct dg_seq *q, uint64_t what)
{
    char step[2048];
    int first = diff_lockstep(q, what, step, sizeof(step));
    char text[160] = "(not found by stepping)";
    if (first >= 0) {
        const struct dg_insn *in = &q->insn[first];
        ZydisDisassembledInstruction zd;
        if (ZYAN_SUCCESS(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, DG_CODE_BASE + in->off, q->code + in->off,
                                               in->len, &zd)))
            snprintf(text, sizeof(text), "%s [%s]", zd.text, in->aux ? "setup" : g_run.gen.tmpl[in->tmpl]->name);
        else
            snprintf(text, sizeof(text), "(invalid opcode) [%s]", in->aux ? "setup" : g_run.gen.tmpl[in->tmpl]->name);
    } else {
        snprintf(step, sizeof(step), "  (no single-step difference)\n");
    }
    char *nl = strchr(step, '\n');
    printf("divergence in %s, sequence %" PRIu64 ", after %s:%.*s\n", test, index, text,
           (int)(nl ? nl - step : (long)strlen(step)), step + 1);
}

static void diff_report(const char *test, unsigned index, const struct dg_seq *q, const char *diffs, uint64_t what,
                        bool full)
{
    printf("DIVERGENCE in test %s: seed %#" PRIx64 ", sequence %u (replay: tstIemDiff --seed %#" PRIx64
           " --group %s --count %u --verbose)\n",
           test, g_run.seed, index, g_run.seed, test, index + 1);
    printf("%s", diffs);
    if (!full)
        return;
    printf("  sequence (=> marks where Unicorn stopped with vector %d):\n", g_run.res_uc.vector);
    diff_print_seq(q, &g_run.res_uc);
    char step[2048];
    int first = diff_lockstep(q, what, step, sizeof(step));
    if (first >= 0) {
        const struct dg_insn *in = &q->insn[first];
        ZydisDisassembledInstruction zd;
        bool ok = ZYAN_SUCCESS(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, DG_CODE_BASE + in->off,
                                                     q->code + in->off, in->len, &zd));
        printf("  first difference, stepping one instruction at a time, after %#" PRIx64 " %s:\n%s",
               DG_CODE_BASE + in->off, ok ? zd.text : "(invalid)", step);
    }
    bool simd = false;
    for (unsigned i = 0; i < q->ninsn; i++)
        if (!q->insn[i].aux && g_run.gen.tmpl[q->insn[i].tmpl]->grp >= DG_G_SSE_MOVE)
            simd = true;
    diff_print_state("initial", &q->init, simd || q->uses_x87, q->uses_x87);
    diff_print_state("unicorn", &g_run.res_uc.st, simd || q->uses_x87, q->uses_x87);
    diff_print_state("iem", &g_run.res_iem.st, simd || q->uses_x87, q->uses_x87);
    fflush(stdout);
}

/* Counts the instructions Unicorn executed (its translated blocks) for the coverage check. */
static void diff_count_executed(const struct dg_seq *q, const struct dg_result *a)
{
    uint64_t stop = a->vector >= 0 ? a->st.rip : UINT64_MAX;
    for (unsigned i = 0; i < q->ninsn; i++) {
        const struct dg_insn *in = &q->insn[i];
        uint64_t addr = DG_CODE_BASE + in->off;
        if (addr > stop)
            continue;
        bool ran = false;
        for (unsigned b = 0; b < g_run.uc.nblocks && !ran; b++)
            ran = addr >= g_run.uc.blocks[b].addr && addr < g_run.uc.blocks[b].addr + g_run.uc.blocks[b].size;
        if (!ran)
            continue;
        g_run.mnemonic_runs[in->mnemonic]++;
        if (!in->aux)
            g_run.tmpl_runs[in->tmpl]++;
    }
}

/* ---- Tests ----------------------------------------------------------------------------------- */

struct diff_group_state {
    int group;                /* DG_G_*, or DIFF_GROUP_MIXED */
};

static const char *diff_group_name(int group)
{
    return group == DIFF_GROUP_MIXED ? "mixed" : g_dg_group_names[group];
}

static uint64_t diff_group_count(int group)
{
    uint64_t shares = DG_G_COUNT + DIFF_MIXED_SHARES;
    if (g_run.only >= 0 && g_run.count_given)
        return g_run.count;
    uint64_t per = g_run.count / shares;
    if (per == 0)
        per = 1;
    return group == DIFF_GROUP_MIXED ? g_run.count - per * DG_G_COUNT : per;
}

static void test_diff_group(void **state)
{
    const struct diff_group_state *gs = *state;
    int group = gs->group;
    const char *name = diff_group_name(group);
    static uint16_t pool[DG_TMPL_MAX];
    unsigned npool = 0;
    for (unsigned i = 0; i < g_run.gen.ntmpl; i++)
        if (group == DIFF_GROUP_MIXED || g_run.gen.tmpl[i]->grp == group)
            pool[npool++] = (uint16_t)i;
    assert_true(npool > 0);
    /* Every sequence follows from the seed and the group only. */
    dg_rng_seed(&g_run.gen.rng, g_run.seed, (uint64_t)group + 1);
    uint64_t n = diff_group_count(group);
    uint64_t divergences = 0, faults = 0, gen_bad = 0, insns = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char diffs[4096];
    for (uint64_t i = 0; i < n; i++) {
        struct dg_seq *q = &g_run.seq;
        dg_seq_build(&g_run.gen, q, pool, npool, DG_UNITS_MAX);
        if (q->bad) {
            if (gen_bad++ < 4)
                printf("generator error in %s, sequence %" PRIu64 ": %s\n", name, i, q->bad_why);
            continue;
        }
        for (unsigned k = 0; k < q->ninsn; k++) {
            const struct dg_insn *in = &q->insn[k];
            if (!in->aux && in->mnemonic == ZYDIS_MNEMONIC_INVALID &&
                !(g_run.gen.tmpl[in->tmpl]->traits & DG_T_INVALID))
                g_run.tmpl_invalid[in->tmpl]++;
        }
        insns += q->ninsn;
        du_run(&g_run.uc, q, &g_run.res_uc);
        diff_iem_run(q, &g_run.res_iem);
        diff_count_executed(q, &g_run.res_uc);
        if (g_run.res_uc.vector >= 0)
            faults++;
        uint64_t what = diff_compare(q, &g_run.res_uc, &g_run.res_iem, DIFF_W_ALL, diffs, sizeof(diffs));
        if (what == 0)
            continue;
        divergences++;
        if (divergences == 1 || g_run.verbose)
            diff_report(name, (unsigned)i, q, diffs, what, true);
        else if (divergences <= DIFF_REPORT_LINES)
            diff_report_line(name, i, q, what);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("group %-9s %7" PRIu64 " sequences, %8" PRIu64 " instructions, %6" PRIu64 " ending in an exception, %" PRIu64
           " divergences, %.2f s\n",
           name, n, insns, faults, divergences, secs);
    fflush(stdout);
    g_run.tests_done++;
    assert_int_equal(gen_bad, 0);
    assert_int_equal(divergences, 0);
}

/*
 * Mnemonics of the interpreter's tables that a user-mode comparison with Unicorn cannot reach,
 * each with the reason.
 */
static const struct {
    uint16_t mnemonic;
    const char *why;
} g_diff_excluded[] = {
    { ZYDIS_MNEMONIC_DAA, "invalid in 64-bit mode (SDM vol. 2 DAA); the #UD is tested by the fault group" },
    { ZYDIS_MNEMONIC_DAS, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_AAA, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_AAS, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_AAM, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_AAD, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_SALC, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_PUSHA, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_PUSHAD, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_POPA, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_POPAD, "invalid in 64-bit mode" },
    { ZYDIS_MNEMONIC_BOUND, "invalid in 64-bit mode (62 is the EVEX escape there)" },
    { ZYDIS_MNEMONIC_JCXZ, "needs a 16-bit address size, which 64-bit mode does not have" },
    { ZYDIS_MNEMONIC_IN, "port I/O: reaches the VM's devices, which Unicorn does not have" },
    { ZYDIS_MNEMONIC_OUT, "port I/O" },
    { ZYDIS_MNEMONIC_INSB, "port I/O" },
    { ZYDIS_MNEMONIC_INSW, "port I/O" },
    { ZYDIS_MNEMONIC_INSD, "port I/O" },
    { ZYDIS_MNEMONIC_OUTSB, "port I/O" },
    { ZYDIS_MNEMONIC_OUTSW, "port I/O" },
    { ZYDIS_MNEMONIC_OUTSD, "port I/O" },
};

static const char *diff_excluded_why(uint16_t mnemonic)
{
    for (size_t i = 0; i < sizeof(g_diff_excluded) / sizeof(g_diff_excluded[0]); i++)
        if (g_diff_excluded[i].mnemonic == mnemonic)
            return g_diff_excluded[i].why;
    return NULL;
}

static unsigned diff_check_table(const char *table, const struct iem_handler_map *map)
{
    unsigned missing = 0;
    for (; map->fn; map++) {
        if (map->mnemonic > ZYDIS_MNEMONIC_MAX_VALUE || diff_excluded_why(map->mnemonic))
            continue;
        if (g_run.mnemonic_runs[map->mnemonic] == 0) {
            printf("coverage: %s mnemonic %s was never executed\n", table,
                   ZydisMnemonicGetString((ZydisMnemonic)map->mnemonic));
            missing++;
        }
    }
    return missing;
}

static void test_diff_coverage(void **state)
{
    (void)state;
    unsigned bad_tmpl = 0;
    for (unsigned i = 0; i < g_run.gen.ntmpl; i++) {
        if (g_run.tmpl_invalid[i]) {
            printf("generator: template %s produced %" PRIu64 " encodings Zydis rejects\n", g_run.gen.tmpl[i]->name,
                   g_run.tmpl_invalid[i]);
            bad_tmpl++;
        }
    }
    if (!g_run.all_tests_ran) {
        printf("coverage: only checked when every group runs (no --group)\n");
        assert_int_equal(bad_tmpl, 0);
        return;
    }
    unsigned never = 0;
    for (unsigned i = 0; i < g_run.gen.ntmpl; i++) {
        if (g_run.tmpl_runs[i] == 0) {
            printf("coverage: template %s never ran\n", g_run.gen.tmpl[i]->name);
            never++;
        }
    }
    unsigned missing = diff_check_table("g_iem_map_int", g_iem_map_int) + diff_check_table("g_iem_map_simd", g_iem_map_simd);
    printf("coverage: %u templates, %u never ran; %u interpreter mnemonics missed\n", g_run.gen.ntmpl, never, missing);
    assert_int_equal(bad_tmpl, 0);
    assert_int_equal(never, 0);
    assert_int_equal(missing, 0);
}

static int diff_setup(void **state)
{
    (void)state;
    dg_gen_init(&g_run.gen, g_run.seed);
    dg_add_table(&g_run.gen, g_dg_int_tmpls);
    dg_add_table(&g_run.gen, g_dg_simd_tmpls);
    if (du_init(&g_run.uc) != 0) {
        fprintf(stderr, "tstIemDiff: cannot start Unicorn\n");
        return -1;
    }
    g_run.h = iemh_create(0);
    iemh_mode_long64(g_run.h, DG_CODE_BASE, DG_RSP_INIT);
    g_run.h->s->seg[CPU_FS].base = DG_FS_BASE;
    g_run.h->s->seg[CPU_GS].base = DG_GS_BASE;
    iemh_sync(g_run.h);
    return 0;
}

static int diff_teardown(void **state)
{
    (void)state;
    iemh_destroy(g_run.h);
    du_fini(&g_run.uc);
    return 0;
}

static int diff_parse_args(int argc, char **argv)
{
    g_run.seed = DIFF_DEFAULT_SEED;
    g_run.count = DIFF_DEFAULT_COUNT;
    g_run.only = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            g_run.seed = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
            g_run.count = strtoull(argv[++i], NULL, 0);
            g_run.count_given = true;
        } else if (!strcmp(argv[i], "--group") && i + 1 < argc) {
            const char *name = argv[++i];
            for (int gidx = 0; gidx <= DIFF_GROUP_MIXED; gidx++)
                if (!strcmp(name, diff_group_name(gidx)))
                    g_run.only = gidx;
            if (g_run.only < 0) {
                fprintf(stderr, "tstIemDiff: unknown group %s\n", name);
                return -1;
            }
        } else if (!strcmp(argv[i], "--verbose")) {
            g_run.verbose = true;
        } else {
            fprintf(stderr, "usage: tstIemDiff [--seed N] [--count M] [--group NAME] [--verbose]\n");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (diff_parse_args(argc, argv) != 0)
        return 2;
    static struct diff_group_state states[DIFF_GROUP_MIXED + 1];
    static char names[DIFF_GROUP_MIXED + 1][32];
    struct CMUnitTest tests[DIFF_GROUP_MIXED + 2];
    size_t n = 0;
    for (int gidx = 0; gidx <= DIFF_GROUP_MIXED; gidx++) {
        if (g_run.only >= 0 && g_run.only != gidx)
            continue;
        states[gidx].group = gidx;
        snprintf(names[gidx], sizeof(names[gidx]), "test_diff_%s", diff_group_name(gidx));
        tests[n++] = (struct CMUnitTest){ .name = names[gidx], .test_func = test_diff_group,
                                          .initial_state = &states[gidx] };
    }
    g_run.all_tests_ran = g_run.only < 0;
    tests[n++] = (struct CMUnitTest){ .name = "test_diff_coverage", .test_func = test_diff_coverage };
    printf("tstIemDiff: seed %#" PRIx64 ", %" PRIu64 " sequences\n", g_run.seed, g_run.count);
    return _cmocka_run_group_tests("tstIemDiff", tests, n, diff_setup, diff_teardown);
}
