#!/usr/bin/env bash
# display-bench.sh OUTDIR SRCROOT - screen updates delivered while the guest redraws its whole screen, through Vireo's VNC server, RDP server and console window, against QEMU TCG's VNC server.
#
# The guest boots the test ISO (the Debian kernel, the busybox initramfs with the bochs DRM driver, as in
# tests/screen-seabios.sh) with an /init of its own: it fills two frames the size of /dev/fb0 (black, and
# grey 0x55), then writes them to /dev/fb0 in turn with dd, forever, printing DISPBENCH-START on COM1 when
# it begins and "DISPBENCH-FPS FRAMES CENTISECONDS" about every second.  Both emulators run it on their
# software CPU with the same ISO and RAM.
#
# Per row, once the guest draws: DURATION seconds of frames delivered to the client, and the emulator
# process's CPU time over the same interval (utime + stime from /proc/PID/stat), so fps and CPU ms per
# frame.  Most of that CPU is the emulated guest's own redraw loop: the process is near one core busy
# with or without a client, so the screen's cost shows mostly as guest time lost.  The VNC and RDP rows
# therefore also watch IDLE seconds before the client connects (no client: nothing renders the screen)
# and show the guest's frame rate then ("guest idle") beside the rate while serving ("guest fps", what
# the guest's own loop managed; its frames go through bochs-drm's shadow framebuffer, which the
# kernel copies to video memory on its own schedule).
#   vireo-vnc  vireo-vm --vnc, tools/bench/vnc-count.py (one incremental request outstanding, Raw)
#   qemu-vnc   qemu-system-x86_64 -accel tcg -vga std -vnc, the same client
#   vireo-rdp  vireo-vm --rdp, tests/lib/rdp-client.c counting surface frame markers
#   vireo-gtk  vireo-vm's console window under Xvfb, frames counted by its draw callback
#              (VIREO_CONSOLE_STATS=1 logs them every second)
# QEMU has no RDP server; its GTK window (-display gtk) has no frame counter, so it has no row.
# Vireo's VNC, RDP and window all refresh at most every 33 ms (30 fps); QEMU's VNC adapts its own rate.
#
# Knobs: DURATION=10 (seconds measured), IDLE=4, RUNS=1 (the table shows medians), ROWS="vireo-vnc qemu-vnc
# vireo-rdp vireo-gtk", MEM=256M, LIMIT=240 (seconds a boot may take to start drawing).
set -u
out=${1:?usage: display-bench.sh OUTDIR SRCROOT}
src=${2:?usage: display-bench.sh OUTDIR SRCROOT}
export VIREO_OUT="$out" VIREO_SRC="$src" VIREO_BIN="$out/stage/bin"
DURATION=${DURATION:-10}
IDLE=${IDLE:-4}
RUNS=${RUNS:-1}
ROWS=${ROWS:-vireo-vnc qemu-vnc vireo-rdp vireo-gtk}
MEM=${MEM:-256M}
LIMIT=${LIMIT:-240}
source "$src/tests/lib/storage.bash"
storage_need xorriso qemu-system-x86_64 python3 Xvfb cc pkg-config
export WLOG_LEVEL=OFF # FreeRDP's own log lines
dir="$out/bench/display"
mkdir -p "$dir"
tck=$(getconf CLK_TCK)
vm_pid= client_pid= xvfb_pid=
cleanup() {
    local p
    for p in $client_pid $vm_pid $xvfb_pid; do kill -KILL "$p" 2>/dev/null; done
}
trap cleanup EXIT

# ---- the guest
cc -std=gnu11 -O1 -o "$dir/rdp-client" "$src/tests/lib/rdp-client.c" $(pkg-config --cflags --libs freerdp2 winpr2) \
    >"$dir/cc.log" 2>&1 || { cat "$dir/cc.log"; echo "display-bench: cannot build tests/lib/rdp-client.c" >&2; exit 1; }
