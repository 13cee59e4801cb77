# linux.bash - the Debian kernel and the busybox initramfs for tests that boot Linux directly (--kernel), and a
# runner that starts vireo-vm, waits for a marker on COM1 and ends the VM.  Sets kernel and initrd.
: "${VIREO_BIN:?}" "${VIREO_OUT:?}" "${VIREO_SRC:?}"
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
mkinit="$VIREO_SRC/../shared/guests/make-initramfs.sh"
[ -n "$kernel" ] || { echo "FAIL: no /boot/vmlinuz-* (./configure --install-deps installs linux-image-amd64)"; exit 1; }
[ -x "$mkinit" ] || { echo "FAIL: $mkinit is missing (shared/ must sit beside the repository)"; exit 1; }

# The initramfs is rebuilt only when the script or busybox changed (it is byte-reproducible).  The tests that
# use it share the default lane of tools/run-tests.sh, so no two of them build it at once.
initrd="$VIREO_OUT/guests/initramfs.cpio.gz"
if [ ! -s "$initrd" ] || [ "$mkinit" -nt "$initrd" ] || [ /bin/busybox -nt "$initrd" ]; then
    mkdir -p "$(dirname "$initrd")"
    "$mkinit" "$initrd" >/dev/null || { echo "FAIL: make-initramfs.sh failed"; exit 1; }
fi

# linux_run MARKER LIMIT SERIAL vireo-vm-options...: runs vireo-vm with COM1 in SERIAL (its stdout and stderr
# in SERIAL.stdout) until MARKER shows on COM1, the VM ends by itself or LIMIT seconds pass, then ends the VM.
# The VM's pid is in $pid meanwhile, for the caller's cleanup trap; linux_elapsed is the seconds it took.
linux_run() {
    local marker=$1 limit=$2 serial=$3 start
    shift 3
    : >"$serial"
    "$VIREO_BIN/vireo-vm" "$@" --serial1 "file:$serial" --timeout $((limit + 30)) >"$serial.stdout" 2>&1 &
    pid=$!
    start=$SECONDS
    while [ $((SECONDS - start)) -lt "$limit" ]; do
        grep -aq -- "$marker" "$serial" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    linux_elapsed=$((SECONDS - start))
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
}
