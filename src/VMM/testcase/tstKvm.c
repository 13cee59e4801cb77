/* tstKvm.c - unit tests of the KVM backend: state round trips, port/MMIO exits, CPUID policy, interrupts, HLT, kicks,
 * the local APIC model behind KVM and INIT/SIPI with two vCPUs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/vm.h"
#include "../kvm/kvm-internal.h"

/* Each test waits for the guest with this bound; a hang is a failure, never a stuck run. */
#define WAIT_NS (30 * RT_NS_PER_SEC)

#define CODE_GPA    0x1000 /* real-mode guest code, CS = 0x0100 */
#define MMIO_GPA    0xd0000000ULL
#define TEST_PORT   0x500
#define TEST_VECTOR 0x30
#define APIC_GPA    0xfee00000ULL

/* What the guest wrote to the test port, and what the MMIO region saw. */
struct rec {
    struct rt_mutex lock;
    struct rt_cond cond;
    unsigned count;
    uint32_t values[32];
    unsigned sizes[32];
    uint64_t mmio_write_off, mmio_write_val;
    unsigned mmio_write_size, mmio_read_size;
    uint64_t mmio_read_off;
};

struct kt {
    struct vm *vm;
    struct vcpu *vcpu;
    const struct cpu_backend *backend;
    struct rec rec;
    struct cpu_state start; /* what the reset hook loads */
    unsigned resets;
    bool intr_enabled; /* the test interrupt controller's request line */
};

static uint64_t port_read(void *opaque, uint64_t offset, unsigned size)
{
    return 0xcafef00d;
}

static void port_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct rec *r = opaque;
    rt_mutex_lock(&r->lock);
    if (r->count < RT_ARRAY_SIZE(r->values)) {
        r->values[r->count] = (uint32_t)value;
        r->sizes[r->count] = size;
        r->count++;
    }
    rt_cond_broadcast(&r->cond);
    rt_mutex_unlock(&r->lock);
}

static uint64_t mmio_read(void *opaque, uint64_t offset, unsigned size)
{
    struct rec *r = opaque;
    r->mmio_read_off = offset;
    r->mmio_read_size = size;
    return 0xbeef;
}

static void mmio_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
    struct rec *r = opaque;
    r->mmio_write_off = offset;
    r->mmio_write_val = value;
    r->mmio_write_size = size;
}

static const struct io_ops g_port_ops = {port_read, port_write, 1, 4};
static const struct io_ops g_mmio_ops = {mmio_read, mmio_write, 1, 8};

/* Waits until the guest has written at least n values to the test port, at most wait_ns. */
static bool rec_wait_ns(struct rec *r, unsigned n, uint64_t wait_ns)
{
    uint64_t deadline = rt_time_mono_ns() + wait_ns;
    rt_mutex_lock(&r->lock);
    while (r->count < n && rt_cond_wait_until(&r->cond, &r->lock, deadline) == 0)
        ;
    bool ok = r->count >= n;
    rt_mutex_unlock(&r->lock);
    return ok;
}

static bool rec_wait(struct rec *r, unsigned n)
{
    return rec_wait_ns(r, n, WAIT_NS);
}

static void reset_hook(void *opaque)
{
    struct kt *t = opaque;
    *vcpu_state(t->vcpu) = t->start;
    t->resets++;
}

static int intc_ack(void *opaque)
{
    struct kt *t = opaque;
    if (!t->intr_enabled)
        return -1;
    t->intr_enabled = false;
    vcpu_set_intr(t->vcpu, false);
    return TEST_VECTOR;
}

static void raise_intr(struct kt *t)
{
    vm_lock(t->vm);
    t->intr_enabled = true;
    vm_unlock(t->vm);
    vcpu_set_intr(t->vcpu, true);
}

/*
 * A 1 MiB KVM VM with the test port and MMIO region; skips the test where KVM is unusable.
 * With apic, Vireo's local APIC model is the interrupt controller (as the PC board makes it),
 * else the test's own controller above (the PIC's place).
 */
static struct kt *kt_new_ex(unsigned vcpus, bool apic)
{
    struct kt *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    struct vm_params p = {.name = "tstKvm",
                          .ram_bytes = 1 << 20,
                          .vcpu_count = vcpus,
                          .exec = VM_EXEC_KVM,
                          .clock_mode = VM_CLOCK_MANUAL};
    int rc = vm_create(&p, &t->vm);
    if (rc == VERR_NO_KVM) {
        free(t);
        skip();
    }
    assert_int_equal(rc, 0);
    t->vcpu = vm_get_vcpu(t->vm, 0);
    t->backend = vm_get_backend(t->vm);
    assert_non_null(t->backend);
    assert_string_equal(t->backend->name, "kvm");
    assert_int_equal(rt_mutex_init(&t->rec.lock), 0);
    assert_int_equal(rt_cond_init(&t->rec.cond), 0);

