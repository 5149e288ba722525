"""One query service behind every door: scope, row filters, personal data and published values,
applied the same way whichever door (REST, MCP) a call came through.

A door turns its request into REST-grammar parameters (strings, as in a query string), calls
one of the functions below with the caller's `AccessPolicy`, and renders what comes back: the
REST views as pages with links (or CSV), the MCP tools as structured content with a text form,
both cut to the response size guard (datasets/responses.py). Errors are the engine's and the
API's own (`QueryError`, `ApiError`, `SourceUnavailable`), so every door reports the same code
and message for the same mistake. Usage is recorded once per call, by the door that knows the
call's status (`usage_report`, or keys.usage's middleware for REST).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from datasets.engine import execute
from datasets.engine.errors import NotFound, QueryError, closest_name
from datasets.engine.execute import Groups, Page
from datasets.engine.parse import parse_aggregate, parse_forced, parse_row_expand, parse_rows
from datasets.engine.query import AggregateQuery, RowsQuery, label_key
from datasets.engine.spec import ColumnSpec, DatasetSpec
from datasets.engine.statistics import statistics_withheld
from datasets.policy import AccessPolicy, links_within
from datasets.selectors import dataset_spec, dataset_specs
from datasets.serializers import DatasetSerializer, DatasetSummarySerializer
from gatewaysite.errors import ApiError
from gatewaysite.generations import ProcessCache
from keys.usage import record

SEARCH_PER_DATASET = 5
SEARCH_MAX_RESULTS = 20


@dataclass(frozen=True)
class RowsRead:
    """A page of rows a caller read, with the query that chose them."""

    spec: DatasetSpec
    query: RowsQuery
    page: Page


@dataclass(frozen=True)
class GroupsRead:
    """Aggregate groups a caller read, with the query that made them."""

    spec: DatasetSpec
    query: AggregateQuery
    groups: Groups


@dataclass(frozen=True)
class Found:
    """What a search or fetch read: its JSON-ready body and the dataset and rows it returned."""

    body: dict
    dataset: str = ""
    rows: int = 0


# Where the list of datasets is, as a REST client reaches it (MCP names its tool instead).
LIST_DATASETS = "List the datasets at /api/v1/datasets/."


class DatasetNotFound(ApiError):
    """The answer for an unknown dataset and for one outside the caller's scope alike: the
    closest slug among those the caller may read, so a dataset outside its scope is never named,
    and where the list of datasets is."""

    def __init__(self, slug: str, close: str | None, listing: str = LIST_DATASETS):
        hint = f" Did you mean '{close}'?" if close is not None else ""
        super().__init__(404, "dataset_not_found", f"No dataset '{slug[:40]}'.{hint} {listing}")
        self.slug, self.close = slug, close

    def listed_by(self, listing: str) -> DatasetNotFound:
        """The same answer, pointing at another way to list the datasets (MCP's tool)."""
        return DatasetNotFound(self.slug, self.close, listing)


def datasets_readable(policy: AccessPolicy) -> list[DatasetSpec]:
    """The servable datasets the caller may read, by slug."""
    return policy.readable(dataset_specs())


def dataset_readable(policy: AccessPolicy, slug: object) -> DatasetSpec:
    """The dataset with this slug if the caller may read it, else ApiError 404."""
    spec = dataset_spec(slug) if isinstance(slug, str) else None
    if spec is None or not policy.may_read(spec):
        readable = [spec.slug for spec in datasets_readable(policy)]
        asked = str(slug)[:100]
        raise DatasetNotFound(asked, closest_name(asked, readable) if asked else None)
    return spec


# Which datasets some key's or grant's row filter restricts: re-read whenever one changes.
_restricted: ProcessCache[frozenset[int]] = ProcessCache("keys")


def row_filtered_dataset_ids() -> frozenset[int]:
    """The datasets that at least one key or user grant reads through row filters (their public
    schema then publishes no values: they would describe rows those readers cannot read)."""
    from accounts.models import GrantRowFilter
    from keys.models import KeyRowFilter

    def load() -> frozenset[int]:
        keys = KeyRowFilter.objects.values_list("dataset_id", flat=True).distinct()
        grants = GrantRowFilter.objects.values_list("dataset_id", flat=True).distinct()
        return frozenset(keys) | frozenset(grants)

    return _restricted.get(("row_filtered",), load)


def specs_published(specs: list[DatasetSpec], caller: AccessPolicy | None) -> list[DatasetSpec]:
    """The datasets with the statistics a document for this caller may carry (the schema views
    and the Connect page alike).

    A caller gets them computed under its row filters. A document for no particular reader (the
    public schema) has no reader to compute them for: a dataset that any key or grant reads
    through row filters publishes no values at all.
    """
    if caller is not None:
        return [caller.published(spec) for spec in specs]
    restricted = row_filtered_dataset_ids() if specs else frozenset()
    # References only between the datasets the document carries.
    shown = {spec.id for spec in specs}
    return [
        links_within(statistics_withheld(spec) if spec.id in restricted else spec, shown)
        for spec in specs
    ]


def output_format(params: Mapping, allowed: tuple[str, ...] = ("json",)) -> str:
    """The `format` a call asked for (json when absent), or QueryError naming the choices."""
    requested = params.get("format") or "json"
    if requested not in allowed:
        raise QueryError(
            "invalid_value",
            f"format must be {' or '.join(allowed)} here, not '{str(requested)[:20]}'.",
        )
    return requested


def datasets_published(policy: AccessPolicy) -> list[DatasetSpec]:
    """The datasets the caller may read, as it may see them (AccessPolicy.published)."""
    return [policy.published(spec) for spec in datasets_readable(policy)]


def dataset_summary(published: DatasetSpec, *, base_url: str) -> dict:
    """One line of list_datasets for a published dataset."""
    return DatasetSummarySerializer(published, context={"base_url": base_url}).data


def datasets_listed(policy: AccessPolicy, *, base_url: str) -> list[dict]:
    """Summaries of the datasets the caller may read (list_datasets)."""
    return [dataset_summary(spec, base_url=base_url) for spec in datasets_published(policy)]


def dataset_description(published: DatasetSpec) -> dict:
    """A published dataset's columns, types, operators and values (describe_dataset)."""
    return DatasetSerializer(published).data


def dataset_described(policy: AccessPolicy, slug: object) -> dict:
    """One dataset's columns, types, operators and values as the caller may see them."""
    return dataset_description(policy.published(dataset_readable(policy, slug)))


def rows_read(policy: AccessPolicy, slug: object, params: Mapping) -> RowsRead:
    """A page of rows: the caller's filters, search, ordering and fields, inside its row filters."""
    spec = dataset_readable(policy, slug)
    query = parse_rows(
        spec, params, forced=policy.filters_for(spec), published=policy.published(spec)
    )
    page = execute.run_rows(spec, query)
    for column in query.expand:
        _expand(policy, column, page.rows)
    return RowsRead(spec, query, page)


def _expand(policy: AccessPolicy, column: ColumnSpec, rows: list[dict]) -> None:
    """Give each row the label of the row its column refers to, read as the caller would read
    that dataset: its scope, its row filters, its personal-data rules (null when not found)."""
    assert column.references is not None  # parse_rows checked it
    referenced = dataset_readable(policy, column.references.slug)
    present = [row[column.name] for row in rows if row[column.name] is not None]
    forced = parse_forced(referenced, policy.filters_for(referenced))
    labels = execute.run_labels(referenced, present, forced) if present else {}
    for row in rows:
        value = row[column.name]
        row[label_key(column)] = None if value is None else labels.get(str(value))


def groups_read(policy: AccessPolicy, slug: object, params: Mapping) -> GroupsRead:
    """Grouped metrics over the caller's filtered rows, inside its row filters."""
    spec = dataset_readable(policy, slug)
    query = parse_aggregate(
        spec, params, forced=policy.filters_for(spec), published=policy.published(spec)
    )
    groups = execute.run_groups(spec, query)
    for column in query.expand:
        _expand(policy, column, groups.results)
    return GroupsRead(spec, query, groups)


def _row(policy: AccessPolicy, spec: DatasetSpec, key: str, *, hint: str) -> dict:
    if spec.primary_key is None:
        raise NotFound(f"{spec.slug} has no primary key: {hint}")
    return execute.run_row(spec, key, parse_forced(spec, policy.filters_for(spec)))


def row_in(
    policy: AccessPolicy, spec: DatasetSpec, key: str, params: Mapping | None = None
) -> dict:
    """One row of a dataset the caller may read, by primary key, if its row filters let it see
    that row; with `expand`, the labels of the rows it refers to."""
    expand = parse_row_expand(spec, params or {}, policy.published(spec))
    hint = f"find rows with /api/v1/datasets/{spec.slug}/rows/?column=value."
    row = _row(policy, spec, key, hint=hint)
    for column in expand:
        _expand(policy, column, [row])
    return row


def row_read(
    policy: AccessPolicy, slug: object, key: str, params: Mapping | None = None
) -> tuple[DatasetSpec, dict]:
    """One row by primary key, if the caller's row filters let it see that row."""
    spec = dataset_readable(policy, slug)
    return spec, row_in(policy, spec, key, params)


def row_url(base_url: str, slug: str, key) -> str:
    """The REST address of one row."""
    return f"{base_url}/api/v1/datasets/{slug}/rows/{key}/"


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


def rows_search(*, policy: AccessPolicy, text: str, base_url: str) -> Found:
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
    return Found({"results": results}, rows=len(results))


def row_fetch(*, policy: AccessPolicy, id: str, base_url: str) -> Found:  # noqa: A002
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
    row = _row(policy, spec, key, hint="its rows cannot be fetched by id.")
    text = "\n".join(f"{name}: {'' if value is None else value}" for name, value in row.items())
    body = {
        "id": f"{spec.slug}:{row.get(spec.primary_key, key)}",
        "title": _title(spec, row),
        "text": text,
        "url": row_url(base_url, spec.slug, row.get(spec.primary_key, key)),
        "metadata": {"dataset": spec.slug, "dataset_title": spec.title},
    }
    return Found(body, dataset=spec.slug, rows=1)


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
