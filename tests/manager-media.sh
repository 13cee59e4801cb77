#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# manager-media.sh - the manager's media manager under Xvfb: two registered disks (one attached) and an ISO are listed with sizes and users; create, copy, resize, release and remove, checked with vireo-manage and vireo-img after each step (tests/manager-media.py).
set -u
source "$VIREO_SRC/tests/lib/mgr-gui.bash"
mgr_need xorriso
mgr_env mgrmedia

vm="Media Test"
manage createvm --name "$vm" --ostype Debian_64 --basefolder "$tmp/vms" --register >/dev/null
attached="$tmp/vms/$vm/$vm.vdi" spare="$tmp/disks/Spare.qcow2" iso="$tmp/disks/test.iso"
mkdir -p "$tmp/disks/iso"
echo "vireo media manager test" >"$tmp/disks/iso/README.TXT"
xorriso -as mkisofs -quiet -V VIREO_TEST -o "$iso" "$tmp/disks/iso" >/dev/null 2>&1 || { echo "FAIL: xorriso"; exit 1; }
manage createmedium disk --filename "$attached" --size 32 --format VDI >/dev/null
manage createmedium disk --filename "$spare" --size 8 --format qcow2 >/dev/null
manage storageattach "$vm" --storagectl SATA --port 0 --device 0 --type hdd --medium "$attached" >/dev/null
manage storageattach "$vm" --storagectl SATA --port 1 --device 0 --type dvddrive --medium "$iso" >/dev/null
export VIREO_TEST_VM="$vm" VIREO_TEST_DIR="$tmp/disks" VIREO_TEST_ATTACHED="$attached" VIREO_TEST_SPARE="$spare" \
    VIREO_TEST_ISO="$iso"
# "No write permission" as root: a read-only bind mount in a mount namespace of the test's own (root ignores modes).
mkdir -p "$tmp/readonly"
export VIREO_TEST_READONLY="$tmp/readonly"
if unshare -m true 2>/dev/null; then
    mgr_run --readonly "$VIREO_TEST_READONLY" manager-media.py "$tmp/vireo.log"
else
    VIREO_TEST_READONLY="" mgr_run manager-media.py "$tmp/vireo.log"
fi
