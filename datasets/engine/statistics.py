"""The statistics a reader may receive: a row count, enums and ranges computed over the rows it can
read, never over the others.

A dataset's stored statistics (row count, each column's enum, minimum, maximum, distinct and null
counts) describe every row. A credential with row filters (a key for `tenant=A`) must not learn
from them what the other rows hold: `statistics_for` recomputes them under its filters, and
`statistics_withheld` leaves them out where no reader is known (the public schema of a dataset
some row filter restricts).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any

from datasets.engine.errors import QueryError, SourceUnavailable
from datasets.engine.execute import run_aggregate
from datasets.engine.grammar import ORDERED
from datasets.engine.parse import parse_forced
from datasets.engine.query import AggregateQuery, Filter, GroupKey, Metric, Order
from datasets.engine.spec import ColumnSpec, DatasetSpec

logger = logging.getLogger("gateway")

ENUM_MAX = 50
RANGED_TYPES = ORDERED  # the types with a minimum and a maximum: those that compare
# Statistics under filters are computed once per dataset version and filters, and recomputed
# after this many seconds (a SQL source's rows change); failures are retried sooner.
MAX_AGE_SECONDS = 300.0
FAILED_MAX_AGE_SECONDS = 30.0
_CACHE_MAX = 512

_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


def statistics_withheld(spec: DatasetSpec) -> DatasetSpec:
    """The dataset without any statistic: no row count, and no column's values or counts."""
    return dataclasses.replace(
        spec,
        row_count=None,
        all_columns=tuple(_without_values(column) for column in spec.all_columns),
    )


def statistics_for(spec: DatasetSpec, row_filters: Mapping[str, str]) -> DatasetSpec:
    """The dataset as a reader with these row filters may see it.

    Without row filters, the stored statistics (they describe rows the reader can read). With
    them, the row count, enums, minimums, maximums, distinct and null counts computed by the
    dataset's own database under the filters; when that fails (a source down or too slow), none
    at all.
    """
    if not row_filters:
        return spec
    key = (spec, tuple(sorted((str(name), str(value)) for name, value in row_filters.items())))
    try:
        hash(key)
    except TypeError:  # a statistic stored as a list or object: computed, not kept
        return _safely_computed(spec, row_filters)[0]
    now = time.monotonic()
    with _cache_lock:
        entry = _cache.get(key)
        if entry is not None and entry[0] > now:
            _cache.move_to_end(key)
            return entry[1]
    published, max_age = _safely_computed(spec, row_filters)
    with _cache_lock:
        _cache[key] = (now + max_age, published)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_MAX:
            _cache.popitem(last=False)
    return published


def statistics_forget() -> None:
    """Drop every statistic computed under row filters (tests)."""
    with _cache_lock:
        _cache.clear()


def statistics_retain(*, dataset_ids: Collection[int]) -> None:
    """Drop the statistics computed under row filters of every dataset but these (the others were
    deleted: what was computed from their rows goes with them)."""
    with _cache_lock:
        for key in [key for key in _cache if key[0].id not in dataset_ids]:
            del _cache[key]


def _safely_computed(
    spec: DatasetSpec, row_filters: Mapping[str, str]
) -> tuple[DatasetSpec, float]:
    try:
        return _computed(spec, row_filters), MAX_AGE_SECONDS
    except (QueryError, SourceUnavailable) as error:
        logger.warning("Statistics of %s under row filters left out: %s", spec.slug, error.message)
        return statistics_withheld(spec), FAILED_MAX_AGE_SECONDS


_NO_STATISTICS: dict[str, Any] = {
    "enum": None,
    "min": None,
    "max": None,
    "distinct_count": None,
    "null_count": None,
    "unique": None,
}


def _without_values(column: ColumnSpec) -> ColumnSpec:
    if all(getattr(column, name) is None for name in _NO_STATISTICS):
        return column
    return dataclasses.replace(column, **_NO_STATISTICS)


def _published(column: ColumnSpec) -> bool:
    # Only what describe and the schema publish is recomputed; the rest is left out.
    return column.visible and not column.protected


def _counted(column: ColumnSpec) -> bool:
    # Counts show no value: a masked or hashed column keeps them (count_distinct applies to it).
    return column.visible and column.distinct_count is not None


def _computed(spec: DatasetSpec, row_filters: Mapping[str, str]) -> DatasetSpec:
    filters = parse_forced(spec, row_filters)
    ranged = {
        column.name: column
        for column in spec.all_columns
        if _published(column)
        # A text key's range too: the example key of a reader's schema is one of its rows.
        and (column.type in RANGED_TYPES or column.name == spec.primary_key)
        and (column.min is not None or column.max is not None)
    }
    counted = [column for column in spec.all_columns if _counted(column)]
    metrics = (
        Metric("count"),
        *(Metric(function, column) for column in ranged.values() for function in ("min", "max")),
        *(Metric("count_distinct", column) for column in counted),
    )
    (totals,) = run_aggregate(
        spec,
        AggregateQuery(
            filters=filters, search=None, group_by=(), metrics=metrics, ordering=(), limit=1
        ),
    )
    columns = []
    for column in spec.all_columns:
        counts = _counts(spec, column, filters, totals) if _counted(column) else {}
        if not _published(column):
            columns.append(dataclasses.replace(_without_values(column), **counts))
            continue
        changes: dict = {**_NO_STATISTICS, **counts}
        if column.name in ranged:
            changes["min"] = totals[f"min_{column.name}"]
            changes["max"] = totals[f"max_{column.name}"]
        if column.enum is not None:
            changes["enum"] = _enum(spec, column, filters)
        columns.append(dataclasses.replace(column, **changes))
    return dataclasses.replace(spec, row_count=totals["count"], all_columns=tuple(columns))


def _counts(spec: DatasetSpec, column: ColumnSpec, filters, totals: dict) -> dict:
    """The column's distinct count, null count and uniqueness over the filtered rows."""
    distinct = totals[f"count_distinct_{column.name}"]
    nulls = 0
    # A column without nulls has none in any subset of its rows: only the others are counted.
    if column.null_count is None or column.null_count > 0:
        (found,) = run_aggregate(
            spec,
            AggregateQuery(
                filters=(*filters, Filter(column, "isnull", True)),
                search=None,
                group_by=(),
                metrics=(Metric("count"),),
                ordering=(),
                limit=1,
            ),
        )
        nulls = found["count"]
    present = totals["count"] - nulls
    return {"distinct_count": distinct, "null_count": nulls, "unique": 0 < distinct == present}


def _enum(spec: DatasetSpec, column: ColumnSpec, filters) -> tuple | None:
    """The column's published values that occur in the filtered rows, in their published order."""
    found = run_aggregate(
        spec,
        AggregateQuery(
            filters=filters,
            search=None,
            group_by=(GroupKey(column),),
            metrics=(Metric("count"),),
            ordering=(Order(column.name),),
            limit=ENUM_MAX + 1,
        ),
    )
    if len(found) > ENUM_MAX:
        return None
    present = {item[column.name] for item in found if item[column.name] is not None}
    # Never more than the stored enum: a value is published only if the admin's data had it.
    values = tuple(value for value in column.enum or () if value in present)
    return values or None
