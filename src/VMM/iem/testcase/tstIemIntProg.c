/* tstIemIntProg.c - unit tests of the interpreter's integer family: guest programs in 16-, 32- and 64-bit modes through decoder, handlers and memory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "harness.h"

/* ---- Guest programs through the whole interpreter (decoder, handlers, memory) ------------------------ */

/*
 * Code runs at CODE_GPA, data lives at DATA_GPA, the stack at STACK_TOP; the expected values
 * in the tests were worked out from the SDM by hand (the byte arrays come from GNU as, the
 * source is in the comments).
 */
#define CODE_GPA  0x20000u
#define DATA_GPA  0x30000u
#define STACK_TOP 0x40000u

static struct iemh *prog_create(void)
{
    struct iemh *h = iemh_create(0);
    memset(h->ram + DATA_GPA, 0, 0x20000);
    return h;
}

static void prog_run(struct iemh *h, const uint8_t *code, size_t len, uint64_t max, enum iem_step_status want,
                     struct iem_step_result *res)
{
    iemh_exec(h, CODE_GPA, code, len, max, res);
    assert_int_equal(res->status, want);
}

static uint16_t ram16(struct iemh *h, uint64_t gpa)
{
    uint16_t v;
    iemh_read(h, gpa, &v, 2);
    return v;
}

static const uint8_t prog_t64a[] = {
    0x48, 0xc7, 0xc3, 0x00, 0x00, 0x03, 0x00,          /* mov rbx, 0x30000 */
    0x48, 0xc7, 0x03, 0x05, 0x00, 0x00, 0x00,          /* mov qword ptr [rbx], 5 */
    0x48, 0x83, 0x03, 0x07,                            /* add qword ptr [rbx], 7 */
    0xf0, 0x48, 0x83, 0x03, 0x01,                      /* lock add qword ptr [rbx], 1 */
    0xb8, 0x0d, 0x00, 0x00, 0x00,                      /* mov eax, 13 */
    0xb9, 0x64, 0x00, 0x00, 0x00,                      /* mov ecx, 100 */
    0xf0, 0x48, 0x0f, 0xb1, 0x0b,                      /* lock cmpxchg [rbx], rcx */
    0x0f, 0x94, 0xc2,                                  /* setz dl */
    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,          /* mov rax, -1 */
    0xb8, 0x05, 0x00, 0x00, 0x00,                      /* mov eax, 5 */
    0x48, 0x0f, 0xb1, 0x0b,                            /* cmpxchg [rbx], rcx */
    0x41, 0x0f, 0x94, 0xc0,                            /* setz r8b */
    0x49, 0xc7, 0xc1, 0x03, 0x00, 0x00, 0x00,          /* mov r9, 3 */
    0xf0, 0x4c, 0x0f, 0xc1, 0x0b,                      /* lock xadd [rbx], r9 */
    0x49, 0xc7, 0xc2, 0x55, 0x00, 0x00, 0x00,          /* mov r10, 0x55 */
    0x4c, 0x87, 0x13,                                  /* xchg [rbx], r10 */
    0xc7, 0x43, 0x08, 0x00, 0x00, 0x00, 0x80,          /* mov dword ptr [rbx+8], 0x80000000 */
    0xf0, 0xf7, 0x5b, 0x08,                            /* lock neg dword ptr [rbx+8] */
    0x41, 0x0f, 0x90, 0xc3,                            /* seto r11b */
    0xf0, 0x0f, 0xba, 0x6b, 0x08, 0x03,                /* lock bts dword ptr [rbx+8], 3 */
    0xc6, 0x43, 0x0e, 0x80,                            /* mov byte ptr [rbx+14], 0x80 */
    0x49, 0xc7, 0xc4, 0xf7, 0xff, 0xff, 0xff,          /* mov r12, -9 */
    0x4c, 0x0f, 0xa3, 0x63, 0x10,                      /* bt [rbx+16], r12 */
    0x41, 0x0f, 0x92, 0xc5,                            /* setc r13b */
    0x4c, 0x0f, 0xb3, 0x63, 0x10,                      /* btr [rbx+16], r12 */
    0x41, 0x0f, 0x92, 0xc6,                            /* setc r14b */
    0xf4,                                              /* hlt */
};

/* Memory read-modify-write with and without LOCK, CMPXCHG both ways, XADD, XCHG, NEG overflow,
 * BTS on memory, and BT/BTR with a negative register bit offset into a bit string. */
static void test_prog64_alu_memory(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64a, sizeof(prog_t64a), 100, IEM_STEP_HLT, &res);
    assert_int_equal(iemh_read64(h, DATA_GPA), 0x55);
    assert_int_equal(h->s->gpr[CPU_RDX] & 0xff, 1);        /* LOCK CMPXCHG matched */
    assert_int_equal(h->s->gpr[CPU_R8] & 0xff, 0);         /* CMPXCHG did not */
    assert_int_equal(h->s->gpr[CPU_RAX], 100);             /* ... and loaded the accumulator */
    assert_int_equal(h->s->gpr[CPU_R9], 100);              /* XADD: old value */
    assert_int_equal(h->s->gpr[CPU_R10], 103);             /* XCHG: old value */
    assert_int_equal(iemh_read32(h, DATA_GPA + 8), 0x80000008u);
    assert_int_equal(h->s->gpr[CPU_R11] & 0xff, 1);        /* NEG 80000000h overflows */
    assert_int_equal(h->s->gpr[CPU_R13] & 0xff, 1);        /* BT bit -9 = bit 55 of [rbx+8] */
    assert_int_equal(h->s->gpr[CPU_R14] & 0xff, 1);        /* BTR found it set ... */
    assert_int_equal(h->ram[DATA_GPA + 14], 0);            /* ... and cleared it */
    iemh_destroy(h);
}

