"""Query parameters -> validated query objects. Every mistake is a QueryError naming the valid choices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from datasets.engine import grammar, zones
from datasets.engine.errors import QueryError, invalid_choice, shown, suggest, value_text
from datasets.engine.grammar import Operand
from datasets.engine.query import AggregateQuery, Filter, GroupKey, Metric, Order, RowsQuery
from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.engine.values import is_date_only, parse_int_in, parse_operand, parse_value

ROWS_PARAMS = ("limit", "offset", "fields", "ordering", "search", "format", "expand")
AGGREGATE_PARAMS = (
    "group_by",
    "metrics",
    "ordering",
    "limit",
    "offset",
    "search",
    "format",
    "expand",
)
# A row by key takes no parameter but `expand`.
ROW_PARAMS = ("expand",)
# The caps, under the names callers already import.
MAX_IN_VALUES = grammar.MAX_IN_VALUES
MAX_GROUP_KEYS = grammar.MAX_GROUP_KEYS
MAX_METRICS = grammar.MAX_METRICS


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


def _kind(column: ColumnSpec) -> str:
    if column.categorical and column.type != "boolean":
        return f"{column.type} with published values"
    return column.type


def _forms(column: ColumnSpec) -> str:
    return ", ".join(grammar.OPERATORS[name].parameter(column.name) for name in column.operators)


def _parse_filter(
    spec: DatasetSpec, name: str, raw: str, published: DatasetSpec | None
) -> Filter | tuple[Filter, Filter]:
    column_name, _, op = name.partition("__")
    op = op or "eq"
    column = _column(spec, column_name, role="filter")
    record = grammar.OPERATORS.get(op)
    if record is None:
        raise QueryError(
            "unknown_operator",
            f"Unknown operator '{shown(op)}' in '{shown(name)}'."
            + suggest(
                op,
                [o for o in column.operators or grammar.column_operators(column) if o != "eq"],
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
        raise QueryError(
            "operator_not_allowed",
            f"'{op}' ({record.wording.format(col=column.name)}) does not apply to {column.name} "
            f"({_kind(column)}). Valid forms: {_forms(column)}.",
        )
    shown_column = _published_column(spec, published, column)
    low_high = grammar.part_range(record, shown_column) if record.range else None
    value = parse_operand(record, column, raw, name=name, low_high=low_high)
    if shown_column is not None and record.enum:
        _check_published(shown_column, value, raw, name=name)
    if column.type != "datetime" or record.operand not in (Operand.VALUE, Operand.VALUES):
        return Filter(column, op, value)
    if op in ("eq", "lte", "gt") and is_date_only(raw):
        # A bare date on a datetime column means the whole day (in the dataset's zone):
        # `lte=2024-06-30` includes June 30.
        start, end = (_compared(spec, column, day) for day in (value, value + dt.timedelta(days=1)))
        if op == "eq":
            return Filter(column, "gte", start), Filter(column, "lt", end)
        return Filter(column, "lt" if op == "lte" else "gte", end)
    return Filter(column, op, _compared(spec, column, value))


def _compared(spec: DatasetSpec, column: ColumnSpec, value):
    """A datetime filter value (or tuple of them) as the column compares it, read in the dataset's
    time zone (datasets/engine/zones.py)."""
    if column.type != "datetime" or value is None:
        return value
    if isinstance(value, tuple):
        return tuple(_compared(spec, column, item) for item in value)
    return zones.compared(value, instant=column.instant, zone=spec.time_zone)


def _published_column(
    spec: DatasetSpec, published: DatasetSpec | None, column: ColumnSpec
) -> ColumnSpec | None:
    """The column as the caller is shown it, when its published values are complete."""
    if published is None or not spec.values_complete:
        return None
    return published.column(column.name)


def _check_published(column: ColumnSpec, value, raw: str, *, name: str) -> None:
    """A value outside the column's published values is an error naming them, never 0 rows."""
    if column.enum is None or column.type == "datetime":
        return
    allowed = {value_text(item) for item in column.enum if item is not None}
    values, texts = (value, raw.split(",")) if isinstance(value, tuple) else ((value,), [raw])
    for item, text in zip(values, texts, strict=True):
        if value_text(item) not in allowed:
            raise invalid_choice(name, text, [item for item in column.enum if item is not None])


def _filters(
    spec: DatasetSpec,
    params: Mapping,
    reserved: tuple[str, ...],
    forced: Mapping[str, str],
    published: DatasetSpec | None,
) -> tuple[Filter, ...]:
    filters: list[Filter] = []
    for name, raw in _items(params):
        if name in reserved:
            continue
        if "__" not in name and spec.column(name) is None:
            raise unknown_parameter(spec, name, reserved, published=published)
        parsed = _parse_filter(spec, name, raw, published)
        filters.extend(parsed if isinstance(parsed, tuple) else (parsed,))
    return (*filters, *parse_forced(spec, forced))


