"""manager-settings.py - drives vireo --settings under Xvfb and checks the machine files after each step (run by manager-settings.sh)."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["VIREO_SRC"], "tests", "lib"))
from mgr_gui import check, manage, name, run, sensitive, showing, vminfo  # noqa: E402

TMP = sys.argv[1]
SHOTS = os.path.join(os.environ["VIREO_OUT"], "screenshots")
LOG = os.path.join(TMP, "vireo.log")


def host_memory_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


def shot(gui, win, page):
    gui.screenshot(os.path.join(SHOTS, "settings-%s.png" % page), win)


def ok_button(gui, dlg):
    return gui.find(dlg, "push button", "OK")


def expect_error(gui, dlg, field, setter, bad, good):
    """A bad value shows its inline error and disables OK; the good one clears both."""
    setter(bad)
    msg = gui.wait_field_error(dlg, field)
    gui.wait(lambda: not sensitive(ok_button(gui, dlg)), what="OK disabled for a bad %s" % field, tree=dlg)
    setter(good)
    gui.wait(lambda: gui.field_error(dlg, field) == "", what="the %s error to go" % field, tree=dlg)
    gui.wait(lambda: sensitive(ok_button(gui, dlg)), what="OK enabled again after %s" % field, tree=dlg)
    return msg


def form(gui, parent, button, title, fields, bad):
    """Adds a list entry through its form: fields are (label, text); bad is (label, bad text, good text), whose
    inline error must show and keep OK disabled until fixed."""
    gui.click_button(parent, button)
    f = gui.window(title)
    for label, text in fields:
        gui.set_text(gui.find(f, "text", label), text)
    label, wrong, right = bad
    entry = gui.find(f, "text", label)
    gui.set_text(entry, wrong)
    gui.wait_field_error(f, label)
    check(not sensitive(gui.find(f, "push button", "OK")), "OK of %r is enabled with a bad %s" % (title, label))
    gui.set_text(entry, right)
    gui.wait(lambda: gui.field_error(f, label) == "", what="the %s error to go" % label, tree=f)
    gui.click_button(f, "OK")
    gui.window_gone(title)


def start_settings(gui, vm):
    gui.stop_manager()
    gui.start_manager("--settings", vm, log=LOG)
    return gui.window("%s - Settings" % vm)


def cell(gui, dlg, prefix):
    return gui.find(dlg, "table cell", pred=lambda n: name(n).startswith(prefix))


def storage_row(gui, dlg, prefix):
    """Selects the row of the Storage page's tree whose text starts with prefix."""
    gui.select_row(gui.find(dlg, "tree table", "Storage devices"), pred=lambda n: name(n).startswith(prefix))


def create_disk(gui, dlg, mib):
    gui.click_button(dlg, "Add Hard Disk")
    gui.click_button(gui.window("Add Hard Disk"), "Create New…")
    cd = gui.window("Create Hard Disk")
    fname = gui.text(gui.find(cd, "text", "File name"))
    size = gui.find(cd, "spin button", "Size (MiB)")
    gui.set_value(size, 0)
    gui.wait_field_error(cd, "Size (MiB)")
    check(not sensitive(gui.find(cd, "push button", "Create")), "Create is enabled for a disk of 0 MiB")
    gui.set_value(size, mib)
    gui.click_button(cd, "Create")
    gui.window_gone("Create Hard Disk")
    cell(gui, dlg, "Hard disk: %s (%d MiB)" % (fname, mib))
    return fname


