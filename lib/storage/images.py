"""Uploaded pictures decoded and re-encoded: only pixels stored (no EXIF, no trailer).

Uploaded pictures are decoded and re-encoded before they are stored, so what is served
is only pixels: no EXIF (a phone photo's GPS position), no XMP, comments or text chunks,
no colour profile (the pixels are converted to sRGB first), and nothing after the image
data (a PNG with HTML appended comes out ending at IEND). The size in pixels is checked
from the header, before any pixel data is decoded: a small file that would decode to
gigabytes (a decompression bomb) is refused without allocating it.

`reencode` is blocking (tens to hundreds of milliseconds of CPU): callers run it off the
event loop, in a `lib.resilience.bulkhead.Bulkhead`."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps

from lib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from lib.storage.base import detect_image

MAX_PIXELS = 25_000_000  # a 24 MP phone photo (6000 x 4000) fits; decoded RGBA <= 100 MB
# content type -> Pillow's format name and what it is saved with
PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
SAVE_OPTIONS: dict[str, dict[str, object]] = {"JPEG": {"quality": 90}, "PNG": {}}
# what Pillow raises on data it cannot decode (truncated, corrupt, lying headers)
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
KEEP_INFO = ("transparency",)  # drawing information, not metadata: PNG needs it


@dataclass(frozen=True, slots=True)
class CleanImage:
    data: bytes
    content_type: str
    width: int
    height: int


def reencode(data: bytes, *, max_pixels: int = MAX_PIXELS) -> CleanImage:
    """The picture decoded and encoded again in its own format (JPEG or PNG, decided by
    the magic bytes), upright (the EXIF orientation applied), in sRGB, without metadata.
    415 when it is neither JPEG nor PNG, 413 when it has more than `max_pixels` pixels,
    400 when it cannot be decoded."""
    content_type = detect_image(data[:16])
    if content_type is None:
        raise UnsupportedMediaType("the picture must be a JPEG or PNG image")
    fmt = PIL_FORMATS[content_type]
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:  # reads the header only
            width, height = img.size
            if width * height > max_pixels:
                raise Image.DecompressionBombError(f"{width}x{height}")
            img.load()
            clean = _pixels_only(img)
            out = io.BytesIO()
            clean.save(out, format=fmt, **SAVE_OPTIONS[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # ours, or Pillow's own larger limit (Image.MAX_IMAGE_PIXELS) on reading the header
        raise PayloadTooLarge(f"the picture may have at most {max_pixels} pixels") from None
    except DECODE_ERRORS:
        raise BadRequest(f"the picture is not a valid {fmt} image") from None
    return CleanImage(out.getvalue(), content_type, clean.width, clean.height)


def _pixels_only(img: Image.Image) -> Image.Image:
    """A copy of the decoded image, upright, in sRGB, carrying no metadata."""
    upright = ImageOps.exif_transpose(img)  # a copy; the orientation tag is the only one used
    clean = _to_srgb(upright)
    clean.info = {k: v for k, v in upright.info.items() if k in KEEP_INFO}
    return clean


def _to_srgb(img: Image.Image) -> Image.Image:
    """Pixels converted from their embedded colour profile to sRGB, so the profile can be
    dropped without the colours shifting; an unreadable profile is dropped as it is."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        mode = "RGBA" if img.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(img, source, SRGB, outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img
    return converted if converted is not None else img
