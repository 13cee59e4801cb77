# guest-list.bash - the test guests every CPU backend must pass, with what each prints (sourced by tests).
#
# guest:expected line on COM1 (each line must appear; '|' separates several).  Each guest
# ends through the test exit device with 0 when its checks pass.
guests=(
    "hello:VIREO-GUEST hello from COM1"
    "pm-long:VIREO-GUEST pm-long: protected mode|VIREO-GUEST pm-long: long mode OK"
    "cmos-fwcfg:VIREO-GUEST cmos-fwcfg OK"
    "pit-irq:VIREO-GUEST pit-irq 50 ticks OK"
)
# Privilege transitions through gates, task switches, SYSCALL/SYSRET, exceptions with error codes.
# KVM runs it only on hosts with vmx/svm: a /dev/kvm without them emulates and cannot do
# protected-mode INT n / IRET (see the guest's header).
guest_sys_gates="sys-gates:VIREO-GUEST sys-gates: protected mode gates, tasks and error codes OK|VIREO-GUEST sys-gates: long mode IST and SYSCALL OK"
# The local APIC timer and a self-NMI: only backends that show Vireo's APIC model to the guest (the software CPU).
# The A20 gate's 1 MiB wrap: the KVM API cannot mask address bit 20 (the KVM backend logs that it ignores A20 off).
guest_a20="a20:VIREO-GUEST a20 OK"
# The HPET in legacy replacement mode muting the PIT, with interrupts through a protected-mode IDT (as sys-gates,
# beyond a /dev/kvm without vmx/svm): run by the software CPU's list.
guest_hpet="hpet:VIREO-GUEST hpet counter times the PIT OK|VIREO-GUEST hpet legacy timer 0 OK|VIREO-GUEST hpet PIT muted OK|VIREO-GUEST hpet PIT back OK"
guest_apic_timer="apic-timer:VIREO-GUEST apic-timer periodic OK|VIREO-GUEST apic-timer one-shot OK|VIREO-GUEST apic-timer tsc-deadline OK|VIREO-GUEST apic-timer self-NMI OK"

# run_guest_list LABEL WORKDIR: runs every guest above with $VM and $VIREO_EXEC; returns 1 on any failure.
run_guest_list() {
    local label=$1 dir=$2 entry guest expect line ok failed=0
    for entry in "${guests[@]}"; do
        guest=${entry%%:*}
        expect=${entry#*:}
        kvm_run_guest "$VM" "$guest" "$dir"
        if [ "$RUN_RC" -ne 0 ]; then
            [ "${VIREO_EXEC:-kvm}" = kvm ] && kvm_skip_if_backend_unavailable "$RUN_LOG"
            echo "FAIL $guest ($label): vireo-vm exited with $RUN_RC (expected 0)"
            kvm_explain_exit "$guest" "$RUN_RC"
            kvm_show_failure
            failed=1
            continue
        fi
        ok=1
        IFS='|' read -r -a lines <<<"$expect"
        for line in "${lines[@]}"; do
            if ! grep -a -q -F -- "$line" "$RUN_SERIAL" 2>/dev/null; then
                echo "FAIL $guest ($label): COM1 lacks '$line'"
                ok=0
            fi
        done
        if [ $ok -eq 1 ]; then
            echo "ok   $guest ($label)"
        else
            kvm_show_failure
            failed=1
        fi
    done
    return $failed
}
