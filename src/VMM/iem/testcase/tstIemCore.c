/* tstIemCore.c - unit tests of the interpreter core: decoding, fetch faults, page walker and TLB, segmentation, MMIO, self-modifying code. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "harness.h"
#include "../iem-core.h"
#include "../../rec/rec-internal.h"

/* ---- helpers --------------------------------------------------------------------- */

struct acc {
    unsigned seg;
    uint64_t addr;
    unsigned size;
    uint64_t value;
    unsigned flags;
    int kind;
};

static void do_lin_read(struct iem_cpu *cpu, void *arg)
{
    struct acc *a = arg;
    a->value = iem_lin_read(cpu, a->addr, a->size, a->flags);
}

static void do_lin_write(struct iem_cpu *cpu, void *arg)
{
    struct acc *a = arg;
    iem_lin_write(cpu, a->addr, a->size, a->value, a->flags);
}

static void do_translate(struct iem_cpu *cpu, void *arg)
{
    struct acc *a = arg;
    a->value = iem_core_lin_to_gpa(cpu, a->addr, a->kind, a->flags);
}

static void do_mem_read(struct iem_cpu *cpu, void *arg)
{
    struct acc *a = arg;
    switch (a->size) {
    case 1:
        a->value = iem_mem_read8(cpu, a->seg, a->addr);
        break;
    case 2:
        a->value = iem_mem_read16(cpu, a->seg, a->addr);
        break;
    case 4:
        a->value = iem_mem_read32(cpu, a->seg, a->addr);
        break;
    default:
        a->value = iem_mem_read64(cpu, a->seg, a->addr);
        break;
    }
}

static void do_mem_write(struct iem_cpu *cpu, void *arg)
{
    struct acc *a = arg;
    switch (a->size) {
    case 1:
        iem_mem_write8(cpu, a->seg, a->addr, (uint8_t)a->value);
        break;
    case 2:
        iem_mem_write16(cpu, a->seg, a->addr, (uint16_t)a->value);
        break;
    case 4:
        iem_mem_write32(cpu, a->seg, a->addr, (uint32_t)a->value);
        break;
    default:
        iem_mem_write64(cpu, a->seg, a->addr, a->value);
        break;
    }
}

/* Runs an access; returns -1 or the vector. */
static int lin_read(struct iemh *h, uint64_t lin, unsigned size, uint64_t *out)
{
    struct acc a = { .addr = lin, .size = size };
    int v = iemh_try(h, do_lin_read, &a);
    if (out)
        *out = a.value;
    return v;
}

static int lin_write(struct iemh *h, uint64_t lin, unsigned size, uint64_t value)
{
    struct acc a = { .addr = lin, .size = size, .value = value };
    return iemh_try(h, do_lin_write, &a);
}

static int mem_rd(struct iemh *h, unsigned seg, uint64_t off, unsigned size, uint64_t *out)
{
    struct acc a = { .seg = seg, .addr = off, .size = size };
    int v = iemh_try(h, do_mem_read, &a);
    if (out)
        *out = a.value;
    return v;
}

static int mem_wr(struct iemh *h, unsigned seg, uint64_t off, unsigned size, uint64_t value)
{
    struct acc a = { .seg = seg, .addr = off, .size = size, .value = value };
    return iemh_try(h, do_mem_write, &a);
}

/* A 4-level page-table builder on guest RAM from a bump area. */
struct pt {
    struct iemh *h;
    uint64_t next;
    uint64_t root;
};

#define PT_AREA 0x200000u
#define F_P 0x1ull
#define F_RW 0x2ull
#define F_US 0x4ull
#define F_A 0x20ull
#define F_D 0x40ull
#define F_PS 0x80ull
#define F_G 0x100ull
#define F_XD (1ull << 63)

static uint64_t *ram64(struct iemh *h, uint64_t gpa)
{
    return (uint64_t *)(h->ram + gpa);
}

static uint32_t *ram32(struct iemh *h, uint64_t gpa)
{
    return (uint32_t *)(h->ram + gpa);
}

static uint64_t pt_new(struct pt *p)
{
    uint64_t a = p->next;
    p->next += 0x1000;
    memset(p->h->ram + a, 0, 0x1000);
    return a;
}

static void pt_init(struct pt *p, struct iemh *h)
{
    p->h = h;
    p->next = PT_AREA;
    p->root = pt_new(p);
}

/* Maps lin -> gpa with leaf flags; intermediate entries get upper flags. Returns the leaf entry. */
static uint64_t *pt_map(struct pt *p, uint64_t lin, uint64_t gpa, uint64_t flags, uint64_t upper)
{
    uint64_t table = p->root;
    for (int level = 4; level > 1; level--) {
        uint64_t *e = ram64(p->h, table + ((lin >> (12 + 9 * (level - 1))) & 511) * 8);
        if (!(*e & F_P))
            *e = pt_new(p) | upper;
        table = *e & 0xffffffffff000ull;
    }
    uint64_t *leaf = ram64(p->h, table + ((lin >> 12) & 511) * 8);
    *leaf = gpa | flags;
    return leaf;
}

/* The entry at a level (4 = PML4E .. 1 = PTE) on lin's path. */
static uint64_t *pt_entry(struct pt *p, uint64_t lin, int want)
{
    uint64_t table = p->root;
    for (int level = 4; level >= 1; level--) {
        uint64_t *e = ram64(p->h, table + ((lin >> (12 + 9 * (level - 1))) & 511) * 8);
        if (level == want)
            return e;
        table = *e & 0xffffffffff000ull;
    }
    return NULL;
}

/* Long mode on hand-built tables: code page 0x20000 identity mapped. */
static struct iemh *long_with_pt(struct pt *p)
{
    struct iemh *h = iemh_create(16u << 20);
    iemh_mode_long64(h, IEMH_FREE_GPA, 0);
    pt_init(p, h);
    pt_map(p, IEMH_FREE_GPA, IEMH_FREE_GPA, F_P | F_RW, F_P | F_RW | F_US);
    h->s->cr3 = p->root;
    iemh_sync(h);
    return h;
}

static void set_cpl3(struct iemh *h)
{
    h->s->seg[CPU_CS].sel = IEMH_SEL_CODE64_3;
    h->s->seg[CPU_CS].attr |= 3u << CPU_SEG_ATTR_DPL_SHIFT;
    h->s->seg[CPU_SS].sel = IEMH_SEL_DATA32_3;
    h->s->seg[CPU_SS].attr |= 3u << CPU_SEG_ATTR_DPL_SHIFT;
    iemh_sync(h);
}

/* ---- decoding ------------------------------------------------------------------------ */

static void decode(unsigned zmode, const char *hex, struct iem_insn *in, bool *ends, int expect_rc)
{
    uint8_t b[32];
    size_t n = 0;
    for (const char *p = hex; p[0] && p[1] && n < sizeof(b); p += 2) {
        unsigned v;
        assert_int_equal(sscanf(p, "%2x", &v), 1);
        b[n++] = (uint8_t)v;
    }
    assert_int_equal(iem_decode_one(zmode, b, n, in, ends), expect_rc);
}

static void test_decode_operands_64(void **state)
{
    struct iem_insn in;
    bool ends;

    /* mov rax, [rax + rcx*4 + 0x12345678] */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "488b848878563412", &in, &ends, 0);
    assert_int_equal(in.mnemonic, ZYDIS_MNEMONIC_MOV);
    assert_int_equal(in.len, 8);
    assert_int_equal(in.opsize, 8);
    assert_int_equal(in.addrsize, 8);
    assert_int_equal(in.nops, 2);
    assert_int_equal(in.op[0].kind, IEM_OPK_GPR);
    assert_int_equal(in.op[0].reg, CPU_RAX);
    assert_int_equal(in.op[0].size, 8);
    assert_int_equal(in.op[1].kind, IEM_OPK_MEM);
    assert_int_equal(in.op[1].size, 8);
    assert_int_equal(in.mem.seg, CPU_DS);
    assert_int_equal(in.mem.base, CPU_RAX);
    assert_int_equal(in.mem.index, CPU_RCX);
    assert_int_equal(in.mem.scale, 4);
    assert_int_equal(in.mem.disp, 0x12345678);
    assert_false(in.mem.rip_rel);
    assert_true(in.prefixes & IEM_PFX_REX);
    assert_false(ends);
    assert_false(iem_decode_is_fault(&in));

    /* mov eax, [rip + 0x1000] */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "8b0500100000", &in, &ends, 0);
    assert_true(in.mem.rip_rel);
    assert_int_equal(in.mem.base, IEM_NOREG);
    assert_int_equal(in.mem.disp, 0x1000);
    assert_int_equal(in.op[0].size, 4);

    /* mov rax, gs:[0x28] */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "65488b042528000000", &in, &ends, 0);
    assert_int_equal(in.mem.seg, CPU_GS);
    assert_int_equal(in.mem.base, IEM_NOREG);
    assert_int_equal(in.mem.index, IEM_NOREG);
    assert_int_equal(in.mem.disp, 0x28);

    /* add eax, -1: the imm8 is sign-extended to the 32-bit operand size */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "83c0ff", &in, &ends, 0);
    assert_int_equal(in.op[1].kind, IEM_OPK_IMM);
    assert_int_equal(in.op[1].size, 4);
    assert_int_equal(in.imm, 0xffffffffu);
    assert_int_equal(in.modrm_reg, 0);
    assert_int_equal(in.opcode, 0x83);

    /* push -128: 64-bit operand size */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "6a80", &in, &ends, 0);
    assert_int_equal(in.opsize, 8);
    assert_int_equal(in.imm, 0xffffffffffffff80ull);

    /* in al, 0x60: unsigned imm8, byte operand size */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "e460", &in, &ends, 0);
    assert_int_equal(in.opsize, 1);
    assert_int_equal(in.op[0].kind, IEM_OPK_GPR);
    assert_int_equal(in.op[1].kind, IEM_OPK_IMM);
    assert_int_equal(in.op[1].size, 1);
    assert_int_equal(in.imm, 0x60);
    assert_true(ends);

    /* movzx eax, ah  and  movzx eax, spl (REX) */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "0fb6c4", &in, &ends, 0);
    assert_int_equal(in.op[1].reg, IEM_GPR_AH);
    decode(ZYDIS_MACHINE_MODE_LONG_64, "400fb6c4", &in, &ends, 0);
    assert_int_equal(in.op[1].reg, CPU_RSP);
    assert_int_equal(in.op[1].size, 1);

    /* mov r9, cr3-style registers: mov cr3, rax ends the block */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "0f22d8", &in, &ends, 0);
    assert_int_equal(in.op[0].kind, IEM_OPK_CR);
    assert_int_equal(in.op[0].reg, 3);
    assert_true(ends);

    /* movdqa xmm0, xmm9 */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "66410f6fc1", &in, &ends, 0);
    assert_int_equal(in.op[0].kind, IEM_OPK_XMM);
    assert_int_equal(in.op[1].reg, 9);
    assert_int_equal(in.op[1].size, 16);
    assert_true(in.prefixes & IEM_PFX_OPSZ);
}

static void test_decode_modes_16_32(void **state)
{
    struct iem_insn in;
    bool ends;

    /* 16-bit: mov ax, [bp+2] defaults to SS */
    decode(ZYDIS_MACHINE_MODE_REAL_16, "8b4602", &in, &ends, 0);
    assert_int_equal(in.addrsize, 2);
    assert_int_equal(in.opsize, 2);
    assert_int_equal(in.mem.seg, CPU_SS);
    assert_int_equal(in.mem.base, CPU_RBP);
    assert_int_equal(in.mem.disp, 2);

    /* 16-bit: mov ax, [bx+si] */
    decode(ZYDIS_MACHINE_MODE_REAL_16, "8b00", &in, &ends, 0);
    assert_int_equal(in.mem.base, CPU_RBX);
    assert_int_equal(in.mem.index, CPU_RSI);

    /* 32-bit call far 0x10:0x12345678 */
    decode(ZYDIS_MACHINE_MODE_LEGACY_32, "9a785634121000", &in, &ends, 0);
    assert_int_equal(in.op[0].kind, IEM_OPK_PTR);
    assert_int_equal(in.imm, 0x12345678);
    assert_int_equal(in.imm2, 0x10);
    assert_true(ends);

    /* es movsb: the overridable source side; stosb: ES:EDI */
    decode(ZYDIS_MACHINE_MODE_LEGACY_32, "26a4", &in, &ends, 0);
    assert_int_equal(in.mnemonic, ZYDIS_MNEMONIC_MOVSB);
    assert_int_equal(in.opsize, 1);
    assert_int_equal(in.mem.seg, CPU_ES);
    assert_int_equal(in.mem.base, CPU_RSI);
    assert_int_equal(in.nops, 0);
    decode(ZYDIS_MACHINE_MODE_LEGACY_32, "f3aa", &in, &ends, 0);
    assert_int_equal(in.mem.seg, CPU_ES);
    assert_int_equal(in.mem.base, CPU_RDI);
    assert_true(in.prefixes & IEM_PFX_REP);
    /* a16 o32 movsd in 16-bit code */
    decode(ZYDIS_MACHINE_MODE_REAL_16, "6766a5", &in, &ends, 0);
    assert_int_equal(in.opsize, 4);
    assert_int_equal(in.addrsize, 4);

    /* mov eax, cr0 in 16-bit code; mov ss, ax ends the block (interrupt shadow) */
    decode(ZYDIS_MACHINE_MODE_REAL_16, "0f20c0", &in, &ends, 0);
    assert_int_equal(in.op[1].kind, IEM_OPK_CR);
    decode(ZYDIS_MACHINE_MODE_REAL_16, "8ed0", &in, &ends, 0);
    assert_int_equal(in.op[0].kind, IEM_OPK_SEG);
    assert_int_equal(in.op[0].reg, CPU_SS);
    assert_true(ends);
    decode(ZYDIS_MACHINE_MODE_REAL_16, "8ed8", &in, &ends, 0);
    assert_false(ends);
    decode(ZYDIS_MACHINE_MODE_REAL_16, "01c0", &in, &ends, 0);
    assert_false(ends);
}

