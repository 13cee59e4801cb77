"""manager-cli-sync.py - the manager's list while vireo-manage changes the registry (tests/manager-cli-sync.sh sets up the environment)."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ["VIREO_SRC"], "tests", "lib"))
from mgr_gui import check, manage, name, ok, registered, role, run, sensitive  # noqa: E402

TMP = os.environ["MGR_TMP"]
SHOTS = os.path.join(os.environ["VIREO_OUT"], "screenshots")
LIMIT = 5.0   # seconds for a CLI change to show (the manager polls every second)


def vm_pid(vm):
    """The vireo-vm process running vm (its command line names the machine's UUID)."""
    uuid = manage("showvminfo", vm, "--machinereadable").stdout.split('UUID="')[1].split('"')[0]
    pids = []
    for p in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[0].endswith(b"vireo-vm") and argv[1:3] == [b"--startvm", uuid.encode()]:
            pids.append(int(p))
    check(len(pids) == 1, "not one vireo-vm for %s: %r" % (vm, pids))
    return pids[0]


def step(msg, t0):
    ok("%s (%.1f s)" % (msg, time.monotonic() - t0))


def main(gui):
    gui.start_manager(log=os.path.join(TMP, "vireo.log"))
    win = gui.window("Vireo")
    gui.find(win, "label", "No machines yet — press New to create one")
    tree = None

    def cell(vm):
        nonlocal tree
        if tree is None:
            tree = (gui.findall(win, "table", "Machines") or [None])[0]
            if tree is None:
                return None
        cells = gui.findall(tree, "table cell", vm)
        if not cells:
            return None
        c = cells[0]
        return c.parent if role(c.parent) == "table cell" else c

    def state(vm):
        c = cell(vm)
        return name(tree.getChildAtIndex(c.getIndexInParent() + 1)) if c is not None else None

    def wait_state(vm, want, what):
        t0 = time.monotonic()
        gui.wait(lambda: state(vm) == want, LIMIT, "%r to show %r (shows %r)" % (vm, want, state(vm)), tree=tree)
        step(what, t0)

    def select(vm):
        gui.select_row(tree, vm, LIMIT)

    def detail(key):
        labels = gui.findall(win, "label", key, pred=lambda n: gui.text(n) != key)
        return gui.text(labels[0]) if labels else None

    manage("createvm", "--name", "Sync VM", "--ostype", "Debian_64", "--basefolder", os.path.join(TMP, "vms"),
           "--register")
    manage("modifyvm", "Sync VM", "--memory", "128", "--audio", "none", "--usb", "off")
    wait_state("Sync VM", "Powered Off", "createvm --register: the row appears")

    # No disks and no CD: the firmware starts and waits, which is all this needs.
    manage("startvm", "Sync VM", "--type", "headless", "--exec", "soft")
    wait_state("Sync VM", "Running", "startvm --type headless: Running")
    manage("controlvm", "Sync VM", "pause")
    wait_state("Sync VM", "Paused", "controlvm pause: Paused")
    manage("controlvm", "Sync VM", "resume")
    wait_state("Sync VM", "Running", "controlvm resume: Running")
    manage("controlvm", "Sync VM", "savestate")
    wait_state("Sync VM", "Saved", "controlvm savestate: Saved")
    manage("startvm", "Sync VM", "--type", "headless", "--exec", "soft")
    wait_state("Sync VM", "Running", "startvm from the saved state: Running")
    # A crash: the VM process dies without recording anything; its run lock goes with it.
    pid = vm_pid("Sync VM")
    os.kill(pid, signal.SIGKILL)
    wait_state("Sync VM", "Aborted", "vireo-vm killed (process %d): Aborted" % pid)
    manage("startvm", "Sync VM", "--type", "headless", "--exec", "soft")
    wait_state("Sync VM", "Running", "startvm after the crash: Running")
    manage("controlvm", "Sync VM", "poweroff")
    wait_state("Sync VM", "Powered Off", "controlvm poweroff: Powered Off")

    select("Sync VM")
    gui.wait(lambda: detail("Memory") == "128 MiB", LIMIT, "the details of Sync VM", tree=win)
    t0 = time.monotonic()
    manage("modifyvm", "Sync VM", "--memory", "300")
    gui.wait(lambda: detail("Memory") == "300 MiB", LIMIT, "Memory to show 300 MiB (shows %r)" % detail("Memory"),
             tree=win)
    step("modifyvm --memory 300: the details pane follows", t0)

    # A machine whose settings file becomes garbage: its row stays, marked, and the details say why.
    manage("createvm", "--name", "Broken VM", "--ostype", "Other", "--basefolder", os.path.join(TMP, "vms"),
           "--register")
    wait_state("Broken VM", "Powered Off", "a second machine appears")
    path = os.path.join(TMP, "vms", "Broken VM", "Broken VM.vireo")
    with open(path + ".tmp", "w") as f:
        f.write("this is not <xml at all\n")
    os.rename(path + ".tmp", path)
    wait_state("Broken VM", "Inaccessible", "a garbage settings file: the row says Inaccessible")
    select("Broken VM")
    err = gui.wait(lambda: detail("Error"), LIMIT, "the error in the details pane", tree=win)
    check(path in err, "the error does not name the file: %r" % err)
    check(state("Sync VM") == "Powered Off", "the other row changed: %r" % state("Sync VM"))
    gui.screenshot(os.path.join(SHOTS, "manager-cli-sync-broken.png"), win)
    print("     error shown: %s" % err)

    # A broken registry: a bar in the window says so and the list keeps what it had.
    reg = os.path.join(os.environ["VIREO_USER_HOME"], "Vireo.xml")
    good = open(reg).read()
    t0 = time.monotonic()
    with open(reg + ".tmp", "w") as f:
        f.write("<VireoRegistry schemaVersion=\"2\"><Machines><Oops/></Machines>\n")
    os.rename(reg + ".tmp", reg)
    bar = gui.find(win, "label", None, pred=lambda n: gui.text(n).startswith("The machine registry cannot be read"),
                   timeout=LIMIT)
    check(reg in gui.text(bar), "the bar does not name the file: %r" % gui.text(bar))
    check(cell("Sync VM") is not None and cell("Broken VM") is not None, "the list lost its rows")
    step("a broken registry shows a bar (%s) and keeps the list" % gui.text(bar)[:80], t0)
    gui.screenshot(os.path.join(SHOTS, "manager-cli-sync-registry-error.png"), win)
    with open(reg + ".tmp", "w") as f:
        f.write(good)
    os.rename(reg + ".tmp", reg)
    gui.wait(lambda: not gui.findall(win, "label", None, pred=lambda n: gui.text(n).startswith(
        "The machine registry cannot be read")), LIMIT, "the bar to go once the registry is repaired", tree=win)

    # The unreadable machine can still be taken off the list (Remove Only; nothing deleted).
    select("Broken VM")
    gui.click_button(win, "Remove")
    d = gui.window("Remove Machine")
    check(not sensitive(gui.find(d, "push button", "Delete All Files")),
          "Delete All Files is offered for a machine whose files are unknown")
    gui.click_button(d, "Remove Only")
    gui.wait(lambda: cell("Broken VM") is None, LIMIT, "Broken VM to leave the list", tree=tree)
    check("Broken VM" not in registered(), "Broken VM is still registered")
    check(os.path.exists(path), "Remove Only of the unreadable machine deleted its file")
    ok("Remove Only takes the unreadable machine off the list, its file stays")

    t0 = time.monotonic()
    manage("unregistervm", "Sync VM", "--delete")
    gui.wait(lambda: cell("Sync VM") is None, LIMIT, "Sync VM to leave the list", tree=tree)
    gui.find(win, "label", "No machines yet — press New to create one", timeout=LIMIT)
    step("unregistervm --delete: the row disappears", t0)


run(main)
