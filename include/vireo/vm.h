/* vm.h - the monitor core: VM object and lifecycle, guest memory map, port/MMIO dispatch, virtual clock and timers, vCPUs, saved state. */
#ifndef VIREO_VM_H
#define VIREO_VM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vireo/cpu.h"
#include "vireo/rt.h"

struct vm;   /* opaque */
struct vcpu; /* opaque */

/* ---- VM object and lifecycle ------------------------------------------- */

enum vm_state {
    VM_STATE_CREATED = 0,
    VM_STATE_RUNNING,
    VM_STATE_PAUSED,
    VM_STATE_POWERED_OFF,
    VM_STATE_ABORTED,
};
const char *vm_state_name(enum vm_state state);

enum vm_exec {
    VM_EXEC_AUTO = 0, /* KVM where the host CPU has vmx/svm, else the software CPU */
    VM_EXEC_KVM,
    VM_EXEC_SOFT,     /* the software CPU: the recompiler, with the interpreter for what it does not translate */
    VM_EXEC_NONE,     /* no CPU at all: device tests drive ports and the clock by hand */
    VM_EXEC_INTERP,   /* the software CPU's interpreter alone (the reference, for comparisons) */
};
int vm_exec_parse(const char *name, enum vm_exec *out);
/* The execution choice the VM was created with (VM_EXEC_AUTO resolved). */
enum vm_exec vm_get_exec(const struct vm *vm);

enum vm_clock_mode {
    VM_CLOCK_HOST = 0, /* the virtual clock follows host time while running */
    VM_CLOCK_MANUAL,   /* only tm_clock_step advances it (unit tests) */
};

struct vm_params {
    const char *name;     /* for logs */
    uint64_t ram_bytes;   /* guest RAM; split around the PCI hole by the board */
    unsigned vcpu_count;  /* 1.. */
    enum vm_exec exec;
    enum vm_clock_mode clock_mode;
};

/*
 * Creates the VM object: memory map, I/O space, clock, event loop and the CPU
 * backend (chosen from params->exec; the choice and its reason are logged).
 * Devices and memory are added by the board afterwards, then vm_start.
 */
int vm_create(const struct vm_params *params, struct vm **out);
/* Stops everything (vCPUs, loop), destroys devices in reverse order, frees the VM. */
void vm_destroy(struct vm *vm);

/* Resets devices and vCPUs and starts the vCPU threads and the event loop thread. */
int vm_start(struct vm *vm);
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
/* Any thread (a device, a vCPU, a signal handler's deferred call): ask the VM to end. */
void vm_request_poweroff(struct vm *vm, int exit_code);
/* Any thread: ask for a system reset (devices and vCPUs), as a reset button does. */
void vm_request_reset(struct vm *vm);
/* Blocks until the VM has powered off or aborted; returns the exit code set with vm_request_poweroff. */
int vm_wait(struct vm *vm);

enum vm_state vm_get_state(struct vm *vm);
const char *vm_get_name(struct vm *vm);
const struct cpu_backend *vm_get_backend(struct vm *vm);
struct rt_evloop *vm_get_evloop(struct vm *vm);
unsigned vm_get_vcpu_count(struct vm *vm);
struct vcpu *vm_get_vcpu(struct vm *vm, unsigned index);
uint64_t vm_get_ram_bytes(struct vm *vm);

/*
 * The VM lock serialises every device model: the I/O dispatchers, timer callbacks
 * and event-loop callbacks into devices run with it held.  It is recursive, so a
 * device may do DMA (mem_write) that lands in another device's MMIO.
 */
void vm_lock(struct vm *vm);
void vm_unlock(struct vm *vm);

/*
 * Called on every system reset (power-on included) after the devices and the vCPU
 * states were reset and before any vCPU runs: the board reloads what a reset must
 * restore (a direct-boot kernel and its boot CPU state).
 */
void vm_set_reset_hook(struct vm *vm, void (*fn)(void *opaque), void *opaque);

/*
 * The power button: the board installs fn when the machine has one (the ACPI PM device
 * raises its power-button event).  vm_power_button presses it from any thread (the control
 * socket, the console window) and returns VERR_NOT_SUPPORTED when the machine has none.
 * fn runs with the VM lock held.
 */
void vm_set_power_button(struct vm *vm, void (*fn)(void *opaque), void *opaque);
int vm_power_button(struct vm *vm);

