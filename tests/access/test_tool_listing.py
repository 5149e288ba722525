"""list_datasets gives a model each dataset's columns, so it can query or aggregate next."""

from __future__ import annotations

import json

import pytest

from access.tools import tool_call, tool_definitions
from datasets.models import Column, Dataset
from datasets.policy import AccessPolicy
from tests.datasets.sales_fixture import register_sales, sales_rows

pytestmark = pytest.mark.django_db


def policy(**changes) -> AccessPolicy:
    options = dict(principal="k:1", all_datasets=True, dataset_ids=frozenset(), row_filters={})
    return AccessPolicy(**{**options, **changes})


def listed(caller: AccessPolicy, max_chars: int = 50_000):
    return tool_call(
        "list_datasets", {}, policy=caller, base_url="http://testserver", max_chars=max_chars
    )


def test_each_dataset_comes_with_its_columns_types_units_and_values():
    sales = register_sales(sales_rows())
    Column.objects.filter(dataset=sales, name="revenue").update(unit="USD")
    Column.objects.filter(dataset=sales, name="units").update(
        enum=[1, 5, 9], min_value=1, max_value=9
    )
    answer = listed(policy())
    (item,) = answer.structured["results"]
    columns = item["columns"]
    assert "region (string; values APAC|EU|US)" in columns
    assert "units (integer; values 1|5|9)," in columns  # the values say the range too
    assert "revenue (number; unit USD)" in columns
    assert "order_date (date; range 2023-" in columns
    assert "customer_email (string; not filterable)" in columns
    assert f"Columns: {columns}" in answer.text


def test_a_row_filtered_caller_sees_only_the_values_of_its_rows():
    sales = register_sales(sales_rows())
    eu = policy(row_filters={sales.pk: {"region": "EU"}})
    (item,) = listed(eu).structured["results"]
    assert "region (string; values EU)" in item["columns"]


def test_a_long_catalogue_leaves_out_the_columns_that_do_not_fit():
    rows = sales_rows()
    for number in range(12):
        register_sales(rows, slug=f"sales_{number:02}")
    answer = listed(policy(), max_chars=12_000)
    with_columns = [item for item in answer.structured["results"] if "columns" in item]
    assert 0 < len(with_columns) < 12 and answer.structured["count"] == 12
    assert [item["slug"] for item in with_columns] == [
        f"sales_{n:02}" for n in range(len(with_columns))
    ]
    assert answer.text.endswith(
        "The columns of the datasets listed without them: describe_dataset."
    )
    assert len(answer.text) < 12_000 // 2 and len(json.dumps(answer.structured)) < 12_000 // 2


def test_query_rows_declares_the_largest_page_it_serves():
    (tool,) = [t for t in tool_definitions(["sales"], 500) if t["name"] == "query_rows"]
    assert tool["inputSchema"]["properties"]["limit"]["maximum"] == 500
    assert Dataset.objects.count() == 0
