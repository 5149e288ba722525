"""The private schema (GATEWAY_SCHEMA_PUBLIC=false) for an OAuth access token: the datasets and
statistics of the token's grant, exactly as for a key; a token issued only for /mcp is refused."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AccessGrant, GrantRowFilter
from accounts.services import gpt_actions_client_create
from datasets.engine.statistics import statistics_forget
from keys.services import RowFilter, api_key_issue
from tests.accounts.tokens import token_create


@pytest.fixture(autouse=True)
def _private_schema(settings):
    settings.GATEWAY_SCHEMA_PUBLIC = False
    statistics_forget()
    yield
    statistics_forget()


def _token(user, resource: str, raw: str = "gwo_schema-token-0123456789") -> str:
    application = gpt_actions_client_create(name="Sales GPT").application
    token_create(user, application, raw, resource=resource)
    return raw


def _schema(credential: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {credential}"} if credential else {}
    return Client().get("/openapi.json", **headers)


def _region_values(document: dict) -> list[str] | None:
    operation = document["paths"]["/api/v1/datasets/orders/rows/"]["get"]
    (region,) = [p for p in operation["parameters"] if p["name"] == "region"]
    return region["schema"].get("enum")


def _paths(document: dict) -> set[str]:
    slugs = {path.split("/")[4] for path in document["paths"] if path.count("/") > 4}
    return slugs - {"{slug}"}  # describe_dataset's own path


@pytest.fixture
def eu_grant(alice, orders, secrets_ds):
    orders.columns.filter(name="region").update(enum=["APAC", "EU", "US"])
    grant = AccessGrant.objects.create(user=alice)
    grant.datasets.set([orders])
    GrantRowFilter.objects.create(grant=grant, dataset=orders, column="region", value="EU")
    return grant


def test_a_token_for_the_rest_api_gets_the_schema_of_its_grant(alice, eu_grant):
    response = _schema(_token(alice, "http://testserver/api/v1/"))
    assert response.status_code == 200, response.content[:300]
    document = response.json()
    assert _paths(document) == {"orders"}  # not secrets: outside the grant
    assert _region_values(document) == ["EU"]  # statistics under the grant's row filter


def test_the_token_schema_is_the_schema_of_a_key_with_the_same_policy(alice, eu_grant):
    issued = api_key_issue(
        name="EU key", datasets=["orders"], row_filters=[RowFilter("orders", "region", "EU")]
    )
    by_key = _schema(issued.raw_key).json()
    by_token = _schema(_token(alice, "http://testserver/api/v1/")).json()
    assert by_token == by_key


def test_a_token_issued_only_for_mcp_gets_no_schema(alice, eu_grant):
    response = _schema(_token(alice, "http://testserver/mcp"))
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert "another resource" in error["message"]


def test_an_unknown_token_gets_no_schema(alice, eu_grant):
    response = _schema("gwo_never-issued-0123456789")
    assert response.status_code == 401
    assert "Unknown access token" in response.json()["error"]["message"]


def test_a_revoked_grant_gets_no_schema_on_the_next_call(alice, eu_grant):
    raw = _token(alice, "http://testserver/api/v1/")
    assert _schema(raw).status_code == 200
    eu_grant.delete()
    response = _schema(raw)
    assert response.status_code == 401
    assert "grant was revoked" in response.json()["error"]["message"]


def test_without_credentials_the_schema_names_both(db):
    response = _schema(None)
    assert response.status_code == 401
    assert "OAuth access token" in response.json()["error"]["message"]
