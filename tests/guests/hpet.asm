; hpet.asm - the HPET in legacy replacement mode: timer 0 periodic on IRQ 0 through the 8259, timed against the
; HPET's own main counter, with the PIT's faster IRQ 0 muted meanwhile (IA-PC HPET 1.0a, 2.3.9.2.2).
;
; Exit codes: 0 all checks passed
;   1 the capabilities register is not an HPET with legacy replacement and a 10 ns period
;   2 the PIT at 10 kHz: 20 IRQ 0 ticks took less than 1.5 ms of HPET counter time
;   3 legacy mode: 10 ticks of the 1 ms periodic timer 0 came before 1,000,000 counter ticks (the PIT still arrives)
;   4 legacy mode: 10 ticks took 10,000,000 counter ticks (100 ms) or more
;   5 legacy mode with timer 0 disabled: an IRQ 0 arrived in 10 ms (the PIT was not muted)
;   6 an unexpected interrupt or exception arrived
;   7 legacy mode off again: no IRQ 0 from the PIT in 50 ms
;
; The virtual clock follows the host's, and a late timer thread on a loaded host merges or delays ticks:
; the upper bounds are wide (they catch a timer that is off by an order of magnitude or silent), the lower
; bounds are exact.
%include "vireo-guest.inc"

%define HPET          0xfed00000
%define HPET_CAP      0x000
%define HPET_CONFIG   0x010
%define HPET_COUNTER  0x0f0
%define HPET_T0_CFG   0x100
%define HPET_T0_CMP   0x108
%define CFG_ENABLE    1
%define CFG_LEG_RT    2
%define TN_INT_ENB    (1 << 2)
%define TN_PERIODIC   (1 << 3)
%define TN_VAL_SET    (1 << 6)
%define TN_32BIT      (1 << 8)
%define PERIOD_TICKS  100000           ; 1 ms at 100 MHz
%define PIT_DIVISOR   119              ; 10.03 kHz
%define IRQ0_VECTOR   0x20
%define IDT_BASE      0x1000
%define var_ticks     0x0900
%define CODE_SEL      0x08
%define DATA_SEL      0x10

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com_init
    mov si, msg_start
    call com_puts

    ; 8259A: master vectors 0x20-0x27, slave 0x28-0x2f, only IRQ 0 unmasked (as pit-irq.asm).
    mov al, 0x11
    out 0x20, al
    out 0xa0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x02
    out 0xa1, al
    mov al, 0x01
    out 0x21, al
    out 0xa1, al
    mov al, 0xfe
    out 0x21, al
    mov al, 0xff
    out 0xa1, al

    ; IDT: every vector to 'unexpected', IRQ 0's to 'tick'.
    mov di, IDT_BASE
    mov cx, 256
.idt:
    mov word [di], unexpected
    mov word [di + 2], CODE_SEL
    mov word [di + 4], 0x8e00
    mov word [di + 6], 0x000f          ; handlers live at 0x000F0000 + offset
    add di, 8
    loop .idt
    mov word [IDT_BASE + IRQ0_VECTOR * 8], tick
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

    ; --- capabilities: vendor 8086, LEG_RT_CAP (bit 15), COUNTER_CLK_PERIOD 10 ns = 10,000,000 fs
    mov eax, [HPET + HPET_CAP]
    mov ebx, eax
    shr ebx, 16
    cmp ebx, 0x8086
    jne .cap_bad
    test eax, 1 << 15
    jz .cap_bad
    cmp dword [HPET + HPET_CAP + 4], 10000000
    je .cap_ok
.cap_bad:
    mov al, 1
    jmp exit32
.cap_ok:

    ; --- the main counter as a stopwatch for a 10 kHz PIT (channel 0, mode 2)
    mov dword [HPET + HPET_CONFIG], 0
    mov dword [HPET + HPET_COUNTER], 0
    mov dword [HPET + HPET_COUNTER + 4], 0
    mov dword [HPET + HPET_CONFIG], CFG_ENABLE
    mov al, 0x34
    out 0x43, al
    mov al, PIT_DIVISOR & 0xff
    out 0x40, al
    mov al, PIT_DIVISOR >> 8
    out 0x40, al
    mov dword [var_ticks], 0
    mov ebx, [HPET + HPET_COUNTER]
    sti
.wait_pit:
    hlt
    cmp dword [var_ticks], 20
    jb .wait_pit
    cli
    mov eax, [HPET + HPET_COUNTER]
    sub eax, ebx
    call hex32
    ; 20 ticks of 99.7 us are about 199,400 counter ticks: fewer would mean the HPET counts slower than
    ; the PIT's clock.  A loaded host stretches the time (a late timer thread merges PIT edges), so there
    ; is no upper bound; the counter's own rate is checked exactly in tstHpet.
    cmp eax, 150000
    jae .pit_ok
    mov al, 2
    jmp exit32
