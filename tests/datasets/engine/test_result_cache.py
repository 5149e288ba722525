"""Answers on uploads (rows by key, pages, counts, aggregates): DuckDB's own, kept in the process
and given again exactly; databases served where they live are asked every time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import sqlite3
from decimal import Decimal

import duckdb
import pytest

from datasets.engine import execute
from datasets.engine.connections import duckdb_files
from datasets.engine.errors import NotFound
from datasets.engine.parse import parse_forced
from datasets.engine.result_cache import ResultCache, result_cache
from datasets.engine.spec import ColumnSpec, DatasetSpec
from tests.datasets.engine.conftest import source
from tests.datasets.engine.sales_table import (
    ROWS,
    create_duckdb_file,
    create_sql_table,
    dataset,
    get_aggregate,
    get_rows,
    ids,
    record,
)


@pytest.fixture(autouse=True)
def _empty_cache():
    result_cache.clear()
    yield
    result_cache.clear()


@pytest.fixture(scope="module")
def sales_file(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("rowcache") / "v1.duckdb")
    create_duckdb_file(path)
    yield path
    duckdb_files.close(path)


@pytest.fixture
def sales(sales_file) -> DatasetSpec:
    return dataset(file_path=sales_file)


@pytest.fixture
def queries(monkeypatch) -> list:
    """The statements that reached DuckDB."""
    sent: list = []
    real = execute._run_duckdb

    def run(spec, sql, params):
        sent.append(sql)
        return real(spec, sql, params)

    monkeypatch.setattr(execute, "_run_duckdb", run)
    return sent


def answer(spec: DatasetSpec, raw_key: str, forced: dict | None = None):
    try:
        return execute.run_row(spec, raw_key, parse_forced(spec, forced or {}))
    except NotFound as error:
        return ("not found", error.message)


def by_duckdb(spec: DatasetSpec, raw_key: str, forced: dict | None = None):
    """The answer with nothing kept: DuckDB's."""
    result_cache.clear()
    try:
        return answer(spec, raw_key, forced)
    finally:
        result_cache.clear()


def replaced(spec: DatasetSpec, **changes: dict) -> DatasetSpec:
    """The spec with some columns changed as an admin would (by API name)."""
    columns = tuple(
        dataclasses.replace(column, **changes[column.name]) if column.name in changes else column
        for column in spec.all_columns
    )
    return dataclasses.replace(spec, all_columns=columns)


# Every row, every column type (integer, date, datetime, string, decimal, boolean, NULLs), PII


def test_a_row_asked_again_is_answered_without_duckdb(sales, queries):
    for row in ROWS:
        key = str(row["id"])
        assert answer(sales, key) == record(row)
    assert len(queries) == len(ROWS)
    for row in ROWS:
        assert answer(sales, str(row["id"])) == record(row)
    assert len(queries) == len(ROWS)  # every second answer was kept


def test_a_missing_key_is_kept_as_missing(sales, queries):
    assert answer(sales, "85")[0] == "not found"
    assert answer(sales, "85")[0] == "not found"
    assert len(queries) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"label": {"pii": "hide"}, "notes": {"exposed": False}},
        {"region": {"pii": "mask"}, "email": {"pii": "none"}, "secret": {"pii": "none"}},
        {"customer": {"pii": "none"}, "label": {"pii": "hash"}, "day": {"pii": "mask"}},
        {"price": {"type": "string"}, "active": {"type": "integer"}, "moment": {"type": "date"}},
    ],
)
def test_a_column_edited_after_a_lookup_applies_at_once(sales, changes):
    for key in ("1", "9", "40", "84"):
        answer(sales, key)  # kept under the columns as they were
    spec = replaced(sales, **changes)
    for key in ("1", "9", "40", "84"):
        assert answer(spec, key) == by_duckdb(spec, key)
    answer(sales, "9")
    assert "label" not in answer(replaced(sales, label={"pii": "hide"}), "9")


