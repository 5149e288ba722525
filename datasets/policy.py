"""The caller's access policy: the one object every door asks what a caller may read.

A key and a signed-in user's grant (OAuth) both become an `AccessPolicy`; REST, MCP, the schema
views and the Connect page ask it, never the key or the grant, so the rules live in one place:
which datasets (scope), which rows (row filters), which statistics (computed over those rows
only), and which budget the caller spends. Personal data (mask, hash, hide) is a rule of the
column, the same for every caller, applied by the engine (datasets/engine/pii.py).

It sits below `keys` and `accounts` (which build it) and `access` (whose doors ask it).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from datasets.engine.spec import DatasetSpec
from datasets.engine.statistics import statistics_for

logger = logging.getLogger("gateway")


def links_within(spec: DatasetSpec, dataset_ids: Collection[int]) -> DatasetSpec:
    """The dataset without its columns' references to datasets outside `dataset_ids`."""
    outside = [
        column
        for column in spec.all_columns
        if column.references is not None and column.references.dataset_id not in dataset_ids
    ]
    if not outside:
        return spec
    columns = tuple(
        dataclasses.replace(column, references=None) if column in outside else column
        for column in spec.all_columns
    )
    return dataclasses.replace(spec, all_columns=columns)


@dataclass(frozen=True)
class Budget:
    """What a caller's rate limit and daily quota are counted under, and how large they are."""

    name: str  # a key id, or "u:<user id>" for a signed-in user (key ids have no ':')
    rate: str = ""  # django-ratelimit syntax; empty: GATEWAY_DEFAULT_RATE
    quota_per_day: int | None = None


@dataclass(frozen=True)
class AccessPolicy:
    """Datasets (or all), row filters per dataset, and the budget of one caller."""

    principal: str  # what usage records name: a key id, or "u:<user>:<app>"
    all_datasets: bool
    dataset_ids: frozenset[int]
    row_filters: Mapping[int, Mapping[str, str]] = field(compare=False)
    budget: Budget | None = None  # None: nothing to spend (the Connect page's view of a key)

    def may_read(self, spec: DatasetSpec) -> bool:
        """May the caller read this dataset? (A dataset it may not read is answered as unknown.)"""
        if not self.all_datasets and spec.id not in self.dataset_ids:
            return False
        # A row filter on a column that no longer exists cannot be enforced: show nothing rather
        # than everything.
        missing = [
            name for name in self.row_filters.get(spec.id, {}) if spec.any_column(name) is None
        ]
        if missing:
            logger.warning(
                "%s has a row filter on %s.%s, which does not exist: dataset refused.",
                self.principal,
                spec.slug,
                ",".join(missing),
            )
            return False
        return True

    def readable(self, specs: Iterable[DatasetSpec]) -> list[DatasetSpec]:
        """The datasets among `specs` the caller may read, in their order."""
        return [spec for spec in specs if self.may_read(spec)]

    def filters_for(self, spec: DatasetSpec) -> dict[str, str]:
        """Equality filters (API column name -> value) imposed on every query of the dataset."""
        return dict(self.row_filters.get(spec.id, {}))

    def published(self, spec: DatasetSpec) -> DatasetSpec:
        """The dataset as the caller may see it: statistics computed over its rows only, and
        references only to datasets in its scope (another is not mentioned at all)."""
        published = statistics_for(spec, self.filters_for(spec))
        if self.all_datasets:
            return published
        return links_within(published, self.dataset_ids)
