#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# vnc-screen.sh - vireo-vm's VNC server with real clients: SeaBIOS's text screen captured by gvnccapture (no password, then a password), a wrong password refused, garbage, a client gone mid-update and three viewers at once while the VM keeps running, and the option refusals.
# The guest is the firmware alone on the software CPU: with no disk SeaBIOS stays on its text screen
# ("No bootable device"), which tests/lib/pngtext.py reads back with the VGA BIOS's own font.
set -u
bin="$VIREO_BIN/vireo-vm"
pngtext="$VIREO_SRC/tests/lib/pngtext.py"
for tool in gvnccapture python3; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed (./configure --install-deps installs it)"; exit 77; }
done
if ! "$bin" --help | grep -q -- "--vnc "; then
    echo "this vireo-vm has no --vnc option"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-vnc.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*"
    echo "---- log (tail)"; tail -n 25 "$tmp/vm.log" 2>/dev/null
    echo "---- output"; tail -n 10 "$tmp/vm.out" 2>/dev/null
    exit 1
}
ok() { echo "ok   $*"; }

# A display number whose port (5900 + N) nobody listens on now; vireo-vm may still lose a race for it.
free_display() {
    python3 - <<'EOF'
import random, socket
for _ in range(200):
    n = random.randint(200, 3000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 5900 + n))
        print(n)
        break
    except OSError:
        pass
    finally:
        s.close()
EOF
}

# start_vm EXTRA_ARGS...: boots the firmware with VNC on a free display; sets pid, disp, port.
start_vm() {
    local try
    for try in 1 2 3 4 5; do
        disp=$(free_display)
        port=$((5900 + disp))
        : > "$tmp/vm.log"
        "$bin" --exec soft --memory 32M --log "$tmp/vm.log" --timeout 150 --vnc "127.0.0.1:$port" "$@" \
            >"$tmp/vm.out" 2>&1 &
        pid=$!
        local i
        for ((i = 0; i < 100; i++)); do
            grep -q "VNC server listening on 127.0.0.1:$port " "$tmp/vm.log" && return 0
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        wait "$pid" 2>/dev/null
        pid=
        if grep -q "no display adapter" "$tmp/vm.log" "$tmp/vm.out"; then
            echo "this build's PC has no graphics adapter yet, so the VNC server has no screen to serve"
            exit 77
        fi
        grep -q "Address already in use" "$tmp/vm.log" || fail "vireo-vm did not start its VNC server on port $port"
    done
    fail "no free VNC port after 5 tries"
}

# Powers the VM off with SIGTERM; it must be gone within 15 s (a hung VNC thread would keep it).
stop_vm() {
    kill -TERM "$pid" 2>/dev/null
    local i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && fail "vireo-vm did not exit within 15 s of SIGTERM"
    wait "$pid" 2>/dev/null
    pid=
}

# gvnccapture reads a password from its terminal only: this runs it on a pty and answers the prompt.

