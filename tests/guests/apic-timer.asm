; apic-timer.asm - local APIC timer in periodic, one-shot and TSC-deadline modes, interrupts through the IDT
; in 32-bit protected mode with EOI (SDM vol. 3A, 10.5.4).  Only for backends that show the APIC model.
;
; Exit codes: 0 all checks passed
;   1 CPUID reports no local APIC            2 IA32_APIC_BASE is not 0xFEE00000 with the enable bit
;   3 periodic: 20 ticks came in less than 19 ms of TSC time
;   4 periodic: 20 ticks took more than 2 s of TSC time
;   5 one-shot: a second interrupt arrived, or the current count did not reach 0
;   6 an unexpected interrupt or exception arrived
;   8 TSC-deadline: the interrupt came before the deadline
;   9 the APIC version register is not an integrated APIC (0x1x)
;  10 a self-IPI with NMI delivery mode did not reach the NMI handler (vector 2)
%include "vireo-guest.inc"

%define APIC          0xfee00000
%define APIC_VER      0x030
%define APIC_TPR      0x080
%define APIC_EOI      0x0b0
%define APIC_SVR      0x0f0
%define APIC_LVT_TMR  0x320
%define APIC_TMR_INIT 0x380
%define APIC_TMR_CUR  0x390
%define APIC_TMR_DIV  0x3e0
%define TIMER_VECTOR  0x40
%define TSC_PER_MS    2000000          ; the software CPU's TSC runs at 2 GHz
%define IDT_BASE      0x1000
%define var_ticks     0x0900
%define var_nmis      0x0904
%define APIC_ICR_LO   0x300
%define CODE_SEL      0x08
%define DATA_SEL      0x10

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com_init
    mov si, msg_start
    call com_puts
    mov eax, 1
    cpuid
    test edx, 1 << 9
    jnz .have_apic
    GUEST_EXIT 1
.have_apic:
    ; IDT: every vector to 'unexpected', the timer vector to 'tick'.
    mov di, IDT_BASE
    mov cx, 256
