#!/usr/bin/env bash
# manage-cli.sh - vireo-manage end to end without booting a guest: help, machines, every modifyvm option read back, storage, media, offline snapshots (disk content checked), clones and deletion.
set -u
mg="$VIREO_BIN/vireo-manage"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
B="$tmp/vms"
D="$tmp/disks"
mkdir -p "$B" "$D"
have_qemu_io=0
command -v qemu-io >/dev/null 2>&1 && have_qemu_io=1

fail() {
    echo "FAIL $*"
    fails=$((fails + 1))
}

# run WANT_RC NAME ARGS...: vireo-manage's output in $tmp/out and $tmp/err; FAIL unless it exits WANT_RC.
run() {
    local want=$1 name=$2
    shift 2
    timeout 120 "$mg" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    if [ $rc -ne "$want" ]; then
        fail "$name: exit $rc (want $want): vireo-manage $*"
        sed 's/^/    /' "$tmp/err" | head -n 20
        return 1
    fi
    echo "ok   $name"
    return 0
}

# mr VM: showvminfo --machinereadable into $tmp/mr.
mr() {
    "$mg" showvminfo "$1" --machinereadable >"$tmp/mr" 2>"$tmp/err" || fail "showvminfo $1: $(cat "$tmp/err")"
}

# has NAME LINE...: each LINE is a whole line of $tmp/mr.
has() {
    local name=$1
    shift
    for line in "$@"; do
        grep -qxF -- "$line" "$tmp/mr" || fail "$name: no line '$line' in showvminfo (got: $(grep -F -- "${line%%=*}=" "$tmp/mr" | head -n 3 | tr '\n' ' '))"
    done
}

# value KEY: a value from $tmp/mr, quotes removed.
value() {
    grep -m1 -F -- "$1=" "$tmp/mr" | sed -e "s/^[^=]*=//" -e 's/^"//' -e 's/"$//'
}

# pattern FILE BYTE: the image's first 64 KiB (through its backing chain) are all BYTE (qemu-io reads it).
pattern() {
    local out
    out=$(qemu-io -r -f qcow2 -c "read -P $2 0 64k" "$1" 2>&1)
    if ! grep -q "read 65536/65536 bytes" <<<"$out" || grep -q "Pattern verification failed" <<<"$out"; then
        fail "pattern $2 in $1: $out"
        return 1
    fi
    return 0
}

write_pattern() {
    qemu-io -f qcow2 -c "write -P $2 0 64k" "$1" >/dev/null 2>&1 || fail "qemu-io write $2 to $1"
}

# ---- help ------------------------------------------------------------------------------------------
run 0 help --help && grep -q "Usage: vireo-manage COMMAND" "$tmp/out" || fail "help: usage line"
run 0 help-word help
cmds="list showvminfo createvm registervm unregistervm modifyvm sharedfolder setextradata getextradata storagectl
      storageattach createmedium clonemedium modifymedium checkmedium closemedium startvm controlvm discardstate
      snapshot clonevm"
for c in $cmds; do
    grep -q "^  $c " "$tmp/out" || fail "help: command $c not listed"
done
for c in $cmds; do
    run 0 "help $c" help "$c" && grep -q "^Usage: vireo-manage $c" "$tmp/out" || fail "help $c: usage line"
    run 0 "$c --help" "$c" --help && grep -q "^Usage: vireo-manage $c" "$tmp/out" || fail "$c --help: usage line"
    [ -s "$tmp/err" ] && fail "$c --help wrote to stderr"
done
run 0 alias-createhd createhd --help && grep -q "createmedium" "$tmp/out" || fail "createhd is createmedium"

