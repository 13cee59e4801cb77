/* iem-int.c - interpreter: the integer family's handler table and its shared memory, LOCK and read-modify-write helpers. */

/*
 * Locked instructions: a LOCK-prefixed read-modify-write (and XCHG with memory, which is
 * always locked) on a naturally aligned operand in guest RAM is one atomic host operation
 * on the host mapping of the guest page (a compare-and-swap loop around the host-computed
 * result), so that other vCPU threads and device DMA see it indivisible.  That is the fast
 * path.  Operands no host atomic can serve (not naturally aligned, where a host atomic
 * could be a split lock, which Linux may turn into SIGBUS and which is undefined behaviour
 * in C; crossing a page; MMIO; a page the TLB will not map for direct writes, because it
 * holds decoded code or a data breakpoint) are read, computed and written while the
 * vCPU holds the VM-wide atomic_lock of the interpreter (iem_int_atomic_begin/end), so such
 * locked operations of all vCPUs are serialised.  Their atomicity holds against each
 * other; an aligned host atomic or a plain store by another vCPU to overlapping bytes is
 * not held off (real processors lock the bus for that, which would mean stopping every
 * vCPU), which no sane guest depends on.
 *
 * The host pointers come from the core's TLB (iem-core.h): an entry with a host address is
 * plain RAM for that access kind (a write entry is never a page holding decoded code), and
 * the write side data names the region to mark dirty, exactly as the core's own fast path
 * does.  REP MOVS/STOS use the same two helpers for their bulk path (iem-int-string.c).
 */

#include <Zydis/Mnemonic.h>

#include "iem-alu.h"
#include "iem-core.h"
#include "iem-int.h"

/* ---- Memory helpers ---------------------------------------------------------------------------- */

uint64_t iem_int_mem_read(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size)
{
    switch (size) {
    case 1: return iem_mem_read8(cpu, seg, off);
    case 2: return iem_mem_read16(cpu, seg, off);
    case 4: return iem_mem_read32(cpu, seg, off);
    default: return iem_mem_read64(cpu, seg, off);
    }
}

void iem_int_mem_write(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size, uint64_t v)
{
    switch (size) {
    case 1: iem_mem_write8(cpu, seg, off, (uint8_t)v); break;
    case 2: iem_mem_write16(cpu, seg, off, (uint16_t)v); break;
    case 4: iem_mem_write32(cpu, seg, off, (uint32_t)v); break;
    default: iem_mem_write64(cpu, seg, off, v); break;
    }
}

uint64_t iem_int_linear(const struct iem_cpu *cpu, unsigned seg, uint64_t off)
{
    if (cpu->mode == IEM_MODE_LONG64)
        return (seg == CPU_FS || seg == CPU_GS) ? cpu->s->seg[seg].base + off : off;
    return (uint32_t)(cpu->s->seg[seg].base + off);
}

uint8_t *iem_int_tlb_ram(struct iem_cpu *cpu, uint64_t linear, int kind)
{
    const struct iem_tlb_entry *e = &cpu->tlb[kind][(linear / IEM_PAGE_SIZE) % IEM_TLB_ENTRIES];
    if (!iem_tlb_direct(iem_core_of(cpu), e, linear))
        return NULL;
    return e->hva + (linear & (IEM_PAGE_SIZE - 1));
}

void iem_int_tlb_dirty(struct iem_cpu *cpu, uint64_t linear, unsigned len)
{
    /* Callers write within the page of linear (iem_int_tlb_ram). */
    (void)len;
    const struct iem_tlb_wside *side = &iem_core_of(cpu)->wside[(linear / IEM_PAGE_SIZE) % IEM_TLB_ENTRIES];
    mem_dirty_word_set(side->dirty_word, side->dirty_bit);
}

void *iem_int_lock_ptr(struct iem_cpu *cpu, unsigned seg, uint64_t off, unsigned size)
{
    uint64_t linear;
    uint8_t *p;

    iem_mem_probe_write(cpu, seg, off, size);
    linear = iem_int_linear(cpu, seg, off);
    if (linear & (size - 1))
        return NULL;
    /* The probe filled the write entry; no host address there means MMIO, ROM or a code page. */
    p = iem_int_tlb_ram(cpu, linear, IEM_ACC_WRITE);
    if (p != NULL)
        iem_int_tlb_dirty(cpu, linear, size); /* before the store, as the core's own direct writes */
    return p;
}

void iem_int_atomic_begin(struct iem_cpu *cpu)
{
    struct iem_core *core = iem_core_of(cpu);
    rt_mutex_lock(&core->ivm->atomic_lock);
    core->atomic_held = true;
    atomic_fetch_add_explicit(&core->ivm->atomic_slow_count, 1, memory_order_relaxed);
}

