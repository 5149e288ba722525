"""Usage recording of every API request, kept off the request path's critical cost.

Each request under /api/ made with a valid key appends one compact record to a list in this
process. When the shared cache is django-redis, the next request's one round trip to it
(keys/ratelimit.py) moves the waiting records to a Redis list shared by every process, so
recording adds no round trip of its own; a process's last call waits in the process until its next
request, its next flush or its exit. Whichever request finds the buffers long enough, or this
process's last flush old enough, moves a batch to the database with one bulk_create (this
process's waiting records and a batch of the shared list). If Redis does not answer, records stay
in the process and are written from there, so they are not lost.

A request without a valid key (none, malformed, unknown, revoked or expired) is not recorded:
it adds one to the counter of its UTC day and reason (a Redis hash field, or a counter in this
process), and the flush adds the counters to RejectedCalls. Whatever such traffic amounts to,
it costs one increment per request and at most one row per day and reason.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.cache import caches
from django.core.signals import request_finished, request_started
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_redis import get_redis_connection
from django_redis.cache import RedisCache

from gatewaysite.cache_outage import warn_cache_down

logger = logging.getLogger("gateway")

BATCH_SIZE = 200
FLUSH_SECONDS = 5.0
# Far above any sane batch: a process whose database is unreachable must not grow forever.
LOCAL_LIMIT = 100_000
LAST_USED_EVERY = timedelta(minutes=1)


_lock = threading.Lock()
_local: list[list] = []
# (UTC day as YYYY-MM-DD, reason) -> calls refused: a few entries a day, whatever the traffic.
_rejected_local: Counter[tuple[str, str]] = Counter()
_last_flush = time.monotonic()
# The shared list's length as the last round trip saw it: with this process's waiting records,
# what decides that a batch is due.
_listed = 0


def annotate(request, *, rows: int) -> None:
    """Called by the dataset API views once a call has read its rows, for its usage record.

    `request` is the DRF request (or the Django HttpRequest). The operation and dataset come
    from the URL the call resolved to (access/urls.py names each pattern for its operation).
    """
    getattr(request, "_request", request).gateway_usage_rows = rows


def _from_url(request) -> tuple[str, str]:
    """The dataset slug and operation of an API call, from the URL pattern it resolved to."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.namespace != "api":
        return "", ""
    return str(match.kwargs.get("slug", "")), match.url_name or ""


def error_code(response) -> str:
    """The `code` of a failed call's error body ("" for a success or a body without one)."""
    if response.status_code < 400:
        return ""
    body = getattr(response, "data", None)  # a DRF response: its data, before rendering
    if body is None and not getattr(response, "streaming", False):
        if "json" not in response.get("Content-Type", ""):
            return ""
        try:
            body = json.loads(response.content)
        except ValueError:
            return ""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code[:40] if isinstance(code, str) else ""


def request_record(request, response, started: float, duration_ms: float) -> list:
    """The usage record of one REST request, as `record` takes it."""
    dataset, operation = _from_url(request)
    rows = getattr(request, "gateway_usage_rows", None)
    return [
        started,
        getattr(request, "gateway_key_id", "") or "",
        dataset[:40],
        operation[:20],
        response.status_code,
        round(duration_ms, 3),
        rows if isinstance(rows, int) and rows >= 0 else None,
        error_code(response),
    ]


def redis_client():
    """The raw Redis client behind the default cache, or None when the cache is not Redis."""
    if not isinstance(caches["default"], RedisCache):
        return None
    return get_redis_connection("default")


def list_name() -> str:
    """The shared list of usage records waiting for the database (with the cache's prefix)."""
    # Through make_key so that KEY_PREFIX and VERSION keep deployments sharing a Redis apart.
    return caches["default"].make_key("gateway:usage")


_list_name = list_name  # its former name


def _rejected_name() -> str:
    return caches["default"].make_key("gateway:rejected")


