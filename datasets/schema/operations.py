"""Each dataset's concrete operations and component schemas, built from its DatasetSpec.

ChatGPT sends only the parameters a schema declares, so every filter a GPT may need is declared
here, with the operators that fit the column's type (ColumnSpec.operators). Comma-separated lists
(`ordering`, `fields`, `group_by`, `metrics`) are declared as strings whose description lists the
valid values and whose `pattern` accepts any comma-separated combination of them: an `enum` would
reject combinations, and an array with style=form/explode=false is not reliably serialised by
the GPT runtime, while a plain string is sent verbatim by ChatGPT and handled by every client.
"""

from __future__ import annotations

from datasets.engine.grammar import (
    BUCKETS,
    DEFAULT_AGGREGATE_LIMIT,
    MAX_AGGREGATE_LIMIT,
    METRIC_TYPES,
)
from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.schema.guide import API, category_column, date_column, example_calls, measure_column
from datasets.schema.rules import MAX_DESCRIPTION, MAX_PARAMETER_DESCRIPTION, text_fit

ERROR_SCHEMA = "ApiError"
ERROR_RESPONSES = {
    "400": "Bad parameter: the message names it and the valid choices.",
    "401": "Missing, unknown, revoked or expired API key.",
    "404": "Unknown dataset or row, or a dataset outside this key's scope.",
    "429": "Rate limit or daily quota reached: wait Retry-After seconds.",
    "503": "The data source is unreachable or too slow: retry after Retry-After seconds.",
}

_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}
_FORMAT_HINT = {"date": " (YYYY-MM-DD)", "datetime": " (YYYY-MM-DDTHH:MM:SS)"}


def ref(name: str) -> dict:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def row_schema_name(spec: DatasetSpec) -> str:
    """Component name of one row of the dataset."""
    return f"{spec.slug}_row"


def value_schema(column: ColumnSpec, *, nullable: bool) -> dict:
    """The JSON schema of a column's values (masked and hashed values are strings)."""
    schema = dict(_TYPES["string"] if column.protected else _TYPES[column.type])
    values = [value for value in column.enum or () if value is not None]
    if values and not column.protected:
        schema["enum"] = values + ([None] if nullable else [])
    if nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def _range(column: ColumnSpec) -> str:
    if column.protected or column.min is None or column.max is None:
        return ""
    return f"Values from {column.min} to {column.max}."


def column_description(column: ColumnSpec) -> str:
    """What a model should know of a column: its description, range and protection."""
    parts = [column.description.strip().rstrip(".") + "." if column.description.strip() else ""]
    parts.append(_range(column))
    if column.pii == "mask":
        parts.append("Partially masked; only count_distinct applies.")
    elif column.pii == "hash":
        parts.append("A stable digest; only count_distinct applies.")
    return " ".join(part for part in parts if part)


def dataset_components(spec: DatasetSpec) -> dict[str, dict]:
    """The dataset's component schemas: one row, a page of rows, and an aggregate result."""
    row = row_schema_name(spec)
    properties = {}
    for column in spec.columns:
        schema = value_schema(column, nullable=column.name != spec.primary_key)
        description = column_description(column)
        if description:
            schema["description"] = description
        properties[column.name] = schema
    group = {}
    for key, schema in _group_keys(spec).items():
        group[key] = schema
    for key, schema in _metric_keys(spec).items():
        group[key] = schema
    return {
        row: {
            "type": "object",
            "description": text_fit(f"One row of {spec.title}.", MAX_DESCRIPTION),
            "properties": properties,
        },
        f"{spec.slug}_rows_page": {
            "type": "object",
            "properties": {
                "count": {"type": "integer", "description": "Rows matching the filters."},
                "next": {
                    "type": ["string", "null"],
                    "description": "URL of the next page, null on the last page.",
                },
                "previous": {
                    "type": ["string", "null"],
                    "description": "URL of the previous page, null on the first page.",
                },
                "results": {"type": "array", "items": ref(row)},
                "truncated": {
                    "type": "boolean",
                    "description": "True when the page was cut to fit the response size; "
                    "next continues where it stopped.",
                },
            },
            "required": ["count", "next", "previous", "results"],
        },
        f"{spec.slug}_aggregate": {
            "type": "object",
            "properties": {
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "description": "One group: its group_by keys and its metrics.",
                        "properties": group,
                    },
                }
            },
            "required": ["results"],
        },
    }


