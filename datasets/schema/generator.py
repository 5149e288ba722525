"""drf-spectacular's generator, taught the registered datasets (SPECTACULAR_SETTINGS points here).

drf-spectacular sees the dataset views once, with a `{slug}` parameter. For ChatGPT those generic
operations are useless: it needs each dataset's columns as declared parameters. So the generic
endpoints are left out before drf-spectacular inspects them (their warnings too), and each
dataset gets its concrete paths and component schemas from operations.py. The views that are not
per dataset (list_datasets, describe_dataset) keep what drf-spectacular makes of them.
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db import DatabaseError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator

from datasets.engine.spec import DatasetSpec
from datasets.schema.operations import (
    AGGREGATE_SCHEMA,
    ERROR_SCHEMA,
    aggregate_component,
    dataset_components,
    dataset_paths,
    error_component,
    error_responses,
)
from datasets.schema.rules import Finding, import_rules_enforce, operations

logger = logging.getLogger("gateway")

GENERIC_DATASET_PATH = re.compile(
    r"^/api/v1/datasets/\{[^/}]+\}/(?:rows/(?:\{[^/}]+\}/)?|aggregate/)$"
)
SECURITY_SCHEME = "ApiKey"
# Operation ids the GPT instructions and docs name, whatever the views' defaults are.
FIXED_OPERATION_IDS = {
    ("/api/v1/datasets/", "get"): "list_datasets",
    ("/api/v1/datasets/{slug}/", "get"): "describe_dataset",
}
# Written for a model: what the operation answers, and an example call.
VIEW_DESCRIPTIONS = {
    "list_datasets": "The datasets this key may read: slug, title, description, row count. "
    "Call it first when unsure which dataset answers a question. Example: GET /api/v1/datasets/",
    "describe_dataset": "One dataset's columns: name, type, description, filter operators, valid "
    "values (enum) and range (min, max, e.g. the years a date covers). "
    "Example: GET /api/v1/datasets/{slug}/",
}
SLUG_PATH = re.compile(r"^/api/v1/datasets/\{[^/}]+\}/$")
DEFAULT_SERVER = "https://localhost"


OAUTH_SCOPE = "datasets"


def oauth_scheme(server_url: str) -> dict:
    """The OAuth 2 authorization-code flow of this server (accounts/urls.py), for the GPT Builder."""
    base = server_url.rstrip("/")
    return {
        "type": "oauth2",
        "description": "Sign in with your Gateway account: the app reads what you are granted.",
        "flows": {
            "authorizationCode": {
                "authorizationUrl": f"{base}/oauth/authorize/",
                "tokenUrl": f"{base}/oauth/token/",
                "refreshUrl": f"{base}/oauth/token/",
                "scopes": {OAUTH_SCOPE: "Read the datasets you are granted"},
            }
        },
    }


def security_scheme(server_url: str = DEFAULT_SERVER) -> dict:
    """The one security scheme GATEWAY_SCHEMA_AUTH selects."""
    if settings.GATEWAY_SCHEMA_AUTH == "oauth":
        return oauth_scheme(server_url)
    if settings.GATEWAY_SCHEMA_AUTH == "header":
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "Your Gateway API key (gw_...).",
        }
    return {"type": "http", "scheme": "bearer", "description": "Your Gateway API key (gw_...)."}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Tells drf-spectacular how the REST API's credentials (an API key, or an OAuth access token:
    access.authentication.CallerAuthentication) appear in a schema."""

    target_class = "access.authentication.CallerAuthentication"
    name = SECURITY_SCHEME

    def get_security_definition(self, auto_schema):
        return security_scheme()


