#!/usr/bin/env bash
# fuzz-images.sh - libFuzzer over every image format's parser (one target per format in src/Storage/formats.c, plus probing); a crash fails with its reproducer.
#
# kmk check runs it briefly (about 40 s of fuzzing in all); longer runs on demand:
# `FUZZ_SECONDS=600 tests/fuzz-images.sh` (seconds per target) or `kmk fuzz`.
# FUZZ_TARGETS="vmdk qcow2" limits the run to those targets.
#
# The targets are built with clang straight from src/Storage/*.c and src/Runtime/*.c
# (ASan, UBSan, libFuzzer) into $VIREO_OUT/fuzz/.  Seeds are made at run time (qemu-img
# for the formats it writes, hand-made files for the rest); what the fuzzer finds is
# kept in $VIREO_OUT/fuzz/corpus/<target>/ and grows from run to run.  A finding is
# written to $VIREO_OUT/fuzz/artifacts/ and reproduces with
#   $VIREO_OUT/fuzz/fuzz-<target> <reproducer>
set -u
src=${VIREO_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
out=${VIREO_OUT:-$src/out/linux.amd64/release}
fuzz="$out/fuzz"
mkdir -p "$fuzz/obj" "$fuzz/seeds" "$fuzz/corpus" "$fuzz/artifacts" "$fuzz/logs"

CC=${FUZZ_CC:-clang}
CFLAGS=(-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined -I"$src/include")
LIBS=(-lz -lpthread -lm)

if ! command -v "$CC" >/dev/null; then
    echo "skip: $CC not found (install the clang package to fuzz the image formats)"
    exit 77
fi
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
    "$CC" -x c -fsanitize=fuzzer,address,undefined -o "$fuzz/obj/probe-libfuzzer" - 2>"$fuzz/logs/probe-libfuzzer.log"; then
    echo "skip: $CC cannot build libFuzzer targets (-fsanitize=fuzzer); see $fuzz/logs/probe-libfuzzer.log"
    exit 77
fi
if ! command -v qemu-img >/dev/null || ! command -v qemu-io >/dev/null; then
    echo "FAIL: qemu-img/qemu-io not found: install the qemu-utils package (the seed images come from it)"
    exit 1
fi

# ---- The targets: every format formats.c lists (so every format this tree builds), and probing. ----
mapfile -t formats < <(grep -o 'g_blk_format_[a-z0-9_]*' "$src/src/Storage/formats.c" | sed 's/g_blk_format_//' | sort -u)
if [ ${#formats[@]} -eq 0 ]; then
    echo "FAIL: no formats found in src/Storage/formats.c"
    exit 1
fi
for f in "${formats[@]}"; do
    if ! grep -q "g_blk_format_$f = " "$src"/src/Storage/*.c; then
        echo "FAIL: formats.c lists $f but no source in src/Storage defines g_blk_format_$f"
        exit 1
    fi
done
targets=("${formats[@]}" auto)
if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
fi
# kmk check's share: about 18 s in all (3 s a target); kmk fuzz runs each for FUZZ_SECONDS.
secs=${FUZZ_SECONDS:-$((18 / ${#targets[@]}))}
[ "$secs" -lt 3 ] && secs=3
echo "targets: ${targets[*]} (${secs}s each)"

# ---- Build (objects are reused while neither they nor any header changed). ----
newest_header=$(find "$src/include" "$src/src/Storage" "$src/src/Runtime" -name '*.h' -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2)
objs=()
for c in "$src"/src/Storage/*.c "$src"/src/Runtime/*.c; do
    o="$fuzz/obj/$(basename "$(dirname "$c")")-$(basename "$c" .c).o"
    objs+=("$o")
    if [ ! "$o" -nt "$c" ] || [ "$newest_header" -nt "$o" ]; then
        if ! "$CC" "${CFLAGS[@]}" -fsanitize=fuzzer-no-link,address,undefined -c "$c" -o "$o" 2>"$fuzz/logs/build.log"; then
            echo "FAIL: cannot compile $c for fuzzing:"
            sed 's/^/    /' "$fuzz/logs/build.log"
            exit 1
        fi
    fi
done
# Objects of sources that no longer exist must not be linked.
for o in "$fuzz"/obj/*.o; do
    case " ${objs[*]} " in *" $o "*) ;; *) rm -f "$o" ;; esac
done
for t in "${targets[@]}"; do
    exe="$fuzz/fuzz-$t"
    fmt="BLK_FMT_$(echo "$t" | tr '[:lower:]' '[:upper:]')"
    if ! "$CC" "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined -DFUZZ_FORMAT="$fmt" \
        "$src/tools/fuzz/fuzz-image.c" "${objs[@]}" "${LIBS[@]}" -o "$exe" 2>"$fuzz/logs/build.log"; then
        echo "FAIL: cannot build $exe:"
        sed 's/^/    /' "$fuzz/logs/build.log"
        exit 1
    fi
done

# ---- Seeds ----
seeds="$fuzz/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"
work=$(mktemp -d "$fuzz/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# le VALUE BYTES: VALUE as BYTES little-endian bytes.
le() {
    local v=$1 n=$2 i s=""
    for ((i = 0; i < n; i++)); do
        s+=$(printf '\\x%02x' $(((v >> (8 * i)) & 255)))
    done
    printf "$s"
}
# pad FILE SECTORS: zero-fill FILE to a multiple of 512 bytes, at least SECTORS sectors.
pad() {
    local size
    size=$(stat -c %s "$1")
    size=$(((size + 511) / 512 * 512))
    [ "$size" -lt $(($2 * 512)) ] && size=$(($2 * 512))
    truncate -s "$size" "$1"
}
# vmdk_header FLAGS VERSION GD_OFFSET COMPRESS: a hosted sparse extent header for a 64-sector disk of 8-sector grains.
vmdk_header() {
    printf 'KDMV'
    le "$2" 4; le "$1" 4; le 64 8; le 8 8; le 1 8; le 1 8; le 512 4; le 0 8; le "$3" 8; le 7 8
    printf '\x00\n \r\n'
    le "$4" 2
    head -c 433 /dev/zero
}
# A small sparse VMDK (sector 1 descriptor, 2 directory, 3-6 table, 7+ grains): grain 0 data, grain 1 zero.
vmdk_tiny() { # FILE STREAM(0|1) FOOTER(0|1)
    local f=$1 stream=$2 footer=$3 flags=0x5 version=2 compress=0 gd=2
    if [ "$stream" = 1 ]; then flags=0x30001; version=3; compress=1; fi
    [ "$footer" = 1 ] && gd=$((0xffffffffffffffff))
    vmdk_header $flags $version $gd $compress >"$f"
    printf '# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\ncreateType="%s"\nRW 64 SPARSE "image"\n' \
        "$([ "$stream" = 1 ] && echo streamOptimized || echo monolithicSparse)" >>"$f"
    pad "$f" 2
    le 3 4 >>"$f"
    pad "$f" 3
    le 7 4 >>"$f"
    if [ "$stream" = 1 ]; then le 0 4 >>"$f"; else le 1 4 >>"$f"; fi
    pad "$f" 7
    if [ "$stream" = 1 ]; then
        # Grain marker (LBA 0, 28 bytes) and the zlib stream of 4096 'A's.
        le 0 8 >>"$f"; le 28 4 >>"$f"
        printf '\x78\xda\xed\xc1\x01\x0d\x00\x00\x00\xc2\xa0\x6c\xef\x5f\xca\x1e\x0e\x28\x00\x00\x00\xe0\xdd\x00\xff\xad\x10\x3d' >>"$f"
        pad "$f" 8
        if [ "$footer" = 1 ]; then
            le 1 8 >>"$f"; le 0 4 >>"$f"; le 3 4 >>"$f"
            pad "$f" 9
            vmdk_header $flags $version 2 $compress >>"$f"
        fi
        head -c 512 /dev/zero >>"$f" # end-of-stream marker
    else
        head -c 4096 /dev/urandom >>"$f"
    fi
}
mkdir -p "$seeds/raw" "$seeds/iso" "$seeds/vmdk" "$seeds/vdi" "$seeds/qcow2"
head -c 4096 /dev/urandom >"$seeds/raw/random"
printf 'hello\n' >"$seeds/raw/text"
# An ISO 9660 primary volume descriptor at 32 KiB.
{ head -c 32768 /dev/zero; printf '\x01CD001\x01'; head -c 2041 /dev/zero; } >"$seeds/iso/pvd"
head -c 65536 /dev/urandom >"$work/raw64k"
head -c 4096 /dev/zero >"$work/zero4k"
vmdk_tiny "$seeds/vmdk/tiny-sparse" 0 0
vmdk_tiny "$seeds/vmdk/tiny-stream" 1 0
vmdk_tiny "$seeds/vmdk/tiny-stream-footer" 1 1
# Descriptors whose flat extents are the input file itself (padded to hold the sectors they name).
hashes() { head -c "$1" /dev/zero | tr '\0' '#'; }
{ printf '# Disk DescriptorFile\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 1 FLAT "image" 0\n'; hashes 600; } >"$seeds/vmdk/flat-self"
{ printf '# Disk DescriptorFile\nCID=2\nparentCID=ffffffff\ncreateType="twoGbMaxExtentFlat"\nRW 8 ZERO\nRDONLY 1 FLAT "image" 1\nRW 1 FLAT "image"\n'; hashes 1200; } >"$seeds/vmdk/split"
q() { qemu-img "$@" >/dev/null 2>&1 || echo "warning: qemu-img $* failed (one seed fewer)"; }
q convert -f raw -O vmdk "$work/raw64k" "$seeds/vmdk/qemu-sparse"
q convert -f raw -O vmdk -o subformat=streamOptimized "$work/raw64k" "$seeds/vmdk/qemu-stream"
q create -f vdi "$seeds/vdi/empty" 4M
q create -f vdi -o static=on "$seeds/vdi/static" 4K
q convert -f raw -O vdi "$work/zero4k" "$seeds/vdi/converted"
q create -f qcow2 -o cluster_size=512 "$seeds/qcow2/empty" 64K
q convert -f raw -O qcow2 -o cluster_size=512 "$work/raw64k" "$seeds/qcow2/data"
q convert -c -f raw -O qcow2 -o cluster_size=4096 "$work/raw64k" "$seeds/qcow2/compressed"
q create -f qcow2 -o cluster_size=512 -b "$work/raw64k" -F raw "$seeds/qcow2/child"
q create -f qcow2 -o cluster_size=512,compat=0.10 "$seeds/qcow2/v2" 64K
# Probing sees every kind.
mkdir -p "$seeds/auto"
for d in "$seeds"/*; do
    [ "$d" = "$seeds/auto" ] && continue
    for f in "$d"/*; do cp "$f" "$seeds/auto/$(basename "$d")-$(basename "$f")"; done
done
# Seeds larger than the inputs the fuzzer tries are cut down to that size.
for d in "$seeds"/*; do
    for f in "$d"/*; do
        [ "$(stat -c %s "$f")" -gt 262144 ] && truncate -s 262144 "$f"
    done
done

# ---- Run ----
export TMPDIR="$work"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
fails=0
for t in "${targets[@]}"; do
    corpus="$fuzz/corpus/$t"
    mkdir -p "$corpus"
    seed_dir="$seeds/$t"
    [ -d "$seed_dir" ] || seed_dir="$seeds/raw"
    log="$fuzz/logs/fuzz-$t.log"
    "$fuzz/fuzz-$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
        -print_final_stats=1 -artifact_prefix="$fuzz/artifacts/$t-" "$corpus" "$seed_dir" >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        fails=$((fails + 1))
        repro=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/Test unit written to //')
        echo "FAIL $t: exit $rc; reproducer: ${repro:-none written}; run: $fuzz/fuzz-$t ${repro:-}; log: $log"
        grep -E 'ERROR|SUMMARY|#[0-9]+ 0x' "$log" | head -n 25 | sed 's/^/    /'
    else
        runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}')
        echo "ok   $t: ${runs:-?} inputs in ${secs}s, corpus of $(find "$corpus" -type f | wc -l)"
    fi
done
[ $fails -eq 0 ]
