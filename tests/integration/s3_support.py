"""moto's S3 for the storage tests: a bucket of a test's own on the module's server (the
`moto_url` fixture of tests/integration/conftest.py), and what a bucket holds, read directly."""

from __future__ import annotations

import uuid
from typing import Any

from aiobotocore.session import get_session

from lib.storage import S3Storage


async def new_bucket(moto_url: str, region: str = "us-east-1") -> str:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client(
        "s3", region_name=region, endpoint_url=moto_url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    ) as s3:  # fmt: skip
        create: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        await s3.create_bucket(**create)
    return bucket


async def objects(store: S3Storage) -> dict[str, bytes]:
    """Every object in the store's bucket, by key."""
    listed = await store.client.list_objects_v2(Bucket=store.bucket)
    found = {}
    for item in listed.get("Contents", []):
        got = await store.client.get_object(Bucket=store.bucket, Key=item["Key"])
        async with got["Body"] as body:
            found[item["Key"]] = await body.read()
    return found
