"""Rate limits and daily quotas per key, and the budget of failed key attempts per client address:
exactly N calls, then 429 with Retry-After."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import time_machine
from django.test import Client

from keys.models import RejectedCalls, UsageRecord
from keys.usage import usage_flush
from tests.keys.conftest import bearer, error_of

pytestmark = pytest.mark.django_db

# Frozen clocks make the rate-limit window (and so Retry-After) exact.
NOON = dt.datetime(2025, 6, 10, 12, 0, 0, tzinfo=dt.UTC)


def _exactly_n_then_429(client, n: int, url: str = "/api/v1/datasets/") -> dict:
    for attempt in range(n):
        response = client.get(url)
        assert response.status_code == 200, (attempt, response.content)
    return client.get(url)


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_rate_limit_gives_exactly_n_successes_then_429(orders, issue, backend, request):
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    with time_machine.travel(NOON, tick=False):
        client = bearer(issue(all_datasets=True, rate="5/m"))
        response = _exactly_n_then_429(client, 5)
        message = error_of(response, 429, "rate_limited")
        assert "5/m" in message
        retry_after = int(response["Retry-After"])
        assert 1 <= retry_after <= 60
        # The window ends exactly Retry-After seconds from now: then calls succeed again.
        with time_machine.travel(NOON + dt.timedelta(seconds=retry_after - 1), tick=False):
            error_of(client.get("/api/v1/datasets/"), 429, "rate_limited")
        with time_machine.travel(NOON + dt.timedelta(seconds=retry_after), tick=False):
            assert client.get("/api/v1/datasets/").status_code == 200


def test_rate_limit_is_per_key_not_per_address(orders, issue):
    with time_machine.travel(NOON, tick=False):
        first = bearer(issue(all_datasets=True, rate="2/m"))
        second = bearer(issue(all_datasets=True, rate="2/m"))
        error_of(_exactly_n_then_429(first, 2), 429, "rate_limited")
        # Same client address, other key: its own budget.
        assert second.get("/api/v1/datasets/").status_code == 200


def test_default_rate_applies_to_a_key_without_its_own(orders, issue, settings):
    settings.GATEWAY_DEFAULT_RATE = "3/h"
    with time_machine.travel(NOON, tick=False):
        client = bearer(issue(all_datasets=True))
        response = _exactly_n_then_429(client, 3)
    assert "3/h" in error_of(response, 429, "rate_limited")


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/datasets/orders/",
        "/api/v1/datasets/orders/rows/",
        "/api/v1/datasets/orders/rows/1/",
        "/api/v1/datasets/orders/aggregate/",
    ],
)
def test_every_dataset_call_spends_the_budget(orders, issue, url):
    with time_machine.travel(NOON, tick=False):
        client = bearer(issue(all_datasets=True, rate="2/m"))
        error_of(_exactly_n_then_429(client, 2, url), 429, "rate_limited")


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_quota_is_spent_then_resets_the_next_utc_day(orders, issue, backend, request):
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    evening = dt.datetime(2025, 6, 10, 23, 0, 0, tzinfo=dt.UTC)
    with time_machine.travel(evening, tick=False):
        client = bearer(issue(all_datasets=True, rate="1000/m", quota_per_day=3))
        response = _exactly_n_then_429(client, 3)
        assert "3 requests" in error_of(response, 429, "quota_exceeded")
        assert response["Retry-After"] == "3600"
    with time_machine.travel(evening + dt.timedelta(minutes=59, seconds=59), tick=False):
        error_of(client.get("/api/v1/datasets/"), 429, "quota_exceeded")
    with time_machine.travel(dt.datetime(2025, 6, 11, 0, 0, 1, tzinfo=dt.UTC), tick=False):
        error_of(_exactly_n_then_429(client, 3), 429, "quota_exceeded")


def test_missing_key_spends_no_budget(orders, issue):
    with time_machine.travel(NOON, tick=False):
        client = bearer(issue(all_datasets=True, rate="2/m"))
        for _ in range(5):
            assert Client().get("/api/v1/datasets/").status_code == 401
        assert client.get("/api/v1/datasets/").status_code == 200


def test_when_redis_is_down_calls_are_served_without_limits(orders, issue, redis_down, caplog):
    # Chosen behaviour (docs/keys.md): fail open on the budget, never on authentication or scope.
    client = bearer(issue(all_datasets=True, rate="1/m", quota_per_day=1))
    with caplog.at_level(logging.WARNING, logger="gateway"):
        for _ in range(3):
            assert client.get("/api/v1/datasets/orders/rows/").status_code == 200
    assert "rate limits and quotas are not enforced" in caplog.text
    # Authentication and scope still hold, read from the database.
    error_of(bearer("gw_AAAAAAAAAAAA_" + "B" * 40).get("/api/v1/datasets/"), 401, "unauthorized")
    error_of(client.get("/api/v1/datasets/nothere/"), 404, "dataset_not_found")
    # Failed attempts are not limited by address either while the cache is down.
    for _ in range(3):
        error_of(bearer("not-a-key").get("/api/v1/datasets/"), 401, "unauthorized")
    # Usage is kept in the process and written to the database; rejected calls are counted.
    usage_flush()
    assert list(UsageRecord.objects.order_by("time", "id").values_list("status", flat=True)) == [
        200,
        200,
        200,
        404,
    ]
    assert dict(RejectedCalls.objects.values_list("reason", "count")) == {
        "unknown": 1,
        "malformed": 3,
    }


UNKNOWN = "gw_AAAAAAAAAAAA_" + "B" * 40


def _failed(address: str, raw_key: str = UNKNOWN, url: str = "/api/v1/datasets/"):
    return bearer(raw_key).get(url, REMOTE_ADDR=address)


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_failed_keys_from_one_address_get_n_401_then_429(orders, backend, request, settings):
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    settings.GATEWAY_FAILED_AUTH_RATE = "5/m"
    with time_machine.travel(NOON, tick=False):
        for _ in range(5):
            error_of(_failed("203.0.113.7"), 401, "unauthorized")
        response = _failed("203.0.113.7", "not-a-key", "/api/v1/datasets/orders/rows/")
        message = error_of(response, 429, "rate_limited")
        assert "5/m" in message and "valid key" in message
        retry_after = int(response["Retry-After"])
        assert 1 <= retry_after <= 60
        # Another address has its own budget.
        error_of(_failed("198.51.100.9"), 401, "unauthorized")
    with time_machine.travel(NOON + dt.timedelta(seconds=retry_after - 1), tick=False):
        error_of(_failed("203.0.113.7"), 429, "rate_limited")
    with time_machine.travel(NOON + dt.timedelta(seconds=retry_after), tick=False):
        error_of(_failed("203.0.113.7"), 401, "unauthorized")


def test_default_budget_of_failed_keys_is_30_a_minute(orders, settings):
    if hasattr(settings, "GATEWAY_FAILED_AUTH_RATE"):
        del settings.GATEWAY_FAILED_AUTH_RATE
    with time_machine.travel(NOON, tick=False):
        for _ in range(30):
            error_of(_failed("203.0.113.7"), 401, "unauthorized")
        assert "30/m" in error_of(_failed("203.0.113.7"), 429, "rate_limited")


@pytest.mark.parametrize(
    "raw_key, reason",
    [("not-a-key", "malformed"), (UNKNOWN, "unknown"), ("revoked", "revoked")],
)
def test_every_kind_of_rejected_key_spends_the_address_budget(
    orders, issue, settings, raw_key, reason
):
    from keys.models import ApiKey
    from keys.services import api_key_revoke

    if raw_key == "revoked":
        raw_key = issue(all_datasets=True)
        api_key_revoke(key_id=ApiKey.objects.get().key_id)
    settings.GATEWAY_FAILED_AUTH_RATE = "2/m"
    with time_machine.travel(NOON, tick=False):
        for _ in range(2):
            error_of(_failed("203.0.113.7", raw_key), 401, "unauthorized")
        error_of(_failed("203.0.113.7", raw_key), 429, "rate_limited")
    usage_flush()
    # Refused for the address, still counted under the key's reason, never recorded.
    assert dict(RejectedCalls.objects.values_list("reason", "count")) == {reason: 3}
    assert UsageRecord.objects.count() == 0


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_valid_keys_are_never_limited_by_address(orders, issue, backend, request, settings):
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    settings.GATEWAY_FAILED_AUTH_RATE = "3/m"
    address = "203.0.113.7"
    with time_machine.travel(NOON, tick=False):
        valid = bearer(issue(all_datasets=True, rate="1000/m"))
        for _ in range(3):
            error_of(_failed(address), 401, "unauthorized")
        error_of(_failed(address), 429, "rate_limited")
        # The address has spent its failed budget: valid keys from it are still served, well
        # past that budget, and do not give the address any budget back.
        for _ in range(20):
            assert valid.get("/api/v1/datasets/", REMOTE_ADDR=address).status_code == 200
        error_of(_failed(address), 429, "rate_limited")
        # Nor do valid calls spend a fresh address's failed budget.
        for _ in range(20):
            assert valid.get("/api/v1/datasets/", REMOTE_ADDR="198.51.100.9").status_code == 200
        error_of(_failed("198.51.100.9"), 401, "unauthorized")


def test_calls_without_any_key_are_not_limited_by_address(orders, settings):
    settings.GATEWAY_FAILED_AUTH_RATE = "2/m"
    with time_machine.travel(NOON, tick=False):
        for _ in range(5):
            error_of(
                Client().get("/api/v1/datasets/", REMOTE_ADDR="203.0.113.7"), 401, "unauthorized"
            )
        # Nor do they spend the budget of the address's failed keys.
        error_of(_failed("203.0.113.7"), 401, "unauthorized")


def test_ipv6_clients_share_the_budget_of_their_64(orders, settings):
    settings.GATEWAY_FAILED_AUTH_RATE = "2/m"
    with time_machine.travel(NOON, tick=False):
        error_of(_failed("2001:db8:1:2::1"), 401, "unauthorized")
        error_of(_failed("2001:db8:1:2::ffff"), 401, "unauthorized")
        error_of(_failed("2001:db8:1:2:abcd::9"), 429, "rate_limited")
        error_of(_failed("2001:db8:1:3::1"), 401, "unauthorized")


def test_private_schema_spends_the_same_failed_budget(orders, issue, settings):
    settings.GATEWAY_SCHEMA_PUBLIC = False
    settings.GATEWAY_FAILED_AUTH_RATE = "2/m"
    with time_machine.travel(NOON, tick=False):
        error_of(_failed("203.0.113.7", url="/openapi.json"), 401, "unauthorized")
        error_of(_failed("203.0.113.7"), 401, "unauthorized")
        error_of(_failed("203.0.113.7", url="/openapi.json"), 429, "rate_limited")
        valid = bearer(issue(all_datasets=True))
        assert valid.get("/openapi.json", REMOTE_ADDR="203.0.113.7").status_code == 200
