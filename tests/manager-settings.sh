#!/usr/bin/env bash
# manager-settings.sh - the manager's Settings dialog under Xvfb (AT-SPI): every page edits the machine file in one transaction on OK, invalid values are explained inline and keep OK disabled, disks made in the dialog are kept on OK and deleted on Cancel, and a running machine's hardware is locked behind a banner.
set -u
source "$VIREO_SRC/tests/lib/mgr-gui.bash"
mgr_need xorriso
mgr_env mgr-settings

# Machines made with the CLI: one with a DVD drive holding a small ISO (and a registered disk to choose), one whose name is taken, one with no disks
# to run (SeaBIOS waits for a boot device; no guest image needed).
mkdir -p "$tmp/isodir" && echo "settings test" > "$tmp/isodir/readme.txt"
xorriso -as mkisofs -quiet -V SETTINGS -o "$tmp/test.iso" "$tmp/isodir" 2>/dev/null || { echo "FAIL: xorriso"; exit 1; }
{
    manage createvm --name "Set VM" --ostype Debian_64 --basefolder "$tmp/vms" --register &&
    manage storagectl "Set VM" --name IDE --add ide &&
    manage storageattach "Set VM" --storagectl IDE --port 1 --device 0 --type dvddrive --medium "$tmp/test.iso" &&
    manage modifyvm "Set VM" --memory 512 --cpus 1 --vram 16 --nictype1 e1000 &&
    manage createmedium disk --filename "$tmp/existing.vdi" --size 16 &&
    manage createvm --name "Other VM" --basefolder "$tmp/vms" --register &&
    manage createvm --name "Run VM" --basefolder "$tmp/vms" --register &&
    manage modifyvm "Run VM" --memory 32 --nic1 none
} >"$tmp/setup.log" 2>&1 || { echo "FAIL: setting up the machines"; cat "$tmp/setup.log"; exit 1; }

mgr_run manager-settings.py "$tmp"
rc=$?
# GTK's criticals mean a widget was misused even when everything looked right.  (A combo's menu opened through
# AT-SPI has no input event behind it, which GTK warns about: that one is the test's doing.)
if [ $rc -eq 0 ] && grep -v "no trigger event for menu popup" "$tmp/vireo.log" 2>/dev/null |
    grep -q -E "CRITICAL|WARNING \*\*"; then
    echo "FAIL: the manager logged GTK criticals or warnings"
    echo "---- manager log"; tail -n 30 "$tmp/vireo.log"
    rc=1
fi
exit $rc