overlay() {
    local root
    root=$(mktemp -d)
    cat > "$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read -r ko; do insmod "/lib/modules/$ko" 2>/dev/null; done < /lib/modules/load-order
i=0; while [ $i -lt 20 ] && [ ! -e /dev/fb0 ]; do sleep 1; i=$((i + 1)); done
[ -e /dev/fb0 ] || { echo "DISPBENCH-FAIL no /dev/fb0"; poweroff -f; }
echo 0 > /sys/class/graphics/fbcon/cursor_blink 2>/dev/null
stride=$(cat /sys/class/graphics/fb0/stride)
size=$(cat /sys/class/graphics/fb0/virtual_size)
bytes=$((stride * ${size#*,}))
head -c "$bytes" /dev/zero > /frame-a
head -c "$bytes" /dev/zero | tr '\000' '\125' > /frame-b
echo "DISPBENCH-START ${size%,*}x${size#*,} stride $stride bpp $(cat /sys/class/graphics/fb0/bits_per_pixel)"
n=0
read -r up _ < /proc/uptime
last=${up%.*}${up#*.}
while :; do
    dd if=/frame-a of=/dev/fb0 bs="$bytes" count=1 2>/dev/null
    dd if=/frame-b of=/dev/fb0 bs="$bytes" count=1 2>/dev/null
    n=$((n + 2))
    read -r up _ < /proc/uptime
    now=${up%.*}${up#*.}
    if [ $((now - last)) -ge 100 ]; then
        echo "DISPBENCH-FPS $n $((now - last))"
        n=0; last=$now
    fi
done
INIT
    chmod 755 "$root/init"
    (cd "$root" && echo init | cpio --quiet -o -H newc -R 0:0) | gzip -9 -n > "$1"
    rm -rf "$root"
}
initrd="$dir/initrd.gz" iso="$dir/display.iso"
if [ ! -s "$iso" ] || [ "$0" -nt "$iso" ] || [ "$GUESTS_SRC/make-initramfs.sh" -nt "$iso" ]; then
    MODULES=bochs "$GUESTS_SRC/make-initramfs.sh" "$initrd.base" >/dev/null || { echo "display-bench: make-initramfs.sh failed" >&2; exit 1; }
    overlay "$initrd.overlay"
    cat "$initrd.base" "$initrd.overlay" > "$initrd"
    rm -f "$initrd.base" "$initrd.overlay"
    INITRD="$initrd" "$GUESTS_SRC/make-iso.sh" "$iso" none >/dev/null || { echo "display-bench: make-iso.sh failed" >&2; exit 1; }
fi

# ---- helpers
cpu_ticks() { # PID: utime + stime
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}
free_display() { # a display number whose port (5900 + N) is free now
    python3 -c '
import random, socket
for _ in range(200):
    n = random.randint(300, 3000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 5900 + n)); print(n); break
    except OSError: pass
    finally: s.close()'
}
wait_for() { # FILE PATTERN SECONDS PID: 0 once PATTERN is in FILE
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -aq -- "$2" "$1" 2>/dev/null && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
stop_all() {
    local p
    for p in $client_pid $vm_pid; do kill -TERM "$p" 2>/dev/null; done
    for p in $client_pid $vm_pid; do wait "$p" 2>/dev/null; done
    client_pid= vm_pid=
}
# guest_fps SERIAL FROM_LINE TO_LINE: the guest's frames per second over those lines of COM1
guest_fps() {
    tr -d '\r' < "$1" | sed -n "$(($2 + 1)),$3p" |
        awk '$1 == "DISPBENCH-FPS" { f += $2; c += $3 } END { if (c > 0) printf "%.1f", f * 100 / c; else print "-" }'
}
lines() { tr -d '\r' < "$1" 2>/dev/null | wc -l; }

vireo_start() { # SERIAL LOG EXTRA...
    local serial=$1 log=$2; shift 2
    : > "$serial"
    "$VIREO_BIN/vireo-vm" --exec soft --memory "$MEM" --vga std --cdrom "$iso" --boot d --serial1 "file:$serial" \
        --log "$log" --timeout $((LIMIT + DURATION + 120)) "$@" >"$log.out" 2>&1 &
    vm_pid=$!
}

# measure_client ROW SERIAL CLIENT...: runs the client, which prints "measuring" once frames flow and
# "frames N bytes B seconds S" at the end; CPU is sampled at "measuring" and when the client ends.
measure_client() {
    local row=$1 serial=$2; shift 2
    local cout="$dir/$row.client" i0 i1 g0 g1
    i0=$(cpu_ticks $vm_pid) g0=$(lines "$serial")
    sleep "$IDLE"
    i1=$(cpu_ticks $vm_pid) g1=$(lines "$serial")
    "$@" > "$cout" 2>&1 &
    client_pid=$!
    if ! wait_for "$cout" measuring $((LIMIT / 2)) $client_pid; then
        echo "   $row: no frames reached the client: $(tail -n 2 "$cout" | tr '\n' ' ')"
        return 1
    fi
    local c0 l0 c1 l1
    c0=$(cpu_ticks $vm_pid) l0=$(lines "$serial")
    wait $client_pid
    c1=$(cpu_ticks $vm_pid) l1=$(lines "$serial")
    client_pid=
    local frames secs bytes
    read -r frames bytes secs < <(awk '$1 == "frames" { print $2, $4, $6 }' "$cout")
    [ -n "${frames:-}" ] && [ -n "$c1" ] || { echo "   $row: no result: $(tail -n 2 "$cout" | tr '\n' ' ')"; return 1; }
    grep -q "the server ended the session\|^stopped:" "$cout" && echo "   $row: cut short: $(grep -m1 "ended\|^stopped:" "$cout")"
    record "$row" "$frames" "$secs" $((c1 - c0)) "$(guest_fps "$serial" "$l0" "$l1")" "$bytes" \
        "$(awk -v t=$((i1 - i0)) -v s="$IDLE" -v k="$tck" 'BEGIN { printf "%.3f", t / k / s }')" "$(guest_fps "$serial" "$g0" "$g1")"
}
# record ROW FRAMES SECONDS CPU_TICKS GUEST_FPS BYTES IDLE_CPU_PER_SECOND IDLE_GUEST_FPS ("-": none)
# runs.tsv: row run fps cpu_ms_per_frame guest_fps MiB/s frames cpu_s idle_cpu_per_s idle_guest_fps
record() {
    awk -v r="$1" -v f="$2" -v s="$3" -v t="$4" -v g="$5" -v b="$6" -v idle="$7" -v gi="$8" -v tck="$tck" -v run="$run" 'BEGIN {
        fps = s > 0 ? f / s : 0
        ms = f > 0 ? t * 1000 / tck / f : 0
        mibs = b == "-" ? "-" : sprintf("%.1f", b / 1048576 / (s > 0 ? s : 1))
        printf "%s\t%d\t%.1f\t%.2f\t%s\t%s\t%d\t%.2f\t%s\t%s\n", r, run, fps, ms, g, mibs, f, t / tck, idle, gi
    }' >> "$rows"
    echo "   $1: $2 frames in $3 s, $(awk -v t="$4" -v k="$tck" 'BEGIN { printf "%.2f", t / k }') s CPU, guest $5 fps (no client: $7 CPU s/s, guest $8 fps)"
}

run_vireo_vnc() {
    local serial="$dir/vireo-vnc.com1" disp
    disp=$(free_display)
    vireo_start "$serial" "$dir/vireo-vnc.log" --headless --vnc "127.0.0.1:$((5900 + disp))" --vnc-no-auth
    wait_for "$serial" DISPBENCH-START "$LIMIT" $vm_pid || { echo "   vireo-vnc: the guest never drew (see $serial)"; stop_all; return; }
    measure_client vireo-vnc "$serial" python3 "$src/tools/bench/vnc-count.py" 127.0.0.1 $((5900 + disp)) "$DURATION" 60
    stop_all
}
run_qemu_vnc() {
    local serial="$dir/qemu-vnc.com1" disp
    disp=$(free_display)
    : > "$serial"
    qemu-system-x86_64 -accel tcg -m "$MEM" -vga std -display none -vnc "127.0.0.1:$disp" -no-reboot \
        -serial "file:$serial" -cdrom "$iso" -boot d >"$dir/qemu-vnc.out" 2>&1 &
    vm_pid=$!
    wait_for "$serial" DISPBENCH-START "$LIMIT" $vm_pid || { echo "   qemu-vnc: the guest never drew (see $serial)"; stop_all; return; }
    measure_client qemu-vnc "$serial" python3 "$src/tools/bench/vnc-count.py" 127.0.0.1 $((5900 + disp)) "$DURATION" 60
    stop_all
}
run_vireo_rdp() {
    local serial="$dir/vireo-rdp.com1" port
    port=$((5900 + $(free_display)))
    printf 'bench\n' > "$dir/rdp.pw"
    vireo_start "$serial" "$dir/vireo-rdp.log" --headless --rdp "127.0.0.1:$port" --rdp-user vireo \
        --rdp-password-file "$dir/rdp.pw" --rdp-cert-dir "$dir/rdp-certs"
    wait_for "$serial" DISPBENCH-START "$LIMIT" $vm_pid || { echo "   vireo-rdp: the guest never drew (see $serial)"; stop_all; return; }
    measure_client vireo-rdp "$serial" "$dir/rdp-client" 127.0.0.1 "$port" vireo bench "$DURATION" 0
    stop_all
}
run_vireo_gtk() {
    local serial="$dir/vireo-gtk.com1" log="$dir/vireo-gtk.log" xdisp
    xdisp=$(free_display)
    Xvfb ":$xdisp" -screen 0 1280x1024x24 -nolisten tcp >"$dir/xvfb.log" 2>&1 &
    xvfb_pid=$!
    sleep 1
    : > "$log"
    DISPLAY=":$xdisp" VIREO_CONSOLE_STATS=1 vireo_start "$serial" "$log"
    if wait_for "$serial" DISPBENCH-START "$LIMIT" $vm_pid && wait_for "$log" "stats: [1-9]" 30 $vm_pid; then
        local c0 c1 l0 l1 g0 g1 t0 t1
        g0=$(wc -l < "$log") c0=$(cpu_ticks $vm_pid) l0=$(lines "$serial") t0=$(date +%s.%N)
        sleep "$DURATION"
        g1=$(wc -l < "$log") c1=$(cpu_ticks $vm_pid) l1=$(lines "$serial") t1=$(date +%s.%N)
        # The stats lines logged in between: one a second, each with that second's frames.
        local frames secs
        read -r frames secs < <(sed -n "$((g0 + 1)),${g1}p" "$log" |
            awk '/ stats: [0-9]+ frames drawn in the last second/ { for (i = 1; i < NF; i++) if ($i == "stats:") f += $(i + 1); n++ }
                 END { print f + 0, n + 0 }')
        if [ "$secs" -gt 0 ] && [ -n "$c1" ]; then
            # CPU over the wall interval, scaled to the seconds the stats lines cover.
            local ticks
            ticks=$(awk -v c="$((c1 - c0))" -v s="$secs" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", c * s / (b - a) }')
            record vireo-gtk "$frames" "$secs" "$ticks" "$(guest_fps "$serial" "$l0" "$l1")" - - -
        else
            echo "   vireo-gtk: no frame statistics in $log"
        fi
    else
        echo "   vireo-gtk: the guest never drew, or the window logged no frames (see $serial, $log)"
    fi
    stop_all
    kill -TERM $xvfb_pid 2>/dev/null; wait $xvfb_pid 2>/dev/null; xvfb_pid=
}

rows="$dir/runs.tsv"
: > "$rows"
for ((run = 1; run <= RUNS; run++)); do
    for row in $ROWS; do
        echo "== run $run: $row"
        case $row in
            vireo-vnc) run_vireo_vnc ;;
            qemu-vnc) run_qemu_vnc ;;
            vireo-rdp) run_vireo_rdp ;;
            vireo-gtk) run_vireo_gtk ;;
            *) echo "display-bench: unknown row '$row'" >&2; exit 1 ;;
        esac
    done
done

# ---- the table: medians over the runs
median() { # ROW COLUMN
    awk -F'\t' -v r="$1" -v k="$2" '$1 == r && $k != "-" { print $k }' "$rows" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
{
    echo "display benchmark: ${DURATION}s per row, medians of $RUNS run(s), guest $MEM on the software CPU"
    printf '%-10s %7s %13s %10s %11s %8s\n' row fps "CPU ms/frame" "guest fps" "guest idle" "MiB/s"
    for row in $ROWS; do
        printf '%-10s %7s %13s %10s %11s %8s\n' "$row" "$(median "$row" 3)" "$(median "$row" 4)" "$(median "$row" 5)" \
            "$(median "$row" 10)" "$(median "$row" 6)"
    done
    if [[ " $ROWS " == *" vireo-vnc "* && " $ROWS " == *" qemu-vnc "* ]]; then
        echo "Vireo/QEMU (VNC): fps $(ratio "$(median vireo-vnc 3)" "$(median qemu-vnc 3)")," \
            "CPU ms/frame $(ratio "$(median vireo-vnc 4)" "$(median qemu-vnc 4)") (below 1: Vireo spends less)," \
            "guest fps $(ratio "$(median vireo-vnc 5)" "$(median qemu-vnc 5)")"
    fi
    echo "QEMU GTK: not measured (QEMU's GTK window has no frame counter); QEMU has no RDP server."
} | tee "$dir/summary.txt"
