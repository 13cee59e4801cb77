/* iem-task.c - hardware task switches through 32- and 16-bit TSSs (JMP, CALL, IRET, task gates). */

/*
 * Intel SDM vol. 3A, 7.3 "Task Switching", steps 1-13, and table 7-1 for the checks
 * and their exceptions.  Up to the commit point (step 10, loading TR) every fault is
 * reported in the old task with nothing changed but memory; from there on faults are
 * reported in the new task's context: insn_rip is moved to the new task's EIP so the
 * run loop restarts there, and the mode is recomputed before each raise.
 */
#include "iem-sys.h"

/* The dynamic fields of a TSS (SDM vol. 3A, figures 7-2 and 7-11). */
struct tss_image {
    uint32_t eip, eflags, cr3;
    uint32_t gpr[8];
    uint16_t sel[6]; /* ES, CS, SS, DS, FS, GS */
    uint16_t ldt;
    bool trap;
};

static uint64_t tss_addr(const struct cpu_seg *tss, uint32_t off)
{
    return (uint32_t)(tss->base + off);
}

static void tss_load_image(struct iem_cpu *cpu, const struct cpu_seg *tss, bool is32, struct tss_image *img)
{
    if (is32) {
        img->cr3 = (uint32_t)iem_lin_read(cpu, tss_addr(tss, 0x1c), 4, IEM_ACC_SYS);
        img->eip = (uint32_t)iem_lin_read(cpu, tss_addr(tss, 0x20), 4, IEM_ACC_SYS);
        img->eflags = (uint32_t)iem_lin_read(cpu, tss_addr(tss, 0x24), 4, IEM_ACC_SYS);
        for (unsigned i = 0; i < 8; i++)
            img->gpr[i] = (uint32_t)iem_lin_read(cpu, tss_addr(tss, 0x28 + 4 * i), 4, IEM_ACC_SYS);
        for (unsigned i = 0; i < 6; i++)
            img->sel[i] = (uint16_t)iem_lin_read(cpu, tss_addr(tss, 0x48 + 4 * i), 2, IEM_ACC_SYS);
        img->ldt = (uint16_t)iem_lin_read(cpu, tss_addr(tss, 0x60), 2, IEM_ACC_SYS);
        img->trap = iem_lin_read(cpu, tss_addr(tss, 0x64), 1, IEM_ACC_SYS) & 1;
    } else {
        img->cr3 = 0;
        img->eip = (uint16_t)iem_lin_read(cpu, tss_addr(tss, 0x0e), 2, IEM_ACC_SYS);
        img->eflags = (uint16_t)iem_lin_read(cpu, tss_addr(tss, 0x10), 2, IEM_ACC_SYS);
        for (unsigned i = 0; i < 8; i++)
            img->gpr[i] = (uint16_t)iem_lin_read(cpu, tss_addr(tss, 0x12 + 2 * i), 2, IEM_ACC_SYS);
        for (unsigned i = 0; i < 4; i++)
            img->sel[i] = (uint16_t)iem_lin_read(cpu, tss_addr(tss, 0x22 + 2 * i), 2, IEM_ACC_SYS);
        img->sel[CPU_FS] = img->sel[CPU_GS] = 0;
        img->ldt = (uint16_t)iem_lin_read(cpu, tss_addr(tss, 0x2a), 2, IEM_ACC_SYS);
        img->trap = false;
    }
}

