"""The MCP tools: seven fixed tools over the query service, whatever the catalog's size.

Arguments use the REST grammar as JSON and become the same query-string values a REST call
sends, so a mistake gets the REST 400's code and message. Column names and operators are
described per dataset by `describe_dataset`, not inlined into every tool (Cursor sends only the
first 40 tools and every client pays for each schema byte in its context).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from access import services
from datasets.engine import grammar
from datasets.engine.errors import QueryError
from datasets.engine.parse import unknown_parameter
from datasets.policy import AccessPolicy
from datasets.responses import ROW_TOO_LARGE, dumps, fitting

INSTRUCTIONS = (
    "Gateway serves tabular datasets. Start with list_datasets: it gives each dataset's "
    "columns, their types, units and valid values or ranges, so query_rows and aggregate can "
    "be called next (describe_dataset adds operators and counts). Totals, counts and averages: "
    "aggregate (the database computes them; never add up rows yourself). Records: query_rows, "
    "or get_row by primary key. search and fetch find rows by text across every dataset.\n"
    "Filters are an object of column or column__operator to value: operators "
    + ", ".join(op for op in grammar.ALL_OPERATORS if op != "eq")
    + " (in takes a list; a date column also takes __year, __quarter 1-4, __month 1-12). "
    "group_by takes columns and date buckets column__"
    + ", column__".join(grammar.BUCKETS)
    + "; metrics are count or function:column with function one of "
    + ", ".join(m for m in grammar.METRICS if m != "count")
    + ", and their result keys are count and function_column; ordering takes keys, '-' first "
    "for descending. Results carry count, next_offset (pass it as offset for more) and "
    "truncated: a list with next_offset set is not complete.\n"
    "Example, product sales for Q2 2024: aggregate with dataset 'sales', filters "
    '{"order_date__gte": "2024-04-01", "order_date__lte": "2024-06-30"}, group_by ["product"], '
    'metrics ["sum:revenue"], ordering ["-sum_revenue"].'
)

ANNOTATIONS = {
    "readOnlyHint": True,
    "destructiveHint": False,
    "idempotentHint": True,
    "openWorldHint": False,
}

# Each schema position has one `type` (nullable values are anyOf with null): clients that map
# tool schemas onto a single-type dialect (Gemini's function declarations) reject type lists.
# Lists of names are declared as arrays; a comma-separated string is accepted all the same.
_NAMES = {"type": "array", "items": {"type": "string"}}
_SCALARS = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]


def _nullable(type_: str, **extra) -> dict:
    return {"anyOf": [{"type": type_}, {"type": "null"}], **extra}


_ROW = {"type": "object", "additionalProperties": True}
_PAGE = {
    "type": "object",
    "properties": {
        "count": _nullable("integer", description="Rows (or groups) the query matches in all."),
        "next_offset": _nullable(
            "integer", description="The offset of the next page; null when this is the last."
        ),
        "truncated": {"type": "boolean", "description": "The size limit cut this page."},
        "results": {"type": "array", "items": _ROW},
    },
    "required": ["count", "next_offset", "truncated", "results"],
}


def _dataset(slugs: list[str]) -> dict:
    schema: dict[str, object] = {
        "type": "string",
        "description": "The dataset's slug, from list_datasets.",
    }
    if slugs:
        schema["enum"] = slugs
    return schema


def _filters() -> dict:
    return {
        "type": "object",
        "description": (
            "column or column__operator -> value, combined with AND, e.g. "
            '{"region": "EU", "revenue__gt": 1000, "product__in": ["A", "B"]}.'
        ),
        "additionalProperties": {
            "anyOf": [*_SCALARS, {"type": "array", "items": {"anyOf": _SCALARS}}]
        },
    }


def _names(description: str, **extra) -> dict:
    return {**_NAMES, "description": description, **extra}


def input_schemas(slugs: list[str], max_page_size: int = 1000) -> dict[str, dict]:
    """Each tool's inputSchema, with `dataset` an enum of the slugs the caller may read and
    query_rows' limit capped at the largest page those datasets serve."""
    dataset = _dataset(slugs)
    search = {"type": "string", "description": "Case-insensitive text in any searchable column."}
    offset = {"type": "integer", "minimum": 0, "description": "Skip this many (next_offset)."}
    return {
        "list_datasets": {"type": "object", "properties": {}},
        "describe_dataset": {
            "type": "object",
            "properties": {
                "dataset": dataset,
                "columns": _names(
                    "Describe only these columns (default all; a wide dataset's description is "
                    "cut to the size limit: ask for the rest by name)."
                ),
            },
            "required": ["dataset"],
        },
        "query_rows": {
            "type": "object",
            "properties": {
                "dataset": dataset,
                "filters": _filters(),
                "search": search,
                "ordering": _names("Columns to sort by, '-' first for descending: [\"-revenue\"]."),
                "fields": _names("Columns to return (default all)."),
                "expand": _names(
                    "Columns that refer to another dataset (list_datasets: 'refers to'): each "
                    "row then carries the referenced row's label as column__label."
                ),
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": max_page_size,
                    "description": "Rows per page (the dataset's default and maximum apply).",
                },
                "offset": offset,
            },
            "required": ["dataset"],
        },
        "get_row": {
            "type": "object",
            "properties": {
                "dataset": dataset,
                "key": {
                    "type": "string",
                    "description": "The row's primary key value (a number may be sent as one).",
                },
                "expand": _names("Columns that refer to another dataset, as in query_rows."),
            },
            "required": ["dataset", "key"],
        },
        "aggregate": {
            "type": "object",
            "properties": {
                "dataset": dataset,
                "filters": _filters(),
                "search": search,
                "group_by": _names(
                    'Columns and date buckets to group by: ["product", "order_date__quarter"].',
                    maxItems=grammar.MAX_GROUP_KEYS,
                ),
                "metrics": _names(
                    'count, or function:column: ["sum:revenue", "count"] (default count).',
                    maxItems=grammar.MAX_METRICS,
                ),
                "ordering": _names(
                    "Group keys or result keys, '-' first for descending: [\"-sum_revenue\"]."
                ),
                "expand": _names(
                    "group_by columns that refer to another dataset: each group then carries "
                    "the referenced row's label, as in query_rows."
                ),
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": grammar.MAX_AGGREGATE_LIMIT,
                    "description": f"Groups per page (default {grammar.DEFAULT_AGGREGATE_LIMIT}).",
                },
                "offset": offset,
            },
            "required": ["dataset"],
        },
        "search": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "Text to look for."}},
            "required": ["query"],
        },
        "fetch": {
            "type": "object",
            "properties": {
                "id": {
                    "type": "string",
                    "description": "A result id from search: <dataset>:<primary key>.",
                }
            },
            "required": ["id"],
        },
    }