static const uint8_t prog_t64s[] = {
    0x48, 0xc7, 0xc6, 0x00, 0x00, 0x03, 0x00,          /* mov rsi, 0x30000 */
    0x48, 0xc7, 0xc7, 0x00, 0x10, 0x03, 0x00,          /* mov rdi, 0x31000 */
    0x48, 0xc7, 0xc1, 0x0c, 0x00, 0x00, 0x00,          /* mov rcx, 12 */
    0xfc,                                              /* cld */
    0xf3, 0xa4,                                        /* rep movsb */
    0x49, 0x89, 0xf0,                                  /* mov r8, rsi */
    0x49, 0x89, 0xf9,                                  /* mov r9, rdi */
    0x48, 0xc7, 0xc7, 0x00, 0x20, 0x03, 0x00,          /* mov rdi, 0x32000 */
    0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* mov rax, 0x1122334455667788 */
    0xb9, 0x03, 0x00, 0x00, 0x00,                      /* mov ecx, 3 */
    0xf3, 0x48, 0xab,                                  /* rep stosq */
    0x49, 0x89, 0xfa,                                  /* mov r10, rdi */
    0x48, 0xc7, 0xc7, 0x00, 0x00, 0x03, 0x00,          /* mov rdi, 0x30000 */
    0xb0, 0x77,                                        /* mov al, 'w' */
    0xb9, 0x64, 0x00, 0x00, 0x00,                      /* mov ecx, 100 */
    0xf2, 0xae,                                        /* repne scasb */
    0x49, 0x89, 0xfb,                                  /* mov r11, rdi */
    0x49, 0x89, 0xcc,                                  /* mov r12, rcx */
    0x48, 0xc7, 0xc6, 0x00, 0x00, 0x03, 0x00,          /* mov rsi, 0x30000 */
    0x48, 0xc7, 0xc7, 0x00, 0x10, 0x03, 0x00,          /* mov rdi, 0x31000 */
    0xb9, 0x0c, 0x00, 0x00, 0x00,                      /* mov ecx, 12 */
    0xf3, 0xa6,                                        /* repe cmpsb */
    0x41, 0x0f, 0x94, 0xc5,                            /* setz r13b */
    0x49, 0x89, 0xce,                                  /* mov r14, rcx */
    0xfd,                                              /* std */
    0x48, 0xc7, 0xc6, 0x03, 0x00, 0x03, 0x00,          /* mov rsi, 0x30003 */
    0x48, 0xc7, 0xc7, 0x03, 0x30, 0x03, 0x00,          /* mov rdi, 0x33003 */
    0xb9, 0x04, 0x00, 0x00, 0x00,                      /* mov ecx, 4 */
    0xf3, 0xa4,                                        /* rep movsb */
    0xfc,                                              /* cld */
    0x49, 0x89, 0xff,                                  /* mov r15, rdi */
    0x48, 0xc7, 0xc6, 0x00, 0x00, 0x03, 0x00,          /* mov rsi, 0x30000 */
    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,          /* mov rax, -1 */
    0xad,                                              /* lodsd */
    0x48, 0x89, 0xf5,                                  /* mov rbp, rsi */
    0x48, 0xbe, 0x04, 0x00, 0x03, 0x00, 0xff, 0xff, 0xff, 0xff, /* mov rsi, 0xffffffff00030004 */
    0x67, 0xac,                                        /* addr32 lodsb */
    0x48, 0x89, 0xf3,                                  /* mov rbx, rsi */
    0xf4,                                              /* hlt */
};

/* REP MOVSB/STOSQ/SCASB/CMPSB forward and backward, LODSD zero-extension, and a 32-bit
 * address size in 64-bit mode (ESI used and zero-extended). */
static void test_prog64_strings(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    memcpy(h->ram + DATA_GPA, "hello, world", 12);
    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64s, sizeof(prog_t64s), 200, IEM_STEP_HLT, &res);
    assert_memory_equal(h->ram + DATA_GPA + 0x1000, "hello, world", 12);
    assert_int_equal(h->s->gpr[CPU_R8], DATA_GPA + 12);
    assert_int_equal(h->s->gpr[CPU_R9], DATA_GPA + 0x1000 + 12);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(iemh_read64(h, DATA_GPA + 0x2000 + 8 * i), 0x1122334455667788ull);
    assert_int_equal(iemh_read64(h, DATA_GPA + 0x2018), 0);
    assert_int_equal(h->s->gpr[CPU_R10], DATA_GPA + 0x2018);
    assert_int_equal(h->s->gpr[CPU_R11], DATA_GPA + 8);    /* REPNE SCASB stopped after the 'w' */
    assert_int_equal(h->s->gpr[CPU_R12], 92);
    assert_int_equal(h->s->gpr[CPU_R13] & 0xff, 1);        /* REPE CMPSB: all equal */
    assert_int_equal(h->s->gpr[CPU_R14], 0);
    assert_memory_equal(h->ram + DATA_GPA + 0x3000, "hell", 4); /* copied backwards with DF=1 */
    assert_int_equal(h->ram[DATA_GPA + 0x2fff], 0);
    assert_int_equal(h->s->gpr[CPU_R15], DATA_GPA + 0x2fff);
    assert_int_equal(h->s->gpr[CPU_RBP], DATA_GPA + 4);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x6c6c656full);  /* LODSD zero-extended, then LODSB 'o' */
    assert_int_equal(h->s->gpr[CPU_RSI], DATA_GPA + 5);   /* ADDR32: ESI incremented, zero-extended */
    assert_false(h->s->rflags & IEM_F_DF);
    iemh_destroy(h);
}

static const uint8_t prog_t64b[] = {
    0x48, 0xc7, 0xc4, 0x00, 0x00, 0x04, 0x00,          /* mov rsp, 0x40000 */
    0x48, 0xc7, 0xc0, 0x34, 0x12, 0x00, 0x00,          /* mov rax, 0x1234 */
    0x50,                                              /* push rax */
    0x6a, 0xfe,                                        /* push -2 */
    0x5b,                                              /* pop rbx */
    0x59,                                              /* pop rcx */
    0xe8, 0x5e, 0x00, 0x00, 0x00,                      /* call func */
    0x49, 0x89, 0xc4,                                  /* mov r12, rax */
    0xb9, 0x05, 0x00, 0x00, 0x00,                      /* mov ecx, 5 */
    0x31, 0xd2,                                        /* xor edx, edx */
    0x01, 0xca,                                        /* 1:  add edx, ecx */
    0xe2, 0xfc,                                        /* loop 1b */
    0x48, 0xc7, 0xc5, 0x11, 0x11, 0x00, 0x00,          /* mov rbp, 0x1111 */
    0xc8, 0x20, 0x00, 0x00,                            /* enter 0x20, 0 */
    0x49, 0x89, 0xed,                                  /* mov r13, rbp */
    0x49, 0x89, 0xe6,                                  /* mov r14, rsp */
    0xc9,                                              /* leave */
    0x49, 0x89, 0xe7,                                  /* mov r15, rsp */
    0x68, 0x00, 0x00, 0x03, 0x00,                      /* push 0x30000 */
    0x8f, 0x44, 0x24, 0xf8,                            /* pop qword ptr [rsp-8] */
    0x4c, 0x8b, 0x44, 0x24, 0xf0,                      /* mov r8, [rsp-16] */
    0x4c, 0x8d, 0x0d, 0x05, 0x00, 0x00, 0x00,          /* lea r9, [rip+target] */
    0x41, 0xff, 0xe1,                                  /* jmp r9 */
    0x0f, 0x0b,                                        /* ud2 */
    0x31, 0xc0,                                        /* xor eax, eax */
    0x74, 0x02,                                        /* jz 2f */
    0x0f, 0x0b,                                        /* ud2 */
    0x48, 0xc7, 0xc2, 0x00, 0x00, 0x03, 0x00,          /* 2:  mov rdx, 0x30000 */
    0x52,                                              /* push rdx */
    0x8f, 0x04, 0x24,                                  /* pop qword ptr [rsp] */
    0x4c, 0x8b, 0x14, 0x24,                            /* mov r10, [rsp - 0] */
    0x6a, 0x42,                                        /* push 0x42 */
    0x8f, 0x44, 0x24, 0x08,                            /* pop qword ptr [rsp+8] */
    0x4c, 0x8b, 0x5c, 0x24, 0x08,                      /* mov r11, [rsp+8] */
    0xf4,                                              /* hlt */
    0xb8, 0x99, 0x00, 0x00, 0x00,                      /* mov eax, 0x99 */
    0xc2, 0x00, 0x00,                                  /* ret 0 */
};

