#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# storage-cd-boot.sh - SeaBIOS boots the test ISO (../shared/guests/make-iso.sh: El Torito, ISOLINUX, the
# Debian kernel and the busybox initramfs) from an IDE CD drive and from an AHCI CD drive, on the software
# CPU, to VIREO-BOOT-OK.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso
iso="$GUESTS_OUT/test.iso"
storage_cached "$iso" "$GUESTS_SRC/make-iso.sh" "$iso" none
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-cdboot.XXXXXX")
trap '[ -n "${STORAGE_PID:-}" ] && kill -KILL "$STORAGE_PID" 2>/dev/null; rm -rf "$tmp"' EXIT
# One boot after the other: guests running side by side on a loaded host stall more often in their
# timer handling (see DESIGN-NOTES, Storage), and a test must not depend on the host's load.
fail=0
for ctl in ide ahci; do
    if [ $ctl = ide ]; then
        storage_boot "$tmp/$ctl.txt" 300 VIREO-BOOT-OK --cdrom "$iso" --boot d
    else
        storage_boot "$tmp/$ctl.txt" 300 VIREO-BOOT-OK --drive "file=$iso,if=ahci,media=cdrom" --boot d
    fi
    if [ $? -eq 0 ]; then
        echo "ok   SeaBIOS booted the ISO from the $ctl CD drive to VIREO-BOOT-OK in ${STORAGE_SECONDS}s"
    else
        echo "FAIL: no VIREO-BOOT-OK booting the ISO from the $ctl CD drive"
        storage_show_failure "$tmp/$ctl.txt"
        fail=1
    fi
done
exit $fail