/*
 * The A20 gate (the chipset's A20M# line): while it is off, CPU accesses see guest-physical
 * address bit 20 as 0 (the 8086's wrap at 1 MiB).  It is on when the VM is created.  Any
 * thread may set it; the CPU backend hears of a change as a memory map change (mem_changed),
 * which every vCPU applies before its next instruction block.  Device DMA ignores it.
 */
void vm_set_a20(struct vm *vm, bool enabled);
bool vm_a20_enabled(struct vm *vm);

/* Backend data hung off the VM (one pointer for the backend's own use). */
void vm_set_backend_data(struct vm *vm, void *data);
void *vm_get_backend_data(struct vm *vm);

/* ---- Guest physical memory --------------------------------------------- */

struct mem_region; /* opaque */

/* Handlers for MMIO regions and I/O port ranges.  Offsets are region-relative. */
struct io_ops {
    uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
    void (*write)(void *opaque, uint64_t offset, uint64_t value, unsigned size);
    /*
     * Declared access sizes in bytes (1, 2, 4, 8; 0 means 1 and 4).  Wider
     * accesses are split into max-sized ones; narrower reads are widened to min and
     * the bytes extracted; narrower writes are dropped and logged once.
     */
    unsigned min_access, max_access;
};

/*
 * MEM_KIND_ROMD is a region kind only (a ROM device, see mem_region_create_romd): its spans
 * are MEM_KIND_ROM while it is in ROM mode and MEM_KIND_MMIO while it is not.
 */
enum mem_kind { MEM_KIND_RAM, MEM_KIND_ROM, MEM_KIND_MMIO, MEM_KIND_ALIAS, MEM_KIND_ROMD };

/* RAM backed by anonymous mmap(MAP_NORESERVE), zeroed. */
int mem_region_create_ram(struct vm *vm, const char *name, uint64_t size_bytes, struct mem_region **out);
/* ROM: a copy of data; guest writes are ignored. size_bytes >= len, the rest is zero. */
int mem_region_create_rom(struct vm *vm, const char *name, const void *data, size_t len,
                          uint64_t size_bytes, struct mem_region **out);
int mem_region_create_mmio(struct vm *vm, const char *name, uint64_t size_bytes, const struct io_ops *ops,
                           void *opaque, struct mem_region **out);
/*
 * A ROM device (parallel flash): host memory of size_bytes (zeroed; the device fills it through
 * mem_region_hva) that the guest reads like ROM while the region is in ROM mode, so code runs
 * in place and reads cost what RAM reads cost.  Every guest write goes to ops->write (the
 * device's command interface).  Out of ROM mode (mem_region_romd_set(region, false)) guest
 * reads go to ops->read as well, as for MMIO.  Created in ROM mode.
 */
int mem_region_create_romd(struct vm *vm, const char *name, uint64_t size_bytes, const struct io_ops *ops,
                           void *opaque, struct mem_region **out);
/*
 * Switches a ROM device between ROM mode (reads from memory) and MMIO mode (reads through
 * ops->read).  A change rebuilds the map, so it takes effect for the calling vCPU's next
 * access and for the others at their next instruction block; no change costs nothing.
 */
int mem_region_romd_set(struct mem_region *region, bool rom_mode);
bool mem_region_romd_is_rom(const struct mem_region *region);
/*
 * A window onto [offset, offset+size) of a RAM, ROM or ROM-device region.  With readonly, guest
 * writes through the alias are ignored (PAM read-only shadow RAM).
 */
int mem_region_create_alias(struct vm *vm, const char *name, struct mem_region *target, uint64_t offset,
                            uint64_t size_bytes, bool readonly, struct mem_region **out);
/*
 * Maps a region at gpa.  Where regions overlap, the higher priority wins (PCI BARs
 * over RAM, PAM windows over the BIOS alias); equal priorities must not overlap.
 */
int mem_region_map(struct mem_region *region, uint64_t gpa, int priority);
void mem_region_unmap(struct mem_region *region);
bool mem_region_is_mapped(const struct mem_region *region);
/* Unmaps if needed and frees. */
void mem_region_destroy(struct mem_region *region);
/* Host address of a RAM/ROM/ROM-device region's (or an alias's) first byte; NULL for MMIO. */
void *mem_region_hva(const struct mem_region *region);
uint64_t mem_region_size(const struct mem_region *region);
enum mem_kind mem_region_kind(const struct mem_region *region);
const char *mem_region_name(const struct mem_region *region);

/*
 * Guest-physical accesses for device DMA, firmware loading and the software CPU:
 * RAM directly, MMIO through handlers, unassigned reads as all ones.  Writes to RAM
 * mark pages dirty and notify write watchers.
 */