/* PUSH/POP (POP [rsp+x] addresses with the incremented RSP), CALL/RET imm16, LOOP, ENTER/LEAVE,
 * indirect JMP and Jcc. */
static void test_prog64_stack_branch(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64b, sizeof(prog_t64b), 200, IEM_STEP_HLT, &res);
    assert_int_equal(h->s->gpr[CPU_RBX], 0xfffffffffffffffeull);
    assert_int_equal(h->s->gpr[CPU_RCX], 0);
    assert_int_equal(h->s->gpr[CPU_RDX], DATA_GPA);
    assert_int_equal(h->s->gpr[CPU_R12], 0x99);
    assert_int_equal(h->s->gpr[CPU_R13], STACK_TOP - 8);
    assert_int_equal(h->s->gpr[CPU_R14], STACK_TOP - 8 - 0x20);
    assert_int_equal(h->s->gpr[CPU_RBP], 0x1111);
    assert_int_equal(h->s->gpr[CPU_R15], STACK_TOP);
    assert_int_equal(h->s->gpr[CPU_R8], 0xfffffffffffffffeull);
    assert_int_equal(h->s->gpr[CPU_R10], DATA_GPA);
    assert_int_equal(h->s->gpr[CPU_R11], 0x42);
    assert_int_equal(h->s->gpr[CPU_RSP], STACK_TOP);
    iemh_destroy(h);
}

static const uint8_t prog_t64r[] = {
    0x48, 0xb8, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, /* mov rax, 0xffffffff00000005 */
    0x48, 0xbb, 0x07, 0x00, 0x00, 0x00, 0xaa, 0xaa, 0xaa, 0xaa, /* mov rbx, 0xaaaaaaaa00000007 */
    0xb9, 0x55, 0x00, 0x00, 0x00,                      /* mov ecx, 0x55 */
    0x0f, 0xb1, 0xcb,                                  /* cmpxchg ebx, ecx */
    0x49, 0x89, 0xc0,                                  /* mov r8, rax */
    0x49, 0x89, 0xd9,                                  /* mov r9, rbx */
    0x48, 0xb8, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, /* mov rax, 0xffffffff00000007 */
    0x48, 0xbb, 0x07, 0x00, 0x00, 0x00, 0xaa, 0xaa, 0xaa, 0xaa, /* mov rbx, 0xaaaaaaaa00000007 */
    0x0f, 0xb1, 0xcb,                                  /* cmpxchg ebx, ecx */
    0x49, 0x89, 0xc2,                                  /* mov r10, rax */
    0x49, 0x89, 0xdb,                                  /* mov r11, rbx */
    0x49, 0xc7, 0xc4, 0xff, 0xff, 0xff, 0xff,          /* mov r12, -1 */
    0x31, 0xd2,                                        /* xor edx, edx */
    0x44, 0x0f, 0xbc, 0xe2,                            /* bsf r12d, edx */
    0x49, 0xc7, 0xc5, 0xff, 0xff, 0xff, 0xff,          /* mov r13, -1 */
    0x39, 0xc0,                                        /* cmp eax, eax */
    0x44, 0x0f, 0x45, 0xe9,                            /* cmovnz r13d, ecx */
    0x49, 0xc7, 0xc6, 0xff, 0xff, 0xff, 0xff,          /* mov r14, -1 */
    0xba, 0x80, 0x00, 0x00, 0x00,                      /* mov edx, 0x80 */
    0x44, 0x0f, 0xbd, 0xf2,                            /* bsr r14d, edx */
    0x49, 0xbf, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* mov r15, 0x1122334455667788 */
    0x49, 0x0f, 0xcf,                                  /* bswap r15 */
    0x48, 0xbe, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* mov rsi, 0x1122334455667788 */
    0x66, 0x0f, 0xce,                                  /* .byte 0x66, 0x0f, 0xce */
    0x48, 0xc7, 0xc7, 0xff, 0xff, 0xff, 0xff,          /* mov rdi, 0xffffffffffffffff */
    0x0f, 0xb7, 0xff,                                  /* movzx edi, di */
    0x48, 0x0f, 0xbf, 0x2d, 0x2a, 0x00, 0x00, 0x00,    /* movsx rbp, word ptr [rip+val] */
    0x48, 0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff,          /* mov rdx, -1 */
    0xc1, 0xe2, 0x00,                                  /* shl edx, 0 */
    0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff,          /* mov rcx, -1 */
    0x0f, 0xa4, 0xc9, 0x00,                            /* shld ecx, ecx, 0 */
    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,          /* mov rax, -1 */
    0x0f, 0xba, 0xe0, 0x00,                            /* bt eax, 0 */
    0x0f, 0x18, 0x08,                                  /* prefetcht0 [rax] */
    0x0f, 0x0d, 0x08,                                  /* prefetchw [rax] */
    0x0f, 0x1f, 0x00,                                  /* nop dword ptr [rax] */
    0xf4,                                              /* hlt */
    0x01, 0x80,                                        /* val: .word 0x8001 */
};

/* Which register a 32-bit CMPXCHG, BSF/BSR, CMOVcc, shift by 0 and BT write (and so zero-extend)
 * in 64-bit mode, BSWAP r64/r16, MOVZX and MOVSX; prefetch hints and the hint NOP never fault
 * (their address here is not canonical). */
static void test_prog64_register_rules(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64r, sizeof(prog_t64r), 100, IEM_STEP_HLT, &res);
    assert_int_equal(h->s->gpr[CPU_R8], 7);                      /* failure: EAX written */
    assert_int_equal(h->s->gpr[CPU_R9], 0xaaaaaaaa00000007ull);  /* ... destination untouched */
    assert_int_equal(h->s->gpr[CPU_R10], 0xffffffff00000007ull); /* success: RAX untouched */
    assert_int_equal(h->s->gpr[CPU_R11], 0x55);                  /* ... destination written */
    assert_int_equal(h->s->gpr[CPU_R12], ~0ull);                 /* BSF of 0: register untouched */
    assert_int_equal(h->s->gpr[CPU_R13], 0xffffffffull);         /* CMOVcc false still zero-extends */
    assert_int_equal(h->s->gpr[CPU_R14], 7);
    assert_int_equal(h->s->gpr[CPU_R15], 0x8877665544332211ull);
    assert_int_equal(h->s->gpr[CPU_RSI], 0x1122334455660000ull); /* BSWAP r16 clears the word */
    assert_int_equal(h->s->gpr[CPU_RDI], 0xffff);
    assert_int_equal(h->s->gpr[CPU_RBP], 0xffffffffffff8001ull);
    assert_int_equal(h->s->gpr[CPU_RDX], 0xffffffffull);         /* SHL r32, 0 writes r32 */
    assert_int_equal(h->s->gpr[CPU_RCX], 0xffffffffull);         /* SHLD r32, r32, 0 too */
    assert_int_equal(h->s->gpr[CPU_RAX], ~0ull);                 /* BT writes nothing */
    iemh_destroy(h);
}

