"""Scope: which datasets and rows a key may read, and the budget (rate, quota) it spends."""

from __future__ import annotations

import logging

from datasets.engine.spec import DatasetSpec
from keys.selectors import KeyInfo

logger = logging.getLogger("gateway")


def request_key(request) -> KeyInfo | None:
    """The key that authenticated the request, if any."""
    key = getattr(request, "auth", None)
    return key if isinstance(key, KeyInfo) else None


def row_filtered_dataset_ids() -> frozenset[int]:
    from access.policy import row_filtered_dataset_ids

    return row_filtered_dataset_ids()


def dataset_in_scope(request, spec: DatasetSpec) -> bool:
    """May the caller's key read this dataset? (Out of scope is answered as 404.)"""
    key = request_key(request)
    if key is None:
        return False
    if not key.all_datasets and spec.id not in key.dataset_ids:
        return False
    # A row filter on a column that no longer exists cannot be enforced: show nothing rather
    # than everything.
    missing = [name for name in key.row_filters.get(spec.id, {}) if spec.any_column(name) is None]
    if missing:
        logger.warning(
            "Key %s has a row filter on %s.%s, which does not exist: dataset refused.",
            key.key_id,
            spec.slug,
            ",".join(missing),
        )
        return False
    return True


def row_filters(request, spec: DatasetSpec) -> dict[str, str]:
    """Equality filters (API column name -> value) the key imposes on every query of the dataset."""
    key = request_key(request)
    if key is None:
        return {}
    return dict(key.row_filters.get(spec.id, {}))