def error_component() -> dict:
    """The one error shape of the API."""
    return {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "status": {"type": "integer"},
                    "code": {"type": "string", "description": "Stable, machine-readable."},
                    "message": {"type": "string", "description": "How to fix the call."},
                },
                "required": ["status", "code", "message"],
            }
        },
        "required": ["error"],
    }


def error_responses(statuses: tuple[str, ...] = ("400", "401", "404", "429", "503")) -> dict:
    """Responses in the error shape for these statuses."""
    return {
        status: {
            "description": ERROR_RESPONSES[status],
            "content": {"application/json": {"schema": ref(ERROR_SCHEMA)}},
        }
        for status in statuses
    }


def dataset_paths(spec: DatasetSpec) -> dict[str, dict]:
    """The dataset's concrete path items: rows, a row by primary key, and aggregate."""
    examples = example_calls(spec)
    rows_example = next(call.url for call in examples if call.operation_id.startswith("list_"))
    aggregate_example = next(
        (call.url for call in examples if call.operation_id.startswith("aggregate_")),
        f"{API}/{spec.slug}/aggregate/?metrics=count",
    )
    about = spec.description.strip() or spec.title
    paths = {
        f"{API}/{spec.slug}/rows/": {
            "get": _operation(
                operation_id=f"list_{spec.slug}_rows",
                summary=f"List rows of {spec.title}",
                lead=f"Rows of {spec.slug}: {about}",
                middle="Filter with column parameters; page with limit and offset or next.",
                example=rows_example,
                parameters=_filters(spec) + _rows_options(spec),
                response=f"{spec.slug}_rows_page",
                tag=spec.slug,
                errors=("400", "401", "404", "429", "503"),
            )
        }
    }
    key = spec.column(spec.primary_key) if spec.primary_key else None
    if key is not None and not key.protected:
        paths[f"{API}/{spec.slug}/rows/{{pk}}/"] = {
            "get": _operation(
                operation_id=f"get_{spec.slug}_row",
                summary=f"Get one {spec.title} row by {key.name}",
                lead=f"One row of {spec.slug} by its {key.name}: {about}",
                middle="",
                example=f"{API}/{spec.slug}/rows/{_key_example(key)}/",
                parameters=[
                    {
                        "name": "pk",
                        "in": "path",
                        "required": True,
                        "description": f"The {key.name} of the row.",
                        "schema": value_schema(key, nullable=False),
                    }
                ],
                response=row_schema_name(spec),
                tag=spec.slug,
                errors=("400", "401", "404", "429", "503"),
            )
        }
    paths[f"{API}/{spec.slug}/aggregate/"] = {
        "get": _operation(
            operation_id=f"aggregate_{spec.slug}",
            summary=f"Totals, counts and averages of {spec.title}",
            lead=f"Grouped metrics over {spec.slug}: {about}",
            middle="Use it for any total, count or average instead of reading rows.",
            example=aggregate_example,
            parameters=_filters(spec) + _aggregate_options(spec),
            response=f"{spec.slug}_aggregate",
            tag=spec.slug,
            errors=("400", "401", "404", "429", "503"),
        )
    }
    return paths


def _key_example(column: ColumnSpec) -> str:
    if column.min is not None:
        return str(column.min)
    return "1" if column.type == "integer" else "KEY"


def _operation(
    *,
    operation_id: str,
    summary: str,
    lead: str,
    middle: str,
    example: str,
    parameters: list[dict],
    response: str,
    tag: str,
    errors: tuple[str, ...],
) -> dict:
    tail = " ".join(part for part in (middle, f"Example: GET {example}") if part)
    room = MAX_DESCRIPTION - len(tail) - 1
    if room < 40:
        # A long example URL leaves no room for what the operation answers: drop the example.
        tail, room = middle, MAX_DESCRIPTION - len(middle) - 1
    description = f"{text_fit(lead.rstrip('.') + '.', room)} {tail}".strip()
    return {
        "operationId": operation_id,
        "summary": text_fit(summary, MAX_DESCRIPTION),
        "description": description,
        "tags": [tag],
        "parameters": _unique(parameters),
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": ref(response)}},
            },
            **error_responses(errors),
        },
        "x-openai-isConsequential": False,
    }


def _unique(parameters: list[dict]) -> list[dict]:
    # An API name may itself look like `{col}__{op}`: the first declaration wins.
    seen, kept = set(), []
    for parameter in parameters:
        if parameter["name"] not in seen:
            seen.add(parameter["name"])
            kept.append(parameter)
    return kept