# ---- machines -----------------------------------------------------------------------------------------
run 0 list-empty list vms && [ ! -s "$tmp/out" ] || fail "list-empty: $(cat "$tmp/out")"
run 0 list-ostypes list ostypes && grep -q "^ID: *Debian_64" "$tmp/out" || fail "list ostypes: Debian_64 missing"
run 0 createvm createvm --name vm1 --ostype Debian_64 --basefolder "$B" --register
grep -q "Virtual machine 'vm1' is created and registered" "$tmp/out" || fail "createvm: message"
[ -f "$B/vm1/vm1.vireo" ] || fail "createvm: $B/vm1/vm1.vireo missing"
uuid1=$(sed -n 's/^UUID: //p' "$tmp/out")
run 0 list-vms list vms && grep -qxF "\"vm1\" {$uuid1}" "$tmp/out" || fail "list vms: '\"vm1\" {$uuid1}' missing"
run 0 list-running list runningvms && [ ! -s "$tmp/out" ] || fail "list runningvms: $(cat "$tmp/out")"
run 0 list-long list vms --long && grep -q "^Name: *vm1$" "$tmp/out" || fail "list --long: Name line"
mr vm1
has createvm-info 'name="vm1"' 'ostype="Debian_64"' "UUID=\"$uuid1\"" "CfgFile=\"$B/vm1/vm1.vireo\"" 'VMState="poweroff"'
grep -qE '^VMStateChangeTime="[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"$' "$tmp/mr" ||
    fail "VMStateChangeTime is not ISO 8601: $(grep VMStateChangeTime "$tmp/mr")"
run 0 showvminfo-human showvminfo "$uuid1" && grep -q "^Name: *vm1$" "$tmp/out" || fail "showvminfo by UUID"
run 0 createvm-uuid createvm --name vm2 --basefolder "$B" --register --uuid 0b0e0e0e-1111-4222-8333-444455556666
mr 0b0e0e0e-1111-4222-8333-444455556666
has createvm-uuid 'name="vm2"' 'UUID="0b0e0e0e-1111-4222-8333-444455556666"'

# ---- modifyvm: every option, read back ----------------------------------------------------------------------
run 0 modifyvm-general modifyvm vm1 --memory 1G --cpus 2 --firmware efi --chipset ich9 --boot1 disk --boot2 dvd \
    --boot3 net --boot4 none --ioapic on --hpet on --rtcuseutc off --description "line one
line two \"quoted\""
mr vm1
has modifyvm-general memory=1024 cpus=2 'firmware="efi"' 'chipset="ich9"' 'boot1="disk"' 'boot2="dvd"' 'boot3="net"' \
    'boot4="none"' 'ioapic="on"' 'hpet="on"' 'rtcuseutc="off"' 'description="line one\nline two \"quoted\""'
run 0 modifyvm-memory-mib modifyvm vm1 --memory 768 && mr vm1 && has modifyvm-memory-mib memory=768
run 0 modifyvm-display modifyvm vm1 --vram 64 --monitorcount 2 --graphicscontroller virtio
mr vm1
has modifyvm-display vram=64 monitorcount=2 'graphicscontroller="virtio"'
run 0 modifyvm-remote modifyvm vm1 --vrde on --vrdeport 3390 --vrdeaddress 127.0.0.2 --vrdeauthtype password \
    --vnc on --vncport 5905 --vncpass s3cret
mr vm1
has modifyvm-remote 'vrde="on"' vrdeport=3390 'vrdeaddress="127.0.0.2"' 'vrdeauthtype="password"' 'vnc="on"' \
    vncport=5905 'vncpassword="set"'
grep -q s3cret "$tmp/mr" && fail "showvminfo shows the VNC password"
run 0 modifyvm-audio modifyvm vm1 --audio pulse --audiocontroller ac97 --audioout on --audioin on
mr vm1
has modifyvm-audio 'audio="pulse"' 'audiocontroller="ac97"' 'audio_out="on"' 'audio_in="on"'
run 0 modifyvm-audio-off modifyvm vm1 --audio none --audioin off && mr vm1 && has modifyvm-audio-off 'audio="none"' 'audio_in="off"'
run 0 modifyvm-usb modifyvm vm1 --usbxhci on && mr vm1 && has modifyvm-usb 'usb="on"' 'usbxhci="on"' 'usbohci="off"'
run 0 modifyvm-usb-ehci modifyvm vm1 --usbehci on && mr vm1 && has modifyvm-usb-ehci 'usbehci="on"' 'usbxhci="off"'
run 0 modifyvm-usb-off modifyvm vm1 --usb off && mr vm1 && has modifyvm-usb-off 'usb="off"' 'usbehci="off"'
run 0 modifyvm-nics modifyvm vm1 --nic1 nat --nictype1 virtio --macaddress1 08:00:27:aa:bb:cc --cableconnected1 off \
    --nic2 bridged --bridgeadapter2 eth0 --nictype2 rtl8139 --nic3 intnet --intnet3 labnet --nic4 hostonly \
    --hostonlyadapter4 vnet0 --nic5 null --macaddress5 auto
