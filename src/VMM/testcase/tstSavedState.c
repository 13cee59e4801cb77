/* tstSavedState.c - saved-state files: a guest saved mid-computation resumes to the reference result on the interpreter, the recompiler and KVM; halted vCPUs; corrupt, truncated and mismatched files; atomic writes; zero-page skipping. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/vm.h"

#define RAM_BYTES   (4u << 20)
#define CODE_GPA    0x1000
#define RESULT_GPA  0x8000 /* +0 done, +4 TSC went backwards, +8 last TSC, +0x10 ebx, +0x14 ecx, +0x20 iterations */
#define BUF_GPA     0x100000
#define BUF_BYTES   (1u << 20)
#define WAIT_NS     (60 * RT_NS_PER_SEC)

/*
 * Flat 32-bit protected mode, interrupts off (nasm source in the comment below).  It programs PIT
 * counter 0 (mode 2, so its timer is armed at any save), then runs [0x8020] rounds of a mix of
 * IMUL, ROL, XOR and a read-modify-write walk over a 1 MiB buffer; every 256 rounds it latches
 * and reads the PIT, reads the RTC seconds and checks that the TSC never went backwards
 * (counting the times it did at 0x8004).  It stores EBX and ECX at 0x8010, sets 0x8000, halts.
 *
 *     mov al,0x34 / out 0x43,al / mov al,0 / out 0x40,al / mov al,0x10 / out 0x40,al
 *     mov ebp,[0x8020] / mov ebx,1 / mov ecx,0x12345678 / xor esi,esi
 *   loop: imul ebx,ebx,0x41C64E6D / add ebx,12345 / mov edx,ebx / rol edx,7 / xor ecx,edx
 *     add ecx,[esi*4+0x100000] / mov [esi*4+0x100000],ecx / inc esi / and esi,0x3ffff
 *     test ebp,0xff / jnz .notime
 *     mov al,0 / out 0x43,al / in al,0x40 / in al,0x40 / mov al,0 / out 0x70,al / in al,0x71
 *     rdtsc / cmp edx,[0x800c] / jb .back / ja .ok / cmp eax,[0x8008] / jb .back
 *   .ok: mov [0x8008],eax / mov [0x800c],edx
 *   .notime: dec ebp / jnz loop
 *     mov [0x8010],ebx / mov [0x8014],ecx / mov dword [0x8000],1
 *   .halt: hlt / jmp .halt
 *   .back: inc dword [0x8004] / jmp .ok
 */
static const uint8_t g_prog[] = {
    0xb0, 0x34, 0xe6, 0x43, 0xb0, 0x00, 0xe6, 0x40, 0xb0, 0x10, 0xe6, 0x40, 0x8b, 0x2d, 0x20, 0x80, 0x00, 0x00,
    0xbb, 0x01, 0x00, 0x00, 0x00, 0xb9, 0x78, 0x56, 0x34, 0x12, 0x31, 0xf6, 0x69, 0xdb, 0x6d, 0x4e, 0xc6, 0x41,
    0x81, 0xc3, 0x39, 0x30, 0x00, 0x00, 0x89, 0xda, 0xc1, 0xc2, 0x07, 0x31, 0xd1, 0x03, 0x0c, 0xb5, 0x00, 0x00,
    0x10, 0x00, 0x89, 0x0c, 0xb5, 0x00, 0x00, 0x10, 0x00, 0x46, 0x81, 0xe6, 0xff, 0xff, 0x03, 0x00, 0xf7, 0xc5,
    0xff, 0x00, 0x00, 0x00, 0x75, 0x2d, 0xb0, 0x00, 0xe6, 0x43, 0xe4, 0x40, 0xe4, 0x40, 0xb0, 0x00, 0xe6, 0x70,
    0xe4, 0x71, 0x0f, 0x31, 0x3b, 0x15, 0x0c, 0x80, 0x00, 0x00, 0x72, 0x31, 0x77, 0x08, 0x3b, 0x05, 0x08, 0x80,
    0x00, 0x00, 0x72, 0x27, 0xa3, 0x08, 0x80, 0x00, 0x00, 0x89, 0x15, 0x0c, 0x80, 0x00, 0x00, 0x4d, 0x75, 0xa0,
    0x89, 0x1d, 0x10, 0x80, 0x00, 0x00, 0x89, 0x0d, 0x14, 0x80, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x80, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0xf4, 0xeb, 0xfd, 0xff, 0x05, 0x04, 0x80, 0x00, 0x00, 0xeb, 0xd1,
};
#define PROG_HLT_OFFSET 0x94 /* the HLT the program ends in */

