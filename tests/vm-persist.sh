#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# vm-persist.sh - a machine's whole life through vireo-manage, on the software CPU: create and register it,
# create a disk, attach it and the test ISO, start it headless and see the guest boot on COM1, save its
# state and start it again (the guest's uptime continues: it resumed, it did not boot), write in the guest,
# take a snapshot of the running machine, write again, power off, restore the snapshot and find the second
# write gone and the first one there, power off, unregister with --delete and find nothing left behind.
# The guest is the storage test's "persist" /init: PERSIST-UPTIME lines on COM1, commands on COM2.
set -u
source "$VIREO_SRC/tests/lib/persist.bash"
vm=persist

# 1. Create, register, a disk, a controller, attachments, serial ports.
persist_create_vm
[ "$(info memory)" = 256 ] || fail "memory reads back as '$(info memory)', not 256"
[ "$(info VMState)" = poweroff ] || fail "a new machine is '$(info VMState)', not poweroff"
echo "ok   created and configured '$vm'"

# 2. Start headless; the guest boots (serial).
manage startvm "$vm" --type headless >/dev/null
wait_com1 VIREO-BOOT-OK 0 300 >/dev/null || fail "the guest did not boot to VIREO-BOOT-OK"
wait_state running
up1=$(wait_com1 '^PERSIST-UPTIME' 0 60 | awk '{print $2}') || fail "no PERSIST-UPTIME line"
sleep 4
up1=$(grep -a '^PERSIST-UPTIME' "$tmp/com1.txt" | tail -n 1 | awk '{print $2}')
echo "ok   booted headless; guest uptime $up1 s"

# 3. Save state; the process ends and the machine is saved.
manage controlvm "$vm" savestate >/dev/null
wait_state saved
[ -z "$(our_vms)" ] || fail "vireo-vm still runs after savestate"
echo "ok   saved state"

# 4. Start again: the guest resumes (its uptime continues from where it was, no new boot).
manage startvm "$vm" --type headless >/dev/null
wait_state running
up2=$(wait_com1 '^PERSIST-UPTIME' 0 60 | awk '{print $2}') || fail "no PERSIST-UPTIME after the restore"
grep -aq "VIREO-BOOT-OK\|Linux version" "$tmp/com1.txt" && fail "the guest booted again instead of resuming"
awk -v a="$up1" -v b="$up2" 'BEGIN { exit !(b >= a && b < a + 30) }' ||
    fail "guest uptime after the restore is $up2 s, before the save it was $up1 s"
echo "ok   resumed: uptime $up1 s before the save, $up2 s after"

# 5. Write in the guest, snapshot the running machine, then write again.
n=$(com1_lines)
com2 "write BEFORESNAP"
wait_com1 '^PERSIST-WROTE BEFORESNAP 0' "$n" 60 >/dev/null || fail "the guest did not write BEFORESNAP"
manage snapshot "$vm" take before-write >/dev/null
[ "$(info VMState)" = running ] || fail "the machine is '$(info VMState)' after an online snapshot"
n=$(com1_lines)
com2 "write AFTERSNAP"
wait_com1 '^PERSIST-WROTE AFTERSNAP 0' "$n" 60 >/dev/null || fail "the guest did not write AFTERSNAP"
n=$(com1_lines)
com2 "read"
line=$(wait_com1 '^PERSIST-READ' "$n" 60) || fail "no PERSIST-READ"
[ "$line" = "PERSIST-READ PERSIST-DATA-AFTERSNAP" ] || fail "the guest reads '$line' after its write"
echo "ok   online snapshot taken; the guest wrote to its disk after it"

# 6. Power off, restore the snapshot, start: the guest is back at the snapshot and the write is gone.
manage controlvm "$vm" poweroff >/dev/null
wait_state poweroff
manage snapshot "$vm" restore before-write >/dev/null
[ "$(info VMState)" = saved ] || fail "after restoring an online snapshot the machine is '$(info VMState)', not saved"
manage startvm "$vm" --type headless >/dev/null
wait_state running
wait_com1 '^PERSIST-UPTIME' 0 60 >/dev/null || fail "no PERSIST-UPTIME after restoring the snapshot"
n=$(com1_lines)
com2 "read"
line=$(wait_com1 '^PERSIST-READ' "$n" 60) || fail "no PERSIST-READ after restoring the snapshot"
[ "$line" = "PERSIST-READ PERSIST-DATA-AFTERSNAP" ] && fail "the write made after the snapshot survived its restore"
[ "$line" = "PERSIST-READ PERSIST-DATA-BEFORESNAP" ] || fail "after restoring the snapshot the guest reads '$line', not what it wrote before it"
echo "ok   restored the snapshot: the write after it is gone, the guest reads what it wrote before it"

# 7. Power off, unregister --delete: nothing left behind.
manage controlvm "$vm" poweroff >/dev/null
wait_state poweroff
manage snapshot "$vm" list >/dev/null
manage unregistervm "$vm" --delete >/dev/null
[ -e "$tmp/vms/$vm" ] && fail "unregistervm --delete left $(find "$tmp/vms/$vm" | head -n 5 | tr '\n' ' ')"
"$VIREO_BIN/vireo-manage" list vms | grep -q "$vm" && fail "'$vm' is still listed"
"$VIREO_BIN/vireo-manage" list hdds | grep -q "$tmp/vms" && fail "a disk of '$vm' is still registered"
ls "$XDG_RUNTIME_DIR"/vireo/*.sock >/dev/null 2>&1 && fail "a control socket was left in $XDG_RUNTIME_DIR/vireo"
[ -f "$iso" ] || fail "the ISO was deleted with the machine"
echo "ok   unregistered with --delete; nothing left behind"
