/* iem-except.c - raising exceptions and delivering interrupts and exceptions: real-mode IVT, protected-mode and IA-32e IDT, virtual-8086. */

/*
 * Delivery follows the INT n/INTO/INT3/INT1 pseudocode (Intel SDM vol. 2A) and vol. 3A
 * chapter 6 (6.12 protected mode, 6.14 IA-32e mode), chapter 20 (real and virtual-8086
 * mode, 20.3 interrupt redirection with VME).  Every check and every memory access that
 * can fault happens before any register changes; the frame is written to the (possibly
 * new) stack, then SS, RSP, CS, RIP and RFLAGS are committed.  A fault during delivery
 * unwinds through iem_raise like any other; the run loop turns it into #DF or a triple
 * fault by the exception classes (SDM vol. 3A, table 6-5).
 *
 * Error codes carry EXT (bit 0) when the event being delivered did not come from INT n,
 * INT3 or INTO, and IDT (bit 1) when they name an IDT entry (SDM vol. 3A, 6.13).
 */
#include "iem-core.h"
#include "iem-dbg.h"
#include "iem-sys.h"

/* ---- Raising ------------------------------------------------------------------------ */

/* Vectors that always push an error code (SDM vol. 3A, table 6-1). */
static bool vector_has_error(int vector)
{
    switch (vector) {
    case IEM_X_DF: case IEM_X_TS: case IEM_X_NP: case IEM_X_SS: case IEM_X_GP: case IEM_X_PF: case IEM_X_AC:
        return true;
    default:
        return false;
    }
}

/* A fault inside a LOCKed read-modify-write that holds the VM-wide atomic lock (iem-int.c) releases it. */
static inline void raise_release(struct iem_cpu *cpu)
{
    struct iem_core *core = iem_core_of(cpu);
    if (__builtin_expect(core->atomic_held, 0)) {
        core->atomic_held = false;
        rt_mutex_unlock(&core->ivm->atomic_lock);
    }
}

_Noreturn void iem_raise(struct iem_cpu *cpu, int vector)
{
    raise_release(cpu);
    cpu->fault_vector = vector;
    cpu->fault_has_error = vector_has_error(vector);
    cpu->fault_error = 0;
    longjmp(cpu->fault_jmp, 1);
}

_Noreturn void iem_raise_err(struct iem_cpu *cpu, int vector, uint32_t error_code)
{
    raise_release(cpu);
    cpu->fault_vector = vector;
    cpu->fault_has_error = true;
    cpu->fault_error = error_code;
    longjmp(cpu->fault_jmp, 1);
}

_Noreturn void iem_raise_gp0(struct iem_cpu *cpu)
{
    iem_raise_err(cpu, IEM_X_GP, 0);
}

_Noreturn void iem_raise_ud(struct iem_cpu *cpu)
{
    iem_raise(cpu, IEM_X_UD);
}

_Noreturn void iem_raise_committed(struct iem_cpu *cpu, int vector, bool has_error, uint32_t error)
{
    /* The run loop restarts at insn_rip: point it at the new task's first instruction. */
    cpu->insn_rip = cpu->s->rip;
    iem_update_mode(cpu);
    cpu->fault_vector = vector;
    cpu->fault_has_error = has_error;
    cpu->fault_error = error;
    longjmp(cpu->fault_jmp, 1);
}

/* ---- Helpers -------------------------------------------------------------------------- */

/* Fault-class exceptions push RF = 1 (SDM vol. 3A, 17.3.1.1); #DB is left to its raiser. */
static bool vector_is_fault(int vector)
{
    switch (vector) {
    case IEM_X_DE: case IEM_X_BR: case IEM_X_UD: case IEM_X_NM: case IEM_X_TS: case IEM_X_NP: case IEM_X_SS:
    case IEM_X_GP: case IEM_X_PF: case IEM_X_MF: case IEM_X_AC: case IEM_X_XM: case 20:
        return true;
    default:
        return false;
    }
}

/* ---- Real mode -------------------------------------------------------------------------- */

