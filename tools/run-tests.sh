#!/usr/bin/env bash
# run-tests.sh OUTDIR SRCROOT - runs every unit test program and integration test, ends with "N passed, N failed".
#
# Unit tests: every executable in OUTDIR/stage/tests/ (cmocka programs); each cmocka
# test case counts.  Integration tests: every SRCROOT/tests/*.sh script, run with
# VIREO_OUT=OUTDIR and VIREO_SRC=SRCROOT; exit 0 passes, 77 skips (the script prints
# why), anything else fails.  VIREO_TESTS=pattern runs only the matching ones.
set -u
out=${1:?usage: run-tests.sh OUTDIR SRCROOT}
src=${2:?usage: run-tests.sh OUTDIR SRCROOT}
export VIREO_OUT="$out" VIREO_SRC="$src"
export VIREO_BIN="$out/stage/bin"
pattern=${VIREO_TESTS:-}
logdir="$out/testlogs"
mkdir -p "$logdir"

passed=0 failed=0 skipped=0
failures=()

# The unit test programs run two at a time (they are independent and mostly single-threaded);
# their results are read back in name order.
unit=()
for t in "$out"/stage/tests/*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [ -n "$pattern" ] && [[ "$name" != *$pattern* ]] && continue
    unit+=("$t")
done
if [ ${#unit[@]} -gt 0 ]; then
    printf '%s\0' "${unit[@]}" | xargs -0 -n 1 -P 2 sh -c \
        'log="$1/$(basename "$2").log"; timeout 300 "$2" >"$log" 2>&1; echo $? >"$log.rc"' sh "$logdir"
fi
for t in "${unit[@]}"; do
    name=$(basename "$t")
    log="$logdir/$name.log"
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    rm -f "$log.rc"
    p=$(grep -oE '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
    f=$(grep -oE '^\[  FAILED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
    s=$(grep -oE '^\[  SKIPPED \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
        f=1  # crashed or printed nothing cmocka recognises
    elif [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1  # non-zero exit (sanitizer report, crash after the summary)
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [ "$f" -gt 0 ]; then
        failures+=("$name")
        echo "FAIL $name ($f failed; log: $log)"
        tail -n 30 "$log" | sed 's/^/    /'
    else
        echo "ok   $name ($p passed)"
    fi
done

# Integration tests run in two lanes at once (most boot a guest on one vCPU thread, so two keep both
# cores of a CI machine busy).  A test that starts with a "# lane: NAME" line runs in that lane, the rest
# in the default one; tests that share cached guest images, X servers or network ports keep to one lane,
# so nothing they build or bind is raced.  VIREO_TEST_LANES=1 runs them one after another.
integ=()
for t in "$src"/tests/*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    [ -n "$pattern" ] && [[ "$name" != *$pattern* ]] && continue
    integ+=("$t")
done
run_lane() { # tests of one lane, in name order; each leaves NAME.log, NAME.rc and NAME.secs
    local t name log t0
    for t in "$@"; do
        name=$(basename "$t" .sh)
        log="$logdir/$name.log"
        t0=$SECONDS
        timeout 600 bash "$t" >"$log" 2>&1
        echo $? >"$log.rc"
        echo $((SECONDS - t0)) >"$log.secs"
    done
}
lane_of() {
    local l
    l=$(sed -n '2,6s/^# lane: \([a-z0-9-]*\).*/\1/p' "$1" | head -n 1)
    echo "${l:-main}"
}
declare -A lanes=()
for t in "${integ[@]}"; do
    l=$(lane_of "$t")
    [ "${VIREO_TEST_LANES:-2}" = 1 ] && l=main
    lanes[$l]+="$t"$'\n'
done
pids=()
for l in "${!lanes[@]}"; do
    mapfile -t list < <(printf '%s' "${lanes[$l]}")
    run_lane "${list[@]}" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for t in "${integ[@]}"; do
    name=$(basename "$t" .sh)
    log="$logdir/$name.log"
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    secs=$(cat "$log.secs" 2>/dev/null || echo "?")
    rm -f "$log.rc" "$log.secs"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1)); echo "ok   $name ($secs s, lane $(lane_of "$t"))"
    elif [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1)); echo "skip $name: $(tail -n 1 "$log")"
    else
        failed=$((failed + 1)); failures+=("$name")
        echo "FAIL $name (exit $rc; log: $log)"
        tail -n 30 "$log" | sed 's/^/    /'
    fi
done

if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
