"""Rate limit and daily quota of a caller's budget, and the budget of failed key attempts of a
client address, counted in the shared cache so every worker shares them.

A budget (datasets/policy.py `Budget`) names what a caller's calls are counted under (a key id,
or a signed-in user) and how many it may make: authentication identifies the caller, and the
throttle spends one unit of its budget, once per call (`budget_refusal`).

With Redis, the spend is one round trip, one Lua script: the key's rate-limit counter
(django-ratelimit's own cache key, window and expiry) and daily quota counter, the generations of
the per-process caches when the request has not read them yet, and the usage records this
process has waiting (keys/usage.py).

When the cache does not answer, requests are let through (fail open) and a warning is logged:
the caller was still authenticated and its scope enforced from the database, so what is lost
while Redis is down is only the budget, not access control. See docs/keys.md.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

from django.conf import settings
from django.core.cache import cache, caches
from django.core.exceptions import ImproperlyConfigured
from django_ratelimit import ALL
from django_ratelimit.core import (
    EXPIRATION_FUDGE,
    _get_window,
    _make_cache_key,
    _split_rate,
    get_usage,
)
from django_redis.cache import RedisCache
from redis.commands.core import Script

from datasets.policy import Budget
from gatewaysite import generations
from gatewaysite.cache_outage import warn_cache_down
from gatewaysite.errors import ApiError
from keys import usage

logger = logging.getLogger("gateway")
GROUP = "gateway.keys"
FAILED_GROUP = "gateway.failed-keys"
DEFAULT_FAILED_RATE = "30/m"
QUOTA_SECONDS = 2 * 24 * 3600
CACHE_DOWN = (
    "Shared cache unavailable (%s): rate limits and quotas are not enforced until it answers."
)


def _warn_cache_down(error: Exception | str) -> None:
    warn_cache_down(CACHE_DOWN, error if isinstance(error, str) else type(error).__name__)


def budget_rate(budget: Budget) -> str:
    """The budget's own rate, else GATEWAY_DEFAULT_RATE."""
    return budget.rate or settings.GATEWAY_DEFAULT_RATE


