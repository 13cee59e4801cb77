#!/usr/bin/env bash
# img-tool.sh - vireo-img end to end: creating, inspecting, checking, converting, resizing images, bad input changing nothing, and agreement with qemu-img.
set -u
img="$VIREO_BIN/vireo-img"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
have_qemu=0
command -v qemu-img >/dev/null 2>&1 && have_qemu=1

fail() {
    echo "FAIL $*"
    fails=$((fails + 1))
}

ok() {
    echo "ok   $*"
}

# run WANT_RC NAME ARGS...: runs vireo-img, output in $tmp/out and $tmp/err; FAIL unless it exits with WANT_RC.
run() {
    local want=$1 name=$2
    shift 2
    timeout 120 "$img" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    if [ $rc -ne "$want" ]; then
        fail "$name: exit $rc (want $want): vireo-img $*"
        sed 's/^/    /' "$tmp/err"
        return 1
    fi
    ok "$name"
    return 0
}

# expect_err NAME REGEX: the last run's stderr matches.
expect_err() {
    if ! grep -qE -- "$2" "$tmp/err"; then
        fail "$1: stderr does not match /$2/:"
        sed 's/^/    /' "$tmp/err"
    fi
}

# snapshot / unchanged: the folder's names, sizes and contents did not change.
snapshot() {
    (cd "$tmp/w" && find . -printf '%p %s\n' | sort && find . -type f -exec md5sum {} + | sort) >"$tmp/snap"
}
unchanged() {
    (cd "$tmp/w" && find . -printf '%p %s\n' | sort && find . -type f -exec md5sum {} + | sort) >"$tmp/snap2"
    if ! cmp -s "$tmp/snap" "$tmp/snap2"; then
        fail "$1: the folder changed:"
        diff "$tmp/snap" "$tmp/snap2" | sed 's/^/    /'
    fi
}

mkdir "$tmp/w"
w="$tmp/w"

# ---- create -------------------------------------------------------------------------
run 0 create-raw create "$w/a.raw" 10M && [ "$(stat -c %s "$w/a.raw")" -eq 10485760 ] || fail "create-raw: size"
run 0 create-raw-bytes create "$w/small.raw" 512
run 0 create-fixed create --fixed "$w/fixed.raw" 1M
[ "$(stat -c %b "$w/fixed.raw")" -ge 2048 ] || fail "create-fixed: only $(stat -c %b "$w/fixed.raw") blocks allocated"

snapshot
run 2 create-existing create "$w/a.raw" 20M && expect_err create-existing "a.raw.*already exists"
for bad in 10Q 0 -5 1000 65T 99999999999999999999 "" 10MQ 1.5G; do
    run 1 "create-bad-size '$bad'" create "$w/bad.raw" "$bad" && expect_err "create-bad-size '$bad'" "size '$bad'"
done
run 1 create-no-size create "$w/bad.raw"
run 1 create-extra-arg create "$w/bad.raw" 1M 2M
run 1 create-bad-format create --format vhd "$w/bad.raw" 1M && expect_err create-bad-format "format 'vhd'"
run 1 create-iso create --format iso "$w/bad.iso" 1M
run 1 create-raw-backing create --backing a.raw "$w/bad.raw"
run 1 create-bad-option create --frobnicate "$w/bad.raw" 1M && expect_err create-bad-option "'--frobnicate'"
run 2 create-no-folder create "$w/none/bad.raw" 1M && expect_err create-no-folder "none/bad.raw"
unchanged "bad create arguments"

# ---- info ---------------------------------------------------------------------------
run 0 info info "$w/a.raw" && grep -q "Virtual size:  10 MiB (10485760 bytes)" "$tmp/out" || fail "info: virtual size line"
grep -q "Format:        raw" "$tmp/out" || fail "info: format line"
run 0 info-machine info --machinereadable "$w/a.raw"
grep -qx 'format="raw"' "$tmp/out" || fail "info-machine: format"
grep -qx 'size=10485760' "$tmp/out" || fail "info-machine: size"
grep -qx 'backing_file=""' "$tmp/out" || fail "info-machine: backing_file"
run 2 info-missing info "$w/missing.raw" && expect_err info-missing "missing.raw"
run 2 info-folder info "$w" && expect_err info-folder "directory"
run 1 info-no-file info

# An ISO 9660 image by content, whatever its name.
head -c $((40 * 2048)) /dev/zero >"$w/disc.bin"
printf '\001CD001\001' | dd of="$w/disc.bin" bs=1 seek=$((16 * 2048)) conv=notrunc status=none
run 0 info-iso info --machinereadable "$w/disc.bin" && grep -qx 'format="iso"' "$tmp/out" || fail "info-iso: not detected"

