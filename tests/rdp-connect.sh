#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# rdp-connect.sh - vireo-vm's RDP server with real clients: xfreerdp logs in (and is refused with a wrong password) under Xvfb, a headless FreeRDP client (tests/lib/rdp-client.c) gets the screen, garbage and floods on the port, and the VM runs on through all of it.
# The guest is the test ISO on the software CPU (SeaBIOS's text screen, then the kernel's console), so the
# screen has text on it; a build whose PC has no graphics adapter yet shows clients a black desktop, which
# is checked instead of the text.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso Xvfb xfreerdp cc pkg-config python3
export WLOG_LEVEL=OFF # FreeRDP's own log lines (ours are in the VM log)
iso="$GUESTS_OUT/screen-bochs.iso"
storage_cached "$iso" env MODULES=bochs EXTRA_APPEND="console=tty0 vireo.end=hang" "$GUESTS_SRC/make-iso.sh" "$iso" none
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-rdp.XXXXXX")
vm_pid= xvfb_pid=
trap '[ -n "$vm_pid" ] && kill -KILL "$vm_pid" 2>/dev/null; [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*"
    echo "---- VM log (rdp lines, tail)"; grep ' rdp: ' "$tmp/vm.log" 2>/dev/null | tail -n 20
    echo "---- VM log (tail)"; tail -n 10 "$tmp/vm.log" 2>/dev/null
    echo "---- vireo-vm output (tail)"; tail -n 5 "$tmp/vm.out" 2>/dev/null
    exit 1
}
vm_alive() { kill -0 "$vm_pid" 2>/dev/null || fail "vireo-vm ended $1: $(tail -n 3 "$tmp/vm.out")"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The headless client, built against the FreeRDP the server uses.
cc -std=gnu11 -O1 -o "$tmp/rdp-client" "$VIREO_SRC/tests/lib/rdp-client.c" $(pkg-config --cflags --libs freerdp2 winpr2) \
    >"$tmp/cc.log" 2>&1 || { cat "$tmp/cc.log"; fail "cannot build tests/lib/rdp-client.c"; }

printf 'secret\n' >"$tmp/pw"
# Bad options: refused with exit 1 and a message naming the option, before any VM runs.
bad() {
    local want=$1; shift
    "$VIREO_BIN/vireo-vm" --memory 32M --timeout 5 "$@" >"$tmp/bad.out" 2>&1
    local rc=$?
    [ $rc -eq 1 ] || fail "vireo-vm $* exited $rc, not 1"
    grep -q -- "$want" "$tmp/bad.out" || fail "vireo-vm $* did not say '$want': $(cat "$tmp/bad.out")"
}
bad "--rdp '99999' must be" --rdp 99999
bad "--rdp '::1:3389' must be" --rdp ::1:3389
bad "need --rdp" --rdp-password-file "$tmp/pw"
bad "--rdp-user needs --rdp-password-file" --rdp 3390 --rdp-user bob
bad "--rdp-password-file '$tmp/nope'" --rdp 3390 --rdp-password-file "$tmp/nope"
printf '\n' >"$tmp/empty"
bad "the first line is empty" --rdp 3390 --rdp-password-file "$tmp/empty"
echo "ok   bad --rdp options are refused with exit 1, naming the option"
# A free port; taken between the probe and the bind, vireo-vm says so and we try another.
for attempt in 1 2 3; do
    port=$(free_port)
    "$VIREO_BIN/vireo-vm" --exec "$STORAGE_EXEC" --memory 256M --cdrom "$iso" --boot d --log "$tmp/vm.log" --timeout 150 \
        --rdp "127.0.0.1:$port" --rdp-user vireo --rdp-password-file "$tmp/pw" --rdp-cert-dir "$tmp/certs" \
        >"$tmp/vm.out" 2>&1 &
    vm_pid=$!
    for _ in $(seq 100); do
        grep -q "RDP server listening on 127.0.0.1 port $port" "$tmp/vm.log" 2>/dev/null && break
        kill -0 "$vm_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "RDP server listening on 127.0.0.1 port $port" "$tmp/vm.log" 2>/dev/null && break
    wait "$vm_pid" 2>/dev/null
    grep -q "port is in use" "$tmp/vm.log" 2>/dev/null || fail "vireo-vm did not start its RDP server"
    rm -f "$tmp/vm.log"
done
vm_alive "while starting"
echo "ok   vireo-vm serves RDP on 127.0.0.1:$port"
for f in rdp.crt rdp.key; do
    [ "$(stat -c %a "$tmp/certs/$f")" = 600 ] || fail "$f is mode $(stat -c %a "$tmp/certs/$f"), not 600"
done
grep -q "BEGIN CERTIFICATE" "$tmp/certs/rdp.crt" || fail "rdp.crt is not a PEM certificate"
echo "ok   the self-signed certificate and key are in --rdp-cert-dir with mode 0600"

Xvfb -displayfd 5 -nolisten tcp -screen 0 1024x768x24 5>"$tmp/display" 2>"$tmp/xvfb.log" &
xvfb_pid=$!
for _ in $(seq 50); do [ -s "$tmp/display" ] && break; sleep 0.1; done
[ -s "$tmp/display" ] || fail "Xvfb did not start: $(tail -n 3 "$tmp/xvfb.log")"
export DISPLAY=":$(cat "$tmp/display")"

xf() { timeout 30 xfreerdp "/v:127.0.0.1:$port" /cert:ignore "$@" >"$tmp/xf.out" 2>&1; }
xf /u:vireo /p:secret /auth-only || fail "xfreerdp /auth-only with the right password exited $?: $(tail -n 3 "$tmp/xf.out")"
echo "ok   xfreerdp /auth-only logs in as vireo"
xf /u:vireo /p:wrong /auth-only && fail "xfreerdp /auth-only with a wrong password succeeded"
grep -q "refused: wrong password for user 'vireo'" "$tmp/vm.log" || fail "the VM log does not say why the client was refused"
xf /u:someone /p:secret /auth-only && fail "xfreerdp /auth-only as an unknown user succeeded"
vm_alive "after the refused logins"
echo "ok   a wrong password and an unknown user are refused; the VM keeps running"

# Hostile bytes: random data, a TPKT header promising 64 KiB, an X.224 request cut short, a TLS
# ClientHello that never finishes, 60 connections opened and dropped at once.
python3 - "$port" <<'EOF' || fail "the garbage client could not connect"
import os, socket, sys
port = int(sys.argv[1])
def send(data, wait=False):
    s = socket.create_connection(("127.0.0.1", port))
    if data:
        s.sendall(data)
    if wait:
        s.settimeout(1)
        try:
            s.recv(4096)
        except (socket.timeout, ConnectionError):
            pass
    s.close()
for i in range(10):
    send(os.urandom(4096))
send(bytes([3, 0, 0xff, 0xff]) + os.urandom(100))
send(bytes([3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 1]))
send(bytes([3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 1, 0, 0, 0]) + bytes([0x16, 3, 1, 2, 0, 1, 0, 1, 0xfc]), wait=True)
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
for s in socks:
    s.close()
EOF
sleep 1
vm_alive "after garbage on the RDP port"
xf /u:vireo /p:secret /auth-only || fail "xfreerdp cannot log in after the garbage: $(tail -n 3 "$tmp/xf.out")"
echo "ok   garbage, cut-short handshakes and 60 dropped connections: the VM runs and still serves clients"

# A whole xfreerdp session in the X server: still connected when ended after 4 s.
before=$(grep -c "logged in as vireo" "$tmp/vm.log")
timeout 4 xfreerdp "/v:127.0.0.1:$port" /cert:ignore /u:vireo /p:secret >"$tmp/xf.out" 2>&1
rc=$?
[ $rc -eq 124 ] || fail "the xfreerdp session ended by itself (exit $rc) instead of staying connected: $(tail -n 3 "$tmp/xf.out")"
[ "$(grep -c "logged in as vireo" "$tmp/vm.log")" -gt "$before" ] || fail "the xfreerdp session did not log in"
echo "ok   an xfreerdp session under Xvfb stays connected until it is closed"

# The picture: the guest's text on its screen (or, without a graphics adapter, a black desktop).
if grep -q "no display adapter" "$tmp/vm.log"; then
    "$tmp/rdp-client" 127.0.0.1 "$port" vireo secret 5 1 >"$tmp/client.out" 2>&1 ||
        fail "the FreeRDP client got no picture (exit $?): $(cat "$tmp/client.out")"
    grep -q "size 640x480 colours 1$" "$tmp/client.out" || fail "the desktop is not a black 640x480: $(tail -n 1 "$tmp/client.out")"
    echo "ok   this PC has no graphics adapter yet: clients get a black 640x480 desktop ($(tail -n 1 "$tmp/client.out"))"
else
    # SeaBIOS's text screen or the kernel's console: at least two colours (text on black).
    "$tmp/rdp-client" 127.0.0.1 "$port" vireo secret 40 2 "$tmp/screen.ppm" >"$tmp/client.out" 2>&1 ||
        fail "the FreeRDP client did not see text on the screen (exit $?): $(cat "$tmp/client.out")"
    # The picture as PNG, read with the VGA BIOS's own font: the guest's words, not just pixels.
    python3 - "$tmp/screen.ppm" "$tmp/screen.png" <<'EOF' || fail "cannot convert the client's picture"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
magic, dims, maxval, pixels = data.split(b"\n", 3)
w, h = map(int, dims.split())
raw = b"".join(b"\0" + pixels[y * w * 3:(y + 1) * w * 3] for y in range(h))
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[2], "wb").write(png)
EOF
    python3 "$VIREO_SRC/tests/lib/pngtext.py" "$tmp/screen.png" >"$tmp/screen.txt" ||
        fail "pngtext cannot read the client's picture"
    words=$(grep -m1 -o -E 'SeaBIOS|Booting from [A-Za-z/]+|ISOLINUX|Linux version|\[ *[0-9]+\.[0-9]{6}\]|VIREO-BOOT-OK' "$tmp/screen.txt") ||
        { head -n 12 "$tmp/screen.txt"; fail "the client's picture does not show the guest's text"; }
    echo "ok   the FreeRDP client sees the guest's screen ($(tail -n 1 "$tmp/client.out")), reading \"$words\""
