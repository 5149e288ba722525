"""API keys, the rows each key may see, the usage record of every API request made with a valid
key, and the daily count of calls refused without one."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from datasets.models import Dataset
from gatewaysite.generations import TrackedQuerySet

KEY_PREFIX = "gw_"
RATE_PATTERN = re.compile(r"^([1-9]\d*)/(\d*)([smhd])$")


def validate_rate(value: str) -> None:
    """A django-ratelimit rate: a count, a slash, an optional multiplier and s, m, h or d."""
    match = RATE_PATTERN.match(value or "")
    if match is None or match.group(2) == "0":
        raise ValidationError(
            f"{value!r} is not a rate: use requests/period such as 60/m, 1000/h, 10/5m or 5000/d."
        )


class ApiKey(models.Model):
    """A key `gw_<key id>_<secret>`: only the key id and a keyed hash of the whole key are stored."""

    key_id = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    name = models.CharField(max_length=100)
    owner = models.CharField(
        "owner or contact", max_length=200, blank=True, default="", help_text="Who uses this key."
    )
    all_datasets = models.BooleanField(
        "all datasets",
        default=False,
        help_text="Every dataset, present and future. Otherwise only the datasets chosen below.",
    )
    datasets = models.ManyToManyField(
        Dataset, blank=True, related_name="api_keys", help_text="Datasets this key may read."
    )
    rate = models.CharField(
        max_length=20,
        blank=True,
        default="",
        validators=[validate_rate],
        help_text="Rate limit such as 60/m or 1000/h; empty: GATEWAY_DEFAULT_RATE.",
    )
    quota_per_day = models.PositiveIntegerField(
        "daily quota",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Requests per UTC day; empty: no quota.",
    )
    expires_at = models.DateTimeField("expires", null=True, blank=True)
    revoked = models.BooleanField(default=False, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TrackedQuerySet.as_manager()
    # Written at most once a minute by the usage buffer; no cached snapshot reads it.
    generation_ignores = frozenset({"last_used"})

    class Meta:
        ordering = ["-created"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"

    @property
    def display_prefix(self) -> str:
        """What identifies the key in lists and logs without revealing it."""
        return f"{KEY_PREFIX}{self.key_id}_…"

    @property
    def state(self) -> str:
        """active, revoked or expired."""
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class DatasetRowFilter(models.Model):
    """An equality filter imposed on every query of one dataset (e.g. region = EU): held by a key
    here, by a person's or group's grant in accounts. Subclasses add the holder and `dataset`."""

    column = models.CharField(
        max_length=64, help_text="API name of the column (hidden columns allowed)."
    )
    value = models.CharField(max_length=500)
    # Declared by each subclass, as its ForeignKey to the dataset.
    dataset: Dataset
    dataset_id: int | None

    objects = TrackedQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["dataset", "column"]

    def __str__(self) -> str:
        return f"{self.dataset_id}: {self.column} = {self.value}"

    def clean(self) -> None:
        if self.dataset_id is None or not self.column:
            return
        dataset = self.dataset
        from datasets.engine.errors import QueryError
        from datasets.engine.values import parse_value

        types = dict(dataset.columns.values_list("name", "type"))
        if self.column not in types:
            raise ValidationError(
                {
                    "column": f"{dataset.slug} has no column {self.column!r}; "
                    f"columns: {', '.join(types) or 'none'}."
                }
            )
        try:
            parse_value(self.value, types[self.column], name=self.column)
        except QueryError as error:
            raise ValidationError({"value": error.message}) from None


class KeyRowFilter(DatasetRowFilter):
    """A key's row filter on one dataset."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="row_filters")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="key_row_filters")

    class Meta(DatasetRowFilter.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["key", "dataset", "column"], name="key_row_filter_unique"
            )
        ]


class UsageRecord(models.Model):
    """One API request made with a valid key: who (key id), what (dataset, operation), how it
    went and how long it took.

    Key id and dataset are plain strings, not foreign keys: records outlive deleted keys and
    datasets, are written in batches without lookups, and record unknown slugs too.
    """

    time = models.DateTimeField(db_index=True)
    key_id = models.CharField(max_length=16, blank=True, default="")
    dataset = models.CharField(max_length=40, blank=True, default="")
    operation = models.CharField(max_length=20, blank=True, default="")
    status = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField()
    rows = models.PositiveIntegerField(null=True, blank=True)
    # The `code` of the error body of a failed call (unknown_column, rate_limited, ...).
    error_code = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        ordering = ["-time"]
        indexes = [
            models.Index(fields=["key_id", "time"], name="usage_key_time"),
            models.Index(fields=["dataset", "time"], name="usage_dataset_time"),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.key_id or '-'} {self.operation} {self.status}"


class RejectedCalls(models.Model):
    """How many API calls of one UTC day were refused for one reason before any key was valid.

    Calls without a valid key are counted, not recorded one by one: whoever sends them, they
    cost a counter increment, never a row each.
    """

    REASONS = [
        ("missing", "no key"),
        ("malformed", "malformed key"),
        ("unknown", "unknown key"),
        ("revoked", "revoked key"),
        ("expired", "expired key"),
    ]

    day = models.DateField()
    reason = models.CharField(max_length=20, choices=REASONS)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "reason"]
        verbose_name = "rejected calls"
        verbose_name_plural = "rejected calls"
        constraints = [
            models.UniqueConstraint(fields=["day", "reason"], name="rejected_calls_day_reason")
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.reason}: {self.count}"