def unknown_parameter(
    spec: DatasetSpec,
    name: str,
    reserved: tuple[str, ...],
    *,
    noun: str = "parameter",
    what: str = "parameters (and filters column__operator)",
    published: DatasetSpec | None = None,
) -> QueryError:
    """The error for a parameter that is neither an operation's own nor a column's filter: the
    one meant, and those the schema declares (with reserved=(): the filters alone, as MCP's
    `filters` argument takes them)."""
    return QueryError(
        "unknown_parameter",
        f"Unknown {noun} '{shown(name)}'."
        + suggest(
            name, _declared(published or spec, reserved), what=what, also=_lookup_filters(spec)
        ),
    )


def _declared(spec: DatasetSpec, reserved: tuple[str, ...]) -> list[str]:
    """The parameters the schema declares for an operation: its own, and a filter named after
    each column that takes equality (a masked column, say, takes none)."""
    searchable = any(column.searchable and not column.protected for column in spec.columns)
    declared = {"search": searchable, "expand": bool(expandable(spec))}
    own = [
        name
        for name in reserved
        if name not in grammar.UNDECLARED_PARAMS and declared.get(name, True)
    ]
    return own + [column.name for column in spec.columns if "eq" in column.operators]


def _lookup_filters(spec: DatasetSpec) -> list[str]:
    """Every `{col}__{operator}` filter the dataset takes (`date__year`, `revenue__gte`…)."""
    return [
        grammar.OPERATORS[op].parameter(column.name)
        for column in spec.columns
        for op in column.operators
        if op != "eq"
    ]


