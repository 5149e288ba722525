"""The engine suite's dataset: the same deterministic sales rows written to DuckDB, SQLite,
PostgreSQL and MariaDB, the column metadata describing them, and a reference in plain Python."""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from django.http import QueryDict

from datasets.engine.execute import run_aggregate, run_rows
from datasets.engine.parse import parse_aggregate, parse_rows
from datasets.engine.pii import digest, mask
from datasets.engine.spec import ColumnSpec, DatasetSpec, SourceSpec

# One table per test process: others run the whole suite at the same time on the same servers.
TABLE = f"gw_t_engine_sales_{os.getpid()}"
MAX_PAGE = 100

# Physical names with spaces and capitals check that the compiler quotes identifiers per dialect.
COLUMNS = (
    ColumnSpec(name="id", physical="id", type="integer"),
    ColumnSpec(name="day", physical="Order Day", type="date"),
    ColumnSpec(name="moment", physical="moment", type="datetime"),
    ColumnSpec(name="label", physical="label", type="string", searchable=True),
    ColumnSpec(name="region", physical="region", type="string", enum=("APAC", "EU", "US")),
    ColumnSpec(name="qty", physical="qty", type="integer"),
    ColumnSpec(name="price", physical="Unit Price", type="number"),
    ColumnSpec(name="active", physical="active", type="boolean"),
    # Searchable but masked, and searchable but hidden: search must skip both.
    ColumnSpec(name="email", physical="email", type="string", searchable=True, pii="mask"),
    ColumnSpec(name="customer", physical="customer", type="string", pii="hash"),
    ColumnSpec(name="secret", physical="secret", type="string", searchable=True, pii="hide"),
    ColumnSpec(name="notes", physical="notes", type="string", searchable=True),
    ColumnSpec(name="ref", physical="ref", type="string", filterable=False, sortable=False),
)
VISIBLE = [column.name for column in COLUMNS if column.visible]

# ISO week edges (2024-12-30 is 2025-W01, 2023-01-01 is 2022-W52, 2021-01-03 is 2020-W53) and
# quarter edges come first; the rest are spread over 2023-2025.
EDGE_DAYS = [
    dt.date(2021, 1, 3),
    dt.date(2021, 1, 4),
    dt.date(2022, 12, 31),
    dt.date(2023, 1, 1),
    dt.date(2023, 1, 2),
    dt.date(2024, 1, 1),
    dt.date(2024, 3, 31),
    dt.date(2024, 4, 1),
    dt.date(2024, 4, 3),
    dt.date(2024, 6, 30),
    dt.date(2024, 7, 1),
    dt.date(2024, 9, 30),
    dt.date(2024, 10, 1),
    dt.date(2024, 12, 29),
    dt.date(2024, 12, 30),
    dt.date(2024, 12, 31),
    dt.date(2025, 1, 1),
]
EDGE_MOMENTS = [
    dt.datetime(2024, 6, 30, 23, 59, 59),
    dt.datetime(2024, 7, 1, 0, 0, 0),
    dt.datetime(2024, 6, 30, 0, 0, 0),
    dt.datetime(2024, 3, 31, 23, 59, 59),
    dt.datetime(2024, 4, 1, 0, 0, 1),
    dt.datetime(2024, 12, 30, 8, 0, 0),
    dt.datetime(2023, 1, 1, 12, 0, 0),
    dt.datetime(2021, 1, 3, 18, 30, 0),
    dt.datetime(2024, 4, 3, 9, 15, 0),
]
LABELS = [
    "50% off",
    "a_b",
    "ab",
    "aXb",
    "O'Brien",
    "Zoë",
    "日本語",
    "plain",
    "Plain text",
    None,
    "100%",
    "x%y",
    "back\\slash",
    "under_score",
]
NOTES = [
    "Half price: 50% OFF today",
    "snake_case value",
    "nothing special",
    "Call O'Brien back",
    "PERCENT%SIGN",
    "mixed Case Words",
    None,
    "Ünïcode Straße",
]
REGIONS = ["EU", "US", "APAC", None, "EU"]