/* What one VM configuration looks like; the corrupt-file tests vary it. */
struct shape {
    enum vm_exec exec;
    uint64_t ram_bytes;
    unsigned vcpus;
    bool rtc;     /* the mc146818 */
    bool uart;    /* an extra device */
};

struct tvm {
    struct vm *vm;
    struct vcpu *vcpu;
    uint8_t *ram;
};

static char g_dir[] = "/tmp/tstSavedState.XXXXXX";

static void reset_hook(void *opaque)
{
    struct tvm *t = opaque;
    for (unsigned i = 0; i < vm_get_vcpu_count(t->vm); i++) {
        struct cpu_state *s = vcpu_state(vm_get_vcpu(t->vm, i));
        s->cr0 = CPU_CR0_PE | CPU_CR0_ET;
        for (unsigned g = 0; g < CPU_SEG_COUNT; g++) {
            if (g == CPU_LDTR || g == CPU_TR)
                continue;
            s->seg[g].sel = g == CPU_CS ? 0x08 : 0x10;
            s->seg[g].base = 0;
            s->seg[g].limit = 0xffffffff;
            s->seg[g].attr = g == CPU_CS ? 0xc09b : 0xc093;
        }
        s->rip = CODE_GPA;
        s->gpr[CPU_RSP] = 0x7000;
        /* Application processors just halt with interrupts off. */
        if (i > 0)
            s->halted = true;
    }
}

/* Builds a VM of the given shape with the program loaded (NULL when the backend is unusable here). */
static struct tvm *tvm_new(const struct shape *sh, uint32_t iterations)
{
    struct tvm *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    struct vm_params p = {.name = "tstSavedState", .ram_bytes = sh->ram_bytes, .vcpu_count = sh->vcpus,
                          .exec = sh->exec, .clock_mode = VM_CLOCK_HOST};
    int rc = vm_create(&p, &t->vm);
    if (rc == VERR_NO_KVM || (rc && sh->exec == VM_EXEC_KVM)) {
        free(t);
        return NULL;
    }
    assert_int_equal(rc, 0);
    t->vcpu = vm_get_vcpu(t->vm, 0);
    struct mem_region *ram;
    assert_int_equal(mem_region_create_ram(t->vm, "ram", sh->ram_bytes, &ram), 0);
    assert_int_equal(mem_region_map(ram, 0, 0), 0);
    t->ram = mem_region_hva(ram);
    struct pdm_dev *dev;
    assert_int_equal(pdm_dev_create(t->vm, &g_dev_i8254, "pit", NULL, &dev), 0);
    if (sh->rtc)
        assert_int_equal(pdm_dev_create(t->vm, &g_dev_mc146818, "rtc", NULL, &dev), 0);
    if (sh->uart) {
        struct pdm_cfg *cfg;
        assert_int_equal(pdm_cfg_create(&cfg), 0);
        assert_int_equal(pdm_cfg_set(cfg, "iobase", "0x3f8"), 0);
        assert_int_equal(pdm_cfg_set(cfg, "irq", "4"), 0);
        assert_int_equal(pdm_dev_create(t->vm, &g_dev_uart16550, "com1", cfg, &dev), 0);
        pdm_cfg_destroy(cfg);
    }
    assert_int_equal(mem_write(t->vm, CODE_GPA, g_prog, sizeof(g_prog)), 0);
    assert_int_equal(mem_write(t->vm, RESULT_GPA + 0x20, &iterations, 4), 0);
    vm_set_reset_hook(t->vm, reset_hook, t);
    return t;
}

static void tvm_free(struct tvm *t)
{
    if (!t)
        return;
    enum vm_state st = vm_get_state(t->vm);
    if (st == VM_STATE_RUNNING || st == VM_STATE_PAUSED) {
        vm_request_poweroff(t->vm, 0);
        vm_wait(t->vm);
    }
    vm_destroy(t->vm);
    free(t);
}

static uint32_t ram_u32(const struct tvm *t, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, t->ram + gpa, 4);
    return v;
}

