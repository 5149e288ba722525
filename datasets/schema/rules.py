"""The ChatGPT Actions import rules (PRODUCT.md section 6), checked and fixed in this one place.

The schema views, the Connect page report and the test suite's checker all call
`import_rules_enforce`: what can be fixed without changing the API's meaning (an over-long text
is shortened, a missing `x-openai-isConsequential` is added) is fixed, and every other breach
is returned as a finding that says what the GPT Builder would do and how to fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

OPENAPI_VERSIONS = ("3.1.0", "3.1.1")
MAX_OPERATIONS = 30
# "under 300 / under 700 characters": the longest accepted text is one character shorter.
MAX_SUMMARY = 299
MAX_DESCRIPTION = 299
MAX_PARAMETER_DESCRIPTION = 699
MAX_DOCUMENT_BYTES = 1_000_000
OPERATION_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Findings that make the document useless to the GPT Builder: the views answer 400 instead.
BLOCKING = frozenset({"too_many_operations", "document_too_large"})

RULES: dict[str, str] = {
    "openapi_version": "openapi is 3.1.0 or 3.1.1",
    "servers": "exactly one absolute https server URL on port 443 with a lower-case host",
    "too_many_operations": f"at most {MAX_OPERATIONS} operations",
    "operation_id": "every operation has a unique operationId matching ^[a-zA-Z0-9_-]{1,64}$",
    "summary_length": "summaries under 300 characters",
    "description_length": "operation descriptions under 300 characters",
    "parameter_description_length": "parameter descriptions under 700 characters",
    "header_parameter": "no header parameters (the GPT Builder sends the key itself)",
    "security_scheme": "exactly one security scheme, applied to the whole API",
    "components_schemas": "components.schemas is an object",
    "object_properties": "every object schema has properties",
    "nullable_union": "no oneOf/anyOf with a null schema (use a type list)",
    "ref_siblings": "no $ref with sibling keys",
    "array_items": "every array schema has items",
    "consequential": "GET operations carry x-openai-isConsequential: false",
    "document_too_large": "the document stays under 1 MB",
}


@dataclass(frozen=True)
class Finding:
    """One breach of an import rule: where, what, and whether it was fixed in the document."""

    rule: str
    location: str
    message: str
    fixed: bool = False

    @property
    def blocking(self) -> bool:
        """Does this breach make the document unusable (answered as a 400)?"""
        return not self.fixed and self.rule in BLOCKING


def text_fit(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


def sentences_fit(sentences: list[tuple[int, str]], limit: int) -> str:
    """Whole sentences, most important first (lowest priority number), that fit in `limit`.

    The kept sentences stay in their given order; a sentence that does not fit is left out
    whole, so that a description never ends mid-sentence. Only a first sentence longer than the
    limit by itself is shortened.
    """
    indexed = [(priority, i, text.strip()) for i, (priority, text) in enumerate(sentences)]
    indexed = [item for item in indexed if item[2]]
    kept: set[int] = set()
    used = -1
    for _, i, text in sorted(indexed):
        if used + 1 + len(text) <= limit:
            kept.add(i)
            used += 1 + len(text)
    if not kept and indexed:
        return text_fit(min(indexed)[2], limit)
    return " ".join(text for _, i, text in indexed if i in kept)


def import_rules_enforce(document: dict, *, fix: bool = True) -> list[Finding]:
    """Check `document` against every import rule; with `fix`, repair what is safe to repair."""
    findings: list[Finding] = []
    findings += _check_root(document, fix=fix)
    findings += _check_operations(document, fix=fix)
    for location, schema in _schemas(document):
        findings += _check_schema(location, schema)
    size = len(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())
    if size >= MAX_DOCUMENT_BYTES:
        findings.append(
            Finding(
                "document_too_large",
                "/",
                f"The document is {size:,} bytes; the GPT Builder accepts under 1 MB. Ask for "
                "fewer datasets with ?datasets=a,b, or expose fewer columns.",
            )
        )
    return findings


def operations(document: dict) -> Iterator[tuple[str, str, dict]]:
    """Every (path, method, operation) of the document."""
    for path, item in (document.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                yield path, method, item[method]


def _check_root(document: dict, *, fix: bool) -> list[Finding]:
    findings = []
    version = document.get("openapi")
    if version not in OPENAPI_VERSIONS:
        findings.append(
            Finding(
                "openapi_version",
                "/openapi",
                f"openapi is {version!r}; the GPT Builder imports only 3.1.0 or 3.1.1.",
            )
        )
    servers = document.get("servers") or []
    if len(servers) != 1:
        findings.append(
            Finding(
                "servers",
                "/servers",
                f"The document lists {len(servers)} servers; the GPT Builder needs exactly one.",
            )
        )
    else:
        problem = server_url_problem(str(servers[0].get("url", "")))
        if problem:
            findings.append(Finding("servers", "/servers/0/url", problem))
    components = document.get("components")
    if not isinstance(components, dict):
        components = {}
        if fix:
            document["components"] = components
    if not isinstance(components.get("schemas"), dict):
        if fix:
            components["schemas"] = {}
        findings.append(
            Finding(
                "components_schemas",
                "/components/schemas",
                "components.schemas is missing; the GPT Builder rejects a document without it.",
                fixed=fix,
            )
        )
    schemes = components.get("securitySchemes") or {}
    security = document.get("security") or []
    named = {name for requirement in security for name in requirement}
    if len(schemes) != 1 or named != set(schemes):
        findings.append(
            Finding(
                "security_scheme",
                "/components/securitySchemes",
                f"The document declares {len(schemes)} security schemes and applies "
                f"{sorted(named)} globally; the GPT Builder supports exactly one, applied to the "
                "whole API. Set GATEWAY_SCHEMA_AUTH to bearer or header.",
            )
        )
    return findings


def server_url_problem(url: str) -> str | None:
    """Why the GPT Builder would refuse this server URL, or None."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return (
            f"The server URL {url} is not https; the GPT Builder calls only https servers. "
            "Serve Gateway over https and set GATEWAY_PUBLIC_URL=https://your-host."
        )
    if not parts.hostname:
        return f"The server URL {url!r} has no host."
    if parts.port not in (None, 443):
        return f"The server URL {url} uses port {parts.port}; the GPT Builder calls port 443 only."
    if parts.netloc != parts.netloc.lower():
        return f"The server URL {url} has upper-case letters in its host; use lower case."
    return None


