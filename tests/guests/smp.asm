; smp.asm - several CPUs: the BSP starts every AP with INIT-SIPI-SIPI, all CPUs hammer shared counters
; with locked instructions, then IPIs go BSP -> each AP, BSP -> all but self, and AP -> BSP (SDM vol. 3A,
; 8.4 MP initialisation, 8.1 locked atomic operations, 10.6 issuing IPIs).  Only for backends that show
; the local APIC model.  The CPU count comes from CMOS 0x5F (the board stores vCPUs - 1 there).
;
; ITERATIONS (nasm -DITERATIONS=n, default 100000) is how often each CPU runs each atomic operation; a
; backend that runs guest code slowly builds the guest with a smaller count.
;
; Exit codes: 0 all checks passed
;   1 IA32_APIC_BASE of the BSP is not 0xFEE00000 with the enable and BSP bits
;   2 the BSP's APIC ID is not 0, or CPUID.1 does not report the APIC
;   3 an AP did not start (check in from 32-bit code) within about 8 s of TSC time
;   4 the APIC IDs are not exactly 0 .. CPUs-1, each once
;   5 an AP's CPUID initial APIC ID differs from its APIC ID register, or its IA32_APIC_BASE has the BSP bit
;   6 the CPUs did not finish the atomic operations within about 8 s of TSC time after the BSP
;   7 LOCK INC lost increments            8 LOCK XADD lost additions
;   9 LOCK CMPXCHG lost increments        10 LOCK CMPXCHG8B lost increments
;  11 LOCK ADD on a dword split across a page boundary lost additions
;  12 the XCHG spinlock did not exclude: the plain read-modify-write it protects lost updates
;  13 an IPI to one AP (physical destination) did not arrive there
;  14 the IPI to all excluding self did not reach every AP exactly once
;  15 the BSP took an IPI it did not send to itself
;  16 the IPI an AP sent to the BSP did not arrive
;  17 an unexpected interrupt or exception arrived
;  18 CPUID.1 does not count every CPU (HTT and EBX[23:16] at least the CPU count)
%include "vireo-guest.inc"

%ifndef ITERATIONS
%define ITERATIONS    100000
%endif

%define APIC          0xfee00000
%define APIC_ID       0x020
%define APIC_EOI      0x0b0
%define APIC_SVR      0x0f0
%define APIC_ICR_LO   0x300
%define APIC_ICR_HI   0x310
%define ICR_BUSY      (1 << 12)
%define ICR_ASSERT    (1 << 14)
%define ICR_OTHERS    (3 << 18)       ; destination shorthand: all excluding self
%define DM_INIT       (5 << 8)
%define DM_STARTUP    (6 << 8)
%define IPI_VECTOR    0x40            ; BSP -> APs
%define BACK_VECTOR   0x41            ; AP -> BSP
%define AP_PAGE       0xf8            ; SIPI vector: the AP entry at 0xF8000, image offset 0x8000
%define TIMEOUT_SHIFT 34              ; about 8.6 s of a 2 GHz TSC

%define IDT_BASE      0x1000
%define STACKS        0x40000         ; CPU n's stack ends at STACKS + (n + 1) * 4 KiB
%define DATA          0x20000
%define var_ncpus     DATA + 0x000
%define var_started   DATA + 0x040    ; APs that reached 32-bit code
%define var_go        DATA + 0x080    ; the BSP lets the atomics begin
%define var_done      DATA + 0x0c0    ; CPUs that finished them
%define var_idmask    DATA + 0x100    ; bit n: APIC ID n checked in
%define var_badid     DATA + 0x140    ; APs whose CPUID or APIC base disagreed
%define var_sendback  DATA + 0x180    ; APIC ID + 1 of the AP that must send BACK_VECTOR to the BSP
%define var_back      DATA + 0x1c0    ; BACK_VECTOR interrupts the BSP took
%define var_lock      DATA + 0x200
%define var_shared    DATA + 0x240    ; changed only under var_lock
%define cnt_inc       DATA + 0x280
%define cnt_xadd      DATA + 0x2c0
%define cnt_cas       DATA + 0x300
%define cnt_8b        DATA + 0x340    ; a qword, starting just below a carry into the high dword
%define ipi_count     DATA + 0x400    ; one dword per APIC ID: IPI_VECTOR interrupts taken
%define split_cnt     DATA + 0x1ffe   ; a dword across the page boundary at DATA + 0x2000
%define DATA_BYTES    0x3000
%define CNT8B_BASE    0xffffffff

%define CODE_SEL      0x08
%define DATA_SEL      0x10

    bits 16
    org 0

start:
    REAL_MODE_SETUP
    call com16_init
    mov si, msg_start
    call com16_puts
    CMOS_READ 0x5f
    movzx ebx, al
    inc ebx                            ; CPUs = CMOS 0x5F + 1
    call load_tables
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword CODE_SEL:(ROM_LOW + bsp32)

