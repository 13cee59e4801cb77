#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# vm-startvm.sh - vireo-vm --startvm end to end: a machine written as settings files boots the test ISO headless, answers on its control socket (state, pause/resume, unsupported devices, garbage), refuses a second start, records its states, powers off, is SIGKILLed (aborted, restarts), saves its state and resumes from it.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso python3
EXEC=${STARTVM_EXEC:-$STORAGE_EXEC}
# The storage /init in 'persist' mode prints PERSIST-UPTIME every 2 s, so a restored guest shows it went on.
initrd=$(storage_initrd)
iso="$GUESTS_OUT/startvm.iso"
storage_cached "$iso" env INITRD="$initrd" EXTRA_APPEND="vireo.storage=persist" "$GUESTS_SRC/make-iso.sh" "$iso" none

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-startvm.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$VIREO_USER_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }

uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
iso_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
disk_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
# The machine's own copy, so the missing-medium check can take it away without touching the cache.
cp "$iso" "$tmp/startvm.iso" && iso="$tmp/startvm.iso"
mdir="$tmp/vms/demo"
settings="$mdir/demo.vireo"
com1="$tmp/com1.txt"
sock="$XDG_RUNTIME_DIR/vireo/$uuid.sock"
disk="$mdir/disk.qcow2"
mkdir -p "$mdir"
"$VIREO_BIN/vireo-img" create --format qcow2 "$disk" 64M >/dev/null || { echo "FAIL: vireo-img create"; exit 1; }
cat > "$settings" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<VireoMachine schemaVersion="2" uuid="$uuid" name="demo" osType="Debian_64">
  <Hardware>
    <CPU count="1"/>
    <Memory sizeMiB="256"/>
    <Firmware type="bios"/>
    <Chipset type="piix3"/>
    <Platform ioapic="true" hpet="false" rtcUtc="true"/>
    <Boot>
      <Order position="1" device="dvd"/>
      <Order position="2" device="floppy"/>
    </Boot>
    <Storage>
      <Controller name="IDE Controller" bus="ide" ports="2" bootable="true"/>
      <Controller name="SATA" bus="sata" ports="2" bootable="true"/>
      <Attachment controller="SATA" port="1" device="0" type="hdd" medium="$disk_uuid" nonrotational="true" hotpluggable="false"/>
      <Attachment controller="IDE Controller" port="1" device="0" type="dvd" medium="$iso_uuid" nonrotational="false" hotpluggable="false"/>
    </Storage>
    <Network>
      <Adapter slot="0" enabled="true" type="e1000" attachment="nat" mac="080027D337AF" cable="true"/>
    </Network>
    <Audio enabled="false" driver="pulse" controller="hda" output="true" input="false"/>
    <USB enabled="false" controller="ohci"/>
    <Display adapter="vbe" vramMiB="16" monitors="1"/>
    <RemoteDisplay vnc="false" vncPort="0" rdp="false" rdpPort="0" auth="none"/>
    <SharedFolders/>
    <Serial>
      <Port slot="0" enabled="true" backend="file:$com1"/>
    </Serial>
  </Hardware>
  <State state="poweroff" changedNs="0"/>
</VireoMachine>
EOF
cat > "$VIREO_USER_HOME/Vireo.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<VireoRegistry schemaVersion="2">
  <Machines>
    <Machine uuid="$uuid" path="$settings"/>
  </Machines>
  <Media>
    <Medium uuid="$iso_uuid" location="$iso" type="dvd" format="iso" readonly="true"/>
    <Medium uuid="$disk_uuid" location="$disk" type="hdd" format="qcow2" readonly="false"/>
  </Media>
</VireoRegistry>
EOF

# ctl COMMAND [ARGUMENT]: one request over the control socket; prints "OK <body>" or "ERR <code> <message>".
ctl() {
    python3 - "$sock" "$@" <<'PY'
import socket, sys
path, cmd = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else None
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
try:
    s.connect(path)
except OSError as e:
    print("NOCONNECT", e); sys.exit(1)
line = "VCTL1 " + cmd
if arg is not None:
    line += " " + arg.replace("\\", "\\\\").replace("\n", "\\n")
s.sendall(line.encode() + b"\n")
buf = b""
while b"\n" not in buf:
    d = s.recv(4096)
    if not d:
        print("EOF"); sys.exit(1)
    buf += d
head, rest = buf.split(b"\n", 1)
head = head.decode()
if head.startswith("OK "):
    n = int(head[3:])
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            print("EOF in body"); sys.exit(1)
        rest += d
    print("OK " + rest[:n].decode(errors="replace"))
else:
    print(head); sys.exit(1)
PY
}

