"""Rate limit and daily quota of a key, and the budget of failed key attempts of a client address,
counted in the shared cache so every worker shares them.

When the cache does not answer, requests are let through (fail open) and a warning is logged:
the key was still authenticated and its scope enforced from the database, so what is lost
while Redis is down is only the budget, not access control. See docs/keys.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django_ratelimit.core import get_usage

from gatewaysite.cache_outage import warn_cache_down
from gatewaysite.errors import ApiError
from keys.selectors import KeyInfo

logger = logging.getLogger("gateway")
GROUP = "gateway.keys"
FAILED_GROUP = "gateway.failed-keys"
DEFAULT_FAILED_RATE = "30/m"


def _warn_cache_down(error: Exception) -> None:
    warn_cache_down(
        "Shared cache unavailable (%s): rate limits and quotas are not enforced until it answers.",
        type(error).__name__,
    )


def key_rate(key: KeyInfo) -> str:
    """The key's own rate, else GATEWAY_DEFAULT_RATE."""
    return key.rate or settings.GATEWAY_DEFAULT_RATE


def rate_limit_refusal(request, key: KeyInfo) -> ApiError | None:
    """Count this request against the key's rate: the 429 to answer once over it, else None."""
    rate = key_rate(key)
    try:
        # Keyed by the key id, never the client address: ChatGPT calls from shared ranges.
        usage = get_usage(
            request,
            group=GROUP,
            key=lambda group, request: key.key_id,
            rate=rate,
            increment=True,
        )
    except Exception as error:
        _warn_cache_down(error)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    if usage["limit"] == 0:
        # django-ratelimit reports a failed cache read as a zero limit: fail open as above.
        _warn_cache_down(RuntimeError("counter unavailable"))
        return None
    # django-ratelimit's window still counts during its last second (time_left == 0), so the
    # first second a call can succeed again is one past it.
    retry_after = max(1, int(usage["time_left"]) + 1)
    return ApiError(
        429,
        "rate_limited",
        f"Rate limit of {rate} for this key reached: retry after {retry_after} seconds.",
        retry_after=retry_after,
    )


def failed_key_rate() -> str:
    """How many rejected keys a client address may send: GATEWAY_FAILED_AUTH_RATE, else 30/m."""
    return getattr(settings, "GATEWAY_FAILED_AUTH_RATE", None) or DEFAULT_FAILED_RATE


def failed_key_check(request) -> None:
    """Count a rejected key against its client address; ApiError 429 once the budget is spent.

    Called only after a key was checked and rejected, so a valid key is never limited by
    address. The address is REMOTE_ADDR (django-ratelimit's "ip" key: RATELIMIT_IP_META_KEY
    when set, IPv6 addresses grouped by /64).
    """
    rate = failed_key_rate()
    try:
        usage = get_usage(request, group=FAILED_GROUP, key="ip", rate=rate, increment=True)
    except ImproperlyConfigured as error:
        warn_cache_down("Failed key attempts are not limited: %s", error)
        return
    except Exception as error:
        warn_cache_down(
            "Shared cache unavailable (%s): failed key attempts are not limited until it answers.",
            type(error).__name__,
        )
        return
    if usage is None or not usage["should_limit"] or usage["limit"] == 0:
        return
    retry_after = max(1, int(usage["time_left"]) + 1)
    raise ApiError(
        429,
        "rate_limited",
        f"Too many requests with an invalid API key from this address (limit {rate}): retry "
        f"after {retry_after} seconds. Calls with a valid key are not limited by address: "
        "check that the whole key was copied.",
        retry_after=retry_after,
    )


def _seconds_to_midnight(now: datetime) -> int:
    tomorrow = (now + timedelta(days=1)).date()
    midnight = datetime.combine(tomorrow, datetime.min.time(), tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds()))


def _count_today(name: str) -> int:
    # Usually one round trip: the day's counter exists after the first request.
    try:
        return cache.incr(name)
    except ValueError:
        pass
    if cache.add(name, 1, timeout=2 * 24 * 3600):
        return 1
    return cache.incr(name)


def quota_refusal(key: KeyInfo) -> ApiError | None:
    """Count this request against the key's daily quota (UTC day): the 429 once over it, else None."""
    if key.quota_per_day is None:
        return None
    now = datetime.now(UTC)
    name = f"gateway:quota:{key.key_id}:{now:%Y-%m-%d}"
    try:
        count = _count_today(name)
    except Exception as error:
        _warn_cache_down(error)
        return None
    if count <= key.quota_per_day:
        return None
    retry_after = _seconds_to_midnight(now)
    return ApiError(
        429,
        "quota_exceeded",
        f"Daily quota of {key.quota_per_day} requests for this key used up: it resets at "
        f"midnight UTC, in {retry_after} seconds.",
        retry_after=retry_after,
    )


def quota_used(key_id: str) -> int:
    """Requests counted today against a key's quota (0 when unknown), for the admin."""
    now = datetime.now(UTC)
    try:
        return int(cache.get(f"gateway:quota:{key_id}:{now:%Y-%m-%d}") or 0)
    except Exception:
        return 0
