"""A value outside a column's published values is a 400 naming the valid values and the closest
one, never a silent empty answer (on datasets whose published values are complete: uploads)."""

from __future__ import annotations

import dataclasses

import pytest

from datasets.engine.errors import QueryError
from datasets.engine.execute import run_rows
from datasets.engine.parse import parse_aggregate, parse_rows


def _with_years(spec, low="2024-01-01", high="2024-12-31"):
    columns = tuple(
        dataclasses.replace(column, min=low, max=high) if column.name == "day" else column
        for column in spec.all_columns
    )
    return dataclasses.replace(spec, all_columns=columns)


def _error(parse, spec, params, published=None) -> QueryError:
    with pytest.raises(QueryError) as caught:
        parse(spec, params, published=published or spec)
    return caught.value


INVALID = [
    # (parameter, value, the closest value the message offers)
    ("region", "eu", "EU"),
    ("region", "Asia", "APAC"),
    ("region__ne", "us", "US"),
    ("region__in", "EU,apac", "APAC"),
]


@pytest.mark.parametrize(("name", "value", "closest"), INVALID)
def test_a_value_outside_the_enum_of_an_upload_is_invalid_with_the_closest_one(
    duckdb_sales, name, value, closest
):
    for parse in (parse_rows, parse_aggregate):
        error = _error(parse, duckdb_sales, {name: value})

        assert error.code == "invalid_value"
        assert f"Did you mean '{closest}'?" in error.message
        assert "Valid values: APAC, EU, US." in error.message


def test_published_values_pass(duckdb_sales):
    query = parse_rows(duckdb_sales, {"region__in": "EU,US"}, published=duckdb_sales)
    assert query.filters[0].value == ("EU", "US")


def test_a_year_outside_the_covered_years_is_invalid_with_the_closest_one(duckdb_sales):
    spec = _with_years(duckdb_sales)
    error = _error(parse_rows, spec, {"day__year": "24"})

    assert error.code == "invalid_value"
    assert "from 2024 to 2024" in error.message and "Did you mean 2024?" in error.message
    assert parse_rows(spec, {"day__year": "2024"}, published=spec).filters[0].value == 2024


def test_errors_list_only_the_values_the_caller_is_shown(duckdb_sales):
    # A row-filtered caller is shown the values of its own rows (statistics_for): the message
    # never names the others.
    columns = tuple(
        dataclasses.replace(column, enum=("EU",)) if column.name == "region" else column
        for column in duckdb_sales.all_columns
    )
    shown = dataclasses.replace(duckdb_sales, all_columns=columns)
    error = _error(parse_rows, duckdb_sales, {"region": "US"}, published=shown)

    assert "Valid values: EU." in error.message and "APAC" not in error.message


def test_only_uploads_are_checked_against_their_enum(sales):
    """A SQL source's rows change after its statistics are taken: a new value is answered there."""
    if sales.source is None:
        with pytest.raises(QueryError) as raised:
            parse_rows(sales, {"region": "Asia"}, published=sales)
        assert raised.value.code == "invalid_value"
    else:
        page = run_rows(sales, parse_rows(sales, {"region": "Asia"}, published=sales))
        assert page.count == 0
