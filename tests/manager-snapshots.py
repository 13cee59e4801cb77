"""manager-snapshots.py - drives vireo --snapshots VM (see manager-snapshots.sh): take, restore, delete, cancel and bad input."""

import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["VIREO_SRC"], "tests", "lib"))
from mgr_gui import check, checked, manage, name, run, sensitive, vminfo  # noqa: E402

VM = os.environ["VIREO_TEST_VM"]
DISK = os.environ["VIREO_TEST_DISK"]
SETTINGS = os.environ["VIREO_TEST_SETTINGS"]
SHOTS = os.path.join(os.environ["VIREO_OUT"], "screenshots")
LOG = sys.argv[1] if len(sys.argv) > 1 else None


def snapshots():
    out = manage("snapshot", VM, "list", "--machinereadable").stdout
    return [line.split("=", 1)[1].strip('"') for line in out.splitlines() if line.startswith("SnapshotName")]


def sha():
    with open(SETTINGS, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def rows(gui, tree):
    return [name(c) for c in gui.findall(tree, "table cell") if name(c)]


def take(gui, win, snap_name, description):
    gui.click_button(win, "Take…")
    dlg = gui.window("Take Snapshot")
    entry = gui.find(dlg, "text", "Snapshot name")
    gui.set_text(entry, snap_name)
    gui.set_text(gui.find(dlg, "text", "Description"), description)
    gui.click_button(dlg, "OK")
    gui.window_gone("Take Snapshot")


def confirm(gui, button):
    gui.click_button(gui.alert(), button)
    gui.alert_gone()


def cancel_changes_nothing(gui, win, tree, snap, button):
    """Cancelling the question of button (Restore, Delete) for snap leaves the settings file as it was."""
    before = sha()
    gui.select_row(tree, snap)
    gui.click_button(win, button)
    confirm(gui, "Cancel")
    check(sha() == before, "cancelled %s changed the settings file" % button.lower())


def main(gui):
    gui.start_manager("--snapshots", VM, log=LOG)
    win = gui.window(VM + " - Snapshots")
    tree = gui.find(win, "tree table", "Snapshots")
    gui.wait(lambda: rows(gui, tree) == ["Current State"], what="only the current state in the tree", tree=win)

    # Bad input: an empty name is explained next to the field and OK stays disabled.
    gui.click_button(win, "Take…")
    dlg = gui.window("Take Snapshot")
    entry = gui.find(dlg, "text", "Snapshot name")
    check(gui.text(entry) == "Snapshot 1", "default name is %r" % gui.text(entry))
    gui.set_text(entry, "")
    err = gui.wait_field_error(dlg, "Snapshot name")
    check("name" in err, "inline error: %r" % err)
    check(not sensitive(gui.find(dlg, "push button", "OK")), "OK is enabled with an empty name")
    gui.set_text(entry, "First")
    gui.wait(lambda: not gui.field_error(dlg, "Snapshot name"), what="the error to go")
    gui.set_text(gui.find(dlg, "text", "Description"), "Before the first boot")
    gui.screenshot(os.path.join(SHOTS, "manager-snapshots-take.png"), dlg)
    gui.click_button(dlg, "OK")
    gui.window_gone("Take Snapshot")

    gui.wait(lambda: "First" in rows(gui, tree) and "Current State" in rows(gui, tree), what="First in the tree")
    check(snapshots() == ["First"], "snapshot list: %r" % snapshots())
    desc = manage("snapshot", VM, "list", "--machinereadable").stdout
    check('SnapshotDescription="Before the first boot"' in desc, "description not stored: %s" % desc)
    i = vminfo(VM)
    check(i.get("SATA-0-0") != DISK, "the disk is not a differencing image after the snapshot: %r" % i.get("SATA-0-0"))

    take(gui, win, "Second", "second one")
    gui.wait(lambda: "Second" in rows(gui, tree), what="Second in the tree")
    check(snapshots() == ["First", "Second"], "snapshot list: %r" % snapshots())
    check(vminfo(VM).get("CurrentSnapshotName") == "Second", "current snapshot is not Second")
    gui.select_row(tree, "Second")
    gui.screenshot(os.path.join(SHOTS, "manager-snapshots.png"), win)

    cancel_changes_nothing(gui, win, tree, "First", "Restore")

    # Restore First without taking a snapshot of the current state.
    gui.click_button(win, "Restore")
    box = gui.find(gui.alert(), "check box", "Take a snapshot of the current state first")
    check(checked(box), "the take-first box is not ticked by default")
    gui.click(box)
    gui.wait(lambda: not checked(box), what="the box to be unticked")
    confirm(gui, "Restore")
    gui.wait(lambda: vminfo(VM).get("CurrentSnapshotName") == "First", what="First to be the current snapshot")
    check(snapshots() == ["First", "Second"], "restore changed the snapshots: %r" % snapshots())

    # A snapshot with two children cannot be deleted: src/Main's reason shows as a dialog.
    take(gui, win, "Third", "")
    gui.wait(lambda: "Third" in rows(gui, tree), what="Third in the tree")
    before = sha()
    gui.select_row(tree, "First")
    gui.click_button(win, "Delete")
    gui.click_button(gui.alert(), "Delete")
    a = gui.wait(lambda: [x for x in gui.findall(gui.app, "alert")
                          if gui.findall(x, "label", pred=lambda n: "children" in name(n))][0],
                 what="src/Main's reason in an error dialog")
    gui.screenshot(os.path.join(SHOTS, "manager-snapshots-delete-refused.png"), a)
    gui.click_button(a, "Close")
    gui.alert_gone()
    check(sha() == before, "the refused delete changed the settings file")
    gui.select_row(tree, "Third")
    gui.click_button(win, "Delete")
    confirm(gui, "Delete")
    gui.wait(lambda: snapshots() == ["First", "Second"], what="Third to be deleted")
    gui.wait(lambda: "Third" not in rows(gui, tree), what="Third to leave the tree")
    check(vminfo(VM).get("CurrentSnapshotName") == "First", "the current snapshot is not First after deleting Third")

    cancel_changes_nothing(gui, win, tree, "Second", "Delete")

    gui.click_button(win, "Delete")
    confirm(gui, "Delete")
    gui.wait(lambda: snapshots() == ["First"], what="Second to be deleted")
    gui.wait(lambda: "Second" not in rows(gui, tree), what="Second to leave the tree")

    gui.select_row(tree, "First")
    gui.click_button(win, "Delete")
    confirm(gui, "Delete")
    gui.wait(lambda: snapshots() == [], what="First to be deleted")
    gui.wait(lambda: rows(gui, tree) == ["Current State"], what="only the current state in the tree")
    i = vminfo(VM)
    check(i.get("SATA-0-0") == DISK, "the disk is not the base VDI again: %r" % i.get("SATA-0-0"))
    check("CurrentSnapshotName" not in i, "a current snapshot is left: %r" % i.get("CurrentSnapshotName"))
    hdds = manage("list", "hdds").stdout
    check(sum(1 for line in hdds.splitlines() if line.startswith("UUID:")) == 1, "differencing images are left registered:\n%s" % hdds)
    left = os.listdir(os.path.join(os.path.dirname(SETTINGS), "Snapshots"))
    check(not [f for f in left if f.endswith(".vdi")], "image files are left: %r" % left)

    # A running machine: its own vireo-vm takes the snapshot (with its memory); restore and delete are refused.
    manage("startvm", VM, "--type", "headless")
    gui.wait(lambda: vminfo(VM).get("VMState") == "running", what="the machine to run")
    take(gui, win, "Online", "")
    gui.wait(lambda: "Online" in rows(gui, tree), what="Online in the tree")
    shown = manage("snapshot", VM, "showvminfo", "Online", "--machinereadable").stdout
    check('SnapshotOnline="on"' in shown, "the running machine's snapshot is not online:\n%s" % shown)
    check(vminfo(VM).get("VMState") == "running", "the machine stopped: %r" % vminfo(VM).get("VMState"))
    online = [c for c in gui.findall(tree, "table cell") if name(c) == "online"]
    check(len(online) == 1, "the tree does not mark the online snapshot")
    gui.select_row(tree, "Online")
    gui.screenshot(os.path.join(SHOTS, "manager-snapshots-running.png"), win)
    before = sha()
    for button in ("Restore", "Delete"):
        gui.click_button(win, button)
        a = gui.alert()
        check(gui.findall(a, "label", pred=lambda n: "Power off the machine first" in name(n)),
              "%s while running is not refused with a reason" % button)
        gui.click_button(a, "Close")
        gui.alert_gone()
    check(sha() == before, "a refused operation changed the settings file")
    manage("controlvm", VM, "poweroff")
    gui.wait(lambda: vminfo(VM).get("VMState") == "poweroff", what="the machine to power off")

    gui.click_button(win, "Close")
    gui.window_gone(VM + " - Snapshots")
    print("manager-snapshots: take, restore, delete, cancel, the empty name and the running machine passed")


run(main)