    struct mem_region *ram, *mmio;
    struct io_region *port;
    assert_int_equal(mem_region_create_ram(t->vm, "ram", 1 << 20, &ram), 0);
    assert_int_equal(mem_region_map(ram, 0, 0), 0);
    assert_int_equal(mem_region_create_mmio(t->vm, "tmmio", 4096, &g_mmio_ops, &t->rec, &mmio), 0);
    assert_int_equal(mem_region_map(mmio, MMIO_GPA, 0), 0);
    assert_int_equal(iom_region_create(t->vm, "tport", 4, &g_port_ops, &t->rec, &port), 0);
    assert_int_equal(iom_region_map(port, TEST_PORT), 0);
    if (apic) {
        struct pdm_dev *dev = NULL;
        assert_int_equal(pdm_dev_create(t->vm, &g_dev_apic, "apic", NULL, &dev), 0);
    } else {
        struct vm_intc intc = {intc_ack, t};
        vm_set_intc(t->vm, &intc);
    }
    vm_set_reset_hook(t->vm, reset_hook, t);

    /* Real mode at 0100:0000, stack at 0:8000, FS reaching the MMIO region (a base real mode keeps). */
    cpu_state_reset(&t->start);
    t->start.seg[CPU_CS].sel = CODE_GPA >> 4;
    t->start.seg[CPU_CS].base = CODE_GPA;
    t->start.rip = 0;
    t->start.gpr[CPU_RSP] = 0x8000;
    t->start.seg[CPU_FS].base = apic ? APIC_GPA : MMIO_GPA;
    return t;
}

static struct kt *kt_new(void)
{
    return kt_new_ex(1, false);
}

static void kt_load(struct kt *t, uint64_t gpa, const void *code, size_t len)
{
    assert_int_equal(mem_write(t->vm, gpa, code, len), 0);
}

static void kt_free(struct kt *t)
{
    if (vm_get_state(t->vm) == VM_STATE_RUNNING || vm_get_state(t->vm) == VM_STATE_PAUSED) {
        vm_request_poweroff(t->vm, 0);
        assert_int_equal(vm_wait(t->vm), 0);
    }
    vm_destroy(t->vm);
    rt_cond_destroy(&t->rec.cond);
    rt_mutex_destroy(&t->rec.lock);
    free(t);
}

/*
 * Pauses the VM once the vCPU sits in HLT (a port write just before HLT does not mean
 * the HLT has run yet); returns with the VM paused and the state in *s.
 */
static void kt_pause_when_halted(struct kt *t, struct cpu_state *s)
{
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(vm_pause(t->vm), 0);
        assert_int_equal(t->backend->state_get(t->vcpu, s), 0);
        if (s->halted)
            return;
        assert_int_equal(vm_resume(t->vm), 0);
        rt_sleep_ns(RT_NS_PER_MS);
    }
    fail_msg("the vCPU never reached HLT");
}

/* ---- state round trips (no guest code runs) ---------------------------------------- */

static void assert_seg_equal(const struct cpu_seg *a, const struct cpu_seg *b)
{
    assert_int_equal(a->sel, b->sel);
    assert_int_equal(a->base, b->base);
    assert_int_equal(a->limit, b->limit);
    assert_int_equal(a->attr, b->attr);
}

static void assert_state_equal(const struct cpu_state *put, const struct cpu_state *got)
{
    for (int i = 0; i < 16; i++)
        assert_int_equal(put->gpr[i], got->gpr[i]);
    assert_int_equal(put->rip, got->rip);
    assert_int_equal(put->rflags, got->rflags);
    for (int i = 0; i < CPU_SEG_COUNT; i++)
        assert_seg_equal(&put->seg[i], &got->seg[i]);
    assert_int_equal(put->gdtr.base, got->gdtr.base);
    assert_int_equal(put->gdtr.limit, got->gdtr.limit);
    assert_int_equal(put->idtr.base, got->idtr.base);
    assert_int_equal(put->idtr.limit, got->idtr.limit);
    assert_int_equal(put->cr0, got->cr0);
    assert_int_equal(put->cr2, got->cr2);
    assert_int_equal(put->cr3, got->cr3);
    assert_int_equal(put->cr4, got->cr4);
    assert_int_equal(put->cr8, got->cr8);
    assert_int_equal(put->efer, got->efer);
    for (int i = 0; i < 8; i++)
        if (i != 4 && i != 5)
            assert_int_equal(put->dr[i], got->dr[i]);
    assert_int_equal(put->xcr0, got->xcr0);
    /* No local APIC model yet: the backend keeps IA32_APIC_BASE.EN clear (kvm-state.c). */
    assert_int_equal(put->apic_base & ~(1ULL << 11), got->apic_base);
    /*
     * The TSC runs on between put and get, and KVM may treat a host write as a request
     * to synchronise with the VM's other TSCs (or, in software KVMs, ignore it), so only
     * its sanity is checked here.
     */
    assert_true(got->tsc != 0);
    assert_int_equal(put->star, got->star);
    assert_int_equal(put->lstar, got->lstar);
    assert_int_equal(put->cstar, got->cstar);
    assert_int_equal(put->sfmask, got->sfmask);
    assert_int_equal(put->kernel_gs_base, got->kernel_gs_base);
    assert_int_equal(put->sysenter_cs, got->sysenter_cs);
    assert_int_equal(put->sysenter_esp, got->sysenter_esp);
    assert_int_equal(put->sysenter_eip, got->sysenter_eip);
    assert_int_equal(put->pat, got->pat);
    assert_int_equal(put->misc_enable, got->misc_enable);
    assert_true(got->tsc_aux == put->tsc_aux || got->tsc_aux == 0); /* hosts without RDTSCP lack the MSR */
    assert_int_equal(put->fpu.fcw, got->fpu.fcw);
    assert_int_equal(put->fpu.fsw, got->fpu.fsw);
    assert_int_equal(put->fpu.ftw, got->fpu.ftw);
    assert_int_equal(put->fpu.fop, got->fpu.fop);
    assert_int_equal(put->fpu.fip, got->fpu.fip);
    assert_int_equal(put->fpu.fdp, got->fpu.fdp);
    assert_int_equal(put->fpu.mxcsr, got->fpu.mxcsr);
    assert_memory_equal(put->fpu.st, got->fpu.st, sizeof(put->fpu.st));
    assert_memory_equal(put->fpu.xmm, got->fpu.xmm, sizeof(put->fpu.xmm));
    if (put->xcr0 & 4)
        assert_memory_equal(put->fpu.ymmh, got->fpu.ymmh, sizeof(put->fpu.ymmh));
    assert_int_equal(put->int_shadow, got->int_shadow);
    assert_int_equal(put->nmi_masked, got->nmi_masked);
    assert_int_equal(put->halted, got->halted);
}

