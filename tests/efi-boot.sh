#!/usr/bin/env bash
# efi-boot.sh - UEFI firmware (OVMF) on the software CPU: bad firmware files are refused with clear messages and
# change nothing; the BIOS+UEFI ISO boots to VIREO-BOOT-OK under OVMF from an AHCI CD, and from the IDE CD
# (--cdrom) within 90 s, where an empty IDE channel that reads BSY set once cost OVMF 70 s; Linux boots directly
# (--kernel) through OVMF's fw_cfg kernel loader; a machine made with vireo-manage and switched to EFI gets its
# own variable store, boots a GPT disk (GRUB x86_64-efi on the EFI system partition), writes a UEFI variable,
# is killed with SIGKILL right after, and finds the variable again at its next start; unregistervm --delete
# removes the store.  Prints how long OVMF takes to reach the boot loader and the guest's VIREO-BOOT-OK.
set -u
source "$VIREO_SRC/tests/lib/efi.bash"
efi_need python3

tmp=$(mktemp -d /tmp/vireo-efi.XXXXXX)
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$VIREO_USER_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
vmpid=
cleanup() {
    [ -n "$vmpid" ] && kill -KILL "$vmpid" 2>/dev/null
    local p
    for p in $(pgrep -f "vireo-vm --startvm"); do
        grep -qz "^VIREO_USER_HOME=$VIREO_USER_HOME\$" "/proc/$p/environ" 2>/dev/null && kill -KILL "$p"
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }
show() {
    echo "---- COM1 (tail)"; tail -c 2000 "$1" | tr -c '[:print:]\n' '.'; echo
    [ -f "$2" ] && { echo "---- log (tail)"; tail -n 20 "$2"; }
}

initrd=$(efi_initrd) || exit 1
iso="$GUESTS_OUT/efi-test.iso"
if efi_stale "$iso"; then
    "$GUESTS_SRC/make-iso-efi.sh" "$iso" none >"$iso.log" 2>&1 || { echo "FAIL: make-iso-efi.sh:"; tail -n 20 "$iso.log"; exit 1; }
fi
disk="$GUESTS_OUT/efi-disk.img"
efi_disk "$disk" "$initrd" "vireo.efivar=1"

