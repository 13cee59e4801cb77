#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# vnc-startvm.sh - a registered machine's VNC server from its settings (vireo-manage modifyvm --vnc on --vncport 0 --vncpass): vireo-vm --startvm listens on the first free port from 5900, records it in the extra data Vireo/VNC/Listening (gone after power off), asks for the password, and serves SeaBIOS's screen to gvnccapture.
set -u
: "${VIREO_BIN:?}" "${VIREO_SRC:?}"
for tool in gvnccapture python3; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed (./configure --install-deps installs it)"; exit 77; }
done
if ! "$VIREO_BIN/vireo-vm" --help | grep -q -- "--vnc "; then
    echo "this vireo-vm has no --vnc option"
    exit 77
fi
tmp=$(mktemp -d /tmp/vireo-vncsv.XXXXXX)
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
vm=vncsv
log="$tmp/vms/$vm/Logs/VM.log"

fail() {
    echo "FAIL: $*"
    [ -f "$log" ] && { echo "---- VM.log (tail)"; tail -n 25 "$log"; }
    exit 1
}
ok() { echo "ok   $*"; }
manage() {
    "$VIREO_BIN/vireo-manage" "$@" >"$tmp/manage.out" 2>"$tmp/manage.err" ||
        fail "vireo-manage $* exited $?: $(cat "$tmp/manage.err")"
    cat "$tmp/manage.out"
}

manage createvm --name "$vm" --basefolder "$tmp/vms" --register >/dev/null
manage modifyvm "$vm" --memory 32 --vnc on --vncport 0 --vncpass hushhush >/dev/null

# The first free port from 5900: the log and the extra data name the same one.
"$VIREO_BIN/vireo-vm" --startvm "$vm" --headless --exec soft --timeout 90 >"$tmp/vm.out" 2>&1 &
pid=$!
for ((i = 0; i < 100; i++)); do
    [ -f "$log" ] && grep -q "VNC server listening on" "$log" && break
    kill -0 "$pid" 2>/dev/null || fail "vireo-vm --startvm ended: $(tail -n 3 "$tmp/vm.out")"
    sleep 0.1
done
line=$(grep -m1 "VNC server listening on" "$log") || fail "the log does not say where the VNC server listens"
[[ "$line" =~ listening\ on\ 127\.0\.0\.1:([0-9]+)\ .*password\ required ]] ||
    fail "the VNC server is not on 127.0.0.1 with a password: $line"
port=${BASH_REMATCH[1]}
[ "$port" -ge 5900 ] && [ "$port" -lt 6000 ] || fail "port 0 gave port $port, not one from 5900"
for ((i = 0; i < 50; i++)); do
    got=$("$VIREO_BIN/vireo-manage" getextradata "$vm" Vireo/VNC/Listening 2>/dev/null)
    [ "$got" = "Value: 127.0.0.1:$port" ] && break
    sleep 0.1
done
[ "$got" = "Value: 127.0.0.1:$port" ] || fail "extra data Vireo/VNC/Listening is '$got', not 127.0.0.1:$port"
grep -q "has no VNC server" "$log" && fail "the log still says Vireo has no VNC server"
"$VIREO_BIN/vireo-manage" showvminfo "$vm" --machinereadable | grep -qx "VNCListening=\"127.0.0.1:$port\"" ||
    fail "showvminfo --machinereadable has no VNCListening=\"127.0.0.1:$port\""
"$VIREO_BIN/vireo-manage" showvminfo "$vm" | grep -q "VNC server: *listening on 127.0.0.1:$port" ||
    fail "showvminfo does not show where the VNC server listens"
ok "the settings' VNC server listens on 127.0.0.1:$port (first free from 5900), recorded in extra data and shown by showvminfo"

# gvnccapture asks for the password on its terminal.
disp=$((port - 5900))
python3 "$VIREO_SRC/tests/lib/ptycap.py" nothatone gvnccapture "127.0.0.1:$disp" "$tmp/wrong.png" >/dev/null 2>&1 &&
    fail "a wrong password captured the screen"
shown=
for ((i = 0; i < 30; i++)); do
    if python3 "$VIREO_SRC/tests/lib/ptycap.py" hushhush gvnccapture "127.0.0.1:$disp" "$tmp/shot.png" >"$tmp/cap.out" 2>&1 &&
        python3 "$VIREO_SRC/tests/lib/pngtext.py" "$tmp/shot.png" >"$tmp/shot.txt" 2>&1 && grep -q SeaBIOS "$tmp/shot.txt"; then
        shown=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || fail "vireo-vm ended while waiting for SeaBIOS's screen"
    sleep 1
done
[ -n "$shown" ] || fail "no capture with the password showed SeaBIOS's screen ($(cat "$tmp/cap.out"))"
grep -q hushhush "$log" "$tmp/vm.out" && fail "the password appears in the VM log or output"
ok "the settings' password: a wrong one refused, the right one captures SeaBIOS's screen; not in the log"

kill -TERM "$pid"
wait "$pid"
pid=
got=$("$VIREO_BIN/vireo-manage" getextradata "$vm" Vireo/VNC/Listening 2>&1)
[ "$got" = "No value set!" ] || fail "after power off the extra data still says '$got'"
"$VIREO_BIN/vireo-manage" showvminfo "$vm" --machinereadable | grep -q "^VNCListening=" &&
    fail "showvminfo still shows VNCListening after power off"
ok "after power off the extra data Vireo/VNC/Listening is gone"
exit 0
