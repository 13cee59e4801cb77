"""manager-newvm.py - the New Machine assistant under Xvfb: bad input is explained inline with Next disabled and
leaves nothing behind, Cancel half-way creates nothing, and a run with the test ISO detects a 64-bit Linux and
creates the machine with its disk and DVD as the registry and the disk image show.

Run by tests/manager-newvm.sh (inside a mount namespace where $NEWVM_RO is a read-only bind mount)."""

import glob
import struct
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ["VIREO_SRC"], "tests", "lib"))
from mgr_gui import check, manage, name, ok, registered, role, run, sensitive, tool, vminfo  # noqa: E402

TMP = os.environ["NEWVM_TMP"]
ISO = os.environ["NEWVM_ISO"]
RO = os.environ["NEWVM_RO"]
DEBIAN_ISO = os.environ["NEWVM_DEBIAN_ISO"]
VMS = os.environ["NEWVM_VMS"]
SHOTS = os.path.join(os.environ["VIREO_OUT"], "screenshots")
HOST_MIB = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20


def step(msg):
    print("---- %s" % msg, flush=True)


def vm_list():
    """vireo-manage list vms as its lines (names and UUIDs)."""
    return [line for line in manage("list", "vms").stdout.splitlines() if line.strip()]


def disk_files():
    return sorted(glob.glob(os.path.join(TMP, "**", "*.vdi"), recursive=True) +
                  glob.glob(os.path.join(TMP, "**", "*.qcow2"), recursive=True))


def hostile_iso(path):
    """An ISO 9660 image built to trip a reader: a directory that contains itself, a subdirectory of 2 GiB, a file
    of 4 GiB, a directory far past the end of the file and a record running past its sector."""
    sec = 2048
    img = bytearray(sec * 24)

    def rec(nm, lba, length, flags):
        n = nm.encode()
        r = bytearray(33 + len(n) + (1 - len(n) % 2))
        r[0] = len(r)
        struct.pack_into("<I", r, 2, lba)
        struct.pack_into("<I", r, 10, length)
        r[25] = flags
        r[32] = len(n)
        r[33:33 + len(n)] = n
        return r
    pvd = bytearray(sec)
    pvd[0], pvd[1:6], pvd[6] = 1, b"CD001", 1
    pvd[40:72] = b"HOSTILE".ljust(32)
    struct.pack_into("<H", pvd, 128, sec)
    root = rec("\0", 20, sec, 2)
    pvd[156:156 + len(root)] = root
    img[16 * sec:17 * sec] = pvd
    img[17 * sec] = 255
    img[17 * sec + 1:17 * sec + 6] = b"CD001"
    d, o = bytearray(sec), 0
    for r in (rec("\0", 20, sec, 2), rec("\1", 20, sec, 2), rec("LOOP", 20, sec, 2), rec("BOOT", 20, 0x7fffffff, 2),
              rec("VMLINUZ.;1", 23, 0xffffffff, 0), rec("ISOLINUX", 9999999, sec, 2)):
        d[o:o + len(r)] = r
        o += len(r)
    d[o] = 200
    img[20 * sec:21 * sec] = d
    with open(path, "wb") as f:
        f.write(img)


def shot(gui, dlg, file):
    time.sleep(0.3)  # the last change drawn (sensitivity, error text)
    gui.screenshot(os.path.join(SHOTS, file), dlg)


def next_button(gui, dlg):
    return gui.find(dlg, "push button", "Next")


def expect_error(gui, dlg, field, words, picture=None):
    """An inline error for field that mentions words, and Next disabled."""
    msg = gui.wait_field_error(dlg, field)
    check(all(w.lower() in msg.lower() for w in words), "the error for %r says %r, not %r" % (field, msg, words))
    nb = next_button(gui, dlg)
    gui.wait(lambda: not sensitive(nb), 5, "Next to be disabled with the error for %r" % field, tree=dlg)
    if picture:
        shot(gui, dlg, picture)
    ok("%s: %r, Next disabled" % (field, msg))


def expect_clear(gui, dlg, field):
    gui.wait(lambda: gui.field_error(dlg, field) == "", 5, "the error for %r to go" % field, tree=dlg)


