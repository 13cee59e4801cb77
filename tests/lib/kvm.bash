# kvm.bash - helpers for the KVM integration tests (sourced by tests/kvm-*.sh; not a test itself).
#
# Exit status convention of tools/run-tests.sh: 0 pass, 77 skip (the last output line
# says why), anything else fails.  These tests skip only when /dev/kvm is missing or
# unusable; every other problem is a failure.

kvm_need_vars() {
    : "${VIREO_BIN:?VIREO_BIN (folder with vireo-vm) is not set}"
    : "${VIREO_OUT:?VIREO_OUT (the out/.../release folder) is not set}"
    : "${VIREO_SRC:?VIREO_SRC (the repository root) is not set}"
    VM="$VIREO_BIN/vireo-vm"
    if [ ! -x "$VM" ]; then
        echo "FAIL: $VM is missing (build first)"
        exit 1
    fi
}

# Skips the test when /dev/kvm cannot be used by this user.
kvm_skip_unless_usable() {
    if [ ! -e /dev/kvm ]; then
        echo "SKIP: /dev/kvm does not exist (no KVM on this host)"
        exit 77
    fi
    if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
        echo "SKIP: /dev/kvm is not readable and writable by $(id -un)"
        exit 77
    fi
}

# After a failed vireo-vm run: skips when its log says the KVM backend could not open KVM.
kvm_skip_if_backend_unavailable() {
    local log=$1
    # VERR_NO_KVM's message; the backend logs the reason on the line before it.
    if grep -q -e "KVM is not available" "$log" 2>/dev/null; then
        grep -m1 -e " kvm: " "$log"
        echo "SKIP: /dev/kvm exists but KVM is unusable here (see the line above)"
        exit 77
    fi
}

# kvm_explain_exit GUEST CODE: prints the guest's own description of a failure exit code.
kvm_explain_exit() {
    local asm="$VIREO_SRC/tests/guests/$1.asm" code=$2
    [ -f "$asm" ] || return 0
    grep -E "^;[[:space:]]+$code[[:space:]]" "$asm" | head -n 1 | sed "s/^;[[:space:]]*/    guest says: exit /"
}

# kvm_run_guest VM_BINARY GUEST WORKDIR: runs one guest image with the backend $VIREO_EXEC (default kvm), $VIREO_CPUS
# vCPUs (default 1) and the test exit device; sets RUN_RC, RUN_SERIAL (COM1 text file) and RUN_LOG.
kvm_run_guest() {
    local vm=$1 guest=$2 dir=$3
    local image="$VIREO_OUT/guests/$guest.bin"
    RUN_SERIAL="$dir/$guest.com1.txt"
    RUN_LOG="$dir/$guest.vm.log"
    rm -f "$RUN_SERIAL" "$RUN_LOG"
    if [ ! -f "$image" ]; then
        echo "FAIL: guest image $image is missing (tests/Makefile.kmk builds it)"
        RUN_RC=1
        return
    fi
    # vireo-vm powers off by itself after --timeout (exit 124); the outer timeout is the backstop.
    timeout -k 5 "${KVM_GUEST_TIMEOUT:-150}" "$vm" --exec "${VIREO_EXEC:-kvm}" --cpus "${VIREO_CPUS:-1}" --memory 32M --bios "$image" \
        --serial1 "file:$RUN_SERIAL" --test-exit --log "$RUN_LOG" --timeout "${KVM_VM_TIMEOUT:-120}" \
        >"$dir/$guest.stdout" 2>&1
    RUN_RC=$?
    cat "$dir/$guest.stdout" >>"$RUN_LOG" 2>/dev/null
}

kvm_show_failure() {
    echo "---- COM1 ($RUN_SERIAL) ----"
    [ -f "$RUN_SERIAL" ] && tail -c 2000 "$RUN_SERIAL" | tr -c '[:print:]\n' '.'
    echo
    echo "---- log ($RUN_LOG) ----"
    [ -f "$RUN_LOG" ] && tail -n 40 "$RUN_LOG"
}
