; sys-gates.asm - privilege transitions and system instructions: IVT, interrupt/trap/task gates, call gates, task switches, error codes, IST, SYSCALL/SYSRET.
;
; Needs a CPU that executes protected-mode INT n, IRET, call gates and task switches: the
; software CPU, or KVM on a host with VMX/SVM.  KVM's instruction emulator, which is all a
; host without them has, implements none of these (it stops at the first 32-bit IRETD).
;
; Exit codes: 0 all checks passed
;   1 real mode: INT through the IVT did not reach its handler or did not return
;   2 #NP(selector) from loading DS with a not-present segment missing or with a wrong error code
;   3 #SS(selector) from loading SS with a not-present segment missing or with a wrong error code
;   4 CALL to a TSS: the task did not run, NT or the back link were wrong, or IRET did not return to the caller
;   5 INT through a task gate did not run the task and come back
;   6 INT 0x80 from ring 3: wrong CPL or stack frame in the ring 0 handler
;   7 INT 0x80 did not return to ring 3 with the caller's stack
;   8 call gate: wrong CPL, parameter or frame in the ring 0 procedure
;   9 RETF 4 through the call gate did not restore the ring 3 stack
;   10 #GP(selector) from loading a DPL 0 segment at ring 3 missing or with a wrong error code
;   11 INT to a DPL 0 gate from ring 3 did not raise #GP(vector * 8 + 2)
;   12 EFER.LMA is clear after enabling paging with EFER.LME set
;   13 64-bit INT through an IST gate: wrong stack, SS or frame in the handler
;   14 64-bit INT did not return to ring 3 with the caller's stack
;   15 SYSCALL: wrong CS, SS, RCX, R11 or masked RFLAGS in the ring 0 entry
;   16 SYSRET: wrong ring 3 CS, SS or RFLAGS afterwards
;   17 64-bit #GP(selector) at ring 3 missing or with a wrong error code
;   20 an unexpected exception or interrupt in protected mode
;   21 an unexpected exception or interrupt in long mode
%include "vireo-guest.inc"

%define GDT_RAM       0x0800            ; the GDT is copied to RAM: LTR and task switches write busy bits
%define IDT32         0x1000            ; 256 8-byte gates
%define TSS1          0x1800            ; the first task (32-bit TSS)
%define TSS2          0x1900            ; the second task
%define IST_TOP       0x3000            ; IST1 stack top (IST1 is set 8 bytes higher: the CPU aligns it down)
%define STACK_T2      0x4000
%define STACK3        0x5000            ; ring 3 stack
%define STACK0        0x6000            ; ring 0 stack (TSS SS0:ESP0, 64-bit RSP0)
%define STACK_REAL    0x7000
%define PML4          0x10000
%define PDPT          0x11000
%define PD            0x12000
%define IDT64         0x13000
%define TSS64         0x14000

; Variables (8 bytes apart so 32- and 64-bit code share them).
%define var_rm        0x500
%define var_vec       0x508
%define var_err       0x510
%define var_skip      0x518
%define var_task      0x520
%define var_uesp      0x528
%define var_int80     0x530
%define var_gate      0x538
%define var_sys       0x540

%define SEL_K32       0x08
%define SEL_KDATA     0x10
%define SEL_U32       0x1b
%define SEL_UDATA     0x23
%define SEL_K64       0x28
%define SEL_KDATA64   0x30
%define SEL_UDATA64   0x3b
%define SEL_U64       0x43
%define SEL_GATE      0x4b
%define SEL_NP        0x50
%define SEL_TSS1      0x58
%define SEL_TSS2      0x60
%define SEL_TSS64     0x68

%define ABS(label)    (ROM_LOW + (label) - $$)

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com16_init
    mov si, msg_real
    call com16_puts

    ; Real mode: INT 0x60 through the IVT (SDM vol. 3A, 20.1.4).
    mov word [0x60 * 4], rm_int60
    mov word [0x60 * 4 + 2], 0xf000
    mov byte [var_rm], 0
    int 0x60
    cmp byte [var_rm], 1
    je .rm_ok
    GUEST_EXIT 1
.rm_ok:

    ; The GDT goes to RAM, then protected mode.
    mov si, gdt
    mov di, GDT_RAM
    mov cx, gdt_end - gdt
