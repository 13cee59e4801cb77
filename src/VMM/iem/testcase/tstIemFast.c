/* tstIemFast.c - unit tests of the interpreter's specialised handlers and block chaining: bit-identical to the generic handlers, and every fast-path exit (faults, MMIO, page crossings, CPL 3, #AC, single-step, instruction limits) as the generic path. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "harness.h"
#include "../iem-core.h"
#include "../iem-fast.h"

/* ---- Specialised versus generic, one instruction at a time ---------------------------------- */

/*
 * Each encoding is decoded as the decoder does it (which picks the specialised handler),
 * then run from the same random state once through the generic handler of the integer
 * family and once through the specialised one, both called directly.  Registers, every
 * RFLAGS bit (the host-computed "undefined" ones included), memory, and the exception
 * raised must be the same.  The generic run goes first, so the specialised run finds its
 * TLB entries warm and takes its fast path.  The byte strings come from GNU as.
 */
struct enc {
    const char *text;
    uint8_t len;
    uint8_t bytes[15];
};

static const struct enc g_encs[] = {
    { "add eax,ecx", 2, { 0x01, 0xc8 } },
    { "add rax,rcx", 3, { 0x48, 0x01, 0xc8 } },
    { "add al,cl", 2, { 0x00, 0xc8 } },
    { "add ax,cx", 3, { 0x66, 0x01, 0xc8 } },
    { "add sil,dil", 3, { 0x40, 0x00, 0xfe } },
    { "add eax,0x7f", 3, { 0x83, 0xc0, 0x7f } },
    { "add rax,0xfffffffffffffffb", 4, { 0x48, 0x83, 0xc0, 0xfb } },
    { "add ecx,0x12345678", 6, { 0x81, 0xc1, 0x78, 0x56, 0x34, 0x12 } },
    { "add eax,DWORD PTR [rbx+0x8]", 3, { 0x03, 0x43, 0x08 } },
    { "add DWORD PTR [rbx+0x8],ecx", 3, { 0x01, 0x4b, 0x08 } },
    { "add QWORD PTR [rbx+0x10],0x33", 5, { 0x48, 0x83, 0x43, 0x10, 0x33 } },
    { "add BYTE PTR [rbx+0x3],0x81", 4, { 0x80, 0x43, 0x03, 0x81 } },
    { "adc edx,esi", 2, { 0x11, 0xf2 } },
    { "adc rdx,QWORD PTR [rbx]", 3, { 0x48, 0x13, 0x13 } },
    { "sbb r8d,r9d", 3, { 0x45, 0x19, 0xc8 } },
    { "sbb QWORD PTR [rbx+0x18],r10", 4, { 0x4c, 0x19, 0x53, 0x18 } },
    { "and eax,ecx", 2, { 0x21, 0xc8 } },
    { "and r11,0xffff00", 7, { 0x49, 0x81, 0xe3, 0x00, 0xff, 0xff, 0x00 } },
    { "or ecx,edx", 2, { 0x09, 0xd1 } },
    { "or WORD PTR [rbx+0x2],0x1234", 6, { 0x66, 0x81, 0x4b, 0x02, 0x34, 0x12 } },
    { "xor eax,eax", 2, { 0x31, 0xc0 } },
    { "xor r12,r13", 3, { 0x4d, 0x31, 0xec } },
    { "sub eax,ecx", 2, { 0x29, 0xc8 } },
    { "sub rdx,QWORD PTR [rbx+0x20]", 4, { 0x48, 0x2b, 0x53, 0x20 } },
    { "sub DWORD PTR [rbx+0x4],0x7", 4, { 0x83, 0x6b, 0x04, 0x07 } },
    { "cmp eax,ecx", 2, { 0x39, 0xc8 } },
    { "cmp rax,QWORD PTR [rbx+0x8]", 4, { 0x48, 0x3b, 0x43, 0x08 } },
    { "cmp QWORD PTR [rbx+0x8],rcx", 4, { 0x48, 0x39, 0x4b, 0x08 } },
    { "cmp DWORD PTR [rbx+0xc],0x64", 4, { 0x83, 0x7b, 0x0c, 0x64 } },
    { "cmp cl,0x80", 3, { 0x80, 0xf9, 0x80 } },
    { "test eax,ecx", 2, { 0x85, 0xc8 } },
    { "test rax,rax", 3, { 0x48, 0x85, 0xc0 } },
    { "test BYTE PTR [rbx+0x5],0x10", 4, { 0xf6, 0x43, 0x05, 0x10 } },
    { "test QWORD PTR [rbx+0x10],rdx", 4, { 0x48, 0x85, 0x53, 0x10 } },
    { "inc eax", 2, { 0xff, 0xc0 } },
    { "inc r9", 3, { 0x49, 0xff, 0xc1 } },
    { "dec cx", 3, { 0x66, 0xff, 0xc9 } },
    { "dec bl", 2, { 0xfe, 0xcb } },
    { "neg rdx", 3, { 0x48, 0xf7, 0xda } },
    { "neg esi", 2, { 0xf7, 0xde } },
    { "not r10", 3, { 0x49, 0xf7, 0xd2 } },
    { "not ax", 3, { 0x66, 0xf7, 0xd0 } },
    { "shl eax,0x3", 3, { 0xc1, 0xe0, 0x03 } },
    { "shl rax,0x3f", 4, { 0x48, 0xc1, 0xe0, 0x3f } },
    { "shr edx,1", 2, { 0xd1, 0xea } },
    { "shr rcx,cl", 3, { 0x48, 0xd3, 0xe9 } },
    { "sar esi,0x1f", 3, { 0xc1, 0xfe, 0x1f } },
    { "sar r8w,0x5", 5, { 0x66, 0x41, 0xc1, 0xf8, 0x05 } },
    { "rol eax,0x7", 3, { 0xc1, 0xc0, 0x07 } },
    { "ror rdx,cl", 3, { 0x48, 0xd3, 0xca } },
    { "shl eax,cl", 2, { 0xd3, 0xe0 } },
    { "shr dl,0x4", 3, { 0xc0, 0xea, 0x04 } },
    { "imul eax,ecx", 3, { 0x0f, 0xaf, 0xc1 } },
    { "imul rdx,rsi", 4, { 0x48, 0x0f, 0xaf, 0xd6 } },
    { "imul ecx,DWORD PTR [rbx+0x8]", 4, { 0x0f, 0xaf, 0x4b, 0x08 } },
    { "imul eax,ecx,0x3039", 6, { 0x69, 0xc1, 0x39, 0x30, 0x00, 0x00 } },
    { "imul r9,r10,0xfffffffffffffffd", 4, { 0x4d, 0x6b, 0xca, 0xfd } },
    { "imul dx,cx", 4, { 0x66, 0x0f, 0xaf, 0xd1 } },
    { "movzx eax,BYTE PTR [rbx+0x1]", 4, { 0x0f, 0xb6, 0x43, 0x01 } },
    { "movzx ecx,WORD PTR [rbx+0x2]", 4, { 0x0f, 0xb7, 0x4b, 0x02 } },
    { "movzx rax,cl", 4, { 0x48, 0x0f, 0xb6, 0xc1 } },
    { "movzx eax,dx", 3, { 0x0f, 0xb7, 0xc2 } },
    { "movsx eax,BYTE PTR [rbx+0x7]", 4, { 0x0f, 0xbe, 0x43, 0x07 } },
    { "movsx rdx,WORD PTR [rbx+0x6]", 5, { 0x48, 0x0f, 0xbf, 0x53, 0x06 } },
    { "movsxd rax,DWORD PTR [rbx+0x4]", 4, { 0x48, 0x63, 0x43, 0x04 } },
    { "movsxd rcx,edx", 3, { 0x48, 0x63, 0xca } },
    { "movsx ax,cl", 4, { 0x66, 0x0f, 0xbe, 0xc1 } },
    { "mov eax,ecx", 2, { 0x89, 0xc8 } },
    { "mov rax,rcx", 3, { 0x48, 0x89, 0xc8 } },
    { "mov cl,dl", 2, { 0x88, 0xd1 } },
    { "mov ax,si", 3, { 0x66, 0x89, 0xf0 } },
    { "mov eax,0x89abcdef", 5, { 0xb8, 0xef, 0xcd, 0xab, 0x89 } },
    { "movabs rax,0x123456789abcdef0", 10, { 0x48, 0xb8, 0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12 } },
    { "mov rdx,0xffffffffffffffff", 7, { 0x48, 0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff } },
    { "mov eax,DWORD PTR [rbx+0x8]", 3, { 0x8b, 0x43, 0x08 } },
    { "mov rax,QWORD PTR [rbx+0x10]", 4, { 0x48, 0x8b, 0x43, 0x10 } },
    { "mov cl,BYTE PTR [rbx+0x3]", 3, { 0x8a, 0x4b, 0x03 } },
    { "mov dx,WORD PTR [rbx+0x6]", 4, { 0x66, 0x8b, 0x53, 0x06 } },
    { "mov DWORD PTR [rbx+0x8],ecx", 3, { 0x89, 0x4b, 0x08 } },
    { "mov QWORD PTR [rbx+0x10],rdx", 4, { 0x48, 0x89, 0x53, 0x10 } },
    { "mov BYTE PTR [rbx+0x1],al", 3, { 0x88, 0x43, 0x01 } },
    { "mov WORD PTR [rbx+0x2],si", 4, { 0x66, 0x89, 0x73, 0x02 } },
    { "mov DWORD PTR [rbx+0x14],0x55aa55aa", 7, { 0xc7, 0x43, 0x14, 0xaa, 0x55, 0xaa, 0x55 } },
    { "mov QWORD PTR [rbx+0x18],0xfffffffffffffffe", 8, { 0x48, 0xc7, 0x43, 0x18, 0xfe, 0xff, 0xff, 0xff } },
    { "mov BYTE PTR [rbx+0x9],0x7e", 4, { 0xc6, 0x43, 0x09, 0x7e } },
    { "lea rax,[rbx+rcx*4+0x8]", 5, { 0x48, 0x8d, 0x44, 0x8b, 0x08 } },
    { "lea eax,[rbx+rcx*2-0x1]", 4, { 0x8d, 0x44, 0x4b, 0xff } },
    { "lea rdx,[rip+0x100]", 7, { 0x48, 0x8d, 0x15, 0x00, 0x01, 0x00, 0x00 } },
    { "lea ecx,[eax+edx*1]", 4, { 0x67, 0x8d, 0x0c, 0x10 } },
    { "lea ax,[rbx+rsi*1+0x3]", 5, { 0x66, 0x8d, 0x44, 0x33, 0x03 } },
    { "seto al", 3, { 0x0f, 0x90, 0xc0 } },
    { "setb cl", 3, { 0x0f, 0x92, 0xc1 } },
    { "sete dl", 3, { 0x0f, 0x94, 0xc2 } },
    { "setbe bl", 3, { 0x0f, 0x96, 0xc3 } },
    { "sets sil", 4, { 0x40, 0x0f, 0x98, 0xc6 } },
    { "setp dil", 4, { 0x40, 0x0f, 0x9a, 0xc7 } },
    { "setl r8b", 4, { 0x41, 0x0f, 0x9c, 0xc0 } },
    { "setle r9b", 4, { 0x41, 0x0f, 0x9e, 0xc1 } },
    { "cmove eax,ecx", 3, { 0x0f, 0x44, 0xc1 } },
    { "cmovne eax,ecx", 3, { 0x0f, 0x45, 0xc1 } },
    { "cmovb rdx,rsi", 4, { 0x48, 0x0f, 0x42, 0xd6 } },
    { "cmovge r8,r9", 4, { 0x4d, 0x0f, 0x4d, 0xc1 } },
    { "cmovle esi,edi", 3, { 0x0f, 0x4e, 0xf7 } },
    { "cmovp ecx,edx", 3, { 0x0f, 0x4a, 0xca } },
    { "mov rax,QWORD PTR fs:[rbx+0x8]", 5, { 0x64, 0x48, 0x8b, 0x43, 0x08 } },
    { "add eax,DWORD PTR gs:[rbx]", 3, { 0x65, 0x03, 0x03 } },
    { "mov QWORD PTR [rbx+rsi*8+0x8],rcx", 5, { 0x48, 0x89, 0x4c, 0xf3, 0x08 } },
    { "shl eax,0x0", 3, { 0xc1, 0xe0, 0x00 } },
    { "shr rcx,0x0", 4, { 0x48, 0xc1, 0xe9, 0x00 } },
    { "je 0x19f", 2, { 0x74, 0x0e } },
    { "jne 0x171", 2, { 0x75, 0xde } },
    { "jb 0x293", 6, { 0x0f, 0x82, 0xfa, 0x00, 0x00, 0x00 } },
    { "jle 0x218", 2, { 0x7e, 0x7d } },
    { "jmp 0x1db", 2, { 0xeb, 0x3e } },
    { "call 0x119d", 5, { 0xe8, 0xfb, 0x0f, 0x00, 0x00 } },
    { "ret", 1, { 0xc3 } },
    { "push rcx", 1, { 0x51 } },
    { "push r12", 2, { 0x41, 0x54 } },
    { "pop rdx", 1, { 0x5a } },
    { "pop rsp", 1, { 0x5c } },
    { "push rsp", 1, { 0x54 } },
    { "movzx eax,BYTE PTR [rbx+rsi*2+0x1]", 5, { 0x0f, 0xb6, 0x44, 0x73, 0x01 } },
    { "movsx rdx,WORD PTR [rbx+rsi*4+0x2]", 6, { 0x48, 0x0f, 0xbf, 0x54, 0xb3, 0x02 } },
    { "add ecx,DWORD PTR [rbx+rsi*4]", 3, { 0x03, 0x0c, 0xb3 } },
    { "sub QWORD PTR [rbx+rsi*8+0x8],rdx", 5, { 0x48, 0x29, 0x54, 0xf3, 0x08 } },
    { "cmp BYTE PTR [rbx+rsi*1+0x1],0x7f", 5, { 0x80, 0x7c, 0x33, 0x01, 0x7f } },
    { "and WORD PTR [rbx+rsi*2+0x4],0xff0", 7, { 0x66, 0x81, 0x64, 0x73, 0x04, 0xf0, 0x0f } },
    { "imul eax,DWORD PTR [rbx+rsi*4+0x4]", 5, { 0x0f, 0xaf, 0x44, 0xb3, 0x04 } },
    { "test DWORD PTR [rbx+rsi*2],eax", 3, { 0x85, 0x04, 0x73 } },
    { "mov rax,QWORD PTR [rip+0xfff9]", 7, { 0x48, 0x8b, 0x05, 0xf9, 0xff, 0x00, 0x00 } },
    { "mov DWORD PTR [rip+0xfffa],ecx", 6, { 0x89, 0x0d, 0xfa, 0xff, 0x00, 0x00 } },
    { "mov BYTE PTR [rbx+rsi*1+0x3],0x5a", 5, { 0xc6, 0x44, 0x33, 0x03, 0x5a } },
};

