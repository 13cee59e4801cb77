#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# console-window.sh - the GTK console window under Xvfb: vireo-vm opens it on the test ISO (software CPU), keys typed into it reach a guest that echoes its console's input to COM1, the host key lets go of the keyboard (Right Ctrl, or Right Alt when GUI/HostKey says so), the screen is drawn, closing asks instead of killing the guest, and --headless or no display server opens nothing.
# The guest: ISOLINUX boots the Debian kernel with console=tty0 (the VGA text console) and an /init that prints
# CONSOLE-READY on COM1, then reads lines from /dev/tty1 (the keyboard) and prints each as "CONSOLE-TYPED <line>".
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso python3 Xvfb xdotool xwininfo
x11py="$VIREO_SRC/tests/lib/console-x11.py"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-console.XXXXXX")
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
pid= xpid=
registered_running=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    [ -n "$registered_running" ] && "$VIREO_BIN/vireo-manage" controlvm "Console Test" poweroff >/dev/null 2>&1
    [ -n "$xpid" ] && kill -TERM "$xpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    echo "---- COM1: keyboard lines"; grep -a -E 'i8042|serio|atkbd|input:' "$tmp/com1.txt" 2>/dev/null | tail -n 6
    echo "---- COM1 (tail)"; tail -c 800 "$tmp/com1.txt" 2>/dev/null | tr -c '[:print:]\n' '.'; echo
    echo "---- vireo-vm output (tail)"; tail -n 10 "$tmp/vm.out" 2>/dev/null
    echo "---- log: console and input lines"; grep -E 'console|i8042|ps2|kbd|input' "$tmp/vm.log" 2>/dev/null | tail -n 10
    echo "---- log (tail)"; tail -n 10 "$tmp/vm.log" 2>/dev/null
    exit 1
}

# ---- The guest ----------------------------------------------------------------------------------------------
iso="$GUESTS_OUT/console-window.iso"
if [ ! -s "$iso" ] || [ "$VIREO_SRC/tests/console-window.sh" -nt "$iso" ] || [ "$GUESTS_SRC/make-iso.sh" -nt "$iso" ] ||
    [ "$GUESTS_SRC/make-initramfs.sh" -nt "$iso" ]; then
    root="$tmp/overlay"
    mkdir -p "$root"
    cat > "$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "Type a line and press Enter: it goes to COM1." > /dev/tty1
echo "CONSOLE-READY" > /dev/ttyS0
# tty1 stays open for the whole loop (a line typed between a close and the next open would wait
# in the VT's buffer for the next key).
while :; do
    if read -r line; then
        echo "CONSOLE-TYPED $line" > /dev/ttyS0
    else
        sleep 1
    fi
done < /dev/tty1
INIT
    chmod 755 "$root/init"
    "$GUESTS_SRC/make-initramfs.sh" "$tmp/base.gz" >"$tmp/initramfs.log" 2>&1 || { cat "$tmp/initramfs.log"; fail "make-initramfs.sh failed"; }
    (cd "$root" && echo init | cpio --quiet -o -H newc -R 0:0) | gzip -9 -n > "$tmp/overlay.gz"
    cat "$tmp/base.gz" "$tmp/overlay.gz" > "$tmp/initrd.gz"
    INITRD="$tmp/initrd.gz" EXTRA_APPEND="console=tty0" "$GUESTS_SRC/make-iso.sh" "$iso.new" none >"$tmp/iso.log" 2>&1 ||
        { cat "$tmp/iso.log"; fail "make-iso.sh failed"; }
    mv "$iso.new" "$iso"
fi

# ---- An X server of our own (Xvfb picks a free display number itself) -------------------------------------
exec 3>"$tmp/display"
Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp >"$tmp/xvfb.log" 2>&1 &
xpid=$!
exec 3>&-
for _ in $(seq 50); do [ -s "$tmp/display" ] && break; sleep 0.1; done
[ -s "$tmp/display" ] || { cat "$tmp/xvfb.log"; fail "Xvfb did not start"; }
export DISPLAY=":$(head -n 1 "$tmp/display")"
unset WAYLAND_DISPLAY
echo "ok   Xvfb on $DISPLAY"

