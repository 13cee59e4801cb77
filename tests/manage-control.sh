#!/usr/bin/env bash
# manage-control.sh - vireo-manage startvm/controlvm/discardstate/online snapshot and live DVD change against real vireo-vm processes (firmware only, no guest OS: seconds).
set -u
mg="$VIREO_BIN/vireo-manage"
tmp=$(mktemp -d)
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
unset DISPLAY WAYLAND_DISPLAY
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
B="$tmp/vms"
mkdir -p "$B"
fails=0

# Whatever happens, no VM process outlives the test.
cleanup() {
    for vm in c1 c2; do
        "$mg" controlvm "$vm" poweroff >/dev/null 2>&1
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL $*"
    fails=$((fails + 1))
}

run() {
    local want=$1 name=$2
    shift 2
    timeout 180 "$mg" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    if [ $rc -ne "$want" ]; then
        fail "$name: exit $rc (want $want): vireo-manage $*"
        sed 's/^/    /' "$tmp/err" | head -n 20
        return 1
    fi
    echo "ok   $name"
    return 0
}

# state VM WANT: showvminfo reports WANT as VMState.
state() {
    local got
    got=$("$mg" showvminfo "$1" --machinereadable 2>&1 | sed -n 's/^VMState="\(.*\)"$/\1/p')
    [ "$got" = "$2" ] || fail "state of $1: '$got' (want '$2')"
}

if [ ! -x "$VIREO_BIN/vireo-vm" ]; then
    echo "vireo-vm is not built"
    exit 77
fi

"$mg" createvm --name c1 --basefolder "$B" --register >/dev/null || fail "createvm c1"
"$mg" modifyvm c1 --memory 64 --uart1 on --uartmode1 file "$tmp/c1-com1.log" || fail "modifyvm c1"
head -c 1048576 /dev/zero >"$tmp/cd.iso"
"$mg" storageattach c1 --storagectl IDE --port 1 --device 0 --type dvddrive --medium emptydrive || fail "empty DVD drive"

# ---- start, pause, resume ------------------------------------------------------------------------------
run 0 startvm startvm c1 --type gui && grep -q "successfully started" "$tmp/out" || fail "startvm: message"
# gui asks for the console window; with no display server here the VM says so in its log and runs headless.
grep -q "no display server: running headless" "$B/c1/Logs/VM.log" || fail "startvm --type gui: the VM log does not say it runs headless for want of a display server"
state c1 running
run 0 list-running list runningvms && grep -q '^"c1" ' "$tmp/out" || fail "list runningvms: c1 missing"
run 2 startvm-twice startvm c1 && grep -q "VM 'c1' is already running" "$tmp/err" || fail "startvm twice: message"
run 0 pause controlvm c1 pause && state c1 paused
run 0 resume controlvm c1 resume && state c1 running
run 2 modify-running modifyvm c1 --cpus 2
run 0 extradata-running setextradata c1 note "set while running"

# Devices that do not exist yet are refused by the VM with its reason; if they exist, the result must be real.
timeout 60 "$mg" controlvm c1 screenshotpng "$tmp/shot.png" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ]; then
    head -c 8 "$tmp/shot.png" | od -An -tx1 | grep -q "89 50 4e 47" || fail "screenshot is not a PNG"
elif [ $rc -ne 2 ] || ! grep -q "refused screenshotpng: " "$tmp/err"; then
    fail "screenshotpng: exit $rc: $(cat "$tmp/err")"
fi
timeout 60 "$mg" controlvm c1 keyboardputscancode 1c 9c >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || { [ $rc -eq 2 ] && grep -q "refused keyboardputscancode: " "$tmp/err"; } ||
    fail "keyboardputscancode: exit $rc: $(cat "$tmp/err")"

# ---- a live DVD change and an online snapshot -----------------------------------------------------------------
run 0 dvd-live storageattach c1 --storagectl IDE --port 1 --device 0 --type dvddrive --medium "$tmp/cd.iso"
"$mg" showvminfo c1 --machinereadable | grep -qxF "\"IDE-1-0\"=\"$tmp/cd.iso\"" || fail "live DVD change not recorded"
run 0 dvd-live-eject storageattach c1 --storagectl IDE --port 1 --device 0 --type dvddrive --medium emptydrive
"$mg" showvminfo c1 --machinereadable | grep -qxF '"IDE-1-0"="emptydrive"' || fail "live eject not recorded"
run 0 snapshot-online snapshot c1 take live --description "taken while running"
run 0 snapshot-online-list snapshot c1 list && grep -q "Name: live (UUID: .*) \[online\] \*" "$tmp/out" ||
    fail "online snapshot: $(cat "$tmp/out")"
state c1 running

# ---- save, resume, power off ---------------------------------------------------------------------------------
run 0 savestate controlvm c1 savestate && state c1 saved
sav=$("$mg" showvminfo c1 --machinereadable | sed -n 's/^VMStateFile="\(.*\)"$/\1/p')
[ -n "$sav" ] && [ -f "$sav" ] || fail "savestate: no state file ('$sav')"
run 2 controlvm-saved controlvm c1 pause && grep -q "VM 'c1' is not running" "$tmp/err" || fail "controlvm of a saved VM"
run 0 start-saved startvm c1 && state c1 running
run 0 poweroff controlvm c1 poweroff && state c1 poweroff
[ -n "$sav" ] && [ -e "$sav" ] && fail "the state file $sav stayed after the resumed VM powered off"
run 0 start-again startvm c1 --exec auto && state c1 running
run 0 savestate2 controlvm c1 savestate && state c1 saved
run 0 discardstate discardstate c1 && state c1 poweroff
run 2 discardstate-twice discardstate c1
run 0 restore-online snapshot c1 restore live && state c1 saved
run 0 start-online-snapshot startvm c1 && state c1 running
run 0 poweroff2 controlvm c1 poweroff && state c1 poweroff

# ---- a VM that cannot start: the end of its output is shown ---------------------------------------------------
"$mg" createvm --name c2 --basefolder "$B" --register >/dev/null || fail "createvm c2"
"$mg" storageattach c2 --storagectl IDE --port 1 --device 0 --type dvddrive --medium "$tmp/cd.iso" || fail "attach c2"
mv "$tmp/cd.iso" "$tmp/gone.iso"
run 2 startvm-fails startvm c2 && grep -q "VM 'c2' did not start" "$tmp/err" && grep -q "cd.iso" "$tmp/err" ||
    fail "startvm of a VM without its DVD image: $(cat "$tmp/err")"
state c2 poweroff

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"
