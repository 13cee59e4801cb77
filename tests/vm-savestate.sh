#!/usr/bin/env bash
# vm-savestate.sh - a Linux guest (Debian kernel, busybox initramfs) saved mid-boot on the software CPU with
# vireo-vm's developer option --save-state-after resumes in a new process with --load-state and finishes
# booting: VIREO-BOOT-OK and the md5 workload's right checksum on COM1.  Prints the save and load times
# and the file size.
set -u
: "${VIREO_BIN:?}" "${VIREO_OUT:?}" "${VIREO_SRC:?}"
LIMIT=${LINUX_BOOT_LIMIT:-400}
SAVE_AFTER=${SAVESTATE_AFTER:-3}
MD5_MB=4
. "$VIREO_SRC/tests/lib/linux.bash"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-savestate.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
vm_args=(--exec soft --memory 256M --kernel "$kernel" --initrd "$initrd"
         --append "console=ttyS0 vireo.workload=md5 vireo.md5mb=$MD5_MB panic=-1")
fail=0

# 1: boot, and after SAVE_AFTER seconds of host time pause, save, exit 0.
timeout 120 "$VIREO_BIN/vireo-vm" "${vm_args[@]}" --serial1 "file:$tmp/com1-a.txt" --log "$tmp/a.log" \
    --save-state-after "$SAVE_AFTER" "$tmp/state.sav" >"$tmp/a.stdout" 2>&1
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: the saving run exited with $rc"; fail=1; }
[ -s "$tmp/state.sav" ] || { echo "FAIL: no saved-state file"; fail=1; }
[ ! -e "$tmp/state.sav.tmp" ] || { echo "FAIL: the temporary file was left behind"; fail=1; }
grep -aq "VIREO-DONE" "$tmp/com1-a.txt" && { echo "FAIL: the guest finished before the save; it proves nothing"; fail=1; }

# 2: a new process loads the file and the guest boots on to the end.
if [ $fail -eq 0 ]; then
    "$VIREO_BIN/vireo-vm" "${vm_args[@]}" --serial1 "file:$tmp/com1-b.txt" --log "$tmp/b.log" \
        --load-state "$tmp/state.sav" --timeout $((LIMIT + 30)) >"$tmp/b.stdout" 2>&1 &
    pid=$!
    start=$SECONDS
    while [ $((SECONDS - start)) -lt "$LIMIT" ]; do
        grep -aq "VIREO-DONE" "$tmp/com1-b.txt" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
    want=$(head -c $((MD5_MB * 1024 * 1024)) /dev/zero | md5sum | cut -d' ' -f1)
    got=$(grep -a "VIREO-WORKLOAD-RESULT md5" "$tmp/com1-b.txt" | awk '{print $3}' | tr -d '\r')
    grep -q "loaded the saved state" "$tmp/b.log" || { echo "FAIL: the VM log does not record the load"; fail=1; }
    grep -aq "VIREO-BOOT-OK" "$tmp/com1-b.txt" || { echo "FAIL: no VIREO-BOOT-OK after resuming"; fail=1; }
    [ "$got" = "$want" ] || { echo "FAIL: md5 workload printed '${got:-nothing}', want $want"; fail=1; }
    echo "saved: $(grep -o 'saved the state.*' "$tmp/a.log")"
    echo "loaded: $(grep -o 'loaded the saved state.*' "$tmp/b.log")"
    echo "resumed guest finished booting in $((SECONDS - start)) s"
fi
if [ $fail -ne 0 ]; then
    for f in a b; do
        [ -e "$tmp/com1-$f.txt" ] || continue
        echo "---- run $f: COM1 (tail)"; tail -c 1500 "$tmp/com1-$f.txt" | tr -c '[:print:]\n' '.'; echo
        echo "---- run $f: log (tail)"; tail -n 15 "$tmp/$f.log"
    done
fi
exit $fail