class GatewaySchemaGenerator(SchemaGenerator):
    """The schema of the API plus concrete operations for each dataset in `specs`."""

    def __init__(
        self,
        *args,
        specs: list[DatasetSpec] | None = None,
        server_url: str | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.specs = specs
        self.server_url = server_url
        self.findings: list[Finding] = []

    def _initialise_endpoints(self) -> None:
        super()._initialise_endpoints()
        self.endpoints = [
            endpoint
            for endpoint in self.endpoints or ()
            if not GENERIC_DATASET_PATH.match(endpoint[0])
        ]

    def get_schema(self, request=None, public=False) -> dict:
        """The complete document, import rules enforced (breaches left in self.findings)."""
        document = super().get_schema(request=request, public=public)
        specs = self.specs if self.specs is not None else _all_specs()
        server = self.server_url or settings.GATEWAY_PUBLIC_URL or DEFAULT_SERVER
        document_complete(document, specs=specs, server_url=server)
        self.findings = import_rules_enforce(document, fix=True)
        return document


def _all_specs() -> list[DatasetSpec]:
    from datasets.selectors import dataset_specs

    try:
        return dataset_specs()
    except DatabaseError:
        # `manage.py spectacular` on a database not migrated yet: the views' schema alone.
        logger.warning("No dataset tables: the schema lists no dataset.")
        return []


def document_complete(document: dict, *, specs: list[DatasetSpec], server_url: str) -> None:
    """Add the datasets' operations, servers and security to drf-spectacular's document."""
    document["openapi"] = "3.1.0"
    document["servers"] = [{"url": server_url}]
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas[ERROR_SCHEMA] = error_component()
    components["securitySchemes"] = {SECURITY_SCHEME: security_scheme(server_url)}
    document["security"] = [{SECURITY_SCHEME: []}]
    slugs = [spec.slug for spec in specs]
    for path, method, operation in list(operations(document)):
        # One global requirement: per-operation copies would list the scheme again, and
        # drf-spectacular adds an anonymous `{}` alternative for views open to all.
        operation.pop("security", None)
        operation_id = FIXED_OPERATION_IDS.get((_generic(path), method))
        if operation_id:
            operation["operationId"] = operation_id
        if SLUG_PATH.match(path):
            for parameter in operation.get("parameters") or []:
                if parameter.get("in") == "path" and slugs:
                    parameter.setdefault("schema", {"type": "string"})["enum"] = list(slugs)
        if operation_id in VIEW_DESCRIPTIONS:
            example = slugs[0] if slugs else "sales"
            operation["description"] = VIEW_DESCRIPTIONS[operation_id].replace("{slug}", example)
        statuses = ("400", "401", "404", "429") if SLUG_PATH.match(path) else ("401", "429")
        responses = operation.setdefault("responses", {})
        for status, response in error_responses(statuses).items():
            responses.setdefault(status, response)
    _nullable_unions_flatten(document)
    paths = document.setdefault("paths", {})
    if specs:
        schemas[AGGREGATE_SCHEMA] = aggregate_component()
    for spec in specs:
        schemas.update(dataset_components(spec))
        paths.update(dataset_paths(spec))
    tags = [{"name": spec.slug, "description": spec.title} for spec in specs]
    if tags:
        document["tags"] = tags


def _generic(path: str) -> str:
    return re.sub(r"\{[^/}]+\}", "{slug}", path)


def _is_null(schema) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def _nullable_unions_flatten(node) -> None:
    """Rewrite drf-spectacular's 3.1 nullables (oneOf [X, null]) as type lists, in place.

    Also drops drf-spectacular's internal `x-spec-enum-id` marks.

    The GPT Builder rejects a oneOf/anyOf with a null schema. `{}` (any value) already admits
    null, so it stays `{}`; a typed schema gets "null" added to its type list.
    """
    if isinstance(node, list):
        for item in node:
            _nullable_unions_flatten(item)
        return
    if not isinstance(node, dict):
        return
    # drf-spectacular's enum bookkeeping, normally removed by the enum hook we do not run.
    node.pop("x-spec-enum-id", None)
    for key in ("oneOf", "anyOf"):
        options = node.get(key)
        if not isinstance(options, list) or not any(_is_null(option) for option in options):
            continue
        rest = [option for option in options if not _is_null(option)]
        if len(rest) != 1 or "$ref" in rest[0]:
            continue  # left for the import rules to report
        kept = dict(rest[0])
        if "type" in kept:
            kinds = kept["type"] if isinstance(kept["type"], list) else [kept["type"]]
            kept["type"] = [*kinds, "null"] if "null" not in kinds else kinds
            if "enum" in kept and None not in kept["enum"]:
                kept["enum"] = [*kept["enum"], None]
        del node[key]
        node.update({name: value for name, value in kept.items() if name not in node})
    for value in node.values():
        _nullable_unions_flatten(value)
