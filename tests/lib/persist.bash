# persist.bash - for the tests that drive whole machines through vireo-manage: the storage test's "persist"
# guest on a bootable ISO, a private registry and runtime folder in $tmp (removed at exit, with this test's
# own vireo-vm processes), COM1 watching, COM2 typing and machine state polling.  Set vm (the machine's
# name) before using info or wait_state.
: "${VIREO_BIN:?}" "${VIREO_SRC:?}"
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso python3
initrd=$(storage_initrd) || exit 1
iso="$GUESTS_OUT/storage-persist.iso"
storage_cached "$iso" env INITRD="$initrd" EXTRA_APPEND="vireo.storage=persist" "$GUESTS_SRC/make-iso.sh" "$iso" none

# Short paths: COM2 is a Unix socket (108-byte limit).
tmp=$(mktemp -d /tmp/vireo-persist.XXXXXX)
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

source "$VIREO_SRC/tests/lib/machine.bash"
persist_cleanup() {
    local p
    for p in $(our_vms); do kill -KILL "$p"; done
    rm -rf "$tmp"
}
trap persist_cleanup EXIT

wait_state() {
    local want=$1 start=$SECONDS
    while [ $((SECONDS - start)) -lt 120 ]; do
        [ "$(info VMState)" = "$want" ] && return 0
        sleep 1
    done
    fail "machine state is '$(info VMState)', expected '$want'"
}
# Waits until COM1 shows a line matching $1 (grep -E) after line $2, for at most $3 s; prints the line.
wait_com1() {
    local pattern=$1 from=${2:-0} limit=${3:-300} start=$SECONDS line complete
    while [ $((SECONDS - start)) -lt "$limit" ]; do
        # Complete lines only: the guest writes a line a character at a time, and a poll between two
        # of them would see "INPUT-LINE " without the rest.
        complete=$(($(com1_lines) - from))
        line=$(tail -n +"$((from + 1))" "$tmp/com1.txt" 2>/dev/null | head -n "$((complete > 0 ? complete : 0))" | tr -d '\r' |
            grep -aE -m1 -- "$pattern")
        [ -n "$line" ] && { echo "$line"; return 0; }
        sleep 1
    done
    return 1
}
com1_lines() { wc -l < "$tmp/com1.txt" 2>/dev/null || echo 0; }
# Types a command on COM2 (the guest reads /dev/ttyS1 line by line).
com2() {
    python3 - "$tmp/com2" "$1" <<'PY' || fail "cannot send '$1' to COM2"
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
time.sleep(0.5)
s.close()
PY
}
# A registered machine named $vm with the persist ISO in its DVD drive and a 64 MiB VDI disk on SATA, and COM1
# to $tmp/com1.txt, COM2 from the socket $tmp/com2.
persist_create_vm() {
    manage createvm --name "$vm" --ostype Linux_64 --basefolder "$tmp/vms" --register >/dev/null
    manage createmedium disk --filename "$tmp/vms/$vm/disk.vdi" --size 64 --format VDI >/dev/null
    # The Linux_64 preset gives the machine one SATA controller for its disk and DVD drive.
    manage storageattach "$vm" --storagectl SATA --port 0 --device 0 --type hdd --medium "$tmp/vms/$vm/disk.vdi" >/dev/null
    manage storageattach "$vm" --storagectl SATA --port 1 --device 0 --type dvddrive --medium "$iso" >/dev/null
    manage modifyvm "$vm" --memory 256 --cpus 1 --boot1 dvd --boot2 disk --uart1 on --uartmode1 file "$tmp/com1.txt" \
        --uart2 on --uartmode2 server "$tmp/com2" >/dev/null
}
