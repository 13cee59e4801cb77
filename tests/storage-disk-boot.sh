#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# storage-disk-boot.sh - SeaBIOS boots the test hard disk (../shared/guests/make-disk.sh: MBR, GRUB, ext2
# with the kernel and initramfs) from the IDE, AHCI and virtio-blk controllers, on the software CPU, to
# VIREO-BOOT-OK: raw on IDE, the same disk converted to qcow2 (by qemu-img) on AHCI and to VDI on virtio.
# The bootable test ISO sits in the IDE CD drive each time: SeaBIOS prefers CDs unless told otherwise, so
# booting from the disk shows that --boot c reached it (fw_cfg "bootorder").
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need qemu-img mke2fs grub-mkimage xorriso
disk="$GUESTS_OUT/test-disk.img"
storage_cached "$disk" "$GUESTS_SRC/make-disk.sh" "$disk" none
iso="$GUESTS_OUT/test.iso"
storage_cached "$iso" "$GUESTS_SRC/make-iso.sh" "$iso" none
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-diskboot.XXXXXX")
trap '[ -n "${STORAGE_PID:-}" ] && kill -KILL "$STORAGE_PID" 2>/dev/null; rm -rf "$tmp"' EXIT
cp "$disk" "$tmp/disk.raw"
qemu-img convert -O qcow2 "$disk" "$tmp/disk.qcow2" || { echo "FAIL: qemu-img convert to qcow2"; exit 1; }
qemu-img convert -O vdi "$disk" "$tmp/disk.vdi" || { echo "FAIL: qemu-img convert to vdi"; exit 1; }
# One boot after the other: guests running side by side on a loaded host stall more often in their
# timer handling (see DESIGN-NOTES, Storage), and a test must not depend on the host's load.
fail=0
for case in ide:raw ahci:qcow2 virtio:vdi; do
    ctl=${case%%:*} fmt=${case#*:}
    if ! storage_boot "$tmp/$ctl.txt" 300 VIREO-BOOT-OK --drive "file=$tmp/disk.$fmt,if=$ctl" --cdrom "$iso" --boot c; then
        echo "FAIL: no VIREO-BOOT-OK booting the $fmt disk on $ctl"
        storage_show_failure "$tmp/$ctl.txt"
        fail=1
    elif ! grep -q "Booting from Hard Disk" "$tmp/$ctl.txt.vmlog" || grep -q "Booting from DVD/CD" "$tmp/$ctl.txt.vmlog"; then
        echo "FAIL: with --boot c SeaBIOS did not boot the $fmt disk on $ctl first:"
        grep "Booting from" "$tmp/$ctl.txt.vmlog" | sed 's/^/    /'
        fail=1
    else
        echo "ok   SeaBIOS booted the $fmt disk on $ctl (CD in the drive, --boot c) to VIREO-BOOT-OK in ${STORAGE_SECONDS}s"
    fi
done
exit $fail
