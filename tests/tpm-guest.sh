#!/usr/bin/env bash
# tpm-guest.sh - a TPM 2.0 (TIS + swtpm, vireo-vm --tpm DIR) seen by SeaBIOS and by Linux on the software CPU:
# SeaBIOS boots a CD (ISOLINUX, the Debian kernel, the busybox initramfs with a TPM /init on top); the guest
# finds /dev/tpm0 through ACPI (MSFT0101, no tpm_tis.force) and reads SHA-256 PCR 0, non-zero from SeaBIOS's
# measurements into the event log area the TPM2 table names (TPM_FIRMWARE_MEASURES=1); Linux exposes that log
# (binary_bios_measurements, non-empty) without TPM errors; after vireo-vm is killed with SIGKILL its swtpm
# process is gone too; the state folder holds the TPM's permanent state.
set -u
: "${VIREO_BIN:?}" "${VIREO_OUT:?}" "${VIREO_SRC:?}"
LIMIT=${TPM_BOOT_LIMIT:-400}
# Extra kernel arguments: none, the kernel finds the TIS through the DSDT's MSFT0101 device and the TPM2 table.
TPM_KERNEL_ARGS=${TPM_KERNEL_ARGS-""}
# SeaBIOS measures the boot only when the TPM2 table has an event log area (LAML/LASA), as Vireo's has;
# 0 skips the checks of PCR 0 and of the log (for firmware built without TCG support).
TPM_FIRMWARE_MEASURES=${TPM_FIRMWARE_MEASURES:-1}
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
# The event log the firmware wrote, as Linux read it through the TPM2 table's LASA/LAML.
mkdir -p /sys/kernel/security
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
log=/sys/kernel/security/tpm0/binary_bios_measurements
if [ -r "$log" ]; then echo "TPM-LOG-BYTES $(cat "$log" | wc -c)"; else echo "TPM-LOG-BYTES none"; fi
dmesg | grep -i "tpm\|tcpa" | sed 's/^/TPM-KLOG /'
# The TPM2 table as the kernel got it and the memory map: the log area must be memory no one reuses.
echo "TPM-TABLE $(od -A n -t x1 -v /sys/firmware/acpi/tables/TPM2 2>/dev/null | tr -d '\n')"
dmesg | grep "BIOS-e820:" | sed 's/^.*BIOS-e820:/TPM-E820/'
echo "TPM-DONE"
while :; do sleep 3600; done
INIT
    chmod 755 "$root/init"
    (cd "$root" && echo init | cpio --quiet -o -H newc -R 0:0) | gzip -n > "$out"
    rm -rf "$root"
}