; GDT and IDT registers (shared with the APs); the IDT itself is built in RAM by the BSP.
load_tables:
    o32 lgdt [cs:gdt_ptr]              ; o32: all 32 bits of the base
    o32 lidt [cs:idt_ptr]
    ret

    SERIAL_CODE com16

    bits 32
bsp32:
    mov ax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, STACKS + 0x1000
    cld
    mov edi, DATA
    mov ecx, DATA_BYTES / 4
    xor eax, eax
    rep stosd
    mov [var_ncpus], ebx
    mov dword [cnt_8b], CNT8B_BASE

    ; IDT: every vector to 'unexpected', then the two IPI vectors and the spurious vector.
    mov edi, IDT_BASE
    mov ecx, 256
    mov eax, ROM_LOW + unexpected
.idt:
    call set_gate
    add edi, 8
    loop .idt
    mov edi, IDT_BASE + IPI_VECTOR * 8
    mov eax, ROM_LOW + ipi_handler
    call set_gate
    mov edi, IDT_BASE + BACK_VECTOR * 8
    mov eax, ROM_LOW + back_handler
    call set_gate
    mov edi, IDT_BASE + 0xff * 8
    mov eax, ROM_LOW + spurious
    call set_gate

    ; The BSP: IA32_APIC_BASE enabled at the default address with the BSP bit; APIC ID 0.
    mov ecx, 0x1b
    rdmsr
    and eax, 0xfffff900
    cmp eax, APIC | (1 << 11) | (1 << 8)
    je .base_ok
    mov al, 1
    jmp exit32
.base_ok:
    mov eax, 1
    cpuid
    test edx, 1 << 9
    jz .bad_bsp_id
    cmp dword [APIC + APIC_ID], 0
    je .bsp_id_ok
.bad_bsp_id:
    mov al, 2
    jmp exit32
.bsp_id_ok:
    ; CPUID.1: with several CPUs, HTT and at least that many logical processor IDs in EBX[23:16].
    mov ecx, [var_ncpus]
    cmp ecx, 1
    je .count_ok
    test edx, 1 << 28
    jz .bad_count
    shr ebx, 16
    and ebx, 0xff
    cmp ebx, ecx
    jae .count_ok
.bad_count:
    mov al, 18
    jmp exit32
.count_ok:
    call apic_enable
    lock bts dword [var_idmask], 0

    ; INIT-SIPI-SIPI to all excluding self (SDM vol. 3A, 8.4.4.1).
    cmp dword [var_ncpus], 1
    je .all_started
    mov dword [APIC + APIC_ICR_HI], 0
    mov eax, ICR_OTHERS | ICR_ASSERT | DM_INIT
    call send_ipi
    call short_delay
    mov eax, ICR_OTHERS | ICR_ASSERT | DM_STARTUP | AP_PAGE
    call send_ipi
    call short_delay
    mov eax, ICR_OTHERS | ICR_ASSERT | DM_STARTUP | AP_PAGE
    call send_ipi
    mov ebx, [var_ncpus]
    dec ebx
    mov esi, var_started
    call wait_equal
    jnc .all_started
    mov al, 3
    jmp exit32
.all_started:
    mov ecx, [var_ncpus]               ; every ID from 0 to CPUs-1, each once
    mov eax, 0xffffffff
    cmp ecx, 32
    je .mask
    mov eax, 1
    shl eax, cl
    dec eax
.mask:
    cmp [var_idmask], eax
    jne .bad_ids
    cmp dword [var_badid], 0
    je .ids_ok
    mov al, 5
    jmp exit32
.bad_ids:
    mov al, 4
    jmp exit32
.ids_ok:
    mov esi, ROM_LOW + msg_started
    call com32_puts
    mov eax, [var_ncpus]
    call put_dec
    mov esi, ROM_LOW + msg_cpus
    call com32_puts

    ; Everybody runs the atomics at once.
    mov dword [var_go], 1
    call atomics
    lock inc dword [var_done]
    mov ebx, [var_ncpus]
    mov esi, var_done
    call wait_equal
    jnc .atomics_done
    mov al, 6
    jmp exit32
.atomics_done:
    mov ecx, [var_ncpus]
    imul ecx, ecx, ITERATIONS          ; operations of each kind in all
    mov al, 7
    cmp [cnt_inc], ecx
    jne exit32
    mov al, 9
    cmp [cnt_cas], ecx
    jne exit32
    mov al, 11
    cmp [split_cnt], ecx
    jne exit32
    mov al, 10
    mov edx, CNT8B_BASE                ; CNT8B_BASE + the total carries into the high dword once
    add edx, ecx
    cmp [cnt_8b], edx
    jne exit32
    cmp dword [cnt_8b + 4], 1
    jne exit32
    mov al, 8
    lea edx, [ecx * 2]
    cmp [cnt_xadd], edx
    jne exit32
    mov al, 12
    lea edx, [ecx * 2 + ecx]
    cmp [var_shared], edx
    jne exit32
    mov esi, ROM_LOW + msg_atomics
    call com32_puts

    ; IPIs: one to each AP, then one to all excluding self; each AP counts what it took.
    sti
    mov ebx, 1