def _check_operations(document: dict, *, fix: bool) -> list[Finding]:
    findings: list[Finding] = []
    found = list(operations(document))
    if len(found) > MAX_OPERATIONS:
        findings.append(
            Finding(
                "too_many_operations",
                "/paths",
                f"The schema has {len(found)} operations; ChatGPT accepts at most "
                f"{MAX_OPERATIONS}. Ask for fewer datasets with ?datasets=a,b (each dataset adds "
                "2 or 3 operations, so about 9 datasets fit).",
            )
        )
    seen: dict[str, str] = {}
    for path, method, operation in found:
        where = f"/paths/{path}/{method}"
        operation_id = operation.get("operationId")
        if not isinstance(operation_id, str) or not OPERATION_ID.match(operation_id):
            findings.append(
                Finding(
                    "operation_id",
                    where,
                    f"operationId {operation_id!r} must match ^[a-zA-Z0-9_-]{{1,64}}$.",
                )
            )
        elif operation_id in seen:
            findings.append(
                Finding(
                    "operation_id",
                    where,
                    f"operationId {operation_id!r} is also used by {seen[operation_id]}.",
                )
            )
        else:
            seen[operation_id] = where
        for key, limit, rule in (
            ("summary", MAX_SUMMARY, "summary_length"),
            ("description", MAX_DESCRIPTION, "description_length"),
        ):
            text = operation.get(key)
            if isinstance(text, str) and len(text) > limit:
                if fix:
                    operation[key] = text_fit(text, limit)
                findings.append(
                    Finding(
                        rule,
                        f"{where}/{key}",
                        f"The {key} has {len(text)} characters; the GPT Builder accepts under "
                        f"{limit + 1}. Shortened.",
                        fixed=fix,
                    )
                )
        kept = []
        for index, parameter in enumerate(operation.get("parameters") or []):
            name = parameter.get("name")
            if parameter.get("in") == "header":
                findings.append(
                    Finding(
                        "header_parameter",
                        f"{where}/parameters/{index}",
                        f"Header parameter {name!r}: the GPT Builder accepts no header "
                        "parameters (it sends the key itself). Removed.",
                        fixed=fix,
                    )
                )
                if fix:
                    continue
            text = parameter.get("description")
            if isinstance(text, str) and len(text) > MAX_PARAMETER_DESCRIPTION:
                if fix:
                    parameter["description"] = text_fit(text, MAX_PARAMETER_DESCRIPTION)
                findings.append(
                    Finding(
                        "parameter_description_length",
                        f"{where}/parameters/{index}",
                        f"The description of {name!r} has {len(text)} characters; the GPT "
                        f"Builder accepts under {MAX_PARAMETER_DESCRIPTION + 1}. Shortened.",
                        fixed=fix,
                    )
                )
            kept.append(parameter)
        if fix and "parameters" in operation:
            operation["parameters"] = kept
        if method == "get" and operation.get("x-openai-isConsequential") is not False:
            if fix:
                operation["x-openai-isConsequential"] = False
            findings.append(
                Finding(
                    "consequential",
                    f"{where}/x-openai-isConsequential",
                    "A read-only call should carry x-openai-isConsequential: false, or ChatGPT "
                    "asks the user to confirm every call." + (" Added." if fix else ""),
                    fixed=fix,
                )
            )
    return findings


