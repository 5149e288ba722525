"""A small deterministic sales dataset, written as a DuckDB file and registered like an upload."""

from __future__ import annotations

import datetime as dt
import random

import duckdb

from datasets.models import Column, Dataset

PRODUCTS = ["Product A", "Product B", "Product C", "Product D"]
REGIONS = ["EU", "US", "APAC"]

COLUMNS = [
    ("order_id", "integer", "BIGINT"),
    ("order_date", "date", "DATE"),
    ("product", "string", "VARCHAR"),
    ("region", "string", "VARCHAR"),
    ("units", "integer", "BIGINT"),
    ("revenue", "number", "DOUBLE"),
    ("note", "string", "VARCHAR"),
    ("customer_email", "string", "VARCHAR"),
]


def sales_rows(count: int = 240, *, note_length: int = 12) -> list[dict]:
    """Orders over 2023-2024, the same every time."""
    rng = random.Random(7)
    start = dt.date(2023, 1, 1)
    rows = []
    for order_id in range(1, count + 1):
        units = rng.randint(1, 9)
        rows.append(
            {
                "order_id": order_id,
                "order_date": start + dt.timedelta(days=(order_id * 3) % 730),
                "product": PRODUCTS[order_id % len(PRODUCTS)],
                "region": REGIONS[order_id % len(REGIONS)],
                "units": units,
                "revenue": round(units * rng.uniform(10, 500), 2),
                "note": ("x" * note_length) if order_id % 2 else f"gift {order_id}",
                "customer_email": f"buyer{order_id}@example.com",
            }
        )
    return rows


def register_sales(rows: list[dict], *, slug: str = "sales") -> Dataset:
    """A Dataset with its Column rows and a DuckDB file holding `rows`."""
    dataset = Dataset.objects.create(
        slug=slug,
        title="Sales",
        description="Orders by product and region.",
        table="data",
        version=1,
        primary_key="order_id",
        row_count=len(rows),
    )
    dataset.directory.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(dataset.file_path()))
    connection.execute(
        "CREATE TABLE data ("
        + ", ".join(f"{name} {sql}" for name, _, sql in COLUMNS)
        + ", PRIMARY KEY (order_id))"
    )
    connection.executemany(
        f"INSERT INTO data VALUES ({', '.join('?' for _ in COLUMNS)})",
        [[row[name] for name, _, _ in COLUMNS] for row in rows],
    )
    connection.close()
    for position, (name, type_, _) in enumerate(COLUMNS):
        Column.objects.create(
            dataset=dataset,
            position=position,
            physical_name=name,
            name=name,
            type=type_,
            searchable=type_ == "string",
            pii="mask" if name == "customer_email" else "none",
            enum=sorted({row[name] for row in rows}) if name in ("product", "region") else None,
            min_value=min(row[name] for row in rows).isoformat() if name == "order_date" else None,
            max_value=max(row[name] for row in rows).isoformat() if name == "order_date" else None,
        )
    return dataset
