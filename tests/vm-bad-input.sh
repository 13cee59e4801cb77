#!/usr/bin/env bash
# vm-bad-input.sh - vireo-vm refuses bad options and files with one clear stderr line and a non-zero exit, never a crash.
set -u
vm="$VIREO_BIN/vireo-vm"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect NAME EXPECTED_REGEX ARGS...: exit code 1, exactly one stderr line matching the regex, no crash.
expect() {
    local name=$1 regex=$2
    shift 2
    timeout 60 "$vm" --exec kvm "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    local lines
    lines=$(grep -c . "$tmp/err")
    if [ $rc -ne 1 ] || [ "$lines" -ne 1 ] || ! grep -qE -- "$regex" "$tmp/err"; then
        echo "FAIL $name: exit $rc (want 1), $lines stderr line(s) (want 1), want /$regex/:"
        sed 's/^/    /' "$tmp/err"
        fails=$((fails + 1))
    else
        echo "ok   $name: $(cat "$tmp/err")"
    fi
}

# expect_image NAME EXPECTED_REGEX ARGS...: exit code 1 and a stderr line matching the regex (the block layer's
# reason and the drive it was for are two lines), no crash.
expect_image() {
    local name=$1 regex=$2
    shift 2
    timeout 60 "$vm" --exec kvm "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    if [ $rc -ne 1 ] || ! grep -qE -- "$regex" "$tmp/err" || [ "$(grep -c . "$tmp/err")" -gt 2 ]; then
        echo "FAIL $name: exit $rc (want 1), want /$regex/ in at most two lines:"
        sed 's/^/    /' "$tmp/err"
        fails=$((fails + 1))
    else
        echo "ok   $name: $(tr '\n' ' ' < "$tmp/err")"
    fi
}

head -c 1000 /usr/share/seabios/bios-256k.bin >"$tmp/truncated.bin" 2>/dev/null || head -c 1000 /dev/zero >"$tmp/truncated.bin"
head -c $((64 * 1024 + 17)) /dev/zero >"$tmp/odd.bin"
head -c 100000 /dev/urandom >"$tmp/not-a-kernel"
printf 'hello\n' >"$tmp/tiny-kernel"

expect missing-firmware "firmware '$tmp/none.bin' not found" --bios "$tmp/none.bin"
expect truncated-firmware "truncated or not a BIOS image" --bios "$tmp/truncated.bin"
expect odd-size-firmware "truncated or not a BIOS image" --bios "$tmp/odd.bin"
expect firmware-is-dir "firmware '$tmp': is a directory" --bios "$tmp"
expect kernel-not-bzimage "not a Linux bzImage" --kernel "$tmp/not-a-kernel"
expect kernel-tiny "not a Linux bzImage" --kernel "$tmp/tiny-kernel"
expect kernel-missing "cannot read kernel '$tmp/nokernel'" --kernel "$tmp/nokernel"
expect memory-zero "memory size '0' is too small" --memory 0
expect memory-huge "more than this host's" --memory 64T
expect memory-garbage "memory size '10Q' is not a size" --memory 10Q
expect memory-negative "memory size '-5' is not a size" --memory -5
expect serial-bad-path "cannot open 'file:$tmp/no/such/dir/com1.txt'" --serial1 "file:$tmp/no/such/dir/com1.txt"
expect serial-bad-kind "serial" --serial1 "bogus:1"
expect unknown-option "unknown or incomplete option '--frobnicate'" --frobnicate
expect bad-exec "--exec 'vmx' must be auto, kvm, soft or interp" --exec vmx
expect initrd-without-kernel "--initrd needs --kernel" --initrd "$tmp/odd.bin"

# Drives: bad specifications, impossible placements and unusable images; the image files stay as they were.
head -c 1048576 /dev/zero >"$tmp/disk.raw"
printf 'QFI\373\000\000\000\003short' >"$tmp/bad.qcow2"
sum_before=$(md5sum "$tmp/disk.raw" "$tmp/bad.qcow2")
expect drive-missing "--drive file '$tmp/none.img' does not exist" --drive "file=$tmp/none.img"
expect drive-bad-if "--drive if='scsi' must be ide, ahci or virtio" --drive "file=$tmp/disk.raw,if=scsi"
expect drive-bad-format "--drive format='floppy' must be" --drive "file=$tmp/disk.raw,format=floppy"
expect drive-bad-key "unknown or empty key 'bogus'" --drive "file=$tmp/disk.raw,bogus=1"
expect drive-no-file "--drive needs file=PATH" --drive "if=ahci"
expect drive-bad-readonly "readonly='maybe' must be on or off" --drive "file=$tmp/disk.raw,readonly=maybe"
expect drive-port-range "IDE port 7 does not exist \\(ports 0-3\\)" --drive "file=$tmp/disk.raw,port=7"
expect drive-ahci-port-range "AHCI port 6 does not exist \\(ports 0-5\\)" --drive "file=$tmp/disk.raw,if=ahci,port=6"
expect drive-port-taken "IDE port 0 is already taken" --hda "$tmp/disk.raw" --drive "file=$tmp/disk.raw,port=0,readonly=on"
expect drive-virtio-cd "virtio-blk has no CD/DVD drives" --drive "file=$tmp/disk.raw,if=virtio,media=cdrom"
expect drive-bad-boot "--boot 'x' must be letters c" --boot x
expect_image drive-corrupt-qcow2 "bad.qcow2.*(too short|truncated|qcow2)" --drive "file=$tmp/bad.qcow2"
expect_image drive-in-use "in use|busy" --hda "$tmp/disk.raw" --drive "file=$tmp/disk.raw,if=virtio"
expect_image drive-directory "is a directory" --cdrom "$tmp"
sum_after=$(md5sum "$tmp/disk.raw" "$tmp/bad.qcow2")
[ "$sum_before" = "$sum_after" ] || { echo "FAIL: refused drives changed the image files"; fails=$((fails + 1)); }

[ $fails -eq 0 ]
