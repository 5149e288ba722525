"""The two protected resources a token can be issued for (RFC 8707): the MCP endpoint and the
REST API. A token is valid only at the door it names."""

from __future__ import annotations

from urllib.parse import urlsplit

from gatewaysite.addresses import public_url

MCP = "mcp"
API = "api"


def site_base(request) -> str:
    """The address Gateway publishes (GATEWAY_PUBLIC_URL, else the request's own)."""
    return public_url(request)


def resource_identifiers(request) -> dict[str, tuple[str, ...]]:
    """Each door's resource identifiers, first the one its metadata document publishes.

    The REST API is `<base>/api/v1/`; the site itself (`<base>`, the resource of
    /.well-known/oauth-protected-resource) names the REST API too.
    """
    base = site_base(request)
    return {MCP: (f"{base}/mcp",), API: (f"{base}/api/v1/", base)}


def _normalized(uri: str) -> str:
    parts = urlsplit(uri.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def resource_door(request, uri: str) -> str | None:
    """Which door a resource indicator names, None for any other resource."""
    wanted = _normalized(uri)
    for door, identifiers in resource_identifiers(request).items():
        if any(_normalized(identifier) == wanted for identifier in identifiers):
            return door
    return None


def token_allows(request, resources: list[str], door: str) -> bool:
    """Was a token issued (by its `resource` list) for this door?"""
    return any(resource_door(request, uri) == door for uri in resources or [])
