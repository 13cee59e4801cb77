#!/usr/bin/env bash
# rec-iem.sh - the interpreter's unit, program and differential tests (tstIem*) again with every block translated by the recompiler on its first run (VIREO_TEST_REC=0).
set -u
: "${VIREO_OUT:?}"
failed=0 ran=0
for t in "$VIREO_OUT"/stage/tests/tstIem*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    log=$(mktemp)
    VIREO_TEST_REC=0 timeout 300 "$t" >"$log" 2>&1
    rc=$?
    passed=$(grep -oE '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
    ran=$((ran + 1))
    if [ $rc -ne 0 ] || [ "$passed" -eq 0 ]; then
        echo "FAIL $name on the recompiler (exit $rc)"
        tail -n 30 "$log" | sed 's/^/    /'
        failed=1
    else
        echo "ok   $name on the recompiler ($passed passed)"
    fi
    rm -f "$log"
done
[ $ran -gt 0 ] || { echo "FAIL: no tstIem* programs under $VIREO_OUT/stage/tests"; exit 1; }
exit $failed
