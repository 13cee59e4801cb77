# storage.bash - guests and helpers for the storage tests: ISOs and disks built from ../shared/guests at
# test time (cached under $VIREO_OUT/guests, rebuilt when a script changes), a storage-test /init
# overlaid on the busybox initramfs, and a runner that boots vireo-vm until a marker shows on COM1.
: "${VIREO_BIN:?}" "${VIREO_OUT:?}" "${VIREO_SRC:?}"
GUESTS_SRC="$VIREO_SRC/../shared/guests"
GUESTS_OUT="$VIREO_OUT/guests"
STORAGE_EXEC=${STORAGE_EXEC:-soft}
mkdir -p "$GUESTS_OUT"

storage_need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || { echo "FAIL: '$t' is missing (./configure --install-deps installs it)"; exit 1; }
    done
    [ -x "$GUESTS_SRC/make-iso.sh" ] || { echo "FAIL: $GUESTS_SRC is missing (shared/ must sit beside the repository)"; exit 1; }
    ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "FAIL: no /boot/vmlinuz-* (linux-image-amd64)"; exit 1; }
}

# Rebuilds $1 with the rest of the command line when it is missing or older than the scripts it depends on.
storage_cached() {
    local out=$1; shift
    if [ ! -s "$out" ] || [ "$GUESTS_SRC/make-initramfs.sh" -nt "$out" ] || [ "$GUESTS_SRC/make-iso.sh" -nt "$out" ] ||
        [ "$GUESTS_SRC/make-disk.sh" -nt "$out" ] || [ "$VIREO_SRC/tests/lib/storage.bash" -nt "$out" ]; then
        "$@" >"$out.log" 2>&1 || { echo "FAIL: building $(basename "$out") failed:"; tail -n 20 "$out.log"; exit 1; }
    fi
}

# The storage-test /init: loads the storage drivers, prints VIREO-BOOT-OK, then does what vireo.storage= says:
#   probe  every disk: STORAGE-DISK <name> <512-byte sectors> <md5 of its first MiB> <sysfs path>, then writes
#          "VIREO-GUEST-WROTE-<name>" at byte 2 MiB with fsync (STORAGE-WROTE <name> <dd status>)
#   crash  writes numbered records to the first disk, one 512-byte sector each, fsync after each, printing
#          STORAGE-FLUSHED <n> once record n is on the disk, until the VM is killed
#   persist  prints PERSIST-UPTIME <seconds> on COM1 every 2 s and serves commands typed on COM2 (ttyS1):
#          "write TOKEN" puts PERSIST-DATA-TOKEN into sector 8192 of the first disk with fsync (PERSIST-WROTE
#          TOKEN <dd status>), "read" prints that sector, read around the page cache (PERSIST-READ <text>)
#   bench  runs /bin/diskbench (tools/bench/guest/diskbench.c, when the overlay carries it) on the first disk
#          with vireo.benchmb= MiB and vireo.benchops= random requests
storage_init_overlay() {
    local out=$1 bench=${2:-} root
    root=$(mktemp -d)
    cat > "$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read -r ko; do insmod "/lib/modules/$ko" 2>/dev/null; done < /lib/modules/load-order
i=0; while [ $i -lt 10 ] && [ -z "$(ls /sys/block | grep -E '^(sd|vd)')" ]; do sleep 1; i=$((i + 1)); done
sleep 1
echo "VIREO-BOOT-OK"
mode=none; mb=64; ops=2000
for a in $(cat /proc/cmdline); do
    case "$a" in vireo.storage=*) mode=${a#*=} ;; vireo.benchmb=*) mb=${a#*=} ;; vireo.benchops=*) ops=${a#*=} ;; esac
done
disks=$(ls /sys/block | grep -E '^(sd|vd)')
case "$mode" in
probe)
    for n in $disks; do
        echo "STORAGE-DISK $n $(cat /sys/block/$n/size) $(dd if=/dev/$n bs=1M count=1 2>/dev/null | md5sum | cut -d' ' -f1) $(readlink -f /sys/block/$n)"
    done
    for n in $disks; do
        printf 'VIREO-GUEST-WROTE-%s' "$n" | dd of=/dev/$n bs=512 seek=4096 conv=notrunc,fsync 2>/dev/null
        echo "STORAGE-WROTE $n $?"
    done
    ;;
crash)
    d=$(echo $disks | cut -d' ' -f1)
    n=1
    while :; do
        printf 'VIREO-RECORD-%08d\n' $n | dd of=/dev/$d bs=512 seek=$n conv=notrunc,fsync 2>/dev/null && echo "STORAGE-FLUSHED $n"
        n=$((n + 1))
    done
    ;;
