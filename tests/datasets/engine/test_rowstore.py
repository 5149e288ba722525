"""The row store answers a row by key exactly as DuckDB does, or leaves the answer to DuckDB."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import math
import os
import threading
from decimal import Decimal

import duckdb
import pytest

from datasets.engine import execute, rowstore
from datasets.engine.connections import duckdb_files
from datasets.engine.errors import NotFound
from datasets.engine.parse import parse_forced, parse_key_value
from datasets.engine.spec import ColumnSpec, DatasetSpec
from tests.datasets.engine.sales_table import ROWS, create_duckdb_file, dataset, record


@pytest.fixture(autouse=True)
def _forget_stores():
    yield
    rowstore.forget()


@pytest.fixture(scope="module")
def sales_file(tmp_path_factory) -> str:
    """The engine suite's sales rows in a DuckDB file, and its row store beside it."""
    path = str(tmp_path_factory.mktemp("rowstore") / "v1.duckdb")
    create_duckdb_file(path)
    assert rowstore.build(path, "data", "id")
    yield path
    duckdb_files.close(path)


@pytest.fixture
def stored(sales_file) -> DatasetSpec:
    return dataset(file_path=sales_file)


def by_duckdb(spec: DatasetSpec, raw_key: str, forced: dict | None = None):
    """The answer of the DuckDB path: the row, or NotFound."""
    real = rowstore.fetch_row
    rowstore.fetch_row = lambda *args, **kwargs: None
    try:
        return answer(spec, raw_key, forced)
    finally:
        rowstore.fetch_row = real


def answer(spec: DatasetSpec, raw_key: str, forced: dict | None = None):
    try:
        return execute.run_row(spec, raw_key, parse_forced(spec, forced or {}))
    except NotFound as error:
        return ("not found", error.message)


def served_by_store(spec: DatasetSpec, raw_key: str, forced: dict | None = None) -> bool:
    key = parse_key_value(spec, raw_key)
    return rowstore.fetch_row(spec, key, parse_forced(spec, forced or {})) is not None


def replaced(spec: DatasetSpec, **changes: dict) -> DatasetSpec:
    """The spec with some columns changed as an admin would (by API name)."""
    columns = tuple(
        dataclasses.replace(column, **changes[column.name]) if column.name in changes else column
        for column in spec.all_columns
    )
    return dataclasses.replace(spec, all_columns=columns)


# Every row, every column type (integer, date, datetime, string, decimal, boolean, NULLs), PII


def test_every_row_is_the_duckdb_answer(stored):
    for row in ROWS:
        key = str(row["id"])
        assert served_by_store(stored, key)
        assert answer(stored, key) == by_duckdb(stored, key) == record(row)


def test_the_store_keeps_every_value_as_duckdb_returns_it(stored):
    values = rowstore.fetch_row(stored, 9)[0]
    names = [column.physical for column in stored.columns]
    cursor = duckdb_files.cursor(stored.file_path)
    expected = cursor.execute(
        f"SELECT {', '.join(f'{chr(34)}{n}{chr(34)}' for n in names)} FROM data WHERE id = 9"
    ).fetchall()[0]
    assert values == expected
    assert [type(value) for value in values] == [type(value) for value in expected]


@pytest.mark.parametrize(
    "changes",
    [
        {"label": {"pii": "hide"}, "notes": {"exposed": False}},
        {"region": {"pii": "mask"}, "email": {"pii": "none"}, "secret": {"pii": "none"}},
        {"customer": {"pii": "none"}, "label": {"pii": "hash"}, "day": {"pii": "mask"}},
        {"price": {"type": "string"}, "active": {"type": "integer"}, "moment": {"type": "date"}},
    ],
)
def test_column_changes_apply_without_rebuilding(stored, changes):
    spec = replaced(stored, **changes)
    for key in ("1", "9", "40", "84"):
        assert served_by_store(spec, key)
        assert answer(spec, key) == by_duckdb(spec, key)
    assert "label" not in answer(replaced(stored, label={"pii": "hide"}), "9")


