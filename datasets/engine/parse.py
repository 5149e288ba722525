"""Query parameters -> validated query objects. Every mistake is a QueryError naming the valid choices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from datasets.engine import grammar
from datasets.engine.errors import QueryError, shown, suggest
from datasets.engine.query import AggregateQuery, Filter, GroupKey, Metric, Order, RowsQuery
from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.engine.values import is_date_only, parse_bool, parse_int_in, parse_value

ROWS_PARAMS = ("limit", "offset", "fields", "ordering", "search", "format")
AGGREGATE_PARAMS = ("group_by", "metrics", "ordering", "limit", "search", "format")
MAX_IN_VALUES = 100
MAX_GROUP_KEYS = 6
MAX_METRICS = 12
_DATE_PART_RANGE = {"year": (1, 9999), "quarter": (1, 4), "month": (1, 12)}


def _items(params: Mapping) -> list[tuple[str, str]]:
    """(name, value) pairs; a QueryDict may repeat a name."""
    if hasattr(params, "lists"):
        return [(name, value) for name, values in params.lists() for value in values]
    return [(name, value) for name, value in params.items()]


def _last(params: Mapping, name: str) -> str | None:
    value = params.get(name)
    return None if value is None else str(value)


def _names(spec: DatasetSpec) -> list[str]:
    return [column.name for column in spec.columns]


def _column(spec: DatasetSpec, name: str, *, role: str) -> ColumnSpec:
    column = spec.column(name)
    if column is None:
        raise QueryError(
            "unknown_column",
            f"Unknown column '{shown(name)}' in {role}."
            + suggest(name, _names(spec), what="columns"),
        )
    return column


def _csv(raw: str | None) -> list[str]:
    if raw is None:
        return []
    return [part.strip() for part in raw.split(",") if part.strip()]


# Filters


def _parse_filter(spec: DatasetSpec, name: str, raw: str) -> Filter | tuple[Filter, Filter]:
    column_name, _, op = name.partition("__")
    op = op or "eq"
    column = _column(spec, column_name, role="filter")
    if op not in grammar.ALL_OPERATORS:
        raise QueryError(
            "unknown_operator",
            f"Unknown operator '{shown(op)}' in '{shown(name)}'."
            + suggest(
                op,
                [
                    o
                    for o in column.operators or grammar.OPERATORS_BY_TYPE[column.type]
                    if o != "eq"
                ],
                what=f"operators for {column.name}",
            ),
        )
    if column.protected:
        raise QueryError(
            "pii_protected",
            f"{column.name} is personal data ({column.pii}ed): it cannot be filtered on.",
        )
    if not column.filterable:
        filterable = [c.name for c in spec.columns if c.operators]
        raise QueryError(
            "not_filterable",
            f"{column.name} cannot be filtered on. Filterable columns: {', '.join(filterable) or 'none'}.",
        )
    if op not in column.operators:
        allowed = ", ".join(
            f"{column.name}__{o}" if o != "eq" else column.name for o in column.operators
        )
        raise QueryError(
            "operator_not_allowed",
            f"'{op}' does not apply to {column.name} ({column.type}). Valid forms: {allowed}.",
        )
    if op == "isnull":
        return Filter(column, op, parse_bool(raw, name=name))
    if op in grammar.DATE_PARTS:
        low, high = _DATE_PART_RANGE[op]
        return Filter(column, op, parse_int_in(raw, name=name, low=low, high=high))
    if op == "in":
        parts = raw.split(",")
        if not raw or len(parts) > MAX_IN_VALUES:
            raise QueryError(
                "invalid_value", f"{name} takes 1 to {MAX_IN_VALUES} comma-separated values."
            )
        return Filter(
            column, op, tuple(parse_value(part, column.type, name=name) for part in parts)
        )
    if op in ("contains", "icontains", "startswith"):
        if raw == "":
            raise QueryError("invalid_value", f"{name} needs a non-empty value.")
        return Filter(column, op, parse_value(raw, "string", name=name))
    value = parse_value(raw, column.type, name=name)
    if column.type == "datetime" and op in ("eq", "lte", "gt") and is_date_only(raw):
        # A bare date on a datetime column means the whole day: `lte=2024-06-30` includes June 30.
        next_day = value + dt.timedelta(days=1)
        if op == "eq":
            return Filter(column, "gte", value), Filter(column, "lt", next_day)
        return Filter(column, "lt" if op == "lte" else "gte", next_day)
    return Filter(column, op, value)


def _filters(
    spec: DatasetSpec, params: Mapping, reserved: tuple[str, ...], forced: Mapping[str, str]
) -> tuple[Filter, ...]:
    filters = []
    for name, raw in _items(params):
        if name in reserved:
            continue
        if "__" not in name and spec.column(name) is None:
            valid = list(reserved) + _names(spec)
            raise QueryError(
                "unknown_parameter",
                f"Unknown parameter '{shown(name)}'."
                + suggest(name, valid, what="parameters (and filters column__operator)"),
            )
        parsed = _parse_filter(spec, name, raw)
        filters.extend(parsed if isinstance(parsed, tuple) else (parsed,))
    return (*filters, *parse_forced(spec, forced))


def parse_forced(spec: DatasetSpec, forced: Mapping[str, str]) -> tuple[Filter, ...]:
    """A key's row filters (column -> value) as equality filters; they may name hidden columns."""
    filters = []
    for name, raw in forced.items():
        column = spec.any_column(name)
        if column is None:
            raise QueryError(
                "unknown_column", f"The key's row filter names an unknown column '{name}'."
            )
        filters.append(Filter(column, "eq", parse_value(str(raw), column.type, name=name)))
    return tuple(filters)


