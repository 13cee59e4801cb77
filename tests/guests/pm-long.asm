; pm-long.asm - real mode -> 32-bit protected mode -> 64-bit long mode with identity paging, printing from each.
;
; Exit codes: 0 all checks passed
;   1 CPUID says the CPU has no long mode (0x80000001 EDX bit 29)
;   2 EFER.LMA is clear after enabling paging with EFER.LME set
;   3 64-bit arithmetic gave a wrong result
;   4 a divide error (#DE) through the 64-bit IDT did not reach its handler or did not resume
;   5 #UD (UD2) through the 64-bit IDT did not reach its handler or did not resume
;   6 an unexpected exception or interrupt in long mode
%include "vireo-guest.inc"

%define PML4          0x10000           ; page tables: PML4, PDPT, one page directory of 2 MiB pages
%define PDPT          0x11000
%define PD            0x12000
%define IDT64         0x13000           ; 256 16-byte gates
%define STACK_TOP     0x7000
%define var_de        0x0500
%define var_ud        0x0504

%define SEL_CODE32    0x08
%define SEL_DATA      0x10
%define SEL_CODE64    0x18

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com16_init
    mov si, msg_real
    call com16_puts

    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb .no_lm
    mov eax, 0x80000001
    cpuid
    test edx, 1 << 29
    jnz .has_lm
.no_lm:
    GUEST_EXIT 1
.has_lm:

    ; Protected mode (SDM vol. 3A, 9.9.1): GDT, CR0.PE, far jump to flush CS.
    o32 lgdt [cs:gdt_desc]         ; o32: all 32 bits of the base (16-bit LGDT keeps 24)
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword SEL_CODE32:(ROM_LOW + pm32)

    SERIAL_CODE com16

    bits 32
pm32:
    mov ax, SEL_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov esp, STACK_TOP
    mov esi, ROM_LOW + msg_prot
    call com32_puts

    ; Identity map the first 1 GiB with 2 MiB pages (SDM vol. 3A, 4.5).
    mov edi, PML4
    mov ecx, 3 * 4096 / 4
    xor eax, eax
    rep stosd
    mov dword [PML4], PDPT | 0x03          ; present, writable
    mov dword [PDPT], PD | 0x03
    mov edi, PD
    mov eax, 0x83                          ; present, writable, 2 MiB page
    mov ecx, 512
.pd:
    mov [edi], eax
    mov dword [edi + 4], 0
    add eax, 0x200000
    add edi, 8
    loop .pd

    ; Long mode activation (SDM vol. 3A, 9.8.5): CR4.PAE, CR3, EFER.LME, CR0.PG, far jump.
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, PML4
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, 1 << 8
    wrmsr
    mov eax, cr0
    or eax, 1 << 31
    mov cr0, eax
    jmp SEL_CODE64:(ROM_LOW + lm64)

    SERIAL_CODE com32

    bits 64
lm64:
    mov ax, SEL_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, STACK_TOP

    mov ecx, 0xc0000080
    rdmsr
    test eax, 1 << 10                      ; EFER.LMA
    jnz .lma_ok
    GUEST_EXIT 2
.lma_ok:

    mov rax, 0x123456789abcdef0
    mov rbx, rax
    shr rbx, 32
    cmp ebx, 0x12345678
    jne .bad_math
    mov rcx, 0x0fedcba987654321
    add rax, rcx                           ; 0x2222222222222211
    mov rdx, 0x2222222222222211
    cmp rax, rdx
    je .math_ok
.bad_math:
    GUEST_EXIT 3
.math_ok:

    ; A 64-bit IDT: every vector to the catch-all, then #DE (0) and #UD (6).  Exceptions
    ; rather than INT n: KVM's instruction emulator does not implement protected-mode INT n.
    mov rdi, IDT64
    mov ecx, 256
    mov rax, ROM_LOW + unexpected64
.gates:
    call set_gate
    add rdi, 16
    loop .gates
    mov rdi, IDT64 + 0 * 16
    mov rax, ROM_LOW + de_handler
    call set_gate
    mov rdi, IDT64 + 6 * 16
    mov rax, ROM_LOW + ud_handler
    call set_gate
    lidt [ROM_LOW + idt_desc]

    mov dword [var_de], 0
    mov eax, 1
    xor edx, edx
    xor ecx, ecx
    div ecx                                ; 2 bytes (f7 f1): #DE
    cmp dword [var_de], 1
    je .de_ok
    GUEST_EXIT 4
.de_ok:
    mov dword [var_ud], 0
    ud2
    cmp dword [var_ud], 1
    je .ud_ok
    GUEST_EXIT 5
.ud_ok:

    mov rsi, ROM_LOW + msg_long
    call com64_puts
    GUEST_EXIT 0

; RDI: the gate, RAX: handler address.  64-bit interrupt gate, DPL 0, present (SDM vol. 3A, 6.14.1).
set_gate:
    mov word [rdi], ax
    mov word [rdi + 2], SEL_CODE64
    mov word [rdi + 4], 0x8e00
    mov rdx, rax
    shr rdx, 16
    mov word [rdi + 6], dx
    shr rdx, 16
    mov dword [rdi + 8], edx
    mov dword [rdi + 12], 0
    ret

; #DE is a fault: the saved RIP points at the 2-byte DIV, so step over it.
de_handler:
    inc dword [var_de]
    add qword [rsp], 2
    iretq

; #UD is a fault: the saved RIP points at UD2 (2 bytes), so step over it.
ud_handler:
    inc dword [var_ud]
    add qword [rsp], 2
    iretq

unexpected64:
    GUEST_EXIT 6

    SERIAL_CODE com64

    ; The GDT lives in ROM, so every descriptor has its accessed bit preset: loading a
    ; segment would otherwise write that bit (SDM vol. 3A, 3.4.5.1), a write to ROM that
    ; real hardware drops but that some KVM implementations cannot complete.
    align 8
gdt:
    dq 0
    dq 0x00cf9b000000ffff                  ; 0x08: 32-bit code, flat
    dq 0x00cf93000000ffff                  ; 0x10: data, flat
    dq 0x00af9b000000ffff                  ; 0x18: 64-bit code (L=1, D=0)
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd ROM_LOW + gdt
idt_desc:
    dw 256 * 16 - 1
    dq IDT64

msg_real: db "VIREO-GUEST pm-long: real mode", 13, 10, 0
msg_prot: db "VIREO-GUEST pm-long: protected mode", 13, 10, 0
msg_long: db "VIREO-GUEST pm-long: long mode OK", 13, 10, 0

    RESET_VECTOR start