static void test_state_roundtrip_reset(void **state)
{
    struct kt *t = kt_new();
    struct cpu_state put, got;
    cpu_state_reset(&put);
    put.gpr[CPU_RBX] = 0x1234; /* differs from whatever KVM holds now, so the put is not skipped */
    assert_int_equal(t->backend->state_put(t->vcpu, &put), 0);
    memset(&got, 0xcc, sizeof(got));
    assert_int_equal(t->backend->state_get(t->vcpu, &got), 0);
    /* mxcsr_mask is the host's, not part of the guest's state. */
    put.fpu.mxcsr_mask = got.fpu.mxcsr_mask;
    assert_state_equal(&put, &got);
    kt_free(t);
}

/* XCR0 the test may use: what KVM's XSAVE leaf (0xD.0 EAX) offers of x87|SSE|AVX. */
static uint64_t guest_xcr0(struct kt *t)
{
    const struct kvm_backend_vm *kvm = vm_get_backend_data(t->vm);
    assert_non_null(kvm);
    if (!kvm->cap_xcrs)
        return 1;
    const struct kvm_cpuid2 *c = kvm->supported_cpuid;
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == 0xd && c->entries[i].index == 0)
            return 1 | (c->entries[i].eax & 6);
    return 1;
}

static void test_state_roundtrip_long_mode(void **state)
{
    struct kt *t = kt_new();
    struct cpu_state put, got;
    cpu_state_reset(&put);
    for (int i = 0; i < 16; i++)
        put.gpr[i] = 0x0101010101010101ULL * (uint64_t)(i + 1) ^ 0x8000000000000000ULL;
    put.rip = 0xffffffff81000000ULL;
    put.rflags = CPU_RFLAGS_FIXED | CPU_RFLAGS_IF | CPU_RFLAGS_CF | 0x40 /* ZF */;
    const struct cpu_seg code64 = {0x10, 0, 0xffffffff,
                                   CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0xb | CPU_SEG_ATTR_L | CPU_SEG_ATTR_G};
    const struct cpu_seg data = {0x18, 0, 0xffffffff,
                                 CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0x3 | CPU_SEG_ATTR_DB | CPU_SEG_ATTR_G};
    put.seg[CPU_CS] = code64;
    put.seg[CPU_DS] = put.seg[CPU_ES] = put.seg[CPU_SS] = data;
    put.seg[CPU_FS] = data;
    put.seg[CPU_FS].base = 0x00007fff12345000ULL;
    put.seg[CPU_GS] = data;
    put.seg[CPU_GS].base = 0xffff888000001000ULL;
    put.seg[CPU_LDTR] = (struct cpu_seg){0x28, 0x5000, 0xff, CPU_SEG_ATTR_P | 0x2};
    put.seg[CPU_TR] = (struct cpu_seg){0x30, 0xffff888000006000ULL, 0x67, CPU_SEG_ATTR_P | 0xb};
    put.gdtr = (struct cpu_dtable){0xffff888000001000ULL, 0x3f};
    put.idtr = (struct cpu_dtable){0xffff888000002000ULL, 0xfff};
    put.xcr0 = guest_xcr0(t);
    put.cr0 = CPU_CR0_PE | 0x2 /* MP */ | CPU_CR0_ET | 0x20 /* NE */ | 0x10000 /* WP */ | CPU_CR0_PG;
    put.cr4 = 0x20 /* PAE */ | 0x200 /* OSFXSR */ | 0x400 /* OSXMMEXCPT */ | (put.xcr0 != 1 ? 0x40000 : 0);
    put.cr3 = 0x3000;
    put.cr2 = 0xdeadb000;
    put.cr8 = 5;
    put.efer = 0x1 /* SCE */ | 0x100 /* LME */ | 0x400 /* LMA */ | 0x800 /* NXE */;
    put.dr[0] = 0x1000;
    put.dr[1] = 0x2000;
    put.dr[2] = 0x3000;
    put.dr[3] = 0x4000;
    put.dr[7] = 0x401;
    put.tsc = 1000000;
    put.star = 0x0023001000000000ULL;
    put.lstar = 0xffffffff81800000ULL;
    put.cstar = 0xffffffff81800100ULL;
    put.sfmask = 0x47700;
    put.kernel_gs_base = 0xffff888007e00000ULL;
    put.sysenter_cs = 0x10;
    put.sysenter_esp = 0xffff888000008000ULL;
    put.sysenter_eip = 0xffffffff81900000ULL;
    put.pat = 0x0007010600070106ULL;
    put.misc_enable = 1;
    put.tsc_aux = 3;
    put.fpu.fcw = 0x027f;
    put.fpu.fsw = 0x3800;
    put.fpu.ftw = 0x80;
    put.fpu.fop = 0x1d9;
    put.fpu.fip = 0xffffffff81234567ULL;
    put.fpu.fdp = 0xffff888000abcdefULL;
    put.fpu.mxcsr = 0x1fa0;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 10; j++)
            put.fpu.st[i][j] = (uint8_t)(i * 16 + j + 1);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            put.fpu.xmm[i][j] = (uint8_t)(0x80 + i * 16 + j);
            put.fpu.ymmh[i][j] = (put.xcr0 & 4) ? (uint8_t)(0x40 ^ (i * 16 + j)) : 0;
        }
    put.int_shadow = true;
    put.nmi_masked = true;
    put.halted = true;

    assert_int_equal(t->backend->state_put(t->vcpu, &put), 0);
    assert_int_equal(t->backend->state_get(t->vcpu, &got), 0);
    put.fpu.mxcsr_mask = got.fpu.mxcsr_mask;
    assert_state_equal(&put, &got);

    /* Putting back exactly what was read is a no-op, and a second read agrees. */
    struct cpu_state again;
    assert_int_equal(t->backend->state_put(t->vcpu, &got), 0);
    assert_int_equal(t->backend->state_get(t->vcpu, &again), 0);
    again.tsc = got.tsc;
    assert_state_equal(&got, &again);
    kt_free(t);
}

