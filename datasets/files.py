"""The version files of uploaded datasets on this host, and their removal once a dataset is deleted.

An upload's versions live in `GATEWAY_DATA_DIR/datasets/<slug>/`: `v<N>-<stamp>.duckdb`
(`v<N>.duckdb` for datasets imported before stamps existed).
The stamp is drawn once per dataset, so a slug deleted and imported again starts at version 1
again without reusing a file name that some process may still hold open on the old data.

A deleted dataset leaves every host. The deleting process sweeps its host when the deletion
commits (a post_delete signal: datasets/signals.py); every other process sweeps its own host at
its first read of the catalog after the catalog's generation moved (gatewaysite/generations.py),
and at least once a minute while it serves datasets. A sweep compares the files on disk with the
datasets in the database: the files of no dataset (a deleted one, or the old dataset of a slug
imported again) are removed, and the process closes its DuckDB connections on them and forgets
what it computed and kept from them (statistics, rows by key).

A sweep must never remove the file of an import that is about to commit, which is on disk before
its dataset is in the database: an import puts its file in place and commits holding the lock
`datasets/.sweep`, and a sweep reads the database and removes files holding the same lock.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from datasets.engine.connections import duckdb_files
from datasets.engine.result_cache import result_cache
from datasets.engine.statistics import statistics_retain
from datasets.models import Dataset
from datasets.staging import file_lock, staging_sweep
from gatewaysite.generations import ProcessCache

logger = logging.getLogger("gateway")

LOCK_NAME = ".sweep"
STAMP_BYTES = 8
_STAMP = rf"[0-9a-f]{{{2 * STAMP_BYTES}}}"
# A version's DuckDB file, and DuckDB's write-ahead log beside it.
_VERSION_FILE = re.compile(rf"^v(\d+)(?:-({_STAMP}))?\.duckdb$")
_DERIVED_FILE = re.compile(rf"^v\d+(?:-({_STAMP}))?\.duckdb(?:\.wal)?$")
# The folder of the row stores that earlier releases built beside the versions: removed.
LEGACY_ROW_STORES = "rows"


def datasets_root() -> Path:
    """The directory that holds one directory per uploaded dataset."""
    return Path(settings.GATEWAY_DATA_DIR) / "datasets"


def file_stamp_new() -> str:
    """A new dataset's file stamp."""
    return secrets.token_hex(STAMP_BYTES)


def file_version(name: str, stamp: str) -> int | None:
    """The version held by a DuckDB file of the dataset with this stamp; None for any other file."""
    match = _VERSION_FILE.match(name)
    if match is None or (match.group(2) or "") != stamp:
        return None
    return int(match.group(1))


def _stamp_of(name: str) -> str | None:
    """The stamp of a version file or a file made from one ("" without a stamp); None otherwise."""
    match = _DERIVED_FILE.match(name)
    return None if match is None else match.group(1) or ""


def dataset_files_lock():
    """Hold this host's lock on the datasets' directories (imports and sweeps, across processes)."""
    root = datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    return file_lock(root / LOCK_NAME)


def dataset_files_sweep() -> None:
    """Remove from this host the files of every dataset that no longer exists, and close and forget
    this process's connections, kept rows and statistics of them."""
    if transaction.get_connection().in_atomic_block:
        return  # a deletion in this transaction may yet be rolled back: its files must stay
    with dataset_files_lock():
        stamps: dict[str, str] = {}
        dataset_ids: set[int] = set()
        for pk, slug, stamp, source_id in Dataset.objects.values_list(
            "pk", "slug", "file_stamp", "source_id"
        ):
            dataset_ids.add(pk)
            if source_id is None:
                stamps[slug] = stamp
        _remove_leftovers(stamps)
        # Under the lock: no dataset imported after the read above can be open here yet.
        _close_leftovers(stamps)
    statistics_retain(dataset_ids=dataset_ids)
    staging_sweep()


def _remove_leftovers(stamps: dict[str, str]) -> None:
    root = datasets_root()
    for folder in root.iterdir():
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        stamp = stamps.get(folder.name)
        # Row stores of earlier releases (rows by key are now kept in memory): no longer read.
        shutil.rmtree(folder / LEGACY_ROW_STORES, ignore_errors=True)
        for entry in folder.iterdir():
            leftover = stamp is None or _stamp_of(entry.name) not in (stamp, None)
            if leftover and (entry.is_file() or entry.is_symlink()):
                entry.unlink(missing_ok=True)
        if stamp is None:
            shutil.rmtree(folder, ignore_errors=True)


def _owner(path: str) -> tuple[str, str] | None:
    """(slug, stamp) of a version file in this host's datasets directory."""
    file = Path(path)
    stamp = _stamp_of(file.name)
    if stamp is None:
        return None
    folder = file.parent
    if folder.parent != datasets_root():
        return None
    return folder.name, stamp


def _close_leftovers(stamps: dict[str, str]) -> None:
    gone = []
    # Rows by key may outlive the connection they were read through: both are looked at.
    for path in {*duckdb_files.paths(), *result_cache.files()}:
        owner = _owner(path)
        if owner is not None and stamps.get(owner[0]) != owner[1]:
            gone.append(path)
    for path in gone:
        duckdb_files.close(path)
    result_cache.forget_files(gone)


# Every process sweeps its host once per catalog generation: a deletion elsewhere moves it.
_swept: ProcessCache[bool] = ProcessCache("catalog")


def _sweep() -> bool:
    try:
        dataset_files_sweep()
    except Exception:  # a read must not fail for want of a clean disk: the next sweep retries
        logger.warning("The datasets directory %s was not swept", datasets_root(), exc_info=True)
    return True


def dataset_files_check() -> None:
    """Sweep this host when the catalog changed since this process last did (a dataset read)."""
    _swept.get("swept", _sweep, fallback=lambda: False)