mr vm1
has modifyvm-nics 'nic1="nat"' 'nictype1="virtio"' 'macaddress1="080027AABBCC"' 'cableconnected1="off"' \
    'nic2="bridged"' 'bridgeadapter2="eth0"' 'nictype2="rtl8139"' 'nic3="intnet"' 'intnet3="labnet"' \
    'nic4="hostonly"' 'hostonlyadapter4="vnet0"' 'nic5="null"' 'nic6="none"'
grep -qE '^macaddress5="080027[0-9A-F]{6}"$' "$tmp/mr" || fail "macaddress5 auto: $(grep macaddress5 "$tmp/mr")"
run 0 modifyvm-natpf modifyvm vm1 --natpf1 "ssh,tcp,,2222,,22" --natpf1 "dns,udp,127.0.0.1,5353,10.0.2.15,53"
mr vm1
has modifyvm-natpf 'Forwarding1(0)="ssh,tcp,,2222,,22"' 'Forwarding1(1)="dns,udp,127.0.0.1,5353,10.0.2.15,53"'
run 0 modifyvm-natpf-delete modifyvm vm1 --natpf1 delete ssh
mr vm1
has modifyvm-natpf-delete 'Forwarding1(0)="dns,udp,127.0.0.1,5353,10.0.2.15,53"'
grep -q 'ssh,tcp' "$tmp/mr" && fail "natpf delete: rule ssh still there"
run 0 modifyvm-nic-off modifyvm vm1 --nic4 none && mr vm1 && has modifyvm-nic-off 'nic4="none"'
run 0 modifyvm-uarts modifyvm vm1 --uart1 on --uartmode1 file "$tmp/com1.log" --uart2 on --uartmode2 tcpserver 4555 \
    --uart3 on --uartmode3 server "$tmp/com3.sock" --uart4 on
mr vm1
has modifyvm-uarts 'uart1="on"' "uartmode1=\"file,$tmp/com1.log\"" 'uart2="on"' 'uartmode2="tcpserver,4555"' \
    "uartmode3=\"server,$tmp/com3.sock\"" 'uart4="on"' 'uartmode4="disconnected"'
run 0 modifyvm-uart-off modifyvm vm1 --uart4 off --uartmode2 disconnected
mr vm1
has modifyvm-uart-off 'uart4="off"' 'uartmode2="disconnected"'
run 0 modifyvm-ostype modifyvm vm1 --ostype ubuntu_64 && mr vm1 && has modifyvm-ostype 'ostype="Ubuntu_64"'
run 0 modifyvm-rename modifyvm vm1 --name "vm one" && mr "vm one" && has modifyvm-rename 'name="vm one"' "UUID=\"$uuid1\""
run 0 modifyvm-rename-back modifyvm "$uuid1" --name vm1 && mr vm1 && has modifyvm-rename-back 'name="vm1"'
run 0 modifyvm-equals modifyvm vm1 --cpus=3 && mr vm1 && has modifyvm-equals cpus=3

# ---- shared folders, extra data -------------------------------------------------------------------------------
mkdir -p "$tmp/share"
run 0 sharedfolder-add sharedfolder add vm1 --name share --hostpath "$tmp/share" --readonly --automount
mr vm1
has sharedfolder-add 'SharedFolderNameMachineMapping1="share"' "SharedFolderPathMachineMapping1=\"$tmp/share\"" \
    'SharedFolderReadonlyMachineMapping1="on"' 'SharedFolderAutoMountMachineMapping1="on"'
