"""Gateway's own app: start-up work, and the static files of Gateway's pages (gatewaysite/static/)."""

from __future__ import annotations

from types import SimpleNamespace

from django.apps import AppConfig


def schema_extensions_load() -> None:
    """Resolve every drf-spectacular extension's target class once, in this thread.

    drf-spectacular resolves them lazily, on the first schema it builds, by overwriting a class
    attribute: two threads building the first schema at once (a threaded server's first
    requests to /openapi.json) see it half-resolved and answer 500. Resolved here, before any
    request, there is nothing left to race on.
    """
    from drf_spectacular import openapi  # noqa: F401  (imports and registers the contrib extensions)
    from drf_spectacular.extensions import (
        OpenApiAuthenticationExtension,
        OpenApiFilterExtension,
        OpenApiSerializerExtension,
        OpenApiSerializerFieldExtension,
        OpenApiViewExtension,
    )

    # get_match walks every registered extension and resolves its target on the way; nothing
    # matches the stand-ins. View extensions are matched on a view callback's `cls`.
    for family in (
        OpenApiAuthenticationExtension,
        OpenApiFilterExtension,
        OpenApiSerializerExtension,
        OpenApiSerializerFieldExtension,
    ):
        family.get_match(object())
    OpenApiViewExtension.get_match(SimpleNamespace(cls=object))


class GatewaySiteConfig(AppConfig):
    """Runs schema_extensions_load when Django starts, in every process (server or command)."""

    name = "gatewaysite"
    verbose_name = "Gateway"

    def ready(self) -> None:
        schema_extensions_load()
