"""OAuth over real HTTP: gunicorn with 2 workers on PostgreSQL and Redis, a person signing in,
GPT Actions and MCP clients exchanging codes, and every refusal a client can meet."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.accounts.oauth_client import Browser, pkce_pair, query
from tests.servers import REDIS_URL, manage, postgres_database, running, server_environment
from tests.services import require

pytestmark = [pytest.mark.system, pytest.mark.postgres, pytest.mark.redis]

PASSWORD = "a-long-Pass-phrase-42"
GPT_CALLBACK = "https://chatgpt.com/aip/g-0a1b2c3d4e5f/oauth/callback"
MCP_CALLBACK = "http://127.0.0.1:33418/callback"


def _shell(environment: dict, code: str) -> list[str]:
    lines = manage(environment, "shell", "-c", code).strip().splitlines()
    return lines[-1].split() if lines else []


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A server with the demo sales, users, a GPT Actions client and an EU key."""
    require("postgres")
    require("redis")
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(postgres_database())
        environment = server_environment(
            tmp_path_factory.mktemp("oauth"),
            DATABASE_URL=database_url,
            REDIS_URL=REDIS_URL,
            # Registrations are limited per address (tested in test_registration.py); every test
            # here registers from 127.0.0.1.
            GATEWAY_OAUTH_REGISTRATION_RATE="1000/m",
        )
        manage(environment, "migrate", "--noinput")
        manage(environment, "demo", "--rows", "300")
        manage(
            environment,
            "add_user",
            "eve",
            "--password-stdin",
            "--datasets",
            "sales",
            "--row-filter",
            "sales:region=EU",
            stdin=PASSWORD + "\n",
        )
        _shell(
            environment,
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user('nobody', password='{PASSWORD}')",
        )
        client_id, client_secret = _shell(
            environment,
            "from accounts.services import gpt_actions_client_create as create; "
            "c = create(name='Sales GPT'); print(c.application.client_id, c.client_secret)",
        )
        eu_key = manage(
            environment,
            "issue_key",
            "EU team",
            "--datasets",
            "sales",
            "--row-filter",
            "sales:region=EU",
        ).splitlines()[-1]
        port = stack.enter_context(running(environment, gunicorn_workers=2))
        yield {
            "environment": environment,
            "base": f"http://127.0.0.1:{port}",
            "client_id": client_id,
            "client_secret": client_secret,
            "eu_key": eu_key,
        }


@pytest.fixture
def browser(gateway):
    person = Browser(gateway["base"])
    yield person
    person.close()


@pytest.fixture
def api(gateway):
    with httpx.Client(base_url=gateway["base"], timeout=20) as client:
        yield client


def _gpt_code(gateway, browser, *, username="eve") -> str:
    page = browser.authorize(
        {
            "response_type": "code",
            "client_id": gateway["client_id"],
            "redirect_uri": GPT_CALLBACK,
            "scope": "datasets",
            "state": "gpt-state",
        },
        username=username,
        password=PASSWORD,
    )
    assert page.status_code == 200, page.text
    redirect = browser.consent(page)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(GPT_CALLBACK + "?")
    answer = query(location)
    assert answer["state"] == "gpt-state"
    return answer["code"]


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _basic(client_id: str, secret: str) -> dict:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def _mcp(api, token: str, method: str, params: dict | None = None) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    return api.post(
        "/mcp",
        content=json.dumps(body),
        headers={
            **_bearer(token),
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
    )


def _register(api, **metadata) -> dict:
    body = {
        "client_name": "Test MCP client",
        "redirect_uris": [MCP_CALLBACK],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        **metadata,
    }
    response = api.post("/oauth/register/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _mcp_token(gateway, browser, api, *, username="eve") -> dict:
    client = _register(api)
    verifier, challenge = pkce_pair()
    resource = f"{gateway['base']}/mcp"
    page = browser.authorize(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": MCP_CALLBACK,
            "scope": "datasets",
            "state": "mcp-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": resource,
        },
        username=username,
        password=PASSWORD,
    )
    assert page.status_code == 200, page.text
    code = query(browser.consent(page).headers["Location"])["code"]
    token = api.post(
        "/oauth/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": MCP_CALLBACK,
            "client_id": client["client_id"],
            "code_verifier": verifier,
            "resource": resource,
        },
    )
    assert token.status_code == 200, token.text
    return token.json()


