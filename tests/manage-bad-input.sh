#!/usr/bin/env bash
# manage-bad-input.sh - vireo-manage refuses bad command lines (exit 1) and impossible operations (exit 2) with a specific message, and changes no byte of the settings or machine folders.
set -u
mg="$VIREO_BIN/vireo-manage"
tmp=$(mktemp -d)
lockpid=
trap '[ -n "$lockpid" ] && kill "$lockpid" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
B="$tmp/vms"
mkdir -p "$B" "$tmp/files"

fail() {
    echo "FAIL $*"
    fails=$((fails + 1))
}

# setup ARGS...: a command that must work (building the state the bad commands then run against).
setup() {
    if ! timeout 60 "$mg" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null; then
        fail "setup: vireo-manage $*"
        sed 's/^/    /' "$tmp/err"
    fi
}

# state: names, sizes and contents of everything in the config dir and the machine folders.
state() {
    (cd "$tmp" && find home vms files -printf '%p %s %m\n' | sort && find home vms files -type f -exec sha256sum {} + | sort)
}

# expect WANT_RC NAME REGEX ARGS...: vireo-manage exits WANT_RC, stderr matches REGEX and starts with
# "vireo-manage: error:", nothing was printed to stdout, and no file changed.
expect() {
    local want=$1 name=$2 regex=$3
    shift 3
    state >"$tmp/before"
    timeout 60 "$mg" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    state >"$tmp/after"
    local bad=
    [ $rc -eq "$want" ] || bad="exit $rc (want $want)"
    grep -qE -- "$regex" "$tmp/err" || bad="$bad; stderr does not match /$regex/"
    grep -q "^vireo-manage: error: " "$tmp/err" || bad="$bad; no 'vireo-manage: error:' line"
    [ "$rc" -ge 128 ] && bad="$bad; crashed"
    [ "$want" -eq 1 ] && ! grep -q "see 'vireo-manage" "$tmp/err" && bad="$bad; no pointer to --help"
    if ! cmp -s "$tmp/before" "$tmp/after"; then
        bad="$bad; files changed:"
        diff "$tmp/before" "$tmp/after" | sed 's/^/      /' >"$tmp/diff"
    fi
    if [ -n "$bad" ]; then
        fail "$name: $bad: vireo-manage $*"
        [ -s "$tmp/diff" ] && cat "$tmp/diff"
        sed 's/^/    /' "$tmp/err"
    else
        echo "ok   $name: $(head -n 1 "$tmp/err")"
    fi
    rm -f "$tmp/diff"
}

# ---- the state the bad commands meet ----------------------------------------------------------------
setup createvm --name vm1 --basefolder "$B" --register
setup createvm --name vm2 --basefolder "$B" --register
setup modifyvm vm1 --nic1 nat --natpf1 "ssh,tcp,,2222,,22"
setup storagectl vm1 --name SATA --add sata --portcount 2
setup createmedium disk --filename "$tmp/files/d1.vdi" --size 8
setup storageattach vm1 --storagectl SATA --port 0 --type hdd --medium "$tmp/files/d1.vdi"
setup createmedium disk --filename "$tmp/files/d2.vdi" --size 8
head -c 1048576 /dev/zero >"$tmp/files/cd.iso"
"$VIREO_BIN/vireo-img" create --format vdi "$tmp/files/loose.vdi" 1M >/dev/null 2>&1 || fail "setup: loose.vdi"
printf '<?xml version="1.0"?>\n<VireoMachine schemaVersion="2" uuid="nonsense"' >"$tmp/files/broken.vireo"
printf '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n<VireoMachine>&b;</VireoMachine>\n' \
    >"$tmp/files/entities.vireo"

# ---- the command line ---------------------------------------------------------------------------------
expect 1 no-command "no command given" 
expect 1 unknown-command "unknown command 'frobnicate'" frobnicate
expect 1 help-unknown "'nosuch' is not a command" help nosuch
expect 1 unknown-option "unknown option '--bogus'" createvm --name x --bogus
expect 1 single-dash-option "unknown option '-memory'" modifyvm vm1 -memory 64
expect 1 missing-value "'--memory' needs a value" modifyvm vm1 --memory
expect 1 flag-with-value "'--register' takes no value" createvm --name x --register=yes
expect 1 list-what "cannot list 'everything'" list everything
expect 1 list-nothing "missing what to list" list
expect 1 showvminfo-extra "unexpected argument 'more'" showvminfo vm1 more

