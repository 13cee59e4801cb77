#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# vm-persist-concurrent.sh - settings survive concurrent writers and a killed VM process: while a machine
# runs (its vireo-vm records pause/resume in the file), two vireo-manage processes each set 40 extra-data
# keys on it in a loop; afterwards the file loads and holds all 80 keys (no write lost, none torn).  A
# second start of the running machine is refused and changes nothing.  Then SIGKILL of vireo-vm leaves
# the machine aborted with its settings intact, and it starts again.
set -u
source "$VIREO_SRC/tests/lib/persist.bash"
vm=busy
persist_create_vm
settings="$tmp/vms/$vm/$vm.vireo"
[ -f "$settings" ] || fail "no settings file at $settings"

manage startvm "$vm" --type headless >/dev/null
wait_com1 VIREO-BOOT-OK 0 300 >/dev/null || fail "the guest did not boot to VIREO-BOOT-OK"
wait_state running

# Two writers and the VM itself (pause/resume change the recorded state) at the same time.
writer() {
    local i rc
    for i in $(seq 1 40); do
        "$VIREO_BIN/vireo-manage" setextradata "$vm" "test/$1/$i" "value-$1-$i" 2>>"$tmp/writer-$1.err"
        rc=$?
        [ $rc -eq 0 ] || echo "setextradata $1/$i exited $rc" >>"$tmp/writer-$1.err"
    done
}
writer a & pa=$!
writer b & pb=$!
for i in 1 2 3 4 5; do
    "$VIREO_BIN/vireo-manage" controlvm "$vm" pause 2>>"$tmp/ctl.err" || fail "pause: $(cat "$tmp/ctl.err")"
    "$VIREO_BIN/vireo-manage" controlvm "$vm" resume 2>>"$tmp/ctl.err" || fail "resume: $(cat "$tmp/ctl.err")"
done
wait $pa; wait $pb
for w in a b; do
    [ -s "$tmp/writer-$w.err" ] && fail "writer $w failed: $(head -n 3 "$tmp/writer-$w.err")"
done
manage getextradata "$vm" enumerate > "$tmp/extra.txt"
for w in a b; do
    for i in $(seq 1 40); do
        grep -q "test/$w/$i.*value-$w-$i" "$tmp/extra.txt" || fail "extra data test/$w/$i was lost"
    done
done
python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$settings" ||
    fail "the settings file is not well-formed XML after the concurrent writes"
[ "$(info VMState)" = running ] || fail "the machine is '$(info VMState)' after the writers, not running"
echo "ok   two concurrent writers and the running VM: 80 of 80 keys present, the file is well-formed"

# A second start of a running machine: refused (exit 2 from vireo-manage, 1 from vireo-vm), nothing changed.
before=$(sha256sum "$settings")
"$VIREO_BIN/vireo-manage" startvm "$vm" --type headless >"$tmp/second.out" 2>&1 && fail "a second startvm of a running machine succeeded"
grep -qi "already running\|is running" "$tmp/second.out" || fail "second startvm: no 'already running' message: $(cat "$tmp/second.out")"
[ "$(sha256sum "$settings")" = "$before" ] || fail "the refused second start changed the settings file"
"$VIREO_BIN/vireo-vm" --startvm "$vm" --headless >"$tmp/second-vm.out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "vireo-vm --startvm of a running machine exited $rc, not 1"
grep -qi "already running" "$tmp/second-vm.out" || fail "vireo-vm: no 'already running' message: $(cat "$tmp/second-vm.out")"
echo "ok   a running machine cannot be started twice"

# SIGKILL: the machine is reported aborted, its settings intact, and it starts again.
pids=$(our_vms)
[ -n "$pids" ] || fail "no vireo-vm process to kill"
kill -KILL $pids
sleep 1
wait_state aborted
manage getextradata "$vm" enumerate | grep -q "test/a/40" || fail "extra data lost after the kill"
manage startvm "$vm" --type headless >/dev/null
wait_state running
wait_com1 VIREO-BOOT-OK 0 300 >/dev/null || fail "the restarted guest did not boot"
manage controlvm "$vm" poweroff >/dev/null
wait_state poweroff
echo "ok   SIGKILL left the machine aborted; it started again and powered off"
