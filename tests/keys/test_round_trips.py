"""With Redis, a call with a key talks to the shared cache twice: authentication reads the
generations (is this process's key table current?), then the throttle spends the budget (rate limit
and quota, django-ratelimit's counters) and pushes waiting usage in one script. Only a caller that
authenticated spends: a wrong secret, a revoked key or a call that spends nothing costs nothing."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
import redis
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test import RequestFactory
from django_ratelimit.core import _get_window, get_usage

from gatewaysite import generations
from keys import usage
from keys.models import ApiKey, UsageRecord
from keys.ratelimit import GROUP, quota_used
from keys.services import api_key_issue, api_key_revoke
from tests.keys.conftest import bearer, error_of, make_dataset

# The key table is kept per process only outside a transaction, as when serving: these tests
# commit, so that the round trip meets a warm key table as it does in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_cache")]

NOON = dt.datetime(2025, 6, 10, 12, 0, 0, tzinfo=dt.UTC)
ROW = "/api/v1/datasets/orders/rows/1/"
REST_CALLS = [
    "/api/v1/datasets/",
    "/api/v1/datasets/orders/",
    "/api/v1/datasets/orders/rows/?region=EU",
    ROW,
    "/api/v1/datasets/orders/aggregate/?group_by=region&metrics=sum:revenue",
]


@pytest.fixture
def orders():
    return make_dataset("orders")


@pytest.fixture
def round_trips(monkeypatch):
    """Every round trip to Redis from now on: a command sent alone, or a pipeline."""
    sent: list[str] = []
    command, pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute

    def execute_command(self, *args, **options):
        sent.append(str(args[0]))
        return command(self, *args, **options)

    def execute(self, *args, **options):
        sent.append("pipeline")
        return pipeline(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", execute_command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    # No batch is due while counting: a batch's move to the database has round trips of its own.
    monkeypatch.setattr(usage, "FLUSH_SECONDS", 3600.0)
    usage.usage_flush()
    return sent


def _mcp_post(client, method: str, params: dict):
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return client.post("/mcp", json.dumps(body), content_type="application/json")


def _mcp(client, name: str, arguments: dict, method: str = "tools/call") -> dict:
    params = {"name": name, "arguments": arguments} if method == "tools/call" else {}
    response = _mcp_post(client, method, params)
    assert response.status_code == 200, response.content
    return response.json()["result"]


def _spent(key_id: str, rate: str) -> int:
    """What django-ratelimit itself reads on the key's counter (same cache key, same window)."""
    usage_now = get_usage(
        RequestFactory().get("/"),
        group=GROUP,
        key=lambda group, request: key_id,
        rate=rate,
        increment=False,
    )
    return usage_now["count"]


def _key_id(raw_key: str) -> str:
    return raw_key.split("_")[1]


@pytest.fixture
def spent_while_refused(monkeypatch):
    """The key's counter read while each refused call is being answered (before it ends)."""
    from access import authentication

    seen: list[int] = []

    def watch(original):
        def failed_key_check(request):
            seen.append(_spent(watched[0], watched[1]))
            return original(request)

        return failed_key_check

    watched: list[str] = []
    monkeypatch.setattr(authentication, "failed_key_check", watch(authentication.failed_key_check))

    def start(key_id: str, rate: str) -> list[int]:
        watched[:] = [key_id, rate]
        return seen

    return start


@pytest.mark.parametrize("url", REST_CALLS)
def test_an_authenticated_rest_call_is_two_round_trips(orders, round_trips, url):
    client = bearer(api_key_issue(name="k", all_datasets=True, quota_per_day=1000).raw_key)
    client.get(url)  # the first call of a process loads the key table
    for _ in range(3):
        round_trips.clear()
        assert client.get(url).status_code == 200
        assert round_trips == ["MGET", "EVALSHA"]