.copy:
    mov al, [cs:si]
    mov [di], al
    inc si
    inc di
    loop .copy
    o32 lgdt [cs:gdt_desc]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword SEL_K32:ABS(pm32)

rm_int60:
    inc byte [var_rm]
    iret

    SERIAL_CODE com16

; ---------------------------------------------------------------------------------------------
    bits 32
pm32:
    mov ax, SEL_KDATA
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, STACK0

    ; Both TSSs (SDM vol. 3A, figure 7-2); I/O map base past the limit: no I/O bitmap.
    mov edi, TSS1
    mov ecx, 0x200 / 4
    xor eax, eax
    rep stosd
    mov dword [TSS1 + 4], STACK0
    mov word [TSS1 + 8], SEL_KDATA
    mov word [TSS1 + 0x66], 0x68
    mov dword [TSS2 + 0x20], ABS(task2)
    mov dword [TSS2 + 0x24], 0x2
    mov dword [TSS2 + 0x38], STACK_T2
    mov word [TSS2 + 0x48], SEL_KDATA
    mov word [TSS2 + 0x4c], SEL_K32
    mov word [TSS2 + 0x50], SEL_KDATA
    mov word [TSS2 + 0x54], SEL_KDATA
    mov word [TSS2 + 0x66], 0x68
    mov ax, SEL_TSS1
    ltr ax

    ; IDT: everything unexpected, then the gates under test.
    mov edi, IDT32
    mov ecx, 256
    mov eax, ABS(unexpected32)
    mov bx, 0x8e00
.gates:
    call set_gate32
    add edi, 8
    loop .gates
    mov bx, 0x8e00                          ; interrupt gates, DPL 0
    mov edi, IDT32 + 11 * 8
    mov eax, ABS(exc_np32)
    call set_gate32
    mov edi, IDT32 + 12 * 8
    mov eax, ABS(exc_ss32)
    call set_gate32
    mov edi, IDT32 + 13 * 8
    mov eax, ABS(exc_gp32)
    call set_gate32
    mov edi, IDT32 + 0x81 * 8               ; DPL 0: INT 0x81 from ring 3 must fault
    mov eax, ABS(unexpected32)
    call set_gate32
    mov bx, 0xee00                          ; interrupt gates, DPL 3
    mov edi, IDT32 + 0x80 * 8
    mov eax, ABS(int80_32)
    call set_gate32
    mov edi, IDT32 + 0x82 * 8
    mov eax, ABS(back_to_ring0)
    call set_gate32
    mov edi, IDT32 + 0x83 * 8
    mov eax, ABS(exit_al32)
    call set_gate32
    mov dword [IDT32 + 0x41 * 8], SEL_TSS2 << 16   ; task gate, DPL 0 (SDM vol. 3A, figure 7-8)
    mov dword [IDT32 + 0x41 * 8 + 4], 0x8500
    lidt [ABS(idt32_desc)]

    ; #NP and #SS with the selector as error code (SDM vol. 3A, 6.15).
    mov dword [var_vec], 0
    mov dword [var_skip], 2
    mov ax, SEL_NP
    mov ds, ax                              ; 2 bytes
    cmp dword [var_vec], 11
    jne .fail2
    cmp dword [var_err], SEL_NP
    je .np_ok
.fail2:
    GUEST_EXIT 2
.np_ok:
    mov dword [var_vec], 0
    mov ss, ax                              ; 2 bytes
    cmp dword [var_vec], 12
    jne .fail3
    cmp dword [var_err], SEL_NP
    je .ss_ok
.fail3:
    GUEST_EXIT 3
.ss_ok:

    ; CALL to a TSS (SDM vol. 3A, 7.3): task2 runs nested and returns with IRET.
    mov dword [var_task], 0
    call SEL_TSS2:0
    cmp dword [var_task], 1
    jne .fail4
    str ax
    cmp ax, SEL_TSS1
    jne .fail4
    pushfd
    pop eax
    test eax, 0x4000                        ; NT belongs to task2, not to us
    jnz .fail4
    clts                                    ; the task switch set CR0.TS
    jmp .call_task_ok
.fail4:
    GUEST_EXIT 4
.call_task_ok:
    int 0x41                                ; the same task through a task gate
    cmp dword [var_task], 2
    je .gate_task_ok
    GUEST_EXIT 5