OUTPUT_SCHEMAS: dict[str, dict] = {
    "list_datasets": {
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "slug": {"type": "string"},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "row_count": _nullable("integer"),
                        "url": {"type": "string"},
                        "columns": {
                            "type": "string",
                            "description": "Each column's type, unit, values or range (absent "
                            "when the list is too long: describe_dataset then).",
                        },
                    },
                    "required": ["slug", "title", "description", "row_count", "url"],
                },
            },
        },
        "required": ["count", "results"],
    },
    "describe_dataset": {
        "type": "object",
        "properties": {
            "slug": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "primary_key": _nullable("string"),
            "row_count": _nullable("integer"),
            "columns": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
            "truncated": {
                "type": "boolean",
                "description": "The size limit cut the columns: ask for the others with columns.",
            },
        },
        "required": ["slug", "title", "description", "primary_key", "row_count", "columns"],
    },
    "query_rows": _PAGE,
    "get_row": _ROW,
    "aggregate": _PAGE,
    "search": {
        "type": "object",
        "properties": {
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "url": {"type": "string"},
                    },
                    "required": ["id", "title", "url"],
                },
            }
        },
        "required": ["results"],
    },
    "fetch": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "text": {"type": "string"},
            "url": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": True},
        },
        "required": ["id", "title", "text", "url", "metadata"],
    },
}

DESCRIPTIONS = {
    "list_datasets": (
        "List the datasets you may read: slug, title, description, row count, and each "
        "dataset's columns with type, unit, valid values or range: enough to call query_rows "
        "or aggregate directly."
    ),
    "describe_dataset": (
        "Describe a dataset: its primary key and columns, each with type, unit, filter "
        "operators, valid values (enum), range (min, max), counts and aggregation. Needed only "
        "when list_datasets left a dataset's columns out, or for the details."
    ),
    "query_rows": (
        "Rows of a dataset: filter, search, sort, choose fields, paginate with limit (at most "
        "the dataset's page size, 1000 by default) and offset. For totals or counts use "
        "aggregate instead."
    ),
    "get_row": "One row of a dataset by its primary key.",
    "aggregate": (
        "Grouped metrics over a dataset's filtered rows, computed by the database: e.g. "
        'revenue by product for Q2 with filters on the date, group_by ["product"], metrics '
        '["sum:revenue"].'
    ),
    "search": "Find rows by text across every dataset you may read; returns ids for fetch.",
    "fetch": "One row found by search, by its id (<dataset>:<primary key>), as text.",
}