# A file another program holds the write lock on is reported busy.
if command -v flock >/dev/null 2>&1; then
    flock -x "$w/a.raw" "$img" info "$w/a.raw" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 2 ] || ! grep -q "in use" "$tmp/err"; then
        fail "info-locked: exit $rc (want 2 and 'in use')"
        sed 's/^/    /' "$tmp/err"
    else
        ok info-locked
    fi
fi

# ---- check --------------------------------------------------------------------------
run 0 check-raw check "$w/a.raw" && grep -q "no errors" "$tmp/out" || fail "check-raw: output"
run 0 check-repair-raw check --repair "$w/a.raw"
run 2 check-missing check "$w/missing.raw"

# ---- convert ------------------------------------------------------------------------
# Data at odd places, a zero-filled but allocated range, and holes.
printf 'first sector' | dd of="$w/a.raw" bs=1 seek=0 conv=notrunc status=none
head -c 300000 /dev/urandom | dd of="$w/a.raw" bs=1 seek=3000001 conv=notrunc status=none
head -c 1048576 /dev/zero | dd of="$w/a.raw" bs=1M seek=6 conv=notrunc status=none
printf 'last' | dd of="$w/a.raw" bs=1 seek=$((10485760 - 4)) conv=notrunc status=none
run 0 convert convert --progress "$w/a.raw" "$w/c.raw" && expect_err convert-progress "100%"
cmp -s "$w/a.raw" "$w/c.raw" || fail "convert: copy differs"
[ "$(stat -c %b "$w/c.raw")" -lt "$(stat -c %b "$w/a.raw")" ] || fail "convert: zero range was allocated in the copy"
snapshot
run 2 convert-existing convert "$w/a.raw" "$w/c.raw" && expect_err convert-existing "c.raw"
run 2 convert-missing convert "$w/missing.raw" "$w/d.raw" && expect_err convert-missing "missing.raw"
run 1 convert-bad-format convert --format vmdk "$w/a.raw" "$w/d.raw"
run 1 convert-one-arg convert "$w/a.raw"
run 2 convert-no-folder convert "$w/a.raw" "$w/none/d.raw"
unchanged "bad convert arguments"
run 0 convert-iso convert "$w/disc.bin" "$w/disc.raw" && cmp -s "$w/disc.bin" "$w/disc.raw" || fail "convert-iso: copy differs"

# ---- resize -------------------------------------------------------------------------
cp --sparse=always "$w/c.raw" "$w/r.raw"
run 0 resize-grow resize "$w/r.raw" 12M && [ "$(stat -c %s "$w/r.raw")" -eq 12582912 ] || fail "resize-grow: size"
cmp -s -n 10485760 "$w/c.raw" "$w/r.raw" || fail "resize-grow: data changed"
snapshot
run 1 resize-shrink-refused resize "$w/r.raw" 1M && expect_err resize-shrink-refused "--shrink"
run 1 resize-bad-size resize "$w/r.raw" 12Q
run 2 resize-missing resize "$w/missing.raw" 1M
unchanged "refused resizes"
run 0 resize-shrink resize --shrink "$w/r.raw" 4M && [ "$(stat -c %s "$w/r.raw")" -eq 4194304 ] || fail "resize-shrink: size"
cmp -s -n 4194304 "$w/c.raw" "$w/r.raw" || fail "resize-shrink: data changed"

# ---- differencing images (with the first format this build can create them in) -----------
diff_fmt=""
for fmt in qcow2 vdi; do
    if "$img" create --format "$fmt" "$w/probe.$fmt" 1M >/dev/null 2>&1; then
        diff_fmt=$fmt
        rm -f "$w/probe.$fmt"
        break
    fi