def page_title(gui, dlg, title):
    """Waits until the assistant shows the page titled title (each page is a panel named after its title)."""
    gui.find(dlg, None, title, pred=lambda n: role(n) in ("panel", "filler"))


def entry(gui, dlg, label):
    return gui.find(dlg, "text", label)


def spin(gui, dlg, label):
    return gui.find(dlg, "spin button", label)


def start_assistant(gui):
    gui.start_manager("--new", log=os.path.join(TMP, "vireo.log"))
    dlg = gui.window("New Machine")
    entry(gui, dlg, "Name")
    return dlg


def nothing_created(what, before_vms):
    vms = vm_list()
    check(vms == before_vms, "%s: registered machines changed: %r (was %r)" % (what, vms, before_vms))
    left = sorted(os.listdir(VMS))
    check(left == ["Taken"], "%s: the machine folder holds %r (only 'Taken' was there)" % (what, left))
    check(not os.listdir(RO), "%s: the read-only folder holds %r" % (what, os.listdir(RO)))
    disks = disk_files()
    check(not disks, "%s: disk files were left: %r" % (what, disks))
    hdds = manage("list", "hdds").stdout.strip()
    check(hdds == "", "%s: hard disks registered: %r" % (what, hdds))
    dvds = manage("list", "dvds").stdout.strip()
    check(dvds == "", "%s: DVD images registered: %r" % (what, dvds))
    ok("%s: nothing on disk (machines %r, folder %r, no disks, no media)" % (what, vms, left))


def bad_input_then_cancel(gui):
    step("a) bad input is explained inline; c) Cancel half-way creates nothing")
    manage("createvm", "--name", "Taken", "--ostype", "Linux_64", "--basefolder", VMS, "--register")
    before = vm_list()
    dlg = start_assistant(gui)
    page_title(gui, dlg, "Name and Operating System")
    folder = entry(gui, dlg, "Folder")
    check(gui.text(folder) == VMS, "the folder defaults to %r, not the registry's %r" % (gui.text(folder), VMS))
    name_e = entry(gui, dlg, "Name")
    check(gui.text(name_e) == "New Machine", "the default name is %r" % gui.text(name_e))
    gui.wait(lambda: sensitive(next_button(gui, dlg)), 5, "Next enabled with the defaults", tree=dlg)
    shot(gui, dlg, "newvm-1-name-os.png")
    ok("page 1 defaults: name %r, folder %r, Next enabled" % (gui.text(name_e), VMS))

    iso = entry(gui, dlg, "ISO Image")
    garbage = os.path.join(TMP, "x.iso")
    with open(garbage, "wb") as f:
        f.write(os.urandom(40000))
    gui.set_text(iso, garbage)
    expect_error(gui, dlg, "ISO Image", ["not a CD/DVD image"], "newvm-error-iso.png")
    gui.set_text(iso, os.path.join(TMP, "missing.iso"))
    expect_error(gui, dlg, "ISO Image", ["cannot open", "no such file"])
    gui.set_text(iso, "")
    expect_clear(gui, dlg, "ISO Image")

    gui.set_text(name_e, "Taken")
    expect_error(gui, dlg, "Name", ["exists already"])
    gui.set_text(name_e, "Half Way")
    expect_clear(gui, dlg, "Name")

    gui.set_text(folder, RO)
    expect_error(gui, dlg, "Folder", ["no write permission"], "newvm-error-folder.png")
    gui.set_text(folder, os.path.join(RO, "sub"))
    expect_error(gui, dlg, "Folder", ["cannot create folders"])
    gui.set_text(folder, VMS)
    expect_clear(gui, dlg, "Folder")

    # libosinfo knows the Debian disc; the type follows while the person has not chosen one.
    def detected(words):
        det = gui.find(dlg, "label", None, pred=lambda n: name(n).startswith("Detected:") and words in name(n))
        gui.wait(lambda: sensitive(next_button(gui, dlg)), 5, "Next enabled after detection", tree=dlg)
        return name(det)
    gui.set_text(iso, DEBIAN_ISO)
    text = detected("Debian 11")
    check("libosinfo" in text and "Debian (64-bit)" in text, "the Debian disc is detected as %r" % text)
    ok("libosinfo: %r" % text)
    # A hostile image neither crashes nor hangs the detector.
    bad = os.path.join(TMP, "hostile.iso")
    hostile_iso(bad)
    gui.set_text(iso, bad)
    text = detected("HOSTILE")
    check(gui.manager.poll() is None, "the manager died on the hostile ISO")
    ok("hostile ISO: %r" % text)
    # A type the person picked stays when an ISO is recognised afterwards, and brings its preset's hardware.
    gui.select_combo(gui.find(dlg, "combo box", "Type"), "Debian (64-bit)")
    gui.set_text(iso, ISO)
    text = detected("VIREO_BENCH")
    check("your choice" in text, "the detection overrode the chosen type: %r" % text)
    ok("the chosen type stays: %r" % text)
    gui.set_text(iso, "")
    gui.click_button(dlg, "Next")

    page_title(gui, dlg, "Hardware")
    mem = spin(gui, dlg, "Memory (MiB)")
    want = 2048 if HOST_MIB >= 2048 else HOST_MIB // 2
    check(int(gui.value(mem)) == want, "Debian (64-bit)'s memory is %r, not %d" % (gui.value(mem), want))
    check(int(gui.value(spin(gui, dlg, "Processors"))) == min(2, os.cpu_count()), "Debian (64-bit)'s CPUs")
    gui.set_value(mem, HOST_MIB + 1024)
    expect_error(gui, dlg, "Memory (MiB)", ["more than this computer has"], "newvm-error-memory.png")
    gui.set_value(mem, 256)
    expect_clear(gui, dlg, "Memory (MiB)")
    cpus = spin(gui, dlg, "Processors")
    if os.cpu_count() < 32:
        gui.set_value(cpus, os.cpu_count() + 1)
        expect_error(gui, dlg, "Processors", ["processors"])
        gui.set_value(cpus, 1)
        expect_clear(gui, dlg, "Processors")
    gui.click_button(dlg, "Next")

    page_title(gui, dlg, "Hard Disk")
    size = spin(gui, dlg, "Disk size (GiB)")
    gui.set_value(size, 0)
    expect_error(gui, dlg, "Disk size (GiB)", ["size above zero"], "newvm-error-disk-size.png")
    gui.set_value(size, 1)
    expect_clear(gui, dlg, "Disk size (GiB)")
    gui.wait(lambda: sensitive(next_button(gui, dlg)), 5, "Next enabled again", tree=dlg)
    nothing_created("after the bad input", before)

    gui.click_button(dlg, "Cancel")
    gui.window_gone("New Machine")
    time.sleep(0.5)
    nothing_created("after Cancel on the Hard Disk page", before)
    gui.stop_manager()