def test_metadata_documents_name_the_server_and_both_resources(gateway, api):
    base = gateway["base"]
    server = api.get("/.well-known/oauth-authorization-server").json()
    assert server["issuer"] == base
    assert server["authorization_endpoint"] == f"{base}/oauth/authorize/"
    assert server["token_endpoint"] == f"{base}/oauth/token/"
    assert server["registration_endpoint"] == f"{base}/oauth/register/"
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert server["grant_types_supported"] == ["authorization_code", "refresh_token"]
    mcp = api.get("/.well-known/oauth-protected-resource/mcp").json()
    assert mcp["resource"] == f"{base}/mcp"
    assert mcp["authorization_servers"] == [base]
    assert api.get("/.well-known/oauth-protected-resource").json()["resource"] == base
    # The 401 of /mcp points the client at its resource metadata.
    refused = api.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert refused.status_code == 401
    assert (
        f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
        in (refused.headers["WWW-Authenticate"])
    )


def test_gpt_actions_flow_without_pkce_by_post_body_then_refresh_by_basic_header(
    gateway, browser, api
):
    page = browser.authorize(
        {
            "response_type": "code",
            "client_id": gateway["client_id"],
            "redirect_uri": GPT_CALLBACK,
            "scope": "datasets",
            "state": "s1",
        },
        username="eve",
        password=PASSWORD,
    )
    # The consent page names the app and the dataset, and lets its form reach the callback.
    assert "Sales GPT" in page.text and "sales" in page.text and "region = EU" in page.text
    assert "form-action 'self' https://chatgpt.com" in page.headers["Content-Security-Policy"]
    code = query(browser.consent(page).headers["Location"])["code"]
    token = api.post(
        "/oauth/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": GPT_CALLBACK,
            "client_id": gateway["client_id"],
            "client_secret": gateway["client_secret"],
        },
    )
    assert token.status_code == 200, token.text
    issued = token.json()
    assert issued["token_type"] == "Bearer"
    assert issued["expires_in"] > 0 and issued["refresh_token"]
    listed = api.get("/api/v1/datasets/", headers=_bearer(issued["access_token"]))
    assert listed.status_code == 200, listed.text
    assert [item["slug"] for item in listed.json()["results"]] == ["sales"]

    refreshed = api.post(
        "/oauth/token/",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        headers=_basic(gateway["client_id"], gateway["client_secret"]),
    )
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.json()
    assert renewed["refresh_token"] != issued["refresh_token"]
    rows = api.get("/api/v1/datasets/sales/rows/?limit=5", headers=_bearer(renewed["access_token"]))
    assert rows.status_code == 200, rows.text
    # Rotation: the refresh token that was used is spent.
    again = api.post(
        "/oauth/token/",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        headers=_basic(gateway["client_id"], gateway["client_secret"]),
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_gpt_actions_code_exchanged_with_basic_header(gateway, browser, api):
    code = _gpt_code(gateway, browser)
    token = api.post(
        "/oauth/token/",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": GPT_CALLBACK},
        headers=_basic(gateway["client_id"], gateway["client_secret"]),
    )
    assert token.status_code == 200, token.text
    answer = api.get("/api/v1/datasets/sales/", headers=_bearer(token.json()["access_token"]))
    assert answer.status_code == 200


def test_user_granted_sales_eu_sees_exactly_what_an_eu_key_sees(gateway, browser, api):
    code = _gpt_code(gateway, browser)
    access = api.post(
        "/oauth/token/",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": GPT_CALLBACK},
        headers=_basic(gateway["client_id"], gateway["client_secret"]),
    ).json()["access_token"]
    for path in (
        "/api/v1/datasets/",
        "/api/v1/datasets/sales/",
        "/api/v1/datasets/sales/rows/?limit=1000&ordering=order_id",
        "/api/v1/datasets/sales/aggregate/?group_by=region,product&metrics=count,sum:revenue",
        "/api/v1/datasets/sales/aggregate/?region=US",
    ):
        as_user = api.get(path, headers=_bearer(access))
        as_key = api.get(path, headers=_bearer(gateway["eu_key"]))
        assert as_user.status_code == as_key.status_code, (path, as_user.text)
        assert as_user.json() == as_key.json(), path
    regions = api.get(
        "/api/v1/datasets/sales/aggregate/?group_by=region", headers=_bearer(access)
    ).json()["results"]
    assert [group["region"] for group in regions] == ["EU"]


def test_mcp_client_registers_and_calls_mcp_with_pkce_and_resource(gateway, browser, api):
    issued = _mcp_token(gateway, browser, api)
    listed = _mcp(
        api, issued["access_token"], "tools/call", {"name": "list_datasets", "arguments": {}}
    )
    assert listed.status_code == 200, listed.text
    result = listed.json()["result"]
    assert not result.get("isError"), result
    assert [item["slug"] for item in result["structuredContent"]["results"]] == ["sales"]
    grouped = _mcp(
        api,
        issued["access_token"],
        "tools/call",
        {"name": "aggregate", "arguments": {"dataset": "sales", "group_by": ["region"]}},
    ).json()["result"]["structuredContent"]["results"]
    assert [group["region"] for group in grouped] == ["EU"]
    # A token for /mcp is not a token for the REST API.
    other = api.get("/api/v1/datasets/", headers=_bearer(issued["access_token"]))
    assert other.status_code == 401
    assert "another resource" in other.json()["error"]["message"]


def test_gpt_token_is_refused_at_mcp(gateway, browser, api):
    code = _gpt_code(gateway, browser)
    access = api.post(
        "/oauth/token/",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": GPT_CALLBACK},
        headers=_basic(gateway["client_id"], gateway["client_secret"]),
    ).json()["access_token"]
    refused = _mcp(api, access, "tools/list")
    assert refused.status_code == 401
    assert "another resource" in refused.json()["error"]["message"]


def test_registered_client_without_pkce_is_refused(gateway, browser, api):
    client = _register(api)
    response = browser.authorize(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": MCP_CALLBACK,
            "scope": "datasets",
            "state": "no-pkce",
            "resource": f"{gateway['base']}/mcp",
        },
        username="eve",
        password=PASSWORD,
    )
    assert response.status_code == 302
    answer = query(response.headers["Location"])
    assert answer["error"] == "invalid_request"
    assert "code" not in answer