static void test_decode_conditions(void **state)
{
    struct iem_insn in;
    bool ends;

    decode(ZYDIS_MACHINE_MODE_LONG_64, "7f02", &in, &ends, 0);
    assert_int_equal(in.op[0].kind, IEM_OPK_REL);
    assert_int_equal(in.imm, 2);
    assert_int_equal(in.cond, 15);
    assert_false(ends); /* a conditional branch not taken runs on inside its block */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "ebfe", &in, &ends, 0);
    assert_int_equal(in.imm, (uint64_t)-2);
    assert_true(ends);
    decode(ZYDIS_MACHINE_MODE_LONG_64, "0f8400010000", &in, &ends, 0);
    assert_int_equal(in.cond, 4);
    assert_int_equal(in.imm, 0x100);
    decode(ZYDIS_MACHINE_MODE_LONG_64, "0f94c0", &in, &ends, 0);
    assert_int_equal(in.cond, 4);
    decode(ZYDIS_MACHINE_MODE_LONG_64, "0f4cc1", &in, &ends, 0);
    assert_int_equal(in.cond, 12);
    decode(ZYDIS_MACHINE_MODE_LONG_64, "dac1", &in, &ends, 0); /* fcmovb */
    assert_int_equal(in.cond, 2);
    decode(ZYDIS_MACHINE_MODE_LONG_64, "dbd9", &in, &ends, 0); /* fcmovnu */
    assert_int_equal(in.cond, 11);

    /* enter 0x10, 1: two immediates */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "c8100001", &in, &ends, 0);
    assert_int_equal(in.imm, 0x10);
    assert_int_equal(in.imm2, 1);
    assert_int_equal(in.op[0].reg, 0);
    assert_int_equal(in.op[1].reg, 1);
    assert_false(ends);
}

static void test_decode_invalid(void **state)
{
    struct iem_insn in;
    bool ends;

    /* LOCK on a register destination */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "f001c0", &in, &ends, VERR_NOT_FOUND);
    assert_true(iem_decode_is_fault(&in));
    assert_true(ends);
    /* AVX (not advertised) and RDRAND (not advertised): #UD */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "c5f877", &in, &ends, 0);
    assert_true(iem_decode_is_fault(&in));
    decode(ZYDIS_MACHINE_MODE_LONG_64, "0fc7f0", &in, &ends, 0);
    assert_true(iem_decode_is_fault(&in));
    /* 16 bytes of prefixes: too long */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "6666666666666666666666666666666690", &in, &ends, VERR_NOT_FOUND);
    assert_true(iem_decode_is_fault(&in));
    /* Without BMI1, F3 0F BC is BSF; LZCNT is advertised */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "f30fbcc0", &in, &ends, 0);
    assert_int_equal(in.mnemonic, ZYDIS_MNEMONIC_BSF);
    decode(ZYDIS_MACHINE_MODE_LONG_64, "f30fbdc0", &in, &ends, 0);
    assert_int_equal(in.mnemonic, ZYDIS_MNEMONIC_LZCNT);
    /* ENDBR64 is a hint NOP on a processor without CET */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "f30f1efa", &in, &ends, 0);
    assert_int_equal(in.mnemonic, ZYDIS_MNEMONIC_NOP);
    /* A truncated instruction does not decode */
    decode(ZYDIS_MACHINE_MODE_LONG_64, "8b05", &in, &ends, VERR_NOT_FOUND);
}

/* ---- fetch and execution ------------------------------------------------------------- */

static void test_fetch_ud_real_mode(void **state)
{
    struct iemh *h = iemh_create(0);
    struct iem_step_result r;
    iemh_mode_real(h, 0x0700, 0x0c00, 0, 0x7000);
    static const uint8_t ud2[] = { 0x0f, 0x0b };
    iemh_exec(h, 0x7c00, ud2, sizeof(ud2), 10, &r);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(r.executed, 0);
    assert_int_equal(h->s->rip, 0x0c00);

    /* An instruction running past the CS limit (IP 0xffff, limit 0xffff): #GP(0) */
    static const uint8_t mov[] = { 0xb8 };
    h->s->seg[CPU_CS].sel = 0;
    h->s->seg[CPU_CS].base = 0;
    iemh_sync(h);
    iemh_exec(h, 0xffff, mov, sizeof(mov), 10, &r);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, 0);
    assert_int_equal(h->s->rip, 0xffff);
    iemh_destroy(h);
}

static void test_fetch_page_faults(void **state)
{
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    struct iem_step_result r;

    /* A 5-byte MOV whose last bytes lie on the next, unmapped page: #PF at the page boundary, RIP unchanged. */
    uint64_t code = 0x400000;
    pt_map(&p, code, 0x30000, F_P | F_RW, F_P | F_RW | F_US);
    static const uint8_t mov[] = { 0xb8, 0x11, 0x22 };
    iemh_write(h, 0x30000 + 0xffd, mov, sizeof(mov));
    h->s->rip = code + 0xffd;
    iemh_sync(h);
    iemh_run(h, 10, &r);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_PF);
    assert_int_equal(r.cr2, code + 0x1000);
    assert_int_equal(r.error, 0x10); /* not present, read, supervisor, instruction fetch (NXE) */
    assert_int_equal(h->s->rip, code + 0xffd);

    /* Execute-disable page: protection fault with I/D */
    pt_map(&p, 0x500000, 0x31000, F_P | F_RW | F_XD, F_P | F_RW | F_US);
    h->s->rip = 0x500000;
    iemh_sync(h);
    iemh_run(h, 10, &r);
    assert_int_equal(r.vector, IEM_X_PF);
    assert_int_equal(r.error, 0x11);
    assert_int_equal(r.cr2, 0x500000);

    /* User fetch from a supervisor page */
    pt_map(&p, 0x600000, 0x32000, F_P | F_RW, F_P | F_RW | F_US);
    set_cpl3(h);
    h->s->rip = 0x600000;
    iemh_run(h, 10, &r);
    assert_int_equal(r.vector, IEM_X_PF);
    assert_int_equal(r.error, 0x15);

    /* Non-canonical RIP: #GP(0) */
    h->s->rip = 0x0000800000000000ull;
    iemh_run(h, 10, &r);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, 0);
    iemh_destroy(h);
}

static void test_step_hlt(void **state)
{
    struct iemh *h = iemh_create(0);
    struct iem_step_result r;
    iemh_mode_prot32(h, 0, 0x8000);
    static const uint8_t code[] = { 0x90, 0x90, 0xf4, 0x0f, 0x0b }; /* nop; nop; hlt; ud2 */
    iemh_exec(h, IEMH_FREE_GPA, code, sizeof(code), 100, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(r.executed, 3);
    assert_int_equal(h->s->rip, IEMH_FREE_GPA + 3);
    assert_true(h->s->halted);

    /* A limit stops early */
    iemh_exec(h, IEMH_FREE_GPA, code, sizeof(code), 2, &r);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(r.executed, 2);
    assert_int_equal(h->s->rip, IEMH_FREE_GPA + 2);
    iemh_destroy(h);
}

static void test_single_step_trap(void **state)
{
    struct iemh *h = iemh_create(0);
    struct iem_step_result r;
    iemh_mode_long64(h, 0, 0x8000);
    h->s->rflags |= IEM_F_TF;
    iemh_sync(h);
    static const uint8_t code[] = { 0x90, 0x90, 0xf4 };
    iemh_exec(h, IEMH_FREE_GPA, code, sizeof(code), 100, &r);
    /* The #DB trap comes after the first instruction, with RIP past it and DR6.BS set. */
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_DB);
    assert_int_equal(r.executed, 1);
    assert_int_equal(h->s->rip, IEMH_FREE_GPA + 1);
    assert_true(h->s->dr[6] & (1u << 14));
    iemh_destroy(h);
}

/* ---- paging ---------------------------------------------------------------------------- */

static void test_paging_4level_ad(void **state)
{
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    uint64_t v;
    uint64_t *pte = pt_map(&p, 0x7fff00001000ull, 0x40000, F_P | F_RW, F_P | F_RW);
    *ram64(h, 0x40010) = 0x1122334455667788ull;

    assert_int_equal(lin_read(h, 0x7fff00001010ull, 8, &v), -1);
    assert_int_equal(v, 0x1122334455667788ull);
    for (int level = 4; level >= 1; level--)
        assert_true(*pt_entry(&p, 0x7fff00001000ull, level) & F_A);
    assert_false(*pte & F_D);

    assert_int_equal(lin_write(h, 0x7fff00001018ull, 4, 0xdeadbeef), -1);
    assert_true(*pte & F_D);
    assert_int_equal(*ram32(h, 0x40018), 0xdeadbeef);
    /* Intermediate entries never get D. */
    assert_false(*pt_entry(&p, 0x7fff00001000ull, 2) & F_D);

    /* A 2 MiB page: A and D land in the PDE. */
    uint64_t *pde = pt_entry(&p, 0x7fff00001000ull, 2);
    uint64_t *pd = pde - ((0x7fff00001000ull >> 21) & 511);
    pd[5] = 0x600000 | F_P | F_RW | F_PS;
    uint64_t lin2m = (0x7fff00001000ull & ~0x3fffffffull) | (5ull << 21) | 0x1234;
    assert_int_equal(lin_write(h, lin2m, 2, 0xabcd), -1);
    assert_true(pd[5] & F_A);
    assert_true(pd[5] & F_D);
    assert_int_equal(*(uint16_t *)(h->ram + 0x601234), 0xabcd);
    iemh_destroy(h);
}

static void test_paging_fault_codes(void **state)
{
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    uint64_t v;

    /* Not present: read 0, write W; CR2 = the address. */
    assert_int_equal(lin_read(h, 0x900123, 4, &v), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0);
    assert_int_equal(h->cpu->fault_cr2, 0x900123);
    assert_int_equal(lin_write(h, 0x900000, 1, 1), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 2);

    /* Read-only page: supervisor write faults with CR0.WP, succeeds without. */
    uint64_t *ro = pt_map(&p, 0x901000, 0x41000, F_P, F_P | F_RW | F_US);
    assert_int_equal(lin_read(h, 0x901000, 4, &v), -1);
    assert_int_equal(lin_write(h, 0x901000, 4, 7), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 3);
    assert_false(*ro & F_D); /* a faulting write sets no dirty bit */
    h->s->cr0 &= ~(uint64_t)IEM_CR0_WP;
    iemh_sync(h);
    assert_int_equal(lin_write(h, 0x901000, 4, 7), -1);
    assert_int_equal(*ram32(h, 0x41000), 7);
    h->s->cr0 |= IEM_CR0_WP;
    iemh_sync(h);

    /* Supervisor page, user access: P|U; implicit supervisor accesses (IEM_ACC_SYS) pass. */
    pt_map(&p, 0x902000, 0x42000, F_P | F_RW, F_P | F_RW | F_US);
    pt_map(&p, 0x903000, 0x43000, F_P | F_US, F_P | F_RW | F_US);
    set_cpl3(h);
    assert_int_equal(lin_read(h, 0x902000, 4, &v), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 5);
    struct acc a = { .addr = 0x902000, .size = 4, .flags = IEM_ACC_SYS };
    assert_int_equal(iemh_try(h, do_lin_read, &a), -1);
    /* User write to a user read-only page: P|W|U even without WP. */
    assert_int_equal(lin_read(h, 0x903000, 4, &v), -1);
    assert_int_equal(lin_write(h, 0x903000, 4, 1), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 7);
    /* An intermediate entry without U/S makes the whole range supervisor. */
    pt_map(&p, 0xa00000, 0x44000, F_P | F_RW | F_US, F_P | F_RW);
    assert_int_equal(lin_read(h, 0xa00000, 4, &v), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 5);
    iemh_destroy(h);
}

static void test_paging_reserved_bits(void **state)
{
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    uint64_t v;

    /* PTE bit 45 is above MAXPHYADDR: P|RSVD (and W for a write). */
    pt_map(&p, 0xb00000, 0x45000 | (1ull << 45), F_P | F_RW, F_P | F_RW);
    assert_int_equal(lin_read(h, 0xb00000, 4, &v), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0x9);
    assert_int_equal(lin_write(h, 0xb00000, 4, 0), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0xb);

    /* XD with EFER.NXE clear is reserved. */
    pt_map(&p, 0xb01000, 0x45000, F_P | F_RW | F_XD, F_P | F_RW);
    assert_int_equal(lin_read(h, 0xb01000, 4, &v), -1);
    h->s->efer &= ~(uint64_t)IEM_EFER_NXE;
    iemh_sync(h);
    assert_int_equal(lin_read(h, 0xb01000, 4, &v), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0x9);
    h->s->efer |= IEM_EFER_NXE;
    iemh_sync(h);

    /* 2 MiB page with bit 13 set; a 1 GiB page (not advertised). */
    uint64_t *pd = pt_entry(&p, 0xb00000, 2) - (0xb00000 >> 21);
    pd[8] = 0x800000 | (1u << 13) | F_P | F_RW | F_PS;
    assert_int_equal(lin_read(h, 8ull << 21, 4, &v), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0x9);
    uint64_t *pdpte = pt_entry(&p, 0xb00000, 3);
    pdpte[1] = 0x40000000 | F_P | F_RW | F_PS;
    assert_int_equal(lin_read(h, 0x40000000, 4, &v), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0x9);
    /* PML4E with PS set */
    uint64_t *pml4e = ram64(h, p.root);
    pml4e[2] = pt_new(&p) | F_P | F_RW | F_PS;
    assert_int_equal(lin_read(h, 2ull << 39, 4, &v), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0x9);
    iemh_destroy(h);
}