def good_run(gui):
    step("b) a machine from the test ISO")
    dlg = start_assistant(gui)
    gui.set_text(entry(gui, dlg, "Name"), "Test VM")
    gui.set_text(entry(gui, dlg, "ISO Image"), ISO)
    det = gui.find(dlg, "label", None, pred=lambda n: name(n).startswith("Detected:"), timeout=20)
    text = name(det)
    check("64-bit" in text and "Other Linux (64-bit)" in text, "the detection says %r" % text)
    check(gui.field_error(dlg, "ISO Image") == "", "an error for the good ISO: %r" % gui.field_error(dlg, "ISO Image"))
    gui.wait(lambda: sensitive(next_button(gui, dlg)), 5, "Next enabled after detection", tree=dlg)
    shot(gui, dlg, "newvm-1-detected.png")
    ok("detected: %r" % text)
    gui.click_button(dlg, "Next")

    page_title(gui, dlg, "Hardware")
    mem = spin(gui, dlg, "Memory (MiB)")
    cpus = spin(gui, dlg, "Processors")
    # Other Linux (64-bit): 1024 MiB and 1 CPU (capped by the host's RAM at half of it).
    want_mem = 1024 if HOST_MIB >= 1024 else HOST_MIB // 2
    check(int(gui.value(mem)) == want_mem, "the preset's memory is %r, not %d" % (gui.value(mem), want_mem))
    check(int(gui.value(cpus)) == 1, "the preset's CPUs are %r" % gui.value(cpus))
    gui.set_value(mem, 384)
    shot(gui, dlg, "newvm-2-hardware.png")
    gui.click_button(dlg, "Next")

    page_title(gui, dlg, "Hard Disk")
    size = spin(gui, dlg, "Disk size (GiB)")
    check(abs(gui.value(size) - 16.0) < 0.001, "the preset's disk size is %r GiB, not 16" % gui.value(size))
    shot(gui, dlg, "newvm-3-disk.png")
    gui.click_button(dlg, "Next")

    page_title(gui, dlg, "Summary")
    summary = gui.find(dlg, "label", "Summary")
    stext = gui.text(summary)
    for w in ("Test VM", "384 MiB", "Other Linux (64-bit)", "16 GiB", ISO):
        check(w in stext, "the summary lacks %r: %r" % (w, stext))
    shot(gui, dlg, "newvm-4-summary.png")
    gui.click_button(dlg, "Create")
    gui.window_gone("New Machine", 30)

    info = vminfo("Test VM")
    check(info.get("name") == "Test VM", "name %r" % info.get("name"))
    check(info.get("ostype") == "Linux_64", "ostype %r" % info.get("ostype"))
    check(info.get("memory") == "384", "memory %r" % info.get("memory"))
    check(info.get("cpus") == "1", "cpus %r" % info.get("cpus"))
    check(info.get("firmware") == "bios", "firmware %r" % info.get("firmware"))
    check(info.get("boot1") == "dvd" and info.get("boot2") == "disk", "boot order %r %r" %
          (info.get("boot1"), info.get("boot2")))
    mdir = os.path.join(VMS, "Test VM")
    disk = os.path.join(mdir, "Test VM.vdi")
    check(info.get("CfgFile") == os.path.join(mdir, "Test VM.vireo"), "settings file %r" % info.get("CfgFile"))
    check(info.get("SATA-0-0") == disk, "SATA-0-0 holds %r, not %r" % (info.get("SATA-0-0"), disk))
    check(info.get("SATA-1-0") == ISO, "SATA-1-0 (the DVD) holds %r, not %r" % (info.get("SATA-1-0"), ISO))
    img = tool("vireo-img", "info", "--machinereadable", disk).stdout
    fields = dict(l.split("=", 1) for l in img.splitlines() if "=" in l)
    fields = {k.strip('"'): v.strip('"') for k, v in fields.items()}
    check(fields.get("format") == "vdi", "disk format %r" % fields.get("format"))
    want = str(16 << 30)
    got = fields.get("size")
    check(got == want, "disk size %r, not %s (vireo-img info: %r)" % (got, want, img))
    hdds = manage("list", "hdds").stdout
    check(disk in hdds, "the disk is not registered: %r" % hdds)
    dvds = manage("list", "dvds").stdout
    check(ISO in dvds, "the ISO is not registered: %r" % dvds)
    check(registered()[-1] == "Test VM", "list vms: %r" % vm_list())
    ok("Test VM: Linux_64, 384 MiB, 1 CPU, bios, boot dvd+disk, %s (16 GiB VDI) on SATA-0-0, the ISO on SATA-1-0" %
       disk)
    gui.stop_manager()


