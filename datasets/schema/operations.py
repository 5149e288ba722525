"""Each dataset's concrete operations and component schemas, built from its DatasetSpec.

ChatGPT sends only the parameters a schema declares, so every filter a GPT may need is declared
here: one parameter per operator record of datasets/engine/grammar.py that fits the column
(ColumnSpec.operators), the very records the engine parses with. Comma-separated lists
(`ordering`, `fields`, `group_by`, `metrics`, `{col}__in`) are declared as strings whose
description says what they hold: an `enum` would reject combinations, an array with
style=form/explode=false is not reliably serialised by the GPT runtime, and a regex pattern
would only repeat the description. A plain string is sent verbatim by ChatGPT and handled by
every client.

Written for a model's context: a thing is said once per operation (the column's description on
its equality filter, the grammar in the operation's description), comparison operators carry no
enum, and every description is made of whole sentences that fit their budget.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from datasets.engine import grammar, zones
from datasets.engine.parse import expandable
from datasets.engine.query import label_key
from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.engine.statistics import RANGED_TYPES
from datasets.schema.guide import API, dataset_about, date_column, example_calls, example_metric
from datasets.schema.rules import (
    MAX_DESCRIPTION,
    MAX_PARAMETER_DESCRIPTION,
    MAX_SUMMARY,
    sentences_fit,
    text_fit,
)

ERROR_SCHEMA = "ApiError"
ERROR_RESPONSES = {
    "400": "Bad parameter: the message names it and the valid choices.",
    "401": "Missing, unknown, revoked or expired API key.",
    "404": "Unknown dataset or row, or a dataset outside this key's scope.",
    "429": "Rate limit or daily quota reached: wait Retry-After seconds.",
    "503": "The data source is unreachable or too slow: retry after Retry-After seconds.",
}
# Said once per operation that takes filters, instead of once per filter parameter: how each
# operator is written, in the grammar's order, for the operators some column of the dataset
# takes; the first of a group says what it applies to ("dates __year"). Of the text operators
# one is named, the first taken of these (the parameters declare the others).
_OPERATOR_PHRASES = (
    ("", False, (("eq", "col=value"), ("ne", "col__ne"), ("gt", "__gt"), ("gte", "__gte"),
                 ("lt", "__lt"), ("lte", "__lte"), ("in", f"__in=a,b (at most {grammar.MAX_IN_VALUES})"))),
    ("text ", True, (("icontains", "__icontains"), ("contains", "__contains"),
                     ("startswith", "__startswith"))),
    ("", False, (("isnull", "__isnull=true"),)),
    ("dates ", False, (("year", "__year"), ("quarter", "__quarter"), ("month", "__month"))),
)  # fmt: skip


def filters_sentence(spec: DatasetSpec) -> str:
    """'Filters: col=value, col__ne, …' with only the operators the dataset's columns take."""
    taken = {name for column in spec.columns for name in column.operators}
    phrases = []
    for label, one, group in _OPERATOR_PHRASES:
        written = [phrase for name, phrase in group if name in taken]
        if written:
            phrases += [label + written[0], *([] if one else written[1:])]
    return f"Filters: {', '.join(phrases)}." if phrases else ""


# Every error has one shape: one response for all statuses, said once per operation.
ERROR_RESPONSE = {
    "description": "Error: its message says the fix.",
    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
}


def ref(name: str) -> dict:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def row_schema_name(spec: DatasetSpec) -> str:
    """Component name of one row of the dataset."""
    return f"{spec.slug}_row"


