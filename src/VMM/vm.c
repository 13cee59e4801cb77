/* vm.c - the VM object: creation, backend choice, vCPU threads as a state machine, pause/resume, reset and power off. */

/*
 * Design: a VM owns its memory map, port space, clock, interrupt router, devices,
 * one event-loop thread for host I/O and one thread per vCPU.  A vCPU thread loops:
 * wait until told to run, push core-side state into the backend when it changed,
 * run the backend until it needs the core, react (shutdown means reset; a fatal
 * exit aborts the VM).  Control operations (pause, reset, power off) park every vCPU
 * first: they set the run request, kick the vCPUs and wait until all report parked.
 * Requests raised from a vCPU or device context (a triple fault, the reset port,
 * the test exit device) are carried out on the event-loop thread so the requester
 * never waits for itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm-internal.h"

#define LOG_COMPONENT "vm"

static const char *const g_state_names[] = {
    [VM_STATE_CREATED] = "created",         [VM_STATE_RUNNING] = "running", [VM_STATE_PAUSED] = "paused",
    [VM_STATE_POWERED_OFF] = "powered off", [VM_STATE_ABORTED] = "aborted",
};

const char *vm_state_name(enum vm_state state)
{
    return (unsigned)state < RT_ARRAY_SIZE(g_state_names) ? g_state_names[state] : "?";
}

int vm_exec_parse(const char *name, enum vm_exec *out)
{
    static const struct {
        const char *name;
        enum vm_exec exec;
    } names[] = { { "auto", VM_EXEC_AUTO }, { "kvm", VM_EXEC_KVM }, { "soft", VM_EXEC_SOFT },
                  { "interp", VM_EXEC_INTERP } };
    for (size_t i = 0; i < RT_ARRAY_SIZE(names); i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].exec;
            return 0;
        }
    }
    return VERR_INVALID_PARAMETER;
}

enum vm_exec vm_get_exec(const struct vm *vm)
{
    return vm->params.exec;
}

/* Whether /proc/cpuinfo shows hardware virtualization (vmx or svm). */
static bool host_has_hw_virt(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        found = strstr(line, " vmx") != NULL || strstr(line, " svm") != NULL;
        break;
    }
    fclose(f);
    return found;
}

static int choose_backend(struct vm *vm)
{
    switch (vm->params.exec) {
    case VM_EXEC_NONE:
        vm->backend = NULL;
        LOG_INFO("execution: no CPU (device test mode)");
        return 0;
    case VM_EXEC_KVM:
        vm->backend = &g_cpu_backend_kvm;
        LOG_INFO("execution: KVM (requested with --exec kvm)");
        return 0;
    case VM_EXEC_SOFT:
        vm->backend = &g_cpu_backend_iem;
        LOG_INFO("execution: software CPU, recompiler (requested with --exec soft)");
        return 0;
    case VM_EXEC_INTERP:
        vm->backend = &g_cpu_backend_iem;
        LOG_INFO("execution: software CPU, interpreter only (requested with --exec interp)");
        return 0;
    case VM_EXEC_AUTO:
    default:
        if (host_has_hw_virt()) {
            vm->backend = &g_cpu_backend_kvm;
            vm->params.exec = VM_EXEC_KVM;
            LOG_INFO("execution: KVM (auto: the host CPU has vmx/svm)");
        } else {
            vm->backend = &g_cpu_backend_iem;
            vm->params.exec = VM_EXEC_SOFT;
            LOG_INFO("execution: software CPU, recompiler (auto: the host CPU has no vmx/svm, so KVM "
                     "would only emulate in software)");
        }
        return 0;
    }
}

