#!/usr/bin/env bash
# tpm-settings.sh - the TPM as a machine setting: vireo-manage modifyvm --tpm-type (2.0, v2_0, none, garbage),
# showvminfo, the settings file's <TrustedPlatformModule>, startvm runs swtpm with its state in <folder>/tpm/,
# poweroff stops it, clonevm gives the clone no copy of the TPM, unregistervm --delete removes the state
# (firmware only, no guest OS: seconds).
set -u
mg="$VIREO_BIN/vireo-manage"
command -v swtpm >/dev/null || { echo "FAIL: swtpm is missing (./configure --install-deps installs it)"; exit 1; }
tmp=$(mktemp -d)
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
unset DISPLAY WAYLAND_DISPLAY
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
B="$tmp/vms"
mkdir -p "$B"
fails=0
cleanup() {
    "$mg" controlvm t1 poweroff >/dev/null 2>&1
    pkill -KILL -f "dir=$B/" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
run() {
    local want=$1 name=$2
    shift 2
    timeout 180 "$mg" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    if [ $rc -ne "$want" ]; then
        fail "$name: exit $rc (want $want): vireo-manage $*"
        sed 's/^/    /' "$tmp/err" | head -n 20
        return 1
    fi
    echo "ok   $name"
}
mr() { "$mg" showvminfo "$1" --machinereadable 2>&1 | sed -n "s/^$2=\"\\(.*\\)\"\$/\\1/p"; }

run 0 createvm createvm --name t1 --basefolder "$B" --register
[ "$(mr t1 tpm_type)" = none ] || fail "a new machine has TPM '$(mr t1 tpm_type)' (want none)"
grep -q TrustedPlatformModule "$B/t1/t1.vireo" && fail "a machine without a TPM has a TrustedPlatformModule element"
run 1 bad-type modifyvm t1 --tpm-type 1.2
grep -q "must be none or 2.0" "$tmp/err" || fail "--tpm-type 1.2: message '$(cat "$tmp/err")'"
run 0 tpm-2.0 modifyvm t1 --tpm-type 2.0
[ "$(mr t1 tpm_type)" = v2_0 ] || fail "after --tpm-type 2.0 showvminfo says '$(mr t1 tpm_type)'"
"$mg" showvminfo t1 | grep -q "^TPM: *2.0" || fail "showvminfo has no 'TPM: 2.0' line"
grep -q '<TrustedPlatformModule type="v2_0"/>' "$B/t1/t1.vireo" || fail "the settings file has no TPM element"
run 0 tpm-none modifyvm t1 --tpm-type none
[ "$(mr t1 tpm_type)" = none ] || fail "after --tpm-type none showvminfo says '$(mr t1 tpm_type)'"
run 0 tpm-v2_0 modifyvm t1 --tpm-type v2_0
[ "$(mr t1 tpm_type)" = v2_0 ] || fail "after --tpm-type v2_0 showvminfo says '$(mr t1 tpm_type)'"

run 0 startvm startvm t1 --type headless --exec soft
i=0; while [ $i -lt 100 ] && ! grep -q "swtpm started" "$B/t1/Logs/VM.log" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
swtpm_pid=$(grep -o "swtpm started (pid [0-9]*" "$B/t1/Logs/VM.log" | awk '{print $4}')
[ -n "$swtpm_pid" ] && kill -0 "$swtpm_pid" 2>/dev/null || fail "the running machine has no swtpm (log: $(grep -i tpm "$B/t1/Logs/VM.log" | tail -n 3))"
grep -q "state $B/t1/tpm)" "$B/t1/Logs/VM.log" || fail "swtpm's state is not in the machine folder's tpm/"
run 0 poweroff controlvm t1 poweroff
i=0; while [ $i -lt 100 ] && [ -n "$swtpm_pid" ] && kill -0 "$swtpm_pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
[ -n "$swtpm_pid" ] && kill -0 "$swtpm_pid" 2>/dev/null && fail "swtpm (pid $swtpm_pid) still runs after the power off"
ls "$B/t1/tpm"/tpm2-00.permall >/dev/null 2>&1 || fail "no TPM state in $B/t1/tpm after the run"

run 0 clonevm clonevm t1 --name t2 --register --basefolder "$B"
[ "$(mr t2 tpm_type)" = v2_0 ] || fail "the clone lost the TPM setting"
[ -e "$B/t2/tpm" ] && fail "the clone got a copy of the TPM's state (its identity)"

run 0 unregister-delete unregistervm t1 --delete
[ -e "$B/t1/tpm" ] && fail "unregistervm --delete left the TPM state ($(ls "$B/t1/tpm"))"
[ -e "$B/t1" ] && fail "unregistervm --delete left the machine folder ($(ls -A "$B/t1"))"
[ $fails -eq 0 ] || exit 1
echo "ok   TPM setting: manage, settings file, startvm with swtpm in the machine folder, clone, delete"