def value_schema(column: ColumnSpec, *, nullable: bool, enum: bool = True) -> dict:
    """The JSON schema of a column's values (masked and hashed values are strings).

    Booleans never carry an enum (`type` says it all, and generated clients drop such models).
    """
    kind = "string" if column.protected else column.type
    schema = dict(grammar.TYPES[kind].schema)
    values = [value for value in column.enum or () if value is not None]
    if enum and values and not column.protected and column.type != "boolean":
        schema["enum"] = values + ([None] if nullable else [])
    if nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def _withheld(spec: DatasetSpec, column: ColumnSpec) -> bool:
    """Are the column's values or range left out of this document (a key reads the dataset
    through row filters, so the public schema publishes none)?"""
    if column.protected:
        return False
    if column.categorical:
        return column.enum is None  # categorical comes from an enum: it was there
    ranged = column.type in RANGED_TYPES
    return ranged and spec.row_count is None and column.min is None and column.max is None


def _range(column: ColumnSpec) -> str:
    ranged = column.type in RANGED_TYPES
    if not ranged or column.protected or column.min is None or column.max is None:
        return ""
    return f"Values from {column.min} to {column.max}."


def zone_sentence(column: ColumnSpec, zone: str) -> str:
    """What a datetime's values mean: moments shown in the dataset's zone, or wall-clock times."""
    if column.instant:
        return f"Moments, shown in {zone}; dates count there."
    return "" if zone in zones.UTC_NAMES else f"Local times in {zone}."


def column_description(column: ColumnSpec, spec: DatasetSpec | None = None) -> str:
    """What a model should know of a column: its description, unit, range and protection; and
    where its values are when this document withholds them (`spec`: the dataset as published)."""
    parts = [column.description.strip().rstrip(".") + "." if column.description.strip() else ""]
    if column.unit:
        parts.append(f"Unit: {column.unit}.")
    if column.identifies:
        parts.append(f"Identifies {column.identifies.strip().rstrip('.')}.")
    if column.references is not None:
        parts.append(f"Refers to {column.references.slug}.{column.references.key}.")
    parts.append(_range(column))
    if spec is not None and column.type == "datetime":
        parts.append(zone_sentence(column, spec.time_zone))
    if spec is not None and _withheld(spec, column):
        what = "values" if column.categorical else "range"
        parts.append(f"Its {what} for this key: GET {API}/{spec.slug}/.")
    if column.pii == "mask":
        parts.append("Partially masked; only count_distinct applies.")
    elif column.pii == "hash":
        parts.append("A stable digest; only count_distinct applies.")
    return " ".join(part for part in parts if part)


def dataset_components(spec: DatasetSpec) -> dict[str, dict]:
    """The dataset's component schemas: one row and a page of rows (groups: AGGREGATE_SCHEMA)."""
    row = row_schema_name(spec)
    properties = {}
    for column in spec.columns:
        schema = value_schema(column, nullable=column.name != spec.primary_key, enum=False)
        if not column.operators:
            # Its description is not on a filter parameter: said here instead.
            description = column_description(column, spec)
            if description:
                schema["description"] = description
        properties[column.name] = schema
    for column in expandable(spec):  # with expand (its parameter says so)
        properties[label_key(column)] = {"type": ["string", "null"]}
    return {
        row: {
            "type": "object",
            "description": text_fit(f"One row of {spec.title}.", MAX_DESCRIPTION),
            "properties": properties,
        },
        f"{spec.slug}_rows_page": {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "next": {"type": ["string", "null"]},
                "previous": {"type": ["string", "null"]},
                "results": {"type": "array", "items": ref(row)},
                "truncated": {"type": "boolean", "description": "Cut to fit the response size."},
            },
            "required": ["count", "next", "previous", "results"],
        },
    }


AGGREGATE_SCHEMA = "AggregatePage"


def aggregate_component() -> dict:
    """A page of aggregate groups, the same for every dataset (group keys depend on the call)."""
    return {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "description": "Groups in all."},
            "next": {"type": ["string", "null"]},
            "truncated": {"type": "boolean", "description": "Cut to fit the response size."},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "group_by keys and metric result keys: "
                    + ", ".join(
                        r.result_key(None if not r.types else "col")
                        for r in grammar.METRICS_BY_NAME.values()
                    )
                    + ".",
                    "properties": {"count": {"type": "integer"}},
                    "additionalProperties": {
                        "type": ["string", "number", "integer", "boolean", "null"]
                    },
                },
            },
        },
        "required": ["count", "next", "truncated", "results"],
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


