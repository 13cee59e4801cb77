/* kvm.c - the KVM CPU backend: VM and vCPU file descriptors, memory slots, the run loop and kicks. */

/*
 * Design.  Vireo drives KVM without the in-kernel interrupt controllers: the PIC,
 * PIT, RTC, I/O APIC and local APICs are Vireo's own userspace devices, so
 * KVM_CREATE_IRQCHIP is never called (the local APIC side is in kvm-apic.c).
 * Consequences that shape this file:
 *
 *  - External interrupts are injected with KVM_INTERRUPT just before KVM_RUN when
 *    kvm_run says the guest can take one (ready_for_interrupt_injection and IF);
 *    otherwise request_interrupt_window makes KVM exit as soon as it can.
 *  - HLT exits to userspace.  The vCPU then counts as halted (kept here, reported
 *    in cpu_state.halted) and sleeps in vcpu_halt_wait until an interrupt it can
 *    take is pending or the VM wants the vCPU back.  An application processor in
 *    wait-for-SIPI sleeps the same way without entering KVM at all.
 *  - Several vCPUs: each has its own fd, kvm_run mapping, CPUID (its APIC ID) and
 *    thread; an IPI from another vCPU's APIC raises this vCPU's INTR line, whose
 *    kick (below) gets it out of KVM_RUN or vcpu_halt_wait.
 *  - Guest memory is a set of KVM memory slots rebuilt from the core's flattened
 *    map (mem_for_each_span) after each change: RAM spans become slots, ROM and
 *    read-only spans become KVM_MEM_READONLY slots (their writes exit as MMIO and
 *    the core drops them), MMIO spans get no slot and exit as MMIO.
 *  - A kick (vcpu_kick, any thread) sets kvm_run->immediate_exit and, if the vCPU
 *    thread may be inside KVM_RUN, sends it SIGUSR1 (an empty handler installed
 *    without SA_RESTART, so KVM_RUN returns EINTR).  immediate_exit closes the race
 *    where the kick lands after the request check but before KVM_RUN is entered:
 *    KVM then returns at once instead of running the guest.
 *  - An I/O or MMIO exit completes inside the next KVM_RUN (KVM API documentation,
 *    "kvm_run"/immediate_exit).  Before handing the vCPU back to the core, the loop
 *    re-enters once with immediate_exit set so that state_get sees finished
 *    instructions and state_put cannot be overtaken by a half-done IN.
 *
 * Register state conversion lives in kvm-state.c, the CPUID policy in kvm-cpuid.c.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm-internal.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "kvm"

/* Just below the 256 KiB BIOS window under 4 GiB, as the KVM API requires (3 pages + 1 page). */
#define KVM_IDENTITY_MAP_GPA 0xfeffc000ULL
#define KVM_TSS_GPA          0xfeffd000ULL
#define KVM_KICK_SIGNAL      SIGUSR1
#define KVM_PAGE_SIZE        4096ULL

static pthread_once_t g_kvm_signal_once = PTHREAD_ONCE_INIT;
static int g_kvm_signal_status;

static void kvm_kick_handler(int signo)
{
    /* Only there so that the signal interrupts KVM_RUN instead of killing the process. */
    (void)signo;
}

static void kvm_signal_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kvm_kick_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return EINTR */
    if (sigaction(KVM_KICK_SIGNAL, &sa, NULL) != 0)
        g_kvm_signal_status = rt_err_from_errno(errno);
}

static struct kvm_backend_vm *kvm_from_vm(struct vm *vm)
{
    return vm_get_backend_data(vm);
}

static struct kvm_backend_vcpu *kvm_from_vcpu(const struct vcpu *vcpu)
{
    return vcpu_get_backend_data(vcpu);
}