/* Step 8: the old task's dynamic state into its TSS (not CR3, LDTR or the back link). */
static void tss_save_state(struct iem_cpu *cpu, const struct cpu_seg *tss, bool is32, uint64_t eip,
                           uint64_t eflags)
{
    const struct cpu_state *s = cpu->s;
    if (is32) {
        iem_lin_write(cpu, tss_addr(tss, 0x20), 4, (uint32_t)eip, IEM_ACC_SYS);
        iem_lin_write(cpu, tss_addr(tss, 0x24), 4, (uint32_t)eflags, IEM_ACC_SYS);
        for (unsigned i = 0; i < 8; i++)
            iem_lin_write(cpu, tss_addr(tss, 0x28 + 4 * i), 4, (uint32_t)s->gpr[i], IEM_ACC_SYS);
        for (unsigned i = 0; i < 6; i++)
            iem_lin_write(cpu, tss_addr(tss, 0x48 + 4 * i), 2, s->seg[i].sel, IEM_ACC_SYS);
    } else {
        iem_lin_write(cpu, tss_addr(tss, 0x0e), 2, (uint16_t)eip, IEM_ACC_SYS);
        iem_lin_write(cpu, tss_addr(tss, 0x10), 2, (uint16_t)eflags, IEM_ACC_SYS);
        for (unsigned i = 0; i < 8; i++)
            iem_lin_write(cpu, tss_addr(tss, 0x12 + 2 * i), 2, (uint16_t)s->gpr[i], IEM_ACC_SYS);
        for (unsigned i = 0; i < 4; i++)
            iem_lin_write(cpu, tss_addr(tss, 0x22 + 2 * i), 2, s->seg[i].sel, IEM_ACC_SYS);
    }
}

/* Reads a descriptor of the new task after the commit point: every problem is #TS(sel | ext). */
static void task_desc(struct iem_cpu *cpu, uint16_t sel, uint32_t ext, uint64_t d[2])
{
    uint32_t err = (sel & 0xfffc) | ext;
    uint64_t base;
    uint32_t limit;
    if (sel & 4) {
        const struct cpu_seg *ldt = &cpu->s->seg[CPU_LDTR];
        if (ldt->attr & CPU_SEG_ATTR_UNUSABLE)
            iem_raise_committed(cpu, IEM_X_TS, true, err);
        base = ldt->base;
        limit = ldt->limit;
    } else {
        base = cpu->s->gdtr.base;
        limit = cpu->s->gdtr.limit;
    }
    if ((uint64_t)(sel & 0xfff8) + 7 > limit)
        iem_raise_committed(cpu, IEM_X_TS, true, err);
    d[0] = iem_lin_read(cpu, (uint32_t)(base + (sel & 0xfff8)), 8, IEM_ACC_SYS);
    d[1] = 0;
}