tpm_iso() {
    local iso="$GUESTS_OUT/tpm-guest.iso" stamp="$GUESTS_OUT/tpm-guest.iso.args"
    if [ ! -s "$iso" ] || [ ! -s "$GUESTS_OUT/tpm-guest.initrd" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$TPM_KERNEL_ARGS" ] ||
        [ "$0" -nt "$iso" ] ||
        [ "$GUESTS_SRC/make-iso.sh" -nt "$iso" ] || [ "$GUESTS_SRC/make-initramfs.sh" -nt "$iso" ]; then
        "$GUESTS_SRC/make-initramfs.sh" "$iso.base" >/dev/null || { echo "FAIL: make-initramfs.sh failed"; exit 1; }
        tpm_overlay "$iso.overlay"
        cat "$iso.base" "$iso.overlay" > "$iso.initrd"
        INITRD="$iso.initrd" EXTRA_APPEND="$TPM_KERNEL_ARGS" "$GUESTS_SRC/make-iso.sh" "$iso" >"$iso.log" 2>&1 ||
            { echo "FAIL: make-iso.sh failed:"; tail -n 20 "$iso.log"; exit 1; }
        mv "$iso.initrd" "$GUESTS_OUT/tpm-guest.initrd" # the direct kernel boot below uses it too
        rm -f "$iso.base" "$iso.overlay"
        echo "$TPM_KERNEL_ARGS" > "$stamp"
    fi
    echo "$iso"
}

# The TPM2 table the guest printed names a 64 KiB log area (LAML/LASA) that the e820 map keeps from the OS.
log_area_check() { # SERIAL LABEL
    local hex b=() laml lasa line lo hi
    hex=$(grep -a "^TPM-TABLE " "$1" | head -n 1 | cut -d' ' -f2- | tr -d '\r')
    read -r -a b <<<"$hex"
    [ "${#b[@]}" = 76 ] || { echo "FAIL: $2: the guest's TPM2 table has ${#b[@]} bytes, want 76 (revision 4 with the log fields)"; return 1; }
    laml=$((16#${b[67]}${b[66]}${b[65]}${b[64]}))
    lasa=$((16#${b[75]}${b[74]}${b[73]}${b[72]}${b[71]}${b[70]}${b[69]}${b[68]}))
    [ "$laml" = 65536 ] || { echo "FAIL: $2: TPM2 LAML is $laml, want 65536"; return 1; }
    [ "$lasa" -ne 0 ] || { echo "FAIL: $2: TPM2 LASA is 0: the loader did not link the log area"; return 1; }
    while read -r line; do
        [[ "$line" =~ \[mem\ 0x([0-9a-f]+)-0x([0-9a-f]+)\]\ (.*)$ ]] || continue
        lo=$((16#${BASH_REMATCH[1]})) hi=$((16#${BASH_REMATCH[2]}))
        if [ "$lasa" -ge "$lo" ] && [ $((lasa + laml - 1)) -le "$hi" ]; then
            [ "${BASH_REMATCH[3]}" != usable ] && return 0
            printf 'FAIL: %s: the log area at 0x%x is usable RAM in the e820 map\n' "$2" "$lasa"; return 1
        fi
    done < <(grep -a "^TPM-E820" "$1" | tr -d '\r')
    printf 'FAIL: %s: no e820 entry covers the log area at 0x%x\n' "$2" "$lasa"
    return 1
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
# No TPM driver or event log trouble in the kernel log.
grep -a "^TPM-KLOG" "$serial" | grep -aiE "TCPA log area empty|tpm_tis.*error|tpm.*fail|A TPM error" &&
    { echo "FAIL: the kernel reports TPM trouble (above)"; fail=1; }
logbytes=$(grep -a "^TPM-LOG-BYTES " "$serial" | awk '{print $2}' | tr -d '\r')
if [ "$TPM_FIRMWARE_MEASURES" = 1 ]; then
    [[ "$pcr0" =~ ^0+$ ]] && { echo "FAIL: PCR 0 is all zeros: SeaBIOS measured nothing into it"; fail=1; }
    grep -q "tpm: first command" "$log" || { echo "FAIL: no TPM command before the guest's driver ran"; fail=1; }
    # Linux exposes the log when it finds a TPM 2.0 one (Spec ID event first) at LASA; empty means it did not.
    [[ "$logbytes" =~ ^[0-9]+$ ]] && [ "$logbytes" -gt 0 ] ||
        { echo "FAIL: the guest sees no firmware event log (binary_bios_measurements: ${logbytes:-not reported})"; fail=1; }
fi
log_area_check "$serial" SeaBIOS || fail=1
ls "$tmp/tpm-state"/tpm2-00.permall >/dev/null 2>&1 || { echo "FAIL: no TPM state in $tmp/tpm-state"; fail=1; }
if [ $fail -ne 0 ]; then
    echo "---- COM1 (tail)"; tail -c 3000 "$serial" | tr -c '[:print:]\n' '.'; echo
    echo "---- log (tail)"; grep -a "tpm\|swtpm\|TPM\|TCG" "$log" | tail -n 30; tail -n 10 "$log"
    exit 1
fi
how="through ACPI"
[ -n "$TPM_KERNEL_ARGS" ] && how="with $TPM_KERNEL_ARGS"
echo "ok   Linux found the TPM 2.0 $how (PCR 0 $pcr0, event log ${logbytes:-?} bytes); swtpm ended with the killed VM; ${elapsed}s to TPM-DONE"
[ "$TPM_FIRMWARE_MEASURES" = 1 ] || echo "     (SeaBIOS measurements and the event log not checked: TPM_FIRMWARE_MEASURES=0)"

# ---- A direct kernel boot (no firmware): the board links the tables itself and reserves the log area below them.
serial="$tmp/com1-direct.txt" log="$tmp/vm-direct.log"
: > "$serial"
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
"$VIREO_BIN/vireo-vm" --exec soft --memory 256M --kernel "$kernel" --initrd "$GUESTS_OUT/tpm-guest.initrd" \
    --append "console=ttyS0 panic=-1 $TPM_KERNEL_ARGS" --tpm "$tmp/tpm-state-direct" --vga none \
    --serial1 "file:$serial" --log "$log" --timeout $((LIMIT + 30)) >"$tmp/stdout-direct" 2>&1 &
pid=$!
start=$SECONDS
while [ $((SECONDS - start)) -lt "$LIMIT" ]; do
    grep -aq "TPM-DONE" "$serial" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
elapsed=$((SECONDS - start))
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
grep -aq "^TPM-DEV /dev/tpm0" "$serial" || { echo "FAIL: direct boot: the guest has no /dev/tpm0"; fail=1; }
grep -a "^TPM-KLOG" "$serial" | grep -aiE "TCPA log area empty|tpm_tis.*error|tpm.*fail" &&
    { echo "FAIL: direct boot: the kernel reports TPM trouble (above)"; fail=1; }
log_area_check "$serial" "direct boot" || fail=1
if [ $fail -ne 0 ]; then
    echo "---- COM1 (direct boot, tail)"; tail -c 3000 "$serial" | tr -c '[:print:]\n' '.'; echo
    echo "---- log (tail)"; tail -n 10 "$log"
    exit 1
fi
echo "ok   direct kernel boot: TPM found through ACPI, the empty log area reserved in e820; ${elapsed}s to TPM-DONE"
exit 0
