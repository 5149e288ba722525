"""Per-process caches that every process drops when the data behind them changes, on commit.

Each cached part (the catalog of datasets and columns, the key table) has a generation: a random
token that moves whenever a change to that part commits. A process keeps its copy only while the
generation it saw is still current. One mechanism moves it for every write path: model signals
and the bulk queryset methods of the tracked models record the change, and the move runs in
`transaction.on_commit`, so a reader can never see the new generation before the new data.

The generations live where every process can read them: in the shared cache (Redis) when there
is one, else in small files under the data directory (the embedded default: `make run` and a
`manage.py` command in another shell share that directory). They are read once per request: with
Redis, a call with a key reads them in the request's one round trip to the shared cache
(keys/ratelimit.py), together with the key's counters.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import models, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from gatewaysite.cache_outage import warn_cache_down

logger = logging.getLogger("gateway")
T = TypeVar("T")

# A value is reloaded after this long even when no change was announced: a safety bound for a
# change whose announcement was lost (the shared cache was down when it committed). Changes
# arrive through the generation, on the next request, not through this bound.
MAX_AGE_SECONDS = 60.0

_KEY_PREFIX = "gateway:generation:"
_caches: dict[str, list[ProcessCache]] = {}
_request = threading.local()


def _shared_cache() -> bool:
    backend = str(settings.CACHES["default"]["BACKEND"])
    return not backend.endswith(("LocMemCache", "DummyCache"))


def _directory() -> Path:
    return Path(settings.GATEWAY_DATA_DIR) / "generations"


def _read_file(name: str) -> str:
    # os-level calls: this runs on every request of the embedded default, and must cost little.
    path = f"{settings.GATEWAY_DATA_DIR}/generations/{name}"
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return _create_file(name)
    try:
        value = os.read(descriptor, 64).decode("ascii")
    finally:
        os.close(descriptor)
    return value or _create_file(name)


def _create_file(name: str) -> str:
    # First reader: create it, unless another process just did (a hard link never overwrites).
    path = _directory() / name
    _directory().mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{name}.{uuid.uuid4().hex}")
    staged.write_text(uuid.uuid4().hex, encoding="ascii")
    try:
        os.link(staged, path)
    except FileExistsError:
        pass
    finally:
        staged.unlink()
    return path.read_text(encoding="ascii")


def _write_file(name: str, value: str) -> None:
    _directory().mkdir(parents=True, exist_ok=True)
    path = _directory() / name
    staged = path.with_name(f".{name}.{uuid.uuid4().hex}")
    staged.write_text(value, encoding="ascii")
    os.replace(staged, path)  # atomic: a reader sees the old token or the new one


def names() -> list[str]:
    """Every cached part's name: what a request reads the generations of."""
    return sorted(_caches)


def cache_key(name: str) -> str:
    """The shared cache's key (before the cache's own prefix) holding the generation of `name`."""
    return _KEY_PREFIX + name


def unreadable(names: list[str]) -> dict[str, str | None]:
    """The generations of `names` when the shared cache does not answer: unknown, so every cached
    part is read from the database until it answers again."""
    warn_cache_down("Shared cache unavailable: reading %s from the database", ", ".join(names))
    return dict.fromkeys(names)


def _read(names: list[str]) -> dict[str, str | None]:
    """The current generation of each name (None for all when the store does not answer)."""
    if not _shared_cache():
        try:
            return {name: _read_file(name) for name in names}
        except OSError:
            logger.warning("Generation files unreadable under %s", _directory(), exc_info=True)
            return dict.fromkeys(names)
    try:
        found = cache.get_many([cache_key(name) for name in names])
        values = {name: found.get(cache_key(name)) for name in names}
        for name, value in values.items():
            if value is None:
                cache.add(cache_key(name), uuid.uuid4().hex, timeout=None)
                values[name] = cache.get(cache_key(name))
        return values
    except Exception:
        return unreadable(names)


def generation(name: str) -> str | None:
    """The current generation of `name`, read once per request; None when it cannot be read."""
    snapshot = getattr(_request, "snapshot", None)
    if snapshot is None:
        values = _read(sorted(_caches.keys() | {name}))
        if getattr(_request, "active", False):
            _request.snapshot = values
        return values[name]
    if name not in snapshot:
        snapshot.update(_read([name]))
    return snapshot[name]


def request_active() -> bool:
    """Is this thread serving a request? (Its generations are then read once, for the request.)"""
    return getattr(_request, "active", False)


def request_generations() -> dict[str, str | None] | None:
    """The generations this request has read so far; None before its first read."""
    return getattr(_request, "snapshot", None) if request_active() else None


def request_generations_set(values: dict[str, str | None]) -> None:
    """Take generations read elsewhere (the request's round trip to the shared cache) as the ones
    this request reads."""
    if request_active():
        _request.snapshot = {**(getattr(_request, "snapshot", None) or {}), **values}


def _request_started(**kwargs) -> None:
    _request.active, _request.snapshot = True, None


def _request_finished(**kwargs) -> None:
    _request.active, _request.snapshot = False, None


request_started.connect(_request_started, dispatch_uid="gateway-generations-start")
request_finished.connect(_request_finished, dispatch_uid="gateway-generations-finish")


def bump(name: str) -> None:
    """Move the generation of `name` now: every process reloads it on its next read."""
    value: str | None = uuid.uuid4().hex
    try:
        if _shared_cache():
            cache.set(cache_key(name), value, timeout=None)
        else:
            _write_file(name, str(value))
    except Exception:
        warn_cache_down("Could not announce a change of %s: other processes see it later", name)
        value = None
    snapshot = getattr(_request, "snapshot", None)
    if snapshot is not None:
        snapshot[name] = value
    for process_cache in _caches.get(name, ()):
        process_cache.clear()