# raw BYTES: sends bytes (a python bytes expression) as they are and prints the first response line.
raw() {
    python3 - "$sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(eval(sys.argv[2]))
buf = b""
while b"\n" not in buf:
    d = s.recv(4096)
    if not d:
        break
    buf += d
print(buf.split(b"\n")[0].decode(errors="replace"))
PY
}

# The state recorded in the settings file.
file_state() { sed -n 's/.*<State state="\([a-z]*\)".*/\1/p' "$settings"; }

state_is() { [ "$(ctl state)" = "OK $1" ]; }

start_vm() {
    "$VIREO_BIN/vireo-vm" --startvm demo --headless --exec "$EXEC" --timeout 900 >"$tmp/vm.out" 2>&1 &
    pid=$!
}

# wait_for SECONDS COMMAND...: polls the command once a second; 0 as soon as it succeeds.
wait_for() {
    local limit=$1 t=0
    shift
    while [ $t -lt "$limit" ]; do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { "$@" >/dev/null 2>&1; return $?; }
        sleep 1
        t=$((t + 1))
    done
    return 1
}

uptime_max() { grep -ao 'PERSIST-UPTIME [0-9.]*' "$com1" | awk '{ if ($2 > m) m = $2 } END { print m + 0 }'; }
uptime_moved() { [ "$(uptime_max)" != "$1" ]; }
show_failure() {
    echo "---- COM1 (tail)"; tail -c 1500 "$com1" 2>/dev/null | tr -c '[:print:]\n' '.'; echo
    echo "---- vireo-vm output"; tail -n 10 "$tmp/vm.out"
    echo "---- VM.log (tail)"; tail -n 25 "$mdir/Logs/VM.log" 2>/dev/null
}

# ---- boot ---------------------------------------------------------------------------------------------
: > "$com1"
start_vm
if wait_for 300 grep -aq VIREO-BOOT-OK "$com1"; then
    ok "the machine booted the ISO from its settings to VIREO-BOOT-OK"
else
    fail "no VIREO-BOOT-OK"; show_failure; exit 1
fi
r=$(ctl state); [ "$r" = "OK running" ] && ok "state over the socket: running" || fail "state: '$r'"
r=$(ctl version); [ "$r" = "OK 1" ] || fail "version: '$r'"
[ "$(file_state)" = running ] && ok "settings record running" || fail "settings state '$(file_state)', want running"
perm=$(stat -c %a "$sock" 2>/dev/null); [ "$perm" = 600 ] || fail "socket mode '$perm', want 600"
perm=$(stat -c %a "$(dirname "$sock")"); [ "$perm" = 700 ] || fail "socket folder mode '$perm', want 700"
log="$mdir/Logs/VM.log"
grep -q "network adapter 1 (e1000, NAT) is configured but Vireo has no network device yet; the guest sees none" "$log" &&
    ok "the NIC Vireo lacks is a warning in VM.log" || fail "no NIC warning in $log"
grep -q "vga: VGA with Bochs VBE at PCI 02.0, [0-9]* MiB video memory" "$log" || fail "the VBE display adapter did not become the VGA"
grep -q "has no graphics device yet" "$log" && fail "the display adapter is still called missing"
grep -q "boot order slot 2 (floppy) is not available" "$log" || fail "no floppy boot order note"
grep -q "the console window is not available yet" "$log" && fail "--headless logged as without it"

# ---- a second start --------------------------------------------------------------------------------------
timeout 30 "$VIREO_BIN/vireo-vm" --startvm "$uuid" --headless >"$tmp/second.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "machine 'demo' is already running (pid $pid)" "$tmp/second.out"; then
    ok "a second --startvm exits 1: $(head -n 1 "$tmp/second.out")"
