"""Reads: the key table of the request path (cached per process) and usage summaries for the admin."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from datasets.policy import AccessPolicy, Budget
from gatewaysite.generations import ProcessCache
from keys.models import ApiKey, KeyRowFilter, UsageRecord

CHART_DAYS = 30


@dataclass(frozen=True)
class KeyInfo:
    """What the request path needs of a key: an immutable snapshot, safe to share across threads."""

    id: int
    key_id: str
    secret_hash: str
    name: str
    all_datasets: bool
    dataset_ids: frozenset[int]
    row_filters: dict[int, dict[str, str]] = field(compare=False)
    rate: str
    quota_per_day: int | None
    expires_at: datetime | None
    revoked: bool

    def expired(self, now: datetime) -> bool:
        """Has the key passed its expiry?"""
        return self.expires_at is not None and self.expires_at <= now

    @property
    def budget(self) -> Budget:
        """What the key's calls spend: its rate limit and daily quota, under its key id."""
        return Budget(self.key_id, self.rate, self.quota_per_day)

    def policy(self) -> AccessPolicy:
        """What the key may read: its scope and row filters, and its budget."""
        return AccessPolicy(
            principal=self.key_id,
            all_datasets=self.all_datasets,
            dataset_ids=self.dataset_ids,
            row_filters=self.row_filters,
            budget=self.budget,
        )


def _snapshot(
    key: ApiKey, dataset_ids: set[int], row_filters: dict[int, dict[str, str]]
) -> KeyInfo:
    return KeyInfo(
        id=key.pk,
        key_id=key.key_id,
        secret_hash=key.secret_hash,
        name=key.name,
        all_datasets=key.all_datasets,
        dataset_ids=frozenset(dataset_ids),
        row_filters=row_filters,
        rate=key.rate,
        quota_per_day=key.quota_per_day,
        expires_at=key.expires_at,
        revoked=key.revoked,
    )


def _load(key_id: str | None = None) -> dict[str, KeyInfo]:
    keys = ApiKey.objects.only(
        "id",
        "key_id",
        "secret_hash",
        "name",
        "all_datasets",
        "rate",
        "quota_per_day",
        "expires_at",
        "revoked",
    )
    through = ApiKey.datasets.through.objects.all()
    filters = KeyRowFilter.objects.all()
    if key_id is not None:
        keys = keys.filter(key_id=key_id)
        through = through.filter(apikey__key_id=key_id)
        filters = filters.filter(key__key_id=key_id)
    scope: dict[int, set[int]] = defaultdict(set)
    for key_pk, dataset_pk in through.values_list("apikey_id", "dataset_id"):
        scope[key_pk].add(dataset_pk)
    row_filters: dict[int, dict[int, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for key_pk, dataset_pk, column, value in filters.values_list(
        "key_id", "dataset_id", "column", "value"
    ):
        row_filters[key_pk][dataset_pk][column] = value
    return {
        key.key_id: _snapshot(
            key,
            scope.get(key.pk, set()),
            {dataset: dict(columns) for dataset, columns in row_filters.get(key.pk, {}).items()},
        )
        for key in keys
    }


# Every key, loaded in one go and kept per process until a change to any key commits anywhere.
_keys: ProcessCache[dict[str, KeyInfo]] = ProcessCache("keys")


def key_info(key_id: str) -> KeyInfo | None:
    """The key with this key id (revoked and expired ones included), or None."""
    # When the generation cannot be read nothing is trusted: only this key is read, every time.
    return _keys.get("all", _load, fallback=lambda: _load(key_id)).get(key_id)


def key_table_held() -> tuple[dict[str, KeyInfo], str] | None:
    """This process's copy of the key table and the generation it was loaded under, without
    reading the current generation (None when none is held): the caller must check it."""
    return _keys.peek("all")


@dataclass(frozen=True)
class UsageDay:
    """Requests and errors of one UTC day."""

    day: date
    requests: int
    errors: int


@dataclass(frozen=True)
class UsageSummary:
    """Totals, errors and the last 30 days, for one key, one dataset or everything."""

    requests: int
    errors: int
    rate_limited: int
    rows: int
    last_time: datetime | None
    days: list[UsageDay]

    @property
    def requests_30_days(self) -> int:
        return sum(day.requests for day in self.days)


def _summary(records) -> UsageSummary:
    from keys.usage import usage_flush

    # Whatever is still buffered belongs in the numbers the admin is about to read.
    usage_flush()
    totals = records.aggregate(
        requests=Count("id"),
        errors=Count("id", filter=Q(status__gte=400)),
        rate_limited=Count("id", filter=Q(status=429)),
        rows=Sum("rows"),
    )
    last = records.order_by("-time").values_list("time", flat=True).first()
    today = timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=CHART_DAYS - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    per_day = {
        row["day"]: row
        for row in records.filter(time__gte=start)
        .annotate(day=TruncDate("time", tzinfo=UTC))
        .values("day")
        .annotate(requests=Count("id"), errors=Count("id", filter=Q(status__gte=400)))
        .order_by("day")
    }
    days = []
    for offset in range(CHART_DAYS):
        day = first + timedelta(days=offset)
        row = per_day.get(day, {})
        days.append(UsageDay(day, row.get("requests", 0), row.get("errors", 0)))
    return UsageSummary(
        requests=totals["requests"],
        errors=totals["errors"],
        rate_limited=totals["rate_limited"],
        rows=totals["rows"] or 0,
        last_time=last,
        days=days,
    )


def key_usage(key_id: str) -> UsageSummary:
    """Usage of one key."""
    return _summary(UsageRecord.objects.filter(key_id=key_id))


def dataset_usage(slug: str) -> UsageSummary:
    """Usage of one dataset, by every key."""
    return _summary(UsageRecord.objects.filter(dataset=slug))


def usage_by_dataset() -> list[dict]:
    """Requests, errors and keys seen per dataset slug, busiest first."""
    from keys.usage import usage_flush

    usage_flush()
    rows = (
        UsageRecord.objects.exclude(dataset="")
        .values("dataset")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status__gte=400)),
            keys=Count("key_id", distinct=True),
        )
        .order_by("-requests", "dataset")
    )
    return [dict(row) for row in rows]