static const uint8_t prog_t64io[] = {
    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,          /* mov rax, -1 */
    0x66, 0xba, 0x78, 0x56,                            /* mov dx, 0x5678 */
    0xed,                                              /* in eax, dx */
    0x49, 0x89, 0xc0,                                  /* mov r8, rax */
    0xe4, 0x81,                                        /* in al, 0x81 */
    0xe6, 0x80,                                        /* out 0x80, al */
    0x48, 0xc7, 0xc7, 0x00, 0x00, 0x03, 0x00,          /* mov rdi, 0x30000 */
    0xb9, 0x03, 0x00, 0x00, 0x00,                      /* mov ecx, 3 */
    0xf3, 0x6c,                                        /* rep insb */
    0x49, 0x89, 0xf9,                                  /* mov r9, rdi */
    0x48, 0xc7, 0xc6, 0x00, 0x00, 0x03, 0x00,          /* mov rsi, 0x30000 */
    0xb9, 0x02, 0x00, 0x00, 0x00,                      /* mov ecx, 2 */
    0x66, 0xf3, 0x6f,                                  /* rep outsw */
    0x49, 0x89, 0xf2,                                  /* mov r10, rsi */
    0x49, 0x89, 0xcb,                                  /* mov r11, rcx */
    0xf4,                                              /* hlt */
};

/* IN/OUT and REP INSB/OUTSW against unassigned ports (reads give all ones). */
static void test_prog64_ports(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64io, sizeof(prog_t64io), 100, IEM_STEP_HLT, &res);
    assert_int_equal(h->s->gpr[CPU_R8], 0xffffffffull); /* IN EAX zero-extends RAX */
    assert_int_equal(h->ram[DATA_GPA], 0xff);
    assert_int_equal(h->ram[DATA_GPA + 2], 0xff);
    assert_int_equal(h->ram[DATA_GPA + 3], 0);
    assert_int_equal(h->s->gpr[CPU_R9], DATA_GPA + 3);
    assert_int_equal(h->s->gpr[CPU_R10], DATA_GPA + 4);
    assert_int_equal(h->s->gpr[CPU_R11], 0);
    iemh_destroy(h);
}

static const uint8_t prog_t64c[] = {
    0x48, 0xc7, 0xc7, 0x00, 0x00, 0x03, 0x00,          /* mov rdi, 0x30000 */
    0xb9, 0x10, 0x27, 0x00, 0x00,                      /* mov ecx, 10000 */
    0xb0, 0x5a,                                        /* mov al, 0x5a */
    0xf3, 0xaa,                                        /* rep stosb */
    0xf4,                                              /* hlt */
};

/* A long REP STOSB stops after IEM_INT_REP_CHUNK iterations with RIP on the instruction and
 * RCX/RDI holding the progress, then finishes when run again. */
static void test_rep_chunk_restart(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;
    const uint64_t rep_rip = CODE_GPA + sizeof(prog_t64c) - 3;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64c, sizeof(prog_t64c), 4, IEM_STEP_LIMIT, &res);
    assert_int_equal(h->s->rip, rep_rip);
    assert_int_equal(h->s->gpr[CPU_RCX], 10000 - 4096);
    assert_int_equal(h->s->gpr[CPU_RDI], DATA_GPA + 4096);
    assert_int_equal(h->ram[DATA_GPA + 4095], 0x5a);
    assert_int_equal(h->ram[DATA_GPA + 4096], 0);
    iemh_run(h, 10, &res);
    assert_int_equal(res.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RCX], 0);
    assert_int_equal(h->s->gpr[CPU_RDI], DATA_GPA + 10000);
    assert_int_equal(h->ram[DATA_GPA + 9999], 0x5a);
    assert_int_equal(h->ram[DATA_GPA + 10000], 0);
    iemh_destroy(h);
}

static const uint8_t prog_t32[] = {
    0xbc, 0x00, 0x00, 0x04, 0x00,                      /* mov esp, 0x40000 */
    0xb8, 0x11, 0x11, 0x11, 0x11,                      /* mov eax, 0x11111111 */
    0xb9, 0x22, 0x22, 0x22, 0x22,                      /* mov ecx, 0x22222222 */
    0xba, 0x33, 0x33, 0x33, 0x33,                      /* mov edx, 0x33333333 */
    0xbb, 0x44, 0x44, 0x44, 0x44,                      /* mov ebx, 0x44444444 */
    0xbd, 0x55, 0x55, 0x55, 0x55,                      /* mov ebp, 0x55555555 */
    0xbe, 0x66, 0x66, 0x66, 0x66,                      /* mov esi, 0x66666666 */
    0xbf, 0x77, 0x77, 0x77, 0x77,                      /* mov edi, 0x77777777 */
    0x60,                                              /* pushad */
    0x8b, 0x44, 0x24, 0x0c,                            /* mov eax, [esp+12] */
    0xa3, 0x40, 0x00, 0x03, 0x00,                      /* mov [0x30040], eax */
    0x31, 0xc0,                                        /* xor eax, eax */
    0x31, 0xc9,                                        /* xor ecx, ecx */
    0x31, 0xd2,                                        /* xor edx, edx */
    0x31, 0xdb,                                        /* xor ebx, ebx */
    0x31, 0xed,                                        /* xor ebp, ebp */
    0x31, 0xf6,                                        /* xor esi, esi */
    0x31, 0xff,                                        /* xor edi, edi */
    0x61,                                              /* popad */
    0x89, 0x25, 0x44, 0x00, 0x03, 0x00,                /* mov [0x30044], esp */
    0xbd, 0x00, 0xff, 0x03, 0x00,                      /* mov ebp, 0x3ff00 */
    0xc8, 0x08, 0x00, 0x03,                            /* enter 8, 3 */
    0x89, 0x2d, 0x00, 0x00, 0x03, 0x00,                /* mov [0x30000], ebp */
    0x89, 0x25, 0x04, 0x00, 0x03, 0x00,                /* mov [0x30004], esp */
    0xc9,                                              /* leave */
    0x89, 0x2d, 0x08, 0x00, 0x03, 0x00,                /* mov [0x30008], ebp */
    0x89, 0x25, 0x0c, 0x00, 0x03, 0x00,                /* mov [0x3000c], esp */
    0xbf, 0x10, 0x00, 0x03, 0x00,                      /* mov edi, 0x30010 */
    0xba, 0x22, 0x22, 0x11, 0x11,                      /* mov edx, 0x11112222 */
    0xb8, 0x44, 0x44, 0x33, 0x33,                      /* mov eax, 0x33334444 */
    0xb9, 0xef, 0xbe, 0xad, 0xde,                      /* mov ecx, 0xdeadbeef */
    0xbb, 0xbe, 0xba, 0xfe, 0xca,                      /* mov ebx, 0xcafebabe */
    0xf0, 0x0f, 0xc7, 0x0f,                            /* lock cmpxchg8b [edi] */
    0x0f, 0x94, 0x05, 0x20, 0x00, 0x03, 0x00,          /* setz byte ptr [0x30020] */
    0x0f, 0xc7, 0x0f,                                  /* cmpxchg8b [edi] */
    0x0f, 0x94, 0x05, 0x21, 0x00, 0x03, 0x00,          /* setz byte ptr [0x30021] */
    0xa3, 0x24, 0x00, 0x03, 0x00,                      /* mov [0x30024], eax */
    0x89, 0x15, 0x28, 0x00, 0x03, 0x00,                /* mov [0x30028], edx */
    0xb9, 0x03, 0x00, 0x01, 0x00,                      /* mov ecx, 0x10003 */
    0x31, 0xd2,                                        /* xor edx, edx */
    0x42,                                              /* 1:  inc edx */
    0x67, 0xe2, 0xfc,                                  /* addr16 loop 1b */
    0x89, 0x15, 0x2c, 0x00, 0x03, 0x00,                /* mov [0x3002c], edx */
    0x89, 0x0d, 0x30, 0x00, 0x03, 0x00,                /* mov [0x30030], ecx */
    0x31, 0xc9,                                        /* xor ecx, ecx */
    0xe3, 0x02,                                        /* jecxz 2f */
    0x0f, 0x0b,                                        /* ud2 */
    0xb0, 0x79,                                        /* 2:  mov al, 0x79 */
    0x04, 0x35,                                        /* add al, 0x35 */
    0x27,                                              /* daa */
    0x0f, 0x92, 0xc4,                                  /* setc ah */
    0x66, 0xa3, 0x34, 0x00, 0x03, 0x00,                /* mov [0x30034], ax */
    0x66, 0xb8, 0x05, 0x09,                            /* mov ax, 0x0905 */
    0xd5, 0x10,                                        /* aad 16 */
    0x66, 0xa3, 0x36, 0x00, 0x03, 0x00,                /* mov [0x30036], ax */
    0xb0, 0x3f,                                        /* mov al, 63 */
    0xd4, 0x0a,                                        /* aam */
    0x66, 0xa3, 0x38, 0x00, 0x03, 0x00,                /* mov [0x30038], ax */
    0xf9,                                              /* stc */
    0xd6,                                              /* .byte 0xd6 */
    0xa2, 0x3a, 0x00, 0x03, 0x00,                      /* mov [0x3003a], al */
    0xb8, 0x05, 0x00, 0x00, 0x00,                      /* mov eax, 5 */
    0xbb, 0x50, 0x00, 0x03, 0x00,                      /* mov ebx, 0x30050 */
    0x62, 0x03,                                        /* bound eax, [ebx] */
    0xb8, 0x01, 0x00, 0x00, 0x00,                      /* mov eax, 1 */
    0x31, 0xdb,                                        /* xor ebx, ebx */
    0xf7, 0xf3,                                        /* div ebx */
    0xf4,                                              /* hlt */
};

