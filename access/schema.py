"""The OpenAPI documents (/openapi.json, /openapi.yaml), their pages (/swagger/, /redoc/) and /privacy/.

These are plain Django views, not DRF views: drf-spectacular would otherwise list them as
operations of the API itself (SERVE_INCLUDE_SCHEMA), and the documents are cached bytes anyway.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from drf_spectacular.renderers import OpenApiYamlRenderer

from access.authentication import caller_resolve
from access.services import specs_published
from datasets.engine.spec import DatasetSpec
from datasets.policy import AccessPolicy
from datasets.schema.build import (
    BuiltSchema,
    blocking_error,
    datasets_select,
    schema_cached,
    servable_alone,
)
from datasets.selectors import dataset_specs
from gatewaysite.addresses import public_url
from gatewaysite.errors import ApiError, error_json
from keys.authentication import KeyRejected

DEFAULT_PRIVACY_POLICY = """\
This service answers questions about datasets its operator publishes. When you use it through \
ChatGPT or another client, the client sends the question's parameters (filters, groupings, page \
numbers) and an API key to this server.

What is recorded: for each call, the API key's identifier, the dataset, the operation, the \
response status, its duration, the number of rows returned and the time. No conversation text, \
name or e-mail address of the ChatGPT user reaches this server. Records are kept for a limited \
time and then deleted.

What is shared: nothing is sold or shared with third parties. The data served comes from the \
operator's own datasets; columns marked as personal data are masked, hashed or withheld.

Contact the operator of this service for any question or request about your data."""


def _catalog_specs(request: HttpRequest) -> tuple[list[DatasetSpec], AccessPolicy | None]:
    """The datasets this caller may see in the schema (all of them while the schema is public),
    and the caller's policy (None for the public schema)."""
    specs = dataset_specs()
    if settings.GATEWAY_SCHEMA_PUBLIC:
        return specs, None
    # The REST API's own credentials: an API key, or an OAuth access token issued for the REST
    # API (a token issued only for /mcp is refused, as at /api/v1/).
    try:
        policy = caller_resolve(request, door="api")
    except KeyRejected as error:
        raise ApiError(401, "unauthorized", str(error.detail)) from None
    if policy is None:
        raise ApiError(
            401,
            "unauthorized",
            "This schema needs an API key or an OAuth access token: send "
            "Authorization: Bearer <key or token> or X-API-Key: <key>.",
        )
    return policy.readable(specs), policy


def _built(request: HttpRequest) -> BuiltSchema:
    available, caller = _catalog_specs(request)
    selected = datasets_select(requested=request.GET.get("datasets"), specs=available)
    specs = specs_published(selected, caller)
    server_url = public_url(request)
    built = schema_cached(specs=specs, server_url=server_url)
    if built.blocking and not (request.GET.get("datasets") or "").strip():
        # One dataset that cannot be imported on its own (far too many columns) must not take the
        # whole document down: it is left out here and refused, with the reason, when asked for.
        servable = [spec for spec in specs if servable_alone(spec=spec, server_url=server_url)]
        if len(servable) < len(specs):
            specs = servable
            built = schema_cached(specs=specs, server_url=server_url)
    error = blocking_error(built, specs=specs)
    if error is not None:
        raise error
    return built


def _error(error: ApiError) -> HttpResponse:
    response = error_json(
        error.status_code, error.code, error.message, retry_after=error.retry_after
    )
    if error.status_code == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@require_safe
def openapi_json(request: HttpRequest) -> HttpResponse:
    """The OpenAPI document, as JSON (what the GPT Builder imports)."""
    try:
        built = _built(request)
    except ApiError as error:
        return _error(error)
    response = HttpResponse(built.json, content_type="application/json")
    response["Content-Disposition"] = 'inline; filename="openapi.json"'
    return response


@require_safe
def openapi_yaml(request: HttpRequest) -> HttpResponse:
    """The OpenAPI document, as YAML."""
    try:
        built = _built(request)
    except ApiError as error:
        return _error(error)
    body = OpenApiYamlRenderer().render(built.document, renderer_context={})
    return HttpResponse(body, content_type="application/yaml; charset=utf-8")


def _wants_html(request: HttpRequest) -> bool:
    # Browsers list text/html; the GPT Builder, curl and HTTP libraries send */* or JSON types,
    # and must get the document itself (guides tell builders to import https://host/swagger/).
    for item in request.headers.get("Accept", "").split(","):
        media, *params = item.split(";")
        if media.strip().lower() not in ("text/html", "application/xhtml+xml"):
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


def _schema_path(request: HttpRequest) -> str:
    selected = request.GET.get("datasets")
    return "/openapi.json" + (f"?datasets={selected}" if selected else "")


@require_safe
def swagger(request: HttpRequest) -> HttpResponse:
    """Swagger UI for a browser, the OpenAPI JSON for any other client."""
    if not _wants_html(request):
        response = openapi_json(request)
        response["Vary"] = "Accept"
        return response
    response = render(
        request, "schema/swagger.html", {"schema_url": _schema_path(request), "title": "Gateway"}
    )
    response["Vary"] = "Accept"
    return response


@require_safe
def redoc(request: HttpRequest) -> HttpResponse:
    """ReDoc, with every asset served locally (no web fonts, no remote logo)."""
    return render(
        request, "schema/redoc.html", {"schema_url": _schema_path(request), "title": "Gateway"}
    )


def privacy_text() -> str:
    """The privacy policy edited in the admin, else the default text."""
    from datasets.models import PrivacyPolicy

    policy = PrivacyPolicy.objects.order_by("pk").first()
    return policy.text if policy is not None and policy.text.strip() else DEFAULT_PRIVACY_POLICY


@require_safe
def privacy(request: HttpRequest) -> HttpResponse:
    """The privacy policy page the GPT Builder asks for before a GPT is published."""
    return render(request, "schema/privacy.html", {"text": privacy_text()})
