#!/usr/bin/env bash
# lane: storage (builds the test ISO of tests/lib/storage.bash and shares its X server lane)
# manager-newvm.sh - the New Machine assistant of vireo under Xvfb (tests/manager-newvm.py): inline errors for an unreadable ISO, a taken name, memory beyond the host's, a zero disk size and a read-only folder with nothing left behind, Cancel half-way, and a machine created from the test ISO (detected as 64-bit Linux) with its disk and DVD.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
source "$VIREO_SRC/tests/lib/mgr-gui.bash"
storage_need xorriso unshare
mgr_need
iso="$GUESTS_OUT/startvm.iso"
storage_cached "$iso" env INITRD="$(storage_initrd)" EXTRA_APPEND="vireo.storage=persist" "$GUESTS_SRC/make-iso.sh" "$iso" none

mgr_env newvm
export HOME="$tmp/user"
mkdir -p "$HOME" "$tmp/ro"
# The machine's own copy of the ISO, in the temp dir, so the registry never points at the shared cache.
cp "$iso" "$tmp/test.iso"
# A disc whose label libosinfo's database knows (Debian 11's netinst; libosinfo wants it bootable).
mkdir -p "$tmp/debiso/isolinux" && cp /usr/lib/ISOLINUX/isolinux.bin "$tmp/debiso/isolinux/" &&
    xorriso -as mkisofs -quiet -o "$tmp/debian.iso" -V "Debian 11.5.0 amd64 n" -b isolinux/isolinux.bin \
        -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table "$tmp/debiso" 2>"$tmp/xorriso.log" ||
    { echo "FAIL: xorriso: $(cat "$tmp/xorriso.log")"; exit 1; }
export NEWVM_DEBIAN_ISO="$tmp/debian.iso"
export NEWVM_TMP="$tmp" NEWVM_ISO="$tmp/test.iso" NEWVM_RO="$tmp/ro" NEWVM_VMS="$HOME/Vireo VMs"
# The folder without write permission.
mgr_run --readonly "$NEWVM_RO" manager-newvm.py
