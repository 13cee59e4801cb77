"""mgr_gui.py - drives the manager (vireo) under Xvfb through its accessibility tree (AT-SPI, Debian's python3-pyatspi).

Run test scripts with Debian's interpreter inside their own D-Bus session, so the accessibility bus is theirs:
    dbus-run-session -- /usr/bin/python3 tests/manager-x.py
The environment gives VIREO_BIN (the programs) and a private VIREO_USER_HOME and XDG_RUNTIME_DIR.

    gui = Gui()                      # Xvfb on a free display; DISPLAY is set for everything started after
    app = gui.start_manager()        # vireo, waited for until its main window is showing
    win = gui.window("Vireo")        # a top-level window by title (waits)
    gui.click(gui.find(win, "push button", "New"))
    gui.set_text(gui.find(dlg, "text", "Name"), "Test VM")
    gui.field_error(dlg, "Name")      # the inline error's text for a field, "" when none is shown
    gui.select_combo(combo, "qcow2") # a combo box's item;  gui.select_row(table, "Debian") a tree view's row
    gui.tab(dlg, "System")           # a notebook page;  gui.alert() the error/question dialog showing
    gui.screenshot("out.png", win)   # PNG of the window (or the whole screen)
    manage("list", "vms"); vminfo("VM")["memory"]; registered()   # vireo-manage, for checking the files
    gui.close()

Every wait has a timeout and fails with the tree of what was there, so a broken test says what it saw.
"""

import os
import re
import subprocess
import sys
import time

import gi

