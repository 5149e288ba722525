"""Authentication of API calls by key: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

from __future__ import annotations

import hmac
import re

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from keys import selectors
from keys.ratelimit import failed_key_check, request_trip
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


def _holder(key_id: str, presented: str) -> tuple[KeyInfo, str] | None:
    """The key this process's copy of the key table (however old) says the presented key is, with
    the copy's generation, if the secret matches and the key may be used: only then may the
    request's round trip spend the key's budget, and only if that copy turns out to be current.
    Authentication itself never trusts the copy before the generation is read."""
    held = selectors.key_table_held()
    if held is None:
        return None
    table, seen = held
    key = table.get(key_id)
    if key is None or key.revoked or key.expired(timezone.now()):
        return None
    return (key, seen) if hmac.compare_digest(key.secret_hash, presented) else None


def key_authenticate(raw_key: str, *, spend: bool = True) -> KeyInfo:
    """The key a raw key stands for, or KeyRejected saying why not (never echoing it).

    With `spend`, the request's round trip to the shared cache, which reads the generations
    before the key table is used, also spends the key's budget for the throttle that follows
    (keys/ratelimit.py; given back if the call spends nothing).
    """
    match = RAW_KEY.match(raw_key)
    if match is None:
        raise KeyRejected(MALFORMED, reason="malformed")
    presented = key_hash(raw_key)
    request_trip(_holder(match.group(1), presented) if spend else None)
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


def request_key_status(request) -> str:
    """What the request's key is (valid, missing, or why it was rejected), without side effects.

    For requests that no API view authenticated (an unknown URL under /api/): a valid key's
    id is kept on the request, so its usage record names it.
    """
    try:
        raw_key = presented_key(request)
        if raw_key is None:
            return MISSING
        key = key_authenticate(raw_key, spend=False)
    except KeyRejected as rejected:
        return rejected.reason
    request.gateway_key_id = key.key_id
    return VALID


class ApiKeyAuthentication(BaseAuthentication):
    """DRF authentication by Gateway key; request.auth is the key, request.user stays None.

    A rejected key also spends the client address's budget of failed attempts: once it is
    spent, rejected keys are answered 429 instead of 401. A valid key is never limited by
    address (ChatGPT calls from shared address ranges).
    """

    def authenticate(self, request):
        django_request = getattr(request, "_request", request)
        try:
            raw_key = presented_key(request)
            if raw_key is None:
                django_request.gateway_auth = MISSING
                return None
            key = key_authenticate(raw_key)
        except KeyRejected as rejected:
            django_request.gateway_auth = rejected.reason
            failed_key_check(django_request)
            raise
        django_request.gateway_auth = VALID
        django_request.gateway_key_id = key.key_id
        return (None, key)

    def authenticate_header(self, request) -> str:
        # Defined so that DRF answers 401 (with WWW-Authenticate) rather than 403.
        return 'Bearer realm="api"'
