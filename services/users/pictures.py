"""Profile pictures: the upload (PUT /v1/users/{id|me}/picture) and, for local storage, the
signed download route (GET /v1/pictures/{key}). What is stored is never the uploaded
file itself but the picture decoded and encoded again (lib/storage/images.py: no metadata,
nothing after the image data, pixels bounded), in a few worker threads. Storage I/O never
runs while a pooled connection is held: the object is stored first, the row changed in a
short transaction, and the old object deleted after the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

from aiohttp import web
from pydantic import BaseModel, Field

from lib.errors import Forbidden, NotFound
from lib.http.access import EVERY_ROLE, SELF
from lib.http.guards import path_text
from lib.http.keys import DB
from lib.http.listing import parse_query
from lib.http.multipart import read_form_file
from lib.http.openapi import operation
from lib.http.openapi_io import Form
from lib.keyring import KID_PATTERN
from lib.logging import get_logger
from lib.resilience.bulkhead import Bulkhead
from lib.storage import LocalStorage, ObjectNotFound, S3Storage, Storage, new_key
from lib.storage.base import CONTENT_TYPES
from lib.storage.images import MAX_PIXELS, reencode
from services.users.access import editable, missing
from services.users.db import profiles as q
from services.users.settings import UsersSettings

log = get_logger("users.pictures")
routes = web.RouteTableDef()
TAGS = ["users"]
STORAGE: web.AppKey[Storage] = web.AppKey("storage")
PICTURE_WORKERS: web.AppKey[Bulkhead] = web.AppKey("picture_workers", Bulkhead)
MAX_PICTURE = 5 * 1024 * 1024
MULTIPART_OVERHEAD = 16 * 1024  # boundaries and part headers around the image
PICTURE_FORM = Form(
    "image", tuple(CONTENT_TYPES.values()), MAX_PICTURE, "JPEG or PNG (by content)."
)
# a served picture is only ever an image: never a page, never a script, never a download
SERVED_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, max-age=300",
}


def storage_ctx(settings: UsersSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context that opens the configured storage (S3 when S3_BUCKET is set)
    and the threads that re-encode uploaded pictures."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            workers = Bulkhead(
                "pictures", workers=settings.picture_workers, queue=settings.picture_queue
            )
            stack.callback(workers.close)
            app[PICTURE_WORKERS] = workers
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
                    signing_key=settings.storage_keyring(),
                    ttl=settings.storage_url_ttl,
                )
            yield

    return ctx


async def picture_url(app: web.Application, key: str | None) -> str | None:
    """The signed, expiring URL of a picture (None without one)."""
    return None if key is None else await app[STORAGE].url(key)


async def picture_urls(app: web.Application, keys: list[str | None]) -> list[str | None]:
    """picture_url of each key, in order: the storage looked up once, and a user without a
    picture costs no await (a list page: 50 keys, most of them None; ADR 0013)."""
    storage = app[STORAGE]
    return [None if key is None else await storage.url(key) for key in keys]


async def delete_quietly(storage: Storage, key: str | None) -> None:
    """Delete an object the database no longer names; a failure leaves an orphan, logged."""
    if key is None:
        return
    try:
        await storage.delete(key)
    except Exception as exc:  # the change is committed: never fail the request for this
        log.warning("picture_delete_failed", key=key, error=type(exc).__name__)


class SignedQuery(BaseModel):
    """The query string of a signed picture URL (LocalStorage.url)."""

    expires: str = Field(description="When the URL expires (Unix seconds), as signed.")
    sig: str = Field(description="The signature of the key and `expires`.")
    kid: str | None = Field(
        None,
        pattern=KID_PATTERN,
        description="The id of the signing key (ADR 0036); absent on URLs signed before "
        "keyrings. A key no longer in the ring: 403.",
    )


@routes.put(r"/v1/users/{id}/picture")
@operation(
    "Upload a profile picture",
    tags=TAGS,
    status=204,
    roles=EVERY_ROLE,
    owner=SELF,
    any_owner=("ADMIN",),
    verified=True,
    form=PICTURE_FORM,
    me=True,
    errors=(400, 403, 404, 413, 415, 503),
    description=(
        "multipart/form-data, field `image`: JPEG or PNG by content (magic bytes, not the "
        f"header), at most 5 MiB and {MAX_PIXELS} pixels (413), decodable (400). What is "
        "stored is the picture decoded and encoded again in its format: upright, sRGB, "
        "without metadata (EXIF, GPS, comments) or anything after the image data. The "
        "previous picture is deleted. `{id}` may be `me`. 503 when too many uploads are "
        "being decoded at once."
    ),
)
async def put_picture(request: web.Request) -> web.Response:
    principal, user_id = editable(request)
    # the `image` part, never more than MAX_PICTURE + 1 bytes; every other edge of the
    # body is a 4xx (lib.http.multipart)
    data = await read_form_file(request, PICTURE_FORM, overhead=MULTIPART_OVERHEAD)
    picture = await request.app[PICTURE_WORKERS].run(reencode, data)
    del data  # the upload as sent is never stored, and need not stay in memory
    storage = request.app[STORAGE]
    key = new_key(picture.content_type)
    await storage.put(key, picture.data, picture.content_type)
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
    query=SignedQuery,
    produces=tuple(CONTENT_TYPES.values()),
    errors=(403, 404),
    description=(
        "The signed URL of `picture_url`: 403 when tampered with, expired, or signed by a key "
        "retired since (a rotation keeps the previous key until its URLs expire). Served inline "
        "with a Content-Security-Policy that allows nothing (`default-src 'none'; sandbox`)."
    ),
)
async def get_picture(request: web.Request) -> web.StreamResponse:
    key = path_text(request, "key")
    signed = parse_query(request, SignedQuery)  # a malformed URL is 400 before any lookup
    storage = request.app[STORAGE]
    if not isinstance(storage, LocalStorage):
        raise NotFound("pictures are served by the object store")
    try:
        path = storage.path(key)
    except ObjectNotFound:
        raise NotFound("no such picture") from None
    if not storage.check(key, signed.expires, signed.sig, signed.kid):
        raise Forbidden("the picture URL is invalid or has expired")
    if not path.is_file():
        raise NotFound("no such picture")
    content_type = CONTENT_TYPES[path.suffix.lstrip(".")]
    headers = {
        **SERVED_HEADERS,
        "Content-Type": content_type,
        "Content-Disposition": f'inline; filename="{key}"',  # a key is [A-Za-z0-9_-.] only
    }
    return web.FileResponse(path, headers=headers)
