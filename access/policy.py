"""The caller's access policy: which datasets and rows it may read, and the budget it spends.

Built from a key today; a signed-in user's grant (OAuth) is the same policy with another origin.
Every door (REST, MCP) asks the policy, never the key, so the rules live in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from datasets.engine.spec import DatasetSpec
from gatewaysite.errors import ApiError
from gatewaysite.generations import ProcessCache
from keys.ratelimit import budget_refusal
from keys.selectors import KeyInfo

logger = logging.getLogger("gateway")


@dataclass(frozen=True)
class AccessPolicy:
    """Datasets (or all), row filters per dataset, rate and daily quota of one caller."""

    principal: str  # the key id: what usage records name
    all_datasets: bool
    dataset_ids: frozenset[int]
    row_filters: Mapping[int, Mapping[str, str]] = field(compare=False)
    rate: str = ""
    quota_per_day: int | None = None
    key: KeyInfo | None = field(default=None, compare=False, repr=False)

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

    def filters_for(self, spec: DatasetSpec) -> dict[str, str]:
        """Equality filters (API column name -> value) imposed on every query of the dataset."""
        return dict(self.row_filters.get(spec.id, {}))


def policy_for_key(key: KeyInfo) -> AccessPolicy:
    """The policy of an authenticated key."""
    return AccessPolicy(
        principal=key.key_id,
        all_datasets=key.all_datasets,
        dataset_ids=key.dataset_ids,
        row_filters=key.row_filters,
        rate=key.rate,
        quota_per_day=key.quota_per_day,
        key=key,
    )


def request_policy(request) -> AccessPolicy | None:
    """The policy of the credential that authenticated a request (DRF or Django), if any.

    An OAuth token's policy is set on the request when the token is checked
    (accounts/authentication.py); a key's is built from the key once per request.
    """
    django_request = getattr(request, "_request", request)
    policy = getattr(django_request, "gateway_policy", None)
    if policy is None:
        key = getattr(request, "auth", None)
        if not isinstance(key, KeyInfo):
            return None
        policy = django_request.gateway_policy = policy_for_key(key)
    return policy


def policy_refusal(policy: AccessPolicy, request) -> ApiError | None:
    """Spend one unit of the caller's rate limit and daily quota: the 429 once over either."""
    if policy.key is None:
        return None
    return budget_refusal(request, policy.key)


# Which datasets some key's or grant's row filter restricts: re-read whenever one changes.
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