static void deliver_real(struct iem_cpu *cpu, int vector, uint64_t flags, uint64_t next_rip)
{
    /* SDM vol. 3A, 20.1.4 and the INT n pseudocode's REAL-ADDRESS-MODE. */
    struct cpu_state *s = cpu->s;
    uint32_t off = (uint32_t)vector * 4;
    if ((uint64_t)off + 3 > s->idtr.limit)
        iem_raise_gp0(cpu);
    uint32_t ent = (uint32_t)iem_lin_read(cpu, (uint32_t)(s->idtr.base + off), 4, IEM_ACC_SYS);
    struct iem_stack st;
    iem_stack_current(cpu, &st);
    iem_stack_check_push(cpu, &st, 6);
    iem_stack_push(cpu, &st, 2, flags & 0xffff);
    iem_stack_push(cpu, &st, 2, s->seg[CPU_CS].sel);
    iem_stack_push(cpu, &st, 2, next_rip & 0xffff);
    s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
    s->rflags &= ~(uint64_t)(IEM_F_IF | IEM_F_TF | IEM_F_AC | IEM_F_RF);
    iem_seg_set_real(cpu, CPU_CS, (uint16_t)(ent >> 16));
    s->rip = ent & 0xffff;
}

/* ---- Virtual-8086 software interrupts with VME ------------------------------------------ */

/* Bit n of the interrupt redirection bitmap, 32 bytes below the I/O map base (SDM vol. 3A, 20.3.3). */
static bool v86_int_redirected(struct iem_cpu *cpu, int vector)
{
    const struct cpu_seg *tr = &cpu->s->seg[CPU_TR];
    unsigned type = tr->attr & CPU_SEG_ATTR_TYPE_MASK;
    if (!(type & 8) || tr->limit < 0x67)
        iem_raise_gp0(cpu);
    uint32_t iomap = (uint32_t)iem_lin_read(cpu, (uint32_t)(tr->base + 0x66), 2, IEM_ACC_SYS);
    if (iomap < 32)
        iem_raise_gp0(cpu);
    uint32_t off = iomap - 32 + (uint32_t)vector / 8;
    if (off > tr->limit)
        iem_raise_gp0(cpu);
    uint8_t bits = (uint8_t)iem_lin_read(cpu, (uint32_t)(tr->base + off), 1, IEM_ACC_SYS);
    return !(bits & (1u << (vector & 7)));
}

/* INT n redirected to the virtual-8086 task's own IVT at linear 0 (SDM vol. 3A, 20.3.3.5, method 5). */
static void deliver_v86_redirect(struct iem_cpu *cpu, int vector, uint64_t flags, uint64_t next_rip)
{
    struct cpu_state *s = cpu->s;
    uint32_t ent = (uint32_t)iem_lin_read(cpu, (uint32_t)vector * 4, 4, 0);
    unsigned iopl = (unsigned)(flags >> 12) & 3;
    uint16_t image = (uint16_t)flags;
    if (iopl < 3) {
        /* IF in the image is VIF, IOPL reads as 3. */
        image = (uint16_t)((image & ~IEM_F_IF) | ((flags & IEM_F_VIF) ? IEM_F_IF : 0) | IEM_F_IOPL);
    }
    struct iem_stack st;
    iem_stack_current(cpu, &st);
    iem_stack_check_push(cpu, &st, 6);
    iem_stack_push(cpu, &st, 2, image);
    iem_stack_push(cpu, &st, 2, s->seg[CPU_CS].sel);
    iem_stack_push(cpu, &st, 2, next_rip & 0xffff);
    s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
    s->rflags &= ~(uint64_t)(IEM_F_TF | IEM_F_RF | (iopl == 3 ? IEM_F_IF : IEM_F_VIF));
    iem_seg_set_real(cpu, CPU_CS, (uint16_t)(ent >> 16));
    s->rip = ent & 0xffff;
}

/* ---- Protected mode ------------------------------------------------------------------------ */

