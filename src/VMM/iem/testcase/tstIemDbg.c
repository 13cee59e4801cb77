/* tstIemDbg.c - unit tests of the interpreter's debug registers: instruction, data and I/O breakpoints, RF, DR4/DR5 aliasing, general detect. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../iem-core.h"
#include "harness.h"

/*
 * Programs run in 64-bit mode at CODE_GPA (bytes from GNU as, source in the comments) with
 * data at DATA_GPA.  Expected values follow the SDM vol. 3B, 17.2 and 17.3.
 */
#define CODE_GPA  0x20000u
#define DATA_GPA  0x30000u
#define STACK_TOP 0x40000u

#define DR6_INIT  0xffff0ff0u
#define DR7_FIXED 0x400u
/* DR7 fields of breakpoint n (17.2.4). */
#define DR7_L(n)       (1u << (2 * (n)))
#define DR7_G(n)       (2u << (2 * (n)))
#define DR7_RW(n, rw)  ((uint64_t)(rw) << (16 + 4 * (n)))
#define DR7_LEN(n, l)  ((uint64_t)(l) << (18 + 4 * (n)))
#define LEN1 0u
#define LEN2 1u
#define LEN8 2u
#define LEN4 3u

static struct iemh *dbg_create(void)
{
    struct iemh *h = iemh_create(0);
    memset(h->ram + DATA_GPA, 0, 0x1000);
    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    h->s->dr[6] = DR6_INIT;
    return h;
}

/* Loads the breakpoint registers as a debugger or saved state would (state_put). */
static void dbg_set(struct iemh *h, unsigned n, uint64_t addr, uint64_t dr7)
{
    h->s->dr[n] = addr;
    h->s->dr[7] = dr7 | DR7_FIXED;
    iemh_sync(h);
}

static void expect_db(const struct iem_step_result *res)
{
    assert_int_equal(res->status, IEM_STEP_EXCEPTION);
    assert_int_equal(res->vector, IEM_X_DB);
}

static const uint8_t prog_ibp[] = {
    0xb8, 0x01, 0x00, 0x00, 0x00, /* mov eax, 1 */
    0xbb, 0x02, 0x00, 0x00, 0x00, /* mov ebx, 2   <- CODE_GPA + 5 */
    0xb9, 0x03, 0x00, 0x00, 0x00, /* mov ecx, 3 */
    0xf4,                         /* hlt */
};

/* An instruction breakpoint is a fault before the instruction; RF lets it run once and is then cleared (17.3.1.1). */
static void test_insn_breakpoint_and_rf(void **state)
{
    (void)state;
    struct iemh *h = dbg_create();
    struct iem_step_result res;

    dbg_set(h, 0, CODE_GPA + 5, DR7_L(0));
    iemh_exec(h, CODE_GPA, prog_ibp, sizeof(prog_ibp), 100, &res);
    expect_db(&res);
    assert_int_equal(h->s->rip, CODE_GPA + 5);
    assert_int_equal(h->s->gpr[CPU_RAX], 1);
    assert_int_not_equal(h->s->gpr[CPU_RBX], 2);
    assert_int_equal(h->s->dr[6] & 0xf, 0x1);

    /* Without RF it hits again; with RF the instruction runs and RF goes. */
    iemh_run(h, 100, &res);
    expect_db(&res);
    assert_int_equal(h->s->rip, CODE_GPA + 5);
    h->s->rflags |= IEM_F_RF;
    iemh_sync(h);
    iemh_run(h, 100, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RBX], 2);
    assert_int_equal(h->s->gpr[CPU_RCX], 3);
    assert_false(h->s->rflags & IEM_F_RF);

    /* Disabled (L0 and G0 clear), the address alone does nothing. */
    dbg_set(h, 0, CODE_GPA + 5, DR7_RW(0, 0));
    iemh_exec(h, CODE_GPA, prog_ibp, sizeof(prog_ibp), 100, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    iemh_destroy(h);
}

static const uint8_t prog_movdr[] = {
    0xb8, 0x20, 0x00, 0x02, 0x00,                   /* mov eax, 0x20020 */
    0x0f, 0x23, 0xc0,                               /* mov dr0, rax */
    0xb8, 0x01, 0x00, 0x00, 0x00,                   /* mov eax, 1 */
    0x0f, 0x23, 0xf8,                               /* mov dr7, rax */
    0xba, 0x07, 0x00, 0x00, 0x00,                   /* mov edx, 7 */
    0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, /* nop x 11 */
    0x90, 0x90, 0x90,
    0xbe, 0x09, 0x00, 0x00, 0x00,                   /* mov esi, 9   <- CODE_GPA + 0x20 */
    0xf4,                                           /* hlt */
};

