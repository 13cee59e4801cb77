#!/usr/bin/env bash
# vm-linux-boot.sh - direct Linux boot (x86 boot protocol) of a project-built fake bzImage under KVM: the
# 32-bit entry sees the right segments, command line, e820 map and initrd, and ends the VM with exit code 0.
set -u
if [ ! -c /dev/kvm ] || ! [ -r /dev/kvm -a -w /dev/kvm ]; then
    echo "no usable /dev/kvm on this host"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'VIREO-INITRD-0123456789abcdef-rest-of-the-ramdisk' >"$tmp/initrd"
cmdline="console=ttyS0 vireo.workload=none quiet"
timeout 120 "$VIREO_BIN/vireo-vm" --exec kvm --memory 64M --test-exit \
    --kernel "$VIREO_OUT/guests/fake-bzimage.bin" --initrd "$tmp/initrd" --append "$cmdline" \
    --serial1 "file:$tmp/com1.txt" --log "$tmp/vm.log"
rc=$?
cat "$tmp/com1.txt"
fail=0
[ $rc -eq 0 ] || { echo "exit code $rc, want 0"; fail=1; }
grep -qx "FAKE-LINUX cs=0010 ds=0018 ss=0018 if=0 pe=1" "$tmp/com1.txt" || { echo "wrong entry state"; fail=1; }
grep -qxF "FAKE-LINUX cmdline=$cmdline" "$tmp/com1.txt" || { echo "wrong command line"; fail=1; }
# RAM below the EBDA, the EBDA, the BIOS area, RAM above 1 MiB, and the ACPI tables the board placed at its top.
grep -qx "FAKE-LINUX e820=0005" "$tmp/com1.txt" || { echo "wrong e820 entry count: $(grep -a 'e820=' "$tmp/com1.txt")"; fail=1; }
grep -qx "FAKE-LINUX initrd=VIREO-INITRD-012" "$tmp/com1.txt" || { echo "initrd not where boot_params says"; fail=1; }
grep -q "direct boot: kernel" "$tmp/vm.log" || { echo "the VM log does not record the direct boot"; fail=1; }
[ $fail -eq 0 ] || { echo "--- vm.log"; tail -n 20 "$tmp/vm.log"; }
exit $fail
