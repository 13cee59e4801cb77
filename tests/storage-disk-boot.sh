#!/usr/bin/env bash
# storage-disk-boot.sh - SeaBIOS boots the test hard disk (../shared/guests/make-disk.sh: MBR, GRUB, ext2
# with the kernel and initramfs) from the IDE, AHCI and virtio-blk controllers, on the software CPU, to
# VIREO-BOOT-OK: raw on IDE, the same disk converted to qcow2 (by qemu-img) on AHCI and to VDI on virtio.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need qemu-img mke2fs grub-mkimage
disk="$GUESTS_OUT/test-disk.img"
storage_cached "$disk" "$GUESTS_SRC/make-disk.sh" "$disk" none
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-diskboot.XXXXXX")
trap '[ -n "${STORAGE_PID:-}" ] && kill -KILL "$STORAGE_PID" 2>/dev/null; rm -rf "$tmp"' EXIT
cp "$disk" "$tmp/disk.raw"
qemu-img convert -O qcow2 "$disk" "$tmp/disk.qcow2" || { echo "FAIL: qemu-img convert to qcow2"; exit 1; }
qemu-img convert -O vdi "$disk" "$tmp/disk.vdi" || { echo "FAIL: qemu-img convert to vdi"; exit 1; }
# One boot after the other: guests running side by side on a loaded host stall more often in their
# timer handling (see DESIGN-NOTES, Storage), and a test must not depend on the host's load.
boot() { # ctl fmt
    storage_boot "$tmp/$1.txt" 300 VIREO-BOOT-OK --drive "file=$tmp/disk.$2,if=$1" --boot c
    echo "$? $STORAGE_SECONDS" > "$tmp/$1.rc"
}
for case in ide:raw ahci:qcow2 virtio:vdi; do boot "${case%%:*}" "${case#*:}"; done
fail=0
for case in ide:raw ahci:qcow2 virtio:vdi; do
    ctl=${case%%:*} fmt=${case#*:}
    read -r rc secs < "$tmp/$ctl.rc"
    if [ "$rc" -eq 0 ]; then
        echo "ok   SeaBIOS booted the $fmt disk on $ctl to VIREO-BOOT-OK in ${secs}s"
    else
        echo "FAIL: no VIREO-BOOT-OK booting the $fmt disk on $ctl"
        storage_show_failure "$tmp/$ctl.txt"
        fail=1
    fi
done
exit $fail
