"""Every API error, whatever its status, has the one shape {"error": {"status", "code", "message"}}."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.gatewaysite.error_urls")]


def assert_error_shape(response, status: int, code: str) -> dict:
    """The canonical error body, checked once for every status."""
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body == {"error": {"status": status, "code": code, "message": body["error"]["message"]}}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    ("url", "method", "status", "code"),
    [
        ("/api/v1/bad/", "get", 400, "unknown_column"),
        ("/api/v1/datasets/", "get", 401, "unauthorized"),
        ("/api/v1/no-such-endpoint/", "get", 404, "not_found"),
        ("/api/v1/bad/", "post", 405, "method_not_allowed"),
        ("/api/v1/limited/", "get", 429, "rate_limited"),
        ("/api/v1/crash/", "get", 500, "server_error"),
        ("/api/v1/down/", "get", 503, "source_unavailable"),
    ],
)
def test_error_shape_for_every_status(url, method, status, code):
    client = Client(raise_request_exception=False)
    assert_error_shape(getattr(client, method)(url), status, code)


@pytest.mark.parametrize("url", ["/api/v1/limited/", "/api/v1/down/"])
def test_retry_after_on_429_and_503(url):
    assert int(Client().get(url)["Retry-After"]) > 0


@pytest.mark.parametrize("url", ["/api/v1/crash/", "/api/v1/plain-crash/"])
def test_500_does_not_echo_the_exception(url):
    response = Client(raise_request_exception=False).get(url)
    assert_error_shape(response, 500, "server_error")
    assert b"secret internals" not in response.content


def test_pages_outside_the_api_keep_html_404():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_401_tells_how_to_authenticate():
    response = Client().get("/api/v1/datasets/")
    assert_error_shape(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")
