"""lib/storage/base without a store: an upload's type comes from its magic bytes only, its
key is random, unguessable and carries the type's extension, only such keys are accepted
(nothing that could leave the root), and the capped read stops one chunk past the limit.
(tests/integration runs the backends, local and S3, behind the pictures API.)"""

from __future__ import annotations

import pytest

from lib.storage.base import (
    CONTENT_TYPES,
    IMAGE_TYPES,
    CapExceeded,
    detect_image,
    new_key,
    read_capped,
    valid_key,
)

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (PNG + b"\x00\x00\x00\rIHDR", "image/png"),
        (PNG, "image/png"),
        (JPEG + b"\xe0\x00\x10JFIF", "image/jpeg"),
        (JPEG, "image/jpeg"),
        (PNG[:-1], None),  # one byte short of the signature
        (JPEG[:2], None),
        (b"GIF89a", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"x" + PNG, None),  # the signature is at offset 0 or nowhere
        (b"", None),
    ],
    ids=["png", "png-signature", "jpeg", "jpeg-signature", "png-short", "jpeg-short", "gif",
         "svg", "png-late", "empty"],
)  # fmt: skip
def test_the_type_is_the_magic_bytes(head: bytes, kind: str | None) -> None:
    assert detect_image(head) == kind


def test_the_extensions_and_the_types_map_both_ways() -> None:
    assert CONTENT_TYPES == {"jpg": "image/jpeg", "png": "image/png"}
    assert {ctype: ext for ctype, (ext, _) in IMAGE_TYPES.items()} == {
        "image/jpeg": "jpg",
        "image/png": "png",
    }


@pytest.mark.parametrize(("ctype", "ext"), [("image/png", "png"), ("image/jpeg", "jpg")])
def test_a_new_key_is_32_random_url_safe_characters_and_the_extension(ctype: str, ext: str) -> None:
    keys = {new_key(ctype) for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        stem, dot, suffix = key.partition(".")
        assert (dot, suffix) == (".", ext)
        assert len(stem) == 32  # 24 random bytes
        assert valid_key(key)


def test_a_key_for_another_type_is_refused() -> None:
    with pytest.raises(KeyError):
        new_key("image/gif")


@pytest.mark.parametrize(
    "key",
    ["a" * 16 + ".png", "Z" * 64 + ".jpg", "ab_-" * 4 + ".png", "0123456789abcdef.jpg"],
    ids=["shortest", "longest", "punctuation", "digits"],
)
def test_keys_new_key_could_make_are_valid(key: str) -> None:
    assert valid_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "a" * 15 + ".png",  # too short
        "a" * 65 + ".png",  # too long
        "a" * 16 + ".gif",
        "a" * 16 + ".PNG",
        "a" * 16 + "png",
        "a" * 16,
        "../" + "a" * 16 + ".png",
        "a" * 8 + "/" + "a" * 8 + ".png",
        "a" * 16 + ".png\n",
        "a" * 16 + ".png.png",
        "a" * 8 + "." + "a" * 7 + ".png",
        "",
    ],
    ids=["short", "long", "gif", "upper-ext", "no-dot", "no-ext", "parent", "slash",
         "newline", "double-ext", "inner-dot", "empty"],
)  # fmt: skip
def test_anything_else_is_not_a_key(key: str) -> None:
    assert not valid_key(key)


class Stream:
    """`read_chunk(size)` over `data`, recording each size asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked: list[int] = []

    async def __call__(self, size: int) -> bytes:
        self.asked.append(size)
        part, self.data = self.data[:size], self.data[size:]
        return part


async def test_a_stream_up_to_the_limit_is_read_whole_in_chunks() -> None:
    stream = Stream(b"0123456789")
    assert await read_capped(stream, 10, chunk=4) == b"0123456789"
    assert stream.asked == [4, 4, 4, 4]  # the last answer, b"", is the end


async def test_one_byte_over_the_limit_is_refused_and_the_rest_stays_unread() -> None:
    stream = Stream(b"01234567890" + b"x" * 100)
    with pytest.raises(CapExceeded, match=r"^more than 10 bytes$"):
        await read_capped(stream, 10, chunk=11)
    assert stream.asked == [11]
    assert len(stream.data) == 100


async def test_the_limit_counts_every_chunk_not_only_the_last() -> None:
    stream = Stream(b"0123456789x")
    with pytest.raises(CapExceeded):
        await read_capped(stream, 10, chunk=4)
    assert stream.asked == [4, 4, 4]


async def test_the_default_chunk_is_64_kib_and_an_empty_stream_is_empty() -> None:
    stream = Stream(b"")
    assert await read_capped(stream, 0) == b""
    assert stream.asked == [64 * 1024]
    with pytest.raises(CapExceeded):
        await read_capped(Stream(b"x"), 0)
