"""'Did you mean' for unknown parameters: a bare or misspelled lookup finds its `{col}__{lookup}`."""

from __future__ import annotations

import dataclasses

import pytest
from django.http import QueryDict
from django.test import Client

from datasets.engine.errors import QueryError, closest_name
from datasets.engine.parse import parse_aggregate, parse_rows
from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.schema.operations import dataset_paths
from tests.datasets.sales_fixture import register_sales, sales_rows

# A weather dataset like the one the issue was found on: its date column is called `date`.
WEATHER = DatasetSpec(
    id=1,
    slug="weather",
    title="Weather",
    description="Daily weather.",
    table="data",
    source=None,
    file_path="",
    primary_key="date",
    max_page_size=100,
    row_count=10,
    all_columns=(
        ColumnSpec(name="date", physical="date", type="date", min="2012-01-01", max="2015-12-31"),
        ColumnSpec(name="weather", physical="weather", type="string", enum=("rain", "sun")),
        ColumnSpec(name="revenue", physical="revenue", type="number"),
        ColumnSpec(name="note", physical="note", type="string", searchable=True),
        ColumnSpec(name="email", physical="email", type="string", pii="mask"),
    ),
)


def _message(parse, query: str, code: str) -> str:
    with pytest.raises(QueryError) as caught:
        parse(WEATHER, QueryDict(query))
    assert caught.value.code == code, caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    ("query", "suggested"),
    [
        ("year=2013", "date__year"),  # a bare date part
        ("quarter=2", "date__quarter"),
        ("month=4", "date__month"),
        ("yaer=2013", "date__year"),  # a misspelled one
        ("gte=10", "date__gte"),  # a bare comparison: the first column that takes it
        ("startswith=x", "note__startswith"),
        ("weathr=rain", "weather"),  # a misspelled column, as before
        ("serch=x", "search"),  # a misspelled reserved parameter, as before
    ],
)
def test_an_unknown_parameter_suggests_the_filter_meant(query, suggested):
    message = _message(parse_rows, query, "unknown_parameter")

    assert f"Did you mean '{suggested}'?" in message
    # The valid parameters listed are those the schema declares: not format (taken, never
    # declared) nor the masked email (no filter).
    assert "Valid parameters (and filters column__operator): limit, offset," in message
    assert message.endswith("search, date, weather, revenue, note.")


@pytest.mark.parametrize(
    ("parse", "operation"),
    [(parse_rows, "list_weather_rows"), (parse_aggregate, "aggregate_weather")],
)
@pytest.mark.parametrize(
    "spec", [WEATHER, dataclasses.replace(WEATHER, all_columns=WEATHER.all_columns[:3])]
)
def test_an_unknown_parameter_lists_only_parameters_the_schema_declares(parse, operation, spec):
    with pytest.raises(QueryError) as caught:
        parse(spec, QueryDict("zzz=1"))
    listed = caught.value.message.rpartition(": ")[2].rstrip(".").split(", ")
    declared = {
        parameter["name"]
        for path in dataset_paths(spec).values()
        for parameter in path["get"]["parameters"]
        if path["get"]["operationId"] == operation
    }
    assert listed and set(listed) <= declared


def test_aggregates_suggest_the_filter_too():
    message = _message(parse_aggregate, "year=2013", "unknown_parameter")

    assert "Did you mean 'date__year'?" in message


@pytest.mark.parametrize(
    ("group_by", "suggested"), [("quarter", "date__quarter"), ("wek", "date__week")]
)
def test_a_bare_date_bucket_in_group_by_suggests_the_bucket(group_by, suggested):
    message = _message(parse_aggregate, f"group_by={group_by}", "unknown_column")

    assert f"Did you mean '{suggested}'?" in message


def test_a_misspelled_column_before_an_operator_still_suggests_the_column():
    message = _message(parse_rows, "revnue__gte=10", "unknown_column")

    assert "Unknown column 'revnue' in filter. Did you mean 'revenue'?" in message


def test_a_protected_column_lookup_is_never_suggested():
    message = _message(parse_rows, "contains=x", "unknown_parameter")

    assert "email__" not in message
    assert "Did you mean 'note__contains'?" in message


def test_a_whole_candidate_wins_over_a_lookup():
    assert closest_name("date", ["date"], filters=["ship__date"]) == "date"
    assert closest_name("year", ["search"], filters=["date__year"]) == "date__year"
    # A name that has a lookup itself is compared whole.
    assert closest_name("day__yeer", ["search"], filters=["date__year"]) == "date__year"
    assert closest_name("zzz", ["search"], filters=["date__year"]) is None
    # Plain candidates (tables, columns…) are compared whole, as they always were.
    assert closest_name("2024", ["orders", "sales__2024", "orders__2024"]) == "sales__2024"
    assert closest_name("2024", ["orders"], filters=["orders__2024"]) == "orders__2024"


@pytest.mark.django_db
def test_the_api_answers_400_unknown_parameter_naming_the_date_part():
    from keys.services import api_key_issue

    register_sales(sales_rows())
    key = api_key_issue(name="tests", all_datasets=True).raw_key
    response = Client(headers={"Authorization": f"Bearer {key}"}).get(
        "/api/v1/datasets/sales/rows/?year=2024"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_parameter"
    assert error["message"].startswith(
        "Unknown parameter 'year'. Did you mean 'order_date__year'? Valid parameters"
    )