int vm_create(const struct vm_params *params, struct vm **out)
{
    if (!params || !out || (params->vcpu_count == 0 && params->exec != VM_EXEC_NONE) || params->vcpu_count > 32)
        return VERR_INVALID_PARAMETER;
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return VERR_NO_MEMORY;
    vm->params = *params;
    vm->name = strdup(params->name ? params->name : "vm");
    vm->params.name = vm->name;
    int rc = vm->name ? 0 : VERR_NO_MEMORY;
    if (!rc)
        rc = rt_mutex_init_recursive(&vm->big_lock);
    if (!rc)
        rc = rt_mutex_init(&vm->state_lock);
    if (!rc)
        rc = rt_cond_init(&vm->state_cond);
    if (rc) {
        free(vm->name);
        free(vm);
        return rc ? rc : VERR_NO_MEMORY;
    }
    vm->state = VM_STATE_CREATED;
    atomic_store(&vm->run_request, VM_RUN_PARK);
    atomic_store(&vm->a20_enabled, true);
    rc = mem_map_init(vm);
    if (!rc)
        rc = iom_init(vm);
    if (!rc)
        rc = tm_init(vm, params->clock_mode);
    if (!rc)
        rc = rt_evloop_create(&vm->evloop);
    unsigned count = params->vcpu_count ? params->vcpu_count : 1;
    if (!rc) {
        vm->vcpus = calloc(count, sizeof(*vm->vcpus));
        rc = vm->vcpus ? 0 : VERR_NO_MEMORY;
    }
    for (unsigned i = 0; !rc && i < count; i++) {
        struct vcpu *v = calloc(1, sizeof(*v));
        if (!v) {
            rc = VERR_NO_MEMORY;
            break;
        }
        v->vm = vm;
        v->index = i;
        cpu_state_reset_vcpu(&v->state, i);
        rt_mutex_init(&v->lock);
        rt_cond_init(&v->cond);
        vm->vcpus[i] = v;
        vm->vcpu_count = i + 1;
    }
    if (!rc)
        rc = choose_backend(vm);
    if (!rc && vm->backend) {
        rc = vm->backend->vm_init(vm);
        if (rc) {
            LOG_ERR("cannot start the %s backend: %s", vm->backend->name, rt_err_str(rc));
            vm->backend = NULL;
        }
    }
    for (unsigned i = 0; !rc && vm->backend && i < vm->vcpu_count; i++) {
        rc = vm->backend->vcpu_init(vm->vcpus[i]);
        if (rc)
            LOG_ERR("cannot create vCPU %u: %s", i, rt_err_str(rc));
    }
    if (rc) {
        vm_destroy(vm);
        return rc;
    }
    *out = vm;
    return 0;
}

static void set_state(struct vm *vm, enum vm_state state)
{
    rt_mutex_lock(&vm->state_lock);
    if (vm->state != state)
        LOG_INFO("state: %s -> %s", vm_state_name(vm->state), vm_state_name(state));
    vm->state = state;
    rt_cond_broadcast(&vm->state_cond);
    rt_mutex_unlock(&vm->state_lock);
}

static void kick_all(struct vm *vm)
{
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        struct vcpu *v = vm->vcpus[i];
        rt_mutex_lock(&v->lock);
        rt_cond_broadcast(&v->cond);
        rt_mutex_unlock(&v->lock);
        if (vm->backend && v->thread)
            vm->backend->vcpu_kick(v);
    }
}

/* Sets the run request and, for park/exit, waits until every vCPU thread has stopped running guest code. */
static void set_run_request(struct vm *vm, enum vm_run_request req)
{
    rt_mutex_lock(&vm->state_lock);
    atomic_store(&vm->run_request, req);
    rt_cond_broadcast(&vm->state_cond);
    rt_mutex_unlock(&vm->state_lock);
    if (req == VM_RUN_GO || !vm->started || !vm->backend)
        return;
    kick_all(vm);
    rt_mutex_lock(&vm->state_lock);
    while (vm->parked_count < vm->vcpu_count && atomic_load(&vm->run_request) == (int)req)
        rt_cond_wait(&vm->state_cond, &vm->state_lock);
    rt_mutex_unlock(&vm->state_lock);
}

