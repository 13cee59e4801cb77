/* vm-internal.h - structures private to the monitor core (src/VMM), shared between its files. */
#ifndef VIREO_VM_INTERNAL_H
#define VIREO_VM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "vireo/pdm.h"
#include "vireo/vm.h"

/* ---- memory map (mem.c) ---- */
struct mem_map {
    pthread_rwlock_t lock;        /* spans: read by lookups, written by map changes */
    struct mem_region *regions;   /* every region created on this VM */
    struct mem_span *spans;       /* the flattened view, sorted by gpa */
    size_t span_count;
    struct mem_watch *watches;
    uint64_t map_seq;             /* registration order for equal-priority checks */
};
int mem_map_init(struct vm *vm);
void mem_map_fini(struct vm *vm);
/* Calls fn for every RAM region (not ROM, MMIO or aliases) in creation order (saved state). */
void mem_for_each_ram_region(struct vm *vm, void (*fn)(void *opaque, struct mem_region *region), void *opaque);

/* ---- I/O ports (iom.c) ---- */
struct iom_space {
    struct io_region **ports;     /* 65536 entries */
    struct io_region *regions;
    uint64_t *unclaimed_logged;   /* one bit per port */
};
int iom_init(struct vm *vm);
void iom_fini(struct vm *vm);
/* Shared by ports and MMIO: applies the declared access sizes. */
uint64_t io_ops_read(const struct io_ops *ops, void *opaque, uint64_t offset, unsigned size, bool *dropped);
bool io_ops_write(const struct io_ops *ops, void *opaque, uint64_t offset, uint64_t value, unsigned size);

/* ---- virtual clock (tm.c) ---- */
struct tm_clock {
    struct rt_mutex lock;
    struct rt_cond cond;
    enum vm_clock_mode mode;
    bool running;                 /* the clock advances (host mode) */
    uint64_t host_offset_ns;      /* host mode: now = mono - offset while running */
    uint64_t frozen_ns;           /* the value while stopped, and the manual clock */
    uint64_t boot_real_ns;
    struct tm_timer *timers;      /* armed timers sorted by expiry */
    struct tm_timer *all;         /* every timer, for destruction */
    struct rt_thread *thread;
    bool thread_stop;
};
int tm_init(struct vm *vm, enum vm_clock_mode mode);
int tm_thread_start(struct vm *vm);
void tm_thread_stop(struct vm *vm);
void tm_clock_run(struct vm *vm, bool running);
void tm_fini(struct vm *vm);
/* Saved state: sets the stopped clock of a VM that has not started to now_ns. */
void tm_clock_restore(struct vm *vm, uint64_t now_ns);

/* ---- devices and IRQ router (pdm.c, irq.c) ---- */
struct pdm_dev {
    const struct pdm_dev_desc *desc;
    struct vm *vm;
    char *name;
    void *state;
    struct pdm_dev *next;
};
struct irq_sink {
    pdm_irq_sink_fn *fn;
    void *opaque;
    struct irq_sink *next;
};
struct irq_router {
    struct pdm_irq *lines;        /* every line, any GSI */
    struct irq_sink *sinks;
    bool level[PDM_GSI_COUNT];
    bool quiet;                   /* loading saved state: levels change, sinks are not told */
};
void irq_router_fini(struct vm *vm);
/*
 * Saved state of the router: every line's owner, GSI and level, in creation order.  Sinks keep
 * their own input levels in their device units, so irq_router_load restores the wires without
 * telling them; irq_router_quiet brackets the device loads, whose own pdm_irq_set calls must
 * not reach the already loaded interrupt controllers as new edges.
 */
int irq_router_save(struct vm *vm, struct ssm *ssm);
int irq_router_load(struct vm *vm, struct ssm *ssm);
void irq_router_quiet(struct vm *vm, bool quiet);

/* ---- vCPUs ---- */
struct vcpu {
    struct vm *vm;
    unsigned index;
    struct cpu_state state;
    void *backend_data;
    struct rt_thread *thread;
    atomic_bool intr_level;
    atomic_bool need_state_put;   /* core changed state: put it before the next run */
    struct rt_mutex lock;         /* halt waits */
    struct rt_cond cond;
    bool parked;
};

/* ---- the VM ---- */
enum vm_run_request { VM_RUN_GO, VM_RUN_PARK, VM_RUN_EXIT };

struct vm {
    char *name;
    struct vm_params params;
    const struct cpu_backend *backend;
    void *backend_data;
    struct rt_mutex big_lock;     /* the VM lock (recursive) */

    struct rt_mutex state_lock;   /* state, run request, parking */
    struct rt_cond state_cond;
    enum vm_state state;
    atomic_int run_request;       /* enum vm_run_request */
    unsigned parked_count;
    int exit_code;
    bool exit_code_set;
    atomic_bool reset_pending;
    atomic_bool poweroff_pending;
    atomic_bool a20_enabled;      /* the A20 gate (vm_set_a20) */

    struct vcpu **vcpus;
    unsigned vcpu_count;
    struct vm_intc intc;

    struct mem_map mem;
    struct iom_space iom;
    struct tm_clock tm;
    struct irq_router irq;
    struct pdm_dev *devices;      /* creation order */
    void (*reset_hook)(void *opaque);
    void *reset_hook_opaque;
    void (*power_button)(void *opaque);
    void *power_button_opaque;

    struct rt_evloop *evloop;
    struct rt_thread *evloop_thread;
    bool started;
    bool state_loaded;            /* vm_state_load succeeded: vm_start resumes instead of resetting */
    void (*io_drain)(struct vm *vm); /* vm_set_io_drain */
};

#endif
