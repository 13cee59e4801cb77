/* kvm-apic.c - Vireo's userspace local APIC model behind KVM: INIT and start-up IPIs, NMIs, the TPR as CR8, IA32_APIC_BASE. */

/*
 * Design.  KVM runs without its in-kernel irqchip (kvm.c), so the local APICs are
 * Vireo's device model (src/Devices/PC/apic.c), reached through the VM's interrupt
 * controller hooks (struct vm_intc in vm.h), exactly as the software CPU reaches them:
 *
 *  - The APIC page at IA32_APIC_BASE has no memory slot, so guest accesses exit as
 *    MMIO and the model serves them on the vCPU's own thread (vcpu_current()).
 *  - The vCPU's INTR line is the APIC's attention line: high for a deliverable
 *    interrupt or for a pending INIT, start-up IPI or NMI.  When it is high the run
 *    loop first takes the events (take_events) and carries them out here; what then
 *    remains on the line is a maskable interrupt, injected by kvm.c with KVM_INTERRUPT
 *    (vcpu_intr_ack runs the APIC's INTA).
 *  - INIT (SDM vol. 3A, 8.4 and table 9-1): the registers return to their reset values
 *    except x87/SSE state, PAT, IA32_MISC_ENABLE, IA32_APIC_BASE and the TSC (it keeps
 *    running); the BSP then restarts at the reset vector, an AP enters wait-for-SIPI.
 *    KVM only knows wait-for-SIPI with an in-kernel APIC (KVM_SET_MP_STATE refuses
 *    anything but RUNNABLE without one), so the state lives here: a waiting vCPU does
 *    not call KVM_RUN and sleeps in vcpu_halt_wait until its APIC has an event.
 *  - SIPI (8.4.4.1): only in wait-for-SIPI; real mode at vector:0000 (CS = vector << 8).
 *  - NMI: KVM_NMI queues it; KVM itself honours NMI blocking and delivers it at the
 *    next entry.  A vCPU halted in userspace (KVM_EXIT_HLT) is woken for it.  NMIs are
 *    not taken in wait-for-SIPI.
 *  - TPR and CR8 (10.8.6.1): CR8 is TPR[7:4].  Without an in-kernel APIC KVM loads CR8
 *    from run->cr8 on every KVM_RUN and stores it back at every exit; a guest MOV to
 *    CR8 that lowers it exits with KVM_EXIT_SET_TPR so that a newly unmasked interrupt
 *    can be injected (KVM API documentation, "cr8").  So after every exit a changed
 *    run->cr8 goes into the model's TPR before anything decides what to inject, and
 *    before an entry run->cr8 is refreshed from the model when its TPR may have changed
 *    (an MMIO write to the TPR register, INIT, a state load).
 *  - IA32_APIC_BASE: KVM handles the guest's RDMSR/WRMSR itself and reports the value
 *    in run->apic_base; a change goes to the model, and KVM is given back the model's
 *    value when it differs (the BSP flag is vCPU 0's alone, relocation bits the model
 *    cannot decode).
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm-internal.h"
#include "vireo/rt.h"

#define LOG_COMPONENT "kvm"

#define MSR_IA32_APIC_BASE 0x1bu
#define APIC_BASE_BSP      (1ULL << 8)
#define APIC_BASE_ENABLE   (1ULL << 11)
/* IA32_APIC_BASE bits 0-7 and 9 are reserved, bit 10 (x2APIC) is refused without x2APIC in CPUID (10.4.4). */
#define APIC_BASE_REFUSED 0x6ffULL

const struct vm_intc *kvm_apic_model(struct vm *vm)
{
    const struct vm_intc *intc = vm_get_intc(vm);
    if (!intc || !intc->take_events || !intc->tpr_get || !intc->tpr_set || !intc->msr_read || !intc->msr_write)
        return NULL;
    return intc;
}

/* The model's IA32_APIC_BASE for this vCPU, or fallback if it does not answer. */
static uint64_t kvm_apic_model_base(const struct vm_intc *intc, struct vcpu *vcpu, uint64_t fallback)
{
    uint64_t value = fallback;
    if (!intc->msr_read(intc->opaque, vcpu, MSR_IA32_APIC_BASE, &value))
        value = fallback;
    return value & ~APIC_BASE_REFUSED;
}

