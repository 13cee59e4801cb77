#!/usr/bin/env bash
# tpm-guest.sh - a TPM 2.0 (TIS + swtpm, vireo-vm --tpm DIR) seen by SeaBIOS and by Linux on the software CPU:
# SeaBIOS boots a CD (ISOLINUX, the Debian kernel, the busybox initramfs with a TPM /init on top); the guest
# finds /dev/tpm0 and reads SHA-256 PCR 0 (non-zero from SeaBIOS's measurements when TPM_FIRMWARE_MEASURES=1);
# after vireo-vm is killed with SIGKILL its swtpm process is gone too; the state folder holds
# the TPM's permanent state.
set -u
: "${VIREO_BIN:?}" "${VIREO_OUT:?}" "${VIREO_SRC:?}"
LIMIT=${TPM_BOOT_LIMIT:-400}
# Until the ACPI tables describe the TPM (MSFT0101 in the DSDT), Linux finds a TIS TPM only when forced.
# Set this to "" once they do.
TPM_KERNEL_ARGS=${TPM_KERNEL_ARGS-"tpm_tis.force=1 tpm_tis.interrupts=0"}
# SeaBIOS measures the boot only when the ACPI tables carry a TPM2 table with an event log area (LAML/LASA);
# until they do it finds the TIS but leaves the PCRs alone.  Set this to 1 once they do.
TPM_FIRMWARE_MEASURES=${TPM_FIRMWARE_MEASURES:-0}
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso cpio gzip swtpm

# The TPM /init: reports the TPM and PCR 0, then idles (the test ends the VM with SIGKILL).
tpm_overlay() {
    local out=$1 root
    root=$(mktemp -d)
    cat > "$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "VIREO-BOOT-OK"
i=0; while [ $i -lt 10 ] && [ ! -e /dev/tpm0 ]; do sleep 1; i=$((i + 1)); done
ls /dev/tpm* 2>/dev/null | sed 's/^/TPM-DEV /'
echo "TPM-VERSION $(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)"
for p in 0 1 7; do echo "TPM-PCR $p $(cat /sys/class/tpm/tpm0/pcr-sha256/$p 2>/dev/null)"; done
echo "TPM-DONE"
while :; do sleep 3600; done
INIT
    chmod 755 "$root/init"
    (cd "$root" && echo init | cpio --quiet -o -H newc -R 0:0) | gzip -n > "$out"
    rm -rf "$root"
}

tpm_iso() {
    local iso="$GUESTS_OUT/tpm-guest.iso" stamp="$GUESTS_OUT/tpm-guest.iso.args"
    if [ ! -s "$iso" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$TPM_KERNEL_ARGS" ] || [ "$0" -nt "$iso" ] ||
        [ "$GUESTS_SRC/make-iso.sh" -nt "$iso" ] || [ "$GUESTS_SRC/make-initramfs.sh" -nt "$iso" ]; then
        "$GUESTS_SRC/make-initramfs.sh" "$iso.base" >/dev/null || { echo "FAIL: make-initramfs.sh failed"; exit 1; }
        tpm_overlay "$iso.overlay"
        cat "$iso.base" "$iso.overlay" > "$iso.initrd"
        INITRD="$iso.initrd" EXTRA_APPEND="$TPM_KERNEL_ARGS" "$GUESTS_SRC/make-iso.sh" "$iso" >"$iso.log" 2>&1 ||
            { echo "FAIL: make-iso.sh failed:"; tail -n 20 "$iso.log"; exit 1; }
        rm -f "$iso.base" "$iso.overlay" "$iso.initrd"
        echo "$TPM_KERNEL_ARGS" > "$stamp"
    fi
    echo "$iso"
}

iso=$(tpm_iso) || { echo "$iso"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-tpm.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    pkill -KILL -f "dir=$tmp/tpm-state" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$VIREO_USER_HOME" "$XDG_RUNTIME_DIR"
serial="$tmp/com1.txt" log="$tmp/vm.log"
: > "$serial"
"$VIREO_BIN/vireo-vm" --exec soft --memory 256M --cdrom "$iso" --boot d --tpm "$tmp/tpm-state" --vga none \
    --serial1 "file:$serial" --log "$log" --timeout $((LIMIT + 30)) >"$tmp/stdout" 2>&1 &
pid=$!
start=$SECONDS
while [ $((SECONDS - start)) -lt "$LIMIT" ]; do
    grep -aq "TPM-DONE" "$serial" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
elapsed=$((SECONDS - start))
fail=0
swtpm_pid=$(grep -o "swtpm started (pid [0-9]*" "$log" | awk '{print $4}' | head -n 1)
[ -n "$swtpm_pid" ] || { echo "FAIL: the VM log does not say swtpm started"; fail=1; }
if [ -n "$swtpm_pid" ] && ! kill -0 "$swtpm_pid" 2>/dev/null; then
    echo "FAIL: swtpm (pid $swtpm_pid) is not running while the VM runs"; fail=1
fi
# The hard way out: SIGKILL leaves vireo-vm no chance to stop swtpm; the parent-death signal must.
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
if [ -n "$swtpm_pid" ]; then
    i=0; while [ $i -lt 50 ] && kill -0 "$swtpm_pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    kill -0 "$swtpm_pid" 2>/dev/null && { echo "FAIL: swtpm (pid $swtpm_pid) outlived the killed VM"; fail=1; }
fi
pgrep -f "dir=$tmp/tpm-state" >/dev/null && { echo "FAIL: a swtpm for $tmp/tpm-state still runs"; fail=1; }

grep -aq "VIREO-BOOT-OK" "$serial" || { echo "FAIL: no VIREO-BOOT-OK within ${LIMIT}s"; fail=1; }
grep -aq "^TPM-DEV /dev/tpm0" "$serial" || { echo "FAIL: the guest has no /dev/tpm0"; fail=1; }
grep -aq "^TPM-VERSION 2" "$serial" || { echo "FAIL: the guest does not see a TPM 2.0"; fail=1; }
pcr0=$(grep -a "^TPM-PCR 0 " "$serial" | awk '{print $3}' | tr -d '\r')
[[ "$pcr0" =~ ^[0-9A-Fa-f]{64}$ ]] || { echo "FAIL: PCR 0 read as '${pcr0:-nothing}', want 64 hex digits"; fail=1; }
if [ "$TPM_FIRMWARE_MEASURES" = 1 ]; then
    [[ "$pcr0" =~ ^0+$ ]] && { echo "FAIL: PCR 0 is all zeros: SeaBIOS measured nothing into it"; fail=1; }
    grep -q "tpm: first command" "$log" || { echo "FAIL: no TPM command before the guest's driver ran"; fail=1; }
fi
ls "$tmp/tpm-state"/tpm2-00.permall >/dev/null 2>&1 || { echo "FAIL: no TPM state in $tmp/tpm-state"; fail=1; }
if [ $fail -ne 0 ]; then
    echo "---- COM1 (tail)"; tail -c 3000 "$serial" | tr -c '[:print:]\n' '.'; echo
    echo "---- log (tail)"; grep -a "tpm\|swtpm\|TPM\|TCG" "$log" | tail -n 30; tail -n 10 "$log"
    exit 1
fi
echo "ok   Linux found the TPM 2.0 (PCR 0 $pcr0); swtpm ended with the killed VM; ${elapsed}s to TPM-DONE"
[ "$TPM_FIRMWARE_MEASURES" = 1 ] || echo "     (SeaBIOS measurements not checked: TPM_FIRMWARE_MEASURES=0 until ACPI has a TPM2 table)"
exit 0
