"""Masking and hashing of personal data in every value that leaves the server."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def mask(value) -> str | None:
    """'jane@example.com' -> 'j***@example.com'; 'Jane Doe' -> 'J***'."""
    if value is None:
        return None
    text = str(value)
    local, at, domain = text.partition("@")
    if at:
        return f"{local[:1]}***@{domain}"
    return f"{text[:1]}***"


def digest(value) -> str | None:
    """A stable, keyed digest: equal values give equal digests, which cannot be reversed."""
    if value is None:
        return None
    key = ("gateway-pii:" + settings.SECRET_KEY).encode()
    return hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:16]


PROTECT = {"mask": mask, "hash": digest}
