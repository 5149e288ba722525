"""The query language, one record per rule: filter operators, date buckets, metrics and caps.

The parser (parse.py), the compiler (compile.py), the OpenAPI operations
(datasets/schema/operations.py), describe and the error messages all read these records, so a
call the schema declares is a call the engine accepts, and the other way round. A new operator
is one `Operator` record in OPERATORS (its operand kind says how its value is parsed and
declared; see `Operand`).
"""

from __future__ import annotations

import operator as python_operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:  # pragma: no cover
    from datasets.engine.spec import ColumnSpec, DatasetSpec

RESERVED_PARAMS = (
    "limit",
    "offset",
    "fields",
    "ordering",
    "search",
    "group_by",
    "metrics",
    "format",
    "datasets",
    "expand",
)
# Taken by the API but not declared in the schema (CSV output is for people, not for models):
# never offered in an error's list of valid parameters.
UNDECLARED_PARAMS = ("format",)


@dataclass(frozen=True)
class ColumnType:
    """A column type: the JSON schema of its values and how a value is written in a query."""

    name: str
    schema: dict
    wording: str  # "a number such as 19.99": what an invalid value should have been
    plural: str  # "numbers": the elements of a comma-separated list of such values


TYPES: dict[str, ColumnType] = {
    record.name: record
    for record in (
        ColumnType("string", {"type": "string"}, "any text", "texts"),
        ColumnType("integer", {"type": "integer"}, "a whole number such as 42", "whole numbers"),
        ColumnType("number", {"type": "number"}, "a number such as 19.99", "numbers"),
        ColumnType("boolean", {"type": "boolean"}, "true or false", "true or false"),
        ColumnType(
            "date",
            {"type": "string", "format": "date"},
            "a date as YYYY-MM-DD, such as 2024-04-01",
            "dates (YYYY-MM-DD)",
        ),
        ColumnType(
            "datetime",
            {"type": "string", "format": "date-time"},
            "a date-time as YYYY-MM-DDTHH:MM:SS, such as 2024-04-01T09:30:00",
            "date-times (YYYY-MM-DDTHH:MM:SS)",
        ),
    )
}
COLUMN_TYPES = tuple(TYPES)
DATED = ("date", "datetime")
NUMERIC = ("integer", "number")
ORDERED = ("integer", "number", "date", "datetime")

# Caps of one call: each is declared in the schema (maxItems, maximum or the description).
MAX_IN_VALUES = 100
MAX_GROUP_KEYS = 6
MAX_METRICS = 12
DEFAULT_AGGREGATE_LIMIT = 100
MAX_AGGREGATE_LIMIT = 1000
MAX_OFFSET = 2**62
YEAR_RANGE = (1, 9999)


class Operand:
    """How an operator's value is read: the column's type, a list of them, text, a flag or a number."""

    VALUE = "value"  # one value of the column's type
    VALUES = "values"  # comma-separated values of the column's type
    TEXT = "text"  # non-empty text, whatever the column's type
    FLAG = "flag"  # true or false
    PART = "part"  # a whole number in a range (a date part)


@dataclass(frozen=True)
class Operator:
    """One filter operator: `{col}__{name}=value` (`{col}=value` for eq)."""

    name: str
    types: tuple[str, ...]
    operand: str
    # (dialect, column expression, parsed value) -> SQL condition; dialects are compile.Dialect.
    sql: Callable[[Any, Any, Any], Any]
    wording: str  # "{col} is at least the value": for errors, describe and docs
    # A whole-number range for Operand.PART; a year's range narrows to the column's years.
    range: tuple[int, int] | None = None
    free_text: bool = False  # only on columns without published values (no enum)
    categorical: bool = False  # only on booleans and columns with published values
    needs_nulls: bool = False  # only on columns that may be empty
    enum: bool = False  # the parameter's schema carries the column's published values

    def parameter(self, column: str) -> str:
        """The query parameter of this operator on a column."""
        return column if self.name == "eq" else f"{column}__{self.name}"

    def applies(self, column: ColumnSpec) -> bool:
        """Does the operator fit this column (type, published values, nulls)?"""
        if column.type not in self.types:
            return False
        if self.free_text and column.categorical:
            return False
        if self.categorical and not (column.categorical or column.type == "boolean"):
            return False
        return not (self.needs_nulls and column.nullable is False)


