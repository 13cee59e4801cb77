#!/usr/bin/env bash
# platform-bench.sh OUTDIR SRCROOT - boot time to VIREO-BOOT-OK with 1, 2 and 4 vCPUs, on SeaBIOS and on
# OVMF, Vireo's software CPU against QEMU TCG with the same settings.
#
# Both emulators boot the same CD: make-iso-efi.sh's image (GRUB for BIOS and for UEFI, the Debian kernel
# and the busybox initramfs, workload none), from a CD drive on the same controller (CD_BUS: ahci, as the
# Linux presets have it, or ide), with the same RAM and vCPU count.
# Vireo runs --exec soft (the recompiler, one host thread per vCPU); QEMU runs -accel tcg with the
# thread model of QEMU_THREAD (default multi: one host thread per vCPU too).  The time is host seconds
# from process start to the VIREO-BOOT-OK line on COM1; the guest's own "cpus=" count is checked so
# that a run where CPUs failed to come up is marked, not counted as fast.  The table gives each
# median and its ratio to QEMU's in the same configuration (lower is faster).
#
# Knobs (environment): RUNS=1, MEM_MB=512, CPUS="1 2 4", FIRMWARE="seabios ovmf", QEMU_THREAD=multi,
# CD_BUS=ahci|ide, LIMIT=600 seconds per run.
set -u
out=${1:?usage: platform-bench.sh OUTDIR SRCROOT}
src=${2:?usage: platform-bench.sh OUTDIR SRCROOT}
RUNS=${RUNS:-1}
MEM_MB=${MEM_MB:-512}
CPUS=${CPUS:-1 2 4}
FIRMWARE=${FIRMWARE:-seabios ovmf}
QEMU_THREAD=${QEMU_THREAD:-multi}
CD_BUS=${CD_BUS:-ahci}
LIMIT=${LIMIT:-600}
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
guests="$src/../shared/guests"
dir="$out/bench-platform"
mkdir -p "$dir"
rows="$dir/runs.tsv"
: >"$rows"

need() { command -v "$1" >/dev/null || { echo "platform-bench: $1 is missing (apt-get install $2)" >&2; exit 1; }; }
need qemu-system-x86_64 qemu-system-x86
[ -r "$OVMF_CODE" ] || { echo "platform-bench: $OVMF_CODE is missing (apt-get install ovmf)" >&2; exit 1; }
[ -x "$guests/make-iso-efi.sh" ] || { echo "platform-bench: $guests/make-iso-efi.sh is missing" >&2; exit 1; }


echo "== image"
iso="$dir/guest-efi.iso"
"$guests/make-iso-efi.sh" "$iso" none >"$dir/iso.log" 2>&1 || { echo "platform-bench: make-iso-efi.sh failed (see $dir/iso.log)" >&2; exit 1; }
case "$CD_BUS" in
ahci) vcd=(--drive "file=$iso,if=ahci,media=cdrom")
      qcd=(-drive "file=$iso,if=none,id=cd0,media=cdrom,readonly=on" -device ahci,id=ahci0 -device ide-cd,drive=cd0,bus=ahci0.0) ;;
ide)  vcd=(--cdrom "$iso"); qcd=(-cdrom "$iso") ;;
*)    echo "platform-bench: CD_BUS must be ahci or ide" >&2; exit 1 ;;
esac

