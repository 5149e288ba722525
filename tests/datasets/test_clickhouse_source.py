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


def test_a_pooled_connection_keeps_its_session_between_queries(orders):
    # clickhouse-sqlalchemy's cursor closes its connection: without Gateway's own connection,
    # every query would open a new one despite the pool.
    from datasets.engine.connections import connect

    engine = connect(CLICKHOUSE_URL, pooled=True)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql(f"SELECT count() FROM {orders}").scalar() == 4
            transport = connection.connection.dbapi_connection.transport
            assert transport.connection.connected
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
            assert transport.connection.connected
    finally:
        engine.dispose()


# -- The admin's source form ---------------------------------------------------------------------


def _staff(client, *codenames: str) -> Client:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="datasets", codename__in=codenames)
    )
    client.force_login(user)
    return client


def _add_form(client: Client, url: str):
    data = {"name": "warehouse", "url": url, "password": "", "statement_timeout": "10"}
    return client.post("/admin/datasets/source/add/", data)


@pytest.mark.parametrize(
    "codenames, allowed",
    [(("view_source",), False), (("view_source", "add_source", "change_source"), True)],
)
def test_the_admin_source_form_adds_a_clickhouse_url_for_whom_may(clickhouse, codenames, allowed):
    from datasets.models import Source

    response = _add_form(_staff(Client(), *codenames), CLICKHOUSE_URL)
    assert (response.status_code == 302) is allowed
    source = Source.objects.filter(name="warehouse").first()
    assert (source is not None) is allowed
    if source is not None:
        assert source.kind == Source.Kind.CLICKHOUSE


def test_the_admin_source_form_shows_a_clickhouse_port_error(clickhouse):
    client = _staff(Client(), "view_source", "add_source", "change_source")
    response = _add_form(client, "clickhouse://default:s3cret@127.0.0.1:9/default")
    page = response.content.decode()
    assert response.status_code == 200 and "Cannot connect" in page
    assert "s3cret" not in page


# -- Same shape as any other backend -------------------------------------------------------------


def test_a_clickhouse_dataset_has_the_schema_and_tools_of_any_other(orders, tmp_path):
    import json
    import sqlite3

    from keys.services import api_key_issue

    lite = tmp_path / "orders.db"
    db = sqlite3.connect(lite)
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, order_date DATE, region TEXT, "
               "revenue REAL, email TEXT)")  # fmt: skip
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", [
        (1, "2024-04-02", "EU", 10.5, "ada@example.org"),
        (2, "2024-05-03", "US", 20.0, "bob@example.org"),
        (3, "2024-05-09", "EU", 4.5, "eve@example.org"),
        (4, "2024-07-01", None, None, None),
    ])  # fmt: skip
    db.commit()
    db.close()
    _run("add_source", "warehouse", CLICKHOUSE_URL)
    _run("add_source", "lite", f"sqlite:///{lite}")
    for source, table, slug in (
        ("warehouse", orders, "orders_ch"),
        ("lite", "orders", "orders_lt"),
    ):
        _run("add_dataset", "--source", source, "--table", table, "--slug", slug,
             "--title", "Orders", "--primary-key", "id", "--pii", "email=mask")  # fmt: skip
    key = api_key_issue(name="all", all_datasets=True).raw_key
    client = Client(headers={"Authorization": f"Bearer {key}"})

    schema = client.get("/openapi.json").json()

    def operations(slug: str) -> dict:
        prefix = f"/api/v1/datasets/{slug}/"
        text = json.dumps({path[len(prefix):]: item for path, item in schema["paths"].items()
                           if path.startswith(prefix)})  # fmt: skip
        return json.loads(text.replace(slug, "SLUG"))

    assert operations("orders_ch") and operations("orders_ch") == operations("orders_lt")

    def tool(name: str, **arguments) -> dict:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": name, "arguments": arguments}}  # fmt: skip
        reply = client.post("/mcp", body, content_type="application/json",
                            HTTP_ACCEPT="application/json, text/event-stream")  # fmt: skip
        assert reply.status_code == 200, reply.content
        return reply.json()["result"]["structuredContent"]

    for name, arguments in (
        ("describe_dataset", {}),
        ("query_rows", {"filters": {"region": "EU"}, "ordering": "-revenue"}),
        ("aggregate", {"group_by": "region", "metrics": "sum:revenue,count"}),
        ("get_row", {"key": "2"}),
    ):
        on_clickhouse = json.dumps(tool(name, dataset="orders_ch", **arguments))
        on_sqlite = json.dumps(tool(name, dataset="orders_lt", **arguments))
        assert on_clickhouse.replace("orders_ch", "SLUG") == on_sqlite.replace("orders_lt", "SLUG")
