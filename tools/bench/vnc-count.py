#!/usr/bin/env python3
"""vnc-count.py - the display benchmark's VNC client: counts the framebuffer updates a VNC server delivers.

Usage: vnc-count.py HOST PORT SECONDS [WAIT]
Speaks RFB 3.8 (3.3 and 3.7 too) with no authentication, asks for 32-bit true colour in Raw encoding
(plus the DesktopSize pseudo-encoding, so a mode change does not end the run) and keeps one incremental
FramebufferUpdateRequest outstanding: a new one goes out as soon as an update has been read in full, as
viewers do.  Once the first update with pixels has come (within WAIT seconds, default 120) it prints
"measuring", counts for SECONDS the updates that carried at least one rectangle and their pixel bytes,
and prints "frames N bytes B seconds S".  Exit status: 0 with at least one frame, 2 when the connection
or handshake failed, 4 when no update came.
"""
import socket
import struct
import sys
import time


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.scratch = bytearray(1 << 20)

    def read(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if k == 0:
                raise EOFError("the server closed the connection")
            got += k
        return bytes(buf)

    def skip(self, n):
        view = memoryview(self.scratch)
        while n > 0:
            k = self.sock.recv_into(view, min(n, len(self.scratch)))
            if k == 0:
                raise EOFError("the server closed the connection")
            n -= k


def handshake(c):
    version = c.read(12)
    if not version.startswith(b"RFB "):
        raise ValueError("not an RFB server: %r" % version)
    minor = int(version[8:11])
    minor = 8 if minor >= 8 else 7 if minor == 7 else 3
    c.sock.sendall(b"RFB 003.%03d\n" % minor)
    if minor == 3:
        (sec,) = struct.unpack(">I", c.read(4))
        if sec != 1:
            raise ValueError("the server wants security type %d, not None" % sec)
    else:
        (n,) = struct.unpack("B", c.read(1))
        if n == 0:
            (ln,) = struct.unpack(">I", c.read(4))
            raise ValueError("refused: %s" % c.read(ln).decode(errors="replace"))
        types = c.read(n)
        if 1 not in types:
            raise ValueError("the server offers no security type None (%s)" % list(types))
        c.sock.sendall(b"\x01")
        if minor == 8:
            (res,) = struct.unpack(">I", c.read(4))
            if res != 0:
                raise ValueError("security result %d" % res)
    c.sock.sendall(b"\x01")  # ClientInit: shared
    w, h = struct.unpack(">HH", c.read(4))
    c.read(16)
    (ln,) = struct.unpack(">I", c.read(4))
    c.read(ln)
    # SetPixelFormat: 32 bpp, depth 24, little endian, true colour, 8 bits each at 16/8/0.
    c.sock.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
    # SetEncodings: Raw, DesktopSize.
    c.sock.sendall(struct.pack(">BxHii", 2, 2, 0, -223))
    return w, h


def main():
    if len(sys.argv) < 4:
        print("usage: vnc-count.py HOST PORT SECONDS [WAIT]", file=sys.stderr)
        return 1
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    wait = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
    try:
        sock = socket.create_connection((host, port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Conn(sock)
        w, h = handshake(c)
    except (OSError, ValueError, EOFError) as e:
        print("connection failed: %s" % e)
        return 2
    print("connected %dx%d" % (w, h), flush=True)
    deadline = time.monotonic() + wait
    start = None
    frames = nbytes = 0
    c.sock.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    try:
        while True:
            now = time.monotonic()
            if start is None and now >= deadline:
                break
            if start is not None and now >= start + seconds:
                break
            (kind,) = struct.unpack("B", c.read(1))
            if kind == 0:
                (nrects,) = struct.unpack(">xH", c.read(3))
                pixels = 0
                for _ in range(nrects):
                    x, y, rw, rh, enc = struct.unpack(">HHHHi", c.read(12))
                    if enc == 0:
                        c.skip(rw * rh * 4)
                        pixels += rw * rh * 4
                    elif enc == -223:
                        w, h = rw, rh
                    else:
                        raise ValueError("unasked-for encoding %d" % enc)
                c.sock.sendall(struct.pack(">BBHHHH", 3, 1, 0, 0, w, h))
                if nrects and pixels:
                    if start is None:
                        start = time.monotonic()
                        print("measuring", flush=True)
                    else:
                        frames += 1
                        nbytes += pixels
            elif kind == 1:
                _, _, n = struct.unpack(">xHH", c.read(5))
                c.skip(n * 6)
            elif kind == 2:
                pass
            elif kind == 3:
                (ln,) = struct.unpack(">3xI", c.read(7))
                c.skip(ln)
            else:
                raise ValueError("unknown server message %d" % kind)
    except (OSError, ValueError, EOFError) as e:
        print("stopped: %s" % e)
    elapsed = time.monotonic() - start if start is not None else 0.0
    print("frames %d bytes %d seconds %.2f" % (frames, nbytes, elapsed), flush=True)
    return 0 if frames else 4


if __name__ == "__main__":
    sys.exit(main())
