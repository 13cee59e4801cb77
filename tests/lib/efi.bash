# efi.bash - guests for the UEFI tests, built at test time and cached under $VIREO_OUT/guests: an initramfs whose
# /init prints VIREO-BOOT-OK and, with vireo.efivar=1, keeps a token in a UEFI variable through efivarfs, and a
# GPT disk whose EFI system partition holds GRUB (x86_64-efi, standalone) as \EFI\BOOT\BOOTX64.EFI, the kernel
# and that initramfs.  No root needed: the partition is a FAT file system made on a plain file with mtools.
: "${VIREO_BIN:?}" "${VIREO_OUT:?}" "${VIREO_SRC:?}"
source "$VIREO_SRC/tests/lib/storage.bash"

EFI_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
EFI_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
# The test variable's vendor GUID (fixed, made up for Vireo's tests).
EFI_TEST_VAR="VireoTest-6f1d0c2a-93b4-4e57-8a1f-2c5e7d90b341"

efi_need() {
    storage_need xorriso grub-mkstandalone grub-mkrescue mformat mcopy mmd mkfs.vfat sfdisk
    [ -f "$EFI_CODE" ] && [ -f "$EFI_VARS" ] || { echo "FAIL: $EFI_CODE missing (./configure --install-deps installs ovmf)"; exit 1; }
    [ -d /usr/lib/grub/x86_64-efi ] || { echo "FAIL: /usr/lib/grub/x86_64-efi missing (grub-efi-amd64-bin)"; exit 1; }
}

# Whether $1 is missing or older than this library and the shared guest scripts.
efi_stale() {
    [ ! -s "$1" ] || [ "$GUESTS_SRC/make-initramfs.sh" -nt "$1" ] || [ "$GUESTS_SRC/make-iso-efi.sh" -nt "$1" ] ||
        [ "$VIREO_SRC/tests/lib/efi.bash" -nt "$1" ]
}

# The busybox initramfs with the AHCI/SCSI drivers and efivarfs, and the UEFI test /init on top.
efi_initrd() {
    local out="$GUESTS_OUT/efi-initrd.gz" root
    if efi_stale "$out"; then
        MODULES="ahci sd_mod sr_mod efivarfs" "$GUESTS_SRC/make-initramfs.sh" "$out.base" >/dev/null ||
            { echo "FAIL: make-initramfs.sh failed"; exit 1; }
        root=$(mktemp -d)
        cat > "$root/init" <<INIT
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read -r ko; do insmod "/lib/modules/\$ko" 2>/dev/null; done < /lib/modules/load-order
echo "VIREO-BOOT-OK \$(cut -d' ' -f1 /proc/uptime)"
[ -d /sys/firmware/efi ] && echo "VIREO-EFI-BOOT"
if grep -q 'vireo.efivar=1' /proc/cmdline; then
    mount -t efivarfs efivarfs /sys/firmware/efi/efivars || echo "EFIVAR-NO-EFIVARFS"
    v=/sys/firmware/efi/efivars/$EFI_TEST_VAR
    if [ -e "\$v" ]; then
        echo "EFIVAR-FOUND \$(tail -c +5 "\$v")"
    else
        t=\$(head -c 16 /dev/urandom | md5sum | cut -c1-16)
        # efivarfs: 4 bytes of attributes (non-volatile, boot service and runtime access), then the data.
        if printf '\\007\\000\\000\\000%s' "\$t" > "\$v"; then echo "EFIVAR-NEW \$t"; else echo "EFIVAR-WRITE-FAILED"; fi
    fi
    # The test kills or powers off this machine itself: powering off here would race with its SIGKILL.
    echo "VIREO-DONE"
    while :; do sleep 3600; done
fi
echo "VIREO-DONE"
poweroff -f
INIT
        chmod 755 "$root/init"
        (cd "$root" && echo init | cpio --quiet -o -H newc -R 0:0) | gzip -9 -n > "$out.overlay"
        cat "$out.base" "$out.overlay" > "$out"
        rm -rf "$root" "$out.base" "$out.overlay"
    fi
    echo "$out"
}

# efi_disk OUT INITRD APPEND: a 64 MiB GPT disk with one EFI system partition (FAT) holding GRUB as the
# removable-media boot loader, the newest /boot/vmlinuz-* and INITRD, booting with console=ttyS0 APPEND.
efi_disk() {
    local out=$1 initrd=$2 append=$3 work kernel
    efi_stale "$out" || [ "$initrd" -nt "$out" ] || return 0
    work=$(mktemp -d)
    kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
    touch "$work/vireo-efi-disk"
    cat > "$work/grub.cfg" <<CFG
insmod part_gpt
insmod fat
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
search --no-floppy --file --set=root /vireo-efi-disk
echo "VIREO-GRUB-EFI-DISK"
linux /vmlinuz console=ttyS0,115200 panic=-1 $append
initrd /initrd.gz
boot
CFG
    if ! grub-mkstandalone -O x86_64-efi -o "$work/BOOTX64.EFI" "boot/grub/grub.cfg=$work/grub.cfg" >"$work/log" 2>&1 ||
        ! truncate -s 62M "$work/esp.img" || ! mkfs.vfat -n VIREOESP "$work/esp.img" >>"$work/log" 2>&1 ||
        ! mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT >>"$work/log" 2>&1 ||
        ! mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI >>"$work/log" 2>&1 ||
        ! mcopy -i "$work/esp.img" "$kernel" ::/vmlinuz >>"$work/log" 2>&1 ||
        ! mcopy -i "$work/esp.img" "$initrd" ::/initrd.gz >>"$work/log" 2>&1 ||
        ! mcopy -i "$work/esp.img" "$work/vireo-efi-disk" ::/vireo-efi-disk >>"$work/log" 2>&1; then
        echo "FAIL: building the UEFI disk failed:"; tail -n 20 "$work/log"; rm -rf "$work"; exit 1
    fi
    rm -f "$out.tmp" && truncate -s 64M "$out.tmp"
    # One 62 MiB partition from 1 MiB (the backup GPT needs the disk's last sectors): the EFI system partition type.
    printf 'label: gpt\nstart=2048, size=126976, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system"\n' |
        sfdisk --quiet "$out.tmp" >>"$work/log" 2>&1 || { echo "FAIL: sfdisk:"; tail -n 5 "$work/log"; rm -rf "$work"; exit 1; }
    dd if="$work/esp.img" of="$out.tmp" bs=1M seek=1 conv=notrunc status=none
    mv "$out.tmp" "$out"
    rm -rf "$work"
}