# ---- 1. Bad firmware files: clear errors, exit 1, the store untouched ---------------------------------------
out=$("$VIREO_BIN/vireo-vm" --exec soft --firmware efi --efi-code "$tmp/none.fd" --efi-vars "$tmp/none-vars.fd" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "UEFI firmware '$tmp/none.fd' not found" <<<"$out"; then ok "missing firmware code: exit 1, named"
else fail "missing firmware code: exit $rc: $out"; fi
head -c 102400 /dev/zero > "$tmp/small-vars.fd"
sum=$(md5sum < "$tmp/small-vars.fd")
out=$("$VIREO_BIN/vireo-vm" --exec soft --firmware efi --efi-vars "$tmp/small-vars.fd" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q "has 102400 bytes.*needs one of $(stat -c %s "$EFI_VARS") bytes" <<<"$out" &&
    [ "$(md5sum < "$tmp/small-vars.fd")" = "$sum" ]; then ok "variable store of the wrong size: refused, unchanged"
else fail "variable store of the wrong size: exit $rc: $out"; fi
out=$("$VIREO_BIN/vireo-vm" --efi-vars "$tmp/small-vars.fd" 2>&1)
[ $? -eq 1 ] && grep -q -- "--efi-vars needs --firmware efi" <<<"$out" && ok "--efi-vars without --firmware efi: usage error" ||
    fail "--efi-vars without --firmware efi: $out"
out=$("$VIREO_BIN/vireo-vm" --firmware uefi 2>&1)
[ $? -eq 1 ] && grep -q -- "--firmware 'uefi' must be bios or efi" <<<"$out" && ok "--firmware uefi: usage error" ||
    fail "--firmware uefi: $out"

# boot NAME LIMIT MARKER vireo-vm-options...: runs the VM until MARKER shows on COM1; sets T_LOADER (seconds until
# OVMF started the boot loader) and T_MARKER.
boot() {
    local name=$1 limit=$2 marker=$3; shift 3
    local com1="$tmp/$name.com1" start=$SECONDS
    : > "$com1"
    T_LOADER=-1 T_MARKER=-1
    "$VIREO_BIN/vireo-vm" --exec "$STORAGE_EXEC" --memory 512M --firmware efi --serial1 "file:$com1" \
        --log "$tmp/$name.log" --timeout $((limit + 30)) "$@" >"$tmp/$name.out" 2>&1 &
    vmpid=$!
    # COM1 is read once more after the VM has gone: the guest powers off a moment after the marker.
    while [ $((SECONDS - start)) -lt "$limit" ]; do
        [ "$T_LOADER" -lt 0 ] && grep -aqE "BdsDxe: starting|EFI stub" "$com1" && T_LOADER=$((SECONDS - start))
        grep -aq -- "$marker" "$com1" && { T_MARKER=$((SECONDS - start)); break; }
        kill -0 "$vmpid" 2>/dev/null || break
        sleep 1
    done
    kill -TERM "$vmpid" 2>/dev/null
    wait "$vmpid" 2>/dev/null
    vmpid=
    [ "$T_MARKER" -ge 0 ]
}

# ---- 2. The BIOS+UEFI ISO (GRUB from grub-mkrescue) on an AHCI CD, with a temporary variable store ----------
if boot iso 240 VIREO-BOOT-OK --drive "file=$iso,if=ahci,media=cdrom"; then
    ok "UEFI ISO: OVMF started the boot loader after ${T_LOADER} s, VIREO-BOOT-OK after ${T_MARKER} s"
else
    fail "UEFI ISO did not boot to VIREO-BOOT-OK"; show "$tmp/iso.com1" "$tmp/iso.log"
fi
tempvars=$(sed -n "s/.*temporary copy of .* (\(.*\)), deleted at exit.*/\1/p" "$tmp/iso.log" | head -n1)
if [ -n "$tempvars" ] && [ ! -e "$tempvars" ]; then ok "the temporary variable store ($tempvars) is gone after exit"
else fail "temporary variable store '$tempvars' not named in the log or left behind"; fi

# ---- 2b. The same ISO on the PIIX3 IDE CD drive (--cdrom: secondary master, the primary channel empty) --------
# OVMF's IDE driver polls each device of each channel for BSY to clear (35 s per device); with the empty channel
# reading BSY clear it boots as fast as from AHCI (about 25-35 s on a loaded machine).
if boot ide-cd 90 VIREO-BOOT-OK --cpus 2 --cdrom "$iso" --boot d; then
    ok "UEFI ISO from the IDE CD: OVMF started the boot loader after ${T_LOADER} s, VIREO-BOOT-OK after ${T_MARKER} s"
else
    fail "UEFI ISO from the IDE CD did not reach VIREO-BOOT-OK within 90 s"; show "$tmp/ide-cd.com1" "$tmp/ide-cd.log"
fi

# ---- 3. Direct kernel boot through OVMF (fw_cfg kernel, initrd and command line; the kernel's EFI stub) ------
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
if boot kernel 240 VIREO-DONE --kernel "$kernel" --initrd "$initrd" --append "console=ttyS0,115200 panic=-1" &&
    grep -aq VIREO-EFI-BOOT "$tmp/kernel.com1"; then
    ok "--kernel under OVMF: booted through UEFI (VIREO-EFI-BOOT), VIREO-DONE after ${T_MARKER} s"
else
    fail "--kernel under OVMF did not boot through UEFI"; show "$tmp/kernel.com1" "$tmp/kernel.log"
fi

# ---- 4. A machine with EFI firmware: its variable store, a GPT disk, a variable surviving SIGKILL -----------
manage() {
    "$VIREO_BIN/vireo-manage" "$@" >"$tmp/manage.out" 2>"$tmp/manage.err" ||
        { fail "vireo-manage $* exited $?: $(cat "$tmp/manage.err")" >&2; return 1; }
    cat "$tmp/manage.out"
}
info() { "$VIREO_BIN/vireo-manage" showvminfo efi --machinereadable | sed -n "s/^$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p"; }
vm_pid() {
    local p
    for p in $(pgrep -f "vireo-vm --startvm"); do
        grep -qz "^VIREO_USER_HOME=$VIREO_USER_HOME\$" "/proc/$p/environ" 2>/dev/null && echo "$p"
    done
}
wait_com1() {
    local pattern=$1 limit=$2 start=$SECONDS line
    while [ $((SECONDS - start)) -lt "$limit" ]; do
        line=$(tr -d '\r' < "$tmp/vm.com1" 2>/dev/null | grep -aE -m1 -- "$pattern")
        [ -n "$line" ] && { echo "$line"; return 0; }
        sleep 1
    done
    return 1
}
cp "$disk" "$tmp/efi-disk.img"
manage createvm --name efi --ostype Linux_64 --basefolder "$tmp/vms" --register >/dev/null
manage storageattach efi --storagectl SATA --port 0 --device 0 --type hdd --medium "$tmp/efi-disk.img" >/dev/null
manage modifyvm efi --memory 512 --firmware efi --uart1 on --uartmode1 file "$tmp/vm.com1" >/dev/null
nvram="$tmp/vms/efi/efi.nvram"
if [ -f "$nvram" ] && cmp -s "$nvram" "$EFI_VARS" && [ "$(info NVRAMFile)" = "$nvram" ]; then
    ok "modifyvm --firmware efi made the machine's variable store from the template; showvminfo names it"
else
    fail "variable store '$nvram' missing, not the template, or not shown ($(info NVRAMFile))"
fi
manage startvm efi --type headless >/dev/null
new=$(wait_com1 "EFIVAR-(NEW|FOUND|NO-EFIVARFS|WRITE-FAILED)" 240)
token=$(sed -n 's/^EFIVAR-NEW \([0-9a-f]\{16\}\)$/\1/p' <<<"$new")
pid=$(vm_pid)
# "A moment later": the guest's write returned before it printed the line, so the store must have it now.
[ -n "$pid" ] && kill -KILL $pid
if [ -n "$token" ]; then ok "first start: the guest wrote UEFI variable $EFI_TEST_VAR = $token; VM killed with SIGKILL"
else fail "first start: no EFIVAR-NEW line (got '$new')"; show "$tmp/vm.com1" "$tmp/vms/efi/Logs/VM.log"; fi
if cmp -s "$nvram" "$EFI_VARS"; then fail "the variable store is still the template after the guest wrote a variable"; fi
# The killed process is gone once its run lock is free: the machine then reads as aborted.
start=$SECONDS
while { [ -n "$(vm_pid)" ] || [ "$(info VMState)" != aborted ]; } && [ $((SECONDS - start)) -lt 20 ]; do sleep 1; done
[ "$(info VMState)" = aborted ] || fail "the killed machine reads as '$(info VMState)', not aborted"
: > "$tmp/vm.com1"
manage startvm efi --type headless >/dev/null
found=$(wait_com1 "EFIVAR-(NEW|FOUND|NO-EFIVARFS|WRITE-FAILED)" 240)
if [ -n "$token" ] && [ "$found" = "EFIVAR-FOUND $token" ]; then ok "second start: EFIVAR-FOUND $token (the variable survived SIGKILL)"
else fail "second start: expected 'EFIVAR-FOUND $token', got '$found'"; show "$tmp/vm.com1" "$tmp/vms/efi/Logs/VM.log"; fi
# The guest powers itself off after VIREO-DONE: the request may find the machine already off.
"$VIREO_BIN/vireo-manage" controlvm efi poweroff >/dev/null 2>&1
start=$SECONDS
while [ "$(info VMState)" != poweroff ] && [ $((SECONDS - start)) -lt 60 ]; do sleep 1; done
[ "$(info VMState)" = poweroff ] || fail "the machine reads as '$(info VMState)' after poweroff, not poweroff"
manage unregistervm efi --delete >/dev/null
if [ ! -e "$nvram" ]; then ok "unregistervm --delete removed the variable store"; else fail "$nvram left behind"; fi

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all UEFI checks passed"