def _row(i: int) -> dict[str, Any]:
    if i <= len(EDGE_DAYS):
        day = EDGE_DAYS[i - 1]
    else:
        day = None if i % 19 == 0 else dt.date(2023, 1, 1) + dt.timedelta(days=(i * 53) % 900)
    if i <= len(EDGE_MOMENTS):
        moment = EDGE_MOMENTS[i - 1]
    else:
        moment = (
            None
            if i % 23 == 0
            else dt.datetime(2022, 11, 1) + dt.timedelta(hours=(i * 397) % (24 * 800), minutes=i)
        )
    return {
        "id": i,
        "day": day,
        "moment": moment,
        "label": LABELS[i % len(LABELS)],
        "region": REGIONS[i % len(REGIONS)],
        "qty": None if i % 11 == 3 else (i * 7) % 23 - 5,
        "price": None if i % 17 == 4 else Decimal(i * 3719 % 100000) / 100,
        "active": None if i % 13 == 0 else i % 3 == 0,
        "email": None if i % 10 == 7 else f"user{i}@example.com",
        "customer": f"Customer {i % 6}",
        "secret": f"secret-{i}",
        "notes": NOTES[i % len(NOTES)],
        "ref": f"R{i:03d}",
    }


ROWS = [_row(i) for i in range(1, 85)]


# The dataset in each backend


def dataset(*, source: SourceSpec | None = None, file_path: str = "", **changes) -> DatasetSpec:
    """The sales dataset's spec on a backend (DuckDB when `source` is None)."""
    options = {
        "id": 1,
        "slug": "sales",
        "title": "Sales",
        "description": "Engine test sales.",
        "table": "data" if source is None else TABLE,
        "source": source,
        "file_path": file_path,
        "primary_key": "id",
        "max_page_size": MAX_PAGE,
        "row_count": len(ROWS),
        "all_columns": COLUMNS,
    }
    options.update(changes)
    return DatasetSpec(**options)


def physical_rows() -> list[dict[str, Any]]:
    """ROWS keyed by physical column name."""
    names = {column.name: column.physical for column in COLUMNS}
    return [{names[name]: value for name, value in row.items()} for row in ROWS]


def sales_table(metadata: sa.MetaData) -> sa.Table:
    """The SQL table the foreign backends hold."""
    types = {
        "integer": sa.Integer,
        "date": sa.Date,
        "datetime": sa.DateTime,
        "boolean": sa.Boolean,
    }
    columns = []
    for column in COLUMNS:
        if column.type == "string":
            type_ = sa.String(200)
        elif column.type == "number":
            type_ = sa.Numeric(10, 2)
        else:
            type_ = types[column.type]()
        columns.append(
            sa.Column(column.physical, type_, primary_key=column.name == "id", autoincrement=False)
        )
    return sa.Table(TABLE, metadata, *columns)


def create_sql_table(url: str) -> None:
    """(Re)create the table on a writable connection and fill it."""
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        table = sales_table(metadata)
        with engine.begin() as connection:
            table.drop(connection, checkfirst=True)
            table.create(connection)
            connection.execute(table.insert(), physical_rows())
    finally:
        engine.dispose()