/* KVM_CHECK_EXTENSION on /dev/kvm or a VM fd: 0 when absent, else the capability's value. */
static int kvm_check_cap(int fd, long cap)
{
    int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

static void kvm_vm_free(struct kvm_backend_vm *kvm)
{
    if (!kvm)
        return;
    if (kvm->vm_fd >= 0)
        close(kvm->vm_fd);
    if (kvm->kvm_fd >= 0)
        close(kvm->kvm_fd);
    free(kvm->supported_cpuid);
    free(kvm->msrs);
    free(kvm->slots);
    free(kvm);
}

/* KVM_GET_SUPPORTED_CPUID wants a buffer big enough; grow it until E2BIG stops. */
static int kvm_fetch_supported_cpuid(struct kvm_backend_vm *kvm)
{
    for (unsigned nent = 64; nent <= 4096; nent *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(struct kvm_cpuid_entry2));
        if (!c)
            return VERR_NO_MEMORY;
        c->nent = nent;
        if (ioctl(kvm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            kvm->supported_cpuid = c;
            return 0;
        }
        int err = errno;
        free(c);
        if (err != E2BIG) {
            LOG_ERR("KVM_GET_SUPPORTED_CPUID failed: %s", strerror(err));
            return VERR_KVM;
        }
    }
    LOG_ERR("KVM_GET_SUPPORTED_CPUID: table larger than 4096 entries");
    return VERR_KVM;
}

static int kvm_vm_init(struct vm *vm)
{
    pthread_once(&g_kvm_signal_once, kvm_signal_install);
    if (g_kvm_signal_status != 0) {
        LOG_ERR("cannot install the vCPU kick signal handler: %s", rt_err_str(g_kvm_signal_status));
        return g_kvm_signal_status;
    }

    struct kvm_backend_vm *kvm = calloc(1, sizeof(*kvm));
    if (!kvm)
        return VERR_NO_MEMORY;
    kvm->vm_fd = -1;
    kvm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm->kvm_fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENODEV || err == ENXIO)
            LOG_ERR("/dev/kvm does not exist (no KVM module loaded, or no hardware virtualization): %s", strerror(err));
        else if (err == EACCES || err == EPERM)
            LOG_ERR("/dev/kvm is not accessible to this user (join the 'kvm' group): %s", strerror(err));
        else
            LOG_ERR("cannot open /dev/kvm: %s", strerror(err));
        kvm_vm_free(kvm);
        return VERR_NO_KVM;
    }

    /* The KVM API is version 12 since Linux 2.6.22 and is frozen there. */
    int api = ioctl(kvm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        LOG_ERR("/dev/kvm speaks API version %d, Vireo needs %d", api, KVM_API_VERSION);
        kvm_vm_free(kvm);
        return VERR_NO_KVM;
    }
    static const struct {
        long cap;
        const char *name;
    } required[] = {
        {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
        {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
        {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
        {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    };
    for (size_t i = 0; i < RT_ARRAY_SIZE(required); i++) {
        if (!kvm_check_cap(kvm->kvm_fd, required[i].cap)) {
            LOG_ERR("/dev/kvm lacks %s, which Vireo needs", required[i].name);
            kvm_vm_free(kvm);
            return VERR_NO_KVM;
        }
    }

    /*
     * KVM_CAP_NR_VCPUS is the count KVM recommends, KVM_CAP_MAX_VCPUS the hard limit
     * (KVM API documentation, KVM_CREATE_VCPU: 4 when neither is reported).
     */
    kvm->vcpu_count = vm_get_vcpu_count(vm);
    int nr_vcpus = kvm_check_cap(kvm->kvm_fd, KVM_CAP_NR_VCPUS);
    int max_vcpus = kvm_check_cap(kvm->kvm_fd, KVM_CAP_MAX_VCPUS);
    if (nr_vcpus <= 0)
        nr_vcpus = 4;
    if (max_vcpus <= 0)
        max_vcpus = nr_vcpus;
    if (kvm->vcpu_count > (unsigned)max_vcpus) {
        LOG_ERR("this KVM runs at most %d vCPUs in one VM (KVM_CAP_MAX_VCPUS); the VM has %u: lower the CPU count",
                max_vcpus, kvm->vcpu_count);
        kvm_vm_free(kvm);
        return VERR_NOT_SUPPORTED;
    }
    if (kvm->vcpu_count > (unsigned)nr_vcpus)
        LOG_WARN("the VM has %u vCPUs, more than the %d this KVM recommends (KVM_CAP_NR_VCPUS)", kvm->vcpu_count,
                 nr_vcpus);

    int run_size = ioctl(kvm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run)) {
        LOG_ERR("KVM_GET_VCPU_MMAP_SIZE returned %d", run_size);
        kvm_vm_free(kvm);
        return VERR_KVM;
    }
    kvm->run_size = (size_t)run_size;

    kvm->vm_fd = ioctl(kvm->kvm_fd, KVM_CREATE_VM, 0);
    if (kvm->vm_fd < 0) {
        int err = errno;
        LOG_ERR("KVM_CREATE_VM failed: %s", strerror(err));
        kvm_vm_free(kvm);
        return err == ENOMEM ? VERR_NO_MEMORY : VERR_NO_KVM;
    }

    /* Capabilities are asked of the VM fd where KVM answers per VM. */
    kvm->cap_readonly_mem = kvm_check_cap(kvm->vm_fd, KVM_CAP_READONLY_MEM) > 0;
    kvm->cap_xsave = kvm_check_cap(kvm->vm_fd, KVM_CAP_XSAVE) > 0;
    kvm->cap_xcrs = kvm_check_cap(kvm->vm_fd, KVM_CAP_XCRS) > 0;
    kvm->cap_vcpu_events = kvm_check_cap(kvm->vm_fd, KVM_CAP_VCPU_EVENTS) > 0;
    kvm->cap_debugregs = kvm_check_cap(kvm->vm_fd, KVM_CAP_DEBUGREGS) > 0;
    int xsave2 = kvm_check_cap(kvm->vm_fd, KVM_CAP_XSAVE2);
    kvm->use_xsave2 = xsave2 > (int)sizeof(struct kvm_xsave);
    kvm->xsave_size = kvm->use_xsave2 ? (size_t)xsave2 : sizeof(struct kvm_xsave);
    int slots = kvm_check_cap(kvm->vm_fd, KVM_CAP_NR_MEMSLOTS);
    kvm->max_slots = slots > 0 ? (unsigned)slots : 32;

    /*
     * Intel VT without unrestricted guest runs real mode through vm86 and needs a
     * TSS and an identity-mapped page table page in guest-physical space; both lie
     * just below the BIOS, where the PC board maps nothing.  Harmless elsewhere.
     */
    uint64_t idmap = KVM_IDENTITY_MAP_GPA;
    if (kvm_check_cap(kvm->vm_fd, KVM_CAP_SET_IDENTITY_MAP_ADDR) &&
        ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) != 0) {
        LOG_ERR("KVM_SET_IDENTITY_MAP_ADDR(%#llx) failed: %s", (unsigned long long)idmap, strerror(errno));
        kvm_vm_free(kvm);
        return VERR_KVM;
    }
    if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) != 0) {
        LOG_ERR("KVM_SET_TSS_ADDR(%#llx) failed: %s", (unsigned long long)KVM_TSS_GPA, strerror(errno));
        kvm_vm_free(kvm);
        return VERR_KVM;
    }

    int rc = kvm_fetch_supported_cpuid(kvm);
    if (rc == 0)
        rc = kvm_state_probe(kvm);
    if (rc != 0) {
        kvm_vm_free(kvm);
        return rc;
    }

    LOG_INFO("KVM ready: read-only slots %s, XSAVE %s (%zu bytes), %u memory slots, %u state MSRs",
             kvm->cap_readonly_mem ? "yes" : "no", kvm->cap_xsave ? "yes" : "no", kvm->xsave_size, kvm->max_slots,
             kvm->msr_count);
    vm_set_backend_data(vm, kvm);
    return 0;
}