else
    fail "second start: exit $rc, $(cat "$tmp/second.out")"
fi
[ -S "$sock" ] && [ "$(ctl state)" = "OK running" ] || fail "the second start disturbed the running VM"

# ---- control commands ------------------------------------------------------------------------------------
r=$(ctl pause); [ "$r" = "OK " ] || fail "pause: '$r'"
r=$(ctl state); [ "$r" = "OK paused" ] || fail "state after pause: '$r'"
[ "$(file_state)" = paused ] || fail "settings state '$(file_state)' after pause"
before=$(uptime_max); sleep 5; after=$(uptime_max)
[ "$before" = "$after" ] && ok "paused: the guest's uptime stays at $after" || fail "uptime went on while paused ($before -> $after)"
r=$(ctl pause); [[ "$r" == "ERR -14 "* ]] || fail "pause while paused: '$r'"
r=$(ctl resume); [ "$r" = "OK " ] || fail "resume: '$r'"
[ "$(file_state)" = running ] || fail "settings state '$(file_state)' after resume"
wait_for 30 uptime_moved "$after" && ok "resumed: the guest runs on" || fail "uptime did not move after resume"
# The press is latched in the PM status; this guest runs no acpid, so it carries on (tests/acpi-power-button.sh has one).
r=$(ctl acpipowerbutton); [ "$r" = "OK " ] || fail "acpipowerbutton: '$r'"
r=$(ctl screenshot | head -c 64 | tr -dc 'A-Z'); [[ "$r" == OK*PNG* ]] || fail "screenshot of the VGA: '$r'"
r=$(ctl keyboard-string hello); [ "$r" = "OK " ] || fail "keyboard-string: '$r'"
r=$(ctl keyboard-scancodes "1c 9c"); [ "$r" = "OK " ] || fail "keyboard-scancodes: '$r'"
r=$(ctl pointer "5 5 1"); [ "$r" = "OK " ] || fail "pointer: '$r'"
r=$(ctl keyboard-string $'caf\xc3\xa9'); [[ "$r" == "ERR -3 character 4 "* ]] || fail "keyboard-string with no US key: '$r'"
r=$(ctl keyboard-scancodes "1c 1zz"); [[ "$r" == "ERR -3 scancode '1zz'"* ]] || fail "keyboard-scancodes garbage: '$r'"
r=$(ctl pointer "5 x 1"); [[ "$r" == "ERR -3 "* ]] || fail "pointer garbage: '$r'"
r=$(ctl pointer "5 5 9"); [[ "$r" == "ERR -3 "* ]] && ok "keyboard and pointer input accepted, garbage refused" || fail "pointer buttons 9: '$r'"
r=$(ctl frobnicate); [[ "$r" == "ERR -15 unknown command 'frobnicate'"* ]] || fail "unknown command: '$r'"
r=$(ctl pause extra); [[ "$r" == "ERR -3 "* ]] || fail "pause with an argument: '$r'"
r=$(ctl medium "IDE Controller 1 0 emptydrive"); [ "$r" = "OK " ] || fail "eject: '$r'"
r=$(ctl medium "IDE Controller 1 0 $iso"); [ "$r" = "OK " ] && ok "DVD ejected and inserted again" || fail "insert: '$r'"
grep -q "medium=\"$iso_uuid\"" "$settings" || fail "the settings lost the DVD's medium"
r=$(ctl medium "IDE Controller 0 0 $iso"); [[ "$r" == "ERR -4 "* ]] || fail "medium on an empty slot: '$r'"
r=$(ctl medium "Nope 1 0 $iso"); [[ "$r" == "ERR -3 "* ]] || fail "medium on an unknown controller: '$r'"
r=$(raw 'b"hello\n"'); [[ "$r" == "ERR -9 "* ]] || fail "garbage: '$r'"
r=$(raw 'b"VCTL9 state\n"'); [[ "$r" == "ERR -15 "* ]] || fail "another version: '$r'"
r=$(raw 'b"X" * 70000'); [[ "$r" == "ERR -11 "* ]] && ok "garbage, other versions and overlong lines get ERR" || fail "long line: '$r'"
[ "$(ctl state)" = "OK running" ] || fail "the VM did not survive the hostile requests"

