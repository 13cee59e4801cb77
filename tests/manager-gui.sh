#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# manager-gui.sh - the manager end to end under Xvfb, driven through its accessibility tree: the New Machine assistant creates a machine from the test ISO, Start boots it (console window), the list shows it running with a thumbnail, pause and resume, an online snapshot, power off, memory changed in Settings, a clone, Remove deletes its files; the settings on disk are checked after each step and every main view is saved as a PNG.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
source "$VIREO_SRC/tests/lib/mgr-gui.bash"
storage_need xorriso
mgr_need xdotool
# The BIOS test CD of vm-startvm.sh (same command, so the cached image is shared): it boots Linux and stays up.
initrd=$(storage_initrd)
iso="$GUESTS_OUT/startvm.iso"
storage_cached "$iso" env INITRD="$initrd" EXTRA_APPEND="vireo.storage=persist" "$GUESTS_SRC/make-iso.sh" "$iso" none

mgr_env mgr-gui
# The default machine folder is under $HOME: keep it in the test's folder too.
export HOME="$tmp/user"
mkdir -p "$HOME"
cp "$iso" "$tmp/install.iso"
shots="$VIREO_OUT/screenshots"
rm -f "$shots"/manager-gui-*.png
sha_before=$(sha256sum "$tmp/install.iso" | cut -d' ' -f1)
mgr_run manager-gui.py "$tmp/install.iso" "$shots" "$tmp/vireo.log"
rc=$?
if [ $rc -ne 0 ]; then
    for l in "$tmp"/vms/*/Logs/VM-process.log; do [ -f "$l" ] && { echo "---- $l (tail)"; tail -n 10 "$l"; }; done
    exit 1
fi
[ "$(sha256sum "$tmp/install.iso" | cut -d' ' -f1)" = "$sha_before" ] || { echo "FAIL: the installation ISO changed"; exit 1; }
echo "ok   the installation ISO is untouched"
