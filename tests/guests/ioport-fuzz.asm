; ioport-fuzz.asm - writes xorshift-random values of random sizes to every I/O port, reads every port back, exits 0.
;
; The point is that no sequence of port accesses can crash or hang Vireo: the test
; passes when the VM survives to report the end through the test exit device.  Only
; ports whose job is to end or reset the VM are never written: 0xf4 (test exit),
; 0x92 (fast reset), 0xcf9 (reset control), 0x64 (keyboard controller, pulses the
; reset line).  An access covers size bytes, so a wide write that would reach one of
; them is skipped too.
;
; The fuzz loop runs in 32-bit protected mode from the image's copy under 4 GiB and
; keeps everything in registers: random writes to the chipset (PAM registers through
; 0xcf8/0xcfc, fw_cfg DMA to a random address) may remap or overwrite low memory,
; and interrupts stay disabled, so nothing it needs lives there.
%include "vireo-guest.inc"

%define PASSES        3
%define SEED          0x2545f491

%define SEL_CODE32    0x08
%define SEL_DATA      0x10

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com16_init
    mov si, msg_start
    call com16_puts

    o32 lgdt [cs:gdt_desc]         ; o32: all 32 bits of the base (16-bit LGDT keeps 24)
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword SEL_CODE32:(ROM_HIGH + fuzz32)

    SERIAL_CODE com16

    bits 32

; Skips the access at port EDX of ESI bytes if it reaches port %1 (unsigned (p - port) < size).
%macro SKIP_IF_COVERS 2
    mov edi, %1
    sub edi, edx
    cmp edi, esi
    jb %2
%endmacro

; EBX = xorshift32(EBX) (Marsaglia, "Xorshift RNGs", 2003: shifts 13, 17, 5).
%macro XORSHIFT 0
    mov eax, ebx
    shl eax, 13
    xor ebx, eax
    mov eax, ebx
    shr eax, 17
    xor ebx, eax
    mov eax, ebx
    shl eax, 5
    xor ebx, eax
%endmacro

; ESI <- 1, 2 or 4 from the low bits of EBX (1 twice as likely).
%macro RANDOM_SIZE 0
    mov esi, ebx
    and esi, 3
    jnz %%not0
    mov esi, 1
    jmp %%done
%%not0:
    cmp esi, 3
    jne %%done
    mov esi, 4
%%done:
%endmacro

fuzz32:
    mov ax, SEL_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov ebx, SEED
    mov ebp, PASSES

.pass:
    xor edx, edx
.write_port:
    XORSHIFT
    RANDOM_SIZE
    SKIP_IF_COVERS TEST_EXIT_PORT, .write_next
    SKIP_IF_COVERS 0x92, .write_next
    SKIP_IF_COVERS 0xcf9, .write_next
    SKIP_IF_COVERS 0x64, .write_next
    mov eax, ebx
    ror eax, 11
    cmp esi, 2
    je .write2
    ja .write4
    out dx, al
    jmp .write_next
.write2:
    out dx, ax
    jmp .write_next
.write4:
    out dx, eax
.write_next:
    inc edx
    cmp edx, 0x10000
    jb .write_port
    dec ebp
    jnz .pass

    ; Read every port once with a random size; ECX folds the values so the reads are used.
    xor edx, edx
    xor ecx, ecx
.read_port:
    XORSHIFT
    RANDOM_SIZE
    cmp esi, 2
    je .read2
    ja .read4
    in al, dx
    movzx eax, al
    jmp .read_next
.read2:
    in ax, dx
    movzx eax, ax
    jmp .read_next
.read4:
    in eax, dx
.read_next:
    xor ecx, eax
    rol ecx, 1
    inc edx
    cmp edx, 0x10000
    jb .read_port

    ; The UART got random writes as well: set it up again before reporting.
    mov esp, 0x7000
    call com32_init
    mov esi, ROM_HIGH + msg_done
    call com32_puts
    GUEST_EXIT 0

    SERIAL_CODE com32

    ; The GDT lives in ROM, so every descriptor has its accessed bit preset: loading a
    ; segment would otherwise write that bit (SDM vol. 3A, 3.4.5.1), a write to ROM that
    ; real hardware drops but that some KVM implementations cannot complete.
    align 8
gdt:
    dq 0
    dq 0x00cf9b000000ffff                  ; 0x08: 32-bit code, flat
    dq 0x00cf93000000ffff                  ; 0x10: data, flat
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd ROM_HIGH + gdt

msg_start: db "VIREO-GUEST ioport-fuzz start", 13, 10, 0
msg_done:  db 13, 10, "VIREO-GUEST ioport-fuzz done", 13, 10, 0

    RESET_VECTOR start
