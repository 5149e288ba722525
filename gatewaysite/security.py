"""Browser-facing protections: the Content-Security-Policy of every page, and the client address.

Every response carries a policy that lets a page run only scripts served by Gateway itself
(`script-src 'self'`): no inline script, no event-handler attribute, no other host. Text an
admin types or a source contains is escaped by the templates and rendered as text by Swagger UI
and ReDoc (`sanitize`); the policy is the second wall should one of them ever fail. See
docs/security.md.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

HEADER = "Content-Security-Policy"

# Inline styles stay allowed: Gateway's templates, the admin, Swagger UI and ReDoc (which builds
# its styles at run time) use them, and a style cannot run script. ReDoc's search runs in a
# worker it creates from a blob: URL. Images may be data: URLs (Swagger UI's icons).
POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "worker-src": ["'self'", "blob:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


class CspNonce(SimpleLazyObject):
    """A per-request nonce, made (and added to the policy) only when a template uses it."""

    def __init__(self) -> None:
        super().__init__(lambda: secrets.token_urlsafe(18))

    @property
    def used(self) -> bool:
        """Whether a page asked for the nonce while it was rendered."""
        return self._wrapped is not empty


class NonceRequest(HttpRequest):
    """A request the middleware below has given its nonce, read by templates as `request.csp_nonce`."""

    csp_nonce: CspNonce


def content_security_policy(nonce: str | None = None) -> str:
    """The header's value; a nonce lets one inline <script nonce="..."> run on that page only."""
    directives = []
    for name, sources in POLICY.items():
        if name == "script-src" and nonce is not None:
            sources = [*sources, f"'nonce-{nonce}'"]
        directives.append(" ".join([name, *sources]))
    return "; ".join(directives)


class ContentSecurityPolicyMiddleware:
    """Adds the Content-Security-Policy to every response that does not set its own."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = CspNonce()
        cast(NonceRequest, request).csp_nonce = nonce
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = content_security_policy(str(nonce) if nonce.used else None)
        return response


def client_address(request: HttpRequest) -> str:
    """The caller's IP address, used by the per-address limits (django-ratelimit's "ip" key).

    Behind a proxy (GATEWAY_BEHIND_PROXY) every connection comes from the proxy, so the address
    is the last one in X-Forwarded-For: the one the proxy itself appended. Earlier entries are
    whatever the client sent and are never trusted; a value that is not an IP address is
    ignored.
    """
    if settings.GATEWAY_BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR", "")