def failed_create_undone(gui):
    step("c) a Create that fails late (the ISO vanished) leaves nothing behind")
    before = vm_list()
    files_before = sorted(os.listdir(VMS))
    gone = os.path.join(TMP, "gone.iso")
    with open(ISO, "rb") as src, open(gone, "wb") as dst:
        dst.write(src.read())
    dlg = start_assistant(gui)
    gui.set_text(entry(gui, dlg, "Name"), "Doomed")
    gui.set_text(entry(gui, dlg, "ISO Image"), gone)
    gui.find(dlg, "label", None, pred=lambda n: name(n).startswith("Detected:"))
    gui.click_button(dlg, "Next")
    page_title(gui, dlg, "Hardware")
    gui.set_value(spin(gui, dlg, "Memory (MiB)"), 128)
    gui.click_button(dlg, "Next")
    page_title(gui, dlg, "Hard Disk")
    gui.set_value(spin(gui, dlg, "Disk size (GiB)"), 0.06)
    gui.select_combo(gui.find(dlg, "combo box", "Format"), "qcow2")
    gui.click(gui.find(dlg, "check box", "Pre-allocate full size"))
    gui.click_button(dlg, "Next")
    page_title(gui, dlg, "Summary")
    stext = gui.text(gui.find(dlg, "label", "Summary"))
    check("fixed-size" in stext and "qcow2" in stext and "61 MiB" in stext, "summary: %r" % stext)
    os.unlink(gone)
    gui.click_button(dlg, "Create")
    err = gui.window("Error", 30, rolename="alert")
    texts = [name(n) for n in gui.findall(err, "label")]
    check(any("Cannot create the machine 'Doomed'" in t for t in texts), "the error dialog says %r" % texts)
    check(any("gone.iso" in t for t in texts), "the error dialog does not name the ISO: %r" % texts)
    shot(gui, err, "newvm-error-create.png")
    ok("error dialog: %r" % [t for t in texts if t])
    gui.click_button(err, "Close")
    gui.window_gone("Error")
    check(vm_list() == before, "a machine was registered: %r" % vm_list())
    check(sorted(os.listdir(VMS)) == files_before, "left in the machine folder: %r" % sorted(os.listdir(VMS)))
    check(not glob.glob(os.path.join(VMS, "**", "Doomed*"), recursive=True), "Doomed's files are left")
    hdds = manage("list", "hdds").stdout
    check("Doomed" not in hdds, "Doomed's disk is registered: %r" % hdds)
    ok("after the failed Create: no machine, no folder, no disk")
    # The assistant stays for another try; Cancel closes it.
    gui.click_button(dlg, "Cancel")
    gui.window_gone("New Machine")
    gui.stop_manager()


