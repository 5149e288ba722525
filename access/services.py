"""One query service behind every door: scope, row filters, personal data, the size guard and
usage, applied the same way whichever door (REST, MCP) a call came through.

A door turns its request into REST-grammar parameters (strings, as in a query string), calls
`dataset_query` (or `rows_search` / `row_fetch`) with the caller's `AccessPolicy`, and renders
the `QueryResult`. Errors are the engine's and the API's own (`QueryError`, `ApiError`,
`SourceUnavailable`), so every door reports the same code and message for the same mistake.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from access.policy import AccessPolicy
from datasets.engine import execute
from datasets.engine.errors import NotFound, QueryError
from datasets.engine.parse import parse_aggregate, parse_forced, parse_rows
from datasets.engine.spec import DatasetSpec
from datasets.engine.statistics import statistics_for
from datasets.selectors import dataset_spec, dataset_specs
from datasets.serializers import DatasetSerializer, DatasetSummarySerializer
from gatewaysite.errors import ApiError
from keys.usage import record

OPERATIONS = ("list_datasets", "describe_dataset", "rows", "row", "aggregate")
SEARCH_PER_DATASET = 5
SEARCH_MAX_RESULTS = 20


@dataclass(frozen=True)
class QueryResult:
    """What a call read: its JSON-ready body (the REST keys), the dataset and rows it returned."""

    body: dict
    dataset: str = ""
    rows: int = 0


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dataset_not_found(slug: str) -> ApiError:
    """The answer for an unknown dataset and for one outside the caller's scope alike."""
    return ApiError(
        404,
        "dataset_not_found",
        f"No dataset '{slug[:40]}'. List the datasets at /api/v1/datasets/.",
    )


def datasets_readable(policy: AccessPolicy) -> list[DatasetSpec]:
    """The servable datasets the caller may read, by slug."""
    return [spec for spec in dataset_specs() if policy.may_read(spec)]


def dataset_readable(policy: AccessPolicy, slug: str) -> DatasetSpec:
    """The dataset with this slug if the caller may read it, else ApiError 404."""
    spec = dataset_spec(slug) if isinstance(slug, str) else None
    if spec is None or not policy.may_read(spec):
        raise dataset_not_found(str(slug))
    return spec


def row_url(base_url: str, slug: str, key) -> str:
    """The REST address of one row."""
    return f"{base_url}/api/v1/datasets/{slug}/rows/{key}/"


def _cut(results: list[dict], max_chars: int) -> tuple[list[dict], bool]:
    """As many leading results as fit in `max_chars` characters of JSON, and whether any were cut."""
    used, kept = 0, 0
    for item in results:
        used += len(_dumps(item)) + 1
        if used > max_chars:
            break
        kept += 1
    if kept == 0 and results:
        raise QueryError(
            "response_too_large",
            "One row alone is larger than the response limit: choose fewer columns with `fields`.",
        )
    return results[:kept], kept < len(results)


def _page(count: int | None, offset: int, results: list[dict], truncated: bool) -> dict:
    end = offset + len(results)
    more = count is None or end < count
    return {
        "count": count,
        "next_offset": end if (more and (results or truncated)) else None,
        "truncated": truncated,
        "results": results,
    }


def _rows(spec: DatasetSpec, policy: AccessPolicy, params: Mapping, max_chars: int) -> QueryResult:
    if params.get("format") not in (None, "json"):
        raise QueryError("invalid_value", "Rows are answered in JSON here: drop `format`.")
    query = parse_rows(spec, params, forced=policy.filters_for(spec))
    page = execute.run_rows(spec, query)
    results, truncated = _cut(page.rows, max_chars)
    return QueryResult(
        _page(page.count, query.offset, results, truncated), dataset=spec.slug, rows=len(results)
    )


def _aggregate(
    spec: DatasetSpec, policy: AccessPolicy, params: Mapping, max_chars: int
) -> QueryResult:
    query = parse_aggregate(spec, params, forced=policy.filters_for(spec))
    offset = getattr(query, "offset", 0)
    run_groups = getattr(execute, "run_groups", None)
    if run_groups is not None:
        groups = run_groups(spec, query)
        count, found = groups.count, groups.results
    else:
        found = execute.run_aggregate(spec, query)
        count = offset + len(found) if len(found) < query.limit else None
    results, truncated = _cut(found, max_chars)
    return QueryResult(
        _page(count, offset, results, truncated), dataset=spec.slug, rows=len(results)
    )


