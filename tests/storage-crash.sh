#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# storage-crash.sh - crash safety: the guest writes numbered records to its disk with fsync after each and
# reports each flushed record on COM1; the host SIGKILLs vireo-vm in the middle, then the image still opens,
# passes vireo-img check and qemu-img check, and holds every record the guest saw flushed.  Run for qcow2 on
# virtio-blk and VDI on AHCI.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso qemu-img
initrd=$(storage_initrd) || exit 1
iso="$GUESTS_OUT/storage-crash.iso"
storage_cached "$iso" env INITRD="$initrd" EXTRA_APPEND="vireo.storage=crash" "$GUESTS_SRC/make-iso.sh" "$iso" none
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-crash.XXXXXX")
trap '[ -n "${STORAGE_PID:-}" ] && kill -KILL "$STORAGE_PID" 2>/dev/null; rm -rf "$tmp"' EXIT
# One case: boot, wait for 40 flushed records, SIGKILL, then check the image.
crash_case() { # ctl fmt
    local ctl=$1 fmt=$2 img="$tmp/crash.$2" fail=0
    "$VIREO_BIN/vireo-img" create --format "$fmt" "$img" 64M >/dev/null || { echo "FAIL: vireo-img create $fmt"; return 1; }
    if ! STORAGE_KEEP=1 storage_boot "$tmp/$ctl.txt" 400 "STORAGE-FLUSHED 40" --cdrom "$iso" --boot d \
            --drive "file=$img,if=$ctl"; then
        echo "FAIL: $fmt on $ctl: the guest never flushed 40 records"
        storage_show_failure "$tmp/$ctl.txt"
        return 1
    fi
    kill -KILL "$STORAGE_PID"
    wait "$STORAGE_PID" 2>/dev/null
    local last
    last=$(grep -ao 'STORAGE-FLUSHED [0-9]*' "$tmp/$ctl.txt" | tail -n 1 | awk '{print $2}')
    "$VIREO_BIN/vireo-img" check "$img" > "$tmp/$fmt.check" 2>&1 || { echo "FAIL: $fmt: vireo-img check after SIGKILL:"; cat "$tmp/$fmt.check"; fail=1; }
    qemu-img check -q "$img" > "$tmp/$fmt.qcheck" 2>&1 || { echo "FAIL: $fmt: qemu-img check after SIGKILL:"; cat "$tmp/$fmt.qcheck"; fail=1; }
    qemu-img convert -O raw "$img" "$tmp/$fmt.after" || { echo "FAIL: $fmt: qemu-img cannot read the image after SIGKILL"; return 1; }
    local missing=0 n want got
    for ((n = 1; n <= last; n++)); do
        want=$(printf 'VIREO-RECORD-%08d' $n)
        got=$(dd if="$tmp/$fmt.after" bs=512 skip=$n count=1 2>/dev/null | head -c ${#want})
        [ "$got" = "$want" ] || { missing=$((missing + 1)); [ $missing -le 3 ] && echo "FAIL: $fmt: record $n (flushed before the kill) is missing"; }
    done
    [ $missing -eq 0 ] || fail=1
    [ $fail -eq 0 ] && echo "ok   $fmt on $ctl: SIGKILL after $last flushed records; image checks clean and holds all $last"
    return $fail
}
fail=0
crash_case virtio qcow2 || fail=1
crash_case ahci vdi || fail=1
exit $fail
