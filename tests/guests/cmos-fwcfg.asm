; cmos-fwcfg.asm - checks the RTC/CMOS contents and the fw_cfg interface the PC board sets up for a 32 MiB guest.
;
; Exit codes: 0 all checks passed
;   1 RTC status register B says binary mode (bit 2), the board should leave BCD
;   2 a time/date register is not valid BCD
;   3 a time/date register is out of range
;   4 the RTC seconds did not advance within about 3 s of PIT time
;   5 CMOS 0x15/0x16 (base memory) is not 640 KiB
;   6 CMOS 0x17/0x18 or 0x30/0x31 (extended memory) is not 31744 KiB
;   7 CMOS 0x34/0x35 (memory above 16 MiB, 64 KiB units) is not 256
;   8 fw_cfg signature (selector 0) is not "QEMU"
;   9 fw_cfg ID (selector 1) lacks the DMA bit (bit 1) or the traditional bit (bit 0)
;  10 fw_cfg RAM size (selector 3) is not 32 MiB
;  11 "etc/e820" is not in the fw_cfg file directory
;  12 etc/e820 is empty, too big, or not a whole number of 20-byte entries
;  13 no usable-RAM entry in etc/e820 ends at 32 MiB
;  14 a fw_cfg DMA read of the signature failed (error bit or wrong data)
;  15 the RTC update-in-progress bit never cleared
%include "vireo-guest.inc"

%define RAM_BYTES     0x02000000        ; 32 MiB, what the test passes with --memory
%define FWCFG_SEL     0x510
%define FWCFG_DATA    0x511
%define FWCFG_DMA_HI  0x514
%define FWCFG_DMA_LO  0x518

; RAM (DS = ES = 0).
%define var_bmode     0x0500
%define dir_entry     0x0600            ; one 64-byte file directory entry
%define e820_buf      0x0800            ; up to 32 entries of 20 bytes
%define E820_MAX      (32 * 20)
%define dma_desc      0x0c00            ; FWCfgDmaAccess (16-byte aligned)
%define dma_buf       0x0c40

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com_init
    mov si, msg_start
    call com_puts

    ; ---- RTC (MC146818 datasheet, registers 0-9 and B) ----
    CMOS_READ 0x0b
    mov [var_bmode], al
    test al, 0x04               ; DM: 1 = binary
    jz .bcd_mode
    GUEST_EXIT 1
.bcd_mode:
    call rtc_wait_uip
    CMOS_READ 0x00              ; seconds 00-59
    mov ah, 0x59
    mov bl, 0x00
    call check_bcd_range
    CMOS_READ 0x02              ; minutes 00-59
    mov ah, 0x59
    mov bl, 0x00
    call check_bcd_range
    CMOS_READ 0x04              ; hours: 00-23, or 01-12 with bit 7 = PM in 12-hour mode
    test byte [var_bmode], 0x02
    jnz .h24
    and al, 0x7f
    mov ah, 0x12
    mov bl, 0x01
    call check_bcd_range
    jmp .hours_done
.h24:
    mov ah, 0x23
    mov bl, 0x00
    call check_bcd_range
.hours_done:
    CMOS_READ 0x07              ; day of month 01-31
    mov ah, 0x31
    mov bl, 0x01
    call check_bcd_range
    CMOS_READ 0x08              ; month 01-12
    mov ah, 0x12
    mov bl, 0x01
    call check_bcd_range
    CMOS_READ 0x09              ; year 00-99
    mov ah, 0x99
    mov bl, 0x00
    call check_bcd_range
    CMOS_READ 0x32              ; century (the IBM PC/AT CMOS convention SeaBIOS reads)
    mov ah, 0x99
    mov bl, 0x00
    call check_bcd_range

    ; The seconds must advance.  PIT channel 2 in mode 3 from 65536 (54.9 ms per period) is the
    ; time limit: 55 rising edges of OUT2 (port 0x61 bit 5) are about 3 s.
    in al, 0x61
    and al, 0xfc
    or al, 0x01                 ; gate 2 on, speaker off
    out 0x61, al
    mov al, 0xb6                ; channel 2, lobyte/hibyte, mode 3, binary
    out 0x43, al
    xor al, al
    out 0x42, al
    out 0x42, al
    call rtc_wait_uip
    CMOS_READ 0x00
    mov bl, al                  ; BL: seconds at the start
    xor cx, cx                  ; CX: OUT2 rising edges seen
    in al, 0x61
    and al, 0x20
    mov bh, al                  ; BH: last OUT2
