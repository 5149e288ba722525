"""Every HTML page forbids inline script and other origins; the client address behind a proxy."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.template import engines
from django.test import RequestFactory

from datasets.services import dataset_import
from gatewaysite.security import ContentSecurityPolicyMiddleware, client_address

pytestmark = pytest.mark.django_db

CSV = b"order_id,region,revenue\n1,EU,10.5\n2,US,20.0\n"


def policy_of(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for directive in header.split(";"):
        name, *sources = directive.split()
        directives[name] = sources
    return directives


class Scripts(HTMLParser):
    """The <script> elements of a page and every event-handler attribute (onclick=...)."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.sources: list[str] = []
        self.handlers: list[str] = []
        self._in_inline = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.handlers += [f"<{tag} {name}=...>" for name, _ in attrs if name.startswith("on")]
        if tag != "script":
            return
        if attributes.get("src"):
            self.sources.append(attributes["src"])
        elif attributes.get("type") != "application/json":  # json_script: data, never run
            self._in_inline = True
            self.inline.append("")

    def handle_data(self, data):
        if self._in_inline:
            self.inline[-1] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline = False


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(CSV)
    return dataset_import(path=path, slug="orders", primary_key="order_id")


def _pages(dataset) -> list[tuple[str, bool, dict]]:
    """(path, signed in as an admin, headers) of every HTML page Gateway serves."""
    html = {"HTTP_ACCEPT": "text/html,application/xhtml+xml"}
    return [
        ("/redoc/", False, html),
        ("/swagger/", False, html),
        ("/privacy/", False, html),
        ("/admin/login/", False, html),
        ("/admin/", True, html),
        ("/admin/connect/", True, html),
        ("/admin/datasets/dataset/", True, html),
        (f"/admin/datasets/dataset/{dataset.pk}/change/", True, html),
    ]


def test_every_html_page_forbids_inline_script_and_other_hosts(client, admin_client, dataset):
    for path, signed_in, headers in _pages(dataset):
        response = (admin_client if signed_in else client).get(path, **headers)
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith("text/html"), path
        policy = policy_of(response)
        assert policy["script-src"] == ["'self'"], path
        assert policy["default-src"] == ["'self'"], path
        assert policy["object-src"] == ["'none'"], path
        assert policy["base-uri"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        for directive, sources in policy.items():
            assert not [s for s in sources if "://" in s or s == "*"], (path, directive)
        assert "'unsafe-eval'" not in sum(policy.values(), []), path
        scripts = Scripts()
        scripts.feed(response.content.decode())
        # The policy would block these anyway: the page must not depend on them.
        assert scripts.inline == [], f"inline script on {path}"
        assert scripts.handlers == [], f"event-handler attributes on {path}: {scripts.handlers}"
        foreign = [
            src for src in scripts.sources if not src.startswith("/") or src.startswith("//")
        ]
        assert foreign == [], f"scripts from other hosts on {path}"


def test_documents_and_errors_carry_the_policy_too(client):
    for path in ["/openapi.json", "/healthz", "/api/v1/datasets/", "/no-such-page"]:
        assert policy_of(client.get(path))["script-src"] == ["'self'"], path


def test_redoc_and_swagger_start_from_local_files_that_render_text_and_keep_no_key(client):
    redoc = client.get("/redoc/").content.decode()
    assert "/static/gateway/redoc-init.js" in redoc
    swagger = client.get("/swagger/", HTTP_ACCEPT="text/html").content.decode()
    assert "/static/gateway/swagger-init.js" in swagger
    redoc_init = Path(finders.find("gateway/redoc-init.js")).read_text()
    assert "sanitize: true" in redoc_init
    swagger_init = Path(finders.find("gateway/swagger-init.js")).read_text()
    assert "persistAuthorization: false" in swagger_init


def _respond_with(template: str | None):
    """A view for the middleware: renders `template` with the request, or plain text."""

    def view(request):
        if template is None:
            return HttpResponse("plain")
        body = engines["django"].from_string(template).render({"request": request})
        return HttpResponse(body)

    return view


def test_a_nonce_is_added_only_to_the_page_that_uses_it():
    factory = RequestFactory()
    page = '<script nonce="{{ request.csp_nonce }}">start()</script>'
    middleware = ContentSecurityPolicyMiddleware(_respond_with(page))
    first = middleware(factory.get("/"))
    second = middleware(factory.get("/"))
    nonces = []
    for response in (first, second):
        sources = policy_of(response)["script-src"]
        assert sources[0] == "'self'" and sources[1].startswith("'nonce-")
        nonce = sources[1].removeprefix("'nonce-").removesuffix("'")
        assert f'nonce="{nonce}"'.encode() in response.content
        nonces.append(nonce)
    assert nonces[0] != nonces[1], "a nonce is never reused"
    assert len(nonces[0]) >= 22
    plain = ContentSecurityPolicyMiddleware(_respond_with(None))(factory.get("/"))
    assert policy_of(plain)["script-src"] == ["'self'"]


def test_a_response_with_its_own_policy_keeps_it():
    def view(request):
        response = HttpResponse("")
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    response = ContentSecurityPolicyMiddleware(view)(RequestFactory().get("/"))
    assert response["Content-Security-Policy"] == "default-src 'none'"


@pytest.mark.parametrize(
    ("behind_proxy", "forwarded_for", "expected"),
    [
        (False, None, "10.0.0.9"),
        (False, "203.0.113.7", "10.0.0.9"),  # not behind a proxy: the header is the client's word
        (True, None, "10.0.0.9"),
        (True, "203.0.113.7", "203.0.113.7"),
        # The proxy appends the address it saw; what the client put before it is not trusted.
        (True, "198.51.100.1, 203.0.113.7", "203.0.113.7"),
        (True, "2001:db8::1", "2001:db8::1"),
        (True, "203.0.113.7, not-an-address", "10.0.0.9"),
        (True, "", "10.0.0.9"),
    ],
)
def test_client_address(settings, behind_proxy, forwarded_for, expected):
    settings.GATEWAY_BEHIND_PROXY = behind_proxy
    headers = {"REMOTE_ADDR": "10.0.0.9"}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    assert client_address(RequestFactory().get("/", **headers)) == expected
