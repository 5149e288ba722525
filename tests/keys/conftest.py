"""Fixtures of the key tests: two tiny DuckDB datasets and three actors (scoped key, outsider, no key)."""

from __future__ import annotations

import uuid

import duckdb
import pytest
from django.test import Client

from datasets.models import Column, Dataset
from tests.services import REDIS_URL

# order_id, region, product, revenue, team (hidden: never leaves the server)
ORDERS = [
    (1, "EU", "Apple", 10.0, "north"),
    (2, "EU", "Banana", 20.0, "south"),
    (3, "US", "Apple", 30.0, "north"),
    (4, "US", "Cherry", 40.0, "south"),
    (5, "APAC", "Banana", 50.0, "north"),
    (6, "EU", "Cherry", 60.0, "north"),
]
COLUMNS = [
    ("order_id", "integer", "BIGINT", "none"),
    ("region", "string", "VARCHAR", "none"),
    ("product", "string", "VARCHAR", "none"),
    ("revenue", "number", "DOUBLE", "none"),
    ("team", "string", "VARCHAR", "hide"),
]


def make_dataset(slug: str, rows=ORDERS) -> Dataset:
    """A Dataset registered like an upload, its rows in a DuckDB file at dataset.file_path()."""
    dataset = Dataset.objects.create(
        slug=slug,
        title=slug.capitalize(),
        description=f"Orders ({slug}).",
        table="data",
        version=1,
        primary_key="order_id",
        row_count=len(rows),
    )
    dataset.directory.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(dataset.file_path()))
    columns = ", ".join(f"{name} {sql}" for name, _, sql, _ in COLUMNS)
    connection.execute(f"CREATE TABLE data ({columns}, PRIMARY KEY (order_id))")
    connection.executemany("INSERT INTO data VALUES (?, ?, ?, ?, ?)", [list(row) for row in rows])
    connection.close()
    for position, (name, type_, _, pii) in enumerate(COLUMNS):
        Column.objects.create(
            dataset=dataset,
            position=position,
            physical_name=name,
            name=name,
            type=type_,
            searchable=type_ == "string",
            pii=pii,
        )
    return dataset


@pytest.fixture
def orders(db) -> Dataset:
    return make_dataset("orders")


@pytest.fixture
def secrets_ds(db) -> Dataset:
    return make_dataset("secrets")


@pytest.fixture
def issue(db):
    """Issue a key and return the raw key."""
    from keys.services import api_key_issue

    def _issue(**options) -> str:
        options.setdefault("name", "test key")
        return api_key_issue(**options).raw_key

    return _issue


def bearer(raw_key: str) -> Client:
    """A client that sends the key as Authorization: Bearer."""
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


@pytest.fixture
def scoped(orders, secrets_ds, issue) -> Client:
    """A key scoped to `orders` only."""
    return bearer(issue(datasets=["orders"]))


@pytest.fixture
def outsider(orders, secrets_ds, issue) -> Client:
    """A key scoped to `secrets` only."""
    return bearer(issue(datasets=["secrets"]))


@pytest.fixture
def anonymous() -> Client:
    return Client()


@pytest.fixture
def redis_cache(redis, settings):
    """The default cache on the real Redis server, under a prefix no other test shares."""
    original = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"gw-test-{uuid.uuid4().hex}",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
    settings.SILENCED_SYSTEM_CHECKS = []
    yield
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    for name in client.scan_iter(f"{prefix}*"):
        client.delete(name)
    # Put the original cache back before the shared fixture clears "the" cache: clearing Redis
    # would flush a database that other test runs share.
    settings.CACHES = original


@pytest.fixture
def redis_down(settings):
    """The default cache on a Redis address where nothing listens (a real refused connection)."""
    original = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
    yield
    settings.CACHES = original


def error_of(response, status: int, code: str) -> str:
    """The message of an error response, after checking the one error shape."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body == {"error": {"status": status, "code": code, "message": body["error"]["message"]}}
    assert body["error"]["message"]
    return body["error"]["message"]