@pytest.mark.parametrize(
    "key",
    ["0", "85", "-1", "abc", "9.5", "", " ", "1 OR 1=1", "9223372036854775808", "1099511627776"],
)
def test_missing_and_malformed_keys_are_not_found(stored, key):
    assert answer(stored, key)[0] == "not found"
    assert answer(stored, key) == by_duckdb(stored, key)


# Row filters


@pytest.mark.parametrize(
    "forced",
    [
        {"region": "EU"},
        {"secret": "secret-5"},  # a hidden column
        {"active": "true"},
        {"day": "2023-01-02"},
        {"moment": "2024-04-01T00:00:01"},
        {"qty": "7"},
        {"region": "EU", "active": "false"},
    ],
)
def test_row_filters_give_the_duckdb_answer(stored, forced):
    found = 0
    for row in ROWS:
        key = str(row["id"])
        assert served_by_store(stored, key, forced)
        mine = answer(stored, key, forced)
        assert mine == by_duckdb(stored, key, forced)
        found += isinstance(mine, dict)
    assert 0 < found < len(ROWS)


def test_a_key_outside_its_row_filter_is_not_found(stored):
    inside = next(row["id"] for row in ROWS if row["region"] == "EU")
    outside = next(row["id"] for row in ROWS if row["region"] not in ("EU", None))
    assert answer(stored, str(inside), {"region": "EU"})["id"] == inside
    assert answer(stored, str(outside), {"region": "EU"}) == by_duckdb(
        stored, str(outside), {"region": "EU"}
    )
    assert answer(stored, str(outside), {"region": "EU"})[0] == "not found"


def test_a_filter_duckdb_compares_its_own_way_is_left_to_duckdb(stored):
    # DuckDB compares a DECIMAL column with a number as doubles: its answer, not Python's.
    forced = {"price": "334.71"}
    assert not served_by_store(stored, "9", forced)
    assert answer(stored, "9", forced) == by_duckdb(stored, "9", forced)
    assert answer(stored, "9", forced)["id"] == 9


def test_a_key_whose_type_changed_is_left_to_duckdb(stored):
    spec = replaced(stored, id={"type": "string"})
    assert not served_by_store(spec, "9")
    assert answer(spec, "9") == by_duckdb(spec, "9")
    assert answer(spec, "9")["id"] == "9"


# Keys of each type, values of every kind the store keeps


def _file(tmp_path, name: str, create: str, rows: list[tuple]) -> str:
    path = str(tmp_path / name)
    connection = duckdb.connect(path)
    try:
        connection.execute(create)
        connection.executemany(
            f"INSERT INTO data VALUES ({', '.join('?' * len(rows[0]))})", [list(r) for r in rows]
        )
    finally:
        connection.close()
    return path


def _spec(path: str, key: str, columns: list[tuple[str, str]]) -> DatasetSpec:
    return DatasetSpec(
        id=2,
        slug="things",
        title="Things",
        description="",
        table="data",
        file_path=path,
        primary_key=key,
        all_columns=tuple(ColumnSpec(name=n, physical=n, type=t) for n, t in columns),
    )