run 2 sharedfolder-add-twice sharedfolder add vm1 --name share --hostpath "$tmp/share"
run 0 sharedfolder-remove sharedfolder remove vm1 --name share
mr vm1
grep -q SharedFolderNameMachineMapping1 "$tmp/mr" && fail "sharedfolder remove: still listed"
run 0 setextradata setextradata vm1 "GUI/Scale" "1.5 <&>"
run 0 getextradata getextradata vm1 "GUI/Scale" && grep -qxF "Value: 1.5 <&>" "$tmp/out" || fail "getextradata: $(cat "$tmp/out")"
run 0 getextradata-enumerate getextradata vm1 enumerate && grep -qxF "Key: GUI/Scale, Value: 1.5 <&>" "$tmp/out" ||
    fail "getextradata enumerate: $(cat "$tmp/out")"
run 0 setextradata-remove setextradata vm1 "GUI/Scale"
run 0 getextradata-none getextradata vm1 "GUI/Scale" && grep -qxF "No value set!" "$tmp/out" || fail "extra data not removed"
# "global": the registry's extra data (the manager's preferences, read by the console window), not a machine's.
run 0 getextradata-global-none getextradata global "GUI/HostKey" && grep -qxF "No value set!" "$tmp/out" ||
    fail "getextradata global before any is set: $(cat "$tmp/out")"
run 0 setextradata-global setextradata global "GUI/HostKey" "RightAlt"
grep -qF '"GUI/HostKey"' "$VIREO_USER_HOME/Vireo.xml" || fail "setextradata global: not in Vireo.xml"
run 0 getextradata-global getextradata global "GUI/HostKey" && grep -qxF "Value: RightAlt" "$tmp/out" ||
    fail "getextradata global: $(cat "$tmp/out")"
run 0 getextradata-global-enumerate getextradata global enumerate &&
    grep -qxF "Key: GUI/HostKey, Value: RightAlt" "$tmp/out" || fail "getextradata global enumerate: $(cat "$tmp/out")"
run 0 getextradata-vm1-not-global getextradata vm1 "GUI/HostKey" && grep -qxF "No value set!" "$tmp/out" ||
    fail "setextradata global changed a machine's extra data"
run 0 setextradata-global-remove setextradata global "GUI/HostKey"
run 0 getextradata-global-removed getextradata global "GUI/HostKey" && grep -qxF "No value set!" "$tmp/out" ||
    fail "global extra data not removed"

# ---- storage controllers, media, attachments -----------------------------------------------------------------------
run 0 storagectl-add storagectl vm2 --name MySATA --add sata --portcount 4 --bootable off
mr vm2
n=$(grep -F 'storagecontrollername' "$tmp/mr" | grep -F '"MySATA"' | sed 's/storagecontrollername\([0-9]*\)=.*/\1/')
[ -n "$n" ] || fail "storagectl add: MySATA not listed"
has storagectl-add "storagecontrollertype$n=\"sata\"" "storagecontrollerportcount$n=4" "storagecontrollerbootable$n=\"off\""
run 0 storagectl-modify storagectl vm2 --name MySATA --portcount 6 --bootable on
mr vm2
has storagectl-modify "storagecontrollerportcount$n=6" "storagecontrollerbootable$n=\"on\""
run 0 storagectl-virtio storagectl vm2 --name VirtIO --add virtio
run 0 storagectl-remove storagectl vm2 --name VirtIO --remove
mr vm2
grep -q '"VirtIO"' "$tmp/mr" && fail "storagectl remove: VirtIO still there"