void iem_int_atomic_end(struct iem_cpu *cpu)
{
    struct iem_core *core = iem_core_of(cpu);
    core->atomic_held = false;
    rt_mutex_unlock(&core->ivm->atomic_lock);
}

uint64_t iem_int_atomic_load(const void *p, unsigned size)
{
    switch (size) {
    case 1: return __atomic_load_n((const uint8_t *)p, __ATOMIC_SEQ_CST);
    case 2: return __atomic_load_n((const uint16_t *)p, __ATOMIC_SEQ_CST);
    case 4: return __atomic_load_n((const uint32_t *)p, __ATOMIC_SEQ_CST);
    default: return __atomic_load_n((const uint64_t *)p, __ATOMIC_SEQ_CST);
    }
}

bool iem_int_atomic_cas(void *p, unsigned size, uint64_t *expected, uint64_t desired)
{
    bool ok;
    switch (size) {
    case 1: {
        uint8_t e = (uint8_t)*expected;
        ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST);
        *expected = e;
        break;
    }
    case 2: {
        uint16_t e = (uint16_t)*expected;
        ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST);
        *expected = e;
        break;
    }
    case 4: {
        uint32_t e = (uint32_t)*expected;
        ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST);
        *expected = e;
        break;
    }
    default:
        ok = __atomic_compare_exchange_n((uint64_t *)p, expected, desired, false, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST);
        break;
    }
    return ok;
}

/* ---- Read-modify-write ----------------------------------------------------------------------------- */

uint64_t iem_int_rmw_at(struct iem_cpu *cpu, const struct iem_insn *in, unsigned seg, uint64_t off,
                        unsigned size, iem_int_rmw_fn *fn, uint64_t b, bool locked)
{
    uint64_t a, r, fl;

    if (locked) {
        void *p = iem_int_lock_ptr(cpu, seg, off, size);
        if (p != NULL) {
            a = iem_int_atomic_load(p, size);
            do {
                fl = cpu->s->rflags;
                r = fn(size, a, b, &fl);
            } while (!iem_int_atomic_cas(p, size, &a, r));
            cpu->s->rflags = fl;
            return a;
        }
        iem_int_atomic_begin(cpu);
        a = iem_int_mem_read(cpu, seg, off, size);
        fl = cpu->s->rflags;
        r = fn(size, a, b, &fl);
        iem_int_mem_write(cpu, seg, off, size, r);
        iem_int_atomic_end(cpu);
        cpu->s->rflags = fl;
        return a;
    }
    a = iem_int_mem_read(cpu, seg, off, size);
    fl = cpu->s->rflags;
    r = fn(size, a, b, &fl);
    iem_int_mem_write(cpu, seg, off, size, r);
    cpu->s->rflags = fl;
    return a;
}

uint64_t iem_int_rmw(struct iem_cpu *cpu, const struct iem_insn *in, iem_int_rmw_fn *fn, uint64_t b,
                     bool always_locked)
{
    unsigned size = in->op[0].size;
    uint64_t a, r, fl;

    if (in->op[0].kind == IEM_OPK_MEM)
        return iem_int_rmw_at(cpu, in, in->mem.seg, iem_ea(cpu, in), size, fn, b,
                              always_locked || (in->prefixes & IEM_PFX_LOCK));
    /* SDM vol. 2A, LOCK: #UD when the destination is not a memory operand. */
    if (in->prefixes & IEM_PFX_LOCK)
        iem_raise_ud(cpu);
    a = iem_op_read(cpu, in, 0);
    fl = cpu->s->rflags;
    r = fn(size, a, b, &fl);
    iem_op_write(cpu, in, 0, r);
    cpu->s->rflags = fl;
    return a;
}

/* ---- The table ------------------------------------------------------------------------------------- */

#define INT_MAP(mn, fn) { ZYDIS_MNEMONIC_##mn, fn }