@pytest.mark.parametrize(
    ("sql_type", "type_", "values", "keys"),
    [
        (
            "VARCHAR",
            "string",
            ["a", "B", "Zoë", "1", "a b", "日本"],
            ["a", "Zoë", "1", "b", "A", " a"],
        ),
        (
            "DATE",
            "date",
            [dt.date(2024, 1, 1), dt.date(999, 12, 31), dt.date(2024, 2, 29)],
            [
                "2024-01-01",
                "0999-12-31",
                "2024-02-29",
                "2024-1-1",
                "2024-01-01T00:00",
                "2023-01-01",
            ],
        ),
        (
            "TIMESTAMP",
            "datetime",
            [dt.datetime(2024, 1, 1), dt.datetime(2024, 6, 30, 23, 59, 59, 500000)],
            [
                "2024-01-01",
                "2024-01-01T00:00:00",
                "2024-01-01 00:00",
                "2024-06-30T23:59:59.5",
                "2024-06-30T23:59:59",
                "2024-01-01T01:00:00+01:00",
                "2024-01-01T00:00:00Z",
            ],
        ),  # fmt: skip
        ("BIGINT", "integer", [1, -5, 2**62], ["1", "-5", "+1", " 1", str(2**62), "2", "01"]),
    ],
)
def test_keys_of_each_type(tmp_path, sql_type, type_, values, keys):
    rows = [(value, f"row {index}") for index, value in enumerate(values)]
    path = _file(
        tmp_path, "v1.duckdb", f"CREATE TABLE data (k {sql_type} PRIMARY KEY, v VARCHAR)", rows
    )
    assert rowstore.build(path, "data", "k")
    spec = _spec(path, "k", [("k", type_), ("v", "string")])
    found = 0
    for key in keys:
        mine = answer(spec, key)
        assert mine == by_duckdb(spec, key), key
        if isinstance(mine, dict):
            assert served_by_store(spec, key)
            found += 1
    assert found >= 2


def test_values_of_every_kind_the_store_keeps(tmp_path):
    create = (
        "CREATE TABLE data (id INTEGER PRIMARY KEY, f DOUBLE, r FLOAT, d DECIMAL(20, 4), "
        "h HUGEINT, u UBIGINT, b BOOLEAN, t TIME, g UUID, x BLOB, n TIMESTAMP_NS, s SMALLINT)"
    )
    rows = [
        (1, float("nan"), 0.1, Decimal("1.5000"), 2**100, 2**64 - 1, True, dt.time(10, 0, 1),
         "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", b"\x00ab", "2024-01-01 10:00:00.123456789", -3),
        (2, -0.0, float("inf"), Decimal("-0.0001"), -(2**100), 0, False, dt.time(0, 0),
         None, b"", None, None),
        (3, None, None, None, None, None, None, None, None, None, None, None),
    ]  # fmt: skip
    path = _file(tmp_path, "v1.duckdb", create, rows)
    assert rowstore.build(path, "data", "id")
    names = ["id", "f", "r", "d", "h", "u", "b", "t", "g", "x", "n", "s"]
    cursor = duckdb_files.cursor(path)
    spec = _spec(path, "id", [("id", "integer")] + [(name, "string") for name in names[1:]])
    for key in (1, 2, 3):
        values = rowstore.fetch_row(spec, key)
        assert values is not None
        expected = cursor.execute(f"SELECT * FROM data WHERE id = {key}").fetchall()[0]
        for mine, theirs in zip(values[0], expected, strict=True):
            assert type(mine) is type(theirs)
            if isinstance(theirs, float) and math.isnan(theirs):
                assert math.isnan(mine)
            else:
                assert mine == theirs and str(mine) == str(theirs)


def test_a_column_the_store_does_not_keep_is_left_to_duckdb(tmp_path):
    path = _file(
        tmp_path,
        "v1.duckdb",
        "CREATE TABLE data (id BIGINT PRIMARY KEY, span INTERVAL, v VARCHAR)",
        [(1, dt.timedelta(days=2), "x")],
    )
    assert rowstore.build(path, "data", "id")
    spec = _spec(path, "id", [("id", "integer"), ("span", "string"), ("v", "string")])
    assert not served_by_store(spec, "1")
    assert (
        answer(spec, "1") == by_duckdb(spec, "1") == {"id": 1, "span": "2 days, 0:00:00", "v": "x"}
    )
    hidden = replaced(spec, span={"pii": "hide"})
    assert served_by_store(hidden, "1")
    assert answer(hidden, "1") == {"id": 1, "v": "x"}


# Absent, being built, built once