static bool wait_done(struct tvm *t)
{
    uint64_t deadline = rt_time_mono_ns() + WAIT_NS;
    while (rt_time_mono_ns() < deadline) {
        if (__atomic_load_n((uint32_t *)(t->ram + RESULT_GPA), __ATOMIC_ACQUIRE) == 1)
            return true;
        rt_sleep_ns(RT_NS_PER_MS);
    }
    return false;
}

/* What the program computed: its registers, the TSC check and a hash of the buffer. */
struct result {
    uint32_t ebx, ecx, backwards;
    uint64_t buf_hash;
};

static struct result result_of(const struct tvm *t)
{
    struct result r = {ram_u32(t, RESULT_GPA + 0x10), ram_u32(t, RESULT_GPA + 0x14), ram_u32(t, RESULT_GPA + 4), 0};
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < BUF_BYTES; i++)
        h = (h ^ t->ram[BUF_GPA + i]) * 1099511628211ULL;
    r.buf_hash = h;
    return r;
}

static char *tmp_path(const char *name)
{
    char *p = rt_strdup_printf("%s/%s", g_dir, name);
    assert_non_null(p);
    return p;
}

static void progress_cb(void *opaque, unsigned percent)
{
    unsigned *last = opaque;
    assert_true(percent >= *last || *last == UINT_MAX);
    assert_true(percent <= 100);
    *last = percent;
}

/* ---- resume mid-computation -------------------------------------------------------------- */

static const uint32_t g_iterations = 1500000;

static void resume_check(enum vm_exec exec, uint32_t iterations)
{
    struct shape sh = {exec, RAM_BYTES, 1, true, false};
    /* A: the reference, straight through. */
    struct tvm *a = tvm_new(&sh, iterations);
    if (!a)
        skip();
    uint64_t t0 = rt_time_mono_ns();
    assert_int_equal(vm_start(a->vm), 0);
    assert_true(wait_done(a));
    uint64_t run_ns = rt_time_mono_ns() - t0;
    struct result ref = result_of(a);
    assert_int_equal(ref.backwards, 0);
    tvm_free(a);

    /* B: paused a third of the way, saved, destroyed. */
    char *path = tmp_path("resume.sav");
    struct tvm *b = tvm_new(&sh, iterations);
    assert_non_null(b);
    assert_int_equal(vm_start(b->vm), 0);
    rt_sleep_ns(run_ns / 3);
    assert_int_equal(vm_pause(b->vm), 0);
    assert_int_equal(ram_u32(b, RESULT_GPA), 0); /* really in the middle */
    uint64_t saved_clock = tm_now_ns(b->vm);
    struct cpu_state at_save;
    assert_int_equal(vm_get_backend(b->vm)->state_get(b->vcpu, &at_save), 0);
    unsigned last = UINT_MAX;
    assert_int_equal(vm_state_save(b->vm, path, progress_cb, &last), 0);
    assert_int_equal(last, 100);
    assert_int_equal(tm_now_ns(b->vm), saved_clock); /* saving does not run the clock */
    tvm_free(b);

    /* C: a fresh VM of the same shape (its RAM holds a different iteration count) takes the file. */
    struct tvm *c = tvm_new(&sh, 7);
    assert_non_null(c);
    assert_int_equal(vm_state_load(c->vm, path), 0);
    assert_int_equal(tm_now_ns(c->vm), saved_clock);
    assert_int_equal(ram_u32(c, RESULT_GPA + 0x20), iterations);
    struct cpu_state loaded;
    assert_int_equal(vm_get_backend(c->vm)->state_get(c->vcpu, &loaded), 0);
    assert_int_equal(loaded.rip, at_save.rip);
    assert_int_equal(loaded.gpr[CPU_RBP], at_save.gpr[CPU_RBP]);
    assert_int_equal(loaded.gpr[CPU_RCX], at_save.gpr[CPU_RCX]);
    assert_int_equal(vm_start(c->vm), 0);
    /* Guest time continues from the saved value: it is never behind it. */
    assert_true(tm_now_ns(c->vm) >= saved_clock);
    assert_true(wait_done(c));
    struct result got = result_of(c);
    assert_int_equal(got.ebx, ref.ebx);
    assert_int_equal(got.ecx, ref.ecx);
    assert_int_equal(got.backwards, 0);
    assert_int_equal(got.buf_hash, ref.buf_hash);
    tvm_free(c);
    unlink(path);
    free(path);
}