#define CODE_GPA  0x20000u
#define DATA_GPA  0x30000u /* rbx, rsp and [rbx+...] operands point here */
#define SEG_GPA   0x31000u /* FS base; GS base is SEG_GPA + 0x80 */
#define AREA_LEN  0x100u

static uint64_t xs64(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *st = x;
}

static iem_fn *generic_of(uint16_t mnemonic)
{
    for (const struct iem_handler_map *m = g_iem_map_int; m->fn; m++)
        if (m->mnemonic == mnemonic)
            return m->fn;
    return NULL;
}

struct call_arg {
    iem_fn *fn;
    const struct iem_insn *in;
    int rc;
};

static void do_call(struct iem_cpu *cpu, void *arg)
{
    struct call_arg *a = arg;
    cpu->insn_rip = cpu->s->rip;
    cpu->block_rip = cpu->s->rip; /* the instruction is a block of its own (off 0) */
    cpu->insn = a->in;
    a->rc = a->fn(cpu, a->in);
}

struct outcome {
    struct cpu_state s;
    uint8_t data[AREA_LEN], seg[AREA_LEN];
    int vector;
    uint32_t error;
};

static void run_handler(struct iemh *h, iem_fn *fn, const struct iem_insn *in, const struct cpu_state *init,
                        const uint8_t *data, const uint8_t *seg, struct outcome *out)
{
    *h->s = *init;
    memcpy(h->ram + DATA_GPA, data, AREA_LEN);
    memcpy(h->ram + SEG_GPA, seg, AREA_LEN);
    struct call_arg a = { fn, in, -1 };
    out->vector = iemh_try(h, do_call, &a);
    out->error = out->vector >= 0 ? h->cpu->fault_error : 0;
    /* A handler that returned IEM_NEXT leaves RIP to the run loop (iem-fast.h). */
    if (out->vector < 0 && a.rc == IEM_NEXT)
        h->s->rip += in->len;
    out->s = *h->s;
    memcpy(out->data, h->ram + DATA_GPA, AREA_LEN);
    memcpy(out->seg, h->ram + SEG_GPA, AREA_LEN);
}