fi
vm_alive "after the sessions"

kill -TERM "$vm_pid"
wait "$vm_pid"
rc=$?
vm_pid=
[ $rc -eq 0 ] || fail "vireo-vm exited $rc after SIGTERM"
grep -q "RDP server on port $port stopped" "$tmp/vm.log" || fail "the RDP server did not stop with the VM"
echo "ok   the VM powers off on SIGTERM and the RDP server stops with it"

# Without --rdp-cert-dir the certificate lives in a temporary folder for the run, gone afterwards.
mkdir -p "$tmp/t"
TMPDIR="$tmp/t" "$VIREO_BIN/vireo-vm" --exec "$STORAGE_EXEC" --memory 32M --log "$tmp/vm2.log" --timeout 2 \
    --rdp "127.0.0.1:$(free_port)" >"$tmp/vm2.out" 2>&1
grep -q "made a self-signed RDP certificate for 'vireo' ($tmp/t/vireo-rdp-" "$tmp/vm2.log" ||
    fail "no temporary certificate folder: $(grep ' rdp: ' "$tmp/vm2.log" | head -n 3)"
grep -q "accepts every client: no password is set" "$tmp/vm2.log" || fail "no warning about a server without a password"
[ -z "$(ls -A "$tmp/t")" ] || fail "the temporary certificate folder was left behind: $(ls -A "$tmp/t")"
echo "ok   without --rdp-cert-dir the certificate is made in a temporary folder that goes with the VM"