def test_an_mcp_tools_call_is_two_round_trips(orders, round_trips):
    client = bearer(api_key_issue(name="k", all_datasets=True, quota_per_day=1000).raw_key)
    arguments = {"dataset": "orders", "key": "1"}
    _mcp(client, "get_row", arguments)
    for _ in range(3):
        round_trips.clear()
        assert _mcp(client, "get_row", arguments)["isError"] is False
        assert round_trips == ["MGET", "EVALSHA"]


def test_every_call_is_recorded_though_none_pushes_its_own_record(orders, round_trips):
    client = bearer(api_key_issue(name="k", all_datasets=True).raw_key)
    for url in REST_CALLS:
        client.get(url)
    _mcp(client, "get_row", {"dataset": "orders", "key": "1"})
    assert "RPUSH" not in round_trips
    # The last call's record waits in this process; the others are in the shared list.
    assert usage.redis_client().llen(usage.list_name()) == len(REST_CALLS)
    assert usage.usage_flush() == len(REST_CALLS) + 1
    assert UsageRecord.objects.count() == len(REST_CALLS) + 1


def test_the_rate_limit_answers_429_at_the_same_count_and_window(orders):
    raw_key = api_key_issue(name="k", all_datasets=True, rate="5/m").raw_key
    client = bearer(raw_key)
    with time_machine.travel(NOON, tick=False):
        for attempt in range(5):
            assert client.get(ROW).status_code == 200, attempt
        response = client.get(ROW)
        assert "5/m" in error_of(response, 429, "rate_limited")
        # django-ratelimit's own window for this key, and its own counter.
        window = _get_window(_key_id(raw_key), 60)
        assert int(response["Retry-After"]) == window - int(NOON.timestamp()) + 1
        assert _spent(_key_id(raw_key), "5/m") == 6
    retry_after = int(response["Retry-After"])
    with time_machine.travel(NOON + dt.timedelta(seconds=retry_after - 1), tick=False):
        error_of(client.get(ROW), 429, "rate_limited")
    with time_machine.travel(NOON + dt.timedelta(seconds=retry_after), tick=False):
        assert client.get(ROW).status_code == 200


def test_the_quota_answers_429_at_the_same_count_until_midnight(orders):
    raw_key = api_key_issue(name="k", all_datasets=True, rate="1000/m", quota_per_day=3).raw_key
    client = bearer(raw_key)
    evening = dt.datetime(2025, 6, 10, 23, 0, 0, tzinfo=dt.UTC)
    with time_machine.travel(evening, tick=False):
        for _ in range(3):
            assert client.get(ROW).status_code == 200
        response = client.get(ROW)
        assert "3 requests" in error_of(response, 429, "quota_exceeded")
        assert response["Retry-After"] == "3600"
        assert quota_used(_key_id(raw_key)) == 4
    with time_machine.travel(dt.datetime(2025, 6, 11, 0, 0, 1, tzinfo=dt.UTC), tick=False):
        assert client.get(ROW).status_code == 200


def test_a_call_refused_by_the_rate_does_not_spend_the_quota(orders):
    raw_key = api_key_issue(name="k", all_datasets=True, rate="2/m", quota_per_day=100).raw_key
    client = bearer(raw_key)
    with time_machine.travel(NOON, tick=False):
        for _ in range(2):
            assert client.get(ROW).status_code == 200
        for _ in range(3):
            error_of(client.get(ROW), 429, "rate_limited")
        assert quota_used(_key_id(raw_key)) == 2


def test_a_wrong_secret_for_a_real_key_id_spends_none_of_its_budget(
    orders, settings, spent_while_refused
):
    settings.GATEWAY_FAILED_AUTH_RATE = "1000/m"
    raw_key = api_key_issue(name="k", all_datasets=True, rate="3/m", quota_per_day=3).raw_key
    key_id = _key_id(raw_key)
    client = bearer(raw_key)
    stranger = bearer(f"gw_{key_id}_{'x' * 40}")
    seen = spent_while_refused(key_id, "3/m")
    with time_machine.travel(NOON, tick=False):
        assert client.get(ROW).status_code == 200  # the key table is now warm in this process
        for _ in range(20):
            error_of(stranger.get(ROW), 401, "unauthorized")
            tool_call = {"name": "get_row", "arguments": {"dataset": "orders", "key": "1"}}
            error_of(_mcp_post(stranger, "tools/call", tool_call), 401, "unauthorized")
        # Not even for the time of a refused call: authentication spends nothing.
        assert seen == [1] * 40
        assert _spent(key_id, "3/m") == 1
        assert quota_used(key_id) == 1
        assert client.get(ROW).status_code == 200
        assert client.get(ROW).status_code == 200
        error_of(client.get(ROW), 429, "rate_limited")


