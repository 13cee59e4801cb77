#!/usr/bin/env bash
# interp-linux-boot.sh - the Linux boot and md5 check of soft-linux-boot.sh on the interpreter alone (--exec interp), the reference the recompiler is measured against.
SOFT_EXEC=interp exec bash "${VIREO_SRC:?}/tests/soft-linux-boot.sh"
