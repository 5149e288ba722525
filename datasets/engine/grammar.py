"""The query language's vocabulary: operators per column type, metrics, date parts and buckets."""

from __future__ import annotations

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
)

COMPARISON = ("gt", "gte", "lt", "lte")
DATE_PARTS = ("year", "quarter", "month")
BUCKETS = ("year", "quarter", "month", "week", "day")

# "eq" is the bare `{col}=value` form; the others are `{col}__{op}=value`.
OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": ("eq", "ne", "in", "contains", "icontains", "startswith", "isnull"),
    "integer": ("eq", "ne", *COMPARISON, "in", "isnull"),
    "number": ("eq", "ne", *COMPARISON, "in", "isnull"),
    "boolean": ("eq", "ne", "isnull"),
    "date": ("eq", "ne", *COMPARISON, "in", "isnull", *DATE_PARTS),
    "datetime": ("eq", "ne", *COMPARISON, "in", "isnull", *DATE_PARTS),
}
ALL_OPERATORS = (
    "eq",
    "ne",
    *COMPARISON,
    "in",
    "contains",
    "icontains",
    "startswith",
    "isnull",
    *DATE_PARTS,
)

METRICS = ("count", "sum", "avg", "min", "max", "count_distinct")
METRIC_TYPES: dict[str, tuple[str, ...]] = {
    "sum": ("integer", "number"),
    "avg": ("integer", "number"),
    "min": ("integer", "number", "date", "datetime", "string"),
    "max": ("integer", "number", "date", "datetime", "string"),
    "count_distinct": ("string", "integer", "number", "boolean", "date", "datetime"),
}

DEFAULT_AGGREGATE_LIMIT = 100
MAX_AGGREGATE_LIMIT = 1000
