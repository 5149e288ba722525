"""Sources, datasets and their columns: the metadata every query is checked against."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from datasets import measures
from datasets.encryption import decrypt, encrypt
from datasets.engine import zones
from datasets.store import version_key
from gatewaysite.generations import TrackedQuerySet

SLUG_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
API_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,63}$"


def validate_time_zone(value: str) -> None:
    if value and not zones.is_zone(value):
        raise ValidationError(
            f"{value!r} is not a time zone: use an IANA name such as UTC, Europe/Berlin or "
            "America/New_York."
        )


class Source(models.Model):
    """A foreign SQL database (PostgreSQL, MySQL/MariaDB or a SQLite file) reached by URL."""

    class Kind(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        MYSQL = "mysql", "MySQL / MariaDB"
        SQLITE = "sqlite", "SQLite file"
        CLICKHOUSE = "clickhouse", "ClickHouse"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, editable=False)
    # The connection URL without its password; the password is kept apart, encrypted.
    url = models.CharField(max_length=500, help_text="Connection URL, without the password.")
    password_encrypted = models.TextField(blank=True, default="", editable=False)
    statement_timeout = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text="Seconds a query may run.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = TrackedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def password(self) -> str:
        return decrypt(self.password_encrypted) if self.password_encrypted else ""

    @password.setter
    def password(self, value: str) -> None:
        self.password_encrypted = encrypt(value) if value else ""


class Dataset(models.Model):
    """A table, view or uploaded file served as REST resources under /api/v1/datasets/{slug}/."""

    slug = models.CharField(
        max_length=40,
        unique=True,
        validators=[
            RegexValidator(
                SLUG_PATTERN, "Lower-case letters, digits and _, starting with a letter."
            )
        ],
    )
    title = models.CharField(max_length=200)
    description = models.TextField(
        max_length=300,
        blank=True,
        default="",
        help_text="Shown to the GPT: 300 characters at most.",
    )
    # A dataset is either an uploaded file (no source) or a table/view of a source.
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.PROTECT, related_name="datasets"
    )
    table = models.CharField(
        max_length=200, blank=True, default="", help_text="Table or view in the source."
    )
    schema_name = models.CharField(
        max_length=200, blank=True, default="", help_text="Schema of the table, if not the default."
    )
    original_filename = models.CharField(max_length=300, blank=True, default="")
    version = models.PositiveIntegerField(
        default=0, editable=False, help_text="Current DuckDB file version of an upload."
    )
    # In the names of the upload's version files (v1-<stamp>.duckdb), drawn once per dataset: a
    # slug deleted and imported again restarts at version 1 without ever sharing a file name with
    # the old dataset, which another process may still hold open. Empty for datasets imported
    # before stamps existed (their files are v1.duckdb) and for tables of sources.
    file_stamp = models.CharField(max_length=16, blank=True, default="", editable=False)
    # SHA-256 of the current version's file when it is in the object store (GATEWAY_STORAGE_URL):
    # a host that fetches the version checks it, and the store key carries it (datasets/store.py).
    file_checksum = models.CharField(max_length=64, blank=True, default="", editable=False)
    primary_key = models.CharField(
        max_length=200, blank=True, default="", help_text="API name of the primary key column."
    )
    default_ordering = models.CharField(
        max_length=300, blank=True, default="", help_text="e.g. -order_date,id"
    )
    default_page_size = models.PositiveIntegerField(default=50, validators=[MinValueValidator(1)])
    max_page_size = models.PositiveIntegerField(
        default=1000, validators=[MinValueValidator(1), MaxValueValidator(10000)]
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        validators=[validate_time_zone],
        help_text="The zone dates are counted in (America/New_York): date filters and buckets of "
        "moments, and the offset they are shown with. Empty: the source's zone at registration, "
        "else UTC.",
    )
    label_column = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="API name of the column that names a row where another dataset refers to it "
        "(expand=carrier gives airlines' name). Empty: a column named like name or title, else "
        "the first text column.",
    )
    enabled = models.BooleanField(default=True)
    row_count = models.BigIntegerField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = TrackedQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_upload(self) -> bool:
        return self.source_id is None

    @property
    def directory(self) -> Path:
        return Path(settings.GATEWAY_DATA_DIR) / "datasets" / self.slug

    def file_path(self, version: int | None = None) -> Path:
        """The DuckDB file of a version (the current one by default)."""
        return self.directory / version_file_name(
            self.version if version is None else version, self.file_stamp
        )

    def file_key(self) -> str:
        """The current version's key in the object store; "" when it is a local file only."""
        if not (
            self.file_checksum and self.is_upload and self.version and settings.GATEWAY_STORAGE
        ):
            return ""
        return version_key(self.slug, self.file_path().name, self.file_checksum)


def version_file_name(version: int, stamp: str) -> str:
    """The name of a version's DuckDB file: v<N>-<stamp>.duckdb (v<N>.duckdb without a stamp)."""
    return f"v{version}-{stamp}.duckdb" if stamp else f"v{version}.duckdb"


