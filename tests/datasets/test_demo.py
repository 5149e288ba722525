"""The demo `sales` dataset: deterministic rows, loaded once by manage.py demo."""

from __future__ import annotations

import io
import itertools

import pytest
from django.core.management import call_command

from datasets.demo import (
    DESCRIPTION,
    HEADER,
    PRODUCTS,
    REGIONS,
    demo_load,
    sales_csv_write,
    sales_rows,
)
from datasets.engine.connections import duckdb_files
from datasets.models import Dataset


@pytest.fixture(autouse=True)
def _close_files():
    yield
    duckdb_files.close_all()


def test_rows_are_deterministic_and_consistent():
    rows = list(sales_rows(2000))
    assert rows == list(sales_rows(2000))
    assert rows != list(sales_rows(2000, seed=1))
    assert [row[0] for row in rows] == list(range(1, 2001))
    assert rows[0][1] == "2023-01-01"
    assert rows[-1][1] == "2025-12-31"
    assert {row[2] for row in rows} == {product for product, _, _ in PRODUCTS}
    assert {row[4] for row in rows} == set(REGIONS)
    for row in rows:
        assert row[8] == f"{round(row[6] * float(row[7]), 2):.2f}"
        assert row[10].endswith("@example.com")


def test_csv_is_written_with_a_header(tmp_path):
    path = sales_csv_write(path=tmp_path / "s.csv", rows=3)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(HEADER)
    assert len(lines) == 4


@pytest.mark.django_db
def test_demo_load_imports_sales_once():
    dataset, loaded = demo_load(rows=500)
    assert loaded
    assert (dataset.slug, dataset.row_count, dataset.primary_key) == ("sales", 500, "order_id")
    assert len(dataset.description) <= 300 and dataset.description == DESCRIPTION
    columns = {column.name: column for column in dataset.columns.all()}
    assert list(columns) == list(HEADER)
    assert columns["customer_email"].pii == "mask"
    assert columns["customer_email"].enum is None
    assert columns["region"].enum == sorted(REGIONS)
    assert columns["order_date"].type == "date"
    assert (columns["order_date"].min_value, columns["order_date"].max_value) == (
        "2023-01-01",
        "2025-12-31",
    )
    assert columns["revenue"].type == "number"
    assert all(column.description for column in columns.values())

    again, loaded = demo_load(rows=500)
    assert not loaded
    assert again.version == dataset.version

    bigger, loaded = demo_load(rows=600)
    assert loaded
    assert (bigger.version, bigger.row_count) == (2, 600)
    # The admin's edits to the columns survive a reload.
    assert bigger.columns.get(name="customer_email").pii == "mask"


@pytest.mark.django_db
def test_demo_command_prints_admin_and_dataset_urls():
    out = io.StringIO()
    call_command("demo", rows=300, stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "http://127.0.0.1:8000/admin/" in text
    assert "Dataset:  sales (300 rows)  http://127.0.0.1:8000/api/v1/datasets/sales/" in text
    assert Dataset.objects.get(slug="sales").row_count == 300
    user_line = next(line for line in text.splitlines() if "Password:" in line)
    assert "admin" in user_line
    assert list(itertools.islice(sales_rows(1), 1))