static void deliver_prot(struct iem_cpu *cpu, int vector, enum iem_int_kind kind, bool has_error, uint32_t error,
                         uint64_t flags, uint64_t next_rip)
{
    struct cpu_state *s = cpu->s;
    bool soft = kind == IEM_INT_SOFTWARE || kind == IEM_INT_SOFT_EXC;
    uint32_t ext = soft ? 0 : 1;
    bool v86 = (flags & IEM_F_VM) != 0;

    if (v86 && kind == IEM_INT_SOFTWARE) {
        /* INT n in virtual-8086 mode is IOPL-sensitive unless VME redirects it (SDM vol. 3A, table 20-2). */
        unsigned iopl = (unsigned)(flags >> 12) & 3;
        if ((s->cr4 & IEM_CR4_VME) && v86_int_redirected(cpu, vector)) {
            deliver_v86_redirect(cpu, vector, flags, next_rip);
            return;
        }
        if (iopl < 3)
            iem_raise_gp0(cpu);
    }

    uint32_t idt_err = (uint32_t)vector * 8 + 2 + ext;
    if ((uint64_t)vector * 8 + 7 > s->idtr.limit)
        iem_raise_err(cpu, IEM_X_GP, idt_err);
    uint64_t gate = iem_lin_read(cpu, (uint32_t)(s->idtr.base + (uint32_t)vector * 8), 8, IEM_ACC_SYS);
    unsigned type = iem_desc_type(gate);
    if (iem_desc_is_s(gate) || !(type == IEM_SYS_TASK || type == IEM_SYS_INT16 || type == IEM_SYS_TRAP16 ||
                                 type == IEM_SYS_INT || type == IEM_SYS_TRAP))
        iem_raise_err(cpu, IEM_X_GP, idt_err);
    /* Software interrupts check the gate's DPL (INT1 does not: it is not "INT n"). */
    if (soft && iem_desc_dpl(gate) < cpu->cpl)
        iem_raise_err(cpu, IEM_X_GP, (uint32_t)vector * 8 + 2);
    if (!iem_desc_is_present(gate))
        iem_raise_err(cpu, IEM_X_NP, idt_err);

    if (type == IEM_SYS_TASK) {
        iem_task_switch_ext(cpu, iem_gate_sel(gate), IEM_TASK_INT, has_error, error, next_rip, ext);
        return;
    }

    unsigned gsz = (type & 8) ? 4 : 2;
    uint16_t sel = iem_gate_sel(gate);
    uint32_t target = gsz == 4 ? iem_gate_off32(gate) : (uint32_t)(gate & 0xffff);
    if ((sel & 0xfffc) == 0)
        iem_raise_err(cpu, IEM_X_GP, ext);
    uint32_t cerr = (sel & 0xfffc) | ext;
    uint64_t cd[2];
    iem_desc_fetch(cpu, sel, IEM_X_GP, ext, cd);
    if (!iem_desc_is_code(cd[0]) || iem_desc_dpl(cd[0]) > cpu->cpl)
        iem_raise_err(cpu, IEM_X_GP, cerr);
    if (!iem_desc_is_present(cd[0]))
        iem_raise_err(cpu, IEM_X_NP, cerr);
    unsigned dpl = iem_desc_dpl(cd[0]);

    struct iem_stack st;
    unsigned new_cpl = cpu->cpl;
    bool inner = !iem_desc_is_conforming(cd[0]) && dpl < cpu->cpl;
    uint16_t ss_sel = 0;
    uint64_t ssd[2] = {0, 0};
    uint64_t tss_sp = 0;
    unsigned frame = 3 + (has_error ? 1 : 0);
    if (inner) {
        /* SDM INT n: INTER-PRIVILEGE-LEVEL-INTERRUPT (and -FROM-VIRTUAL-8086-MODE: only to ring 0). */
        if (v86 && dpl != 0)
            iem_raise_err(cpu, IEM_X_GP, cerr);
        new_cpl = dpl;
        iem_tss_inner_stack(cpu, dpl, ext, &ss_sel, &tss_sp);
        iem_seg_check_new_ss(cpu, ss_sel, dpl, ext, IEM_X_TS, ssd);
        struct cpu_seg nss;
        iem_seg_from_desc(&nss, ss_sel, ssd);
        iem_stack_init(&st, &nss, tss_sp, (nss.attr & CPU_SEG_ATTR_DB) ? 4 : 2, dpl, (ss_sel & 0xfffc) | ext);
        frame += 2 + (v86 ? 4 : 0);
    } else {
        if (v86)
            iem_raise_err(cpu, IEM_X_GP, cerr);
        iem_stack_current(cpu, &st);
        st.err = ext;
    }
    iem_stack_check_push(cpu, &st, (uint64_t)frame * gsz);
    struct cpu_seg code;
    iem_seg_from_desc(&code, sel, cd);
    if (target > code.limit)
        iem_raise_err(cpu, IEM_X_GP, ext);
    iem_desc_set_accessed(cpu, sel, cd);

    if (inner) {
        if (v86) {
            iem_stack_push(cpu, &st, gsz, s->seg[CPU_GS].sel);
            iem_stack_push(cpu, &st, gsz, s->seg[CPU_FS].sel);
            iem_stack_push(cpu, &st, gsz, s->seg[CPU_DS].sel);
            iem_stack_push(cpu, &st, gsz, s->seg[CPU_ES].sel);
        }
        iem_stack_push(cpu, &st, gsz, s->seg[CPU_SS].sel);
        iem_stack_push(cpu, &st, gsz, s->gpr[CPU_RSP]);
    }
    iem_stack_push(cpu, &st, gsz, flags);
    iem_stack_push(cpu, &st, gsz, s->seg[CPU_CS].sel);
    iem_stack_push(cpu, &st, gsz, next_rip);
    if (has_error)
        iem_stack_push(cpu, &st, gsz, error);

    if (inner) {
        iem_seg_set(cpu, CPU_SS, ss_sel, ssd);
        s->gpr[CPU_RSP] = iem_stack_rsp(&st, tss_sp);
        if (v86) {
            iem_seg_set_null(cpu, CPU_ES, 0, 0);
            iem_seg_set_null(cpu, CPU_DS, 0, 0);
            iem_seg_set_null(cpu, CPU_FS, 0, 0);
            iem_seg_set_null(cpu, CPU_GS, 0, 0);
        }
    } else {
        s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
    }
    iem_seg_set_cs(cpu, sel, cd, new_cpl);
    s->rip = target;
    uint64_t clear = IEM_F_TF | IEM_F_NT | IEM_F_RF | IEM_F_VM;
    if (!(type & 1))
        clear |= IEM_F_IF; /* interrupt gate, not trap gate (SDM vol. 3A, 6.12.1.3) */
    s->rflags &= ~clear;
}