/* 32-bit paging with 4 KiB and 4 MiB (PSE, PSE-36) pages, in protected mode. */
static void test_paging_32bit(void **state)
{
    struct iemh *h = iemh_create(16u << 20);
    iemh_mode_prot32(h, IEMH_FREE_GPA, 0x8000);
    uint32_t pd = 0x300000, ptab = 0x301000;
    memset(h->ram + pd, 0, 0x2000);
    *ram32(h, pd + (0x00000000u >> 22) * 4) = ptab | 0x3;
    *ram32(h, ptab + (IEMH_FREE_GPA >> 12) * 4) = IEMH_FREE_GPA | 0x3;
    *ram32(h, ptab + (0x5000u >> 12) * 4) = 0x46000 | 0x3;
    /* 4 MiB page at 0x800000 -> physical 0x12_00400000 (bits 39:32 = 0x12 in PDE bits 20:13). */
    *ram32(h, pd + (0x800000u >> 22) * 4) = 0x00400000u | (0x12u << 13) | 0x83;
    *ram32(h, pd + (0xc00000u >> 22) * 4) = 0x00400000u | (1u << 21) | 0x83;
    h->s->cr3 = pd;
    h->s->cr4 |= IEM_CR4_PSE;
    h->s->cr0 |= IEM_CR0_PG;
    iemh_sync(h);

    struct acc a = { .addr = 0x5123, .kind = IEM_ACC_READ };
    assert_int_equal(iemh_try(h, do_translate, &a), -1);
    assert_int_equal(a.value, 0x46123);
    assert_true(*ram32(h, pd) & F_A);
    assert_true(*ram32(h, ptab + 5 * 4) & F_A);

    a.addr = 0x8abcde;
    assert_int_equal(iemh_try(h, do_translate, &a), -1);
    assert_int_equal(a.value, 0x1200400000ull + 0xabcde);

    /* Bit 21 of a 4 MiB PDE is reserved. */
    a.addr = 0xc00000;
    assert_int_equal(iemh_try(h, do_translate, &a), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0x9);

    /* Without CR4.PSE the PS bit is ignored: the PDE points to a page table (here empty). */
    memset(h->ram + 0x424000, 0, 0x1000);
    h->s->cr4 &= ~(uint64_t)IEM_CR4_PSE;
    iemh_sync(h);
    a.addr = 0x800000;
    assert_int_equal(iemh_try(h, do_translate, &a), IEM_X_PF);
    /* In 32-bit paging the I/D bit is never reported. */
    a.kind = IEM_ACC_EXEC;
    a.addr = 0x1000000;
    assert_int_equal(iemh_try(h, do_translate, &a), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0);
    iemh_destroy(h);
}

static void test_paging_pae(void **state)
{
    struct iemh *h = iemh_create(0);
    iemh_mode_prot32(h, IEMH_FREE_GPA, 0x8000);
    uint32_t pdpt = 0x300000, pd = 0x301000, ptab = 0x302000;
    memset(h->ram + pdpt, 0, 0x3000);
    *ram64(h, pdpt + 0) = pd | F_P;
    *ram64(h, pdpt + 8) = pd | F_P | F_RW; /* RW is reserved in a PAE PDPTE */
    *ram64(h, pd + 0) = ptab | F_P | F_RW;
    *ram64(h, ptab + (0x7000 >> 12) * 8) = 0x47000 | F_P | F_RW | F_XD;
    *ram64(h, pd + 8) = 0x600000 | F_P | F_RW | F_PS;
    h->s->cr3 = pdpt;
    h->s->cr4 |= IEM_CR4_PAE;
    h->s->cr0 |= IEM_CR0_PG;
    h->s->efer |= IEM_EFER_NXE;
    iemh_sync(h);

    struct acc a = { .addr = 0x7456, .kind = IEM_ACC_WRITE };
    assert_int_equal(iemh_try(h, do_translate, &a), -1);
    assert_int_equal(a.value, 0x47456);
    assert_true(*ram64(h, ptab + 7 * 8) & F_D);
    assert_false(*ram64(h, pdpt) & F_A); /* PAE PDPTEs have no accessed flag */
    a.kind = IEM_ACC_EXEC;
    assert_int_equal(iemh_try(h, do_translate, &a), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0x11);
    a.kind = IEM_ACC_READ;
    a.addr = 0x200000 + 0x1234;
    assert_int_equal(iemh_try(h, do_translate, &a), -1);
    assert_int_equal(a.value, 0x601234);
    a.addr = 0x40000000;
    assert_int_equal(iemh_try(h, do_translate, &a), IEM_X_PF);
    assert_int_equal(h->cpu->fault_error, 0x9);
    iemh_destroy(h);
}

static void test_tlb_flush_semantics(void **state)
{
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    uint64_t v;
    *ram64(h, 0x48000) = 111;
    *ram64(h, 0x49000) = 222;
    uint64_t *pte = pt_map(&p, 0xc00000, 0x48000, F_P | F_RW, F_P | F_RW);
    assert_int_equal(lin_read(h, 0xc00000, 8, &v), -1);
    assert_int_equal(v, 111);

    /* Changing the PTE without a flush: the TLB keeps the old translation, as hardware may. */
    *pte = 0x49000 | F_P | F_RW;
    assert_int_equal(lin_read(h, 0xc00000, 8, &v), -1);
    assert_int_equal(v, 111);
    iem_tlb_flush_page(h->cpu, 0xc00123);
    assert_int_equal(lin_read(h, 0xc00000, 8, &v), -1);
    assert_int_equal(v, 222);

    /* A non-global flush (MOV CR3) drops a non-global page. */
    *pte = 0x48000 | F_P | F_RW;
    assert_int_equal(lin_read(h, 0xc00000, 8, &v), -1);
    assert_int_equal(v, 222);
    iem_tlb_flush(h->cpu, false);
    assert_int_equal(lin_read(h, 0xc00000, 8, &v), -1);
    assert_int_equal(v, 111);

    /* Global pages survive a non-global flush (MOV CR3 with CR4.PGE) but not a full one. */
    h->s->cr4 |= IEM_CR4_PGE;
    iemh_sync(h);
    *pte = 0x48000 | F_P | F_RW | F_G;
    assert_int_equal(lin_read(h, 0xc00000, 8, &v), -1);
    assert_int_equal(v, 111);
    *pte = 0x49000 | F_P | F_RW | F_G;
    iem_tlb_flush(h->cpu, false);
    assert_int_equal(lin_read(h, 0xc00000, 8, &v), -1);
    assert_int_equal(v, 111);
    iem_tlb_flush(h->cpu, true);
    assert_int_equal(lin_read(h, 0xc00000, 8, &v), -1);
    assert_int_equal(v, 222);

    /* A non-global page that takes the slot of a global one (4 MiB further on) is still dropped by MOV CR3. */
    uint64_t *pte2 = pt_map(&p, 0x1000000, 0x48000, F_P | F_RW, F_P | F_RW);
    assert_int_equal(lin_read(h, 0x1000000, 8, &v), -1);
    assert_int_equal(v, 111);
    *pte2 = 0x49000 | F_P | F_RW;
    iem_tlb_flush(h->cpu, false);
    assert_int_equal(lin_read(h, 0x1000000, 8, &v), -1);
    assert_int_equal(v, 222);
    assert_int_equal(lin_read(h, 0xc00000, 8, &v), -1); /* the global page came back: a fresh walk */
    assert_int_equal(v, 222);

    /* INVLPG anywhere in a 2 MiB page drops all of its 4 KiB pieces. */
    uint64_t *pd = pt_entry(&p, 0xc00000, 2) - 6;
    pd[20] = 0x600000 | F_P | F_RW | F_PS;
    *ram64(h, 0x600000 + 0x5000) = 333;
    *ram64(h, 0x800000 + 0x5000) = 444;
    uint64_t lin = 20ull << 21;
    assert_int_equal(lin_read(h, lin + 0x5000, 8, &v), -1);
    assert_int_equal(v, 333);
    pd[20] = 0x800000 | F_P | F_RW | F_PS;
    iem_tlb_flush_page(h->cpu, lin + 0x1f0000);
    assert_int_equal(lin_read(h, lin + 0x5000, 8, &v), -1);
    assert_int_equal(v, 444);

    /* More large pages in the TLB than its list of them holds: INVLPG still drops the first one's pieces. */
    for (int i = 0; i < 12; i++) {
        pd[40 + i] = 0x600000 | F_P | F_RW | F_PS;
        /* Each at its own page offset, so no two of them share a TLB slot. */
        *ram64(h, 0x600000 + 0x5000 + 0x1000 * (uint64_t)i) = 333;
        assert_int_equal(lin_read(h, ((40ull + i) << 21) + 0x5000 + 0x1000 * (uint64_t)i, 8, &v), -1);
        assert_int_equal(v, 333);
    }
    pd[40] = 0x800000 | F_P | F_RW | F_PS;
    iem_tlb_flush_page(h->cpu, (40ull << 21) + 0x123456);
    assert_int_equal(lin_read(h, (40ull << 21) + 0x5000, 8, &v), -1);
    assert_int_equal(v, 444);

    /* A global large page kept by a non-global flush: INVLPG inside it still drops its pieces. */
    pd[60] = 0x600000 | F_P | F_RW | F_PS | F_G;
    assert_int_equal(lin_read(h, (60ull << 21) + 0x5000, 8, &v), -1);
    assert_int_equal(v, 333);
    iem_tlb_flush(h->cpu, false);
    pd[60] = 0x800000 | F_P | F_RW | F_PS | F_G;
    assert_int_equal(lin_read(h, (60ull << 21) + 0x5000, 8, &v), -1);
    assert_int_equal(v, 333); /* still the kept global entry */
    iem_tlb_flush_page(h->cpu, (60ull << 21) + 0x1ff000);
    assert_int_equal(lin_read(h, (60ull << 21) + 0x5000, 8, &v), -1);
    assert_int_equal(v, 444);

    /* A CR4.PGE change drops everything. */
    pd[20] = 0x600000 | F_P | F_RW | F_PS;
    h->s->cr4 &= ~(uint64_t)IEM_CR4_PGE;
    iemh_sync(h);
    assert_int_equal(lin_read(h, lin + 0x5000, 8, &v), -1);
    assert_int_equal(v, 333);
    iemh_destroy(h);
}

/*
 * Block links and jump-cache entries (and the recompiler's link slots) follow remapped code
 * pages: a caller loop at linear 0x40000000 calls code at 0x40001000 (and in a 2 MiB page at
 * 0x40200000); after the mapping changes, the flush that architecturally makes the new
 * mapping visible must make the loop call the new code.  INVLPG of a page no link depends
 * on leaves the links alone (chain_gen unchanged), one of a page they depend on does not.
 */
static void put_caller(struct iemh *h, uint64_t gpa, uint64_t lin, uint64_t target)
{
    int32_t rel = (int32_t)(target - (lin + 5));
    uint8_t code[] = { 0xe8, (uint8_t)rel, (uint8_t)(rel >> 8), (uint8_t)(rel >> 16), (uint8_t)(rel >> 24),
                       0xff, 0xc9,   /* dec ecx */
                       0x75, 0xf7,   /* jnz back to the call */
                       0xf4 };       /* hlt */
    iemh_write(h, gpa, code, sizeof(code));
}

/* Runs a loop at lin that counts RCX down from rounds and ends in HLT: RDX (from 0) after it. */
static uint64_t run_rdx_loop(struct iemh *h, uint64_t lin, uint64_t rounds)
{
    struct iem_step_result r;
    h->s->gpr[CPU_RCX] = rounds;
    h->s->gpr[CPU_RDX] = 0;
    h->s->rip = lin;
    h->s->halted = false;
    iemh_run(h, 100000, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    return h->s->gpr[CPU_RDX];
}

static uint64_t run_caller(struct iemh *h, uint64_t lin)
{
    h->s->gpr[CPU_RSP] = 0x40010ff0;
    return run_rdx_loop(h, lin, 60);
}

static void test_links_follow_remaps(void **state)
{
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    struct iem_core *core = iem_core_of(h->cpu);
    static const uint8_t add1[] = { 0x83, 0xc2, 0x01, 0xc3 };   /* add edx, 1; ret */
    static const uint8_t add100[] = { 0x83, 0xc2, 0x64, 0xc3 }; /* add edx, 100; ret */
    const uint64_t caller = 0x40000000, callee = 0x40001000, caller2 = 0x40002000, big = 0x40200000;
    put_caller(h, 0x100000, caller, callee);
    put_caller(h, 0x104000, caller2, big + 0x3000);
    iemh_write(h, 0x101000, add1, sizeof(add1));
    iemh_write(h, 0x102000, add100, sizeof(add100));
    iemh_write(h, 0x403000, add1, sizeof(add1));
    iemh_write(h, 0x603000, add100, sizeof(add100));
    pt_map(&p, caller, 0x100000, F_P | F_RW, F_P | F_RW | F_US);
    uint64_t *callee_pte = pt_map(&p, callee, 0x101000, F_P | F_RW, F_P | F_RW | F_US);
    pt_map(&p, caller2, 0x104000, F_P | F_RW, F_P | F_RW | F_US);
    pt_map(&p, 0x40010000, 0x103000, F_P | F_RW, F_P | F_RW | F_US);
    uint64_t *big_pde = pt_entry(&p, caller, 2) + 1;
    *big_pde = 0x400000 | F_P | F_RW | F_PS;

    assert_int_equal(run_caller(h, caller), 60);
    assert_int_equal(run_caller(h, caller), 60);
    /* INVLPG of a page no link depends on keeps them; of the callee's page it does not. */
    uint32_t gen = core->chain_gen;
    iem_tlb_flush_page(h->cpu, 0x40005000);
    assert_int_equal(core->chain_gen, gen);
    *callee_pte = 0x102000 | F_P | F_RW;
    iem_tlb_flush_page(h->cpu, callee);
    assert_int_not_equal(core->chain_gen, gen);
    assert_int_equal(run_caller(h, caller), 6000);

    /* A non-global page and a flush that keeps global pages (MOV CR3). */
    *callee_pte = 0x101000 | F_P | F_RW;
    iem_tlb_flush(h->cpu, false);
    assert_int_equal(run_caller(h, caller), 60);

    /* INVLPG anywhere in the 2 MiB page the callee lies in. */
    assert_int_equal(run_caller(h, caller2), 60);
    assert_int_equal(run_caller(h, caller2), 60);
    *big_pde = 0x600000 | F_P | F_RW | F_PS;
    iem_tlb_flush_page(h->cpu, big + 0x100000);
    assert_int_equal(run_caller(h, caller2), 6000);

    /* Global pages: links survive MOV CR3 (the old mapping may stay in use), not a global flush. */
    h->s->cr4 |= IEM_CR4_PGE;
    iemh_sync(h);
    *callee_pte = 0x101000 | F_P | F_RW | F_G;
    *pt_entry(&p, caller, 1) |= F_G;
    assert_int_equal(run_caller(h, caller), 60);
    assert_int_equal(run_caller(h, caller), 60);
    gen = core->chain_gen;
    *callee_pte = 0x102000 | F_P | F_RW | F_G;
    iem_tlb_flush(h->cpu, false);
    assert_int_equal(core->chain_gen, gen);
    iem_tlb_flush(h->cpu, true);
    assert_int_equal(run_caller(h, caller), 6000);
    iemh_destroy(h);
}

/*
 * The recompiler's code area fills and is emptied while a loop over many blocks runs: the
 * blocks translate again into the same link slots, which must not keep links into the
 * old code (the same target RIP and link key as before the flush).
 */
static void test_rec_code_flush(void **state)
{
    enum { NBLOCKS = 1500, ROUNDS = 30 };
    struct iemh *h = iemh_create(16u << 20);
    struct iem_core *core = iem_core_of(h->cpu);
    struct iem_step_result r;
    iemh_mode_long64(h, IEMH_FREE_GPA, 0x8000);
    assert_int_equal(iem_rec_enable(h->cpu, true, 0), 0);
    rec_core_set_code_limit(core->rec, 160u << 10);
    static uint8_t code[NBLOCKS * 9 + 16];
    size_t n = 0;
    uint64_t per_round = 0;
    for (unsigned i = 0; i < NBLOCKS; i++) {
        uint8_t v = (uint8_t)(i % 100 + 1);
        per_round += v;
        const uint8_t blk[] = { 0x48, 0x83, 0xc0, v, 0xe9, 0, 0, 0, 0 }; /* add rax, v; jmp next */
        memcpy(code + n, blk, sizeof(blk));
        n += sizeof(blk);
    }
    int32_t back = -(int32_t)(n + 2 + 6);
    const uint8_t tail[] = { 0xff, 0xc9, 0x0f, 0x85, (uint8_t)back, (uint8_t)(back >> 8), (uint8_t)(back >> 16),
                             (uint8_t)(back >> 24), 0xf4 }; /* dec ecx; jnz start; hlt */
    memcpy(code + n, tail, sizeof(tail));
    n += sizeof(tail);
    h->s->gpr[CPU_RAX] = 0;
    h->s->gpr[CPU_RCX] = ROUNDS;
    iemh_exec(h, IEMH_FREE_GPA + 0x10000, code, n, 10u << 20, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RAX], per_round * ROUNDS);
    struct rec_stats st;
    rec_core_stats(core->rec, &st);
    assert_true(st.flushes >= 2);
    assert_true(st.blocks > 2 * NBLOCKS);
    /* Every link slot of the current code that a translation could follow leads into the current code. */
    const struct rec_core *rc = core->rec;
    unsigned live = 0;
    for (unsigned i = 0; i < rc->nlinks; i++) {
        const struct rec_link *l = &rc->links[i];
        if ((core->link_key & l->mask) != l->key)
            continue;
        live++;
        assert_non_null(l->to);
        assert_int_equal(l->to->rec_gen, rc->gen);
        assert_ptr_equal(l->body, (const uint8_t *)l->to->rec_code + rc->prologue_bytes);
    }
    assert_true(live > 0);
    iemh_destroy(h);
}