run 0 createmedium createmedium disk --filename "$D/d1" --size 64 --format VDI
[ -f "$D/d1.vdi" ] || fail "createmedium: no .vdi extension added"
grep -qE "^Medium created. UUID: [0-9a-f-]{36}$" "$tmp/out" || fail "createmedium: message $(cat "$tmp/out")"
run 0 createmedium-qcow2 createmedium --filename "$D/q.qcow2" --size 32M --format qcow2
run 0 createmedium-bytes createmedium --filename "$D/r.img" --sizebyte 2097152 --format raw --variant Fixed
[ "$(stat -c %s "$D/r.img")" -eq 2097152 ] || fail "createmedium raw: size $(stat -c %s "$D/r.img")"
run 0 list-hdds list hdds --long
for f in d1.vdi q.qcow2 r.img; do
    grep -qxF "Location:       $D/$f" "$tmp/out" || fail "list hdds: $f missing"
done
grep -q "Capacity:       64 MiB" "$tmp/out" || fail "list hdds --long: capacity of d1.vdi"

run 0 attach-hdd storageattach vm2 --storagectl MySATA --port 0 --device 0 --type hdd --medium "$D/d1.vdi"
mr vm2
has attach-hdd "\"MySATA-0-0\"=\"$D/d1.vdi\"" '"MySATA-type-0-0"="hdd"'
run 0 list-hdds-users list hdds && grep -q "In use by VMs:  vm2" "$tmp/out" || fail "list hdds: in use by vm2"
# An image that is not registered yet gets registered by attaching it.
"$VIREO_BIN/vireo-img" create --format qcow2 "$D/loose.qcow2" 8M >/dev/null || fail "vireo-img create"
run 0 attach-register storageattach vm2 --storagectl MySATA --port 1 --type hdd --medium "$D/loose.qcow2" --nonrotational on
run 0 list-hdds-loose list hdds && grep -qxF "Location:       $D/loose.qcow2" "$tmp/out" || fail "attach did not register loose.qcow2"
head -c 2097152 /dev/zero >"$D/cd.iso"
run 0 attach-dvd storageattach vm2 --storagectl IDE --port 1 --device 0 --type dvddrive --medium "$D/cd.iso"
mr vm2
has attach-dvd "\"IDE-1-0\"=\"$D/cd.iso\"" '"IDE-type-1-0"="dvddrive"'
run 0 list-dvds list dvds && grep -qxF "Location:       $D/cd.iso" "$tmp/out" || fail "list dvds: cd.iso"
run 0 attach-emptydrive storageattach vm2 --storagectl IDE --port 1 --device 0 --type dvddrive --medium emptydrive
mr vm2 && has attach-emptydrive '"IDE-1-0"="emptydrive"'
run 0 detach storageattach vm2 --storagectl IDE --port 1 --device 0 --medium none
mr vm2 && has detach '"IDE-1-0"="none"'
run 0 detach-loose storageattach vm2 --storagectl MySATA --port 1 --medium none
run 0 close-loose closemedium "$D/loose.qcow2" --delete
[ -e "$D/loose.qcow2" ] && fail "closemedium --delete left the file"

run 0 clonemedium clonemedium "$D/d1.vdi" "$D/d1c.vdi" && grep -q "Clone medium created in format 'vdi'" "$tmp/out" ||
    fail "clonemedium: message $(cat "$tmp/out")"
run 0 clonemedium-qcow2 clonemedium disk "$D/d1.vdi" "$D/d1c.qcow2" --format qcow2
run 0 list-hdds-clones list hdds
grep -qxF "Location:       $D/d1c.vdi" "$tmp/out" || fail "clonemedium: the clone is not registered"
run 0 modifymedium-resize modifymedium "$D/d1c.vdi" --resize 128
"$VIREO_BIN/vireo-img" info --machinereadable "$D/d1c.vdi" | grep -qx "size=134217728" || fail "modifymedium: size"
run 0 modifymedium-resizebyte modifymedium disk "$D/d1c.qcow2" --resizebyte 100M
"$VIREO_BIN/vireo-img" info --machinereadable "$D/d1c.qcow2" | grep -qx "size=104857600" || fail "modifymedium --resizebyte"
run 0 checkmedium checkmedium "$D/d1c.vdi" && grep -q "no errors found" "$tmp/out" || fail "checkmedium: $(cat "$tmp/out")"
run 0 checkmedium-repair checkmedium disk "$D/d1c.qcow2" --repair
run 2 close-attached closemedium disk "$D/d1.vdi" && grep -q "is attached to 'vm2'" "$tmp/err" || fail "close-attached: message"
run 0 close-keep closemedium "$D/d1c.qcow2"
[ -f "$D/d1c.qcow2" ] || fail "closemedium without --delete removed the file"
run 0 close-delete closemedium disk "$D/d1c.vdi" --delete
[ -e "$D/d1c.vdi" ] && fail "closemedium --delete left $D/d1c.vdi"
run 0 list-hdds-after list hdds
# The file names, not "d1c" anywhere: the random temporary folder's name may contain it.
grep -q "/d1c\.\(vdi\|qcow2\)" "$tmp/out" && fail "closed media still listed"

