"""Rows queries on every backend: each case is checked against a Python reference computed from the
same rows, and every backend's full answer against DuckDB's."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable

import pytest

from datasets.engine.connections import source_engine
from datasets.engine.errors import NotFound, QueryError
from datasets.engine.execute import run_row, run_rows
from datasets.engine.parse import parse_forced, parse_rows
from datasets.engine.pii import digest
from datasets.engine.spec import ColumnSpec
from tests.datasets.engine.conftest import source
from tests.datasets.engine.sales_table import (
    MAX_PAGE,
    ROWS,
    VISIBLE,
    approx,
    dataset,
    get_rows,
    ids,
    ordered_ids,
    record,
)

N = len(ROWS)


def having(name: str, test: Callable) -> Callable[[dict], bool]:
    """Rows whose `name` is not NULL and passes `test` (SQL's three-valued logic)."""
    return lambda row: row[name] is not None and test(row[name])


def case(query: str | dict, expected: Callable[[dict], bool], *, mysql=None, sqlite=None, id=None):
    """A filter case; `mysql`/`sqlite` give the reference where that backend legitimately differs."""
    differs = {
        name: reference for name, reference in (("mysql", mysql), ("sqlite", sqlite)) if reference
    }
    return pytest.param(query, expected, differs, id=id or str(query))


def insensitive(needle: str, *names: str) -> Callable[[dict], bool]:
    return lambda row: any(needle.lower() in (row[name] or "").lower() for name in names)


D = dt.date
T = dt.datetime

FILTER_CASES = [
    # string
    case("region=EU", lambda r: r["region"] == "EU"),
    case("region__ne=EU", lambda r: r["region"] != "EU", id="ne keeps NULLs"),
    case("region__in=EU,APAC", lambda r: r["region"] in ("EU", "APAC")),
    case("region__isnull=true", lambda r: r["region"] is None),
    case("region__isnull=false", lambda r: r["region"] is not None),
    case({"label": "O'Brien"}, lambda r: r["label"] == "O'Brien"),
    case({"label": "Zoë"}, lambda r: r["label"] == "Zoë"),
    case({"label": "日本語"}, lambda r: r["label"] == "日本語"),
    case({"label": "50% off"}, lambda r: r["label"] == "50% off"),
    case({"label__in": "a_b,x%y"}, lambda r: r["label"] in ("a_b", "x%y")),
    case({"label__contains": "%"}, having("label", lambda v: "%" in v)),
    case({"label__contains": "_"}, having("label", lambda v: "_" in v)),
    case({"label__contains": "a_b"}, having("label", lambda v: "a_b" in v), id="_ is literal"),
    case({"label__contains": "0%"}, having("label", lambda v: "0%" in v), id="% is literal"),
    case({"label__contains": "\\"}, having("label", lambda v: "\\" in v), id="backslash"),
    case({"label__contains": "'B"}, having("label", lambda v: "'B" in v)),
    case({"label__contains": "本"}, having("label", lambda v: "本" in v)),
    case({"label__contains": "lain"}, having("label", lambda v: "lain" in v)),
    # MariaDB's default collation (utf8mb4_general_ci) compares case-insensitively.
    case(
        {"label__contains": "Plain"},
        having("label", lambda v: "Plain" in v),
        mysql=having("label", lambda v: "plain" in v.lower()),
        id="contains is case-sensitive",
    ),
    case({"label__icontains": "PLAIN"}, having("label", lambda v: "plain" in v.lower())),
    case({"label__icontains": "O'b"}, having("label", lambda v: "o'b" in v.lower())),
    case({"label__icontains": "x%Y"}, having("label", lambda v: "x%y" in v.lower())),
    case({"label__icontains": "A_B"}, having("label", lambda v: "a_b" in v.lower())),
    case({"label__startswith": "a"}, having("label", lambda v: v.startswith("a"))),
    case({"label__startswith": "a_"}, having("label", lambda v: v.startswith("a_"))),
    case({"label__startswith": "50%"}, having("label", lambda v: v.startswith("50%"))),
    case({"label__startswith": "Zo"}, having("label", lambda v: v.startswith("Zo"))),
    case("label__isnull=true", lambda r: r["label"] is None),
    case("notes__isnull=false", lambda r: r["notes"] is not None),
    # integer
    case("qty=5", lambda r: r["qty"] == 5),
    case("qty=-3", lambda r: r["qty"] == -3),
    case("qty__gt=10", having("qty", lambda v: v > 10)),
    case("qty__gte=10", having("qty", lambda v: v >= 10)),
    case("qty__lt=0", having("qty", lambda v: v < 0)),
    case("qty__lte=0", having("qty", lambda v: v <= 0)),
    case("qty__in=1,2,-3", lambda r: r["qty"] in (1, 2, -3)),
    case("qty__isnull=true", lambda r: r["qty"] is None),
    case("qty__isnull=false", lambda r: r["qty"] is not None),
    # number
    case("price__gt=500", having("price", lambda v: v > 500)),
    case("price__gte=500.5", having("price", lambda v: v >= 500.5)),
    case("price__lt=100", having("price", lambda v: v < 100)),
    case("price__lte=100.25", having("price", lambda v: v <= 100.25)),
    case(f"price={ROWS[4]['price']}", lambda r: r["price"] == ROWS[4]["price"]),
    case(
        f"price__in={ROWS[1]['price']},{ROWS[2]['price']}",
        lambda r: r["price"] in (ROWS[1]["price"], ROWS[2]["price"]),
    ),
    case("price__isnull=true", lambda r: r["price"] is None),
    # boolean
    case("active=true", lambda r: r["active"] is True),
    case("active=false", lambda r: r["active"] is False),
    case("active=1", lambda r: r["active"] is True),
    case("active__ne=true", lambda r: r["active"] is not True),
    case("active__isnull=true", lambda r: r["active"] is None),
    # date
    case("day=2024-04-01", lambda r: r["day"] == D(2024, 4, 1)),
    case("day__gt=2024-06-30", having("day", lambda v: v > D(2024, 6, 30))),
    case("day__gte=2024-06-30", having("day", lambda v: v >= D(2024, 6, 30))),
    case("day__lt=2024-01-01", having("day", lambda v: v < D(2024, 1, 1))),
    case("day__lte=2024-03-31", having("day", lambda v: v <= D(2024, 3, 31))),
    case("day__in=2024-12-30,2021-01-03", lambda r: r["day"] in (D(2024, 12, 30), D(2021, 1, 3))),
    case("day__isnull=true", lambda r: r["day"] is None),
    case("day__year=2024", having("day", lambda v: v.year == 2024)),
    case("day__quarter=2", having("day", lambda v: v.month in (4, 5, 6))),
    case("day__quarter=4", having("day", lambda v: v.month in (10, 11, 12))),
    case("day__month=12", having("day", lambda v: v.month == 12)),
    case(
        "day__year=2024&day__quarter=1",
        having("day", lambda v: (v.year, v.month) < (2024, 4) and v.year == 2024),
    ),
    case(
        "day__gte=2024-04-01&day__lte=2024-06-30",
        having("day", lambda v: D(2024, 4, 1) <= v <= D(2024, 6, 30)),
        id="Q2 range",
    ),
    # datetime: a bare date means the whole day for eq/lte/gt, midnight for gte/lt
    case(
        "moment__lte=2024-06-30", having("moment", lambda v: v < T(2024, 7, 1)), id="lte whole day"
    ),
    case(
        "moment__gt=2024-06-30", having("moment", lambda v: v >= T(2024, 7, 1)), id="gt after day"
    ),
    case("moment__gte=2024-06-30", having("moment", lambda v: v >= T(2024, 6, 30))),
    case("moment__lt=2024-06-30", having("moment", lambda v: v < T(2024, 6, 30))),
    case("moment__lte=2024-06-30T12:00:00", having("moment", lambda v: v <= T(2024, 6, 30, 12))),
    case(
        "moment__gt=2024-06-30T23:59:58", having("moment", lambda v: v > T(2024, 6, 30, 23, 59, 58))
    ),
    case(
        "moment=2024-06-30",
        having("moment", lambda v: T(2024, 6, 30) <= v < T(2024, 7, 1)),
        id="eq whole day",
    ),
    case("moment=2024-07-01T00:00:00", lambda r: r["moment"] == T(2024, 7, 1)),
    case("moment=2024-06-30T23:59:59", lambda r: r["moment"] == T(2024, 6, 30, 23, 59, 59)),
    case(
        "moment__in=2024-07-01T00:00:00,2024-04-01T00:00:01",
        lambda r: r["moment"] in (T(2024, 7, 1), T(2024, 4, 1, 0, 0, 1)),
    ),
    case(
        "moment=2024-06-30T21:59:59-02:00",
        lambda r: r["moment"] == T(2024, 6, 30, 23, 59, 59),
        id="offset to UTC",
    ),
    case("moment__isnull=true", lambda r: r["moment"] is None),
    case("moment__year=2023", having("moment", lambda v: v.year == 2023)),
    case("moment__quarter=3", having("moment", lambda v: v.month in (7, 8, 9))),
    case("moment__month=6", having("moment", lambda v: v.month == 6)),
    # several filters combine with AND
    case(
        "region=EU&qty__gt=0&day__year=2024",
        lambda r: (
            r["region"] == "EU"
            and (r["qty"] or 0) > 0
            and r["day"] is not None
            and r["day"].year == 2024
        ),
    ),
    case("qty__gte=0&qty__lte=0", lambda r: r["qty"] == 0),
    case("region=EU&region=US", lambda r: False, id="repeated filter ANDs"),
    # search: case-insensitive substring over label and notes only (email is masked, secret hidden)
    case({"search": "off"}, insensitive("off", "label", "notes")),
    case({"search": "OFF"}, insensitive("off", "label", "notes")),
    case({"search": "%"}, insensitive("%", "label", "notes"), id="search % literal"),
    case({"search": "_"}, insensitive("_", "label", "notes"), id="search _ literal"),
    case({"search": "a_b"}, insensitive("a_b", "label", "notes")),
    case({"search": "o'brien"}, insensitive("o'brien", "label", "notes")),
    case({"search": "CASE"}, insensitive("case", "label", "notes")),
    case({"search": "\\"}, insensitive("\\", "label", "notes")),
    case({"search": "日本"}, insensitive("日本", "label", "notes")),
    case({"search": "example.com"}, lambda r: False, id="masked column not searched"),
    case({"search": "secret-1"}, lambda r: False, id="hidden column not searched"),
    # SQLite's lower() and LIKE fold ASCII letters only.
    case({"search": "ÜNÏCODE"}, insensitive("ünïcode", "label", "notes"), sqlite=lambda r: False),
    case(
        {"search": "off", "region": "EU"},
        lambda r: r["region"] == "EU" and insensitive("off", "label", "notes")(r),
    ),
    case({"search": ""}, lambda r: True, id="empty search ignored"),
]


@pytest.mark.parametrize(("query", "expected", "differs"), FILTER_CASES)
def test_filter_matches_python_reference_and_duckdb(sales, duck, query, expected, differs):
    params = {**query} if isinstance(query, dict) else query
    listing = (
        {**params, "ordering": "id", "limit": str(MAX_PAGE)}
        if isinstance(params, dict)
        else f"{params}&ordering=id&limit={MAX_PAGE}"
    )
    result = get_rows(sales, listing)
    reference = differs.get(sales.backend, expected)

    assert [row["id"] for row in result["rows"]] == ids(reference)
    assert result["count"] == len(ids(reference))
    assert result["rows"] == approx([record(ROWS[i - 1]) for i in ids(reference)])
    if sales.backend not in differs:
        assert result == approx(get_rows(duck, listing))


ORDERING_CASES = [
    ("qty", [("qty", False)]),
    ("-qty", [("qty", True)]),
    ("price", [("price", False)]),
    ("-price", [("price", True)]),
    ("day", [("day", False)]),
    ("-day", [("day", True)]),
    ("moment", [("moment", False)]),
    ("-moment", [("moment", True)]),
    ("region,-qty", [("region", False), ("qty", True)]),
    ("-region,price", [("region", True), ("price", False)]),
    ("active,-id", [("active", False), ("id", True)]),
    ("-active", [("active", True)]),
    ("-id", [("id", True)]),
]


@pytest.mark.parametrize(("ordering", "keys"), ORDERING_CASES, ids=[c[0] for c in ORDERING_CASES])
def test_ordering_puts_nulls_last_both_ways(sales, duck, ordering, keys):
    query = f"ordering={ordering}&limit={MAX_PAGE}"
    result = get_rows(sales, query)

    assert [row["id"] for row in result["rows"]] == ordered_ids(keys)
    assert result == approx(get_rows(duck, query))


def test_default_ordering_is_the_primary_key(sales):
    assert [row["id"] for row in get_rows(sales, f"limit={MAX_PAGE}")["rows"]] == ids(
        lambda r: True
    )


def test_ties_are_broken_by_the_primary_key_so_pages_never_overlap(sales):
    seen = []
    for offset in range(0, N, 7):
        seen += [
            row["id"] for row in get_rows(sales, f"ordering=region&limit=7&offset={offset}")["rows"]
        ]

    assert seen == ordered_ids([("region", False)])


FIELDS_CASES = [
    ("id,label", ["id", "label"]),
    ("label,id", ["label", "id"]),
    ("price,price,day", ["price", "day"]),
    ("email,customer", ["email", "customer"]),
    ("ref", ["ref"]),
    (" moment , active ", ["moment", "active"]),
]


@pytest.mark.parametrize(("fields", "keys"), FIELDS_CASES, ids=[c[0] for c in FIELDS_CASES])
def test_fields_select_columns_in_the_order_asked(sales, duck, fields, keys):
    query = {"fields": fields, "ordering": "id", "limit": "5"}
    result = get_rows(sales, query)

    assert [list(row) for row in result["rows"]] == [keys] * 5
    assert result["rows"] == approx([record(row, keys) for row in ROWS[:5]])
    assert result == approx(get_rows(duck, query))


def test_all_visible_columns_by_default_and_hidden_never(sales):
    result = get_rows(sales, "ordering=id&limit=100")

    assert all(list(row) == VISIBLE for row in result["rows"])
    assert "secret" not in VISIBLE


def test_pii_is_masked_and_hashed_in_rows(sales):
    row = get_rows(sales, "id=1&fields=email,customer")["rows"][0]

    assert row == {"email": "u***@example.com", "customer": digest("Customer 1")}


PAGINATION_CASES = [
    # (query, expected ids, expected count)
    ("limit=1", [1], N),
    (f"limit={MAX_PAGE}", list(range(1, N + 1)), N),
    ("limit=10&offset=80", [81, 82, 83, 84], N),
    ("limit=4&offset=80", [81, 82, 83, 84], N),
    (f"offset={N}", [], N),
    ("offset=1000&limit=1", [], N),
    ("offset=0", list(range(1, 51)), N),
    (
        "region=EU&limit=2",
        ids(lambda r: r["region"] == "EU")[:2],
        len(ids(lambda r: r["region"] == "EU")),
    ),
    ("region=EU&limit=2&offset=1000", [], len(ids(lambda r: r["region"] == "EU"))),
    (
        "region=EU&limit=5&offset=30",
        ids(lambda r: r["region"] == "EU")[30:35],
        len(ids(lambda r: r["region"] == "EU")),
    ),
    (
        "search=off&limit=1",
        ids(insensitive("off", "label", "notes"))[:1],
        len(ids(insensitive("off", "label", "notes"))),
    ),
    ("region=Nowhere", [], 0),
    ("region=Nowhere&offset=10", [], 0),
]


@pytest.mark.parametrize(
    ("query", "expected", "count"), PAGINATION_CASES, ids=[c[0] for c in PAGINATION_CASES]
)
def test_page_and_exact_count(sales, duck, query, expected, count):
    result = get_rows(sales, f"{query}&ordering=id")

    assert [row["id"] for row in result["rows"]] == expected
    assert result["count"] == count
    assert result == approx(get_rows(duck, f"{query}&ordering=id"))


def test_default_page_size_applies_without_limit(sales):
    assert len(get_rows(sales, "")["rows"]) == 50


# A key's forced row filters


EU = ids(lambda r: r["region"] == "EU")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", EU),
        ("region=EU", EU),
        ("region=US", []),
        ("region__ne=EU", []),
        ("region__in=US,APAC", []),
        ("region__isnull=true", []),
        ("qty__gt=5", ids(lambda r: r["region"] == "EU" and (r["qty"] or 0) > 5)),
        (
            "search=off",
            ids(lambda r: r["region"] == "EU" and insensitive("off", "label", "notes")(r)),
        ),
    ],
)
def test_forced_row_filter_holds_against_client_filters(sales, query, expected):
    result = get_rows(sales, f"{query}&ordering=id&limit=100", forced={"region": "EU"})

    assert [row["id"] for row in result["rows"]] == expected
    assert result["count"] == len(expected)