.sec_poll:
    CMOS_READ 0x00
    cmp al, bl
    jne .sec_ok
    in al, 0x61
    and al, 0x20
    cmp al, bh
    je .sec_poll
    mov bh, al
    test al, al
    jz .sec_poll
    inc cx
    cmp cx, 55
    jb .sec_poll
    GUEST_EXIT 4
.sec_ok:

    ; ---- CMOS memory size bytes (IBM PC/AT layout, as SeaBIOS reads them) ----
    CMOS_READ 0x15
    cmp al, 0x80                ; 640 KiB = 0x0280
    jne .bad_base
    CMOS_READ 0x16
    cmp al, 0x02
    je .base_ok
.bad_base:
    GUEST_EXIT 5
.base_ok:
    CMOS_READ 0x17              ; (32 MiB - 1 MiB) / 1 KiB = 31744 = 0x7c00
    cmp al, 0x00
    jne .bad_ext
    CMOS_READ 0x18
    cmp al, 0x7c
    jne .bad_ext
    CMOS_READ 0x30
    cmp al, 0x00
    jne .bad_ext
    CMOS_READ 0x31
    cmp al, 0x7c
    je .ext_ok
.bad_ext:
    GUEST_EXIT 6
.ext_ok:
    CMOS_READ 0x34              ; (32 MiB - 16 MiB) / 64 KiB = 256 = 0x0100
    cmp al, 0x00
    jne .bad_high
    CMOS_READ 0x35
    cmp al, 0x01
    je .high_ok
.bad_high:
    GUEST_EXIT 7
.high_ok:

    ; ---- fw_cfg, QEMU's interface (docs/specs/fw_cfg.rst): selector 16-bit LE, data byte-wide ----
    mov ax, 0x0000              ; FW_CFG_SIGNATURE
    call fwcfg_select
    call fwcfg_read32
    cmp eax, 'QEMU'
    je .sig_ok
    GUEST_EXIT 8
.sig_ok:
    mov ax, 0x0001              ; FW_CFG_ID: bit 0 traditional interface, bit 1 DMA
    call fwcfg_select
    call fwcfg_read32
    and eax, 3
    cmp eax, 3
    je .id_ok
    GUEST_EXIT 9
.id_ok:
    mov ax, 0x0003              ; FW_CFG_RAM_SIZE, 64-bit little endian
    call fwcfg_select
    call fwcfg_read32
    mov ebx, eax
    call fwcfg_read32
    test eax, eax
    jnz .bad_ram
    cmp ebx, RAM_BYTES
    je .ram_ok
.bad_ram:
    GUEST_EXIT 10
.ram_ok:

    ; File directory (selector 0x19): a 32-bit big-endian count, then 64-byte entries
    ; { u32 size BE, u16 select BE, u16 reserved, char name[56] }.
    mov ax, 0x0019
    call fwcfg_select
    call fwcfg_read32
    bswap eax
    cmp eax, 0x1000             ; a sane bound on the count: the data is untrusted too
    jbe .count_ok
    mov eax, 0x1000
.count_ok:
    mov ebp, eax                ; EBP: entries left
.dir_next:
    test ebp, ebp
    jnz .dir_read
    GUEST_EXIT 11
.dir_read:
    dec ebp
    mov di, dir_entry
    mov cx, 64
    call fwcfg_read_buf
    mov si, name_e820
    mov di, dir_entry + 8
    mov cx, name_e820_len
.cmp:
    mov al, [cs:si]
    cmp al, [di]
    jne .dir_next
    inc si
    inc di
    loop .cmp

    ; etc/e820: entries { u64 address, u64 length, u32 type } little endian; type 1 = RAM.
    mov eax, [dir_entry]
    bswap eax
    mov esi, eax                ; ESI: file size
    test esi, esi
    jz .bad_e820_size
    cmp esi, E820_MAX
    ja .bad_e820_size
    xor edx, edx
    mov eax, esi
    mov ecx, 20
    div ecx
    test edx, edx
    jz .e820_size_ok
