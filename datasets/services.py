"""Writes to the catalog for uploaded files: import a file as a new version of a dataset."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from datasets.engine.connections import duckdb_files
from datasets.engine.errors import suggest
from datasets.ingest import TABLE, Ingested, IngestError, Progress, file_format, ingest_file
from datasets.models import SLUG_PATTERN, Column, Dataset
from datasets.naming import api_names
from datasets.selectors import catalog_changed

PII_MODES = ("mask", "hash", "hide")
DESCRIPTION_MAX_CHARS = 300
_VERSION_FILE = re.compile(r"^v(\d+)\.duckdb$")


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
) -> Dataset:
    """Import a file as the next version of the dataset `slug` (a new dataset unless `replace`).

    The file becomes a new DuckDB file, renamed into place, and only then does one transaction
    point the dataset and its columns at it. Any failure leaves the previous version serving and
    the catalog unchanged, and raises DatasetImportError.
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
    dataset = existing or Dataset(slug=slug)
    directory = dataset.directory
    directory.mkdir(parents=True, exist_ok=True)
    version = max([dataset.version, *_versions(directory)]) + 1
    final = dataset.file_path(version)
    staging = final.with_name(final.name + ".tmp")
    for leftover in (staging, staging.with_name(staging.name + ".wal")):
        leftover.unlink(missing_ok=True)  # a crashed import's; never anyone's current file

    previous_key = _previous_key(existing)
    try:
        ingested = ingest_file(
            path=path,
            target=staging,
            filename=filename,
            primary_key=primary_key,
            preferred_keys=[previous_key] if previous_key else [],
            progress=progress,
        )
    except IngestError as error:
        raise DatasetImportError(str(error)) from None

    try:
        staging.replace(final)  # atomic: a reader of `final` sees the whole file or none
        dataset = _save(
            dataset=dataset,
            existing=existing,
            ingested=ingested,
            version=version,
            title=title,
            description=description,
            pii=pii or {},
            filename=filename,
        )
    except IntegrityError:
        final.unlink(missing_ok=True)
        raise DatasetImportError(
            f"A dataset with slug {slug!r} was created meanwhile: choose another slug or replace it."
        ) from None
    except BaseException:
        final.unlink(missing_ok=True)
        staging.unlink(missing_ok=True)
        raise
    _remove_old_versions(dataset)
    return dataset


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


def _versions(directory: Path) -> list[int]:
    return [
        int(match.group(1))
        for entry in directory.iterdir()
        if (match := _VERSION_FILE.match(entry.name))
    ]


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
) -> Dataset:
    """Point the dataset at the new version and rewrite its columns, in one transaction."""
    with transaction.atomic():
        kept: dict[str, Column] = {}
        if existing is not None:
            # Lock the row: two replacements of one dataset must not interleave their columns.
            dataset = Dataset.objects.select_for_update().get(pk=existing.pk)
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
                )
                created.append(column)
            else:
                updated.append(column)
                if column.type != profile.type:
                    # Search is a substring match: only meaningful on a column that is text.
                    column.searchable = column.searchable and profile.type == Column.Type.STRING
            column.position = position
            column.type = profile.type
            if profile.physical_name in modes:
                column.pii = modes[profile.physical_name]
            # The values of a protected column must not leak through its statistics.
            protected = column.pii != Column.Pii.NONE
            column.enum = None if protected else profile.enum
            column.min_value = None if protected else profile.min_value
            column.max_value = None if protected else profile.max_value
        Column.objects.bulk_update(
            updated,
            ["position", "type", "searchable", "pii", "enum", "min_value", "max_value"],
        )
        Column.objects.bulk_create(created)
        # bulk writes send no post_save: readers must still see the new version once committed.
        transaction.on_commit(catalog_changed)
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
        match = _VERSION_FILE.match(entry.name)
        if match and int(match.group(1)) < dataset.version - 1:
            duckdb_files.close(str(entry))
            entry.unlink(missing_ok=True)
            entry.with_name(entry.name + ".wal").unlink(missing_ok=True)