def _search(spec: DatasetSpec, params: Mapping) -> str | None:
    raw = _last(params, "search")
    if raw is None or raw == "":
        return None
    if not any(c.searchable and not c.protected for c in spec.columns):
        raise QueryError(
            "not_searchable",
            f"{spec.slug} has no searchable columns: filter with column=value instead.",
        )
    return parse_value(raw, "string", name="search")


def _limit(params: Mapping, *, default: int, maximum: int) -> int:
    raw = _last(params, "limit")
    if raw is None:
        return default
    try:
        return parse_int_in(raw, name="limit", low=1, high=maximum)
    except QueryError as error:
        raise QueryError("invalid_limit", error.message) from None


def _offset(params: Mapping) -> int:
    raw = _last(params, "offset")
    if raw is None:
        return 0
    try:
        return parse_int_in(raw, name="offset", low=0, high=2**62)
    except QueryError as error:
        raise QueryError("invalid_offset", error.message) from None


# Rows


def _row_ordering(spec: DatasetSpec, raw: str | None) -> tuple[Order, ...]:
    parts = _csv(raw) if raw is not None else list(spec.default_ordering)
    ordering = []
    for part in parts:
        descending = part.startswith("-")
        name = part.lstrip("-")
        column = _column(spec, name, role="ordering")
        if column.protected:
            raise QueryError(
                "pii_protected",
                f"{column.name} is personal data ({column.pii}ed): it cannot be sorted on.",
            )
        if not column.sortable:
            sortable = [c.name for c in spec.columns if c.sortable and not c.protected]
            raise QueryError(
                "not_sortable",
                f"{column.name} cannot be sorted on. Sortable columns: {', '.join(sortable) or 'none'}.",
            )
        ordering.append(Order(column.name, descending))
    # The primary key breaks ties, so that pages never overlap or skip a row.
    tiebreak = spec.primary_key or (spec.columns[0].name if spec.columns else None)
    if tiebreak and all(order.key != tiebreak for order in ordering) and spec.any_column(tiebreak):
        ordering.append(Order(tiebreak))
    return tuple(ordering)


def parse_rows(
    spec: DatasetSpec, params: Mapping, *, forced: Mapping[str, str] | None = None
) -> RowsQuery:
    """The rows query of `params` (a QueryDict or dict), with the key's forced row filters."""
    # `fields=,` names no column: all of them, rather than a SELECT of nothing.
    names = _csv(_last(params, "fields"))
    fields = tuple(_column(spec, name, role="fields") for name in names) if names else spec.columns
    return RowsQuery(
        filters=_filters(spec, params, ROWS_PARAMS, forced or {}),
        search=_search(spec, params),
        ordering=_row_ordering(spec, _last(params, "ordering")),
        fields=tuple(dict.fromkeys(fields)),
        limit=_limit(
            params,
            default=min(spec.default_page_size, spec.max_page_size),
            maximum=spec.max_page_size,
        ),
        offset=_offset(params),
    )


def parse_key_value(spec: DatasetSpec, raw: str):
    """A primary key value from the URL, or None when it cannot be one (the row is then not found)."""
    column = spec.any_column(spec.primary_key or "")
    if column is None:
        return None
    try:
        return parse_value(raw, column.type, name=column.name)
    except QueryError:
        return None


# Aggregates


