"""lib/storage/images without a server: what reencode keeps and drops, decided on pictures
made with Pillow and ICC profiles written byte by byte (tests/pictures_support.py), so the
colours a conversion must give are known. The bounds are checked at their exact edges: the
pixel cap (ours and Pillow's), the types by magic bytes, the decode errors' problem."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from lib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from lib.storage.images import MAX_PIXELS, CleanImage, _to_srgb, reencode
from tests.pictures_support import (
    GPS_IFD,
    bomb,
    cmyk_profile_all_red,
    grey_profile,
    jpeg,
    phone_photo,
    photocd_behind_jpeg_magic,
    png,
    rgb_profile_swapping_red_and_green,
    tagged,
)

SWAP = rgb_profile_swapping_red_and_green()


def opened(clean: CleanImage) -> Image.Image:
    img = Image.open(io.BytesIO(clean.data))
    img.load()
    return img


def test_a_png_comes_back_as_the_same_png() -> None:
    data = png(40, 30)
    clean = reencode(data)
    assert clean == CleanImage(data, "image/png", 40, 30)  # Pillow wrote it: same bytes


def test_a_jpeg_comes_back_as_a_jpeg_of_its_size() -> None:
    clean = reencode(jpeg(41, 29))
    assert (clean.content_type, clean.width, clean.height) == ("image/jpeg", 41, 29)
    img = opened(clean)
    assert (img.format, img.size, img.mode) == ("JPEG", (41, 29), "RGB")
    assert img.info.get("exif") is None


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a" + b"\x00" * 64, b"x" + png(), b"<svg/>"],
    ids=["empty", "gif", "png-late", "svg"],
)
def test_neither_jpeg_nor_png_is_415(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        reencode(data)
    assert refused.value.status == 415
    assert refused.value.detail == "the picture must be a JPEG or PNG image"


def test_the_type_is_the_content_never_the_other_decoder() -> None:
    """A PNG signature on JPEG data is decoded as PNG only: refused, not sniffed again."""
    with pytest.raises(BadRequest) as refused:
        reencode(b"\x89PNG\r\n\x1a\n" + jpeg()[3:])
    assert refused.value.detail == "the picture is not a valid PNG image"


def test_only_the_decoder_of_the_magic_bytes_is_tried() -> None:
    """Bytes another Pillow reader would take (a PhotoCD behind JPEG's magic) are not a
    JPEG: 400, never decoded as whatever format fits."""
    with pytest.raises(BadRequest) as refused:
        reencode(photocd_behind_jpeg_magic())
    assert refused.value.detail == "the picture is not a valid JPEG image"


def test_a_jpeg_is_written_at_quality_90() -> None:
    """The stored JPEG's quantisation tables are those Pillow writes at quality 90."""
    data = jpeg(64, 64)
    with Image.open(io.BytesIO(data)) as img:
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=90)
    with Image.open(out) as q90, Image.open(io.BytesIO(jpeg(64, 64, quality=75))) as q75:
        tables = getattr(q90, "quantization")  # noqa: B009 (JPEG only: not in Image's type)
        assert getattr(q75, "quantization") != tables  # noqa: B009 (the control)
        assert getattr(opened(reencode(data)), "quantization") == tables  # noqa: B009


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (png(200, 200)[:300], "PNG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "PNG"),
        (jpeg(200, 200)[:400], "JPEG"),
        (b"\xff\xd8\xff" + b"garbage" * 100, "JPEG"),
    ],
    ids=["png-cut", "png-signature-only", "jpeg-cut", "jpeg-garbage"],
)
def test_undecodable_is_400_naming_the_format(data: bytes, fmt: str) -> None:
    with pytest.raises(BadRequest) as refused:
        reencode(data)
    assert refused.value.status == 400
    assert refused.value.detail == f"the picture is not a valid {fmt} image"


def test_the_pixel_cap_is_inclusive() -> None:
    """40 x 30 = 1200 pixels: allowed at a cap of 1200, refused at 1199 (naming it)."""
    assert reencode(png(40, 30), max_pixels=1200).width == 40
    with pytest.raises(PayloadTooLarge) as refused:
        reencode(png(40, 30), max_pixels=1199)
    assert refused.value.status == 413
    assert refused.value.detail == "the picture may have at most 1199 pixels"


def test_the_default_cap_is_max_pixels() -> None:
    """A header of MAX_PIXELS + 1 pixels is refused from the header (413); one of exactly
    MAX_PIXELS is decoded (Pillow fills the rows its short data lacks)."""
    assert MAX_PIXELS == 25_000_000
    with pytest.raises(PayloadTooLarge) as refused:
        reencode(bomb(MAX_PIXELS + 1, 1))
    assert refused.value.detail == f"the picture may have at most {MAX_PIXELS} pixels"
    assert (reencode(bomb(5000, 5000)).width, reencode(bomb(MAX_PIXELS, 1)).height) == (5000, 1)