done
if [ -n "$diff_fmt" ]; then
    mkdir "$w/snaps"
    run 0 "create-diff-$diff_fmt" create --format "$diff_fmt" --backing ../c.raw "$w/snaps/child.$diff_fmt"
    run 0 info-diff info --machinereadable "$w/snaps/child.$diff_fmt"
    grep -qx "backing_file=\"$(realpath "$w/c.raw")\"" "$tmp/out" || fail "info-diff: backing file"
    grep -qx 'size=10485760' "$tmp/out" || fail "info-diff: size taken from the parent"
    run 0 check-diff check "$w/snaps/child.$diff_fmt"
    run 0 convert-diff convert "$w/snaps/child.$diff_fmt" "$w/flat.raw" && cmp -s "$w/c.raw" "$w/flat.raw" ||
        fail "convert-diff: the flattened chain differs from the parent"
    run 0 commit-diff commit "$w/snaps/child.$diff_fmt" && cmp -s "$w/a.raw" "$w/c.raw" || fail "commit-diff: parent changed"
    snapshot
    run 2 create-diff-missing-parent create --format "$diff_fmt" --backing nothere.raw "$w/snaps/bad.$diff_fmt" &&
        expect_err create-diff-missing-parent "nothere.raw"
    run 1 create-diff-fixed create --format "$diff_fmt" --fixed --backing ../c.raw "$w/snaps/bad.$diff_fmt"
    unchanged "refused differencing images"
    mv "$w/c.raw" "$w/c-moved.raw"
    run 2 convert-diff-missing-parent convert "$w/snaps/child.$diff_fmt" "$w/flat2.raw" && expect_err convert-diff-missing-parent "c.raw"
    [ -e "$w/flat2.raw" ] && fail "convert-diff-missing-parent: left a destination"
    run 0 info-diff-missing-parent info "$w/snaps/child.$diff_fmt"
    mv "$w/c-moved.raw" "$w/c.raw"
    if [ $have_qemu -eq 1 ]; then
        qemu-img info "$w/snaps/child.$diff_fmt" >"$tmp/q" 2>&1 || fail "qemu-img info failed on our $diff_fmt image"
        grep -q "backing file: ../c.raw" "$tmp/q" || { fail "qemu-img does not see our backing file:"; sed 's/^/    /' "$tmp/q"; }
        qemu-img compare "$w/snaps/child.$diff_fmt" "$w/c.raw" >/dev/null || fail "qemu-img compare: our chain differs from its parent"
    fi
else
    echo "note: no differencing format in this build; the chain checks did not run"
fi

# ---- commit and usage -----------------------------------------------------------------
run 2 commit-raw commit "$w/a.raw" && expect_err commit-raw "no backing file"
for cmd in create info check convert resize commit; do
    run 0 "help-$cmd" "$cmd" --help && grep -q "^Usage: vireo-img $cmd" "$tmp/out" || fail "help-$cmd: no usage line"
done
run 0 help --help
run 1 no-command
run 1 unknown-command frobnicate && expect_err unknown-command "frobnicate"

# ---- qemu-img agrees ------------------------------------------------------------------
if [ $have_qemu -eq 1 ]; then
    qemu-img info --output=json "$w/c.raw" >"$tmp/q" 2>&1 || fail "qemu-img info failed on our image"
    grep -q '"virtual-size": 10485760' "$tmp/q" || fail "qemu-img info: virtual size"
    grep -q '"format": "raw"' "$tmp/q" || fail "qemu-img info: format"
    qemu-img compare -f raw -F raw "$w/a.raw" "$w/c.raw" >/dev/null || fail "qemu-img compare: converted image differs"
    # An image qemu-img wrote, read by us.
    qemu-img create -q -f raw "$w/q.raw" 3M
    head -c 70000 /dev/urandom | dd of="$w/q.raw" bs=1 seek=1000 conv=notrunc status=none
    run 0 convert-qemu-raw convert "$w/q.raw" "$w/q2.raw"
    qemu-img compare -f raw -F raw "$w/q.raw" "$w/q2.raw" >/dev/null || fail "qemu-img compare: copy of qemu-img's image differs"
    run 0 info-qemu-raw info --machinereadable "$w/q.raw" && grep -qx 'size=3145728' "$tmp/out" || fail "info of qemu-img's image"
    # Formats this build reads: a qemu-img image of that format converts to the same disk.
    for fmt in vdi qcow2 vmdk; do
        qemu-img convert -q -f raw -O "$fmt" "$w/q.raw" "$w/q.$fmt" 2>/dev/null || continue
        "$img" info --machinereadable "$w/q.$fmt" 2>/dev/null | grep -qx "format=\"$fmt\"" || continue
        run 0 "convert-qemu-$fmt" convert "$w/q.$fmt" "$w/q-$fmt.raw" &&
            { qemu-img compare -f raw -F raw "$w/q.raw" "$w/q-$fmt.raw" >/dev/null || fail "convert-qemu-$fmt: differs"; }
    done
else
    echo "note: qemu-img not installed; the cross-checks with it did not run"
fi

[ $fails -eq 0 ]
