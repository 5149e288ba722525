"""A ClickHouse source as an admin adds one: add_source (connection tested first), discover_source,
add_dataset, then the API, every query run in ClickHouse, read-only."""

from __future__ import annotations

import datetime as dt
import io
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from datasets.models import Column, Dataset
from tests.datasets.engine.sales_table import _clickhouse_client
from tests.services import CLICKHOUSE_URL

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = f"gw_t_orders_{os.getpid()}"


@pytest.fixture
def orders(clickhouse):
    client = _clickhouse_client(CLICKHOUSE_URL)
    client.execute(f"DROP TABLE IF EXISTS {TABLE}")
    client.execute(
        f"CREATE TABLE {TABLE} (id Int64, order_date Date, region Nullable(String), "
        "revenue Nullable(Float64), email Nullable(String)) ENGINE = MergeTree() ORDER BY id"
    )
    rows = [
        (1, dt.date(2024, 4, 2), "EU", 10.5, "ada@example.org"),
        (2, dt.date(2024, 5, 3), "US", 20.0, "bob@example.org"),
        (3, dt.date(2024, 5, 9), "EU", 4.5, "eve@example.org"),
        (4, dt.date(2024, 7, 1), None, None, None),
    ]
    client.execute(f"INSERT INTO {TABLE} VALUES", rows)
    yield TABLE
    client.execute(f"DROP TABLE IF EXISTS {TABLE}")
    client.disconnect()


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_an_admin_adds_discovers_and_serves_a_clickhouse_table(orders):
    assert "ClickHouse" in _run("add_source", "warehouse", CLICKHOUSE_URL)
    assert f"default.{orders}\ttable" in _run("discover_source", "warehouse")
    _run("add_dataset", "--source", "warehouse", "--table", orders, "--slug", "orders",
         "--primary-key", "id", "--pii", "email=mask")  # fmt: skip
    dataset = Dataset.objects.get(slug="orders")
    types = dict(dataset.columns.values_list("name", "type"))
    assert types == {"id": "integer", "order_date": "date", "region": "string",
                     "revenue": "number", "email": "string"}  # fmt: skip
    assert Column.objects.get(dataset=dataset, name="region").enum == ["EU", "US"]

    from keys.services import RowFilter, api_key_issue

    everything = api_key_issue(name="all", all_datasets=True).raw_key
    eu = api_key_issue(
        name="eu", all_datasets=True, row_filters=[RowFilter("orders", "region", "EU")]
    ).raw_key

    def get(path: str, key: str = everything):
        return Client(headers={"Authorization": f"Bearer {key}"}).get(path)

    rows = get("/api/v1/datasets/orders/rows/?region=EU&ordering=-revenue").json()
    assert [row["id"] for row in rows["results"]] == [1, 3]
    assert rows["results"][0]["email"] == "a***@example.org"
    assert get("/api/v1/datasets/orders/rows/2/").json()["revenue"] == 20.0
    q2 = get(
        "/api/v1/datasets/orders/aggregate/?order_date__gte=2024-04-01"
        "&order_date__lte=2024-06-30&group_by=region&metrics=sum:revenue,count"
    ).json()["results"]
    assert q2 == [
        {"region": "EU", "sum_revenue": 15.0, "count": 2},
        {"region": "US", "sum_revenue": 20.0, "count": 1},
    ]
    assert get("/api/v1/datasets/orders/rows/?search=bob").json()["count"] == 0  # masked
    # A row-filtered key: its rows and statistics stay inside its filter.
    assert get("/api/v1/datasets/orders/rows/2/", eu).status_code == 404
    counted = get("/api/v1/datasets/orders/aggregate/?metrics=count", eu).json()["results"]
    assert counted == [{"count": 2}]


def test_a_wrong_port_or_database_is_a_clear_error_at_add_source(clickhouse):
    with pytest.raises(CommandError, match="Cannot connect"):
        call_command("add_source", "nowhere", "clickhouse://default@127.0.0.1:9/default",
                     stdout=io.StringIO())  # fmt: skip
    with pytest.raises(CommandError, match="(?i)database"):
        call_command("add_source", "nodb", "clickhouse://default@127.0.0.1:9000/no_such_db",
                     stdout=io.StringIO())  # fmt: skip


def test_an_option_that_would_lift_read_only_is_refused(clickhouse):
    with pytest.raises(CommandError, match="Option 'readonly' is not allowed"):
        call_command("add_source", "rw", f"{CLICKHOUSE_URL}?readonly=0", stdout=io.StringIO())