persist)
    d=$(echo $disks | cut -d' ' -f1)
    ( while :; do echo "PERSIST-UPTIME $(cut -d' ' -f1 /proc/uptime)"; sleep 2; done ) &
    # ttyS1 stays open for the whole loop: a command sent while no one has it open is not sure to
    # reach the next reader (Linux's 8250 driver clears the UART's FIFOs when the port opens).
    while :; do
        if read -r cmd arg; then
            case "$cmd" in
            write)
                printf 'PERSIST-DATA-%s\n' "$arg" | dd of=/dev/$d bs=512 seek=8192 conv=notrunc,fsync 2>/dev/null
                echo "PERSIST-WROTE $arg $?" ;;
            read)
                echo 3 > /proc/sys/vm/drop_caches
                echo "PERSIST-READ $(dd if=/dev/$d bs=512 skip=8192 count=1 2>/dev/null | head -n 1 | tr -cd '[:alnum:]-')" ;;
            esac
        else
            sleep 1
        fi
    done < /dev/ttyS1
    ;;
bench)
    d=$(echo $disks | cut -d' ' -f1)
    echo "DISKBENCH-DEVICE $d $(readlink -f /sys/block/$d)"
    /bin/diskbench /dev/$d "$mb" "$ops"
    ;;
esac
echo "STORAGE-DONE"
poweroff -f
INIT
    chmod 755 "$root/init"
    local files=init
    if [ -n "$bench" ]; then
        mkdir -p "$root/bin" && cp "$bench" "$root/bin/diskbench" && files="init bin/diskbench"
    fi
    (cd "$root" && printf '%s\n' $files | cpio --quiet -o -H newc -R 0:0) | gzip -9 -n > "$out"
    rm -rf "$root"
}

# The busybox initramfs with the storage drivers and the storage /init on top (the kernel unpacks both);
# with an argument, the diskbench binary too.
storage_initrd() {
    local bench=${1:-} out="$GUESTS_OUT/storage-initrd${1:+-bench}.gz"
    if [ ! -s "$out" ] || [ "$GUESTS_SRC/make-initramfs.sh" -nt "$out" ] || [ "$VIREO_SRC/tests/lib/storage.bash" -nt "$out" ] ||
        { [ -n "$bench" ] && [ "$bench" -nt "$out" ]; }; then
        MODULES="ata_piix ahci sd_mod sr_mod virtio_pci virtio_blk" "$GUESTS_SRC/make-initramfs.sh" "$out.base" >/dev/null ||
            { echo "FAIL: make-initramfs.sh failed"; exit 1; }
        storage_init_overlay "$out.overlay" "$bench"
        cat "$out.base" "$out.overlay" > "$out"
        rm -f "$out.base" "$out.overlay"
    fi
    echo "$out"
}

# storage_boot LOG SECONDS MARKER vireo-vm-options...: runs the VM with COM1 into LOG until MARKER shows
# (then ends it) or SECONDS pass; returns 0 when the marker was seen.  STORAGE_PID holds the VM's pid while
# it runs; STORAGE_KEEP=1 leaves the VM running after the marker.
storage_boot() {
    local serial=$1 limit=$2 marker=$3; shift 3
    : > "$serial"
    "$VIREO_BIN/vireo-vm" --exec "$STORAGE_EXEC" --memory 256M --serial1 "file:$serial" \
        --log "$serial.vmlog" --timeout $((limit + 30)) "$@" >"$serial.stdout" 2>&1 &
    STORAGE_PID=$!
    local start=$SECONDS seen=1
    while [ $((SECONDS - start)) -lt "$limit" ]; do
        if grep -aq -- "$marker" "$serial" 2>/dev/null; then seen=0; break; fi
        kill -0 "$STORAGE_PID" 2>/dev/null || break
        sleep 1
    done
    STORAGE_SECONDS=$((SECONDS - start))
    if [ "${STORAGE_KEEP:-0}" != 1 ] || [ $seen -ne 0 ]; then
        kill -TERM "$STORAGE_PID" 2>/dev/null
        wait "$STORAGE_PID" 2>/dev/null
        STORAGE_PID=
    fi
    return $seen
}

storage_show_failure() {
    local serial=$1
    echo "---- COM1 (tail)"; tail -c 2500 "$serial" | tr -c '[:print:]\n' '.'; echo
    echo "---- vireo-vm output"; tail -n 10 "$serial.stdout"
    echo "---- log (tail)"; tail -n 25 "$serial.vmlog"
}
