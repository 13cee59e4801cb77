#!/usr/bin/env bash
# kvm-guests.sh - runs every test guest (tests/lib/guest-list.bash) under the KVM backend: exit codes and COM1 output.
#
# Each guest ends through the test exit device with 0 when its checks pass and a
# distinct code per failed check (listed at the top of its .asm file).
set -u
. "${VIREO_SRC:?}/tests/lib/kvm.bash"
. "$VIREO_SRC/tests/lib/guest-list.bash"
kvm_need_vars
kvm_skip_unless_usable

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-kvm-guests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
grep -qwE 'vmx|svm' /proc/cpuinfo && guests+=("$guest_sys_gates")
run_guest_list kvm "$tmp"
