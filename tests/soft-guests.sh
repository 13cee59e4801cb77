#!/usr/bin/env bash
# soft-guests.sh - runs every test guest (tests/lib/guest-list.bash) on the software CPU: exit codes and COM1 output.
set -u
. "${VIREO_SRC:?}/tests/lib/kvm.bash"
. "$VIREO_SRC/tests/lib/guest-list.bash"
kvm_need_vars
export VIREO_EXEC=soft

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-soft-guests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
guests+=("$guest_sys_gates" "$guest_apic_timer" "$guest_a20" "$guest_hpet")
run_guest_list soft "$tmp"