def record(entry: list) -> None:
    """Buffer one usage record in this process, and flush a batch when the buffers ask for it:
    inside a request, once its response has been sent (request_finished), so that no caller
    waits for the database write."""
    with _lock:
        if len(_local) < LOCAL_LIMIT:
            _local.append(entry)
        length = len(_local) + _listed
    if length >= BATCH_SIZE or time.monotonic() - _last_flush >= FLUSH_SECONDS:
        if getattr(_request, "open", False):
            _request.flush_due = True
        else:
            usage_flush()


_request = threading.local()


def _request_started(**kwargs) -> None:
    _request.open, _request.flush_due = True, False


def _request_finished(**kwargs) -> None:
    due = getattr(_request, "flush_due", False)
    _request.open, _request.flush_due = False, False
    if due:
        try:
            usage_flush()
        except Exception:
            # Usage is bookkeeping: the records stay buffered for the next flush.
            logger.exception("Usage flush failed")


request_started.connect(_request_started, dispatch_uid="gateway-usage-start")
request_finished.connect(_request_finished, dispatch_uid="gateway-usage-finish")


def waiting_take(limit: int) -> list[str]:
    """Up to `limit` waiting records, oldest first, encoded for the shared list: the round trip
    pushes them (and gives them back with `waiting_restore` if it fails)."""
    with _lock:
        taken = _local[:limit]
        del _local[:limit]
    return [json.dumps(entry, separators=(",", ":")) for entry in taken]


def waiting_restore(encoded: list[str]) -> None:
    """Put records the round trip could not push back in front of this process's buffer."""
    with _lock:
        _local[:0] = [json.loads(entry) for entry in encoded]


def listed(length: int) -> None:
    """The shared list's length, as the round trip's push saw it."""
    global _listed
    _listed = length


def rejected_count(reason: str) -> None:
    """Count one call refused without a valid key (reason: missing, malformed, unknown, ...)."""
    field = f"{datetime.now(UTC):%Y-%m-%d}:{reason}"
    counted = False
    try:
        client = redis_client()
        if client is not None:
            client.hincrby(_rejected_name(), field, 1)
            counted = True
    except Exception as error:
        warn_cache_down(
            "Usage buffer in Redis unavailable (%s): buffering in process.", type(error).__name__
        )
    if not counted:
        day, _, reason = field.partition(":")
        with _lock:
            _rejected_local[(day, reason)] += 1
    if time.monotonic() - _last_flush >= FLUSH_SECONDS:
        usage_flush()


def _take_redis(client) -> list[list]:
    pipe = client.pipeline(transaction=True)
    pipe.lrange(list_name(), 0, BATCH_SIZE * 10 - 1)
    pipe.ltrim(list_name(), BATCH_SIZE * 10, -1)
    items, _ = pipe.execute()
    return [json.loads(item) for item in items]


def _take_local() -> list[list]:
    with _lock:
        entries = list(_local)
        _local.clear()
    return entries


def _take_rejected() -> Counter[tuple[str, str]]:
    with _lock:
        counts = Counter(_rejected_local)
        _rejected_local.clear()
    try:
        client = redis_client()
        if client is not None:
            # One transaction: a count added between the read and the delete cannot be lost.
            pipe = client.pipeline(transaction=True)
            pipe.hgetall(_rejected_name())
            pipe.delete(_rejected_name())
            fields, _ = pipe.execute()
            for field, value in fields.items():
                day, _, reason = field.decode().partition(":")
                counts[(day, reason)] += int(value)
    except Exception as error:
        warn_cache_down(
            "Usage buffer in Redis unavailable (%s): flushing this process only.",
            type(error).__name__,
        )
    return counts


def _write_rejected(counts: Counter[tuple[str, str]]) -> None:
    from keys.models import RejectedCalls

    for (day, reason), count in sorted(counts.items()):
        if count <= 0:
            continue
        # Several processes flush at once: add to the row, create it only when none exists.
        rows = RejectedCalls.objects.filter(day=day, reason=reason)
        if rows.update(count=F("count") + count):
            continue
        try:
            with transaction.atomic():
                RejectedCalls.objects.create(day=day, reason=reason, count=count)
        except IntegrityError:
            rows.update(count=F("count") + count)


