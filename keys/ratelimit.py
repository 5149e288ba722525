"""Rate limit and daily quota of a key, and the budget of failed key attempts of a client address,
counted in the shared cache so every worker shares them.

With Redis, everything a call with a key needs from the shared cache is one round trip, one Lua
script (`request_trip`): the generations of the per-process caches (is this process's key table
current?), the key's rate-limit counter (django-ratelimit's own cache key, window and expiry) and
daily quota counter, and the usage records this process has waiting (keys/usage.py). Key
authentication makes it, and spends the key's budget in it only when this process's copy of the key
table already holds the presented secret and the script finds that copy current (its generation
unchanged): a stranger who knows a key id, or a secret rotated away, never spends the key's budget.
The policy's throttle then answers from those counts (`budget_refusal`). A call that authenticates
but spends nothing (MCP initialize, tools/list) gives its units back when it ends. When the key
table was not yet loaded, or has just changed, the counters take a round trip of their own.

When the cache does not answer, requests are let through (fail open) and a warning is logged:
the key was still authenticated and its scope enforced from the database, so what is lost
while Redis is down is only the budget, not access control. See docs/keys.md.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from django.conf import settings
from django.core.cache import cache, caches
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
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

from gatewaysite import generations
from gatewaysite.cache_outage import warn_cache_down
from gatewaysite.errors import ApiError
from keys import usage
from keys.selectors import KeyInfo

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


def quota_refusal(key: KeyInfo) -> ApiError | None:
    """Count this request against the key's daily quota (UTC day): the 429 once over it, else None."""
    if key.quota_per_day is None:
        return None
    now = datetime.now(UTC)
    try:
        count = _count_today(_quota_name(key.key_id, now))
    except Exception as error:
        _warn_cache_down(error)
        return None
    if count <= key.quota_per_day:
        return None
    return _quota_exceeded(key.quota_per_day, now)


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


# One round trip a request (Redis): KEYS are the generations to read (ARGV[1] of them), then the
# rate counter, the quota counter and the shared usage list. ARGV: the number of generations; the
# position of the generation that guards the counters (0: none) and the value it must still have;
# the rate's limit; the rate counter's expiry (0: no counter) and the quota counter's (0: no quota);
# a fresh token per generation (written where none exists yet); the usage records to push.
# The counters follow django-ratelimit's get_usage (add 1 with the expiry, else increment); the
# quota is spent only by a call the rate lets through, as when each was a round trip of its own.
# Reply: the generations, 1 if the counters were spent (else 0), the two counts (0: not counted),
# the usage list's length.
_TRIP = """
local n = tonumber(ARGV[1])
local reply = {}
for i = 1, n do
  local value = redis.call('GET', KEYS[i])
  if not value then
    value = ARGV[6 + i]
    redis.call('SET', KEYS[i], value)
  end
  reply[i] = value
end
local guard = tonumber(ARGV[2])
local spend = guard == 0 or reply[guard] == ARGV[3]
local function count(key, seconds)
  if redis.call('SET', key, 1, 'NX', 'EX', seconds) then
    return 1
  end
  return redis.call('INCR', key)
end
local rate_seconds, quota_seconds = tonumber(ARGV[5]), tonumber(ARGV[6])
local rate_count, quota_count = 0, 0
if spend and rate_seconds > 0 then
  rate_count = count(KEYS[n + 1], rate_seconds)
end
if spend and quota_seconds > 0 and (rate_seconds == 0 or rate_count <= tonumber(ARGV[4])) then
  quota_count = count(KEYS[n + 2], quota_seconds)
end
reply[n + 1] = spend and 1 or 0
reply[n + 2] = rate_count
reply[n + 3] = quota_count
if #ARGV > 6 + n then
  reply[n + 4] = redis.call('RPUSH', KEYS[n + 3], unpack(ARGV, 7 + n))
else
  reply[n + 4] = redis.call('LLEN', KEYS[n + 3])
end
return reply
"""
# Units of a call that spent nothing given back, on counters that still exist (never recreated).
_GIVE_BACK = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('DECR', KEYS[i])
  end
