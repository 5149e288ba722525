"""Client ID metadata documents (CIMD): an MCP client named by the URL of its metadata document
signs a person in, gets a token for /mcp and calls tools; a host not allowed is refused."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher
from oauth2_provider.models import Application

from accounts.models import AccessGrant
from tests.accounts.cimd import metadata_server
from tests.accounts.oauth_client import form_fields, pkce_pair, query

CALLBACK = "http://127.0.0.1:33418/callback"
DOCUMENT = {
    "client_id": "{base}/client.json",
    "client_name": "Loopback MCP client",
    "redirect_uris": [CALLBACK],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


def _cimd(settings, *, hosts: list[str]) -> None:
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_ENABLED": True,
        "CIMD_REGISTRATION_PERMISSION_CLASSES": (
            "oauth2_provider.cimd.HostAllowlistCIMDPermission",
        ),
        "CIMD_ALLOWED_HOSTS": hosts,
        "CIMD_METADATA_FETCHER": "tests.accounts.cimd.LoopbackMetadataFetcher",
        "CIMD_FETCH_TIMEOUT_SECONDS": 5,
    }


@pytest.fixture
def person(alice, orders):
    AccessGrant.objects.create(user=alice).datasets.set([orders])
    browser = Client()
    browser.force_login(alice)
    return browser


def _authorize(browser: Client, client_id: str, challenge: str):
    return browser.get(
        "/oauth/authorize/",
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": "datasets",
            "state": "cimd-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": "http://testserver/mcp",
        },
    )


def test_a_cimd_client_completes_authorization_and_calls_mcp(settings, person):
    _cimd(settings, hosts=["127.0.0.1"])
    verifier, challenge = pkce_pair()
    with metadata_server({"/client.json": DOCUMENT}) as base:
        client_id = f"{base}/client.json"
        page = _authorize(person, client_id, challenge)
        assert page.status_code == 200, page.content[:500]
        text = page.content.decode()
        assert "Loopback MCP client" in text and "Orders" in text
        assert "127.0.0.1" in text  # the host that vouches for the app
        redirect = person.post("/oauth/authorize/", {**form_fields(text), "allow": "on"})
    assert redirect.status_code == 302
    answer = query(redirect["Location"])
    assert redirect["Location"].startswith(CALLBACK) and answer["state"] == "cimd-state"

    stored = Application.objects.get(client_id=client_id)
    assert stored.registration_source == "cimd" and stored.name == "Loopback MCP client"

    token = Client().post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": CALLBACK,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": "http://testserver/mcp",
        },
    )
    assert token.status_code == 200, token.content
    access = token.json()["access_token"]

    listed = Client().post(
        "/mcp",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {access}", "MCP-Protocol-Version": "2025-06-18"},
    )
    assert listed.status_code == 200, listed.content
    assert "list_datasets" in [tool["name"] for tool in listed.json()["result"]["tools"]]


def test_a_host_not_allowed_is_refused_with_the_reason(settings, person):
    _cimd(settings, hosts=["claude.ai"])
    with metadata_server({"/client.json": DOCUMENT}) as base:
        page = _authorize(person, f"{base}/client.json", pkce_pair()[1])
    assert page.status_code == 400
    assert "Location" not in page  # never sent back to a client nobody vouched for
    text = page.content.decode()
    assert "invalid_client" in text
    assert "127.0.0.1" in text and "GATEWAY_OAUTH_CIMD_HOSTS" in text and "claude.ai" in text
    assert not Application.objects.exists()


def test_a_document_naming_another_client_is_refused(settings, person):
    _cimd(settings, hosts=["127.0.0.1"])
    other = {**DOCUMENT, "client_id": "https://client.example/client.json"}
    with metadata_server({"/client.json": other}) as base:
        page = _authorize(person, f"{base}/client.json", pkce_pair()[1])
    assert page.status_code == 400
    assert not Application.objects.exists()


def test_the_real_fetcher_refuses_a_private_address():
    # What the tests' loopback fetcher stands in for: Gateway's fetcher never reads a document
    # from a loopback or private address, whatever host the allowed list names.
    with pytest.raises(CIMDError, match="non-public address"):
        SafeMetadataFetcher().fetch("https://127.0.0.1:9/client.json")


@pytest.mark.parametrize("enabled", [True, False])
def test_metadata_advertises_cimd_only_when_enabled(db, settings, enabled):
    if enabled:
        _cimd(settings, hosts=["*"])
    else:
        settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "CIMD_ENABLED": False}
    document = Client().get("/.well-known/oauth-authorization-server").json()
    assert document["client_id_metadata_document_supported"] is enabled
