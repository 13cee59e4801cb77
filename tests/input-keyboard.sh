#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# input-keyboard.sh - typing into a Linux guest through the i8042's PS/2 keyboard, on the software CPU: the guest's
# own drivers find the controller, an AT keyboard in translated set 2 and an IntelliMouse (wheel) mouse; text typed
# with vireo-manage controlvm keyboardputstring and Enter sent as raw scancodes (keyboardputscancode 1c 9c) arrive
# on the guest's console tty1 line by line, Shift included; a key typed as raw scancodes ('x' = 2d ad) too.  The
# guest's /init echoes every line it reads from /dev/tty1 to COM1.
set -u
source "$VIREO_SRC/tests/lib/persist.bash"
vm=input

# The input guest: the busybox initramfs with the PS/2 mouse driver (the keyboard and the 8042 driver are built
# into Debian's kernel) and an /init that reports the input devices and echoes tty1's lines to COM1.
input_initrd() {
    local out="$GUESTS_OUT/input-initrd.gz" root
    if [ ! -s "$out" ] || [ "$GUESTS_SRC/make-initramfs.sh" -nt "$out" ] || [ "$VIREO_SRC/tests/input-keyboard.sh" -nt "$out" ]; then
        MODULES="psmouse" "$GUESTS_SRC/make-initramfs.sh" "$out.base" >/dev/null || { echo "FAIL: make-initramfs.sh failed"; exit 1; }
        root=$(mktemp -d)
        cat > "$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read -r ko; do insmod "/lib/modules/$ko" 2>/dev/null; done < /lib/modules/load-order
i=0; while [ $i -lt 10 ] && [ "$(cat /sys/class/input/input*/name 2>/dev/null | wc -l)" -lt 2 ]; do sleep 1; i=$((i + 1)); done
for n in /sys/class/input/input*/name; do echo "INPUT-DEVICE $(cat "$n")"; done
echo "VIREO-BOOT-OK"
# tty1 stays open for the whole loop: Linux leaves keys typed while no one has the VT open in its
# buffer until the next key arrives, so reopening it for every line would race the next line typed.
while :; do
    if read -r line; then echo "INPUT-LINE [$line]"; else sleep 1; fi
done < /dev/tty1
INIT
        chmod 755 "$root/init"
        (cd "$root" && echo init | cpio --quiet -o -H newc -R 0:0) | gzip -9 -n > "$out.overlay"
        cat "$out.base" "$out.overlay" > "$out"
        rm -rf "$root" "$out.base" "$out.overlay"
    fi
    echo "$out"
}
input_rd=$(input_initrd) || exit 1
input_iso="$GUESTS_OUT/input.iso"
storage_cached "$input_iso" env INITRD="$input_rd" "$GUESTS_SRC/make-iso.sh" "$input_iso" none
[ "$input_rd" -nt "$input_iso" ] && { rm -f "$input_iso"; storage_cached "$input_iso" env INITRD="$input_rd" "$GUESTS_SRC/make-iso.sh" "$input_iso" none; }

manage createvm --name "$vm" --ostype Linux_64 --basefolder "$tmp/vms" --register >/dev/null
manage storageattach "$vm" --storagectl SATA --port 0 --device 0 --type dvddrive --medium "$input_iso" >/dev/null
manage modifyvm "$vm" --memory 256 --cpus 1 --boot1 dvd --uart1 on --uartmode1 file "$tmp/com1.txt" >/dev/null

# 1. The guest boots and its drivers find the keyboard and the wheel mouse behind the 8042.
manage startvm "$vm" --type headless >/dev/null
wait_com1 VIREO-BOOT-OK 0 240 >/dev/null || fail "the guest did not boot to VIREO-BOOT-OK"
grep -aq "^INPUT-DEVICE AT Translated Set 2 keyboard" "$tmp/com1.txt" ||
    fail "the guest found no AT keyboard in translated set 2 (devices: $(grep -a '^INPUT-DEVICE' "$tmp/com1.txt" | tr '\r\n' '  '))"
grep -aq "^INPUT-DEVICE ImPS/2 .*Wheel Mouse" "$tmp/com1.txt" ||
    fail "the guest found no wheel mouse (devices: $(grep -a '^INPUT-DEVICE' "$tmp/com1.txt" | tr '\r\n' '  '))"
echo "ok   the guest's drivers found an AT keyboard (translated set 2) and an IntelliMouse behind the 8042"

# 2. A string typed with the US layout, Enter as raw set 1 scancodes.
n=$(com1_lines)
manage controlvm "$vm" keyboardputstring "hello vireo" >/dev/null
manage controlvm "$vm" keyboardputscancode 1c 9c >/dev/null
line=$(wait_com1 '^INPUT-LINE' "$n" 60) || fail "no line arrived on the guest's console after typing 'hello vireo'"
[ "$line" = "INPUT-LINE [hello vireo]" ] || fail "the guest read '$line' for 'hello vireo'"
echo "ok   keyboardputstring 'hello vireo' + Enter (1c 9c) arrived as a line on tty1"

# 3. Shifted characters, several words in one request.
n=$(com1_lines)
manage controlvm "$vm" keyboardputstring 'Mixed Case: A-Z & {x}!' >/dev/null
manage controlvm "$vm" keyboardputscancode 1c 9c >/dev/null
line=$(wait_com1 '^INPUT-LINE' "$n" 60) || fail "no line arrived after the shifted text"
[ "$line" = "INPUT-LINE [Mixed Case: A-Z & {x}!]" ] || fail "the guest read '$line' for 'Mixed Case: A-Z & {x}!'"
echo "ok   Shift is pressed around upper-case letters and symbols"

# 4. A key typed as raw scancodes, then Enter.
n=$(com1_lines)
manage controlvm "$vm" keyboardputscancode 2d ad 1c 9c >/dev/null
line=$(wait_com1 '^INPUT-LINE' "$n" 60) || fail "no line arrived after typing 'x' as scancodes 2d ad"
[ "$line" = "INPUT-LINE [x]" ] || fail "the guest read '$line' for the scancodes 2d ad"
echo "ok   keyboardputscancode 2d ad 1c 9c typed 'x' and Enter"

# 5. Refusals: a character the US layout lacks types nothing; the VM still runs.
"$VIREO_BIN/vireo-manage" controlvm "$vm" keyboardputstring "café" >"$tmp/out" 2>"$tmp/err" && fail "typing 'café' succeeded"
grep -q "no key on the US keyboard layout" "$tmp/err" || fail "typing 'café' was refused with: $(cat "$tmp/err")"
n=$(com1_lines)
manage controlvm "$vm" keyboardputscancode 1c 9c >/dev/null
line=$(wait_com1 '^INPUT-LINE' "$n" 60) || fail "no line after the refused string"
[ "$line" = "INPUT-LINE []" ] || fail "the refused string typed something: '$line'"
echo "ok   a string with a character the US layout lacks is refused before anything is typed"

manage controlvm "$vm" poweroff >/dev/null
wait_state poweroff
echo "PASS: input-keyboard"