static void test_fast_equals_generic(void **state)
{
    struct iemh *h = iemh_create(0);
    uint64_t rnd = 0x9e3779b97f4a7c15ull;
    iemh_mode_long64(h, CODE_GPA, DATA_GPA + 0x80);
    h->s->seg[CPU_FS].base = SEG_GPA;
    h->s->seg[CPU_GS].base = SEG_GPA + 0x80;
    iemh_sync(h);
    struct cpu_state base = *h->s;
    static struct outcome og, of;
    for (size_t e = 0; e < sizeof(g_encs) / sizeof(g_encs[0]); e++) {
        const struct enc *en = &g_encs[e];
        struct iem_insn in;
        bool ends;
        if (iem_decode_one(ZYDIS_MACHINE_MODE_LONG_64, en->bytes, en->len, &in, &ends) != 0)
            fail_msg("'%s' does not decode", en->text);
        iem_fn *generic = generic_of(in.mnemonic);
        if (!generic || in.fn == generic)
            fail_msg("'%s' has no specialised handler", en->text);
        for (int t = 0; t < 48; t++) {
            struct cpu_state init = base;
            uint8_t data[AREA_LEN], seg[AREA_LEN];
            for (int r = 0; r < 16; r++)
                init.gpr[r] = xs64(&rnd) >> (xs64(&rnd) & 63);
            init.gpr[CPU_RBX] = DATA_GPA + (xs64(&rnd) & 0x38);
            init.gpr[CPU_RSP] = DATA_GPA + 0x80 + (xs64(&rnd) & 0x38);
            init.gpr[CPU_RSI] = xs64(&rnd) & 7;
            if (t % 4 == 0)
                init.gpr[CPU_RCX] &= 0xff00; /* CL = 0: a shift by CL of zero */
            init.rflags = 0x2 | (xs64(&rnd) & IEM_F_ARITH);
            init.rip = CODE_GPA;
            for (unsigned i = 0; i < AREA_LEN; i++) {
                data[i] = (uint8_t)xs64(&rnd);
                seg[i] = (uint8_t)xs64(&rnd);
            }
            run_handler(h, generic, &in, &init, data, seg, &og);
            run_handler(h, in.fn, &in, &init, data, seg, &of);
            if (og.vector != of.vector || og.error != of.error || memcmp(og.s.gpr, of.s.gpr, sizeof(og.s.gpr)) ||
                og.s.rflags != of.s.rflags || og.s.rip != of.s.rip || memcmp(og.data, of.data, AREA_LEN) ||
                memcmp(og.seg, of.seg, AREA_LEN))
                fail_msg("'%s' trial %d: generic and specialised differ (vector %d/%d, rflags %llx/%llx, rip %llx/%llx)",
                         en->text, t, og.vector, of.vector, (unsigned long long)og.s.rflags,
                         (unsigned long long)of.s.rflags, (unsigned long long)og.s.rip, (unsigned long long)of.s.rip);
        }
    }
    iemh_destroy(h);
}