def test_forced_row_filter_counts_only_its_rows_on_a_full_page(sales):
    # A full first page needs a real count: the dataset's cached row count would leak the total.
    result = get_rows(sales, "limit=1", forced={"region": "EU"})

    assert result["count"] == len(EU)


def test_forced_row_filter_may_name_a_hidden_column(sales):
    result = get_rows(sales, "limit=100", forced={"secret": "secret-5"})

    assert [row["id"] for row in result["rows"]] == [5]
    assert "secret" not in result["rows"][0]


def test_forced_row_filter_with_unknown_column_is_a_query_error(sales):
    with pytest.raises(QueryError) as caught:
        parse_rows(sales, {}, forced={"nope": "x"})
    assert caught.value.code == "unknown_column"


# One row by key


def test_row_by_key(sales, duck):
    row = run_row(sales, "9")

    assert row == approx(record(ROWS[8]))
    assert row == approx(run_row(duck, "9"))


@pytest.mark.parametrize(
    "key", ["0", "85", "-1", "abc", "9.5", "", " ", "1 OR 1=1", "9223372036854775808"]
)
def test_row_by_unknown_or_malformed_key_is_not_found(sales, key):
    with pytest.raises(NotFound) as caught:
        run_row(sales, key)
    assert caught.value.code == "not_found"