def _compare(function) -> Callable:
    return lambda dialect, expr, value: function(expr, value)


def _part(name: str) -> Callable:
    return lambda dialect, expr, value: dialect.date_part(expr, name) == value


OPERATORS: dict[str, Operator] = {
    record.name: record
    for record in (
        Operator(
            "eq", COLUMN_TYPES, Operand.VALUE, _compare(python_operator.eq), "{col} equals the value", enum=True
        ),
        # "Not equal" keeps rows where the value is missing, as a person reading "not EU" expects.
        Operator(
            "ne",
            COLUMN_TYPES,
            Operand.VALUE,
            lambda dialect, expr, value: sa.or_(expr != value, expr.is_(None)),
            "{col} differs from the value (empty values included)",
            enum=True,
            # "Every region but EU" is a question; "every revenue but 19.99" is not.
            categorical=True,
        ),
        Operator("gt", ORDERED, Operand.VALUE, _compare(python_operator.gt), "{col} is greater (later) than the value"),
        Operator("gte", ORDERED, Operand.VALUE, _compare(python_operator.ge), "{col} is at least (on or after) the value"),
        Operator("lt", ORDERED, Operand.VALUE, _compare(python_operator.lt), "{col} is less (earlier) than the value"),
        Operator("lte", ORDERED, Operand.VALUE, _compare(python_operator.le), "{col} is at most (on or before) the value"),
        Operator(
            "in",
            ("string", "integer", "number", "date", "datetime"),
            Operand.VALUES,
            lambda dialect, expr, values: dialect.in_(expr, values),
            "{col} is one of the comma-separated values",
            enum=True,
        ),
        Operator(
            "contains",
            ("string",),
            Operand.TEXT,
            lambda dialect, expr, value: dialect.contains(expr, value),
            "{col} contains the text (case-sensitive)",
            free_text=True,
        ),
        Operator(
            "icontains",
            ("string",),
            Operand.TEXT,
            lambda dialect, expr, value: dialect.icontains(expr, value),
            "{col} contains the text (any case)",
            free_text=True,
        ),
        Operator(
            "startswith",
            ("string",),
            Operand.TEXT,
            lambda dialect, expr, value: dialect.startswith(expr, value),
            "{col} starts with the text",
            free_text=True,
        ),
        Operator(
            "isnull",
            COLUMN_TYPES,
            Operand.FLAG,
            lambda dialect, expr, value: expr.is_(None) if value else expr.is_not(None),
            "true: {col} is empty; false: {col} has a value",
            needs_nulls=True,
        ),
        Operator("year", DATED, Operand.PART, _part("year"), "{col} falls in the year", range=YEAR_RANGE),
        Operator("quarter", DATED, Operand.PART, _part("quarter"), "{col} falls in the quarter (1-4)", range=(1, 4)),
        Operator("month", DATED, Operand.PART, _part("month"), "{col} falls in the month (1-12)", range=(1, 12)),
    )
}  # fmt: skip
DATE_PARTS = tuple(name for name, record in OPERATORS.items() if record.operand == Operand.PART)
COMPARISON = ("gt", "gte", "lt", "lte")
ALL_OPERATORS = tuple(OPERATORS)


def column_operators(column: ColumnSpec) -> tuple[str, ...]:
    """The operators a column takes, in the records' order (type, values and nulls permitting)."""
    return tuple(name for name, record in OPERATORS.items() if record.applies(column))


def part_range(record: Operator, column: ColumnSpec | None = None) -> tuple[int, int]:
    """The whole numbers a date part accepts: a year within the column's published years."""
    low, high = record.range or (0, 0)
    if record.name == "year" and column is not None:
        years = covered_years(column)
        if years is not None:
            return years
    return low, high