# ---- online snapshot -------------------------------------------------------------------------------------
r=$(ctl snapshot "first snapshot
taken while the guest runs")
snap=${r#OK }
if [[ "$r" == "OK "* ]] && grep -q "<Snapshot[^>]*uuid=\"$snap\"[^>]*name=\"first snapshot\"\|<Snapshot[^>]*name=\"first snapshot\"[^>]*" "$settings" &&
    grep -q "snapshot: disk ahci-p1 continues on '$mdir/Snapshots/" "$log"; then
    ok "online snapshot {$snap}: the disk $(grep -o "continues on '[^']*'" "$log" | tail -n 1)"
else
    fail "snapshot: '$r'"; grep -n "Snapshot\|Attachment" "$settings" | head; tail -n 5 "$log"
fi
[ "$(ctl state)" = "OK running" ] || fail "the VM is not running after the snapshot"
wait_for 30 uptime_moved "$(uptime_max)" || fail "the guest stopped after the snapshot"
r=$(ctl snapshot ""); [[ "$r" == "ERR -3 "* ]] || fail "snapshot without a name: '$r'"
r=$(ctl medium "SATA 1 0 $iso"); [[ "$r" == "ERR -14 "*"hard disk"* ]] || fail "medium on a hard disk: '$r'"

# ---- power off -------------------------------------------------------------------------------------------
r=$(ctl poweroff); [ "$r" = "OK " ] || fail "poweroff: '$r'"
wait "$pid"; rc=$?; pid=
[ $rc -eq 0 ] && ok "poweroff: vireo-vm exited 0" || fail "poweroff: vireo-vm exited $rc"
[ "$(file_state)" = poweroff ] && ok "settings record poweroff" || fail "settings state '$(file_state)' after poweroff"
[ -e "$sock" ] && fail "the control socket outlived the VM"

# ---- killed: aborted, and the next start works ---------------------------------------------------------------
: > "$com1"
start_vm
wait_for 60 state_is running || { fail "no control socket after the restart"; show_failure; }
[ -s "$mdir/Logs/VM.log.1" ] && ok "the previous VM.log was rotated to VM.log.1" || fail "no VM.log.1"
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=
[ "$(file_state)" = running ] || fail "after SIGKILL the record says '$(file_state)'"
: > "$com1"
start_vm
if wait_for 300 grep -aq VIREO-BOOT-OK "$com1"; then
    ok "a SIGKILLed machine starts again"
else
    fail "no VIREO-BOOT-OK after the SIGKILL"; show_failure
fi
grep -q "previous VM process ended without powering off (it was aborted" "$log" &&
    ok "the new VM.log says the last run was aborted" || fail "no aborted note in VM.log"

# ---- saved state ---------------------------------------------------------------------------------------------
wait_for 30 uptime_moved 0
saved_uptime=$(uptime_max)
r=$(ctl savestate); [ "$r" = "OK " ] || fail "savestate: '$r'"
wait "$pid"; rc=$?; pid=
[ $rc -eq 0 ] || fail "savestate: vireo-vm exited $rc"
sav="$mdir/Snapshots/$uuid.sav"
if [ "$(file_state)" = saved ] && grep -q "stateFile=\"Snapshots/$uuid.sav\"\|Snapshots/$uuid.sav" "$settings" && [ -s "$sav" ]; then
    ok "savestate: recorded saved with $(du -k "$sav" | cut -f1) KiB of state"
else
    fail "savestate: state '$(file_state)', file $(ls -la "$sav" 2>&1)"
fi
# A damaged state file is refused with exit 2 and kept, and the machine stays saved.
cp "$sav" "$tmp/good.sav"
head -c 4096 "$tmp/good.sav" > "$sav"
timeout 60 "$VIREO_BIN/vireo-vm" --startvm demo --headless --exec "$EXEC" >"$tmp/bad.out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "cannot restore the saved state" "$tmp/bad.out" && [ -s "$sav" ] && [ "$(file_state)" = saved ]; then
    ok "a damaged saved state: exit 2, file kept, still saved: $(grep -m1 'cannot restore' "$tmp/bad.out" | cut -c1-150)"
else
    fail "damaged saved state: exit $rc, state $(file_state), $(cat "$tmp/bad.out" | tail -n 3)"
fi
cp "$tmp/good.sav" "$sav"
: > "$com1"
start_vm
wait_for 60 state_is running || { fail "the saved machine did not start"; show_failure; }
grep -q "restoring the saved state" "$log" || fail "VM.log does not say it restored"
wait_for 30 grep -aq PERSIST-UPTIME "$com1"
first=$(grep -ao 'PERSIST-UPTIME [0-9.]*' "$com1" | head -n 1 | cut -d' ' -f2)
# A guest that went on prints uptimes from where it was saved; one that booted again would start low, after a boot line.
if [ -n "$first" ] && awk -v a="$first" -v b="$saved_uptime" 'BEGIN { exit !(a >= b) }' && ! grep -aq VIREO-BOOT-OK "$com1"; then
    ok "restored: the guest went on from uptime $saved_uptime ($first next) without booting again"
else
    fail "restore: saved at uptime $saved_uptime, first after restore '$first', boot lines $(grep -ac VIREO-BOOT-OK "$com1")"
    show_failure
fi
[ ! -e "$sav" ] && [ "$(file_state)" = running ] && ! grep -q "Snapshots/$uuid.sav" "$settings" &&
    ok "the restored state file is gone and the record cleared" || fail "after restore: $(ls "$mdir/Snapshots" 2>&1), state $(file_state)"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ $rc -eq 0 ] && [ "$(file_state)" = poweroff ] && ok "SIGTERM powers off cleanly" || fail "SIGTERM: exit $rc, state $(file_state)"

