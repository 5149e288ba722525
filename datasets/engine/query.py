"""The query objects: what a client asked for, already checked against the dataset's columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets.engine.grammar import BUCKETS_BY_NAME, METRICS_BY_NAME
from datasets.engine.spec import ColumnSpec


@dataclass(frozen=True)
class Filter:
    """`column op value`; `value` is parsed by the column's type (a tuple for `in`)."""

    column: ColumnSpec
    op: str
    value: Any


@dataclass(frozen=True)
class Order:
    """Sort by a result key (a column, or in aggregates a group or metric key)."""

    key: str
    descending: bool = False


@dataclass(frozen=True)
class RowsQuery:
    """A page of rows."""

    filters: tuple[Filter, ...]
    search: str | None
    ordering: tuple[Order, ...]
    fields: tuple[ColumnSpec, ...]
    limit: int
    offset: int
    # Columns whose referenced row's label each row carries too (`expand`), as `{col}__label`.
    expand: tuple[ColumnSpec, ...] = ()


def label_key(column: ColumnSpec) -> str:
    """Where a row carries the label of the row its column refers to: `carrier__label`."""
    return f"{column.name}__label"


@dataclass(frozen=True)
class GroupKey:
    """A column to group by, or one of its date buckets."""

    column: ColumnSpec
    bucket: str | None = None

    @property
    def key(self) -> str:
        return (
            BUCKETS_BY_NAME[self.bucket].key(self.column.name) if self.bucket else self.column.name
        )


@dataclass(frozen=True)
class Metric:
    """count, or a function of a column."""

    function: str
    column: ColumnSpec | None = None

    @property
    def key(self) -> str:
        return METRICS_BY_NAME[self.function].result_key(self.column.name if self.column else None)


@dataclass(frozen=True)
class AggregateQuery:
    """Grouped metrics."""

    filters: tuple[Filter, ...]
    search: str | None
    group_by: tuple[GroupKey, ...]
    metrics: tuple[Metric, ...]
    ordering: tuple[Order, ...]
    limit: int
    offset: int = 0
    # Plain group_by keys whose referenced row's label each group carries too (`expand`).
    expand: tuple[ColumnSpec, ...] = ()