.each_ap:
    cmp ebx, [var_ncpus]
    jae .each_done
    mov eax, ebx
    shl eax, 24
    mov [APIC + APIC_ICR_HI], eax
    mov eax, ICR_ASSERT | IPI_VECTOR
    call send_ipi
    push ebx
    lea esi, [ipi_count + ebx * 4]
    mov ebx, 1
    call wait_equal
    pop ebx
    jnc .next_ap
    mov al, 13
    jmp exit32
.next_ap:
    inc ebx
    jmp .each_ap
.each_done:
    mov dword [APIC + APIC_ICR_HI], 0
    mov eax, ICR_OTHERS | ICR_ASSERT | IPI_VECTOR
    call send_ipi
    mov ecx, 1
.each_broadcast:
    cmp ecx, [var_ncpus]
    jae .broadcast_done
    push ecx
    lea esi, [ipi_count + ecx * 4]
    mov ebx, 2
    call wait_equal
    pop ecx
    jnc .broadcast_next
    mov al, 14
    jmp exit32
.broadcast_next:
    inc ecx
    jmp .each_broadcast
.broadcast_done:
    call short_delay                   ; time for a stray copy to reach the BSP
    cmp dword [ipi_count], 0
    je .self_ok
    mov al, 15
    jmp exit32
.self_ok:
    ; The last AP sends BACK_VECTOR to the BSP once woken from its HLT by another IPI.
    mov ebx, [var_ncpus]
    cmp ebx, 1
    je .back_ok
    mov [var_sendback], ebx            ; APIC ID + 1 of the last AP
    dec ebx
    shl ebx, 24
    mov [APIC + APIC_ICR_HI], ebx
    mov eax, ICR_ASSERT | IPI_VECTOR
    call send_ipi
    mov ebx, 1
    mov esi, var_back
    call wait_equal
    jnc .back_ok
    mov al, 16
    jmp exit32
.back_ok:
    mov esi, ROM_LOW + msg_ipis
    call com32_puts
    GUEST_EXIT 0

; ---- Application processors -------------------------------------------------------------------

ap32:
    mov ax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov ebx, [APIC + APIC_ID]
    shr ebx, 24                        ; EBX: this CPU's APIC ID from here on
    lea esp, [ebx + 1]
    shl esp, 12
    add esp, STACKS
    cld
    call apic_enable
    ; CPUID's initial APIC ID must be the APIC's, and an AP is not the BSP.
    mov eax, 1
    push ebx
    cpuid
    shr ebx, 24
    mov eax, ebx
    pop ebx
    cmp eax, ebx
    jne .bad
    mov ecx, 0x1b
    rdmsr
    test eax, 1 << 8
    jnz .bad
    cmp ebx, [var_ncpus]
    jae .bad
    jmp .check_in
.bad:
    lock inc dword [var_badid]
.check_in:
    and ebx, 31
    lock bts dword [var_idmask], ebx
    jnc .unique
    lock inc dword [var_badid]
.unique:
    lock inc dword [var_started]
.wait_go:
    pause
    cmp dword [var_go], 0
    je .wait_go
    call atomics
    lock inc dword [var_done]
    ; Idle in HLT; IPIs wake it.  Asked to, it sends BACK_VECTOR to the BSP (APIC ID 0).
    lea edx, [ebx + 1]
.idle:
    cli
    cmp [var_sendback], edx
    jne .sleep
    mov dword [var_sendback], 0
    mov dword [APIC + APIC_ICR_HI], 0
    mov eax, ICR_ASSERT | BACK_VECTOR
    call send_ipi
.sleep:
    sti
    hlt                                ; STI's shadow: an interrupt pending since CLI wakes this HLT
    jmp .idle

; ---- Shared code --------------------------------------------------------------------------------

; ITERATIONS rounds of each locked operation on the shared counters.  Clobbers EAX, ECX, EDX, ESI, EDI.
atomics:
    push ebx
    mov esi, ITERATIONS
.round:
    lock inc dword [cnt_inc]
    mov eax, 2
    lock xadd [cnt_xadd], eax
    mov eax, [cnt_cas]
.cas:
    lea edx, [eax + 1]
    lock cmpxchg [cnt_cas], edx        ; EAX holds the current value when it fails
    jnz .cas
    mov eax, [cnt_8b]
    mov edx, [cnt_8b + 4]