def _query(name: str, schema: dict, description: str, **extra) -> dict:
    return {
        "name": name,
        "in": "query",
        "description": text_fit(description, MAX_PARAMETER_DESCRIPTION),
        "schema": schema,
        **extra,
    }


def _filter_text(column: ColumnSpec, operator: str) -> str:
    name, hint = column.name, _FORMAT_HINT.get(column.type, "")
    dated = column.type in ("date", "datetime")
    texts = {
        "eq": f"Only rows where {name} equals this value{hint}.",
        "ne": f"Only rows where {name} differs from this value{hint}.",
        "gt": f"Only rows where {name} is {'after' if dated else 'greater than'} this{hint}.",
        "gte": f"Only rows where {name} is {'on or after' if dated else 'at least'} this{hint}.",
        "lt": f"Only rows where {name} is {'before' if dated else 'less than'} this{hint}.",
        "lte": f"Only rows where {name} is {'on or before' if dated else 'at most'} this{hint}.",
        "in": f"Only rows where {name} is one of these comma-separated values.",
        "contains": f"Only rows where {name} contains this text (case-sensitive).",
        "icontains": f"Only rows where {name} contains this text (any case).",
        "startswith": f"Only rows where {name} starts with this text.",
        "isnull": f"true: only rows where {name} is empty; false: only rows where it has a value.",
        "year": f"Only rows whose {name} falls in this year, e.g. 2024.",
        "quarter": f"Only rows whose {name} falls in this quarter (1-4); add {name}__year.",
        "month": f"Only rows whose {name} falls in this month (1-12); add {name}__year.",
    }
    text = texts[operator]
    if operator in ("eq", "gte", "lte", "year"):
        text = f"{text} {column_description(column)}".strip()
    return text


def _filter_schema(column: ColumnSpec, operator: str) -> dict:
    if operator in ("eq", "ne", "gt", "gte", "lt", "lte"):
        return value_schema(column, nullable=False)
    if operator == "isnull":
        return {"type": "boolean"}
    if operator == "year":
        return {"type": "integer", "minimum": 1, "maximum": 9999}
    if operator == "quarter":
        return {"type": "integer", "minimum": 1, "maximum": 4}
    if operator == "month":
        return {"type": "integer", "minimum": 1, "maximum": 12}
    # An empty text or list is refused by the API: declared, so that no client sends one.
    return {"type": "string", "minLength": 1}


def _filters(spec: DatasetSpec) -> list[dict]:
    parameters = []
    for column in spec.columns:
        for operator in column.operators:
            name = column.name if operator == "eq" else f"{column.name}__{operator}"
            parameters.append(
                _query(name, _filter_schema(column, operator), _filter_text(column, operator))
            )
    searchable = [c.name for c in spec.columns if c.searchable and not c.protected]
    if searchable:
        parameters.append(
            _query(
                "search",
                {"type": "string"},
                f"Case-insensitive text searched in {', '.join(searchable)}.",
            )
        )
    return parameters


def _list_pattern(values: list[str], *, signed: bool = False) -> str:
    # API names are [a-z0-9_] and metrics add ':', so no value needs escaping.
    item = f"{'-?' if signed else ''}(?:{'|'.join(values)})"
    return f"^{item}(?:,{item})*$"


def _list_parameter(name: str, values: list[str], text: str, example: str, signed=False) -> dict:
    return _query(
        name,
        {"type": "string", "pattern": _list_pattern(values, signed=signed)},
        text,
        example=example,
    )


def _rows_options(spec: DatasetSpec) -> list[dict]:
    sortable = [c.name for c in spec.columns if c.sortable and not c.protected]
    names = [c.name for c in spec.columns]
    parameters = []
    if sortable:
        date = date_column(spec)
        example = f"-{date.name}" if date is not None and date.name in sortable else sortable[0]
        parameters.append(
            _list_parameter(
                "ordering",
                sortable,
                "Comma-separated columns to sort by, '-' first for descending, e.g. "
                f"{example}. Sortable: {', '.join(sortable)}.",
                example,
                signed=True,
            )
        )
    if names:
        parameters.append(
            _list_parameter(
                "fields",
                names,
                f"Comma-separated columns to return (default all): {', '.join(names)}.",
                ",".join(names[:2]),
            )
        )
    parameters += [
        _query(
            "limit",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": spec.max_page_size,
                "default": min(spec.default_page_size, spec.max_page_size),
            },
            f"Rows per page, 1 to {spec.max_page_size}.",
        ),
        _query(
            "offset",
            {"type": "integer", "minimum": 0, "default": 0},
            "Rows to skip; the next URL of a response gives the following offset.",
        ),
    ]
    return parameters


