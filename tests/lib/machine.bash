# machine.bash - for tests that drive registered machines through vireo-manage in a private registry ($tmp, set
# by the caller, with VIREO_USER_HOME and XDG_RUNTIME_DIR under it): this test's own vireo-vm processes, a fail
# that shows COM1 (${com1:-$tmp/com1.txt}) and the machines' logs, vireo-manage that must succeed, and one
# showvminfo value of machine $vm.
: "${VIREO_BIN:?}"

# The vireo-vm processes of this test (started detached by vireo-manage startvm).
our_vms() {
    local p
    for p in $(pgrep -f "vireo-vm --startvm"); do
        grep -qz "^VIREO_USER_HOME=$VIREO_USER_HOME\$" "/proc/$p/environ" 2>/dev/null && echo "$p"
    done
}

# fail writes to the test's own stdout (fd 3) even when called inside a redirected command.
exec 3>&1
fail() {
    exec 1>&3
    echo "FAIL: $*"
    local serial=${com1:-$tmp/com1.txt} log
    [ -f "$serial" ] && { echo "---- COM1 (tail)"; tail -c 2000 "$serial" | tr -c '[:print:]\n' '.'; echo; }
    for log in "$tmp"/vms/*/Logs/VM.log; do
        [ -f "$log" ] && { echo "---- $log (tail)"; tail -n 25 "$log"; }
    done
    exit 1
}
# vireo-manage that must succeed; prints its stdout.
manage() {
    "$VIREO_BIN/vireo-manage" "$@" >"$tmp/manage.out" 2>"$tmp/manage.err" ||
        fail "vireo-manage $* exited $?: $(cat "$tmp/manage.err")"
    cat "$tmp/manage.out"
}
# One value of showvminfo --machinereadable.
info() { "$VIREO_BIN/vireo-manage" showvminfo "$vm" --machinereadable | sed -n "s/^$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p"; }
