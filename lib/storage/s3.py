"""S3-compatible storage (aiobotocore), read back through presigned GET URLs.

One client for the process; the bucket stays private."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from lib.storage.base import ObjectNotFound, valid_key


class S3Storage:
    def __init__(self, client: Any, bucket: str, *, ttl: int) -> None:
        self.client = client
        self.bucket = bucket
        self.ttl = ttl

    @classmethod
    async def open(
        cls,
        stack: AsyncExitStack,
        *,
        bucket: str,
        ttl: int,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        io_timeout: float = 10.0,
    ) -> S3Storage:
        """A storage whose client lives as long as `stack` (closed with the app)."""
        config = AioConfig(
            connect_timeout=io_timeout, read_timeout=io_timeout, retries={"max_attempts": 2}
        )
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                region_name=region,
                endpoint_url=endpoint_url or None,
                aws_access_key_id=access_key_id or None,
                aws_secret_access_key=secret_access_key or None,
                config=config,
            )
        )
        return cls(client, bucket, ttl=ttl)

    def _check(self, key: str) -> str:
        if not valid_key(key):
            raise ObjectNotFound(key)
        return key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self.client.put_object(
            Bucket=self.bucket,
            Key=self._check(key),
            Body=data,
            ContentType=content_type,
            # what the presigned GET answers with: shown, never downloaded as a file
            ContentDisposition=f'inline; filename="{key}"',
        )

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self._check(key))

    async def url(self, key: str) -> str:
        url: str = await self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._check(key)},
            ExpiresIn=self.ttl,
        )
        return url