/* 32-bit protected mode: PUSHAD/POPAD, ENTER with nesting level 3, CMPXCHG8B both ways, LOOP with
 * a 16-bit address size (CX only), JECXZ, DAA/AAD/AAM/SALC, BOUND in range, then DIV by zero. */
static void test_prog32(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;
    uint64_t q = 0x1111222233334444ull;

    iemh_write(h, DATA_GPA + 0x10, &q, 8);
    h->ram[DATA_GPA + 0x54] = 10; /* BOUND limits 0..10 at 0x30050 */
    memcpy(h->ram + 0x3fefc, "\xaa\xaa\x00\x00", 4);
    memcpy(h->ram + 0x3fef8, "\xbb\xbb\x00\x00", 4);
    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t32, sizeof(prog_t32), 200, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_DE);
    assert_int_equal(h->s->rip, CODE_GPA + sizeof(prog_t32) - 3); /* on the DIV */
    assert_int_equal(h->s->gpr[CPU_RAX], 1);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x40), STACK_TOP); /* PUSHAD stored the original ESP */
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x44), STACK_TOP);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x00), STACK_TOP - 4);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x04), STACK_TOP - 0x18);
    assert_int_equal(iemh_read32(h, STACK_TOP - 8), 0xaaaa);       /* copied frame pointers */
    assert_int_equal(iemh_read32(h, STACK_TOP - 12), 0xbbbb);
    assert_int_equal(iemh_read32(h, STACK_TOP - 16), STACK_TOP - 4);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x08), 0x3ff00);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x0c), STACK_TOP);
    assert_int_equal(iemh_read64(h, DATA_GPA + 0x10), 0xdeadbeefcafebabeull);
    assert_int_equal(h->ram[DATA_GPA + 0x20], 1);
    assert_int_equal(h->ram[DATA_GPA + 0x21], 0);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x24), 0xcafebabe);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x28), 0xdeadbeef);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x2c), 3);
    assert_int_equal(iemh_read32(h, DATA_GPA + 0x30), 0x10000);
    assert_int_equal(ram16(h, DATA_GPA + 0x34), 0x0114);             /* DAA 14h, CF */
    assert_int_equal(ram16(h, DATA_GPA + 0x36), 0x0095);             /* AAD 16 */
    assert_int_equal(ram16(h, DATA_GPA + 0x38), 0x0603);             /* AAM */
    assert_int_equal(h->ram[DATA_GPA + 0x3a], 0xff);                 /* SALC with CF */
    iemh_destroy(h);
}

