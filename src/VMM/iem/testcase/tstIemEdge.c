/* tstIemEdge.c - unit tests of interpreter edge cases: the A20 gate, ENTER's final stack-pointer check, LOCK on split operands. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "../iem-core.h"
#include "../iem-int.h"
#include "harness.h"

/* Byte arrays from GNU as; the source is in the comments. */
#define CODE_GPA  0x20000u
#define DATA_GPA  0x30000u
#define STACK_TOP 0x40000u

static uint16_t ram16(struct iemh *h, uint64_t gpa)
{
    uint16_t v;
    iemh_read(h, gpa, &v, 2);
    return v;
}

/* ---- A20 ------------------------------------------------------------------------------------------ */

static const uint8_t prog_a20_data[] = {
    0xb8, 0xff, 0xff,                   /* mov ax, 0xffff */
    0x8e, 0xd8,                         /* mov ds, ax */
    0xa1, 0x10, 0x00,                   /* mov ax, [0x10]          (linear 0x100000) */
    0xc7, 0x06, 0x20, 0x00, 0xef, 0xbe, /* mov word [0x20], 0xbeef (linear 0x100010) */
    0xf4,                               /* hlt */
};
static const uint8_t prog_a20_low[] = { 0xbb, 0x42, 0x42, 0xf4 };  /* mov bx, 0x4242; hlt */
static const uint8_t prog_a20_high[] = { 0xbb, 0x13, 0x13, 0xf4 }; /* mov bx, 0x1313; hlt */

/* With the gate off, FFFF:0010 is physical 0 for data and code alike; turning it on undoes the wrap. */
static void test_a20_real_mode_wrap(void **state)
{
    (void)state;
    struct iemh *h = iemh_create(0);
    struct iem_step_result res;
    uint16_t lo = 0x1111, hi = 0x2222;

    assert_true(vm_a20_enabled(h->vm));
    iemh_write(h, 0, &lo, 2);
    iemh_write(h, 0x100000, &hi, 2);
    vm_set_a20(h->vm, false);
    assert_false(vm_a20_enabled(h->vm));
    iemh_mode_real(h, CODE_GPA >> 4, 0, STACK_TOP >> 4, 0x100);
    iemh_exec(h, CODE_GPA, prog_a20_data, sizeof(prog_a20_data), 20, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RAX] & 0xffff, 0x1111);
    assert_int_equal(ram16(h, 0x10), 0xbeef);
    assert_int_equal(ram16(h, 0x100010), 0);

    /* Instruction fetch: CS:IP = FFFF:0110 is linear 0x100100. */
    iemh_write(h, 0x100, prog_a20_low, sizeof(prog_a20_low));
    iemh_write(h, 0x100100, prog_a20_high, sizeof(prog_a20_high));
    iemh_mode_real(h, 0xffff, 0x110, STACK_TOP >> 4, 0x100);
    iemh_run(h, 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RBX] & 0xffff, 0x4242);

    /* Gate on: the same linear addresses reach above 1 MiB (the TLB and the block links are dropped). */
    vm_set_a20(h->vm, true);
    h->s->rip = 0x110;
    h->s->halted = false;
    iemh_run(h, 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RBX] & 0xffff, 0x1313);
    iemh_mode_real(h, CODE_GPA >> 4, 0, STACK_TOP >> 4, 0x100);
    iemh_exec(h, CODE_GPA, prog_a20_data, sizeof(prog_a20_data), 20, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RAX] & 0xffff, 0x2222);
    assert_int_equal(ram16(h, 0x100010), 0xbeef);
    iemh_destroy(h);
}

/* ---- ENTER ---------------------------------------------------------------------------------------- */