.idt:
    mov word [di], unexpected
    mov word [di + 2], CODE_SEL
    mov word [di + 4], 0x8e00
    mov word [di + 6], 0x000f          ; handlers live at 0x000F0000 + offset
    add di, 8
    loop .idt
    mov word [IDT_BASE + TIMER_VECTOR * 8], tick
    mov word [IDT_BASE + 0xff * 8], spurious
    mov word [IDT_BASE + 2 * 8], nmi
    lgdt [cs:gdt_ptr]
    lidt [cs:idt_ptr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword CODE_SEL:(0xf0000 + pm_entry)

    bits 32
pm_entry:
    mov ax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7000
    mov ecx, 0x1b                      ; IA32_APIC_BASE
    rdmsr
    and eax, 0xfffff800
    cmp eax, APIC | (1 << 11)
    je .base_ok
    mov al, 2
    jmp exit32
.base_ok:
    mov eax, [APIC + APIC_VER]
    and eax, 0xf0
    cmp eax, 0x10
    je .ver_ok
    mov al, 9
    jmp exit32
.ver_ok:
    mov dword [APIC + APIC_SVR], 0x1ff ; software enable, spurious vector 0xFF
    mov dword [APIC + APIC_TPR], 0
    mov dword [APIC + APIC_TMR_DIV], 0xb ; divide by 1

    ; --- periodic: 20 ticks of 1 ms (the APIC timer counts at 1 GHz)
    mov dword [var_ticks], 0
    mov dword [APIC + APIC_LVT_TMR], TIMER_VECTOR | (1 << 17)
    rdtsc
    mov ebx, eax
    mov dword [APIC + APIC_TMR_INIT], 1000000
    sti
.wait20:
    hlt
    cmp dword [var_ticks], 20
    jb .wait20
    cli
    rdtsc
    sub eax, ebx
    mov dword [APIC + APIC_LVT_TMR], 1 << 16 ; masked
    mov dword [APIC + APIC_TMR_INIT], 0
    cmp eax, 19 * TSC_PER_MS
    jae .not_fast
    mov al, 3
    jmp exit32
.not_fast:
    cmp eax, 2000 * TSC_PER_MS
    jbe .not_slow
    mov al, 4
    jmp exit32
.not_slow:
    mov esi, 0xf0000 + msg_periodic
    call com32_puts

    ; --- one-shot: exactly one interrupt, then the current count stays 0
    mov dword [var_ticks], 0
    mov dword [APIC + APIC_LVT_TMR], TIMER_VECTOR
    mov dword [APIC + APIC_TMR_INIT], 500000
    sti
.wait1:
    hlt
    cmp dword [var_ticks], 1
    jb .wait1
    rdtsc                              ; spin 5 ms more with interrupts on
    mov ebx, eax
.spin:
    rdtsc
    sub eax, ebx
    cmp eax, 5 * TSC_PER_MS
    jb .spin
    cli
    cmp dword [var_ticks], 1
    jne .oneshot_bad
    cmp dword [APIC + APIC_TMR_CUR], 0
    je .oneshot_ok
.oneshot_bad:
    mov al, 5
    jmp exit32
.oneshot_ok:
    mov esi, 0xf0000 + msg_oneshot
    call com32_puts

    ; --- TSC-deadline: the interrupt comes when the TSC passes IA32_TSC_DEADLINE (the model has the
    ; mode although CPUID does not report it; see the CPU model's leaf 1)
    mov dword [var_ticks], 0
    mov dword [APIC + APIC_LVT_TMR], TIMER_VECTOR | (2 << 17)
    rdtsc
    add eax, 2 * TSC_PER_MS
    adc edx, 0
    mov edi, eax                       ; deadline, low half
    mov ebp, edx
    mov ecx, 0x6e0                     ; IA32_TSC_DEADLINE
    wrmsr
    sti
.wait_deadline:
    hlt
    cmp dword [var_ticks], 1
    jb .wait_deadline
    cli
    rdtsc
    sub eax, edi
    sbb edx, ebp
    jns .deadline_ok                   ; now - deadline >= 0
    mov al, 8
    jmp exit32
.deadline_ok:
    mov esi, 0xf0000 + msg_deadline
    call com32_puts

    ; --- NMI by self-IPI (ICR: delivery mode 100b NMI, shorthand 01b self); taken even with IF clear
    mov dword [var_nmis], 0
    mov dword [APIC + APIC_ICR_LO], (4 << 8) | (1 << 18)
    mov ecx, 100000
.wait_nmi:
    cmp dword [var_nmis], 1
    je .nmi_ok
    loop .wait_nmi
    mov al, 10
    jmp exit32
.nmi_ok:
    mov esi, 0xf0000 + msg_nmi
    call com32_puts
    mov al, 0
exit32:
    out TEST_EXIT_PORT, al
.hang:
    cli
    hlt
    jmp .hang

tick:
    inc dword [var_ticks]
    mov dword [APIC + APIC_EOI], 0
    iretd

spurious:
    iretd

nmi:
    inc dword [var_nmis]
    iretd                              ; NMIs get no EOI                              ; spurious interrupts get no EOI (SDM 10.9)

unexpected:
    mov al, 6
    jmp exit32

    SERIAL_CODE com32                  ; com32_puts: the string at [ESI] (flat) -> COM1

    bits 16
    FLAT_GDT
idt_ptr:
    dw 256 * 8 - 1
    dd IDT_BASE

msg_start:    db "VIREO-GUEST apic-timer start", 13, 10, 0
msg_periodic: db "VIREO-GUEST apic-timer periodic OK", 13, 10, 0
msg_oneshot:  db "VIREO-GUEST apic-timer one-shot OK", 13, 10, 0
msg_deadline: db "VIREO-GUEST apic-timer tsc-deadline OK", 13, 10, 0
msg_nmi:      db "VIREO-GUEST apic-timer self-NMI OK", 13, 10, 0

    SERIAL_CODE com

    RESET_VECTOR start