static const uint8_t prog_t16[] = {
    0xb8, 0x00, 0x30,                                  /* mov ax, 0x3000 */
    0x8e, 0xd8,                                        /* mov ds, ax */
    0x8e, 0xc0,                                        /* mov es, ax */
    0xbb, 0xff, 0xff,                                  /* mov bx, 0xffff */
    0xbe, 0x02, 0x00,                                  /* mov si, 2 */
    0xc6, 0x00, 0x5a,                                  /* mov byte ptr [bx+si], 0x5a */
    0xb8, 0x11, 0x11,                                  /* mov ax, 0x1111 */
    0xb9, 0x22, 0x22,                                  /* mov cx, 0x2222 */
    0xba, 0x33, 0x33,                                  /* mov dx, 0x3333 */
    0xbb, 0x44, 0x44,                                  /* mov bx, 0x4444 */
    0xbd, 0x55, 0x55,                                  /* mov bp, 0x5555 */
    0xbe, 0x66, 0x66,                                  /* mov si, 0x6666 */
    0xbf, 0x77, 0x77,                                  /* mov di, 0x7777 */
    0x60,                                              /* pusha */
    0x31, 0xc0,                                        /* xor ax, ax */
    0x31, 0xc9,                                        /* xor cx, cx */
    0x31, 0xd2,                                        /* xor dx, dx */
    0x31, 0xdb,                                        /* xor bx, bx */
    0x31, 0xed,                                        /* xor bp, bp */
    0x31, 0xf6,                                        /* xor si, si */
    0x31, 0xff,                                        /* xor di, di */
    0x61,                                              /* popa */
    0xbf, 0x00, 0x01,                                  /* mov di, 0x100 */
    0xb9, 0x04, 0x00,                                  /* mov cx, 4 */
    0xb8, 0xcd, 0xab,                                  /* mov ax, 0xabcd */
    0xfc,                                              /* cld */
    0xf3, 0xab,                                        /* rep stosw */
    0x89, 0x3e, 0x10, 0x00,                            /* mov [0x10], di */
    0xbe, 0xff, 0xff,                                  /* mov si, 0xffff */
    0xbf, 0x00, 0x02,                                  /* mov di, 0x200 */
    0xb9, 0x02, 0x00,                                  /* mov cx, 2 */
    0xf3, 0xa4,                                        /* rep movsb */
    0x89, 0x36, 0x12, 0x00,                            /* mov [0x12], si */
    0xbb, 0x00, 0x04,                                  /* mov bx, 0x400 */
    0xb0, 0x02,                                        /* mov al, 2 */
    0xd7,                                              /* xlat */
    0xa2, 0x14, 0x00,                                  /* mov [0x14], al */
    0xbd, 0x34, 0x12,                                  /* mov bp, 0x1234 */
    0xc8, 0x04, 0x00, 0x01,                            /* enter 4, 1 */
    0x89, 0x2e, 0x16, 0x00,                            /* mov [0x16], bp */
    0x89, 0x26, 0x18, 0x00,                            /* mov [0x18], sp */
    0xc9,                                              /* leave */
    0x89, 0x2e, 0x1a, 0x00,                            /* mov [0x1a], bp */
    0x89, 0x26, 0x1c, 0x00,                            /* mov [0x1c], sp */
    0xb9, 0x03, 0x00,                                  /* mov cx, 3 */
    0x31, 0xd2,                                        /* xor dx, dx */
    0x01, 0xca,                                        /* 1:  add dx, cx */
    0xe2, 0xfc,                                        /* loop 1b */
    0x89, 0x16, 0x1e, 0x00,                            /* mov [0x1e], dx */
    0xfd,                                              /* std */
    0xbe, 0x03, 0x04,                                  /* mov si, 0x403 */
    0xac,                                              /* lodsb */
    0xfc,                                              /* cld */
    0x89, 0x36, 0x20, 0x00,                            /* mov [0x20], si */
    0xa2, 0x22, 0x00,                                  /* mov [0x22], al */
    0x68, 0x65, 0x87,                                  /* push 0x8765 */
    0x8f, 0x06, 0x24, 0x00,                            /* pop word ptr [0x24] */
    0xe8, 0x04, 0x00,                                  /* call 2f */
    0xa3, 0x26, 0x00,                                  /* mov [0x26], ax */
    0xf4,                                              /* hlt */
    0xb8, 0x21, 0x43,                                  /* 2:  mov ax, 0x4321 */
    0xc3,                                              /* ret */
};

/* Real mode: MOV to DS/ES, 16-bit addressing wrapping at 64 KiB, PUSHA/POPA, REP STOSW, REP MOVSB
 * with SI wrapping, XLAT, ENTER level 1/LEAVE, LOOP, LODSB with DF=1, POP to memory, CALL/RET. */
static void test_prog16_real(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;
    static const uint8_t table[4] = { 0x10, 0x20, 0x30, 0x40 };

    memcpy(h->ram + DATA_GPA + 0x400, table, 4);
    h->ram[DATA_GPA + 0xffff] = 0xa1;
    h->ram[DATA_GPA] = 0xb2;
    iemh_mode_real(h, CODE_GPA >> 4, 0, STACK_TOP >> 4, 0x100);
    prog_run(h, prog_t16, sizeof(prog_t16), 200, IEM_STEP_HLT, &res);
    assert_int_equal(h->ram[DATA_GPA + 1], 0x5a);        /* [BX+SI] = FFFFh + 2 wraps to 1 */
    assert_int_equal(h->ram[DATA_GPA + 0x10001], 0);
    assert_int_equal(ram16(h, STACK_TOP + 0xfe), 0x0099); /* CALL's return IP, last into this slot */
    assert_int_equal(ram16(h, STACK_TOP + 0xfa), 0x3333); /* PUSHA: AX CX DX ... */
    assert_int_equal(ram16(h, STACK_TOP + 0xf6), 0x0100); /* ... the original SP ... */
    assert_int_equal(ram16(h, STACK_TOP + 0xf0), 0x7777); /* ... DI last */
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(ram16(h, DATA_GPA + 0x100 + 2 * i), 0xabcd);
    assert_int_equal(ram16(h, DATA_GPA + 0x108), 0);
    assert_int_equal(ram16(h, DATA_GPA + 0x10), 0x108);
    assert_int_equal(h->ram[DATA_GPA + 0x200], 0xa1);    /* DS:FFFF then DS:0000 */
    assert_int_equal(h->ram[DATA_GPA + 0x201], 0xb2);
    assert_int_equal(ram16(h, DATA_GPA + 0x12), 0x0001);
    assert_int_equal(h->ram[DATA_GPA + 0x14], 0x30);     /* XLAT */
    assert_int_equal(ram16(h, DATA_GPA + 0x16), 0x00fe); /* ENTER 4, 1 */
    assert_int_equal(ram16(h, DATA_GPA + 0x18), 0x00f8);
    assert_int_equal(ram16(h, STACK_TOP + 0xfc), 0x00fe);
    assert_int_equal(ram16(h, DATA_GPA + 0x1a), 0x1234); /* LEAVE */
    assert_int_equal(ram16(h, DATA_GPA + 0x1c), 0x0100);
    assert_int_equal(ram16(h, DATA_GPA + 0x1e), 6);      /* LOOP: 3 + 2 + 1 */
    assert_int_equal(ram16(h, DATA_GPA + 0x20), 0x402);  /* LODSB with DF=1 */
    assert_int_equal(h->ram[DATA_GPA + 0x22], 0x40);
    assert_int_equal(ram16(h, DATA_GPA + 0x24), 0x8765);
    assert_int_equal(ram16(h, DATA_GPA + 0x26), 0x4321);
    assert_int_equal(h->s->gpr[CPU_RSP] & 0xffff, 0x100);
    iemh_destroy(h);
}

static const uint8_t prog_t32f[] = {
    0xbf, 0x00, 0x00, 0x03, 0x00,                      /* mov edi, 0x30000 */
    0xb9, 0x08, 0x00, 0x00, 0x00,                      /* mov ecx, 8 */
    0xb0, 0x77,                                        /* mov al, 0x77 */
    0xf3, 0xaa,                                        /* rep stosb */
    0xf4,                                              /* hlt */
};

/* A fault in the middle of REP STOSB (ES limit) reports the iterations done so far. */
static void test_rep_fault_midway(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    h->s->seg[CPU_ES].limit = DATA_GPA + 3;
    iemh_sync(h);
    prog_run(h, prog_t32f, sizeof(prog_t32f), 100, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_GP);
    assert_int_equal(h->s->rip, CODE_GPA + sizeof(prog_t32f) - 3);
    assert_int_equal(h->s->gpr[CPU_RCX], 4);
    assert_int_equal(h->s->gpr[CPU_RDI], DATA_GPA + 4);
    assert_int_equal(h->ram[DATA_GPA + 3], 0x77);
    assert_int_equal(h->ram[DATA_GPA + 4], 0);
    iemh_destroy(h);
}

static const uint8_t prog_t32p[] = {
    0xbc, 0x00, 0x00, 0x04, 0x00,                      /* mov esp, 0x40000 */
    0x60,                                              /* pushad */
    0xf4,                                              /* hlt */
};

/* PUSHAD whose last slots fall outside an expand-down stack segment: #SS before anything is
 * written, ESP unchanged. */