uint64_t kvm_apic_state_put(struct kvm_backend_vcpu *kv, const struct cpu_state *state)
{
    const struct vm_intc *intc = kvm_apic_model(vcpu_get_vm(kv->vcpu));
    if (!intc) {
        /*
         * No local APIC (a board with the PIC alone, unit tests): the global enable stays
         * clear.  KVM derives CPUID.1:EDX.APIC from it, as hardware does after a disable,
         * and a guest must not find an APIC that is not there.
         */
        return state->apic_base & ~(APIC_BASE_REFUSED | APIC_BASE_ENABLE);
    }
    /* The state's base wins when it differs (a state load, a debugger); the BSP flag stays the model's. */
    uint64_t model = kvm_apic_model_base(intc, kv->vcpu, state->apic_base);
    if ((state->apic_base ^ model) & ~(APIC_BASE_BSP | APIC_BASE_REFUSED)) {
        if (!intc->msr_write(intc->opaque, kv->vcpu, MSR_IA32_APIC_BASE, state->apic_base & ~APIC_BASE_REFUSED))
            LOG_WARN("vCPU %u: the local APIC refused IA32_APIC_BASE %#llx from the loaded state; it keeps %#llx",
                     kv->index, (unsigned long long)state->apic_base, (unsigned long long)model);
        model = kvm_apic_model_base(intc, kv->vcpu, model);
    }
    uint8_t cr8 = (uint8_t)(state->cr8 & 0xf);
    if ((intc->tpr_get(intc->opaque, kv->vcpu) >> 4) != cr8)
        intc->tpr_set(intc->opaque, kv->vcpu, (uint8_t)(cr8 << 4));
    return model;
}

void kvm_apic_tpr_to_run(struct kvm_backend_vcpu *kv)
{
    if (!kv->tpr_dirty)
        return;
    kv->tpr_dirty = false;
    const struct vm_intc *intc = kvm_apic_model(vcpu_get_vm(kv->vcpu));
    if (!intc)
        return;
    uint8_t cr8 = intc->tpr_get(intc->opaque, kv->vcpu) >> 4;
    kv->run->cr8 = cr8;
    kv->cr8_put = cr8;
}

/* Gives KVM the model's IA32_APIC_BASE (the guest wrote something the model did not take as is). */
static void kvm_apic_base_to_kvm(struct kvm_backend_vcpu *kv, uint64_t value)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry entry;
    } msrs;
    memset(&msrs, 0, sizeof(msrs));
    msrs.hdr.nmsrs = 1;
    msrs.entry.index = MSR_IA32_APIC_BASE;
    msrs.entry.data = value;
    if (ioctl(kv->fd, KVM_SET_MSRS, &msrs) != 1)
        LOG_WARN("vCPU %u: KVM refused IA32_APIC_BASE %#llx: %s", kv->index, (unsigned long long)value,
                 strerror(errno));
}

void kvm_apic_sync_from_run(struct kvm_backend_vcpu *kv)
{
    const struct vm_intc *intc = kvm_apic_model(vcpu_get_vm(kv->vcpu));
    if (!intc)
        return;
    struct kvm_run *run = kv->run;
    uint8_t cr8 = (uint8_t)(run->cr8 & 0xf);
    if (cr8 != kv->cr8_put) {
        /* A guest MOV to CR8 (64-bit mode): TPR[7:4] = CR8, TPR[3:0] = 0 (10.8.6.1). */
        intc->tpr_set(intc->opaque, kv->vcpu, (uint8_t)(cr8 << 4));
        kv->cr8_put = cr8;
    }
    uint64_t base = run->apic_base;
    if (base != kv->apic_base_seen) {
        if (!intc->msr_write(intc->opaque, kv->vcpu, MSR_IA32_APIC_BASE, base & ~APIC_BASE_REFUSED))
            LOG_DEBUG("vCPU %u: the local APIC refused IA32_APIC_BASE %#llx", kv->index, (unsigned long long)base);
        uint64_t model = kvm_apic_model_base(intc, kv->vcpu, base);
        if (model != base)
            kvm_apic_base_to_kvm(kv, model);
        kv->apic_base_seen = model;
        /* A global disable resets the APIC, TPR included. */
        kv->tpr_dirty = true;
    }
}