/* Step 12: LDTR, then CS, SS and the data segments of a protected-mode task, with table 7-1's checks. */
static void task_load_segments(struct iem_cpu *cpu, const struct tss_image *img, uint32_t ext)
{
    struct cpu_state *s = cpu->s;
    uint64_t d[2];

    if ((img->ldt & 0xfffc) == 0) {
        iem_seg_set_null(cpu, CPU_LDTR, img->ldt, 0);
    } else {
        uint32_t err = (img->ldt & 0xfffc) | ext;
        if (img->ldt & 4)
            iem_raise_committed(cpu, IEM_X_TS, true, err);
        task_desc(cpu, img->ldt, ext, d);
        if (iem_desc_is_s(d[0]) || iem_desc_type(d[0]) != IEM_SYS_LDT || !iem_desc_is_present(d[0]))
            iem_raise_committed(cpu, IEM_X_TS, true, err);
        iem_seg_from_desc(&s->seg[CPU_LDTR], img->ldt, d);
    }
    if (img->eflags & IEM_F_VM) {
        for (unsigned i = 0; i < 6; i++)
            iem_seg_set_real(cpu, i, img->sel[i]);
        return;
    }

    uint16_t cs = img->sel[CPU_CS];
    unsigned cpl = cs & 3;
    uint32_t err = (cs & 0xfffc) | ext;
    if ((cs & 0xfffc) == 0)
        iem_raise_committed(cpu, IEM_X_TS, true, ext);
    task_desc(cpu, cs, ext, d);
    unsigned dpl = iem_desc_dpl(d[0]);
    if (!iem_desc_is_code(d[0]) || (iem_desc_is_conforming(d[0]) ? dpl > cpl : dpl != cpl))
        iem_raise_committed(cpu, IEM_X_TS, true, err);
    if (!iem_desc_is_present(d[0]))
        iem_raise_committed(cpu, IEM_X_NP, true, err);
    iem_desc_set_accessed(cpu, cs, d);
    iem_seg_set_cs(cpu, cs, d, cpl);

    uint16_t ss = img->sel[CPU_SS];
    err = (ss & 0xfffc) | ext;
    if ((ss & 0xfffc) == 0)
        iem_raise_committed(cpu, IEM_X_TS, true, ext);
    task_desc(cpu, ss, ext, d);
    if ((ss & 3) != cpl || !iem_desc_is_writable_data(d[0]) || iem_desc_dpl(d[0]) != cpl)
        iem_raise_committed(cpu, IEM_X_TS, true, err);
    if (!iem_desc_is_present(d[0]))
        iem_raise_committed(cpu, IEM_X_SS, true, err);
    iem_desc_set_accessed(cpu, ss, d);
    iem_seg_set(cpu, CPU_SS, ss, d);
    iem_update_mode(cpu);

    static const unsigned data_segs[] = {CPU_ES, CPU_DS, CPU_FS, CPU_GS};
    for (unsigned i = 0; i < 4; i++) {
        unsigned seg = data_segs[i];
        uint16_t sel = img->sel[seg];
        if ((sel & 0xfffc) == 0) {
            iem_seg_set_null(cpu, seg, sel, 0);
            continue;
        }
        err = (sel & 0xfffc) | ext;
        task_desc(cpu, sel, ext, d);
        dpl = iem_desc_dpl(d[0]);
        if (!iem_desc_is_readable(d[0]) ||
            (!iem_desc_is_conforming(d[0]) && (dpl < cpl || dpl < (sel & 3u))))
            iem_raise_committed(cpu, IEM_X_TS, true, err);
        if (!iem_desc_is_present(d[0]))
            iem_raise_committed(cpu, IEM_X_NP, true, err);
        iem_desc_set_accessed(cpu, sel, d);
        iem_seg_set(cpu, seg, sel, d);
    }
}

