#!/usr/bin/env python3
"""console-x11.py - what the console window tests ask of the X server that xdotool (3.2016) cannot do, through libX11 with ctypes.

  console-x11.py close WID          asks the window to close as a window manager does (WM_DELETE_WINDOW),
                                    rather than destroying it as xdotool windowclose does
  console-x11.py key KEYCODE        presses and releases one X keycode through XTEST, alone (xdotool key adds
                                    Control_L around Control_R, for one)
  console-x11.py pixels WID Y0 Y1   reads the window's pixels between rows Y0 and Y1 (fractions of its height)
                                    and prints "size WxH dark D light L colours C" for that band: D pixels that
                                    are black or nearly, L pixels that are light grey or brighter, C distinct
                                    colours (capped at 1000)
"""
import ctypes
import sys

x11 = ctypes.cdll.LoadLibrary("libX11.so.6")
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XInternAtom.restype = ctypes.c_ulong
x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x11.XFlush.argtypes = [ctypes.c_void_p]
x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
x11.XGetImage.restype = ctypes.c_void_p
x11.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                          ctypes.c_ulong, ctypes.c_int]


class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("l", ctypes.c_long * 5)]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]


class XWindowAttributes(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
                ("border_width", ctypes.c_int), ("depth", ctypes.c_int), ("visual", ctypes.c_void_p),
                ("root", ctypes.c_ulong), ("class_", ctypes.c_int), ("bit_gravity", ctypes.c_int),
                ("win_gravity", ctypes.c_int), ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
                ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int), ("colormap", ctypes.c_ulong),
                ("map_installed", ctypes.c_int), ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
                ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
                ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p)]


class XImage(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int), ("format", ctypes.c_int),
                ("data", ctypes.c_void_p), ("byte_order", ctypes.c_int), ("bitmap_unit", ctypes.c_int),
                ("bitmap_bit_order", ctypes.c_int), ("bitmap_pad", ctypes.c_int), ("depth", ctypes.c_int),
                ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int)]


x11.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(XWindowAttributes)]

CLIENT_MESSAGE = 33
Z_PIXMAP = 2


def close(dpy, wid):
    ev = XEvent()
    ev.xclient.type = CLIENT_MESSAGE
    ev.xclient.window = wid
    ev.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
    ev.xclient.format = 32
    ev.xclient.l[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
    ev.xclient.l[1] = 0  # CurrentTime
    if not x11.XSendEvent(dpy, wid, 0, 0, ctypes.byref(ev)):
        sys.exit("cannot send WM_DELETE_WINDOW")
    x11.XSync(dpy, 0)
    return 0


def pixels(dpy, wid, f0, f1):
    attrs = XWindowAttributes()
    if not x11.XGetWindowAttributes(dpy, wid, ctypes.byref(attrs)):
        sys.exit("no such window")
    w, h = attrs.width, attrs.height
    y0, y1 = int(h * f0), max(int(h * f0) + 1, int(h * f1))
    ptr = x11.XGetImage(dpy, wid, 0, y0, w, y1 - y0, 0xFFFFFFFF, Z_PIXMAP)
    if not ptr:
        sys.exit("XGetImage failed (is the window mapped and on the screen?)")
    img = XImage.from_address(ptr)
    if img.bits_per_pixel != 32:
        sys.exit("only 32-bit pixels are read (got %d)" % img.bits_per_pixel)
    data = ctypes.string_at(img.data, img.bytes_per_line * img.height)
    dark = light = 0
    colours = set()
    for row in range(img.height):
        line = data[row * img.bytes_per_line: row * img.bytes_per_line + img.width * 4]
        for i in range(0, len(line), 4):
            b, g, r = line[i], line[i + 1], line[i + 2]
            if len(colours) < 1000:
                colours.add((r, g, b))
            if r < 16 and g < 16 and b < 16:
                dark += 1
            elif r >= 0x98 and g >= 0x98 and b >= 0x98:
                light += 1
    print("size %dx%d dark %d light %d colours %d" % (w, h, dark, light, len(colours)))
    return 0


def key(dpy, keycode):
    xtst = ctypes.cdll.LoadLibrary("libXtst.so.6")
    xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
    if not xtst.XTestFakeKeyEvent(dpy, keycode, 1, 0) or not xtst.XTestFakeKeyEvent(dpy, keycode, 0, 10):
        sys.exit("XTEST refused the key")
    x11.XSync(dpy, 0)
    return 0


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("close", "key", "pixels"):
        sys.exit(__doc__)
    dpy = x11.XOpenDisplay(None)
    if not dpy:
        sys.exit("cannot open the display")
    wid = int(sys.argv[2], 0)
    if sys.argv[1] == "close":
        rc = close(dpy, wid)
    elif sys.argv[1] == "key":
        rc = key(dpy, wid)
    else:
        if len(sys.argv) != 5:
            sys.exit(__doc__)
        rc = pixels(dpy, wid, float(sys.argv[3]), float(sys.argv[4]))
    x11.XCloseDisplay(dpy)
    return rc


if __name__ == "__main__":
    sys.exit(main())