static const uint8_t prog_enter_big[] = {
    0xbd, 0x78, 0x56, 0x34, 0x12, /* mov ebp, 0x12345678 */
    0xc8, 0x00, 0x10, 0x00,       /* enter 0x1000, 0 */
    0xf4,                         /* hlt */
};
static const uint8_t prog_enter_small[] = {
    0xbd, 0x78, 0x56, 0x34, 0x12, /* mov ebp, 0x12345678 */
    0xc8, 0x00, 0x01, 0x00,       /* enter 0x100, 0 */
    0xf4,                         /* hlt */
};
static const uint8_t prog_enter_nested_big[] = {
    0xbd, 0x00, 0x09, 0x00, 0x00, /* mov ebp, 0x900 */
    0xc8, 0xf8, 0x07, 0x02,       /* enter 0x7f8, 2 */
    0xf4,                         /* hlt */
};
static const uint8_t prog_enter_nested_fits[] = {
    0xbd, 0x00, 0x09, 0x00, 0x00, /* mov ebp, 0x900 */
    0xc8, 0xf0, 0x07, 0x02,       /* enter 0x7f0, 2 */
    0xf4,                         /* hlt */
};
static const uint8_t prog_enter_plain_big[] = { 0xc8, 0x00, 0x10, 0x00, 0xf4 };  /* enter 0x1000, 0; hlt */
static const uint8_t prog_enter_plain_small[] = { 0xc8, 0x00, 0x08, 0x00, 0xf4 }; /* enter 0x800, 0; hlt */
static const uint8_t prog_enter64[] = { 0xc8, 0x00, 0x01, 0x00, 0xf4 };           /* enter 0x100, 0; hlt */

static void expect_ss0(struct iemh *h, const struct iem_step_result *res, uint64_t rip)
{
    assert_int_equal(res->status, IEM_STEP_EXCEPTION);
    assert_int_equal(res->vector, IEM_X_SS);
    assert_true(res->has_error);
    assert_int_equal(res->error, 0);
    assert_int_equal(h->s->rip, rip);
}

/* 32-bit protected mode, SS limit 0xfff: a frame whose final ESP leaves the segment faults before any push (SDM ENTER). */
static void test_enter_final_sp_limit(void **state)
{
    (void)state;
    struct iemh *h = iemh_create(0);
    struct iem_step_result res;
    uint32_t marker = 0xaaaaaaaau;

    iemh_write(h, 0x7fc, &marker, 4);
    iemh_mode_prot32(h, CODE_GPA, 0x800);
    h->s->seg[CPU_SS].limit = 0xfff;
    iemh_sync(h);
    iemh_exec(h, CODE_GPA, prog_enter_big, sizeof(prog_enter_big), 10, &res);
    expect_ss0(h, &res, CODE_GPA + 5);
    assert_int_equal(h->s->gpr[CPU_RSP], 0x800);
    assert_int_equal(h->s->gpr[CPU_RBP], 0x12345678);
    assert_int_equal(iemh_read32(h, 0x7fc), 0xaaaaaaaau);

    iemh_exec(h, CODE_GPA, prog_enter_small, sizeof(prog_enter_small), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RSP], 0x6fc);
    assert_int_equal(h->s->gpr[CPU_RBP], 0x7fc);
    assert_int_equal(iemh_read32(h, 0x7fc), 0x12345678);

    /* Nesting level 2: the two frame pointers count too (0x800 - 12 - 0x7f8 wraps below 0). */
    h->s->gpr[CPU_RSP] = 0x800;
    iemh_sync(h);
    iemh_exec(h, CODE_GPA, prog_enter_nested_big, sizeof(prog_enter_nested_big), 10, &res);
    expect_ss0(h, &res, CODE_GPA + 5);
    assert_int_equal(h->s->gpr[CPU_RSP], 0x800);
    assert_int_equal(h->s->gpr[CPU_RBP], 0x900);
    iemh_exec(h, CODE_GPA, prog_enter_nested_fits, sizeof(prog_enter_nested_fits), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RSP], 4);
    assert_int_equal(h->s->gpr[CPU_RBP], 0x7fc);

    /* Expand-down SS (valid offsets limit+1 .. 0xffffffff): ending at or below the limit faults. */
    h->s->seg[CPU_SS].attr = (h->s->seg[CPU_SS].attr & ~(uint32_t)CPU_SEG_ATTR_TYPE_MASK) | 0x7;
    h->s->gpr[CPU_RSP] = 0x2000;
    iemh_sync(h);
    iemh_exec(h, CODE_GPA, prog_enter_plain_big, sizeof(prog_enter_plain_big), 10, &res);
    expect_ss0(h, &res, CODE_GPA);
    assert_int_equal(h->s->gpr[CPU_RSP], 0x2000);
    iemh_exec(h, CODE_GPA, prog_enter_plain_small, sizeof(prog_enter_plain_small), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RSP], 0x17fc);
    iemh_destroy(h);
}