void iem_task_switch_ext(struct iem_cpu *cpu, uint16_t tss_sel, enum iem_task_reason why, bool has_error,
                         uint32_t error, uint64_t next_rip, uint32_t ext)
{
    struct cpu_state *s = cpu->s;
    uint32_t err = (tss_sel & 0xfffc) | ext;
    /* Steps 1-4: the new TSS descriptor (a back link that is not a busy TSS gives #TS, others #GP). */
    int sel_vec = why == IEM_TASK_IRET ? IEM_X_TS : IEM_X_GP;
    if (tss_sel & 4)
        iem_raise_err(cpu, sel_vec, err);
    uint64_t nd[2];
    iem_desc_fetch(cpu, tss_sel, sel_vec, ext, nd);
    unsigned type = iem_desc_type(nd[0]);
    bool is_tss = !iem_desc_is_s(nd[0]) && (type == IEM_SYS_TSS16_AVAIL || type == IEM_SYS_TSS16_BUSY ||
                                            type == IEM_SYS_TSS_AVAIL || type == IEM_SYS_TSS_BUSY);
    if (!is_tss)
        iem_raise_err(cpu, sel_vec, err);
    bool busy = (type & 2) != 0;
    if (why == IEM_TASK_IRET ? !busy : busy)
        iem_raise_err(cpu, sel_vec, err);
    if (!iem_desc_is_present(nd[0]))
        iem_raise_err(cpu, IEM_X_NP, err);
    bool new32 = (type & 8) != 0;
    struct cpu_seg ntss;
    iem_seg_from_desc(&ntss, tss_sel, nd);
    if (ntss.limit < (new32 ? 0x67u : 0x2bu))
        iem_raise_err(cpu, IEM_X_TS, err);

    /* Steps 5-9: read the new task, save the old one, busy flags and the back link. */
    struct tss_image img;
    tss_load_image(cpu, &ntss, new32, &img);
    struct cpu_seg otss = s->seg[CPU_TR];
    bool old32 = (otss.attr & 8) != 0;
    uint64_t eflags = s->rflags;
    if (why == IEM_TASK_IRET)
        eflags &= ~(uint64_t)IEM_F_NT;
    tss_save_state(cpu, &otss, old32, next_rip, eflags);
    if (why == IEM_TASK_JMP || why == IEM_TASK_IRET)
        iem_desc_set_busy(cpu, otss.sel, false, NULL);
    if (why == IEM_TASK_CALL || why == IEM_TASK_INT) {
        iem_lin_write(cpu, tss_addr(&ntss, 0), 2, otss.sel, IEM_ACC_SYS);
        img.eflags |= IEM_F_NT;
    }
    if (why != IEM_TASK_IRET)
        iem_desc_set_busy(cpu, tss_sel, true, &nd[0]);

    /* Step 10 (commit): TR, CR0.TS; then the new task's registers. */
    iem_seg_from_desc(&s->seg[CPU_TR], tss_sel, nd);
    s->seg[CPU_TR].attr |= 2; /* busy */
    s->cr0 |= IEM_CR0_TS;
    if (new32 && (s->cr0 & IEM_CR0_PG)) {
        s->cr3 = img.cr3;
        iem_tlb_flush(cpu, false);
    }
    s->rflags = (new32 ? img.eflags & 0x3f7fd7u : img.eflags & 0x7fd7u) | 2;
    for (unsigned i = 0; i < 8; i++) {
        if (new32)
            s->gpr[i] = img.gpr[i];
        else
            s->gpr[i] = (s->gpr[i] & ~0xffffULL) | img.gpr[i];
    }
    s->rip = img.eip;
    /* Selectors first, so a fault while loading the descriptors is reported at the new CPL. */
    for (unsigned i = 0; i < 6; i++)
        s->seg[i].sel = img.sel[i];
    s->seg[CPU_LDTR].sel = img.ldt;
    unsigned new_cpl = (img.eflags & IEM_F_VM) ? 3 : (img.sel[CPU_CS] & 3u);
    s->seg[CPU_SS].attr = (s->seg[CPU_SS].attr & ~(uint32_t)CPU_SEG_ATTR_DPL_MASK) |
                          (new_cpl << CPU_SEG_ATTR_DPL_SHIFT);
    cpu->insn_rip = s->rip;
    iem_update_mode(cpu);

    /* Steps 11-12: descriptors of the new task. */
    task_load_segments(cpu, &img, ext);
    iem_update_mode(cpu);

    /* An exception delivered through a task gate pushes its error code on the new task's stack. */
    if (has_error) {
        struct iem_stack st;
        iem_stack_current(cpu, &st);
        st.err = ext;
        unsigned size = new32 ? 4 : 2;
        iem_stack_check_push(cpu, &st, size);
        iem_stack_push(cpu, &st, size, error);
        s->gpr[CPU_RSP] = iem_stack_rsp(&st, s->gpr[CPU_RSP]);
    }
    if (s->rip > s->seg[CPU_CS].limit)
        iem_raise_committed(cpu, IEM_X_GP, true, 0);
    /* The TSS's T flag: #DB with DR6.BT once the switch completes (SDM vol. 3A, 17.2.3). */
    if (img.trap) {
        s->dr[6] |= 1u << 15;
        iem_raise_committed(cpu, IEM_X_DB, false, 0);
    }
}

void iem_task_switch(struct iem_cpu *cpu, uint16_t tss_sel, enum iem_task_reason why, bool has_error,
                     uint32_t error, uint64_t next_rip)
{
    iem_task_switch_ext(cpu, tss_sel, why, has_error, error, next_rip, 0);
}
