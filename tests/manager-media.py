"""manager-media.py - drives vireo --media (see manager-media.sh): the lists, create, copy, resize, release and remove, and bad input."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["VIREO_SRC"], "tests", "lib"))
from mgr_gui import check, checked, manage, name, run, sensitive, tool, vminfo  # noqa: E402

VM = os.environ["VIREO_TEST_VM"]
DIR = os.environ["VIREO_TEST_DIR"]
ATTACHED = os.environ["VIREO_TEST_ATTACHED"]
SPARE = os.environ["VIREO_TEST_SPARE"]
ISO = os.environ["VIREO_TEST_ISO"]
READONLY = os.environ.get("VIREO_TEST_READONLY")  # a read-only folder, when the test could make one
SHOTS = os.path.join(os.environ["VIREO_OUT"], "screenshots")
LOG = sys.argv[1] if len(sys.argv) > 1 else None
COLS = ["Name", "Virtual Size", "Actual Size", "Format", "Type", "Used By"]


def hdds():
    """Registered hard disks: location -> UUID."""
    out, uuid = {}, None
    for line in manage("list", "hdds").stdout.splitlines():
        if line.startswith("UUID:"):
            uuid = line.split(":", 1)[1].strip()
        elif line.startswith("Location:"):
            out[line.split(":", 1)[1].strip()] = uuid
    return out


def virtual_size(path):
    for line in tool("vireo-img", "info", path).stdout.splitlines():
        if line.startswith("Virtual size:"):
            return int(line.split("(")[1].split()[0])
    raise AssertionError("no virtual size for %s" % path)


def row(gui, tree, label):
    """The row showing label in its first column, as {column: text} (None when it is not there)."""
    cells = [c for c in gui.findall(tree, "table cell", label) if c.getIndexInParent() >= 0]
    if not cells:
        return None
    table = tree.queryTable()
    r = table.getRowAtIndex(cells[0].getIndexInParent())
    return {COLS[c]: name(table.getAccessibleAt(r, c)) for c in range(len(COLS))}


def main(gui):
    gui.start_manager("--media", log=LOG)
    win = gui.window("Media Manager")
    disks = gui.find(win, "tree table", "Hard Disks")
    att, spare = os.path.basename(ATTACHED), os.path.basename(SPARE)

    r = gui.wait(lambda: row(gui, disks, att), what="the attached disk in the list")
    check(r["Virtual Size"] == "32 MiB", "attached disk: %r" % r)
    check(r["Used By"] == VM, "attached disk's users: %r" % r)
    check(r["Format"] == "vdi" and r["Type"] == "normal", "attached disk: %r" % r)
    check(r["Actual Size"].endswith("B"), "attached disk's actual size: %r" % r)
    r = row(gui, disks, spare)
    check(r is not None and r["Virtual Size"] == "8 MiB" and r["Used By"] == "" and r["Format"] == "qcow2",
          "spare disk: %r" % r)
    gui.select_row(disks, att)
    details = gui.find(win, "label", "Medium details")
    gui.wait(lambda: ATTACHED in gui.text(details), what="the details of the attached disk")
    gui.screenshot(os.path.join(SHOTS, "manager-media-disks.png"), win)

    gui.tab(win, "Optical Disks")
    optical = gui.find(win, "tree table", "Optical Disks")
    r = gui.wait(lambda: row(gui, optical, "test.iso"), what="the ISO in the optical list")
    check(r["Used By"] == VM and r["Format"] == "iso", "ISO: %r" % r)
    gui.select_row(optical, "test.iso")
    gui.screenshot(os.path.join(SHOTS, "manager-media-optical.png"), win)
    check(not sensitive(gui.find(win, "push button", "Copy…")), "Copy… is enabled for an ISO")
    gui.tab(win, "Hard Disks")
    disks = gui.find(win, "tree table", "Hard Disks")

    # Create: a size of zero is explained next to the field; then a 16 MiB qcow2.
    new = os.path.join(DIR, "New.qcow2")
    gui.click_button(win, "Create…")
    dlg = gui.window("Create Virtual Hard Disk")
    gui.select_combo(gui.find(dlg, "combo box", "Format"), "qcow2")
    gui.set_text(gui.find(dlg, "text", "File"), new)
    size = gui.find(dlg, "spin button", "Size (GiB)")
    gui.set_value(size, 0)
    err = gui.wait_field_error(dlg, "Size (GiB)")
    check("zero" in err, "size error: %r" % err)
    check(not sensitive(gui.find(dlg, "push button", "OK")), "OK is enabled with a size of zero")
    gui.set_text(gui.find(dlg, "text", "File"), SPARE)
    check("exists" in gui.wait_field_error(dlg, "File"), "no error for an existing file")
    if READONLY:
        gui.set_text(gui.find(dlg, "text", "File"), os.path.join(READONLY, "Disk.qcow2"))
        check("cannot write" in gui.wait_field_error(dlg, "File"), "no error for a read-only folder: %r" %
              gui.field_error(dlg, "File"))
        gui.set_text(gui.find(dlg, "text", "File"), os.path.join(DIR, "no such folder", "Disk.qcow2"))
        check("does not exist" in gui.wait_field_error(dlg, "File"), "no error for a missing folder")
        gui.set_text(gui.find(dlg, "text", "File"), SPARE)
    gui.screenshot(os.path.join(SHOTS, "manager-media-create.png"), dlg)
    gui.set_text(gui.find(dlg, "text", "File"), new)
    gui.set_value(size, 16 / 1024)
    gui.wait(lambda: not gui.field_error(dlg, "Size (GiB)") and not gui.field_error(dlg, "File"),
             what="the errors to go", tree=dlg)
    gui.click_button(dlg, "OK")
    gui.window_gone("Create Virtual Hard Disk")
    gui.wait(lambda: new in hdds(), what="the new disk to be registered")
    check(not READONLY or not os.listdir(READONLY), "something was written to the read-only folder")
    with open(new, "rb") as f:
        magic = f.read(4)
        check(magic == b"QFI\xfb", "the new disk is not qcow2: %r" % magic)
    check(virtual_size(new) == 16 << 20, "the new disk is %d bytes" % virtual_size(new))
    gui.wait(lambda: row(gui, disks, "New.qcow2"), what="the new disk in the list")

    # Copy the attached disk to VDI: a new image of the same size with its own UUID.
    copy = os.path.join(DIR, "Copy.vdi")
    gui.select_row(disks, att)
    gui.click_button(win, "Copy…")
    dlg = gui.window("Copy Virtual Hard Disk")
    gui.select_combo(gui.find(dlg, "combo box", "Format"), "VDI")
    gui.set_text(gui.find(dlg, "text", "File"), copy)
    gui.click_button(dlg, "OK")
    gui.window_gone("Copy Virtual Hard Disk")
    gui.wait(lambda: copy in hdds(), what="the copy to be registered")
    check(hdds()[copy] != hdds()[ATTACHED], "the copy has the source's UUID")
    check("Format:        vdi" in tool("vireo-img", "info", copy).stdout, "the copy is not VDI")
    check(virtual_size(copy) == 32 << 20, "the copy is %d bytes" % virtual_size(copy))
    gui.wait(lambda: row(gui, disks, "Copy.vdi"), what="the copy in the list")

    # Resize the copy to 48 MiB; shrinking is explained first.
    gui.select_row(disks, "Copy.vdi")
    gui.click_button(win, "Resize…")
    dlg = gui.window("Resize Virtual Hard Disk")
    size = gui.find(dlg, "spin button", "Size (GiB)")
    gui.set_value(size, 16 / 1024)
    check("grow" in gui.wait_field_error(dlg, "Size (GiB)"), "no error for a smaller size")
    gui.set_value(size, 48 / 1024)
    gui.wait(lambda: not gui.field_error(dlg, "Size (GiB)"), what="the error to go", tree=dlg)
    gui.click_button(dlg, "OK")
    gui.window_gone("Resize Virtual Hard Disk")
    gui.wait(lambda: virtual_size(copy) == 48 << 20, what="the copy to be 48 MiB")
    gui.wait(lambda: (row(gui, disks, "Copy.vdi") or {}).get("Virtual Size") == "48 MiB", what="48 MiB in the list")

    # Removing a disk in use is refused with a dialog.
    gui.select_row(disks, att)
    gui.click_button(win, "Remove")
    a = gui.alert()
    check(gui.findall(a, "label", pred=lambda n: VM in name(n)), "the refusal does not name the machine")
    gui.click_button(a, "Close")
    gui.alert_gone()
    check(ATTACHED in hdds() and os.path.exists(ATTACHED), "the disk in use was removed")

    # Release the attached disk: the machine no longer has it.
    gui.click_button(win, "Release")
    a = gui.alert()
    check(gui.findall(a, "label", pred=lambda n: VM in name(n)), "the question does not name the machine")
    gui.click_button(a, "Release")
    gui.alert_gone()
    gui.wait(lambda: vminfo(VM).get("SATA-0-0") == "none", what="the machine's disk to be detached")
    check(vminfo(VM).get("SATA-1-0") == ISO, "the DVD changed: %r" % vminfo(VM).get("SATA-1-0"))
    gui.wait(lambda: (row(gui, disks, att) or {}).get("Used By") == "", what="no users in the list")

    # Remove the copy and its file.
    gui.select_row(disks, "Copy.vdi")
    gui.click_button(win, "Remove")
    a = gui.alert()
    box = gui.find(a, "check box", "Also delete the image file")
    check(not checked(box), "deleting the file is ticked by default")
    gui.click(box)
    gui.wait(lambda: checked(box), what="the box to be ticked")
    gui.click_button(a, "Remove")
    gui.alert_gone()
    gui.wait(lambda: copy not in hdds(), what="the copy to be unregistered")
    check(not os.path.exists(copy), "the copy's file is left")
    gui.wait(lambda: row(gui, disks, "Copy.vdi") is None, what="the copy to leave the list")

    # Removing an ISO never offers to delete the file.
    gui.tab(win, "Optical Disks")
    optical = gui.find(win, "tree table", "Optical Disks")
    manage("storageattach", VM, "--storagectl", "SATA", "--port", "1", "--device", "0",
           "--type", "dvddrive", "--medium", "emptydrive")
    gui.click_button(win, "Refresh")  # a machine file changed, not the registry: the model's event or Refresh
    gui.wait(lambda: (row(gui, optical, "test.iso") or {}).get("Used By") == "", what="the ISO to be free")
    gui.select_row(optical, "test.iso")
    gui.click_button(win, "Remove")
    a = gui.alert()
    time.sleep(0.3)
    check(not gui.findall(a, "check box"), "an ISO's removal offers to delete the file")
    gui.click_button(a, "Remove")
    gui.alert_gone()
    gui.wait(lambda: row(gui, optical, "test.iso") is None, what="the ISO to leave the list")
    check(os.path.exists(ISO), "the ISO file was deleted")

    gui.click_button(win, "Close")
    gui.window_gone("Media Manager")
    print("manager-media: lists, create, copy, resize, release, remove and bad input passed%s" %
          ("" if READONLY else " (no read-only folder: unshare -m is not allowed here)"))


run(main)
