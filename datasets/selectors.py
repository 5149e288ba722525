"""Reads of the catalog: dataset specs for the request path, cached per process."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from datasets.engine import zones
from datasets.engine.connections import url_with_password
from datasets.engine.spec import ColumnSpec, DatasetSpec, Link, SourceSpec
from datasets.files import dataset_files_check
from datasets.models import Column, Dataset, Source
from gatewaysite.generations import ProcessCache

# Dropped in every process when a change to a source, dataset, column or privacy policy commits.
_spec_by_slug: ProcessCache[DatasetSpec | None] = ProcessCache("catalog")
_all_specs: ProcessCache[list[DatasetSpec]] = ProcessCache("catalog")


def source_url(source: Source) -> str:
    """The source's connection URL with its decrypted password put back."""
    return url_with_password(source.url, source.password)


def source_spec(source: Source) -> SourceSpec:
    """The engine's view of a source."""
    return SourceSpec(
        id=source.pk,
        kind=source.kind,
        url=source_url(source),
        statement_timeout=source.statement_timeout,
        stamp=source.updated.isoformat() if source.updated else "",
    )


def _link(dataset: Dataset | None) -> Link | None:
    """A reference to a dataset that serves rows by key (an enabled one, with a primary key)."""
    if dataset is None or not dataset.enabled or not dataset.primary_key:
        return None
    return Link(dataset_id=dataset.pk, slug=dataset.slug, key=dataset.primary_key)


def _shown(value, column: Column, zone: str):
    """A statistic as published: a moment with its offset in the dataset's zone."""
    return zones.shown(value, zone) if column.instant and value is not None else value


def column_spec(column: Column, zone: str) -> ColumnSpec:
    """The engine's view of a column (its moments shown in the dataset's zone)."""
    return ColumnSpec(
        name=column.name,
        physical=column.physical_name,
        type=column.type,
        instant=column.instant,
        description=column.description,
        unit=column.unit,
        identifies=column.identifies,
        references=_link(column.references),
        exposed=column.exposed,
        filterable=column.filterable,
        sortable=column.sortable,
        searchable=column.searchable,
        pii=column.pii,
        enum=tuple(column.enum) if column.enum is not None else None,
        min=_shown(column.min_value, column, zone),
        max=_shown(column.max_value, column, zone),
        aggregation=column.aggregation,
        distinct_count=column.distinct_count,
        null_count=column.null_count,
        unique=column.unique,
    )


def build_spec(dataset: Dataset) -> DatasetSpec:
    """The engine's view of a dataset, from its model (columns prefetched or not)."""
    ordering = tuple(part.strip() for part in dataset.default_ordering.split(",") if part.strip())
    # A zone saved past the admin's check (or gone from this host's zone data) is read as UTC.
    zone = zones.zone_of(dataset.time_zone)
    return DatasetSpec(
        id=dataset.pk,
        slug=dataset.slug,
        title=dataset.title,
        description=dataset.description,
        table=dataset.table,
        schema_name=dataset.schema_name,
        source=source_spec(dataset.source) if dataset.source is not None else None,
        file_path=str(dataset.file_path()) if dataset.is_upload and dataset.version else "",
        file_key=dataset.file_key(),
        file_checksum=dataset.file_checksum,
        primary_key=dataset.primary_key or None,
        default_ordering=ordering,
        default_page_size=dataset.default_page_size,
        max_page_size=dataset.max_page_size,
        row_count=dataset.row_count,
        time_zone=zone,
        label=dataset.label_column,
        all_columns=tuple(column_spec(column, zone) for column in dataset.columns.all()),
    )


def _servable() -> QuerySet[Dataset]:
    return (
        Dataset.objects.filter(enabled=True)
        .select_related("source")
        .prefetch_related(
            Prefetch(
                "columns",
                queryset=Column.objects.select_related("references").order_by("position"),
            )
        )
    )


def _ready(dataset: Dataset) -> bool:
    return dataset.source_id is not None or dataset.version > 0


def dataset_spec(slug: str) -> DatasetSpec | None:
    """The enabled, servable dataset with this slug, or None."""

    def load() -> DatasetSpec | None:
        # The catalog changed (a dataset deleted elsewhere, perhaps): this host drops its files.
        dataset_files_check()
        dataset = _servable().filter(slug=slug).first()
        return build_spec(dataset) if dataset is not None and _ready(dataset) else None

    return _spec_by_slug.get(slug, load)


def dataset_specs() -> list[DatasetSpec]:
    """Every enabled, servable dataset, by slug."""

    def load() -> list[DatasetSpec]:
        dataset_files_check()
        return [build_spec(dataset) for dataset in _servable() if _ready(dataset)]

    return _all_specs.get("all", load)
