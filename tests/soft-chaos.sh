#!/usr/bin/env bash
# soft-chaos.sh - the software CPU runs random bytes as code (tests/guests/chaos.asm) in real mode, protected
# mode and with paging on a garbage CR3: faults, interrupts and triple faults must take the guest from round to
# round through resets, and the VMM must never crash, abort or stop responding.  Runs the normal build and the
# sanitizer build (kmk check builds both).
#
# Pass: the guest reaches "VIREO-CHAOS done" (or, if random code wedges a round with interrupts off, at least
# MIN_ROUNDS rounds went by first), vireo-vm powers off cleanly when asked, and no sanitizer report appears.
set -u
: "${VIREO_BIN:?}" "${VIREO_OUT:?}"
MIN_ROUNDS=16
LIMIT=${CHAOS_LIMIT:-120}
image="$VIREO_OUT/guests/chaos.bin"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-chaos.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

vms=("$VIREO_BIN/vireo-vm")
if [ "$(basename "$VIREO_OUT")" != sanitize ]; then
    san="$VIREO_OUT/../sanitize/stage/bin/vireo-vm"
    [ -x "$san" ] || { echo "FAIL: no sanitizer build at $san (kmk check builds it)"; exit 1; }
    vms+=("$san")
fi

failed=0
for vm in "${vms[@]}"; do
    serial="$tmp/com1.txt" log="$tmp/vm.log" out="$tmp/stdout"
    rm -f "$serial" "$log" "$out"
    "$vm" --exec soft --memory 32M --bios "$image" --serial1 "file:$serial" --log "$log" \
        --timeout $((LIMIT + 60)) >"$out" 2>&1 &
    pid=$!
    for ((i = 0; i < LIMIT * 10; i++)); do
        grep -aq "VIREO-CHAOS done" "$serial" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rounds=$(grep -ac "VIREO-CHAOS round" "$serial" 2>/dev/null)
    done_seen=0
    grep -aq "VIREO-CHAOS done" "$serial" 2>/dev/null && done_seen=1
    # The VMM must still answer: a power-off request ends it promptly with status 0.
    kill -TERM "$pid" 2>/dev/null
    rc=124
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            rc=$?
            break
        fi
        sleep 0.1
    done
    pid=
    what="vireo-vm ($(basename "$(dirname "$(dirname "$(dirname "$vm")")")") build)"
    if [ $rc -ne 0 ]; then
        echo "FAIL $what: exit status $rc after the power-off request (want 0; 124: no response in 10 s)"
        failed=1
    elif grep -qE "AddressSanitizer|runtime error:|LeakSanitizer" "$out" "$log" 2>/dev/null; then
        echo "FAIL $what: sanitizer report"
        grep -m 20 -A 10 -E "AddressSanitizer|runtime error:|LeakSanitizer" "$out" "$log"
        failed=1
    elif [ $done_seen -eq 0 ] && [ "${rounds:-0}" -lt $MIN_ROUNDS ]; then
        echo "FAIL $what: only ${rounds:-0} rounds in ${LIMIT} s (want all, or at least $MIN_ROUNDS)"
        failed=1
    else
        echo "ok   $what: ${rounds:-0} rounds, done=$done_seen, resets: $(grep -c 'system reset' "$log")"
    fi
    if [ $failed -ne 0 ]; then
        echo "---- COM1"; tail -c 1500 "$serial" | tr -c '[:print:]\n' '.'; echo
        echo "---- log"; tail -n 20 "$log"
    fi
done
exit $failed