gi.require_version("Atspi", "2.0")
gi.require_version("Gdk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
import pyatspi  # noqa: E402
from gi.repository import Gdk  # noqa: E402

DEFAULT_TIMEOUT = 20.0


class GuiError(AssertionError):
    pass


def _children(node):
    try:
        n = node.childCount
    except Exception:
        return []
    out = []
    for i in range(n):
        try:
            c = node.getChildAtIndex(i)
        except Exception:
            c = None
        if c is not None:
            out.append(c)
    return out


def _state(node, st):
    try:
        return node.getState().contains(st)
    except Exception:
        return False


def showing(node):
    return _state(node, pyatspi.STATE_SHOWING)


def sensitive(node):
    return _state(node, pyatspi.STATE_SENSITIVE) and _state(node, pyatspi.STATE_ENABLED)


def checked(node):
    return _state(node, pyatspi.STATE_CHECKED) or _state(node, pyatspi.STATE_PRESSED)


def role(node):
    try:
        return node.getRoleName()
    except Exception:
        return "?"


def name(node):
    try:
        return node.name or ""
    except Exception:
        return ""


def desc(node):
    try:
        return node.description or ""
    except Exception:
        return ""


def dump(node, depth=0, out=None, limit=4000):
    """The tree below node as indented text (for failure messages)."""
    if out is None:
        out = []
    if len(out) > limit:
        return out
    flags = "" if showing(node) else " (hidden)"
    if depth and not sensitive(node):
        flags += " (insensitive)"
    text = ""
    try:
        t = node.queryText()
        text = t.getText(0, min(t.characterCount, 80))
    except Exception:
        pass
    line = "  " * depth + "[%s] %r" % (role(node), name(node))
    if desc(node):
        line += " desc=%r" % desc(node)
    if text and text != name(node):
        line += " text=%r" % text
    out.append(line + flags)
    for c in _children(node):
        dump(c, depth + 1, out, limit)
    return out


class Gui:
    def __init__(self, width=1280, height=900):
        r, w = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "%dx%dx24" % (width, height),
                                      "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(w)
        num = b""
        while not num.endswith(b"\n"):
            chunk = os.read(r, 16)
            if not chunk:
                raise GuiError("Xvfb did not start")
            num += chunk
        os.close(r)
        os.environ["DISPLAY"] = ":" + num.decode().strip()
        os.environ["NO_AT_BRIDGE"] = "0"
        os.environ["GTK_THEME"] = "Adwaita"
        os.environ.setdefault("LANG", "C.UTF-8")
        self.procs = []
        self.app = None
        Gdk.init([])

    # ---- Processes ----------------------------------------------------------------------------------
    def start_manager(self, *args, log=None, timeout=DEFAULT_TIMEOUT):
        exe = os.path.join(os.environ["VIREO_BIN"], "vireo")
        out = open(log, "ab") if log else subprocess.DEVNULL
        p = subprocess.Popen([exe] + list(args), stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.manager = p
        self.app = self.wait(lambda: self._find_app("vireo"), timeout, "the manager on the accessibility bus")
        return self.app

    def _find_app(self, appname):
        desk = pyatspi.Registry.getDesktop(0)
        for a in _children(desk):
            if name(a) == appname:
                return a
        return None

    def stop_manager(self, timeout=10):
        """Ends the manager started last (when it still runs) and waits until it has left the accessibility bus, so
        the next start_manager finds the new one."""
        p = getattr(self, "manager", None)
        if p is not None and p.poll() is None:
            p.terminate()
            p.wait(timeout)
        self.wait(lambda: self._find_app("vireo") is None, timeout, "the manager to leave the accessibility bus")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.xvfb.terminate()
        try:
            self.xvfb.wait(5)
        except subprocess.TimeoutExpired:
            self.xvfb.kill()

    # ---- Waiting and finding ----------------------------------------------------------------------------
    def wait(self, fn, timeout=DEFAULT_TIMEOUT, what="a condition", tree=None):
        end = time.monotonic() + timeout
        while True:
            try:
                v = fn()
            except Exception:
                v = None
            if v:
                return v
            if time.monotonic() > end:
                msg = "timed out after %.0f s waiting for %s" % (timeout, what)
                if tree is not None or self.app is not None:
                    msg += "\n" + "\n".join(dump(tree if tree is not None else self.app))
                raise GuiError(msg)
            time.sleep(0.1)

    def findall(self, node, rolename=None, nm=None, description=None, only_showing=True, pred=None):
        out = []

        def walk(n):
            for c in _children(n):
                if only_showing and not showing(c):
                    continue
                if ((rolename is None or role(c) == rolename) and (nm is None or name(c) == nm) and
                        (description is None or desc(c) == description) and (pred is None or pred(c))):
                    out.append(c)
                walk(c)
        walk(node)
        return out

    def find(self, node, rolename=None, nm=None, description=None, timeout=DEFAULT_TIMEOUT, only_showing=True,
             pred=None):
        """The first node below node with that role, name and description (waits until it shows)."""
        what = "[%s] %r%s below [%s] %r" % (rolename, nm, " desc=%r" % description if description else "",
                                           role(node), name(node))
        return self.wait(lambda: (self.findall(node, rolename, nm, description, only_showing, pred) or [None])[0],
                         timeout, what, tree=node)

    def window(self, title, timeout=DEFAULT_TIMEOUT, rolename=None):
        """A top-level window (frame or dialog) of the manager by its title."""
        def look():
            for w in _children(self.app):
                if name(w) == title and showing(w) and (rolename is None or role(w) == rolename):
                    return w
            return None
        return self.wait(look, timeout, "window %r" % title)

    def window_gone(self, title, timeout=DEFAULT_TIMEOUT):
        self.wait(lambda: not any(name(w) == title and showing(w) for w in _children(self.app)), timeout,
                  "window %r to close" % title)

    def windows(self):
        return [name(w) for w in _children(self.app) if showing(w)]

    # ---- Acting -----------------------------------------------------------------------------------------------
    def click(self, node):
        """Presses a button, menu item, check box, tab or list row through its action."""
        if role(node) == "page tab":
            parent = node.parent
            idx = node.getIndexInParent()
            parent.querySelection().selectChild(idx)
            return
        act = node.queryAction()
        names = [act.getName(i) for i in range(act.nActions)]
        for want in ("click", "press", "activate", "toggle", "select"):
            if want in names:
                act.doAction(names.index(want))
                return
        if act.nActions:
            act.doAction(0)
            return
        raise GuiError("[%s] %r has no action" % (role(node), name(node)))

    def click_button(self, parent, label, timeout=DEFAULT_TIMEOUT):
        b = self.find(parent, "push button", label, timeout=timeout)
        self.wait(lambda: sensitive(b), timeout, "button %r to be enabled" % label, tree=parent)
        self.click(b)
        return b

    def menu(self, parent, *path):
        """Opens menus along path (["Machine", "Start Headless"]) and activates the last item."""
        node = parent
        for i, label in enumerate(path):
            item = self.find(node if i == 0 else self.app, None, label,
                             pred=lambda n: role(n) in ("menu", "menu item", "check menu item", "radio menu item"))
            self.click(item)
            node = item
        return node

    def set_text(self, node, text):
        """Replaces an entry's text (as typing would) and lets GTK see it."""
        e = node.queryEditableText()
        e.setTextContents(text)
        time.sleep(0.05)

    def text(self, node):
        try:
            t = node.queryText()
            return t.getText(0, t.characterCount)
        except Exception:
            return name(node)

    def set_value(self, node, value):
        """A spin button's or slider's value."""
        node.queryValue().currentValue = float(value)
        time.sleep(0.05)

    def value(self, node):
        return node.queryValue().currentValue

    def select_combo(self, combo, label, timeout=DEFAULT_TIMEOUT):
        """Makes label the combo box's active item through the combo's own selection (selecting the item in its
        hidden menu only highlights it)."""
        def labels():
            return [name(n) for n in self.findall(combo, "menu item", only_showing=False)]
        have = self.wait(lambda: label in labels() and labels(), timeout,
                         "item %r in combo %r" % (label, name(combo)), tree=combo)
        sel = combo.querySelection()
        sel.selectChild(have.index(label))
        self.wait(lambda: sel.nSelectedChildren == 1 and name(sel.getSelectedChild(0)) == label, 5,
                  "combo %r to show %r" % (name(combo), label), tree=combo)
        time.sleep(0.1)

    def select_row(self, table_node, label=None, timeout=DEFAULT_TIMEOUT, pred=None):
        """Selects the row of a tree view (role tree table) that has a cell named label (or one pred accepts).  Tree
        views select rows through the table interface; their selection interface serves one-column views only.  A
        cell inside another (a column of several renderers) stands for the outer cell's row."""
        cell = self.find(table_node, "table cell", label, timeout=timeout, pred=pred)
        row_cell = cell.parent if role(cell.parent) == "table cell" else cell
        table = table_node.queryTable()
        table.addRowSelection(table.getRowAtIndex(row_cell.getIndexInParent()))
        time.sleep(0.2)
        return cell

    def tab(self, node, label, timeout=DEFAULT_TIMEOUT):
        """Switches a notebook to the page tab named label and waits until it is the selected one."""
        self.click(self.find(node, "page tab", label, timeout=timeout))
        self.wait(lambda: any(_state(t, pyatspi.STATE_SELECTED) for t in self.findall(node, "page tab", label)),
                  timeout, "tab %r to be selected" % label, tree=node)
        time.sleep(0.2)

    def alert(self, timeout=DEFAULT_TIMEOUT):
        """The message dialog showing now (mgr_error and mgr_confirm: role alert, named "Error" or "Question")."""
        return self.find(self.app, "alert", timeout=timeout)

    def alert_gone(self, timeout=DEFAULT_TIMEOUT):
        self.wait(lambda: not self.findall(self.app, "alert"), timeout, "the message dialog to close")

    def field_error(self, node, field):
        """The inline error shown for a field ("" when there is none showing)."""
        errs = self.findall(node, "label", None, "error: " + field)
        return name(errs[0]) if errs else ""

    def wait_field_error(self, node, field, timeout=DEFAULT_TIMEOUT):
        return self.wait(lambda: self.field_error(node, field), timeout, "an inline error for %r" % field, tree=node)

    def key(self, *keys):
        subprocess.run(["xdotool", "key", "--clearmodifiers"] + list(keys), check=True)

    def focus(self, title):
        """Gives the X keyboard focus to the toplevel titled title (there is no window manager to do it)."""
        wids = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^%s$" % re.escape(title)],
                              capture_output=True, text=True).stdout.split()
        if not wids:
            raise GuiError("no X window titled %r to focus" % title)
        subprocess.run(["xdotool", "windowfocus", "--sync", wids[-1]], check=True, timeout=10)

    # ---- Pictures ------------------------------------------------------------------------------------------------
    def screenshot(self, path, node=None):
        """Saves the screen, or the extents of node (a window), as PNG."""
        Gdk.flush()
        root = Gdk.get_default_root_window()
        x, y, w, h = 0, 0, root.get_width(), root.get_height()
        if node is not None:
            ext = node.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
            x, y, w, h = max(ext.x, 0), max(ext.y, 0), ext.width, ext.height
        pb = Gdk.pixbuf_get_from_window(root, x, y, w, h)
        if pb is None:
            raise GuiError("cannot read the screen for %s" % path)
        pb.savev(path, "png", [], [])
        return pb


def tool(prog, *args, ok=True, timeout=120):
    """Runs one of Vireo's programs (vireo-manage, vireo-img); with ok, a non-zero exit fails the test with its
    message.  Returns the CompletedProcess (.stdout, .stderr, .returncode)."""
    p = subprocess.run([os.path.join(os.environ["VIREO_BIN"], prog)] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if ok and p.returncode != 0:
        raise GuiError("%s %s failed (%d): %s%s" % (prog, " ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def manage(*args, ok=True, timeout=120):
    """Runs vireo-manage; with ok, a non-zero exit fails the test with its message."""
    return tool("vireo-manage", *args, ok=ok, timeout=timeout)


def vminfo(vm):
    """vireo-manage showvminfo VM --machinereadable as a dict (quotes and backslash escapes removed; keys such as
    "SATA-0-0" are quoted in the output, not in the dict)."""
    out = {}
    for line in manage("showvminfo", vm, "--machinereadable").stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if len(key) >= 2 and key[0] == '"' and key[-1] == '"':
            key = key[1:-1]
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = re.sub(r'\\(.)', r'\1', value[1:-1])
        out[key] = value
    return out


def registered():
    """The names of the registered machines (vireo-manage list vms)."""
    return re.findall(r'^"(.*)" \{', manage("list", "vms").stdout, re.M)


def ok(msg):
    print("ok   %s" % msg, flush=True)


def check(cond, msg):
    if not cond:
        raise GuiError(msg)


def run(main, **gui_args):
    """Runs main(gui) and exits 0, or prints the failure and exits 1 (gui_args go to Gui())."""
    gui = None
    try:
        gui = Gui(**gui_args)
        main(gui)
    except GuiError as e:
        print("FAIL: %s" % e, flush=True)
        if gui is not None and gui.app is not None:
            print("windows now: %r" % gui.windows())
        sys.exit(1)
    finally:
        if gui is not None:
            gui.close()
    sys.exit(0)
