"""The dataset API: thin DRF views over the query service (access/services.py)."""

from __future__ import annotations

from typing import NoReturn

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import services
from access.permissions import request_policy
from datasets.engine.errors import QueryError, shown, suggest
from datasets.engine.parse import row_parameters
from datasets.engine.query import label_key
from datasets.policy import AccessPolicy
from datasets.responses import (
    GROUP_TOO_LARGE,
    ROW_TOO_LARGE,
    aggregate_json,
    rows_csv,
    rows_json,
)
from datasets.serializers import DatasetListSerializer, DatasetSerializer
from gatewaysite.addresses import public_url
from gatewaysite.errors import ApiError
from keys.usage import annotate


class JSONOnly(BaseContentNegotiation):
    """Always JSON (CSV is chosen by the rows view itself): no 406 for a client's odd Accept header."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _reject_parameters(request: Request, allowed: tuple[str, ...] = ()) -> None:
    for name in request.query_params:
        if name not in allowed:
            raise ApiError(
                400,
                "unknown_parameter",
                f"Unknown parameter '{shown(name)}'."
                + suggest(name, allowed, what="parameters here"),
            )


class DatasetView(APIView):
    """Base of the dataset API's views: the caller's policy, and its refusals in one shape."""

    content_negotiation_class = JSONOnly

    def policy(self, request: Request) -> AccessPolicy:
        policy = request_policy(request)
        assert policy is not None  # HasCredential let the call through
        return policy

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        """A throttle refusal as its own 429 (rate_limited or quota_exceeded, with the wait)."""
        refusal = getattr(request, "gateway_refusal", None)
        if refusal is None:
            super().throttled(request, wait)  # type: ignore[arg-type]  # DRF passes None too
        error = exceptions.Throttled(detail=refusal.message, code=refusal.code)
        error.wait = wait  # type: ignore[attr-defined]  # set by DRF's own __init__ too
        raise error


class DatasetListView(DatasetView):
    """GET /api/v1/datasets/: the datasets this caller may read."""

    @extend_schema(
        operation_id="list_datasets", summary="List the datasets", responses=DatasetListSerializer
    )
    def get(self, request: Request) -> Response:
        _reject_parameters(request)
        results = services.datasets_listed(self.policy(request), base_url=public_url(request))
        annotate(request, rows=len(results))
        return Response({"count": len(results), "results": results})


class DatasetDetailView(DatasetView):
    """GET /api/v1/datasets/{slug}/: the columns, their types, operators, values and ranges."""

    @extend_schema(
        operation_id="describe_dataset",
        summary="Describe a dataset and its columns",
        responses=DatasetSerializer,
    )
    def get(self, request: Request, slug: str) -> Response:
        _reject_parameters(request)
        return Response(services.dataset_described(self.policy(request), slug))


def _wants_csv(request: Request) -> bool:
    if "format" in request.query_params:
        return services.output_format(request.query_params, ("json", "csv")) == "csv"
    accept = request.META.get("HTTP_ACCEPT", "")
    return "text/csv" in accept and "application/json" not in accept


def _sized(response: HttpResponse | None, too_large: str) -> HttpResponse:
    """A JSON page under the response size guard; 400 response_too_large if nothing fits."""
    if response is None:
        raise QueryError("response_too_large", too_large)
    return response


def _page_links(request: Request, query) -> dict:
    """What a JSON page needs to link its neighbours and fit the size guard."""
    return {
        "base": public_url(request),
        "path": request.path,
        "params": request.query_params,
        "limit": query.limit,
        "offset": query.offset,
        "max_chars": settings.GATEWAY_MAX_RESPONSE_CHARS,
    }


class RowListView(DatasetView):
    """GET /api/v1/datasets/{slug}/rows/: filter, search, sort, select fields, paginate."""

    @extend_schema(
        operation_id="list_rows", responses={200: OpenApiResponse(description="A page of rows.")}
    )
    def get(self, request: Request, slug: str):
        read = services.rows_read(self.policy(request), slug, request.query_params)
        as_csv = _wants_csv(request)
        annotate(request, rows=len(read.page.rows))
        if as_csv:
            fields = [column.name for column in read.query.fields]
            fields += [label_key(column) for column in read.query.expand]
            return rows_csv(read.page, fields, read.spec.slug)
        return _sized(rows_json(read.page, **_page_links(request, read.query)), ROW_TOO_LARGE)


class RowDetailView(DatasetView):
    """GET /api/v1/datasets/{slug}/rows/{pk}/: one row by primary key."""

    @extend_schema(operation_id="get_row", responses={200: OpenApiResponse(description="One row.")})
    def get(self, request: Request, slug: str, pk: str) -> Response:
        policy = self.policy(request)
        spec = services.dataset_readable(policy, slug)
        _reject_parameters(request, row_parameters(policy.published(spec)))
        row = services.row_in(policy, spec, pk, request.query_params)
        annotate(request, rows=1)
        return Response(row)


class AggregateView(DatasetView):
    """GET /api/v1/datasets/{slug}/aggregate/: grouped metrics over filtered rows."""

    @extend_schema(
        operation_id="aggregate", responses={200: OpenApiResponse(description="Grouped metrics.")}
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        services.output_format(request.query_params)
        read = services.groups_read(self.policy(request), slug, request.query_params)
        annotate(request, rows=len(read.groups.results))
        response = aggregate_json(read.groups, **_page_links(request, read.query))
        return _sized(response, GROUP_TOO_LARGE)
