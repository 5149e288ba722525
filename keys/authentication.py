"""Authentication of API calls by key: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

from __future__ import annotations

import hmac
import re

from django.utils import timezone
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from keys.selectors import KeyInfo, key_info
from keys.services import key_hash

RAW_KEY = re.compile(r"^gw_([A-Za-z0-9]{1,16})_[A-Za-z0-9]{16,128}$")
MALFORMED = (
    "The API key is malformed: a Gateway key looks like gw_<key id>_<secret>, as shown once "
    "when it was issued. Send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
)
NO_BEARER = (
    "The Authorization header holds a key without its scheme: send it as "
    "'Authorization: Bearer <key>' (or as 'X-API-Key: <key>')."
)
# What a request's key turned out to be, kept on the Django request as `gateway_auth`: usage
# records the calls of a valid key one by one and only counts the others, per reason.
VALID = "valid"
MISSING = "missing"


class KeyRejected(AuthenticationFailed):
    """A key that does not authenticate; `reason` is malformed, unknown, revoked or expired."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


class KeyRefused(KeyRejected):
    """A genuine key (right secret) that may no longer be used: revoked or expired."""

    def __init__(self, message: str, *, reason: str, key_id: str):
        super().__init__(message, reason=reason)
        self.key_id = key_id


def presented_key(request) -> str | None:
    """The key sent with the request, None when neither header carries one.

    Raises KeyRejected (malformed) for a Bearer header without a key or two different keys.
    """
    header = get_authorization_header(request).decode("latin-1").strip()
    bearer = None
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer":
        bearer = rest.strip()
        if not bearer:
            raise KeyRejected(MALFORMED, reason="malformed")
    api_key = request.META.get("HTTP_X_API_KEY", "").strip() or None
    if bearer is None and api_key is None and header.startswith("gw_"):
        # A key pasted as the whole header value: the common slip of a hand-made client.
        raise KeyRejected(NO_BEARER, reason="malformed")
    if bearer is not None and api_key is not None and bearer != api_key:
        raise KeyRejected(
            "Two different API keys were sent (Authorization and X-API-Key): send one.",
            reason="malformed",
        )
    return bearer or api_key


def key_authenticate(raw_key: str) -> KeyInfo:
    """The key a raw key stands for, or KeyRejected saying why not (never echoing it).

    It only identifies: the key's budget is spent by the throttle (keys/ratelimit.py).
    """
    match = RAW_KEY.match(raw_key)
    if match is None:
        raise KeyRejected(MALFORMED, reason="malformed")
    presented = key_hash(raw_key)
    key = key_info(match.group(1))
    # An unknown key id and a wrong secret get the same answer: a key that was rotated away
    # or mistyped is simply not a key.
    if key is None or not hmac.compare_digest(key.secret_hash, presented):
        raise KeyRejected(
            "Unknown API key: it was never issued, was replaced by a rotation, or was not copied "
            "whole. Ask the data admin for a valid key.",
            reason="unknown",
        )
    if key.revoked:
        raise KeyRefused(
            f"API key {key.key_id} has been revoked. Ask the data admin for a new key.",
            reason="revoked",
            key_id=key.key_id,
        )
    now = timezone.now()
    if key.expired(now):
        raise KeyRefused(
            f"API key {key.key_id} expired on {key.expires_at:%Y-%m-%d %H:%M} UTC. "
            "Ask the data admin for a new key.",
            reason="expired",
            key_id=key.key_id,
        )
    return key