/* The guest arms a breakpoint with MOV DR in the block that then reaches it. */
static void test_insn_breakpoint_from_guest(void **state)
{
    (void)state;
    struct iemh *h = dbg_create();
    struct iem_step_result res;

    iemh_exec(h, CODE_GPA, prog_movdr, sizeof(prog_movdr), 100, &res);
    expect_db(&res);
    assert_int_equal(h->s->rip, CODE_GPA + 0x20);
    assert_int_equal(h->s->gpr[CPU_RDX], 7);
    assert_int_not_equal(h->s->gpr[CPU_RSI], 9);
    assert_int_equal(h->s->dr[7], 0x401);
    assert_true(iem_core_of(h->cpu)->dbg_exec);
    iemh_destroy(h);
}

static const uint8_t prog_data_write[] = {
    0xbb, 0x00, 0x00, 0x03, 0x00,       /* mov ebx, 0x30000 */
    0xc7, 0x03, 0x01, 0x00, 0x00, 0x00, /* mov dword ptr [rbx], 1 */
    0x8b, 0x43, 0x04,                   /* mov eax, dword ptr [rbx+4] */
    0xc6, 0x43, 0x06, 0x02,             /* mov byte ptr [rbx+6], 2 */
    0xb9, 0x05, 0x00, 0x00, 0x00,       /* mov ecx, 5   <- CODE_GPA + 18 */
    0xf4,                               /* hlt */
};

/*
 * A write breakpoint (R/W = 01) with LEN 4 on an unaligned address covers the aligned dword
 * (17.2.5): the byte write at +6 hits, the dword write at +0 and the read at +4 do not.  The
 * trap comes after the write (17.3.1.2).
 */
static void test_data_write_breakpoint(void **state)
{
    (void)state;
    struct iemh *h = dbg_create();
    struct iem_step_result res;

    h->ram[DATA_GPA + 4] = 0x5a;
    dbg_set(h, 1, DATA_GPA + 5, DR7_L(1) | DR7_RW(1, 1) | DR7_LEN(1, LEN4));
    iemh_exec(h, CODE_GPA, prog_data_write, sizeof(prog_data_write), 100, &res);
    expect_db(&res);
    assert_int_equal(h->s->rip, CODE_GPA + 18);
    assert_int_equal(h->ram[DATA_GPA + 6], 2);
    assert_int_equal(h->ram[DATA_GPA], 1);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x5a);
    assert_int_equal(h->s->dr[6] & 0xf, 0x2);
    assert_int_not_equal(h->s->gpr[CPU_RCX], 5);

    /* The page stays off the TLB's direct mappings while the breakpoint is armed. */
    struct iem_tlb_entry *e = &h->cpu->tlb[IEM_ACC_WRITE][(DATA_GPA >> 12) % IEM_TLB_ENTRIES];
    assert_true(e->tag & IEM_TLB_VALID);
    assert_null(e->hva);

    iemh_run(h, 100, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RCX], 5);

    /* Disarmed, the same program runs through and the page is mapped directly again. */
    dbg_set(h, 1, DATA_GPA + 5, 0);
    assert_false(iem_core_of(h->cpu)->dbg_exec);
    iemh_exec(h, CODE_GPA, prog_data_write, sizeof(prog_data_write), 100, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_non_null(e->hva);
    iemh_destroy(h);
}

static const uint8_t prog_data_rw[] = {
    0xbb, 0x00, 0x00, 0x03, 0x00, /* mov ebx, 0x30000 */
    0x83, 0x03, 0x01,             /* add dword ptr [rbx], 1 */
    0x66, 0x8b, 0x43, 0x07,       /* mov ax, word ptr [rbx+7]   (ends at CODE_GPA + 12) */
    0x83, 0x43, 0x08, 0x01,       /* add dword ptr [rbx+8], 1   (ends at CODE_GPA + 16) */
    0xf4,                         /* hlt */
};

/* Read/write breakpoint (R/W = 11), LEN 8: a read straddling into the qword and a read-modify-write hit. */
static void test_data_rw_breakpoint(void **state)
{
    (void)state;
    struct iemh *h = dbg_create();
    struct iem_step_result res;

    dbg_set(h, 2, DATA_GPA + 0xc, DR7_G(2) | DR7_RW(2, 3) | DR7_LEN(2, LEN8));
    iemh_exec(h, CODE_GPA, prog_data_rw, sizeof(prog_data_rw), 100, &res);
    expect_db(&res);
    assert_int_equal(h->s->rip, CODE_GPA + 12);
    assert_int_equal(h->ram[DATA_GPA], 1);
    assert_int_equal(h->s->dr[6] & 0xf, 0x4);

    h->s->dr[6] = DR6_INIT;
    iemh_sync(h);
    iemh_run(h, 100, &res);
    expect_db(&res);
    assert_int_equal(h->s->rip, CODE_GPA + 16);
    assert_int_equal(h->ram[DATA_GPA + 8], 1);
    assert_int_equal(h->s->dr[6] & 0xf, 0x4);

    iemh_run(h, 100, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);

    /* A write-only breakpoint ignores the read. */
    dbg_set(h, 2, DATA_GPA + 0xc, DR7_G(2) | DR7_RW(2, 1) | DR7_LEN(2, LEN8));
    iemh_exec(h, CODE_GPA, prog_data_rw, sizeof(prog_data_rw), 100, &res);
    expect_db(&res);
    assert_int_equal(h->s->rip, CODE_GPA + 16);
    iemh_destroy(h);
}

