#!/usr/bin/env bash
# kvm-seabios.sh - boots the default firmware (SeaBIOS) under KVM with no disks and watches its COM1 console.
# With VIREO_EXEC=soft (tests/soft-seabios.sh) the same checks run on the software CPU.
#
# The board sets fw_cfg "etc/sercon-port" so SeaBIOS mirrors its screen on COM1.  Pass:
# "SeaBIOS (version" and then "No bootable device" appear within the time limit, and the
# VM powers off promptly when asked (SIGTERM) instead of hanging or aborting.
set -u
. "${VIREO_SRC:?}/tests/lib/kvm.bash"
kvm_need_vars
exec_kind=${VIREO_EXEC:-kvm}
[ "$exec_kind" = kvm ] && kvm_skip_unless_usable

limit=${KVM_SEABIOS_LIMIT:-120}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-kvm-seabios.XXXXXX")
serial="$tmp/com1.txt"
log="$tmp/vm.log"
vm_pid=
cleanup() {
    if [ -n "$vm_pid" ] && kill -0 "$vm_pid" 2>/dev/null; then
        kill -KILL "$vm_pid" 2>/dev/null
        wait "$vm_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# --timeout bounds the VM even if this script is killed before it cleans up.
"$VM" --exec "$exec_kind" --memory 64M --serial1 "file:$serial" --log "$log" --timeout $((limit + 60)) \
    >"$tmp/stdout" 2>&1 &
vm_pid=$!

show() {
    echo "---- COM1 ----"
    [ -f "$serial" ] && tail -c 3000 "$serial" | tr -c '[:print:]\n' '.'
    echo
    echo "---- log ----"
    tail -n 40 "$log" 2>/dev/null
    tail -n 10 "$tmp/stdout" 2>/dev/null
}

found=0
start=$SECONDS
while [ $((SECONDS - start)) -lt "$limit" ]; do
    if ! kill -0 "$vm_pid" 2>/dev/null; then
        wait "$vm_pid"
        rc=$?
        vm_pid=
        if [ "$exec_kind" = kvm ]; then
            kvm_skip_if_backend_unavailable "$log"
            kvm_skip_if_backend_unavailable "$tmp/stdout"
        fi
        echo "FAIL: vireo-vm ended on its own with exit code $rc before SeaBIOS gave up booting"
        show
        exit 1
    fi
    # Both lines, in this order: the banner first, then the boot failure.
    if [ -f "$serial" ] &&
        grep -a -o -E "SeaBIOS \(version|No bootable device" "$serial" |
        awk '/SeaBIOS/ { seen = 1 } /No bootable/ && seen { ok = 1 } END { exit !ok }'; then
        found=1
        break
    fi
    sleep 1
done
if [ $found -ne 1 ]; then
    echo "FAIL: no 'SeaBIOS (version' followed by 'No bootable device' on COM1 within ${limit}s"
    show
    exit 1
fi
echo "ok   SeaBIOS banner and 'No bootable device' after $((SECONDS - start))s"
grep -a -m1 -o "SeaBIOS (version[^)]*)" "$serial"

# A clean power off: the vCPU may be in HLT or inside KVM_RUN; both must be interrupted.
kill -TERM "$vm_pid"
waited=0
while kill -0 "$vm_pid" 2>/dev/null && [ $waited -lt 20 ]; do
    sleep 0.5
    waited=$((waited + 1))
done
if kill -0 "$vm_pid" 2>/dev/null; then
    echo "FAIL: vireo-vm did not exit within 10 s of SIGTERM"
    show
    exit 1
fi
wait "$vm_pid"
rc=$?
vm_pid=
if [ $rc -eq 2 ] || [ $rc -ge 128 ]; then
    echo "FAIL: vireo-vm exited with $rc after SIGTERM (an abort or a crash, not a power off)"
    show
    exit 1
fi
echo "ok   powered off after SIGTERM (exit code $rc)"
exit 0