TITLES = {
    "list_datasets": "List datasets",
    "describe_dataset": "Describe a dataset",
    "query_rows": "Query rows",
    "get_row": "Get a row",
    "aggregate": "Aggregate",
    "search": "Search rows",
    "fetch": "Fetch a row",
}

TOOL_NAMES = tuple(DESCRIPTIONS)


def tool_definitions(slugs: list[str], max_page_size: int = 1000) -> list[dict]:
    """The tools as tools/list sends them, in their fixed order."""
    inputs = input_schemas(slugs, max_page_size)
    return [
        {
            "name": name,
            "title": TITLES[name],
            "description": DESCRIPTIONS[name],
            "inputSchema": inputs[name],
            "outputSchema": OUTPUT_SCHEMAS[name],
            "annotations": {"title": TITLES[name], **ANNOTATIONS},
        }
        for name in TOOL_NAMES
    ]


# Arguments -> REST-grammar parameters

_ARGUMENTS = {
    "list_datasets": (),
    "describe_dataset": ("dataset", "columns"),
    "query_rows": (
        "dataset",
        "filters",
        "search",
        "ordering",
        "fields",
        "expand",
        "limit",
        "offset",
    ),
    "get_row": ("dataset", "key", "expand"),
    "aggregate": (
        "dataset",
        "filters",
        "search",
        "group_by",
        "metrics",
        "ordering",
        "expand",
        "limit",
        "offset",
    ),
    "search": ("query",),
    "fetch": ("id",),
}
_REQUIRED = {name: tuple(schema.get("required", ())) for name, schema in input_schemas([]).items()}