/* ---- Fast-path exits through guest programs -------------------------------------------------- */

/* A 4-level page-table builder on guest RAM from a bump area. */
#define PT_AREA 0x200000u
#define F_P  0x1ull
#define F_RW 0x2ull
#define F_US 0x4ull

struct pt {
    struct iemh *h;
    uint64_t next, root;
};

static uint64_t pt_new(struct pt *p)
{
    uint64_t a = p->next;
    p->next += 0x1000;
    memset(p->h->ram + a, 0, 0x1000);
    return a;
}

static void pt_map(struct pt *p, uint64_t lin, uint64_t gpa, uint64_t flags)
{
    uint64_t table = p->root;
    for (int level = 4; level > 1; level--) {
        uint64_t *e = (uint64_t *)(p->h->ram + table + ((lin >> (12 + 9 * (level - 1))) & 511) * 8);
        if (!(*e & F_P))
            *e = pt_new(p) | F_P | F_RW | F_US;
        table = *e & 0xffffffffff000ull;
    }
    *(uint64_t *)(p->h->ram + table + ((lin >> 12) & 511) * 8) = gpa | flags;
}

/* The programs (GNU as; offsets from PROG_LIN): see each test. */
static const uint8_t g_prog[] = {
    0x48, 0x8b, 0x03,                         /* 00 a:  mov rax, [rbx] */
    0x48, 0x8b, 0x02,                         /* 03     mov rax, [rdx] */
    0xf4,                                     /* 06     hlt */
    0x48, 0x01, 0x0b,                         /* 07 b:  add [rbx], rcx */
    0x48, 0x01, 0x0e,                         /* 0a     add [rsi], rcx */
    0xf4,                                     /* 0d     hlt */
    0x8b, 0x02,                               /* 0e c:  mov eax, [rdx] */
    0xf4,                                     /* 10     hlt */
    0x50,                                     /* 11 c2: push rax */
    0xf4,                                     /* 12     hlt */
    0x89, 0x83, 0xfd, 0x0f, 0x00, 0x00,       /* 13 d:  mov [rbx+0xffd], eax */
    0xf4,                                     /* 19     hlt */
    0x48, 0x8b, 0x83, 0xfc, 0x0f, 0x00, 0x00, /* 1a d2: mov rax, [rbx+0xffc] */
    0xf4,                                     /* 21     hlt */
    0x8b, 0x07,                               /* 22 e:  mov eax, [rdi] */
    0x89, 0x0f,                               /* 24     mov [rdi], ecx */
    0x01, 0x4f, 0x08,                         /* 26     add [rdi+8], ecx */
    0xf4,                                     /* 29     hlt */
    0x48, 0x8b, 0x03,                         /* 2a f:  mov rax, [rbx] */
    0x6a, 0x3b,                               /* 2d     push 0x3b (SS) */
    0x41, 0x50,                               /* 2f     push r8 (RSP) */
    0x41, 0x51,                               /* 31     push r9 (RFLAGS) */
    0x6a, 0x43,                               /* 33     push 0x43 (CS) */
    0x41, 0x52,                               /* 35     push r10 (RIP) */
    0x48, 0xcf,                               /* 37     iretq */
    0x48, 0x8b, 0x06,                         /* 39 u:  mov rax, [rsi] */
    0x8b, 0x46, 0x01,                         /* 3c     mov eax, [rsi+1] */
    0x48, 0x8b, 0x03,                         /* 3f     mov rax, [rbx] */
    0xf4,                                     /* 42     hlt */
    0x48, 0xff, 0xc0,                         /* 43 g:  inc rax */
    0x48, 0x39, 0xc8,                         /* 46     cmp rax, rcx */
    0x72, 0xf8,                               /* 49     jb g */
    0xf4,                                     /* 4b     hlt */
    0x48, 0xff, 0xc0,                         /* 4c h:  inc rax */
    0xfa,                                     /* 4f     cli */
    0xfb,                                     /* 50     sti */
    0xeb, 0xf9,                               /* 51     jmp h */
    0xe9, 0xa8, 0x4f, 0x02, 0x00,             /* 53 k:  jmp S_LIN */
};

