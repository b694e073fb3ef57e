"""Pictures on both backends (a local directory; S3 on moto's server on a free loopback
port): upload by content, replace and delete (the old object gone), type and size
refusals. What is stored is read back from the store itself: a phone photo without its
EXIF (GPS), a polyglot PNG ending at IEND, a decompression bomb refused with nothing
stored. The signed local URL's refusals (tampered, expired, keys outside the root):
test_users_pictures.py's test_the_download_refusals."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aiohttp import BodyPartReader, StreamReader
from PIL import Image

from lib.storage import LocalStorage
from lib.storage.base import CapExceeded, read_capped
from lib.storage.images import MAX_PIXELS
from services.users.app import create_app
from services.users.pictures import MAX_PICTURE, STORAGE
from tests.integration.s3_support import new_bucket, objects
from tests.integration.users_support import auth, make_user, users_settings
from tests.pictures_support import (
    GPS_IFD,
    HTML,
    S3_KEYS,
    bomb,
    jpeg,
    phone_photo,
    png,
    polyglot,
)

PNG = png()  # made by Pillow: re-encoding it gives the same bytes
JPEG = jpeg()
IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@pytest.fixture(params=["local", "s3"])
async def client(
    request: Any, aiohttp_client: Any, users_dsn: str, tmp_path: Path, moto_url: str
) -> Any:
    extra: dict[str, Any] = {"storage_dir": str(tmp_path)}
    if request.param == "s3":
        bucket = await new_bucket(moto_url)
        extra |= {"s3_bucket": bucket, "s3_endpoint_url": moto_url, **S3_KEYS}
    return await aiohttp_client(create_app(users_settings(users_dsn, **extra)))


async def stored(client: Any) -> dict[str, bytes]:
    """Every object in the client's store (its own directory or bucket), read directly."""
    storage = client.app[STORAGE]
    if isinstance(storage, LocalStorage):
        return {p.name: p.read_bytes() for p in storage.root.iterdir()}
    return await objects(storage)


async def exists(client: Any, key: str) -> bool:
    """Is the object stored, asked of the backend itself (not through the app)?"""
    storage = client.app[STORAGE]
    if isinstance(storage, LocalStorage):
        return storage.path(key).is_file()
    listed = await storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=key)
    return any(item["Key"] == key for item in listed.get("Contents", []))


