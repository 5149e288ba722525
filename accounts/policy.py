"""A signed-in user's access policy: the union of the user's grant and the user's groups' grants.

The result is the same `AccessPolicy` a key gets (datasets/policy.py), so every door, the engine
seam, rate limits, quotas and usage treat an OAuth access token exactly like a key. How grants
combine (docs/oauth.md, "Grants"):

- datasets: the union; a grant of all datasets covers every dataset;
- row filters of a dataset: none when any grant covering the dataset has no filter on it;
  otherwise the filters of one grant, the user's own first, then the groups' by name (the
  engine's row filters are equalities joined by AND, so the union of two filtered row sets
  cannot be expressed, and their intersection would hide rows both grants give);
- rate limit and daily quota: the user's own grant's; without one, the most generous group's.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from accounts.models import AccessGrant
from datasets.policy import AccessPolicy, Budget
from keys.models import RATE_PATTERN

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class GrantSnapshot:
    """One grant as the policy needs it."""

    own: bool
    holder: str
    all_datasets: bool
    dataset_ids: frozenset[int]
    row_filters: dict[int, dict[str, str]]
    rate: str
    quota_per_day: int | None

    def covers(self, dataset_id: int) -> bool:
        return self.all_datasets or dataset_id in self.dataset_ids


def user_grants(user) -> list[GrantSnapshot]:
    """The user's own grant (first) and the grants of the user's groups, by group name."""
    grants = (
        (
            AccessGrant.objects.filter(user=user)
            | AccessGrant.objects.filter(group__in=user.groups.all())
        )
        .select_related("group")
        .prefetch_related("datasets", "row_filters")
    )
    snapshots = []
    for grant in grants:
        filters: dict[int, dict[str, str]] = {}
        for row_filter in grant.row_filters.all():
            filters.setdefault(row_filter.dataset_id, {})[row_filter.column] = row_filter.value
        snapshots.append(
            GrantSnapshot(
                own=grant.user_id is not None,
                holder="" if grant.group is None else grant.group.name,
                all_datasets=grant.all_datasets,
                dataset_ids=frozenset(dataset.pk for dataset in grant.datasets.all()),
                row_filters=filters,
                rate=grant.rate,
                quota_per_day=grant.quota_per_day,
            )
        )
    snapshots.sort(key=lambda grant: (not grant.own, grant.holder))
    return snapshots


def rate_per_second(rate: str) -> float:
    """Requests per second a django-ratelimit rate allows (0 for an empty or invalid rate)."""
    match = RATE_PATTERN.match(rate or "")
    if match is None:
        return 0.0
    count, multiplier, unit = match.groups()
    return int(count) / (int(multiplier or 1) * UNIT_SECONDS[unit])


def _budget(grants: list[GrantSnapshot]) -> tuple[str, int | None]:
    own = [grant for grant in grants if grant.own]
    if own:
        return own[0].rate, own[0].quota_per_day
    # An empty rate stands for GATEWAY_DEFAULT_RATE.
    rate = max(
        (grant.rate for grant in grants),
        key=lambda rate: rate_per_second(rate or settings.GATEWAY_DEFAULT_RATE),
    )
    quotas = [grant.quota_per_day for grant in grants]
    quota = None if any(q is None for q in quotas) else max(quotas)  # type: ignore[type-var]
    return rate, quota


def _row_filters(grants: list[GrantSnapshot]) -> dict[int, dict[str, str]]:
    combined: dict[int, dict[str, str]] = {}
    filtered = {dataset_id for grant in grants for dataset_id in grant.row_filters}
    for dataset_id in filtered:
        covering = [grant for grant in grants if grant.covers(dataset_id)]
        if not covering or any(dataset_id not in grant.row_filters for grant in covering):
            continue  # not readable, or some grant reads it whole
        combined[dataset_id] = dict(covering[0].row_filters[dataset_id])
    return combined


def budget_id(user) -> str:
    """What the user's rate limit and quota are counted under (never a key id: keys have no ':')."""
    return f"u:{user.pk}"


def usage_id(user, application) -> str:
    """What the user's usage records name: the user and the app (16 characters at most)."""
    return f"u:{user.pk}:{application.pk if application is not None else 0}"[:16]


def policy_for_user(user, application) -> AccessPolicy | None:
    """The policy of a user signed in through `application`, None when no grant applies."""
    grants = user_grants(user) if user is not None and user.is_active else []
    if not grants:
        return None
    rate, quota = _budget(grants)
    all_datasets = any(grant.all_datasets for grant in grants)
    dataset_ids = frozenset().union(*(grant.dataset_ids for grant in grants))
    row_filters = _row_filters(grants)
    return AccessPolicy(
        principal=usage_id(user, application),
        all_datasets=all_datasets,
        dataset_ids=dataset_ids,
        row_filters=row_filters,
        budget=Budget(budget_id(user), rate, quota),
    )