/*
 * A translated block that loops back to its own start runs on in place: the results and
 * the retired-instruction count are the interpreter's, and an instruction limit still
 * stops it (the chain budget) with RIP at the loop.
 */
static void test_rec_self_loop(void **state)
{
    struct iemh *h = iemh_create(0);
    struct iem_step_result r;
    iemh_mode_long64(h, IEMH_FREE_GPA, 0x8000);
    assert_int_equal(iem_rec_enable(h->cpu, true, 0), 0);
    /* add rax, 3; dec ecx; jnz <the add>; hlt */
    static const uint8_t code[] = { 0x48, 0x83, 0xc0, 0x03, 0xff, 0xc9, 0x75, 0xf8, 0xf4 };
    uint64_t at = IEMH_FREE_GPA + 0x100;
    h->s->gpr[CPU_RAX] = 0;
    h->s->gpr[CPU_RCX] = 5000;
    iemh_exec(h, at, code, sizeof(code), 1u << 20, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RAX], 15000);
    assert_int_equal(r.executed, 3 * 5000 + 1);
    /* Stopped by the instruction limit between two rounds. */
    h->s->gpr[CPU_RAX] = 0;
    h->s->gpr[CPU_RCX] = 5000;
    h->s->halted = false;
    h->s->rip = at;
    iemh_run(h, 3 * 1000, &r);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_true(r.executed <= 3 * 1000);
    assert_int_equal(r.executed % 3, 0);
    assert_int_equal(h->s->rip, at);
    assert_int_equal(h->s->gpr[CPU_RAX], r.executed);
    struct rec_stats st;
    rec_core_stats(iem_core_of(h->cpu)->rec, &st);
    assert_true(st.blocks >= 1);
    iemh_destroy(h);
}

/* A 64-bit CPL 0 harness (RIP at IEMH_FREE_GPA, RSP as given); with rec, on the recompiler, blocks translated at once. */
static struct iemh *rec_case_create(bool rec, uint64_t rsp)
{
    struct iemh *h = iemh_create(0);
    iemh_mode_long64(h, IEMH_FREE_GPA, rsp);
    if (rec)
        assert_int_equal(iem_rec_enable(h->cpu, true, 0), 0);
    return h;
}

/* The recompiler's counters (all zero on the interpreter). */
static struct rec_stats rec_case_stats(struct iemh *h)
{
    struct rec_stats st = { 0 };
    if (iem_core_of(h->cpu)->rec)
        rec_core_stats(iem_core_of(h->cpu)->rec, &st);
    return st;
}

/*
 * The recompiler's register cache: the same block on the interpreter and translated gives
 * the same registers and memory.  The block keeps RAX, RCX and RDX busy (the cached ones)
 * through 8-, 16-, 32- and 64-bit writes (a 32-bit MOV of a register onto itself clears
 * the upper half), handler calls that change cached registers (BSWAP), one of them last
 * before the branch back, loads whose first run misses the TLB (the slow path, which
 * resumes with the cache reloaded), and a loop back to its own start (which keeps the
 * cache loaded across rounds).
 */
static void run_cache_case(bool rec, struct cpu_state *out, uint64_t *mem_out)
{
    struct iemh *h = rec_case_create(rec, 0x8000);
    static const uint8_t code[] = {
        0x48, 0x01, 0xd0,             /* L: add rax, rdx */
        0x41, 0x89, 0xc0,             /* mov r8d, eax (to an uncached register: RAX keeps its upper half) */
        0x48, 0x01, 0xc7,             /* add rdi, rax */
        0x89, 0xc0,                   /* mov eax, eax */
        0x48, 0x01, 0xc6,             /* add rsi, rax (sees the upper half) */
        0x66, 0x01, 0xc8,             /* add ax, cx */
        0x00, 0xd0,                   /* add al, dl */
        0x48, 0x8b, 0x14, 0xcb,       /* mov rdx, [rbx + rcx * 8] */
        0x0f, 0xca,                   /* bswap edx (through the interpreter) */
        0x48, 0x31, 0xc2,             /* xor rdx, rax */
        0x48, 0x89, 0x14, 0xcb,       /* mov [rbx + rcx * 8], rdx */
        0x66, 0x8b, 0x44, 0xcb, 0x08, /* mov ax, [rbx + rcx * 8 + 8] */
        0x0f, 0xc8,                   /* bswap eax (RAX not reloaded before the loop branch) */
        0xff, 0xc9,                   /* dec ecx */
        0x75, 0xd5,                   /* jnz L */
        0xf4,                         /* hlt */
    };
    for (unsigned i = 0; i < 70; i++) {
        uint64_t v = 0x9e3779b97f4a7c15ull * (i + 1);
        iemh_write(h, 0x200000 + 8 * i, &v, 8);
    }
    h->s->gpr[CPU_RAX] = 0xfedcba9876543210ull;
    h->s->gpr[CPU_RCX] = 64;
    h->s->gpr[CPU_RDX] = 0x0123456789abcdefull;
    h->s->gpr[CPU_RBX] = 0x200000;
    iemh_sync(h);
    struct iem_step_result r;
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 100000, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    *out = *h->s;
    for (unsigned i = 0; i < 70; i++)
        mem_out[i] = iemh_read64(h, 0x200000 + 8 * i);
    if (rec)
        assert_true(rec_case_stats(h).inline_insns >= 10);
    iemh_destroy(h);
}

static void test_rec_register_cache(void **state)
{
    struct cpu_state ref, got;
    uint64_t mref[70], mgot[70];
    run_cache_case(false, &ref, mref);
    run_cache_case(true, &got, mgot);
    for (int i = 0; i < 16; i++)
        if (ref.gpr[i] != got.gpr[i])
            fail_msg("gpr %d: interpreter %#llx, recompiler %#llx", i, (unsigned long long)ref.gpr[i],
                     (unsigned long long)got.gpr[i]);
    assert_int_equal(ref.rflags, got.rflags);
    assert_memory_equal(mref, mgot, sizeof(mref));
}

/*
 * Operations on cache registers in place: shifts, two-operand IMUL, LEA (one with an
 * uncached base and the destination as index), MOVZX/MOVSX/MOVSXD, NOT/NEG/INC on 8- and 32-bit parts, CMOV that
 * clears the upper half when it does not move, and CMOV/SETcc on the host's flags of the
 * compare before them, one of those compares with a memory operand whose slow path (a TLB
 * miss at each new page) resumes with the guest's flags loaded.  The interpreter's
 * registers and flags are the reference.
 */
static void run_inplace_case(bool rec, struct cpu_state *out)
{
    struct iemh *h = rec_case_create(rec, 0x8000);
    static const uint8_t code[] = {
        0x4c, 0x89, 0xca,             /* L: mov rdx, r9 (upper half set) */
        0x8b, 0x04, 0x8b,             /* mov eax, [rbx + rcx * 4] */
        0xc1, 0xe0, 0x03,             /* shl eax, 3 */
        0x0f, 0xaf, 0xc2,             /* imul eax, edx */
        0xf6, 0xd2,                   /* not dl */
        0xf7, 0xde,                   /* neg esi */
        0x40, 0xfe, 0xc6,             /* inc sil */
        0x4c, 0x89, 0xca,             /* mov rdx, r9 (upper half set again) */
        0x39, 0xf0,                   /* cmp eax, esi */
        0x0f, 0x4c, 0xd0,             /* cmovl edx, eax */
        0x39, 0x54, 0x8b, 0x04,       /* cmp [rbx + rcx * 4 + 4], edx */
        0x0f, 0x4f, 0xf7,             /* cmovg esi, edi */
        0x39, 0xf2,                   /* cmp edx, esi */
        0x41, 0x0f, 0x92, 0xc0,       /* setb r8b */
        0x49, 0x8d, 0x04, 0x42,       /* lea rax, [r10 + rax * 2] (an uncached base) */
        0x48, 0x8d, 0x74, 0x32, 0x11, /* lea rsi, [rdx + rsi + 0x11] (cached registers) */
        0x0f, 0xb6, 0xd0,             /* movzx edx, al */
        0x48, 0x0f, 0xbf, 0xf6,       /* movsx rsi, si */
        0x48, 0x63, 0xc0,             /* movsxd rax, eax */
        0x41, 0x0f, 0xbe, 0xfb,       /* movsx edi, r11b (an uncached source) */
        0x48, 0x01, 0xc7,             /* add rdi, rax */
        0x48, 0x01, 0xd7,             /* add rdi, rdx */
        0x48, 0x01, 0xf7,             /* add rdi, rsi */
        0x41, 0xc1, 0xe0, 0x01,       /* shl r8d, 1 (clears the upper half) */
        0x4c, 0x01, 0xc7,             /* add rdi, r8 */
        0x48, 0xc1, 0xc7, 0x05,       /* rol rdi, 5 */
        0xff, 0xc9,                   /* dec ecx */
        0x75, 0xa9,                   /* jnz L */
        0xf4,                         /* hlt */
    };
    for (uint32_t i = 0; i <= 3001; i++) {
        uint32_t v = (i * 0x9e3779b9u) ^ (i << 7);
        iemh_write(h, 0x200000 + 4 * i, &v, 4);
    }
    h->s->gpr[CPU_RCX] = 3000;
    h->s->gpr[CPU_RBX] = 0x200000;
    h->s->gpr[CPU_RSI] = 0xa5a5a5a512345678ull;
    h->s->gpr[CPU_RDI] = 0x1111222233334444ull;
    h->s->gpr[CPU_R8] = 0x8877665544332211ull;
    h->s->gpr[CPU_R9] = 0xfedcba9876543210ull;
    h->s->gpr[CPU_R10] = 0x0badc0ffee000000ull;
    h->s->gpr[CPU_R11] = 0x80;
    iemh_sync(h);
    struct iem_step_result r;
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 1u << 20, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    *out = *h->s;
    if (rec)
        assert_true(rec_case_stats(h).inline_insns >= 20);
    iemh_destroy(h);
}

static void test_rec_inplace_ops(void **state)
{
    struct cpu_state ref, got;
    run_inplace_case(false, &ref);
    run_inplace_case(true, &got);
    for (int i = 0; i < 16; i++)
        if (ref.gpr[i] != got.gpr[i])
            fail_msg("gpr %d: interpreter %#llx, recompiler %#llx", i, (unsigned long long)ref.gpr[i],
                     (unsigned long long)got.gpr[i]);
    assert_int_equal(ref.rflags, got.rflags);
}

/*
 * Read-modify-write operations on memory (ADD, SUB, AND, OR, XOR, ADC, SBB with a register
 * or an immediate, INC, DEC, NEG, NOT, shifts by an immediate; 1 to 8 bytes) translated
 * inline through the write entry, and operations with a memory source (the operand read in
 * place, or loaded first for SBB, which needs the guest's flags).  Their flags are read by
 * SETcc and carried through ADC (INC and DEC keep the CF before them), over an array that
 * spans pages (a TLB miss at each new page takes the slow path).  Registers, flags and
 * memory are the interpreter's.
 */