def _sentences(text: str) -> list[str]:
    text = text.strip()
    if not text:
        return []
    text = text if text.endswith((".", "!", "?")) else text + "."
    return [part for part in re.split(r"(?<=[.!?])\s+", text) if part]


def dataset_paths(spec: DatasetSpec) -> dict[str, dict]:
    """The dataset's concrete path items: rows, a row by primary key, and aggregate."""
    examples = example_calls(spec)
    rows_examples = [call.url for call in examples if call.operation_id.startswith("list_")]
    aggregate_examples = [
        call.url for call in examples if call.operation_id.startswith("aggregate_")
    ] or [f"{API}/{spec.slug}/aggregate/?metrics=count"]
    about = _sentences(dataset_about(spec)) or [f"{spec.title}."]
    filters = filters_sentence(spec)
    paths = {
        f"{API}/{spec.slug}/rows/": {
            "get": _operation(
                operation_id=f"list_{spec.slug}_rows",
                summary=f"List rows of {spec.title}",
                sentences=[
                    (0, f"Rows of {spec.slug}."),
                    *((3, sentence) for sentence in about),
                    (2, filters),
                    (4, "Page with limit and offset, or follow next."),
                    (1, _example(rows_examples, room=MAX_DESCRIPTION - 20)),
                ],
                parameters=_filters(spec) + _rows_options(spec),
                response=f"{spec.slug}_rows_page",
                tag=spec.slug,
            )
        }
    }
    key = spec.column(spec.primary_key) if spec.primary_key else None
    if key is not None and not key.protected:
        paths[f"{API}/{spec.slug}/rows/{{pk}}/"] = {
            "get": _operation(
                operation_id=f"get_{spec.slug}_row",
                summary=f"Get one {spec.title} row by {key.name}",
                sentences=[
                    (0, f"One row by its {key.name}."),
                    (1, _key_example(spec, key)),
                ],
                parameters=[
                    {
                        "name": "pk",
                        "in": "path",
                        "required": True,
                        "schema": value_schema(key, nullable=False, enum=False),
                    },
                    *_expand_parameter(spec, "Labels"),
                ],
                response=row_schema_name(spec),
                tag=spec.slug,
            )
        }
    example = _example(aggregate_examples, room=MAX_DESCRIPTION - _length(about))
    options = _aggregate_options(spec)
    if example not in sentences_fit(
        [(0, text) for text in about] + [(1, example)], MAX_DESCRIPTION
    ):
        # The dataset's own description comes first: the example call then goes with metrics.
        for parameter in options:
            if parameter["name"] == "metrics":
                parameter["description"] = sentences_fit(
                    [(0, parameter["description"]), (1, example)], MAX_PARAMETER_DESCRIPTION
                )
    # How __in is written, and its cap, said once per operation (its parameters say nothing).
    in_cap = f"; __in takes at most {grammar.MAX_IN_VALUES}" if "__in=" in filters else ""
    paths[f"{API}/{spec.slug}/aggregate/"] = {
        "get": _operation(
            operation_id=f"aggregate_{spec.slug}",
            summary=f"Totals, counts and averages of {spec.title}",
            sentences=[
                *((0, sentence) for sentence in about),
                (3, "Use it instead of reading rows."),
                (2, f"Filters as in list_{spec.slug}_rows{in_cap}." if filters else ""),
                (1, example),
            ],
            parameters=_filters(spec) + options,
            response=AGGREGATE_SCHEMA,
            tag=spec.slug,
        )
    }
    return paths


def _length(sentences: list[str]) -> int:
    return sum(len(sentence) + 1 for sentence in sentences)


def _example(urls: list[str], *, room: int) -> str:
    """ "Example: GET …" with the first example call that fits in `room`, else the first one."""
    sentences = [f"Example: GET {url}" for url in urls]
    return next((sentence for sentence in sentences if len(sentence) < room), sentences[0])


