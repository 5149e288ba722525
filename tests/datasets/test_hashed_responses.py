"""No answer of any kind carries a raw value of a hashed column: rows, one row, CSV, aggregates,
describe, the dataset list and the schema. Digests are recomputed here with their own HMAC."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.datasets.engine.test_hash import SECRET, independent_digest
from tests.datasets.sales_fixture import register_sales, sales_rows

pytestmark = pytest.mark.django_db

URLS = [
    "/api/v1/datasets/",
    "/api/v1/datasets/sales/",
    "/api/v1/datasets/sales/rows/?limit=1000",
    "/api/v1/datasets/sales/rows/?limit=1000&format=csv",
    "/api/v1/datasets/sales/rows/?limit=5&fields=order_id,customer_email",
    "/api/v1/datasets/sales/rows/1/",
    "/api/v1/datasets/sales/aggregate/?group_by=customer_email&metrics=count&limit=1000",
    "/api/v1/datasets/sales/aggregate/?group_by=customer_email,region&limit=1000",
    "/api/v1/datasets/sales/aggregate/?group_by=region&metrics=count_distinct:customer_email",
    "/openapi.json",
    "/openapi.yaml",
]


@pytest.fixture
def rows(settings):
    settings.SECRET_KEY = SECRET
    return sales_rows()


@pytest.fixture
def api(rows):
    from keys.services import api_key_issue

    dataset = register_sales(rows)
    column = dataset.columns.get(name="customer_email")
    column.pii = "hash"
    column.save()
    raw_key = api_key_issue(name="tests", all_datasets=True).raw_key
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


def _text(response) -> str:
    assert response.status_code == 200, response.content[:300]
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8-sig")
    return response.content.decode()


@pytest.mark.parametrize("schema_public", [True, False])
@pytest.mark.parametrize("url", URLS)
def test_no_response_contains_a_raw_hashed_value(api, rows, settings, url, schema_public):
    settings.GATEWAY_SCHEMA_PUBLIC = schema_public
    text = _text(api.get(url))

    leaked = [row["customer_email"] for row in rows if row["customer_email"] in text]
    assert not leaked
    assert "@example.com" not in text


def test_rows_and_groups_carry_the_digests(api, rows):
    one = api.get("/api/v1/datasets/sales/rows/1/").json()
    assert one["customer_email"] == independent_digest(SECRET, "buyer1@example.com")

    csv_text = _text(api.get("/api/v1/datasets/sales/rows/?limit=3&format=csv"))
    assert independent_digest(SECRET, "buyer2@example.com") in csv_text

    groups = api.get("/api/v1/datasets/sales/aggregate/?group_by=customer_email&limit=1000").json()[
        "results"
    ]
    assert {group["customer_email"] for group in groups} == {
        independent_digest(SECRET, row["customer_email"]) for row in rows
    }
    # Ordered by digest, as the client sees them.
    keys = [group["customer_email"] for group in groups]
    assert keys == sorted(keys)