static void run_alu_mem_case(bool rec, struct cpu_state *out, uint8_t *mem_out, size_t len)
{
    struct iemh *h = rec_case_create(rec, 0x8000);
    static const uint8_t code[] = {
        0x48, 0x01, 0x04, 0xcb,             /* L: add [rbx + rcx * 8], rax */
        0x0f, 0x92, 0xc2,                   /* setb dl */
        0x48, 0x01, 0xd6,                   /* add rsi, rdx */
        0x29, 0x44, 0xcb, 0x04,             /* sub [rbx + rcx * 8 + 4], eax */
        0x0f, 0x98, 0xc2,                   /* sets dl */
        0x48, 0x01, 0xd6,                   /* add rsi, rdx */
        0x66, 0x83, 0x74, 0xcb, 0x02, 0xa5, /* xor word [rbx + rcx * 8 + 2], 0xffa5 */
        0x0f, 0x9a, 0xc2,                   /* setp dl */
        0x48, 0x11, 0xd6,                   /* adc rsi, rdx */
        0x80, 0x44, 0xcb, 0x07, 0x9d,       /* add byte [rbx + rcx * 8 + 7], 0x9d */
        0x0f, 0x90, 0xc2,                   /* seto dl */
        0x48, 0x11, 0xd6,                   /* adc rsi, rdx */
        0x21, 0x7c, 0xcb, 0x04,             /* and [rbx + rcx * 8 + 4], edi */
        0x0f, 0x94, 0xc2,                   /* setz dl */
        0x48, 0x01, 0xd6,                   /* add rsi, rdx */
        0x48, 0x81, 0x0c, 0xcb, 0x01, 0x80, 0x00, 0x00, /* or qword [rbx + rcx * 8], 0x8001 */
        0x48, 0x29, 0x04, 0xcb,             /* sub [rbx + rcx * 8], rax */
        0x11, 0x04, 0xcb,                   /* adc [rbx + rcx * 8], eax */
        0x66, 0x81, 0x5c, 0xcb, 0x02, 0x34, 0x12, /* sbb word [rbx + rcx * 8 + 2], 0x1234 */
        0xfe, 0x44, 0xcb, 0x05,             /* inc byte [rbx + rcx * 8 + 5] (CF stays the SBB's) */
        0x0f, 0x94, 0xc2,                   /* setz dl */
        0x48, 0x11, 0xd6,                   /* adc rsi, rdx */
        0xff, 0x4c, 0xcb, 0x04,             /* dec dword [rbx + rcx * 8 + 4] (CF stays the ADC's) */
        0x0f, 0x98, 0xc2,                   /* sets dl */
        0x48, 0x11, 0xd6,                   /* adc rsi, rdx */
        0x48, 0xf7, 0x1c, 0xcb,             /* neg qword [rbx + rcx * 8] */
        0x0f, 0x92, 0xc2,                   /* setb dl */
        0x48, 0x01, 0xd6,                   /* add rsi, rdx */
        0x66, 0xf7, 0x54, 0xcb, 0x06,       /* not word [rbx + rcx * 8 + 6] */
        0x03, 0x44, 0xcb, 0x04,             /* add eax, [rbx + rcx * 8 + 4] */
        0x48, 0x3b, 0x3c, 0xcb,             /* cmp rdi, [rbx + rcx * 8] */
        0x0f, 0x9c, 0xc2,                   /* setl dl */
        0x48, 0x01, 0xd6,                   /* add rsi, rdx */
        0x66, 0x23, 0x7c, 0xcb, 0x02,       /* and di, [rbx + rcx * 8 + 2] */
        0x1b, 0x04, 0xcb,                   /* sbb eax, [rbx + rcx * 8] */
        0xc1, 0x64, 0xcb, 0x04, 0x03,       /* shl dword [rbx + rcx * 8 + 4], 3 */
        0x0f, 0x92, 0xc2,                   /* setb dl */
        0x48, 0x01, 0xd6,                   /* add rsi, rdx */
        0x66, 0xc1, 0x4c, 0xcb, 0x02, 0x05, /* ror word [rbx + rcx * 8 + 2], 5 (ZF stays the ADD's) */
        0x0f, 0x94, 0xc2,                   /* setz dl */
        0x48, 0x11, 0xd6,                   /* adc rsi, rdx */
        0xc0, 0x7c, 0xcb, 0x07, 0x01,       /* sar byte [rbx + rcx * 8 + 7], 1 */
        0x48, 0xc1, 0xc0, 0x07,             /* rol rax, 7 */
        0xff, 0xc9,                         /* dec ecx */
        0x0f, 0x85, 0x54, 0xff, 0xff, 0xff, /* jnz L */
        0xf4,                               /* hlt */
    };
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = 0x9e3779b97f4a7c15ull * (i + 1) ^ (i << 40);
        iemh_write(h, 0x200000 + i, &v, 8);
    }
    h->s->gpr[CPU_RAX] = 0x8000000180000001ull;
    h->s->gpr[CPU_RBX] = 0x200000;
    h->s->gpr[CPU_RCX] = len / 8 - 1;
    h->s->gpr[CPU_RSI] = 0;
    h->s->gpr[CPU_RDI] = 0xfff0fff0u;
    iemh_sync(h);
    struct iem_step_result r;
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 1u << 22, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    *out = *h->s;
    iemh_read(h, 0x200000, mem_out, len);
    if (rec)
        assert_true(rec_case_stats(h).inline_insns >= 20);
    iemh_destroy(h);
}

static void test_rec_alu_mem(void **state)
{
    (void)state;
    enum { LEN = 3 * 4096 + 64 };
    static uint8_t mref[LEN], mgot[LEN];
    struct cpu_state ref, got;
    run_alu_mem_case(false, &ref, mref, LEN);
    run_alu_mem_case(true, &got, mgot, LEN);
    for (int i = 0; i < 16; i++)
        if (ref.gpr[i] != got.gpr[i])
            fail_msg("gpr %d: interpreter %#llx, recompiler %#llx", i, (unsigned long long)ref.gpr[i],
                     (unsigned long long)got.gpr[i]);
    assert_int_equal(ref.rflags, got.rflags);
    assert_memory_equal(mref, mgot, LEN);
}

/*
 * A RET's exit remembers several return targets: a function called from three places in a
 * loop returns into its callers' translations through the inline links (few exits through
 * rec_chain), and the results are the interpreter's.
 */
static void run_ret_case(bool rec, uint64_t *rax, uint64_t *chain_calls)
{
    struct iemh *h = rec_case_create(rec, 0x8000);
    /*
     * L: call F; add rax, 1; call F; add rax, 2; call F; add rax, 3; dec ecx; jnz L; hlt
     * F: lea rax, [rax + rax * 2]; ret
     */
    static const uint8_t code[] = {
        0xe8, 0x1b, 0x00, 0x00, 0x00, 0x48, 0x83, 0xc0, 0x01, /* 0: call F (0x20); add rax, 1 */
        0xe8, 0x12, 0x00, 0x00, 0x00, 0x48, 0x83, 0xc0, 0x02, /* 9: call F; add rax, 2 */
        0xe8, 0x09, 0x00, 0x00, 0x00, 0x48, 0x83, 0xc0, 0x03, /* 0x12: call F; add rax, 3 */
        0xff, 0xc9, 0x75, 0xe1, 0xf4,                         /* 0x1b: dec ecx; jnz L; hlt */
        0x48, 0x8d, 0x04, 0x40, 0xc3,                         /* 0x20: F: lea rax, [rax + rax * 2]; ret */
    };
    h->s->gpr[CPU_RAX] = 1;
    h->s->gpr[CPU_RCX] = 2000;
    iemh_sync(h);
    struct iem_step_result r;
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 1u << 20, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    *rax = h->s->gpr[CPU_RAX];
    *chain_calls = rec_case_stats(h).chain_calls;
    iemh_destroy(h);
}

/* A RET case on both CPUs: the same RAX, and at most max_calls exits of the translated run through rec_chain. */
static void check_ret_case(void (*run)(bool rec, uint64_t *rax, uint64_t *chain_calls), uint64_t max_calls)
{
    uint64_t ref, got, calls;
    run(false, &ref, &calls);
    run(true, &got, &calls);
    assert_int_equal(got, ref);
    if (calls > max_calls)
        fail_msg("%llu exits through rec_chain", (unsigned long long)calls);
}

static void test_rec_ret_links(void **state)
{
    (void)state;
    /* 6000 RETs to three places and 2000 loop branches: a single-target slot would miss on almost every RET. */
    check_ret_case(run_ret_case, 600);
}

/*
 * A RET to more callers than its exit has slots: twelve call sites in turn defeat the
 * eight slots (filled round robin), and the translation finds the return target's block
 * through the jump cache instead of asking rec_chain.
 */
static void run_ret12_case(bool rec, uint64_t *rax, uint64_t *chain_calls)
{
    struct iemh *h = rec_case_create(rec, 0x8000);
    /* L: 12 x (call F; add rax, i); dec ecx; jnz L; hlt.  F: lea rax, [rax + rax * 2]; ret */
    uint8_t code[12 * 9 + 5 + 5];
    size_t o = 0;
    const size_t f = 12 * 9 + 5;
    for (unsigned i = 0; i < 12; i++) {
        int32_t rel = (int32_t)(f - (o + 5));
        code[o++] = 0xe8;
        memcpy(&code[o], &rel, 4);
        o += 4;
        code[o++] = 0x48, code[o++] = 0x83, code[o++] = 0xc0, code[o++] = (uint8_t)(i + 1); /* add rax, i + 1 */
    }
    int8_t back = (int8_t)-(int)(o + 4);
    code[o++] = 0xff, code[o++] = 0xc9;                 /* dec ecx */
    code[o++] = 0x75, code[o++] = (uint8_t)back;        /* jnz L */
    code[o++] = 0xf4;                                   /* hlt */
    assert_int_equal(o, f);
    code[o++] = 0x48, code[o++] = 0x8d, code[o++] = 0x04, code[o++] = 0x40; /* F: lea rax, [rax + rax * 2] */
    code[o++] = 0xc3;                                   /* ret */
    h->s->gpr[CPU_RAX] = 1;
    h->s->gpr[CPU_RCX] = 500;
    iemh_sync(h);
    struct iem_step_result r;
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, o, 1u << 20, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    *rax = h->s->gpr[CPU_RAX];
    *chain_calls = rec_case_stats(h).chain_calls;
    iemh_destroy(h);
}

/*
 * The instruction count across chained blocks and a fault: 300 rounds of two blocks that
 * run on into each other, then UD2.  iem_step reports the same retired count and the same
 * #UD on the interpreter and translated (the chain's charges count when a fault unwinds).
 */
/*
 * Two blocks that run on into each other, L: add eax, 1; jmp M; M: dec ecx; jnz L, for
 * rounds rounds from RAX 0, then HLT (or UD2), at IEMH_FREE_GPA + 0x100.
 */
static void run_two_blocks(struct iemh *h, uint32_t rounds, bool ud2, struct iem_step_result *r)
{
    const uint8_t code[] = {
        0x83, 0xc0, 0x01, /* L: add eax, 1 */
        0xeb, 0x00,       /* jmp M */
        0xff, 0xc9,       /* M: dec ecx */
        0x75, 0xf7,       /* jnz L */
        ud2 ? 0x0f : 0xf4, 0x0b, /* ud2, or hlt */
    };
    h->s->gpr[CPU_RAX] = 0;
    h->s->gpr[CPU_RCX] = rounds;
    iemh_sync(h);
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 1u << 20, r);
}

static uint64_t run_fault_count_case(bool rec)
{
    struct iemh *h = rec_case_create(rec, 0x8000);
    struct iem_step_result r;
    run_two_blocks(h, 300, true, &r);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(h->s->gpr[CPU_RAX], 300);
    assert_int_equal(h->s->rip, IEMH_FREE_GPA + 0x100 + 9);
    uint64_t executed = r.executed;
    iemh_destroy(h);
    return executed;
}

static void test_rec_fault_count(void **state)
{
    (void)state;
    assert_int_equal(run_fault_count_case(false), 1200);
    assert_int_equal(run_fault_count_case(true), 1200);
}

/*
 * Links to the same page outlive flushes that keep global pages (CR3 writes): two blocks
 * on one page (not global) that run on into each other, L: add eax, 1; jmp M;
 * M: dec ecx; jnz L, run 1000 rounds to fill their links, then the TLB is flushed as a
 * MOV to CR3 does, and 1000 more rounds run without asking rec_chain.
 */
static uint64_t run_same_page_case(void)
{
    struct iemh *h = rec_case_create(true, 0x8000);
    struct iem_step_result r;
    run_two_blocks(h, 1000, false, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    iem_tlb_flush(h->cpu, false);
    uint64_t before = rec_case_stats(h).chain_calls;
    h->s->rip = IEMH_FREE_GPA + 0x100;
    h->s->halted = false;
    h->s->gpr[CPU_RCX] = 1000;
    iemh_run(h, 1u << 20, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RAX], 2000);
    uint64_t calls = rec_case_stats(h).chain_calls - before;
    iemh_destroy(h);
    return calls;
}

static void test_rec_same_page_links(void **state)
{
    (void)state;
    uint64_t calls = run_same_page_case();
    if (calls > 1)
        fail_msg("%llu exits through rec_chain after the flush", (unsigned long long)calls);
}

/*
 * A same-page link into a block that runs on into the next page must not outlive a CR3
 * write: a loop on one page jumps to MOV EDX, imm32 at its last three bytes, whose upper
 * immediate bytes (and the jump back) lie on the next page.  After that page is remapped
 * and the TLB flushed as a MOV to CR3 does, the loop must see the new immediate.
 */