.gate_task_ok:
    clts

    ; To ring 3 with IRET (SDM vol. 3A, 6.12.1: the outer-level frame).
    push dword SEL_UDATA
    push dword STACK3
    pushfd
    push dword SEL_U32
    push dword ABS(ring3_32)
    iretd

; Ring 3, 32-bit.  Failures leave through INT 0x83 with the code in AL.
ring3_32:
    mov ax, SEL_UDATA                       ; IRET to ring 3 nulled the DPL 0 data segments
    mov ds, ax
    mov es, ax

    mov [var_uesp], esp
    mov dword [var_int80], 0
    int 0x80
    cmp dword [var_int80], 1
    jne .fail7
    cmp esp, [var_uesp]
    je .int80_ok
.fail7:
    mov al, 7
    int 0x83
.int80_ok:

    ; A call gate with one parameter to ring 0 (SDM vol. 3A, 5.8.5), back with RETF 4.
    mov dword [var_gate], 0
    push dword 0x1234abcd
    call SEL_GATE:0
    cmp esp, [var_uesp]
    je .gate_sp_ok
    mov al, 9
    int 0x83
.gate_sp_ok:
    cmp dword [var_gate], 1
    je .gate_ok
    mov al, 8
    int 0x83
.gate_ok:

    ; #GP(selector): a DPL 0 data segment at CPL 3.
    mov dword [var_vec], 0
    mov dword [var_skip], 2
    mov ax, SEL_KDATA
    mov ds, ax                              ; 2 bytes
    cmp dword [var_vec], 13
    jne .fail10
    cmp dword [var_err], SEL_KDATA
    je .gp_ok
.fail10:
    mov al, 10
    int 0x83
.gp_ok:
    ; INT n through a DPL 0 gate: #GP(n * 8 + 2).
    mov dword [var_vec], 0
    int 0x81                                ; 2 bytes
    cmp dword [var_vec], 13
    jne .fail11
    cmp dword [var_err], 0x81 * 8 + 2
    je .int81_ok
.fail11:
    mov al, 11
    int 0x83
.int81_ok:
    int 0x82                                ; back to ring 0 for good

; ---- ring 0 handlers (32-bit) ----

; EDI: gate, EAX: handler, BX: type/DPL word (bytes 4-5 of the gate).
set_gate32:
    mov [edi], ax
    mov word [edi + 2], SEL_K32
    mov [edi + 4], bx
    push eax
    shr eax, 16
    mov [edi + 6], ax
    pop eax
    ret

; Faults with an error code: record vector and code, step over [var_skip] bytes.
exc_np32:
    mov dword [var_vec], 11
    jmp exc_err32
exc_ss32:
    mov dword [var_vec], 12
    jmp exc_err32
exc_gp32:
    mov dword [var_vec], 13
exc_err32:
    pop dword [var_err]
    push eax
    mov eax, [var_skip]
    add [esp + 4], eax
    pop eax
    iretd

int80_32:
    mov ax, cs
    test ax, 3
    jnz .bad
    cmp word [esp + 4], SEL_U32
    jne .bad
    cmp word [esp + 16], SEL_UDATA
    jne .bad
    mov eax, [var_uesp]
    cmp [esp + 12], eax
    jne .bad
    mov dword [var_int80], 1
    iretd
.bad:
    GUEST_EXIT 6

; The call gate's target: EIP, CS, the parameter, ESP, SS on the ring 0 stack.
gate_target:
    mov ax, cs
    test ax, 3
    jnz .bad
    cmp dword [esp + 8], 0x1234abcd
    jne .bad
    cmp word [esp + 4], SEL_U32
    jne .bad
    cmp word [esp + 16], SEL_UDATA
    jne .bad
    mov dword [var_gate], 1
    retf 4
.bad:
    GUEST_EXIT 8

exit_al32:
    GUEST_EXIT_AL

unexpected32:
    GUEST_EXIT 20

; The second task: counts its runs, checks that it is nested, returns with IRET.
task2:
    inc dword [var_task]
    pushfd
    pop eax
    test eax, 0x4000
    jz .bad
    cmp word [TSS2], SEL_TSS1               ; back link
    jne .bad
    iretd
    jmp task2                               ; the next switch resumes here
.bad:
    GUEST_EXIT 4

