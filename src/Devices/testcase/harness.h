/* harness.h - device test harness: a VM with no CPU, a hand-stepped virtual clock, port/MMIO access and IRQ watching. */
#ifndef VIREO_DEVICES_HARNESS_H
#define VIREO_DEVICES_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "vireo/devices.h"
#include "vireo/pdm.h"
#include "vireo/vm.h"

/* A VM with VM_EXEC_NONE, VM_CLOCK_MANUAL, one (threadless) vCPU and ram_bytes of RAM at 0 (0: none). */
struct vm *harness_vm_create(uint64_t ram_bytes);
/* The same with vcpus threadless vCPUs (SMP tests of per-CPU devices such as the local APIC). */
struct vm *harness_vm_create_smp(uint64_t ram_bytes, unsigned vcpus);
void harness_vm_destroy(struct vm *vm);

/* cfg is "key=value,key=value" or NULL.  The _try form returns the status; the other asserts success. */
int harness_dev_try_create(struct vm *vm, const struct pdm_dev_desc *desc, const char *name, const char *cfg,
                           struct pdm_dev **out);
struct pdm_dev *harness_dev_create(struct vm *vm, const struct pdm_dev_desc *desc, const char *name,
                                   const char *cfg);

void harness_outb(struct vm *vm, uint16_t port, uint8_t value);
void harness_outw(struct vm *vm, uint16_t port, uint16_t value);
void harness_outl(struct vm *vm, uint16_t port, uint32_t value);
uint8_t harness_inb(struct vm *vm, uint16_t port);
uint16_t harness_inw(struct vm *vm, uint16_t port);
uint32_t harness_inl(struct vm *vm, uint16_t port);

/* Advances the virtual clock, firing timers in order. */
void harness_step_ns(struct vm *vm, uint64_t ns);

/* The router's ORed level of a GSI, and the rising edges a sink saw on it since the last clear. */
bool harness_gsi_level(struct vm *vm, unsigned gsi);
unsigned harness_gsi_rises(struct vm *vm, unsigned gsi);
void harness_gsi_clear(struct vm *vm);

/* The INTR line into vCPU 0 and the INTA cycle (vector or -1). */
bool harness_intr_pending(struct vm *vm);
int harness_intr_ack(struct vm *vm);

/* Deterministic xorshift32 (never returns 0 for a non-zero seed), so garbage tests repeat exactly. */
uint32_t harness_rand(uint32_t *state);
/* Fills ops with 0..n-1 in a random order drawn from state. */
void harness_shuffle(uint32_t *ops, unsigned n, uint32_t *state);

/* Waits for every drive request of vm and runs its completion (storage controllers' done()), as the event loop would. */
void harness_drain_io(struct vm *vm);

/* Saves dev's state with its descriptor's save(), resets it, loads it back; returns the load status. */
int harness_dev_save_reset_load(struct pdm_dev *dev);

#endif