int mem_read(struct vm *vm, uint64_t gpa, void *buf, size_t len);
int mem_write(struct vm *vm, uint64_t gpa, const void *buf, size_t len);
/* One MMIO access (size 1/2/4/8) from a CPU backend; unassigned reads give all ones. */
uint64_t mem_mmio_read(struct vm *vm, uint64_t gpa, unsigned size);
void mem_mmio_write(struct vm *vm, uint64_t gpa, uint64_t value, unsigned size);
/* Host pointer to [gpa, gpa+len) when it is all RAM in one region (ROM too when !write), else NULL. */
void *mem_gpa_to_hva(struct vm *vm, uint64_t gpa, size_t len, bool write);
/*
 * After a writer stored through a mem_gpa_to_hva() pointer (device DMA done on a worker
 * thread): marks the pages dirty again and tells the write watchers, as mem_write does.
 * Call with the VM lock held, after the data is in place.
 */
void mem_notify_written(struct vm *vm, uint64_t gpa, uint64_t len);

/* One span of the flattened map, for backends (KVM memory slots) and lookups. */
struct mem_span {
    uint64_t gpa;
    uint64_t size;
    enum mem_kind kind;     /* RAM, ROM or MMIO; aliases are resolved */
    bool readonly;          /* RAM seen read-only (ROM, read-only alias) */
    void *hva;              /* host address for RAM/ROM */
    struct mem_region *region; /* the RAM/ROM/MMIO region that backs it */
    uint64_t region_offset;
};
/* Calls fn for every span in ascending gpa order (with the map lock held). */
void mem_for_each_span(struct vm *vm, void (*fn)(void *opaque, const struct mem_span *span), void *opaque);

/* Dirty tracking for a RAM region (one bit per 4 KiB page); used by display and saved state. */
int mem_region_dirty_enable(struct mem_region *region, bool enable);
/* Copies and clears the dirty bitmap (ceil(pages/64) words). */
int mem_region_dirty_fetch(struct mem_region *region, uint64_t *bitmap, size_t words);
/* Marks pages dirty (software writers, backends that sync their own logs). */
void mem_region_dirty_mark(struct mem_region *region, uint64_t offset, uint64_t len);
/*
 * The bitmap word and bit of the page holding offset in a RAM region (NULL for other kinds
 * or past the end), for writers that mark one page many times (the software CPU's TLB).
 * The word stays valid for the region's life.
 */
_Atomic(uint64_t) *mem_region_dirty_word(struct mem_region *region, uint64_t offset, uint64_t *bit);
/*
 * Marks a page through its word: the bit is tested first, so a page already dirty costs a
 * load, not a locked operation.  A consumer fetching concurrently may see a write's data
 * and still find the page clean until the next write to it; display consumers tolerate
 * that, saved state stops the vCPUs first.
 */