static void kvm_vm_fini(struct vm *vm)
{
    struct kvm_backend_vm *kvm = kvm_from_vm(vm);
    if (!kvm)
        return;
    vm_set_backend_data(vm, NULL);
    kvm_vm_free(kvm);
}

/* ---- Memory slots ---------------------------------------------------------- */

/* The slots mem_changed wants, collected from the flat map. */
struct kvm_slot_list {
    struct kvm_backend_slot *items;
    unsigned count, cap;
    int status;
    struct kvm_backend_vm *kvm;
};

static void kvm_slot_list_add(struct kvm_slot_list *list, uint64_t gpa, uint64_t size, void *hva, uint32_t flags)
{
    if (list->status != 0)
        return;
    if (list->count == list->cap) {
        unsigned cap = list->cap ? list->cap * 2 : 32;
        struct kvm_backend_slot *items = realloc(list->items, cap * sizeof(*items));
        if (!items) {
            list->status = VERR_NO_MEMORY;
            return;
        }
        list->items = items;
        list->cap = cap;
    }
    list->items[list->count++] = (struct kvm_backend_slot){
        .used = true,
        .gpa = gpa,
        .size = size,
        .hva = hva,
        .flags = flags,
    };
}

static void kvm_span_collect(void *opaque, const struct mem_span *span)
{
    struct kvm_slot_list *list = opaque;
    if (span->kind == MEM_KIND_MMIO || !span->hva || span->size == 0)
        return;
    bool readonly = span->readonly || span->kind == MEM_KIND_ROM;
    if (readonly && !list->kvm->cap_readonly_mem)
        return; /* unmapped: reads and writes exit as MMIO and the core serves them */

    /*
     * KVM maps whole pages, and the host address must sit at the same offset in its
     * page.  The unaligned head and tail of a span stay unmapped and exit as MMIO.
     */
    uint64_t start = RT_ALIGN_UP(span->gpa, KVM_PAGE_SIZE);
    uint64_t end = (span->gpa + span->size) & ~(KVM_PAGE_SIZE - 1);
    uintptr_t hva = (uintptr_t)span->hva + (uintptr_t)(start - span->gpa);
    if (end <= start || (hva & (KVM_PAGE_SIZE - 1)) != 0) {
        if (!list->kvm->warned_unaligned) {
            list->kvm->warned_unaligned = true;
            LOG_WARN("span %#llx+%#llx (%s) is not page aligned; it runs as MMIO", (unsigned long long)span->gpa,
                     (unsigned long long)span->size, span->region ? mem_region_name(span->region) : "?");
        }
        return;
    }
    if (start != span->gpa || end != span->gpa + span->size) {
        if (!list->kvm->warned_unaligned) {
            list->kvm->warned_unaligned = true;
            LOG_WARN("span %#llx+%#llx (%s) has partial pages; those run as MMIO", (unsigned long long)span->gpa,
                     (unsigned long long)span->size, span->region ? mem_region_name(span->region) : "?");
        }
    }
    kvm_slot_list_add(list, start, end - start, (void *)hva, readonly ? KVM_MEM_READONLY : 0);
}

