"""Fixtures shared by every test."""

from __future__ import annotations

import contextlib
import os
import re

import pytest
from django.core.cache import cache

from gatewaysite.generations import process_caches_reset
from tests.services import require


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Each test gets its own data directory, an empty cache, empty process caches and no usage
    record buffered by another test (a later flush would write it into this test's database)."""
    from keys import usage

    _own_redis_database(settings)
    settings.GATEWAY_DATA_DIR = tmp_path / "data"
    settings.GATEWAY_DATA_DIR.mkdir()
    cache.clear()
    process_caches_reset()
    usage.discard_buffer()
    yield
    usage.discard_buffer()
    process_caches_reset()
    with contextlib.suppress(Exception):  # a test may have pointed the cache at a dead server
        cache.clear()


def _own_redis_database(settings) -> None:
    """Parallel workers on Redis each get a database of their own: clearing the cache flushes it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    default = settings.CACHES["default"]
    if worker == "gw0" or "redis" not in default["BACKEND"].lower():
        return
    database = min(15, 10 + int(worker.removeprefix("gw")))
    location = re.sub(r"(/\d+)?$", f"/{database}", default["LOCATION"].rstrip("/"), count=1)
    settings.CACHES = {**settings.CACHES, "default": {**default, "LOCATION": location}}


@pytest.fixture
def postgres():
    require("postgres")


@pytest.fixture
def mysql():
    require("mysql")


@pytest.fixture
def redis():
    require("redis")


@pytest.fixture
def clickhouse():
    require("clickhouse")


@pytest.fixture
def store(settings, monkeypatch):
    """Versions in the real S3 server (SeaweedFS), under a prefix of this test's own."""
    import uuid

    from datasets.store import bucket_ensure, store_forget_client
    from tests.services import S3_BUCKET, S3_ENDPOINT

    require("s3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "gateway")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "gateway-secret")
    settings.GATEWAY_STORAGE = (S3_BUCKET, f"test-{uuid.uuid4().hex[:12]}")
    settings.GATEWAY_STORAGE_ENDPOINT = S3_ENDPOINT
    store_forget_client()
    bucket_ensure()
    yield settings.GATEWAY_STORAGE
    store_forget_client()
