"""OAuth access tokens on the request path: `Authorization: Bearer gwo_...`, at REST and /mcp.

A token stands for a user signed in through an app. It authenticates when it is known (only its
SHA-256 checksum is stored), not expired, issued for the door it is presented at (RFC 8707), and
its user is active and holds a grant; the policy is then the user's (accounts/policy.py). Both
are kept per process until a token, app, grant, user or group changes anywhere, so a revoked
grant or a deleted token is refused on the next call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from accounts.oauth import ACCESS_TOKEN_PREFIX
from accounts.policy import policy_for_user
from accounts.resources import API, MCP, token_allows
from datasets.policy import AccessPolicy
from gatewaysite.generations import ProcessCache
from keys.authentication import KeyRefused, KeyRejected

UNKNOWN = (
    "Unknown access token: it was revoked, replaced by a refresh, or never issued. Sign in "
    "again through the app to get a new one."
)
EXPIRED = "The access token has expired: use the refresh token, or sign in again."
OTHER_RESOURCE = (
    "The access token was issued for another resource (RFC 8707): a token for {issued} is not "
    "valid at {door}. Authorize again with resource={wanted}."
)
NO_GRANT = (
    "{user} has no access to any dataset any more: the grant was revoked. Ask the data admin."
)
DOOR_NAMES = {MCP: "/mcp", API: "/api/v1/"}


def is_access_token(raw: str) -> bool:
    """Does this bearer value look like one of Gateway's OAuth access tokens?"""
    return raw.startswith(ACCESS_TOKEN_PREFIX)


@dataclass(frozen=True)
class TokenFacts:
    """What the request path needs of one access token, its user and their grants."""

    user_id: int
    username: str
    expires: datetime
    resource: tuple[str, ...]
    policy: AccessPolicy | None  # None: the user holds no grant (or is inactive)


def _token_facts(checksum: str) -> TokenFacts | None:
    token = (
        get_access_token_model()
        .objects.select_related("application", "user")
        .filter(token_checksum=checksum)
        .first()
    )
    if token is None or token.user is None:
        return None
    return TokenFacts(
        user_id=token.user_id,
        username=token.user.get_username(),
        expires=token.expires,
        resource=tuple(token.resource or ()),
        policy=policy_for_user(token.user, token.application),
    )


# Tokens as the request path reads them, per process: re-read whenever a token, an app, a grant,
# a user or a group changes anywhere (accounts/apps.py tracks them under "oauth"), so a revoked
# token or grant is refused from the next request on. Unknown tokens are remembered too (the
# failed-key limit bounds how many a client may try); the LRU keeps it to a few MB.
_tokens: ProcessCache[TokenFacts | None] = ProcessCache(
    "oauth", max_bytes=8 * 1024 * 1024, size=lambda facts: 1024
)


def access_token_policy(request, raw_token: str, *, door: str) -> AccessPolicy:
    """The policy of the user an access token stands for, or KeyRejected saying why not.

    `door` is "mcp" or "api". Sets request.gateway_key_id (what usage records name).
    """
    from accounts.resources import resource_identifiers

    checksum = hashlib.sha256(raw_token.encode("utf-8")).hexdigest()
    token = _tokens.get(checksum, lambda: _token_facts(checksum))
    if token is None:
        raise KeyRejected(UNKNOWN, reason="unknown")
    if token.expires <= timezone.now():
        raise KeyRejected(EXPIRED, reason="expired")
    if not token_allows(request, list(token.resource), door):
        raise KeyRejected(
            OTHER_RESOURCE.format(
                issued=" ".join(token.resource) or "no resource",
                door=DOOR_NAMES[door],
                wanted=resource_identifiers(request)[door][0],
            ),
            reason="unknown",
        )
    if token.policy is None:
        raise KeyRefused(
            NO_GRANT.format(user=token.username), reason="revoked", key_id=f"u:{token.user_id}"
        )
    request.gateway_key_id = token.policy.principal
    return token.policy