def drop_sql_table(url: str) -> None:
    """Drop the table (end of session)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            sales_table(sa.MetaData()).drop(connection, checkfirst=True)
    finally:
        engine.dispose()


# ClickHouse's types for the same columns: Nullable wherever a value may be missing, UInt8 for
# booleans (ClickHouse 18 has no boolean type).
_CLICKHOUSE_TYPES = {
    "integer": "Int64",
    "number": "Decimal(10, 2)",
    "string": "String",
    "date": "Date",
    "datetime": "DateTime",
    "boolean": "UInt8",
}


def _clickhouse_client(url: str):
    from clickhouse_driver import Client

    parsed = sa.engine.make_url(url)
    return Client(
        parsed.host or "127.0.0.1",
        port=parsed.port or 9000,
        user=parsed.username or "default",
        password=parsed.password or "",
        database=parsed.database or "default",
    )


def create_clickhouse_table(url: str) -> None:
    """(Re)create the table in ClickHouse and fill it (through the native client)."""
    client = _clickhouse_client(url)
    try:
        client.execute(f"DROP TABLE IF EXISTS `{TABLE}`")
        columns = ", ".join(
            f"`{c.physical}` {_CLICKHOUSE_TYPES[c.type] if c.name == 'id' else 'Nullable(' + _CLICKHOUSE_TYPES[c.type] + ')'}"
            for c in COLUMNS
        )
        client.execute(f"CREATE TABLE `{TABLE}` ({columns}) ENGINE = MergeTree() ORDER BY id")
        names = [column.physical for column in COLUMNS]
        rows = [
            [int(value) if isinstance(value, bool) else value for value in (row[n] for n in names)]
            for row in physical_rows()
        ]
        quoted = ", ".join(f"`{name}`" for name in names)
        client.execute(f"INSERT INTO `{TABLE}` ({quoted}) VALUES", rows)
    finally:
        client.disconnect()


def drop_clickhouse_table(url: str) -> None:
    client = _clickhouse_client(url)
    try:
        client.execute(f"DROP TABLE IF EXISTS `{TABLE}`")
    finally:
        client.disconnect()


def sql_row_count(url: str) -> int:
    """The table's row count, read through an ordinary connection."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(f"SELECT count(*) FROM {TABLE}")).scalar_one()
    finally:
        engine.dispose()


def create_duckdb_file(path: str) -> None:
    """The DuckDB database file of an uploaded dataset: one table `data`."""
    connection = duckdb.connect(path)
    try:
        connection.execute(
            """CREATE TABLE data (
                id INTEGER PRIMARY KEY, "Order Day" DATE, moment TIMESTAMP, label VARCHAR,
                region VARCHAR, qty INTEGER, "Unit Price" DECIMAL(10, 2), active BOOLEAN,
                email VARCHAR, customer VARCHAR, secret VARCHAR, notes VARCHAR, ref VARCHAR)"""
        )
        names = [column.name for column in COLUMNS]
        connection.executemany(
            f"INSERT INTO data VALUES ({', '.join('?' for _ in names)})",
            [[row[name] for name in names] for row in ROWS],
        )
    finally:
        connection.close()


# The reference: what the engine must answer, computed in Python from ROWS


def output(name: str, value: Any) -> Any:
    """A stored value as the engine returns it (JSON-ready, PII applied)."""
    if value is None:
        return None
    column = next(c for c in COLUMNS if c.name == name)
    if column.type == "number":
        value = float(value)
    elif column.type in ("date", "datetime"):
        value = value.isoformat()
    if column.pii == "mask":
        return mask(value)
    if column.pii == "hash":
        return digest(value)
    return value


def record(row: dict, fields: Iterable[str] = VISIBLE) -> dict:
    """A row as the engine returns it."""
    return {name: output(name, row[name]) for name in fields}


def ids(predicate: Callable[[dict], bool]) -> list[int]:
    """The ids of ROWS matching `predicate`, ascending."""
    return [row["id"] for row in ROWS if predicate(row)]


