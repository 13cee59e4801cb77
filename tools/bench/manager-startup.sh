#!/usr/bin/env bash
# manager-startup.sh OUTDIR SRCROOT - how long the manager (vireo) takes to a usable window: the list loaded,
# shown and drawn once (vireo --startup-time), with 50 registered machines and, for comparison, with none.
#
# The machines are made with vireo-manage in a private registry: varied OS types, every third one with a
# disk (16 MiB qcow2), every fifth of those with two snapshots, so the load reads realistic files.  Each
# configuration runs RUNS times (default 5) in a fresh vireo under Xvfb; the table gives min/median/max in
# ms of the time vireo prints (from main() to the first drawn frame after the first load was listed).
# The accessibility bridge is off (NO_AT_BRIDGE=1) so that no D-Bus session is needed.
set -u
out=${1:?usage: manager-startup.sh OUTDIR SRCROOT}
src=${2:?usage: manager-startup.sh OUTDIR SRCROOT}
RUNS=${RUNS:-5}
MACHINES=${MACHINES:-50}
bin="$out/stage/bin"
dir="$out/bench-manager"
command -v Xvfb >/dev/null || { echo "manager-startup: Xvfb is missing (apt-get install xvfb)" >&2; exit 1; }
[ -x "$bin/vireo" ] || { echo "manager-startup: $bin/vireo is missing (kmk first)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"
xvfb=
cleanup() { [ -n "$xvfb" ] && kill "$xvfb" 2>/dev/null; rm -rf "$dir/homes" "$dir/vms"; }
trap cleanup EXIT

mg() {
    "$bin/vireo-manage" "$@" >>"$dir/setup.log" 2>&1 ||
        { echo "manager-startup: vireo-manage $* failed (see $dir/setup.log)" >&2; exit 1; }
}

echo "== $MACHINES machines"
types=(Debian_64 Ubuntu_64 Fedora_64 Windows10_64 Windows11_64 WindowsXP FreeBSD_64 Alpine_64 DOS Other)
export VIREO_USER_HOME="$dir/homes/full"
mkdir -p "$VIREO_USER_HOME" "$dir/vms"
for i in $(seq 1 "$MACHINES"); do
    name=$(printf "Machine %02d" "$i")
    mg createvm --name "$name" --ostype "${types[$((i % ${#types[@]}))]}" --basefolder "$dir/vms" --register
    if [ $((i % 3)) -eq 0 ]; then
        mg storagectl "$name" --name SATA0 --add sata
        mg createmedium disk --filename "$dir/vms/$name/disk.qcow2" --size 16 --format qcow2
        mg storageattach "$name" --storagectl SATA0 --port 0 --type hdd --medium "$dir/vms/$name/disk.qcow2"
        if [ $((i % 15)) -eq 0 ]; then
            mg snapshot "$name" take "Installed"
            mg snapshot "$name" take "Updated" --description "after the updates"
        fi
    fi
    mg modifyvm "$name" --description "Benchmark machine $i"
done
mkdir -p "$dir/homes/empty"

# One X server for all runs.
r=$(mktemp -u); mkfifo "$r"
Xvfb -displayfd 8 -screen 0 1280x900x24 -nolisten tcp 8>"$r" >/dev/null 2>&1 &
xvfb=$!
read -r num <"$r"
rm -f "$r"
export DISPLAY=":$num" NO_AT_BRIDGE=1 GTK_THEME=Adwaita
export XDG_RUNTIME_DIR="$dir/run"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

rows="$dir/runs.tsv"
: >"$rows"
for conf in full empty; do
    export VIREO_USER_HOME="$dir/homes/$conf"
    for r in $(seq 1 "$RUNS"); do
        line=$(timeout 60 "$bin/vireo" --startup-time 2>>"$dir/vireo.log" | grep "usable window after")
        ms=$(echo "$line" | sed -n 's/.*after \([0-9.]*\) ms with \([0-9]*\) machines.*/\1/p')
        n=$(echo "$line" | sed -n 's/.*after \([0-9.]*\) ms with \([0-9]*\) machines.*/\2/p')
        printf '%s\t%s\t%s\t%s\n' "$conf" "$r" "${ms:--}" "${n:--}" >>"$rows"
        printf '   %-6s #%s %s ms, %s machines listed\n' "$conf" "$r" "${ms:--}" "${n:--}"
    done
done

echo "== vireo --startup-time: main() to a usable window (the list loaded and drawn), $RUNS runs each"
sort -t$'\t' -k1,1 -k3,3n "$rows" | awk -F'\t' '
  { if ($3 != "-") { v[$1] = v[$1] " " $3; n[$1]++; m[$1] = $4 } else bad[$1]++ }
  END {
    printf "%-10s %9s %8s %8s %8s  %s\n", "registry", "machines", "min_ms", "med_ms", "max_ms", "notes"
    split("full empty", order, " ")
    for (k = 1; k <= 2; k++) {
      c = order[k]
      cnt = split(substr(v[c], 2), a, " ")
      if (!cnt) { printf "%-10s %9s %8s %8s %8s  %s\n", c, "-", "-", "-", "-", "no run finished"; continue }
      med = (cnt % 2) ? a[(cnt + 1) / 2] : (a[cnt / 2] + a[cnt / 2 + 1]) / 2
      printf "%-10s %9s %8.1f %8.1f %8.1f  %s\n", c, m[c], a[1], med, a[cnt], (bad[c] ? bad[c] " runs failed" : "")
    }
  }' | tee "$dir/summary.txt"