static void test_rec_same_page_cross_remap(void **state)
{
    (void)state;
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    assert_int_equal(iem_rec_enable(h->cpu, true, 0), 0);
    const uint64_t loop = 0x40000ff0;
    static const uint8_t code[] = {
        0xff, 0xc9,                         /* ff0: dec ecx */
        0x74, 0x02,                         /* ff2: jz ff6 */
        0xeb, 0x07,                         /* ff4: jmp ffd */
        0xf4,                               /* ff6: hlt */
        0x90, 0x90, 0x90, 0x90, 0x90, 0x90, /* ff7 */
        0xba, 0x11, 0x22,                   /* ffd: mov edx, imm32 (two bytes here, two on the next page) */
    };
    static const uint8_t next_a[] = { 0x33, 0x44, 0xeb, 0xec }; /* ... 0x4433; jmp ff0 */
    static const uint8_t next_b[] = { 0x55, 0x66, 0xeb, 0xec }; /* ... 0x6655; jmp ff0 */
    iemh_write(h, 0x100ff0, code, sizeof(code));
    iemh_write(h, 0x101000, next_a, sizeof(next_a));
    iemh_write(h, 0x102000, next_b, sizeof(next_b));
    pt_map(&p, 0x40000000, 0x100000, F_P | F_RW, F_P | F_RW | F_US);
    uint64_t *next_pte = pt_map(&p, 0x40001000, 0x101000, F_P | F_RW, F_P | F_RW | F_US);
    assert_int_equal(run_rdx_loop(h, loop, 50), 0x44332211);
    assert_int_equal(run_rdx_loop(h, loop, 50), 0x44332211);
    *next_pte = 0x102000 | F_P | F_RW;
    iem_tlb_flush(h->cpu, false);
    assert_int_equal(run_rdx_loop(h, loop, 50), 0x66552211);
    iemh_destroy(h);
}

/*
 * Page-local links compare no RIP: the same physical code page mapped at two linear
 * addresses runs a two-block loop L: lea rsi, [rip]; add rdx, rsi; jmp M; M: dec ecx;
 * jnz L; hlt at each, and RIP-relative results must follow the address it runs at.
 */
static uint64_t run_alias_loop(struct iemh *h, uint64_t lin)
{
    uint64_t rdx = run_rdx_loop(h, lin, 100);
    assert_int_equal(h->s->rip, lin + 17); /* past the HLT */
    return rdx;
}

static void test_rec_page_local_alias(void **state)
{
    (void)state;
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    assert_int_equal(iem_rec_enable(h->cpu, true, 0), 0);
    static const uint8_t code[] = {
        0x48, 0x8d, 0x35, 0x00, 0x00, 0x00, 0x00, /* L: lea rsi, [rip] */
        0x48, 0x01, 0xf2,                         /* add rdx, rsi */
        0xeb, 0x00,                               /* jmp M */
        0xff, 0xc9,                               /* M: dec ecx */
        0x75, 0xf0,                               /* jnz L */
        0xf4,                                     /* hlt */
    };
    iemh_write(h, 0x100100, code, sizeof(code));
    pt_map(&p, 0x40000000, 0x100000, F_P | F_RW, F_P | F_RW | F_US);
    pt_map(&p, 0x50000000, 0x100000, F_P | F_RW, F_P | F_RW | F_US);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(run_alias_loop(h, 0x40000100), 100 * 0x40000107ull);
        assert_int_equal(run_alias_loop(h, 0x50000100), 100 * 0x50000107ull);
    }
    iemh_destroy(h);
}

static void test_rec_ret_jcache(void **state)
{
    (void)state;
    /* 6000 RETs to twelve places: without the jump cache almost every one goes through rec_chain. */
    check_ret_case(run_ret12_case, 600);
}

/*
 * A Jcc right after a compare with a memory operand branches on the host's flags of that
 * compare; when the compare took its slow path (a TLB miss on each new page here), the
 * translation resumes at the Jcc with the guest's flags loaded into the host's.  Signed
 * conditions (SF, OF, ZF) and the count of taken branches must be the interpreter's.
 */
static uint64_t run_cmp_mem_case(bool rec)
{
    struct iemh *h = rec_case_create(rec, 0x8000);
    /* L: cmp dword [rbx + rcx * 4 - 4], 5; jle S; inc eax; S: cmp [rbx + rcx * 4 - 4], esi; jg T; add eax, 0x10000;
     * T: dec ecx; jnz L; hlt */
    static const uint8_t code[] = {
        0x83, 0x7c, 0x8b, 0xfc, 0x05, /* 0: cmp dword [rbx + rcx * 4 - 4], 5 */
        0x7e, 0x02,                   /* 5: jle S (9) */
        0xff, 0xc0,                   /* 7: inc eax */
        0x39, 0x74, 0x8b, 0xfc,       /* 9: S: cmp [rbx + rcx * 4 - 4], esi */
        0x7f, 0x05,                   /* 0xd: jg T (0x14) */
        0x05, 0x00, 0x00, 0x01, 0x00, /* 0xf: add eax, 0x10000 */
        0xff, 0xc9,                   /* 0x14: T: dec ecx */
        0x75, 0xe8,                   /* 0x16: jnz L */
        0xf4,                         /* 0x18: hlt */
    };
    for (uint32_t i = 0; i < 8192; i++) {
        int32_t v = (int32_t)((i * 7u) % 23u) - 9; /* -9 .. 13, both signs */
        iemh_write(h, 0x300000 + 4 * i, &v, 4);
    }
    h->s->gpr[CPU_RAX] = 0;
    h->s->gpr[CPU_RBX] = 0x300000;
    h->s->gpr[CPU_RCX] = 8192;
    h->s->gpr[CPU_RSI] = (uint64_t)(int64_t)-3;
    iemh_sync(h);
    struct iem_step_result r;
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 1u << 20, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    uint64_t rax = h->s->gpr[CPU_RAX];
    iemh_destroy(h);
    return rax;
}

static void test_rec_cmp_mem_jcc(void **state)
{
    uint64_t want = 0;
    for (uint32_t i = 0; i < 8192; i++) {
        int32_t v = (int32_t)((i * 7u) % 23u) - 9;
        want += (v > 5) + (v <= -3 ? 0x10000 : 0);
    }
    assert_int_equal(run_cmp_mem_case(false), want);
    assert_int_equal(run_cmp_mem_case(true), want);
}

/*
 * Guest writes mark their pages in the RAM region's dirty bitmap, on the interpreter and
 * in translated code (inline stores, immediate stores, read-modify-write, PUSH, CALL), and
 * pages only read stay clean.
 */
static void test_dirty_log(void **state)
{
    for (int rec = 0; rec < 2; rec++) {
        struct iemh *h = rec_case_create(rec, 0x70100);
        /* L: mov [rdi], eax; mov dword [rsi], 5; push rax; pop rax; mov eax, [rbx]; add [rdx], eax; call F;
         * dec ecx; jnz L; hlt
         * F: ret */
        static const uint8_t code[] = { 0x89, 0x07, 0xc7, 0x06, 0x05, 0x00, 0x00, 0x00, 0x50, 0x58, 0x8b, 0x03, 0x01, 0x02,
                                        0xe8, 0x05, 0x00, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xe9, 0xf4, 0xc3 };
        iemh_write(h, IEMH_FREE_GPA + 0x100, code, sizeof(code));
        h->s->gpr[CPU_RDI] = 0x50000;
        h->s->gpr[CPU_RSI] = 0x60008;
        h->s->gpr[CPU_RBX] = 0x90000;
        h->s->gpr[CPU_RDX] = 0xb0008;
        h->s->gpr[CPU_RCX] = 40;
        h->s->rip = IEMH_FREE_GPA + 0x100;
        iemh_sync(h);
        uint64_t bitmap[(4u << 20) / 4096 / 64];
        assert_int_equal(mem_region_dirty_enable(h->ram_region, true), 0);
        struct iem_step_result r;
        iemh_run(h, 10000, &r);
        assert_int_equal(r.status, IEM_STEP_HLT);
        assert_int_equal(mem_region_dirty_fetch(h->ram_region, bitmap, RT_ARRAY_SIZE(bitmap)), 0);
#define PAGE_DIRTY(gpa) ((bitmap[((gpa) >> 12) / 64] >> (((gpa) >> 12) % 64)) & 1)
        assert_true(PAGE_DIRTY(0x50000));
        assert_true(PAGE_DIRTY(0x60000));
        assert_true(PAGE_DIRTY(0x70000)); /* the stack: PUSH and CALL */
        assert_true(PAGE_DIRTY(0xb0000)); /* ADD to memory */
        assert_false(PAGE_DIRTY(0x90000)); /* only read */
        assert_false(PAGE_DIRTY(0xa0000));
        /* Fetching cleared the bitmap: another round marks again. */
        h->s->gpr[CPU_RCX] = 40;
        h->s->rip = IEMH_FREE_GPA + 0x100;
        h->s->halted = false;
        iemh_run(h, 10000, &r);
        assert_int_equal(r.status, IEM_STEP_HLT);
        assert_int_equal(mem_region_dirty_fetch(h->ram_region, bitmap, RT_ARRAY_SIZE(bitmap)), 0);
        assert_true(PAGE_DIRTY(0x50000) && PAGE_DIRTY(0x60000) && PAGE_DIRTY(0x70000) && PAGE_DIRTY(0xb0000));
        assert_false(PAGE_DIRTY(0x90000));
#undef PAGE_DIRTY
        if (rec)
            assert_true(rec_case_stats(h).inline_insns >= 8);
        iemh_destroy(h);
    }
}

/*
 * Flags a handler (not inline code) set before a block exit reach the next translation,
 * which starts with them pending in r13: through rec_chain on the first round and through
 * the exit's link afterwards.  BT runs through the interpreter; SETC in the next block
 * reads its CF.
 */
static void test_rec_flags_across_chain(void **state)
{
    for (int bit = 3; bit <= 4; bit++) {
        struct iemh *h = rec_case_create(true, 0x8000);
        /* mov edx, 100; L: bt eax, bit; jmp B; B: setc cl; add ebx, ecx; dec edx; jnz L; hlt */
        const uint8_t code[] = { 0xba, 0x64, 0x00, 0x00, 0x00, 0x0f, 0xba, 0xe0, (uint8_t)bit, 0xeb, 0x00,
                                 0x0f, 0x92, 0xc1, 0x01, 0xcb, 0xff, 0xca, 0x75, 0xf1, 0xf4 };
        h->s->gpr[CPU_RAX] = 0x8; /* bit 3 set, bit 4 clear */
        h->s->gpr[CPU_RBX] = 0;
        h->s->gpr[CPU_RCX] = 0;
        h->s->rflags = 0x2 | (bit == 3 ? 0 : IEM_F_CF); /* CF before the loop: the opposite of BT's */
        iemh_sync(h);
        struct iem_step_result r;
        iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 10000, &r);
        assert_int_equal(r.status, IEM_STEP_HLT);
        assert_int_equal(h->s->gpr[CPU_RBX], bit == 3 ? 100 : 0);
        assert_true(rec_case_stats(h).blocks >= 2);
        iemh_destroy(h);
    }
}

/*
 * The flags an operation leaves where the SDM calls them undefined (AF after logic, OF/AF
 * after shifts, SF ZF AF PF after IMUL) must be the interpreter's wherever the guest can
 * see them: here at a #GP right after the operation, entered with every arithmetic flag
 * clear and with every one set.  Checked with the host properties the probe found
 * (rec_probe_host) and with none assumed (the guest's flags loaded first).
 */
static void run_flags_case(const uint8_t *op, size_t oplen, uint64_t flags_in, bool rec, unsigned pure,
                           uint64_t *flags_out)
{
    struct iemh *h = rec_case_create(rec, 0x8000);
    if (rec)
        rec_core_limit_pure(iem_core_of(h->cpu)->rec, pure);
    /* op; mov ecx, [rdx] with rdx non-canonical (#GP); hlt */
    uint8_t code[32];
    memcpy(code, op, oplen);
    static const uint8_t tail[] = { 0x8b, 0x0a, 0xf4 };
    memcpy(code + oplen, tail, sizeof(tail));
    h->s->gpr[CPU_RAX] = 0x12345687;
    h->s->gpr[CPU_RBX] = 0x80000081;
    h->s->gpr[CPU_RDX] = 0x8000000000000000ull;
    h->s->rflags = 0x2 | flags_in;
    iemh_sync(h);
    struct iem_step_result r;
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, oplen + sizeof(tail), 100, &r);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, 13);
    assert_int_equal(h->s->rip, IEMH_FREE_GPA + 0x100 + oplen);
    *flags_out = h->s->rflags;
    iemh_destroy(h);
}

static void test_rec_undefined_flags(void **state)
{
    static const struct { uint8_t bytes[8]; uint8_t len; } ops[] = {
        { { 0x21, 0xd8 }, 2 },             /* and eax, ebx */
        { { 0x09, 0xd8 }, 2 },             /* or eax, ebx */
        { { 0x30, 0xd8 }, 2 },             /* xor al, bl */
        { { 0x48, 0x85, 0xd8 }, 3 },       /* test rax, rbx */
        { { 0x83, 0xe0, 0x7f }, 3 },       /* and eax, 0x7f */
        { { 0xc1, 0xe0, 0x05 }, 3 },       /* shl eax, 5 */
        { { 0xc0, 0xe8, 0x03 }, 3 },       /* shr al, 3 */
        { { 0x66, 0xc1, 0xf8, 0x11 }, 4 }, /* sar ax, 17 */
        { { 0x48, 0xc1, 0xe0, 0x21 }, 4 }, /* shl rax, 33 */
        { { 0xc1, 0xc0, 0x03 }, 3 },       /* rol eax, 3 (SF ZF AF PF kept: defined) */
        { { 0x0f, 0xaf, 0xc3 }, 3 },       /* imul eax, ebx */
        { { 0x6b, 0xc3, 0x07 }, 3 },       /* imul eax, ebx, 7 */
        { { 0x48, 0x0f, 0xaf, 0xc3 }, 4 }, /* imul rax, rbx */
    };
    static const uint64_t ins[] = { 0, 0x8d5 /* OF SF ZF AF PF CF */ };
    unsigned probed = 0;
    {
        struct iemh *h = iemh_create(0);
        assert_int_equal(iem_rec_enable(h->cpu, true, 0), 0);
        probed = iem_core_of(h->cpu)->rec->pure;
        iemh_destroy(h);
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        for (size_t f = 0; f < 2; f++) {
            uint64_t ref, got_probed, got_none;
            run_flags_case(ops[i].bytes, ops[i].len, ins[f], false, 0, &ref);
            run_flags_case(ops[i].bytes, ops[i].len, ins[f], true, probed, &got_probed);
            run_flags_case(ops[i].bytes, ops[i].len, ins[f], true, 0, &got_none);
            if (got_probed != ref || got_none != ref)
                fail_msg("op %zu flags in %#llx: interpreter %#llx, recompiler %#llx (probed) %#llx (none)", i,
                         (unsigned long long)ins[f], (unsigned long long)ref, (unsigned long long)got_probed,
                         (unsigned long long)got_none);
        }
    }
}

