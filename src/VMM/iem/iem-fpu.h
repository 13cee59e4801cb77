/* iem-fpu.h - the interpreter's x87 family: helpers shared by the iem-fpu*.c files and their handlers. */
#ifndef VIREO_IEM_FPU_H
#define VIREO_IEM_FPU_H

/*
 * State: struct cpu_fpu is the FXSAVE image (SDM vol. 1, 10.5.1, Table 10-2): st[i] holds
 * ST(i) (stack order, as FXSAVE and KVM's xsave area store it), ftw is the abridged tag byte
 * whose bit p is the tag of PHYSICAL register p (1 = not empty), TOP lives in fsw bits 11-13.
 * fip/fdp are the raw 8 bytes at FXSAVE offsets 8 and 16: outside 64-bit mode the 32-bit
 * offset with the selector in bits 32-47, in 64-bit mode the 64-bit RIP / data offset.
 *
 * Results: every x87 instruction that computes (arithmetic, loads, stores, compares,
 * transcendentals, stack manipulation) runs on the host as the very same encoding, on a copy
 * of the guest's x87 state loaded with FXRSTOR (so the guest's precision, rounding, exception
 * masks, tags and TOP are all in effect) and read back with FXSAVE; a memory operand is
 * redirected to a local buffer.  Masked and unmasked responses, C0-C3, stack faults and the
 * Intel transcendental results are therefore the hardware's own.  The guest's sticky
 * exception flags are kept out of the host (else the host would take #MF) and OR-ed back.
 */

#include <stdbool.h>
#include <stdint.h>

#include "iem-internal.h"

/* FSW bits (SDM vol. 1, 8.1.3). */
#define IEM_FSW_IE  0x0001u
#define IEM_FSW_DE  0x0002u
#define IEM_FSW_ZE  0x0004u
#define IEM_FSW_OE  0x0008u
#define IEM_FSW_UE  0x0010u
#define IEM_FSW_PE  0x0020u
#define IEM_FSW_SF  0x0040u
#define IEM_FSW_ES  0x0080u
#define IEM_FSW_C0  0x0100u
#define IEM_FSW_C1  0x0200u
#define IEM_FSW_C2  0x0400u
#define IEM_FSW_TOP 0x3800u
#define IEM_FSW_C3  0x4000u
#define IEM_FSW_B   0x8000u
#define IEM_FSW_XCPT 0x003fu  /* the six exception flags that have masks */
#define IEM_FSW_CC  (IEM_FSW_C0 | IEM_FSW_C1 | IEM_FSW_C2 | IEM_FSW_C3)
#define IEM_FSW_TOP_SHIFT 11

/* FCW (SDM vol. 1, 8.1.5): bit 6 reads as 1, bits 13-15 as 0 (checked on the host). */
#define IEM_FCW_MASKS 0x003fu
#define IEM_FCW_PC    0x0300u
#define IEM_FCW_RC    0x0c00u
#define IEM_FCW_WRITABLE 0x1f3fu
#define IEM_FCW_ONES  0x0040u
#define IEM_FCW_INIT  0x037fu

/* The 512-byte FXSAVE/FXRSTOR image the host runs an instruction on (SDM vol. 1, Table 10-2):
 * only the x87 part (bytes 0-159) and MXCSR are meaningful. */
struct iem_fpu_fx {
    _Alignas(16) uint8_t b[512];
};

/* ---- State helpers (iem-fpu.c) ---------------------------------------------------- */

static inline unsigned iem_fpu_top(const struct cpu_fpu *f)
{
    return (f->fsw & IEM_FSW_TOP) >> IEM_FSW_TOP_SHIFT;
}

/* ES and B follow the unmasked exception flags (SDM vol. 1, 8.1.3.7). */
static inline uint16_t iem_fpu_fsw_summary(uint16_t fsw, uint16_t fcw)
{
    if (fsw & IEM_FSW_XCPT & ~fcw)
        return fsw | IEM_FSW_ES | IEM_FSW_B;
    return fsw & (uint16_t)~(IEM_FSW_ES | IEM_FSW_B);
}

/* The full 16-bit tag word (2 bits per physical register, SDM vol. 1, 8.1.7) computed from the
 * abridged tags and the register contents, as FSTENV/FSAVE store it (SDM vol. 2A, FXSAVE,
 * "recreating FSAVE format"). */