def _changed_by_another_process(key_id: str, column: str, value) -> None:
    """A write to the key table by another process: the database and the shared generation move,
    this process's copy of the table does not (no signal reaches it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ApiKey._meta.db_table} SET {column} = %s WHERE key_id = %s", [value, key_id]
        )
    # The next read of the generation finds none and makes a new one.
    usage.redis_client().delete(cache.make_key(generations.cache_key("keys")))


@pytest.mark.parametrize("change", ["revoked", "rotated"])
def test_a_key_changed_elsewhere_is_refused_at_once_and_spends_nothing(
    orders, settings, spent_while_refused, change
):
    settings.GATEWAY_FAILED_AUTH_RATE = "1000/m"
    raw_key = api_key_issue(name="k", all_datasets=True, rate="3/m").raw_key
    key_id = _key_id(raw_key)
    client = bearer(raw_key)
    seen = spent_while_refused(key_id, "3/m")
    with time_machine.travel(NOON, tick=False):
        assert client.get(ROW).status_code == 200
        if change == "revoked":
            _changed_by_another_process(key_id, "revoked", True)
        else:
            _changed_by_another_process(key_id, "secret_hash", "0" * 64)
        # This process still holds the old table, where the secret matches: authentication reads
        # the generation first, so the key is checked against the new table and spends nothing.
        for _ in range(5):
            error_of(client.get(ROW), 401, "unauthorized")
        assert seen == [1] * 5
        assert _spent(key_id, "3/m") == 1


def test_calls_that_reach_no_dataset_spend_nothing(orders):
    raw_key = api_key_issue(name="k", all_datasets=True, rate="2/m").raw_key
    client = bearer(raw_key)
    with time_machine.travel(NOON, tick=False):
        for _ in range(5):
            _mcp(client, "", {}, method="tools/list")
            _mcp(client, "", {}, method="ping")
        assert _spent(_key_id(raw_key), "2/m") == 0
        for _ in range(2):
            assert _mcp(client, "get_row", {"dataset": "orders", "key": "1"})["isError"] is False
        limited = _mcp(client, "get_row", {"dataset": "orders", "key": "1"})
    assert limited["structuredContent"]["error"]["code"] == "rate_limited"


def test_when_redis_stops_answering_calls_are_served_without_limits(
    orders, settings, caplog, monkeypatch
):
    from gatewaysite import cache_outage

    monkeypatch.setattr(cache_outage, "_last", {})
    monkeypatch.setattr(usage, "FLUSH_SECONDS", 3600.0)
    usage.usage_flush()
    raw_key = api_key_issue(name="k", all_datasets=True, rate="1/m").raw_key
    revoked = api_key_issue(name="gone", all_datasets=True).raw_key
    api_key_revoke(key_id=_key_id(revoked))
    client = bearer(raw_key)
    assert client.get(ROW).status_code == 200  # warm: the key table is held in this process
    shared = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
    try:
        with caplog.at_level(logging.WARNING, logger="gateway"):
            for _ in range(3):
                assert client.get(ROW).status_code == 200
                tool = _mcp(client, "get_row", {"dataset": "orders", "key": "1"})
                assert tool["isError"] is False
        assert "rate limits and quotas are not enforced" in caplog.text
        # Access control still holds: the key table is read from the database.
        error_of(bearer(revoked).get(ROW), 401, "unauthorized")
        # Usage stays in the process and is written from there: the warm call and six more.
        assert usage.usage_flush() == 7
    finally:
        settings.CACHES = shared
