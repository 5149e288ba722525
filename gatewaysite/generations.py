"""Per-process caches that every process drops at once when the data behind them changes.

A change bumps a generation counter in the shared cache; each process keeps its copy only while
the counter it saw is still current, so one cache read per request replaces database queries.
If the shared cache is down, nothing is trusted and the caller reloads from the database.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Generic, TypeVar

from django.core.cache import cache

from gatewaysite.cache_outage import warn_cache_down

logger = logging.getLogger("gateway")
T = TypeVar("T")


def generation(name: str) -> str | None:
    """The current generation of `name`, or None when the shared cache does not answer."""
    key = f"gateway:generation:{name}"
    try:
        value = cache.get(key)
        if value is None:
            value = uuid.uuid4().hex
            if not cache.add(key, value, timeout=None):
                value = cache.get(key)
        return value
    except Exception:
        warn_cache_down("Shared cache unavailable: reading %s from the database", name)
        return None


_caches: dict[str, list[ProcessCache]] = {}


def bump(name: str) -> None:
    """Invalidate every process's copy of `name` (this process's at once)."""
    try:
        cache.set(f"gateway:generation:{name}", uuid.uuid4().hex, timeout=None)
    except Exception:
        warn_cache_down("Shared cache unavailable: could not invalidate %s", name)
    for process_cache in _caches.get(name, ()):
        process_cache.clear()


class ProcessCache(Generic[T]):
    """A per-process dict of values loaded on demand and dropped when the generation moves.

    With `recheck_seconds`, the shared generation is read at most that often: other processes
    then see a change within that time, and requests save a cache round trip.
    """

    def __init__(self, name: str, *, recheck_seconds: float = 0.0):
        self.name = name
        self.recheck_seconds = recheck_seconds
        self._seen: str | None = None
        self._checked = 0.0
        self._values: dict = {}
        self._lock = threading.Lock()
        _caches.setdefault(name, []).append(self)

    def _current(self) -> str | None:
        now = time.monotonic()
        if self._seen is not None and now - self._checked < self.recheck_seconds:
            return self._seen
        current = generation(self.name)
        self._checked = now
        return current

    def get(self, key, load: Callable[[], T]) -> T:
        """The cached value for `key`, or `load()` when absent or stale."""
        current = self._current()
        with self._lock:
            if current is None or current != self._seen:
                self._values = {}
                self._seen = current
            if key in self._values:
                return self._values[key]
        value = load()
        if current is not None:
            with self._lock:
                if self._seen == current:
                    self._values[key] = value
        return value

    def clear(self) -> None:
        """Forget everything in this process."""
        with self._lock:
            self._values = {}
            self._seen = None