static void test_resume_interp(void **state)
{
    resume_check(VM_EXEC_INTERP, g_iterations);
}

static void test_resume_rec(void **state)
{
    resume_check(VM_EXEC_SOFT, g_iterations);
}

static void test_resume_kvm(void **state)
{
    if (access("/dev/kvm", R_OK | W_OK) != 0)
        skip();
    /* Port exits are slow under nested KVM: fewer rounds keep the run around a second. */
    resume_check(VM_EXEC_KVM, g_iterations / 20);
}

/* ---- a halted vCPU stays halted ------------------------------------------------------------ */

static void test_halted_vcpu(void **state)
{
    struct shape sh = {VM_EXEC_INTERP, RAM_BYTES, 2, true, false};
    struct tvm *a = tvm_new(&sh, 1000);
    assert_int_equal(vm_start(a->vm), 0);
    assert_true(wait_done(a));
    struct cpu_state s;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(vm_pause(a->vm), 0);
        assert_int_equal(vm_get_backend(a->vm)->state_get(a->vcpu, &s), 0);
        if (s.halted)
            break;
        assert_int_equal(vm_resume(a->vm), 0);
        rt_sleep_ns(RT_NS_PER_MS);
    }
    assert_true(s.halted);
    char *path = tmp_path("halted.sav");
    assert_int_equal(vm_state_save(a->vm, path, NULL, NULL), 0);
    struct result ref = result_of(a);
    tvm_free(a);

    struct tvm *c = tvm_new(&sh, 1000);
    assert_int_equal(vm_state_load(c->vm, path), 0);
    for (unsigned i = 0; i < 2; i++) {
        struct cpu_state l;
        assert_int_equal(vm_get_backend(c->vm)->state_get(vm_get_vcpu(c->vm, i), &l), 0);
        assert_true(l.halted);
        if (i == 0)
            assert_int_equal(l.rip, s.rip);
    }
    assert_int_equal(vm_start(c->vm), 0);
    rt_sleep_ns(50 * RT_NS_PER_MS);
    assert_int_equal(vm_pause(c->vm), 0);
    struct cpu_state after;
    assert_int_equal(vm_get_backend(c->vm)->state_get(c->vcpu, &after), 0);
    assert_true(after.halted);
    assert_int_equal(after.rip, s.rip);
    assert_int_equal(after.rip, CODE_GPA + PROG_HLT_OFFSET + 1);
    struct result got = result_of(c);
    assert_int_equal(got.ebx, ref.ebx);
    assert_int_equal(got.buf_hash, ref.buf_hash);
    tvm_free(c);
    unlink(path);
    free(path);
}

/* ---- corrupt and mismatched files ------------------------------------------------------------ */

static void *file_read(const char *path, size_t *len)
{
    void *data = NULL;
    assert_int_equal(rt_file_read_all(path, 64u << 20, &data, len), 0);
    return data;
}

static void file_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Loading must fail cleanly (a saved-state error or an I/O error, never a crash or success). */
static void expect_load_fails(const struct shape *sh, const char *path)
{
    struct tvm *t = tvm_new(sh, 1);
    assert_non_null(t);
    int rc = vm_state_load(t->vm, path);
    if (rc == 0)
        fail_msg("loading the damaged file '%s' succeeded", path);
    assert_true(rc == VERR_SSM_CORRUPT || rc == VERR_SSM_VERSION);
    vm_destroy(t->vm);
    free(t);
}

/* A saved file of a VM paused mid-run, for the damage tests. */
static char *make_reference_file(const struct shape *sh, size_t *len_out, void **data_out)
{
    char *path = tmp_path("ref.sav");
    struct tvm *b = tvm_new(sh, g_iterations);
    assert_int_equal(vm_start(b->vm), 0);
    rt_sleep_ns(20 * RT_NS_PER_MS);
    assert_int_equal(vm_pause(b->vm), 0);
    assert_int_equal(vm_state_save(b->vm, path, NULL, NULL), 0);
    tvm_free(b);
    *data_out = file_read(path, len_out);
    return path;
}

