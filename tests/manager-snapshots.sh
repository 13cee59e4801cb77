#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# manager-snapshots.sh - the manager's snapshots window under Xvfb: take, restore and delete snapshots of a powered-off machine with a 32 MiB VDI disk, then an online snapshot of it running headless (no boot medium: the firmware waits), checked with vireo-manage after each step (tests/manager-snapshots.py).
set -u
source "$VIREO_SRC/tests/lib/mgr-gui.bash"
mgr_need
mgr_env mgrsnap

vm="Snap Test"
manage createvm --name "$vm" --ostype Debian_64 --basefolder "$tmp/vms" --register >/dev/null
manage modifyvm "$vm" --memory 64 --cpus 1 >/dev/null  # a small saved state for the online snapshot
disk="$tmp/vms/$vm/$vm.vdi"
manage createmedium disk --filename "$disk" --size 32 --format VDI >/dev/null
manage storageattach "$vm" --storagectl SATA --port 0 --device 0 --type hdd --medium "$disk" >/dev/null
export VIREO_TEST_VM="$vm" VIREO_TEST_DISK="$disk" VIREO_TEST_SETTINGS="$tmp/vms/$vm/$vm.vireo"
mgr_run manager-snapshots.py "$tmp/vireo.log"