def test_masked_values_stay_masked_when_kept(sales):
    first, again = answer(sales, "9"), answer(sales, "9")
    assert first == again == record(ROWS[8])
    assert again["email"] != ROWS[8]["email"] and "secret" not in again


@pytest.mark.parametrize(
    "key",
    ["0", "85", "-1", "abc", "9.5", "", " ", "1 OR 1=1", "9223372036854775808", "1099511627776"],
)
def test_missing_and_malformed_keys_are_not_found(sales, key):
    assert answer(sales, key)[0] == "not found"
    assert answer(sales, key) == by_duckdb(sales, key)


# Row filters


@pytest.mark.parametrize(
    "forced",
    [
        {"region": "EU"},
        {"secret": "secret-5"},  # a hidden column
        {"active": "true"},
        {"day": "2023-01-02"},
        {"moment": "2024-04-01T00:00:01"},
        {"price": "334.71"},
        {"region": "EU", "active": "false"},
    ],
)
def test_a_row_kept_for_one_caller_is_not_given_to_a_filtered_one(sales, forced):
    found = 0
    for row in ROWS:
        key = str(row["id"])
        answer(sales, key)  # an unfiltered caller's lookup, kept
        mine = answer(sales, key, forced)
        assert mine == by_duckdb(sales, key, forced)
        found += isinstance(mine, dict)
        assert answer(sales, key, forced) == mine  # and kept for the filtered caller too
    assert 0 < found < len(ROWS)


def test_a_key_outside_its_row_filter_is_not_found_after_an_open_lookup(sales):
    outside = next(row["id"] for row in ROWS if row["region"] not in ("EU", None))
    assert answer(sales, str(outside))["id"] == outside
    assert answer(sales, str(outside), {"region": "EU"})[0] == "not found"


# Keys of each type, values of every kind


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
        ("VARCHAR", "string", ["a", "B", "Zoë", "1", "a b", "日本"], ["a", "Zoë", "1", "b", "A", " a"]),
        (
            "DATE",
            "date",
            [dt.date(2024, 1, 1), dt.date(999, 12, 31), dt.date(2024, 2, 29)],
            ["2024-01-01", "0999-12-31", "2024-02-29", "2024-1-1", "2024-01-01T00:00", "2023-01-01"],
        ),
        (
            "TIMESTAMP",
            "datetime",
            [dt.datetime(2024, 1, 1), dt.datetime(2024, 6, 30, 23, 59, 59, 500000)],
            ["2024-01-01", "2024-01-01T00:00:00", "2024-01-01 00:00", "2024-06-30T23:59:59.5",
             "2024-06-30T23:59:59", "2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00Z"],
        ),
        ("BIGINT", "integer", [1, -5, 2**62], ["1", "-5", "+1", " 1", str(2**62), "2", "01"]),
    ],
)  # fmt: skip
def test_keys_of_each_type(tmp_path, sql_type, type_, values, keys):
    rows = [(value, f"row {index}") for index, value in enumerate(values)]
    path = _file(
        tmp_path, "v1.duckdb", f"CREATE TABLE data (k {sql_type} PRIMARY KEY, v VARCHAR)", rows
    )
    spec = _spec(path, "k", [("k", type_), ("v", "string")])
    found = 0
    for key in keys:
        fresh = by_duckdb(spec, key)
        answer(spec, key)
        assert answer(spec, key) == fresh, key
        found += isinstance(fresh, dict)
    assert found >= 2


