"""This host's cache of versions fetched from the object store (GATEWAY_STORAGE_URL).

A fetched version lives where an imported one does, `datasets/<slug>/v<N>-<stamp>.duckdb`, so the
engine and the sweep of deleted datasets treat both alike. The first request for
a version this host lacks fetches it: into a staging area, checked against the SHA-256 its dataset
records, then renamed into place. One fetch runs per version and host, however many requests ask
at once (a lock per version, across processes); the others wait for it and use its file.

The cache holds at most GATEWAY_CACHE_MB: after a fetch, the versions used least recently leave
first (their DuckDB file and its write-ahead log), skipping the one just fetched and any a query is reading
(the engine holds a shared lock on a file while it queries it: datasets/engine/connections.py).
Only versions the store holds are ever evicted: a file imported before the store was configured
is this host's only copy.

A host that cannot reach the store keeps serving every version it holds; a request for one it
lacks is answered 503 `store_unavailable`, and the store is not tried again for a few seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from datasets.engine.connections import duckdb_files
from datasets.engine.errors import SourceUnavailable
from datasets.engine.result_cache import result_cache
from datasets.engine.spec import DatasetSpec
from datasets.staging import StagingArea, file_lock, staging_root
from datasets.store import StoreUnavailable, file_checksum, store_configured, version_get

logger = logging.getLogger("gateway")

# A version in use is marked as used (its mtime) at most this often per process.
TOUCH_SECONDS = 10
# After the store failed to answer, it is not asked again for this long (per process).
STORE_RETRY_SECONDS = 5

_touched: dict[str, float] = {}
_store_down_until = 0.0
_lock = threading.Lock()


def local_version(spec: DatasetSpec) -> str:
    """The path of the upload's current version on this host, fetched from the store if needed."""
    path = spec.file_path
    if os.path.exists(path):
        _touch(path)
        return path
    if spec.file_key:
        _fetch(spec)
    elif store_configured():
        raise SourceUnavailable(
            "This host does not hold the dataset's file, and the file is not in the object "
            "store: its admin must run manage.py store_versions on the host that imported it.",
            code="store_unavailable",
        )
    return path


def _touch(path: str) -> None:
    now = time.monotonic()
    if now - _touched.get(path, 0.0) < TOUCH_SECONDS:
        return
    _touched[path] = now
    with contextlib.suppress(OSError):
        os.utime(path)


def _unreachable() -> SourceUnavailable:
    return SourceUnavailable(
        "This host does not hold the dataset's current version yet and cannot fetch it: the "
        "object store that holds dataset versions is not answering. Versions this host already "
        "holds are still served; this one needs the store back.",
        code="store_unavailable",
    )


def _fetch_lock(spec: DatasetSpec):
    """This host's lock on fetching one version (every process and thread waits for it)."""
    root = staging_root()
    root.mkdir(parents=True, exist_ok=True)
    return file_lock(root / f".fetch-{spec.slug}-{os.path.basename(spec.file_path)}")


def _fetch(spec: DatasetSpec) -> None:
    global _store_down_until
    if time.monotonic() < _store_down_until:
        raise _unreachable()
    path = spec.file_path
    with _fetch_lock(spec):
        if not os.path.exists(path):  # else another process or thread fetched it meanwhile
            started = time.monotonic()
            with StagingArea.create() as area:
                temporary = area.path / os.path.basename(path)
                try:
                    version_get(spec.file_key, temporary)
                except StoreUnavailable as error:
                    logger.error("%s", error)
                    with _lock:
                        _store_down_until = time.monotonic() + STORE_RETRY_SECONDS
                    raise _unreachable() from None
                checksum = file_checksum(temporary)
                if checksum != spec.file_checksum:
                    logger.error(
                        "The store's %s has SHA-256 %s, not %s: not served",
                        spec.file_key,
                        checksum,
                        spec.file_checksum,
                    )
                    raise SourceUnavailable(
                        "The copy of the dataset's current version in the object store is "
                        "damaged: its admin must import the file again.",
                        code="store_unavailable",
                    )
                _place(temporary, Path(path))
            logger.info(
                "Fetched %s from the store in %.2f s",
                spec.file_key,
                time.monotonic() - started,
            )
    # This process may hold connections to an evicted copy of the same version: they go.
    duckdb_files.close(path)
    result_cache.forget_files([path])
    _touch(path)
    cache_trim(keep=path)


def _place(temporary: Path, path: Path) -> None:
    from datasets.files import dataset_files_lock

    with dataset_files_lock():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, path)


@dataclass
class _Cached:
    path: Path
    files: list[Path]
    size: int
    used: float


def _cached_versions(root: Path) -> list[_Cached]:
    """Every version file on this host with the files made from it, and their sizes."""
    versions = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        for entry in folder.glob("v*.duckdb"):
            files = [entry, entry.with_name(entry.name + ".wal")]
            size, used = 0, 0.0
            for file in files:
                with contextlib.suppress(OSError):
                    stat = file.stat()
                    size += stat.st_size
                    used = max(used, stat.st_mtime) if file == entry else used
            versions.append(_Cached(entry, files, size, used))
    return versions


def cache_trim(*, keep: str | None = None) -> int:
    """Evict the least recently used versions the store holds until this host's versions fit in
    GATEWAY_CACHE_MB; how many were evicted."""
    from datasets.files import dataset_files_lock, datasets_root
    from datasets.models import StoredVersion

    limit = settings.GATEWAY_CACHE_MB * 1024 * 1024
    evicted = 0
    with dataset_files_lock():
        versions = _cached_versions(datasets_root())
        total = sum(version.size for version in versions)
        if total <= limit:
            return 0
        stored = set(
            StoredVersion.objects.filter(
                slug__in={version.path.parent.name for version in versions}
            ).values_list("slug", "file_name")
        )
        candidates = sorted(
            (
                version
                for version in versions
                if (version.path.parent.name, version.path.name) in stored
                and str(version.path) != keep
            ),
            key=lambda version: version.used,
        )
        for version in candidates:
            if total <= limit:
                break
            if _evict(version):
                total -= version.size
                evicted += 1
    if total > limit:
        logger.warning(
            "The versions this host must keep (%d MB) exceed GATEWAY_CACHE_MB=%d",
            total // (1024 * 1024),
            settings.GATEWAY_CACHE_MB,
        )
    return evicted


def _evict(version: _Cached) -> bool:
    """Remove a cached version unless a query is reading it (a shared lock on the file)."""
    try:
        handle = open(version.path, "rb")  # noqa: SIM115 - held while the files are removed
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        path = str(version.path)
        duckdb_files.close(path)
        result_cache.forget_files([path])
        for file in version.files:
            file.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
    _touched.pop(path, None)
    logger.info("Evicted %s from this host's cache (%d bytes)", path, version.size)
    return True