/* 64-bit mode: a final RSP that leaves the canonical range is #SS(0), though every push is canonical. */
static void test_enter_final_rsp_canonical(void **state)
{
    (void)state;
    struct iemh *h = iemh_create(0);
    struct iem_step_result res;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    /* The upper canonical half's first 4 GiB alias physical memory, as the lower half does. */
    uint64_t pml4e = iemh_read64(h, IEMH_PT_GPA);
    iemh_write(h, IEMH_PT_GPA + 256 * 8, &pml4e, 8);
    iemh_sync(h);

    h->s->gpr[CPU_RSP] = 0xffff800000000040ull;
    h->s->gpr[CPU_RBP] = 0x1234;
    iemh_sync(h);
    iemh_exec(h, CODE_GPA, prog_enter64, sizeof(prog_enter64), 10, &res);
    expect_ss0(h, &res, CODE_GPA);
    assert_int_equal(h->s->gpr[CPU_RSP], 0xffff800000000040ull);
    assert_int_equal(h->s->gpr[CPU_RBP], 0x1234);

    h->s->gpr[CPU_RSP] = 0xffff800000000400ull;
    iemh_sync(h);
    iemh_exec(h, CODE_GPA, prog_enter64, sizeof(prog_enter64), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RSP], 0xffff8000000002f8ull);
    assert_int_equal(h->s->gpr[CPU_RBP], 0xffff8000000003f8ull);
    iemh_destroy(h);
}

/* ---- LOCK on operands no host atomic can take ------------------------------------------------------- */

static uint64_t slow_count(struct iemh *h)
{
    return atomic_load(&iem_core_of(h->cpu)->ivm->atomic_slow_count);
}

static const uint8_t prog_lock_split_add[] = {
    0xbb, 0xfe, 0x0f, 0x03, 0x00, /* mov ebx, 0x30ffe */
    0xb8, 0x01, 0x01, 0x01, 0x01, /* mov eax, 0x01010101 */
    0xf0, 0x01, 0x03,             /* lock add dword ptr [rbx], eax */
    0xf4,                         /* hlt */
};
static const uint8_t prog_lock_aligned_add[] = {
    0xbb, 0x00, 0x10, 0x03, 0x00, /* mov ebx, 0x31000 */
    0xb8, 0x01, 0x01, 0x01, 0x01, /* mov eax, 0x01010101 */
    0xf0, 0x01, 0x03,             /* lock add dword ptr [rbx], eax */
    0xf4,                         /* hlt */
};
static const uint8_t prog_lock_split_cmpxchg[] = {
    0xbb, 0xfc, 0x0f, 0x03, 0x00,                               /* mov ebx, 0x30ffc */
    0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* mov rax, 0x1122334455667788 */
    0x48, 0xb9, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* mov rcx, 0x0102030405060708 */
    0xf0, 0x48, 0x0f, 0xb1, 0x0b,                               /* lock cmpxchg qword ptr [rbx], rcx */
    0x0f, 0x94, 0xc2,                                           /* setz dl */
    0xf4,                                                       /* hlt */
};
static const uint8_t prog_lock_split_cmpxchg8b[] = {
    0xb8, 0x88, 0x77, 0x66, 0x55, /* mov eax, 0x55667788 */
    0xba, 0x44, 0x33, 0x22, 0x11, /* mov edx, 0x11223344 */
    0xbb, 0xaa, 0xaa, 0xaa, 0xaa, /* mov ebx, 0xaaaaaaaa */
    0xb9, 0xbb, 0xbb, 0xbb, 0xbb, /* mov ecx, 0xbbbbbbbb */
    0xbe, 0xfc, 0x0f, 0x03, 0x00, /* mov esi, 0x30ffc */
    0xf0, 0x0f, 0xc7, 0x0e,       /* lock cmpxchg8b qword ptr [rsi] */
    0x40, 0x0f, 0x94, 0xc7,       /* setz dil */
    0xf4,                         /* hlt */
};
static const uint8_t prog_xchg_split[] = {
    0xbb, 0xfd, 0x0f, 0x03, 0x00, /* mov ebx, 0x30ffd */
    0xb8, 0x99, 0x00, 0x00, 0x00, /* mov eax, 0x99 */
    0x87, 0x03,                   /* xchg dword ptr [rbx], eax   (locked without a prefix) */
    0xf4,                         /* hlt */
};