def _key_example(spec: DatasetSpec, column: ColumnSpec) -> str:
    """'Example: GET …/rows/7/' with a key the reader's rows hold (the smallest), or "" when none
    is published: a made-up key would answer 404."""
    if column.min is None:
        return ""
    return f"Example: GET {API}/{spec.slug}/rows/{quote(str(column.min), safe='')}/"


def _operation(
    *,
    operation_id: str,
    summary: str,
    sentences: list[tuple[int, str]],
    parameters: list[dict],
    response: str,
    tag: str,
) -> dict:
    return {
        "operationId": operation_id,
        "summary": text_fit(summary, MAX_SUMMARY),
        "description": sentences_fit(sentences, MAX_DESCRIPTION),
        "tags": [tag],
        "parameters": _unique(parameters),
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": ref(response)}},
            },
            "default": ERROR_RESPONSE,
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


def _query(name: str, schema: dict, sentences: list[tuple[int, str]] | None = None) -> dict:
    parameter: dict = {"name": name, "in": "query"}
    description = sentences_fit(sentences or [], MAX_PARAMETER_DESCRIPTION)
    if description:
        parameter["description"] = description
    parameter["schema"] = schema
    return parameter


def listing(names: list[str], room: int = MAX_PARAMETER_DESCRIPTION // 2) -> str:
    """Names joined by commas, at most `room` characters: the rest counted ("and 12 more")."""
    text = ", ".join(names)
    if len(text) <= room:
        return text
    kept: list[str] = []
    for name in names:
        if len(", ".join([*kept, name])) + len(" and 9999 more") > room:
            break
        kept.append(name)
    return f"{', '.join(kept)} and {len(names) - len(kept)} more"


def _columns_phrase(spec: DatasetSpec, names: list[str]) -> str:
    """ "any column", "any column except a, b" or the list of names, whichever is shortest."""
    every = [column.name for column in spec.columns]
    excluded = [name for name in every if name not in names]
    if not excluded:
        return "any column"
    if len(excluded) < len(names):
        return f"any column except {listing(excluded)}"
    return listing(names)


def _filter_parameter(spec: DatasetSpec, column: ColumnSpec, name: str) -> dict:
    record = grammar.OPERATORS[name]
    parameter = record.parameter(column.name)
    operand = record.operand
    if operand == grammar.Operand.VALUE:
        # The published values are said once, on the column's own (equality) parameter.
        schema = value_schema(column, nullable=False, enum=record.enum and record.name == "eq")
        sentences = [(0, column_description(column, spec))] if record.name == "eq" else []
        return _query(parameter, schema, sentences)
    if operand == grammar.Operand.VALUES:
        # How a list is written is said once, in the operation's filters sentence.
        return _query(parameter, {"type": "string"})
    if operand == grammar.Operand.FLAG:
        return _query(parameter, {"type": "boolean"})
    if operand == grammar.Operand.PART:
        published = column if spec.values_complete else None
        low, high = grammar.part_range(record, published)
        return _query(parameter, {"type": "integer", "minimum": low, "maximum": high})
    return _query(parameter, {"type": "string"})


def _filters(spec: DatasetSpec) -> list[dict]:
    parameters = [
        _filter_parameter(spec, column, name)
        for column in spec.columns
        for name in column.operators
    ]
    searchable = [c.name for c in spec.columns if c.searchable and not c.protected]
    if searchable:
        parameters.append(
            _query(
                "search",
                {"type": "string"},
                [(0, f"Text searched, any case, in {listing(searchable)}.")],
            )
        )
    return parameters


def _limit_offset(*, maximum: int, default: int) -> list[dict]:
    return [
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
        ),
        _query("offset", {"type": "integer", "minimum": 0}),  # its name says it; next gives it
    ]