#define PROG_LIN 0x20000u /* code page: user, so CPL 3 runs it too */
#define D_LIN    0x40000u /* supervisor read/write data (stack above its middle) */
#define R_LIN    0x41000u /* supervisor read-only (CR0.WP is set) */
#define N_LIN    0x42000u /* not present */
#define U_LIN    0x43000u /* user read/write */
#define M_LIN    0x44000u /* MMIO at M_GPA */
#define M_GPA    0xf0000000u
#define S_LIN    0x45000u /* supervisor-only code: a HLT */

struct mmio_log {
    unsigned reads, writes;
    uint64_t last_off, last_val;
};

static uint64_t mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct mmio_log *l = opaque;
    l->reads++;
    return 0x1111111111111111ull * ((offset >> 3) + 1);
}

static void mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct mmio_log *l = opaque;
    l->writes++;
    l->last_off = offset;
    l->last_val = value;
}

static const struct io_ops g_mmio_ops = { .read = mmio_read, .write = mmio_write, .min_access = 1, .max_access = 8 };

static struct iemh *prog_create(void)
{
    struct iemh *h = iemh_create(16u << 20);
    struct pt p = { h, PT_AREA, 0 };
    iemh_mode_long64(h, PROG_LIN, D_LIN + 0x800);
    p.root = pt_new(&p);
    for (uint64_t a = 0; a < IEMH_FREE_GPA; a += 0x1000) /* GDT, IDT, TSS for IRETQ */
        pt_map(&p, a, a, F_P | F_RW);
    pt_map(&p, PROG_LIN, PROG_LIN, F_P | F_RW | F_US);
    pt_map(&p, D_LIN, D_LIN, F_P | F_RW);
    pt_map(&p, R_LIN, R_LIN, F_P);
    pt_map(&p, U_LIN, U_LIN, F_P | F_RW | F_US);
    pt_map(&p, M_LIN, M_GPA, F_P | F_RW);
    pt_map(&p, S_LIN, S_LIN, F_P | F_RW);
    h->ram[S_LIN] = 0xf4;
    h->s->cr3 = p.root;
    iemh_sync(h);
    iemh_write(h, PROG_LIN, g_prog, sizeof(g_prog));
    return h;
}

/* Runs the program at offset off from a fresh TLB state: RIP there, the rest as set up. */
static void prog_run(struct iemh *h, unsigned off, struct iem_step_result *r)
{
    h->s->rip = PROG_LIN + off;
    h->s->halted = false;
    iemh_run(h, 100, r);
}

