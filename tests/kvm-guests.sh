#!/usr/bin/env bash
# kvm-guests.sh - runs every test guest (tests/guests/*.asm) under the KVM backend: exit codes and COM1 output.
#
# Each guest ends through the test exit device with 0 when its checks pass and a
# distinct code per failed check (listed at the top of its .asm file).
set -u
. "${VIREO_SRC:?}/tests/lib/kvm.bash"
kvm_need_vars
kvm_skip_unless_usable

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-kvm-guests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# guest:expected line on COM1 (each line must appear; '|' separates several).
guests=(
    "hello:VIREO-GUEST hello from COM1"
    "pm-long:VIREO-GUEST pm-long: protected mode|VIREO-GUEST pm-long: long mode OK"
    "cmos-fwcfg:VIREO-GUEST cmos-fwcfg OK"
    "pit-irq:VIREO-GUEST pit-irq 50 ticks OK"
)

failed=0
for entry in "${guests[@]}"; do
    guest=${entry%%:*}
    expect=${entry#*:}
    kvm_run_guest "$VM" "$guest" "$tmp"
    if [ "$RUN_RC" -ne 0 ]; then
        kvm_skip_if_backend_unavailable "$RUN_LOG"
        echo "FAIL $guest: vireo-vm exited with $RUN_RC (expected 0)"
        kvm_explain_exit "$guest" "$RUN_RC"
        kvm_show_failure
        failed=1
        continue
    fi
    ok=1
    IFS='|' read -r -a lines <<<"$expect"
    for line in "${lines[@]}"; do
        if ! grep -a -q -F -- "$line" "$RUN_SERIAL" 2>/dev/null; then
            echo "FAIL $guest: COM1 lacks '$line'"
            ok=0
        fi
    done
    if [ $ok -eq 1 ]; then
        echo "ok   $guest"
    else
        kvm_show_failure
        failed=1
    fi
done
exit $failed