# ---- snapshots offline (disk content through qemu-io) ---------------------------------------------------------
run 0 snap-vm createvm --name vm3 --basefolder "$B" --register
run 0 snap-vm-nic modifyvm vm3 --nic1 nat
run 0 snap-ctl storagectl vm3 --name SATA --add sata
run 0 snap-disk createmedium --filename "$D/s.qcow2" --size 16 --format qcow2
run 0 snap-attach storageattach vm3 --storagectl SATA --port 0 --type hdd --medium "$D/s.qcow2"
[ $have_qemu_io -eq 1 ] && write_pattern "$D/s.qcow2" 0x11
run 0 snap-take snapshot vm3 take snap1 --description "first one"
grep -qE "^Snapshot taken. UUID: [0-9a-f-]{36}$" "$tmp/out" || fail "snapshot take: message"
snap1=$(sed -n 's/^Snapshot taken. UUID: //p' "$tmp/out")
mr vm3
has snap-take 'SnapshotName="snap1"' "SnapshotUUID=\"$snap1\"" 'SnapshotDescription="first one"' \
    'CurrentSnapshotName="snap1"' "CurrentSnapshotUUID=\"$snap1\"" 'CurrentSnapshotNode="SnapshotName"'
cur=$(value '"SATA-0-0"')
[ "$cur" != "$D/s.qcow2" ] && [ -f "$cur" ] || fail "snapshot take: the VM still writes to $cur"
[ $have_qemu_io -eq 1 ] && write_pattern "$cur" 0x22
run 0 snap-take2 snapshot vm3 take snap2
snap2=$(sed -n 's/^Snapshot taken. UUID: //p' "$tmp/out")
mr vm3
cur=$(value '"SATA-0-0"')
[ $have_qemu_io -eq 1 ] && write_pattern "$cur" 0x33
run 0 snap-list snapshot vm3 list && grep -q "Name: snap1 (UUID: $snap1)" "$tmp/out" &&
    grep -q "   Name: snap2 (UUID: $snap2) \*" "$tmp/out" || fail "snapshot list: $(cat "$tmp/out")"