static void test_fast_memory_exits(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result r;
    uint64_t *d = (uint64_t *)(h->ram + D_LIN), *ro = (uint64_t *)(h->ram + R_LIN);

    /* a: a warm load, then a not-present page: #PF (read, supervisor), RAX from the first load. */
    d[0] = 0x0123456789abcdefull;
    h->s->gpr[CPU_RBX] = D_LIN;
    h->s->gpr[CPU_RDX] = N_LIN + 8;
    prog_run(h, 0x00, &r);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_PF);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.cr2, N_LIN + 8);
    assert_int_equal(r.executed, 1);
    assert_int_equal(h->s->rip, PROG_LIN + 0x03);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x0123456789abcdefull);

    /* b: read-modify-write of a read-only page with CR0.WP: #PF (write, present); memory and flags unchanged. */
    ro[0] = 5;
    h->s->gpr[CPU_RSI] = R_LIN;
    h->s->gpr[CPU_RCX] = 1;
    h->s->rflags = 0x2 | IEM_F_CF | IEM_F_ZF;
    prog_run(h, 0x07, &r);
    assert_int_equal(r.vector, IEM_X_PF);
    assert_int_equal(r.error, 0x3);
    assert_int_equal(r.executed, 1);
    assert_int_equal(ro[0], 5);
    assert_int_equal(d[0], 0x0123456789abcdf0ull);
    assert_int_equal(h->s->rip, PROG_LIN + 0x0a);
    assert_int_equal(h->s->rflags & IEM_F_ARITH, IEM_F_PF | IEM_F_AF); /* from the first ADD */

    /* c: a non-canonical data address is #GP(0); a push with a non-canonical RSP is #SS(0). */
    h->s->gpr[CPU_RDX] = 0x0000800000000000ull;
    prog_run(h, 0x0e, &r);
    assert_int_equal(r.vector, IEM_X_GP);
    assert_int_equal(r.error, 0);
    uint64_t rsp = h->s->gpr[CPU_RSP];
    h->s->gpr[CPU_RSP] = 0x0000800000000008ull;
    prog_run(h, 0x11, &r);
    assert_int_equal(r.vector, IEM_X_SS);
    assert_int_equal(h->s->gpr[CPU_RSP], 0x0000800000000008ull);
    h->s->gpr[CPU_RSP] = rsp;

    /* d: a write crossing into the read-only page faults before any byte moves; a crossing read works. */
    memset(h->ram + D_LIN + 0xff8, 0xee, 8);
    h->s->gpr[CPU_RAX] = 0x44332211;
    prog_run(h, 0x13, &r);
    assert_int_equal(r.vector, IEM_X_PF);
    assert_int_equal(r.error, 0x3);
    assert_int_equal(r.cr2, R_LIN);
    assert_int_equal(h->ram[D_LIN + 0xffd], 0xee);
    assert_int_equal(h->ram[D_LIN + 0xfff], 0xee);
    ro[0] = 0x0807060504030201ull;
    *(uint32_t *)(h->ram + D_LIN + 0xffc) = 0xd4c3b2a1u;
    prog_run(h, 0x1a, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x04030201d4c3b2a1ull);

    /* e: MMIO loads, stores and read-modify-write go to the device. */
    struct mmio_log log = { 0 };
    struct mem_region *mr = iemh_mmio_add(h, M_GPA, 0x1000, &g_mmio_ops, &log);
    assert_non_null(mr);
    h->s->gpr[CPU_RDI] = M_LIN;
    h->s->gpr[CPU_RCX] = 0x10;
    prog_run(h, 0x22, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(h->s->gpr[CPU_RAX], 0x11111111u);
    assert_int_equal(log.reads, 2);
    assert_int_equal(log.writes, 2);
    assert_int_equal(log.last_off, 8);
    assert_int_equal(log.last_val, 0x22222232u);
    mem_region_destroy(mr);
    iemh_destroy(h);
}

/* f: entries the TLB filled at CPL 0 do not serve CPL 3, and CPL 3 misaligned accesses obey CR0.AM/EFLAGS.AC. */
static void test_fast_user_mode(void **state)
{
    for (int ac = 0; ac < 2; ac++) {
        struct iemh *h = prog_create();
        struct iem_step_result r;
        if (ac) {
            h->s->cr0 |= IEM_CR0_AM;
            iemh_sync(h);
        }
        *(uint64_t *)(h->ram + D_LIN) = 1;
        *(uint64_t *)(h->ram + U_LIN) = 0x8877665544332211ull;
        h->s->gpr[CPU_RBX] = D_LIN;
        h->s->gpr[CPU_RSI] = U_LIN;
        h->s->gpr[CPU_R8] = U_LIN + 0x800;
        h->s->gpr[CPU_R9] = 0x2 | (ac ? IEM_F_AC : 0);
        h->s->gpr[CPU_R10] = PROG_LIN + 0x39;
        prog_run(h, 0x2a, &r);
        assert_int_equal(r.status, IEM_STEP_EXCEPTION);
        if (ac) {
            assert_int_equal(r.vector, IEM_X_AC);
            assert_int_equal(r.error, 0);
            assert_int_equal(h->s->rip, PROG_LIN + 0x3c);
            assert_int_equal(h->s->gpr[CPU_RAX], 0x8877665544332211ull);
        } else {
            assert_int_equal(r.vector, IEM_X_PF);
            assert_int_equal(r.error, 0x5); /* present, user, read */
            assert_int_equal(r.cr2, D_LIN);
            assert_int_equal(h->s->rip, PROG_LIN + 0x3f);
            assert_int_equal(h->s->gpr[CPU_RAX], 0x55443322u);
        }
        assert_int_equal(h->s->seg[CPU_CS].sel, 0x43);
        iemh_destroy(h);
    }
}