.bad_e820_size:
    GUEST_EXIT 12
.e820_size_ok:
    mov ebp, eax                ; EBP: entry count
    mov ax, [dir_entry + 4]
    xchg al, ah                 ; selector, big endian in the directory
    call fwcfg_select
    mov di, e820_buf
    mov cx, si
    call fwcfg_read_buf
    mov di, e820_buf
.e820_next:
    cmp dword [di + 16], 1
    jne .e820_skip
    mov eax, [di]               ; end = address + length (64-bit)
    mov edx, [di + 4]
    add eax, [di + 8]
    adc edx, [di + 12]
    test edx, edx
    jnz .e820_skip
    cmp eax, RAM_BYTES
    je .e820_ok
.e820_skip:
    add di, 20
    dec ebp
    jnz .e820_next
    GUEST_EXIT 13
.e820_ok:

    ; DMA: FWCfgDmaAccess { u32 control BE, u32 length BE, u64 address BE }; writing the
    ; descriptor's address (high half to 0x514, low half to 0x518, big endian) starts it.
    ; control = selector << 16 | SELECT (0x08) | READ (0x02); the device clears it when done.
    mov dword [dma_buf], 0
    mov eax, (0x0000 << 16) | 0x08 | 0x02
    bswap eax
    mov [dma_desc], eax
    mov eax, 4
    bswap eax
    mov [dma_desc + 4], eax
    mov dword [dma_desc + 8], 0
    mov eax, dma_buf
    bswap eax
    mov [dma_desc + 12], eax
    xor eax, eax
    mov dx, FWCFG_DMA_HI
    out dx, eax
    mov eax, dma_desc
    bswap eax
    mov dx, FWCFG_DMA_LO
    out dx, eax
    cmp dword [dma_desc], 0     ; done and no error bit (0x01)
    jne .bad_dma
    cmp dword [dma_buf], 'QEMU'
    je .dma_ok
.bad_dma:
    GUEST_EXIT 14
.dma_ok:

    mov si, msg_done
    call com_puts
    GUEST_EXIT 0

; Checks AL is packed BCD and BL <= AL <= AH (both BCD, so they compare as numbers).
check_bcd_range:
    push ax
    mov bh, al
    and bh, 0x0f
    cmp bh, 9
    ja .bad_bcd
    mov bh, al
    shr bh, 4
    cmp bh, 9
    ja .bad_bcd
    cmp al, ah
    ja .bad_range
    cmp al, bl
    jb .bad_range
    pop ax
    ret
.bad_bcd:
    GUEST_EXIT 2
.bad_range:
    GUEST_EXIT 3

; Waits until the RTC's update-in-progress flag (register A bit 7) is clear.
rtc_wait_uip:
    push cx
    xor cx, cx
.poll:
    CMOS_READ 0x0a
    test al, 0x80
    jz .clear
    loop .poll
    GUEST_EXIT 15
.clear:
    pop cx
    ret

; AX: selector.
fwcfg_select:
    push dx
    mov dx, FWCFG_SEL
    out dx, ax
    pop dx
    ret

; EAX <- the next 4 data bytes, first byte lowest.
fwcfg_read32:
    push cx
    push dx
    mov dx, FWCFG_DATA
    mov cx, 4
.byte:
    in al, dx
    ror eax, 8
    loop .byte
    pop dx
    pop cx
    ret

; CX bytes of data -> [ES:DI].
fwcfg_read_buf:
    push dx
    mov dx, FWCFG_DATA
    rep insb
    pop dx
    ret

name_e820: db "etc/e820", 0
name_e820_len equ $ - name_e820
msg_start: db "VIREO-GUEST cmos-fwcfg start", 13, 10, 0
msg_done:  db "VIREO-GUEST cmos-fwcfg OK", 13, 10, 0

    SERIAL_CODE com

    RESET_VECTOR start