static _Thread_local struct vcpu *g_vcpu_current;

struct vcpu *vcpu_current(void)
{
    return g_vcpu_current;
}

static void *vcpu_thread_main(void *arg)
{
    struct vcpu *v = arg;
    struct vm *vm = v->vm;
    g_vcpu_current = v;
    for (;;) {
        rt_mutex_lock(&vm->state_lock);
        if (atomic_load(&vm->run_request) != VM_RUN_GO) {
            v->parked = true;
            vm->parked_count++;
            rt_cond_broadcast(&vm->state_cond);
            while (atomic_load(&vm->run_request) == VM_RUN_PARK)
                rt_cond_wait(&vm->state_cond, &vm->state_lock);
            vm->parked_count--;
            v->parked = false;
        }
        bool exit_now = atomic_load(&vm->run_request) == VM_RUN_EXIT;
        rt_mutex_unlock(&vm->state_lock);
        if (exit_now)
            break;
        if (atomic_exchange(&v->need_state_put, false)) {
            int rc = vm->backend->state_put(v, &v->state);
            if (rc) {
                LOG_ERR("vCPU %u: cannot load the register state into the backend: %s", v->index, rt_err_str(rc));
                vm_request_poweroff(vm, -1);
                break;
            }
        }
        enum cpu_exit why = vm->backend->vcpu_run(v);
        if (why == CPU_EXIT_SHUTDOWN) {
            LOG_INFO("vCPU %u: triple fault, resetting the VM", v->index);
            vm_request_reset(vm);
        }
        if (why == CPU_EXIT_SHUTDOWN || atomic_load(&vm->reset_pending)) {
            /*
             * A reset is on its way (a triple fault, the reset port): run no further guest
             * code, as hardware would not, until the reset has parked us.
             */
            rt_mutex_lock(&vm->state_lock);
            while (atomic_load(&vm->run_request) == VM_RUN_GO && atomic_load(&vm->reset_pending))
                rt_cond_wait(&vm->state_cond, &vm->state_lock);
            rt_mutex_unlock(&vm->state_lock);
        } else if (why == CPU_EXIT_FATAL) {
            LOG_ERR("vCPU %u: the %s backend cannot continue; aborting the VM", v->index, vm->backend->name);
            vm_request_poweroff(vm, -1);
            rt_mutex_lock(&vm->state_lock);
            while (atomic_load(&vm->run_request) == VM_RUN_GO)
                rt_cond_wait(&vm->state_cond, &vm->state_lock);
            rt_mutex_unlock(&vm->state_lock);
        }
    }
    rt_mutex_lock(&vm->state_lock);
    v->parked = true;
    vm->parked_count++;
    rt_cond_broadcast(&vm->state_cond);
    rt_mutex_unlock(&vm->state_lock);
    return NULL;
}

static void *evloop_thread_main(void *arg)
{
    struct vm *vm = arg;
    int rc = rt_evloop_run(vm->evloop);
    if (rc)
        LOG_ERR("event loop failed: %s", rt_err_str(rc));
    return NULL;
}

/* Devices and vCPU states to their power-on values, then the board's reset hook. vCPUs are parked. */
static void system_reset(struct vm *vm)
{
    pdm_dev_reset_all(vm);
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        cpu_state_reset_vcpu(&vm->vcpus[i]->state, i);
        atomic_store(&vm->vcpus[i]->intr_level, false);
    }
    if (vm->reset_hook) {
        vm_lock(vm);
        vm->reset_hook(vm->reset_hook_opaque);
        vm_unlock(vm);
    }
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        atomic_store(&vm->vcpus[i]->need_state_put, true);
}