def main(gui):
    t0 = time.monotonic()
    os.makedirs(SHOTS, exist_ok=True)
    before = vminfo("Set VM")
    vm_dir = os.path.dirname(before["CfgFile"])

    # ---- Every page, with an invalid value on each that has one -------------------------------------------
    dlg = start_settings(gui, "Set VM")
    name_e = gui.find(dlg, "text", "Name")
    msg = expect_error(gui, dlg, "Name", lambda v: gui.set_text(name_e, v), "Other VM", "Set VM")
    check("Other VM" in msg or "name" in msg.lower(), "the name error says why: %r" % msg)
    gui.set_text(gui.find(dlg, "text", "Description"), "Made by the settings test")
    # The OS types are grouped in family submenus.
    ostype = gui.find(dlg, "combo box", "Type")
    gui.click(ostype)
    gui.click(gui.find(ostype, "menu", "Linux"))
    gui.click(gui.find(ostype, "menu item", "Ubuntu (64-bit)"))
    time.sleep(0.3)  # the closed menu's area is redrawn (no window manager under Xvfb)
    shot(gui, dlg, "general")

    gui.tab(dlg, "System")
    mem = gui.find(dlg, "spin button", "Memory (MiB)")
    gui.set_value(mem, host_memory_mib() + 4096)
    gui.wait_field_error(dlg, "Memory (MiB)")
    check(not sensitive(ok_button(gui, dlg)), "OK is enabled with memory beyond the host")
    # A page with an error says so in its tab (an icon beside the label; the tab's description for AT-SPI).
    gui.find(dlg, "page tab", "System", description="has errors")
    shot(gui, dlg, "error")
    gui.set_value(mem, 1024)
    gui.wait(lambda: gui.field_error(dlg, "Memory (MiB)") == "", what="the memory error to go")
    check(not gui.findall(dlg, "page tab", "System", description="has errors"), "the System tab still has errors")
    cpus = gui.find(dlg, "spin button", "Processors")
    expect_error(gui, dlg, "Processors", lambda v: gui.set_value(cpus, v), 0, 1)
    expect_error(gui, dlg, "Processors", lambda v: gui.set_value(cpus, v), os.cpu_count() + 1, 1)
    if os.cpu_count() >= 2:
        gui.set_value(cpus, 2)
    gui.select_combo(gui.find(dlg, "combo box", "Firmware"), "UEFI")
    gui.select_combo(gui.find(dlg, "combo box", "Boot device 1"), "Hard Disk")
    gui.select_combo(gui.find(dlg, "combo box", "Boot device 2"), "Optical")
    gui.select_combo(gui.find(dlg, "combo box", "Execution engine"), "Software CPU")
    shot(gui, dlg, "system")

    gui.tab(dlg, "Display")
    vram = gui.find(dlg, "spin button", "Video memory (MiB)")
    expect_error(gui, dlg, "Video memory (MiB)", lambda v: gui.set_value(vram, v), 0, 64)
    gui.click(gui.find(dlg, "check box", "Enable VNC"))
    port = gui.find(dlg, "spin button", "VNC port")
    gui.wait(lambda: sensitive(port), what="the VNC port to be enabled")
    expect_error(gui, dlg, "VNC port", lambda v: gui.set_value(port, v), 80, 5999)
    shot(gui, dlg, "display")

    gui.tab(dlg, "Network")
    gui.select_combo(gui.find(dlg, "combo box", "Adapter type"), "Realtek RTL8139")
    mac = gui.find(dlg, "text", "MAC address")
    expect_error(gui, dlg, "MAC address", lambda v: gui.set_text(mac, v), "08002712345Z", "080027123456")
    expect_error(gui, dlg, "MAC address", lambda v: gui.set_text(mac, v), "010027123456", "080027123456")
    gui.click_button(dlg, "Port Forwarding…")
    pfd = gui.window("Port Forwarding - Adapter 1")
    form(gui, pfd, "Add Rule…", "Port Forwarding Rule",
         [("Rule name", "ssh"), ("Host port", "2222"), ("Guest port", "22")], ("Guest port", "0", "22"))
    gui.find(pfd, "table cell", "ssh")
    time.sleep(0.5)  # the closed rule form's area is redrawn (no window manager under Xvfb)
    gui.screenshot(os.path.join(SHOTS, "settings-port-forwarding.png"), pfd)
    gui.click_button(pfd, "Close")
    gui.window_gone("Port Forwarding - Adapter 1")
    shot(gui, dlg, "network")

    gui.tab(dlg, "USB")
    form(gui, dlg, "Add Filter…", "USB Device Filter",
         [("Filter name", "Logitech"), ("Vendor ID", "046D"), ("Product ID", "c52b")], ("Vendor ID", "xyz", "046D"))
    gui.find(dlg, "table cell", "Logitech")
    gui.tab(dlg, "Shared Folders")
    form(gui, dlg, "Add Folder…", "Shared Folder", [("Folder name", "data"), ("Folder path", TMP)],
         ("Folder path", os.path.join(TMP, "no-such-folder"), TMP))
    gui.find(dlg, "table cell", "data")
    for page in ("Audio", "USB", "Shared Folders"):
        gui.tab(dlg, page)
        gui.find(dlg, "label", pred=lambda n: "not available in this version" in name(n))
        shot(gui, dlg, page.lower().replace(" ", "-"))

    # ---- Storage: a new 64 MiB VDI on the SATA controller, the ISO's drive removed ----------------------------
    gui.tab(dlg, "Storage")
    storage_row(gui, dlg, "SATA")
    disk = create_disk(gui, dlg, 64)
    storage_row(gui, dlg, "Optical drive: test.iso")
    gui.click_button(dlg, "Remove Attachment")
    gui.wait(lambda: not gui.findall(dlg, "table cell", pred=lambda n: name(n).startswith("Optical drive")),
             what="the DVD drive to go", tree=dlg)
    shot(gui, dlg, "storage")
    gui.click_button(dlg, "OK")
    gui.window_gone("Set VM - Settings")

    after = vminfo("Set VM")
    want = {"ostype": "Ubuntu_64", "memory": "1024", "cpus": "2" if os.cpu_count() >= 2 else "1", "firmware": "efi", "boot1": "disk",
            "boot2": "dvd", "vram": "64", "vnc": "on", "vncport": "5999", "description": "Made by the settings test",
            "nictype1": "rtl8139", "macaddress1": "080027123456", "IDE-1-0": "none"}
    for k, v in want.items():
        check(after.get(k) == v, "showvminfo %s=%r, wanted %r" % (k, after.get(k), v))
    disk_path = os.path.join(vm_dir, disk)
    sata = [k for k, v in after.items() if k.startswith("SATA-") and v == disk_path]
    check(sata, "the new disk %s is not attached to SATA: %r" % (disk_path, {k: v for k, v in after.items()
                                                                              if k.startswith("SATA")}))
    check(os.path.isfile(disk_path), "the new disk file %s is missing" % disk_path)
    check(disk_path in manage("list", "hdds").stdout, "the new disk is not registered")
    nvram = before["CfgFile"][:-len(".vireo")] + ".nvram"
    check(os.path.isfile(nvram), "no UEFI variable store %s after switching to UEFI" % nvram)
    check(after.get("Forwarding1(0)") == "ssh,tcp,,2222,,22", "port forward: %r" % after.get("Forwarding1(0)"))
    check(after.get("SharedFolderNameMachineMapping1") == "data" and
          after.get("SharedFolderPathMachineMapping1") == TMP, "shared folder: %r" %
          {k: v for k, v in after.items() if k.startswith("SharedFolder")})
    with open(before["CfgFile"]) as f:
        xml = f.read()
    check('<Item key="Vireo/Exec" value="soft"/>' in xml, "the execution engine is not in the machine's extra data")
    check('name="Logitech"' in xml and 'vendorId="046d"' in xml and 'productId="c52b"' in xml,
          "the USB filter is not in the machine file")
    print("ok: every page saved (%.1f s)" % (time.monotonic() - t0), flush=True)

    # ---- The attachment editors: another slot, solid-state; an empty optical drive added ----------------------------
    dlg = start_settings(gui, "Set VM")
    # Renamed: the name only, as modifyvm --name does (the folder and files keep theirs).
    gui.set_text(gui.find(dlg, "text", "Name"), "Renamed VM")
    gui.tab(dlg, "Storage")
    storage_row(gui, dlg, "Hard disk: %s" % disk)
    slot = gui.find(dlg, "combo box", "Slot")
    gui.wait(lambda: sensitive(slot), what="the Slot combo to be enabled")
    gui.select_combo(slot, "Port 2")
    cell(gui, dlg, "Port 2")
    storage_row(gui, dlg, "Hard disk: %s" % disk)
    gui.click(gui.find(dlg, "check box", "Solid-state drive"))
    storage_row(gui, dlg, "IDE")
    gui.click_button(dlg, "Add Optical Drive")
    cell(gui, dlg, "Optical drive: empty")
    # A registered disk, on a VirtIO controller added for it (the preset has one named VirtIO already).
    gui.click_button(dlg, "Add Controller")
    gui.click_button(gui.window("Add Controller"), "VirtIO")
    gui.window_gone("Add Controller")
    storage_row(gui, dlg, "VirtIO 2")
    gui.click_button(dlg, "Add Hard Disk")
    gui.click_button(gui.window("Add Hard Disk"), "Choose Existing…")
    ch = gui.window("Choose Hard Disk")
    gui.select_combo(gui.find(ch, "combo box", "Hard disk"), "existing.vdi (%s)" % os.path.join(TMP, "existing.vdi"))
    gui.click_button(ch, "Choose")
    gui.window_gone("Choose Hard Disk")
    cell(gui, dlg, "Hard disk: existing.vdi (16 MiB)")
    # A controller added and removed again leaves nothing.
    gui.click_button(dlg, "Add Controller")
    gui.click_button(gui.window("Add Controller"), "SATA")
    storage_row(gui, dlg, "SATA 2")
    gui.click_button(dlg, "Remove Controller")
    gui.wait(lambda: not gui.findall(dlg, "table cell", "SATA 2"), what="SATA 2 to go", tree=dlg)
    gui.click_button(dlg, "OK")
    gui.window_gone("Set VM - Settings")
    after = vminfo("Renamed VM")
    check(after.get("name") == "Renamed VM" and after.get("CfgFile") == before["CfgFile"],
          "rename: name %r, settings file %r" % (after.get("name"), after.get("CfgFile")))
    check(after.get("SATA-2-0") == disk_path and after.get("SATA-0-0") == "none",
          "the disk did not move to SATA port 2: %r" % {k: v for k, v in after.items() if k.startswith("SATA-")})
    check(after.get("IDE-0-0") == "emptydrive" and after.get("IDE-type-0-0") == "dvddrive",
          "no empty optical drive on IDE 0:0: %r" % {k: v for k, v in after.items() if k.startswith("IDE-")})
    check(after.get("storagecontrollername3") == "VirtIO 2" and after.get("storagecontrollertype3") == "virtio" and
          after.get("VirtIO 2-0-0") == os.path.join(TMP, "existing.vdi") and "storagecontrollername4" not in after,
          "controllers: %r" % {k: v for k, v in after.items() if k.startswith(("storagecontroller", "VirtIO 2"))})
    with open(before["CfgFile"]) as f:
        check('nonrotational="true"' in f.read(), "the disk is not marked solid-state")
    print("ok: attachment editors (%.1f s)" % (time.monotonic() - t0), flush=True)

    # ---- Cancel after creating a disk: nothing is left behind -----------------------------------------------------
    dlg = start_settings(gui, "Renamed VM")
    gui.tab(dlg, "Storage")
    storage_row(gui, dlg, "SATA")
    disk2 = create_disk(gui, dlg, 64)
    path2 = os.path.join(vm_dir, disk2)
    check(os.path.isfile(path2), "the disk made in the dialog is not there while it is open")
    gui.click_button(dlg, "Cancel")
    gui.window_gone("Renamed VM - Settings")
    gui.wait(lambda: not os.path.exists(path2), what="the cancelled disk's file to be deleted")
    check(path2 not in manage("list", "hdds").stdout, "the cancelled disk is still registered")
    check(vminfo("Renamed VM") == after, "Cancel changed the machine")
    print("ok: cancel deletes the new disk (%.1f s)" % (time.monotonic() - t0), flush=True)

    # ---- A running machine: a banner, and its hardware cannot change -----------------------------------------------
    # It starts while its dialog is open: saving fails with a readable error and the dialog keeps what was typed.
    dlg = start_settings(gui, "Run VM")
    gui.tab(dlg, "System")
    mem = gui.find(dlg, "spin button", "Memory (MiB)")
    gui.set_value(mem, 64)
    manage("startvm", "Run VM", "--type", "headless", "--exec", "soft")
    gui.wait(lambda: vminfo("Run VM").get("VMState") == "running", 20, "Run VM to run")
    gui.click_button(dlg, "OK")
    err = gui.window("Error")
    texts = [name(n) for n in gui.findall(err, "label")]
    check(any("Run VM" in t for t in texts) and any("running" in t.lower() or "state" in t.lower() for t in texts),
          "the save error does not say what failed and why: %r" % texts)
    gui.screenshot(os.path.join(SHOTS, "settings-save-error.png"), err)
    gui.click_button(err, "Close")
    gui.window_gone("Error")
    check(showing(dlg) and gui.value(mem) == 64, "the dialog closed or lost the typed memory after a failed save")
    gui.click_button(dlg, "Cancel")
    gui.window_gone("Run VM - Settings")
    check(vminfo("Run VM").get("memory") == "32", "a failed save changed the memory")

    dlg = start_settings(gui, "Run VM")
    gui.find(dlg, "label", "The machine is running: most settings can only be changed when it is powered off.")
    gui.tab(dlg, "System")
    check(not sensitive(gui.find(dlg, "spin button", "Memory (MiB)")), "Memory can be changed while running")
    shot(gui, dlg, "running")
    gui.tab(dlg, "General")
    gui.set_text(gui.find(dlg, "text", "Description"), "changed while running")
    gui.click_button(dlg, "OK")
    gui.window_gone("Run VM - Settings")
    check(vminfo("Run VM").get("description") == "changed while running", "the description of a running machine")
    # Saved: hardware stays as it is (like VirtualBox, conservatively), the name can change.
    manage("controlvm", "Run VM", "savestate")
    check(vminfo("Run VM").get("VMState") == "saved", "Run VM is not saved")
    dlg = start_settings(gui, "Run VM")
    gui.find(dlg, "label", pred=lambda n: name(n).startswith("The machine is saved: most settings can only be "
                                                              "changed when it is powered off"))
    check(sensitive(gui.find(dlg, "text", "Name")), "the name of a saved machine cannot change")
    gui.tab(dlg, "Storage")
    check(not sensitive(gui.find(dlg, "push button", "Add Hard Disk")), "disks can be added to a saved machine")
    shot(gui, dlg, "saved")
    gui.click_button(dlg, "Cancel")
    gui.window_gone("Run VM - Settings")
    manage("discardstate", "Run VM")
    print("ok: running and saved machine (%.1f s)" % (time.monotonic() - t0), flush=True)


run(main)