static inline void mem_dirty_word_set(_Atomic(uint64_t) *word, uint64_t bit)
{
    if (word && !(atomic_load_explicit(word, memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
}

/*
 * Write watchers: called after mem_write stores to RAM (DMA, firmware loads) with the
 * guest-physical range, e.g. for the software CPU's self-modifying-code detection.
 */
typedef void mem_write_watch_fn(void *opaque, uint64_t gpa, uint64_t len);
int mem_write_watch_add(struct vm *vm, mem_write_watch_fn *fn, void *opaque);

/* ---- I/O ports ---------------------------------------------------------- */

struct io_region; /* opaque */

int iom_region_create(struct vm *vm, const char *name, uint32_t size, const struct io_ops *ops, void *opaque,
                      struct io_region **out);
/* Maps at port; VERR_OVERLAP if any port in the range is taken. */
int iom_region_map(struct io_region *region, uint16_t port);
void iom_region_unmap(struct io_region *region);
bool iom_region_is_mapped(const struct io_region *region);
void iom_region_destroy(struct io_region *region);
/* Dispatch (takes the VM lock).  Unclaimed reads return all ones and are logged once per port. */
uint32_t iom_port_read(struct vm *vm, uint16_t port, unsigned size);
void iom_port_write(struct vm *vm, uint16_t port, uint32_t value, unsigned size);

/* ---- Virtual clock and timers ------------------------------------------ */

struct tm_timer; /* opaque */
typedef void tm_timer_fn(void *opaque);

/* Nanoseconds of virtual time since power-on; stops while the VM is paused. */
uint64_t tm_now_ns(struct vm *vm);
/* The timer callback runs with the VM lock held, on the event loop thread (or in tm_clock_step). */
int tm_timer_create(struct vm *vm, const char *name, tm_timer_fn *fn, void *opaque, struct tm_timer **out);
/* Fires once when the virtual clock reaches expire_ns (re-arming replaces it). */
void tm_timer_arm(struct tm_timer *timer, uint64_t expire_ns);
void tm_timer_cancel(struct tm_timer *timer);
bool tm_timer_is_armed(const struct tm_timer *timer);
uint64_t tm_timer_expire_ns(const struct tm_timer *timer);
void tm_timer_destroy(struct tm_timer *timer);
/* VM_CLOCK_MANUAL only: advance the clock by delta_ns, firing due timers in order. */
void tm_clock_step(struct vm *vm, uint64_t delta_ns);
/* Host wall-clock time at power-on (ns since the epoch): the RTC's seed, set once. */
uint64_t tm_boot_real_ns(struct vm *vm);
/* Overrides the wall-clock seed (tests; restore of saved state). */
void tm_set_boot_real_ns(struct vm *vm, uint64_t ns);

/* ---- vCPUs -------------------------------------------------------------- */

unsigned vcpu_get_index(const struct vcpu *vcpu);
struct vm *vcpu_get_vm(const struct vcpu *vcpu);
void vcpu_set_backend_data(struct vcpu *vcpu, void *data);
void *vcpu_get_backend_data(const struct vcpu *vcpu);
/* The core's copy of the architectural state (valid after state_get / for state_put). */
struct cpu_state *vcpu_state(struct vcpu *vcpu);
/* True when the VM wants the vCPU back (pause, stop, reset); backends poll it between runs. */
bool vcpu_has_request(const struct vcpu *vcpu);

/*
 * The external interrupt line (INTR) into this vCPU, driven by the interrupt
 * controller.  Backends check vcpu_intr_pending and, when the guest can take it,
 * call vcpu_intr_ack for the vector (the INTA cycle; -1 if it went away).
 */
void vcpu_set_intr(struct vcpu *vcpu, bool level);
bool vcpu_intr_pending(const struct vcpu *vcpu);
/* The INTR line itself, for a backend that polls it between guest instructions (no call). */
const atomic_bool *vcpu_intr_line(const struct vcpu *vcpu);
int vcpu_intr_ack(struct vcpu *vcpu);
/*
 * The interrupt controller the board installs: the PIC pair alone, or the local
 * APICs (src/Devices/PC/apic.c), which then take the PIC's output on the BSP's LINT0.
 *
 * The optional per-vCPU fields are set by a local APIC and NULL otherwise; the
 * software CPU uses them when set (KVM never creates an APIC model):
 *  - ack_vcpu: the INTA cycle of that vCPU; vcpu_intr_ack prefers it over ack.
 *  - tpr_get/tpr_set: the APIC's 8-bit TPR.  MOV from CR8 reads tpr_get() >> 4;
 *    MOV to CR8 writes tpr_set((cr8 & 15) << 4) (SDM vol. 3A 10.8.6.1).
 *  - msr_read/msr_write: the CPU routes IA32_APIC_BASE (0x1b) and IA32_TSC_DEADLINE
 *    (0x6e0) here; false means #GP(0) (reserved bits, unknown MSR).  With an APIC,
 *    CPUID.1:EDX.APIC[9] follows IA32_APIC_BASE.EN and CPUID.1:ECX[24] (TSC deadline)
 *    may be advertised.
 *  - take_events: with a local APIC, vcpu_intr_pending() is the APIC's attention
 *    line: high for a deliverable maskable interrupt or for a pending NMI, INIT or
 *    start-up IPI.  When it is high the backend first calls take_events (whatever
 *    RFLAGS.IF is), which hands over and clears the pending VM_INTC_EVENT_* bits
 *    (*sipi_vector: the start-up page for SIPI), then, when IF allows, vcpu_intr_ack.
 *    The backend latches an NMI it cannot take yet (NMI blocking), performs INIT
 *    (reset to wait-for-SIPI; the APIC has already reset itself) before SIPI, and
 *    ignores a SIPI outside wait-for-SIPI.
 *  - tsc_sync: the CPU's TSC relation, TSC = tm_now_ns * tsc_khz / 1e6 + tsc_offset
 *    (mod 2^64), given at vCPU start and whenever it changes (guest writes to
 *    IA32_TSC), so TSC-deadline timers expire on the CPU's TSC.  Until it is called
 *    the APIC uses its "tsc_khz" config key and offset 0.
 */
struct vm_intc {
    int (*ack)(void *opaque); /* returns the vector of the highest pending request, or -1 */
    void *opaque;
    int (*ack_vcpu)(void *opaque, struct vcpu *vcpu);
    uint8_t (*tpr_get)(void *opaque, struct vcpu *vcpu);
    void (*tpr_set)(void *opaque, struct vcpu *vcpu, uint8_t tpr);
    bool (*msr_read)(void *opaque, struct vcpu *vcpu, uint32_t msr, uint64_t *value);
    bool (*msr_write)(void *opaque, struct vcpu *vcpu, uint32_t msr, uint64_t value);
    unsigned (*take_events)(void *opaque, struct vcpu *vcpu, uint8_t *sipi_vector);
    void (*tsc_sync)(void *opaque, struct vcpu *vcpu, uint64_t tsc_khz, uint64_t tsc_offset);
};
/* Bits of vm_intc.take_events. */
#define VM_INTC_EVENT_NMI  0x1u
#define VM_INTC_EVENT_INIT 0x2u
#define VM_INTC_EVENT_SIPI 0x4u
void vm_set_intc(struct vm *vm, const struct vm_intc *intc);
/* The installed controller's hooks, for CPU backends (MSRs, TPR/CR8, events). */
const struct vm_intc *vm_get_intc(struct vm *vm);
/* The vCPU whose thread is calling (NULL on other threads): per-CPU devices such as the local APIC. */
struct vcpu *vcpu_current(void);
/* HLT: sleeps until an interrupt is pending or a request arrives. */
void vcpu_halt_wait(struct vcpu *vcpu);

/* ---- Saved state -------------------------------------------------------- */

struct ssm; /* opaque: an in-memory saved-state stream */
int ssm_create(struct ssm **out);
/* A stream that reads len bytes of data (not copied; must outlive the stream). */
int ssm_open(const void *data, size_t len, struct ssm **out);
void ssm_destroy(struct ssm *ssm);
const void *ssm_data(const struct ssm *ssm, size_t *len);
void ssm_put_u8(struct ssm *ssm, uint8_t v);
void ssm_put_u16(struct ssm *ssm, uint16_t v);
void ssm_put_u32(struct ssm *ssm, uint32_t v);
void ssm_put_u64(struct ssm *ssm, uint64_t v);
void ssm_put_bool(struct ssm *ssm, bool v);
void ssm_put_bytes(struct ssm *ssm, const void *buf, size_t len);
/* Getters return 0 or VERR_SSM_CORRUPT past the end; errors are sticky (ssm_status). */
int ssm_get_u8(struct ssm *ssm, uint8_t *v);
int ssm_get_u16(struct ssm *ssm, uint16_t *v);
int ssm_get_u32(struct ssm *ssm, uint32_t *v);
int ssm_get_u64(struct ssm *ssm, uint64_t *v);
int ssm_get_bool(struct ssm *ssm, bool *v);
int ssm_get_bytes(struct ssm *ssm, void *buf, size_t len);
/* First error seen by a put (VERR_NO_MEMORY) or get (VERR_SSM_CORRUPT), or 0. */
int ssm_status(const struct ssm *ssm);

/*
 * Saved-state files: the whole VM (every vCPU's registers and backend state, the virtual clock and
 * TSC, the A20 gate, RAM, every device unit with its version) in one versioned file.
 *
 * vm_state_save: the VM must be paused (vm_pause); disk I/O in flight is drained first.  The file is
 * written under a temporary name, fsync'ed and renamed, so it appears complete or not at all.
 * progress (may be NULL) gets 0..100.
 *
 * vm_state_load: on a VM that the board has built but that was not started.  The file's configuration
 * (RAM size, vCPU count, CPU backend family, the device list) must match (VERR_SSM_CORRUPT with a log
 * line saying what differs); older unit versions load.  After success, vm_start resumes the guest
 * exactly where it was saved (no reset, no reset hook) with the virtual clock continuing from the
 * saved time.  On failure the VM must be destroyed.
 */
int vm_state_save(struct vm *vm, const char *path, void (*progress)(void *opaque, unsigned percent), void *opaque);
int vm_state_load(struct vm *vm, const char *path);
/*
 * What vm_state_save runs first (VM lock held, vCPUs parked) so that no device I/O is in flight:
 * the storage drives install drive_drain_all when the VM's first drive is created (the core
 * does not link against device code).
 */
void vm_set_io_drain(struct vm *vm, void (*fn)(struct vm *vm));

#endif