def dataset_query(
    *,
    policy: AccessPolicy,
    slug: str | None,
    operation: str,
    params: Mapping,
    base_url: str,
    max_chars: int,
) -> QueryResult:
    """Answer one call of the REST grammar for a caller: `operation` is list_datasets,
    describe_dataset, rows, row (params["key"]) or aggregate; `params` are query-string values.

    Results are cut to `max_chars` characters of JSON (`truncated`, `next_offset` continue).
    """
    if operation == "list_datasets":
        specs = datasets_readable(policy)
        context = {"base_url": base_url}
        results = [
            DatasetSummarySerializer(
                statistics_for(spec, policy.filters_for(spec)), context=context
            ).data
            for spec in specs
        ]
        return QueryResult({"count": len(results), "results": results}, rows=len(results))
    spec = dataset_readable(policy, slug or "")
    if operation == "describe_dataset":
        published = statistics_for(spec, policy.filters_for(spec))
        return QueryResult(DatasetSerializer(published).data, dataset=spec.slug)
    if operation == "rows":
        return _rows(spec, policy, params, max_chars)
    if operation == "aggregate":
        return _aggregate(spec, policy, params, max_chars)
    if operation == "row":
        if spec.primary_key is None:
            raise ApiError(
                404,
                "not_found",
                f"{spec.slug} has no primary key: find its rows with a filter instead.",
            )
        key = str(params.get("key", ""))
        row = execute.run_row(spec, key, parse_forced(spec, policy.filters_for(spec)))
        return QueryResult(row, dataset=spec.slug, rows=1)
    raise ValueError(f"unknown operation {operation!r}")


def _title(spec: DatasetSpec, row: dict) -> str:
    """A row's title: its first searchable text value, else the dataset and key."""
    for column in spec.columns:
        if column.searchable and not column.protected and column.type == "string":
            value = row.get(column.name)
            if value not in (None, ""):
                return f"{value}"[:120]
    return f"{spec.title} {row.get(spec.primary_key)}"


def _searchable(spec: DatasetSpec) -> bool:
    return spec.primary_key is not None and any(
        column.searchable and not column.protected for column in spec.columns
    )


def rows_search(*, policy: AccessPolicy, text: str, base_url: str) -> QueryResult:
    """Rows whose searchable columns contain `text`, across the datasets the caller may read:
    `{"results": [{"id": "<slug>:<primary key>", "title", "url"}]}`."""
    results: list[dict] = []
    for spec in datasets_readable(policy):
        if not _searchable(spec) or len(results) >= SEARCH_MAX_RESULTS:
            continue
        query = parse_rows(
            spec,
            {"search": text, "limit": str(min(SEARCH_PER_DATASET, spec.max_page_size))},
            forced=policy.filters_for(spec),
        )
        for row in execute.run_rows(spec, query).rows:
            key = row.get(spec.primary_key)
            results.append(
                {
                    "id": f"{spec.slug}:{key}",
                    "title": _title(spec, row),
                    "url": row_url(base_url, spec.slug, key),
                }
            )
    results = results[:SEARCH_MAX_RESULTS]
    return QueryResult({"results": results}, rows=len(results))


def row_fetch(*, policy: AccessPolicy, id: str, base_url: str) -> QueryResult:  # noqa: A002
    """The row a search result names (`<slug>:<primary key>`):
    `{"id", "title", "text", "url", "metadata"}`."""
    slug, separator, key = str(id).partition(":")
    if not separator or not key:
        raise QueryError(
            "invalid_value",
            f"'{str(id)[:60]}' is not a result id: ids look like <dataset>:<primary key>, as "
            "search returns them.",
        )
    spec = dataset_readable(policy, slug)
    if spec.primary_key is None:
        raise NotFound(f"{spec.slug} has no primary key: its rows cannot be fetched by id.")
    row = execute.run_row(spec, key, parse_forced(spec, policy.filters_for(spec)))
    text = "\n".join(f"{name}: {'' if value is None else value}" for name, value in row.items())
    body = {
        "id": f"{spec.slug}:{row.get(spec.primary_key, key)}",
        "title": _title(spec, row),
        "text": text,
        "url": row_url(base_url, spec.slug, row.get(spec.primary_key, key)),
        "metadata": {"dataset": spec.slug, "dataset_title": spec.title},
    }
    return QueryResult(body, dataset=spec.slug, rows=1)


def usage_report(
    *,
    policy: AccessPolicy,
    operation: str,
    dataset: str,
    status: int,
    started: float,
    began: float,
    rows: int | None,
    error_code: str = "",
) -> None:
    """Record one call for usage (the same record REST calls get), once per call."""
    duration_ms = (time.perf_counter() - began) * 1000
    record(
        [
            started,
            policy.principal,
            dataset[:40],
            operation[:20],
            status,
            round(duration_ms, 3),
            rows if isinstance(rows, int) and rows >= 0 else None,
            error_code[:40],
        ]
    )