def test_a_resource_this_server_does_not_serve_is_refused(gateway, browser, api):
    client = _register(api)
    _, challenge = pkce_pair()
    response = browser.authorize(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": MCP_CALLBACK,
            "scope": "datasets",
            "state": "elsewhere",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": "https://other.example.com/mcp",
        },
        username="eve",
        password=PASSWORD,
    )
    assert response.status_code == 302
    answer = query(response.headers["Location"])
    assert answer["error"] == "invalid_target"
    assert answer["state"] == "elsewhere"


def test_token_request_for_another_resource_than_authorized_is_refused(gateway, browser, api):
    client = _register(api)
    verifier, challenge = pkce_pair()
    page = browser.authorize(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": MCP_CALLBACK,
            "scope": "datasets",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": f"{gateway['base']}/mcp",
        },
        username="eve",
        password=PASSWORD,
    )
    code = query(browser.consent(page).headers["Location"])["code"]
    token = api.post(
        "/oauth/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": MCP_CALLBACK,
            "client_id": client["client_id"],
            "code_verifier": verifier,
            "resource": f"{gateway['base']}/api/v1/",
        },
    )
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_target"


def test_expired_and_revoked_tokens_are_refused(gateway, browser, api):
    issued = _mcp_token(gateway, browser, api)
    expiring = _mcp_token(gateway, browser, api)
    assert _mcp(api, expiring["access_token"], "tools/list").status_code == 200
    _shell(
        gateway["environment"],
        "import hashlib; from datetime import timedelta; from django.utils import timezone; "
        "from oauth2_provider.models import AccessToken; "
        f"checksum = hashlib.sha256({expiring['access_token']!r}.encode()).hexdigest(); "
        "token = AccessToken.objects.get(token_checksum=checksum); "
        "token.expires = timezone.now() - timedelta(seconds=1); token.save()",
    )
    expired = _mcp(api, expiring["access_token"], "tools/list")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]

    client_id = _shell(
        gateway["environment"],
        "import hashlib; from oauth2_provider.models import AccessToken; "
        f"checksum = hashlib.sha256({issued['access_token']!r}.encode()).hexdigest(); "
        "print(AccessToken.objects.get(token_checksum=checksum).application.client_id)",
    )[0]
    revoked = api.post(
        "/oauth/revoke/",
        data={"token": issued["access_token"], "client_id": client_id},
    )
    assert revoked.status_code == 200, revoked.text
    refused = _mcp(api, issued["access_token"], "tools/list")
    assert refused.status_code == 401
    assert "Unknown access token" in refused.json()["error"]["message"]


