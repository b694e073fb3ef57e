"""services/users/pictures.py to the exact value on real PostgreSQL and a local store (the
S3 backend's own behaviour is in test_storage.py and test_storage_s3.py): what the
storage context opens from the settings, the upload's limits at their edges (the declared
length, the picture's bytes), which multipart field is read, the row and the objects after
an upload and after a refused one, a failed delete of an old object logged, and the signed
download route's answers and headers."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from lib.auth.principal import Role
from lib.keyring import Keyring
from lib.storage import LocalStorage, S3Storage
from services.users.app import create_app
from services.users.pictures import (
    MAX_PICTURE,
    MULTIPART_OVERHEAD,
    PICTURE_WORKERS,
    STORAGE,
    storage_ctx,
)
from tests import pg
from tests.integration.s3_support import new_bucket
from tests.integration.users_support import auth, make_user, users_settings
from tests.logging_support import capture_logs
from tests.pictures_support import S3_KEYS, jpeg, png, signing_credentials

PNG = png()  # made by Pillow: re-encoding it gives the same bytes
BOUNDARY = "fixupboundary"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture
async def client(aiohttp_client: Any, users_dsn: str, tmp_path: Path) -> Any:
    return await aiohttp_client(create_app(users_settings(users_dsn, storage_dir=str(tmp_path))))


def part(name: str, data: bytes, ctype: str = "image/png") -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="p"\r\n'
        f"Content-Type: {ctype}\r\n\r\n"
    )
    return head.encode() + data + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def put(client: Any, headers: dict[str, str], body: bytes, target: Any = "me") -> Any:
    return await client.put(
        f"/v1/users/{target}/picture", data=body, headers={**headers, "Content-Type": CTYPE}
    )


def files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


async def key_of(dsn: str, user_id: uuid.UUID) -> tuple[str | None, int]:
    row = await pg.fetchrow(dsn, "SELECT picture_key, version FROM users WHERE id=$1", user_id)
    return row["picture_key"], row["version"]


async def test_the_local_storage_context_follows_the_settings(
    users_dsn: str, tmp_path: Path
) -> None:
    settings = users_settings(
        users_dsn, storage_dir=str(tmp_path / "pics"), storage_url_ttl=77,
        storage_signing_key="the key", picture_workers=3, picture_queue=5,
    )  # fmt: skip
    app: Any = {}
    ctx = storage_ctx(settings)(app)
    await anext(ctx)
    storage, workers = app[STORAGE], app[PICTURE_WORKERS]
    assert isinstance(storage, LocalStorage)
    assert (storage.root, storage.keys, storage.ttl) == (
        tmp_path / "pics",
        Keyring.single(b"the key"),
        77,
    )
    assert workers.name == "pictures"
    assert (workers.workers, workers.capacity) == (3, 8)
    assert await workers.run(int) == 0
    with pytest.raises(StopAsyncIteration):
        await anext(ctx)
    with pytest.raises(RuntimeError, match="after shutdown"):  # the threads end with the app
        await workers.run(int)


async def test_the_s3_storage_context_follows_the_settings(users_dsn: str) -> None:
    settings = users_settings(
        users_dsn, s3_bucket="the-bucket", s3_endpoint_url="http://127.0.0.1:9",
        s3_region="eu-west-3", storage_url_ttl=55, **S3_KEYS,
    )  # fmt: skip
    app: Any = {}
    ctx = storage_ctx(settings)(app)
    await anext(ctx)
    try:
        storage = app[STORAGE]
        assert isinstance(storage, S3Storage)
        assert (storage.bucket, storage.ttl) == ("the-bucket", 55)
        meta = storage.client.meta
        assert (meta.endpoint_url, meta.region_name) == ("http://127.0.0.1:9", "eu-west-3")
        credentials = await signing_credentials(storage.client)
        assert (credentials.access_key, credentials.secret_key) == ("testing", "testing")
    finally:
        with pytest.raises(StopAsyncIteration):
            await anext(ctx)


async def test_an_upload_stores_the_picture_and_replaces_the_old_one(
    client: Any, users_dsn: str, tmp_path: Path
) -> None:
    user_id = await make_user(users_dsn)
    me = auth(user_id)
    resp = await put(client, me, multipart(part("image", PNG)))
    assert resp.status == 204, await resp.text()
    assert await resp.read() == b""
    first, version = await key_of(users_dsn, user_id)
    assert first is not None
    assert first.endswith(".png")
    assert version == 2
    assert files(tmp_path) == [first]
    assert (tmp_path / first).read_bytes() == PNG
    resp = await put(client, me, multipart(part("image", jpeg(), "application/octet-stream")))
    assert resp.status == 204
    second, version = await key_of(users_dsn, user_id)
    assert second is not None
    assert second.endswith(".jpg")
    assert version == 3
    assert files(tmp_path) == [second]  # the old one deleted


async def test_an_admin_uploads_for_another_user(
    client: Any, users_dsn: str, tmp_path: Path
) -> None:
    user_id = await make_user(users_dsn)
    resp = await put(client, auth(uuid.uuid4(), Role.ADMIN), multipart(part("image", PNG)), user_id)
    assert resp.status == 204
    key, _ = await key_of(users_dsn, user_id)
    assert files(tmp_path) == [key]


async def test_an_upload_for_nobody_stores_nothing(
    client: Any, users_dsn: str, tmp_path: Path
) -> None:
    admin = auth(uuid.uuid4(), Role.ADMIN)
    resp = await put(client, admin, multipart(part("image", PNG)), uuid.uuid4())
    assert (resp.status, (await resp.json())["detail"]) == (404, "no such user")
    user_id = await make_user(users_dsn)
    await pg.fetchrow(
        users_dsn, "UPDATE users SET deleted_at = now(), disabled_at = now() WHERE id=$1", user_id
    )
    resp = await put(client, auth(user_id), multipart(part("image", PNG)))
    assert resp.status == 401
    assert files(tmp_path) == []  # stored first, deleted when the row said no


async def test_a_failed_delete_of_the_old_picture_is_logged_not_failed(
    client: Any, users_dsn: str, tmp_path: Path
) -> None:
    user_id = await make_user(users_dsn)
    await pg.fetchrow(users_dsn, "UPDATE users SET picture_key = 'bad' WHERE id=$1", user_id)
    with capture_logs() as logs:
        resp = await put(client, auth(user_id), multipart(part("image", PNG)))
    assert resp.status == 204
    failed = [e for e in logs if e["event"] == "picture_delete_failed"]
    assert [(e["key"], e["error"], e["log_level"]) for e in failed] == [
        ("bad", "ObjectNotFound", "warning")
    ]
    key, _ = await key_of(users_dsn, user_id)
    assert files(tmp_path) == [key]


async def test_the_declared_length_and_the_picture_are_refused_only_past_their_limits(
    client: Any, users_dsn: str
) -> None:
    """Content-Length up to the picture's limit plus the multipart overhead is read (here a
    small picture padded after its end, as a PNG may be, to exactly MAX_PICTURE bytes, and
    part headers padding the rest); one byte more is 413 before reading. A picture of one
    byte more than MAX_PICTURE in a body under that length is 413 too."""
    me = auth(await make_user(users_dsn))
    limit = MAX_PICTURE + MULTIPART_OVERHEAD
    image = multipart(part("image", PNG + b"\x00" * (MAX_PICTURE - len(PNG))))
    pad = limit - len(image)  # split over header lines within aiohttp's line limit
    sizes = (pad // 4,) * 3 + (pad - 3 * (pad // 4),)
    lines = [b"X-Pad: " + b"x" * (n - 9) + b"\r\n" for n in sizes]
    head = f"--{BOUNDARY}\r\n".encode()
    body = head + b"".join(lines) + image[len(head) :]
    assert len(body) == limit
    resp = await put(client, me, body)
    assert resp.status == 204, await resp.text()
    resp = await put(client, me, body + b"x")
    assert resp.status == 413
    problem = await resp.json()
    assert problem["detail"] == f"the `image` part may be at most {MAX_PICTURE} bytes"
    over = multipart(part("image", PNG + b"\x00" * (MAX_PICTURE + 1 - len(PNG))))
    assert len(over) < limit  # read, then refused for the picture's own size
    resp = await put(client, me, over)
    assert resp.status == 413
    assert (await resp.json())["detail"] == f"the `image` part may be at most {MAX_PICTURE} bytes"


async def test_not_multipart_or_no_image_field(client: Any, users_dsn: str) -> None:
    me = auth(await make_user(users_dsn))
    resp = await client.put(
        "/v1/users/me/picture", data=PNG, headers={**me, "Content-Type": "image/png"}
    )
    assert resp.status == 415
    assert (await resp.json())["detail"] == "send multipart/form-data with an `image` part"
    resp = await put(client, me, multipart())
    assert resp.status == 400
    assert (await resp.json())["detail"] == "the multipart body has no `image` part"


async def served(client: Any, users_dsn: str, data: bytes) -> tuple[str, str]:
    user_id = await make_user(users_dsn)
    me = auth(user_id)
    assert (await put(client, me, multipart(part("image", data)))).status == 204
    url = (await (await client.get("/v1/users/me", headers=me)).json())["data"]["picture_url"]
    return url, url.split("?")[0].rsplit("/", 1)[1]


@pytest.mark.parametrize(("data", "ctype"), [(PNG, "image/png"), (jpeg(), "image/jpeg")])
async def test_the_download_headers(
    client: Any, users_dsn: str, tmp_path: Path, data: bytes, ctype: str
) -> None:
    url, key = await served(client, users_dsn, data)
    resp = await client.get(url)
    assert resp.status == 200
    assert await resp.read() == (tmp_path / key).read_bytes()
    assert {name: resp.headers[name] for name in (
        "Content-Type", "Content-Disposition", "Content-Security-Policy",
        "X-Content-Type-Options", "Cache-Control",
    )} == {
        "Content-Type": ctype,
        "Content-Disposition": f'inline; filename="{key}"',
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=300",
    }  # fmt: skip
    assert set(resp.headers) == {  # nothing else: no cookie, no header of ours misspelt
        "Accept-Ranges", "Cache-Control", "Content-Disposition", "Content-Length",
        "Content-Security-Policy", "Content-Type", "Date", "Etag", "Last-Modified",
        "Referrer-Policy", "Server", "X-Content-Type-Options", "X-Frame-Options",
        "X-Request-ID",
    }  # fmt: skip


async def test_the_download_refusals(client: Any, users_dsn: str, tmp_path: Path) -> None:
    url, key = await served(client, users_dsn, PNG)
    storage: LocalStorage = client.app[STORAGE]
    expires = url.split("expires=")[1].split("&")[0]
    sig = storage.sign(key, int(expires))
    for bad, missing in ((f"/v1/pictures/{key}", {"expires", "sig"}),
                         (f"/v1/pictures/{key}?expires={expires}", {"sig"}),
                         (f"/v1/pictures/{key}?sig={sig}", {"expires"})):  # fmt: skip
        resp = await client.get(bad)  # what the document declares required, named
        assert resp.status == 400, bad
        assert {e["field"] for e in (await resp.json())["errors"]} == missing, bad
    resp = await client.get(url[:-1] + ("0" if url[-1] != "0" else "1"))  # tampered
    assert resp.status == 403
    assert (await resp.json())["detail"] == "the picture URL is invalid or has expired"
    past = int(time.time()) - 10
    resp = await client.get(f"/v1/pictures/{key}?expires={past}&sig={storage.sign(key, past)}")
    assert (resp.status, (await resp.json())["detail"]) == (
        403,
        "the picture URL is invalid or has expired",
    )
    (tmp_path.parent / "secret.png").write_bytes(PNG)  # a key outside the root finds nothing
    for outside in ("..%2Fsecret.png", "..", "%2E%2E%2Fsecret.png"):
        resp = await client.get(f"/v1/pictures/{outside}?expires={expires}&sig=00")
        assert resp.status == 404, outside
    signed = f"expires={expires}&sig={storage.sign('bad', int(expires))}"
    resp = await client.get(f"/v1/pictures/bad?{signed}")
    assert (resp.status, (await resp.json())["detail"]) == (404, "no such picture")
    gone = "G" * 32 + ".png"
    resp = await client.get(
        f"/v1/pictures/{gone}?expires={expires}&sig={storage.sign(gone, int(expires))}"
    )
    assert (resp.status, (await resp.json())["detail"]) == (404, "no such picture")
    (tmp_path / gone).mkdir()  # a directory under a key's name is no picture either
    resp = await client.get(
        f"/v1/pictures/{gone}?expires={expires}&sig={storage.sign(gone, int(expires))}"
    )
    assert resp.status == 404


async def test_with_s3_the_app_serves_no_picture(aiohttp_client: Any, users_dsn: str) -> None:
    settings = users_settings(
        users_dsn, s3_bucket="b", s3_endpoint_url="http://127.0.0.1:9", **S3_KEYS
    )
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/v1/pictures/" + "A" * 32 + ".png?expires=1&sig=0")
    assert resp.status == 404
    assert (await resp.json())["detail"] == "pictures are served by the object store"


async def test_an_upload_to_s3_carries_its_type(
    aiohttp_client: Any, users_dsn: str, moto_url: str
) -> None:
    """The one thing a local store does not keep: the object's type (a presigned GET
    answers with it)."""
    bucket = await new_bucket(moto_url)
    settings = users_settings(users_dsn, s3_bucket=bucket, s3_endpoint_url=moto_url, **S3_KEYS)
    client = await aiohttp_client(create_app(settings))
    user_id = await make_user(users_dsn)
    assert (await put(client, auth(user_id), multipart(part("image", jpeg())))).status == 204
    key, _ = await key_of(users_dsn, user_id)
    storage: S3Storage = client.app[STORAGE]
    head = await storage.client.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "image/jpeg"