static void test_pushad_fault_keeps_state(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    h->s->seg[CPU_SS].attr = CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | CPU_SEG_ATTR_DB | 0x6; /* data, expand-down, writable */
    h->s->seg[CPU_SS].limit = STACK_TOP - 0x19;
    iemh_sync(h);
    prog_run(h, prog_t32p, sizeof(prog_t32p), 100, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_SS);
    assert_int_equal(h->s->gpr[CPU_RSP], STACK_TOP);
    assert_int_equal(iemh_read32(h, STACK_TOP - 4), 0);
    iemh_destroy(h);
}

static const uint8_t prog_t32b[] = {
    0xb8, 0x0b, 0x00, 0x00, 0x00,                      /* mov eax, 11 */
    0xbb, 0x50, 0x00, 0x03, 0x00,                      /* mov ebx, 0x30050 */
    0x62, 0x03,                                        /* bound eax, [ebx] */
    0xf4,                                              /* hlt */
};
static const uint8_t prog_t32m[] = {
    0x66, 0xb8, 0x34, 0x12,                            /* mov ax, 0x1234 */
    0xd4, 0x00,                                        /* .byte 0xd4, 0x00 */
    0xf4,                                              /* hlt */
};

/* BOUND out of range raises #BR; AAM 0 raises #DE; neither changes a register. */
static void test_bound_and_aam_faults(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    h->ram[DATA_GPA + 0x54] = 10;
    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t32b, sizeof(prog_t32b), 10, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_BR);
    assert_int_equal(h->s->rip, CODE_GPA + sizeof(prog_t32b) - 3);

    iemh_mode_prot32(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t32m, sizeof(prog_t32m), 10, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_DE);
    assert_int_equal(h->s->gpr[CPU_RAX] & 0xffff, 0x1234);
    iemh_destroy(h);
}

static const uint8_t prog_t64o[] = {
    0x48, 0xc7, 0xc6, 0x00, 0x00, 0x03, 0x00,          /* mov rsi, 0x30000 */
    0x48, 0xc7, 0xc7, 0x01, 0x00, 0x03, 0x00,          /* mov rdi, 0x30001 */
    0xb9, 0x64, 0x00, 0x00, 0x00,                      /* mov ecx, 100 */
    0xf3, 0xa4,                                        /* rep movsb */
    0x48, 0xc7, 0xc6, 0x00, 0x10, 0x03, 0x00,          /* mov rsi, 0x31000 */
    0x48, 0xc7, 0xc7, 0x04, 0x40, 0x03, 0x00,          /* mov rdi, 0x34004 */
    0xb9, 0xe8, 0x03, 0x00, 0x00,                      /* mov ecx, 1000 */
    0xf3, 0x48, 0xa5,                                  /* rep movsq */
    0x49, 0x89, 0xf0,                                  /* mov r8, rsi */
    0x49, 0x89, 0xf9,                                  /* mov r9, rdi */
    0x48, 0x8d, 0x35, 0x14, 0x00, 0x00, 0x00,          /* lea rsi, [rip+newcode] */
    0x48, 0x8d, 0x3d, 0x07, 0x00, 0x00, 0x00,          /* lea rdi, [rip+patch] */
    0xb9, 0x05, 0x00, 0x00, 0x00,                      /* mov ecx, 5 */
    0xf3, 0xa4,                                        /* rep movsb */
    0xb8, 0x01, 0x00, 0x00, 0x00,                      /* mov eax, 1 */
    0xf4,                                              /* hlt */
    0xb8, 0x02, 0x00, 0x00, 0x00,                      /* mov eax, 2 */
};

/* The bulk path of REP MOVS: an overlapping forward MOVSB replicates its first byte, a MOVSQ of
 * 8000 bytes crosses pages at unaligned addresses, and a REP MOVSB over the instruction that
 * follows it (at "patch") is seen by that instruction (code pages are never written in bulk). */
static void test_rep_movs_bulk(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    h->ram[DATA_GPA] = 0xc3;
    for (unsigned i = 0; i < 8000; i++)
        h->ram[DATA_GPA + 0x1000 + i] = (uint8_t)(i * 7 + 3);
    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64o, sizeof(prog_t64o), 100, IEM_STEP_HLT, &res);
    for (unsigned i = 0; i <= 100; i++)
        assert_int_equal(h->ram[DATA_GPA + i], 0xc3);
    assert_int_equal(h->ram[DATA_GPA + 101], 0);
    assert_memory_equal(h->ram + DATA_GPA + 0x4004, h->ram + DATA_GPA + 0x1000, 8000);
    assert_int_equal(h->ram[DATA_GPA + 0x4004 + 8000], 0);
    assert_int_equal(h->s->gpr[CPU_R8], DATA_GPA + 0x1000 + 8000);
    assert_int_equal(h->s->gpr[CPU_R9], DATA_GPA + 0x4004 + 8000);
    assert_int_equal(h->s->gpr[CPU_RAX], 2);
    iemh_destroy(h);
}

static const uint8_t prog_t16w[] = {
    0xb8, 0x00, 0x30,                                  /* mov ax, 0x3000 */
    0x8e, 0xc0,                                        /* mov es, ax */
    0xbf, 0xf0, 0xff,                                  /* mov di, 0xfff0 */
    0xb9, 0x20, 0x00,                                  /* mov cx, 0x20 */
    0xb0, 0xee,                                        /* mov al, 0xee */
    0xfc,                                              /* cld */
    0xf3, 0xaa,                                        /* rep stosb */
    0xf4,                                              /* hlt */
};

/* REP STOSB across the 64 KiB wrap of DI in real mode: DI goes FFFFh -> 0000h, the bytes land at
 * ES:FFF0-FFFF and ES:0000-000F. */
static void test_rep_stos_wrap16(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;

    iemh_mode_real(h, CODE_GPA >> 4, 0, STACK_TOP >> 4, 0x100);
    prog_run(h, prog_t16w, sizeof(prog_t16w), 100, IEM_STEP_HLT, &res);
    for (unsigned i = 0; i < 16; i++) {
        assert_int_equal(h->ram[DATA_GPA + 0xfff0 + i], 0xee);
        assert_int_equal(h->ram[DATA_GPA + i], 0xee);
    }
    assert_int_equal(h->ram[DATA_GPA + 0x10000], 0);
    assert_int_equal(h->ram[DATA_GPA + 0x10], 0);
    assert_int_equal(h->s->gpr[CPU_RDI] & 0xffff, 0x10);
    assert_int_equal(h->s->gpr[CPU_RCX] & 0xffff, 0);
    iemh_destroy(h);
}

static const uint8_t prog_t64e[] = {
    0x48, 0xc7, 0xc4, 0x00, 0x00, 0x04, 0x00,          /* mov rsp, 0x40000 */
    0x48, 0xc7, 0xc5, 0x19, 0x00, 0x04, 0x00,          /* mov rbp, 0x40019 */
    0xc8, 0x10, 0x00, 0x08,                            /* enter 0x10, 8 */
    0xf4,                                              /* hlt */
};