def _group_key(spec: DatasetSpec, name: str) -> GroupKey:
    column_name, _, bucket = name.partition("__")
    column = _column(spec, column_name, role="group_by")
    if column.pii == "mask":
        # Masked values collide (many addresses read j***@example.com): groups would look merged.
        raise QueryError(
            "pii_protected",
            f"{column.name} is masked personal data: it cannot be grouped by. Count its distinct values with metrics=count_distinct:{column.name}.",
        )
    if bucket:
        if bucket not in grammar.BUCKETS:
            raise QueryError(
                "invalid_bucket",
                f"Unknown date bucket '{shown(bucket)}' in '{shown(name)}'."
                + suggest(bucket, grammar.BUCKETS, what="buckets"),
            )
        if column.type not in ("date", "datetime"):
            raise QueryError(
                "invalid_bucket",
                f"{column.name} is {column.type}, not a date: buckets (__year, __quarter, __month, __week, __day) need a date or datetime column.",
            )
    return GroupKey(column, bucket or None)


def _metric(spec: DatasetSpec, raw: str) -> Metric:
    function, _, column_name = raw.partition(":")
    if function not in grammar.METRICS:
        raise QueryError(
            "unknown_metric",
            f"Unknown metric '{shown(raw)}'."
            + suggest(function, grammar.METRICS, what="metrics (count, or function:column)"),
        )
    if function == "count":
        if column_name:
            raise QueryError(
                "unknown_metric", "count takes no column: use count, or count_distinct:column."
            )
        return Metric("count")
    if not column_name:
        raise QueryError(
            "unknown_metric",
            f"{function} needs a column: {function}:column, e.g. {function}:{_example_metric_column(spec, function)}.",
        )
    column = _column(spec, column_name, role="metrics")
    if column.protected and function != "count_distinct":
        raise QueryError(
            "pii_protected",
            f"{column.name} is personal data ({column.pii}ed): only count_distinct applies to it.",
        )
    if column.type not in grammar.METRIC_TYPES[function]:
        fitting = [
            c.name
            for c in spec.columns
            if c.type in grammar.METRIC_TYPES[function] and not c.protected
        ]
        raise QueryError(
            "metric_not_allowed",
            f"{function} does not apply to {column.name} ({column.type}). Columns it applies to: {', '.join(fitting) or 'none'}.",
        )
    return Metric(function, column)


def _example_metric_column(spec: DatasetSpec, function: str) -> str:
    for column in spec.columns:
        if column.type in grammar.METRIC_TYPES[function] and not column.protected:
            return column.name
    return "column"


def parse_aggregate(
    spec: DatasetSpec, params: Mapping, *, forced: Mapping[str, str] | None = None
) -> AggregateQuery:
    """The aggregate query of `params`, with the key's forced row filters."""
    group_by = tuple(
        dict.fromkeys(_group_key(spec, name) for name in _csv(_last(params, "group_by")))
    )
    metrics = tuple(
        dict.fromkeys(_metric(spec, raw) for raw in _csv(_last(params, "metrics")))
    ) or (Metric("count"),)
    if len(group_by) > MAX_GROUP_KEYS:
        raise QueryError("invalid_value", f"group_by takes at most {MAX_GROUP_KEYS} keys.")
    if len(metrics) > MAX_METRICS:
        raise QueryError("invalid_value", f"metrics takes at most {MAX_METRICS} metrics.")
    keys = {key.key: key for key in group_by}
    results = {metric.key for metric in metrics}
    for clash in sorted(keys.keys() & results):
        raise QueryError(
            "invalid_value",
            f"The group key '{clash}' has the name of a metric result: ask for one of them.",
        )
    if params.get("format", "json") != "json":
        raise QueryError(
            "invalid_value",
            "Aggregates are answered in JSON only: drop `format`, or use format=json.",
        )
    ordering = []
    for part in _csv(_last(params, "ordering")):
        name = part.lstrip("-")
        if name not in keys and name not in results:
            raise QueryError(
                "unknown_ordering",
                f"Cannot order by '{shown(name)}': order by a group_by key or a metric result."
                + suggest(name, [*keys, *results], what="ordering keys"),
            )
        if name in keys and keys[name].column.protected:
            raise QueryError("pii_protected", f"{name} is personal data: it cannot be sorted on.")
        ordering.append(Order(name, part.startswith("-")))
    if not ordering:
        # Hashed keys included: their groups are ordered on the digests, before the limit
        # (datasets.engine.execute.run_aggregate).
        ordering = [Order(key.key) for key in group_by]
    return AggregateQuery(
        filters=_filters(spec, params, AGGREGATE_PARAMS, forced or {}),
        search=_search(spec, params),
        group_by=group_by,
        metrics=metrics,
        ordering=tuple(ordering),
        limit=_limit(
            params, default=grammar.DEFAULT_AGGREGATE_LIMIT, maximum=grammar.MAX_AGGREGATE_LIMIT
        ),
    )
