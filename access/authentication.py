"""Who is calling: one function resolves the caller of every door (REST, MCP, the schema views).

A request presents an API key (`Authorization: Bearer gw_...` or `X-API-Key`), an OAuth access
token (`Bearer gwo_...`, valid only at the door it was issued for: RFC 8707), or nothing. The
answer is the caller's `AccessPolicy` (datasets/policy.py), None for an anonymous request, or
KeyRejected saying why the credential does not authenticate. Authentication only identifies:
the budget is spent by the throttle (access/permissions.py), once.
"""

from __future__ import annotations

from typing import cast

from rest_framework.authentication import BaseAuthentication

from accounts.authentication import access_token_policy, is_access_token
from datasets.policy import AccessPolicy
from keys.authentication import MISSING, VALID, KeyRejected, key_authenticate, presented_key
from keys.ratelimit import failed_key_check

_UNRESOLVED = object()


def caller_resolve(request, *, door: str) -> AccessPolicy | None:
    """The policy of the credential the request presents at `door` ("api" or "mcp"), None when
    it presents none, or KeyRejected (after spending the client address's budget of failed
    attempts: past it, ApiError 429).

    Resolved once per request. Leaves on the request what usage records need: `gateway_auth`
    (valid, missing, or why the credential was rejected) and `gateway_key_id` (its principal).
    """
    request = getattr(request, "_request", request)  # a DRF request wraps Django's
    resolved = getattr(request, "gateway_caller", _UNRESOLVED)
    if resolved is not _UNRESOLVED:
        return cast(AccessPolicy | None, resolved)
    try:
        raw = presented_key(request)
        if raw is None:
            policy = None
        elif is_access_token(raw):
            policy = access_token_policy(request, raw, door=door)
        else:
            policy = key_authenticate(raw).policy()
    except KeyRejected as rejected:
        request.gateway_auth = rejected.reason
        failed_key_check(request)
        raise
    request.gateway_auth = MISSING if policy is None else VALID
    if policy is not None:
        request.gateway_key_id = policy.principal
    request.gateway_caller = policy
    return policy


class CallerAuthentication(BaseAuthentication):
    """DRF authentication of the REST API: request.auth is the caller's AccessPolicy."""

    def authenticate(self, request):
        policy = caller_resolve(request, door="api")
        return None if policy is None else (None, policy)

    def authenticate_header(self, request) -> str:
        # Defined so that DRF answers 401 (with WWW-Authenticate) rather than 403.
        return 'Bearer realm="api"'
