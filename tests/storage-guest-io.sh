#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# storage-guest-io.sh - the Debian kernel's own drivers (ata_piix, ahci, virtio_blk) find a disk on each
# controller, read the known content of each (a raw image on IDE, qcow2 on AHCI, VDI on virtio-blk, made
# by qemu-img), write a marker to each with fsync, and the host then finds every marker in the image files
# (read back by qemu-img, an independent implementation of the formats).
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso qemu-img
initrd=$(storage_initrd) || exit 1
iso="$GUESTS_OUT/storage-probe.iso"
storage_cached "$iso" env INITRD="$initrd" EXTRA_APPEND="vireo.storage=probe" "$GUESTS_SRC/make-iso.sh" "$iso" none
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-guestio.XXXXXX")
trap '[ -n "${STORAGE_PID:-}" ] && kill -KILL "$STORAGE_PID" 2>/dev/null; rm -rf "$tmp"' EXIT
# Distinct sizes tell the disks apart in the guest; the content is random, its md5 the reference.
declare -A size_mb=([ide]=8 [ahci]=12 [virtio]=16) fmt=([ide]=raw [ahci]=qcow2 [virtio]=vdi)
declare -A pci=([ide]=0000:00:01.1 [ahci]=0000:00:04.0 [virtio]=0000:00:05.0)
for c in ide ahci virtio; do
    head -c $((size_mb[$c] << 20)) /dev/urandom > "$tmp/$c.src"
    qemu-img convert -f raw -O "${fmt[$c]}" "$tmp/$c.src" "$tmp/$c.${fmt[$c]}" || { echo "FAIL: qemu-img convert"; exit 1; }
done
if ! storage_boot "$tmp/com1.txt" 400 STORAGE-DONE --cdrom "$iso" --boot d \
        --drive "file=$tmp/ide.raw,if=ide,port=0" --drive "file=$tmp/ahci.qcow2,if=ahci" \
        --drive "file=$tmp/virtio.vdi,if=virtio"; then
    echo "FAIL: the guest did not finish (no STORAGE-DONE)"
    storage_show_failure "$tmp/com1.txt"
    exit 1
fi
fail=0
for c in ide ahci virtio; do
    line=$(grep -a "^STORAGE-DISK " "$tmp/com1.txt" | tr -d '\r' |
        awk -v s=$((size_mb[$c] << 11)) '$3 == s' | head -n 1)
    if [ -z "$line" ]; then
        echo "FAIL: the guest found no ${size_mb[$c]} MiB disk for $c"; fail=1; continue
    fi
    read -r _ name sectors md5 path <<< "$line"
    want=$(head -c 1048576 "$tmp/$c.src" | md5sum | cut -d' ' -f1)
    [ "$md5" = "$want" ] || { echo "FAIL: $c ($name): the guest read md5 $md5 from the first MiB, want $want"; fail=1; }
    [[ "$path" == *"${pci[$c]}"* ]] || { echo "FAIL: $c ($name) is at $path, not behind ${pci[$c]}"; fail=1; }
    grep -aq "^STORAGE-WROTE $name 0" "$tmp/com1.txt" || { echo "FAIL: $c ($name): the guest's write failed"; fail=1; }
    qemu-img convert -O raw "$tmp/$c.${fmt[$c]}" "$tmp/$c.after" || { echo "FAIL: qemu-img cannot read $c.${fmt[$c]} afterwards"; fail=1; continue; }
    want="VIREO-GUEST-WROTE-$name"
    got=$(dd if="$tmp/$c.after" bs=1 skip=$((2 << 20)) count=${#want} 2>/dev/null | tr -c '[:print:]' '?')
    [ "$got" = "$want" ] || { echo "FAIL: $c: the image holds '$got' at 2 MiB, want $want"; fail=1; }
    cmp -s <(head -c 2097152 "$tmp/$c.src") <(head -c 2097152 "$tmp/$c.after") || { echo "FAIL: $c: the first 2 MiB changed"; fail=1; }
    [ $fail -eq 0 ] && echo "ok   $c: the guest's $name (${fmt[$c]}) read back md5 $md5 and its write reached the image"
done
if [ "${fmt[ahci]}" = qcow2 ]; then
    qemu-img check -q "$tmp/ahci.qcow2" || { echo "FAIL: qemu-img check finds errors in the qcow2 image the guest wrote"; fail=1; }
fi
[ $fail -eq 0 ] || storage_show_failure "$tmp/com1.txt"
exit $fail