static int kvm_slot_set(struct kvm_backend_vm *kvm, unsigned slot, const struct kvm_backend_slot *s)
{
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .flags = s ? s->flags : 0,
        .guest_phys_addr = s ? s->gpa : 0,
        .memory_size = s ? s->size : 0,
        .userspace_addr = s ? (uintptr_t)s->hva : 0,
    };
    if (!s && kvm->slots[slot].used)
        region.guest_phys_addr = kvm->slots[slot].gpa;
    if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) != 0) {
        int err = errno;
        if (s)
            LOG_ERR("KVM_SET_USER_MEMORY_REGION slot %u gpa %#llx size %#llx%s failed: %s", slot,
                    (unsigned long long)s->gpa, (unsigned long long)s->size,
                    (s->flags & KVM_MEM_READONLY) ? " read-only" : "", strerror(err));
        else
            LOG_ERR("deleting KVM memory slot %u failed: %s", slot, strerror(err));
        return VERR_KVM;
    }
    if (s)
        kvm->slots[slot] = *s;
    else
        memset(&kvm->slots[slot], 0, sizeof(kvm->slots[slot]));
    return 0;
}

static bool kvm_slot_equal(const struct kvm_backend_slot *a, const struct kvm_backend_slot *b)
{
    return a->used && b->used && a->gpa == b->gpa && a->size == b->size && a->hva == b->hva && a->flags == b->flags;
}