def _compare(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def ordered_ids(keys: list[tuple[str, bool]], rows: list[dict] | None = None) -> list[int]:
    """Ids sorted by (name, descending) keys, NULLs last either way, then by id."""

    def compare(left: dict, right: dict) -> int:
        for name, descending in keys:
            a, b = left[name], right[name]
            if a is None or b is None:
                result = (a is None) - (b is None)
            else:
                result = _compare(a, b) * (-1 if descending else 1)
            if result:
                return result
        return _compare(left["id"], right["id"])

    return [row["id"] for row in sorted(rows or ROWS, key=functools.cmp_to_key(compare))]


def bucket(value: dt.date | None, size: str) -> str | None:
    """A date bucket's string, computed with Python's calendar."""
    if value is None:
        return None
    if size == "year":
        return f"{value.year}"
    if size == "quarter":
        return f"{value.year}-Q{(value.month - 1) // 3 + 1}"
    if size == "month":
        return f"{value.year}-{value.month:02d}"
    if size == "week":
        iso = value.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    return value.strftime("%Y-%m-%d")


def group_value(key: str) -> Callable[[dict], Any]:
    """The value of `column` or `column__bucket` a row is grouped by (before PII is applied)."""
    name, _, size = key.partition("__")
    if size:
        return lambda row: bucket(row[name], size)
    return lambda row: row[name]


def group_output(key: str, value: Any) -> Any:
    """A group value as the engine returns it: the engine groups by the stored value, then masks."""
    name, _, size = key.partition("__")
    if size:
        column = next(c for c in COLUMNS if c.name == name)
        return value if value is None or column.pii == "none" else output(name, value)
    return output(name, value)


def metric_value(key: str, rows: list[dict]) -> Any:
    """count, sum_x, avg_x, min_x, max_x, count_distinct_x over `rows`."""
    if key == "count":
        return len(rows)
    function, name = next(
        (f, key[len(f) + 1 :])
        for f in ("count_distinct", "sum", "avg", "min", "max")
        if key.startswith(f + "_")
    )
    values = [row[name] for row in rows if row[name] is not None]
    if function == "count_distinct":
        return len(set(values))
    if not values:
        return None
    if function == "sum":
        total = sum(values)
        return float(total) if isinstance(total, Decimal) else total
    if function == "avg":
        return float(sum(Decimal(value) for value in values) / len(values))
    chosen = min(values) if function == "min" else max(values)
    return output(name, chosen)


def groups(
    group_by: list[str],
    metrics: list[str],
    *,
    where: Callable[[dict], bool] = lambda row: True,
    ordering: list[tuple[str, bool]] | None = None,
    limit: int = 100,
) -> list[dict]:
    """Aggregate results, computed in Python; ordered by the group keys unless told."""
    buckets: dict[tuple, list[dict]] = {}
    for row in ROWS:
        if where(row):
            buckets.setdefault(tuple(group_value(k)(row) for k in group_by), []).append(row)
    results = [
        {
            **{k: group_output(k, value) for k, value in zip(group_by, key, strict=True)},
            **{m: metric_value(m, rs) for m in metrics},
        }
        for key, rs in buckets.items()
    ]
    order = ordering if ordering is not None else [(k, False) for k in group_by]

    def compare(left: dict, right: dict) -> int:
        for name, descending in order:
            a, b = left[name], right[name]
            if a is None or b is None:
                result = (a is None) - (b is None)
            else:
                result = _compare(a, b) * (-1 if descending else 1)
            if result:
                return result
        return 0

    return sorted(results, key=functools.cmp_to_key(compare))[:limit]


# Calling the engine as the API does


def _params(query: str | dict) -> QueryDict | dict:
    # A query string is parsed as Django parses a request's; a dict passes values verbatim.
    return QueryDict(query) if isinstance(query, str) else query


def get_rows(spec: DatasetSpec, query: str | dict, *, forced: dict | None = None) -> dict:
    """{"count", "rows"} for query parameters, through parse, compile and execute."""
    page = run_rows(spec, parse_rows(spec, _params(query), forced=forced))
    return {"count": page.count, "rows": page.rows}


def get_aggregate(
    spec: DatasetSpec, query: str | dict, *, forced: dict | None = None
) -> list[dict]:
    """Aggregate results for query parameters."""
    return run_aggregate(spec, parse_aggregate(spec, _params(query), forced=forced))


def approx(value: Any) -> Any:
    """`value` with every float compared approximately, however deeply nested."""
    if isinstance(value, dict):
        return {key: approx(item) for key, item in value.items()}
    if isinstance(value, list):
        return [approx(item) for item in value]
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-9)
    return value
