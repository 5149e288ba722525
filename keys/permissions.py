"""Scope: which datasets and rows a key may read, and the budget (rate, quota) it spends."""

from __future__ import annotations

import logging

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission

from datasets.engine.spec import DatasetSpec
from gatewaysite.generations import ProcessCache
from keys.ratelimit import quota_check, rate_limit_check
from keys.selectors import KeyInfo

logger = logging.getLogger("gateway")

KEY_REQUIRED = (
    "An API key is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
)


def request_key(request) -> KeyInfo | None:
    """The key that authenticated the request, if any."""
    key = getattr(request, "auth", None)
    return key if isinstance(key, KeyInfo) else None


class HasApiKey(BasePermission):
    """Every call needs a valid key, and spends one unit of its rate limit and daily quota."""

    def has_permission(self, request, view) -> bool:
        key = request_key(request)
        if key is None:
            raise NotAuthenticated(KEY_REQUIRED)
        rate_limit_check(request, key)
        quota_check(key)
        return True


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


# Which datasets some key's row filter restricts: re-read whenever a key changes anywhere.
_restricted: ProcessCache[frozenset[int]] = ProcessCache("keys")


def row_filtered_dataset_ids() -> frozenset[int]:
    """The datasets that at least one key or user grant reads through row filters (their public
    schema then publishes no values: they would describe rows those readers cannot read)."""
    from accounts.models import GrantRowFilter
    from keys.models import KeyRowFilter

    def load() -> frozenset[int]:
        keys = KeyRowFilter.objects.values_list("dataset_id", flat=True).distinct()
        grants = GrantRowFilter.objects.values_list("dataset_id", flat=True).distinct()
        return frozenset(keys) | frozenset(grants)

    return _restricted.get(("row_filtered",), load)