int vm_start(struct vm *vm)
{
    if (vm->state != VM_STATE_CREATED)
        return VERR_INVALID_STATE;
    /* After vm_state_load the devices and vCPUs hold the saved state: no reset, no reset hook. */
    if (!vm->state_loaded)
        system_reset(vm);
    int rc = 0;
    if (vm->backend && vm->backend->mem_changed)
        rc = vm->backend->mem_changed(vm);
    if (!rc)
        rc = rt_thread_create(&vm->evloop_thread, "vireo-evloop", evloop_thread_main, vm);
    if (!rc)
        rc = tm_thread_start(vm);
    if (rc)
        return rc;
    vm->started = true;
    for (unsigned i = 0; vm->backend && i < vm->vcpu_count; i++) {
        char name[32];
        snprintf(name, sizeof(name), "vcpu%u", i);
        rc = rt_thread_create(&vm->vcpus[i]->thread, name, vcpu_thread_main, vm->vcpus[i]);
        if (rc) {
            LOG_ERR("cannot start the thread of vCPU %u: %s", i, rt_err_str(rc));
            vm_request_poweroff(vm, -1);
            return rc;
        }
    }
    tm_clock_run(vm, true);
    set_state(vm, VM_STATE_RUNNING);
    set_run_request(vm, VM_RUN_GO);
    return 0;
}

int vm_pause(struct vm *vm)
{
    if (vm_get_state(vm) != VM_STATE_RUNNING)
        return VERR_INVALID_STATE;
    set_run_request(vm, VM_RUN_PARK);
    tm_clock_run(vm, false);
    set_state(vm, VM_STATE_PAUSED);
    return 0;
}

int vm_resume(struct vm *vm)
{
    if (vm_get_state(vm) != VM_STATE_PAUSED)
        return VERR_INVALID_STATE;
    tm_clock_run(vm, true);
    set_state(vm, VM_STATE_RUNNING);
    set_run_request(vm, VM_RUN_GO);
    return 0;
}

/* Runs on the event-loop thread. */
static void do_reset(void *opaque)
{
    struct vm *vm = opaque;
    if (vm_get_state(vm) != VM_STATE_RUNNING && vm_get_state(vm) != VM_STATE_PAUSED) {
        rt_mutex_lock(&vm->state_lock);
        atomic_store(&vm->reset_pending, false);
        rt_cond_broadcast(&vm->state_cond);
        rt_mutex_unlock(&vm->state_lock);
        return;
    }
    bool was_running = vm_get_state(vm) == VM_STATE_RUNNING;
    set_run_request(vm, VM_RUN_PARK);
    LOG_INFO("system reset");
    system_reset(vm);
    atomic_store(&vm->reset_pending, false);
    if (was_running)
        set_run_request(vm, VM_RUN_GO);
    else {
        rt_mutex_lock(&vm->state_lock);
        rt_cond_broadcast(&vm->state_cond);
        rt_mutex_unlock(&vm->state_lock);
    }
}

void vm_request_reset(struct vm *vm)
{
    if (atomic_exchange(&vm->reset_pending, true))
        return;
    if (!vm->started) {
        system_reset(vm);
        atomic_store(&vm->reset_pending, false);
        return;
    }
    kick_all(vm);
    if (rt_evloop_call(vm->evloop, do_reset, vm) != 0)
        atomic_store(&vm->reset_pending, false);
}

/* Runs on the event-loop thread. */
static void do_poweroff(void *opaque)
{
    struct vm *vm = opaque;
    set_run_request(vm, VM_RUN_EXIT);
    tm_clock_run(vm, false);
    rt_mutex_lock(&vm->state_lock);
    enum vm_state final = vm->exit_code < 0 ? VM_STATE_ABORTED : VM_STATE_POWERED_OFF;
    rt_mutex_unlock(&vm->state_lock);
    set_state(vm, final);
    rt_evloop_stop(vm->evloop);
}

