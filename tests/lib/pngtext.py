#!/usr/bin/env python3
# pngtext.py - reads the text on a screenshot of a text screen, using the IBM VGA 8x16 font taken from SeaBIOS's VGA BIOS.
"""pngtext.py [--font BIOS] FILE.png

Prints what a screenshot of a text screen says, independently of Vireo's own renderer:

    # size 720x400 cell 9x16 grid 80x25
    # colours fg aaaaaa:1234 bg 000000:2000
    <one line of text per character row, trailing blanks removed>

The glyphs come from the VGA BIOS image (the 4096-byte 8x16 table, found by its first two
glyphs: 16 zero bytes, then the smiley 00 00 7e 81 a5 81 81 bd 99 81 81 7e ...).  A 720x400
image is VGA text mode with 9-pixel cells (the ninth column is spacing or a copy of the eighth,
so only the first eight count); anything else is a framebuffer console with 8x16 cells.  In each
cell the most common colour is the background and every other pixel is foreground; the cell's
16x8 bit pattern is matched against the font: exactly, else the nearest glyph when one-pixel
shifts are forgiven (other variants of the IBM font, as Linux's framebuffer console draws it) and a
cursor's few pixels, else '?'.  Linux's framebuffer console draws a few lower-case letters
differently enough (m, w, f) that they may read as n, u or '['; capitals, digits and the text
screen of the VGA BIOS's own font read exactly.  Needs only the Python standard library (zlib for the PNG data).
"""
import struct
import sys
import zlib

DEFAULT_FONT = "/usr/share/seabios/vgabios-stdvga.bin"
FONT_START = bytes(16) + bytes.fromhex("00007e81a58181bd9981817e")
MAX_DISTANCE = 40  # see distance(): a cursor underline or a variant's shifted strokes still match


def fail(msg):
    sys.stderr.write("pngtext: %s\n" % msg)
    sys.exit(2)


def read_png(path):
    """Returns (width, height, rows) with rows as lists of (r, g, b) tuples; 8-bit RGB/RGBA/grey only."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s: not a PNG file" % path)
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            fail("%s: truncated %s chunk" % (path, kind.decode("latin-1")))
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if not ihdr:
        fail("%s: no IHDR chunk" % path)
    width, height, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or not channels or interlace:
        fail("%s: only 8-bit non-interlaced grey/RGB/RGBA images (depth %d, colour type %d)" % (path, depth, ctype))
    if not (0 < width <= 16384 and 0 < height <= 16384):
        fail("%s: unreasonable size %dx%d" % (path, width, height))
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        fail("%s: image data is %d bytes, expected %d" % (path, len(raw), height * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        bpp = channels
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif ftype != 0:
            fail("%s: row %d has unknown filter %d" % (path, y, ftype))
        prev = line
        if channels >= 3:
            rows.append([tuple(line[i:i + 3]) for i in range(0, stride, channels)])
        else:
            rows.append([(line[i],) * 3 for i in range(0, stride, channels)])
    return width, height, rows


def load_font(path):
    with open(path, "rb") as f:
        bios = f.read()
    at = bios.find(FONT_START)
    if at < 0 or at + 4096 > len(bios):
        fail("%s: no 8x16 VGA font (its first two glyphs were not found)" % path)
    table = bios[at:at + 4096]
    glyphs = {}
    for code in range(256):
        bits = table[code * 16:code * 16 + 16]
        # The first glyph of each bit pattern wins (space over NUL and 0xff, 'A' over look-alikes later on).
        if code >= 32 and bits not in glyphs:
            glyphs[bits] = code
    for code in range(32):
        glyphs.setdefault(table[code * 16:code * 16 + 16], code)
    return glyphs


def popcount(x):
    return bin(x).count("1")


def spread(row):
    """A glyph row with every set pixel widened by one to each side."""
    return (row | (row << 1) | (row >> 1)) & 0xFF


def distance(a, b):
    """How unlike two glyphs are: the pixels that differ, plus four for each pixel of either glyph with
    no pixel of the other at or beside it.  Variants of the IBM font (Linux's VGA8x16 draws v, w, m, 0
    and f a column away from the VGA BIOS's) differ by shifted pixels, different letters by lone ones."""
    loose = sum(popcount(x & ~spread(y)) + popcount(y & ~spread(x)) for x, y in zip(a, b))
    return sum(popcount(x ^ y) for x, y in zip(a, b)) + 4 * loose


def match(cell_bits, glyphs, cache):
    key = bytes(cell_bits)
    if key in glyphs:
        return glyphs[key]
    if key not in cache:
        best, best_d = None, MAX_DISTANCE + 1
        for bits, code in glyphs.items():
            d = distance(key, bits)
            if d < best_d:
                best, best_d = code, d
        cache[key] = best
    return cache[key]


def to_char(code):
    if code is None:
        return "?"
    if code == 0 or code == 0xFF:
        return " "
    if 32 <= code < 127:
        return chr(code)
    return bytes([code]).decode("cp437")


def main(argv):
    font = DEFAULT_FONT
    args = argv[1:]
    if len(args) >= 2 and args[0] == "--font":
        font, args = args[1], args[2:]
    if len(args) != 1:
        sys.stderr.write(__doc__)
        return 2
    glyphs = load_font(font)
    width, height, rows = read_png(args[0])
    cw = 9 if (width, height) == (720, 400) else 8
    ch = 16
    cols, lines = width // cw, height // ch
    fg_count, bg_count, cache, out = {}, {}, {}, []
    for row in range(lines):
        text = []
        for col in range(cols):
            x0, y0 = col * cw, row * ch
            counts = {}
            for y in range(y0, y0 + ch):
                for px in rows[y][x0:x0 + cw]:
                    counts[px] = counts.get(px, 0) + 1
            bg = max(counts, key=counts.get)
            bits = []
            for y in range(y0, y0 + ch):
                b = 0
                for x in range(8):
                    if rows[y][x0 + x] != bg:
                        b |= 0x80 >> x
                bits.append(b)
            bg_count[bg] = bg_count.get(bg, 0) + 1
            for px, n in counts.items():
                if px != bg:
                    fg_count[px] = fg_count.get(px, 0) + n
            text.append(" " if not any(bits) else to_char(match(bits, glyphs, cache)))
        out.append("".join(text).rstrip())

    def colours(d):
        return " ".join("%02x%02x%02x:%d" % (c + (n,)) for c, n in sorted(d.items(), key=lambda kv: -kv[1])[:8])

    print("# size %dx%d cell %dx%d grid %dx%d" % (width, height, cw, ch, cols, lines))
    print("# colours fg %s bg %s" % (colours(fg_count) or "-", colours(bg_count)))
    for line in out:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
