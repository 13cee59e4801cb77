#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# rdp-startvm.sh - a registered machine's RDP settings (vireo-manage modifyvm --vrde..., extra data Vireo/RDPUser) start vireo-vm's RDP server: its user and password, its certificate kept in the machine folder, a taken port reported with the VM running on (firmware only: seconds).
set -u
mg="$VIREO_BIN/vireo-manage"
if [ ! -x "$VIREO_BIN/vireo-vm" ]; then
    echo "vireo-vm is not built"
    exit 77
fi
for t in cc pkg-config python3; do
    command -v "$t" >/dev/null 2>&1 || { echo "FAIL: '$t' is missing (./configure --install-deps installs it)"; exit 1; }
done
export WLOG_LEVEL=OFF
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-rdpvm.XXXXXX")
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
B="$tmp/vms"
mkdir -p "$B"
holder=
cleanup() {
    "$mg" controlvm r1 poweroff >/dev/null 2>&1 </dev/null
    [ -n "$holder" ] && kill "$holder" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

log="$B/r1/Logs/VM.log"
fail() {
    echo "FAIL: $*"
    echo "---- VM log (tail)"; tail -n 15 "$log" 2>/dev/null
    exit 1
}
mgr() { "$mg" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || fail "vireo-manage $* exited $?: $(cat "$tmp/err")"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
state() { "$mg" showvminfo r1 --machinereadable 2>&1 | sed -n 's/^VMState="\(.*\)"$/\1/p'; }
wait_log() {
    for _ in $(seq 100); do
        grep -q "$1" "$log" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "the VM log never said \"$1\""
}

cc -std=gnu11 -O1 -o "$tmp/rdp-client" "$VIREO_SRC/tests/lib/rdp-client.c" $(pkg-config --cflags --libs freerdp2 winpr2) \
    >"$tmp/cc.log" 2>&1 || { cat "$tmp/cc.log"; fail "cannot build tests/lib/rdp-client.c"; }

mgr createvm --name r1 --basefolder "$B" --register
port=$(free_port)
mgr modifyvm r1 --memory 64 --vrde on --vrdeport "$port" --vrdeaddress 127.0.0.1 --vrdeauthtype password --vncpass s3cret
mgr setextradata r1 Vireo/RDPUser alice
mgr startvm r1 --type headless
wait_log "RDP server listening on 127.0.0.1 port $port"
echo "ok   the settings start RDP on 127.0.0.1:$port"

"$tmp/rdp-client" 127.0.0.1 "$port" alice s3cret 3 >"$tmp/client.out" 2>&1 ||
    fail "alice with the machine's password could not connect (exit $?): $(cat "$tmp/client.out")"
"$tmp/rdp-client" 127.0.0.1 "$port" vireo s3cret 3 >"$tmp/client.out" 2>&1
[ $? -eq 2 ] || fail "user vireo got in although extra data Vireo/RDPUser names alice"
"$tmp/rdp-client" 127.0.0.1 "$port" alice wrong 3 >"$tmp/client.out" 2>&1
[ $? -eq 2 ] || fail "a wrong password got in"
grep -q "unknown user 'vireo'" "$log" && grep -q "wrong password for user 'alice'" "$log" ||
    fail "the VM log does not name the refusals"
[ "$(state)" = running ] || fail "the machine is '$(state)' after the refused clients"
echo "ok   user alice (Vireo/RDPUser) with the machine's password gets in; vireo, and a wrong password, do not"

for f in rdp.crt rdp.key; do
    [ -f "$B/r1/$f" ] || fail "$f is not in the machine folder"
    [ "$(stat -c %a "$B/r1/$f")" = 600 ] || fail "$f is mode $(stat -c %a "$B/r1/$f"), not 600"
done
sum=$(md5sum <"$B/r1/rdp.crt")
mgr controlvm r1 poweroff
mgr startvm r1 --type headless
wait_log "RDP server listening on 127.0.0.1 port $port"
[ "$(md5sum <"$B/r1/rdp.crt")" = "$sum" ] || fail "the certificate changed between two runs"
mgr controlvm r1 poweroff
echo "ok   the certificate and key live in the machine folder (mode 0600) and stay the same across runs"

# The settings refuse password authentication without a password, so that never reaches vireo-vm.
"$mg" modifyvm r1 --vncpass "" >"$tmp/out" 2>"$tmp/err" && fail "modifyvm took password authentication without a password"
echo "ok   password authentication without a password is refused by the settings"

# The port taken by someone else: the VM runs, the log names the port.
python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$port" &
holder=$!
sleep 0.5
mgr modifyvm r1 --vrdeauthtype null
mgr startvm r1 --type headless
wait_log "port $port: the port is in use"
[ "$(state)" = running ] || fail "the machine is '$(state)' with its RDP port taken"
mgr controlvm r1 poweroff
kill "$holder"
holder=
echo "ok   a taken RDP port is reported and the VM runs without RDP"

mgr unregistervm r1 --delete
[ ! -e "$B/r1" ] || fail "unregistervm --delete left the machine folder: $(ls -A "$B/r1")"
echo "ok   unregistervm --delete removes the certificate and key with the machine folder"
