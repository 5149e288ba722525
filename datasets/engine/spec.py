"""What the engine knows of a dataset: an immutable snapshot of its metadata, built once per change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasets.engine.grammar import column_operators

# An uploaded dataset's query time limit, as a SQL source's default statement timeout.
UPLOAD_STATEMENT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Link:
    """The dataset whose primary key a column holds: its id, slug and key column."""

    dataset_id: int
    slug: str
    key: str


@dataclass(frozen=True)
class ColumnSpec:
    """One column: API name, physical name, type, flags and published statistics."""

    name: str
    physical: str
    type: str
    # A datetime column of moments (a timestamp with a time zone), shown with its offset and dated
    # in the dataset's time zone; False: wall-clock times, taken as in that zone.
    instant: bool = False
    description: str = ""
    unit: str = ""
    identifies: str = ""  # what one value stands for ("one customer")
    references: Link | None = None
    exposed: bool = True
    filterable: bool = True
    sortable: bool = True
    searchable: bool = False
    pii: str = "none"
    enum: tuple | None = None
    min: Any = None
    max: Any = None
    # How the column adds up (sum, average or none; None: from its name, datasets/measures.py),
    # and its profile.
    aggregation: str | None = None
    distinct_count: int | None = None
    null_count: int | None = None
    unique: bool | None = None
    # Grammar markers, kept when statistics are withheld or recomputed under row filters (so a
    # row filter never changes which operators a column takes): does the column hold empty
    # values (None: unknown, `isnull` offered), and are its values a published list (no
    # substring operators then)? By default from null_count and enum.
    nullable: bool | None = None
    categorical: bool | None = None

    def __post_init__(self) -> None:
        if self.nullable is None and self.null_count is not None:
            object.__setattr__(self, "nullable", self.null_count > 0)
        if self.categorical is None:
            object.__setattr__(self, "categorical", self.enum is not None)

    @property
    def visible(self) -> bool:
        """Does the column leave the server at all?"""
        return self.exposed and self.pii != "hide"

    @property
    def protected(self) -> bool:
        """Masked or hashed: not filterable, sortable, searchable or aggregated (except count_distinct)."""
        return self.pii in ("mask", "hash")

    @property
    def operators(self) -> tuple[str, ...]:
        """The filter operators a client may use on this column."""
        if not self.filterable or self.protected or not self.visible:
            return ()
        return column_operators(self)


@dataclass(frozen=True)
class SourceSpec:
    """How to reach a foreign database."""

    id: int
    kind: str
    url: str  # with the password, for the engine only: never logged or shown
    statement_timeout: int
    stamp: str  # changes whenever the source is edited, so that pools are rebuilt


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as the engine and the API see it."""

    id: int
    slug: str
    title: str
    description: str
    table: str
    schema_name: str = ""
    source: SourceSpec | None = None
    file_path: str = ""  # the DuckDB file of the current version, for uploads
    # The version in the object store (GATEWAY_STORAGE_URL), and its SHA-256; "" for local files.
    file_key: str = ""
    file_checksum: str = ""
    primary_key: str | None = None
    default_ordering: tuple[str, ...] = ()
    default_page_size: int = 50
    max_page_size: int = 1000
    row_count: int | None = None
    # The zone dates are counted in (datasets/engine/zones.py): an IANA name.
    time_zone: str = "UTC"
    # The column that names a row where another dataset refers to it; "": chosen by its name.
    label: str = ""
    all_columns: tuple[ColumnSpec, ...] = ()
    # Seconds a query of an uploaded dataset may run (SQL sources use their source's limit).
    statement_timeout: float | None = None
    # Not an __init__ argument: dataclasses.replace() would hand the old spec's dict to the new
    # one, and __post_init__ would then add the new columns to both.
    _by_name: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({column.name: column for column in self.all_columns})

    @property
    def backend(self) -> str:
        """duckdb, postgresql, mysql or sqlite."""
        return self.source.kind if self.source else "duckdb"

    @property
    def values_complete(self) -> bool:
        """Are the published enums and ranges every value the rows hold?

        An upload's file never changes after its statistics are taken. A SQL source's rows do:
        a value missing from its enum may have arrived since, so its values are not checked.
        """
        return self.source is None

    @property
    def time_limit(self) -> float:
        """Seconds any one query of this dataset may run before it is interrupted."""
        if self.source is not None:
            return self.source.statement_timeout
        if self.statement_timeout is not None:
            return self.statement_timeout
        return UPLOAD_STATEMENT_TIMEOUT

    @property
    def columns(self) -> tuple[ColumnSpec, ...]:
        """The columns that leave the server, in order."""
        return tuple(column for column in self.all_columns if column.visible)

    def column(self, name: str) -> ColumnSpec | None:
        """A visible column by API name."""
        column = self._by_name.get(name)
        return column if column is not None and column.visible else None

    def any_column(self, name: str) -> ColumnSpec | None:
        """A column by API name, hidden ones included (for a key's row filters)."""
        return self._by_name.get(name)
