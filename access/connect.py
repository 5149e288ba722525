"""The admin's "Connect to ChatGPT" page: everything a GPT builder needs, and the import report."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from access.services import specs_published
from datasets.policy import AccessPolicy
from datasets.schema.build import datasets_select, schema_cached
from datasets.schema.guide import ExampleCall, example_calls, gpt_instructions
from datasets.schema.rules import RULES, Finding, server_url_problem
from gatewaysite.addresses import public_url
from gatewaysite.errors import ApiError

# A finding's location, "/paths//api/v1/datasets//get/description": the operation's path (every
# path ends with "/"), its method, then the part of it.
OPERATION_LOCATION = re.compile(
    r"^/paths/(?P<path>/.*?/)/(?P<method>get|put|post|delete|options|head|patch|trace)(?:/|$)"
)


@dataclass(frozen=True)
class Fix:
    """A breach of an import rule that Gateway fixes in the document it serves."""

    where: str
    message: str


@dataclass(frozen=True)
class RuleResult:
    """One import rule and what the check found about it."""

    rule: str
    text: str
    problems: list[Finding]
    fixed: list[Fix]


@dataclass(frozen=True)
class AuthChoice:
    """What to pick in the GPT Builder's Authentication dialog."""

    kind: str
    auth_type: str
    header: str
    summary: str


@dataclass(frozen=True)
class ChosenKey:
    """The key named by `?key=<key id>`: the datasets it reads, or why the page cannot use it."""

    key_id: str
    name: str = ""
    slugs: tuple[str, ...] = ()
    all_datasets: bool = False
    problem: str = ""
    policy: AccessPolicy | None = None  # what the key may read, as its GPT will read it

    @property
    def usable(self) -> bool:
        """Whether the page is set up for this key (it exists, works, and reads a dataset)."""
        return not self.problem


@dataclass(frozen=True)
class OAuthValues:
    """What to paste into the GPT Builder's OAuth dialog (GATEWAY_SCHEMA_AUTH=oauth)."""

    authorization_url: str
    token_url: str
    scope: str
    callback_rule: str
    clients_url: str


def auth_choice() -> AuthChoice:
    """The GPT Builder settings matching GATEWAY_SCHEMA_AUTH."""
    if settings.GATEWAY_SCHEMA_AUTH == "oauth":
        return AuthChoice(
            "OAuth",
            "",
            "Authorization",
            "Authentication type: OAuth; Token Exchange Method: Default (POST request).",
        )
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


def oauth_values(server_url: str) -> OAuthValues | None:
    """The OAuth values of the GPT Builder, when the schema declares OAuth."""
    if settings.GATEWAY_SCHEMA_AUTH != "oauth":
        return None
    from oauth2_provider.settings import oauth2_settings

    from accounts.oauth import GPT_CALLBACK_RULE

    return OAuthValues(
        authorization_url=f"{server_url}{reverse('oauth2_provider:authorize')}",
        token_url=f"{server_url}{reverse('oauth2_provider:token')}",
        scope=" ".join(oauth2_settings.DEFAULT_SCOPES),
        callback_rule=GPT_CALLBACK_RULE,
        clients_url=reverse("admin:accounts_gptactionsclient_add"),
    )


def _requested(request: HttpRequest) -> str:
    return ",".join(
        part for value in request.GET.getlist("datasets") for part in value.split(",") if part
    )


def _selected(requested: str, specs: list) -> tuple[list, str]:
    try:
        return datasets_select(requested=requested, specs=specs), ""
    except ApiError as error:
        return list(specs), error.message


def _may_view(request: HttpRequest, model) -> bool:
    model_admin = admin.site._registry.get(model)
    return model_admin is not None and model_admin.has_view_permission(request)


def may_view_datasets(request: HttpRequest) -> bool:
    """Whether the signed-in staff user may see datasets (their schema, descriptions, examples)."""
    from datasets.models import Dataset

    return _may_view(request, Dataset)


def may_view_keys(request: HttpRequest) -> bool:
    """Whether the signed-in staff user may see API keys (and so which datasets a key reads)."""
    from keys.models import ApiKey

    return _may_view(request, ApiKey)