run 0 snap-list-mr snapshot vm3 list --machinereadable
cp "$tmp/out" "$tmp/mr"
has snap-list-mr 'SnapshotName="snap1"' 'SnapshotName-1="snap2"' 'CurrentSnapshotNode="SnapshotName-1"'
run 0 snap-show snapshot vm3 showvminfo snap1 && grep -q "^Name: *snap1$" "$tmp/out" || fail "snapshot showvminfo"
run 0 snap-restore snapshot vm3 restore snap2
mr vm3
cur=$(value '"SATA-0-0"')
[ $have_qemu_io -eq 1 ] && pattern "$cur" 0x22 && write_pattern "$cur" 0x44
run 0 snap-restorecurrent snapshot vm3 restorecurrent
mr vm3
cur=$(value '"SATA-0-0"')
[ $have_qemu_io -eq 1 ] && pattern "$cur" 0x22
run 0 snap-delete-first snapshot vm3 delete snap1
mr vm3
has snap-delete-first 'SnapshotName="snap2"' 'CurrentSnapshotName="snap2"'
grep -q '"snap1"' "$tmp/mr" && fail "snapshot delete: snap1 still listed"
cur=$(value '"SATA-0-0"')
[ $have_qemu_io -eq 1 ] && pattern "$cur" 0x22
run 0 snap-delete-last snapshot vm3 delete "$snap2"
run 0 snap-list-none snapshot vm3 list && grep -q "does not have any snapshots" "$tmp/out" || fail "snapshots left"
mr vm3
cur=$(value '"SATA-0-0"')
[ $have_qemu_io -eq 1 ] && pattern "$cur" 0x22
# Back to an older snapshot: what was written after it is gone.
run 0 snap-take3 snapshot vm3 take base
mr vm3
cur=$(value '"SATA-0-0"')
[ $have_qemu_io -eq 1 ] && write_pattern "$cur" 0x55
run 0 snap-restore-base snapshot vm3 restore base
mr vm3
cur=$(value '"SATA-0-0"')
[ $have_qemu_io -eq 1 ] && pattern "$cur" 0x22
[ $have_qemu_io -eq 0 ] && echo "note: qemu-io is missing; snapshot disk contents were not checked"

# ---- clones ------------------------------------------------------------------------------------------
mr vm3
mac3=$(value macaddress1)
run 0 clonevm clonevm vm3 --name vm3c --register --basefolder "$B" && grep -q "cloned as 'vm3c'" "$tmp/out" ||
    fail "clonevm: message"
mr vm3c
has clonevm 'name="vm3c"' 'nic1="nat"'
[ "$(value UUID)" != "$(grep -m1 '^UUID=' <("$mg" showvminfo vm3 --machinereadable) | cut -d'"' -f2)" ] || fail "clone has the same UUID"
[ "$(value macaddress1)" != "$mac3" ] || fail "clone has the same MAC address $mac3"
ccur=$(value '"SATA-0-0"')
[ -f "$ccur" ] && [[ "$ccur" == "$B/vm3c/"* ]] || fail "clone's disk '$ccur' is not in its folder"
[ $have_qemu_io -eq 1 ] && pattern "$ccur" 0x22
run 0 clonevm-linked clonevm vm3 --name vm3l --options link --register --basefolder "$B"
mr vm3l
lcur=$(value '"SATA-0-0"')
[ $have_qemu_io -eq 1 ] && pattern "$lcur" 0x22
run 0 clonevm-all clonevm vm3 --name vm3a --mode all --basefolder "$B"
[ -f "$B/vm3a/vm3a.vireo" ] || fail "clonevm --mode all: no settings file"
run 0 list-clones list vms
grep -q '"vm3c"' "$tmp/out" && grep -q '"vm3l"' "$tmp/out" || fail "clones not listed"
grep -q '"vm3a"' "$tmp/out" && fail "clone without --register is registered"
run 0 registervm registervm "$B/vm3a/vm3a.vireo"
run 0 list-registered list vms && grep -q '"vm3a"' "$tmp/out" || fail "registervm: vm3a not listed"
run 0 unregistervm-keep unregistervm vm3a
[ -f "$B/vm3a/vm3a.vireo" ] || fail "unregistervm without --delete deleted the settings"

# ---- deleting ------------------------------------------------------------------------------------------------
run 0 unregistervm-delete unregistervm vm3c --delete
[ -e "$B/vm3c" ] && fail "unregistervm --delete left $(find "$B/vm3c" | head -n 5 | tr '\n' ' ')"
run 0 list-after-delete list vms && grep -q '"vm3c"' "$tmp/out" && fail "vm3c still registered"
run 0 unregistervm-delete-linked unregistervm vm3l --delete
[ -e "$B/vm3l" ] && fail "unregistervm --delete of the linked clone left its folder"
[ $have_qemu_io -eq 1 ] && mr vm3 && pattern "$(value '"SATA-0-0"')" 0x22
run 0 unregistervm-delete-vm1 unregistervm vm1 --delete
[ -e "$B/vm1" ] && fail "unregistervm --delete left $B/vm1"

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"