/* ---- segmentation ------------------------------------------------------------------------ */

static void test_segment_checks(void **state)
{
    struct iemh *h = iemh_create(0);
    uint64_t v;
    iemh_mode_prot32(h, IEMH_FREE_GPA, 0x8000);
    struct cpu_seg *ds = &h->s->seg[CPU_DS], *ss = &h->s->seg[CPU_SS], *es = &h->s->seg[CPU_ES];
    ds->base = 0x50000;
    ds->limit = 0xfff;
    *ram32(h, 0x50ffc) = 0xcafef00d;
    iemh_sync(h);
    assert_int_equal(mem_rd(h, CPU_DS, 0xffc, 4, &v), -1);
    assert_int_equal(v, 0xcafef00d);
    assert_int_equal(mem_rd(h, CPU_DS, 0xffd, 4, &v), IEM_X_GP);
    assert_int_equal(h->cpu->fault_error, 0);

    /* The same on SS is #SS(0). */
    ss->limit = 0xfff;
    iemh_sync(h);
    assert_int_equal(mem_rd(h, CPU_SS, 0x1000, 1, &v), IEM_X_SS);

    /* Expand-down: offsets above the limit are valid, up to 0xffff with B clear. */
    es->attr = CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0x7;
    es->limit = 0xfff;
    es->base = 0;
    iemh_sync(h);
    assert_int_equal(mem_rd(h, CPU_ES, 0x800, 4, &v), IEM_X_GP);
    assert_int_equal(mem_rd(h, CPU_ES, 0x1000, 4, &v), -1);
    assert_int_equal(mem_rd(h, CPU_ES, 0xfffe, 4, &v), IEM_X_GP);

    /* Read-only data: write #GP; execute-only code: read #GP; unusable: #GP. */
    es->attr = CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0x1;
    es->limit = 0xffff;
    iemh_sync(h);
    assert_int_equal(mem_rd(h, CPU_ES, 0x10, 4, &v), -1);
    assert_int_equal(mem_wr(h, CPU_ES, 0x10, 4, 1), IEM_X_GP);
    es->attr = CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0x8;
    iemh_sync(h);
    assert_int_equal(mem_rd(h, CPU_ES, 0x10, 4, &v), IEM_X_GP);
    es->attr = CPU_SEG_ATTR_UNUSABLE;
    iemh_sync(h);
    assert_int_equal(mem_rd(h, CPU_ES, 0x10, 4, &v), IEM_X_GP);

    /* Real mode: a word at offset 0xffff crosses the 64 KiB limit. */
    iemh_mode_real(h, 0, 0x7c00, 0, 0x7000);
    assert_int_equal(mem_rd(h, CPU_DS, 0xfffe, 2, &v), -1);
    assert_int_equal(mem_rd(h, CPU_DS, 0xffff, 2, &v), IEM_X_GP);
    assert_int_equal(mem_rd(h, CPU_SS, 0xffff, 2, &v), IEM_X_SS);
    /* Unreal mode: a big cached limit stays usable in real mode. */
    h->s->seg[CPU_DS].limit = 0xffffffffu;
    iemh_sync(h);
    *ram32(h, 0x100000) = 0x1234;
    assert_int_equal(mem_rd(h, CPU_DS, 0x100000, 4, &v), -1);
    assert_int_equal(v, 0x1234);

    /* Long mode: FS base applies, DS base does not; non-canonical is #GP(0), or #SS(0) on SS. */
    iemh_mode_long64(h, IEMH_FREE_GPA, 0x8000);
    h->s->seg[CPU_FS].base = 0x50000;
    h->s->seg[CPU_DS].base = 0x70000;
    iemh_sync(h);
    assert_int_equal(mem_rd(h, CPU_FS, 0xffc, 4, &v), -1);
    assert_int_equal(v, 0xcafef00d);
    *ram32(h, 0xffc) = 0x5a5a5a5a;
    assert_int_equal(mem_rd(h, CPU_DS, 0xffc, 4, &v), -1);
    assert_int_equal(v, 0x5a5a5a5a);
    assert_int_equal(mem_rd(h, CPU_DS, 0x0000800000000000ull, 4, &v), IEM_X_GP);
    assert_int_equal(mem_rd(h, CPU_SS, 0x00007ffffffffffcull, 8, &v), IEM_X_SS);

    /* #AC: CPL 3, CR0.AM and EFLAGS.AC, misaligned */
    set_cpl3(h);
    h->s->cr0 |= IEM_CR0_AM;
    h->s->rflags |= IEM_F_AC;
    iemh_sync(h);
    assert_int_equal(mem_rd(h, CPU_DS, 0x1002, 4, &v), IEM_X_AC);
    assert_int_equal(mem_rd(h, CPU_DS, 0x1004, 4, &v), -1);
    iemh_destroy(h);
}

/* ---- MMIO and cross-page accesses --------------------------------------------------------- */

struct mmio_log {
    uint64_t last_off, last_val;
    unsigned last_size, writes, reads;
};

static uint64_t mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct mmio_log *l = opaque;
    l->reads++;
    return 0xa0a0a0a0a0a0a0a0ull + offset;
}

static void mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct mmio_log *l = opaque;
    l->writes++;
    l->last_off = offset;
    l->last_val = value;
    l->last_size = size;
}

static const struct io_ops g_mmio_ops = { .read = mmio_read, .write = mmio_write, .min_access = 1, .max_access = 8 };

/*
 * The translated TLB test at CPL 3: an entry filled by a supervisor read of a supervisor
 * page (no USER_OK in its tag) must not serve a user read after IRETQ to CPL 3 (no flush
 * in between): #PF with P|U, on the interpreter and translated alike.
 */
static void run_user_tlb_case(bool rec, struct iem_step_result *res, uint64_t *rdx)
{
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    if (rec)
        assert_int_equal(iem_rec_enable(h->cpu, true, 0), 0);
    pt_map(&p, IEMH_FREE_GPA, IEMH_FREE_GPA, F_P | F_RW | F_US, F_P | F_RW | F_US); /* code: user */
    pt_map(&p, 0x30000, 0x30000, F_P | F_RW, F_P | F_RW | F_US);                    /* kernel stack */
    pt_map(&p, IEMH_GDT_GPA, IEMH_GDT_GPA, F_P | F_RW, F_P | F_RW | F_US);          /* GDT (IRETQ) */
    pt_map(&p, 0x902000, 0x42000, F_P | F_RW, F_P | F_RW | F_US);                   /* supervisor data */
    pt_map(&p, 0x903000, 0x43000, F_P | F_RW | F_US, F_P | F_RW | F_US);            /* user data */
    *ram32(h, 0x42000) = 0x5a5a5a5a;
    *ram32(h, 0x43000) = 0x12345678;
    static const uint8_t code[] = {
        0x8b, 0x03,       /* mov eax, [rbx] (supervisor page, at CPL 0) */
        0x6a, 0x3b,       /* push 0x3b (SS) */
        0x41, 0x50,       /* push r8 (RSP) */
        0x9c,             /* pushfq */
        0x6a, 0x43,       /* push 0x43 (CS, CPL 3) */
        0x41, 0x51,       /* push r9 (RIP: U) */
        0x48, 0xcf,       /* iretq */
        0x8b, 0x16,       /* U: mov edx, [rsi] (user page) */
        0x8b, 0x0b,       /* mov ecx, [rbx] (supervisor page at CPL 3: #PF) */
        0xf4,             /* hlt */
    };
    h->s->gpr[CPU_RBX] = 0x902000;
    h->s->gpr[CPU_RSI] = 0x903000;
    h->s->gpr[CPU_RSP] = 0x31000;
    h->s->gpr[CPU_R8] = 0x903800;
    h->s->gpr[CPU_R9] = IEMH_FREE_GPA + 0x100 + 13;
    iemh_sync(h);
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 1000, res);
    *rdx = h->s->gpr[CPU_RDX];
    assert_int_equal(h->cpu->cpl, 3);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x5a5a5a5a);
    iemh_destroy(h);
}

static void test_rec_user_tlb(void **state)
{
    (void)state;
    for (int rec = 0; rec <= 1; rec++) {
        struct iem_step_result res;
        uint64_t rdx;
        run_user_tlb_case(rec, &res, &rdx);
        assert_int_equal(res.status, IEM_STEP_EXCEPTION);
        assert_int_equal(res.vector, IEM_X_PF);
        assert_int_equal(res.error, 5);
        assert_int_equal(res.cr2, 0x902000);
        assert_int_equal(rdx, 0x12345678);
    }
}

/*
 * Interrupts and translated code.  An interrupt raised by another thread kicks the vCPU
 * (vcpu_set_intr); one the vCPU raises itself (a device access) comes without a kick, so
 * the translation's handler call kicks when IF is set and the line is high, and every
 * inline link tests the kick before running on.  (What sets IF, STI, POPF, IRET, ends its
 * block, whose exit goes through rec_chain and its own test of the line.)  iem_step
 * delivers nothing and leaves the kick alone, so the tests see it.
 */
static void mmio_raise_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    (void)offset, (void)size;
    struct iemh *h = opaque;
    vcpu_set_intr(h->vcpu, value != 0);
}

static const struct io_ops g_mmio_raise_ops = { .read = mmio_read, .write = mmio_raise_write, .min_access = 1, .max_access = 8 };

/* L: mov [rbx], eax (the device raises the line when eax is 1); add eax, 1; dec ecx; jnz L; hlt, with IF as given. */
static unsigned run_self_raise_case(bool rec, bool if_set)
{
    struct iemh *h = rec_case_create(rec, 0x8000);
    struct mem_region *r = iemh_mmio_add(h, 0xf0000000u, 0x1000, &g_mmio_raise_ops, h);
    assert_non_null(r);
    static const uint8_t code[] = {
        0x89, 0x03,       /* L: mov [rbx], eax */
        0x83, 0xc0, 0x01, /* add eax, 1 */
        0xff, 0xc9,       /* dec ecx */
        0x75, 0xf7,       /* jnz L */
        0xf4,             /* hlt */
    };
    h->s->gpr[CPU_RAX] = (uint64_t)-40; /* the line goes high in round 41 */
    h->s->gpr[CPU_RBX] = 0xf0000000u;
    h->s->gpr[CPU_RCX] = 100;
    if (if_set)
        h->s->rflags |= IEM_F_IF;
    iemh_sync(h);
    struct iem_step_result res;
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 1u << 20, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_true(vcpu_intr_pending(h->vcpu));
    unsigned kicked = atomic_load(&iem_core_of(h->cpu)->kicked);
    mem_region_destroy(r);
    iemh_destroy(h);
    return kicked;
}

/* A device whose write kicks the vCPU when the value is nonzero (what another thread's vcpu_kick does). */
static void mmio_kick_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    (void)offset, (void)size;
    struct iemh *h = opaque;
    if (value)
        atomic_store(&iem_core_of(h->cpu)->kicked, 1);
}

static const struct io_ops g_mmio_kick_ops = { .read = mmio_read, .write = mmio_kick_write, .min_access = 1, .max_access = 8 };

/*
 * L: add eax, 1; cmp eax, 500; jne M; mov [rbx], esi; M: dec ecx; jnz L; hlt: 1000 rounds
 * whose blocks chain through their links, a device write in round 500 (a kick when esi is
 * nonzero).  Returns the exits through rec_chain.
 */
static uint64_t run_kicked_chain_case(bool kick)
{
    struct iemh *h = rec_case_create(true, 0x8000);
    struct mem_region *r = iemh_mmio_add(h, 0xf0000000u, 0x1000, &g_mmio_kick_ops, h);
    assert_non_null(r);
    static const uint8_t code[] = {
        0x83, 0xc0, 0x01,             /* L: add eax, 1 */
        0x3d, 0xf4, 0x01, 0x00, 0x00, /* cmp eax, 500 */
        0x75, 0x02,                   /* jne M */
        0x89, 0x33,                   /* mov [rbx], esi */
        0xff, 0xc9,                   /* M: dec ecx */
        0x75, 0xf0,                   /* jnz L */
        0xf4,                         /* hlt */
    };
    h->s->gpr[CPU_RAX] = 0;
    h->s->gpr[CPU_RBX] = 0xf0000000u;
    h->s->gpr[CPU_RCX] = 1000;
    h->s->gpr[CPU_RSI] = kick;
    iemh_sync(h);
    struct iem_step_result res;
    iemh_exec(h, IEMH_FREE_GPA + 0x100, code, sizeof(code), 1u << 20, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RAX], 1000);
    assert_int_equal(atomic_load(&iem_core_of(h->cpu)->kicked), kick);
    uint64_t calls = rec_case_stats(h).chain_calls;
    mem_region_destroy(r);
    iemh_destroy(h);
    return calls;
}

static void test_rec_interrupt_kick(void **state)
{
    (void)state;
    /* A device access raising this vCPU's line with IF set kicks; with IF clear it does not. */
    assert_int_equal(run_self_raise_case(true, true), 1);
    assert_int_equal(run_self_raise_case(true, false), 0);
    /* A kick stops every inline link: each block exit of the last 500 rounds asks rec_chain (which refuses). */
    uint64_t quiet = run_kicked_chain_case(false), loud = run_kicked_chain_case(true);
    if (quiet > 50 || loud < 900)
        fail_msg("exits through rec_chain: %llu without a kick, %llu with one", (unsigned long long)quiet,
                 (unsigned long long)loud);
}