/* Page-crossing locked read-modify-writes take the VM-wide lock and compute the right result; aligned ones do not. */
static void test_lock_split_operands(void **state)
{
    (void)state;
    struct iemh *h = iemh_create(0);
    struct iem_step_result res;
    uint32_t v32 = 0x11223344u, r32;
    uint64_t v64 = 0x1122334455667788ull, r64;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    iemh_write(h, 0x30ffe, &v32, 4);
    uint64_t before = slow_count(h);
    iemh_exec(h, CODE_GPA, prog_lock_split_add, sizeof(prog_lock_split_add), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    iemh_read(h, 0x30ffe, &r32, 4);
    assert_int_equal(r32, 0x12233445u);
    assert_false(h->s->rflags & (IEM_F_CF | IEM_F_ZF | IEM_F_SF | IEM_F_OF));
    assert_int_equal(slow_count(h), before + 1);
    assert_false(iem_core_of(h->cpu)->atomic_held);

    iemh_write(h, 0x31000, &v32, 4);
    iemh_exec(h, CODE_GPA, prog_lock_aligned_add, sizeof(prog_lock_aligned_add), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(iemh_read32(h, 0x31000), 0x12233445u);
    assert_int_equal(slow_count(h), before + 1);

    iemh_write(h, 0x30ffc, &v64, 8);
    iemh_exec(h, CODE_GPA, prog_lock_split_cmpxchg, sizeof(prog_lock_split_cmpxchg), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    iemh_read(h, 0x30ffc, &r64, 8);
    assert_int_equal(r64, 0x0102030405060708ull);
    assert_int_equal(h->s->gpr[CPU_RDX] & 0xff, 1);
    assert_int_equal(slow_count(h), before + 2);

    iemh_write(h, 0x30ffc, &v64, 8);
    iemh_exec(h, CODE_GPA, prog_lock_split_cmpxchg8b, sizeof(prog_lock_split_cmpxchg8b), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    iemh_read(h, 0x30ffc, &r64, 8);
    assert_int_equal(r64, 0xbbbbbbbbaaaaaaaaull);
    assert_int_equal(h->s->gpr[CPU_RDI] & 0xff, 1);
    assert_int_equal(slow_count(h), before + 3);

    iemh_write(h, 0x30ffd, &v32, 4);
    iemh_exec(h, CODE_GPA, prog_xchg_split, sizeof(prog_xchg_split), 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    iemh_read(h, 0x30ffd, &r32, 4);
    assert_int_equal(r32, 0x99);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x11223344u);
    assert_int_equal(slow_count(h), before + 4);
    iemh_destroy(h);
}

static void lock_then_fault(struct iem_cpu *cpu, void *arg)
{
    (void)arg;
    iem_int_atomic_begin(cpu);
    iem_raise_gp0(cpu);
}

/* A fault while the VM-wide lock is held releases it (iem_raise), or the next locked operation would deadlock. */
static void test_lock_released_on_fault(void **state)
{
    (void)state;
    struct iemh *h = iemh_create(0);
    struct iem_vm *ivm = iem_core_of(h->cpu)->ivm;

    assert_int_equal(iemh_try(h, lock_then_fault, NULL), IEM_X_GP);
    assert_false(iem_core_of(h->cpu)->atomic_held);
    assert_int_equal(pthread_mutex_trylock(&ivm->atomic_lock.m), 0);
    pthread_mutex_unlock(&ivm->atomic_lock.m);
    iemh_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a20_real_mode_wrap),
        cmocka_unit_test(test_enter_final_sp_limit),
        cmocka_unit_test(test_enter_final_rsp_canonical),
        cmocka_unit_test(test_lock_split_operands),
        cmocka_unit_test(test_lock_released_on_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
