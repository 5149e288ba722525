"""Each column's distinct count, null count and uniqueness: computed at import or registration,
published by describe, and under row filters computed over the readable rows only."""

from __future__ import annotations

import sqlite3

import pytest
from django.test import Client

from datasets.engine.connections import duckdb_files
from datasets.engine.statistics import statistics_forget
from datasets.services import dataset_import
from datasets.sources import dataset_register, dataset_statistics_refresh, source_create
from keys.services import RowFilter, api_key_issue

pytestmark = pytest.mark.django_db

# Two tenants; an e-mail per order (unique), customer names repeated, a note sometimes empty.
ORDERS = (
    "order_id,tenant,customer,email,note,amount\n"
    "1,A,Ann,ann1@example.com,,10\n"
    "2,A,Ann,ann2@example.com,rush,20\n"
    "3,A,Bob,bob@example.com,,30\n"
    "4,B,Cid,cid1@example.com,gift,40\n"
    "5,B,Cid,cid2@example.com,gift,50\n"
    "6,B,Dan,dan@example.com,rush,60\n"
    "7,B,Eve,eve@example.com,,70\n"
)
# name: (distinct_count, null_count, unique) over all rows
EVERY_ROW = {
    "order_id": (7, 0, True),
    "tenant": (2, 0, False),
    "customer": (5, 0, False),
    "email": (7, 0, True),
    "note": (2, 3, False),
    "amount": (7, 0, True),
}
# The same for tenant A's three rows
TENANT_A = {
    "order_id": (3, 0, True),
    "tenant": (1, 0, False),
    "customer": (2, 0, False),
    "email": (3, 0, True),
    "note": (1, 2, True),
    "amount": (3, 0, True),
}


@pytest.fixture(autouse=True)
def _fresh():
    statistics_forget()
    yield
    statistics_forget()
    duckdb_files.close_all()


@pytest.fixture
def orders(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS, encoding="utf-8")
    return dataset_import(path=path, slug="orders", pii={"email": "mask"})


def _client(raw_key: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


def _counts(body: dict) -> dict[str, tuple]:
    return {
        column["name"]: (column["distinct_count"], column["null_count"], column["unique"])
        for column in body["columns"]
    }


def test_import_stores_the_counts(orders):
    stored = {
        column.name: (column.distinct_count, column.null_count, column.unique)
        for column in orders.columns.all()
    }
    assert stored == EVERY_ROW


def test_describe_tells_an_identifying_column_from_a_name(orders):
    everyone = _client(api_key_issue(name="all", all_datasets=True).raw_key)
    body = everyone.get("/api/v1/datasets/orders/").json()
    assert _counts(body) == EVERY_ROW
    # The masked e-mail shows no value, but its counts: it identifies an order, a name does not.
    email = next(column for column in body["columns"] if column["name"] == "email")
    assert email["enum"] is None and email["unique"] is True


def test_describe_under_row_filters_counts_the_readable_rows_only(orders):
    tenant_a = _client(
        api_key_issue(
            name="tenant A",
            datasets=["orders"],
            row_filters=[RowFilter(slug="orders", column="tenant", value="A")],
        ).raw_key
    )
    body = tenant_a.get("/api/v1/datasets/orders/").json()
    assert body["row_count"] == 3
    assert _counts(body) == TENANT_A


def test_a_row_id_is_unique_and_never_null(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("name,score\na,1\nb,1\nc,\n", encoding="utf-8")
    dataset = dataset_import(path=path, slug="scores")
    stored = {
        column.name: (column.distinct_count, column.null_count, column.unique)
        for column in dataset.columns.all()
    }
    assert stored == {"row_id": (3, 0, True), "name": (3, 0, True), "score": (1, 1, False)}


def test_sql_source_counts_at_registration_and_refresh(tmp_path):
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, email TEXT, note TEXT);
        INSERT INTO orders VALUES (1, 'Ann', 'a1@x.org', NULL), (2, 'Ann', 'a2@x.org', 'rush');
        """
    )
    db.commit()
    source = source_create(name="shop", url=f"sqlite:///{path}")
    dataset = dataset_register(source=source, table="orders", slug="shop_orders")

    def stored() -> dict[str, tuple]:
        return {
            column.name: (column.distinct_count, column.null_count, column.unique)
            for column in dataset.columns.all()
        }

    assert stored() == {
        "id": (2, 0, True),
        "customer": (1, 0, False),
        "email": (2, 0, True),
        "note": (1, 1, True),
    }
    db.execute("INSERT INTO orders VALUES (3, 'Bob', 'a1@x.org', 'rush')")
    db.commit()
    db.close()
    dataset_statistics_refresh(dataset=dataset)
    assert stored() == {
        "id": (3, 0, True),
        "customer": (2, 0, False),
        "email": (2, 0, False),
        "note": (1, 1, False),
    }


def test_sql_source_aggregation_is_inferred_at_registration_and_kept_on_refresh(tmp_path):
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, unit_price REAL, year INTEGER);
        INSERT INTO orders VALUES (1, 10.0, 2.5, 2024), (2, 20.0, 5.0, 2024);
        """
    )
    db.commit()
    db.close()
    source = source_create(name="shop", url=f"sqlite:///{path}")
    dataset = dataset_register(source=source, table="orders", slug="shop_orders")

    def aggregations() -> dict[str, str]:
        return {column.name: column.aggregation for column in dataset.columns.all()}

    assert aggregations() == {
        "id": "none",
        "amount": "sum",
        "unit_price": "average",
        "year": "none",
    }
    dataset.columns.filter(name="amount").update(aggregation="average")  # the admin's choice
    dataset_statistics_refresh(dataset=dataset)
    assert aggregations()["amount"] == "average"
