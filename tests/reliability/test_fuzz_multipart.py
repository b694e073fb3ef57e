"""Generated multipart bodies against the running users service's picture upload (issue
54): part names of any bytes (control characters, not UTF-8, empty), extra header lines,
any number of parts, bodies cut anywhere, with and without their closing boundary. Every
answer is a 4xx problem (an ADMIN uploading for nobody: 404 once a real picture was
read), never a 5xx, and nothing is left in the store."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lib.auth.principal import Role
from tests.pictures_support import png
from tests.reliability import figures
from tests.reliability.budget import FULL
from tests.reliability.stack import bearer
from tools.local.service_process import PROCESS_MARGIN, ServiceProcess

BOUNDARY = b"fuzzboundary"
CASES = 400 if FULL else 60
PNG = png()
NAMES = st.one_of(
    st.just(b"image"),
    st.sampled_from([b"\xd7%\x0f", b"\xff\xfe", b"", b"ima\x00ge", b"image\r\n"]),
    st.binary(max_size=10),
)
HEADERS = st.one_of(st.just(b""), st.binary(max_size=24).map(lambda b: b"X-Any: " + b + b"\r\n"))
DATA = st.one_of(st.just(PNG), st.binary(max_size=48))


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    body = b""
    for _ in range(draw(st.integers(0, 3))):
        name = draw(NAMES)
        body += (
            b"--" + BOUNDARY + b"\r\n" + draw(HEADERS)
            + b'Content-Disposition: form-data; name="' + name + b'"; filename="p"\r\n'
            + b"Content-Type: image/png\r\n\r\n" + draw(DATA) + b"\r\n"
        )  # fmt: skip
    if draw(st.booleans()):
        body += b"--" + BOUNDARY + b"--\r\n"
    cut = draw(st.integers(0, len(body)))
    return body[:cut] if draw(st.booleans()) else body


def upload(url: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=PROCESS_MARGIN) as resp:
            return resp.status, resp.headers.get_content_type(), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


def fuzz(service: ServiceProcess) -> int:
    headers = {
        **bearer(Role.ADMIN),
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY.decode()}",
    }
    sent = 0

    @given(body=bodies())
    @example(
        body=b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="\xd7%\x0f"\r\n\r\nx'
    )
    @settings(
        max_examples=CASES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(body: bytes) -> None:
        nonlocal sent
        sent += 1
        url = f"{service.url}/v1/users/{uuid.uuid4()}/picture"
        status, ctype, raw = upload(url, headers, body)
        assert status in (400, 404, 413, 415), (status, body, raw)
        assert ctype == "application/problem+json", (status, body, raw)
        assert json.loads(raw)["detail"], raw

    check()
    return sent


async def test_fuzz_users_picture_multipart(users: ServiceProcess, logs: Path) -> None:
    store = logs / "storage"
    before = sorted(store.rglob("*")) if store.exists() else []
    sent = await asyncio.to_thread(fuzz, users)
    assert sent >= CASES
    after = sorted(store.rglob("*")) if store.exists() else []
    assert [p for p in after if p.is_file()] == [p for p in before if p.is_file()]
    figures.add("fuzz cases run: users picture multipart", sent)
    print(f"multipart fuzz of PUT /v1/users/{{id}}/picture: {sent} bodies")