def _schemas(document: dict) -> Iterator[tuple[str, dict]]:
    """Every top-level schema object of the document, with its location."""
    components = document.get("components") or {}
    for name, schema in (components.get("schemas") or {}).items():
        yield f"/components/schemas/{name}", schema
    for path, method, operation in operations(document):
        where = f"/paths/{path}/{method}"
        for index, parameter in enumerate(operation.get("parameters") or []):
            if isinstance(parameter.get("schema"), dict):
                yield f"{where}/parameters/{index}/schema", parameter["schema"]
        bodies = [("requestBody", operation.get("requestBody") or {})]
        bodies += [
            (f"responses/{status}", response)
            for status, response in (operation.get("responses") or {}).items()
        ]
        for label, body in bodies:
            for media, content in ((body or {}).get("content") or {}).items():
                if isinstance(content.get("schema"), dict):
                    yield f"{where}/{label}/content/{media}/schema", content["schema"]


def _is_null(schema) -> bool:
    return isinstance(schema, dict) and (
        schema.get("type") == "null" or schema.get("enum") == [None]
    )


def _types(schema: dict) -> set[str]:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if kind else set()


def _check_schema(location: str, schema) -> list[Finding]:
    if not isinstance(schema, dict):
        return []
    findings = []
    if "$ref" in schema and len(schema) > 1:
        findings.append(
            Finding(
                "ref_siblings",
                location,
                f"$ref has sibling keys {sorted(set(schema) - {'$ref'})}; the GPT Builder "
                "rejects them. Move them into the referenced schema.",
            )
        )
    for key in ("oneOf", "anyOf"):
        if any(_is_null(option) for option in schema.get(key) or []):
            findings.append(
                Finding(
                    "nullable_union",
                    f"{location}/{key}",
                    f"{key} with a null schema; write a nullable value as a type list such as "
                    '["number", "null"].',
                )
            )
    kinds = _types(schema)
    if "object" in kinds and "properties" not in schema:
        findings.append(
            Finding(
                "object_properties",
                location,
                "An object schema without properties; the GPT Builder rejects it.",
            )
        )
    if "array" in kinds and "items" not in schema:
        findings.append(
            Finding("array_items", location, "An array schema without items; declare its items.")
        )
    for name, child in (schema.get("properties") or {}).items():
        findings += _check_schema(f"{location}/properties/{name}", child)
    for key in ("items", "additionalProperties", "not", "contains"):
        if isinstance(schema.get(key), dict):
            findings += _check_schema(f"{location}/{key}", schema[key])
    for key in ("oneOf", "anyOf", "allOf", "prefixItems"):
        for index, child in enumerate(schema.get(key) or []):
            findings += _check_schema(f"{location}/{key}/{index}", child)
    return findings
