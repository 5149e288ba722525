"""The address Gateway publishes: one rule for the schema, REST links, MCP and OAuth metadata."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

DEFAULT_PORTS = {"https": "443", "http": "80"}


def public_url(request) -> str:
    """GATEWAY_PUBLIC_URL when set, else the request's own base URL: the host in lower case,
    without its scheme's default port and without a trailing slash (`https://host`)."""
    url = settings.GATEWAY_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    parts = urlsplit(url)
    netloc = parts.netloc.lower()
    default_port = DEFAULT_PORTS.get(parts.scheme)
    if default_port and netloc.endswith(f":{default_port}"):
        netloc = netloc[: -len(default_port) - 1]
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
