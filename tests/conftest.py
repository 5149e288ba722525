"""Fixtures shared by every test."""

from __future__ import annotations

import contextlib

import pytest
from django.core.cache import cache

from gatewaysite.generations import process_caches_reset
from tests.services import require


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Each test gets its own data directory, an empty cache and empty process caches."""
    settings.GATEWAY_DATA_DIR = tmp_path / "data"
    settings.GATEWAY_DATA_DIR.mkdir()
    cache.clear()
    process_caches_reset()
    yield
    process_caches_reset()
    with contextlib.suppress(Exception):  # a test may have pointed the cache at a dead server
        cache.clear()


@pytest.fixture
def postgres():
    require("postgres")


@pytest.fixture
def mysql():
    require("mysql")


@pytest.fixture
def redis():
    require("redis")
