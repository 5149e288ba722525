"""Statistics under a reader's row filters, computed by each backend: the row count, enums,
minimums and maximums of the rows it can read, or none at all when they cannot be computed."""

from __future__ import annotations

import dataclasses

import pytest

from datasets.engine.spec import DatasetSpec
from datasets.engine.statistics import statistics_for, statistics_forget, statistics_withheld
from tests.datasets.engine.sales_table import ROWS, approx, output

RANGED = ("qty", "price", "day", "moment")


@pytest.fixture(autouse=True)
def _fresh():
    statistics_forget()
    yield
    statistics_forget()


def _with_stored_statistics(spec: DatasetSpec) -> DatasetSpec:
    """The spec as an import leaves it: ranges over every row, and an enum on a hashed column
    (an admin's later change) that must never be published."""
    columns = []
    for column in spec.all_columns:
        values = [row[column.name] for row in ROWS if row[column.name] is not None]
        if column.name in RANGED:
            column = dataclasses.replace(
                column, min=output(column.name, min(values)), max=output(column.name, max(values))
            )
        if column.name == "customer":
            column = dataclasses.replace(column, enum=tuple(sorted(set(values))))
        columns.append(column)
    return dataclasses.replace(spec, all_columns=tuple(columns))


def _expected_range(name: str, rows: list[dict]) -> tuple:
    values = [row[name] for row in rows if row[name] is not None]
    return output(name, min(values)), output(name, max(values))


def test_statistics_under_row_filters_describe_the_filtered_rows_only(sales):
    spec = _with_stored_statistics(sales)
    readable = [row for row in ROWS if row["region"] == "EU"]

    published = statistics_for(spec, {"region": "EU"})

    assert published.row_count == len(readable)
    assert published.column("region").enum == ("EU",)
    for name in RANGED:
        column = published.column(name)
        assert (column.min, column.max) == approx(_expected_range(name, readable))
    assert published.column("customer").enum is None
    assert published.any_column("secret").enum is None


def test_a_row_filter_on_a_hidden_column_is_applied_too(sales):
    spec = _with_stored_statistics(sales)

    published = statistics_for(spec, {"secret": "secret-5"})

    assert published.row_count == 1
    assert (
        published.column("qty").min == published.column("qty").max == output("qty", ROWS[4]["qty"])
    )


def test_no_row_filters_keep_the_stored_statistics(sales):
    spec = _with_stored_statistics(sales)
    assert statistics_for(spec, {}) is spec


def test_statistics_that_cannot_be_computed_are_left_out(duck):
    missing = dataclasses.replace(_with_stored_statistics(duck), file_path=duck.file_path + ".gone")

    published = statistics_for(missing, {"region": "EU"})

    assert published.row_count is None
    assert all(
        (column.enum, column.min, column.max) == (None, None, None)
        for column in published.all_columns
    )


def test_a_row_filter_value_of_the_wrong_type_leaves_the_statistics_out(duck):
    published = statistics_for(_with_stored_statistics(duck), {"qty": "many"})
    assert published.row_count is None
    assert published.column("region").enum is None


def test_withheld_statistics_keep_everything_else(duck):
    spec = _with_stored_statistics(duck)
    withheld = statistics_withheld(spec)

    assert withheld.row_count is None
    assert [column.name for column in withheld.all_columns] == [
        column.name for column in spec.all_columns
    ]
    assert withheld.column("region").operators == spec.column("region").operators
    assert withheld.column("day").min is None and withheld.column("region").enum is None