def _scalar(name: str, value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise QueryError(
        "invalid_value",
        f"{name} takes text, a number or true/false, not {type(value).__name__}.",
    )


def _filter_value(name: str, value) -> str:
    if value is None:
        raise QueryError(
            "invalid_value",
            f"Filter '{name[:40]}' is null: to find empty values use column__isnull: true.",
        )
    if isinstance(value, list):
        return ",".join(_scalar(name, item) for item in value)
    return _scalar(name, value)


def _names_value(name: str, value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    raise QueryError(
        "invalid_value", f"{name} takes a list of names, or one comma-separated string."
    )


def _number(name: str, value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise QueryError("invalid_" + name, f"{name} must be a whole number.")
    return str(value)


def _params(tool: str, arguments: dict) -> dict[str, str]:
    """The REST query parameters a tool call stands for."""
    allowed = _ARGUMENTS[tool]
    for name in arguments:
        if name not in allowed:
            raise QueryError(
                "unknown_parameter",
                f"Unknown argument '{str(name)[:40]}' of {tool}. Valid arguments: "
                f"{', '.join(allowed) or 'none'}.",
            )
    for name in _REQUIRED[tool]:
        if arguments.get(name) in (None, ""):
            raise QueryError("invalid_value", f"{tool} needs the argument '{name}'.")
    params: dict[str, str] = {}
    filters = arguments.get("filters") or {}
    if not isinstance(filters, dict):
        raise QueryError(
            "invalid_value", 'filters is an object of column__operator to value: {"region": "EU"}.'
        )
    for name, value in filters.items():
        if name in grammar.RESERVED_PARAMS:
            raise QueryError(
                "unknown_parameter",
                f"'{name}' is not a filter: pass it as an argument of its own.",
            )
        params[name] = _filter_value(name, value)
    for name in ("ordering", "fields", "expand", "group_by", "metrics", "columns"):
        if arguments.get(name) is not None:
            params[name] = _names_value(name, arguments[name])
    for name in ("limit", "offset"):
        if arguments.get(name) is not None:
            params[name] = _number(name, arguments[name])
    if arguments.get("search") is not None:
        params["search"] = _scalar("search", arguments["search"])
    if arguments.get("key") is not None:
        params["key"] = _scalar("key", arguments["key"])
    return params


# Text forms: what a client that ignores structuredContent still reads, compactly (a table
# rather than a second copy of the JSON).


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _table(results: list[dict]) -> str:
    if not results:
        return ""
    names = list(dict.fromkeys(name for row in results for name in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in results:
        writer.writerow([_cell(row.get(name)) for name in names])
    return out.getvalue().rstrip("\n")


def _page_text(body: dict, what: str) -> str:
    shown = len(body["results"])
    head = f"{shown} {what} shown"
    if body["count"] is not None:
        head += f" of {body['count']}"
    if body["next_offset"] is not None:
        head += f"; more with offset={body['next_offset']}"
    if body["truncated"]:
        head += "; cut to the size limit"
    table = _table(body["results"])
    return f"{head}.\n{table}" if table else f"{head}."


def _column_facts(column: dict, zone: str) -> list[str]:
    """What a call needs of a column, compactly: type, unit, identity, link, values or range."""
    facts = [column["type"]]
    if column.get("instant"):
        facts.append(f"moments in {zone}")  # its dates count there
    if column.get("unit"):
        facts.append(f"unit {column['unit']}")
    if column.get("identifies"):
        facts.append(f"identifies {column['identifies']}")
    if column.get("references"):
        facts.append(f"refers to {column['references']}")
    if column.get("enum"):  # the values say the range too
        facts.append("values " + "|".join(_cell(value) for value in column["enum"]))
    elif column.get("min") is not None or column.get("max") is not None:
        facts.append(f"range {_cell(column.get('min'))}..{_cell(column.get('max'))}")
    return facts


def _describe_text(body: dict) -> str:
    lines = [
        f"{body['slug']}: {body['title']} ({body['row_count']} rows, primary key "
        f"{body['primary_key'] or 'none'}). {body['description']}".strip()
    ]
    for column in body["columns"]:
        facts = _column_facts(column, body["time_zone"])
        if column.get("operators"):
            facts.append("operators " + ",".join(column["operators"]))
        line = f"- {column['name']} ({'; '.join(facts)})"
        if column.get("description"):
            line += f": {column['description']}"
        lines.append(line)
    return "\n".join(lines)


def columns_summary(described: dict) -> str:
    """A dataset's columns in one line, enough to filter, group and sum without describing it:
    "order_id (integer; range 1..240), region (string; values EU|US), revenue (number; unit USD)"."""
    parts = []
    for column in described["columns"]:
        facts = _column_facts(column, described["time_zone"])
        if not column.get("operators"):
            facts.append("not filterable")  # masked, hashed, or so set by the admin
        parts.append(f"{column['name']} ({'; '.join(facts)})")
    return ", ".join(parts)


def _list_text(body: dict) -> str:
    lines = [f"{body['count']} datasets."]
    for item in body["results"]:
        line = (
            f"- {item['slug']}: {item['title']} ({item['row_count']} rows). {item['description']}"
        )
        if item.get("columns"):
            line += f"\n  Columns: {item['columns']}"
        lines.append(line)
    if any("columns" not in item for item in body["results"]):
        lines.append("The columns of the datasets listed without them: describe_dataset.")
    return "\n".join(lines)


def _listed(policy: AccessPolicy, *, base_url: str, budget: int) -> dict:
    """The datasets the caller may read, each with its columns while they fit the budget (the
    text form repeats them: each half of the response gets the budget)."""
    specs = services.datasets_published(policy)
    results = [services.dataset_summary(spec, base_url=base_url) for spec in specs]
    room = budget - len(dumps({"count": len(results), "results": results}))
    for item, spec in zip(results, specs, strict=True):
        columns = columns_summary(services.dataset_description(spec))
        if len(columns) + 20 > room:
            break  # the rest: describe_dataset
        item["columns"] = columns
        room -= len(columns) + 20
    return {"count": len(results), "results": results}


def _search_text(body: dict) -> str:
    if not body["results"]:
        return "No rows found."
    return "\n".join(f"{item['id']}: {item['title']}" for item in body["results"])


def _row_text(body: dict) -> str:
    return "\n".join(f"{name}: {_cell(value)}" for name, value in body.items())


@dataclass(frozen=True)
class ToolAnswer:
    """A tool's structured result, its text form, and what it read (for usage)."""

    structured: dict
    text: str
    dataset: str = ""
    rows: int = 0


def _page(results: list[dict], *, count: int | None, offset: int, budget: int) -> tuple[dict, int]:
    """A page under `budget` characters of JSON, cut at a row boundary, and the rows it kept."""
    kept = fitting([dumps(item) for item in results], budget)
    if kept == 0 and results:
        raise QueryError("response_too_large", ROW_TOO_LARGE)
    end = offset + kept
    more = count is None or end < count
    body = {
        "count": count,
        "next_offset": end if more and (kept or kept < len(results)) else None,
        "truncated": kept < len(results),
        "results": results[:kept],
    }
    return body, kept


def _described(body: dict, wanted: str | None, budget: int) -> dict:
    """A dataset's description with only the wanted columns, cut to `budget` characters."""
    columns = body["columns"]
    if wanted:
        names = [name.strip() for name in wanted.split(",") if name.strip()]
        known = {column["name"] for column in columns}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise QueryError(
                "unknown_column",
                f"{body['slug']} has no column '{unknown[0][:40]}'. Its columns: "
                f"{', '.join(sorted(known))[:400]}.",
            )
        columns = [column for column in columns if column["name"] in names]
    head = len(dumps({**body, "columns": [], "truncated": False}))
    kept = fitting([dumps(column) for column in columns], budget - head)
    return {**body, "columns": columns[:kept], "truncated": kept < len(columns)}


# Where MCP's errors send a client: a tool, where REST's name a URL.
LIST_DATASETS = "Call list_datasets to see them."


def tool_call(
    name: str, arguments: dict, *, policy: AccessPolicy, base_url: str, max_chars: int
) -> ToolAnswer:
    """Run one tool for a caller; raises the service's errors (QueryError, ApiError, ...), in
    the tools' words: tools and arguments, not URLs and query parameters."""
    try:
        return _tool_call(name, arguments, policy=policy, base_url=base_url, max_chars=max_chars)
    except services.DatasetNotFound as error:
        raise error.listed_by(LIST_DATASETS) from None


def _check_filters(policy: AccessPolicy, dataset: object, filters: object) -> None:
    """An unknown filter named as MCP's `filters` argument takes them: columns and
    column__operator, never the query parameters that are arguments of their own."""
    if not isinstance(filters, dict):
        return
    spec = services.dataset_readable(policy, dataset)
    for name in filters:
        if "__" not in str(name) and spec.column(str(name)) is None:
            raise unknown_parameter(
                spec, str(name), (), noun="filter", what="filters (and column__operator)"
            )


def _tool_call(
    name: str, arguments: dict, *, policy: AccessPolicy, base_url: str, max_chars: int
) -> ToolAnswer:
    params = _params(name, arguments)
    if name in ("query_rows", "aggregate"):
        _check_filters(policy, arguments.get("dataset"), arguments.get("filters"))
    # structuredContent and its text form share the response: each gets about half.
    budget = max(max_chars // 2 - 1000, 500)
    dataset = arguments.get("dataset")
    if name == "search":
        found = services.rows_search(
            policy=policy, text=_scalar("query", arguments["query"]), base_url=base_url
        )
        return ToolAnswer(found.body, _search_text(found.body), rows=found.rows)
    if name == "fetch":
        row_id = _scalar("id", arguments["id"])
        found = services.row_fetch(policy=policy, id=row_id, base_url=base_url)
        return ToolAnswer(found.body, found.body["text"], found.dataset, found.rows)
    if name == "list_datasets":
        body = _listed(policy, base_url=base_url, budget=budget)
        return ToolAnswer(body, _list_text(body), rows=body["count"])
    if name == "describe_dataset":
        described = services.dataset_described(policy, dataset)
        body = _described(described, params.get("columns"), budget)
        return ToolAnswer(body, _describe_text(body), str(body["slug"]))
    if name == "get_row":
        spec, row = services.row_read(policy, dataset, params["key"], params)
        return ToolAnswer(row, _row_text(row), spec.slug, 1)
    if name == "query_rows":
        rows = services.rows_read(policy, dataset, params)
        body, kept = _page(
            rows.page.rows, count=rows.page.count, offset=rows.query.offset, budget=budget
        )
        return ToolAnswer(body, _page_text(body, "rows"), rows.spec.slug, kept)
    groups = services.groups_read(policy, dataset, params)
    body, kept = _page(
        groups.groups.results, count=groups.groups.count, offset=groups.query.offset, budget=budget
    )
    return ToolAnswer(body, _page_text(body, "groups"), groups.spec.slug, kept)


def error_text(code: str, message: str) -> str:
    """The text form of a tool error."""
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)