static int kvm_mem_changed(struct vm *vm)
{
    struct kvm_backend_vm *kvm = kvm_from_vm(vm);
    if (!kvm)
        return VERR_INVALID_STATE;
    /* The KVM API has no A20 gate: guests always see it on (vm_set_a20 reaches here as a map change). */
    static atomic_bool a20_logged;
    if (!vm_a20_enabled(vm) && !atomic_exchange(&a20_logged, true))
        LOG_INFO("the guest turned the A20 gate off; KVM cannot mask address bit 20, so this is ignored");

    struct kvm_slot_list want = {.kvm = kvm};
    mem_for_each_span(vm, kvm_span_collect, &want);
    if (want.status != 0) {
        free(want.items);
        return want.status;
    }
    if (want.count > kvm->max_slots) {
        LOG_ERR("the guest memory map needs %u slots, KVM has %u", want.count, kvm->max_slots);
        free(want.items);
        return VERR_TOO_LARGE;
    }
    /* Kept and new slots together are want.count, so that many numbers always suffice. */
    if (kvm->slot_count < want.count) {
        unsigned count = RT_MIN(RT_MAX(RT_MAX(want.count, 32u), kvm->slot_count * 2), kvm->max_slots);
        struct kvm_backend_slot *slots = realloc(kvm->slots, count * sizeof(*slots));
        if (!slots) {
            free(want.items);
            return VERR_NO_MEMORY;
        }
        memset(slots + kvm->slot_count, 0, (count - kvm->slot_count) * sizeof(*slots));
        kvm->slots = slots;
        kvm->slot_count = count;
    }

    /*
     * Slots that stay exactly the same are left alone (a guest on another vCPU keeps
     * running on them); the others are deleted first, because KVM rejects a new
     * slot that overlaps an existing one, and then the new ones are added.
     */
    bool *kept = calloc(want.count ? want.count : 1, sizeof(*kept));
    if (!kept) {
        free(want.items);
        return VERR_NO_MEMORY;
    }
    int rc = 0;
    for (unsigned slot = 0; slot < kvm->slot_count && rc == 0; slot++) {
        if (!kvm->slots[slot].used)
            continue;
        bool keep = false;
        for (unsigned i = 0; i < want.count; i++) {
            if (!kept[i] && kvm_slot_equal(&kvm->slots[slot], &want.items[i])) {
                kept[i] = keep = true;
                break;
            }
        }
        if (!keep)
            rc = kvm_slot_set(kvm, slot, NULL);
    }
    unsigned next_free = 0;
    for (unsigned i = 0; i < want.count && rc == 0; i++) {
        if (kept[i])
            continue;
        while (next_free < kvm->slot_count && kvm->slots[next_free].used)
            next_free++;
        if (next_free >= kvm->slot_count) {
            rc = VERR_TOO_LARGE;
            break;
        }
        rc = kvm_slot_set(kvm, next_free, &want.items[i]);
    }
    if (rc == 0)
        LOG_DEBUG("memory map: %u slots", want.count);
    free(kept);
    free(want.items);
    return rc;
}

/* ---- vCPUs ------------------------------------------------------------------ */

static void kvm_vcpu_free(struct kvm_backend_vcpu *kv)
{
    if (!kv)
        return;
    if (kv->run)
        munmap(kv->run, kv->kvm->run_size);
    if (kv->fd >= 0)
        close(kv->fd);
    free(kv->xsave_buf);
    free(kv);
}

static int kvm_vcpu_init(struct vcpu *vcpu)
{
    struct kvm_backend_vm *kvm = kvm_from_vm(vcpu_get_vm(vcpu));
    if (!kvm)
        return VERR_INVALID_STATE;
    struct kvm_backend_vcpu *kv = calloc(1, sizeof(*kv));
    if (!kv)
        return VERR_NO_MEMORY;
    kv->vcpu = vcpu;
    kv->kvm = kvm;
    kv->index = vcpu_get_index(vcpu);
    kv->fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)kv->index);
    if (kv->fd < 0) {
        LOG_ERR("KVM_CREATE_VCPU %u failed: %s", kv->index, strerror(errno));
        kvm_vcpu_free(kv);
        return VERR_KVM;
    }
    void *run = mmap(NULL, kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, kv->fd, 0);
    if (run == MAP_FAILED) {
        LOG_ERR("mmap of vCPU %u's kvm_run failed: %s", kv->index, strerror(errno));
        kvm_vcpu_free(kv);
        return VERR_KVM;
    }
    kv->run = run;
    kv->xsave_buf = calloc(1, kvm->xsave_size);
    if (!kv->xsave_buf) {
        kvm_vcpu_free(kv);
        return VERR_NO_MEMORY;
    }
    int rc = kvm_cpuid_setup(kv);
    if (rc != 0) {
        kvm_vcpu_free(kv);
        return rc;
    }
    vcpu_set_backend_data(vcpu, kv);
    return 0;
}

static void kvm_vcpu_fini(struct vcpu *vcpu)
{
    struct kvm_backend_vcpu *kv = kvm_from_vcpu(vcpu);
    if (!kv)
        return;
    vcpu_set_backend_data(vcpu, NULL);
    kvm_vcpu_free(kv);
}