# ---- createvm -----------------------------------------------------------------------------------------
expect 1 createvm-no-name "--name is required" createvm --basefolder "$B"
expect 1 createvm-slash "'a/b' cannot be a machine name: it contains '/'" createvm --name a/b --basefolder "$B"
expect 1 createvm-dotdot "'\.\.' cannot be a machine name" createvm --name .. --basefolder "$B"
expect 1 createvm-empty "'' cannot be a machine name" createvm --name "" --basefolder "$B"
expect 1 createvm-control "cannot be a machine name" createvm --name $'a\tb' --basefolder "$B"
expect 1 createvm-uuid "--uuid 'nonsense' is not a UUID" createvm --name x --uuid nonsense --basefolder "$B"
expect 1 createvm-ostype "'NoSuchOS' is not a known OS type" createvm --name x --ostype NoSuchOS --basefolder "$B"
expect 2 createvm-duplicate "a VM named 'vm1' already exists" createvm --name vm1 --basefolder "$B" --register
uuid1=$(grep -o '^UUID="[^"]*"' <("$mg" showvminfo vm1 --machinereadable) | cut -d'"' -f2)
expect 2 createvm-duplicate-uuid "a VM with UUID '$uuid1' is already registered" \
    createvm --name x --uuid "$uuid1" --basefolder "$B" --register

# ---- modifyvm -----------------------------------------------------------------------------------------
expect 1 memory-lots "--memory 'lots' is not a size" modifyvm vm1 --memory lots
expect 1 memory-suffix "--memory '10Q' is not a size" modifyvm vm1 --memory 10Q
expect 1 memory-zero "--memory '0' must be more than zero" modifyvm vm1 --memory 0
expect 1 memory-small "--memory '2' is out of range" modifyvm vm1 --memory 2
expect 1 memory-huge "--memory '99999999999999999999' is too large" modifyvm vm1 --memory 99999999999999999999
expect 1 memory-partial "--memory '1536K' is not a whole number of MiB" modifyvm vm1 --memory 1536K
expect 1 memory-twice "'--memory' is given twice" modifyvm vm1 --memory 256 --memory 512
expect 1 cpus-zero "--cpus '0' must be a number from 1 to 32" modifyvm vm1 --cpus 0
expect 1 cpus-many "--cpus '33' must be a number from 1 to 32" modifyvm vm1 --cpus 33
expect 1 firmware "--firmware 'uefi' must be bios or efi" modifyvm vm1 --firmware uefi
expect 1 boot5 "'--boot5': the number must be from 1 to 4" modifyvm vm1 --boot5 disk
expect 1 boot-device "--boot1 'usb' must be none, floppy, dvd, disk or net" modifyvm vm1 --boot1 usb
expect 1 ioapic "--ioapic 'maybe' must be on or off" modifyvm vm1 --ioapic maybe
expect 1 vram "--vram '512' is out of range" modifyvm vm1 --vram 512
expect 1 nic9 "'--nic9': the number must be from 1 to 8" modifyvm vm1 --nic9 nat
expect 1 nic-mode "--nic1 'wifi' must be none, null, nat" modifyvm vm1 --nic1 wifi
expect 1 mac-short "--macaddress1 '0800271234' must be 'auto' or 12 hex digits" modifyvm vm1 --macaddress1 0800271234
expect 1 mac-multicast "is a multicast address" modifyvm vm1 --macaddress1 010027123456
expect 1 natpf-port "ports must be numbers from 1 to 65535" modifyvm vm1 --natpf1 "web,tcp,,99999,,80"
expect 1 natpf-proto "the protocol 'sctp' must be tcp or udp" modifyvm vm1 --natpf1 "web,sctp,,8080,,80"
expect 1 natpf-fields "must be name,tcp\|udp" modifyvm vm1 --natpf1 "web,tcp,8080,80"
expect 1 natpf-ip "'300.1.1.1' is not an IP address" modifyvm vm1 --natpf1 "web,tcp,300.1.1.1,8080,,80"
expect 2 natpf-duplicate "already has a port forward named 'ssh'" modifyvm vm1 --natpf1 "ssh,tcp,,2223,,22"
expect 2 natpf-same-port "host port 2222/tcp .* is forwarded by rule 'ssh' already" modifyvm vm1 --natpf1 "ssh2,tcp,,2222,,23"
expect 2 natpf-delete-unknown "has no port forward named 'nosuch'" modifyvm vm1 --natpf1 delete nosuch
expect 1 uartmode "--uartmode1 'pipe' must be disconnected" modifyvm vm1 --uartmode1 pipe
expect 1 uartmode-port "tcpserver 'http' must be a port" modifyvm vm1 --uartmode1 tcpserver http
expect 1 uartmode-missing "needs one more value" modifyvm vm1 --uartmode1 file
expect 1 description-control "contains a control character" modifyvm vm1 --description $'bell\x07'
expect 1 ostype-unknown "'NoSuchOS' is not a known OS type" modifyvm vm1 --ostype NoSuchOS
expect 1 nothing-to-change "nothing to change" modifyvm vm1
expect 1 rename-slash "'x/y' cannot be a machine name" modifyvm vm1 --name x/y
expect 2 rename-duplicate "a VM named 'vm2' already exists" modifyvm vm1 --name vm2
expect 2 modify-unknown-vm "VM 'ghost' is not registered" modifyvm ghost --memory 256
# A bad option after good ones: nothing of the good ones is written either.
expect 1 modify-all-or-nothing "--cpus 'many'" modifyvm vm1 --memory 512 --cpus many