def test_pillows_own_limit_is_413_too() -> None:
    """Over twice Pillow's MAX_IMAGE_PIXELS Pillow refuses on reading the header, whatever
    our cap: still 413, with our cap in the detail."""
    with pytest.raises(PayloadTooLarge) as refused:
        reencode(bomb(), max_pixels=10**12)
    assert refused.value.detail == f"the picture may have at most {10**12} pixels"


def test_a_phone_photo_is_turned_upright_and_loses_its_metadata() -> None:
    photo = phone_photo(64, 48)
    with Image.open(io.BytesIO(photo)) as sent:
        assert sent.getexif().get_ifd(GPS_IFD)
    clean = reencode(photo)
    assert (clean.width, clean.height) == (48, 64)
    img = opened(clean)
    assert img.size == (48, 64)
    assert dict(img.getexif()) == {}
    assert "comment" not in img.info
    assert b"taken at home" not in clean.data


def test_transparency_is_kept_and_text_is_not() -> None:
    """A palette PNG's transparent index is drawing information (kept); its text chunk and
    its resolution are metadata (dropped)."""
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    meta = PngImagePlugin.PngInfo()
    meta.add_text("Comment", "where I live")
    out = io.BytesIO()
    img.save(out, "PNG", transparency=1, pnginfo=meta, dpi=(300, 300))
    with Image.open(io.BytesIO(out.getvalue())) as sent:
        assert {"transparency", "Comment", "dpi"} <= set(sent.info)
    clean = opened(reencode(out.getvalue()))
    assert clean.mode == "P"
    assert clean.info == {"transparency": 1}


@pytest.mark.parametrize(
    ("mode", "fmt", "colour", "expected"),
    [
        ("RGB", "PNG", (255, 0, 0), (0, 255, 0)),
        ("RGBA", "PNG", (255, 0, 0, 128), (0, 255, 0, 128)),
    ],
    ids=["rgb", "rgba"],
)
def test_a_profile_is_applied_to_the_pixels_then_dropped(
    mode: str, fmt: str, colour: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    """Red in a profile whose red is sRGB's green is stored green, alpha kept."""
    clean = opened(reencode(tagged(mode, colour, fmt, SWAP)))
    assert clean.mode == mode
    assert clean.getpixel((0, 0)) == expected
    assert "icc_profile" not in clean.info


def test_a_jpeg_profile_is_applied_too() -> None:
    clean = opened(reencode(tagged("RGB", (255, 0, 0), "JPEG", SWAP)))
    red, green, blue = clean.getpixel((0, 0))  # type: ignore[misc]
    assert (red < 8, green > 247, blue < 8) == (True, True, True)
    assert "icc_profile" not in clean.info


def test_a_cmyk_jpeg_is_converted_to_rgb_by_its_profile() -> None:
    clean = opened(reencode(tagged("CMYK", (0, 255, 0, 0), "JPEG", cmyk_profile_all_red())))
    assert clean.mode == "RGB"
    red, green, blue = clean.getpixel((0, 0))  # type: ignore[misc]
    assert (red > 100, green < 20, blue < 30) == (True, True, True)
    assert "icc_profile" not in clean.info


def test_an_unreadable_profile_is_dropped_with_the_pixels_as_they_are() -> None:
    clean = opened(reencode(tagged("RGB", (255, 0, 0), "PNG", b"not a profile" * 20)))
    assert clean.getpixel((0, 0)) == (255, 0, 0)
    assert "icc_profile" not in clean.info


def test_to_srgb_leaves_alone_what_it_cannot_or_need_not_convert() -> None:
    """No profile, an empty one, a mode no RGB profile applies to (greyscale), a profile
    that does not fit the mode: the very same image back."""
    plain = Image.new("RGB", (2, 2), (255, 0, 0))
    assert _to_srgb(plain) is plain
    empty = Image.new("RGB", (2, 2), (255, 0, 0))
    empty.info["icc_profile"] = b""
    assert _to_srgb(empty) is empty
    grey = Image.new("L", (2, 2), 200)
    grey.info["icc_profile"] = grey_profile()  # Little CMS would convert it: not asked to
    assert _to_srgb(grey) is grey
    mismatched = Image.new("CMYK", (2, 2), (0, 255, 0, 0))
    mismatched.info["icc_profile"] = SWAP  # an RGB profile on CMYK pixels
    assert _to_srgb(mismatched) is mismatched


def test_to_srgb_converts_rgb_rgba_and_cmyk_to_new_images() -> None:
    for mode, colour, icc, out in [
        ("RGB", (255, 0, 0), SWAP, "RGB"),
        ("RGBA", (255, 0, 0, 7), SWAP, "RGBA"),
        ("CMYK", (0, 255, 0, 0), cmyk_profile_all_red(), "RGB"),
    ]:
        img = Image.new(mode, (2, 2), colour)
        img.info["icc_profile"] = icc
        converted = _to_srgb(img)
        assert converted is not img, mode
        assert converted.mode == out, mode
