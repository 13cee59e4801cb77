#!/usr/bin/env bash
# soft-linux-boot.sh - the Debian kernel (linux-image-amd64) with the busybox initramfs from
# ../shared/guests/make-initramfs.sh boots on the software CPU to VIREO-BOOT-OK, and the in-guest md5
# workload prints the checksum the host computes for the same data.  SOFT_EXEC=soft (the recompiler,
# which must have translated blocks) or interp (the interpreter alone, tests/interp-linux-boot.sh).
set -u
SOFT_EXEC=${SOFT_EXEC:-soft}
: "${VIREO_BIN:?}" "${VIREO_OUT:?}" "${VIREO_SRC:?}"
LIMIT=${LINUX_BOOT_LIMIT:-600}
MD5_MB=4
. "$VIREO_SRC/tests/lib/linux.bash"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-linux.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
serial="$tmp/com1.txt"
linux_run VIREO-DONE "$LIMIT" "$serial" --exec "$SOFT_EXEC" --memory 256M --kernel "$kernel" --initrd "$initrd" \
    --append "console=ttyS0 vireo.workload=md5 vireo.md5mb=$MD5_MB panic=-1" --log "$tmp/vm.log"
elapsed=$linux_elapsed

want=$(head -c $((MD5_MB * 1024 * 1024)) /dev/zero | md5sum | cut -d' ' -f1)
got=$(grep -a "VIREO-WORKLOAD-RESULT md5" "$serial" | awk '{print $3}' | tr -d '\r')
fail=0
grep -aq "VIREO-BOOT-OK" "$serial" || { echo "FAIL: no VIREO-BOOT-OK within ${LIMIT}s"; fail=1; }
[ "$got" = "$want" ] || { echo "FAIL: md5 workload printed '${got:-nothing}', want $want"; fail=1; }
translated=$(grep -o "recompiler translated [0-9]* blocks" "$tmp/vm.log" | awk '{print $3}')
if [ "$SOFT_EXEC" = soft ]; then
    [ "${translated:-0}" -gt 0 ] || { echo "FAIL: --exec soft did not run the recompiler (log: '${translated:-no count}')"; fail=1; }
else
    [ -z "$translated" ] || { echo "FAIL: --exec interp ran the recompiler ($translated blocks)"; fail=1; }
fi
if [ $fail -ne 0 ]; then
    echo "---- COM1 (tail)"; tail -c 3000 "$serial" | tr -c '[:print:]\n' '.'; echo
    echo "---- log (tail)"; tail -n 20 "$tmp/vm.log"
    exit 1
fi
echo "ok   $(basename "$kernel") booted to VIREO-BOOT-OK on the software CPU (--exec $SOFT_EXEC${translated:+, $translated blocks translated}); md5 $got; ${elapsed}s to VIREO-DONE"
grep -a "VIREO-BOOT-OK\|VIREO-WORKLOAD-SECONDS" "$serial" | tr -d '\r'
exit 0