# ---- VMs ------------------------------------------------------------------------------------------------
expect 2 unregister-unknown "VM 'ghost' is not registered" unregistervm ghost --delete
expect 2 showvminfo-unknown "VM 'ghost' is not registered" showvminfo ghost
expect 2 register-missing "settings file '$tmp/files/none.vireo' does not exist" registervm "$tmp/files/none.vireo"
expect 2 register-broken "broken.vireo" registervm "$tmp/files/broken.vireo"
expect 2 register-entities "entities.vireo" registervm "$tmp/files/entities.vireo"
expect 2 register-twice "vm1" registervm "$B/vm1/vm1.vireo"
expect 1 extradata-empty-key "the key must not be empty" setextradata vm1 "" value
expect 1 sharedfolder-action "'share' is not a sharedfolder action" sharedfolder share vm1 --name s --hostpath /tmp
expect 1 sharedfolder-no-path "--hostpath is required for add" sharedfolder add vm1 --name s
expect 2 sharedfolder-remove-unknown "VM 'vm1' has no shared folder named 'nosuch'" sharedfolder remove vm1 --name nosuch

# ---- storage ------------------------------------------------------------------------------------------
expect 1 storagectl-bus "--add 'scsi' must be ide, sata or virtio" storagectl vm1 --name X --add scsi
expect 1 storagectl-conflict "--add and --remove do not go together" storagectl vm1 --name X --add sata --remove
expect 1 storagectl-ports "--portcount '31' must be a number from 1 to 30" storagectl vm1 --name X --add sata --portcount 31
expect 2 storagectl-duplicate "VM 'vm1' already has a storage controller named 'SATA'" storagectl vm1 --name SATA --add sata
expect 2 storagectl-remove-unknown "VM 'vm1' has no storage controller named 'NoCtl'" storagectl vm1 --name NoCtl --remove
expect 1 attach-type "--type 'tape' must be hdd or dvddrive" \
    storageattach vm1 --storagectl SATA --port 1 --type tape --medium "$tmp/files/d2.vdi"
expect 1 attach-empty-hdd "emptydrive is for --type dvddrive" \
    storageattach vm1 --storagectl SATA --port 1 --type hdd --medium emptydrive
expect 2 attach-missing-file "medium '$tmp/files/missing.vdi' does not exist" \
    storageattach vm1 --storagectl SATA --port 1 --type hdd --medium "$tmp/files/missing.vdi"
expect 2 attach-no-controller "VM 'vm1' has no storage controller named 'NoCtl'" \
    storageattach vm1 --storagectl NoCtl --port 0 --type hdd --medium "$tmp/files/loose.vdi"
expect 2 attach-bad-port "there is no port 5, device 0" \
    storageattach vm1 --storagectl SATA --port 5 --type hdd --medium "$tmp/files/loose.vdi"
expect 2 attach-other-vm "medium '$tmp/files/d1.vdi' is attached to 'vm1'" \
    storageattach vm2 --storagectl IDE --port 0 --device 0 --type hdd --medium "$tmp/files/d1.vdi"
