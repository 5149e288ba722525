"""issue_key and revoke_key: scriptable output, clear errors on bad input."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from keys.models import ApiKey, KeyRowFilter
from tests.keys.conftest import bearer, error_of

pytestmark = pytest.mark.django_db


def _issue(*args: str) -> list[str]:
    out = StringIO()
    call_command("issue_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_issue_key_prints_key_id_and_the_raw_key_alone_on_the_last_line(orders):
    lines = _issue("Sales GPT", "--datasets", "orders")
    key = ApiKey.objects.get()
    assert f"Key id:    {key.key_id}" in lines
    raw = lines[-1]
    assert raw.startswith(f"gw_{key.key_id}_") and " " not in raw
    assert bearer(raw).get("/api/v1/datasets/orders/").status_code == 200


def test_issue_key_with_every_option(orders, secrets_ds):
    with time_machine.travel(dt.datetime(2025, 1, 1, tzinfo=dt.UTC), tick=False):
        lines = _issue(
            "EU team",
            "--datasets",
            "orders,secrets",
            "--rate",
            "10/m",
            "--quota-per-day",
            "500",
            "--expires-in",
            "30d",
            "--row-filter",
            "orders:region=EU",
            "--row-filter",
            "secrets:team=north",
            "--owner",
            "eu@example.com",
        )
    key = ApiKey.objects.get()
    assert (key.name, key.owner, key.rate, key.quota_per_day) == (
        "EU team",
        "eu@example.com",
        "10/m",
        500,
    )
    assert key.expires_at == dt.datetime(2025, 1, 31, tzinfo=dt.UTC)
    assert sorted(key.datasets.values_list("slug", flat=True)) == ["orders", "secrets"]
    assert sorted(KeyRowFilter.objects.values_list("dataset__slug", "column", "value")) == [
        ("orders", "region", "EU"),
        ("secrets", "team", "north"),
    ]
    assert "Row filter: orders: region = EU" in lines


def test_issue_key_all_datasets(orders, secrets_ds):
    raw = _issue("everything", "--all")[-1]
    assert ApiKey.objects.get().all_datasets
    assert bearer(raw).get("/api/v1/datasets/").json()["count"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["k", "--datasets", "nope"], "Unknown dataset nope; datasets: orders, secrets."),
        (["k", "--datasets", " , "], "--datasets needs at least one dataset slug"),
        (["k", "--all", "--rate", "fast"], "'fast' is not a rate"),
        (["k", "--all", "--rate", "0/m"], "'0/m' is not a rate"),
        (["k", "--all", "--rate", "10/0m"], "'10/0m' is not a rate"),
        (["k", "--all", "--expires-in", "soon"], "--expires-in 'soon' is not a duration"),
        (["k", "--all", "--expires-in", "0d"], "is not a duration"),
        (["k", "--all", "--quota-per-day", "0"], "--quota-per-day must be at least 1"),
        (["k", "--all", "--row-filter", "orders-region-EU"], "is not SLUG:COLUMN=VALUE"),
        (["k", "--all", "--row-filter", "nope:region=EU"], "Unknown dataset nope"),
        (
            ["k", "--all", "--row-filter", "orders:area=EU"],
            "orders has no column 'area'; columns: order_id",
        ),
        (["k", "--all", "--row-filter", "orders:order_id=abc"], "order_id"),
        (
            ["k", "--datasets", "secrets", "--row-filter", "orders:region=EU"],
            "Row filter on orders, which is not in the key's scope (secrets).",
        ),
        (
            ["k", "--all", "--row-filter", "orders:region=EU", "--row-filter", "orders:region=US"],
            "Two row filters on orders.region",
        ),
        (["  ", "--all"], "A key needs a name."),
    ],
)
def test_issue_key_refuses_bad_input_with_a_clear_message(orders, secrets_ds, args, message):
    with pytest.raises(CommandError) as error:
        call_command("issue_key", *args, stdout=StringIO())
    assert message in str(error.value)
    assert ApiKey.objects.count() == 0


def test_issue_key_needs_a_scope(orders):
    with pytest.raises(CommandError, match="one of the arguments --datasets --all is required"):
        call_command("issue_key", "k", stdout=StringIO())


def test_revoke_key_revokes_at_once(orders):
    raw = _issue("k", "--all")[-1]
    key = ApiKey.objects.get()
    out = StringIO()
    call_command("revoke_key", key.key_id, stdout=out)
    assert out.getvalue().strip() == f"Key {key.key_id} (k) is revoked."
    error_of(bearer(raw).get("/api/v1/datasets/"), 401, "unauthorized")
    out = StringIO()
    call_command("revoke_key", key.key_id, stdout=out)
    assert "was already revoked" in out.getvalue()


def test_revoke_key_accepts_a_whole_key_without_printing_its_secret(orders):
    raw = _issue("k", "--all")[-1]
    out = StringIO()
    call_command("revoke_key", raw, stdout=out)
    assert ApiKey.objects.get().revoked
    assert raw not in out.getvalue()


def test_revoke_key_unknown_id(orders):
    with pytest.raises(CommandError, match="No key with id 'nope'"):
        call_command("revoke_key", "nope", stdout=StringIO())