.cas8:
    mov ebx, eax
    mov ecx, edx
    add ebx, 1
    adc ecx, 0
    lock cmpxchg8b [cnt_8b]
    jnz .cas8
    lock add dword [split_cnt], 1
    ; A test-and-test-and-set lock with XCHG (locked without a prefix) around a plain update.
    mov eax, 1
.take:
    xchg [var_lock], eax
    test eax, eax
    jz .locked
.spin:
    pause
    cmp dword [var_lock], 0
    jne .spin
    mov eax, 1
    jmp .take
.locked:
    mov edi, [var_shared]
    add edi, 1
    add edi, 2
    mov [var_shared], edi
    mov dword [var_lock], 0
    dec esi
    jnz .round
    pop ebx
    ret

; Software-enables this CPU's APIC with spurious vector 0xFF (SDM vol. 3A, 10.9).
apic_enable:
    mov dword [APIC + APIC_SVR], 0x1ff
    ret

; Writes EAX to ICR low (the ICR high half is already set) and waits for the send to complete.
send_ipi:
    mov [APIC + APIC_ICR_LO], eax
.busy:
    test dword [APIC + APIC_ICR_LO], ICR_BUSY
    jz .sent
    pause
    jmp .busy
.sent:
    ret

short_delay:
    push ecx
    mov ecx, 20000
.spin:
    pause
    loop .spin
    pop ecx
    ret

; Waits until the dword at [ESI] reaches EBX or about 2^TIMEOUT_SHIFT TSC ticks pass: CF set on timeout.
wait_equal:
    push ecx
    push edx
    push edi
    rdtsc
    mov edi, edx
    add edi, 1 << (TIMEOUT_SHIFT - 32) ; the deadline's high dword
.poll:
    cmp [esi], ebx
    je .ok
    pause
    rdtsc
    cmp edx, edi
    jb .poll
    stc
    jmp .out
.ok:
    clc
.out:
    pop edi
    pop edx
    pop ecx
    ret

; EDI: the gate, EAX: the handler's linear address.  32-bit interrupt gate, DPL 0 (SDM vol. 3A, 6.11).
set_gate:
    mov word [edi], ax
    mov word [edi + 2], CODE_SEL
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov word [edi + 6], ax
    shl eax, 16
    ret

; EAX (below 100) -> COM1 in decimal.
put_dec:
    push eax
    push edx
    push ecx
    xor edx, edx
    mov ecx, 10
    div ecx
    mov ecx, edx                       ; the ones (com32_putc changes DX)
    test eax, eax
    jz .ones
    add al, '0'
    call com32_putc
.ones:
    mov al, cl
    add al, '0'
    call com32_putc
    pop ecx
    pop edx
    pop eax
    ret

ipi_handler:
    push eax
    mov eax, [APIC + APIC_ID]
    shr eax, 24
    and eax, 31
    lock inc dword [ipi_count + eax * 4]
    mov dword [APIC + APIC_EOI], 0
    pop eax
    iretd

back_handler:
    lock inc dword [var_back]
    mov dword [APIC + APIC_EOI], 0
    iretd

spurious:
    iretd                              ; spurious interrupts get no EOI (SDM vol. 3A, 10.9)

unexpected:
    mov al, 17
exit32:
    GUEST_EXIT_AL

    SERIAL_CODE com32

msg_start:   db "VIREO-GUEST smp: start", 13, 10, 0
msg_started: db "VIREO-GUEST smp: ", 0
msg_cpus:    db " CPUs started", 13, 10, 0
msg_atomics: db "VIREO-GUEST smp: atomics OK", 13, 10, 0
msg_ipis:    db "VIREO-GUEST smp: IPIs OK", 13, 10, 0

    ; The GDT lives in ROM with the accessed bits preset, so loading a segment writes nothing.
    align 8
gdt:
    dq 0
    dq 0x00cf9b000000ffff              ; 0x08: flat 32-bit code
    dq 0x00cf93000000ffff              ; 0x10: flat data
gdt_end:
gdt_ptr:
    dw gdt_end - gdt - 1
    dd ROM_LOW + gdt
idt_ptr:
    dw 256 * 8 - 1
    dd IDT_BASE

; ---- The AP's start-up page: SIPI vector AP_PAGE starts it here in real mode, CS = 0xF800, IP = 0 ----
    times 0x8000 - ($ - $$) db 0
    bits 16
ap_entry:
    cli
    jmp 0xf000:ap_real                 ; the same bytes with CS = 0xF000, where labels are image offsets
ap_real:
    o32 lgdt [cs:gdt_ptr]              ; no CALL: the APs have no stack of their own yet
    o32 lidt [cs:idt_ptr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword CODE_SEL:(ROM_LOW + ap32)

    RESET_VECTOR start
