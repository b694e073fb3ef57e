"""Every edge of a multipart body to PUT /v1/users/{id}/picture is a 4xx problem naming
the problem, and nothing is stored (lib/http/multipart.py, ADR 0026): part names with
control characters, not UTF-8, empty, missing or repeated; unknown and nested parts; a
body cut before its closing boundary or without boundaries; a part named `image` that is
not an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.users.app import create_app
from tests import pg
from tests.integration.test_users_pictures import BOUNDARY, CTYPE, PNG, multipart, part
from tests.integration.users_support import auth, make_user, users_settings

MALFORMED = "the multipart body is malformed (a part's headers, a boundary, or its end)"


@pytest.fixture
async def client(aiohttp_client: Any, users_dsn: str, tmp_path: Path) -> Any:
    return await aiohttp_client(create_app(users_settings(users_dsn, storage_dir=str(tmp_path))))


def raw_part(disposition: bytes, data: bytes = PNG) -> bytes:
    return (
        f"--{BOUNDARY}\r\n".encode()
        + b"Content-Disposition: form-data; "
        + disposition
        + b"\r\nContent-Type: image/png\r\n\r\n"
        + data
        + b"\r\n"
    )


def nested() -> bytes:
    inner = "innerboundary"
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"\r\n'
            f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n"
            f"--{inner}\r\nContent-Type: image/png\r\n\r\n"
        ).encode()
        + PNG
        + f"\r\n--{inner}--\r\n\r\n".encode()
    )


EDGES: dict[str, tuple[bytes, str | None, int, str]] = {
    # id: (body, content type (None: the usual), status, detail)
    "control characters in the name": (
        multipart(raw_part(b'name="\xd7%\x0f"; filename="p"')),
        None,
        400,
        MALFORMED,
    ),
    "a name that is not UTF-8": (
        multipart(raw_part(b'name="\xff\xfe"; filename="p"')),
        None,
        400,
        "a part's name must be printable UTF-8",
    ),
    "an empty name": (
        multipart(raw_part(b'name=""; filename="p"')),
        None,
        400,
        "every part needs a name (Content-Disposition: form-data; name=...)",
    ),
    "no name": (
        multipart(raw_part(b'filename="p"')),
        None,
        400,
        "every part needs a name (Content-Disposition: form-data; name=...)",
    ),
    "the image twice": (
        multipart(part("image", PNG), part("image", PNG)),
        None,
        400,
        "the `image` part may appear once",
    ),
    "an unknown part before the image": (
        multipart(part("other", b"x"), part("image", PNG)),
        None,
        400,
        "unknown part: the only part accepted is `image`",
    ),
    "an unknown part after the image": (
        multipart(part("image", PNG), part("other", b"x")),
        None,
        400,
        "unknown part: the only part accepted is `image`",
    ),
    "a nested multipart part": (nested(), None, 400, "a part may not be multipart itself"),
    "cut before the closing boundary": (part("image", PNG)[:-40], None, 400, MALFORMED),
    "cut inside the part's headers": (part("image", PNG)[:30], None, 400, MALFORMED),
    "no boundary at all": (b"just some bytes\r\n", None, 400, MALFORMED),
    "an empty body": (b"", None, 400, MALFORMED),
    "a boundary the body does not use": (
        multipart(part("image", PNG)),
        "multipart/form-data; boundary=another",
        400,
        MALFORMED,
    ),
    "no boundary parameter": (multipart(part("image", PNG)), "multipart/form-data", 400, MALFORMED),
    "multipart but not form-data": (
        multipart(part("image", PNG)),
        f"multipart/mixed; boundary={BOUNDARY}",
        415,
        "send multipart/form-data with an `image` part",
    ),
    "an image part that is not an image": (
        multipart(part("image", b"GIF89a not a png")),
        None,
        415,
        "the picture must be a JPEG or PNG image",
    ),
    "an empty image part": (
        multipart(part("image", b"")),
        None,
        415,
        "the picture must be a JPEG or PNG image",
    ),
    "a PNG cut short": (
        multipart(part("image", PNG[: len(PNG) // 2])),
        None,
        400,
        "the picture is not a valid PNG image",
    ),
}


@pytest.mark.parametrize("edge", EDGES, ids=list(EDGES))
async def test_every_multipart_edge_is_a_4xx_and_stores_nothing(
    client: Any, users_dsn: str, tmp_path: Path, edge: str
) -> None:
    body, ctype, status, detail = EDGES[edge]
    user_id = await make_user(users_dsn)
    resp = await client.put(
        "/v1/users/me/picture",
        data=body,
        headers={**auth(user_id), "Content-Type": ctype or CTYPE},
    )
    assert resp.status == status, (edge, await resp.text())
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["detail"] == detail
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 (a test's own directory)
    row = await pg.fetchrow(users_dsn, "SELECT picture_key FROM users WHERE id=$1", user_id)
    assert row["picture_key"] is None