# ---- refusals ---------------------------------------------------------------------------------------------------
timeout 30 "$VIREO_BIN/vireo-vm" --startvm no-such-machine >"$tmp/err.out" 2>&1
rc=$?; [ $rc -eq 1 ] && grep -q "no-such-machine" "$tmp/err.out" || fail "unknown machine: exit $rc, $(cat "$tmp/err.out")"
mv "$iso" "$iso.away"
timeout 30 "$VIREO_BIN/vireo-vm" --startvm demo >"$tmp/err.out" 2>&1
rc=$?
mv "$iso.away" "$iso"
[ $rc -eq 1 ] && grep -q "'IDE Controller' port 1 device 0.*does not exist" "$tmp/err.out" &&
    ok "a missing medium file is named: $(grep -m1 'does not exist' "$tmp/err.out")" || fail "missing ISO: exit $rc, $(cat "$tmp/err.out")"
# Settings the board has no place for are refused naming the attachment; nothing is changed.
cp "$settings" "$tmp/settings.good"
sed -i 's/<Controller name="SATA" bus="sata" ports="2"/<Controller name="SATA" bus="sata" ports="10"/; s/controller="SATA" port="1"/controller="SATA" port="8"/' "$settings"
timeout 30 "$VIREO_BIN/vireo-vm" --startvm demo >"$tmp/err.out" 2>&1
rc=$?; [ $rc -eq 1 ] && grep -q "'SATA' port 8 device 0: Vireo's AHCI controller has ports 0-5" "$tmp/err.out" &&
    ok "a SATA port the board lacks is refused" || fail "SATA port 8: exit $rc, $(cat "$tmp/err.out")"
cp "$tmp/settings.good" "$settings"
sed -i 's/<Controller name="SATA" bus="sata" ports="2" bootable="true"\/>/<Controller name="SATA" bus="sata" ports="2" bootable="true"\/><Controller name="SATA 2" bus="sata" ports="1" bootable="false"\/>/' "$settings"
timeout 30 "$VIREO_BIN/vireo-vm" --startvm demo >"$tmp/err.out" 2>&1
rc=$?; [ $rc -eq 1 ] && grep -q "controllers 'SATA' and 'SATA 2' are both sata controllers" "$tmp/err.out" &&
    ok "two controllers on one bus are refused" || fail "two SATA controllers: exit $rc, $(cat "$tmp/err.out")"
cp "$tmp/settings.good" "$settings"
[ "$(file_state)" = poweroff ] || fail "a refused start changed the state to '$(file_state)'"

[ $fails -eq 0 ] || { echo "$fails failures"; exit 1; }
echo "all passed"
