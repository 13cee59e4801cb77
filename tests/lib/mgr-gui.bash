# mgr-gui.bash - for the manager's GUI tests (tests/manager-*.sh, whose Python drives vireo with tests/lib/mgr_gui.py):
#   mgr_need [TOOL...]      FAIL unless Xvfb, dbus-run-session, Debian's python3-pyatspi and each TOOL are there
#   mgr_env NAME            a private registry in tmp=$(mktemp -d .../vireo-NAME.XXXXXX): VIREO_USER_HOME=$tmp/home,
#                           XDG_RUNTIME_DIR=$tmp/run, MGR_TMP=$tmp, $tmp/vms and $VIREO_OUT/screenshots made;
#                           tests/lib/machine.bash sourced (manage, our_vms, fail); on exit this test's vireo-vm
#                           processes are killed and $tmp removed (kept when MGR_KEEP is set)
#   mgr_run [--readonly DIR] SCRIPT [ARG...]
#                           tests/SCRIPT in a D-Bus session of its own (the accessibility bus is the test's), with
#                           dbus-daemon's and the AT-SPI registry's chatter filtered out; with --readonly, inside a
#                           private mount namespace where DIR is a read-only bind mount (root ignores file modes).
#                           On failure the tail of the manager's log ($tmp/vireo.log).  Returns the script's status.
: "${VIREO_BIN:?}" "${VIREO_SRC:?}" "${VIREO_OUT:?}"

mgr_need() {
    local t
    for t in Xvfb dbus-run-session "$@"; do
        command -v "$t" >/dev/null 2>&1 ||
            { echo "FAIL: '$t' is missing (./configure --install-deps installs it)"; exit 1; }
    done
    /usr/bin/python3 -c 'import pyatspi' 2>/dev/null || { echo "FAIL: Debian's python3-pyatspi is missing"; exit 1; }
}

mgr_env() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-$1.XXXXXX") || exit 1
    export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run" MGR_TMP="$tmp"
    mkdir -p "$VIREO_USER_HOME" "$XDG_RUNTIME_DIR" "$tmp/vms" "$VIREO_OUT/screenshots" && chmod 700 "$XDG_RUNTIME_DIR"
    source "$VIREO_SRC/tests/lib/machine.bash"
    trap mgr_cleanup EXIT
}

mgr_cleanup() {
    local p
    for p in $(our_vms); do kill -KILL "$p" 2>/dev/null; done
    [ -n "${MGR_KEEP:-}" ] || rm -rf "$tmp"
}

mgr_run() {
    local ro="" rc
    if [ "${1:-}" = --readonly ]; then ro=$2; shift 2; fi
    local cmd=(dbus-run-session -- /usr/bin/python3 "$VIREO_SRC/tests/$1" "${@:2}")
    if [ -n "$ro" ]; then
        # shellcheck disable=SC2016 # expanded by the inner sh
        cmd=(unshare -m sh -c 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"' "$ro" "${cmd[@]}")
    fi
    "${cmd[@]}" 2>&1 | grep --line-buffered -v -E 'dbus-daemon\[[0-9]+\]|SpiRegistry daemon is running'
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ] && [ -s "$tmp/vireo.log" ]; then
        echo "---- vireo's output (tail)"
        tail -n 30 "$tmp/vireo.log"
    fi
    return "$rc"
}
