/* kvm-internal.h - state shared by the KVM backend's files (kvm.c, kvm-cpuid.c, kvm-state.c). */
#ifndef VIREO_KVM_INTERNAL_H
#define VIREO_KVM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vireo/cpu.h"
#include "vireo/rt.h"
#include "vireo/vm.h"

/* One KVM memory slot as last handed to KVM_SET_USER_MEMORY_REGION. */
struct kvm_backend_slot {
    bool used;
    uint64_t gpa;
    uint64_t size;
    void *hva;
    uint32_t flags; /* KVM_MEM_READONLY or 0 */
};

/* Per-VM backend data (vm_get_backend_data). */
struct kvm_backend_vm {
    int kvm_fd;
    int vm_fd;
    size_t run_size;       /* bytes of each vCPU's kvm_run mapping */
    bool cap_readonly_mem; /* ROM can be a read-only slot */
    bool cap_xsave, cap_xcrs, cap_vcpu_events, cap_debugregs;
    size_t xsave_size; /* bytes of the XSAVE buffer (KVM_CAP_XSAVE2 or 4096) */
    bool use_xsave2;
    struct kvm_cpuid2 *supported_cpuid; /* KVM_GET_SUPPORTED_CPUID, unfiltered */
    uint32_t ymm_offset;                /* YMM_Hi128 component offset in the XSAVE area, 0 when absent */
    uint32_t *msrs;                     /* the MSRs of struct cpu_state that this KVM can get and set */
    unsigned msr_count;
    struct kvm_backend_slot *slots; /* indexed by KVM slot number */
    unsigned slot_count;            /* entries allocated in slots */
    unsigned max_slots;             /* KVM_CAP_NR_MEMSLOTS */
    bool warned_unaligned;
    unsigned vcpu_count; /* the VM's vCPUs, for the CPUID topology */
};

/* Per-vCPU backend data (vcpu_get_backend_data). */
struct kvm_backend_vcpu {
    struct vcpu *vcpu;
    struct kvm_backend_vm *kvm;
    int fd;
    struct kvm_run *run;
    unsigned index;
    /* The vCPU thread, valid while vcpu_run is on the stack. */
    pthread_t thread;
    int thread_valid; /* atomic */
    int in_run;       /* atomic: between the last check and the end of KVM_RUN */
    /* An I/O or MMIO exit was handled; the next KVM_RUN completes the instruction. */
    bool need_completion;
    /* HLT exited to us: the vCPU sleeps until an interrupt it can take, or a request. */
    bool halted;
    bool if_flag; /* RFLAGS.IF as of the last exit or state_put */
    /* An application processor after power-on or INIT: no KVM_RUN until a start-up IPI (kvm-apic.c). */
    bool wait_for_sipi;
    /* The local APIC model's TPR as CR8: what was last stored in run->cr8, and whether the model may differ. */
    uint8_t cr8_put;
    bool tpr_dirty;
    /* IA32_APIC_BASE as KVM reported it at the last exit, to notice guest WRMSRs KVM handled itself. */
    uint64_t apic_base_seen;
    /* The last state_get result, while no KVM_RUN happened since (see kvm-state.c). */
    bool last_get_valid;
    struct cpu_state last_get;
    void *xsave_buf; /* xsave_size bytes */
};

/* kvm-cpuid.c: builds the guest CPUID table for one vCPU and sets it (KVM_SET_CPUID2). */
int kvm_cpuid_setup(struct kvm_backend_vcpu *kv);

/*
 * kvm-apic.c: Vireo's userspace local APIC model behind KVM (vm_intc).  kvm_apic_model returns the
 * installed controller when it is a local APIC (it has the per-vCPU hooks), else NULL (the PIC alone).
 */
const struct vm_intc *kvm_apic_model(struct vm *vm);
/* Takes the APIC's INIT, start-up and NMI events and carries them out; 0 or a VERR_*. */
int kvm_apic_events(struct kvm_backend_vcpu *kv);
/* Before KVM_RUN: run->cr8 from the model's TPR when it may have changed. */
void kvm_apic_tpr_to_run(struct kvm_backend_vcpu *kv);
/* After an exit: a guest CR8 write (run->cr8) into the model's TPR, a guest IA32_APIC_BASE write into the model. */
void kvm_apic_sync_from_run(struct kvm_backend_vcpu *kv);
/* state_put: the model takes the state's APIC base and TPR; returns the IA32_APIC_BASE KVM must hold. */
uint64_t kvm_apic_state_put(struct kvm_backend_vcpu *kv, const struct cpu_state *state);
/* The wait-for-SIPI state: sleeps until an event or a request. */
void kvm_apic_wait_sipi(struct kvm_backend_vcpu *kv);

/* kvm-state.c: probes what the state conversion needs (XSAVE layout, MSR list) at VM creation. */
int kvm_state_probe(struct kvm_backend_vm *kvm);
int kvm_state_get(struct vcpu *vcpu, struct cpu_state *state);
int kvm_state_put(struct vcpu *vcpu, const struct cpu_state *state);
/* state_put for INIT and SIPI: as kvm_state_put, but the TSC keeps running (it is not written). */
int kvm_state_put_keep_tsc(struct kvm_backend_vcpu *kv, const struct cpu_state *state);
/* Saved state: the events KVM has queued for injection (cpu_backend.extra_save/extra_load). */
int kvm_state_extra_save(struct vcpu *vcpu, struct ssm *ssm);
int kvm_state_extra_load(struct vcpu *vcpu, struct ssm *ssm, uint32_t version);
/* Finishes an I/O or MMIO instruction KVM has pending, without running guest code. */
int kvm_vcpu_complete_pending(struct kvm_backend_vcpu *kv);
/* Logs the registers of a vCPU that stopped (an error, a triple fault) at the given level. */
void kvm_state_log_regs(struct kvm_backend_vcpu *kv, enum rt_log_level level);

#endif