# capture NAME [PASSWORD]: one gvnccapture of display $disp into $tmp/NAME.png (a password typed at its prompt).
capture() {
    local name=$1
    rm -f "$tmp/$name.png"
    if [ $# -ge 2 ]; then
        python3 "$VIREO_SRC/tests/lib/ptycap.py" "$2" gvnccapture "127.0.0.1:$disp" "$tmp/$name.png" >"$tmp/$name.cap" 2>&1
    else
        timeout 30 gvnccapture -q "127.0.0.1:$disp" "$tmp/$name.png" >"$tmp/$name.cap" 2>&1 </dev/null
    fi && [ -s "$tmp/$name.png" ]
}

# screen_ok NAME: the capture is SeaBIOS's 720x400 text screen with its banner, and the server says the same size.
screen_ok() {
    local txt="$tmp/$1.txt"
    python3 "$pngtext" "$tmp/$1.png" > "$txt" 2>&1 || return 1
    grep -q "^# size 720x400 " "$txt" && grep -q "SeaBIOS" "$txt" && grep -q "screen is now 720x400" "$tmp/vm.log"
}

# Waits until a capture shows SeaBIOS's screen (the firmware needs a few seconds on the software CPU).
wait_screen() {
    local name=$1 i
    for ((i = 0; i < 30; i++)); do
        capture "$@" && screen_ok "$name" && return 0
        kill -0 "$pid" 2>/dev/null || fail "vireo-vm ended while waiting for SeaBIOS's screen"
        sleep 1
    done
    fail "no capture showed SeaBIOS's 720x400 text screen in 30 s (last: $(head -n 3 "$tmp/$name.txt" 2>/dev/null | tr '\n' ' '); $(cat "$tmp/$name.cap" 2>/dev/null))"
}

# ---- Option refusals: nothing starts -------------------------------------------------------------

expect_refusal() {
    local what=$1 pattern=$2
    shift 2
    "$bin" --exec soft --memory 32M --timeout 20 "$@" >"$tmp/ref.out" 2>&1
    local rc=$?
    [ $rc -eq 1 ] || fail "$what: exit $rc, not 1 ($(head -c 300 "$tmp/ref.out"))"
    grep -q -- "$pattern" "$tmp/ref.out" || fail "$what: the message does not say '$pattern': $(head -c 300 "$tmp/ref.out")"
}
printf 'sekrit\n' > "$tmp/pw"
chmod 600 "$tmp/pw"
expect_refusal "--vnc without a password or --vnc-no-auth" "--vnc-no-auth" --vnc 127.0.0.1:0
expect_refusal "--vnc-no-auth without --vnc" "needs --vnc" --vnc-no-auth
expect_refusal "both auth options" "contradict" --vnc :1 --vnc-no-auth --vnc-password-file "$tmp/pw"
expect_refusal "a bad listen spec" "not an IPv4 address" --vnc myhost:5900 --vnc-no-auth
expect_refusal "a port past 65535" "65535" --vnc 70000 --vnc-no-auth
expect_refusal "a missing password file" "cannot open" --vnc :1 --vnc-password-file "$tmp/none"
: > "$tmp/empty"
expect_refusal "an empty password file" "empty" --vnc :1 --vnc-password-file "$tmp/empty"
expect_refusal "a bad keymap" "layout" --vnc :1 --vnc-no-auth --vnc-keymap "../x"
grep -q sekrit "$tmp/ref.out" && fail "a refusal printed the password"
ok "option refusals (no password, stray and contradictory options, bad specs, bad password files, bad keymap)"

# ---- No password: captures, hostile clients, several viewers -------------------------------------

start_vm --vnc-no-auth
wait_screen first
ok "gvnccapture without a password: SeaBIOS's text screen, 720x400 as the server's screen ($(grep -m1 SeaBIOS "$tmp/first.txt" | sed 's/ *$//'))"

# A port in use is refused with its reason.
"$bin" --exec soft --memory 32M --timeout 20 --log "$tmp/busy.log" --vnc "127.0.0.1:$port" --vnc-no-auth \
    >"$tmp/busy.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "Address already in use" "$tmp/busy.log" ||
    fail "a second VM on the same VNC port: exit $rc, $(tail -n 2 "$tmp/busy.log")"
ok "a second VM on port $port is refused: address already in use"

python3 - "$port" <<'EOF' || fail "the hostile clients script failed"
import os, socket, struct, sys, time
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s
def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b
# 1. random bytes instead of a handshake, several times, of several sizes
for size in (1, 11, 12, 100, 4096, 65536):
    s = conn()
    try:
        s.sendall(os.urandom(size))
    except OSError:
        pass
    s.close()
# 2. connect and go without a word; 1 to 3 bytes a moment after connecting, then gone
conn().close()
for size in (1, 2, 3):
    s = conn()
    time.sleep(0.04)
    s.sendall(b"RFB"[:size])
    s.close()
# 3. a proper handshake, then random client messages
for _ in range(3):
    s = conn()
    recv_exact(s, 12); s.sendall(b"RFB 003.008\n")
    n = recv_exact(s, 1)[0]; recv_exact(s, n); s.sendall(b"\x01"); recv_exact(s, 4)
    s.sendall(b"\x01")
    si = recv_exact(s, 24); recv_exact(s, struct.unpack(">I", si[20:24])[0])
    try:
        s.sendall(os.urandom(2048))
    except OSError:
        pass
    s.close()
# 4. a full-screen update asked for, a little of it read, then a reset in the middle of the frame
for _ in range(3):
    s = conn()
    recv_exact(s, 12); s.sendall(b"RFB 003.008\n")
    n = recv_exact(s, 1)[0]; recv_exact(s, n); s.sendall(b"\x01"); recv_exact(s, 4)
    s.sendall(b"\x01")
    si = recv_exact(s, 24); recv_exact(s, struct.unpack(">I", si[20:24])[0])
    w, h = struct.unpack(">HH", si[:4])
    s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    recv_exact(s, 100)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
EOF
kill -0 "$pid" 2>/dev/null || fail "vireo-vm ended after the hostile clients"
ok "garbage handshakes, garbage messages and clients reset in the middle of a frame: the VM keeps running"

# SeaBIOS reboots every 5 s when nothing boots and clears the screen meanwhile: a round whose
# captures caught that moment is repeated.
for round in 1 2 3 4; do
    cap_pids=()
    for i in 1 2 3; do
        capture "multi$i" &
        cap_pids+=($!)
    done
    wait "${cap_pids[@]}"
    good=0
    for i in 1 2 3; do
        [ -s "$tmp/multi$i.png" ] || fail "simultaneous viewer $i got no picture ($(cat "$tmp/multi$i.cap"))"
        screen_ok "multi$i" && good=$((good + 1))
    done
    [ $good -eq 3 ] && break
    [ "$round" -eq 4 ] && fail "in 4 rounds, three simultaneous viewers never all showed SeaBIOS's screen"
done
kill -0 "$pid" 2>/dev/null || fail "vireo-vm ended after three simultaneous viewers"
wait_screen final
ok "three simultaneous viewers each captured the screen; a final capture works and the VM runs"
grep -q "client 127.0.0.1 connected" "$tmp/vm.log" || fail "the log does not record client connections"
stop_vm

# ---- A password ----------------------------------------------------------------------------------

start_vm --vnc-password-file "$tmp/pw"
grep -q "password required" "$tmp/vm.log" || fail "the log does not say the VNC server requires a password"
if capture wrong "wrongpw"; then
    fail "gvnccapture with a wrong password captured the screen"
fi
grep -q "wrong VNC password" "$tmp/vm.log" || fail "the log does not record the wrong password"
if capture nopw ""; then
    fail "gvnccapture with an empty password captured the screen"
fi
kill -0 "$pid" 2>/dev/null || fail "vireo-vm ended after a wrong password"
wait_screen right sekrit
grep -q sekrit "$tmp/vm.log" "$tmp/vm.out" && fail "the password appears in the VM log or output"
ok "password: wrong and empty passwords refused, the right one captures SeaBIOS's screen, the password is in no log"
stop_vm
exit 0