/* ---- running guest code ------------------------------------------------------------- */

/*
 * Real mode, at 0100:0000 (nasm source in the comments):
 *   mov dx, 0x500 / mov eax, 0x12345678 / out dx, eax / in eax, dx / inc eax / out dx, eax
 *   mov eax, 0xa5a5a5a5 / mov [fs:0x10], eax / mov ax, [fs:0x20] / out dx, ax
 *   mov eax, 1 / cpuid / mov esi, edx / mov dx, 0x500 / mov eax, ecx / out dx, eax / mov eax, esi / out dx, eax
 *   mov eax, ebx / out dx, eax
 *   mov si, 0x100 / mov cx, 4 / cs rep outsb / hlt / jmp $
 */
static const uint8_t g_code_io[] = {
    0xba, 0x00, 0x05, 0x66, 0xb8, 0x78, 0x56, 0x34, 0x12, 0x66, 0xef, 0x66, 0xed, 0x66, 0x40, 0x66, 0xef, 0x66, 0xb8,
    0xa5, 0xa5, 0xa5, 0xa5, 0x64, 0x66, 0xa3, 0x10, 0x00, 0x64, 0xa1, 0x20, 0x00, 0xef, 0x66, 0xb8, 0x01, 0x00, 0x00,
    0x00, 0x0f, 0xa2, 0x66, 0x89, 0xd6, 0xba, 0x00, 0x05, 0x66, 0x89, 0xc8, 0x66, 0xef, 0x66, 0x89, 0xf0, 0x66, 0xef,
    0x66, 0x89, 0xd8, 0x66, 0xef, 0xbe, 0x00, 0x01, 0xb9, 0x04, 0x00, 0xf3, 0x2e, 0x6e, 0xf4, 0xeb, 0xfe,
};

