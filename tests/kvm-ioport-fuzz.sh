#!/usr/bin/env bash
# kvm-ioport-fuzz.sh - random writes and reads on all 65536 I/O ports under KVM must not crash or hang Vireo.
#
# Runs tests/guests/ioport-fuzz.asm with the normal build's vireo-vm and with the
# sanitizer build's (AddressSanitizer + UBSan), which turns any
# out-of-bounds access in a device's port handler into a failure.
set -u
. "${VIREO_SRC:?}/tests/lib/kvm.bash"
kvm_need_vars
kvm_skip_unless_usable

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-kvm-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

vms=("$VM")
# kmk check builds the sanitizer variant beside the normal one; under kmk check VIREO_SANITIZE=1
# the normal binary already is the sanitizer build.
if [ "$(basename "$VIREO_OUT")" != sanitize ]; then
    san_vm="$VIREO_OUT/../sanitize/stage/bin/vireo-vm"
    if [ ! -x "$san_vm" ]; then
        echo "FAIL: no sanitizer build at $san_vm (kmk check builds it; kmk VIREO_SANITIZE=1 by hand)"
        exit 1
    fi
    vms+=("$san_vm")
fi

failed=0
for vm in "${vms[@]}"; do
    mkdir -p "$tmp/run"
    KVM_GUEST_TIMEOUT=280 KVM_VM_TIMEOUT=240 kvm_run_guest "$vm" ioport-fuzz "$tmp/run"
    what="ioport-fuzz ($vm)"
    if [ "$RUN_RC" -ne 0 ]; then
        kvm_skip_if_backend_unavailable "$RUN_LOG"
        echo "FAIL $what: vireo-vm exited with $RUN_RC (expected 0; 124 means it hung until --timeout)"
        kvm_show_failure
        failed=1
    elif ! grep -a -q -F "VIREO-GUEST ioport-fuzz done" "$RUN_SERIAL"; then
        echo "FAIL $what: COM1 lacks the final 'ioport-fuzz done' line"
        kvm_show_failure
        failed=1
    elif grep -q -e "AddressSanitizer" -e "runtime error:" -e "LeakSanitizer" "$RUN_LOG"; then
        echo "FAIL $what: sanitizer report"
        grep -m 20 -A 20 -e "AddressSanitizer" -e "runtime error:" -e "LeakSanitizer" "$RUN_LOG"
        failed=1
    else
        echo "ok   $what"
    fi
    rm -rf "$tmp/run"
done
exit $failed