const struct iem_handler_map g_iem_map_int[] = {
    /* iem-int-alu.c */
    INT_MAP(ADD, iem_int_add), INT_MAP(OR, iem_int_or), INT_MAP(ADC, iem_int_adc), INT_MAP(SBB, iem_int_sbb),
    INT_MAP(AND, iem_int_and), INT_MAP(SUB, iem_int_sub), INT_MAP(XOR, iem_int_xor), INT_MAP(CMP, iem_int_cmp),
    INT_MAP(TEST, iem_int_test),
    INT_MAP(INC, iem_int_inc), INT_MAP(DEC, iem_int_dec), INT_MAP(NEG, iem_int_neg), INT_MAP(NOT, iem_int_not),
    INT_MAP(SHL, iem_int_shl), INT_MAP(SHR, iem_int_shr), INT_MAP(SAR, iem_int_sar), INT_MAP(ROL, iem_int_rol),
    INT_MAP(ROR, iem_int_ror), INT_MAP(RCL, iem_int_rcl), INT_MAP(RCR, iem_int_rcr),
    INT_MAP(SHLD, iem_int_alu_dshift), INT_MAP(SHRD, iem_int_alu_dshift),
    INT_MAP(MUL, iem_int_alu_muldiv), INT_MAP(DIV, iem_int_alu_muldiv), INT_MAP(IDIV, iem_int_alu_muldiv),
    INT_MAP(IMUL, iem_int_alu_imul),
    INT_MAP(BT, iem_int_alu_bittest), INT_MAP(BTS, iem_int_alu_bittest), INT_MAP(BTR, iem_int_alu_bittest),
    INT_MAP(BTC, iem_int_alu_bittest),
    INT_MAP(BSF, iem_int_alu_bitscan), INT_MAP(BSR, iem_int_alu_bitscan), INT_MAP(POPCNT, iem_int_alu_bitscan),
    INT_MAP(LZCNT, iem_int_alu_bitscan), INT_MAP(TZCNT, iem_int_alu_bitscan),
    INT_MAP(CBW, iem_int_alu_convert), INT_MAP(CWDE, iem_int_alu_convert), INT_MAP(CDQE, iem_int_alu_convert),
    INT_MAP(CWD, iem_int_alu_convert), INT_MAP(CDQ, iem_int_alu_convert), INT_MAP(CQO, iem_int_alu_convert),
    INT_MAP(CLC, iem_int_alu_flagop), INT_MAP(STC, iem_int_alu_flagop), INT_MAP(CMC, iem_int_alu_flagop),
    INT_MAP(CLD, iem_int_alu_flagop), INT_MAP(STD, iem_int_alu_flagop), INT_MAP(LAHF, iem_int_alu_flagop),
    INT_MAP(SAHF, iem_int_alu_flagop), INT_MAP(SALC, iem_int_alu_flagop),
    INT_MAP(SETO, iem_int_alu_setcc), INT_MAP(SETNO, iem_int_alu_setcc), INT_MAP(SETB, iem_int_alu_setcc),
    INT_MAP(SETNB, iem_int_alu_setcc), INT_MAP(SETZ, iem_int_alu_setcc), INT_MAP(SETNZ, iem_int_alu_setcc),
    INT_MAP(SETBE, iem_int_alu_setcc), INT_MAP(SETNBE, iem_int_alu_setcc), INT_MAP(SETS, iem_int_alu_setcc),
    INT_MAP(SETNS, iem_int_alu_setcc), INT_MAP(SETP, iem_int_alu_setcc), INT_MAP(SETNP, iem_int_alu_setcc),
    INT_MAP(SETL, iem_int_alu_setcc), INT_MAP(SETNL, iem_int_alu_setcc), INT_MAP(SETLE, iem_int_alu_setcc),
    INT_MAP(SETNLE, iem_int_alu_setcc),
    INT_MAP(CMOVO, iem_int_alu_cmovcc), INT_MAP(CMOVNO, iem_int_alu_cmovcc), INT_MAP(CMOVB, iem_int_alu_cmovcc),
    INT_MAP(CMOVNB, iem_int_alu_cmovcc), INT_MAP(CMOVZ, iem_int_alu_cmovcc), INT_MAP(CMOVNZ, iem_int_alu_cmovcc),
    INT_MAP(CMOVBE, iem_int_alu_cmovcc), INT_MAP(CMOVNBE, iem_int_alu_cmovcc), INT_MAP(CMOVS, iem_int_alu_cmovcc),
    INT_MAP(CMOVNS, iem_int_alu_cmovcc), INT_MAP(CMOVP, iem_int_alu_cmovcc), INT_MAP(CMOVNP, iem_int_alu_cmovcc),
    INT_MAP(CMOVL, iem_int_alu_cmovcc), INT_MAP(CMOVNL, iem_int_alu_cmovcc), INT_MAP(CMOVLE, iem_int_alu_cmovcc),
    INT_MAP(CMOVNLE, iem_int_alu_cmovcc),
    INT_MAP(DAA, iem_int_alu_bcd), INT_MAP(DAS, iem_int_alu_bcd), INT_MAP(AAA, iem_int_alu_bcd),
    INT_MAP(AAS, iem_int_alu_bcd), INT_MAP(AAM, iem_int_alu_bcd), INT_MAP(AAD, iem_int_alu_bcd),
    /* iem-int-move.c */
    INT_MAP(MOV, iem_int_mov), INT_MAP(MOVZX, iem_int_movx), INT_MAP(MOVSX, iem_int_movx),
    INT_MAP(MOVSXD, iem_int_movx), INT_MAP(MOVBE, iem_int_movbe), INT_MAP(LEA, iem_int_lea),
    INT_MAP(XCHG, iem_int_xchg), INT_MAP(XADD, iem_int_xadd), INT_MAP(CMPXCHG, iem_int_cmpxchg),
    INT_MAP(CMPXCHG8B, iem_int_cmpxchg8b), INT_MAP(CMPXCHG16B, iem_int_cmpxchg8b),
    INT_MAP(BSWAP, iem_int_bswap), INT_MAP(XLAT, iem_int_xlat), INT_MAP(NOP, iem_int_nop),
    /* Cache hints never fault and change nothing architectural (SDM PREFETCHh, PREFETCHW; the
     * decoder lets 0F 0D through as the multi-byte hint NOP processors execute it as). */
    INT_MAP(PREFETCHT0, iem_int_nop), INT_MAP(PREFETCHT1, iem_int_nop), INT_MAP(PREFETCHT2, iem_int_nop),
    INT_MAP(PREFETCHNTA, iem_int_nop), INT_MAP(PREFETCH, iem_int_nop), INT_MAP(PREFETCHW, iem_int_nop),
    /* iem-int-stack.c */
    INT_MAP(PUSH, iem_int_push), INT_MAP(POP, iem_int_pop), INT_MAP(PUSHA, iem_int_pusha),
    INT_MAP(PUSHAD, iem_int_pusha), INT_MAP(POPA, iem_int_popa), INT_MAP(POPAD, iem_int_popa),
    INT_MAP(ENTER, iem_int_enter), INT_MAP(LEAVE, iem_int_leave),
    /* iem-int-branch.c */
    INT_MAP(JO, iem_int_jcc), INT_MAP(JNO, iem_int_jcc), INT_MAP(JB, iem_int_jcc), INT_MAP(JNB, iem_int_jcc),
    INT_MAP(JZ, iem_int_jcc), INT_MAP(JNZ, iem_int_jcc), INT_MAP(JBE, iem_int_jcc), INT_MAP(JNBE, iem_int_jcc),
    INT_MAP(JS, iem_int_jcc), INT_MAP(JNS, iem_int_jcc), INT_MAP(JP, iem_int_jcc), INT_MAP(JNP, iem_int_jcc),
    INT_MAP(JL, iem_int_jcc), INT_MAP(JNL, iem_int_jcc), INT_MAP(JLE, iem_int_jcc), INT_MAP(JNLE, iem_int_jcc),
    INT_MAP(JMP, iem_int_jmp), INT_MAP(CALL, iem_int_call), INT_MAP(RET, iem_int_ret),
    INT_MAP(JCXZ, iem_int_jcxz), INT_MAP(JECXZ, iem_int_jcxz), INT_MAP(JRCXZ, iem_int_jcxz),
    INT_MAP(LOOP, iem_int_loop), INT_MAP(LOOPE, iem_int_loop), INT_MAP(LOOPNE, iem_int_loop),
    INT_MAP(BOUND, iem_int_bound),
    /* iem-int-string.c */
    INT_MAP(MOVSB, iem_int_movs), INT_MAP(MOVSW, iem_int_movs), INT_MAP(MOVSD, iem_int_movs),
    INT_MAP(MOVSQ, iem_int_movs),
    INT_MAP(CMPSB, iem_int_cmps), INT_MAP(CMPSW, iem_int_cmps), INT_MAP(CMPSD, iem_int_cmps),
    INT_MAP(CMPSQ, iem_int_cmps),
    INT_MAP(SCASB, iem_int_scas), INT_MAP(SCASW, iem_int_scas), INT_MAP(SCASD, iem_int_scas),
    INT_MAP(SCASQ, iem_int_scas),
    INT_MAP(LODSB, iem_int_lods), INT_MAP(LODSW, iem_int_lods), INT_MAP(LODSD, iem_int_lods),
    INT_MAP(LODSQ, iem_int_lods),
    INT_MAP(STOSB, iem_int_stos), INT_MAP(STOSW, iem_int_stos), INT_MAP(STOSD, iem_int_stos),
    INT_MAP(STOSQ, iem_int_stos),
    INT_MAP(INSB, iem_int_ins), INT_MAP(INSW, iem_int_ins), INT_MAP(INSD, iem_int_ins),
    INT_MAP(OUTSB, iem_int_outs), INT_MAP(OUTSW, iem_int_outs), INT_MAP(OUTSD, iem_int_outs),
    INT_MAP(IN, iem_int_in), INT_MAP(OUT, iem_int_out),
    { 0, NULL },
};
