#!/usr/bin/env bash
# acpi-tables.sh - Vireo's ACPI tables: (1) vireo-vm --dump-acpi writes every table for several configurations
# and each one disassembles with iasl -d and compiles back with iasl, without errors or warnings; (2) the Debian
# kernel boots with them on the software CPU, lists them, routes interrupts through them without ACPI errors and
# finds the devices the DSDT describes.  ACPI_TEST_CPUS (default 2) is the guest's vCPU count; ACPI_TEST_HPET=0
# leaves the HPET out (by default the machine has one and the kernel must list its table).
set -u
: "${VIREO_BIN:?}" "${VIREO_OUT:?}" "${VIREO_SRC:?}"
CPUS=${ACPI_TEST_CPUS:-2}
HPET=${ACPI_TEST_HPET:-1}
LIMIT=${ACPI_BOOT_LIMIT:-300}
command -v iasl >/dev/null || { echo "FAIL: iasl is missing (Debian package acpica-tools; ./configure --install-deps)"; exit 1; }
. "$VIREO_SRC/tests/lib/linux.bash"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-acpi.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export VIREO_USER_HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$VIREO_USER_HOME" "$XDG_RUNTIME_DIR"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# ---- (1) dumps: each configuration's tables through iasl -d and back through iasl.
# iasl 20200925 cannot disassemble a binary RSDP ("does not contain a valid ACPI table"): tstAcpi checks its checksums.
dump_check() { # NAME EXPECTED-TABLES vireo-vm-options...
    local name=$1 want=$2; shift 2
    local dir="$tmp/dump-$name"
    "$VIREO_BIN/vireo-vm" --log "$dir.log" "$@" --dump-acpi "$dir" >"$dir.out" 2>&1 ||
        { bad "$name: vireo-vm --dump-acpi failed: $(tail -n 3 "$dir.out")"; return; }
    local got
    got=$(cd "$dir" && ls *.dat | sed 's/\.dat$//' | sort | tr '\n' ' ')
    [ "$got" = "$want" ] || bad "$name: tables '$got', want '$want'"
    local f sig
    for f in "$dir"/*.dat; do
        sig=$(basename "$f" .dat)
        [ "$sig" = RSDP ] && continue
        (cd "$dir" && iasl -d "$sig.dat" >"$sig.dis.log" 2>&1) || { bad "$name: iasl -d $sig: $(tail -n 2 "$dir/$sig.dis.log")"; continue; }
        (cd "$dir" && iasl "$sig.dsl" >"$sig.asl.log" 2>&1) || { bad "$name: iasl $sig.dsl: $(grep -E 'Error' "$dir/$sig.asl.log" | head -n 3)"; continue; }
        grep -q "Compilation successful. 0 Errors, 0 Warnings" "$dir/$sig.asl.log" ||
            bad "$name: $sig recompiled with warnings: $(grep -E 'Warning|Error' "$dir/$sig.asl.log" | head -n 3)"
    done
    echo "ok   dump $name: $got(each through iasl -d and iasl)"
}
dump_check soft-1cpu "APIC DSDT FACP FACS HPET RSDP RSDT SSDT XSDT " --exec soft --cpus 1 --serial1 null
dump_check soft-32cpu-hpet-tpm "APIC DSDT FACP FACS HPET RSDP RSDT SSDT TPM2 XSDT " \
    --exec soft --cpus 32 --memory 3584M --serial1 null --serial2 null --serial4 null --hpet on --tpm "$tmp/tpm"
dump_check soft-no-hpet "APIC DSDT FACP FACS RSDP RSDT SSDT XSDT " --exec soft --cpus 2 --hpet off
# The KVM backend runs the same APIC models: the same tables.
if [ -c /dev/kvm ] && [ -w /dev/kvm ]; then
    dump_check kvm-2cpu "APIC DSDT FACP FACS HPET RSDP RSDT SSDT XSDT " --exec kvm --cpus 2
fi
# The 32 processors and the per-VM values in the disassembled SSDT and DSDT.
d="$tmp/dump-soft-32cpu-hpet-tpm"
n=$(grep -c '"ACPI0007"' "$d/SSDT.dsl" 2>/dev/null)
[ "$n" = 32 ] || bad "SSDT of 32 vCPUs has ${n:-no} processor devices"
grep -q 'Name (COMP, 0x0000000B)' "$d/DSDT.dsl" || bad "DSDT COM mask is not COM1, COM2, COM4: $(grep 'Name (COMP' "$d/DSDT.dsl")"
grep -q 'Name (HPTP, 0x00000001)' "$d/DSDT.dsl" || bad "DSDT does not mark the HPET present"
# The TPM2 table's event log area (revision 4 fields): 64 KiB where the dump placed the etc/tpm/log blob.
grep -Eq 'Minimum Log Length : 00010000' "$d/TPM2.dsl" || bad "TPM2 LAML is not 64 KiB: $(grep 'Log Length' "$d/TPM2.dsl")"
grep -Eq 'Log Address : 0000000007FC0000' "$d/TPM2.dsl" || bad "TPM2 LASA is not the dump's log address: $(grep 'Log Address' "$d/TPM2.dsl")"
grep -q 'Name (P64S, 0x0000000140000000)' "$d/DSDT.dsl" || bad "DSDT 64-bit window does not start at 5 GiB (4.5 GiB of RAM ends there, rounded to 1 GiB): $(grep 'Name (P64S' "$d/DSDT.dsl")"
"$VIREO_BIN/vireo-vm" --acpi off --dump-acpi "$tmp/none" >/dev/null 2>&1 && bad "--dump-acpi with --acpi off was accepted"

# ---- (2) the kernel boots with the tables.
# An /init on top of the busybox image: the ACPI devices' hardware IDs and the PCI functions the guest sees.
mkdir -p "$tmp/overlay"
cat >"$tmp/overlay/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "VIREO-BOOT-OK"
for d in /sys/bus/acpi/devices/*; do
    [ -r "$d/hid" ] && echo "ACPI-DEV $(cat "$d/hid") $(cat "$d/status" 2>/dev/null)"
done
for d in /sys/bus/pci/devices/*; do
    echo "PCI-DEV $(cat "$d/vendor"):$(cat "$d/device") irq $(cat "$d/irq")"
done
echo "ACPI-CPUS $(grep -c ^processor /proc/cpuinfo)"
echo "ACPI-DONE"
poweroff -f
INIT
chmod 755 "$tmp/overlay/init"
(cd "$tmp/overlay" && echo init | cpio --quiet -o -H newc -R 0:0) | gzip -9 -n >"$tmp/overlay.gz"
cat "$initrd" "$tmp/overlay.gz" >"$tmp/initrd.gz"

serial="$tmp/com1.txt"
: >"$serial"
hpet_opt=(--hpet off)
[ "$HPET" = 1 ] && hpet_opt=(--hpet on)
linux_run ACPI-DONE "$LIMIT" "$serial" --exec soft --memory 256M --cpus "$CPUS" "${hpet_opt[@]}" --kernel "$kernel" \
    --initrd "$tmp/initrd.gz" --append "console=ttyS0 panic=-1" --log "$tmp/vm.log"
elapsed=$linux_elapsed
log=$(tr -d '\r' <"$serial")
grep -q "ACPI-DONE" <<<"$log" || bad "the guest did not finish its probe within ${LIMIT}s"
want_lines=("ACPI: RSDP" "ACPI: XSDT" "ACPI: FACP" "ACPI: DSDT" "ACPI: FACS" "ACPI: SSDT" "ACPI: APIC"
    "ACPI: Interpreter enabled" "ACPI: PM: (supports S0 S5)" "ACPI: Using IOAPIC for interrupt routing"
    "ACPI: PCI Root Bridge [PCI0]" "Interrupt link LNKA" "Interrupt link LNKD" "PCI: Using ACPI for IRQ routing")
[ "$HPET" = 1 ] && want_lines+=("ACPI: HPET")
for w in "${want_lines[@]}"; do
    grep -qF "$w" <<<"$log" || bad "the kernel log lacks '$w'"
done
n=$(grep -c "ACPI: INT_SRC_OVR" <<<"$log")
[ "$n" = 5 ] || bad "the kernel took $n interrupt source overrides from the MADT, want 5"
# The PIIX4 PM function (8086:7113) carries the FADT's registers: the PM timer must pass the kernel's check.
errors=$(grep -E "ACPI (BIOS )?Error|ACPI Warning|ACPI BIOS Warning|PM-Timer failed" <<<"$log")
grep -q "PCI-DEV 0x8086:0x7113" <<<"$log" || bad "the guest has no PIIX4 PM function (8086:7113)"
grep -q "clocksource: acpi_pm" <<<"$log" || bad "the kernel did not register the ACPI PM timer as a clock source"

[ -z "$errors" ] || bad "ACPI errors or warnings in the kernel log: $(head -n 5 <<<"$errors")"
for hid in PNP0A03 PNP0B00 PNP0303 PNP0F13 PNP0501 PNP0C0F ACPI0007; do
    grep -q "ACPI-DEV $hid" <<<"$log" || bad "the guest's /sys/bus/acpi/devices lacks $hid"
done
# COM2-4, the HPET and the TPM are absent here: Linux lists their devices with the _STA of 0 the patched DSDT gives.
n=$(grep -c "ACPI-DEV PNP0501 15" <<<"$log")
[ "$n" = 1 ] || bad "the guest sees $n present COM ports, want 1 (COM1)"
n=$(grep -c "ACPI-DEV PNP0501 0" <<<"$log")
[ "$n" = 3 ] || bad "the guest sees $n absent COM ports, want 3 (COM2-COM4)"
if [ "$HPET" = 1 ]; then
    grep -q "ACPI-DEV PNP0103 15" <<<"$log" || bad "the guest does not see the configured HPET"
else
    grep -q "ACPI-DEV PNP0103 0" <<<"$log" || bad "the HPET device is not marked absent"
fi
grep -q "ACPI-DEV MSFT0101 0" <<<"$log" || bad "the TPM device is not marked absent"
n=$(grep -c "ACPI-DEV ACPI0007" <<<"$log")
[ "$n" = "$CPUS" ] || bad "the guest sees $n processor devices, want $CPUS"
n=$(sed -n 's/^ACPI-CPUS //p' <<<"$log")
[ "$n" = "$CPUS" ] || bad "the guest brought up ${n:-no} CPUs from the MADT, want $CPUS"
grep -q "Using ACPI (MADT) for SMP configuration information" <<<"$log" || bad "the kernel did not take its CPUs from the MADT"
grep -q "smp: Brought up 1 node, $CPUS CPU" <<<"$log" || bad "the kernel did not bring up $CPUS CPUs"
if [ $fail -ne 0 ]; then
    echo "---- COM1 (ACPI lines and tail)"
    grep -a -i "acpi\|pnp\|irq" "$serial" | head -n 80
    tail -c 2000 "$serial" | tr -c '[:print:]\n' '.'
    echo "---- log (tail)"; tail -n 20 "$tmp/vm.log"
    exit 1
fi
echo "ok   $(basename "$kernel") booted with Vireo's ACPI tables ($CPUS vCPU(s)) in ${elapsed}s: tables listed, IOAPIC routing, no ACPI errors"
grep -E "^ACPI-DEV|^ACPI-CPUS" <<<"$log" | sort | uniq -c | tr -s ' '
exit 0