def test_kept_values_are_duckdbs_own_for_every_kind(tmp_path):
    create = (
        "CREATE TABLE data (id INTEGER PRIMARY KEY, f DOUBLE, r FLOAT, d DECIMAL(20, 4), "
        "h HUGEINT, u UBIGINT, b BOOLEAN, t TIME, g UUID, x BLOB, n TIMESTAMP_NS, s SMALLINT, "
        "z TIMESTAMPTZ, span INTERVAL, l INTEGER[])"
    )
    rows = [
        (1, float("nan"), 0.1, Decimal("1.5000"), 2**100, 2**64 - 1, True, dt.time(10, 0, 1),
         "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", b"\x00ab", "2024-01-01 10:00:00.123456789", -3,
         "2024-01-01 10:00:00+02", dt.timedelta(days=2), [1, None]),
        (2, -0.0, float("inf"), Decimal("-0.0001"), -(2**100), 0, False, dt.time(0, 0),
         None, b"", None, None, None, None, []),
        (3, None, None, None, None, None, None, None, None, None, None, None, None, None, None),
    ]  # fmt: skip
    path = _file(tmp_path, "v1.duckdb", create, rows)
    names = ["id", "f", "r", "d", "h", "u", "b", "t", "g", "x", "n", "s", "z", "span", "l"]
    spec = _spec(path, "id", [("id", "integer")] + [(name, "string") for name in names[1:]])
    cursor = duckdb_files.cursor(path)
    for key in (1, 2, 3):
        fresh = by_duckdb(spec, str(key))
        answer(spec, str(key))
        assert len(result_cache) == 1
        (kept,) = result_cache._entries.values()
        expected = cursor.execute(f"SELECT * FROM data WHERE id = {key}").fetchall()[0]
        for mine, theirs in zip(kept[0][0], expected, strict=True):
            assert type(mine) is type(theirs)
            if isinstance(theirs, float) and math.isnan(theirs):
                assert math.isnan(mine)
            else:
                assert mine == theirs and str(mine) == str(theirs)
        assert str(answer(spec, str(key))) == str(fresh)  # NaN included
        result_cache.clear()


# Pages, counts and aggregates


PAGE = "region=EU&price__gt=100&ordering=-day&limit=5"
Q2 = "day__gte=2024-04-01&day__lte=2024-06-30&group_by=region&metrics=sum:price,count&ordering=-sum_price"


def fresh_rows(spec: DatasetSpec, query: str, forced: dict | None = None) -> dict:
    result_cache.clear()
    try:
        return get_rows(spec, query, forced=forced)
    finally:
        result_cache.clear()


def test_a_page_and_its_count_asked_again_are_answered_without_duckdb(sales, queries):
    first = get_rows(sales, PAGE)
    assert first["count"] > 5 and len(queries) == 2  # the page and its count
    assert get_rows(sales, PAGE) == first and len(queries) == 2
    assert get_rows(sales, PAGE + "&offset=5") == fresh_rows(sales, PAGE + "&offset=5")


def test_an_aggregate_asked_again_is_answered_without_duckdb(sales, queries):
    first = get_aggregate(sales, Q2)
    assert first and len(queries) == 1
    assert get_aggregate(sales, Q2) == first and len(queries) == 1
    assert get_aggregate(sales, Q2 + "&region=EU") != first and len(queries) == 2


@pytest.mark.parametrize(
    ("forced", "keeps"),
    [
        ({"region": "EU"}, lambda row: row["region"] == "EU"),
        ({"active": "true"}, lambda row: row["active"] is True),
        ({"secret": "secret-5"}, lambda row: row["secret"] == "secret-5"),  # a hidden column
    ],
)
def test_a_page_kept_for_one_caller_is_not_given_to_a_filtered_one(sales, forced, keeps):
    assert get_rows(sales, "ordering=id&limit=10")["count"] == len(ROWS)  # kept, unfiltered
    mine = get_rows(sales, "ordering=id&limit=10", forced=forced)
    assert mine == fresh_rows(sales, "ordering=id&limit=10", forced)
    assert [row["id"] for row in mine["rows"]] == ids(keeps)[:10]
    assert mine["count"] == len(ids(keeps)) < len(ROWS)


def test_a_hashed_or_masked_column_stays_protected_when_kept(sales):
    grouped = get_aggregate(sales, "group_by=customer&metrics=count")
    assert get_aggregate(sales, "group_by=customer&metrics=count") == grouped
    shown = {row["customer"] for row in grouped}
    assert not shown & {row["customer"] for row in ROWS}  # digests only, kept or not
    exposed = replaced(sales, customer={"pii": "none"})
    assert {
        row["customer"] for row in get_aggregate(exposed, "group_by=customer&metrics=count")
    } <= {row["customer"] for row in ROWS}


