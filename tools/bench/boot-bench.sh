#!/usr/bin/env bash
# boot-bench.sh OUTDIR SRCROOT - Vireo's software CPU against QEMU TCG and Bochs on the same Linux guest.
#
# Vireo runs twice: vireo-rec (--exec soft, the recompiler) and vireo-interp (--exec interp, the
# interpreter alone).  The guest is the Debian kernel with the busybox initramfs of ../shared/guests/make-initramfs.sh
# (workloads md5 and gzip).  Vireo and QEMU boot it directly (kernel + initrd + command line);
# Bochs cannot, so it boots the same kernel and initramfs from the BIOS CD of make-iso.sh.
# Per run: seconds from process start to "VIREO-BOOT-OK" on the serial line (host clock), the
# in-guest md5 and gzip times (host clock between the workload's BEGIN and SECONDS lines), and
# the peak RSS (GNU time).  The table prints each figure and its ratio to QEMU TCG's.
#
# Knobs (environment): RUNS=1, MEM_MB=512, MD5_MB=16, GZIP_MB=4, BOCHS=1 (0 skips Bochs),
# QEMU_THREAD=single (QEMU's TCG in one thread, like Vireo's software CPU; "multi" for MTTCG),
# KERNEL=/boot/vmlinuz-<newest>, LIMIT=1200 seconds per run (then the emulator is stopped).
set -u
out=${1:?usage: boot-bench.sh OUTDIR SRCROOT}
src=${2:?usage: boot-bench.sh OUTDIR SRCROOT}
RUNS=${RUNS:-1}
MEM_MB=${MEM_MB:-512}
MD5_MB=${MD5_MB:-16}
GZIP_MB=${GZIP_MB:-4}
BOCHS=${BOCHS:-1}
QEMU_THREAD=${QEMU_THREAD:-single}
LIMIT=${LIMIT:-1200}
KERNEL=${KERNEL:-$(ls /boot/vmlinuz-* | sort -V | tail -n 1)}
guests="$src/../shared/guests"
dir="$out/bench"
mkdir -p "$dir"
rows="$dir/runs.tsv"
: >"$rows"
APPEND="console=ttyS0 panic=-1 vireo.workload=all vireo.md5mb=$MD5_MB vireo.gzipmb=$GZIP_MB"

need() { command -v "$1" >/dev/null || { echo "boot-bench: $1 is missing (apt-get install $2)" >&2; exit 1; }; }
need qemu-system-x86_64 qemu-system-x86
need /usr/bin/time time
[ -x "$guests/make-initramfs.sh" ] || { echo "boot-bench: $guests/make-initramfs.sh is missing" >&2; exit 1; }

echo "== images"
"$guests/make-initramfs.sh" "$dir/initramfs.cpio.gz" >/dev/null
if [ "$BOCHS" = 1 ]; then
    if ! command -v bochs >/dev/null || ! INITRD="$dir/initramfs.cpio.gz" EXTRA_APPEND="vireo.md5mb=$MD5_MB vireo.gzipmb=$GZIP_MB" \
        "$guests/make-iso.sh" "$dir/guest.iso" all >/dev/null 2>&1; then
        echo "   Bochs skipped: needs bochs, bochsbios, vgabios and make-iso.sh's isolinux/xorriso"
        BOCHS=0
    fi
fi

# First host time (seconds since t0, 0.1 s resolution) a pattern appears in a growing file.
watch_serial() {
    local file=$1 t0=$2 pid=$3 stamps=$4
    local boot="" b5="" e5="" bg="" eg="" now
    poll() {
        now=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        [ -z "$boot" ] && grep -aq "VIREO-BOOT-OK" "$file" 2>/dev/null && boot=$now
        [ -z "$b5" ] && grep -aq "VIREO-WORKLOAD-BEGIN md5" "$file" 2>/dev/null && b5=$now
        [ -z "$e5" ] && grep -aq "VIREO-WORKLOAD-SECONDS.* md5" "$file" 2>/dev/null && e5=$now
        [ -z "$bg" ] && grep -aq "VIREO-WORKLOAD-BEGIN gzip" "$file" 2>/dev/null && bg=$now
        [ -z "$eg" ] && grep -aq "VIREO-WORKLOAD-SECONDS.* gzip" "$file" 2>/dev/null && eg=$now
    }
    while kill -0 "$pid" 2>/dev/null; do
        poll
        if grep -aq "VIREO-DONE" "$file" 2>/dev/null || [ "${now%.*}" -ge "$LIMIT" ]; then
            sleep 1
            # Guests without ACPI halt instead of powering off: end the emulator itself (the child of
            # GNU time), so that time still reports its peak memory.
            pkill -TERM -P "$pid" 2>/dev/null
            break
        fi
        sleep 0.1
    done
    # A guest that powers off right after its last line (QEMU with ACPI) can end the emulator
    # between two polls: one more pass sees those lines, at most one poll interval late.
    poll
    echo "$boot $b5 $e5 $bg $eg" >"$stamps"
}

