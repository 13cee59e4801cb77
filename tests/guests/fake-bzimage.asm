; fake-bzimage.asm - a tiny "bzImage" for testing Vireo's direct Linux boot: a valid setup header
; and a 32-bit entry that reports what the boot protocol handed it on COM1, then ends the VM.
;
; Facts from the Linux x86 boot protocol: setup header at 0x1f1, "HdrS" at 0x202, the
; protected-mode part follows (setup_sects + 1) * 512 bytes of setup and is loaded at
; code32_start; the 32-bit entry gets %esi = boot_params, CS = 0x10, DS/ES/SS = 0x18.
; Output lines (checked by tests/vm-linux-boot.sh):
;   FAKE-LINUX cs=0010 ds=0018 ss=0018 if=0 pe=1
;   FAKE-LINUX cmdline=<the command line>
;   FAKE-LINUX e820=<entry count, hex>
;   FAKE-LINUX initrd=<first 16 bytes of the initrd>
; then exit code 0 through the test exit device.

%define COM1 0x3f8
%define SETUP_SECTS 1
%define CODE32 0x100000

bits 16
org 0
boot_sector:
    times 0x1f1 - ($ - $$) db 0
hdr_setup_sects:    db SETUP_SECTS
hdr_root_flags:     dw 0
hdr_syssize:        dd 0
hdr_ram_size:       dw 0
hdr_vid_mode:       dw 0
hdr_root_dev:       dw 0
hdr_boot_flag:      dw 0xaa55
hdr_jump:           db 0xeb, hdr_end - 0x202
hdr_header:         db "HdrS"
hdr_version:        dw 0x020f
hdr_realmode_swtch: dd 0
hdr_start_sys_seg:  dw 0
hdr_kernel_version: dw 0
hdr_type_of_loader: db 0
hdr_loadflags:      db 0x01           ; LOADED_HIGH
hdr_setup_move_size: dw 0
hdr_code32_start:   dd CODE32
hdr_ramdisk_image:  dd 0
hdr_ramdisk_size:   dd 0
hdr_bootsect_kludge: dd 0
hdr_heap_end_ptr:   dw 0
hdr_ext_loader_ver: db 0
hdr_ext_loader_type: db 0
hdr_cmd_line_ptr:   dd 0
hdr_initrd_addr_max: dd 0x7fffffff
hdr_kernel_alignment: dd 0x200000
hdr_relocatable:    db 0
hdr_min_alignment:  db 0
hdr_xloadflags:     dw 0
hdr_cmdline_size:   dd 2047
hdr_end:
    times (SETUP_SECTS + 1) * 512 - ($ - $$) db 0

; ---- the protected-mode "kernel", loaded at 1 MiB ----
bits 32
section pm vstart=CODE32 follows=.text
pm_entry:
    mov esp, 0x90000
    mov ebp, esi                   ; boot_params
    mov esi, msg_regs
    call puts
    mov ax, cs
    call puthex16
    mov esi, msg_ds
    call puts
    mov ax, ds
    call puthex16
    mov esi, msg_ss
    call puts
    mov ax, ss
    call puthex16
    mov esi, msg_if
    call puts
    pushfd
    pop eax
    shr eax, 9
    and al, 1
    add al, '0'
    call putc
    mov esi, msg_pe
    call puts
    mov eax, cr0
    and al, 1
    add al, '0'
    call putc
    mov al, 10
    call putc

    mov esi, msg_cmdline
    call puts
    mov esi, [ebp + 0x228]         ; cmd_line_ptr
    call puts
    mov al, 10
    call putc

    mov esi, msg_e820
    call puts
    movzx ax, byte [ebp + 0x1e8]   ; e820_entries
    call puthex16
    mov al, 10
    call putc

    mov esi, msg_initrd
    call puts
    mov esi, [ebp + 0x218]         ; ramdisk_image
    mov ecx, 16
    cmp dword [ebp + 0x21c], 16    ; ramdisk_size
    jae .copy
    mov ecx, [ebp + 0x21c]
.copy:
    jecxz .done
.next:
    lodsb
    call putc
    loop .next
.done:
    mov al, 10
    call putc
    mov al, 0
    out 0xf4, al
.hang:
    cli
    hlt
    jmp .hang

; AL -> COM1 once the transmitter holding register is empty (16550A LSR bit 5).
putc:
    push edx
    push eax
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    pop eax
    mov dx, COM1
    out dx, al
    pop edx
    ret

; NUL-terminated string at ESI -> COM1.
puts:
    push eax
.loop:
    lodsb
    test al, al
    jz .end
    call putc
    jmp .loop
.end:
    pop eax
    ret

; AX as four hex digits.
puthex16:
    push ecx
    push eax
    mov ecx, 4
.digit:
    rol ax, 4
    push eax
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 'a' - '9' - 1
.out:
    call putc
    pop eax
    loop .digit
    pop eax
    pop ecx
    ret

msg_regs:    db "FAKE-LINUX cs=", 0
msg_ds:      db " ds=", 0
msg_ss:      db " ss=", 0
msg_if:      db " if=", 0
msg_pe:      db " pe=", 0
msg_cmdline: db "FAKE-LINUX cmdline=", 0
msg_e820:    db "FAKE-LINUX e820=", 0
msg_initrd:  db "FAKE-LINUX initrd=", 0
    times 4096 - ($ - $$) db 0     ; pad: the board wants a plausibly sized image
