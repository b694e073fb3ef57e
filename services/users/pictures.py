"""Profile pictures: the upload (PUT /v1/users/{id|me}/picture) and, for local storage, the
signed download route (GET /v1/pictures/{key}). Storage I/O never runs while a pooled
connection is held: the object is stored first, the row changed in a short transaction,
and the old object deleted after the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

from aiohttp import BodyPartReader, web

from lib.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType
from lib.http.keys import DB
from lib.http.openapi import operation
from lib.logging import get_logger
from lib.storage import LocalStorage, ObjectNotFound, S3Storage, Storage, detect_image, new_key
from lib.storage.base import CONTENT_TYPES, CapExceeded, read_capped
from services.users.access import editable, missing
from services.users.db import profiles as q
from services.users.settings import UsersSettings

log = get_logger("users.pictures")
routes = web.RouteTableDef()
TAGS = ["users"]
STORAGE: web.AppKey[Storage] = web.AppKey("storage")
MAX_PICTURE = 5 * 1024 * 1024
MULTIPART_OVERHEAD = 16 * 1024  # boundaries and part headers around the image


def storage_ctx(settings: UsersSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context that opens the configured storage (S3 when S3_BUCKET is set)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if settings.s3_bucket:
                app[STORAGE] = await S3Storage.open(
                    stack,
                    bucket=settings.s3_bucket,
                    ttl=settings.storage_url_ttl,
                    endpoint_url=settings.s3_endpoint_url,
                    region=settings.s3_region,
                    access_key_id=settings.s3_access_key_id,
                    secret_access_key=settings.s3_secret_access_key.get_secret_value(),
                )
            else:
                app[STORAGE] = LocalStorage(
                    settings.storage_dir,
                    signing_key=settings.storage_signing_key.get_secret_value().encode(),
                    ttl=settings.storage_url_ttl,
                )
            yield

    return ctx


async def picture_url(app: web.Application, key: str | None) -> str | None:
    """The signed, expiring URL of a picture (None without one)."""
    return None if key is None else await app[STORAGE].url(key)


async def delete_quietly(storage: Storage, key: str | None) -> None:
    """Delete an object the database no longer names; a failure leaves an orphan, logged."""
    if key is None:
        return
    try:
        await storage.delete(key)
    except Exception as exc:  # the change is committed: never fail the request for this
        log.warning("picture_delete_failed", key=key, error=type(exc).__name__)


async def read_image(request: web.Request) -> tuple[bytes, str]:
    """The multipart field `image`, read up to MAX_PICTURE + 1 bytes (never more), and its
    type by magic bytes: 413 when longer, 415 when neither JPEG nor PNG."""
    if request.content_length is not None and (
        request.content_length > MAX_PICTURE + MULTIPART_OVERHEAD
    ):
        raise PayloadTooLarge(f"the picture may be at most {MAX_PICTURE} bytes")
    if not request.content_type.startswith("multipart/"):
        raise UnsupportedMediaType("send multipart/form-data with an `image` field")
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "image":
            try:
                data = await read_capped(part.read_chunk, MAX_PICTURE)
            except CapExceeded:
                raise PayloadTooLarge(f"the picture may be at most {MAX_PICTURE} bytes") from None
            content_type = detect_image(data[:16])
            if content_type is None:
                raise UnsupportedMediaType("the picture must be a JPEG or PNG image")
            return data, content_type
        await part.release()
    raise BadRequest("the multipart body has no `image` field")


@routes.put(r"/v1/users/{id}/picture")
@operation(
    "Upload a profile picture",
    tags=TAGS,
    status=204,
    roles=("self", "ADMIN"),
    errors=(400, 403, 404, 413, 415),
    description=(
        "multipart/form-data, field `image`: JPEG or PNG by content (magic bytes, not the "
        "header), at most 5 MiB. The previous picture is deleted. `{id}` may be `me`."
    ),
)
async def put_picture(request: web.Request) -> web.Response:
    principal, user_id = editable(request)
    data, content_type = await read_image(request)
    storage = request.app[STORAGE]
    key = new_key(content_type)
    await storage.put(key, data, content_type)
    try:
        async with request.app[DB].transaction() as conn:
            before = await q.lock_user(conn, id=user_id)
            if before is None:
                raise await missing(conn, principal, user_id)
            await q.set_picture(conn, picture_key=key, id=user_id)
    except BaseException:
        await delete_quietly(storage, key)
        raise
    await delete_quietly(storage, before.picture_key)
    return web.Response(status=204)


@routes.get(r"/v1/pictures/{key}")
@operation(
    "Download a picture (local storage)",
    tags=TAGS,
    errors=(403, 404),
    description="The signed URL of `picture_url`: 403 when tampered with or expired.",
)
async def get_picture(request: web.Request) -> web.StreamResponse:
    storage = request.app[STORAGE]
    if not isinstance(storage, LocalStorage):
        raise NotFound("pictures are served by the object store")
    key = request.match_info["key"]
    try:
        path = storage.path(key)
    except ObjectNotFound:
        raise NotFound("no such picture") from None
    query = request.query
    if not storage.check(key, query.get("expires", ""), query.get("sig", "")):
        raise Forbidden("the picture URL is invalid or has expired")
    if not path.is_file():
        raise NotFound("no such picture")
    content_type = CONTENT_TYPES[path.suffix.lstrip(".")]
    return web.FileResponse(
        path, headers={"Content-Type": content_type, "Cache-Control": "private, max-age=300"}
    )
