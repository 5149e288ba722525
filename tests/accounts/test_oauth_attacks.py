"""The authorization server tried as an attacker would: registration floods and hostile
metadata, redirects to somewhere else, PKCE left out or weakened, codes and refresh tokens
replayed, tokens outliving their grant or presented at the other door, script in the consent
page, a forged consent, and client metadata documents that point inside the network."""

from __future__ import annotations

import contextlib
import json
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from oauth2_provider import cimd
from oauth2_provider.models import AccessToken, Application, Grant

from accounts.models import AccessGrant
from tests.accounts.conftest import PASSWORD
from tests.accounts.oauth_client import form_fields, pkce_pair, query
from tests.accounts.tokens import token_create
from tests.servers import manage, running, server_environment

CALLBACK = "https://client.example/cb"
LOOPBACK = "http://127.0.0.1:33418/callback"
MCP = "http://testserver/mcp"
API = "http://testserver/api/v1/"
REGISTRATION = {
    "client_name": "Some MCP client",
    "redirect_uris": [CALLBACK, LOOPBACK],
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
}
# Whatever context it lands in (text, an attribute, a URL), one part of it would run if it were
# not escaped.
PAYLOAD = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
# What a valid URI may carry to break out of an attribute or into a script.
URL_PAYLOAD = "'-alert(1)-'&next=javascript:alert(3)"


def _register(client: Client | None = None, **metadata):
    return (client or Client()).post(
        "/oauth/register/",
        json.dumps({**REGISTRATION, **metadata}),
        content_type="application/json",
    )


def _registered(**metadata) -> dict:
    response = _register(**metadata)
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def person(alice, orders) -> Client:
    """alice, signed in, granted the orders dataset."""
    AccessGrant.objects.create(user=alice).datasets.set([orders])
    browser = Client()
    browser.force_login(alice)
    return browser


def _authorize(browser: Client, client_id: str, *, redirect_uri: str = CALLBACK, **params):
    return browser.get(
        "/oauth/authorize/",
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "datasets",
            "state": "attack-state",
            "resource": MCP,
            **params,
        },
    )


def _code(browser: Client, client_id: str, *, resource: str = MCP) -> tuple[str, str]:
    """A person allows the client: the authorization code and its PKCE verifier."""
    verifier, challenge = pkce_pair()
    page = _authorize(
        browser,
        client_id,
        code_challenge=challenge,
        code_challenge_method="S256",
        resource=resource,
    )
    assert page.status_code == 200, page.content[:500]
    redirect = browser.post(
        "/oauth/authorize/", {**form_fields(page.content.decode()), "allow": "on"}
    )
    assert redirect.status_code == 302 and redirect["Location"].startswith(CALLBACK + "?")
    return query(redirect["Location"])["code"], verifier


def _exchange(client_id: str, code: str, verifier: str, *, resource: str = MCP):
    return Client().post(
        "/oauth/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": resource,
        },
    )


def _refresh(client_id: str, refresh_token: str):
    return Client().post(
        "/oauth/token/",
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
    )


def _mcp(token: str):
    return Client().post(
        "/mcp",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "MCP-Protocol-Version": "2025-06-18"},
    )


def _rest(token: str):
    return Client().get("/api/v1/datasets/", headers={"Authorization": f"Bearer {token}"})


DOORS = {"mcp": _mcp, "api": _rest}


# Dynamic client registration (RFC 7591): a flood


def test_the_registration_limit_holds_when_each_call_reaches_another_process(db, settings):
    # Each worker of the embedded default has a local-memory cache of its own: clearing it
    # between calls is what a client sees when its calls land on another worker each time.
    settings.GATEWAY_OAUTH_REGISTRATION_RATE = "3/h"
    statuses = []
    for _ in range(6):
        cache.clear()
        statuses.append(_register().status_code)
    assert statuses == [201, 201, 201, 429, 429, 429]
    assert Application.objects.count() == 3


