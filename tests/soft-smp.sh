#!/usr/bin/env bash
# soft-smp.sh - several vCPUs on the software CPU: the smp guest (INIT-SIPI-SIPI, locked atomics, IPIs) with 2 and 4
# vCPUs on the recompiler and the interpreter, then the Debian kernel with the busybox initramfs on 2 and 4 vCPUs: every
# CPU comes up, the TSC stays the clocksource, no lockup or BUG, and the md5 workload prints the right checksum.
set -u
. "${VIREO_SRC:?}/tests/lib/kvm.bash"
kvm_need_vars
LIMIT=${LINUX_BOOT_LIMIT:-300}
MD5_MB=4

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-soft-smp.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failed=0

# ---- (a) the guest program ----
for exec in soft interp; do
    for cpus in 2 4; do
        VIREO_EXEC=$exec VIREO_CPUS=$cpus kvm_run_guest "$VM" smp "$tmp"
        label="$exec, $cpus vCPUs"
        if [ "$RUN_RC" -ne 0 ]; then
            echo "FAIL smp ($label): vireo-vm exited with $RUN_RC (expected 0)"
            kvm_explain_exit smp "$RUN_RC"
            kvm_show_failure
            failed=1
            continue
        fi
        ok=1
        for line in "VIREO-GUEST smp: $cpus CPUs started" "VIREO-GUEST smp: atomics OK" "VIREO-GUEST smp: IPIs OK"; do
            grep -a -q -F -- "$line" "$RUN_SERIAL" || { echo "FAIL smp ($label): COM1 lacks '$line'"; ok=0; }
        done
        if [ $ok -eq 1 ]; then
            echo "ok   smp ($label)"
        else
            kvm_show_failure
            failed=1
        fi
    done
done

# ---- (b) Linux ----
. "$VIREO_SRC/tests/lib/linux.bash"
want_md5=$(head -c $((MD5_MB * 1024 * 1024)) /dev/zero | md5sum | cut -d' ' -f1)

# linux_boot CPUS WORKLOAD: one boot to VIREO-DONE, checked; sets failed=1 on a failure.
linux_boot() {
    local cpus=$1 workload=$2 serial="$tmp/linux-$1.com1.txt" log="$tmp/linux-$1.vm.log" fail=0 start elapsed got
    linux_run VIREO-DONE "$LIMIT" "$serial" --exec soft --cpus "$cpus" --memory 256M --kernel "$kernel" \
        --initrd "$initrd" --append "console=ttyS0 vireo.workload=$workload vireo.md5mb=$MD5_MB panic=-1" --log "$log"
    elapsed=$linux_elapsed
    grep -aq "VIREO-BOOT-OK" "$serial" || { echo "FAIL linux ($cpus vCPUs): no VIREO-BOOT-OK within ${LIMIT}s"; fail=1; }
    grep -aq "smp: Brought up 1 node, $cpus CPUs" "$serial" ||
        { echo "FAIL linux ($cpus vCPUs): no 'smp: Brought up 1 node, $cpus CPUs'"; fail=1; }
    grep -a "VIREO-INFO" "$serial" | grep -q "cpus=$cpus " ||
        { echo "FAIL linux ($cpus vCPUs): /proc/cpuinfo does not list $cpus processors"; fail=1; }
    if grep -a -E "Marking TSC unstable|TSC synchronization|soft lockup|BUG:|Oops|WARNING:|detected stalls" "$serial"; then
        echo "FAIL linux ($cpus vCPUs): the kernel log has the complaints above"
        fail=1
    fi
    if [ "$workload" = md5 ]; then
        got=$(grep -a "VIREO-WORKLOAD-RESULT md5" "$serial" | awk '{print $3}' | tr -d '\r')
        [ "$got" = "$want_md5" ] || { echo "FAIL linux ($cpus vCPUs): md5 workload printed '${got:-nothing}', want $want_md5"; fail=1; }
    fi
    if [ $fail -ne 0 ]; then
        echo "---- COM1 (tail)"; tail -c 3000 "$serial" | tr -c '[:print:]\n' '.'; echo
        echo "---- log (tail)"; tail -n 20 "$log"
        failed=1
        return
    fi
    echo "ok   linux ($cpus vCPUs, workload $workload): ${elapsed}s to VIREO-DONE"
    grep -a "VIREO-BOOT-OK\|VIREO-WORKLOAD-SECONDS" "$serial" | tr -d '\r'
}
linux_boot 2 none
linux_boot 4 md5
exit $failed