static void kvm_vcpu_kick(struct vcpu *vcpu)
{
    struct kvm_backend_vcpu *kv = kvm_from_vcpu(vcpu);
    if (!kv)
        return;
    /*
     * Order matters (a Dekker pair with kvm_vcpu_enter): immediate_exit is stored
     * before in_run is read, and the vCPU stores in_run before KVM_RUN reads
     * immediate_exit.  Either the vCPU sees the flag or we see it inside and signal.
     * Not signalling outside KVM_RUN keeps EINTR out of device code on that thread.
     */
    __atomic_store_n(&kv->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&kv->in_run, __ATOMIC_SEQ_CST) && __atomic_load_n(&kv->thread_valid, __ATOMIC_SEQ_CST) &&
        !pthread_equal(kv->thread, pthread_self()))
        pthread_kill(kv->thread, KVM_KICK_SIGNAL);
}

/* One KVM_RUN; returns 0, or the errno value of a failed call. */
static int kvm_vcpu_enter(struct kvm_backend_vcpu *kv)
{
    __atomic_store_n(&kv->in_run, 1, __ATOMIC_SEQ_CST);
    int r = ioctl(kv->fd, KVM_RUN, 0);
    int err = r < 0 ? errno : 0;
    __atomic_store_n(&kv->in_run, 0, __ATOMIC_SEQ_CST);
    kv->last_get_valid = false;
    return err;
}

int kvm_vcpu_complete_pending(struct kvm_backend_vcpu *kv)
{
    if (!kv->need_completion)
        return 0;
    /* With immediate_exit set KVM finishes the pending I/O and returns EINTR before any guest code. */
    __atomic_store_n(&kv->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    int err = kvm_vcpu_enter(kv);
    __atomic_store_n(&kv->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    kv->need_completion = false;
    if (err != 0 && err != EINTR && err != EAGAIN) {
        LOG_ERR("vCPU %u: completing a pending I/O instruction failed: %s", kv->index, strerror(err));
        return VERR_KVM;
    }
    return 0;
}

static void kvm_handle_io(struct kvm_backend_vcpu *kv)
{
    struct vm *vm = vcpu_get_vm(kv->vcpu);
    struct kvm_run *run = kv->run;
    unsigned size = run->io.size;
    uint64_t bytes = (uint64_t)size * run->io.count;
    if ((size != 1 && size != 2 && size != 4) || run->io.data_offset > kv->kvm->run_size ||
        bytes > kv->kvm->run_size - run->io.data_offset) {
        LOG_ERR("vCPU %u: malformed I/O exit (port %#x size %u count %u offset %llu); ignored", kv->index, run->io.port,
                size, run->io.count, (unsigned long long)run->io.data_offset);
        return;
    }
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            uint32_t value = 0;
            memcpy(&value, data, size); /* x86 hosts are little endian, as the guest is */
            iom_port_write(vm, run->io.port, value, size);
        } else {
            uint32_t value = iom_port_read(vm, run->io.port, size);
            memcpy(data, &value, size);
        }
    }
}

static void kvm_handle_mmio(struct kvm_backend_vcpu *kv)
{
    struct vm *vm = vcpu_get_vm(kv->vcpu);
    struct kvm_run *run = kv->run;
    uint64_t gpa = run->mmio.phys_addr;
    unsigned len = run->mmio.len;
    if (len == 0 || len > sizeof(run->mmio.data)) {
        LOG_ERR("vCPU %u: malformed MMIO exit (gpa %#llx len %u); ignored", kv->index, (unsigned long long)gpa, len);
        return;
    }
    /*
     * KVM splits page-crossing accesses into pieces of any length; the core takes
     * 1, 2, 4 and 8 bytes, so odd pieces go byte by byte.
     */
    bool whole = len == 1 || len == 2 || len == 4 || len == 8;
    if (run->mmio.is_write) {
        if (whole) {
            uint64_t value = 0;
            memcpy(&value, run->mmio.data, len);
            mem_mmio_write(vm, gpa, value, len);
        } else {
            for (unsigned i = 0; i < len; i++)
                mem_mmio_write(vm, gpa + i, run->mmio.data[i], 1);
        }
    } else {
        if (whole) {
            uint64_t value = mem_mmio_read(vm, gpa, len);
            memcpy(run->mmio.data, &value, len);
        } else {
            for (unsigned i = 0; i < len; i++)
                run->mmio.data[i] = (uint8_t)mem_mmio_read(vm, gpa + i, 1);
        }
    }
}