def covered_years(column: ColumnSpec) -> tuple[int, int] | None:
    """The first and last year of a date column's published range, if it has one."""
    if column.type not in DATED or column.min is None or column.max is None:
        return None
    try:
        return int(str(column.min)[:4]), int(str(column.max)[:4])
    except ValueError:
        return None


@dataclass(frozen=True)
class Bucket:
    """A date bucket of group_by: `{col}__{name}`, its values strings like `example`."""

    name: str
    example: str

    def key(self, column: str) -> str:
        """The group_by key and result key of this bucket on a column."""
        return f"{column}__{self.name}"


BUCKETS_BY_NAME: dict[str, Bucket] = {
    record.name: record
    for record in (
        Bucket("year", "2024"),
        Bucket("quarter", "2024-Q2"),
        Bucket("month", "2024-04"),
        Bucket("week", "2024-W14"),  # ISO week and its year
        Bucket("day", "2024-04-03"),
    )
}
BUCKETS = tuple(BUCKETS_BY_NAME)


@dataclass(frozen=True)
class MetricFunction:
    """A metric: `count`, or `{name}:{col}` whose result key is `{name}_{col}`."""

    name: str
    types: tuple[str, ...]  # () for count, which takes no column
    wording: str
    # (column expression, column) -> SQL aggregate; None for count(*)
    sql: Callable[[Any, Any, Any], Any] | None  # (dialect, column expression, column)
    result: str  # JSON type of the result: "integer", "number" or "column" (the column's own)
    on_protected: bool = False  # applies to masked and hashed columns
    on_key: bool = True  # applies to the primary key (a sum of identifiers answers nothing)

    def result_key(self, column: str | None = None) -> str:
        """The key of this metric in each result group."""
        return f"{self.name}_{column}" if column else self.name

    def call(self, column: str | None = None) -> str:
        """The metric as written in `metrics`."""
        return f"{self.name}:{column}" if column else self.name

    def applies(self, column: ColumnSpec, *, primary_key: str | None) -> bool:
        """Does the metric fit this column?"""
        if column.type not in self.types:
            return False
        if column.protected and not self.on_protected:
            return False
        return self.on_key or column.name != primary_key


def _avg(dialect, expr, column):
    return sa.func.avg(dialect.average_operand(expr, column.type))


METRICS_BY_NAME: dict[str, MetricFunction] = {
    record.name: record
    for record in (
        MetricFunction("count", (), "rows in the group", None, "integer"),
        MetricFunction("sum", NUMERIC, "total", lambda dialect, expr, column: sa.func.sum(expr), "number", on_key=False),
        MetricFunction("avg", NUMERIC, "average", _avg, "number", on_key=False),
        MetricFunction("min", ("string", *ORDERED), "smallest value", lambda dialect, expr, column: sa.func.min(expr), "column"),
        MetricFunction("max", ("string", *ORDERED), "largest value", lambda dialect, expr, column: sa.func.max(expr), "column"),
        MetricFunction(
            "count_distinct",
            COLUMN_TYPES,
            "distinct values",
            lambda dialect, expr, column: sa.func.count(sa.distinct(expr)),
            "integer",
            on_protected=True,
        ),
    )
}  # fmt: skip
METRICS = tuple(METRICS_BY_NAME)
METRIC_TYPES: dict[str, tuple[str, ...]] = {
    name: record.types for name, record in METRICS_BY_NAME.items() if record.types
}


def group_keys(spec: DatasetSpec) -> list[str]:
    """Every group_by key of a dataset: its columns (masked ones excepted), then date buckets."""
    columns = [column for column in spec.columns if column.pii != "mask"]
    keys = [column.name for column in columns]
    for column in columns:
        if column.type in DATED:
            keys += [record.key(column.name) for record in BUCKETS_BY_NAME.values()]
    return keys


def metric_columns(spec: DatasetSpec, record: MetricFunction) -> list[str]:
    """The columns a metric function applies to, in the dataset's order."""
    return [
        column.name
        for column in spec.columns
        if record.applies(column, primary_key=spec.primary_key)
    ]