static void test_mmio_access(void **state)
{
    struct iemh *h = iemh_create(0);
    struct mmio_log log = { 0 };
    uint64_t v;
    iemh_mode_long64(h, IEMH_FREE_GPA, 0x8000);
    struct mem_region *r = iemh_mmio_add(h, 0xf0000000u, 0x2000, &g_mmio_ops, &log);
    assert_non_null(r);
    assert_int_equal(mem_wr(h, CPU_DS, 0xf0000010u, 4, 0x12345678), -1);
    assert_int_equal(log.writes, 1);
    assert_int_equal(log.last_off, 0x10);
    assert_int_equal(log.last_size, 4);
    assert_int_equal(log.last_val, 0x12345678);
    assert_int_equal(mem_rd(h, CPU_DS, 0xf0000020u, 2, &v), -1);
    assert_int_equal(v, (0xa0a0a0a0a0a0a0a0ull + 0x20) & 0xffff);
    assert_int_equal(log.reads, 1);

    /* An 8-byte write straddling RAM (last page below) and MMIO: 4 bytes each side. */
    assert_null(iemh_mmio_add(h, 0x3ff000, 0, &g_mmio_ops, &log)); /* size 0 is refused */
    mem_region_destroy(r);
    r = iemh_mmio_add(h, 0x400000, 0x1000, &g_mmio_ops, &log);
    assert_non_null(r);
    log.writes = 0;
    assert_int_equal(mem_wr(h, CPU_DS, 0x3ffffc, 8, 0x1122334455667788ull), -1);
    assert_int_equal(*ram32(h, 0x3ffffc), 0x55667788);
    assert_int_equal(log.writes, 1);
    assert_int_equal(log.last_off, 0);
    assert_int_equal(log.last_val, 0x11223344);
    mem_region_destroy(r);
    iemh_destroy(h);
}

static void test_cross_page_write(void **state)
{
    struct pt p;
    struct iemh *h = long_with_pt(&p);
    uint64_t v;
    /* Two linear neighbours mapped to non-adjacent frames. */
    pt_map(&p, 0xd00000, 0x4b000, F_P | F_RW, F_P | F_RW);
    pt_map(&p, 0xd01000, 0x4a000, F_P | F_RW, F_P | F_RW);
    assert_int_equal(lin_write(h, 0xd00ffd, 8, 0x0807060504030201ull), -1);
    assert_int_equal(h->ram[0x4bffd], 1);
    assert_int_equal(h->ram[0x4bfff], 3);
    assert_int_equal(h->ram[0x4a000], 4);
    assert_int_equal(h->ram[0x4a004], 8);
    assert_int_equal(lin_read(h, 0xd00ffe, 4, &v), -1);
    assert_int_equal(v, 0x05040302);

    /* The second page is read-only: nothing is written to the first, CR2 names the second. */
    pt_map(&p, 0xd03000, 0x4c000, F_P, F_P | F_RW);
    pt_map(&p, 0xd02000, 0x4d000, F_P | F_RW, F_P | F_RW);
    memset(h->ram + 0x4dff0, 0xee, 0x10);
    assert_int_equal(lin_write(h, 0xd02ffc, 8, 0), IEM_X_PF);
    assert_int_equal(h->cpu->fault_cr2, 0xd03000);
    assert_int_equal(h->cpu->fault_error, 3);
    assert_int_equal(*ram32(h, 0x4dffc), 0xeeeeeeee);
    iemh_destroy(h);
}

/* ---- port I/O permission ---------------------------------------------------------------- */

static void do_port_out(struct iem_cpu *cpu, void *arg)
{
    struct acc *a = arg;
    iem_port_out(cpu, (uint16_t)a->addr, a->size, (uint32_t)a->value);
}

static void test_port_io_permission(void **state)
{
    struct iemh *h = iemh_create(0);
    iemh_mode_prot32(h, IEMH_FREE_GPA, 0x8000);
    struct acc a = { .addr = 0x80, .size = 1 };
    /* CPL 0 <= IOPL 0: no bitmap check. */
    assert_int_equal(iemh_try(h, do_port_out, &a), -1);
    /* CPL 3 > IOPL: the harness TSS puts its bitmap past the limit, so every port is denied. */
    h->s->seg[CPU_SS].attr |= 3u << CPU_SEG_ATTR_DPL_SHIFT;
    iemh_sync(h);
    assert_int_equal(h->cpu->cpl, 3);
    assert_int_equal(iemh_try(h, do_port_out, &a), IEM_X_GP);
    assert_int_equal(h->cpu->fault_error, 0);
    /* A bitmap within the limit: port 0x80 allowed, a word at 0x87 covers the denied 0x88. */
    uint8_t bitmap[0x20] = { 0 };
    bitmap[0x88 / 8] = 1u << (0x88 % 8);
    iemh_write(h, IEMH_TSS_GPA + 0x68, bitmap, sizeof(bitmap));
    h->s->seg[CPU_TR].limit = 0x68 + sizeof(bitmap) - 1;
    iemh_sync(h);
    assert_int_equal(iemh_try(h, do_port_out, &a), -1);
    a.addr = 0x87;
    a.size = 2;
    assert_int_equal(iemh_try(h, do_port_out, &a), IEM_X_GP);
    a.size = 1;
    assert_int_equal(iemh_try(h, do_port_out, &a), -1);
    /* Ports whose bitmap byte lies past the limit are denied. */
    a.addr = 0x200;
    assert_int_equal(iemh_try(h, do_port_out, &a), IEM_X_GP);
    /* IOPL 3 lifts the check at CPL 3. */
    h->s->rflags |= IEM_F_IOPL;
    iemh_sync(h);
    assert_int_equal(iemh_try(h, do_port_out, &a), -1);
    iemh_destroy(h);
}

/* ---- decoded-block cache ------------------------------------------------------------------ */

static void test_smc_invalidation(void **state)
{
    struct iemh *h = iemh_create(0);
    struct iem_core *core = iem_core_of(h->cpu);
    struct iem_step_result r;
    iemh_mode_long64(h, IEMH_FREE_GPA, 0x8000);
    uint8_t zmode = iem_decode_mode_key(h->cpu);
    static const uint8_t code[] = { 0x90, 0x90, 0x0f, 0x0b };
    uint64_t at = IEMH_FREE_GPA + 0x100;
    iemh_exec(h, at, code, sizeof(code), 10, &r);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_non_null(iem_cache_find(core, at, zmode));
    assert_true(iem_cache_is_code_page(core, at));

    /* A guest write elsewhere on the page (another 64-byte chunk) keeps the block. */
    assert_int_equal(mem_wr(h, CPU_DS, IEMH_FREE_GPA + 0x800, 4, 1), -1);
    assert_non_null(iem_cache_find(core, at, zmode));
    /* A write into the code drops it. */
    assert_int_equal(mem_wr(h, CPU_DS, at + 1, 1, 0x90), -1);
    assert_null(iem_cache_find(core, at, zmode));
    assert_false(iem_cache_is_code_page(core, at));

    /* DMA (mem_write from another agent) into code: dropped at the next block boundary. */
    iemh_exec(h, at, code, sizeof(code), 10, &r);
    assert_non_null(iem_cache_find(core, at, zmode));
    static const uint8_t hlt[] = { 0xf4 };
    iemh_write(h, at + 2, hlt, 1);
    h->s->rip = at;
    iemh_run(h, 10, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(h->s->rip, at + 3);
    iemh_destroy(h);
}

static void test_smc_same_block(void **state)
{
    struct iemh *h = iemh_create(0);
    struct iem_step_result r;
    iemh_mode_long64(h, IEMH_FREE_GPA, 0x8000);
    /*
     * mov byte [rip+1], 0x0b   ; turns the following "0f 1f 00" (nop) into "0f 0b 00" (ud2)
     * nop dword [rax]
     * ud2
     * Hardware executes the modified instruction: #UD at the second instruction.
     */
    static const uint8_t code[] = { 0xc6, 0x05, 0x01, 0x00, 0x00, 0x00, 0x0b, 0x0f, 0x1f, 0x00, 0x0f, 0x0b };
    h->s->gpr[CPU_RAX] = IEMH_FREE_GPA;
    iemh_exec(h, IEMH_FREE_GPA, code, sizeof(code), 10, &r);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(r.executed, 1);
    assert_int_equal(h->s->rip, IEMH_FREE_GPA + 7);
    iemh_destroy(h);
}

static void test_cross_page_insn_block(void **state)
{
    struct iemh *h = iemh_create(0);
    struct iem_core *core = iem_core_of(h->cpu);
    struct iem_step_result r;
    iemh_mode_long64(h, IEMH_FREE_GPA, 0x8000);
    uint8_t zmode = iem_decode_mode_key(h->cpu);
    /* "0f 0b" split over a page boundary: a block of its own, recorded on both pages. */
    static const uint8_t ud2[] = { 0x0f, 0x0b };
    uint64_t at = IEMH_FREE_GPA + 0xfff;
    iemh_exec(h, at, ud2, sizeof(ud2), 10, &r);
    assert_int_equal(r.vector, IEM_X_UD);
    assert_int_equal(h->s->rip, at);
    struct iem_block *b = iem_cache_find(core, at, zmode);
    assert_non_null(b);
    assert_int_equal(b->ninsns, 1);
    assert_int_equal(b->gpa2, IEMH_FREE_GPA + 0x1000);
    assert_true(iem_cache_is_code_page(core, IEMH_FREE_GPA + 0x1000));
    /* A guest write to the byte on the second page drops the block. */
    assert_int_equal(mem_wr(h, CPU_DS, IEMH_FREE_GPA + 0x1000, 1, 0x90), -1);
    assert_null(iem_cache_find(core, at, zmode));
    iemh_destroy(h);
}

/* ---- garbage input ----------------------------------------------------------------------------- */

static uint32_t xorshift(uint32_t *st)
{
    uint32_t x = *st;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *st = x;
}

/* Random bytes as code in every mode: only architectural outcomes, never a crash or a hang. */
static void test_random_code(void **state)
{
    struct iemh *h = iemh_create(0);
    uint32_t seed = 0x1234567u;
    uint8_t code[4096];
    for (int mode = 0; mode < 3; mode++) {
        for (int run = 0; run < 200; run++) {
            if (mode == 0)
                iemh_mode_real(h, 0x3000, 0, 0x1000, 0x8000);
            else if (mode == 1)
                iemh_mode_prot32(h, 0, 0x180000);
            else
                iemh_mode_long64(h, 0, 0x180000);
            for (size_t i = 0; i < sizeof(code); i++)
                code[i] = (uint8_t)xorshift(&seed);
            for (int r = 0; r < 16; r++)
                if (r != CPU_RSP)
                    h->s->gpr[r] = 0x100000 + (xorshift(&seed) & 0xfff);
            iemh_sync(h);
            struct iem_step_result res;
            iemh_exec(h, 0x30000, code, sizeof(code), 200, &res);
            assert_true(res.executed <= 200);
            assert_true(res.status == IEM_STEP_LIMIT || res.status == IEM_STEP_HLT ||
                        res.status == IEM_STEP_EXCEPTION);
            if (res.status == IEM_STEP_EXCEPTION)
                assert_true(res.vector >= 0 && res.vector < 32);
        }
    }
    iemh_destroy(h);
}

/* ---- the run loop on a started VM ---------------------------------------------------------- */

struct reset_ctx {
    struct iemh *h;
    unsigned resets;
};

/* Every reset (power-on included) starts at 0:7c00 on UD2 with an empty IVT: #UD, #GP, #DF, shutdown. */
static void reset_hook(void *opaque)
{
    struct reset_ctx *c = opaque;
    struct cpu_state *s = c->h->s;
    c->resets++;
    s->seg[CPU_CS].sel = 0;
    s->seg[CPU_CS].base = 0;
    s->rip = 0x7c00;
    s->idtr.limit = 0;
    if (c->resets >= 3)
        vm_request_poweroff(c->h->vm, 7);
}

static void test_triple_fault_resets(void **state)
{
    struct iemh *h = iemh_create(0);
    struct reset_ctx c = { .h = h };
    static const uint8_t ud2[] = { 0x0f, 0x0b };
    iemh_write(h, 0x7c00, ud2, sizeof(ud2));
    vm_set_reset_hook(h->vm, reset_hook, &c);
    assert_int_equal(vm_start(h->vm), 0);
    assert_int_equal(vm_wait(h->vm), 7);
    assert_true(c.resets >= 3);
    iemh_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_operands_64),
        cmocka_unit_test(test_decode_modes_16_32),
        cmocka_unit_test(test_decode_conditions),
        cmocka_unit_test(test_decode_invalid),
        cmocka_unit_test(test_fetch_ud_real_mode),
        cmocka_unit_test(test_fetch_page_faults),
        cmocka_unit_test(test_step_hlt),
        cmocka_unit_test(test_single_step_trap),
        cmocka_unit_test(test_paging_4level_ad),
        cmocka_unit_test(test_paging_fault_codes),
        cmocka_unit_test(test_paging_reserved_bits),
        cmocka_unit_test(test_paging_32bit),
        cmocka_unit_test(test_paging_pae),
        cmocka_unit_test(test_tlb_flush_semantics),
        cmocka_unit_test(test_links_follow_remaps),
        cmocka_unit_test(test_rec_code_flush),
        cmocka_unit_test(test_rec_self_loop),
        cmocka_unit_test(test_rec_undefined_flags),
        cmocka_unit_test(test_rec_flags_across_chain),
        cmocka_unit_test(test_rec_interrupt_kick),
        cmocka_unit_test(test_rec_ret_jcache),
        cmocka_unit_test(test_rec_same_page_links),
        cmocka_unit_test(test_rec_same_page_cross_remap),
        cmocka_unit_test(test_rec_page_local_alias),
        cmocka_unit_test(test_rec_fault_count),
        cmocka_unit_test(test_rec_user_tlb),
        cmocka_unit_test(test_rec_inplace_ops),
        cmocka_unit_test(test_rec_alu_mem),
        cmocka_unit_test(test_dirty_log),
        cmocka_unit_test(test_rec_register_cache),
        cmocka_unit_test(test_rec_ret_links),
        cmocka_unit_test(test_rec_cmp_mem_jcc),
        cmocka_unit_test(test_segment_checks),
        cmocka_unit_test(test_mmio_access),
        cmocka_unit_test(test_cross_page_write),
        cmocka_unit_test(test_port_io_permission),
        cmocka_unit_test(test_smc_invalidation),
        cmocka_unit_test(test_smc_same_block),
        cmocka_unit_test(test_cross_page_insn_block),
        cmocka_unit_test(test_random_code),
        cmocka_unit_test(test_triple_fault_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
