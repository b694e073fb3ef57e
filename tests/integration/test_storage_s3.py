"""lib/storage/s3 against moto's S3 server on a free loopback port (no database): the
client S3Storage.open makes (region, endpoint, credentials, timeouts, retries, closed with
its stack), what put stores (body, type, inline disposition), delete, the presigned URL
(its lifetime, fetched for real) and keys refused before any call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from botocore.exceptions import HTTPClientError

from lib.storage import ObjectNotFound, S3Storage
from tests.integration.s3_support import new_bucket, objects
from tests.pictures_support import signing_credentials

KEY = "A" * 32 + ".png"
OTHER = "B" * 32 + ".jpg"
REGION = "eu-west-3"
BAD_KEYS = ["../x.png", "a.exe", "short.png", "", KEY + "/x"]


@pytest.fixture
async def store(moto_url: str) -> AsyncIterator[S3Storage]:
    """A store in eu-west-3 (presigned URLs are SigV4 there; us-east-1's are SigV2)."""
    bucket = await new_bucket(moto_url, REGION)
    async with AsyncExitStack() as stack:
        yield await S3Storage.open(
            stack, bucket=bucket, ttl=120, endpoint_url=moto_url, region=REGION,
            access_key_id="testing", secret_access_key="testing",
        )  # fmt: skip


async def test_delete_removes_one_object_and_a_missing_one_is_no_error(store: S3Storage) -> None:
    await store.put(KEY, b"1", "image/png")
    await store.put(OTHER, b"2", "image/jpeg")
    await store.delete(KEY)
    assert await objects(store) == {OTHER: b"2"}
    await store.delete(KEY)
    assert await objects(store) == {OTHER: b"2"}


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_a_malformed_key_is_refused_before_any_call(store: S3Storage, key: str) -> None:
    await store.put(KEY, b"kept", "image/png")
    with pytest.raises(ObjectNotFound) as refused:
        await store.put(key, b"x", "image/png")
    assert refused.value.args == (key,)
    with pytest.raises(ObjectNotFound):
        await store.delete(key)
    with pytest.raises(ObjectNotFound):
        await store.url(key)
    assert await objects(store) == {KEY: b"kept"}


async def test_the_presigned_url_reads_the_object_for_its_ttl(
    store: S3Storage, moto_url: str
) -> None:
    await store.put(KEY, b"the picture", "image/png")
    assert await objects(store) == {KEY: b"the picture"}  # that object alone, nothing else
    url = await store.url(KEY)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == moto_url
    assert parts.path == f"/{store.bucket}/{KEY}"
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == ["120"]
    assert query["X-Amz-Credential"][0].startswith("testing/")
    assert query["X-Amz-Credential"][0].endswith(f"/{REGION}/s3/aws4_request")
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        assert await resp.read() == b"the picture"
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["Content-Disposition"] == f'inline; filename="{KEY}"'


async def test_open_makes_the_client_of_its_arguments(moto_url: str) -> None:
    """Region, endpoint and keys as given; the timeouts and 2 attempts pinned; the client
    closes with the stack."""
    bucket = await new_bucket(moto_url, "eu-central-1")
    async with AsyncExitStack() as stack:
        store = await S3Storage.open(
            stack, bucket=bucket, ttl=30, endpoint_url=moto_url, region="eu-central-1",
            access_key_id="AKIDTEST", secret_access_key="s3cr3t", io_timeout=2.5,
        )  # fmt: skip
        assert (store.bucket, store.ttl) == (bucket, 30)
        config = store.client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (2.5, 2.5)
        assert config.retries["total_max_attempts"] == 3  # botocore counts the first too
        assert store.client.meta.region_name == "eu-central-1"
        assert store.client.meta.endpoint_url == moto_url
        credentials = await signing_credentials(store.client)
        assert (credentials.access_key, credentials.secret_key) == ("AKIDTEST", "s3cr3t")
        await store.put(KEY, b"x", "image/png")
        query = parse_qs(urlsplit(await store.url(KEY)).query)
        assert query["X-Amz-Credential"][0].startswith("AKIDTEST/")
        assert query["X-Amz-Credential"][0].endswith("/eu-central-1/s3/aws4_request")
        assert query["X-Amz-Expires"] == ["30"]
        client = store.client
    with pytest.raises(HTTPClientError):  # closed with the stack: its session is gone
        await client.head_object(Bucket=bucket, Key=KEY)


async def test_open_defaults(moto_url: str) -> None:
    """Without arguments: us-east-1, AWS's own endpoint, a 10 s timeout; empty strings (an
    unset setting) count as absent."""
    async with AsyncExitStack() as stack:
        store = await S3Storage.open(
            stack, bucket="b", ttl=1, endpoint_url="", access_key_id="", secret_access_key=""
        )
        meta = store.client.meta
        assert meta.region_name == "us-east-1"
        assert meta.endpoint_url == "https://s3.amazonaws.com"
        assert (meta.config.connect_timeout, meta.config.read_timeout) == (10.0, 10.0)
        assert meta.config.retries["total_max_attempts"] == 3
        credentials = await signing_credentials(store.client)  # none, or the machine's
        assert credentials is None or credentials.access_key != ""