static void test_truncated(void **state)
{
    struct shape sh = {VM_EXEC_INTERP, RAM_BYTES, 1, true, false};
    size_t len;
    void *data;
    char *ref = make_reference_file(&sh, &len, &data);
    /* The intact file loads. */
    struct tvm *ok = tvm_new(&sh, 1);
    assert_int_equal(vm_state_load(ok->vm, ref), 0);
    tvm_free(ok);
    char *path = tmp_path("trunc.sav");
    size_t cuts[80];
    unsigned n = 0;
    static const size_t early[] = {0, 1, 7, 8, 64, 127, 128, 129, 132, 140, 200, 300};
    for (unsigned i = 0; i < RT_ARRAY_SIZE(early); i++)
        cuts[n++] = early[i];
    for (unsigned i = 1; i < 50; i++)
        cuts[n++] = len * i / 50;
    static const size_t late[] = {1, 2, 4, 12, 16, 20, 24, 28};
    for (unsigned i = 0; i < RT_ARRAY_SIZE(late); i++)
        cuts[n++] = len - late[i];
    for (unsigned i = 0; i < n; i++) {
        assert_true(cuts[i] < len);
        file_write(path, data, cuts[i]);
        expect_load_fails(&sh, path);
    }
    /* A byte too many after the end marker. */
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, data, len);
    longer[len] = 0;
    file_write(path, longer, len + 1);
    expect_load_fails(&sh, path);
    free(longer);
    unlink(path);
    unlink(ref);
    free(path);
    free(ref);
    free(data);
}

static void test_bit_flips(void **state)
{
    struct shape sh = {VM_EXEC_INTERP, RAM_BYTES, 1, true, false};
    size_t len;
    void *data;
    char *ref = make_reference_file(&sh, &len, &data);
    char *path = tmp_path("flip.sav");
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    /* Every header byte region, the small sections after it, then spread over RAM and the end. */
    size_t offsets[120];
    unsigned n = 0;
    for (size_t o = 0; o < 128; o += 5)
        offsets[n++] = o;
    for (size_t o = 128; o < 128 + 3000 && o < len; o += 97)
        offsets[n++] = o;
    for (unsigned i = 1; i < 40 && n < RT_ARRAY_SIZE(offsets) - 4; i++)
        offsets[n++] = len * i / 40;
    offsets[n++] = len - 1;
    offsets[n++] = len - 5;
    offsets[n++] = len - 13;
    for (unsigned i = 0; i < n; i++) {
        memcpy(copy, data, len);
        copy[offsets[i]] ^= (uint8_t)(1u << (i % 8));
        file_write(path, copy, len);
        expect_load_fails(&sh, path);
    }
    /* A garbage file of the same length. */
    for (size_t i = 0; i < len; i++)
        copy[i] = (uint8_t)(i * 131 + 7);
    file_write(path, copy, len);
    expect_load_fails(&sh, path);
    free(copy);
    unlink(path);
    unlink(ref);
    free(path);
    free(ref);
    free(data);
}

static void test_mismatched_vm(void **state)
{
    struct shape sh = {VM_EXEC_INTERP, RAM_BYTES, 1, true, false};
    size_t len;
    void *data;
    char *ref = make_reference_file(&sh, &len, &data);
    struct shape other = sh;
    other.ram_bytes = RAM_BYTES * 2; /* wrong RAM size */
    expect_load_fails(&other, ref);
    other = sh;
    other.vcpus = 2; /* wrong vCPU count */
    expect_load_fails(&other, ref);
    other = sh;
    other.uart = true; /* a device the file has no unit for */
    expect_load_fails(&other, ref);
    other = sh;
    other.rtc = false; /* the file has a unit this VM does not have */
    expect_load_fails(&other, ref);
    other = sh;
    other.exec = VM_EXEC_NONE; /* another CPU backend family */
    expect_load_fails(&other, ref);
    /* Not started VMs only. */
    struct tvm *t = tvm_new(&sh, 1);
    assert_int_equal(vm_start(t->vm), 0);
    assert_int_equal(vm_state_load(t->vm, ref), VERR_INVALID_STATE);
    tvm_free(t);
    unlink(ref);
    free(ref);
    free(data);
}

