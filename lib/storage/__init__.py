"""Object storage for uploads: a local directory (signed URLs) or S3 (presigned URLs)."""

from lib.storage.base import ObjectNotFound, Storage, detect_image, new_key, read_capped
from lib.storage.local import LocalStorage
from lib.storage.s3 import S3Storage

__all__ = [
    "LocalStorage",
    "ObjectNotFound",
    "S3Storage",
    "Storage",
    "detect_image",
    "new_key",
    "read_capped",
]