static void test_run_io_mmio_cpuid(void **state)
{
    struct kt *t = kt_new();
    kt_load(t, CODE_GPA, g_code_io, sizeof(g_code_io));
    kt_load(t, CODE_GPA + 0x100, "VIRO", 4);
    assert_int_equal(vm_start(t->vm), 0);
    assert_true(rec_wait(&t->rec, 10));

    struct rec *r = &t->rec;
    assert_int_equal(r->values[0], 0x12345678);
    assert_int_equal(r->sizes[0], 4);
    assert_int_equal(r->values[1], 0xcafef00e); /* the IN completed into EAX before INC */
    assert_int_equal(r->mmio_write_off, 0x10);
    assert_int_equal(r->mmio_write_val, 0xa5a5a5a5);
    assert_int_equal(r->mmio_write_size, 4);
    assert_int_equal(r->mmio_read_off, 0x20);
    assert_int_equal(r->mmio_read_size, 2);
    assert_int_equal(r->values[2], 0xbeef);
    assert_int_equal(r->sizes[2], 2);

    /* CPUID leaf 1 as the guest sees it: the policy in kvm-cpuid.c. */
    uint32_t ecx = r->values[3], edx = r->values[4], ebx = r->values[5];
    assert_true(edx & 1);           /* FPU: the leaf is real */
    assert_false(edx & (1u << 9));  /* no local APIC */
    assert_false(ecx & (1u << 21)); /* no x2APIC */
    assert_false(ecx & (1u << 24)); /* no TSC deadline */
    assert_false(ecx & (1u << 5));  /* no VMX */
    assert_int_equal(ebx >> 24, 0); /* initial APIC ID = vCPU index */

    /* REP OUTSB: one exit, four port writes in order. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r->values[6 + i], (uint32_t) "VIRO"[i]);
        assert_int_equal(r->sizes[6 + i], 1);
    }

    /* The vCPU ends in HLT with IF clear: pausing must still park it, and it reports halted. */
    struct cpu_state s;
    kt_pause_when_halted(t, &s);
    assert_int_equal(s.rip, sizeof(g_code_io) - 2); /* after the HLT */
    kt_free(t);
}

/*
 * IVT[0x30] -> 0100:0080.  Main: mov dx, 0x500 / mov al, 1 / out dx, al / sti / hlt /
 * mov al, 0x11 / out dx, al / cli / hlt / mov al, 0x22 / out dx, al / jmp $
 * Handler at 0x80: mov al, 0x30 / out dx, al / iret
 */
static const uint8_t g_code_irq[] = {
    0xba, 0x00, 0x05, 0xb0, 0x01, 0xee, 0xfb, 0xf4, 0xb0, 0x11, 0xee, 0xfa, 0xf4, 0xb0, 0x22, 0xee, 0xeb, 0xfe,
};
static const uint8_t g_code_irq_handler[] = {0xb0, 0x30, 0xee, 0xcf};

static void test_interrupt_wakes_hlt(void **state)
{
    struct kt *t = kt_new();
    kt_load(t, CODE_GPA, g_code_irq, sizeof(g_code_irq));
    kt_load(t, CODE_GPA + 0x80, g_code_irq_handler, sizeof(g_code_irq_handler));
    const uint16_t ivt[2] = {0x80, CODE_GPA >> 4};
    kt_load(t, TEST_VECTOR * 4, ivt, sizeof(ivt));
    assert_int_equal(vm_start(t->vm), 0);

    assert_true(rec_wait(&t->rec, 1));
    assert_int_equal(t->rec.values[0], 0x01);
    /* STI; HLT: the interrupt is taken (handler first), then execution continues after HLT. */
    raise_intr(t);
    assert_true(rec_wait(&t->rec, 3));
    assert_int_equal(t->rec.values[1], 0x30);
    assert_int_equal(t->rec.values[2], 0x11);

    /* Wait until the vCPU sits in the second HLT, the one with IF clear. */
    struct cpu_state s;
    kt_pause_when_halted(t, &s);
    assert_int_equal(vm_resume(t->vm), 0);
    assert_false(s.rflags & CPU_RFLAGS_IF);
    assert_int_equal(s.rip, 13); /* after the second HLT */

    /* CLI; HLT: a new request must neither be acknowledged nor wake the vCPU (no write 0x22). */
    raise_intr(t);
    assert_false(rec_wait_ns(&t->rec, 4, 200 * RT_NS_PER_MS));
    assert_int_equal(vm_pause(t->vm), 0);
    assert_int_equal(t->backend->state_get(t->vcpu, &s), 0);
    assert_true(s.halted);
    assert_int_equal(s.rip, 13);
    assert_int_equal(t->rec.count, 3);
    assert_true(t->intr_enabled);
    kt_free(t);
}

/* mov dx, 0x500 / mov al, 1 / out dx, al / spin: jmp spin */
static const uint8_t g_code_spin[] = {0xba, 0x00, 0x05, 0xb0, 0x01, 0xee, 0xeb, 0xfe};