def rate_limit_refusal(request, budget: Budget) -> ApiError | None:
    """Count this request against the budget's rate: the 429 to answer once over it, else None."""
    rate = budget_rate(budget)
    try:
        # Keyed by the budget's name, never the client address: ChatGPT calls from shared ranges.
        usage = get_usage(
            request,
            group=GROUP,
            key=lambda group, request: budget.name,
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
    return _rate_limited(rate, usage["time_left"])


def _rate_limited(rate: str, time_left: int) -> ApiError:
    # django-ratelimit's window still counts during its last second (time_left == 0), so the
    # first second a call can succeed again is one past it.
    retry_after = max(1, int(time_left) + 1)
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


def _quota_name(key_id: str, now: datetime) -> str:
    return f"gateway:quota:{key_id}:{now:%Y-%m-%d}"


def _count_today(name: str) -> int:
    # Usually one round trip: the day's counter exists after the first request.
    try:
        return cache.incr(name)
    except ValueError:
        pass
    if cache.add(name, 1, timeout=QUOTA_SECONDS):
        return 1
    return cache.incr(name)


def quota_refusal(budget: Budget) -> ApiError | None:
    """Count this request against the budget's daily quota (UTC day): the 429 once over it."""
    if budget.quota_per_day is None:
        return None
    now = datetime.now(UTC)
    try:
        count = _count_today(_quota_name(budget.name, now))
    except Exception as error:
        _warn_cache_down(error)
        return None
    if count <= budget.quota_per_day:
        return None
    return _quota_exceeded(budget.quota_per_day, now)


def _quota_exceeded(quota_per_day: int, now: datetime) -> ApiError:
    retry_after = _seconds_to_midnight(now)
    return ApiError(
        429,
        "quota_exceeded",
        f"Daily quota of {quota_per_day} requests for this key used up: it resets at "
        f"midnight UTC, in {retry_after} seconds.",
        retry_after=retry_after,
    )


def quota_used(key_id: str) -> int:
    """Requests counted today against a key's quota (0 when unknown), for the admin."""
    try:
        return int(cache.get(_quota_name(key_id, datetime.now(UTC))) or 0)
    except Exception:
        return 0


# The spend of one call (Redis): KEYS are the generations to read (ARGV[1] of them), then the
# rate counter, the quota counter and the shared usage list. ARGV: the number of generations; the
# rate's limit; the rate counter's expiry (0: no counter) and the quota counter's (0: no quota); a
# fresh token per generation (written where none exists yet); the usage records to push.
# The counters follow django-ratelimit's get_usage (add 1 with the expiry, else increment); the
# quota is spent only by a call the rate lets through, as when each was a round trip of its own.
# Reply: the generations, the two counts (0: not counted), the usage list's length.
_SPEND = """
local n = tonumber(ARGV[1])
local reply = {}
for i = 1, n do
  local value = redis.call('GET', KEYS[i])
  if not value then
    value = ARGV[4 + i]
    redis.call('SET', KEYS[i], value)
  end
  reply[i] = value
end
local function count(key, seconds)
  if redis.call('SET', key, 1, 'NX', 'EX', seconds) then
    return 1
  end
  return redis.call('INCR', key)
end
local rate_seconds, quota_seconds = tonumber(ARGV[3]), tonumber(ARGV[4])
local rate_count, quota_count = 0, 0
if rate_seconds > 0 then
  rate_count = count(KEYS[n + 1], rate_seconds)
end
if quota_seconds > 0 and (rate_seconds == 0 or rate_count <= tonumber(ARGV[2])) then
  quota_count = count(KEYS[n + 2], quota_seconds)
end
reply[n + 1] = rate_count
reply[n + 2] = quota_count
if #ARGV > 4 + n then
  reply[n + 3] = redis.call('RPUSH', KEYS[n + 3], unpack(ARGV, 5 + n))
else
  reply[n + 3] = redis.call('LLEN', KEYS[n + 3])
end
return reply
"""
# Records pushed per spend: one or two in steady traffic; a backlog goes by the flush.
PUSH_AT_MOST = 50
_scripts: dict[str, Script] = {}


def _run(client, name: str, source: str, keys: list, args: list):
    script = _scripts.get(name)
    if script is None:
        script = _scripts[name] = client.register_script(source)
    # EVALSHA: the script's text is sent once per Redis server, not on every call.
    return script(keys, args, client=client)


def _spend(client, budget: Budget, *, read: bool) -> ApiError | None:
    """Run the script: spend one unit of the budget, read the generations (when `read`), push
    waiting usage records; the 429 once over the rate or the quota."""
    backend = cast(RedisCache, caches["default"])  # usage.redis_client() found it is one
    names = generations.names() if read else []
    now = datetime.now(UTC)
    rate = budget_rate(budget)
    limit, period = _split_rate(rate)
    window = _get_window(budget.name, period)
    rate_name = backend.make_key(_make_cache_key(GROUP, window, rate, budget.name, ALL))
    rate_seconds = period + EXPIRATION_FUDGE if getattr(settings, "RATELIMIT_ENABLE", True) else 0
    quota_seconds = QUOTA_SECONDS if budget.quota_per_day is not None else 0
    pushed = usage.waiting_take(PUSH_AT_MOST)
    try:
        reply = _run(
            client,
            "spend",
            _SPEND,
            [
                *(backend.make_key(generations.cache_key(name)) for name in names),
                rate_name,
                backend.make_key(_quota_name(budget.name, now)),
                usage.list_name(),
            ],
            [
                len(names),
                limit,
                rate_seconds,
                quota_seconds,
                *(backend.client.encode(uuid.uuid4().hex) for _ in names),
                *pushed,
            ],
        )
    except Exception:
        usage.waiting_restore(pushed)
        raise
    if read:
        found = {
            name: backend.client.decode(value)
            for name, value in zip(names, reply[: len(names)], strict=True)
        }
        generations.request_generations_set(found)
    rate_count, quota_count, listed = reply[len(names) :]
    usage.listed(listed)
    if rate_seconds and rate_count > limit:
        return _rate_limited(rate, window - int(time.time()))
    if budget.quota_per_day is not None and quota_count > budget.quota_per_day:
        return _quota_exceeded(budget.quota_per_day, now)
    return None


def budget_refusal(request, budget: Budget) -> ApiError | None:
    """Spend one unit of the budget's rate limit and daily quota: the 429 once over either.

    With Redis, one round trip (with the generations, when the request has not read them yet);
    on local memory, django-ratelimit, then the quota counter.
    """
    client = usage.redis_client()
    if client is None:
        return rate_limit_refusal(request, budget) or quota_refusal(budget)
    read = generations.request_active() and generations.request_generations() is None
    try:
        return _spend(client, budget, read=read)
    except Exception as error:
        _warn_cache_down(error)
        return None