/* ---- IA-32e mode ------------------------------------------------------------------------- */

static void deliver_long(struct iem_cpu *cpu, int vector, enum iem_int_kind kind, bool has_error, uint32_t error,
                         uint64_t flags, uint64_t next_rip)
{
    /* SDM vol. 3A, 6.14: 16-byte gates, 64-bit target code, IST, RSP aligned to 16 bytes,
     * SS:RSP always pushed, SS = null with RPL = new CPL on a privilege change. */
    struct cpu_state *s = cpu->s;
    bool soft = kind == IEM_INT_SOFTWARE || kind == IEM_INT_SOFT_EXC;
    uint32_t ext = soft ? 0 : 1;
    uint32_t idt_err = (uint32_t)vector * 8 + 2 + ext;
    if ((uint64_t)vector * 16 + 15 > s->idtr.limit)
        iem_raise_err(cpu, IEM_X_GP, idt_err);
    uint64_t lo = iem_lin_read(cpu, s->idtr.base + (uint64_t)vector * 16, 8, IEM_ACC_SYS);
    uint64_t hi = iem_lin_read(cpu, s->idtr.base + (uint64_t)vector * 16 + 8, 8, IEM_ACC_SYS);
    unsigned type = iem_desc_type(lo);
    if (iem_desc_is_s(lo) || (type != IEM_SYS_INT && type != IEM_SYS_TRAP))
        iem_raise_err(cpu, IEM_X_GP, idt_err);
    if (soft && iem_desc_dpl(lo) < cpu->cpl)
        iem_raise_err(cpu, IEM_X_GP, (uint32_t)vector * 8 + 2);
    if (!iem_desc_is_present(lo))
        iem_raise_err(cpu, IEM_X_NP, idt_err);

    uint16_t sel = iem_gate_sel(lo);
    uint64_t target = iem_gate_off32(lo) | ((hi & 0xffffffffu) << 32);
    unsigned ist = (unsigned)(lo >> 32) & 7;
    if ((sel & 0xfffc) == 0)
        iem_raise_err(cpu, IEM_X_GP, ext);
    uint32_t cerr = (sel & 0xfffc) | ext;
    uint64_t cd[2];
    iem_desc_fetch(cpu, sel, IEM_X_GP, ext, cd);
    if (!iem_desc_is_code(cd[0]) || iem_desc_dpl(cd[0]) > cpu->cpl)
        iem_raise_err(cpu, IEM_X_GP, cerr);
    if (!iem_desc_is_present(cd[0]))
        iem_raise_err(cpu, IEM_X_NP, cerr);
    if (!iem_desc_is_l(cd[0]) || iem_desc_is_db(cd[0]))
        iem_raise_err(cpu, IEM_X_GP, cerr);
    unsigned dpl = iem_desc_dpl(cd[0]);
    bool inner = !iem_desc_is_conforming(cd[0]) && dpl < cpu->cpl;
    unsigned new_cpl = inner ? dpl : cpu->cpl;

    uint64_t rsp = s->gpr[CPU_RSP];
    if (ist)
        rsp = iem_tss_read(cpu, 0x24 + (ist - 1) * 8, 8, ext);
    else if (inner)
        rsp = iem_tss_read(cpu, 4 + dpl * 8, 8, ext);
    rsp &= ~0xfULL;
    if (!iem_is_canonical(target))
        iem_raise_err(cpu, IEM_X_GP, ext);

    struct iem_stack st;
    iem_stack_init(&st, &s->seg[CPU_SS], rsp, 8, new_cpl, ext);
    unsigned frame = 5 + (has_error ? 1 : 0);
    iem_stack_check_push(cpu, &st, (uint64_t)frame * 8);
    iem_desc_set_accessed(cpu, sel, cd);
    iem_stack_push(cpu, &st, 8, s->seg[CPU_SS].sel);
    iem_stack_push(cpu, &st, 8, s->gpr[CPU_RSP]);
    iem_stack_push(cpu, &st, 8, flags);
    iem_stack_push(cpu, &st, 8, s->seg[CPU_CS].sel);
    iem_stack_push(cpu, &st, 8, next_rip);
    if (has_error)
        iem_stack_push(cpu, &st, 8, error);

    if (inner)
        iem_seg_set_null(cpu, CPU_SS, (uint16_t)new_cpl, new_cpl);
    s->gpr[CPU_RSP] = st.sp;
    iem_seg_set_cs(cpu, sel, cd, new_cpl);
    s->rip = target;
    uint64_t clear = IEM_F_TF | IEM_F_NT | IEM_F_RF | IEM_F_VM;
    if (!(type & 1))
        clear |= IEM_F_IF;
    s->rflags &= ~clear;
}