# run NAME FW CPUS RUN command... (the command writes COM1 to $serial); stops the emulator once the
# guest has printed its info line after VIREO-BOOT-OK (or at LIMIT).
run() {
    local name=$1 fw=$2 cpus=$3 r=$4
    shift 4
    local t0 pid boot="" now seen
    t0=$(date +%s.%N)
    "$@" >"$dir/$name-$fw-$cpus.$r.out" 2>&1 </dev/null &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        now=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        if [ -z "$boot" ] && grep -aq "VIREO-BOOT-OK" "$serial" 2>/dev/null; then
            boot=$now
        fi
        if [ -n "$boot" ] && grep -aq "VIREO-INFO" "$serial" 2>/dev/null; then
            break
        fi
        [ "${now%.*}" -ge "$LIMIT" ] && break
        sleep 0.1
    done
    sleep 0.5
    kill -TERM "$pid" 2>/dev/null
    sleep 1
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    seen=$(grep -a -o 'VIREO-INFO .*cpus=[0-9]*' "$serial" 2>/dev/null | sed 's/.*cpus=//' | head -n 1)
    local ok=ok
    [ "${seen:-0}" = "$cpus" ] || ok="WRONG(cpus=${seen:-none})"
    [ -n "$boot" ] || ok="NO-BOOT"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$fw" "$cpus" "$r" "${boot:--}" "$ok" >>"$rows"
    printf '   %-6s %-8s %s vCPU #%s boot=%ss %s\n' "$name" "$fw" "$cpus" "$r" "${boot:--}" "$ok"
}

for ((r = 1; r <= RUNS; r++)); do
    for fw in $FIRMWARE; do
        for n in $CPUS; do
            echo "== run $r: $fw, $n vCPU(s)"
            vfw=() qfw=()
            if [ "$fw" = ovmf ]; then
                cp "$OVMF_VARS" "$dir/vireo-vars.fd"
                cp "$OVMF_VARS" "$dir/qemu-vars.fd"
                vfw=(--firmware efi --efi-code "$OVMF_CODE" --efi-vars "$dir/vireo-vars.fd")
                qfw=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
                     -drive "if=pflash,format=raw,unit=1,file=$dir/qemu-vars.fd")
            fi
            serial="$dir/vireo.serial"; rm -f "$serial"
            run vireo "$fw" "$n" "$r" "$out/stage/bin/vireo-vm" --exec soft --headless --cpus "$n" \
                --memory "${MEM_MB}M" "${vfw[@]}" "${vcd[@]}" --boot d --serial1 "file:$serial" \
                --log "$dir/vireo-$fw-$n.$r.log"
            serial="$dir/qemu.serial"; rm -f "$serial"
            run qemu "$fw" "$n" "$r" qemu-system-x86_64 -machine pc -accel "tcg,thread=$QEMU_THREAD" -smp "$n" \
                -m "$MEM_MB" "${qfw[@]}" -display none -monitor none -nic none -no-reboot \
                -serial "file:$serial" "${qcd[@]}" -boot d
        done
    done
done

echo
echo "# platform-bench $(date -u +%FT%TZ): $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) host cpus"
echo "# $(basename "$(ls /boot/vmlinuz-* | sort -V | tail -n 1)"), ${MEM_MB} MiB, CD boot (make-iso-efi.sh) on $CD_BUS; QEMU -accel tcg,thread=$QEMU_THREAD"
echo "# seconds from process start to VIREO-BOOT-OK (host clock), median over $RUNS run(s); ratio = Vireo / QEMU"
awk -F'\t' '
function med(s,   n, a, i, j, t) {
    n = split(s, a, " "); if (n == 0) return ""
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $2 " " $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
  if ($5 != "-" && $6 == "ok") v[$1, k] = v[$1, k] " " $5
  if ($6 != "ok") bad[$1, k] = $6 }
END {
  printf "%-9s %5s %10s %10s %7s  %s\n", "firmware", "vCPUs", "vireo_s", "qemu_s", "ratio", "notes"
  for (i = 1; i <= n; i++) {
    k = order[i]; split(k, f, " ")
    a = med(v["vireo", k]); b = med(v["qemu", k])
    note = ""
    if (("vireo", k) in bad) note = note " vireo:" bad["vireo", k]
    if (("qemu", k) in bad) note = note " qemu:" bad["qemu", k]
    printf "%-9s %5s %10s %10s %7s %s\n", f[1], f[2], (a == "" ? "-" : a), (b == "" ? "-" : b),
           (a != "" && b != "" && b > 0 ? sprintf("%.2f", a / b) : "-"), note
  }
}' "$rows" | tee "$dir/summary.txt"
