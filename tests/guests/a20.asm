; a20.asm - checks the A20 gate of port 0x92 (PIIX3 System Control Port A): the 1 MiB wrap of real mode while it is off.
; The CPU's A20 line is port 0x92 bit 1 OR the 8042's output port bit 1, so the 8042's is turned off first (DD).
;
; Exit codes: 0 all checks passed
;   1 A20 is off after reset (FFFF:0510 and 0000:0500 are the same byte)
;   2 port 0x92 bit 1 reads 1 after reset (PIIX3 default is 0)
;   3 with A20 off, a read of FFFF:0510 does not see physical 0x500
;   4 with A20 off, a write to FFFF:0510 does not land at physical 0x500
;   5 with A20 off, code fetched at FFFF:0610 does not come from physical 0x600
;   6 port 0x92 bit 1 does not read back 1 after turning A20 on
;   7 with A20 on again, a write to FFFF:0510 still lands at physical 0x500
%include "vireo-guest.inc"

%define PORT_A          0x92
%define PORT_A_A20      0x02
%define PORT_A_RESET    0x01
%define LOW_BYTE        0x0500          ; 0000:0500 = physical 0x500
%define HIGH_OFF        0x0510          ; FFFF:0510 = linear 0x100500
%define THUNK            0x0600          ; 0000:0600 = physical 0x600
%define THUNK_HIGH_OFF   0x0610          ; FFFF:0610 = linear 0x100600

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com_init
    mov ax, 0xffff
    mov fs, ax

    ; ---- after reset: A20 on (the 8042's output), port 0x92 bit 1 clear ----
    mov byte [LOW_BYTE], 0x55
    mov byte [fs:HIGH_OFF], 0xaa
    cmp byte [LOW_BYTE], 0x55
    je .on_at_reset
    GUEST_EXIT 1
.on_at_reset:
    in al, PORT_A
    test al, PORT_A_A20
    jz .port_clear
    GUEST_EXIT 2
.port_clear:

    ; ---- the 8042's A20 output off: port 0x92 alone decides from here ----
    mov al, 0xdd
    out 0x64, al

    ; ---- A20 off: FFFF:xxxx wraps to the first 64 KiB ----
    in al, PORT_A
    and al, ~(PORT_A_A20 | PORT_A_RESET) & 0xff
    out PORT_A, al
    cmp byte [fs:HIGH_OFF], 0x55
    je .read_wraps
    GUEST_EXIT 3
.read_wraps:
    mov byte [fs:HIGH_OFF], 0x77
    cmp byte [LOW_BYTE], 0x77
    je .write_wraps
    GUEST_EXIT 4
.write_wraps:
    ; mov al, 0x5a; retf at physical 0x600, called through the wrap.
    mov dword [THUNK], 0xcb5ab0
    xor al, al
    call 0xffff:THUNK_HIGH_OFF
    cmp al, 0x5a
    je .fetch_wraps
    GUEST_EXIT 5
.fetch_wraps:

    ; ---- A20 on again: no wrap ----
    in al, PORT_A
    and al, ~PORT_A_RESET & 0xff
    or al, PORT_A_A20
    out PORT_A, al
    in al, PORT_A
    test al, PORT_A_A20
    jnz .port_set
    GUEST_EXIT 6
.port_set:
    mov byte [fs:HIGH_OFF], 0x99
    cmp byte [LOW_BYTE], 0x77
    je .no_wrap
    GUEST_EXIT 7
.no_wrap:
    mov si, msg_ok
    call com_puts
    GUEST_EXIT 0

msg_ok: db "VIREO-GUEST a20 OK", 13, 10, 0

    SERIAL_CODE com

    RESET_VECTOR start