def _flush_rejected() -> None:
    counts = _take_rejected()
    if not counts:
        return
    try:
        _write_rejected(counts)
    except Exception:
        logger.exception(
            "Could not write %d counts of rejected calls: they are dropped.", sum(counts.values())
        )


def _write(entries: list[list]) -> None:
    from keys.models import ApiKey, UsageRecord

    records = [
        UsageRecord(
            time=datetime.fromtimestamp(started, tz=UTC),
            key_id=key_id,
            dataset=dataset,
            operation=operation,
            status=status,
            duration_ms=duration_ms,
            rows=rows,
            error_code=code[0] if code else "",
        )
        # Entries buffered by an older process have no error code.
        for started, key_id, dataset, operation, status, duration_ms, rows, *code in entries
    ]
    UsageRecord.objects.bulk_create(records, batch_size=500)
    last_used: dict[str, datetime] = {}
    for entry in records:
        if entry.key_id and entry.status < 400:
            last_used[entry.key_id] = max(entry.time, last_used.get(entry.key_id, entry.time))
    for key_id, used in last_used.items():
        # Written at most once a minute per key, whichever process flushes.
        ApiKey.objects.filter(key_id=key_id).filter(
            Q(last_used__isnull=True) | Q(last_used__lte=used - LAST_USED_EVERY)
        ).update(last_used=used)


def usage_flush() -> int:
    """Move buffered usage records to the database now; returns how many were written."""
    global _last_flush, _listed
    _last_flush = time.monotonic()
    _listed = 0
    _flush_rejected()
    entries = _take_local()
    try:
        client = redis_client()
        if client is not None:
            entries += _take_redis(client)
    except Exception as error:
        warn_cache_down(
            "Usage buffer in Redis unavailable (%s): flushing this process only.",
            type(error).__name__,
        )
    if not entries:
        return 0
    try:
        _write(entries)
    except Exception:
        logger.exception("Could not write %d usage records: they are dropped.", len(entries))
        return 0
    return len(entries)


def discard_buffer() -> None:
    """Forget this process's unwritten records and counts (tests start from an empty buffer)."""
    global _listed
    _take_local()
    _listed = 0
    with _lock:
        _rejected_local.clear()


atexit.register(lambda: (_local or _rejected_local) and usage_flush())


def usage_prune(*, days: int | None = None) -> int:
    """Delete usage records (and daily counts of rejected calls) older than
    GATEWAY_USAGE_RETENTION_DAYS (or `days`); returns how many usage records."""
    from keys.models import RejectedCalls, UsageRecord

    usage_flush()
    keep = days if days is not None else settings.GATEWAY_USAGE_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=keep)
    deleted, _ = UsageRecord.objects.filter(time__lt=cutoff).delete()
    # A day's count goes once the whole day is older than the cutoff.
    RejectedCalls.objects.filter(day__lt=cutoff.astimezone(UTC).date()).delete()
    return deleted


@dataclass(frozen=True)
class RejectedDay:
    """Calls refused without a valid key on one UTC day, per reason."""

    day: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def rejected_calls_by_day(*, days: int = 30) -> list[RejectedDay]:
    """The last `days` UTC days that had calls without a valid key, newest first."""
    from keys.models import RejectedCalls

    usage_flush()
    today = timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    reasons = [reason for reason, _ in RejectedCalls.REASONS]
    per_day: dict[date, dict[str, int]] = {}
    for day, reason, count in RejectedCalls.objects.filter(day__gte=first).values_list(
        "day", "reason", "count"
    ):
        per_day.setdefault(day, dict.fromkeys(reasons, 0))[reason] = count
    return [RejectedDay(day, per_day[day]) for day in sorted(per_day, reverse=True)]