static uint64_t ld64(const uint8_t *m, uint64_t off)
{
    uint64_t v;
    memcpy(&v, m + off, 8);
    return v;
}

/* ENTER level 8 with an odd RBP: each copied frame pointer is read after the previous ones were
 * pushed, and some reads overlap those slots.  The reference is the SDM's sequential loop run
 * on a copy of the memory. */
static void test_enter_overlapping_copies(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;
    const uint64_t base = STACK_TOP - 0x100;
    uint8_t m[0x200];
    uint64_t sp = STACK_TOP, bp = STACK_TOP + 0x19, frame;

    for (unsigned i = 0; i < sizeof(m); i++)
        h->ram[base + i] = (uint8_t)(i * 13 + 1);
    memcpy(m, h->ram + base, sizeof(m));
    sp -= 8;
    memcpy(m + sp - base, &bp, 8);
    frame = sp;
    for (unsigned i = 1; i < 8; i++) {
        uint64_t v;
        bp -= 8;
        v = ld64(m, bp - base);
        sp -= 8;
        memcpy(m + sp - base, &v, 8);
    }
    sp -= 8;
    memcpy(m + sp - base, &frame, 8);

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64e, sizeof(prog_t64e), 10, IEM_STEP_HLT, &res);
    assert_memory_equal(h->ram + base, m, sizeof(m));
    assert_int_equal(h->s->gpr[CPU_RBP], frame);
    assert_int_equal(h->s->gpr[CPU_RSP], sp - 0x10);
    iemh_destroy(h);
}

static const uint8_t prog_t64x[] = {
    0x48, 0xc7, 0xc7, 0x10, 0x00, 0x03, 0x00,          /* mov rdi, 0x30010 */
    0x48, 0xb8, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, /* mov rax, 0x1111111111111111 */
    0x48, 0xba, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, /* mov rdx, 0x2222222222222222 */
    0x48, 0xbb, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, /* mov rbx, 0x3333333333333333 */
    0x48, 0xb9, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, /* mov rcx, 0x4444444444444444 */
    0xf0, 0x48, 0x0f, 0xc7, 0x0f,                      /* lock cmpxchg16b [rdi] */
    0x41, 0x0f, 0x94, 0xc0,                            /* setz r8b */
    0x48, 0x0f, 0xc7, 0x0f,                            /* cmpxchg16b [rdi] */
    0x41, 0x0f, 0x94, 0xc1,                            /* setz r9b */
    0x48, 0xc7, 0xc7, 0x28, 0x00, 0x03, 0x00,          /* mov rdi, 0x30028 */
    0x48, 0x0f, 0xc7, 0x0f,                            /* cmpxchg16b [rdi] */
    0xf4,                                              /* hlt */
};

/* CMPXCHG16B: a locked match stores RCX:RBX, a mismatch loads RDX:RAX, a misaligned operand
 * raises #GP(0). */
static void test_cmpxchg16b(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;
    const uint64_t init[2] = { 0x1111111111111111ull, 0x2222222222222222ull };

    memcpy(h->ram + DATA_GPA + 0x10, init, 16);
    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    prog_run(h, prog_t64x, sizeof(prog_t64x), 100, IEM_STEP_EXCEPTION, &res);
    assert_int_equal(res.vector, IEM_X_GP);
    assert_int_equal(res.error, 0);
    assert_int_equal(h->s->rip, CODE_GPA + sizeof(prog_t64x) - 5); /* on the misaligned CMPXCHG16B */
    assert_int_equal(iemh_read64(h, DATA_GPA + 0x10), 0x3333333333333333ull);
    assert_int_equal(iemh_read64(h, DATA_GPA + 0x18), 0x4444444444444444ull);
    assert_int_equal(h->s->gpr[CPU_R8] & 0xff, 1);
    assert_int_equal(h->s->gpr[CPU_R9] & 0xff, 0);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x3333333333333333ull);
    assert_int_equal(h->s->gpr[CPU_RDX], 0x4444444444444444ull);
    iemh_destroy(h);
}

static const uint8_t prog_t64l[] = {
    0x48, 0xc7, 0xc3, 0x00, 0x00, 0x03, 0x00,          /* mov rbx, 0x30000 */
    0xb9, 0x40, 0x0d, 0x03, 0x00,                      /* mov ecx, 200000 */
    0xf0, 0xff, 0x03,                                  /* 1:  lock inc dword ptr [rbx] */
    0xb8, 0x01, 0x00, 0x00, 0x00,                      /* mov eax, 1 */
    0xf0, 0x0f, 0xc1, 0x43, 0x08,                      /* lock xadd [rbx+8], eax */
    0xff, 0xc9,                                        /* dec ecx */
    0x75, 0xef,                                        /* jnz 1b */
    0xf4,                                              /* hlt */
};

struct lock_peer {
    uint32_t *counter;
    unsigned rounds;
};

static void *lock_peer_run(void *arg)
{
    struct lock_peer *p = arg;
    for (unsigned i = 0; i < p->rounds; i++) {
        __atomic_fetch_add(p->counter, 1, __ATOMIC_SEQ_CST);
        /* Spread the increments over the guest's whole run. */
        for (volatile unsigned k = 0; k < 20; k++)
            continue;
    }
    return NULL;
}

/* LOCK INC and LOCK XADD on guest RAM are atomic against another host thread (a device doing
 * DMA, later another vCPU) incrementing the same words: no increment may be lost. */
static void test_lock_atomic_against_host_thread(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result res;
    struct lock_peer peer = { (uint32_t *)(h->ram + DATA_GPA), 200000 };
    struct lock_peer peer2 = { (uint32_t *)(h->ram + DATA_GPA + 8), 200000 };
    pthread_t t1, t2;
    uint32_t v;

    iemh_mode_long64(h, CODE_GPA, STACK_TOP);
    assert_int_equal(pthread_create(&t1, NULL, lock_peer_run, &peer), 0);
    assert_int_equal(pthread_create(&t2, NULL, lock_peer_run, &peer2), 0);
    prog_run(h, prog_t64l, sizeof(prog_t64l), 2000000, IEM_STEP_HLT, &res);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    memcpy(&v, h->ram + DATA_GPA, 4);
    assert_int_equal(v, 400000);
    memcpy(&v, h->ram + DATA_GPA + 8, 4);
    assert_int_equal(v, 400000);
    iemh_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prog64_alu_memory),
        cmocka_unit_test(test_prog64_strings),
        cmocka_unit_test(test_prog64_stack_branch),
        cmocka_unit_test(test_prog64_register_rules),
        cmocka_unit_test(test_prog64_ports),
        cmocka_unit_test(test_rep_chunk_restart),
        cmocka_unit_test(test_rep_movs_bulk),
        cmocka_unit_test(test_rep_stos_wrap16),
        cmocka_unit_test(test_enter_overlapping_copies),
        cmocka_unit_test(test_cmpxchg16b),
        cmocka_unit_test(test_lock_atomic_against_host_thread),
        cmocka_unit_test(test_prog32),
        cmocka_unit_test(test_prog16_real),
        cmocka_unit_test(test_rep_fault_midway),
        cmocka_unit_test(test_pushad_fault_keeps_state),
        cmocka_unit_test(test_bound_and_aam_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