back_to_ring0:
    mov esp, STACK0
    mov ax, SEL_KDATA
    mov ds, ax
    mov es, ax
    mov esi, ABS(msg_prot)
    call com32_puts

    ; Long mode (SDM vol. 3A, 9.8.5): identity map 1 GiB with user 2 MiB pages, PAE, LME, PG.
    mov edi, PML4
    mov ecx, 3 * 4096 / 4
    xor eax, eax
    rep stosd
    mov dword [PML4], PDPT | 0x07
    mov dword [PDPT], PD | 0x07
    mov edi, PD
    mov eax, 0x87                           ; present, writable, user, 2 MiB
    mov ecx, 512
.pd:
    mov [edi], eax
    mov dword [edi + 4], 0
    add eax, 0x200000
    add edi, 8
    loop .pd
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, PML4
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, (1 << 8) | (1 << 0)             ; LME, SCE
    wrmsr
    mov eax, cr0
    or eax, 1 << 31
    mov cr0, eax
    jmp SEL_K64:ABS(lm64)

    SERIAL_CODE com32

; ---------------------------------------------------------------------------------------------
    bits 64
lm64:
    mov ax, SEL_KDATA64
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, STACK0
    mov ecx, 0xc0000080
    rdmsr
    test eax, 1 << 10
    jnz .lma_ok
    GUEST_EXIT 12
.lma_ok:

    ; 64-bit TSS: RSP0 and IST1 (SDM vol. 3A, figure 7-11).
    mov rdi, TSS64
    mov ecx, 0x68 / 4
    xor eax, eax
    rep stosd
    mov qword [TSS64 + 4], STACK0
    mov qword [TSS64 + 0x24], IST_TOP + 8
    mov word [TSS64 + 0x66], 0x68
    mov ax, SEL_TSS64
    ltr ax

    mov rdi, IDT64
    mov ecx, 256
    mov rax, ABS(unexpected64)
    mov bx, 0x8e00
.gates:
    call set_gate64
    add rdi, 16
    loop .gates
    mov rdi, IDT64 + 13 * 16
    mov rax, ABS(exc_gp64)
    call set_gate64                         ; BX still 0x8e00
    mov bx, 0xee01                          ; DPL 3, IST1
    mov rdi, IDT64 + 0x80 * 16
    mov rax, ABS(int80_64)
    call set_gate64
    mov bx, 0xee00
    mov rdi, IDT64 + 0x83 * 16
    mov rax, ABS(exit_al64)
    call set_gate64
    lidt [ABS(idt64_desc)]

    ; SYSCALL: CS 0x28/SS 0x30 from STAR[47:32]; SYSRET: SS 0x3b, CS 0x43 from STAR[63:48] = 0x30.
    mov ecx, 0xc0000081
    xor eax, eax
    mov edx, 0x00300028
    wrmsr
    mov ecx, 0xc0000082
    mov eax, ABS(syscall64)
    xor edx, edx
    wrmsr
    mov ecx, 0xc0000084
    mov eax, 0x400                          ; SFMASK: DF
    xor edx, edx
    wrmsr

    push SEL_UDATA64
    push STACK3
    push 0x2
    push SEL_U64
    mov rax, ABS(ring3_64)
    push rax
    iretq

; Ring 3, 64-bit.
ring3_64:
    mov [var_uesp], rsp
    mov qword [var_int80], 0
    int 0x80
    cmp qword [var_int80], 1
    jne .fail14
    cmp rsp, [var_uesp]
    je .int80_ok
.fail14:
    mov al, 14
    int 0x83
.int80_ok:

    mov qword [var_sys], 0
    std
    syscall
.after_syscall:
    cmp qword [var_sys], 1
    jne .fail16
    pushfq
    pop rdx
    test edx, 0x400                         ; DF comes back from R11
    jz .fail16
    cld
    mov ax, cs
    cmp ax, SEL_U64
    jne .fail16
    mov ax, ss
    cmp ax, SEL_UDATA64
    je .sysret_ok
.fail16:
    mov al, 16
    int 0x83
.sysret_ok:

    mov qword [var_vec], 0
    mov qword [var_skip], 2
    mov ax, SEL_KDATA
    mov ds, ax                              ; 2 bytes: #GP(0x10)
    cmp qword [var_vec], 13
    jne .fail17
    cmp qword [var_err], SEL_KDATA
    je .gp_ok
