#!/usr/bin/env bash
# disk-bench.sh OUTDIR SRCROOT - disk throughput inside the guest on each controller and image format,
# Vireo's software CPU against QEMU TCG with the same guest and the same (freshly created) image files.
#
# The guest boots from the storage-test ISO (tests/lib/storage.bash: the Debian kernel, the busybox
# initramfs with the storage drivers, and tools/bench/guest/diskbench.c built statically) and runs
# diskbench on its disk: sequential write and read of BENCH_MB MiB in 1 MiB O_DIRECT requests, then
# BENCH_OPS random 4 KiB writes and reads.  The table shows MiB/s (sequential) and IOPS (random) for each
# emulator and Vireo's ratio to QEMU (above 1: Vireo is faster).  Guest clocks time each pass.
#
# Knobs: CONTROLLERS="ide ahci virtio", FORMATS="raw vdi qcow2", BENCH_MB=32, BENCH_OPS=1000, LIMIT=600.
set -u
out=${1:?usage: disk-bench.sh OUTDIR SRCROOT}
src=${2:?usage: disk-bench.sh OUTDIR SRCROOT}
export VIREO_OUT="$out" VIREO_SRC="$src" VIREO_BIN="$out/stage/bin"
CONTROLLERS=${CONTROLLERS:-ide ahci virtio}
FORMATS=${FORMATS:-raw vdi qcow2}
BENCH_MB=${BENCH_MB:-32}
BENCH_OPS=${BENCH_OPS:-1000}
LIMIT=${LIMIT:-600}
source "$src/tests/lib/storage.bash"
storage_need xorriso qemu-img qemu-system-x86_64 gcc
dir="$out/bench/disk"
mkdir -p "$dir"
gcc -static -O2 -o "$dir/diskbench" "$src/tools/bench/guest/diskbench.c" || { echo "disk-bench: cannot build diskbench (needs libc6-dev)" >&2; exit 1; }
initrd=$(storage_initrd "$dir/diskbench") || exit 1
iso="$dir/bench.iso"
INITRD="$initrd" EXTRA_APPEND="vireo.storage=bench vireo.benchmb=$BENCH_MB vireo.benchops=$BENCH_OPS" \
    "$GUESTS_SRC/make-iso.sh" "$iso" none >/dev/null || { echo "disk-bench: make-iso.sh failed" >&2; exit 1; }
rows="$dir/runs.tsv"
: > "$rows"

run_qemu() { # serial ctl fmt img
    local serial=$1 ctl=$2 fmt=$3 img=$4 disk
    case $ctl in
        ide) disk=(-drive "file=$img,format=$fmt,if=ide,index=0") ;;
        ahci) disk=(-device ahci,id=ahci0 -drive "if=none,id=hd,file=$img,format=$fmt" -device ide-hd,drive=hd,bus=ahci0.0) ;;
        virtio) disk=(-drive "file=$img,format=$fmt,if=virtio") ;;
    esac
    : > "$serial"
    qemu-system-x86_64 -accel tcg -m 256 -display none -no-reboot -serial "file:$serial" \
        -drive "file=$iso,media=cdrom,if=ide,index=2" -boot d "${disk[@]}" >/dev/null 2>&1 &
    local pid=$! start=$SECONDS
    while [ $((SECONDS - start)) -lt "$LIMIT" ] && kill -0 $pid 2>/dev/null; do
        grep -aq STORAGE-DONE "$serial" && break
        sleep 1
    done
    kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
}

for ctl in $CONTROLLERS; do
    for fmt in $FORMATS; do
        for emu in vireo qemu; do
            img="$dir/disk.$fmt"
            rm -f "$img"
            "$VIREO_BIN/vireo-img" create --format "$fmt" "$img" $((BENCH_MB + 16))M >/dev/null ||
                { echo "disk-bench: vireo-img create failed" >&2; exit 1; }
            serial="$dir/$emu-$ctl-$fmt.txt"
            echo "== $emu $ctl $fmt"
            if [ $emu = vireo ]; then
                storage_boot "$serial" "$LIMIT" STORAGE-DONE --cdrom "$iso" --boot d --drive "file=$img,if=$ctl,format=$fmt"
            else
                run_qemu "$serial" "$ctl" "$fmt" "$img"
            fi
            grep -a '^DISKBENCH ' "$serial" | tr -d '\r' | while read -r _ test secs mibs iops; do
                printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$emu" "$ctl" "$fmt" "$test" "$mibs" "$iops" >> "$rows"
            done
            grep -aq '^DISKBENCH rand-read' "$serial" || echo "   (no complete result from $emu; see $serial)"
        done
    done
done

echo
printf '%-7s %-6s %-11s %12s %12s %8s\n' controller format test vireo qemu ratio
for ctl in $CONTROLLERS; do
    for fmt in $FORMATS; do
        for test in seq-write seq-read rand-write rand-read; do
            col=5; unit="MiB/s"; case $test in rand-*) col=6; unit="IOPS" ;; esac
            v=$(awk -F'\t' -v c=$ctl -v f=$fmt -v t=$test -v k=$col '$1=="vireo" && $2==c && $3==f && $4==t {print $k}' "$rows")
            q=$(awk -F'\t' -v c=$ctl -v f=$fmt -v t=$test -v k=$col '$1=="qemu" && $2==c && $3==f && $4==t {print $k}' "$rows")
            r=$(awk -v v="${v:-0}" -v q="${q:-0}" 'BEGIN { if (q > 0 && v > 0) printf "%.2f", v / q; else print "-" }')
            printf '%-7s %-6s %-11s %12s %12s %8s\n' "$ctl" "$fmt" "$test" "${v:--} $unit" "${q:--} $unit" "$r"
        done
    done
done | tee "$dir/summary.txt"
