"""Writes to the catalog for uploaded files: import a file as a new version of a dataset, delete one.

`dataset_import` imports in the caller's thread (the import_dataset command, the demo).
`dataset_import_start` imports in a background thread of the web process (the admin): it records
the import as a DatasetImport row whose state, progress and heartbeat the thread keeps up to date.
`dataset_delete` deletes a dataset; its files follow on every host (datasets/files.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.move import file_move_safe
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.utils import timezone

from datasets.engine.connections import duckdb_files
from datasets.engine.errors import suggest
from datasets.files import dataset_files_lock, file_stamp_new, file_version
from datasets.ingest import (
    TABLE,
    Budget,
    Ingested,
    IngestError,
    Progress,
    file_format,
    ingest_file,
    refusal,
)
from datasets.measures import aggregation_default
from datasets.models import SLUG_PATTERN, Column, Dataset, DatasetImport, StoredVersion
from datasets.naming import api_names
from datasets.staging import StagingArea
from datasets.store import (
    StoreUnavailable,
    file_checksum,
    objects_delete,
    store_configured,
    stored_objects,
    version_key,
    version_put,
)

logger = logging.getLogger("gateway")

# A background import writes its heartbeat every HEARTBEAT_SECONDS; one silent for
# STALE_AFTER_SECONDS belonged to a process that ended, and is marked failed when next looked at.
HEARTBEAT_SECONDS = 1.0
STALE_AFTER_SECONDS = 60
STALE_MESSAGE = (
    "The import stopped before it finished: the server process running it ended (it was "
    "restarted or killed). Nothing was changed; upload the file again."
)

PII_MODES = ("mask", "hash", "hide")
DESCRIPTION_MAX_CHARS = 300


class DatasetImportError(Exception):
    """An import that did not happen; the message says why, for the admin or the command line."""


def upload_max_bytes() -> int:
    """The largest file an import accepts (GATEWAY_UPLOAD_MAX_MB)."""
    return settings.GATEWAY_UPLOAD_MAX_MB * 1024 * 1024


def check_upload_size(size: int) -> None:
    """DatasetImportError for a file larger than GATEWAY_UPLOAD_MAX_MB."""
    if size > upload_max_bytes():
        raise DatasetImportError(
            f"The file is {size / 1024 / 1024:.1f} MB: the upload limit is "
            f"{settings.GATEWAY_UPLOAD_MAX_MB} MB (GATEWAY_UPLOAD_MAX_MB)."
        )


def dataset_import(
    *,
    path: Path | str,
    slug: str,
    title: str | None = None,
    description: str | None = None,
    primary_key: str | None = None,
    pii: Mapping[str, str] | None = None,
    replace: bool = False,
    progress: Progress | None = None,
    filename: str | None = None,
    budget: Budget | None = None,
    staging: StagingArea | None = None,
) -> Dataset:
    """Import a file as the next version of the dataset `slug` (a new dataset unless `replace`).

    The file becomes a new DuckDB file in a staging area, renamed into place, and only then does
    one transaction point the dataset and its columns at it. Any failure leaves the previous
    version serving, the catalog unchanged and no staging file behind, and raises
    DatasetImportError. The import runs within `budget` (default: Budget()). A caller that passes
    its own `staging` area removes it; otherwise the import makes and removes one. Call it outside
    a transaction (as the command, the admin's thread and the demo do): the new dataset must be
    committed before another process sweeps this host (datasets/files.py).
    """
    path = Path(path)
    filename = filename or path.name
    _check_arguments(slug=slug, description=description, pii=pii)
    try:
        file_format(filename)
    except IngestError as error:
        raise DatasetImportError(str(error)) from None
    if not path.is_file():
        raise DatasetImportError(f"No such file: {path}.")
    check_upload_size(path.stat().st_size)

    existing = _existing_dataset(slug=slug, replace=replace)
    dataset = existing or Dataset(slug=slug, file_stamp=file_stamp_new())
    area = staging or StagingArea.create()
    try:
        return _import_into(
            area=area,
            path=path,
            dataset=dataset,
            existing=existing,
            title=title,
            description=description,
            primary_key=primary_key,
            pii=pii,
            progress=progress,
            filename=filename,
            budget=budget,
        )
    finally:
        if staging is None:
            area.close()


def _import_into(
    *,
    area: StagingArea,
    path: Path,
    dataset: Dataset,
    existing: Dataset | None,
    title: str | None,
    description: str | None,
    primary_key: str | None,
    pii: Mapping[str, str] | None,
    progress: Progress | None,
    filename: str,
    budget: Budget | None,
) -> Dataset:
    directory = dataset.directory
    version = max([dataset.version, *_versions(directory, dataset.file_stamp)]) + 1
    final = dataset.file_path(version)
    staging = area.path / final.name

    previous_key = _previous_key(existing)
    try:
        ingested = ingest_file(
            path=path,
            target=staging,
            filename=filename,
            primary_key=primary_key,
            preferred_keys=[previous_key] if previous_key else [],
            progress=progress,
            budget=budget,
            work_dir=area.path,
        )
    except IngestError as error:
        raise DatasetImportError(str(error)) from None
    stored = _version_store(staging, slug=dataset.slug, file_name=final.name)

    # The file is in place before its dataset is committed: a sweep of this host (which removes
    # the files of no dataset) must wait until both are, hence the lock.
    with dataset_files_lock():
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # Atomic (the staging area is inside the data directory, on the same file system): a
            # reader of `final` sees the whole file or none.
            os.replace(staging, final)
            dataset = _save(
                dataset=dataset,
                existing=existing,
                ingested=ingested,
                version=version,
                title=title,
                description=description,
                pii=pii or {},
                filename=filename,
                stored=stored,
            )
        except IntegrityError:
            _unplace(final)
            raise DatasetImportError(
                f"A dataset with slug {dataset.slug!r} was created meanwhile: choose another slug "
                "or replace it."
            ) from None
        except BaseException:
            _unplace(final)
            raise
    _remove_old_versions(dataset)
    return dataset


def _version_store(path: Path, *, slug: str, file_name: str) -> StoredVersion | None:
    """Write a new version to the object store, when there is one, before it goes live: a host
    that lacks it fetches it from there. A store that refuses fails the import."""
    if not store_configured():
        return None
    try:
        return _version_upload(path, slug=slug, file_name=file_name)
    except StoreUnavailable as error:
        logger.error("%s", error)
        raise DatasetImportError(
            f"{error} Nothing was imported: the previous version is still served."
        ) from None


def _version_upload(path: Path, *, slug: str, file_name: str) -> StoredVersion:
    """Write a version file to the store; its record, to save (StoreUnavailable if refused)."""
    checksum = file_checksum(path)
    key = version_key(slug, file_name, checksum)
    version_put(path, key, checksum)
    return StoredVersion(
        key=key, slug=slug, file_name=file_name, checksum=checksum, size=path.stat().st_size
    )


def _existing_dataset(*, slug: str, replace: bool) -> Dataset | None:
    """The dataset a file may be imported into: none yet, or an upload when replacing."""
    existing = Dataset.objects.filter(slug=slug).first()
    if existing is not None and not replace:
        raise DatasetImportError(
            f"A dataset with slug {slug!r} already exists: use --replace (or 'Replace file' on its "
            "admin page) to upload a new version."
        )
    if existing is not None and not existing.is_upload:
        raise DatasetImportError(
            f"Dataset {slug!r} is table {existing.table!r} of source {existing.source}: only a "
            "dataset made from an uploaded file can take a new file."
        )
    return existing


def _check_arguments(*, slug: str, description: str | None, pii: Mapping[str, str] | None) -> None:
    if not re.match(SLUG_PATTERN, slug or ""):
        raise DatasetImportError(
            f"Invalid slug {slug!r}: lower-case letters, digits and _, starting with a letter, "
            "at most 40 characters."
        )
    if description is not None and len(description) > DESCRIPTION_MAX_CHARS:
        raise DatasetImportError(
            f"The description has {len(description)} characters: at most "
            f"{DESCRIPTION_MAX_CHARS} (it is shown to the GPT)."
        )
    for column, mode in (pii or {}).items():
        if mode not in PII_MODES:
            raise DatasetImportError(
                f"Unknown pii mode {mode!r} for column {column!r}: use mask, hash or hide."
            )


def _versions(directory: Path, stamp: str) -> list[int]:
    """The versions of the dataset with this stamp on disk (none of another dataset's)."""
    if not directory.is_dir():
        return []
    found = (file_version(entry.name, stamp) for entry in directory.iterdir())
    return [version for version in found if version is not None]


def _unplace(final: Path) -> None:
    """Remove a version file that was not committed, and its directory if nothing else is left."""
    final.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        final.parent.rmdir()  # only when empty: a new dataset's, or a dataset deleted meanwhile


def _previous_key(existing: Dataset | None) -> str | None:
    """The physical name of the previous version's key, kept as the key when still unique."""
    if existing is None or not existing.primary_key:
        return None
    column = existing.columns.filter(name=existing.primary_key).first()
    return column.physical_name if column else None


def _save(
    *,
    dataset: Dataset,
    existing: Dataset | None,
    ingested: Ingested,
    version: int,
    title: str | None,
    description: str | None,
    pii: Mapping[str, str],
    filename: str,
    stored: StoredVersion | None = None,
) -> Dataset:
    """Point the dataset at the new version and rewrite its columns, in one transaction."""
    with transaction.atomic():
        kept: dict[str, Column] = {}
        if existing is not None:
            # Lock the row: two replacements of one dataset must not interleave their columns.
            locked = Dataset.objects.select_for_update().filter(pk=existing.pk).first()
            if locked is None:
                raise DatasetImportError(
                    f"Dataset {existing.slug!r} was deleted while the file was imported: nothing "
                    "was imported."
                )
            dataset = locked
            if dataset.version >= version:
                raise DatasetImportError(
                    f"Another import of {dataset.slug!r} finished first (version "
                    f"{dataset.version}): upload the file again to replace that one."
                )
            kept = {column.physical_name: column for column in dataset.columns.all()}
        physical_names = [profile.physical_name for profile in ingested.columns]
        names = _names(physical_names, kept)
        modes = _pii_modes(pii, physical_names, names)

        if title is not None and title.strip():
            dataset.title = title.strip()[:200]
        elif not dataset.title:
            dataset.title = _title(dataset.slug)
        if description is not None:
            dataset.description = description
        dataset.table = TABLE
        dataset.schema_name = ""
        dataset.original_filename = Path(filename).name[:300]
        dataset.version = version
        dataset.file_checksum = stored.checksum if stored is not None else ""
        if stored is not None:
            # The version it replaces leaves the store after the retention period (prune_store).
            StoredVersion.objects.filter(slug=dataset.slug, superseded=None).update(
                superseded=timezone.now()
            )
            stored.save()
        dataset.row_count = ingested.row_count
        dataset.primary_key = names[ingested.primary_key]
        valid = set(names.values())
        dataset.default_ordering = ",".join(
            part
            for part in (p.strip() for p in dataset.default_ordering.split(","))
            if part and part.lstrip("-") in valid
        )
        dataset.save()

        Column.objects.filter(dataset=dataset).exclude(physical_name__in=physical_names).delete()
        created, updated = [], []
        for position, profile in enumerate(ingested.columns):
            column = kept.get(profile.physical_name)
            if column is None:
                column = Column(
                    dataset=dataset,
                    physical_name=profile.physical_name,
                    name=names[profile.physical_name],
                    searchable=profile.type == Column.Type.STRING,
                    aggregation=aggregation_default(
                        names[profile.physical_name],
                        profile.type,
                        primary_key=profile.physical_name == ingested.primary_key,
                    ),
                )
                created.append(column)
            else:
                updated.append(column)
                if column.type != profile.type:
                    # Search is a substring match: only meaningful on a column that is text.
                    column.searchable = column.searchable and profile.type == Column.Type.STRING
                    # The admin's choice was for the old type: a text column has no sum.
                    column.aggregation = aggregation_default(column.name, profile.type)
            column.position = position
            column.type = profile.type
            column.instant = profile.instant
            if profile.physical_name in modes:
                column.pii = modes[profile.physical_name]
            # The values of a protected column must not leak through its statistics.
            protected = column.pii != Column.Pii.NONE
            column.enum = None if protected else profile.enum
            column.min_value = None if protected else profile.min_value
            column.max_value = None if protected else profile.max_value
            # Counts tell nothing of the values: kept for masked and hashed columns too.
            column.distinct_count = profile.distinct_count
            column.null_count = profile.null_count
            column.unique = profile.unique
        Column.objects.bulk_update(
            updated,
            [
                "position",
                "type",
                "instant",
                "searchable",
                "pii",
                "enum",
                "min_value",
                "max_value",
                "distinct_count",
                "null_count",
                "unique",
                "aggregation",
            ],
        )
        Column.objects.bulk_create(created)
    return dataset


def _names(physical_names: list[str], kept: Mapping[str, Column]) -> dict[str, str]:
    """API names: the admin's for columns already known, derived ones for new columns."""
    taken = {kept[name].name for name in physical_names if name in kept}
    names = {}
    for physical, derived in zip(physical_names, api_names(physical_names), strict=True):
        if physical in kept:
            names[physical] = kept[physical].name
            continue
        name, number = derived, 2
        while name in taken:
            name = f"{derived}_{number}"
            number += 1
        taken.add(name)
        names[physical] = name
    return names


def _pii_modes(
    pii: Mapping[str, str], physical_names: list[str], names: Mapping[str, str]
) -> dict[str, str]:
    """PII modes keyed by physical name, from a mapping keyed by physical or API name."""
    lookup = {physical: physical for physical in physical_names}
    lookup.update({api: physical for physical, api in names.items()})
    modes = {}
    for key, mode in pii.items():
        if key not in lookup:
            raise DatasetImportError(
                f"Unknown column {key!r} in pii."
                + suggest(key, list(names.values()), what="columns")
            )
        modes[lookup[key]] = mode
    return modes


def _title(slug: str) -> str:
    words = slug.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _remove_old_versions(dataset: Dataset) -> None:
    """Keep the current and the previous version: a reader may still hold the previous path."""
    directory = dataset.directory
    for entry in directory.iterdir():
        version = file_version(entry.name, dataset.file_stamp)
        if version is not None and version < dataset.version - 1:
            duckdb_files.close(str(entry))
            entry.unlink(missing_ok=True)
            entry.with_name(entry.name + ".wal").unlink(missing_ok=True)


def dataset_delete(*, dataset: Dataset) -> None:
    """Delete a dataset: its columns and imports, and, once committed, its files on every host."""
    # The files are not removed here: the deletion's signal sweeps them after the commit, whichever
    # way the dataset is deleted (datasets/signals.py).
    dataset.delete()


def dataset_versions_store() -> list[str]:
    """Write to the object store the current version of every upload that has none there yet
    (imported before GATEWAY_STORAGE_URL was set, on this host); the slugs written. A version
    whose file is not on this host is left for the host that holds it."""
    written = []
    for dataset in Dataset.objects.filter(source=None, version__gt=0, file_checksum=""):
        path = dataset.file_path()
        if not path.is_file():
            continue
        stored = _version_upload(path, slug=dataset.slug, file_name=path.name)
        with transaction.atomic():
            updated = Dataset.objects.filter(
                pk=dataset.pk, version=dataset.version, file_checksum=""
            ).update(file_checksum=stored.checksum)
            if updated:
                stored.save()
                written.append(dataset.slug)
    return written


def stored_versions_prune(
    *, retention_hours: int, now: dt.datetime | None = None
) -> tuple[int, int]:
    """Remove from the object store the versions superseded (or whose dataset was deleted) more
    than `retention_hours` ago, and the objects under the prefix that no version names (uploads of
    imports that failed afterwards) once they are as old: (versions, leftovers) removed."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=retention_hours)
    expired = list(StoredVersion.objects.filter(superseded__lte=cutoff))
    known = set(StoredVersion.objects.values_list("key", flat=True))
    leftovers = [
        item.key for item in stored_objects() if item.key not in known and item.modified <= cutoff
    ]
    objects_delete([version.key for version in expired] + leftovers)
    StoredVersion.objects.filter(pk__in=[version.pk for version in expired]).delete()
    return len(expired), len(leftovers)


# Imports in the background ----------------------------------------------------------------------


def dataset_import_expire() -> int:
    """Mark failed every active import whose heartbeat stopped (its process ended); how many."""
    now = timezone.now()
    stale = DatasetImport.objects.filter(
        state__in=DatasetImport.ACTIVE,
        heartbeat__lt=now - dt.timedelta(seconds=STALE_AFTER_SECONDS),
    )
    # A page asking while an import in this process writes its heartbeat: SQLite's lock waited out.
    return _waiting_out_lock(
        lambda: stale.update(state=DatasetImport.State.FAILED, message=STALE_MESSAGE, finished=now)
    )


def dataset_import_check(*, slug: str, replace: bool = False) -> None:
    """DatasetImportError when a file cannot be imported into `slug` now (a form checks first)."""
    _check_arguments(slug=slug, description=None, pii=None)
    _existing_dataset(slug=slug, replace=replace)
    dataset_import_expire()
    running = DatasetImport.objects.filter(slug=slug, state__in=DatasetImport.ACTIVE).first()
    if running is not None:
        raise DatasetImportError(
            f"{running.filename} is being imported into {slug!r} ({running.progress:.0f}% done): "
            "wait until it has finished."
        )


def dataset_import_start(
    *,
    upload: UploadedFile,
    slug: str,
    title: str | None = None,
    description: str | None = None,
    primary_key: str | None = None,
    replace: bool = False,
    user=None,
) -> DatasetImport:
    """Import an uploaded file in a background thread of this process; returns its record.

    The upload is moved into the import's staging area at once, and the thread starts when the
    caller's transaction commits. The record's state, progress and message follow the import;
    the catalog changes only once it has succeeded, exactly as with `dataset_import`.
    """
    filename = Path(upload.name or "upload").name
    _check_arguments(slug=slug, description=description, pii=None)
    try:
        file_format(filename)
    except IngestError as error:
        raise DatasetImportError(str(error)) from None
    check_upload_size(upload.size or 0)
    dataset_import_check(slug=slug, replace=replace)
    existing = Dataset.objects.filter(slug=slug).first()

    area = StagingArea.create()
    try:
        path = _store_upload(upload, area)
        record = DatasetImport.objects.create(
            slug=slug,
            dataset=existing,
            replace=replace,
            filename=filename[:300],
            created_by=user if getattr(user, "pk", None) else None,
        )
    except BaseException:
        area.close()
        raise
    arguments = {
        "slug": slug,
        "title": title,
        "description": description,
        "primary_key": primary_key,
        "replace": replace,
        "filename": filename,
    }
    # The thread reads the record with its own connection: only once it is committed. Should the
    # transaction roll back instead, the area's lock goes with it and the next import sweeps it.
    transaction.on_commit(lambda: _start(record.pk, area, path, arguments))
    return record


def _store_upload(upload: UploadedFile, area: StagingArea) -> Path:
    """The upload as a file of the staging area (moved when Django already wrote it to disk)."""
    target = area.path / ("upload" + Path(upload.name or "").suffix.lower())
    temporary = getattr(upload, "temporary_file_path", None)
    if temporary is not None:
        file_move_safe(temporary(), str(target), allow_overwrite=True)
        return target
    upload.seek(0)
    with open(target, "wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    return target


def _start(record_id: int, area: StagingArea, path: Path, arguments: dict) -> None:
    # Not a daemon: a server that stops gracefully lets a running import finish.
    thread = threading.Thread(
        target=_run_import,
        args=(record_id, area, path, arguments),
        name=f"gateway-import-{record_id}",
    )
    thread.start()


class _Heartbeat:
    """A thread that writes an import's progress and heartbeat to its record every second.

    `progress()` only keeps the latest percentage (it is called from the import's threads), so
    nothing but this thread and the import's own touches the database.
    """

    def __init__(self, record_id: int):
        self.record_id = record_id
        self.percent = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"gateway-import-{record_id}-heartbeat", daemon=True
        )

    def progress(self, percent: float) -> None:
        self.percent = max(self.percent, min(float(percent), 100.0))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                try:
                    DatasetImport.objects.filter(
                        pk=self.record_id, state=DatasetImport.State.RUNNING
                    ).update(progress=round(self.percent, 1), heartbeat=timezone.now())
                except DatabaseError as error:  # a missed beat is harmless; the next one counts
                    logger.warning("Import %s: heartbeat not written: %s", self.record_id, error)
        finally:
            connections.close_all()  # this thread's own connection


def _run_import(record_id: int, area: StagingArea, path: Path, arguments: dict) -> None:
    """The body of a background import: claim the record, import, record the outcome."""
    try:
        claimed = _import_update(
            record_id,
            DatasetImport.State.QUEUED,
            state=DatasetImport.State.RUNNING,
            heartbeat=timezone.now(),
        )
        if not claimed:
            return  # expired meanwhile
        heartbeat = _Heartbeat(record_id)
        heartbeat.start()
        try:
            dataset = dataset_import(
                path=path, staging=area, progress=heartbeat.progress, **arguments
            )
        except DatasetImportError as error:
            outcome: dict[str, Any] = {"state": DatasetImport.State.FAILED, "message": str(error)}
        except Exception as error:
            logger.exception("Import %s of %s failed", record_id, arguments["filename"])
            outcome = {
                "state": DatasetImport.State.FAILED,
                "message": refusal(f"The import failed: {error}"),
            }
        else:
            outcome = {
                "state": DatasetImport.State.DONE,
                "progress": 100.0,
                "dataset": dataset,
                "message": f"Imported {dataset.row_count} rows (version {dataset.version}).",
            }
        finally:
            heartbeat.stop()
        _record_outcome(record_id, outcome)
        if outcome["state"] == DatasetImport.State.DONE:
            _log_import(record_id, outcome["dataset"])
    except Exception:
        logger.exception("Import %s: could not record its outcome", record_id)
    finally:
        area.close()
        connections.close_all()  # this thread's own connection


def _log_import(record_id: int, dataset: Dataset) -> None:
    """The admin's history entry of a finished import, in the name of who uploaded the file."""
    from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

    record = DatasetImport.objects.get(pk=record_id)
    if record.created_by_id is None:
        return
    LogEntry.objects.log_actions(
        user_id=record.created_by_id,
        queryset=[dataset],
        action_flag=CHANGE if record.replace else ADDITION,
        change_message=(
            f"Replaced the file (version {dataset.version})."
            if record.replace
            else f"Imported {record.filename} ({dataset.row_count} rows)."
        ),
        single_object=True,
    )


def _waiting_out_lock(update: Callable[[], int]) -> int:
    """An update's row count, retried for up to 5 s while SQLite's lock is held by another
    writer (an import's thread and a request in the same process)."""
    from django.db import OperationalError

    for attempt in range(50):
        try:
            return update()
        except OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    return 0


def _import_update(record_id: int, while_in: str | None = None, **values) -> int:
    """Update an import's record (only while its state is `while_in`, if given), waiting out a
    moment of SQLite's lock (another writer); the number of records updated."""
    found = DatasetImport.objects.filter(pk=record_id)
    if while_in is not None:
        found = found.filter(state=while_in)
    return _waiting_out_lock(lambda: found.update(**values))


def _record_outcome(record_id: int, outcome: dict) -> None:
    """Write an import's outcome."""
    now = timezone.now()
    _import_update(record_id, finished=now, heartbeat=now, **outcome)
