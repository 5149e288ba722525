"""Rate limits and daily quotas per key: exactly N calls, then 429 with Retry-After."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import time_machine

from keys.models import UsageRecord
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
        from django.test import Client

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
    # Usage is kept in the process and written to the database.
    usage_flush()
    assert list(UsageRecord.objects.order_by("time", "id").values_list("status", flat=True)) == [
        200,
        200,
        200,
        401,
        404,
    ]