def test_lookups_use_duckdb_until_the_store_is_in_place(tmp_path):
    path = str(tmp_path / "v1.duckdb")
    create_duckdb_file(path)
    spec = dataset(file_path=path)
    store = rowstore.store_path(path)
    assert not os.path.exists(store)
    assert rowstore.fetch_row(spec, 9) is None
    assert answer(spec, "9") == record(ROWS[8])

    # Another builder holds the dataset's lock: this one leaves it alone, DuckDB still answers.
    os.makedirs(os.path.dirname(store))
    _, building = rowstore.version_files(store)
    with open(building, "wb") as half_written:
        half_written.write(b"half written")
    folder = os.open(os.path.dirname(store), os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        assert rowstore.build(path, "data", "id") is False
        assert not os.path.exists(store)
        assert rowstore.fetch_row(spec, 9) is None
        assert answer(spec, "9") == record(ROWS[8])
    finally:
        os.close(folder)

    # The lock released, the next builder replaces the leftover and renames the store into place.
    assert rowstore.build(path, "data", "id") is True
    assert os.path.exists(store) and not os.path.exists(building)
    assert rowstore.fetch_row(spec, 9) is not None
    assert answer(spec, "9") == record(ROWS[8])
    assert rowstore.build(path, "data", "id") is True  # already there: nothing written


def test_a_store_that_cannot_be_built_leaves_duckdb_answering(tmp_path):
    path = str(tmp_path / "v1.duckdb")
    create_duckdb_file(path)
    assert rowstore.build(path, "data", "nope") is False
    _, building = rowstore.version_files(rowstore.store_path(path))
    assert not os.path.exists(building)
    assert answer(dataset(file_path=path), "9") == record(ROWS[8])


def test_a_version_in_the_data_directory_gets_its_store_on_demand(settings):
    folder = settings.GATEWAY_DATA_DIR / "datasets" / "sales"
    folder.mkdir(parents=True)
    path = str(folder / "v1.duckdb")
    create_duckdb_file(path)
    spec = dataset(file_path=path)

    assert answer(spec, "9") == record(ROWS[8])  # DuckDB answers, and a build starts
    for thread in threading.enumerate():
        if thread.name == "gateway-row-store":
            thread.join(timeout=60)
    assert os.path.exists(rowstore.store_path(path))
    assert served_by_store(spec, "9")
    assert answer(spec, "9") == record(ROWS[8])


# Imports


def _wait_for_builders() -> None:
    for thread in threading.enumerate():
        if thread.name == "gateway-row-store":
            thread.join(timeout=60)


@pytest.mark.django_db
def test_an_import_builds_the_store_and_a_replacement_retires_it(tmp_path):
    from datasets.selectors import dataset_spec
    from datasets.services import dataset_import

    csv = tmp_path / "a.csv"
    csv.write_text("code,region,amount,day\nA1,EU,1.5,2024-01-02\nB2,US,,2024-02-03\n")
    dataset = dataset_import(path=csv, slug="things", primary_key="code")
    _wait_for_builders()
    first = rowstore.store_path(str(dataset.file_path()))
    assert os.path.exists(first)
    spec = dataset_spec("things")
    assert served_by_store(spec, "A1")
    assert answer(spec, "A1") == by_duckdb(spec, "A1")
    assert answer(spec, "A1") == {"code": "A1", "region": "EU", "amount": 1.5, "day": "2024-01-02"}
    assert answer(spec, "B2", {"region": "EU"}) == by_duckdb(spec, "B2", {"region": "EU"})
    assert answer(spec, "B2", {"region": "EU"})[0] == "not found"

    for _ in range(2):
        dataset = dataset_import(path=csv, slug="things", replace=True)
        _wait_for_builders()
    # The current and the previous version keep their stores; older ones go with their files.
    assert dataset.version == 3
    assert not os.path.exists(first)
    assert os.path.exists(rowstore.store_path(str(dataset.file_path(2))))
    assert os.path.exists(rowstore.store_path(str(dataset.file_path(3))))