static void test_kick_interrupts_guest_loop(void **state)
{
    struct kt *t = kt_new();
    kt_load(t, CODE_GPA, g_code_spin, sizeof(g_code_spin));
    assert_int_equal(vm_start(t->vm), 0);
    assert_true(rec_wait(&t->rec, 1));
    /* The guest never exits by itself: every pause needs the kick to get it out of KVM_RUN. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(vm_pause(t->vm), 0);
        struct cpu_state s;
        assert_int_equal(t->backend->state_get(t->vcpu, &s), 0);
        assert_int_equal(s.rip, 6);
        assert_false(s.halted);
        assert_int_equal(vm_resume(t->vm), 0);
    }
    kt_free(t);
}

/*
 * 32-bit protected mode with an empty IDT: UD2 raises #UD, whose gate is past the IDT
 * limit (#GP), whose gate is too (#DF), whose gate is too: a triple fault (SDM vol. 3A,
 * 6.15, interrupt 8).  The VM resets and runs again.  (Protected mode because KVM's
 * real-mode exception emulation reports an internal error instead for an empty IVT.)
 *   bits 32 / mov dx, 0x500 / mov al, 1 / out dx, al / ud2
 */
static const uint8_t g_code_ud2[] = {0x66, 0xba, 0x00, 0x05, 0xb0, 0x01, 0xee, 0x0f, 0x0b};

static void test_triple_fault_resets(void **state)
{
    struct kt *t = kt_new();
    kt_load(t, CODE_GPA, g_code_ud2, sizeof(g_code_ud2));
    const struct cpu_seg code32 = {0x08, 0, 0xffffffff,
                                   CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0xb | CPU_SEG_ATTR_DB | CPU_SEG_ATTR_G};
    const struct cpu_seg data32 = {0x10, 0, 0xffffffff,
                                   CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0x3 | CPU_SEG_ATTR_DB | CPU_SEG_ATTR_G};
    t->start.cr0 |= CPU_CR0_PE;
    t->start.seg[CPU_CS] = code32;
    t->start.seg[CPU_DS] = t->start.seg[CPU_ES] = t->start.seg[CPU_SS] = data32;
    t->start.seg[CPU_FS] = t->start.seg[CPU_GS] = data32;
    t->start.rip = CODE_GPA;
    t->start.idtr.limit = 0;
    assert_int_equal(vm_start(t->vm), 0);
    /* One port write per run: three writes mean two shutdowns each led to a reset. */
    assert_true(rec_wait(&t->rec, 3));
    assert_true(t->resets >= 3);
    kt_free(t);
}

/* ---- the local APIC model behind KVM ------------------------------------------------- */

/*
 * Real mode at 0100:0000 with FS based at the APIC page (nasm source in the comments):
 *   mov dx, 0x500 / mov eax, [fs:0x80] / out dx, eax            ; TPR from the loaded CR8
 *   mov dword [fs:0xf0], 0x1ff / mov dword [fs:0x80], 0          ; software enable, TPR 0
 *   mov eax, [fs:0x20] / out dx, eax / mov eax, [fs:0x30] / out dx, eax   ; ID, version
 *   mov ecx, 0x1b / rdmsr / mov dx, 0x500 / out dx, eax          ; IA32_APIC_BASE
 *   mov eax, 1 / cpuid / mov eax, edx / mov dx, 0x500 / out dx, eax   ; CPUID.1:EDX
 *   mov dword [fs:0x80], 0x40 / sti / mov dword [fs:0x300], 0x40030 / nop / nop
 *   mov al, 0x77 / out dx, al                                    ; self-IPI 0x30 masked by TPR
 *   mov dword [fs:0x80], 0 / nop / mov al, 0x78 / out dx, al     ; unmasked: the handler runs
 *   mov dword [fs:0x3e0], 0xb / mov dword [fs:0x320], 0x31 / mov dword [fs:0x380], 1000000
 *   mov al, 0x79 / out dx, al / hlt / mov al, 0x7a / out dx, al / cli / hlt / jmp $
 * Handlers at 0x200 (vector 0x30) and 0x210 (0x31): mov al, vector / out dx, al /
 *   mov dword [fs:0xb0], 0 (EOI) / iret
 */
static const uint8_t g_code_apic[] = {
    0xba, 0x00, 0x05, 0x64, 0x66, 0xa1, 0x80, 0x00, 0x66, 0xef, 0x64, 0x66, 0xc7, 0x06, 0xf0, 0x00, 0xff, 0x01,
    0x00, 0x00, 0x64, 0x66, 0xc7, 0x06, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x66, 0xa1, 0x20, 0x00, 0x66,
    0xef, 0x64, 0x66, 0xa1, 0x30, 0x00, 0x66, 0xef, 0x66, 0xb9, 0x1b, 0x00, 0x00, 0x00, 0x0f, 0x32, 0xba, 0x00,
    0x05, 0x66, 0xef, 0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0x66, 0x89, 0xd0, 0xba, 0x00, 0x05, 0x66,
    0xef, 0x64, 0x66, 0xc7, 0x06, 0x80, 0x00, 0x40, 0x00, 0x00, 0x00, 0xfb, 0x64, 0x66, 0xc7, 0x06, 0x00, 0x03,
    0x30, 0x00, 0x04, 0x00, 0x90, 0x90, 0xb0, 0x77, 0xee, 0x64, 0x66, 0xc7, 0x06, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x90, 0xb0, 0x78, 0xee, 0x64, 0x66, 0xc7, 0x06, 0xe0, 0x03, 0x0b, 0x00, 0x00, 0x00, 0x64, 0x66, 0xc7,
    0x06, 0x20, 0x03, 0x31, 0x00, 0x00, 0x00, 0x64, 0x66, 0xc7, 0x06, 0x80, 0x03, 0x40, 0x42, 0x0f, 0x00, 0xb0,
    0x79, 0xee, 0xf4, 0xb0, 0x7a, 0xee, 0xfa, 0xf4, 0xeb, 0xfe,
};
static const uint8_t g_code_apic_handlers[] = {
    0xb0, 0x30, 0xee, 0x64, 0x66, 0xc7, 0x06, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcf, 0x90, 0x90,
    0xb0, 0x31, 0xee, 0x64, 0x66, 0xc7, 0x06, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0xcf,
};

static void test_apic_tpr_self_ipi_timer(void **state)
{
    struct kt *t = kt_new_ex(1, true);
    kt_load(t, CODE_GPA, g_code_apic, sizeof(g_code_apic));
    kt_load(t, CODE_GPA + 0x200, g_code_apic_handlers, sizeof(g_code_apic_handlers));
    const uint16_t ivt[4] = {0x200, CODE_GPA >> 4, 0x210, CODE_GPA >> 4};
    kt_load(t, 0x30 * 4, ivt, sizeof(ivt));
    t->start.cr8 = 3; /* the state's CR8 reaches the model's TPR */
    assert_int_equal(vm_start(t->vm), 0);

    struct rec *r = &t->rec;
    assert_true(rec_wait(r, 9));
    assert_int_equal(r->values[0], 0x30);
    assert_int_equal(r->values[1] >> 24, 0);              /* APIC ID of vCPU 0 */
    assert_int_equal(r->values[2] & 0xff, 0x14);          /* integrated APIC */
    assert_int_equal(r->values[3], 0xfee00000u | 0x900);  /* enabled, BSP */
    assert_true(r->values[4] & (1u << 9));                /* CPUID shows the APIC */
    assert_int_equal(r->values[5], 0x77);                 /* nothing while the TPR masked it */
    assert_int_equal(r->values[6], 0x30);                 /* taken as soon as the TPR dropped */
    assert_int_equal(r->values[7], 0x78);
    assert_int_equal(r->values[8], 0x79);

    /* The one-shot timer runs on the virtual clock: it wakes the HLT only once the clock passes 1 ms. */
    struct cpu_state s;
    kt_pause_when_halted(t, &s);
    assert_int_equal(vm_resume(t->vm), 0);
    assert_false(rec_wait_ns(r, 10, 100 * RT_NS_PER_MS));
    tm_clock_step(t->vm, 2 * RT_NS_PER_MS);
    assert_true(rec_wait(r, 11));
    assert_int_equal(r->values[9], 0x31);
    assert_int_equal(r->values[10], 0x7a);
    kt_free(t);
}

/*
 * Two vCPUs.  BSP (real mode at 0100:0000, FS at the APIC page, DS = 0):
 *   mov dx, 0x500 / mov dword [fs:0xf0], 0x1ff / mov dword [fs:0x310], 0x01000000
 *   mov dword [fs:0x300], 0x4500 (INIT) / mov dword [fs:0x300], 0x602 (SIPI 2) twice
 *   .w1: cmp byte [0x3000], 0x5a / jne .w1 / mov al, 0xb5 / out dx, al
 *   mov dword [fs:0x300], 0x400 (NMI) / .w2: cmp byte [0x3003], 0x5c / jne .w2
 *   mov al, [0x3002] / out dx, al / mov al, 0xb6 / out dx, al / cli / hlt / jmp $
 * AP at 0200:0000: xor ax, ax / mov ds, ax / mov ss, ax / mov sp, 0x7000 / mov eax, 1 / cpuid /
 *   shr ebx, 24 / mov [0x3002], bl / mov byte [0x3000], 0x5a / cli / hlt /
 *   mov byte [0x3003], 0x5c / cli / hlt / jmp $
 * AP's NMI handler at 0200:0100: mov byte [0x3001], 0x5b / iret
 */
static const uint8_t g_code_smp_bsp[] = {
    0xba, 0x00, 0x05, 0x64, 0x66, 0xc7, 0x06, 0xf0, 0x00, 0xff, 0x01, 0x00, 0x00, 0x64, 0x66, 0xc7, 0x06, 0x10,
    0x03, 0x00, 0x00, 0x00, 0x01, 0x64, 0x66, 0xc7, 0x06, 0x00, 0x03, 0x00, 0x45, 0x00, 0x00, 0x64, 0x66, 0xc7,
    0x06, 0x00, 0x03, 0x02, 0x06, 0x00, 0x00, 0x64, 0x66, 0xc7, 0x06, 0x00, 0x03, 0x02, 0x06, 0x00, 0x00, 0x80,
    0x3e, 0x00, 0x30, 0x5a, 0x75, 0xf9, 0xb0, 0xb5, 0xee, 0x64, 0x66, 0xc7, 0x06, 0x00, 0x03, 0x00, 0x04, 0x00,
    0x00, 0x80, 0x3e, 0x03, 0x30, 0x5c, 0x75, 0xf9, 0xa0, 0x02, 0x30, 0xee, 0xb0, 0xb6, 0xee, 0xfa, 0xf4, 0xeb,
    0xfe,
};
static const uint8_t g_code_smp_ap[] = {
    0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x70, 0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2,
    0x66, 0xc1, 0xeb, 0x18, 0x88, 0x1e, 0x02, 0x30, 0xc6, 0x06, 0x00, 0x30, 0x5a, 0xfa, 0xf4, 0xc6, 0x06,
    0x03, 0x30, 0x5c, 0xfa, 0xf4, 0xeb, 0xfe,
};
static const uint8_t g_code_smp_ap_nmi[] = {0xc6, 0x06, 0x01, 0x30, 0x5b, 0xcf};

static void test_smp_init_sipi_nmi(void **state)
{
    struct kt *t = kt_new_ex(2, true);
    kt_load(t, CODE_GPA, g_code_smp_bsp, sizeof(g_code_smp_bsp));
    kt_load(t, 0x2000, g_code_smp_ap, sizeof(g_code_smp_ap));
    kt_load(t, 0x2100, g_code_smp_ap_nmi, sizeof(g_code_smp_ap_nmi));
    const uint16_t nmi_vec[2] = {0x100, 0x200};
    kt_load(t, 2 * 4, nmi_vec, sizeof(nmi_vec));
    assert_int_equal(vm_start(t->vm), 0);

    /* The AP ran from the start-up page (0x5a), took the NMI out of its HLT (0x5b) and went on (0x5c). */
    assert_true(rec_wait(&t->rec, 3));
    assert_int_equal(t->rec.values[0], 0xb5);
    assert_int_equal(t->rec.values[1], 1); /* CPUID.1:EBX[31:24] of the AP: APIC ID 1 */
    assert_int_equal(t->rec.values[2], 0xb6);
    uint8_t mark[4];
    assert_int_equal(mem_read(t->vm, 0x3000, mark, sizeof(mark)), 0);
    assert_int_equal(mark[0], 0x5a);
    assert_int_equal(mark[1], 0x5b);
    assert_int_equal(mark[3], 0x5c);

    /* The AP sits in its second HLT in the start-up segment; its IA32_APIC_BASE has no BSP flag. */
    struct vcpu *ap = vm_get_vcpu(t->vm, 1);
    struct cpu_state s;
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(vm_pause(t->vm), 0);
        assert_int_equal(t->backend->state_get(ap, &s), 0);
        if (s.halted)
            break;
        assert_int_equal(vm_resume(t->vm), 0);
        rt_sleep_ns(RT_NS_PER_MS);
    }
    assert_true(s.halted);
    assert_int_equal(s.seg[CPU_CS].base, 0x2000);
    assert_int_equal(s.rip, sizeof(g_code_smp_ap) - 2);
    assert_int_equal(s.apic_base, 0xfee00000u | 0x800);
    kt_free(t);
}