class _OnCommitBump:
    """The on-commit callback that bumps one name; recognisable so a transaction queues it once."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self) -> None:
        bump(self.name)


def changed(name: str, *, using: str | None = None) -> None:
    """Record a change of `name`: its generation moves when the current transaction commits."""
    connection = transaction.get_connection(using)
    if connection.in_atomic_block and any(
        isinstance(callback, _OnCommitBump) and callback.name == name
        for _, callback, _ in connection.run_on_commit
    ):
        return
    transaction.on_commit(_OnCommitBump(name), using=using)


_tracked: dict[type[models.Model], tuple[str, ...]] = {}


def tracked_names(model: type[models.Model]) -> tuple[str, ...]:
    """The cached parts that a write to `model` changes."""
    return _tracked.get(model, ())


def _record(model: type[models.Model], using: str | None) -> None:
    for name in tracked_names(model):
        changed(name, using=using)


def _untracked(model: type[models.Model], fields: Iterable[str]) -> bool:
    ignored: frozenset[str] = getattr(model, "generation_ignores", frozenset())
    written = set(fields)
    return bool(written) and written <= ignored


def _on_save(sender, instance, using, update_fields=None, **kwargs) -> None:
    if update_fields is not None and _untracked(sender, update_fields):
        return
    _record(sender, using)


def _on_delete(sender, using, **kwargs) -> None:
    _record(sender, using)


def _on_m2m(sender, action, using, **kwargs) -> None:
    if action.startswith("post_"):
        _record(sender, using)


def track(*tracked: type[models.Model], name: str) -> None:
    """Any write to these models (saves, deletes, m2m changes, bulk queryset writes) changes `name`.

    Bulk writes are caught by `TrackedQuerySet`, which the models use as their manager.
    """
    for model in tracked:
        _tracked[model] = (*_tracked.get(model, ()), name)
        uid = f"gateway-generation-{model._meta.label}"
        post_save.connect(_on_save, sender=model, dispatch_uid=uid)
        post_delete.connect(_on_delete, sender=model, dispatch_uid=uid)
        if model._meta.auto_created:
            m2m_changed.connect(_on_m2m, sender=model, dispatch_uid=uid)


class TrackedQuerySet(models.QuerySet):
    """A queryset whose bulk writes, which send no model signals, record the change too."""

    def update(self, **kwargs):
        rows = super().update(**kwargs)
        if rows and not _untracked(self.model, kwargs):
            _record(self.model, self.db)
        return rows

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            _record(self.model, self.db)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        if rows and not _untracked(self.model, fields):
            _record(self.model, self.db)
        return rows

    bulk_update.alters_data = True  # type: ignore[attr-defined]

    def _raw_delete(self, using):
        rows = super()._raw_delete(using)
        if rows:
            _record(self.model, using)
        return rows


class ProcessCache(Generic[T]):
    """A per-process dict of values loaded on demand and dropped when the generation moves.

    A value is stored only if the generation read before loading it is still current, and never
    from inside a transaction (it may hold writes that are not committed, or never will be).
    With `max_bytes`, the least recently used values are dropped past that budget, measured by
    `size`.
    """

    def __init__(
        self,
        name: str,
        *,
        max_bytes: int | None = None,
        size: Callable[[T], int] | None = None,
    ):
        self.name = name
        self.max_bytes = max_bytes
        self.size = size
        self._seen: str | None = None
        self._loaded = 0.0
        self._values: OrderedDict = OrderedDict()
        self._sizes: dict = {}
        self._bytes = 0
        self._lock = threading.Lock()
        _caches.setdefault(name, []).append(self)

    def get(self, key, load: Callable[[], T], *, fallback: Callable[[], T] | None = None) -> T:
        """The cached value for `key`, or `load()` when absent or stale.

        `fallback` replaces `load` when nothing can be trusted (the generation cannot be read):
        a cheaper read of just what is asked, done on every call until the store answers again.
        """
        current = generation(self.name)
        now = time.monotonic()
        with self._lock:
            if current is None or current != self._seen or now - self._loaded > MAX_AGE_SECONDS:
                self._reset(current, now)
            elif key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        if current is None and fallback is not None:
            return fallback()
        value = load()
        if current is not None and not transaction.get_connection().in_atomic_block:
            self._store(key, value, current)
        return value

    def peek(self, key) -> tuple[T, str] | None:
        """The value held for `key` and the generation it was loaded under, without reading the
        current generation (None when nothing is held). The caller must check that generation."""
        with self._lock:
            if self._seen is None or key not in self._values:
                return None
            return self._values[key], self._seen

    def _reset(self, current: str | None, now: float) -> None:
        self._values, self._sizes, self._bytes = OrderedDict(), {}, 0
        self._seen, self._loaded = current, now

    def _store(self, key, value: T, current: str) -> None:
        cost = self.size(value) if self.size is not None else 0
        if self.max_bytes is not None and cost > self.max_bytes:
            return
        with self._lock:
            if self._seen != current:
                return  # the generation moved while loading: the value may be older than it
            self._bytes += cost - self._sizes.get(key, 0)
            self._values[key], self._sizes[key] = value, cost
            self._values.move_to_end(key)
            while self.max_bytes is not None and self._bytes > self.max_bytes:
                evicted, _ = self._values.popitem(last=False)
                self._bytes -= self._sizes.pop(evicted)

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        """Forget everything in this process."""
        with self._lock:
            self._reset(None, 0.0)


def process_caches_reset() -> None:
    """Forget every process-level cached value and generation (tests start from nothing)."""
    for process_caches in _caches.values():
        for process_cache in process_caches:
            process_cache.clear()
    _request.active, _request.snapshot = False, None