def _rows_options(spec: DatasetSpec) -> list[dict]:
    sortable = [c.name for c in spec.columns if c.sortable and not c.protected]
    unsortable = len(sortable) < len(spec.columns)
    names = [c.name for c in spec.columns]
    parameters = []
    if sortable:
        date = date_column(spec)
        example = f"-{date.name}" if date is not None and date.name in sortable else sortable[0]
        parameters.append(
            _query(
                "ordering",
                {"type": "string"},
                [
                    (0, f"Comma-separated columns, '-' first for descending, e.g. {example}."),
                    # Said only when some column is not: "any column" tells nothing.
                    (1, "" if not unsortable else f"Sortable: {_columns_phrase(spec, sortable)}."),
                ],
            )
        )
    if names:
        parameters.append(
            _query(
                "fields",
                {"type": "string"},
                [(0, f"Comma-separated columns to return, default all: {listing(names)}.")],
            )
        )
    parameters += _expand_parameter(spec)
    default = min(spec.default_page_size, spec.max_page_size)
    return parameters + _limit_offset(maximum=spec.max_page_size, default=default)


def _expand_parameter(spec: DatasetSpec, labels: str = "") -> list[dict]:
    """`expand`, when some column refers to another dataset the document mentions: said in
    full on the rows operation, by reference on the others (`labels`: of what)."""
    linked = [column.name for column in expandable(spec)]
    if not linked:
        return []
    if not labels:
        sentences = [
            (0, f"Comma-separated columns that refer to another dataset: {listing(linked)}."),
            (1, f"Each row then gets its label, e.g. {linked[0]}__label."),
        ]
    else:
        sentences = [(0, f"{labels} as in list_{spec.slug}_rows.")]
    return [_query("expand", {"type": "string"}, sentences)]


def _aggregate_options(spec: DatasetSpec) -> list[dict]:
    keys = grammar.group_keys(spec)
    plain = [key for key in keys if "__" not in key]
    dated = [column.name for column in spec.columns if f"{column.name}__year" in keys]
    main = date_column(spec)
    if main is not None and main.name in dated:  # the examples' date column comes first
        dated = [main.name] + [name for name in dated if name != main.name]
    buckets = grammar.BUCKETS_BY_NAME.values()
    parameters = []
    if keys:
        parameters.append(
            _query(
                "group_by",
                {"type": "string"},
                [
                    (
                        0,
                        f"Comma-separated, at most {grammar.MAX_GROUP_KEYS} keys: "
                        f"{_columns_phrase(spec, plain)}.",
                    ),
                    (
                        1,
                        f"Date buckets of {listing(dated)}: "
                        + ", ".join(f"__{bucket.name} ({bucket.example})" for bucket in buckets)
                        + f", e.g. {dated[0]}__quarter."
                        if dated
                        else "",
                    ),
                ],
            )
        )
    phrases: dict[tuple[str, ...], list[str]] = {}
    for record in grammar.METRICS_BY_NAME.values():
        columns = tuple(grammar.metric_columns(spec, record)) if record.types else ()
        if columns:
            phrases.setdefault(columns, []).append(record.call("col"))
    listed = "; ".join(
        f"{', '.join(calls)} for {_columns_phrase(spec, list(columns))}"
        for columns, calls in phrases.items()
    )
    example = example_metric(spec)
    parameters.append(
        _query(
            "metrics",
            {"type": "string", "default": "count"},
            [
                (
                    0,
                    f"Comma-separated, at most {grammar.MAX_METRICS}: count; {listed}.",
                ),
                (2, f"For example metrics={example.metric}."),
            ],
        )
    )
    parameters.append(
        _query(
            "ordering",
            {"type": "string"},
            [
                (0, "Comma-separated group_by keys or result keys, '-' first for descending."),
                (1, f"For example ordering=-{example.key}."),
            ],
        )
    )
    parameters += _expand_parameter(spec, "Labels of group_by columns")
    return parameters + _limit_offset(
        maximum=grammar.MAX_AGGREGATE_LIMIT, default=grammar.DEFAULT_AGGREGATE_LIMIT
    )