def test_revoked_grant_is_refused_on_the_next_call(gateway, browser, api):
    manage(
        gateway["environment"],
        "add_user",
        "gina",
        "--password-stdin",
        "--datasets",
        "sales",
        stdin=PASSWORD + "\n",
    )
    issued = _mcp_token(gateway, browser, api, username="gina")
    assert _mcp(api, issued["access_token"], "tools/list").status_code == 200
    _shell(
        gateway["environment"],
        "from accounts.models import AccessGrant; "
        "AccessGrant.objects.filter(user__username='gina').delete()",
    )
    refused = _mcp(api, issued["access_token"], "tools/list")
    assert refused.status_code == 401
    assert "grant was revoked" in refused.json()["error"]["message"]


def test_user_without_a_grant_is_told_there_is_nothing_to_share_and_gets_no_code(gateway, browser):
    page = browser.authorize(
        {
            "response_type": "code",
            "client_id": gateway["client_id"],
            "redirect_uri": GPT_CALLBACK,
            "scope": "datasets",
            "state": "none",
        },
        username="nobody",
        password=PASSWORD,
    )
    assert page.status_code == 200
    assert "Nothing to share" in page.text
    assert 'name="allow"' not in page.text
    # Even a forged "allow" gets no code.
    answer = query(browser.consent(page, allow=True).headers["Location"])
    assert answer["error"] == "access_denied"
    assert "code" not in answer


class _MemoryStorage:
    """The SDK client's token and registration storage, in memory."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info


def test_the_mcp_sdk_oauth_client_registers_signs_in_and_calls_tools(gateway, browser):
    # The official SDK's OAuth client does everything but the person's part: it reads the 401,
    # both metadata documents, registers (RFC 7591), sends PKCE S256 and `resource`, exchanges
    # the code and calls /mcp with the token. The person signs in and allows over HTTP.
    from mcp import Client
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.auth import OAuthClientMetadata

    base = gateway["base"]
    storage = _MemoryStorage()
    seen: dict = {}

    async def sign_in_and_allow(authorization_url: str) -> None:
        parts = urlsplit(authorization_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{base}/oauth/authorize/"
        params = parse_qs(parts.query)
        seen["request"] = {name: values[0] for name, values in params.items()}
        page = browser.authorize(params, username="eve", password=PASSWORD)
        assert page.status_code == 200, page.text
        assert "SDK client" in page.text and "region = EU" in page.text
        redirect = browser.consent(page)
        assert redirect.status_code == 302, redirect.text
        assert redirect.headers["Location"].startswith(MCP_CALLBACK + "?")
        seen["answer"] = query(redirect.headers["Location"])

    async def callback() -> AuthorizationCodeResult:
        answer = seen["answer"]
        return AuthorizationCodeResult(
            code=answer["code"], state=answer.get("state"), iss=answer.get("iss")
        )

    provider = OAuthClientProvider(
        server_url=f"{base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="SDK client",
            redirect_uris=[MCP_CALLBACK],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
            scope="datasets",
        ),
        storage=storage,
        redirect_handler=sign_in_and_allow,
        callback_handler=callback,
    )

    async def work():
        async with create_mcp_http_client(auth=provider) as http:
            transport = streamable_http_client(f"{base}/mcp", http_client=http)
            async with Client(transport, mode="legacy") as client:
                tools = [tool.name for tool in (await client.list_tools()).tools]
                result = await client.call_tool(
                    "aggregate",
                    {"dataset": "sales", "group_by": ["region"], "metrics": ["count"]},
                )
                return tools, result

    tools, result = asyncio.run(work())
    assert "aggregate" in tools and "list_datasets" in tools
    assert result.is_error is False, result.content
    assert [group["region"] for group in result.structured_content["results"]] == ["EU"]

    request = seen["request"]
    assert request["code_challenge_method"] == "S256" and request["code_challenge"]
    assert request["resource"] == f"{base}/mcp"
    assert storage.client_info.client_id  # registered itself at /oauth/register/
    assert storage.tokens.access_token.startswith("gwo_")
    assert storage.tokens.refresh_token.startswith("gwr_")