@pytest.mark.system
def test_two_server_processes_on_the_embedded_default_share_the_registration_limit(tmp_path):
    # What the limit is for: 34 rapid registrations spread over two processes that share only
    # the SQLite database (no Redis) register 10 clients, not 10 per process.
    data = tmp_path / "servers"
    data.mkdir()
    environment = server_environment(data, GATEWAY_OAUTH_REGISTRATION_RATE="10/h")
    manage(environment, "migrate", "--noinput")
    with contextlib.ExitStack() as stack:
        ports = [stack.enter_context(running(environment)) for _ in range(2)]
        statuses = []
        for attempt in range(34):
            response = httpx.post(
                f"http://127.0.0.1:{ports[attempt % 2]}/oauth/register/",
                json=REGISTRATION,
                timeout=20,
            )
            statuses.append(response.status_code)
    assert statuses.count(201) == 10, statuses
    assert statuses.count(429) == 24, statuses


def test_the_wait_is_until_the_oldest_registration_leaves_the_window(db, settings):
    settings.GATEWAY_OAUTH_REGISTRATION_RATE = "2/h"
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        assert _register().status_code == 201
        clock.shift(timedelta(minutes=10))
        assert _register().status_code == 201
        clock.shift(timedelta(minutes=10))
        refused = _register()
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "2/h" in refused.json()["error"]["message"]
        assert int(refused["Retry-After"]) == 40 * 60
        clock.shift(timedelta(minutes=40, seconds=1))
        assert _register().status_code == 201


def test_refused_registrations_do_not_spend_the_limit(db, settings):
    settings.GATEWAY_OAUTH_REGISTRATION_RATE = "2/h"
    for _ in range(3):
        assert _register(redirect_uris=["http://evil.example/cb"]).status_code == 400
    assert [_register().status_code for _ in range(3)] == [201, 201, 429]


def test_an_ipv6_client_is_limited_by_its_64_network(db, settings):
    settings.GATEWAY_OAUTH_REGISTRATION_RATE = "1/h"
    assert _register(Client(REMOTE_ADDR="2001:db8:1:2::1")).status_code == 201
    assert _register(Client(REMOTE_ADDR="2001:db8:1:2::ffff")).status_code == 429
    assert _register(Client(REMOTE_ADDR="2001:db8:1:3::1")).status_code == 201


# Hostile registration metadata


ACCEPTED_REDIRECTS = [
    ["https://claude.ai/api/mcp/auth_callback"],
    ["http://127.0.0.1:33418/callback"],
    ["http://[::1]:8080/callback"],
    ["http://localhost:8765/callback"],
]


@pytest.mark.parametrize("redirect_uris", ACCEPTED_REDIRECTS)
def test_https_and_loopback_http_redirects_are_registered(db, redirect_uris):
    assert _registered(redirect_uris=redirect_uris)["redirect_uris"] == redirect_uris


REFUSED_METADATA = [
    # (metadata, status, error, words the description must contain)
    ({"redirect_uris": ["javascript:alert(1)//"]}, 400, "invalid_redirect_uri", "https"),
    ({"redirect_uris": ["http://evil.example/cb"]}, 400, "invalid_redirect_uri", "loopback"),
    ({"redirect_uris": ["http://127.0.0.1.evil.example/cb"]}, 400, "invalid_redirect_uri", "https"),
    (
        {"redirect_uris": ["data:text/html,<script>alert(1)</script>"]},
        400,
        "invalid_redirect_uri",
        "RFC 3986",
    ),
    ({"redirect_uris": ["//evil.example/cb"]}, 400, "invalid_redirect_uri", "RFC 3986"),
    ({"redirect_uris": ["data:text/html,hello"]}, 400, "invalid_redirect_uri", "https"),
    (
        {"redirect_uris": ['https://client.example/cb?x="><script>']},
        400,
        "invalid_redirect_uri",
        "RFC 3986",
    ),
    ({"redirect_uris": ["https://client.example/cb#top"]}, 400, "invalid_redirect_uri", "fragment"),
    ({"redirect_uris": [CALLBACK, "file:///etc/passwd"]}, 400, "invalid_redirect_uri", "https"),
    # One string with a space would be stored as two redirect URIs.
    (
        {"redirect_uris": [f"{CALLBACK} http://evil.example/cb"]},
        400,
        "invalid_redirect_uri",
        "white space",
    ),
    (
        {"redirect_uris": [f"https://client.example/{n}" for n in range(21)]},
        400,
        "invalid_client_metadata",
        "at most 20",
    ),
    ({"client_name": "n" * 256}, 400, "invalid_client_metadata", "at most 255"),
    ({"client_name": "x" * 2_000_000}, 413, "invalid_client_metadata", "at most 16384"),
    ({"grant_types": ["client_credentials"]}, 400, "invalid_client_metadata", "authorization_code"),
]