.pit_ok:
    mov esi, 0xf0000 + msg_pit
    call com32_puts

    ; --- legacy replacement: timer 0 periodic every 1 ms on IRQ 0; the PIT keeps running at 10 kHz.
    ; Legacy mode first (counter halted, PIT muted), then a window with interrupts on takes the PIT
    ; edge the 8259 latched while they were off.
    mov dword [HPET + HPET_CONFIG], CFG_LEG_RT
    sti
    mov ecx, 100
.drain:
    loop .drain
    cli
    mov dword [HPET + HPET_COUNTER], 0
    mov dword [HPET + HPET_COUNTER + 4], 0
    mov dword [HPET + HPET_T0_CFG], TN_INT_ENB | TN_PERIODIC | TN_VAL_SET | TN_32BIT
    mov dword [HPET + HPET_T0_CMP], PERIOD_TICKS      ; first match (VAL_SET)
    mov dword [HPET + HPET_T0_CMP], PERIOD_TICKS      ; the period
    mov dword [var_ticks], 0
    mov dword [HPET + HPET_CONFIG], CFG_ENABLE | CFG_LEG_RT
    sti
.wait_hpet:
    hlt
    cmp dword [var_ticks], 10
    jb .wait_hpet
    cli
    mov eax, [HPET + HPET_COUNTER]
    call hex32
    cmp eax, 10 * PERIOD_TICKS
    jae .not_fast
    mov al, 3
    jmp exit32
.not_fast:
    cmp eax, 100 * PERIOD_TICKS         ; late timer wake-ups on a loaded host merge periods
    jb .not_slow
    mov al, 4
    jmp exit32
.not_slow:
    mov esi, 0xf0000 + msg_legacy
    call com32_puts

    ; --- timer 0 off, legacy mode on: 10 ms without any IRQ 0 (the PIT would give up to 100)
    mov dword [HPET + HPET_T0_CFG], 0
    mov dword [var_ticks], 0
    mov ebx, [HPET + HPET_COUNTER]
    sti
.quiet:
    mov eax, [HPET + HPET_COUNTER]
    sub eax, ebx
    cmp eax, 10 * PERIOD_TICKS
    jb .quiet
    cli
    cmp dword [var_ticks], 0
    je .muted
    mov al, 5
    jmp exit32
.muted:
    mov esi, 0xf0000 + msg_muted
    call com32_puts

    ; --- legacy mode off: the PIT's IRQ 0 is connected again
    mov dword [HPET + HPET_CONFIG], CFG_ENABLE
    mov dword [var_ticks], 0
    mov ebx, [HPET + HPET_COUNTER]
    sti
.back:
    mov eax, [HPET + HPET_COUNTER]
    sub eax, ebx
    cmp eax, 50 * PERIOD_TICKS
    jb .back
    cli
    cmp dword [var_ticks], 1
    jae .pit_back
    mov al, 7
    jmp exit32
.pit_back:
    mov esi, 0xf0000 + msg_done
    call com32_puts
    mov al, 0
exit32:
    out TEST_EXIT_PORT, al
.hang:
    cli
    hlt
    jmp .hang

tick:
    push eax
    inc dword [var_ticks]
    mov al, 0x20                       ; OCW2: non-specific EOI
    out 0x20, al
    pop eax
    iretd

unexpected:
    mov al, 6
    jmp exit32

; Prints EAX in hex and a space on COM1 (the measured values, for a failure's diagnosis); keeps EAX.
hex32:
    push eax
    push ecx
    push edx
    push ebx
    mov ebx, eax
    mov ecx, 8
.digit:
    rol ebx, 4
    mov al, bl
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 'a' - '9' - 1
.out:
    mov ah, al
    mov dx, COM1 + 5
.busy:
    in al, dx
    test al, 0x20
    jz .busy
    mov al, ah
    mov dx, COM1
    out dx, al
    loop .digit
    mov dx, COM1
    mov al, ' '
    out dx, al
    pop ebx
    pop edx
    pop ecx
    pop eax
    ret

    SERIAL_CODE com32                  ; com32_puts: the string at [ESI] (flat) -> COM1

    bits 16
    FLAT_GDT
idt_ptr:
    dw 256 * 8 - 1
    dd IDT_BASE

msg_start:  db "VIREO-GUEST hpet start", 13, 10, 0
msg_pit:    db "VIREO-GUEST hpet counter times the PIT OK", 13, 10, 0
msg_legacy: db "VIREO-GUEST hpet legacy timer 0 OK", 13, 10, 0
msg_muted:  db "VIREO-GUEST hpet PIT muted OK", 13, 10, 0
msg_done:   db "VIREO-GUEST hpet PIT back OK", 13, 10, 0

    SERIAL_CODE com

    RESET_VECTOR start