void vm_request_poweroff(struct vm *vm, int exit_code)
{
    rt_mutex_lock(&vm->state_lock);
    if (!vm->exit_code_set) {
        vm->exit_code = exit_code;
        vm->exit_code_set = true;
    }
    rt_mutex_unlock(&vm->state_lock);
    if (atomic_exchange(&vm->poweroff_pending, true))
        return;
    if (!vm->started) {
        set_state(vm, exit_code < 0 ? VM_STATE_ABORTED : VM_STATE_POWERED_OFF);
        return;
    }
    /* Park vCPUs at once so the guest runs no further, then finish on the loop thread. */
    atomic_store(&vm->run_request, VM_RUN_EXIT);
    kick_all(vm);
    rt_evloop_call(vm->evloop, do_poweroff, vm);
}

int vm_wait(struct vm *vm)
{
    rt_mutex_lock(&vm->state_lock);
    while (vm->state != VM_STATE_POWERED_OFF && vm->state != VM_STATE_ABORTED)
        rt_cond_wait(&vm->state_cond, &vm->state_lock);
    int code = vm->exit_code;
    rt_mutex_unlock(&vm->state_lock);
    return code;
}

void vm_destroy(struct vm *vm)
{
    if (!vm)
        return;
    if (vm->started) {
        atomic_store(&vm->poweroff_pending, true);
        set_run_request(vm, VM_RUN_EXIT);
        for (unsigned i = 0; i < vm->vcpu_count; i++) {
            if (vm->vcpus[i]->thread)
                rt_thread_join(vm->vcpus[i]->thread, NULL);
            vm->vcpus[i]->thread = NULL;
        }
        rt_evloop_stop(vm->evloop);
        if (vm->evloop_thread)
            rt_thread_join(vm->evloop_thread, NULL);
        vm->evloop_thread = NULL;
        tm_thread_stop(vm);
        /* Requests queued behind the power off (a reset racing it) find the VM off and do nothing. */
        rt_evloop_run_once(vm->evloop, 0);
    }
    pdm_dev_destroy_all(vm);
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        struct vcpu *v = vm->vcpus[i];
        if (vm->backend)
            vm->backend->vcpu_fini(v);
        rt_cond_destroy(&v->cond);
        rt_mutex_destroy(&v->lock);
        free(v);
    }
    free(vm->vcpus);
    if (vm->backend)
        vm->backend->vm_fini(vm);
    irq_router_fini(vm);
    tm_fini(vm);
    iom_fini(vm);
    mem_map_fini(vm);
    if (vm->evloop)
        rt_evloop_destroy(vm->evloop);
    rt_cond_destroy(&vm->state_cond);
    rt_mutex_destroy(&vm->state_lock);
    rt_mutex_destroy(&vm->big_lock);
    free(vm->name);
    free(vm);
}

enum vm_state vm_get_state(struct vm *vm)
{
    rt_mutex_lock(&vm->state_lock);
    enum vm_state s = vm->state;
    rt_mutex_unlock(&vm->state_lock);
    return s;
}

const char *vm_get_name(struct vm *vm) { return vm->name; }
const struct cpu_backend *vm_get_backend(struct vm *vm) { return vm->backend; }
struct rt_evloop *vm_get_evloop(struct vm *vm) { return vm->evloop; }
unsigned vm_get_vcpu_count(struct vm *vm) { return vm->vcpu_count; }
uint64_t vm_get_ram_bytes(struct vm *vm) { return vm->params.ram_bytes; }
void vm_lock(struct vm *vm) { rt_mutex_lock(&vm->big_lock); }
void vm_unlock(struct vm *vm) { rt_mutex_unlock(&vm->big_lock); }
void vm_set_backend_data(struct vm *vm, void *data) { vm->backend_data = data; }
void *vm_get_backend_data(struct vm *vm) { return vm->backend_data; }

void vm_set_a20(struct vm *vm, bool enabled)
{
    if (atomic_exchange(&vm->a20_enabled, enabled) == enabled)
        return;
    LOG_DEBUG("A20 gate %s", enabled ? "on" : "off");
    /* The CPU's view of guest-physical memory changed: the backend drops its translations. */
    vm_lock(vm);
    if (vm->backend && vm->backend->mem_changed && vm->backend_data) {
        int rc = vm->backend->mem_changed(vm);
        if (rc)
            LOG_ERR("CPU backend '%s' could not apply the A20 gate change: %s", vm->backend->name, rt_err_str(rc));
    }
    vm_unlock(vm);
}