def test_a_live_database_is_asked_every_time(tmp_path, queries):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    create_sql_table(url)
    spec = dataset(source=source("sqlite", url, id_=91099))
    before = get_rows(spec, "limit=1")["count"]
    with sqlite3.connect(tmp_path / "live.db") as live:
        live.execute(f"DELETE FROM {spec.table} WHERE id <= 10")
    assert get_rows(spec, "limit=1")["count"] == before - 10
    assert not queries and len(result_cache) == 0


# Bounded, per version


def test_the_cache_keeps_to_its_size_least_recently_used_first(settings):
    settings.GATEWAY_RESULT_CACHE_MB = 1
    cache = ResultCache()
    big = [("x" * 60_000,)]  # 17 fit in a megabyte, each under a sixteenth of it
    for number in range(17):
        cache.put("v1.duckdb", number, big)
    assert len(cache) == 17 and cache.get("v1.duckdb", 16) == tuple(big)
    cache.get("v1.duckdb", 0)  # used: kept over the older ones
    cache.put("v1.duckdb", 17, big)
    cache.put("v1.duckdb", 18, big)
    assert len(cache) == 17 and cache.size <= 1024 * 1024
    assert cache.get("v1.duckdb", 1) is None and cache.get("v1.duckdb", 2) is None
    assert cache.get("v1.duckdb", 0) is not None and cache.get("v1.duckdb", 18) is not None


def test_an_answer_larger_than_a_sixteenth_of_the_cache_is_not_kept(settings):
    settings.GATEWAY_RESULT_CACHE_MB = 1
    cache = ResultCache()
    cache.put("v1.duckdb", "small", [(1,)])
    cache.put("v1.duckdb", "large", [("x" * 70_000,)])
    cache.put("v1.duckdb", "many", [(1,)] * 2_000)
    assert cache.get("v1.duckdb", "large") is None and cache.get("v1.duckdb", "many") is None
    assert cache.get("v1.duckdb", "small") == ((1,),) and len(cache) == 1


def test_a_cache_of_no_size_keeps_nothing(settings, sales, queries):
    settings.GATEWAY_RESULT_CACHE_MB = 0
    assert answer(sales, "9") == answer(sales, "9") == record(ROWS[8])
    assert len(queries) == 2 and len(result_cache) == 0


def test_a_version_file_that_leaves_the_host_is_forgotten():
    cache = ResultCache()
    cache.put("a/v1.duckdb", 1, [(1,)])
    cache.put("a/v2.duckdb", 1, [(2,)])
    cache.forget_files(["a/v1.duckdb"])
    assert cache.get("a/v1.duckdb", 1) is None and cache.get("a/v2.duckdb", 1) == ((2,),)
    assert cache.size == cache._entries[("a/v2.duckdb", 1)][1]


# Imports


@pytest.mark.django_db
def test_a_new_version_answers_its_own_rows_and_nothing_is_written_beside_it(tmp_path):
    from datasets.selectors import dataset_spec
    from datasets.services import dataset_import

    csv = tmp_path / "a.csv"
    csv.write_text("code,region,amount,day\nA1,EU,1.5,2024-01-02\nB2,US,,2024-02-03\n")
    dataset = dataset_import(path=csv, slug="things", primary_key="code")
    assert sorted(entry.name for entry in dataset.directory.iterdir()) == [dataset.file_path().name]
    spec = dataset_spec("things")
    assert answer(spec, "A1") == {"code": "A1", "region": "EU", "amount": 1.5, "day": "2024-01-02"}
    assert answer(spec, "B2", {"region": "EU"})[0] == "not found"

    csv.write_text("code,region,amount,day\nA1,EU,2.5,2024-01-02\nB2,US,,2024-02-03\n")
    dataset_import(path=csv, slug="things", replace=True)
    assert answer(dataset_spec("things"), "A1")["amount"] == 2.5
