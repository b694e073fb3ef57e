"""Real pictures for the upload tests, made with Pillow: plain ones, a phone photo with a
GPS position, a PNG with HTML appended (a polyglot), and a 20000 x 20000 PNG that is a few
hundred bytes on the wire (a decompression bomb: its IDAT holds only a little zlib)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112
# 48°51'29" N, 2°17'40" E
GPS = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


def png(width: int = 40, height: int = 30, mode: str = "RGBA") -> bytes:
    img = Image.linear_gradient("L").resize((width, height)).convert(mode)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def jpeg(width: int = 40, height: int = 30, **save: object) -> bytes:
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def phone_photo(width: int = 64, height: int = 48) -> bytes:
    """A JPEG as a phone writes it: EXIF with a GPS position and an orientation (rotate
    90° to show it upright), and a comment."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[GPS_IFD] = GPS
    return jpeg(width, height, exif=exif, comment=b"taken at home")


def polyglot() -> bytes:
    """A valid PNG that is also an HTML page to a browser that sniffs."""
    return png() + HTML


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG header claiming width x height 8-bit greyscale pixels (400 MB decoded at the
    default size), with one compressed row of zeros: the file is a few hundred bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )
