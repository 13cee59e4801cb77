#!/usr/bin/env bash
# interp-guests.sh - every test guest (tests/lib/guest-list.bash) on the interpreter alone (--exec interp): soft-guests.sh runs them on the recompiler.
set -u
. "${VIREO_SRC:?}/tests/lib/kvm.bash"
. "$VIREO_SRC/tests/lib/guest-list.bash"
kvm_need_vars
export VIREO_EXEC=interp

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-interp-guests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
guests+=("$guest_sys_gates" "$guest_apic_timer" "$guest_a20")
run_guest_list interp "$tmp"
