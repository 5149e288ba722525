"""A person and an OAuth client driving Gateway's authorization server over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')


def form_fields(page: str) -> dict[str, str]:
    """The named inputs of a page's form, with their values."""
    fields = {}
    for tag in INPUT.findall(page):
        attributes = dict(ATTRIBUTE.findall(tag))
        if "name" in attributes and attributes.get("type") != "submit":
            fields[attributes["name"]] = html.unescape(attributes.get("value", ""))
    return fields


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query(location: str) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


@dataclass
class Browser:
    """A person's browser: cookies kept, redirects shown rather than followed."""

    base: str

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, follow_redirects=False, timeout=20)

    def sign_in(self, location: str, username: str, password: str) -> httpx.Response:
        """Sign in on the page `location` points at; the redirect that follows."""
        page = self.http.get(location)
        assert page.status_code == 200, page.text
        fields = form_fields(page.text)
        fields.update(username=username, password=password)
        return self.http.post(location, data=fields)

    def authorize(self, params: dict, *, username: str, password: str) -> httpx.Response:
        """Open the authorization URL, signing in when asked; the consent page (or a redirect)."""
        response = self.http.get("/oauth/authorize/?" + urlencode(params, doseq=True))
        if response.status_code == 302 and "/oauth/sign-in/" in response.headers["Location"]:
            signed_in = self.sign_in(response.headers["Location"], username, password)
            assert signed_in.status_code == 302, signed_in.text
            response = self.http.get(signed_in.headers["Location"])
        return response

    def consent(self, page: httpx.Response, *, allow: bool = True) -> httpx.Response:
        """Answer the consent page; the redirect to the client's callback."""
        fields = form_fields(page.text)
        if allow:
            fields["allow"] = "on"
        return self.http.post("/oauth/authorize/", data=fields)

    def close(self) -> None:
        self.http.close()