/* ---- Block chaining ------------------------------------------------------------------------------ */

/* g: a counting loop whose blocks link to each other; an instruction limit lands exactly, mid-chain. */
static void test_fast_chain_limit(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result r;
    h->s->gpr[CPU_RAX] = 0;
    h->s->gpr[CPU_RCX] = 1000;
    h->s->rip = PROG_LIN + 0x43;
    iemh_run(h, 1u << 20, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(r.executed, 3001);
    assert_int_equal(h->s->gpr[CPU_RAX], 1000);
    /* The same loop, now linked, stopped after 1001 instructions: 333 rounds, then INC and CMP. */
    h->s->halted = false;
    h->s->gpr[CPU_RAX] = 0;
    h->s->rip = PROG_LIN + 0x43;
    iemh_run(h, 1001, &r);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(r.executed, 1001);
    assert_int_equal(h->s->gpr[CPU_RAX], 334);
    assert_int_equal(h->s->rip, PROG_LIN + 0x49);
    for (int i = 0; i < 7; i++) {
        iemh_run(h, 1, &r);
        assert_int_equal(r.executed, 1);
    }
    assert_int_equal(h->s->gpr[CPU_RAX], 336);
    assert_int_equal(h->s->rip, PROG_LIN + 0x43);
    iemh_destroy(h);
}

/* Single-stepping a loop whose blocks are already linked: every instruction traps, none is run on. */
static void test_fast_chain_single_step(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result r;
    h->s->gpr[CPU_RAX] = 0;
    h->s->gpr[CPU_RCX] = 50;
    h->s->rip = PROG_LIN + 0x43;
    iemh_run(h, 1u << 20, &r);
    assert_int_equal(h->s->gpr[CPU_RAX], 50);
    /* TF set in the live state (no resync: the links stay). */
    h->s->halted = false;
    h->s->gpr[CPU_RAX] = 0;
    h->s->rip = PROG_LIN + 0x43;
    h->s->rflags |= IEM_F_TF;
    static const uint64_t rips[] = { 0x46, 0x49, 0x43, 0x46, 0x49, 0x43, 0x46 };
    for (unsigned i = 0; i < sizeof(rips) / sizeof(rips[0]); i++) {
        iemh_run(h, 100, &r);
        assert_int_equal(r.status, IEM_STEP_EXCEPTION);
        assert_int_equal(r.vector, IEM_X_DB);
        assert_int_equal(r.executed, 1);
        assert_int_equal(h->s->rip, PROG_LIN + rips[i]);
    }
    assert_int_equal(h->s->gpr[CPU_RAX], 3);
    iemh_destroy(h);
}

/* h: the JMP after STI runs in the STI shadow, one instruction, never chaining into the linked loop block. */
static void test_fast_chain_shadow(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result r;
    h->s->gpr[CPU_RAX] = 0;
    h->s->rip = PROG_LIN + 0x4c;
    iemh_run(h, 40, &r);
    assert_int_equal(r.status, IEM_STEP_LIMIT);
    assert_int_equal(r.executed, 40);
    assert_int_equal(h->s->gpr[CPU_RAX], 10);
    assert_int_equal(h->s->rip, PROG_LIN + 0x4c);
    iemh_run(h, 43, &r);
    assert_int_equal(r.executed, 43);
    assert_int_equal(h->s->gpr[CPU_RAX], 21);
    assert_int_equal(h->s->rip, PROG_LIN + 0x51);
    assert_true(h->s->int_shadow);
    iemh_destroy(h);
}

/* k: a link made at CPL 0 into a supervisor-only page is not taken at CPL 3 (the fetch faults). */
static void test_fast_chain_privilege(void **state)
{
    struct iemh *h = prog_create();
    struct iem_step_result r;
    prog_run(h, 0x53, &r);
    assert_int_equal(r.status, IEM_STEP_HLT);
    assert_int_equal(h->s->rip, S_LIN + 1);
    /* IRETQ to the same JMP at CPL 3 (program f), with the link and the jump cache still there. */
    h->s->gpr[CPU_RBX] = D_LIN;
    h->s->gpr[CPU_R8] = U_LIN + 0x800;
    h->s->gpr[CPU_R9] = 0x2;
    h->s->gpr[CPU_R10] = PROG_LIN + 0x53;
    prog_run(h, 0x2a, &r);
    assert_int_equal(r.status, IEM_STEP_EXCEPTION);
    assert_int_equal(r.vector, IEM_X_PF);
    assert_int_equal(r.error, 0x15); /* present, user, instruction fetch */
    assert_int_equal(r.cr2, S_LIN);
    assert_int_equal(h->s->rip, S_LIN);
    assert_int_equal(h->s->seg[CPU_CS].sel, 0x43);
    iemh_destroy(h);
}

/*
 * Flags nothing observes are not computed (iem_fast_dead_flags): ADD and SUB below, whose
 * flags the CMP overwrites.  The block must still show each instruction's flags wherever
 * execution can stop inside it (here: an instruction limit that cuts the block).
 */
static void test_fast_dead_flags(void **state)
{
    static const uint8_t code[] = {
        0x01, 0xd8, /* add eax, ebx */
        0x29, 0xd1, /* sub ecx, edx */
        0x39, 0xff, /* cmp edi, edi */
        0xf4,       /* hlt */
    };
    const uint64_t code_gpa = 0x20000, arith = IEM_F_ARITH;
    struct iem_step_result r;
    struct iemh *h = iemh_create(0);
    iemh_mode_long64(h, code_gpa, 0x30000);
    iemh_write(h, code_gpa, code, sizeof(code));
    for (int cut = 0; cut < 2; cut++) {
        h->s->rip = code_gpa;
        h->s->halted = false;
        h->s->gpr[CPU_RAX] = 0xffffffffu;
        h->s->gpr[CPU_RBX] = 1;
        h->s->gpr[CPU_RCX] = 5;
        h->s->gpr[CPU_RDX] = 7;
        h->s->rflags = 0x2 | IEM_F_OF;
        iemh_sync(h);
        if (cut) {
            iemh_run(h, 1, &r);
            assert_int_equal(r.executed, 1);
            assert_int_equal(h->s->gpr[CPU_RAX], 0);
            /* 0xffffffff + 1: carry, zero, parity, auxiliary carry. */
            assert_int_equal(h->s->rflags & arith, IEM_F_CF | IEM_F_ZF | IEM_F_PF | IEM_F_AF);
            iemh_run(h, 1, &r);
            assert_int_equal(h->s->gpr[CPU_RCX], 0xfffffffeu);
            /* 5 - 7: borrow, sign, auxiliary borrow; 0xfe has odd parity. */
            assert_int_equal(h->s->rflags & arith, IEM_F_CF | IEM_F_SF | IEM_F_AF);
        }
        iemh_run(h, 100, &r);
        assert_int_equal(r.status, IEM_STEP_HLT);
        assert_int_equal(h->s->gpr[CPU_RAX], 0);
        assert_int_equal(h->s->gpr[CPU_RCX], 0xfffffffeu);
        assert_int_equal(h->s->rflags & arith, IEM_F_ZF | IEM_F_PF);
    }
    /* The decoded block really has the forms without flags for ADD and SUB, not for CMP. */
    struct iem_core *core = iem_core_of(h->cpu);
    h->s->rip = code_gpa;
    struct iem_block *b = iem_block_lookup(core);
    assert_true(b->cached);
    assert_true(b->has_nf);
    assert_ptr_not_equal(b->insns[0].fn, iem_fast_full(&b->insns[0]));
    assert_ptr_not_equal(b->insns[1].fn, iem_fast_full(&b->insns[1]));
    assert_ptr_equal(b->insns[2].fn, iem_fast_full(&b->insns[2]));
    iemh_destroy(h);
    (void)state;
}

/* CMP + Jcc run as one handler; a limit between them still stops after the CMP, with its flags. */
static void test_fast_fused_cmp_jcc(void **state)
{
    static const uint8_t code[] = {
        0x39, 0xd8,                   /* 0: cmp eax, ebx */
        0x75, 0x05,                   /* 2: jne 9 */
        0xb9, 0x01, 0x00, 0x00, 0x00, /* 4: mov ecx, 1 */
        0xf4,                         /* 9: hlt */
    };
    const uint64_t code_gpa = 0x20000;
    struct iem_step_result r;
    struct iemh *h = iemh_create(0);
    iemh_mode_long64(h, code_gpa, 0x30000);
    iemh_write(h, code_gpa, code, sizeof(code));
    for (int round = 0; round < 6; round++) {
        bool equal = round & 1, cut = round >= 4;
        h->s->rip = code_gpa;
        h->s->halted = false;
        h->s->gpr[CPU_RAX] = 5;
        h->s->gpr[CPU_RBX] = equal ? 5 : 6;
        h->s->gpr[CPU_RCX] = 0;
        iemh_sync(h);
        if (cut) {
            iemh_run(h, 1, &r);
            assert_int_equal(r.executed, 1);
            assert_int_equal(h->s->rip, code_gpa + 2);
            assert_int_equal(!!(h->s->rflags & IEM_F_ZF), equal);
            assert_int_equal(!!(h->s->rflags & IEM_F_CF), !equal); /* 5 - 6 borrows */
        }
        iemh_run(h, 100, &r);
        assert_int_equal(r.status, IEM_STEP_HLT);
        assert_int_equal(h->s->rip, code_gpa + 10);
        assert_int_equal(h->s->gpr[CPU_RCX], equal ? 1 : 0);
        assert_int_equal(!!(h->s->rflags & IEM_F_ZF), equal);
    }
    iemh_destroy(h);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_equals_generic),
        cmocka_unit_test(test_fast_memory_exits),
        cmocka_unit_test(test_fast_user_mode),
        cmocka_unit_test(test_fast_chain_limit),
        cmocka_unit_test(test_fast_chain_single_step),
        cmocka_unit_test(test_fast_chain_shadow),
        cmocka_unit_test(test_fast_chain_privilege),
        cmocka_unit_test(test_fast_dead_flags),
        cmocka_unit_test(test_fast_fused_cmp_jcc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
