"""Usage: every API request with a valid key recorded with its real status, buffered, written in
batches, pruned; requests without a valid key counted per day and reason, never recorded."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client

from keys import usage
from keys.models import ApiKey, RejectedCalls, UsageRecord
from keys.selectors import dataset_usage, key_usage
from keys.usage import annotate, usage_flush
from tests.keys.conftest import bearer

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2025, 6, 10, 12, 0, 0, tzinfo=dt.UTC)


def _rejected() -> dict[tuple[str, str], int]:
    usage_flush()
    return {
        (day.isoformat(), reason): count
        for day, reason, count in RejectedCalls.objects.values_list("day", "reason", "count")
    }


def _records() -> list[tuple]:
    usage_flush()
    return list(
        UsageRecord.objects.order_by("time", "id").values_list(
            "key_id", "dataset", "operation", "status", "rows"
        )
    )


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_every_request_with_a_valid_key_is_recorded_with_its_real_status(
    orders, issue, backend, request
):
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    with time_machine.travel(NOON, tick=True):
        raw = issue(datasets=["orders"], rate="4/m")
        key_id = ApiKey.objects.get().key_id
        client = bearer(raw)
        client.get("/api/v1/datasets/")
        client.get("/api/v1/datasets/orders/rows/?limit=2")
        client.get("/api/v1/datasets/orders/rows/1/")
        client.get("/api/v1/datasets/secrets/aggregate/")
        client.get("/api/v1/datasets/orders/aggregate/")  # the 5th call of a 4/m key
        client.get("/api/v1/nowhere/")  # no API view: the key is still checked and named
        Client().get("/api/v1/datasets/orders/")  # no key: counted, not recorded
        Client().get("/api/v1/nowhere/")
        Client().get("/healthz")  # not an API call: not recorded
    assert _records() == [
        (key_id, "", "list_datasets", 200, 1),
        (key_id, "orders", "rows", 200, 2),
        (key_id, "orders", "row", 200, 1),
        (key_id, "secrets", "aggregate", 404, None),
        (key_id, "orders", "aggregate", 429, None),
        (key_id, "", "", 404, None),
    ]
    assert all(record.duration_ms >= 0 for record in UsageRecord.objects.all())
    assert _rejected() == {("2025-06-10", "missing"): 2}


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_a_failed_call_is_recorded_with_the_code_of_its_error(orders, issue, backend, request):
    if backend == "redis":
        request.getfixturevalue("redis_cache")
    client = bearer(issue(datasets=["orders"], rate="3/m"))
    unknown = client.get("/api/v1/datasets/orders/rows/?colour=red").json()["error"]["code"]
    client.get("/api/v1/datasets/secrets/rows/")
    client.get("/api/v1/datasets/orders/rows/")
    client.get("/api/v1/datasets/orders/rows/")  # the 4th call of a 3/m key
    usage_flush()
    assert unknown.startswith("unknown_")
    assert list(UsageRecord.objects.order_by("time", "id").values_list("status", "error_code")) == [
        (400, unknown),
        (404, "dataset_not_found"),
        (200, ""),
        (429, "rate_limited"),
    ]


def test_records_buffered_without_an_error_code_are_still_written(orders):
    usage.record([0.0, "k1", "orders", "rows", 200, 1.5, 3])
    assert usage_flush() == 1
    assert UsageRecord.objects.get().error_code == ""


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_requests_without_a_valid_key_are_counted_per_reason_not_recorded(
    orders, issue, backend, request
):
    from keys.services import api_key_revoke

    if backend == "redis":
        request.getfixturevalue("redis_cache")
    with time_machine.travel(NOON, tick=False):
        revoked = issue(all_datasets=True)
        api_key_revoke(key_id=ApiKey.objects.get().key_id)
        expired = issue(all_datasets=True, expires_at=NOON - dt.timedelta(days=1))
        calls = [
            (Client(), "missing"),
            (bearer("not-a-key"), "malformed"),
            (Client(headers={"Authorization": "Bearer "}), "malformed"),
            (bearer("gw_AAAAAAAAAAAA_" + "B" * 40), "unknown"),
            (bearer(revoked), "revoked"),
            (bearer(expired), "expired"),
        ]
        for client, _ in calls:
            assert client.get("/api/v1/datasets/orders/rows/").status_code == 401
            client.get("/api/v1/elsewhere/")  # no API view: classified all the same
    assert _records() == []
    assert _rejected() == {
        ("2025-06-10", "missing"): 2,
        ("2025-06-10", "malformed"): 4,
        ("2025-06-10", "unknown"): 2,
        ("2025-06-10", "revoked"): 2,
        ("2025-06-10", "expired"): 2,
    }


def test_a_flood_without_a_key_adds_no_row(orders, issue, redis_cache):
    client = Client()
    for _ in range(300):
        client.get("/api/v1/datasets/orders/rows/")
    usage_flush()
    assert UsageRecord.objects.count() == 0
    # One row for the day and reason, whatever the traffic.
    assert list(RejectedCalls.objects.values_list("reason", "count")) == [("missing", 300)]
    for _ in range(5):
        client.get("/api/v1/datasets/")
    usage_flush()
    assert list(RejectedCalls.objects.values_list("reason", "count")) == [("missing", 305)]


def test_counts_are_kept_per_utc_day(orders):
    for day, calls in ((NOON, 2), (NOON + dt.timedelta(days=1), 3)):
        with time_machine.travel(day, tick=False):
            for _ in range(calls):
                Client().get("/api/v1/datasets/")
    assert _rejected() == {("2025-06-10", "missing"): 2, ("2025-06-11", "missing"): 3}


def test_counts_from_several_processes_add_up(orders, redis_cache):
    # Another process's counts, already written; this one's are added to the same row.
    RejectedCalls.objects.create(day=NOON.date(), reason="missing", count=10)
    with time_machine.travel(NOON, tick=False):
        Client().get("/api/v1/datasets/")
        Client().get("/api/v1/datasets/")
        assert usage_flush() == 0
    assert RejectedCalls.objects.get().count == 12


def test_records_wait_in_the_buffer_until_a_batch_is_due(orders, issue, settings):
    client = bearer(issue(all_datasets=True))
    usage_flush()
    client.get("/api/v1/datasets/")
    # Not written during the request: one append to the buffer, the database untouched.
    assert UsageRecord.objects.count() == 0
    assert usage_flush() == 1
    assert UsageRecord.objects.count() == 1


def test_a_full_batch_is_written_by_the_request_that_fills_it(orders, issue, monkeypatch):
    monkeypatch.setattr(usage, "BATCH_SIZE", 3)
    client = bearer(issue(all_datasets=True, rate="100/m"))
    usage_flush()
    for _ in range(3):
        client.get("/api/v1/datasets/")
    assert UsageRecord.objects.count() == 3


def test_redis_buffer_is_shared_and_written_in_batches(orders, issue, redis_cache):
    from django_redis import get_redis_connection

    client = bearer(issue(all_datasets=True))
    usage_flush()
    client.get("/api/v1/datasets/")
    client.get("/api/v1/datasets/orders/")
    # The second call's record waits in the process: the next round trip (or a flush) sends it.
    assert get_redis_connection("default").llen(usage._list_name()) == 1
    assert usage_flush() == 2
    assert get_redis_connection("default").llen(usage._list_name()) == 0
    assert UsageRecord.objects.count() == 2


def test_record_names_the_operation_and_dataset_of_the_resolved_url():
    from django.test import RequestFactory
    from django.urls import resolve

    request = RequestFactory().get("/api/v1/datasets/orders/rows/")
    request.resolver_match = resolve(request.path)
    annotate(request, rows=7)
    entry = usage.request_record(request, HttpResponse(status=200), 0.0, 1.5)
    assert entry[2:] == ["orders", "rows", 200, 1.5, 7, ""]
    other = RequestFactory().get("/api/v1/nothing/")
    assert usage.request_record(other, HttpResponse(status=404), 0.0, 1.5)[2:4] == ["", ""]


def test_last_used_is_written_at_most_once_a_minute(orders, issue):
    with time_machine.travel(NOON, tick=False):
        client = bearer(issue(all_datasets=True, rate="100/m"))
        client.get("/api/v1/datasets/")
        usage_flush()
    key = ApiKey.objects.get()
    assert key.last_used == NOON
    with time_machine.travel(NOON + dt.timedelta(seconds=30), tick=False):
        client.get("/api/v1/datasets/")
        usage_flush()
    key.refresh_from_db()
    assert key.last_used == NOON
    with time_machine.travel(NOON + dt.timedelta(seconds=61), tick=False):
        client.get("/api/v1/datasets/")
        usage_flush()
    key.refresh_from_db()
    assert key.last_used == NOON + dt.timedelta(seconds=61)


def test_usage_summary_counts_errors_and_days(orders, issue):
    client = bearer(issue(datasets=["orders"], rate="100/m"))
    key_id = ApiKey.objects.get().key_id
    with time_machine.travel(NOON - dt.timedelta(days=2), tick=False):
        client.get("/api/v1/datasets/orders/rows/")
        client.get("/api/v1/datasets/orders/rows/999/")
    with time_machine.travel(NOON, tick=False):
        client.get("/api/v1/datasets/orders/aggregate/")
        summary = key_usage(key_id)
        per_dataset = dataset_usage("orders")
    assert (summary.requests, summary.errors) == (3, 1)
    assert [(day.day.isoformat(), day.requests, day.errors) for day in summary.days[-3:]] == [
        ("2025-06-08", 2, 1),
        ("2025-06-09", 0, 0),
        ("2025-06-10", 1, 0),
    ]
    assert len(summary.days) == 30
    assert per_dataset.requests == 3


def test_prune_usage_deletes_records_older_than_the_retention(orders, settings, capsys):
    settings.GATEWAY_USAGE_RETENTION_DAYS = 90
    for age in (100, 91, 89, 1):
        UsageRecord.objects.create(
            time=NOON - dt.timedelta(days=age), status=200, duration_ms=1.0, operation="rows"
        )
    with time_machine.travel(NOON, tick=False):
        call_command("prune_usage")
    assert "Deleted 2 usage records older than 90 days." in capsys.readouterr().out
    assert UsageRecord.objects.count() == 2


def test_prune_usage_deletes_counts_of_rejected_calls_older_than_the_retention(orders, settings):
    settings.GATEWAY_USAGE_RETENTION_DAYS = 90
    for age in (100, 91, 89, 0):
        RejectedCalls.objects.create(
            day=(NOON - dt.timedelta(days=age)).date(), reason="unknown", count=5
        )
    with time_machine.travel(NOON, tick=False):
        call_command("prune_usage")
    assert sorted(_rejected()) == [("2025-03-13", "unknown"), ("2025-06-10", "unknown")]


def test_prune_usage_days_option(orders, capsys):
    UsageRecord.objects.create(
        time=NOON - dt.timedelta(days=10), status=200, duration_ms=1.0, operation="rows"
    )
    with time_machine.travel(NOON, tick=False):
        call_command("prune_usage", "--days", "7")
    assert UsageRecord.objects.count() == 0


def test_a_due_batch_is_written_once_the_response_is_finished_not_during_it(orders, issue):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    usage.discard_buffer()
    usage._last_flush = 0.0  # a batch is due
    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        request_started.send(sender=None)
        usage.record([0.0, "k", "orders", "rows", 200, 1.0, 1, ""])
        assert UsageRecord.objects.count() == 0  # the call's caller is not kept waiting
        request_finished.send(sender=None)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert UsageRecord.objects.count() == 1