/* ---- atomic writes, sizes -------------------------------------------------------------------- */

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_atomic_write(void **state)
{
    struct shape sh = {VM_EXEC_INTERP, RAM_BYTES, 1, true, false};
    struct tvm *t = tvm_new(&sh, g_iterations);
    char *path = tmp_path("atomic.sav");
    char *tmp = tmp_path("atomic.sav.tmp");
    /* Not paused: refused, nothing written. */
    assert_int_equal(vm_state_save(t->vm, path, NULL, NULL), VERR_INVALID_STATE);
    assert_int_equal(vm_start(t->vm), 0);
    assert_int_equal(vm_state_save(t->vm, path, NULL, NULL), VERR_INVALID_STATE);
    assert_false(file_exists(path));
    assert_int_equal(vm_pause(t->vm), 0);

    /* An older file stays as it was when a save fails part way (the file size limit hits mid-RAM). */
    static const char old[] = "the previous saved state";
    file_write(path, old, sizeof(old));
    struct rlimit saved_lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved_lim), 0);
    struct rlimit lim = {64 << 10, saved_lim.rlim_max}; /* the soft limit only, so it can be raised again */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    /* Fill RAM with incompressible data so the file must exceed the limit. */
    for (size_t i = 0; i < RAM_BYTES / 2; i += 8) {
        uint64_t v = (i + 1) * 0x9e3779b97f4a7c15ULL;
        memcpy(t->ram + (RAM_BYTES / 2) + i, &v, 8);
    }
    int rc = vm_state_save(t->vm, path, NULL, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_lim), 0);
    assert_true(rc < 0);
    assert_false(file_exists(tmp));
    size_t len;
    void *data = file_read(path, &len);
    assert_int_equal(len, sizeof(old));
    assert_memory_equal(data, old, sizeof(old));
    free(data);

    /* A folder that does not exist: an error, nothing created. */
    char *nodir = tmp_path("no/such/folder.sav");
    assert_true(vm_state_save(t->vm, nodir, NULL, NULL) < 0);
    assert_false(file_exists(nodir));

    /* Success replaces the old file and leaves no temporary behind. */
    assert_int_equal(vm_state_save(t->vm, path, NULL, NULL), 0);
    assert_false(file_exists(tmp));
    data = file_read(path, &len);
    assert_true(len > 64 << 10);
    assert_memory_equal(data, "VIREOSAV", 8);
    free(data);
    tvm_free(t);
    unlink(path);
    free(path);
    free(tmp);
    free(nodir);
}

static void test_zero_ram_is_small(void **state)
{
    struct shape sh = {VM_EXEC_INTERP, 512u << 20, 1, true, false};
    struct tvm *t = tvm_new(&sh, 1000);
    assert_int_equal(vm_start(t->vm), 0);
    assert_true(wait_done(t));
    assert_int_equal(vm_pause(t->vm), 0);
    char *path = tmp_path("zero.sav");
    uint64_t t0 = rt_time_mono_ns();
    assert_int_equal(vm_state_save(t->vm, path, NULL, NULL), 0);
    uint64_t save_ms = (rt_time_mono_ns() - t0) / RT_NS_PER_MS;
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* The program touched 1 MiB of buffer and a few pages: far below 512 MiB, and below 2 MiB. */
    assert_true(st.st_size < (2 << 20));
    struct result ref = result_of(t);
    tvm_free(t);
    struct tvm *c = tvm_new(&sh, 1);
    t0 = rt_time_mono_ns();
    assert_int_equal(vm_state_load(c->vm, path), 0);
    uint64_t load_ms = (rt_time_mono_ns() - t0) / RT_NS_PER_MS;
    struct result got = result_of(c);
    assert_int_equal(got.buf_hash, ref.buf_hash);
    print_message("512 MiB guest, mostly zero: %lld KiB, saved in %llu ms, loaded in %llu ms\n",
                  (long long)(st.st_size >> 10), (unsigned long long)save_ms, (unsigned long long)load_ms);
    tvm_free(c);
    unlink(path);
    free(path);
}

static int teardown_dir(void **state)
{
    rmdir(g_dir);
    return 0;
}

int main(void)
{
    /* The damaged-file tests print the loader's error lines: they show what a user would read. */
    rt_log_set_stderr_level(RT_LOG_ERROR);
    if (!mkdtemp(g_dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_interp), cmocka_unit_test(test_resume_rec),
        cmocka_unit_test(test_resume_kvm),    cmocka_unit_test(test_halted_vcpu),
        cmocka_unit_test(test_truncated),     cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_mismatched_vm), cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_zero_ram_is_small),
    };
    /* TST_FILTER=test_truncated runs one test (cmocka's wildcard filter). */
    if (getenv("TST_FILTER"))
        cmocka_set_test_filter(getenv("TST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, teardown_dir);
}