bool vm_a20_enabled(struct vm *vm)
{
    return atomic_load_explicit(&vm->a20_enabled, memory_order_acquire);
}

struct vcpu *vm_get_vcpu(struct vm *vm, unsigned index)
{
    return index < vm->vcpu_count ? vm->vcpus[index] : NULL;
}

void vm_set_reset_hook(struct vm *vm, void (*fn)(void *opaque), void *opaque)
{
    vm->reset_hook = fn;
    vm->reset_hook_opaque = opaque;
}

void vm_set_power_button(struct vm *vm, void (*fn)(void *opaque), void *opaque)
{
    vm_lock(vm);
    vm->power_button = fn;
    vm->power_button_opaque = opaque;
    vm_unlock(vm);
}

int vm_power_button(struct vm *vm)
{
    vm_lock(vm);
    void (*fn)(void *) = vm->power_button;
    if (fn)
        fn(vm->power_button_opaque);
    vm_unlock(vm);
    return fn ? 0 : VERR_NOT_SUPPORTED;
}

void vm_set_io_drain(struct vm *vm, void (*fn)(struct vm *vm))
{
    vm->io_drain = fn;
}

void vm_set_intc(struct vm *vm, const struct vm_intc *intc)
{
    vm->intc = *intc;
}

const struct vm_intc *vm_get_intc(struct vm *vm)
{
    return &vm->intc;
}

/* ---- vCPU helpers for backends and devices ---- */

unsigned vcpu_get_index(const struct vcpu *vcpu) { return vcpu->index; }
struct vm *vcpu_get_vm(const struct vcpu *vcpu) { return vcpu->vm; }
void vcpu_set_backend_data(struct vcpu *vcpu, void *data) { vcpu->backend_data = data; }
void *vcpu_get_backend_data(const struct vcpu *vcpu) { return vcpu->backend_data; }
struct cpu_state *vcpu_state(struct vcpu *vcpu) { return &vcpu->state; }

bool vcpu_has_request(const struct vcpu *vcpu)
{
    return atomic_load(&vcpu->vm->run_request) != VM_RUN_GO || atomic_load(&vcpu->vm->reset_pending);
}

void vcpu_set_intr(struct vcpu *vcpu, bool level)
{
    bool old = atomic_exchange(&vcpu->intr_level, level);
    if (level && !old) {
        rt_mutex_lock(&vcpu->lock);
        rt_cond_broadcast(&vcpu->cond);
        rt_mutex_unlock(&vcpu->lock);
        if (vcpu->vm->backend && vcpu->thread && !rt_thread_is_self(vcpu->thread))
            vcpu->vm->backend->vcpu_kick(vcpu);
    }
}

bool vcpu_intr_pending(const struct vcpu *vcpu)
{
    return atomic_load(&vcpu->intr_level);
}

const atomic_bool *vcpu_intr_line(const struct vcpu *vcpu)
{
    return &vcpu->intr_level;
}

int vcpu_intr_ack(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    if (!vm->intc.ack && !vm->intc.ack_vcpu)
        return -1;
    vm_lock(vm);
    int vector = vm->intc.ack_vcpu ? vm->intc.ack_vcpu(vm->intc.opaque, vcpu) : vm->intc.ack(vm->intc.opaque);
    vm_unlock(vm);
    return vector;
}

void vcpu_halt_wait(struct vcpu *vcpu)
{
    rt_mutex_lock(&vcpu->lock);
    while (!atomic_load(&vcpu->intr_level) && !vcpu_has_request(vcpu))
        rt_cond_wait(&vcpu->cond, &vcpu->lock);
    rt_mutex_unlock(&vcpu->lock);
}
