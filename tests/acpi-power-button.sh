#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# acpi-power-button.sh - the ACPI power button end to end, on the software CPU: a machine made with vireo-manage
# boots the Debian kernel (SeaBIOS, ACPI tables, the PIIX4 PM function) with busybox acpid listening; the test
# presses the button with "vireo-manage controlvm NAME acpipowerbutton" and checks that the guest saw the event,
# that the kernel powered down through ACPI S5 ("reboot: Power down"), that vireo-vm exited by itself with
# status 0 and that showvminfo reports the machine powered off, not aborted.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso python3
LIMIT=${ACPI_BOOT_LIMIT:-300}
OFF_LIMIT=${ACPI_OFF_LIMIT:-120}

# The guest: the busybox initramfs with the ACPI button and evdev drivers, and an /init on top that starts
# acpid (its default action table runs CONFDIR/PWRF/00000080 for the power button's input event) and prints
# ACPI-READY with the input devices it found.  The handler prints ACPI-PWRF-SEEN and powers off.
acpi_initrd() {
    local out="$GUESTS_OUT/acpi-initrd.gz" root
    if [ ! -s "$out" ] || [ "$GUESTS_SRC/make-initramfs.sh" -nt "$out" ] || [ "$VIREO_SRC/tests/acpi-power-button.sh" -nt "$out" ]; then
        MODULES="button evdev" "$GUESTS_SRC/make-initramfs.sh" "$out.base" >/dev/null ||
            { echo "FAIL: make-initramfs.sh failed" >&2; return 1; }
        root=$(mktemp -d)
        mkdir -p "$root/etc/acpi/PWRF/00000080"
        cat > "$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read -r ko; do insmod "/lib/modules/$ko" 2>/dev/null; done < /lib/modules/load-order
sleep 1
echo "VIREO-BOOT-OK"
acpid -d -c /etc/acpi > /dev/console 2>&1 &
sleep 1
echo "ACPI-READY inputs=$(grep '^N: Name=' /proc/bus/input/devices | tr -d '"' | sed 's/^N: Name=//' | tr ' \n' '_,') sci=$(grep -m1 acpi /proc/interrupts | tr -s ' ')"
while :; do sleep 10; done
INIT
        cat > "$root/etc/acpi/PWRF/00000080/off" <<'OFF'
#!/bin/sh
echo "ACPI-PWRF-SEEN" > /dev/console
sync
poweroff -f
OFF
        chmod 755 "$root/init" "$root/etc/acpi/PWRF/00000080/off"
        (cd "$root" && printf '%s\n' init etc etc/acpi etc/acpi/PWRF etc/acpi/PWRF/00000080 etc/acpi/PWRF/00000080/off |
            cpio --quiet -o -H newc -R 0:0) | gzip -9 -n > "$out.overlay"
        rm -rf "$root"
        cat "$out.base" "$out.overlay" > "$out"
        rm -f "$out.base" "$out.overlay"
    fi
    echo "$out"
}
initrd=$(acpi_initrd) || exit 1
iso="$GUESTS_OUT/acpi-power-button.iso"
storage_cached "$iso" env INITRD="$initrd" "$GUESTS_SRC/make-iso.sh" "$iso" none

tmp=$(mktemp -d /tmp/vireo-acpi.XXXXXX)
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$VIREO_USER_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
vm=acpi
com1="$tmp/com1.txt"
source "$VIREO_SRC/tests/lib/machine.bash"
cleanup() {
    local p
    for p in $(our_vms); do kill -KILL "$p"; done
    rm -rf "$tmp"
}
trap cleanup EXIT
com1_has() { tr -d '\r' 2>/dev/null < "$com1" | grep -aE -m1 -- "$1"; }
wait_com1() {
    local start=$SECONDS
    while [ $((SECONDS - start)) -lt "$2" ]; do
        com1_has "$1" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 1
    done
    return 1
}

manage createvm --name "$vm" --ostype Linux_64 --basefolder "$tmp/vms" --register >/dev/null
manage storageattach "$vm" --storagectl SATA --port 1 --device 0 --type dvddrive --medium "$iso" >/dev/null
manage modifyvm "$vm" --memory 256 --cpus 1 --boot1 dvd --uart1 on --uartmode1 file "$com1" >/dev/null
# Without a pressed button the machine stays off: the control request needs a running VM.
"$VIREO_BIN/vireo-manage" controlvm "$vm" acpipowerbutton >"$tmp/early.out" 2>&1 &&
    fail "acpipowerbutton on a machine that is not running succeeded: $(cat "$tmp/early.out")"
grep -q "is not running" "$tmp/early.out" || fail "acpipowerbutton on a stopped machine: $(cat "$tmp/early.out")"

# Started here rather than by "vireo-manage startvm" (which detaches it), so its exit status can be read.
start=$SECONDS
"$VIREO_BIN/vireo-vm" --startvm "$vm" --headless >"$tmp/vm.out" 2>&1 &
pid=$!
ready=$(wait_com1 "ACPI-READY" "$LIMIT") || fail "the guest did not reach ACPI-READY within ${LIMIT}s"
echo "ok   the guest booted with acpid listening after $((SECONDS - start))s: $ready"
case "$ready" in
*Power_Button*) ;;
*) fail "the guest found no ACPI power button input device (are the ACPI tables there, with the FADT's fixed power button?)" ;;
esac

pressed=$SECONDS
out=$("$VIREO_BIN/vireo-manage" controlvm "$vm" acpipowerbutton 2>&1) || fail "controlvm acpipowerbutton: $out"
# The VM process ends by itself: the guest's S5 write, nothing else.
while [ $((SECONDS - pressed)) -lt "$OFF_LIMIT" ] && kill -0 "$pid" 2>/dev/null; do sleep 1; done
kill -0 "$pid" 2>/dev/null && fail "vireo-vm still runs ${OFF_LIMIT}s after the power button"
wait "$pid"
rc=$?
[ $rc -eq 0 ] || fail "vireo-vm exited with status $rc after the guest's power off, not 0: $(tail -n 5 "$tmp/vm.out")"
echo "ok   vireo-vm ended by itself with status 0, $((SECONDS - pressed))s after the press"
com1_has "ACPI-PWRF-SEEN" >/dev/null || fail "the guest's acpid did not run the power button handler"
com1_has "reboot: Power down" >/dev/null || fail "the guest kernel did not log 'reboot: Power down'"
echo "ok   the guest saw the power button and powered down"
log=$(ls "$tmp"/vms/*/Logs/VM.log 2>/dev/null | head -n 1)
grep -q "guest powered off (ACPI S5)" "$log" || fail "the VM log does not show the ACPI S5 power off"
st=$(info VMState)
[ "$st" = poweroff ] || fail "the machine is '$st' after the guest's power off, not poweroff"
echo "ok   showvminfo reports the machine powered off"
