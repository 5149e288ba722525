"""The dataset API: thin DRF views over the query engine (parse, validate, execute, serialize)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.engine.errors import QueryError
from datasets.engine.execute import run_groups, run_row, run_rows
from datasets.engine.parse import parse_aggregate, parse_forced, parse_rows
from datasets.engine.spec import DatasetSpec
from datasets.engine.statistics import statistics_for
from datasets.responses import aggregate_json, rows_csv, rows_json
from datasets.selectors import dataset_spec, dataset_specs
from datasets.serializers import DatasetListSerializer, DatasetSerializer, DatasetSummarySerializer
from gatewaysite.errors import ApiError
from keys.permissions import dataset_in_scope, row_filters
from keys.usage import annotate


class JSONOnly(BaseContentNegotiation):
    """Always JSON (CSV is chosen by the rows view itself): no 406 for a client's odd Accept header."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def base_url(request) -> str:
    """The address Gateway publishes: GATEWAY_PUBLIC_URL, else the request's own."""
    return settings.GATEWAY_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"


def _reject_parameters(request: Request, allowed: tuple[str, ...] = ()) -> None:
    for name in request.query_params:
        if name not in allowed:
            valid = ", ".join(allowed) if allowed else "none"
            raise ApiError(
                400,
                "unknown_parameter",
                f"Unknown parameter '{name}'. Valid parameters here: {valid}.",
            )


class DatasetView(APIView):
    """Base of the views of one dataset: the dataset in the key's scope, or 404."""

    content_negotiation_class = JSONOnly
    operation = ""

    def dataset(self, request: Request, slug: str) -> DatasetSpec:
        spec = dataset_spec(slug)
        if spec is None or not dataset_in_scope(request, spec):
            raise ApiError(
                404,
                "dataset_not_found",
                f"No dataset '{slug[:40]}'. List the datasets at /api/v1/datasets/.",
            )
        annotate(request, dataset=spec.slug, operation=self.operation)
        return spec

    def forced(self, request: Request, spec: DatasetSpec) -> dict[str, str]:
        """The key's row filters on this dataset, applied inside every query."""
        return row_filters(request, spec)

    def published(self, request: Request, spec: DatasetSpec) -> DatasetSpec:
        """The dataset with the statistics this key may see: computed over its rows only."""
        return statistics_for(spec, self.forced(request, spec))


class DatasetListView(DatasetView):
    """GET /api/v1/datasets/: the datasets this key may read."""

    operation = "list_datasets"

    @extend_schema(
        operation_id="list_datasets", summary="List the datasets", responses=DatasetListSerializer
    )
    def get(self, request: Request) -> Response:
        _reject_parameters(request)
        specs = [spec for spec in dataset_specs() if dataset_in_scope(request, spec)]
        annotate(request, operation=self.operation, rows=len(specs))
        context = {"base_url": base_url(request)}
        results = [
            DatasetSummarySerializer(self.published(request, spec), context=context).data
            for spec in specs
        ]
        return Response({"count": len(results), "results": results})


class DatasetDetailView(DatasetView):
    """GET /api/v1/datasets/{slug}/: the columns, their types, operators, values and ranges."""

    operation = "describe_dataset"

    @extend_schema(
        operation_id="describe_dataset",
        summary="Describe a dataset and its columns",
        responses=DatasetSerializer,
    )
    def get(self, request: Request, slug: str) -> Response:
        _reject_parameters(request)
        spec = self.dataset(request, slug)
        return Response(DatasetSerializer(self.published(request, spec)).data)


def _wants_csv(request: Request) -> bool:
    requested = request.query_params.get("format")
    if requested not in (None, "json", "csv"):
        raise ApiError(400, "invalid_value", f"format must be json or csv, not '{requested[:20]}'.")
    if requested is not None:
        return requested == "csv"
    accept = request.META.get("HTTP_ACCEPT", "")
    return "text/csv" in accept and "application/json" not in accept


class RowListView(DatasetView):
    """GET /api/v1/datasets/{slug}/rows/: filter, search, sort, select fields, paginate."""

    operation = "rows"

    @extend_schema(
        operation_id="list_rows", responses={200: OpenApiResponse(description="A page of rows.")}
    )
    def get(self, request: Request, slug: str):
        spec = self.dataset(request, slug)
        query = parse_rows(
            spec,
            request.query_params,
            forced=self.forced(request, spec),
            published=self.published(request, spec),
        )
        as_csv = _wants_csv(request)
        page = run_rows(spec, query)
        annotate(request, rows=len(page.rows))
        if as_csv:
            return rows_csv(page, [column.name for column in query.fields], spec.slug)
        response = rows_json(
            page,
            base=base_url(request),
            path=request.path,
            params=request.query_params,
            limit=query.limit,
            offset=query.offset,
            max_chars=settings.GATEWAY_MAX_RESPONSE_CHARS,
        )
        if response is None:
            raise QueryError(
                "response_too_large",
                "One row alone is larger than the response limit: choose fewer columns with `fields`.",
            )
        return response


class RowDetailView(DatasetView):
    """GET /api/v1/datasets/{slug}/rows/{pk}/: one row by primary key."""

    operation = "row"

    @extend_schema(operation_id="get_row", responses={200: OpenApiResponse(description="One row.")})
    def get(self, request: Request, slug: str, pk: str) -> Response:
        spec = self.dataset(request, slug)
        _reject_parameters(request)
        if spec.primary_key is None:
            raise ApiError(
                404,
                "not_found",
                f"{spec.slug} has no primary key: find rows with /api/v1/datasets/{spec.slug}/rows/?column=value.",
            )
        row = run_row(spec, pk, parse_forced(spec, self.forced(request, spec)))
        annotate(request, rows=1)
        return Response(row)


class AggregateView(DatasetView):
    """GET /api/v1/datasets/{slug}/aggregate/: grouped metrics over filtered rows."""

    operation = "aggregate"

    @extend_schema(
        operation_id="aggregate", responses={200: OpenApiResponse(description="Grouped metrics.")}
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        spec = self.dataset(request, slug)
        query = parse_aggregate(
            spec,
            request.query_params,
            forced=self.forced(request, spec),
            published=self.published(request, spec),
        )
        groups = run_groups(spec, query)
        annotate(request, rows=len(groups.results))
        response = aggregate_json(
            groups,
            base=base_url(request),
            path=request.path,
            params=request.query_params,
            limit=query.limit,
            offset=query.offset,
            max_chars=settings.GATEWAY_MAX_RESPONSE_CHARS,
        )
        if response is None:
            raise QueryError(
                "response_too_large",
                "One group alone is larger than the response limit: ask for fewer metrics or "
                "group_by keys.",
            )
        return response