static const char *kvm_exit_name(uint32_t reason)
{
    static const char *const names[] = {
        [KVM_EXIT_UNKNOWN] = "UNKNOWN",
        [KVM_EXIT_EXCEPTION] = "EXCEPTION",
        [KVM_EXIT_IO] = "IO",
        [KVM_EXIT_HYPERCALL] = "HYPERCALL",
        [KVM_EXIT_DEBUG] = "DEBUG",
        [KVM_EXIT_HLT] = "HLT",
        [KVM_EXIT_MMIO] = "MMIO",
        [KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
        [KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
        [KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
        [KVM_EXIT_INTR] = "INTR",
        [KVM_EXIT_SET_TPR] = "SET_TPR",
        [KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
        [KVM_EXIT_NMI] = "NMI",
        [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
        [KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
        [KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
        [KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
        [KVM_EXIT_X86_BUS_LOCK] = "X86_BUS_LOCK",
        [KVM_EXIT_NOTIFY] = "NOTIFY",
    };
    if (reason < RT_ARRAY_SIZE(names) && names[reason])
        return names[reason];
    return "?";
}

static void kvm_log_internal_error(struct kvm_backend_vcpu *kv)
{
    struct kvm_run *run = kv->run;
    static const char *const suberrors[] = {
        [KVM_INTERNAL_ERROR_EMULATION] = "instruction emulation failed",
        [KVM_INTERNAL_ERROR_SIMUL_EX] = "exception while delivering an exception",
        [KVM_INTERNAL_ERROR_DELIVERY_EV] = "exit while delivering an event",
        [KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON] = "unexpected hardware exit reason",
    };
    uint32_t sub = run->internal.suberror;
    const char *what = sub < RT_ARRAY_SIZE(suberrors) && suberrors[sub] ? suberrors[sub] : "unknown";
    LOG_ERR("vCPU %u: KVM internal error %u (%s), %u data words", kv->index, sub, what, run->internal.ndata);
    uint32_t n = RT_MIN(run->internal.ndata, (uint32_t)RT_ARRAY_SIZE(run->internal.data));
    for (uint32_t i = 0; i < n; i++)
        LOG_ERR("vCPU %u:   data[%u] = %#llx", kv->index, i, (unsigned long long)run->internal.data[i]);
    if (sub == KVM_INTERNAL_ERROR_EMULATION &&
        (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
        char hex[3 * 16 + 1] = "";
        unsigned len = RT_MIN(run->emulation_failure.insn_size, 16u);
        for (unsigned i = 0; i < len; i++)
            snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x ", run->emulation_failure.insn_bytes[i]);
        LOG_ERR("vCPU %u:   instruction bytes: %s", kv->index, hex);
    }
}

/* Before entering: inject a pending external interrupt if the guest can take it now. */
static void kvm_prepare_interrupt(struct kvm_backend_vcpu *kv)
{
    struct kvm_run *run = kv->run;
    if (!vcpu_intr_pending(kv->vcpu)) {
        run->request_interrupt_window = 0;
        return;
    }
    if (run->ready_for_interrupt_injection && run->if_flag) {
        int vector = vcpu_intr_ack(kv->vcpu);
        if (vector >= 0 && vector <= 255) {
            struct kvm_interrupt irq = {.irq = (uint32_t)vector};
            if (ioctl(kv->fd, KVM_INTERRUPT, &irq) != 0)
                LOG_ERR("vCPU %u: KVM_INTERRUPT vector %d failed: %s", kv->index, vector, strerror(errno));
        }
        /* One injection per entry: another pending request waits for the next window. */
        run->request_interrupt_window = vcpu_intr_pending(kv->vcpu) ? 1 : 0;
    } else {
        run->request_interrupt_window = 1;
    }
}

/* The vCPU is halted: returns true when it should run again (an interrupt it can take). */
static bool kvm_halt_step(struct kvm_backend_vcpu *kv)
{
    if (vcpu_intr_pending(kv->vcpu)) {
        if (kv->if_flag) {
            kv->halted = false;
            return true;
        }
        /*
         * HLT with IF clear stays halted until NMI, SMI, INIT or reset (SDM vol. 2,
         * HLT); an interrupt that is pending but masked must not wake it, and
         * vcpu_halt_wait would return at once, so poll for the core's requests.
         */
        rt_sleep_ns(RT_NS_PER_MS);
        return false;
    }
    vcpu_halt_wait(kv->vcpu);
    return false;
}

static enum cpu_exit kvm_vcpu_run(struct vcpu *vcpu)
{
    struct kvm_backend_vcpu *kv = kvm_from_vcpu(vcpu);
    if (!kv)
        return CPU_EXIT_FATAL;
    struct kvm_run *run = kv->run;

    kv->thread = pthread_self();
    __atomic_store_n(&kv->thread_valid, 1, __ATOMIC_SEQ_CST);
    /* The core may start its threads with signals blocked; the kick must get through. */
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, KVM_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

    enum cpu_exit result;
    for (;;) {
        /* Clear before the request check: a kick after this point is seen below or by KVM_RUN. */
        __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (vcpu_has_request(vcpu)) {
            result = kvm_vcpu_complete_pending(kv) == 0 ? CPU_EXIT_REQUEST : CPU_EXIT_FATAL;
            break;
        }
        /* INIT, start-up IPIs and NMIs from the local APIC come before any interrupt. */
        if (kvm_apic_events(kv) != 0) {
            result = CPU_EXIT_FATAL;
            break;
        }
        if (kv->wait_for_sipi) {
            kvm_apic_wait_sipi(kv);
            continue;
        }
        if (kv->halted && !kvm_halt_step(kv))
            continue;

        kvm_apic_tpr_to_run(kv);
        kvm_prepare_interrupt(kv);
        int err = kvm_vcpu_enter(kv);
        kv->need_completion = false;
        if (err == 0 || err == EINTR || err == EAGAIN)
            kvm_apic_sync_from_run(kv); /* KVM stores CR8 and the APIC base on every return */
        if (err == EINTR || err == EAGAIN)
            continue;
        if (err != 0) {
            LOG_ERR("vCPU %u: KVM_RUN failed: %s", kv->index, strerror(err));
            kvm_state_log_regs(kv, RT_LOG_ERROR);
            result = CPU_EXIT_FATAL;
            break;
        }
        kv->if_flag = run->if_flag != 0;

        bool stop = false;
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            kvm_handle_io(kv);
            kv->need_completion = true;
            break;
        case KVM_EXIT_MMIO:
            kvm_handle_mmio(kv);
            kv->need_completion = true;
            kv->tpr_dirty = true; /* it may have been the APIC's TPR register */
            break;
        case KVM_EXIT_HLT:
            kv->halted = true;
            break;
        case KVM_EXIT_IRQ_WINDOW_OPEN:
        case KVM_EXIT_INTR:
        case KVM_EXIT_SET_TPR: /* CR8 lowered: the sync above told the APIC, which may now have an interrupt */
            break;
        case KVM_EXIT_SHUTDOWN:
            LOG_INFO("vCPU %u: shutdown (triple fault)", kv->index);
            kvm_state_log_regs(kv, RT_LOG_INFO);
            result = CPU_EXIT_SHUTDOWN;
            stop = true;
            break;
        case KVM_EXIT_FAIL_ENTRY:
            LOG_ERR("vCPU %u: VM entry failed, hardware reason %#llx on CPU %u", kv->index,
                    (unsigned long long)run->fail_entry.hardware_entry_failure_reason, run->fail_entry.cpu);
            kvm_state_log_regs(kv, RT_LOG_ERROR);
            result = CPU_EXIT_FATAL;
            stop = true;
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            kvm_log_internal_error(kv);
            kvm_state_log_regs(kv, RT_LOG_ERROR);
            result = CPU_EXIT_FATAL;
            stop = true;
            break;
        default:
            LOG_ERR("vCPU %u: unexpected KVM exit %u (%s)", kv->index, run->exit_reason,
                    kvm_exit_name(run->exit_reason));
            kvm_state_log_regs(kv, RT_LOG_ERROR);
            result = CPU_EXIT_FATAL;
            stop = true;
            break;
        }
        if (stop)
            break;
    }

    __atomic_store_n(&kv->thread_valid, 0, __ATOMIC_SEQ_CST);
    return result;
}

const struct cpu_backend g_cpu_backend_kvm = {
    .name = "kvm",
    .guest_apic = true,
    .vm_init = kvm_vm_init,
    .vm_fini = kvm_vm_fini,
    .vcpu_init = kvm_vcpu_init,
    .vcpu_fini = kvm_vcpu_fini,
    .vcpu_run = kvm_vcpu_run,
    .vcpu_kick = kvm_vcpu_kick,
    .mem_changed = kvm_mem_changed,
    .state_get = kvm_state_get,
    .state_put = kvm_state_put,
    .extra_version = 2,
    .extra_save = kvm_state_extra_save,
    .extra_load = kvm_state_extra_load,
};
