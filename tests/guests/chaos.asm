; chaos.asm - runs random bytes as code, round after round, in real mode, 32-bit protected mode and
; with paging on a garbage CR3.  Every exception, interrupt or triple fault ends the round through a
; reset; the round number lives in CMOS NVRAM (which a reset keeps).  For the software CPU: what
; matters is that Vireo delivers the exceptions and resets hardware would and never crashes or hangs.
;
; COM1 lines: "VIREO-CHAOS round RR" at the start of each round (RR hex), "VIREO-CHAOS done" after
; ROUNDS rounds, then the guest halts.  No test exit device: random code may write to any port.
%include "vireo-guest.inc"

%define ROUNDS      48
%define CMOS_ROUND  0x60          ; NVRAM byte used as the round counter
%define RAND_SEG    0x1000        ; random code and data: 0x10000-0x1ffff
%define IDT_BASE    0x0800        ; protected-mode IDT built in RAM at run time
%define CODE32_SEL  0x08
%define DATA32_SEL  0x10

    bits 16
    org 0

start:
    cli
    cld
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    mov ds, ax
    mov es, ax
    CMOS_READ CMOS_ROUND
    inc al
    mov bl, al
    mov al, CMOS_ROUND | 0x80
    out 0x70, al
    mov al, bl
    out 0x71, al

    call com_init
    cmp bl, ROUNDS
    jae all_done
    mov si, msg_round
    call com_puts
    mov al, bl
    call put_hex8
    mov al, 13
    call com_putc
    mov al, 10
    call com_putc

    ; Every real-mode vector resets the machine.
    xor di, di
    mov cx, 256
.ivt:
    mov word [di], reset_rm
    mov word [di + 2], 0xf000
    add di, 4
    loop .ivt

    ; xorshift32 seeded from the round: fill 64 KiB at RAND_SEG with random bytes.
    movzx eax, bl
    imul eax, eax, 0x9e3779b1
    or eax, 1
    mov ebp, eax
    mov ax, RAND_SEG
    mov es, ax
    xor di, di
.fill:
    call xorshift
    mov [es:di], eax
    add di, 4
    jnz .fill

    ; Random register values for the random code.
    call xorshift
    mov ecx, eax
    call xorshift
    mov edx, eax
    call xorshift
    mov esi, eax

    ; Watchdog: PIT channel 0 one-shot (mode 0, ~55 ms) on IRQ0, the only unmasked PIC input.
    ; Random code that loops forever with interrupts enabled ends its round this way.
    mov al, 0x11                    ; ICW1: edge, cascade, ICW4 follows (8259A datasheet)
    out 0x20, al
    mov al, 0x08                    ; ICW2: vectors 8-15 (every vector resets anyway)
    out 0x21, al
    mov al, 0x04                    ; ICW3: slave on IR2
    out 0x21, al
    mov al, 0x01                    ; ICW4: 8086 mode
    out 0x21, al
    mov al, 0xfe                    ; OCW1: only IRQ0
    out 0x21, al
    mov al, 0x30                    ; PIT: channel 0, lobyte/hibyte, mode 0, binary
    out 0x43, al
    mov al, 0xff
    out 0x40, al
    out 0x40, al

    mov al, bl
    xor ah, ah
    mov bh, 3
    div bh
    cmp ah, 1
    je protected_round
    cmp ah, 2
    je paging_round

    ; Real mode: jump into the random bytes with random DS/ES and a stack inside them.
    mov ax, RAND_SEG
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0xfff0
    sti
    jmp RAND_SEG:0x0000

protected_round:
    call enter_pm
    bits 32
    mov ax, DATA32_SEL
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x1fff0
    sti
    jmp CODE32_SEL:0x10000

    bits 16
paging_round:
    call enter_pm
    bits 32
    mov ax, DATA32_SEL
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7000
    mov eax, ebp
    and eax, 0xfffff000
    mov cr3, eax                   ; garbage page directory
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax                   ; the next fetch walks garbage: #PF, #DF, triple fault
    jmp CODE32_SEL:0x10000

    bits 16
; Loads the GDT, builds a 256-entry IDT of interrupt gates to reset_pm, enters 32-bit protected
; mode and returns there (the caller continues in 32-bit code).
enter_pm:
    xor ax, ax
    mov es, ax
    mov di, IDT_BASE
    mov cx, 256
.idt:
    mov word [es:di], reset_pm      ; the image is 64 KiB: the offset fits 16 bits
    mov word [es:di + 2], CODE32_SEL
    mov word [es:di + 4], 0x8e00
    mov word [es:di + 6], 0x000f   ; handler at 0x000F0000 + reset_pm
    add di, 8
    loop .idt
    lgdt [cs:gdt_ptr]
    lidt [cs:idt_ptr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    pop ax                          ; return address (16-bit) within segment F000
    movzx eax, ax
    add eax, 0xf0000
    push dword CODE32_SEL
    push eax
    o32 retf

all_done:
    mov si, msg_done
    call com_puts
.halt:
    cli
    hlt
    jmp .halt

; Any real-mode interrupt or exception: hard reset through the PIIX3 reset control register.
reset_rm:
    mov dx, 0xcf9
    mov al, 0x06
    out dx, al
    jmp reset_rm

    bits 32
reset_pm:
    mov dx, 0xcf9
    mov al, 0x06
    out dx, al
    jmp reset_pm

    bits 16
; EBP = xorshift32(EBP), returned in EAX too.
xorshift:
    mov eax, ebp
    shl eax, 13
    xor ebp, eax
    mov eax, ebp
    shr eax, 17
    xor ebp, eax
    mov eax, ebp
    shl eax, 5
    xor ebp, eax
    mov eax, ebp
    ret

put_hex8:
    push ax
    shr al, 4
    call .nibble
    pop ax
    and al, 0x0f
.nibble:
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 'a' - '9' - 1
.out:
    jmp com_putc

    align 8
gdt:
    dq 0
    dq 0x00cf9b000000ffff           ; 0x08: flat 32-bit code (accessed bit preset: the GDT is in ROM)
    dq 0x00cf93000000ffff           ; 0x10: flat 32-bit data
gdt_end:
gdt_ptr:
    dw gdt_end - gdt - 1
    dd 0xf0000 + gdt
idt_ptr:
    dw 256 * 8 - 1
    dd IDT_BASE

msg_round: db "VIREO-CHAOS round ", 0
msg_done:  db "VIREO-CHAOS done", 13, 10, 0

    SERIAL_CODE com

    RESET_VECTOR start