# run NAME RUN command... (the command writes the guest's COM1 to $serial)
run() {
    local name=$1 r=$2
    shift 2
    local t0 pid
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$dir/$name.$r.rss" "$@" >"$dir/$name.$r.out" 2>&1 </dev/null &
    pid=$!
    watch_serial "$serial" "$t0" "$pid" "$dir/$name.$r.stamps"
    wait "$pid" 2>/dev/null
    local boot b5 e5 bg eg md5 gz rss result
    read -r boot b5 e5 bg eg <"$dir/$name.$r.stamps"
    md5=$(awk -v a="$b5" -v b="$e5" 'BEGIN { if (a != "" && b != "") printf "%.2f", b - a; else print "-" }')
    gz=$(awk -v a="$bg" -v b="$eg" 'BEGIN { if (a != "" && b != "") printf "%.2f", b - a; else print "-" }')
    rss=$(tail -n 1 "$dir/$name.$r.rss" 2>/dev/null | grep -E '^[0-9]+$' || echo "-")
    result=$(grep -a "VIREO-WORKLOAD-RESULT md5" "$serial" | awk '{print $3}' | tr -d '\r')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$r" "${boot:--}" "$md5" "$gz" "$rss" "${result:--}" >>"$rows"
    printf '   %-12s #%s boot=%ss md5=%ss gzip=%ss rss=%sKiB md5sum=%s\n' "$name" "$r" "${boot:--}" "$md5" "$gz" "$rss" "${result:--}"
}

for ((r = 1; r <= RUNS; r++)); do
    echo "== run $r"
    serial="$dir/vireo-rec.serial"; rm -f "$serial"
    run vireo-rec "$r" "$out/stage/bin/vireo-vm" --exec soft --memory "${MEM_MB}M" --kernel "$KERNEL" \
        --initrd "$dir/initramfs.cpio.gz" --append "$APPEND" --serial1 "file:$serial"
    serial="$dir/vireo-interp.serial"; rm -f "$serial"
    run vireo-interp "$r" "$out/stage/bin/vireo-vm" --exec interp --memory "${MEM_MB}M" --kernel "$KERNEL" \
        --initrd "$dir/initramfs.cpio.gz" --append "$APPEND" --serial1 "file:$serial"
    serial="$dir/qemu.serial"; rm -f "$serial"
    run qemu-tcg "$r" qemu-system-x86_64 -machine pc -accel "tcg,thread=$QEMU_THREAD" -smp 1 -m "$MEM_MB" \
        -display none -monitor none -nic none -no-reboot -serial "file:$serial" \
        -kernel "$KERNEL" -initrd "$dir/initramfs.cpio.gz" -append "$APPEND"
    if [ "$BOCHS" = 1 ]; then
        serial="$dir/bochs.serial"; rm -f "$serial"
        # Debian's Bochs: no 'nogui' display, so an idle VNC display; the debugger is told to continue.
        cat >"$dir/bochsrc" <<BOCHSRC
display_library: rfb, options="timeout=0"
config_interface: textconfig
memory: guest=$MEM_MB, host=$MEM_MB
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
cpu: count=1, ips=100000000, reset_on_triple_fault=1
pci: enabled=1, chipset=i440fx
plugin_ctrl: speaker=0, sb16=0, es1370=0, e1000=0, ne2k=0, pcipnic=0, usb_uhci=0, usb_ohci=0, usb_ehci=0, usb_xhci=0
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=$dir/guest.iso, status=inserted
boot: cdrom
clock: sync=none, time0=local
com1: enabled=1, mode=file, dev=$serial
log: $dir/bochs.log
panic: action=fatal
error: action=ignore
info: action=ignore
BOCHSRC
        printf 'c\nquit\n' >"$dir/bochs.rc"
        run bochs-iso "$r" bochs -q -f "$dir/bochsrc" -rc "$dir/bochs.rc"
    fi
done

want=$(head -c $((MD5_MB * 1024 * 1024)) /dev/zero | md5sum | cut -d' ' -f1)
echo
echo "# boot-bench $(date -u +%FT%TZ): $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cpus"
echo "# $(basename "$KERNEL"), ${MEM_MB} MiB, md5 ${MD5_MB} MiB (want $want), gzip ${GZIP_MB} MiB; QEMU TCG thread=$QEMU_THREAD"
echo "# seconds (host clock), median over $RUNS run(s); ratio = median over the runs of this / QEMU TCG in the same"
echo "# run (lower is faster; pairing runs that sat close in time keeps a noisy host's drift out of the ratio)"
awk -F'\t' -v want="$want" '
function med(s,   n, a, i, j, t) {
    n = split(s, a, " "); if (n == 0) return ""
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }
  for (c = 3; c <= 6; c++) if ($c != "-") { v[$1, c] = v[$1, c] " " $c; t[$1, $2, c] = $c }
  runs[$2] = 1
  if ($7 != want) bad[$1] = 1 }
END {
  printf "%-13s %10s %7s %10s %7s %10s %7s %12s %7s  %s\n", "emulator", "boot_s", "ratio", "md5_s", "ratio", "gzip_s", "ratio", "peak_rss_kb", "ratio", "md5"
  for (i = 1; i <= n; i++) {
    e = order[i]; printf "%-13s", e
    for (c = 3; c <= 6; c++) {
      x = med(v[e, c]); rs = ""
      for (r in runs)
        if (((e, r, c) in t) && (("qemu-tcg", r, c) in t) && t["qemu-tcg", r, c] + 0 > 0)
          rs = rs " " (t[e, r, c] / t["qemu-tcg", r, c])
      q = med(rs)
      printf " %10s %7s", (x == "" ? "-" : x), (q == "" ? "-" : sprintf("%.2f", q))
    }
    printf "  %s\n", (e in bad) ? "WRONG" : "ok"
  }
}' "$rows" | tee "$dir/summary.txt"