def existing_disk(gui):
    step("b2) a machine on an existing disk, no ISO")
    spare = os.path.join(TMP, "spare.qcow2")
    manage("createmedium", "disk", "--filename", spare, "--size", "32", "--format", "qcow2")
    dlg = start_assistant(gui)
    gui.set_text(entry(gui, dlg, "Name"), "On Spare")
    gui.select_combo(gui.find(dlg, "combo box", "Type"), "Debian (64-bit)")
    gui.click_button(dlg, "Next")
    page_title(gui, dlg, "Hardware")
    gui.set_value(spin(gui, dlg, "Memory (MiB)"), 256)
    gui.click(gui.find(dlg, "check box", "EFI firmware"))
    gui.click_button(dlg, "Next")
    page_title(gui, dlg, "Hard Disk")
    gui.click(gui.find(dlg, "radio button", "Use an existing disk"))
    combo = gui.find(dlg, "combo box", "Existing disk")
    items = [name(n) for n in gui.findall(combo, None, None, only_showing=False)
             if role(n) == "menu item" and name(n).startswith(spare)]
    check(items == ["%s (qcow2 32 MiB)" % spare], "the spare disk is not offered as itself: %r" % items)
    gui.select_combo(combo, items[0])
    gui.wait(lambda: sensitive(next_button(gui, dlg)), 5, "Next enabled with the existing disk", tree=dlg)
    shot(gui, dlg, "newvm-3-existing-disk.png")
    gui.click_button(dlg, "Next")
    page_title(gui, dlg, "Summary")
    gui.click_button(dlg, "Create")
    gui.window_gone("New Machine", 30)
    info = vminfo("On Spare")
    check(info.get("ostype") == "Debian_64" and info.get("memory") == "256", "On Spare: %r" % info)
    check(info.get("firmware") == "efi", "firmware %r" % info.get("firmware"))
    # Debian_64: disks on VirtIO, the (empty) DVD drive on SATA.
    check(info.get("VirtIO-0-0") == spare, "VirtIO-0-0 holds %r, not %r" % (info.get("VirtIO-0-0"), spare))
    check(info.get("SATA-0-0") in ("emptydrive", "none", ""), "the DVD drive: %r" % info.get("SATA-0-0"))
    check(not glob.glob(os.path.join(VMS, "On Spare", "*.vdi")), "a new disk was made as well")
    ok("On Spare: Debian_64, 256 MiB, efi, %s on VirtIO-0-0, DVD drive %r" % (spare, info.get("SATA-0-0")))
    gui.stop_manager()


def main(gui):
    os.makedirs(SHOTS, exist_ok=True)
    start = time.monotonic()
    bad_input_then_cancel(gui)
    good_run(gui)
    failed_create_undone(gui)
    existing_disk(gui)
    print("PASS manager-newvm in %.1f s" % (time.monotonic() - start), flush=True)


run(main)