def test_row_by_key_within_forced_filters(sales):
    forced = parse_forced(sales, {"region": "EU"})
    inside = EU[0]
    outside = ids(lambda r: r["region"] != "EU")[0]

    assert run_row(sales, str(inside), forced)["id"] == inside
    with pytest.raises(NotFound):
        run_row(sales, str(outside), forced)


def test_run_rows_accepts_a_parsed_query_twice(sales):
    query = parse_rows(sales, {"region": "EU", "limit": "3"})

    assert run_rows(sales, query) == run_rows(sales, query)


def test_sqlite_datetimes_in_other_writers_formats_compare_as_times(tmp_path):
    # Django writes '2024-06-30 12:00:00', others a 'T' or fractions: SQLite compares text.
    path = tmp_path / "foreign.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (id integer PRIMARY KEY, at datetime)")
        connection.executemany(
            "INSERT INTO t VALUES (?, ?)",
            [
                (1, "2024-06-30 12:00:00"),
                (2, "2024-06-30T13:00:00"),
                (3, "2024-07-01 00:00:00.000000"),
            ],
        )
    columns = (ColumnSpec("id", "id", "integer"), ColumnSpec("at", "at", "datetime"))
    spec = dataset(
        source=source("sqlite", f"sqlite:///{path}", id_=91999), table="t", all_columns=columns
    )
    try:
        found = {
            query: [row["id"] for row in get_rows(spec, query)["rows"]]
            for query in (
                "at=2024-06-30T12:00:00",
                "at__gte=2024-06-30T12:00:00",
                "at__gt=2024-06-30T12:30:00",
                "at__lte=2024-06-30",
                "at__in=2024-06-30T13:00:00,2024-07-01T00:00:00",
            )
        }
    finally:
        source_engine(spec.source).dispose()

    assert found == {
        "at=2024-06-30T12:00:00": [1],
        "at__gte=2024-06-30T12:00:00": [1, 2, 3],
        "at__gt=2024-06-30T12:30:00": [2, 3],
        "at__lte=2024-06-30": [1, 2],
        "at__in=2024-06-30T13:00:00,2024-07-01T00:00:00": [2, 3],
    }
