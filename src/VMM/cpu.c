/* cpu.c - backend-independent vCPU state helpers: the architectural reset state of the BSP and the application processors. */
#include <string.h>

#include "vireo/cpu.h"

static void seg_reset(struct cpu_seg *seg, uint16_t sel, uint64_t base, uint32_t attr)
{
    seg->sel = sel;
    seg->base = base;
    seg->limit = 0xffff;
    seg->attr = attr;
}

/* Intel SDM vol. 3A, 9.1.1 "Processor State After Reset" (Table 9-1). */
void cpu_state_reset(struct cpu_state *state)
{
    memset(state, 0, sizeof(*state));
    state->gpr[CPU_RDX] = 0x600; /* family 6 signature in EDX */
    state->rip = 0xfff0;
    state->rflags = CPU_RFLAGS_FIXED;
    /* Present, accessed read/write data and execute/read code segments. */
    for (int i = 0; i < CPU_SEG_COUNT; i++)
        seg_reset(&state->seg[i], 0, 0, CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0x3);
    seg_reset(&state->seg[CPU_CS], 0xf000, 0xffff0000, CPU_SEG_ATTR_P | CPU_SEG_ATTR_S | 0xb);
    seg_reset(&state->seg[CPU_LDTR], 0, 0, CPU_SEG_ATTR_P | 0x2);
    seg_reset(&state->seg[CPU_TR], 0, 0, CPU_SEG_ATTR_P | 0xb);
    state->gdtr.limit = 0xffff;
    state->idtr.limit = 0xffff;
    state->cr0 = CPU_CR0_ET | CPU_CR0_NW | CPU_CR0_CD;
    state->dr[6] = 0xffff0ff0;
    state->dr[7] = 0x400;
    state->xcr0 = 1;
    state->apic_base = 0xfee00000 | (1u << 11) | CPU_APIC_BASE_BSP; /* enabled, BSP */
    state->pat = 0x0007040600070406ULL;
    state->misc_enable = CPU_MISC_ENABLE_FAST_STRINGS; /* the SDM's default (vol. 4, table 2-2) */
    state->fpu.fcw = 0x37f;
    state->fpu.mxcsr = 0x1f80;
    state->fpu.mxcsr_mask = 0xffff;
}

void cpu_state_reset_vcpu(struct cpu_state *state, unsigned index)
{
    cpu_state_reset(state);
    if (index == 0)
        return;
    /* The MP initialisation protocol picked vCPU 0 as the BSP; the others wait for INIT-SIPI-SIPI. */
    state->apic_base &= ~(uint64_t)CPU_APIC_BASE_BSP;
    state->wait_for_sipi = true;
}
