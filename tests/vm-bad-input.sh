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

[ $fails -eq 0 ]