/* Without a start-up IPI the AP never runs: it waits (halted, at the reset vector) while the BSP works. */
static void test_smp_ap_waits_for_sipi(void **state)
{
    struct kt *t = kt_new_ex(2, true);
    kt_load(t, CODE_GPA, g_code_spin, sizeof(g_code_spin));
    assert_int_equal(vm_start(t->vm), 0);
    assert_true(rec_wait(&t->rec, 1));
    rt_sleep_ns(50 * RT_NS_PER_MS);
    assert_int_equal(vm_pause(t->vm), 0);
    struct cpu_state s;
    assert_int_equal(t->backend->state_get(vm_get_vcpu(t->vm, 1), &s), 0);
    assert_true(s.halted);
    assert_int_equal(s.seg[CPU_CS].base, 0xffff0000u);
    assert_int_equal(s.rip, 0xfff0);
    assert_int_equal(t->backend->state_get(t->vcpu, &s), 0);
    assert_int_equal(s.rip, 6);
    assert_int_equal(s.apic_base, 0xfee00000u | 0x900);
    assert_int_equal(vm_get_state(t->vm), VM_STATE_PAUSED);
    kt_free(t);
}

int main(void)
{
    /* A wedged vCPU would hang the test forever; let SIGALRM end it as a failure. */
    alarm(240);
    rt_log_set_level(RT_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_roundtrip_reset),      cmocka_unit_test(test_state_roundtrip_long_mode),
        cmocka_unit_test(test_run_io_mmio_cpuid),          cmocka_unit_test(test_interrupt_wakes_hlt),
        cmocka_unit_test(test_kick_interrupts_guest_loop), cmocka_unit_test(test_triple_fault_resets),
        cmocka_unit_test(test_apic_tpr_self_ipi_timer),    cmocka_unit_test(test_smp_init_sipi_nmi),
        cmocka_unit_test(test_smp_ap_waits_for_sipi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
