"""Real pictures for the upload tests, made with Pillow: plain ones, a phone photo with a
GPS position, a PNG with HTML appended (a polyglot), and a 20000 x 20000 PNG that is a few
hundred bytes on the wire (a decompression bomb: its IDAT holds only a little zlib); ICC
profiles written byte by byte; moto's S3 server for the S3 backend."""

from __future__ import annotations

import io
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from botocore.exceptions import NoCredentialsError
from moto.server import ThreadedMotoServer
from PIL import Image

from tools.local.ports import free_port
from tools.time_scale import scaled

S3_KEYS = {"s3_access_key_id": "testing", "s3_secret_access_key": "testing"}
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
    img.save(out, "JPEG", **{"quality": 90, **save})
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


# --- ICC profiles written byte by byte (ICC.1 v2), so a test knows what converting does ---

D50 = (0.9642, 1.0, 0.8249)
# sRGB's primaries adapted to D50 (the columns of its RGB -> XYZ matrix)
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)


def _s15(*values: float) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + _s15(x, y, z)


def _profile(device: bytes, space: bytes, pcs: bytes, tags: dict[bytes, bytes]) -> bytes:
    """A profile: the 128-byte header, the tag table, the tags (each at a 4-byte offset)."""
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags.items():
        data += b"\x00" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size) + b"\x00" * 4 + struct.pack(">I", 0x02100000) + device + space
        + pcs + b"\x00" * 12 + b"acsp" + b"\x00" * 24 + struct.pack(">I", 0) + _s15(*D50)
        + b"\x00" * 48
    )  # fmt: skip
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def rgb_profile_swapping_red_and_green() -> bytes:
    """An RGB display profile whose red is sRGB's green and whose green is sRGB's red
    (gamma 1): a pure red pixel tagged with it is pure green in sRGB."""
    linear = b"curv\x00\x00\x00\x00" + struct.pack(">I", 0)  # no entries: the identity
    return _profile(
        b"mntr", b"RGB ", b"XYZ ",
        {
            b"wtpt": _xyz(*D50), b"rXYZ": _xyz(*SRGB_GREEN), b"gXYZ": _xyz(*SRGB_RED),
            b"bXYZ": _xyz(*SRGB_BLUE), b"rTRC": linear, b"gTRC": linear, b"bTRC": linear,
        },
    )  # fmt: skip


def grey_profile() -> bytes:
    """A greyscale display profile (gamma 1): Little CMS converts greyscale with it."""
    linear = b"curv\x00\x00\x00\x00" + struct.pack(">I", 0)
    return _profile(b"mntr", b"GRAY", b"XYZ ", {b"wtpt": _xyz(*D50), b"kTRC": linear})


def photocd_behind_jpeg_magic() -> bytes:
    """JPEG's magic bytes, then what Pillow's Kodak PhotoCD reader takes for a PhotoCD
    image (it has no magic of its own: `PCD_` at 2048 and 768 x 512 pixels after): not a
    JPEG, and only a reader trying every format would decode it."""
    return b"\xff\xd8\xff" + b"\x00" * 2045 + b"PCD_" + b"\x00" * (96 * 2048 + 768 * 512 * 2)


def cmyk_profile_all_red() -> bytes:
    """A CMYK printer profile (an 8-bit lookup table to Lab) mapping every ink mix to a red
    (Little CMS keeps bare paper, no ink at all, white): any inked pixel converts to red."""
    ramp = bytes(range(256))
    red = bytes((round(54 * 255 / 100), 81 + 128, 70 + 128))
    lut = (
        b"mft1\x00\x00\x00\x00" + bytes((4, 3, 2, 0)) + _s15(1, 0, 0, 0, 1, 0, 0, 0, 1)
        + ramp * 4 + red * 2**4 + ramp * 3
    )  # fmt: skip
    return _profile(b"prtr", b"CMYK", b"Lab ", {b"wtpt": _xyz(*D50), b"A2B0": lut})


def tagged(mode: str, colour: tuple[int, ...], fmt: str, icc: bytes, size: int = 8) -> bytes:
    """A `size` x `size` picture of one colour carrying the ICC profile `icc`."""
    out = io.BytesIO()
    Image.new(mode, (size, size), colour).save(out, fmt, icc_profile=icc)
    return out.getvalue()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 in server mode on a free loopback port; yields its URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        deadline = time.monotonic() + scaled(10)
        while True:  # wait for the port to accept
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    msg = f"moto did not listen on 127.0.0.1:{port} within 10 s"
                    raise RuntimeError(msg) from exc
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def signing_credentials(client: Any) -> Any:
    """The credentials an aiobotocore S3 `client` signs with (None: it has none), through
    public APIs: the request signer that the `before-sign` event hands its handlers, asked
    for its auth (RequestSigner.get_auth_instance) while a URL is presigned (nothing sent)."""
    signing: list[dict[str, Any]] = []

    def before_sign(**kwargs: Any) -> None:
        signing.append(kwargs)

    client.meta.events.register("before-sign.s3", before_sign)
    try:
        with suppress(NoCredentialsError):  # without credentials: refused after the event
            await client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    finally:
        client.meta.events.unregister("before-sign.s3", before_sign)
    [sign] = signing
    auth = await sign["request_signer"].get_auth_instance(
        sign["signing_name"], sign["region_name"], sign["signature_version"]
    )
    return auth.credentials
