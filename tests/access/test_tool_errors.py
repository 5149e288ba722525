"""MCP tools speak of tools and arguments in their errors, not of REST URLs and query parameters."""

from __future__ import annotations

import pytest

from access.tools import tool_call
from datasets.engine.errors import QueryError
from datasets.policy import AccessPolicy
from gatewaysite.errors import ApiError
from tests.datasets.sales_fixture import register_sales, sales_rows

pytestmark = pytest.mark.django_db

EVERYTHING = AccessPolicy(
    principal="k:1", all_datasets=True, dataset_ids=frozenset(), row_filters={}
)


@pytest.fixture
def sales():
    return register_sales(sales_rows())


def call(name: str, arguments: dict, policy: AccessPolicy = EVERYTHING):
    return tool_call(name, arguments, policy=policy, base_url="http://testserver", max_chars=50_000)


@pytest.mark.parametrize("tool", ["describe_dataset", "query_rows", "aggregate", "get_row"])
def test_an_unknown_dataset_points_at_list_datasets_and_the_closest_slug(sales, tool):
    arguments = {"dataset": "salse", **({"key": "1"} if tool == "get_row" else {})}
    with pytest.raises(ApiError) as caught:
        call(tool, arguments)
    assert caught.value.message == (
        "No dataset 'salse'. Did you mean 'sales'? Call list_datasets to see them."
    )
    assert "/api/" not in caught.value.message


def test_a_dataset_outside_the_callers_scope_is_never_suggested(sales):
    nothing = AccessPolicy(
        principal="k:2", all_datasets=False, dataset_ids=frozenset(), row_filters={}
    )
    with pytest.raises(ApiError) as caught:
        call("query_rows", {"dataset": "sales"}, nothing)
    assert "Did you mean" not in caught.value.message


@pytest.mark.parametrize(
    ("filters", "suggested"),
    [({"regoin": "EU"}, "region"), ({"year": 2023}, "order_date__year"), ({"fromat": "csv"}, None)],
)
@pytest.mark.parametrize("tool", ["query_rows", "aggregate"])
def test_an_unknown_filter_lists_filters_only(sales, tool, filters, suggested):
    with pytest.raises(QueryError) as caught:
        call(tool, {"dataset": "sales", "filters": filters})
    message = caught.value.message
    assert message.startswith(f"Unknown filter '{next(iter(filters))}'.")
    if suggested:
        assert f"Did you mean '{suggested}'?" in message
    listed = message.rpartition(": ")[2].rstrip(".").split(", ")
    assert "region" in listed and "order_id" in listed
    for not_a_filter in ("format", "limit", "offset", "search", "group_by", "customer_email"):
        assert not_a_filter not in listed