/* ---- Entry ---------------------------------------------------------------------------------- */

void iem_deliver(struct iem_cpu *cpu, int vector, enum iem_int_kind kind, bool has_error, uint32_t error,
                 uint64_t next_rip)
{
    struct cpu_state *s = cpu->s;
    vector &= 0xff;
    s->halted = false;
    /* CR2 is loaded when the page fault is recognised, before its delivery (SDM vol. 3A, 6.15 #PF). */
    if (vector == IEM_X_PF && kind == IEM_INT_EXCEPTION)
        s->cr2 = cpu->fault_cr2;

    uint64_t flags = s->rflags | 2;
    if (kind == IEM_INT_SOFTWARE || kind == IEM_INT_SOFT_EXC || kind == IEM_INT_ICEBP)
        flags &= ~(uint64_t)IEM_F_RF;
    else if (kind == IEM_INT_EXCEPTION && vector_is_fault(vector))
        flags |= IEM_F_RF;

    if (!(s->cr0 & IEM_CR0_PE))
        deliver_real(cpu, vector, flags, next_rip);
    else if (s->efer & IEM_EFER_LMA)
        deliver_long(cpu, vector, kind, has_error, error, flags, next_rip);
    else
        deliver_prot(cpu, vector, kind, has_error, error, flags, next_rip);

    /* An NMI blocks further NMIs until the next IRET (SDM vol. 3A, 6.7.1). */
    if (vector == IEM_X_NMI && kind == IEM_INT_EXTERNAL)
        s->nmi_masked = true;
    /* Entering the debug exception handler clears DR7.GD, so the handler may use the debug registers (SDM vol. 3B, 17.2.4). */
    if (vector == IEM_X_DB && kind == IEM_INT_EXCEPTION)
        s->dr[7] &= ~(uint64_t)IEM_DR7_GD;
    iem_update_mode(cpu);
}

/* ---- Local APIC events (NMI, INIT, SIPI) ------------------------------------------------ */

bool iem_intc_events(struct iem_cpu *cpu)
{
    struct cpu_state *s = cpu->s;
    const struct vm_intc *intc = vm_get_intc(cpu->vm);
    uint8_t sipi_vector = 0;
    unsigned ev = intc->take_events ? intc->take_events(intc->opaque, cpu->vcpu, &sipi_vector) : 0;
    bool changed = false;
    if (ev & VM_INTC_EVENT_INIT) {
        struct cpu_fpu fpu = s->fpu;
        uint64_t apic_base = s->apic_base, pat = s->pat, misc = s->misc_enable;
        cpu_state_reset(s);
        s->fpu = fpu;
        s->pat = pat;
        s->misc_enable = misc;
        s->apic_base = apic_base;
        cpu->nmi_pending = false;
        /* The boot processor restarts at the reset vector; the others wait for a start-up IPI. */
        s->wait_for_sipi = !(apic_base & CPU_APIC_BASE_BSP);
        iem_update_mode(cpu);
        iem_tlb_flush(cpu, true);
        changed = true;
    }
    if ((ev & VM_INTC_EVENT_SIPI) && s->wait_for_sipi) {
        /* Real mode at vector:0000 (SDM vol. 3A, 8.4.4.1). */
        s->seg[CPU_CS].sel = (uint16_t)(sipi_vector << 8);
        s->seg[CPU_CS].base = (uint64_t)sipi_vector << 12;
        s->rip = 0;
        s->wait_for_sipi = false;
        s->halted = false;
        iem_update_mode(cpu);
        changed = true;
    }
    if (ev & VM_INTC_EVENT_NMI)
        cpu->nmi_pending = true;
    return changed;
}
