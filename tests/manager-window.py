"""manager-window.py - drives vireo's main window (tests/manager-window.sh sets up the machines and the environment)."""

import os
import re
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.environ["VIREO_SRC"], "tests", "lib"))
from mgr_gui import check, desc, manage, name, ok, registered, role, run, sensitive, vminfo  # noqa: E402

TMP = os.environ["MGR_TMP"]
SHOTS = os.path.join(os.environ["VIREO_OUT"], "screenshots")


class Window:
    """The main window's list: rows are found by the table cell whose name is the machine's name."""

    def __init__(self, gui):
        self.gui = gui
        self.win = gui.window("Vireo")
        self.tree = gui.find(self.win, "table", "Machines")

    def name_cell(self, vm):
        cells = self.gui.findall(self.tree, "table cell", vm)
        return cells[0] if cells else None

    def row_cell(self, vm):
        """The top-level cell of the row (the name sits in a cell of the name column's area)."""
        c = self.name_cell(vm)
        if c is None:
            return None
        return c.parent if role(c.parent) == "table cell" else c

    def state(self, vm):
        c = self.row_cell(vm)
        if c is None:
            return None
        return name(self.tree.getChildAtIndex(c.getIndexInParent() + 1))

    def wait_state(self, vm, want, timeout=20):
        self.gui.wait(lambda: self.state(vm) == want, timeout, "%r to show %r (shows %r)" % (vm, want, self.state(vm)),
                      tree=self.tree)

    def select(self, vm):
        self.gui.select_row(self.tree, vm)
        self.gui.wait(lambda: self.detail("Name") == vm, 10, "the details of %r" % vm, tree=self.win)

    def detail(self, key):
        labels = self.gui.findall(self.win, "label", key, pred=lambda n: self.gui.text(n) != key)
        return self.gui.text(labels[0]) if labels else None

    def preview(self):
        return desc(self.gui.find(self.win, None, "Preview"))

    def button(self, label):
        return self.gui.find(self.win, "push button", label)


