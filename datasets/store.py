"""The object store that holds every version of every upload, when GATEWAY_STORAGE_URL is set.

With several hosts and no shared disk, a version imported on one host is served by all of them:
the import writes the version's DuckDB file to the store before the version goes live, and every
other host fetches it into its local cache on first use (datasets/version_cache.py).

A version's key names its dataset, its file and the first 16 hex digits of its SHA-256:
`<prefix>/<slug>/v<N>-<stamp>-<checksum>.duckdb`. Two imports that race for the same version
number therefore never overwrite each other's file, and a key never changes meaning.

boto3 talks to the store: it is the reference S3 client, reads the standard AWS_* credentials
(and every other way AWS configures them), works with any S3-compatible endpoint
(GATEWAY_STORAGE_ENDPOINT) and moves large files in parallel parts.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings

CHECKSUM_IN_KEY = 16
_CHUNK = 1024 * 1024


class StoreUnavailable(Exception):
    """The store could not be reached, or refused: the message says why (for logs and admins)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


def store_configured() -> bool:
    """Do versions live in an object store (GATEWAY_STORAGE_URL)?"""
    return settings.GATEWAY_STORAGE is not None


def _location() -> tuple[str, str]:
    """(bucket, key prefix) of the configured store."""
    location = settings.GATEWAY_STORAGE
    if location is None:
        raise StoreUnavailable("GATEWAY_STORAGE_URL is not set: there is no object store.")
    return location


def store_name() -> str:
    """s3://bucket/prefix, for messages to admins and logs (never to API callers)."""
    bucket, prefix = _location()
    return f"s3://{bucket}/{prefix}".rstrip("/")


def version_key(slug: str, file_name: str, checksum: str) -> str:
    """The key of a version file in the store."""
    stem = file_name.removesuffix(".duckdb")
    name = f"{slug}/{stem}-{checksum[:CHECKSUM_IN_KEY]}.duckdb"
    _, prefix = _location()
    return f"{prefix}/{name}" if prefix else name


def file_checksum(path: Path | str) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def _client():
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.GATEWAY_STORAGE_ENDPOINT,
        region_name=settings.AWS_REGION,
        config=Config(
            connect_timeout=3,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def _bucket() -> str:
    return _location()[0]


def _failure(action: str, error: Exception) -> StoreUnavailable:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        reason = error.response.get("Error", {}).get("Code") or str(error)
    else:
        reason = type(error).__name__
    where = settings.GATEWAY_STORAGE_ENDPOINT or "the provider's endpoint"
    return StoreUnavailable(f"The object store {store_name()} at {where} {action}: {reason}.")


def _store_errors():
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, OSError)


def version_put(path: Path | str, key: str, checksum: str) -> None:
    """Write a version file to the store under `key`; StoreUnavailable when it cannot."""
    try:
        _client().upload_file(
            str(path), _bucket(), key, ExtraArgs={"Metadata": {"sha256": checksum}}
        )
    except _store_errors() as error:
        raise _failure(f"did not take {key}", error) from None


def version_get(key: str, target: Path | str) -> None:
    """Read the version file `key` from the store into `target`; StoreUnavailable when it cannot."""
    try:
        _client().download_file(_bucket(), key, str(target))
    except _store_errors() as error:
        raise _failure(f"did not give {key}", error) from None


def stored_objects() -> Iterator[StoredObject]:
    """Every object under the prefix."""
    _, prefix = _location()
    pages = (
        _client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=_bucket(), Prefix=f"{prefix}/" if prefix else "")
    )
    try:
        for page in pages:
            for item in page.get("Contents", ()):
                yield StoredObject(item["Key"], item["Size"], item["LastModified"])
    except _store_errors() as error:
        raise _failure("could not be listed", error) from None


def objects_delete(keys: list[str]) -> None:
    """Remove these objects from the store (1,000 a request, as S3 takes them)."""
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        try:
            _client().delete_objects(Bucket=_bucket(), Delete={"Objects": batch, "Quiet": True})
        except _store_errors() as error:
            raise _failure("refused a deletion", error) from None


def bucket_ensure() -> None:
    """Create the bucket when it does not exist yet (setup and tests)."""
    try:
        _client().head_bucket(Bucket=_bucket())
        return
    except _store_errors():
        pass
    try:
        _client().create_bucket(Bucket=_bucket())
    except _store_errors() as error:
        raise _failure("could not create its bucket", error) from None


def store_forget_client() -> None:
    """Drop the client (settings changed: tests)."""
    _client.cache_clear()