uint16_t iem_fpu_tags_full(const struct cpu_fpu *f);
/* The abridged tag byte from a full tag word: only "empty" (11b) survives (FLDENV/FRSTOR). */
uint8_t iem_fpu_tags_abridge(uint16_t ftw);

/* The checks every x87 instruction makes first: LOCK -> #UD, CR0.EM or CR0.TS -> #NM, and for
 * the waiting instructions (all but FNINIT/FNCLEX/FNSTCW/FNSTSW/FNSTENV/FNSAVE) a pending
 * unmasked exception -> #MF (CR0.NE=1). */
void iem_fpu_enter(struct iem_cpu *cpu, const struct iem_insn *in, bool waiting);
/* A pending unmasked x87 exception at a waiting instruction (FWAIT, x87, MMX): #MF with
 * CR0.NE=1; with CR0.NE=0 the chip would assert FERR# (IRQ13 on a PC board) and go on. */
void iem_fpu_pending(struct iem_cpu *cpu);
/* Records FOP, FIP and (with a memory operand) FDP for a non-control instruction (SDM vol. 1,
 * 8.1.8 and 8.1.9). */
void iem_fpu_record(struct iem_cpu *cpu, const struct iem_insn *in, uint8_t opc, uint8_t modrm);
/* The state FNINIT leaves (SDM vol. 2A, FINIT/FNINIT): also what FNSAVE leaves behind. */
void iem_fpu_reset(struct cpu_fpu *f);
/* The x87 encoding (escape byte D8-DF and ModRM) of the executing instruction. */
void iem_fpu_encoding(const struct iem_insn *in, uint8_t *opc, uint8_t *modrm);

/* ---- Host execution (iem-fpu-host.c) ---------------------------------------------- */

/* Runs the x87 instruction (opc, modrm) on the host against the image (in/out); mem points at
 * the memory operand's buffer (at least 10 bytes); rflags (may be NULL) carries the guest's
 * arithmetic flags in and out for FCMOVcc/FCOMI.  Returns false for an encoding that is not
 * a valid x87 instruction (the caller raises #UD). */
bool iem_fpu_host_exec(struct iem_fpu_fx *img, uint8_t opc, uint8_t modrm, void *mem, uint64_t *rflags);
/* Builds the host image from the guest state (exception flags cleared) and commits one back. */
void iem_fpu_to_image(const struct cpu_fpu *f, struct iem_fpu_fx *img);
void iem_fpu_from_image(struct cpu_fpu *f, const struct iem_fpu_fx *img);

/* ---- Handlers ----------------------------------------------------------------------- */

/* iem-fpu-host.c: every x87 instruction the host computes. */
int iem_fpu_op(struct iem_cpu *cpu, const struct iem_insn *in);

/* iem-fpu-ctl.c: control instructions and the environment formats. */
int iem_fpu_fninit(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_fnclex(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_fldcw(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_fnstcw(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_fnstsw(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_fldenv(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_fnstenv(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_frstor(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_fnsave(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_fwait(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_legacy_nop(struct iem_cpu *cpu, const struct iem_insn *in);

/* Environment images (FSTENV/FLDENV, SDM vol. 1, 8.1.10): size 14 (16-bit operand size) or 28
 * bytes; real selects the real-address/virtual-8086 layout.  Exposed for the tests. */
unsigned iem_fpu_env_store(const struct cpu_fpu *f, uint8_t *buf, bool op16, bool real, bool long64);
void iem_fpu_env_load(struct cpu_fpu *f, const uint8_t *buf, bool op16, bool real);

/* iem-fpu-fxsr.c: FXSAVE/FXRSTOR (SDM vol. 2A/2B). */
int iem_fpu_fxsave(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_fpu_fxrstor(struct iem_cpu *cpu, const struct iem_insn *in);
/* The 512-byte image: xmm_count is 0 (CR4.OSFXSR clear), 8 or 16; rex_w selects the 64-bit
 * FIP/FDP layout.  fxsr_image_load returns false when MXCSR has reserved bits set. */
void iem_fpu_fxsave_image(const struct cpu_fpu *f, uint8_t *img, unsigned xmm_count, bool rex_w);
bool iem_fpu_fxrstor_image(struct cpu_fpu *f, const uint8_t *img, unsigned xmm_count, bool rex_w);

/* iem-mmx.c: EMMS and the MMX-only mnemonics. */
int iem_mmx_emms(struct iem_cpu *cpu, const struct iem_insn *in);
int iem_mmx_handler(struct iem_cpu *cpu, const struct iem_insn *in);

#endif
