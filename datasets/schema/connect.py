"""The admin's "Connect to ChatGPT" page: everything a GPT builder needs, and the import report."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from datasets.schema.build import datasets_select, schema_cached, server_url_for
from datasets.schema.guide import ExampleCall, example_calls, gpt_instructions
from datasets.schema.rules import RULES, Finding, server_url_problem
from gatewaysite.errors import ApiError


@dataclass(frozen=True)
class RuleResult:
    """One import rule and what the check found about it."""

    rule: str
    text: str
    problems: list[Finding]
    fixed: list[Finding]


@dataclass(frozen=True)
class AuthChoice:
    """What to pick in the GPT Builder's Authentication dialog."""

    kind: str
    auth_type: str
    header: str
    summary: str


def auth_choice() -> AuthChoice:
    """The GPT Builder settings matching GATEWAY_SCHEMA_AUTH."""
    if settings.GATEWAY_SCHEMA_AUTH == "header":
        return AuthChoice(
            "API Key",
            "Custom",
            "X-API-Key",
            "Authentication type: API Key; Auth Type: Custom; Custom Header Name: X-API-Key.",
        )
    return AuthChoice(
        "API Key", "Bearer", "Authorization", "Authentication type: API Key; Auth Type: Bearer."
    )


def _selected(request: HttpRequest, specs: list) -> tuple[list, str]:
    requested = ",".join(
        part for value in request.GET.getlist("datasets") for part in value.split(",") if part
    )
    try:
        return datasets_select(requested=requested, specs=specs), ""
    except ApiError as error:
        return list(specs), error.message


def may_view_datasets(request: HttpRequest) -> bool:
    """Whether the signed-in staff user may see datasets (their schema, descriptions, examples)."""
    from datasets.models import Dataset

    dataset_admin = admin.site._registry.get(Dataset)
    return dataset_admin is not None and dataset_admin.has_view_permission(request)


def connect_view(request: HttpRequest) -> HttpResponse:
    """The Connect to ChatGPT page (staff only, wrapped by admin_view below).

    It shows only the datasets the user may view: a staff user without the "view dataset"
    permission gets the page without any dataset in it (no schema, instructions or examples).
    """
    from datasets.selectors import dataset_specs

    catalog = dataset_specs()
    allowed = may_view_datasets(request)
    specs = catalog if allowed else []
    selected, selection_error = _selected(request, specs)
    server_url = server_url_for(request)
    built = schema_cached(specs=selected, server_url=server_url)
    everything = [spec.slug for spec in selected] == [spec.slug for spec in specs]
    query = "" if everything else "?datasets=" + ",".join(spec.slug for spec in selected)
    examples: list[tuple[object, list[ExampleCall]]] = [
        (spec, example_calls(spec)) for spec in selected
    ]
    results = [
        RuleResult(
            rule,
            text,
            [f for f in built.findings if f.rule == rule and not f.fixed],
            [f for f in built.findings if f.rule == rule and f.fixed],
        )
        for rule, text in RULES.items()
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Connect to ChatGPT",
        "specs": specs,
        "datasets_hidden": bool(catalog) and not allowed,
        "selected": {spec.slug for spec in selected},
        "selection_error": selection_error,
        "server_url": server_url,
        "server_problem": server_url_problem(server_url),
        "schema_url": f"{server_url}/openapi.json{query}",
        "schema_public": settings.GATEWAY_SCHEMA_PUBLIC,
        "document": built.json.decode() if not settings.GATEWAY_SCHEMA_PUBLIC else "",
        "auth": auth_choice(),
        "instructions": gpt_instructions(selected),
        "examples": examples,
        "privacy_url": f"{server_url}/privacy/",
        "rule_results": results,
        "problem_count": len(built.problems),
        "warnings": built.warnings,
        "operation_count": built.operation_count,
        "document_size": len(built.json),
    }
    return TemplateResponse(request, "admin/connect.html", context)


connect = admin.site.admin_view(connect_view)