end
"""
# Records pushed per round trip: one or two in steady traffic; a backlog goes by the flush.
PUSH_AT_MOST = 50
_scripts: dict[str, Script] = {}
_request = threading.local()


@dataclass(frozen=True)
class Spent:
    """What a round trip counted for one key: its rate-limit and daily-quota counters."""

    key_id: str
    rate: str
    limit: int
    window: int
    rate_name: str
    rate_count: int  # 0: not counted (rate limits switched off)
    quota_per_day: int | None
    quota_name: str
    quota_count: int  # 0: not counted (no quota, or the rate refused the call)
    now: datetime


def _run(client, name: str, source: str, keys: list, args: list):
    script = _scripts.get(name)
    if script is None:
        script = _scripts[name] = client.register_script(source)
    # EVALSHA: the script's text is sent once per Redis server, not on every call.
    return script(keys, args, client=client)


def _round_trip(client, *, key: KeyInfo | None, guard: str | None, read: bool) -> Spent | None:
    """Run the script: read the generations (when `read`), spend the key's budget (when `key`;
    with `guard`, only if the key table's generation is still that), push waiting usage records."""
    backend = cast(RedisCache, caches["default"])  # usage.redis_client() found it is one
    names = generations.names() if read else []
    guarded = guard is not None and "keys" in names
    now = datetime.now(UTC)
    rate, limit, window, rate_seconds = "", 0, 0, 0
    rate_name = quota_name = ""
    if key is not None:
        rate = key_rate(key)
        limit, period = _split_rate(rate)
        window = _get_window(key.key_id, period)
        rate_name = backend.make_key(_make_cache_key(GROUP, window, rate, key.key_id, ALL))
        if getattr(settings, "RATELIMIT_ENABLE", True):
            rate_seconds = period + EXPIRATION_FUDGE
        quota_name = backend.make_key(_quota_name(key.key_id, now))
    quota_seconds = QUOTA_SECONDS if key is not None and key.quota_per_day is not None else 0
    pushed = usage.waiting_take(PUSH_AT_MOST)
    try:
        reply = _run(
            client,
            "trip",
            _TRIP,
            [
                *(backend.make_key(generations.cache_key(name)) for name in names),
                rate_name or "-",
                quota_name or "-",
                usage.list_name(),
            ],
            [
                len(names),
                names.index("keys") + 1 if guarded else 0,
                backend.client.encode(guard) if guarded else "",
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
    found = {name: backend.client.decode(value) for name, value in zip(names, reply, strict=False)}
    spent, rate_count, quota_count, listed = reply[len(names) :]
    if read:
        generations.request_generations_set(found)
    usage.listed(listed)
    if key is None or not spent:
        return None
    return Spent(
        key_id=key.key_id,
        rate=rate,
        limit=limit,
        window=window,
        rate_name=rate_name,
        rate_count=rate_count,
        quota_per_day=key.quota_per_day,
        quota_name=quota_name,
        quota_count=quota_count,
        now=now,
    )


def request_trip(holder: tuple[KeyInfo, str] | None = None) -> None:
    """The request's one round trip to the shared cache, made by key authentication before it
    reads the key table (Redis only; once per request).

    `holder` is the key this process's copy of the key table says the presented key is, with
    that copy's generation, when the presented secret matches it: its budget is spent in the same
    round trip if the copy is still current. Without a holder nothing is spent.
    """
    client = usage.redis_client()
    if client is None or not generations.request_active() or getattr(_request, "done", False):
        return
    _request.done = True
    key, guard = holder if holder is not None else (None, None)
    seen = generations.request_generations()
    if seen is not None and key is not None and seen.get("keys") != guard:
        key = None  # the table moved since this copy was loaded: the throttle counts instead
    if seen is not None and key is None:
        return  # nothing this request needs: waiting usage records go with a later round trip
    try:
        _request.spent = _round_trip(client, key=key, guard=guard, read=seen is None)
    except Exception as error:
        _request.failed = type(error).__name__
        if seen is None:
            generations.request_generations_set(generations.unreadable(generations.names()))


def _claim(key: KeyInfo) -> Spent | None:
    """What this request's round trip spent for `key`, if anything (then it is not given back)."""
    spent = getattr(_request, "spent", None)
    if spent is None or spent.key_id != key.key_id:
        return None
    if spent.rate != key_rate(key) or spent.quota_per_day != key.quota_per_day:
        return None  # spent under other limits: given back when the request ends
    _request.spent = None
    return spent


def budget_refusal(request, key: KeyInfo) -> ApiError | None:
    """Spend one unit of the key's rate limit and daily quota: the 429 once over either, else None.

    With Redis the units were usually spent by the request's round trip already (see
    `request_trip`); otherwise they are spent now, in one round trip (with the generations, when
    the request has not read them yet). On local memory: django-ratelimit, then the quota counter.
    """
    client = usage.redis_client()
    if client is None:
        return rate_limit_refusal(request, key) or quota_refusal(key)
    spent = _claim(key)
    if spent is None:
        failed = getattr(_request, "failed", None)
        if failed is not None:
            _warn_cache_down(failed)  # this request's round trip found the cache down already
            return None
        read = generations.request_active() and generations.request_generations() is None
        try:
            spent = _round_trip(client, key=key, guard=None, read=read)
        except Exception as error:
            _warn_cache_down(error)
            return None
        if generations.request_active():
            _request.done = True
    if spent is None:
        return None
    if spent.rate_count > spent.limit:
        return _rate_limited(spent.rate, spent.window - int(time.time()))
    if spent.quota_per_day is not None and spent.quota_count > spent.quota_per_day:
        return _quota_exceeded(spent.quota_per_day, spent.now)
    return None


def _reset(**kwargs) -> None:
    _request.done, _request.spent, _request.failed = False, None, None


def _give_back(**kwargs) -> None:
    spent = getattr(_request, "spent", None)
    _reset()
    if spent is None:
        return
    # Spent by authentication, claimed by no throttle: this call does not cost the key anything.
    counted = [(spent.rate_name, spent.rate_count), (spent.quota_name, spent.quota_count)]
    names = [name for name, count in counted if count]
    client = usage.redis_client()
    if not names or client is None:
        return
    try:
        _run(client, "give-back", _GIVE_BACK, names, [])
    except Exception as error:
        _warn_cache_down(error)


request_started.connect(_reset, dispatch_uid="gateway-budget-start")
request_finished.connect(_give_back, dispatch_uid="gateway-budget-finish")