static const uint8_t prog_io[] = {
    0xb0, 0x55,                   /* mov al, 0x55 */
    0xe6, 0x80,                   /* out 0x80, al   (ends at CODE_GPA + 4) */
    0xba, 0x34, 0x12, 0x00, 0x00, /* mov edx, 0x1234 */
    0xf4,                         /* hlt */
};

/* I/O breakpoints (R/W = 10) exist only with CR4.DE (17.2.4); LEN covers an aligned port range. */
static void test_io_breakpoint(void **state)
{
    (void)state;
    struct iemh *h = dbg_create();
    struct iem_step_result res;
    uint64_t io_bp = DR7_L(3) | DR7_RW(3, 2);

    dbg_set(h, 3, 0x80, io_bp | DR7_LEN(3, LEN1));
    iemh_exec(h, CODE_GPA, prog_io, sizeof(prog_io), 100, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->dr[6] & 0xf, 0);

    h->s->cr4 |= IEM_CR4_DE;
    h->s->gpr[CPU_RDX] = 0;
    iemh_sync(h);
    iemh_exec(h, CODE_GPA, prog_io, sizeof(prog_io), 100, &res);
    expect_db(&res);
    assert_int_equal(h->s->rip, CODE_GPA + 4);
    assert_int_equal(h->s->dr[6] & 0xf, 0x8);
    assert_int_not_equal(h->s->gpr[CPU_RDX], 0x1234);

    /* Port 0x81 with LEN 1 misses port 0x80; with LEN 2 it covers 0x80-0x81. */
    h->s->dr[6] = DR6_INIT;
    dbg_set(h, 3, 0x81, io_bp | DR7_LEN(3, LEN1));
    iemh_exec(h, CODE_GPA, prog_io, sizeof(prog_io), 100, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    dbg_set(h, 3, 0x81, io_bp | DR7_LEN(3, LEN2));
    iemh_exec(h, CODE_GPA, prog_io, sizeof(prog_io), 100, &res);
    expect_db(&res);
    assert_int_equal(h->s->dr[6] & 0xf, 0x8);
    iemh_destroy(h);
}

static const uint8_t prog_mov_dr4[] = {
    0x0f, 0x21, 0xe0, /* mov rax, dr4 */
    0xf4,             /* hlt */
};

static const uint8_t prog_mov_dr0[] = {
    0x0f, 0x21, 0xc0, /* mov rax, dr0 */
    0xf4,             /* hlt */
};

/* DR4/DR5 alias DR6/DR7 only while CR4.DE is clear (17.2.2); DR7.GD makes any MOV DR fault with DR6.BD (17.2.4). */
static void test_dr4_alias_and_general_detect(void **state)
{
    (void)state;
    struct iemh *h = dbg_create();
    struct iem_step_result res;

    h->s->dr[6] = DR6_INIT | 0x3;
    iemh_sync(h);
    iemh_exec(h, CODE_GPA, prog_mov_dr4, sizeof(prog_mov_dr4), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RAX], DR6_INIT | 0x3);

    h->s->cr4 |= IEM_CR4_DE;
    iemh_sync(h);
    iemh_exec(h, CODE_GPA, prog_mov_dr4, sizeof(prog_mov_dr4), 10, &res);
    assert_int_equal(res.status, IEM_STEP_EXCEPTION);
    assert_int_equal(res.vector, IEM_X_UD);

    h->s->dr[6] = DR6_INIT;
    h->s->dr[7] = DR7_FIXED | (1u << 13);
    h->s->gpr[CPU_RAX] = 0x77;
    iemh_sync(h);
    iemh_exec(h, CODE_GPA, prog_mov_dr0, sizeof(prog_mov_dr0), 10, &res);
    expect_db(&res);
    assert_int_equal(h->s->rip, CODE_GPA);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x77);
    assert_true(h->s->dr[6] & (1u << 13));
    assert_false(h->s->dr[7] & (1u << 13));
    assert_true(h->s->rflags & IEM_F_RF); /* a fault-class #DB other than an instruction breakpoint */

    /* GD is gone, so the handler's own access works. */
    iemh_run(h, 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    iemh_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insn_breakpoint_and_rf),
        cmocka_unit_test(test_insn_breakpoint_from_guest),
        cmocka_unit_test(test_data_write_breakpoint),
        cmocka_unit_test(test_data_rw_breakpoint),
        cmocka_unit_test(test_io_breakpoint),
        cmocka_unit_test(test_dr4_alias_and_general_detect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
