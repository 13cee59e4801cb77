#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# manager-window.sh - the manager's main window under Xvfb through AT-SPI: the machine list and details, starting headless with a live preview, pause/resume, power off, Preferences and both ways of Remove, checked on disk after each step.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
source "$VIREO_SRC/tests/lib/mgr-gui.bash"
storage_need xorriso
mgr_need
# The BIOS test CD of vm-startvm.sh (same command, so the cached image is shared): it boots Linux and stays up.
initrd=$(storage_initrd)
iso="$GUESTS_OUT/startvm.iso"
storage_cached "$iso" env INITRD="$initrd" EXTRA_APPEND="vireo.storage=persist" "$GUESTS_SRC/make-iso.sh" "$iso" none

mgr_env mgrwin
cp "$iso" "$tmp/boot.iso"

# Three machines of different OS types; the Linux one boots the CD, the third has a disk of its own.
manage createvm --name "Linux Box" --ostype Debian_64 --basefolder "$tmp/vms" --register >/dev/null
manage modifyvm "Linux Box" --memory 256 --cpus 1 --audio none --usb off >/dev/null
manage storagectl "Linux Box" --name IDE --add ide >/dev/null
manage storageattach "Linux Box" --storagectl IDE --port 1 --device 0 --type dvddrive --medium "$tmp/boot.iso" >/dev/null
manage createvm --name "Windows Box" --ostype WindowsXP --basefolder "$tmp/vms" --register >/dev/null
cp "$iso" "$tmp/gone.iso"
manage storageattach "Windows Box" --storagectl IDE --port 1 --device 0 --type dvddrive --medium "$tmp/gone.iso" >/dev/null
manage createvm --name "Disk Box" --ostype Other --basefolder "$tmp/vms" --register >/dev/null
manage storagectl "Disk Box" --name SATA --add sata >/dev/null
manage createmedium disk --filename "$tmp/vms/Disk Box/disk.qcow2" --size 32 --format qcow2 >/dev/null
manage storageattach "Disk Box" --storagectl SATA --port 0 --type hdd --medium "$tmp/vms/Disk Box/disk.qcow2" >/dev/null

mgr_run manager-window.py
