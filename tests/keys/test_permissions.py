"""Scope: a dataset outside the key's scope is 404 and unlisted; row filters hold in every query."""

from __future__ import annotations

import pytest

from datasets.models import Column
from keys.services import RowFilter
from tests.keys.conftest import bearer, error_of

pytestmark = pytest.mark.django_db

ORDERS_URLS = [
    "/api/v1/datasets/orders/",
    "/api/v1/datasets/orders/rows/",
    "/api/v1/datasets/orders/rows/1/",
    "/api/v1/datasets/orders/aggregate/",
]


def _slugs(client) -> list[str]:
    response = client.get("/api/v1/datasets/")
    assert response.status_code == 200
    return [item["slug"] for item in response.json()["results"]]


def test_scoped_key_lists_only_its_datasets(scoped):
    assert _slugs(scoped) == ["orders"]


def test_outsider_does_not_see_the_dataset_in_the_list(outsider):
    assert _slugs(outsider) == ["secrets"]


def test_all_datasets_key_lists_every_dataset(orders, secrets_ds, issue):
    assert _slugs(bearer(issue(all_datasets=True))) == ["orders", "secrets"]


@pytest.mark.parametrize("url", ORDERS_URLS)
def test_scoped_key_reads_every_endpoint_of_its_dataset(scoped, url):
    assert scoped.get(url).status_code == 200


@pytest.mark.parametrize("url", ORDERS_URLS)
def test_outsider_gets_404_like_an_unknown_dataset(outsider, url):
    out_of_scope = outsider.get(url)
    unknown = outsider.get(url.replace("/orders/", "/nothere/"))
    error_of(out_of_scope, 404, "dataset_not_found")
    # Same answer as a dataset that does not exist: the scope reveals nothing.
    assert out_of_scope.json()["error"]["message"] == unknown.json()["error"]["message"].replace(
        "nothere", "orders"
    )


@pytest.mark.parametrize("url", ORDERS_URLS)
def test_no_key_gets_401(orders, anonymous, url):
    error_of(anonymous.get(url), 401, "unauthorized")


@pytest.fixture
def eu(orders, issue):
    """A key that sees only region=EU rows of orders."""
    return bearer(
        issue(
            datasets=["orders"], row_filters=[RowFilter(slug="orders", column="region", value="EU")]
        )
    )


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return sorted(row["order_id"] for row in response.json()["results"])


def test_row_filter_limits_the_rows(eu):
    assert _ids(eu.get("/api/v1/datasets/orders/rows/")) == [1, 2, 6]


@pytest.mark.parametrize(
    "query",
    [
        "region=US",
        "region__ne=EU",
        "region__in=US,APAC",
        "region__startswith=U",
        "product=Apple&region=US",
        "order_id=3",
        "order_id__gte=3&order_id__lte=5",
    ],
)
@pytest.mark.parametrize("published", [False, True], ids=["no values", "values"])
def test_row_filter_holds_against_client_filters(eu, query, published):
    if published:  # as an import records them: the key is then shown only its own region
        Column.objects.filter(dataset__slug="orders", name="region").update(
            enum=["APAC", "EU", "US"]
        )
    response = eu.get(f"/api/v1/datasets/orders/rows/?{query}")
    if response.status_code == 400:
        # Refused (an operator the column does not take, a value outside what the key may see):
        # the valid choices it offers name no other region.
        message = response.json()["error"]["message"]
        offered = message.split("Valid", 1)[-1]
        assert "US" not in offered and "APAC" not in offered, message
        return
    assert all(order_id in (1, 2, 6) for order_id in _ids(response))


def test_row_filter_holds_against_search(eu):
    assert _ids(eu.get("/api/v1/datasets/orders/rows/?search=US")) == []
    assert _ids(eu.get("/api/v1/datasets/orders/rows/?search=Apple")) == [1]


def test_row_filter_holds_against_aggregates(eu):
    response = eu.get(
        "/api/v1/datasets/orders/aggregate/?group_by=region&metrics=count,sum:revenue"
    )
    assert response.status_code == 200, response.content
    assert response.json()["results"] == [{"region": "EU", "count": 3, "sum_revenue": 90.0}]
    totals = eu.get("/api/v1/datasets/orders/aggregate/?metrics=count&region=US").json()
    assert totals["results"] == [{"count": 0}]


@pytest.mark.parametrize(("order_id", "status"), [(1, 200), (2, 200), (3, 404), (4, 404), (5, 404)])
def test_row_filter_holds_against_row_ids(eu, order_id, status):
    response = eu.get(f"/api/v1/datasets/orders/rows/{order_id}/")
    assert response.status_code == status


def test_row_filter_may_name_a_hidden_column(orders, issue):
    client = bearer(
        issue(
            datasets=["orders"],
            row_filters=[RowFilter(slug="orders", column="team", value="south")],
        )
    )
    response = client.get("/api/v1/datasets/orders/rows/")
    assert _ids(response) == [2, 4]
    assert "team" not in response.json()["results"][0]


def test_row_filters_apply_to_their_dataset_only(orders, secrets_ds, issue):
    client = bearer(
        issue(
            all_datasets=True, row_filters=[RowFilter(slug="orders", column="region", value="EU")]
        )
    )
    assert _ids(client.get("/api/v1/datasets/orders/rows/")) == [1, 2, 6]
    assert _ids(client.get("/api/v1/datasets/secrets/rows/")) == [1, 2, 3, 4, 5, 6]


def test_row_filter_on_a_removed_column_hides_the_dataset(orders, issue):
    client = bearer(
        issue(
            datasets=["orders"], row_filters=[RowFilter(slug="orders", column="region", value="EU")]
        )
    )
    orders.columns.filter(name="region").update(name="area")
    error_of(client.get("/api/v1/datasets/orders/rows/"), 404, "dataset_not_found")
    assert _slugs(client) == []
