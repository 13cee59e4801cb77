"""manager-gui.py ISO SHOTS LOG - the manager's main path end to end (see manager-gui.sh)."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["VIREO_SRC"], "tests", "lib"))
import mgr_gui  # noqa: E402
from mgr_gui import check, manage, name, ok, vminfo  # noqa: E402

ISO, SHOTS, LOG = sys.argv[1:4]
VM = "Gui Test"
HOME = os.environ["HOME"]
FOLDER = os.path.join(os.path.dirname(HOME), "vms")


def info():
    return vminfo(VM)


def main(gui):
    step = [0]

    def shot(label, node=None):
        step[0] += 1
        gui.screenshot(os.path.join(SHOTS, "manager-gui-%02d-%s.png" % (step[0], label)), node)

    gui.start_manager(log=LOG)
    win = gui.window("Vireo")
    gui.find(win, "label", "No machines yet — press New to create one", timeout=30)
    shot("empty", win)

    # ---- The assistant: name, the ISO (its type detected), memory, a new disk ----------------------------------
    gui.find(win, "label", "Welcome to Vireo")
    gui.click_button(win, "Create a Machine…")  # the empty list's own button (the toolbar's New does the same)
    dlg = gui.window("New Machine")
    gui.set_text(gui.find(dlg, "text", "Name"), VM)
    gui.set_text(gui.find(dlg, "text", "Folder"), FOLDER)
    # A wrong file first (inline error), then the right one through the file chooser, as a person would.
    other = os.path.join(os.path.dirname(ISO), "notes.iso")
    with open(other, "w") as f:
        f.write("not a CD image\n")
    gui.set_text(gui.find(dlg, "text", "ISO Image"), other)
    check("CD/DVD image" in gui.wait_field_error(dlg, "ISO Image"), "no inline error for a file that is no ISO")
    gui.click(gui.find(dlg, "push button", "Browse…", description="Choose the ISO image"))
    chooser = gui.find(gui.app, "file chooser", timeout=10)
    files = gui.find(chooser, "table", pred=lambda n: gui.findall(n, "table cell", os.path.basename(ISO)))
    gui.select_row(files, os.path.basename(ISO))
    gui.click_button(chooser, "Open")
    gui.wait(lambda: gui.text(gui.find(dlg, "text", "ISO Image")) == ISO, 10, "the chosen ISO in the entry", tree=dlg)
    check(gui.field_error(dlg, "ISO Image") == "", "the inline error stays after choosing the ISO")
    ok("the file chooser put the ISO in the assistant and the error went")
    detected = gui.find(dlg, "label", pred=lambda n: name(n).startswith("Detected:"), timeout=30)
    check("Linux" in name(detected), "the test ISO is not detected as Linux: %r" % name(detected))
    ok("the assistant detected the ISO: %s" % name(detected))
    shot("new-name", dlg)
    gui.click_button(dlg, "Next")
    mem = gui.find(dlg, "spin button", "Memory (MiB)")
    gui.set_value(mem, 256)
    shot("new-hardware", dlg)
    gui.click_button(dlg, "Next")
    size = gui.find(dlg, "spin button", "Disk size (GiB)")
    gui.set_value(size, 1)
    shot("new-disk", dlg)
    gui.click_button(dlg, "Next")
    shot("new-summary", dlg)
    gui.click_button(dlg, "Create")
    gui.window_gone("New Machine", timeout=60)
    i = info()
    check(i.get("name") == VM, "the machine is not registered: %r" % i.get("name"))
    check(i.get("memory") == "256", "memory %r, not 256" % i.get("memory"))
    check(i.get("VMState") == "poweroff", "state %r after creation" % i.get("VMState"))
    hdd = [v for k, v in i.items() if v.endswith(".vdi") or v.endswith(".qcow2")]
    dvd = [v for k, v in i.items() if v == ISO]
    check(hdd and os.path.isfile(hdd[0]), "no disk attached: %r" % i)
    check(dvd, "the ISO is not attached: %r" % i)
    ok("the assistant made '%s' (256 MiB, disk %s, the ISO attached)" % (VM, os.path.basename(hdd[0])))

    # The new machine is listed and selected.
    machines = gui.find(win, "table", "Machines", timeout=10)
    gui.find(machines, "table cell", VM, timeout=10)
    gui.wait(lambda: gui.text(gui.find(win, "label", "Name", timeout=5)) == VM, 10, "the details of the new machine",
             tree=win)

    # ---- Start: the console window opens, the list says running and shows a thumbnail -------------------------------
    gui.click_button(win, "Start")
    gui.find(machines, None, "Running", timeout=30)
    gui.wait(lambda: info().get("VMState") == "running", 30, "the file to say running")
    preview = gui.find(win, None, "Preview", timeout=10)
    gui.wait(lambda: mgr_gui.desc(preview).startswith("Screen of"), 40, "a thumbnail of the running machine",
             tree=win)
    ok("started: the list says Running, the file says running, preview: %s" % mgr_gui.desc(preview))
    # The console window (vireo-vm's own) is open; with no window manager it sits at the top left, over the
    # manager: move it to the right half of the screen so the pictures show both.
    consoles = subprocess.run(["xdotool", "search", "--name", VM], capture_output=True, text=True).stdout.split()
    check(consoles, "no console window titled after the machine")
    for wid in consoles:
        subprocess.run(["xdotool", "windowmove", wid, "1300", "0"], check=True)
    shot("console")
    shot("running", win)

    # ---- Pause and resume ------------------------------------------------------------------------------------------------
    gui.click_button(win, "Pause")
    gui.find(machines, None, "Paused", timeout=15)
    gui.wait(lambda: info().get("VMState") == "paused", 15, "the file to say paused")
    shot("paused", win)
    gui.click_button(win, "Resume")
    gui.find(machines, None, "Running", timeout=15)
    gui.wait(lambda: info().get("VMState") == "running", 15, "the file to say running again")
    ok("paused and resumed (list and file agree)")

    # ---- An online snapshot ------------------------------------------------------------------------------------------------
    gui.click_button(win, "Snapshots")
    snaps = gui.window(VM + " - Snapshots")
    gui.click_button(snaps, "Take…")
    take = gui.window("Take Snapshot")
    gui.set_text(gui.find(take, "text", "Snapshot name"), "Booted")
    shot("snapshot-take", take)
    gui.click_button(take, "OK")
    gui.window_gone("Take Snapshot", timeout=60)
    gui.find(snaps, None, "Booted", timeout=60)
    listing = manage("snapshot", VM, "list").stdout
    check("Booted" in listing, "vireo-manage does not list the snapshot: %r" % listing)
    ok("online snapshot 'Booted' taken (the tree and vireo-manage show it)")
    shot("snapshots", snaps)
    gui.click_button(snaps, "Close")

    # ---- Power off -------------------------------------------------------------------------------------------------------------
    gui.click_button(win, "Stop")
    gui.click(gui.find(gui.app, "menu item", "Power Off", timeout=10))
    gui.click_button(gui.alert(), "Power Off")
    gui.find(machines, None, "Powered Off", timeout=30)
    gui.wait(lambda: info().get("VMState") == "poweroff", 30, "the file to say poweroff")
    ok("powered off (list and file agree)")

    # ---- Settings: memory -------------------------------------------------------------------------------------------------------
    gui.click_button(win, "Settings")
    st = gui.window(VM + " - Settings")
    gui.tab(st, "System")
    mem = gui.find(st, "spin button", "Memory (MiB)")
    gui.set_value(mem, 384)
    shot("settings-system", st)
    gui.click_button(st, "OK")
    gui.window_gone(VM + " - Settings")
    check(info().get("memory") == "384", "memory %r after Settings, not 384" % info().get("memory"))
    ok("Settings changed the memory to 384 MiB on disk")
    shot("details", win)

    # ---- Clone: a full copy with its own disk, selected in the list ------------------------------------------------------------
    gui.menu(win, "Machine", "Clone…")
    cl = gui.window("Clone Machine")
    gui.set_text(gui.find(cl, "text", "Name"), VM)
    check(gui.wait_field_error(cl, "Name").startswith("A machine named"), "no inline error for a taken clone name")
    gui.set_text(gui.find(cl, "text", "Name"), VM + " Copy")
    shot("clone", cl)
    gui.click_button(cl, "Clone")
    gui.window_gone("Clone Machine")
    gui.find(machines, "table cell", VM + " Copy", timeout=60)
    ci = vminfo(VM + " Copy")
    clone_disks = [v for v in ci.values() if v.endswith(".vdi")]
    check(ci.get("memory") == "384" and clone_disks and os.path.isfile(clone_disks[0]) and clone_disks[0] != hdd[0],
          "the clone has no disk of its own or other settings: %r" % ci)
    ok("cloned as '%s Copy' with its own disk %s" % (VM, os.path.basename(clone_disks[0])))
    gui.click_button(win, "Remove")
    gui.click_button(gui.window("Remove Machine"), "Delete All Files")
    gui.wait(lambda: not gui.findall(machines, "table cell", VM + " Copy"), 60, "the clone to leave the list")
    check(not os.path.exists(clone_disks[0]), "the clone's disk is still there")
    gui.select_row(machines, VM)

    # ---- The media manager and preferences are main views too: their pictures ---------------------------------------------------
    gui.menu(win, "File", "Media Manager…")
    media = gui.window("Media Manager")
    gui.find(media, None, os.path.basename(hdd[0]), timeout=15)
    shot("media", media)
    gui.click_button(media, "Close")
    gui.menu(win, "File", "Preferences…")
    prefs = gui.window("Preferences")
    shot("preferences", prefs)
    gui.click_button(prefs, "Cancel")

    # ---- Remove with its files -------------------------------------------------------------------------------------------------------
    folder = os.path.dirname(i["CfgFile"])
    check(os.path.isdir(folder), "no machine folder %s" % folder)
    gui.click_button(win, "Remove")
    rm = gui.window("Remove Machine")
    shot("remove", rm)
    gui.click_button(rm, "Delete All Files")
    gui.wait(lambda: not gui.findall(machines, None, VM), 60, "the machine to leave the list")
    gui.wait(lambda: not os.path.exists(folder), 30, "the machine folder to be deleted")
    check(manage("list", "vms").stdout.strip() == "", "machines are still registered")
    check(hdd[0] not in manage("list", "hdds").stdout, "the disk is still registered")
    check(not os.path.exists(hdd[0]), "the disk file is still there")
    ok("removed with its files: folder gone, nothing registered")
    shot("after-remove", win)


mgr_gui.run(main, width=2100, height=1000)
