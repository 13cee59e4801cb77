#!/usr/bin/env bash
# lane: storage (shares the storage guests of tests/lib/storage.bash, an X server or network ports with the others in it)
# screen-seabios.sh - real guest screens through the display pipeline: one boot of the test ISO on the software CPU, read back with tests/lib/pngtext.py (the VGA BIOS's own font, not Vireo's renderer).
# The guest: ISOLINUX boots the Debian kernel with console=tty0 and the busybox initramfs carrying the bochs DRM
# driver.  vireo-vm takes a PNG every second or two (--screenshot-after); the shots must show, in order:
#   1. SeaBIOS's text screen: 720x400 (80x25 cells of 9x16), "SeaBIOS" and "Booting from DVD/CD", light grey on black;
#   2. the Linux kernel's messages on the VGA text console (still 720x400): printk lines with their timestamps;
#   3. once bochs-drm has loaded, the framebuffer console at 1024x768 (128x48 cells of 8x16) with the
#      "VIREO-BOOT-OK" line that /init prints on the console, light grey on black.
set -u
source "$VIREO_SRC/tests/lib/storage.bash"
storage_need xorriso python3
if ! "$VIREO_BIN/vireo-vm" --help | grep -q -- "--vga"; then
    echo "this build's PC has no graphics adapter yet (vireo-vm has no --vga), so there is no screen to read"
    exit 77
fi
iso="$GUESTS_OUT/screen-bochs.iso"
storage_cached "$iso" env MODULES=bochs EXTRA_APPEND="console=tty0 vireo.end=hang" "$GUESTS_SRC/make-iso.sh" "$iso" none
pngtext="$VIREO_SRC/tests/lib/pngtext.py"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vireo-screen.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; [ -n "${VIREO_KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*"
    local last
    last=$(ls "$tmp"/shot-*.txt 2>/dev/null | sort -V | tail -n 1)
    [ -n "$last" ] && { echo "---- $(basename "$last")"; head -n 30 "$last"; }
    echo "---- COM1 (tail)"; tail -c 1500 "$tmp/com1.txt" 2>/dev/null | tr -c '[:print:]\n' '.'; echo
    echo "---- log (tail)"; tail -n 20 "$tmp/vm.log" 2>/dev/null
    exit 1
}

# Light grey (the VGA palette's colour 7, 0xaa or 0xa8 per channel) on black, read from pngtext's colour line.
check_colours() {
    local txt=$1 what=$2 fg bg
    fg=$(sed -n 's/^# colours fg \([0-9a-f]*\):.*/\1/p' "$txt")
    bg=$(sed -n 's/^# colours .* bg \([0-9a-f]*\):.*/\1/p' "$txt")
    [ "$bg" = 000000 ] || fail "$what: the background is #$bg, not black"
    [[ "$fg" =~ ^(a[0-9a-f])(a[0-9a-f])(a[0-9a-f])$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] &&
        [ "${BASH_REMATCH[2]}" = "${BASH_REMATCH[3]}" ] || fail "$what: the text is #$fg, not light grey"
}

# Seconds after start: every second while SeaBIOS and ISOLINUX run, then every two (64 shots at most).
times="1 2 3 4 5 6 7 8"
for ((t = 10; t <= 118; t += 2)); do times+=" $t"; done
shots=()
for t in $times; do shots+=(--screenshot-after "$t" "$tmp/shot-$t.png"); done
"$VIREO_BIN/vireo-vm" --exec "$STORAGE_EXEC" --memory 256M --cdrom "$iso" --boot d --serial1 "file:$tmp/com1.txt" \
    --log "$tmp/vm.log" --timeout 130 "${shots[@]}" >"$tmp/vm.out" 2>&1 &
pid=$!

phase=1 start=$SECONDS
for t in $times; do
    png="$tmp/shot-$t.png" txt="$tmp/shot-$t.txt"
    # The log names every shot, taken or not (a screen that is off between two modes gives none).
    while ! grep -q "screenshot '$png'" "$tmp/vm.log" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || fail "vireo-vm ended before the screenshot at ${t}s (phase $phase): $(tail -n 3 "$tmp/vm.out")"
        sleep 0.5
    done
    [ -s "$png" ] || continue
    # Framebuffer shots take a few seconds to read: skip to the newest once a newer one exists.
    if [ $phase -eq 3 ] && [ -s "$tmp/shot-$((t + 2)).png" ]; then continue; fi
    python3 "$pngtext" "$png" > "$txt" || fail "pngtext could not read the screenshot at ${t}s"
    size=$(sed -n 's/^# size \([0-9]*x[0-9]*\) .*/\1/p' "$txt")
    if [ $phase -eq 1 ]; then
        if grep -q "SeaBIOS" "$txt" && grep -q "Booting from DVD/CD" "$txt"; then
            [ "$size" = 720x400 ] || fail "SeaBIOS's screen is $size, not VGA text mode's 720x400"
            grep -q "cell 9x16 grid 80x25" "$txt" || fail "SeaBIOS's screen is not 80x25 cells of 9x16"
            check_colours "$txt" "SeaBIOS's screen"
            echo "ok   SeaBIOS's text screen at ${t}s: 720x400, \"$(grep -m1 SeaBIOS "$txt" | sed 's/ *$//')\", \"$(grep -m1 -o 'Booting from DVD/CD[^ ]*' "$txt")\", grey on black"
            phase=2
        elif [ "$size" != 720x400 ] || [ "$t" -ge 20 ]; then
            fail "no SeaBIOS banner and \"Booting from DVD/CD\" on the text screen by ${t}s"
        fi
    fi
    if [ $phase -eq 2 ] && [ "$size" = 720x400 ]; then
        line=$(grep -m1 -E '^\[ *[0-9]+\.[0-9]{6}\] ' "$txt")
        if [ -n "$line" ]; then
            check_colours "$txt" "the kernel's text console"
            echo "ok   the kernel's messages on the VGA text console at ${t}s: \"$line\""
            phase=3
        fi
    elif [ $phase -eq 2 ]; then
        fail "the screen left text mode ($size) before any kernel message was seen on the text console"
    fi
    if [ $phase -eq 3 ] && [ "$size" != 720x400 ]; then
        if grep -q "VIREO-BOOT-OK" "$txt"; then
            [ "$size" = 1024x768 ] || fail "the bochs-drm framebuffer console is $size, not 1024x768"
            grep -q "cell 8x16 grid 128x48" "$txt" || fail "the framebuffer console is not 128x48 cells of 8x16"
            check_colours "$txt" "the framebuffer console"
            echo "ok   the bochs-drm framebuffer console at ${t}s: 1024x768 with \"$(grep -m1 -o 'VIREO-BOOT-OK[ 0-9.]*' "$txt" | sed 's/ *$//')\", grey on black"
            phase=4
            break
        fi
    fi
done
[ $phase -eq 4 ] || fail "the guest never reached the framebuffer console with VIREO-BOOT-OK (phase $phase after $((SECONDS - start))s)"
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
grep -q "screenshot '.*' taken" "$tmp/vm.log" || fail "the VM log does not record the screenshots"
exit 0