def _groupable(spec: DatasetSpec) -> list[ColumnSpec]:
    return [column for column in spec.columns if not column.protected]


def _group_keys(spec: DatasetSpec) -> dict[str, dict]:
    keys = {}
    for column in _groupable(spec):
        keys[column.name] = value_schema(column, nullable=True)
    for column in _groupable(spec):
        if column.type in ("date", "datetime"):
            for bucket in BUCKETS:
                keys[f"{column.name}__{bucket}"] = {
                    "type": ["string", "null"],
                    "description": f"{column.name} by {bucket}, e.g. "
                    + {
                        "year": "2024",
                        "quarter": "2024-Q2",
                        "month": "2024-04",
                        "week": "2024-W14",
                        "day": "2024-04-03",
                    }[bucket],
                }
    return keys


def _metrics(spec: DatasetSpec) -> dict[str, list[ColumnSpec]]:
    """Columns each metric function applies to."""
    found: dict[str, list[ColumnSpec]] = {name: [] for name in METRIC_TYPES}
    for column in spec.columns:
        for name, types in METRIC_TYPES.items():
            if column.type not in types:
                continue
            if name != "count_distinct" and column.protected:
                continue
            if name in ("sum", "avg") and column.name == spec.primary_key:
                continue  # a sum of identifiers answers no question
            found[name].append(column)
    return found


def _metric_keys(spec: DatasetSpec) -> dict[str, dict]:
    keys = {"count": {"type": "integer", "description": "Rows in the group."}}
    for name, columns in _metrics(spec).items():
        for column in columns:
            if name in ("sum", "avg"):
                schema = {"type": ["number", "null"]}
            elif name == "count_distinct":
                schema = {"type": "integer"}
            else:
                schema = value_schema(column, nullable=True)
                schema.pop("enum", None)
            keys[f"{name}_{column.name}"] = schema
    return keys


def _aggregate_options(spec: DatasetSpec) -> list[dict]:
    columns = _groupable(spec)
    dated = [c for c in columns if c.type in ("date", "datetime")]
    group_values = list(_group_keys(spec))
    metrics = _metrics(spec)
    metric_values = ["count"] + [
        f"{name}:{column.name}" for name, found in metrics.items() for column in found
    ]

    def listed(name: str) -> str:
        return ", ".join(column.name for column in metrics[name]) or "none"

    category = category_column(spec)
    example_group = category.name if category else (columns[0].name if columns else "")
    parameters = []
    if group_values:
        buckets = (
            f" Date buckets: {', '.join(c.name for c in dated)} with __year, __quarter, "
            "__month, __week or __day (values like 2024, 2024-Q2, 2024-04, 2024-W14, "
            "2024-04-03); the bucket's result key is the parameter, e.g. "
            f"{dated[0].name}__quarter."
            if dated
            else ""
        )
        parameters.append(
            _list_parameter(
                "group_by",
                group_values,
                f"Comma-separated keys to group by: {', '.join(c.name for c in columns)}."
                + buckets,
                example_group,
            )
        )
    found = measure_column(spec)
    measure = found.name if found is not None else None
    parameters.append(
        _list_parameter(
            "metrics",
            metric_values,
            "Comma-separated metrics, default count. count; "
            f"sum:col and avg:col for {listed('sum')}; "
            f"min:col and max:col for {listed('min')}; "
            f"count_distinct:col for {listed('count_distinct')}. "
            "Result keys: count, sum_col, avg_col, min_col, max_col, count_distinct_col.",
            f"sum:{measure}" if measure else "count",
        )
    )
    order_values = group_values + list(_metric_keys(spec))
    parameters.append(
        _list_parameter(
            "ordering",
            order_values,
            "Comma-separated group keys or result keys to sort by, '-' first for descending, "
            f"e.g. -{f'sum_{measure}' if measure else 'count'}.",
            f"-sum_{measure}" if measure else "-count",
            signed=True,
        )
    )
    parameters.append(
        _query(
            "limit",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_AGGREGATE_LIMIT,
                "default": DEFAULT_AGGREGATE_LIMIT,
            },
            f"Groups to return, 1 to {MAX_AGGREGATE_LIMIT}.",
        )
    )
    return parameters
