/* iem-dbg.h - the interpreter's debug-register breakpoints (DR0-DR3, DR6, DR7): what the core and the memory path call. */
#ifndef VIREO_IEM_DBG_H
#define VIREO_IEM_DBG_H

#include "iem-core.h"

/* DR6 and DR7 bits (SDM vol. 3B, 17.2.3 and 17.2.4). */
#define IEM_DR6_BD (1u << 13)
#define IEM_DR6_BS (1u << 14)
#define IEM_DR7_GD (1u << 13)

/*
 * Recomputes the core's breakpoint summary (dbg_exec, dbg_data_mask) from DR7, DR0-DR3 and
 * CR4.DE.  It flushes nothing: callers that change what pages are watched flush the TLB.
 */
void iem_dbg_sync(struct iem_core *core);
/* After a write to DR0-DR3 or DR7 (MOV DR, state loads): the summary, and a full TLB flush. */
void iem_dbg_changed(struct iem_cpu *cpu);
/* Whether accesses of kind (IEM_ACC_READ/WRITE) to the linear page may hit an enabled data breakpoint. */
bool iem_dbg_page_watched(const struct iem_core *core, uint64_t lin_page, int kind);
/* Records the data breakpoints an access of [lin, lin+size) hits (slow memory path, dbg_data_mask set). */
void iem_dbg_data_access(struct iem_core *core, uint64_t lin, unsigned size, bool write);
/* Before an instruction at CS:RIP runs with EFLAGS.RF clear: raises the #DB fault of an instruction breakpoint. */
void iem_dbg_insn_check(struct iem_core *core);
/*
 * After an instruction completed: the DR6 B0-B3 bits of the data and I/O breakpoints it hit
 * (0 when none), which the caller turns into one trap-class #DB.  rcx_before is RCX before the
 * instruction (a REP string I/O instruction with a zero count does no I/O).
 */
uint32_t iem_dbg_insn_done(struct iem_core *core, const struct iem_insn *in, uint64_t rcx_before);

#endif
