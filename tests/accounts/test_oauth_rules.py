"""The authorization server's rules, in process: registration, redirects, the schema, usage."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from oauth2_provider.models import AccessToken, Application

from accounts.models import AccessGrant, GrantRowFilter
from accounts.services import gpt_actions_client_create
from keys.models import UsageRecord
from keys.usage import usage_flush
from tests.accounts.tokens import token_create

REGISTRATION = {
    "client_name": "Some MCP client",
    "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code", "refresh_token"],
}


def _register(client: Client, **metadata):
    return client.post(
        "/oauth/register/",
        data=json.dumps({**REGISTRATION, **metadata}),
        content_type="application/json",
    )


def test_registration_is_limited_per_address(db, settings):
    settings.GATEWAY_OAUTH_REGISTRATION_RATE = "2/h"
    client = Client()
    assert [_register(client).status_code for _ in range(2)] == [201, 201]
    refused = _register(client)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert Application.objects.count() == 2


def test_registration_of_other_grant_types_is_refused(db):
    refused = _register(Client(), grant_types=["client_credentials"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client_metadata"
    assert not Application.objects.exists()


def _authorize(client: Client, application, redirect_uri: str, **extra):
    params = {
        "response_type": "code",
        "client_id": application.client_id,
        "redirect_uri": redirect_uri,
        "scope": "datasets",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        **extra,
    }
    return client.get("/oauth/authorize/", params)


@pytest.fixture
def signed_in(alice, orders):
    AccessGrant.objects.create(user=alice).datasets.set([orders])
    client = Client()
    client.force_login(alice)
    return client


@pytest.mark.parametrize(
    "redirect_uri", ["http://127.0.0.1:8765/callback", "http://localhost:8765/callback"]
)
def test_plain_http_redirects_to_loopback_are_registered_and_followed(signed_in, redirect_uri):
    client_id = _register(Client(), redirect_uris=[redirect_uri]).json()["client_id"]
    application = Application.objects.get(client_id=client_id)
    assert _authorize(signed_in, application, redirect_uri).status_code == 200


def test_a_plain_http_redirect_elsewhere_is_refused_at_authorization_too(signed_in):
    # A client stored before registration refused such redirects still gets no code there.
    redirect_uri = "http://client.example/callback"
    application = Application.objects.create(
        name="Registered earlier",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=redirect_uri,
    )
    assert _authorize(signed_in, application, redirect_uri).status_code == 400


def test_consent_page_lists_datasets_and_row_filters(alice, orders, secrets_ds):
    grant = AccessGrant.objects.create(user=alice)
    grant.datasets.set([orders])
    GrantRowFilter.objects.create(grant=grant, dataset=orders, column="region", value="EU")
    client = Client()
    client.force_login(alice)
    application = gpt_actions_client_create(name="Sales GPT").application
    page = _authorize(client, application, "https://chatgpt.com/aip/g-1/oauth/callback")
    text = page.content.decode()
    assert "Orders" in text and "region = EU" in text
    assert "Secrets" not in text


def test_schema_declares_the_oauth_flow_as_its_one_scheme(db, settings, client):
    settings.GATEWAY_SCHEMA_AUTH = "oauth"
    settings.GATEWAY_PUBLIC_URL = "https://gateway.example.com"
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert list(schemes) == ["ApiKey"]
    flow = schemes["ApiKey"]["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == "https://gateway.example.com/oauth/authorize/"
    assert flow["tokenUrl"] == "https://gateway.example.com/oauth/token/"
    assert flow["scopes"] == {"datasets": "Read the datasets you are granted"}
    assert document["security"] == [{"ApiKey": []}]


def _token(user, application, resource: str, raw: str = "gwo_test-token-0123456789") -> str:
    token_create(user, application, raw, resource=resource)
    return raw


def test_rest_usage_records_name_the_user_and_the_app(signed_in, alice):
    application = gpt_actions_client_create(name="Sales GPT").application
    raw = _token(alice, application, "http://testserver/api/v1/")
    response = Client().get("/api/v1/datasets/orders/rows/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200, response.content
    usage_flush()
    record = UsageRecord.objects.get()
    assert record.key_id == f"u:{alice.pk}:{application.pk}"
    assert (record.dataset, record.operation, record.status) == ("orders", "rows", 200)


def test_tokens_are_stored_only_as_checksums(signed_in, alice):
    application = gpt_actions_client_create(name="Sales GPT").application
    raw = _token(alice, application, "http://testserver/api/v1/")
    stored = AccessToken.objects.get()
    assert stored.token == "" and raw not in stored.token_checksum
    assert application.client_secret.startswith("pbkdf2_")


@pytest.mark.django_db(transaction=True)
def test_a_token_is_read_once_per_process_and_again_after_any_change(orders):
    from django.contrib.auth.models import User

    from accounts.authentication import _tokens

    alice = User.objects.create_user("alice-cached")
    grant = AccessGrant.objects.create(user=alice)
    grant.datasets.set([orders])
    application = gpt_actions_client_create(name="Cached GPT").application
    raw = _token(alice, application, "http://testserver/api/v1/", raw="gwo_cached-token-0123456789")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/datasets/orders/").status_code == 200
    assert len(_tokens._values) == 1  # kept: the next call reads no token from the database
    grant.datasets.clear()  # an m2m change, committed: every process reads the token again
    assert client.get("/api/v1/datasets/orders/").status_code == 404
    AccessToken.objects.get(user=alice).delete()  # revoked
    assert client.get("/api/v1/datasets/").status_code == 401
