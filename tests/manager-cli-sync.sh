#!/usr/bin/env bash
# lane: storage (an X server, and vireo-vm processes beside the other machine-driving tests)
# manager-cli-sync.sh - the manager's list follows vireo-manage: machines created, started, paused, saved, killed (aborted), powered off, changed and deleted from the CLI show within seconds, and a machine whose file is garbage shows its error without breaking the list.
set -u
source "$VIREO_SRC/tests/lib/mgr-gui.bash"
mgr_need
mgr_env mgrsync
mgr_run manager-cli-sync.py