class Column(models.Model):
    """A column of a dataset: how it is named, typed, described and protected in the API."""

    class Type(models.TextChoices):
        STRING = "string"
        INTEGER = "integer"
        NUMBER = "number"
        BOOLEAN = "boolean"
        DATE = "date"
        DATETIME = "datetime"

    class Pii(models.TextChoices):
        NONE = "none", "none"
        MASK = "mask", "mask (j***@example.com)"
        HASH = "hash", "hash (stable digest)"
        HIDE = "hide", "hide (never leaves the server)"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="columns")
    position = models.PositiveIntegerField(default=0)
    physical_name = models.CharField(max_length=200)
    name = models.CharField(
        "API name",
        max_length=64,
        validators=[
            RegexValidator(API_NAME_PATTERN, "snake_case: lower-case letters, digits and _.")
        ],
    )
    type = models.CharField(max_length=10, choices=Type.choices)
    instant = models.BooleanField(
        default=False,
        editable=False,
        help_text="Holds moments (a timestamp with a time zone): shown with their offset in the "
        "dataset's time zone.",
    )
    description = models.CharField(max_length=300, blank=True, default="")
    unit = models.CharField(
        max_length=measures.UNIT_MAX_CHARS,
        blank=True,
        default="",
        help_text="What the numbers count or measure (mm, kg, USD, %, minutes): shown with the "
        "description wherever the column is described.",
    )
    identifies = models.CharField(
        max_length=60,
        blank=True,
        default="",
        help_text='What one value stands for, when the column identifies it: "one customer".',
    )
    references = models.ForeignKey(
        "Dataset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referenced_by",
        help_text="The dataset whose primary key this column holds (flights.carrier: airlines).",
    )
    exposed = models.BooleanField(default=True)
    filterable = models.BooleanField(default=True)
    sortable = models.BooleanField(default=True)
    searchable = models.BooleanField(default=False)
    pii = models.CharField(max_length=4, choices=Pii.choices, default=Pii.NONE)
    enum = models.JSONField(
        null=True, blank=True, editable=False, help_text="Distinct values, when at most 50."
    )
    min_value = models.JSONField(null=True, blank=True, editable=False)
    max_value = models.JSONField(null=True, blank=True, editable=False)
    aggregation = models.CharField(
        max_length=7,
        choices=measures.CHOICES,
        default=measures.NONE,
        help_text="The statistic examples use: sum for additive measures (revenue, units), "
        "average for rates, prices and temperatures.",
    )
    distinct_count = models.BigIntegerField(null=True, blank=True, editable=False)
    null_count = models.BigIntegerField(null=True, blank=True, editable=False)
    unique = models.BooleanField(
        null=True, blank=True, editable=False, help_text="No value occurs twice (nulls aside)."
    )

    objects = TrackedQuerySet.as_manager()

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="column_api_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class DatasetImport(models.Model):
    """One upload imported in the background: what it imports, how far it got and how it ended."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    ACTIVE = (State.QUEUED, State.RUNNING)

    slug = models.CharField(max_length=40, help_text="The dataset the file is imported into.")
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="imports"
    )
    replace = models.BooleanField(default=False)
    filename = models.CharField(max_length=300)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    progress = models.FloatField(default=0.0, help_text="Percent done.")
    message = models.TextField(blank=True, default="", help_text="The outcome, or why it failed.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created = models.DateTimeField(auto_now_add=True)
    # Written every second or so while the import runs: a row left active whose heartbeat stopped
    # belonged to a process that ended (restarted, killed).
    heartbeat = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["slug", "state"], name="dataset_import_slug_state")]

    def __str__(self) -> str:
        return f"{self.filename} → {self.slug}"

    @property
    def active(self) -> bool:
        return self.state in self.ACTIVE


class StoredVersion(models.Model):
    """A version file of an upload in the object store (datasets/store.py).

    Kept by slug and file name, not as a link to its dataset: a deleted dataset's versions stay
    in the store, and listed here, for GATEWAY_STORAGE_RETENTION_HOURS after the deletion, so that
    no host loses a file it is still reading. `superseded` is when a newer version went live (or
    the dataset was deleted); `manage.py prune_store` removes the version after the retention.
    """

    key = models.CharField(max_length=512, unique=True)
    slug = models.CharField(max_length=40)
    file_name = models.CharField(max_length=100)
    checksum = models.CharField(max_length=64)
    size = models.BigIntegerField()
    created = models.DateTimeField(default=timezone.now)
    superseded = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["slug", "file_name"], name="stored_version_file")]

    def __str__(self) -> str:
        return self.key


class PrivacyPolicy(models.Model):
    """The text of /privacy/, which the GPT Builder asks for before a GPT is published."""

    text = models.TextField()
    updated = models.DateTimeField(auto_now=True)

    objects = TrackedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "privacy policy"

    def __str__(self) -> str:
        return "Privacy policy"
