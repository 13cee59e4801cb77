; hello.asm - the smallest guest: prints one line on COM1 from real mode and exits with code 0.
%include "vireo-guest.inc"

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com_init
    mov si, msg_hello
    call com_puts
    GUEST_EXIT 0

msg_hello: db "VIREO-GUEST hello from COM1", 13, 10, 0

    SERIAL_CODE com

    RESET_VECTOR start
