"""Hostile values and names in every parameter, on every backend: a clear QueryError or a correct
result, never a database error; the table is intact afterwards."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pytest
import sqlalchemy as sa

from datasets.engine.connections import duckdb_files, source_engine
from datasets.engine.errors import NotFound, QueryError
from datasets.engine.execute import run_row
from tests.datasets.engine.sales_table import (
    MAX_PAGE,
    ROWS,
    TABLE,
    get_aggregate,
    get_rows,
    ids,
    record,
)

HOSTILE = [
    "'",
    '"',
    "`",
    "';",
    "' OR 1=1 --",
    "' OR '1'='1",
    "1 OR 1=1",
    f'"; DROP TABLE {TABLE}; --',
    "'); DROP TABLE data; --",
    "--",
    "/* */",
    ";",
    "%",
    "%%",
    "_",
    "%_%",
    "\\",
    "\\'",
    "\\%",
    "/",
    "//%",
    "?",
    "$1",
    ":name",
    "%(name)s",
    "%s",
    "{}",
    "[0]",
    "ünï©ødé 日本 🙂",
    "\u202e\u200b",
    "\ud800",
    "\x00",
    "a\x00b",
    "\t\n\r",
    " ",
    "x" * 10_000,
    "é" * 10_000,
    "-",
    "--qty",
    ",",
    ",,",
    "__",
    "qty__",
    "__qty",
    "qty__gt__gt",
    "sum:",
    ":",
    "sum:qty:qty",
]

# Filter values on string columns have a correct answer to compare with.
STRING_FILTERS: dict[str, Callable[[str], Callable[[dict], bool]]] = {
    "label": lambda h: lambda r: r["label"] == h,
    "label__contains": lambda h: lambda r: r["label"] is not None and h in r["label"],
    "label__icontains": lambda h: (
        lambda r: r["label"] is not None and h.lower() in r["label"].lower()
    ),
    "label__startswith": lambda h: lambda r: r["label"] is not None and r["label"].startswith(h),
    "label__in": lambda h: lambda r: r["label"] in h.split(","),
    "search": lambda h: (
        lambda r: any(h.lower() in (r[c] or "").lower() for c in ("label", "notes"))
    ),
}

# Every other place a client's text reaches: any answer but a database error will do, and a
# result must be empty (no hostile string is a valid value of these columns).
TYPED_FILTERS = [
    "qty",
    "qty__gt",
    "qty__in",
    "price__lte",
    "day",
    "day__gte",
    "moment__lte",
    "active",
    "qty__isnull",
    "day__year",
    "moment__quarter",
    "region__ne",
]


def _page(query: dict) -> dict:
    return {**query, "ordering": "id", "limit": str(MAX_PAGE)}


def _attempt(call: Callable) -> tuple[str, object]:
    """('error', QueryError) or ('result', value); anything else fails the test with its type."""
    try:
        return "result", call()
    except QueryError as error:
        assert error.code and error.message and len(error.message) < 2000
        return "error", error


@pytest.mark.parametrize("name", list(STRING_FILTERS))
def test_hostile_string_filter_values_give_a_correct_answer(sales, name):
    wrong = []
    for hostile in HOSTILE:
        outcome, value = _attempt(lambda h=hostile: get_rows(sales, _page({name: h})))
        if outcome == "error":
            continue
        expected = ids(STRING_FILTERS[name](hostile))
        if [row["id"] for row in value["rows"]] != expected or value["count"] != len(expected):
            wrong.append(hostile[:30])
    assert wrong == []


@pytest.mark.parametrize("name", TYPED_FILTERS)
def test_hostile_typed_filter_values_give_an_error_or_nothing(sales, name):
    for hostile in HOSTILE:
        outcome, value = _attempt(lambda h=hostile: get_rows(sales, _page({name: h})))
        if outcome == "result" and name != "region__ne":
            assert value == {"count": 0, "rows": []}, hostile[:30]


def _rows_with(parameter: str) -> Callable[[str], dict]:
    return lambda hostile: {parameter: hostile}


NAME_PLACES: dict[str, Callable[[str], dict]] = {
    "filter name": lambda h: {h: "1"},
    "column of a filter": lambda h: {f"{h}__eq": "1"},
    "operator": lambda h: {f"label__{h}": "1"},
    "ordering": _rows_with("ordering"),
    "descending ordering": lambda h: {"ordering": f"-{h}"},
    "fields": _rows_with("fields"),
    "limit": _rows_with("limit"),
    "offset": _rows_with("offset"),
}


@pytest.mark.parametrize("place", list(NAME_PLACES))
def test_hostile_names_in_rows_parameters_give_an_error_or_a_consistent_page(sales, place):
    for hostile in HOSTILE:
        outcome, value = _attempt(lambda h=hostile: get_rows(sales, NAME_PLACES[place](h)))
        # A few hostile strings name nothing (" ", ",") and the default applies, or name a
        # valid filter ("qty__" is qty=1): the page must still be a consistent one.
        if outcome == "result":
            assert 0 <= value["count"] <= len(ROWS), hostile[:30]
            assert len(value["rows"]) == min(value["count"], 50), hostile[:30]


AGGREGATE_PLACES: dict[str, Callable[[str], dict]] = {
    "group_by": lambda h: {"group_by": h},
    "bucket": lambda h: {"group_by": f"day__{h}"},
    "metrics": lambda h: {"metrics": h},
    "metric column": lambda h: {"metrics": f"sum:{h}"},
    "ordering": lambda h: {"group_by": "region", "ordering": h},
    "limit": lambda h: {"limit": h},
    "filter name": lambda h: {h: "1"},
    "filter value": lambda h: {"label__contains": h, "group_by": "region"},
    "search": lambda h: {"search": h, "metrics": "count"},
}


@pytest.mark.parametrize("place", list(AGGREGATE_PLACES))
def test_hostile_aggregate_parameters_give_an_error_or_a_result(sales, place):
    for hostile in HOSTILE:
        outcome, value = _attempt(
            lambda h=hostile: get_aggregate(sales, AGGREGATE_PLACES[place](h))
        )
        if outcome == "result":
            assert isinstance(value, list), hostile[:30]


def test_hostile_keys_are_not_found(sales):
    for hostile in HOSTILE:
        with pytest.raises(NotFound):
            run_row(sales, hostile)


def test_table_is_intact_after_hostile_input(sales):
    if sales.source is None:
        count = duckdb_files.cursor(sales.file_path).execute("SELECT count(*) FROM data").fetchall()
        assert count == [(len(ROWS),)]
    else:
        with source_engine(sales.source).connect() as connection:
            count = connection.execute(sa.text(f"SELECT count(*) FROM {TABLE}")).scalar_one()
        assert count == len(ROWS)
    page = get_rows(sales, f"ordering=id&limit={MAX_PAGE}")
    assert page == {"count": len(ROWS), "rows": [record(row) for row in ROWS]}


def test_duckdb_file_is_read_only(duck):
    cursor = duckdb_files.cursor(duck.file_path)

    with pytest.raises(duckdb.Error):
        cursor.execute("DELETE FROM data")
    assert cursor.execute("SELECT count(*) FROM data").fetchall() == [(len(ROWS),)]
