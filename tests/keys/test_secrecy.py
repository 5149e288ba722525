"""The raw key exists only in the answer to its creation: in no table, no log line, no cache."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from keys.models import ApiKey
from keys.services import api_key_issue, api_key_revoke, api_key_rotate, key_hash
from keys.usage import usage_flush
from tests.keys.conftest import bearer

pytestmark = pytest.mark.django_db


def _every_value() -> list[str]:
    """Every value of every column of every table in Django's database, as text."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            values += [str(value) for row in cursor.fetchall() for value in row]
    return values


def _exercise(orders) -> list[str]:
    """Issue keys every way, use them well and badly, rotate and revoke: return every raw key."""
    raws = [api_key_issue(name="service", all_datasets=True).raw_key]
    out = StringIO()
    call_command("issue_key", "command", "--datasets", "orders", stdout=out)
    raws.append(out.getvalue().strip().splitlines()[-1])
    for raw in raws:
        client = bearer(raw)
        client.get("/api/v1/datasets/")
        client.get("/api/v1/datasets/orders/rows/?region=EU")
        client.get("/api/v1/datasets/orders/rows/999/")
        Client(headers={"X-API-Key": raw + "x"}).get("/api/v1/datasets/")
    first = ApiKey.objects.get(name="service")
    rotated = api_key_rotate(key_id=first.key_id).raw_key
    bearer(raws[0]).get("/api/v1/datasets/")  # rotated away
    raws.append(rotated)
    api_key_revoke(key_id=first.key_id)
    bearer(rotated).get("/api/v1/datasets/")  # revoked
    usage_flush()
    return raws


def _secrets(raws: list[str]) -> list[str]:
    # The whole key and its secret part alone.
    return raws + [raw.split("_", 2)[2] for raw in raws]


def test_raw_key_is_in_no_table(orders):
    raws = _exercise(orders)
    values = _every_value()
    for secret in _secrets(raws):
        assert not [value for value in values if secret in value]
    # What is stored is the keyed hash, nothing else.
    for key in ApiKey.objects.all():
        assert len(key.secret_hash) == 64
    assert key_hash(raws[-1]) == ApiKey.objects.get(name="service").secret_hash


def test_keys_tables_hold_hashes_not_keys(orders):
    raws = _exercise(orders)
    tables = [name for name in connection.introspection.table_names() if name.startswith("keys_")]
    assert sorted(tables) == [
        "keys_apikey",
        "keys_apikey_datasets",
        "keys_keyrowfilter",
        "keys_rejectedcalls",
        "keys_usagerecord",
    ]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    assert not any(secret in str(value) for secret in _secrets(raws)), table


def test_raw_key_is_in_no_log_line(orders, caplog):
    with caplog.at_level(logging.DEBUG):
        raws = _exercise(orders)
    assert caplog.records  # the 4xx answers were logged, without the key
    for secret in _secrets(raws):
        assert secret not in caplog.text


def test_raw_key_is_in_no_cache_entry(orders, redis_cache):
    from django.conf import settings
    from django_redis import get_redis_connection

    raws = _exercise(orders)
    client = get_redis_connection("default")
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    stored = []
    for name in client.scan_iter(f"{prefix}*"):
        kind = client.type(name)
        if kind == b"list":
            stored += client.lrange(name, 0, -1)
        elif kind == b"string":
            stored.append(client.get(name))
        stored.append(name)
    assert stored
    for secret in _secrets(raws):
        assert not [value for value in stored if secret.encode() in value]


def test_issued_key_repr_does_not_reveal_the_key(orders):
    issued = api_key_issue(name="repr", all_datasets=True)
    assert issued.raw_key not in repr(issued)