def main(gui):
    gui.start_manager(log=os.path.join(TMP, "vireo.log"))
    w = Window(gui)
    names = ["Linux Box", "Windows Box", "Disk Box"]
    for vm in names:
        w.wait_state(vm, "Powered Off")
    ok("the list shows the three machines, powered off")

    w.select("Linux Box")
    check(w.detail("Memory") == "256 MiB", "Memory shows %r, not 256 MiB" % w.detail("Memory"))
    check(w.detail("Operating system") == "Debian (64-bit)", "OS shows %r" % w.detail("Operating system"))
    check("boot.iso" in (w.detail("Controller IDE (ide)") or ""), "storage shows %r" % w.detail("Controller IDE (ide)"))
    check(w.preview() == "No preview: Linux Box is not running", "preview says %r" % w.preview())
    w.select("Disk Box")
    sata = w.detail("Controller SATA (sata)") or ""
    check("disk.qcow2" in sata, "storage shows %r" % sata)
    check(w.detail("Memory") == vminfo("Disk Box")["memory"] + " MiB", "Disk Box memory shows %r" % w.detail("Memory"))
    check(not sensitive(w.button("Pause")) and not sensitive(w.button("Stop")),
          "Pause/Stop enabled for a stopped machine")
    ok("selecting a machine shows its details; Pause and Stop are off for a stopped one")

    # The shortcuts the menus show, typed on the main window: each opens its window (for the selected machine).
    for keys, title in (("ctrl+s", "Disk Box - Settings"), ("ctrl+o", "Clone Machine"), ("ctrl+d", "Media Manager"),
                        ("ctrl+g", "Preferences"), ("ctrl+n", "New Machine")):
        gui.focus("Vireo")
        gui.key(keys)
        opened = gui.window(title, timeout=10)
        gui.click_button(opened, "Close" if title == "Media Manager" else "Cancel")
        gui.window_gone(title)
    ok("Ctrl+S, Ctrl+O, Ctrl+D, Ctrl+G and Ctrl+N open Settings, Clone, the media manager, Preferences and the assistant")

    # Start headless through the menu; the model sees the run lock and the screenshots.
    w.select("Linux Box")
    gui.menu(w.win, "Machine", "Start Headless")
    w.wait_state("Linux Box", "Running", 30)
    gui.wait(lambda: w.preview().startswith("Screen of Linux Box, "), 30, "a preview of the running machine",
             tree=w.win)
    state = vminfo("Linux Box")["VMState"]
    check(state == "running", "the file says %r, not running" % state)
    check(re.match(r"Screen of Linux Box, \d+x\d+$", w.preview()), "preview description %r" % w.preview())
    thumb = w.tree.getChildAtIndex(w.row_cell("Linux Box").getIndexInParent() + 2)
    check(role(thumb) == "table cell", "no thumbnail cell")
    ok("Start Headless: Running with a preview (%s)" % w.preview())
    time.sleep(1.5)
    gui.screenshot(os.path.join(SHOTS, "manager-window-main.png"), w.win)

    gui.click_button(w.win, "Pause")
    w.wait_state("Linux Box", "Paused")
    gui.wait(lambda: vminfo("Linux Box")["VMState"] == "paused", 10, "the file to say paused")
    gui.find(w.win, "push button", "Resume")
    ok("Pause: Paused, recorded paused, the button says Resume")
    gui.click_button(w.win, "Resume")
    w.wait_state("Linux Box", "Running")
    gui.wait(lambda: vminfo("Linux Box")["VMState"] == "running", 10, "the file to say running")
    ok("Resume: Running")

    # Save State runs as a job; starting again restores the saved machine.
    gui.click_button(w.win, "Stop")
    gui.click(gui.find(gui.app, "menu item", "Save State"))
    w.wait_state("Linux Box", "Saved", 60)
    gui.wait(lambda: vminfo("Linux Box")["VMState"] == "saved", 10, "the file to say saved")
    check(not sensitive(w.button("Stop")) and sensitive(w.button("Start")), "Stop/Start wrong for a saved machine")
    ok("Stop, Save State: Saved on screen and on disk")
    gui.menu(w.win, "Machine", "Start Headless")
    w.wait_state("Linux Box", "Running", 30)
    gui.wait(lambda: vminfo("Linux Box")["VMState"] == "running", 10, "the file to say running")
    ok("Start Headless of the saved machine: Running again")

    # Remove is refused while it runs, with a reason.
    gui.click_button(w.win, "Remove")
    err = gui.window("Error", rolename="alert")
    gui.find(err, "label", "The machine 'Linux Box' is running", timeout=5)
    gui.click_button(err, "Close")
    gui.window_gone("Error")
    check("Linux Box" in registered(), "a running machine was unregistered")
    ok("Remove refused while running")

    # ACPI Shutdown presses the power button (this guest runs no acpid, so it keeps running); Reset asks first.
    vm_log = os.path.join(os.path.dirname(vminfo("Linux Box")["CfgFile"]), "Logs", "VM.log")

    def logged(text):
        with open(vm_log, errors="replace") as f:
            return text in f.read()
    gui.click_button(w.win, "Stop")
    gui.click(gui.find(gui.app, "menu item", "ACPI Shutdown"))
    gui.wait(lambda: logged("control: ACPI power button pressed"), 10, "the power button press in VM.log")
    check(w.state("Linux Box") == "Running", "ACPI Shutdown of a guest without acpid stopped it")
    ok("Stop, ACPI Shutdown: the machine's power button was pressed")
    gui.menu(w.win, "Machine", "Reset")
    q = gui.window("Question", rolename="alert")
    gui.find(q, "label", "Reset the machine 'Linux Box'?", timeout=5)
    gui.click_button(q, "Reset")
    gui.wait(lambda: logged("control: reset"), 10, "the reset in VM.log")
    gui.wait(lambda: vminfo("Linux Box")["VMState"] == "running", 10, "the file to say running after the reset")
    check(w.state("Linux Box") == "Running", "the machine is not running after Reset")
    ok("Machine, Reset (confirmed): reset, still Running")

    gui.click_button(w.win, "Stop")
    gui.click(gui.find(gui.app, "menu item", "Power Off"))
    q = gui.window("Question", rolename="alert")
    gui.find(q, "label", "Power off the machine 'Linux Box'?", timeout=5)
    gui.click_button(q, "Power Off")
    w.wait_state("Linux Box", "Powered Off", 30)
    gui.wait(lambda: vminfo("Linux Box")["VMState"] == "poweroff", 10, "the file to say poweroff")
    gui.wait(lambda: w.preview() == "No preview: Linux Box is not running", 10, "the preview to go")
    ok("Stop, Power Off (confirmed): Powered Off on screen and on disk")

    # Activating a row (double-click, Enter) starts the machine with its console window.
    w.select("Linux Box")
    c = w.name_cell("Linux Box")
    act = c.queryAction()
    acts = [act.getName(i) for i in range(act.nActions)]
    check("activate" in acts, "the row has no activate action: %r" % acts)
    act.doAction(acts.index("activate"))
    w.wait_state("Linux Box", "Running", 30)
    uuid = vminfo("Linux Box")["UUID"]
    cmds = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
        except OSError:
            continue
        if uuid.encode() in cmd and b"--startvm" in cmd:
            cmds.append(cmd)
    check(cmds and all(b"--headless" not in c for c in cmds), "not one vireo-vm with a console: %r" % cmds)
    manage("controlvm", "Linux Box", "poweroff")
    w.wait_state("Linux Box", "Powered Off", 30)
    ok("activating the row starts the machine with its console window")

    # Preferences: the default machine folder goes to the registry.
    newdir = os.path.join(TMP, "new-default")
    os.mkdir(newdir)
    gui.menu(w.win, "File", "Preferences…")
    pr = gui.window("Preferences")
    folder = gui.find(pr, "text", "Default machine folder")
    hostkey = gui.find(pr, "combo box", "Host key")
    gui.find(pr, "label", pred=lambda n: "applies to machine windows opened from now on" in name(n))
    gui.find(pr, "combo box", "Language")
    gui.set_text(folder, "")
    why = gui.wait_field_error(pr, "Default machine folder", 5)
    check(not sensitive(gui.find(pr, "push button", "OK")), "OK is enabled with an empty folder (%r)" % why)
    gui.set_text(folder, newdir)
    gui.wait(lambda: sensitive(gui.find(pr, "push button", "OK")), 5, "OK to be enabled")
    gui.select_combo(hostkey, "Left Win")
    gui.screenshot(os.path.join(SHOTS, "manager-window-preferences.png"), pr)
    gui.click_button(pr, "OK")
    gui.window_gone("Preferences")
    xml = open(os.path.join(os.environ["VIREO_USER_HOME"], "Vireo.xml")).read()
    check(newdir in xml, "Vireo.xml does not record the default folder:\n%s" % xml)
    # The console's windows read the host key from here (vireo-vm, GUI/HostKey): the id, not the name shown.
    extra = {i.get("key"): i.get("value") for e in ET.fromstring(xml).iter() if e.tag.endswith("ExtraData")
             for i in e}
    check(extra.get("GUI/HostKey") == "LeftWin", "Vireo.xml records the host key as %r, not 'LeftWin':\n%s" %
          (extra.get("GUI/HostKey"), xml))
    got = manage("getextradata", "global", "GUI/HostKey").stdout.strip()
    check(got == "Value: LeftWin", "vireo-manage getextradata global GUI/HostKey says %r" % got)
    ok("Preferences: the default machine folder and the host key (Left Win as GUI/HostKey) are recorded in Vireo.xml")

    # A machine that cannot start (its CD image is gone): the error names the reason from vireo-vm's output.
    os.unlink(os.path.join(TMP, "gone.iso"))
    w.select("Windows Box")
    gui.menu(w.win, "Machine", "Start Headless")
    err = gui.window("Error", rolename="alert", timeout=30)
    gui.find(err, "label", "The machine 'Windows Box' did not start", timeout=5)
    detail = [gui.text(x) for x in gui.findall(err, "label") if "gone.iso" in gui.text(x)]
    check(detail, "the error does not show the log's reason")
    gui.click_button(err, "Close")
    gui.window_gone("Error")
    w.wait_state("Windows Box", "Powered Off")
    ok("a start that fails shows vireo-vm's reason: %s" % detail[0].splitlines()[-1][:100])

    # Remove Only: unregistered, files kept.
    w.select("Windows Box")
    gui.click_button(w.win, "Remove")
    d = gui.window("Remove Machine")
    gui.find(d, "label", None, pred=lambda n: "Remove the machine 'Windows Box'?" in gui.text(n))
    gui.screenshot(os.path.join(SHOTS, "manager-window-remove.png"), d)
    gui.click_button(d, "Remove Only")
    gui.wait(lambda: w.name_cell("Windows Box") is None, 10, "Windows Box to leave the list", tree=w.tree)
    check("Windows Box" not in registered(), "Windows Box is still registered")
    check(os.path.exists(os.path.join(TMP, "vms", "Windows Box", "Windows Box.vireo")), "Remove Only deleted files")
    ok("Remove Only: unregistered, its folder kept")

    # Delete All Files: the dialog names the disk, then folder and disk are gone.
    w.select("Disk Box")
    gui.click_button(w.win, "Remove")
    d = gui.window("Remove Machine")
    gui.find(d, "label", None, pred=lambda n: "disk.qcow2" in gui.text(n))
    gui.click_button(d, "Delete All Files")
    gui.wait(lambda: w.name_cell("Disk Box") is None, 15, "Disk Box to leave the list", tree=w.tree)
    check("Disk Box" not in registered(), "Disk Box is still registered")
    check(not os.path.exists(os.path.join(TMP, "vms", "Disk Box")), "Disk Box's folder is still there")
    check("disk.qcow2" not in manage("list", "hdds").stdout, "the disk is still registered")
    check(w.name_cell("Linux Box") is not None, "Linux Box left the list too")
    ok("Delete All Files: folder deleted, disk unregistered")

    # The last machine gone: the friendly empty page.
    manage("unregistervm", "Linux Box")
    gui.find(w.win, "label", "No machines yet — press New to create one", timeout=10)
    ok("an empty registry shows the empty page")


run(main)