expect 2 attach-as-dvd "is registered as a hard disk, not as a DVD image" \
    storageattach vm2 --storagectl IDE --port 1 --device 0 --type dvddrive --medium "$tmp/files/d2.vdi"
expect 2 attach-unknown-uuid "medium \{12345678-1234-1234-1234-123456789abc\} is not registered" \
    storageattach vm2 --storagectl IDE --port 0 --type hdd --medium 12345678-1234-1234-1234-123456789abc
expect 2 detach-empty "nothing is attached to port 1, device 1" \
    storageattach vm2 --storagectl IDE --port 1 --device 1 --medium none

# ---- media -------------------------------------------------------------------------------------------------
expect 1 size-suffix "--size '10Q' is not a size" createmedium disk --filename "$tmp/files/new.vdi" --size 10Q
expect 1 size-zero "--size '0' must be more than zero" createmedium disk --filename "$tmp/files/new.vdi" --size 0
expect 1 size-huge "--size '99999999999' is out of range" createmedium --filename "$tmp/files/new.vdi" --size 99999999999
expect 1 size-both "--size and --sizebyte do not go together" \
    createmedium --filename "$tmp/files/new.vdi" --size 1 --sizebyte 1048576
expect 1 size-none "--size \(MiB\) or --sizebyte is required" createmedium --filename "$tmp/files/new.vdi"
expect 1 medium-format "--format 'vhd' must be VDI, qcow2 or raw" \
    createmedium --filename "$tmp/files/new.vdi" --size 1 --format vhd
expect 1 medium-variant "--variant 'Split2G' must be Standard or Fixed" \
    createmedium --filename "$tmp/files/new.vdi" --size 1 --variant Split2G
expect 2 medium-exists "medium '$tmp/files/d2.vdi' already exists" createmedium --filename "$tmp/files/d2.vdi" --size 1
expect 2 clone-exists "medium '$tmp/files/d2.vdi' already exists" clonemedium "$tmp/files/d1.vdi" "$tmp/files/d2.vdi"
expect 2 clone-missing "medium '$tmp/files/none.vdi' does not exist" clonemedium "$tmp/files/none.vdi" "$tmp/files/x.vdi"
expect 1 resize-garbage "--resize 'big' is not a size" modifymedium "$tmp/files/d2.vdi" --resize big
expect 1 resize-nothing "nothing to change" modifymedium "$tmp/files/d2.vdi"
expect 2 resize-shrink "shrinking it to .* is refused" modifymedium "$tmp/files/d2.vdi" --resize 4
expect 2 check-missing "medium '$tmp/files/none.vdi' does not exist" checkmedium "$tmp/files/none.vdi"
expect 2 close-attached "medium '$tmp/files/d1.vdi' is attached to 'vm1'" closemedium disk "$tmp/files/d1.vdi" --delete
expect 2 close-unregistered "medium '$tmp/files/loose.vdi' is not registered" closemedium "$tmp/files/loose.vdi"
expect 2 close-as-dvd "is a disk, not a DVD image" closemedium dvd "$tmp/files/d2.vdi"
expect 1 close-floppy "there are no floppy images" closemedium floppy "$tmp/files/d2.vdi"

# ---- snapshots, clones, state ---------------------------------------------------------------------------
expect 1 snapshot-action "'frob' is not a snapshot action" snapshot vm1 frob
expect 1 snapshot-take-noname "snapshot take needs a snapshot name" snapshot vm1 take
expect 1 snapshot-empty-name "the snapshot name must not be empty" snapshot vm1 take ""
expect 2 snapshot-delete-unknown "VM 'vm1' has no snapshot 'nosuch'" snapshot vm1 delete nosuch
expect 2 snapshot-restorecurrent-none "VM 'vm1' has no snapshots" snapshot vm1 restorecurrent
expect 1 clone-options "--options 'fast' is not known" clonevm vm1 --options fast
expect 1 clone-mode "--mode 'some' must be machine or all" clonevm vm1 --mode some
expect 2 clone-duplicate "a VM named 'vm2' already exists" clonevm vm1 --name vm2 --basefolder "$B"
expect 2 discard-not-saved "VM 'vm1' is not in the saved state" discardstate vm1
expect 2 controlvm-not-running "VM 'vm1' is not running" controlvm vm1 pause
expect 1 controlvm-action "'dance' is not a controlvm action" controlvm vm1 dance
expect 1 controlvm-scancode "scancode 'zz' must be a byte in hex" controlvm vm1 keyboardputscancode 1c zz
expect 1 startvm-type "--type 'sdl' must be gui or headless" startvm vm1 --type sdl