# start_vm ARGS...: vireo-vm on the ISO, COM1 into com1.txt.
start_vm() {
    : > "$tmp/com1.txt"
    rm -f "$tmp/vm.log"
    "$VIREO_BIN/vireo-vm" --exec "$STORAGE_EXEC" --memory 128M --cdrom "$iso" --boot d --serial1 "file:$tmp/com1.txt" \
        --log "$tmp/vm.log" --timeout 150 "$@" >"$tmp/vm.out" 2>&1 &
    pid=$!
}
stop_vm() {
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}
# wait_log PATTERN SECONDS
wait_log() {
    for _ in $(seq $(($2 * 5))); do
        grep -q -- "$1" "$tmp/vm.log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
# wait_com1 PATTERN SECONDS
wait_com1() {
    for _ in $(seq $(($2 * 5))); do
        grep -aq -- "$1" "$tmp/com1.txt" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
windows() { xdotool search --name "$1" 2>/dev/null; }
# Prints the first window whose name matches $1 once one shows, within 10 s; fails (status 1) otherwise.
wait_window() {
    local w
    for _ in $(seq 50); do
        w=$(windows "$1" | head -n 1)
        [ -n "$w" ] && { echo "$w"; return 0; }
        sleep 0.2
    done
    return 1
}
# Asks the console window to close and sets dlg to the question it shows (fails with $1 when none shows).
close_question() {
    python3 "$x11py" close "$wid" || fail "cannot ask the window to close"
    dlg=$(wait_window '^Close - Vireo$') || fail "$1"
}

# ---- Headless and no display server: no window ----------------------------------------------------------
DISPLAY= start_vm
wait_log "no display server: running headless\|no graphics device" 10 || fail "without DISPLAY: no 'no display server' warning in the log"
if grep -q "no graphics device" "$tmp/vm.log"; then
    stop_vm
    echo "this build's PC has no graphics adapter yet, so there is no screen for a console window"
    exit 77
fi
grep -q "no display server: running headless" "$tmp/vm.out" || fail "without DISPLAY: the warning is not on stderr"
kill -0 "$pid" 2>/dev/null || fail "without DISPLAY the VM did not keep running"
stop_vm
echo "ok   without a display server the VM runs headless and warns"

start_vm --headless
wait_log "headless: no console window" 10 || fail "--headless: the log does not say there is no console window"
sleep 2
[ -z "$(windows ' - Vireo$')" ] || fail "--headless opened a window"
stop_vm
echo "ok   --headless opens no window"

start_vm --vga none
wait_log "no graphics device" 10 || fail "--vga none: the log does not say the machine has no graphics device"
sleep 1
[ -z "$(windows ' - Vireo$')" ] || fail "a machine without a graphics device opened a window"
stop_vm
echo "ok   a machine without a graphics device opens no window"

# ---- The window ------------------------------------------------------------------------------------------
start_vm
wait_log "console window opened" 15 || fail "the log does not say the console window opened"
grep -q "the host key is Right Ctrl" "$tmp/vm.log" || fail "with no GUI/HostKey the log does not name Right Ctrl"
wid=$(wait_window '^vireo-vm - Vireo$') || fail "no window named 'vireo-vm - Vireo' on $DISPLAY"
geo=$(xwininfo -id "$wid")
w=$(sed -n 's/^ *Width: //p' <<<"$geo") h=$(sed -n 's/^ *Height: //p' <<<"$geo")
map=$(sed -n 's/^ *Map State: //p' <<<"$geo")
[ "$map" = IsViewable ] || fail "the window is not viewable ($map)"
{ [ "$w" -ge 320 ] && [ "$w" -le 1280 ] && [ "$h" -ge 240 ] && [ "$h" -le 1024 ]; } ||
    fail "the window is ${w}x${h}: not a sensible size for a guest screen on a 1280x1024 display"
echo "ok   window $wid 'vireo-vm - Vireo' opened, ${w}x${h}"

start=$SECONDS
wait_com1 CONSOLE-READY 100 || fail "the guest did not reach its /init (no CONSOLE-READY on COM1)"
echo "ok   guest ready after $((SECONDS - start)) s"
# The screen follows the guest: at VGA text mode's 720x400 the window is at least that big.
sleep 1
geo=$(xwininfo -id "$wid")
w=$(sed -n 's/^ *Width: //p' <<<"$geo") h=$(sed -n 's/^ *Height: //p' <<<"$geo")
{ [ "$w" -ge 720 ] && [ "$h" -ge 400 ]; } || fail "the window is ${w}x${h}, smaller than the guest's 720x400 text screen"
# Kernel messages and the prompt on the text console: grey text on black in the middle of the window.
px=$(python3 "$x11py" pixels "$wid" 0.2 0.8) || fail "cannot read the window's pixels"
dark=$(awk '{print $4}' <<<"$px") light=$(awk '{print $6}' <<<"$px") colours=$(awk '{print $8}' <<<"$px")
total=$((w * (h * 8 / 10 - h * 2 / 10)))
{ [ "$dark" -gt $((total / 3)) ] && [ "$light" -gt 200 ] && [ "$colours" -ge 2 ]; } ||
    fail "the screen does not look like a text console ($px; want mostly black with light text)"
echo "ok   the window shows the guest's text screen ($px)"

xdotool windowfocus --sync "$wid" || fail "cannot focus the window"
sleep 0.5
xdotool type --delay 60 "hello vireo" && xdotool key Return
wait_com1 "CONSOLE-TYPED hello vireo" 20 || fail "typing into the window did not reach the guest"
echo "ok   'hello vireo' typed into the window reached the guest"

# Right Ctrl alone lets go of the keyboard: what follows is not the guest's.  A click captures again.
python3 "$x11py" key 105 || fail "cannot press Right Ctrl"  # evdev KEY_RIGHTCTRL + 8
sleep 0.5
xdotool type --delay 60 "zz" && xdotool key Return
sleep 1
xdotool mousemove --window "$wid" $((w / 2)) $((h / 2)) click 1
sleep 0.5
xdotool type --delay 60 "back" && xdotool key Return
wait_com1 "CONSOLE-TYPED back" 20 || fail "after the host key and a click, typing did not reach the guest"
grep -aq "CONSOLE-TYPED.*zz" "$tmp/com1.txt" && fail "keys typed after the host key released the keyboard reached the guest"
echo "ok   the host key (Right Ctrl) releases the keyboard; a click captures it again"

# Closing asks; cancel keeps the VM, power off ends it.
close_question "closing the window showed no question"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "closing the window ended the VM without asking"
xdotool windowfocus --sync "$dlg" && xdotool key Escape
sleep 1
kill -0 "$pid" 2>/dev/null || fail "cancelling the close ended the VM"
[ -z "$(windows '^Close - Vireo$')" ] || fail "the close question is still there after Escape"
[ -n "$(windows '^vireo-vm - Vireo$')" ] || fail "the window went away after cancelling the close"
grep -q "closing cancelled" "$tmp/vm.log" || fail "the log does not record the cancelled close"
echo "ok   closing the window asks; cancelling keeps the VM running"

# The close question's "Send ACPI Shutdown" presses the machine's power button (a guest without acpid, as this
# one, sees the event and goes on running).
close_question "closing the window for the ACPI shutdown showed no question"
xdotool windowfocus --sync "$dlg" && xdotool key alt+a
for _ in $(seq 25); do grep -q "power button pressed" "$tmp/vm.log" && break; sleep 0.2; done
grep -q "power button pressed" "$tmp/vm.log" || fail "Send ACPI Shutdown did not press the power button"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "Send ACPI Shutdown ended the VM instead of asking the guest"
[ -z "$(windows '^Close - Vireo$')" ] || fail "the close question is still there after Send ACPI Shutdown"
echo "ok   the close question's Send ACPI Shutdown presses the power button; the VM runs on"

close_question "closing the window a second time showed no question"
xdotool windowfocus --sync "$dlg" && xdotool key alt+p
for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$pid" 2>/dev/null && fail "answering Power Off did not end the VM"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "vireo-vm exited $rc after Power Off (want 0)"
grep -q "window: power off" "$tmp/vm.log" || fail "the log does not record the window's power off"
[ -z "$(windows ' - Vireo$')" ] || fail "a window is left after the VM ended"
echo "ok   answering Power Off ends the VM (exit 0) and its window"

# ---- A registered machine: vireo-manage startvm --type gui, the window's actions as control commands --------
mg="$VIREO_BIN/vireo-manage"
vm="Console Test"
vmstate() { "$mg" showvminfo "$vm" --machinereadable 2>/dev/null | sed -n 's/^VMState="\(.*\)"$/\1/p'; }
"$mg" createvm --name "$vm" --basefolder "$tmp/vms" --register >/dev/null || fail "createvm"
"$mg" modifyvm "$vm" --memory 32 >/dev/null || fail "modifyvm"
# The manager's Preferences save the host key in the global registry; windows opened after that use it.
"$mg" setextradata global GUI/HostKey RightAlt >/dev/null || fail "setextradata global GUI/HostKey RightAlt"
"$mg" startvm "$vm" --type gui --exec "$STORAGE_EXEC" >"$tmp/mg.out" 2>&1 || fail "startvm --type gui: $(cat "$tmp/mg.out")"
registered_running=1
wid=$(wait_window "^$vm - Vireo\$") || fail "vireo-manage startvm --type gui opened no window named '$vm - Vireo'"
[ "$(vmstate)" = running ] || fail "the machine is '$(vmstate)', not running"
echo "ok   vireo-manage startvm --type gui opened '$vm - Vireo'"
log="$tmp/vms/$vm/Logs/VM.log"
# The window may be mapped a moment before vireo-vm logs that it opened.
for _ in $(seq 25); do grep -q "console window opened" "$log" && break; sleep 0.2; done
grep -q "the host key is Right Alt" "$log" || fail "with GUI/HostKey=RightAlt the log does not name Right Alt"
# Right Ctrl is an ordinary key now: the keyboard stays captured, so Alt+M and Return go to the guest, not the menu.
xdotool windowfocus --sync "$wid" && sleep 0.3 && python3 "$x11py" key 105 && sleep 0.3 && xdotool key alt+m && sleep 0.5 &&
    xdotool key Return
sleep 1
[ "$(vmstate)" = running ] || fail "with Right Alt as the host key, Right Ctrl released the keyboard (now '$(vmstate)')"
echo "ok   with GUI/HostKey=RightAlt, Right Ctrl goes to the guest and releases nothing"
# Right Alt releases the keyboard: the Machine menu's first item (Pause) from the keyboard.
python3 "$x11py" key 108 && sleep 0.3 && xdotool key alt+m && sleep 0.5 && xdotool key Return  # evdev KEY_RIGHTALT + 8
for _ in $(seq 25); do [ "$(vmstate)" = paused ] && break; sleep 0.2; done
[ "$(vmstate)" = paused ] || fail "Right Alt, then Machine > Pause did not pause the machine (now '$(vmstate)')"
echo "ok   Right Alt releases the keyboard; Machine > Pause pauses the machine and its settings record it"
close_question "closing the registered machine's window showed no question"
xdotool windowfocus --sync "$dlg" && xdotool key alt+p
for _ in $(seq 75); do [ "$(vmstate)" = poweroff ] && break; sleep 0.2; done
[ "$(vmstate)" = poweroff ] || fail "Power Off in the window left the machine '$(vmstate)'"
registered_running=
grep -q "control: power off" "$log" || fail "the window's power off did not go through the control commands"
echo "ok   Power Off from the close question powers the machine off through its control commands"
exit 0
