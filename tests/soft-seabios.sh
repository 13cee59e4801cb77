#!/usr/bin/env bash
# soft-seabios.sh - SeaBIOS POST to its banner and "No bootable device" on the software CPU (the checks of kvm-seabios.sh).
VIREO_EXEC=soft exec bash "${VIREO_SRC:?}/tests/kvm-seabios.sh"