def form(data: bytes, content_type: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("image", data, filename="p", content_type=content_type)
    return body


async def upload(client: Any, headers: dict[str, str], data: bytes, ctype: str) -> Any:
    return await client.put("/v1/users/me/picture", data=form(data, ctype), headers=headers)


async def picture_key(client: Any, headers: dict[str, str]) -> tuple[str, str]:
    resp = await client.get("/v1/users/me", headers=headers)
    url: str = (await resp.json())["data"]["picture_url"]
    key = url.split("?")[0].rsplit("/", 1)[1]
    return url, key


async def download(client: Any, url: str) -> tuple[int, bytes]:
    if url.startswith("/"):
        resp = await client.get(url)
        return resp.status, await resp.read()
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.read()


async def test_upload_by_content_replace_and_delete(client: Any, users_dsn: str) -> None:
    me = auth(await make_user(users_dsn))
    resp = await upload(client, me, PNG, "text/plain")  # the content decides, not the header
    assert resp.status == 204, await resp.text()
    url, first = await picture_key(client, me)
    assert first.endswith(".png")
    assert await exists(client, first)
    assert await download(client, url) == (200, PNG)

    assert (await upload(client, me, JPEG, "image/png")).status == 204
    url, second = await picture_key(client, me)
    assert second.endswith(".jpg")
    assert second != first
    status, served = await download(client, url)  # JPEG is re-encoded: lossy, same picture
    assert status == 200
    with Image.open(io.BytesIO(served)) as img:
        assert (img.format, img.size) == ("JPEG", (40, 30))
    assert not await exists(client, first)  # the old object was deleted

    me_now = await (await client.get("/v1/users/me", headers=me)).json()
    etag = f'"{me_now["data"]["version"]}"'
    resp = await client.delete("/v1/users/me", headers={**me, "If-Match": etag})
    assert resp.status == 204
    assert not await exists(client, second)  # the anonymising delete removed it


@pytest.mark.parametrize(
    ("data", "ctype", "status"),
    [
        (b"just some text, not an image", "image/png", 415),
        (b"", "image/png", 415),
        (PNG + b"\x00" * (6 * 1024 * 1024), "image/png", 413),
        (png(200, 200)[:300], "image/png", 400),  # cut in the middle of its pixels
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", 400),  # the signature, no image
        (jpeg(200, 200)[:400], "image/jpeg", 400),
        (b"\xff\xd8\xff" + b"garbage" * 100, "image/jpeg", 400),
        (bomb(6000, 5000), "image/png", 413),  # over our cap, under Pillow's own
    ],
)
async def test_refused_uploads_store_nothing(
    client: Any, users_dsn: str, data: bytes, ctype: str, status: int
) -> None:
    me = auth(await make_user(users_dsn))
    resp = await upload(client, me, data, ctype)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await (await client.get("/v1/users/me", headers=me)).json()
    assert body["data"]["picture_url"] is None
    assert await stored(client) == {}


async def test_a_phone_photo_is_stored_without_its_gps_position(
    client: Any, users_dsn: str
) -> None:
    me = auth(await make_user(users_dsn))
    photo = phone_photo(64, 48)
    with Image.open(io.BytesIO(photo)) as sent:  # the control: the upload carries them
        assert sent.getexif().get_ifd(GPS_IFD)
        assert b"taken at home" in photo
    assert (await upload(client, me, photo, "image/jpeg")).status == 204
    _, key = await picture_key(client, me)
    objects = await stored(client)
    assert list(objects) == [key]
    data = objects[key]
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert img.size == (48, 64)  # turned upright by the orientation tag, then dropped
        assert dict(img.getexif()) == {}
        assert not img.getexif().get_ifd(GPS_IFD)
        assert "exif" not in img.info
        assert "comment" not in img.info
    assert b"Exif" not in data
    assert b"taken at home" not in data


async def test_a_polyglot_png_is_stored_ending_at_iend_and_served_inert(
    client: Any, users_dsn: str
) -> None:
    me = auth(await make_user(users_dsn))
    assert (await upload(client, me, polyglot(), "image/png")).status == 204
    url, key = await picture_key(client, me)
    data = (await stored(client))[key]
    assert data.endswith(IEND)
    assert HTML not in data
    assert data == PNG  # exactly the picture, nothing of the page
    if url.startswith("/"):  # local: the app serves it
        resp = await client.get(url)
        headers = resp.headers
    else:  # S3: the presigned GET answers with what the object was stored with
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            headers = resp.headers
    assert resp.status == 200
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"] == f'inline; filename="{key}"'
    if url.startswith("/"):
        assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert headers["X-Content-Type-Options"] == "nosniff"


async def test_a_bomb_is_refused_from_its_header(client: Any, users_dsn: str) -> None:
    """20000 x 20000 pixels in 99 bytes: refused without decoding (fast), nothing stored."""
    me = auth(await make_user(users_dsn))
    started = time.perf_counter()
    resp = await upload(client, me, bomb(), "image/png")
    elapsed = time.perf_counter() - started
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["code"] == "PAYLOAD_TOO_LARGE"
    assert str(MAX_PIXELS) in problem["detail"]
    # decoding 400 MB of pixels takes seconds; reading a header, a request's time
    assert elapsed < 2.0, f"{elapsed:.2f} s: was the bomb decoded?"
    body = await (await client.get("/v1/users/me", headers=me)).json()
    assert body["data"]["picture_url"] is None
    assert await stored(client) == {}


async def test_six_mib_without_content_length_is_413(client: Any, users_dsn: str) -> None:
    """Chunked: no length to refuse up front, so the streaming cap decides."""
    me = auth(await make_user(users_dsn))
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield head + PNG
        for _ in range(6 * 16):
            yield b"\x00" * (64 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**me, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    resp = await client.put("/v1/users/me/picture", data=chunks(), headers=headers)
    assert resp.status == 413
    assert (await resp.json())["code"] == "PAYLOAD_TOO_LARGE"


async def test_the_cap_never_reads_past_the_limit() -> None:
    """A real multipart part over a 6 MiB stream: read_capped stops just past 5 MiB and
    the rest is still unread in the stream."""
    total = 6 * 1024 * 1024
    protocol = mock.Mock(_reading_paused=False)  # the transport only; the stream is real
    stream = StreamReader(protocol, 2**23, loop=asyncio.get_running_loop())  # never pauses
    stream.feed_data(b"\x00" * total + b"\r\n--b--\r\n")
    stream.feed_eof()
    part = BodyPartReader(b"--b", {}, stream)  # type: ignore[arg-type]
    with pytest.raises(CapExceeded):
        await read_capped(part.read_chunk, MAX_PICTURE)
    left = len(await stream.read())
    # read: the limit, the chunk that crossed it, and one chunk of aiohttp's look-ahead
    # for the boundary; the remaining ~0.9 MiB never left the stream
    assert left >= total - MAX_PICTURE - 2 * 64 * 1024
