; pit-irq.asm - PIT channel 0 at 1 kHz through the 8259 pair: counts 50 IRQ0 ticks with HLT and checks their timing.
;
; Exit codes: 0 all checks passed
;   1 the master PIC's mask register did not read back what was written (OCW1)
;   2 the 50 ticks came faster than 45 ms of PIT time (channel 2 as a stopwatch)
;   3 the 50 ticks took more than 5 s of RTC time
;   4 the IRQ0 handler ran without IRQ0 in the master's in-service register
;   5 the RTC update-in-progress bit never cleared
;   6 an unexpected interrupt or exception arrived
;   7 the tick handler ran before STI (an interrupt was delivered with IF clear)
%include "vireo-guest.inc"

%define TICKS_WANTED  50
%define PIT_HZ        1193182
%define PIT_DIVISOR   1193              ; 1000.15 Hz
%define MIN_COUNTS    (45 * 1193)       ; channel 2 counts in 45 ms
%define MAX_SECONDS   5

; Variables in RAM (DS = 0).
%define var_ticks     0x0500
%define var_bad_isr   0x0502
%define var_sti_done  0x0504
%define var_sec_start 0x0506

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com_init
    mov si, msg_start
    call com_puts
    mov word [var_ticks], 0
    mov word [var_bad_isr], 0
    mov word [var_sti_done], 0

    ; Every vector to the catch-all, then IRQ0's vector (0x20 after ICW2) to the tick handler.
    xor di, di
    mov cx, 256
.ivt:
    mov word [di], unexpected
    mov word [di + 2], 0xf000
    add di, 4
    loop .ivt
    mov word [0x20 * 4], irq0_handler
    mov word [0x20 * 4 + 2], 0xf000

    ; 8259A initialisation (Intel 8259A datasheet, "Initialization Command Words").
    mov al, 0x11                ; ICW1: edge triggered, cascade, ICW4 follows
    out 0x20, al
    out 0xa0, al
    mov al, 0x20                ; ICW2: master vectors 0x20-0x27
    out 0x21, al
    mov al, 0x28                ; ICW2: slave vectors 0x28-0x2f
    out 0xa1, al
    mov al, 0x04                ; ICW3: slave on master IR2
    out 0x21, al
    mov al, 0x02                ; ICW3: slave identity 2
    out 0xa1, al
    mov al, 0x01                ; ICW4: 8086 mode, normal EOI
    out 0x21, al
    out 0xa1, al
    mov al, 0xfe                ; OCW1: only IRQ0 unmasked
    out 0x21, al
    mov al, 0xff
    out 0xa1, al
    in al, 0x21
    cmp al, 0xfe
    je .mask_ok
    GUEST_EXIT 1
.mask_ok:

    call rtc_wait_uip
    CMOS_READ 0x00
    mov [var_sec_start], al

    ; Channel 2 as a stopwatch: gate on, speaker off, mode 0 from 0xffff (8254 datasheet, mode 0).
    in al, 0x61
    and al, 0xfc
    or al, 0x01
    out 0x61, al
    mov al, 0xb0                ; channel 2, lobyte/hibyte, mode 0, binary
    out 0x43, al
    mov al, 0xff
    out 0x42, al
    out 0x42, al

    ; Channel 0: rate generator (mode 2) at 1 kHz.
    mov al, 0x34                ; channel 0, lobyte/hibyte, mode 2, binary
    out 0x43, al
    mov al, PIT_DIVISOR & 0xff
    out 0x40, al
    mov al, PIT_DIVISOR >> 8
    out 0x40, al

    mov word [var_sti_done], 1
    sti
.wait:
    hlt
    cmp word [var_ticks], TICKS_WANTED
    jb .wait
    cli

    cmp word [var_bad_isr], 0
    je .isr_ok
    mov al, [var_bad_isr]
    GUEST_EXIT_AL
.isr_ok:

    ; Latch channel 2 and read it; OUT2 (port 0x61 bit 5) high means it already passed zero (> 54.9 ms).
    mov al, 0x80
    out 0x43, al
    in al, 0x42
    mov bl, al
    in al, 0x42
    mov bh, al
    in al, 0x61
    test al, 0x20
    jnz .not_too_fast
    mov ax, 0xffff
    sub ax, bx                  ; counts elapsed since channel 2 was loaded
    cmp ax, MIN_COUNTS
    jae .not_too_fast
    GUEST_EXIT 2
.not_too_fast:

    call rtc_wait_uip
    CMOS_READ 0x00
    call bcd_to_bin
    mov bl, al
    mov al, [var_sec_start]
    call bcd_to_bin
    sub bl, al                  ; seconds elapsed, modulo 60
    jnc .no_wrap
    add bl, 60
.no_wrap:
    cmp bl, MAX_SECONDS
    jbe .not_too_slow
    GUEST_EXIT 3
.not_too_slow:

    mov si, msg_done
    call com_puts
    GUEST_EXIT 0

; IRQ0: checks the in-service register (OCW3 read ISR), counts, sends a non-specific EOI.
irq0_handler:
    push ax
    cmp word [var_sti_done], 1
    je .after_sti
    mov word [var_bad_isr], 7
.after_sti:
    mov al, 0x0b                ; OCW3: read ISR on the next read of port 0x20
    out 0x20, al
    in al, 0x20
    test al, 0x01
    jnz .isr_set
    mov word [var_bad_isr], 4
.isr_set:
    mov al, 0x0a                ; OCW3: back to reading IRR
    out 0x20, al
    inc word [var_ticks]
    mov al, 0x20                ; OCW2: non-specific EOI
    out 0x20, al
    pop ax
    iret

unexpected:
    GUEST_EXIT 6

; Waits until the RTC's update-in-progress flag (register A bit 7) is clear (MC146818 datasheet).
rtc_wait_uip:
    push cx
    xor cx, cx
.poll:
    CMOS_READ 0x0a
    test al, 0x80
    jz .clear
    loop .poll
    GUEST_EXIT 5
.clear:
    pop cx
    ret

; AL (packed BCD) -> AL (binary).
bcd_to_bin:
    push bx
    mov bl, al
    and bl, 0x0f
    shr al, 4
    mov bh, 10
    mul bh
    add al, bl
    pop bx
    ret

msg_start: db "VIREO-GUEST pit-irq start", 13, 10, 0
msg_done:  db "VIREO-GUEST pit-irq 50 ticks OK", 13, 10, 0

    SERIAL_CODE com

    RESET_VECTOR start