def chosen_key(request: HttpRequest, specs: list) -> ChosenKey | None:
    """The key of `?key=<key id>` and the page's datasets it reads, or None without `?key=`."""
    from keys.models import ApiKey
    from keys.selectors import key_info

    key_id = request.GET.get("key", "").strip()
    if not key_id:
        return None
    # The same answer whether or not the key exists: a user who may not view keys learns nothing.
    if not may_view_keys(request):
        return ChosenKey(
            key_id,
            problem="Your account may not view API keys, so this page cannot show which "
            "datasets the key reads: choose them below.",
        )
    key = ApiKey.objects.filter(key_id=key_id).first()
    if key is None:
        return ChosenKey(
            key_id,
            problem=f"No API key has the id {key_id}. Choose the datasets below, or issue a "
            "key under API keys.",
        )
    if key.state != "active":
        return ChosenKey(
            key_id,
            key.name,
            problem=f"The key {key.name} ({key_id}) is {key.state}: a GPT cannot call Gateway "
            "with it. Issue a new key under API keys.",
        )
    info = key_info(key_id)
    policy = info.policy() if info is not None else None
    slugs = tuple(spec.slug for spec in policy.readable(specs)) if policy is not None else ()
    if not slugs:
        return ChosenKey(
            key_id,
            key.name,
            problem=f"The key {key.name} ({key_id}) reads none of the datasets you may view.",
        )
    return ChosenKey(key_id, key.name, slugs, key.all_datasets, policy=policy)


def _where(location: str) -> str:
    """A finding's place as a person names it: its operation, "GET /api/v1/datasets/"."""
    match = OPERATION_LOCATION.match(location)
    return f"{match['method'].upper()} {match['path']}" if match else location


def _fixes(findings: list[Finding]) -> list[Fix]:
    return [Fix(_where(finding.location), finding.message) for finding in findings]


def connect_view(request: HttpRequest) -> HttpResponse:
    """The Connect to ChatGPT page (staff only, wrapped by admin_view below).

    It shows only the datasets the user may view: a staff user without the "view dataset"
    permission gets the page without any dataset in it (no schema, instructions or examples).
    With `?key=<key id>` the key's datasets are chosen, for a user who may view keys.
    """
    from datasets.selectors import dataset_specs

    catalog = dataset_specs()
    allowed = may_view_datasets(request)
    specs = catalog if allowed else []
    key = chosen_key(request, specs)
    requested = _requested(request)
    if requested or key is None:
        selected, selection_error = _selected(requested, specs)
    elif key.problem:
        selected, selection_error = [], ""  # nothing chosen for a key the page cannot use
    else:
        selected, selection_error = _selected(",".join(key.slugs), specs)
    usable = key is not None and key.usable
    outside_key = (
        [spec.slug for spec in selected if spec.slug not in key.slugs] if key and usable else []
    )
    server_url = public_url(request)
    # The document, instructions and examples as the key's GPT will read them: statistics under
    # its row filters, the same rule /openapi.json applies (access/services.py specs_published).
    caller = key.policy if key is not None and key.usable else None
    selected = specs_published(selected, caller)
    built = schema_cached(specs=selected, server_url=server_url)
    everything = [spec.slug for spec in selected] == [spec.slug for spec in specs]
    # A key for some datasets keeps its schema to them, even when they are all there is today:
    # a dataset added later must not reach a GPT whose key cannot read it.
    limited = not everything or bool(key and usable and not key.all_datasets and not requested)
    query = "?datasets=" + ",".join(spec.slug for spec in selected) if limited else ""
    examples: list[tuple[object, list[ExampleCall]]] = [
        (spec, example_calls(spec)) for spec in selected
    ]
    results = [
        RuleResult(
            rule,
            text,
            [f for f in built.findings if f.rule == rule and not f.fixed],
            _fixes([f for f in built.findings if f.rule == rule and f.fixed]),
        )
        for rule, text in RULES.items()
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Connect to ChatGPT",
        "specs": specs,
        "datasets_hidden": bool(catalog) and not allowed,
        "selected": {spec.slug for spec in selected},
        "nothing_chosen": bool(specs) and not selected,
        "selection_error": selection_error,
        "key": key,
        "outside_key": outside_key,
        "server_url": server_url,
        "server_problem": server_url_problem(server_url),
        "schema_url": f"{server_url}/openapi.json{query}",
        "schema_public": settings.GATEWAY_SCHEMA_PUBLIC,
        "document": built.json.decode() if not settings.GATEWAY_SCHEMA_PUBLIC else "",
        "auth": auth_choice(),
        "oauth": oauth_values(server_url),
        "mcp_url": f"{server_url}/mcp",
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