.fail17:
    mov al, 17
    int 0x83
.gp_ok:
    mov al, 0
    int 0x83

; ---- ring 0 handlers (64-bit) ----

; RDI: gate, RAX: handler, BX: IST/type/DPL word (bytes 4-5 of the gate).
set_gate64:
    mov [rdi], ax
    mov word [rdi + 2], SEL_K64
    mov [rdi + 4], bx
    mov rdx, rax
    shr rdx, 16
    mov [rdi + 6], dx
    shr rdx, 16
    mov [rdi + 8], edx
    mov dword [rdi + 12], 0
    ret

exc_gp64:
    mov qword [var_vec], 13
    pop qword [var_err]
    push rax
    mov rax, [var_skip]
    add [rsp + 8], rax
    pop rax
    iretq

; IST1: RSP = (IST_TOP + 8) aligned down - 5 * 8; SS is null after the privilege change.
int80_64:
    cmp rsp, IST_TOP - 40
    jne .bad
    cmp word [rsp + 8], SEL_U64
    jne .bad
    cmp word [rsp + 32], SEL_UDATA64
    jne .bad
    mov rax, [var_uesp]
    cmp [rsp + 24], rax
    jne .bad
    mov ax, ss
    test ax, ax
    jnz .bad
    mov qword [var_int80], 1
    iretq
.bad:
    GUEST_EXIT 13

syscall64:
    mov ax, cs
    cmp ax, SEL_K64
    jne .bad
    mov ax, ss
    cmp ax, SEL_KDATA64
    jne .bad
    mov rdx, ABS(ring3_64.after_syscall)
    cmp rcx, rdx
    jne .bad
    test r11d, 0x400                        ; the caller's DF, in R11
    jz .bad
    pushfq
    pop rdx
    test edx, 0x400                         ; masked by SFMASK
    jnz .bad
    mov qword [var_sys], 1
    o64 sysret
.bad:
    GUEST_EXIT 15

exit_al64:
    test al, al
    jnz .out
    mov rsi, ABS(msg_long)
    call com64_puts
    xor eax, eax
.out:
    GUEST_EXIT_AL

unexpected64:
    GUEST_EXIT 21

    SERIAL_CODE com64

; ---------------------------------------------------------------------------------------------
    align 8
gdt:
    dq 0                                    ; 0x00
    dq 0x00cf9b000000ffff                   ; 0x08 32-bit code, DPL 0
    dq 0x00cf93000000ffff                   ; 0x10 data, DPL 0
    dq 0x00cffb000000ffff                   ; 0x18 32-bit code, DPL 3
    dq 0x00cff3000000ffff                   ; 0x20 data, DPL 3
    dq 0x00af9b000000ffff                   ; 0x28 64-bit code, DPL 0
    dq 0x00cf93000000ffff                   ; 0x30 data, DPL 0 (SYSCALL SS)
    dq 0x00cff3000000ffff                   ; 0x38 data, DPL 3 (SYSRET SS)
    dq 0x00affb000000ffff                   ; 0x40 64-bit code, DPL 3 (SYSRET CS)
    dw ABS(gate_target) & 0xffff, SEL_K32   ; 0x48 32-bit call gate, DPL 3, 1 parameter
    dw 0xec01, ABS(gate_target) >> 16
    dq 0x00cf13000000ffff                   ; 0x50 data, not present
    dw 0x67, TSS1, 0x8900, 0                ; 0x58 32-bit TSS (available)
    dw 0x67, TSS2, 0x8900, 0                ; 0x60 32-bit TSS (available)
    dw 0x67, TSS64 & 0xffff, 0x8900 | (TSS64 >> 16), 0 ; 0x68 64-bit TSS (16 bytes)
    dq 0
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd GDT_RAM
idt32_desc:
    dw 256 * 8 - 1
    dd IDT32
idt64_desc:
    dw 256 * 16 - 1
    dq IDT64

msg_real: db "VIREO-GUEST sys-gates: real mode", 13, 10, 0
msg_prot: db "VIREO-GUEST sys-gates: protected mode gates, tasks and error codes OK", 13, 10, 0
msg_long: db "VIREO-GUEST sys-gates: long mode IST and SYSCALL OK", 13, 10, 0

    RESET_VECTOR start