/* INIT: the reset state with what INIT keeps; the BSP restarts, an AP waits for a start-up IPI. */
static int kvm_apic_init(struct kvm_backend_vcpu *kv)
{
    struct cpu_state s;
    int rc = kvm_state_get(kv->vcpu, &s);
    if (rc != 0)
        return rc;
    struct cpu_fpu fpu = s.fpu;
    uint64_t apic_base = s.apic_base, pat = s.pat, misc = s.misc_enable, tsc = s.tsc;
    cpu_state_reset(&s);
    s.fpu = fpu;
    s.pat = pat;
    s.misc_enable = misc;
    s.apic_base = apic_base;
    s.tsc = tsc; /* not written: kvm_state_put_keep_tsc */
    rc = kvm_state_put_keep_tsc(kv, &s);
    if (rc != 0)
        return rc;
    kv->halted = false;
    kv->wait_for_sipi = !(apic_base & APIC_BASE_BSP);
    LOG_DEBUG("vCPU %u: INIT%s", kv->index, kv->wait_for_sipi ? ", waiting for a start-up IPI" : "");
    return 0;
}

/* Start-up IPI in wait-for-SIPI: real mode at vector:0000. */
static int kvm_apic_sipi(struct kvm_backend_vcpu *kv, uint8_t vector)
{
    struct cpu_state s;
    int rc = kvm_state_get(kv->vcpu, &s);
    if (rc != 0)
        return rc;
    s.seg[CPU_CS].sel = (uint16_t)(vector << 8);
    s.seg[CPU_CS].base = (uint64_t)vector << 12;
    s.rip = 0;
    s.halted = false;
    rc = kvm_state_put_keep_tsc(kv, &s);
    if (rc != 0)
        return rc;
    kv->halted = false;
    kv->wait_for_sipi = false;
    LOG_DEBUG("vCPU %u: start-up IPI, running at %04x:0000", kv->index, (unsigned)vector << 8);
    return 0;
}

int kvm_apic_events(struct kvm_backend_vcpu *kv)
{
    if (!vcpu_intr_pending(kv->vcpu))
        return 0;
    const struct vm_intc *intc = kvm_apic_model(vcpu_get_vm(kv->vcpu));
    if (!intc)
        return 0;
    uint8_t vector = 0;
    unsigned events = intc->take_events(intc->opaque, kv->vcpu, &vector);
    int rc = 0;
    /* INIT before SIPI: an INIT-SIPI pair that arrived together starts the AP (8.4.4.1). */
    if (events & VM_INTC_EVENT_INIT)
        rc = kvm_apic_init(kv);
    if (rc == 0 && (events & VM_INTC_EVENT_SIPI) && kv->wait_for_sipi)
        rc = kvm_apic_sipi(kv, vector);
    if (rc == 0 && (events & VM_INTC_EVENT_NMI) && !kv->wait_for_sipi) {
        if (ioctl(kv->fd, KVM_NMI, 0) != 0) {
            LOG_ERR("vCPU %u: KVM_NMI failed: %s", kv->index, strerror(errno));
            rc = VERR_KVM;
        } else {
            kv->halted = false; /* an NMI ends HLT; the handler's IRET returns after it */
        }
    }
    if (events & VM_INTC_EVENT_INIT)
        kv->tpr_dirty = true;
    return rc;
}

void kvm_apic_wait_sipi(struct kvm_backend_vcpu *kv)
{
    /*
     * The line is the APIC's attention line: events were taken just before, so a line
     * still high is an interrupt the waiting vCPU cannot take (none can reach a
     * software-disabled APIC, but a model without the hooks could hold the line);
     * vcpu_halt_wait would return at once, so poll for the core's requests instead.
     */
    if (vcpu_intr_pending(kv->vcpu))
        rt_sleep_ns(RT_NS_PER_MS);
    else
        vcpu_halt_wait(kv->vcpu);
}