# A snapshot's frozen image: never written, resized or closed while the snapshot needs it.
setup createmedium disk --filename "$tmp/files/d3.vdi" --size 8
setup storageattach vm2 --storagectl IDE --port 0 --device 0 --type hdd --medium "$tmp/files/d3.vdi"
setup snapshot vm2 take frozen
expect 2 attach-frozen "medium '$tmp/files/d3.vdi' is the base of differencing images" \
    storageattach vm1 --storagectl SATA --port 1 --type hdd --medium "$tmp/files/d3.vdi"
expect 2 resize-frozen "medium '$tmp/files/d3.vdi' is the base of differencing images" \
    modifymedium "$tmp/files/d3.vdi" --resize 64
expect 2 close-frozen "medium '$tmp/files/d3.vdi' is attached to 'vm2'" closemedium "$tmp/files/d3.vdi" --delete
expect 1 snapshot-description "--description goes with take" snapshot vm2 delete frozen --description x
expect 2 startvm-unknown "VM 'ghost' is not registered" startvm ghost
expect 1 startvm-exec "--exec 'fast' must be auto, kvm, soft or interp" startvm vm1 --exec fast

# ---- a registered machine whose settings file was damaged behind our back ------------------------------------
# Every command that reads it names the file, line and column; none of them rewrites or "repairs" it.
setup createvm --name vm3 --basefolder "$B" --register
f3="$B/vm3/vm3.vireo"
head -c "$(($(stat -c %s "$f3") / 2))" "$f3" >"$tmp/half" && cat "$tmp/half" >"$f3"
expect 2 damaged-modify "vm3\.vireo:[0-9]+:[0-9]+: " modifyvm vm3 --memory 64
expect 2 damaged-showvminfo "vm3\.vireo:[0-9]+:[0-9]+: " showvminfo vm3
expect 2 damaged-snapshot "vm3\.vireo:[0-9]+:[0-9]+: " snapshot vm3 take s1
expect 2 damaged-startvm "vm3\.vireo:[0-9]+:[0-9]+: " startvm vm3
sed 's/<VireoMachine /<!DOCTYPE x [<!ENTITY a "aaaaaaaa">]>\n<VireoMachine /' "$tmp/half" >"$f3"
expect 2 hostile-modify "vm3\.vireo:[0-9]+:[0-9]+: .*(DOCTYPE|entit)" modifyvm vm3 --memory 64
expect 2 hostile-setextradata "vm3\.vireo:[0-9]+:[0-9]+: " setextradata vm3 key value

# ---- a running VM (its run lock held by another process) ----------------------------------------------------
if command -v flock >/dev/null 2>&1; then
    flock "$B/vm1/.vireo-run.lock" sleep 60 &
    lockpid=$!
    for _ in $(seq 50); do
        flock -n "$B/vm1/.vireo-run.lock" true 2>/dev/null || break
        sleep 0.1
    done
    expect 2 running-modify "VM 'vm1' is running; power it off" modifyvm vm1 --memory 256
    expect 2 running-startvm "VM 'vm1' is already running" startvm vm1
    expect 2 running-unregister "VM 'vm1' is running; power it off first" unregistervm vm1 --delete
    expect 2 running-storagectl "VM 'vm1' is running" storagectl vm1 --name X --add sata
    expect 2 running-attach-disk "only the medium in an existing DVD drive can be changed while it runs" \
        storageattach vm1 --storagectl SATA --port 1 --type hdd --medium "$tmp/files/d2.vdi"
    expect 2 running-sharedfolder "VM 'vm1' is running; power it off" sharedfolder add vm1 --name s --hostpath /tmp
    expect 2 running-clone "VM 'vm1' is running; power it off before cloning it" clonevm vm1 --basefolder "$B"
    expect 2 running-discard "VM 'vm1' is running" discardstate vm1
    expect 2 running-no-socket "does not answer on its control socket" controlvm vm1 pause
    kill "$lockpid" 2>/dev/null
    wait "$lockpid" 2>/dev/null
    lockpid=
else
    fail "running-VM cases: flock (util-linux) is missing"
fi

if [ $fails -ne 0 ]; then
    echo "$fails case(s) failed"
    exit 1
fi
echo "all cases passed"
