"""Who may call the dataset API, and how often: DRF's permission and throttle stages."""

from __future__ import annotations

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.throttling import BaseThrottle

from datasets.policy import AccessPolicy
from keys.ratelimit import budget_refusal

CREDENTIAL_REQUIRED = (
    "An API key is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
)


def request_policy(request) -> AccessPolicy | None:
    """The policy of the caller that authenticated a DRF request (access/authentication.py)."""
    return request.auth if isinstance(request.auth, AccessPolicy) else None


class HasCredential(BasePermission):
    """Every call needs a valid API key or OAuth access token."""

    def has_permission(self, request, view) -> bool:
        if request_policy(request) is None:
            raise NotAuthenticated(CREDENTIAL_REQUIRED)
        return True


class PolicyThrottle(BaseThrottle):
    """The caller's rate limit and daily quota, counted in the shared cache (keys/ratelimit.py).

    A refused call is answered 429 with the refusal's code and message, and `Retry-After`
    (the view's `throttled`, then the error handler). Keyed by the caller's budget, never the
    client address: ChatGPT calls from shared ranges.
    """

    def allow_request(self, request, view) -> bool:
        policy = request_policy(request)
        budget = None if policy is None else policy.budget
        self.refusal = None if budget is None else budget_refusal(request, budget)
        request.gateway_refusal = self.refusal
        return self.refusal is None

    def wait(self) -> float | None:
        return None if self.refusal is None else self.refusal.retry_after
