"""Staging areas: the private working directory of one import, never left behind.

Every import works in its own directory under `GATEWAY_DATA_DIR/staging/` (the uploaded file
waiting for a background import, the DuckDB file being written, the XLSX rows as CSV, DuckDB's
spill files) and holds an exclusive lock on a file inside it while it runs. The area is removed
when the import ends, however it ends. A process that is killed cannot remove its area, but the
operating system releases its lock: the next import (in any process) removes every area whose lock
it can take. One lock, `staging/.sweep`, serialises creating and sweeping areas, so an area is
never swept between its creation and its lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import tempfile
from pathlib import Path
from typing import IO

from django.conf import settings

LOCK_NAME = ".lock"


def staging_root() -> Path:
    """The directory that holds every staging area."""
    return Path(settings.GATEWAY_DATA_DIR) / "staging"


@contextlib.contextmanager
def file_lock(path: Path):
    """Hold an exclusive lock on the file at `path` (created if need be): across processes and
    threads of this host, one holder at a time."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sweep_lock(root: Path):
    return file_lock(root / ".sweep")


def _try_lock(path: Path) -> IO[bytes] | None:
    """The open, exclusively locked file at `path`; None when another import holds it."""
    handle = open(path, "a+b")  # noqa: SIM115 - the caller keeps it open as the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _sweep(root: Path) -> None:
    """Remove the areas of imports that ended without cleaning up (their process was killed)."""
    for area in root.iterdir():
        if not area.is_dir():
            continue
        lock = _try_lock(area / LOCK_NAME)
        if lock is None:
            continue  # a running import, in this process or another one
        try:
            shutil.rmtree(area, ignore_errors=True)
        finally:
            lock.close()


def staging_sweep() -> None:
    """Remove the areas that killed imports left behind (an upload waiting in one holds raw data)."""
    root = staging_root()
    if not root.is_dir():
        return
    with _sweep_lock(root):
        _sweep(root)


class StagingArea:
    """A locked working directory for one import; `close()` removes it."""

    def __init__(self, path: Path, lock: IO[bytes]):
        self.path = path
        self._lock = lock

    @classmethod
    def create(cls) -> StagingArea:
        """A new area, after removing the areas that killed imports left behind."""
        root = staging_root()
        root.mkdir(parents=True, exist_ok=True)
        with _sweep_lock(root):
            _sweep(root)
            path = Path(tempfile.mkdtemp(prefix="import-", dir=root))
            lock = _try_lock(path / LOCK_NAME)
        if lock is None:  # pragma: no cover - nobody else knows the new directory's name yet
            raise RuntimeError(f"Could not lock the staging area {path}.")
        return cls(path, lock)

    @property
    def closed(self) -> bool:
        return self._lock.closed

    def close(self) -> None:
        """Remove the area and everything in it, then release its lock."""
        if self.closed:
            return
        try:
            shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self._lock.close()

    def __enter__(self) -> StagingArea:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