@pytest.mark.parametrize(("metadata", "status", "error", "words"), REFUSED_METADATA)
def test_hostile_registration_metadata_is_refused_with_the_reason(
    db, metadata, status, error, words
):
    response = _register(**metadata)
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["error"] == error
    assert words in body["error_description"]
    assert len(response.content) < 1000  # the description never echoes a huge value
    assert not Application.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000,  # nested deeper than Python's parser goes
        b'{"client_name": "a", ' + b"x" * 20_000,  # past the size bound before parsing
        b"not json",
        b'["a list"]',
    ],
)
def test_a_body_that_is_not_a_small_json_object_is_refused(db, body):
    response = Client().post("/oauth/register/", body, content_type="application/json")
    assert response.status_code in (400, 413)
    assert response.json()["error"] == "invalid_client_metadata"
    assert not Application.objects.exists()


def test_an_update_of_a_registration_obeys_the_same_rules(db):
    # RFC 7592: the registration access token may replace the metadata; it may not bring in
    # what a registration could not.
    registered = _registered()
    path = urlsplit(registered["registration_client_uri"]).path
    headers = {"Authorization": f"Bearer {registered['registration_access_token']}"}
    for metadata, error in [
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
    ]:
        response = Client().put(
            path,
            json.dumps({**REGISTRATION, **metadata}),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 400, response.content
        assert response.json()["error"] == error
    stored = Application.objects.get(client_id=registered["client_id"])
    assert stored.redirect_uris.split() == REGISTRATION["redirect_uris"]
    assert stored.authorization_grant_type == "authorization-code"


# Redirect URI mismatch at /authorize: never an open redirect


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/cb",
        "https://client.example/cb/extra",
        "https://client.example/cb/../evil",
        "https://client.example/cb?next=https://evil.example/",
        "https://client.example:8443/cb",
        "https://client.example.evil.example/cb",
        "https://client.example@evil.example/cb",
        "https://client.example/cb#fragment",
        "http://client.example/cb",
        "http://127.0.0.1.evil.example:33418/callback",
        "javascript:alert(1)",
    ],
)
def test_a_redirect_uri_not_registered_is_shown_as_an_error_never_followed(person, redirect_uri):
    client_id = _registered()["client_id"]
    _, challenge = pkce_pair()
    response = _authorize(
        person,
        client_id,
        redirect_uri=redirect_uri,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert response.status_code == 400
    assert "Location" not in response
    text = response.content.decode()
    assert "This authorization request cannot be served" in text
    assert "evil.example" not in text
    assert not Grant.objects.exists()


def test_a_loopback_redirect_may_use_any_port(person):
    # RFC 8252 section 7.3: native clients listen on a port the system gives them.
    client_id = _registered()["client_id"]
    _, challenge = pkce_pair()
    response = _authorize(
        person,
        client_id,
        redirect_uri="http://127.0.0.1:40123/callback",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert response.status_code == 200


# PKCE left out or weakened


@pytest.mark.parametrize(
    "pkce",
    [
        {},  # no challenge at all
        {
            "code_challenge": "a-verifier-sent-as-is-0123456789-0123456789",
            "code_challenge_method": "plain",
        },
        {"code_challenge": "a-verifier-sent-as-is-0123456789-0123456789"},  # plain by default
        {"code_challenge": pkce_pair()[1], "code_challenge_method": "S512"},
    ],
)
def test_an_authorization_without_s256_pkce_is_refused_before_consent(person, pkce):
    client_id = _registered()["client_id"]
    response = _authorize(person, client_id, **pkce)
    # The client hears it at its callback; the person is never asked to allow anything.
    assert response.status_code == 302
    assert response["Location"].startswith(CALLBACK + "?")
    answer = query(response["Location"])
    assert answer["error"] == "invalid_request"
    assert answer["state"] == "attack-state"
    assert "code" not in answer
    if pkce:
        assert "S256" in answer["error_description"]


def test_a_forged_consent_with_a_plain_challenge_gets_no_code(person):
    client_id = _registered()["client_id"]
    _, challenge = pkce_pair()
    page = _authorize(person, client_id, code_challenge=challenge, code_challenge_method="S256")
    fields = {**form_fields(page.content.decode()), "allow": "on"}
    fields.update(code_challenge="a-verifier-sent-as-is-0123456789-0123456789")
    fields.update(code_challenge_method="plain")
    answer = query(person.post("/oauth/authorize/", fields)["Location"])
    assert answer["error"] == "invalid_request" and "code" not in answer
    assert not Grant.objects.exists()


@pytest.mark.parametrize("verifier", [None, "another-verifier-0123456789-0123456789-0123"])
def test_a_code_without_its_verifier_is_not_exchanged(person, verifier):
    client_id = _registered()["client_id"]
    code, _ = _code(person, client_id)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": client_id,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    response = Client().post("/oauth/token/", data)
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_request", "invalid_grant")
    assert not AccessToken.objects.filter(user__isnull=False).exists()


# Replays: an authorization code, a rotated refresh token


@pytest.mark.django_db(transaction=True)
def test_a_code_exchanged_twice_is_refused_and_revokes_the_first_tokens(alice, orders):
    AccessGrant.objects.create(user=alice).datasets.set([orders])
    browser = Client()
    browser.force_login(alice)
    client_id = _registered()["client_id"]
    code, verifier = _code(browser, client_id)
    first = _exchange(client_id, code, verifier)
    assert first.status_code == 200, first.content
    tokens = first.json()
    assert _mcp(tokens["access_token"]).status_code == 200  # in use, kept by the process

    replay = _exchange(client_id, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # Whoever holds the code may not be the client: what the first exchange gave is gone too.
    refused = _mcp(tokens["access_token"])
    assert refused.status_code == 401
    assert "Unknown access token" in refused.json()["error"]["message"]
    assert _refresh(client_id, tokens["refresh_token"]).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_rotated_refresh_token_presented_again_revokes_the_whole_family(alice, orders):
    AccessGrant.objects.create(user=alice).datasets.set([orders])
    browser = Client()
    browser.force_login(alice)
    client_id = _registered()["client_id"]
    code, verifier = _code(browser, client_id)
    first = _exchange(client_id, code, verifier).json()
    rotated = _refresh(client_id, first["refresh_token"])
    assert rotated.status_code == 200, rotated.content
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _mcp(second["access_token"]).status_code == 200

    replay = _refresh(client_id, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The replay may come from a thief or from the client: neither keeps anything of the family.
    assert _mcp(second["access_token"]).status_code == 401
    assert _refresh(client_id, second["refresh_token"]).status_code == 400


# A token outlives its grant, its user, or its door


def _drop_grant(user: User) -> None:
    AccessGrant.objects.filter(user=user).delete()


def _deactivate(user: User) -> None:
    user.is_active = False
    user.save()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("door", ["api", "mcp"])
@pytest.mark.parametrize("change", [_drop_grant, _deactivate], ids=["grant-removed", "deactivated"])
def test_a_token_is_refused_on_the_next_call_once_its_grant_or_user_goes(orders, door, change):
    user = User.objects.create_user("mallory", password=PASSWORD)
    AccessGrant.objects.create(user=user).datasets.set([orders])
    application = Application.objects.create(
        name="MCP client",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=CALLBACK,
    )
    raw = "gwo_outlived-token-0123456789"
    token_create(user, application, raw, resource=MCP if door == "mcp" else API)
    call = DOORS[door]
    assert call(raw).status_code == 200  # in use, kept by the process
    change(user)
    refused = call(raw)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("issued_for", "door"), [(API, "mcp"), (MCP, "api"), (API + "../mcp", "mcp")]
)
def test_a_token_is_refused_at_the_door_it_was_not_issued_for(alice, orders, issued_for, door):
    AccessGrant.objects.create(user=alice).datasets.set([orders])
    application = Application.objects.create(
        name="MCP client",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=CALLBACK,
    )
    raw = "gwo_other-door-token-0123456789"
    token_create(alice, application, raw, resource=issued_for)
    refused = DOORS[door](raw)
    assert refused.status_code == 401
    assert "another resource" in refused.json()["error"]["message"]
    assert refused["WWW-Authenticate"].startswith("Bearer")


def test_a_code_for_one_door_gives_no_token_for_the_other(person):
    client_id = _registered()["client_id"]
    code, verifier = _code(person, client_id, resource=MCP)
    response = _exchange(client_id, code, verifier, resource=API)
    assert response.status_code == 400
    # django-oauth-toolkit labels this one answer text/html; its body is the JSON error.
    assert json.loads(response.content)["error"] == "invalid_target"


# The consent page: hostile text, forged posts


def test_the_consent_page_shows_a_hostile_client_name_and_redirect_as_text(person):
    hostile_callback = f"https://client.example/cb?x={URL_PAYLOAD}"
    client_id = _registered(client_name=PAYLOAD, redirect_uris=[hostile_callback])["client_id"]
    _, challenge = pkce_pair()
    page = _authorize(
        person,
        client_id,
        redirect_uri=hostile_callback,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert page.status_code == 200, page.content.decode()[-400:]
    text = page.content.decode()
    assert "<script" not in text and "<img" not in text and URL_PAYLOAD not in text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text  # the name, shown as text
    assert "&#x27;-alert(1)-&#x27;&amp;next=" in text  # the callback, as an attribute's value
    assert form_fields(text)["redirect_uri"] == hostile_callback
    policy = dict(
        directive.strip().split(" ", 1) for directive in page["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"  # no inline script, should any ever get through
    # The form may reach the callback's origin, and nothing the payload names.
    assert policy["form-action"] == "'self' https://client.example"


def test_error_pages_show_hostile_request_values_as_text(person, settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "CIMD_ALLOWED_HOSTS": ["claude.ai"]}
    page = person.get(
        "/oauth/authorize/",
        {"response_type": "code", "client_id": f"https://x{PAYLOAD}.example/client.json"},
    )
    assert page.status_code == 400
    text = page.content.decode()
    assert "<script" not in text and "<img" not in text
    assert "Content-Security-Policy" in page


@pytest.fixture
def strict_person(alice, orders) -> Client:
    """alice, signed in, in a browser whose posts go through the CSRF check."""
    AccessGrant.objects.create(user=alice).datasets.set([orders])
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    return browser


@pytest.mark.parametrize("token", [None, "forged-token-" + "0" * 51])
def test_a_consent_posted_without_the_pages_csrf_token_is_refused(strict_person, token):
    client_id = _registered()["client_id"]
    _, challenge = pkce_pair()
    page = _authorize(
        strict_person, client_id, code_challenge=challenge, code_challenge_method="S256"
    )
    assert page.status_code == 200  # the page set the CSRF cookie
    fields = {**form_fields(page.content.decode()), "allow": "on"}
    fields.pop("csrfmiddlewaretoken")
    if token is not None:
        fields["csrfmiddlewaretoken"] = token
    refused = strict_person.post("/oauth/authorize/", fields)
    assert refused.status_code == 403
    assert "Location" not in refused
    assert not Grant.objects.exists()
    # The page's own form goes through.
    allowed = strict_person.post(
        "/oauth/authorize/", {**form_fields(page.content.decode()), "allow": "on"}
    )
    assert allowed.status_code == 302 and "code" in query(allowed["Location"])


# Client ID metadata documents that point inside the network


class _Connections:
    """Stands in for the fetcher's connection pool: records every connection it is asked for."""

    attempts: list[str] = []

    def __init__(self, host, port, **kwargs):
        self.attempts.append(f"{host}:{port}")

    def urlopen(self, *args, **kwargs):
        raise cimd.urllib3.exceptions.NewConnectionError(None, "no network in tests")

    def close(self):
        pass


NAMES = {
    "metadata.attacker.example": ["169.254.169.254"],
    "intranet.attacker.example": ["10.0.0.5"],
    "loopback.attacker.example": ["127.0.0.1"],
    "split.attacker.example": ["93.184.216.34", "192.168.1.10"],
}


def _getaddrinfo(host, port, *args, **kwargs):
    addresses = NAMES.get(host, [host])
    return [
        (
            socket.AF_INET6 if ":" in address else socket.AF_INET,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
            "",
            (address, port),
        )
        for address in addresses
    ]


@pytest.mark.parametrize(
    "client_id",
    [
        "https://127.0.0.1:8443/client.json",
        "https://10.0.0.5/client.json",
        "https://169.254.169.254/latest/meta-data/client.json",
        "https://[::1]/client.json",
        "https://[::ffff:127.0.0.1]/client.json",
        "https://[fd00::1]/client.json",
        "https://metadata.attacker.example/client.json",
        "https://intranet.attacker.example/client.json",
        "https://loopback.attacker.example/client.json",
        "https://split.attacker.example/client.json",
    ],
)
def test_a_metadata_document_on_a_private_address_is_never_fetched(
    person, settings, monkeypatch, client_id
):
    # Gateway's own fetcher, with any host allowed (the default): only the address decides.
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_ENABLED": True,
        "CIMD_ALLOWED_HOSTS": ["*"],
    }
    monkeypatch.setattr(cimd.socket, "getaddrinfo", _getaddrinfo)
    monkeypatch.setattr(cimd.urllib3, "HTTPSConnectionPool", _Connections)
    monkeypatch.setattr(_Connections, "attempts", [])
    _, challenge = pkce_pair()
    page = person.get(
        "/oauth/authorize/",
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": LOOPBACK,
            "scope": "datasets",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert _Connections.attempts == []
    assert page.status_code == 400
    assert "Location" not in page
    assert "Invalid client_id" in page.content.decode()
    assert not Application.objects.exists()


def test_a_metadata_document_on_a_public_address_is_fetched(person, settings, monkeypatch):
    # The other side of the test above: the same request for a public host does reach out.
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_ENABLED": True,
        "CIMD_ALLOWED_HOSTS": ["*"],
    }
    monkeypatch.setattr(cimd.socket, "getaddrinfo", _getaddrinfo)
    monkeypatch.setattr(cimd.urllib3, "HTTPSConnectionPool", _Connections)
    monkeypatch.setattr(_Connections, "attempts", [])
    person.get(
        "/oauth/authorize/",
        {"response_type": "code", "client_id": "https://93.184.216.34/client.json"},
    )
    assert _Connections.attempts == ["93.184.216.34:443"]