def parse_forced(spec: DatasetSpec, forced: Mapping[str, str]) -> tuple[Filter, ...]:
    """A key's row filters (column -> value) as equality filters; they may name hidden columns."""
    filters = []
    for name, raw in forced.items():
        column = spec.any_column(name)
        if column is None:
            raise QueryError(
                "unknown_column", f"The key's row filter names an unknown column '{name}'."
            )
        value = parse_value(str(raw), column.type, name=name)
        filters.append(Filter(column, "eq", _compared(spec, column, value)))
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
        return parse_int_in(raw, name="offset", low=0, high=grammar.MAX_OFFSET)
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
    spec: DatasetSpec,
    params: Mapping,
    *,
    forced: Mapping[str, str] | None = None,
    published: DatasetSpec | None = None,
) -> RowsQuery:
    """The rows query of `params` (a QueryDict or dict), with the key's forced row filters.

    `published` is the dataset as the caller is shown it (DatasetView.published): values are
    checked against its enums and years, so that a value no row has is an error, not 0 rows.
    """
    # `fields=,` names no column: all of them, rather than a SELECT of nothing.
    names = _csv(_last(params, "fields"))
    fields = tuple(_column(spec, name, role="fields") for name in names) if names else spec.columns
    expand = _expand(
        published or spec, params, {column.name for column in fields}, "among the fields"
    )
    return RowsQuery(
        expand=expand,
        filters=_filters(spec, params, ROWS_PARAMS, forced or {}, published),
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


def expandable(spec: DatasetSpec) -> list[ColumnSpec]:
    """The columns `expand` takes: those that refer to another dataset the document or caller
    may mention (a published spec keeps only those references), unprotected (a masked value
    finds no row)."""
    return [c for c in spec.columns if c.references is not None and not c.protected]


def _expand(
    published: DatasetSpec, params: Mapping, returned: set[str] | None = None, where: str = ""
) -> tuple[ColumnSpec, ...]:
    """The columns `expand` names: each expandable, and among the columns returned (the fields
    of a page, the plain group_by keys of an aggregate; a row by key returns them all)."""
    linked = [column.name for column in expandable(published)]
    chosen = []
    for name in dict.fromkeys(_csv(_last(params, "expand"))):
        if name not in linked:
            raise QueryError(
                "invalid_expand",
                f"expand takes the columns that refer to another dataset, not '{shown(name)}'."
                + suggest(name, linked, what="columns for expand"),
            )
        if returned is not None and name not in returned:
            raise QueryError("invalid_expand", f"expand={name} needs {name} {where}.")
        column = published.column(name)
        assert column is not None
        chosen.append(column)
    return tuple(chosen)


def parse_row_expand(
    spec: DatasetSpec, params: Mapping, published: DatasetSpec | None = None
) -> tuple[ColumnSpec, ...]:
    """The columns whose referenced row's label a row by key carries too (`expand`)."""
    return _expand(published or spec, params)


def row_parameters(published: DatasetSpec) -> tuple[str, ...]:
    """The parameters a row by key takes: `expand` where the reader may follow a link, else
    none (a link out of its scope is not even hinted at)."""
    return ROW_PARAMS if expandable(published) else ()


def parse_key_value(spec: DatasetSpec, raw: str):
    """A primary key value from the URL, or None when it cannot be one (the row is then not found)."""
    column = spec.any_column(spec.primary_key or "")
    if column is None:
        return None
    try:
        return _compared(spec, column, parse_value(raw, column.type, name=column.name))
    except QueryError:
        return None


# Aggregates


def _group_key(spec: DatasetSpec, name: str) -> GroupKey:
    column_name, _, bucket = name.partition("__")
    column = spec.column(column_name)
    if column is None or column.pii == "mask":
        if column is not None:
            # Masked values collide (many addresses read j***@example.com): groups would look merged.
            message = (
                f"{column.name} is masked personal data: it cannot be grouped by. Count its "
                f"distinct values with metrics=count_distinct:{column.name}."
            )
            raise QueryError("pii_protected", message)
        keys = grammar.group_keys(spec)
        raise QueryError(
            "unknown_column",
            f"Unknown group_by key '{shown(name)}'."
            + suggest(
                name,
                keys,
                what="group_by keys (columns and date buckets)",
                also=[key for key in keys if "__" in key],
            ),
        )
    if bucket:
        if bucket not in grammar.BUCKETS_BY_NAME:
            raise QueryError(
                "invalid_bucket",
                f"Unknown date bucket '{shown(bucket)}' in '{shown(name)}'."
                + suggest(bucket, grammar.BUCKETS, what="buckets"),
            )
        if column.type not in grammar.DATED:
            dated = [key for key in grammar.group_keys(spec) if "__" in key]
            raise QueryError(
                "invalid_bucket",
                f"{column.name} is {column.type}, not a date: buckets need a date or datetime "
                f"column. Date buckets: {', '.join(dated) or 'none'}.",
            )
    return GroupKey(column, bucket or None)


def _metric(spec: DatasetSpec, raw: str) -> Metric:
    function, _, column_name = raw.partition(":")
    record = grammar.METRICS_BY_NAME.get(function)
    if record is None:
        raise QueryError(
            "unknown_metric",
            f"Unknown metric '{shown(raw)}'."
            + suggest(function, grammar.METRICS, what="metrics (count, or function:column)"),
        )
    if not record.types:
        if column_name:
            raise QueryError(
                "unknown_metric", "count takes no column: use count, or count_distinct:column."
            )
        return Metric(function)
    fitting = grammar.metric_columns(spec, record)
    if not column_name:
        example = fitting[0] if fitting else "column"
        raise QueryError(
            "unknown_metric",
            f"{function} needs a column: {function}:column, e.g. {record.call(example)}.",
        )
    column = _column(spec, column_name, role="metrics")
    if column.protected and not record.on_protected:
        raise QueryError(
            "pii_protected",
            f"{column.name} is personal data ({column.pii}ed): only count_distinct applies to it.",
        )
    if not record.applies(column, primary_key=spec.primary_key):
        why = (
            "the primary key"
            if column.name == spec.primary_key and not record.on_key
            else column.type
        )
        raise QueryError(
            "metric_not_allowed",
            f"{function} ({record.wording}) does not apply to {column.name} ({why}). Columns it "
            "applies to: "
            f"{', '.join(fitting) or 'none'}.",
        )
    return Metric(function, column)


def parse_aggregate(
    spec: DatasetSpec,
    params: Mapping,
    *,
    forced: Mapping[str, str] | None = None,
    published: DatasetSpec | None = None,
) -> AggregateQuery:
    """The aggregate query of `params`, with the key's forced row filters."""
    group_by = tuple(
        dict.fromkeys(_group_key(spec, name) for name in _csv(_last(params, "group_by")))
    )
    metrics = tuple(
        dict.fromkeys(_metric(spec, raw) for raw in _csv(_last(params, "metrics")))
    ) or (Metric("count"),)
    if len(group_by) > grammar.MAX_GROUP_KEYS:
        raise QueryError("invalid_value", f"group_by takes at most {grammar.MAX_GROUP_KEYS} keys.")
    if len(metrics) > grammar.MAX_METRICS:
        raise QueryError("invalid_value", f"metrics takes at most {grammar.MAX_METRICS} metrics.")
    keys = {key.key: key for key in group_by}
    results = {metric.key for metric in metrics}
    for clash in sorted(keys.keys() & results):
        raise QueryError(
            "invalid_value",
            f"The group key '{clash}' has the name of a metric result: ask for one of them.",
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
    plain = {key.key for key in group_by if key.bucket is None}
    return AggregateQuery(
        expand=_expand(published or spec, params, plain, "in group_by"),
        filters=_filters(spec, params, AGGREGATE_PARAMS, forced or {}, published),
        search=_search(spec, params),
        group_by=group_by,
        metrics=metrics,
        ordering=tuple(ordering),
        limit=_limit(
            params, default=grammar.DEFAULT_AGGREGATE_LIMIT, maximum=grammar.MAX_AGGREGATE_LIMIT
        ),
        offset=_offset(params),
    )
